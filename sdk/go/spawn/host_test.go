package spawn

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eigr/go-support/eigr/protocol"
	"spawn-gateway/go/pb/gatewayv1"
)

type hostMsg = gatewayv1.HostMessage

func resultMsg(id uint64) *gatewayv1.HostMessage {
	return &gatewayv1.HostMessage{Msg: &gatewayv1.HostMessage_Result{Result: &gatewayv1.InvocationResult{
		RequestId: id, Outcome: &gatewayv1.InvocationResult_Error{Error: &gatewayv1.HostError{Code: 2, Message: "x"}}}}}
}

const sys = "go-sdk-test"

// TestDefaultCodecFailsOwnCodecWorks: grpc-go 1.33's registered "proto"
// codec (github.com/golang/protobuf 1.3) cannot handle protobuf-go 1.28
// messages: it panics marshalling a oneof and unmarshalling anything (the
// reason for Codec). Codec round-trips them and passes RawFrame through.
func TestDefaultCodecFailsOwnCodecWorks(t *testing.T) {
	a, err := anypb.New(wrapperspb.Int64(5))
	if err != nil {
		t.Fatal(err)
	}
	msg := &protocol.InvocationRequest{ActionName: "add", Metadata: map[string]string{"k": "v"},
		Payload: &protocol.InvocationRequest_Value{Value: a}}
	good, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	def := encoding.GetCodec("proto")
	if def == nil {
		t.Fatal("grpc-go registers no proto codec")
	}
	fails := func(what string, f func() error) bool {
		failed := false
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Logf("grpc-go's own codec panics on %s: %v", what, p)
					failed = true
				}
			}()
			if err := f(); err != nil {
				t.Logf("grpc-go's own codec fails on %s: %v", what, err)
				failed = true
			}
		}()
		return failed
	}
	m1 := fails("marshalling a oneof", func() error {
		b, err := def.Marshal(msg)
		if err == nil && string(b) != string(good) {
			return fmt.Errorf("wrong bytes")
		}
		return err
	})
	m2 := fails("unmarshalling", func() error {
		var back protocol.InvocationRequest
		err := def.Unmarshal(good, &back)
		if err == nil && !proto.Equal(&back, msg) {
			return fmt.Errorf("wrong message")
		}
		return err
	})
	if !m1 || !m2 {
		t.Fatalf("grpc-go's own codec handled APIv2 messages (marshal failed %v, unmarshal failed %v): Codec may be dropped", m1, m2)
	}
	var c Codec
	b, err := c.Marshal(msg)
	if err != nil || string(b) != string(good) {
		t.Fatal(err)
	}
	var back protocol.InvocationRequest
	if err := c.Unmarshal(b, &back); err != nil || !proto.Equal(&back, msg) {
		t.Fatalf("Codec round trip: %v %v", err, &back)
	}
	raw, err := c.Marshal(RawFrame(b))
	if err != nil || string(raw) != string(b) {
		t.Fatalf("RawFrame not passed through: %v", err)
	}
	if _, err := c.Marshal(struct{}{}); err == nil {
		t.Fatal("Codec marshalled a non-message")
	}
}

// TestJoinResults: a ResultBatch made of single-result HostMessages decodes
// as the batch of those results.
func TestJoinResults(t *testing.T) {
	var items [][]byte
	var want []uint64
	for i := uint64(1); i <= 3; i++ {
		b, _ := proto.Marshal(resultMsg(i * 1000))
		items = append(items, b)
		want = append(want, i*1000)
	}
	var got hostMsg
	if err := proto.Unmarshal(JoinResults(items), &got); err != nil {
		t.Fatal(err)
	}
	rs := got.GetResults().GetResults()
	if len(rs) != 3 {
		t.Fatalf("%d results in the batch", len(rs))
	}
	for i, r := range rs {
		if r.GetRequestId() != want[i] {
			t.Fatalf("result %d: id %d, want %d", i, r.GetRequestId(), want[i])
		}
	}
}

func i64(v int64) *wrapperspb.Int64Value   { return wrapperspb.Int64(v) }
func str(v string) *wrapperspb.StringValue { return wrapperspb.String(v) }

// testHost serves the actors every test below uses.
func testHost(t *testing.T, addr string, o HostOptions) *Host {
	t.Helper()
	if o.Log == nil {
		o.Log = quiet
	}
	h, err := NewHost(addr, sys, o)
	if err != nil {
		t.Fatal(err)
	}
	add := func(c *Context) (proto.Message, error) {
		var st, in wrapperspb.Int64Value
		if err := c.UnpackState(&st); err != nil {
			return nil, err
		}
		if err := c.UnpackPayload(&in); err != nil {
			return nil, err
		}
		next := i64(st.Value + in.Value)
		c.SetState(next)
		c.Tags["last"] = fmt.Sprint(in.Value)
		if c.Metadata["checkpoint"] == "1" {
			c.Checkpoint()
		}
		return next, nil
	}
	get := func(c *Context) (proto.Message, error) { return c.State, nil }
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.AddActor(ActorDef{Name: "counter", StateType: "google.protobuf.Int64Value", Actions: map[string]Handler{
		"add": add, "get": get,
		"tags": func(c *Context) (proto.Message, error) { return str(c.Tags["last"]), nil },
		"fail": func(c *Context) (proto.Message, error) { return nil, Errorf(codes.FailedPrecondition, "no") },
		"meta": func(c *Context) (proto.Message, error) { return str(c.Metadata["k"]), nil },
		"slow": func(c *Context) (proto.Message, error) {
			<-c.Done()
			return nil, Errorf(codes.DeadlineExceeded, "%v", c.Err())
		},
		"panic": func(c *Context) (proto.Message, error) { panic("boom") },
	}}))
	must(h.AddActor(ActorDef{Name: "relay", Actions: map[string]Handler{
		"pipe": func(c *Context) (proto.Message, error) { c.Pipe("counter", "add"); return i64(10), nil },
		"fwd":  func(c *Context) (proto.Message, error) { c.Forward("counter", "add"); return nil, nil },
		"effect": func(c *Context) (proto.Message, error) {
			return nil, c.SideEffect("sink", "record", str("effect"), nil)
		},
		"scheduled": func(c *Context) (proto.Message, error) {
			return nil, c.SideEffect("sink", "record", str("later"), &EffectOptions{ScheduledTo: time.Now().Add(300 * time.Millisecond)})
		},
		"shout": func(c *Context) (proto.Message, error) { return nil, c.Broadcast("news", str("news")) },
	}}))
	must(h.AddActor(ActorDef{Name: "sink", StateType: "google.protobuf.StringValue",
		Channels: []Channel{{Topic: "news", Action: "record"}},
		Actions: map[string]Handler{
			"record": func(c *Context) (proto.Message, error) {
				var st, in wrapperspb.StringValue
				c.UnpackState(&st)
				if err := c.UnpackPayload(&in); err != nil {
					return nil, err
				}
				return nil, c.SetState(str(st.Value + "[" + in.Value + "]"))
			},
			"get": get,
		}}))
	must(h.AddActor(ActorDef{Name: "ticker", StateType: "google.protobuf.Int64Value",
		Timers: map[string]time.Duration{"tick": 20 * time.Millisecond},
		Actions: map[string]Handler{
			"tick": func(c *Context) (proto.Message, error) {
				var st wrapperspb.Int64Value
				c.UnpackState(&st)
				return nil, c.SetState(i64(st.Value + 1))
			},
			"get": get,
		}}))
	must(h.AddActor(ActorDef{Name: "worker", Kind: Unnamed, StateType: "google.protobuf.Int64Value",
		Actions: map[string]Handler{
			"whoami": func(c *Context) (proto.Message, error) {
				return str(c.Actor + "/" + c.ActorID.GetParent()), nil
			},
		}}))
	must(h.AddActor(ActorDef{Name: "pool", Kind: Pooled, Actions: map[string]Handler{
		"echo": func(c *Context) (proto.Message, error) { return c.Payload, nil },
	}}))
	h.Start()
	t.Cleanup(h.Stop)
	waitRegistered(t, h)
	return h
}

func newClient(t *testing.T, addr string, o ClientOptions) *Client {
	t.Helper()
	c, err := NewClient(addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func call(t *testing.T, c *Client, actor, action string, in proto.Message, out proto.Message) {
	t.Helper()
	reply, err := c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: actor, Action: action, Payload: in})
	if err != nil {
		t.Fatalf("%s.%s: %v", actor, action, err)
	}
	if out != nil {
		if err := Unpack(reply, out); err != nil {
			t.Fatalf("%s.%s: %v", actor, action, err)
		}
	}
}

// eventually polls cond (a readiness wait with a deadline) until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within 15 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestActionsStateErrorsAndWorkflows(t *testing.T) {
	g := startGateway(t, t.TempDir(), "")
	testHost(t, g.addr, HostOptions{})
	c := newClient(t, g.addr, ClientOptions{})
	var v wrapperspb.Int64Value
	call(t, c, "counter", "add", i64(2), &v)
	call(t, c, "counter", "add", i64(3), &v)
	if v.Value != 5 {
		t.Fatalf("counter = %d, want 5", v.Value)
	}
	var s wrapperspb.StringValue
	call(t, c, "counter", "tags", nil, &s)
	if s.Value != "3" {
		t.Fatalf("tag last = %q, want 3", s.Value)
	}
	// metadata reaches the handler; checkpoint answers after the save
	r, err := c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "meta", Metadata: map[string]string{"k": "hello"}})
	if err != nil || Unpack(r, &s) != nil || s.Value != "hello" {
		t.Fatalf("meta: %v %q", err, s.Value)
	}
	if _, err := c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "add", Payload: i64(1), Metadata: map[string]string{"checkpoint": "1"}}); err != nil {
		t.Fatal(err)
	}
	// a handler's code and message reach the caller as they are
	_, err = c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "fail"})
	if Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "no") {
		t.Fatalf("fail: %v", err)
	}
	_, err = c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "panic"})
	if Code(err) != codes.Unknown {
		t.Fatalf("panic: %v", err)
	}
	_, err = c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "nosuch"})
	if Code(err) != codes.NotFound {
		t.Fatalf("unknown action: %v", err)
	}
	// the deadline reaches the handler
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	t0 := time.Now()
	_, err = c.Invoke(ctx, InvokeRequest{System: sys, Actor: "counter", Action: "slow"})
	cancel()
	if Code(err) != codes.DeadlineExceeded || time.Since(t0) > 5*time.Second {
		t.Fatalf("slow: %v after %v", err, time.Since(t0))
	}
	// pipe: relay's reply 10 goes to counter.add; forward: relay's input does
	call(t, c, "relay", "pipe", nil, &v)
	if v.Value != 16 {
		t.Fatalf("pipe: %d, want 16", v.Value)
	}
	call(t, c, "relay", "fwd", i64(4), &v)
	if v.Value != 20 {
		t.Fatalf("forward: %d, want 20", v.Value)
	}
	// side effect, broadcast, scheduled side effect
	call(t, c, "relay", "effect", nil, nil)
	call(t, c, "relay", "shout", nil, nil)
	call(t, c, "relay", "scheduled", nil, nil)
	eventually(t, "effect, broadcast and scheduled effect recorded", func() bool {
		call(t, c, "sink", "get", nil, &s)
		return strings.Contains(s.Value, "[effect]") && strings.Contains(s.Value, "[news]") && strings.Contains(s.Value, "[later]")
	})
	// a timer runs while the actor is active
	call(t, c, "ticker", "get", nil, &v)
	eventually(t, "timer ticks", func() bool {
		call(t, c, "ticker", "get", nil, &v)
		return v.Value >= 3
	})
	// UNNAMED: an instance from the template, spawned or made on first use
	if err := c.Spawn(context.Background(), sys, "worker", "w-1"); err != nil {
		t.Fatal(err)
	}
	call(t, c, "w-1", "whoami", nil, &s)
	if s.Value != "w-1/worker" {
		t.Fatalf("whoami: %q", s.Value)
	}
	r, err = c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "w-2", Action: "whoami", RegisterRef: "worker"})
	if err != nil || Unpack(r, &s) != nil || s.Value != "w-2/worker" {
		t.Fatalf("whoami w-2: %v %q", err, s.Value)
	}
	// async: answered once queued
	if r, err := c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "add", Payload: i64(1), Async: true}); err != nil || r != nil {
		t.Fatalf("async: %v %v", err, r)
	}
	// hostile input is refused by the gateway with a clear code
	_, err = c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "add", Metadata: map[string]string{"spawn-x": "1"}})
	if Code(err) != codes.InvalidArgument {
		t.Fatalf("reserved metadata: %v", err)
	}
	// a payload of another type fails in the handler
	_, err = c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "add", Payload: str("x")})
	if Code(err) != codes.InvalidArgument {
		t.Fatalf("wrong payload type: %v", err)
	}
}

// TestBatchedLinkUnderLoad: 256 calls at once to a pooled actor over the
// batched link, every answer right.
func TestBatchedLinkUnderLoad(t *testing.T) {
	g := startGateway(t, t.TempDir(), "")
	h := testHost(t, g.addr, HostOptions{})
	c := newClient(t, g.addr, ClientOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 256)
	for i := 0; i < 256; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "pool", Action: "echo", Payload: i64(int64(i)), Pooled: true})
			var v wrapperspb.Int64Value
			if err == nil {
				err = Unpack(r, &v)
			}
			if err == nil && v.Value != int64(i) {
				err = fmt.Errorf("call %d answered %d", i, v.Value)
			}
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := h.Stats()
	if !st.Batched {
		t.Fatal("the gateway did not grant the batched link")
	}
	t.Logf("%d results in %d messages (%d batches)", st.Results, st.Messages, st.Batches)
}

// TestReconnectAfterGatewayRestart: the host registers again by itself and
// the client's next call waits for the new gateway; the state survived.
func TestReconnectAfterGatewayRestart(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, dir, "")
	h := testHost(t, g.addr, HostOptions{})
	c := newClient(t, g.addr, ClientOptions{})
	var v wrapperspb.Int64Value
	r, err := c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "add", Payload: i64(7), Metadata: map[string]string{"checkpoint": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	g.stop(t, syscall.SIGTERM)
	g2 := startGateway(t, dir, g.addr)
	_ = g2
	eventually(t, "registered again", func() bool { return h.Registrations() >= 2 && h.Registered() })
	r, err = c.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "add", Payload: i64(1)})
	if err != nil || Unpack(r, &v) != nil || v.Value != 8 {
		t.Fatalf("after the restart: %v %d", err, v.Value)
	}
}

// TestTokensAndMutualTLS: with --access and TLS, the host and the client
// authenticate by certificate or token; a wrong token is UNAUTHENTICATED,
// a principal out of bounds PERMISSION_DENIED.
func TestTokensAndMutualTLS(t *testing.T) {
	mk := os.Getenv("SPAWN_MKCERTS")
	if mk == "" {
		t.Fatal("SPAWN_MKCERTS names no tests/tls/mkcerts.sh (the ctest test sets it)")
	}
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if out, err := exec.Command("bash", mk, certs).CombinedOutput(); err != nil {
		t.Fatalf("mkcerts: %v %s", err, out)
	}
	hash := func(tok string) string {
		cmd := exec.Command(gatewayBinary(t), "--hash-token")
		cmd.Stdin = strings.NewReader(tok + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("--hash-token: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	policy := fmt.Sprintf(`principals:
  - name: go-host
    tokens: [%s]
    host: [%s]
  - name: go-client
    identities: [uri:spiffe://spawn.test/client]
    invoke:
      - system: %s
  - name: other
    tokens: [%s]
    invoke:
      - system: elsewhere
`, hash("host-token-1"), sys, sys, hash("other-token-1"))
	pf := filepath.Join(dir, "access.yaml")
	os.WriteFile(pf, []byte(policy), 0o600)
	g := startGateway(t, dir, "", "--tls-cert", filepath.Join(certs, "server-chain.pem"),
		"--tls-key", filepath.Join(certs, "server.key"), "--tls-client-ca", filepath.Join(certs, "ca.pem"),
		"--access", pf)
	ca := filepath.Join(certs, "ca.pem")
	// The host: mutual TLS with host.pem, whose identity no principal
	// lists, so it is known by its token; the client by its certificate.
	testHost(t, g.addr, HostOptions{Security: Security{TLSCA: ca, TLSCert: filepath.Join(certs, "host.pem"),
		TLSKey: filepath.Join(certs, "host.key"), Token: "host-token-1", TLSServerName: "localhost", NoEnv: true}})
	c := newClient(t, g.addr, ClientOptions{Security: Security{TLSCA: ca, TLSCert: filepath.Join(certs, "client.pem"),
		TLSKey: filepath.Join(certs, "client.key"), TLSServerName: "localhost", NoEnv: true}})
	var v wrapperspb.Int64Value
	call(t, c, "counter", "add", i64(1), &v)
	if v.Value != 1 {
		t.Fatalf("counter = %d", v.Value)
	}
	bad := newClient(t, g.addr, ClientOptions{Security: Security{TLSCA: ca, TLSCert: filepath.Join(certs, "host.pem"),
		TLSKey: filepath.Join(certs, "host.key"), Token: "wrong-token", TLSServerName: "localhost", NoEnv: true}, FailFast: true})
	_, err := bad.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "get"})
	if Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong token: %v", err)
	}
	other := newClient(t, g.addr, ClientOptions{Security: Security{TLSCA: ca, TLSCert: filepath.Join(certs, "host.pem"),
		TLSKey: filepath.Join(certs, "host.key"), Token: "other-token-1", TLSServerName: "localhost", NoEnv: true}, FailFast: true})
	_, err = other.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "get"})
	if Code(err) != codes.PermissionDenied {
		t.Fatalf("out of bounds: %v", err)
	}
	// a CA that did not sign the gateway: the call fails (never reaches it)
	rogue := newClient(t, g.addr, ClientOptions{Security: Security{TLSCA: filepath.Join(certs, "rogue-ca.pem"), NoEnv: true}, FailFast: true})
	_, err = rogue.Invoke(context.Background(), InvokeRequest{System: sys, Actor: "counter", Action: "get"})
	if Code(err) != codes.Unavailable {
		t.Fatalf("rogue CA: %v", err)
	}
}

// TestBadOptions: settings that cannot work are refused at create.
func TestBadOptions(t *testing.T) {
	cases := []Security{
		{TLSCert: "x.pem", NoEnv: true},
		{TLSCA: "/nonexistent/ca.pem", NoEnv: true},
		{Token: "bad\ntoken", NoEnv: true},
		{TLSServerName: "x", NoEnv: true},
	}
	for i, s := range cases {
		if _, err := NewClient("127.0.0.1:1", ClientOptions{Security: s}); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	if _, err := NewClient("127.0.0.1:1,[::1]:2", ClientOptions{Security: Security{NoEnv: true}}); err == nil {
		t.Error("a list mixing families accepted")
	}
	if c, err := NewClient("127.0.0.1:1,127.0.0.1:2", ClientOptions{Security: Security{NoEnv: true}}); err != nil {
		t.Errorf("a list refused: %v", err)
	} else {
		c.Close()
	}
}
