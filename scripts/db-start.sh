#!/usr/bin/env bash
# db-start.sh [--fresh] DIR [postgres] [mariadb]
#
# Starts private PostgreSQL 15 and MariaDB servers for the statestore tests
# under DIR, on free loopback ports (never the system services), each with a
# database `spawn_test` and a password user `spawn`, and writes their URLs:
#
#   DIR/env            shell-sourceable (set -a; . DIR/env), all engines:
#     SPAWN_TEST_POSTGRES_URL='postgres://spawn:spawn@127.0.0.1:PORT/spawn_test?sslmode=disable'
#     SPAWN_TEST_POSTGRES_STOP / _START   commands that stop / restart that
#                                         one server (the server-gone test)
#     SPAWN_TEST_MARIADB_URL='mariadb://spawn:spawn@127.0.0.1:PORT/spawn_test'
#     SPAWN_TEST_MARIADB_STOP / _START
#   DIR/<engine>.env   the same, one engine
#
# No engine named: both. An engine whose data directory exists is restarted
# on its recorded port (that is how _START works); --fresh first stops it
# and wipes its data. Already running: left as it is.
#
# A missing server binary fails when CI=true. Elsewhere it is skipped with a
# "SKIPPED:" line, the engine is left out of DIR/env, and the exit status is
# 77 (ctest shows the setup as skipped; the suite runs the other targets).
# Any other failure (initdb, start-up, creating the database) always fails.
#
# As root, PostgreSQL runs as the `postgres` user (it refuses root) and
# MariaDB as root. Logs: DIR/postgres.log, DIR/mariadb.log. PostgreSQL's data
# and log move to /tmp/spawn-db-<hash of DIR> when the postgres user cannot
# reach DIR (DIR/postgres.datadir says where).
set -euo pipefail

usage() {
	echo "usage: $0 [--fresh] DIR [postgres] [mariadb]" >&2
	exit 2
}

fresh=0
if [ "${1:-}" = "--fresh" ]; then
	fresh=1
	shift
fi
[ $# -ge 1 ] || usage
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
shift
engines=("$@")
[ ${#engines[@]} -gt 0 ] || engines=(postgres mariadb)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
ci=0
[ "${CI:-}" = "true" ] && ci=1
skipped=0

log() { echo "db-start: $*" >&2; }

# PRIV: a directory of this DIR's own under /tmp, for what cannot live in
# DIR: unix sockets (setup and shutdown only; the tests use TCP) when DIR
# is too deep for sun_path (107 bytes), and PostgreSQL's data when the
# postgres user cannot reach DIR (a clone under /root, say).
PRIV=/tmp/spawn-db-$(printf '%s' "$DIR" | md5sum | cut -c1-12)
priv() {
	mkdir -p "$PRIV"
	chmod 755 "$PRIV"
}
SOCK=$DIR
if [ ${#DIR} -gt 60 ]; then
	priv
	SOCK=$PRIV
fi
echo "$SOCK" >"$DIR/sockdir"

# missing ENGINE WHAT: a server binary is absent.
missing() {
	if [ $ci -eq 1 ]; then
		log "$1: $2 is not installed (CI=true: this is a failure; run scripts/install-deps.sh)"
		exit 1
	fi
	echo "SKIPPED: $1: $2 is not installed (run scripts/install-deps.sh)"
	rm -f "$DIR/$1.env"
	skipped=1
}

# free_port prints a loopback TCP port nobody listens on. A race with
# another process is possible; the callers retry start-up on a new port.
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if command -v ss >/dev/null; then
			ss -Htan "( sport = :$p )" 2>/dev/null | grep -q . && continue
		elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			continue
		fi
		echo "$p"
		return 0
	done
	log "no free port found"
	return 1
}

# elapsed prints the seconds since $t0 with millisecond precision.
elapsed() {
	local now
	now=$(date +%s%N)
	printf '%d.%03d' $(((now - t0) / 1000000000)) $((((now - t0) / 1000000) % 1000))
}

# ---- PostgreSQL ---------------------------------------------------------------

# pg_run CMD...: runs a PostgreSQL tool as the server's OS user.
pg_run() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_start() {
	local base=$DIR port t0
	t0=$(date +%s%N)
	if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
		missing postgres "PostgreSQL 15 ($PG_BIN)"
		return 0
	fi
	if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
		log "postgres: the postgres OS user does not exist"
		exit 1
	fi
	if [ $fresh -eq 1 ]; then
		"$here/db-stop.sh" --wipe "$DIR" postgres
	fi
	if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$DIR"; then
		log "postgres: user postgres cannot reach $DIR; its data goes to $PRIV"
		priv
		base=$PRIV
	fi
	local data=$base/postgres pglog=$base/postgres.log
	echo "$data" >"$DIR/postgres.datadir"
	local sockdir=$SOCK/pgsock
	[ "$base" = "$PRIV" ] && sockdir=$PRIV/pgsock
	mkdir -p "$sockdir"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$sockdir"
	if pg_run "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		log "postgres: already running ($(cat "$DIR/postgres.port"))"
		return 0
	fi
	local new=0
	if [ ! -s "$data/PG_VERSION" ]; then
		new=1
		rm -rf "$data"
		mkdir -p "$data"
		touch "$pglog"
		[ "$(id -u)" -eq 0 ] && chown postgres: "$data" "$pglog"
		chmod 700 "$data"
		# trust on the socket (setup only); the tests connect over TCP with a
		# password, so the URL's credentials are really checked.
		pg_run "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust \
			--auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8 \
			>"$DIR/postgres-initdb.log" 2>&1 || {
			log "postgres: initdb failed:"
			cat "$DIR/postgres-initdb.log" >&2
			exit 1
		}
	fi
	local tries=1
	[ $new -eq 1 ] && tries=5
	for attempt in $(seq 1 $tries); do
		if [ $new -eq 1 ]; then
			port=$(free_port)
		else
			port=$(cat "$DIR/postgres.port")
		fi
		if pg_run "$PG_BIN/pg_ctl" -D "$data" -l "$pglog" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -p $port -k $sockdir" start >/dev/null; then
			echo "$port" >"$DIR/postgres.port"
			break
		fi
		if [ "$attempt" -eq "$tries" ]; then
			log "postgres: start failed on port $port; log:"
			tail -20 "$pglog" >&2
			exit 1
		fi
		log "postgres: start failed on port $port, trying another port"
	done
	if [ $new -eq 1 ]; then
		pg_run "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres \
			-d postgres >/dev/null <<-'SQL'
			CREATE ROLE spawn LOGIN PASSWORD 'spawn';
			CREATE DATABASE spawn_test OWNER spawn;
		SQL
	fi
	cat >"$DIR/postgres.env" <<-EOF
		SPAWN_TEST_POSTGRES_URL='postgres://spawn:spawn@127.0.0.1:$port/spawn_test?sslmode=disable'
		SPAWN_TEST_POSTGRES_STOP='$here/db-stop.sh $DIR postgres'
		SPAWN_TEST_POSTGRES_START='$here/db-start.sh $DIR postgres'
	EOF
	log "postgres: up on 127.0.0.1:$port in $(elapsed) s"
}

# ---- MariaDB -------------------------------------------------------------------

my_admin() {
	mariadb-admin --no-defaults --socket="$SOCK/mysqld.sock" -uroot "$@"
}

my_start() {
	local data=$DIR/mariadb port t0 sock=$SOCK/mysqld.sock
	t0=$(date +%s%N)
	local bin
	for bin in mariadbd mariadb-install-db mariadb-admin mariadb; do
		if ! PATH=$PATH:/usr/sbin command -v $bin >/dev/null; then
			missing mariadb "$bin (mariadb-server)"
			return 0
		fi
	done
	local mariadbd
	mariadbd=$(PATH=$PATH:/usr/sbin command -v mariadbd)
	if [ $fresh -eq 1 ]; then
		"$here/db-stop.sh" --wipe "$DIR" mariadb
	fi
	if [ -s "$DIR/mariadb.pid" ] && kill -0 "$(cat "$DIR/mariadb.pid")" 2>/dev/null; then
		log "mariadb: already running ($(cat "$DIR/mariadb.port"))"
		return 0
	fi
	local user=()
	[ "$(id -u)" -eq 0 ] && user=(--user=root)
	# Small logs and buffers: a test server, not a tuned one. Durability
	# settings stay at their defaults (the server-gone test relies on them).
	local opts=(--innodb-buffer-pool-size=64M --innodb-log-file-size=16M)
	local new=0
	if [ ! -d "$data/mysql" ]; then
		new=1
		rm -rf "$data"
		mkdir -p "$data"
		mariadb-install-db --no-defaults "${user[@]}" --datadir="$data" \
			--auth-root-authentication-method=normal --skip-test-db "${opts[@]}" \
			>"$DIR/mariadb-install.log" 2>&1 || {
			log "mariadb: mariadb-install-db failed:"
			tail -30 "$DIR/mariadb-install.log" >&2
			exit 1
		}
	fi
	local tries=1 pid=
	[ $new -eq 1 ] && tries=5
	for attempt in $(seq 1 $tries); do
		if [ $new -eq 1 ]; then
			port=$(free_port)
		else
			port=$(cat "$DIR/mariadb.port")
		fi
		# Detached (own session, no inherited stdio), so it outlives this
		# script and does not hold ctest's output pipe open.
		setsid "$mariadbd" --no-defaults "${user[@]}" --datadir="$data" --socket="$sock" \
			--port="$port" --bind-address=127.0.0.1 --pid-file="$DIR/mariadb.pid" \
			--log-error="$DIR/mariadb.log" --skip-name-resolve --performance-schema=OFF \
			"${opts[@]}" </dev/null >>"$DIR/mariadb.log" 2>&1 &
		pid=$!
		# Up when it answers on the socket; dead when the process is gone.
		local up=0
		for _ in $(seq 1 600); do
			if my_admin ping >/dev/null 2>&1; then
				up=1
				break
			fi
			kill -0 $pid 2>/dev/null || break
			sleep 0.1
		done
		if [ $up -eq 1 ]; then
			echo "$pid" >"$DIR/mariadb.pid"
			echo "$port" >"$DIR/mariadb.port"
			break
		fi
		kill -9 $pid 2>/dev/null || true
		if [ "$attempt" -eq "$tries" ]; then
			log "mariadb: start failed on port $port; log:"
			tail -20 "$DIR/mariadb.log" >&2
			exit 1
		fi
		log "mariadb: start failed on port $port, trying another port"
	done
	if [ $new -eq 1 ]; then
		# The tests make a fresh database per test: spawn may create any
		# database named spawn_test*.
		mariadb --no-defaults --socket="$sock" -uroot <<-'SQL'
			CREATE DATABASE spawn_test;
			CREATE USER 'spawn'@'127.0.0.1' IDENTIFIED BY 'spawn';
			CREATE USER 'spawn'@'localhost' IDENTIFIED BY 'spawn';
			GRANT ALL PRIVILEGES ON `spawn\_test%`.* TO 'spawn'@'127.0.0.1';
			GRANT ALL PRIVILEGES ON `spawn\_test%`.* TO 'spawn'@'localhost';
		SQL
	fi
	cat >"$DIR/mariadb.env" <<-EOF
		SPAWN_TEST_MARIADB_URL='mariadb://spawn:spawn@127.0.0.1:$port/spawn_test'
		SPAWN_TEST_MARIADB_STOP='$here/db-stop.sh $DIR mariadb'
		SPAWN_TEST_MARIADB_START='$here/db-start.sh $DIR mariadb'
	EOF
	log "mariadb: up on 127.0.0.1:$port in $(elapsed) s"
}

for e in "${engines[@]}"; do
	case $e in
	postgres) pg_start ;;
	mariadb) my_start ;;
	*) usage ;;
	esac
done

# DIR/env: every engine that is set up, whichever call started it.
: >"$DIR/env.tmp"
for e in postgres mariadb; do
	[ -f "$DIR/$e.env" ] && cat "$DIR/$e.env" >>"$DIR/env.tmp"
done
mv "$DIR/env.tmp" "$DIR/env"
cat "$DIR/env"
[ $skipped -eq 0 ] || exit 77
