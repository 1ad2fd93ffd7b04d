#!/usr/bin/python3
"""Credentials never reach a log line or an error message (issue 9, item 7).

The gateway is started with PostgreSQL and MariaDB store URLs that carry a
password - in the URL's userinfo and as a password= parameter - and its
stdout and stderr must never contain it:

* always: servers that cannot be reached (a closed loopback port), so the
  start-up fails with the driver's connection error;
* when tests/store/with-db.sh exported the fixture's servers
  (SPAWN_TEST_POSTGRES_URL / SPAWN_TEST_MARIADB_URL): a wrong password
  (the server's authentication error), and the right one (the gateway
  starts, its "ready" line shows the URL with ":***@", then SIGTERM), each
  in a fresh schema / database dropped afterwards.

Every process has a timeout; no sleeps."""
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

BUILD = os.environ.get("SPAWN_BUILD_DIR", "build")
GATEWAY = os.path.join(BUILD, "gateway", "spawn-gateway")
KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
SECRET = "Zq7-redact-me-9Xw"


def closed_port():
    """A loopback TCP port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_gateway(url, expect_start=False, timeout=60):
    """Runs the gateway on url; returns (exit code, stdout, stderr). With
    expect_start it waits for "listening", then stops it with SIGTERM."""
    env = dict(os.environ, SPAWN_STATESTORE_KEY=KEY)
    for k in list(env):
        if k.startswith("SPAWN_") and k not in ("SPAWN_STATESTORE_KEY", "SPAWN_BUILD_DIR"):
            del env[k]
    p = subprocess.Popen([GATEWAY, "--listen", "127.0.0.1:0", "--statestore", url],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out = []
    if expect_start:
        deadline = time.monotonic() + timeout
        for line in p.stdout:  # the gateway's own output; ends on exit
            out.append(line)
            if line.startswith("listening") or time.monotonic() > deadline:
                break
        p.terminate()
    try:
        rest, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rest, err = p.communicate()
    return p.returncode, "".join(out) + rest, err


class RedactionTest(unittest.TestCase):
    def assert_hidden(self, out, err, secret=SECRET):
        self.assertNotIn(secret, out)
        self.assertNotIn(secret, err)

    def refused(self, url):
        code, out, err = run_gateway(url)
        self.assertEqual(code, 2, err)
        self.assertIn("***", err)  # the URL is shown, redacted
        self.assert_hidden(out, err)
        return err

    def test_unreachable_postgres_in_userinfo_and_parameter(self):
        port = closed_port()
        self.refused("postgres://spawn:%s@127.0.0.1:%d/db?sslmode=disable" % (SECRET, port))
        self.refused("postgres://spawn@127.0.0.1:%d/db?password=%s&sslmode=disable"
                     % (port, SECRET))

    def test_unreachable_mariadb(self):
        port = closed_port()
        err = self.refused("mariadb://spawn:%s@127.0.0.1:%d/db" % (SECRET, port))
        self.assertIn("spawn:***@127.0.0.1", err)

    def test_a_url_of_an_unknown_scheme_or_a_bad_one(self):
        self.refused("nosuch://spawn:%s@127.0.0.1:1/db" % SECRET)
        # A password with a '/' in it is malformed: still never shown.
        self.refused("mariadb://spawn:%s/x@127.0.0.1:1/db" % SECRET)


def with_password(url, password):
    """url with its userinfo's password replaced by password."""
    u = urllib.parse.urlsplit(url)
    netloc = "%s:%s@%s" % (u.username, urllib.parse.quote(password, safe=""),
                           u.netloc.rsplit("@", 1)[1])
    return urllib.parse.urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))


PG = os.environ.get("SPAWN_TEST_POSTGRES_URL")
MY = os.environ.get("SPAWN_TEST_MARIADB_URL")


def psql(url, sql):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                   check=True, capture_output=True, text=True, timeout=60)


def mariadb(url, sql):
    u = urllib.parse.urlsplit(url)
    subprocess.run(["mariadb", "-h", u.hostname, "-P", str(u.port or 3306), "-u",
                    urllib.parse.unquote(u.username),
                    "-p" + urllib.parse.unquote(u.password or ""), "-e", sql],
                   check=True, capture_output=True, text=True, timeout=60)


@unittest.skipUnless(PG, "no PostgreSQL server (run under tests/store/with-db.sh)")
class PostgresServerTest(RedactionTest.__base__):
    def setUp(self):
        self.schema = "redact_%d_%d" % (os.getpid(), int(time.time() * 1000) % 10**9)
        psql(PG, "CREATE SCHEMA %s" % self.schema)
        sep = "&" if "?" in PG else "?"
        self.url = "%s%soptions=%s" % (PG, sep, urllib.parse.quote(
            "-csearch_path=%s" % self.schema, safe=""))

    def tearDown(self):
        psql(PG, "DROP SCHEMA %s CASCADE" % self.schema)

    def test_a_wrong_password_is_not_echoed(self):
        code, out, err = run_gateway(with_password(self.url, SECRET))
        self.assertEqual(code, 2, err)
        self.assertNotIn(SECRET, out + err)

    def test_the_ready_line_shows_the_url_without_its_password(self):
        password = urllib.parse.urlsplit(PG).password
        code, out, err = run_gateway(self.url, expect_start=True)
        self.assertEqual(code, 0, err)
        ready = [l for l in err.splitlines() if "spawn-gateway ready" in l]
        self.assertEqual(len(ready), 1, err)
        self.assertIn(":***@", ready[0])
        self.assertNotIn(":%s@" % password, out + err)


@unittest.skipUnless(MY, "no MariaDB server (run under tests/store/with-db.sh)")
class MariadbServerTest(RedactionTest.__base__):
    def setUp(self):
        self.db = "spawn_test_redact_%d_%d" % (os.getpid(), int(time.time() * 1000) % 10**9)
        mariadb(MY, "CREATE DATABASE `%s`" % self.db)
        u = urllib.parse.urlsplit(MY)
        self.url = urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + self.db, u.query, ""))

    def tearDown(self):
        mariadb(MY, "DROP DATABASE IF EXISTS `%s`" % self.db)

    def test_a_wrong_password_is_not_echoed(self):
        code, out, err = run_gateway(with_password(self.url, SECRET))
        self.assertEqual(code, 2, err)
        self.assertNotIn(SECRET, out + err)

    def test_the_ready_line_shows_the_url_without_its_password(self):
        password = urllib.parse.urlsplit(MY).password
        code, out, err = run_gateway(self.url, expect_start=True)
        self.assertEqual(code, 0, err)
        ready = [l for l in err.splitlines() if "spawn-gateway ready" in l]
        self.assertEqual(len(ready), 1, err)
        self.assertIn(":***@", ready[0])
        self.assertNotIn(":%s@" % password, out + err)


if __name__ == "__main__":
    unittest.main()
