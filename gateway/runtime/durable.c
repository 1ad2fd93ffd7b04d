/* durable.c - what the runtime keeps in the statestore besides states:
 * the existence of UNNAMED instances and scheduled invocations.
 *
 * Instances: an instance created by Spawn or by a register_ref is recorded
 * (gw_persist_instance_put); after a restart, an invocation of a name the
 * registry does not know is looked up there before it is refused.
 *
 * Scheduled invocations (InvocationRequest.scheduled_to, epoch ms): stored
 * when accepted (the caller is answered once the row is durable), claimed
 * by the persist thread when due (overdue ones right after start-up) and
 * run as async invocations. Delivery lifecycle of one row:
 *
 *   stored --- due, claimed (lease) --> in flight [id in rt->sched_inflight]
 *   in flight -- ran (any outcome but "retry later") --> deleting
 *   deleting --- the delete ran (persist thread) --> gone [id leaves the set]
 *   in flight -- no host / actor unknown yet / busy --> retried in memory
 *                (backoff, up to 30 times), then released from the set: the
 *                row is claimed again when its lease expires
 *
 * A row this gateway has in flight is never delivered again by it, even if
 * its lease expires and the claim returns it once more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime_int.h"
#include "workflow.h"

/* ---- instances ------------------------------------------------------------ */

typedef struct find_ctx {
	gw_runtime *rt;
	void (*cb)(void *user, gw_err err);
	void *user;
	char *system, *name; /* owned, one allocation */
} find_ctx;

static bool in_registration_grace(gw_runtime *rt)
{
	return rt->o.registration_grace_ms > 0 &&
	       gwi_now_ms() - rt->start_ms < rt->o.registration_grace_ms;
}

/* row_checked: during the registration grace, a stored row makes an
 * unregistered name UNAVAILABLE (its host has not re-registered yet). */
static void row_checked(void *arg, gw_err err, gw_blob *stored, uint64_t revision, uint64_t epoch)
{
	find_ctx *f = arg;
	(void)revision;
	(void)epoch;
	gw_blob_rele(stored);
	f->cb(f->user, err == GW_OK ? GW_EUNAVAIL : GW_ENOTFOUND);
	free(f);
}

static void found(void *arg, gw_err err, const char *parent)
{
	find_ctx *f = arg;
	bool recorded = err == GW_OK;
	if (err == GW_OK)
		err = gw_registry_spawn(f->rt->reg, f->system, f->name, parent, NULL);
	/* ENOTFOUND from the registry here: the template is not registered
	 * (yet): the caller learns NOT_FOUND, and a later call finds it. Within
	 * the registration grace after start-up it learns UNAVAILABLE instead:
	 * the store knows the name, its host has not come back yet. */
	gw_actor_type *t;
	if (err == GW_ENOTFOUND &&
	    gw_registry_lookup(f->rt->reg, f->system, f->name, &t, NULL) == GW_OK) {
		/* A host registered the name since the caller's lookup missed it
		 * (it re-registers while we looked): the caller runs the call
		 * again, once (instance_checked). */
		gw_registry_type_rele(t);
		err = GW_OK;
	} else if (err == GW_ENOTFOUND && in_registration_grace(f->rt)) {
		if (recorded)
			err = GW_EUNAVAIL;
		else if (gw_persist_read(f->rt->persist, f->system, f->name, 0, row_checked, f) ==
		         GW_OK)
			return; /* we are on the persist thread: the read runs after this job */
	}
	f->cb(f->user, err);
	free(f);
}

gw_err gw_runtime_find_instance(gw_runtime *rt, const char *system, const char *name,
                                void (*cb)(void *user, gw_err err), void *user)
{
	size_t ls = strlen(system) + 1, ln = strlen(name) + 1;
	find_ctx *f = malloc(sizeof *f + ls + ln);
	if (!f)
		return GW_ENOMEM;
	f->rt = rt;
	f->cb = cb;
	f->user = user;
	f->system = (char *)(f + 1);
	f->name = f->system + ls;
	memcpy(f->system, system, ls);
	memcpy(f->name, name, ln);
	if (gw_persist_instance_get(rt->persist, system, name, found, f) != GW_OK) {
		free(f);
		return GW_ENOMEM;
	}
	return GW_OK;
}

void gwi_instance_created(gw_runtime *rt, const char *system, const char *name, const char *parent)
{
	if (gw_persist_instance_put(rt->persist, system, name, parent, NULL, NULL) != GW_OK)
		GW_ERROR("instance %s/%s of %s: out of memory recording it", system, name, parent);
}

/* ---- scheduled invocations ------------------------------------------------------ */

/* The ids of the rows this gateway is delivering: a hash set, O(1) per add
 * and remove however many are in flight (100,000 rows due at once). */
static bool inflight_add(gw_runtime *rt, const char *id)
{
	pthread_mutex_lock(&rt->smu);
	/* GW_ECONFLICT: already ours; GW_ENOMEM: the row waits for its lease. */
	gw_err e = gw_idset_add(&rt->sched_inflight, id);
	pthread_mutex_unlock(&rt->smu);
	return e == GW_OK;
}

static void inflight_remove(gw_runtime *rt, const char *id)
{
	pthread_mutex_lock(&rt->smu);
	gw_idset_remove(&rt->sched_inflight, id);
	pthread_mutex_unlock(&rt->smu);
}

/* sched_deleted: the delivered row's delete ran (persist thread). */
static void sched_deleted(void *arg, gw_err err)
{
	gw_inv *inv = arg;
	/* logged by persist.c; a row not deleted returns after its lease */
	if (err == GW_OK)
		gw_runtime_schedule_gone(inv->rt, inv->user);
	inflight_remove(inv->rt, inv->user);
	gw_inv_destroy(inv);
}

/* A stored scheduled invocation may name no actor (a host's side effect
 * scheduled for later): log lines must not assume one. */
static const char *target_name(const Spawn__InvocationRequest *rq)
{
	return rq->actor && rq->actor->id && rq->actor->id->name ? rq->actor->id->name
	                                                         : "(no actor)";
}

static void sched_done(gw_inv *inv)
{
	gw_runtime *rt = inv->rt;
	const char *id = inv->user;
	bool later = inv->err == GW_EUNAVAIL || inv->err == GW_ENOTFOUND ||
	             inv->err == GW_ETIMEDOUT || inv->err == GW_EFULL || inv->err == GW_EFENCED ||
	             inv->err == GW_ENOMEM || inv->err == GW_ESHUTDOWN;
	const Spawn__InvocationRequest *rq = inv->req;
	if (later && inv->retries < 30) {
		/* Typically right after a restart: hosts have not registered yet.
		 * Try again soon, still holding the row (and its id) in memory. */
		int64_t delay = 100LL << (inv->retries < 4 ? inv->retries : 4);
		GW_INFO("scheduled invocation %s (%s.%s) not delivered yet: %s; retry in %lld ms",
		        id, target_name(rq), rq->action_name,
		        inv->msg[0] ? inv->msg : gw_strerror(inv->err), (long long)delay);
		inv->retries++;
		gwi_runtime_retry(rt, inv, delay);
		return;
	}
	if (later) {
		GW_WARN("scheduled invocation %s (%s.%s) not delivered: %s; it runs again when "
		        "its lease expires",
		        id, target_name(rq), rq->action_name,
		        inv->msg[0] ? inv->msg : gw_strerror(inv->err));
	} else {
		if (inv->err)
			GW_WARN("scheduled invocation %s (%s.%s) failed: %s", id, target_name(rq),
			        rq->action_name, inv->msg[0] ? inv->msg : gw_strerror(inv->err));
		/* The id stays in flight until the row is deleted (persist.c):
		 * a claim pass meanwhile that returns the row skips it. */
		if (gw_persist_schedule_done(rt->persist, id, sched_deleted, inv) == GW_OK)
			return;
		GW_ERROR("scheduled invocation %s: out of memory deleting it", id);
	}
	inflight_remove(rt, id);
	gw_inv_destroy(inv);
}

/* sched_deliver runs on the persist thread for every claimed row. */
static void sched_deliver(void *user, const char *id, const uint8_t *data, size_t len)
{
	gw_runtime *rt = user;
	if (!inflight_add(rt, id))
		return; /* already being delivered by us */
	gw_inv *inv = gw_inv_create(0);
	char *idc = inv ? spawn_arena_strdup(&inv->arena, id) : NULL;
	uint8_t *buf = idc ? spawn_arena_memdup(&inv->arena, data, len) : NULL;
	if (inv && buf)
		inv->req = spawn__invocation_request__unpack(&inv->arena.pbc, len, buf);
	if (!inv || !inv->req) {
		GW_ERROR("scheduled invocation %s: %s; left for an operator", id,
		         inv && buf ? "not a valid InvocationRequest" : "out of memory");
		if (inv && buf && gw_persist_schedule_done(rt->persist, id, NULL, NULL) == GW_OK)
			gw_runtime_schedule_gone(rt, id); /* never parses: dropped */
		inflight_remove(rt, id);
		gw_inv_destroy(inv);
		return;
	}
	/* A side effect this gateway stored for later carries its key, and its
	 * row id derives from that key (after the system hash, "%08x."); a key in any other row (a
	 * client's scheduled call) is not ours and is not taken. */
	const char *k = gwi_legacy_key(inv->req);
	char want[31];
	if (k && gwi_effect_id(k, want) && strlen(id) > 9 && id[8] == '.' && !strcmp(want, id + 9))
		inv->idem_key = (char *)k; /* in inv's arena */
	inv->req->scheduled_to = 0;
	inv->req->async = true;
	inv->user = idc;
	inv->done = sched_done;
	inv->tr.name = "scheduled invocation"; /* its trace: the one stored with it */
	gw_runtime_invoke(rt, inv);
}

void gw_runtime_start_scheduler(gw_runtime *rt, const char *owner, int64_t lease_ms)
{
	gw_persist_set_scheduler(rt->persist, sched_deliver, rt, owner, lease_ms);
}
