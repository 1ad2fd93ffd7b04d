#!/usr/bin/env bash
# sdk_example_e2e_test.sh GATEWAY HOST CLIENT
# The Incrementor example against the real gateway: register, add twice,
# kill -9 the gateway, restart it on the same store, see the host register
# again by itself and the checkpointed total survive. Readiness comes from
# the host's "registered" lines (read with a timeout), never from sleeps.
set -euo pipefail
gw_bin=$1 host_bin=$2 client_bin=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-sdk-e2e-XXXXXX")
gw_pid= host_pid=
cleanup() {
	[ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
	[ -n "$gw_pid" ] && kill -9 "$gw_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
target="unix:$work/gw.sock"

start_gateway() {
	rm -f "$work/gw.sock"
	"$gw_bin" --listen "$target" --statestore "sqlite://$work/state.db" \
		>>"$work/gw.log" 2>&1 &
	gw_pid=$!
}

expect_line() { # expect_line WANT: next line of the host's stdout
	local line
	if ! read -r -t 30 line <&3; then
		echo "no '$1' from the host within 30 s" >&2
		cat "$work/gw.log" "$work/host.err" >&2 || true
		exit 1
	fi
	[ "$line" = "$1" ] || { echo "host said '$line', expected '$1'" >&2; exit 1; }
}

expect_total() { # expect_total N WANT
	local got
	got=$("$client_bin" --gateway "$target" add "$1")
	[ "$got" = "$2" ] || { echo "add $1 gave '$got', expected '$2'" >&2; exit 1; }
}

mkfifo "$work/host.out"
exec 3<>"$work/host.out"
start_gateway
"$host_bin" --gateway "$target" --checkpoint >"$work/host.out" 2>"$work/host.err" &
host_pid=$!
expect_line registered
expect_total 5 5
expect_total 7 12

# Errors come back as status and message, with exit code 1.
if err=$("$client_bin" --gateway "$target" --actor nobody add 1 2>&1); then
	echo "unknown actor succeeded" >&2
	exit 1
fi
case $err in *NOT_FOUND*) ;; *) echo "unexpected error: $err" >&2; exit 1 ;; esac

kill -9 "$gw_pid"
wait "$gw_pid" 2>/dev/null || true
start_gateway
expect_line registered # the host reconnected and registered again
expect_total 1 13      # the checkpointed state survived

kill -TERM "$host_pid"
wait "$host_pid" # exits 0 on SIGTERM
host_pid=
echo "sdk example e2e test: ok"
