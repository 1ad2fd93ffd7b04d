#!/usr/bin/python3
"""Cluster metrics on real PostgreSQL membership (issue 13 §1: "cluster
members and forwards, when there is a cluster"): three gateways with
--advertise on a schema of their own on the fixture's PostgreSQL
(SPAWN_TEST_POSTGRES_URL, tests/store/with-db.sh), each with a host of our
Python SDK for the same system, the third one's database reached through a
TCP proxy the test cuts. Heartbeat 200 ms, member timeout 2000 ms.

- spawn_cluster_members{status}: every member sees 3 active;
- spawn_cluster_forwards_total{result="forwarded"}: N calls through each
  member to one actor: the two members that do not own it forward exactly
  N each, the owner none, and the owner alone counts the 3N invocations;
- fencing: the third member's database cut, it fences itself
  (spawn_cluster_fenced_total 1 there, "member ID fenced" on its stdout);
  healed, it rejoins under a new id: every member sees 3 active (the old
  id's row declared dead: the view leaves DEAD rows out, so the "dead"
  series stays 0); its fenced count stays 1, the others' 0;
- kill -9 of a member: once declared dead, the others see 2 active.
Fails (never skips) without the server.

Waits: "member ID joined"/"fenced" lines on stdout, the hosts' registered
events, polling /metrics with deadlines of many member timeouts."""
import os
import signal
import tempfile
import unittest

import mgw
from mgw import value
from store_ready_test import schema_urls

from google.protobuf import wrappers_pb2  # noqa: E402
from spawn_client import SpawnClient  # noqa: E402
from spawn_host import ActorHost  # noqa: E402

SYS = "csys"
N = 10
LONG = 60.0  # 30x the member timeout: a bound, not a wait


def add(state, payload, ctx):
    s = wrappers_pb2.Int64Value()
    if state is not None:
        state.Unpack(s)
    s.value += 1
    return s, wrappers_pb2.Int64Value(value=s.value), True


def wait_line(gw, prefix, suffix):
    """Reads gw's stdout until a line "PREFIX ... SUFFIX"; returns its words."""
    for line in gw.p.stdout:
        w = line.split()
        if len(w) == 3 and w[0] == prefix and w[2] == suffix:
            return w
    raise AssertionError("the gateway's stdout ended before '%s ... %s'" % (prefix, suffix))


class ClusterMetricsTest(unittest.TestCase):
    def snap(self, gw):
        return mgw.parse(gw.metrics())

    def until(self, gw, pred, what):
        last = {}

        def check():
            last["s"] = self.snap(gw)
            return last["s"] if pred(last["s"]) else None
        try:
            return mgw.wait_until(check, what, LONG)
        except AssertionError as e:
            members = {dict(l)["status"]: v for (n, l), v in last.get("s", {}).items()
                       if n == "spawn_cluster_members"}
            raise AssertionError("%s; members by status: %r" % (e, members)) from None

    def test_members_forwards_and_fencing(self):
        direct, proxied, proxy = schema_urls(self, "mcluster")
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        gws, hosts, clients, ids = [], [], [], []

        def cleanup():
            for c in clients:
                c.close()
            for h in hosts:
                h.stop()
            for g in gws:
                if g.p.poll() is None:
                    g.stop()
        self.addCleanup(cleanup)
        for i in range(3):
            port = mgw.free_port()
            g = mgw.Gateway(d.name, ["--statestore", proxied if i == 2 else direct,
                                     "--advertise", "127.0.0.1:%d" % port,
                                     "--heartbeat-ms", "200", "--member-timeout-ms", "2000"],
                            name="m%d" % i, listen="127.0.0.1:%d" % port)
            gws.append(g)
            ids.append(wait_line(g, "member", "joined")[1])
        for g in gws:
            h = ActorHost(g.addr, SYS, proto_path=os.path.join(mgw.BUILD, "python-gen"))
            h.add_actor("counter", {"Add": add}, stateful=True, kind="NAMED")
            h.start()
            hosts.append(h)
            self.assertTrue(h.registered.wait(30), "a host registered")
            clients.append(SpawnClient(g.addr))
        for g in gws:
            self.until(g, lambda s: value(s, "spawn_cluster_members", status="active") == 3,
                       "3 active members")

        # Forwards: one actor, called through every member.
        for c in clients:  # warm-up: the view with the hosts' served types is in place
            c.invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=1))
        before = [self.snap(g) for g in gws]
        for c in clients:
            for _ in range(N):
                c.invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=1))
        after = [self.snap(g) for g in gws]

        def delta(name, **labels):
            return [value(a, name, **labels) - value(b, name, **labels)
                    for a, b in zip(after, before)]
        ok = delta("spawn_invocations_total", system=SYS, actor="counter", action="Add",
                   status="OK")
        fwd = delta("spawn_cluster_forwards_total", result="forwarded")
        self.assertEqual(sorted(ok), [0, 0, 3 * N], ok)
        owner = ok.index(3 * N)
        self.assertEqual(fwd[owner], 0, fwd)
        self.assertEqual(sorted(fwd), [0, N, N], fwd)
        self.assertEqual(delta("spawn_cluster_forwards_total", result="refused"), [0, 0, 0])
        for s in after:
            self.assertEqual(value(s, "spawn_cluster_fenced_total"), 0)

        # Fencing: m2 loses the database.
        proxy.cut()
        wait_line(gws[2], "member", "fenced")
        s2 = self.until(gws[2], lambda s: value(s, "spawn_cluster_fenced_total") == 1,
                        "m2's fencing counted")
        self.assertEqual(value(s2, "spawn_cluster_fenced_total"), 1)
        proxy.heal()
        new_id = wait_line(gws[2], "member", "joined")[1]
        self.assertNotEqual(new_id, ids[2], "rejoined under a new id")
        # The old id's row is declared dead once nobody answers its probe
        # by that id, and the view leaves DEAD rows out (docs/design/
        # cluster.md): 3 active (4 while the old row is still live).
        for g in gws:
            self.until(g, lambda s: value(s, "spawn_cluster_members", status="active") == 3 and
                       value(s, "spawn_cluster_members", status="dead") == 0,
                       "3 active members again, the old row out of the view")
        self.assertEqual(value(self.snap(gws[2]), "spawn_cluster_fenced_total"), 1)
        self.assertEqual(value(self.snap(gws[0]), "spawn_cluster_fenced_total"), 0)

        # kill -9 of m1: the others see it dead.
        gws[1].p.send_signal(signal.SIGKILL)
        gws[1].p.wait(30)
        for g in (gws[0], gws[2]):
            self.until(g, lambda s: value(s, "spawn_cluster_members", status="active") == 2,
                       "m1 declared dead: out of the view")
        clients[0].invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=1))


if __name__ == "__main__":
    unittest.main()
