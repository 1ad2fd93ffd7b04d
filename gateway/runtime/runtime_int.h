/* runtime_int.h - what the runtime's files share (runtime.c, mailbox.c,
 * lifecycle.c, state.c, timers.c, ...). Not an interface: everything here runs under the rules of
 * runtime.c (functions named *_locked hold the actor's shard lock). */
#ifndef GW_RUNTIME_INT_H
#define GW_RUNTIME_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "idset.h"
#include "log.h"
#include "runtime.h"
#include "slab.h"

#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

enum { A_LOADING, A_READY, A_BUSY };
enum { T_IDLE = 1, T_DEADLINE, T_TIMER, T_QDEADLINE, T_LEASE }; /* snapshots: snapq.c */

typedef struct gw_shard gw_shard;

/* A shard's snapshot timers (snapq.c): a min-heap on due_ms. */
typedef struct gw_snap_ent {
	int64_t due_ms;
	gw_actor *a; /* borrowed: its snap_at points back here */
} gw_snap_ent;
typedef struct gw_snapq {
	gw_snap_ent *v; /* owned: cap entries, n used */
	uint32_t n, cap;
} gw_snapq;

/* Timer actions of one active actor (allocated only for types that have
 * timers). */
typedef struct actor_timers {
	gw_tnode t; /* armed at the earliest due time */
	gw_actor *a;
	uint8_t pending; /* bit i: timer i's turn is queued or running */
	int n;
	int64_t due[GW_MAX_TIMERS];
	int64_t period[GW_MAX_TIMERS];
	char name[GW_MAX_TIMERS][64];
} actor_timers;

/* What one turn of a non-POOLED actor may change, captured when it is
 * dispatched and committed or rolled back whole (turn.c). */
typedef struct gw_turn {
	gw_blob *state, *tags, *extra; /* owned refs: the actor's, at dispatch */
	char *applied;                 /* owned: the idempotency key the turn recorded, or NULL */
	char **entries;                /* owned: keys of the outbox entries the turn appended */
	size_t n_entries;
	bool dirty;                /* a->dirty at dispatch */
	bool open;                 /* begun and not yet committed or rolled back */
	struct gw_turn *next_free; /* on the shard's free list (turn.c) */
} gw_turn;

/* What few actors have, allocated when first set and freed once all of it
 * is empty again (never while a turn is open, so a rollback never needs
 * memory): docs/design/memory.md. Access it through the functions below. */
typedef struct gw_actor_ext {
	gw_blob *tags;        /* owned ref: serialized ActorState holding only tags */
	gw_blob *extra;       /* owned ref: serialized StoredState holding only the outbox
	                         and applied keys (fields 100, 101); NULL when none */
	actor_timers *timers; /* owned; NULL when the type has none */
	uint32_t n_outbox;    /* entries in extra's outbox: each has a delivery in
	                         flight; the actor is not released before 0 */
	uint16_t pool_max;    /* POOLED: the bound of turns in flight (set at
	                         activation: a POOLED actor always has its ext) */
} gw_actor_ext;

/* One active actor. Every byte is accounted for in docs/design/memory.md:
 * keep the members ordered by size (no padding holes) and put anything an
 * idle actor does not need behind x, allocated when used. */
struct gw_actor {
	gw_actor *hnext;      /* hash chain */
	gw_actor_type *type;  /* a reference (gw_registry_type_rele when freed): the
	                         type outlives the actor, even once forgotten */
	gw_blob *state;       /* owned ref: Any contents (type URL + value); NULL = none */
	gw_actor_ext *x;      /* owned: tags, outbox, applied keys, timer actions;
	                         NULL while it has none (actor_ext.c) */
	gw_inv *mq_head;      /* mailbox (FIFO, mailbox.c); the head's mq_prev is its tail */
	gw_inv *busy;         /* the invocation in flight */
	gw_turn *turn;        /* owned: the turn in flight (BUSY; a checkpoint waiting);
	                         NULL when none is open (turn.c) */
	uint64_t revision;    /* stored revision; 0 = never saved */
	uint64_t epoch;       /* activation epoch from the store (fencing) */
	gw_tnode idle_t;      /* 24 bytes (wheel.h): idle timeout, lease retry */
	uint32_t last_active; /* last turn that was not a timer's (idle timeout), in
	                         wheel ticks, modulo 2^32: gwi_touch, gwi_last_active */
	uint32_t hash, qlen;
	uint32_t snap_at; /* the snapshot timer: 1 + index in the shard's snapq; 0 = none */
	uint32_t qbytes;  /* request bytes in the mailbox (--mailbox-bytes, at most 4 GiB) */
	uint16_t save_failures;
	uint16_t inflight; /* POOLED: turns in flight (the bound: gwi_pool_max) */
	uint16_t held;     /* timed-out turns whose task a host may still run
	                      (GW_CANCEL_HELD): each keeps its
	                      turn slot until gw_runtime_release */
	uint8_t st;
	uint8_t dirty : 1, in_save : 1, deactivating : 1, ckpt : 1, stateful : 1, fenced : 1,
	    pooled : 1;
	uint8_t resave : 1;      /* extra changed while a save was in flight: that save
	                            does not make the actor clean */
	uint8_t forgetting : 1;  /* Admin.Forget: being deactivated, never saved again
	                            (forget.c); the shard's list says by whom */
	uint8_t leaving : 1;     /* handoff (handoff.c): another member owns it now; it
	                            takes no new turn and deactivates once quiescent */
	uint8_t state_moved : 1; /* state was replaced since the save in flight began:
	                            that save does not make the actor clean (set at
	                            every assignment of state, cleared when a save starts) */
	char name[];             /* the actor's name; system is type->system */
};

/* actor_ext.c (shard lock held). The getters answer NULL / 0 when a has no
 * ext. gwi_set_tags and gwi_set_extra take over b (an owned ref, may be
 * NULL) and release the one they replace; GW_ENOMEM: no ext could be
 * allocated, b released, nothing changed. gwi_ext allocates a's ext when
 * it has none (NULL: out of memory); gwi_ext_trim frees it when empty and
 * no turn is open; gwi_ext_free releases all of it (the actor is freed). */
static inline gw_blob *gwi_tags(const gw_actor *a)
{
	return a->x ? a->x->tags : NULL;
}
static inline gw_blob *gwi_extra(const gw_actor *a)
{
	return a->x ? a->x->extra : NULL;
}
static inline uint32_t gwi_n_outbox(const gw_actor *a)
{
	return a->x ? a->x->n_outbox : 0;
}
static inline actor_timers *gwi_timers(const gw_actor *a)
{
	return a->x ? a->x->timers : NULL;
}
static inline uint16_t gwi_pool_max(const gw_actor *a)
{
	return a->x ? a->x->pool_max : 0;
}
gw_actor_ext *gwi_ext(gw_actor *a);
gw_err gwi_set_tags(gw_actor *a, gw_blob *b);
gw_err gwi_set_extra(gw_actor *a, gw_blob *b, uint32_t n_outbox);
void gwi_ext_trim(gw_actor *a);
void gwi_ext_free(gw_actor *a);

/* Counts per system for a quota (bounds.c), keyed by gwi_sys_hash. */
typedef struct gw_quota_ent {
	uint32_t h, n;
} gw_quota_ent;
typedef struct gw_quota {
	gw_quota_ent *v; /* owned: cap entries, n used */
	size_t n, cap;
} gw_quota;

struct gw_shard {
	pthread_mutex_t mu;
	struct gw_forget *forgets; /* owned: Forgets in progress of this shard's actors
	                              (forget.c); their names refuse invocations */
	gw_actor **buckets;
	size_t nbuckets, count;
	gw_wheel wheel;
	gw_runtime *rt;
	gw_turn *turn_free; /* owned: closed turns kept for reuse (turn.c) */
	gw_snapq snapq;     /* snapshot timers of its actors (snapq.c) */
	gw_slab slab;       /* its actors' memory (slab.h): an actor's shard is the
	                       slab's owner (gwi_ashard) */
	size_t n_turn_free;
};

/* gwi_touch records now_ms (monotonic) as a's last activity, rounded up
 * to the wheel's tick; gwi_last_active answers it in milliseconds (at most
 * one tick later than recorded), right while it is less than 2^31 ticks
 * (248 days) before now_ms: 4 bytes instead of 8 (docs/design/memory.md). */
static inline void gwi_touch(gw_actor *a, int64_t now_ms)
{
	a->last_active = (uint32_t)((now_ms + GW_WHEEL_TICK_MS - 1) / GW_WHEEL_TICK_MS);
}
static inline int64_t gwi_last_active(const gw_actor *a, int64_t now_ms)
{
	int64_t now_t = now_ms / GW_WHEEL_TICK_MS;
	int32_t ago = (int32_t)((uint32_t)now_t - a->last_active);
	return (now_t - ago) * GW_WHEEL_TICK_MS;
}

/* gwi_ashard: the shard a lives on (owner of the slab a was allocated
 * from, runtime.c): an actor needs no pointer to it. */
static inline gw_shard *gwi_ashard(const gw_actor *a)
{
	return container_of(gw_slab_of(a), gw_shard, slab);
}

struct gw_runtime {
	gw_runtime_opts o;
	gw_registry *reg;    /* borrowed */
	gw_persist *persist; /* borrowed */
	gw_shard *shards;
	size_t nshards;
	pthread_t timer;
	pthread_mutex_t tmu;
	pthread_cond_t tcv;
	bool stopping;
	bool timer_joined; /* gw_runtime_stop ended the timer thread */
	/* flush accounting */
	pthread_mutex_t fmu;
	pthread_cond_t fcv;
	long saves_in_flight;
	gw_err last_save_err;
	atomic_uint_fast64_t invocations, activations, deactivations;
	/* mailboxes (mailbox.c): request bytes queued in all of them
	 * (--queued-bytes), calls refused over a bytes bound, calls whose
	 * deadline passed while queued */
	atomic_size_t queued_bytes;
	atomic_uint_fast64_t queued_refused, queued_expired;
	atomic_uint_fast64_t cancelled; /* gw_runtime_cancel took a call out */
	int64_t start_ms; /* monotonic, at create: the registration grace counts from it */
	/* fire-and-forget invocations waiting for a retry (timer thread) */
	pthread_mutex_t rmu;
	gw_inv *retry;
	/* scheduled invocations this gateway is delivering (durable.c) */
	pthread_mutex_t smu;
	gw_idset sched_inflight; /* under smu */
	/* side effects in flight and parked (bounds.c); fxmu is a leaf lock */
	pthread_mutex_t fxmu;
	uint32_t fx_inflight, fx_parked;
	gw_inv *fx_park_head, *fx_park_tail; /* owned: parked effects, FIFO */
	/* quotas per system (bounds.c); qmu is a leaf lock */
	pthread_mutex_t qmu;
	gw_quota q_inst, q_sched;
	/* the cluster's router (gw_runtime_set_router): set before any call */
	const gw_router_ops *router_ops; /* static storage of the router */
	void *router;                    /* borrowed: outlives the runtime's use of it */
	struct gw_gm *gm;                /* borrowed (gw_runtime_set_metrics); NULL = none */
	gw_otlp *otlp;                   /* borrowed (gw_runtime_set_otlp); NULL = no spans */
};

/* What a locked section decided, delivered after the lock is released:
 * completions (done callbacks) and new invocations (workflows, timers). */
typedef struct done_list {
	gw_inv *head;
	gw_inv *spawn;
	gw_runtime *rt;
} done_list;

/* tracing.c (docs/observability.md) */
/* gwi_trace_begin continues or starts inv's trace, once (see tracing.c). */
void gwi_trace_begin(gw_inv *inv);
/* gwi_trace_child gives child (built from parent's turn) the trace of
 * parent's host turn; with keep_valid a valid traceparent the host put in
 * child's request stays. */
void gwi_trace_child(const gw_inv *parent, gw_inv *child, bool keep_valid);
/* gwi_trace_task_md returns the metadata m (n entries, borrowed) of inv's
 * task with traceparent naming inv's host turn: a new array in ar (*n
 * updated), or m itself when inv has no trace or ar is out of memory. */
Spawn__InvocationRequest__MetadataEntry **
gwi_trace_task_md(const gw_inv *inv, spawn_arena *ar, Spawn__InvocationRequest__MetadataEntry **m,
                  size_t *n);
/* gwi_trace_end hands inv's spans to the exporter (gw_inv_destroy). */
void gwi_trace_end(gw_inv *inv);
/* The per-turn log context: system, actor, action, trace id, request id of
 * inv on this thread between enter and leave (inv borrowed until leave). */
typedef struct gwi_log_scope {
	gw_log_ctx c;
	const gw_log_ctx *prev;
} gwi_log_scope;
void gwi_log_enter(gwi_log_scope *ls, const gw_inv *inv);
void gwi_log_leave(gwi_log_scope *ls);

/* runtime.c */
int64_t gwi_now_ms(void);
/* gwi_builtin_get tells whether action (may be NULL) is one of Spawn's
 * built-in state reads (get, getState, get_state, Get, GetState): an actor
 * that does not declare it answers it with its state, without a host. */
bool gwi_builtin_get(const char *action);
void gwi_finish(done_list *dl, gw_inv *inv, gw_err err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void gwi_spawn_later(done_list *dl, gw_runtime *rt, gw_inv *inv);
uint32_t gwi_hash_key(const char *system, const char *name);
gw_shard *gwi_shard_of(gw_runtime *rt, uint32_t h);
gw_actor *gwi_table_find(gw_shard *s, uint32_t h, const char *system, const char *name);
gw_actor_settings gwi_settings(gw_runtime *rt, gw_actor *a);
int64_t gwi_idle_ms(gw_runtime *rt, const gw_actor_settings *st);
void gwi_dispatch_locked(gw_runtime *rt, gw_actor *a, done_list *dl);
/* gwi_deliver runs what a locked section decided (no lock held);
 * gwi_start_save_locked queues a save of a's state unless one is in
 * flight; gwi_timer_main is the timer thread (lifecycle.c starts it). */
void gwi_deliver(done_list *dl);
void gwi_start_save_locked(gw_runtime *rt, gw_actor *a);
void *gwi_timer_main(void *arg);

/* mailbox.c (shard lock held): gwi_mq_admit checks a's mailbox bounds
 * for inv (count, --mailbox-bytes, --queued-bytes): GW_OK with inv's bytes
 * counted gateway-wide (gwi_mq_push must follow), or GW_EFULL with msg;
 * gwi_mq_push appends inv (owned by a's mailbox until it leaves) and arms
 * its queue deadline; gwi_mq_pop takes the head out (NULL when empty);
 * gwi_mq_expire_locked finishes a queued inv whose deadline passed. */
gw_err gwi_mq_admit(gw_runtime *rt, gw_actor *a, gw_inv *inv, char *msg, size_t n);
void gwi_mq_push(gw_runtime *rt, gw_actor *a, gw_inv *inv);
gw_inv *gwi_mq_pop(gw_runtime *rt, gw_actor *a);
/* gwi_mq_remove takes inv (queued in a's mailbox) out, bytes given back. */
void gwi_mq_remove(gw_runtime *rt, gw_actor *a, gw_inv *inv);
void gwi_mq_expire_locked(gw_runtime *rt, gw_inv *inv, done_list *dl);
/* gwi_mq_cancel_locked finishes a queued inv whose caller went away
 * (GW_ECANCELLED): it leaves the mailbox, its bytes are given back. */
void gwi_mq_cancel_locked(gw_runtime *rt, gw_inv *inv, done_list *dl);

/* state.c: the persisted form of a state (spawn.actors.ActorState) */
gw_blob *gwi_encode_state(gw_actor *a);
gw_err gwi_decode_state(gw_actor *a, const gw_blob *stored);

/* durable.c: record a new instance in the statestore (fire and forget) */
void gwi_instance_created(gw_runtime *rt, const char *system, const char *name, const char *parent);

/* outbox.c: effects of checkpointed turns, idempotency keys (the *_locked
 * ones hold a's shard lock) */
#define GW_IDEMPOTENCY_KEY "spawn-idempotency-key"
/* gwi_inv_key: inv->idem_key (set only by the gateway), or NULL. */
const char *gwi_inv_key(const gw_inv *inv);
/* gwi_legacy_key: the key a request stored by an earlier gateway carries
 * in its metadata (the last GW_IDEMPOTENCY_KEY entry), or NULL. Only for
 * rows the gateway wrote itself (outbox entries, scheduled effects). */
const char *gwi_legacy_key(const Spawn__InvocationRequest *rq);
/* gwi_key_metadata: inv's request metadata with every GW_IDEMPOTENCY_KEY
 * entry a peer put there removed and the gateway's key (if any) added, in
 * ar (the request's own array when out of memory); *n its length. Hosts
 * see the key for information; the gateway never reads it back. */
Spawn__InvocationRequest__MetadataEntry **gwi_key_metadata(const gw_inv *inv, spawn_arena *ar,
                                                           size_t *n);
/* gwi_outbox_key writes the key of a's effect `index` of the turn saved as
 * `revision` into out (n bytes, may be 0), like snprintf: returns the
 * length it needs. Format: len(system):system len(name):name@revision#index. */
size_t gwi_outbox_key(char *out, size_t n, const char *system, const char *name, uint64_t revision,
                      size_t index);
bool gwi_outbox_applied(gw_actor *a, const char *key);
void gwi_outbox_record(gw_actor *a, const char *key);
gw_err gwi_outbox_store(gw_actor *a, gw_inv *fire, uint64_t revision);
void gwi_outbox_remove(gw_actor *a, const char *const *entries, size_t n, const char *applied);
size_t gwi_outbox_redeliver(gw_runtime *rt, gw_actor *a, done_list *dl);
void gwi_outbox_ack(gw_runtime *rt, gw_inv *delivery);
void gwi_wf_fire_done(gw_inv *inv);

/* turn.c: one turn's outcome (see the comment at the top of turn.c).
 * gwi_turn_begin captures a's state, tags, outbox and dirty flag when a
 * turn is dispatched (GW_ENOMEM: no turn could be allocated; nothing
 * changed); gwi_turn_record_key records key (borrowed) as applied
 * and notes it; gwi_turn_store_outbox appends fire's effects (borrowed
 * list) to the outbox and notes their keys (GW_ENOMEM: none of them is in
 * the outbox; they go out without it); gwi_turn_commit keeps what the turn
 * did; gwi_turn_rollback restores what was captured and removes exactly
 * the noted entries and key. Commit and rollback close the turn; both are
 * no-ops on a closed one. */
gw_err gwi_turn_begin(gw_actor *a);
/* gwi_turn_free_all frees s's kept turns (gw_runtime_destroy). */
void gwi_turn_free_all(gw_shard *s);
void gwi_turn_record_key(gw_actor *a, const char *key);
gw_err gwi_turn_store_outbox(gw_actor *a, gw_inv *fire);
void gwi_turn_commit(gw_actor *a);
void gwi_turn_rollback(gw_actor *a);

/* runtime.c, for outbox.c: save a's changed extra soon (now when
 * `now`), and free a if it was only waiting for its outbox. */
void gwi_extra_changed_locked(gw_runtime *rt, gw_actor *a, bool now);

/* Fault injection for crash tests (SPAWN_FAULT, read once at
 * gw_runtime_create; see docs/design/call-lifecycle.md): the process exits
 * at once (_exit(GW_FAULT_EXIT)) at the named point. */
enum { GW_FAULT_NONE = 0, GW_FAULT_OUTBOX_COMMIT, GW_FAULT_OUTBOX_ACK };
#define GW_FAULT_EXIT 86
extern int gwi_fault;
void gwi_fault_hit(int point, const char *where);

/* bounds.c: effects in flight (gwi_fx_submit may run under a shard lock;
 * gwi_fx_over runs with no lock held) and quotas */
void gwi_bounds_defaults(gw_runtime_opts *o);
/* gwi_result_bounds checks a result (borrowed) of inv's turn on a (shard
 * lock held) against the state, outbox and in-flight bounds: GW_OK, or the
 * error with msg; changes nothing. */
gw_err gwi_result_bounds(gw_runtime *rt, gw_actor *a, const gw_inv *inv,
                         const Spawn__ActorInvocationResponse *r, char *msg, size_t n);
bool gwi_fx_admit(gw_runtime *rt, size_t n, uint32_t *inflight);
void gwi_fx_submit(done_list *dl, gw_runtime *rt, gw_inv *inv);
void gwi_fx_over(gw_runtime *rt);
void gwi_fx_fini(gw_runtime *rt);
uint32_t gwi_sys_hash(const char *system);
bool gwi_sched_id_hash(const char *id, uint32_t *h);
void gwi_sched_quota_give(gw_runtime *rt, const char *system);
void gwi_inst_quota_give(gw_runtime *rt, const char *system);
void gwi_quotas_fini(gw_runtime *rt);

/* forget.c (shard lock held): gwi_forgetting_locked tells whether a Forget
 * of (system, name) is in progress (invocations are then refused);
 * gwi_forget_try_locked frees a forgetting actor once nothing of it is in
 * flight (no turn, no held turn, no save, activated) and queues the erase:
 * a must not be used after it returns true. */
bool gwi_forgetting_locked(gw_shard *s, const char *system, const char *name);
/* handoff.c / runtime.c (shard lock held): gwi_leave_try_locked deactivates
 * a leaving actor once nothing of a turn is in flight (a dirty state is
 * saved first; the save's end calls it again). May free a; returns true
 * when it took over a (the caller must not use a after that). */
bool gwi_leave_try_locked(gw_runtime *rt, gw_actor *a);
/* A call that reaches a leaving actor is routed again after this long (the
 * member's router may not have its newest view yet). */
#define GW_HANDOFF_RETRY_MS 20
bool gwi_forget_try_locked(gw_runtime *rt, gw_actor *a);
/* gwi_forget_fini (gw_runtime_destroy, no lock needed: every thread is
 * gone) ends the Forgets still waiting for their actor: fn gets
 * GW_ESHUTDOWN (nothing was erased). */
void gwi_forget_fini(gw_shard *s);
/* runtime.c, for forget.c: frees an actor (its table entry, timers, state). */
void gwi_actor_free_locked(gw_shard *s, gw_actor *a);

/* The activation lease (cluster mode; runtime.c, docs/design/cluster.md):
 * an activation refused GW_EOWNED waits in LOADING and tries again after a
 * backoff of GW_LEASE_BACKOFF_MS doubling to GW_LEASE_BACKOFF_MAX_MS (the
 * idle timer node, kind T_LEASE); a queued call whose deadline would pass
 * before the next try plus GW_LEASE_MARGIN_MS, and every queued call once
 * the actor waited GW_LEASE_WAIT_MS, is answered UNAVAILABLE with the
 * not-dispatched trailer (the client runtimes retry it). */
#define GW_LEASE_BACKOFF_MS     10
#define GW_LEASE_BACKOFF_MAX_MS 250
#define GW_LEASE_MARGIN_MS      50
#define GW_LEASE_WAIT_MS        10000
/* gwi_lease_retry_locked: the T_LEASE timer fired (shard lock held); may
 * free a. */
void gwi_lease_retry_locked(gw_runtime *rt, gw_actor *a, done_list *dl);

/* snapq.c (shard lock held): gwi_snap_arm (re)arms a's snapshot timer at
 * due_ms (GW_ENOMEM: not armed; save now instead); gwi_snap_disarm is
 * harmless when it is not armed; gwi_snap_pop_due disarms and returns an
 * actor whose timer is due by now_ms (NULL: none); gwi_snap_fini frees
 * the heap (gw_runtime_destroy). */
gw_err gwi_snap_arm(gw_shard *s, gw_actor *a, int64_t due_ms);
void gwi_snap_disarm(gw_shard *s, gw_actor *a);
gw_actor *gwi_snap_pop_due(gw_shard *s, int64_t now_ms);
void gwi_snap_fini(gw_shard *s);

/* timers.c: timer actions of active actors */
void gwi_timers_start_locked(gw_runtime *rt, gw_actor *a);
void gwi_timers_fire_locked(gw_runtime *rt, actor_timers *t, done_list *dl);

/* runtime.c, for the timer thread (timers.c): gwi_maybe_release_locked
 * frees a deactivating actor once nothing holds it; gwi_take_back_locked
 * ends a dispatched inv whose task is pending on its target (false: nothing
 * to take back). Both under the actor's shard lock. */
void gwi_maybe_release_locked(gw_runtime *rt, gw_actor *a);
bool gwi_take_back_locked(gw_runtime *rt, gw_inv *inv, gw_err err, const char *msg, done_list *dl);

/* runtime.c, for result.c (a target's answer ends the turn): see each
 * definition. All under the actor's shard lock but gwi_discard_workflow and
 * gwi_target_rele. */
bool gwi_submit_workflow(done_list *dl, gw_runtime *rt, gw_inv *inv);
void gwi_discard_workflow(gw_inv *inv);
void gwi_target_rele(gw_host *t);
void gwi_pooled_end_locked(gw_runtime *rt, gw_actor *a, done_list *dl);
void gwi_turn_over_locked(gw_runtime *rt, gw_actor *a, done_list *dl);
bool gwi_end_turn_locked(gw_runtime *rt, gw_actor *a, done_list *dl);

#endif
