"""spawn_client over gateway restarts, against the real gateway (issue 9,
item 7): the gateway is SIGKILLed and started again on the same address (a
TCP port, a unix socket), and the first call of a client that was idle
across the restart must not fail because of its dead connection.

    SPAWN_BUILD_DIR=build /usr/bin/python3 -m unittest sdk/python/test_resume.py -v

Two long-lived clients: A calls an actor nobody registered right after the
new gateway prints `listening` (the answer must be the new gateway's
NOT_FOUND, never the UNAVAILABLE of a write on a dead connection); B calls
the Incrementor's Add once its host (the C example) has registered again.
A third client, made while the gateway is down, calls while it is down: it
must get the new gateway's answer. The times are printed, not asserted.

Retryable answers (docs/protocol.md): the host is stopped (SIGSTOP) across
each restart, so B's Add made right after `listening` reaches the new gateway
before the host has registered again; the answer is UNAVAILABLE marked never
dispatched, which B retries until it succeeds once the host is continued. A
fail-fast client gets that UNAVAILABLE. A call dispatched and lost (its host
killed during it) fails UNAVAILABLE without a retry; one made while no host
is connected retries until a new host serves it.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("SPAWN_BUILD_DIR", "build")
sys.path.insert(0, os.environ.get("SPAWN_PY_PROTO_OUT", os.path.join(BUILD, "python-gen")))
sys.path.insert(0, HERE)

from spawn_client import NotFound, SpawnClient, SpawnError, Unavailable  # noqa: E402
import incrementor_pb2 as inc  # noqa: E402

KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
T = 15.0


def read_line(proc, prefix, what, timeout=15.0):
    """The first line of proc's stdout starting with prefix (earlier lines
    are dropped). A timer kills proc if it stays silent too long."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            if line.startswith(prefix):
                return line
    finally:
        timer.cancel()
    raise AssertionError("%s ended or timed out before printing %r" % (what, prefix))


class ResumeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="spawn-py-resume-")
        self.procs = []
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
            p.stdout.close()
        self.dir.cleanup()

    def gateway(self, listen):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPAWN_")}
        env["SPAWN_STATESTORE_KEY"] = KEY
        p = subprocess.Popen(
            [os.path.join(BUILD, "gateway", "spawn-gateway"), "--listen", listen,
             "--statestore", "sqlite://" + os.path.join(self.dir.name, "state.db")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.procs.append(p)
        line = read_line(p, "listening ", "gateway")
        return p, int(line.split()[2])

    def client(self):
        c = SpawnClient(self.target, timeout=T)
        self.clients.append(c)
        return c

    def add(self, c):
        return c.call("spawn-system", "incrementor", "Add", inc.Add(value=1), inc.Total).total

    def restarts_on(self, first_listen, listen_again):
        gw, port = self.gateway(first_listen)
        listen = listen_again(port)
        self.target = listen
        host = subprocess.Popen(
            [os.path.join(BUILD, "examples", "incrementor-host"), "--gateway", self.target,
             "--checkpoint"],  # the store knows the actor after a restart
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(host)
        read_line(host, "registered", "host")
        a, b = self.client(), self.client()
        with self.assertRaises(NotFound):
            a.invoke("spawn-system", "nobody-registered-this", "Get")
        total = self.add(b)
        # SPAWN_RESUME_BENCH (bench/resume.sh): the host is not stopped; the
        # time to B's first Add measures the host's own reconnect.
        bench = bool(os.environ.get("SPAWN_RESUME_BENCH"))
        for rnd in range(1, 4):
            if not bench:
                host.send_signal(signal.SIGSTOP)  # it registers again only once continued
            gw.send_signal(signal.SIGKILL)
            gw.wait(timeout=30)
            early = {}

            def call_while_down():
                with SpawnClient(self.target, timeout=T) as c:
                    try:
                        c.invoke("spawn-system", "nobody-registered-this", "Get")
                    except SpawnError as e:
                        early["error"] = e

            t = threading.Thread(target=call_while_down)
            t.start()
            gw, _ = self.gateway(listen)
            t0 = time.monotonic()
            retried = {}

            def add_before_registered():
                try:
                    retried["total"] = self.add(b)
                except SpawnError as e:
                    retried["error"] = e
                retried["done"] = time.monotonic()

            tb = threading.Thread(target=add_before_registered)
            tb.start()
            try:
                a.invoke("spawn-system", "nobody-registered-this", "Get")
                self.fail("no NOT_FOUND from an actor nobody registered")
            except NotFound:
                pass
            except SpawnError as e:
                self.fail("round %d: the first call after the restart got %r" % (rnd, e))
            t1 = time.monotonic()
            if not bench:
                with SpawnClient(self.target, timeout=T, fail_fast=True) as f:
                    with self.assertRaises(Unavailable, msg="round %d: fail-fast Add" % rnd):
                        self.add(f)
            t.join(timeout=2 * T)
            self.assertIsInstance(early.get("error"), NotFound,
                                  "round %d: a call made while the gateway was down" % rnd)
            tc = time.monotonic()
            if not bench:
                host.send_signal(signal.SIGCONT)
            tb.join(timeout=2 * T)
            self.assertNotIn("error", retried,
                             "round %d: an Add made before the host registered again" % rnd)
            self.assertEqual(retried.get("total"), total + 1)
            read_line(host, "registered", "host")
            t2 = time.monotonic()
            try:
                got = self.add(b)
            except SpawnError as e:
                self.fail("round %d: Add after the restart got %r" % (rnd, e))
            t3 = time.monotonic()
            self.assertEqual(got, total + 2)
            total = got
            if bench:
                sys.stderr.write(
                    "resume python %s round %d: listening -> first answer %.1f ms; listening"
                    " -> first Add OK %.1f ms\n" % (listen.split(":")[0], rnd, (t1 - t0) * 1e3,
                                                     (retried["done"] - t0) * 1e3))
                continue
            sys.stderr.write(
                "resume python %s round %d: listening -> first answer %.1f ms; host continued"
                " -> retried Add OK %.1f ms; host registered -> next Add OK %.1f ms\n"
                % (listen.split(":")[0], rnd, (t1 - t0) * 1e3, (retried["done"] - tc) * 1e3,
                   (t3 - t2) * 1e3))
        self.assertGreater(total, 0)

    def it_host(self, target):
        p = subprocess.Popen(
            [os.path.join(BUILD, "tests", "integration", "it-host"), "--gateway", target],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        read_line(p, "registered", "it-host")
        return p

    def test_a_lost_call_is_not_retried_an_undispatched_one_is(self):
        _, port = self.gateway("127.0.0.1:0")
        self.target = "127.0.0.1:%d" % port
        host = self.it_host(self.target)
        c = self.client()
        c.invoke("it", "counter", "Get")
        # Dispatched, then its host dies: UNAVAILABLE without the mark, not
        # retried (a retry would find no host and wait out the deadline).
        lost = {}

        def hang():
            try:
                c.invoke("it", "counter", "Hang")
            except SpawnError as e:
                lost["error"] = e

        t = threading.Thread(target=hang)
        t.start()
        read_line(host, "hanging counter", "it-host")
        host.kill()
        host.wait(timeout=30)
        t.join(timeout=2 * T)
        e = lost.get("error")
        self.assertIsInstance(e, Unavailable, "a call whose host died during it: %r" % e)
        self.assertIn("went away", e.message)
        # No host connected: never dispatched, retried until a host serves it.
        waited = {}

        def get():
            try:
                waited["ok"] = c.invoke("it", "counter", "Get")
            except SpawnError as e:
                waited["error"] = e

        t = threading.Thread(target=get)
        t.start()
        with SpawnClient(self.target, timeout=T, fail_fast=True) as f:
            with self.assertRaisesRegex(Unavailable, "no host serving"):
                f.invoke("it", "counter", "Get")
        self.it_host(self.target)
        t.join(timeout=2 * T)
        self.assertIn("ok", waited, "a call made while no host was connected: %r" % waited)

    def test_tcp(self):
        self.restarts_on("127.0.0.1:0", lambda port: "127.0.0.1:%d" % port)

    def test_unix_socket(self):
        sock = "unix:" + os.path.join(self.dir.name, "gw.sock")
        self.restarts_on(sock, lambda port: sock)


if __name__ == "__main__":
    unittest.main()
