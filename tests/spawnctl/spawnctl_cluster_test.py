#!/usr/bin/python3
"""spawnctl_cluster_test.py - spawnctl's members and list on the
three-member cluster of tests/cluster (chaos.Cluster: three gateways in
cluster mode on one PostgreSQL or MariaDB of the spawn_db fixture, each
with an incrementor host), one store per run (CHAOS_STORES):

  - members, asked of each member: the same three, active, the one asked
    marked self;
  - list hosts / systems / instances answer for every member (each item
    names its member; the MEMBER column in tables), paged across members;
  - a member killed with -9 is named in `unanswered` (its code, a warning
    on stderr, exit 0) until the view drops it, then the list is whole
    again.
"""
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
import chaos  # noqa: E402

CTL = os.path.join(chaos.BUILD, "sdk", "c", "spawnctl", "spawnctl")


def ctl(target, *args):
    r = subprocess.run([CTL, "--gateway", target, *args], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stdout, r.stderr


def js(target, *args):
    rc, out, err = ctl(target, *args, "--output", "json")
    if rc != 0:
        raise AssertionError(f"spawnctl {' '.join(args)} on {target}: exit {rc}: {err}")
    return json.loads(out)


def until(fn, what, timeout=30):
    """Polls fn() (a spawnctl answer) until it is truthy: the view converging."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


class ClusterLists(chaos.ClusterCase):
    cluster = True
    # a member timeout long enough that a killed member stays in the view
    # while it is asked
    gateway_args = ("--heartbeat-ms", "100", "--member-timeout-ms", "5000")

    def test_members_and_lists_across_the_cluster(self):
        self.each_store(self.scenario)

    def scenario(self, kind):
        c = self.start(kind, 3, "spawnctl")
        targets = [m.target for m in c.members]

        def three_active(t):
            m = js(t, "members")
            # active, with what its host serves published (heartbeats)
            return m if m["cluster"] and len(m["members"]) == 3 and all(
                x["status"] == "active" and "spawn-system/incrementor" in x["served"]
                for x in m["members"]) else None

        views = [until(lambda t=t: three_active(t), f"three active members seen by {t}")
                 for t in targets]
        ids = {}
        for t, v in zip(targets, views):
            self.assertEqual(sorted(x["address"] for x in v["members"]), sorted(targets))
            me = [x for x in v["members"] if x["self"]]
            self.assertEqual([x["address"] for x in me], [t], v)
            ids[t] = me[0]["id"]
        self.assertRegex(ctl(targets[0], "members")[1], r"^ID\s+ADDRESS\s+STATUS\s+SELF\s+SERVED\n")

        # hosts: one per member, each named by its member
        hosts = until(lambda: (lambda r: r if len(r["items"]) == 3 else None)(
            js(targets[1], "list", "hosts")), "three hosts listed")
        self.assertEqual(sorted(h["member"] for h in hosts["items"]), sorted(ids.values()))
        self.assertEqual(hosts["unanswered"], [])
        sy = js(targets[2], "list", "systems")["items"]
        self.assertEqual(sorted((s["system"], s["member"]) for s in sy),
                         sorted(("spawn-system", i) for i in ids.values()))
        table = ctl(targets[0], "list", "hosts")[1]
        self.assertRegex(table, r"^SYSTEM\s+PEER\s+PRINCIPAL\s+IN FLIGHT\s+BATCH\s+MEMBER\n")

        # instances: each on its owner, whichever member is asked
        cl = chaos.Client(targets[0])
        try:
            actors = [f"ctl-{i}" for i in range(6)]
            for a in actors:
                op = cl.add(a, 1)
                self.assertEqual(op.outcome, chaos.history.OK, op)
        finally:
            cl.close()
        inst = js(targets[1], "list", "instances")["items"]
        self.assertEqual(sorted(i["actor"] for i in inst), actors)
        self.assertTrue(set(i["member"] for i in inst) <= set(ids.values()), inst)
        paged = js(targets[2], "list", "instances", "--page-size", "2", "--all")["items"]
        self.assertEqual([(i["actor"], i["member"]) for i in paged],
                         [(i["actor"], i["member"]) for i in inst])

        # a member killed: named until the view drops it
        dead = c.members[2]
        c.kill9(2)
        r = js(targets[0], "list", "hosts")
        self.assertEqual([u["member_id"] for u in r["unanswered"]], [ids[dead.target]], r)
        self.assertEqual(sorted(h["member"] for h in r["items"]),
                         sorted(ids[t] for t in targets[:2]))
        rc, out, err = ctl(targets[0], "list", "hosts")
        self.assertEqual(rc, 0, err)
        self.assertIn(f"member {ids[dead.target]} ({dead.target}) did not answer", err)
        until(lambda: not js(targets[0], "list", "hosts")["unanswered"],
              "the killed member out of the view", timeout=60)
        self.assertEqual(len(js(targets[1], "list", "hosts")["items"]), 2)


if __name__ == "__main__":
    unittest.main()
