/* type_lifetime_test.c - actor types and the actors that hold them: a
 * type whose host left is forgotten after the grace but freed only once
 * its last active actor is gone (run under ASan: no use after free), a
 * registration revives a forgotten type its actors still hold, and a
 * result whose state has another type than the declared state_type fails
 * its turn and leaves the state unchanged. Fake host, real SQLite store. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_fixture.h"

#define SYS "lt"

static gw_host host2;

/* register_on registers "a" and "b" (stateful, idle after 50 ms) for h. */
static void register_on(gw_host *h)
{
	Spawn__Actors__TimeoutStrategy deact_t = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	deact_t.timeout = 50;
	Spawn__Actors__ActorDeactivationStrategy deact =
	    SPAWN__ACTORS__ACTOR_DEACTIVATION_STRATEGY__INIT;
	deact.strategy_case = SPAWN__ACTORS__ACTOR_DEACTIVATION_STRATEGY__STRATEGY_TIMEOUT;
	deact.timeout = &deact_t;
	Spawn__Actors__ActorSettings st = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	st.kind = SPAWN__ACTORS__KIND__NAMED;
	st.stateful = true;
	st.deactivation_strategy = &deact;
	st.state_type = STATE_TYPE;
	const rtf_actor actors[] = {{"a", &st}, {"b", &st}};
	char why[512] = "";
	ck_assert_msg(rtf_register(h, SYS, actors, 2, (const char *const[]){"Add", NULL}, why,
	                           sizeof why) == GW_OK,
	              "%s", why);
}

static void setup(void)
{
	rtf_open("lt");
	gw_registry_opts ro = {.timer_floor_ms = 10, .grace_ms = 0};
	ck_assert_int_eq(gw_registry_create(&reg, &ro), GW_OK);
	fake_host_init(&host2);
	register_on(&host);
	gw_runtime_opts rto = {.shards = 2, .mailbox_max = 100, .host_timeout_ms = 60000};
	ck_assert_int_eq(gw_runtime_create(&rt, &rto, reg, persist), GW_OK);
}

static void teardown(void)
{
	rtf_close();
	fake_host_free(&host2);
}

static void invoke(const char *actor)
{
	gw_inv *inv = gw_inv_create(0);
	inv->req = rtf_request(&inv->arena, SYS, actor, "Add");
	inv->done = on_done;
	gw_runtime_invoke(rt, inv);
}

/* answer task i of h with a state of type type_url holding v */
static void answer(gw_host *h, size_t i, const char *type_url, int64_t v)
{
	uint64_t id;
	gw_inv *inv = rtf_take(h, i, &id);
	Google__Protobuf__Any st = GOOGLE__PROTOBUF__ANY__INIT;
	st.type_url = (char *)type_url;
	st.value.data = (uint8_t *)&v;
	st.value.len = 8;
	Spawn__Context ctx = SPAWN__CONTEXT__INIT;
	ctx.state = &st;
	Spawn__ActorInvocationResponse r = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	r.updated_context = &ctx;
	rtf_respond(inv, id, &r);
}

static int64_t task_state(gw_host *h, size_t i)
{
	const Spawn__ActorInvocation *ai = fake_task_inv(h, i);
	if (!ai || !ai->current_context || !ai->current_context->state)
		return -1;
	int64_t v = -1;
	if (ai->current_context->state->value.len == 8)
		memcpy(&v, ai->current_context->state->value.data, 8);
	return v;
}

START_TEST(a_result_of_another_state_type_fails_the_turn_and_keeps_the_state)
{
	invoke("a");
	ck_assert(fake_host_wait(&host, 1));
	answer(&host, 0, "type.googleapis.com/test.Other", 9);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_ECONFIG);
	ck_assert_msg(strstr(outs[0].msg, "\"type.googleapis.com/test.Other\"") &&
	                  strstr(outs[0].msg, "declared state_type \"test.State\""),
	              "%s", outs[0].msg);
	invoke("a");
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_int_eq(task_state(&host, 1), -1); /* no state was kept */
	answer(&host, 1, STATE_TYPE, 5);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_OK);
	invoke("a");
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_int_eq(task_state(&host, 2), 5);
	answer(&host, 2, "test.Other", 6);
	ck_assert(wait_outs(3));
	ck_assert_int_eq(outs[2].err, GW_ECONFIG);
	invoke("a");
	ck_assert(fake_host_wait(&host, 4));
	ck_assert_int_eq(task_state(&host, 3), 5);
	answer(&host, 3, STATE_TYPE, 5);
	ck_assert(wait_outs(4));
}
END_TEST

START_TEST(a_forgotten_type_is_freed_only_after_its_last_actor)
{
	invoke("a");
	ck_assert(fake_host_wait(&host, 1));
	answer(&host, 0, STATE_TYPE, 7);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	/* The host leaves (grace 0): "b" (no actor) goes at the next sweep;
	 * "a" is forgotten at once but its active actor still holds it. */
	gw_registry_unbind_host(reg, &host);
	invoke("a");
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_ENOTFOUND);
	/* Its actor idles out (50 ms) after a final save, drops the type, and
	 * a later sweep (each second while held) frees it. */
	wait_until(gw_registry_count(reg) == 0);
	ck_assert_uint_eq(gw_registry_count(reg), 0);
	gw_runtime_stats st;
	gw_runtime_get_stats(rt, &st);
	ck_assert_int_eq(st.active_actors, 0);
	/* Registered again: the stored state is still there. */
	register_on(&host2);
	invoke("a");
	ck_assert(fake_host_wait(&host2, 1));
	ck_assert_int_eq(task_state(&host2, 0), 7);
	answer(&host2, 0, STATE_TYPE, 8);
	ck_assert(wait_outs(3));
	ck_assert_int_eq(outs[2].err, GW_OK);
}
END_TEST

START_TEST(a_registration_revives_a_forgotten_type_its_actor_holds)
{
	invoke("a");
	ck_assert(fake_host_wait(&host, 1));
	answer(&host, 0, STATE_TYPE, 3);
	ck_assert(wait_outs(1));
	gw_registry_unbind_host(reg, &host);
	invoke("a");
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_ENOTFOUND);
	/* a new host before the actor idled out: the same actor serves on */
	register_on(&host2);
	invoke("a");
	ck_assert(fake_host_wait(&host2, 1));
	ck_assert_int_eq(task_state(&host2, 0), 3);
	answer(&host2, 0, STATE_TYPE, 4);
	ck_assert(wait_outs(3));
	ck_assert_int_eq(outs[2].err, GW_OK);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("type_lifetime");
	TCase *tc = tcase_create("type_lifetime");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, a_result_of_another_state_type_fails_the_turn_and_keeps_the_state);
	tcase_add_test(tc, a_forgotten_type_is_freed_only_after_its_last_actor);
	tcase_add_test(tc, a_registration_revives_a_forgotten_type_its_actor_holds);
	suite_add_tcase(s, tc);
	return rtf_run(s);
}
