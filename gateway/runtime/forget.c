/* forget.c - Admin.Forget: erase an actor completely (gw_runtime_forget).
 *
 * One Forget of (system, name):
 *
 *   START [shard lock] --- a Forget of it in progress -------------> refused (ECONFLICT)
 *   START --- the key joins the shard's forgets: from now on every
 *             invocation of it is refused, UNAVAILABLE "being forgotten"
 *   START --- not active ---------------------------------------> ERASING
 *   START --- active: forgetting = 1; its mailbox is answered
 *             (ABORTED), its timers stop, its dirty state and
 *             outbox are dropped; quiescent -----------------------> ERASING [actor freed]
 *   WAITING (a turn, a held turn, a save or its activation in flight)
 *           -- each of those ends: idle timer at once (runtime.c)
 *           -- fire: quiescent ---------------------------------> ERASING [actor freed]
 *   ERASING [persist thread, bulk class] gw_store_forget: latest row and
 *           outbox, history, instance record, the schedules that target
 *           it, in one transaction; the epoch is bumped
 *           -- done: the key leaves the forgets, the instance leaves the
 *              registry, quotas are given back, fn runs ----------> (done)
 *
 * Invariants:
 *   1. Nothing of the actor is saved once Forget started: a forgetting
 *      actor never starts a save (gwi_start_save_locked); a save already
 *      in flight completes (or is fenced) before the actor is freed, and
 *      the erase is queued only after that, so no queued save can follow
 *      the erase and write the actor back.
 *   2. Between START and the end of ERASING no activation of the actor
 *      starts on this gateway (its invocations are refused), so no load can
 *      read a row the erase is about to delete.
 *   3. The erase bumps the actor's activation epoch (the drivers' forget),
 *      so an activation on another gateway of the cluster that predates
 *      it is fenced at its next save instead of writing the actor back.
 *   4. A turn in flight when Forget starts finishes and its caller gets its
 *      answer (a checkpointed turn: UNAVAILABLE, its state could not be
 *      saved); what it changed is never kept.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime_int.h"

struct gw_forget {
	gw_runtime *rt;
	gw_shard *s;
	uint32_t h;
	char *system, *name; /* owned, one allocation with the struct */
	gw_forget_fn fn;
	void *user;
	bool was_active;
	uint64_t aborted; /* queued calls answered ABORTED */
	gw_err err;
	gw_forget_counts counts;
	struct gw_forget *next; /* the shard's list */
};

/* find_locked: the Forget of (system, name) in progress, or NULL (at most
 * one: a second one is refused). The actor keeps no pointer to it. */
static struct gw_forget *find_locked(gw_shard *s, const char *system, const char *name)
{
	for (struct gw_forget *f = s->forgets; f; f = f->next)
		if (!strcmp(f->name, name) && !strcmp(f->system, system))
			return f;
	return NULL;
}

bool gwi_forgetting_locked(gw_shard *s, const char *system, const char *name)
{
	return find_locked(s, system, name) != NULL;
}

/* match_target: whether a stored scheduled invocation (a serialized
 * spawn.InvocationRequest) targets f's actor. */
static bool match_target(void *user, const uint8_t *data, size_t len)
{
	struct gw_forget *f = user;
	Spawn__InvocationRequest *rq = spawn__invocation_request__unpack(NULL, len, data);
	if (!rq)
		return false;
	const char *sys = rq->system && rq->system->name ? rq->system->name : "";
	const char *name =
	    rq->actor && rq->actor->id && rq->actor->id->name ? rq->actor->id->name : "";
	bool hit = !strcmp(sys, f->system) && !strcmp(name, f->name);
	spawn__invocation_request__free_unpacked(rq, NULL);
	return hit;
}

static void finish(struct gw_forget *f)
{
	gw_runtime *rt = f->rt;
	pthread_mutex_lock(&f->s->mu);
	for (struct gw_forget **pp = &f->s->forgets; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	pthread_mutex_unlock(&f->s->mu);
	if (f->err == GW_OK) {
		/* An instance must be spawned again; its quota slot is free. */
		if (gw_registry_unspawn(rt->reg, f->system, f->name) == GW_OK || f->counts.instance)
			gwi_inst_quota_give(rt, f->system);
		for (uint64_t i = 0; i < f->counts.schedules; i++)
			gwi_sched_quota_give(rt, f->system);
		GW_INFO("actor %s/%s forgotten (%s, %" PRIu64
		        " queued calls aborted): state %" PRIu64 ", history %" PRIu64
		        ", instance %" PRIu64 ", schedules %" PRIu64 ", outbox %" PRIu64,
		        f->system, f->name, f->was_active ? "was active" : "not active", f->aborted,
		        f->counts.state, f->counts.history, f->counts.instance, f->counts.schedules,
		        f->counts.outbox);
	} else {
		GW_WARN("actor %s/%s: Forget failed: %s", f->system, f->name, gw_strerror(f->err));
	}
	f->fn(f->user, f->err, &f->counts, f->was_active, f->aborted);
	free(f);
}

static void erase(void *arg, gw_store *store)
{
	struct gw_forget *f = arg;
	char prefix[16];
	snprintf(prefix, sizeof prefix, "%08" PRIx32 ".", gwi_sys_hash(f->system));
	gw_actor_key k = {f->system, f->name};
	f->err = gw_store_forget(store, &k, prefix, match_target, f, &f->counts);
	finish(f);
}

/* start_erase queues the erase of f. Out of memory: f completes with
 * GW_ENOMEM at once (fn then runs under the shard lock). */
static void start_erase(struct gw_forget *f)
{
	if (gw_persist_call(f->rt->persist, erase, f) == GW_OK)
		return;
	f->err = GW_ENOMEM;
	for (struct gw_forget **pp = &f->s->forgets; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	f->fn(f->user, f->err, &f->counts, f->was_active, f->aborted);
	free(f);
}

void gwi_forget_fini(gw_shard *s)
{
	while (s->forgets) {
		struct gw_forget *f = s->forgets;
		s->forgets = f->next;
		f->fn(f->user, GW_ESHUTDOWN, &f->counts, f->was_active, f->aborted);
		free(f);
	}
}

bool gwi_forget_try_locked(gw_runtime *rt, gw_actor *a)
{
	(void)rt;
	if (a->st != A_READY || a->busy || a->inflight || a->held || a->in_save)
		return false;
	struct gw_forget *f = find_locked(gwi_ashard(a), a->type->system, a->name);
	gwi_actor_free_locked(gwi_ashard(a), a);
	start_erase(f);
	return true;
}

/* begin_locked makes the active actor a forgetting: see the note above. */
static void begin_locked(gw_runtime *rt, gw_actor *a, struct gw_forget *f, done_list *dl)
{
	gw_shard *s = gwi_ashard(a);
	a->forgetting = 1; /* f is on s->forgets under a's name */
	a->deactivating = 1;
	for (gw_inv *inv; (inv = gwi_mq_pop(rt, a));) {
		f->aborted += inv->timer < 0; /* calls; a timer's turn is not one */
		gwi_finish(dl, inv, GW_ECONFLICT,
		           "actor %s was forgotten (Admin.Forget) before this call ran", a->name);
	}
	gw_wheel_disarm(&s->wheel, &a->idle_t);
	gwi_snap_disarm(s, a);
	if (gwi_timers(a))
		gw_wheel_disarm(&s->wheel, &gwi_timers(a)->t);
	a->dirty = 0;
	a->resave = 0;
	/* The outbox goes with the stored row; acks of deliveries in flight
	 * find nothing to remove (as after a fenced activation). */
	gwi_set_extra(a, NULL, 0);
}

gw_err gw_runtime_forget(gw_runtime *rt, const char *system, const char *name, gw_forget_fn fn,
                         void *user)
{
	if (!rt || !system || !system[0] || !name || !name[0] || !fn)
		return GW_EINVAL;
	size_t ls = strlen(system) + 1, ln = strlen(name) + 1;
	struct gw_forget *f = calloc(1, sizeof *f + ls + ln);
	if (!f)
		return GW_ENOMEM;
	f->rt = rt;
	f->fn = fn;
	f->user = user;
	f->system = (char *)(f + 1);
	f->name = f->system + ls;
	memcpy(f->system, system, ls);
	memcpy(f->name, name, ln);
	f->h = gwi_hash_key(system, name);
	f->s = gwi_shard_of(rt, f->h);
	gw_shard *s = f->s;
	done_list dl = {0};
	pthread_mutex_lock(&s->mu);
	if (gwi_forgetting_locked(s, system, name)) {
		pthread_mutex_unlock(&s->mu);
		free(f);
		return GW_ECONFLICT;
	}
	f->next = s->forgets;
	s->forgets = f;
	gw_actor *a = gwi_table_find(s, f->h, system, name);
	if (a) {
		f->was_active = true;
		begin_locked(rt, a, f, &dl);
		gwi_forget_try_locked(rt, a); /* else when what is in flight ends */
	} else {
		start_erase(f);
	}
	pthread_mutex_unlock(&s->mu);
	gwi_deliver(&dl);
	return GW_OK;
}
