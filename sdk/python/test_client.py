"""Tests of spawn_client (against a fake ActorGateway run in-process), of
the typed-actor helpers of spawn_host and of spawn_typed, the layer
generated code calls.

    /usr/bin/python3 -m unittest sdk/python/test_client.py      (or -v)

Uses the generated modules in $SPAWN_PY_PROTO_OUT when set; otherwise runs
sdk/python/gen.sh into a temporary directory.
"""

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
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

import spawn_client  # noqa: E402
import spawn_host  # noqa: E402
import spawn_typed  # noqa: E402
from spawn_client import ReplyTypeError, SpawnClient, SpawnError  # noqa: E402
from spawn_host import ActorError, StatusCode  # noqa: E402
from spawn.actors import protocol_pb2  # noqa: E402
import incrementor_pb2 as inc  # noqa: E402

T = 5.0


def tearDownModule():
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


def packed(msg):
    a = any_pb2.Any()
    a.Pack(msg)
    return a


class FakeActorGateway:
    """ActorGateway.Invoke/Spawn; `answer(request, context)` decides."""

    def __init__(self):
        self.requests = []
        self.answer = lambda req, ctx: protocol_pb2.InvocationResponse()
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4))

        def invoke(req, ctx):
            self.requests.append(req)
            return self.answer(req, ctx)

        def spawn(req, ctx):
            self.requests.append(req)
            return protocol_pb2.SpawnResponse()

        handlers = {
            "Invoke": grpc.unary_unary_rpc_method_handler(
                invoke, protocol_pb2.InvocationRequest.FromString,
                protocol_pb2.InvocationResponse.SerializeToString),
            "Spawn": grpc.unary_unary_rpc_method_handler(
                spawn, protocol_pb2.SpawnRequest.FromString,
                protocol_pb2.SpawnResponse.SerializeToString),
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("spawn.gateway.v1.ActorGateway", handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(None)


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.gw = FakeActorGateway()
        self.client = SpawnClient("127.0.0.1:%d" % self.gw.port, timeout=T)

    def tearDown(self):
        self.client.close()
        self.gw.stop()

    def test_call_sends_the_request_and_returns_the_typed_reply(self):
        self.gw.answer = lambda req, ctx: protocol_pb2.InvocationResponse(
            value=packed(inc.Total(total=7)))
        got = self.client.call("sys", "inst", "Add", inc.Add(value=3), inc.Total,
                               input_type=inc.Add, parent="Incrementor",
                               metadata={"k": "v"})
        self.assertEqual(got, inc.Total(total=7))
        req = self.gw.requests[0]
        self.assertEqual(req.system.name, "sys")
        self.assertEqual(req.actor.id.name, "inst")
        self.assertEqual(req.actor.id.parent, "Incrementor")
        self.assertEqual(req.register_ref, "Incrementor")
        self.assertEqual(req.action_name, "Add")
        self.assertEqual(dict(req.metadata), {"k": "v"})
        self.assertFalse(req.pooled)
        self.assertTrue(req.value.Is(inc.Add.DESCRIPTOR))

    def test_noop_reply_gives_defaults_and_pooled_is_sent(self):
        got = self.client.call("sys", "w", "Run", inc.Add(), inc.Total, pooled=True)
        self.assertEqual(got, inc.Total())
        self.assertTrue(self.gw.requests[0].pooled)
        self.assertIsNone(self.client.invoke("sys", "w", "Run"))
        self.assertEqual(self.gw.requests[1].WhichOneof("payload"), "noop")

    def test_errors_carry_code_and_message(self):
        def fail(req, ctx):
            ctx.abort(grpc.StatusCode.OUT_OF_RANGE, "total would overflow")
        self.gw.answer = fail
        with self.assertRaises(spawn_client.OutOfRange) as cm:
            self.client.call("sys", "a", "Add", inc.Add(), inc.Total)
        e = cm.exception
        self.assertIsInstance(e, SpawnError)
        self.assertEqual((e.code, e.code_name, e.message),
                         (StatusCode.OUT_OF_RANGE, "OUT_OF_RANGE", "total would overflow"))
        self.assertEqual(pickle.loads(pickle.dumps(e)).message, e.message)

    def test_request_status_maps_to_not_found_and_unknown(self):
        self.gw.answer = lambda req, ctx: protocol_pb2.InvocationResponse(
            status=protocol_pb2.RequestStatus(status=protocol_pb2.ACTOR_NOT_FOUND,
                                              message="no actor x"))
        with self.assertRaises(spawn_client.NotFound) as cm:
            self.client.invoke("sys", "x", "Add")
        self.assertEqual(cm.exception.message, "no actor x")
        self.gw.answer = lambda req, ctx: protocol_pb2.InvocationResponse(
            status=protocol_pb2.RequestStatus(status=protocol_pb2.ERROR))
        with self.assertRaises(spawn_client.Unknown):
            self.client.invoke("sys", "x", "Add")

    def test_reply_of_another_type(self):
        self.gw.answer = lambda req, ctx: protocol_pb2.InvocationResponse(
            value=packed(inc.State(total=1)))
        with self.assertRaises(ReplyTypeError) as cm:
            self.client.call("sys", "a", "Add", inc.Add(), inc.Total)
        self.assertEqual(cm.exception.code, StatusCode.INTERNAL)
        self.assertIn("examples.incrementor.State", cm.exception.message)

    def test_wrong_input_type_and_missing_names(self):
        with self.assertRaises(TypeError):
            self.client.call("sys", "a", "Add", inc.Total(), inc.Total, input_type=inc.Add)
        with self.assertRaises(spawn_client.InvalidArgument):
            self.client.invoke("", "a", "Add")
        self.assertEqual(self.gw.requests, [])

    def test_unavailable_gateway(self):
        self.gw.stop()
        target = "127.0.0.1:%d" % self.gw.port
        # fail_fast, or no deadline: UNAVAILABLE at once.
        with SpawnClient(target, timeout=T, fail_fast=True) as c:
            with self.assertRaises(SpawnError) as cm:
                c.invoke("sys", "a", "Add")
        self.assertEqual(cm.exception.code, StatusCode.UNAVAILABLE)
        with SpawnClient(target, timeout=None) as c:
            with self.assertRaises(SpawnError) as cm:
                c.invoke("sys", "a", "Add")
        self.assertEqual(cm.exception.code, StatusCode.UNAVAILABLE)
        # By default a call waits for the gateway up to its deadline.
        with SpawnClient(target, timeout=0.3) as c:
            with self.assertRaises(SpawnError) as cm:
                c.invoke("sys", "a", "Add")
        self.assertEqual(cm.exception.code, StatusCode.DEADLINE_EXCEEDED)
        self.assertIn("no connection to the gateway at " + target, cm.exception.message)

    def test_reconnect_delays_are_checked(self):
        with self.assertRaises(ValueError):
            SpawnClient("127.0.0.1:1", reconnect_min=0)
        with self.assertRaises(ValueError):
            SpawnClient("127.0.0.1:1", reconnect_min=0.5, reconnect_max=0.1)

    def test_spawn(self):
        self.client.spawn("sys", [("s-1", "Session")])
        req = self.gw.requests[0]
        self.assertEqual([(a.name, a.system, a.parent) for a in req.actors],
                         [("s-1", "sys", "Session")])


class Ctx:
    def __init__(self):
        self.checkpoint = False


class TypedActionTest(unittest.TestCase):
    def test_stateful_action_gets_typed_state_and_input(self):
        seen = []

        def add(state, msg, ctx):
            seen.append((state, msg))
            ctx.checkpoint = True
            s = inc.State(total=state.total + msg.value)
            return s, inc.Total(total=s.total)
        h = spawn_host.typed_action(add, inc.Add, inc.Total, inc.State, "I.Add")
        ctx = Ctx()
        st, reply, _ = h(None, packed(inc.Add(value=2)), ctx)
        self.assertEqual(seen, [(inc.State(), inc.Add(value=2))])
        self.assertEqual((st, reply), (inc.State(total=2), inc.Total(total=2)))
        self.assertTrue(ctx.checkpoint)
        self.assertEqual(h(packed(inc.State(total=5)), None, Ctx())[1], inc.Total(total=5))

    def test_none_keeps_state_and_replies_nothing(self):
        h = spawn_host.typed_action(lambda s, m, c: None, inc.Add, inc.Total, inc.State)
        self.assertEqual(h(None, None, Ctx()), (None, None, False))
        h = spawn_host.typed_action(lambda m, c: None, inc.Add, inc.Total)
        self.assertEqual(h(None, None, Ctx()), (None, None, False))

    def test_stateless_action_returns_the_reply(self):
        h = spawn_host.typed_action(lambda m, c: inc.Total(total=m.value), inc.Add, inc.Total)
        self.assertEqual(h(None, packed(inc.Add(value=4)), Ctx())[1], inc.Total(total=4))

    def test_wrong_types_fail_with_their_codes(self):
        ok = lambda s, m, c: (s, inc.Total())  # noqa: E731
        h = spawn_host.typed_action(ok, inc.Add, inc.Total, inc.State, "I.Add")
        with self.assertRaises(ActorError) as cm:
            h(packed(inc.Total()), None, Ctx())
        self.assertEqual(cm.exception.code, StatusCode.FAILED_PRECONDITION)
        with self.assertRaises(ActorError) as cm:
            h(None, packed(inc.Total()), Ctx())
        self.assertEqual(cm.exception.code, StatusCode.INVALID_ARGUMENT)
        self.assertIn("I.Add takes a examples.incrementor.Add", cm.exception.message)
        for bad in (lambda s, m, c: inc.Total(),
                    lambda s, m, c: (inc.Total(), None),
                    lambda s, m, c: (None, inc.State())):
            h = spawn_host.typed_action(bad, inc.Add, inc.Total, inc.State, "I.Add")
            with self.assertRaises(ActorError) as cm:
                h(None, None, Ctx())
            self.assertEqual(cm.exception.code, StatusCode.INTERNAL)

    def test_add_typed_actor_fills_the_settings(self):
        class Impl:
            def add(self, state, msg, ctx):
                raise ActorError(StatusCode.UNIMPLEMENTED, "no")
        host = spawn_host.ActorHost("127.0.0.1:1", "sys")
        spawn_host.add_typed_actor(host, Impl(), "Incrementor", kind="NAMED",
                                   stateful=True, state_type=inc.State,
                                   snapshot_ms=0, deactivate_ms=60000,
                                   actions=(("Add", "add", inc.Add, inc.Total),))
        check_incrementor_registered(self, host)


def incrementor_contract(**kw):
    args = dict(kind="NAMED", stateful=True, state_type=inc.State,
                snapshot_ms=0, deactivate_ms=60000,
                actions=(("Add", "add", inc.Add, inc.Total),))
    args.update(kw)
    return spawn_typed.ActorContract("Incrementor", **args)


def check_incrementor_registered(tc, host):
    """The registration of "Incrementor" as incrementor_contract() declares
    it: one action Add, stateful with state State, deactivation 60000 ms,
    the snapshot interval left to the gateway. Returns the actor."""
    a = host.registration_request().actor_system.registry.actors["Incrementor"]
    tc.assertEqual([x.name for x in a.actions], ["Add"])
    tc.assertTrue(a.settings.stateful)
    tc.assertEqual(a.settings.state_type, "examples.incrementor.State")
    tc.assertEqual(a.settings.deactivation_strategy.timeout.timeout, 60000)
    tc.assertFalse(a.settings.HasField("snapshot_strategy"))
    return a


class ActorContractTest(unittest.TestCase):
    def test_contract_keeps_its_settings_and_actions(self):
        c = incrementor_contract()
        self.assertEqual((c.name, c.kind, c.stateful, c.state_type),
                         ("Incrementor", "NAMED", True, inc.State))
        self.assertEqual((c.snapshot_ms, c.deactivate_ms), (0, 60000))
        self.assertEqual(c.actions, (spawn_typed.ActionSpec("Add", "add", inc.Add, inc.Total),))
        self.assertEqual(c.action("Add").output_type, inc.Total)
        self.assertIsNone(c.parent)
        self.assertFalse(c.pooled)

    def test_kind_decides_parent_and_pooled(self):
        u = incrementor_contract(kind="UNNAMED")
        self.assertEqual((u.parent, u.pooled), ("Incrementor", False))
        p = incrementor_contract(kind="POOLED", stateful=False, state_type=None)
        self.assertEqual((p.parent, p.pooled), (None, True))

    def test_refuses_what_the_gateway_cannot_serve(self):
        for kw, why in ((dict(kind="PROXY"), "kind 'PROXY'"),
                        (dict(state_type=None), "needs a state_type"),
                        (dict(stateful=False), "needs a state_type"),
                        (dict(kind="POOLED"), "POOLED actor cannot be stateful"),
                        (dict(snapshot_ms=-1), "negative"),
                        (dict(actions=()), "needs an action"),
                        (dict(actions=(("Add", "add", inc.Add, inc.Total),
                                       ("Add", "add2", inc.Add, inc.Total))),
                         "action Add is named twice"),
                        (dict(actions=(("Add", "add", inc.Add, inc.Total),
                                       ("Sub", "add", inc.Add, inc.Total))),
                         "share a method")):
            with self.subTest(kw=kw):
                with self.assertRaisesRegex(ValueError, why):
                    incrementor_contract(**kw)
        with self.assertRaisesRegex(ValueError, "needs a name"):
            spawn_typed.ActorContract("", actions=(("A", "a", inc.Add, inc.Total),))

    def test_unknown_action_and_immutability(self):
        c = incrementor_contract()
        with self.assertRaisesRegex(KeyError, "Incrementor has no action 'Sub'"):
            c.action("Sub")
        with self.assertRaises(AttributeError):
            c.kind = "POOLED"
        self.assertEqual(c.kind, "NAMED")


class ActorClientTest(unittest.TestCase):
    def setUp(self):
        self.gw = FakeActorGateway()
        self.gw.answer = self.echo
        self.client = SpawnClient("127.0.0.1:%d" % self.gw.port, timeout=T)

    def tearDown(self):
        self.client.close()
        self.gw.stop()

    @staticmethod
    def echo(req, ctx):
        add = inc.Add()
        req.value.Unpack(add)
        return protocol_pb2.InvocationResponse(value=packed(inc.Total(total=add.value)))

    def test_named_call_uses_the_contract_name_and_types(self):
        a = spawn_typed.ActorClient(self.client, "sys", incrementor_contract())
        self.assertEqual((a.client, a.system, a.contract.name),
                         (self.client, "sys", "Incrementor"))
        got = a.call("Add", inc.Add(value=3), metadata={"k": "v"})
        self.assertEqual(got, inc.Total(total=3))
        req = self.gw.requests[0]
        self.assertEqual((req.system.name, req.actor.id.name, req.action_name),
                         ("sys", "Incrementor", "Add"))
        self.assertEqual((req.actor.id.parent, req.register_ref, req.pooled), ("", "", False))
        self.assertEqual(dict(req.metadata), {"k": "v"})
        a.call("Add", inc.Add(value=1), "other")
        self.assertEqual(self.gw.requests[1].actor.id.name, "other")

    def test_unnamed_calls_send_the_template_and_pooled_calls_are_marked(self):
        u = spawn_typed.ActorClient(self.client, "sys", incrementor_contract(kind="UNNAMED"))
        u.call("Add", inc.Add(value=1), "inc-7")
        req = self.gw.requests[0]
        self.assertEqual((req.actor.id.name, req.actor.id.parent, req.register_ref),
                         ("inc-7", "Incrementor", "Incrementor"))
        self.assertFalse(req.pooled)
        p = spawn_typed.ActorClient(self.client, "sys", incrementor_contract(
            kind="POOLED", stateful=False, state_type=None))
        p.call("Add", inc.Add(value=1))
        req = self.gw.requests[1]
        self.assertTrue(req.pooled)
        self.assertEqual(req.actor.id.parent, "")

    def test_wrong_input_unknown_action_and_wrong_contract(self):
        a = spawn_typed.ActorClient(self.client, "sys", incrementor_contract())
        with self.assertRaisesRegex(TypeError, "takes a examples.incrementor.Add"):
            a.call("Add", inc.Total())
        with self.assertRaises(KeyError):
            a.call("Sub", inc.Add())
        self.assertEqual(self.gw.requests, [])
        with self.assertRaises(TypeError):
            spawn_typed.ActorClient(self.client, "sys", "Incrementor")

    def test_timeout_reaches_the_client(self):
        seen = {}

        class Stub:
            def call(self, *args, **kw):
                seen.update(kw)
                return inc.Total(total=1)
        a = spawn_typed.ActorClient(Stub(), "sys", incrementor_contract())
        self.assertEqual(a.call("Add", inc.Add(), None, 1.5), inc.Total(total=1))
        self.assertEqual(seen["timeout"], 1.5)
        a.call("Add", inc.Add())
        self.assertIs(seen["timeout"], spawn_client.DEFAULT)


class RegisterActorTest(unittest.TestCase):
    class Impl:
        def add(self, state, msg, ctx):
            s = inc.State(total=state.total + msg.value)
            return s, inc.Total(total=s.total)

    def test_declares_the_contract_on_the_host(self):
        host = spawn_host.ActorHost("127.0.0.1:1", "sys")
        self.assertIs(spawn_typed.register_actor(host, self.Impl(), incrementor_contract()), host)
        a = check_incrementor_registered(self, host)
        self.assertEqual(list(a.metadata.channel_group), [])
        self.assertEqual(list(a.timer_actions), [])

    def test_channels_and_timers_pass_through(self):
        host = spawn_host.ActorHost("127.0.0.1:1", "sys")
        spawn_typed.register_actor(host, self.Impl(), incrementor_contract(),
                                   channels=[("news", "Add")], timers={"Add": 500})
        a = host.registration_request().actor_system.registry.actors["Incrementor"]
        self.assertEqual([(c.topic, c.action) for c in a.metadata.channel_group],
                         [("news", "Add")])
        self.assertEqual([(t.action.name, t.seconds) for t in a.timer_actions],
                         [("Add", 500)])

    def test_actions_run_the_impl_methods_typed(self):
        host = spawn_host.ActorHost("127.0.0.1:1", "sys")
        spawn_typed.register_actor(host, self.Impl(), incrementor_contract())
        add = host._actors["Incrementor"].actions["Add"]  # the handler the host runs
        st, reply, _ = add(packed(inc.State(total=2)), packed(inc.Add(value=3)), Ctx())
        self.assertEqual((st, reply), (inc.State(total=5), inc.Total(total=5)))
        with self.assertRaises(ActorError) as cm:
            add(None, packed(inc.Total()), Ctx())
        self.assertEqual(cm.exception.code, StatusCode.INVALID_ARGUMENT)

    def test_refuses_an_impl_without_the_method_and_a_non_contract(self):
        host = spawn_host.ActorHost("127.0.0.1:1", "sys")
        with self.assertRaises(AttributeError):
            spawn_typed.register_actor(host, object(), incrementor_contract())
        with self.assertRaises(TypeError):
            spawn_typed.register_actor(host, self.Impl(), "Incrementor")
        self.assertEqual(dict(host.registration_request().actor_system.registry.actors), {})

    def test_unimplemented_answers_unimplemented(self):
        e = spawn_typed.unimplemented("Incrementor", "Add")
        self.assertIsInstance(e, ActorError)
        self.assertEqual((e.code, e.message),
                         (StatusCode.UNIMPLEMENTED, "Incrementor.Add is not implemented"))

        class Base:  # as a generated XActor
            def add(self, state, msg, ctx):
                raise spawn_typed.unimplemented("Incrementor", "Add")
        host = spawn_host.ActorHost("127.0.0.1:1", "sys")
        spawn_typed.register_actor(host, Base(), incrementor_contract())
        with self.assertRaises(ActorError) as cm:
            host._actors["Incrementor"].actions["Add"](None, None, Ctx())
        self.assertEqual(cm.exception.code, StatusCode.UNIMPLEMENTED)


if __name__ == "__main__":
    unittest.main()
