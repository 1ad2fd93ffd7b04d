#!/usr/bin/python3
"""deploy_test.py - the deployment files match the gateway's real options.

deploy/kubernetes/*.yaml (parsed with PyYAML) and deploy/systemd/ are
checked against the gateway that was built, not against a list kept here:

  * every flag they pass is one `spawn-gateway --help` documents (so a
    renamed flag fails this test), with a value exactly when it takes one;
  * every SPAWN_* variable they set is read by gateway/config.c and named
    in --help;
  * every container port is a port a listen flag binds, and every listen
    port is declared; Services target declared ports; --advertise uses a
    --listen port;
  * the probes use the grpc probe type on a declared port that is served
    in plaintext (the kubelet's grpc probes speak no TLS);
  * the stop timeouts cover --drain + --flush-timeout + --persist-drain;
  * the systemd unit passes `systemd-analyze verify`;
  * and then each is RUN: a gateway started with the Deployment's arguments
    and environment (the files its volumes mount written to a temp dir: the
    ConfigMap's access policy as it is, TLS files of the tests/tls/mkcerts.sh
    CA for a member named as the policy's peers and --peer-tls-server-name,
    the Secret's values pointed at the fixture's PostgreSQL) must answer
    each probe's grpc.health.v1 Check SERVING, asked by a third-party
    client (@grpc/grpc-js, tests/deploy/health_check.js); the same for the
    unit's ExecStart with its example environment file; both then stop on
    SIGTERM with exit 0.

Needs the PostgreSQL server of the spawn_db ctest fixture
(SPAWN_TEST_POSTGRES_URL; tests/store/with-db.sh) and FAILS without it.
"""
import configparser
import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

SRC = os.environ.get("SPAWN_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SPAWN_BUILD_DIR") or os.path.join(SRC, "build")
GW = os.path.join(BUILD, "gateway", "spawn-gateway")
K8S = os.path.join(SRC, "deploy", "kubernetes")
SYSTEMD = os.path.join(SRC, "deploy", "systemd")
HEALTH_JS = os.path.join(SRC, "tests", "deploy", "health_check.js")

LISTEN_FLAGS = ("--listen", "--host-listen", "--admin-listen", "--health-listen", "--http")
#: flags whose value is a file the deployment provides
FILE_FLAGS = ("--tls-cert", "--tls-key", "--tls-client-ca", "--access")


def gateway_help():
    """The flags of --help with whether each takes a value, and the SPAWN_*
    variables --help names."""
    out = subprocess.run([GW, "--help"], capture_output=True, text=True, check=True).stdout
    flags = {}
    # An option's own line: two spaces, the flag, its METAVAR if it takes one.
    for m in re.finditer(r"^  (?:-\w, )?(--[a-z][a-z0-9-]*)( [A-Z][A-Z:/_]*)?", out, re.M):
        flags.setdefault(m.group(1), bool(m.group(2)))
    return flags, set(re.findall(r"SPAWN_[A-Z0-9_]+", out))


def config_env():
    """The SPAWN_* names gateway/config.c reads."""
    with open(os.path.join(SRC, "gateway", "config.c")) as f:
        return set(re.findall(r'"(SPAWN_[A-Z0-9_]+)"', f.read()))


FLAGS, HELP_ENV = gateway_help()
CONFIG_ENV = config_env()


def parse_args(args):
    """[(flag, value or None)] of an argument list, "--f=v" and "--f v"
    forms; asserts every flag is documented and takes a value exactly
    when --help says so."""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--"):
            raise AssertionError(f"argument {a!r} is not a flag")
        flag, eq, val = a.partition("=")
        if flag not in FLAGS:
            raise AssertionError(f"{flag} is not a flag of spawn-gateway --help")
        if FLAGS[flag] and not eq:
            if i + 1 >= len(args):
                raise AssertionError(f"{flag} needs a value")
            i += 1
            val = args[i]
        elif not FLAGS[flag] and eq:
            raise AssertionError(f"{flag} takes no value")
        out.append((flag, val if FLAGS[flag] else None))
        i += 1
    return out


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def check_env_name(name, where):
    assert name in CONFIG_ENV, f"{where}: {name} is not read by gateway/config.c"
    assert name in HELP_ENV, f"{where}: {name} is not in spawn-gateway --help"


def free_port():
    """A loopback port nobody listens on now (for --advertise, which must be
    known before the gateway binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drain_budget_s(flags):
    """--drain + --flush-timeout + --persist-drain, in seconds (defaults
    from --help's defaults of config.c: 5000, 30000, 10000)."""
    ms = {"--drain": 5000, "--flush-timeout": 30000, "--persist-drain": 10000}
    for f, v in flags:
        if f in ms:
            ms[f] = int(v)
    return sum(ms.values()) / 1000.0


def health(target, service, wait_ms=0):
    """The ServingStatus a third-party client gets from Check."""
    r = subprocess.run(["node", HEALTH_JS, target, service, str(wait_ms)], capture_output=True,
                       text=True, timeout=wait_ms / 1000 + 30)
    return (r.stdout.strip() or r.stderr.strip()).splitlines()[-1]


class Gateway:
    """A gateway process with adapted arguments; its stdout's listening lines."""

    def __init__(self, argv, env, log):
        self.log = log
        with open(log, "w") as err:
            self.p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err,
                                      text=True)
        self.listening = []

    def wait_listening(self, n, timeout=30):
        end = time.monotonic() + timeout
        while len(self.listening) < n:
            line = self.p.stdout.readline()
            if not line:
                raise AssertionError(f"the gateway exited ({self.p.wait()}): {self.tail()}")
            if line.startswith("listening "):
                self.listening.append(line.split())
            if time.monotonic() > end:
                raise AssertionError("no listening lines in time: " + self.tail())

    def tail(self):
        with open(self.log) as f:
            return "".join(f.readlines()[-15:])

    def stop(self, timeout=60):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("the gateway did not stop on SIGTERM: " + self.tail())
        assert rc == 0, f"the gateway exited {rc} on SIGTERM: {self.tail()}"

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.p.stdout.close()


class World:
    """A temp dir, the test PKI, a fresh schema on the fixture's PostgreSQL."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="deploy_test.")
        self.certs = os.path.join(self.dir, "certs")
        subprocess.run(["bash", os.path.join(SRC, "tests", "tls", "mkcerts.sh"), self.certs],
                       check=True, capture_output=True)
        server = os.environ.get("SPAWN_TEST_POSTGRES_URL")
        assert server, ("SPAWN_TEST_POSTGRES_URL is not set: run under tests/store/with-db.sh "
                        "with the spawn_db fixture (scripts/db-start.sh)")
        self.server = server
        self.schema = f"deploy_{os.getpid()}_{int(time.time() * 1000) % 100000000}"
        self.psql(f"CREATE SCHEMA {self.schema}")
        self.url = server + ("&" if "?" in server else "?") + \
            f"options=-csearch_path%3D{self.schema}"
        self.key = subprocess.run(["openssl", "rand", "-base64", "32"], capture_output=True,
                                  text=True, check=True).stdout.strip()

    def member_cert(self, policy_text, server_name):
        """Issues member-chain.pem and member.key with the test CA, as
        docs/deploy.md tells an operator to: the identities of the policy's
        principals with peer: true, the --peer-tls-server-name (when given),
        localhost; server and client auth. A member whose own certificate
        is no peer of its policy does not start, so the run below checks
        that the policy, the flag and the certificate fit."""
        sans = []
        for p in yaml.safe_load(policy_text)["principals"]:
            if p.get("peer") is True:
                for ident in p.get("identities", []):
                    kind, _, value = ident.partition(":")
                    sans.append(("URI:" if kind == "uri" else "DNS:") + value)
        assert sans, "the access policy names no principal with peer: true"
        if server_name:
            sans.append("DNS:" + server_name)
        sans += ["DNS:localhost", "IP:127.0.0.1"]
        c = self.certs
        key, csr, pem = (os.path.join(c, "member" + x) for x in (".key", ".csr", ".pem"))
        ext = os.path.join(c, "member.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={','.join(sans)}\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n"
                    "basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n")
        for cmd in (["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                     "-out", key],
                    ["openssl", "req", "-new", "-key", key, "-subj", "/CN=member", "-out", csr],
                    ["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(c, "ca.pem"),
                     "-CAkey", os.path.join(c, "ca.key"), "-CAcreateserial", "-days", "2",
                     "-sha256", "-extfile", ext, "-out", pem]):
            subprocess.run(cmd, check=True, capture_output=True)
        with open(os.path.join(c, "member-chain.pem"), "w") as out:
            for part in (pem, os.path.join(c, "ca.pem")):
                with open(part) as f:
                    out.write(f.read())

    def psql(self, sql):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.server, "-c", sql],
                       check=True, capture_output=True)

    def close(self):
        try:
            self.psql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def node_ready():
    """sdk/node's dependencies (@grpc/grpc-js, @grpc/proto-loader) from its
    lockfile, under its test lock (tests/golden/node_sdk.sh)."""
    sdk = os.path.join(SRC, "sdk", "node")
    subprocess.run(["flock", os.path.join(sdk, ".test.lock"), "bash", "-c",
                    f'. "{SRC}/tests/golden/node_sdk.sh" && node_sdk_ready "{sdk}"'],
                   check=True, capture_output=True)


def load_k8s():
    docs = []
    for name in sorted(os.listdir(K8S)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(K8S, name)) as f:
                docs += [(name, d) for d in yaml.safe_load_all(f) if d]
    return docs


class Kubernetes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = load_k8s()
        kinds = [d["kind"] for _, d in cls.docs]
        workloads = [d for _, d in cls.docs if d["kind"] in ("Deployment", "StatefulSet")]
        assert len(workloads) == 1, f"one gateway Deployment or StatefulSet, found {kinds}"
        cls.workload = workloads[0]
        cls.pod = cls.workload["spec"]["template"]["spec"]
        cls.pod_meta = cls.workload["spec"]["template"]["metadata"]
        (cls.c,) = [c for c in cls.pod["containers"] if c["name"] == "gateway"]
        cls.flags = parse_args(cls.c.get("command", [])[1:] + cls.c.get("args", []))
        cls.ports = {p["name"]: p["containerPort"] for p in cls.c["ports"]}

    def of_kind(self, kind):
        return [d for _, d in self.docs if d["kind"] == kind]

    def test_every_document_has_a_kind_a_name_and_labels(self):
        for name, d in self.docs:
            self.assertIn("apiVersion", d, name)
            self.assertTrue(d["metadata"]["name"], name)
            self.assertEqual(d["metadata"]["labels"]["app.kubernetes.io/name"], "spawn-gateway")
        self.assertEqual(self.workload["spec"]["replicas"], 3)
        sel = self.workload["spec"]["selector"]["matchLabels"]
        labels = self.workload["spec"]["template"]["metadata"]["labels"]
        self.assertLessEqual(sel.items(), labels.items())

    def test_ports_match_the_listen_flags(self):
        listen = {port_of(v) for f, v in self.flags if f in LISTEN_FLAGS}
        self.assertEqual(set(self.ports.values()), listen,
                         "every containerPort is bound by a listen flag, and back")
        adv = [v for f, v in self.flags if f == "--advertise"]
        self.assertEqual(len(adv), 1, "a cluster member advertises one address")
        self.assertTrue(adv[0].startswith("$(POD_IP):"), adv[0])
        self.assertIn(port_of(adv[0]), {port_of(v) for f, v in self.flags if f == "--listen"},
                      "peers and clients reach the advertised port: a --listen port")
        env = {e["name"] for e in self.c["env"]}
        self.assertIn("POD_IP", env, "$(POD_IP) needs the downward API variable")

    def test_services_target_declared_ports(self):
        services = self.of_kind("Service")
        self.assertEqual(len(services), 2, "a Service and a headless Service")
        self.assertEqual(sum(1 for s in services if s["spec"].get("clusterIP") == "None"), 1)
        labels = self.workload["spec"]["template"]["metadata"]["labels"]
        for s in services:
            self.assertLessEqual(s["spec"]["selector"].items(), labels.items())
            for p in s["spec"]["ports"]:
                t = p.get("targetPort", p["port"])
                self.assertTrue(t in self.ports or t in self.ports.values(),
                                f"{s['metadata']['name']}: targetPort {t} is not declared")

    def test_probes_are_grpc_on_a_plaintext_health_port(self):
        tls = any(f == "--tls-cert" for f, _ in self.flags)
        health_ports = {port_of(v) for f, v in self.flags if f == "--health-listen"}
        for kind in ("readinessProbe", "livenessProbe"):
            probe = self.c[kind]["grpc"]
            self.assertIn(probe["port"], self.ports.values(), kind)
            if tls:
                self.assertIn(probe["port"], health_ports,
                              f"{kind}: with TLS, the kubelet's grpc probe needs --health-listen")
            self.assertIn("service", probe, kind)

    def test_environment_and_files_are_the_gateways(self):
        for e in self.c["env"]:
            if e["name"].startswith("SPAWN_"):
                check_env_name(e["name"], "the Deployment")
        names = {e["name"] for e in self.c["env"]}
        self.assertIn("SPAWN_STATESTORE_URL", names)
        ref = [e for e in self.c["env"] if e["name"] == "SPAWN_STATESTORE_URL"][0]
        self.assertIn("secretKeyRef", ref["valueFrom"], "the database URL comes from a Secret")
        secrets = {d["metadata"]["name"]: d for d in self.of_kind("Secret")}
        for e in self.c["env"]:
            sk = e.get("valueFrom", {}).get("secretKeyRef")
            if sk:
                self.assertIn(sk["key"], secrets[sk["name"]]["stringData"], e["name"])
        mounts = {m["mountPath"] for m in self.c["volumeMounts"]}
        for f, v in self.flags:
            if f in FILE_FLAGS:
                self.assertIn(os.path.dirname(v), mounts, f"{f} {v} is not in a mounted volume")

    def test_termination_grace_covers_the_drain(self):
        self.assertGreater(self.pod["terminationGracePeriodSeconds"], drain_budget_s(self.flags))

    def test_the_deployment_runs_and_its_probes_answer_serving(self):
        node_ready()
        w = World()
        gw = None
        try:
            files = self.mount_volumes(w)
            remap = {}
            argv = [GW]
            for f, v in self.flags:
                if f in LISTEN_FLAGS:
                    p = remap.setdefault(port_of(v), free_port())
                    v = f"127.0.0.1:{p}"
                elif f == "--advertise":
                    v = f"127.0.0.1:{remap.setdefault(port_of(v), free_port())}"
                elif f in FILE_FLAGS:
                    v = files[v]
                argv += [f] if v is None else [f, v]
            env = {k: v for k, v in os.environ.items() if not k.startswith("SPAWN_")}
            for e in self.c["env"]:
                if "value" in e:
                    env[e["name"]] = e["value"]
                elif e["name"] == "SPAWN_STATESTORE_URL":
                    env[e["name"]] = w.url
                elif e["name"] == "SPAWN_STATESTORE_KEY":
                    env[e["name"]] = w.key
                elif "fieldRef" in e.get("valueFrom", {}):
                    env[e["name"]] = "127.0.0.1"
                else:
                    self.fail(f"no value for {e['name']} in the test")
            gw = Gateway(argv, env, os.path.join(w.dir, "gw.log"))
            gw.wait_listening(sum(1 for f, _ in self.flags if f in LISTEN_FLAGS))
            for kind in ("readinessProbe", "livenessProbe"):
                probe = self.c[kind]["grpc"]
                target = f"127.0.0.1:{remap[probe['port']]}"
                got = health(target, probe.get("service", ""), 30000)
                self.assertEqual(got, "SERVING",
                                 f"{kind} {probe}: {got}; the gateway's log: {gw.tail()}")
            # The scrape annotations name a port the gateway serves /metrics
            # on, over HTTPS verified by the deployment's CA.
            ann = self.pod_meta.get("annotations", {})
            self.assertEqual(ann.get("prometheus.io/scrape"), "true")
            port = int(ann["prometheus.io/port"])
            self.assertIn(port, [port_of(v) for f, v in self.flags if f == "--http"])
            ctx = ssl.create_default_context(cafile=os.path.join(w.certs, "ca.pem"))
            ctx.check_hostname = False  # the member's name is not 127.0.0.1
            c = http.client.HTTPSConnection("127.0.0.1", remap[port], timeout=10, context=ctx)
            c.request("GET", ann.get("prometheus.io/path", "/metrics"))
            r = c.getresponse()
            body = r.read().decode()
            c.close()
            self.assertEqual(ann.get("prometheus.io/scheme"), "https")
            self.assertEqual(r.status, 200, body[:300])
            self.assertIn("spawn_ready", body)
            gw.stop()
        finally:
            if gw:
                gw.kill()
            w.close()

    def mount_volumes(self, w):
        """Writes what the container's volumes mount (the ConfigMap's data as
        it is, TLS files of the test PKI under the Secret's key names) into
        w.dir; returns {path in the container: path here}."""
        pki = {"tls.crt": "member-chain.pem", "tls.key": "member.key", "ca.crt": "ca.pem"}
        vols = {v["name"]: v for v in self.pod["volumes"]}
        cms = {d["metadata"]["name"]: d for d in self.of_kind("ConfigMap")}
        (policy,) = [t for d in cms.values() for k, t in d["data"].items() if k == "access.yaml"]
        names = [v for f, v in self.flags if f == "--peer-tls-server-name"]
        w.member_cert(policy, names[0] if names else None)
        files = {}
        for m in self.c["volumeMounts"]:
            here = os.path.join(w.dir, "mnt", m["name"])
            os.makedirs(here)
            v = vols[m["name"]]
            if "configMap" in v:
                for k, text in cms[v["configMap"]["name"]]["data"].items():
                    with open(os.path.join(here, k), "w") as f:
                        f.write(text)
                    files[os.path.join(m["mountPath"], k)] = os.path.join(here, k)
            elif "secret" in v:
                for k, src in pki.items():
                    shutil.copy(os.path.join(w.certs, src), os.path.join(here, k))
                    files[os.path.join(m["mountPath"], k)] = os.path.join(here, k)
        return files


def load_unit():
    cp = configparser.RawConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(os.path.join(SYSTEMD, "spawn-gateway.service"))
    return cp


def load_env_file():
    env = {}
    with open(os.path.join(SYSTEMD, "spawn-gateway.env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env[k] = v
    return env


class Systemd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.unit = load_unit()
        cls.exec = shlex.split(cls.unit["Service"]["ExecStart"])
        cls.flags = parse_args(cls.exec[1:])
        cls.env = load_env_file()

    def test_flags_and_environment_are_the_gateways(self):
        self.assertTrue(self.exec[0].endswith("/spawn-gateway"))
        for k in self.env:
            check_env_name(k, "spawn-gateway.env")
        self.assertTrue(any(f == "--health-listen" for f, _ in self.flags))

    def test_stop_reload_and_hardening(self):
        s = self.unit["Service"]
        self.assertGreater(int(s["TimeoutStopSec"]), drain_budget_s(self.flags))
        self.assertEqual(s["ExecReload"], "/bin/kill -HUP $MAINPID")
        self.assertEqual(s["NoNewPrivileges"], "yes")
        self.assertEqual(s["ProtectSystem"], "strict")
        self.assertTrue(s.get("DynamicUser") == "yes" or s.get("User"))

    def test_systemd_analyze_verify_accepts_the_unit(self):
        exe = shutil.which("systemd-analyze")
        self.assertIsNotNone(exe, "systemd-analyze is missing (systemd: scripts/install-deps.sh)")
        with tempfile.TemporaryDirectory() as d:
            env = os.path.join(d, "gateway.env")
            open(env, "w").close()
            with open(os.path.join(SYSTEMD, "spawn-gateway.service")) as f:
                text = f.read()
            # The binary and the environment file where verify can see them.
            text = text.replace("/usr/local/bin/spawn-gateway", GW)
            text = text.replace("EnvironmentFile=/etc/spawn/gateway.env", f"EnvironmentFile={env}")
            unit = os.path.join(d, "spawn-gateway.service")
            with open(unit, "w") as f:
                f.write(text)
            r = subprocess.run([exe, "verify", unit], capture_output=True, text=True, cwd=d)
            out = (r.stdout + r.stderr).strip()
            self.assertEqual(r.returncode, 0, out)
            self.assertNotIn("spawn-gateway.service:", out, out)

    def test_the_unit_runs_and_answers_health_serving(self):
        node_ready()
        w = World()
        gw = None
        try:
            with open(os.path.join(K8S, "access.yaml")) as f:
                policy = yaml.safe_load(f)["data"]["access.yaml"]
            w.member_cert(policy, None)
            files = {"/etc/spawn/access.yaml": os.path.join(w.dir, "access.yaml"),
                     "/etc/spawn/tls/server.pem": os.path.join(w.certs, "member-chain.pem"),
                     "/etc/spawn/tls/server.key": os.path.join(w.certs, "member.key"),
                     "/etc/spawn/tls/ca.pem": os.path.join(w.certs, "ca.pem")}
            with open(files["/etc/spawn/access.yaml"], "w") as f:
                f.write(policy)
            remap, argv = {}, [GW]
            for f, v in self.flags:
                if f in LISTEN_FLAGS:
                    v = f"127.0.0.1:{remap.setdefault(port_of(v), free_port())}"
                elif f in FILE_FLAGS:
                    v = files[v]
                argv += [f] if v is None else [f, v]
            env = {k: v for k, v in os.environ.items() if not k.startswith("SPAWN_")}
            for k, v in self.env.items():
                if k == "SPAWN_STATESTORE_URL":
                    v = w.url
                elif k == "SPAWN_STATESTORE_KEY":
                    v = w.key
                elif k == "SPAWN_ADVERTISE":
                    listen = [port_of(a) for f, a in self.flags if f == "--listen"]
                    v = f"127.0.0.1:{remap[listen[0]]}"
                elif v in files:
                    v = files[v]
                env[k] = v
            gw = Gateway(argv, env, os.path.join(w.dir, "gw.log"))
            gw.wait_listening(sum(1 for f, _ in self.flags if f in LISTEN_FLAGS))
            hl = [v for f, v in self.flags if f == "--health-listen"][0]
            target = f"127.0.0.1:{remap[port_of(hl)]}"
            for service in ("", "spawn.gateway.v1.ActorGateway", "grpc.health.v1.Health"):
                got = health(target, service, 30000)
                self.assertEqual(got, "SERVING", f"Check {service!r}: {got}; log: {gw.tail()}")
            gw.stop()
        finally:
            if gw:
                gw.kill()
            w.close()


if __name__ == "__main__":
    unittest.main()
