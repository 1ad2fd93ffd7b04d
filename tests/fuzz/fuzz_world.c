/* fuzz_world.c - see fuzz_world.h. */
#include "fuzz_world.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static fw_world world;
static bool built;

/* The invocation fw_run / fw_task_for_result waits for. */
static bool fw_done;
static gw_err fw_err;

static size_t take_task_locked(gw_host *h);
static bool any_unanswered_locked(gw_host *h);
static struct timespec deadline_in(int64_t ms);

static void die(const char *what)
{
	fprintf(stderr, "fuzz_world: %s\n", what);
	abort();
}

static void on_done(gw_inv *inv)
{
	fw_world *w = &world;
	pthread_mutex_lock(&w->host.mu);
	fw_done = true;
	fw_err = inv->err;
	pthread_cond_broadcast(&w->host.cv);
	pthread_mutex_unlock(&w->host.mu);
	gw_inv_destroy(inv);
}

static void register_system(fw_world *w)
{
	Spawn__Actors__Action add = SPAWN__ACTORS__ACTION__INIT, get = SPAWN__ACTORS__ACTION__INIT;
	add.name = "Add";
	get.name = "Get";
	Spawn__Actors__Action *acts[] = {&add, &get};
	Spawn__Actors__ActorSettings named = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	named.kind = SPAWN__ACTORS__KIND__NAMED;
	named.stateful = true;
	named.state_type = FW_STATE;
	Spawn__Actors__ActorSettings unnamed = named;
	unnamed.kind = SPAWN__ACTORS__KIND__UNNAMED;
	Spawn__Actors__ActorSettings stateless = named;
	stateless.stateful = false;
	stateless.state_type = NULL;
	static const char *names[] = {"counter", "counters", "echo"};
	Spawn__Actors__ActorSettings *settings[] = {&named, &unnamed, &stateless};
	Spawn__Actors__ActorId ids[3];
	Spawn__Actors__Actor actors[3];
	Spawn__Actors__Registry__ActorsEntry entries[3], *ep[3];
	for (size_t i = 0; i < 3; i++) {
		spawn__actors__actor_id__init(&ids[i]);
		ids[i].name = (char *)names[i];
		ids[i].system = FW_SYSTEM;
		spawn__actors__actor__init(&actors[i]);
		actors[i].id = &ids[i];
		actors[i].settings = settings[i];
		actors[i].n_actions = 2;
		actors[i].actions = acts;
		spawn__actors__registry__actors_entry__init(&entries[i]);
		entries[i].key = (char *)names[i];
		entries[i].value = &actors[i];
		ep[i] = &entries[i];
	}
	Spawn__Actors__Registry r = SPAWN__ACTORS__REGISTRY__INIT;
	r.n_actors = 3;
	r.actors = ep;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = FW_SYSTEM;
	sys.registry = &r;
	char why[256] = "";
	if (gw_registry_register(w->reg, &w->host, &sys, why, sizeof why) != GW_OK)
		die(why[0] ? why : "registration refused");
}

/* answer_all answers every unanswered task; returns how many. */
static size_t answer_all(fw_world *w)
{
	size_t n = 0;
	for (;;) {
		pthread_mutex_lock(&w->host.mu);
		size_t i = take_task_locked(&w->host);
		gw_inv *inv = i != SIZE_MAX ? w->host.tasks[i].inv : NULL;
		uint64_t id = i != SIZE_MAX ? w->host.tasks[i].id : 0;
		pthread_mutex_unlock(&w->host.mu);
		if (!inv)
			return n;
		fw_canned c;
		fw_canned_result(&c, id);
		gw_runtime_result(w->rt, inv, &c.res);
		n++;
	}
}

/* fw_destroy runs at exit: the runtime's and the persist thread's work
 * must end before the process tears down what they use. Side effects of
 * the last inputs may still be running (retries, checkpoints): answer and
 * flush until three rounds in a row find nothing to do (at most ~5 s).
 * The runtime is destroyed before persist, in the gateway's own order (see
 * tests/tsan.supp: issue 9 item 6). */
static void fw_destroy(void)
{
	fw_world *w = &world;
	if (!built)
		return;
	for (int quiet = 0, round = 0; quiet < 3 && round < 25; round++) {
		size_t n = answer_all(w);
		bool flushed = gw_runtime_flush(w->rt, 200) == GW_OK;
		quiet = n == 0 && flushed ? quiet + 1 : 0;
		if (quiet) {
			/* Nothing answered, nothing to save: give delayed retries
			 * a chance to come back (a bounded wait on the host's
			 * task signal, not a guess). */
			struct timespec end = deadline_in(200);
			pthread_mutex_lock(&w->host.mu);
			if (!any_unanswered_locked(&w->host))
				pthread_cond_timedwait(&w->host.cv, &w->host.mu, &end);
			pthread_mutex_unlock(&w->host.mu);
		}
	}
	gw_runtime_destroy(w->rt);
	gw_persist_destroy(w->persist);
	gw_registry_destroy(w->reg);
	gw_store_close(w->store);
	fake_host_free(&w->host);
	fake_host_free(&w->other);
	built = false;
}

fw_world *fw_get(void)
{
	fw_world *w = &world;
	if (built)
		return w;
	/* Refused inputs are logged by the gateway; the fuzzer needs no lines. */
	gw_log_set_level(GW_LOG_ERROR + 1);
	gw_store_opts so = {.keys = FW_KEY};
	if (gw_store_open(&w->store, "sqlite::memory:", &so) != GW_OK)
		die("store");
	gw_persist_opts po = {.max_batch = 64};
	if (gw_persist_create(&w->persist, w->store, &po) != GW_OK)
		die("persist");
	if (gw_registry_create(&w->reg, NULL) != GW_OK)
		die("registry");
	fake_host_init(&w->host);
	fake_host_init(&w->other);
	register_system(w);
	gw_runtime_opts ro = {.shards = 4, .mailbox_max = 64, .host_timeout_ms = 60000};
	if (gw_runtime_create(&w->rt, &ro, w->reg, w->persist) != GW_OK)
		die("runtime");
	built = true;
	atexit(fw_destroy);
	return w;
}

void fw_canned_result(fw_canned *c, uint64_t id)
{
	memset(c, 0, sizeof *c);
	c->v = 7;
	google__protobuf__any__init(&c->st);
	google__protobuf__any__init(&c->rp);
	c->st.type_url = FW_STATE;
	c->st.value.data = (uint8_t *)&c->v;
	c->st.value.len = sizeof c->v;
	c->rp.type_url = "type.googleapis.com/fz.Total";
	c->rp.value.data = (uint8_t *)&c->v;
	c->rp.value.len = sizeof c->v;
	spawn__context__init(&c->ctx);
	c->ctx.state = &c->st;
	spawn__actor_invocation_response__init(&c->r);
	c->r.updated_context = &c->ctx;
	c->r.payload_case = SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_VALUE;
	c->r.value = &c->rp;
	spawn__gateway__v1__invocation_result__init(&c->res);
	c->res.request_id = id;
	c->res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE;
	c->res.response = &c->r;
}

/* take_task marks the first unanswered task of h answered and returns its
 * index, or SIZE_MAX. Called with h->mu held. */
static size_t take_task_locked(gw_host *h)
{
	for (size_t i = 0; i < h->ntasks; i++)
		if (!h->tasks[i].answered) {
			h->tasks[i].answered = true;
			return i;
		}
	return SIZE_MAX;
}

static bool any_unanswered_locked(gw_host *h)
{
	for (size_t i = 0; i < h->ntasks; i++)
		if (!h->tasks[i].answered)
			return true;
	return false;
}

static struct timespec deadline_in(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* pump answers tasks until fw_done (want_task: until a task arrives,
 * returning its index without answering it; SIZE_MAX when the invocation
 * finished without one). */
static size_t pump(fw_world *w, bool want_task)
{
	struct timespec end = deadline_in(FW_WAIT_MS);
	pthread_mutex_lock(&w->host.mu);
	for (;;) {
		if (fw_done && (!want_task || !any_unanswered_locked(&w->host)))
			break;
		size_t i = take_task_locked(&w->host);
		if (i != SIZE_MAX) {
			if (want_task) {
				pthread_mutex_unlock(&w->host.mu);
				return i;
			}
			gw_inv *inv = w->host.tasks[i].inv;
			uint64_t id = w->host.tasks[i].id;
			pthread_mutex_unlock(&w->host.mu);
			fw_canned c;
			fw_canned_result(&c, id);
			gw_runtime_result(w->rt, inv, &c.res);
			pthread_mutex_lock(&w->host.mu);
			continue;
		}
		if (pthread_cond_timedwait(&w->host.cv, &w->host.mu, &end) == ETIMEDOUT)
			die("an invocation did not complete in time");
	}
	pthread_mutex_unlock(&w->host.mu);
	return SIZE_MAX;
}

gw_err fw_run(fw_world *w, gw_inv *inv, bool enqueue)
{
	pthread_mutex_lock(&w->host.mu);
	fw_done = false;
	fw_err = GW_OK;
	pthread_mutex_unlock(&w->host.mu);
	inv->done = on_done;
	inv->user = NULL;
	if (enqueue) {
		gw_err e = gw_runtime_enqueue(w->rt, inv);
		if (e != GW_OK) {
			gw_inv_destroy(inv);
			return e;
		}
	} else {
		gw_runtime_invoke(w->rt, inv);
	}
	pump(w, false);
	return fw_err;
}

size_t fw_task_for_result(fw_world *w)
{
	gw_inv *inv = gw_inv_create(0);
	if (!inv)
		die("out of memory");
	spawn_arena *a = &inv->arena;
	Spawn__InvocationRequest *rq = spawn_arena_alloc(a, sizeof *rq);
	Spawn__Actors__ActorSystem *sys = spawn_arena_alloc(a, sizeof *sys);
	Spawn__Actors__Actor *act = spawn_arena_alloc(a, sizeof *act);
	Spawn__Actors__ActorId *id = spawn_arena_alloc(a, sizeof *id);
	if (!rq || !sys || !act || !id)
		die("out of memory");
	spawn__invocation_request__init(rq);
	spawn__actors__actor_system__init(sys);
	spawn__actors__actor__init(act);
	spawn__actors__actor_id__init(id);
	sys->name = FW_SYSTEM;
	id->name = "counter";
	id->system = FW_SYSTEM;
	act->id = id;
	rq->system = sys;
	rq->actor = act;
	rq->action_name = "Add";
	inv->req = rq;
	inv->done = on_done;
	pthread_mutex_lock(&w->host.mu);
	fw_done = false;
	fw_err = GW_OK;
	pthread_mutex_unlock(&w->host.mu);
	gw_runtime_invoke(w->rt, inv);
	return pump(w, true);
}

void fw_finish(fw_world *w)
{
	pump(w, false);
}

static void reset_host(gw_host *h)
{
	pthread_mutex_lock(&h->mu);
	bool idle = true;
	for (size_t i = 0; i < h->ntasks; i++)
		idle = idle && h->tasks[i].answered;
	if (idle) {
		for (size_t i = 0; i < h->ntasks; i++)
			if (h->tasks[i].msg)
				spawn__gateway__v1__gateway_message__free_unpacked(h->tasks[i].msg,
				                                                   NULL);
		h->ntasks = 0;
	}
	pthread_mutex_unlock(&h->mu);
}

void fw_quiesce(fw_world *w)
{
	/* Tasks of side effects that are still arriving are answered by the
	 * next input's pump; only a table with every task answered is
	 * emptied. */
	answer_all(w);
	reset_host(&w->host);
	reset_host(&w->other);
}
