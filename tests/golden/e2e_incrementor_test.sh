#!/usr/bin/env bash
# e2e_incrementor_test.sh GATEWAY HOST CLIENT
#
# Generated code end to end: the real gateway on an ephemeral port, the
# host and the client of examples/incrementor-gen (both built from what
# protoc-gen-spawn generated). add 1, add 1 -> 2 with the sync stub, then
# the async stub, an error with its message, and the state surviving a
# gateway restart (checkpointed). Readiness comes from the processes'
# "listening" and "registered" lines, read with a timeout: no sleeps.
set -euo pipefail
gw_bin=$1 host_bin=$2 client_bin=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-gen-e2e-XXXXXX")
gw_pid= host_pid=
cleanup() {
	[ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
	[ -n "$gw_pid" ] && kill -9 "$gw_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "e2e: $*" >&2
	for f in gw.log host.err; do
		[ -s "$work/$f" ] && { echo "--- $f" >&2; cat "$work/$f" >&2; }
	done
	exit 1
}

mkfifo "$work/gw.out" "$work/host.out"
exec 3<>"$work/gw.out" 4<>"$work/host.out"

start_gateway() { # sets target from the gateway's "listening ADDR PORT"
	"$gw_bin" --listen 127.0.0.1:0 --statestore "sqlite://$work/state.db" \
		>"$work/gw.out" 2>>"$work/gw.log" &
	gw_pid=$!
	local word addr port
	read -r -t 60 word addr port <&3 || fail "the gateway did not print 'listening' within 60 s"
	[ "$word" = listening ] || fail "the gateway said '$word $addr $port'"
	target="127.0.0.1:$port"
}

expect_registered() {
	local line
	read -r -t 60 line <&4 || fail "no 'registered' from the host within 60 s"
	[ "$line" = registered ] || fail "the host said '$line'"
}

expect_total() { # expect_total WANT CLIENT-ARGS...
	local want=$1 got
	shift
	got=$("$client_bin" --gateway "$target" "$@") || fail "client $* failed"
	[ "$got" = "$want" ] || fail "client $* gave '$got', expected '$want'"
}

start_gateway
"$host_bin" --gateway "$target" --checkpoint >"$work/host.out" 2>"$work/host.err" &
host_pid=$!
expect_registered

expect_total 1 add 1
expect_total 2 add 1
expect_total 5 --async add 3

# An actor that does not exist: the status and the gateway's message.
if err=$("$client_bin" --gateway "$target" --actor nobody add 1 2>&1); then
	fail "invoking an unknown actor succeeded: $err"
fi
case $err in
*NOT_FOUND*nobody*) ;;
*) fail "unexpected error for an unknown actor: $err" ;;
esac

# A handler's failure reaches the caller with its code and message, and
# leaves the state as it was.
if err=$("$client_bin" --gateway "$target" add 9223372036854775807 2>&1); then
	fail "an overflowing add succeeded: $err"
fi
case $err in
*OUT_OF_RANGE*"total would overflow int64"*) ;;
*) fail "unexpected error for an overflowing add: $err" ;;
esac
expect_total 5 add 0

# The gateway restarts on the same store; the host registers again by
# itself and the checkpointed total goes on.
kill -9 "$gw_pid"
wait "$gw_pid" 2>/dev/null || true
start_gateway
# The host still dials the old port: start it again on the new one.
kill -TERM "$host_pid"
wait "$host_pid" || fail "the host did not exit 0 on SIGTERM"
"$host_bin" --gateway "$target" --checkpoint >"$work/host.out" 2>>"$work/host.err" &
host_pid=$!
expect_registered
expect_total 6 add 1

kill -TERM "$host_pid"
wait "$host_pid" || fail "the host did not exit 0 on SIGTERM"
host_pid=
echo "codegen e2e incrementor: ok"
