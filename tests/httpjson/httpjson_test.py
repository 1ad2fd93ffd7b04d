#!/usr/bin/python3
"""httpjson_test.py - HTTP/JSON transcoding (issue 12 §2; docs/http-json.md),
driven with real curl against a real gateway and real hosts:

  - annotated routes: tests/httpjson/counters.proto describes the
    hand-written examples/incrementor host (actor "incrementor", UNNAMED)
    with google.api.http rules (POST with body "*", GET with a query
    parameter, PUT with body "value"), loaded with --descriptors;
  - the generic route POST /v1/{system}/{actor}/{action}: an instance by
    ?parent=, the same instance by name, a NAMED actor of another system,
    and an actor no contract describes (a JSON google.protobuf.Any);
  - every error shape: {"code": <gRPC code>, "message"} with the HTTP
    status of the gRPC-to-HTTP table, for hostile input (bad JSON,
    unknown fields, deep nesting, invalid UTF-8 in the path, an oversized
    body, an unknown system/actor/action, a type not in the pool, a bad
    query parameter, a wrong Content-Type, a wrong method), after which the
    gateway keeps serving;
  - --access: the JSON routes need a bearer token (none 401, wrong system
    403, good 200) over HTTPS (--tls-cert/--tls-key, a CA the test makes),
    Spawn's HTTP API answers 403, health stays open; a non-loopback --http
    with --access but without TLS is refused at start-up;
  - a contract whose google.api.http rule does not parse is refused whole.

Real processes on loopback, ephemeral ports; readiness from the processes'
own lines (never a sleep). SQLite statestores: no database server.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

BUILD = os.environ["SPAWN_BUILD_DIR"]
SRC = os.environ["SPAWN_SOURCE_DIR"]
HERE = os.path.join(SRC, "tests", "httpjson")
GW = os.path.join(BUILD, "gateway", "spawn-gateway")
HOST = os.path.join(BUILD, "examples", "incrementor-host")
GEN_HOST = os.path.join(BUILD, "examples", "incrementor-gen", "incrementor-gen-host")
PROTO = os.path.join(SRC, "proto")
WAIT = 30  # seconds for a process to say it is ready

TMP = None


def setUpModule():
    global TMP
    for tool in (GW, HOST, GEN_HOST):
        if not os.access(tool, os.X_OK):
            raise AssertionError(f"{tool} is missing (the build)")
    for tool in ("curl", "protoc", "openssl"):
        if not shutil.which(tool):
            raise AssertionError(f"{tool} is missing (scripts/install-deps.sh)")
    TMP = tempfile.mkdtemp(prefix="spawn-httpjson-")
    os.makedirs(f"{TMP}/desc")
    os.makedirs(f"{TMP}/plain")
    os.makedirs(f"{TMP}/none")
    for d, inc, proto in ((f"{TMP}/desc/counters.pb", HERE, "counters.proto"),
                          (f"{TMP}/plain/incrementor.pb",
                           os.path.join(SRC, "examples", "incrementor"), "incrementor.proto")):
        r = subprocess.run(["protoc", f"-I{PROTO}", "-I/usr/include", f"-I{inc}",
                            "--include_imports", f"--descriptor_set_out={d}", proto],
                           capture_output=True, text=True)
        if r.returncode:
            raise AssertionError(f"protoc: {r.stderr}")
    r = subprocess.run(["bash", os.path.join(SRC, "tests", "tls", "mkcerts.sh"), f"{TMP}/pki"],
                       capture_output=True, text=True)
    if r.returncode:
        raise AssertionError(f"mkcerts.sh: {r.stderr}")


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


class Proc:
    """A process whose stdout lines are collected on a thread (readiness)."""

    def __init__(self, argv, log, env=None):
        self.lines = []
        self.err_lines = []  # stderr, also copied to log
        self.cv = threading.Condition()
        self.log = open(log, "a")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env)
        threading.Thread(target=self._read, args=(self.p.stdout, self.lines),
                         daemon=True).start()
        self.t_err = threading.Thread(target=self._read, args=(self.p.stderr, self.err_lines),
                                      daemon=True)
        self.t_err.start()

    def _read(self, stream, into):
        for line in stream:
            with self.cv:
                if into is self.err_lines:
                    self.log.write(line)
                    self.log.flush()
                into.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            into.append(None)  # EOF
            self.cv.notify_all()

    def wait_line(self, pattern, err=False):
        rx = re.compile(pattern)
        lines = self.err_lines if err else self.lines
        with self.cv:
            ok = self.cv.wait_for(
                lambda: any(l is None or rx.search(l) for l in lines), timeout=WAIT)
            for l in lines:
                if l is not None and rx.search(l):
                    return l
        raise AssertionError(f"no line /{pattern}/ (ok={ok}): {lines}")

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.t_err.join(timeout=WAIT)
        with self.cv:
            self.log.close()


class Gateway(Proc):
    def __init__(self, name, *extra, desc="desc"):
        d = os.path.join(TMP, name)
        os.makedirs(d, exist_ok=True)
        self.dir = d
        super().__init__([GW, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                          "--statestore", f"sqlite://{d}/state.db",
                          "--descriptors", f"{TMP}/{desc}", *extra], os.path.join(d, "gw.log"))
        self.port = int(self.wait_line(r"^listening 127").split()[2])
        line = self.wait_line(r"^listening https?://")
        self.scheme = line.split()[1].split(":")[0]
        self.http = int(line.split()[2])
        self.base = f"{self.scheme}://127.0.0.1:{self.http}"

    def stop(self):
        super().stop()
        if self.p.returncode != 0:
            raise AssertionError(f"the gateway exited {self.p.returncode} on SIGTERM: "
                                 + "\n".join(l for l in self.err_lines[-20:] if l))

    def host(self, *args, env=None, exe=HOST):
        h = Proc([exe, "--gateway", f"127.0.0.1:{self.port}", *args],
                 os.path.join(self.dir, "host.log"), env=env)
        h.wait_line(r"^registered")
        return h


def curl(url, method="GET", body=None, headers=(), ctype="application/json", cacert=None):
    """(HTTP status, decoded JSON body or the raw text) of one curl call."""
    argv = ["curl", "-sS", "-X", method, "-w", "\n%{http_code}", "--max-time", "30"]
    if cacert:
        argv += ["--cacert", cacert]
    if body is not None:
        argv += ["--data-binary", "@-"]
        if ctype:
            argv += ["-H", f"Content-Type: {ctype}"]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    r = subprocess.run(argv, input=body.encode() if isinstance(body, str) else body,
                       capture_output=True, timeout=60)
    if r.returncode:
        raise AssertionError(f"curl {url}: {r.stderr.decode()}")
    text, _, code = r.stdout.decode("utf-8", "replace").rpartition("\n")
    try:
        return int(code), json.loads(text)
    except ValueError:
        return int(code), text


class Routes(unittest.TestCase):
    """One gateway with an UNNAMED incrementor host (system spawn-system)."""

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway("routes", "--http-max-body", "4096")
        cls.h = cls.gw.host("--unnamed")

    @classmethod
    def tearDownClass(cls):
        cls.h.stop()
        cls.gw.stop()

    def call(self, path, method="POST", body=None, **kw):
        return curl(self.gw.base + path, method, body, **kw)

    def test_annotated_post_get_and_put(self):
        self.assertEqual(self.call("/v1/counters/ann:add", body='{"value": 5}'),
                         (200, {"total": "5"}))
        # GET: the path variable names the instance, the query sets a field.
        self.assertEqual(self.call("/v1/counters/ann?value=3", "GET"), (200, {"total": "8"}))
        self.assertEqual(self.call("/v1/counters/ann", "GET"), (200, {"total": "8"}))
        # PUT with body "value": the body is that field's JSON.
        self.assertEqual(self.call("/v1/counters/ann/value", "PUT", "10"),
                         (200, {"total": "18"}))
        # curl -d's default Content-Type is read as JSON too.
        self.assertEqual(self.call("/v1/counters/ann:add", body='{"value": 1}',
                                   ctype="application/x-www-form-urlencoded"),
                         (200, {"total": "19"}))

    def test_generic_route_by_parent_then_by_name(self):
        self.assertEqual(self.call("/v1/spawn-system/gen/Add?parent=incrementor",
                                   body='{"value": 7}'), (200, {"total": "7"}))
        self.assertEqual(self.call("/v1/spawn-system/gen/Add", body='{"value": 2}'),
                         (200, {"total": "9"}))
        # The annotated route reaches the same instance.
        self.assertEqual(self.call("/v1/counters/gen", "GET"), (200, {"total": "9"}))
        # No body is the empty message.
        self.assertEqual(self.call("/v1/spawn-system/gen/Add", body=""), (200, {"total": "9"}))

    def test_an_action_no_contract_describes_takes_an_any(self):
        st, js = self.call("/v1/spawn-system/anyone/Add?parent=incrementor", body='{"value": 1}')
        self.assertEqual((st, js), (200, {"total": "1"}))
        # Sub is in no contract: the body is an Any; the host has no Sub.
        st, js = self.call("/v1/spawn-system/anyone/Sub", body=json.dumps(
            {"@type": "type.googleapis.com/examples.incrementor.Add", "value": 1}))
        self.assertEqual((st, js["code"]), (404, 5), js)
        self.assertIn("Sub", js["message"])

    def test_every_error_shape_and_the_gateway_serves_on(self):
        cases = [
            # (what, path, method, body, kwargs, HTTP status, gRPC code, message part)
            ("bad JSON", "/v1/spawn-system/e1/Add?parent=incrementor", "POST",
             '{"value": ', {}, 400, 3, ""),
            ("unknown field", "/v1/spawn-system/e1/Add?parent=incrementor", "POST",
             '{"value": 1, "bogus": 2}', {}, 400, 3, "bogus"),
            ("deep nesting", "/v1/spawn-system/e1/Add?parent=incrementor", "POST",
             "[" * 200 + "]" * 200, {}, 400, 3, "deeper"),
            ("a type not in the pool", "/v1/spawn-system/e1/Other?parent=incrementor", "POST",
             '{"@type": "type.googleapis.com/x.Unknown"}', {}, 400, 3, "x.Unknown"),
            ("unknown system", "/v1/nosuch/e1/Add", "POST", '{}', {}, 404, 5, "not found"),
            ("unknown actor", "/v1/spawn-system/nobody/Add", "POST", '{}', {}, 404, 5,
             "not found"),
            ("unknown action, no contract", "/v1/spawn-system/e1/Nope?parent=incrementor", "POST",
             '{"value": 1}', {}, 400, 3, "no registered contract describes"),
            ("oversized body", "/v1/spawn-system/e1/Add?parent=incrementor", "POST",
             '{"value": 1, "counter": "' + "x" * 8000 + '"}', {}, 413, 8, ""),
            ("not JSON", "/v1/spawn-system/e1/Add?parent=incrementor", "POST", "\x08\x01",
             {"ctype": "application/protobuf"}, 415, 3, "JSON"),
            ("bad query parameter", "/v1/counters/ann?bogus=1", "GET", None, {}, 400, 3,
             "bogus"),
            ("query value of the wrong type", "/v1/counters/ann?value=abc", "GET", None, {},
             400, 3, "int64"),
            ("wrong method", "/v1/counters/ann", "DELETE", None, {}, 405, 12, ""),
            ("no route", "/nothing/here", "GET", None, {}, 404, 5, "no route"),
            ("a body on a GET route", "/v1/counters/ann", "GET", '{"value": 1}', {}, 400, 3,
             "no body"),
            ("an over-long name", "/v1/spawn-system/" + "n" * 300 + "/Add", "POST", "{}", {},
             400, 3, "bytes"),
            ("the host's own error", "/v1/spawn-system/big/Add?parent=incrementor", "POST",
             '{"value": "9223372036854775807"}', {}, 200, None, ""),
            ("the host's own error", "/v1/spawn-system/big/Add", "POST", '{"value": 1}', {},
             400, 11, "overflow"),
        ]
        for what, path, method, body, kw, status, code, part in cases:
            with self.subTest(what=what):
                st, js = self.call(path, method, body, **kw)
                self.assertEqual(st, status, (what, js))
                if code is not None:
                    self.assertEqual(set(js), {"code", "message"}, js)
                    self.assertEqual(js["code"], code, js)
                    self.assertIn(part, js["message"])
        # Invalid UTF-8 and control characters in the path (curl sends the
        # escapes; the listener decodes them).
        for bad in ("c%ff", "c%c3%28", "c%01"):
            with self.subTest(path=bad):
                st, js = self.call(f"/v1/spawn-system/{bad}/Add?parent=incrementor", body="{}")
                self.assertEqual((st, js["code"]), (400, 3), js)
        # Still serving.
        self.assertEqual(self.call("/v1/spawn-system/after/Add?parent=incrementor",
                                   body='{"value": 4}'), (200, {"total": "4"}))


def curl_raw(url):
    """(HTTP status, body bytes) of a GET."""
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "-w", "%{http_code}", url],
                       capture_output=True, timeout=60)
    if r.returncode:
        raise AssertionError(f"curl {url}: {r.stderr.decode()}")
    return int(r.stdout[-3:]), r.stdout[:-3]


class SpawnRead(unittest.TestCase):
    def test_spawns_state_read_route(self):
        from google.protobuf import any_pb2
        gw = Gateway("read")
        h = gw.host("--unnamed")
        try:
            self.assertEqual(curl(gw.base + "/v1/counters/r1:add", "POST", '{"value": 300}'),
                             (200, {"total": "300"}))
            st, body = curl_raw(gw.base + "/api/v1/system/spawn-system/actors/r1")
            self.assertEqual(st, 200, body)
            a = any_pb2.Any()
            a.ParseFromString(body)
            self.assertEqual(a.type_url, "type.googleapis.com/examples.incrementor.State")
            self.assertEqual(a.value, b"\x08\xac\x02")  # total = 300
            st, body = curl_raw(gw.base + "/api/v1/system/spawn-system/actors/none")
            self.assertEqual(st, 404, body)
            st, body = curl_raw(gw.base + "/api/v1/system/spawn-system/actors/%ff")
            self.assertEqual(st, 400, body)
            st, body = curl_raw(gw.base + "/api/v1/system/spawn-system/actors/r1?revision=x")
            self.assertEqual(st, 400, body)
        finally:
            h.stop()
            gw.stop()


class NamedAndAmbiguous(unittest.TestCase):
    def test_named_actor_by_system_and_an_ambiguous_annotated_route(self):
        gw = Gateway("named")
        h1 = gw.host("--unnamed")
        try:
            self.assertEqual(curl(gw.base + "/v1/counters/x:add", "POST", '{"value": 2}'),
                             (200, {"total": "2"}))
            # A NAMED "incrementor" in another system: the generic route
            # names the system; the annotated one no longer knows which.
            h2 = gw.host("--system", "named")
            try:
                self.assertEqual(curl(gw.base + "/v1/named/incrementor/Add", "POST",
                                      '{"value": 3}'), (200, {"total": "3"}))
                self.assertEqual(curl(gw.base + "/v1/named/incrementor/Add", "POST",
                                      '{"value": 3}'), (200, {"total": "6"}))
                st, js = curl(gw.base + "/v1/counters/x:add", "POST", '{"value": 2}')
                self.assertEqual((st, js["code"]), (400, 9), js)
                self.assertIn("systems", js["message"])
            finally:
                h2.stop()
        finally:
            h1.stop()
            gw.stop()


class HostContracts(unittest.TestCase):
    def test_a_contract_sent_by_a_host_is_served_as_json(self):
        # The generated C host sends its contract (examples/incrementor-gen)
        # with its registration: the JSON pool follows it.
        gw = Gateway("hostcontract", desc="none")
        try:
            st, js = curl(gw.base + "/v1/spawn-system/Incrementor/Add", "POST", '{"value": 2}')
            self.assertEqual((st, js["code"]), (404, 5), js)  # nobody registered it yet
            h = gw.host(exe=GEN_HOST)
            try:
                gw.wait_line(r"contracts registered", err=True)
                self.assertEqual(curl(gw.base + "/v1/spawn-system/Incrementor/Add", "POST",
                                      '{"value": 2}'), (200, {"total": "2"}))
                self.assertEqual(curl(gw.base + "/v1/spawn-system/Incrementor/Add", "POST",
                                      '{"value": 3}'), (200, {"total": "5"}))
            finally:
                h.stop()
        finally:
            gw.stop()


class NoContract(unittest.TestCase):
    def test_actors_without_a_contract_speak_any_json(self):
        # The messages are known (--descriptors without the actor option),
        # no service describes the actor: requests and replies are Anys.
        gw = Gateway("nocontract", desc="plain")
        h = gw.host()
        try:
            body = json.dumps({"@type": "type.googleapis.com/examples.incrementor.Add",
                               "value": 2})
            self.assertEqual(curl(gw.base + "/v1/spawn-system/incrementor/Add", "POST", body),
                             (200, {"@type": "type.googleapis.com/examples.incrementor.Total",
                                    "total": "2"}))
            st, js = curl(gw.base + "/v1/spawn-system/incrementor/Add", "POST",
                          '{"value": 2}')
            self.assertEqual((st, js["code"]), (400, 3), js)
            self.assertIn("@type", js["message"])
        finally:
            h.stop()
            gw.stop()


def cert_serial(path):
    r = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", path],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def served_serial(port):
    """The serial of the certificate a new TLS connection to port gets."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-servername", "localhost"], input="", capture_output=True, text=True,
                       timeout=30)
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", r.stdout, re.S)
    if not m:
        raise AssertionError(f"no certificate from 127.0.0.1:{port}: {r.stderr}")
    x = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=m.group(0),
                       capture_output=True, text=True, check=True)
    return x.stdout.strip()


def token_hash(tok):
    return "sha256:" + hashlib.sha256(tok.encode()).hexdigest()


class Access(unittest.TestCase):
    def test_bearer_tokens_over_https_and_spawns_api_refused(self):
        toks = {n: os.urandom(12).hex() for n in ("host", "alice", "bob")}
        policy = os.path.join(TMP, "access.yaml")
        with open(policy, "w") as f:
            f.write(f"""principals:
  - name: host
    tokens: [{token_hash(toks["host"])}]
    host: [spawn-system]
  - name: alice
    tokens: [{token_hash(toks["alice"])}]
    invoke:
      - system: spawn-system
  - name: bob
    tokens: [{token_hash(toks["bob"])}]
    invoke:
      - system: other
""")
        pki = f"{TMP}/pki"
        # The gateway's files, replaced by a renewal below.
        live = os.path.join(TMP, "live")
        os.makedirs(live, exist_ok=True)
        shutil.copy(f"{pki}/server.pem", f"{live}/cert.pem")
        shutil.copy(f"{pki}/server.key", f"{live}/key.pem")
        gw = Gateway("access", "--access", policy, "--tls-cert", f"{live}/cert.pem",
                     "--tls-key", f"{live}/key.pem")
        self.assertEqual(gw.scheme, "https")
        env = dict(os.environ, SPAWN_TOKEN=toks["host"], SPAWN_TLS_CA=f"{pki}/ca.pem")
        h = gw.host("--unnamed", env=env)
        ca = f"{pki}/ca.pem"
        url = gw.base + "/v1/spawn-system/a1/Add?parent=incrementor"
        try:
            st, js = curl(url, "POST", '{"value": 1}', cacert=ca)
            self.assertEqual((st, js["code"]), (401, 16), js)
            # Without a credential nothing is looked up: no 404 for probes.
            for path in ("/v1/spawn-system/nobody/Add", "/v1/nosuch/x/y", "/no/route"):
                st, js = curl(gw.base + path, "POST", "{}", cacert=ca)
                self.assertEqual((st, js["code"]), (401, 16), (path, js))
            st, js = curl(url, "POST", '{"value": 1}', cacert=ca,
                          headers=["Authorization: Bearer not-a-token"])
            self.assertEqual((st, js["code"]), (401, 16), js)
            st, js = curl(url, "POST", '{"value": 1}', cacert=ca,
                          headers=[f"Authorization: Bearer {toks['bob']}"])
            self.assertEqual((st, js["code"]), (403, 7), js)
            self.assertIn("'bob' may not invoke spawn-system", js["message"])
            self.assertEqual(curl(url, "POST", '{"value": 1}', cacert=ca,
                                  headers=[f"Authorization: Bearer {toks['alice']}"]),
                             (200, {"total": "1"}))
            # The annotated routes too.
            st, js = curl(gw.base + "/v1/counters/a1", cacert=ca)
            self.assertEqual((st, js["code"]), (401, 16), js)
            self.assertEqual(curl(gw.base + "/v1/counters/a1", cacert=ca,
                                  headers=[f"Authorization: Bearer {toks['alice']}"]),
                             (200, {"total": "1"}))
            # Spawn's HTTP API carries no credentials: refused; health is open.
            st, js = curl(gw.base + "/api/v1/system", "POST", "", cacert=ca, ctype=None)
            self.assertEqual((st, js["code"]), (403, 7), js)
            st, js = curl(gw.base + "/api/v1/system/spawn-system/actors/a1/invoke", "POST", "",
                          cacert=ca, ctype=None)
            self.assertEqual(st, 403, js)
            self.assertEqual(curl(gw.base + "/health/readiness", cacert=ca),
                             (200, {"status": "up"}))
            # A renewed certificate is served to new connections, no restart.
            self.assertEqual(served_serial(gw.http), cert_serial(f"{pki}/server.pem"))
            for src, dst in (("server2.pem", "cert.pem"), ("server2.key", "key.pem")):
                shutil.copy(f"{pki}/{src}", f"{live}/{dst}.new")
                os.replace(f"{live}/{dst}.new", f"{live}/{dst}")
            self.assertEqual(served_serial(gw.http), cert_serial(f"{pki}/server2.pem"))
            self.assertNotEqual(cert_serial(f"{pki}/server.pem"),
                                cert_serial(f"{pki}/server2.pem"))
            self.assertEqual(curl(url, "POST", '{"value": 1}', cacert=ca,
                                  headers=[f"Authorization: Bearer {toks['alice']}"]),
                             (200, {"total": "2"}))
            # A key that does not match: refused, the renewed pair stays.
            shutil.copy(f"{pki}/client.key", f"{live}/key.pem.new")
            os.replace(f"{live}/key.pem.new", f"{live}/key.pem")
            self.assertEqual(served_serial(gw.http), cert_serial(f"{pki}/server2.pem"))
            gw.wait_line(r"TLS files changed but not reloaded.*does not match", err=True)
            # HTTPS only: a plaintext request gets no answer.
            r = subprocess.run(["curl", "-sS", "--max-time", "10",
                                f"http://127.0.0.1:{gw.http}/health"], capture_output=True)
            self.assertNotEqual(r.returncode, 0)
        finally:
            h.stop()
            gw.stop()

    def test_a_wide_http_with_access_needs_tls(self):
        policy = os.path.join(TMP, "empty.yaml")
        with open(policy, "w") as f:
            f.write("principals: []\n")
        r = subprocess.run([GW, "--listen", "127.0.0.1:0", "--http", "0.0.0.0:0",
                            "--access", policy, "--statestore", f"sqlite://{TMP}/wide.db"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--tls-cert", r.stderr)


class Refusal(unittest.TestCase):
    def test_a_contract_with_a_bad_http_rule_is_refused_whole(self):
        d = os.path.join(TMP, "bad")
        os.makedirs(f"{d}/desc", exist_ok=True)
        with open(f"{d}/bad.proto", "w") as f:
            f.write("""syntax = "proto3";
package badhttp;
import "google/api/annotations.proto";
import "spawn/actors/extensions.proto";
message M { string id = 1; }
service Bad {
  option (spawn.actors.actor) = { kind: NAMED };
  rpc Go(M) returns (M) { option (google.api.http) = { get: "/v1/{id" }; }
}
""")
        r = subprocess.run(["protoc", f"-I{PROTO}", "-I/usr/include", f"-I{d}",
                            "--include_imports", f"--descriptor_set_out={d}/desc/bad.pb",
                            "bad.proto"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([GW, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                            "--descriptors", f"{d}/desc", "--statestore",
                            f"sqlite://{d}/state.db"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("/badhttp.Bad/Go: path template '/v1/{id'", r.stderr)


if __name__ == "__main__":
    unittest.main()
