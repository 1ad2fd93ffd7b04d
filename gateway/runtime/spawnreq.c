/* spawnreq.c - a SpawnRequest, whichever front received it (the gRPC
 * ActorGateway.Spawn, Spawn's HTTP route): gw_runtime_spawn_request
 * (runtime.h).
 *
 * One request, counted by `pending` (1 while the loop queues work, +1 per
 * store write or restore turn in flight):
 *
 *   CHECKING --- no actors, an id without name/system/parent --> answered (EINVAL)
 *   QUEUING ---- per id: gw_runtime_spawn
 *                  new instance ------------> +1 instance put (store)
 *                  over the quota ----------> +1 look-up (one stored before a
 *                                              restart is fine, else EFULL)
 *                  other error -------------> answered now (the error); the
 *                                              work queued still finishes
 *                  revision > 0 ------------> +1 restore turn
 *   WAITING ---- pending reaches 0 ---------> answered (OK, or the first error)
 *
 * `done` runs exactly once: at the first refusal, or when the last piece
 * of work ends; the request is freed when pending reaches 0.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "persist.h"
#include "runtime.h"

typedef struct spawn_req {
	gw_runtime *rt;
	gw_spawn_done_fn done; /* NULL once called */
	void *user;
	pthread_mutex_t mu;
	size_t pending;
	gw_err err;
	char msg[300]; /* with err GW_EFULL: the quota's message */
} spawn_req;

/* answer_locked takes done out of x for the caller to run (NULL when it
 * already ran). */
static gw_spawn_done_fn answer_locked(spawn_req *x)
{
	gw_spawn_done_fn fn = x->done;
	x->done = NULL;
	return fn;
}

static void work_done(void *arg, gw_err err)
{
	spawn_req *x = arg;
	pthread_mutex_lock(&x->mu);
	if (err && !x->err)
		x->err = err;
	bool last = --x->pending == 0;
	gw_spawn_done_fn fn = last ? answer_locked(x) : NULL;
	pthread_mutex_unlock(&x->mu);
	if (!last)
		return;
	if (fn) {
		const char *m = !x->err                           ? NULL
		                : x->err == GW_EFULL && x->msg[0] ? x->msg
		                : x->err == GW_ENOTFOUND ? "the requested revision is not kept"
		                                         : "the instances could not be recorded or "
		                                           "restored";
		fn(x->user, x->err, m);
	}
	pthread_mutex_destroy(&x->mu);
	free(x);
}

/* known: an instance over the quota was looked up in the store: one
 * recorded before a restart is fine (now registered), else the quota
 * refuses it. */
static void known(void *arg, gw_err err)
{
	work_done(arg, err == GW_ENOTFOUND ? GW_EFULL : err);
}

static void restore_done(gw_inv *inv)
{
	spawn_req *x = inv->user;
	if (inv->err)
		GW_WARN("Spawn: restoring %s to revision %llu failed: %s",
		        inv->req->actor->id->name, (unsigned long long)inv->restore_rev,
		        inv->msg[0] ? inv->msg : gw_strerror(inv->err));
	gw_err err = inv->err;
	gw_inv_destroy(inv);
	work_done(x, err);
}

/* restore runs a restore turn (as Admin.Restore does) for one instance. */
static void restore(spawn_req *x, const char *system, const char *name, uint64_t revision)
{
	gw_inv *inv = gw_inv_create(0);
	spawn_arena *a = inv ? &inv->arena : NULL;
	Spawn__InvocationRequest *iq = a ? spawn_arena_alloc(a, sizeof *iq) : NULL;
	Spawn__Actors__ActorSystem *sys = iq ? spawn_arena_alloc(a, sizeof *sys) : NULL;
	Spawn__Actors__Actor *act = sys ? spawn_arena_alloc(a, sizeof *act) : NULL;
	Spawn__Actors__ActorId *id = act ? spawn_arena_alloc(a, sizeof *id) : NULL;
	if (!id) {
		gw_inv_destroy(inv);
		work_done(x, GW_ENOMEM);
		return;
	}
	spawn__invocation_request__init(iq);
	spawn__actors__actor_system__init(sys);
	spawn__actors__actor__init(act);
	spawn__actors__actor_id__init(id);
	sys->name = spawn_arena_strdup(a, system);
	id->name = spawn_arena_strdup(a, name);
	id->system = sys->name;
	act->id = id;
	iq->system = sys;
	iq->actor = act;
	inv->req = iq;
	inv->kind = GW_INV_RESTORE;
	inv->restore_rev = revision;
	inv->done = restore_done;
	inv->user = x;
	gw_runtime_invoke(x->rt, inv);
}

/* more adds one piece of work in flight. */
static void more(spawn_req *x)
{
	pthread_mutex_lock(&x->mu);
	x->pending++;
	pthread_mutex_unlock(&x->mu);
}

void gw_runtime_spawn_request(gw_runtime *rt, Spawn__Actors__ActorId *const *ids, size_t n,
                              uint64_t revision, gw_spawn_done_fn done, void *user)
{
	char msg[512] = "";
	gw_err bad = GW_OK;
	if (n == 0) {
		bad = GW_EINVAL;
		snprintf(msg, sizeof msg, "SpawnRequest names no actors");
	}
	for (size_t i = 0; i < n && !bad; i++) {
		const Spawn__Actors__ActorId *id = ids[i];
		if (!id || !id->name || !id->name[0] || !id->system || !id->system[0] ||
		    !id->parent || !id->parent[0]) {
			bad = GW_EINVAL;
			snprintf(msg, sizeof msg,
			         "actors[%zu]: name, system and parent are required", i);
		}
	}
	spawn_req *x = bad ? NULL : calloc(1, sizeof *x);
	if (!x) {
		done(user, bad ? bad : GW_ENOMEM, bad ? msg : "out of memory");
		return;
	}
	x->rt = rt;
	x->done = done;
	x->user = user;
	pthread_mutex_init(&x->mu, NULL);
	x->pending = 1; /* held until every piece of work is queued */
	gw_persist *p = gw_runtime_persist(rt);
	for (size_t i = 0; i < n && !bad; i++) {
		const Spawn__Actors__ActorId *id = ids[i];
		bool created = false;
		char qmsg[300];
		gw_err err = gw_runtime_spawn(rt, id->system, id->name, id->parent, &created, qmsg,
		                              sizeof qmsg);
		if (err == GW_EFULL) {
			/* Over the quota, unless the store has it from before a
			 * restart (the registry learns of those on first use). */
			pthread_mutex_lock(&x->mu);
			x->pending++;
			if (!x->msg[0])
				snprintf(x->msg, sizeof x->msg, "actors[%zu]: %.250s", i, qmsg);
			pthread_mutex_unlock(&x->mu);
			if (gw_runtime_find_instance(rt, id->system, id->name, known, x) != GW_OK)
				work_done(x, GW_ENOMEM);
			continue;
		}
		if (err) {
			bad = err;
			snprintf(msg, sizeof msg, "actors[%zu] '%s': %s", i, id->name,
			         err == GW_ENOTFOUND ? "no such parent actor in that system"
			         : err == GW_EINVAL  ? "parent is not UNNAMED, or the name is taken"
			                             : gw_strerror(err));
			break;
		}
		if (created) {
			more(x);
			if (gw_persist_instance_put(p, id->system, id->name, id->parent, work_done,
			                            x) != GW_OK)
				work_done(x, GW_ENOMEM);
		}
		if (revision > 0) {
			more(x);
			restore(x, id->system, id->name, revision);
		}
	}
	if (bad) {
		/* Refused: the work already queued still finishes; the answer is
		 * the error, now. */
		pthread_mutex_lock(&x->mu);
		gw_spawn_done_fn fn = answer_locked(x);
		pthread_mutex_unlock(&x->mu);
		if (fn)
			fn(user, bad, msg);
	}
	work_done(x, GW_OK);
}
