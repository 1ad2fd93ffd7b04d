/* mariadb.c - the MariaDB / MySQL statestore driver (mariadb-connector-c):
 * the URL, open, close, the schema and its migrations, spawn_meta, and the
 * ops tables. The rest is in mariadb_conn.c, mariadb_rows.c and
 * mariadb_sched.c (mariadb_int.h).
 *
 * URLs:  mariadb://user:password@host:port/db?param=value&...
 *        mysql://...                      (the same driver)
 *   user, password and db are percent-decoded; host may be [v6addr]; port
 *   defaults to 3306. Parameters: socket=/path (a unix socket instead of
 *   TCP), connect_timeout=SECONDS (default 10), and TLS in PostgreSQL's
 *   words (MySQL's client option names are accepted as aliases):
 *     sslmode (ssl-mode)        disable | require | verify-ca | verify-full
 *     sslrootcert (ssl-ca)      the CA file the server's chain must reach
 *     sslcert (ssl-cert)        a client certificate (chain) file
 *     sslkey (ssl-key)          its private key
 *   No sslmode: verify-full when any of the three files is given, else
 *   disable. verify-ca and verify-full without sslrootcert check against
 *   the system's CAs. sslmode=disable with a file, sslcert without sslkey
 *   (or the reverse), or anything else is GW_ECONFIG.
 *   mariadb-connector-c 3.3: MYSQL_OPT_SSL_ENFORCE makes TLS mandatory,
 *   MYSQL_OPT_SSL_CA makes it check the chain, and
 *   MYSQL_OPT_SSL_VERIFY_SERVER_CERT adds the host name (SAN DNS or IP).
 *
 * Schema (version 6; docs/schema.md): spawn_meta, spawn_actor_state,
 * spawn_actor_history, spawn_actor_epoch, spawn_instance, spawn_schedule
 * and spawn_members (docs/design/cluster.md), InnoDB, keys as VARBINARY (byte-exact comparison:
 * no collation folds 'Alice' into 'alice' or pads trailing spaces).
 * Created or migrated at open under GET_LOCK('spawn.schema.' + md5(db)), so
 * gateways starting together run the migration once. MariaDB commits DDL
 * implicitly, so every migration statement is idempotent (IF NOT EXISTS, or
 * DDL_UNLESS below) and the version is recorded last: a migration cut short
 * runs again.
 *
 * save_batch, inside START TRANSACTION ... COMMIT (READ COMMITTED), per row:
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
 * In bulk: per segment of up to GWI_SAVE_SEGMENT rows of distinct keys and
 * 4 MiB of row bytes (a key met again starts the next segment, so rows
 * apply in order), whatever its size: one fence read (IN list of hex keys,
 * key order, LOCK IN SHARE MODE), then the prepared INSERT and UPDATE above
 * each executed once over arrays of all the rows (MariaDB's bulk protocol,
 * STMT_ATTR_ARRAY_SIZE: one round trip, binary), a read back of revision
 * and nonce only when their affected rows fall short (someone conflicted),
 * and with a history the history upsert and trim, in bulk too. A segment
 * of one row (also a row past 4 MiB), and every row on a server without
 * the bulk protocol (MySQL), runs the per-row statements.
 *
 * sched_claim, in one transaction: up to max unclaimed due rows and up to
 * max rows whose lease expired, both SELECT ... FOR UPDATE SKIP LOCKED
 * (MariaDB 10.6+ / MySQL 8.0.1+: an older server fails to prepare them, so
 * the store does not open), merged by (due_ms, id), the first max leased
 * with one UPDATE each, COMMIT.
 *
 * lease_activate (cluster mode: the activation lease): mariadb_rows.c says
 * how, in one transaction of four statements; lease_release is one UPDATE
 * ... WHERE owner = member AND (system, name, epoch) IN (...).
 *
 * acquire, in one transaction: INSERT INTO spawn_actor_epoch ... ON
 * DUPLICATE KEY UPDATE epoch = epoch + 1 (an exclusive row lock: it waits
 * for every save holding the row in share mode), SELECT the new epoch (our
 * own write), COMMIT. (Portable to MySQL, which has no INSERT ... RETURNING.)
 *
 * activate_batch: the same acquire for up to GW_STORE_ACTIVATE_MAX actors
 * in one transaction: one multi-row INSERT ... ON DUPLICATE KEY UPDATE
 * (keys in byte order, so two batches lock rows in one order), one SELECT
 * of the new epochs (our own writes), COMMIT; then, after the commit, one
 * SELECT of the latest rows WHERE (system, name) IN ((...), ...). Keys are
 * spelled as hex literals (X'...': binary-safe, nothing to escape), over
 * the text protocol: a statement prepared per batch size would cost a
 * round trip more.
 *
 * Connections: a pool of pool_size (default 4), opened on demand, every
 * statement prepared on each; the same states (driver_util.h, gwi_pool)
 * and invariants as the postgres driver (postgres.c): one thread per
 * connection, released idle or closed, a dead connection found before
 * anything was sent is replaced and the command retried once, otherwise
 * GW_EUNAVAIL and the next call reconnects. Never MYSQL_OPT_RECONNECT: it
 * would silently drop the session settings and prepared statements.
 * Nothing waits forever: connect/read/write timeouts and
 * innodb_lock_wait_timeout bound a call.
 */
#include "mariadb_int.h"

#include "log.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define SCHEMA_VERSION 6

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
/* 4 -> 5: the members of a cluster (store.h, "cluster membership"). */
static const char *const migration_5[] = {
    "CREATE TABLE IF NOT EXISTS spawn_members("
    " id VARBINARY(255) NOT NULL PRIMARY KEY,"
    " address VARBINARY(255) NOT NULL,"
    " status SMALLINT NOT NULL,"
    " started_ms BIGINT NOT NULL,"
    " heartbeat_ms BIGINT NOT NULL,"
    " served MEDIUMBLOB NOT NULL,"
    " view_version BIGINT NOT NULL) ENGINE=InnoDB",
    NULL,
};
/* 5 -> 6: the activation lease: the member whose activation holds an
 * actor's epoch (store.h, "activation leases"); NULL outside a cluster. */
static const char *const migration_6[] = {
    DDL_UNLESS("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() "
               "AND table_name = 'spawn_actor_epoch' AND column_name = 'owner'",
               "ALTER TABLE spawn_actor_epoch ADD COLUMN owner VARBINARY(255) NULL"),
    NULL,
};
static const char *const *const migrations[SCHEMA_VERSION] = {
    migration_1, migration_2, migration_3, migration_4, migration_5, migration_6};

#define SCHEMA_LOCK "CONCAT('spawn.schema.', MD5(DATABASE()))"
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
	free(u->sslcert);
	free(u->sslkey);
	memset(u, 0, sizeof *u);
}

/* The string parameters: the URL's name, MySQL's alias, where it goes. */
static char **str_param(my_url *u, const char *k)
{
	static const struct {
		const char *name, *alias;
		size_t off;
	} params[] = {
	    {"socket", NULL, offsetof(my_url, socket)},
	    {"sslrootcert", "ssl-ca", offsetof(my_url, sslrootcert)},
	    {"sslcert", "ssl-cert", offsetof(my_url, sslcert)},
	    {"sslkey", "ssl-key", offsetof(my_url, sslkey)},
	};
	for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
		if (strcmp(k, params[i].name) == 0 ||
		    (params[i].alias && strcmp(k, params[i].alias) == 0))
			return (char **)((char *)u + params[i].off);
	return NULL;
}

/* query_param applies one key=value of the query string; takes v. */
static bool query_param(my_url *u, const char *k, char *v, const gw_store_opts *opts)
{
	char **str = str_param(u, k);
	if (str) {
		free(*str);
		*str = v;
		if (!*v)
			gwi_store_errf(opts, "bad mariadb URL: %s is empty", k);
		return *v != '\0';
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
	if (strcmp(k, "sslmode") == 0 || strcmp(k, "ssl-mode") == 0) {
		static const char *const modes[] = {
		    [MY_SSL_DISABLE] = "disable",
		    [MY_SSL_REQUIRE] = "require",
		    [MY_SSL_VERIFY_CA] = "verify-ca",
		    [MY_SSL_VERIFY_FULL] = "verify-full",
		};
		u->sslmode = MY_SSL_DEFAULT;
		for (int i = MY_SSL_DISABLE; i <= MY_SSL_VERIFY_FULL; i++)
			if (strcmp(v, modes[i]) == 0)
				u->sslmode = (my_sslmode)i;
		if (u->sslmode == MY_SSL_DEFAULT)
			gwi_store_errf(opts,
			               "bad mariadb URL: %s '%s' (disable, require, verify-ca, "
			               "verify-full)",
			               k, v);
		free(v);
		return u->sslmode != MY_SSL_DEFAULT;
	}
	gwi_store_errf(opts,
	               "bad mariadb URL: unknown parameter '%s' (socket, connect_timeout, "
	               "sslmode, sslrootcert, sslcert, sslkey)",
	               k);
	free(v);
	return false;
}

/* tls_check settles the default sslmode and refuses what contradicts
 * itself. */
static bool tls_check(my_url *u, const gw_store_opts *opts)
{
	bool files = u->sslrootcert || u->sslcert || u->sslkey;
	if (u->sslmode == MY_SSL_DEFAULT)
		u->sslmode = files ? MY_SSL_VERIFY_FULL : MY_SSL_DISABLE;
	if (u->sslmode == MY_SSL_DISABLE && files) {
		gwi_store_errf(opts, "bad mariadb URL: sslmode=disable with sslrootcert, sslcert "
		                     "or sslkey");
		return false;
	}
	if (!u->sslcert != !u->sslkey) {
		gwi_store_errf(opts, "bad mariadb URL: sslcert and sslkey go together");
		return false;
	}
	return true;
}

/* parse_url splits scheme://[user[:password]@]host[:port]/db[?k=v&...].
 * The reason of a failure never contains the password. */
static gw_err parse_url(const char *url, my_url *u, const gw_store_opts *opts)
{
	static const char usage[] = "expected mariadb://user:password@host:port/db";
	bool nomem = false;
	memset(u, 0, sizeof *u);
	u->connect_timeout = CONNECT_TIMEOUT;
	if (!strstr(url, "://"))
		goto bad;
	gwi_url_auth a;
	gwi_url_auth_split(url, "/", &a);
	const char *p = a.host, *slash = a.end;
	if (*slash != '/')
		goto bad;
	if (a.user && !(u->user = decode(a.user, a.user_len, &nomem)))
		goto bad;
	if (a.password && !(u->password = decode(a.password, a.password_len, &nomem)))
		goto bad;
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
	if (!tls_check(u, opts)) {
		url_fini(u);
		return GW_ECONFIG;
	}
	return GW_OK;
bad:
	url_fini(u);
	if (nomem)
		return GW_ENOMEM;
	gwi_store_errf(opts, "bad mariadb URL (%s)", usage);
	return GW_ECONFIG;
}

/* ---- schema ------------------------------------------------------------------- */

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
		return gwi_my_fail(d, mc, NULL, sql);
	MYSQL_RES *res = mysql_store_result(mc->m);
	if (res)
		mysql_free_result(res);
	else if (mysql_errno(mc->m))
		return gwi_my_fail(d, mc, NULL, sql);
	return GW_OK;
}

/* query_one runs sql and copies the first column of its one row into
 * *out (caller frees; NULL for SQL NULL or no row). */
static gw_err query_one(my_drv *d, my_conn *mc, const char *sql, char **out)
{
	*out = NULL;
	if (mysql_real_query(mc->m, sql, strlen(sql)) != 0)
		return gwi_my_fail(d, mc, NULL, sql);
	MYSQL_RES *res = mysql_store_result(mc->m);
	if (!res)
		return gwi_my_fail(d, mc, NULL, sql);
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

/* migrate brings the schema to SCHEMA_VERSION under GET_LOCK, or refuses
 * a newer one. Runs on a connected mc without prepared statements. */
static gw_err migrate(my_drv *d, my_conn *mc, const gw_store_opts *opts)
{
	char *val = NULL;
	gw_err e;
	bool locked = false, told = false;
	const char *step = "lock";
	long long v = 0;
	if ((e = query_one(d, mc, "SELECT GET_LOCK(" SCHEMA_LOCK ", " GWI_STR(SCHEMA_LOCK_WAIT) ")",
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
		         "'" GWI_STR(
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

/* ---- open / close ------------------------------------------------------------- */

static void my_close(void *drv)
{
	my_drv *d = drv;
	if (!d)
		return;
	for (int i = 0; d->conns && i < d->pool.n; i++)
		gwi_my_conn_drop(&d->conns[i]);
	gwi_pool_fini(&d->pool);
	free(d->conns);
	url_fini(&d->u);
	free(d->where);
	free(d);
}

static gw_err my_open(const char *url, const gw_store_opts *opts, void **drv)
{
	my_drv *d = NULL;
	gw_err e;
	int pool, history;
	if (strncmp(url, "mariadb://", 10) != 0 && strncmp(url, "mysql://", 8) != 0) {
		gwi_store_errf(opts, "not a mariadb URL (expected mariadb://user:password@host:"
		                     "port/db)");
		return GW_ECONFIG;
	}
	if ((e = gwi_opts_pool("mariadb", opts, &pool)) != GW_OK ||
	    (e = gwi_opts_history("mariadb", opts, &history)) != GW_OK)
		return e;
	pthread_once(&lib_once, lib_init);
	if (lib_rc != 0) {
		gwi_store_errf(opts, "mariadb: the client library failed to initialise");
		return GW_EIO;
	}
	d = calloc(1, sizeof *d);
	if (!d)
		return GW_ENOMEM;
	d->history = history;
	d->idle_tx_ms = opts && opts->idle_tx_timeout_ms > 0 ? opts->idle_tx_timeout_ms : 0;
	d->net_ms = opts && opts->net_timeout_ms > 0 ? opts->net_timeout_ms : 0;
	if ((e = parse_url(url, &d->u, opts)) != GW_OK)
		goto fail;
	char port[12];
	snprintf(port, sizeof port, "%u", d->u.port);
	d->where = gwi_store_where(d->u.user ? d->u.user : "",
	                           d->u.socket ? d->u.socket : d->u.host, port, d->u.db);
	d->conns = calloc((size_t)pool, sizeof *d->conns);
	if (!d->where || !d->conns) {
		e = GW_ENOMEM;
		goto fail;
	}
	if ((e = gwi_pool_init(&d->pool, pool, &gwi_my_conn_ops, d, d->where)) != GW_OK)
		goto fail;
	char why[512];
	if ((e = gwi_my_conn_open(d, &d->conns[0], why, sizeof why)) != GW_OK) {
		gwi_store_errf(opts, "cannot connect to mariadb %s: %s", d->where, why);
		goto fail;
	}
	if ((e = migrate(d, &d->conns[0], opts)) != GW_OK)
		goto fail;
	if ((e = gwi_my_conn_prepare(d, &d->conns[0], why, sizeof why)) != GW_OK) {
		gwi_store_errf(opts, "mariadb %s: %s", d->where, why);
		goto fail;
	}
	*drv = d;
	return GW_OK;
fail:
	my_close(d);
	return e;
}

static const char *my_path(void *drv)
{
	return NULL; /* networked: the key must be given */
}

/* ---- meta ------------------------------------------------------------------------- */

static gw_err my_meta_get(void *drv, const char *name, uint8_t **val, size_t *len)
{
	my_drv *d = drv;
	my_conn *mc;
	char *buf = NULL;
	unsigned long n = 0;
	bool null = false;
	my_binds x;
	b_str(&x, 0, name);
	gw_err e = gwi_my_query(d, ST_META_GET, &x, "meta get", &mc);
	if (e != GW_OK)
		return e;
	e = gwi_my_fetch_blob(d, mc, ST_META_GET, "meta get", &buf, &n, &null);
	if (e == GW_OK && null) {
		e = GW_ENOTFOUND;
	} else if (e == GW_OK) {
		*val = (uint8_t *)buf;
		*len = n;
	}
	gwi_my_query_end(d, mc, ST_META_GET);
	return e;
}

/* meta_write runs META_PUT or META_CREATE; *one: a row was written. */
static gw_err meta_write(void *drv, int id, const char *name, const uint8_t *val, size_t len,
                         const char *what, bool *one)
{
	my_binds x;
	b_str(&x, 0, name);
	b_bytes(&x, 1, val, len);
	return gwi_my_command(drv, id, &x, what, one);
}

static gw_err my_meta_put(void *drv, const char *name, const uint8_t *val, size_t len)
{
	return meta_write(drv, ST_META_PUT, name, val, len, "meta put", NULL);
}

static gw_err my_meta_create(void *drv, const char *name, const uint8_t *val, size_t len)
{
	bool one = false;
	gw_err e = meta_write(drv, ST_META_CREATE, name, val, len, "meta create", &one);
	return e == GW_OK && !one ? GW_ECONFLICT : e;
}

#define MY_OPS(sch)                                                                                \
	{                                                                                          \
		.version = GW_STORE_OPS_VERSION, .scheme = sch, .open = my_open,                   \
		.load = gwi_my_load, .save_batch = gwi_my_save_batch, .remove = gwi_my_remove,     \
		.meta_get = my_meta_get, .meta_put = my_meta_put, .path = my_path,                 \
		.close = my_close, .acquire = gwi_my_acquire,                                      \
		.load_revision = gwi_my_load_revision, .list_revisions = gwi_my_list_revisions,    \
		.meta_create = my_meta_create, .rot_count = gwi_my_rot_count,                      \
		.rot_scan = gwi_my_rot_scan, .rot_rewrite = gwi_my_rot_rewrite,                    \
		.instance_put = gwi_my_instance_put, .instance_get = gwi_my_instance_get,          \
		.sched_put = gwi_my_sched_put, .sched_claim = gwi_my_sched_claim,                  \
		.sched_set_aside = gwi_my_sched_set_aside, .sched_done = gwi_my_sched_done,        \
		.sched_next_due = gwi_my_sched_next_due, .sched_count = gwi_my_sched_count,        \
		.sched_done_batch = gwi_my_sched_done_batch, .effects_list = gwi_my_effects_list,  \
		.activate_batch = gwi_my_activate_batch,                                           \
		.instance_counts = gwi_my_instance_counts, .sched_counts = gwi_my_sched_counts,    \
		.sched_range = gwi_my_sched_range, .forget = gwi_my_forget,                        \
		.member_join = gwi_my_member_join, .member_heartbeat = gwi_my_member_heartbeat,    \
		.member_list = gwi_my_member_list,                                                 \
		.member_declare_dead = gwi_my_member_declare_dead,                                 \
		.member_remove = gwi_my_member_remove, .member_gc = gwi_my_member_gc,              \
		.sched_reseal = gwi_my_sched_reseal, .lease_activate = gwi_my_lease_activate,      \
		.lease_release = gwi_my_lease_release,                                             \
	}

const gw_store_ops gw_mariadb_ops = MY_OPS("mariadb");
const gw_store_ops gw_mysql_ops = MY_OPS("mysql");
