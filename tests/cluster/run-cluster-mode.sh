#!/bin/sh
# run-cluster-mode.sh BUILD_DIR: `make test-cluster`. Starts private
# PostgreSQL and MariaDB servers under BUILD_DIR/tests/cluster/db (not the
# ctest fixture's, so a ctest run beside it is not disturbed), runs
# tests/cluster/cluster_mode_test.py on both (CHAOS_STORES, CHAOS_SECONDS
# as given), stops the servers (also when the test fails or is
# interrupted) and exits with the test's status. With CI=true a missing
# server fails (db-start.sh); elsewhere the missing engine is left out.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
db="$build/tests/cluster/db"
mkdir -p "$db"
stop() { "$src/scripts/db-stop.sh" --wipe "$db" >/dev/null 2>&1 || true; }
trap stop EXIT
trap 'exit 143' TERM INT
rc=0
"$src/scripts/db-start.sh" --fresh "$db" || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 77 ] || exit "$rc"
SPAWN_BUILD_DIR="$build" PYTHONDONTWRITEBYTECODE=1 \
	"$src/tests/store/with-db.sh" "$db/env" \
	/usr/bin/python3 "$src/tests/cluster/cluster_mode_test.py" -v
