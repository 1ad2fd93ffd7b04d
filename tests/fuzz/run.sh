#!/usr/bin/env bash
# tests/fuzz/run.sh BINARY NAME SEEDS WORKDIR - fuzz one target for
# FUZZ_SECONDS (default 20) from the committed seeds. New inputs go to
# WORKDIR/corpus (the seeds are never written); a crash, leak, timeout or
# out-of-memory input is kept as WORKDIR/crash-*, leak-*, timeout-*, oom-*
# and fails the run (exit 1), with libFuzzer's report on stderr.
# FUZZ_JOBS (default 1) runs that many fuzzing processes in parallel.
set -euo pipefail
bin=${1:?binary} name=${2:?name} seeds=${3:?seeds} work=${4:?workdir}
secs=${FUZZ_SECONDS:-20}
mkdir -p "$work/corpus"
# Leaks are checked per input; the world's threads keep their memory.
opts=(-max_total_time="$secs" -timeout=30 -rss_limit_mb=3072 -max_len=65536
      -print_final_stats=1 -artifact_prefix="$work/")
jobs=${FUZZ_JOBS:-1}
if [ "$jobs" -gt 1 ]; then
	opts+=(-fork="$jobs" -ignore_crashes=0)
fi
echo "fuzz $name: ${secs}s from $(find "$seeds" -type f | wc -l) seeds" >&2
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$bin" "${opts[@]}" "$work/corpus" "$seeds"
