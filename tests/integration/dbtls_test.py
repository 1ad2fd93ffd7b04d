#!/usr/bin/python3
"""The statestore over TLS (issue 10, section 1): the real gateway on private
PostgreSQL and MariaDB servers that speak only TLS over TCP and want a client
certificate (scripts/db-start.sh --tls, certificates from tests/tls/mkcerts.sh;
the ctest fixture spawn_db_tls exports their URLs through with-db.sh).

Per engine, each test in a fresh schema / database:
* verify-full with the test CA and the client certificate: the gateway starts,
  an invocation's state is saved, and the server says the gateway's sessions
  are TLS (PostgreSQL: pg_stat_ssl with the client's DN; MariaDB:
  require_secure_transport and REQUIRE X509 for the user, and the gateway's
  sessions in the process list);
* a server certificate signed by the rogue CA: the start-up fails, exit 2,
  with the TLS library's verification error;
* a server certificate of the test CA for another host name: refused under
  verify-full, accepted under verify-ca (so it is the name that failed);
* plaintext (sslmode=disable): the server refuses it;
* no client certificate: the server refuses it.
The certificate swaps are reloaded by the server (pg_ctl reload, FLUSH SSL);
a PostgreSQL reload is asynchronous, so the test waits until the server
presents the new certificate (a readiness wait, no sleep).

With CI=true every engine the build has must be there (DBTLS_ENGINES)."""
import os
import shlex
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

BUILD = os.environ.get("SPAWN_BUILD_DIR", "build")
sys.path.insert(0, os.path.join(BUILD, "python-gen"))
import grpc  # noqa: E402
from google.protobuf import any_pb2  # noqa: E402
from spawn.actors import protocol_pb2  # noqa: E402
from spawn.gateway.v1 import gateway_pb2  # noqa: E402
import incrementor_pb2  # noqa: E402

GATEWAY = os.path.join(BUILD, "gateway", "spawn-gateway")
HOST = os.path.join(BUILD, "examples", "incrementor-host")
KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
CERTS = os.environ.get("SPAWN_TEST_TLS_CERTS", "")
ENGINES = [e for e in os.environ.get("DBTLS_ENGINES", "").split(",") if e]
TIMEOUT = 60


def env_of(engine, what):
    return os.environ.get("SPAWN_TEST_%s_%s" % (engine.upper(), what))


def run(cmd, stdin=None):
    """Runs an argv list; returns stdout, raises on failure."""
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
    if r.returncode != 0:
        raise AssertionError("%s: exit %d: %s" % (cmd[0], r.returncode, r.stderr))
    return r.stdout.strip()


def with_params(url, **changes):
    """url with query parameters set (a str) or removed (None); also path=."""
    u = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    path = changes.pop("path", u.path)
    q = [(k, v) for k, v in q if k not in changes]
    q += [(k, v) for k, v in changes.items() if v is not None]
    query = "&".join("%s=%s" % (k, urllib.parse.quote(v, safe="/-")) for k, v in q)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, path, query, u.fragment))


def mint(dir, name, ca, san):
    """A server certificate NAME.pem/NAME.key for san, signed by ca (a
    mkcerts.sh CA: ca or rogue-ca)."""
    key, csr, ext = (os.path.join(dir, name + s) for s in (".key", ".csr", ".ext"))
    pem = os.path.join(dir, name + ".pem")
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key])
    os.chmod(key, 0o600)
    run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=" + name, "-out", csr])
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=critical,CA:FALSE\n" % san)
    run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(CERTS, ca + ".pem"),
         "-CAkey", os.path.join(CERTS, ca + ".key"), "-set_serial",
         str(int.from_bytes(os.urandom(8), "big")), "-days", "2", "-sha256", "-extfile", ext,
         "-out", pem])
    return pem, key


def pem_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def pg_served_cert(port):
    """The DER certificate PostgreSQL presents (SSLRequest, then a handshake
    that checks nothing: this only looks)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack("!II", 8, 80877103))
        if s.recv(1) != b"S":
            raise AssertionError("the server declined TLS")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


def read_line(proc, prefix, what):
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
    raise AssertionError("%s exited before printing %r" % (what, prefix))


def gateway_env():
    env = dict(os.environ, SPAWN_STATESTORE_KEY=KEY)
    for k in list(env):
        if k.startswith("SPAWN_") and k not in ("SPAWN_STATESTORE_KEY", "SPAWN_BUILD_DIR"):
            del env[k]
    return env


def start_fails(url):
    """Starts the gateway on url, expecting the start-up to fail: returns
    its stderr after asserting exit code 2 and no "listening" line."""
    p = subprocess.run([GATEWAY, "--listen", "127.0.0.1:0", "--statestore", url],
                       capture_output=True, text=True, env=gateway_env(), timeout=TIMEOUT)
    if p.returncode != 2 or "listening" in p.stdout:
        raise AssertionError("expected exit 2 at start-up, got %d: %s%s"
                             % (p.returncode, p.stdout, p.stderr))
    return p.stderr


class Gateway:
    """A running gateway on url (waits for "listening"); stop() = SIGTERM."""

    def __init__(self, url, host=False):
        self.gw = subprocess.Popen(
            [GATEWAY, "--listen", "127.0.0.1:0", "--statestore", url, "--host-timeout", "5000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=gateway_env())
        self.host = None
        try:
            self.port = int(read_line(self.gw, "listening", "gateway").split()[2])
            if host:
                self.host = subprocess.Popen(
                    [HOST, "--gateway", "127.0.0.1:%d" % self.port],
                    stdout=subprocess.PIPE, text=True)
                read_line(self.host, "registered", "host")
        except BaseException:
            self.stop(check=False)
            raise

    def stop(self, check=True):
        for p in (self.host, self.gw):
            if p is None:
                continue
            p.terminate()
            try:
                code = p.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                code = p.wait()
            err = p.stderr.read() if p.stderr else ""
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
            if check and code != 0:
                raise AssertionError("exit %d: %s" % (code, err))


class DbTls:
    """The tests, once per engine (subclasses set ENGINE)."""
    ENGINE = None

    @classmethod
    def setUpClass(cls):
        cls.server_url = env_of(cls.ENGINE, "URL")
        if not cls.server_url:
            if cls.ENGINE in ENGINES and os.environ.get("CI") == "true":
                raise AssertionError("CI=true and no %s TLS server" % cls.ENGINE)
            raise unittest.SkipTest("no %s server" % cls.ENGINE)
        if not CERTS:
            raise AssertionError("SPAWN_TEST_TLS_CERTS is not set")
        cls.admin = shlex.split(env_of(cls.ENGINE, "ADMIN"))
        cls.tls_cert = env_of(cls.ENGINE, "TLS_CERT")
        cls.tls_key = env_of(cls.ENGINE, "TLS_KEY")
        cls.reload_cmd = shlex.split(env_of(cls.ENGINE, "TLS_RELOAD"))
        cls.port = urllib.parse.urlsplit(cls.server_url).port
        cls.tmp = tempfile.TemporaryDirectory()
        cls.rogue = mint(cls.tmp.name, "rogue-db", "rogue-ca", "DNS:localhost,IP:127.0.0.1")
        cls.other = mint(cls.tmp.name, "elsewhere-db", "ca", "DNS:elsewhere.example")
        cls.good = mint(cls.tmp.name, "good-db", "ca", "DNS:localhost,IP:127.0.0.1")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    # ---- the server's certificate ----------------------------------------------

    def serve(self, pem_key):
        """Makes the server present pem_key (a (cert, key) pair) to new
        connections; returns once it does."""
        pem, key = pem_key
        st = os.stat(self.tls_key)
        for src, dst in ((pem, self.tls_cert), (key, self.tls_key)):
            with open(src, "rb") as f:
                data = f.read()
            with open(dst, "wb") as f:
                f.write(data)
            os.chown(dst, st.st_uid, st.st_gid)
            os.chmod(dst, 0o600)
        run(self.reload_cmd)
        self.wait_served(pem)

    def wait_served(self, pem):
        pass  # FLUSH SSL is synchronous; PostgreSQL overrides this

    def swap(self, pem_key):
        """serve(pem_key) for this test; the test CA's localhost certificate
        again afterwards."""
        self.addCleanup(self.serve, self.good)
        self.serve(pem_key)

    # ---- the tests -------------------------------------------------------------

    def test_verify_full_with_the_test_ca_persists_over_tls(self):
        g = Gateway(self.url, host=True)
        try:
            ch = grpc.insecure_channel("127.0.0.1:%d" % g.port)
            ser = lambda m: m.SerializeToString()  # noqa: E731
            invoke = ch.unary_unary("/spawn.gateway.v1.ActorGateway/Invoke",
                                    request_serializer=ser,
                                    response_deserializer=protocol_pb2.InvocationResponse.FromString)
            get_state = ch.unary_unary("/spawn.gateway.v1.Admin/GetState",
                                       request_serializer=ser,
                                       response_deserializer=gateway_pb2.ActorStateView.FromString)
            req = protocol_pb2.InvocationRequest(action_name="Add")
            req.system.name = "spawn-system"
            req.actor.id.name = "incrementor"
            a = any_pb2.Any()
            a.Pack(incrementor_pb2.Add(value=41))
            req.value.CopyFrom(a)
            self.assertEqual(invoke(req, timeout=20).status.status, protocol_pb2.OK)
            r = gateway_pb2.GetStateRequest()
            r.actor.system, r.actor.actor = "spawn-system", "incrementor"
            st = incrementor_pb2.State()
            get_state(r, timeout=20).state.Unpack(st)
            self.assertEqual(st.total, 41)
            ch.close()
            self.assert_gateway_sessions_are_tls()
        finally:
            g.stop()
        # SIGTERM saved the state: the row is in the server's tables.
        self.assertEqual(self.saved_rows("incrementor"), 1)

    def test_a_server_certificate_of_the_rogue_ca_is_refused(self):
        self.swap(self.rogue)
        err = start_fails(self.url)
        self.assertIn("cannot connect to %s" % self.ENGINE, err)
        self.assertRegex(err, self.UNTRUSTED)

    def test_a_host_name_mismatch_is_refused_under_verify_full(self):
        self.swap(self.other)
        err = start_fails(self.url)
        self.assertIn("cannot connect to %s" % self.ENGINE, err)
        self.assertRegex(err, self.MISMATCH)
        # The chain is good: verify-ca takes it, so it was the name.
        Gateway(with_params(self.url, sslmode="verify-ca")).stop()

    def test_plaintext_is_refused_by_the_server(self):
        url = with_params(self.url, sslmode="disable", sslrootcert=None, sslcert=None,
                          sslkey=None)
        err = start_fails(url)
        self.assertRegex(err, self.PLAINTEXT)

    def test_no_client_certificate_is_refused_by_the_server(self):
        err = start_fails(with_params(self.url, sslcert=None, sslkey=None))
        self.assertRegex(err, self.NO_CLIENT_CERT)


class PostgresTest(DbTls, unittest.TestCase):
    ENGINE = "postgres"
    UNTRUSTED = r"SSL error: certificate verify failed"
    MISMATCH = r'server certificate for "elsewhere\.example" .*does not match host name ' \
               r'"127\.0\.0\.1"'
    PLAINTEXT = r'pg_hba\.conf rejects connection .* no encryption'
    NO_CLIENT_CERT = r"connection requires a valid client certificate"

    def setUp(self):
        self.schema = "dbtls_%d_%d" % (os.getpid(), int(time.time() * 1000) % 10**9)
        self.psql("CREATE SCHEMA %s AUTHORIZATION spawn" % self.schema)
        self.addCleanup(self.psql, "DROP SCHEMA %s CASCADE" % self.schema)
        self.url = with_params(self.server_url, options="-csearch_path=%s" % self.schema)

    def psql(self, sql):
        return run(self.admin + ["-d", "spawn_test", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])

    def wait_served(self, pem):
        want, end = pem_der(pem), time.monotonic() + TIMEOUT
        while pg_served_cert(self.port) != want:  # the reload is asynchronous
            if time.monotonic() > end:
                self.fail("the server never presented %s" % pem)
            time.sleep(0.02)

    def assert_gateway_sessions_are_tls(self):
        rows = self.psql("SELECT s.ssl, s.version, s.client_dn FROM pg_stat_ssl s "
                         "JOIN pg_stat_activity a USING (pid) "
                         "WHERE a.application_name = 'spawn-gateway'").splitlines()
        self.assertGreater(len(rows), 0)
        for row in rows:
            ssl_on, version, dn = row.split("|")
            self.assertEqual(ssl_on, "t")
            self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
            self.assertEqual(dn, "/CN=client")

    def saved_rows(self, name):
        return int(self.psql("SELECT count(*) FROM %s.spawn_actor_state WHERE name = '%s'"
                             % (self.schema, name)))


class MariadbTest(DbTls, unittest.TestCase):
    ENGINE = "mariadb"
    UNTRUSTED = r"TLS/SSL error: unable to get local issuer certificate \(2026\)"
    MISMATCH = r"TLS/SSL error: Validation of SSL server certificate failed \(2026\)"
    # require_secure_transport (and REQUIRE X509) answer "access denied"
    # (the user name is "spawn", like the password: redacted).
    PLAINTEXT = r"Access denied for user '\*\*\*'@'127\.0\.0\.1' \(using password: YES\) " \
                r"\(1045\)"
    NO_CLIENT_CERT = PLAINTEXT

    def setUp(self):
        self.db = "spawn_test_dbtls_%d_%d" % (os.getpid(), int(time.time() * 1000) % 10**9)
        self.sql("CREATE DATABASE %s" % self.db)
        self.addCleanup(self.sql, "DROP DATABASE %s" % self.db)
        self.url = with_params(self.server_url, path="/" + self.db)

    def sql(self, sql):
        return run(self.admin + ["-N", "-B", "-e", sql])

    def assert_gateway_sessions_are_tls(self):
        # The server takes TCP clients only over TLS, and this user only
        # with a certificate of its CA: the gateway's sessions are both.
        self.assertEqual(self.sql("SELECT @@require_secure_transport"), "1")
        self.assertEqual(self.sql("SELECT DISTINCT ssl_type FROM mysql.user "
                                  "WHERE user = 'spawn'"), "X509")
        n = int(self.sql("SELECT COUNT(*) FROM information_schema.processlist "
                         "WHERE user = 'spawn' AND host LIKE '127.0.0.1:%%' "
                         "AND db = '%s'" % self.db))
        self.assertGreater(n, 0)

    def saved_rows(self, name):
        return int(self.sql("SELECT COUNT(*) FROM %s.spawn_actor_state WHERE name = '%s'"
                            % (self.db, name)))

    def test_mysql_option_names_work_and_unknown_ones_are_refused(self):
        u = with_params(self.url, sslmode=None, sslrootcert=None, sslcert=None, sslkey=None)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.url).query))
        Gateway(with_params(u, **{"ssl-mode": "verify-full", "ssl-ca": q["sslrootcert"],
                                  "ssl-cert": q["sslcert"], "ssl-key": q["sslkey"]})).stop()
        err = start_fails(with_params(self.url, **{"ssl-capath": "/etc/ssl/certs"}))
        self.assertIn("unknown parameter 'ssl-capath'", err)


if __name__ == "__main__":
    unittest.main()
