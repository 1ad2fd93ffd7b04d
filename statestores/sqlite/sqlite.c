/* sqlite.c - the embedded statestore driver: one SQLite file per gateway.
 *
 * URLs:  sqlite:///abs/path.db   sqlite://rel/path.db   sqlite::memory:
 *
 * Schema (version 1, created idempotently in one transaction at open):
 *   spawn_meta(name TEXT PRIMARY KEY, value BLOB)
 *       "schema_version" -> 1, "keycheck" -> written by store.c
 *   spawn_actor_state(system, name, revision, epoch, key_id, nonce, data,
 *                     type_url, updated_at, PRIMARY KEY(system, name))
 * One row per actor: a save replaces the row (no history yet, see
 * docs/design/statestore.md).
 *
 * Durability: WAL with synchronous=FULL, so a COMMIT has reached the disk
 * (WAL fsync) before save_batch returns GW_OK. A checkpointed save must
 * survive a power cut.
 *
 * save_batch, per row, inside BEGIN IMMEDIATE ... COMMIT:
 *   expected == 0  INSERT ... ON CONFLICT DO NOTHING   (row exists -> 0 changes)
 *   expected  > 0  UPDATE ... WHERE revision = expected AND epoch <= new epoch
 *   0 changes      look at the stored epoch: newer than ours -> EFENCED,
 *                  otherwise (row missing or other revision) -> ECONFLICT
 * A SQLite error anywhere -> ROLLBACK; the batch fails as a whole.
 *
 * Thread: one thread at a time per handle (the connection is opened
 * NOMUTEX); every call blocks on disk.
 */
#include "drivers.h"
#include "log.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#define SCHEMA_VERSION  1
#define BUSY_TIMEOUT_MS 5000

enum {
	ST_LOAD,
	ST_INSERT,
	ST_UPDATE,
	ST_PEEK,
	ST_REMOVE,
	ST_META_GET,
	ST_META_PUT,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_COUNT
};

/* INSERT and UPDATE share parameter numbers ?1..?9 so one function binds
 * both; UPDATE adds ?10 = the expected revision. */
static const char *const sql_text[ST_COUNT] = {
    [ST_LOAD] = "SELECT revision, epoch, key_id, nonce, data, type_url "
                "FROM spawn_actor_state WHERE system = ?1 AND name = ?2",
    [ST_INSERT] = "INSERT INTO spawn_actor_state"
                  "(system, name, revision, epoch, key_id, nonce, data, type_url, updated_at) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                  "ON CONFLICT(system, name) DO NOTHING",
    [ST_UPDATE] = "UPDATE spawn_actor_state SET revision = ?3, epoch = ?4, key_id = ?5, "
                  "nonce = ?6, data = ?7, type_url = ?8, updated_at = ?9 "
                  "WHERE system = ?1 AND name = ?2 AND revision = ?10 AND epoch <= ?4",
    [ST_PEEK] = "SELECT epoch FROM spawn_actor_state WHERE system = ?1 AND name = ?2",
    [ST_REMOVE] = "DELETE FROM spawn_actor_state WHERE system = ?1 AND name = ?2",
    [ST_META_GET] = "SELECT value FROM spawn_meta WHERE name = ?1",
    [ST_META_PUT] = "INSERT INTO spawn_meta(name, value) VALUES(?1, ?2) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

static const char schema_sql[] = "CREATE TABLE IF NOT EXISTS spawn_meta("
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
                                 " PRIMARY KEY(system, name));"
                                 "INSERT INTO spawn_meta(name, value) VALUES('schema_version', 1)"
                                 " ON CONFLICT(name) DO NOTHING;";

typedef struct sqlite_drv {
	sqlite3 *db;                /* owned: closed by sq_close */
	char *path;                 /* owned; NULL for :memory: */
	sqlite3_stmt *st[ST_COUNT]; /* owned: prepared once, finalized by sq_close */
} sqlite_drv;

static void sq_close(void *drv);

static const char *where(const sqlite_drv *d)
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
static gw_err sql_fail(const sqlite_drv *d, int rc, const char *what)
{
	GW_ERROR("sqlite %s: %s: %s (%d)", where(d), what, sqlite3_errmsg(d->db), rc);
	return map_rc(rc);
}

/* run steps a statement that returns no rows, then resets it. */
static gw_err run(sqlite_drv *d, int id, const char *what)
{
	sqlite3_stmt *st = d->st[id];
	int rc = sqlite3_step(st);
	gw_err e = rc == SQLITE_DONE ? GW_OK : sql_fail(d, rc, what);
	sqlite3_reset(st);
	return e;
}

static int64_t now_ms(void)
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
	if (strncmp(url, "sqlite:", 7) != 0) {
		gwi_store_errf(opts, "not a sqlite URL: '%s' (%s)", url, usage);
		return GW_ECONFIG;
	}
	const char *rest = url + 7;
	if (strcmp(rest, ":memory:") == 0) {
		*path = NULL;
		return GW_OK;
	}
	if (strncmp(rest, "//", 2) != 0 || rest[2] == '\0') {
		gwi_store_errf(opts, "bad sqlite URL '%s': %s", url, usage);
		return GW_ECONFIG;
	}
	/* A '?' would silently become part of the file name. */
	if (strchr(rest, '?')) {
		gwi_store_errf(opts, "bad sqlite URL '%s': query parameters are not supported",
		               url);
		return GW_ECONFIG;
	}
	*path = rest + 2;
	return GW_OK;
}

/* pragmas sets the connection up for durable, concurrent-reader use. */
static gw_err pragmas(sqlite_drv *d, const gw_store_opts *opts)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_busy_timeout(d->db, BUSY_TIMEOUT_MS);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(d->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		gwi_store_errf(opts, "cannot open statestore %s: %s", where(d),
		               sqlite3_errmsg(d->db));
		gw_err e = map_rc(rc);
		sqlite3_finalize(st);
		return e == GW_EUNAVAIL ? e : GW_EIO;
	}
	const char *mode = (const char *)sqlite3_column_text(st, 0);
	/* An in-memory database reports "memory"; a file system without shared
	 * memory support keeps a rollback journal, still durable with FULL. */
	if (d->path && (!mode || strcmp(mode, "wal") != 0))
		GW_WARN("sqlite %s: journal_mode is %s, not wal", where(d), mode ? mode : "?");
	sqlite3_finalize(st);
	rc = sqlite3_exec(d->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		gwi_store_errf(opts, "statestore %s: cannot set synchronous=FULL: %s", where(d),
		               sqlite3_errmsg(d->db));
		return map_rc(rc) == GW_EUNAVAIL ? GW_EUNAVAIL : GW_EIO;
	}
	return GW_OK;
}

/* schema creates the tables when missing and checks the recorded version,
 * all in one write transaction so two gateways racing on a new file agree. */
static gw_err schema(sqlite_drv *d, const gw_store_opts *opts)
{
	sqlite3_stmt *st = NULL;
	gw_err e = GW_EIO;
	int rc = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(d->db, schema_sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
		    d->db, "SELECT value FROM spawn_meta WHERE name = 'schema_version'", -1, &st,
		    NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		gwi_store_errf(opts, "statestore %s: cannot create the schema: %s", where(d),
		               sqlite3_errmsg(d->db));
		e = map_rc(rc) == GW_EUNAVAIL ? GW_EUNAVAIL : GW_EIO;
		goto fail;
	}
	if (sqlite3_column_type(st, 0) != SQLITE_INTEGER) {
		gwi_store_errf(opts, "statestore %s: spawn_meta.schema_version is not an integer",
		               where(d));
		goto fail;
	}
	sqlite3_int64 v = sqlite3_column_int64(st, 0);
	if (v != SCHEMA_VERSION) {
		gwi_store_errf(opts,
		               "statestore %s has schema version %lld; this gateway knows "
		               "version %d",
		               where(d), (long long)v, SCHEMA_VERSION);
		e = GW_ECONFIG;
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	rc = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		gwi_store_errf(opts, "statestore %s: cannot commit the schema: %s", where(d),
		               sqlite3_errmsg(d->db));
		e = map_rc(rc) == GW_EUNAVAIL ? GW_EUNAVAIL : GW_EIO;
		goto fail;
	}
	return GW_OK;
fail:
	sqlite3_finalize(st);
	if (!sqlite3_get_autocommit(d->db))
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	return e;
}

static gw_err sq_open(const char *url, const gw_store_opts *opts, void **drv)
{
	const char *path = NULL;
	gw_err e = parse_url(url, opts, &path);
	if (e != GW_OK)
		return e;
	sqlite_drv *d = calloc(1, sizeof *d);
	if (!d)
		return GW_ENOMEM;
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
		gwi_store_errf(opts, "cannot open statestore %s: %s", where(d),
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
			               where(d), i, sqlite3_errmsg(d->db));
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
		GW_ERROR("sqlite %s: close: %s", where(d), sqlite3_errmsg(d->db));
	free(d->path);
	free(d);
}

static const char *sq_path(void *drv)
{
	return ((sqlite_drv *)drv)->path;
}

/* ---- rows --------------------------------------------------------------- */

static int bind_key(sqlite3_stmt *st, const gw_actor_key *k)
{
	int rc = sqlite3_bind_text(st, 1, k->system, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, k->name, -1, SQLITE_STATIC);
	return rc;
}

static char *dup_text(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	return t ? strdup(t) : NULL;
}

static gw_err sq_load(void *drv, const gw_actor_key *k, gw_row *out)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_LOAD];
	char *key_id = NULL, *type_url = NULL;
	uint8_t *data = NULL;
	gw_err e;
	int rc = bind_key(st, k);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		e = GW_ENOTFOUND;
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		e = sql_fail(d, rc, "load");
		goto fail;
	}
	sqlite3_int64 rev = sqlite3_column_int64(st, 0), epoch = sqlite3_column_int64(st, 1);
	if (rev < 1 || epoch < 0 || sqlite3_column_type(st, 2) == SQLITE_NULL ||
	    sqlite3_column_bytes(st, 3) != (int)sizeof out->nonce ||
	    sqlite3_column_type(st, 5) == SQLITE_NULL) {
		GW_ERROR("sqlite %s: row %s/%s is malformed", where(d), k->system, k->name);
		e = GW_ECORRUPT;
		goto fail;
	}
	const void *blob = sqlite3_column_blob(st, 4); /* blob, then bytes: no conversion */
	size_t len = (size_t)sqlite3_column_bytes(st, 4);
	key_id = dup_text(st, 2);
	type_url = dup_text(st, 5);
	data = malloc(len > 0 ? len : 1);
	if (!key_id || !type_url || !data) {
		e = GW_ENOMEM;
		goto fail;
	}
	if (len > 0)
		memcpy(data, blob, len);
	out->key = *k;
	out->revision = (uint64_t)rev;
	out->expected = 0;
	out->epoch = (uint64_t)epoch;
	out->key_id = key_id;
	memcpy(out->nonce, sqlite3_column_blob(st, 3), sizeof out->nonce);
	out->data = data;
	out->len = len;
	out->type_url = type_url;
	sqlite3_reset(st);
	return GW_OK;
fail:
	sqlite3_reset(st);
	free(key_id);
	free(type_url);
	free(data);
	return e;
}

/* classify names the outcome of a conditional write that changed nothing:
 * a newer epoch on the stored row fences us, anything else is a conflict. */
static gw_err classify(sqlite_drv *d, const gw_row *r, gw_err *result)
{
	sqlite3_stmt *st = d->st[ST_PEEK];
	gw_err e = GW_OK;
	int rc = bind_key(st, &r->key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*result =
		    (uint64_t)sqlite3_column_int64(st, 0) > r->epoch ? GW_EFENCED : GW_ECONFLICT;
	else if (rc == SQLITE_DONE)
		*result = GW_ECONFLICT;
	else
		e = sql_fail(d, rc, "save (peek)");
	sqlite3_reset(st);
	return e;
}

/* save_row runs one conditional write inside the open transaction. The
 * return value is a batch-level error; *result the row's outcome. */
static gw_err save_row(sqlite_drv *d, const gw_row *r, int64_t now, gw_err *result)
{
	sqlite3_stmt *st = d->st[r->expected == 0 ? ST_INSERT : ST_UPDATE];
	int rc = bind_key(st, &r->key);
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
	if (rc == SQLITE_OK && r->expected > 0)
		rc = sqlite3_bind_int64(st, 10, (sqlite3_int64)r->expected);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		gw_err e = sql_fail(d, rc, "save");
		sqlite3_reset(st);
		return e;
	}
	int changed = sqlite3_changes(d->db);
	/* Reset before the caller's buffers (bound SQLITE_STATIC) go away. */
	sqlite3_reset(st);
	if (changed == 1) {
		*result = GW_OK;
		return GW_OK;
	}
	return classify(d, r, result);
}

static gw_err sq_save_batch(void *drv, const gw_row *rows, size_t n, gw_err *results)
{
	sqlite_drv *d = drv;
	if (n == 0)
		return GW_OK;
	gw_err e = run(d, ST_BEGIN, "begin");
	if (e != GW_OK)
		goto fail;
	int64_t now = now_ms();
	for (size_t i = 0; i < n; i++)
		if ((e = save_row(d, &rows[i], now, &results[i])) != GW_OK)
			goto fail;
	if ((e = run(d, ST_COMMIT, "commit")) != GW_OK)
		goto fail;
	return GW_OK;
fail:
	/* An I/O error may already have rolled SQLite back on its own. */
	if (!sqlite3_get_autocommit(d->db))
		run(d, ST_ROLLBACK, "rollback");
	for (size_t i = 0; i < n; i++)
		results[i] = e;
	return e;
}

static gw_err sq_remove(void *drv, const gw_actor_key *k)
{
	sqlite_drv *d = drv;
	int rc = bind_key(d->st[ST_REMOVE], k);
	if (rc != SQLITE_OK) {
		gw_err e = sql_fail(d, rc, "remove");
		sqlite3_reset(d->st[ST_REMOVE]);
		return e;
	}
	return run(d, ST_REMOVE, "remove");
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
		e = sql_fail(d, rc, "meta get");
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

static gw_err sq_meta_put(void *drv, const char *name, const uint8_t *val, size_t len)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_META_PUT];
	static const uint8_t empty[1];
	int rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	/* A NULL pointer would bind SQL NULL; an empty value is still a BLOB. */
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob64(st, 2, len > 0 ? (const void *)val : (const void *)empty,
		                         (sqlite3_uint64)len, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		gw_err e = sql_fail(d, rc, "meta put");
		sqlite3_reset(st);
		return e;
	}
	return run(d, ST_META_PUT, "meta put");
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
};
