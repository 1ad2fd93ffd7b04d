/* bounds.c - the gateway-wide bounds the runtime keeps: side effects in
 * flight, and the per-system quotas on UNNAMED instances and stored
 * scheduled invocations (docs/design/actor-lifecycle.md, "Bounds").
 *
 * Effects in flight (effects and broadcast deliveries: submitted, not yet
 * at their final outcome, retries included):
 *
 *   (turn result) --- not durable, room for all ---> IN FLIGHT
 *   (turn result) --- not durable, no room --------> refused: the turn fails
 *                                                    (RESOURCE_EXHAUSTED)
 *   (commit) ------- durable (outbox), room -------> IN FLIGHT
 *   (commit) ------- durable (outbox), no room ----> PARKED (FIFO, in memory;
 *                                                    the entry stays stored)
 *   IN FLIGHT ------ final outcome ----------------> over: the oldest PARKED
 *                                                    one goes IN FLIGHT
 *
 * Invariants: fx_inflight <= max_effects_in_flight, except by what turns
 * admitted at the same moment add (each checked against the bound with the
 * parked ones counted); a parked effect is never dropped: it runs, or at
 * shutdown it stays in its actor's stored outbox.
 *
 * Quotas: counts per system, keyed by a 32-bit hash of the system name
 * (gwi_sys_hash; two systems that collide share a quota, which is harmless).
 * They are read from the store at start-up (gw_runtime_load_quotas: the
 * instance rows per system, the schedule rows per id prefix, which is that
 * hash) and kept in memory: +1 when an instance or schedule is recorded, -1
 * when a schedule row is deleted after its delivery (or its store failed).
 * Instances are never deleted. With several gateways on one store each
 * counts what it recorded since its start: the quotas are per gateway
 * then, measured from a shared start. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime_int.h"
#include "workflow.h"

/* ---- defaults and the checks of a result -------------------------------------- */

void gwi_bounds_defaults(gw_runtime_opts *o)
{
	if (!o->max_effects_per_turn)
		o->max_effects_per_turn = 64;
	if (!o->max_outbox_bytes)
		o->max_outbox_bytes = 1 << 20;
	if (!o->max_effects_in_flight)
		o->max_effects_in_flight = 10000;
	if (!o->max_message_bytes)
		o->max_message_bytes = 4 << 20;
	if (!o->max_state_bytes)
		o->max_state_bytes = o->max_message_bytes > 2 * GW_TASK_RESERVE
		                         ? o->max_message_bytes - GW_TASK_RESERVE
		                         : o->max_message_bytes / 2;
	if (!o->max_instances)
		o->max_instances = 1000000;
	if (!o->max_schedules)
		o->max_schedules = 100000;
	if (o->max_schedule_ahead_ms <= 0)
		o->max_schedule_ahead_ms = 366LL * 24 * 3600 * 1000;
}

/* tags_size is the size of the tags the context of a later task carries. */
static size_t tags_size(const Spawn__Context *uc)
{
	Spawn__Actors__ActorState t = SPAWN__ACTORS__ACTOR_STATE__INIT;
	t.n_tags = uc->n_tags;
	t.tags = (Spawn__Actors__ActorState__TagsEntry **)uc->tags; /* same layout */
	return spawn__actors__actor_state__get_packed_size(&t);
}

/* gwi_result_bounds checks a result against the bounds a turn has (bounds.c,
 * docs/design/actor-lifecycle.md "Bounds"): the state and tags it leaves
 * must fit in a later task, a checkpointed turn's outbox in
 * max_outbox_bytes, and effects that are not stored in the gateway's room
 * for effects in flight. Returns GW_OK, or the error with msg; nothing is
 * changed either way. */
gw_err gwi_result_bounds(gw_runtime *rt, gw_actor *a, const gw_inv *inv,
                         const Spawn__ActorInvocationResponse *r, char *msg, size_t n)
{
	const Spawn__Context *uc = r->updated_context;
	if (!a->pooled && uc) {
		size_t st = uc->state  ? google__protobuf__any__get_packed_size(uc->state)
		            : a->state ? a->state->len + strlen(gw_blob_type(a->state)) + 16
		                       : 0;
		size_t tg = tags_size(uc);
		if (st + tg > rt->o.max_state_bytes) {
			snprintf(msg, n,
			         "actor %s returned a state of %zu bytes with its tags (%zu of "
			         "them tags); at most %zu fit in a later task (--max-message-bytes "
			         "%zu minus %d reserved for payload and metadata): the turn is "
			         "refused, its state unchanged",
			         a->name, st + tg, tg, rt->o.max_state_bytes,
			         rt->o.max_message_bytes, GW_TASK_RESERVE);
			return GW_ETOOBIG;
		}
	}
	size_t nfire = 0, bytes = 0;
	for (const gw_inv *i = inv->wf_fire; i; i = i->next) {
		nfire++;
		/* the entry, its idempotency key and its framing */
		bytes += spawn__invocation_request__get_packed_size(i->req) + 64 +
		         2 * (strlen(a->type->system) + strlen(a->name));
	}
	if (!nfire)
		return GW_OK;
	bool durable = r->checkpoint && a->stateful; /* into the outbox (outbox.c) */
	if (durable) {
		size_t have = gwi_extra(a) ? gwi_extra(a)->len : 0;
		if (have + bytes > rt->o.max_outbox_bytes) {
			snprintf(
			    msg, n,
			    "the outbox of actor %s would hold %zu bytes with this turn's %zu "
			    "effects; at most %zu are allowed (--max-outbox-bytes): the turn is "
			    "refused, its state unchanged",
			    a->name, have + bytes, nfire, rt->o.max_outbox_bytes);
			return GW_ETOOBIG;
		}
		return GW_OK; /* stored: delivery waits for room, never dropped */
	}
	uint32_t used;
	if (!gwi_fx_admit(rt, nfire, &used)) {
		snprintf(
		    msg, n,
		    "%u side effects are in flight in this gateway; the %zu of this turn of "
		    "actor %s would pass the bound of %u (--max-effects-in-flight): the turn is "
		    "refused, its state unchanged",
		    used, nfire, a->name, rt->o.max_effects_in_flight);
		return GW_EFULL;
	}
	return GW_OK;
}

/* ---- effects in flight ------------------------------------------------------ */

bool gwi_fx_admit(gw_runtime *rt, size_t n, uint32_t *inflight)
{
	pthread_mutex_lock(&rt->fxmu);
	uint64_t used = (uint64_t)rt->fx_inflight + rt->fx_parked;
	*inflight = (uint32_t)used;
	pthread_mutex_unlock(&rt->fxmu);
	return used + n <= rt->o.max_effects_in_flight;
}

void gwi_fx_submit(done_list *dl, gw_runtime *rt, gw_inv *inv)
{
	pthread_mutex_lock(&rt->fxmu);
	if (rt->fx_inflight < rt->o.max_effects_in_flight) {
		rt->fx_inflight++;
		pthread_mutex_unlock(&rt->fxmu);
		gwi_spawn_later(dl, rt, inv);
		return;
	}
	inv->rt = rt;
	inv->next = NULL;
	if (rt->fx_park_tail)
		rt->fx_park_tail->next = inv;
	else
		rt->fx_park_head = inv;
	rt->fx_park_tail = inv;
	if (rt->fx_parked++ == 0)
		GW_INFO("%u side effects in flight (--max-effects-in-flight): stored ones wait "
		        "their turn",
		        rt->fx_inflight);
	pthread_mutex_unlock(&rt->fxmu);
}

/* A release started from inside a delivery that another release started
 * on the same thread only counts: the outer loop starts the next ones, so
 * a chain of effects that finish at once never recurses. */
static _Thread_local int fx_releasing;

void gwi_fx_over(gw_runtime *rt)
{
	pthread_mutex_lock(&rt->fxmu);
	if (rt->fx_inflight > 0)
		rt->fx_inflight--;
	pthread_mutex_unlock(&rt->fxmu);
	if (fx_releasing)
		return;
	fx_releasing = 1;
	for (;;) {
		gw_inv *inv = NULL;
		pthread_mutex_lock(&rt->fxmu);
		if (rt->fx_park_head && rt->fx_inflight < rt->o.max_effects_in_flight) {
			inv = rt->fx_park_head;
			rt->fx_park_head = inv->next;
			if (!rt->fx_park_head)
				rt->fx_park_tail = NULL;
			rt->fx_parked--;
			rt->fx_inflight++;
			inv->next = NULL;
		}
		pthread_mutex_unlock(&rt->fxmu);
		if (!inv)
			break;
		gw_runtime_invoke(rt, inv);
	}
	fx_releasing = 0;
}

void gwi_fx_fini(gw_runtime *rt)
{
	size_t n = 0;
	while (rt->fx_park_head) {
		gw_inv *i = rt->fx_park_head;
		rt->fx_park_head = i->next;
		gw_inv_destroy(i);
		n++;
	}
	rt->fx_park_tail = NULL;
	rt->fx_parked = 0;
	if (n)
		GW_WARN("shutdown: %zu side effects waiting for room stay in their actors' "
		        "outboxes: delivered after the restart",
		        n);
}

/* ---- quotas per system ------------------------------------------------------ */

uint32_t gwi_sys_hash(const char *system)
{
	uint32_t h = 2166136261u;
	for (; *system; system++)
		h = (h ^ (uint8_t)*system) * 16777619u;
	return h;
}

/* quota_slot finds (or adds, when add) the count of hash h; NULL when
 * absent or out of memory. Under rt->qmu. */
static uint32_t *quota_slot(gw_quota *q, uint32_t h, bool add)
{
	for (size_t i = 0; i < q->n; i++)
		if (q->v[i].h == h)
			return &q->v[i].n;
	if (!add)
		return NULL;
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		gw_quota_ent *v = realloc(q->v, cap * sizeof *v);
		if (!v)
			return NULL;
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n] = (gw_quota_ent){h, 0};
	return &q->v[q->n++].n;
}

/* quota_take counts one more for system when it stays within max. */
static bool quota_take(gw_runtime *rt, gw_quota *q, const char *system, uint32_t max, uint32_t *now)
{
	pthread_mutex_lock(&rt->qmu);
	uint32_t *c = quota_slot(q, gwi_sys_hash(system), true);
	bool ok = c && *c < max;
	if (ok)
		(*c)++;
	*now = c ? *c : max;
	pthread_mutex_unlock(&rt->qmu);
	return ok;
}

static void quota_give(gw_runtime *rt, gw_quota *q, uint32_t h)
{
	pthread_mutex_lock(&rt->qmu);
	uint32_t *c = quota_slot(q, h, false);
	if (c && *c > 0)
		(*c)--;
	pthread_mutex_unlock(&rt->qmu);
}

uint32_t gw_runtime_quota_count(gw_runtime *rt, const char *system, bool schedules)
{
	pthread_mutex_lock(&rt->qmu);
	uint32_t *c =
	    quota_slot(schedules ? &rt->q_sched : &rt->q_inst, gwi_sys_hash(system), false);
	uint32_t n = c ? *c : 0;
	pthread_mutex_unlock(&rt->qmu);
	return n;
}

uint64_t gw_runtime_quota_total(gw_runtime *rt, bool schedules)
{
	pthread_mutex_lock(&rt->qmu);
	const gw_quota *q = schedules ? &rt->q_sched : &rt->q_inst;
	uint64_t n = 0;
	for (size_t i = 0; i < q->n; i++)
		n += q->v[i].n;
	pthread_mutex_unlock(&rt->qmu);
	return n;
}

gw_err gw_runtime_spawn(gw_runtime *rt, const char *system, const char *name, const char *parent,
                        bool *created, char *msg, size_t n)
{
	bool made = false;
	gw_actor_type *t;
	if (created)
		*created = false;
	/* An instance the registry knows takes nothing from the quota. */
	if (gw_registry_lookup_instance(rt->reg, system, name, &t, NULL) != GW_OK) {
		uint32_t now;
		if (!quota_take(rt, &rt->q_inst, system, rt->o.max_instances, &now)) {
			snprintf(msg, n,
			         "system '%s' has %u UNNAMED instances, its quota "
			         "(--max-instances %u): '%s' not created",
			         system, now, rt->o.max_instances, name);
			return GW_EFULL;
		}
		gw_err err = gw_registry_spawn(rt->reg, system, name, parent, &made);
		if (err || !made)
			quota_give(rt, &rt->q_inst, gwi_sys_hash(system));
		if (created)
			*created = made;
		return err;
	}
	gw_registry_type_rele(t); /* only its existence mattered */
	return gw_registry_spawn(rt->reg, system, name, parent, created);
}

gw_err gw_runtime_schedule_id(gw_runtime *rt, const char *system, int64_t due_ms, const char *rest,
                              char id[40], char *msg, size_t n)
{
	int64_t now = spawn_wall_ms();
	if (due_ms > now && due_ms - now > rt->o.max_schedule_ahead_ms) {
		snprintf(msg, n,
		         "scheduled_to is %lld ms ahead; at most %lld ms are allowed "
		         "(--max-schedule-ahead)",
		         (long long)(due_ms - now), (long long)rt->o.max_schedule_ahead_ms);
		return GW_EINVAL;
	}
	uint32_t count;
	if (!quota_take(rt, &rt->q_sched, system, rt->o.max_schedules, &count)) {
		snprintf(msg, n,
		         "system '%s' has %u stored scheduled invocations, its quota "
		         "(--max-schedules %u)",
		         system, count, rt->o.max_schedules);
		return GW_EFULL;
	}
	snprintf(id, 40, "%08" PRIx32 ".%.30s", gwi_sys_hash(system), rest);
	return GW_OK;
}

void gw_runtime_schedule_gone(gw_runtime *rt, const char *id)
{
	uint32_t h;
	if (gwi_sched_id_hash(id, &h))
		quota_give(rt, &rt->q_sched, h);
}

void gwi_sched_quota_give(gw_runtime *rt, const char *system)
{
	quota_give(rt, &rt->q_sched, gwi_sys_hash(system));
}

void gwi_inst_quota_give(gw_runtime *rt, const char *system)
{
	quota_give(rt, &rt->q_inst, gwi_sys_hash(system));
}

bool gwi_sched_id_hash(const char *id, uint32_t *h)
{
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		char c = id[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint32_t)d;
	}
	if (id[8] != '.')
		return false; /* a row stored before ids carried the system */
	*h = v;
	return true;
}

static void add_instances(void *user, const char *system, uint64_t n)
{
	gw_runtime *rt = user;
	pthread_mutex_lock(&rt->qmu);
	uint32_t *c = quota_slot(&rt->q_inst, gwi_sys_hash(system), true);
	if (c)
		*c += n > UINT32_MAX - *c ? UINT32_MAX - *c : (uint32_t)n;
	pthread_mutex_unlock(&rt->qmu);
}

static void add_schedules(void *user, const char *prefix, uint64_t n)
{
	gw_runtime *rt = user;
	uint32_t h;
	char p[10];
	snprintf(p, sizeof p, "%s", prefix);
	if (!gwi_sched_id_hash(p, &h))
		return;
	pthread_mutex_lock(&rt->qmu);
	uint32_t *c = quota_slot(&rt->q_sched, h, true);
	if (c)
		*c += n > UINT32_MAX - *c ? UINT32_MAX - *c : (uint32_t)n;
	pthread_mutex_unlock(&rt->qmu);
}

typedef struct quota_load {
	gw_runtime *rt;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	gw_err err;
} quota_load;

/* count_all runs on the persist thread (the only one using the store). */
static void count_all(void *arg, gw_store *store)
{
	quota_load *q = arg;
	gw_err err = gw_store_instance_counts(store, add_instances, q->rt);
	if (err == GW_OK)
		err = gw_store_schedule_counts(store, 9, add_schedules, q->rt);
	pthread_mutex_lock(&q->mu);
	q->err = err;
	q->done = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

gw_err gw_runtime_load_quotas(gw_runtime *rt)
{
	quota_load q = {.rt = rt};
	pthread_mutex_init(&q.mu, NULL);
	pthread_cond_init(&q.cv, NULL);
	gw_err err = gw_persist_call(rt->persist, count_all, &q);
	pthread_mutex_lock(&q.mu);
	while (!err && !q.done)
		pthread_cond_wait(&q.cv, &q.mu);
	pthread_mutex_unlock(&q.mu);
	pthread_mutex_destroy(&q.mu);
	pthread_cond_destroy(&q.cv);
	return err ? err : q.err;
}

void gwi_quotas_fini(gw_runtime *rt)
{
	free(rt->q_inst.v);
	free(rt->q_sched.v);
	memset(&rt->q_inst, 0, sizeof rt->q_inst);
	memset(&rt->q_sched, 0, sizeof rt->q_sched);
}
