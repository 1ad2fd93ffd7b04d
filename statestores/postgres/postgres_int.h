/* postgres_int.h - what the files of the PostgreSQL driver share. Only
 * they include it. The driver's design note is in postgres.c.
 *
 *   postgres.c        open / close, the URL's description, schema
 *                     migrations, spawn_meta, the ops tables
 *   postgres_conn.c   prepared statements, errors, the connection pool and
 *                     the helpers that run a call's commands
 *   postgres_rows.c   actor state rows: load, save, remove, revisions,
 *                     epochs, key-rotation scans, the effects listing
 *   postgres_sched.c  UNNAMED instances and scheduled invocations
 *   postgres_members.c the members table of a cluster (spawn_members)
 *
 * Every function here blocks (network) unless it says otherwise; a
 * pg_conn is used only by the thread that acquired it.
 */
#ifndef GW_STORE_POSTGRES_INT_H
#define GW_STORE_POSTGRES_INT_H

#include "driver_util.h"

#include <stdbool.h>
#include <stdio.h>

#include <libpq-fe.h>

/* The prepared statements (gwi_pg_stmts), by id. */
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
	ST_ACQUIRE_BATCH,
	ST_LOAD_BATCH,
	ST_FENCE_BULK,
	ST_SAVE_BULK,
	ST_SAVE_BULK_HIST,
	ST_INST_COUNTS,
	ST_SCHED_COUNTS,
	ST_SCHED_RANGE,
	ST_SCHED_RESEAL,
	ST_FORGET,
	ST_MEMBER_JOIN,
	ST_MEMBER_HEARTBEAT,
	ST_MEMBER_LIST,
	ST_MEMBER_DEAD,
	ST_MEMBER_REMOVE,
	ST_MEMBER_GC,
	ST_LEASE_LOCK,
	ST_LEASE_TAKE,
	ST_LEASE_RELEASE,
	ST_COUNT
};

/* One prepared statement: all members static strings. */
typedef struct gwi_pg_stmt {
	const char *name;
	const char *sql;
	int nparams;
	Oid types[12];
} gwi_pg_stmt;

/* postgres_conn.c: prepared on every connection (migrate runs ST_META_PUT
 * unprepared, before the tables exist). */
extern const gwi_pg_stmt gwi_pg_stmts[ST_COUNT];

typedef struct pg_conn {
	PGconn *c; /* owned; NULL: not connected */
} pg_conn;

typedef struct pg_drv {
	char *url;      /* owned; carries the password: never logged, wiped at close */
	char *where;    /* owned: "user@host:port/db" for messages */
	int history;    /* older revisions kept per actor; 0 = none */
	int idle_tx_ms; /* gw_store_opts.idle_tx_timeout_ms; 0 = the server's */
	int net_ms;     /* gw_store_opts.net_timeout_ms; 0 = the defaults */
	pg_conn *conns; /* owned: pool.n connections, conns[i] is slot i */
	gwi_pool pool;  /* which slot a thread holds (driver_util.h) */
} pg_drv;

/* A statement's parameters: text unless len[i] >= 0 (binary bytea). The
 * values are borrowed until the statement ran (ints: the struct's own). */
typedef struct pg_params {
	const char *v[12];
	int len[12];
	int fmt[12];
	char ints[4][24]; /* storage for integer parameters */
} pg_params;

static inline void p_text(pg_params *p, int i, const char *s)
{
	p->v[i] = s;
	p->len[i] = 0;
	p->fmt[i] = 0;
}

static inline void p_int(pg_params *p, int i, int slot, uint64_t v)
{
	snprintf(p->ints[slot], sizeof p->ints[slot], "%llu", (unsigned long long)v);
	p_text(p, i, p->ints[slot]);
}

static inline void p_key(pg_params *p, const gw_actor_key *k)
{
	p_text(p, 0, k->system);
	p_text(p, 1, k->name);
}

static inline void p_bytes(pg_params *p, int i, const void *data, size_t len)
{
	/* A NULL value would be SQL NULL: an empty bytea still needs a pointer. */
	p->v[i] = len > 0 ? (const char *)data : "";
	p->len[i] = (int)len;
	p->fmt[i] = 1;
}

/* ---- postgres_conn.c: errors ------------------------------------------------- */

/* gwi_pg_trimmed copies a libpq message (borrowed; NULL or "": "unknown
 * error") into buf (cap bytes) as one log line. Does not block. */
void gwi_pg_trimmed(char *buf, size_t cap, const char *msg);

/* gwi_pg_fail logs a failed command (what names it) and maps it to the
 * caller's error: GW_EUNAVAIL for a lost connection or a retryable
 * SQLSTATE, GW_ENOMEM when r is NULL, else by SQLSTATE. r (may be NULL)
 * and pc: borrowed; the caller still clears r. Does not block. */
gw_err gwi_pg_fail(const pg_drv *d, const pg_conn *pc, const PGresult *r, const char *what);

/* ---- postgres_conn.c: connections ------------------------------------------ */

/* The pool's view of d->conns (gwi_pool_init(&d->pool, n,
 * &gwi_pg_conn_ops, d, d->where)). */
extern const gwi_conn_ops gwi_pg_conn_ops;

/* gwi_pg_conn_open connects the empty pc to d->url, no statements
 * prepared; the reason of a failure goes to why (never the password).
 * GW_OK, GW_ENOMEM, GW_EUNAVAIL or GW_EIO (pc stays empty). */
gw_err gwi_pg_conn_open(pg_drv *d, pg_conn *pc, char *why, size_t whylen);

/* gwi_pg_conn_prepare prepares gwi_pg_stmts on the connected pc (they name
 * the tables: open runs it after the migration). On failure pc is empty. */
gw_err gwi_pg_conn_prepare(pg_conn *pc, char *why, size_t whylen);

/* gwi_pg_conn_drop closes pc's connection, if any. Does not block. */
void gwi_pg_conn_drop(pg_conn *pc);

/* gwi_pg_conn_acquire takes a pooled connection for this thread, connected
 * and prepared (gwi_pool_acquire); *fresh: connected by this call. Give it
 * back with gwi_pg_conn_release. */
gw_err gwi_pg_conn_acquire(pg_drv *d, pg_conn **pc, bool *fresh);

/* gwi_pg_conn_release gives pc back, closing it when it broke or was left
 * inside a transaction (released connections are idle or closed). */
void gwi_pg_conn_release(pg_drv *d, pg_conn *pc);

/* ---- postgres_conn.c: running commands ---------------------------------------- */

/* gwi_pg_exec runs prepared statement id with p; results in binary format.
 * Returns what PQexecPrepared does (caller clears; NULL: no memory). */
PGresult *gwi_pg_exec(pg_conn *pc, int id, const pg_params *p);

/* gwi_pg_retry_first runs the first command of a call (id >= 0: a prepared
 * statement with p; else the plain command sql). When the connection turns
 * out dead and was not opened by this call (fresh), it reconnects once and
 * runs the command again. want is the status of success: GW_OK and *out
 * (caller clears), or the mapped, logged error (nothing to clear). */
gw_err gwi_pg_retry_first(pg_drv *d, pg_conn *pc, bool fresh, int id, const char *sql,
                          const pg_params *p, ExecStatusType want, PGresult **out);

/* gwi_pg_run runs the plain command sql and discards its result; want is
 * the status of success. */
gw_err gwi_pg_run(pg_drv *d, pg_conn *pc, const char *sql, ExecStatusType want);

/* gwi_pg_rollback ends a failed transaction; a connection that cannot is
 * closed by gwi_pg_conn_release (it is not idle). */
void gwi_pg_rollback(pg_drv *d, pg_conn *pc);

/* gwi_pg_begin acquires a connection and opens a transaction on it
 * (reconnecting once like gwi_pg_retry_first). GW_OK and *pc, to end with
 * gwi_pg_end; on an error nothing is held and *pc is untouched. */
gw_err gwi_pg_begin(pg_drv *d, pg_conn **pc);

/* gwi_pg_end ends the transaction of a call on pc: COMMIT when e (the
 * call's outcome so far) is GW_OK, else ROLLBACK; then releases pc.
 * Returns e, or the error of the COMMIT. pc NULL (nothing held): returns e. */
gw_err gwi_pg_end(pg_drv *d, pg_conn *pc, gw_err e);

/* gwi_pg_command runs prepared statement id (autocommit: one transaction)
 * on a pooled connection. *one (one may be NULL): it changed exactly one
 * row. p: borrowed. */
gw_err gwi_pg_command(pg_drv *d, int id, const pg_params *p, bool *one);

/* gwi_pg_query runs the query id (autocommit) on a pooled connection.
 * GW_OK: *pc and *r are the caller's until gwi_pg_query_end; on an error
 * nothing is held. p: borrowed. */
gw_err gwi_pg_query(pg_drv *d, int id, const pg_params *p, pg_conn **pc, PGresult **r);

/* gwi_pg_query_end clears r and releases pc. Accepts a NULL r. */
void gwi_pg_query_end(pg_drv *d, pg_conn *pc, PGresult *r);

/* gwi_pg_query_int8 runs the query id, which returns one row of one
 * bigint, into *v. GW_ECORRUPT when the answer is not that. */
gw_err gwi_pg_query_int8(pg_drv *d, int id, const pg_params *p, uint64_t *v);

/* ---- postgres_conn.c: reading results (never block) ------------------------- */

/* gwi_pg_get_int8 reads the binary bigint column col of row i; false when
 * it is not one (NULL, wrong size). */
bool gwi_pg_get_int8(const PGresult *r, int i, int col, uint64_t *v);

/* gwi_pg_dup_col copies column col of row i as a string: caller frees;
 * NULL for SQL NULL or no memory. */
char *gwi_pg_dup_col(const PGresult *r, int i, int col);

/* ---- the ops (store.h says what each does) ------------------------------------ */

/* postgres_rows.c */
gw_err gwi_pg_load(void *drv, const gw_actor_key *k, gw_row *out);
gw_err gwi_pg_load_revision(void *drv, const gw_actor_key *k, uint64_t revision, gw_row *out);
gw_err gwi_pg_list_revisions(void *drv, const gw_actor_key *k, uint64_t *revs, size_t cap,
                             size_t *n);
gw_err gwi_pg_acquire(void *drv, const gw_actor_key *k, uint64_t *epoch);
gw_err gwi_pg_save_batch(void *drv, const gw_row *rows, size_t n, gw_err *results);
gw_err gwi_pg_remove(void *drv, const gw_actor_key *k);
gw_err gwi_pg_rot_count(void *drv, const char *primary, uint64_t *n);
gw_err gwi_pg_rot_scan(void *drv, const gw_rot_cursor *after, const char *primary, gw_row *rows,
                       size_t max, size_t *n);
gw_err gwi_pg_rot_rewrite(void *drv, int table, const gw_rewrite *rows, size_t n, gw_err *results);
gw_err gwi_pg_effects_list(void *drv, const gw_actor_key *after, size_t max, gw_actor_key *out,
                           size_t *n);
gw_err gwi_pg_activate_batch(void *drv, const gw_actor_key *keys, size_t n, uint64_t *epochs,
                             gw_row *rows, gw_err *results);

gw_err gwi_pg_lease_activate(void *drv, const gw_actor_key *keys, size_t n, const char *member,
                             uint64_t *epochs, char (*holders)[GW_MEMBER_ID_MAX + 1], gw_row *rows,
                             gw_err *results);
gw_err gwi_pg_lease_release(void *drv, const gw_actor_key *keys, const uint64_t *epochs, size_t n,
                            const char *member, uint64_t *released);

/* postgres_sched.c */
gw_err gwi_pg_instance_put(void *drv, const gw_actor_key *k, const char *parent);
gw_err gwi_pg_instance_get(void *drv, const gw_actor_key *k, char **parent);
gw_err gwi_pg_sched_put(void *drv, const gw_sched_row *row);
gw_err gwi_pg_sched_claim(void *drv, int64_t now, const char *owner, int64_t lease_until,
                          size_t max, gw_sched_row *rows, size_t *n);
gw_err gwi_pg_sched_set_aside(void *drv, const char *id);
gw_err gwi_pg_sched_done(void *drv, const char *id);
gw_err gwi_pg_sched_done_batch(void *drv, const char *const *ids, size_t n);
gw_err gwi_pg_sched_next_due(void *drv, int64_t *due_ms);
gw_err gwi_pg_sched_count(void *drv, uint64_t *n);
gw_err gwi_pg_instance_counts(void *drv, gw_count_fn fn, void *user);
gw_err gwi_pg_sched_counts(void *drv, size_t prefix_len, gw_count_fn fn, void *user);
gw_err gwi_pg_sched_range(void *drv, const char *after, const char *below, size_t max,
                          gw_sched_row *rows, size_t *n);
gw_err gwi_pg_sched_reseal(void *drv, const gw_sched_reseal *rows, size_t n, gw_err *results);
gw_err gwi_pg_forget(void *drv, const gw_actor_key *k, const char *const *ids, size_t n,
                     gw_forget_counts *out);

/* postgres_members.c */
gw_err gwi_pg_member_join(void *drv, const char *id, const char *address, const char *served,
                          int64_t *now_ms);
gw_err gwi_pg_member_heartbeat(void *drv, const char *id, int status, const char *served,
                               uint64_t view_version, bool *alive, int64_t *now_ms);
gw_err gwi_pg_member_list(void *drv, gw_err (*fn)(void *user, const gw_member_row *row), void *user,
                          int64_t *now_ms);
gw_err gwi_pg_member_declare_dead(void *drv, const char *id, int64_t observed, bool *won);
gw_err gwi_pg_member_remove(void *drv, const char *id);
gw_err gwi_pg_member_gc(void *drv, int64_t dead_for_ms, uint64_t *removed);

#endif
