/* lease_wait_test.c - the runtime when the activation lease is refused
 * (cluster mode, docs/design/cluster.md "The activation lease"): the
 * persist runs in lease mode with no member set, so every activation comes
 * back GW_EOWNED, as when another live member holds the actor. The actor
 * waits in LOADING and tries again with backoff; no turn ever runs; a call
 * is answered UNAVAILABLE with the not-dispatched trailer before its
 * deadline (never DEADLINE_EXCEEDED); a handoff meanwhile ends the wait. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_fixture.h"
#include "wire.h"

#define SYS "lease-system"

static void setup(void)
{
	rtf_open("lease");
	/* The fixture's persist, again in lease mode: no member yet. */
	gw_persist_destroy(persist);
	gw_persist_opts po = {.max_batch = 64, .lease = true};
	ck_assert_int_eq(gw_persist_create(&persist, store, &po), GW_OK);
	ck_assert_int_eq(gw_registry_create(&reg, NULL), GW_OK);
	Spawn__Actors__ActorSettings st = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	st.kind = SPAWN__ACTORS__KIND__NAMED;
	st.stateful = true;
	st.state_type = STATE_TYPE;
	rtf_actor actors[] = {{"a1", &st}, {"a2", &st}};
	char why[256] = "";
	ck_assert_int_eq(rtf_register(&host, SYS, actors, 2, (const char *const[]){"Add", NULL},
	                              why, sizeof why),
	                 GW_OK);
	gw_runtime_opts ro = {.shards = 4, .mailbox_max = 100, .host_timeout_ms = 60000};
	ck_assert_int_eq(gw_runtime_create(&rt, &ro, reg, persist), GW_OK);
}

static void teardown(void)
{
	rtf_close();
}

static int64_t now_ms(void)
{
	return spawn_now_ns() / 1000000;
}

static void call(const char *actor, int64_t deadline_ms, int tag)
{
	gw_inv *inv = gw_inv_create(0);
	inv->req = rtf_request(&inv->arena, SYS, actor, "Add");
	inv->deadline_ms = deadline_ms;
	inv->done = on_done;
	inv->user = (void *)(intptr_t)tag;
	gw_runtime_invoke(rt, inv);
}

static size_t ntasks(void)
{
	pthread_mutex_lock(&host.mu);
	size_t n = host.ntasks;
	pthread_mutex_unlock(&host.mu);
	return n;
}

static uint64_t refused(void)
{
	gw_persist_stats st;
	gw_persist_get_stats(persist, &st);
	return st.lease_refused;
}

static uint64_t active(void)
{
	gw_runtime_stats st;
	gw_runtime_get_stats(rt, &st);
	return st.active_actors;
}

/* until polls cond every millisecond for at most 5 s (a readiness wait). */
static bool until(bool (*cond)(void))
{
	for (int64_t end = now_ms() + 5000; now_ms() < end;) {
		if (cond())
			return true;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return cond();
}

static bool no_actor(void)
{
	return active() == 0;
}

static bool refused_twice(void)
{
	return refused() >= 2;
}

START_TEST(a_refused_activation_waits_and_answers_not_dispatched_before_the_deadline)
{
	int64_t t0 = now_ms(), deadline = t0 + 600;
	call("a1", deadline, 1);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_EUNAVAIL);
	ck_assert(outs[0].not_dispatched); /* the client runtimes retry it */
	ck_assert_msg(strstr(outs[0].msg, "active on another member") != NULL, "%s", outs[0].msg);
	/* It waited (several tries), and answered before its deadline. */
	ck_assert_int_lt(outs[0].at_ms, deadline);
	ck_assert_int_ge(outs[0].at_ms - t0, 200);
	ck_assert_uint_ge(refused(), 3);
	ck_assert_uint_eq(ntasks(), 0); /* no turn without the lease */
	/* Nothing left to serve: the actor is gone. */
	ck_assert(until(no_actor));
}
END_TEST

START_TEST(calls_queued_meanwhile_wait_with_it_each_until_its_own_deadline)
{
	int64_t t0 = now_ms();
	call("a2", t0 + 300, 1);
	call("a2", t0 + 900, 2); /* joins the same waiting activation */
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[0].tag, 1);
	ck_assert_int_eq(outs[1].tag, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(outs[i].err, GW_EUNAVAIL);
		ck_assert(outs[i].not_dispatched);
	}
	ck_assert_int_lt(outs[0].at_ms, t0 + 300);
	ck_assert_int_lt(outs[1].at_ms, t0 + 900);
	ck_assert_int_ge(outs[1].at_ms - outs[0].at_ms, 200); /* the second waited on */
	ck_assert_uint_eq(ntasks(), 0);
}
END_TEST

static bool never_mine(void *user, const char *system, const char *type, const char *name)
{
	(void)user;
	(void)system;
	(void)type;
	(void)name;
	return false;
}

START_TEST(a_handoff_ends_the_wait_and_answers_its_calls)
{
	call("a1", 0, 1); /* no deadline: it would wait up to GW_LEASE_WAIT_MS */
	ck_assert(until(refused_twice));
	ck_assert_uint_eq(nouts, 0);
	ck_assert_uint_eq(gw_runtime_rebalance(rt, never_mine, NULL), 1);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_EUNAVAIL);
	ck_assert(outs[0].not_dispatched);
	ck_assert(until(no_actor));
	ck_assert_uint_eq(ntasks(), 0);
}
END_TEST

static Suite *lease_suite(void)
{
	rtf_case cases[] = {
	    {"deadline", a_refused_activation_waits_and_answers_not_dispatched_before_the_deadline},
	    {"queued", calls_queued_meanwhile_wait_with_it_each_until_its_own_deadline},
	    {"handoff", a_handoff_ends_the_wait_and_answers_its_calls},
	};
	return RTF_SUITE("lease_wait", cases, setup, teardown);
}

int main(void)
{
	return rtf_run(lease_suite());
}
