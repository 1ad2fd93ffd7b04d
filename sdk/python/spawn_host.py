"""A small actor-host runtime for the spawn gateway.

The host dials the gateway on the bidi stream
``/spawn.gateway.v1.HostGateway/Connect``, registers its actors, then runs
the ``InvocationTask``s the gateway sends and answers each with an
``InvocationResult`` (in any order; several may be in flight).

This module contains no generated code. Generate the protobuf modules with
``sdk/python/gen.sh OUTDIR`` and put OUTDIR on ``sys.path`` (or pass
``proto_path=OUTDIR`` to :class:`ActorHost`) before creating a host.

Handlers have the signature::

    handler(state, payload, ctx) -> (new_state, reply, checkpoint)

``state`` is the actor's current state as a ``google.protobuf.Any`` (None when
the actor has none yet, or is stateless); ``payload`` is the invocation's
``Any`` (None for a Noop payload). Use :func:`unpack` to turn either into a
message. ``new_state`` is a message (packed into an Any for you), an Any, or
None to keep the state unchanged. ``reply`` is a message, an Any, or None (a
Noop reply). ``checkpoint`` asks the gateway to save the state durably before
answering the caller. A handler may return a 2-tuple ``(new_state, reply)``.
Raise :class:`ActorError` to fail the call with a gRPC status code; any other
exception fails it with UNKNOWN.

Workflows: a handler may ask the gateway to go on after its turn through
``ctx`` (see :class:`Context`): ``ctx.pipe(actor, action)`` and
``ctx.forward(actor, action)`` route the caller's answer through another
action, ``ctx.side_effect(actor, action, payload)`` fires invocations after
the turn, ``ctx.broadcast(channel, payload)`` reaches every actor subscribed
to ``channel`` (``add_actor(..., channels=[...])``). A failing handler's
workflow is dropped.

TLS and tokens: ``tls_ca``, ``tls_cert``, ``tls_key``, ``tls_server_name``
and ``token`` (see :class:`Security`; each falls back to SPAWN_TLS_CA,
SPAWN_TLS_CERT, SPAWN_TLS_KEY, SPAWN_TLS_SERVER_NAME, SPAWN_TOKEN).
"""

import logging
import os
import platform
import queue
import random
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

__all__ = ["ActorHost", "ActorError", "Context", "unpack", "StatusCode",
           "CONNECT_METHOD", "DEFAULT_CHANNEL_ACTION", "typed_action",
           "add_typed_actor", "Security", "TLSConfigError", "gateway_target"]

__version__ = "0.1.0"

CONNECT_METHOD = "/spawn.gateway.v1.HostGateway/Connect"

# The action a channel subscription delivers to when it names none.
DEFAULT_CHANNEL_ACTION = "receive"
DEFAULT_MAX_MESSAGE = 4 << 20  # the gateway's default --max-message-bytes

log = logging.getLogger("spawn_host")

_in_handler = threading.local()


class StatusCode:
    """gRPC status codes, for ActorError."""
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class TLSConfigError(ValueError):
    """A TLS setting that cannot be used: a CA, certificate or key file that
    cannot be read or holds no PEM block, or a certificate without its key.
    Raised when the client or host is created."""


# A PEM file is small; anything larger is not one.
_MAX_PEM_BYTES = 1 << 20


def _pick(opt, env):
    """The option, else the environment variable; None or "" = none."""
    v = os.environ.get(env) if opt is None else opt
    return v or None


def _read_pem(what, path):
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_PEM_BYTES + 1)
    except OSError as e:
        raise TLSConfigError("cannot read the TLS %s file %s: %s"
                             % (what, path, e.strerror or e)) from None
    if len(data) > _MAX_PEM_BYTES:
        raise TLSConfigError("cannot read the TLS %s file %s: larger than 1 MiB"
                             % (what, path))
    if b"-----BEGIN " not in data:
        raise TLSConfigError("cannot read the TLS %s file %s: no PEM block in it"
                             % (what, path))
    return data


# Round robin over every address a target resolves to: any member of a
# cluster serves any call (gRPC's default, pick_first, would send every call
# to the first member that answers).
_SERVICE_CONFIG = '{"loadBalancingConfig":[{"round_robin":{}}]}'
_MAX_GATEWAYS = 64


def _gateway_entry(entry):
    """(family, host) of a numeric "HOST:PORT" ("[v6]:PORT"), else None."""
    if entry.startswith("["):
        host, sep, port = entry[1:].partition("]:")
        family = socket.AF_INET6
    else:
        host, sep, port = entry.rpartition(":")
        family = socket.AF_INET
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    try:
        socket.inet_pton(family, host)
    except (OSError, ValueError):
        return None
    return family, host


def gateway_target(target, tls=False, server_name=False):
    """The gRPC target and channel options for ``target``.

    ``target`` is any gRPC target ("127.0.0.1:8090", "dns:///gw.example:8090"
    - every address of the name is used -, "unix:/run/spawn.sock"), or a
    list of numeric gateway addresses "10.0.0.1:8090,10.0.0.2:8090" (IPv4,
    or IPv6 in brackets, one family; also as "ipv4:..." / "ipv6:..."),
    which becomes gRPC's "ipv4:"/"ipv6:" target. Every channel gets the
    round_robin policy; a list also gets its first entry as the authority
    (the name checked in the members' certificates unless a server name is
    given: with ``tls`` and no ``server_name`` the hosts of a list must be
    the same). Raises ValueError on a bad list.
    """
    body = target
    if target.startswith(("ipv4:", "ipv6:")):
        body = target[5:]
    elif "," not in target or "://" in target or target.startswith(("unix:", "unix-abstract:", "dns:")):
        return target, [("grpc.service_config", _SERVICE_CONFIG)]
    entries = [e.strip() for e in body.split(",")]
    if len(entries) > _MAX_GATEWAYS:
        raise ValueError("gateway list %r has more than %d entries" % (target, _MAX_GATEWAYS))
    parsed = []
    for i, e in enumerate(entries):
        p = _gateway_entry(e)
        if p is None:
            raise ValueError("gateway list %r: entry %d is not a numeric HOST:PORT (a list "
                             "takes IPv4 addresses or [IPv6] ones; for names use one DNS "
                             "name with several addresses, \"dns:///NAME:PORT\")"
                             % (target, i + 1))
        parsed.append(p)
    families = {f for f, _ in parsed}
    if len(families) > 1:
        raise ValueError("gateway list %r mixes IPv4 and IPv6 addresses" % target)
    if tls and not server_name and len({h for _, h in parsed}) > 1:
        raise TLSConfigError("gateway list %r: with TLS, addresses on different hosts need "
                             "tls_server_name (SPAWN_TLS_SERVER_NAME), a name every "
                             "member's certificate carries" % target)
    scheme = "ipv4:" if families == {socket.AF_INET} else "ipv6:"
    return scheme + ",".join(entries), [("grpc.service_config", _SERVICE_CONFIG),
                                        ("grpc.default_authority", entries[0])]


class Security:
    """How a host or client authenticates the gateway and itself to it.

    Each argument left None is read from its environment variable
    (``tls_ca``: SPAWN_TLS_CA, ``tls_cert``: SPAWN_TLS_CERT, ``tls_key``:
    SPAWN_TLS_KEY, ``tls_server_name``: SPAWN_TLS_SERVER_NAME, ``token``:
    SPAWN_TOKEN); "" means none and does not read the environment.

    With a CA (a PEM file) the channel is TLS: the gateway's certificate
    must chain to it and name the target's host (or ``tls_server_name``).
    With a certificate and key too (PEM files) it is mutual TLS, as a
    gateway started with ``--tls-client-ca`` requires. Without a CA it is
    plaintext. The files are read here, once: :class:`TLSConfigError` names
    a file that cannot be used. The token travels as ``authorization:
    Bearer <token>`` in the metadata of every call and of the host's
    stream; it is never logged (nor shown by repr).
    """

    def __init__(self, tls_ca=None, tls_cert=None, tls_key=None, token=None,
                 tls_server_name=None):
        ca = _pick(tls_ca, "SPAWN_TLS_CA")
        cert = _pick(tls_cert, "SPAWN_TLS_CERT")
        key = _pick(tls_key, "SPAWN_TLS_KEY")
        name = _pick(tls_server_name, "SPAWN_TLS_SERVER_NAME")
        token = _pick(token, "SPAWN_TOKEN")
        if token is not None and not all(" " <= c <= "~" for c in token):
            raise ValueError("the bearer token holds characters outside "
                             "printable ASCII")
        if bool(cert) != bool(key):
            raise TLSConfigError("a TLS client certificate needs its key and a "
                                 "key its certificate (tls_cert/SPAWN_TLS_CERT, "
                                 "tls_key/SPAWN_TLS_KEY)")
        if (cert or name) and not ca:
            raise TLSConfigError("a TLS client certificate or server name needs "
                                 "the gateway's CA (tls_ca/SPAWN_TLS_CA)")
        self.tls = ca is not None
        self.credentials = None
        if ca:
            self.credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_pem("CA", ca),
                private_key=_read_pem("key", key) if key else None,
                certificate_chain=_read_pem("certificate", cert) if cert else None)
        self.options = [("grpc.ssl_target_name_override", name)] if name else []
        self.metadata = (("authorization", "Bearer " + token),) if token else None

    def __repr__(self):
        return "Security(tls=%s, token=%s)" % (self.tls, "set" if self.metadata else "none")

    def channel(self, target, options=()):
        """A new channel to target (see :func:`gateway_target`: one address,
        a list of them, or a DNS name) with these credentials; options are
        gRPC channel options, after the target's and before the
        server-name override."""
        target, target_options = gateway_target(target, self.tls, bool(self.options))
        options = target_options + list(options) + self.options
        if self.credentials is not None:
            return grpc.secure_channel(target, self.credentials, options=options)
        return grpc.insecure_channel(target, options=options)


class ActorError(Exception):
    """Raised by a handler to fail an invocation with a gRPC status code.

    The gateway leaves the actor's state unchanged and hands ``code`` and
    ``message`` to the caller.
    """

    def __init__(self, code, message=""):
        super().__init__(message)
        self.code = int(code)
        self.message = str(message)

    def __repr__(self):
        return "ActorError(%d, %r)" % (self.code, self.message)


def _pb():
    """The generated modules, imported on first use."""
    from spawn.actors import actor_pb2, protocol_pb2
    from spawn.gateway.v1 import gateway_pb2
    from google.protobuf import any_pb2
    return actor_pb2, protocol_pb2, gateway_pb2, any_pb2


def _is_any(msg):
    return msg.DESCRIPTOR.full_name == "google.protobuf.Any"


def _pack(msg):
    """A message as a google.protobuf.Any (an Any is returned as is)."""
    any_pb2 = _pb()[3]
    if _is_any(msg):
        return msg
    a = any_pb2.Any()
    a.Pack(msg)
    return a


def unpack(any_msg, cls):
    """Unpack ``any_msg`` into a new ``cls``; None (or an empty Any) gives
    ``cls()``. Raises ActorError(INVALID_ARGUMENT) on a type mismatch."""
    out = cls()
    if any_msg is None or (not any_msg.type_url and not any_msg.value):
        return out
    if not any_msg.Is(cls.DESCRIPTOR):
        raise ActorError(StatusCode.INVALID_ARGUMENT,
                         "expected %s, got %s"
                         % (cls.DESCRIPTOR.full_name, any_msg.type_url))
    any_msg.Unpack(out)
    return out


def _nonempty(value, what):
    if not isinstance(value, str) or not value:
        raise ValueError("%s must be a non-empty string" % what)
    return value


class Context:
    """What a handler knows about the invocation it runs.

    ``tags`` may be modified; the updated tags go back with the state and
    are stored with it. (The gateway keeps the stored tags when a turn hands
    back none, so emptying ``tags`` does not reach the store.)

    The workflow methods tell the gateway what to do after this turn; all of
    it is dropped when the handler fails. Every invocation a workflow makes
    has this actor as its caller and one hop more than this invocation; the
    gateway cuts chains past its hop limit (16) with INVALID_ARGUMENT, so a
    pipe cycle ends with an error for the original caller.
    """

    def __init__(self, task, host):
        inv = task.invocation
        self.request_id = task.request_id
        self.deadline_unix_ms = task.deadline_unix_ms
        self.invocation = inv                   # the raw spawn.ActorInvocation
        self.actor_id = inv.actor               # spawn.actors.ActorId
        self.actor_name = inv.actor.name
        self.system = inv.actor.system or host.system
        self.action = inv.action_name
        self.caller = inv.caller if inv.HasField("caller") else None
        self.metadata = dict(inv.current_context.metadata)
        self.tags = dict(inv.current_context.tags)
        self.host = host
        # Set to True to have the gateway save the state durably before
        # the caller is answered (as a handler's third return value does).
        self.checkpoint = False
        self._route = None      # ("pipe" | "forward", actor, action)
        self._effects = []      # spawn.InvocationRequest, in order
        self._broadcast = None  # (channel, payload or None)

    # ---- trace context (W3C, docs/observability.md) -------------------------

    @property
    def traceparent(self):
        """The W3C ``traceparent`` of this turn (the gateway always sends
        one: its version-00 form naming the gateway's host-turn span as the
        parent), or None from a gateway that does not trace."""
        return self.metadata.get("traceparent")

    @property
    def trace_id(self):
        """The 32 hex digits of this turn's trace id, or None."""
        tp = self.traceparent
        return tp.split("-")[1] if tp and tp.count("-") >= 3 else None

    def trace_context(self):
        """{"traceparent": ..., "tracestate": ...} (those present) to pass on
        in calls this handler makes: ``SpawnClient.invoke(...,
        trace=ctx)`` does it; side effects carry it on their own."""
        return {k: self.metadata[k] for k in ("traceparent", "tracestate")
                if k in self.metadata}

    # ---- workflow ---------------------------------------------------------

    def pipe(self, actor, action):
        """After this turn, send the handler's reply as input to ``actor``'s
        ``action`` in this system; the caller receives that action's reply
        instead. Replaces an earlier pipe or forward of this turn."""
        self._route = ("pipe", _nonempty(actor, "actor"),
                       _nonempty(action, "action"))

    def forward(self, actor, action):
        """After this turn, send this invocation's own input to ``actor``'s
        ``action`` in this system; the caller receives that action's reply.
        Replaces an earlier pipe or forward of this turn."""
        self._route = ("forward", _nonempty(actor, "actor"),
                       _nonempty(action, "action"))

    def side_effect(self, actor, action, payload=None, system=None,
                    register_ref=None, metadata=None, pooled=False,
                    scheduled_to_ms=0):
        """Fire ``system / actor / action`` with ``payload`` (a message, an
        Any or None) after this turn, after its state is saved for a
        checkpointed turn. Fire and forget: it never delays the reply; the
        gateway retries failures with backoff and logs them. ``system``
        defaults to this actor's system (any system of the gateway may be
        named); ``register_ref`` names the UNNAMED template to instantiate
        ``actor`` from; ``metadata`` is a {str: str} dict handed to the
        target; ``scheduled_to_ms`` (a Unix time in ms still ahead) has the
        gateway store the effect durably and fire it then, even across a
        restart of the gateway. Several calls fire several effects, in
        order."""
        _, protocol_pb2, _, _ = _pb()
        req = protocol_pb2.InvocationRequest(
            action_name=_nonempty(action, "action"), pooled=bool(pooled),
            **{"async": True})
        sysname = system if system else self.system
        req.system.name = _nonempty(sysname, "system")
        req.actor.id.name = _nonempty(actor, "actor")
        req.actor.id.system = sysname
        if register_ref:
            req.register_ref = register_ref
            req.actor.id.parent = register_ref
        if payload is None:
            req.noop.SetInParent()
        else:
            req.value.CopyFrom(_pack(payload))
        # The effect continues this turn's trace unless the caller's own
        # metadata names another.
        for k, v in self.trace_context().items():
            req.metadata[k] = v
        for k, v in (metadata or {}).items():
            req.metadata[str(k)] = str(v)
        if int(scheduled_to_ms) < 0:
            raise ValueError("scheduled_to_ms must be a Unix time in ms (or 0)")
        req.scheduled_to = int(scheduled_to_ms)
        self._effects.append(req)

    def broadcast(self, channel, payload=None):
        """After this turn, send ``payload`` (a message, an Any or None) to
        every actor of this system subscribed to ``channel``; each gets one
        fire-and-forget invocation of its channel's action, inactive ones
        are activated. No subscribers: nothing happens. One broadcast per
        turn: a later call replaces an earlier one."""
        self._broadcast = (_nonempty(channel, "channel"),
                           None if payload is None else _pack(payload))

    def _workflow(self, resp):
        """Writes the workflow asked for into ``resp`` (if any)."""
        if not (self._route or self._effects or self._broadcast):
            return
        wf = resp.workflow
        if self._route:
            how, actor, action = self._route
            r = wf.pipe if how == "pipe" else wf.forward
            r.actor = actor
            r.action_name = action
        for req in self._effects:
            wf.effects.add().request.CopyFrom(req)
        if self._broadcast:
            channel, value = self._broadcast
            wf.broadcast.channel_group = channel
            if value is None:
                wf.broadcast.noop.SetInParent()
            else:
                wf.broadcast.value.CopyFrom(value)


class _Actor:
    def __init__(self, name, actions, state_type, stateful, snapshot_ms,
                 deactivate_ms, kind, timers, min_pool, max_pool,
                 channels=()):
        self.name = name
        self.actions = dict(actions)
        self.state_type = state_type
        self.stateful = stateful
        self.snapshot_ms = snapshot_ms
        self.deactivate_ms = deactivate_ms
        self.kind = kind
        self.timers = dict(timers or {})
        self.min_pool = min_pool
        self.max_pool = max_pool
        self.channels = list(channels)  # [(topic, action)]


# The batched host link (docs/protocol.md "Batched host link"): every stream
# asks for batches with this request metadata; a gateway that grants them
# answers with the same entry in its initial metadata.
LINK_MD = ("spawn-link", "batch")
# Bounds of one ResultBatch.
BATCH_MAX = 128
BATCH_BYTES = 256 << 10


def _varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _serialize(m):
    """Request serializer: one HostMessage, or a list of HostMessages that
    each hold one result, joined into one HostMessage carrying a ResultBatch
    without re-encoding the results (gateway.proto: `result` is field 2,
    `results` field 3, ResultBatch.results field 1, all length-delimited, so
    each serialized result message `0x12 len bytes` becomes the batch item
    `0x0a len bytes`)."""
    if isinstance(m, bytes):
        return m
    if not isinstance(m, list):
        return m.SerializeToString()
    items = [b"\x0a" + x[1:] for x in m]
    total = sum(len(x) for x in items)
    return b"\x1a" + _varint(total) + b"".join(items)


class _Session:
    """One Connect stream: its outgoing queue and call.

    Results queue as serialized HostMessages. The request iterator is asked
    for the next message only once grpc wrote the previous one, so when the
    gateway granted batches (``batch``), the results that queued meanwhile
    leave as one ResultBatch, up to BATCH_MAX results or BATCH_BYTES bytes;
    one result alone leaves as itself. Nothing waits for a batch to fill."""

    _END = object()

    def __init__(self, max_bytes=BATCH_BYTES):
        self.out = queue.Queue()
        self.call = None
        self.closed = False
        self.batch = False
        self.max_bytes = max_bytes  # a batch's bound, within the message limit
        self._held = None  # taken from the queue, not yet sent

    def send(self, msg):
        if not self.closed:
            self.out.put(msg)

    def close(self):
        self.closed = True
        self.out.put(self._END)

    def requests(self):
        while True:
            m = self._held if self._held is not None else self.out.get()
            self._held = None
            if m is self._END:
                return
            if not self.batch or not isinstance(m, bytes):
                yield m
                continue
            batch, size = [m], len(m)
            while len(batch) < BATCH_MAX:
                try:
                    n = self.out.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(n, bytes) or size + len(n) > self.max_bytes:
                    self._held = n
                    break
                batch.append(n)
                size += len(n)
            yield batch if len(batch) > 1 else m


# How long one connection attempt may take, whatever the reconnect delay.
CONNECT_TIMEOUT_MS = 5000


class ActorHost:
    """An actor host: connects to the gateway, registers actors, runs them.

    ``target`` is "HOST:PORT" or "unix:/path". ``system`` is the actor
    system's name. ``proto_path`` (optional) is the directory of generated
    modules, inserted at the front of sys.path. Whenever the stream ends
    the host reconnects after ``min_backoff`` seconds (default 0.015, so it
    is back within a few tens of ms of a gateway restart), doubling up to
    ``max_backoff`` (default 2.0), +-20%. ``tls_ca``, ``tls_cert``,
    ``tls_key``, ``tls_server_name`` and ``token`` are those of
    :class:`Security` (None = the SPAWN_TLS_* / SPAWN_TOKEN environment);
    an unusable file raises :class:`TLSConfigError` here.
    """

    def __init__(self, target, system, proto_path=None, service_name=None,
                 workers=8, min_backoff=0.015, max_backoff=2.0,
                 registration_timeout=10.0, on_registered=None,
                 channel_options=None, max_message_bytes=None, tls_ca=None,
                 tls_cert=None, tls_key=None, token=None, tls_server_name=None):
        if proto_path and proto_path not in sys.path:
            sys.path.insert(0, proto_path)
        _pb()  # fail early if the generated modules are missing
        self._security = Security(tls_ca, tls_cert, tls_key, token, tls_server_name)
        self.target = target
        self.system = system
        self.service_name = service_name or system
        self.workers = workers
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.registration_timeout = registration_timeout
        self.on_registered = on_registered
        if max_message_bytes is not None and int(max_message_bytes) <= 0:
            raise ValueError("max_message_bytes must be positive")
        # The gateway's limit (--max-message-bytes; its default is 4 MiB): a
        # result above it would cost the whole stream, so it is refused here.
        self.max_message_bytes = int(max_message_bytes or DEFAULT_MAX_MESSAGE)
        self.channel_options = list(channel_options or []) + [
            ("grpc.initial_reconnect_backoff_ms", int(min_backoff * 1000) or 15),
            # gRPC core takes this as the timeout of one connection attempt:
            # independent of the (short) first reconnect delay.
            ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS),
            ("grpc.max_reconnect_backoff_ms", int(max_backoff * 1000)),
        ]
        if max_message_bytes is not None:
            self.channel_options += [
                ("grpc.max_send_message_length", self.max_message_bytes),
                ("grpc.max_receive_message_length", self.max_message_bytes),
            ]
        self.registered = threading.Event()   # set while registered
        self.registrations = 0                # successful registrations so far
        self.proxy_info = None                # from the last registration
        self._actors = {}
        self._contracts = []                  # serialized FileDescriptorSets
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._session = None
        self._thread = None
        self._pool = None

    # ---- configuration ---------------------------------------------------

    def add_contract(self, descriptor_set):
        """Send the descriptors of a contract this host serves.

        ``descriptor_set`` is a serialized google.protobuf.FileDescriptorSet
        (the .proto file and every file it imports). The gateway then serves
        each service with the spawn.actors.actor option as a plain gRPC
        service and describes it by server reflection (docs/protocol.md,
        "Contracts"). The generated register_x functions call it. Every set
        added goes, as one, right after the registration on each stream; a
        set added twice is sent once.
        """
        data = bytes(descriptor_set)
        with self._lock:
            if data and data not in self._contracts:
                self._contracts.append(data)
        return self

    def add_actor(self, name, actions, state_type=None, stateful=True,
                  snapshot_ms=None, deactivate_ms=None, kind="NAMED",
                  timers=None, min_pool_size=0, max_pool_size=0,
                  channels=None):
        """Register actor ``name`` with ``actions`` {action name: handler}.

        ``state_type`` is the state's message class (or its full name).
        ``snapshot_ms`` / ``deactivate_ms`` set the snapshot and deactivation
        timeouts (None leaves them to the gateway). ``kind`` is a
        spawn.actors.Kind name or value. ``timers`` maps action names to a
        period in milliseconds (FixedTimerAction; the wire field is named
        ``seconds`` but holds milliseconds, as in Spawn): while the actor is
        active the gateway runs that action every period with its state.
        ``channels`` subscribes the actor to broadcasts: a list of topics,
        each a string (delivered to the action ``"receive"``) or a
        ``(topic, action)`` pair; the action must be one of ``actions``.
        """
        if not name:
            raise ValueError("actor name is empty")
        for a, h in actions.items():
            if not callable(h):
                raise TypeError("handler of %s.%s is not callable" % (name, a))
        for a, ms in (timers or {}).items():
            if a not in actions:
                raise ValueError("timer %s.%s has no handler" % (name, a))
            if (not isinstance(ms, (int, float)) or isinstance(ms, bool)
                    or int(ms) <= 0):
                raise ValueError("timer %s.%s: period must be a positive "
                                 "number of milliseconds" % (name, a))
        subs = []
        for c in channels or ():
            if isinstance(c, str):
                topic, action = c, DEFAULT_CHANNEL_ACTION
            else:
                topic, action = tuple(c)
                action = action or DEFAULT_CHANNEL_ACTION
            if not isinstance(topic, str) or not topic:
                raise ValueError("a channel of %s has no topic" % name)
            if action not in actions:
                raise ValueError("channel %r of %s delivers to %r, which is "
                                 "not one of its actions" % (topic, name, action))
            subs.append((topic, action))
        actor_pb2 = _pb()[0]
        if isinstance(kind, str):
            kind = actor_pb2.Kind.Value(kind.upper())
        if state_type is not None and not isinstance(state_type, str):
            state_type = state_type.DESCRIPTOR.full_name
        with self._lock:
            self._actors[name] = _Actor(name, actions, state_type or "",
                                        bool(stateful), snapshot_ms,
                                        deactivate_ms, int(kind), timers,
                                        min_pool_size, max_pool_size, subs)
        return self

    def registration_request(self):
        """The spawn.RegistrationRequest this host sends."""
        actor_pb2, protocol_pb2, _, _ = _pb()
        req = protocol_pb2.RegistrationRequest()
        si = req.service_info
        si.service_name = self.service_name
        si.service_version = __version__
        si.service_runtime = "python %s" % platform.python_version()
        si.support_library_name = "spawn-gateway-python-sdk"
        si.support_library_version = __version__
        si.protocol_major_version = 1
        si.protocol_minor_version = 0
        sysm = req.actor_system
        sysm.name = self.system
        with self._lock:
            actors = list(self._actors.values())
        for a in actors:
            pa = sysm.registry.actors[a.name]
            pa.id.name = a.name
            pa.id.system = self.system
            st = pa.settings
            st.kind = a.kind
            st.stateful = a.stateful
            st.state_type = a.state_type
            if a.snapshot_ms is not None:
                st.snapshot_strategy.timeout.timeout = int(a.snapshot_ms)
            if a.deactivate_ms is not None:
                st.deactivation_strategy.timeout.timeout = int(a.deactivate_ms)
            st.min_pool_size = a.min_pool
            st.max_pool_size = a.max_pool
            for act in a.actions:
                pa.actions.add(name=act)
            for act, ms in a.timers.items():
                pa.timer_actions.add(seconds=int(ms), action=actor_pb2.Action(name=act))
            for topic, act in a.channels:
                pa.metadata.channel_group.add(topic=topic, action=act)
        return req

    # ---- running ---------------------------------------------------------

    def start(self):
        """Run the host in a background thread; returns the thread."""
        self._thread = threading.Thread(target=self.run, name="spawn-host",
                                        daemon=True)
        self._thread.start()
        return self._thread

    def run(self):
        """Connect, register and serve until stop(); reconnect with
        exponential backoff (with jitter) whenever the stream ends."""
        self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                        thread_name_prefix="spawn-actor")
        delay = self.min_backoff
        try:
            while not self._stop.is_set():
                ok = self._session_once()
                if self._stop.is_set():
                    break
                if ok:
                    delay = self.min_backoff
                wait = delay * random.uniform(0.8, 1.2)
                log.info("disconnected from %s; retrying in %.2fs",
                         self.target, wait)
                if self._stop.wait(wait):
                    break
                delay = min(delay * 2, self.max_backoff)
        finally:
            self.registered.clear()
            self._pool.shutdown(wait=True)

    def stop(self, timeout=None):
        """Stop serving: close the stream and end run()."""
        self._stop.set()
        s = self._session
        if s is not None:
            s.close()
            if s.call is not None:
                s.call.cancel()
        # Wait for run() to end, unless called from run() or a handler
        # (run() waits for the handlers).
        if (self._thread is not None
                and self._thread is not threading.current_thread()
                and not getattr(_in_handler, "active", False)):
            self._thread.join(timeout)

    def _session_once(self):
        """One connection. True when it got registered."""
        _, protocol_pb2, gateway_pb2, _ = _pb()
        session = _Session(min(BATCH_BYTES, self.max_message_bytes - 16))
        got_registered = False
        timer = None
        try:
            with self._security.channel(self.target, self.channel_options) as ch:
                connect = ch.stream_stream(
                    CONNECT_METHOD,
                    request_serializer=_serialize,
                    response_deserializer=gateway_pb2.GatewayMessage.FromString)
                session.send(gateway_pb2.HostMessage(
                    registration=self.registration_request()))
                with self._lock:
                    contracts = b"".join(self._contracts)
                if contracts:
                    session.send(gateway_pb2.HostMessage(
                        contracts=gateway_pb2.Contracts(files=contracts)))
                call = connect(session.requests(),
                               metadata=(self._security.metadata or ()) + (LINK_MD,))
                session.call = call
                self._session = session
                if self._stop.is_set():
                    return False
                timer = threading.Timer(self.registration_timeout, call.cancel)
                timer.daemon = True
                timer.start()
                for msg in call:
                    kind = msg.WhichOneof("msg")
                    if not got_registered:
                        if kind != "registration":
                            log.error("gateway sent %s before registration", kind)
                            return False
                        timer.cancel()
                        st = msg.registration.status
                        if st.status != protocol_pb2.OK:
                            log.error("registration refused: %s %s",
                                      protocol_pb2.Status.Name(st.status),
                                      st.message)
                            return False
                        got_registered = True
                        # Batches, if granted (the metadata came with this
                        # first message).
                        session.batch = tuple(LINK_MD) in {
                            (k, v) for k, v in (call.initial_metadata() or ())}
                        self.proxy_info = msg.registration.proxy_info
                        self.registrations += 1
                        self.registered.set()
                        log.info("registered with %s", self.target)
                        if self.on_registered is not None:
                            try:
                                self.on_registered(self)
                            except Exception:
                                log.exception("on_registered failed")
                    elif kind == "invocation":
                        self._pool.submit(self._run_task, session,
                                          msg.invocation)
                    elif kind == "tasks":
                        for task in msg.tasks.tasks:
                            self._pool.submit(self._run_task, session, task)
                    else:
                        log.warning("ignoring gateway message %s", kind)
        except grpc.RpcError as e:
            if not self._stop.is_set():
                log.warning("stream to %s failed: %s %s", self.target,
                            e.code() if hasattr(e, "code") else "",
                            e.details() if hasattr(e, "details") else e)
        finally:
            if timer is not None:
                timer.cancel()
            self.registered.clear()
            session.close()
            if session.call is not None:
                session.call.cancel()
            if self._session is session:
                self._session = None
        return got_registered

    # ---- invocations -----------------------------------------------------

    def _run_task(self, session, task):
        _, _, gateway_pb2, _ = _pb()
        result = gateway_pb2.InvocationResult(request_id=task.request_id)
        _in_handler.active = True
        try:
            result.response.CopyFrom(self._invoke(task))
        except ActorError as e:
            result.error.code = e.code
            result.error.message = e.message
        except Exception as e:  # a bug in a handler
            log.exception("handler %s.%s failed", task.invocation.actor.name,
                          task.invocation.action_name)
            result.error.code = StatusCode.UNKNOWN
            result.error.message = "%s: %s" % (type(e).__name__, e)
        finally:
            _in_handler.active = False
        msg = gateway_pb2.HostMessage(result=result)
        if msg.ByteSize() > self.max_message_bytes:
            # Sent, it would fail the whole stream and every call on it:
            # this one call fails instead.
            log.warning("result of %s.%s is %d bytes, over the limit of %d",
                        task.invocation.actor.name, task.invocation.action_name,
                        msg.ByteSize(), self.max_message_bytes)
            result.ClearField("response")
            result.error.code = StatusCode.RESOURCE_EXHAUSTED
            result.error.message = ("the action's result exceeds the message "
                                    "size limit")
            msg = gateway_pb2.HostMessage(result=result)
        session.send(msg.SerializeToString())

    def _invoke(self, task):
        protocol_pb2 = _pb()[1]
        inv = task.invocation
        with self._lock:
            actor = self._actors.get(inv.actor.name)
            if actor is None and inv.actor.parent:
                actor = self._actors.get(inv.actor.parent)
        if actor is None:
            raise ActorError(StatusCode.NOT_FOUND,
                             "no actor %r in this host" % inv.actor.name)
        handler = actor.actions.get(inv.action_name)
        if handler is None:
            raise ActorError(StatusCode.NOT_FOUND,
                             "actor %r has no action %r"
                             % (actor.name, inv.action_name))
        if task.deadline_unix_ms > 0 and time.time() * 1000 >= task.deadline_unix_ms:
            # The caller is gone: running it would change state nobody
            # asked for any more (the gateway always sends the deadline).
            raise ActorError(StatusCode.DEADLINE_EXCEEDED,
                             "deadline passed before the action ran")
        cur = inv.current_context
        state = cur.state if cur.HasField("state") else None
        payload = inv.value if inv.WhichOneof("payload") == "value" else None
        ctx = Context(task, self)

        out = handler(state, payload, ctx)
        if not isinstance(out, tuple) or len(out) not in (2, 3):
            raise ActorError(StatusCode.INTERNAL,
                             "handler must return (state, reply, checkpoint)")
        new_state, reply = out[0], out[1]
        checkpoint = bool(out[2]) if len(out) == 3 else False
        checkpoint = checkpoint or bool(ctx.checkpoint)

        resp = protocol_pb2.ActorInvocationResponse(
            actor_name=inv.actor.name,
            actor_system=inv.actor.system or self.system,
            checkpoint=checkpoint)
        uc = resp.updated_context
        if actor.stateful and new_state is not None:
            uc.state.CopyFrom(_pack(new_state))
        # No state: unchanged (the gateway keeps the one it has; resending
        # it would only cost bytes).
        for k, v in ctx.tags.items():
            uc.tags[k] = v
        uc.self.CopyFrom(inv.actor)
        if reply is None:
            resp.noop.SetInParent()
        else:
            resp.value.CopyFrom(_pack(reply))
        ctx._workflow(resp)
        return resp


# ---- typed actors (what spawn_typed, under generated Python, calls) -----

def _type_name(cls):
    return cls.DESCRIPTOR.full_name


def typed_action(method, input_type, output_type, state_type=None,
                 label="action"):
    """A handler for :meth:`ActorHost.add_actor` around a typed method.

    With ``state_type`` (a stateful actor), ``method(state, msg, ctx)`` gets
    the state as a ``state_type`` message (default values for a new actor)
    and returns ``(new_state, reply)``: ``new_state`` None keeps the state,
    ``reply`` None answers no value; returning None does both. Without it,
    ``method(msg, ctx)`` returns the reply or None. ``ctx.checkpoint = True``
    asks for a durable save. Before the method runs, an input of another
    type fails the call with INVALID_ARGUMENT and a state of another type
    with FAILED_PRECONDITION; a result of the wrong shape or type fails it
    with INTERNAL. ``label`` ("Incrementor.Add") names the action in
    messages.
    """
    def handler(state, payload, ctx):
        if state_type is not None:
            try:
                st = unpack(state, state_type)
            except ActorError as e:
                raise ActorError(StatusCode.FAILED_PRECONDITION,
                                 "the state of %s is not a %s (%s)"
                                 % (label, _type_name(state_type), e.message))
        try:
            msg = unpack(payload, input_type)
        except ActorError as e:
            raise ActorError(StatusCode.INVALID_ARGUMENT,
                             "%s takes a %s (%s)"
                             % (label, _type_name(input_type), e.message))
        if state_type is None:
            new_state, reply = None, method(msg, ctx)
        else:
            out = method(st, msg, ctx)
            if out is None:
                new_state, reply = None, None
            elif isinstance(out, tuple) and len(out) == 2:
                new_state, reply = out
            else:
                raise ActorError(StatusCode.INTERNAL,
                                 "%s must return (state, reply), not %s"
                                 % (label, type(out).__name__))
            if new_state is not None and not isinstance(new_state, state_type):
                raise ActorError(StatusCode.INTERNAL,
                                 "%s returned a state of type %s, expected %s"
                                 % (label, type(new_state).__name__,
                                    _type_name(state_type)))
        if reply is not None and not isinstance(reply, output_type):
            raise ActorError(StatusCode.INTERNAL,
                             "%s returned a reply of type %s, expected %s"
                             % (label, type(reply).__name__,
                                _type_name(output_type)))
        return new_state, reply, False
    handler.__name__ = getattr(method, "__name__", "handler")
    return handler


def add_typed_actor(host, impl, name, kind, stateful, state_type,
                    snapshot_ms, deactivate_ms, actions, channels=None,
                    timers=None):
    """Declare actor ``name`` on ``host``, its actions served by the methods
    of ``impl``. ``actions`` lists ``(action, method name, input type,
    output type)``; ``snapshot_ms`` / ``deactivate_ms`` of 0 leave the
    setting to the gateway. ``channels`` and ``timers`` are those of
    :meth:`ActorHost.add_actor` (a timer action is one of ``actions``; it
    gets the input type's defaults). Returns the host."""
    handlers = {}
    for action, attr, input_type, output_type in actions:
        method = getattr(impl, attr)
        handlers[action] = typed_action(method, input_type, output_type,
                                        state_type, "%s.%s" % (name, action))
    return host.add_actor(name, handlers, state_type=state_type,
                          stateful=stateful, snapshot_ms=snapshot_ms or None,
                          deactivate_ms=deactivate_ms or None, kind=kind,
                          channels=channels, timers=timers)
