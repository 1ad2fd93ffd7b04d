#!/usr/bin/python3
"""The gateway's log lines end to end (issue 13 §4), in both --log-format
text and json: a real gateway with --access, TLS, an OTLP endpoint with a
password and a statestore key, a host and clients of our Python SDK.

- json: every line of stderr is one JSON object with time (RFC 3339 UTC),
  level and msg; a line logged during a turn (a broadcast, at debug)
  carries system, actor, action, trace_id and request_id;
- rate limiting (--log-rate 3/60): 30 refused Admin calls print their line
  3 times, and the other 27 are reported as suppressed (in the line's
  "suppressed" field or the shutdown report), in both formats;
- credentials never appear in stdout or stderr, in both formats: the
  bearer tokens (good and wrong), the OTLP endpoint's password, the
  statestore key, the TLS private key's material, and a PostgreSQL URL's
  password (a gateway that cannot reach that server and exits).

Waits: the gateway's listening lines, the host's registered event, the
calls' answers; the log is read after SIGTERM (no sleeps)."""
import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import tempfile
import unittest

import grpc

import mgw

from google.protobuf import wrappers_pb2  # noqa: E402
from spawn.gateway.v1 import gateway_pb2  # noqa: E402
from spawn_client import SpawnClient, SpawnError  # noqa: E402
from spawn_host import ActorError, ActorHost  # noqa: E402

SYS = "lsys"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REFUSED = "admin GetState by principal 'alice': refused PERMISSION_DENIED"


def token_hash(tok):
    return "sha256:" + hashlib.sha256(tok.encode()).hexdigest()


def fail(state, payload, ctx):
    raise ActorError(9, "refused on purpose")


def shout(state, payload, ctx):
    ctx.broadcast("news")  # logged at debug during the turn (workflow.c)
    return None, wrappers_pb2.Int64Value(value=2)


def ok(state, payload, ctx):
    return None, wrappers_pb2.Int64Value(value=1)


def key_material(path):
    """The base64 lines of a PEM key, and the DER bytes' base64 and hex."""
    with open(path) as f:
        body = [x.strip() for x in f if x.strip() and not x.startswith("-----")]
    der = base64.b64decode("".join(body))
    return [x for x in body if len(x) >= 16] + [der.hex()[:32]]


class LogsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.certs = os.path.join(cls.tmp.name, "certs")
        subprocess.run(["bash", os.path.join(mgw.ROOT, "tests", "tls", "mkcerts.sh"), cls.certs],
                       check=True, capture_output=True, timeout=120)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_one(self, fmt):
        d = tempfile.mkdtemp(dir=self.tmp.name, prefix=fmt)
        tok = {n: "tok-%s-%s" % (n, os.urandom(8).hex()) for n in ("host", "alice", "wrong")}
        pw = "otlp-pw-" + os.urandom(6).hex()
        policy = os.path.join(d, "access.yaml")
        with open(policy, "w") as f:
            f.write(f"""principals:
  - name: host
    tokens: [{token_hash(tok["host"])}]
    host: [{SYS}]
  - name: alice
    tokens: [{token_hash(tok["alice"])}]
    invoke:
      - system: {SYS}
""")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))  # the OTLP endpoint refuses: its failures are logged
        self.addCleanup(s.close)
        ca = os.path.join(self.certs, "ca.pem")
        key = os.path.join(self.certs, "server.key")
        gw = mgw.Gateway(d, ["--access", policy, "--tls-cert",
                             os.path.join(self.certs, "server-chain.pem"), "--tls-key", key,
                             "--log-format", fmt, "--log-level", "debug", "--log-rate", "3/60",
                             "--otlp-endpoint",
                             "http://spawn:%s@127.0.0.1:%d/v1/traces" % (pw, s.getsockname()[1])],
                         ca=ca)
        h = ActorHost(gw.addr, SYS, proto_path=os.path.join(mgw.BUILD, "python-gen"),
                      tls_ca=ca, token=tok["host"])
        h.add_actor("counter", {"Fail": fail, "Ok": ok, "Shout": shout}, stateful=False, kind="NAMED")
        h.start()
        try:
            self.assertTrue(h.registered.wait(20), "the host registered")
            alice = SpawnClient(gw.addr, tls_ca=ca, token=tok["alice"])
            alice.invoke(SYS, "counter", "Ok")
            with self.assertRaises(SpawnError):
                alice.invoke(SYS, "counter", "Fail")
            alice.invoke(SYS, "counter", "Shout")
            with self.assertRaises(SpawnError) as e:
                SpawnClient(gw.addr, tls_ca=ca, token=tok["wrong"]).invoke(SYS, "counter", "Ok")
            self.assertEqual(int(e.exception.code), 16)
            with open(ca, "rb") as f:
                ch = grpc.secure_channel(gw.addr, grpc.ssl_channel_credentials(f.read()))
            get = ch.unary_unary("/spawn.gateway.v1.Admin/GetState",
                                 request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=gateway_pb2.ActorStateView.FromString)
            r = gateway_pb2.GetStateRequest()
            r.actor.system, r.actor.actor = SYS, "counter"
            for _ in range(30):
                with self.assertRaises(grpc.RpcError) as e:
                    get(r, metadata=[("authorization", "Bearer " + tok["alice"])], timeout=20)
                self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
            ch.close()
            alice.close()
        finally:
            h.stop()
            self.assertEqual(gw.stop(), 0)
        with open(gw.log_path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        secrets = list(tok.values()) + [pw, mgw.KEY] + key_material(key)
        for line in lines:
            for secret in secrets:
                self.assertNotIn(secret, line, "a credential in a %s log line" % fmt)
        return lines

    def test_text(self):
        lines = self.run_one("text")
        self.assertTrue(any(re.match(r"^\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARN|ERROR) ", x)
                            for x in lines), lines[:5])
        self.assertEqual(len([x for x in lines if REFUSED in x]), 3, lines)
        self.assertTrue(any("27 similar lines suppressed: admin %s by principal" in x
                            for x in lines), lines[-10:])
        self.assertTrue(any("spawn:***@127.0.0.1" in x for x in lines),
                        "the endpoint is logged redacted")

    def test_json(self):
        lines = self.run_one("json")
        objs = []
        for line in lines:
            try:
                o = json.loads(line)
            except ValueError:
                self.fail("not a JSON line: %r" % line)
            self.assertIsInstance(o, dict)
            self.assertRegex(o.get("time", ""), TIME, o)
            self.assertIn(o.get("level"), ("debug", "info", "warn", "error", "DEBUG", "INFO",
                                           "WARN", "ERROR"), o)
            self.assertIsInstance(o.get("message"), str, o)
            objs.append(o)
        mine = [o for o in objs if o["message"] == REFUSED]
        self.assertEqual(len(mine), 3, [o["message"] for o in objs][-40:])
        report = [o for o in objs if o["message"].startswith("similar lines suppressed: admin %s")]
        self.assertEqual(sum(o.get("suppressed", 0) for o in mine + report), 27, report)
        turn = [o for o in objs if o["message"].startswith("broadcast from counter")]
        self.assertTrue(turn, "no line logged during the turn")
        t = turn[0]
        self.assertEqual((t.get("system"), t.get("actor"), t.get("action")),
                         (SYS, "counter", "Shout"), t)
        self.assertRegex(t.get("trace_id", ""), r"^[0-9a-f]{32}$")
        self.assertRegex(str(t.get("request_id", "")), r"^[1-9][0-9]*$")

    def test_a_store_url_password_in_both_formats(self):
        pw = "db-pw-" + os.urandom(6).hex()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))  # nothing listens: the statestore is unreachable
        self.addCleanup(s.close)
        for fmt in ("text", "json"):
            r = subprocess.run([mgw.GATEWAY, "--listen", "127.0.0.1:0", "--log-format", fmt,
                                "--log-level", "debug", "--statestore",
                                "postgresql://spawn:%s@127.0.0.1:%d/spawn?password=%s" % (
                                    pw, s.getsockname()[1], pw)],
                               capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, SPAWN_STATESTORE_KEY=mgw.KEY))
            self.assertNotEqual(r.returncode, 0)
            out = r.stdout + r.stderr
            self.assertIn("spawn:***@127.0.0.1", out, "the URL is logged, redacted")
            self.assertNotIn(pw, out, fmt)
            self.assertNotIn(mgw.KEY, out, fmt)
            if fmt == "json":
                for line in r.stderr.splitlines():
                    json.loads(line)


if __name__ == "__main__":
    unittest.main()
