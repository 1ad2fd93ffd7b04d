#!/usr/bin/python3
"""The drain (docs/design/cluster.md, "A call that reaches a member as it
stops: the drain"), one gateway on SQLite, no root: clients call it
without a pause between calls over a channel pinned to it while it is
stopped (SIGTERM) and started again on the same port, RESTARTS times.
Every call either succeeds or fails in a way that says it never ran: the
gateway's UNAVAILABLE with ``spawn-retry: not-dispatched``, or gRPC's own
"failed to connect to all addresses" (nothing was sent). A CANCELLED or
an UNAVAILABLE "Cancelling all calls" without the trailer (gRPC core
cancelling a stream that reached it after its shutdown began: an unknown
outcome) fails the test. Before the drain parked its last calls, about
half the rolling restarts of `make test-cluster` scenario 6 had one."""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos  # noqa: E402
import history  # noqa: E402

BUILD = chaos.BUILD
RESTARTS = int(os.environ.get("DRAIN_RESTARTS", "6"))
THREADS = 4


class Gateway:
    """spawn-gateway on SQLite at port (0: any), with an incrementor host."""

    def __init__(self, d, db, port=0):
        argv = [os.path.join(BUILD, "gateway", "spawn-gateway"), "--listen",
                "127.0.0.1:%d" % port, "--statestore", "sqlite://" + db]
        env = dict(os.environ, SPAWN_STATESTORE_KEY=chaos.KEY)
        self.err = open(os.path.join(d, "gateway-stderr.log"), "a")
        self.gw = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                   env=env)
        self.out = chaos._Drain(self.gw.stdout, os.path.join(d, "gateway-stdout.log"),
                                "listening")
        if not self.out.wait_count(1, 30):
            raise RuntimeError("the gateway did not print 'listening' (exit %s)"
                               % self.gw.poll())
        with open(os.path.join(d, "gateway-stdout.log")) as f:
            self.port = int([ln for ln in f if ln.startswith("listening")][-1].split()[2])
        self.host = subprocess.Popen(
            [os.path.join(BUILD, "examples", "incrementor-host"), "--gateway",
             "127.0.0.1:%d" % self.port, "--checkpoint", "--unnamed"],
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.hout = chaos._Drain(self.host.stdout, os.path.join(d, "host-stdout.log"),
                                 "registered")
        if not self.hout.wait_count(1, 30):
            raise RuntimeError("the host did not register")

    def stop(self):
        """SIGTERM to the gateway (its exit code), then the host."""
        self.gw.send_signal(signal.SIGTERM)
        rc = self.gw.wait(timeout=60)
        self.host.send_signal(signal.SIGTERM)
        try:
            self.host.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.host.kill()
            self.host.wait()
        self.out.join(5)
        self.hout.join(5)
        self.err.close()
        return rc


class DrainTest(unittest.TestCase):
    def test_calls_made_while_the_gateway_stops_never_have_an_unknown_outcome(self):
        with tempfile.TemporaryDirectory(prefix="spawn-drain-") as d:
            db = os.path.join(d, "state.db")
            g = Gateway(d, db)
            port = g.port
            stop = threading.Event()
            ops, lock = [], threading.Lock()

            def run(k):
                cl = chaos.Client("127.0.0.1:%d" % port)
                try:
                    while not stop.is_set():
                        op = cl.add("d%d" % (k % 2), 1, 5.0, "gw")
                        with lock:
                            ops.append(op)
                        if op.outcome != history.OK:
                            stop.wait(0.02)  # a client's pause, as the runtimes'
                finally:
                    cl.close()

            threads = [threading.Thread(target=run, args=(k,), daemon=True)
                       for k in range(THREADS)]
            for t in threads:
                t.start()
            try:
                for _ in range(RESTARTS):
                    # Some calls succeed before each stop.
                    n = len(ops)
                    end = time.monotonic() + 30
                    while len([o for o in ops[n:] if o.outcome == history.OK]) < 20:
                        self.assertLess(time.monotonic(), end, "no call succeeded")
                        time.sleep(0.01)
                    self.assertEqual(g.stop(), 0, "the gateway's exit code")
                    g = Gateway(d, db, port)
            finally:
                stop.set()
                for t in threads:
                    t.join(40)
                g.stop()
            ok = sum(1 for o in ops if o.outcome == history.OK)
            refused = sum(1 for o in ops if o.outcome == history.FAIL)
            # A call that reaches the new gateway before its host registered
            # again is answered NOT_FOUND (no host serves the actor): it never
            # ran either, and is no part of the drain.
            early = [o for o in ops if o.outcome == history.UNKNOWN and o.code == "NOT_FOUND"
                     and "not found in system" in o.message]
            unknown = [o for o in ops if o.outcome == history.UNKNOWN and o not in early]
            print("drain: %d restarts, %d calls: %d ok, %d refused (never ran), %d before the "
                  "host registered, %d unknown"
                  % (RESTARTS, len(ops), ok, refused, len(early), len(unknown)), file=sys.stderr)
            self.assertGreater(refused, 0, "no call was made while the gateway stopped")
            self.assertEqual(unknown, [], "calls with an unknown outcome")


if __name__ == "__main__":
    unittest.main()
