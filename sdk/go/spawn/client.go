package spawn

import (
	"context"
	"fmt"
	"math/rand"
	"time"

	"github.com/eigr/go-support/eigr/actors"
	"github.com/eigr/go-support/eigr/protocol"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Method names of the gateway's client service.
const (
	InvokeMethod = "/spawn.gateway.v1.ActorGateway/Invoke"
	SpawnMethod  = "/spawn.gateway.v1.ActorGateway/Spawn"
)

// Retries of answers the gateway marks never dispatched (docs/protocol.md,
// "Retryable answers"): 10 ms doubling to 100 ms, +-20%, until the call's
// deadline; a call without a deadline retries this long.
const (
	retryMin        = 10 * time.Millisecond
	retryMax        = 100 * time.Millisecond
	retryNoDeadline = 5 * time.Second
)

// ClientOptions configure a Client. The zero value is usable.
type ClientOptions struct {
	Security
	// Deadline of a call whose context has none; default 30 s; <0: none.
	Deadline time.Duration
	// FailFast: a call fails at once with UNAVAILABLE while no connection
	// can be made, and answers marked `spawn-retry: not-dispatched` are not
	// retried. Default false: a call with a deadline waits for the gateway
	// (wait-for-ready) and marked answers are retried until the deadline.
	FailFast bool
	// DialOptions are appended to the runtime's own.
	DialOptions []grpc.DialOption
}

// Client calls the gateway's ActorGateway service (Invoke, Spawn). Safe for
// concurrent use.
type Client struct {
	target   string
	conn     *grpc.ClientConn
	d        *dialer
	deadline time.Duration
	failFast bool
}

// NewClient makes a client of the gateway at target ("HOST:PORT",
// "unix:/path", "dns:///NAME:PORT" or a list "10.0.0.1:8090,10.0.0.2:8090").
// It does not wait for a connection.
func NewClient(target string, o ClientOptions) (*Client, error) {
	d, err := newDialer(target, o.Security)
	if err != nil {
		return nil, err
	}
	opts := append(append([]grpc.DialOption{}, d.opts...), o.DialOptions...)
	conn, err := grpc.Dial(d.target, opts...)
	if err != nil {
		return nil, err
	}
	dl := o.Deadline
	if dl == 0 {
		dl = 30 * time.Second
	}
	return &Client{target: target, conn: conn, d: d, deadline: dl, failFast: o.FailFast}, nil
}

// Close closes the connection; calls in flight fail with CANCELLED.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the client's connection (its calls need grpc.ForceCodec(Codec{}),
// which the connection sets as default).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// InvokeRequest is one invocation.
type InvokeRequest struct {
	System string
	Actor  string // the actor's name (for an UNNAMED actor: the instance's)
	Action string
	// Payload: the input (nil sends Noop). An *anypb.Any is sent as it is.
	Payload proto.Message
	// Async: accepted and answered at once; the reply is nil.
	Async bool
	// Metadata handed to the action (keys starting with "spawn-" are the
	// gateway's and refused).
	Metadata map[string]string
	// RegisterRef: the UNNAMED template to instantiate Actor from on first use.
	RegisterRef string
	Pooled      bool
	// ScheduledTo: run at this time (the zero time: now). The gateway stores
	// the call durably and answers once it is stored.
	ScheduledTo time.Time
}

// Invoke runs system/actor/action and returns the reply (nil when the
// action answered Noop, and for async calls). Errors are *Error with the
// gateway's code and message (NOT_FOUND, UNAVAILABLE, DEADLINE_EXCEEDED, a
// host's own code...).
func (c *Client) Invoke(ctx context.Context, r InvokeRequest) (*anypb.Any, error) {
	if r.System == "" || r.Actor == "" || r.Action == "" {
		return nil, Errorf(codes.InvalidArgument, "system, actor and action are required")
	}
	req := &protocol.InvocationRequest{
		System:      &actors.ActorSystem{Name: r.System},
		Actor:       &actors.Actor{Id: &actors.ActorId{Name: r.Actor, System: r.System, Parent: r.RegisterRef}},
		ActionName:  r.Action,
		Async:       r.Async,
		Metadata:    r.Metadata,
		Pooled:      r.Pooled,
		RegisterRef: r.RegisterRef,
	}
	if !r.ScheduledTo.IsZero() {
		req.ScheduledTo = r.ScheduledTo.UnixMilli()
	}
	if r.Payload != nil {
		a, err := toAny(r.Payload)
		if err != nil {
			return nil, Errorf(codes.InvalidArgument, "payload: %v", err)
		}
		req.Payload = &protocol.InvocationRequest_Value{Value: a}
	} else {
		req.Payload = &protocol.InvocationRequest_Noop{Noop: &protocol.Noop{}}
	}
	resp := new(protocol.InvocationResponse)
	if err := c.unary(ctx, InvokeMethod, req, resp); err != nil {
		return nil, err
	}
	if err := checkStatus(resp.GetStatus()); err != nil {
		return nil, err
	}
	return resp.GetValue(), nil
}

// Spawn creates instances named names[i] of the UNNAMED template parent
// (ActorGateway.Spawn).
func (c *Client) Spawn(ctx context.Context, system, parent string, names ...string) error {
	if system == "" || parent == "" || len(names) == 0 {
		return Errorf(codes.InvalidArgument, "system, parent and at least one name are required")
	}
	req := &protocol.SpawnRequest{}
	for _, n := range names {
		if n == "" {
			return Errorf(codes.InvalidArgument, "every instance needs a name")
		}
		req.Actors = append(req.Actors, &actors.ActorId{Name: n, System: system, Parent: parent})
	}
	resp := new(protocol.SpawnResponse)
	if err := c.unary(ctx, SpawnMethod, req, resp); err != nil {
		return err
	}
	return checkStatus(resp.GetStatus())
}

func (c *Client) unary(ctx context.Context, method string, req, resp proto.Message) error {
	if _, ok := ctx.Deadline(); !ok && c.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.deadline)
		defer cancel()
	}
	dl, bounded := ctx.Deadline()
	end := dl
	if !bounded {
		end = time.Now().Add(retryNoDeadline)
	}
	// Only a call with a deadline waits: one without would wait for ever
	// for a gateway that is gone.
	wait := bounded && !c.failFast
	ctx = c.d.withToken(ctx)
	for attempt := 0; ; attempt++ {
		var trailer metadata.MD
		err := c.conn.Invoke(ctx, method, req, resp, grpc.WaitForReady(wait), grpc.Trailer(&trailer))
		if err == nil {
			return nil
		}
		e := asError(err)
		if wait && e.Code == codes.DeadlineExceeded && c.conn.GetState() != connectivity.Ready {
			e.Message = fmt.Sprintf("%s (no connection to the gateway at %s)", e.Message, c.target)
		}
		if e.Code != codes.Unavailable || !notDispatched(trailer) || c.failFast {
			return e
		}
		d := retryMin << uint(min(attempt, 16))
		if d > retryMax {
			d = retryMax
		}
		d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
		if time.Now().Add(d).After(end) {
			return e
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return e
		case <-t.C:
		}
	}
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// notDispatched: the gateway's trailer `spawn-retry: not-dispatched` (no
// host ever saw the call, so sending it again cannot run it twice).
func notDispatched(md metadata.MD) bool {
	for _, v := range md.Get("spawn-retry") {
		if v == "not-dispatched" {
			return true
		}
	}
	return false
}

// checkStatus: Spawn's RequestStatus inside an OK response can still report a failure.
func checkStatus(st *protocol.RequestStatus) error {
	if st == nil {
		return nil
	}
	switch st.GetStatus() {
	case protocol.Status_ACTOR_NOT_FOUND:
		m := st.GetMessage()
		if m == "" {
			m = "actor not found"
		}
		return &Error{Code: codes.NotFound, Message: m}
	case protocol.Status_ERROR:
		m := st.GetMessage()
		if m == "" {
			m = "the gateway reported an error"
		}
		return &Error{Code: codes.Unknown, Message: m}
	}
	return nil
}

// toAny packs m (an *anypb.Any is taken as it is).
func toAny(m proto.Message) (*anypb.Any, error) {
	if a, ok := m.(*anypb.Any); ok {
		return a, nil
	}
	if !m.ProtoReflect().IsValid() {
		return nil, fmt.Errorf("a nil %T", m)
	}
	return anypb.New(m)
}
