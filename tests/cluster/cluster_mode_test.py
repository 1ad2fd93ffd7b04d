#!/usr/bin/python3
"""Issue 11, section 5, in cluster mode: three gateways started with
--advertise on one PostgreSQL or MariaDB, each with its own host, on
127.0.0.2-4. Every scenario must be CLEAN by the history checker
(history.py): no lost or duplicated acknowledged add, totals consistent
with real time, no stale read.

1. the stale read of today_test.py (add 1 via A, add 1 via B, add 0 via A)
   answers 2;
2. the same few actors hammered through all three members for
   CHAOS_SECONDS (default 60): at most 0.1% errors;
3. kill -9 of one member under load: the survivors serve every actor
   again within 2x the member timeout;
4. a partition (one member loses its peers, not the database) for longer
   than the member timeout, healed: clean;
5. one member loses the database: its failed calls fail fast (docs/design/
   cluster.md, "The member loses the database"): a call it had in flight
   is answered by the time it fenced itself (within the member timeout of
   its invocation, although its deadline is 3x that), a call made after
   the fence within FAIL_FAST_S (forwarded to the new owner, or refused
   not-dispatched); the others keep serving once the view has changed;
6. a rolling restart (SIGTERM one at a time) under load: every error is
   one the runtimes retry (spawn-retry: not-dispatched).

Not part of `make test` yet: today's gateway has no --advertise, so every
test here fails (it must: a test that skips would pass). `make
test-cluster` runs it; it joins `make test` when issue 11's routing and
membership land (docs/testing.md)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos  # noqa: E402
import history  # noqa: E402

SECONDS = float(os.environ.get("CHAOS_SECONDS", "60"))
MEMBER_TIMEOUT_S = 5.0  # --member-timeout-ms default
FAIL_FAST_S = 1.0  # --heartbeat-ms default
BUDGET = 0.001  # errors, around view changes only


def errors(ops, via=None, after=None, before=None, answered_before=None):
    return [o for o in ops if o.outcome != history.OK and (via is None or o.via == via) and
            (after is None or o.invoke >= after) and (before is None or o.invoke < before) and
            (answered_before is None or o.answer < answered_before)]


class ClusterModeTest(chaos.ClusterCase):
    cluster = True

    def assertClean(self, found):
        self.assertEqual(found, [], "the history checker found anomalies")

    def test_1_no_stale_read(self):
        def run(kind):
            ops, found = self.stale_read_scenario(kind)
            self.assertEqual([o.total for o in ops], [1, 2, 2])
            self.assertClean(found)
        self.each_store(run)

    def test_2_hammer(self):
        def run(kind):
            ops, found = self.hammer(kind, SECONDS)
            self.assertClean(found)
            self.assertLessEqual(chaos.error_rate(ops), BUDGET)
        self.each_store(run)

    def test_3_kill9_under_load(self):
        def script(c):
            time.sleep(5)
            self.mark("kill")
            c.kill9(1)
            time.sleep(4 * MEMBER_TIMEOUT_S)
            self.mark("restart")
            c.restart(1)
            time.sleep(5)

        def run(kind):
            ops, found = self.run_load(kind, "kill9", script)
            self.assertClean(found)
            # A call in flight on the killed member when it dies (asked
            # directly, or forwarded to it) has an unknown outcome: it may
            # have run. Every call answered before the kill succeeded.
            self.assertEqual(errors(ops, answered_before=self.marks["kill"]), [])
            served_by = self.marks["kill"] + int(2 * MEMBER_TIMEOUT_S * 1e9)
            late = [o for o in errors(ops, after=served_by, before=self.marks["restart"])
                    if o.via != "m1"]
            self.assertEqual(late, [], "the survivors did not take over within 2x the timeout")
            back = self.marks["restart"] + int(2 * MEMBER_TIMEOUT_S * 1e9)
            self.assertEqual(errors(ops, after=back), [], "errors after the member came back")
        self.each_store(run)

    def test_4_partition_under_load(self):
        def script(c):
            time.sleep(5)
            self.mark("partition")
            c.partition(0)
            time.sleep(3 * MEMBER_TIMEOUT_S)
            self.mark("heal")
            c.heal()
            time.sleep(3 * MEMBER_TIMEOUT_S)

        def run(kind):
            ops, found = self.run_load(kind, "partition", script)
            self.assertClean(found)
            self.assertEqual(errors(ops, before=self.marks["partition"]), [])
            healed = self.marks["heal"] + int(2 * MEMBER_TIMEOUT_S * 1e9)
            self.assertEqual(errors(ops, after=healed), [], "the cluster did not heal")
        self.each_store(run)

    def test_5_database_loss_under_load(self):
        def script(c):
            time.sleep(5)
            self.mark("cut")
            c.cut_db(0)
            time.sleep(3 * MEMBER_TIMEOUT_S)
            self.mark("heal")
            self.heal_wall = time.time()
            c.heal()
            time.sleep(3 * MEMBER_TIMEOUT_S)

        def run(kind):
            # A deadline well past the member timeout: a call that hangs
            # until its deadline shows as one.
            # Twelve actors: member 0 owns some ((2/3)^12 < 1% it owns
            # none, and then the test fails below rather than pass idle).
            self.n_actors = 12
            ops, found = self.run_load(kind, "dbcut", script, timeout=3 * MEMBER_TIMEOUT_S)
            self.assertClean(found)
            with open(os.path.join(self.dir, "m0-gateway-stderr.log")) as f:
                handed = [ln for ln in f if "handed off to their new owners" in ln]
            self.assertTrue(handed, "member 0 owned no active actor when it fenced")
            # Back under a new id after the heal, within 2x the timeout on
            # both stores (the membership's connection does not wait out
            # TCP's retransmission backoff: before, ~12 s; store.h,
            # net_timeout_ms).
            rejoined = chaos.log_times(os.path.join(self.dir, "m0-gateway-stderr.log"),
                                       " joined (", self.heal_wall)
            self.assertTrue(rejoined, "member 0 did not rejoin after the heal")
            print("dbcut (%s): member 0 rejoined %.1f s after the heal"
                  % (kind, rejoined[0] - self.heal_wall), file=sys.stderr)
            self.assertLessEqual(rejoined[0] - self.heal_wall, 2 * MEMBER_TIMEOUT_S,
                                 "member 0 rejoined late")
            slow = [o for o in errors(ops, via="m0")
                    if o.answer - o.invoke > MEMBER_TIMEOUT_S * 1e9]
            self.assertEqual(slow, [], "member 0 did not answer its calls by its fence")
            fenced = self.marks["cut"] + int(MEMBER_TIMEOUT_S * 1e9)
            slow = [o for o in errors(ops, via="m0", after=fenced)
                    if o.answer - o.invoke > FAIL_FAST_S * 1e9]
            self.assertEqual(slow, [], "member 0 did not fail fast once fenced")
            took_over = self.marks["cut"] + int(2 * MEMBER_TIMEOUT_S * 1e9)
            others = [o for o in errors(ops, after=took_over) if o.via != "m0"]
            self.assertEqual(others, [], "the others did not take over")
        self.each_store(run)

    def test_6_rolling_restart_under_load(self):
        def script(c):
            time.sleep(5)
            self.mark("rolling")
            c.rolling_restart()
            self.mark("done")
            time.sleep(5)

        def run(kind):
            ops, found = self.run_load(kind, "rolling", script)
            self.assertClean(found)
            self.assertEqual([o for o in ops if o.outcome == history.UNKNOWN], [],
                             "errors that the runtimes do not retry")
        self.each_store(run)


if __name__ == "__main__":
    unittest.main()
