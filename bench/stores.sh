#!/usr/bin/env bash
# bench/stores.sh BUILD_DIR - the statestore benchmarks (issue 3, section 8).
#
# Starts private PostgreSQL and MariaDB servers (scripts/db-start.sh, in a
# temp folder, loopback ports; stopped and wiped at the end), then:
#   store    bench-store on sqlite (a file in the temp folder), postgres and
#            mariadb: cold load and activation latency (one by one, and
#            batched: gw_store_activate_batch), saves/s one by one
#            vs batched (group commit), the disk's fdatasync floor. Its
#            summary has the ratios (batched / one-by-one, store / sqlite).
#   gateway  the gateway scenario of bench/run.sh (loadgen -> spawn-gateway
#            -> bench-echo-host, BENCH_INFLIGHT in flight over
#            BENCH_GATEWAY_ACTORS actors) on each store, in two modes:
#              snapshot    the host only sets state; the gateway saves
#                          changed actors every --snapshot-interval
#              checkpoint  the host asks for a checkpoint on every reply:
#                          the gateway answers only after the state
#                          committed (group-committed with other actors)
#            with bench-forwarder (loadgen -> forwarder -> echo server) as
#            the baseline measured in every round. One gateway per store
#            serves both modes (systems `snap` and `ckpt`, one host each).
# Scenarios are interleaved round by round; ratios are taken within a round
# and the table shows medians over rounds (see docs/benchmarks.md).
#
# Honesty: any loadgen error, bench-store error, gateway that does not exit
# cleanly, or stored state that disagrees with what was acknowledged fails
# the run (RESULT: FAILED, exit 1). The check: bench-echo-host counts its
# calls in each actor's state, so the counters stored for a system must sum
# to the calls the load generator saw acknowledged; for `ckpt` this is read
# while the gateway still runs (a checkpointed reply means durable), for
# `snap` after the gateway's clean shutdown (which saves every changed actor).
#
# Pinning (BENCH_PIN=split, the default on >= 2 CPUs): the loadgen on the
# first allowed CPU; everything under test on the others: gateway, hosts,
# forwarder, echo server, bench-store, and the database servers (their
# processes and threads are moved there with taskset once started).
# The CPU figure (cpu_us per call) includes the database server's processes.
#
# Environment (defaults in brackets):
#   BENCH_STORES ["sqlite postgres mariadb"]  BENCH_SCENARIOS ["store gateway"]
#   BENCH_ROUNDS [5]  BENCH_DURATION_MS [3000]  BENCH_WARMUP_MS [1000]
#   BENCH_INFLIGHT [64]  BENCH_GATEWAY_ACTORS [1000]  BENCH_PAYLOAD_BYTES [64]
#   BENCH_SNAPSHOT_MS [2000: the gateway's default --snapshot-interval]
#   BENCH_STORE_ROUNDS [BENCH_ROUNDS]  BENCH_STORE_ACTORS [1000]
#   BENCH_STORE_SAVE_MS [1000]  BENCH_STORE_SIZES [64,4096]
#   BENCH_STORE_BATCHES [1,64,256]  BENCH_STORE_ACTIVATE_BATCH [256: actors per
#   gw_store_activate_batch in bench-store's batched activation figure]
#   BENCH_TIMEOUT_S [900: the whole script; no new step starts after it]
#   BENCH_READY_TIMEOUT_S [30]  BENCH_PIN [split]  BENCH_KEEP_TMP [unset]
set -euo pipefail

BUILD=${1:-build}
BIN=$BUILD/bench
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STORES=${BENCH_STORES:-"sqlite postgres mariadb"}
SCENARIOS=${BENCH_SCENARIOS:-"store gateway"}
ROUNDS=${BENCH_ROUNDS:-5}
DURATION_MS=${BENCH_DURATION_MS:-3000}
WARMUP_MS=${BENCH_WARMUP_MS:-1000}
INFLIGHT=${BENCH_INFLIGHT:-64}
ACTORS=${BENCH_GATEWAY_ACTORS:-1000}
PAYLOAD=${BENCH_PAYLOAD_BYTES:-64}
SNAPSHOT_MS=${BENCH_SNAPSHOT_MS:-2000}
STORE_ROUNDS=${BENCH_STORE_ROUNDS:-$ROUNDS}
STORE_ACTORS=${BENCH_STORE_ACTORS:-1000}
STORE_SAVE_MS=${BENCH_STORE_SAVE_MS:-1000}
STORE_SIZES=${BENCH_STORE_SIZES:-64,4096}
STORE_BATCHES=${BENCH_STORE_BATCHES:-1,64,256}
STORE_ACT_BATCH=${BENCH_STORE_ACTIVATE_BATCH:-256}
TIMEOUT_S=${BENCH_TIMEOUT_S:-900}
READY_TIMEOUT_S=${BENCH_READY_TIMEOUT_S:-30}
PIN=${BENCH_PIN:-split}
GATEWAY=$BUILD/gateway/spawn-gateway
START_S=$SECONDS

want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
has_store() { [[ " $STORES " == *" $1 "* ]]; }

need=(bench-store)
want gateway && need+=(bench-loadgen bench-echo-server bench-forwarder bench-echo-host)
for b in "${need[@]}"; do
	if [[ ! -x $BIN/$b ]]; then
		echo "stores.sh: $BIN/$b is missing: build with -DSPAWN_BENCH=ON first" >&2
		exit 2
	fi
done
if want gateway && [[ ! -x $GATEWAY ]]; then
	echo "stores.sh: $GATEWAY is missing" >&2
	exit 2
fi
for s in $STORES; do
	case $s in sqlite | postgres | mariadb) ;; *)
		echo "stores.sh: unknown store '$s' (sqlite postgres mariadb)" >&2
		exit 2
		;;
	esac
done

allowed_cpus() {
	local list part
	list=$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)
	for part in ${list//,/ }; do
		if [[ $part == *-* ]]; then seq "${part%-*}" "${part#*-}"; else echo "$part"; fi
	done
}
LG_PIN=() SUT_PIN=() SUT_CPUS=
mapfile -t CPUS < <(allowed_cpus)
if [[ $PIN == split ]] && ((${#CPUS[@]} >= 2)) && command -v taskset >/dev/null; then
	SUT_CPUS=$(IFS=,; echo "${CPUS[*]:1}")
	LG_PIN=(taskset -c "${CPUS[0]}") SUT_PIN=(taskset -c "$SUT_CPUS")
	PIN="split (loadgen on cpu ${CPUS[0]}, everything under test incl. database servers on cpus $SUT_CPUS)"
else
	PIN=none
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/spawn-stores.XXXXXX")
# The database servers' OS user (postgres) must reach the folder.
chmod 755 "$TMP"
DBDIR=$TMP/db
RESULTS=$TMP/results # scenario store mode round rps p50 p99 p999 errors cpu_us db_cpu_us
: >"$RESULTS"
PIDS=()
FAILED=()
DB_STARTED=0

# stop_pid NAME PID: SIGTERM, then up to 20 s for it to exit; returns its
# exit status (a kill -9 after the wait counts as a failure).
stop_pid() {
	local name=$1 pid=$2 rc=0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "stores.sh: $name (pid $pid) did not exit in 20 s after SIGTERM; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		return 137
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return $rc
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local rc=$?
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[i]}" 2>/dev/null || true
	done
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		wait "${PIDS[i]}" 2>/dev/null || true
	done
	if ((DB_STARTED)); then
		bash "$ROOT/scripts/db-stop.sh" --wipe "$DBDIR" >/dev/null 2>&1 ||
			echo "stores.sh: db-stop.sh failed (see $DBDIR)" >&2
	fi
	if [[ -n ${BENCH_KEEP_TMP:-} ]]; then
		echo "stores.sh: logs kept in $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# deadline STEP: fail when the run is already past BENCH_TIMEOUT_S.
deadline() {
	if ((SECONDS - START_S > TIMEOUT_S)); then
		echo "stores.sh: BENCH_TIMEOUT_S=$TIMEOUT_S exceeded before $1" >&2
		FAILED+=("timeout before $1")
		report_and_exit
	fi
}

# start NAME REGEX CMD...: as in bench/run.sh: CMD's stdout on a pipe, read
# until REGEX matches (its first group lands in MATCH), the rest drained
# into $TMP/NAME.out; sets PID. Fails after READY_TIMEOUT_S or early exit.
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
	cat <&"$fd" >>"$TMP/$name.out" &
	exec {fd}<&-
	if ((!found)); then
		echo "stores.sh: $name did not become ready (no line matching '$regex' within ${READY_TIMEOUT_S}s)" >&2
		tail -n 20 "$TMP/$name.err" >&2 || true
		exit 1
	fi
}

alive() {
	if ! kill -0 "$2" 2>/dev/null; then
		echo "stores.sh: $1 (pid $2) died" >&2
		tail -n 20 "$TMP/$1.err" >&2 || true
		exit 1
	fi
}

kv() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

# tree PID: PID and all its descendants (a PostgreSQL server is a family of
# processes).
tree() {
	local f p rest pp
	declare -A kids=()
	for f in /proc/[0-9]*/stat; do
		{ read -r p rest <"$f"; } 2>/dev/null || continue # gone meanwhile
		rest=${rest##*) } # "state ppid ...": the name in (...) may hold spaces
		pp=${rest#* }
		kids[${pp%% *}]+=" $p"
	done
	local queue=("$1") out=()
	while ((${#queue[@]})); do
		p=${queue[0]}
		queue=("${queue[@]:1}")
		out+=("$p")
		# shellcheck disable=SC2206 # a list of pids
		[[ -n ${kids[$p]:-} ]] && queue+=(${kids[$p]})
	done
	echo "${out[*]}"
}

# cpu_ticks PID...: utime+stime so far of the processes still alive.
cpu_ticks() {
	local p t=0 f
	for p in "$@"; do
		f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		f=${f##*) }
		read -r -a a <<<"$f"
		t=$((t + a[11] + a[12]))
	done
	echo "$t"
}
CLK_TCK=$(getconf CLK_TCK)

# report_and_exit: the table, the checks, RESULT; exit 1 on any failure.
report_and_exit() {
	if [[ -s $RESULTS ]]; then
		echo
		echo "gateway scenarios: $INFLIGHT in flight, $ACTORS actors, medians over rounds"
		awk '
function median(key,   n, i, j, t, a) {
	n = split(vals[key], a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { vals[key] = (key in vals) ? vals[key] " " v : v }
function ratio(name, a, b, r) {
	# median over rounds of a/b, both from the same round
	for (r in R)
		if (((a, r) in rps) && ((b, r) in rps) && rps[b, r] > 0)
			add(name, rps[a, r] / rps[b, r])
}
{
	id = $1 SUBSEP $2 SUBSEP $3; r = $4
	if (!(id in seen)) { seen[id] = 1; order[++cnt] = id }
	add("rps" SUBSEP id, $5); add("p50" SUBSEP id, $6); add("p99" SUBSEP id, $7); add("cpu" SUBSEP id, $10)
	add("db" SUBSEP id, $11)
	err[id] += $9; rounds[id]++
	rps[id, r] = $5; cpu[id, r] = $10; R[r] = 1
}
END {
	printf "%-9s %-8s %-10s %6s %9s %9s %9s %9s %7s %6s  %s\n", "scenario", "store", "mode", "rounds",
		"rps", "p50_us", "p99_us", "cpu_us", "(db_us)", "errors", "ratios (median of per-round ratios)"
	fwd = "forwarder" SUBSEP "-" SUBSEP "-"
	for (i = 1; i <= cnt; i++) {
		id = order[i]; split(id, k, SUBSEP); s = k[1]; st = k[2]; m = k[3]
		note = ""
		if (s == "gateway") {
			ratio("xf" SUBSEP id, id, fwd)
			if (("xf" SUBSEP id) in vals) note = note sprintf("rps/forwarder x%.2f  ", median("xf" SUBSEP id))
			for (r in R)
				if (((id, r) in cpu) && ((fwd, r) in cpu) && cpu[fwd, r] > 0)
					add("xc" SUBSEP id, cpu[id, r] / cpu[fwd, r])
			if (("xc" SUBSEP id) in vals) note = note sprintf("cpu/forwarder x%.2f  ", median("xc" SUBSEP id))
			if (m == "checkpoint") {
				ratio("xs" SUBSEP id, id, s SUBSEP st SUBSEP "snapshot")
				if (("xs" SUBSEP id) in vals) note = note sprintf("ckpt/snap x%.2f  ", median("xs" SUBSEP id))
			}
			if (st != "sqlite") {
				ratio("xq" SUBSEP id, id, s SUBSEP "sqlite" SUBSEP m)
				if (("xq" SUBSEP id) in vals) note = note sprintf("rps/sqlite x%.2f", median("xq" SUBSEP id))
			}
		}
		printf "%-9s %-8s %-10s %6d %9.0f %9.1f %9.1f %9.2f %7.2f %6d  %s%s\n", s, st, m, rounds[id],
			median("rps" SUBSEP id), median("p50" SUBSEP id), median("p99" SUBSEP id),
			median("cpu" SUBSEP id), median("db" SUBSEP id), err[id], note, err[id] ? "  FAILED" : ""
	}
}' "$RESULTS"
		echo "(cpu_us: CPU time per call of the processes under test: forwarder + echo server;" \
			"gateway + host + database server; db_us: the database server's part of it" \
			"(sqlite runs inside the gateway))"
		# A round where the baseline sagged is a round a neighbour disturbed.
		echo "forwarder rps by round: $(awk '$1 == "forwarder" { printf "%s%.0f", n++ ? " " : "", $5 }' "$RESULTS")"
	fi
	if ((${#CHECKS[@]})); then
		echo
		echo "durability (stored call counters vs calls acknowledged):"
		printf '  %s\n' "${CHECKS[@]}"
	fi
	if [[ -n $STORE_RC ]]; then
		echo
		echo "bench-store: $( ((STORE_RC)) && echo "FAILED (exit $STORE_RC)" || echo ok)"
	fi
	echo "elapsed: $((SECONDS - START_S)) s"
	if ((${#FAILED[@]})); then
		echo
		echo "RESULT: FAILED (${#FAILED[@]} problem(s)):"
		printf '  %s\n' "${FAILED[@]}"
		exit 1
	fi
	echo
	echo "RESULT: ok (no errors)"
	exit 0
}

# ---- machine ------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "machine: nproc=$(nproc) cpu=\"$cpu\" kernel=$(uname -r) fs=$(df -T "$TMP" | awk 'NR==2 { print $2 }')" \
	"load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
echo "settings: stores=\"$STORES\" scenarios=\"$SCENARIOS\" rounds=$ROUNDS duration=${DURATION_MS}ms" \
	"warmup=${WARMUP_MS}ms inflight=$INFLIGHT actors=$ACTORS payload=${PAYLOAD}B snapshot_interval=${SNAPSHOT_MS}ms"
echo "pinning: $PIN"

# ---- databases ------------------------------------------------------------------
declare -A URL=() DB_PID=()
KEY=$(head -c 32 /dev/urandom | base64 -w0)
URL[sqlite]="sqlite://$TMP/gateway-sqlite.db"
engines=()
has_store postgres && engines+=(postgres)
has_store mariadb && engines+=(mariadb)
if ((${#engines[@]})); then
	DB_STARTED=1
	rc=0
	bash "$ROOT/scripts/db-start.sh" "$DBDIR" "${engines[@]}" >"$TMP/db-start.out" 2>"$TMP/db-start.err" || rc=$?
	if ((rc)); then
		# 77 = a server is not installed: for a benchmark that is a failure.
		echo "stores.sh: scripts/db-start.sh failed (exit $rc):" >&2
		cat "$TMP/db-start.out" "$TMP/db-start.err" >&2
		exit 1
	fi
	set -a
	# shellcheck disable=SC1091
	. "$DBDIR/env"
	set +a
	if has_store postgres; then
		URL[postgres]=$SPAWN_TEST_POSTGRES_URL
		datadir=$(cat "$DBDIR/postgres.datadir")
		DB_PID[postgres]=$(head -1 "$datadir/postmaster.pid")
	fi
	if has_store mariadb; then
		URL[mariadb]=$SPAWN_TEST_MARIADB_URL
		DB_PID[mariadb]=$(cat "$DBDIR/mariadb.pid")
	fi
	echo "databases: $(grep -o 'up on [^ ]* in [^ ]* s' "$TMP/db-start.err" | tr '\n' ';' | sed 's/;$//')" \
		"(postgres $("${PG_BIN:-/usr/lib/postgresql/15/bin}/postgres" --version 2>/dev/null | awk '{ print $3 }')," \
		"mariadb $(PATH=$PATH:/usr/sbin mariadbd --version 2>/dev/null | awk '{ print $3 }'))"
fi

# db_pids STORE: the server processes of STORE (none for sqlite: in-process).
db_pids() {
	[[ -n ${DB_PID[$1]:-} ]] || return 0
	tree "${DB_PID[$1]}"
}

# Move the database servers to the CPUs under test: every thread of every
# process; processes and threads created later inherit it.
if [[ -n $SUT_CPUS ]]; then
	for s in "${!DB_PID[@]}"; do
		for p in $(db_pids "$s"); do
			taskset -a -p -c "$SUT_CPUS" "$p" >/dev/null 2>&1 || true
		done
	done
fi

# ---- store: bench-store ------------------------------------------------------------
STORE_RC=
if want store; then
	deadline "bench-store"
	# One key for bench-store and the gateways: a store's key check (in its
	# database) accepts only the key it was created with.
	args=(--keys "$KEY")
	for s in $STORES; do
		if [[ $s == sqlite ]]; then
			args+=(--url "sqlite://$TMP/bench-store.db")
		else
			args+=(--url "${URL[$s]}")
		fi
	done
	echo
	echo "== bench-store (statestores alone) =="
	set +e
	"${SUT_PIN[@]}" "$BIN/bench-store" "${args[@]}" --rounds "$STORE_ROUNDS" --actors "$STORE_ACTORS" \
		--save-ms "$STORE_SAVE_MS" --sizes "$STORE_SIZES" --batches "$STORE_BATCHES" \
		--activate-batch "$STORE_ACT_BATCH" \
		--fsync-dir "$TMP" --timeout-s "$((TIMEOUT_S - (SECONDS - START_S) + 1))" \
		2>"$TMP/bench-store.err" | tee "$TMP/bench-store.out"
	rc=${PIPESTATUS[0]}
	set -e
	STORE_RC=$rc
	if ((rc)); then
		FAILED+=("bench-store: exit $rc")
		tail -n 5 "$TMP/bench-store.err" >&2 || true
	fi
fi

# ---- gateway ----------------------------------------------------------------------
declare -A ACKED=() GW_PID=() GW_PORT=() HOST_PID=()
GW_FLAGS=(--action echo --register-ref echo-actor)

# acked LINE KEY: adds the calls of a loadgen result line to ACKED[KEY].
acked() {
	local n
	n=$(awk -v c="$(kv "$1" calls)" -v w="$(kv "$1" warmup_calls)" -v d="$(kv "$1" drain_calls)" \
		'BEGIN { print c + w + d }')
	ACKED[$2]=$((${ACKED[$2]:-0} + n))
}

# load SCENARIO STORE MODE ROUND PORT "PIDS" "DB_PIDS" [loadgen flags...]: one
# closed-loop run; PIDS and DB_PIDS (the database server's, part of the
# CPU figure and also shown apart) are the processes under test.
load() {
	local scen=$1 st=$2 mode=$3 round=$4 port=$5 pids=$6 dbpids=$7 out line rc=0 t0 t1 d0 d1
	shift 7
	# shellcheck disable=SC2086
	t0=$(cpu_ticks $pids) d0=$(cpu_ticks $dbpids)
	out=$("${LG_PIN[@]}" "$BIN/bench-loadgen" --target "127.0.0.1:$port" --inflight "$INFLIGHT" \
		--duration-ms "$DURATION_MS" --warmup-ms "$WARMUP_MS" --payload-bytes "$PAYLOAD" \
		--timeout-ms 10000 "$@") || rc=$?
	# shellcheck disable=SC2086
	t1=$(cpu_ticks $pids) d1=$(cpu_ticks $dbpids)
	line=$(grep '^calls=' <<<"$out" || true)
	local errors rps p50 p99 p999 aborted cpu=0 dbcpu=0
	if [[ -z $line ]]; then
		errors=1 rps=0 p50=0 p99=0 p999=0 aborted=1
	else
		errors=$(kv "$line" errors) rps=$(kv "$line" rps) p50=$(kv "$line" p50_us)
		p99=$(kv "$line" p99_us) p999=$(kv "$line" p999_us) aborted=$(kv "$line" aborted)
		read -r cpu dbcpu < <(awk -v t="$((t1 - t0 + d1 - d0))" -v db="$((d1 - d0))" -v hz="$CLK_TCK" \
			-v c="$(kv "$line" calls)" -v w="$(kv "$line" warmup_calls)" -v d="$(kv "$line" drain_calls)" \
			-v e="$errors" \
			'BEGIN { n = c + w + d + e; printf "%.2f %.2f\n", n ? t / hz * 1e6 / n : 0, n ? db / hz * 1e6 / n : 0 }')
		[[ $scen == gateway ]] && acked "$line" "$st/$mode"
	fi
	printf '  %-9s %-8s %-10s round %d rps %9s p50 %8sus p99 %8sus cpu/call %6sus (db %6sus) errors %s\n' \
		"$scen" "$st" "$mode" "$round" "$rps" "$p50" "$p99" "$cpu" "$dbcpu" "$errors" >&2
	if [[ $errors != 0 || $aborted != 0 || $rc != 0 ]]; then
		FAILED+=("$scen/$st/$mode/round=$round: exit $rc, errors=$errors")
		grep '^first_error' <<<"$out" | sed 's/^/    /' >&2 || true
	fi
	echo "$scen $st $mode $round $rps $p50 $p99 $p999 $errors $cpu $dbcpu" >>"$RESULTS"
}

# settle: a snapshot-mode run leaves up to ACTORS changed actors that the
# gateway saves within one snapshot interval; wait that out so the save
# does not land in the next scenario's window.
settle() { sleep "$(awk -v ms="$SNAPSHOT_MS" 'BEGIN { printf "%.3f", (ms + 500) / 1000 }')"; }

mode_system() { [[ $1 == checkpoint ]] && echo ckpt || echo snap; }

# count STORE SYSTEM WHEN: the stored call counters of SYSTEM must sum to the
# calls acknowledged.
count() {
	local st=$1 sys=$2 when=$3 mode=snapshot out line sum want rc=0
	[[ $sys == ckpt ]] && mode=checkpoint
	want=${ACKED[$st/$mode]:-0}
	out=$("$BIN/bench-store" --url "${URL[$st]}" --keys "$KEY" --count "$sys" --count-actors "$ACTORS" \
		--timeout-s 120 2>>"$TMP/count.err") || rc=$?
	line=$(grep '^count ' <<<"$out" || true)
	sum=$(kv "$line" sum)
	local verdict=ok
	if ((rc)) || [[ -z $line || $sum != "$want" ]]; then
		verdict=FAILED
		FAILED+=("durability check $st/$mode ($when): stored counters sum ${sum:-?}, acknowledged calls $want, exit $rc")
	fi
	CHECKS+=("$(printf '%-8s %-10s %-22s acknowledged %8s  stored %8s  actors with state %s/%s  %s' \
		"$st" "$mode" "($when)" "$want" "${sum:-?}" "$(kv "$line" found)" "$ACTORS" "$verdict")")
}
CHECKS=()

if want gateway; then
	deadline "gateway scenarios"
	echo
	echo "== gateway scenarios: loadgen -> spawn-gateway -> bench-echo-host, $INFLIGHT in flight over $ACTORS actors =="
	start echo '^listening ([0-9]+)' "${SUT_PIN[@]}" "$BIN/bench-echo-server" --threads 1
	ECHO_PID=$PID ECHO_PORT=$MATCH
	start forwarder '^listening ([0-9]+)' "${SUT_PIN[@]}" "$BIN/bench-forwarder" --threads 1 \
		--upstream "127.0.0.1:$ECHO_PORT"
	FWD_PID=$PID FWD_PORT=$MATCH
	for st in $STORES; do
		# Actors stay active for the whole run: the rounds measure invocations,
		# not activations (priming below activates every actor once).
		start "gw-$st" '^listening [^ ]+ ([0-9]+)' env SPAWN_STATESTORE_KEY="$KEY" "${SUT_PIN[@]}" \
			"$GATEWAY" --listen 127.0.0.1:0 --statestore "${URL[$st]}" \
			--deactivate-timeout 3600000 --snapshot-interval "$SNAPSHOT_MS"
		GW_PID[$st]=$PID GW_PORT[$st]=$MATCH
		for mode in snapshot checkpoint; do
			flag=()
			[[ $mode == checkpoint ]] && flag=(--checkpoint)
			start "host-$st-$mode" '^(ready)' "${SUT_PIN[@]}" "$BIN/bench-echo-host" \
				--gateway "127.0.0.1:${GW_PORT[$st]}" --system "$(mode_system $mode)" --action echo "${flag[@]}"
			HOST_PID[$st/$mode]=$PID
		done
		# Prime: activate every actor of both systems once.
		for mode in snapshot checkpoint; do
			rc=0
			out=$("${LG_PIN[@]}" "$BIN/bench-loadgen" --target "127.0.0.1:${GW_PORT[$st]}" \
				--activate "$ACTORS" --batch "$INFLIGHT" --system "$(mode_system $mode)" "${GW_FLAGS[@]}" \
				--payload-bytes "$PAYLOAD" --timeout-ms 30000) || rc=$?
			line=$(grep '^calls=' <<<"$out" || true)
			echo "  prime     $st $mode: activated $(kv "$line" calls) actors at $(kv "$line" rps)/s, errors $(kv "$line" errors)" >&2
			if [[ -z $line || $rc != 0 || $(kv "$line" errors) != 0 ]]; then
				FAILED+=("prime $st/$mode: exit $rc, errors=$(kv "$line" errors)")
				grep '^first_error' <<<"$out" | sed 's/^/    /' >&2 || true
			fi
			[[ -n $line ]] && acked "$line" "$st/$mode"
		done
	done
	settle

	for ((r = 1; r <= ROUNDS; r++)); do
		deadline "gateway round $r"
		alive forwarder "$FWD_PID"
		load forwarder - - "$r" "$FWD_PORT" "$FWD_PID $ECHO_PID" "" --actors 1
		for st in $STORES; do
			for mode in checkpoint snapshot; do
				alive "gw-$st" "${GW_PID[$st]}"
				alive "host-$st-$mode" "${HOST_PID[$st/$mode]}"
				load gateway "$st" "$mode" "$r" "${GW_PORT[$st]}" \
					"${GW_PID[$st]} ${HOST_PID[$st/$mode]}" "$(db_pids "$st")" \
					--actors "$ACTORS" --system "$(mode_system $mode)" "${GW_FLAGS[@]}"
				[[ $mode == snapshot ]] && settle
			done
		done
	done

	# Durability: checkpointed calls are in the store while the gateway runs;
	# snapshot-mode calls once the gateway has shut down cleanly.
	for st in $STORES; do
		count "$st" ckpt "gateway running"
	done
	for st in $STORES; do
		for mode in snapshot checkpoint; do
			stop_pid "host-$st-$mode" "${HOST_PID[$st/$mode]}" || true
		done
		rc=0
		stop_pid "gw-$st" "${GW_PID[$st]}" || rc=$?
		if ((rc)); then
			FAILED+=("gateway on $st: exit $rc after SIGTERM")
			tail -n 5 "$TMP/gw-$st.err" >&2 || true
		fi
		count "$st" snap "after shutdown"
	done
fi

report_and_exit
