#!/usr/bin/python3
"""The checker and the harness against today's gateway (issue 11): two or
three gateways on one database only fence each other, and the checker must
FIND what the issue describes:

- the stale read: add 1 via A = 1, add 1 via B = 2, add 0 via A = 1;
- under load, an error rate far above the cluster's budget of 0.1%
  (ABORTED: fenced saves), while the acknowledged writes stay linearizable
  (fencing refuses the stale activation's saves).

When issue 11's routing lands, cluster_mode_test.py runs the same scenarios
with --advertise and requires them clean; this file then documents the
gateway without cluster mode.

CHAOS_STORES: the stores (default postgres,mariadb); CHAOS_SECONDS: the
length of the load run (default 8)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos  # noqa: E402
import history  # noqa: E402

SECONDS = float(os.environ.get("CHAOS_SECONDS", "8"))
WRITE_KINDS = {"duplicate-total", "real-time", "lost-write", "unexplained-total", "final-total"}


class TodayTest(unittest.TestCase):
    cluster = False  # cluster_mode_test.py sets True

    def setUp(self):
        self.store = self.c = None

    def tearDown(self):
        if self.c:
            self.c.close()
        if self.store:
            self.store.drop()
        self.c = self.store = None

    def start(self, kind, n, name):
        self.store = chaos.Store(kind)
        self.dir = chaos.work_dir("%s_%s%s" % (name, kind, "_cluster" if self.cluster else ""))
        self.c = chaos.Cluster(self.store, n, self.dir, cluster=self.cluster)

    def stale_read_scenario(self, kind):
        """add 1 via A, add 1 via B, add 0 via A: the anomalies found."""
        self.start(kind, 2, "stale")
        a = chaos.Client(self.c.members[0].target)
        b = chaos.Client(self.c.members[1].target)
        try:
            ops = [a.add("x", 1, via="A"), b.add("x", 1, via="B"), a.add("x", 0, via="A")]
        finally:
            a.close()
            b.close()
        for o in ops:
            print("  %r" % o, file=sys.stderr)
        self.assertEqual([o.outcome for o in ops], [history.OK] * 3, ops)
        found = history.check(ops)
        chaos.report("stale-read scenario (%s)" % kind, ops, found)
        return ops, found

    def hammer(self, kind, seconds):
        """Three members, three actors, adds and reads through all of them:
        (ops, anomalies)."""
        self.start(kind, 3, "hammer")
        actors = ["h0", "h1", "h2"]
        ops = chaos.Workload(self.c, actors).run_for(seconds)
        final = chaos.stored_totals(self.store, actors, self.dir)
        found = history.check(ops, final=final)
        chaos.report("hammer (%s, %.0f s)" % (kind, seconds), ops, found,
                     ", final %s" % final)
        return ops, found

    def test_stale_read_is_found(self):
        for kind in chaos.store_kinds():
            with self.subTest(store=kind):
                ops, found = self.stale_read_scenario(kind)
                self.assertEqual([o.total for o in ops], [1, 2, 1],
                                 "today's gateway no longer answers the stale read: is this "
                                 "cluster mode? (cluster_mode_test.py)")
                self.assertEqual([f.kind for f in found], ["stale-read"])
                self.tearDown()

    def test_load_is_refused_and_writes_stay_linearizable(self):
        for kind in chaos.store_kinds():
            with self.subTest(store=kind):
                ops, found = self.hammer(kind, SECONDS)
                self.assertGreater(len(ops), 100)
                rate = chaos.error_rate(ops)
                self.assertGreater(rate, 0.001, "fewer errors than issue 11 measured")
                codes = {o.code for o in ops if o.outcome != history.OK}
                self.assertIn("ABORTED", codes)
                self.assertEqual([f for f in found if f.kind in WRITE_KINDS], [])
                self.tearDown()


if __name__ == "__main__":
    unittest.main()
