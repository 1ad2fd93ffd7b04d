/* mariadb_int.h - what the files of the MariaDB / MySQL driver share. Only
 * they include it. The driver's design note is in mariadb.c.
 *
 *   mariadb.c        the URL, open / close, schema migrations, spawn_meta,
 *                    the ops tables
 *   mariadb_conn.c   prepared statements, errors, the connection pool and
 *                    the helpers that run a call's commands
 *   mariadb_rows.c   actor state rows: load, save, remove, revisions,
 *                    epochs, key-rotation scans, the effects listing
 *   mariadb_sched.c  UNNAMED instances and scheduled invocations
 *   mariadb_members.c the members table of a cluster (spawn_members)
 *
 * Every function here blocks (network) unless it says otherwise; a my_conn
 * is used only by the thread that acquired it.
 */
#ifndef GW_STORE_MARIADB_INT_H
#define GW_STORE_MARIADB_INT_H

#include "driver_util.h"

#include <stdbool.h>
#include <string.h>

#include <mysql.h>

#define CONNECT_TIMEOUT  10 /* seconds: the default of connect_timeout= */
#define IO_TIMEOUT       30 /* seconds, per read or write; > the lock wait */
#define LOCK_WAIT        10 /* seconds: innodb_lock_wait_timeout */
#define SCHEMA_LOCK_WAIT 20 /* seconds: GET_LOCK at open; < IO_TIMEOUT */

/* The prepared statements (gwi_my_sql), by id. */
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
	ST_INST_COUNTS,
	ST_SCHED_COUNTS,
	ST_SCHED_RANGE,
	ST_SCHED_RESEAL,
	ST_FORGET_FX,
	ST_FORGET_INST,
	ST_FORGET_EPOCH,
	ST_MEMBER_JOIN,
	ST_MEMBER_GET,
	ST_MEMBER_HEARTBEAT,
	ST_MEMBER_LIST,
	ST_MEMBER_DEAD,
	ST_MEMBER_REMOVE,
	ST_MEMBER_GC,
	ST_COUNT
};

/* sslmode=, PostgreSQL's words (mariadb.c maps them to mysql_options). */
typedef enum my_sslmode {
	MY_SSL_DEFAULT = 0, /* not given: DISABLE, or VERIFY_FULL with any ssl* file */
	MY_SSL_DISABLE,     /* plaintext */
	MY_SSL_REQUIRE,     /* TLS; the chain checked only if sslrootcert is given */
	MY_SSL_VERIFY_CA,   /* TLS, the chain checked against sslrootcert (or the system's) */
	MY_SSL_VERIFY_FULL, /* VERIFY_CA and the host name against the certificate */
} my_sslmode;

/* The parts of a mariadb:// URL (mariadb.c parses it). */
typedef struct my_url {
	char *user, *password, *host, *db, *socket; /* owned, decoded */
	char *sslrootcert, *sslcert, *sslkey;       /* owned, decoded file names; NULL: none */
	unsigned port;
	unsigned connect_timeout;
	my_sslmode sslmode; /* never MY_SSL_DEFAULT once parse_url succeeded */
} my_url;

typedef struct my_conn {
	MYSQL *m;                 /* owned; NULL: not connected */
	MYSQL_STMT *st[ST_COUNT]; /* owned: prepared on m */
} my_conn;

typedef struct my_drv {
	my_url u;       /* owned: url_fini (the password is wiped) */
	char *where;    /* owned: "user@host:port/db" for messages (no password) */
	int history;    /* older revisions kept per actor; 0 = none */
	int idle_tx_ms; /* gw_store_opts.idle_tx_timeout_ms; 0 = the server's */
	int net_ms;     /* gw_store_opts.net_timeout_ms; 0 = the defaults */
	my_conn *conns; /* owned: pool.n connections, conns[i] is slot i */
	gwi_pool pool;  /* which slot a thread holds (driver_util.h) */
} my_drv;

/* A statement's parameters. The values are borrowed until the statement
 * ran (ints: the struct's own). */
typedef struct my_binds {
	MYSQL_BIND b[10];
	long long ints[4];
} my_binds;

static inline void b_bytes(my_binds *x, int i, const void *p, size_t len)
{
	MYSQL_BIND *b = &x->b[i];
	memset(b, 0, sizeof *b);
	b->buffer_type = MYSQL_TYPE_BLOB;
	b->buffer = (void *)(p ? p : "");
	b->buffer_length = (unsigned long)len;
}

static inline void b_str(my_binds *x, int i, const char *s)
{
	b_bytes(x, i, s, strlen(s));
}

static inline void b_int(my_binds *x, int i, int slot, uint64_t v)
{
	MYSQL_BIND *b = &x->b[i];
	memset(b, 0, sizeof *b);
	x->ints[slot] = (long long)v;
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = &x->ints[slot];
}

static inline void b_key(my_binds *x, const gw_actor_key *k)
{
	b_str(x, 0, k->system);
	b_str(x, 1, k->name);
}

/* ---- mariadb_conn.c: errors and connections ------------------------------------ */

/* gwi_my_fail logs the error of st (or of mc's connection when st is
 * NULL), what naming the command, maps it, and drops a connection that is
 * gone. st: borrowed. */
gw_err gwi_my_fail(const my_drv *d, my_conn *mc, MYSQL_STMT *st, const char *what);

/* gwi_my_conn_drop closes mc's statements and connection, if any. Does not
 * block. */
void gwi_my_conn_drop(my_conn *mc);

/* gwi_my_conn_open connects the empty mc (d->u) and sets its session up,
 * no statements prepared; the reason of a failure goes to why. On failure
 * mc stays empty. */
gw_err gwi_my_conn_open(my_drv *d, my_conn *mc, char *why, size_t whylen);

/* gwi_my_conn_prepare prepares every statement on the connected mc (they
 * need the tables: open runs it after the migration). On failure mc is
 * empty. */
gw_err gwi_my_conn_prepare(my_drv *d, my_conn *mc, char *why, size_t whylen);

/* The pool's view of d->conns (gwi_pool_init(&d->pool, n,
 * &gwi_my_conn_ops, d, d->where)). */
extern const gwi_conn_ops gwi_my_conn_ops;

/* gwi_my_conn_acquire takes a pooled connection for this thread, connected
 * and prepared (gwi_pool_acquire); *fresh: connected by this call. Give it
 * back with gwi_my_conn_release, idle or dropped. */
gw_err gwi_my_conn_acquire(my_drv *d, my_conn **mc, bool *fresh);
void gwi_my_conn_release(my_drv *d, my_conn *mc);

/* ---- mariadb_conn.c: running commands ---------------------------------------------- */

/* gwi_my_exec binds x and executes statement id (what names it in the
 * log). x: borrowed. */
gw_err gwi_my_exec(my_drv *d, my_conn *mc, int id, my_binds *x, const char *what);

/* gwi_my_exec_first runs the first command of a call like gwi_my_exec; a
 * connection found dead that this call did not open (fresh) is replaced
 * and the command run again. */
gw_err gwi_my_exec_first(my_drv *d, my_conn *mc, bool fresh, int id, my_binds *x, const char *what);

/* gwi_my_query_first runs sql (borrowed), a plain statement that returns no
 * rows, as the first command of a call, reconnecting once like
 * gwi_my_exec_first; what names it in the log (the statement may be long). */
gw_err gwi_my_query_first(my_drv *d, my_conn *mc, bool fresh, const char *sql, const char *what);

/* gwi_my_begin acquires a connection and starts a transaction on it
 * (reconnecting once like gwi_my_exec_first). GW_OK and *mc, to end with
 * gwi_my_end; on an error nothing is held and *mc is untouched. */
gw_err gwi_my_begin(my_drv *d, my_conn **mc);

/* gwi_my_end ends the transaction of a call on mc: commits when e (the
 * call's outcome so far) is GW_OK, else rolls back (a connection that
 * cannot is closed: released connections are idle or closed); then
 * releases mc. Returns e, or the error of the commit. mc NULL (nothing
 * held): returns e. */
gw_err gwi_my_end(my_drv *d, my_conn *mc, gw_err e);

/* gwi_my_command runs statement id with x (autocommit: one transaction) on
 * a pooled connection. *one (one may be NULL): it affected exactly one
 * row. */
gw_err gwi_my_command(my_drv *d, int id, my_binds *x, const char *what, bool *one);

/* gwi_my_query runs the query id with x on a pooled connection. GW_OK: *mc
 * is the caller's, with the result of mc->st[id] to fetch, until
 * gwi_my_query_end; on an error nothing is held. */
gw_err gwi_my_query(my_drv *d, int id, my_binds *x, const char *what, my_conn **mc);

/* gwi_my_query_end drains the result of statement id (while the connection
 * stands) and releases mc. */
void gwi_my_query_end(my_drv *d, my_conn *mc, int id);

/* gwi_my_fetch_int reads the one integer column of the executed statement
 * id into *v and drains the result; *found false when there is no row. */
gw_err gwi_my_fetch_int(my_drv *d, my_conn *mc, int id, bool *found, uint64_t *v);

/* gwi_my_query_int runs the query id, which returns one row of one
 * integer, into *v. GW_ECORRUPT when there is no row. */
gw_err gwi_my_query_int(my_drv *d, int id, my_binds *x, const char *what, uint64_t *v);

/* gwi_my_fetch_blob fetches the one row of the executed query id and
 * copies its one column (bytes or text) into *out (NUL-terminated; caller
 * frees) and *len. GW_ENOTFOUND when there is no row; GW_OK with *null set
 * (nothing copied) when the column is NULL. what names the query in the
 * log. The caller drains the result (gwi_my_query_end). */
gw_err gwi_my_fetch_blob(my_drv *d, my_conn *mc, int id, const char *what, char **out,
                         unsigned long *len, bool *null);

/* gwi_my_fetch_bytes copies result column col (len bytes, as measured by
 * the fetch) of st's current row, NUL-terminated: *out, caller frees. */
gw_err gwi_my_fetch_bytes(my_drv *d, my_conn *mc, MYSQL_STMT *st, int col, unsigned long len,
                          char **out);

/* ---- the ops (store.h says what each does) ------------------------------------ */

/* mariadb_rows.c */
gw_err gwi_my_load(void *drv, const gw_actor_key *k, gw_row *out);
gw_err gwi_my_load_revision(void *drv, const gw_actor_key *k, uint64_t revision, gw_row *out);
gw_err gwi_my_list_revisions(void *drv, const gw_actor_key *k, uint64_t *revs, size_t cap,
                             size_t *n);
gw_err gwi_my_acquire(void *drv, const gw_actor_key *k, uint64_t *epoch);
gw_err gwi_my_save_batch(void *drv, const gw_row *rows, size_t n, gw_err *results);
gw_err gwi_my_remove(void *drv, const gw_actor_key *k);
gw_err gwi_my_rot_count(void *drv, const char *primary, uint64_t *n);
gw_err gwi_my_rot_scan(void *drv, const gw_rot_cursor *after, const char *primary, gw_row *rows,
                       size_t max, size_t *n);
gw_err gwi_my_rot_rewrite(void *drv, int table, const gw_rewrite *rows, size_t n, gw_err *results);
gw_err gwi_my_effects_list(void *drv, const gw_actor_key *after, size_t max, gw_actor_key *out,
                           size_t *n);
gw_err gwi_my_lease_activate(void *drv, const gw_actor_key *keys, size_t n, const char *member,
                             uint64_t *epochs, char (*holders)[GW_MEMBER_ID_MAX + 1], gw_row *rows,
                             gw_err *results);
gw_err gwi_my_lease_release(void *drv, const gw_actor_key *keys, const uint64_t *epochs, size_t n,
                            const char *member, uint64_t *released);
gw_err gwi_my_activate_batch(void *drv, const gw_actor_key *keys, size_t n, uint64_t *epochs,
                             gw_row *rows, gw_err *results);

/* mariadb_sched.c */
gw_err gwi_my_instance_put(void *drv, const gw_actor_key *k, const char *parent);
gw_err gwi_my_instance_get(void *drv, const gw_actor_key *k, char **parent);
gw_err gwi_my_sched_put(void *drv, const gw_sched_row *row);
gw_err gwi_my_sched_claim(void *drv, int64_t now, const char *owner, int64_t lease_until,
                          size_t max, gw_sched_row *rows, size_t *n);
gw_err gwi_my_sched_set_aside(void *drv, const char *id);
gw_err gwi_my_sched_done(void *drv, const char *id);
gw_err gwi_my_sched_done_batch(void *drv, const char *const *ids, size_t n);
gw_err gwi_my_sched_next_due(void *drv, int64_t *due_ms);
gw_err gwi_my_sched_count(void *drv, uint64_t *n);
gw_err gwi_my_instance_counts(void *drv, gw_count_fn fn, void *user);
gw_err gwi_my_sched_counts(void *drv, size_t prefix_len, gw_count_fn fn, void *user);
gw_err gwi_my_sched_range(void *drv, const char *after, const char *below, size_t max,
                          gw_sched_row *rows, size_t *n);
gw_err gwi_my_sched_reseal(void *drv, const gw_sched_reseal *rows, size_t n, gw_err *results);
gw_err gwi_my_forget(void *drv, const gw_actor_key *k, const char *const *ids, size_t n,
                     gw_forget_counts *out);

/* mariadb_members.c */
gw_err gwi_my_member_join(void *drv, const char *id, const char *address, const char *served,
                          int64_t *now_ms);
gw_err gwi_my_member_heartbeat(void *drv, const char *id, int status, const char *served,
                               uint64_t view_version, bool *alive, int64_t *now_ms);
gw_err gwi_my_member_list(void *drv, gw_err (*fn)(void *user, const gw_member_row *row), void *user,
                          int64_t *now_ms);
gw_err gwi_my_member_declare_dead(void *drv, const char *id, int64_t observed, bool *won);
gw_err gwi_my_member_remove(void *drv, const char *id);
gw_err gwi_my_member_gc(void *drv, int64_t dead_for_ms, uint64_t *removed);

#endif
