/* driver_util.h - what the statestore drivers share that depends on neither
 * an SQL dialect nor a client library: the checks of the open options, a
 * pool of connection slots, the userinfo of a URL and the "where" line of
 * the log, bookkeeping of scanned and claimed rows, and id lists.
 * SQL text, client calls and error mapping stay inside each driver.
 *
 * Included by the drivers and by store.c (gwi_sched_id_ok), never by the
 * runtime. Every function here is non-blocking unless it says otherwise.
 */
#ifndef GW_STORE_DRIVER_UTIL_H
#define GW_STORE_DRIVER_UTIL_H

#include "drivers.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* GWI_STR(x) spells a macro's value as a string literal (SQL text). */
#define GWI_STR_(x) #x
#define GWI_STR(x)  GWI_STR_(x)

/* ---- open options ---------------------------------------------------------- */

#define GWI_HISTORY_MAX  1000000 /* opts->history: 0..GWI_HISTORY_MAX */
#define GWI_POOL_DEFAULT 4       /* opts->pool_size 0: this many connections */
#define GWI_POOL_MAX     64

/* gwi_opts_history writes opts->history (0 when opts is NULL) into *history.
 * GW_ECONFIG, with the reason "<driver>: history ..." through
 * gwi_store_errf, when it is outside 0..GWI_HISTORY_MAX. driver and opts:
 * borrowed (opts may be NULL). */
gw_err gwi_opts_history(const char *driver, const gw_store_opts *opts, int *history);

/* gwi_opts_pool writes the pool size of a networked driver into *pool:
 * opts->pool_size, or GWI_POOL_DEFAULT when opts is NULL or it is 0.
 * GW_ECONFIG (reason through gwi_store_errf) when it is negative or above
 * GWI_POOL_MAX. driver and opts: borrowed (opts may be NULL). */
gw_err gwi_opts_pool(const char *driver, const gw_store_opts *opts, int *pool);

/* ---- a pool of connection slots (postgres, mariadb) ------------------------
 * The pool hands out slot numbers 0..n-1, one thread per slot; the driver
 * keeps the connection of slot i in its own array and tells the pool about
 * it through a table of functions. gwi_pool_acquire connects a slot that is
 * empty or stale before handing it out:
 *
 *   EMPTY ---- acquire ----> CONNECTING --ok--> READY
 *   CONNECTING -- fails ---> EMPTY            [acquire returns the error]
 *   READY ---- acquire ----> in use by one thread
 *   in use --- release ----> READY, or EMPTY when the driver dropped it
 *   READY ---- acquire, stale (closed by the server) --> CONNECTING
 *
 * Invariants:
 *   1. A slot is in use by at most one thread (busy flag under mu).
 *   2. acquire prefers a free slot that is connected (opening costs round
 *      trips) and waits while every slot is in use.
 */
typedef struct gwi_conn_ops {
	const char *driver; /* "postgres": the first word of the pool's log lines */
	/* is_open: slot holds a connection. Called under the pool's mutex
	 * for free slots, and by the thread that holds the slot. */
	bool (*is_open)(void *drv, int slot);
	/* stale: an open, idle slot's connection was closed by the server. */
	bool (*stale)(void *drv, int slot);
	/* drop: close slot's connection (the slot becomes empty). */
	void (*drop)(void *drv, int slot);
	/* ready: connect an empty slot and make it usable (prepared
	 * statements); on failure the reason goes to why (never a password)
	 * and the slot stays empty. */
	gw_err (*ready)(void *drv, int slot, char *why, size_t whylen);
} gwi_conn_ops;

typedef struct gwi_pool {
	const gwi_conn_ops *ops; /* borrowed: a static table */
	void *drv;               /* borrowed: the driver that owns the pool */
	const char *where;       /* borrowed from drv: "user@host:port/db" for logs */
	int n;                   /* slots */
	bool *busy;              /* owned: n flags, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a slot was released */
	bool sync_ok;      /* mu and cv initialised */
} gwi_pool;

/* gwi_pool_init sets up *p (caller storage, zeroed) for n >= 1 slots, all
 * empty. ops, drv and where are retained until gwi_pool_fini. GW_ENOMEM:
 * *p stays safe to pass to gwi_pool_fini. */
gw_err gwi_pool_init(gwi_pool *p, int n, const gwi_conn_ops *ops, void *drv, const char *where);

/* gwi_pool_fini frees what gwi_pool_init allocated. Accepts a zeroed or
 * half-initialised pool. It closes no connection: the driver drops its
 * slots first. No slot may be in use. */
void gwi_pool_fini(gwi_pool *p);

/* gwi_pool_acquire takes a free slot for this thread (waiting while every
 * slot is in use), reconnecting it when it is empty or stale (logged).
 * Returns GW_OK, *slot and *fresh (true: connected by this call, so there
 * is nothing to retry on a lost connection), or the error of ops->ready
 * (logged; the slot is released). Blocks: yes (waits, connects). */
gw_err gwi_pool_acquire(gwi_pool *p, int *slot, bool *fresh);

/* gwi_pool_release gives back a slot taken by gwi_pool_acquire; the
 * driver has left it idle or dropped it. Never fails. */
void gwi_pool_release(gwi_pool *p, int slot);

/* gwi_pool_reconnect replaces the connection of slot (held by this thread)
 * that was found dead: logs why (lost: borrowed, may be NULL), drops it
 * and connects again. GW_OK, or the error of ops->ready (logged; the slot
 * stays held and empty). Blocks: yes (connects). */
gw_err gwi_pool_reconnect(gwi_pool *p, int slot, const char *lost);

/* ---- URLs -------------------------------------------------------------------- */

/* The userinfo of scheme://[user[:password]@]host...: spans of the URL as
 * written (not percent-decoded). All pointers point into the URL. */
typedef struct gwi_url_auth {
	const char *user; /* NULL: no userinfo (no '@'); else user_len bytes */
	size_t user_len;
	const char *password; /* NULL: no ':' in the userinfo; else password_len bytes */
	size_t password_len;
	const char *host; /* what follows the userinfo (or "://") */
	const char *end;  /* the first of stops after host, or the terminating NUL */
} gwi_url_auth;

/* gwi_url_auth_split finds the userinfo of url: the authority starts after
 * the first "://" (or at url when there is none) and ends at the first of
 * the characters in stops (e.g. "/?"); the userinfo runs to the last '@' in
 * it ('@' in a password should be %40, but be lenient) and the password
 * starts after its first ':'. url and stops: borrowed. Never fails. */
void gwi_url_auth_split(const char *url, const char *stops, gwi_url_auth *out);

/* gwi_store_where builds "user@host:port/db" ("host:port/db" when user is
 * empty) for log lines and errors: never a password. All arguments
 * borrowed, none NULL. Caller frees; NULL: no memory. */
char *gwi_store_where(const char *user, const char *host, const char *port, const char *db);

/* ---- rows ------------------------------------------------------------------------ */

/* gwi_history_keep is the oldest revision a save of revision keeps in the
 * history under a policy of history (> 0) older revisions: new - history,
 * or 0. */
uint64_t gwi_history_keep(uint64_t revision, int history);

/* gwi_nonce_copy fills nonce (a gw_row or gw_sched_row nonce, 12 bytes)
 * from a stored column of len bytes, zero-padded or cut to 12: a malformed
 * nonce then fails to open instead of failing a scan. src: borrowed, may be
 * NULL when len is 0. */
void gwi_nonce_copy(uint8_t *nonce, const void *src, size_t len);

/* gwi_scan_rows_fini frees the owned fields of n rows from rot_scan (the
 * key's strings too). */
void gwi_scan_rows_fini(gw_row *rows, size_t n);

/* gwi_rows_fini frees the owned fields (key_id, data, type_url) of n rows
 * a load filled (or left zeroed) and zeroes them; the key stays. */
void gwi_rows_fini(gw_row *rows, size_t n);

/* gwi_results_set writes e into results[0..n): a batch that failed as a
 * whole. */
void gwi_results_set(gw_err *results, size_t n, gw_err e);

/* gwi_instance_existing settles an instance_put whose insert found k
 * recorded already: it reads k's parent with get (the driver's
 * instance_get, on drv) and returns GW_OK when it is parent, GW_ECONFLICT
 * when it is another, GW_EIO when the row vanished, else get's error.
 * All pointers borrowed. Blocks: yes (get). */
gw_err gwi_instance_existing(void *drv, gw_err (*get)(void *, const gw_actor_key *, char **),
                             const gw_actor_key *k, const char *parent);

/* ---- keys of a batch --------------------------------------------------------------- */

/* gwi_keys_sort writes into by_key (caller storage of n entries) pointers
 * to keys[0..n), sorted by (system, name) in byte order (the order of the
 * tables' primary keys). keys[i] is by_key[j] - keys. All borrowed. */
void gwi_keys_sort(const gw_actor_key *keys, size_t n, const gw_actor_key **by_key);

/* gwi_keys_find returns the index in keys of the key (system, name) among
 * the n sorted by gwi_keys_sort into by_key, or SIZE_MAX when it is not
 * there. With duplicates: one of them. O(log n). All borrowed. */
size_t gwi_keys_find(const gw_actor_key *keys, const gw_actor_key *const *by_key, size_t n,
                     const char *system, const char *name);

/* ---- save batches ------------------------------------------------------------------- */

/* The most rows one bulk write of a save batch takes (postgres, mariadb):
 * a bounded statement and a bounded set of locks; a larger batch is
 * written as several segments inside its one transaction. */
#define GWI_SAVE_SEGMENT 256

/* gwi_row_bytes estimates what row takes in a statement: its data, key,
 * key_id, type_url and nonce. Borrowed. */
size_t gwi_row_bytes(const gw_row *row);

/* gwi_save_segment returns how many rows from rows[0] (n >= 1) a driver
 * may write with one bulk statement: at most max of them, whose
 * gwi_row_bytes add up to at most max_bytes (the first row always counts),
 * ending before the first row whose key an earlier row of the segment
 * has. (A key twice in one batch is saved in batch order, the second
 * write seeing the first: so they go to consecutive segments.) The keys
 * of one segment are distinct. Borrowed. */
size_t gwi_save_segment(const gw_row *rows, size_t n, size_t max, size_t max_bytes);

/* ---- scheduled invocations ----------------------------------------------------- */

/* gwi_sched_id_ok: id is 1..GW_SCHED_ID_MAX characters of [A-Za-z0-9_.:-].
 * store.c refuses every other id before a driver sees it, so the drivers
 * may spell ids into SQL and array literals between quotes (gwi_id_list).
 * id: borrowed, may be NULL (false). */
bool gwi_sched_id_ok(const char *id);

/* gwi_id_list spells ids[0..n) as head "q id1 q,q id2 q,..." tail, q being
 * quote: e.g. ("{", '"', "}") makes a PostgreSQL text[] literal, ("... IN
 * (", '\'', ")") an SQL IN list. Every id must pass gwi_sched_id_ok (at most
 * GW_SCHED_ID_MAX bytes of each are spelled). All arguments borrowed.
 * Caller frees; NULL: no memory. */
char *gwi_id_list(const char *head, char quote, const char *tail, const char *const *ids, size_t n);

/* A claim's candidates: what the driver's two claim scans (unclaimed due
 * rows, then rows whose lease expired, up to max each) found, before the
 * max earliest are kept. */
typedef struct gwi_claim {
	gw_sched_row *rows; /* owned: room for 2 * max; rows[0..n) hold owned fields */
	size_t n;
	size_t max;
} gwi_claim;

/* gwi_claim_init makes room for two scans of up to max rows each.
 * GW_ENOMEM: *c is still safe to pass to gwi_claim_fini. */
gw_err gwi_claim_init(gwi_claim *c, size_t max);

/* gwi_claim_pick sorts the candidates by (due_ms, id) and returns how many
 * of them the claim takes: the first min(n, max). */
size_t gwi_claim_pick(gwi_claim *c);

/* gwi_claim_hand_out moves the first take candidates into out (caller
 * storage of at least take entries; their fields are then the caller's),
 * sets *n = take and frees the rest with the buffer (*c is then empty). */
void gwi_claim_hand_out(gwi_claim *c, size_t take, gw_sched_row *out, size_t *n);

/* gwi_claim_fini frees every candidate and the buffer. Accepts an empty or
 * failed *c. */
void gwi_claim_fini(gwi_claim *c);

#endif
