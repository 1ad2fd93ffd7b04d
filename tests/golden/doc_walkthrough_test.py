#!/usr/bin/python3
"""doc_walkthrough_test.py DOC SECTION --build DIR --src DIR [--store sqlite|postgres]
       [--gateway-addr network|loopback] [--set NAME=VALUE]... [--require TOOL]...
       [--no-audit-check] [--no-store-rewrite] [--timeout S] [--keep]

Runs a walkthrough of the docs literally: every ```sh block of the section
titled SECTION (a "## " heading) of DOC, in order, in one bash shell in a
temporary directory, and compares what each block prints (stdout and stderr)
with the ```text block that follows it, when one does: `...` in a line
matches any text, `...` alone on a line any number of lines. A block without
a text block must succeed (bash errexit); the run stops at its first failing
command.

What is not the doc's own text, and why:
* The first sh block is the doc's settings block (it starts "# Settings").
  It is replaced by this test's settings: SPAWN_DIR in the temporary
  directory; GATEWAY_ADDR the machine's first non-loopback IPv4 address (so
  the gateway really binds a network address: the safe-default rule applies
  to it), or 127.0.0.1 when there is none; ADMIN_ADDR 127.0.0.1; every port
  0: the doc reads the ports back from the gateway's "listening ADDR PORT"
  lines, as it tells readers; PATH holding this build's binaries and
  scripts/; SPAWN_PY_PROTO_OUT this build's Python modules.
* --store postgres: DB is a fresh database on the private PostgreSQL server
  of the ctest fixture spawn_db_tls (scripts/db-start.sh --tls: TLS only,
  client certificates required), and the files the doc says the database's
  operator hands over (db-ca.pem, db-client.pem, db-client.key) are the
  fixture's. After the host registered, the test asks the server whether the
  gateway's sessions to that database are TLS (pg_stat_ssl).
* --store sqlite: after the block that writes gateway.env, the test
  replaces the store URL in it by sqlite://$SPAWN_DIR/state.db (no TLS
  database is needed); everything else runs as written.
* After the last block the test also checks the gateway's log for the
  Admin audit lines (the allowed read by ops, the refusal of web) and that
  the gateway and the host exited 0.

The defaults are those of docs/security.md's walkthrough; other walkthroughs
(docs/operations.md) turn its specifics off or add their own:
* --gateway-addr loopback: GATEWAY_ADDR is 127.0.0.1 (a walkthrough served
  in plaintext on loopback, which the safe-default rule allows).
* --set NAME=VALUE (repeatable): one more line of the settings, NAME=VALUE
  (VALUE shell-quoted); "{work}" in VALUE is the temporary directory. For a
  directory the doc keeps things in besides SPAWN_DIR (backups, keys).
* --require TOOL (repeatable): the walkthrough fails at once, naming TOOL,
  when TOOL is not on the PATH (the build's, scripts/, then the system's).
  A missing tool is a failure, never a skip.
* --no-audit-check: no check of the Admin audit lines in SPAWN_DIR/gateway.log.
* --no-store-rewrite: the gateway.env that the doc writes is left as written
  (--store sqlite otherwise replaces its store URL).
* --timeout S: the whole walkthrough's limit (default 240 s).
"""
import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77


def blocks_of(doc, section):
    text = open(doc, encoding="utf-8").read()
    start = text.find("\n## %s\n" % section)
    if start < 0:
        sys.exit("%s: no section '## %s'" % (doc, section))
    end = text.find("\n## ", start + 1)
    body = text[start:end if end >= 0 else len(text)]
    parts = body.split("```")
    fenced = []
    for i, p in enumerate(parts):
        if i % 2:
            lang, _, code = p.partition("\n")
            fenced.append((lang.strip(), code))
    steps = []  # [code, expected text or None]
    for lang, code in fenced:
        if lang == "sh":
            steps.append([code, None])
        elif lang == "text" and steps and steps[-1][1] is None:
            steps[-1][1] = code
    return steps


def pattern(expected):
    lines = expected.rstrip("\n").split("\n")
    out = []
    for line in lines:
        if line.strip() == "...":
            out.append(r"(?:[^\n]*\n)*?")
        else:
            out.append(".*".join(re.escape(x) for x in line.split("...")) + r"\n")
    return re.compile("".join(out), re.S)


def matches(expected, got):
    got = got if got.endswith("\n") else got + "\n"
    return pattern(expected).fullmatch(got) is not None


def network_address():
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                             capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            m = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", line)
            if m:
                return m.group(1)
    except OSError:
        pass
    return "127.0.0.1"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("doc")
    ap.add_argument("section")
    ap.add_argument("--build", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--gateway-addr", choices=["network", "loopback"], default="network")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="one more setting; {work} is the temporary directory")
    ap.add_argument("--require", action="append", default=[], metavar="TOOL",
                    help="fail at once when TOOL is not on the PATH")
    ap.add_argument("--no-audit-check", action="store_true",
                    help="do not look for the Admin audit lines in the gateway's log")
    ap.add_argument("--no-store-rewrite", action="store_true",
                    help="leave the store URL of the doc's gateway.env as written")
    ap.add_argument("--timeout", type=int, default=240, help="seconds for the whole walkthrough")
    args = ap.parse_args()
    build, src = os.path.abspath(args.build), os.path.abspath(args.src)
    path = os.pathsep.join([os.path.join(build, "gateway"), os.path.join(build, "examples"),
                            os.path.join(src, "scripts"), os.environ.get("PATH", "")])
    missing = [t for t in args.require if not shutil.which(t, path=path)]
    if missing:
        print("FAIL: the walkthrough needs %s, not on the PATH (%s)"
              % (", ".join(missing), path), file=sys.stderr)
        return 1
    extra = []
    for kv in args.set:
        name, eq, value = kv.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            sys.exit("--set %r: not NAME=VALUE" % kv)
        extra.append((name, value))

    steps = blocks_of(args.doc, args.section)
    if not steps or not steps[0][0].startswith("# Settings"):
        sys.exit("%s: the section's first sh block is not its '# Settings' block" % args.doc)
    if not any(s[1] is not None for s in steps):
        sys.exit("%s: no sh block is followed by the text it prints" % args.doc)

    work = tempfile.mkdtemp(prefix="spawn-prod-walk-")
    etc = os.path.join(work, "etc")
    os.makedirs(etc)
    addr = network_address() if args.gateway_addr == "network" else "127.0.0.1"
    pg_admin = None
    dbname = None
    settings = [
        "export PATH=%s:%s:%s:$PATH" % tuple(shlex.quote(p) for p in (
            os.path.join(build, "gateway"), os.path.join(build, "examples"),
            os.path.join(src, "scripts"))),
        "export SPAWN_PY_PROTO_OUT=%s" % shlex.quote(os.path.join(build, "python-gen")),
        "SPAWN_DIR=%s" % shlex.quote(etc),
        "GATEWAY_NAME=gateway.example.org",
        "GATEWAY_ADDR=%s" % addr,
        "ADMIN_ADDR=127.0.0.1",
        "CLIENT_PORT=0 HOST_PORT=0 ADMIN_PORT=0",
    ]
    if args.store == "postgres":
        url = os.environ.get("SPAWN_TEST_POSTGRES_URL")
        certs = os.environ.get("SPAWN_TEST_TLS_CERTS")
        admin = os.environ.get("SPAWN_TEST_POSTGRES_ADMIN")
        if not url or not certs or not admin or "sslmode=verify-full" not in url:
            if os.environ.get("CI") == "true":
                sys.exit("no TLS PostgreSQL server of the fixture spawn_db_tls (CI=true: failing)")
            print("SKIPPED: no TLS PostgreSQL server of the fixture spawn_db_tls")
            return SKIP
        pg_admin = shlex.split(admin)
        dbname = "prod_walk_%d_%d" % (os.getpid(), int(time.time() * 1000) % 10**9)
        psql(pg_admin, "postgres", "CREATE DATABASE %s OWNER spawn" % dbname)
        base = url.split("?", 1)[0].rsplit("/", 1)[0]
        settings.append("DB=%s" % shlex.quote("%s/%s" % (base, dbname)))
        for src_name, dst in (("ca.pem", "db-ca.pem"), ("client.pem", "db-client.pem"),
                              ("client.key", "db-client.key")):
            shutil.copy(os.path.join(certs, src_name), os.path.join(etc, dst))
            os.chmod(os.path.join(etc, dst), 0o600)
    else:
        settings.append("DB=postgres://spawn:PASSWORD@db.example.org:5432/spawn")
    settings += ["%s=%s" % (n, shlex.quote(v.replace("{work}", work))) for n, v in extra]
    steps[0][0] = "\n".join(settings) + "\n"

    # The driver: one bash, each block sourced with its output in its own file.
    driver = ["set -e", "cd %s" % shlex.quote(work),
              "unset SPAWN_TLS_CA SPAWN_TLS_CERT SPAWN_TLS_KEY SPAWN_TLS_SERVER_NAME SPAWN_TOKEN",
              "unset SPAWN_GATEWAY SPAWN_STATESTORE_URL SPAWN_STATESTORE_KEY SPAWN_STATESTORE_KEYS",
              "trap 'kill -9 ${BILLING_PID:-} ${HOST_PID:-} ${GATEWAY_PID:-} $(jobs -p) 2>/dev/null || true' EXIT"]
    for i, (code, expected) in enumerate(steps):
        bf = os.path.join(work, "block%02d.sh" % i)
        with open(bf, "w") as f:
            f.write(code)
        of = shlex.quote(os.path.join(work, "block%02d.out" % i))
        driver.append("echo %d > %s" % (i, shlex.quote(os.path.join(work, "at"))))
        if expected is None:
            driver.append("source %s >%s 2>&1" % (shlex.quote(bf), of))
        else:
            driver.append("set +e; source %s >%s 2>&1; set -e" % (shlex.quote(bf), of))
        if "gateway.env <<" in code and args.store == "sqlite" and not args.no_store_rewrite:
            driver.append("sed -i \"s|^SPAWN_STATESTORE_URL=.*|SPAWN_STATESTORE_URL="
                          "'sqlite://$SPAWN_DIR/state.db'|\" \"$SPAWN_DIR/gateway.env\"")
        if "incrementor-host" in code and args.store == "postgres":
            # The gateway's own sessions to its database: all TLS.
            q = ("SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a "
                 "JOIN pg_stat_ssl s USING (pid) WHERE a.datname = '%s'" % dbname)
            driver.append("%s -d postgres -At -c %s > %s" % (
                " ".join(shlex.quote(x) for x in pg_admin), shlex.quote(q),
                shlex.quote(os.path.join(work, "pg_ssl.out"))))
    driver.append("echo done > %s" % shlex.quote(os.path.join(work, "at")))
    with open(os.path.join(work, "driver.sh"), "w") as f:
        f.write("\n".join(driver) + "\n")

    failures = []
    try:
        # Its own process group: whatever the blocks left running (the
        # gateway, hosts) goes with it when it overruns.
        driver_proc = subprocess.Popen(["bash", os.path.join(work, "driver.sh")],
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = driver_proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(driver_proc.pid, signal.SIGKILL)
            rc = driver_proc.wait()
            failures.append("the walkthrough did not finish within %d s" % args.timeout)
        # The doc stops what it starts: nothing of its group may be left.
        left = group_members(driver_proc.pid)
        if left:
            failures.append("the walkthrough left processes running:\n" + left)
        try:
            os.killpg(driver_proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        at = read(work, "at").strip()
        if rc != 0 or at != "done":
            failures.append("the walkthrough stopped in block %s (exit %d):\n%s\n--- it printed:\n%s"
                            % (at, rc, steps[int(at)][0] if at.isdigit() else "",
                               read(work, "block%02d.out" % int(at)) if at.isdigit() else ""))
        for i, (code, expected) in enumerate(steps):
            if expected is None or not os.path.exists(os.path.join(work, "block%02d.out" % i)):
                continue
            got = read(work, "block%02d.out" % i)
            if not matches(expected, got):
                failures.append("block %d:\n%s--- expected:\n%s--- got:\n%s" % (i, code, expected, got))
        log = read(etc, "gateway.log")
        for want in () if args.no_audit_check else (
                "admin GetState by principal 'ops': allowed",
                "admin GetState by principal 'web': refused PERMISSION_DENIED"):
            if want not in log:
                failures.append("the gateway's log lacks %r" % want)
        if args.store == "postgres":
            got = read(work, "pg_ssl.out").strip()
            tls, total = (int(x) for x in got.split("|")) if "|" in got else (0, 0)
            if total == 0 or tls != total:
                failures.append("the gateway's sessions to %s: %s TLS of %s (pg_stat_ssl)"
                                % (dbname, tls, total))
            else:
                print("PostgreSQL: %d of the gateway's sessions, all TLS" % total)
    finally:
        if failures:
            for f in failures:
                print("FAIL: " + f, file=sys.stderr)
            for name in ("gateway.log", "host.log"):
                print("--- %s:\n%s" % (name, read(etc, name)), file=sys.stderr)
        if dbname:
            psql(pg_admin, "postgres", "DROP DATABASE IF EXISTS %s" % dbname)
        if args.keep:
            print("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        return 1
    print("%s, '%s': %d blocks run, %d outputs checked (gateway on %s, store %s)"
          % (args.doc, args.section, len(steps), sum(1 for s in steps if s[1] is not None),
             addr, args.store))
    return 0


def group_members(pgid):
    """'PID COMMAND' lines of the live processes of process group pgid."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open("/proc/%s/stat" % pid).read()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) != pgid or fields[0] == "Z":
                continue
            cmd = open("/proc/%s/cmdline" % pid, "rb").read().replace(b"\0", b" ")
            out.append("%s %s" % (pid, cmd.decode(errors="replace").strip()))
        except (OSError, ValueError, IndexError):
            continue
    return "\n".join(out)


def read(d, name):
    try:
        return open(os.path.join(d, name), encoding="utf-8", errors="replace").read()
    except OSError:
        return ""


def psql(admin, db, sql):
    subprocess.run(admin + ["-d", db, "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                   timeout=60, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
