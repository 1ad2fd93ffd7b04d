/* postgres.c - the PostgreSQL statestore driver (libpq): open, close, the
 * schema and its migrations, spawn_meta, and the ops tables. The rest is in
 * postgres_conn.c, postgres_rows.c and postgres_sched.c (postgres_int.h).
 *
 * URLs:  postgres://user:password@host:port/db?sslmode=require
 *        postgresql://...   (libpq parses the URI: every libpq URI
 *        parameter works, e.g. sslrootcert, options=-csearch_path%3Dx)
 *
 * Schema (version 6; docs/schema.md): spawn_meta, spawn_actor_state,
 * spawn_actor_history, spawn_actor_epoch, spawn_instance, spawn_schedule
 * and spawn_members (the cluster's membership, docs/design/cluster.md)
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
 * save_batch, inside BEGIN ... COMMIT (READ COMMITTED), per row:
 *   epoch != 0     SELECT epoch FROM spawn_actor_epoch ... FOR SHARE:
 *                  not ours (or no row) -> EFENCED, nothing written
 *   expected == 0  INSERT ... ON CONFLICT DO NOTHING   (row exists -> 0 rows)
 *   expected  > 0  UPDATE ... WHERE revision = expected
 *   0 rows         ECONFLICT
 *   history N > 0  the new revision is also upserted into spawn_actor_history
 *                  and revisions below (new - N) are deleted there
 * but in bulk: per segment of up to GWI_SAVE_SEGMENT rows of distinct keys
 * (a key met again starts the next segment, so rows apply in order) two
 * statements whatever its size: ST_FENCE_BULK (the fenced rows' epochs FOR
 * SHARE, in key byte order like ST_ACQUIRE_BATCH) and ST_SAVE_BULK[_HIST]
 * (the inserts, the updates and the history of every unfenced row, one
 * statement over unnest()ed binary arrays, RETURNING the rows written). A
 * segment of one row runs the per-row statements.
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
 * lease_activate (cluster mode: the activation lease), in one transaction:
 *   ST_LEASE_LOCK   upsert every key's epoch row (epoch 0 when new) with a
 *                   no-op DO UPDATE: the rows exist and are locked, in key
 *                   byte order, until COMMIT
 *   ST_LEASE_TAKE   a NEW statement, so its snapshot is taken after the
 *                   locks are held: epoch + 1, owner := member where the
 *                   member's row is live and the owner is NULL, the member,
 *                   or not live; returns each key's epoch (NULL: refused)
 *                   and owner
 * then COMMIT and the load of the keys that took an epoch (a third
 * statement, as activate_batch). Why two statements: in one, a conflict
 * on a row that another member's lease took while the statement waited
 * would be re-checked on the new row version while the members table is
 * still read in the statement's older snapshot, which may predate that
 * member's join: it would look gone. Locked first, the owner of a row can
 * only be a member whose acquire committed before the lock was granted,
 * and that acquire saw its own row live, so its join is in the snapshot.
 * lease_release: one statement, the rows locked in key order (a CTE FOR
 * UPDATE) and cleared where owner and epoch still match.
 *
 * activate_batch: the epochs of up to GW_STORE_ACTIVATE_MAX actors in one
 * autocommitted INSERT ... SELECT FROM unnest($1::text[], $2::text[])
 * ORDER BY system, name ON CONFLICT DO UPDATE ... RETURNING (rows locked in
 * key order: two batches never wait on each other in a cycle; a batch and
 * another gateway's multi-row save may deadlock, and the loser fails with
 * GW_EUNAVAIL), then one SELECT ... WHERE (system, name) IN (SELECT * FROM
 * unnest(...)) as a second statement: its snapshot is newer than the
 * upsert's lock waits, so it sees every save that passed its fence.
 *
 * Connections: a pool of pool_size (default 4) connections, each used by
 * one thread at a time; opened on demand, every statement prepared on each
 * (the pool's states are in driver_util.h: READY means statements
 * prepared, stale means the socket is readable: the server closed it).
 *
 * Invariants:
 *   1. A connection is used by at most one thread (driver_util.h, gwi_pool).
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
#include "postgres_int.h"

#include "log.h"
#include "redact.h"

#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 6
/* pg_advisory_xact_lock key of the schema migration: "SPAWNSCH". */
#define SCHEMA_LOCK_KEY "6003092917003650888"

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
    /* 4 -> 5: the members of a cluster (store.h, "cluster membership").
     * Small: one row per member start, dead rows collected. */
    "CREATE TABLE IF NOT EXISTS spawn_members("
    " id text COLLATE \"C\" PRIMARY KEY,"
    " address text NOT NULL,"
    " status smallint NOT NULL,"
    " started_ms bigint NOT NULL,"
    " heartbeat_ms bigint NOT NULL,"
    " served text NOT NULL,"
    " view_version bigint NOT NULL);",
    /* 5 -> 6: the activation lease: the member whose activation holds an
     * actor's epoch (store.h, "activation leases"); NULL outside a
     * cluster. A nullable column without a default rewrites no row. */
    "ALTER TABLE spawn_actor_epoch ADD COLUMN IF NOT EXISTS owner text COLLATE \"C\";",
};

/* ---- the URL ------------------------------------------------------------------ */

/* redact copies url with every password (the userinfo's, a password=
 * parameter's) replaced by "***" (gw_redact_url). Caller frees; NULL: no
 * memory. */
static char *redact(const char *url)
{
	/* Each replacement grows by at most 3 bytes over a key of 9 or more:
	 * twice the length always fits. */
	size_t n = 2 * strlen(url) + 16;
	char *out = malloc(n);
	return out ? gw_redact_url(url, out, n) : NULL;
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
		gwi_pg_trimmed(msg, sizeof msg, err ? err : "out of memory");
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
	*out = gwi_store_where(user, host, port, db);
	PQconninfoFree(o);
	return *out ? GW_OK : GW_ENOMEM;
}

/* ---- open / close ---------------------------------------------------------- */

/* migrate brings the schema to SCHEMA_VERSION under the advisory lock, or
 * refuses a newer one. */
static gw_err migrate(pg_drv *d, pg_conn *pc, const gw_store_opts *opts)
{
	PGresult *r = NULL;
	gw_err e;
	bool told = false; /* the reason already went to gwi_store_errf */
	const char *step = "begin";
	long long v = 0;
	if ((e = gwi_pg_run(d, pc, "BEGIN", PGRES_COMMAND_OK)) != GW_OK)
		goto fail;
	step = "lock";
	if ((e = gwi_pg_run(d, pc, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")",
	                    PGRES_TUPLES_OK)) != GW_OK)
		goto fail;
	/* Two queries: a query naming a missing table fails at parse time. */
	step = "read the version of";
	r = PQexec(pc->c, "SELECT to_regclass('spawn_meta') IS NOT NULL");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		e = gwi_pg_fail(d, pc, r, step);
		goto fail;
	}
	bool have_meta = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	r = NULL;
	if (have_meta) {
		r = PQexec(pc->c, "SELECT convert_from(value, 'UTF8') FROM spawn_meta "
		                  "WHERE name = 'schema_version'");
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			e = gwi_pg_fail(d, pc, r, step);
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
			if ((e = gwi_pg_run(d, pc, migrations[s], PGRES_COMMAND_OK)) != GW_OK)
				goto fail;
		char ver[24];
		snprintf(ver, sizeof ver, "%d", SCHEMA_VERSION);
		const gwi_pg_stmt *put = &gwi_pg_stmts[ST_META_PUT];
		pg_params p;
		p_text(&p, 0, "schema_version");
		p_bytes(&p, 1, ver, strlen(ver));
		step = "record the version of";
		r = PQexecParams(pc->c, put->sql, 2, put->types, p.v, p.len, p.fmt, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			e = gwi_pg_fail(d, pc, r, step);
			goto fail;
		}
		PQclear(r);
		r = NULL;
	}
	step = "commit";
	if ((e = gwi_pg_run(d, pc, "COMMIT", PGRES_COMMAND_OK)) != GW_OK)
		goto fail;
	if (v < SCHEMA_VERSION)
		GW_INFO("postgres %s: schema version %lld -> %d", d->where, v, SCHEMA_VERSION);
	return GW_OK;
fail:
	PQclear(r);
	if (!told)
		gwi_store_errf(opts, "postgres %s: cannot %s the schema: %s (see the log)",
		               d->where, step, gw_strerror(e));
	gwi_pg_rollback(d, pc);
	return e;
}

static void pg_close(void *drv)
{
	pg_drv *d = drv;
	if (!d)
		return;
	for (int i = 0; d->conns && i < d->pool.n; i++)
		if (d->conns[i].c)
			gwi_pg_conn_drop(&d->conns[i]);
	gwi_pool_fini(&d->pool);
	free(d->conns);
	if (d->url) /* the password does not outlive the store in our heap */
		memset(d->url, 0, strlen(d->url));
	free(d->url);
	free(d->where);
	free(d);
}

static gw_err open_as(const char *url, const gw_store_opts *opts, void **drv)
{
	pg_drv *d = NULL;
	gw_err e;
	int pool, history;
	if ((e = gwi_opts_pool("postgres", opts, &pool)) != GW_OK ||
	    (e = gwi_opts_history("postgres", opts, &history)) != GW_OK)
		return e;
	d = calloc(1, sizeof *d);
	if (!d)
		return GW_ENOMEM;
	d->history = history;
	d->idle_tx_ms = opts && opts->idle_tx_timeout_ms > 0 ? opts->idle_tx_timeout_ms : 0;
	d->net_ms = opts && opts->net_timeout_ms > 0 ? opts->net_timeout_ms : 0;
	if ((e = describe(url, opts, &d->where)) != GW_OK)
		goto fail;
	d->url = strdup(url);
	d->conns = calloc((size_t)pool, sizeof *d->conns);
	if (!d->url || !d->conns) {
		e = GW_ENOMEM;
		goto fail;
	}
	if ((e = gwi_pool_init(&d->pool, pool, &gwi_pg_conn_ops, d, d->where)) != GW_OK)
		goto fail;
	/* One connection now: it proves the URL and runs the migration. */
	char why[512];
	if ((e = gwi_pg_conn_open(d, &d->conns[0], why, sizeof why)) != GW_OK) {
		gwi_store_errf(opts, "cannot connect to postgres %s: %s", d->where, why);
		goto fail;
	}
	if ((e = migrate(d, &d->conns[0], opts)) != GW_OK)
		goto fail;
	if ((e = gwi_pg_conn_prepare(&d->conns[0], why, sizeof why)) != GW_OK) {
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

static const char *pg_path(void *drv)
{
	return NULL; /* networked: the key must be given */
}

/* ---- meta -------------------------------------------------------------------- */

static gw_err pg_meta_get(void *drv, const char *name, uint8_t **val, size_t *len)
{
	pg_drv *d = drv;
	pg_conn *pc;
	PGresult *r;
	pg_params p;
	p_text(&p, 0, name);
	gw_err e = gwi_pg_query(d, ST_META_GET, &p, &pc, &r);
	if (e != GW_OK)
		return e;
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
	gwi_pg_query_end(d, pc, r);
	return e;
}

/* meta_write runs META_PUT or META_CREATE; *one: a row was written. */
static gw_err meta_write(void *drv, int id, const char *name, const uint8_t *val, size_t len,
                         bool *one)
{
	pg_params p;
	p_text(&p, 0, name);
	p_bytes(&p, 1, val, len);
	return gwi_pg_command(drv, id, &p, one);
}

static gw_err pg_meta_put(void *drv, const char *name, const uint8_t *val, size_t len)
{
	return meta_write(drv, ST_META_PUT, name, val, len, NULL);
}

static gw_err pg_meta_create(void *drv, const char *name, const uint8_t *val, size_t len)
{
	bool one = false;
	gw_err e = meta_write(drv, ST_META_CREATE, name, val, len, &one);
	return e == GW_OK && !one ? GW_ECONFLICT : e;
}

/* Two tables, one per URL scheme libpq accepts; gw_store_scheme() names the
 * one the URL used. */
#define PG_OPS(sch)                                                                                \
	{                                                                                          \
		.version = GW_STORE_OPS_VERSION, .scheme = sch, .open = pg_open,                   \
		.load = gwi_pg_load, .save_batch = gwi_pg_save_batch, .remove = gwi_pg_remove,     \
		.meta_get = pg_meta_get, .meta_put = pg_meta_put, .path = pg_path,                 \
		.close = pg_close, .acquire = gwi_pg_acquire,                                      \
		.load_revision = gwi_pg_load_revision, .list_revisions = gwi_pg_list_revisions,    \
		.meta_create = pg_meta_create, .rot_count = gwi_pg_rot_count,                      \
		.rot_scan = gwi_pg_rot_scan, .rot_rewrite = gwi_pg_rot_rewrite,                    \
		.instance_put = gwi_pg_instance_put, .instance_get = gwi_pg_instance_get,          \
		.sched_put = gwi_pg_sched_put, .sched_claim = gwi_pg_sched_claim,                  \
		.sched_set_aside = gwi_pg_sched_set_aside, .sched_done = gwi_pg_sched_done,        \
		.sched_next_due = gwi_pg_sched_next_due, .sched_count = gwi_pg_sched_count,        \
		.sched_done_batch = gwi_pg_sched_done_batch, .effects_list = gwi_pg_effects_list,  \
		.activate_batch = gwi_pg_activate_batch,                                           \
		.instance_counts = gwi_pg_instance_counts, .sched_counts = gwi_pg_sched_counts,    \
		.sched_range = gwi_pg_sched_range, .forget = gwi_pg_forget,                        \
		.member_join = gwi_pg_member_join, .member_heartbeat = gwi_pg_member_heartbeat,    \
		.member_list = gwi_pg_member_list,                                                 \
		.member_declare_dead = gwi_pg_member_declare_dead,                                 \
		.member_remove = gwi_pg_member_remove, .member_gc = gwi_pg_member_gc,              \
		.sched_reseal = gwi_pg_sched_reseal, .lease_activate = gwi_pg_lease_activate,      \
		.lease_release = gwi_pg_lease_release,                                             \
	}

const gw_store_ops gw_postgres_ops = PG_OPS("postgres");
const gw_store_ops gw_postgresql_ops = PG_OPS("postgresql");
