// $banner$
//
// Typed clients and actor skeletons for $file$: thin shims over the spawn Go
// runtime ($go_runtime$, typed.go), beside the messages protoc-gen-go
// writes for the same file. For each actor X: XActorName, XActor (the
// interface an implementation provides), UnimplementedXActor, RegisterX
// and XClient.

package $go_package$
$?has_actors$

import (
	"context"
	"encoding/base64"
	"time"

$#go_imports$
	$go_alias$ "$go_path|js$"
$/go_imports$
$?go_imports$

$/go_imports$
	spawn "$go_runtime|js$"
)

// $go_desc_var$ are the descriptors of $file$ and its imports (a serialized
// google.protobuf.FileDescriptorSet): the gateway serves its actors as plain
// gRPC services and by reflection (docs/protocol.md, "Contracts").
var $go_desc_var$, _ = base64.StdEncoding.DecodeString("$contract_b64$")
$#actors$

// ---- actor $actor$ (service $actor_full$) ----

// $actor$ActorName is the name of actor $actor$ ($kind$) on the wire.
const $actor$ActorName = "$actor|js$"

// $actor$Actor is an implementation of actor $actor$: one method per
// action. A method returns the reply (nil: the empty message) or an error
// (spawn.Errorf for a code); the new state goes through ctx.SetState, a
// checkpoint through ctx.Checkpoint, workflows through ctx.Pipe, Forward,
// SideEffect and Broadcast.
type $actor$Actor interface {
$#actions$
$?has_state$
	// $go_method$ runs $action$($input$) -> $output$.
	$go_method$(ctx *spawn.Context, state *$state_go$, in *$input_go$) (*$output_go$, error)
$/has_state$
$^has_state$
	// $go_method$ runs $action$($input$) -> $output$.
	$go_method$(ctx *spawn.Context, in *$input_go$) (*$output_go$, error)
$/has_state$
$/actions$
}

// Unimplemented$actor$Actor answers UNIMPLEMENTED for every action: embed it
// to implement some of them.
type Unimplemented$actor$Actor struct{}
$#actions$

$?has_state$
// $go_method$ answers UNIMPLEMENTED.
func (Unimplemented$actor$Actor) $go_method$(*spawn.Context, *$state_go$, *$input_go$) (*$output_go$, error) {
	return nil, spawn.Unimplemented($actor$ActorName, "$action|js$")
}
$/has_state$
$^has_state$
// $go_method$ answers UNIMPLEMENTED.
func (Unimplemented$actor$Actor) $go_method$(*spawn.Context, *$input_go$) (*$output_go$, error) {
	return nil, spawn.Unimplemented($actor$ActorName, "$action|js$")
}
$/has_state$
$/actions$

// Register$actor$ declares actor $actor$ on h with the settings of its
// contract, its actions served by impl; its contract's descriptors go to
// the gateway.
func Register$actor$(h *spawn.Host, impl $actor$Actor) error {
	h.AddContract($go_desc_var$)
	actions := map[string]spawn.Handler{}
$#actions$
	actions["$action|js$"] = spawn.$?has_state$StatefulAction$/has_state$$^has_state$StatelessAction$/has_state$(impl.$go_method$)
$/actions$
	return h.AddActor(spawn.ActorDef{
		Name:       $actor$ActorName,
		Kind:       $go_kind$,
		Stateless:  $?stateful$false$/stateful$$^stateful$true$/stateful$,
		StateType:  "$?has_state$$go_state_type|js$$/has_state$",
		Snapshot:   $snapshot_interval_ms$ * time.Millisecond,
		Deactivate: $deactivate_timeout_ms$ * time.Millisecond,
		Actions:    actions,
	})
}

// $actor$Client is the typed client of actor $actor$ ($kind$).
type $actor$Client struct {
	a spawn.ActorClient
}

// New$actor$Client calls actor $actor$ of system through c.
func New$actor$Client(c *spawn.Client, system string) *$actor$Client {
	return &$actor$Client{a: spawn.ActorClient{Client: c, System: system, Actor: $actor$ActorName,
		Unnamed: $?unnamed$true$/unnamed$$^unnamed$false$/unnamed$, Pooled: $?pooled$true$/pooled$$^pooled$false$/pooled$}}
}
$#actions$

// $go_method$ invokes $action$($input$) -> $output$; o (may be nil) names
// the instance$?unnamed$ (required: an UNNAMED actor)$/unnamed$ and the metadata.
func (c *$actor$Client) $go_method$(ctx context.Context, in *$input_go$, o *spawn.CallOptions) (*$output_go$, error) {
	out := new($output_go$)
	if err := c.a.Call(ctx, "$action|js$", in, out, o); err != nil {
		return nil, err
	}
	return out, nil
}
$/actions$
$/actors$
$/has_actors$
