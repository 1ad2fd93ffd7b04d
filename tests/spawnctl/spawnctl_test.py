#!/usr/bin/python3
"""spawnctl_test.py - the spawnctl tool driven as a user would
(docs/spawnctl.md): the binary against a real gateway and a real host
(examples/incrementor-gen's C host, which sends its contract), on loopback
with ephemeral ports and readiness from the processes' own lines. SQLite
statestores: no database server (the cluster cases are in
spawnctl_cluster_test.py).

  - every command, in table and JSON output: invoke (JSON through server
    reflection), get-state, list systems|actors|hosts|instances (paged),
    revisions, restore, keys status, members, schedules list|cancel, forget;
  - exit codes: NOT_FOUND 5, UNAVAILABLE 14, PERMISSION_DENIED 7,
    UNAUTHENTICATED 16, INVALID_ARGUMENT 3, a bad command line 64, JSON that
    is not the input type 65;
  - over mutual TLS with a bearer token (--ca --cert --key --token-file), on
    a gateway with --access: admin allowed, a client refused;
  - hostile input to the new Admin RPCs (raw gRPC: page sizes, tokens,
    kinds, strings that are not UTF-8 or hold control characters, schedule
    ids): each a clear INVALID_ARGUMENT, the gateway serving on.
"""
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BUILD = os.environ["SPAWN_BUILD_DIR"]
SRC = os.environ["SPAWN_SOURCE_DIR"]
GW = os.path.join(BUILD, "gateway", "spawn-gateway")
CTL = os.path.join(BUILD, "sdk", "c", "spawnctl", "spawnctl")
C_HOST = os.path.join(BUILD, "examples", "incrementor-gen", "incrementor-gen-host")
HANDWRITTEN_HOST = os.path.join(BUILD, "examples", "incrementor-host")
MKCERTS = os.path.join(SRC, "tests", "tls", "mkcerts.sh")

TMP = None


def setUpModule():
    global TMP
    for tool in (GW, CTL, C_HOST, HANDWRITTEN_HOST):
        if not os.access(tool, os.X_OK):
            raise AssertionError(f"{tool} is missing (the build)")
    TMP = tempfile.mkdtemp(prefix="spawnctl-test-")


def tearDownModule():
    if TMP:
        subprocess.run(["rm", "-rf", TMP])


class Proc:
    """A process whose stdout lines are read on a thread (readiness)."""

    def __init__(self, argv, log, env=None):
        self.log = log
        self.lines = []
        self.cv = threading.Condition()
        self.err = open(log, "a")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                  env=env)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)
            self.cv.notify_all()

    def wait_line(self, pred, timeout=60):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for ln in self.lines:
                    if ln is None:
                        raise AssertionError(f"exited ({self.p.wait()}): {self.tail()}")
                    if pred(ln):
                        return ln
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such line within {timeout} s: {self.tail()}")
                self.cv.wait(left)

    def tail(self):
        with open(self.log) as f:
            return f.read()[-3000:]

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.t.join(10)
        self.p.stdout.close()
        self.err.close()
        return self.p.returncode


class Gateway(Proc):
    def __init__(self, name, *extra, env=None):
        d = os.path.join(TMP, name)
        os.makedirs(d, exist_ok=True)
        super().__init__([GW, "--listen", "127.0.0.1:0", "--statestore",
                          f"sqlite://{d}/state.db", "--store-history", "10", *extra],
                         os.path.join(d, "gw.log"), env)
        port = self.wait_line(lambda ln: ln.startswith("listening ")).split()[2]
        self.target = f"127.0.0.1:{port}"
        self.dir = d

    def stop(self):
        running = self.p.poll() is None
        rc = super().stop()
        if running and rc != 0:
            raise AssertionError(f"the gateway exited {rc}: {self.tail()}")


def host(gw, *extra, env=None):
    h = Proc([C_HOST, "--gateway", gw.target, "--checkpoint", *extra],
             os.path.join(gw.dir, "host.log"), env)
    h.wait_line(lambda ln: ln == "registered")
    return h


def ctl(target, *args, opts=()):
    """Runs spawnctl; (exit code, stdout, stderr)."""
    r = subprocess.run([CTL, "--gateway", target, *opts, *args], capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def free_port():
    """A port nobody listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Commands(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway("plain")
        cls.h = host(cls.gw)
        # the contract arrives with the registration: wait until reflection has it
        end = time.monotonic() + 30
        while True:
            rc, out, err = ctl(cls.gw.target, "list", "actors", "--output", "json")
            if rc == 0 and json.loads(out)["items"]:
                break
            if time.monotonic() > end:
                raise AssertionError(f"no actor type listed: {rc} {out} {err}")
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.h.stop()
        cls.gw.stop()

    def ok(self, *args, opts=()):
        rc, out, err = ctl(self.gw.target, *args, opts=opts)
        self.assertEqual(rc, 0, f"spawnctl {' '.join(args)}: {err}")
        return out

    def js(self, *args):
        return json.loads(self.ok(*args, opts=("--output", "json")))

    def test_1_invoke_get_state_revisions_restore(self):
        self.assertEqual(self.js("invoke", "spawn-system", "Incrementor", "Add",
                                 '{"value": 5}'), {"total": "5"})
        self.assertEqual(json.loads(self.ok("invoke", "spawn-system", "Incrementor", "Add",
                                            '{"value": 2}')), {"total": "7"})
        st = self.js("get-state", "spawn-system", "Incrementor")
        self.assertEqual((st["system"], st["actor"], st["state"], st["active"]),
                         ("spawn-system", "Incrementor", {"total": "7"}, True))
        table = self.ok("get-state", "spawn-system", "Incrementor")
        self.assertRegex(table, r"(?m)^state\s+\{\"total\":\"7\"\}$")
        self.assertRegex(table, r"(?m)^active\s+yes$")
        # --checkpoint: each Add saved a revision (kept: --store-history)
        revs = self.js("revisions", "spawn-system", "Incrementor")["revisions"]
        self.assertGreaterEqual(len(revs), 2, revs)
        self.assertEqual(revs, sorted(revs, reverse=True))
        self.assertRegex(self.ok("revisions", "spawn-system", "Incrementor"),
                         r"^REVISION\n(\d+\n){2,}$")
        first = revs[-1]
        old = self.js("get-state", "spawn-system", "Incrementor", "--revision", str(first))
        self.assertEqual(old["state"], {"total": "5"})
        back = self.js("restore", "spawn-system", "Incrementor", str(first))
        self.assertEqual(back["state"], {"total": "5"})
        self.assertEqual(self.js("invoke", "spawn-system", "Incrementor", "Add",
                                 '{"value": 1}'), {"total": "6"})

    def test_2_lists(self):
        self.ok("invoke", "spawn-system", "Incrementor", "Add", '{"value": 0}')
        sy = self.js("list", "systems")
        self.assertEqual(sy["kind"], "systems")
        self.assertEqual([(i["system"], i["actor_types"], i["hosts"]) for i in sy["items"]],
                         [("spawn-system", 1, 1)])
        self.assertGreaterEqual(sy["items"][0]["active"], 1)
        ac = self.js("list", "actors")["items"]
        self.assertEqual(len(ac), 1)
        self.assertEqual((ac[0]["actor"], ac[0]["kind"], ac[0]["hosts"], ac[0]["actions"],
                          ac[0]["state_type"]),
                         ("Incrementor", "NAMED", 1, ["Add"], "examples.incrementor.State"))
        ho = self.js("list", "hosts")["items"]
        self.assertEqual(len(ho), 1)
        self.assertEqual(ho[0]["system"], "spawn-system")
        self.assertTrue(ho[0]["peer"].startswith("ipv4:127.0.0.1:"), ho)
        inst = self.js("list", "instances")["items"]
        self.assertIn(("spawn-system", "Incrementor", "Incrementor"),
                      [(i["system"], i["actor"], i["type"]) for i in inst])
        # tables: headings, one row each, no MEMBER column outside a cluster
        t = self.ok("list", "actors")
        self.assertRegex(t, r"^SYSTEM\s+ACTOR\s+KIND\s+HOSTS\s+ACTIONS\s+STATE TYPE\n"
                            r"spawn-system\s+Incrementor\s+NAMED\s+1\s+Add\s+"
                            r"examples\.incrementor\.State\n$")
        self.assertRegex(self.ok("list"), r"^SYSTEM\s+ACTOR TYPES\s+HOSTS\s+ACTIVE\n"
                                          r"spawn-system\s+1\s+1\s+\d+\n$")
        self.assertRegex(self.ok("list", "hosts"), r"^SYSTEM\s+PEER\s+PRINCIPAL\s+IN FLIGHT")
        # --system filters
        self.assertEqual(self.js("list", "actors", "--system", "nope")["items"], [])

    def test_3_list_pages(self):
        # three more systems (the same host binary with --system): pages of
        # one, followed by --page-token, and --all
        hosts = [host(self.gw, "--system", f"sys-{c}") for c in "abc"]
        try:
            want = ["spawn-system", "sys-a", "sys-b", "sys-c"]
            got, token = [], ""
            for _ in range(10):
                args = ["list", "systems", "--page-size", "1"]
                if token:
                    args += ["--page-token", token]
                page = self.js(*args)
                got += [i["system"] for i in page["items"]]
                token = page["next_page_token"]
                if not token:
                    break
            self.assertEqual(got, want)
            self.assertEqual([i["system"] for i in
                              self.js("list", "systems", "--page-size", "3", "--all")["items"]],
                             want)
            t = self.ok("list", "systems", "--page-size", "2")
            self.assertRegex(t, r"\n\(more: --page-token s:[0-9a-f]+\)\n$")
            self.assertEqual(len(self.js("list", "hosts")["items"]), 4)
            self.assertEqual([i["system"] for i in self.js("list", "hosts", "--system",
                                                          "sys-b")["items"]], ["sys-b"])
        finally:
            for h in hosts:
                h.stop()
        # a token of another kind of list is refused
        rc, _, err = ctl(self.gw.target, "list", "actors", "--page-token", "s:00")
        self.assertEqual(rc, 3, err)
        self.assertIn("INVALID_ARGUMENT", err)

    def test_4_schedules(self):
        self.js("invoke", "spawn-system", "Incrementor", "Add", '{"value": 3}', "--delay",
                "3600")
        self.js("invoke", "spawn-system", "Incrementor", "Add", '{"value": 4}', "--delay",
                "7200")
        items = self.js("schedules", "list")["items"]
        self.assertEqual(len(items), 2, items)
        now_ms = time.time() * 1000
        for it in items:
            self.assertEqual((it["system"], it["actor"], it["action"]),
                             ("spawn-system", "Incrementor", "Add"))
            self.assertGreater(it["due_unix_ms"], now_ms + 3000 * 1000)
        # pages of one, with --all
        one = self.js("schedules", "list", "--page-size", "1")
        self.assertEqual(len(one["items"]), 1)
        self.assertNotEqual(one["next_page_token"], "")
        every = self.js("schedules", "list", "--page-size", "1", "--all")
        self.assertEqual([i["id"] for i in every["items"]], [i["id"] for i in items])
        self.assertEqual(self.js("schedules", "list", "--system", "spawn-system", "--actor",
                                 "Incrementor")["items"], items)
        self.assertEqual(self.js("schedules", "list", "--system", "other")["items"], [])
        t = self.ok("schedules", "list")
        self.assertRegex(t, r"^ID\s+DUE \(UTC\)\s+SYSTEM\s+ACTOR\s+ACTION\n")
        due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(items[0]["due_unix_ms"] // 1000))
        self.assertEqual(items[0]["due"], due)
        self.assertIn(f"{items[0]['id']}  {due}  spawn-system", t)
        c = self.js("schedules", "cancel", items[0]["id"])
        self.assertEqual(c["cancelled"]["id"], items[0]["id"])
        rc, _, err = ctl(self.gw.target, "schedules", "cancel", items[0]["id"])
        self.assertEqual(rc, 5, err)
        self.assertIn("NOT_FOUND", err)
        self.assertEqual([i["id"] for i in self.js("schedules", "list")["items"]],
                         [items[1]["id"]])
        self.ok("schedules", "cancel", items[1]["id"])

    def test_5_members_keys(self):
        m = self.js("members")
        self.assertFalse(m["cluster"])
        self.assertEqual(len(m["members"]), 1)
        self.assertEqual((m["members"][0]["address"], m["members"][0]["self"],
                          m["members"][0]["status"], m["members"][0]["served"]),
                         (self.gw.target, True, "active", ["spawn-system/Incrementor"]))
        self.assertRegex(self.ok("members"), r"^ID\s+ADDRESS\s+STATUS\s+SELF\s+SERVED\n")
        k = self.js("keys", "status")
        self.assertEqual((k["enabled"], k["done"], k["members"], k["unanswered"]),
                         (False, False, [], []))
        self.assertRegex(self.ok("keys", "status"), r"(?m)^enabled\s+no$")

    def test_6_errors_and_exit_codes(self):
        t = self.gw.target
        cases = [
            (5, ("get-state", "spawn-system", "Nobody")),
            (5, ("invoke", "spawn-system", "Incrementor", "Nope", "{}")),
            (5, ("invoke", "spawn-system", "Nobody", "Add", "{}")),
            (65, ("invoke", "spawn-system", "Incrementor", "Add", '{"bogus": 1}')),
            (65, ("invoke", "spawn-system", "Incrementor", "Add", "not json")),
            (64, ("list", "everything")),
            (64, ("frobnicate",)),
            (64, ("restore", "spawn-system", "Incrementor", "zero")),
            (64, ("list", "--page-size", "5000")),
            (3, ("schedules", "cancel", "not an id!")),
            (3, ("list", "--page-token", "s:zz")),
        ]
        for code, args in cases:
            with self.subTest(args=args):
                rc, out, err = ctl(t, *args)
                self.assertEqual(rc, code, f"{args}: {out} {err}")
                self.assertTrue(err.startswith("spawnctl: "), err)
        rc, _, err = ctl(f"127.0.0.1:{free_port()}", "members", opts=("--timeout", "5"))
        self.assertEqual(rc, 14, err)
        self.assertIn("UNAVAILABLE", err)

    def test_7_hostile_input_to_the_new_admin_rpcs(self):
        import grpc
        ident = (lambda b: b)
        ch = grpc.insecure_channel(self.gw.target)
        try:
            def call(method, body):
                f = ch.unary_unary(f"/spawn.gateway.v1.Admin/{method}",
                                   request_serializer=ident, response_deserializer=ident)
                try:
                    f(body, timeout=20)
                    return "OK", ""
                except grpc.RpcError as e:
                    return e.code().name, e.details()

            def s(field, data):  # a length-delimited field
                n, v = len(data), b""
                while True:
                    v += bytes([(n & 0x7f) | (0x80 if n > 0x7f else 0)])
                    n >>= 7
                    if not n:
                        break
                return bytes([field << 3 | 2]) + v + data

            bad = [
                ("List", b"\x18\x89\x27", "page_size"),          # page_size 5001
                ("List", b"\x08\x63", "kind"),                   # kind 99
                ("List", s(4, b"zz"), "page_token"),
                ("List", s(4, b"s:000"), "page_token"),          # odd hex
                ("List", s(4, b"s:" + b"00" * 9000), "page_token"),  # over 16384
                ("List", s(2, b"\xff\xfe"), "system"),            # not UTF-8
                ("List", s(2, b"a\x01b"), "system"),               # a control character
                ("List", b"\x12\x05ab", "not a valid"),            # truncated
                ("ListSchedules", b"\x18\x89\x27", "page_size"),
                ("ListSchedules", s(4, b"../x"), "page_token"),
                ("ListSchedules", s(2, b"x"), "actor needs its system"),
                ("ListSchedules", s(1, b"\xc3"), "system"),
                ("CancelSchedule", s(1, b"a b"), "id"),
                ("CancelSchedule", b"", "id"),
                ("CancelSchedule", s(1, b"x" * 40), "id"),
                ("Members", b"\xff", "not a valid"),
            ]
            for method, body, word in bad:
                with self.subTest(method=method, body=body[:20]):
                    code, details = call(method, body)
                    self.assertEqual(code, "INVALID_ARGUMENT", details)
                    self.assertIn(word.lower(), details.lower())
        finally:
            ch.close()
        # the gateway serves on
        self.assertEqual(self.js("members")["members"][0]["self"], True)
        self.assertEqual(self.js("list", "systems")["items"][0]["system"], "spawn-system")


class UnnamedFromDescriptors(unittest.TestCase):
    def test_invoke_an_instance_with_parent(self):
        """An UNNAMED template whose contract the gateway loads with
        --descriptors (its host sends none): invoke --parent creates the
        instance; list instances shows it with its template."""
        d = os.path.join(TMP, "unnamed-desc")
        os.makedirs(d, exist_ok=True)
        subprocess.run(["protoc", f"-I{SRC}/tests/reach", f"-I{SRC}/proto", "-I/usr/include",
                        "--include_imports", f"--descriptor_set_out={d}/unnamed.binpb",
                        "unnamed.proto"], check=True, timeout=60)
        gw = Gateway("unnamed", "--descriptors", d)
        h = Proc([HANDWRITTEN_HOST, "--gateway", gw.target, "--unnamed"],
                 os.path.join(gw.dir, "host.log"))
        try:
            h.wait_line(lambda ln: ln == "registered")
            for value, total in ((3, "3"), (4, "7")):
                rc, out, err = ctl(gw.target, "invoke", "spawn-system", "c1", "Add",
                                   json.dumps({"value": value}), opts=("--parent", "incrementor"))
                self.assertEqual((rc, json.loads(out) if rc == 0 else err), (0, {"total": total}))
            rc, out, err = ctl(gw.target, "list", "instances", "--output", "json")
            self.assertEqual(rc, 0, err)
            self.assertIn(("c1", "incrementor"),
                          [(i["actor"], i["type"]) for i in json.loads(out)["items"]])
            # without --parent the instance's name is no contract's actor
            rc, _, err = ctl(gw.target, "invoke", "spawn-system", "c1", "Add", "{}")
            self.assertEqual(rc, 5, err)
        finally:
            h.stop()
            gw.stop()


class MutualTlsAndToken(unittest.TestCase):
    def test_admin_and_client_over_mtls_with_tokens(self):
        d = os.path.join(TMP, "mtls")
        pki = os.path.join(d, "pki")
        os.makedirs(d, exist_ok=True)
        subprocess.run(["bash", MKCERTS, pki], check=True, timeout=120)
        toks = {n: os.urandom(12).hex() for n in ("host", "admin", "client")}
        h = {n: "sha256:" + hashlib.sha256(t.encode()).hexdigest() for n, t in toks.items()}
        for n, t in toks.items():
            with open(os.path.join(d, f"{n}.token"), "w") as f:
                f.write(t + "\n")
        policy = os.path.join(d, "access.yaml")
        with open(policy, "w") as f:
            f.write(f"""principals:
  - name: host
    tokens: [{h["host"]}]
    host: [spawn-system]
  - name: admin
    tokens: [{h["admin"]}]
    invoke: [{{system: '*'}}]
    admin: true
  - name: client
    tokens: [{h["client"]}]
    invoke:
      - system: spawn-system
""")
        gw = Gateway("mtls", "--access", policy, "--tls-cert", f"{pki}/server.pem",
                     "--tls-key", f"{pki}/server.key", "--tls-client-ca", f"{pki}/ca.pem")
        env = dict(os.environ, SPAWN_TLS_CA=f"{pki}/ca.pem", SPAWN_TLS_CERT=f"{pki}/host.pem",
                   SPAWN_TLS_KEY=f"{pki}/host.key", SPAWN_TOKEN=toks["host"],
                   SPAWN_TLS_SERVER_NAME="localhost")
        hp = host(gw, env=env)
        try:
            def tls(who, cert="client"):
                return ("--ca", f"{pki}/ca.pem", "--cert", f"{pki}/{cert}.pem", "--key",
                        f"{pki}/{cert}.key", "--server-name", "localhost", "--token-file",
                        os.path.join(d, f"{who}.token"), "--output", "json")
            rc, out, err = ctl(gw.target, "invoke", "spawn-system", "Incrementor", "Add",
                               '{"value": 4}', opts=tls("client"))
            self.assertEqual((rc, json.loads(out) if rc == 0 else err), (0, {"total": "4"}))
            rc, out, err = ctl(gw.target, "list", "hosts", opts=tls("admin", "admin"))
            self.assertEqual(rc, 0, err)
            self.assertEqual(json.loads(out)["items"][0]["principal"], "host")
            rc, out, err = ctl(gw.target, "get-state", "spawn-system", "Incrementor",
                               opts=tls("admin", "admin"))
            self.assertEqual((rc, json.loads(out)["state"] if rc == 0 else err),
                             (0, {"total": "4"}))
            # a client is not an admin: PERMISSION_DENIED (7)
            for args in (("list",), ("members",), ("schedules", "list"),
                         ("get-state", "spawn-system", "Incrementor")):
                rc, _, err = ctl(gw.target, *args, opts=tls("client"))
                self.assertEqual(rc, 7, f"{args}: {err}")
                self.assertIn("PERMISSION_DENIED", err)
            # no token: UNAUTHENTICATED (16)
            rc, _, err = ctl(gw.target, "list", opts=(
                "--ca", f"{pki}/ca.pem", "--cert", f"{pki}/client.pem", "--key",
                f"{pki}/client.key", "--server-name", "localhost"))
            self.assertEqual(rc, 16, err)
            # plaintext to a TLS listener: UNAVAILABLE (14)
            rc, _, err = ctl(gw.target, "members", opts=("--timeout", "5"))
            self.assertEqual(rc, 14, err)
        finally:
            hp.stop()
            gw.stop()


if __name__ == "__main__":
    unittest.main()
