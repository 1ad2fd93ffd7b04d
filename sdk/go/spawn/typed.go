package spawn

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// The typed layer the generated code (protoc-gen-spawn lang=go) stands on.

// ptrMsg is *T for a generated message type T.
type ptrMsg[T any] interface {
	*T
	proto.Message
}

// StatefulAction adapts a typed handler of a stateful actor: the state and
// the input are decoded (their defaults when absent), the reply encoded.
// A state or input of another type fails the call with INVALID_ARGUMENT.
func StatefulAction[S, I any, O proto.Message, PS ptrMsg[S], PI ptrMsg[I]](f func(*Context, PS, PI) (O, error)) Handler {
	return func(c *Context) (proto.Message, error) {
		state, in := PS(new(S)), PI(new(I))
		if err := c.UnpackState(state); err != nil {
			return nil, err
		}
		if err := c.UnpackPayload(in); err != nil {
			return nil, err
		}
		return f(c, state, in)
	}
}

// StatelessAction adapts a typed handler of a stateless actor.
func StatelessAction[I any, O proto.Message, PI ptrMsg[I]](f func(*Context, PI) (O, error)) Handler {
	return func(c *Context) (proto.Message, error) {
		in := PI(new(I))
		if err := c.UnpackPayload(in); err != nil {
			return nil, err
		}
		return f(c, in)
	}
}

// Unimplemented is what a generated skeleton's action answers until it is
// overridden.
func Unimplemented(actor, action string) error {
	return Errorf(codes.Unimplemented, "%s.%s is not implemented", actor, action)
}

// ActorClient calls one actor type's actions (the generated typed clients
// wrap it).
type ActorClient struct {
	Client  *Client
	System  string
	Actor   string // the contract's actor (for UNNAMED: the template)
	Unnamed bool
	Pooled  bool
}

// CallOptions of one typed call.
type CallOptions struct {
	Actor    string            // the actor (UNNAMED: the instance); default: the contract's
	Metadata map[string]string // handed to the action
	Async    bool              // answered once queued; the reply is the empty message
}

// Call invokes action with in and decodes the reply into out (Noop: out's
// defaults). A reply of another type is INTERNAL.
func (a *ActorClient) Call(ctx context.Context, action string, in, out proto.Message, o *CallOptions) error {
	if o == nil {
		o = &CallOptions{}
	}
	r := InvokeRequest{System: a.System, Actor: a.Actor, Action: action, Payload: in,
		Metadata: o.Metadata, Async: o.Async, Pooled: a.Pooled}
	if o.Actor != "" {
		r.Actor = o.Actor
	}
	if a.Unnamed {
		r.RegisterRef = a.Actor
	}
	reply, err := a.Client.Invoke(ctx, r)
	if err != nil {
		return err
	}
	return Unpack(reply, out)
}
