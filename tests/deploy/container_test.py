#!/usr/bin/python3
"""container_test.py - deploy/container/Dockerfile against the gateway that
was built. No container engine runs here, so the test checks what an image
build would get wrong, with the tools a Debian machine has:

  * every shared library the built gateway loads (ldd) belongs to a Debian
    package (dpkg -S) that the runtime stage installs, or that those
    packages pull in (apt-cache depends --recurse): a library added to the
    build without its runtime package fails here, not in production;
  * the build stage installs only packages scripts/install-deps.sh knows,
    and builds with tests and benchmarks off;
  * the image runs as a non-root user, EXPOSEs exactly the ports its
    listen flags bind, and every flag of ENTRYPOINT/CMD is one that
    `spawn-gateway --help` documents;
  * then the CMD is RUN against the built binary (ports moved to free ones,
    /etc/spawn and the state directory to a temp dir, TLS files from
    tests/tls/mkcerts.sh, a policy file): it must say ready, and stop on
    SIGTERM with exit 0; and without the mounted files it must exit 2.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

SRC = os.environ.get("SPAWN_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SPAWN_BUILD_DIR") or os.path.join(SRC, "build")
GW = os.path.join(BUILD, "gateway", "spawn-gateway")
DOCKERFILE = os.path.join(SRC, "deploy", "container", "Dockerfile")


def instructions():
    """[(INSTRUCTION, argument text)] of the Dockerfile, continuation lines
    joined, comments dropped."""
    out, cur = [], ""
    with open(DOCKERFILE) as f:
        for line in f:
            if line.lstrip().startswith("#") and not cur:
                continue
            line = line.rstrip("\n")
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            if cur.strip():
                word, _, rest = cur.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def stages():
    """The instructions of each stage, in order."""
    st = []
    for ins, arg in instructions():
        if ins == "FROM":
            st.append([])
        st[-1].append((ins, arg))
    return st


def apt_packages(stage):
    pkgs = []
    for ins, arg in stage:
        if ins != "RUN" or "apt-get install" not in arg:
            continue
        cmd = arg.split("apt-get install", 1)[1].split("&&")[0]
        pkgs += [w for w in cmd.split() if not w.startswith("-")]
    return pkgs


def exec_form(stage, ins):
    for i, arg in stage:
        if i == ins:
            return json.loads(arg)
    return []


def gateway_flags():
    out = subprocess.run([GW, "--help"], capture_output=True, text=True, check=True).stdout
    flags = {}
    for m in re.finditer(r"^  (?:-\w, )?(--[a-z][a-z0-9-]*)( [A-Z][A-Z:/_]*)?", out, re.M):
        flags.setdefault(m.group(1), bool(m.group(2)))
    return flags


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pairs(args):
    """(flag, value or None) of an argument list."""
    flags = gateway_flags()
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and "=" in a:
            out.append(tuple(a.split("=", 1)))
        elif flags.get(a):
            out.append((a, args[i + 1]))
            i += 1
        else:
            out.append((a, None))
        i += 1
    return out


class Container(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.build, cls.runtime = stages()

    def test_every_library_the_gateway_loads_comes_from_the_runtime_stage(self):
        ldd = subprocess.run(["ldd", GW], capture_output=True, text=True, check=True).stdout
        libs = [m.group(1) for m in re.finditer(r"=> (/\S+)", ldd)]
        self.assertGreater(len(libs), 5, ldd)
        needed = {}
        for lib in libs:
            r = subprocess.run(["dpkg", "-S", os.path.realpath(lib)], capture_output=True,
                               text=True)
            if r.returncode != 0:
                r = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, f"{lib}: no Debian package owns it: {r.stderr}")
            needed[r.stdout.split(":")[0]] = lib
        # A sanitizer build (make test's ASan stage) loads the sanitizer
        # runtimes, and gcc links libatomic into it too; the image is a
        # Release build without either (a plain build here loads neither).
        if any(re.match(r"lib(asan|ubsan|tsan|lsan)\d", p) for p in needed):
            needed = {p: l for p, l in needed.items()
                      if not re.match(r"lib(asan|ubsan|tsan|lsan)\d|libatomic\d", p)}
        installed = apt_packages(self.runtime)
        self.assertTrue(installed, "the runtime stage installs nothing")
        closure = subprocess.run(
            ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
             "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + installed,
            capture_output=True, text=True, check=True).stdout
        have = set(installed) | {m.group(1) for m in re.finditer(
            r"^(?:  \|?Depends: |  PreDepends: )<?([a-z0-9][a-z0-9.+-]*)", closure, re.M)}
        have |= {l.strip() for l in closure.splitlines() if l and not l.startswith(" ")}
        missing = {p: lib for p, lib in needed.items() if p.split(":")[0] not in have}
        self.assertEqual(missing, {}, "libraries whose package the runtime stage does not "
                         "install (add the package to deploy/container/Dockerfile)")
        print(f"container_test: {len(libs)} libraries from {len(needed)} packages, all "
              f"from the runtime stage's {len(installed)}", file=sys.stderr)

    def test_the_build_stage_uses_the_known_packages_and_builds_only_the_daemon(self):
        with open(os.path.join(SRC, "scripts", "install-deps.sh")) as f:
            known = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", f.read()))
        pkgs = apt_packages(self.build)
        self.assertTrue(pkgs)
        self.assertEqual([p for p in pkgs if p not in known], [],
                         "build packages scripts/install-deps.sh does not install")
        runs = " ".join(a for i, a in self.build if i == "RUN")
        for want in ("-DSPAWN_TESTS=OFF", "-DSPAWN_BENCH=OFF", "--target spawn-gateway"):
            self.assertIn(want, runs)

    def test_the_image_runs_unprivileged_with_the_gateways_own_flags_and_ports(self):
        user = [a for i, a in self.runtime if i == "USER"]
        self.assertTrue(user and not user[-1].startswith(("0", "root")), user)
        entry = exec_form(self.runtime, "ENTRYPOINT")
        self.assertEqual(entry, ["/usr/local/bin/spawn-gateway"])
        flags = gateway_flags()
        args = pairs(exec_form(self.runtime, "CMD"))
        for flag, value in args:
            self.assertIn(flag, flags, f"CMD flag {flag} is not in spawn-gateway --help")
            self.assertEqual(flags[flag], value is not None, f"{flag}: value mismatch")
        listen = {int(v.rsplit(":", 1)[1]) for f, v in args
                  if f in ("--listen", "--health-listen", "--host-listen", "--admin-listen")}
        exposed = {int(p.split("/")[0]) for i, a in self.runtime if i == "EXPOSE"
                   for p in a.split()}
        self.assertEqual(listen, exposed)

    def _run(self, args, tmp):
        return subprocess.Popen([GW] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=tmp)

    def test_the_cmd_serves_with_its_files_and_refuses_without_them(self):
        tmp = tempfile.mkdtemp(prefix="spawn-container-")
        try:
            pki = os.path.join(tmp, "pki")
            subprocess.run([os.path.join(SRC, "tests", "tls", "mkcerts.sh"), pki], check=True)
            etc = os.path.join(tmp, "etc", "spawn")
            os.makedirs(os.path.join(etc, "tls"))
            shutil.copy(os.path.join(pki, "server.pem"), os.path.join(etc, "tls", "tls.crt"))
            shutil.copy(os.path.join(pki, "server.key"), os.path.join(etc, "tls", "tls.key"))
            with open(os.path.join(etc, "access.yaml"), "w") as f:
                f.write("principals:\n  - name: ops\n    identities: [dns:admin.spawn.test]\n"
                        "    admin: true\n")
            state = os.path.join(tmp, "state")
            os.makedirs(state)
            args = []
            for a in exec_form(self.runtime, "CMD"):
                a = a.replace("/etc/spawn", etc).replace("/var/lib/spawn-gateway", state)
                a = re.sub(r"^0\.0\.0\.0:\d+$", lambda m: f"127.0.0.1:{free_port()}", a)
                args.append(a)
            p = self._run(args, tmp)
            lines = []
            for line in p.stdout:
                lines.append(line)
                if "spawn-gateway ready" in line:
                    break
            self.assertTrue(any("spawn-gateway ready" in l for l in lines), "".join(lines))
            for l in lines:  # --log-format json: every log line is an object
                if l.startswith("{"):
                    json.loads(l)
            p.send_signal(signal.SIGTERM)
            rest = p.communicate(timeout=60)[0]
            self.assertEqual(p.returncode, 0, rest)
            # The same CMD without the mounted files: exit 2, naming the file.
            shutil.rmtree(etc)
            q = self._run(args, tmp)
            out = q.communicate(timeout=60)[0]
            self.assertEqual(q.returncode, 2, out)
            self.assertIn("tls.crt", out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
