#!/usr/bin/env bash
# db-start.sh [--fresh] [--tls CERTDIR] DIR [postgres] [mariadb]
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
# --tls CERTDIR (a directory of tests/tls/mkcerts.sh: ca.pem, db.pem,
# db.key) starts servers that speak only TLS over TCP, for the database TLS
# tests (docs/security.md, "Databases over TLS"):
#   PostgreSQL  ssl = on with db.pem/db.key (copied into its data directory,
#               owned by the server's user, 0600) and ca.pem as ssl_ca_file;
#               pg_hba.conf: hostssl with clientcert=verify-ca (a client
#               certificate signed by ca.pem), hostnossl reject
#   MariaDB     ssl_cert/ssl_key/ssl_ca from DIR/tls (copies), with
#               require_secure_transport=ON; the user spawn REQUIRE X509
# The URLs then carry sslmode=verify-full, sslrootcert=ca.pem and
# sslcert/sslkey=client.pem/client.key, and <engine>.env also holds
#   SPAWN_TEST_<ENGINE>_TLS_CERT / _TLS_KEY   the files the server reads its
#                                  certificate and key from
#   SPAWN_TEST_<ENGINE>_TLS_RELOAD a command that makes it read them again
#   SPAWN_TEST_<ENGINE>_ADMIN      a superuser client over the unix socket
#                                  (psql / mariadb, no TLS needed there)
# DIR/tls holds the copies and marks the mode: _START restarts a TLS server
# as one, and every start puts the certificates back in place (a test that
# swapped them and died leaves nothing behind).
#
# As root, PostgreSQL runs as the `postgres` user (it refuses root) and
# MariaDB as root. Logs: DIR/postgres.log, DIR/mariadb.log. PostgreSQL's data
# and log move to /tmp/spawn-db-<hash of DIR> when the postgres user cannot
# reach DIR (DIR/postgres.datadir says where).
set -euo pipefail

usage() {
	echo "usage: $0 [--fresh] [--tls CERTDIR] DIR [postgres] [mariadb]" >&2
	exit 2
}

fresh=0
certs=
while [ $# -gt 0 ]; do
	case $1 in
	--fresh) fresh=1 ;;
	--tls)
		[ $# -ge 2 ] || usage
		certs=$(cd "$2" && pwd)
		shift
		;;
	*) break ;;
	esac
	shift
done
[ $# -ge 1 ] || usage
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
shift
# TLS: asked for now, or recorded by the start that made the data.
TLS=$DIR/tls
if [ -n "$certs" ]; then
	for f in ca.pem db.pem db.key client.pem client.key; do
		[ -f "$certs/$f" ] || {
			echo "db-start: --tls $certs: $f is missing (tests/tls/mkcerts.sh makes it)" >&2
			exit 2
		}
	done
	mkdir -p "$TLS"
	cp "$certs/ca.pem" "$certs/db.pem" "$certs/db.key" "$certs/client.pem" \
		"$certs/client.key" "$TLS/"
	chmod 600 "$TLS/db.key" "$TLS/client.key"
elif [ $fresh -eq 1 ]; then
	rm -rf "$TLS"
fi
tls=0
[ -f "$TLS/ca.pem" ] && tls=1
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

# tls_params prints the query string of a TLS URL: the server's name and
# certificate checked against the test CA, and the client certificate.
tls_params() {
	printf 'sslmode=verify-full&sslrootcert=%s&sslcert=%s&sslkey=%s' \
		"$TLS/ca.pem" "$TLS/client.pem" "$TLS/client.key"
}

# ---- PostgreSQL ---------------------------------------------------------------

# pg_tls DATA: the server's certificate, key and client CA into DATA
# (PostgreSQL wants the key owned by its user, 0600), and a pg_hba.conf
# that takes TCP clients over TLS with a certificate of the test CA only.
pg_tls() {
	local f
	for f in db.pem:server.crt db.key:server.key ca.pem:root.crt; do
		install -m 600 "$TLS/${f%%:*}" "$1/${f#*:}"
		[ "$(id -u)" -eq 0 ] && chown postgres: "$1/${f#*:}"
	done
	cat >"$1/pg_hba.conf" <<-'EOF'
		# db-start.sh --tls: TLS only over TCP, with a client certificate.
		local     all all                trust
		hostssl   all all 127.0.0.1/32   scram-sha-256 clientcert=verify-ca
		hostnossl all all all            reject
	EOF
}

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
	local tlsopts=
	if [ $tls -eq 1 ]; then
		pg_tls "$data"
		tlsopts="-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c ssl_ca_file=root.crt"
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
			-o "-c listen_addresses=127.0.0.1 -p $port -k $sockdir $tlsopts" start >/dev/null; then
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
	local params=sslmode=disable
	[ $tls -eq 1 ] && params=$(tls_params)
	cat >"$DIR/postgres.env" <<-EOF
		SPAWN_TEST_POSTGRES_URL='postgres://spawn:spawn@127.0.0.1:$port/spawn_test?$params'
		SPAWN_TEST_POSTGRES_STOP='$here/db-stop.sh $DIR postgres'
		SPAWN_TEST_POSTGRES_START='$here/db-start.sh $DIR postgres'
	EOF
	if [ $tls -eq 1 ]; then
		local run=
		[ "$(id -u)" -eq 0 ] && run="runuser -u postgres -- "
		cat >>"$DIR/postgres.env" <<-EOF
			SPAWN_TEST_POSTGRES_TLS_CERT='$data/server.crt'
			SPAWN_TEST_POSTGRES_TLS_KEY='$data/server.key'
			SPAWN_TEST_POSTGRES_TLS_RELOAD='$run$PG_BIN/pg_ctl -D $data reload'
			SPAWN_TEST_POSTGRES_ADMIN='psql -X -q -h $sockdir -p $port -U postgres'
		EOF
	fi
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
	# A temporary directory of its own: two instances bootstrapping at once
	# in the shared /tmp collided on MariaDB's temporary table files
	# ("Error on delete of '/tmp/#sql-temptable-...'").
	mkdir -p "$DIR/mariadb-tmp"
	local opts=(--innodb-buffer-pool-size=64M --innodb-log-file-size=16M
		--tmpdir="$DIR/mariadb-tmp")
	local tlsopts=()
	[ $tls -eq 1 ] && tlsopts=(--ssl-cert="$TLS/db.pem" --ssl-key="$TLS/db.key"
		--ssl-ca="$TLS/ca.pem" --require-secure-transport=ON)
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
			"${opts[@]}" "${tlsopts[@]}" </dev/null >>"$DIR/mariadb.log" 2>&1 &
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
		if [ $tls -eq 1 ]; then
			mariadb --no-defaults --socket="$sock" -uroot <<-'SQL'
				ALTER USER 'spawn'@'127.0.0.1' REQUIRE X509;
				ALTER USER 'spawn'@'localhost' REQUIRE X509;
			SQL
		fi
	fi
	local params=
	[ $tls -eq 1 ] && params=?$(tls_params)
	cat >"$DIR/mariadb.env" <<-EOF
		SPAWN_TEST_MARIADB_URL='mariadb://spawn:spawn@127.0.0.1:$port/spawn_test$params'
		SPAWN_TEST_MARIADB_STOP='$here/db-stop.sh $DIR mariadb'
		SPAWN_TEST_MARIADB_START='$here/db-start.sh $DIR mariadb'
	EOF
	if [ $tls -eq 1 ]; then
		cat >>"$DIR/mariadb.env" <<-EOF
			SPAWN_TEST_MARIADB_TLS_CERT='$TLS/db.pem'
			SPAWN_TEST_MARIADB_TLS_KEY='$TLS/db.key'
			SPAWN_TEST_MARIADB_TLS_RELOAD='mariadb --no-defaults --socket=$sock -uroot -e FLUSH\ SSL'
			SPAWN_TEST_MARIADB_ADMIN='mariadb --no-defaults --socket=$sock -uroot'
		EOF
	fi
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
