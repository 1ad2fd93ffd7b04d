"""Shared pieces of the metrics tests: a real gateway with --http on an
ephemeral port (its "listening" lines), a host of our Python SDK, plain HTTP
GETs, and a parser of the Prometheus text format (the one of
prometheus_client when installed would do; this reads only what the tests
compare: sample name, labels, value)."""
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("SPAWN_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path[:0] = [os.path.join(BUILD, "python-gen"), os.path.join(ROOT, "sdk", "python")]

GATEWAY = os.environ.get("SPAWN_GATEWAY") or os.path.join(BUILD, "gateway", "spawn-gateway")
KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="


def free_port():
    """A loopback port free now (for a listener that must know its port
    before it starts: a cluster member's --advertise)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(fn, what, timeout=20.0):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)  # polling a condition, not a wait for time to pass


class Gateway:
    def __init__(self, d, extra=(), name="gateway", ca=None, http=True, listen="127.0.0.1:0"):
        """ca: the CA file that verifies the listener when --tls-cert makes
        --http serve HTTPS. http=False: no --http (gRPC only). listen: the
        gRPC listener (a fixed port for a cluster member's --advertise)."""
        self.d = d
        self.ca = ca
        self.https = False
        argv = [GATEWAY, "--listen", listen] + (["--http", "127.0.0.1:0"] if http else []) + [
                "--statestore", "sqlite://" + os.path.join(d, name + ".db"),
                "--registration-grace", "0", "--log-level", "info"] + list(extra)
        env = dict(os.environ, SPAWN_STATESTORE_KEY=KEY)
        self.log_path = os.path.join(d, name + ".log")
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, env=env,
                                  text=True)
        self.grpc_port = self.http_port = None
        for line in self.p.stdout:
            w = line.split()
            if len(w) == 3 and w[0] == "listening" and w[1].startswith(("http://", "https://")):
                self.http_port = int(w[2])
                self.https = w[1].startswith("https://")
                break
            if len(w) == 3 and w[0] == "listening":
                self.grpc_port = int(w[2])
                if not http:
                    break
        if (http and not self.http_port) or not self.grpc_port:
            raise RuntimeError("gateway exited before its listening lines: see " +
                               self.log_path)
        self.addr = "127.0.0.1:%d" % self.grpc_port

    def get(self, path, method="GET", body=None, headers=None):
        if self.https:
            c = http.client.HTTPSConnection("127.0.0.1", self.http_port, timeout=10,
                                            context=ssl.create_default_context(cafile=self.ca))
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def metrics(self):
        st, body = self.get("/metrics")
        if st != 200:
            raise AssertionError("/metrics answered %d: %r" % (st, body[:200]))
        return body.decode()

    def stop(self, timeout=30):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout)
        self.p.stdout.close()
        self.log.close()
        return rc


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """Samples as {(name, frozenset(labels.items())): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(samples, name, **labels):
    """The value of the one sample of name with exactly these labels (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def families(text):
    """Metric family names from the # TYPE lines."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def promtool_check_metrics(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr
