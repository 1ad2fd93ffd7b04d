#!/usr/bin/python3
"""Readiness follows the statestore (docs/operations.md, "Health"): a
gateway on the PostgreSQL server of the ctest fixture spawn_db
(SPAWN_TEST_POSTGRES_URL, tests/store/with-db.sh), reached through a TCP
proxy of this test, in a schema of its own. The proxy is cut (every
connection closed, new ones refused at once): /readyz turns 503 naming the
statestore, spawn_store_up 0 and grpc.health.v1 NOT_SERVING (one condition
behind both), while /healthz stays 200; healed, all ready again. Fails
(never skips) without the server.

Readiness waits: the gateway's listening lines and polling with deadlines."""
import os
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import mgw
from mgw import value

import grpc  # noqa: E402


def grpc_health(addr):
    """grpc.health.v1.Health/Check for service "": 1 SERVING, 2 NOT_SERVING
    (the response's field 1, read from its bytes: no generated module)."""
    with grpc.insecure_channel(addr) as ch:
        r = ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10)
    return r[1] if len(r) == 2 and r[0] == 0x08 else 0


def psql(url, sql):
    return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url,
                           "-c", sql], check=True, capture_output=True, text=True).stdout


class Proxy:
    """A TCP proxy to (host, port) on an ephemeral loopback port."""

    def __init__(self, host, port):
        self.up = (host, port)
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []
        self.cut_now = False
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                if self.cut_now or self.closed:
                    c.close()
                    continue
                try:
                    u = socket.create_connection(self.up, timeout=5)
                except OSError:
                    c.close()
                    continue
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.cut_now = True
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.conns = []

    def heal(self):
        with self.lock:
            self.cut_now = False

    def close(self):
        self.cut()
        self.closed = True
        self.ls.close()


def schema_urls(test, prefix):
    """A schema of its own on the fixture's PostgreSQL (dropped at the
    test's cleanup): (its URL, its URL through a Proxy the test may cut,
    the proxy)."""
    server = os.environ.get("SPAWN_TEST_POSTGRES_URL")
    test.assertTrue(server, "SPAWN_TEST_POSTGRES_URL is not set: run through with-db.sh")
    u = urllib.parse.urlsplit(server)
    schema = "%s_%d_%d" % (prefix, os.getpid(), int(time.time() * 1000) % 10**9)
    psql(server, "CREATE SCHEMA %s" % schema)
    test.addCleanup(psql, server, "DROP SCHEMA %s CASCADE" % schema)
    proxy = Proxy(u.hostname, u.port)
    test.addCleanup(proxy.close)
    q = u.query + ("&" if u.query else "") + "options=" + urllib.parse.quote(
        "-csearch_path=%s" % schema, safe="")
    direct = urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, q, ""))
    netloc = "%s@127.0.0.1:%d" % (u.netloc.rsplit("@", 1)[0], proxy.port)
    return direct, urllib.parse.urlunsplit((u.scheme, netloc, u.path, q, "")), proxy


class StoreReadyTest(unittest.TestCase):
    def proxied(self):
        """A schema of its own on the fixture's PostgreSQL, reached through
        a proxy the test cuts: (url, proxy); both cleaned up."""
        return schema_urls(self, "mready")[1:]

    def test_grpc_health_follows_the_statestore_without_http(self):
        """No --http: the gRPC health service alone still follows the store."""
        url, proxy = self.proxied()
        with tempfile.TemporaryDirectory() as d:
            gw = mgw.Gateway(d, ["--statestore", url], http=False)
            try:
                mgw.wait_until(lambda: grpc_health(gw.addr) == 1, "SERVING")
                proxy.cut()
                mgw.wait_until(lambda: grpc_health(gw.addr) == 2,
                               "NOT_SERVING with the statestore cut off", 30)
                proxy.heal()
                mgw.wait_until(lambda: grpc_health(gw.addr) == 1,
                               "SERVING again once the statestore is back", 60)
            finally:
                proxy.heal()
                self.assertEqual(gw.stop(60), 0)

    def test_readiness_follows_the_statestore(self):
        url, proxy = self.proxied()
        with tempfile.TemporaryDirectory() as d:
            gw = mgw.Gateway(d, ["--statestore", url])
            try:
                mgw.wait_until(lambda: gw.get("/readyz")[0] == 200, "ready")
                self.assertEqual(value(mgw.parse(gw.metrics()), "spawn_store_up"), 1)
                self.assertEqual(grpc_health(gw.addr), 1)
                proxy.cut()
                st, body = mgw.wait_until(
                    lambda: (lambda r: r if r[0] == 503 else None)(gw.get("/readyz")),
                    "/readyz 503 with the statestore cut off", 30)
                self.assertIn(b"statestore", body)
                self.assertEqual(gw.get("/healthz")[0], 200)
                # The gRPC health service agrees (one condition behind both).
                self.assertEqual(grpc_health(gw.addr), 2)
                s = mgw.parse(gw.metrics())
                self.assertEqual(value(s, "spawn_store_up"), 0)
                self.assertEqual(value(s, "spawn_ready"), 0)
                proxy.heal()
                mgw.wait_until(lambda: gw.get("/readyz")[0] == 200,
                               "ready again once the statestore is back", 60)
                self.assertEqual(value(mgw.parse(gw.metrics()), "spawn_store_up"), 1)
                self.assertEqual(grpc_health(gw.addr), 1)
            finally:
                proxy.heal()
                self.assertEqual(gw.stop(60), 0)


if __name__ == "__main__":
    unittest.main()
