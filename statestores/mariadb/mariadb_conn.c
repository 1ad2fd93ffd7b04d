/* mariadb_conn.c - the MariaDB driver's prepared statements, errors,
 * connection pool and the helpers that run a call's commands (the design
 * note, with the pool's invariants, is in mariadb.c). */
#include "mariadb_int.h"

#include "log.h"
#include "redact.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <errmsg.h>

/* Server error numbers (mysqld_error.h is not in every -dev package). */
#define ER_OUT_OF_MEMORY       1037
#define ER_CON_COUNT           1040
#define ER_SERVER_SHUTDOWN     1053
#define ER_ROW_TOO_BIG         1118
#define ER_PACKET_TOO_LARGE    1153
#define ER_LOCK_WAIT_TIMEOUT   1205
#define ER_LOCK_DEADLOCK       1213
#define ER_DATA_TOO_LONG       1406
#define ER_CONNECTION_KILLED   1927
#define ER_STATEMENT_TIMEOUT   1969
#define ER_CLIENT_IDLE_TIMEOUT 4031

#define SCHED_COLS "id, due_ms, key_id, nonce, data"
/* The database's clock in ms since the epoch: the one clock of the members
 * table. UTC and a difference, so neither the session's time zone nor a
 * daylight-saving change moves it. */
#define DB_NOW_MS "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6)) DIV 1000)"

/* The columns of a row, in the order row_take expects. */
#define ROW_COLS "revision, epoch, key_id, nonce, data, type_url"
/* A row key rotation rewrites: under another key than the primary (?), or
 * not yet envelope 3 (crypto.h: its data begins with A7 'G' 'W' 03). */
#define NOT_CURRENT "(key_id <> ? OR LEFT(data, 4) <> X'A7475703')"
/* Rotation rewrites bind: new key_id, nonce, data, then system, name,
 * revision, old key_id, old nonce. */
#define ROT_WRITE(table)                                                                           \
	"UPDATE " table " SET key_id = ?, nonce = ?, data = ? "                                    \
	"WHERE system = ? AND name = ? AND revision = ? AND key_id = ? AND nonce = ?"

static const char *const sql_text[ST_COUNT] = {
    [ST_LOAD] = "SELECT " ROW_COLS " FROM spawn_actor_state WHERE system = ? AND name = ?",
    [ST_LOAD_REV] = "SELECT " ROW_COLS " FROM spawn_actor_state "
                    "WHERE system = ? AND name = ? AND revision = ? "
                    "UNION ALL SELECT " ROW_COLS " FROM spawn_actor_history "
                    "WHERE system = ? AND name = ? AND revision = ? LIMIT 1",
    [ST_LIST] = "SELECT revision FROM spawn_actor_state WHERE system = ? AND name = ? "
                "UNION SELECT revision FROM spawn_actor_history WHERE system = ? AND name = ? "
                "ORDER BY 1 DESC LIMIT ?",
    [ST_INSERT] = "INSERT INTO spawn_actor_state"
                  "(system, name, revision, epoch, key_id, nonce, data, type_url, updated_at, "
                  "effects) VALUES(?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6), ?) "
                  "ON DUPLICATE KEY UPDATE system = system",
    [ST_UPDATE] = "UPDATE spawn_actor_state SET revision = ?, epoch = ?, key_id = ?, "
                  "nonce = ?, data = ?, type_url = ?, updated_at = UTC_TIMESTAMP(6), "
                  "effects = ? WHERE system = ? AND name = ? AND revision = ?",
    [ST_FENCE] = "SELECT epoch FROM spawn_actor_epoch WHERE system = ? AND name = ? "
                 "LOCK IN SHARE MODE",
    [ST_ACQUIRE] = "INSERT INTO spawn_actor_epoch(system, name, epoch) VALUES(?, ?, 1) "
                   "ON DUPLICATE KEY UPDATE epoch = epoch + 1",
    [ST_EPOCH_GET] = "SELECT epoch FROM spawn_actor_epoch WHERE system = ? AND name = ?",
    [ST_HIST_PUT] = "INSERT INTO spawn_actor_history"
                    "(system, name, revision, epoch, key_id, nonce, data, type_url, "
                    "updated_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6)) "
                    "ON DUPLICATE KEY UPDATE epoch = VALUES(epoch), key_id = VALUES(key_id), "
                    "nonce = VALUES(nonce), data = VALUES(data), type_url = VALUES(type_url), "
                    "updated_at = VALUES(updated_at)",
    [ST_HIST_TRIM] = "DELETE FROM spawn_actor_history "
                     "WHERE system = ? AND name = ? AND revision < ?",
    [ST_REMOVE] = "DELETE FROM spawn_actor_state WHERE system = ? AND name = ?",
    [ST_REMOVE_HIST] = "DELETE FROM spawn_actor_history WHERE system = ? AND name = ?",
    [ST_META_GET] = "SELECT value FROM spawn_meta WHERE name = ?",
    [ST_META_PUT] = "INSERT INTO spawn_meta(name, value) VALUES(?, ?) "
                    "ON DUPLICATE KEY UPDATE value = VALUES(value)",
    /* An existing row is left as it is: 0 affected rows. */
    [ST_META_CREATE] = "INSERT INTO spawn_meta(name, value) VALUES(?, ?) "
                       "ON DUPLICATE KEY UPDATE name = name",
    [ST_ROT_COUNT] = "SELECT (SELECT COUNT(*) FROM spawn_actor_state WHERE " NOT_CURRENT ") + "
                     "(SELECT COUNT(*) FROM spawn_actor_history WHERE " NOT_CURRENT ")",
    /* Spelled out rather than as row comparisons, which the range
     * optimizer of older servers does not use: both walk the primary key
     * (VARBINARY: byte order). */
    [ST_ROT_SCAN_STATE] = "SELECT system, name, " ROW_COLS " FROM spawn_actor_state "
                          "WHERE " NOT_CURRENT " AND (system > ? OR (system = ? AND name > ?)) "
                          "ORDER BY system, name LIMIT ?",
    [ST_ROT_SCAN_HIST] = "SELECT system, name, " ROW_COLS " FROM spawn_actor_history "
                         "WHERE " NOT_CURRENT " AND (system > ? OR (system = ? AND "
                         "(name > ? OR (name = ? AND revision > ?)))) "
                         "ORDER BY system, name, revision LIMIT ?",
    [ST_ROT_WRITE_STATE] = ROT_WRITE("spawn_actor_state"),
    [ST_ROT_WRITE_HIST] = ROT_WRITE("spawn_actor_history"),
    [ST_INST_PUT] = "INSERT INTO spawn_instance(system, name, parent, created_at) "
                    "VALUES(?, ?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE system = system",
    [ST_INST_GET] = "SELECT parent FROM spawn_instance WHERE system = ? AND name = ?",
    [ST_SCHED_PUT] = "INSERT INTO spawn_schedule(id, due_ms, owner, lease_until, key_id, nonce, "
                     "data) VALUES(?, ?, NULL, NULL, ?, ?, ?) ON DUPLICATE KEY UPDATE id = id",
    /* The two claim scans, each on its index (FORCE INDEX: the plan never
     * depends on statistics). SKIP LOCKED (MariaDB 10.6+, MySQL 8.0.1+):
     * rows a concurrent claim holds are passed over; a row it leased and
     * committed meanwhile no longer matches (a locking read sees the latest
     * commit). */
    [ST_SCHED_FREE] = "SELECT " SCHED_COLS " FROM spawn_schedule FORCE INDEX (spawn_schedule_due) "
                      "WHERE owner IS NULL AND due_ms <= ? ORDER BY due_ms, id LIMIT ? "
                      "FOR UPDATE SKIP LOCKED",
    [ST_SCHED_EXPIRED] = "SELECT " SCHED_COLS " FROM spawn_schedule "
                         "FORCE INDEX (spawn_schedule_lease) "
                         "WHERE owner IS NOT NULL AND lease_until <= ? "
                         "ORDER BY due_ms, id LIMIT ? FOR UPDATE SKIP LOCKED",
    [ST_SCHED_LEASE] = "UPDATE spawn_schedule SET owner = ?, lease_until = ? WHERE id = ?",
    [ST_SCHED_ASIDE] = "UPDATE spawn_schedule SET owner = '" GW_SCHED_CORRUPT "', "
                       "lease_until = 9223372036854775807 WHERE id = ?",
    [ST_SCHED_DONE] = "DELETE FROM spawn_schedule WHERE id = ?",
    [ST_SCHED_NEXT] = "SELECT (SELECT due_ms FROM spawn_schedule FORCE INDEX (spawn_schedule_due) "
                      "WHERE owner IS NULL ORDER BY due_ms LIMIT 1), "
                      "(SELECT lease_until FROM spawn_schedule "
                      "FORCE INDEX (spawn_schedule_lease) WHERE owner IS NOT NULL "
                      "AND lease_until < 9223372036854775807 ORDER BY lease_until LIMIT 1)",
    [ST_SCHED_COUNT] = "SELECT COUNT(*) FROM spawn_schedule",
    /* The flagged rows through (effects, system, name): one equality, then
     * key order. effects = 1, not <> 0: the front writes only 0 and 1, and
     * <> 0 would be two ranges the index cannot return in key order. */
    [ST_EFFECTS_LIST] = "SELECT system, name FROM spawn_actor_state "
                        "FORCE INDEX (spawn_actor_state_effects) "
                        "WHERE effects = 1 AND (system > ? OR (system = ? AND name > ?)) "
                        "ORDER BY system, name LIMIT ?",
    [ST_INST_COUNTS] = "SELECT system, COUNT(*) FROM spawn_instance GROUP BY system",
    [ST_SCHED_COUNTS] = "SELECT SUBSTRING(id, 1, ?), COUNT(*) FROM spawn_schedule GROUP BY 1",
    [ST_SCHED_RANGE] = "SELECT " SCHED_COLS " FROM spawn_schedule "
                       "WHERE id > ? AND id < ? ORDER BY id LIMIT ?",
    /* Key rotation: the row keeps due_ms and its claim. */
    [ST_SCHED_RESEAL] = "UPDATE spawn_schedule SET key_id = ?, nonce = ?, data = ? "
                        "WHERE id = ? AND key_id = ? AND nonce = ?",
    /* Forget: the row's effects flag, locked until the transaction ends. */
    [ST_FORGET_FX] = "SELECT effects FROM spawn_actor_state WHERE system = ? AND name = ? "
                     "FOR UPDATE",
    [ST_FORGET_INST] = "DELETE FROM spawn_instance WHERE system = ? AND name = ?",
    [ST_FORGET_EPOCH] = "UPDATE spawn_actor_epoch SET epoch = epoch + 1, owner = NULL "
                        "WHERE system = ? AND name = ?",
    /* The members of a cluster (mariadb_members.c). An existing id is left
     * as it is: 0 affected rows. */
    [ST_MEMBER_JOIN] = "INSERT INTO spawn_members(id, address, status, started_ms, heartbeat_ms, "
                       "served, view_version) SELECT ?, ?, 1, t.now_ms, t.now_ms, ?, 0 "
                       "FROM (SELECT " DB_NOW_MS " AS now_ms) t "
                       "ON DUPLICATE KEY UPDATE id = spawn_members.id",
    [ST_MEMBER_GET] = "SELECT heartbeat_ms, status FROM spawn_members WHERE id = ?",
    [ST_MEMBER_HEARTBEAT] = "UPDATE spawn_members SET heartbeat_ms = " DB_NOW_MS ", status = ?, "
                            "served = ?, view_version = ? WHERE id = ? AND status <> 4",
    /* The now and the rows in one statement; no member: one row of NULLs. */
    [ST_MEMBER_LIST] = "SELECT t.now_ms, m.id, m.address, m.status, m.started_ms, "
                       "m.heartbeat_ms, m.served, m.view_version "
                       "FROM (SELECT " DB_NOW_MS " AS now_ms) t "
                       "LEFT JOIN spawn_members m ON 1 = 1 ORDER BY m.id",
    /* InnoDB's UPDATE is a locking read of the latest committed row: of
     * racing declarations exactly one changes it, and a heartbeat that
     * committed first makes the heartbeat_ms test fail. */
    [ST_MEMBER_DEAD] = "UPDATE spawn_members SET status = 4 "
                       "WHERE id = ? AND status IN (1, 2, 3) AND heartbeat_ms = ?",
    [ST_MEMBER_REMOVE] = "DELETE FROM spawn_members WHERE id = ?",
    [ST_MEMBER_GC] = "DELETE FROM spawn_members WHERE status = 4 "
                     "AND heartbeat_ms < " DB_NOW_MS " - ?",
};

/* ---- errors -------------------------------------------------------------------- */

/* lost_errno: the connection is gone (the next call reconnects). */
static bool lost_errno(unsigned e)
{
	return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_SERVER_LOST_EXTENDED ||
	       e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR ||
	       e == CR_COMMANDS_OUT_OF_SYNC || e == ER_SERVER_SHUTDOWN ||
	       e == ER_CONNECTION_KILLED || e == ER_CLIENT_IDLE_TIMEOUT;
}

static gw_err map_errno(unsigned e)
{
	if (lost_errno(e) || e == ER_LOCK_WAIT_TIMEOUT || e == ER_LOCK_DEADLOCK ||
	    e == ER_CON_COUNT || e == ER_STATEMENT_TIMEOUT)
		return GW_EUNAVAIL;
	if (e == ER_DATA_TOO_LONG || e == ER_PACKET_TOO_LARGE || e == CR_NET_PACKET_TOO_LARGE ||
	    e == ER_ROW_TOO_BIG)
		return GW_ETOOBIG;
	if (e == CR_OUT_OF_MEMORY || e == ER_OUT_OF_MEMORY)
		return GW_ENOMEM;
	return GW_EIO;
}

void gwi_my_conn_drop(my_conn *mc)
{
	for (int i = 0; i < ST_COUNT; i++) {
		if (mc->st[i])
			mysql_stmt_close(mc->st[i]);
		mc->st[i] = NULL;
	}
	if (mc->m)
		mysql_close(mc->m);
	mc->m = NULL;
}

gw_err gwi_my_fail(const my_drv *d, my_conn *mc, MYSQL_STMT *st, const char *what)
{
	unsigned no = st ? mysql_stmt_errno(st) : mysql_errno(mc->m);
	const char *msg = st ? mysql_stmt_error(st) : mysql_error(mc->m);
	GW_ERROR("mariadb %s: %s: %s (%u)", d->where, what, msg && *msg ? msg : "unknown error",
	         no);
	gw_err e = map_errno(no);
	if (lost_errno(no))
		gwi_my_conn_drop(mc);
	return e;
}

/* ---- connections --------------------------------------------------------------- */

gw_err gwi_my_conn_open(my_drv *d, my_conn *mc, char *why, size_t whylen)
{
	unsigned int ct = d->u.connect_timeout, io = IO_TIMEOUT;
	if (d->net_ms > 0) {
		/* store.h, net_timeout_ms: connects bounded like PostgreSQL's
		 * connect_timeout (seconds, at least 2), unless the URL's is
		 * shorter. */
		unsigned secs = (unsigned)(d->net_ms + 999) / 1000;
		if (secs < 2)
			secs = 2;
		if (ct > secs)
			ct = secs;
	}
	unsigned int proto = d->u.socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
	my_bool off = 0, on = 1;
	gw_err e = GW_EUNAVAIL;
	mc->m = mysql_init(NULL);
	if (!mc->m) {
		snprintf(why, whylen, "out of memory");
		return GW_ENOMEM;
	}
	mysql_options(mc->m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
	mysql_options(mc->m, MYSQL_OPT_READ_TIMEOUT, &io);
	mysql_options(mc->m, MYSQL_OPT_WRITE_TIMEOUT, &io);
	mysql_options(mc->m, MYSQL_OPT_PROTOCOL, &proto);
	mysql_options(mc->m, MYSQL_OPT_RECONNECT, &off);
	mysql_options(mc->m, MYSQL_OPT_LOCAL_INFILE, &off);
	mysql_options(mc->m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	/* sslmode (mariadb.c): connector-c 3.3 checks the chain whenever a CA
	 * is set, and without one only under VERIFY_SERVER_CERT (then against
	 * the system's CAs); verify-ca without sslrootcert needs that flag
	 * too, and so checks the name as well: stricter, never weaker. */
	if (d->u.sslmode >= MY_SSL_REQUIRE) {
		mysql_options(mc->m, MYSQL_OPT_SSL_ENFORCE, &on);
		if (d->u.sslrootcert)
			mysql_options(mc->m, MYSQL_OPT_SSL_CA, d->u.sslrootcert);
		if (d->u.sslcert) {
			mysql_options(mc->m, MYSQL_OPT_SSL_CERT, d->u.sslcert);
			mysql_options(mc->m, MYSQL_OPT_SSL_KEY, d->u.sslkey);
		}
	}
	if (d->u.sslmode == MY_SSL_VERIFY_FULL ||
	    (d->u.sslmode == MY_SSL_VERIFY_CA && !d->u.sslrootcert))
		mysql_options(mc->m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
	/* No CLIENT_MULTI_STATEMENTS: one statement per query. */
	if (!mysql_real_connect(mc->m, d->u.socket ? "localhost" : d->u.host, d->u.user,
	                        d->u.password, d->u.db, d->u.port, d->u.socket, 0)) {
		snprintf(why, whylen, "%s (%u)", mysql_error(mc->m), mysql_errno(mc->m));
		e = map_errno(mysql_errno(mc->m));
		if (e != GW_ENOMEM)
			e = GW_EUNAVAIL;
		goto fail;
	}
	if (d->net_ms > 0 && !d->u.socket) {
		/* store.h, net_timeout_ms: as libpq's tcp_user_timeout, data sent
		 * and not acknowledged for this long drops the connection (the
		 * database cut off: a heartbeat's packets lost), so the next
		 * statement connects again instead of waiting out TCP's
		 * retransmission backoff on this one (before: ~12 s after the
		 * database's return). Not the read timeout: a slow answer (a lock
		 * wait, a loaded server) is not a lost connection. */
		unsigned int ut = (unsigned int)d->net_ms;
		if (setsockopt((int)mysql_get_socket(mc->m), IPPROTO_TCP, TCP_USER_TIMEOUT, &ut,
		               sizeof ut) != 0) {
			snprintf(why, whylen, "TCP_USER_TIMEOUT: %s", strerror(errno));
			goto fail;
		}
	}
	/* READ COMMITTED: the epoch peek sees the latest commit. Strict mode:
	 * an over-long key is an error, never a silent truncation. */
	static const char *const session[] = {
	    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
	    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
	    "SESSION innodb_lock_wait_timeout = " GWI_STR(LOCK_WAIT) ", time_zone = '+00:00'",
	};
	char idle[96] = "";
	if (d->idle_tx_ms > 0) /* cluster mode (store.h, idle_tx_timeout_ms) */
		snprintf(idle, sizeof idle, "SET SESSION idle_transaction_timeout = %d",
		         (d->idle_tx_ms + 999) / 1000);
	for (size_t i = 0; i <= sizeof session / sizeof session[0]; i++) {
		const char *q = i < sizeof session / sizeof session[0] ? session[i] : idle;
		if (!q[0])
			continue;
		if (mysql_real_query(mc->m, q, strlen(q)) != 0) {
			snprintf(why, whylen, "session setup: %s (%u)", mysql_error(mc->m),
			         mysql_errno(mc->m));
			e = map_errno(mysql_errno(mc->m));
			goto fail;
		}
	}
	*why = '\0';
	return GW_OK;
fail:
	/* The client library's messages may echo connection parameters. */
	gw_redact_secret(why, whylen, d->u.password);
	gwi_my_conn_drop(mc);
	return e;
}

gw_err gwi_my_conn_prepare(my_drv *d, my_conn *mc, char *why, size_t whylen)
{
	for (int i = 0; i < ST_COUNT; i++) {
		mc->st[i] = mysql_stmt_init(mc->m);
		if (!mc->st[i]) {
			snprintf(why, whylen, "out of memory");
			gwi_my_conn_drop(mc);
			return GW_ENOMEM;
		}
		if (mysql_stmt_prepare(mc->st[i], sql_text[i], strlen(sql_text[i])) != 0) {
			unsigned no = mysql_stmt_errno(mc->st[i]);
			snprintf(why, whylen, "cannot prepare statement %d: %s (%u)", i,
			         mysql_stmt_error(mc->st[i]), no);
			gwi_my_conn_drop(mc);
			return lost_errno(no) ? GW_EUNAVAIL : map_errno(no);
		}
	}
	return GW_OK;
}

/* The pool's table: slot i is d->conns[i]. */
static bool slot_open(void *drv, int slot)
{
	return ((my_drv *)drv)->conns[slot].m != NULL;
}

/* slot_stale: an idle connection has nothing to read unless the server
 * closed it (shutdown, kill, wait_timeout). */
static bool slot_stale(void *drv, int slot)
{
	my_conn *mc = &((my_drv *)drv)->conns[slot];
	struct pollfd p = {.fd = (int)mysql_get_socket(mc->m), .events = POLLIN};
	if (p.fd < 0)
		return true;
	return poll(&p, 1, 0) != 0;
}

static void slot_drop(void *drv, int slot)
{
	gwi_my_conn_drop(&((my_drv *)drv)->conns[slot]);
}

/* slot_ready connects the slot and prepares its statements. */
static gw_err slot_ready(void *drv, int slot, char *why, size_t whylen)
{
	my_drv *d = drv;
	my_conn *mc = &d->conns[slot];
	gw_err e = gwi_my_conn_open(d, mc, why, whylen);
	return e == GW_OK ? gwi_my_conn_prepare(d, mc, why, whylen) : e;
}

const gwi_conn_ops gwi_my_conn_ops = {
    .driver = "mariadb",
    .is_open = slot_open,
    .stale = slot_stale,
    .drop = slot_drop,
    .ready = slot_ready,
};

gw_err gwi_my_conn_acquire(my_drv *d, my_conn **mc, bool *fresh)
{
	int slot;
	gw_err e = gwi_pool_acquire(&d->pool, &slot, fresh);
	if (e == GW_OK)
		*mc = &d->conns[slot];
	return e;
}

void gwi_my_conn_release(my_drv *d, my_conn *mc)
{
	gwi_pool_release(&d->pool, (int)(mc - d->conns));
}

/* ---- running commands ------------------------------------------------------------ */

gw_err gwi_my_exec(my_drv *d, my_conn *mc, int id, my_binds *x, const char *what)
{
	MYSQL_STMT *st = mc->st[id];
	if (mysql_stmt_bind_param(st, x->b) != 0 || mysql_stmt_execute(st) != 0)
		return gwi_my_fail(d, mc, st, what);
	return GW_OK;
}

/* reconnect replaces mc, found dead; lost is the error that said so (read
 * before the connection goes). */
static gw_err reconnect(my_drv *d, my_conn *mc, const char *lost)
{
	return gwi_pool_reconnect(&d->pool, (int)(mc - d->conns), lost);
}

gw_err gwi_my_exec_first(my_drv *d, my_conn *mc, bool fresh, int id, my_binds *x, const char *what)
{
	MYSQL_STMT *st = mc->st[id];
	if (mysql_stmt_bind_param(st, x->b) == 0 && mysql_stmt_execute(st) == 0)
		return GW_OK;
	unsigned no = mysql_stmt_errno(st);
	if (fresh || !lost_errno(no))
		return gwi_my_fail(d, mc, st, what);
	gw_err e = reconnect(d, mc, mysql_stmt_error(st));
	return e == GW_OK ? gwi_my_exec(d, mc, id, x, what) : e;
}

gw_err gwi_my_query_first(my_drv *d, my_conn *mc, bool fresh, const char *sql, const char *what)
{
	for (int attempt = 0;; attempt++) {
		if (mysql_real_query(mc->m, sql, strlen(sql)) == 0)
			return GW_OK;
		if (fresh || attempt > 0 || !lost_errno(mysql_errno(mc->m)))
			return gwi_my_fail(d, mc, NULL, what);
		gw_err e = reconnect(d, mc, mysql_error(mc->m));
		if (e != GW_OK)
			return e;
	}
}

gw_err gwi_my_begin(my_drv *d, my_conn **mc)
{
	my_conn *c;
	bool fresh;
	gw_err e = gwi_my_conn_acquire(d, &c, &fresh);
	if (e != GW_OK)
		return e;
	if ((e = gwi_my_query_first(d, c, fresh, "START TRANSACTION", "START TRANSACTION")) !=
	    GW_OK)
		return gwi_my_end(d, c, e);
	*mc = c;
	return GW_OK;
}

gw_err gwi_my_end(my_drv *d, my_conn *mc, gw_err e)
{
	if (!mc)
		return e;
	if (e == GW_OK && mysql_commit(mc->m) != 0)
		e = gwi_my_fail(d, mc, NULL, "commit");
	if (e != GW_OK && mc->m && mysql_rollback(mc->m) != 0) {
		GW_ERROR("mariadb %s: rollback: %s", d->where, mysql_error(mc->m));
		gwi_my_conn_drop(mc);
	}
	gwi_my_conn_release(d, mc);
	return e;
}

gw_err gwi_my_command(my_drv *d, int id, my_binds *x, const char *what, bool *one)
{
	my_conn *mc;
	bool fresh;
	gw_err e = gwi_my_conn_acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	e = gwi_my_exec_first(d, mc, fresh, id, x, what);
	if (one)
		*one = e == GW_OK && mysql_stmt_affected_rows(mc->st[id]) == 1;
	gwi_my_conn_release(d, mc);
	return e;
}

gw_err gwi_my_query(my_drv *d, int id, my_binds *x, const char *what, my_conn **mc)
{
	my_conn *c;
	bool fresh;
	gw_err e = gwi_my_conn_acquire(d, &c, &fresh);
	if (e != GW_OK)
		return e;
	if ((e = gwi_my_exec_first(d, c, fresh, id, x, what)) != GW_OK) {
		gwi_my_query_end(d, c, id);
		return e;
	}
	*mc = c;
	return GW_OK;
}

void gwi_my_query_end(my_drv *d, my_conn *mc, int id)
{
	/* Drain the rest of the result (if the connection still stands). */
	if (mc->m)
		mysql_stmt_free_result(mc->st[id]);
	gwi_my_conn_release(d, mc);
}

gw_err gwi_my_fetch_int(my_drv *d, my_conn *mc, int id, bool *found, uint64_t *v)
{
	MYSQL_STMT *st = mc->st[id];
	long long n = 0;
	MYSQL_BIND r = {0};
	r.buffer_type = MYSQL_TYPE_LONGLONG;
	r.buffer = &n;
	gw_err e = GW_OK;
	if (mysql_stmt_bind_result(st, &r) != 0)
		return gwi_my_fail(d, mc, st, "epoch (bind)");
	int rc = mysql_stmt_fetch(st);
	if (rc == MYSQL_NO_DATA) {
		*found = false;
	} else if (rc == 0) {
		*found = true;
		*v = (uint64_t)n;
	} else {
		e = gwi_my_fail(d, mc, st, "epoch (fetch)");
	}
	if (mc->m)
		mysql_stmt_free_result(st);
	return e;
}

gw_err gwi_my_query_int(my_drv *d, int id, my_binds *x, const char *what, uint64_t *v)
{
	my_conn *mc;
	bool fresh, found = false;
	gw_err e = gwi_my_conn_acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	if ((e = gwi_my_exec_first(d, mc, fresh, id, x, what)) == GW_OK &&
	    (e = gwi_my_fetch_int(d, mc, id, &found, v)) == GW_OK && !found)
		e = GW_ECORRUPT;
	gwi_my_conn_release(d, mc);
	return e;
}

gw_err gwi_my_fetch_blob(my_drv *d, my_conn *mc, int id, const char *what, char **out,
                         unsigned long *len, bool *null)
{
	MYSQL_STMT *st = mc->st[id];
	unsigned long n = 0;
	my_bool isnull = 0;
	MYSQL_BIND r = {0};
	char step[80];
	r.buffer_type = MYSQL_TYPE_BLOB;
	r.length = &n;
	r.is_null = &isnull;
	if (mysql_stmt_bind_result(st, &r) != 0) {
		snprintf(step, sizeof step, "%s (bind)", what);
		return gwi_my_fail(d, mc, st, step);
	}
	/* No buffer bound: the fetch measures the column, fetch_bytes copies. */
	int rc = mysql_stmt_fetch(st);
	if (rc == MYSQL_NO_DATA)
		return GW_ENOTFOUND;
	if (rc != 0 && rc != MYSQL_DATA_TRUNCATED) {
		snprintf(step, sizeof step, "%s (fetch)", what);
		return gwi_my_fail(d, mc, st, step);
	}
	*null = isnull;
	if (isnull)
		return GW_OK;
	gw_err e = gwi_my_fetch_bytes(d, mc, st, 0, n, out);
	if (e == GW_OK)
		*len = n;
	return e;
}

gw_err gwi_my_fetch_bytes(my_drv *d, my_conn *mc, MYSQL_STMT *st, int col, unsigned long len,
                          char **out)
{
	char *buf = malloc((size_t)len + 1);
	if (!buf)
		return GW_ENOMEM;
	if (len > 0) {
		MYSQL_BIND b = {0};
		unsigned long got = 0;
		b.buffer_type = MYSQL_TYPE_BLOB;
		b.buffer = buf;
		b.buffer_length = len;
		b.length = &got;
		if (mysql_stmt_fetch_column(st, &b, (unsigned)col, 0) != 0 || got != len) {
			free(buf);
			return gwi_my_fail(d, mc, st, "load (column)");
		}
	}
	buf[len] = '\0';
	*out = buf;
	return GW_OK;
}
