"""End to end: the Python runtime on the batched host link (docs/protocol.md,
"Batched host link") against a real gateway, with batches and with
--host-batch 1 (no batches either way): 256 concurrent calls on 128 actor
instances, each answered with its own payload and every state count right.

Needs SPAWN_BUILD_DIR (the build tree with gateway/spawn-gateway) and
SPAWN_PY_PROTO_OUT (the generated modules), as set by ctest.
"""
import os
import struct
import subprocess
import sys
import tempfile
import threading
import unittest
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ["SPAWN_BUILD_DIR"]
sys.path.insert(0, os.environ["SPAWN_PY_PROTO_OUT"])
sys.path.insert(0, HERE)

from google.protobuf import any_pb2, wrappers_pb2  # noqa: E402
from spawn_client import SpawnClient  # noqa: E402
from spawn_host import ActorHost, unpack  # noqa: E402

KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
T = 30.0
COUNTER = "type.googleapis.com/bench.Counter"


def read_line(proc, prefix, what, timeout=15.0):
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            if line.startswith(prefix):
                return line
    finally:
        timer.cancel()
    raise AssertionError("%s ended or timed out before printing %r" % (what, prefix))


def calls_of(state):
    return struct.unpack("<Q", state.value)[0] if state is not None and len(state.value) == 8 else 0


def echo(state, payload, ctx):
    return any_pb2.Any(type_url=COUNTER, value=struct.pack("<Q", calls_of(state) + 1)), payload


def count(state, payload, ctx):
    return None, wrappers_pb2.UInt64Value(value=calls_of(state))


class BatchE2ETest(unittest.TestCase):
    def run_gateway(self, *flags):
        d = tempfile.TemporaryDirectory(prefix="spawn-py-batch-")
        self.addCleanup(d.cleanup)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPAWN_")}
        env["SPAWN_STATESTORE_KEY"] = KEY
        p = subprocess.Popen(
            [os.path.join(BUILD, "gateway", "spawn-gateway"), "--listen", "127.0.0.1:0",
             "--statestore", "sqlite://" + os.path.join(d.name, "s.db")] + list(flags),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)

        def stop():
            p.kill()
            p.wait(timeout=30)
            p.stdout.close()
        self.addCleanup(stop)
        line = read_line(p, "listening ", "gateway")
        return "127.0.0.1:%d" % int(line.split()[2])

    def calls(self, *flags):
        target = self.run_gateway(*flags)
        host = ActorHost(target, "pybatch", workers=4)
        host.add_actor("echo-actor", {"echo": echo, "count": count}, kind="UNNAMED",
                       stateful=True)
        host.start()
        self.addCleanup(host.stop, T)
        self.assertTrue(host.registered.wait(T))
        client = SpawnClient(target, timeout=T)
        self.addCleanup(client.close)

        def one(i):
            reply = client.invoke("pybatch", "e-%d" % (i % 128), "echo",
                                  wrappers_pb2.StringValue(value="call %d" % i),
                                  parent="echo-actor")
            return unpack(reply, wrappers_pb2.StringValue).value

        with ThreadPoolExecutor(64) as pool:
            got = list(pool.map(one, range(256)))
        self.assertEqual(got, ["call %d" % i for i in range(256)])
        # Each instance ran exactly twice, its state threaded through.
        for i in range(128):
            n = client.invoke("pybatch", "e-%d" % i, "count", parent="echo-actor")
            self.assertEqual(unpack(n, wrappers_pb2.UInt64Value).value, 2, "e-%d" % i)

    def test_with_batches(self):
        self.calls()

    def test_without_batches(self):
        self.calls("--host-batch", "1")


if __name__ == "__main__":
    unittest.main()
