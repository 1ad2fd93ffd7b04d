// conformance client driver in Go: runs the calls run.py sends on stdin
// through the typed clients protoc-gen-spawn generated from
// conformance.proto (lang=go) and writes their outcomes on stdout (the line
// protocol of README.md, "Client drivers"). N calls of one CALL command run
// at once, each in its goroutine.
//
//	conformance-client-go --gateway TARGET [--system NAME]
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	pb "spawn-gateway/conformance/conformance/v1"
	"spawn-gateway/go/spawn"
)

// action: the input type and the typed client's method.
type action struct {
	input func() proto.Message
	call  func(ctx context.Context, in proto.Message, o *spawn.CallOptions) (proto.Message, error)
}

func table(c *spawn.Client, system string) map[string]action {
	k := pb.NewKeeperClient(c, system)
	e := pb.NewEchoerClient(c, system)
	t := pb.NewTallyClient(c, system)
	profile := func() proto.Message { return new(pb.Profile) }
	// Each entry adapts one typed method to the table's shape.
	return map[string]action{
		"Keeper.Set": {profile, func(ctx context.Context, in proto.Message, o *spawn.CallOptions) (proto.Message, error) {
			return k.Set(ctx, in.(*pb.Profile), o)
		}},
		"Keeper.Merge": {profile, func(ctx context.Context, in proto.Message, o *spawn.CallOptions) (proto.Message, error) {
			return k.Merge(ctx, in.(*pb.Profile), o)
		}},
		"Keeper.Get": {func() proto.Message { return new(pb.GetRequest) }, func(ctx context.Context, in proto.Message, o *spawn.CallOptions) (proto.Message, error) {
			return k.Get(ctx, in.(*pb.GetRequest), o)
		}},
		"Keeper.Fail": {func() proto.Message { return new(pb.FailRequest) }, func(ctx context.Context, in proto.Message, o *spawn.CallOptions) (proto.Message, error) {
			return k.Fail(ctx, in.(*pb.FailRequest), o)
		}},
		"Keeper.Echo": {func() proto.Message { return new(pb.Blob) }, func(ctx context.Context, in proto.Message, o *spawn.CallOptions) (proto.Message, error) {
			return k.Echo(ctx, in.(*pb.Blob), o)
		}},
		"Keeper.Increment": {func() proto.Message { return new(pb.IncrementRequest) }, func(ctx context.Context, in proto.Message, o *spawn.CallOptions) (proto.Message, error) {
			return k.Increment(ctx, in.(*pb.IncrementRequest), o)
		}},
		"Echoer.Echo": {func() proto.Message { return new(pb.Blob) }, func(ctx context.Context, in proto.Message, o *spawn.CallOptions) (proto.Message, error) {
			return e.Echo(ctx, in.(*pb.Blob), o)
		}},
		"Echoer.Fail": {func() proto.Message { return new(pb.FailRequest) }, func(ctx context.Context, in proto.Message, o *spawn.CallOptions) (proto.Message, error) {
			return e.Fail(ctx, in.(*pb.FailRequest), o)
		}},
		"Tally.Add": {func() proto.Message { return new(pb.IncrementRequest) }, func(ctx context.Context, in proto.Message, o *spawn.CallOptions) (proto.Message, error) {
			return t.Add(ctx, in.(*pb.IncrementRequest), o)
		}},
		"Tally.Get": {func() proto.Message { return new(pb.GetRequest) }, func(ctx context.Context, in proto.Message, o *spawn.CallOptions) (proto.Message, error) {
			return t.Get(ctx, in.(*pb.GetRequest), o)
		}},
	}
}

func b64(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return base64.StdEncoding.EncodeToString(b)
}

func unb64(s string) ([]byte, error) {
	if s == "-" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

func call(actions map[string]action, line string, timeout time.Duration) string {
	w := strings.Split(line, " ")
	if len(w) != 4 {
		return "ERR -1 " + b64([]byte("bad call line"))
	}
	a, ok := actions[w[0]+"."+w[2]]
	if !ok {
		return "ERR -1 " + b64([]byte("no action "+w[0]+"."+w[2]))
	}
	data, err := unb64(w[3])
	in := a.input()
	if err == nil {
		err = proto.Unmarshal(data, in)
	}
	if err != nil {
		return "ERR -1 " + b64([]byte(err.Error()))
	}
	o := &spawn.CallOptions{}
	if w[1] != "-" {
		o.Actor = w[1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	reply, err := a.call(ctx, in, o)
	if err != nil {
		e, ok := err.(*spawn.Error)
		if !ok {
			return "ERR -1 " + b64([]byte(err.Error()))
		}
		return fmt.Sprintf("ERR %d %s", int(e.Code), b64([]byte(e.Message)))
	}
	out, err := proto.Marshal(reply)
	if err != nil {
		return "ERR -1 " + b64([]byte(err.Error()))
	}
	return "OK " + b64(out)
}

func main() {
	gateway := flag.String("gateway", "", "the gateway's address")
	system := flag.String("system", "conformance", "the actor system")
	flag.Parse()
	if *gateway == "" {
		fmt.Fprintln(os.Stderr, "usage: conformance-client-go --gateway TARGET [--system NAME]")
		os.Exit(2)
	}
	connect := func() (*spawn.Client, map[string]action) {
		c, err := spawn.NewClient(*gateway, spawn.ClientOptions{Deadline: 30 * time.Second})
		if err != nil {
			fmt.Fprintln(os.Stderr, "conformance-client-go:", err)
			os.Exit(1)
		}
		return c, table(c, *system)
	}
	client, actions := connect()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	for in.Scan() {
		line := in.Text()
		if line == "QUIT" {
			break
		}
		if line == "RECONNECT" {
			client.Close()
			client, actions = connect()
			fmt.Fprintln(out, "OK")
			out.Flush()
			continue
		}
		w := strings.Fields(line)
		if len(w) != 3 || w[0] != "CALL" {
			fmt.Fprintln(os.Stderr, "bad command", line)
			os.Exit(1)
		}
		n, _ := strconv.Atoi(w[1])
		ms, _ := strconv.Atoi(w[2])
		calls := make([]string, n)
		for i := range calls {
			if !in.Scan() {
				os.Exit(1)
			}
			calls[i] = in.Text()
		}
		results := make([]string, n)
		var wg sync.WaitGroup
		for i := range calls {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				results[i] = call(actions, calls[i], time.Duration(ms)*time.Millisecond)
			}(i)
		}
		wg.Wait()
		for _, r := range results {
			fmt.Fprintln(out, r)
		}
		out.Flush()
	}
	client.Close()
}
