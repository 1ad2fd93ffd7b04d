#!/usr/bin/python3
"""Spawn's HTTP/1.1 protocol end to end (docs/protocol.md, "Spawn's HTTP
protocol"): the real gateway with --http, a host and a client that speak the
protocol as Spawn's SDKs do (spawn_http.py: the standard library's HTTP
modules and our protobuf modules only), and, beside them, a gRPC host and a
gRPC client of our own SDK, to check that hosts of both kinds are
first-class: the same mailboxes, state, store, workflows, timers and
schedules, and calls between them both ways. Then hostile input at the HTTP
edge, from clients and from a host.

Readiness: the gateway's "listening" lines, the host SDK's registered event,
and polling of actor state with a deadline (no sleeps)."""
import concurrent.futures
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("SPAWN_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path[:0] = [os.path.join(BUILD, "python-gen"), os.path.join(ROOT, "sdk", "python"), HERE]

from google.protobuf import any_pb2  # noqa: E402
from spawn.actors import actor_pb2, protocol_pb2  # noqa: E402
from spawn_client import SpawnClient  # noqa: E402
from spawn_host import ActorHost  # noqa: E402

import spawn_http as sh  # noqa: E402

GATEWAY = os.environ.get("SPAWN_GATEWAY") or os.path.join(BUILD, "gateway", "spawn-gateway")
KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
HS, GS = "shttp", "sgrpc"  # the HTTP host's system, the gRPC host's
OK, NOT_FOUND, ERROR = 1, 2, 3
MAX_BODY = 64 * 1024
MAX_PENDING = 6
HOST_TIMEOUT_MS, HOST_GRACE_MS = 3000, 500


def wait_until(fn, what, timeout=10.0):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)  # polling a condition, not a wait for time to pass


def jnum(any_msg):
    return int(sh.json_of(any_msg))


# ---- the HTTP host's actors (system shttp) -----------------------------------------


def add(ctx, payload):
    total = (jnum(ctx.state) if ctx.state is not None else 0) + jnum(payload)
    st = sh.json_any(str(total))
    return st, st


def fail(ctx, payload):
    raise RuntimeError("handler threw")


def sink_take(ctx, payload):
    seen = sh.json_of(ctx.state) if ctx.state is not None else ""
    text = sh.json_of(payload) if payload is not None else "-"
    st = sh.json_any(seen + "|" + text)
    return st, sh.json_any("sink:" + text)


def pipe_to(ctx, payload):
    ctx.workflow.pipe.actor = "sink"
    ctx.workflow.pipe.action_name = "take"
    return None, sh.json_any("piped-" + sh.json_of(payload))


def fwd_to(ctx, payload):
    ctx.workflow.forward.actor = "sink"
    ctx.workflow.forward.action_name = "take"
    return None, sh.json_any("ignored")


def effects(ctx, payload):
    inv = ctx.invocation
    now_ms = int(time.time() * 1000)
    e = ctx.workflow.effects.add().request  # later, in this system
    e.system.name = HS
    e.actor.id.name = "sink"
    e.actor.id.system = HS
    e.action_name = "take"
    e.value.CopyFrom(sh.json_any("effect"))
    setattr(e, "async", True)
    e.caller.CopyFrom(inv.actor)
    e.scheduled_to = now_ms + 200
    g = ctx.workflow.effects.add().request  # now, to the gRPC host's system
    g.system.name = GS
    g.actor.id.name = "ledger"
    g.actor.id.system = GS
    g.action_name = "Record"
    g.value.CopyFrom(sh.json_any("from-http"))
    setattr(g, "async", True)
    g.caller.CopyFrom(inv.actor)
    return None, "noop"


def cast(ctx, payload):
    ctx.workflow.broadcast.channel_group = "news"
    ctx.workflow.broadcast.value.CopyFrom(sh.json_any("extra"))
    return None, "noop"


def heard(ctx, payload):
    n = (jnum(ctx.state) if ctx.state is not None else 0) + 1
    return sh.json_any(str(n)), "noop"


def tick(ctx, payload):
    n = (jnum(ctx.state) if ctx.state is not None else 0) + 1
    return sh.json_any(str(n)), "noop"


def tag(ctx, payload):
    ctx.tags["color"] = sh.json_of(payload)
    ctx.checkpoint = True
    return None, sh.json_any(ctx.tags.get("color", ""))


def noop(ctx, payload):
    return None, "noop"


def noop_any(ctx, payload):
    return None, any_pb2.Any(type_url=sh.NOOP_URL)


def echo(ctx, payload):
    return None, payload if payload is not None else "noop"


def garbage(ctx, payload):
    return b"\x08\x96\x01\xff\xff", None  # a raw body: not a message


def no_context(ctx, payload):
    return protocol_pb2.ActorInvocationResponse(actor_name="counter").SerializeToString(), None


def slow(ctx, payload):
    # Holds its HTTP request open until the test releases it (an event,
    # not a timer), so that many requests are in progress at once.
    GATE.wait(20)
    return None, "noop"


GATE = threading.Event()
HANG = threading.Event()


def hang(ctx, payload):
    # Answers only once the test lets it (after the gateway gave up on it).
    HANG.wait(30)
    return None, "noop"


HANDLERS = {
    ("counter", "add"): add, ("counter", "fail"): fail, ("counter", "tag"): tag,
    ("counter", "pipe_to"): pipe_to, ("counter", "fwd_to"): fwd_to,
    ("counter", "effects"): effects, ("counter", "cast"): cast,
    ("counter", "garbage"): garbage, ("counter", "no_context"): no_context,
    ("counter", "noop"): noop, ("counter", "noop_any"): noop_any, ("counter", "echo"): echo,
    ("sink", "take"): sink_take, ("listener", "heard"): heard, ("clock", "tick"): tick,
    ("tmpl", "add"): add, ("tmpl", "slow"): slow, ("tmpl", "hang"): hang,
}


def http_actors():
    return [
        sh.actor(HS, "counter", ["add", "fail", "tag", "pipe_to", "fwd_to", "effects", "cast",
                                 "noop", "noop_any", "echo", "garbage", "no_context"]),
        sh.actor(HS, "sink", ["take"]),
        sh.actor(HS, "listener", ["heard"], channels=[("news", "heard")]),
        sh.actor(HS, "clock", ["tick"], timers={"tick": 50}),
        sh.actor(HS, "tmpl", ["add", "slow", "hang"], kind=actor_pb2.UNNAMED),
    ]


class Gateway:
    def __init__(self, d, host_port, extra=()):
        self.d = d
        argv = [GATEWAY, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                "--spawn-host-url", "http://127.0.0.1:%d" % host_port,
                "--statestore", "sqlite://" + os.path.join(d, "state.db"),
                "--http-max-body", str(MAX_BODY), "--http-max-pending", str(MAX_PENDING),
                "--registration-grace", "0", "--log-level", "info",
                "--host-timeout", str(HOST_TIMEOUT_MS), "--host-grace", str(HOST_GRACE_MS)
                ] + list(extra)
        env = dict(os.environ, SPAWN_STATESTORE_KEY=KEY)
        self.log = open(os.path.join(d, "gateway.log"), "ab")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, env=env,
                                  text=True)
        self.grpc_port = self.http_port = None
        for line in self.p.stdout:
            w = line.split()
            if len(w) == 3 and w[0] == "listening" and w[1].startswith("http://"):
                self.http_port = int(w[2])
                break
            if len(w) == 3 and w[0] == "listening":
                self.grpc_port = int(w[2])
        if not self.http_port or not self.grpc_port:
            raise RuntimeError("gateway exited before its listening lines: see %s/gateway.log"
                               % d)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(30)
        self.p.stdout.close()
        self.log.close()
        return rc


class SpawnHttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.host = sh.SpawnHttpHost(HANDLERS, HS).start()
        cls.gw = Gateway(cls.tmp.name, cls.host.port)
        cls.client = sh.SpawnHttpClient("127.0.0.1", cls.gw.http_port)
        st, resp = cls.client.register(HS, http_actors())
        if st != 200 or resp.status.status != OK or resp.status.message != "Accepted":
            raise RuntimeError("registration: %d %s" % (st, resp))
        # The gRPC host of our SDK, in another system.
        cls.records = []

        def record(state, payload, ctx):
            cls.records.append(sh.json_of(payload))
            n = (jnum(state) if state is not None else 0) + 1
            return sh.json_any(str(n)), sh.json_any(str(n))

        def call_http(state, payload, ctx):
            ctx.side_effect("counter", "add", sh.json_any("100"), system=HS)
            return None, sh.json_any("sent")

        cls.ghost = ActorHost("127.0.0.1:%d" % cls.gw.grpc_port, GS,
                              proto_path=os.path.join(BUILD, "python-gen"))
        cls.ghost.add_actor("ledger", {"Record": record, "CallHttp": call_http},
                            stateful=True, kind="NAMED")
        cls.ghost.start()
        if not cls.ghost.registered.wait(15):
            raise RuntimeError("the gRPC host did not register")
        cls.grpc = SpawnClient("127.0.0.1:%d" % cls.gw.grpc_port)

    @classmethod
    def tearDownClass(cls):
        GATE.set()
        HANG.set()
        cls.grpc.close()
        cls.ghost.stop()
        cls.client.close()
        rc = cls.gw.stop()
        cls.host.stop()
        cls.tmp.cleanup()
        if rc != 0:
            raise AssertionError("the gateway exited %d on SIGTERM" % rc)

    def invoke(self, actor, action, value=None, **kw):
        return self.client.invoke(HS, actor, action, value, **kw)

    def state_of(self, actor):
        st, r = self.invoke(actor, "get")
        self.assertEqual(st, 200, r)
        return r.value if r.WhichOneof("payload") == "value" else None

    # -- the protocol ---------------------------------------------------------------

    def test_a_health(self):
        for path, want in (("/health", 200), ("/health/liveness", 200),
                           ("/health/readiness", 200), ("/health/nope", 404)):
            c = sh.http.client.HTTPConnection("127.0.0.1", self.gw.http_port, timeout=10)
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            c.close()
            self.assertEqual(r.status, want, path)
            if want == 200:
                self.assertEqual(body, b'{"status":"up"}')

    def test_b_invoke_keeps_state_on_one_connection(self):
        c = sh.SpawnHttpClient("127.0.0.1", self.gw.http_port)
        totals = []
        for _ in range(5):
            st, r = c.invoke(HS, "counter", "add", sh.json_any("1"))
            self.assertEqual(st, 200, r)
            self.assertEqual(r.status.status, OK)
            self.assertEqual(r.value.type_url, sh.JSON_URL)  # untouched
            totals.append(jnum(r.value))
        self.assertEqual(totals, [totals[0] + i for i in range(5)])
        self.assertEqual(c.connects, 1, "the connection was not kept alive")
        # The built-in get: the stored Any, byte for byte, without the host.
        calls = len(self.host.calls)
        st, r = c.invoke(HS, "counter", "get")
        self.assertEqual(st, 200)
        self.assertEqual(r.value.SerializeToString(),
                         sh.json_any(str(totals[-1])).SerializeToString())
        self.assertEqual(len(self.host.calls), calls, "get went to the host")
        c.close()

    def test_c_errors_have_spawns_shape(self):
        before = jnum(self.state_of("counter"))
        st, r = self.invoke("counter", "fail", sh.json_any("1"))
        self.assertEqual((st, r.status.status), (500, ERROR))
        self.assertIn("HTTP 400", r.status.message)
        self.assertEqual(jnum(self.state_of("counter")), before, "a failed turn changed state")
        st, r = self.invoke("counter", "nope")
        self.assertEqual((st, r.status.status), (500, NOT_FOUND), r.status.message)
        st, r = self.invoke("ghost", "add", sh.json_any("1"))
        self.assertEqual((st, r.status.status), (500, NOT_FOUND))
        self.assertIn("ghost", r.status.message)

    def test_d_async_is_queued_before_the_answer(self):
        before = jnum(self.state_of("counter"))
        st, r = self.invoke("counter", "add", sh.json_any("5"), async_=True)
        self.assertEqual((st, r.status.status), (200, OK))
        self.assertIsNone(r.WhichOneof("payload"), "an async answer carries no payload")
        self.assertEqual(jnum(self.state_of("counter")), before + 5)

    def test_e_unnamed_instances(self):
        st, r = self.client.spawn(HS, ["t1"], "tmpl")
        self.assertEqual((st, r.status.status), (200, OK), r)
        st, r = self.invoke("t1", "add", sh.json_any("7"))
        self.assertEqual((st, jnum(r.value)), (200, 7))
        st, r = self.invoke("t2", "add", sh.json_any("9"), register_ref="tmpl")
        self.assertEqual((st, jnum(r.value)), (200, 9))
        st, r = self.invoke("t1", "add", sh.json_any("1"))
        self.assertEqual(jnum(r.value), 8)
        st, r = self.client.spawn(HS, ["t3"], "counter")
        self.assertEqual((st, r.status.status), (500, ERROR))  # not UNNAMED

    def test_f_noop_both_ways(self):
        st, r = self.invoke("counter", "noop", noop=True)
        self.assertEqual((st, r.WhichOneof("payload")), (200, "noop"))
        st, r = self.invoke("counter", "noop_any", any_pb2.Any(type_url=sh.NOOP_URL))
        self.assertEqual((st, r.value.type_url), (200, sh.NOOP_URL))
        st, r = self.invoke("counter", "echo", any_pb2.Any(type_url=sh.NOOP_URL))
        self.assertEqual(r.value.type_url, sh.NOOP_URL)

    def test_g_pipe_and_forward(self):
        st, r = self.invoke("counter", "pipe_to", sh.json_any("p"))
        self.assertEqual((st, sh.json_of(r.value)), (200, "sink:piped-p"))
        st, r = self.invoke("counter", "fwd_to", sh.json_any("f"))
        self.assertEqual((st, sh.json_of(r.value)), (200, "sink:f"))

    def test_h_side_effects_both_kinds_of_host(self):
        n = len(self.records)
        st, r = self.invoke("counter", "effects", sh.json_any("x"))
        self.assertEqual(st, 200, r)
        wait_until(lambda: len(self.records) > n, "the effect on the gRPC host's actor")
        self.assertEqual(self.records[n], "from-http")
        wait_until(lambda: "|effect" in sh.json_of(self.state_of("sink") or sh.json_any("")),
                   "the scheduled effect on sink")
        # The other way: a gRPC host's effect runs on the HTTP host.
        before = jnum(self.state_of("counter"))
        self.grpc.invoke(GS, "ledger", "CallHttp", sh.json_any(""))
        wait_until(lambda: jnum(self.state_of("counter")) == before + 100,
                   "the gRPC host's effect on the HTTP host's actor")

    def test_i_broadcast_and_timer(self):
        self.invoke("counter", "cast", noop=True)
        wait_until(lambda: self.state_of("listener") is not None, "the broadcast")
        self.invoke("clock", "tick", noop=True)  # activates it: its timer runs
        wait_until(lambda: jnum(self.state_of("clock") or sh.json_any("0")) >= 4,
                   "timer turns on the HTTP host")

    def test_j_clients_of_both_kinds(self):
        # A gRPC client on the HTTP host's actor: the same state.
        before = jnum(self.state_of("counter"))
        reply = self.grpc.invoke(HS, "counter", "add", sh.json_any("3"))
        self.assertEqual(jnum(reply), before + 3)
        # An HTTP client on the gRPC host's actor.
        st, r = self.client.invoke(GS, "ledger", "Record", sh.json_any("from-http-client"))
        self.assertEqual((st, r.status.status), (200, OK), r.status.message)
        self.assertIn("from-http-client", self.records)

    def test_k_tags_and_checkpoint(self):
        st, r = self.invoke("counter", "tag", sh.json_any("blue"))
        self.assertEqual((st, sh.json_of(r.value)), (200, "blue"))
        st, r = self.invoke("counter", "tag", sh.json_any("red"))
        self.assertEqual(sh.json_of(r.value), "red")

    def test_l_scheduled_invocation(self):
        due = int(time.time() * 1000) + 300
        st, r = self.invoke("sink", "take", sh.json_any("later"), scheduled_to=due)
        self.assertEqual((st, r.status.status), (200, OK), r.status.message)
        wait_until(lambda: "|later" in sh.json_of(self.state_of("sink") or sh.json_any("")),
                   "the scheduled invocation")

    # -- hostile input ----------------------------------------------------------------

    def post(self, path, body, ctype=sh.OCTET):
        c = sh.SpawnHttpClient("127.0.0.1", self.gw.http_port)
        try:
            return c.post(path, body, ctype)
        finally:
            c.close()

    def expect_error(self, st, data, want_status, want_text):
        r = protocol_pb2.InvocationResponse()
        r.ParseFromString(data)
        self.assertEqual(st, want_status, r)
        self.assertEqual(r.status.status, ERROR)
        self.assertIn(want_text, r.status.message)

    def test_m_hostile_clients(self):
        path = "/api/v1/system/%s/actors/counter/invoke" % HS
        st, data = self.post(path, b"\xff\xff\xff", "text/plain")
        self.expect_error(st, data, 415, "protobuf")
        st, data = self.post(path, b"\xff\xff\xff\xff")
        self.expect_error(st, data, 500, "not a valid")
        req = protocol_pb2.InvocationRequest(action_name="add")
        req.system.name = HS
        req.actor.id.name = "coun\x00ter"
        st, data = self.post(path, req.SerializeToString())
        self.expect_error(st, data, 500, "actor.id.name")
        req.actor.id.name = "counter"
        req.metadata["spawn-retry"] = "x"
        st, data = self.post(path, req.SerializeToString())
        self.expect_error(st, data, 500, "reserved")
        del req.metadata["spawn-retry"]
        req.value.CopyFrom(any_pb2.Any(type_url=sh.JSON_URL, value=b"x" * (MAX_BODY + 1)))
        st, data = self.post(path, req.SerializeToString())
        self.expect_error(st, data, 413, "size limit")
        st, data = self.post(path, b"")  # empty: no system, actor or action
        self.expect_error(st, data, 500, "required")
        st, _ = self.post("/api/v1/system/%s/actors/counter/nope" % HS, b"")
        self.assertEqual(st, 404)
        c = sh.http.client.HTTPConnection("127.0.0.1", self.gw.http_port, timeout=10)
        c.request("GET", "/api/v1/system")
        self.assertEqual(c.getresponse().status, 405)
        c.close()
        bad = sh.SpawnHttpClient("127.0.0.1", self.gw.http_port)
        st, r = bad.register("", [])
        self.assertEqual((st, r.status.status), (500, ERROR))
        st, r = bad.register(HS + "x", [sh.actor(HS + "x", "a", [])])  # no actions
        self.assertEqual((st, r.status.status), (500, ERROR))
        bad.close()
        # A header far over libmicrohttpd's per-connection memory: refused by
        # the listener itself.
        c = sh.http.client.HTTPConnection("127.0.0.1", self.gw.http_port, timeout=10)
        c.putrequest("POST", path)
        c.putheader("X-Big", "b" * 100000)
        c.putheader("Content-Length", "0")
        c.endheaders()
        self.assertGreaterEqual(c.getresponse().status, 400)
        c.close()
        # Still serving, on the same kind of connection.
        st, r = self.invoke("counter", "add", sh.json_any("0"))
        self.assertEqual(st, 200)

    def test_n_hostile_host_replies(self):
        before = jnum(self.state_of("counter"))
        for action, text in (("garbage", "not an ActorInvocationResponse"),
                             ("no_context", "without updated_context")):
            st, r = self.invoke("counter", action, sh.json_any("1"))
            self.assertEqual((st, r.status.status), (500, ERROR), action)
            self.assertIn(text, r.status.message)
        self.assertEqual(jnum(self.state_of("counter")), before)

    def test_o_bounded_requests_in_progress(self):
        GATE.clear()

        def call(i):
            c = sh.SpawnHttpClient("127.0.0.1", self.gw.http_port)
            try:
                return c.invoke(HS, "slow%d" % i, "slow", register_ref="tmpl")
            finally:
                c.close()

        with concurrent.futures.ThreadPoolExecutor(MAX_PENDING + 4) as ex:
            futs = [ex.submit(call, i) for i in range(MAX_PENDING + 4)]
            # Those over the bound are refused at once, while the others wait
            # (none of those can end before the gate opens).
            refused = wait_until(lambda: (lambda d: d if len(d) >= 4 else None)(
                [f for f in futs if f.done()]), "4 refusals")
            st, r = refused[0].result()
            self.assertEqual((st, r.status.status), (503, ERROR))
            self.assertIn("--http-max-pending", r.status.message)
            GATE.set()
            codes = sorted(f.result()[0] for f in futs)
        self.assertEqual(codes.count(200), MAX_PENDING, codes)
        self.assertEqual(codes.count(503), 4, codes)

    def test_p_a_host_that_does_not_answer_in_time(self):
        st, r = self.invoke("h1", "add", sh.json_any("2"), register_ref="tmpl")
        self.assertEqual((st, jnum(r.value)), (200, 2))
        t0 = time.monotonic()
        st, r = self.invoke("h1", "hang", noop=True)
        self.assertEqual((st, r.status.status), (500, ERROR))
        self.assertGreaterEqual(time.monotonic() - t0, HOST_TIMEOUT_MS / 1000.0 * 0.9)
        # The call was written: the host may still run it, so the actor's
        # next turn waits until the transfer is aborted (deadline + grace),
        # then runs with the state the hung turn never changed.
        t1 = time.monotonic()
        st, r = self.invoke("h1", "add", sh.json_any("1"))
        self.assertEqual((st, jnum(r.value)), (200, 3), r.status.message)
        # The host answers at once (a new connection, a thread of its own):
        # the wait was the held turn.
        self.assertGreaterEqual(time.monotonic() - t1, HOST_GRACE_MS / 1000.0 * 0.6)
        HANG.set()

    def test_z_state_survives_a_restart_and_the_host_saw_no_fault(self):
        cls = type(self)
        before = self.state_of("counter")
        self.assertEqual(cls.gw.stop(), 0)
        cls.grpc.close()
        cls.gw = Gateway(cls.tmp.name, cls.host.port)
        cls.client.close()
        cls.client = sh.SpawnHttpClient("127.0.0.1", cls.gw.http_port)
        st, r = cls.client.register(HS, http_actors())
        self.assertEqual((st, r.status.message), (200, "Accepted"))
        cls.grpc = SpawnClient("127.0.0.1:%d" % cls.gw.grpc_port)
        after = self.state_of("counter")
        self.assertEqual(after.SerializeToString(), before.SerializeToString())
        st, r = self.invoke("counter", "add", sh.json_any("1"))
        self.assertEqual(jnum(r.value), jnum(before) + 1)
        self.assertEqual(self.host.faults, [])


if __name__ == "__main__":
    unittest.main()
