"""history.py - a per-actor linearizability checker for counter histories
(issue 11, section 5).

A history is a list of Op: one ``Add(value)`` call to one actor, with the
time it was invoked, the time its answer came (monotonic, any unit), and
its outcome:

- ``OK``: acknowledged, with the total the actor answered (the running sum
  after this add);
- ``FAIL``: certainly did not happen (``spawn-retry: not-dispatched``: the
  gateway guarantees no host saw it; or gRPC never sent it);
- ``UNKNOWN``: any other error, or no answer: it may or may not have
  happened, at any time after its invocation (a call whose client gave up
  can still run later, so its interval is treated as open-ended).

``Add(0)`` is a read: it changes nothing and answers the current total.

A counter whose adds answer the total needs no Knossos-style search: the
totals give the order. For each actor, ``check`` verifies:

1. every acknowledged write (value > 0) answered a distinct total;
2. the order of the acknowledged writes by total respects real time (if A
   was answered before B was invoked, total(A) < total(B));
3. the totals are running sums: between consecutive acknowledged writes
   W[k-1] and W[k], T[k] - T[k-1] - value(W[k]) is made up exactly by
   UNKNOWN adds placed between them (a matching of unknown adds to gaps:
   an unknown add fits gap k only if it was invoked before W[k] was
   answered; each one is used at most once); a gap that is negative is
   a lost or duplicated write, one that the unknowns cannot fill is a write
   that happened twice or came from nowhere;
4. each acknowledged read returns the total of a prefix consistent with
   real time: at least the total of every write answered before the read
   was invoked, at most the total before every write invoked after the read
   was answered, never below an earlier read (read A answered before read B
   invoked) and a reachable total (one of the totals, or an intermediate
   value that enough unknown adds invoked before the read's answer could
   have produced);
5. optionally, the final total read at the end (``final``) is the last
   acknowledged total plus some of the unknown adds left over.

Unknown adds must have value 1 when they are needed to fill a gap (the
workload adds 1; gaps of general values would need subset sums). The read
check for an intermediate value is necessary, not sufficient: it counts the
unknown adds that could have run before the read, without matching them
against the gaps.

``check`` returns a list of Anomaly (empty = linearizable).
"""

import collections

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
INF = float("inf")


class Op:
    """One Add call. ``answer`` may be None (no answer: UNKNOWN)."""

    __slots__ = ("actor", "value", "invoke", "answer", "outcome", "total", "via", "code",
                 "not_dispatched", "message", "index")

    def __init__(self, actor, value, invoke, answer, outcome, total=None, via="",
                 code=None, not_dispatched=False, message=""):
        self.actor, self.value = actor, value
        self.invoke, self.answer = invoke, answer
        self.outcome, self.total, self.via = outcome, total, via
        self.code, self.not_dispatched = code, not_dispatched
        self.message = message
        self.index = -1

    def __repr__(self):
        r = "#%d %s Add(%d) via %s [%s, %s] %s" % (self.index, self.actor, self.value,
                                                  self.via or "?", self.invoke, self.answer,
                                                  self.outcome)
        if self.outcome == OK:
            r += " total=%d" % self.total
        elif self.code is not None:
            r += " %s%s" % (self.code, " not-dispatched" if self.not_dispatched else "")
            if self.message:
                r += " %r" % self.message[:120]
        return r


class Anomaly:
    """What the checker found: kind (one of KINDS), actor, text, ops."""

    KINDS = ("duplicate-total", "real-time", "lost-write", "unexplained-total", "stale-read",
             "impossible-read", "read-order", "final-total", "bad-op")

    def __init__(self, kind, actor, text, ops=()):
        self.kind, self.actor, self.text, self.ops = kind, actor, text, list(ops)

    def __repr__(self):
        return "%s on %s: %s%s" % (self.kind, self.actor, self.text,
                                   "".join("\n    %r" % o for o in self.ops))


def _fill(gaps, deadlines, invokes):
    """Fills gap k (needing gaps[k] adds) with distinct unknown adds invoked
    before deadlines[k]; invokes: the unknown adds' invoke times. Returns
    how many each gap got.

    The gaps that accept an unknown add form nested sets (a gap with a later
    deadline accepts every add an earlier one does), so filling the gaps in
    the order of their deadlines from a running count of the eligible adds
    is a maximum matching: which adds an earlier gap takes never matters to
    a later one."""
    invokes = sorted(invokes)
    got = [0] * len(gaps)
    pool, j = 0, 0
    for k in sorted(range(len(gaps)), key=lambda k: deadlines[k]):
        while j < len(invokes) and invokes[j] < deadlines[k]:
            pool += 1
            j += 1
        got[k] = min(gaps[k], pool)
        pool -= got[k]
    return got


def check_actor(actor, ops, initial=0, final=None):
    """The anomalies of one actor's ops (see the module's doc)."""
    out = []
    writes = sorted((o for o in ops if o.outcome == OK and o.value > 0), key=lambda o: o.total)
    reads = [o for o in ops if o.outcome == OK and o.value == 0]
    unknowns = [o for o in ops if o.outcome == UNKNOWN and o.value > 0]
    for o in ops:
        if o.value < 0 or (o.outcome == OK and o.total is None):
            out.append(Anomaly("bad-op", actor, "negative add or an OK without a total", [o]))
    if out:
        return out

    # 1. distinct totals
    by_total = collections.defaultdict(list)
    for w in writes:
        by_total[w.total].append(w)
    for t, ws in sorted(by_total.items()):
        if len(ws) > 1:
            out.append(Anomaly("duplicate-total", actor,
                               "%d acknowledged adds answered the same total %d" % (len(ws), t),
                               ws))

    # 2. real time: no write later in the order was answered before an
    # earlier one was invoked (suffix minimum of answer times).
    suffix_min = [None] * (len(writes) + 1)
    best = None
    for k in range(len(writes) - 1, -1, -1):
        suffix_min[k + 1] = best
        if best is None or writes[k].answer < best.answer:
            best = writes[k]
    for k, w in enumerate(writes):
        later = suffix_min[k + 1]
        if later is not None and later.answer < w.invoke and later.total > w.total:
            out.append(Anomaly("real-time", actor,
                               "total %d was answered before the add that answered %d was "
                               "invoked" % (later.total, w.total), [later, w]))

    # 3. running sums, with unknown adds filling the gaps
    gaps, prev = [], initial
    for w in writes:
        gaps.append(w.total - prev - w.value)
        prev = w.total
    negative = [k for k, g in enumerate(gaps) if g < 0]
    for k in negative:
        w = writes[k]
        before = writes[k - 1] if k else None
        if before is not None and before.total == w.total:
            continue  # already a duplicate-total
        out.append(Anomaly("lost-write", actor,
                           "add of %d answered %d, but the total before it was already %d: "
                           "an acknowledged add was lost or counted twice"
                           % (w.value, w.total, before.total if before else initial),
                           [x for x in (before, w) if x]))
    if any(g > 0 for g in gaps):
        if any(u.value != 1 for u in unknowns):
            raise ValueError("%s: unknown-outcome adds must add 1 to fill gaps" % actor)

        demand = [max(g, 0) for g in gaps]
        filled = _fill(demand, [w.answer for w in writes], [u.invoke for u in unknowns])
        for k, (need, got) in enumerate(zip(demand, filled)):
            if got < need:
                w = writes[k]
                out.append(Anomaly(
                    "unexplained-total", actor,
                    "add of %d answered %d after %d: %d more than it added, and only %d "
                    "unknown-outcome add(s) can have run in between"
                    % (w.value, w.total, writes[k - 1].total if k else initial, need, got),
                    [w] + ([writes[k - 1]] if k else [])))
    used_before_last = sum(max(g, 0) for g in gaps)
    spare = len(unknowns) - used_before_last  # at most this many after the last write

    # 4. reads
    totals = [initial] + [w.total for w in writes]
    for r in reads:
        lo_w = [w for w in writes if w.answer < r.invoke]
        hi_w = [w for w in writes if w.invoke > r.answer]
        lo = max([initial] + [w.total for w in lo_w])
        hi = min([INF] + [w.total - w.value for w in hi_w])
        if r.total < lo:
            why = max(lo_w, key=lambda w: w.total)
            out.append(Anomaly("stale-read", actor,
                               "read answered %d, but an add that answered %d was acknowledged "
                               "before the read was invoked" % (r.total, lo), [why, r]))
            continue
        if r.total > hi:
            why = min(hi_w, key=lambda w: w.total - w.value)
            out.append(Anomaly("impossible-read", actor,
                               "read answered %d, more than the total %d before an add invoked "
                               "after the read was answered" % (r.total, hi), [r, why]))
            continue
        if r.total not in totals:
            below = max([t for t in totals if t < r.total], default=initial)
            could = sum(1 for u in unknowns if u.invoke < r.answer)
            if r.total - below > could:
                out.append(Anomaly("impossible-read", actor,
                                   "read answered %d, a total no acknowledged add produced, and "
                                   "only %d unknown-outcome add(s) could have run before it"
                                   % (r.total, could), [r]))
    for a in reads:
        for b in reads:
            if a.answer < b.invoke and b.total < a.total:
                out.append(Anomaly("read-order", actor,
                                   "a read answered %d after an earlier read had answered %d"
                                   % (b.total, a.total), [a, b]))

    # 5. the final state
    if final is not None:
        last = writes[-1].total if writes else initial
        if final < last or final - last > max(spare, 0):
            out.append(Anomaly("final-total", actor,
                               "the final total is %d; the last acknowledged total is %d and at "
                               "most %d unknown-outcome add(s) are left"
                               % (final, last, max(spare, 0))))
    return out


def check(ops, initial=None, final=None):
    """Checks every actor of ops. initial / final: dicts actor -> total
    (missing: 0 / not checked). Returns the anomalies, per actor in order."""
    initial, final = initial or {}, final or {}
    per = collections.defaultdict(list)
    for i, o in enumerate(ops):
        o.index = i
        per[o.actor].append(o)
    out = []
    for actor in sorted(per):
        out += check_actor(actor, per[actor], initial.get(actor, 0), final.get(actor))
    return out


def summary(ops):
    """Counts per outcome, and per outcome and error code: a dict."""
    s = collections.Counter()
    for o in ops:
        s[o.outcome] += 1
        if o.outcome != OK:
            s["%s:%s%s" % (o.outcome, o.code, "/not-dispatched" if o.not_dispatched else "")] += 1
    return dict(s)
