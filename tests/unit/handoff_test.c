/* handoff_test.c - the runtime in cluster mode against a fake router and a
 * fake host: a call the router takes never activates its actor here, and
 * an actor the view moves away (gw_runtime_rebalance) finishes its turn in
 * flight, takes no new one, hands its queued calls back to the router in
 * their order and deactivates; a call that reaches it meanwhile is routed
 * again. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_fixture.h"

#define SYS "handoff-system"

static gw_runtime_opts ropts;

/* ---- the fake router: actors named in `remote` are owned elsewhere ----------- */

static pthread_mutex_t fmu = PTHREAD_MUTEX_INITIALIZER;
static char remote[8][32];
static int nremote;
static gw_inv *taken[64];
static int ntaken;

static bool is_remote(const char *name)
{
	for (int i = 0; i < nremote; i++)
		if (!strcmp(remote[i], name))
			return true;
	return false;
}

static bool fr_route(void *r, gw_inv *inv)
{
	(void)r;
	pthread_mutex_lock(&fmu);
	bool take = is_remote(inv->req->actor->id->name);
	if (take)
		taken[ntaken++] = inv; /* "forwarded": the test completes it */
	pthread_mutex_unlock(&fmu);
	return take;
}

static bool fr_cancel(void *r, gw_inv *inv)
{
	(void)r;
	(void)inv;
	return false;
}

static const gw_router_ops fake_router = {
    .version = GW_ROUTER_OPS_VERSION, .route = fr_route, .cancel = fr_cancel};

static bool fr_mine(void *user, const char *system, const char *type, const char *name)
{
	(void)user;
	(void)system;
	(void)type;
	pthread_mutex_lock(&fmu);
	bool m = !is_remote(name);
	pthread_mutex_unlock(&fmu);
	return m;
}

static void set_remote(const char *name)
{
	pthread_mutex_lock(&fmu);
	snprintf(remote[nremote++], sizeof remote[0], "%s", name);
	pthread_mutex_unlock(&fmu);
}

static int ntaken_now(void)
{
	pthread_mutex_lock(&fmu);
	int n = ntaken;
	pthread_mutex_unlock(&fmu);
	return n;
}

/* complete_taken answers taken call i as its owner would: OK, no payload. */
static void complete_taken(int i)
{
	pthread_mutex_lock(&fmu);
	gw_inv *inv = taken[i];
	pthread_mutex_unlock(&fmu);
	inv->err = GW_OK;
	inv->done(inv);
}

/* ---- fixture ------------------------------------------------------------------- */

static void setup(void)
{
	rtf_open("handoff");
	memset(&ropts, 0, sizeof ropts);
	ropts.shards = 4;
	ropts.host_timeout_ms = 60000;
	nremote = ntaken = 0;
	ck_assert_int_eq(gw_registry_create(&reg, NULL), GW_OK);
	Spawn__Actors__ActorSettings named = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	named.kind = SPAWN__ACTORS__KIND__NAMED;
	rtf_actor actors[] = {{"a1", &named}, {"a2", &named}};
	char why[256] = "";
	ck_assert_int_eq(rtf_register(&host, SYS, actors, 2, (const char *const[]){"Add", NULL},
	                              why, sizeof why),
	                 GW_OK);
	ck_assert_int_eq(gw_runtime_create(&rt, &ropts, reg, persist), GW_OK);
	gw_runtime_set_router(rt, &fake_router, NULL);
}

static void teardown(void)
{
	rtf_close();
}

static gw_inv *make(const char *actor, int tag)
{
	gw_inv *inv = gw_inv_create(0);
	inv->req = rtf_request(&inv->arena, SYS, actor, "Add");
	inv->done = on_done;
	inv->user = (void *)(intptr_t)tag;
	return inv;
}

static size_t ntasks(void)
{
	pthread_mutex_lock(&host.mu);
	size_t n = host.ntasks;
	pthread_mutex_unlock(&host.mu);
	return n;
}

static uint64_t active(void)
{
	gw_runtime_stats st;
	gw_runtime_get_stats(rt, &st);
	return st.active_actors;
}

static void answer(size_t i)
{
	uint64_t id;
	gw_inv *inv = rtf_take(&host, i, &id);
	Spawn__ActorInvocationResponse r = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	rtf_respond(inv, id, &r);
}

/* ---- tests ----------------------------------------------------------------------- */

START_TEST(a_call_owned_elsewhere_never_activates_here)
{
	set_remote("a1");
	gw_runtime_invoke(rt, make("a1", 1));
	ck_assert_int_eq(ntaken_now(), 1);
	ck_assert_uint_eq(ntasks(), 0);
	ck_assert_uint_eq(active(), 0);
	complete_taken(0); /* the owner's answer completes the caller's inv */
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	ck_assert_int_eq(outs[0].tag, 1);
	/* The owner side of a forward runs it here, whatever the view says. */
	gw_runtime_invoke_local(rt, make("a1", 2));
	ck_assert(fake_host_wait(&host, 1));
	ck_assert_int_eq(ntaken_now(), 1);
	answer(0);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_OK);
}
END_TEST

START_TEST(a_handed_off_actor_finishes_its_turn_and_forwards_its_queue_in_order)
{
	gw_runtime_invoke(rt, make("a1", 1)); /* local: its turn is sent to the host */
	ck_assert(fake_host_wait(&host, 1));
	for (int t = 2; t <= 4; t++)
		gw_runtime_invoke(rt, make("a1", t)); /* queued behind the turn */
	gw_runtime_invoke(rt, make("a2", 9));         /* another actor, staying here */
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_uint_eq(active(), 2);

	set_remote("a1"); /* the new view gives a1 to another member */
	ck_assert_uint_eq(gw_runtime_rebalance(rt, fr_mine, NULL), 1);
	/* Its queue went back to the router, in order; no new turn here. */
	ck_assert_int_eq(ntaken_now(), 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq((int)(intptr_t)taken[i]->user, 2 + i);
	ck_assert_uint_eq(ntasks(), 2);
	/* The turn in flight finishes and answers its caller; then a1 leaves. */
	answer(0);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].tag, 1);
	ck_assert_int_eq(outs[0].err, GW_OK);
	wait_until(active() == 1);
	ck_assert_uint_eq(active(), 1); /* a2 stays */
	ck_assert_uint_eq(ntasks(), 2);
	for (int i = 0; i < 3; i++)
		complete_taken(i);
	ck_assert(wait_outs(4));
	answer(1);
	ck_assert(wait_outs(5));
	/* A second rebalance with the same view moves nothing. */
	ck_assert_uint_eq(gw_runtime_rebalance(rt, fr_mine, NULL), 0);
}
END_TEST

START_TEST(a_call_reaching_a_leaving_actor_is_routed_again)
{
	gw_runtime_invoke(rt, make("a1", 1));
	ck_assert(fake_host_wait(&host, 1));
	set_remote("a1");
	ck_assert_uint_eq(gw_runtime_rebalance(rt, fr_mine, NULL), 1);
	/* A peer forwarded it here on an older view: the leaving actor does
	 * not take it; it is routed again, to the new owner. */
	gw_runtime_invoke_local(rt, make("a1", 2));
	wait_until(ntaken_now() == 1);
	ck_assert_int_eq(ntaken_now(), 1);
	ck_assert_int_eq((int)(intptr_t)taken[0]->user, 2);
	ck_assert_uint_eq(ntasks(), 1);
	answer(0);
	complete_taken(0);
	ck_assert(wait_outs(2));
	wait_until(active() == 0);
	ck_assert_uint_eq(active(), 0);
}
END_TEST

/* Shutdown (gw_runtime_fail_queued): a call queued in a mailbox and one
 * waiting in the retry list after meeting a leaving actor are answered
 * once the timer thread has stopped, before the server that answers them
 * goes (gateway/main.c). Before, the first was answered only by
 * gw_runtime_destroy, after the server's completion queues were shut down
 * (gRPC's call.cc assertion at SIGTERM), and the second never. */
START_TEST(calls_still_queued_at_shutdown_are_answered_not_dispatched)
{
	gw_runtime_invoke(rt, make("a1", 1)); /* its turn is sent to the host */
	ck_assert(fake_host_wait(&host, 1));
	gw_runtime_invoke(rt, make("a1", 2)); /* queued behind it */
	gw_runtime_invoke(rt, make("a2", 3));
	ck_assert(fake_host_wait(&host, 2));
	set_remote("a2");
	ck_assert_uint_eq(gw_runtime_rebalance(rt, fr_mine, NULL), 1);
	gw_runtime_stop(rt); /* no timer routes anything again */
	/* A peer's forward reaches the leaving a2: it waits to be routed again. */
	gw_runtime_invoke_local(rt, make("a2", 4));
	ck_assert_uint_eq(outs_count(), 0);
	ck_assert_uint_eq(gw_runtime_fail_queued(rt), 2);
	ck_assert(wait_outs(2));
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(outs[i].err, GW_ESHUTDOWN);
		ck_assert(outs[i].not_dispatched);
		ck_assert(outs[i].tag == 2 || outs[i].tag == 4);
	}
	ck_assert_int_ne(outs[0].tag, outs[1].tag);
	/* The turns in flight still end with their host's answer. */
	answer(0);
	answer(1);
	ck_assert(wait_outs(4));
	ck_assert_uint_eq(gw_runtime_fail_queued(rt), 0);
}
END_TEST

int main(void)
{
	const rtf_case cases[] = {
	    {"routing", a_call_owned_elsewhere_never_activates_here},
	    {"handoff", a_handed_off_actor_finishes_its_turn_and_forwards_its_queue_in_order},
	    {"leaving", a_call_reaching_a_leaving_actor_is_routed_again},
	    {"shutdown", calls_still_queued_at_shutdown_are_answered_not_dispatched},
	};
	return rtf_run(RTF_SUITE("handoff", cases, setup, teardown));
}
