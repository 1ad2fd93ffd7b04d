#!/usr/bin/python3
"""health_client_test.py - grpc.health.v1 asked by a third-party gRPC
client: @grpc/grpc-js with a stub @grpc/proto-loader makes from
proto/grpc/health/v1/health.proto (tests/deploy/health_check.js), against
a gateway on SQLite: SERVING for "" and the services each listener serves,
NOT_FOUND for others, on the client listener and on --health-listen.
"""
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_test as d  # noqa: E402  (GW, health(), node_ready(), Gateway)


class HealthClient(unittest.TestCase):
    def test_grpc_js_reads_what_check_answers(self):
        d.node_ready()
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SPAWN_")}
            gw = d.Gateway([d.GW, "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0",
                            "--statestore", f"sqlite://{tmp}/state.db"], env,
                           os.path.join(tmp, "gw.log"))
            try:
                gw.wait_listening(2)
                client, health = (f"127.0.0.1:{line[2]}" for line in gw.listening)
                want = {
                    (client, ""): "SERVING",
                    (client, "spawn.gateway.v1.ActorGateway"): "SERVING",
                    (client, "spawn.gateway.v1.HostGateway"): "SERVING",
                    (client, "grpc.health.v1.Health"): "SERVING",
                    (client, "spawn.gateway.v1.Nothing"): "error 5 unknown service "
                                                          "'spawn.gateway.v1.Nothing'",
                    (health, ""): "SERVING",
                    (health, "spawn.gateway.v1.Admin"): "SERVING",
                    (health, "nope"): "error 5 unknown service 'nope'",
                }
                for (target, service), status in want.items():
                    self.assertEqual(d.health(target, service), status, (target, service))
                gw.stop()
            finally:
                gw.kill()


if __name__ == "__main__":
    unittest.main()
