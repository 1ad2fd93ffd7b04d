/* store.h - the statestore: where actor state lives between activations.
 *
 * Two layers:
 *   gw_store      the front the runtime uses. It picks a driver by URL
 *                 scheme and encrypts/decrypts every state with AES-256-GCM
 *                 (crypto.h) so no driver ever sees plaintext.
 *   gw_store_ops  a driver: a table of functions over rows of ciphertext.
 *                 Drivers: sqlite, postgres, mariadb.
 *
 * Row model (one row per actor, history kept per driver policy):
 *   (system, name) -> revision, epoch, key_id, nonce, ciphertext, type_url
 * revision grows by exactly one per successful save. A save names the
 * revision it expects to replace (0 = the actor has no row yet); a save that
 * finds another revision fails with GW_ECONFLICT and writes nothing, so no
 * update is ever lost. epoch is the activation fence of the clustered
 * stores (issue 3): a save with epoch E fails with GW_EFENCED when the row
 * carries a newer epoch (fencing wins over a revision conflict). The
 * sqlite driver enforces the same rule, but a single gateway owns its file,
 * so in practice it never fences.
 *
 * Store transactions (drivers):
 *   save_batch: BEGIN -> for each row: conditional write, per-row result
 *               (OK / ECONFLICT / EFENCED) -> COMMIT.  Any driver/IO error
 *               -> ROLLBACK and the whole batch reports that error; no row
 *               of a failed batch is considered saved.
 *
 * Blocking: every function here blocks (disk or network). Call them only
 * from the statestore thread(s), never from a completion-queue thread.
 * Thread: a gw_store is used by one thread at a time (the persist thread).
 * (The front keeps no per-call state and the networked drivers pool their
 * connections, so a postgres or mariadb store may serve several threads at
 * once; a sqlite store may not.)
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"

typedef struct gw_store gw_store;  /* opaque */

/* The identity of one actor. Both strings borrowed. */
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
	/* History policy of the networked stores: besides the latest revision,
	 * keep this many older revisions per actor (spawn_actor_history, see
	 * docs/schema.md). 0 = only the latest. The sqlite driver keeps none.
	 * Appended member: callers that zero-initialise get 0. */
	int history;
} gw_store_opts;

/* One actor's state as the runtime sees it: plaintext. */
typedef struct gw_state {
	gw_actor_key key;        /* borrowed */
	const char *type_url;    /* borrowed; "" when the actor has no state type */
	const uint8_t *data;     /* borrowed plaintext (serialized ActorState) */
	size_t len;
	uint64_t expected;       /* save: revision being replaced, 0 = new row */
	uint64_t epoch;          /* save: activation fence, 0 = unfenced */
} gw_state;

/* What a load returns. Fields owned by the record: free with
 * gw_loaded_fini(). */
typedef struct gw_loaded {
	char *type_url;
	uint8_t *data;           /* plaintext */
	size_t len;
	uint64_t revision;
	uint64_t epoch;
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
 * GW_OK (saved as revision states[i].expected + 1), GW_ECONFLICT or
 * GW_EFENCED. Returns GW_OK when the transaction committed (look at
 * results), or the error that rolled back the whole batch (GW_EIO,
 * GW_EUNAVAIL, GW_ENOMEM, GW_ETOOBIG), in which case results[] are all set
 * to it. GW_EINVAL (nothing written, results[] set to it): a state with a
 * NULL or empty system/name, NULL data with len > 0, expected >= INT64_MAX
 * or epoch > INT64_MAX (SQL integers are signed). A NULL type_url is
 * stored as "". n == 0 is GW_OK. */
gw_err gw_store_save_batch(gw_store *s, const gw_state *states, size_t n, gw_err *results);

/* gw_store_remove deletes an actor's row (all revisions). GW_OK even when
 * no row existed. */
gw_err gw_store_remove(gw_store *s, const gw_actor_key *k);

/* gw_store_scheme names the driver in use: the URL's scheme ("sqlite",
 * "postgres", "postgresql", "mariadb", "mysql"). Borrowed. */
const char *gw_store_scheme(const gw_store *s);

/* gw_loaded_fini frees what a load filled in and zeroes *l. Accepts NULL. */
void gw_loaded_fini(gw_loaded *l);

/* ---- drivers ------------------------------------------------------------ */

/* A stored row: ciphertext and the facts needed to decrypt it. */
typedef struct gw_row {
	gw_actor_key key;        /* borrowed */
	uint64_t revision;       /* load: stored revision; save: the new one */
	uint64_t expected;       /* save only: revision being replaced (0 = new) */
	uint64_t epoch;
	const char *key_id;      /* save: borrowed. load: owned (free()) */
	uint8_t nonce[12];
	uint8_t *data;           /* ciphertext || 16-byte GCM tag. save: borrowed;
	                            load: owned (free()) */
	size_t len;
	const char *type_url;    /* save: borrowed. load: owned (free()) */
} gw_row;

#define GW_STORE_OPS_VERSION 1

typedef struct gw_store_ops {
	int version;             /* GW_STORE_OPS_VERSION; members only appended */
	const char *scheme;      /* matched against the URL scheme */
	/* open: url is the whole URL. Sets *drv. */
	gw_err (*open)(const char *url, const gw_store_opts *opts, void **drv);
	/* load: fills *out (owned fields, see gw_row) or GW_ENOTFOUND. */
	gw_err (*load)(void *drv, const gw_actor_key *k, gw_row *out);
	/* save_batch: one transaction, per-row results; see the note above. */
	gw_err (*save_batch)(void *drv, const gw_row *rows, size_t n, gw_err *results);
	gw_err (*remove)(void *drv, const gw_actor_key *k);
	/* meta_get/meta_put: small key/value facts of the store itself (the
	 * key-check record, schema version). meta_get: *val owned (free()),
	 * GW_ENOTFOUND when absent. */
	gw_err (*meta_get)(void *drv, const char *name, uint8_t **val, size_t *len);
	gw_err (*meta_put)(void *drv, const char *name, const uint8_t *val, size_t len);
	/* path: the database file for file-backed stores (for the default key
	 * file), NULL otherwise. Borrowed, lives as long as drv. */
	const char *(*path)(void *drv);
	void (*close)(void *drv); /* never fails */
} gw_store_ops;

#endif
