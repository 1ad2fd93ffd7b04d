#!/usr/bin/python3
"""The OTLP exporter's own counters in /metrics (docs/observability.md,
"Exporter"): spawn_otlp_spans_total{result="sent"|"dropped"} and
spawn_otlp_requests_failed_total, against an OTLP/HTTP receiver in the test
(tracing_test's, whose answers can be held).

- receiver up: every span the receiver got is counted sent, nothing
  dropped or failed;
- receiver hung (it holds its answer): the smallest queue (--otlp-queue 16)
  fills and the spans past it are counted dropped while nothing is sent;
  once the receiver answers, what it got is exactly what is counted sent;
- receiver down (a port bound by the test and not listening: connections
  refused): requests fail and their spans are counted dropped, none sent;
  the gateway keeps serving calls.

Waits are the receiver's requests and polling /metrics with a deadline."""
import concurrent.futures
import os
import socket
import sys
import tempfile
import threading
import unittest

import mgw
from mgw import value

sys.path.insert(0, os.path.join(mgw.ROOT, "tests", "integration"))
from tracing_test import Receiver  # noqa: E402

from google.protobuf import wrappers_pb2  # noqa: E402
from spawn_client import SpawnClient  # noqa: E402
from spawn_host import ActorHost  # noqa: E402

SYS = "osys"


def add(state, payload, ctx):
    s = wrappers_pb2.Int64Value()
    return s, wrappers_pb2.Int64Value(value=1), True


def url(r):
    return "http://127.0.0.1:%d/v1/traces" % r.port


def received(r):
    with r.cv:
        return len(r.spans)


class OtlpCountersTest(unittest.TestCase):
    def run_gateway(self, endpoint, extra=()):
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        gw = mgw.Gateway(d.name, ["--otlp-endpoint", endpoint] + list(extra))
        h = ActorHost(gw.addr, SYS, proto_path=os.path.join(mgw.BUILD, "python-gen"))
        h.add_actor("counter", {"Add": add}, stateful=True, kind="NAMED")
        h.start()
        self.assertTrue(h.registered.wait(20), "the host registered")
        c = SpawnClient(gw.addr)

        def stop():
            c.close()
            h.stop()
            self.assertEqual(gw.stop(), 0)
        self.addCleanup(stop)
        return gw, c

    def counts(self, gw):
        s = mgw.parse(gw.metrics())
        return (value(s, "spawn_otlp_spans_total", result="sent"),
                value(s, "spawn_otlp_spans_total", result="dropped"),
                value(s, "spawn_otlp_requests_failed_total"))

    def calls(self, c, n, par=1):
        with concurrent.futures.ThreadPoolExecutor(par) as ex:
            list(ex.map(lambda _: c.invoke(SYS, "counter", "Add",
                                           wrappers_pb2.Int64Value(value=1)), range(n)))

    def test_a_receiver_up_counts_what_it_got(self):
        r = Receiver()
        self.addCleanup(r.close)
        gw, c = self.run_gateway(url(r))
        self.assertIn("spawn_otlp_spans_total", mgw.families(gw.metrics()))
        self.assertEqual(self.counts(gw), (0, 0, 0))
        self.calls(c, 10)
        got = mgw.wait_until(lambda: (lambda k: k if k[0] >= 10 and k[0] == received(r) else None)(
            self.counts(gw)), "the spans sent and received")
        self.assertEqual(got[1:], (0, 0))

    def test_b_a_hung_receiver_fills_the_queue(self):
        release = threading.Event()
        r = Receiver(hold=release)
        self.addCleanup(r.close)
        self.addCleanup(release.set)
        gw, c = self.run_gateway(url(r), ["--otlp-queue", "16"])
        # The first batch goes out and is held; then 16 spans fit, the
        # rest are dropped.
        self.calls(c, 1)
        with r.cv:
            self.assertTrue(r.cv.wait_for(lambda: r.requests, 20), "the first export")
        self.calls(c, 40, par=4)
        sent, dropped, failed = mgw.wait_until(
            lambda: (lambda k: k if k[1] > 0 else None)(self.counts(gw)), "spans dropped")
        self.assertEqual((sent, failed), (0, 0))
        release.set()
        got = mgw.wait_until(lambda: (lambda k: k if k[0] > 0 and k[0] == received(r) and
                                      k[0] + k[1] >= 40 else None)(self.counts(gw)),
                             "the held spans sent")
        self.assertEqual(got[2], 0)
        self.assertGreaterEqual(got[1], dropped)

    def test_c_a_receiver_down_fails_and_drops(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections refused
        self.addCleanup(s.close)
        gw, c = self.run_gateway("http://127.0.0.1:%d/v1/traces" % s.getsockname()[1])
        self.calls(c, 5)
        sent, dropped, failed = mgw.wait_until(
            lambda: (lambda k: k if k[2] >= 1 and k[1] >= 5 else None)(self.counts(gw)),
            "a failed export")
        self.assertEqual(sent, 0)
        self.calls(c, 3)  # still serving


if __name__ == "__main__":
    unittest.main()
