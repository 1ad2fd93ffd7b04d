/* runtime.c - shards, activation, dispatch and the state lifecycle (the
 * mailbox is mailbox.c; creating, stopping and freeing the runtime is
 * lifecycle.c).
 * The state machine is drawn in runtime.h; the threading in
 * docs/design/threading.md. Every function named *_locked runs with the
 * actor's shard lock held and never blocks. Completions collected under a
 * lock are delivered after it is released (done_list). */
#include "runtime.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gm.h"
#include "log.h"
#include "runtime_int.h"
#include "workflow.h"

void gwi_spawn_later(done_list *dl, gw_runtime *rt, gw_inv *inv)
{
	dl->rt = rt;
	inv->next = dl->spawn;
	dl->spawn = inv;
}

int64_t gwi_now_ms(void)
{
	return spawn_now_ns() / 1000000;
}

/* ---- invocations --------------------------------------------------------- */

gw_inv *gw_inv_create(size_t arena_limit)
{
	gw_inv *inv = calloc(1, sizeof *inv);
	if (inv) {
		spawn_arena_init(&inv->arena, arena_limit);
		inv->timer = -1;
	}
	return inv;
}

void gw_inv_destroy(gw_inv *inv)
{
	if (!inv)
		return;
	gwi_trace_end(inv);
	gw_inv_destroy(inv->wf_route);
	while (inv->wf_fire) {
		gw_inv *n = inv->wf_fire->next;
		gw_inv_destroy(inv->wf_fire);
		inv->wf_fire = n;
	}
	gw_blob_rele(inv->reply);
	spawn_arena_fini(&inv->arena);
	free(inv);
}

/* finish records an outcome and queues inv for delivery after unlock. */
void gwi_finish(done_list *dl, gw_inv *inv, gw_err err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void gwi_finish(done_list *dl, gw_inv *inv, gw_err err, const char *fmt, ...)
{
	inv->err = err;
	/* Metrics: invocations of actions (not Admin restores, not the wakes
	 * of actors with undelivered effects). */
	gw_gm *gm = inv->rt && inv->kind == GW_INV_CALL ? inv->rt->gm : NULL;
	if (gm) {
		const gw_actor_type *t = inv->actor ? inv->actor->type : NULL;
		gw_gm_invocation(gm, t ? t->system : NULL, t ? t->name : NULL,
		                 t && inv->req ? inv->req->action_name : NULL, err, inv->t_enq_ns,
		                 inv->t_disp_ns, gw_gm_now_ns(gm));
		/* Each attempt is one outcome: a retry (a scheduled invocation,
		 * an outbox delivery) is timed afresh from its resubmission. */
		inv->t_enq_ns = inv->t_disp_ns = 0;
	}
	/* A timer's turn is over: the next tick may queue another. Every finish
	 * of a queued invocation runs under its actor's shard lock. */
	if (inv->timer >= 0 && inv->actor && gwi_timers(inv->actor))
		gwi_timers(inv->actor)->pending &= (uint8_t) ~(1u << inv->timer);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(inv->msg, sizeof inv->msg, fmt, ap);
		va_end(ap);
		if (n >= (int)sizeof inv->msg) {
			/* Cut at a character boundary, never inside a UTF-8 sequence:
			 * find where the last character starts and whether it fits. */
			size_t end = sizeof inv->msg - 1, i = end;
			while (i > 0 && ((unsigned char)inv->msg[i - 1] & 0xC0) == 0x80)
				i--;
			if (i > 0) {
				unsigned char lead = (unsigned char)inv->msg[i - 1];
				size_t len = lead >= 0xF0   ? 4
				             : lead >= 0xE0 ? 3
				             : lead >= 0xC0 ? 2
				                            : 1;
				if (i - 1 + len > end)
					inv->msg[i - 1] = 0;
			}
		}
	}
	inv->next = dl->head;
	dl->head = inv;
}

void gwi_deliver(done_list *dl)
{
	if (!dl->head && !dl->spawn)
		return;
	/* A done callback frees its invocation: no log context may point
	 * into one while they run. */
	const gw_log_ctx *ctx = gw_log_ctx_enter(NULL);
	/* Reverse so completions keep the order they were decided in. */
	gw_inv *rev = NULL;
	while (dl->head) {
		gw_inv *n = dl->head->next;
		dl->head->next = rev;
		rev = dl->head;
		dl->head = n;
	}
	while (rev) {
		gw_inv *n = rev->next;
		rev->next = NULL;
		rev->done(rev);
		rev = n;
	}
	while (dl->spawn) {
		gw_inv *n = dl->spawn->next;
		dl->spawn->next = NULL;
		gw_runtime_invoke(dl->rt, dl->spawn);
		dl->spawn = n;
	}
	gw_log_ctx_leave(ctx);
}

/* gwi_submit_workflow hands a committed turn's workflow over: the routed
 * child (which will complete inv) and the fire-and-forget ones. Returns
 * true when inv is completed by the routed child (do not finish it). */
bool gwi_submit_workflow(done_list *dl, gw_runtime *rt, gw_inv *inv)
{
	bool routed = inv->wf_route != NULL;
	if (inv->wf_route)
		gwi_spawn_later(dl, rt, inv->wf_route);
	while (inv->wf_fire) {
		gw_inv *n = inv->wf_fire->next;
		gwi_fx_submit(dl, rt, inv->wf_fire); /* counted: --max-effects-in-flight */
		inv->wf_fire = n;
	}
	inv->wf_route = NULL;
	return routed;
}

void gwi_discard_workflow(gw_inv *inv)
{
	gw_wf wf = {.route = inv->wf_route, .fire = inv->wf_fire};
	gwi_wf_discard(&wf);
	inv->wf_route = inv->wf_fire = NULL;
}

void gwi_runtime_retry(gw_runtime *rt, gw_inv *inv, int64_t delay_ms)
{
	inv->retry_at_ms = gwi_now_ms() + delay_ms;
	inv->err = GW_OK;
	inv->msg[0] = 0;
	/* A retried turn starts afresh: the reply of the failed attempt (e.g. a
	 * workflow that could not be built) would be overwritten, and leak, by
	 * the next result (an exit-time leak of fuzz_host_message). */
	gw_blob_rele(inv->reply);
	inv->reply = NULL;
	pthread_mutex_lock(&rt->rmu);
	inv->next = rt->retry;
	rt->retry = inv;
	pthread_mutex_unlock(&rt->rmu);
}

bool gwi_builtin_get(const char *action)
{
	static const char *const names[] = {"get", "getState", "get_state", "Get", "GetState"};
	for (size_t i = 0; action && i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(action, names[i]))
			return true;
	return false;
}

/* ---- shards and the actor table ------------------------------------------ */

uint32_t gwi_hash_key(const char *system, const char *name)
{
	uint32_t h = 2166136261u;
	for (; *system; system++)
		h = (h ^ (uint8_t)*system) * 16777619u;
	h = (h ^ 0xffu) * 16777619u;
	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

gw_shard *gwi_shard_of(gw_runtime *rt, uint32_t h)
{
	return &rt->shards[(h >> 16 ^ h) % rt->nshards];
}

gw_actor *gwi_table_find(gw_shard *s, uint32_t h, const char *system, const char *name)
{
	for (gw_actor *a = s->buckets[h & (s->nbuckets - 1)]; a; a = a->hnext)
		if (a->hash == h && !strcmp(a->name, name) && !strcmp(a->type->system, system))
			return a;
	return NULL;
}

static void table_grow(gw_shard *s)
{
	size_t nb = s->nbuckets * 2;
	gw_actor **b = calloc(nb, sizeof *b);
	if (!b)
		return; /* keep the longer chains; still correct */
	for (size_t i = 0; i < s->nbuckets; i++) {
		gw_actor *a = s->buckets[i];
		while (a) {
			gw_actor *n = a->hnext;
			a->hnext = b[a->hash & (nb - 1)];
			b[a->hash & (nb - 1)] = a;
			a = n;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = nb;
}

static void table_remove(gw_shard *s, gw_actor *a)
{
	gw_actor **pp = &s->buckets[a->hash & (s->nbuckets - 1)];
	while (*pp && *pp != a)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = a->hnext;
	s->count--;
}

static void actor_free_locked(gw_shard *s, gw_actor *a)
{
	/* The activation ends: its lease goes back (cluster mode; after the
	 * final save, which was queued before). A fenced or refused activation
	 * has no epoch. */
	if (a->stateful && a->epoch &&
	    gw_persist_release(s->rt->persist, a->type->system, a->name, a->epoch) != GW_OK)
		GW_WARN("actor %s/%s: lease not released (out of memory); it frees itself when "
		        "this member fences",
		        a->type->system, a->name);
	gw_wheel_disarm(&s->wheel, &a->idle_t);
	gwi_snap_disarm(s, a);
	if (gwi_timers(a))
		gw_wheel_disarm(&s->wheel, &gwi_timers(a)->t);
	table_remove(s, a);
	gw_blob_rele(a->state);
	gwi_turn_commit(a); /* releases what a turn captured */
	gw_gm_activation(s->rt->gm, a->type->system, a->type->name, false);
	gwi_ext_free(a);
	gw_registry_type_rele(a->type);
	gw_slab_free(a);
	atomic_fetch_add(&s->rt->deactivations, 1);
}

void gwi_actor_free_locked(gw_shard *s, gw_actor *a)
{
	actor_free_locked(s, a);
}

/* forget_soon_locked: a forgetting actor may have become quiescent; its
 * idle timer fires at once and frees it there (fire_locked), where nothing
 * on the stack still points at it. */
static void forget_soon_locked(gw_actor *a)
{
	a->idle_t.kind = T_IDLE;
	gw_wheel_arm(&gwi_ashard(a)->wheel, &a->idle_t, gwi_now_ms());
}

int64_t gwi_idle_ms(gw_runtime *rt, const gw_actor_settings *st)
{
	return st->deactivate_ms > 0 ? st->deactivate_ms : rt->o.deactivate_ms;
}

static int64_t snap_ms(gw_runtime *rt, const gw_actor_settings *st)
{
	return st->snapshot_ms > 0 ? st->snapshot_ms : rt->o.snapshot_ms;
}

gw_actor_settings gwi_settings(gw_runtime *rt, gw_actor *a)
{
	/* The actor holds a reference on its type: read through the pointer. */
	gw_actor_settings st;
	gw_registry_settings(rt->reg, a->type, &st);
	return st;
}

/* ---- saves --------------------------------------------------------------- */

static void save_done(void *arg, gw_err err);

static void flush_account(gw_runtime *rt, long delta, gw_err err)
{
	pthread_mutex_lock(&rt->fmu);
	rt->saves_in_flight += delta;
	if (delta < 0 && err)
		rt->last_save_err = err;
	pthread_cond_broadcast(&rt->fcv);
	pthread_mutex_unlock(&rt->fmu);
}

/* start_save_locked queues a save of the current state unless one is in
 * flight (save_done starts the next one while the actor stays dirty). */
void gwi_start_save_locked(gw_runtime *rt, gw_actor *a)
{
	if (a->forgetting) {
		forget_soon_locked(a); /* a forgotten actor never writes again (forget.c) */
		return;
	}
	if (a->in_save || !a->dirty || !a->stateful)
		return;
	gw_blob *enc = gwi_encode_state(a);
	if (!enc) {
		GW_ERROR("actor %s/%s: out of memory encoding state", a->type->system, a->name);
		return;
	}
	a->in_save = 1;
	a->state_moved = 0; /* the save captures the state as it is now */
	flush_account(rt, 1, GW_OK);
	gw_err err = gw_persist_save(rt->persist, a->type->system, a->name,
	                             a->state ? gw_blob_type(a->state) : "", enc, a->revision,
	                             a->epoch, gwi_n_outbox(a) > 0, save_done, a);
	if (err) {
		a->in_save = 0;
		flush_account(rt, -1, err);
	}
}

static void load_done(void *arg, gw_err err, gw_blob *stored, uint64_t revision, uint64_t epoch);

/* reactivate_locked drops a fenced activation: its state is discarded and,
 * if calls are waiting, a fresh activation (new epoch, latest state) is
 * loaded for them; otherwise the actor is freed. a must not be used after
 * this returns. */
static void reactivate_locked(gw_runtime *rt, gw_actor *a, done_list *dl)
{
	gw_shard *s = gwi_ashard(a);
	a->fenced = 0;
	if (a->forgetting) {
		a->dirty = 0;
		forget_soon_locked(a);
		return;
	}
	a->dirty = 0;
	gwi_snap_disarm(s, a);
	gw_blob_rele(a->state);
	a->resave = 0;
	gwi_turn_commit(a); /* nothing of this activation is kept */
	/* acks of deliveries in flight find nothing to remove */
	gwi_set_tags(a, NULL);
	gwi_set_extra(a, NULL, 0);
	a->state = NULL;
	a->state_moved = 1;
	a->revision = a->epoch = 0;
	if (!a->mq_head) {
		actor_free_locked(s, a);
		return;
	}
	a->st = A_LOADING;
	if (gw_persist_activate(rt->persist, a->type->system, a->name, load_done, a) != GW_OK) {
		for (gw_inv *inv; (inv = gwi_mq_pop(rt, a));)
			gwi_finish(dl, inv, GW_ENOMEM, "cannot reactivate actor %s", a->name);
		actor_free_locked(s, a);
	}
}

static void save_finish(gw_actor *a, gw_err err);

/* conflict_checked: a save of ours got ECONFLICT. When the stored row
 * carries our epoch and a newer revision than we know, an earlier attempt
 * of ours committed and only its answer was lost (a connection dropped at
 * COMMIT): no other activation can write with our epoch. Then we learn
 * that revision and save the current state on top of it at once (a
 * checkpoint waiting for this save keeps waiting). Anything else: fenced. */
static void conflict_checked(void *arg, gw_err err, gw_blob *stored, uint64_t revision,
                             uint64_t epoch)
{
	gw_actor *a = arg;
	gw_shard *s = gwi_ashard(a);
	gw_runtime *rt = s->rt;
	gw_blob_rele(stored);
	pthread_mutex_lock(&s->mu);
	bool ours = err == GW_OK && epoch == a->epoch && revision > a->revision;
	if (ours) {
		GW_INFO("actor %s/%s: revision %llu was committed although its answer was lost; "
		        "saving again on top of it",
		        a->type->system, a->name, (unsigned long long)revision);
		a->revision = revision;
		a->in_save = 0;
		a->dirty = 1;
		gwi_start_save_locked(rt, a);
		pthread_mutex_unlock(&s->mu);
		flush_account(rt, -1, GW_OK); /* the first attempt is over */
		return;
	}
	pthread_mutex_unlock(&s->mu);
	save_finish(a, err == GW_OK || err == GW_ENOTFOUND ? GW_EFENCED : err);
}

static void save_done(void *arg, gw_err err)
{
	gw_actor *a = arg;
	if (err == GW_ECONFLICT) {
		gw_shard *s = gwi_ashard(a);
		pthread_mutex_lock(&s->mu);
		uint64_t epoch = a->epoch;
		pthread_mutex_unlock(&s->mu);
		if (epoch && gw_persist_read(s->rt->persist, a->type->system, a->name, 0,
		                             conflict_checked, a) == GW_OK)
			return; /* the save stays in flight until the check answers */
	}
	save_finish(a, err);
}

static void save_finish(gw_actor *a, gw_err err)
{
	gw_shard *s = gwi_ashard(a);
	gw_runtime *rt = s->rt;
	done_list dl = {0};
	pthread_mutex_lock(&s->mu);
	a->in_save = 0;
	if (a->ckpt && a->busy)
		a->busy->tr.save1_ns = gw_trace_now_ns();
	if (err == GW_EFENCED || err == GW_ECONFLICT) {
		/* Another gateway activated this actor (or wrote it) since we
		 * loaded it: this activation is stale and must never write again. */
		GW_WARN("actor %s/%s: %s; dropping this activation", a->type->system, a->name,
		        gw_strerror(err));
		a->fenced = 1;
		a->dirty = 0;
		if (a->ckpt && a->busy) {
			gw_inv *inv = a->busy;
			a->busy = NULL;
			a->ckpt = 0;
			gw_blob_rele(inv->reply);
			inv->reply = NULL;
			gwi_discard_workflow(inv);
			gwi_finish(
			    &dl, inv, GW_EFENCED,
			    "actor %s is active on another gateway; its state was not changed",
			    a->name);
			a->st = A_READY;
		}
		if (a->st == A_READY)
			reactivate_locked(rt, a, &dl); /* may free a */
		pthread_mutex_unlock(&s->mu);
		gwi_deliver(&dl);
		flush_account(rt, -1, GW_OK);
		return;
	}
	bool captured_current = !a->state_moved && !a->resave; /* extra may have changed */
	bool gone = false;
	a->resave = 0;
	if (err == GW_OK) {
		a->revision++;
		a->save_failures = 0;
		if (captured_current)
			a->dirty = 0;
	} else {
		a->save_failures++;
		GW_WARN("actor %s/%s: save of revision %llu failed: %s", a->type->system, a->name,
		        (unsigned long long)a->revision + 1, gw_strerror(err));
	}
	if (a->ckpt && a->busy) {
		if (err == GW_OK && !a->state_moved) {
			/* The checkpointed state is durable: answer the caller and
			 * deliver the turn's effects (its outbox entries). */
			gw_inv *inv = a->busy;
			a->busy = NULL;
			a->ckpt = 0;
			gwi_turn_commit(a);
			inv->revision = a->revision;
			if (inv->wf_fire && inv->wf_fire->outbox_src)
				gwi_fault_hit(GW_FAULT_OUTBOX_COMMIT,
				              "outbox committed, not delivered");
			if (!gwi_submit_workflow(&dl, rt, inv))
				gwi_finish(&dl, inv, GW_OK, NULL);
			gone = gwi_end_turn_locked(rt, a, &dl);
		} else if (err != GW_OK) {
			/* Never acknowledge without a durable write: roll back. */
			gw_inv *inv = a->busy;
			a->busy = NULL;
			a->ckpt = 0;
			gwi_turn_rollback(a);
			gw_blob_rele(inv->reply);
			inv->reply = NULL;
			gwi_discard_workflow(inv);
			gwi_finish(&dl, inv, GW_EUNAVAIL,
			           "state of actor %s could not be saved: %s", a->name,
			           gw_strerror(err));
			gone = gwi_end_turn_locked(rt, a, &dl);
		}
	}
	if (gone) {
		/* Handed over (a handoff's deactivation, which may have freed a,
		 * or a fenced activation dropped): nothing more here. */
		pthread_mutex_unlock(&s->mu);
		gwi_deliver(&dl);
		flush_account(rt, -1, err);
		return;
	}
	if (a->dirty && err == GW_OK) {
		gwi_start_save_locked(rt, a); /* a newer state arrived meanwhile */
	} else if (a->dirty && !a->snap_at) {
		/* Retry with backoff: 100 ms doubling to 5 s (no room in the
		 * heap: the next turn's end or the deactivation saves). */
		int64_t back = 100LL << (a->save_failures < 6 ? a->save_failures : 6);
		if (gwi_snap_arm(s, a, gwi_now_ms() + (back > 5000 ? 5000 : back)) != GW_OK)
			GW_ERROR("actor %s/%s: out of memory arming its save retry",
			         a->type->system, a->name);
	}
	if (a->st == A_READY)
		gwi_dispatch_locked(rt, a, &dl);
	gwi_maybe_release_locked(rt, a);
	pthread_mutex_unlock(&s->mu);
	gwi_deliver(&dl);
	flush_account(rt, -1, err);
}

bool gwi_leave_try_locked(gw_runtime *rt, gw_actor *a)
{
	if (!a->leaving || a->forgetting || a->st != A_READY || a->busy || a->inflight || a->held)
		return false;
	a->deactivating = 1;
	gwi_maybe_release_locked(rt, a); /* a dirty state is saved first; may free a */
	return true;
}

/* gwi_maybe_release_locked frees a deactivating actor once nothing holds it. */
void gwi_maybe_release_locked(gw_runtime *rt, gw_actor *a)
{
	if (a->forgetting) {
		forget_soon_locked(a);
		return;
	}
	if (!a->deactivating)
		return;
	if (a->st != A_READY || a->mq_head || a->in_save || a->busy || a->inflight || a->held ||
	    gwi_n_outbox(a))
		return; /* an outbox entry in flight comes back with an ack */
	if (a->dirty) {
		gwi_start_save_locked(rt, a);
		return;
	}
	actor_free_locked(gwi_ashard(a), a);
}

void gwi_extra_changed_locked(gw_runtime *rt, gw_actor *a, bool now)
{
	if (now) {
		gwi_start_save_locked(rt, a); /* or save_done starts it: dirty stays */
	} else if (!a->snap_at) {
		gw_actor_settings st = gwi_settings(rt, a);
		if (gwi_snap_arm(gwi_ashard(a), a, gwi_now_ms() + snap_ms(rt, &st)) != GW_OK)
			gwi_start_save_locked(rt, a); /* no room to wait: save now */
	}
	gwi_maybe_release_locked(rt, a);
}

/* ---- activation ------------------------------------------------------------ */

/* idle_if_unused_locked arms the idle timer of a READY actor with nothing
 * to run and none armed: an actor whose calls all left (deadline, refused,
 * no host) is freed after its idle timeout, not kept for ever. */
static void idle_if_unused_locked(gw_runtime *rt, gw_actor *a)
{
	if (a->st != A_READY || a->mq_head || a->inflight || gw_tnode_armed(&a->idle_t))
		return;
	gw_actor_settings st = gwi_settings(rt, a);
	a->idle_t.kind = T_IDLE;
	gw_wheel_arm(&gwi_ashard(a)->wheel, &a->idle_t,
	             gwi_last_active(a, gwi_now_ms()) + gwi_idle_ms(rt, &st));
}

/* ---- the activation lease (cluster mode) ----------------------------------- */

/* lease_wait_locked: a's activation was refused because another live
 * member holds its lease (or this member is not one yet). While LOADING it
 * waits with its mailbox and tries again after a backoff (T_LEASE); the
 * calls that cannot wait that long are answered UNAVAILABLE +
 * not-dispatched, and all of them after GW_LEASE_WAIT_MS. With nothing
 * left to serve (or handed off meanwhile: leaving) a is freed. */
static void lease_wait_locked(gw_runtime *rt, gw_actor *a, done_list *dl)
{
	int64_t now = gwi_now_ms();
	if (a->save_failures == 0)
		gwi_touch(a, now); /* LOADING: the time the waits began */
	unsigned sh = a->save_failures < 5 ? a->save_failures : 5;
	int64_t back = (int64_t)GW_LEASE_BACKOFF_MS << sh;
	if (back > GW_LEASE_BACKOFF_MAX_MS)
		back = GW_LEASE_BACKOFF_MAX_MS;
	bool give_up = now - gwi_last_active(a, now) >= GW_LEASE_WAIT_MS || a->leaving;
	for (gw_inv *inv = a->mq_head, *next; inv; inv = next) {
		next = inv->next;
		if (!give_up &&
		    !(inv->deadline_ms && inv->deadline_ms <= now + back + GW_LEASE_MARGIN_MS))
			continue;
		gwi_mq_remove(rt, a, inv);
		inv->not_dispatched = true;
		gwi_finish(dl, inv, GW_EUNAVAIL,
		           "actor %s is active on another member of the cluster (its activation "
		           "lease is held there); retry",
		           a->name);
	}
	if (!a->mq_head || a->leaving) {
		actor_free_locked(gwi_ashard(a), a); /* no epoch was taken: nothing to release */
		return;
	}
	if (a->save_failures < UINT16_MAX)
		a->save_failures++;
	a->idle_t.kind = T_LEASE;
	gw_wheel_arm(&gwi_ashard(a)->wheel, &a->idle_t, now + back);
}

void gwi_lease_retry_locked(gw_runtime *rt, gw_actor *a, done_list *dl)
{
	if (a->forgetting) {
		/* Forgotten while it waited: its calls were answered then. */
		a->st = A_READY;
		forget_soon_locked(a);
		return;
	}
	if (!a->mq_head || a->leaving) {
		for (gw_inv *inv; (inv = gwi_mq_pop(rt, a));) {
			inv->not_dispatched = true;
			gwi_finish(dl, inv, GW_EUNAVAIL,
			           "actor %s moved to another member of the cluster; retry",
			           a->name);
		}
		actor_free_locked(gwi_ashard(a), a);
		return;
	}
	if (gw_persist_activate(rt->persist, a->type->system, a->name, load_done, a) != GW_OK) {
		for (gw_inv *inv; (inv = gwi_mq_pop(rt, a));)
			gwi_finish(dl, inv, GW_ENOMEM, "cannot activate actor %s", a->name);
		actor_free_locked(gwi_ashard(a), a);
	}
}

static void load_done(void *arg, gw_err err, gw_blob *stored, uint64_t revision, uint64_t epoch)
{
	gw_actor *a = arg;
	gw_shard *s = gwi_ashard(a);
	gw_runtime *rt = s->rt;
	done_list dl = {0};
	pthread_mutex_lock(&s->mu);
	if (a->forgetting) {
		/* Forgotten while it loaded: its calls were answered then. */
		gw_blob_rele(stored);
		a->st = A_READY;
		forget_soon_locked(a);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	if (err == GW_EOWNED) {
		/* Another live member holds the actor's lease (cluster mode): no
		 * second activation; wait and try again. */
		lease_wait_locked(rt, a, &dl); /* may free a */
		pthread_mutex_unlock(&s->mu);
		gwi_deliver(&dl);
		return;
	}
	if (err == GW_OK)
		err = gwi_decode_state(a, stored);
	gw_blob_rele(stored);
	if (err == GW_OK || err == GW_ENOTFOUND) {
		if (a->save_failures) { /* the lease waits are over */
			a->save_failures = 0;
			gwi_touch(a, gwi_now_ms());
		}
		a->revision = err == GW_OK ? revision : 0;
		a->epoch = epoch;
		a->st = A_READY;
		for (gw_inv *w = a->mq_head; w; w = w->next)
			if (w->tr.act0_ns && !w->tr.act1_ns)
				w->tr.act1_ns = gw_trace_now_ns();
		gwi_timers_start_locked(rt, a);
		gwi_outbox_redeliver(rt, a, &dl); /* a crash came between commit and delivery */
		gwi_dispatch_locked(rt, a, &dl);
		if (!gwi_leave_try_locked(rt, a))     /* handed off while it loaded */
			idle_if_unused_locked(rt, a); /* the calls that waited may have left */
		pthread_mutex_unlock(&s->mu);
		gwi_deliver(&dl);
		return;
	}
	/* The actor cannot be activated: every waiting call learns why; the next
	 * invocation tries again. Other actors are not affected. */
	GW_WARN("actor %s/%s: activation failed: %s", a->type->system, a->name, gw_strerror(err));
	for (gw_inv *inv; (inv = gwi_mq_pop(rt, a));)
		gwi_finish(&dl, inv, err == GW_ENOTFOUND ? GW_EIO : err,
		           "actor %s could not be activated: %s", a->name, gw_strerror(err));
	actor_free_locked(s, a);
	pthread_mutex_unlock(&s->mu);
	gwi_deliver(&dl);
}

/* ---- dispatch -------------------------------------------------------------- */

void gwi_target_rele(gw_host *t)
{
	if (t)
		gw_target_ops_of(t)->rele(t);
}

static grpc_byte_buffer *build_task(gw_inv *inv, uint64_t req_id)
{
	gw_actor *a = inv->actor;
	Spawn__InvocationRequest *rq = inv->req;
	Spawn__Actors__ActorId self = SPAWN__ACTORS__ACTOR_ID__INIT;
	self.name = a->name;
	self.system = a->type->system;
	if (strcmp(a->name, a->type->name))
		self.parent = a->type->name; /* an instance of an UNNAMED template */
	Google__Protobuf__Any st = GOOGLE__PROTOBUF__ANY__INIT;
	Spawn__Context ctx = SPAWN__CONTEXT__INIT;
	ctx.self = &self;
	ctx.caller = rq->caller;
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	/* The gateway's idempotency key, never one a peer sent (outbox.c). */
	ctx.metadata = (Spawn__Context__MetadataEntry **)gwi_key_metadata(
	    inv, &ar, &ctx.n_metadata); /* same layout */
	/* The host continues the trace from its turn's span (tracing.c). */
	ctx.metadata = (Spawn__Context__MetadataEntry **)gwi_trace_task_md(
	    inv, &ar, (Spawn__InvocationRequest__MetadataEntry **)ctx.metadata, &ctx.n_metadata);
	if (a->state) {
		st.type_url = (char *)gw_blob_type(a->state);
		st.value.data = (uint8_t *)gw_blob_value(a->state);
		st.value.len = a->state->len;
		ctx.state = &st;
	}
	if (gwi_tags(a)) {
		Spawn__Actors__ActorState *t = spawn__actors__actor_state__unpack(
		    &ar.pbc, gwi_tags(a)->len, gw_blob_value(gwi_tags(a)));
		if (t) {
			ctx.n_tags = t->n_tags;
			ctx.tags = (Spawn__Context__TagsEntry **)t->tags; /* same layout */
		}
	}
	Spawn__Noop noop = SPAWN__NOOP__INIT;
	Spawn__ActorInvocation ai = SPAWN__ACTOR_INVOCATION__INIT;
	ai.actor = &self;
	ai.action_name = rq->action_name;
	ai.current_context = &ctx;
	ai.caller = rq->caller;
	if (rq->payload_case == SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE && rq->value) {
		ai.payload_case = SPAWN__ACTOR_INVOCATION__PAYLOAD_VALUE;
		ai.value = rq->value;
	} else {
		ai.payload_case = SPAWN__ACTOR_INVOCATION__PAYLOAD_NOOP;
		ai.noop = &noop;
	}
	Spawn__Gateway__V1__InvocationTask task = SPAWN__GATEWAY__V1__INVOCATION_TASK__INIT;
	task.request_id = req_id;
	task.invocation = &ai;
	/* Always sent: the client's deadline or --host-timeout, the earlier. */
	task.deadline_unix_ms = spawn_wall_ms() + (inv->due_ms - gwi_now_ms());
	Spawn__Gateway__V1__GatewayMessage gm = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__INIT;
	gm.msg_case = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION;
	gm.invocation = &task;
	grpc_byte_buffer *bb = NULL;
	spawn_wire_pack(&gm.base, &bb);
	spawn_arena_fini(&ar);
	return bb;
}

/* restore_loaded: the revision a restore turn asked for was read; it
 * becomes the state and is saved like a checkpoint (invariant 4). */
static void restore_loaded(void *arg, gw_err err, gw_blob *stored, uint64_t revision,
                           uint64_t epoch)
{
	gw_inv *inv = arg;
	gw_actor *a = inv->actor;
	gw_shard *s = gwi_ashard(a);
	gw_runtime *rt = s->rt;
	done_list dl = {0};
	(void)epoch;
	pthread_mutex_lock(&s->mu);
	/* The turn (begun at dispatch) holds the state and tags to go back
	 * to. A restore brings back the state and tags, not the old
	 * revision's outbox, and keeps the keys of the deliveries already
	 * applied. */
	gw_actor_ext *x = a->x; /* not freed while the turn is open (actor_ext.c) */
	gw_blob *old_extra = x ? x->extra : NULL;
	uint32_t old_outbox = gwi_n_outbox(a);
	if (x) {
		gw_blob_rele(x->tags);
		x->tags = x->extra = NULL;
		x->n_outbox = 0;
	}
	gw_blob_rele(a->state);
	a->state = NULL;
	a->state_moved = 1;
	if (err == GW_OK)
		err = gwi_decode_state(a, stored);
	gw_blob_rele(stored);
	if (a->x) {
		gw_blob_rele(a->x->extra);
		a->x->extra = old_extra;
		a->x->n_outbox = old_outbox;
	}
	if (err != GW_OK) {
		gwi_turn_rollback(a);
		gwi_finish(&dl, inv, err, "revision %llu of actor %s: %s",
		           (unsigned long long)inv->restore_rev, a->name,
		           err == GW_ENOTFOUND ? "not kept" : gw_strerror(err));
		gwi_end_turn_locked(rt, a, &dl);
		goto out;
	}
	GW_INFO("actor %s/%s: restoring revision %llu as a new revision", a->type->system, a->name,
	        (unsigned long long)revision);
	a->ckpt = 1;
	a->dirty = 1;
	gwi_snap_disarm(s, a);
	gwi_start_save_locked(rt, a);
	if (!a->in_save) {
		a->ckpt = 0;
		gwi_turn_rollback(a);
		gwi_finish(&dl, inv, GW_EUNAVAIL, "state of actor %s could not be saved", a->name);
		gwi_end_turn_locked(rt, a, &dl);
	}
out:
	pthread_mutex_unlock(&s->mu);
	gwi_deliver(&dl);
}

/* dispatch_locked sends the next invocation of a READY actor to a host,
 * failing the ones that cannot run. */
void gwi_dispatch_locked(gw_runtime *rt, gw_actor *a, done_list *dl)
{
	/* Each invocation's log lines carry its own context, whatever turn led
	 * here: entered per invocation, left before the next and at the end. */
	gwi_log_scope ls;
	bool scoped = false;
	while (!a->leaving && a->st == A_READY && a->mq_head &&
	       (!a->pooled || a->inflight < gwi_pool_max(a))) {
		gw_inv *inv = gwi_mq_pop(rt, a);
		if (scoped)
			gwi_log_leave(&ls);
		gwi_log_enter(&ls, inv);
		scoped = true;
		int64_t now = gwi_now_ms();
		if (inv->deadline_ms && inv->deadline_ms <= now) {
			gwi_finish(dl, inv, GW_ETIMEDOUT,
			           "deadline passed while queued for actor %s", a->name);
			continue;
		}
		if (inv->kind == GW_INV_WAKE) {
			gwi_finish(dl, inv, GW_OK, NULL); /* activated: that was all */
			continue;
		}
		const char *key = a->stateful ? gwi_inv_key(inv) : NULL;
		if (key && gwi_outbox_applied(a, key)) {
			/* A redelivered effect this actor already applied and saved. */
			GW_INFO("actor %s/%s: delivery %s already applied; skipped",
			        a->type->system, a->name, key);
			gwi_finish(dl, inv, GW_OK, NULL);
			continue;
		}
		if (inv->kind == GW_INV_RESTORE) {
			if (gwi_turn_begin(a) != GW_OK) {
				gwi_finish(dl, inv, GW_ENOMEM, "cannot restore actor %s", a->name);
				continue;
			}
			if (gw_persist_read(rt->persist, a->type->system, a->name, inv->restore_rev,
			                    restore_loaded, inv) != GW_OK) {
				gwi_turn_commit(a); /* nothing changed */
				gwi_finish(dl, inv, GW_ENOMEM, "cannot restore actor %s", a->name);
				continue;
			}
			a->st = A_BUSY;
			a->busy = inv;
			gw_wheel_disarm(&gwi_ashard(a)->wheel, &a->idle_t);
			a->deactivating = 0;
			break;
		}
		if (gwi_builtin_get(inv->req->action_name) &&
		    gw_registry_knows_action(rt->reg, a->type, inv->req->action_name) != GW_OK) {
			/* Spawn's built-in state read: the stored state Any as the
			 * reply, in mailbox order, without calling a host. */
			inv->reply = gw_blob_hold(a->state);
			gwi_finish(dl, inv, GW_OK, NULL);
			continue;
		}
		inv->due_ms = now + rt->o.host_timeout_ms;
		if (inv->deadline_ms && inv->deadline_ms < inv->due_ms)
			inv->due_ms = inv->deadline_ms;
		inv->tr.dispatch_ns = gw_trace_now_ns();
		/* A host whose send queue is full (GW_EFULL) is skipped for another
		 * live host of the type, if the round robin finds one. */
		/* The turn's outcome object first: once the task is sent, the
		 * turn must be able to roll back (turn.c). */
		if (!a->pooled && gwi_turn_begin(a) != GW_OK) {
			gwi_finish(dl, inv, GW_ENOMEM, "out of memory dispatching to actor %s",
			           a->name);
			continue;
		}
		gw_err err = GW_EUNAVAIL;
		bool full = false;
		for (int tries = 0; tries < 3 && (err == GW_EUNAVAIL || err == GW_EFULL); tries++) {
			gw_host *h = NULL;
			err = gw_registry_pick(rt->reg, a->type, inv->req->action_name, &h);
			if (err)
				break;
			inv->host = h;
			inv->t_disp_ns = gw_gm_now_ns(rt->gm);
			err = gw_target_ops_of(h)->send(h, inv, build_task);
			full |= err == GW_EFULL;
			if (err) {
				inv->host = NULL;
				gwi_target_rele(h);
			}
		}
		if (err)
			gwi_turn_commit(a); /* nothing was sent: the turn changed nothing */
		if (err && full) {
			gwi_finish(dl, inv, GW_EFULL,
			           "the hosts of actor %s are not reading their tasks: send queue "
			           "full (--host-queue-bytes)",
			           a->name);
			continue;
		}
		if (err == GW_ENOTFOUND) {
			gwi_finish(dl, inv, err, "actor %s has no action '%s'", a->name,
			           inv->req->action_name);
			continue;
		}
		if (err == GW_ETOOBIG) {
			gwi_finish(
			    dl, inv, err,
			    "the invocation of %s with its state exceeds the message size limit",
			    a->name);
			continue;
		}
		if (err == GW_ENOMEM) {
			gwi_finish(dl, inv, err, "out of memory dispatching to actor %s", a->name);
			continue;
		}
		if (err) {
			/* pick or send found no live host: nothing was sent */
			inv->not_dispatched = err == GW_EUNAVAIL;
			gwi_finish(dl, inv, err,
			           "no host serving actor %s action '%s' is connected", a->name,
			           inv->req->action_name);
			continue;
		}
		if (a->pooled) {
			a->inflight++; /* stays READY: more may run beside it */
		} else {
			a->st = A_BUSY;
			a->busy = inv; /* its turn was begun above */
		}
		if (inv->timer < 0)
			gwi_touch(a, now);
		inv->deadline_t.kind = T_DEADLINE;
		gw_wheel_arm(&gwi_ashard(a)->wheel, &inv->deadline_t, inv->due_ms);
		gw_wheel_disarm(&gwi_ashard(a)->wheel, &a->idle_t);
		a->deactivating = 0;
	}
	if (scoped)
		gwi_log_leave(&ls);
}

/* gwi_pooled_end_locked ends one of a POOLED actor's parallel turns. */
void gwi_pooled_end_locked(gw_runtime *rt, gw_actor *a, done_list *dl)
{
	a->inflight--;
	if (a->forgetting) {
		forget_soon_locked(a);
		return;
	}
	if (gwi_leave_try_locked(rt, a))
		return; /* handoff */
	if (!a->inflight && !a->mq_head) {
		gw_actor_settings st = gwi_settings(rt, a);
		a->idle_t.kind = T_IDLE;
		gw_wheel_arm(&gwi_ashard(a)->wheel, &a->idle_t,
		             gwi_last_active(a, gwi_now_ms()) + gwi_idle_ms(rt, &st));
	}
	gwi_dispatch_locked(rt, a, dl);
}

/* gwi_turn_over_locked ends the turn of inv, whatever kind of actor ran it. */
void gwi_turn_over_locked(gw_runtime *rt, gw_actor *a, done_list *dl)
{
	if (a->pooled)
		gwi_pooled_end_locked(rt, a, dl);
	else
		gwi_end_turn_locked(rt, a, dl);
}

/* gwi_end_turn_locked puts a BUSY actor back to READY and re-arms its idle
 * timer. Returns true when it handed a over (a fenced activation dropped,
 * or a handoff's deactivation): a may be freed, the caller must not use it. */
bool gwi_end_turn_locked(gw_runtime *rt, gw_actor *a, done_list *dl)
{
	a->st = A_READY;
	a->busy = NULL;
	gwi_turn_commit(a); /* a rollback closed it already */
	if (a->forgetting) {
		/* The turn in flight is over; what it changed is not kept. */
		a->dirty = 0;
		forget_soon_locked(a);
		return false;
	}
	if (a->fenced) {
		reactivate_locked(rt, a, dl); /* may free a */
		return true;
	}
	if (gwi_leave_try_locked(rt, a))
		return true; /* handoff: the turn in flight was its last here */
	gw_actor_settings st = gwi_settings(rt, a);
	a->idle_t.kind = T_IDLE;
	/* Timer turns do not keep an actor active: idle counts from the last
	 * turn a caller asked for. */
	gw_wheel_arm(&gwi_ashard(a)->wheel, &a->idle_t,
	             gwi_last_active(a, gwi_now_ms()) + gwi_idle_ms(rt, &st));
	if (a->dirty && a->stateful && !a->snap_at &&
	    gwi_snap_arm(gwi_ashard(a), a, gwi_now_ms() + snap_ms(rt, &st)) != GW_OK)
		gwi_start_save_locked(rt, a); /* no room to wait: save now */
	gwi_dispatch_locked(rt, a, dl);
	return false;
}

/* resolve finds the actor type serving rq's actor:
 *   1. an actor registered under that name (NAMED, POOLED);
 *   2. with register_ref (or actor.id.parent) naming an UNNAMED actor: an
 *      instance of that template, created on first use;
 *   3. an instance spawned earlier (Spawn, or a register_ref before).
 * On GW_OK the actor's shard is returned LOCKED (*sp), with *ap the active
 * actor or NULL, *type (a reference the caller releases or gives to a new
 * actor) and *st set. On error nothing is locked or held and msg says why. */
static gw_err resolve(gw_runtime *rt, const Spawn__InvocationRequest *rq, bool need_action,
                      gw_shard **sp, uint32_t *hp, gw_actor_type **type, gw_actor_settings *st,
                      gw_actor **ap, char *msg, size_t n)
{
	const char *system = rq->system && rq->system->name ? rq->system->name : "";
	const char *name =
	    rq->actor && rq->actor->id && rq->actor->id->name ? rq->actor->id->name : "";
	const char *action = rq->action_name ? rq->action_name : "";
	if (!system[0] || !name[0] || (need_action && !action[0])) {
		snprintf(msg, n,
		         need_action ? "system.name, actor.id.name and action_name are required"
		                     : "system.name and actor.id.name are required");
		return GW_EINVAL;
	}
	*type = NULL;
	memset(st, 0, sizeof *st);
	const char *ref = rq->register_ref && rq->register_ref[0] ? rq->register_ref
	                  : rq->actor->id->parent && rq->actor->id->parent[0]
	                      ? rq->actor->id->parent
	                      : NULL;
	if (gw_registry_lookup(rt->reg, system, name, type, st) == GW_OK) {
		if (ref && strcmp(ref, name)) {
			gw_registry_type_rele(*type);
			snprintf(msg, n, "'%s' is a registered actor, not an instance of '%s'",
			         name, ref);
			return GW_EINVAL;
		}
		if (st->kind == SPAWN__ACTORS__KIND__UNNAMED) {
			gw_registry_type_rele(*type);
			snprintf(msg, n,
			         "actor '%s' is UNNAMED: invoke an instance of it (register_ref)",
			         name);
			return GW_EINVAL;
		}
	} else if (ref) {
		bool created = false;
		char qmsg[300];
		gw_err err = gw_runtime_spawn(rt, system, name, ref, &created, qmsg, sizeof qmsg);
		if (created)
			gwi_instance_created(rt, system, name, ref);
		if (err == GW_EFULL) {
			snprintf(msg, n, "%s", qmsg);
			return err;
		}
		if (err == GW_ENOTFOUND) {
			snprintf(msg, n, "actor '%s' not found in system '%s'", ref, system);
			return err;
		}
		if (err) {
			snprintf(msg, n, "cannot make '%s' an instance of '%s': %s", name, ref,
			         err == GW_EINVAL ? "not an UNNAMED actor, or the name is taken"
			                          : gw_strerror(err));
			return err;
		}
		gw_registry_lookup_instance(rt->reg, system, name, type, st);
	} else {
		gw_registry_lookup_instance(rt->reg, system, name, type, st);
	}
	uint32_t h = gwi_hash_key(system, name);
	gw_shard *s = gwi_shard_of(rt, h);
	pthread_mutex_lock(&s->mu);
	gw_actor *a = gwi_table_find(s, h, system, name);
	if (!*type) {
		pthread_mutex_unlock(&s->mu);
		snprintf(msg, n, "actor '%s' not found in system '%s'", name, system);
		return GW_ENOTFOUND;
	}
	if (need_action && gw_registry_knows_action(rt->reg, *type, action) != GW_OK &&
	    !gwi_builtin_get(action)) {
		pthread_mutex_unlock(&s->mu);
		gw_registry_type_rele(*type);
		snprintf(msg, n, "actor %s has no action '%s'", name, action);
		return GW_ENOTFOUND;
	}
	*sp = s;
	*hp = h;
	*ap = a;
	return GW_OK;
}

static gw_err enqueue(gw_runtime *rt, gw_inv *inv);

gw_err gw_runtime_enqueue(gw_runtime *rt, gw_inv *inv)
{
	inv->rt = rt;
	gwi_trace_begin(inv);
	gwi_log_scope ls;
	gwi_log_enter(&ls, inv);
	gw_err err = enqueue(rt, inv);
	gwi_log_leave(&ls);
	return err;
}

static gw_err enqueue(gw_runtime *rt, gw_inv *inv)
{
	done_list dl = {0};
	Spawn__InvocationRequest *rq = inv->req;
	atomic_fetch_add_explicit(&rt->invocations, 1, memory_order_relaxed);
	if (!inv->t_enq_ns)
		inv->t_enq_ns = gw_gm_now_ns(rt->gm);
	gw_shard *s;
	uint32_t h;
	gw_actor_type *type;
	gw_actor_settings st;
	gw_actor *a;
	gw_err err = resolve(rt, rq, inv->kind == GW_INV_CALL, &s, &h, &type, &st, &a, inv->msg,
	                     sizeof inv->msg);
	inv->over_quota = err == GW_EFULL; /* resolve's only EFULL: the instance quota */
	if (err)
		return err;
	if (a)
		gw_registry_type_rele(type); /* a holds its own reference on it */
	if (inv->kind == GW_INV_RESTORE && !st.stateful) {
		pthread_mutex_unlock(&s->mu);
		if (!a)
			gw_registry_type_rele(type);
		snprintf(inv->msg, sizeof inv->msg, "actor %s is not stateful",
		         rq->actor->id->name);
		return GW_EINVAL;
	}
	const char *system = rq->system->name, *name = rq->actor->id->name;
	if (gwi_forgetting_locked(s, system, name)) {
		pthread_mutex_unlock(&s->mu);
		if (!a)
			gw_registry_type_rele(type);
		snprintf(inv->msg, sizeof inv->msg,
		         "actor %s is being forgotten (Admin.Forget); retry once it is done", name);
		inv->not_dispatched = true;
		return GW_EUNAVAIL;
	}
	if (!a) {
		/* The name right after the last member, not after the struct's
		 * tail padding (docs/design/memory.md). */
		size_t nl = strlen(name) + 1;
		a = gw_slab_alloc(&s->slab, offsetof(gw_actor, name) + nl);
		if (!a) {
			pthread_mutex_unlock(&s->mu);
			gw_registry_type_rele(type);
			snprintf(inv->msg, sizeof inv->msg, "cannot activate actor %s", name);
			return GW_ENOMEM;
		}
		memcpy(a->name, name, nl);
		a->hash = h;
		a->type = type; /* the reference resolve took passes to the actor */
		a->stateful = st.stateful;
		a->pooled = st.kind == SPAWN__ACTORS__KIND__POOLED;
		if (a->pooled) {
			gw_actor_ext *x = gwi_ext(a);
			if (!x) {
				gw_slab_free(a);
				pthread_mutex_unlock(&s->mu);
				gw_registry_type_rele(type);
				snprintf(inv->msg, sizeof inv->msg, "cannot activate actor %s",
				         name);
				return GW_ENOMEM;
			}
			x->pool_max =
			    (uint16_t)(st.max_pool_size > 0
			                   ? (st.max_pool_size < 65535 ? st.max_pool_size : 65535)
			                   : rt->o.pool_max);
		}
		gwi_touch(a, gwi_now_ms());
		a->st = a->stateful ? A_LOADING : A_READY;
		if (a->stateful)
			inv->tr.act0_ns = gw_trace_now_ns();
		if (a->stateful &&
		    gw_persist_activate(rt->persist, system, a->name, load_done, a) != GW_OK) {
			gw_slab_free(a);
			pthread_mutex_unlock(&s->mu);
			gw_registry_type_rele(type);
			snprintf(inv->msg, sizeof inv->msg, "cannot activate actor %s", name);
			return GW_ENOMEM;
		}
		/* Published before the shard lock is released, so the load's
		 * callback (which takes the lock) always finds it. */
		if (s->count >= s->nbuckets)
			table_grow(s);
		a->hnext = s->buckets[h & (s->nbuckets - 1)];
		s->buckets[h & (s->nbuckets - 1)] = a;
		s->count++;
		atomic_fetch_add_explicit(&rt->activations, 1, memory_order_relaxed);
		gw_gm_activation(rt->gm, type->system, type->name, true);
		if (!a->stateful)
			gwi_timers_start_locked(rt, a);
	}
	if (a && a->leaving) {
		/* Handed off (handoff.c): a call goes to the new owner (routed
		 * again shortly, when this member's view says so); a timer's turn
		 * or an Admin restore is refused here. */
		pthread_mutex_unlock(&s->mu);
		if (inv->kind == GW_INV_CALL && inv->timer < 0 && rt->router_ops) {
			inv->local = false;
			inv->handoff_retry = true;
			gwi_runtime_retry(rt, inv, GW_HANDOFF_RETRY_MS);
			return GW_OK;
		}
		snprintf(inv->msg, sizeof inv->msg,
		         "actor %s is moving to another member of the cluster; retry", name);
		inv->not_dispatched = true;
		return GW_EUNAVAIL;
	}
	if (inv->cancelled) { /* its caller went away while it was resolved */
		snprintf(inv->msg, sizeof inv->msg, "the caller cancelled the call to actor %s",
		         a->name);
		err = GW_ECANCELLED;
	} else {
		err = gwi_mq_admit(rt, a, inv, inv->msg, sizeof inv->msg);
	}
	if (err) {
		idle_if_unused_locked(rt, a); /* maybe just created for this call */
		pthread_mutex_unlock(&s->mu);
		return err;
	}
	gwi_mq_push(rt, a, inv);
	if (a->st == A_READY)
		gwi_dispatch_locked(rt, a, &dl);
	idle_if_unused_locked(rt, a); /* every call failed: no host, ... */
	pthread_mutex_unlock(&s->mu);
	gwi_deliver(&dl);
	return GW_OK;
}

static void instance_looked_up(void *user, gw_err err)
{
	gw_inv *inv = user;
	if (err == GW_OK) {
		gw_runtime_invoke(inv->rt, inv);
		return;
	}
	done_list dl = {0};
	inv->not_dispatched = err == GW_EUNAVAIL;
	if (err == GW_EUNAVAIL) /* the registration grace after start-up (durable.c) */
		gwi_finish(&dl, inv, err, "no host has registered actor %s in system %s yet; retry",
		           inv->req->actor->id->name, inv->req->system->name);
	else /* inv->msg still says which name was not found (or the quota it is over) */
		gwi_finish(&dl, inv, err == GW_ENOTFOUND && inv->over_quota ? GW_EFULL : err, NULL);
	gwi_deliver(&dl);
}

void gw_runtime_set_metrics(gw_runtime *rt, gw_gm *gm)
{
	rt->gm = gm;
}

void gw_runtime_set_router(gw_runtime *rt, const gw_router_ops *ops, void *r)
{
	rt->router_ops = ops;
	rt->router = r;
}

bool gw_runtime_route(gw_runtime *rt, gw_inv *inv)
{
	inv->rt = rt;
	gwi_trace_begin(inv);
	if (!rt->router_ops || inv->local || inv->kind != GW_INV_CALL || inv->timer >= 0)
		return false;
	if (inv->route_skip) {
		inv->route_skip = false;
		return false;
	}
	return rt->router_ops->route(rt->router, inv);
}

void gw_runtime_invoke_local(gw_runtime *rt, gw_inv *inv)
{
	inv->local = true;
	gw_runtime_invoke(rt, inv);
}

/* wake_is_mine: in a cluster, an actor whose outbox a crash left
 * undelivered is woken by its owner only (docs/design/cluster.md, "Outbox
 * recovery"). Otherwise inv completes here: GW_OK when another member owns
 * it (that member wakes it), GW_EUNAVAIL (the waker retries) when this
 * member has no view yet or its view has not caught up. */
static bool wake_is_mine(gw_runtime *rt, gw_inv *inv)
{
	const gw_router_ops *ops = rt->router_ops;
	if (!ops || ops->version < 2 || !ops->owns)
		return true;
	char owner[256];
	int o = ops->owns(rt->router, inv->req, owner, sizeof owner);
	if (o == GW_OWNS_YES)
		return true;
	const Spawn__InvocationRequest *rq = inv->req;
	done_list dl = {0};
	if (o == GW_OWNS_NO) {
		GW_INFO("effects recovery: actor %s/%s is owned by member %s; left to it",
		        rq->system->name, rq->actor->id->name, owner);
		gwi_finish(&dl, inv, GW_OK, NULL);
	} else {
		inv->not_dispatched = true;
		gwi_finish(&dl, inv, GW_EUNAVAIL,
		           "actor %s/%s: its owner is not known in this member's view yet",
		           rq->system->name, rq->actor->id->name);
	}
	gwi_deliver(&dl);
	return false;
}

void gw_runtime_invoke(gw_runtime *rt, gw_inv *inv)
{
	inv->rt = rt;
	gwi_trace_begin(inv);
	/* A side effect for later is stored where it was made: the scheduler
	 * fires it through here again, and it is routed then. */
	if (!(inv->effect && inv->req->scheduled_to > spawn_wall_ms()) && gw_runtime_route(rt, inv))
		return; /* the router took it */
	if (inv->effect && inv->req->scheduled_to > spawn_wall_ms()) {
		gwi_wf_schedule(rt, inv); /* a side effect for later: the schedule store */
		return;
	}
	if (inv->kind == GW_INV_WAKE && !wake_is_mine(rt, inv))
		return;
	gw_err err = gw_runtime_enqueue(rt, inv);
	if (err == GW_OK)
		return; /* inv belongs to the runtime (it may already be freed) */
	const Spawn__InvocationRequest *rq = inv->req;
	bool by_name = err == GW_ENOTFOUND && !(rq->register_ref && rq->register_ref[0]);
	if ((by_name || (err == GW_EFULL && inv->over_quota)) && !inv->instance_checked &&
	    rq->actor && rq->actor->id) {
		/* Maybe an instance spawned before a restart: ask the statestore. */
		inv->instance_checked = true;
		if (gw_runtime_find_instance(rt, rq->system->name, rq->actor->id->name,
		                             instance_looked_up, inv) == GW_OK)
			return;
	}
	if (err) {
		done_list dl = {0};
		gwi_finish(&dl, inv, err, NULL);
		gwi_deliver(&dl);
	}
}

void gw_runtime_release(gw_runtime *rt, gw_actor *a)
{
	/* a cannot be freed while it holds a turn (BUSY or inflight > 0). */
	gw_shard *s = gwi_ashard(a);
	done_list dl = {0};
	pthread_mutex_lock(&s->mu);
	a->held--;
	gwi_turn_over_locked(rt, a, &dl);
	pthread_mutex_unlock(&s->mu);
	gwi_deliver(&dl);
}

void gw_runtime_abandon(gw_runtime *rt, gw_inv *inv, gw_err err, const char *msg)
{
	gw_actor *a = inv->actor;
	gw_shard *s = gwi_ashard(a);
	done_list dl = {0};
	pthread_mutex_lock(&s->mu);
	inv->tr.result_ns = gw_trace_now_ns();
	gw_wheel_disarm(&s->wheel, &inv->deadline_t);
	gwi_target_rele(inv->host);
	inv->host = NULL;
	gwi_finish(&dl, inv, err, "%s", msg);
	gwi_turn_over_locked(rt, a, &dl);
	pthread_mutex_unlock(&s->mu);
	gwi_deliver(&dl);
}

/* gwi_take_back_locked ends a dispatched inv whose task is pending on its
 * target (its deadline passed, or its caller went away): the target
 * cancels the task; unsent, the actor takes its next turn; written, the
 * turn is HELD (the host may still run it). Returns false when there was
 * nothing to take back (not pending, or its result is being delivered). */
bool gwi_take_back_locked(gw_runtime *rt, gw_inv *inv, gw_err err, const char *msg, done_list *dl)
{
	gw_actor *a = inv->actor;
	if ((!a->pooled && a->busy != inv) || !inv->host)
		return false;
	int c = gw_target_ops_of(inv->host)->cancel(inv->host, inv->req_id, a,
	                                            inv->due_ms + rt->o.host_grace_ms);
	if (c == GW_CANCEL_GONE)
		return false; /* its result is being delivered right now */
	gw_wheel_disarm(&gwi_ashard(a)->wheel, &inv->deadline_t);
	gwi_target_rele(inv->host);
	inv->host = NULL;
	gwi_finish(dl, inv, err, "%s", msg);
	if (c == GW_CANCEL_UNSENT) {
		gwi_turn_over_locked(rt, a, dl);
	} else {
		/* HELD: the host may still run it; no next turn until
		 * gw_runtime_release. A POOLED actor keeps it in inflight. */
		a->held++;
		if (!a->pooled)
			a->busy = NULL; /* st stays A_BUSY */
	}
	return true;
}

void gw_runtime_cancel(gw_runtime *rt, gw_inv *inv)
{
	if (rt->router_ops && rt->router_ops->cancel(rt->router, inv))
		return; /* the router holds it: it ends the forwarded call */
	const Spawn__InvocationRequest *rq = inv->req;
	if (!rq || !rq->system || !rq->system->name || !rq->actor || !rq->actor->id ||
	    !rq->actor->id->name)
		return; /* refused at resolve: it never reaches a shard */
	/* Every state this looks at (in_mq, host, busy, cancelled) changes only
	 * under the shard of the request's actor (resolve hashes the same
	 * names), so this lock orders the cancel with the call's progress. */
	gw_shard *s = gwi_shard_of(rt, gwi_hash_key(rq->system->name, rq->actor->id->name));
	done_list dl = {0};
	pthread_mutex_lock(&s->mu);
	inv->cancelled = true;
	if (inv->in_mq) {
		gwi_mq_cancel_locked(rt, inv, &dl);
	} else if (inv->host && inv->actor) {
		char msg[600];
		snprintf(msg, sizeof msg, "the caller cancelled the call to actor %s",
		         inv->actor->name);
		if (gwi_take_back_locked(rt, inv, GW_ECANCELLED, msg, &dl))
			atomic_fetch_add_explicit(&rt->cancelled, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&s->mu);
	gwi_deliver(&dl);
}
