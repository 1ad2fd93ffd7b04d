# $banner$
#
# Typed clients and actor skeletons for $file$: thin shims over the spawn
# Ruby runtime (sdk/ruby: spawn_gateway, typed.rb), beside the messages
# protoc --ruby_out writes for the same file. For each actor X: X_ACTOR_NAME,
# XClient, XActor (the base class of an implementation) and register_x.
require "spawn_gateway"
$#rb_requires$
require "$rb_require|py$"
$/rb_requires$
$#rb_modules$
module $rb_module$
$/rb_modules$

# The descriptors of $file$ and its imports (a serialized
# google.protobuf.FileDescriptorSet): the gateway serves its actors as plain
# gRPC services and by reflection (docs/protocol.md, "Contracts").
$rb_const$_CONTRACT_DESCRIPTORS = "$contract_b64$".unpack1("m0")
$#actors$

# ---- actor $actor$ (service $actor_full$) ----

$rb_actor$_ACTOR_NAME = "$actor|py$"

# Typed client of actor $actor$ ($kind$).
class $actor$Client
  def initialize(client, system = "spawn-system")
    @a = SpawnGateway::Typed::ActorClient.new(client, system, $rb_actor$_ACTOR_NAME,
                                              unnamed: $?unnamed$true$/unnamed$$^unnamed$false$/unnamed$, pooled: $?pooled$true$/pooled$$^pooled$false$/pooled$)
  end
$#actions$

  # $action$($input$) -> $output$
  def $rb_method$(msg, actor: nil, metadata: nil, deadline: :default)
    @a.call("$action|py$", msg, SpawnGateway::Typed.msgclass("$output|py$"),
            actor: actor, metadata: metadata, deadline: deadline)
  end
$/actions$
end

# Base class of an implementation of actor $actor$: override the actions.
# Each returns the reply (nil: the empty message) or raises
# SpawnGateway::Error; the new state goes through ctx.state=.
class $actor$Actor
$#actions$
$?has_state$
  # $action$($input$) -> $output$
  def $rb_method$(_state, _msg, _ctx)
    raise SpawnGateway::Typed.unimplemented($rb_actor$_ACTOR_NAME, "$action|py$")
  end
$/has_state$
$^has_state$
  # $action$($input$) -> $output$
  def $rb_method$(_msg, _ctx)
    raise SpawnGateway::Typed.unimplemented($rb_actor$_ACTOR_NAME, "$action|py$")
  end
$/has_state$
$/actions$
end

# Declares actor $actor$ on host with the settings of its contract, its
# actions served by impl; its contract's descriptors go to the gateway.
# (A module function of the package's module; a file without a package
# makes it a top-level function.)
def $?rb_modules$self.$/rb_modules$register_$actor|snake$(host, impl)
  host.add_contract($rb_const$_CONTRACT_DESCRIPTORS)
  host.add_actor(
    name: $rb_actor$_ACTOR_NAME, kind: :$kind$, stateful: $?stateful$true$/stateful$$^stateful$false$/stateful$,
    state_type: "$?has_state$$state|py$$/has_state$",
    snapshot_ms: $snapshot_interval_ms$, deactivate_ms: $deactivate_timeout_ms$,
    actions: {
$#actions$
      "$action|py$" => $?has_state$SpawnGateway::Typed.stateful(impl, :$rb_method$, SpawnGateway::Typed.msgclass("$state|py$"),
                                                     SpawnGateway::Typed.msgclass("$input|py$"))$/has_state$$^has_state$SpawnGateway::Typed.stateless(impl, :$rb_method$, SpawnGateway::Typed.msgclass("$input|py$"))$/has_state$,
$/actions$
    }
  )
end
$/actors$
$#rb_modules$
end
$/rb_modules$
