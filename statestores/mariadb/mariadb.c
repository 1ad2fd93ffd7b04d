/* mariadb.c - the MariaDB / MySQL statestore driver (mariadb-connector-c).
 *
 * URLs:  mariadb://user:password@host:port/db?param=value&...
 *        mysql://...                      (the same driver)
 *   user, password and db are percent-decoded; host may be [v6addr]; port
 *   defaults to 3306. Parameters: socket=/path (a unix socket instead of
 *   TCP), connect_timeout=SECONDS (default 10), sslmode=disable|require|
 *   verify-full, sslrootcert=/path/ca.pem. Anything else is GW_ECONFIG.
 *
 * Schema (version 4; docs/schema.md): spawn_meta, spawn_actor_state,
 * spawn_actor_history, spawn_actor_epoch, spawn_instance and
 * spawn_schedule, InnoDB, keys as VARBINARY (byte-exact comparison:
 * no collation folds 'Alice' into 'alice' or pads trailing spaces).
 * Created or migrated at open under GET_LOCK('spawn.schema.' + md5(db)), so
 * gateways starting together run the migration once. MariaDB commits DDL
 * implicitly, so every migration statement is idempotent (IF NOT EXISTS, or
 * DDL_UNLESS below) and the version is recorded last: a migration cut short
 * runs again.
 *
 * save_batch, per row, inside START TRANSACTION ... COMMIT (READ COMMITTED):
 *   epoch != 0     SELECT epoch FROM spawn_actor_epoch ... LOCK IN SHARE MODE:
 *                  not ours (or no row) -> EFENCED, nothing written
 *   expected == 0  INSERT ... ON DUPLICATE KEY UPDATE system = system
 *                  (row exists -> 0 affected rows)
 *   expected  > 0  UPDATE ... WHERE revision = expected
 *   0 rows         ECONFLICT
 *   history N > 0  the new revision is also written to spawn_actor_history
 *                  and revisions below (new - N) are deleted there
 * InnoDB's UPDATE is a locking read of the latest committed row, so of two
 * racing saves of one revision exactly one changes the row. The fence is a
 * locking read too: it sees the latest committed epoch, and its shared
 * lock makes an acquire wait until the save commits. Any error ->
 * ROLLBACK, the batch fails as a whole.
 *
 * sched_claim, in one transaction: up to max unclaimed due rows and up to
 * max rows whose lease expired, both SELECT ... FOR UPDATE SKIP LOCKED
 * (MariaDB 10.6+ / MySQL 8.0.1+: an older server fails to prepare them, so
 * the store does not open), merged by (due_ms, id), the first max leased
 * with one UPDATE each, COMMIT.
 *
 * acquire, in one transaction: INSERT INTO spawn_actor_epoch ... ON
 * DUPLICATE KEY UPDATE epoch = epoch + 1 (an exclusive row lock: it waits
 * for every save holding the row in share mode), SELECT the new epoch (our
 * own write), COMMIT. (Portable to MySQL, which has no INSERT ... RETURNING.)
 *
 * Connections: a pool of pool_size (default 4), opened on demand, every
 * statement prepared on each; the same states and invariants as the
 * postgres driver (postgres.c): one thread per connection, released idle
 * or closed, a dead connection found before anything was sent is replaced
 * and the command retried once, otherwise GW_EUNAVAIL and the next call
 * reconnects. Never MYSQL_OPT_RECONNECT: it would silently drop the
 * session settings and prepared statements. Nothing waits forever:
 * connect/read/write timeouts and innodb_lock_wait_timeout bound a call.
 */
#include "drivers.h"
#include "log.h"

#include <ctype.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errmsg.h>
#include <mysql.h>

#define SCHEMA_VERSION   4
#define POOL_DEFAULT     4
#define POOL_MAX         64
#define HISTORY_MAX      1000000
#define CONNECT_TIMEOUT  10 /* seconds */
#define IO_TIMEOUT       30 /* seconds, per read or write; > the lock wait */
#define LOCK_WAIT        10 /* seconds: innodb_lock_wait_timeout */
#define SCHEMA_LOCK_WAIT 20 /* seconds: GET_LOCK; < IO_TIMEOUT */

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

enum {
	ST_LOAD,
	ST_LOAD_REV,
	ST_LIST,
	ST_INSERT,
	ST_UPDATE,
	ST_FENCE,
	ST_ACQUIRE,
	ST_EPOCH_GET,
	ST_HIST_PUT,
	ST_HIST_TRIM,
	ST_REMOVE,
	ST_REMOVE_HIST,
	ST_META_GET,
	ST_META_PUT,
	ST_META_CREATE,
	ST_ROT_COUNT,
	ST_ROT_SCAN_STATE,
	ST_ROT_SCAN_HIST,
	ST_ROT_WRITE_STATE,
	ST_ROT_WRITE_HIST,
	ST_INST_PUT,
	ST_INST_GET,
	ST_SCHED_PUT,
	ST_SCHED_FREE,
	ST_SCHED_EXPIRED,
	ST_SCHED_LEASE,
	ST_SCHED_ASIDE,
	ST_SCHED_DONE,
	ST_SCHED_NEXT,
	ST_SCHED_COUNT,
	ST_EFFECTS_LIST,
	ST_COUNT
};

#define SCHED_COLS "id, due_ms, key_id, nonce, data"

/* The columns of a row, in the order row_take expects. */
#define ROW_COLS "revision, epoch, key_id, nonce, data, type_url"
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
    [ST_ROT_COUNT] = "SELECT (SELECT COUNT(*) FROM spawn_actor_state WHERE key_id <> ?) + "
                     "(SELECT COUNT(*) FROM spawn_actor_history WHERE key_id <> ?)",
    /* Spelled out rather than as row comparisons, which the range
     * optimizer of older servers does not use: both walk the primary key
     * (VARBINARY: byte order). */
    [ST_ROT_SCAN_STATE] = "SELECT system, name, " ROW_COLS " FROM spawn_actor_state "
                          "WHERE key_id <> ? AND (system > ? OR (system = ? AND name > ?)) "
                          "ORDER BY system, name LIMIT ?",
    [ST_ROT_SCAN_HIST] = "SELECT system, name, " ROW_COLS " FROM spawn_actor_history "
                         "WHERE key_id <> ? AND (system > ? OR (system = ? AND "
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
};

/* migrations[v] takes the schema from version v to v + 1: idempotent
 * statements, run one by one (DDL commits implicitly). Append only. */
static const char *const migration_1[] = {
    "CREATE TABLE IF NOT EXISTS spawn_meta("
    " name VARBINARY(191) NOT NULL PRIMARY KEY,"
    " value LONGBLOB NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS spawn_actor_state("
    " system VARBINARY(512) NOT NULL,"
    " name VARBINARY(1024) NOT NULL,"
    " revision BIGINT NOT NULL,"
    " epoch BIGINT NOT NULL,"
    " key_id VARBINARY(64) NOT NULL,"
    " nonce VARBINARY(12) NOT NULL,"
    " data LONGBLOB NOT NULL,"
    " type_url VARBINARY(2048) NOT NULL,"
    " updated_at DATETIME(6) NOT NULL,"
    " PRIMARY KEY(system, name)) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS spawn_actor_history("
    " system VARBINARY(512) NOT NULL,"
    " name VARBINARY(1024) NOT NULL,"
    " revision BIGINT NOT NULL,"
    " epoch BIGINT NOT NULL,"
    " key_id VARBINARY(64) NOT NULL,"
    " nonce VARBINARY(12) NOT NULL,"
    " data LONGBLOB NOT NULL,"
    " type_url VARBINARY(2048) NOT NULL,"
    " updated_at DATETIME(6) NOT NULL,"
    " PRIMARY KEY(system, name, revision)) ENGINE=InnoDB",
    NULL,
};
/* 1 -> 2: the epoch table, seeded with the highest epoch version 1 fenced
 * with (GREATEST: a rerun after a cut-short migration changes nothing). */
static const char *const migration_2[] = {
    "CREATE TABLE IF NOT EXISTS spawn_actor_epoch("
    " system VARBINARY(512) NOT NULL,"
    " name VARBINARY(1024) NOT NULL,"
    " epoch BIGINT NOT NULL,"
    " PRIMARY KEY(system, name)) ENGINE=InnoDB",
    "INSERT INTO spawn_actor_epoch(system, name, epoch)"
    " SELECT t.system, t.name, MAX(t.epoch) FROM ("
    "  SELECT system, name, epoch FROM spawn_actor_state"
    "  UNION ALL SELECT system, name, epoch FROM spawn_actor_history) t"
    " WHERE t.epoch > 0 GROUP BY t.system, t.name"
    " ON DUPLICATE KEY UPDATE epoch = GREATEST(spawn_actor_epoch.epoch, VALUES(epoch))",
    NULL,
};
/* 2 -> 3: UNNAMED instances and scheduled invocations. InnoDB has no
 * partial indexes: (owner, due_ms, id) serves the unclaimed scan (owner IS
 * NULL is a ref lookup, then due order), (lease_until) the expired-lease
 * scan. The indexes are part of CREATE TABLE IF NOT EXISTS, so a rerun
 * changes nothing. */
static const char *const migration_3[] = {
    "CREATE TABLE IF NOT EXISTS spawn_instance("
    " system VARBINARY(512) NOT NULL,"
    " name VARBINARY(1024) NOT NULL,"
    " parent VARBINARY(1024) NOT NULL,"
    " created_at DATETIME(6) NOT NULL,"
    " PRIMARY KEY(system, name)) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS spawn_schedule("
    " id VARBINARY(64) NOT NULL PRIMARY KEY,"
    " due_ms BIGINT NOT NULL,"
    " owner VARBINARY(255) NULL,"
    " lease_until BIGINT NULL,"
    " key_id VARBINARY(64) NOT NULL,"
    " nonce VARBINARY(12) NOT NULL,"
    " data LONGBLOB NOT NULL,"
    " KEY spawn_schedule_due(owner, due_ms, id),"
    " KEY spawn_schedule_lease(lease_until)) ENGINE=InnoDB",
    NULL,
};
/* DDL_UNLESS(probe, ddl) runs ddl only when the query probe counts 0 rows:
 * an idempotent ALTER for MySQL 8 too, which has neither ADD COLUMN IF NOT
 * EXISTS nor CREATE INDEX IF NOT EXISTS (MariaDB has both). The server-side
 * prepared statement lives in the migrating session only. */
#define DDL_UNLESS(probe, ddl)                                                                     \
	"SET @spawn_ddl = IF((" probe ") > 0, 'SELECT 1', '" ddl "')",                             \
	    "PREPARE spawn_ddl FROM @spawn_ddl", "EXECUTE spawn_ddl",                              \
	    "DEALLOCATE PREPARE spawn_ddl"
#define IN_STATE_TABLE " WHERE table_schema = DATABASE() AND table_name = 'spawn_actor_state'"
/* 3 -> 4: the effects flag of the latest row (existing rows: 0) and an index
 * of (effects, system, name): InnoDB has no partial index, but the flagged
 * rows are one contiguous range of it, in key order. */
static const char *const migration_4[] = {
    DDL_UNLESS("SELECT COUNT(*) FROM information_schema.columns" IN_STATE_TABLE
               " AND column_name = 'effects'",
               "ALTER TABLE spawn_actor_state ADD COLUMN effects SMALLINT NOT NULL DEFAULT 0"),
    DDL_UNLESS("SELECT COUNT(*) FROM information_schema.statistics" IN_STATE_TABLE
               " AND index_name = 'spawn_actor_state_effects'",
               "CREATE INDEX spawn_actor_state_effects ON spawn_actor_state(effects, system, "
               "name)"),
    NULL,
};
static const char *const *const migrations[SCHEMA_VERSION] = {migration_1, migration_2, migration_3,
                                                              migration_4};

#define STR_(x) #x
#define STR(x)  STR_(x)

#define SCHEMA_LOCK "CONCAT('spawn.schema.', MD5(DATABASE()))"

typedef struct my_url {
	char *user, *password, *host, *db, *socket, *sslrootcert; /* owned, decoded */
	unsigned port;
	unsigned connect_timeout;
	int sslmode; /* 0 default, 1 disable, 2 require, 3 verify-full */
} my_url;

typedef struct my_conn {
	MYSQL *m;                 /* owned; NULL: not connected */
	MYSQL_STMT *st[ST_COUNT]; /* owned: prepared on m */
	bool busy;                /* under my_drv.mu */
} my_conn;

typedef struct my_drv {
	my_url u;
	char *where; /* owned: "user@host:port/db" for messages (no password) */
	int history;
	int n;
	my_conn *pool;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool sync_ok;
} my_drv;

static void my_close(void *drv);

/* ---- the URL ----------------------------------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* decode copies s[0..n) percent-decoded; NULL on a bad escape, a decoded
 * NUL or no memory (*nomem tells which). */
static char *decode(const char *s, size_t n, bool *nomem)
{
	char *out = malloc(n + 1), *o = out;
	if (!out) {
		*nomem = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

static void url_fini(my_url *u)
{
	if (u->password)
		memset(u->password, 0, strlen(u->password));
	free(u->user);
	free(u->password);
	free(u->host);
	free(u->db);
	free(u->socket);
	free(u->sslrootcert);
	memset(u, 0, sizeof *u);
}

/* query_param applies one key=value of the query string. */
static bool query_param(my_url *u, const char *k, char *v, const gw_store_opts *opts)
{
	if (strcmp(k, "socket") == 0) {
		free(u->socket);
		u->socket = v;
		return true;
	}
	if (strcmp(k, "sslrootcert") == 0) {
		free(u->sslrootcert);
		u->sslrootcert = v;
		return true;
	}
	if (strcmp(k, "connect_timeout") == 0) {
		char *end;
		long t = strtol(v, &end, 10);
		bool ok = *v && !*end && t > 0 && t <= 3600;
		if (ok)
			u->connect_timeout = (unsigned)t;
		else
			gwi_store_errf(opts, "bad mariadb URL: connect_timeout '%s'", v);
		free(v);
		return ok;
	}
	if (strcmp(k, "sslmode") == 0) {
		static const char *const modes[] = {"disable", "require", "verify-full"};
		for (int i = 0; i < 3; i++)
			if (strcmp(v, modes[i]) == 0)
				u->sslmode = i + 1;
		if (!u->sslmode)
			gwi_store_errf(
			    opts, "bad mariadb URL: sslmode '%s' (disable, require, verify-full)",
			    v);
		free(v);
		return u->sslmode != 0;
	}
	gwi_store_errf(opts,
	               "bad mariadb URL: unknown parameter '%s' (socket, connect_timeout, "
	               "sslmode, sslrootcert)",
	               k);
	free(v);
	return false;
}

/* parse_url splits scheme://[user[:password]@]host[:port]/db[?k=v&...].
 * The reason of a failure never contains the password. */
static gw_err parse_url(const char *url, my_url *u, const gw_store_opts *opts)
{
	static const char usage[] = "expected mariadb://user:password@host:port/db";
	bool nomem = false;
	const char *p = strstr(url, "://");
	memset(u, 0, sizeof *u);
	u->connect_timeout = CONNECT_TIMEOUT;
	if (!p)
		goto bad;
	p += 3;
	const char *slash = strchr(p, '/');
	if (!slash)
		goto bad;
	/* userinfo: up to the last '@' before the path ('@' in a password
	 * should be %40, but be lenient). */
	const char *at = NULL;
	for (const char *q = p; q < slash; q++)
		if (*q == '@')
			at = q;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		const char *uend = colon ? colon : at;
		if (!(u->user = decode(p, (size_t)(uend - p), &nomem)))
			goto bad;
		if (colon && !(u->password = decode(colon + 1, (size_t)(at - colon - 1), &nomem)))
			goto bad;
		p = at + 1;
	}
	const char *hend = slash, *port = NULL;
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(slash - p));
		if (!rb)
			goto bad;
		if (!(u->host = decode(p + 1, (size_t)(rb - p - 1), &nomem)))
			goto bad;
		if (rb + 1 < slash) {
			if (rb[1] != ':')
				goto bad;
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(p, ':', (size_t)(slash - p));
		if (colon) {
			hend = colon;
			port = colon + 1;
		}
		if (!(u->host = decode(p, (size_t)(hend - p), &nomem)))
			goto bad;
	}
	u->port = 3306;
	if (port) {
		char *end;
		long v = strtol(port, &end, 10);
		if (port == slash || end != slash || v < 1 || v > 65535)
			goto bad;
		u->port = (unsigned)v;
	}
	const char *db = slash + 1, *q = strchr(db, '?');
	const char *dend = q ? q : db + strlen(db);
	if (dend == db || !(u->db = decode(db, (size_t)(dend - db), &nomem)))
		goto bad;
	while (q && *q) {
		q++;
		const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
		const char *eq = memchr(q, '=', (size_t)(end - q));
		if (!eq)
			goto bad;
		char *k = decode(q, (size_t)(eq - q), &nomem);
		char *v = k ? decode(eq + 1, (size_t)(end - eq - 1), &nomem) : NULL;
		if (!k || !v) {
			free(k);
			goto bad;
		}
		bool ok = query_param(u, k, v, opts);
		free(k);
		if (!ok) {
			url_fini(u);
			return GW_ECONFIG;
		}
		q = amp;
	}
	return GW_OK;
bad:
	url_fini(u);
	if (nomem)
		return GW_ENOMEM;
	gwi_store_errf(opts, "bad mariadb URL (%s)", usage);
	return GW_ECONFIG;
}

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

static void conn_drop(my_conn *mc)
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

/* fail logs the error of st (or of the connection when st is NULL), maps
 * it, and drops a connection that is gone. */
static gw_err fail(const my_drv *d, my_conn *mc, MYSQL_STMT *st, const char *what)
{
	unsigned no = st ? mysql_stmt_errno(st) : mysql_errno(mc->m);
	const char *msg = st ? mysql_stmt_error(st) : mysql_error(mc->m);
	GW_ERROR("mariadb %s: %s: %s (%u)", d->where, what, msg && *msg ? msg : "unknown error",
	         no);
	gw_err e = map_errno(no);
	if (lost_errno(no))
		conn_drop(mc);
	return e;
}

/* ---- connections --------------------------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;

/* mysql_library_init is not thread-safe: run it once, before any mysql_init.
 * It is never undone (mysql_library_end is process-wide). */
static void lib_init(void)
{
	lib_rc = mysql_library_init(0, NULL, NULL);
}

/* simple runs a statement with no parameters and discards any result. */
static gw_err simple(my_drv *d, my_conn *mc, const char *sql)
{
	if (mysql_real_query(mc->m, sql, strlen(sql)) != 0)
		return fail(d, mc, NULL, sql);
	MYSQL_RES *res = mysql_store_result(mc->m);
	if (res)
		mysql_free_result(res);
	else if (mysql_errno(mc->m))
		return fail(d, mc, NULL, sql);
	return GW_OK;
}

/* query_one runs sql and copies the first column of its one row into
 * *out (caller frees; NULL for SQL NULL or no row). */
static gw_err query_one(my_drv *d, my_conn *mc, const char *sql, char **out)
{
	*out = NULL;
	if (mysql_real_query(mc->m, sql, strlen(sql)) != 0)
		return fail(d, mc, NULL, sql);
	MYSQL_RES *res = mysql_store_result(mc->m);
	if (!res)
		return fail(d, mc, NULL, sql);
	gw_err e = GW_OK;
	MYSQL_ROW row = mysql_fetch_row(res);
	if (row && row[0]) {
		unsigned long *len = mysql_fetch_lengths(res);
		if (!(*out = strndup(row[0], len[0])))
			e = GW_ENOMEM;
	}
	mysql_free_result(res);
	return e;
}

/* conn_open connects mc, sets the session up and prepares every
 * statement. The reason of a failure goes to why. */
static gw_err conn_open(my_drv *d, my_conn *mc, char *why, size_t whylen)
{
	unsigned int ct = d->u.connect_timeout, io = IO_TIMEOUT;
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
	if (d->u.sslmode >= 2)
		mysql_options(mc->m, MYSQL_OPT_SSL_ENFORCE, &on);
	if (d->u.sslmode == 3)
		mysql_options(mc->m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
	if (d->u.sslrootcert)
		mysql_options(mc->m, MYSQL_OPT_SSL_CA, d->u.sslrootcert);
	/* No CLIENT_MULTI_STATEMENTS: one statement per query. */
	if (!mysql_real_connect(mc->m, d->u.socket ? "localhost" : d->u.host, d->u.user,
	                        d->u.password, d->u.db, d->u.port, d->u.socket, 0)) {
		snprintf(why, whylen, "%s (%u)", mysql_error(mc->m), mysql_errno(mc->m));
		e = map_errno(mysql_errno(mc->m));
		if (e != GW_ENOMEM)
			e = GW_EUNAVAIL;
		goto fail;
	}
	/* READ COMMITTED: the epoch peek sees the latest commit. Strict mode:
	 * an over-long key is an error, never a silent truncation. */
	static const char *const session[] = {
	    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
	    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
	    "SESSION innodb_lock_wait_timeout = " STR(LOCK_WAIT) ", time_zone = '+00:00'",
	};
	for (size_t i = 0; i < sizeof session / sizeof session[0]; i++) {
		if (mysql_real_query(mc->m, session[i], strlen(session[i])) != 0) {
			snprintf(why, whylen, "session setup: %s (%u)", mysql_error(mc->m),
			         mysql_errno(mc->m));
			e = map_errno(mysql_errno(mc->m));
			goto fail;
		}
	}
	*why = '\0';
	return GW_OK;
fail:
	conn_drop(mc);
	return e;
}

/* conn_prepare prepares every statement on a connected mc. It needs the
 * tables, so open runs it after the migration. */
static gw_err conn_prepare(my_drv *d, my_conn *mc, char *why, size_t whylen)
{
	for (int i = 0; i < ST_COUNT; i++) {
		mc->st[i] = mysql_stmt_init(mc->m);
		if (!mc->st[i]) {
			snprintf(why, whylen, "out of memory");
			conn_drop(mc);
			return GW_ENOMEM;
		}
		if (mysql_stmt_prepare(mc->st[i], sql_text[i], strlen(sql_text[i])) != 0) {
			unsigned no = mysql_stmt_errno(mc->st[i]);
			snprintf(why, whylen, "cannot prepare statement %d: %s (%u)", i,
			         mysql_stmt_error(mc->st[i]), no);
			conn_drop(mc);
			return lost_errno(no) ? GW_EUNAVAIL : map_errno(no);
		}
	}
	return GW_OK;
}

static gw_err conn_ready(my_drv *d, my_conn *mc, char *why, size_t whylen)
{
	gw_err e = conn_open(d, mc, why, whylen);
	return e == GW_OK ? conn_prepare(d, mc, why, whylen) : e;
}

/* conn_stale: an idle connection has nothing to read unless the server
 * closed it (shutdown, kill, wait_timeout). */
static bool conn_stale(my_conn *mc)
{
	struct pollfd p = {.fd = (int)mysql_get_socket(mc->m), .events = POLLIN};
	if (p.fd < 0)
		return true;
	return poll(&p, 1, 0) != 0;
}

static gw_err acquire(my_drv *d, my_conn **out, bool *fresh)
{
	my_conn *mc = NULL;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		for (int i = 0; i < d->n; i++) {
			if (!d->pool[i].busy && (d->pool[i].m || !mc))
				mc = &d->pool[i];
			if (mc && mc->m)
				break;
		}
		if (mc)
			break;
		pthread_cond_wait(&d->cv, &d->mu);
	}
	mc->busy = true;
	pthread_mutex_unlock(&d->mu);

	*fresh = false;
	if (mc->m && conn_stale(mc)) {
		GW_WARN("mariadb %s: connection closed by the server; reconnecting", d->where);
		conn_drop(mc);
	}
	if (!mc->m) {
		char why[512];
		gw_err e = conn_ready(d, mc, why, sizeof why);
		if (e != GW_OK) {
			GW_ERROR("mariadb %s: cannot connect: %s", d->where, why);
			pthread_mutex_lock(&d->mu);
			mc->busy = false;
			pthread_cond_signal(&d->cv);
			pthread_mutex_unlock(&d->mu);
			return e;
		}
		*fresh = true;
	}
	*out = mc;
	return GW_OK;
}

static void release(my_drv *d, my_conn *mc)
{
	pthread_mutex_lock(&d->mu);
	mc->busy = false;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

/* ---- statements ------------------------------------------------------------------ */

typedef struct binds {
	MYSQL_BIND b[10];
	long long ints[4];
} binds;

static void b_bytes(binds *x, int i, const void *p, size_t len)
{
	MYSQL_BIND *b = &x->b[i];
	memset(b, 0, sizeof *b);
	b->buffer_type = MYSQL_TYPE_BLOB;
	b->buffer = (void *)(p ? p : "");
	b->buffer_length = (unsigned long)len;
}

static void b_str(binds *x, int i, const char *s)
{
	b_bytes(x, i, s, strlen(s));
}

static void b_int(binds *x, int i, int slot, uint64_t v)
{
	MYSQL_BIND *b = &x->b[i];
	memset(b, 0, sizeof *b);
	x->ints[slot] = (long long)v;
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = &x->ints[slot];
}

static void b_key(binds *x, const gw_actor_key *k)
{
	b_str(x, 0, k->system);
	b_str(x, 1, k->name);
}

/* exec binds x and executes statement id. */
static gw_err exec(my_drv *d, my_conn *mc, int id, binds *x, const char *what)
{
	MYSQL_STMT *st = mc->st[id];
	if (mysql_stmt_bind_param(st, x->b) != 0 || mysql_stmt_execute(st) != 0)
		return fail(d, mc, st, what);
	return GW_OK;
}

/* reconnect replaces a connection found dead; lost is the error that said
 * so (read before the connection goes). */
static gw_err reconnect(my_drv *d, my_conn *mc, const char *lost)
{
	GW_WARN("mariadb %s: connection lost (%s); reconnecting", d->where, lost);
	conn_drop(mc);
	char why[512];
	gw_err e = conn_ready(d, mc, why, sizeof why);
	if (e != GW_OK)
		GW_ERROR("mariadb %s: cannot connect: %s", d->where, why);
	return e;
}

/* exec_first runs the first command of a call; a connection found dead
 * that this call did not open is replaced and the command run again. */
static gw_err exec_first(my_drv *d, my_conn *mc, bool fresh, int id, binds *x, const char *what)
{
	MYSQL_STMT *st = mc->st[id];
	if (mysql_stmt_bind_param(st, x->b) == 0 && mysql_stmt_execute(st) == 0)
		return GW_OK;
	unsigned no = mysql_stmt_errno(st);
	if (fresh || !lost_errno(no))
		return fail(d, mc, st, what);
	gw_err e = reconnect(d, mc, mysql_stmt_error(st));
	return e == GW_OK ? exec(d, mc, id, x, what) : e;
}

/* query_first runs a plain statement that returns no rows as the first
 * command of a call, reconnecting once like exec_first. what names it in
 * the log (the statement may be long). */
static gw_err query_first(my_drv *d, my_conn *mc, bool fresh, const char *sql, const char *what)
{
	for (int attempt = 0;; attempt++) {
		if (mysql_real_query(mc->m, sql, strlen(sql)) == 0)
			return GW_OK;
		if (fresh || attempt > 0 || !lost_errno(mysql_errno(mc->m)))
			return fail(d, mc, NULL, what);
		gw_err e = reconnect(d, mc, mysql_error(mc->m));
		if (e != GW_OK)
			return e;
	}
}

/* begin opens a transaction, reconnecting once like exec_first. */
static gw_err begin(my_drv *d, my_conn *mc, bool fresh)
{
	return query_first(d, mc, fresh, "START TRANSACTION", "START TRANSACTION");
}

/* rollback ends a failed transaction; a connection that cannot is closed
 * (invariant: released idle or closed). */
static void rollback(my_drv *d, my_conn *mc)
{
	if (mc->m && mysql_rollback(mc->m) != 0) {
		GW_ERROR("mariadb %s: rollback: %s", d->where, mysql_error(mc->m));
		conn_drop(mc);
	}
}

/* ---- open / close ------------------------------------------------------------- */

/* migrate brings the schema to SCHEMA_VERSION under GET_LOCK, or refuses
 * a newer one. Runs on a connected mc without prepared statements. */
static gw_err migrate(my_drv *d, my_conn *mc, const gw_store_opts *opts)
{
	char *val = NULL;
	gw_err e;
	bool locked = false, told = false;
	const char *step = "lock";
	long long v = 0;
	if ((e = query_one(d, mc, "SELECT GET_LOCK(" SCHEMA_LOCK ", " STR(SCHEMA_LOCK_WAIT) ")",
	                   &val)) != GW_OK)
		goto fail;
	if (!val || strcmp(val, "1") != 0) {
		gwi_store_errf(opts, "mariadb %s: the schema lock stayed taken for %d s", d->where,
		               SCHEMA_LOCK_WAIT);
		told = true;
		e = GW_EUNAVAIL;
		goto fail;
	}
	locked = true;
	free(val);
	step = "read the version of";
	if ((e = query_one(d, mc,
	                   "SELECT COUNT(*) FROM information_schema.tables "
	                   "WHERE table_schema = DATABASE() AND table_name = 'spawn_meta'",
	                   &val)) != GW_OK)
		goto fail;
	bool have_meta = val && strcmp(val, "0") != 0;
	free(val);
	val = NULL;
	if (have_meta) {
		if ((e = query_one(d, mc,
		                   "SELECT value FROM spawn_meta WHERE name = 'schema_version'",
		                   &val)) != GW_OK)
			goto fail;
		if (val) {
			char *end = NULL;
			v = strtoll(val, &end, 10);
			if (end == val || *end || v < 1) {
				gwi_store_errf(
				    opts,
				    "mariadb %s: spawn_meta.schema_version is '%.32s', not "
				    "a version",
				    d->where, val);
				told = true;
				e = GW_ECORRUPT;
				goto fail;
			}
		}
	}
	if (v > SCHEMA_VERSION) {
		gwi_store_errf(opts,
		               "mariadb %s has schema version %lld; this gateway knows version %d",
		               d->where, v, SCHEMA_VERSION);
		told = true;
		e = GW_ECONFIG;
		goto fail;
	}
	if (v < SCHEMA_VERSION) {
		step = "migrate";
		for (long long s = v; s < SCHEMA_VERSION; s++)
			for (const char *const *q = migrations[s]; *q; q++)
				if ((e = simple(d, mc, *q)) != GW_OK)
					goto fail;
		step = "record the version of";
		if ((e = simple(
		         d, mc,
		         "INSERT INTO spawn_meta(name, value) VALUES('schema_version', "
		         "'" STR(
		             SCHEMA_VERSION) "') "
		                             "ON DUPLICATE KEY UPDATE value = VALUES(value)")) !=
		    GW_OK)
			goto fail;
		GW_INFO("mariadb %s: schema version %lld -> %d", d->where, v, SCHEMA_VERSION);
	}
	free(val);
	return simple(d, mc, "DO RELEASE_LOCK(" SCHEMA_LOCK ")");
fail:
	free(val);
	if (!told)
		gwi_store_errf(opts, "mariadb %s: cannot %s the schema: %s (see the log)", d->where,
		               step, gw_strerror(e));
	/* Closing the connection releases the lock too. */
	if (locked && mc->m)
		simple(d, mc, "DO RELEASE_LOCK(" SCHEMA_LOCK ")");
	return e;
}

static gw_err my_open(const char *url, const gw_store_opts *opts, void **drv)
{
	my_drv *d = NULL;
	gw_err e;
	int pool = opts && opts->pool_size > 0 ? opts->pool_size : POOL_DEFAULT;
	int history = opts ? opts->history : 0;
	if (strncmp(url, "mariadb://", 10) != 0 && strncmp(url, "mysql://", 8) != 0) {
		gwi_store_errf(opts, "not a mariadb URL (expected mariadb://user:password@host:"
		                     "port/db)");
		return GW_ECONFIG;
	}
	if ((opts && opts->pool_size < 0) || pool > POOL_MAX) {
		gwi_store_errf(opts, "mariadb: pool_size %d is outside 1..%d", pool, POOL_MAX);
		return GW_ECONFIG;
	}
	if (history < 0 || history > HISTORY_MAX) {
		gwi_store_errf(opts, "mariadb: history %d is outside 0..%d", history, HISTORY_MAX);
		return GW_ECONFIG;
	}
	pthread_once(&lib_once, lib_init);
	if (lib_rc != 0) {
		gwi_store_errf(opts, "mariadb: the client library failed to initialise");
		return GW_EIO;
	}
	d = calloc(1, sizeof *d);
	if (!d)
		return GW_ENOMEM;
	d->history = history;
	d->n = pool;
	if ((e = parse_url(url, &d->u, opts)) != GW_OK)
		goto fail;
	const char *user = d->u.user ? d->u.user : "";
	const char *host = d->u.socket ? d->u.socket : d->u.host;
	size_t n = strlen(user) + strlen(host) + strlen(d->u.db) + 16;
	d->where = malloc(n);
	d->pool = calloc((size_t)pool, sizeof *d->pool);
	if (!d->where || !d->pool) {
		e = GW_ENOMEM;
		goto fail;
	}
	snprintf(d->where, n, "%s%s%s:%u/%s", user, *user ? "@" : "", host, d->u.port, d->u.db);
	if (pthread_mutex_init(&d->mu, NULL) != 0) {
		e = GW_ENOMEM;
		goto fail;
	}
	if (pthread_cond_init(&d->cv, NULL) != 0) {
		pthread_mutex_destroy(&d->mu);
		e = GW_ENOMEM;
		goto fail;
	}
	d->sync_ok = true;
	char why[512];
	if ((e = conn_open(d, &d->pool[0], why, sizeof why)) != GW_OK) {
		gwi_store_errf(opts, "cannot connect to mariadb %s: %s", d->where, why);
		goto fail;
	}
	if ((e = migrate(d, &d->pool[0], opts)) != GW_OK)
		goto fail;
	if ((e = conn_prepare(d, &d->pool[0], why, sizeof why)) != GW_OK) {
		gwi_store_errf(opts, "mariadb %s: %s", d->where, why);
		goto fail;
	}
	*drv = d;
	return GW_OK;
fail:
	my_close(d);
	return e;
}

static void my_close(void *drv)
{
	my_drv *d = drv;
	if (!d)
		return;
	for (int i = 0; d->pool && i < d->n; i++)
		conn_drop(&d->pool[i]);
	if (d->sync_ok) {
		pthread_cond_destroy(&d->cv);
		pthread_mutex_destroy(&d->mu);
	}
	free(d->pool);
	url_fini(&d->u);
	free(d->where);
	free(d);
}

static const char *my_path(void *drv)
{
	return NULL; /* networked: the key must be given */
}

/* ---- rows ----------------------------------------------------------------------- */

/* fetch_bytes copies result column col (length len) of the current row. */
static gw_err fetch_bytes(my_drv *d, my_conn *mc, MYSQL_STMT *st, int col, unsigned long len,
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
			return fail(d, mc, st, "load (column)");
		}
	}
	buf[len] = '\0';
	*out = buf;
	return GW_OK;
}

/* Result buffers of a row query: [system, name,] ROW_COLS. Fixed columns
 * land in place; variable ones are measured, then fetched (fetch_bytes). */
typedef struct row_binds {
	MYSQL_BIND r[8];
	unsigned long len[8];
	my_bool null[8];
	long long rev, epoch;
	uint8_t nonce[16];
	int c; /* the column of revision: 0, or 2 after system and name */
} row_binds;

static gw_err row_bind(my_drv *d, my_conn *mc, MYSQL_STMT *st, row_binds *rb, bool with_key)
{
	memset(rb, 0, sizeof *rb);
	int c = rb->c = with_key ? 2 : 0;
	for (int i = 0; i < c + 6; i++) {
		rb->r[i].buffer_type = MYSQL_TYPE_BLOB;
		rb->r[i].length = &rb->len[i];
		rb->r[i].is_null = &rb->null[i];
	}
	rb->r[c].buffer_type = rb->r[c + 1].buffer_type = MYSQL_TYPE_LONGLONG;
	rb->r[c].buffer = &rb->rev;
	rb->r[c + 1].buffer = &rb->epoch;
	rb->r[c + 3].buffer = rb->nonce;
	rb->r[c + 3].buffer_length = sizeof rb->nonce;
	if (mysql_stmt_bind_result(st, rb->r) != 0)
		return fail(d, mc, st, "load (bind)");
	return GW_OK;
}

/* row_take copies the row just fetched into *out (owned fields; with the
 * key columns, out->key owned too). lenient (rotation scans): a bad
 * revision or epoch is taken as it is and a nonce of the wrong size is
 * zero-padded: the row then fails to open and is counted, rather than
 * stopping the rotation. */
static gw_err row_take(my_drv *d, my_conn *mc, MYSQL_STMT *st, row_binds *rb, bool lenient,
                       gw_row *out)
{
	int c = rb->c;
	char *sys = NULL, *name = NULL, *key_id = NULL, *type_url = NULL, *data = NULL;
	gw_err e = GW_ECORRUPT;
	for (int i = 0; i < c + 6; i++)
		if (rb->null[i])
			goto fail;
	if (!lenient && (rb->rev < 1 || rb->epoch < 0 || rb->len[c + 3] != sizeof out->nonce))
		goto fail;
	if ((c && ((e = fetch_bytes(d, mc, st, 0, rb->len[0], &sys)) != GW_OK ||
	           (e = fetch_bytes(d, mc, st, 1, rb->len[1], &name)) != GW_OK)) ||
	    (e = fetch_bytes(d, mc, st, c + 2, rb->len[c + 2], &key_id)) != GW_OK ||
	    (e = fetch_bytes(d, mc, st, c + 4, rb->len[c + 4], &data)) != GW_OK ||
	    (e = fetch_bytes(d, mc, st, c + 5, rb->len[c + 5], &type_url)) != GW_OK)
		goto fail;
	if (c) {
		out->key.system = sys;
		out->key.name = name;
	}
	out->revision = (uint64_t)rb->rev;
	out->expected = 0;
	out->epoch = (uint64_t)rb->epoch;
	out->key_id = key_id;
	memset(out->nonce, 0, sizeof out->nonce);
	memcpy(out->nonce, rb->nonce,
	       rb->len[c + 3] < sizeof out->nonce ? rb->len[c + 3] : sizeof out->nonce);
	out->data = (uint8_t *)data;
	out->len = rb->len[c + 4];
	out->type_url = type_url;
	return GW_OK;
fail:
	free(sys);
	free(name);
	free(key_id);
	free(type_url);
	free(data);
	return e;
}

/* load_one runs the single-row query id (binds x) for k. */
static gw_err load_one(my_drv *d, int id, binds *x, const gw_actor_key *k, gw_row *out)
{
	my_conn *mc;
	bool fresh;
	row_binds rb;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	if ((e = exec_first(d, mc, fresh, id, x, "load")) != GW_OK)
		goto out;
	MYSQL_STMT *st = mc->st[id];
	if ((e = row_bind(d, mc, st, &rb, false)) != GW_OK)
		goto out;
	int rc = mysql_stmt_fetch(st);
	if (rc == MYSQL_NO_DATA) {
		e = GW_ENOTFOUND;
		goto out;
	}
	if (rc != 0 && rc != MYSQL_DATA_TRUNCATED) {
		e = fail(d, mc, st, "load (fetch)");
		goto out;
	}
	if ((e = row_take(d, mc, st, &rb, false, out)) == GW_OK)
		out->key = *k;
	else if (e == GW_ECORRUPT)
		GW_ERROR("mariadb %s: row %s/%s is malformed", d->where, k->system, k->name);
out:
	/* Drain the rest of the result (if the connection still stands). */
	if (mc->m)
		mysql_stmt_free_result(mc->st[id]);
	release(d, mc);
	return e;
}

static gw_err my_load(void *drv, const gw_actor_key *k, gw_row *out)
{
	binds x;
	b_key(&x, k);
	return load_one(drv, ST_LOAD, &x, k, out);
}

static gw_err my_load_revision(void *drv, const gw_actor_key *k, uint64_t revision, gw_row *out)
{
	binds x;
	b_key(&x, k);
	b_int(&x, 2, 0, revision);
	b_str(&x, 3, k->system);
	b_str(&x, 4, k->name);
	b_int(&x, 5, 0, revision);
	return load_one(drv, ST_LOAD_REV, &x, k, out);
}

static gw_err my_list_revisions(void *drv, const gw_actor_key *k, uint64_t *revs, size_t cap,
                                size_t *n)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_key(&x, k);
	b_str(&x, 2, k->system);
	b_str(&x, 3, k->name);
	b_int(&x, 4, 0, cap > GWI_STORE_MAX_INT ? GWI_STORE_MAX_INT : cap);
	if ((e = exec_first(d, mc, fresh, ST_LIST, &x, "list revisions")) != GW_OK)
		goto out;
	MYSQL_STMT *st = mc->st[ST_LIST];
	long long rev = 0;
	my_bool null = 0;
	MYSQL_BIND r = {0};
	r.buffer_type = MYSQL_TYPE_LONGLONG;
	r.buffer = &rev;
	r.is_null = &null;
	if (mysql_stmt_bind_result(st, &r) != 0) {
		e = fail(d, mc, st, "list revisions (bind)");
		goto out;
	}
	size_t got = 0;
	int rc;
	while ((rc = mysql_stmt_fetch(st)) == 0) {
		if (null || rev < 1) {
			e = GW_ECORRUPT;
			goto out;
		}
		if (got < cap)
			revs[got++] = (uint64_t)rev;
	}
	if (rc != MYSQL_NO_DATA) {
		e = fail(d, mc, st, "list revisions (fetch)");
		goto out;
	}
	*n = got;
out:
	if (mc->m)
		mysql_stmt_free_result(mc->st[ST_LIST]);
	release(d, mc);
	return e;
}

/* fetch_epoch reads the one epoch column of executed statement id; *found
 * false when there is no row. */
static gw_err fetch_epoch(my_drv *d, my_conn *mc, int id, bool *found, uint64_t *epoch)
{
	MYSQL_STMT *st = mc->st[id];
	long long v = 0;
	MYSQL_BIND r = {0};
	r.buffer_type = MYSQL_TYPE_LONGLONG;
	r.buffer = &v;
	gw_err e = GW_OK;
	if (mysql_stmt_bind_result(st, &r) != 0)
		return fail(d, mc, st, "epoch (bind)");
	int rc = mysql_stmt_fetch(st);
	if (rc == MYSQL_NO_DATA) {
		*found = false;
	} else if (rc == 0) {
		*found = true;
		*epoch = (uint64_t)v;
	} else {
		e = fail(d, mc, st, "epoch (fetch)");
	}
	if (mc->m)
		mysql_stmt_free_result(st);
	return e;
}

static gw_err my_acquire(void *drv, const gw_actor_key *k, uint64_t *epoch)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh, found = false;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_key(&x, k);
	if ((e = begin(d, mc, fresh)) == GW_OK &&
	    (e = exec(d, mc, ST_ACQUIRE, &x, "acquire")) == GW_OK &&
	    (e = exec(d, mc, ST_EPOCH_GET, &x, "acquire (read)")) == GW_OK &&
	    (e = fetch_epoch(d, mc, ST_EPOCH_GET, &found, epoch)) == GW_OK && !found)
		e = GW_ECORRUPT; /* our own write is not there */
	if (e == GW_OK && mysql_commit(mc->m) != 0)
		e = fail(d, mc, NULL, "commit");
	if (e != GW_OK)
		rollback(d, mc);
	release(d, mc);
	return e;
}

/* write_binds fills system, name, revision, epoch, key_id, nonce, data,
 * type_url in that order from position 0 (INSERT, HIST_PUT). */
static void write_binds(binds *x, const gw_row *row)
{
	b_key(x, &row->key);
	b_int(x, 2, 0, row->revision);
	b_int(x, 3, 1, row->epoch);
	b_str(x, 4, row->key_id);
	b_bytes(x, 5, row->nonce, sizeof row->nonce);
	b_bytes(x, 6, row->data, row->len);
	b_str(x, 7, row->type_url);
}

/* save_row runs one fenced, conditional write inside the open transaction.
 * The return value is a batch-level error; *result the row's outcome. */
static gw_err save_row(my_drv *d, my_conn *mc, const gw_row *row, gw_err *result)
{
	binds x;
	int id;
	gw_err e;
	if (row->epoch != 0) {
		bool found = false;
		uint64_t epoch = 0;
		b_key(&x, &row->key);
		if ((e = exec(d, mc, ST_FENCE, &x, "save (fence)")) != GW_OK ||
		    (e = fetch_epoch(d, mc, ST_FENCE, &found, &epoch)) != GW_OK)
			return e;
		if (!found || epoch != row->epoch) {
			*result = GW_EFENCED;
			return GW_OK;
		}
	}
	if (row->expected == 0) {
		id = ST_INSERT;
		write_binds(&x, row);
		b_int(&x, 8, 2, (uint64_t)row->effects);
	} else {
		id = ST_UPDATE;
		b_int(&x, 0, 0, row->revision);
		b_int(&x, 1, 1, row->epoch);
		b_str(&x, 2, row->key_id);
		b_bytes(&x, 3, row->nonce, sizeof row->nonce);
		b_bytes(&x, 4, row->data, row->len);
		b_str(&x, 5, row->type_url);
		b_int(&x, 6, 3, (uint64_t)row->effects);
		b_str(&x, 7, row->key.system);
		b_str(&x, 8, row->key.name);
		b_int(&x, 9, 2, row->expected);
	}
	if ((e = exec(d, mc, id, &x, "save")) != GW_OK)
		return e;
	if (mysql_stmt_affected_rows(mc->st[id]) != 1) {
		*result = GW_ECONFLICT;
		return GW_OK;
	}
	if (d->history > 0) {
		/* Keep revisions (new - history) .. new. */
		write_binds(&x, row);
		if ((e = exec(d, mc, ST_HIST_PUT, &x, "save (history)")) != GW_OK)
			return e;
		uint64_t keep =
		    row->revision > (uint64_t)d->history ? row->revision - (uint64_t)d->history : 0;
		b_key(&x, &row->key);
		b_int(&x, 2, 0, keep);
		if ((e = exec(d, mc, ST_HIST_TRIM, &x, "save (history trim)")) != GW_OK)
			return e;
	}
	*result = GW_OK;
	return GW_OK;
}

static gw_err my_save_batch(void *drv, const gw_row *rows, size_t n, gw_err *results)
{
	my_drv *d = drv;
	my_conn *mc = NULL;
	bool fresh;
	if (n == 0)
		return GW_OK;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		goto fail;
	if ((e = begin(d, mc, fresh)) != GW_OK)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if ((e = save_row(d, mc, &rows[i], &results[i])) != GW_OK)
			goto fail;
	if (mysql_commit(mc->m) != 0) {
		e = fail(d, mc, NULL, "commit");
		goto fail;
	}
	release(d, mc);
	return GW_OK;
fail:
	if (mc) {
		rollback(d, mc);
		release(d, mc);
	}
	for (size_t i = 0; i < n; i++)
		results[i] = e;
	return e;
}

static gw_err my_remove(void *drv, const gw_actor_key *k)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_key(&x, k);
	if ((e = begin(d, mc, fresh)) == GW_OK &&
	    (e = exec(d, mc, ST_REMOVE_HIST, &x, "remove (history)")) == GW_OK &&
	    (e = exec(d, mc, ST_REMOVE, &x, "remove")) == GW_OK && mysql_commit(mc->m) != 0)
		e = fail(d, mc, NULL, "commit");
	if (e != GW_OK)
		rollback(d, mc);
	release(d, mc);
	return e;
}

/* ---- rotation --------------------------------------------------------------------- */

static gw_err my_rot_count(void *drv, const char *primary, uint64_t *n)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh, found = false;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_str(&x, 0, primary);
	b_str(&x, 1, primary);
	if ((e = exec_first(d, mc, fresh, ST_ROT_COUNT, &x, "rotation count")) == GW_OK &&
	    (e = fetch_epoch(d, mc, ST_ROT_COUNT, &found, n)) == GW_OK && !found)
		e = GW_ECORRUPT;
	release(d, mc);
	return e;
}

static gw_err my_rot_scan(void *drv, const gw_rot_cursor *after, const char *primary, gw_row *rows,
                          size_t max, size_t *n)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh, hist = after->table == GW_ROT_HISTORY;
	int id = hist ? ST_ROT_SCAN_HIST : ST_ROT_SCAN_STATE;
	size_t got = 0;
	row_binds rb;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_str(&x, 0, primary);
	b_str(&x, 1, after->key.system);
	b_str(&x, 2, after->key.system);
	b_str(&x, 3, after->key.name);
	if (hist) {
		b_str(&x, 4, after->key.name);
		b_int(&x, 5, 0, after->revision);
	}
	b_int(&x, hist ? 6 : 4, 1, max);
	if ((e = exec_first(d, mc, fresh, id, &x, "rotation scan")) != GW_OK)
		goto out;
	MYSQL_STMT *st = mc->st[id];
	if ((e = row_bind(d, mc, st, &rb, true)) != GW_OK)
		goto out;
	int rc = 0;
	while (got < max && ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED)) {
		if ((e = row_take(d, mc, st, &rb, true, &rows[got])) != GW_OK)
			goto out;
		got++;
	}
	if (got < max && rc != MYSQL_NO_DATA) {
		e = fail(d, mc, st, "rotation scan (fetch)");
		goto out;
	}
	*n = got;
out:
	if (e != GW_OK) {
		for (size_t i = 0; i < got; i++) {
			free((char *)rows[i].key.system);
			free((char *)rows[i].key.name);
			free((char *)rows[i].key_id);
			free((char *)rows[i].type_url);
			free(rows[i].data);
		}
	}
	if (mc->m)
		mysql_stmt_free_result(mc->st[id]);
	release(d, mc);
	return e;
}

static gw_err my_rot_rewrite(void *drv, int table, const gw_rewrite *rows, size_t n,
                             gw_err *results)
{
	my_drv *d = drv;
	my_conn *mc = NULL;
	bool fresh;
	int id = table == GW_ROT_HISTORY ? ST_ROT_WRITE_HIST : ST_ROT_WRITE_STATE;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		goto fail;
	if ((e = begin(d, mc, fresh)) != GW_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const gw_rewrite *w = &rows[i];
		binds x;
		b_str(&x, 0, w->key_id);
		b_bytes(&x, 1, w->nonce, sizeof w->nonce);
		b_bytes(&x, 2, w->data, w->len);
		b_str(&x, 3, w->key.system);
		b_str(&x, 4, w->key.name);
		b_int(&x, 5, 0, w->revision);
		b_str(&x, 6, w->old_key_id);
		b_bytes(&x, 7, w->old_nonce, sizeof w->old_nonce);
		if ((e = exec(d, mc, id, &x, "rotation rewrite")) != GW_OK)
			goto fail;
		results[i] = mysql_stmt_affected_rows(mc->st[id]) == 1 ? GW_OK : GW_ECONFLICT;
	}
	if (mysql_commit(mc->m) != 0) {
		e = fail(d, mc, NULL, "commit");
		goto fail;
	}
	release(d, mc);
	return GW_OK;
fail:
	if (mc) {
		rollback(d, mc);
		release(d, mc);
	}
	for (size_t i = 0; i < n; i++)
		results[i] = e;
	return e;
}

/* ---- meta ------------------------------------------------------------------------- */

static gw_err my_meta_get(void *drv, const char *name, uint8_t **val, size_t *len)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	char *buf = NULL;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_str(&x, 0, name);
	if ((e = exec_first(d, mc, fresh, ST_META_GET, &x, "meta get")) != GW_OK)
		goto out;
	MYSQL_STMT *st = mc->st[ST_META_GET];
	unsigned long n = 0;
	my_bool null = 0;
	MYSQL_BIND r = {0};
	r.buffer_type = MYSQL_TYPE_BLOB;
	r.length = &n;
	r.is_null = &null;
	if (mysql_stmt_bind_result(st, &r) != 0) {
		e = fail(d, mc, st, "meta get (bind)");
		goto out;
	}
	int rc = mysql_stmt_fetch(st);
	if (rc == MYSQL_NO_DATA || (rc == 0 && null)) {
		e = GW_ENOTFOUND;
		goto out;
	}
	if (rc != 0 && rc != MYSQL_DATA_TRUNCATED) {
		e = fail(d, mc, st, "meta get (fetch)");
		goto out;
	}
	if ((e = fetch_bytes(d, mc, st, 0, n, &buf)) != GW_OK)
		goto out;
	*val = (uint8_t *)buf;
	*len = n;
out:
	if (mc->m)
		mysql_stmt_free_result(mc->st[ST_META_GET]);
	release(d, mc);
	return e;
}

static gw_err my_meta_put(void *drv, const char *name, const uint8_t *val, size_t len)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_str(&x, 0, name);
	b_bytes(&x, 1, val, len);
	e = exec_first(d, mc, fresh, ST_META_PUT, &x, "meta put");
	release(d, mc);
	return e;
}

static gw_err my_meta_create(void *drv, const char *name, const uint8_t *val, size_t len)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_str(&x, 0, name);
	b_bytes(&x, 1, val, len);
	e = exec_first(d, mc, fresh, ST_META_CREATE, &x, "meta create");
	if (e == GW_OK && mysql_stmt_affected_rows(mc->st[ST_META_CREATE]) != 1)
		e = GW_ECONFLICT;
	release(d, mc);
	return e;
}

/* ---- UNNAMED instances ------------------------------------------------------------ */

static gw_err my_instance_get(void *drv, const gw_actor_key *k, char **parent)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_key(&x, k);
	if ((e = exec_first(d, mc, fresh, ST_INST_GET, &x, "instance get")) != GW_OK)
		goto out;
	MYSQL_STMT *st = mc->st[ST_INST_GET];
	unsigned long n = 0;
	my_bool null = 0;
	MYSQL_BIND r = {0};
	r.buffer_type = MYSQL_TYPE_BLOB;
	r.length = &n;
	r.is_null = &null;
	if (mysql_stmt_bind_result(st, &r) != 0) {
		e = fail(d, mc, st, "instance get (bind)");
		goto out;
	}
	int rc = mysql_stmt_fetch(st);
	if (rc == MYSQL_NO_DATA) {
		e = GW_ENOTFOUND;
		goto out;
	}
	if (rc != 0 && rc != MYSQL_DATA_TRUNCATED) {
		e = fail(d, mc, st, "instance get (fetch)");
		goto out;
	}
	if (null) {
		e = GW_ECORRUPT;
		goto out;
	}
	e = fetch_bytes(d, mc, st, 0, n, parent);
out:
	if (mc->m)
		mysql_stmt_free_result(mc->st[ST_INST_GET]);
	release(d, mc);
	return e;
}

static gw_err my_instance_put(void *drv, const gw_actor_key *k, const char *parent)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_key(&x, k);
	b_str(&x, 2, parent);
	/* Autocommit; an existing row is left as it is (0 affected rows). */
	e = exec_first(d, mc, fresh, ST_INST_PUT, &x, "instance put");
	bool inserted = e == GW_OK && mysql_stmt_affected_rows(mc->st[ST_INST_PUT]) == 1;
	release(d, mc);
	if (e != GW_OK || inserted)
		return e;
	char *have = NULL;
	if ((e = my_instance_get(d, k, &have)) != GW_OK)
		return e == GW_ENOTFOUND ? GW_EIO : e;
	e = strcmp(have, parent) == 0 ? GW_OK : GW_ECONFLICT;
	free(have);
	return e;
}

/* ---- scheduled invocations ---------------------------------------------------------- */

static gw_err my_sched_put(void *drv, const gw_sched_row *row)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_str(&x, 0, row->id);
	b_int(&x, 1, 0, (uint64_t)row->due_ms);
	b_str(&x, 2, row->key_id);
	b_bytes(&x, 3, row->nonce, sizeof row->nonce);
	b_bytes(&x, 4, row->data, row->len);
	e = exec_first(d, mc, fresh, ST_SCHED_PUT, &x, "schedule put");
	if (e == GW_OK && mysql_stmt_affected_rows(mc->st[ST_SCHED_PUT]) != 1)
		e = GW_ECONFLICT;
	release(d, mc);
	return e;
}

static void sched_rows_fini(gw_sched_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)rows[i].key_id);
		free(rows[i].data);
	}
}

/* sched_scan runs claim scan id (now, max) in the open transaction and
 * appends its rows to rows[*n..]. A malformed row is skipped; a nonce of
 * the wrong size is zero-padded (the row then fails to open and the front
 * sets it aside). */
static gw_err sched_scan(my_drv *d, my_conn *mc, int id, int64_t now, size_t max,
                         gw_sched_row *rows, size_t *n)
{
	binds x;
	b_int(&x, 0, 0, (uint64_t)now);
	b_int(&x, 1, 1, max);
	gw_err e = exec(d, mc, id, &x, "schedule claim (scan)");
	if (e != GW_OK)
		return e;
	MYSQL_STMT *st = mc->st[id];
	MYSQL_BIND r[5];
	unsigned long len[5] = {0};
	my_bool null[5] = {0};
	char idbuf[64];
	long long due = 0;
	uint8_t nonce[16];
	memset(r, 0, sizeof r);
	for (int i = 0; i < 5; i++) {
		r[i].buffer_type = MYSQL_TYPE_BLOB;
		r[i].length = &len[i];
		r[i].is_null = &null[i];
	}
	r[0].buffer = idbuf;
	r[0].buffer_length = sizeof idbuf;
	r[1].buffer_type = MYSQL_TYPE_LONGLONG;
	r[1].buffer = &due;
	r[3].buffer = nonce;
	r[3].buffer_length = sizeof nonce;
	size_t got = 0;
	int rc = 0;
	if (mysql_stmt_bind_result(st, r) != 0) {
		e = fail(d, mc, st, "schedule claim (bind)");
		goto out;
	}
	while (got < max && ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED)) {
		gw_sched_row *row = &rows[*n + got];
		if (null[0] || null[1] || null[2] || null[4] || len[0] == 0 ||
		    len[0] >= sizeof row->id) {
			GW_ERROR("mariadb %s: a scheduled invocation row is malformed: skipped",
			         d->where);
			continue;
		}
		memset(row, 0, sizeof *row);
		memcpy(row->id, idbuf, len[0]);
		row->due_ms = due;
		char *key_id = NULL, *data = NULL;
		if ((e = fetch_bytes(d, mc, st, 2, len[2], &key_id)) != GW_OK ||
		    (e = fetch_bytes(d, mc, st, 4, len[4], &data)) != GW_OK) {
			free(key_id);
			goto out;
		}
		if (!null[3])
			memcpy(row->nonce, nonce,
			       len[3] < sizeof row->nonce ? len[3] : sizeof row->nonce);
		row->key_id = key_id;
		row->data = (uint8_t *)data;
		row->len = len[4];
		got++;
	}
	if (got < max && rc != MYSQL_NO_DATA && rc != 0 && rc != MYSQL_DATA_TRUNCATED)
		e = fail(d, mc, st, "schedule claim (fetch)");
out:
	if (mc->m)
		mysql_stmt_free_result(st);
	if (e != GW_OK) {
		sched_rows_fini(rows + *n, got);
		return e;
	}
	*n += got;
	return GW_OK;
}

static int sched_cmp(const void *a, const void *b)
{
	const gw_sched_row *x = a, *y = b;
	if (x->due_ms != y->due_ms)
		return x->due_ms < y->due_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

static gw_err my_sched_claim(void *drv, int64_t now, const char *owner, int64_t lease_until,
                             size_t max, gw_sched_row *rows, size_t *n)
{
	my_drv *d = drv;
	my_conn *mc = NULL;
	bool fresh;
	size_t got = 0, take = 0;
	gw_sched_row *tmp = calloc(max * 2, sizeof *tmp);
	gw_err e = GW_ENOMEM;
	if (!tmp)
		goto fail;
	if ((e = acquire(d, &mc, &fresh)) != GW_OK)
		goto fail;
	if ((e = begin(d, mc, fresh)) != GW_OK)
		goto fail;
	if ((e = sched_scan(d, mc, ST_SCHED_FREE, now, max, tmp, &got)) != GW_OK ||
	    (e = sched_scan(d, mc, ST_SCHED_EXPIRED, now, max, tmp, &got)) != GW_OK)
		goto fail;
	qsort(tmp, got, sizeof *tmp, sched_cmp);
	take = got < max ? got : max;
	/* Rows locked but not taken are released at COMMIT. */
	for (size_t i = 0; i < take; i++) {
		binds x;
		b_str(&x, 0, owner);
		b_int(&x, 1, 0, (uint64_t)lease_until);
		b_str(&x, 2, tmp[i].id);
		if ((e = exec(d, mc, ST_SCHED_LEASE, &x, "schedule claim (lease)")) != GW_OK)
			goto fail;
	}
	if (mysql_commit(mc->m) != 0) {
		e = fail(d, mc, NULL, "commit");
		goto fail;
	}
	release(d, mc);
	memcpy(rows, tmp, take * sizeof *tmp);
	sched_rows_fini(tmp + take, got - take);
	free(tmp);
	*n = take;
	return GW_OK;
fail:
	if (mc) {
		rollback(d, mc);
		release(d, mc);
	}
	if (tmp)
		sched_rows_fini(tmp, got);
	free(tmp);
	return e;
}

/* sched_by_id runs statement id bound to the row id (autocommit). */
static gw_err sched_by_id(my_drv *d, int id, const char *row_id, const char *what)
{
	my_conn *mc;
	bool fresh;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_str(&x, 0, row_id);
	e = exec_first(d, mc, fresh, id, &x, what);
	release(d, mc);
	return e;
}

static gw_err my_sched_set_aside(void *drv, const char *id)
{
	return sched_by_id(drv, ST_SCHED_ASIDE, id, "schedule set aside");
}

static gw_err my_sched_done(void *drv, const char *id)
{
	return sched_by_id(drv, ST_SCHED_DONE, id, "schedule done");
}

/* One DELETE per chunk, autocommit (one transaction). The ids are spelled
 * into the statement: a prepared statement has a fixed number of
 * parameters, and ids are [A-Za-z0-9_.:-] of at most GW_SCHED_ID_MAX bytes
 * (store.c checks), so quoting each is enough. 4,096 ids make ~170 KB, far
 * below max_allowed_packet. */
static gw_err my_sched_done_batch(void *drv, const char *const *ids, size_t n)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	static const char head[] = "DELETE FROM spawn_schedule WHERE id IN (";
	size_t cap = sizeof head + n * (GW_SCHED_ID_MAX + 3) + 2, off = sizeof head - 1;
	char *sql = malloc(cap);
	if (!sql)
		return GW_ENOMEM;
	memcpy(sql, head, off);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(sql + off, cap - off, "%s'%.*s'", i ? "," : "",
		                        GW_SCHED_ID_MAX, ids[i]);
	snprintf(sql + off, cap - off, ")");
	gw_err e = acquire(d, &mc, &fresh);
	if (e == GW_OK) {
		e = query_first(d, mc, fresh, sql, "schedule done (batch)");
		release(d, mc);
	}
	free(sql);
	return e;
}

static gw_err my_sched_next_due(void *drv, int64_t *due_ms)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	memset(&x, 0, sizeof x);
	if ((e = exec_first(d, mc, fresh, ST_SCHED_NEXT, &x, "schedule next due")) != GW_OK)
		goto out;
	MYSQL_STMT *st = mc->st[ST_SCHED_NEXT];
	long long v[2] = {0};
	my_bool null[2] = {0};
	MYSQL_BIND r[2];
	memset(r, 0, sizeof r);
	for (int i = 0; i < 2; i++) {
		r[i].buffer_type = MYSQL_TYPE_LONGLONG;
		r[i].buffer = &v[i];
		r[i].is_null = &null[i];
	}
	if (mysql_stmt_bind_result(st, r) != 0) {
		e = fail(d, mc, st, "schedule next due (bind)");
		goto out;
	}
	int rc = mysql_stmt_fetch(st);
	if (rc != 0) {
		e = rc == MYSQL_NO_DATA ? GW_ECORRUPT
		                        : fail(d, mc, st, "schedule next due (fetch)");
		goto out;
	}
	e = GW_ENOTFOUND;
	for (int i = 0; i < 2; i++) {
		if (null[i])
			continue;
		if (e == GW_ENOTFOUND || v[i] < *due_ms)
			*due_ms = v[i];
		e = GW_OK;
	}
out:
	if (mc->m)
		mysql_stmt_free_result(mc->st[ST_SCHED_NEXT]);
	release(d, mc);
	return e;
}

static gw_err my_sched_count(void *drv, uint64_t *n)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh, found = false;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	memset(&x, 0, sizeof x);
	if ((e = exec_first(d, mc, fresh, ST_SCHED_COUNT, &x, "schedule count")) == GW_OK &&
	    (e = fetch_epoch(d, mc, ST_SCHED_COUNT, &found, n)) == GW_OK && !found)
		e = GW_ECORRUPT;
	release(d, mc);
	return e;
}

/* ---- undelivered side effects -------------------------------------------------------- */

static gw_err my_effects_list(void *drv, const gw_actor_key *after, size_t max, gw_actor_key *out,
                              size_t *n)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	size_t got = 0;
	gw_err e = acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	binds x;
	b_str(&x, 0, after->system);
	b_str(&x, 1, after->system);
	b_str(&x, 2, after->name);
	b_int(&x, 3, 0, max > GWI_STORE_MAX_INT ? GWI_STORE_MAX_INT : max);
	if ((e = exec_first(d, mc, fresh, ST_EFFECTS_LIST, &x, "effects list")) != GW_OK)
		goto out;
	MYSQL_STMT *st = mc->st[ST_EFFECTS_LIST];
	MYSQL_BIND r[2];
	unsigned long len[2] = {0};
	memset(r, 0, sizeof r);
	for (int i = 0; i < 2; i++) {
		r[i].buffer_type = MYSQL_TYPE_BLOB;
		r[i].length = &len[i];
	}
	if (mysql_stmt_bind_result(st, r) != 0) {
		e = fail(d, mc, st, "effects list (bind)");
		goto out;
	}
	int rc = 0;
	/* No buffers bound: each fetch measures the keys, fetch_bytes copies. */
	while (got < max && ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED)) {
		char *sys = NULL, *name = NULL;
		if ((e = fetch_bytes(d, mc, st, 0, len[0], &sys)) != GW_OK ||
		    (e = fetch_bytes(d, mc, st, 1, len[1], &name)) != GW_OK) {
			free(sys);
			goto out;
		}
		out[got].system = sys;
		out[got].name = name;
		got++;
	}
	if (got < max && rc != MYSQL_NO_DATA) {
		e = fail(d, mc, st, "effects list (fetch)");
		goto out;
	}
	*n = got;
out:
	if (e != GW_OK)
		gw_keys_fini(out, got);
	if (mc->m)
		mysql_stmt_free_result(mc->st[ST_EFFECTS_LIST]);
	release(d, mc);
	return e;
}

#define MY_OPS(sch)                                                                                \
	{                                                                                          \
		.version = GW_STORE_OPS_VERSION, .scheme = sch, .open = my_open, .load = my_load,  \
		.save_batch = my_save_batch, .remove = my_remove, .meta_get = my_meta_get,         \
		.meta_put = my_meta_put, .path = my_path, .close = my_close,                       \
		.acquire = my_acquire, .load_revision = my_load_revision,                          \
		.list_revisions = my_list_revisions, .meta_create = my_meta_create,                \
		.rot_count = my_rot_count, .rot_scan = my_rot_scan, .rot_rewrite = my_rot_rewrite, \
		.instance_put = my_instance_put, .instance_get = my_instance_get,                  \
		.sched_put = my_sched_put, .sched_claim = my_sched_claim,                          \
		.sched_set_aside = my_sched_set_aside, .sched_done = my_sched_done,                \
		.sched_next_due = my_sched_next_due, .sched_count = my_sched_count,                \
		.sched_done_batch = my_sched_done_batch, .effects_list = my_effects_list,          \
	}

const gw_store_ops gw_mariadb_ops = MY_OPS("mariadb");
const gw_store_ops gw_mysql_ops = MY_OPS("mysql");
