"""chaos.py - the cluster test harness of issue 11, section 5.

- ``Store``: a fresh namespace (a PostgreSQL schema or a MariaDB database)
  on the private server of the ctest fixture spawn_db
  (tests/store/with-db.sh exports SPAWN_TEST_POSTGRES_URL /
  SPAWN_TEST_MARIADB_URL). A missing server is a failure, never a skip.
- ``Cluster``: N members, each a real spawn-gateway on its own loopback
  address (127.0.0.2, 127.0.0.3, ...) with its own incrementor-host
  (``--unnamed --checkpoint``), all on one store. Each member's processes
  run in a cgroup (v2) of their own, which is what the packet filter uses
  to tell the members apart: on loopback every connection's source address
  is 127.0.0.1, whoever makes it.
- Faults (each undone by ``heal`` and by ``close``, which runs even when a
  test fails: call it from tearDown / finally; SIGTERM from ctest's
  timeout is turned into SystemExit so it runs then too):
  - ``kill9(i)`` / ``restart(i)``: SIGKILL the member's gateway, start it
    again on the same address and port (its host reconnects by itself);
  - ``partition(i)``: nftables rules drop every packet from member i's
    cgroup to the other members' addresses and from theirs to member i's;
    the database (127.0.0.1) and the test's own clients are untouched;
  - ``cut_db(i)``: drop every packet from member i's cgroup to the
    database's port;
  - ``rolling_restart()``: SIGTERM each gateway in turn, wait for its exit
    (0), start it again and wait for its host to register again.
  ``reaches(i, addr, port)`` connects from inside member i's cgroup: the
  fault tests check each rule does what it says.
- ``Workload``: client threads, each calling one member, ``Add(1)`` (and
  ``Add(0)``, a read) on a few actors until stopped, recording every call
  as a history.Op (monotonic times, outcome, total, gRPC code,
  ``spawn-retry: not-dispatched``).

Needs root (cgroups, nftables) and /usr/sbin/nft (scripts/install-deps.sh).
Gateway flags: ``cluster=True`` adds ``--advertise ADDR:PORT`` (issue 11's
cluster mode); ``extra`` adds any others.
"""

import collections
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

BUILD = os.environ.get("SPAWN_BUILD_DIR", "build")
sys.path.insert(0, os.path.join(BUILD, "python-gen"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
from google.protobuf import any_pb2  # noqa: E402
from spawn.actors import protocol_pb2  # noqa: E402
import incrementor_pb2  # noqa: E402

import history  # noqa: E402

KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
SYSTEM, PARENT = "spawn-system", "incrementor"
# gRPC's message when a call found no connection and was never sent.
NOT_SENT = "failed to connect to all addresses"
NFT = "/usr/sbin/nft"
# Anomalies of writes (the others are of reads).
WRITE_KINDS = {"duplicate-total", "real-time", "lost-write", "unexplained-total", "final-total"}


def _sigterm_exits():
    """SIGTERM (ctest's timeout) raises SystemExit, so finally / tearDown
    clean up the rules, cgroups and processes."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def store_kinds():
    """The stores to run on: CHAOS_STORES (comma-separated), default both."""
    return [k for k in os.environ.get("CHAOS_STORES", "postgres,mariadb").split(",") if k]


class Store:
    """A fresh namespace on the fixture's server of kind (postgres,
    mariadb). ``url`` is the store URL the gateways get; ``port`` the
    server's TCP port; ``sql(q)`` runs SQL in the namespace."""

    def __init__(self, kind):
        self.kind = kind
        var = "SPAWN_TEST_%s_URL" % kind.upper()
        self.server = os.environ.get(var)
        if not self.server:
            raise RuntimeError("%s is not set: run under tests/store/with-db.sh (the ctest "
                               "fixture spawn_db)" % var)
        u = urllib.parse.urlsplit(self.server)
        self.host, self.port = u.hostname, u.port
        self.user, self.password = u.username, u.password
        self.ns = "spawn_test_chaos_%d_%d" % (os.getpid(), int(time.time() * 1000) % 10**9)
        if kind == "postgres":
            self._run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d",
                       self.server, "-c", "CREATE SCHEMA %s" % self.ns])
            sep = "&" if "?" in self.server else "?"
            self.url = "%s%soptions=%s" % (self.server, sep, urllib.parse.quote(
                "-csearch_path=%s" % self.ns, safe=""))
        elif kind == "mariadb":
            self._mysql("CREATE DATABASE `%s`" % self.ns, db=None)
            self.url = urllib.parse.urlunsplit(u._replace(path="/" + self.ns))
        else:
            raise ValueError("unknown store kind %r" % kind)

    @staticmethod
    def _run(argv):
        return subprocess.run(argv, check=True, capture_output=True, text=True,
                              timeout=60).stdout.strip()

    def _mysql(self, q, db="ns"):
        argv = ["mysql", "--protocol=TCP", "-h", self.host, "-P", str(self.port), "-u",
                self.user, "-p" + (self.password or ""), "-N", "-B", "-e", q]
        if db:
            argv.append(self.ns)
        return self._run(argv)

    def sql(self, q):
        """Runs q in the namespace; its output (tab-separated rows)."""
        if self.kind == "postgres":
            return self._run(["psql", "-X", "-q", "-t", "-A", "-F", "\t", "-v",
                              "ON_ERROR_STOP=1", "-d", self.url, "-c", q])
        return self._mysql(q)

    def drop(self):
        try:
            if self.kind == "postgres":
                self._run(["psql", "-X", "-q", "-d", self.server, "-c",
                           "DROP SCHEMA IF EXISTS %s CASCADE" % self.ns])
            else:
                self._mysql("DROP DATABASE IF EXISTS `%s`" % self.ns, db=None)
        except (subprocess.SubprocessError, OSError) as e:
            print("chaos: dropping %s: %s" % (self.ns, e), file=sys.stderr)


def _cgroup2_mount():
    with open("/proc/mounts") as f:
        for line in f:
            dev, path, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return path
    raise RuntimeError("no cgroup2 file system is mounted (the partition rules need one)")


def _alive(pid):
    return os.path.exists("/proc/%d" % pid)


def sweep_leftovers(cg_root):
    """Removes what a harness process that died without cleaning up (e.g.
    SIGKILL) left: its nftables table and its cgroups, whose processes
    (that harness's gateways and hosts) get SIGKILL first. Only the names
    this module makes, and only of processes that no longer exist."""
    tables = subprocess.run([NFT, "list", "tables"], capture_output=True, text=True,
                            timeout=30).stdout.split("\n")
    for line in tables:
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("spawn_chaos_"):
            pid = parts[2][len("spawn_chaos_"):]
            if pid.isdigit() and not _alive(int(pid)):
                subprocess.run([NFT, "delete", "table", parts[1], parts[2]], timeout=30)
    for d in os.listdir(cg_root):
        f = d.split("-")
        if len(f) != 4 or f[:2] != ["spawn", "chaos"] or not f[2].isdigit() or _alive(int(f[2])):
            continue
        top = os.path.join(cg_root, d)
        for sub in [x for x in os.listdir(top) if os.path.isdir(os.path.join(top, x))]:
            cg = os.path.join(top, sub)
            for _ in range(100):  # bounded: SIGKILL is quick
                with open(os.path.join(cg, "cgroup.procs")) as fp:
                    pids = [int(x) for x in fp.read().split()]
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)
            os.rmdir(cg)
        os.rmdir(top)


def _free_port(addr):
    s = socket.socket()
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Drain(threading.Thread):
    """Copies a process's stdout to a log file, counting lines that start
    with a prefix (a condition variable wakes waiters)."""

    def __init__(self, stream, path, prefix):
        super().__init__(daemon=True)
        self.stream, self.prefix = stream, prefix
        self.log = open(path, "a")
        self.count = 0
        self.cv = threading.Condition()
        self.closed = False
        self.start()

    def run(self):
        for line in self.stream:
            self.log.write(line)
            self.log.flush()
            if line.startswith(self.prefix):
                with self.cv:
                    self.count += 1
                    self.cv.notify_all()
        with self.cv:
            self.closed = True
            self.cv.notify_all()
        self.log.close()
        self.stream.close()

    def wait_count(self, n, timeout):
        end = time.monotonic() + timeout
        with self.cv:
            while self.count < n and not self.closed:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(left)
            return self.count >= n


class Member:
    """One member: its address, port, cgroup, gateway and host."""

    def __init__(self, cluster, i):
        self.c, self.i = cluster, i
        self.name = "m%d" % i
        self.addr = "127.0.0.%d" % (i + 2)
        self.port = _free_port(self.addr)
        self.target = "%s:%d" % (self.addr, self.port)
        self.cgroup = os.path.join(cluster.cg_dir, self.name)
        os.mkdir(self.cgroup)
        self.gw = self.host = None
        self.gw_out = self.host_out = None
        self.starts = 0

    def _enter(self):
        # preexec_fn: the child moves itself into the member's cgroup.
        with open(os.path.join(self.cgroup, "cgroup.procs"), "w") as f:
            f.write("0")

    def _log(self, what):
        return os.path.join(self.c.dir, "%s-%s.log" % (self.name, what))

    def start_gateway(self):
        argv = [os.path.join(BUILD, "gateway", "spawn-gateway"), "--listen", self.target,
                "--statestore", self.c.store.url] + list(self.c.gateway_args)
        if self.c.cluster:
            argv += ["--advertise", self.target]
        env = dict(os.environ, SPAWN_STATESTORE_KEY=KEY)
        self.starts += 1
        with open(self._log("gateway-stderr"), "a") as err:
            err.write("=== start %d: %s\n" % (self.starts, " ".join(argv)))
            err.flush()
            self.gw = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True,
                                       env=env, preexec_fn=self._enter)
        self.gw_out = _Drain(self.gw.stdout, self._log("gateway-stdout"), "listening")
        if not self.gw_out.wait_count(1, 30):
            with open(self._log("gateway-stderr")) as f:
                tail = "".join(f.readlines()[-5:])
            raise RuntimeError("%s: the gateway did not print 'listening' (exit %s); the end "
                               "of %s:\n%s" % (self.name, self.gw.poll(),
                                               self._log("gateway-stderr"), tail))

    def start_host(self):
        argv = [os.path.join(BUILD, "examples", "incrementor-host"), "--gateway", self.target,
                "--checkpoint", "--unnamed"]
        with open(self._log("host-stderr"), "a") as err:
            self.host = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True,
                                         preexec_fn=self._enter)
        self.host_out = _Drain(self.host.stdout, self._log("host-stdout"), "registered")
        self.wait_registered(1)

    def wait_registered(self, n):
        if not self.host_out.wait_count(n, 30):
            raise RuntimeError("%s: the host did not register (%d time(s)) in 30 s"
                               % (self.name, n))

    def kill9(self):
        self.gw.send_signal(signal.SIGKILL)
        self.gw.wait(timeout=30)

    def restart(self):
        """Starts the gateway again (after kill9 or a stop) and waits for
        its host to register with it."""
        seen = self.host_out.count
        self.start_gateway()
        self.wait_registered(seen + 1)

    def stop_gateway(self):
        """SIGTERM; returns the exit code (30 s at most)."""
        self.gw.send_signal(signal.SIGTERM)
        return self.gw.wait(timeout=30)

    def close(self):
        for p in (self.host, self.gw):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in (self.host, self.gw):
            if p:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for d in (self.gw_out, self.host_out):
            if d:
                d.join(5)
        try:
            os.rmdir(self.cgroup)
        except OSError as e:
            print("chaos: removing %s: %s" % (self.cgroup, e), file=sys.stderr)


class Cluster:
    """N members on one store. ``cluster``: start them in cluster mode
    (--advertise). ``gateway_args``: more gateway flags. ``dir``: where the
    logs go."""

    def __init__(self, store, n, dirname, cluster=False, gateway_args=()):
        if os.geteuid() != 0:
            raise RuntimeError("the cluster harness needs root (cgroups, nftables)")
        if not os.access(NFT, os.X_OK):
            raise RuntimeError("%s is missing: scripts/install-deps.sh installs nftables" % NFT)
        _sigterm_exits()
        self.store, self.dir = store, dirname
        self.cluster, self.gateway_args = cluster, list(gateway_args)
        self.cg_root = _cgroup2_mount()
        sweep_leftovers(self.cg_root)
        self.cg_name = "spawn-chaos-%d-%d" % (os.getpid(), int(time.time() * 1000) % 10**6)
        self.cg_dir = os.path.join(self.cg_root, self.cg_name)
        self.table = "spawn_chaos_%d" % os.getpid()
        self.members = []
        os.mkdir(self.cg_dir)
        try:
            self._nft("add table inet %s" % self.table)
            self._nft("add chain inet %s out { type filter hook output priority 0 ; }"
                      % self.table)
            for i in range(n):
                self.members.append(Member(self, i))
            for m in self.members:
                m.start_gateway()
            for m in self.members:
                m.start_host()
        except BaseException:
            self.close()
            raise

    # ---- packet filter ----------------------------------------------------------------
    def _nft(self, cmd):
        r = subprocess.run([NFT] + cmd.split(), capture_output=True, text=True, timeout=30)
        if r.returncode:
            raise RuntimeError("nft %s: %s" % (cmd, r.stderr.strip()))
        return r.stdout

    def _cg_match(self, m):
        # nft takes the path below /sys/fs/cgroup; level 2 = the member's
        # directory below ours (cgroup2 root / spawn-chaos-... / mN).
        rel = os.path.relpath(m.cgroup, "/sys/fs/cgroup")
        return 'socket cgroupv2 level 2 "%s"' % rel

    def _drop(self, m, tail):
        self._nft("add rule inet %s out %s %s drop" % (self.table, self._cg_match(m), tail))

    def partition(self, i):
        """Member i loses its peers (both ways), not the database."""
        me = self.members[i]
        others = [m for m in self.members if m is not me]
        self._drop(me, "ip daddr { %s }" % ", ".join(m.addr for m in others))
        for m in others:
            self._drop(m, "ip daddr %s" % me.addr)

    def cut_db(self, i):
        """Member i loses the database (its server's port on 127.0.0.1)."""
        self._drop(self.members[i], "ip daddr %s tcp dport %d" % (self.store.host,
                                                                  self.store.port))

    def heal(self):
        """Undoes every partition and database cut."""
        self._nft("flush chain inet %s out" % self.table)

    def reaches(self, i, addr, port, timeout=1.0):
        """Whether a TCP connection from inside member i's cgroup to
        addr:port succeeds within timeout."""
        code = ("import socket,sys\n"
                "try:\n socket.create_connection((%r, %d), timeout=%r).close()\n"
                "except OSError:\n sys.exit(1)\n" % (addr, port, timeout))
        r = subprocess.run([sys.executable, "-c", code], preexec_fn=self.members[i]._enter,
                           timeout=timeout + 30)
        return r.returncode == 0

    # ---- processes --------------------------------------------------------------------
    def kill9(self, i):
        self.members[i].kill9()

    def restart(self, i):
        self.members[i].restart()

    def rolling_restart(self):
        """SIGTERM each gateway in turn; each must exit 0 and come back."""
        for m in self.members:
            rc = m.stop_gateway()
            if rc != 0:
                raise RuntimeError("%s: the gateway exited %d on SIGTERM" % (m.name, rc))
            m.restart()

    def close(self):
        for m in self.members:
            m.close()
        try:
            self._nft("delete table inet %s" % self.table)
        except (RuntimeError, OSError) as e:
            print("chaos: %s" % e, file=sys.stderr)
        try:
            os.rmdir(self.cg_dir)
        except OSError as e:
            print("chaos: removing %s: %s" % (self.cg_dir, e), file=sys.stderr)


# ---- the workload -------------------------------------------------------------------------

def _ser(m):
    return m.SerializeToString()


class Client:
    """Invoke on one member (its own channel)."""

    def __init__(self, target):
        self.target = target
        self.ch = grpc.insecure_channel(target)
        self.invoke = self.ch.unary_unary(
            "/spawn.gateway.v1.ActorGateway/Invoke", request_serializer=_ser,
            response_deserializer=protocol_pb2.InvocationResponse.FromString)

    def close(self):
        self.ch.close()

    def add(self, actor, value, timeout=5.0, via=""):
        """One Add: a history.Op with monotonic times (ns)."""
        req = protocol_pb2.InvocationRequest(action_name="Add", register_ref=PARENT)
        req.system.name = SYSTEM
        req.actor.id.name = actor
        req.actor.id.system = SYSTEM
        req.actor.id.parent = PARENT
        a = any_pb2.Any()
        a.Pack(incrementor_pb2.Add(value=value))
        req.value.CopyFrom(a)
        t0 = time.monotonic_ns()
        try:
            resp = self.invoke(req, timeout=timeout)
        except grpc.RpcError as e:
            t1 = time.monotonic_ns()
            md = e.trailing_metadata() or ()
            nd = any(k == "spawn-retry" and v == "not-dispatched" for k, v in md)
            # A call gRPC could not send at all (no connection to the
            # member) certainly did not happen either.
            not_sent = (e.code() == grpc.StatusCode.UNAVAILABLE and
                        (e.details() or "").startswith(NOT_SENT))
            return history.Op(actor, value, t0, t1,
                              history.FAIL if nd or not_sent else history.UNKNOWN,
                              via=via, code=e.code().name, not_dispatched=nd,
                              message=e.details() or "")
        t1 = time.monotonic_ns()
        if resp.status.status != protocol_pb2.OK:
            return history.Op(actor, value, t0, t1, history.UNKNOWN, via=via,
                              code="STATUS_%d" % resp.status.status)
        tot = incrementor_pb2.Total()
        resp.value.Unpack(tot)
        return history.Op(actor, value, t0, t1, history.OK, tot.total, via=via)


class Workload:
    """Threads calling members: ``per_member`` threads per member, each
    picking one of ``actors`` at random, reading (Add 0) with probability
    ``reads``. ``split``: member i's threads call only actors[i::n], so no
    actor is shared between members (today's gateway is linearizable
    then). ``ops`` is the history (appended under a lock)."""

    def __init__(self, cluster, actors, per_member=2, reads=0.2, timeout=5.0, seed=1,
                 split=False):
        self.c, self.actors = cluster, list(actors)
        self.reads, self.timeout = reads, timeout
        self.ops = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        self.clients = []
        n = len(cluster.members)
        for i, m in enumerate(cluster.members):
            mine = self.actors[i::n] if split else self.actors
            if not mine:
                raise ValueError("split: fewer actors than members")
            for k in range(per_member):
                cl = Client(m.target)
                self.clients.append(cl)
                rnd = random.Random(seed * 1000 + len(self.threads))
                t = threading.Thread(target=self._run, daemon=True, args=(cl, m.name, rnd, mine))
                self.threads.append(t)

    def _run(self, cl, via, rnd, actors):
        while not self.stopping.is_set():
            actor = rnd.choice(actors)
            value = 0 if rnd.random() < self.reads else 1
            op = cl.add(actor, value, self.timeout, via)
            with self.lock:
                self.ops.append(op)
            if op.outcome != history.OK:
                self.stopping.wait(0.02)  # a client's pause before it tries again

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(self.timeout + 30)
        for cl in self.clients:
            cl.close()
        return self.ops

    def run_for(self, seconds):
        self.start()
        self.stopping.wait(seconds)
        return self.stop()


def error_rate(ops):
    """Calls not answered OK, over all calls."""
    return sum(1 for o in ops if o.outcome != history.OK) / max(len(ops), 1)


def final_totals(cluster, actors):
    """Reads each actor through member 0 (Add 0) after the workload: a dict
    actor -> total, for history.check(final=...)."""
    cl = Client(cluster.members[0].target)
    try:
        out = {}
        for a in actors:
            op = cl.add(a, 0, 10.0)
            if op.outcome != history.OK:
                raise RuntimeError("final read of %s: %s" % (a, op))
            out[a] = op.total
        return out
    finally:
        cl.close()


def stored_totals(store, actors, dirname):
    """The totals in the store, read by a fresh gateway that has no host
    (Admin.GetState: nothing active there, so the state comes from the
    store): a dict actor -> total (0 for an actor without state)."""
    from spawn.gateway.v1 import gateway_pb2
    env = dict(os.environ, SPAWN_STATESTORE_KEY=KEY)
    with open(os.path.join(dirname, "reader-stderr.log"), "a") as err:
        gw = subprocess.Popen([os.path.join(BUILD, "gateway", "spawn-gateway"), "--listen",
                               "127.0.0.1:0", "--statestore", store.url],
                              stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    out = _Drain(gw.stdout, os.path.join(dirname, "reader-stdout.log"), "listening")
    try:
        if not out.wait_count(1, 30):
            raise RuntimeError("the reading gateway did not start (exit %s)" % gw.poll())
        with open(os.path.join(dirname, "reader-stdout.log")) as f:
            port = int([ln for ln in f if ln.startswith("listening")][0].split()[2])
        ch = grpc.insecure_channel("127.0.0.1:%d" % port)
        get = ch.unary_unary("/spawn.gateway.v1.Admin/GetState", request_serializer=_ser,
                             response_deserializer=gateway_pb2.ActorStateView.FromString)
        totals = {}
        for a in actors:
            r = gateway_pb2.GetStateRequest()
            r.actor.system, r.actor.actor = SYSTEM, a
            try:
                v = get(r, timeout=30)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                totals[a] = 0
                continue
            if v.active:
                raise RuntimeError("%s is active on a gateway that has no host" % a)
            st = incrementor_pb2.State()
            v.state.Unpack(st)
            totals[a] = st.total
        ch.close()
        return totals
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(timeout=30)
        out.join(5)


def sanitizer_reports(dirname):
    """The log files under dirname with a sanitizer's report in them."""
    out = []
    if not dirname or not os.path.isdir(dirname):
        return out
    for f in sorted(os.listdir(dirname)):
        if f.endswith(".log"):
            with open(os.path.join(dirname, f), errors="replace") as fp:
                text = fp.read()
            if "Sanitizer" in text and "ERROR:" in text or "runtime error:" in text:
                out.append(os.path.join(dirname, f))
    return out


def log_times(path, needle, since):
    """The wall times (s) of the lines of a gateway log containing needle,
    at or after since (time.time()); the log's times are UTC of today."""
    import datetime
    day = datetime.datetime.fromtimestamp(since, datetime.timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0)
    out = []
    with open(path) as f:
        for line in f:
            if needle not in line or len(line) < 12 or line[2] != ":" or line[8] != ".":
                continue
            h, m, s, ms = int(line[0:2]), int(line[3:5]), int(line[6:8]), int(line[9:12])
            t = (day + datetime.timedelta(hours=h, minutes=m, seconds=s,
                                          milliseconds=ms)).timestamp()
            if t >= since - 0.001:
                out.append(t)
    return out


def work_dir(name):
    """A fresh directory for a test's logs: build/tests/cluster/<name>."""
    d = os.path.join(BUILD, "tests", "cluster", name)
    if os.path.isdir(d):
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
    os.makedirs(d, exist_ok=True)
    return d


def report(name, ops, anomalies, extra=""):
    """Prints what a run did and found (stderr)."""
    s = history.summary(ops)
    print("%s: %d calls, error rate %.2f%%, %s%s; %d anomalies" % (
        name, len(ops), 100 * error_rate(ops), s, extra, len(anomalies)), file=sys.stderr)
    msgs = collections.Counter("%s %s" % (o.code, o.message[:100]) for o in ops
                               if o.outcome != history.OK)
    for m, k in msgs.most_common(5):
        print("  %6d x %s" % (k, m), file=sys.stderr)
    for a in anomalies[:10]:
        print("  %r" % a, file=sys.stderr)


class ClusterCase(unittest.TestCase):
    """A test case with one store and one cluster at a time (closed and
    dropped by tearDown, also when the test fails), and the scenarios of
    issue 11 that today_test.py and cluster_mode_test.py share."""

    cluster = False  # cluster mode (--advertise) for every member
    gateway_args = ()  # more flags for every member's gateway
    n_actors = 3

    def setUp(self):
        self.store = self.c = None

    def tearDown(self):
        if self.c:
            self.c.close()
        if self.store:
            self.store.drop()
        self.c = self.store = None
        reports = sanitizer_reports(getattr(self, "dir", None))
        self.dir = None
        self.assertEqual(reports, [], "sanitizer reports in the members' logs")

    def each_store(self, fn):
        """fn(kind) for each store of CHAOS_STORES, each in a subTest, with
        its cluster closed and namespace dropped after it."""
        for kind in store_kinds():
            with self.subTest(store=kind):
                try:
                    fn(kind)
                finally:
                    self.tearDown()

    def start(self, kind, n, name):
        self.store = Store(kind)
        self.dir = work_dir("%s_%s%s" % (name, kind, "_cluster" if self.cluster else ""))
        self.c = Cluster(self.store, n, self.dir, cluster=self.cluster,
                         gateway_args=self.gateway_args)
        return self.c

    def stale_read_scenario(self, kind):
        """add 1 via A, add 1 via B, add 0 via A: the anomalies found."""
        self.start(kind, 2, "stale")
        a = Client(self.c.members[0].target)
        b = Client(self.c.members[1].target)
        try:
            ops = [a.add("x", 1, via="A"), b.add("x", 1, via="B"), a.add("x", 0, via="A")]
        finally:
            a.close()
            b.close()
        for o in ops:
            print("  %r" % o, file=sys.stderr)
        self.assertEqual([o.outcome for o in ops], [history.OK] * 3, ops)
        found = history.check(ops)
        report("stale-read scenario (%s)" % kind, ops, found)
        return ops, found

    def run_load(self, kind, name, script, n=3, split=False, timeout=5.0):
        """Starts n members, runs the workload on n_actors actors while
        script(cluster) runs (the faults, and the time they take), then
        checks the history, with the totals in the store as the final
        state: (ops, anomalies). The marks script leaves in self.marks
        (name -> monotonic ns) are printed relative to the start. split:
        see Workload; timeout: each call's deadline (s)."""
        self.start(kind, n, name)
        self.marks = {}
        actors = ["%s%d" % (name, k) for k in range(self.n_actors)]
        wl = Workload(self.c, actors, split=split, timeout=timeout).start()
        t0 = time.monotonic_ns()
        try:
            script(self.c)
        finally:
            ops = wl.stop()
        final = stored_totals(self.store, actors, self.dir)
        found = history.check(ops, final=final)
        marks = "".join(", %s at %.1f s" % (k, (v - t0) / 1e9) for k, v in self.marks.items())
        report("%s (%s)" % (name, kind), ops, found, ", final %s%s" % (final, marks))
        return ops, found

    def mark(self, what):
        self.marks[what] = time.monotonic_ns()

    def hammer(self, kind, seconds):
        """Three members, adds and reads through all of them for seconds."""
        return self.run_load(kind, "hammer", lambda c: time.sleep(seconds))
