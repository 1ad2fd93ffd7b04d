#!/usr/bin/python3
"""Tracing end to end (issue 13 §3, §4; docs/observability.md).

A real gateway (SQLite store) with --otlp-endpoint pointing at an OTLP/HTTP
receiver this test runs (http.server, bodies decoded with modules protoc
generates here from proto/opentelemetry), and a Python host (sdk/python)
whose actors record the metadata of every turn:

* one trace id across a client call, a pipe to a second actor, a side
  effect and a broadcast, as the hosts see it; the exported spans carry it,
  with parent links that match what each host was handed;
* a malformed traceparent (all-zero ids, uppercase, version ff, bad length,
  junk) is replaced, never passed on; its tracestate is dropped with it;
* a traceparent sent as gRPC metadata (not in the request) is continued;
  none at all starts a new trace per call;
* Spawn's HTTP invoke route continues a traceparent header, a scheduled
  invocation the one stored with it, and a call that member A forwards to
  the owner B over Peer.Forward (--cluster-test-view) continues A's span;
* --log-format json: every line parses, and a line logged during a turn
  carries system, actor, action, trace id and request id;
* a run that used a store key, a bearer token and an endpoint URL with a
  password never prints any of them (every line of stdout and stderr).

Readiness: the gateway's "listening" line, the host's registration event,
condition variables on what the host and the receiver received. No sleeps.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("SPAWN_BUILD_DIR", "build")
GATEWAY = os.path.join(BUILD, "gateway", "spawn-gateway")
sys.path.insert(0, os.path.join(BUILD, "python-gen"))
sys.path.insert(0, os.path.join(SRC, "sdk", "python"))

import grpc  # noqa: E402
from google.protobuf import wrappers_pb2  # noqa: E402
from spawn.actors import protocol_pb2  # noqa: E402
from spawn_client import SpawnClient  # noqa: E402
from spawn_host import ActorHost  # noqa: E402

KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
T = 30.0
TP_RE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def otlp_modules():
    """Generates Python modules of our OTLP .proto subset (once)."""
    if not hasattr(otlp_modules, "mod"):
        out = tempfile.mkdtemp(prefix="spawn-otlp-py-")
        protos = [os.path.join(root, f)
                  for root, _, fs in os.walk(os.path.join(SRC, "proto", "opentelemetry"))
                  for f in fs if f.endswith(".proto")]
        subprocess.run(["protoc", "-I" + os.path.join(SRC, "proto"), "--python_out=" + out]
                       + protos, check=True)
        sys.path.insert(0, out)
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
        otlp_modules.mod = trace_service_pb2
    return otlp_modules.mod


class Receiver:
    """An OTLP/HTTP trace receiver on an ephemeral loopback port. hold: an
    Event the receiver waits for before it answers (a hung collector; the
    spans are recorded first)."""

    def __init__(self, hold=None):
        pb = otlp_modules()
        self.hold = hold
        self.spans = []
        self.requests = []  # (path, content type, authorization)
        self.cv = threading.Condition()
        recv = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                req = pb.ExportTraceServiceRequest.FromString(body)
                with recv.cv:
                    recv.requests.append((self.path, self.headers.get("Content-Type"),
                                          self.headers.get("Authorization")))
                    for rs in req.resource_spans:
                        svc = [a.value.string_value for a in rs.resource.attributes
                               if a.key == "service.name"]
                        for ss in rs.scope_spans:
                            for sp in ss.spans:
                                recv.spans.append((svc, sp))
                    recv.cv.notify_all()
                if recv.hold is not None:
                    recv.hold.wait(60)
                out = pb.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, pred, what, timeout=T):
        with self.cv:
            if not self.cv.wait_for(lambda: pred([s for _, s in self.spans]), timeout):
                raise AssertionError("receiver: %s not seen within %.0f s; spans: %s" % (
                    what, timeout, [(s.name, s.span_id.hex(), s.parent_span_id.hex())
                                    for _, s in self.spans]))
            return [s for _, s in self.spans]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Recorder:
    """What the actors saw, turn by turn: (actor, action, metadata)."""

    def __init__(self):
        self.seen = []
        self.cv = threading.Condition()

    def add(self, ctx):
        with self.cv:
            self.seen.append((ctx.actor_name, ctx.action, dict(ctx.metadata)))
            self.cv.notify_all()

    def wait(self, pred, what, timeout=T):
        with self.cv:
            if not self.cv.wait_for(lambda: pred(self.seen), timeout):
                raise AssertionError("host: %s not seen within %.0f s; seen %s" % (
                    what, timeout, self.seen))
            return list(self.seen)

    def of(self, actor):
        with self.cv:
            return [m for a, _, m in self.seen if a == actor]


def start_gateway(test, *flags, env_extra=None, keep_stdout=False):
    d = tempfile.TemporaryDirectory(prefix="spawn-trace-")
    test.addCleanup(d.cleanup)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPAWN_")}
    env["SPAWN_STATESTORE_KEY"] = KEY
    env.update(env_extra or {})
    err_path = os.path.join(d.name, "stderr.log")
    err = open(err_path, "w")
    p = subprocess.Popen([GATEWAY, "--listen", "127.0.0.1:0", "--statestore",
                          "sqlite://" + os.path.join(d.name, "s.db")] + list(flags),
                         stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    err.close()
    killer = threading.Timer(T * 4, p.kill)
    killer.start()
    out = []
    want = 2 if "--http" in flags else 1  # the gRPC listener, then the HTTP one
    for line in p.stdout:
        out.append(line)
        if line.startswith("listening ") and len([x for x in out if x.startswith("listening ")]) == want:
            break
    else:
        killer.cancel()
        raise AssertionError("gateway exited before listening: %s" % open(err_path).read())
    lst = [x.split() for x in out if x.startswith("listening ")]
    port = int(lst[0][2])
    test.http_port = int(lst[1][2]) if want == 2 else None

    def stop():
        """SIGTERM, then everything it printed: (stdout lines, stderr lines)."""
        if p.poll() is None:
            p.terminate()
        rest = p.stdout.read()
        p.wait(timeout=T)
        killer.cancel()
        p.stdout.close()
        with open(err_path) as f:
            return out + rest.splitlines(True), f.read().splitlines(True)
    def reap():
        """Ends the gateway (SIGTERM: a sanitizer build reports at exit) and
        fails the test on a sanitizer report in its stderr."""
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=T)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        killer.cancel()
        with open(err_path, errors="replace") as f:
            text = f.read()
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            test.assertNotIn(bad, text, "sanitizer report from the gateway:\n" + text[-4000:])
    test.addCleanup(reap)
    if keep_stdout:
        return "127.0.0.1:%d" % port, stop, p
    return "127.0.0.1:%d" % port, stop


def start_host(test, target, rec, token=None):
    def go(state, payload, ctx):
        rec.add(ctx)
        ctx.side_effect("fx", "hit")
        ctx.broadcast("news")
        ctx.pipe("back", "step")
        return None, wrappers_pb2.StringValue(value="front")

    def step(state, payload, ctx):
        rec.add(ctx)
        return None, wrappers_pb2.StringValue(value="back")

    def record(state, payload, ctx):
        rec.add(ctx)
        return None, None

    host = ActorHost(target, "tr", workers=4, token=token)
    host.add_actor("front", {"go": go}, stateful=False)
    host.add_actor("back", {"step": step}, stateful=False)
    host.add_actor("fx", {"hit": record}, stateful=False)
    host.add_actor("sub", {"receive": record}, stateful=False, channels=["news"])
    host.start()
    test.addCleanup(host.stop, T)
    test.assertTrue(host.registered.wait(T), "host did not register")
    return host


def raw_invoke(target, actor, action, metadata=None, grpc_md=()):
    """An Invoke with request metadata and gRPC metadata of our choosing."""
    ch = grpc.insecure_channel(target)
    try:
        call = ch.unary_unary("/spawn.gateway.v1.ActorGateway/Invoke",
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=protocol_pb2.InvocationResponse.FromString)
        req = protocol_pb2.InvocationRequest(action_name=action)
        req.system.name = "tr"
        req.actor.id.name = actor
        req.actor.id.system = "tr"
        req.noop.SetInParent()
        for k, v in (metadata or {}).items():
            req.metadata[k] = v
        return call(req, timeout=T, metadata=tuple(grpc_md))
    finally:
        ch.close()


def parts(tp):
    _, trace, span, flags = tp.split("-")
    return trace, span, flags


class TracingTest(unittest.TestCase):
    def setUp(self):
        self.rx = Receiver()
        self.addCleanup(self.rx.close)
        self.rec = Recorder()

    def test_one_trace_across_pipe_effect_and_broadcast_with_parent_links(self):
        target, stop = start_gateway(
            self, "--otlp-endpoint", "http://127.0.0.1:%d" % self.rx.port,
            "--log-format", "json", "--log-level", "debug")
        start_host(self, target, self.rec)
        client = SpawnClient(target, timeout=T)
        self.addCleanup(client.close)
        tp = "00-%s-%s-01" % (TRACE, CALLER_SPAN)
        reply = client.invoke("tr", "front", "go", trace={"traceparent": tp,
                                                          "tracestate": "congo=t61rcWkgMzE"})
        self.assertEqual(wrappers_pb2.StringValue.FromString(reply.value).value, "back")
        seen = self.rec.wait(lambda s: {a for a, _, _ in s} >= {"front", "back", "fx", "sub"},
                             "turns of front, back, fx and sub")
        host_parent = {}
        for actor, action, md in seen:
            self.assertRegex(md.get("traceparent", ""), TP_RE, (actor, md))
            trace, span, flags = parts(md["traceparent"])
            self.assertEqual(trace, TRACE, "%s saw another trace: %s" % (actor, md))
            self.assertEqual(flags, "01")
            self.assertNotEqual(span, CALLER_SPAN, "%s was handed the caller's span" % actor)
            self.assertEqual(md.get("tracestate"), "congo=t61rcWkgMzE", (actor, md))
            host_parent[actor] = span
        self.assertEqual(len(set(host_parent.values())), 4, host_parent)

        # The spans: one trace, and each host's parent is a "host turn" span.
        def complete(spans):
            turns = {s.span_id.hex() for s in spans if s.name == "host turn"}
            return set(host_parent.values()) <= turns and \
                {"invoke", "pipe", "effect delivery", "broadcast delivery", "queue"} <= \
                {s.name for s in spans}
        spans = self.rx.wait(complete, "the spans of the four turns")
        mine = [s for s in spans if s.trace_id.hex() == TRACE]
        self.assertEqual(len(mine), len(spans), "spans of another trace were exported")
        by_id = {s.span_id.hex(): s for s in mine}
        self.assertEqual(len(by_id), len(mine), "a span id was used twice")

        def name_of(span_id):
            return by_id[span_id].name if span_id in by_id else None

        # invoke (front) <- the caller's span
        inv = [s for s in mine if s.name == "invoke"]
        self.assertEqual(len(inv), 1, [s.name for s in mine])
        inv = inv[0]
        self.assertEqual(inv.parent_span_id.hex(), CALLER_SPAN)
        self.assertEqual(inv.kind, 2)  # SERVER
        self.assertEqual(inv.trace_state, "congo=t61rcWkgMzE")
        attrs = {a.key: a.value.string_value for a in inv.attributes}
        self.assertEqual((attrs["spawn.system"], attrs["spawn.actor"], attrs["spawn.action"]),
                         ("tr", "front", "go"))
        # front's host turn <- invoke; front's host was handed that turn
        front_turn = by_id[host_parent["front"]]
        self.assertEqual(front_turn.parent_span_id.hex(), inv.span_id.hex())
        self.assertEqual(front_turn.kind, 3)  # CLIENT
        # pipe, effect and broadcast deliveries <- front's host turn
        for actor, name in (("back", "pipe"), ("fx", "effect delivery"),
                            ("sub", "broadcast delivery")):
            turn = by_id[host_parent[actor]]
            self.assertEqual(turn.name, "host turn")
            owner = by_id.get(turn.parent_span_id.hex())
            self.assertIsNotNone(owner, "%s's host turn has no parent span" % actor)
            self.assertEqual(owner.name, name)
            self.assertEqual(owner.parent_span_id.hex(), front_turn.span_id.hex(),
                             "%s (%s) does not continue front's turn" % (name, actor))
            self.assertEqual({a.key: a.value.string_value for a in owner.attributes}
                             ["spawn.actor"], actor)
        # every span but the invoke has its parent among the exported ones
        for s in mine:
            if s is not inv:
                self.assertIn(s.parent_span_id.hex(), by_id,
                              "%s's parent %s not exported" % (s.name, s.parent_span_id.hex()))
            self.assertLessEqual(s.start_time_unix_nano, s.end_time_unix_nano)
        # queue spans sit under their invocation
        for q in (s for s in mine if s.name == "queue"):
            self.assertIn(name_of(q.parent_span_id.hex()),
                          ("invoke", "pipe", "effect delivery", "broadcast delivery"))
        with self.rx.cv:
            path, ctype, _ = self.rx.requests[0]
        self.assertEqual(path, "/v1/traces")
        self.assertEqual(ctype, "application/x-protobuf")

        # JSON logs: every line parses; the broadcast's debug line, logged
        # during front's turn, carries the turn's context.
        _, err = stop()
        objs = []
        for line in err:
            try:
                objs.append(json.loads(line))
            except ValueError:
                self.fail("not a JSON line: %r" % line)
        b = [o for o in objs if o.get("message", "").startswith("broadcast from front")]
        self.assertTrue(b, "no broadcast line in %s" % objs[-20:])
        self.assertEqual((b[0].get("system"), b[0].get("actor"), b[0].get("action"),
                          b[0].get("trace_id")), ("tr", "front", "go", TRACE))
        self.assertRegex(b[0].get("request_id", ""), r"^[1-9][0-9]*$")

    def test_malformed_traceparent_is_replaced_and_its_tracestate_dropped(self):
        target, _ = start_gateway(self)
        start_host(self, target, self.rec)
        good_span = "b7ad6b7169203331"
        bad = [
            "00-%s-%s-01" % ("0" * 32, good_span),          # all-zero trace id
            "00-%s-%s-01" % (TRACE, "0" * 16),              # all-zero parent id
            "00-%s-%s-01" % (TRACE.upper(), good_span),     # uppercase hex
            "ff-%s-%s-01" % (TRACE, good_span),             # version ff
            "00-%s-%s-01-extra" % (TRACE, good_span),       # version 00 with more
            "00-%s-%s-1" % (TRACE, good_span),              # short flags
            "00_%s_%s_01" % (TRACE, good_span),             # wrong separators
            "junk\u00e9",                                   # not even close
            "00-%s-%s-01" % (TRACE, good_span) + "x" * 3000,  # long
        ]
        for i, tp in enumerate(bad):
            raw_invoke(target, "back", "step",
                       metadata={"traceparent": tp, "tracestate": "a=b", "n": str(i)})
        seen = self.rec.wait(lambda s: len(s) >= len(bad), "every call's turn")
        traces = set()
        for _, _, md in seen:
            i = int(md["n"])
            self.assertRegex(md.get("traceparent", ""), TP_RE, bad[i])
            self.assertNotEqual(md["traceparent"], bad[i])
            trace, span, _ = parts(md["traceparent"])
            self.assertNotEqual(trace, TRACE, "the invalid %r was continued" % bad[i])
            self.assertNotIn("tracestate", md, "tracestate kept with %r" % bad[i])
            traces.add(trace)
        self.assertEqual(len(traces), len(bad), "a started trace id was reused")
        # A valid traceparent keeps its place, but an invalid tracestate
        # (too long, a bad key) beside it is dropped; an oversized or
        # malformed gRPC header is ignored; every call is still served.
        n0 = len(seen)
        tp = "00-%s-%s-01" % ("e" * 32, good_span)
        raw_invoke(target, "back", "step",
                   metadata={"traceparent": tp, "tracestate": "k=" + "v" * 600, "n": "ts-long"})
        raw_invoke(target, "back", "step",
                   metadata={"traceparent": tp, "tracestate": "Bad Key=1", "n": "ts-bad"})
        raw_invoke(target, "back", "step", metadata={"n": "hdr-long"},
                   grpc_md=[("traceparent", tp + "-" + "z" * 7000)])
        raw_invoke(target, "back", "step", metadata={"n": "hdr-bad"},
                   grpc_md=[("traceparent", "00-" + "g" * 32 + "-" + good_span + "-01"),
                            ("tracestate", "k=v")])
        seen = self.rec.wait(lambda s: len(s) >= n0 + 4, "four more turns")
        md = {m["n"]: m for _, _, m in seen[n0:]}
        for k in ("ts-long", "ts-bad"):
            self.assertEqual(parts(md[k]["traceparent"])[0], "e" * 32, k)
            self.assertNotIn("tracestate", md[k], k)
        for k in ("hdr-long", "hdr-bad"):
            self.assertRegex(md[k]["traceparent"], TP_RE, k)
            self.assertNotEqual(parts(md[k]["traceparent"])[0], "e" * 32, k)
            self.assertNotIn("tracestate", md[k], k)

    def test_grpc_metadata_traceparent_is_continued_and_none_starts_a_trace(self):
        target, _ = start_gateway(self)
        start_host(self, target, self.rec)
        tp = "00-%s-%s-00" % (TRACE, CALLER_SPAN)
        # a later version with a field appended: read as 00, passed on as 00
        tp_v1 = "01-%s-%s-03-whatever" % ("a" * 32, CALLER_SPAN)
        raw_invoke(target, "back", "step", metadata={"n": "0"},
                   grpc_md=[("traceparent", tp), ("tracestate", "k=v")])
        raw_invoke(target, "back", "step", metadata={"n": "1"},
                   grpc_md=[("traceparent", tp_v1)])
        raw_invoke(target, "back", "step", metadata={"n": "2"})
        raw_invoke(target, "back", "step", metadata={"n": "3"})
        # the request's own valid traceparent wins over the header's
        raw_invoke(target, "back", "step",
                   metadata={"n": "4", "traceparent": "00-%s-%s-01" % ("b" * 32, CALLER_SPAN)},
                   grpc_md=[("traceparent", tp)])
        seen = self.rec.wait(lambda s: len(s) >= 5, "five turns")
        md = {int(m["n"]): m for _, _, m in seen}
        for m in md.values():
            self.assertRegex(m["traceparent"], TP_RE)
        self.assertEqual(parts(md[0]["traceparent"])[0], TRACE)
        self.assertEqual(parts(md[0]["traceparent"])[2], "00", "the sampled flag changed")
        self.assertEqual(md[0].get("tracestate"), "k=v")
        self.assertEqual(parts(md[1]["traceparent"])[0], "a" * 32)
        self.assertEqual(parts(md[1]["traceparent"])[2], "01")
        self.assertNotEqual(parts(md[2]["traceparent"])[0], parts(md[3]["traceparent"])[0])
        self.assertEqual(parts(md[2]["traceparent"])[2], "01", "a started trace is sampled")
        self.assertEqual(parts(md[4]["traceparent"])[0], "b" * 32)

    def test_credentials_never_reach_a_log_line(self):
        token, wrong = "tok-Zq7-never-logged-4f1", "tok-wrong-never-logged-9c2"
        password = "pw-otlp-never-logged-77"
        d = tempfile.TemporaryDirectory(prefix="spawn-trace-acl-")
        self.addCleanup(d.cleanup)
        policy = os.path.join(d.name, "access.yaml")
        with open(policy, "w") as f:
            f.write("principals:\n  - name: app\n    tokens: [sha256:%s]\n"
                    "    host: [tr]\n    invoke: [{system: tr}]\n"
                    % hashlib.sha256(token.encode()).hexdigest())
        target, stop = start_gateway(
            self, "--access", policy, "--log-level", "debug", "--otlp-endpoint",
            "http://spawn:%s@127.0.0.1:%d/v1/traces" % (password, self.rx.port))
        start_host(self, target, self.rec, token=token)
        good = [("authorization", "Bearer " + token)]
        raw_invoke(target, "front", "go", grpc_md=good)
        with self.assertRaises(grpc.RpcError) as e:
            raw_invoke(target, "back", "step", grpc_md=[("authorization", "Bearer " + wrong)])
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(grpc.RpcError):
            raw_invoke(target, "nobody", "step", grpc_md=good)
        self.rec.wait(lambda s: {a for a, _, _ in s} >= {"front", "back", "fx", "sub"},
                      "the workflow's turns")
        self.rx.wait(lambda s: any(x.name == "invoke" for x in s), "an exported span")
        with self.rx.cv:
            self.assertTrue(any(a and a.startswith("Basic ") for _, _, a in self.rx.requests),
                            "the endpoint's credentials were not used")
        out, err = stop()
        lines = out + err
        self.assertTrue(any("spawn:***@127.0.0.1" in x for x in lines),
                        "the redacted endpoint is not logged: %s" % lines)
        for line in lines:
            for secret in (token, wrong, password, KEY):
                self.assertNotIn(secret, line, "a credential in a log line")


class EntriesTest(unittest.TestCase):
    """Spawn's HTTP invoke route, the JSON route and scheduled invocations
    continue the caller's trace too."""

    def test_http_header_and_scheduled_invocation_continue_the_trace(self):
        import time
        import urllib.request
        rec = Recorder()
        rx = Receiver()
        self.addCleanup(rx.close)
        target, _ = start_gateway(self, "--http", "127.0.0.1:0", "--otlp-endpoint",
                                  "http://127.0.0.1:%d/v1/traces" % rx.port)
        start_host(self, target, rec)
        http_trace, sched_trace = "c" * 32, "d" * 32
        req = protocol_pb2.InvocationRequest(action_name="step")
        req.system.name = "tr"
        req.actor.id.name = "back"
        req.actor.id.system = "tr"
        req.noop.SetInParent()
        req.metadata["n"] = "http"
        r = urllib.request.Request(
            "http://127.0.0.1:%d/api/v1/system/tr/actors/back/invoke" % self.http_port,
            data=req.SerializeToString(), method="POST",
            headers={"Content-Type": "application/octet-stream",
                     "traceparent": "00-%s-%s-01" % (http_trace, CALLER_SPAN),
                     "tracestate": "h=1"})
        with urllib.request.urlopen(r, timeout=T) as resp:
            self.assertEqual(resp.status, 200)
        req.metadata["n"] = "scheduled"
        req.metadata["traceparent"] = "00-%s-%s-01" % (sched_trace, CALLER_SPAN)
        req.scheduled_to = int(time.time() * 1000) + 300
        ch = grpc.insecure_channel(target)
        self.addCleanup(ch.close)
        ch.unary_unary("/spawn.gateway.v1.ActorGateway/Invoke",
                       request_serializer=lambda m: m.SerializeToString(),
                       response_deserializer=protocol_pb2.InvocationResponse.FromString)(
            req, timeout=T)
        # The JSON route (docs/http-json.md) takes the same headers.
        json_trace = "e" * 32
        r = urllib.request.Request(
            "http://127.0.0.1:%d/v1/tr/back/step" % self.http_port,
            data=b'{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "j"}',
            method="POST",
            headers={"Content-Type": "application/json",
                     "traceparent": "00-%s-%s-01" % (json_trace, CALLER_SPAN),
                     "tracestate": "j=1"})
        with urllib.request.urlopen(r, timeout=T) as resp:
            self.assertEqual(resp.status, 200)
        seen = rec.wait(lambda s: len(s) >= 3,
                        "the HTTP call's, the JSON call's and the scheduled call's turns")
        js = [m for _, _, m in seen if "n" not in m]
        self.assertEqual(len(js), 1, seen)
        self.assertEqual(parts(js[0]["traceparent"])[0], json_trace)
        self.assertEqual(js[0].get("tracestate"), "j=1")
        md = {m["n"]: m for _, _, m in seen if "n" in m}
        self.assertEqual(parts(md["http"]["traceparent"])[0], http_trace)
        self.assertEqual(md["http"].get("tracestate"), "h=1")
        self.assertEqual(parts(md["scheduled"]["traceparent"])[0], sched_trace)
        self.assertNotEqual(parts(md["scheduled"]["traceparent"])[1], CALLER_SPAN)
        spans = rx.wait(lambda ss: any(x.name == "scheduled invocation" for x in ss) and
                        any(x.trace_id.hex() == http_trace and x.name == "invoke" for x in ss),
                        "the scheduled invocation's and the HTTP call's spans")
        sp = [x for x in spans if x.name == "scheduled invocation"][0]
        self.assertEqual((sp.trace_id.hex(), sp.parent_span_id.hex()), (sched_trace, CALLER_SPAN))
        hp = [x for x in spans if x.trace_id.hex() == http_trace and x.name == "invoke"][0]
        self.assertEqual(hp.parent_span_id.hex(), CALLER_SPAN)


class ForwardTest(unittest.TestCase):
    """Across gateways: a call entering member A for an actor member B owns
    goes over Peer.Forward with its trace; B's spans continue A's."""

    def test_peer_forward_carries_the_trace(self):
        rx = Receiver()
        self.addCleanup(rx.close)
        rec = Recorder()
        d = tempfile.TemporaryDirectory(prefix="spawn-trace-view-")
        self.addCleanup(d.cleanup)
        views = [os.path.join(d.name, "view-a"), os.path.join(d.name, "view-b")]
        for v in views:
            with open(v, "w") as f:
                f.write("version 1\n")
        ends = []
        for v in views:
            ends.append(start_gateway(self, "--cluster-test-view", v, "--otlp-endpoint",
                                      "http://127.0.0.1:%d" % rx.port, keep_stdout=True))
        (ta, _, pa), (tb, _, pb) = ends
        served = "tr/back,tr/front,tr/fx,tr/sub"
        for i, (v, proc) in enumerate(((views[0], pa), (views[1], pb))):
            with open(v + ".tmp", "w") as f:
                f.write("version 2\nself %s\nmember a %s 2 -\nmember b %s 2 %s\n"
                        % ("ab"[i], ta, tb, served))
            os.rename(v + ".tmp", v)
            proc.send_signal(__import__("signal").SIGUSR1)
            for line in proc.stdout:
                if line.startswith("view 2"):
                    break
            else:
                self.fail("gateway %s did not apply view 2" % "ab"[i])
        start_host(self, tb, rec)
        raw_invoke(ta, "back", "step", metadata={"n": "fwd"},
                   grpc_md=[("traceparent", "00-%s-%s-01" % (TRACE, CALLER_SPAN))])
        seen = rec.wait(lambda s: len(s) >= 1, "the forwarded turn")
        host_span = parts(seen[0][2]["traceparent"])[1]
        self.assertEqual(parts(seen[0][2]["traceparent"])[0], TRACE)

        def linked(spans):
            names = {s.name for s in spans}
            return {"invoke", "invoke (owner)"} <= names and \
                host_span in {s.span_id.hex() for s in spans}
        spans = rx.wait(linked, "A's invoke and B's owner spans")
        entry = [s for s in spans if s.name == "invoke"][0]
        owner = [s for s in spans if s.name == "invoke (owner)"][0]
        self.assertEqual(entry.parent_span_id.hex(), CALLER_SPAN)
        self.assertEqual(owner.parent_span_id.hex(), entry.span_id.hex(),
                         "the owner's span does not continue the entry member's")
        turn = [s for s in spans if s.span_id.hex() == host_span][0]
        self.assertEqual(turn.parent_span_id.hex(), owner.span_id.hex())
        self.assertTrue(all(s.trace_id.hex() == TRACE for s in spans))


class PythonRuntimeTest(unittest.TestCase):
    """The Python runtime exposes the trace context and passes it on."""

    def test_context_exposes_the_trace_and_side_effects_carry_it(self):
        from spawn.gateway.v1 import gateway_pb2
        import spawn_host
        task = gateway_pb2.InvocationTask(request_id=5)
        task.invocation.actor.name = "a"
        task.invocation.actor.system = "s"
        task.invocation.action_name = "go"
        tp = "00-%s-%s-01" % (TRACE, CALLER_SPAN)
        task.invocation.current_context.metadata["traceparent"] = tp
        task.invocation.current_context.metadata["tracestate"] = "k=v"
        host = type("H", (), {"system": "s"})()
        ctx = spawn_host.Context(task, host)
        self.assertEqual(ctx.traceparent, tp)
        self.assertEqual(ctx.trace_id, TRACE)
        self.assertEqual(ctx.trace_context(), {"traceparent": tp, "tracestate": "k=v"})
        ctx.side_effect("b", "note")
        own = "00-%s-%s-01" % ("b" * 32, CALLER_SPAN)
        ctx.side_effect("c", "note", metadata={"traceparent": own})
        self.assertEqual(dict(ctx._effects[0].metadata), {"traceparent": tp, "tracestate": "k=v"})
        self.assertEqual(ctx._effects[1].metadata["traceparent"], own)
        bare = gateway_pb2.InvocationTask()
        bare.invocation.actor.name = "a"
        ctx = spawn_host.Context(bare, host)
        self.assertIsNone(ctx.traceparent)
        self.assertIsNone(ctx.trace_id)
        self.assertEqual(ctx.trace_context(), {})


if __name__ == "__main__":
    unittest.main()
