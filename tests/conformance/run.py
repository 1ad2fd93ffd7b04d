#!/usr/bin/python3
"""run.py - the conformance matrix: clients in each language invoke actors
hosted in each language, through the real gateway, following one scenario
list (scenarios.json). README.md explains the pieces.

    run.py --gateway BIN --c-host BIN --c-client BIN --prep DIR
           [--go-bin DIR] [--ruby-prep DIR] [--hosts c,py,ts,go,rb]
           [--clients c,py,ts,go,rb]
           [--scenario NAME]...
           [--mtls] [--keep] [--verbose]

For every cell (host language H, client language L), in a fresh temporary
folder: start the gateway on 127.0.0.1:0 with a new SQLite store (read its
"listening ADDR PORT" line), start the host of H (read "registered") and
the client driver of L (read "ready"), then run every scenario: the runner
sends each call to the driver, which makes it through L's generated client,
and compares the outcome with the scenario's expectation. A "restart" step
stops the gateway (SIGTERM, or SIGKILL for a crash) and starts it again on
the same port and store; the host reconnects by itself (the runner reads
its next "registered"). At the end the driver, the host and the gateway
are stopped and must exit 0 (under ASan that includes leak checks).

With --mtls every link is mutual TLS: the runner makes a private PKI once
(tests/tls/mkcerts.sh into a temporary folder), starts the gateway with
--tls-cert/--tls-key/--tls-client-ca, and hands the host its host
certificate and the driver its client certificate through the SDKs'
environment fallbacks (SPAWN_TLS_CA, SPAWN_TLS_CERT, SPAWN_TLS_KEY): the
hosts and drivers themselves are the same programs as without it. A
gateway with access control (--hash-token in its --help) also gets an
--access policy naming the host and the driver by their certificates. Without
--mtls those variables are removed from the children's environment.

Every wait reads a line with a deadline; nothing sleeps. Children die with
the runner (PR_SET_PDEATHSIG). Exit status 0 when every cell passed.

Needs /usr/bin/python3 with python3-protobuf (a dependency of
python3-grpcio): replies are decoded and compared as messages with the
Python modules prepare.sh generated.
"""
import argparse
import base64
import ctypes
import fcntl
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
LANGS = ("c", "py", "ts", "go", "rb")
# Hosts only: "http" serves the contract over Spawn's HTTP/1.1 protocol
# (host_http.py), called back by the gateway's --http side.
HOST_LANGS = LANGS + ("http",)
STATUS = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5, "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
STATUS_NAME = {v: k for k, v in STATUS.items()}
SYSTEM = "conformance"
# The SDKs' TLS and token environment (docs/sdk/*.md).
TLS_ENV = ("SPAWN_TLS_CA", "SPAWN_TLS_CERT", "SPAWN_TLS_KEY", "SPAWN_TLS_SERVER_NAME",
           "SPAWN_TOKEN")
START_TIMEOUT = 60.0      # s: a process's first line (ASan builds start slowly)
STOP_TIMEOUT = 30.0       # s: a process's exit after SIGTERM / QUIT
CALL_TIMEOUT_MS = 10000   # a call's deadline unless the step gives one
# With --mtls on a gateway with access control: the host and the client
# driver are principals known by their certificates' SAN URIs
# (tests/tls/mkcerts.sh), each allowed exactly its role.
ACCESS_POLICY = """\
principals:
  - name: conformance-host
    identities: [uri:spiffe://spawn.test/host]
    host: [%(system)s]
  - name: conformance-client
    identities: [uri:spiffe://spawn.test/client]
    invoke:
      - system: %(system)s
"""


class Failure(Exception):
    """A scenario's expectation was not met."""


class Broken(Exception):
    """The cell cannot go on (a process died, a line did not come)."""


# ---- scenarios -------------------------------------------------------------

def expand(value, i=None, refs=None):
    """A scenario value with its generators and references expanded and, in
    concurrent steps, "{i}", "{i+K}", "{i*K}" replaced (README.md,
    "Values")."""
    refs = refs or {}
    if isinstance(value, dict):
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "$bytes":
                if "size" in arg:
                    data = random.Random(arg.get("seed", 0)).randbytes(arg["size"])
                else:
                    data = bytes(range(*arg["range"]))
                return base64.b64encode(data).decode("ascii")
            if key == "$repeat":
                return expand(arg[0], i, refs) * arg[1]
            if key == "$ref":
                if arg not in refs:
                    raise ValueError("no value %r" % arg)
                return expand(refs[arg], i, refs)
            if key == "$with":
                out = {}
                for part in arg:
                    for k, v in expand(part, i, refs).items():
                        if v is None:
                            out.pop(k, None)
                        else:
                            out[k] = v
                return out
        return {expand(k, i, refs): expand(v, i, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, i, refs) for v in value]
    if isinstance(value, str) and i is not None:
        def sub(m):
            k = int(m.group(2)) if m.group(2) else 0
            return str(i + k if m.group(1) == "+" else i * k if m.group(1) == "*" else i)
        return re.sub(r"\{i(?:([+*])(\d+))?\}", sub, value)
    return value


class Contract:
    """conformance.proto through the Python modules of prepare.sh."""

    def __init__(self, py_dir):
        sys.path.insert(0, py_dir)
        from google.protobuf import json_format
        import conformance_pb2
        self.json = json_format
        self.pb = conformance_pb2

    def _cls(self, desc):
        cls = self.pb
        for part in desc.full_name[len(self.pb.DESCRIPTOR.package) + 1:].split("."):
            cls = getattr(cls, part)
        return cls

    def method(self, actor, action):
        service = self.pb.DESCRIPTOR.services_by_name.get(actor)
        if service is None or action not in service.methods_by_name:
            raise ValueError("conformance.proto has no %s.%s" % (actor, action))
        m = service.methods_by_name[action]
        return self._cls(m.input_type), self._cls(m.output_type)

    def message(self, cls, value):
        return self.json.ParseDict(value, cls())

    def show(self, msg, limit=1500):
        text = json.dumps(self.json.MessageToDict(msg, preserving_proto_field_name=True),
                          ensure_ascii=False, sort_keys=True)
        return text if len(text) <= limit else text[:limit] + "... (%d chars)" % len(text)


class Call:
    """One call of a step, ready to send: the driver's line and what to
    expect back."""

    def __init__(self, contract, step, refs, i=None):
        actor, action = step["call"].split(".")
        self.actor, self.action = actor, action
        self.instance = expand(step.get("actor", "-"), i)
        if not self.instance or re.search(r"\s", self.instance):
            raise ValueError("actor %r: names are not empty and have no spaces" % self.instance)
        in_cls, self.out_cls = contract.method(actor, action)
        self.input = contract.message(in_cls, expand(step.get("input", {}), i, refs))
        data = self.input.SerializeToString()
        self.line = "%s %s %s %s" % (actor, self.instance, action,
                                     base64.b64encode(data).decode("ascii") if data else "-")
        self.expect = None
        if "expect" in step:
            want = step["expect"]
            self.expect = (self.input if want == "$input"
                           else contract.message(self.out_cls, expand(want, i, refs)))
        self.expect_error = expand(step.get("expect_error"), i, refs)
        self.label = "%s %s.%s" % (self.instance, actor, action)

    def check(self, contract, result):
        """Compare the driver's result line with the expectation."""
        word, _, rest = result.partition(" ")
        if word == "OK":
            if self.expect_error is not None:
                raise Failure("%s: succeeded, expected %s" % (self.label, self.expect_error))
            data = b"" if rest == "-" else base64.b64decode(rest)
            got = self.out_cls.FromString(data)
            if self.expect is not None and got != self.expect:
                raise Failure("%s: replied\n      %s\n    expected\n      %s" % (
                    self.label, contract.show(got), contract.show(self.expect)))
            return
        if word != "ERR":
            raise Broken("%s: the driver answered %r" % (self.label, result[:200]))
        code_text, _, msg_b64 = rest.partition(" ")
        code = int(code_text)
        message = "" if msg_b64 == "-" else base64.b64decode(msg_b64).decode("utf-8", "replace")
        got = "%s (%d): %r" % (STATUS_NAME.get(code, "local error"), code, message)
        want = self.expect_error
        if want is None:
            raise Failure("%s: failed with %s" % (self.label, got))
        want_code = want["code"] if isinstance(want["code"], int) else STATUS[want["code"]]
        if code != want_code:
            raise Failure("%s: failed with %s, expected code %s" % (self.label, got, want["code"]))
        if "message" in want and message != want["message"]:
            raise Failure("%s: failed with %s, expected message %r" % (
                self.label, got, want["message"]))
        if "message_contains" in want and want["message_contains"] not in message:
            raise Failure("%s: failed with %s, expected a message containing %r" % (
                self.label, got, want["message_contains"]))


def load_scenarios(path, contract):
    """The scenarios of path, each step's calls built (so that a bad file
    fails before any process starts)."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    owners = {}
    scenarios = []
    for sc in doc["scenarios"]:
        name = sc["name"]
        refs = dict(doc.get("values", {}), **sc.get("values", {}))
        steps = []
        for step in sc["steps"]:
            if "restart" in step:
                if step["restart"] not in ("graceful", "crash"):
                    raise ValueError("%s: restart is graceful or crash" % name)
                steps.append(("restart", step["restart"]))
            elif "concurrent" in step:
                conc = step["concurrent"]
                calls = [Call(contract, s, refs, i) for i in range(conc["count"])
                         for s in conc["calls"]]
                steps.append(("calls", calls, conc.get("timeout_ms", CALL_TIMEOUT_MS)))
            elif "call" in step:
                steps.append(("calls", [Call(contract, step, refs)],
                              step.get("timeout_ms", CALL_TIMEOUT_MS)))
            else:
                raise ValueError("%s: a step is a call, concurrent or restart: %r" % (name, step))
            # Stateful actors belong to one scenario, so that scenarios
            # stay independent of one another. Names are the system's,
            # whatever the actor type; the stateless Echoer is anyone's.
            for c in steps[-1][1] if steps[-1][0] == "calls" else []:
                key = c.actor if c.instance == "-" else c.instance
                if "Echoer" not in (c.actor, key) and owners.setdefault(key, name) != name:
                    raise ValueError("%s and %s both use the actor named %s" % (
                        owners[key], name, key))
        for key in sc.get("xfail", {}):
            if not re.fullmatch(r"(host|client):(c|py|ts)|host:http|any", key):
                raise ValueError("%s: xfail keys are host:LANG, client:LANG or any" % name)
        scenarios.append({"name": name, "steps": steps, "xfail": sc.get("xfail", {})})
    return scenarios


# ---- processes ---------------------------------------------------------------

def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Proc:
    """A child process whose stdout lines are read by a thread into a queue
    and whose stderr goes to a log file."""

    def __init__(self, name, argv, log, env=None, stdin=False):
        self.name = name
        self.log = log
        with open(log, "ab") as err:
            self.p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=err, env=env,
                                      preexec_fn=_die_with_parent)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def line(self, timeout, what):
        """The next stdout line, within timeout seconds."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise Broken("%s: no %s within %.0f s" % (self.name, what, timeout))
        if line is None:
            self.lines.put(None)
            raise Broken("%s exited (status %s) before %s" % (self.name, self.p.wait(), what))
        return line

    def drain(self):
        """The stdout lines that came so far, without waiting."""
        lines = []
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return lines
            if line is None:
                self.lines.put(None)
                return lines
            lines.append(line)

    def send(self, text):
        try:
            self.p.stdin.write(text.encode("utf-8"))
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            raise Broken("%s: its stdin is closed (status %s)" % (self.name, self.p.poll()))

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signal the process and wait; SIGKILL after timeout. Returns its
        exit status (negative: killed by that signal)."""
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                return "no exit within %.0f s after %s" % (timeout, signal.Signals(sig).name)
        return self.p.returncode


def tail(path, n=40):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return ""
    return "".join(lines[-n:])


# ---- one cell ----------------------------------------------------------------

class Cell:
    def __init__(self, args, contract, host, client):
        self.args = args
        self.contract = contract
        self.host_lang = host
        self.client_lang = client
        self.name = "host=%s client=%s%s" % (host, client, " mtls" if args.mtls else "")
        self.dir = tempfile.mkdtemp(prefix="spawn-conf-%s-%s-" % (host, client))
        self.gw = self.host = self.driver = None
        self.port = 0
        self.http_port = self.host_port = 0  # host "http": the gateway's --http, the host's
        self.problems = []   # teardown problems: the cell fails
        self.results = []    # (scenario, "ok" | "FAIL" | "XFAIL" | "XPASS", seconds, detail)

    # -- commands of each language
    def env(self, role):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(self.args.prep, "py"),
                                             os.path.join(SOURCE, "sdk", "python")])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        for var in TLS_ENV:
            env.pop(var, None)
        if self.args.certs:
            # The SDKs' fallbacks: the programs are unchanged.
            env["SPAWN_TLS_CA"] = os.path.join(self.args.certs, "ca.pem")
            env["SPAWN_TLS_CERT"] = os.path.join(self.args.certs, "%s.pem" % role)
            env["SPAWN_TLS_KEY"] = os.path.join(self.args.certs, "%s.key" % role)
        return env

    def command(self, lang, role):
        target = "127.0.0.1:%d" % self.port
        common = ["--gateway", target, "--system", SYSTEM]
        if lang == "c":
            return [self.args.c_host if role == "host" else self.args.c_client] + common
        if lang == "http":
            return ["/usr/bin/python3", os.path.join(HERE, "host_http.py"), "--system", SYSTEM]
        if lang == "py":
            return ["/usr/bin/python3", os.path.join(HERE, "%s.py" % ("host" if role == "host" else "client"))] + common
        if lang == "go":
            return [os.path.join(self.args.go_bin, "conformance-%s-go" % role)] + common
        if lang == "rb":
            prep = self.args.ruby_prep
            return ["ruby", "-I", os.path.join(prep, "gen"), "-I", os.path.join(SOURCE, "sdk", "ruby", "lib"),
                    os.path.join(prep, "%s.rb" % role)] + common
        return ["node", os.path.join(self.args.prep, "ts", "dist", "%s.js" % ("host" if role == "host" else "client"))] + common

    # -- the gateway
    def start_gateway(self):
        listen = "127.0.0.1:%d" % self.port
        argv = [self.args.gateway, "--listen", listen, "--statestore",
                "sqlite://%s" % os.path.join(self.dir, "state.db")]
        if self.host_lang == "http":
            # Spawn's HTTP API, on the same port across restarts, calling
            # the host back where it listens.
            argv += ["--http", "127.0.0.1:%d" % self.http_port,
                     "--spawn-host-url", "http://127.0.0.1:%d" % self.host_port]
        if self.args.certs:
            certs = self.args.certs
            argv += ["--tls-cert", os.path.join(certs, "server-chain.pem"),
                     "--tls-key", os.path.join(certs, "server.key"),
                     "--tls-client-ca", os.path.join(certs, "ca.pem")]
            if self.args.access:
                argv += ["--access", os.path.join(certs, "access.yaml")]
        self.gw = Proc("gateway", argv, os.path.join(self.dir, "gateway.log"))
        words = self.gw.line(START_TIMEOUT, "'listening' line").split()
        if len(words) != 3 or words[0] != "listening":
            raise Broken("gateway said %r, expected 'listening ADDR PORT'" % " ".join(words))
        self.port = int(words[2])
        if self.host_lang == "http":
            words = self.gw.line(START_TIMEOUT, "'listening http://' line").split()
            if len(words) != 3 or not words[1].startswith("http://"):
                raise Broken("gateway said %r, expected 'listening http://ADDR PORT'"
                             % " ".join(words))
            self.http_port = int(words[2])

    def register_http_host(self):
        """A Spawn SDK registers when it starts: host_http.py does on each
        "proxy PORT" line."""
        if self.host_lang == "http":
            self.host.send("proxy %d\n" % self.http_port)

    def restart(self, how):
        self.host.drain()  # a re-registration after a failed scenario
        gone = self.gw.stop(signal.SIGKILL if how == "crash" else signal.SIGTERM)
        if how == "graceful" and gone != 0:
            self.problems.append("gateway exited with %s on SIGTERM (restart)" % gone)
        self.start_gateway()
        self.register_http_host()
        line = self.host.line(START_TIMEOUT, "'registered' after the gateway restarted")
        if line != "registered":
            raise Broken("host said %r, expected 'registered'" % line)
        # The driver's channel may sit in gRPC's reconnect backoff: start a
        # new client, as an application would after an outage.
        self.driver.send("RECONNECT\n")
        line = self.driver.line(START_TIMEOUT, "answer to RECONNECT")
        if line != "OK":
            raise Broken("driver answered %r to RECONNECT" % line)

    # -- a run
    def run(self, scenarios):
        ts_lock = None
        try:
            if "ts" in (self.host_lang, self.client_lang):
                # sdk/node's own test rebuilds sdk/node/dist: share its lock.
                ts_lock = open(os.path.join(SOURCE, "sdk", "node", ".test.lock"), "a")
                fcntl.flock(ts_lock, fcntl.LOCK_SH)
            http = self.host_lang == "http"
            if not http:
                self.start_gateway()
            self.host = Proc("host (%s)" % self.host_lang, self.command(self.host_lang, "host"),
                             os.path.join(self.dir, "host.log"), env=self.env("host"),
                             stdin=http)
            if http:
                # The gateway must know where to call the host back.
                words = self.host.line(START_TIMEOUT, "'port' line").split()
                if len(words) != 2 or words[0] != "port":
                    raise Broken("host said %r, expected 'port N'" % " ".join(words))
                self.host_port = int(words[1])
                self.start_gateway()
                self.register_http_host()
            line = self.host.line(START_TIMEOUT, "'registered' line")
            if line != "registered":
                raise Broken("host said %r, expected 'registered'" % line)
            self.driver = Proc("client driver (%s)" % self.client_lang,
                               self.command(self.client_lang, "client"),
                               os.path.join(self.dir, "client.log"), env=self.env("client"),
                               stdin=True)
            line = self.driver.line(START_TIMEOUT, "'ready' line")
            if line != "ready":
                raise Broken("client driver said %r, expected 'ready'" % line)
            for sc in scenarios:
                self.scenario(sc)
        except Broken as e:
            self.problems.append(str(e))
        finally:
            self.teardown()
            if ts_lock:
                ts_lock.close()
        return self.ok()

    def scenario(self, sc):
        t0 = time.monotonic()
        detail = ""
        try:
            for step in sc["steps"]:
                if step[0] == "restart":
                    self.restart(step[1])
                else:
                    self.calls(step[1], step[2])
            if self.host.drain():
                raise Failure("the host registered again: its connection to the gateway "
                              "dropped during this scenario (or just before)")
            failed = False
        except Failure as e:
            failed, detail = True, str(e)
        except Broken as e:
            self.results.append((sc["name"], "FAIL", time.monotonic() - t0, str(e)))
            self.report(self.results[-1])
            raise
        xfail = [sc["xfail"][k] for k in ("host:" + self.host_lang, "client:" + self.client_lang, "any")
                 if k in sc["xfail"]]
        xfail = list(dict.fromkeys(xfail))
        if xfail:
            status = "XFAIL" if failed else "XPASS"
            detail = detail or "passes although marked: " + "; ".join(xfail)
            if failed:
                detail = "known: %s\n    %s" % ("; ".join(xfail), detail)
        else:
            status = "FAIL" if failed else "ok"
        self.results.append((sc["name"], status, time.monotonic() - t0, detail))
        self.report(self.results[-1])
        if failed:
            self.resync()

    def resync(self):
        """After a failed scenario, make sure the host is registered before
        the next one: a failure may have cost the host its connection (it
        then reconnects by itself). A call to the stateless Echoer tells."""
        for _ in range(2):
            self.driver.send("CALL 1 %d\nEchoer - Echo -\n" % CALL_TIMEOUT_MS)
            result = self.driver.line(CALL_TIMEOUT_MS / 1000.0 + 30, "result of the resync call")
            if result.startswith("OK"):
                self.host.drain()  # its 'registered', if it had reconnected already
                return
            if not result.startswith("ERR %d " % STATUS["UNAVAILABLE"]):
                break
            line = self.host.line(START_TIMEOUT, "'registered' after a dropped connection")
            if line != "registered":
                raise Broken("host said %r, expected 'registered'" % line)
        raise Broken("the host does not answer after a failed scenario: %s" % result[:200])

    def calls(self, calls, timeout_ms):
        self.driver.send("CALL %d %d\n%s\n" % (len(calls), timeout_ms,
                                               "\n".join(c.line for c in calls)))
        results = [self.driver.line(timeout_ms / 1000.0 + 30, "result of " + c.label)
                   for c in calls]
        errors = []
        for c, r in zip(calls, results):
            try:
                c.check(self.contract, r)
            except Failure as e:
                errors.append(str(e))
        if errors:
            more = "" if len(errors) == 1 else "\n    (and %d more)" % (len(errors) - 1)
            raise Failure(errors[0] + more)

    def teardown(self):
        if self.driver:
            if self.driver.p.poll() is None:
                try:
                    self.driver.send("QUIT\n")
                    self.driver.p.stdin.close()
                except Broken:
                    pass
            try:
                status = self.driver.p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                status = self.driver.stop(signal.SIGKILL)
            if status != 0:
                self.problems.append("client driver exited with %s" % status)
        for proc in (self.host, self.gw):
            if proc:
                status = proc.stop()
                if status != 0:
                    self.problems.append("%s exited with %s on SIGTERM" % (proc.name, status))

    def ok(self):
        return not self.problems and all(r[1] in ("ok", "XFAIL") for r in self.results)

    def report(self, r):
        name, status, secs, detail = r
        print("%-5s %s  %-40s %6.2f s" % (status, self.name, name, secs), flush=True)
        if status == "XFAIL" and not self.args.verbose:
            detail = detail.split("\n")[0]
        if detail and status != "ok":
            print("    " + detail, flush=True)

    def finish(self):
        for p in self.problems:
            print("FAIL  %s  %s" % (self.name, p), flush=True)
        if not self.ok() or self.args.verbose:
            for log in ("gateway.log", "host.log", "client.log"):
                text = tail(os.path.join(self.dir, log))
                if text:
                    print("---- %s (%s), last lines:\n%s" % (log, self.name, text.rstrip()))
        if self.args.keep:
            print("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", required=True, help="spawn-gateway binary")
    ap.add_argument("--c-host", required=True, help="conformance-host-c binary")
    ap.add_argument("--c-client", required=True, help="conformance-client-c binary")
    ap.add_argument("--prep", required=True, help="the folder prepare.sh filled")
    ap.add_argument("--go-bin", help="the folder prepare_go.sh filled (needed for go cells)")
    ap.add_argument("--ruby-prep", help="the folder prepare_ruby.sh filled (needed for rb cells)")
    ap.add_argument("--hosts", default=",".join(LANGS))
    ap.add_argument("--clients", default=",".join(LANGS))
    ap.add_argument("--scenarios", default=os.path.join(HERE, "scenarios.json"))
    ap.add_argument("--scenario", action="append", help="run only these (repeatable)")
    ap.add_argument("--mtls", action="store_true",
                    help="every link over mutual TLS (certificates from tests/tls/mkcerts.sh)")
    ap.add_argument("--keep", action="store_true", help="keep each cell's folder")
    ap.add_argument("--verbose", action="store_true", help="show the logs of passing cells too")
    args = ap.parse_args()
    hosts = args.hosts.split(",")
    clients = args.clients.split(",")
    for lang in hosts:
        if lang not in HOST_LANGS:
            ap.error("host languages are %s" % ", ".join(HOST_LANGS))
    for lang in clients:
        if lang not in LANGS:
            ap.error("languages are %s" % ", ".join(LANGS))
    if "go" in hosts + clients and not args.go_bin:
        ap.error("go cells need --go-bin (prepare_go.sh's folder)")
    if "rb" in hosts + clients and not args.ruby_prep:
        ap.error("rb cells need --ruby-prep (prepare_ruby.sh's folder)")

    # A ctest timeout sends SIGTERM: tear the cell down on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("run.py: terminated"))
    contract = Contract(os.path.join(args.prep, "py"))
    scenarios = load_scenarios(args.scenarios, contract)
    if args.scenario:
        unknown = set(args.scenario) - {s["name"] for s in scenarios}
        if unknown:
            ap.error("no scenario %s" % ", ".join(sorted(unknown)))
        scenarios = [s for s in scenarios if s["name"] in args.scenario]

    args.certs = None
    args.access = False
    if args.mtls:
        # The gateway runs with TLS, mTLS and an access policy that knows
        # the host and the client by their certificates.
        args.access = True
        args.certs = tempfile.mkdtemp(prefix="spawn-conf-certs-")
        subprocess.run(["bash", os.path.join(SOURCE, "tests", "tls", "mkcerts.sh"), args.certs],
                       check=True)
        if args.access:
            with open(os.path.join(args.certs, "access.yaml"), "w") as f:
                f.write(ACCESS_POLICY % {"system": SYSTEM})
    try:
        return run_matrix(args, contract, scenarios, hosts, clients)
    finally:
        if args.certs:
            shutil.rmtree(args.certs, ignore_errors=True)


def run_matrix(args, contract, scenarios, hosts, clients):
    summary = []
    for host in hosts:
        for client in clients:
            cell = Cell(args, contract, host, client)
            t0 = time.monotonic()
            try:
                ok = cell.run(scenarios)
            finally:
                cell.finish()
            counts = {}
            for r in cell.results:
                counts[r[1]] = counts.get(r[1], 0) + 1
            summary.append((cell.name, ok, time.monotonic() - t0,
                            ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items()))))
    print()
    for name, ok, secs, counts in summary:
        print("%-4s %s  %6.2f s  (%s)" % ("ok" if ok else "FAIL", name, secs, counts))
    return 0 if all(s[1] for s in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
