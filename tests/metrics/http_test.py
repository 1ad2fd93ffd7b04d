#!/usr/bin/python3
"""The gateway's /metrics, /healthz and /readyz (docs/operations.md,
"Metrics" and "Health"), end to end: a real gateway with --http, a host of
our Python SDK, calls through our Python client, and the exposition read
back and checked by `promtool check metrics`.

- counts: N calls are N in spawn_invocations_total under their system,
  actor type, action and status; failures under their status; calls to
  names nobody registered under "_none" (never the made-up name);
- latency histograms count every call; activations, active actors, hosts,
  store operations and process_* are there;
- hostile input at the edge: a flood of made-up actor and action names does
  not grow the label sets; paths under the routes, other methods and bodies
  over the bound get clear answers, and the gateway keeps serving;
- readiness: 200 once started; SIGTERM turns /readyz to 503 "draining"
  while a call is still in flight (before the drain ends), /healthz stays
  200, and the call in flight completes;
- --metrics off: /metrics is 404, health still served, calls unaffected.

Readiness waits are the gateway's listening lines, the host's registered
event and polling with a deadline (no sleeps)."""
import concurrent.futures
import os
import subprocess
import tempfile
import threading
import time
import unittest

import mgw
from mgw import value

from google.protobuf import wrappers_pb2  # noqa: E402
from spawn_client import SpawnClient, SpawnError  # noqa: E402
from spawn_host import ActorError, ActorHost, unpack  # noqa: E402

SYS = "msys"
N = 40


def add(state, payload, ctx):
    s = unpack(state, wrappers_pb2.Int64Value) if state is not None else wrappers_pb2.Int64Value()
    s.value += unpack(payload, wrappers_pb2.Int64Value).value
    return s, wrappers_pb2.Int64Value(value=s.value), True


def fail(state, payload, ctx):
    raise ActorError(9, "refused on purpose")  # FAILED_PRECONDITION


GATE = threading.Event()


def slow(state, payload, ctx):
    GATE.wait(30)
    return None, wrappers_pb2.Int64Value(value=7)


def fire(state, payload, ctx):
    ctx.side_effect("counter", "Slow")  # delivered after the turn, held by GATE
    return None, wrappers_pb2.Int64Value(value=1)


def start_host(gw, system=SYS):
    h = ActorHost(gw.addr, system, proto_path=os.path.join(mgw.BUILD, "python-gen"))
    h.add_actor("counter", {"Add": add, "Fail": fail, "Slow": slow}, stateful=True,
                kind="NAMED")
    h.add_actor("fx", {"Fire": fire}, stateful=False, kind="NAMED")
    h.add_actor("brief", {"Add": add}, stateful=True, kind="NAMED", deactivate_ms=200)
    h.start()
    if not h.registered.wait(15):
        raise RuntimeError("the host did not register")
    return h


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.gw = mgw.Gateway(cls.tmp.name, ["--http-max-body", "4096"])
        cls.host = start_host(cls.gw)
        cls.client = SpawnClient(cls.gw.addr)

    @classmethod
    def tearDownClass(cls):
        GATE.set()
        cls.client.close()
        cls.host.stop()
        rc = cls.gw.stop()
        cls.tmp.cleanup()
        if rc != 0:
            raise AssertionError("the gateway exited %d on SIGTERM" % rc)

    def add(self, n=1):
        return self.client.invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=n))

    def test_a_counts_and_format(self):
        before = mgw.parse(self.gw.metrics())
        ok0 = value(before, "spawn_invocations_total", system=SYS, actor="counter",
                    action="Add", status="OK")
        for _ in range(N):
            self.add()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda _: self.add(), range(N)))
        for _ in range(3):
            with self.assertRaises(SpawnError) as e:
                self.client.invoke(SYS, "counter", "Fail")
            self.assertEqual(int(e.exception.code), 9)
        with self.assertRaises(SpawnError):
            self.client.invoke(SYS, "ghost", "Add", wrappers_pb2.Int64Value(value=1))
        text = self.gw.metrics()
        rc, out = mgw.promtool_check_metrics(text)
        self.assertEqual(rc, 0, out)
        s = mgw.parse(text)
        self.assertEqual(value(s, "spawn_invocations_total", system=SYS, actor="counter",
                               action="Add", status="OK") - ok0, 2 * N)
        self.assertEqual(value(s, "spawn_invocations_total", system=SYS, actor="counter",
                               action="Fail", status="UNKNOWN"), 3, text)
        self.assertGreaterEqual(value(s, "spawn_invocations_total", system="_none",
                                      actor="_none", action="_none", status="NOT_FOUND"), 1)
        for name in ("ghost",):
            self.assertNotIn(name, text)
        # Every finished call that reached the actor is in the histograms.
        calls = sum(v for (n, l), v in s.items() if n == "spawn_invocations_total" and
                    ("actor", "counter") in l)
        total = value(s, "spawn_invocation_duration_seconds_count", system=SYS,
                      actor="counter")
        self.assertEqual(total, calls)
        host = value(s, "spawn_invocation_host_seconds_count", system=SYS, actor="counter")
        self.assertGreaterEqual(host, 2 * N)
        # Every call sent to the host waited in the queue first (observed once).
        self.assertEqual(value(s, "spawn_invocation_queue_seconds_count", system=SYS,
                               actor="counter"), host)
        self.assertGreaterEqual(value(s, "spawn_store_batch_rows_count", op="save"), 1)
        self.assertGreaterEqual(value(s, "spawn_store_batch_rows_sum", op="save"),
                                value(s, "spawn_store_batch_rows_count", op="save"))
        for cls in ("bulk", "urgent"):
            self.assertIn(("spawn_persist_queue_depth", frozenset({("class", cls)})), s)
        self.assertEqual(value(s, "spawn_invocation_host_seconds_bucket", system=SYS,
                               actor="counter", le="+Inf"), host)
        self.assertEqual(value(s, "spawn_activations_total", system=SYS, actor="counter"), 1)
        self.assertEqual(value(s, "spawn_actors_active", system=SYS, actor="counter"), 1)
        self.assertEqual(value(s, "spawn_hosts_connected", system=SYS), 1)
        self.assertEqual(value(s, "spawn_host_tasks_in_flight", system=SYS), 0)
        self.assertGreaterEqual(value(s, "spawn_store_operation_seconds_count", op="save"), 1)
        self.assertGreaterEqual(value(s, "spawn_store_operation_seconds_count",
                                      op="activate"), 1)
        self.assertEqual(value(s, "spawn_activation_seconds_count"), 1)
        self.assertEqual(value(s, "spawn_store_errors_total", op="save"), 0)
        self.assertGreaterEqual(value(s, "spawn_mailbox_depth_count"), 2 * N)
        self.assertEqual(value(s, "spawn_ready"), 1)
        self.assertIn("spawn_http_host_calls_total", mgw.families(text))
        self.assertEqual(value(s, "spawn_http_host_calls_in_flight"), 0)
        self.assertEqual(value(s, "spawn_store_up"), 1)
        self.assertGreater(value(s, "process_resident_memory_bytes"), 1e6)
        self.assertGreater(value(s, "process_open_fds"), 3)
        self.assertGreater(value(s, "process_cpu_seconds_total"), 0)

    def test_b_health(self):
        self.assertEqual(self.gw.get("/healthz"), (200, b'{"status":"live"}\n'))
        self.assertEqual(self.gw.get("/readyz"), (200, b'{"status":"ready"}\n'))

    def test_c_hostile_names_do_not_grow_labels(self):
        before = len(self.gw.metrics())
        for i in range(300):
            with self.assertRaises(SpawnError):
                self.client.invoke(SYS, "counter", "made-up-%d" % i)
            with self.assertRaises(SpawnError):
                self.client.invoke(SYS, "nobody-%d" % i, "Add")
            with self.assertRaises(SpawnError):
                self.client.invoke("sys-%d" % i, "counter", "Add")
        text = self.gw.metrics()
        self.assertNotIn("made-up-", text)
        self.assertNotIn("nobody-", text)
        self.assertNotIn("sys-", text)
        self.assertLess(len(text), before + 2000, "the exposition grew with made-up names")
        s = mgw.parse(text)
        self.assertGreaterEqual(value(s, "spawn_invocations_total", system="_none",
                                      actor="_none", action="_none", status="NOT_FOUND"), 900)
        self.add()  # still serving

    def test_e_schedules(self):
        s0 = mgw.parse(self.gw.metrics())
        late0 = value(s0, "spawn_schedule_lateness_seconds_count")
        ok0 = value(s0, "spawn_invocations_total", system=SYS, actor="counter", action="Add",
                    status="OK")
        due = int(time.time() * 1000) + 1500  # far enough to see it pending first
        self.client.invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=1),
                           scheduled_to_ms=due)
        # Stored, not yet due: in the backlog.
        self.assertEqual(value(mgw.parse(self.gw.metrics()), "spawn_schedules_pending"), 1)
        mgw.wait_until(lambda: value(mgw.parse(self.gw.metrics()),
                                     "spawn_schedule_lateness_seconds_count") == late0 + 1,
                       "the scheduled invocation handed over")
        # Handed over is not yet answered: the turn is counted when it ends.
        s = mgw.wait_until(
            lambda: (lambda x: x if value(x, "spawn_schedules_pending") == 0 and value(
                x, "spawn_invocations_total", system=SYS, actor="counter", action="Add",
                status="OK") >= ok0 + 1 else None)(mgw.parse(self.gw.metrics())),
            "the backlog to empty and the turn to be counted")
        self.assertEqual(value(s, "spawn_invocations_total", system=SYS, actor="counter",
                               action="Add", status="OK"), ok0 + 1)
        self.assertGreaterEqual(value(s, "spawn_store_operation_seconds_count", op="schedule"), 2)

    def test_f_queues_effects_and_deactivations(self):
        """What waits: request bytes in a mailbox behind a held turn, a side
        effect in delivery while its target holds it; and an actor freed by
        its deactivation timeout."""
        def gauge(name, **labels):
            return value(mgw.parse(self.gw.metrics()), name, **labels)
        GATE.clear()
        try:
            with concurrent.futures.ThreadPoolExecutor(2) as ex:
                held = ex.submit(self.client.invoke, SYS, "counter", "Slow")
                mgw.wait_until(lambda: gauge("spawn_host_tasks_in_flight", system=SYS) == 1,
                               "the held turn at the host")
                self.assertEqual(gauge("spawn_mailbox_queued_bytes"), 0)
                queued = ex.submit(self.add, 5)
                mgw.wait_until(lambda: gauge("spawn_mailbox_queued_bytes") > 0,
                               "the call queued behind the held turn")
                GATE.set()
                held.result(30)
                queued.result(30)
            self.assertEqual(gauge("spawn_mailbox_queued_bytes"), 0)
            GATE.clear()
            self.client.invoke(SYS, "fx", "Fire")
            mgw.wait_until(lambda: gauge("spawn_outbox_effects", state="in_flight") == 1,
                           "the side effect in delivery")
            GATE.set()
            mgw.wait_until(lambda: gauge("spawn_outbox_effects", state="in_flight") == 0,
                           "the side effect delivered")
            self.assertEqual(gauge("spawn_outbox_effects", state="parked"), 0)
        finally:
            GATE.set()
        d0 = gauge("spawn_deactivations_total", system=SYS, actor="brief")
        self.client.invoke(SYS, "brief", "Add", wrappers_pb2.Int64Value(value=1))
        mgw.wait_until(lambda: gauge("spawn_deactivations_total", system=SYS,
                                     actor="brief") == d0 + 1, "brief deactivated")
        self.assertEqual(gauge("spawn_actors_active", system=SYS, actor="brief"), 0)

    def test_d_hostile_http(self):
        for path in ("/metrics/x", "/readyz/", "/metricsx"):
            self.assertEqual(self.gw.get(path)[0], 404, path)
        # The request target is checked before any route (gateway/http/
        # uricheck.c): an encoded NUL used to cut "/metrics%00" to "/metrics".
        for path, why in (("/metrics%00", b"encoded NUL"), ("/healthz%00/x", b"encoded NUL"),
                          ("/readyz?x=%00", b"encoded NUL"), ("/metrics/%ff%fe", b"UTF-8"),
                          ("/readyz%0a", b"control byte"), ("/healthz/../metrics", b"'..'"),
                          ("/%2e%2e/metrics", b"'..'"), ("//metrics", b"empty segment"),
                          ("/metrics%2", b"percent escape")):
            st, body = self.gw.get(path)
            self.assertEqual(st, 400, path)
            self.assertTrue(body.startswith(b'{"code":3,"message":"') and why in body,
                            (path, body))
        st, body = self.gw.get("/metrics/" + "a" * 5000)
        self.assertEqual(st, 414, body)
        st, _ = self.gw.get("/metrics", method="POST", body=b"x")
        self.assertIn(st, (404, 405))
        st, body = self.gw.get("/healthz", body=b"x" * 10000)
        self.assertEqual(st, 413, body)
        st, _ = self.gw.get("/metrics", headers={"Accept": "\x01" * 100})
        self.assertEqual(st, 200)
        self.assertEqual(self.gw.get("/healthz")[0], 200)
        self.add()


class ReadinessTest(unittest.TestCase):
    def test_sigterm_turns_readiness_off_before_the_drain(self):
        with tempfile.TemporaryDirectory() as d:
            gw = mgw.Gateway(d, ["--drain", "20000"])
            host = start_host(gw)
            client = SpawnClient(gw.addr)
            try:
                mgw.wait_until(lambda: gw.get("/readyz")[0] == 200, "ready")
                GATE.clear()
                with concurrent.futures.ThreadPoolExecutor(1) as ex:
                    slow = ex.submit(client.invoke, SYS, "counter", "Slow")
                    mgw.wait_until(lambda: value(mgw.parse(gw.metrics()),
                                                 "spawn_host_tasks_in_flight", system=SYS) == 1,
                                   "the slow call at the host")
                    gw.p.send_signal(15)
                    st, body = mgw.wait_until(
                        lambda: (lambda r: r if r[0] == 503 else None)(gw.get("/readyz")),
                        "/readyz 503 after SIGTERM")
                    self.assertIn(b"draining", body)
                    self.assertFalse(slow.done(), "the drain ended before readiness went off")
                    self.assertEqual(gw.get("/healthz")[0], 200)
                    self.assertEqual(value(mgw.parse(gw.metrics()), "spawn_ready"), 0)
                    GATE.set()
                    reply = slow.result(30)
                    self.assertEqual(unpack(reply, wrappers_pb2.Int64Value).value, 7)
                self.assertEqual(gw.stop(), 0)
            finally:
                GATE.set()
                client.close()
                host.stop()
                if gw.p.poll() is None:
                    gw.stop()

    def test_metrics_off(self):
        with tempfile.TemporaryDirectory() as d:
            gw = mgw.Gateway(d, ["--metrics", "off"])
            host = start_host(gw)
            client = SpawnClient(gw.addr)
            try:
                r = client.invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=2))
                self.assertEqual(unpack(r, wrappers_pb2.Int64Value).value, 2)
                self.assertEqual(gw.get("/metrics")[0], 404)
                self.assertEqual(gw.get("/healthz")[0], 200)
                mgw.wait_until(lambda: gw.get("/readyz")[0] == 200, "ready")
            finally:
                client.close()
                host.stop()
                self.assertEqual(gw.stop(), 0)

    def test_tls_handshakes_are_counted(self):
        with tempfile.TemporaryDirectory() as d:
            certs = os.path.join(d, "certs")
            subprocess.run(["bash", os.path.join(mgw.ROOT, "tests", "tls", "mkcerts.sh"), certs],
                           check=True, capture_output=True, timeout=120)
            gw = mgw.Gateway(d, ["--tls-cert", os.path.join(certs, "server-chain.pem"),
                                 "--tls-key", os.path.join(certs, "server.key")],
                             ca=os.path.join(certs, "ca.pem"))
            self.assertTrue(gw.https, "--tls-cert: --http serves HTTPS")
            try:
                before = value(mgw.parse(gw.metrics()), "spawn_tls_handshakes_total")
                for i in range(3):  # three clients: three connections, three handshakes
                    # Its own subchannel pool: gRPC Python may otherwise share
                    # one connection between channels to the same target.
                    c = SpawnClient(gw.addr, tls_ca=os.path.join(certs, "ca.pem"),
                                    channel_options=[("grpc.use_local_subchannel_pool", 1)])
                    with self.assertRaises(SpawnError) as e:  # no host: but TLS is up
                        c.invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=1))
                    self.assertEqual(int(e.exception.code), 5)
                    c.close()
                after = value(mgw.parse(gw.metrics()), "spawn_tls_handshakes_total")
                self.assertGreaterEqual(after - before, 3)
            finally:
                self.assertEqual(gw.stop(), 0)

    def test_bad_flag(self):
        r = subprocess.run([mgw.GATEWAY, "--metrics", "maybe"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--metrics", r.stderr)


class ClusterTest(unittest.TestCase):
    """Two gateways routing by a test view (--cluster-test-view, no
    database membership): the calls through the member that does not own
    the actor are forwarded and counted there; the owner counts every
    invocation; both report the view's members."""

    def test_forwards_and_members(self):
        with tempfile.TemporaryDirectory() as d:
            views = [os.path.join(d, "view-%d" % i) for i in range(2)]
            gws = [mgw.Gateway(d, ["--cluster-test-view", views[i]], name="gw%d" % i)
                   for i in range(2)]
            hosts, clients = [], []
            try:
                for i in range(2):
                    with open(views[i] + ".tmp", "w") as f:
                        f.write("version 1\nself m%d\n" % i)
                        for k in range(2):
                            f.write("member m%d %s 2 %s/counter\n" % (k, gws[k].addr, SYS))
                    os.rename(views[i] + ".tmp", views[i])
                    gws[i].p.send_signal(10)  # SIGUSR1: read the view again
                    for line in gws[i].p.stdout:
                        if line.strip() == "view 1":
                            break
                    else:
                        raise AssertionError("gateway %d did not apply the view" % i)
                hosts = [start_host(g) for g in gws]
                clients = [SpawnClient(g.addr) for g in gws]
                n = 20
                for c in clients:
                    for _ in range(n):
                        c.invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=1))
                s = [mgw.parse(g.metrics()) for g in gws]
                fwd = [value(x, "spawn_cluster_forwards_total", result="forwarded") for x in s]
                ok = [value(x, "spawn_invocations_total", system=SYS, actor="counter",
                            action="Add", status="OK") for x in s]
                self.assertEqual(sorted(fwd), [0, n], fwd)
                self.assertEqual(sorted(ok), [0, 2 * n], ok)
                owner = ok.index(2 * n)
                self.assertEqual(fwd[owner], 0)
                for x in s:
                    self.assertEqual(value(x, "spawn_cluster_members", status="active"), 2)
                    self.assertEqual(value(x, "spawn_cluster_members", status="dead"), 0)
            finally:
                for c in clients:
                    c.close()
                for h in hosts:
                    h.stop()
                for g in gws:
                    self.assertEqual(g.stop(), 0)


if __name__ == "__main__":
    unittest.main()
