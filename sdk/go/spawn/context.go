package spawn

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/eigr/go-support/eigr/actors"
	"github.com/eigr/go-support/eigr/protocol"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Context is what a handler knows about the invocation it runs, and what it
// hands back besides its reply. It is a context.Context, done when the
// invocation's deadline passes, the stream to the gateway ends or the host
// stops (the result can no longer be delivered).
//
// The workflow methods (Pipe, Forward, SideEffect, Broadcast) tell the
// gateway what to do after this turn; all of it is dropped when the handler
// fails. Every invocation a workflow makes has this actor as its caller and
// one hop more than this invocation; the gateway cuts chains past its hop
// limit (16) with INVALID_ARGUMENT.
//
// A Context belongs to one handler call: do not keep it past the return.
type Context struct {
	context.Context
	RequestID uint64
	// Deadline of the caller (the zero time: none); also ctx.Deadline().
	DeadlineAt time.Time
	ActorID    *actors.ActorId // the instance invoked (name, system, parent)
	Actor      string
	System     string
	Action     string
	// State is the actor's current state (nil: none, or stateless).
	State *anypb.Any
	// Payload is the input (nil for a Noop payload).
	Payload *anypb.Any
	Caller  *actors.ActorId
	// Metadata of the invocation (headers).
	Metadata map[string]string
	// Tags of the actor: edit them and they go back with the state and are
	// stored with it.
	Tags map[string]string
	// Invocation is the raw spawn.ActorInvocation.
	Invocation *protocol.ActorInvocation
	Host       *Host

	newState   *anypb.Any
	checkpoint bool
	route      *route
	effects    []*protocol.SideEffect
	bcast      *protocol.Broadcast
}

type route struct {
	forward       bool
	actor, action string
}

// SetState makes m the actor's new state (kept when the handler succeeds).
// Without a call the state stays as it is.
func (c *Context) SetState(m proto.Message) error {
	a, err := toAny(m)
	if err != nil {
		return fmt.Errorf("state: %v", err)
	}
	c.newState = a
	return nil
}

// Checkpoint asks the gateway to save the state durably before the caller
// is answered.
func (c *Context) Checkpoint() { c.checkpoint = true }

// UnpackState decodes the state into m (m's defaults when there is none).
// A state of another type is an error.
func (c *Context) UnpackState(m proto.Message) error { return unpackInto(c.State, m, "state") }

// UnpackPayload decodes the payload into m (m's defaults for Noop).
func (c *Context) UnpackPayload(m proto.Message) error {
	return unpackInto(c.Payload, m, "payload")
}

// Pipe: after this turn, send the handler's reply as input to actor's
// action in this system; the caller receives that action's reply instead.
// Replaces an earlier Pipe or Forward of this turn.
func (c *Context) Pipe(actor, action string) {
	c.route = &route{actor: actor, action: action}
}

// Forward: after this turn, send this invocation's own input to actor's
// action in this system; the caller receives that action's reply.
func (c *Context) Forward(actor, action string) {
	c.route = &route{forward: true, actor: actor, action: action}
}

// EffectOptions: where a side effect goes besides actor and action.
type EffectOptions struct {
	System      string            // the target's actor system; default: this actor's
	RegisterRef string            // the UNNAMED template to instantiate the target from
	Metadata    map[string]string // handed to the target
	Pooled      bool              // the target is POOLED
	// ScheduledTo: fire at this time (still ahead): the gateway stores the
	// effect durably and fires it then, even across a restart. Zero: now.
	ScheduledTo time.Time
}

// SideEffect fires actor.action with payload (nil: Noop) after this turn
// (after its state is saved for a checkpointed turn). Fire and forget: it
// never delays the reply; the gateway retries failures with backoff. Several
// calls fire several effects, in order.
func (c *Context) SideEffect(actor, action string, payload proto.Message, o *EffectOptions) error {
	if actor == "" || action == "" {
		return fmt.Errorf("a side effect needs an actor and an action")
	}
	if o == nil {
		o = &EffectOptions{}
	}
	sys := o.System
	if sys == "" {
		sys = c.System
	}
	req := &protocol.InvocationRequest{
		System:      &actors.ActorSystem{Name: sys},
		Actor:       &actors.Actor{Id: &actors.ActorId{Name: actor, System: sys, Parent: o.RegisterRef}},
		ActionName:  action,
		Async:       true,
		Pooled:      o.Pooled,
		RegisterRef: o.RegisterRef,
		Metadata:    o.Metadata,
	}
	if !o.ScheduledTo.IsZero() {
		req.ScheduledTo = o.ScheduledTo.UnixMilli()
	}
	if payload != nil {
		a, err := toAny(payload)
		if err != nil {
			return fmt.Errorf("side effect payload: %v", err)
		}
		req.Payload = &protocol.InvocationRequest_Value{Value: a}
	} else {
		req.Payload = &protocol.InvocationRequest_Noop{Noop: &protocol.Noop{}}
	}
	c.effects = append(c.effects, &protocol.SideEffect{Request: req})
	return nil
}

// Broadcast: after this turn, send payload (nil: Noop) to every actor of
// this system subscribed to channel; each gets one fire-and-forget
// invocation of its channel's action. One broadcast per turn: a later call
// replaces an earlier one.
func (c *Context) Broadcast(channel string, payload proto.Message) error {
	if channel == "" {
		return fmt.Errorf("a broadcast needs a channel")
	}
	b := &protocol.Broadcast{ChannelGroup: channel}
	if payload != nil {
		a, err := toAny(payload)
		if err != nil {
			return fmt.Errorf("broadcast payload: %v", err)
		}
		b.Payload = &protocol.Broadcast_Value{Value: a}
	} else {
		b.Payload = &protocol.Broadcast_Noop{Noop: &protocol.Noop{}}
	}
	c.bcast = b
	return nil
}

// workflow is the spawn.Workflow asked for, nil when none.
func (c *Context) workflow() *protocol.Workflow {
	if c.route == nil && len(c.effects) == 0 && c.bcast == nil {
		return nil
	}
	wf := &protocol.Workflow{Effects: c.effects, Broadcast: c.bcast}
	if r := c.route; r != nil {
		if r.forward {
			wf.Routing = &protocol.Workflow_Forward{Forward: &protocol.Forward{Actor: r.actor, ActionName: r.action}}
		} else {
			wf.Routing = &protocol.Workflow_Pipe{Pipe: &protocol.Pipe{Actor: r.actor, ActionName: r.action}}
		}
	}
	return wf
}

// typeName is the message name of a type URL (after the last '/').
func typeName(url string) string {
	if i := strings.LastIndexByte(url, '/'); i >= 0 {
		return url[i+1:]
	}
	return url
}

// unpackInto decodes a (nil or an empty Any: m's defaults) into m.
func unpackInto(a *anypb.Any, m proto.Message, what string) error {
	proto.Reset(m)
	if a == nil || (a.TypeUrl == "" && len(a.Value) == 0) {
		return nil
	}
	want := string(m.ProtoReflect().Descriptor().FullName())
	if typeName(a.TypeUrl) != want {
		return Errorf(codes.InvalidArgument, "%s: expected %s, got %s", what, want, orNone(a.TypeUrl))
	}
	if err := proto.Unmarshal(a.Value, m); err != nil {
		return Errorf(codes.InvalidArgument, "%s: cannot decode %s: %v", what, want, err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(no type)"
	}
	return s
}

// Unpack decodes a reply (nil: m's defaults) into m; another type is an
// *Error INTERNAL.
func Unpack(a *anypb.Any, m proto.Message) error {
	if err := unpackInto(a, m, "reply"); err != nil {
		return &Error{Code: codes.Internal, Message: asError(err).Message}
	}
	return nil
}
