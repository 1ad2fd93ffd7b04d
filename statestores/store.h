/* store.h - the statestore: where actor state lives between activations.
 *
 * Two layers:
 *   gw_store      the front the runtime uses. It picks a driver by URL
 *                 scheme and encrypts/decrypts every state with AES-256-GCM
 *                 (crypto.h) so no driver ever sees plaintext.
 *   gw_store_ops  a driver: a table of functions over rows of ciphertext.
 *                 Drivers: sqlite, postgres, mariadb.
 *
 * Row model (one latest row per actor, older revisions per the history
 * policy, one activation epoch per actor):
 *   (system, name) -> revision, epoch, key_id, nonce, ciphertext, type_url,
 *                     effects (flag, version 4)
 *   (system, name, revision) -> the same but effects   (history)
 *   (system, name) -> current activation epoch         (spawn_actor_epoch)
 * revision grows by exactly one per successful save. A save names the
 * revision it expects to replace (0 = the actor has no row yet); a save that
 * finds another revision fails with GW_ECONFLICT and writes nothing, so no
 * update is ever lost.
 *
 * Fencing (exactly one live activation per actor, docs/design/statestore.md):
 *   activation:  gw_store_acquire (epoch := epoch + 1, committed) -> load
 *   every save:  carries that epoch; inside the save's transaction the
 *                actor's CURRENT epoch is read under a lock that an acquire
 *                must wait for, and a save whose epoch is not the current
 *                one fails with GW_EFENCED (fencing wins over a conflict).
 * So a save racing an acquire either commits before the acquire (and the
 * new activation's load sees it) or is fenced. A save with epoch 0 is
 * unfenced (tests, tools): no epoch is checked.
 *
 * Batched activation (gw_store_activate_batch, ops version 5): the epochs
 * of up to GW_STORE_ACTIVATE_MAX actors in one committed transaction, then
 * their latest rows in one read (per dialect), each decrypted here; the
 * same fencing per actor as acquire -> load.
 *
 * Store transactions (drivers):
 *   save_batch: BEGIN -> for each row: [fence check] conditional write,
 *               per-row result (OK / ECONFLICT / EFENCED), history ->
 *               COMMIT.  Any driver/IO error -> ROLLBACK and the whole
 *               batch reports that error; no row of a failed batch is
 *               considered saved. The networked drivers run the rows of
 *               a batch in bulk (a few statements per up to 256 rows of
 *               distinct keys) with the outcomes of this loop.
 *
 * UNNAMED instances (spawn_instance) and scheduled invocations
 * (spawn_schedule) live in the same store: see their sections below.
 *
 * Blocking: every function here blocks (disk or network). Call them only
 * from the statestore thread(s), never from a completion-queue thread.
 * Thread: a gw_store is used by one thread at a time (the persist thread).
 * (The front keeps no per-call state and the networked drivers pool their
 * connections, so a postgres or mariadb store may serve several threads at
 * once; a sqlite store may not. Several gw_store handles on one sqlite
 * file, one thread each, are fine.)
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"

typedef struct gw_store gw_store; /* opaque */

/* The identity of one actor. Both strings borrowed (except where a function
 * says it hands out owned keys: gw_store_effects_list, gw_keys_fini). */
typedef struct gw_actor_key {
	const char *system;
	const char *name;
} gw_actor_key;

/* ---- the front --------------------------------------------------------- */

typedef struct gw_store_opts {
	/* Keyring "id1:base64key,id2:base64key" (first encrypts, all decrypt) or
	 * a single base64 key (id "k0"). Borrowed during open. NULL: for a
	 * file-backed store, use or create "<db path>.key" (mode 0600) beside
	 * the database; other stores fail with GW_ECONFIG. */
	const char *keys;
	/* Connection pool size for networked stores; 0 = driver default. */
	int pool_size;
	/* Optional: when gw_store_open fails it writes a one-line reason here
	 * (caller storage of errlen bytes, NUL-terminated; never contains key
	 * material). NULL: the reason is logged (GW_ERROR) instead. */
	char *err;
	size_t errlen;
	/* History policy (every driver): besides the latest revision, keep
	 * this many older revisions per actor (spawn_actor_history, see
	 * docs/schema.md), 0..1000000. 0 = only the latest (saves then leave
	 * the history table alone). Appended member: callers that
	 * zero-initialise get 0. */
	int history;
	/* PostgreSQL and MariaDB: the server aborts a transaction of this
	 * client that stays idle (between two statements) longer than this,
	 * freeing its row locks (PostgreSQL idle_in_transaction_session_timeout
	 * unless the URL, role or server set one; MariaDB idle_transaction_timeout,
	 * rounded up to seconds). Cluster mode sets it to the member's fence
	 * time, so a member cut off from the database in the middle of a
	 * transaction does not hold the rows the new owners take over
	 * (docs/design/cluster.md, "The member loses the database").
	 * 0 = the server's default. SQLite ignores it. Appended member. */
	int idle_tx_timeout_ms;
	/* PostgreSQL and MariaDB: a connection whose sent data stays unacknowledged this
	 * long is dropped (libpq tcp_user_timeout; connect_timeout the same,
	 * in seconds, at least 2), unless the URL sets them. The membership's
	 * own handle sets it to the fence time, so after the database was cut
	 * off it reconnects within a heartbeat or two of its return instead
	 * of waiting out TCP's retransmission backoff (docs/design/cluster.md).
	 * MariaDB: the same, TCP_USER_TIMEOUT set on each connection (TCP;
	 * not a unix socket) and connect_timeout in seconds, at least 2 (or
	 * the URL's when shorter). 0 = the driver's defaults (30 s, 10 s).
	 * SQLite ignores it. Appended member. */
	int net_timeout_ms;
} gw_store_opts;

/* One actor's state as the runtime sees it: plaintext. */
typedef struct gw_state {
	gw_actor_key key;     /* borrowed */
	const char *type_url; /* borrowed; "" when the actor has no state type */
	const uint8_t *data;  /* borrowed plaintext (serialized ActorState) */
	size_t len;
	uint64_t expected; /* save: revision being replaced, 0 = new row */
	uint64_t epoch;    /* save: the activation's epoch (gw_store_acquire);
	                      0 = unfenced */
	int effects;       /* save: 1 when this state carries undelivered side effects
	                      (an outbox); 0 otherwise (any other value is taken as 1).
	                      Appended member (ops version 4): see gw_store_effects_list */
} gw_state;

/* What a load returns. Fields owned by the record: free with
 * gw_loaded_fini(). */
typedef struct gw_loaded {
	char *type_url;
	uint8_t *data; /* plaintext */
	size_t len;
	uint64_t revision;
	uint64_t epoch; /* the epoch the revision was saved with (0: unfenced);
	                   not the actor's current epoch */
} gw_loaded;

/* gw_store_open connects the store named by url:
 *   sqlite:///abs/path/state.db   sqlite://relative/path.db   sqlite::memory:
 *   postgres://user:password@host:port/db?sslmode=...   (also postgresql://)
 *   mariadb://user:password@host:port/db                (also mysql://)
 * opts may be NULL (all defaults: the key file beside a file-backed store).
 * Returns GW_OK and sets *out (free with gw_store_close), or:
 *   GW_EINVAL    out or url is NULL
 *   GW_ECONFIG   unknown scheme, bad URL, bad or missing key, a key file
 *                readable by group/other, a schema newer than this build
 *   GW_ECRYPTO   the key does not decrypt the store's key check (wrong key)
 *   GW_ECORRUPT  the stored key check record is malformed
 *   GW_EIO       the database could not be opened or its schema created
 *                (GW_EUNAVAIL when it stayed locked by another process,
 *                or a database server could not be reached)
 * Blocks: yes. Thread: any. */
gw_err gw_store_open(gw_store **out, const char *url, const gw_store_opts *opts);

/* gw_store_close closes the store. Accepts NULL. Never fails. */
void gw_store_close(gw_store *s);

/* gw_store_load reads and decrypts an actor's latest state.
 * Returns GW_OK and fills *out (free with gw_loaded_fini; data is never
 * NULL, even for an empty state); GW_ENOTFOUND (no row; *out untouched);
 * GW_ECRYPTO (row does not authenticate: wrong key, or a row copied from
 * another actor); GW_ECORRUPT (truncated row); GW_EIO / GW_EUNAVAIL. */
gw_err gw_store_load(gw_store *s, const gw_actor_key *k, gw_loaded *out);

/* gw_store_save_batch encrypts and writes n states in one transaction.
 * results[i] (caller storage, n entries) gets each row's outcome:
 * GW_OK (saved as revision states[i].expected + 1), GW_ECONFLICT (the
 * stored revision is not states[i].expected) or GW_EFENCED (epoch != 0 and
 * not the actor's current epoch: another activation took over; checked
 * first, so it wins over a conflict). Returns GW_OK when the transaction
 * committed (look at results), or the error that rolled back the whole batch (GW_EIO,
 * GW_EUNAVAIL, GW_ENOMEM, GW_ETOOBIG), in which case results[] are all set
 * to it. GW_EINVAL (nothing written, results[] set to it): a state with a
 * NULL or empty system/name, NULL data with len > 0, expected >= INT64_MAX
 * or epoch > INT64_MAX (SQL integers are signed). A NULL type_url is
 * stored as "". n == 0 is GW_OK. A saved row also records states[i].effects
 * (0 or 1) as the actor's effects flag (gw_store_effects_list); a row that
 * is not saved (conflict, fenced) keeps its flag. */
gw_err gw_store_save_batch(gw_store *s, const gw_state *states, size_t n, gw_err *results);

/* gw_store_remove deletes an actor's row and its history (all revisions),
 * and with the row its effects flag (a removed actor is never listed by
 * gw_store_effects_list). GW_OK even when no row existed. The actor's epoch
 * stays (epochs never go back), so a stale activation stays fenced. */
gw_err gw_store_remove(gw_store *s, const gw_actor_key *k);

/* ---- activation fencing, revisions, key rotation ---------------------------
 * (implemented by every driver: ops version 2) */

/* gw_store_acquire takes a new activation epoch for the actor: strictly
 * greater than every epoch handed out for it before, by any gateway on this
 * store (1 for an actor never acquired). From then on a save carrying any
 * other epoch (but 0) fails with GW_EFENCED, so a stale activation
 * elsewhere can never overwrite newer state. The runtime acquires, then
 * loads: a save of the previous activation either committed before the
 * acquire (the load sees it) or is fenced. Returns GW_OK and *epoch;
 * GW_EINVAL (bad key or NULL epoch); GW_EIO / GW_EUNAVAIL (also a lock
 * wait timeout or deadlock: retry). Works whether or not the actor has
 * stored state. Blocks: yes (one committed write; it waits for save
 * transactions of the actor in flight). */
gw_err gw_store_acquire(gw_store *s, const gw_actor_key *k, uint64_t *epoch);

/* gw_store_load_revision reads and decrypts revision `revision` of the
 * actor (0 = the latest, same as gw_store_load). GW_ENOTFOUND when that
 * revision is not kept (history policy) or the actor has no state; other
 * returns as gw_store_load. *out as gw_store_load (free with
 * gw_loaded_fini). Not fenced: a read changes nothing. */
gw_err gw_store_load_revision(gw_store *s, const gw_actor_key *k, uint64_t revision,
                              gw_loaded *out);

/* gw_store_list_revisions writes the revisions kept for the actor (the
 * latest and those in its history), newest first, into revs (caller
 * storage of cap entries) and their count (at most cap) into *n. *n = 0
 * when the actor has no state. GW_EINVAL: bad key, NULL n, or NULL revs
 * with cap > 0. */
gw_err gw_store_list_revisions(gw_store *s, const gw_actor_key *k, uint64_t *revs, size_t cap,
                               size_t *n);

/* Progress of re-encrypting the store to the primary key. The caller keeps
 * it (zeroed at start) and passes it to every step; steps add to it. */
typedef struct gw_rotation {
	uint64_t rewritten; /* rows re-encrypted to the primary key so far */
	uint64_t remaining; /* rows under another key not yet tried in this pass
	                       (estimate after each step; 0 when done) */
	uint64_t failed;    /* rows that did not decrypt with any key (left as
	                       they are); a row is met once per pass */
	int done;           /* every readable row is under the primary key */
} gw_rotation;

/* gw_store_rotate_step re-encrypts up to max_rows rows (latest states,
 * history and scheduled invocations) that are under a key other than the
 * primary, each with a
 * conditional write that keeps its revision and loses to any concurrent
 * save (that save seals under the primary anyway). Resumable: the pass's
 * cursor lives in the store (spawn_meta "rotation"), so a restarted gateway,
 * or another gw_store, continues where it stopped. A row that opens under
 * no key of the keyring (unknown key id, tampered, truncated) is counted in
 * failed and left untouched. When a pass reaches the end it counts the
 * rows still under other keys: no more than the pass's failed rows -> done
 * (and the store's key check is resealed under the primary, so a keyring
 * without the old keys opens it); otherwise (rows under an old key were
 * written behind the cursor, e.g. by a gateway with an older keyring) a new
 * pass starts. A call on a done store costs one count and says done again.
 * A new primary key starts a new pass.
 * Returns GW_OK and updates *progress (adds rewritten/failed, sets
 * remaining and done); GW_EINVAL (max_rows 0, NULL args); GW_EIO /
 * GW_EUNAVAIL / GW_ENOMEM (then *progress is untouched; rows the failed step
 * already re-encrypted are not counted). Run it on one gateway at a time:
 * two rotating at once stay correct (every rewrite is conditional) but
 * repeat each other's work. Blocks: yes (a scan, one transaction). */
gw_err gw_store_rotate_step(gw_store *s, size_t max_rows, gw_rotation *progress);

/* ---- batched activation (ops version 5) -------------------------------------- */

/* The most actors one gw_store_activate_batch takes: one bounded
 * transaction (256 epoch rows locked at once) and one bounded statement
 * (an IN list of 256 keys on MariaDB). The persist thread uses this size. */
#define GW_STORE_ACTIVATE_MAX 256

/* gw_store_activate_batch activates n actors at once: the equivalent of
 * gw_store_acquire then gw_store_load for each keys[i] in turn, with the n
 * epochs taken in ONE committed transaction (so one commit, one fsync on
 * SQLite, instead of n) and the n latest rows read with as few round trips
 * as the driver's dialect allows, after that commit (SQLite: inside it,
 * under the write lock). Per actor, the fencing of gw_store_acquire holds:
 * epochs[i] is strictly greater than every epoch handed out for keys[i]
 * before, and a save of keys[i] in flight either committed before the
 * batch took its epoch (out[i] shows it) or is fenced.
 * keys: borrowed, n distinct keys (a key twice in one batch is refused:
 * it would be two activations of one actor at once; the runtime never
 * asks for that, and equivalence with one-by-one calls would need two
 * epochs from one upsert). epochs, out, results: caller storage of n
 * entries each.
 * Returns GW_OK when the epochs committed; then epochs[i] is set for every
 * i and results[i] says what became of the load:
 *   GW_OK        out[i] filled (free with gw_loaded_fini; data never NULL)
 *   GW_ENOTFOUND no stored state (epochs[i] still taken; out[i] untouched)
 *   GW_ECRYPTO / GW_ECORRUPT / GW_ENOMEM  that row only (as gw_store_load;
 *                out[i] untouched); the other entries are unaffected
 * Or a whole-batch error, with results[0..n) all set to it and epochs[]
 * and out[] untouched: GW_EINVAL (nothing taken: NULL s/keys/epochs/out/
 * results with n > 0, n > GW_STORE_ACTIVATE_MAX, a key gw_store_acquire
 * refuses, a duplicate key); GW_EIO / GW_EUNAVAIL (also a lock wait
 * timeout or a deadlock with another gateway's batch: retry) / GW_ENOMEM.
 * After such an error some epochs may have been taken all the same (the
 * read after the commit failed): harmless, epochs only have to grow.
 * n == 0 is GW_OK. Blocks: yes (one committed write that waits for saves
 * of these actors in flight, then the reads). Thread: as every function
 * here (the persist thread). */
gw_err gw_store_activate_batch(gw_store *s, const gw_actor_key *keys, size_t n, uint64_t *epochs,
                               gw_loaded *out, gw_err *results);

/* ---- UNNAMED instances (ops version 3) -------------------------------------
 * An UNNAMED actor is a template; Spawn(SpawnRequest) makes named instances
 * of it at run time. The store remembers each instance and its template
 * (spawn_instance), so instances survive a restart of the gateway. Rows are
 * in clear (an instance's key and its template's name are identities, like
 * the keys of spawn_actor_state) and never deleted by the store
 * (gw_store_remove leaves them too). */

/* gw_store_instance_put records that instance k was spawned from template
 * parent (borrowed, non-empty). Idempotent: GW_OK when k is new (written) or
 * already recorded with the same parent (nothing written); GW_ECONFLICT
 * (nothing written) when k is recorded with another parent, also when a
 * concurrent put with another parent won. GW_EINVAL: bad key or empty /
 * NULL parent. GW_ETOOBIG: a parent longer than the driver stores (mariadb:
 * 1,024 bytes). GW_EIO / GW_EUNAVAIL. Blocks: yes (one committed write). */
gw_err gw_store_instance_put(gw_store *s, const gw_actor_key *k, const char *parent);

/* gw_store_instance_get reads the template of instance k into *parent
 * (caller frees with free()). GW_ENOTFOUND (k was never put; *parent
 * untouched), GW_EINVAL, GW_EIO / GW_EUNAVAIL. Blocks: yes. */
gw_err gw_store_instance_get(gw_store *s, const gw_actor_key *k, char **parent);

/* ---- scheduled invocations (ops version 3) ---------------------------------
 * A scheduled invocation is a row of spawn_schedule: an id, its due time,
 * and data (a serialized spawn.InvocationRequest) sealed like a state
 * (AES-256-GCM under the primary key, fresh nonce), with the AAD of
 * (GW_SCHED_AAD_SYSTEM, id): a row's data copied onto another id does not
 * open. Rows are stored when put and deleted by gw_store_schedule_done; in
 * between a gateway claims them with a lease:
 *
 *   PENDING --- claim (due_ms <= now) --------> LEASED(owner, lease_until)
 *   LEASED ---- done --------------------------> (deleted)
 *   LEASED ---- lease_until <= now, claim -----> LEASED(new owner, new lease)
 *   LEASED ---- data does not open (claim) ----> SET ASIDE (owner "corrupt",
 *                                               lease_until INT64_MAX)
 *
 * Invariants:
 *   1. A claim returns a row only when it is due and unclaimed or its lease
 *      expired, and leases it in the same transaction (rows locked by a
 *      concurrent claim are skipped, not waited for): two claims running at
 *      once never return the same row, and a row is returned again only
 *      after its lease expired without a done.
 *   2. Claim and next_due read O(log n) index entries plus the rows they
 *      return (plus the rows whose lease expired): pending rows that are not
 *      due are never read, so 100,000 of them cost their disk space only.
 *   3. A row whose data does not open (wrong or missing key, tampering) is
 *      never returned, never deleted and never crashes the claim: it is set
 *      aside (logged at GW_ERROR) and stays for an operator, who can put it
 *      back with  UPDATE spawn_schedule SET owner = NULL, lease_until = NULL
 *      WHERE owner = 'corrupt'  once the keyring can open it.
 * Delivery is at least once across gateways (a gateway that dies between
 * delivering and gw_store_schedule_done leaves the row to be claimed again
 * when its lease expires; on sqlite a power cut may also undo the last
 * dones, which commit without an fsync, with the same outcome); a gateway
 * that keeps its own claimed ids until it has called done never delivers a
 * row twice itself.
 * Key rotation (gw_store_rotate_step) re-seals scheduled rows too, each
 * with a conditional rewrite that keeps its due time and its claim. */

#define GW_SCHED_ID_MAX     39                 /* longest id, bytes: [A-Za-z0-9_.:-] */
#define GW_SCHED_OWNER_MAX  128                /* longest owner (gateway id), bytes */
#define GW_SCHED_CORRUPT    "corrupt"          /* owner of a row set aside; not a valid owner */
#define GW_SCHED_AAD_SYSTEM "__spawn.schedule" /* the AAD system of a row's data */
#define GW_SCHED_DONE_CHUNK 4096               /* ids per done_batch transaction */
/* The longest system name a row records (gw_store_schedule_put_sys): crypto.h's
 * GW_SEAL_SYSTEM_MAX. */
#define GW_SCHED_SYSTEM_MAX 4096

/* One claimed scheduled invocation. */
typedef struct gw_sched {
	char id[40];    /* unique id given at put (e.g. 32 hex chars), NUL-terminated */
	int64_t due_ms; /* Unix epoch milliseconds */
	uint8_t *data;  /* plaintext; owned (gw_sched_free); never NULL */
	size_t len;
	char *system; /* owned (gw_sched_free): the system whose data key sealed the
	                 row (gw_store_schedule_put_sys); NULL for a row sealed under
	                 the keyring key (gw_store_schedule_put, earlier gateways) */
} gw_sched;

/* gw_store_schedule_put stores a scheduled invocation: data (len bytes,
 * borrowed; NULL only with len 0) sealed, due at due_ms (>= 0), unclaimed.
 * id: 1..GW_SCHED_ID_MAX characters of [A-Za-z0-9_.:-], unique (the caller
 * makes it, e.g. 32 random hex characters). Returns GW_OK once committed
 * (it then survives any restart); GW_ECONFLICT (nothing written) when a row
 * with this id exists: after a put that failed with GW_EUNAVAIL (unknown
 * outcome) a retry that sees GW_ECONFLICT means the first put committed;
 * GW_EINVAL (bad id, due_ms < 0, NULL data with len > 0); GW_ENOMEM /
 * GW_ETOOBIG / GW_ECRYPTO (sealing); GW_EIO / GW_EUNAVAIL.
 * Blocks: yes (one committed insert). */
gw_err gw_store_schedule_put(gw_store *s, const char *id, int64_t due_ms, const uint8_t *data,
                             size_t len);

/* gw_store_schedule_put_sys is gw_store_schedule_put with the data sealed
 * under the data key of system (borrowed; the invocation's target system,
 * 1..GW_SCHED_SYSTEM_MAX bytes, recorded in the row: crypto.h, envelope 3
 * of a schedule row), so one system's key opens no other system's
 * scheduled invocations; a claim returns the system with the row
 * (gw_sched.system) for the caller to check against the invocation's
 * target. system NULL: as gw_store_schedule_put. Same returns. */
gw_err gw_store_schedule_put_sys(gw_store *s, const char *id, const char *system, int64_t due_ms,
                                 const uint8_t *data, size_t len);

/* gw_store_schedule_claim claims up to max rows due by now_ms (due_ms <=
 * now_ms) that are unclaimed or whose lease expired (lease_until <=
 * now_ms), for owner (a gateway id, 1..GW_SCHED_OWNER_MAX bytes, not
 * GW_SCHED_CORRUPT), with a lease until now_ms + lease_ms; ordered by due
 * time (ties by id); one transaction (SELECT ... FOR UPDATE SKIP LOCKED on
 * PostgreSQL / MariaDB 10.6+ / MySQL 8, BEGIN IMMEDIATE on SQLite).
 * *out: an array of *n decrypted rows (caller frees with gw_sched_free(*out,
 * *n)); *out = NULL when *n == 0. Fewer than max rows does not prove that no
 * more are due: rows locked by a concurrent claim were skipped and rows
 * that did not open were set aside (invariant 3); gw_store_schedule_next_due
 * says when to look again. max == 0: GW_OK with nothing claimed; a max
 * above 4096 is taken as 4096 (one claim is one bounded transaction).
 * Returns GW_OK; GW_EINVAL (NULL out/n/owner, bad owner, now_ms < 0,
 * lease_ms <= 0, now_ms + lease_ms >= INT64_MAX); GW_ENOMEM; GW_EIO /
 * GW_EUNAVAIL (nothing claimed, *out and *n untouched). A claim whose
 * COMMIT answer was lost may have leased rows it does not return: they come
 * back when the lease expires. Blocks: yes (one transaction). */
gw_err gw_store_schedule_claim(gw_store *s, int64_t now_ms, const char *owner, int64_t lease_ms,
                               size_t max, gw_sched **out, size_t *n);

/* gw_store_schedule_done deletes row id after its delivery (whoever holds
 * the lease). GW_OK also when no such row exists (done twice, or never
 * put). GW_EINVAL (bad id), GW_EIO / GW_EUNAVAIL. Blocks: yes. */
gw_err gw_store_schedule_done(gw_store *s, const char *id);

/* gw_store_schedule_done_batch deletes the rows ids[0..n) after their
 * delivery (ops version 4), like n calls of gw_store_schedule_done but in
 * one transaction (one DELETE statement) per chunk of up to
 * GW_SCHED_DONE_CHUNK ids: a larger n is split into several transactions,
 * in order, and an error stops at the failing chunk (the earlier chunks
 * stay deleted). ids that do not exist (done twice, never put, a duplicate
 * in ids) are fine. ids: borrowed, n entries. Returns GW_OK (n == 0
 * included); GW_EINVAL (nothing deleted: NULL ids with n > 0, or any id
 * that gw_store_schedule_done would refuse); GW_ENOMEM; GW_EIO /
 * GW_EUNAVAIL (the failing chunk deleted nothing). Blocks: yes
 * (one committed transaction per chunk). */
gw_err gw_store_schedule_done_batch(gw_store *s, const char *const *ids, size_t n);

/* gw_store_schedule_next_due writes into *due_ms the earliest time at which
 * a claim can return a row: the earliest due_ms of the unclaimed rows, or
 * an earlier lease_until of a leased row (its lease then expires and the
 * row is claimable again); rows set aside do not count. It may be in the
 * past (overdue rows: claim now). GW_ENOTFOUND when no row can ever be
 * claimed (*due_ms untouched). O(log n): two index lookups. Blocks: yes. */
gw_err gw_store_schedule_next_due(gw_store *s, int64_t *due_ms);

/* gw_store_schedule_count writes the number of stored rows (unclaimed,
 * leased and set aside: everything not yet done) into *pending. For stats
 * and tests: it counts index entries, O(n). Blocks: yes. */
gw_err gw_store_schedule_count(gw_store *s, uint64_t *pending);

/* ---- counts for quotas (ops version 6) -------------------------------------
 * The gateway keeps per-system quotas on instances and scheduled
 * invocations in memory and reads the counts once at start-up. */

/* One group of a count: key (a system name, or an id prefix) borrowed for
 * the call. */
typedef void (*gw_count_fn)(void *user, const char *key, uint64_t n);

/* gw_store_instance_counts calls fn once per system that has instances
 * (spawn_instance rows), with their number (order unspecified). O(n) over
 * the primary key. Returns GW_OK, GW_EINVAL (NULL args) or the driver's error
 * (fn may have run for some systems). Blocks: yes. */
gw_err gw_store_instance_counts(gw_store *s, gw_count_fn fn, void *user);

/* gw_store_schedule_counts calls fn once per distinct prefix of prefix_len
 * bytes (1..GW_SCHED_ID_MAX) of the stored scheduled invocations' ids (every
 * row not yet done, as gw_store_schedule_count), with the number of rows
 * (order unspecified); ids shorter than prefix_len are grouped whole. The
 * gateway starts every id with its target system's hash (bounds.c). O(n).
 * Returns GW_OK, GW_EINVAL or the driver's error. Blocks: yes. */
gw_err gw_store_schedule_counts(gw_store *s, size_t prefix_len, gw_count_fn fn, void *user);

/* gw_store_schedule_scan reads up to max rows (a max above 4096 is taken
 * as 4096) of the stored scheduled invocations with after < id < below
 * (byte order; after NULL or "" = from the first, below NULL = to the
 * last), in id order, whoever holds them, and calls fn(user, id, due_ms,
 * data, len) for each row that opens (data: the plaintext
 * spawn.InvocationRequest, borrowed for the call); a row that does not
 * open is read but not shown. *n gets how many rows were read, last the
 * id of the last one ("" when none): *n < max means there are no more.
 * Nothing is claimed or changed (Admin.ListSchedules). Returns GW_OK;
 * GW_EINVAL (NULL arguments, max 0, a driver without sched_range);
 * GW_ENOMEM; GW_EIO / GW_EUNAVAIL. Blocks: yes (one range read). */
typedef void (*gw_sched_scan_fn)(void *user, const char *id, int64_t due_ms, const uint8_t *data,
                                 size_t len);
gw_err gw_store_schedule_scan(gw_store *s, const char *after, const char *below, size_t max,
                              gw_sched_scan_fn fn, void *user, size_t *n,
                              char last[GW_SCHED_ID_MAX + 1]);

/* gw_sched_free frees n claimed rows (their data and the array). Accepts
 * NULL. */
void gw_sched_free(gw_sched *v, size_t n);

/* ---- undelivered side effects (ops version 4) -------------------------------
 * A turn whose checkpointed state carries side effects not yet delivered
 * (an outbox inside the sealed state) is saved with gw_state.effects = 1;
 * the save that records their delivery writes 0. The flag is a column of
 * the actor's latest row (spawn_actor_state.effects), in clear, with an
 * index holding only the flagged rows, so after a crash the gateway lists
 * the actors to redeliver for in O(flagged rows), without reading (or
 * decrypting) every row. The history keeps no flag, a key rotation leaves
 * it as it is, gw_store_remove removes it with the row. */

/* gw_store_effects_list writes the keys of up to max actors whose latest
 * row has its effects flag set, in key order (system, then name, byte
 * order), strictly after *after (NULL: from the first), into out (caller
 * storage of max entries), and their count into *n; *n < max means there
 * are no more. Page with after = &out[*n - 1] (then free the page).
 * out[0..*n): system and name owned by the caller: free them with
 * gw_keys_fini(out, *n) (or free() each string). after: borrowed; its
 * strings may be empty ({"", ""} is before every key). Returns GW_OK;
 * GW_EINVAL (NULL s/out/n, max == 0, after with a NULL string); GW_ENOMEM;
 * GW_EIO / GW_EUNAVAIL (out and *n untouched). Reads O(log rows + max)
 * index entries. Blocks: yes. */
gw_err gw_store_effects_list(gw_store *s, const gw_actor_key *after, size_t max, gw_actor_key *out,
                             size_t *n);

/* gw_keys_fini frees the strings of n keys a function handed out as owned
 * (gw_store_effects_list) and sets them to NULL; the array itself stays
 * the caller's. Accepts NULL. */
void gw_keys_fini(gw_actor_key *v, size_t n);

/* ---- forgetting an actor (ops version 7) -------------------------------------
 * Admin.Forget erases everything the store holds of one actor, for good:
 * its latest row (and with it its outbox of undelivered side effects and
 * its effects flag), every revision of its history, its instance record
 * (UNNAMED instances) and the scheduled invocations that target it. The
 * activation epoch row (spawn_actor_epoch: the key and a counter, no data)
 * stays, as after gw_store_remove, and is bumped by one in the same
 * transaction: epochs never go back, and an activation elsewhere that
 * predates the forget is fenced at its next save instead of writing the
 * actor back. */

/* What a forget erased. */
typedef struct gw_forget_counts {
	uint64_t state;     /* latest rows deleted: 0 or 1 */
	uint64_t history;   /* history revisions deleted */
	uint64_t instance;  /* instance records deleted: 0 or 1 */
	uint64_t schedules; /* scheduled invocations deleted */
	uint64_t outbox;    /* 1 when the deleted latest row carried undelivered side
	                       effects (its effects flag), else 0 */
} gw_forget_counts;

/* Whether a scheduled invocation (its plaintext data, borrowed for the
 * call: a serialized spawn.InvocationRequest) targets the actor being
 * forgotten. Called on the calling thread, during gw_store_forget. */
typedef bool (*gw_sched_match_fn)(void *user, const uint8_t *data, size_t len);

/* gw_store_forget erases actor k (see above). Scheduled invocations: the
 * rows whose id begins with sched_prefix (the gateway starts every id with
 * its target system's hash) are read and opened, and those for which
 * match says true are deleted with the rest; a row that does not open is
 * left (it cannot be told apart). sched_prefix NULL or match NULL: no
 * scheduled invocation is touched. The deletes run in ONE transaction
 * (rows scheduled between the scan and that transaction are not seen).
 * *out (may be NULL) gets the counts on GW_OK; all zero when the store
 * held nothing of k (that is GW_OK too). Returns GW_OK; GW_EINVAL (bad key,
 * a prefix that is not the start of a valid id); GW_ENOMEM; GW_EIO /
 * GW_EUNAVAIL (nothing deleted). Blocks: yes (a scan of the system's
 * schedule rows, one transaction). */
gw_err gw_store_forget(gw_store *s, const gw_actor_key *k, const char *sched_prefix,
                       gw_sched_match_fn match, void *user, gw_forget_counts *out);

/* ---- cluster membership (ops version 8) ---------------------------------------
 * The members table (spawn_members, docs/schema.md, docs/design/cluster.md)
 * of the gateways that share one PostgreSQL or MariaDB store. Every time in
 * it is the DATABASE's clock (milliseconds since the epoch), never a
 * member's, so clock skew between members cannot kill anyone: a heartbeat
 * writes the database's now, and a listing returns the database's now with
 * the rows, so a heartbeat's age is computed on one clock. SQLite has no
 * such table: these functions return GW_ECONFIG there (a store of one
 * gateway; gw_store_cluster_ok says so before any call). */

enum {
	GW_MEMBER_JOINING = 1,
	GW_MEMBER_ACTIVE = 2,
	GW_MEMBER_LEAVING = 3,
	GW_MEMBER_DEAD = 4,
};

/* Bounds of the members table's text: an id or address up to
 * GW_MEMBER_ID_MAX bytes, a served list up to GW_MEMBER_TEXT_MAX. */
#define GW_MEMBER_ID_MAX   255
#define GW_MEMBER_TEXT_MAX 65536

/* The reason gw_store_cluster_ok gives: one line for the operator. */
#define GW_STORE_CLUSTER_NEEDS "cluster mode needs PostgreSQL or MariaDB"

/* One row of spawn_members. Strings: owned by the array that holds the row
 * (gw_store_member_list: free with gw_member_rows_free); borrowed for the
 * call in a driver's callback. */
typedef struct gw_member_row {
	char *id;             /* "advertise@start_ms-suffix", unique for each start */
	char *address;        /* the advertised HOST:PORT */
	int status;           /* GW_MEMBER_* */
	int64_t started_ms;   /* database time of the join */
	int64_t heartbeat_ms; /* database time of the last heartbeat */
	char *served;         /* newline-separated "system/actor_type" its hosts serve */
	uint64_t view_version;
} gw_member_row;

/* gw_store_cluster_ok tells whether the store's driver has the members
 * table (postgres, mariadb) or not (sqlite). Does not block. */
bool gw_store_cluster_ok(const gw_store *s);

/* gw_store_member_join inserts the row (id, address, served) with status
 * JOINING and started_ms = heartbeat_ms = the database's now (also written
 * to *now_ms, may be NULL). All strings borrowed. Returns GW_OK;
 * GW_ECONFLICT (the id exists: nothing written); GW_EINVAL (NULL or empty
 * id/address, NULL served); GW_ECONFIG (sqlite); GW_EIO / GW_EUNAVAIL.
 * Blocks: yes. */
gw_err gw_store_member_join(gw_store *s, const char *id, const char *address, const char *served,
                            int64_t *now_ms);

/* gw_store_member_heartbeat sets the row's heartbeat_ms to the database's
 * now, its status (GW_MEMBER_JOINING..LEAVING), served and view_version,
 * unless the row is DEAD or gone: then nothing is written and *alive =
 * false (this member was declared dead, or its row was collected: it must
 * fence itself). *alive = true: the heartbeat was written. *now_ms (may be
 * NULL): the database's now. Returns GW_OK; GW_EINVAL; GW_ECONFIG;
 * GW_EIO / GW_EUNAVAIL (then nothing is known). Blocks: yes. */
gw_err gw_store_member_heartbeat(gw_store *s, const char *id, int status, const char *served,
                                 uint64_t view_version, bool *alive, int64_t *now_ms);

/* gw_store_member_list reads every row (dead ones too), ordered by id, into
 * *rows (caller frees with gw_member_rows_free(*rows, *n); NULL when *n is
 * 0) and the database's now, read by the same statement, into *now_ms.
 * Returns GW_OK; GW_EINVAL; GW_ECONFIG; GW_ENOMEM; GW_EIO / GW_EUNAVAIL
 * (nothing set). Blocks: yes. */
gw_err gw_store_member_list(gw_store *s, gw_member_row **rows, size_t *n, int64_t *now_ms);

/* gw_member_rows_free frees n rows a listing handed out. Accepts NULL. */
void gw_member_rows_free(gw_member_row *rows, size_t n);

/* gw_store_member_declare_dead marks member id DEAD with ONE conditional
 * update: only while its status is JOINING, ACTIVE or LEAVING and its
 * heartbeat_ms is still observed_heartbeat_ms (what the declarer listed).
 * Of several members declaring the same one, exactly one update wins; a
 * member that heartbeated since the observation is not declared.
 * Returns GW_OK (this call declared it); GW_ECONFLICT (someone else did,
 * it heartbeated meanwhile, it left, or there is no such row); GW_EINVAL;
 * GW_ECONFIG; GW_EIO / GW_EUNAVAIL. Blocks: yes. */
gw_err gw_store_member_declare_dead(gw_store *s, const char *id, int64_t observed_heartbeat_ms);

/* gw_store_member_remove deletes row id (a graceful leave's last step).
 * GW_OK also when there was none. Blocks: yes. */
gw_err gw_store_member_remove(gw_store *s, const char *id);

/* gw_store_member_gc deletes the DEAD rows whose last heartbeat is older
 * than the database's now minus dead_for_ms (> 0), so the table stays
 * bounded by the members of the last while; *removed (may be NULL) gets
 * how many. Blocks: yes. */
gw_err gw_store_member_gc(gw_store *s, int64_t dead_for_ms, uint64_t *removed);

/* ---- activation leases (ops version 10) -----------------------------------------
 * In a cluster an actor's epoch row also names the member whose activation
 * holds it (spawn_actor_epoch.owner; NULL outside cluster mode and on
 * SQLite, where these functions return GW_ECONFIG). An activation takes the
 * epoch only when the row has no owner, is owned by the activating member,
 * or is owned by a member that is not live (its spawn_members row is DEAD
 * or gone), and only while the activating member's own row is live: so two
 * live members never both hold an actor's activation (docs/design/cluster.md,
 * "The activation lease"). An activation that ends clears the owner with a
 * conditional update (gw_store_lease_release). */

/* gw_store_lease_acquire is gw_store_acquire for member (borrowed, a member
 * id of spawn_members): GW_OK and *epoch as gw_store_acquire, the row now
 * owned by member; or GW_EOWNED (nothing changed): the row is owned by the
 * live member whose id is written to holder (caller storage of holder_len
 * bytes, may be NULL; "" when member itself is not a live member: declared
 * dead, gone, or never joined). Other returns as gw_store_acquire, and
 * GW_ECONFIG on a store without the members table. Blocks: yes (one
 * committed transaction). */
gw_err gw_store_lease_acquire(gw_store *s, const gw_actor_key *k, const char *member,
                              uint64_t *epoch, char *holder, size_t holder_len);

/* gw_store_lease_activate is gw_store_activate_batch for member: the
 * epochs are taken as gw_store_lease_acquire takes them, in one
 * transaction, and the latest rows of the keys that took one are read
 * after its commit. results[i] as gw_store_activate_batch's, or GW_EOWNED
 * (epochs[i] = 0, out[i] untouched, nothing changed for keys[i]) with the
 * holder's id in holders[i] when holders is not NULL (caller storage of n
 * entries; "" when member is not live). Whole-batch errors as
 * gw_store_activate_batch's, and GW_ECONFIG without the members table. */
gw_err gw_store_lease_activate(gw_store *s, const gw_actor_key *keys, size_t n, const char *member,
                               uint64_t *epochs, char (*holders)[GW_MEMBER_ID_MAX + 1],
                               gw_loaded *out, gw_err *results);

/* gw_store_lease_release clears the owner of keys[i]'s epoch row when it
 * is member and the row's epoch is still epochs[i] (the activation that
 * ends), for every i, in one statement; a row held by another member, or
 * re-acquired since (a newer epoch), is left as it is. *released (may be
 * NULL): how many rows changed. keys: n distinct valid keys, 1 <= n <=
 * GW_STORE_ACTIVATE_MAX (n == 0: GW_OK). Returns GW_OK; GW_EINVAL;
 * GW_ECONFIG; GW_EIO / GW_EUNAVAIL (nothing released: retry). Blocks: yes. */
gw_err gw_store_lease_release(gw_store *s, const gw_actor_key *keys, const uint64_t *epochs,
                              size_t n, const char *member, uint64_t *released);

/* gw_store_lease_ok tells whether the store's driver keeps leases. */
bool gw_store_lease_ok(const gw_store *s);

/* gw_store_scheme names the driver in use: the URL's scheme ("sqlite",
 * "postgres", "postgresql", "mariadb", "mysql"). Borrowed. */
const char *gw_store_scheme(const gw_store *s);

/* gw_loaded_fini frees what a load filled in and zeroes *l. Accepts NULL. */
void gw_loaded_fini(gw_loaded *l);

/* ---- drivers ------------------------------------------------------------ */

/* A stored row: ciphertext and the facts needed to decrypt it. */
typedef struct gw_row {
	gw_actor_key key;  /* borrowed (rot_scan: owned, free()) */
	uint64_t revision; /* load: stored revision; save: the new one */
	uint64_t expected; /* save only: revision being replaced (0 = new) */
	uint64_t epoch;
	const char *key_id; /* save: borrowed. load: owned (free()) */
	uint8_t nonce[12];
	uint8_t *data; /* ciphertext || 16-byte GCM tag. save: borrowed;
	                  load: owned (free()) */
	size_t len;
	const char *type_url; /* save: borrowed. load: owned (free()) */
	int effects;          /* save only (ops version 4): the effects flag, 0 or 1;
	                         load and rot_scan leave it 0 */
} gw_row;

/* Tables a rotation scan or rewrite works on. GW_ROT_SCHED (the scheduled
 * invocations) is scanned by the front through sched_range and rewritten
 * with sched_reseal, never through rot_scan / rot_rewrite. */
enum { GW_ROT_STATE = 0, GW_ROT_HISTORY = 1, GW_ROT_SCHED = 3 };

/* Where a rotation scan resumes: strictly after (system, name[, revision])
 * in byte order of the keys. key {"", ""} (revision 0) is before the first
 * row (real keys are never empty). */
typedef struct gw_rot_cursor {
	int table;         /* GW_ROT_STATE or GW_ROT_HISTORY */
	gw_actor_key key;  /* borrowed */
	uint64_t revision; /* history: the last revision passed */
} gw_rot_cursor;

/* One conditional re-encryption of a stored row. All pointers borrowed. */
typedef struct gw_rewrite {
	gw_actor_key key;
	uint64_t revision;      /* kept as it is */
	const char *old_key_id; /* the row must still carry old_key_id, */
	uint8_t old_nonce[12];  /* old_nonce and revision, else ECONFLICT */
	const char *key_id;     /* the new sealing */
	uint8_t nonce[12];
	const uint8_t *data; /* ciphertext || tag */
	size_t len;
} gw_rewrite;

/* A stored scheduled invocation: the sealed form of a gw_sched. */
typedef struct gw_sched_row {
	char id[40]; /* NUL-terminated */
	int64_t due_ms;
	const char *key_id; /* put: borrowed. claim: owned (free()) */
	uint8_t nonce[12];
	uint8_t *data; /* ciphertext || tag. put: borrowed; claim: owned (free()) */
	size_t len;
} gw_sched_row;

/* One conditional re-sealing of a stored scheduled invocation (key
 * rotation). All pointers borrowed. */
typedef struct gw_sched_reseal {
	const char *id;
	const char *old_key_id; /* the row must still carry old_key_id and */
	uint8_t old_nonce[12];  /* old_nonce, else ECONFLICT */
	const char *key_id;     /* the new sealing */
	uint8_t nonce[12];
	const uint8_t *data; /* ciphertext || tag */
	size_t len;
} gw_sched_reseal;

#define GW_STORE_OPS_VERSION 10

typedef struct gw_store_ops {
	int version;        /* GW_STORE_OPS_VERSION; members only appended */
	const char *scheme; /* matched against the URL scheme */
	/* open: url is the whole URL. Sets *drv. Creates or migrates the
	 * schema (docs/schema.md); opts->history is the history policy. */
	gw_err (*open)(const char *url, const gw_store_opts *opts, void **drv);
	/* load: fills *out (owned fields, see gw_row) or GW_ENOTFOUND. */
	gw_err (*load)(void *drv, const gw_actor_key *k, gw_row *out);
	/* save_batch: one transaction, per-row results; see the note above.
	 * A row with epoch != 0 is first checked against spawn_actor_epoch
	 * under a lock that acquire waits for (EFENCED unless equal); the
	 * write itself checks only the revision. With history N > 0 an OK row
	 * is also written to the history and revisions below new - N of that
	 * actor are deleted there. Version 4: the write also sets the row's
	 * effects column to row->effects (the history has none). */
	gw_err (*save_batch)(void *drv, const gw_row *rows, size_t n, gw_err *results);
	/* remove: the latest row and the history, in one transaction; never
	 * the epoch. */
	gw_err (*remove)(void *drv, const gw_actor_key *k);
	/* meta_get/meta_put: small key/value facts of the store itself (the
	 * key-check record, schema version, rotation cursor). meta_get: *val
	 * owned (free()), GW_ENOTFOUND when absent. meta_put overwrites. */
	gw_err (*meta_get)(void *drv, const char *name, uint8_t **val, size_t *len);
	gw_err (*meta_put)(void *drv, const char *name, const uint8_t *val, size_t len);
	/* path: the database file for file-backed stores (for the default key
	 * file), NULL otherwise. Borrowed, lives as long as drv. */
	const char *(*path)(void *drv);
	void (*close)(void *drv); /* never fails */

	/* ---- version 2 ---- */
	/* acquire: one committed upsert of the actor's epoch row: 1 when
	 * absent, else epoch + 1; *epoch gets the new value. */
	gw_err (*acquire)(void *drv, const gw_actor_key *k, uint64_t *epoch);
	/* load_revision: revision (>= 1) from the latest row or the history;
	 * fills *out as load does, or GW_ENOTFOUND. */
	gw_err (*load_revision)(void *drv, const gw_actor_key *k, uint64_t revision, gw_row *out);
	/* list_revisions: the distinct revisions of the latest row and the
	 * history, newest first, at most cap (>= 1) of them. */
	gw_err (*list_revisions)(void *drv, const gw_actor_key *k, uint64_t *revs, size_t cap,
	                         size_t *n);
	/* meta_create: writes name only when absent: GW_ECONFLICT (nothing
	 * written) when it exists, also when a concurrent creator won. */
	gw_err (*meta_create)(void *drv, const char *name, const uint8_t *val, size_t len);
	/* rot_count: rows of both tables whose key_id is not primary. */
	gw_err (*rot_count)(void *drv, const char *primary, uint64_t *n);
	/* rot_scan: up to max (>= 1) rows of after->table whose key_id is not
	 * primary, strictly after the cursor, in key order, into rows (caller
	 * storage of max entries), their number into *n (< max: the table is
	 * done). Fields owned as for load, and key.system / key.name are owned
	 * too (free()). A malformed nonce comes back zero-padded: the row then
	 * fails to open, it does not fail the scan. */
	gw_err (*rot_scan)(void *drv, const gw_rot_cursor *after, const char *primary, gw_row *rows,
	                   size_t max, size_t *n);
	/* rot_rewrite: one transaction over table: each row gets key_id, nonce
	 * and data when its revision, key_id and nonce are still the old ones
	 * (results[i] = GW_OK), else nothing (GW_ECONFLICT: a save or a trim
	 * got there first). revision, epoch, type_url, updated_at and (state
	 * table) effects stay.
	 * Errors as save_batch. */
	gw_err (*rot_rewrite)(void *drv, int table, const gw_rewrite *rows, size_t n,
	                      gw_err *results);

	/* ---- version 3 ---- */
	/* instance_put: insert (system, name, parent) when absent; an existing
	 * row with the same parent is GW_OK, another parent GW_ECONFLICT. */
	gw_err (*instance_put)(void *drv, const gw_actor_key *k, const char *parent);
	/* instance_get: *parent owned (free()), or GW_ENOTFOUND. */
	gw_err (*instance_get)(void *drv, const gw_actor_key *k, char **parent);
	/* sched_put: insert the row unclaimed (owner and lease_until NULL);
	 * GW_ECONFLICT (nothing written) when the id exists. */
	gw_err (*sched_put)(void *drv, const gw_sched_row *row);
	/* sched_claim: one transaction: lock (skipping locked rows) up to max
	 * (>= 1) rows with due_ms <= now and owner NULL, and up to max rows with
	 * lease_until <= now (owner not NULL), keep the max earliest by
	 * (due_ms, id), set their owner and lease_until, commit. rows: caller
	 * storage of max entries, filled in that order (owned fields); *n their
	 * number. On an error nothing is claimed and rows[] holds nothing. */
	gw_err (*sched_claim)(void *drv, int64_t now_ms, const char *owner, int64_t lease_until,
	                      size_t max, gw_sched_row *rows, size_t *n);
	/* sched_set_aside: owner := GW_SCHED_CORRUPT, lease_until := INT64_MAX
	 * for row id (no row: GW_OK). */
	gw_err (*sched_set_aside)(void *drv, const char *id);
	/* sched_done: delete row id (no row: GW_OK). */
	gw_err (*sched_done)(void *drv, const char *id);
	/* sched_next_due: min(min due_ms of rows with owner NULL, min
	 * lease_until < INT64_MAX of rows with an owner); GW_ENOTFOUND when
	 * both are empty. */
	gw_err (*sched_next_due)(void *drv, int64_t *due_ms);
	/* sched_count: all rows. */
	gw_err (*sched_count)(void *drv, uint64_t *n);

	/* ---- version 4 ---- */
	/* sched_done_batch: delete the rows ids[0..n) (1 <= n <=
	 * GW_SCHED_DONE_CHUNK, every id valid) in one transaction; missing
	 * ids are fine. */
	gw_err (*sched_done_batch)(void *drv, const char *const *ids, size_t n);
	/* effects_list: up to max (>= 1) keys of spawn_actor_state rows with
	 * effects <> 0, strictly after *after (never NULL: {"", ""} for the
	 * start), in key order, through the effects index; out[i] strings
	 * owned (free()). On an error out holds nothing. */
	gw_err (*effects_list)(void *drv, const gw_actor_key *after, size_t max, gw_actor_key *out,
	                       size_t *n);

	/* ---- version 5 ---- */
	/* activate_batch: keys[0..n) valid and distinct, 1 <= n <=
	 * GW_STORE_ACTIVATE_MAX. One committed transaction upserts each key's
	 * epoch row as acquire does (1 when absent, else epoch + 1; rows
	 * locked in key byte order, so two batches never wait on each other in
	 * a cycle) and writes key i's new epoch into epochs[i]; then the
	 * latest rows are read by reads that start after that commit (or
	 * inside the transaction, under a lock no save can pass): rows[i]
	 * (caller storage, zeroed) filled as load fills it (owned fields, key
	 * = keys[i]) with results[i] = GW_OK, or results[i] = GW_ENOTFOUND (no
	 * row) / GW_ECORRUPT (a malformed row). Returns GW_OK, or the error
	 * that failed the whole batch: then rows[] hold nothing (the driver
	 * freed them) and the front sets results[]. */
	gw_err (*activate_batch)(void *drv, const gw_actor_key *keys, size_t n, uint64_t *epochs,
	                         gw_row *rows, gw_err *results);

	/* ---- version 6 ---- */
	/* instance_counts: fn(user, system, rows) per system of spawn_instance
	 * (GROUP BY system; any order). */
	gw_err (*instance_counts)(void *drv, gw_count_fn fn, void *user);
	/* sched_counts: fn(user, prefix, rows) per distinct first prefix_len
	 * bytes of spawn_schedule ids (1 <= prefix_len <= GW_SCHED_ID_MAX). */
	gw_err (*sched_counts)(void *drv, size_t prefix_len, gw_count_fn fn, void *user);

	/* ---- version 7 ---- */
	/* sched_range: up to max (>= 1) rows of spawn_schedule with after < id
	 * < below (byte order), whoever holds them, in id order, into rows
	 * (caller storage of max entries; owned fields as sched_claim's), their
	 * number into *n (< max: no more). A malformed row is skipped. On an
	 * error rows hold nothing. */
	gw_err (*sched_range)(void *drv, const char *after, const char *below, size_t max,
	                      gw_sched_row *rows, size_t *n);
	/* forget: ONE transaction deletes k's spawn_actor_state row,
	 * spawn_actor_history rows, spawn_instance row and the spawn_schedule
	 * rows ids[0..n) (n may be 0; ids valid), adds one to k's epoch row
	 * when there is one (never deletes it), and fills *out with the rows
	 * each delete removed (outbox: the deleted state row's effects flag). */
	gw_err (*forget)(void *drv, const gw_actor_key *k, const char *const *ids, size_t n,
	                 gw_forget_counts *out);

	/* ---- version 8: cluster membership (NULL in a driver without the
	 * members table: the front answers GW_ECONFIG). Times: the
	 * database's clock, in ms since the epoch. ---- */
	/* member_join: INSERT status JOINING, started_ms = heartbeat_ms =
	 * now; GW_ECONFLICT when id exists. *now_ms: that now. */
	gw_err (*member_join)(void *drv, const char *id, const char *address, const char *served,
	                      int64_t *now_ms);
	/* member_heartbeat: UPDATE heartbeat_ms = now, status, served,
	 * view_version WHERE id AND status <> DEAD; *alive: the row exists and
	 * is not DEAD after it; *now_ms: the database's now. */
	gw_err (*member_heartbeat)(void *drv, const char *id, int status, const char *served,
	                           uint64_t view_version, bool *alive, int64_t *now_ms);
	/* member_list: fn(user, row) per row (strings borrowed for the call),
	 * in id order; *now_ms: the database's now, read by the same
	 * statement. A failure of fn (not GW_OK) stops and is returned. */
	gw_err (*member_list)(void *drv, gw_err (*fn)(void *user, const gw_member_row *row),
	                      void *user, int64_t *now_ms);
	/* member_declare_dead: UPDATE status = DEAD WHERE id AND status IN
	 * (JOINING, ACTIVE, LEAVING) AND heartbeat_ms = observed; *won: it
	 * changed the row. */
	gw_err (*member_declare_dead)(void *drv, const char *id, int64_t observed, bool *won);
	/* member_remove: DELETE the row (none: GW_OK). */
	gw_err (*member_remove)(void *drv, const char *id);
	/* member_gc: DELETE DEAD rows with heartbeat_ms < now - dead_for_ms;
	 * *removed: how many. */
	gw_err (*member_gc)(void *drv, int64_t dead_for_ms, uint64_t *removed);

	/* ---- version 9 ---- */
	/* sched_reseal: one transaction: each row id gets key_id, nonce and
	 * data when it still carries old_key_id and old_nonce (results[i] =
	 * GW_OK), else nothing (GW_ECONFLICT: done, forgotten or re-sealed
	 * meanwhile). due_ms, owner and lease_until stay. Errors as
	 * save_batch. */
	gw_err (*sched_reseal)(void *drv, const gw_sched_reseal *rows, size_t n, gw_err *results);

	/* ---- version 10: activation leases (NULL in a driver without the
	 * members table: the front answers GW_ECONFIG) ---- */
	/* lease_activate: keys[0..n) valid and distinct, 1 <= n <=
	 * GW_STORE_ACTIVATE_MAX, member valid. ONE committed transaction:
	 * every key's epoch row exists (created with epoch 0, no owner) and is
	 * locked, in key byte order; then, by statements that start after
	 * those locks are held, each row takes epoch + 1 and owner := member
	 * when member's own row is live and the row's owner is NULL, member,
	 * or not live (its spawn_members row DEAD or gone): epochs[i] gets
	 * the new epoch; otherwise epochs[i] = 0 and holders[i] (caller
	 * storage of n entries) the owner's id ("" when member itself is not
	 * live). Then, when rows is not NULL, the latest rows of the keys
	 * that took an epoch are read after the commit, as activate_batch
	 * reads them (rows[i] / results[i]: GW_OK, GW_ENOTFOUND, GW_ECORRUPT;
	 * results[i] = GW_EOWNED for the others). */
	gw_err (*lease_activate)(void *drv, const gw_actor_key *keys, size_t n, const char *member,
	                         uint64_t *epochs, char (*holders)[GW_MEMBER_ID_MAX + 1],
	                         gw_row *rows, gw_err *results);
	/* lease_release: ONE statement: owner := NULL on the epoch rows of
	 * keys[i] whose owner is member and whose epoch is still epochs[i]
	 * (1 <= n <= GW_STORE_ACTIVATE_MAX, distinct keys); *released: how
	 * many rows it changed. */
	gw_err (*lease_release)(void *drv, const gw_actor_key *keys, const uint64_t *epochs,
	                        size_t n, const char *member, uint64_t *released);
} gw_store_ops;

#endif
