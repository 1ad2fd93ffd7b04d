#!/usr/bin/python3
"""The host gauges with a host of Spawn's HTTP protocol (gateway/http/
http_host.c; docs/operations.md, "Metrics"): a real gateway with --http
and --spawn-host-url, the Spawn-protocol host and client of
tests/spawnhttp/spawn_http.py (as Spawn's SDKs speak it), beside a gRPC
host of our Python SDK in another system.

- spawn_hosts_connected{system}: 0 before the HTTP host registers, 1 after,
  next to the gRPC host's own system;
- while a call is held by the HTTP host: spawn_host_tasks_in_flight{system}
  is 1 and spawn_host_queue_bytes{system} the request body's size (more
  than the actor's and action's names, under the body bound), and
  spawn_http_host_calls_in_flight 1;
- once the host answers: both back to 0, spawn_http_host_calls_total ok +1.

Waits: the host handler's entry (an event), the calls' answers, polling
/metrics with a deadline; no sleeps."""
import concurrent.futures
import os
import sys
import tempfile
import threading
import unittest

import mgw
from mgw import value

sys.path.insert(0, os.path.join(mgw.ROOT, "tests", "spawnhttp"))
import spawn_http as sh  # noqa: E402

from google.protobuf import wrappers_pb2  # noqa: E402
from spawn_host import ActorHost  # noqa: E402

HS, GS = "hsys", "gsys"
ENTERED, RELEASE = threading.Event(), threading.Event()


def hold(ctx, payload):
    ENTERED.set()
    RELEASE.wait(30)
    return sh.json_any("1"), sh.json_any("1")


class HttpHostGaugesTest(unittest.TestCase):
    def test_gauges_follow_an_http_host(self):
        with tempfile.TemporaryDirectory() as d:
            host = sh.SpawnHttpHost({("counter", "hold"): hold}, HS).start()
            gw = mgw.Gateway(d, ["--spawn-host-url", "http://127.0.0.1:%d" % host.port])
            ghost = ActorHost(gw.addr, GS, proto_path=os.path.join(mgw.BUILD, "python-gen"))
            ghost.add_actor("g", {"Add": lambda s, p, c: (None, wrappers_pb2.Int64Value())},
                            stateful=False, kind="NAMED")
            ghost.start()
            client = sh.SpawnHttpClient("127.0.0.1", gw.http_port)
            try:
                self.assertTrue(ghost.registered.wait(20), "the gRPC host registered")
                s = mgw.parse(gw.metrics())
                self.assertEqual(value(s, "spawn_hosts_connected", system=HS), 0)
                self.assertEqual(value(s, "spawn_hosts_connected", system=GS), 1)
                st, resp = client.register(HS, [sh.actor(HS, "counter", ["hold"])])
                self.assertEqual((st, resp.status.message), (200, "Accepted"), resp)
                s = mgw.parse(gw.metrics())
                self.assertEqual(value(s, "spawn_hosts_connected", system=HS), 1)
                self.assertEqual(value(s, "spawn_hosts_connected", system=GS), 1)
                self.assertEqual(value(s, "spawn_host_tasks_in_flight", system=HS), 0)
                self.assertEqual(value(s, "spawn_host_queue_bytes", system=HS), 0)
                ok0 = value(s, "spawn_http_host_calls_total", result="ok")
                with concurrent.futures.ThreadPoolExecutor(1) as ex:
                    call = ex.submit(client.invoke, HS, "counter", "hold", sh.json_any("5"))
                    self.assertTrue(ENTERED.wait(20), "the call reached the HTTP host")
                    s = mgw.parse(gw.metrics())
                    self.assertEqual(value(s, "spawn_host_tasks_in_flight", system=HS), 1)
                    b = value(s, "spawn_host_queue_bytes", system=HS)
                    self.assertGreater(b, len("counter") + len("hold"))
                    self.assertLess(b, 65536)
                    self.assertEqual(value(s, "spawn_http_host_calls_in_flight"), 1)
                    self.assertEqual(value(s, "spawn_host_tasks_in_flight", system=GS), 0)
                    RELEASE.set()
                    st, resp = call.result(30)
                    self.assertEqual(st, 200, resp)
                s = mgw.wait_until(lambda: (lambda x: x if value(
                    x, "spawn_http_host_calls_total", result="ok") == ok0 + 1 else None)(
                        mgw.parse(gw.metrics())), "the call counted")
                self.assertEqual(value(s, "spawn_host_tasks_in_flight", system=HS), 0)
                self.assertEqual(value(s, "spawn_host_queue_bytes", system=HS), 0)
                self.assertEqual(value(s, "spawn_http_host_calls_in_flight"), 0)
                self.assertEqual(value(s, "spawn_hosts_connected", system=HS), 1)
                rc, out = mgw.promtool_check_metrics(gw.metrics())
                self.assertEqual(rc, 0, out)
            finally:
                RELEASE.set()
                client.close()
                ghost.stop()
                self.assertEqual(gw.stop(), 0)
                host.stop()


if __name__ == "__main__":
    unittest.main()
