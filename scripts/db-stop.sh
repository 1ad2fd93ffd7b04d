#!/usr/bin/env bash
# db-stop.sh [--wipe] DIR [postgres] [mariadb]
#
# Stops the private database servers db-start.sh started under DIR (both
# when none is named) and waits until each has exited. --wipe then removes
# their data directories (logs, ports and env files stay, for a post-mortem
# and for a restart on the same port). Stopping what is not running is fine.
# Never touches a system service: it acts only on DIR's data directories
# and the pid they recorded.
set -euo pipefail

wipe=0
if [ "${1:-}" = "--wipe" ]; then
	wipe=1
	shift
fi
if [ $# -lt 1 ]; then
	echo "usage: $0 [--wipe] DIR [postgres] [mariadb]" >&2
	exit 2
fi
[ -d "$1" ] || exit 0
DIR=$(cd "$1" && pwd)
shift
engines=("$@")
[ ${#engines[@]} -gt 0 ] || engines=(postgres mariadb)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
status=0
SOCK=$DIR
[ -s "$DIR/sockdir" ] && SOCK=$(cat "$DIR/sockdir")

log() { echo "db-stop: $*" >&2; }

pg_run() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# wait_gone PID SECONDS: waits for a process to exit; 1 when it did not.
wait_gone() {
	for _ in $(seq 1 $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || return 0
		# A server that exited but was not reaped yet (its parent is a test
		# runner acting as subreaper) is a zombie: it is gone.
		[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = "Z" ] && return 0
		sleep 0.1
	done
	return 1
}

pg_stop() {
	local data=$DIR/postgres
	[ -s "$DIR/postgres.datadir" ] && data=$(cat "$DIR/postgres.datadir")
	if [ -f "$data/postmaster.pid" ] && [ -x "$PG_BIN/pg_ctl" ]; then
		# fast: roll back open transactions, close connections, checkpoint.
		if ! pg_run "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1; then
			local pid
			pid=$(head -1 "$data/postmaster.pid" 2>/dev/null || true)
			if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
				log "postgres: did not stop in 60 s; killing $pid"
				kill -9 "$pid" 2>/dev/null || true
				wait_gone "$pid" 10 || status=1
			fi
		fi
	fi
	if [ $wipe -eq 1 ]; then
		rm -rf "$data"
		rm -f "$DIR/postgres.env"
	fi
}

my_stop() {
	local pidf=$DIR/mariadb.pid pid=
	[ -s "$pidf" ] && pid=$(cat "$pidf")
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		# shutdown returns once the server has begun to stop; the pid is
		# what tells that it is gone (and the port and files are free).
		mariadb-admin --no-defaults --socket="$SOCK/mysqld.sock" -uroot \
			--shutdown-timeout=60 shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
		if ! wait_gone "$pid" 60; then
			log "mariadb: did not stop in 60 s; killing $pid"
			kill -9 "$pid" 2>/dev/null || true
			wait_gone "$pid" 10 || status=1
		fi
	fi
	rm -f "$pidf"
	if [ $wipe -eq 1 ]; then
		rm -rf "$DIR/mariadb"
		rm -f "$DIR/mariadb.env"
	fi
}

for e in "${engines[@]}"; do
	case $e in
	postgres) pg_stop ;;
	mariadb) my_stop ;;
	*)
		echo "usage: $0 [--wipe] DIR [postgres] [mariadb]" >&2
		exit 2
		;;
	esac
done
if [ $wipe -eq 1 ] && [ -f "$DIR/env" ]; then
	: >"$DIR/env.tmp"
	for e in postgres mariadb; do
		[ -f "$DIR/$e.env" ] && cat "$DIR/$e.env" >>"$DIR/env.tmp"
	done
	mv "$DIR/env.tmp" "$DIR/env"
fi
exit $status
