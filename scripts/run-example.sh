#!/usr/bin/env bash
# `make run`: the gateway on the embedded SQLite store, with the Incrementor
# example host connected. Ctrl-C stops both (the gateway saves state first).
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
run="$top/.run"
mkdir -p "$run"
port=${SPAWN_PORT:-8090}
gw="$build/gateway/spawn-gateway"
host="$build/examples/incrementor-host"
client="$build/examples/incrementor-client"

"$gw" --listen "127.0.0.1:$port" --statestore "sqlite://$run/state.db" > "$run/gateway.out" 2> >(tee "$run/gateway.log" >&2) &
gw_pid=$!
cleanup() {
  kill -TERM "${host_pid:-}" 2>/dev/null || true
  kill -TERM "$gw_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Readiness: the gateway prints "listening ADDR PORT" once it accepts calls.
for _ in $(seq 1 100); do
  grep -q '^listening' "$run/gateway.out" 2>/dev/null && break
  kill -0 "$gw_pid" 2>/dev/null || { echo "the gateway did not start (see $run/gateway.log)"; exit 1; }
  sleep 0.1
done
grep -q '^listening' "$run/gateway.out" || { echo "the gateway did not become ready"; exit 1; }

"$host" --gateway "127.0.0.1:$port" > "$run/host.out" 2>&1 &
host_pid=$!
for _ in $(seq 1 100); do
  grep -q 'registered' "$run/host.out" 2>/dev/null && break
  sleep 0.1
done

cat <<MSG

  spawn-gateway is listening on 127.0.0.1:$port (state in $run/state.db, encrypted
  with the key in $run/state.db.key), and the Incrementor host is registered.

  Invoke it from another terminal:

      $client --gateway 127.0.0.1:$port --actor incrementor add 1

  or from Python (Debian's python3-grpcio):

      /usr/bin/python3 examples/incrementor/python/client.py --gateway 127.0.0.1:$port add 1

  Ctrl-C stops both; the state survives: start again and keep counting.

MSG
wait "$gw_pid"
