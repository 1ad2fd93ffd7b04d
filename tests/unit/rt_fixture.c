/* rt_fixture.c - see rt_fixture.h. */
#include "rt_fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

char dir[64], url[128];
gw_store *store;
gw_persist *persist;
gw_registry *reg;
gw_runtime *rt;
gw_host host;

pthread_mutex_t omu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t ocv = PTHREAD_COND_INITIALIZER;
outcome outs[RTF_MAX_OUTS];
size_t nouts;

void rtf_open(const char *tag)
{
	snprintf(dir, sizeof dir, "/tmp/spawn-%s-XXXXXX", tag);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(url, sizeof url, "sqlite://%s/state.db", dir);
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&store, url, &so), GW_OK);
	gw_persist_opts po = {.max_batch = 64};
	ck_assert_int_eq(gw_persist_create(&persist, store, &po), GW_OK);
	fake_host_init(&host);
	nouts = 0;
}

void rtf_close(void)
{
	/* Two phases, as the gateway stops: no callback reaches a freed actor. */
	if (rt)
		gw_runtime_stop(rt);
	ck_assert(gw_persist_drain(persist, 10000));
	gw_persist_stop(persist);
	if (rt)
		gw_runtime_destroy(rt);
	rt = NULL;
	gw_persist_destroy(persist);
	persist = NULL;
	if (reg)
		gw_registry_destroy(reg);
	reg = NULL;
	gw_store_close(store);
	store = NULL;
	fake_host_free(&host);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

int64_t decode_i64(const uint8_t *p, size_t n)
{
	int64_t v = 0;
	if (n == 8)
		memcpy(&v, p, 8);
	return n == 8 ? v : -1;
}

void on_done(gw_inv *inv)
{
	pthread_mutex_lock(&omu);
	ck_assert_uint_lt(nouts, RTF_MAX_OUTS);
	outcome *o = &outs[nouts++];
	o->err = inv->err;
	o->host_code = inv->host_code;
	snprintf(o->msg, sizeof o->msg, "%s", inv->msg);
	o->reply = inv->reply ? decode_i64(gw_blob_value(inv->reply), inv->reply->len) : -1;
	o->tag = (int)(intptr_t)inv->user;
	o->not_dispatched = inv->not_dispatched;
	o->at_ms = spawn_now_ns() / 1000000;
	pthread_cond_broadcast(&ocv);
	pthread_mutex_unlock(&omu);
	gw_inv_destroy(inv);
}

bool wait_outs(size_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&omu);
	while (nouts < n)
		if (pthread_cond_timedwait(&ocv, &omu, &ts))
			break;
	bool ok = nouts >= n;
	pthread_mutex_unlock(&omu);
	return ok;
}

size_t outs_count(void)
{
	pthread_mutex_lock(&omu);
	size_t n = nouts;
	pthread_mutex_unlock(&omu);
	return n;
}

gw_err rtf_register(gw_host *h, const char *system, const rtf_actor *actors, size_t n,
                    const char *const actions[], char *why, size_t whylen)
{
	size_t nacts = 0;
	while (actions[nacts])
		nacts++;
	Spawn__Actors__Action *act = calloc(nacts ? nacts : 1, sizeof *act);
	Spawn__Actors__Action **acts = calloc(nacts ? nacts : 1, sizeof *acts);
	Spawn__Actors__ActorId *ids = calloc(n ? n : 1, sizeof *ids);
	Spawn__Actors__Actor *as = calloc(n ? n : 1, sizeof *as);
	Spawn__Actors__Registry__ActorsEntry *es = calloc(n ? n : 1, sizeof *es);
	Spawn__Actors__Registry__ActorsEntry **ep = calloc(n ? n : 1, sizeof *ep);
	ck_assert(act && acts && ids && as && es && ep);
	for (size_t k = 0; k < nacts; k++) {
		spawn__actors__action__init(&act[k]);
		act[k].name = (char *)actions[k];
		acts[k] = &act[k];
	}
	for (size_t i = 0; i < n; i++) {
		spawn__actors__actor_id__init(&ids[i]);
		ids[i].name = (char *)actors[i].name;
		ids[i].system = (char *)system;
		spawn__actors__actor__init(&as[i]);
		as[i].id = &ids[i];
		as[i].settings = (Spawn__Actors__ActorSettings *)actors[i].settings;
		as[i].n_actions = nacts;
		as[i].actions = acts;
		spawn__actors__registry__actors_entry__init(&es[i]);
		es[i].key = (char *)actors[i].name;
		es[i].value = &as[i];
		ep[i] = &es[i];
	}
	Spawn__Actors__Registry r = SPAWN__ACTORS__REGISTRY__INIT;
	r.n_actors = n;
	r.actors = ep;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = (char *)system;
	sys.registry = &r;
	gw_err err = gw_registry_register(reg, h, &sys, why, whylen);
	free(ep);
	free(es);
	free(as);
	free(ids);
	free(acts);
	free(act);
	return err;
}

Spawn__InvocationRequest *rtf_request(spawn_arena *a, const char *system, const char *actor,
                                      const char *action)
{
	Spawn__InvocationRequest *rq = spawn_arena_alloc(a, sizeof *rq);
	spawn__invocation_request__init(rq);
	rq->system = spawn_arena_alloc(a, sizeof *rq->system);
	spawn__actors__actor_system__init(rq->system);
	rq->system->name = spawn_arena_strdup(a, system);
	rq->actor = spawn_arena_alloc(a, sizeof *rq->actor);
	spawn__actors__actor__init(rq->actor);
	rq->actor->id = spawn_arena_alloc(a, sizeof *rq->actor->id);
	spawn__actors__actor_id__init(rq->actor->id);
	rq->actor->id->name = spawn_arena_strdup(a, actor);
	rq->action_name = spawn_arena_strdup(a, action);
	return rq;
}

gw_inv *rtf_take(gw_host *h, size_t i, uint64_t *id)
{
	pthread_mutex_lock(&h->mu);
	ck_assert(!h->tasks[i].answered);
	h->tasks[i].answered = true;
	gw_inv *inv = h->tasks[i].inv;
	*id = h->tasks[i].id;
	pthread_mutex_unlock(&h->mu);
	return inv;
}

void rtf_respond(gw_inv *inv, uint64_t id, Spawn__ActorInvocationResponse *r)
{
	Spawn__Gateway__V1__InvocationResult res = SPAWN__GATEWAY__V1__INVOCATION_RESULT__INIT;
	res.request_id = id;
	res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE;
	res.response = r;
	gw_runtime_result(rt, inv, &res);
}

Suite *rtf_suite(const char *name, const rtf_case *cases, size_t n, void (*setup)(void),
                 void (*teardown)(void))
{
	Suite *s = suite_create(name);
	for (size_t i = 0; i < n; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 30);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int rtf_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
