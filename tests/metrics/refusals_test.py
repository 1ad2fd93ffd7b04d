#!/usr/bin/python3
"""Authorization refusals and TLS handshakes in /metrics, scraped over
HTTPS (issue 13 §1: "TLS handshakes and authorization refusals"): a real
gateway with --access, --tls-cert and --http (HTTPS with the gateway's
certificate, verified by the test CA), a host and clients of our Python SDK
with bearer tokens, and Admin called through grpcio.

- a refused Invoke (a token for another system: PERMISSION_DENIED; no
  token: UNAUTHENTICATED) counts once under kind "invoke" and its code;
- a refused host registration (a system the token may not serve) counts
  under kind "host";
- a refused Admin call (a client's token: PERMISSION_DENIED) counts under
  kind "admin"; the admin's own call is not counted;
- every other series stays where it was, and the accepted calls are not
  counted as refusals;
- TLS: a client that does not trust the gateway's CA (the rogue CA) fails
  with UNAVAILABLE; its handshake is counted, the gateway keeps serving;
- the request target check holds over HTTPS too (/metrics%00: 400).

Waits are protocol events (the host's registered event, the calls'
answers) or polling /metrics with a deadline for the one refusal whose
answer the host does not see (no sleeps)."""
import hashlib
import os
import subprocess
import tempfile
import unittest

import grpc

import mgw
from mgw import value

from google.protobuf import wrappers_pb2  # noqa: E402
from spawn.gateway.v1 import gateway_pb2  # noqa: E402
from spawn_client import SpawnClient, SpawnError  # noqa: E402
from spawn_host import ActorHost  # noqa: E402

SYS, OTHER = "asys", "bsys"
REF = "spawn_authz_refusals_total"


def token_hash(tok):
    return "sha256:" + hashlib.sha256(tok.encode()).hexdigest()


def refusals(samples):
    return {(dict(l)["kind"], dict(l)["code"]): v for (n, l), v in samples.items() if n == REF}


def add(state, payload, ctx):
    return None, wrappers_pb2.Int64Value(value=1)


class RefusalsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.certs = os.path.join(d, "certs")
        subprocess.run(["bash", os.path.join(mgw.ROOT, "tests", "tls", "mkcerts.sh"), cls.certs],
                       check=True, capture_output=True, timeout=120)
        cls.ca = os.path.join(cls.certs, "ca.pem")
        cls.tok = {n: os.urandom(12).hex() for n in ("host", "alice", "root")}
        policy = os.path.join(d, "access.yaml")
        with open(policy, "w") as f:
            f.write(f"""principals:
  - name: host
    tokens: [{token_hash(cls.tok["host"])}]
    host: [{SYS}]
  - name: alice
    tokens: [{token_hash(cls.tok["alice"])}]
    invoke:
      - system: {SYS}
  - name: root
    tokens: [{token_hash(cls.tok["root"])}]
    admin: true
""")
        cls.gw = mgw.Gateway(d, ["--access", policy,
                                 "--tls-cert", os.path.join(cls.certs, "server-chain.pem"),
                                 "--tls-key", os.path.join(cls.certs, "server.key")], ca=cls.ca)
        cls.hosts = []

    @classmethod
    def tearDownClass(cls):
        for h in cls.hosts:
            h.stop()
        rc = cls.gw.stop()
        # The gateway's log must not hold the tokens (issue 13 §4).
        with open(cls.gw.log_path, "rb") as f:
            log = f.read()
        cls.tmp.cleanup()
        for t in cls.tok.values():
            if t.encode() in log:
                raise AssertionError("a bearer token appears in the gateway's log")
        if rc != 0:
            raise AssertionError("the gateway exited %d on SIGTERM" % rc)

    def host(self, system, token):
        h = ActorHost(self.gw.addr, system, proto_path=os.path.join(mgw.BUILD, "python-gen"),
                      tls_ca=self.ca, token=token)
        h.add_actor("counter", {"Add": add}, stateful=False, kind="NAMED")
        h.start()
        self.hosts.append(h)
        return h

    def client(self, token):
        c = SpawnClient(self.gw.addr, tls_ca=self.ca, token=token)
        self.addCleanup(c.close)
        return c

    def admin_get_state(self, token):
        creds = grpc.ssl_channel_credentials(open(self.ca, "rb").read())
        ch = grpc.secure_channel(self.gw.addr, creds)
        self.addCleanup(ch.close)
        get = ch.unary_unary("/spawn.gateway.v1.Admin/GetState",
                             request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=gateway_pb2.ActorStateView.FromString)
        r = gateway_pb2.GetStateRequest()
        r.actor.system, r.actor.actor = SYS, "counter"
        md = [("authorization", "Bearer " + token)] if token else []
        return get(r, metadata=md, timeout=20)

    def delta(self, before, want, timeout=20.0):
        """Polls /metrics (HTTPS) until the refusals moved by exactly want
        from before; then checks no other series moved."""
        def now():
            cur = refusals(mgw.parse(self.gw.metrics()))
            moved = {k: cur.get(k, 0) - before.get(k, 0) for k in cur}
            return cur if all(moved.get(k, 0) >= v for k, v in want.items()) else None
        cur = mgw.wait_until(now, "refusals %r" % (want,), timeout)
        for k in set(cur) | set(want):
            self.assertEqual(cur.get(k, 0) - before.get(k, 0), want.get(k, 0), k)
        return cur

    def test_refusals_by_kind_and_code_over_https(self):
        self.assertTrue(self.gw.https, "--tls-cert: --http serves HTTPS")
        h = self.host(SYS, self.tok["host"])
        self.assertTrue(h.registered.wait(20), "the allowed host registered")
        r0 = refusals(mgw.parse(self.gw.metrics()))
        self.assertEqual(sorted(r0), sorted((k, c) for k in ("invoke", "admin", "peer", "host")
                                            for c in ("UNAUTHENTICATED", "PERMISSION_DENIED")))
        # Accepted: a call and an admin call cost no refusal.
        alice = self.client(self.tok["alice"])
        alice.invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=1))
        self.admin_get_state(self.tok["root"])
        r0 = self.delta(r0, {})

        # A refused Invoke: another system; then no token at all.
        with self.assertRaises(SpawnError) as e:
            alice.invoke(OTHER, "counter", "Add", wrappers_pb2.Int64Value(value=1))
        self.assertEqual(int(e.exception.code), grpc.StatusCode.PERMISSION_DENIED.value[0])
        r0 = self.delta(r0, {("invoke", "PERMISSION_DENIED"): 1})
        with self.assertRaises(SpawnError) as e:
            self.client(None).invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=1))
        self.assertEqual(int(e.exception.code), grpc.StatusCode.UNAUTHENTICATED.value[0])
        r0 = self.delta(r0, {("invoke", "UNAUTHENTICATED"): 1})

        # A refused Admin call: a client's token.
        with self.assertRaises(grpc.RpcError) as e:
            self.admin_get_state(self.tok["alice"])
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        r0 = self.delta(r0, {("admin", "PERMISSION_DENIED"): 1})

        # A refused host registration: the host token for a system it may
        # not serve. The host retries (with backoff): at least one refusal,
        # and it never registers.
        bad = self.host(OTHER, self.tok["host"])
        cur = mgw.wait_until(
            lambda: (lambda c: c if c[("host", "PERMISSION_DENIED")] >
                     r0[("host", "PERMISSION_DENIED")] else None)(
                refusals(mgw.parse(self.gw.metrics()))), "the host's refusal counted")
        self.assertFalse(bad.registered.is_set())
        for k in cur:
            if k != ("host", "PERMISSION_DENIED"):
                self.assertEqual(cur[k], r0[k], k)
        bad.stop()
        # Still serving.
        alice.invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=1))
        st, body = self.gw.get("/metrics%00")
        self.assertEqual(st, 400, body)
        self.assertIn(b"encoded NUL", body)

    def test_tls_handshake_of_an_untrusting_client(self):
        before = value(mgw.parse(self.gw.metrics()), "spawn_tls_handshakes_total")
        c = SpawnClient(self.gw.addr, tls_ca=os.path.join(self.certs, "rogue-ca.pem"),
                        token=self.tok["alice"], timeout=20, fail_fast=True,
                        channel_options=[("grpc.use_local_subchannel_pool", 1)])
        with self.assertRaises(SpawnError) as e:
            c.invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=1))
        c.close()
        self.assertEqual(int(e.exception.code), grpc.StatusCode.UNAVAILABLE.value[0])
        after = value(mgw.parse(self.gw.metrics()), "spawn_tls_handshakes_total")
        self.assertGreaterEqual(after - before, 1, "the refused handshake is counted")
        good = self.client(self.tok["alice"])
        with self.assertRaises(SpawnError) as e:  # served (no host of this test yet: 5)
            good.invoke("nosys", "counter", "Add", wrappers_pb2.Int64Value(value=1))
        self.assertEqual(int(e.exception.code), grpc.StatusCode.PERMISSION_DENIED.value[0])


if __name__ == "__main__":
    unittest.main()
