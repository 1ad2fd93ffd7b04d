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


class TodayTest(chaos.ClusterCase):
    def test_stale_read_is_found(self):
        def run(kind):
            ops, found = self.stale_read_scenario(kind)
            self.assertEqual([o.total for o in ops], [1, 2, 1],
                             "today's gateway no longer answers the stale read: is this "
                             "cluster mode? (cluster_mode_test.py)")
            self.assertEqual([f.kind for f in found], ["stale-read"])
        self.each_store(run)

    def test_load_is_refused_and_writes_stay_linearizable(self):
        def run(kind):
            ops, found = self.hammer(kind, SECONDS)
            self.assertGreater(len(ops), 100)
            self.assertGreater(chaos.error_rate(ops), 0.001,
                               "fewer errors than issue 11 measured")
            codes = {o.code for o in ops if o.outcome != history.OK}
            self.assertIn("ABORTED", codes)
            self.assertEqual([f for f in found if f.kind in chaos.WRITE_KINDS], [])
        self.each_store(run)


if __name__ == "__main__":
    unittest.main()
