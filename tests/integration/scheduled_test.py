#!/usr/bin/python3
"""Scheduled invocations end to end: InvocationRequest.scheduled_to (epoch
ms) is answered once stored, runs at its time, survives a gateway restart
(overdue ones run right after start-up) and runs once. Real gateway and the
C Incrementor host over loopback; readiness by reading their output lines
and by polling the actor's state through Admin.GetState (no host call).

Store: a SQLite file by default; SPAWN_SCHED_STORE=postgres runs the same
tests on the PostgreSQL server of SPAWN_TEST_POSTGRES_URL (the ctest fixture
spawn_db, tests/store/with-db.sh), each test in a fresh schema (search_path
in the URL, as itdb does), dropped afterwards."""
import os
import sqlite3
import subprocess
import urllib.parse
import sys
import tempfile
import time
import unittest

BUILD = os.environ.get("SPAWN_BUILD_DIR", "build")
sys.path.insert(0, os.path.join(BUILD, "python-gen"))
import grpc  # noqa: E402
from google.protobuf import any_pb2  # noqa: E402
from spawn.actors import protocol_pb2  # noqa: E402
from spawn.gateway.v1 import gateway_pb2  # noqa: E402
import incrementor_pb2  # noqa: E402

KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
ON_POSTGRES = os.environ.get("SPAWN_SCHED_STORE") == "postgres"


def psql(url, sql):
    """Runs sql on the server of url (a postgres:// URL); returns stdout."""
    return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                           "-d", url, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def read_line(proc, prefix, what):
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
    raise RuntimeError("%s exited before printing %r" % (what, prefix))


class ScheduledTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.db = os.path.join(self.dir.name, "s.db")
        self.store = "sqlite://" + self.db
        if ON_POSTGRES:
            self.server = os.environ.get("SPAWN_TEST_POSTGRES_URL")
            if not self.server:
                self.fail("SPAWN_SCHED_STORE=postgres without SPAWN_TEST_POSTGRES_URL")
            self.schema = "sched_%d_%d" % (os.getpid(), int(time.time() * 1000) % 10**9)
            psql(self.server, "CREATE SCHEMA %s" % self.schema)
            sep = "&" if "?" in self.server else "?"
            self.store = "%s%soptions=%s" % (
                self.server, sep,
                urllib.parse.quote("-csearch_path=%s" % self.schema, safe=""))
        self.gw = self.host = self.ch = None
        self.start()

    def start(self):
        env = dict(os.environ, SPAWN_STATESTORE_KEY=KEY)
        self.gw = subprocess.Popen(
            [os.path.join(BUILD, "gateway", "spawn-gateway"), "--listen", "127.0.0.1:0",
             "--statestore", self.store, "--host-timeout", "5000"],
            stdout=subprocess.PIPE, text=True, env=env)
        port = int(read_line(self.gw, "listening", "gateway").split()[2])
        self.host = subprocess.Popen(
            [os.path.join(BUILD, "examples", "incrementor-host"), "--gateway",
             "127.0.0.1:%d" % port, "--checkpoint"], stdout=subprocess.PIPE, text=True)
        read_line(self.host, "registered", "host")
        self.ch = grpc.insecure_channel("127.0.0.1:%d" % port)
        ser = lambda m: m.SerializeToString()  # noqa: E731
        self.invoke = self.ch.unary_unary("/spawn.gateway.v1.ActorGateway/Invoke",
                                          request_serializer=ser,
                                          response_deserializer=protocol_pb2.InvocationResponse.FromString)
        self.get_state = self.ch.unary_unary("/spawn.gateway.v1.Admin/GetState",
                                             request_serializer=ser,
                                             response_deserializer=gateway_pb2.ActorStateView.FromString)

    def stop(self):
        self.ch.close()
        for p in (self.host, self.gw):
            p.terminate()
            self.assertEqual(p.wait(timeout=30), 0)
            p.stdout.close()

    def tearDown(self):
        self.stop()
        if ON_POSTGRES:
            psql(self.server, "DROP SCHEMA %s CASCADE" % self.schema)
        self.dir.cleanup()

    def schedule_add(self, value, at_ms):
        req = protocol_pb2.InvocationRequest(action_name="Add", scheduled_to=at_ms)
        req.system.name = "spawn-system"
        req.actor.id.name = "incrementor"
        a = any_pb2.Any()
        a.Pack(incrementor_pb2.Add(value=value))
        req.value.CopyFrom(a)
        return self.invoke(req, timeout=10)

    def total(self):
        r = gateway_pb2.GetStateRequest()
        r.actor.system, r.actor.actor = "spawn-system", "incrementor"
        try:
            v = self.get_state(r, timeout=10)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return 0
            raise
        st = incrementor_pb2.State()
        v.state.Unpack(st)
        return st.total

    def wait_total(self, want, seconds=15):
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # a bounded readiness poll
            t = self.total()
            if t == want:
                return
            self.assertLess(t, want + 1)
            time.sleep(0.02)
        self.fail("total never reached %d (now %d)" % (want, self.total()))

    def pending_rows(self):
        if ON_POSTGRES:
            return int(psql(self.server,
                            "SELECT count(*) FROM %s.spawn_schedule" % self.schema))
        with sqlite3.connect(self.db) as c:
            return c.execute("SELECT count(*) FROM spawn_schedule").fetchone()[0]

    def test_runs_at_its_time_once_and_survives_a_restart(self):
        now = int(time.time() * 1000)
        resp = self.schedule_add(5, now + 300)
        self.assertEqual(resp.status.status, protocol_pb2.OK)  # answered once stored
        self.assertEqual(self.total(), 0)  # not yet
        self.wait_total(5)
        # another one far enough ahead to outlive the gateway
        self.schedule_add(7, int(time.time() * 1000) + 1500)
        self.assertEqual(self.pending_rows(), 1)
        self.stop()  # SIGTERM, state saved
        time.sleep(1.6)  # let it become overdue while no gateway runs
        self.start()
        self.wait_total(12)  # the overdue one ran after start-up
        end = time.monotonic() + 10
        while self.pending_rows() and time.monotonic() < end:
            time.sleep(0.02)
        self.assertEqual(self.pending_rows(), 0)  # delivered rows are deleted
        self.assertEqual(self.total(), 12)  # ...and ran once

    def test_unknown_actors_are_refused_at_once(self):
        req = protocol_pb2.InvocationRequest(action_name="Add",
                                             scheduled_to=int(time.time() * 1000) + 60000)
        req.system.name = "spawn-system"
        req.actor.id.name = "nobody"
        with self.assertRaises(grpc.RpcError) as e:
            self.invoke(req, timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(self.pending_rows(), 0)


if __name__ == "__main__":
    unittest.main()
