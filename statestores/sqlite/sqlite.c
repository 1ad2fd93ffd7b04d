/* sqlite.c - the embedded statestore driver: one SQLite file per gateway.
 *
 * URLs:  sqlite:///abs/path.db   sqlite://rel/path.db   sqlite::memory:
 *
 * Schema (version 4, docs/schema.md), created or migrated at open inside one
 * BEGIN IMMEDIATE (the database write lock), so openers racing on a new or
 * old file run each migration once:
 *   spawn_meta(name TEXT PRIMARY KEY, value BLOB)
 *       "schema_version" -> 4, "keycheck" and "rotation" -> written by store.c
 *   spawn_actor_state(system, name, revision, epoch, key_id, nonce, data,
 *                     type_url, updated_at, effects, PRIMARY KEY(system, name)),
 *                     partial index on (system, name) WHERE effects <> 0
 *   spawn_actor_history(the same columns, PRIMARY KEY(system, name, revision))
 *   spawn_actor_epoch(system, name, epoch, PRIMARY KEY(system, name))
 *   spawn_instance(system, name, parent, created_at, PRIMARY KEY(system, name))
 *   spawn_schedule(id PRIMARY KEY, due_ms, owner, lease_until, key_id, nonce,
 *                  data), partial indexes on due_ms (owner IS NULL) and
 *                  lease_until (owner IS NOT NULL)
 *
 * Durability: WAL with synchronous=FULL, so a COMMIT has reached the disk
 * (WAL fsync) before save_batch returns GW_OK. A checkpointed save must
 * survive a power cut.
 *
 * save_batch, per row, inside BEGIN IMMEDIATE ... COMMIT:
 *   epoch != 0     SELECT epoch FROM spawn_actor_epoch: not ours -> EFENCED
 *                  (BEGIN IMMEDIATE holds the write lock: no acquire can
 *                  commit between this check and our COMMIT)
 *   expected == 0  INSERT ... ON CONFLICT DO NOTHING   (row exists -> 0 changes)
 *   expected  > 0  UPDATE ... WHERE revision = expected
 *   0 changes      ECONFLICT
 *   history N > 0  upsert the new revision into spawn_actor_history, delete
 *                  that actor's revisions below new - N there
 * A SQLite error anywhere -> ROLLBACK; the batch fails as a whole.
 *
 * sched_claim, inside BEGIN IMMEDIATE ... COMMIT (the write lock: no
 * other claim runs in between, so none can take the same row):
 *   up to max unclaimed due rows (spawn_schedule_due, in due order) and up to
 *   max rows whose lease expired (spawn_schedule_lease), merged by (due_ms,
 *   id), the first max leased: UPDATE ... SET owner, lease_until.
 *
 * acquire is one statement (INSERT ... ON CONFLICT DO UPDATE SET epoch =
 * epoch + 1 RETURNING epoch): a write, so it takes the write lock and
 * commits on its own. activate_batch runs that statement per key, then the
 * load per key, inside one BEGIN IMMEDIATE ... COMMIT (no round trips to
 * save in an embedded database: the win is one transaction instead of n).
 *
 * Thread: one thread at a time per handle (the connection is opened
 * NOMUTEX); every call blocks on disk. Several handles (connections) on one
 * file are fine: writers serialise on the file's write lock (busy_timeout).
 */
#include "sqlite_int.h"

#include "log.h"
#include "redact.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHEMA_VERSION  4
#define BUSY_TIMEOUT_MS 5000
#define CACHE_KIB       8192 /* page cache per connection, KiB */

/* The columns of a row, in the order read_row expects. */
#define ROW_COLS "revision, epoch, key_id, nonce, data, type_url"
/* A row key rotation rewrites: under another key than the primary (?1), or
 * not yet envelope 3 (crypto.h: its data begins with A7 'G' 'W' 03). */
#define NOT_CURRENT "(key_id <> ?1 OR substr(data, 1, 4) <> X'A7475703')"

/* INSERT, UPDATE and HIST_PUT share parameter numbers ?1..?9 so one
 * function binds them all; INSERT and UPDATE add ?10 = the effects flag
 * (the history has none), UPDATE ?11 = the expected revision. The
 * rotation rewrites share ?1..?8: system, name, revision, new key_id,
 * nonce, data, old key_id, old nonce. */
static const char *const sql_text[ST_COUNT] = {
    [ST_LOAD] = "SELECT " ROW_COLS " FROM spawn_actor_state WHERE system = ?1 AND name = ?2",
    [ST_LOAD_REV] = "SELECT " ROW_COLS " FROM spawn_actor_state "
                    "WHERE system = ?1 AND name = ?2 AND revision = ?3 "
                    "UNION ALL SELECT " ROW_COLS " FROM spawn_actor_history "
                    "WHERE system = ?1 AND name = ?2 AND revision = ?3 LIMIT 1",
    [ST_LIST] = "SELECT revision FROM spawn_actor_state WHERE system = ?1 AND name = ?2 "
                "UNION SELECT revision FROM spawn_actor_history WHERE system = ?1 AND name = ?2 "
                "ORDER BY 1 DESC LIMIT ?3",
    [ST_INSERT] = "INSERT INTO spawn_actor_state"
                  "(system, name, revision, epoch, key_id, nonce, data, type_url, updated_at, "
                  "effects) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                  "ON CONFLICT(system, name) DO NOTHING",
    [ST_UPDATE] = "UPDATE spawn_actor_state SET revision = ?3, epoch = ?4, key_id = ?5, "
                  "nonce = ?6, data = ?7, type_url = ?8, updated_at = ?9, effects = ?10 "
                  "WHERE system = ?1 AND name = ?2 AND revision = ?11",
    [ST_FENCE] = "SELECT epoch FROM spawn_actor_epoch WHERE system = ?1 AND name = ?2",
    [ST_ACQUIRE] = "INSERT INTO spawn_actor_epoch(system, name, epoch) VALUES(?1, ?2, 1) "
                   "ON CONFLICT(system, name) DO UPDATE SET epoch = epoch + 1 RETURNING epoch",
    [ST_HIST_PUT] = "INSERT INTO spawn_actor_history"
                    "(system, name, revision, epoch, key_id, nonce, data, type_url, updated_at) "
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                    "ON CONFLICT(system, name, revision) DO UPDATE SET "
                    "epoch = excluded.epoch, key_id = excluded.key_id, "
                    "nonce = excluded.nonce, data = excluded.data, "
                    "type_url = excluded.type_url, updated_at = excluded.updated_at",
    [ST_HIST_TRIM] = "DELETE FROM spawn_actor_history "
                     "WHERE system = ?1 AND name = ?2 AND revision < ?3",
    [ST_REMOVE] = "DELETE FROM spawn_actor_state WHERE system = ?1 AND name = ?2",
    [ST_REMOVE_HIST] = "DELETE FROM spawn_actor_history WHERE system = ?1 AND name = ?2",
    [ST_META_GET] = "SELECT value FROM spawn_meta WHERE name = ?1",
    [ST_META_PUT] = "INSERT INTO spawn_meta(name, value) VALUES(?1, ?2) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    [ST_META_CREATE] = "INSERT INTO spawn_meta(name, value) VALUES(?1, ?2) "
                       "ON CONFLICT(name) DO NOTHING",
    [ST_ROT_COUNT] = "SELECT (SELECT count(*) FROM spawn_actor_state WHERE " NOT_CURRENT ") + "
                     "(SELECT count(*) FROM spawn_actor_history WHERE " NOT_CURRENT ")",
    /* Row values compare column by column in the index's (BINARY) order,
     * so the scan walks the primary key. */
    [ST_ROT_SCAN_STATE] = "SELECT system, name, " ROW_COLS " FROM spawn_actor_state "
                          "WHERE (system, name) > (?2, ?3) AND " NOT_CURRENT " "
                          "ORDER BY system, name LIMIT ?5",
    [ST_ROT_SCAN_HIST] = "SELECT system, name, " ROW_COLS " FROM spawn_actor_history "
                         "WHERE (system, name, revision) > (?2, ?3, ?4) AND " NOT_CURRENT " "
                         "ORDER BY system, name, revision LIMIT ?5",
    [ST_ROT_WRITE_STATE] = "UPDATE spawn_actor_state SET key_id = ?4, nonce = ?5, data = ?6 "
                           "WHERE system = ?1 AND name = ?2 AND revision = ?3 "
                           "AND key_id = ?7 AND nonce = ?8",
    [ST_ROT_WRITE_HIST] = "UPDATE spawn_actor_history SET key_id = ?4, nonce = ?5, data = ?6 "
                          "WHERE system = ?1 AND name = ?2 AND revision = ?3 "
                          "AND key_id = ?7 AND nonce = ?8",
    [ST_INST_PUT] = "INSERT INTO spawn_instance(system, name, parent, created_at) "
                    "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(system, name) DO NOTHING",
    [ST_INST_GET] = "SELECT parent FROM spawn_instance WHERE system = ?1 AND name = ?2",
    [ST_SCHED_PUT] = "INSERT INTO spawn_schedule(id, due_ms, owner, lease_until, key_id, nonce, "
                     "data) VALUES(?1, ?2, NULL, NULL, ?3, ?4, ?5) ON CONFLICT(id) DO NOTHING",
    /* The two claim scans, each on its partial index (docs/schema.md):
     * unclaimed rows in due order, and rows whose lease expired. */
    [ST_SCHED_FREE] = "SELECT id, due_ms, key_id, nonce, data FROM spawn_schedule "
                      "INDEXED BY spawn_schedule_due "
                      "WHERE owner IS NULL AND due_ms <= ?1 ORDER BY due_ms, id LIMIT ?2",
    [ST_SCHED_EXPIRED] = "SELECT id, due_ms, key_id, nonce, data FROM spawn_schedule "
                         "INDEXED BY spawn_schedule_lease "
                         "WHERE owner IS NOT NULL AND lease_until <= ?1 "
                         "ORDER BY due_ms, id LIMIT ?2",
    [ST_SCHED_LEASE] = "UPDATE spawn_schedule SET owner = ?2, lease_until = ?3 WHERE id = ?1",
    [ST_SCHED_ASIDE] = "UPDATE spawn_schedule SET owner = '" GW_SCHED_CORRUPT "', "
                       "lease_until = 9223372036854775807 WHERE id = ?1",
    [ST_SCHED_DONE] = "DELETE FROM spawn_schedule WHERE id = ?1",
    /* ORDER BY ... LIMIT 1 rather than min(): one step down each index. */
    [ST_SCHED_NEXT] = "SELECT (SELECT due_ms FROM spawn_schedule INDEXED BY spawn_schedule_due "
                      "WHERE owner IS NULL ORDER BY due_ms LIMIT 1), "
                      "(SELECT lease_until FROM spawn_schedule INDEXED BY spawn_schedule_lease "
                      "WHERE owner IS NOT NULL AND lease_until < 9223372036854775807 "
                      "ORDER BY lease_until LIMIT 1)",
    [ST_SCHED_COUNT] = "SELECT count(*) FROM spawn_schedule",
    [ST_INST_COUNTS] = "SELECT system, count(*) FROM spawn_instance GROUP BY system",
    [ST_SCHED_COUNTS] = "SELECT substr(id, 1, ?1), count(*) FROM spawn_schedule GROUP BY 1",
    /* The partial index holds exactly the flagged rows, in key order. */
    [ST_EFFECTS_LIST] = "SELECT system, name FROM spawn_actor_state "
                        "INDEXED BY spawn_actor_state_effects "
                        "WHERE effects <> 0 AND (system, name) > (?1, ?2) "
                        "ORDER BY system, name LIMIT ?3",
    [ST_SCHED_RANGE] = "SELECT id, due_ms, key_id, nonce, data FROM spawn_schedule "
                       "WHERE id > ?1 AND id < ?2 ORDER BY id LIMIT ?3",
    /* Key rotation: ?1 id, ?2 new key_id, ?3 nonce, ?4 data, ?5 old key_id,
     * ?6 old nonce. */
    [ST_SCHED_RESEAL] = "UPDATE spawn_schedule SET key_id = ?2, nonce = ?3, data = ?4 "
                        "WHERE id = ?1 AND key_id = ?5 AND nonce = ?6",
    /* Forget: the effects flag of the row it deletes comes back. */
    [ST_FORGET_STATE] = "DELETE FROM spawn_actor_state WHERE system = ?1 AND name = ?2 "
                        "RETURNING effects",
    [ST_FORGET_HIST] = "DELETE FROM spawn_actor_history WHERE system = ?1 AND name = ?2",
    [ST_FORGET_INST] = "DELETE FROM spawn_instance WHERE system = ?1 AND name = ?2",
    [ST_FORGET_EPOCH] = "UPDATE spawn_actor_epoch SET epoch = epoch + 1 "
                        "WHERE system = ?1 AND name = ?2",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

/* migrations[v] takes the schema from version v to v + 1. Append only: a
 * released step never changes (docs/schema.md, "Migrations"). Each step is
 * idempotent and runs inside the migration transaction. */
static const char *const migrations[SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE IF NOT EXISTS spawn_meta("
    " name TEXT PRIMARY KEY,"
    " value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS spawn_actor_state("
    " system TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " revision INTEGER NOT NULL,"
    " epoch INTEGER NOT NULL,"
    " key_id TEXT NOT NULL,"
    " nonce BLOB NOT NULL,"
    " data BLOB NOT NULL,"
    " type_url TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(system, name));",
    /* 1 -> 2: history, and the epoch table seeded with the epochs version 1
     * fenced with, so a new epoch is above every one handed out before. */
    "CREATE TABLE IF NOT EXISTS spawn_actor_history("
    " system TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " revision INTEGER NOT NULL,"
    " epoch INTEGER NOT NULL,"
    " key_id TEXT NOT NULL,"
    " nonce BLOB NOT NULL,"
    " data BLOB NOT NULL,"
    " type_url TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(system, name, revision));"
    "CREATE TABLE IF NOT EXISTS spawn_actor_epoch("
    " system TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " epoch INTEGER NOT NULL,"
    " PRIMARY KEY(system, name));"
    "INSERT INTO spawn_actor_epoch(system, name, epoch)"
    " SELECT system, name, epoch FROM spawn_actor_state WHERE epoch > 0"
    " ON CONFLICT(system, name) DO UPDATE SET epoch = max(epoch, excluded.epoch);",
    /* 2 -> 3: UNNAMED instances and scheduled invocations. The partial
     * indexes hold exactly what each claim scan looks for, so neither ever
     * walks pending rows that are not due (docs/schema.md). */
    "CREATE TABLE IF NOT EXISTS spawn_instance("
    " system TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " parent TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY(system, name));"
    "CREATE TABLE IF NOT EXISTS spawn_schedule("
    " id TEXT NOT NULL PRIMARY KEY,"
    " due_ms INTEGER NOT NULL,"
    " owner TEXT,"
    " lease_until INTEGER,"
    " key_id TEXT NOT NULL,"
    " nonce BLOB NOT NULL,"
    " data BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS spawn_schedule_due ON spawn_schedule(due_ms, id)"
    " WHERE owner IS NULL;"
    "CREATE INDEX IF NOT EXISTS spawn_schedule_lease ON spawn_schedule(lease_until)"
    " WHERE owner IS NOT NULL;",
    /* 3 -> 4: the effects flag of the latest row (existing rows: 0) and a
     * partial index of the flagged rows, so listing them reads only them.
     * SQLite has no ADD COLUMN IF NOT EXISTS; the step is safe to retry all
     * the same: it commits whole, with the version, or not at all. */
    "ALTER TABLE spawn_actor_state ADD COLUMN effects INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX IF NOT EXISTS spawn_actor_state_effects ON spawn_actor_state(system, name)"
    " WHERE effects <> 0;",
};

static void sq_close(void *drv);

const char *gwi_sq_where(const sqlite_drv *d)
{
	return d->path ? d->path : ":memory:";
}

static gw_err map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return GW_EUNAVAIL;
	case SQLITE_NOMEM:
		return GW_ENOMEM;
	case SQLITE_TOOBIG:
		return GW_ETOOBIG;
	default:
		return GW_EIO;
	}
}

/* sql_fail logs the connection's current error and maps rc. Call it before
 * sqlite3_reset so the message is the one of the failed step. */
gw_err gwi_sq_fail(const sqlite_drv *d, int rc, const char *what)
{
	GW_ERROR("sqlite %s: %s: %s (%d)", gwi_sq_where(d), what, sqlite3_errmsg(d->db), rc);
	return map_rc(rc);
}

/* run steps a statement that returns no rows, then resets it. */
gw_err gwi_sq_run(sqlite_drv *d, int id, const char *what)
{
	sqlite3_stmt *st = d->st[id];
	int rc = sqlite3_step(st);
	gw_err e = rc == SQLITE_DONE ? GW_OK : gwi_sq_fail(d, rc, what);
	sqlite3_reset(st);
	return e;
}

int64_t gwi_sq_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- open / close ------------------------------------------------------- */

/* parse_url sets *path to the file named by url (a pointer into url), or
 * to NULL for an in-memory database. */
static gw_err parse_url(const char *url, const gw_store_opts *opts, const char **path)
{
	static const char usage[] =
	    "expected sqlite:///abs/path.db, sqlite://rel/path.db or sqlite::memory:";
	char shown[512]; /* the URL as errors show it */
	gw_redact_url(url, shown, sizeof shown);
	if (strncmp(url, "sqlite:", 7) != 0) {
		gwi_store_errf(opts, "not a sqlite URL: '%s' (%s)", shown, usage);
		return GW_ECONFIG;
	}
	const char *rest = url + 7;
	if (strcmp(rest, ":memory:") == 0) {
		*path = NULL;
		return GW_OK;
	}
	if (strncmp(rest, "//", 2) != 0 || rest[2] == '\0') {
		gwi_store_errf(opts, "bad sqlite URL '%s': %s", shown, usage);
		return GW_ECONFIG;
	}
	/* A '?' would silently become part of the file name. */
	if (strchr(rest, '?')) {
		gwi_store_errf(opts, "bad sqlite URL '%s': query parameters are not supported",
		               shown);
		return GW_ECONFIG;
	}
	*path = rest + 2;
	return GW_OK;
}

/* busy waits for another connection's write lock: up to BUSY_TIMEOUT_MS in
 * 1 ms naps. SQLite's own handler backs off to 100 ms naps, so a waiter
 * rarely finds the lock free when the other writer commits in a loop
 * (several gw_store handles on one file: a rotation beside saves). */
static int busy(void *arg, int count)
{
	(void)arg;
	if (count >= BUSY_TIMEOUT_MS)
		return 0;
	sqlite3_sleep(1);
	return 1;
}

/* pragmas sets the connection up for durable, concurrent-reader use. */
static gw_err pragmas(sqlite_drv *d, const gw_store_opts *opts)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_busy_handler(d->db, busy, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(d->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	/* Switching a new file to WAL needs an exclusive lock, and SQLite
	 * answers BUSY at once (no busy handler: it could deadlock) while
	 * another opener holds the file: retry for the busy timeout. */
	for (int waited = 0; rc == SQLITE_OK; waited += 10) {
		rc = sqlite3_step(st);
		if ((rc & 0xff) != SQLITE_BUSY || waited >= BUSY_TIMEOUT_MS)
			break;
		sqlite3_reset(st);
		sqlite3_sleep(10);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_ROW) {
		gwi_store_errf(opts, "cannot open statestore %s: %s", gwi_sq_where(d),
		               sqlite3_errmsg(d->db));
		gw_err e = map_rc(rc);
		sqlite3_finalize(st);
		return e == GW_EUNAVAIL ? e : GW_EIO;
	}
	const char *mode = (const char *)sqlite3_column_text(st, 0);
	/* An in-memory database reports "memory"; a file system without shared
	 * memory support keeps a rollback journal, still durable with FULL. */
	if (d->path && (!mode || strcmp(mode, "wal") != 0))
		GW_WARN("sqlite %s: journal_mode is %s, not wal", gwi_sq_where(d),
		        mode ? mode : "?");
	sqlite3_finalize(st);
	rc = sqlite3_exec(d->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		gwi_store_errf(opts, "statestore %s: cannot set synchronous=FULL: %s",
		               gwi_sq_where(d), sqlite3_errmsg(d->db));
		return map_rc(rc) == GW_EUNAVAIL ? GW_EUNAVAIL : GW_EIO;
	}
	/* A cache the size of a busy store's hot pages: a burst of scheduled
	 * invocations touches index pages all over the file (ids are random),
	 * and with SQLite's default 2 MiB every claim and delete re-reads them.
	 * An upper bound: the cache grows only as pages are used. 8 MiB, not
	 * more: it stays resident once full, and with a million actors every
	 * 8 MiB is 8 bytes per actor (docs/design/memory.md); pages it does
	 * not hold are read from the kernel's page cache. */
	if (sqlite3_exec(d->db, "PRAGMA cache_size=-" GWI_STR(CACHE_KIB), NULL, NULL, NULL) !=
	    SQLITE_OK)
		GW_WARN("sqlite %s: cannot set cache_size: %s", gwi_sq_where(d),
		        sqlite3_errmsg(d->db));
	return GW_OK;
}

/* schema creates or migrates the tables and records the version, all in
 * one write transaction, so openers racing on a new or old file agree and
 * each migration step runs once. */
static gw_err schema(sqlite_drv *d, const gw_store_opts *opts)
{
	sqlite3_stmt *st = NULL;
	gw_err e = GW_EIO;
	const char *step = "lock";
	sqlite3_int64 v = 0;
	int rc = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto sqlfail;
	step = "read the version of";
	rc = sqlite3_prepare_v2(d->db,
	                        "SELECT count(*) FROM sqlite_master "
	                        "WHERE type = 'table' AND name = 'spawn_meta'",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		goto sqlfail;
	bool have_meta = sqlite3_column_int(st, 0) > 0;
	sqlite3_finalize(st);
	st = NULL;
	if (have_meta) {
		rc = sqlite3_prepare_v2(
		    d->db, "SELECT value FROM spawn_meta WHERE name = 'schema_version'", -1, &st,
		    NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			if (sqlite3_column_type(st, 0) != SQLITE_INTEGER ||
			    (v = sqlite3_column_int64(st, 0)) < 1) {
				gwi_store_errf(opts,
				               "statestore %s: spawn_meta.schema_version is not a "
				               "version",
				               gwi_sq_where(d));
				e = GW_ECORRUPT;
				goto fail;
			}
		} else if (rc != SQLITE_DONE) {
			goto sqlfail;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if (v > SCHEMA_VERSION) {
		gwi_store_errf(opts,
		               "statestore %s has schema version %lld; this gateway knows "
		               "version %d",
		               gwi_sq_where(d), (long long)v, SCHEMA_VERSION);
		e = GW_ECONFIG;
		goto fail;
	}
	if (v < SCHEMA_VERSION) {
		step = "migrate";
		for (sqlite3_int64 s = v; s < SCHEMA_VERSION; s++)
			if ((rc = sqlite3_exec(d->db, migrations[s], NULL, NULL, NULL)) !=
			    SQLITE_OK)
				goto sqlfail;
		step = "record the version of";
		char sql[160];
		snprintf(sql, sizeof sql,
		         "INSERT INTO spawn_meta(name, value) VALUES('schema_version', %d) "
		         "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
		         SCHEMA_VERSION);
		if ((rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL)) != SQLITE_OK)
			goto sqlfail;
	}
	step = "commit";
	if ((rc = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
		goto sqlfail;
	if (v > 0 && v < SCHEMA_VERSION)
		GW_INFO("sqlite %s: schema version %lld -> %d", gwi_sq_where(d), (long long)v,
		        SCHEMA_VERSION);
	return GW_OK;
sqlfail:
	gwi_store_errf(opts, "statestore %s: cannot %s the schema: %s", gwi_sq_where(d), step,
	               sqlite3_errmsg(d->db));
	e = map_rc(rc) == GW_EUNAVAIL ? GW_EUNAVAIL : GW_EIO;
fail:
	sqlite3_finalize(st);
	if (!sqlite3_get_autocommit(d->db))
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	return e;
}

static gw_err sq_open(const char *url, const gw_store_opts *opts, void **drv)
{
	const char *path = NULL;
	int history;
	gw_err e = parse_url(url, opts, &path);
	if (e != GW_OK || (e = gwi_opts_history("sqlite", opts, &history)) != GW_OK)
		return e;
	sqlite_drv *d = calloc(1, sizeof *d);
	if (!d)
		return GW_ENOMEM;
	d->history = history;
	if (path && !(d->path = strdup(path))) {
		e = GW_ENOMEM;
		goto fail;
	}
	/* NOMUTEX: a gw_store is used by one thread at a time. No URI
	 * filenames: the path is taken literally. */
	int rc =
	    sqlite3_open_v2(d->path ? d->path : ":memory:", &d->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		gwi_store_errf(opts, "cannot open statestore %s: %s", gwi_sq_where(d),
		               d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
		e = rc == SQLITE_NOMEM ? GW_ENOMEM : GW_EIO;
		goto fail;
	}
	if ((e = pragmas(d, opts)) != GW_OK || (e = schema(d, opts)) != GW_OK)
		goto fail;
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(d->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT,
		                        &d->st[i], NULL);
		if (rc != SQLITE_OK) {
			gwi_store_errf(opts, "statestore %s: cannot prepare statement %d: %s",
			               gwi_sq_where(d), i, sqlite3_errmsg(d->db));
			e = map_rc(rc) == GW_ENOMEM ? GW_ENOMEM : GW_EIO;
			goto fail;
		}
	}
	*drv = d;
	return GW_OK;
fail:
	sq_close(d);
	return e;
}

static void sq_close(void *drv)
{
	sqlite_drv *d = drv;
	if (!d)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(d->st[i]);
	/* Every statement is finalized, so close cannot be busy; close_v2
	 * would defer instead of failing if one ever leaked. */
	if (d->db && sqlite3_close_v2(d->db) != SQLITE_OK)
		GW_ERROR("sqlite %s: close: %s", gwi_sq_where(d), sqlite3_errmsg(d->db));
	free(d->path);
	free(d);
}

static const char *sq_path(void *drv)
{
	return ((sqlite_drv *)drv)->path;
}

/* ---- rows --------------------------------------------------------------- */

int gwi_sq_bind_key(sqlite3_stmt *st, const gw_actor_key *k)
{
	int rc = sqlite3_bind_text(st, 1, k->system, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, k->name, -1, SQLITE_STATIC);
	return rc;
}

/* bind_key_limit binds ?1, ?2 = k and ?3 = a LIMIT of lim rows. */
int gwi_sq_bind_key_limit(sqlite3_stmt *st, const gw_actor_key *k, size_t lim)
{
	int rc = gwi_sq_bind_key(st, k);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 3,
		                        lim > GWI_STORE_MAX_INT ? INT64_MAX : (sqlite3_int64)lim);
	return rc;
}

char *gwi_sq_dup_text(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	return t ? strdup(t) : NULL;
}

/* read_row copies the row columns (ROW_COLS, from column c) of st's current
 * result row into *out (owned fields). lenient (rotation scans): a bad
 * revision or epoch is taken as it is and a nonce of the wrong size is
 * zero-padded, instead of refusing the row: it then fails to open and is
 * counted, rather than stopping the rotation. out->key is left to the
 * caller. */
static gw_err read_row(sqlite_drv *d, sqlite3_stmt *st, int c, bool lenient, gw_row *out)
{
	sqlite3_int64 rev = sqlite3_column_int64(st, c), epoch = sqlite3_column_int64(st, c + 1);
	int nlen = sqlite3_column_bytes(st, c + 3);
	if ((!lenient && (rev < 1 || epoch < 0 || nlen != (int)sizeof out->nonce)) ||
	    sqlite3_column_type(st, c + 2) == SQLITE_NULL ||
	    sqlite3_column_type(st, c + 5) == SQLITE_NULL)
		return GW_ECORRUPT;
	const void *blob = sqlite3_column_blob(st, c + 4); /* blob, then bytes: no conversion */
	size_t len = (size_t)sqlite3_column_bytes(st, c + 4);
	char *key_id = gwi_sq_dup_text(st, c + 2), *type_url = gwi_sq_dup_text(st, c + 5);
	uint8_t *data = malloc(len > 0 ? len : 1);
	if (!key_id || !type_url || !data) {
		free(key_id);
		free(type_url);
		free(data);
		return GW_ENOMEM;
	}
	if (len > 0)
		memcpy(data, blob, len);
	out->revision = (uint64_t)rev;
	out->expected = 0;
	out->epoch = (uint64_t)epoch;
	out->key_id = key_id;
	gwi_nonce_copy(out->nonce, sqlite3_column_blob(st, c + 3), (size_t)nlen);
	out->data = data;
	out->len = len;
	out->type_url = type_url;
	return GW_OK;
}

/* load_one runs a bound single-row query (id) and reads its row. */
static gw_err load_one(sqlite_drv *d, int id, const gw_actor_key *k, gw_row *out)
{
	sqlite3_stmt *st = d->st[id];
	gw_err e;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		e = GW_ENOTFOUND;
	} else if (rc != SQLITE_ROW) {
		e = gwi_sq_fail(d, rc, "load");
	} else if ((e = read_row(d, st, 0, false, out)) == GW_OK) {
		out->key = *k;
	} else if (e == GW_ECORRUPT) {
		GW_ERROR("sqlite %s: row %s/%s is malformed", gwi_sq_where(d), k->system, k->name);
	}
	sqlite3_reset(st);
	return e;
}

static gw_err sq_load(void *drv, const gw_actor_key *k, gw_row *out)
{
	sqlite_drv *d = drv;
	int rc = gwi_sq_bind_key(d->st[ST_LOAD], k);
	if (rc != SQLITE_OK)
		return gwi_sq_fail(d, rc, "load (bind)");
	return load_one(d, ST_LOAD, k, out);
}

static gw_err sq_load_revision(void *drv, const gw_actor_key *k, uint64_t revision, gw_row *out)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_LOAD_REV];
	int rc = gwi_sq_bind_key(st, k);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)revision);
	if (rc != SQLITE_OK)
		return gwi_sq_fail(d, rc, "load revision (bind)");
	return load_one(d, ST_LOAD_REV, k, out);
}

static gw_err sq_list_revisions(void *drv, const gw_actor_key *k, uint64_t *revs, size_t cap,
                                size_t *n)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_LIST];
	size_t got = 0;
	gw_err e = GW_OK;
	int rc = gwi_sq_bind_key_limit(st, k, cap);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (got < cap)
			revs[got++] = (uint64_t)sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		e = gwi_sq_fail(d, rc, "list revisions");
	sqlite3_reset(st);
	if (e == GW_OK)
		*n = got;
	return e;
}

/* gwi_sq_sync_normal: synchronous=NORMAL (in WAL mode a crashed process
 * still loses nothing, a power cut may lose the last commits). For writes whose
 * loss in a power cut is harmless (see sq_acquire and gwi_sq_sched_done). */
void gwi_sq_sync_normal(sqlite_drv *d)
{
	sqlite3_exec(d->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
}

gw_err gwi_sq_sync_full(sqlite_drv *d, gw_err e)
{
	if (sqlite3_exec(d->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK && !e)
		e = gwi_sq_fail(d, sqlite3_errcode(d->db), "restore synchronous=FULL");
	return e;
}

/* An epoch only has to outlive the activations that used it. Every gateway
 * on one SQLite file runs on one machine, so whatever loses the last epochs
 * (a power cut) has ended those activations too; a crashed gateway loses
 * nothing in WAL mode even without the fsync. So an acquire commits without
 * waiting for the disk (synchronous=NORMAL for this one statement), and cold
 * activations do not pay a flush each; saves keep synchronous=FULL. */
static gw_err acquire_one(sqlite_drv *d, const gw_actor_key *k, uint64_t *epoch)
{
	sqlite3_stmt *st = d->st[ST_ACQUIRE];
	gw_err e = GW_OK;
	sqlite3_int64 v = 0;
	int rc = gwi_sq_bind_key(st, k);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
		/* The statement (and its implicit transaction) ends at DONE. */
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE)
		e = gwi_sq_fail(d, rc, "acquire");
	sqlite3_reset(st);
	if (e == GW_OK)
		*epoch = (uint64_t)v;
	return e;
}

static gw_err sq_acquire(void *drv, const gw_actor_key *k, uint64_t *epoch)
{
	sqlite_drv *d = drv;
	gwi_sq_sync_normal(d);
	return gwi_sq_sync_full(d, acquire_one(d, k, epoch));
}

/* activate_batch: one BEGIN IMMEDIATE transaction (the write lock: no save
 * commits between an epoch and the load after it) runs every acquire, then
 * every load, and commits without waiting for the disk, like an acquire. */
static gw_err sq_activate_batch(void *drv, const gw_actor_key *keys, size_t n, uint64_t *epochs,
                                gw_row *rows, gw_err *results)
{
	sqlite_drv *d = drv;
	gwi_sq_sync_normal(d);
	gw_err e = gwi_sq_run(d, ST_BEGIN, "begin");
	for (size_t i = 0; e == GW_OK && i < n; i++)
		e = acquire_one(d, &keys[i], &epochs[i]);
	for (size_t i = 0; e == GW_OK && i < n; i++) {
		int rc = gwi_sq_bind_key(d->st[ST_LOAD], &keys[i]);
		if (rc != SQLITE_OK) {
			e = gwi_sq_fail(d, rc, "load (bind)");
			break;
		}
		gw_err r = load_one(d, ST_LOAD, &keys[i], &rows[i]);
		if (r == GW_OK || r == GW_ENOTFOUND || r == GW_ECORRUPT)
			results[i] = r;
		else
			e = r;
	}
	e = gwi_sq_sync_full(d, gwi_sq_end_tx(d, e));
	if (e != GW_OK)
		gwi_rows_fini(rows, n);
	return e;
}

/* fence reads the actor's current epoch inside the open write transaction:
 * *fenced unless it is r->epoch (no epoch row: the current epoch is 0). */
static gw_err fence(sqlite_drv *d, const gw_row *r, bool *fenced)
{
	sqlite3_stmt *st = d->st[ST_FENCE];
	gw_err e = GW_OK;
	int rc = gwi_sq_bind_key(st, &r->key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*fenced = (uint64_t)sqlite3_column_int64(st, 0) != r->epoch;
	else if (rc == SQLITE_DONE)
		*fenced = true;
	else
		e = gwi_sq_fail(d, rc, "save (fence)");
	sqlite3_reset(st);
	return e;
}

/* write_row binds ?1..?9 of INSERT, UPDATE or HIST_PUT (and ?10 = effects,
 * ?11 = expected where the statement has them) and runs it. *changed: rows
 * it changed. */
static gw_err write_row(sqlite_drv *d, int id, const gw_row *r, int64_t now, int *changed)
{
	sqlite3_stmt *st = d->st[id];
	int rc = gwi_sq_bind_key(st, &r->key);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)r->revision);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)r->epoch);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 5, r->key_id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(st, 6, r->nonce, (int)sizeof r->nonce, SQLITE_STATIC);
	/* data is never NULL here (store.c always passes ciphertext || tag), so
	 * this binds a BLOB, not SQL NULL. */
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob64(st, 7, r->data, (sqlite3_uint64)r->len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 8, r->type_url, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 9, now);
	if (rc == SQLITE_OK && id != ST_HIST_PUT)
		rc = sqlite3_bind_int(st, 10, r->effects);
	if (rc == SQLITE_OK && id == ST_UPDATE)
		rc = sqlite3_bind_int64(st, 11, (sqlite3_int64)r->expected);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	gw_err e = rc == SQLITE_DONE ? GW_OK : gwi_sq_fail(d, rc, "save");
	*changed = sqlite3_changes(d->db);
	/* Reset before the caller's buffers (bound SQLITE_STATIC) go away. */
	sqlite3_reset(st);
	return e;
}

/* run_key runs statement id bound to (k, [extra as ?3]). */
gw_err gwi_sq_run_key(sqlite_drv *d, int id, const gw_actor_key *k, bool with_extra, uint64_t extra,
                      const char *what)
{
	int rc = gwi_sq_bind_key(d->st[id], k);
	if (rc == SQLITE_OK && with_extra)
		rc = sqlite3_bind_int64(d->st[id], 3, (sqlite3_int64)extra);
	if (rc != SQLITE_OK) {
		gw_err e = gwi_sq_fail(d, rc, what);
		sqlite3_reset(d->st[id]);
		return e;
	}
	return gwi_sq_run(d, id, what);
}

/* save_row runs one fenced, conditional write inside the open transaction.
 * The return value is a batch-level error; *result the row's outcome. */
static gw_err save_row(sqlite_drv *d, const gw_row *r, int64_t now, gw_err *result)
{
	gw_err e;
	int changed = 0;
	if (r->epoch != 0) {
		bool fenced = false;
		if ((e = fence(d, r, &fenced)) != GW_OK)
			return e;
		if (fenced) {
			*result = GW_EFENCED;
			return GW_OK;
		}
	}
	e = write_row(d, r->expected == 0 ? ST_INSERT : ST_UPDATE, r, now, &changed);
	if (e != GW_OK)
		return e;
	if (changed != 1) {
		*result = GW_ECONFLICT;
		return GW_OK;
	}
	if (d->history > 0) {
		/* Keep revisions (new - history) .. new. */
		uint64_t keep = gwi_history_keep(r->revision, d->history);
		if ((e = write_row(d, ST_HIST_PUT, r, now, &changed)) != GW_OK ||
		    (e = gwi_sq_run_key(d, ST_HIST_TRIM, &r->key, true, keep,
		                        "save (history trim)")) != GW_OK)
			return e;
	}
	*result = GW_OK;
	return GW_OK;
}

/* end_tx commits, or rolls back after an error e (an I/O error may already
 * have rolled SQLite back on its own). */
gw_err gwi_sq_end_tx(sqlite_drv *d, gw_err e)
{
	if (e == GW_OK)
		e = gwi_sq_run(d, ST_COMMIT, "commit");
	if (e != GW_OK && !sqlite3_get_autocommit(d->db))
		gwi_sq_run(d, ST_ROLLBACK, "rollback");
	return e;
}

static gw_err sq_save_batch(void *drv, const gw_row *rows, size_t n, gw_err *results)
{
	sqlite_drv *d = drv;
	if (n == 0)
		return GW_OK;
	gw_err e = gwi_sq_run(d, ST_BEGIN, "begin");
	int64_t now = gwi_sq_now_ms();
	for (size_t i = 0; e == GW_OK && i < n; i++)
		e = save_row(d, &rows[i], now, &results[i]);
	if ((e = gwi_sq_end_tx(d, e)) != GW_OK)
		gwi_results_set(results, n, e);
	return e;
}

static gw_err sq_remove(void *drv, const gw_actor_key *k)
{
	sqlite_drv *d = drv;
	gw_err e = gwi_sq_run(d, ST_BEGIN, "begin");
	if (e == GW_OK)
		e = gwi_sq_run_key(d, ST_REMOVE_HIST, k, false, 0, "remove (history)");
	if (e == GW_OK)
		e = gwi_sq_run_key(d, ST_REMOVE, k, false, 0, "remove");
	return gwi_sq_end_tx(d, e);
}

/* ---- rotation ------------------------------------------------------------ */

static gw_err sq_rot_count(void *drv, const char *primary, uint64_t *n)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_ROT_COUNT];
	gw_err e = GW_OK;
	int rc = sqlite3_bind_text(st, 1, primary, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(st, 0);
	else
		e = gwi_sq_fail(d, rc, "rotation count");
	sqlite3_reset(st);
	return e;
}

static gw_err sq_rot_scan(void *drv, const gw_rot_cursor *after, const char *primary, gw_row *rows,
                          size_t max, size_t *n)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st =
	    d->st[after->table == GW_ROT_HISTORY ? ST_ROT_SCAN_HIST : ST_ROT_SCAN_STATE];
	size_t got = 0;
	gw_err e = GW_OK;
	int rc = sqlite3_bind_text(st, 1, primary, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, after->key.system, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 3, after->key.name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK && after->table == GW_ROT_HISTORY)
		rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)after->revision);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)max);
	while (rc == SQLITE_OK && got < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		gw_row *r = &rows[got];
		char *sys = gwi_sq_dup_text(st, 0), *name = gwi_sq_dup_text(st, 1);
		e = sys && name ? read_row(d, st, 2, true, r) : GW_ENOMEM;
		if (e != GW_OK) {
			free(sys);
			free(name);
			if (e == GW_ECORRUPT) /* a NULL or negative column: skip it */
				GW_ERROR("sqlite %s: a row under rotation is malformed",
				         gwi_sq_where(d));
			break;
		}
		r->key.system = sys;
		r->key.name = name;
		got++;
		rc = SQLITE_OK;
	}
	if (e == GW_OK && rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		e = gwi_sq_fail(d, rc, "rotation scan");
	sqlite3_reset(st);
	if (e != GW_OK) {
		gwi_scan_rows_fini(rows, got);
		return e;
	}
	*n = got;
	return GW_OK;
}

static gw_err sq_rot_rewrite(void *drv, int table, const gw_rewrite *rows, size_t n,
                             gw_err *results)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[table == GW_ROT_HISTORY ? ST_ROT_WRITE_HIST : ST_ROT_WRITE_STATE];
	gw_err e = gwi_sq_run(d, ST_BEGIN, "begin");
	for (size_t i = 0; e == GW_OK && i < n; i++) {
		const gw_rewrite *w = &rows[i];
		int rc = gwi_sq_bind_key(st, &w->key);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)w->revision);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(st, 4, w->key_id, -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc =
			    sqlite3_bind_blob(st, 5, w->nonce, (int)sizeof w->nonce, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_blob64(st, 6, w->data, (sqlite3_uint64)w->len,
			                         SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(st, 7, w->old_key_id, -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_blob(st, 8, w->old_nonce, (int)sizeof w->old_nonce,
			                       SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			e = gwi_sq_fail(d, rc, "rotation rewrite");
		else
			results[i] = sqlite3_changes(d->db) == 1 ? GW_OK : GW_ECONFLICT;
		sqlite3_reset(st);
	}
	if ((e = gwi_sq_end_tx(d, e)) != GW_OK)
		gwi_results_set(results, n, e);
	return e;
}

/* ---- meta --------------------------------------------------------------- */

static gw_err sq_meta_get(void *drv, const char *name, uint8_t **val, size_t *len)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_META_GET];
	gw_err e = GW_OK;
	int rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		e = GW_ENOTFOUND;
	} else if (rc != SQLITE_ROW) {
		e = gwi_sq_fail(d, rc, "meta get");
	} else {
		const void *blob = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		uint8_t *v = malloc(n > 0 ? n : 1);
		if (!v) {
			e = GW_ENOMEM;
		} else {
			if (n > 0)
				memcpy(v, blob, n);
			*val = v;
			*len = n;
		}
	}
	sqlite3_reset(st);
	return e;
}

/* meta_write runs META_PUT or META_CREATE; *changed: rows written. */
static gw_err meta_write(sqlite_drv *d, int id, const char *name, const uint8_t *val, size_t len,
                         int *changed)
{
	sqlite3_stmt *st = d->st[id];
	static const uint8_t empty[1];
	int rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	/* A NULL pointer would bind SQL NULL; an empty value is still a BLOB. */
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob64(st, 2, len > 0 ? (const void *)val : (const void *)empty,
		                         (sqlite3_uint64)len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	gw_err e = rc == SQLITE_DONE ? GW_OK : gwi_sq_fail(d, rc, "meta write");
	*changed = sqlite3_changes(d->db);
	sqlite3_reset(st);
	return e;
}

static gw_err sq_meta_put(void *drv, const char *name, const uint8_t *val, size_t len)
{
	int changed;
	return meta_write(drv, ST_META_PUT, name, val, len, &changed);
}

static gw_err sq_meta_create(void *drv, const char *name, const uint8_t *val, size_t len)
{
	int changed = 0;
	gw_err e = meta_write(drv, ST_META_CREATE, name, val, len, &changed);
	return e == GW_OK && changed != 1 ? GW_ECONFLICT : e;
}

/* ---- undelivered side effects ---------------------------------------------------- */

static gw_err sq_effects_list(void *drv, const gw_actor_key *after, size_t max, gw_actor_key *out,
                              size_t *n)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_EFFECTS_LIST];
	size_t got = 0;
	gw_err e = GW_OK;
	int rc = gwi_sq_bind_key_limit(st, after, max);
	while (rc == SQLITE_OK && got < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = SQLITE_OK;
		char *sys = gwi_sq_dup_text(st, 0), *name = gwi_sq_dup_text(st, 1);
		if (!sys || !name) {
			free(sys);
			free(name);
			e = GW_ENOMEM;
			break;
		}
		out[got].system = sys;
		out[got].name = name;
		got++;
	}
	if (e == GW_OK && rc != SQLITE_OK && rc != SQLITE_DONE)
		e = gwi_sq_fail(d, rc, "effects list");
	sqlite3_reset(st);
	if (e != GW_OK) {
		gw_keys_fini(out, got);
		return e;
	}
	*n = got;
	return GW_OK;
}

const gw_store_ops gw_sqlite_ops = {
    .version = GW_STORE_OPS_VERSION,
    .scheme = "sqlite",
    .open = sq_open,
    .load = sq_load,
    .save_batch = sq_save_batch,
    .remove = sq_remove,
    .meta_get = sq_meta_get,
    .meta_put = sq_meta_put,
    .path = sq_path,
    .close = sq_close,
    .acquire = sq_acquire,
    .load_revision = sq_load_revision,
    .list_revisions = sq_list_revisions,
    .meta_create = sq_meta_create,
    .rot_count = sq_rot_count,
    .rot_scan = sq_rot_scan,
    .rot_rewrite = sq_rot_rewrite,
    .instance_put = gwi_sq_instance_put,
    .instance_get = gwi_sq_instance_get,
    .sched_put = gwi_sq_sched_put,
    .sched_claim = gwi_sq_sched_claim,
    .sched_set_aside = gwi_sq_sched_set_aside,
    .sched_done = gwi_sq_sched_done,
    .sched_next_due = gwi_sq_sched_next_due,
    .sched_count = gwi_sq_sched_count,
    .sched_done_batch = gwi_sq_sched_done_batch,
    .effects_list = sq_effects_list,
    .activate_batch = sq_activate_batch,
    .instance_counts = gwi_sq_instance_counts,
    .sched_counts = gwi_sq_sched_counts,
    .sched_range = gwi_sq_sched_range,
    .forget = gwi_sq_forget,
    .sched_reseal = gwi_sq_sched_reseal,
};
