"""Tests of spawn_host against a fake gateway run in-process.

    /usr/bin/python3 -m unittest sdk/python/test_host.py      (or -v)

Uses the generated modules in $SPAWN_PY_PROTO_OUT when set; otherwise runs
sdk/python/gen.sh into a temporary directory.
"""

import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
EXAMPLE_HOST = os.path.join(ROOT, "examples", "incrementor", "python", "host.py")

_tmp = None
PROTO_OUT = os.environ.get("SPAWN_PY_PROTO_OUT")
if not PROTO_OUT:
    _tmp = tempfile.mkdtemp(prefix="spawn-py-")
    PROTO_OUT = _tmp
    subprocess.run(["sh", os.path.join(HERE, "gen.sh"), PROTO_OUT], check=True)
sys.path.insert(0, PROTO_OUT)
sys.path.insert(0, HERE)

import grpc  # noqa: E402
from google.protobuf import any_pb2  # noqa: E402

import spawn_host  # noqa: E402
from spawn_host import ActorError, ActorHost, StatusCode, unpack  # noqa: E402
from spawn.actors import actor_pb2  # noqa: E402
from spawn.actors import protocol_pb2  # noqa: E402
from spawn.gateway.v1 import gateway_pb2  # noqa: E402
import incrementor_pb2 as inc  # noqa: E402

T = 5.0  # seconds: the longest any single step may take

# The tests provoke handler failures and refused registrations on purpose;
# set SPAWN_PY_TEST_LOG=1 to see the host's log anyway.
if not os.environ.get("SPAWN_PY_TEST_LOG"):
    logging.getLogger("spawn_host").setLevel(logging.CRITICAL)


def tearDownModule():
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


class FakeStream:
    """One Connect stream, seen from the gateway."""

    _END = object()

    def __init__(self, registration):
        self.registration = registration   # the first HostMessage
        self.out = queue.Queue()           # GatewayMessages to send
        self.results = queue.Queue()       # InvocationResults received
        self.ended = threading.Event()     # the host closed its side
        self.asked = False                 # the host asked for batches
        self.result_msgs = 0               # HostMessages carrying results
        self.result_batches = 0            # ... of which ResultBatches

    def send_task(self, request_id, action, state=None, payload=None,
                  actor="incrementor", system="spawn-system"):
        t = gateway_pb2.InvocationTask(request_id=request_id)
        inv = t.invocation
        inv.actor.name = actor
        inv.actor.system = system
        inv.action_name = action
        if state is not None:
            inv.current_context.state.CopyFrom(state)
        if payload is None:
            inv.noop.SetInParent()
        else:
            inv.value.Pack(payload)
        self.out.put(gateway_pb2.GatewayMessage(invocation=t))

    def send_batch(self, tasks):
        """tasks: [(request_id, action, payload)] as one TaskBatch."""
        gm = gateway_pb2.GatewayMessage()
        for rid, action, payload in tasks:
            t = gm.tasks.tasks.add(request_id=rid)
            t.invocation.actor.name = "incrementor"
            t.invocation.actor.system = "spawn-system"
            t.invocation.action_name = action
            t.invocation.value.Pack(payload)
        self.out.put(gm)

    def result(self):
        return self.results.get(timeout=T)

    def close(self):
        self.out.put(self._END)


class FakeGateway:
    def __init__(self, address="127.0.0.1:0", refuse=False, grant=False):
        self.streams = queue.Queue()   # a FakeStream per registration
        self.refuse = refuse
        self.grant = grant             # grant batches to a host that asks
        self.server = grpc.server(ThreadPoolExecutor(8))
        handler = grpc.stream_stream_rpc_method_handler(
            self._connect,
            request_deserializer=gateway_pb2.HostMessage.FromString,
            response_serializer=gateway_pb2.GatewayMessage.SerializeToString)
        self.server.add_generic_rpc_handlers([
            grpc.method_handlers_generic_handler(
                "spawn.gateway.v1.HostGateway", {"Connect": handler})])
        port = self.server.add_insecure_port(address)
        self.target = ("127.0.0.1:%d" % port) if address.endswith(":0") else address
        self.server.start()

    def _connect(self, requests, context):
        refuse = self.refuse
        first = next(requests)
        s = FakeStream(first)
        s.asked = ("spawn-link", "batch") in tuple(context.invocation_metadata())
        if self.grant and s.asked:
            context.send_initial_metadata((("spawn-link", "batch"),))
        # Unblock the sender below when the RPC ends, whoever ends it.
        context.add_callback(s.close)

        def read():
            try:
                for m in requests:
                    kind = m.WhichOneof("msg")
                    if kind in ("result", "results"):
                        s.result_msgs += 1
                    if kind == "result":
                        s.results.put(m.result)
                    elif kind == "results":
                        s.result_batches += 1
                        for r in m.results.results:
                            s.results.put(r)
            except Exception:
                pass
            s.ended.set()

        threading.Thread(target=read, daemon=True).start()
        resp = gateway_pb2.GatewayMessage()
        resp.registration.status.status = (
            protocol_pb2.ERROR if refuse else protocol_pb2.OK)
        resp.registration.proxy_info.proxy_name = "fake-gateway"
        self.streams.put(s)
        yield resp
        if refuse:
            return
        while True:
            m = s.out.get()
            if m is FakeStream._END:
                return
            yield m

    def next_stream(self):
        return self.streams.get(timeout=T)

    def stop(self):
        self.server.stop(grace=None)


def add_handler(checkpoint=False):
    def add(state, payload, ctx):
        s = unpack(state, inc.State)
        s.total += unpack(payload, inc.Add).value
        return s, inc.Total(total=s.total), checkpoint
    return add


def new_host(target, **kw):
    h = ActorHost(target, "spawn-system", min_backoff=0.05, max_backoff=0.2, **kw)
    h.add_actor("incrementor", {"Add": add_handler()}, state_type=inc.State,
                stateful=True, snapshot_ms=2000, deactivate_ms=60000)
    return h


class HostTest(unittest.TestCase):
    def setUp(self):
        self.gw = FakeGateway()
        self.host = None

    def run_batch(self, s, n):
        """Sends n Add tasks as one TaskBatch; checks each is answered once
        with its own total."""
        s.send_batch([(i, "Add", inc.Add(value=i)) for i in range(1, n + 1)])
        seen = {}
        for _ in range(n):
            r = s.result()
            self.assertNotIn(r.request_id, seen)
            self.assertEqual(r.WhichOneof("outcome"), "response", r)
            seen[r.request_id] = unpack(r.response.value, inc.Total).total
        self.assertEqual(seen, {i: i for i in range(1, n + 1)})

    def test_batches_both_ways_when_granted(self):
        self.gw.stop()
        self.gw = FakeGateway(grant=True)
        s = self.start(new_host(self.gw.target))
        self.assertTrue(s.asked)
        self.run_batch(s, 300)
        self.assertGreater(s.result_batches, 0)
        self.assertLess(s.result_msgs, 300)

    def test_single_results_when_not_granted(self):
        s = self.start(new_host(self.gw.target))
        self.assertTrue(s.asked)
        self.run_batch(s, 300)
        self.assertEqual(s.result_batches, 0)
        self.assertEqual(s.result_msgs, 300)

    def tearDown(self):
        if self.host is not None:
            self.host.stop(timeout=T)
        self.gw.stop()

    def start(self, host):
        self.host = host
        host.start()
        s = self.gw.next_stream()
        self.assertTrue(host.registered.wait(T))
        return s

    def test_register_invoke_unknown_reconnect(self):
        s = self.start(new_host(self.gw.target))

        # Registration content.
        self.assertEqual(s.registration.WhichOneof("msg"), "registration")
        reg = s.registration.registration
        self.assertEqual(reg.actor_system.name, "spawn-system")
        self.assertEqual(list(reg.actor_system.registry.actors), ["incrementor"])
        a = reg.actor_system.registry.actors["incrementor"]
        self.assertEqual(a.id.name, "incrementor")
        self.assertEqual(a.id.system, "spawn-system")
        self.assertEqual([x.name for x in a.actions], ["Add"])
        self.assertTrue(a.settings.stateful)
        self.assertEqual(a.settings.kind, actor_pb2.NAMED)
        self.assertEqual(a.settings.state_type, "examples.incrementor.State")
        self.assertEqual(a.settings.snapshot_strategy.timeout.timeout, 2000)
        self.assertEqual(a.settings.deactivation_strategy.timeout.timeout, 60000)
        self.assertTrue(reg.service_info.support_library_name)
        self.assertEqual(self.host.proxy_info.proxy_name, "fake-gateway")

        # Two invocations, the state threaded through by the "gateway".
        state = None
        for rid, want in ((1, 1), (2, 2)):
            s.send_task(rid, "Add", state=state, payload=inc.Add(value=1))
            r = s.result()
            self.assertEqual(r.request_id, rid)
            self.assertEqual(r.WhichOneof("outcome"), "response")
            resp = r.response
            self.assertEqual(resp.actor_name, "incrementor")
            self.assertEqual(resp.actor_system, "spawn-system")
            self.assertFalse(resp.checkpoint)
            self.assertEqual(resp.updated_context.state.type_url,
                             "type.googleapis.com/examples.incrementor.State")
            self.assertEqual(unpack(resp.value, inc.Total).total, want)
            self.assertEqual(resp.value.type_url,
                             "type.googleapis.com/examples.incrementor.Total")
            state = resp.updated_context.state
            self.assertEqual(unpack(state, inc.State).total, want)

        # Unknown action and unknown actor: HostError NOT_FOUND.
        s.send_task(3, "Nope", state=state, payload=inc.Add(value=1))
        r = s.result()
        self.assertEqual(r.request_id, 3)
        self.assertEqual(r.WhichOneof("outcome"), "error")
        self.assertEqual(r.error.code, 5)
        self.assertIn("Nope", r.error.message)
        s.send_task(4, "Add", actor="ghost", payload=inc.Add(value=1))
        r = s.result()
        self.assertEqual((r.request_id, r.error.code), (4, StatusCode.NOT_FOUND))

        # The gateway closes the stream: the host reconnects and re-registers.
        s.close()
        s2 = self.gw.next_stream()
        self.assertEqual(s2.registration.registration.actor_system.name,
                         "spawn-system")
        self.assertTrue(s.ended.wait(T))
        self.assertTrue(self.host.registered.wait(T))
        s2.send_task(1, "Add", state=state, payload=inc.Add(value=5))
        r = s2.result()
        self.assertEqual(unpack(r.response.value, inc.Total).total, 7)
        self.assertGreaterEqual(self.host.registrations, 2)

    def test_errors_checkpoint_and_noop(self):
        def boom(state, payload, ctx):
            raise ActorError(StatusCode.FAILED_PRECONDITION, "not now")

        def bug(state, payload, ctx):
            return 1 // 0

        def keep(state, payload, ctx):
            self.assertIsNone(payload)
            self.assertEqual(ctx.tags, {"t": "v"})
            ctx.tags["t2"] = "w"
            return None, None, True

        h = new_host(self.gw.target)
        h.add_actor("other", {"Boom": boom, "Bug": bug, "Keep": keep},
                    state_type=inc.State)
        s = self.start(h)
        s.send_task(1, "Boom", actor="other")
        r = s.result()
        self.assertEqual((r.error.code, r.error.message), (9, "not now"))
        s.send_task(2, "Bug", actor="other")
        r = s.result()
        self.assertEqual(r.error.code, StatusCode.UNKNOWN)
        self.assertIn("ZeroDivisionError", r.error.message)

        st = any_pb2.Any()
        st.Pack(inc.State(total=41))
        t = gateway_pb2.InvocationTask(request_id=3)
        t.invocation.actor.name = "other"
        t.invocation.actor.system = "spawn-system"
        t.invocation.action_name = "Keep"
        t.invocation.current_context.state.CopyFrom(st)
        t.invocation.current_context.tags["t"] = "v"
        t.invocation.noop.SetInParent()
        s.out.put(gateway_pb2.GatewayMessage(invocation=t))
        r = s.result()
        self.assertEqual(r.WhichOneof("outcome"), "response")
        self.assertTrue(r.response.checkpoint)
        self.assertEqual(r.response.WhichOneof("payload"), "noop")
        # unchanged: not sent back (the gateway keeps its own)
        self.assertFalse(r.response.updated_context.HasField("state"))
        self.assertEqual(dict(r.response.updated_context.tags), {"t": "v", "t2": "w"})

        # A payload of the wrong type: INVALID_ARGUMENT.
        s.send_task(4, "Add", payload=inc.Total(total=1))
        r = s.result()
        self.assertEqual(r.error.code, StatusCode.INVALID_ARGUMENT)

        # A task whose deadline passed before its handler ran: refused,
        # the handler never runs (the gateway always sends the deadline).
        t = gateway_pb2.InvocationTask(request_id=5)
        t.invocation.actor.name = "other"
        t.invocation.actor.system = "spawn-system"
        t.invocation.action_name = "Bug"
        t.invocation.noop.SetInParent()
        t.deadline_unix_ms = int(time.time() * 1000) - 1
        s.out.put(gateway_pb2.GatewayMessage(invocation=t))
        r = s.result()
        self.assertEqual(r.error.code, StatusCode.DEADLINE_EXCEEDED)
        self.assertIn("deadline passed", r.error.message)

    def test_concurrent_answers_in_any_order(self):
        gate = threading.Event()
        entered = queue.Queue()

        def slow(state, payload, ctx):
            entered.put(ctx.request_id)
            self.assertTrue(gate.wait(T))
            return None, inc.Total(total=-1), False

        def fast(state, payload, ctx):
            return None, inc.Total(total=ctx.request_id), False

        h = new_host(self.gw.target)
        h.add_actor("pool", {"Slow": slow, "Fast": fast}, stateful=False,
                    kind="POOLED")
        s = self.start(h)
        s.send_task(100, "Slow", actor="pool")
        self.assertEqual(entered.get(timeout=T), 100)
        for rid in range(101, 111):
            s.send_task(rid, "Fast", actor="pool")
        got = [s.result() for _ in range(10)]
        self.assertEqual(sorted(r.request_id for r in got), list(range(101, 111)))
        for r in got:
            self.assertEqual(unpack(r.response.value, inc.Total).total, r.request_id)
            self.assertFalse(r.response.updated_context.HasField("state"))
        gate.set()
        r = s.result()
        self.assertEqual(r.request_id, 100)

    def test_refused_registration_retries(self):
        self.gw.refuse = True
        self.host = new_host(self.gw.target)
        self.host.start()
        self.gw.next_stream()
        self.gw.next_stream()   # it tried again
        self.assertFalse(self.host.registered.is_set())
        self.gw.refuse = False
        # The next attempt succeeds.
        while True:
            s = self.gw.next_stream()
            if self.host.registered.wait(T):
                break
        s.send_task(1, "Add", payload=inc.Add(value=3))
        self.assertEqual(unpack(s.result().response.value, inc.Total).total, 3)


class WorkflowTest(unittest.TestCase):
    """Workflows returned by handlers, channels and timers in the
    registration."""

    def setUp(self):
        self.gw = FakeGateway()
        self.host = None

    def tearDown(self):
        if self.host is not None:
            self.host.stop(timeout=T)
        self.gw.stop()

    def start(self, host):
        self.host = host
        host.start()
        s = self.gw.next_stream()
        self.assertTrue(host.registered.wait(T))
        return s

    def test_registration_declares_channels_and_timers(self):
        h = ActorHost("127.0.0.1:1", "sys")
        noop = lambda state, payload, ctx: (None, None)  # noqa: E731
        h.add_actor("sub", {"receive": noop, "OnAlert": noop, "Tick": noop},
                    channels=["news", ("alerts", "OnAlert"), ("misc", None)],
                    timers={"Tick": 250})
        h.add_actor("plain", {"receive": noop})
        reg = h.registration_request()
        sub = reg.actor_system.registry.actors["sub"]
        self.assertEqual([(c.topic, c.action) for c in sub.metadata.channel_group],
                         [("news", "receive"), ("alerts", "OnAlert"),
                          ("misc", "receive")])
        self.assertEqual([(t.action.name, t.seconds) for t in sub.timer_actions],
                         [("Tick", 250)])  # milliseconds, in the field "seconds"
        plain = reg.actor_system.registry.actors["plain"]
        self.assertFalse(plain.HasField("metadata"))
        self.assertEqual(spawn_host.DEFAULT_CHANNEL_ACTION, "receive")

        # Mistakes are refused when the actor is added.
        with self.assertRaises(ValueError):
            h.add_actor("x", {"A": noop}, channels=["news"])  # no "receive"
        with self.assertRaises(ValueError):
            h.add_actor("x", {"A": noop}, channels=[("news", "B")])
        with self.assertRaises(ValueError):
            h.add_actor("x", {"receive": noop}, channels=[""])
        with self.assertRaises(ValueError):
            h.add_actor("x", {"A": noop}, timers={"B": 100})
        with self.assertRaises(ValueError):
            h.add_actor("x", {"A": noop}, timers={"A": 0})
        self.assertNotIn("x", h.registration_request().actor_system.registry.actors)

    def test_handlers_return_workflows(self):
        def pipe(state, payload, ctx):
            ctx.pipe("b", "Next")
            return None, inc.Total(total=7)

        def forward(state, payload, ctx):
            ctx.pipe("b", "Next")
            ctx.forward("c", "Other")   # the last routing wins
            return None, None

        def effects(state, payload, ctx):
            ctx.side_effect("b", "Note", inc.Add(value=3),
                            metadata={"k": "v"})
            ctx.side_effect("inst-1", "Hello", system="other-sys",
                            register_ref="tmpl", pooled=True,
                            scheduled_to_ms=1893456000123)
            for bad in (dict(actor="", action="x"), dict(actor="b", action=""),
                        dict(actor="b", action="x", scheduled_to_ms=-1)):
                with self.assertRaises(ValueError):
                    ctx.side_effect(**bad)
            return None, None

        def broadcast(state, payload, ctx):
            ctx.broadcast("first", inc.Add(value=1))
            ctx.broadcast("news", inc.Total(total=99))   # the last one wins
            with self.assertRaises(ValueError):
                ctx.broadcast("")
            return None, None

        def ping(state, payload, ctx):
            ctx.broadcast("ping")
            return None, None

        def fail(state, payload, ctx):
            ctx.pipe("b", "Next")
            ctx.side_effect("b", "Note")
            ctx.broadcast("news")
            raise ActorError(StatusCode.ABORTED, "changed my mind")

        def nothing(state, payload, ctx):
            with self.assertRaises(ValueError):
                ctx.pipe("", "Next")
            with self.assertRaises(ValueError):
                ctx.forward("b", None)
            return None, None

        h = ActorHost(self.gw.target, "spawn-system", min_backoff=0.05,
                      max_backoff=0.2)
        h.add_actor("a", {"Pipe": pipe, "Fwd": forward, "Effects": effects,
                          "Pub": broadcast, "Ping": ping, "Fail": fail,
                          "Nothing": nothing}, state_type=inc.State)
        s = self.start(h)

        def call(rid, action):
            s.send_task(rid, action, actor="a", payload=inc.Add(value=5))
            r = s.result()
            self.assertEqual(r.request_id, rid)
            return r

        r = call(1, "Pipe")
        wf = r.response.workflow
        self.assertEqual(wf.WhichOneof("routing"), "pipe")
        self.assertEqual((wf.pipe.actor, wf.pipe.action_name), ("b", "Next"))
        self.assertEqual(unpack(r.response.value, inc.Total).total, 7)
        self.assertEqual(len(wf.effects), 0)
        self.assertFalse(wf.HasField("broadcast"))

        wf = call(2, "Fwd").response.workflow
        self.assertEqual(wf.WhichOneof("routing"), "forward")
        self.assertEqual((wf.forward.actor, wf.forward.action_name), ("c", "Other"))

        wf = call(3, "Effects").response.workflow
        self.assertIsNone(wf.WhichOneof("routing"))
        self.assertEqual(len(wf.effects), 2)
        e = wf.effects[0].request
        self.assertEqual((e.system.name, e.actor.id.system, e.actor.id.name,
                          e.action_name), ("spawn-system", "spawn-system", "b", "Note"))
        self.assertTrue(getattr(e, "async"))
        self.assertFalse(e.HasField("caller"))  # the gateway names the emitter
        self.assertEqual(unpack(e.value, inc.Add).value, 3)
        self.assertEqual(dict(e.metadata), {"k": "v"})
        e = wf.effects[1].request
        self.assertEqual((e.system.name, e.actor.id.name, e.actor.id.parent,
                          e.register_ref), ("other-sys", "inst-1", "tmpl", "tmpl"))
        self.assertTrue(e.pooled)
        self.assertEqual(e.scheduled_to, 1893456000123)
        self.assertEqual(e.WhichOneof("payload"), "noop")

        b = call(4, "Pub").response.workflow.broadcast
        self.assertEqual(b.channel_group, "news")
        self.assertEqual(unpack(b.value, inc.Total).total, 99)
        b = call(5, "Ping").response.workflow.broadcast
        self.assertEqual((b.channel_group, b.WhichOneof("payload")), ("ping", "noop"))

        r = call(6, "Fail")
        self.assertEqual((r.WhichOneof("outcome"), r.error.code),
                         ("error", StatusCode.ABORTED))

        r = call(7, "Nothing")
        self.assertEqual(r.WhichOneof("outcome"), "response")
        self.assertFalse(r.response.HasField("workflow"))

    def test_typed_handlers_reach_the_workflow_through_ctx(self):
        class Impl:
            def add(self, state, msg, ctx):
                ctx.side_effect("audit", "Log", msg)
                ctx.pipe("b", "Next")
                state.total += msg.value
                return state, inc.Total(total=state.total)

        h = ActorHost(self.gw.target, "spawn-system", min_backoff=0.05,
                      max_backoff=0.2)
        spawn_host.add_typed_actor(h, Impl(), "typed", "NAMED", True, inc.State,
                                   0, 0, [("Add", "add", inc.Add, inc.Total)],
                                   channels=[("news", "Add")], timers={"Add": 1000})
        s = self.start(h)
        a = s.registration.registration.actor_system.registry.actors["typed"]
        self.assertEqual([(c.topic, c.action) for c in a.metadata.channel_group],
                         [("news", "Add")])
        self.assertEqual([(t.action.name, t.seconds) for t in a.timer_actions],
                         [("Add", 1000)])
        s.send_task(1, "Add", actor="typed", payload=inc.Add(value=2))
        r = s.result()
        wf = r.response.workflow
        self.assertEqual(wf.pipe.actor, "b")
        self.assertEqual(wf.effects[0].request.actor.id.name, "audit")
        self.assertEqual(unpack(wf.effects[0].request.value, inc.Add).value, 2)


class UnixSocketTest(unittest.TestCase):
    def test_unix_target(self):
        d = tempfile.mkdtemp(prefix="spawn-py-sock-")
        path = os.path.join(d, "gw.sock")
        gw = FakeGateway("unix:" + path)
        host = new_host("unix:" + path)
        try:
            host.start()
            s = gw.next_stream()
            self.assertTrue(host.registered.wait(T))
            s.send_task(9, "Add", payload=inc.Add(value=2))
            r = s.result()
            self.assertEqual((r.request_id, unpack(r.response.value, inc.Total).total),
                             (9, 2))
        finally:
            host.stop(timeout=T)
            gw.stop()
            shutil.rmtree(d, ignore_errors=True)


class ExampleHostTest(unittest.TestCase):
    """examples/incrementor/python/host.py as a process."""

    def test_example_host(self):
        gw = FakeGateway()
        p = subprocess.Popen(
            [sys.executable, EXAMPLE_HOST, "--gateway", gw.target,
             "--proto-out", PROTO_OUT, "--checkpoint"],
            stdout=subprocess.PIPE, text=True)
        try:
            s = gw.next_stream()
            line = []
            t = threading.Thread(target=lambda: line.append(p.stdout.readline()))
            t.start()
            t.join(T)
            self.assertEqual(line, ["registered\n"])
            a = s.registration.registration.actor_system
            self.assertEqual(a.name, "spawn-system")
            self.assertIn("incrementor", a.registry.actors)
            s.send_task(1, "Add", payload=inc.Add(value=1))
            r = s.result()
            self.assertTrue(r.response.checkpoint)
            self.assertEqual(unpack(r.response.value, inc.Total).total, 1)
            s.send_task(2, "Add", state=r.response.updated_context.state,
                        payload=inc.Add(value=1))
            self.assertEqual(unpack(s.result().response.value, inc.Total).total, 2)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(T), 0)
            self.assertTrue(s.ended.wait(T))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            gw.stop()


if __name__ == "__main__":
    unittest.main()
