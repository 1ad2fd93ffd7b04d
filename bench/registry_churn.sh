#!/bin/sh
# registry_churn.sh - the gateway's memory under registration churn
# (issue 9, item 2): RSS after HOSTS hosts registering ACTORS new actor
# types each and leaving, then after one host registering BIG types and
# leaving, each time once the type grace is over.
#
#   bench/registry_churn.sh [BUILD_DIR] [GATEWAY_BINARY]
#
# Env: HOSTS (200), ACTORS (100), BIG (100000), GRACE_MS (1000; passed as
# --type-grace unless GW_ARGS is set, e.g. GW_ARGS= for a gateway without
# the flag). Prints one line per phase: "phase=... rss_kb=...".
set -eu
BUILD=${1:-build}
GW=${2:-$BUILD/gateway/spawn-gateway}
CHURN=$BUILD/bench/bench-registry-churn
HOSTS=${HOSTS:-200}
ACTORS=${ACTORS:-100}
BIG=${BIG:-100000}
GRACE_MS=${GRACE_MS:-1000}
GW_ARGS=${GW_ARGS-"--type-grace $GRACE_MS"}
MAXMSG=${MAXMSG:-67108864}
TMP=$(mktemp -d /tmp/registry-churn-XXXXXX)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; [ -z "${KEEP_LOG:-}" ] || cp "$TMP/err" "$KEEP_LOG"; rm -rf "$TMP"' EXIT INT TERM
# shellcheck disable=SC2086
"$GW" --listen 127.0.0.1:0 --statestore "sqlite://$TMP/db" --log-level ${LOG_LEVEL:-warn} --max-message-bytes $MAXMSG $GW_ARGS \
	>"$TMP/out" 2>"$TMP/err" &
PID=$!
i=0
until grep -q '^listening' "$TMP/out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 200 ] || { echo "gateway did not start"; cat "$TMP/err"; exit 1; }
	sleep 0.05
done
PORT=$(awk '/^listening/ {print $3; exit}' "$TMP/out")
T=127.0.0.1:$PORT
rss() { awk '/^VmRSS/ {print $2}' /proc/$PID/status; }
# after the grace, plus the sweep (2,048 types a tick) and its one-second recheck
settle() { sleep $(((GRACE_MS + 3999) / 1000)); }
"$CHURN" "$T" 1 "$ACTORS" warm >/dev/null
settle
echo "phase=start rss_kb=$(rss)"
"$CHURN" "$T" "$HOSTS" "$ACTORS" churn >/dev/null
settle
echo "phase=after_churn_${HOSTS}x${ACTORS} rss_kb=$(rss)"
"$CHURN" "$T" 1 "$BIG" big >/dev/null
echo "phase=big_${BIG}_registered_and_left rss_kb=$(rss)"
settle
echo "phase=big_${BIG}_after_grace rss_kb=$(rss)"
"$CHURN" "$T" "$HOSTS" "$ACTORS" churn2 >/dev/null
settle
echo "phase=after_second_churn rss_kb=$(rss)"
