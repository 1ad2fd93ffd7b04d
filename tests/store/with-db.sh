#!/bin/sh
# with-db.sh ENVFILE CMD...: runs CMD with the database URLs that
# scripts/db-start.sh wrote to ENVFILE exported. Exit 77 (ctest: skipped)
# when no server is in it, which db-start.sh allows only outside CI.
set -eu
env_file=$1
shift
if [ ! -f "$env_file" ]; then
	echo "with-db: $env_file is missing: did scripts/db-start.sh run?" >&2
	exit 1
fi
set -a
. "$env_file"
set +a
if [ -z "${SPAWN_TEST_POSTGRES_URL:-}${SPAWN_TEST_MARIADB_URL:-}" ]; then
	if [ "${CI:-}" = "true" ]; then
		echo "with-db: no database server in $env_file (CI=true: failing)" >&2
		exit 1
	fi
	echo "SKIPPED: no database server was started"
	exit 77
fi
exec "$@"
