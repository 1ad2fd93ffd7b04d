"""spawn_client and spawn_host given several gateways (issue 11, section 3;
docs/sdk/python.md "Several gateways"), against three real gateways.

    SPAWN_BUILD_DIR=build /usr/bin/python3 -m unittest sdk/python/test_failover.py -v

Each gateway has its own SQLite store and its own it-host (--trace: each
host's stdout counts the calls its gateway dispatched). Echo on the counter
answers the same whichever member serves it, so no cluster routing is
needed here.

- A client given the three addresses spreads calls over all three; one
  gateway is killed (SIGKILL) under load from four threads: only calls
  around the moment the client sees its connection close fail (the ones in
  flight, at times one made just before it dropped the member), each
  UNAVAILABLE (a call lost with its member may have run, it is not
  retried); every call after that succeeds; the gateway is started again
  on its port and gets calls again.
- A dns:/// target works; and a name with three addresses, from a DNS
  server of the test's own (dnsmasq on a free loopback port answering
  gw.spawn.test with 127.0.0.1, .2 and .3 from a file; never /etc/hosts):
  three gateways on one port of those addresses each get calls, and the
  calls go on when one is killed.
- A Python ActorHost given the three addresses registers with one; killed,
  it registers with a survivor within its backoff.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("SPAWN_BUILD_DIR", "build")
sys.path.insert(0, os.environ.get("SPAWN_PY_PROTO_OUT", os.path.join(BUILD, "python-gen")))
sys.path.insert(0, HERE)

from spawn_client import SpawnClient, SpawnError, Unavailable  # noqa: E402
from spawn_host import ActorHost, gateway_target  # noqa: E402

KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
T = 15.0


def read_line(proc, prefix, what, timeout=15.0):
    """The first line of proc's stdout starting with prefix (earlier lines
    are dropped). A timer kills proc if it stays silent too long."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            if line.startswith(prefix):
                return line
    finally:
        timer.cancel()
    raise AssertionError("%s ended or timed out before printing %r" % (what, prefix))


class Counter:
    """Counts the lines of a process's stdout that start with prefix, on
    its own thread; wait_for blocks until the count reaches n."""

    def __init__(self, proc, prefix):
        self.n = 0
        self.cv = threading.Condition()
        self.t = threading.Thread(target=self._read, args=(proc, prefix), daemon=True)
        self.t.start()

    def _read(self, proc, prefix):
        for line in proc.stdout:
            if line.startswith(prefix):
                with self.cv:
                    self.n += 1
                    self.cv.notify_all()

    def value(self):
        with self.cv:
            return self.n

    def wait_for(self, n, timeout):
        with self.cv:
            return self.cv.wait_for(lambda: self.n >= n, timeout)


class FailoverTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="spawn-py-failover-")
        self.procs = []
        self.clients = []
        self.hosts = []

    def tearDown(self):
        for h in self.hosts:
            h.stop(timeout=T)
        for c in self.clients:
            c.close()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
            p.stdout.close()
        self.dir.cleanup()

    def gateway(self, db, listen="127.0.0.1:0"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPAWN_")}
        env["SPAWN_STATESTORE_KEY"] = KEY
        p = subprocess.Popen(
            [os.path.join(BUILD, "gateway", "spawn-gateway"), "--listen", listen,
             "--statestore", "sqlite://" + os.path.join(self.dir.name, db)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.procs.append(p)
        line = read_line(p, "listening ", "gateway")  # "listening ADDR PORT"
        return p, "%s:%d" % (line.split()[1].rsplit(":", 1)[0], int(line.split()[2]))

    def it_host(self, target, *args):
        p = subprocess.Popen(
            [os.path.join(BUILD, "tests", "integration", "it-host"), "--gateway", target]
            + list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        read_line(p, "registered", "it-host")
        return p

    def client(self, target, **kw):
        c = SpawnClient(target, timeout=T, **kw)
        self.clients.append(c)
        return c

    def test_the_target_of_a_list(self):
        self.assertEqual(gateway_target("127.0.0.1:1, 127.0.0.1:2")[0],
                         "ipv4:127.0.0.1:1,127.0.0.1:2")
        self.assertEqual(gateway_target("[::1]:1,[::1]:2")[0], "ipv6:[::1]:1,[::1]:2")
        self.assertEqual(gateway_target("dns:///gw:1")[0], "dns:///gw:1")
        for bad in ("gw1:1,gw2:1", "127.0.0.1:1,[::1]:2", "127.0.0.1:0,127.0.0.1:1",
                    "127.0.0.1:1,"):
            with self.assertRaises(ValueError):
                gateway_target(bad)
        with self.assertRaisesRegex(ValueError, "tls_server_name"):
            gateway_target("127.0.0.1:1,127.0.0.2:1", tls=True)
        gateway_target("127.0.0.1:1,127.0.0.2:1", tls=True, server_name=True)

    def test_a_client_of_three_gateways_spreads_calls_and_survives_a_kill(self):
        gws, hosts, counts = [], [], []
        for i in range(3):
            p, target = self.gateway("s%d.db" % i)
            # Checkpointed, and one Add through each gateway: its store then
            # knows the counter, so a restarted gateway answers calls made
            # before the host registered again UNAVAILABLE marked never
            # dispatched (retried, on another member), not NOT_FOUND.
            h = self.it_host(target, "--trace", "--checkpoint")
            with SpawnClient(target, timeout=T) as c:
                c.invoke("it", "counter", "Add")
            gws.append([p, target])
            hosts.append(h)
            counts.append(Counter(h, "invoked counter Echo"))
        c = self.client(",".join(t for _, t in gws))
        for _ in range(90):
            c.invoke("it", "counter", "Echo")
        for i, n in enumerate(counts):
            # The host prints its line before it answers.
            sys.stderr.write("spread python: gateway %d served %d of 90 calls\n" % (i, n.value()))
            self.assertGreaterEqual(n.value(), 10, "gateway %d" % i)

        records, lock, stop = [], threading.Lock(), threading.Event()
        progress = threading.Condition(lock)

        def load():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    c.invoke("it", "counter", "Echo")
                    err = None
                except SpawnError as e:
                    err = e
                with progress:
                    records.append((t0, time.monotonic(), err))
                    progress.notify_all()

        def wait_calls(more):
            with progress:
                goal = len(records) + more
                self.assertTrue(progress.wait_for(lambda: len(records) >= goal, T),
                                "the load made no progress")

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            wait_calls(100)
            gws[1][0].kill()
            gws[1][0].wait(timeout=30)
            killed = time.monotonic()
            wait_calls(200)
            before = counts[1].value()
            gws[1][0], _ = self.gateway("s1.db", gws[1][1])
            self.assertTrue(counts[1].wait_for(before + 1, T),
                            "the restarted gateway got no call")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=2 * T)
        # The client sees the member's connection close a little after the
        # kill and drops the member from its round robin just after that:
        # the calls in flight on it fail then, and so may one started in
        # that short window. Every failure is Unavailable, the close is seen
        # promptly, all failures happen around that moment (the first +
        # 250 ms), and every call after it succeeds.
        failed = [(t0, t1, e) for t0, t1, e in records if e is not None]
        seen = min((t1 for _, t1, _ in failed), default=killed)
        for t0, t1, e in failed:
            sys.stderr.write("spread python: call started %+.1f ms from the kill, failed %+.1f: "
                             "%r\n" % ((t0 - killed) * 1e3, (t1 - killed) * 1e3, e))
            self.assertIsInstance(e, Unavailable)
            self.assertLessEqual(t1 - seen, 0.25, "a call failed %.1f ms after the dead "
                                 "connection was seen: %r" % ((t1 - seen) * 1e3, e))
        self.assertLess(seen - killed, 2.0)
        sys.stderr.write("spread python: %d calls under load, %d failed (%d started after the "
                         "kill)\n" % (len(records), len(failed),
                                      sum(t0 > killed for t0, _, _ in failed)))

    def test_a_dns_target(self):
        _, target = self.gateway("s.db")
        self.it_host(target)
        c = self.client("dns:///localhost:" + target.split(":")[1])
        for _ in range(5):
            c.invoke("it", "counter", "Echo")

    def dns_server(self, hosts_file):
        """dnsmasq answering only from hosts_file, on a free port of
        127.0.0.1; returns the port once it serves."""
        dnsmasq = "/usr/sbin/dnsmasq"
        self.assertTrue(os.access(dnsmasq, os.X_OK),
                        "%s is missing (Debian dnsmasq-base; scripts/install-deps.sh)" % dnsmasq)
        for _ in range(3):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            p = subprocess.Popen(
                [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                 "--no-hosts", "--addn-hosts=" + hosts_file, "--listen-address=127.0.0.1",
                 "--bind-interfaces", "--port=%d" % port, "--pid-file=",
                 "--log-facility=/dev/stdout"] + (["--user=root"] if os.geteuid() == 0 else []),
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.procs.append(p)
            # Its log: "read FILE - N names" once it serves; it exits at
            # once when the port was taken meanwhile.
            timer = threading.Timer(T, p.kill)
            timer.start()
            try:
                for line in p.stdout:
                    if " names" in line:
                        return port
            finally:
                timer.cancel()
        self.fail("dnsmasq did not start")

    def test_a_dns_name_with_three_addresses(self):
        hosts = os.path.join(self.dir.name, "hosts")
        with open(hosts, "w") as f:
            f.write("".join("127.0.0.%d gw.spawn.test\n" % i for i in (1, 2, 3)))
        dns_port = self.dns_server(hosts)
        gws, counts = [], []
        port = None
        for i in range(3):
            p, target = self.gateway("s%d.db" % i, "127.0.0.%d:%d" % (i + 1, port or 0))
            port = int(target.rsplit(":", 1)[1])
            gws.append((p, target))
            counts.append(Counter(self.it_host(target, "--trace"), "invoked counter Echo"))
        target = "dns://127.0.0.1:%d/gw.spawn.test:%d" % (dns_port, port)
        c = self.client(target)
        for _ in range(90):
            c.invoke("it", "counter", "Echo")
        for (_, t), n in zip(gws, counts):
            sys.stderr.write("dns python: %s served %d of 90 calls\n" % (t, n.value()))
            self.assertGreaterEqual(n.value(), 10, t)
        gws[1][0].kill()
        gws[1][0].wait(timeout=30)
        for _ in range(30):
            c.invoke("it", "counter", "Echo")

    def test_a_host_of_three_gateways_moves_to_a_survivor(self):
        gws = [self.gateway("s%d.db" % i) for i in range(3)]
        registered = threading.Condition()

        def on_registered(h):
            with registered:
                registered.notify_all()

        h = ActorHost(",".join(t for _, t in gws), "roam", min_backoff=0.015, max_backoff=2.0,
                      on_registered=on_registered)
        h.add_actor("echo", {"Echo": lambda state, payload, ctx: (None, payload, False)},
                    stateful=False)
        self.hosts.append(h)
        h.start()
        self.assertTrue(h.registered.wait(T))
        alive = [True] * 3

        def serving():
            found = []
            for i, (_, t) in enumerate(gws):
                if not alive[i]:
                    continue
                with SpawnClient(t, timeout=T, fail_fast=True) as f:
                    try:
                        f.invoke("roam", "echo", "Echo")
                        found.append(i)
                    except SpawnError:
                        pass
            self.assertEqual(len(found), 1, "gateways answering for the host: %r" % found)
            return found[0]

        on = serving()
        for rnd in (1, 2):
            n = h.registrations
            t0 = time.monotonic()
            gws[on][0].kill()
            gws[on][0].wait(timeout=30)
            alive[on] = False
            with registered:
                self.assertTrue(registered.wait_for(lambda: h.registrations > n, T),
                                "round %d: the host did not register with a survivor" % rnd)
            t1 = time.monotonic()
            nxt = serving()
            sys.stderr.write("roam python: round %d: killed gateway %d, registered with %d "
                             "after %.1f ms\n" % (rnd, on, nxt, (t1 - t0) * 1e3))
            self.assertNotEqual(nxt, on)
            self.assertLess(t1 - t0, 5.0)
            on = nxt


if __name__ == "__main__":
    unittest.main()
