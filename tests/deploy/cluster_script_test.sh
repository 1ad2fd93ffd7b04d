#!/usr/bin/env bash
# cluster_script_test.sh BUILD - scripts/cluster.sh as a user runs it:
# `start --detach` (a private PostgreSQL, three gateways in one cluster, an
# Incrementor host each) in a temp dir on free ports, one of them held by
# another listener so the script must skip it; every member answers
# grpc.health.v1 SERVING (asked by @grpc/grpc-js) and an Invoke through it;
# `status` names six running processes; `stop` leaves none of them and
# stops the database. Fails (never skips) when PostgreSQL is missing.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/cluster_script_test.XXXXXX)
export SPAWN_CLUSTER_DIR=$dir/cluster
fail() {
	echo "FAIL: $*" >&2
	for f in "$SPAWN_CLUSTER_DIR"/gw*.log; do
		[ -f "$f" ] && { echo "== $f" >&2; tail -15 "$f" >&2; }
	done
	exit 1
}
cleanup() {
	"$src/scripts/cluster.sh" stop >/dev/null 2>&1 || true
	[ -z "${holder:-}" ] || kill "$holder" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

# Four consecutive free ports; the second is then held by another
# listener, so cluster.sh must skip it (and say so). They are taken from
# 10000-16999: below the kernel's ephemeral range, the ports
# scripts/db-start.sh picks (20000 up) and the addresses other suites
# advertise as member ids (17000 up), so a port that was free when checked
# is not handed to a listener on port 0 or to an outgoing connection of a
# test running beside this one (ctest -j) before cluster.sh binds it.
read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range
top=$((eph_lo < 17000 ? eph_lo : 17000))
[ "$top" -gt 10004 ] || fail "the ephemeral port range starts at $eph_lo: no room below it"
base=
for _ in $(seq 1 50); do
	b=$((10000 + RANDOM % (top - 10004)))
	ok=1
	for p in $b $((b + 1)) $((b + 2)) $((b + 3)); do
		ss -Htln "( sport = :$p )" | grep -q . && ok=0
	done
	[ $ok -eq 1 ] && { base=$b; break; }
done
[ -n "$base" ] || fail "no four free ports"
python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(1)
print("ready",flush=True); time.sleep(600)' $((base + 1)) >"$dir/holder.out" &
holder=$!
for _ in $(seq 1 100); do grep -q ready "$dir/holder.out" && break; sleep 0.05; done
grep -q ready "$dir/holder.out" || fail "the port holder did not start"
export SPAWN_CLUSTER_PORT=$base

"$src/scripts/cluster.sh" start --detach "$build" >"$dir/start.out" 2>&1 ||
	fail "cluster.sh start: $(tail -5 "$dir/start.out")"
grep -q "every gateway joined the cluster" "$dir/start.out" || fail "no join line"
[ "$("$src/scripts/cluster.sh" status | grep -c ') running$')" = 6 ] || fail "not six processes running"

flock "$src/sdk/node/.test.lock" bash -c ". '$src/tests/golden/node_sdk.sh' && node_sdk_ready '$src/sdk/node'" ||
	fail "sdk/node's dependencies"
# The ports the gateways got (cluster.sh moves past one taken meanwhile).
ports=$(awk '$1 == "gateway" {print $4}' "$SPAWN_CLUSTER_DIR/pids")
[ "$(echo "$ports" | wc -w)" = 3 ] || fail "the pid file names $(echo "$ports" | wc -w) gateway ports, not 3"
[ "$(echo $ports)" = "$base $((base + 2)) $((base + 3))" ] ||
	fail "gateways on $(echo $ports), not $base $((base + 2)) $((base + 3)) (port $((base + 1)) is held)"
grep -q "port $((base + 1)) is in use" "$dir/start.out" || fail "the start did not say it skipped port $((base + 1))"
for p in $ports; do
	got=$(node "$src/tests/deploy/health_check.js" "127.0.0.1:$p" spawn.gateway.v1.ActorGateway 10000) ||
		fail "member $p: Health $got"
	"$build/examples/incrementor-client" --gateway "127.0.0.1:$p" --actor incrementor add 1 >/dev/null ||
		fail "member $p: the Invoke failed"
done

pids=$(awk '{print $3}' "$SPAWN_CLUSTER_DIR/pids")
"$src/scripts/cluster.sh" stop >"$dir/stop.out" 2>&1 || fail "cluster.sh stop: $(cat "$dir/stop.out")"
for pid in $pids; do
	kill -0 "$pid" 2>/dev/null && fail "pid $pid still runs after stop"
done
[ ! -f "$SPAWN_CLUSTER_DIR/pids" ] || fail "the pid file is left"
datadir=$(cat "$SPAWN_CLUSTER_DIR/db/postgres.datadir")
pg_status=(/usr/lib/postgresql/15/bin/pg_ctl -D "$datadir" status)
[ "$(id -u)" -eq 0 ] && pg_status=(runuser -u postgres -- "${pg_status[@]}")
if "${pg_status[@]}" >/dev/null 2>&1; then
	fail "PostgreSQL still runs after stop"
fi
echo "cluster.sh: start, three members SERVING and answering, stop: ok"
