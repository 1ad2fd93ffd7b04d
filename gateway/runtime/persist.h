/* persist.h - the statestore thread: every blocking store call runs here.
 *
 * The runtime submits loads and saves; the persist thread runs them and
 * calls each job's completion callback on the persist thread (callbacks
 * take the shard lock they need, never block, and may submit more jobs).
 *
 * Group commit: the thread drains its queue and writes every pending save
 * in one gw_store_save_batch (one transaction, at most max_batch rows), so
 * under load many checkpointed replies share one fsync.
 *
 * Job states:  QUEUED -> RUNNING -> DONE (callback ran, job freed)
 * Invariants:
 *   1. a job's callback runs exactly once, also on shutdown (with
 *      GW_ESHUTDOWN when the store was never reached);
 *   2. callbacks run on the persist thread, in submission order per actor
 *      (the runtime never has two jobs in flight for one actor anyway).
 * Thread: submit from any thread.
 */
#ifndef GW_PERSIST_H
#define GW_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "gw_err.h"
#include "store.h"

typedef struct gw_persist gw_persist;
typedef struct gw_persist_job gw_persist_job;

/* Completion of a load: on GW_OK, state (a reference the callback takes
 * over; serialized spawn.actors.ActorState) and revision are set; on
 * GW_ENOTFOUND the actor has no stored state (revision 0). */
typedef void (*gw_load_cb)(void *arg, gw_err err, gw_blob *state, uint64_t revision);
/* Completion of a save: GW_OK means durably written as expected + 1. */
typedef void (*gw_save_cb)(void *arg, gw_err err);

typedef struct gw_persist_stats {
	uint64_t loads, saves, batches, save_errors;
} gw_persist_stats;

/* gw_persist_create starts the persist thread over store (borrowed; must
 * outlive the persist). max_batch bounds rows per transaction. */
gw_err gw_persist_create(gw_persist **out, gw_store *store, size_t max_batch);

/* gw_persist_destroy runs every queued job, then stops the thread. */
void gw_persist_destroy(gw_persist *p);

/* gw_persist_load queues a load of (system, name) (copied).
 * Returns GW_OK (cb will run) or GW_ENOMEM (cb will not run). */
gw_err gw_persist_load(gw_persist *p, const char *system, const char *name, gw_load_cb cb,
		       void *arg);

/* gw_persist_save queues a save. state: a reference the job takes over
 * (serialized ActorState); type_url copied. expected: revision replaced.
 * Returns GW_OK (cb will run) or GW_ENOMEM (cb will not run; the state
 * reference is released). */
gw_err gw_persist_save(gw_persist *p, const char *system, const char *name, const char *type_url,
		       gw_blob *state, uint64_t expected, gw_save_cb cb, void *arg);

void gw_persist_get_stats(gw_persist *p, gw_persist_stats *out);

#endif
