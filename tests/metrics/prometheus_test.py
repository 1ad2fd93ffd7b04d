#!/usr/bin/python3
"""A real Prometheus server (Debian `prometheus`) scrapes the gateway's
/metrics every second while the test makes N calls from several threads;
the test then asks Prometheus' HTTP API (/api/v1/query) for the invocation
counter and its rate, and checks them against the calls it made: the
counter is exactly the calls made, the rate over the run is positive and
its increase covers the run (Prometheus extrapolates: not exact).

Prometheus cannot report the port it bound, so its port is one the kernel
handed out for a socket the test closed just before (tried again on
another port if taken meanwhile). Readiness: Prometheus' /-/ready, the
target's `up` sample, and polling the query API with a deadline; no
sleeps."""
import concurrent.futures
import json
import os
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import mgw
from http_test import SYS, start_host

from google.protobuf import wrappers_pb2  # noqa: E402
from spawn_client import SpawnClient  # noqa: E402

N = 500


free_port = mgw.free_port


class Prometheus:
    def __init__(self, d, target):
        self.d = d
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: spawn\n    scrape_interval: 1s\n"
                    "    scrape_timeout: 900ms\n    static_configs:\n"
                    "      - targets: ['%s']\n" % target)
        for attempt in range(5):
            self.port = free_port()
            self.log = open(os.path.join(d, "prometheus-%d.log" % attempt), "wb")
            self.p = subprocess.Popen(
                ["prometheus", "--config.file=" + cfg,
                 "--storage.tsdb.path=" + os.path.join(d, "data-%d" % attempt),
                 "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=info"],
                stdout=self.log, stderr=subprocess.STDOUT)
            if self._ready():
                return
            self.stop()
        raise RuntimeError("prometheus did not start: see %s" % d)

    def _ready(self):
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if self.p.poll() is not None:
                return False
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port,
                                            timeout=2) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.05)  # polling a condition
        return False

    def query(self, q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (self.port,
                                                       urllib.parse.urlencode({"query": q}))
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise AssertionError("query %s: %s" % (q, body))
        return body["data"]["result"]

    def scalar(self, q):
        res = self.query(q)
        return float(res[0]["value"][1]) if res else None

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(30)
        self.log.close()


class PrometheusTest(unittest.TestCase):
    def test_prometheus_counts_the_calls(self):
        with tempfile.TemporaryDirectory() as d:
            gw = mgw.Gateway(d)
            host = start_host(gw)
            client = SpawnClient(gw.addr)
            prom = None
            try:
                prom = Prometheus(d, "127.0.0.1:%d" % gw.http_port)
                mgw.wait_until(lambda: prom.scalar('up{job="spawn"}') == 1,
                               "Prometheus scraping the gateway", 60)
                sel = ('spawn_invocations_total{job="spawn",system="%s",actor="counter",'
                       'action="Add",status="OK"}' % SYS)
                one = wrappers_pb2.Int64Value(value=1)
                # One call first, seen by Prometheus, so the rate over the
                # run has a sample before the N calls.
                client.invoke(SYS, "counter", "Add", one)
                mgw.wait_until(lambda: prom.scalar(sel) == 1, "the first call scraped", 60)
                with concurrent.futures.ThreadPoolExecutor(8) as ex:
                    list(ex.map(lambda _: client.invoke(SYS, "counter", "Add", one), range(N)))
                # The counter as Prometheus stored it: exactly the calls made.
                mgw.wait_until(lambda: prom.scalar(sel) == N + 1,
                               "Prometheus to see %d invocations" % (N + 1), 60)
                # The rate over the run: positive, and its increase no more
                # than the calls made (Prometheus extrapolates at the edges
                # of the window, so not equal).
                rate = mgw.wait_until(lambda: prom.scalar("sum(rate(%s[1m]))" % sel),
                                      "a rate", 30)
                self.assertGreater(rate, 0)
                inc = prom.scalar("sum(increase(%s[10m]))" % sel)
                self.assertGreater(inc, N / 2)
                # Latency histograms reached Prometheus too.
                p99 = prom.scalar(
                    'histogram_quantile(0.99, sum by (le) (rate('
                    'spawn_invocation_duration_seconds_bucket{system="%s"}[1m])))' % SYS)
                self.assertIsNotNone(p99)
                self.assertGreater(p99, 0)
                self.assertEqual(prom.scalar('spawn_ready{job="spawn"}'), 1)
            finally:
                if prom:
                    prom.stop()
                client.close()
                host.stop()
                self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    unittest.main()
