#!/usr/bin/env bash
# bench/semantics.sh BUILD_DIR - the actor-semantics benchmarks (issue 5,
# section 6) through a real spawn-gateway on a fresh SQLite statestore:
#   pipe       one call piping c0->c1->c2->c3->c4 vs 5 sequential client
#              calls, interleaved in the same run (latency ratio)
#   broadcast  one broadcast to BENCH_SEM_SUBSCRIBERS named subscribers of a
#              channel (deliveries/s; round 1 activates them, later rounds warm)
#   scheduled  BENCH_SEM_SCHED_N invocations with scheduled_to, due within
#              BENCH_SEM_SCHED_WINDOW_MS after a lead; fire rate, lateness p99
# bench-semantics is host and client at once (see bench/semantics.c). The
# gateway announces its port with a "listening ADDR PORT" line; the host
# connects over a unix socket. Prints the tool's "key value" lines; exit 1 on
# any error. Runtime with the defaults: well under 4 minutes.
#
# Environment (defaults in brackets):
#   BENCH_SEM_SCENARIOS [pipe,broadcast,scheduled]  BENCH_SEM_PIPE_ITERS [2000]
#   BENCH_SEM_SUBSCRIBERS [10000]  BENCH_SEM_BCAST_ROUNDS [3]
#   BENCH_SEM_SCHED_N [100000]  BENCH_SEM_SCHED_LEAD_MS [15000]
#   BENCH_SEM_SCHED_WINDOW_MS [2000]  BENCH_SEM_WORKERS [4]
#   BENCH_SEM_STORE [sqlite://TMP/state.db]  BENCH_KEEP_TMP [unset]
#   BENCH_READY_TIMEOUT_S [20]  BENCH_SEM_GW_ARGS [extra gateway arguments]
set -euo pipefail
build=${1:?usage: bench/semantics.sh BUILD_DIR}
build=$(cd "$build" && pwd)
gw_bin=$build/gateway/spawn-gateway
tool=$build/bench/bench-semantics
for b in "$gw_bin" "$tool"; do
	[ -x "$b" ] || { echo "semantics.sh: $b missing (build it)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/bench-sem.XXXXXX)
gw_pid=
cleanup() {
	if [ -n "$gw_pid" ]; then kill -TERM "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; fi
	if [ -z "${BENCH_KEEP_TMP:-}" ]; then rm -rf "$tmp"; else echo "kept $tmp" >&2; fi
}
trap cleanup EXIT

store=${BENCH_SEM_STORE:-sqlite://$tmp/state.db}
sock=$tmp/gw.sock
mkfifo "$tmp/gw.out"
# shellcheck disable=SC2086
SPAWN_STATESTORE_KEY=${SPAWN_STATESTORE_KEY:-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=} \
	"$gw_bin" --listen 127.0.0.1:0 --listen "unix:$sock" --statestore "$store" \
	--log-level warn --max-message-bytes 67108864 ${BENCH_SEM_GW_ARGS:-} \
	>"$tmp/gw.out" 2>"$tmp/gw.err" &
gw_pid=$!
exec 3<"$tmp/gw.out"
port=
deadline=$((SECONDS + ${BENCH_READY_TIMEOUT_S:-20}))
while [ -z "$port" ] && [ $SECONDS -lt $deadline ]; do
	if read -r -t 1 line <&3; then
		case $line in listening\ 127.0.0.1:0\ *) port=${line##* } ;; esac
	fi
done
# Keep draining the gateway's stdout.
cat <&3 >"$tmp/gw.rest" &
if [ -z "$port" ]; then
	echo "semantics.sh: the gateway did not announce its port" >&2
	cat "$tmp/gw.err" >&2
	exit 1
fi

echo "machine $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "store ${store%%://*}"
start=$SECONDS
rc=0
"$tool" --gateway "127.0.0.1:$port" --host-gateway "unix:$sock" \
	--scenarios "${BENCH_SEM_SCENARIOS:-pipe,broadcast,scheduled}" \
	--workers "${BENCH_SEM_WORKERS:-4}" \
	--pipe-iters "${BENCH_SEM_PIPE_ITERS:-2000}" \
	--subscribers "${BENCH_SEM_SUBSCRIBERS:-10000}" \
	--bcast-rounds "${BENCH_SEM_BCAST_ROUNDS:-3}" \
	--sched-n "${BENCH_SEM_SCHED_N:-100000}" \
	--sched-lead-ms "${BENCH_SEM_SCHED_LEAD_MS:-15000}" \
	--sched-window-ms "${BENCH_SEM_SCHED_WINDOW_MS:-2000}" || rc=$?
echo "elapsed_s $((SECONDS - start))"
if ! kill -0 "$gw_pid" 2>/dev/null; then
	echo "semantics.sh: the gateway died" >&2
	rc=1
fi
if [ $rc -ne 0 ]; then
	echo "semantics.sh: FAILED (gateway stderr tail below)" >&2
	tail -20 "$tmp/gw.err" >&2
fi
exit $rc
