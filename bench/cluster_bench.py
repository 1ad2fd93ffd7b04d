#!/usr/bin/python3
"""cluster_bench.py - issue 11 section 6: failover and view-change times of a
real cluster (three gateways with --advertise on one PostgreSQL or MariaDB,
each with its incrementor-host, on 127.0.0.2-4), under the client load of
the cluster harness (tests/cluster/chaos.py: two client threads per member
calling Add on BENCH_CL_ACTORS actors through every member).

  failover   BENCH_CL_KILLS times: kill -9 of one member (in turn), then
             the time until every actor answers again through the others:
             for each actor, the first successful call through a surviving
             member invoked after the kill; the failover time of that kill
             is the latest of those answers, less the kill's time. The
             killed member is restarted and rejoins before the next kill.
  leave      BENCH_CL_LEAVES times: SIGTERM of one member (in turn), then
             the time until each survivor's view no longer has it
             ("cluster: view N" lines of their logs), and the longest call
             through a survivor in flight meanwhile.

Run by bench/cluster.sh (which starts the private database server); prints
one line per kill / leave and the p50 / p99 / max, and exits 1 when a call
was lost by the history checker or a measurement is missing.

Environment [defaults]: BENCH_CL_STORE [postgres] BENCH_CL_KILLS [20]
BENCH_CL_LEAVES [5] BENCH_CL_ACTORS [12] BENCH_CL_HEARTBEAT_MS [100]
BENCH_CL_TIMEOUT_MS [1000] SPAWN_BUILD_DIR [build]."""
import datetime
import os
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))
import chaos  # noqa: E402
import history  # noqa: E402

STORE = os.environ.get("BENCH_CL_STORE", "postgres")
KILLS = int(os.environ.get("BENCH_CL_KILLS", "20"))
LEAVES = int(os.environ.get("BENCH_CL_LEAVES", "5"))
ACTORS = int(os.environ.get("BENCH_CL_ACTORS", "12"))
HEARTBEAT_MS = int(os.environ.get("BENCH_CL_HEARTBEAT_MS", "100"))
TIMEOUT_MS = int(os.environ.get("BENCH_CL_TIMEOUT_MS", "1000"))
VIEW_RE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) INFO  cluster: view \d+: (\d+) members(.*)")


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def wait_ok(cluster, via, actors, seconds):
    """Waits (bounded) until each actor answers a call through member via."""
    cl = chaos.Client(cluster.members[via].target)
    try:
        end = time.monotonic() + seconds
        for a in actors:
            while True:
                if cl.add(a, 0, 2.0).outcome == history.OK:
                    break
                if time.monotonic() > end:
                    raise RuntimeError("actor %s not served through m%d in %.0f s"
                                       % (a, via, seconds))
                time.sleep(0.05)
    finally:
        cl.close()


def failover_time(ops, victim, kill_ns, actors):
    """Latest first-success (through a survivor, invoked after the kill)
    over the actors, less the kill's time, in ms; None when an actor never
    answered."""
    latest = 0
    for a in actors:
        oks = [o.answer for o in ops if o.actor == a and o.via != victim and
               o.outcome == history.OK and o.invoke >= kill_ns]
        if not oks:
            return None
        latest = max(latest, min(oks))
    return (latest - kill_ns) / 1e6


def view_without(logpath, since_wall, n_members):
    """The wall time (s) of the first view line of logpath after since_wall
    in which a member is LEAVING (placement gives its actors to the others
    from then on) or gone (fewer than n_members); None if none."""
    day = datetime.datetime.fromtimestamp(since_wall, datetime.timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0)
    with open(logpath) as f:
        for line in f:
            m = VIEW_RE.match(line)
            if not m:
                continue
            h, mi, s, ms, n = (int(x) for x in m.groups()[:5])
            t = (day + datetime.timedelta(hours=h, minutes=mi, seconds=s,
                                          milliseconds=ms)).timestamp()
            if t >= since_wall - 0.001 and (n < n_members or "=leaving(" in m.group(6)):
                return t
    return None


def main():
    store = chaos.Store(STORE)
    d = chaos.work_dir("bench_cluster_%s" % STORE)
    args = ("--heartbeat-ms", str(HEARTBEAT_MS), "--member-timeout-ms", str(TIMEOUT_MS))
    c = chaos.Cluster(store, 3, d, cluster=True, gateway_args=args)
    actors = ["b%d" % k for k in range(ACTORS)]
    wl = None
    rc = 0
    try:
        for i in range(3):
            wait_ok(c, i, actors, 30)
        wl = chaos.Workload(c, actors, timeout=5.0).start()
        fails, leaves, slow = [], [], []
        for k in range(KILLS):
            victim = k % 3
            time.sleep(0.5)
            kill_ns = time.monotonic_ns()
            c.kill9(victim)
            # Every actor must be served again by the others.
            for i in range(3):
                if i != victim:
                    wait_ok(c, i, actors, 20)
            time.sleep(0.2)
            with wl.lock:
                ops = list(wl.ops)
            t = failover_time(ops, "m%d" % victim, kill_ns, actors)
            print("kill %2d of m%d: failover %s ms" % (k + 1, victim,
                  "%.0f" % t if t is not None else "?"), flush=True)
            if t is None:
                rc = 1
            else:
                fails.append(t)
            c.restart(victim)
            wait_ok(c, victim, actors, 30)
        for k in range(LEAVES):
            victim = k % 3
            time.sleep(0.5)
            m = c.members[victim]
            wall, t0 = time.time(), time.monotonic_ns()
            m.gw.send_signal(signal.SIGTERM)
            if m.gw.wait(timeout=30) != 0:
                raise RuntimeError("m%d exited %s on SIGTERM" % (victim, m.gw.returncode))
            t1 = time.monotonic_ns()
            seen = []
            for i in range(3):
                if i == victim:
                    continue
                log = os.path.join(d, "m%d-gateway-stderr.log" % i)
                end = time.monotonic() + 10
                while True:
                    v = view_without(log, wall, 3)
                    if v is not None or time.monotonic() > end:
                        break
                    time.sleep(0.05)
                seen.append(v)
            with wl.lock:
                ops = list(wl.ops)
            longest = max([(o.answer - o.invoke) / 1e6 for o in ops
                           if o.via != "m%d" % victim and o.invoke >= t0 and o.invoke < t1] or
                          [0.0])
            if None in seen:
                print("leave %d of m%d: a survivor's view still has it" % (k + 1, victim))
                rc = 1
            else:
                t = (max(seen) - wall) * 1000
                leaves.append(t)
                slow.append(longest)
                print("leave %d of m%d: view change %.0f ms, exit after %.0f ms, longest call "
                      "through a survivor meanwhile %.0f ms" % (k + 1, victim, t,
                                                                 (t1 - t0) / 1e6, longest),
                      flush=True)
            c.restart(victim)
            wait_ok(c, victim, actors, 30)
        ops = wl.stop()
        wl = None
        final = chaos.stored_totals(store, actors, d)
        found = history.check(ops, final=final)
        chaos.report("cluster bench (%s)" % STORE, ops, found)
        if found:
            rc = 1
        print("RESULT store=%s heartbeat_ms=%d timeout_ms=%d actors=%d" % (
            STORE, HEARTBEAT_MS, TIMEOUT_MS, ACTORS))
        print("RESULT failover after kill -9 (%d kills): p50 %.0f ms, p99 %.0f ms, max %.0f ms"
              % (len(fails), pct(fails, 50), pct(fails, 99), max(fails or [float("nan")])))
        print("RESULT view change on a graceful leave (%d leaves): p50 %.0f ms, max %.0f ms; "
              "longest call through a survivor meanwhile: max %.0f ms" % (
                  len(leaves), pct(leaves, 50), max(leaves or [float("nan")]),
                  max(slow or [float("nan")])))
        print("RESULT calls %d, errors %.2f%%, anomalies %d" % (
            len(ops), 100 * chaos.error_rate(ops), len(found)))
    finally:
        if wl:
            wl.stop()
        c.close()
        store.drop()
    return rc


if __name__ == "__main__":
    sys.exit(main())
