#!/usr/bin/python3
"""cluster_reach_test.py - plain gRPC stubs, server reflection and annotated
HTTP/JSON routes through ANY member of a cluster (issue 11 §2-3: "every
member accepts every call and routes it to the owner"; "a host may connect
to any member; what it serves is published in the membership view"), on a
real PostgreSQL or MariaDB (CHAOS_STORES: one engine per ctest entry, the
private servers of the spawn_db fixture; a missing server FAILS).

Three gateways with --advertise on one store; one Python host
(tests/reach/ccounter_host.py) of actor "Counter" (tests/reach/ccounter.proto,
with a google.api.http route) sends its contract to ONE member. Checked:

  - the other members load that member's contracts (Peer.Contracts, the
    hash in the served list: docs/design/cluster.md, "Contracts across the
    cluster") and serve the actor to a protoc + grpc_python_plugin stub,
    to buf curl by reflection (v1), and on the annotated HTTP route, each
    call routed to the owner: one total across all of them;
  - the host moves to another member: its old member withdraws, the new
    one publishes, every member serves the actor again, total kept;
  - a fake member (a row of spawn_members written by the test, and a gRPC
    server of the test answering Peer.Contracts) publishes hostile
    contracts: a set that does not hash to what it published (corrupt), a
    malformed set, an oversized set, a set clashing with the host's
    contract, a refused call: each is refused whole (logged), and the
    members keep serving the real actor throughout; a good set from it is
    then loaded;
  - an actor type served in two systems stays FAILED_PRECONDITION.

Real processes on loopback; client ports ephemeral (the gateway's
"listening" lines), peer ports picked free just before start (as
it_cwide_test does); readiness from the processes' own lines, never a sleep.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BUILD = os.environ["SPAWN_BUILD_DIR"]
SRC = os.environ["SPAWN_SOURCE_DIR"]
HERE = os.path.join(SRC, "tests", "reach")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "cluster"))
import grpc  # noqa: E402

import chaos  # noqa: E402  (Store: a fresh namespace on the fixture's server)
import reach_test as rt  # noqa: E402  (Proc, run, must, stubs, buf_call)

GW = os.path.join(BUILD, "gateway", "spawn-gateway")
PROTO = os.path.join(SRC, "proto")
HEARTBEAT_MS = 200
# Long: no member is declared dead during a test (the fake member does not
# heartbeat); views still change at each heartbeat that changes a row.
MEMBER_TIMEOUT_MS = 60000
WAIT = 60
COUNTER = "examples.ccounter.Counter/Add"
TMP = None


def fnv64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, data):
    """A length-delimited protobuf field."""
    return varint(num << 3 | 2) + varint(len(data)) + data


def setUpModule():
    global TMP
    for tool in (rt.GRPC_PY_PLUGIN, GW):
        if not os.access(tool, os.X_OK):
            raise AssertionError(f"{tool} is missing (scripts/install-deps.sh, the build)")
    TMP = tempfile.mkdtemp(prefix="spawn-creach-")
    rt.TMP = TMP
    rt.must(["flock", os.path.join(HERE, ".npm.lock"), "sh", "-c",
             'cd "$0" && { [ -x node_modules/.bin/buf ] && '
             '[ ! package-lock.json -nt node_modules/.package-lock.json ]; } || '
             'npm ci --prefer-offline --no-audit --no-fund --loglevel=error', HERE], timeout=600)
    rt.stubs(os.path.join(TMP, "stubs"), [HERE], ["ccounter.proto"])
    rt.must(["protoc", f"-I{PROTO}", f"--python_out={TMP}/stubs", "google/api/annotations.proto",
             "google/api/http.proto"])
    rt.must(["protoc", f"-I{HERE}", f"-I{PROTO}", "-I/usr/include", "--include_imports",
             f"--descriptor_set_out={TMP}/ccounter.pb", "ccounter.proto"])
    # The same file name and service with other contents: a clash.
    os.makedirs(f"{TMP}/clash")
    with open(os.path.join(HERE, "ccounter.proto")) as f:
        text = f.read()
    with open(f"{TMP}/clash/ccounter.proto", "w") as f:
        f.write(text.replace("message Add {\n  int64 value = 1;\n",
                             "message Add {\n  int64 value = 1;\n  string note = 2;\n"))
    rt.must(["protoc", f"-I{TMP}/clash", f"-I{PROTO}", "-I/usr/include", "--include_imports",
             f"--descriptor_set_out={TMP}/clash.pb", "ccounter.proto"])
    rt.must(["sh", os.path.join(SRC, "sdk", "python", "gen.sh"), os.path.join(TMP, "proto-py")])


def tearDownModule():
    if TMP:
        subprocess.run(["rm", "-rf", TMP])


class Member(rt.Proc):
    """A gateway with --advertise on the test's store."""

    def __init__(self, store, name, *extra):
        d = tempfile.mkdtemp(prefix=name + "-", dir=TMP)
        self.dir = d
        self.peer = peer = f"127.0.0.1:{chaos._free_port('127.0.0.1')}"
        env = dict(os.environ, SPAWN_STATESTORE_KEY=chaos.KEY)
        super().__init__([GW, "--listen", "127.0.0.1:0", "--peer-listen", peer, "--advertise",
                          peer, "--http", "127.0.0.1:0", "--statestore", store.url,
                          "--heartbeat-ms", str(HEARTBEAT_MS), "--member-timeout-ms",
                          str(MEMBER_TIMEOUT_MS), *extra], os.path.join(d, "gw.log"), env)
        # The first "listening" line is --listen's (then --peer-listen's).
        lines = [self.wait_line(lambda ln: ln.startswith("listening ")),
                 self.wait_line(lambda ln: ln.startswith("listening http://"))]
        self.target = "127.0.0.1:" + lines[0].split()[2]
        self.http = "http://127.0.0.1:" + lines[1].split()[2]
        self.id = self.wait_line(lambda ln: ln.startswith("member ") and
                                 ln.endswith(" joined"), WAIT).split()[1]

    def count_err(self, pattern):
        with self.cv:
            return sum(1 for ln in self.err_lines if ln and re.search(pattern, ln))

    def wait_count(self, pattern, n, timeout=WAIT):
        """Waits until n log lines match pattern (a protocol event each)."""
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                got = sum(1 for ln in self.err_lines if ln and re.search(pattern, ln))
                if got >= n:
                    return got
                if None in self.err_lines:
                    raise AssertionError(f"exited ({self.p.wait()}): {self.tail()}")
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{got} of {n} lines /{pattern}/: {self.tail()}")
                self.cv.wait(left)

    def stop(self):
        running = self.p.poll() is None
        super().stop()
        if running and self.p.returncode != 0:
            raise AssertionError(f"the gateway exited {self.p.returncode}: {self.tail()}")


def host(member, name, *extra):
    """ccounter_host.py on member: with the contract, or extra options."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=":".join([os.path.join(TMP, "stubs"), os.path.join(TMP, "proto-py"),
                                    os.path.join(SRC, "sdk", "python")]))
    h = rt.Proc(["/usr/bin/python3", os.path.join(HERE, "ccounter_host.py"), "--gateway",
                 member.target, *(extra or ("--contract", f"{TMP}/ccounter.pb"))],
                os.path.join(member.dir, f"{name}.log"), env)
    h.wait_line(lambda ln: ln == "registered")
    return h


def stub_add(member, value):
    return rt.py_stub(os.path.join(TMP, "stubs"), member.target, "ccounter", "Counter", "Add",
                      json.dumps({"value": value}))


def http_add(member, value):
    r = rt.run(["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json", "-d",
                json.dumps({"value": value}), f"{member.http}/v1/ccounter:add"])
    return r.stdout.strip() or r.stderr.strip()


def loaded_from(member, other):
    return rf"contracts of member {re.escape(other.id)} loaded"


class FakePeer:
    """A gRPC server answering Peer.Contracts with whatever the test set
    (reply bytes, or a status code), and Peer.Ping as member_id."""

    def __init__(self, member_id):
        self.member_id = member_id
        self.reply = b""
        self.code = None
        self.asks = 0
        self.mu = threading.Lock()
        fake = self

        class Handler(grpc.GenericRpcHandler):
            def service(self, details):
                if details.method == "/spawn.gateway.v1.Peer/Contracts":
                    return grpc.unary_unary_rpc_method_handler(fake._contracts)
                if details.method == "/spawn.gateway.v1.Peer/Ping":
                    return grpc.unary_unary_rpc_method_handler(
                        lambda req, ctx: field(1, fake.member_id.encode()))
                return None

        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4),
                                  options=[("grpc.max_send_message_length", 8 << 20)])
        self.server.add_generic_rpc_handlers((Handler(),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _contracts(self, req, ctx):
        with self.mu:
            self.asks += 1
            if self.code is not None:
                ctx.abort(self.code, "the fake member refuses")
            return self.reply

    def answer(self, files, hash_=None):
        with self.mu:
            self.code = None
            self.reply = field(1, files) + field(2, (hash_ or fnv64(files)).encode())

    def stop(self):
        self.server.stop(None)


class ClusterReach(unittest.TestCase):
    def setUp(self):
        kinds = chaos.store_kinds()
        self.assertEqual(len(kinds), 1, "CHAOS_STORES names one engine")
        self.store = chaos.Store(kinds[0])
        self.procs = []

    def tearDown(self):
        errors = []
        for p in reversed(self.procs):
            try:
                p.stop()
            except AssertionError as e:
                errors.append(str(e))
        self.store.drop()
        if errors:
            raise AssertionError("; ".join(errors))

    def start(self, *a):
        m = Member(self.store, *a)
        self.procs.append(m)
        return m

    def sql_served(self, text):
        """An SQL expression of the served text with a contracts line."""
        if self.store.kind == "postgres":
            return "chr(30) || '%s'" % text
        return "CONCAT(CHAR(30), '%s')" % text

    def test_plain_reflection_and_http_through_members_without_host(self):
        a, b, c = self.start("a"), self.start("b"), self.start("c")
        t0 = time.monotonic()
        h = host(a, "host-a")
        self.procs.insert(3, h)  # stopped before the gateways
        for m in (b, c):
            m.wait_err(loaded_from(m, a))
        print("contracts on every member %.0f ms after the registration (heartbeat %d ms)"
              % ((time.monotonic() - t0) * 1000, HEARTBEAT_MS), file=sys.stderr)
        # B and C have no host: a protoc/grpc_python_plugin stub, buf curl
        # by reflection and the annotated HTTP route, routed to the owner.
        self.assertEqual(stub_add(b, 1), '{"total": "1"}')
        self.assertEqual(stub_add(c, 2), '{"total": "3"}')
        rc, out = rt.buf_call(c.target, COUNTER, '{"value": 3}')
        self.assertEqual((rc, json.loads(out) if rc == 0 else out), (0, {"total": "6"}), out)
        r = rt.run([rt.BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                    "--list-methods", f"http://{b.target}"])
        self.assertIn(COUNTER, r.stdout.split(), r.stdout + r.stderr)
        self.assertEqual(json.loads(http_add(b, 4)), {"total": "10"})
        self.assertEqual(json.loads(http_add(c, 5)), {"total": "15"})
        # The generic JSON route, typed by the loaded contract.
        r = rt.run(["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json", "-d",
                    '{"value": 0}', f"{c.http}/v1/spawn-system/Counter/Add"])
        self.assertEqual(json.loads(r.stdout), {"total": "15"}, r.stdout + r.stderr)
        self.assertEqual(stub_add(a, 1), '{"total": "16"}')

        # Peer.Contracts itself: A's answer is its host's set and its hash;
        # hostile requests are INVALID_ARGUMENT, and A keeps serving.
        with grpc.insecure_channel(a.peer) as ch:
            call = ch.unary_unary("/spawn.gateway.v1.Peer/Contracts",
                                  request_serializer=lambda x: x,
                                  response_deserializer=lambda x: x)
            reply = call(field(1, b"test"), timeout=20)
            with open(f"{TMP}/ccounter.pb", "rb") as f:
                want = f.read()
            files, hash_ = field(1, b""), b""
            # The reply: field 1 (files), then field 2 (hash).
            i = 0
            while i < len(reply):
                key, i = reply[i], i + 1
                n = sh = 0
                while True:
                    n |= (reply[i] & 0x7F) << sh
                    sh += 7
                    i += 1
                    if not reply[i - 1] & 0x80:
                        break
                if key >> 3 == 1:
                    files = reply[i:i + n]
                else:
                    hash_ = reply[i:i + n]
                i += n
            self.assertEqual(hash_.decode(), fnv64(files))
            self.assertIn(b"ccounter.proto", files)
            self.assertIn(b"examples.ccounter", files)
            self.assertLessEqual(len(files), len(want))  # the built-in files left out
            for bad in (b"\x0a\xff\xff\xff\xff\x0f", field(1, b"\xff\xfe"),
                        field(1, b"a\x00b"), field(1, b"x" * 100000)):
                with self.assertRaises(grpc.RpcError) as e:
                    call(bad, timeout=20)
                self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                                 e.exception.details())
        self.assertEqual(stub_add(a, 0), '{"total": "16"}')

        # The host moves from A to B: A withdraws (in every view), B
        # publishes, and A and C load B's contracts.
        h.stop()
        self.procs.remove(h)
        for m in (b, c):
            m.wait_err(rf"contracts of member {re.escape(a.id)} withdrawn")
        h2 = host(b, "host-b")
        self.procs.insert(3, h2)
        for m in (a, c):
            m.wait_err(loaded_from(m, b))
        self.assertEqual(stub_add(a, 1), '{"total": "17"}')
        self.assertEqual(json.loads(http_add(c, 1)), {"total": "18"})
        rc, out = rt.buf_call(a.target, COUNTER, '{"value": 2}')
        self.assertEqual((rc, json.loads(out) if rc == 0 else out), (0, {"total": "20"}), out)

    def test_hostile_published_contracts_are_refused_and_members_keep_serving(self):
        a, b = self.start("a"), self.start("b")
        h = host(a, "host-a")
        self.procs.insert(2, h)
        b.wait_err(loaded_from(b, a))
        self.assertEqual(stub_add(b, 1), '{"total": "1"}')
        fake_id = "127.0.0.1:1@1@fake-%d" % os.getpid()
        fake = FakePeer(fake_id)
        try:
            with open(f"{TMP}/ccounter.pb", "rb") as f:
                good = f.read()
            with open(f"{TMP}/clash.pb", "rb") as f:
                clash = f.read()
            now = ("(extract(epoch from clock_timestamp()) * 1000)::int8"
                   if self.store.kind == "postgres" else
                   "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6)) DIV 1000)")
            refused = rf"contracts of member {re.escape(fake_id)} refused"
            cases = [
                # (why refused, files, published hash or None = the true one)
                ("do not hash to 0123456789abcdef", good, "0123456789abcdef"),
                ("not a valid google.protobuf.FileDescriptorSet",
                 b"\x0a\xff\xff\xff\xff\x0f", None),
                ("over the bound", field(1, field(1, b"big.proto") + field(4, b"x" * (2 << 20))),
                 None),
                ("contract clash", clash, None),
            ]
            n = 0
            for what, files, published in cases:
                fake.answer(files, published)
                served = self.sql_served(published or fnv64(files))
                if n == 0:  # the fake member joins, publishing its first hash
                    self.store.sql(
                        "INSERT INTO spawn_members(id, address, status, started_ms, "
                        "heartbeat_ms, served, view_version) VALUES "
                        "('%s', '127.0.0.1:%d', 2, %s, %s, %s, 1)"
                        % (fake_id, fake.port, now, now, served))
                else:
                    self.store.sql("UPDATE spawn_members SET served = %s WHERE id = '%s'"
                                   % (served, fake_id))
                n += 1
                for m in (a, b):
                    m.wait_count(refused, n)
                    with m.cv:
                        last = [ln for ln in m.err_lines if ln and re.search(refused, ln)][-1]
                    self.assertIn(what, last)
                # Still serving the real actor, through both.
                self.assertEqual(stub_add(b, 1), '{"total": "%d"}' % (2 * n), what)
                self.assertEqual(stub_add(a, 1), '{"total": "%d"}' % (2 * n + 1), what)
            # A refused call: asked again at each heartbeat.
            with fake.mu:
                fake.code = grpc.StatusCode.UNAVAILABLE
                asks = fake.asks
            self.store.sql("UPDATE spawn_members SET served = %s WHERE id = '%s'"
                           % (self.sql_served("e" * 16), fake_id))
            for m in (a, b):
                m.wait_count(rf"member {re.escape(fake_id)} did not send its contracts", 2)
            with fake.mu:
                self.assertGreaterEqual(fake.asks, asks + 4)
            # A good set from it (the host's own, same bytes): loaded.
            fake.answer(good)
            self.store.sql("UPDATE spawn_members SET served = %s WHERE id = '%s'"
                           % (self.sql_served(fnv64(good)), fake_id))
            for m in (a, b):
                m.wait_err(rf"contracts of member {re.escape(fake_id)} loaded")
            self.assertEqual(stub_add(b, 1), '{"total": "%d"}' % (2 * n + 2))
            # The fake member leaves: withdrawn.
            self.store.sql("DELETE FROM spawn_members WHERE id = '%s'" % fake_id)
            for m in (a, b):
                m.wait_err(rf"contracts of member {re.escape(fake_id)} withdrawn")
            self.assertEqual(stub_add(a, 1), '{"total": "%d"}' % (2 * n + 3))
        finally:
            fake.stop()

    def test_a_type_in_two_systems_stays_failed_precondition(self):
        a, b, c = self.start("a"), self.start("b"), self.start("c")
        h = host(a, "host-a")
        self.procs.insert(3, h)
        c.wait_err(loaded_from(c, a))
        self.assertEqual(stub_add(c, 1), '{"total": "1"}')
        # Another system's host of "Counter" on B: through C (no host),
        # the plain call cannot tell which system is meant.
        h2 = host(b, "host-other", "--system", "other-system")
        self.procs.insert(3, h2)
        # The view shows both systems a heartbeat or so later.
        end = time.monotonic() + WAIT
        while True:
            # Counted before the call: a view applied while it ran is not
            # waited for again (none may come after it).
            views = c.count_err(r"cluster: view \d+")
            out = stub_add(c, 1)
            if out.startswith("error FAILED_PRECONDITION"):
                break
            self.assertTrue(out.startswith('{"total"'), out)
            self.assertLess(time.monotonic(), end, out)
            c.wait_count(r"cluster: view \d+", views + 1)
        self.assertIn("spawn-system", out)
        self.assertIn("other-system", out)


if __name__ == "__main__":
    unittest.main()
