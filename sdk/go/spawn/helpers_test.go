package spawn

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gateway is a real spawn-gateway the test started ($SPAWN_GATEWAY).
type gateway struct {
	cmd   *exec.Cmd
	addr  string
	lines chan string
	dir   string
}

func gatewayBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("SPAWN_GATEWAY")
	if bin == "" {
		t.Fatal("SPAWN_GATEWAY names no spawn-gateway binary (the ctest test sets it)")
	}
	return bin
}

// startGateway starts the gateway on 127.0.0.1:0 (or listen) with a SQLite
// store in dir and waits for its "listening ADDR PORT" line.
func startGateway(t *testing.T, dir, listen string, extra ...string) *gateway {
	t.Helper()
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	args := append([]string{"--listen", listen, "--statestore", "sqlite://" + filepath.Join(dir, "state.db")}, extra...)
	cmd := exec.Command(gatewayBinary(t), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "gateway.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gateway{cmd: cmd, lines: make(chan string, 64), dir: dir}
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintln(logf, "stdout:", sc.Text())
			select {
			case g.lines <- sc.Text():
			default:
			}
		}
		io.Copy(io.Discard, out)
		close(g.lines)
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-g.lines:
			if !ok {
				t.Fatalf("the gateway exited before listening: %s", g.log())
			}
			w := strings.Fields(l)
			if len(w) == 3 && w[0] == "listening" && !strings.HasPrefix(w[1], "http") {
				host := w[1]
				if h, _, err := net.SplitHostPort(w[1]); err == nil {
					host = h
				}
				g.addr = net.JoinHostPort(host, w[2])
				t.Cleanup(func() { g.stop(t, syscall.SIGTERM) })
				return g
			}
		case <-deadline:
			t.Fatalf("no 'listening' line from the gateway in 30 s: %s", g.log())
		}
	}
}

func (g *gateway) log() string {
	b, _ := os.ReadFile(filepath.Join(g.dir, "gateway.log"))
	return string(b)
}

// stop signals the gateway by its own pid and waits for it (once).
func (g *gateway) stop(t *testing.T, sig syscall.Signal) {
	if g.cmd.ProcessState != nil {
		return
	}
	g.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil && sig == syscall.SIGTERM {
			t.Errorf("the gateway exited with %v on SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		g.cmd.Process.Kill()
		<-done
		t.Errorf("the gateway did not exit within 30 s of %v", sig)
	}
}

func waitRegistered(t *testing.T, h *Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
}

func quiet(level, msg string) {
	if level == "error" {
		fmt.Fprintln(os.Stderr, "host:", msg)
	}
}
