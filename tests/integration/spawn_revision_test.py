#!/usr/bin/python3
"""Spawn(SpawnRequest{revision}) restores an UNNAMED instance to a stored
revision before answering; the instance continues from it. Real gateway and
the C Incrementor host (--unnamed --checkpoint) over loopback; readiness by
reading their output lines."""
import os
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("SPAWN_BUILD_DIR", "build")
sys.path.insert(0, os.path.join(BUILD, "python-gen"))
import grpc  # noqa: E402
from google.protobuf import any_pb2  # noqa: E402
from spawn.actors import protocol_pb2  # noqa: E402
import incrementor_pb2  # noqa: E402


def read_line(proc, prefix, what):
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
    raise RuntimeError("%s exited before printing %r" % (what, prefix))


class SpawnRevisionTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        env = dict(os.environ, SPAWN_STATESTORE_KEY="q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=")
        self.gw = subprocess.Popen(
            [os.path.join(BUILD, "gateway", "spawn-gateway"), "--listen", "127.0.0.1:0",
             "--statestore", "sqlite://%s/s.db" % self.dir.name, "--store-history", "5"],
            stdout=subprocess.PIPE, text=True, env=env)
        self.port = int(read_line(self.gw, "listening", "gateway").split()[2])
        self.host = subprocess.Popen(
            [os.path.join(BUILD, "examples", "incrementor-host"), "--gateway",
             "127.0.0.1:%d" % self.port, "--unnamed", "--checkpoint"],
            stdout=subprocess.PIPE, text=True)
        read_line(self.host, "registered", "host")
        self.ch = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        self.invoke = self.ch.unary_unary(
            "/spawn.gateway.v1.ActorGateway/Invoke",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=protocol_pb2.InvocationResponse.FromString)
        self.spawn = self.ch.unary_unary(
            "/spawn.gateway.v1.ActorGateway/Spawn",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=protocol_pb2.SpawnResponse.FromString)

    def tearDown(self):
        self.ch.close()
        for p in (self.host, self.gw):
            p.terminate()
            self.assertEqual(p.wait(timeout=30), 0)
            p.stdout.close()
        self.dir.cleanup()

    def add(self, name, value):
        req = protocol_pb2.InvocationRequest(action_name="Add")
        req.system.name = "spawn-system"
        req.actor.id.name = name
        req.actor.id.system = "spawn-system"
        a = any_pb2.Any()
        a.Pack(incrementor_pb2.Add(value=value))
        req.value.CopyFrom(a)
        resp = self.invoke(req, timeout=10)
        total = incrementor_pb2.Total()
        resp.value.Unpack(total)
        return total.total

    def spawn_req(self, name, revision):
        r = protocol_pb2.SpawnRequest(revision=revision)
        a = r.actors.add()
        a.name, a.system, a.parent = name, "spawn-system", "incrementor"
        return r

    def test_spawn_with_a_revision_restores_the_instance(self):
        self.spawn(self.spawn_req("joe", 0), timeout=10)
        self.assertEqual([self.add("joe", 1) for _ in range(3)], [1, 2, 3])  # revisions 1..3
        self.spawn(self.spawn_req("joe", 1), timeout=10)  # back to total 1 (as revision 4)
        self.assertEqual(self.add("joe", 1), 2)
        with self.assertRaises(grpc.RpcError) as e:
            self.spawn(self.spawn_req("joe", 99), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(self.add("joe", 1), 3)  # unchanged by the refused restore


if __name__ == "__main__":
    unittest.main()
