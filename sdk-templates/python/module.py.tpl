# $banner$
"""Typed clients and actor skeletons for the actors of $file|py$.

Thin shims over spawn_typed (sdk/python), whose docstring says what each
name does: for each actor X, X_CONTRACT, XClient, XActor and register_x.
"""
import base64
from typing import Optional, Tuple

import spawn_client
import spawn_host
import spawn_typed

$#py_imports$
$py_import$
$/py_imports$

# The descriptors of $file|py$ and its imports (a serialized
# google.protobuf.FileDescriptorSet): the gateway serves its actors as plain
# gRPC services and by reflection (docs/protocol.md, "Contracts").
CONTRACT_DESCRIPTORS = base64.b64decode("$contract_b64$")
$#actors$


# ---- Actor $actor$ (service $actor_full$) ----

$actor|snake|upper$_ACTOR_NAME = "$actor|py$"
$?has_state$
$actor|snake|upper$_STATE_TYPE = "$state_url|py$"
$/has_state$
$actor|snake|upper$_CONTRACT = spawn_typed.ActorContract(
    $actor|snake|upper$_ACTOR_NAME, kind="$kind$",
    stateful=$?stateful$True$/stateful$$^stateful$False$/stateful$, state_type=$?has_state$$state_py$$/has_state$$^has_state$None$/has_state$,
    snapshot_ms=$snapshot_interval_ms$, deactivate_ms=$deactivate_timeout_ms$,
    actions=(
$#actions$
        ("$action|py$", "$py_method$", $input_py$, $output_py$),
$/actions$
    ))


class $actor$Client:
    """Typed client of actor $actor|py$ ($kind$)."""

    def __init__(self, client: spawn_client.SpawnClient,
                 system: str = "spawn-system") -> None:
        self._actor = spawn_typed.ActorClient(client, system, $actor|snake|upper$_CONTRACT)
$#actions$

    def $py_method$(self, msg: $input_py$, actor: Optional[str] = None, *,
            timeout=spawn_client.DEFAULT,
            metadata: Optional[dict] = None) -> $output_py$:
        """Invoke $action|py$($input|py$) -> $output|py$."""
        return self._actor.call("$action|py$", msg, actor, timeout, metadata)
$/actions$


class $actor$Actor:
    """Base class of an implementation of actor $actor|py$: override the actions."""
$#actions$

$?has_state$
    def $py_method$(self, state: $state_py$, msg: $input_py$,
            ctx: spawn_host.Context
            ) -> Optional[Tuple[Optional[$state_py$], Optional[$output_py$]]]:
        """$action|py$($input|py$) -> $output|py$"""
        raise spawn_typed.unimplemented($actor|snake|upper$_ACTOR_NAME, "$action|py$")
$/has_state$
$^has_state$
    def $py_method$(self, msg: $input_py$,
            ctx: spawn_host.Context) -> Optional[$output_py$]:
        """$action|py$($input|py$) -> $output|py$"""
        raise spawn_typed.unimplemented($actor|snake|upper$_ACTOR_NAME, "$action|py$")
$/has_state$
$/actions$


def register_$actor|snake$(host: spawn_host.ActorHost,
        impl: $actor$Actor) -> spawn_host.ActorHost:
    """Declare actor $actor|py$ on host with the settings of its contract,
    its actions served by impl; its contract's descriptors go to the gateway."""
    host.add_contract(CONTRACT_DESCRIPTORS)
    return spawn_typed.register_actor(host, impl, $actor|snake|upper$_CONTRACT)
$/actors$
