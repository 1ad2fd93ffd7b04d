#!/bin/sh
# bench/cluster.sh BUILD_DIR: `make bench-cluster` (issue 11 §6): failover
# after kill -9 (p50 / p99 over BENCH_CL_KILLS, default 20) and the view
# change on a graceful leave, three gateways with --advertise on a private
# database server (bench/cluster_bench.py; root: the cluster harness's
# cgroups). Starts PostgreSQL and MariaDB under BUILD_DIR/bench/cluster-db,
# runs the bench on each store of BENCH_CL_STORES (default postgres), stops
# them (also on failure) and exits 1 when a run failed.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
db="$build/bench/cluster-db"
mkdir -p "$db"
stop() { "$src/scripts/db-stop.sh" --wipe "$db" >/dev/null 2>&1 || true; }
trap stop EXIT
trap 'exit 143' TERM INT
"$src/scripts/db-start.sh" --fresh "$db" >/dev/null
rc=0
for store in $(echo "${BENCH_CL_STORES:-postgres}" | tr ',' ' '); do
	echo "== $store"
	SPAWN_BUILD_DIR="$build" PYTHONDONTWRITEBYTECODE=1 BENCH_CL_STORE="$store" \
		"$src/tests/store/with-db.sh" "$db/env" /usr/bin/python3 "$src/bench/cluster_bench.py" || rc=1
done
exit $rc
