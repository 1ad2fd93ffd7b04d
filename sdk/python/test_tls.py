"""TLS, mTLS and bearer tokens in spawn_client and spawn_host, against fake
gateways run in-process that serve mTLS (client certificates required and
verified), with certificates made by tests/tls/mkcerts.sh in a temporary
directory:

* CA + certificate + key reach the gateway; no client certificate, a client
  certificate of another CA, or a CA that did not sign the gateway fail at
  the handshake with UNAVAILABLE and never reach it;
* the token travels as ``authorization: Bearer <token>`` exactly once per
  call, and on the host's Connect stream;
* SPAWN_TLS_* / SPAWN_TOKEN are read when an option is not given; "" = none;
* files that cannot be used raise TLSConfigError at create.

    /usr/bin/python3 -m unittest sdk/python/test_tls.py      (or -v)
"""

import logging
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
_tmp = tempfile.mkdtemp(prefix="spawn-py-tls-")
CERTS = os.path.join(_tmp, "certs")
subprocess.run(["bash", os.path.join(ROOT, "tests", "tls", "mkcerts.sh"), CERTS],
               check=True)
PROTO_OUT = os.environ.get("SPAWN_PY_PROTO_OUT")
if not PROTO_OUT:
    PROTO_OUT = os.path.join(_tmp, "gen")
    subprocess.run(["sh", os.path.join(HERE, "gen.sh"), PROTO_OUT], check=True)
sys.path.insert(0, PROTO_OUT)
sys.path.insert(0, HERE)

import grpc  # noqa: E402

import spawn_host  # noqa: E402
from spawn_client import SpawnClient, SpawnError  # noqa: E402
from spawn_host import ActorHost, StatusCode, TLSConfigError  # noqa: E402
from spawn.actors import protocol_pb2  # noqa: E402
from spawn.gateway.v1 import gateway_pb2  # noqa: E402

T = 5.0
ENV = ("SPAWN_TLS_CA", "SPAWN_TLS_CERT", "SPAWN_TLS_KEY", "SPAWN_TLS_SERVER_NAME",
       "SPAWN_TOKEN")
for _v in ENV:  # tests must not inherit a developer's settings
    os.environ.pop(_v, None)


def P(name):
    return os.path.join(CERTS, name)


def read(name):
    with open(P(name), "rb") as f:
        return f.read()


def tearDownModule():
    shutil.rmtree(_tmp, ignore_errors=True)


def server_credentials(client_auth=True):
    return grpc.ssl_server_credentials(
        [(read("server.key"), read("server-chain.pem"))],
        root_certificates=read("ca.pem") if client_auth else None,
        require_client_auth=client_auth)


class FakeGateway:
    """ActorGateway.Invoke and HostGateway.Connect over mTLS (or plaintext
    with tls=False). Records each call's authorization metadata entries."""

    def __init__(self, tls=True):
        self.auth = queue.Queue()  # (method, [values of "authorization"])
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4))

        def record(method, ctx):
            self.auth.put((method, [v for k, v in ctx.invocation_metadata()
                                    if k == "authorization"]))

        def invoke(req, ctx):
            record("Invoke", ctx)
            return protocol_pb2.InvocationResponse()

        def connect(requests, ctx):
            record("Connect", ctx)
            next(requests)
            resp = gateway_pb2.GatewayMessage()
            resp.registration.status.status = protocol_pb2.OK
            yield resp
            for _ in requests:  # until the host goes
                pass

        self.server.add_generic_rpc_handlers((
            grpc.method_handlers_generic_handler("spawn.gateway.v1.ActorGateway", {
                "Invoke": grpc.unary_unary_rpc_method_handler(
                    invoke, protocol_pb2.InvocationRequest.FromString,
                    protocol_pb2.InvocationResponse.SerializeToString)}),
            grpc.method_handlers_generic_handler("spawn.gateway.v1.HostGateway", {
                "Connect": grpc.stream_stream_rpc_method_handler(
                    connect, gateway_pb2.HostMessage.FromString,
                    gateway_pb2.GatewayMessage.SerializeToString)}),
        ))
        if tls:
            port = self.server.add_secure_port("127.0.0.1:0", server_credentials())
        else:
            port = self.server.add_insecure_port("127.0.0.1:0")
        self.target = "127.0.0.1:%d" % port
        self.server.start()

    def next_auth(self):
        return self.auth.get(timeout=T)

    def stop(self):
        self.server.stop(None)


MTLS = dict(tls_ca=P("ca.pem"), tls_cert=P("client.pem"), tls_key=P("client.key"))


class ClientTLSTest(unittest.TestCase):
    def setUp(self):
        self.gw = FakeGateway()

    def tearDown(self):
        self.gw.stop()

    def client(self, **kw):
        c = SpawnClient(self.gw.target, timeout=T, fail_fast=True, **kw)
        self.addCleanup(c.close)
        return c

    def refused(self, c):
        with self.assertRaises(SpawnError) as cm:
            c.invoke("sys", "a", "Get", timeout=None)
        self.assertEqual(cm.exception.code, StatusCode.UNAVAILABLE)
        self.assertTrue(self.gw.auth.empty(), "a refused call reached the gateway")

    def test_mtls_with_token_once_per_call(self):
        c = self.client(token="tok-py", **MTLS)
        for _ in range(3):
            self.assertIsNone(c.invoke("sys", "a", "Get"))
            self.assertEqual(self.gw.next_auth(), ("Invoke", ["Bearer tok-py"]))
        c2 = self.client(**MTLS)
        c2.invoke("sys", "a", "Get")
        self.assertEqual(self.gw.next_auth(), ("Invoke", []))

    def test_no_client_certificate_is_refused(self):
        self.refused(self.client(tls_ca=P("ca.pem"), tls_cert="", tls_key="",
                                 token="tok"))

    def test_client_certificate_of_another_ca_is_refused(self):
        self.refused(self.client(tls_ca=P("ca.pem"), tls_cert=P("rogue.pem"),
                                 tls_key=P("rogue.key")))

    def test_trusting_the_wrong_ca_is_refused(self):
        self.refused(self.client(tls_ca=P("rogue-ca.pem"), tls_cert=P("client.pem"),
                                 tls_key=P("client.key")))

    def test_plaintext_against_tls_is_refused(self):
        self.refused(self.client())

    def test_server_name_override(self):
        c = self.client(tls_server_name="localhost", **MTLS)
        c.invoke("sys", "a", "Get")
        self.assertEqual(self.gw.next_auth(), ("Invoke", []))
        self.refused(self.client(tls_server_name="gateway.elsewhere.test", **MTLS))

    def test_environment_fallbacks(self):
        env = {"SPAWN_TLS_CA": P("ca.pem"), "SPAWN_TLS_CERT": P("client.pem"),
               "SPAWN_TLS_KEY": P("client.key"), "SPAWN_TOKEN": "tok-env",
               "SPAWN_TLS_SERVER_NAME": "localhost"}
        with mock.patch.dict(os.environ, env):
            c = self.client()
            c.invoke("sys", "a", "Get")
            self.assertEqual(self.gw.next_auth(), ("Invoke", ["Bearer tok-env"]))
            # An option wins over its variable; "" = none.
            c = self.client(token="tok-opt")
            c.invoke("sys", "a", "Get")
            self.assertEqual(self.gw.next_auth(), ("Invoke", ["Bearer tok-opt"]))
            self.refused(self.client(tls_cert="", tls_key=""))

    def test_unusable_files_fail_at_create(self):
        bad = [
            dict(tls_ca=P("missing.pem")),
            dict(tls_ca=P("ca.db/serial")),  # no PEM in it
            dict(tls_ca=P("ca.pem"), tls_cert=P("client.pem"), tls_key=P("missing.key")),
            dict(tls_ca=P("ca.pem"), tls_cert=P("missing.pem"), tls_key=P("client.key")),
            dict(tls_ca=P("ca.pem"), tls_cert=P("client.pem")),
            dict(tls_ca=P("ca.pem"), tls_key=P("client.key")),
            dict(tls_cert=P("client.pem"), tls_key=P("client.key")),
            dict(tls_server_name="localhost"),
        ]
        for kw in bad:
            with self.subTest(kw=kw):
                with self.assertRaises(TLSConfigError):
                    SpawnClient(self.gw.target, **kw)
                with self.assertRaises(TLSConfigError):
                    ActorHost(self.gw.target, "sys", proto_path=PROTO_OUT, **kw)
        with self.assertRaisesRegex(TLSConfigError, "missing.pem"):
            SpawnClient(self.gw.target, tls_ca=P("missing.pem"))
        with self.assertRaises(ValueError):
            SpawnClient(self.gw.target, token="two\nlines")
        with mock.patch.dict(os.environ, {"SPAWN_TLS_CA": P("missing.pem")}):
            with self.assertRaises(TLSConfigError):
                SpawnClient(self.gw.target)
        self.assertNotIn("secret", repr(spawn_host.Security(token="secret")))


class PlaintextTokenTest(unittest.TestCase):
    def test_token_over_plaintext(self):
        gw = FakeGateway(tls=False)
        self.addCleanup(gw.stop)
        c = SpawnClient(gw.target, timeout=T, token="plain")
        self.addCleanup(c.close)
        c.invoke("sys", "a", "Get")
        self.assertEqual(gw.next_auth(), ("Invoke", ["Bearer plain"]))
        c2 = SpawnClient(gw.target, timeout=T, fail_fast=True, tls_ca=P("ca.pem"))
        self.addCleanup(c2.close)
        with self.assertRaises(SpawnError) as cm:
            c2.invoke("sys", "a", "Get", timeout=None)
        self.assertEqual(cm.exception.code, StatusCode.UNAVAILABLE)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.q = queue.Queue()

    def emit(self, record):
        self.q.put(record.getMessage())


class HostTLSTest(unittest.TestCase):
    def setUp(self):
        self.gw = FakeGateway()
        self.records = _Records()
        log = logging.getLogger("spawn_host")
        log.addHandler(self.records)
        log.propagate = False
        self.addCleanup(log.removeHandler, self.records)

    def tearDown(self):
        self.gw.stop()

    def host(self, **kw):
        h = ActorHost(self.gw.target, "sys", proto_path=PROTO_OUT, min_backoff=0.02,
                      max_backoff=0.1, **kw)
        h.add_actor("a", {"Get": lambda s, p, ctx: (None, None)}, stateful=False)
        self.addCleanup(h.stop, T)
        h.start()
        return h

    def test_mtls_host_registers_with_its_token(self):
        h = self.host(tls_ca=P("ca.pem"), tls_cert=P("host.pem"), tls_key=P("host.key"),
                      token="tok-host")
        self.assertTrue(h.registered.wait(T))
        self.assertEqual(self.gw.next_auth(), ("Connect", ["Bearer tok-host"]))

    def test_host_without_client_certificate_never_registers(self):
        h = self.host(tls_ca=P("ca.pem"), tls_cert="", tls_key="", token="tok")
        msg = self.records.q.get(timeout=T)
        self.assertIn("UNAVAILABLE", msg)
        self.assertNotIn("tok", msg.replace("stream to", ""))
        self.assertFalse(h.registered.is_set())
        self.assertTrue(self.gw.auth.empty())

    def test_host_trusting_the_wrong_ca_never_registers(self):
        h = self.host(tls_ca=P("rogue-ca.pem"), tls_cert=P("host.pem"),
                      tls_key=P("host.key"))
        self.assertIn("UNAVAILABLE", self.records.q.get(timeout=T))
        self.assertFalse(h.registered.is_set())
        self.assertTrue(self.gw.auth.empty())

    def test_host_environment_fallbacks(self):
        env = {"SPAWN_TLS_CA": P("ca.pem"), "SPAWN_TLS_CERT": P("host.pem"),
               "SPAWN_TLS_KEY": P("host.key"), "SPAWN_TOKEN": "tok-env"}
        with mock.patch.dict(os.environ, env):
            h = self.host()
        self.assertTrue(h.registered.wait(T))
        self.assertEqual(self.gw.next_auth(), ("Connect", ["Bearer tok-env"]))


if __name__ == "__main__":
    unittest.main()
