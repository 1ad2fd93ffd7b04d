/* lifecycle.c - the runtime as a whole: create, the two phases of
 * shutdown (gw_runtime_stop, then gw_runtime_destroy), flush, statistics
 * and fault injection for crash tests. Moved out of runtime.c unchanged;
 * the actor logic it drives (deliver, saves, the timer thread's loop)
 * stays there. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "condwait.h"
#include "runtime.h"
#include "runtime_int.h"
#include "workflow.h"

/* ---- fault injection (crash tests) --------------------------------------- */

int gwi_fault = GW_FAULT_NONE;

static const char *const fault_names[] = {
    [GW_FAULT_OUTBOX_COMMIT] = "exit-after-outbox-commit",
    [GW_FAULT_OUTBOX_ACK] = "exit-after-outbox-ack",
};

static void fault_arm(void)
{
	const char *e = getenv("SPAWN_FAULT");
	gwi_fault = GW_FAULT_NONE;
	if (!e || !*e)
		return;
	for (int i = 1; i < (int)(sizeof fault_names / sizeof *fault_names); i++)
		if (!strcmp(e, fault_names[i]))
			gwi_fault = i;
	if (gwi_fault)
		GW_WARN("SPAWN_FAULT=%s: this process exits with code %d at that point (crash "
		        "tests only)",
		        e, GW_FAULT_EXIT);
	else
		GW_WARN("SPAWN_FAULT=%s names no fault point; ignored", e);
}

void gwi_fault_hit(int point, const char *where)
{
	if (gwi_fault != point)
		return;
	GW_WARN("SPAWN_FAULT=%s: %s: exiting now", fault_names[point], where);
	_exit(GW_FAULT_EXIT); /* like a crash: no flush, no goodbye to hosts */
}

gw_err gw_runtime_create(gw_runtime **out, const gw_runtime_opts *opts, gw_registry *registry,
                         gw_persist *persist)
{
	gw_runtime *rt = calloc(1, sizeof *rt);
	if (!rt)
		return GW_ENOMEM;
	fault_arm();
	rt->o = *opts;
	if (!rt->o.shards)
		rt->o.shards = 16;
	if (!rt->o.mailbox_max)
		rt->o.mailbox_max = 10000;
	if (!rt->o.mailbox_bytes)
		rt->o.mailbox_bytes = (size_t)64 << 20;
	if (rt->o.mailbox_bytes > UINT32_MAX)
		rt->o.mailbox_bytes = UINT32_MAX; /* an actor counts its bytes in 32 bits */
	if (!rt->o.queued_bytes)
		rt->o.queued_bytes = (size_t)1 << 30;
	if (rt->o.deactivate_ms <= 0)
		rt->o.deactivate_ms = 60000;
	if (rt->o.snapshot_ms <= 0)
		rt->o.snapshot_ms = 2000;
	if (rt->o.host_timeout_ms <= 0)
		rt->o.host_timeout_ms = 30000;
	if (rt->o.host_grace_ms <= 0)
		rt->o.host_grace_ms = 5000;
	if (!rt->o.pool_max)
		rt->o.pool_max = 16;
	gwi_bounds_defaults(&rt->o);
	rt->reg = registry;
	rt->persist = persist;
	rt->nshards = rt->o.shards;
	rt->shards = calloc(rt->nshards, sizeof *rt->shards);
	if (!rt->shards)
		goto fail;
	int64_t now = gwi_now_ms();
	rt->start_ms = now;
	for (size_t i = 0; i < rt->nshards; i++) {
		gw_shard *s = &rt->shards[i];
		pthread_mutex_init(&s->mu, NULL);
		s->nbuckets = 1024;
		s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
		if (!s->buckets)
			goto fail;
		gw_wheel_init(&s->wheel, now);
		gw_slab_init(&s->slab);
		s->rt = rt;
	}
	pthread_mutex_init(&rt->tmu, NULL);
	/* The timer thread waits on the monotonic clock (gwi_timer_main). */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->tcv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&rt->fmu, NULL);
	pthread_cond_init(&rt->fcv, NULL);
	pthread_mutex_init(&rt->rmu, NULL);
	pthread_mutex_init(&rt->smu, NULL);
	pthread_mutex_init(&rt->fxmu, NULL);
	pthread_mutex_init(&rt->qmu, NULL);
	gw_idset_init(&rt->sched_inflight);
	if (pthread_create(&rt->timer, NULL, gwi_timer_main, rt))
		goto fail;
	*out = rt;
	return GW_OK;
fail:
	if (rt->shards)
		for (size_t i = 0; i < rt->nshards; i++)
			free(rt->shards[i].buckets);
	free(rt->shards);
	free(rt);
	return GW_ENOMEM;
}

static void timer_stop(gw_runtime *rt)
{
	if (rt->timer_joined)
		return;
	pthread_mutex_lock(&rt->tmu);
	rt->stopping = true;
	pthread_cond_signal(&rt->tcv);
	pthread_mutex_unlock(&rt->tmu);
	pthread_join(rt->timer, NULL);
	rt->timer_joined = true;
}

void gw_runtime_stop(gw_runtime *rt)
{
	gw_persist_stop_scheduler(rt->persist);
	timer_stop(rt);
}

size_t gw_runtime_fail_queued(gw_runtime *rt)
{
	size_t n = 0;
	timer_stop(rt); /* nothing routes a retry again from here on */
	for (size_t i = 0; i < rt->nshards; i++) {
		gw_shard *s = &rt->shards[i];
		done_list dl = {0};
		pthread_mutex_lock(&s->mu);
		for (size_t b = 0; b < s->nbuckets; b++)
			for (gw_actor *a = s->buckets[b]; a; a = a->hnext)
				for (gw_inv *inv; (inv = gwi_mq_pop(rt, a));) {
					inv->not_dispatched = true;
					gwi_finish(&dl, inv, GW_ESHUTDOWN, "gateway shutting down");
					n++;
				}
		pthread_mutex_unlock(&s->mu);
		gwi_deliver(&dl);
	}
	done_list dl = {0};
	pthread_mutex_lock(&rt->rmu);
	for (gw_inv **pp = &rt->retry; *pp;) {
		gw_inv *inv = *pp;
		if (!inv->handoff_retry) {
			pp = &inv->next;
			continue;
		}
		*pp = inv->next;
		inv->next = NULL;
		inv->not_dispatched = true;
		gwi_finish(&dl, inv, GW_ESHUTDOWN, "gateway shutting down");
		n++;
	}
	pthread_mutex_unlock(&rt->rmu);
	gwi_deliver(&dl);
	return n;
}

void gw_runtime_destroy(gw_runtime *rt)
{
	if (!rt)
		return;
	timer_stop(rt); /* the persist may be gone already: only the timers */
	for (size_t i = 0; i < rt->nshards; i++) {
		gw_shard *s = &rt->shards[i];
		done_list dl = {0};
		pthread_mutex_lock(&s->mu);
		for (size_t b = 0; b < s->nbuckets; b++) {
			gw_actor *a = s->buckets[b];
			while (a) {
				gw_actor *n = a->hnext;
				for (gw_inv *inv; (inv = gwi_mq_pop(rt, a));)
					gwi_finish(&dl, inv, GW_ESHUTDOWN, "gateway shutting down");
				gw_blob_rele(a->state);
				gwi_turn_commit(a);
				gwi_ext_free(a);
				gw_registry_type_rele(a->type);
				gw_slab_free(a);
				a = n;
			}
		}
		pthread_mutex_unlock(&s->mu);
		gwi_deliver(&dl);
		gwi_forget_fini(s);
		gwi_turn_free_all(s);
		gwi_snap_fini(s);
		gw_slab_fini(&s->slab);
		pthread_mutex_destroy(&s->mu);
		free(s->buckets);
	}
	free(rt->shards);
	pthread_mutex_destroy(&rt->tmu);
	pthread_cond_destroy(&rt->tcv);
	pthread_mutex_destroy(&rt->fmu);
	pthread_cond_destroy(&rt->fcv);
	while (rt->retry) {
		gw_inv *n = rt->retry->next;
		const gw_inv *r = rt->retry;
		/* A stored side effect may name no actor (found by the fuzz targets). */
		const char *to = r->req->actor && r->req->actor->id && r->req->actor->id->name
		                     ? r->req->actor->id->name
		                     : "(no actor)",
		           *action = r->req->action_name;
		if (r->outbox_src)
			GW_WARN(
			    "shutdown: side effect %s.%s (retry %d) stays in the outbox of %s/%s: "
			    "delivered after the restart",
			    to, action, r->retries, r->outbox_src,
			    r->outbox_src + strlen(r->outbox_src) + 1);
		else if (r->kind == GW_INV_WAKE)
			GW_INFO("shutdown: %s not activated for its undelivered effects: after the "
			        "restart",
			        to);
		else if (r->done == gwi_wf_fire_done)
			GW_ERROR(
			    "shutdown: side effect or broadcast %s.%s dropped after %d retries", to,
			    action, r->retries);
		else
			GW_WARN("shutdown: scheduled invocation %s.%s (retry %d) not delivered: it "
			        "runs after the restart, when its lease expires",
			        to, action, r->retries);
		gw_inv_destroy(rt->retry);
		rt->retry = n;
	}
	pthread_mutex_destroy(&rt->rmu);
	pthread_mutex_destroy(&rt->smu);
	gwi_fx_fini(rt);
	gwi_quotas_fini(rt);
	pthread_mutex_destroy(&rt->fxmu);
	pthread_mutex_destroy(&rt->qmu);
	gw_idset_fini(&rt->sched_inflight);
	free(rt);
}

gw_err gw_runtime_flush(gw_runtime *rt, int64_t timeout_ms)
{
	int64_t end = gwi_now_ms() + timeout_ms;
	for (;;) {
		size_t dirty = 0;
		for (size_t i = 0; i < rt->nshards; i++) {
			gw_shard *s = &rt->shards[i];
			pthread_mutex_lock(&s->mu);
			for (size_t b = 0; b < s->nbuckets; b++)
				for (gw_actor *a = s->buckets[b]; a; a = a->hnext)
					if (a->dirty && a->stateful) {
						dirty++;
						gwi_start_save_locked(rt, a);
					}
			pthread_mutex_unlock(&s->mu);
		}
		pthread_mutex_lock(&rt->fmu);
		while (rt->saves_in_flight > 0 && gwi_now_ms() < end) {
			gw_cond_wait_ms(&rt->fcv, &rt->fmu, 50);
		}
		gw_err last = rt->last_save_err;
		long inflight = rt->saves_in_flight;
		pthread_mutex_unlock(&rt->fmu);
		if (!dirty && !inflight)
			return GW_OK;
		if (gwi_now_ms() >= end)
			return last ? last : GW_ETIMEDOUT;
	}
}

gw_persist *gw_runtime_persist(gw_runtime *rt)
{
	return rt->persist;
}

void gw_runtime_get_stats(gw_runtime *rt, gw_runtime_stats *out)
{
	uint64_t n = 0;
	for (size_t i = 0; i < rt->nshards; i++) {
		pthread_mutex_lock(&rt->shards[i].mu);
		n += rt->shards[i].count;
		pthread_mutex_unlock(&rt->shards[i].mu);
	}
	out->active_actors = n;
	out->invocations = atomic_load(&rt->invocations);
	out->activations = atomic_load(&rt->activations);
	out->deactivations = atomic_load(&rt->deactivations);
	out->queued_bytes = atomic_load(&rt->queued_bytes);
	out->queued_refused = atomic_load(&rt->queued_refused);
	out->queued_expired = atomic_load(&rt->queued_expired);
	out->cancelled = atomic_load(&rt->cancelled);
	pthread_mutex_lock(&rt->fxmu);
	out->effects_in_flight = rt->fx_inflight;
	out->effects_parked = rt->fx_parked;
	pthread_mutex_unlock(&rt->fxmu);
}
