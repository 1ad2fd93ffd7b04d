#!/usr/bin/env bash
# cluster.sh - a three-member cluster on loopback, for trying it (`make cluster`).
#
#   scripts/cluster.sh [start] [--detach] [BUILD]
#       Starts a private PostgreSQL (scripts/db-start.sh, never the system
#       service), three gateways on 127.0.0.1 in cluster mode (--advertise),
#       and one Incrementor example host per gateway; prints how to call
#       them. In the foreground (the default) Ctrl-C stops everything; with
#       --detach it returns once everything is ready.
#   scripts/cluster.sh stop
#       Stops what `start` started (from any terminal): the hosts, then the
#       gateways (SIGTERM: each drains, saves, leaves the cluster), then
#       the database. Only the recorded pids are signalled.
#   scripts/cluster.sh status
#       Says which of the recorded processes are running.
#
# Environment:
#   SPAWN_CLUSTER_DIR    state, logs and the database (default .cluster)
#   SPAWN_CLUSTER_PORT   the first gateway's port; the others follow
#                        (default 8091: 8091, 8092, 8093; a port in use,
#                        or taken before the gateway binds it, is skipped
#                        and the start says so)
#   SPAWN_CLUSTER_SIZE   how many gateways (default 3)
#   SPAWN_HEARTBEAT_MS, SPAWN_MEMBER_TIMEOUT_MS   passed as --heartbeat-ms
#                        and --member-timeout-ms (default 1000 and 5000)
#
# Files under SPAWN_CLUSTER_DIR: gwN.out / gwN.log (stdout / log of gateway
# N), hostN.out, pids ("role name pid" per line; a gateway's line adds the
# port it listens on), key (the state key all members share, mode 0600), db/ (the PostgreSQL server: db/postgres.log).
# The state survives a stop: start again and keep counting.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
DIR=${SPAWN_CLUSTER_DIR:-$top/.cluster}
BASE=${SPAWN_CLUSTER_PORT:-8091}
SIZE=${SPAWN_CLUSTER_SIZE:-3}
HEARTBEAT=${SPAWN_HEARTBEAT_MS:-1000}
TIMEOUT=${SPAWN_MEMBER_TIMEOUT_MS:-5000}

say() { echo "cluster: $*" >&2; }
die() {
	say "$*"
	exit 1
}

# alive PID NAME: the process runs and is the one recorded (its command
# line names NAME), so a stale pid file never signals a stranger.
alive() {
	[ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"
}

# wait_gone SECONDS PID...: waits until each pid has exited; returns 1 if
# one is still there after SECONDS.
wait_gone() {
	local end=$((SECONDS + $1)) p
	shift
	for p in "$@"; do
		while kill -0 "$p" 2>/dev/null; do
			[ $SECONDS -lt "$end" ] || return 1
			sleep 0.1
		done
	done
}

# stop_role ROLE SECONDS: SIGTERM to every recorded process of ROLE, then
# waits SECONDS for them (SIGKILL, named, if they outlive it).
stop_role() {
	local role=$1 secs=$2 r name pid pids=()
	[ -f "$DIR/pids" ] || return 0
	while read -r r name pid _; do
		[ "$r" = "$role" ] || continue
		local bin=spawn-gateway
		[ "$role" = host ] && bin=incrementor-host
		if alive "$pid" "$bin"; then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done <"$DIR/pids"
	[ ${#pids[@]} -gt 0 ] || return 0
	if ! wait_gone "$secs" "${pids[@]}"; then
		for pid in "${pids[@]}"; do
			if kill -0 "$pid" 2>/dev/null; then
				say "$role $pid did not stop in ${secs} s: SIGKILL"
				kill -KILL "$pid" 2>/dev/null || true
			fi
		done
	fi
}

stop() {
	# Hosts first (their calls end), then the gateways: each drains for
	# up to its --drain (5 s) and saves for up to --flush-timeout (30 s).
	stop_role host 10
	stop_role gateway 50
	if [ -d "$DIR/db" ]; then
		"$top/scripts/db-stop.sh" "$DIR/db" postgres >/dev/null 2>&1 || say "db-stop.sh failed (see $DIR/db/postgres.log)"
	fi
	rm -f "$DIR/pids"
	say "stopped"
}

status() {
	[ -f "$DIR/pids" ] || {
		echo "no cluster recorded under $DIR"
		return 0
	}
	local r name pid bin
	while read -r r name pid _; do
		bin=spawn-gateway
		[ "$r" = host ] && bin=incrementor-host
		if alive "$pid" "$bin"; then echo "$name (pid $pid) running"; else echo "$name (pid $pid) not running"; fi
	done <"$DIR/pids"
}

# port_free PORT: nobody listens on 127.0.0.1:PORT.
port_free() {
	if command -v ss >/dev/null; then
		if ss -Htln "( sport = :$1 )" 2>/dev/null | grep -q .; then return 1; fi
	elif (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
		return 1
	fi
	return 0
}

# wait_line FILE PATTERN PID SECONDS: waits for a line matching PATTERN in
# FILE while PID lives.
wait_line() {
	local end=$((SECONDS + $4))
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		kill -0 "$3" 2>/dev/null || return 1
		[ $SECONDS -lt "$end" ] || return 1
		sleep 0.1
	done
}

start() {
	local detach=0 build=build a
	for a in "$@"; do
		case $a in
		--detach) detach=1 ;;
		-*) die "unknown option $a (usage: $0 [start] [--detach] [BUILD] | stop | status)" ;;
		*) build=$a ;;
		esac
	done
	local gw="$build/gateway/spawn-gateway" host="$build/examples/incrementor-host"
	local client="$build/examples/incrementor-client"
	local f
	for f in "$gw" "$host" "$client"; do
		[ -x "$f" ] || die "build first (make build): $f is missing"
	done
	# Read the whole help (grep -q would close the pipe early: with
	# pipefail a long --help then fails on SIGPIPE).
	case $("$gw" --help) in
	*--advertise*) ;;
	*) die "$gw has no cluster mode (--advertise): build a gateway that has it" ;;
	esac
	mkdir -p "$DIR"
	if [ -f "$DIR/pids" ]; then
		local r name pid
		while read -r r name pid _; do
			alive "$pid" spawn-gateway && die "a cluster is running already ($name, pid $pid): $0 stop"
		done <"$DIR/pids"
		rm -f "$DIR/pids"
	fi
	local i

	# From here leaving for any reason (a failure, Ctrl-C, the gateways
	# gone) stops what was started; only a detached start that is ready
	# leaves it running.
	keep=0
	trap '[ $keep -eq 1 ] || stop' EXIT
	trap 'echo >&2; exit 0' INT TERM

	say "starting PostgreSQL under $DIR/db"
	local rc=0
	"$top/scripts/db-start.sh" "$DIR/db" postgres >/dev/null || rc=$?
	[ $rc -eq 0 ] || die "PostgreSQL did not start (exit $rc; scripts/install-deps.sh installs it)"
	local url
	url=$(. "$DIR/db/postgres.env" && echo "$SPAWN_TEST_POSTGRES_URL")
	# One state key for every member: they share the rows.
	if [ ! -s "$DIR/key" ]; then
		(umask 077 && head -c 32 /dev/urandom | base64 >"$DIR/key")
	fi
	local key
	key=$(cat "$DIR/key")

	: >"$DIR/pids"
	local port pid tries ports=()
	# The ports were free when checked, but another process may bind one
	# before the gateway does: a start that fails on "address is in use"
	# moves to the next free port (up to 20 times) and says so. The port
	# each gateway got is the 4th field of its line in the pids file.
	port=$((BASE - 1))
	for i in $(seq 1 "$SIZE"); do
		tries=0
		while :; do
			port=$((port + 1))
			[ $port -le 65535 ] || die "no free port from $BASE up: set SPAWN_CLUSTER_PORT"
			if ! port_free "$port"; then
				say "port $port is in use: gw$i takes the next one"
				continue
			fi
			: >"$DIR/gw$i.out"
			SPAWN_STATESTORE_KEY=$key setsid "$gw" --listen "127.0.0.1:$port" \
				--advertise "127.0.0.1:$port" --heartbeat-ms "$HEARTBEAT" \
				--member-timeout-ms "$TIMEOUT" --statestore "$url" \
				</dev/null >"$DIR/gw$i.out" 2>"$DIR/gw$i.log" &
			pid=$!
			echo "gateway gw$i $pid $port" >>"$DIR/pids"
			wait_line "$DIR/gw$i.out" '^listening' "$pid" 30 && break
			if ! kill -0 "$pid" 2>/dev/null && grep -q 'address is in use' "$DIR/gw$i.log" &&
				[ $((tries += 1)) -lt 20 ]; then
				say "gw$i: 127.0.0.1:$port was taken before the gateway bound it; trying the next port"
				sed -i "/^gateway gw$i $pid /d" "$DIR/pids"
				continue
			fi
			die "gateway gw$i did not start; its log, $DIR/gw$i.log, ends with:
$(tail -5 "$DIR/gw$i.log")"
		done
		ports+=("$port")
		say "gw$i listening on 127.0.0.1:$port (pid $pid)"
	done
	# Ready once each is an ACTIVE member of the view ("member ID joined").
	for i in $(seq 1 "$SIZE"); do
		pid=$(awk -v n="gw$i" '$2 == n {print $3}' "$DIR/pids")
		wait_line "$DIR/gw$i.out" '^member .* joined' "$pid" 30 ||
			die "gateway gw$i did not join the cluster; its log, $DIR/gw$i.log, ends with:
$(tail -5 "$DIR/gw$i.log")"
	done
	say "every gateway joined the cluster"
	for i in $(seq 1 "$SIZE"); do
		port=${ports[$((i - 1))]}
		setsid "$host" --gateway "127.0.0.1:$port" </dev/null >"$DIR/host$i.out" 2>&1 &
		pid=$!
		echo "host host$i $pid" >>"$DIR/pids"
		wait_line "$DIR/host$i.out" 'registered' "$pid" 30 ||
			die "host$i did not register; $DIR/host$i.out ends with:
$(tail -5 "$DIR/host$i.out")"
	done

	local first=${ports[0]} last=${ports[$((SIZE - 1))]}
	cat <<MSG

  $SIZE gateways in one cluster on 127.0.0.1 ports ${ports[*]} (PostgreSQL: $DIR/db),
  each with an Incrementor host. Call the actor through any member:

      $client --gateway 127.0.0.1:$first --actor incrementor add 1
      $client --gateway 127.0.0.1:$last --actor incrementor add 1

  Each gateway's log shows the membership view (grep 'cluster: view'
  $DIR/gw1.log). Kill one member (kill -9 \$(awk '\$2=="gw1"{print \$3}' $DIR/pids))
  and the others declare it dead within the member timeout (${TIMEOUT} ms).
  Logs: $DIR/gwN.log. Stop everything: $( [ $detach -eq 1 ] && echo "$0 stop" || echo "Ctrl-C (or $0 stop)").

MSG
	if [ $detach -eq 1 ]; then
		keep=1
		return 0
	fi
	# Foreground: until Ctrl-C, or until every gateway is gone.
	local pids=()
	while read -r _ name pid _; do pids+=("$pid"); done < <(grep '^gateway ' "$DIR/pids")
	while :; do
		local any=0
		for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && any=1; done
		[ $any -eq 1 ] || break
		sleep 1
	done
	say "every gateway has exited"
}

case ${1:-start} in
start)
	shift || true
	start "$@"
	;;
stop) stop ;;
status) status ;;
--detach | build* | /*) start "$@" ;;
*)
	echo "usage: $0 [start] [--detach] [BUILD] | stop | status" >&2
	exit 2
	;;
esac
