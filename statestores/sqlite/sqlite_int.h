/* sqlite_int.h - what the files of the SQLite driver share. Only they
 * include it. The driver's design note is in sqlite.c.
 *
 *   sqlite.c        open / close, schema migrations, the prepared
 *                   statements, actor state rows, epochs, key-rotation
 *                   scans, spawn_meta, the effects listing, the ops table
 *   sqlite_sched.c  UNNAMED instances, scheduled invocations (and their
 *                   re-sealing by a key rotation), forgetting an actor,
 *                   the counts for quotas
 *
 * Every function here blocks on disk; a handle is used by one thread at a
 * time.
 */
#ifndef GW_STORE_SQLITE_INT_H
#define GW_STORE_SQLITE_INT_H

#include "driver_util.h"

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

/* The prepared statements (sqlite.c's sql_text), by id. */
enum {
	ST_LOAD,
	ST_LOAD_REV,
	ST_LIST,
	ST_INSERT,
	ST_UPDATE,
	ST_FENCE,
	ST_ACQUIRE,
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
	ST_FORGET_STATE,
	ST_FORGET_HIST,
	ST_FORGET_INST,
	ST_FORGET_EPOCH,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_COUNT
};

typedef struct sqlite_drv {
	sqlite3 *db;                /* owned: closed by sq_close */
	char *path;                 /* owned; NULL for :memory: */
	int history;                /* older revisions kept per actor; 0 = none */
	sqlite3_stmt *st[ST_COUNT]; /* owned: prepared once, finalized by sq_close */
} sqlite_drv;

/* gwi_sq_where names the database in messages (borrowed). */
const char *gwi_sq_where(const sqlite_drv *d);
/* gwi_sq_fail logs the connection's current error and maps rc. Call it
 * before sqlite3_reset so the message is the one of the failed step. */
gw_err gwi_sq_fail(const sqlite_drv *d, int rc, const char *what);
/* gwi_sq_now_ms: the wall clock in ms since the epoch (updated_at). */
int64_t gwi_sq_now_ms(void);
/* gwi_sq_run steps a statement that returns no rows, then resets it. */
gw_err gwi_sq_run(sqlite_drv *d, int id, const char *what);
/* gwi_sq_run_key binds k (and extra as ?3 when with_extra) to statement
 * id and runs it (gwi_sq_run). */
gw_err gwi_sq_run_key(sqlite_drv *d, int id, const gw_actor_key *k, bool with_extra, uint64_t extra,
                      const char *what);
/* gwi_sq_bind_key binds (system, name) as ?1, ?2; _limit adds ?3. */
int gwi_sq_bind_key(sqlite3_stmt *st, const gw_actor_key *k);
int gwi_sq_bind_key_limit(sqlite3_stmt *st, const gw_actor_key *k, size_t lim);
/* gwi_sq_dup_text copies text column col (caller frees), NULL when NULL. */
char *gwi_sq_dup_text(sqlite3_stmt *st, int col);
/* gwi_sq_end_tx commits (e == GW_OK) or rolls back the transaction
 * BEGIN IMMEDIATE opened; returns e, or the commit's error. */
gw_err gwi_sq_end_tx(sqlite_drv *d, gw_err e);
/* gwi_sq_sync_normal makes this connection's next commits skip the fsync
 * (for writes whose loss in a power cut is harmless); gwi_sq_sync_full
 * restores FULL and returns e, or the restore's error when e is GW_OK. */
void gwi_sq_sync_normal(sqlite_drv *d);
gw_err gwi_sq_sync_full(sqlite_drv *d, gw_err e);

/* sqlite_sched.c: the ops of gw_store_ops (store.h) of the same names. */
gw_err gwi_sq_instance_get(void *drv, const gw_actor_key *k, char **parent);
gw_err gwi_sq_instance_put(void *drv, const gw_actor_key *k, const char *parent);
gw_err gwi_sq_sched_put(void *drv, const gw_sched_row *row);
gw_err gwi_sq_sched_claim(void *drv, int64_t now, const char *owner, int64_t lease_until,
                          size_t max, gw_sched_row *rows, size_t *n);
gw_err gwi_sq_sched_set_aside(void *drv, const char *id);
gw_err gwi_sq_sched_done(void *drv, const char *id);
gw_err gwi_sq_sched_done_batch(void *drv, const char *const *ids, size_t n);
gw_err gwi_sq_sched_range(void *drv, const char *after, const char *below, size_t max,
                          gw_sched_row *rows, size_t *n);
gw_err gwi_sq_sched_reseal(void *drv, const gw_sched_reseal *rows, size_t n, gw_err *results);
gw_err gwi_sq_forget(void *drv, const gw_actor_key *k, const char *const *ids, size_t n,
                     gw_forget_counts *out);
gw_err gwi_sq_sched_next_due(void *drv, int64_t *due_ms);
gw_err gwi_sq_sched_count(void *drv, uint64_t *n);
gw_err gwi_sq_instance_counts(void *drv, gw_count_fn fn, void *user);
gw_err gwi_sq_sched_counts(void *drv, size_t prefix_len, gw_count_fn fn, void *user);

#endif
