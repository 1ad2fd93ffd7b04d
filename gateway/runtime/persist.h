/* persist.h - the statestore thread: every blocking store call runs here.
 *
 * The runtime and the admin API submit jobs; the persist thread runs them
 * and calls each job's completion callback on the persist thread
 * (callbacks take the shard lock they need, never block, and may submit
 * more jobs).
 *
 * Group commit: the thread drains its queue and writes every pending save
 * in one gw_store_save_batch (one transaction, at most max_batch rows), so
 * under load many checkpointed replies share one fsync. Deletes of
 * delivered scheduled invocations likewise gather (across drains) into one
 * gw_store_schedule_done_batch, run before the next claim pass, when the
 * thread would go idle, or after at most 100 ms (persist.c).
 *
 * Batched activation: activations that arrive together (one drain of the
 * queue; jobs of other actors between them do not break the group, a job
 * of an actor in it runs the group first) run as one
 * gw_store_activate_batch (their epochs in one transaction, their rows in
 * one read), up to min(max_batch, GW_STORE_ACTIVATE_MAX) per call; each
 * job still gets its own callback, with its own result; the activations'
 * callbacks run in their arrival order.
 *
 * Priority: activations, reads and listings (the urgent class) have their
 * own queue and run ahead of saves, instance records, schedules and other
 * bulk work, also between two save batches or two bulk jobs of one drain:
 * one tenant's fan-out cannot make another tenant's activation or GetState
 * wait behind it (persist.c).
 *
 * Key rotation: when enabled, the thread re-encrypts rows to the primary
 * key in small steps (gw_store_rotate_step) whenever its queue is empty,
 * so invocations never wait behind it for more than one step.
 *
 * Job states:  QUEUED -> RUNNING -> DONE (callback ran, job freed)
 * Invariants:
 *   1. a job's callback runs exactly once, also when the persist is
 *      destroyed with jobs queued (they run first);
 *   2. callbacks run on the persist thread; jobs of one actor and one class
 *      (urgent: activations, reads, listings; bulk: the rest) complete in
 *      submission order; across classes urgent ones may overtake (the
 *      runtime never has an activation and a save of one actor in flight at
 *      once, and reads change nothing).
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

/* Completion of an activation or a read: on GW_OK, state (a reference the
 * callback takes over; serialized spawn.actors.ActorState) and revision
 * are set; on GW_ENOTFOUND the actor has no stored state (revision 0).
 * epoch: activations: the epoch taken; reads: the epoch the revision was
 * written with. */
typedef void (*gw_load_cb)(void *arg, gw_err err, gw_blob *state, uint64_t revision,
                           uint64_t epoch);
/* Completion of a save: GW_OK means durably written as expected + 1. */
typedef void (*gw_save_cb)(void *arg, gw_err err);
/* Completion of a revision listing: revs borrowed for the call. */
typedef void (*gw_list_cb)(void *arg, gw_err err, const uint64_t *revs, size_t n);

typedef struct gw_persist_stats {
	uint64_t loads, saves, batches, save_errors;
	uint64_t scheduled_delivered; /* scheduled invocations handed to the runtime */
	gw_rotation rotation;         /* progress of the background key rotation */
	bool rotate_enabled;          /* --rotate-keys */
	bool rotating;                /* rotation enabled and not finished */
	uint64_t activate_batches;    /* gw_store_activate_batch calls (each activation
	                                 is also counted in loads) */
	/* the activation lease (lease mode) */
	uint64_t lease_refused;   /* activations answered GW_EOWNED (held by a live member,
	                             or this member is not one) */
	uint64_t lease_released;  /* leases a release cleared */
	uint64_t release_retries; /* releases that failed and were queued again */
} gw_persist_stats;

typedef struct gw_persist_opts {
	size_t max_batch;   /* rows per save transaction, and activations per
	                       batch (at most GW_STORE_ACTIVATE_MAX); 0 = 256 */
	bool rotate;        /* re-encrypt rows to the primary key in the background */
	size_t rotate_step; /* rows per rotation step; 0 = 100 */
	/* Lease mode (a cluster with a membership): activations take the
	 * activation lease for the member set by gw_persist_set_member
	 * (gw_store_lease_activate) and gw_persist_release gives it back. */
	bool lease;
} gw_persist_opts;

/* gw_persist_create starts the persist thread over store (borrowed; must
 * outlive the persist). */
gw_err gw_persist_create(gw_persist **out, gw_store *store, const gw_persist_opts *opts);

/* Shutdown runs in two phases (docs/design/threading.md, "Shutdown"):
 * stop the producers, drain while what the jobs point at is alive, stop
 * the thread, and only then free.
 *
 * gw_persist_stop_scheduler: no claim pass of scheduled invocations starts
 * any more (one running finishes). Thread: any.
 *
 * gw_persist_drain waits until the thread is idle with an empty queue (no
 * job running, no callback running), for at most timeout_ms; it also ends
 * a background key rotation (resumed at the next start). Returns true when
 * drained (or stopped), false on timeout: the thread is still inside a
 * store call or its callbacks, and whatever they point at must stay alive.
 * Blocks: yes. Thread: any but the persist thread.
 *
 * gw_persist_stop ends the thread after running what is queued (at once
 * after a drain returned true): from then on no callback runs, and every
 * submission returns GW_ESHUTDOWN (its callback will not run; a save's
 * state reference is released). Accepts NULL; idempotent. Blocks: until
 * the thread ends (do not call it after a drain that timed out).
 *
 * gw_persist_destroy stops the thread (gw_persist_stop) and frees. */
void gw_persist_stop_scheduler(gw_persist *p);
bool gw_persist_drain(gw_persist *p, int64_t timeout_ms);
void gw_persist_stop(gw_persist *p);
void gw_persist_destroy(gw_persist *p);

/* gw_persist_activate queues an activation of (system, name) (copied): a
 * new activation epoch (gw_store_acquire), then the latest state.
 * Returns GW_OK (cb will run) or GW_ENOMEM (cb will not run). */
gw_err gw_persist_activate(gw_persist *p, const char *system, const char *name, gw_load_cb cb,
                           void *arg);

/* Lease mode (opts.lease; docs/design/cluster.md, "The activation lease"):
 *
 * gw_persist_set_member names the member whose leases activations take
 * from now on (copied; NULL or "": none, while this gateway is not a member:
 * then every activation completes with GW_EOWNED). Thread: any.
 *
 * An activation's callback gets GW_EOWNED (no epoch taken, nothing loaded)
 * when the actor's lease is held by another live member, or when this
 * gateway is not a live member (no member set, or its row is DEAD or gone).
 *
 * gw_persist_release queues the release of the lease of (system, name)
 * (copied) taken with epoch (> 0): after every job queued before it of the
 * same class (the final save of a deactivation commits first), the row's
 * owner is cleared when it is still the current member at that epoch.
 * Releases gather into one statement per drain; one that fails (the store
 * unreachable) is tried again every RELEASE_RETRY_MS, up to a bound.
 * Outside lease mode it does nothing. Returns GW_OK or GW_ENOMEM. */
void gw_persist_set_member(gw_persist *p, const char *member);
gw_err gw_persist_release(gw_persist *p, const char *system, const char *name, uint64_t epoch);

/* gw_persist_read queues a read of revision `revision` (0 = latest) with
 * no activation and no fencing. Same returns as gw_persist_activate. */
gw_err gw_persist_read(gw_persist *p, const char *system, const char *name, uint64_t revision,
                       gw_load_cb cb, void *arg);

/* gw_persist_list queues a listing of the revisions kept (newest first). */
gw_err gw_persist_list(gw_persist *p, const char *system, const char *name, gw_list_cb cb,
                       void *arg);

/* gw_persist_save queues a save. state: a reference the job takes over
 * (serialized ActorState); type_url copied. expected: revision replaced;
 * epoch: the activation's epoch (0 = unfenced); effects: 1 when the state
 * carries an outbox not yet delivered (the row's effects flag).
 * Returns GW_OK (cb will run) or GW_ENOMEM (cb will not run; the state
 * reference is released). */
gw_err gw_persist_save(gw_persist *p, const char *system, const char *name, const char *type_url,
                       gw_blob *state, uint64_t expected, uint64_t epoch, int effects,
                       gw_save_cb cb, void *arg);

/* One page of actors whose stored row has undelivered effects (keys
 * borrowed for the call), in key order; last: no page follows. On a store
 * error: err, no keys, last. Runs on the persist thread: must not block. */
typedef void (*gw_keys_cb)(void *arg, gw_err err, const gw_actor_key *keys, size_t n, bool last);

/* gw_persist_effects_list queues a listing of every actor whose stored row
 * has undelivered effects (gw_store_effects_list, pages of 256).
 * Returns GW_OK (cb will run, at least once) or GW_ENOMEM. */
gw_err gw_persist_effects_list(gw_persist *p, gw_keys_cb cb, void *arg);

void gw_persist_get_stats(gw_persist *p, gw_persist_stats *out);

/* gw_persist_set_metrics makes the persist thread time its store
 * operations into gm (borrowed, outlives p; gm.h). Call before the first
 * job. gw_persist_queued: the jobs waiting in the bulk and urgent queues
 * now (not yet taken by the thread). Thread: any. */
struct gw_gm;
void gw_persist_set_metrics(gw_persist *p, struct gw_gm *gm);
void gw_persist_queued(gw_persist *p, size_t *bulk, size_t *urgent);

/* gw_persist_call queues fn(arg, store) to run on the persist thread (the
 * store borrowed for the call), in the bulk class. Returns GW_OK (fn will
 * run) or GW_ENOMEM. */
gw_err gw_persist_call(gw_persist *p, void (*fn)(void *arg, gw_store *store), void *arg);

/* ---- durable instances and scheduled invocations -------------------------- */

/* Completion of an instance lookup: parent borrowed for the call (NULL
 * unless GW_OK). */
typedef void (*gw_inst_cb)(void *arg, gw_err err, const char *parent);

/* gw_persist_instance_put records that (system, name) is an instance of
 * the UNNAMED actor parent (all copied); cb (may be NULL) runs when it is
 * durable. gw_persist_instance_get looks one up. */
gw_err gw_persist_instance_put(gw_persist *p, const char *system, const char *name,
                               const char *parent, gw_save_cb cb, void *arg);
gw_err gw_persist_instance_get(gw_persist *p, const char *system, const char *name, gw_inst_cb cb,
                               void *arg);

/* A due scheduled invocation, handed to the scheduler function on the
 * persist thread: id and data (a serialized spawn.InvocationRequest) are
 * borrowed for the call. The function must not block; when the invocation
 * has been delivered it calls gw_persist_schedule_done(id). */
typedef void (*gw_sched_fn)(void *user, const char *id, const uint8_t *data, size_t len);

/* gw_persist_set_scheduler starts delivering scheduled invocations: due
 * rows are claimed for owner (copied; this gateway's id) with a lease of
 * lease_ms and handed to fn, polled at the earliest due time (and at least
 * every few seconds, for expired leases). Call once, before load. */
void gw_persist_set_scheduler(gw_persist *p, gw_sched_fn fn, void *user, const char *owner,
                              int64_t lease_ms);

/* gw_persist_schedule stores a scheduled invocation (id, data copied) due
 * at due_ms (Unix epoch ms); cb runs when it is durable (GW_OK) or not. */
gw_err gw_persist_schedule(gw_persist *p, const char *id, int64_t due_ms, const uint8_t *data,
                           size_t len, gw_save_cb cb, void *arg);

/* gw_persist_schedule_done deletes a delivered scheduled invocation (id
 * copied), in a batch with the others the thread has taken; then cb (may
 * be NULL) runs on the persist thread with the delete's outcome. Claim
 * passes run on that thread too, so a claim either ran before the delete
 * (and then cb has not run yet) or finds the row gone: a caller that keeps
 * the id in its in-flight set until cb never delivers the row twice. (A
 * delete queued while a pass runs is not part of that pass.) Returns GW_OK
 * or GW_ENOMEM (not queued; cb will not run). */
gw_err gw_persist_schedule_done(gw_persist *p, const char *id, gw_save_cb cb, void *arg);

#endif
