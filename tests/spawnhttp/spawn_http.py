"""spawn_http.py - Spawn's HTTP/1.1 protocol as its SDKs speak it, for tests.

Written from the published SDKs' behaviour (/work/shared/spawn-http-protocol.md,
docs/protocol.md "Spawn's HTTP protocol"), with nothing but the standard
library's HTTP modules and the protobuf modules of our .proto files
(sdk/python/gen.sh); no part of the gateway's own SDKs:

* SpawnHttpClient: the SDK's proxy client. POSTs to PROXY_HTTP_HOST:PORT with
  Content-Type and Accept application/octet-stream on one keep-alive
  connection; decodes the body whatever the HTTP status.
* SpawnHttpHost: the SDK's host side. Listens (USER_FUNCTION_PORT), serves
  exactly POST /api/v1/actors/actions (a query string gets 404), answers
  with a chunked body (as the TypeScript SDK's server often does), 400 with
  an empty body when a handler raises, and always sets updated_context.
  Like the TypeScript SDK it decodes each request as one message and crashes
  (here: records a fault) on an invocation without current_context, with an
  empty or foreign state Any, or without actor.system.
"""
import http.client
import http.server
import socket
import socketserver
import sys
import threading

from google.protobuf import any_pb2

from spawn.actors import actor_pb2, protocol_pb2

OCTET = "application/octet-stream"
NOOP_URL = "type.googleapis.com/eigr.functions.protocol.Noop"
JSON_URL = "type.googleapis.com/eigr.functions.protocol.JSONType"


def json_any(text):
    """An Any of the old package's JSONType{content}, as older SDKs send."""
    jt = protocol_pb2.JSONType(content=text)
    return any_pb2.Any(type_url=JSON_URL, value=jt.SerializeToString())


def json_of(any_msg):
    jt = protocol_pb2.JSONType()
    jt.ParseFromString(any_msg.value)
    return jt.content


class SpawnHttpClient:
    """The proxy client of a Spawn SDK."""

    def __init__(self, host, port, timeout=30.0):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.connects = 0

    def close(self):
        self.conn.close()

    def post(self, path, body, content_type=OCTET):
        """POST raw bytes; returns (status, body bytes). Reconnects only when
        the server closed the connection (counted in self.connects)."""
        if self.conn.sock is None:
            self.connects += 1
        headers = {"Accept": OCTET}
        if content_type:
            headers["Content-Type"] = content_type
        self.conn.request("POST", path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return r.status, data

    def register(self, system, actors, service_name="spawn-http-test"):
        """actors: list of spawn.actors.Actor. Returns (status, RegistrationResponse)."""
        req = protocol_pb2.RegistrationRequest()
        req.service_info.service_name = service_name
        req.service_info.service_version = "1.2.0"
        req.service_info.service_runtime = "python"
        req.service_info.support_library_name = "spawn-http-test"
        req.service_info.protocol_major_version = 1
        req.actor_system.name = system
        for a in actors:
            req.actor_system.registry.actors[a.id.name].CopyFrom(a)
        st, data = self.post("/api/v1/system", req.SerializeToString())
        resp = protocol_pb2.RegistrationResponse()
        resp.ParseFromString(data)
        return st, resp

    def spawn(self, system, names, parent, revision=None):
        req = protocol_pb2.SpawnRequest()
        for n in names:
            req.actors.add(name=n, system=system, parent=parent)
        path = "/api/v1/system/%s/actors/spawn" % system
        if revision is not None:
            path += "?revision=%d" % revision
        st, data = self.post(path, req.SerializeToString())
        resp = protocol_pb2.SpawnResponse()
        resp.ParseFromString(data)
        return st, resp

    def invoke(self, system, actor, action, value=None, noop=False, async_=False,
               register_ref=None, scheduled_to=0, metadata=None, raw=None):
        """Returns (status, InvocationResponse)."""
        req = protocol_pb2.InvocationRequest(action_name=action)
        req.system.name = system
        req.actor.id.name = actor
        req.actor.id.system = system
        setattr(req, "async", async_)
        if register_ref:
            req.register_ref = register_ref
            req.actor.id.parent = register_ref
        if value is not None:
            req.value.CopyFrom(value)
        elif noop:
            req.noop.SetInParent()
        req.scheduled_to = scheduled_to
        for k, v in (metadata or {}).items():
            req.metadata[k] = v
        body = raw if raw is not None else req.SerializeToString()
        st, data = self.post("/api/v1/system/%s/actors/%s/invoke" % (system, actor), body)
        resp = protocol_pb2.InvocationResponse()
        resp.ParseFromString(data)
        return st, resp


def actor(system, name, actions, kind=actor_pb2.NAMED, stateful=True, state=None,
          timers=None, channels=None, snapshot_ms=60000, deactivate_ms=60000):
    """A spawn.actors.Actor as an SDK registers it."""
    a = actor_pb2.Actor()
    a.id.name = name
    a.id.system = system
    a.settings.kind = kind
    a.settings.stateful = stateful
    a.settings.snapshot_strategy.timeout.timeout = snapshot_ms
    a.settings.deactivation_strategy.timeout.timeout = deactivate_ms
    for n in actions:
        a.actions.add(name=n)
    for n, ms in (timers or {}).items():
        a.timer_actions.add(seconds=ms).action.name = n
    for topic, action in (channels or []):
        a.metadata.channel_group.add(topic=topic, action=action)
    if state is not None:
        a.state.state.CopyFrom(state)
    return a


class Ctx:
    """What a handler gets and may fill: the invocation, and the workflow."""

    def __init__(self, inv):
        self.invocation = inv
        self.state = inv.current_context.state if inv.current_context.HasField("state") else None
        self.tags = dict(inv.current_context.tags)
        self.metadata = dict(inv.current_context.metadata)
        self.workflow = protocol_pb2.Workflow()
        self.checkpoint = False


class SpawnHttpHost:
    """The host side of a Spawn SDK: handlers[(actor, action)](ctx, payload)
    returns (new_state Any or None, reply Any / "noop" / None), or (bytes,
    None) to answer those raw bytes (a hostile host)."""

    def __init__(self, handlers, system, check_state=True):
        self.handlers = handlers
        self.system = system
        self.check_state = check_state
        self.last_state = {}   # actor name -> the Any it last returned
        self.faults = []       # what would have crashed the TypeScript SDK
        self.calls = []        # (actor, action) in arrival order
        self.lock = threading.Lock()
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                # As Node's HTTP server (noDelay): the chunks go out at once.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self):
                if self.path != "/api/v1/actors/actions":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                status, out = host.handle(body, self.headers)
                self.send_response(status)
                if status != 200:
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                # Chunked, in two chunks: the gateway must reassemble them.
                self.send_header("Content-Type", OCTET)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                half = len(out) // 2
                for part in (out[:half], out[half:]):
                    if part:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 511  # Node's backlog (the default 5 drops SYNs)

            def handle_error(self, request, client_address):
                # A gateway that stops closes its kept-alive connections.
                if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def fault(self, what):
        with self.lock:
            self.faults.append(what)

    def handle(self, body, headers):
        if headers.get("Content-Type") != OCTET:
            self.fault("content type %r" % headers.get("Content-Type"))
        inv = protocol_pb2.ActorInvocation()
        try:
            inv.ParseFromString(body)
        except Exception as e:  # the TypeScript SDK would die here
            self.fault("undecodable invocation: %s" % e)
            return 400, b""
        name, action = inv.actor.name, inv.action_name
        with self.lock:
            self.calls.append((name, action))
        if not inv.HasField("current_context"):
            self.fault("no current_context")
            return 400, b""
        if inv.actor.system != self.system:
            self.fault("actor.system %r" % inv.actor.system)
        ctx = Ctx(inv)
        key = inv.actor.parent or name
        if self.check_state and ctx.state is not None:
            # Omitted, or exactly the Any this host returned last.
            if not ctx.state.type_url or (
                    name in self.last_state and
                    ctx.state.SerializeToString() != self.last_state[name].SerializeToString()):
                self.fault("state of %s not passed back byte for byte" % name)
        h = self.handlers.get((key, action))
        if h is None:
            return 400, b""
        payload = inv.value if inv.WhichOneof("payload") == "value" else None
        try:
            new_state, reply = h(ctx, payload)
        except Exception:
            return 400, b""  # as the SDKs: the handler threw
        if isinstance(new_state, bytes):
            return 200, new_state  # a raw body (tests of hostile hosts)
        resp = protocol_pb2.ActorInvocationResponse(actor_name=name, actor_system=inv.actor.system)
        uc = resp.updated_context
        uc.self.CopyFrom(inv.actor)
        if new_state is not None:
            uc.state.CopyFrom(new_state)
            with self.lock:
                self.last_state[name] = new_state
        for k, v in ctx.tags.items():
            uc.tags[k] = v
        if isinstance(reply, str) and reply == "noop":
            resp.noop.SetInParent()
        elif reply is not None:
            resp.value.CopyFrom(reply)
        resp.workflow.CopyFrom(ctx.workflow)  # usually present and empty
        resp.checkpoint = ctx.checkpoint
        return 200, resp.SerializeToString()
