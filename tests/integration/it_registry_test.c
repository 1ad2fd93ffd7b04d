/* it_registry_test.c - the registration rules (docs/protocol.md,
 * "Registration") through a real gateway: a second host with other
 * settings is refused while the first keeps serving, new settings are
 * accepted once the first has left, malformed registrations are refused
 * naming the key, results of another state type fail their turn, and a
 * type whose last host left is forgotten after the grace.
 *
 * Each test keeps a canary: it-host's counter, called before and after
 * every hostile step, must keep answering.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <spawn/spawn.h>

#include "harness.h"
#include "itc.h"
#include "raw.h"
#include "wire.h"

static it_world w;
static spawn_client *client;
static it_gw gw;
static it_proc *host;
static int64_t canary_total;

static void teardown(void)
{
	spawn_client_destroy(client);
	client = NULL;
	it_world_fini(&w);
}

static void start_world(const char *name, const char *const gargs[])
{
	it_world_init(&w, name);
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);
	host = it_host_start(&w, "host", gw.target, NULL);
	/* Fail-fast: the tests see the gateway's answers themselves (a default
	 * client retries the UNAVAILABLE of a type without a live host:
	 * docs/protocol.md, "Retryable answers"). */
	spawn_client_opts o = {.target = gw.target, .fail_fast = true};
	ck_assert_int_eq(spawn_client_create_opts(&client, &o), SPAWN_OK);
	canary_total = 0;
}

static void end_world(void)
{
	spawn_client_destroy(client);
	client = NULL;
	if (host)
		it_host_stop(host);
	it_gateway_stop(&gw);
}

/* canary: the well-behaved neighbour's Add still works, state intact. */
static void canary(void)
{
	int64_t total = -1;
	char msg[200] = "";
	int rc = itc_add(client, ITC_COUNTER, 1, 0, &total, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "canary Add: %s: %s", spawn_status_name(rc), msg);
	ck_assert_int_eq(total, ++canary_total);
}

/* One actor of a raw registration. */
typedef struct ractor {
	const char *key, *name, *id_system, *state_type;
	int kind;
	bool stateless;
	int timer_ms; /* > 0: timer action "A" with this period */
} ractor;

/* send_registration registers system sys with the n actors on s. */
static bool send_registration(raw_stream *s, const char *sys, const ractor *ra, size_t n)
{
	Spawn__Actors__Action act = SPAWN__ACTORS__ACTION__INIT, *acts[1] = {&act};
	Spawn__Actors__FixedTimerAction tm[4], *tms[4][1];
	Spawn__Actors__ActorId id[4];
	Spawn__Actors__ActorSettings st[4];
	Spawn__Actors__Actor actor[4];
	Spawn__Actors__Registry__ActorsEntry e[4], *es[4];
	ck_assert_uint_le(n, 4);
	act.name = "A";
	for (size_t i = 0; i < n; i++) {
		spawn__actors__actor_id__init(&id[i]);
		id[i].name = (char *)ra[i].name;
		id[i].system = (char *)(ra[i].id_system ? ra[i].id_system : sys);
		spawn__actors__actor_settings__init(&st[i]);
		st[i].kind = ra[i].kind ? ra[i].kind : SPAWN__ACTORS__KIND__NAMED;
		st[i].stateful = !ra[i].stateless;
		if (ra[i].state_type)
			st[i].state_type = (char *)ra[i].state_type;
		spawn__actors__actor__init(&actor[i]);
		actor[i].id = &id[i];
		actor[i].settings = &st[i];
		actor[i].n_actions = 1;
		actor[i].actions = acts;
		if (ra[i].timer_ms) {
			spawn__actors__fixed_timer_action__init(&tm[i]);
			tm[i].seconds = ra[i].timer_ms;
			tm[i].action = &act;
			tms[i][0] = &tm[i];
			actor[i].n_timer_actions = 1;
			actor[i].timer_actions = tms[i];
		}
		spawn__actors__registry__actors_entry__init(&e[i]);
		e[i].key = (char *)(ra[i].key ? ra[i].key : ra[i].name);
		e[i].value = &actor[i];
		es[i] = &e[i];
	}
	Spawn__Actors__Registry reg = SPAWN__ACTORS__REGISTRY__INIT;
	reg.n_actors = n;
	reg.actors = es;
	Spawn__Actors__ActorSystem sy = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sy.name = (char *)sys;
	sy.registry = &reg;
	Spawn__RegistrationRequest rr = SPAWN__REGISTRATION_REQUEST__INIT;
	rr.actor_system = &sy;
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION;
	hm.registration = &rr;
	return raw_stream_send_msg(s, &hm.base, it_ms(10000));
}

/* register_ok registers and expects the RegistrationResponse; returns the
 * open stream (the raw host stays connected). */
static raw_stream *register_ok(const char *sys, const ractor *ra, size_t n)
{
	raw_stream *s = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(30000));
	ck_assert_ptr_nonnull(s);
	ck_assert(send_registration(s, sys, ra, n));
	Spawn__Gateway__V1__GatewayMessage *gm =
	    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
	        s, &spawn__gateway__v1__gateway_message__descriptor, it_ms(10000));
	if (!gm) {
		char details[512] = "";
		int st = raw_stream_status(s, it_ms(5000), details, sizeof details);
		ck_abort_msg("registration refused: status %d: %s", st, details);
	}
	ck_assert_int_eq(gm->msg_case, SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_REGISTRATION);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	return s;
}

/* register_after_leave registers once the gateway has seen the previous
 * host go (its stream's end may still be in flight): a refusal naming a
 * live host is retried for a bounded time. */
static raw_stream *register_after_leave(const char *sys, const ractor *ra, size_t n)
{
	int64_t end = it_now_ms() + it_ms(5000);
	for (;;) {
		raw_stream *s = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(30000));
		ck_assert_ptr_nonnull(s);
		ck_assert(send_registration(s, sys, ra, n));
		Spawn__Gateway__V1__GatewayMessage *gm =
		    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
		        s, &spawn__gateway__v1__gateway_message__descriptor, it_ms(10000));
		if (gm) {
			ck_assert_int_eq(gm->msg_case,
			                 SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_REGISTRATION);
			protobuf_c_message_free_unpacked(&gm->base, NULL);
			return s;
		}
		char details[512] = "";
		int st = raw_stream_status(s, it_ms(5000), details, sizeof details);
		raw_stream_close(s);
		ck_assert_msg(st == GRPC_STATUS_FAILED_PRECONDITION && it_now_ms() < end,
		              "registration refused: status %d: %s", st, details);
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
	}
}

/* register_refused registers and expects the stream to end with status
 * want and details containing text. */
static void register_refused(const char *sys, const ractor *ra, size_t n, int want,
                             const char *text)
{
	raw_stream *s = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(30000));
	ck_assert_ptr_nonnull(s);
	ck_assert(send_registration(s, sys, ra, n));
	char details[512] = "";
	int st = raw_stream_status(s, it_ms(10000), details, sizeof details);
	ck_assert_msg(st == want, "status %d, want %d (%s)", st, want, details);
	ck_assert_msg(strstr(details, text) != NULL, "'%s' not in: %s", text, details);
	raw_stream_close(s);
}

static int call(const char *sys, const char *actor, char *msg, size_t n)
{
	spawn_request req = {.system = sys, .actor = actor, .action = "A"};
	spawn_reply r;
	int rc = spawn_client_invoke(client, &req, &r, it_ms(10000));
	snprintf(msg, n, "%s", r.message ? r.message : "");
	spawn_reply_fini(&r);
	return rc;
}

START_TEST(a_second_host_with_other_settings_is_refused_while_the_first_serves)
{
	start_world("other_settings", NULL);
	canary();
	/* it-host serves it/counter: NAMED, stateful, state it.Counter */
	ractor unnamed = {.name = "counter",
	                  .kind = SPAWN__ACTORS__KIND__UNNAMED,
	                  .state_type = "type.googleapis.com/it.Counter"};
	register_refused("it", &unnamed, 1, GRPC_STATUS_FAILED_PRECONDITION,
	                 "actor \"counter\": kind UNNAMED differs from NAMED registered by a live "
	                 "host");
	canary();
	ractor stateless = {.name = "counter", .stateless = true};
	register_refused("it", &stateless, 1, GRPC_STATUS_FAILED_PRECONDITION,
	                 "actor \"counter\": stateful false differs from true");
	ractor pooled = {.name = "counter", .kind = SPAWN__ACTORS__KIND__POOLED};
	register_refused("it", &pooled, 1, GRPC_STATUS_FAILED_PRECONDITION, "kind POOLED");
	ractor other_type = {.name = "counter", .state_type = "it.Add"};
	register_refused("it", &other_type, 1, GRPC_STATUS_FAILED_PRECONDITION,
	                 "state_type \"it.Add\" differs from \"it.Counter\"");
	canary();
	/* the same settings join (as a message name: the same type) */
	ractor same = {.name = "counter", .state_type = "it.Counter"};
	raw_stream *joined = register_ok("it", &same, 1);
	raw_stream_close(joined);
	canary();

	/* The first host leaves: the type is known without host (UNAVAILABLE,
	 * retryable), and a registration with new settings is accepted. */
	it_host_stop(host);
	host = NULL;
	char msg[300];
	int rc = call("it", "counter", msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_UNAVAILABLE, "%s: %s", spawn_status_name(rc), msg);
	raw_stream *s = register_after_leave("it", &stateless, 1);
	raw_stream_close(s);
	/* and now the stateless settings are the type's: a stateful host
	 * arriving while a stateless one serves is the one refused */
	s = register_ok("it", &stateless, 1);
	register_refused("it", &same, 1, GRPC_STATUS_FAILED_PRECONDITION,
	                 "stateful true differs from false");
	raw_stream_close(s);
	end_world();
}
END_TEST

START_TEST(malformed_registrations_are_refused_naming_the_key)
{
	const char *gargs[] = {"--timer-floor", "20", NULL};
	start_world("malformed_registrations", gargs);
	ractor key = {.key = "counter", .name = "evil"};
	register_refused("it", &key, 1, GRPC_STATUS_INVALID_ARGUMENT,
	                 "actor map key \"counter\" differs from its ActorId.name \"evil\"");
	ractor sys = {.name = "x", .id_system = "spawn-system"};
	register_refused("it", &sys, 1, GRPC_STATUS_INVALID_ARGUMENT,
	                 "actor map key \"x\": ActorId.system \"spawn-system\" differs from the "
	                 "system being registered \"it\"");
	ractor st = {.name = "x", .state_type = "it..Counter"};
	register_refused("it", &st, 1, GRPC_STATUS_INVALID_ARGUMENT, "state_type \"it..Counter\"");
	ractor t0 = {.name = "x", .timer_ms = -1};
	register_refused("it", &t0, 1, GRPC_STATUS_INVALID_ARGUMENT, "periods must be positive");
	ractor t1 = {.name = "x", .timer_ms = 19};
	register_refused("it", &t1, 1, GRPC_STATUS_INVALID_ARGUMENT,
	                 "period 19 ms, below the floor of 20 ms");
	canary();
	/* nothing of the refused registrations is known */
	char msg[300];
	int rc = call("it", "x", msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_NOT_FOUND, "%s: %s", spawn_status_name(rc), msg);
	rc = call("it", "evil", msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_NOT_FOUND, "%s: %s", spawn_status_name(rc), msg);
	canary();
	end_world();
}
END_TEST

/* answer_task reads one task on s and answers it with a state of type
 * url (value: one byte), after checking the state the task carried. */
static void answer_task(raw_stream *s, const char *url, const char *want_state_url)
{
	Spawn__Gateway__V1__GatewayMessage *gm =
	    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
	        s, &spawn__gateway__v1__gateway_message__descriptor, it_ms(10000));
	ck_assert_msg(gm != NULL, "no task");
	ck_assert_int_eq(gm->msg_case, SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION);
	const Spawn__ActorInvocation *iv = gm->invocation->invocation;
	const Google__Protobuf__Any *cur =
	    iv && iv->current_context ? iv->current_context->state : NULL;
	const char *got = cur && cur->type_url ? cur->type_url : "";
	ck_assert_str_eq(got, want_state_url);
	uint8_t one = 7;
	Google__Protobuf__Any state = GOOGLE__PROTOBUF__ANY__INIT;
	state.type_url = (char *)url;
	state.value.data = &one;
	state.value.len = 1;
	Spawn__Context ctx = SPAWN__CONTEXT__INIT;
	ctx.state = &state;
	Spawn__ActorInvocationResponse resp = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	resp.updated_context = &ctx;
	Spawn__Gateway__V1__InvocationResult res = SPAWN__GATEWAY__V1__INVOCATION_RESULT__INIT;
	res.request_id = gm->invocation->request_id;
	res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE;
	res.response = &resp;
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT;
	hm.result = &res;
	ck_assert(raw_stream_send_msg(s, &hm.base, it_ms(10000)));
	protobuf_c_message_free_unpacked(&gm->base, NULL);
}

typedef struct pending_call {
	spawn_client *c;
	const char *actor;
	int rc;
	char msg[300];
	pthread_t th;
} pending_call;

static void *call_thread(void *arg)
{
	pending_call *p = arg;
	p->rc = call("typed", p->actor, p->msg, sizeof p->msg);
	return NULL;
}

/* call_answered calls typed/<actor> while the raw host answers with a
 * state of type url; returns the caller's status. */
static int call_answered(raw_stream *s, const char *actor, const char *url,
                         const char *want_state_url, char *msg, size_t n)
{
	pending_call p = {.c = client, .actor = actor};
	ck_assert_int_eq(pthread_create(&p.th, NULL, call_thread, &p), 0);
	answer_task(s, url, want_state_url);
	pthread_join(p.th, NULL);
	snprintf(msg, n, "%s", p.msg);
	return p.rc;
}

START_TEST(a_result_of_another_state_type_fails_its_turn)
{
	start_world("state_type_results", NULL);
	ractor typed = {.name = "d", .state_type = "type.googleapis.com/it.Counter"};
	raw_stream *s = register_ok("typed", &typed, 1);
	char msg[300];
	int rc = call_answered(s, "d", "type.googleapis.com/it.Add", "", msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_FAILED_PRECONDITION, "%s: %s", spawn_status_name(rc), msg);
	ck_assert_msg(strstr(msg, "\"type.googleapis.com/it.Add\"") &&
	                  strstr(msg, "declared state_type \"it.Counter\""),
	              "message: %s", msg);
	canary();
	/* the refused state was not kept: the next task carries none; a state
	 * of the declared type is accepted */
	rc = call_answered(s, "d", "type.googleapis.com/it.Counter", "", msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "%s: %s", spawn_status_name(rc), msg);
	rc = call_answered(s, "d", "type.googleapis.com/it.Add", "type.googleapis.com/it.Counter",
	                   msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_FAILED_PRECONDITION, "%s: %s", spawn_status_name(rc), msg);
	rc = call_answered(s, "d", "type.googleapis.com/it.Counter",
	                   "type.googleapis.com/it.Counter", msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "%s: %s", spawn_status_name(rc), msg);
	canary();
	raw_stream_close(s);
	end_world();
}
END_TEST

START_TEST(a_type_whose_last_host_left_is_forgotten_after_the_grace)
{
	const char *gargs[] = {"--type-grace", "300", NULL};
	start_world("type_grace", gargs);
	ractor r = {.name = "gone", .stateless = true};
	raw_stream *s = register_ok("g", &r, 1);
	raw_stream_close(s);
	char msg[300];
	/* During the grace: known, no host. */
	int64_t left = it_now_ms();
	int rc = call("g", "gone", msg, sizeof msg);
	bool in_grace = it_now_ms() - left < 250; /* else the machine was too slow to see it */
	if (in_grace)
		ck_assert_msg(rc == SPAWN_UNAVAILABLE, "%s: %s", spawn_status_name(rc), msg);
	/* After it: forgotten. Bounded poll: the sweep runs on the gateway's
	 * timer thread. */
	int64_t end = it_now_ms() + it_ms(10000);
	while ((rc = call("g", "gone", msg, sizeof msg)) == SPAWN_UNAVAILABLE && it_now_ms() < end)
		nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000L}, NULL);
	ck_assert_msg(rc == SPAWN_NOT_FOUND, "%s: %s", spawn_status_name(rc), msg);
	ck_assert_msg(it_now_ms() - left >= 200, "forgotten after %" PRId64 " ms",
	              it_now_ms() - left);
	canary();
	/* registering it again brings it back, with new settings */
	r.stateless = false;
	s = register_ok("g", &r, 1);
	raw_stream_close(s);
	canary();
	end_world();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration_registry");
	TCase *tc = tcase_create("registration");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_second_host_with_other_settings_is_refused_while_the_first_serves);
	tcase_add_test(tc, malformed_registrations_are_refused_naming_the_key);
	tcase_add_test(tc, a_result_of_another_state_type_fails_its_turn);
	tcase_add_test(tc, a_type_whose_last_host_left_is_forgotten_after_the_grace);
	suite_add_tcase(s, tc);
	return it_run(s);
}
