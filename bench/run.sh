#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - the benchmark suite (`make bench` runs it).
#
# Every process listens on an ephemeral loopback port and announces it with a
# "listening PORT" line on stdout; this script reads that line (it never sleeps
# to wait for readiness). Scenarios:
#   direct     loadgen -> bench-echo-server                  (one hop, the baseline)
#   forwarder  loadgen -> bench-forwarder -> echo server     (two hops, no logic:
#                                                             the limit of any gateway)
#   gateway    loadgen -> spawn-gateway -> bench-echo-host   (1 and 1,000 actors)
#   plain      the gateway path called two ways on one gateway and echo host
#              (not in the default list): plain-invoke, ActorGateway/Invoke to
#              instances of the UNNAMED actor Echo; plain-stub, the same calls
#              as the plain gRPC method /bench.Echo/echo of its contract
#              (bench/echo.proto, loaded with --descriptors), as a generated
#              stub would make them (issue 12 §1). plain-stub is compared with
#              plain-invoke in the same round.
#              plain-json, the same calls as HTTP/JSON on the generic route
#              POST /v1/bench/NAME/echo?parent=Echo (--http; bench-http-loadgen,
#              libcurl keep-alive connections; JSON in and out, issue 12 §2),
#              also compared with plain-invoke in the same round.
#   spawnhttp  loadgen -> spawn-gateway -> bench-http-echo-host: the gateway
#              scenario's actor behind Spawn's HTTP/1.1 protocol (--http; the
#              gateway calls the host back over pooled keep-alive HTTP);
#              compared with the gateway scenario (a gRPC host) in the same round
#   actors     BENCH_MEM_ACTORS actors activated once each, in two halves; the
#              gateway's VmRSS growth divided by the number of actors, and the
#              second half's growth by its actors (docs/design/memory.md;
#              `make bench-actors-10m` is the long profile: 10,000,000 actors)
#   security   the gateway path at BENCH_SEC_INFLIGHT calls in flight over
#              BENCH_SEC_ACTORS actors (each level of BENCH_SEC_INFLIGHT, a list) on
#              four gateways started alike, each with
#              its own echo host (not in the default list):
#                sec-plain        no TLS, no policy: the baseline of the other three
#                sec-mtls         --tls-cert/--tls-key/--tls-client-ca; the loadgen
#                                 and the host present certificates (one connection
#                                 each, handshaken once and reused)
#                sec-token        plaintext, --access with a bearer token for the
#                                 client and one for the host
#                sec-mtls-authz   mTLS and --access by certificate identity
#                sec-plain-nb,    plaintext and mTLS with --host-batch 1 (the host link
#                sec-mtls-nb      unbatched, as before issue 15): sec-mtls-nb is compared
#                                 with sec-plain-nb (variants plain-nb, mtls-nb)
#              Certificates from tests/tls/mkcerts.sh (made per run); the host
#              gets its TLS files and token through SPAWN_TLS_CA/CERT/KEY and
#              SPAWN_TOKEN (the C SDK's environment fallbacks).
#   cluster    routing in a cluster (issue 11 §6; not in the default list), views
#              from --cluster-test-view (the router's code; SQLite stores, no
#              database server), BENCH_CL_ACTORS instances of echo-actor:
#                cl-owner       loadgen -> member B, which owns every actor
#                cl-nonowner    loadgen -> member A (no host), which forwards
#                               every call to B over Peer.Forward
#                cl-fwd-owner   loadgen -> bench-forwarder -> B: one plain gRPC
#                               hop, the yardstick of the forward
#                cl-1member     one gateway alone (no cluster) with its host,
#                               3 channels
#                cl-3members    three members, each with its host serving
#                               echo-actor; the loadgen's 3 channels go one to
#                               each member, so 2/3 of the calls are forwarded
#              cl-nonowner and cl-fwd-owner are compared with cl-owner, and
#              cl-3members with cl-1member (CPU: every process of the path)
#   hostlink   the batched host link (docs/protocol.md) against one message per
#              task and per result, for each runtime in BENCH_LINK_RUNTIMES
#              (c: bench-echo-host, ts: bench/echo_host.mjs on sdk/node/dist,
#              py: bench/echo_host.py on BUILD/python-gen, go: bench/echo_host_go
#              on sdk/go, built in BUILD/go, rb: bench/echo_host.rb on sdk/ruby), at each level of
#              BENCH_LINK_INFLIGHT over BENCH_LINK_ACTORS actors. Two gateways
#              per runtime, started alike but for --host-batch:
#                link-R           batches (the default, --host-batch 128)
#                link-R-nb        --host-batch 1: the gateway grants no batches,
#                                 so both directions carry one message each
#              (not in the default list; each link-R is compared with link-R-nb)
#   metrics    the gateway path at BENCH_MET_INFLIGHT over BENCH_MET_ACTORS actors on
#              two gateways started alike with --http, each with its own echo
#              host: met-on (--metrics on, the default, its /metrics scraped every
#              second as Prometheus would) and met-off (--metrics off); met-on is
#              compared with met-off (not in the default list)
#   tracing    span export cost (docs/observability.md): two gateways started alike,
#              each with its own echo host, at each level of BENCH_TRACE_INFLIGHT over
#              BENCH_TRACE_ACTORS actors (not in the default list):
#                trace-off        W3C trace context propagated, no span export
#                trace-otlp       --otlp-endpoint to bench/otlp_sink.py (on the
#                                 loadgen's CPU): every call's spans exported
#              trace-otlp is compared with trace-off; the sink's request and byte
#              counts and the gateway's drop lines are printed after the table
# The machine is small and shared, so results are ratios against baselines
# measured in the same run: the scenarios are interleaved round by round
# (BENCH_ROUNDS), ratios are taken within a round, and the table shows medians
# over rounds. A scenario with any error is reported as FAILED and the script
# exits 1.
#
# Pinning (BENCH_PIN=split, the default when at least 2 CPUs are allowed): the
# load generator runs on the first allowed CPU and every process under test on
# the others, so the client never competes with the system it measures and
# every scenario gives its servers the same cores. BENCH_PIN=none leaves
# placement to the scheduler (on this 2-core VM, a ping-pong between two
# processes costs ~27us on one core and ~72us across cores, and the scheduler
# flips between the two, so unpinned latencies are bimodal).
#
# Processes: every gateway is started by gw_start (loopback port 0, its own
# SQLite store, no idle deactivation, plus the scenario's flags); a scenario
# that is one gateway with its own host is a pair (pair_start NAME, run by
# pair_load), its processes gw-NAME and host-NAME (logs $TMP/gw-NAME.err with
# BENCH_KEEP_TMP).
#
# Besides rps and latency, each run reports the CPU time the processes under
# test used per call (utime+stime from /proc/PID/stat over the whole run,
# warmup included, divided by every call made): the figure least disturbed by
# a noisy machine.
#
# Environment (defaults in brackets):
#   BENCH_DURATION_MS [3000]  BENCH_WARMUP_MS [1000]  BENCH_ROUNDS [3]
#   BENCH_INFLIGHT ["1 64"]   BENCH_GATEWAY_ACTORS ["1 1000"]
#   BENCH_MEM_ACTORS [1000000] BENCH_MEM_BATCH [256] BENCH_MEM_WARM [10000]
#   BENCH_SCENARIOS ["direct forwarder gateway actors"]
#   BENCH_PAYLOAD_BYTES [64]  BENCH_LOADGEN_THREADS [1] BENCH_LOADGEN_CHANNELS [1]
#   BENCH_ECHO_THREADS [1]    BENCH_FWD_THREADS [1]     BENCH_READY_TIMEOUT_S [20]
#   BENCH_GW_SYSTEM [bench]   BENCH_GW_ACTION [echo]    BENCH_KEEP_TMP [unset]
#   BENCH_PIN [split]         BENCH_GW_REGISTER_REF [unset: actors are invoked by name]
#   BENCH_SEC_INFLIGHT [64]   BENCH_SEC_ACTORS [1000]
#   BENCH_SEC_VARIANTS ["mtls token mtls-authz"] (sec-plain always runs)
#   BENCH_LINK_RUNTIMES ["c ts py"] BENCH_LINK_INFLIGHT ["1 64"] BENCH_LINK_ACTORS [1000]
#   BENCH_MET_INFLIGHT ["1 64"] BENCH_MET_ACTORS [1000]
#   BENCH_CL_ACTORS [1000] (cluster: at each level of BENCH_INFLIGHT)
#   BENCH_TRACE_INFLIGHT ["1 64"] BENCH_TRACE_ACTORS [1000]
#   BENCH_ECHO_FLAGS [unset: the echo host of gateway/actors runs its handler inline;
#                    "--workers 1": on a worker thread, the C SDK's default]
set -euo pipefail

BUILD=${1:-build}
BIN=$BUILD/bench
DURATION_MS=${BENCH_DURATION_MS:-3000}
WARMUP_MS=${BENCH_WARMUP_MS:-1000}
ROUNDS=${BENCH_ROUNDS:-3}
INFLIGHT=${BENCH_INFLIGHT:-"1 64"}
GW_ACTORS=${BENCH_GATEWAY_ACTORS:-"1 1000"}
MEM_ACTORS=${BENCH_MEM_ACTORS:-1000000}
MEM_BATCH=${BENCH_MEM_BATCH:-256}
MEM_WARM=${BENCH_MEM_WARM:-10000}
SCENARIOS=${BENCH_SCENARIOS:-"direct forwarder gateway actors"}
PAYLOAD=${BENCH_PAYLOAD_BYTES:-64}
LG_THREADS=${BENCH_LOADGEN_THREADS:-1}
LG_CHANNELS=${BENCH_LOADGEN_CHANNELS:-1}
ECHO_THREADS=${BENCH_ECHO_THREADS:-1}
FWD_THREADS=${BENCH_FWD_THREADS:-1}
READY_TIMEOUT_S=${BENCH_READY_TIMEOUT_S:-20}
GW_SYSTEM=${BENCH_GW_SYSTEM:-bench}
GW_ACTION=${BENCH_GW_ACTION:-echo}
# Loadgen flags for every call to the gateway; with BENCH_GW_REGISTER_REF the
# M distinct actors are instances of that UNNAMED actor, spawned on first call.
GW_FLAGS=(--system "$GW_SYSTEM" --action "$GW_ACTION")
BENCH_GW_REGISTER_REF=${BENCH_GW_REGISTER_REF-echo-actor}
if [[ -n ${BENCH_GW_REGISTER_REF:-} ]]; then
	GW_FLAGS+=(--register-ref "$BENCH_GW_REGISTER_REF")
fi
PIN=${BENCH_PIN:-split}
SEC_INFLIGHT=${BENCH_SEC_INFLIGHT:-64}
SEC_ACTORS=${BENCH_SEC_ACTORS:-1000}
SEC_VARIANTS=${BENCH_SEC_VARIANTS:-"mtls token mtls-authz"}
LINK_RUNTIMES=${BENCH_LINK_RUNTIMES:-"c ts py go rb"}
LINK_INFLIGHT=${BENCH_LINK_INFLIGHT:-"1 64"}
LINK_ACTORS=${BENCH_LINK_ACTORS:-1000}
MET_INFLIGHT=${BENCH_MET_INFLIGHT:-"1 64"}
MET_ACTORS=${BENCH_MET_ACTORS:-1000}
CL_ACTORS=${BENCH_CL_ACTORS:-1000}
TRACE_INFLIGHT=${BENCH_TRACE_INFLIGHT:-"1 64"}
TRACE_ACTORS=${BENCH_TRACE_ACTORS:-1000}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GATEWAY=$BUILD/gateway/spawn-gateway
ECHO_HOST=$BIN/bench-echo-host

for b in bench-echo-server bench-forwarder bench-loadgen; do
	if [[ ! -x $BIN/$b ]]; then
		echo "run.sh: $BIN/$b is missing: build with -DSPAWN_BENCH=ON first" >&2
		exit 2
	fi
done
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# The CPUs this script may use, one per line ("0-1,4" -> 0 1 4).
allowed_cpus() {
	local list part
	list=$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)
	for part in ${list//,/ }; do
		if [[ $part == *-* ]]; then seq "${part%-*}" "${part#*-}"; else echo "$part"; fi
	done
}
LG_PIN=() SUT_PIN=()
mapfile -t CPUS < <(allowed_cpus)
if [[ $PIN == split ]] && ((${#CPUS[@]} >= 2)) && command -v taskset >/dev/null; then
	sut=$(IFS=,; echo "${CPUS[*]:1}")
	LG_PIN=(taskset -c "${CPUS[0]}") SUT_PIN=(taskset -c "$sut")
	PIN="split (loadgen on cpu ${CPUS[0]}, processes under test on cpus $sut)"
else
	PIN=none
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/spawn-bench.XXXXXX")
RESULTS=$TMP/results   # one line per loadgen run: scenario inflight actors round rps p50 p99 p999 errors cpu_us_per_call cpu_us_per_call_of_the_first_process
: >"$RESULTS"
PIDS=()
FAILED=()

cleanup() {
	local rc=$?
	# Only the processes this script started, by pid, newest first.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[i]}" 2>/dev/null || true
	done
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		wait "${PIDS[i]}" 2>/dev/null || true
	done
	if [[ -n ${BENCH_KEEP_TMP:-} ]]; then
		echo "run.sh: logs kept in $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME REGEX CMD...: starts CMD with stdout on a pipe, reads lines until
# one matches REGEX (whose first group, if any, lands in MATCH), keeps draining
# the pipe into $TMP/NAME.out, and sets PID. Fails after READY_TIMEOUT_S
# seconds or when the process exits first.
start() {
	local name=$1 regex=$2 fd line fifo=$TMP/$1.fifo
	shift 2
	mkfifo "$fifo"
	"$@" >"$fifo" 2>"$TMP/$name.err" &
	PID=$!
	PIDS+=("$PID")
	exec {fd}<"$fifo"
	rm -f "$fifo"
	MATCH=
	local found=0
	while IFS= read -r -t "$READY_TIMEOUT_S" -u "$fd" line; do
		printf '%s\n' "$line" >>"$TMP/$name.out"
		if [[ $line =~ $regex ]]; then
			MATCH=${BASH_REMATCH[1]:-}
			found=1
			break
		fi
	done
	# Drain the rest so a chatty process never blocks on a full pipe; cat
	# ends by itself when the process closes its stdout.
	cat <&"$fd" >>"$TMP/$name.out" &
	exec {fd}<&-
	if ((!found)); then
		echo "run.sh: $name did not become ready (no line matching '$regex' within ${READY_TIMEOUT_S}s)" >&2
		tail -n 20 "$TMP/$name.err" >&2 || true
		exit 1
	fi
}

alive() {
	if ! kill -0 "$2" 2>/dev/null; then
		echo "run.sh: $1 (pid $2) died" >&2
		tail -n 20 "$TMP/$1.err" >&2 || true
		return 1
	fi
}

# kv LINE KEY: the value of KEY=... in LINE.
kv() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

# cpu_ticks PID...: user+system clock ticks used so far by the processes.
cpu_ticks() {
	local p t=0 f
	for p in "$@"; do
		f=$(<"/proc/$p/stat")
		f=${f##*) } # fields from 3 on; the name in (...) may hold spaces
		read -r -a a <<<"$f"
		t=$((t + a[11] + a[12])) # fields 14 and 15: utime, stime
	done
	echo "$t"
}
CLK_TCK=$(getconf CLK_TCK)

# load SCENARIO ROUND INFLIGHT ACTORS PORT "PIDS" [loadgen flags...]: one
# closed-loop run; PIDS are the processes under test, for the CPU figures
# (all of them, and the first alone: the gateway where there is one).
load() {
	local scen=$1 round=$2 inflight=$3 actors=$4 port=$5 pids=$6 out line rc=0 t0 t1 f0 f1
	shift 6
	# shellcheck disable=SC2086 # pids is a list
	t0=$(cpu_ticks $pids) f0=$(cpu_ticks ${pids%% *})
	local lg=("$BIN/bench-loadgen" --target "127.0.0.1:${port//,/,127.0.0.1:}")
	[[ $scen == plain-json ]] && lg=("$BIN/bench-http-loadgen" --url "http://127.0.0.1:$port")
	out=$("${LG_PIN[@]}" "${lg[@]}" --inflight "$inflight" \
		--actors "$actors" --duration-ms "$DURATION_MS" --warmup-ms "$WARMUP_MS" \
		--payload-bytes "$PAYLOAD" --threads "$LG_THREADS" --channels "$LG_CHANNELS" "$@") || rc=$?
	# shellcheck disable=SC2086
	t1=$(cpu_ticks $pids) f1=$(cpu_ticks ${pids%% *})
	line=$(grep '^calls=' <<<"$out" || true)
	local errors rps p50 p99 p999 aborted cpu=0 cpu1=0
	if [[ -z $line ]]; then
		errors=-1 rps=0 p50=0 p99=0 p999=0 aborted=1
	else
		errors=$(kv "$line" errors) rps=$(kv "$line" rps) p50=$(kv "$line" p50_us)
		p99=$(kv "$line" p99_us) p999=$(kv "$line" p999_us) aborted=$(kv "$line" aborted)
		cpu=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v c="$(kv "$line" calls)" \
			-v w="$(kv "$line" warmup_calls)" -v d="$(kv "$line" drain_calls)" -v e="$errors" \
			'BEGIN { n = c + w + d + e; printf "%.2f", n ? t / hz * 1e6 / n : 0 }')
		cpu1=$(awk -v t="$((f1 - f0))" -v hz="$CLK_TCK" -v c="$(kv "$line" calls)" \
			-v w="$(kv "$line" warmup_calls)" -v d="$(kv "$line" drain_calls)" -v e="$errors" \
			'BEGIN { n = c + w + d + e; printf "%.2f", n ? t / hz * 1e6 / n : 0 }')
	fi
	printf '  %-14s round %d inflight %-4s actors %-5s rps %9s p50 %8sus p99 %8sus cpu/call %6sus (first %6sus) errors %s\n' \
		"$scen" "$round" "$inflight" "$actors" "$rps" "$p50" "$p99" "$cpu" "$cpu1" "$errors" >&2
	if [[ $errors != 0 || $aborted != 0 || $rc != 0 ]]; then
		FAILED+=("$scen/inflight=$inflight/actors=$actors/round=$round: exit $rc, errors=$errors")
		grep '^first_error' <<<"$out" | sed 's/^/    /' >&2 || true
		[[ -n $line ]] || echo "    loadgen printed no result line (exit $rc)" >&2
		errors=${errors/#-1/1}
	fi
	echo "$scen $inflight $actors $round $rps $p50 $p99 $p999 $errors $cpu $cpu1" >>"$RESULTS"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# gw_start NAME FLAGS...: a spawn-gateway as every scenario starts it (on the
# CPUs under test, loopback port 0, its own SQLite store $TMP/NAME.db, no idle
# deactivation) plus FLAGS. Sets GPID, GPORT (its gRPC port) and GHTTP: with
# --http in FLAGS, its HTTP port (that line comes after the gRPC ones, so it is
# the one waited for, and the gRPC port is read from what was printed before).
gw_start() {
	local name=$1 f regex='^listening [^ ]+ ([0-9]+)' http=0
	shift
	for f in "$@"; do [[ $f == --http ]] && http=1; done
	((http)) && regex='^listening http://[^ ]+ ([0-9]+)'
	start "$name" "$regex" "${SUT_PIN[@]}" "$GATEWAY" --listen 127.0.0.1:0 \
		--statestore "sqlite://$TMP/$name.db" --deactivate-timeout 3600000 "$@"
	GPID=$PID GPORT=$MATCH GHTTP=
	if ((http)); then
		GHTTP=$MATCH
		GPORT=$(sed -n 's/^listening [0-9][^ ]* \([0-9]*\)$/\1/p' "$TMP/$name.out" | head -n 1)
	fi
}

# The scenarios that compare gateways started alike but for a few flags
# (gateway, spawnhttp, security, hostlink, metrics, tracing) are pairs of a
# gateway gw-NAME and its own host host-NAME, NAME being the scenario's name:
# PAIR_PORT[NAME] (the port the loadgen calls), PAIR_HTTP[NAME] (the HTTP
# port, with --http), PAIR_PIDS[NAME] ("gateway host": the processes under
# test) and PAIR_LG[NAME] (extra loadgen flags, a word list).
declare -A PAIR_PORT PAIR_HTTP PAIR_PIDS PAIR_LG
# pair_start NAME HOSTENV GATEWAY-FLAGS...: gw-NAME (gw_start with FLAGS) and
# host-NAME: HOST_CMD (bench-echo-host unless set), with the "K=V ..." words of
# HOSTENV in its environment, serving $GW_SYSTEM's $GW_ACTION.
HOST_CMD=("$ECHO_HOST")
pair_start() {
	local name=$1 hostenv=$2
	shift 2
	gw_start "gw-$name" "$@"
	# shellcheck disable=SC2086 # a list of K=V words
	start "host-$name" '^(ready)' env $hostenv "${SUT_PIN[@]}" "${HOST_CMD[@]}" \
		--gateway "127.0.0.1:$GPORT" --system "$GW_SYSTEM" --action "$GW_ACTION"
	PAIR_PORT[$name]=$GPORT PAIR_HTTP[$name]=$GHTTP PAIR_PIDS[$name]="$GPID $PID" PAIR_LG[$name]=
}
# pair_load ROUND "INFLIGHT..." "ACTORS..." NAME...: one round of the pairs
# NAME at each level of INFLIGHT and each count of ACTORS (levels outermost).
pair_load() {
	local r=$1 levels=$2 counts=$3 n m name gpid hpid
	shift 3
	for n in $levels; do
		for m in $counts; do
			for name in "$@"; do
				read -r gpid hpid <<<"${PAIR_PIDS[$name]}"
				alive "gw-$name" "$gpid"
				alive "host-$name" "$hpid"
				# shellcheck disable=SC2086 # a flag list
				load "$name" "$r" "$n" "$m" "${PAIR_PORT[$name]}" "$gpid $hpid" \
					"${GW_FLAGS[@]}" --timeout-ms 10000 ${PAIR_LG[$name]}
			done
		done
	done
}

# ---- machine --------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
grpc_ver=$(dpkg-query -W -f '${Version}' libgrpc-dev 2>/dev/null || pkg-config --modversion grpc)
echo "machine: nproc=$(nproc) cpu=\"$cpu\" kernel=$(uname -r) grpc=$grpc_ver"
echo "settings: duration=${DURATION_MS}ms warmup=${WARMUP_MS}ms rounds=$ROUNDS payload=${PAYLOAD}B" \
	"loadgen_threads=$LG_THREADS channels=$LG_CHANNELS echo_threads=$ECHO_THREADS fwd_threads=$FWD_THREADS"
echo "pinning: $PIN"

# ---- processes --------------------------------------------------------------
start echo 'listening ([0-9]+)' "${SUT_PIN[@]}" "$BIN/bench-echo-server" --threads "$ECHO_THREADS"
ECHO_PID=$PID ECHO_PORT=$MATCH
if want forwarder; then
	start forwarder 'listening ([0-9]+)' "${SUT_PIN[@]}" "$BIN/bench-forwarder" --threads "$FWD_THREADS" \
		--upstream "127.0.0.1:$ECHO_PORT"
	FWD_PID=$PID FWD_PORT=$MATCH
fi

GW_OK=0
if want gateway || want actors; then
	missing=()
	[[ -x $GATEWAY ]] || missing+=("$GATEWAY")
	[[ -x $ECHO_HOST ]] || missing+=("$ECHO_HOST")
	if ((${#missing[@]})); then
		echo "gateway, actors: skipped: gateway not built yet (missing ${missing[*]})"
	else
		# Assumed interface, to be confirmed by the gateway's owner:
		#  - spawn-gateway prints "listening PORT" once its client port accepts calls;
		#  - bench-echo-host dials the gateway, registers system $GW_SYSTEM
		#    whose actors answer action $GW_ACTION by echoing the payload, and
		#    prints "ready" once the gateway accepted its registration.
		read -ra ECHO_FLAGS <<<"${BENCH_ECHO_FLAGS:-}" # e.g. "--workers 1"
		HOST_CMD=("$ECHO_HOST" ${ECHO_FLAGS[@]+"${ECHO_FLAGS[@]}"})
		pair_start gateway "" --max-instances $((MEM_ACTORS + MEM_WARM + 1000000))
		HOST_CMD=("$ECHO_HOST")
		read -r GW_PID HOST_PID <<<"${PAIR_PIDS[gateway]}"
		GW_PORT=${PAIR_PORT[gateway]}
		GW_OK=1
	fi
fi

# ---- plain: one gateway serving the echo contract as a gRPC service ---------
if want plain; then
	mkdir -p "$TMP/descriptors"
	protoc -I"$ROOT/bench" -I"$ROOT/proto" -I/usr/include --include_imports \
		--descriptor_set_out="$TMP/descriptors/echo.binpb" echo.proto
	gw_start gw-plain --http 127.0.0.1:0 --descriptors "$TMP/descriptors"
	PLAIN_GW_PID=$GPID PLAIN_HTTP_PORT=$GHTTP PLAIN_PORT=$GPORT
	start host-plain '^(ready)' "${SUT_PIN[@]}" "$ECHO_HOST" --gateway "127.0.0.1:$PLAIN_PORT" \
		--system "$GW_SYSTEM" --action echo --actor Echo
	PLAIN_HOST_PID=$PID
fi

# ---- spawnhttp: a gateway whose host speaks Spawn's HTTP protocol -----------
SH_OK=0
if want spawnhttp; then
	SH_HOST=$BIN/bench-http-echo-host
	if [[ ! -x $GATEWAY || ! -x $SH_HOST ]]; then
		echo "run.sh: spawnhttp: $GATEWAY or $SH_HOST is missing" >&2
		exit 2
	fi
	# The host listens first (the gateway calls it back), then registers.
	start host-spawnhttp '^listening ([0-9]+)' "${SUT_PIN[@]}" "$SH_HOST" --action "$GW_ACTION"
	sh_host_pid=$PID
	gw_start gw-spawnhttp --http 127.0.0.1:0 --spawn-host-url "http://127.0.0.1:$MATCH"
	"$SH_HOST" --register "127.0.0.1:$GHTTP" --system "$GW_SYSTEM" --action "$GW_ACTION" \
		>/dev/null
	PAIR_PORT[spawnhttp]=$GPORT PAIR_PIDS[spawnhttp]="$GPID $sh_host_pid" PAIR_LG[spawnhttp]=
	SH_OK=1
fi

# ---- security: gateways that differ only in TLS, policy and batching --------
SEC_NAMES=()
if want security; then
	if [[ ! -x $GATEWAY || ! -x $ECHO_HOST ]]; then
		echo "run.sh: security: $GATEWAY or $ECHO_HOST is missing" >&2
		exit 2
	fi
	C=$TMP/certs
	bash "$ROOT/tests/tls/mkcerts.sh" "$C"
	tok() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
	token_hash() { printf 'sha256:%s' "$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)"; }
	CLIENT_TOKEN=$(tok) HOST_TOKEN=$(tok)
	cat >"$TMP/access-token.yaml" <<-EOF
		principals:
		  - name: bench-client
		    tokens: [$(token_hash "$CLIENT_TOKEN")]
		    invoke:
		      - system: $GW_SYSTEM
		  - name: bench-host
		    tokens: [$(token_hash "$HOST_TOKEN")]
		    host: [$GW_SYSTEM]
	EOF
	cat >"$TMP/access-mtls.yaml" <<-EOF
		principals:
		  - name: bench-client
		    identities: [uri:spiffe://spawn.test/client]
		    invoke:
		      - system: $GW_SYSTEM
		  - name: bench-host
		    identities: [uri:spiffe://spawn.test/host]
		    host: [$GW_SYSTEM]
	EOF
	TLS_GW="--tls-cert $C/server-chain.pem --tls-key $C/server.key --tls-client-ca $C/ca.pem"
	TLS_HOST="SPAWN_TLS_CA=$C/ca.pem SPAWN_TLS_CERT=$C/host-chain.pem SPAWN_TLS_KEY=$C/host.key"
	TLS_LG="--tls-ca $C/ca.pem --tls-cert $C/client-chain.pem --tls-key $C/client.key"
	# Each variant: its gateway's flags, its host's environment, the
	# loadgen's flags (word lists). sec-plain always runs, first.
	for v in plain $SEC_VARIANTS; do
		case $v in
		plain) gwf='' henv='' lgf='' ;;
		mtls) gwf=$TLS_GW henv=$TLS_HOST lgf=$TLS_LG ;;
		token) gwf="--access $TMP/access-token.yaml" henv="SPAWN_TOKEN=$HOST_TOKEN" lgf="--token $CLIENT_TOKEN" ;;
		mtls-authz) gwf="$TLS_GW --access $TMP/access-mtls.yaml" henv=$TLS_HOST lgf=$TLS_LG ;;
		plain-nb) gwf="--host-batch 1" henv='' lgf='' ;;
		mtls-nb) gwf="$TLS_GW --host-batch 1" henv=$TLS_HOST lgf=$TLS_LG ;;
		*)
			echo "run.sh: BENCH_SEC_VARIANTS: unknown variant '$v'" >&2
			exit 2
			;;
		esac
		# shellcheck disable=SC2086 # a flag list
		pair_start "sec-$v" "$henv" $gwf
		PAIR_LG[sec-$v]=$lgf
		SEC_NAMES+=("sec-$v")
	done
fi

# ---- hostlink: batched and unbatched gateways, one host of each runtime ------
LINK_NAMES=()
if want hostlink; then
	for rt in $LINK_RUNTIMES; do
		case $rt in
		c)
			[[ -x $ECHO_HOST ]] || { echo "run.sh: hostlink: $ECHO_HOST is missing" >&2; exit 2; }
			hostcmd=("$ECHO_HOST")
			;;
		ts)
			if [[ ! -f $ROOT/sdk/node/dist/src/index.js ]]; then
				echo "run.sh: hostlink: build sdk/node first (cd sdk/node && npm ci && npm run build)" >&2
				exit 2
			fi
			hostcmd=(node "$ROOT/bench/echo_host.mjs")
			;;
		py)
			[[ -d $BUILD/python-gen ]] || { echo "run.sh: hostlink: $BUILD/python-gen is missing" >&2; exit 2; }
			hostcmd=(/usr/bin/python3 "$ROOT/bench/echo_host.py" --proto-path "$BUILD/python-gen")
			;;
		rb)
			# bench/echo_host.rb on sdk/ruby, its modules generated into BUILD/ruby-gen.
			PROTOC=protoc sh "$ROOT/sdk/ruby/gen.sh" "$BUILD/ruby-gen" >/dev/null ||
				{ echo "run.sh: hostlink: sdk/ruby/gen.sh failed" >&2; exit 2; }
			hostcmd=(ruby -I "$BUILD/ruby-gen" -I "$ROOT/sdk/ruby/lib" "$ROOT/bench/echo_host.rb")
			;;
		go)
			# bench/echo_host_go on sdk/go, built in sdk/go's workspace (BUILD/go).
			if ! { bash "$ROOT/sdk/go/setup.sh" "$BUILD/go" >/dev/null &&
				(. "$BUILD/go/env" && mkdir -p "$BUILD/go/src/spawn-gateway/bench" &&
					cp "$ROOT/bench/echo_host_go/main.go" "$BUILD/go/src/spawn-gateway/bench/" &&
					go build -o "$TMP/echo-host-go" spawn-gateway/bench); }; then
				echo "run.sh: hostlink: cannot build bench/echo_host_go (sdk/go/setup.sh)" >&2
				exit 2
			fi
			hostcmd=("$TMP/echo-host-go")
			;;
		*)
			echo "run.sh: BENCH_LINK_RUNTIMES: unknown runtime '$rt'" >&2
			exit 2
			;;
		esac
		HOST_CMD=("${hostcmd[@]}")
		pair_start "link-$rt" ""
		pair_start "link-$rt-nb" "" --host-batch 1
		LINK_NAMES+=("link-$rt" "link-$rt-nb")
	done
	HOST_CMD=("$ECHO_HOST")
fi

# ---- metrics: the same gateway with metrics on (scraped) and off -------------
MET_NAMES=()
if want metrics; then
	if [[ ! -x $GATEWAY || ! -x $ECHO_HOST ]] || ! command -v curl >/dev/null; then
		echo "run.sh: metrics: $GATEWAY, $ECHO_HOST or curl is missing" >&2
		exit 2
	fi
	for v in on off; do
		pair_start "met-$v" "" --http 127.0.0.1:0 --metrics "$v"
		MET_NAMES+=("met-$v")
		# The scraper of met-on: one GET /metrics a second, as a Prometheus
		# with scrape_interval 1s (met-off is left alone: nothing to scrape).
		if [[ $v == on ]]; then
			gpid=${PAIR_PIDS[met-on]%% *} http=${PAIR_HTTP[met-on]}
			(while kill -0 "$gpid" 2>/dev/null; do
				curl -sf -o /dev/null "http://127.0.0.1:$http/metrics" || true
				sleep 1 # the scrape interval, not a readiness wait
			done) &
			PIDS+=("$!")
		fi
	done
fi

# ---- cluster: a call through a non-owner against one through the owner ------
# cl_gw NAME [VIEW]: a gateway (with --cluster-test-view $TMP/cl-NAME.view
# when VIEW is set); cl_host NAME: its echo host; cl_view NAME SELF
# "ID PORT SERVED"...: writes NAME's view file and applies it (SIGUSR1, then
# the gateway's "view 1" line, bounded by READY_TIMEOUT_S).
declare -A CL_GPID CL_GPORT CL_HPID
cl_gw() {
	local view=()
	[[ -n ${2:-} ]] && view=(--cluster-test-view "$TMP/cl-$1.view")
	gw_start "cl-$1" "${view[@]}"
	CL_GPID[$1]=$GPID CL_GPORT[$1]=$GPORT
}
cl_host() {
	start "cl-host-$1" '^(ready)' "${SUT_PIN[@]}" "$ECHO_HOST" --gateway "127.0.0.1:${CL_GPORT[$1]}" \
		--system "$GW_SYSTEM" --action "$GW_ACTION"
	CL_HPID[$1]=$PID
}
cl_view() {
	local name=$1 self=$2 m i
	shift 2
	{
		echo "version 1"
		echo "self $self"
		for m in "$@"; do
			read -r id port served <<<"$m"
			echo "member $id 127.0.0.1:$port 2 $served"
		done
	} >"$TMP/cl-$name.view"
	kill -USR1 "${CL_GPID[$name]}"
	for ((i = 0; i < READY_TIMEOUT_S * 20; i++)); do
		grep -q '^view 1$' "$TMP/cl-$name.out" && return 0
		sleep 0.05
	done
	echo "run.sh: cl-$name did not apply its view" >&2
	exit 1
}
if want cluster; then
	if [[ ! -x $GATEWAY || ! -x $ECHO_HOST || -z ${BENCH_GW_REGISTER_REF:-} ]]; then
		echo "run.sh: cluster: needs $GATEWAY, $ECHO_HOST and BENCH_GW_REGISTER_REF" >&2
		exit 2
	fi
	CL_TYPE="$GW_SYSTEM/$BENCH_GW_REGISTER_REF"
	cl_gw a view
	cl_gw b view
	cl_host b
	cl_view a a "a ${CL_GPORT[a]} -" "b ${CL_GPORT[b]} $CL_TYPE"
	cl_view b b "a ${CL_GPORT[a]} -" "b ${CL_GPORT[b]} $CL_TYPE"
	start cl-fwd 'listening ([0-9]+)' "${SUT_PIN[@]}" "$BIN/bench-forwarder" --threads "$FWD_THREADS" \
		--upstream "127.0.0.1:${CL_GPORT[b]}"
	CL_FWD_PID=$PID CL_FWD_PORT=$MATCH
	cl_gw one
	cl_host one
	for m in c1 c2 c3; do
		cl_gw $m view
		cl_host $m
	done
	for m in c1 c2 c3; do
		cl_view $m $m "c1 ${CL_GPORT[c1]} $CL_TYPE" "c2 ${CL_GPORT[c2]} $CL_TYPE" \
			"c3 ${CL_GPORT[c3]} $CL_TYPE"
	done
	# Every actor activated once on each path first: the rounds measure
	# calls, not activations (SQLite writes).
	for t in "${CL_GPORT[b]}" "${CL_GPORT[one]}" "${CL_GPORT[c1]},${CL_GPORT[c2]},${CL_GPORT[c3]}"; do
		"${LG_PIN[@]}" "$BIN/bench-loadgen" --target "127.0.0.1:${t//,/,127.0.0.1:}" --channels 3 \
			--activate "$CL_ACTORS" --batch 64 "${GW_FLAGS[@]}" --payload-bytes "$PAYLOAD" \
			--timeout-ms 30000 >/dev/null ||
			{ echo "run.sh: cluster: activating the actors through $t failed" >&2; exit 1; }
	done
fi

# ---- tracing: span export on against off --------------------------------------
TRACE_NAMES=()
if want tracing; then
	[[ -x $ECHO_HOST ]] || { echo "run.sh: tracing: $ECHO_HOST is missing" >&2; exit 2; }
	start otlp-sink '^listening ([0-9]+)' "${LG_PIN[@]}" /usr/bin/python3 "$ROOT/bench/otlp_sink.py" \
		"$TMP/otlp-sink.count"
	SINK_PORT=$MATCH
	for v in off otlp; do
		flags=()
		[[ $v == otlp ]] && flags=(--otlp-endpoint "http://127.0.0.1:$SINK_PORT")
		pair_start "trace-$v" "" "${flags[@]}"
		TRACE_NAMES+=("trace-$v")
	done
fi

# ---- throughput and latency, interleaved by round ---------------------------
for ((r = 1; r <= ROUNDS; r++)); do
	for n in $INFLIGHT; do
		if want direct; then
			alive echo "$ECHO_PID"
			load direct "$r" "$n" 1 "$ECHO_PORT" "$ECHO_PID"
		fi
		if want forwarder; then
			alive forwarder "$FWD_PID"
			load forwarder "$r" "$n" 1 "$FWD_PORT" "$FWD_PID $ECHO_PID"
		fi
		if want gateway && ((GW_OK)); then
			pair_load "$r" "$n" "$GW_ACTORS" gateway
		fi
	done
	if want plain; then
		for n in $INFLIGHT; do
			for m in $GW_ACTORS; do
				alive gw-plain "$PLAIN_GW_PID"
				alive host-plain "$PLAIN_HOST_PID"
				load plain-invoke "$r" "$n" "$m" "$PLAIN_PORT" "$PLAIN_GW_PID $PLAIN_HOST_PID" \
					--system "$GW_SYSTEM" --action echo --register-ref Echo --timeout-ms 10000
				load plain-stub "$r" "$n" "$m" "$PLAIN_PORT" "$PLAIN_GW_PID $PLAIN_HOST_PID" \
					--plain /bench.Echo/echo --timeout-ms 10000
				load plain-json "$r" "$n" "$m" "$PLAIN_HTTP_PORT" "$PLAIN_GW_PID $PLAIN_HOST_PID" \
					--system "$GW_SYSTEM" --action echo --register-ref Echo --timeout-ms 10000
			done
		done
	fi
	if ((SH_OK)); then
		pair_load "$r" "$INFLIGHT" "$GW_ACTORS" spawnhttp
	fi
	pair_load "$r" "$LINK_INFLIGHT" "$LINK_ACTORS" "${LINK_NAMES[@]}"
	pair_load "$r" "$MET_INFLIGHT" "$MET_ACTORS" "${MET_NAMES[@]}"
	if want cluster; then
		for n in $INFLIGHT; do
			for g in a b one c1 c2 c3; do alive "cl-$g" "${CL_GPID[$g]}"; done
			alive cl-fwd "$CL_FWD_PID"
			B="${CL_GPID[b]} ${CL_HPID[b]}"
			load cl-owner "$r" "$n" "$CL_ACTORS" "${CL_GPORT[b]}" "$B" "${GW_FLAGS[@]}" --timeout-ms 10000
			load cl-nonowner "$r" "$n" "$CL_ACTORS" "${CL_GPORT[a]}" "${CL_GPID[a]} $B" \
				"${GW_FLAGS[@]}" --timeout-ms 10000
			load cl-fwd-owner "$r" "$n" "$CL_ACTORS" "$CL_FWD_PORT" "$CL_FWD_PID $B" \
				"${GW_FLAGS[@]}" --timeout-ms 10000
			load cl-1member "$r" "$n" "$CL_ACTORS" "${CL_GPORT[one]}" "${CL_GPID[one]} ${CL_HPID[one]}" \
				"${GW_FLAGS[@]}" --timeout-ms 10000 --channels 3
			load cl-3members "$r" "$n" "$CL_ACTORS" "${CL_GPORT[c1]},${CL_GPORT[c2]},${CL_GPORT[c3]}" \
				"${CL_GPID[c1]} ${CL_GPID[c2]} ${CL_GPID[c3]} ${CL_HPID[c1]} ${CL_HPID[c2]} ${CL_HPID[c3]}" \
				"${GW_FLAGS[@]}" --timeout-ms 10000 --channels 3
		done
	fi
	pair_load "$r" "$TRACE_INFLIGHT" "$TRACE_ACTORS" "${TRACE_NAMES[@]}"
	pair_load "$r" "$SEC_INFLIGHT" "$SEC_ACTORS" "${SEC_NAMES[@]}"
done

# ---- actors: memory per activated actor -------------------------------------
MEM_LINE=
if want actors && ((GW_OK)); then
	alive gw-gateway "$GW_PID"
	# Warm the allocator and the gateway's tables first so fixed costs stay
	# out of the per-actor figure.
	out=$("${LG_PIN[@]}" "$BIN/bench-loadgen" --target "127.0.0.1:$GW_PORT" --activate "$MEM_WARM" \
		--batch "$MEM_BATCH" --actor-prefix warm- "${GW_FLAGS[@]}" \
		--payload-bytes "$PAYLOAD" --timeout-ms 30000) || true
	before=$(rss_kb "$GW_PID")
	host_before=$(rss_kb "$HOST_PID")
	# Two halves (names of the same length), RSS read between them: the
	# second half's growth per actor leaves out what stops growing early
	# (SQLite's page cache, bounded per connection; tables' first growth).
	half=$((MEM_ACTORS / 2))
	errors=0 rc=0 rps= secs=0
	for part in 1 2; do
		n=$half prefix=mem-
		((part == 2)) && n=$((MEM_ACTORS - half)) prefix=mex-
		out=$("${LG_PIN[@]}" "$BIN/bench-loadgen" --target "127.0.0.1:$GW_PORT" --activate "$n" \
			--batch "$MEM_BATCH" --actor-prefix "$prefix" "${GW_FLAGS[@]}" \
			--payload-bytes "$PAYLOAD" --timeout-ms 30000) || rc=$?
		line=$(grep '^calls=' <<<"$out" || true)
		e=$(kv "$line" errors)
		if [[ -z $line || $e != 0 || $rc != 0 ]]; then
			FAILED+=("actors: part $part: exit $rc, errors=${e:-?}")
			grep '^first_error' <<<"$out" | sed 's/^/    /' >&2 || true
		fi
		errors=$((errors + ${e:-1}))
		rps+="${rps:+/}$(kv "$line" rps)"
		secs=$(awk -v a="$secs" -v b="$(kv "$line" seconds)" 'BEGIN { print a + b }')
		((part == 1)) && mid=$(rss_kb "$GW_PID")
	done
	after=$(rss_kb "$GW_PID")
	host_after=$(rss_kb "$HOST_PID")
	MEM_LINE=$(awk -v m="$MEM_ACTORS" -v h="$half" -v b="$before" -v mid="$mid" -v a="$after" \
		-v hb="$host_before" -v ha="$host_after" -v rps="$rps" -v s="$secs" -v e="$errors" \
		'BEGIN { printf "actors=%d gateway_rss_kb=%d->%d->%d bytes_per_actor=%.0f second_half_bytes_per_actor=%.0f host_bytes_per_actor=%.0f activation_rps=%s seconds=%s errors=%s%s",
		         m, b, mid, a, (a - b) * 1024 / m, (a - mid) * 1024 / (m - h), (ha - hb) * 1024 / m, rps, s, e, e == "0" ? "" : "  FAILED" }')
fi

# ---- report -------------------------------------------------------------------
echo
awk '
function median(key,   n, i, j, t, a) {
	n = split(vals[key], a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { vals[key] = (key in vals) ? vals[key] " " v : v }
{
	s = $1; n = $2; m = $3; r = $4
	id = s SUBSEP n SUBSEP m
	if (!(id in seen)) { seen[id] = 1; order[++cnt] = id }
	add("rps" SUBSEP id, $5); add("p50" SUBSEP id, $6); add("p99" SUBSEP id, $7); add("cpu" SUBSEP id, $10)
	add("cpu1" SUBSEP id, $11)
	err[id] += $9; rounds[id]++
	rps[s, n, m, r] = $5; p50[s, n, m, r] = $6; cpu[s, n, m, r] = $10; cpu1[s, n, m, r] = $11
	R[r] = 1
}
END {
	printf "%-14s %8s %7s %6s %9s %9s %9s %9s %9s %6s  %s\n", "scenario", "inflight", "actors", "rounds",
		"rps", "p50_us", "p99_us", "cpu_us", "cpu1_us", "errors", "ratios (median of per-round ratios)"
	for (i = 1; i <= cnt; i++) {
		id = order[i]; split(id, k, SUBSEP); s = k[1]; n = k[2]; m = k[3]
		note = ""
		# Each scenario is compared with the one below it: forwarder with
		# direct, gateway with forwarder; added latency is always vs direct.
		# A security variant is compared with sec-plain at the same level
		# (cpu1: the gateway alone).
		base = (s == "forwarder") ? "direct" : (s == "gateway") ? "forwarder" : ""
		bm = 1
		if (s == "spawnhttp") { base = "gateway"; bm = m } # the same actor on a gRPC host
		if (s ~ /^sec-/ && s != "sec-plain") { base = "sec-plain"; bm = m }
		if (s == "plain-stub" || s == "plain-json") { base = "plain-invoke"; bm = m }
		if (s ~ /^sec-.*-nb$/) { base = s == "sec-plain-nb" ? "" : "sec-plain-nb"; bm = m }
		if (s ~ /^link-/ && s !~ /-nb$/) { base = s "-nb"; bm = m }
		if (s == "met-on") { base = "met-off"; bm = m }
		if (s == "cl-nonowner" || s == "cl-fwd-owner") { base = "cl-owner"; bm = m }
		if (s == "cl-3members") { base = "cl-1member"; bm = m }
		if (s == "trace-otlp") { base = "trace-off"; bm = m }
		# Compared with a baseline of its own (else with direct): its CPU
		# alone and its added latency are against that baseline.
		own = base ~ /^sec-plain/ || base ~ /^link-/ || base == "plain-invoke" || base == "met-off" || base == "trace-off" || base ~ /^cl-/
		if (base != "") {
			for (r in R) {
				if (!(((base, n, bm, r) in rps) && ((s, n, m, r) in rps)))
					continue
				if (rps[base, n, bm, r] > 0)
					add("x_rps" SUBSEP id, rps[s, n, m, r] / rps[base, n, bm, r])
				if (cpu[base, n, bm, r] > 0)
					add("x_cpu" SUBSEP id, cpu[s, n, m, r] / cpu[base, n, bm, r])
				if (own && cpu1[base, n, bm, r] > 0)
					add("x_cpu1" SUBSEP id, cpu1[s, n, m, r] / cpu1[base, n, bm, r])
				if (!own && ("direct", n, 1, r) in p50)
					add("added" SUBSEP id, p50[s, n, m, r] - p50["direct", n, 1, r])
				if (own)
					add("added" SUBSEP id, p50[s, n, m, r] - p50[base, n, bm, r])
			}
			if (("x_rps" SUBSEP id) in vals)
				note = note sprintf("rps/%s x%.2f  ", base, median("x_rps" SUBSEP id))
			if (("x_cpu" SUBSEP id) in vals)
				note = note sprintf("cpu/%s x%.2f  ", base, median("x_cpu" SUBSEP id))
			if (("x_cpu1" SUBSEP id) in vals)
				note = note sprintf("cpu1/%s x%.2f  ", base, median("x_cpu1" SUBSEP id))
			if (("added" SUBSEP id) in vals)
				note = note sprintf("p50-%s %+.1fus", own ? base : "direct",
					median("added" SUBSEP id))
		}
		printf "%-14s %8s %7s %6d %9.0f %9.1f %9.1f %9.2f %9.2f %6d  %s%s\n", s, n, m, rounds[id],
			median("rps" SUBSEP id), median("p50" SUBSEP id), median("p99" SUBSEP id),
			median("cpu" SUBSEP id), median("cpu1" SUBSEP id), err[id], note, err[id] ? "  FAILED" : ""
	}
}' "$RESULTS"
echo "(cpu_us: CPU time of the processes under test per call, cpu1_us: of the first (the gateway, or the echo"
echo " server / forwarder); rps/X, cpu/X, cpu1/X: this scenario over X in the same round)"
# Per-language host cost (issue 14 §5): the host's own CPU per call (cpu_us -
# cpu1_us of the batched link-R scenarios) and its ratio to the C host's in
# the same round.
if want hostlink && ((${#LINK_NAMES[@]})); then
	echo
	awk '
function median(s,   n, i, j, t, a) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
$1 ~ /^link-/ && $1 !~ /-nb$/ {
	rt = substr($1, 6); id = rt SUBSEP $2
	if (!(id in seen)) { seen[id] = 1; order[++cnt] = id }
	h = $10 - $11; host[rt, $2, $4] = h
	hv[id] = (id in hv) ? hv[id] " " h : h
}
END {
	printf "%-10s %8s %12s  %s\n", "host", "inflight", "host_cpu_us", "host cpu per call / C host (median of per-round ratios)"
	for (i = 1; i <= cnt; i++) {
		split(order[i], k, SUBSEP); rt = k[1]; n = k[2]; xs = ""
		for (key in host) {
			split(key, q, SUBSEP)
			if (q[1] == rt && q[2] == n && (("c", n, q[3]) in host) && host["c", n, q[3]] > 0)
				xs = xs (xs == "" ? "" : " ") host[key] / host["c", n, q[3]]
		}
		printf "%-10s %8s %12.2f  %s\n", rt, n, median(hv[order[i]]), xs == "" ? "" : sprintf("x%.2f", median(xs))
	}
}' "$RESULTS"
fi
if [[ -n $MEM_LINE ]]; then
	echo "$MEM_LINE"
fi
if ((${#TRACE_NAMES[@]})); then
	echo "tracing: otlp sink $(cat "$TMP/otlp-sink.count" 2>/dev/null || echo "requests=0 bytes=0");" \
		"gateway drop lines: $(grep -c 'otlp:' "$TMP/gw-trace-otlp.err" || true)"
	grep 'otlp:' "$TMP/gw-trace-otlp.err" | tail -n 3 | sed 's/^/  /' || true
fi
if ((${#FAILED[@]})); then
	echo
	echo "RESULT: FAILED (${#FAILED[@]} run(s) with errors):"
	printf '  %s\n' "${FAILED[@]}"
	exit 1
fi
echo
echo "RESULT: ok (no errors)"
