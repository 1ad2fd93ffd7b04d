# $banner$
"""Typed clients and actor skeletons for the actors of $file|py$.

Thin shims over the spawn Python SDK (sdk/python: spawn_host, spawn_client)
and the modules protoc --python_out writes for the same contracts; put both
on sys.path. For each actor X:

  XClient(client, system="spawn-system")
      one method per action: method(msg, actor=None, timeout=..., metadata=None)
      sends msg (the action's input message) and returns the reply message;
      actor None means the contract's name. Raises spawn_client.SpawnError
      (code, message).
  XActor
      the base class of an implementation: override one method per action.
      Stateful actors: method(self, state, msg, ctx) -> (new_state, reply),
      None keeping the state / replying no value. Stateless actors:
      method(self, msg, ctx) -> reply or None. Raise spawn_host.ActorError
      to fail the call with a gRPC code; set ctx.checkpoint = True to save
      the state durably before the caller is answered. Actions not
      overridden answer UNIMPLEMENTED.
  register_x(host, impl)
      declares the actor on a spawn_host.ActorHost with the settings of its
      contract, its actions served by impl (an XActor).
"""
from typing import Optional, Tuple

import spawn_client
import spawn_host
from spawn_host import ActorError, StatusCode

$#py_imports$
$py_import$
$/py_imports$
$#actors$


# ---- Actor $actor$ (service $actor_full$) ----
#   kind $kind$, $?stateful$stateful, state $state$$/stateful$$^stateful$stateless$/stateful$
#   deactivate_timeout $deactivate_timeout_ms$ ms, snapshot_interval $snapshot_interval_ms$ ms
#   (0 = the gateway's default)

$actor|snake|upper$_ACTOR_NAME = "$actor|py$"
$?has_state$
$actor|snake|upper$_STATE_TYPE = "$state_url|py$"
$/has_state$


class $actor$Client:
    """Typed client of actor $actor|py$ ($kind$)."""

    def __init__(self, client: spawn_client.SpawnClient,
                 system: str = "spawn-system") -> None:
        self._client = client
        self._system = system
$#actions$

    def $py_method$(self, msg: $input_py$, actor: Optional[str] = None, *,
            timeout=spawn_client.DEFAULT,
            metadata: Optional[dict] = None) -> $output_py$:
        """Invoke $action|py$($input|py$) -> $output|py$."""
        return self._client.call(
            self._system, actor or $actor|snake|upper$_ACTOR_NAME, "$action|py$", msg,
            $output_py$, input_type=$input_py$,
$?unnamed$
            parent=$actor|snake|upper$_ACTOR_NAME,
$/unnamed$
$?pooled$
            pooled=True,
$/pooled$
            metadata=metadata, timeout=timeout)
$/actions$


class $actor$Actor:
    """Base class of an implementation of actor $actor|py$: override the actions."""
$#actions$

$?has_state$
    def $py_method$(self, state: $state_py$, msg: $input_py$,
            ctx: spawn_host.Context
            ) -> Optional[Tuple[Optional[$state_py$], Optional[$output_py$]]]:
        """$action|py$($input|py$) -> $output|py$"""
        raise ActorError(StatusCode.UNIMPLEMENTED,
                         "$actor|py$.$action|py$ is not implemented")
$/has_state$
$^has_state$
    def $py_method$(self, msg: $input_py$,
            ctx: spawn_host.Context) -> Optional[$output_py$]:
        """$action|py$($input|py$) -> $output|py$"""
        raise ActorError(StatusCode.UNIMPLEMENTED,
                         "$actor|py$.$action|py$ is not implemented")
$/has_state$
$/actions$


def register_$actor|snake$(host: spawn_host.ActorHost,
        impl: $actor$Actor) -> spawn_host.ActorHost:
    """Declare actor $actor|py$ on host with the settings of its contract,
    its actions served by impl."""
    return spawn_host.add_typed_actor(
        host, impl, $actor|snake|upper$_ACTOR_NAME, kind="$kind$",
        stateful=$?stateful$True$/stateful$$^stateful$False$/stateful$,
        state_type=$?has_state$$state_py$$/has_state$$^has_state$None$/has_state$,
        snapshot_ms=$snapshot_interval_ms$, deactivate_ms=$deactivate_timeout_ms$,
        actions=(
$#actions$
            ("$action|py$", "$py_method$", $input_py$, $output_py$),
$/actions$
        ))
$/actors$
