#!/usr/bin/python3
"""Unit tests of the history checker (history.py) on hand-made histories:
each anomaly it must find, and the valid histories it must accept."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from history import FAIL, OK, UNKNOWN, Op, check  # noqa: E402


def add(inv, ans, total, value=1, actor="a", via="A"):
    return Op(actor, value, inv, ans, OK, total, via)


def read(inv, ans, total, actor="a", via="A"):
    return Op(actor, 0, inv, ans, OK, total, via)


def lost(inv, ans=None, value=1, actor="a", code="UNAVAILABLE"):
    return Op(actor, value, inv, ans, UNKNOWN, code=code)


def refused(inv, ans, value=1, actor="a"):
    return Op(actor, value, inv, ans, FAIL, code="UNAVAILABLE", not_dispatched=True)


class CheckerTest(unittest.TestCase):
    def kinds(self, ops, **kw):
        return sorted(a.kind for a in check(ops, **kw))

    def test_valid_sequential(self):
        ops = [add(0, 1, 1), add(2, 3, 2, via="B"), read(4, 5, 2), add(6, 7, 5, value=3)]
        self.assertEqual(check(ops, final={"a": 5}), [])

    def test_valid_concurrent_out_of_real_order_totals(self):
        # Two overlapping adds may take effect in either order, and a read
        # overlapping both may see any prefix.
        ops = [add(0, 10, 2), add(1, 9, 1, via="B"), read(2, 8, 1), read(3, 7, 0, via="B")]
        self.assertEqual(check(ops), [])

    def test_several_actors_are_independent(self):
        ops = [add(0, 1, 1, actor="x"), add(0, 1, 1, actor="y"), read(2, 3, 1, actor="x")]
        self.assertEqual(check(ops), [])

    def test_stale_read_of_issue_11(self):
        # add 1 via A = 1, add 1 via B = 2, add 0 via A = 1
        ops = [add(0, 1, 1, via="A"), add(2, 3, 2, via="B"), read(4, 5, 1, via="A")]
        found = check(ops)
        self.assertEqual([a.kind for a in found], ["stale-read"])
        self.assertIn("answered 1", found[0].text)

    def test_read_from_the_future(self):
        ops = [add(0, 1, 1), read(2, 3, 2), add(4, 5, 2)]
        self.assertEqual(self.kinds(ops), ["impossible-read"])

    def test_read_order(self):
        # Both reads overlap the add, so each alone is fine, but the later
        # read went back in time.
        ops = [add(0, 10, 1), read(1, 2, 1), read(3, 4, 0, via="B")]
        self.assertEqual(self.kinds(ops), ["read-order"])

    def test_lost_write(self):
        # The second add was acknowledged, but a later add answers a total
        # that does not count it.
        ops = [add(0, 1, 1), add(2, 3, 2, via="B"), add(4, 5, 2 + 0, via="A")]
        self.assertIn("duplicate-total", self.kinds(ops))
        ops = [add(0, 1, 1), add(2, 3, 3, value=2, via="B"), add(4, 5, 4, value=2)]
        self.assertEqual(self.kinds(ops), ["lost-write"])

    def test_duplicate_total(self):
        ops = [add(0, 5, 1), add(1, 6, 1, via="B")]
        self.assertEqual(self.kinds(ops), ["duplicate-total"])

    def test_real_time_violation(self):
        # B was invoked after A was answered, yet B's total is the smaller.
        ops = [add(0, 1, 2), add(2, 3, 1, via="B")]
        self.assertEqual(self.kinds(ops), ["real-time"])

    def test_a_write_from_nowhere(self):
        ops = [add(0, 1, 1), add(2, 3, 3)]
        self.assertEqual(self.kinds(ops), ["unexplained-total"])

    def test_unknown_outcome_that_happened(self):
        # The failed add ran: the next total counts it.
        ops = [add(0, 1, 1), lost(2, 3), add(4, 5, 3)]
        self.assertEqual(check(ops), [])
        # ...even when its client saw an error first and it ran later.
        ops = [lost(0, 1), add(2, 3, 1), add(4, 5, 3)]
        self.assertEqual(check(ops), [])

    def test_unknown_outcome_that_did_not_happen(self):
        ops = [add(0, 1, 1), lost(2, 3), add(4, 5, 2), read(6, 7, 2)]
        self.assertEqual(check(ops, final={"a": 2}), [])

    def test_unknown_outcome_cannot_explain_two(self):
        ops = [add(0, 1, 1), lost(2, 3), add(4, 5, 4)]
        self.assertEqual(self.kinds(ops), ["unexplained-total"])

    def test_unknown_invoked_too_late_cannot_fill_a_gap(self):
        # The unknown add was invoked after the add whose total needs it
        # was answered.
        ops = [add(0, 1, 1), add(2, 3, 3), lost(4, 5)]
        self.assertEqual(self.kinds(ops), ["unexplained-total"])

    def test_each_unknown_fills_one_gap(self):
        one = [add(0, 1, 1), lost(0, 1), add(2, 3, 3), add(4, 5, 5)]
        self.assertEqual(self.kinds(one), ["unexplained-total"])
        two = one + [lost(0, 1)]
        self.assertEqual(check(two), [])

    def test_matching_moves_an_unknown_to_another_gap(self):
        # u1 fits both gaps, u2 only the first (the add of total 4 was
        # answered before u2 was invoked): the greedy choice of u1 for the
        # first gap must be undone.
        u1, u2 = lost(0), lost(6)
        ops = [u1, u2, add(1, 9, 2), add(2, 5, 4)]
        self.assertEqual(check(ops), [])
        self.assertEqual(self.kinds([u2, add(1, 9, 2), add(2, 5, 4)]), ["unexplained-total"])

    def test_certain_failures_do_not_fill_gaps(self):
        ops = [add(0, 1, 1), refused(2, 3), add(4, 5, 3)]
        self.assertEqual(self.kinds(ops), ["unexplained-total"])
        ops = [add(0, 1, 1), refused(2, 3), add(4, 5, 2)]
        self.assertEqual(check(ops), [])

    def test_read_of_an_unknown_add(self):
        ops = [add(0, 1, 1), lost(2, 3), read(4, 5, 2), add(6, 7, 3)]
        self.assertEqual(check(ops), [])
        ops = [add(0, 1, 1), read(4, 5, 2)]
        self.assertEqual(self.kinds(ops), ["impossible-read"])

    def test_final_total(self):
        ops = [add(0, 1, 1), lost(2, 3), add(4, 5, 2)]
        self.assertEqual(check(ops, final={"a": 3}), [])  # the unknown ran last
        self.assertEqual(self.kinds(ops, final={"a": 4}), ["final-total"])
        self.assertEqual(self.kinds(ops, final={"a": 1}), ["final-total"])

    def test_initial_total(self):
        ops = [add(0, 1, 11), read(2, 3, 11)]
        self.assertEqual(check(ops, initial={"a": 10}), [])
        self.assertEqual(self.kinds(ops), ["unexplained-total"])

    def test_unknown_adds_of_other_values_are_refused(self):
        ops = [add(0, 1, 1), lost(2, 3, value=2), add(4, 5, 4)]
        with self.assertRaises(ValueError):
            check(ops)


if __name__ == "__main__":
    unittest.main()
