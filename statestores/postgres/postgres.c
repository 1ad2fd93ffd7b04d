/* postgres.c - the PostgreSQL statestore driver (libpq).
 *
 * URLs:  postgres://user:password@host:port/db?sslmode=require
 *        postgresql://...   (libpq parses the URI: every libpq URI
 *        parameter works, e.g. sslrootcert, options=-csearch_path%3Dx)
 *
 * Schema (version 4; docs/schema.md): spawn_meta, spawn_actor_state,
 * spawn_actor_history, spawn_actor_epoch, spawn_instance and spawn_schedule
 * in the first schema of the search_path. Created or
 * migrated at open in one transaction that holds a transaction-level
 * advisory lock, so gateways starting together run the migration once:
 *
 *   BEGIN; SELECT pg_advisory_xact_lock(K);
 *   version := spawn_meta.schema_version, 0 when spawn_meta is missing
 *   version >  SCHEMA_VERSION  -> ROLLBACK, GW_ECONFIG (a newer gateway's)
 *   version <  SCHEMA_VERSION  -> run migrations[version..], record version
 *   COMMIT
 * (DDL is transactional in PostgreSQL: a migration applies whole or not.)
 *
 * save_batch, per row, inside BEGIN ... COMMIT (READ COMMITTED):
 *   epoch != 0     SELECT epoch FROM spawn_actor_epoch ... FOR SHARE:
 *                  not ours (or no row) -> EFENCED, nothing written
 *   expected == 0  INSERT ... ON CONFLICT DO NOTHING   (row exists -> 0 rows)
 *   expected  > 0  UPDATE ... WHERE revision = expected
 *   0 rows         ECONFLICT
 *   history N > 0  the new revision is also upserted into spawn_actor_history
 *                  and revisions below (new - N) are deleted there
 * A concurrent writer of the same row makes the UPDATE wait for its commit
 * and then re-check the WHERE clause on the committed row, so exactly one
 * of two racing saves of a revision wins. Any error -> ROLLBACK, the batch
 * fails as a whole.
 *
 * sched_claim, inside BEGIN ... COMMIT (READ COMMITTED):
 *   SELECT up to max unclaimed due rows (spawn_schedule_due, due order) and
 *   up to max rows whose lease expired (spawn_schedule_lease), both FOR
 *   UPDATE SKIP LOCKED; merge by (due_ms, id), keep max; UPDATE their owner
 *   and lease_until (WHERE id = ANY($1)); COMMIT. A row a concurrent claim
 *   holds is skipped, one it committed meanwhile fails the re-checked WHERE
 *   clause: two claims never return the same row.
 *
 * acquire: INSERT INTO spawn_actor_epoch ... ON CONFLICT DO UPDATE SET
 * epoch = epoch + 1 RETURNING epoch (autocommit). It needs the epoch row's
 * exclusive lock, so it waits for every save transaction holding the row
 * FOR SHARE: a save that passed its fence commits before the new epoch
 * exists, and a save that checks later (FOR SHARE waits for the acquire,
 * then reads the committed row) sees the new epoch and is fenced.
 *
 * Connections: a pool of pool_size (default 4) connections, each used by
 * one thread at a time; opened on demand, every statement prepared on each.
 *
 *   EMPTY ---- acquire ----> CONNECTING --ok--> READY (statements prepared)
 *   CONNECTING -- fails ---> EMPTY            [the call returns GW_EUNAVAIL]
 *   READY ---- acquire ----> in use by one thread
 *   in use --- release ----> READY, or EMPTY when the connection broke
 *   READY ---- acquire, socket readable (server closed it) --> CONNECTING
 *
 * Invariants:
 *   1. A connection is used by at most one thread (busy flag under mu).
 *   2. A released connection is idle (no open transaction) or closed.
 *   3. A call that finds its connection dead before anything of the call
 *      reached the server reconnects once and retries; a connection lost
 *      later fails the call with GW_EUNAVAIL (and the next call reconnects).
 *      A save whose COMMIT was lost may or may not have committed: the
 *      retry sees GW_ECONFLICT and the caller reloads (docs/design).
 *   4. Nothing waits forever: connect_timeout, TCP keepalives and
 *      tcp_user_timeout (defaults a URL parameter overrides), lock_timeout
 *      10 s and statement_timeout 60 s (set when the URL, role or server
 *      left them unbounded) bound every call.
 */
#include "drivers.h"
#include "log.h"

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define SCHEMA_VERSION 4
#define POOL_DEFAULT   4
#define POOL_MAX       64
#define HISTORY_MAX    1000000
/* pg_advisory_xact_lock key of the schema migration: "SPAWNSCH". */
#define SCHEMA_LOCK_KEY "6003092917003650888"

/* Type OIDs (catalog/pg_type.h is a server header). */
#define OID_BYTEA      17
#define OID_INT2       21
#define OID_INT8       20
#define OID_TEXT       25
#define OID_TEXT_ARRAY 1009

enum {
	ST_LOAD,
	ST_LOAD_REV,
	ST_LIST,
	ST_INSERT,
	ST_UPDATE,
	ST_FENCE,
	ST_ACQUIRE,
	ST_HIST_PUT,
	ST_REMOVE,
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
	ST_SCHED_DONE_BATCH,
	ST_EFFECTS_LIST,
	ST_COUNT
};

/* The columns of a row, in the order read_row expects. */
#define ROW_COLS   "revision, epoch, key_id, nonce, data, type_url"
#define SCHED_COLS "id, due_ms, key_id, nonce, data"
#define ROT_WRITE(table)                                                                           \
	"UPDATE " table " SET key_id = $4, nonce = $5, data = $6 "                                 \
	"WHERE system = $1 AND name = $2 AND revision = $3 AND key_id = $7 AND nonce = $8"

/* INSERT, UPDATE and HIST_PUT share $1..$8 = system, name, revision, epoch,
 * key_id, nonce, data, type_url; INSERT adds $9 = the effects flag, UPDATE
 * $9 = the expected revision and $10 = the effects flag, HIST_PUT $9 = the
 * oldest revision to keep. The rotation rewrites take
 * system, name, revision, new key_id, nonce, data, old key_id, old nonce. */
static const struct {
	const char *name;
	const char *sql;
	int nparams;
	Oid types[10];
} stmts[ST_COUNT] = {
    [ST_LOAD] = {"gw_load",
                 "SELECT " ROW_COLS " FROM spawn_actor_state WHERE system = $1 AND name = $2",
                 2,
                 {OID_TEXT, OID_TEXT}},
    [ST_LOAD_REV] = {"gw_load_rev",
                     "SELECT " ROW_COLS " FROM spawn_actor_state "
                     "WHERE system = $1 AND name = $2 AND revision = $3 "
                     "UNION ALL SELECT " ROW_COLS " FROM spawn_actor_history "
                     "WHERE system = $1 AND name = $2 AND revision = $3 LIMIT 1",
                     3,
                     {OID_TEXT, OID_TEXT, OID_INT8}},
    [ST_LIST] = {"gw_list",
                 "SELECT revision FROM spawn_actor_state WHERE system = $1 AND name = $2 "
                 "UNION SELECT revision FROM spawn_actor_history "
                 "WHERE system = $1 AND name = $2 ORDER BY 1 DESC LIMIT $3",
                 3,
                 {OID_TEXT, OID_TEXT, OID_INT8}},
    [ST_INSERT] = {"gw_insert",
                   "INSERT INTO spawn_actor_state"
                   "(system, name, revision, epoch, key_id, nonce, data, type_url, updated_at, "
                   "effects) VALUES($1, $2, $3, $4, $5, $6, $7, $8, now(), $9) "
                   "ON CONFLICT (system, name) DO NOTHING",
                   9,
                   {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA,
                    OID_TEXT, OID_INT2}},
    [ST_UPDATE] = {"gw_update",
                   "UPDATE spawn_actor_state SET revision = $3, epoch = $4, key_id = $5, "
                   "nonce = $6, data = $7, type_url = $8, updated_at = now(), effects = $10 "
                   "WHERE system = $1 AND name = $2 AND revision = $9",
                   10,
                   {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA,
                    OID_TEXT, OID_INT8, OID_INT2}},
    /* FOR SHARE: an acquire (an UPDATE of this row) waits for our commit. */
    [ST_FENCE] = {"gw_fence",
                  "SELECT epoch FROM spawn_actor_epoch WHERE system = $1 AND name = $2 "
                  "FOR SHARE",
                  2,
                  {OID_TEXT, OID_TEXT}},
    [ST_ACQUIRE] = {"gw_acquire",
                    "INSERT INTO spawn_actor_epoch AS e (system, name, epoch) VALUES($1, $2, 1) "
                    "ON CONFLICT (system, name) DO UPDATE SET epoch = e.epoch + 1 "
                    "RETURNING epoch",
                    2,
                    {OID_TEXT, OID_TEXT}},
    /* One statement: the trim and the insert touch different revisions. */
    [ST_HIST_PUT] = {"gw_hist_put",
                     "WITH trim AS (DELETE FROM spawn_actor_history "
                     " WHERE system = $1 AND name = $2 AND revision < $9) "
                     "INSERT INTO spawn_actor_history"
                     "(system, name, revision, epoch, key_id, nonce, data, type_url, updated_at) "
                     "VALUES($1, $2, $3, $4, $5, $6, $7, $8, now()) "
                     "ON CONFLICT (system, name, revision) DO UPDATE SET "
                     "epoch = excluded.epoch, key_id = excluded.key_id, "
                     "nonce = excluded.nonce, data = excluded.data, "
                     "type_url = excluded.type_url, updated_at = excluded.updated_at",
                     9,
                     {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA,
                      OID_TEXT, OID_INT8}},
    [ST_REMOVE] = {"gw_remove",
                   "WITH h AS (DELETE FROM spawn_actor_history WHERE system = $1 AND name = $2) "
                   "DELETE FROM spawn_actor_state WHERE system = $1 AND name = $2",
                   2,
                   {OID_TEXT, OID_TEXT}},
    [ST_META_GET] = {"gw_meta_get", "SELECT value FROM spawn_meta WHERE name = $1", 1, {OID_TEXT}},
    [ST_META_PUT] = {"gw_meta_put",
                     "INSERT INTO spawn_meta(name, value) VALUES($1, $2) "
                     "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                     2,
                     {OID_TEXT, OID_BYTEA}},
    /* A concurrent uncommitted creator makes this wait, then do nothing. */
    [ST_META_CREATE] = {"gw_meta_create",
                        "INSERT INTO spawn_meta(name, value) VALUES($1, $2) "
                        "ON CONFLICT (name) DO NOTHING",
                        2,
                        {OID_TEXT, OID_BYTEA}},
    [ST_ROT_COUNT] = {"gw_rot_count",
                      "SELECT (SELECT count(*) FROM spawn_actor_state WHERE key_id <> $1) + "
                      "(SELECT count(*) FROM spawn_actor_history WHERE key_id <> $1)",
                      1,
                      {OID_TEXT}},
    /* Row comparisons walk the primary key (COLLATE "C": byte order). */
    [ST_ROT_SCAN_STATE] = {"gw_rot_scan_state",
                           "SELECT system, name, " ROW_COLS " FROM spawn_actor_state "
                           "WHERE (system, name) > ($2, $3) AND key_id <> $1 "
                           "ORDER BY system, name LIMIT $4",
                           4,
                           {OID_TEXT, OID_TEXT, OID_TEXT, OID_INT8}},
    [ST_ROT_SCAN_HIST] = {"gw_rot_scan_hist",
                          "SELECT system, name, " ROW_COLS " FROM spawn_actor_history "
                          "WHERE (system, name, revision) > ($2, $3, $4) AND key_id <> $1 "
                          "ORDER BY system, name, revision LIMIT $5",
                          5,
                          {OID_TEXT, OID_TEXT, OID_TEXT, OID_INT8, OID_INT8}},
    [ST_ROT_WRITE_STATE] = {"gw_rot_write_state",
                            ROT_WRITE("spawn_actor_state"),
                            8,
                            {OID_TEXT, OID_TEXT, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA, OID_TEXT,
                             OID_BYTEA}},
    [ST_ROT_WRITE_HIST] = {"gw_rot_write_hist",
                           ROT_WRITE("spawn_actor_history"),
                           8,
                           {OID_TEXT, OID_TEXT, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA, OID_TEXT,
                            OID_BYTEA}},
    [ST_INST_PUT] = {"gw_inst_put",
                     "INSERT INTO spawn_instance(system, name, parent, created_at) "
                     "VALUES($1, $2, $3, now()) ON CONFLICT (system, name) DO NOTHING",
                     3,
                     {OID_TEXT, OID_TEXT, OID_TEXT}},
    [ST_INST_GET] = {"gw_inst_get",
                     "SELECT parent FROM spawn_instance WHERE system = $1 AND name = $2",
                     2,
                     {OID_TEXT, OID_TEXT}},
    [ST_SCHED_PUT] = {"gw_sched_put",
                      "INSERT INTO spawn_schedule(id, due_ms, owner, lease_until, key_id, nonce, "
                      "data) VALUES($1, $2, NULL, NULL, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                      5,
                      {OID_TEXT, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA}},
    /* The two claim scans, each on its partial index. SKIP LOCKED: rows a
     * concurrent claim holds are passed over, and a row it leased and
     * committed meanwhile fails the re-checked WHERE clause. */
    [ST_SCHED_FREE] = {"gw_sched_free",
                       "SELECT " SCHED_COLS " FROM spawn_schedule "
                       "WHERE owner IS NULL AND due_ms <= $1 ORDER BY due_ms, id LIMIT $2 "
                       "FOR UPDATE SKIP LOCKED",
                       2,
                       {OID_INT8, OID_INT8}},
    [ST_SCHED_EXPIRED] = {"gw_sched_expired",
                          "SELECT " SCHED_COLS " FROM spawn_schedule "
                          "WHERE owner IS NOT NULL AND lease_until <= $1 "
                          "ORDER BY due_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                          2,
                          {OID_INT8, OID_INT8}},
    [ST_SCHED_LEASE] = {"gw_sched_lease",
                        "UPDATE spawn_schedule SET owner = $2, lease_until = $3 "
                        "WHERE id = ANY($1)",
                        3,
                        {OID_TEXT_ARRAY, OID_TEXT, OID_INT8}},
    [ST_SCHED_ASIDE] = {"gw_sched_aside",
                        "UPDATE spawn_schedule SET owner = '" GW_SCHED_CORRUPT "', "
                        "lease_until = 9223372036854775807 WHERE id = $1",
                        1,
                        {OID_TEXT}},
    [ST_SCHED_DONE] = {"gw_sched_done", "DELETE FROM spawn_schedule WHERE id = $1", 1, {OID_TEXT}},
    [ST_SCHED_NEXT] = {"gw_sched_next",
                       "SELECT (SELECT due_ms FROM spawn_schedule WHERE owner IS NULL "
                       "ORDER BY due_ms LIMIT 1), "
                       "(SELECT lease_until FROM spawn_schedule WHERE owner IS NOT NULL "
                       "AND lease_until < 9223372036854775807 ORDER BY lease_until LIMIT 1)",
                       0,
                       {0}},
    [ST_SCHED_COUNT] = {"gw_sched_count", "SELECT count(*) FROM spawn_schedule", 0, {0}},
    /* One statement (autocommit: one transaction) for a whole chunk. */
    [ST_SCHED_DONE_BATCH] = {"gw_sched_done_batch",
                             "DELETE FROM spawn_schedule WHERE id = ANY($1)",
                             1,
                             {OID_TEXT_ARRAY}},
    /* effects <> 0 implies the partial index's predicate: the scan walks
     * only the flagged rows, in key order. */
    [ST_EFFECTS_LIST] = {"gw_effects_list",
                         "SELECT system, name FROM spawn_actor_state "
                         "WHERE effects <> 0 AND (system, name) > ($1, $2) "
                         "ORDER BY system, name LIMIT $3",
                         3,
                         {OID_TEXT, OID_TEXT, OID_INT8}},
};

/* migrations[v] takes the schema from version v to v + 1. Append only: a
 * released step never changes (docs/schema.md, "Migrations"). */
static const char *const migrations[SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE IF NOT EXISTS spawn_meta("
    " name text COLLATE \"C\" PRIMARY KEY,"
    " value bytea NOT NULL);"
    "CREATE TABLE IF NOT EXISTS spawn_actor_state("
    " system text COLLATE \"C\" NOT NULL,"
    " name text COLLATE \"C\" NOT NULL,"
    " revision bigint NOT NULL,"
    " epoch bigint NOT NULL,"
    " key_id text NOT NULL,"
    " nonce bytea NOT NULL,"
    " data bytea NOT NULL,"
    " type_url text NOT NULL,"
    " updated_at timestamptz NOT NULL,"
    " PRIMARY KEY(system, name));"
    "CREATE TABLE IF NOT EXISTS spawn_actor_history("
    " system text COLLATE \"C\" NOT NULL,"
    " name text COLLATE \"C\" NOT NULL,"
    " revision bigint NOT NULL,"
    " epoch bigint NOT NULL,"
    " key_id text NOT NULL,"
    " nonce bytea NOT NULL,"
    " data bytea NOT NULL,"
    " type_url text NOT NULL,"
    " updated_at timestamptz NOT NULL,"
    " PRIMARY KEY(system, name, revision));",
    /* 1 -> 2: the epoch table, seeded with the highest epoch version 1
     * fenced with, so a new epoch is above every one handed out before. */
    "CREATE TABLE IF NOT EXISTS spawn_actor_epoch("
    " system text COLLATE \"C\" NOT NULL,"
    " name text COLLATE \"C\" NOT NULL,"
    " epoch bigint NOT NULL,"
    " PRIMARY KEY(system, name));"
    "INSERT INTO spawn_actor_epoch AS e (system, name, epoch)"
    " SELECT system, name, max(epoch) FROM ("
    "  SELECT system, name, epoch FROM spawn_actor_state"
    "  UNION ALL SELECT system, name, epoch FROM spawn_actor_history) t"
    " WHERE epoch > 0 GROUP BY system, name"
    " ON CONFLICT (system, name) DO UPDATE SET epoch = greatest(e.epoch, excluded.epoch);",
    /* 2 -> 3: UNNAMED instances and scheduled invocations. The partial
     * indexes hold exactly what each claim scan looks for, so neither ever
     * walks pending rows that are not due (docs/schema.md). */
    "CREATE TABLE IF NOT EXISTS spawn_instance("
    " system text COLLATE \"C\" NOT NULL,"
    " name text COLLATE \"C\" NOT NULL,"
    " parent text COLLATE \"C\" NOT NULL,"
    " created_at timestamptz NOT NULL,"
    " PRIMARY KEY(system, name));"
    "CREATE TABLE IF NOT EXISTS spawn_schedule("
    " id text COLLATE \"C\" NOT NULL PRIMARY KEY,"
    " due_ms bigint NOT NULL,"
    " owner text COLLATE \"C\","
    " lease_until bigint,"
    " key_id text NOT NULL,"
    " nonce bytea NOT NULL,"
    " data bytea NOT NULL);"
    "CREATE INDEX IF NOT EXISTS spawn_schedule_due ON spawn_schedule(due_ms, id)"
    " WHERE owner IS NULL;"
    "CREATE INDEX IF NOT EXISTS spawn_schedule_lease ON spawn_schedule(lease_until)"
    " WHERE owner IS NOT NULL;",
    /* 3 -> 4: the effects flag of the latest row (existing rows: 0; a
     * constant default adds no row rewrite) and a partial index of the
     * flagged rows, so listing them reads only them. */
    "ALTER TABLE spawn_actor_state"
    " ADD COLUMN IF NOT EXISTS effects smallint NOT NULL DEFAULT 0;"
    "CREATE INDEX IF NOT EXISTS spawn_actor_state_effects ON spawn_actor_state(system, name)"
    " WHERE effects <> 0;",
};

typedef struct pg_conn {
	PGconn *c; /* owned; NULL: not connected */
	bool busy; /* under pg_drv.mu */
} pg_conn;

typedef struct pg_drv {
	char *url;   /* owned; carries the password: never logged */
	char *where; /* owned: "user@host:port/db" for messages */
	int history; /* older revisions kept per actor; 0 = none */
	int n;       /* pool size */
	pg_conn *pool;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a connection was released */
	bool sync_ok;      /* mu and cv initialised */
} pg_drv;

static void pg_close(void *drv);

/* ---- errors --------------------------------------------------------------- */

/* map_state maps a SQLSTATE to the error the caller sees. Retryable
 * conditions (connection, shutdown, lock or statement timeouts,
 * serialization failures and deadlocks) are GW_EUNAVAIL. */
static gw_err map_state(const char *state)
{
	if (!state || strlen(state) != 5)
		return GW_EIO;
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 ||
	    strcmp(state, "53300") == 0)
		return GW_EUNAVAIL;
	if (strcmp(state, "53200") == 0)
		return GW_ENOMEM;
	if (strncmp(state, "54", 2) == 0)
		return GW_ETOOBIG;
	if (strncmp(state, "22", 2) == 0) /* data exception: e.g. not UTF-8 */
		return GW_EINVAL;
	return GW_EIO;
}

/* trimmed copies a libpq message onto one log line: no trailing newline,
 * inner line breaks (connection errors carry hints) as "; ". */
static void trimmed(char *buf, size_t cap, const char *msg)
{
	size_t n = 0;
	if (!msg || !*msg)
		msg = "unknown error";
	for (const char *p = msg; *p && n + 3 < cap; p++) {
		if (*p != '\n') {
			buf[n++] = *p == '\t' ? ' ' : *p;
			continue;
		}
		while (p[1] == '\t' || p[1] == ' ' || p[1] == '\n')
			p++;
		if (p[1]) {
			buf[n++] = ';';
			buf[n++] = ' ';
		}
	}
	buf[n] = '\0';
}

/* conn_lost reports whether a failed command left pc without a usable
 * connection, so the caller drops it and the next call reconnects. */
static bool conn_lost(const pg_conn *pc, const PGresult *r)
{
	if (!pc->c || PQstatus(pc->c) == CONNECTION_BAD)
		return true;
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0);
}

/* fail logs a failed command and maps it; r may be NULL (libpq returns
 * NULL when it could not send or is out of memory). */
static gw_err fail(const pg_drv *d, const pg_conn *pc, const PGresult *r, const char *what)
{
	char msg[512];
	gw_err e;
	if (conn_lost(pc, r)) {
		e = GW_EUNAVAIL;
		trimmed(msg, sizeof msg,
		        r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r)
		                                      : PQerrorMessage(pc->c));
	} else if (!r) {
		e = GW_ENOMEM;
		trimmed(msg, sizeof msg, PQerrorMessage(pc->c));
	} else {
		e = map_state(PQresultErrorField(r, PG_DIAG_SQLSTATE));
		const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		trimmed(msg, sizeof msg, primary ? primary : PQresultErrorMessage(r));
	}
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	GW_ERROR("postgres %s: %.80s: %s (%s)", d->where, what, msg, state ? state : "-");
	return e;
}

/* ---- connections ------------------------------------------------------------ */

static void conn_drop(pg_conn *pc)
{
	PQfinish(pc->c);
	pc->c = NULL;
}

/* notice routes the server's notices to our log instead of libpq's
 * default (stderr): "relation already exists, skipping" is debug noise,
 * a WARNING or the FATAL a server sends before it closes a connection is
 * worth a line. */
static void notice(void *arg, const char *msg)
{
	const pg_drv *d = arg;
	char line[512];
	trimmed(line, sizeof line, msg);
	if (strncmp(line, "NOTICE", 6) == 0 || strncmp(line, "DEBUG", 5) == 0 ||
	    strncmp(line, "INFO", 4) == 0 || strncmp(line, "LOG", 3) == 0)
		GW_DEBUG("postgres %s: %s", d->where, line);
	else
		GW_WARN("postgres %s: %s", d->where, line);
}

/* conn_open connects pc (no statements prepared yet). On failure the
 * reason goes to why (never the password) and pc stays empty. */
static gw_err conn_open(pg_drv *d, pg_conn *pc, char *why, size_t whylen)
{
	/* Defaults first: the URL's own parameters, expanded from dbname,
	 * come later and win. */
	static const char *const keys[] = {
	    "connect_timeout",     "keepalives",       "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "tcp_user_timeout",
	    "application_name",    "dbname",           NULL};
	const char *vals[] = {"10", "1", "30", "10", "3", "30000", "spawn-gateway", d->url, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	gw_err e = GW_EUNAVAIL;
	if (!c) {
		snprintf(why, whylen, "out of memory");
		return GW_ENOMEM;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		trimmed(why, whylen, PQerrorMessage(c));
		goto fail;
	}
	PQsetNoticeProcessor(c, notice, d);
	/* Bound lock waits and statements, unless the URL (options=-c...), the
	 * role or the server already set a bound of its own. */
	PGresult *r = PQexec(c, "SELECT set_config('lock_timeout', '10s', false) "
	                        " WHERE current_setting('lock_timeout') = '0';"
	                        "SELECT set_config('statement_timeout', '60s', false) "
	                        " WHERE current_setting('statement_timeout') = '0'");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		trimmed(why, whylen, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		e = PQstatus(c) == CONNECTION_BAD || !r ? GW_EUNAVAIL : GW_EIO;
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	pc->c = c;
	return GW_OK;
fail:
	PQfinish(c);
	return e;
}

/* conn_prepare prepares every statement on a connected pc (they name the
 * tables, so open runs it after the migration). On failure pc is empty. */
static gw_err conn_prepare(pg_conn *pc, char *why, size_t whylen)
{
	PGconn *c = pc->c;
	gw_err e;
	for (int i = 0; i < ST_COUNT; i++) {
		PGresult *r =
		    PQprepare(c, stmts[i].name, stmts[i].sql, stmts[i].nparams, stmts[i].types);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			char msg[400];
			trimmed(msg, sizeof msg,
			        r && PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
			            ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
			            : PQerrorMessage(c));
			snprintf(why, whylen, "cannot prepare %s: %s", stmts[i].name, msg);
			e = PQstatus(c) == CONNECTION_BAD
			        ? GW_EUNAVAIL
			        : map_state(r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
			PQclear(r);
			goto fail;
		}
		PQclear(r);
	}
	return GW_OK;
fail:
	conn_drop(pc);
	return e;
}

/* conn_ready connects pc and prepares its statements. */
static gw_err conn_ready(pg_drv *d, pg_conn *pc, char *why, size_t whylen)
{
	gw_err e = conn_open(d, pc, why, whylen);
	return e == GW_OK ? conn_prepare(pc, why, whylen) : e;
}

/* conn_stale reports whether an idle connection was closed by the server:
 * an idle connection has nothing to read unless the server said goodbye
 * (a FATAL termination message, or EOF). */
static bool conn_stale(pg_conn *pc)
{
	if (PQstatus(pc->c) != CONNECTION_OK)
		return true;
	struct pollfd p = {.fd = PQsocket(pc->c), .events = POLLIN};
	if (p.fd < 0)
		return true;
	if (poll(&p, 1, 0) <= 0)
		return false;
	if (!PQconsumeInput(pc->c) || PQstatus(pc->c) != CONNECTION_OK)
		return true;
	/* Asynchronous notices are consumed; anything else is not expected. */
	PGnotify *n;
	while ((n = PQnotifies(pc->c)))
		PQfreemem(n);
	return PQisBusy(pc->c) != 0;
}

/* acquire takes a free connection for this thread, connecting it when it
 * is empty or stale. *fresh says it was just opened (nothing to retry). */
static gw_err acquire(pg_drv *d, pg_conn **out, bool *fresh)
{
	pg_conn *pc = NULL;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		/* Prefer a connected one: opening costs round trips. */
		for (int i = 0; i < d->n; i++) {
			if (!d->pool[i].busy && (d->pool[i].c || !pc))
				pc = &d->pool[i];
			if (pc && pc->c)
				break;
		}
		if (pc)
			break;
		pthread_cond_wait(&d->cv, &d->mu);
	}
	pc->busy = true;
	pthread_mutex_unlock(&d->mu);

	*fresh = false;
	if (pc->c && conn_stale(pc)) {
		GW_WARN("postgres %s: connection closed by the server; reconnecting", d->where);
		conn_drop(pc);
	}
	if (!pc->c) {
		char why[512];
		gw_err e = conn_ready(d, pc, why, sizeof why);
		if (e != GW_OK) {
			GW_ERROR("postgres %s: cannot connect: %s", d->where, why);
			pthread_mutex_lock(&d->mu);
			pc->busy = false;
			pthread_cond_signal(&d->cv);
			pthread_mutex_unlock(&d->mu);
			return e;
		}
		*fresh = true;
	}
	*out = pc;
	return GW_OK;
}

/* release returns pc to the pool, closing it when it broke or was left
 * inside a transaction (invariant 2). */
static void release(pg_drv *d, pg_conn *pc)
{
	if (pc->c &&
	    (PQstatus(pc->c) != CONNECTION_OK || PQtransactionStatus(pc->c) != PQTRANS_IDLE))
		conn_drop(pc);
	pthread_mutex_lock(&d->mu);
	pc->busy = false;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

/* ---- statements -------------------------------------------------------------- */

/* A statement's parameters: text unless len[i] >= 0 (binary bytea). */
typedef struct params {
	const char *v[10];
	int len[10];
	int fmt[10];
	char ints[4][24]; /* storage for integer parameters */
} params;

static void p_text(params *p, int i, const char *s)
{
	p->v[i] = s;
	p->len[i] = 0;
	p->fmt[i] = 0;
}

static void p_int(params *p, int i, int slot, uint64_t v)
{
	snprintf(p->ints[slot], sizeof p->ints[slot], "%llu", (unsigned long long)v);
	p_text(p, i, p->ints[slot]);
}

static void p_bytes(params *p, int i, const void *data, size_t len)
{
	/* A NULL value would be SQL NULL: an empty bytea still needs a pointer. */
	p->v[i] = len > 0 ? (const char *)data : "";
	p->len[i] = (int)len;
	p->fmt[i] = 1;
}

/* exec_st runs prepared statement id; results in binary format. */
static PGresult *exec_st(pg_conn *pc, int id, const params *p)
{
	return PQexecPrepared(pc->c, stmts[id].name, stmts[id].nparams, p->v, p->len, p->fmt, 1);
}

/* retry_first runs the first command of a call (id >= 0: a prepared
 * statement; else the plain command sql). When the connection turns out
 * dead and was not opened by this call, it reconnects once and runs the
 * command again (invariant 3). want is the success status. */
static gw_err retry_first(pg_drv *d, pg_conn *pc, bool fresh, int id, const char *sql,
                          const params *p, ExecStatusType want, PGresult **out)
{
	for (int attempt = 0;; attempt++) {
		PGresult *r = id >= 0 ? exec_st(pc, id, p) : PQexec(pc->c, sql);
		if (PQresultStatus(r) == want) {
			*out = r;
			return GW_OK;
		}
		if (!fresh && attempt == 0 && conn_lost(pc, r)) {
			PQclear(r);
			GW_WARN("postgres %s: connection lost; reconnecting", d->where);
			conn_drop(pc);
			char why[512];
			gw_err e = conn_ready(d, pc, why, sizeof why);
			if (e != GW_OK) {
				GW_ERROR("postgres %s: cannot connect: %s", d->where, why);
				return e;
			}
			continue;
		}
		gw_err e = fail(d, pc, r, id >= 0 ? stmts[id].name : sql);
		PQclear(r);
		return e;
	}
}

/* run runs a plain command and discards its result; want is the status
 * of success. */
static gw_err run(pg_drv *d, pg_conn *pc, const char *sql, ExecStatusType want)
{
	PGresult *r = PQexec(pc->c, sql);
	gw_err e = PQresultStatus(r) == want ? GW_OK : fail(d, pc, r, sql);
	PQclear(r);
	return e;
}

/* rollback ends a failed transaction; a connection that cannot is closed
 * by release (it is not idle). */
static void rollback(pg_drv *d, pg_conn *pc)
{
	if (pc->c && PQstatus(pc->c) == CONNECTION_OK && PQtransactionStatus(pc->c) != PQTRANS_IDLE)
		run(d, pc, "ROLLBACK", PGRES_COMMAND_OK);
}

static uint64_t be64(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | u[i];
	return v;
}

/* get_int8 reads a binary bigint column of row i; false when it is not one. */
static bool get_int8(const PGresult *r, int i, int col, uint64_t *v)
{
	if (PQgetisnull(r, i, col) || PQgetlength(r, i, col) != 8)
		return false;
	*v = be64(PQgetvalue(r, i, col));
	return true;
}

static char *dup_col(const PGresult *r, int i, int col)
{
	if (PQgetisnull(r, i, col))
		return NULL;
	return strndup(PQgetvalue(r, i, col), (size_t)PQgetlength(r, i, col));
}

/* ---- open / close ---------------------------------------------------------- */

/* redact copies url with every password (the userinfo's, a password=
 * parameter's) replaced by "xxxxx". Caller frees; NULL: no memory. */
static char *redact(const char *url)
{
	size_t n = strlen(url);
	char *out = malloc(n + 64), *o = out;
	if (!out)
		return NULL;
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t auth = strcspn(p, "/?");
	const char *at = NULL, *colon = NULL;
	for (const char *q = p; q < p + auth; q++)
		if (*q == '@')
			at = q;
	if (at)
		colon = memchr(p, ':', (size_t)(at - p));
	if (colon) {
		memcpy(o, url, (size_t)(colon + 1 - url));
		o += colon + 1 - url;
		o += sprintf(o, "xxxxx");
		url = at;
	}
	/* At most a few password= parameters fit the 64 spare bytes. */
	int budget = 10;
	while (*url) {
		if ((url[0] == '?' || url[0] == '&') && strncmp(url + 1, "password=", 9) == 0 &&
		    budget-- > 0) {
			memcpy(o, url, 10);
			o += 10;
			o += sprintf(o, "xxxxx");
			url += 10 + strcspn(url + 10, "&");
			continue;
		}
		*o++ = *url++;
	}
	*o = '\0';
	return out;
}

/* describe builds "user@host:port/db" from the URL, without the password.
 * libpq's parse errors may quote a malformed value verbatim, so the reason
 * shown comes from parsing a redacted copy. */
static gw_err describe(const char *url, const gw_store_opts *opts, char **out)
{
	char *err = NULL, *safe = redact(url);
	if (!safe)
		return GW_ENOMEM;
	PQconninfoOption *o = PQconninfoParse(safe, &err);
	free(safe);
	if (!o) {
		char msg[400];
		trimmed(msg, sizeof msg, err ? err : "out of memory");
		gwi_store_errf(opts, "bad postgres URL: %s", msg);
		PQfreemem(err);
		return err ? GW_ECONFIG : GW_ENOMEM;
	}
	PQconninfoFree(o);
	if (!(o = PQconninfoParse(url, &err))) {
		gwi_store_errf(opts, "bad postgres URL: the password is not valid "
		                     "percent-encoding");
		bool nomem = !err;
		PQfreemem(err);
		return nomem ? GW_ENOMEM : GW_ECONFIG;
	}
	const char *user = "", *host = "localhost", *port = "5432", *db = "";
	for (PQconninfoOption *i = o; i->keyword; i++) {
		if (!i->val)
			continue;
		if (strcmp(i->keyword, "user") == 0)
			user = i->val;
		else if (strcmp(i->keyword, "host") == 0 || strcmp(i->keyword, "hostaddr") == 0)
			host = i->val;
		else if (strcmp(i->keyword, "port") == 0)
			port = i->val;
		else if (strcmp(i->keyword, "dbname") == 0)
			db = i->val;
	}
	size_t n = strlen(user) + strlen(host) + strlen(port) + strlen(db) + 4;
	*out = malloc(n);
	if (*out)
		snprintf(*out, n, "%s%s%s:%s/%s", user, *user ? "@" : "", host, port, db);
	PQconninfoFree(o);
	return *out ? GW_OK : GW_ENOMEM;
}

/* migrate brings the schema to SCHEMA_VERSION under the advisory lock, or
 * refuses a newer one. */
static gw_err migrate(pg_drv *d, pg_conn *pc, const gw_store_opts *opts)
{
	PGresult *r = NULL;
	gw_err e;
	bool told = false; /* the reason already went to gwi_store_errf */
	const char *step = "begin";
	long long v = 0;
	if ((e = run(d, pc, "BEGIN", PGRES_COMMAND_OK)) != GW_OK)
		goto fail;
	step = "lock";
	if ((e = run(d, pc, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")",
	             PGRES_TUPLES_OK)) != GW_OK)
		goto fail;
	/* Two queries: a query naming a missing table fails at parse time. */
	step = "read the version of";
	r = PQexec(pc->c, "SELECT to_regclass('spawn_meta') IS NOT NULL");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		e = fail(d, pc, r, step);
		goto fail;
	}
	bool have_meta = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	r = NULL;
	if (have_meta) {
		r = PQexec(pc->c, "SELECT convert_from(value, 'UTF8') FROM spawn_meta "
		                  "WHERE name = 'schema_version'");
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			e = fail(d, pc, r, step);
			goto fail;
		}
		if (PQntuples(r) == 1) {
			const char *txt = PQgetvalue(r, 0, 0);
			char *end = NULL;
			v = strtoll(txt, &end, 10);
			if (end == txt || *end || v < 1) {
				gwi_store_errf(
				    opts,
				    "postgres %s: spawn_meta.schema_version is '%.32s', not "
				    "a version",
				    d->where, txt);
				told = true;
				e = GW_ECORRUPT;
				goto fail;
			}
		}
		PQclear(r);
		r = NULL;
	}
	if (v > SCHEMA_VERSION) {
		gwi_store_errf(opts,
		               "postgres %s has schema version %lld; this gateway knows version %d",
		               d->where, v, SCHEMA_VERSION);
		told = true;
		e = GW_ECONFIG;
		goto fail;
	}
	if (v < SCHEMA_VERSION) {
		step = "migrate";
		for (long long s = v; s < SCHEMA_VERSION; s++)
			if ((e = run(d, pc, migrations[s], PGRES_COMMAND_OK)) != GW_OK)
				goto fail;
		char ver[24];
		snprintf(ver, sizeof ver, "%d", SCHEMA_VERSION);
		params p;
		p_text(&p, 0, "schema_version");
		p_bytes(&p, 1, ver, strlen(ver));
		step = "record the version of";
		r = PQexecParams(pc->c, stmts[ST_META_PUT].sql, 2, stmts[ST_META_PUT].types, p.v,
		                 p.len, p.fmt, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			e = fail(d, pc, r, step);
			goto fail;
		}
		PQclear(r);
		r = NULL;
	}
	step = "commit";
	if ((e = run(d, pc, "COMMIT", PGRES_COMMAND_OK)) != GW_OK)
		goto fail;
	if (v < SCHEMA_VERSION)
		GW_INFO("postgres %s: schema version %lld -> %d", d->where, v, SCHEMA_VERSION);
	return GW_OK;
fail:
	PQclear(r);
	if (!told)
		gwi_store_errf(opts, "postgres %s: cannot %s the schema: %s (see the log)",
		               d->where, step, gw_strerror(e));
	rollback(d, pc);
	return e;
}

static gw_err open_as(const char *url, const gw_store_opts *opts, void **drv)
{
	pg_drv *d = NULL;
	gw_err e;
	int pool = opts && opts->pool_size > 0 ? opts->pool_size : POOL_DEFAULT;
	int history = opts ? opts->history : 0;
	if ((opts && opts->pool_size < 0) || pool > POOL_MAX) {
		gwi_store_errf(opts, "postgres: pool_size %d is outside 1..%d", pool, POOL_MAX);
		return GW_ECONFIG;
	}
	if (history < 0 || history > HISTORY_MAX) {
		gwi_store_errf(opts, "postgres: history %d is outside 0..%d", history, HISTORY_MAX);
		return GW_ECONFIG;
	}
	d = calloc(1, sizeof *d);
	if (!d)
		return GW_ENOMEM;
	d->history = history;
	d->n = pool;
	if ((e = describe(url, opts, &d->where)) != GW_OK)
		goto fail;
	d->url = strdup(url);
	d->pool = calloc((size_t)pool, sizeof *d->pool);
	if (!d->url || !d->pool) {
		e = GW_ENOMEM;
		goto fail;
	}
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
	/* One connection now: it proves the URL and runs the migration. */
	char why[512];
	if ((e = conn_open(d, &d->pool[0], why, sizeof why)) != GW_OK) {
		gwi_store_errf(opts, "cannot connect to postgres %s: %s", d->where, why);
		goto fail;
	}
	if ((e = migrate(d, &d->pool[0], opts)) != GW_OK)
		goto fail;
	if ((e = conn_prepare(&d->pool[0], why, sizeof why)) != GW_OK) {
		gwi_store_errf(opts, "postgres %s: %s", d->where, why);
		goto fail;
	}
	*drv = d;
	return GW_OK;
fail:
	pg_close(d);
	return e;
}

static gw_err pg_open(const char *url, const gw_store_opts *opts, void **drv)
{
	if (strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0) {
		gwi_store_errf(opts, "not a postgres URL (expected postgres://user:password@host:"
		                     "port/db?sslmode=...)");
		return GW_ECONFIG;
	}
	return open_as(url, opts, drv);
}

static void pg_close(void *drv)
{
	pg_drv *d = drv;
	if (!d)
		return;
	for (int i = 0; d->pool && i < d->n; i++)
		if (d->pool[i].c)
			conn_drop(&d->pool[i]);
	if (d->sync_ok) {
		pthread_cond_destroy(&d->cv);
		pthread_mutex_destroy(&d->mu);
	}
	free(d->pool);
	if (d->url) /* the password does not outlive the store in our heap */
		memset(d->url, 0, strlen(d->url));
	free(d->url);
	free(d->where);
	free(d);
}

static const char *pg_path(void *drv)
{
	return NULL; /* networked: the key must be given */
}

/* ---- rows ------------------------------------------------------------------ */

/* read_row copies the row columns (ROW_COLS, from column c) of result row i
 * into *out (owned fields). lenient (rotation scans): a bad revision or
 * epoch is taken as it is and a nonce of the wrong size is zero-padded,
 * instead of refusing the row: it then fails to open and is counted,
 * rather than stopping the rotation. out->key is left to the caller. */
static gw_err read_row(const PGresult *r, int i, int c, bool lenient, gw_row *out)
{
	uint64_t rev = 0, epoch = 0;
	bool ints = get_int8(r, i, c, &rev) && get_int8(r, i, c + 1, &epoch);
	int nlen = PQgetisnull(r, i, c + 3) ? -1 : PQgetlength(r, i, c + 3);
	if ((!lenient && (!ints || rev < 1 || rev > GWI_STORE_MAX_INT ||
	                  epoch > GWI_STORE_MAX_INT || nlen != (int)sizeof out->nonce)) ||
	    PQgetisnull(r, i, c + 2) || PQgetisnull(r, i, c + 4) || PQgetisnull(r, i, c + 5))
		return GW_ECORRUPT;
	size_t len = (size_t)PQgetlength(r, i, c + 4);
	char *key_id = dup_col(r, i, c + 2), *type_url = dup_col(r, i, c + 5);
	uint8_t *data = malloc(len > 0 ? len : 1);
	if (!key_id || !type_url || !data) {
		free(key_id);
		free(type_url);
		free(data);
		return GW_ENOMEM;
	}
	memcpy(data, PQgetvalue(r, i, c + 4), len);
	out->revision = rev;
	out->expected = 0;
	out->epoch = epoch;
	out->key_id = key_id;
	memset(out->nonce, 0, sizeof out->nonce);
	if (nlen > 0)
		memcpy(out->nonce, PQgetvalue(r, i, c + 3),
		       (size_t)nlen < sizeof out->nonce ? (size_t)nlen : sizeof out->nonce);
	out->data = data;
	out->len = len;
	out->type_url = type_url;
	return GW_OK;
}

/* load_one runs a single-row query (id, parameters p) for k. */
static gw_err load_one(pg_drv *d, int id, const params *p, const gw_actor_key *k, gw_row *out)
{
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	if ((e = retry_first(d, pc, fresh, id, NULL, p, PGRES_TUPLES_OK, &r)) != GW_OK)
		goto out;
	if (PQntuples(r) == 0) {
		e = GW_ENOTFOUND;
		goto out;
	}
	if ((e = read_row(r, 0, 0, false, out)) == GW_OK)
		out->key = *k;
	else if (e == GW_ECORRUPT)
		GW_ERROR("postgres %s: row %s/%s is malformed", d->where, k->system, k->name);
out:
	PQclear(r);
	release(d, pc);
	return e;
}

static gw_err pg_load(void *drv, const gw_actor_key *k, gw_row *out)
{
	params p;
	p_text(&p, 0, k->system);
	p_text(&p, 1, k->name);
	return load_one(drv, ST_LOAD, &p, k, out);
}

static gw_err pg_load_revision(void *drv, const gw_actor_key *k, uint64_t revision, gw_row *out)
{
	params p;
	p_text(&p, 0, k->system);
	p_text(&p, 1, k->name);
	p_int(&p, 2, 0, revision);
	return load_one(drv, ST_LOAD_REV, &p, k, out);
}

static gw_err pg_list_revisions(void *drv, const gw_actor_key *k, uint64_t *revs, size_t cap,
                                size_t *n)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, k->system);
	p_text(&p, 1, k->name);
	p_int(&p, 2, 0, cap > GWI_STORE_MAX_INT ? GWI_STORE_MAX_INT : cap);
	if ((e = retry_first(d, pc, fresh, ST_LIST, NULL, &p, PGRES_TUPLES_OK, &r)) != GW_OK)
		goto out;
	size_t got = 0;
	for (int i = 0; i < PQntuples(r) && got < cap; i++) {
		if (!get_int8(r, i, 0, &revs[got])) {
			e = GW_ECORRUPT;
			goto out;
		}
		got++;
	}
	*n = got;
out:
	PQclear(r);
	release(d, pc);
	return e;
}

static gw_err pg_acquire(void *drv, const gw_actor_key *k, uint64_t *epoch)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, k->system);
	p_text(&p, 1, k->name);
	/* Autocommit: the new epoch is committed when the call returns. */
	if ((e = retry_first(d, pc, fresh, ST_ACQUIRE, NULL, &p, PGRES_TUPLES_OK, &r)) == GW_OK &&
	    (PQntuples(r) != 1 || !get_int8(r, 0, 0, epoch)))
		e = GW_ECORRUPT;
	PQclear(r);
	release(d, pc);
	return e;
}

/* row_params fills $1..$8 of a write, and $9 = extra. */
static void row_params(params *p, const gw_row *row, uint64_t extra)
{
	p_text(p, 0, row->key.system);
	p_text(p, 1, row->key.name);
	p_int(p, 2, 0, row->revision);
	p_int(p, 3, 1, row->epoch);
	p_text(p, 4, row->key_id);
	p_bytes(p, 5, row->nonce, sizeof row->nonce);
	p_bytes(p, 6, row->data, row->len);
	p_text(p, 7, row->type_url);
	p_int(p, 8, 2, extra);
}

/* fence reads the actor's current epoch FOR SHARE inside the open
 * transaction: *fenced unless it is row->epoch (no row: current 0). */
static gw_err fence(pg_drv *d, pg_conn *pc, const gw_row *row, bool *fenced)
{
	params p;
	p_text(&p, 0, row->key.system);
	p_text(&p, 1, row->key.name);
	PGresult *r = exec_st(pc, ST_FENCE, &p);
	gw_err e = GW_OK;
	uint64_t epoch;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		e = fail(d, pc, r, "save (fence)");
	else if (PQntuples(r) == 0)
		*fenced = true;
	else if (get_int8(r, 0, 0, &epoch))
		*fenced = epoch != row->epoch;
	else
		e = GW_ECORRUPT;
	PQclear(r);
	return e;
}

/* save_row runs one fenced, conditional write inside the open transaction.
 * The return value is a batch-level error; *result the row's outcome. */
static gw_err save_row(pg_drv *d, pg_conn *pc, const gw_row *row, gw_err *result)
{
	params p;
	gw_err e;
	if (row->epoch != 0) {
		bool fenced = false;
		if ((e = fence(d, pc, row, &fenced)) != GW_OK)
			return e;
		if (fenced) {
			*result = GW_EFENCED;
			return GW_OK;
		}
	}
	row_params(&p, row, row->expected);
	if (row->expected == 0)
		p_int(&p, 8, 2, (uint64_t)row->effects); /* INSERT: $9 */
	else
		p_int(&p, 9, 3, (uint64_t)row->effects); /* UPDATE: $10 */
	PGresult *r = exec_st(pc, row->expected == 0 ? ST_INSERT : ST_UPDATE, &p);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		e = fail(d, pc, r, "save");
		PQclear(r);
		return e;
	}
	bool changed = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	if (!changed) {
		*result = GW_ECONFLICT;
		return GW_OK;
	}
	if (d->history > 0) {
		/* Keep revisions (new - history) .. new. */
		uint64_t keep =
		    row->revision > (uint64_t)d->history ? row->revision - (uint64_t)d->history : 0;
		row_params(&p, row, keep);
		r = exec_st(pc, ST_HIST_PUT, &p);
		e = PQresultStatus(r) == PGRES_COMMAND_OK ? GW_OK
		                                          : fail(d, pc, r, "save (history)");
		PQclear(r);
		if (e != GW_OK)
			return e;
	}
	*result = GW_OK;
	return GW_OK;
}

static gw_err pg_save_batch(void *drv, const gw_row *rows, size_t n, gw_err *results)
{
	pg_drv *d = drv;
	pg_conn *pc = NULL;
	bool fresh;
	PGresult *r = NULL;
	if (n == 0)
		return GW_OK;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		goto fail;
	if ((e = retry_first(d, pc, fresh, -1, "BEGIN", NULL, PGRES_COMMAND_OK, &r)) != GW_OK)
		goto fail;
	PQclear(r);
	for (size_t i = 0; i < n; i++)
		if ((e = save_row(d, pc, &rows[i], &results[i])) != GW_OK)
			goto fail;
	if ((e = run(d, pc, "COMMIT", PGRES_COMMAND_OK)) != GW_OK)
		goto fail;
	release(d, pc);
	return GW_OK;
fail:
	if (pc) {
		rollback(d, pc);
		release(d, pc);
	}
	for (size_t i = 0; i < n; i++)
		results[i] = e;
	return e;
}

static gw_err pg_remove(void *drv, const gw_actor_key *k)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, k->system);
	p_text(&p, 1, k->name);
	e = retry_first(d, pc, fresh, ST_REMOVE, NULL, &p, PGRES_COMMAND_OK, &r);
	PQclear(r);
	release(d, pc);
	return e;
}

/* ---- rotation ---------------------------------------------------------------- */

static gw_err pg_rot_count(void *drv, const char *primary, uint64_t *n)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, primary);
	if ((e = retry_first(d, pc, fresh, ST_ROT_COUNT, NULL, &p, PGRES_TUPLES_OK, &r)) == GW_OK &&
	    (PQntuples(r) != 1 || !get_int8(r, 0, 0, n)))
		e = GW_ECORRUPT;
	PQclear(r);
	release(d, pc);
	return e;
}

static gw_err pg_rot_scan(void *drv, const gw_rot_cursor *after, const char *primary, gw_row *rows,
                          size_t max, size_t *n)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	bool hist = after->table == GW_ROT_HISTORY;
	size_t got = 0;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, primary);
	p_text(&p, 1, after->key.system);
	p_text(&p, 2, after->key.name);
	if (hist)
		p_int(&p, 3, 0, after->revision);
	p_int(&p, hist ? 4 : 3, 1, max);
	if ((e = retry_first(d, pc, fresh, hist ? ST_ROT_SCAN_HIST : ST_ROT_SCAN_STATE, NULL, &p,
	                     PGRES_TUPLES_OK, &r)) != GW_OK)
		goto out;
	for (int i = 0; i < PQntuples(r) && got < max; i++) {
		gw_row *row = &rows[got];
		char *sys = dup_col(r, i, 0), *name = dup_col(r, i, 1);
		e = sys && name ? read_row(r, i, 2, true, row) : GW_ENOMEM;
		if (e != GW_OK) {
			free(sys);
			free(name);
			goto out;
		}
		row->key.system = sys;
		row->key.name = name;
		got++;
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
	PQclear(r);
	release(d, pc);
	return e;
}

static gw_err pg_rot_rewrite(void *drv, int table, const gw_rewrite *rows, size_t n,
                             gw_err *results)
{
	pg_drv *d = drv;
	pg_conn *pc = NULL;
	bool fresh;
	PGresult *r = NULL;
	int id = table == GW_ROT_HISTORY ? ST_ROT_WRITE_HIST : ST_ROT_WRITE_STATE;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		goto fail;
	if ((e = retry_first(d, pc, fresh, -1, "BEGIN", NULL, PGRES_COMMAND_OK, &r)) != GW_OK)
		goto fail;
	PQclear(r);
	for (size_t i = 0; i < n; i++) {
		const gw_rewrite *w = &rows[i];
		params p;
		p_text(&p, 0, w->key.system);
		p_text(&p, 1, w->key.name);
		p_int(&p, 2, 0, w->revision);
		p_text(&p, 3, w->key_id);
		p_bytes(&p, 4, w->nonce, sizeof w->nonce);
		p_bytes(&p, 5, w->data, w->len);
		p_text(&p, 6, w->old_key_id);
		p_bytes(&p, 7, w->old_nonce, sizeof w->old_nonce);
		r = exec_st(pc, id, &p);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			e = fail(d, pc, r, "rotation rewrite");
			PQclear(r);
			goto fail;
		}
		results[i] = strcmp(PQcmdTuples(r), "1") == 0 ? GW_OK : GW_ECONFLICT;
		PQclear(r);
	}
	if ((e = run(d, pc, "COMMIT", PGRES_COMMAND_OK)) != GW_OK)
		goto fail;
	release(d, pc);
	return GW_OK;
fail:
	if (pc) {
		rollback(d, pc);
		release(d, pc);
	}
	for (size_t i = 0; i < n; i++)
		results[i] = e;
	return e;
}

/* ---- meta -------------------------------------------------------------------- */

static gw_err pg_meta_get(void *drv, const char *name, uint8_t **val, size_t *len)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, name);
	if ((e = retry_first(d, pc, fresh, ST_META_GET, NULL, &p, PGRES_TUPLES_OK, &r)) != GW_OK)
		goto out;
	if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0)) {
		e = GW_ENOTFOUND;
		goto out;
	}
	size_t n = (size_t)PQgetlength(r, 0, 0);
	uint8_t *v = malloc(n > 0 ? n : 1);
	if (!v) {
		e = GW_ENOMEM;
		goto out;
	}
	memcpy(v, PQgetvalue(r, 0, 0), n);
	*val = v;
	*len = n;
out:
	PQclear(r);
	release(d, pc);
	return e;
}

static gw_err pg_meta_put(void *drv, const char *name, const uint8_t *val, size_t len)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, name);
	p_bytes(&p, 1, val, len);
	e = retry_first(d, pc, fresh, ST_META_PUT, NULL, &p, PGRES_COMMAND_OK, &r);
	PQclear(r);
	release(d, pc);
	return e;
}

static gw_err pg_meta_create(void *drv, const char *name, const uint8_t *val, size_t len)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, name);
	p_bytes(&p, 1, val, len);
	e = retry_first(d, pc, fresh, ST_META_CREATE, NULL, &p, PGRES_COMMAND_OK, &r);
	if (e == GW_OK && strcmp(PQcmdTuples(r), "1") != 0)
		e = GW_ECONFLICT;
	PQclear(r);
	release(d, pc);
	return e;
}

/* ---- UNNAMED instances -------------------------------------------------------- */

static gw_err pg_instance_get(void *drv, const gw_actor_key *k, char **parent)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, k->system);
	p_text(&p, 1, k->name);
	if ((e = retry_first(d, pc, fresh, ST_INST_GET, NULL, &p, PGRES_TUPLES_OK, &r)) != GW_OK)
		goto out;
	if (PQntuples(r) == 0)
		e = GW_ENOTFOUND;
	else if (PQgetisnull(r, 0, 0))
		e = GW_ECORRUPT;
	else if (!(*parent = dup_col(r, 0, 0)))
		e = GW_ENOMEM;
out:
	PQclear(r);
	release(d, pc);
	return e;
}

static gw_err pg_instance_put(void *drv, const gw_actor_key *k, const char *parent)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, k->system);
	p_text(&p, 1, k->name);
	p_text(&p, 2, parent);
	/* Autocommit. A concurrent uncommitted insert of k makes this wait,
	 * then do nothing; the read below then sees the winner's row. */
	e = retry_first(d, pc, fresh, ST_INST_PUT, NULL, &p, PGRES_COMMAND_OK, &r);
	bool inserted = e == GW_OK && strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	release(d, pc);
	if (e != GW_OK || inserted)
		return e;
	char *have = NULL;
	if ((e = pg_instance_get(d, k, &have)) != GW_OK)
		return e == GW_ENOTFOUND ? GW_EIO : e;
	e = strcmp(have, parent) == 0 ? GW_OK : GW_ECONFLICT;
	free(have);
	return e;
}

/* ---- scheduled invocations ------------------------------------------------------- */

static gw_err pg_sched_put(void *drv, const gw_sched_row *row)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, row->id);
	p_int(&p, 1, 0, (uint64_t)row->due_ms);
	p_text(&p, 2, row->key_id);
	p_bytes(&p, 3, row->nonce, sizeof row->nonce);
	p_bytes(&p, 4, row->data, row->len);
	e = retry_first(d, pc, fresh, ST_SCHED_PUT, NULL, &p, PGRES_COMMAND_OK, &r);
	if (e == GW_OK && strcmp(PQcmdTuples(r), "1") != 0)
		e = GW_ECONFLICT;
	PQclear(r);
	release(d, pc);
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
static gw_err sched_scan(pg_drv *d, pg_conn *pc, int id, int64_t now, size_t max,
                         gw_sched_row *rows, size_t *n)
{
	params p;
	p_int(&p, 0, 0, (uint64_t)now);
	p_int(&p, 1, 1, max);
	PGresult *r = exec_st(pc, id, &p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		gw_err e = fail(d, pc, r, "schedule claim (scan)");
		PQclear(r);
		return e;
	}
	size_t got = 0;
	for (int i = 0; i < PQntuples(r) && got < max; i++) {
		gw_sched_row *row = &rows[*n + got];
		uint64_t due = 0;
		int idlen = PQgetlength(r, i, 0);
		if (PQgetisnull(r, i, 0) || idlen <= 0 || idlen >= (int)sizeof row->id ||
		    !get_int8(r, i, 1, &due) || PQgetisnull(r, i, 2) || PQgetisnull(r, i, 4)) {
			GW_ERROR("postgres %s: a scheduled invocation row is malformed: skipped",
			         d->where);
			continue;
		}
		memset(row, 0, sizeof *row);
		memcpy(row->id, PQgetvalue(r, i, 0), (size_t)idlen);
		row->due_ms = (int64_t)due;
		size_t len = (size_t)PQgetlength(r, i, 4);
		char *key_id = dup_col(r, i, 2);
		uint8_t *data = malloc(len > 0 ? len : 1);
		if (!key_id || !data) {
			free(key_id);
			free(data);
			sched_rows_fini(rows + *n, got);
			PQclear(r);
			return GW_ENOMEM;
		}
		memcpy(data, PQgetvalue(r, i, 4), len);
		int nlen = PQgetisnull(r, i, 3) ? 0 : PQgetlength(r, i, 3);
		memcpy(row->nonce, PQgetvalue(r, i, 3),
		       (size_t)nlen < sizeof row->nonce ? (size_t)nlen : sizeof row->nonce);
		row->key_id = key_id;
		row->data = data;
		row->len = len;
		got++;
	}
	PQclear(r);
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

/* id_array writes the text[] literal {"id1","id2",...} of ids[0..n). Ids
 * are [A-Za-z0-9_.:-] of at most GW_SCHED_ID_MAX bytes
 * (store.c checks at put and at done): quoting each is enough. */
static char *id_array(const char *const *ids, size_t n)
{
	size_t cap = 3 + n * (GW_SCHED_ID_MAX + 3), off = 0;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	s[off++] = '{';
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s\"%.*s\"", i ? "," : "",
		                        GW_SCHED_ID_MAX, ids[i]);
	snprintf(s + off, cap - off, "}");
	return s;
}

static gw_err pg_sched_claim(void *drv, int64_t now, const char *owner, int64_t lease_until,
                             size_t max, gw_sched_row *rows, size_t *n)
{
	pg_drv *d = drv;
	pg_conn *pc = NULL;
	bool fresh;
	PGresult *r = NULL;
	char *ids = NULL;
	size_t got = 0, take = 0;
	gw_sched_row *tmp = calloc(max * 2, sizeof *tmp);
	gw_err e = GW_ENOMEM;
	if (!tmp)
		goto fail;
	if ((e = acquire(d, &pc, &fresh)) != GW_OK)
		goto fail;
	if ((e = retry_first(d, pc, fresh, -1, "BEGIN", NULL, PGRES_COMMAND_OK, &r)) != GW_OK)
		goto fail;
	PQclear(r);
	r = NULL;
	if ((e = sched_scan(d, pc, ST_SCHED_FREE, now, max, tmp, &got)) != GW_OK ||
	    (e = sched_scan(d, pc, ST_SCHED_EXPIRED, now, max, tmp, &got)) != GW_OK)
		goto fail;
	qsort(tmp, got, sizeof *tmp, sched_cmp);
	take = got < max ? got : max;
	if (take > 0) {
		/* Rows locked but not taken are released at COMMIT. */
		const char **idv = malloc(take * sizeof *idv);
		for (size_t i = 0; idv && i < take; i++)
			idv[i] = tmp[i].id;
		ids = idv ? id_array(idv, take) : NULL;
		free(idv);
		if (!ids) {
			e = GW_ENOMEM;
			goto fail;
		}
		params p;
		p_text(&p, 0, ids);
		p_text(&p, 1, owner);
		p_int(&p, 2, 0, (uint64_t)lease_until);
		r = exec_st(pc, ST_SCHED_LEASE, &p);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			e = fail(d, pc, r, "schedule claim (lease)");
			goto fail;
		}
		PQclear(r);
		r = NULL;
	}
	if ((e = run(d, pc, "COMMIT", PGRES_COMMAND_OK)) != GW_OK)
		goto fail;
	release(d, pc);
	free(ids);
	memcpy(rows, tmp, take * sizeof *tmp);
	sched_rows_fini(tmp + take, got - take);
	free(tmp);
	*n = take;
	return GW_OK;
fail:
	PQclear(r);
	if (pc) {
		rollback(d, pc);
		release(d, pc);
	}
	free(ids);
	if (tmp)
		sched_rows_fini(tmp, got);
	free(tmp);
	return e;
}

/* sched_by_id runs statement id with $1 = the row id, or the text[] of
 * ids (autocommit). */
static gw_err sched_by_id(pg_drv *d, int id, const char *row_id)
{
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, row_id);
	e = retry_first(d, pc, fresh, id, NULL, &p, PGRES_COMMAND_OK, &r);
	PQclear(r);
	release(d, pc);
	return e;
}

static gw_err pg_sched_set_aside(void *drv, const char *id)
{
	return sched_by_id(drv, ST_SCHED_ASIDE, id);
}

static gw_err pg_sched_done(void *drv, const char *id)
{
	return sched_by_id(drv, ST_SCHED_DONE, id);
}

static gw_err pg_sched_done_batch(void *drv, const char *const *ids, size_t n)
{
	char *arr = id_array(ids, n);
	if (!arr)
		return GW_ENOMEM;
	gw_err e = sched_by_id(drv, ST_SCHED_DONE_BATCH, arr);
	free(arr);
	return e;
}

static gw_err pg_sched_next_due(void *drv, int64_t *due_ms)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	if ((e = retry_first(d, pc, fresh, ST_SCHED_NEXT, NULL, &p, PGRES_TUPLES_OK, &r)) != GW_OK)
		goto out;
	e = GW_ENOTFOUND;
	for (int c = 0; c < 2 && PQntuples(r) == 1; c++) {
		uint64_t v;
		if (PQgetisnull(r, 0, c))
			continue;
		if (!get_int8(r, 0, c, &v)) {
			e = GW_ECORRUPT;
			break;
		}
		if (e == GW_ENOTFOUND || (int64_t)v < *due_ms)
			*due_ms = (int64_t)v;
		e = GW_OK;
	}
out:
	PQclear(r);
	release(d, pc);
	return e;
}

static gw_err pg_sched_count(void *drv, uint64_t *n)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	if ((e = retry_first(d, pc, fresh, ST_SCHED_COUNT, NULL, &p, PGRES_TUPLES_OK, &r)) ==
	        GW_OK &&
	    (PQntuples(r) != 1 || !get_int8(r, 0, 0, n)))
		e = GW_ECORRUPT;
	PQclear(r);
	release(d, pc);
	return e;
}

/* ---- undelivered side effects ------------------------------------------------------ */

static gw_err pg_effects_list(void *drv, const gw_actor_key *after, size_t max, gw_actor_key *out,
                              size_t *n)
{
	pg_drv *d = drv;
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	size_t got = 0;
	gw_err e = acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	params p;
	p_text(&p, 0, after->system);
	p_text(&p, 1, after->name);
	p_int(&p, 2, 0, max > GWI_STORE_MAX_INT ? GWI_STORE_MAX_INT : max);
	if ((e = retry_first(d, pc, fresh, ST_EFFECTS_LIST, NULL, &p, PGRES_TUPLES_OK, &r)) !=
	    GW_OK)
		goto out;
	for (int i = 0; i < PQntuples(r) && got < max; i++) {
		char *sys = dup_col(r, i, 0), *name = dup_col(r, i, 1);
		if (!sys || !name) {
			free(sys);
			free(name);
			gw_keys_fini(out, got);
			e = GW_ENOMEM;
			goto out;
		}
		out[got].system = sys;
		out[got].name = name;
		got++;
	}
	*n = got;
out:
	PQclear(r);
	release(d, pc);
	return e;
}

/* Two tables, one per URL scheme libpq accepts; gw_store_scheme() names the
 * one the URL used. */
#define PG_OPS(sch)                                                                                \
	{                                                                                          \
		.version = GW_STORE_OPS_VERSION, .scheme = sch, .open = pg_open, .load = pg_load,  \
		.save_batch = pg_save_batch, .remove = pg_remove, .meta_get = pg_meta_get,         \
		.meta_put = pg_meta_put, .path = pg_path, .close = pg_close,                       \
		.acquire = pg_acquire, .load_revision = pg_load_revision,                          \
		.list_revisions = pg_list_revisions, .meta_create = pg_meta_create,                \
		.rot_count = pg_rot_count, .rot_scan = pg_rot_scan, .rot_rewrite = pg_rot_rewrite, \
		.instance_put = pg_instance_put, .instance_get = pg_instance_get,                  \
		.sched_put = pg_sched_put, .sched_claim = pg_sched_claim,                          \
		.sched_set_aside = pg_sched_set_aside, .sched_done = pg_sched_done,                \
		.sched_next_due = pg_sched_next_due, .sched_count = pg_sched_count,                \
		.sched_done_batch = pg_sched_done_batch, .effects_list = pg_effects_list,          \
	}

const gw_store_ops gw_postgres_ops = PG_OPS("postgres");
const gw_store_ops gw_postgresql_ops = PG_OPS("postgresql");
