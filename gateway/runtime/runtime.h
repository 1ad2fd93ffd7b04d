/* runtime.h - the actor runtime: activation, mailboxes, state, lifecycle.
 *
 * Actors are spread over shards by hash(system, name). A shard is a mutex,
 * a hash table of active actors and a timing wheel; shards share nothing,
 * so any thread (completion-queue threads, the persist thread, the timer
 * thread) runs actor logic by taking the one shard lock it needs.
 * See docs/design/threading.md and docs/design/actor-lifecycle.md.
 *
 * Actor lifecycle (one actor):
 *
 *   (absent) -- invoke --------------> LOADING   [load job queued; calls wait]
 *   LOADING --- loaded / not found --> READY
 *   LOADING --- load failed ---------> (absent)  [queued calls fail: that error]
 *   READY ----- mailbox not empty ---> BUSY      [one invocation sent to a host]
 *   BUSY ------ reply ---------------> READY     [state replaced, dirty if changed]
 *   BUSY ------ reply + checkpoint --> BUSY      [save queued; reply after commit]
 *   BUSY ------ host error/gone ------> READY     [state unchanged]
 *   BUSY ------ deadline, task unsent > READY     [it left the host's queue: never ran]
 *     or caller gone (gw_runtime_cancel)
 *   BUSY ------ deadline, task written > HELD     [caller failed; the host may still run
 *     or caller gone                               it: no next turn is sent]
 *   HELD ------ late answer (dropped) > READY     [state unchanged]
 *     or the host's stream ends
 *     or grace after the sent deadline: the host is disconnected as broken
 *   READY ----- idle timeout --------> (absent)  [final save first when dirty]
 *
 * Invariants:
 *   1. at most one invocation per actor is in flight (BUSY holds it), and
 *      none while a timed-out one may still run on a host (HELD: st stays
 *      A_BUSY with busy == NULL); a POOLED actor counts a held turn in
 *      inflight until it is released;
 *   2. invocations of one actor are dispatched in arrival order (FIFO);
 *   3. at most one save per actor is in flight; its expected revision is
 *      the actor's stored revision, so saves never conflict with each other;
 *   4. a checkpointed reply is sent only after its state committed; if the
 *      save fails, the caller gets UNAVAILABLE and the state rolls back;
 *   5. an actor is freed only when READY, its mailbox empty, clean and no
 *      save in flight.
 */
#ifndef GW_RUNTIME_H
#define GW_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "gw_err.h"
#include "persist.h"
#include "registry.h"
#include "trace.h"
#include "wheel.h"
#include "wire.h"

typedef struct gw_runtime gw_runtime;
typedef struct gw_actor gw_actor;
typedef struct gw_inv gw_inv;

typedef struct gw_runtime_opts {
	size_t shards;           /* 0 = 16 */
	uint32_t mailbox_max;    /* per actor; 0 = 10000 */
	size_t mailbox_bytes;    /* request bytes queued per actor; 0 = 64 MiB; at most 4 GiB */
	size_t queued_bytes;     /* request bytes queued in all mailboxes; 0 = 1 GiB */
	int64_t deactivate_ms;   /* default idle timeout; 0 = 60000 */
	int64_t snapshot_ms;     /* default snapshot interval; 0 = 2000 */
	int64_t host_timeout_ms; /* longest a host may take; 0 = 30000 */
	uint16_t pool_max;       /* POOLED actors without max_pool_size; 0 = 16 */
	int64_t host_grace_ms;   /* a task written to a host that timed out keeps its actor's
	                            turn slot until the host answers or goes, or this long
	                            after the deadline sent with it (then the host is
	                            disconnected as broken); 0 = 5000 */
	int64_t registration_grace_ms; /* after start-up, a call to an actor no host has
	                                  registered but the store knows is UNAVAILABLE
	                                  (retry), not NOT_FOUND; 0 = no grace */
	/* Bounds (docs/design/actor-lifecycle.md, "Bounds"); a turn or call
	 * over one fails with RESOURCE_EXHAUSTED and changes nothing. */
	uint32_t max_effects_per_turn;  /* side effects one result may emit; 0 = 64 */
	size_t max_outbox_bytes;        /* an actor's stored outbox; 0 = 1 MiB */
	uint32_t max_effects_in_flight; /* per gateway (effects and broadcast
	                                   deliveries); 0 = 10000 */
	size_t max_state_bytes;         /* state + tags a result may leave: 0 =
	                                   max_message_bytes - GW_TASK_RESERVE (half
	                                   of it when under 2 * GW_TASK_RESERVE) */
	size_t max_message_bytes;       /* the host message bound; 0 = 4 MiB */
	uint32_t max_instances;         /* UNNAMED instances per system; 0 = 1000000 */
	uint32_t max_schedules;         /* stored scheduled invocations per system;
	                                   0 = 100000 */
	int64_t max_schedule_ahead_ms;  /* farthest scheduled_to from now; 0 = 366 days */
} gw_runtime_opts;

/* What a task needs besides the actor's state and tags: the payload,
 * metadata, the ids and the task's own fields. A result whose state and
 * tags exceed max_message_bytes minus this is refused (a later task could
 * not carry it). */
#define GW_TASK_RESERVE (64 * 1024)

/* Completion of an invocation. Called exactly once, on any thread, with
 * no runtime lock held; from then on the callee owns inv (and frees it
 * with gw_inv_destroy). */
typedef void (*gw_inv_done_fn)(gw_inv *inv);

/* One invocation. The submitter fills the public part, the runtime owns it
 * from gw_runtime_invoke until done runs. */
struct gw_inv {
	/* --- filled by the submitter --- */
	spawn_arena arena;             /* owns req and its strings */
	Spawn__InvocationRequest *req; /* in arena */
	int64_t deadline_ms;           /* monotonic ms; 0 = none */
	gw_inv_done_fn done;
	void *user;            /* submitter's (e.g. the client call) */
	int kind;              /* GW_INV_CALL, GW_INV_RESTORE or GW_INV_WAKE */
	uint64_t restore_rev;  /* GW_INV_RESTORE: the revision to restore */
	uint8_t hops;          /* workflow depth (0 = a client's call) */
	bool instance_checked; /* the statestore was asked for this name */
	bool effect;           /* a side effect: with scheduled_to still ahead it is stored
	                          as a scheduled invocation (done: GW_OK once durable) */
	/* The principal the call runs for (--access), in arena: a client's, set
	 * by the entry member once it authorized the call; at the owner, the
	 * entry member's word for it (ForwardRequest.principal). NULL for calls
	 * the gateway makes itself (workflow children, outbox deliveries,
	 * schedules, timers): those were authorized when they were emitted. */
	char *principal;
	bool accept_only; /* a client's async call: done may run once it is queued;
	                     so a forward to its owner is answered at acceptance there.
	                     Every other forward (effects, outbox deliveries, scheduled
	                     invocations, async or not) waits for the turn's outcome,
	                     as a local run does (docs/design/cluster.md) */
	/* --- result, valid in done --- */
	gw_err err;
	char msg[1024];    /* error detail for the client (UTF-8, cut at a character) */
	bool host_message; /* with GW_EHOST: msg is the host's own words (maybe empty) */
	int host_code;     /* with GW_EHOST: the host's gRPC code */
	bool over_quota;   /* with GW_EFULL: a new instance over --max-instances; the
	                      name may still be an instance stored before a restart
	                      (look it up, gw_runtime_find_instance, before refusing) */
	gw_blob *reply;    /* owned; NULL = no payload (Noop) */
	uint64_t revision; /* GW_INV_RESTORE: the revision written */

	/* With GW_EUNAVAIL: the gateway never sent this invocation to a host (no
	 * host has registered the actor yet, or none of its hosts is connected),
	 * so the caller may retry it (docs/protocol.md, "Retryable answers"). */
	bool not_dispatched;
	/* --- runtime private --- */
	gw_runtime *rt;  /* set on submission */
	uint8_t retries; /* fire-and-forget retries so far */
	int8_t timer;    /* >= 0: a timer action's turn (index) */
	/* An outbox delivery (outbox.c): "system\0name" of the actor whose
	 * outbox holds it, in arena; its final outcome is acknowledged to that
	 * actor (gwi_outbox_ack). NULL for every other invocation. */
	char *outbox_src;
	/* The idempotency key of this delivery (outbox.c), in arena; set only
	 * by the gateway (an outbox entry, a scheduled effect row it wrote),
	 * never taken from a peer's metadata. NULL for every other invocation. */
	char *idem_key;
	uint8_t route;              /* the child of a pipe (1) or forward (2) (workflow.c) */
	int64_t retry_at_ms;        /* gwi_runtime_retry: when to resubmit */
	gw_inv *wf_route, *wf_fire; /* a workflow waiting for its turn's commit */
	gw_inv *next;
	gw_actor *actor;
	gw_host *host; /* reference while dispatched */
	uint64_t req_id;
	int64_t due_ms;      /* monotonic: the deadline sent with the task (the client's,
	                        or host_timeout_ms from dispatch, the earlier) */
	gw_tnode deadline_t; /* queued: its deadline (T_QDEADLINE); dispatched: due_ms */
	gw_inv *mq_prev;     /* mailbox: the one before; the head's is the tail (mailbox.c) */
	size_t qbytes;       /* request bytes counted while queued (mailbox.c) */
	/* gw_runtime_cancel (under the shard of the request's actor): in_mq is
	 * set while inv is in a mailbox; cancelled once its caller went away
	 * (a later enqueue refuses it, GW_ECANCELLED). */
	bool in_mq, cancelled;
	/* The cluster (gw_runtime_set_router): local = run here, never route
	 * (a call a peer forwarded to this member, its owner; or one the router
	 * handed back); route_cancelled: its caller went away (written and
	 * read under the router's lock); rstate = the router's state while it
	 * holds inv (the router's to read and write). */
	bool local, route_cancelled;
	/* route_skip: the router decided, for this submission only, to run it
	 * here (no member serves its type): gw_runtime_route clears it and
	 * returns false. A resubmission (an instance found in the store) is
	 * routed again, now knowing its template. */
	bool route_skip;
	/* A call that reached an actor leaving for another member, waiting in
	 * the retry list to be routed again (handoff): gw_runtime_fail_queued
	 * answers it at shutdown, when no timer will route it any more. */
	bool handoff_retry;
	void *rstate;
	/* Metrics (gw_runtime_set_metrics; 0 without): monotonic ns when it
	 * reached the runtime, and when its turn was sent to a host. */
	int64_t t_enq_ns, t_disp_ns;
	/* Its W3C trace and stage times (runtime/tracing.c): set by the
	 * runtime, read when inv is freed to make its spans. */
	gw_inv_trace tr;
};

/* GW_INV_WAKE activates the actor and completes (GW_OK) without a turn:
 * used after a restart to activate actors whose outbox was not delivered
 * (gw_runtime_recover_effects). */
enum { GW_INV_CALL = 0, GW_INV_RESTORE = 1, GW_INV_WAKE = 2 };

/* gw_runtime_set_otlp makes the runtime export the spans of sampled
 * invocations to e (borrowed: it outlives every invocation; NULL = none,
 * the default). Trace context is propagated either way. Call before any
 * invocation. */
typedef struct gw_otlp gw_otlp;
void gw_runtime_set_otlp(gw_runtime *rt, gw_otlp *e);

/* gw_inv_create allocates an invocation with an arena bounded to
 * arena_limit bytes. Returns NULL when out of memory. */
gw_inv *gw_inv_create(size_t arena_limit);
/* gw_inv_destroy frees inv, its arena and reply. Accepts NULL. */
void gw_inv_destroy(gw_inv *inv);

/* gw_runtime_create builds the runtime over registry and persist
 * (both borrowed; they must outlive it) and starts its timer thread. */
gw_err gw_runtime_create(gw_runtime **out, const gw_runtime_opts *opts, gw_registry *registry,
                         gw_persist *persist);

/* gw_runtime_stop is the first phase of shutdown: the timer thread ends
 * (deadlines, snapshots, idle timeouts, timer actions and retries of
 * effects stop) and the persist thread claims no more scheduled
 * invocations. Actors stay alive: gw_runtime_flush may follow, and the
 * persist thread's callbacks still find them. Idempotent. Blocks: until
 * the timer thread ends. */
void gw_runtime_stop(gw_runtime *rt);

/* gw_runtime_fail_queued answers every call still waiting in the runtime
 * once nothing will move it on: the calls in actors' mailboxes and those
 * waiting to be routed again after a handoff, with GW_ESHUTDOWN (not
 * dispatched: a client may retry them on another gateway). Outbox
 * deliveries, scheduled invocations and effects in the retry list stay for
 * gw_runtime_destroy (they are stored and run after the restart). Call it
 * after gw_runtime_stop and gw_persist_stop and BEFORE the server that
 * answers the callers is destroyed: a reply started on a completion queue
 * that was shut down aborts the process (gRPC's call.cc assertion
 * grpc_cq_begin_op). Returns how many calls it answered. */
size_t gw_runtime_fail_queued(gw_runtime *rt);

/* gw_runtime_report_unsaved counts the stateful actors whose state in
 * memory is not stored (dirty, or a save in flight) and, when log is true,
 * names each (up to 100 lines, then a count) as "not saved: system/name".
 * Thread: any; takes each shard lock in turn. */
size_t gw_runtime_report_unsaved(gw_runtime *rt, bool log);

/* gw_runtime_destroy frees every actor (stopping the timer thread first if
 * gw_runtime_stop did not). Invocations still queued fail with
 * GW_ESHUTDOWN. The persist thread must be stopped already
 * (gw_persist_stop): its callbacks point at the actors. Call
 * gw_runtime_flush first to keep dirty state. */
void gw_runtime_destroy(gw_runtime *rt);

/* gw_runtime_invoke takes ownership of inv and runs it: done is called
 * with the outcome (possibly before this returns). Never blocks. */
void gw_runtime_invoke(gw_runtime *rt, gw_inv *inv);

/* gw_runtime_enqueue is gw_runtime_invoke for callers that answer at
 * acceptance (async calls): GW_OK means inv is queued in its actor's
 * mailbox and owned by the runtime (done runs later); any other return
 * (GW_EINVAL, GW_ENOTFOUND, GW_EFULL, GW_ENOMEM) means it was refused,
 * inv->msg says why, done will not run and the caller still owns inv. */
gw_err gw_runtime_enqueue(gw_runtime *rt, gw_inv *inv);

/* Called by the host connection (server/host.c) when the result for a
 * dispatched invocation arrives. res is borrowed for the call. */
void gw_runtime_result(gw_runtime *rt, gw_inv *inv,
                       const Spawn__Gateway__V1__InvocationResult *res);

/* Called by the host connection when a dispatched invocation will never
 * get a result (the host is gone): the caller gets err with msg, the
 * actor's state is unchanged. */
void gw_runtime_abandon(gw_runtime *rt, gw_inv *inv, gw_err err, const char *msg);

/* gw_runtime_cancel tells the runtime that the caller of inv went away
 * (a client cancelled its call, or disconnected). inv (borrowed) must stay
 * allocated until this returns, even if its done runs meanwhile: the
 * submitter frees inv only once both its done ran and no cancel can still
 * start. What happens depends on where inv is:
 *   not yet in a mailbox (being resolved): it is refused when it gets
 *     there: done with GW_ECANCELLED;
 *   in its actor's mailbox: it leaves it at once, its bytes are given
 *     back, done runs with GW_ECANCELLED;
 *   dispatched, its task still queued on the target (GW_CANCEL_UNSENT):
 *     the task leaves the queue, done runs with GW_ECANCELLED, the actor
 *     takes its next turn;
 *   dispatched and written (GW_CANCEL_HELD): done runs with GW_ECANCELLED
 *     and the turn follows the HELD rules (no next turn until the host
 *     answers, dropped, or goes);
 *   finished (done ran or is about to), or a restore turn already running:
 *     nothing happens.
 * done still runs exactly once. Thread: any, no runtime lock held. Never
 * blocks (beyond the shard lock). */
void gw_runtime_cancel(gw_runtime *rt, gw_inv *inv);

/* What gw_runtime_read reports besides the state: the stored revision
 * (0 = never saved); active: the state came from memory (it may be newer
 * than the stored revision when dirty); queued: calls waiting in the
 * active actor's mailbox behind the turn in flight, its timer turns not
 * counted (0 when not active). */
typedef struct gw_read_meta {
	uint64_t revision;
	bool active, dirty;
	uint32_t queued;
} gw_read_meta;

/* gw_read_fn receives what gw_runtime_read found. state: the Any contents
 * (type URL and value) or NULL when the actor has no state; tags: a
 * serialized spawn.actors.ActorState holding only tags, or NULL; meta: see
 * above. All three borrowed for the call. */
typedef void (*gw_read_fn)(void *user, gw_err err, const char *msg, const gw_blob *state,
                           const gw_blob *tags, const gw_read_meta *meta);

/* gw_runtime_read reports an actor's current state without invoking its
 * host: from memory when the actor is active, else from the statestore
 * (revision 0 = latest, else that revision from history; never activates
 * and never fences). fn runs exactly once, on any thread, possibly before
 * this returns. Returns GW_OK, or GW_ENOMEM (fn will not run). */
gw_err gw_runtime_read(gw_runtime *rt, const char *system, const char *name, uint64_t revision,
                       gw_read_fn fn, void *user);

/* gw_runtime_list_revisions reports the revisions kept for an actor. */
gw_err gw_runtime_list_revisions(gw_runtime *rt, const char *system, const char *name,
                                 gw_list_cb fn, void *user);

/* A restore is an invocation of kind GW_INV_RESTORE submitted with
 * gw_runtime_invoke (req names system, actor and any registered action
 * can be absent: action_name is not used). It runs as a turn in the
 * actor's mailbox: revision restore_rev is read from the store, becomes
 * the actor's state and is saved as a new revision before done runs
 * (inv->revision). Errors: GW_ENOTFOUND (no such revision kept). */

/* Completion of a Forget: err GW_OK with what the store erased (counts,
 * borrowed for the call; all zero when it held nothing of the actor) and
 * whether the actor was active here, and how many calls queued in its
 * mailbox were answered ABORTED; or the store's error (GW_EIO,
 * GW_EUNAVAIL, GW_ENOMEM: nothing was erased; the actor is no longer active
 * here either way). Runs on the persist thread, no runtime lock held. */
typedef void (*gw_forget_fn)(void *user, gw_err err, const gw_forget_counts *counts,
                             bool was_active, uint64_t calls_aborted);

/* gw_runtime_forget erases actor (system, name) completely (Admin.Forget,
 * design note in forget.c): an active actor is deactivated first (a turn in
 * flight finishes, queued calls fail with GW_ECONFLICT "forgotten", its
 * timers stop, nothing of it is saved again), then the statestore erases
 * its latest row and outbox, history, instance record and the scheduled
 * invocations that target it, in one transaction. Invocations of it that
 * arrive meanwhile fail with GW_EUNAVAIL (retryable). Afterwards a named
 * actor starts from an empty state; an instance must be spawned again.
 * Strings borrowed (copied). Returns GW_OK (fn will run exactly once);
 * GW_EINVAL (empty names, NULL fn); GW_ECONFLICT (a Forget of this actor
 * is in progress); GW_ENOMEM. Thread: any; never blocks. */
gw_err gw_runtime_forget(gw_runtime *rt, const char *system, const char *name, gw_forget_fn fn,
                         void *user);

/* gw_runtime_find_instance looks (system, name) up among the UNNAMED
 * instances recorded in the statestore; when found it is registered (so
 * invocations by name resolve) and cb(user, GW_OK) runs, else cb gets
 * GW_ENOTFOUND or the store's error. cb runs on the persist thread.
 * Returns GW_OK or GW_ENOMEM (cb will not run). */
gw_err gw_runtime_find_instance(gw_runtime *rt, const char *system, const char *name,
                                void (*cb)(void *user, gw_err err), void *user);

/* ---- quotas per system (bounds.c) ----------------------------------------
 * gw_runtime_spawn makes (system, name) an instance of the UNNAMED actor
 * parent as gw_registry_spawn does (*created: a new instance; record it),
 * within the system's quota of instances: over it, GW_EFULL with msg
 * saying so (nothing created). Other errors as gw_registry_spawn. Strings
 * borrowed. Thread: any. */
gw_err gw_runtime_spawn(gw_runtime *rt, const char *system, const char *name, const char *parent,
                        bool *created, char *msg, size_t n);

/* Completion of gw_runtime_spawn_request: err GW_OK (every instance
 * exists, is recorded, and restored when asked), or the first error with
 * msg (borrowed for the call): GW_EINVAL (a malformed request, a parent
 * that is not UNNAMED or a name taken), GW_ENOTFOUND (no such parent; with
 * a revision: not kept), GW_EFULL (the instance quota), GW_ENOMEM, the
 * store's errors. Any thread, no runtime lock held. */
typedef void (*gw_spawn_done_fn)(void *user, gw_err err, const char *msg);

/* gw_runtime_spawn_request runs a SpawnRequest (design note in
 * spawnreq.c): each id (borrowed for the call) becomes an instance of its
 * parent (gw_runtime_spawn, within the quota), a new one is recorded in
 * the statestore before done runs, and with revision > 0 each is restored
 * to that revision by a turn. done runs exactly once, possibly before this
 * returns. The caller authorizes the ids first. */
void gw_runtime_spawn_request(gw_runtime *rt, Spawn__Actors__ActorId *const *ids, size_t n,
                              uint64_t revision, gw_spawn_done_fn done, void *user);

/* gw_runtime_schedule_id admits a scheduled invocation of system due at
 * due_ms (Unix ms): GW_EINVAL when due_ms is farther ahead than
 * max_schedule_ahead_ms, GW_EFULL when the system has max_schedules stored;
 * both with msg. On GW_OK the row counts against the quota and id (40
 * bytes) holds its row id: the system's hash, '.', then up to 30 bytes of
 * rest ([0-9a-z]). Call gw_runtime_schedule_gone(id) when the row is
 * deleted or could not be stored. Thread: any. */
gw_err gw_runtime_schedule_id(gw_runtime *rt, const char *system, int64_t due_ms, const char *rest,
                              char id[40], char *msg, size_t n);
void gw_runtime_schedule_gone(gw_runtime *rt, const char *id);

/* gw_runtime_load_quotas counts the stored instances and schedules per
 * system (on the persist thread) and waits for the answer. Call once at
 * start-up, before the scheduler starts. Blocks: yes. */
gw_err gw_runtime_load_quotas(gw_runtime *rt);

/* gw_runtime_quota_total: instances (or stored scheduled invocations, the
 * schedules' backlog) counted over every system. Thread: any. */
uint64_t gw_runtime_quota_total(gw_runtime *rt, bool schedules);

/* gw_runtime_quota_count: instances (or schedules) counted for system. */
uint32_t gw_runtime_quota_count(gw_runtime *rt, const char *system, bool schedules);

/* gw_runtime_start_scheduler starts delivering stored scheduled
 * invocations (claimed for owner, this gateway's id, with a lease of
 * lease_ms: longer than any invocation may take). */
void gw_runtime_start_scheduler(gw_runtime *rt, const char *owner, int64_t lease_ms);

/* gw_runtime_recover_effects activates, in the background, every actor
 * whose stored row has undelivered side effects (a crash came between a
 * checkpointed turn's commit and the delivery of its outbox, outbox.c), so
 * they are delivered without waiting for a call. Activations whose actor
 * type has not registered yet are retried for about a minute. Call once at
 * start-up, after the scheduler. Returns GW_OK or GW_ENOMEM. */
gw_err gw_runtime_recover_effects(gw_runtime *rt);

/* gw_runtime_flush saves every dirty actor and waits until all saves are
 * done or timeout_ms passed. Returns GW_OK when nothing dirty remains,
 * else GW_ETIMEDOUT / the last save error. Blocks: yes; do not call from
 * the persist thread. */
gw_err gw_runtime_flush(gw_runtime *rt, int64_t timeout_ms);

typedef struct gw_runtime_stats {
	uint64_t active_actors, invocations, activations, deactivations;
	uint64_t effects_in_flight; /* side effects being delivered (--max-effects-in-flight) */
	uint64_t effects_parked;    /* stored effects waiting for room */
	uint64_t queued_bytes;      /* request bytes waiting in mailboxes (--queued-bytes) */
	uint64_t queued_refused;    /* calls refused over --mailbox-bytes or --queued-bytes */
	uint64_t queued_expired;    /* calls whose deadline passed while queued */
	uint64_t cancelled;         /* calls whose caller went away before their turn ran
	                               (gw_runtime_cancel: left a mailbox or a send queue) */
} gw_runtime_stats;
void gw_runtime_get_stats(gw_runtime *rt, gw_runtime_stats *out);

/* gw_runtime_persist returns the persist the runtime was created with
 * (borrowed), for statistics. */
gw_persist *gw_runtime_persist(gw_runtime *rt);

/* ---- where a turn runs: targets ------------------------------------------------
 *
 * A target is where the runtime sends a turn: today a gRPC host on its
 * Connect stream (server/host.c); later a Spawn-protocol host behind
 * HTTP/1.1, or the gateway of the cluster that owns the actor. The registry
 * hands targets out (gw_registry_pick; gw_host is the target type); every
 * target object begins with a gw_target whose ops the runtime calls, so it
 * never asks which kind it holds and runtime/ calls no server/ function.
 * The implementation owns the target; the runtime holds references. */

/* build(inv, id) packs the GatewayMessage carrying inv's task under request
 * id; NULL when out of memory. Runs under the target's lock. */
typedef grpc_byte_buffer *(*gw_task_build_fn)(gw_inv *inv, uint64_t req_id);

/* Outcomes of gw_target_ops.cancel, for a pending invocation whose deadline
 * passed:
 *   GW_CANCEL_UNSENT: it was still queued: it left the queue and will never
 *     run; the caller completes inv and the actor may take its next turn.
 *   GW_CANCEL_HELD: it was written and may be running on the host: the
 *     caller completes inv but keeps the actor's turn slot; the target hands
 *     hold back with gw_runtime_release when the host answers (late,
 *     dropped), when its stream ends, or after it is disconnected because
 *     expiry_ms (monotonic) passed without an answer.
 *   GW_CANCEL_GONE: its result (or the host's end) is being delivered right
 *     now: the caller does nothing. */
enum { GW_CANCEL_GONE = 0, GW_CANCEL_UNSENT = 1, GW_CANCEL_HELD = 2 };

#define GW_TARGET_OPS_VERSION 1
typedef struct gw_target_ops {
	int version; /* GW_TARGET_OPS_VERSION; members are only ever appended */
	/* send registers inv (borrowed until its result, abandon or cancel)
	 * under a fresh request id and queues the task build(inv, id) makes.
	 * Returns GW_OK; GW_EUNAVAIL (closing); GW_EFULL (its queue is at its
	 * bound); GW_ETOOBIG (over the message size limit); GW_ENOMEM. On error
	 * inv is not registered. Called under the actor's shard lock; never
	 * blocks. */
	gw_err (*send)(gw_host *t, gw_inv *inv, gw_task_build_fn build);
	/* cancel: see GW_CANCEL_*; hold is the actor, returned through
	 * gw_runtime_release. Under the actor's shard lock; never blocks. */
	int (*cancel)(gw_host *t, uint64_t req_id, gw_actor *hold, int64_t expiry_ms);
	void (*hold)(gw_host *t); /* one more reference */
	void (*rele)(gw_host *t); /* the last one frees the target */
	bool (*live)(gw_host *t); /* accepts tasks now */
} gw_target_ops;

/* The first member of every target. */
typedef struct gw_target {
	const gw_target_ops *ops; /* static storage of the implementation */
} gw_target;

static inline const gw_target_ops *gw_target_ops_of(gw_host *t)
{
	return ((const gw_target *)(const void *)t)->ops;
}

/* What a target reports back: gw_runtime_result, gw_runtime_abandon and: */

/* gw_runtime_release ends the turn a GW_CANCEL_HELD task kept (a is the
 * hold given to cancel). Any thread, no lock held. */
void gw_runtime_release(gw_runtime *rt, gw_actor *a);

/* ---- the cluster: routing each call to its actor's owner ---------------------
 *
 * In cluster mode (docs/design/cluster.md, "Placement and routing") every
 * call entering the runtime through gw_runtime_invoke (a client's Invoke, a
 * side effect or broadcast delivery, a scheduled invocation firing, a
 * workflow's pipe or forward) is first offered to the router, which runs it
 * here when this member owns the actor and otherwise forwards it to the
 * owner. Timer actions (inv->timer >= 0) run where their actor is active,
 * restores and wakes are never routed.
 *
 * Routing happens before resolve: the actor is not activated on a member
 * that does not own it (a gw_target would run the turn remotely, but only
 * after activating the actor here: a second activation, which is what the
 * cluster must never make). */
#define GW_ROUTER_OPS_VERSION 2
typedef struct gw_router_ops {
	int version; /* GW_ROUTER_OPS_VERSION; members are only ever appended */
	/* route is offered each GW_INV_CALL not marked local. Returns false:
	 * the runtime runs it here; true: the router took inv and completes it
	 * (inv->done, exactly once, with the owner's answer set as a local
	 * run would set it) or hands it back with gw_runtime_invoke_local.
	 * Thread: any, no runtime lock held. Never blocks. */
	bool (*route)(void *r, gw_inv *inv);
	/* cancel: inv's caller went away (gw_runtime_cancel). Returns true
	 * when the router holds inv (it then ends the forwarded call, and done
	 * runs with GW_ECANCELLED or the owner's answer); false when it does
	 * not (then, and always before route, inv->route_cancelled is set
	 * under the router's lock, so a later route refuses it). Thread: any,
	 * no runtime lock held. */
	bool (*cancel)(void *r, gw_inv *inv);
	/* version 2: owns tells whether this member owns rq's actor now, for
	 * work only the owner does and that is never forwarded: waking an
	 * actor whose outbox a crash left undelivered (GW_INV_WAKE). Returns
	 * GW_OWNS_YES; GW_OWNS_NO (owner_id, n bytes, gets the owner: it does
	 * that work); GW_OWNS_WAIT (no view yet, this member fenced, or the
	 * view has not caught up with the hosts here). NULL: always yes.
	 * Thread: any, no runtime lock held. Never blocks. */
	int (*owns)(void *r, const Spawn__InvocationRequest *rq, char *owner_id, size_t n);
	/* version 2: subscribers calls fn(user, actor, action) for every
	 * subscription to topic in system that the other ACTIVE members of the
	 * view publish (gw_registry_served: their hosts' NAMED and POOLED
	 * actors), so a broadcast reaches the subscribers no host here serves;
	 * the caller merges them with its registry's (one delivery per actor).
	 * Strings borrowed for the call. Returns how many. Thread: any; may be
	 * called under a shard lock (it takes only the router's lock); fn must
	 * not call into the runtime or the router. NULL: none. */
	size_t (*subscribers)(void *r, const char *system, const char *topic,
	                      void (*fn)(void *user, const char *actor, const char *action),
	                      void *user);
} gw_router_ops;

enum { GW_OWNS_YES = 0, GW_OWNS_NO = 1, GW_OWNS_WAIT = 2 };

/* gw_runtime_set_metrics makes the runtime record into gm (borrowed, it
 * must outlive the runtime; gm.h): invocations and their latencies,
 * activations, mailbox depths. Call once, before the first invocation.
 * NULL (the default): nothing is recorded (--metrics off). */
struct gw_gm;
void gw_runtime_set_metrics(gw_runtime *rt, struct gw_gm *gm);

/* gw_runtime_set_router installs the router (ops: static storage; r
 * borrowed, it must outlive every call). Call once, before the first
 * invocation. NULL ops: no cluster (the default). */
void gw_runtime_set_router(gw_runtime *rt, const gw_router_ops *ops, void *r);

/* gw_runtime_invoke_local is gw_runtime_invoke without routing: the router
 * runs inv here (this member owns the actor), or a peer forwarded it to
 * this member as the owner. Takes ownership of inv as gw_runtime_invoke. */
void gw_runtime_invoke_local(gw_runtime *rt, gw_inv *inv);

/* Handoff (handoff.c; docs/design/cluster.md, "Handoff"): mine tells
 * whether this member owns actor name, of actor_type (the template of an
 * instance) in system, in the view just installed. Strings borrowed for the
 * call. Called under a shard lock: it must not call into the runtime. */
typedef bool (*gw_mine_fn)(void *user, const char *system, const char *actor_type,
                           const char *name);

/* gw_runtime_rebalance hands off every active actor that mine says another
 * member owns now: it takes no new turn; the turn in flight (if any)
 * finishes and its caller gets its answer; its state is saved if dirty and
 * it deactivates; the calls queued in its mailbox are submitted again, in
 * their order, through the router (so to the new owner); a timer's turn is
 * dropped, an Admin restore answered UNAVAILABLE (retry). Calls that reach
 * it meanwhile are routed again after GW_HANDOFF_RETRY_MS. Returns how many
 * actors started leaving. Thread: any but a runtime callback; never blocks
 * beyond the shard locks. Needs a router (gw_runtime_set_router). */
size_t gw_runtime_rebalance(gw_runtime *rt, gw_mine_fn mine, void *user);

/* gw_runtime_fence_waiters answers, after the rebalance of a FENCED member
 * (it lost the cluster's database), every caller whose checkpointed turn
 * of a leaving actor is waiting for its save: UNAVAILABLE, outcome unknown
 * (the save may still commit, or be fenced by the new owner's epoch). The
 * save goes on; the turn is kept as if it committed, so a later save never
 * writes the state from before it. Turns with workflow children or outbox
 * entries keep waiting for their save (their effects depend on it).
 * Returns how many callers were answered. Thread: as gw_runtime_rebalance. */
size_t gw_runtime_fence_waiters(gw_runtime *rt);

/* gw_runtime_route offers inv to the router as gw_runtime_invoke would,
 * for callers that run a local inv in another way (an async call answered
 * at acceptance, gw_runtime_enqueue). Returns true when the router took
 * inv (it completes it), false when inv stays the caller's to run here.
 * Thread: any. */
bool gw_runtime_route(gw_runtime *rt, gw_inv *inv);

/* One active actor, as gw_runtime_foreach_active shows it: every pointer
 * is borrowed for the callback only. */
typedef struct gw_active_info {
	const char *system, *type, *name; /* type: the template of an UNNAMED instance */
	uint32_t queued;                  /* calls in its mailbox */
	bool busy;                        /* a turn in flight */
	uint64_t revision;                /* stored revision */
} gw_active_info;
typedef bool (*gw_active_fn)(void *user, const gw_active_info *a); /* false: stop */

/* gw_runtime_foreach_active calls fn for each active actor (not those
 * being forgotten or handed off), shard by shard under the shard's lock,
 * let go every few hundred buckets (listing.c): not a snapshot, and an
 * actor may be seen twice when its shard's table grows meanwhile. fn
 * copies what it keeps and must not call into the runtime; it returns
 * false to end the walk. For listings (Admin.List). */
void gw_runtime_foreach_active(gw_runtime *rt, gw_active_fn fn, void *user);

/* gw_runtime_sched_prefix writes the prefix every stored scheduled
 * invocation of system starts its id with (its hash, then '.'; at most 16
 * bytes with the NUL) into out (listing.c). */
void gw_runtime_sched_prefix(const char *system, char out[16]);

#endif
