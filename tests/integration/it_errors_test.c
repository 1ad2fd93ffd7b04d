/* it_errors_test.c - bad input and failures, and the gateway keeps serving
 * others after each: garbage requests, unknown names, oversized messages,
 * misbehaving raw hosts, deadlines, host errors, the mailbox bound and a
 * missing host. Every test ends with a normal Add through it-host.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void teardown(void)
{
	spawn_client_destroy(client);
	client = NULL;
	it_world_fini(&w);
}

/* start_world: a gateway with extra args and one it-host (all actions)
 * plus a client. */
static void start_world(const char *name, const char *const gargs[], const char *const hargs[])
{
	it_world_init(&w, name);
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);
	host = it_host_start(&w, "host", gw.target, hargs);
	ck_assert_int_eq(spawn_client_create(&client, gw.target), SPAWN_OK);
}

/* end_world stops everything and asserts clean exits. */
static void end_world(it_proc *const hosts[])
{
	spawn_client_destroy(client);
	client = NULL;
	for (size_t i = 0; hosts && hosts[i]; i++)
		it_host_stop(hosts[i]);
	it_gateway_stop(&gw);
}

static void expect_add(itc_actor a, int64_t value, int64_t want)
{
	int64_t total = -1;
	char msg[200];
	int rc = itc_add(client, a, value, 0, &total, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "Add(%" PRId64 ") on %s: %s: %s", value, a.name,
	              spawn_status_name(rc), msg);
	ck_assert_int_eq(total, want);
}

static void expect_get(itc_actor a, int64_t want)
{
	int64_t total = -1;
	char msg[200];
	int rc = itc_get(client, a, &total, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "Get on %s: %s: %s", a.name, spawn_status_name(rc), msg);
	ck_assert_int_eq(total, want);
}

/* expect_status invokes and asserts the status and that the message
 * contains want_msg (when not NULL). */
static void expect_status(const char *system, const char *actor, const char *action, int want,
                          const char *want_msg)
{
	It__Add add = IT__ADD__INIT;
	add.value = 1;
	spawn_payload p;
	ck_assert_int_eq(spawn_payload_pack(&p, &add.base), SPAWN_OK);
	spawn_request req = {.system = system, .actor = actor, .action = action, .payload = p};
	spawn_reply r;
	int rc = spawn_client_invoke(client, &req, &r, it_ms(10000));
	spawn_payload_fini(&p);
	ck_assert_msg(rc == want, "%s/%s.%s: %s (%s), expected %s", system, actor, action,
	              spawn_status_name(rc), r.message ? r.message : "", spawn_status_name(want));
	if (want_msg)
		ck_assert_msg(r.message && strstr(r.message, want_msg),
		              "message '%s' does not name '%s'", r.message ? r.message : "",
		              want_msg);
	spawn_reply_fini(&r);
}

/* start_hang starts Hang on the counter in b's slot i and waits until h
 * prints that it hangs. */
static void start_hang(itc_batch *b, size_t i, it_proc *h, int64_t timeout_ms)
{
	ck_assert_int_eq(itc_batch_start(b, i, client, ITC_COUNTER, "Hang", NULL, timeout_ms),
	                 SPAWN_OK);
	if (!it_proc_wait_line(h, "hanging counter", it_ms(10000), NULL, 0)) {
		it_proc_dump(h);
		ck_abort_msg("the Hang invocation did not reach %s", h->name);
	}
}

/* ---- malformed requests ------------------------------------------------------------------ */

START_TEST(a_request_that_is_not_an_invocation_request_is_invalid_argument)
{
	start_world("garbage_request", NULL, NULL);
	expect_add(ITC_COUNTER, 1, 1);
	/* A truncated varint: not a protobuf message at all. */
	static const unsigned char junk[] = {0xff, 0xff, 0xff, 0xff, 0xff};
	char details[256];
	int st = raw_unary(gw.target, RAW_METHOD_INVOKE, junk, sizeof junk, it_ms(10000), details,
	                   sizeof details);
	ck_assert_msg(st == GRPC_STATUS_INVALID_ARGUMENT, "status %d (%s)", st, details);
	ck_assert_msg(strstr(details, "InvocationRequest"), "details: %s", details);
	/* A valid but empty InvocationRequest names nothing. */
	st = raw_unary(gw.target, RAW_METHOD_INVOKE, "", 0, it_ms(10000), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_INVALID_ARGUMENT, "status %d (%s)", st, details);
	expect_add(ITC_COUNTER, 1, 2);
	end_world((it_proc *[]){host, NULL});
}
END_TEST

START_TEST(unknown_system_actor_and_action_are_not_found_by_name)
{
	start_world("unknown_names", NULL, NULL);
	expect_status("no-such-system", "counter", "Add", SPAWN_NOT_FOUND, "no-such-system");
	expect_status("it", "no-such-actor", "Add", SPAWN_NOT_FOUND, "no-such-actor");
	expect_status("it", "counter", "NoSuchAction", SPAWN_NOT_FOUND, "NoSuchAction");
	/* A template is not an actor: only its instances are. */
	expect_status("it", "counters", "Add", SPAWN_INVALID_ARGUMENT, "UNNAMED");
	expect_add(ITC_COUNTER, 1, 1);
	end_world((it_proc *[]){host, NULL});
}
END_TEST

START_TEST(a_message_over_the_limit_is_resource_exhausted)
{
	const char *gargs[] = {"--max-message-bytes", "65536", NULL};
	start_world("oversized", gargs, NULL);
	static uint8_t big[100000];
	memset(big, 'x', sizeof big);
	It__Blob blob = IT__BLOB__INIT;
	blob.data.data = big;
	blob.data.len = sizeof big;
	spawn_reply r;
	int rc = itc_invoke(client, ITC_COUNTER, "Echo", &blob.base, it_ms(10000), &r);
	ck_assert_msg(rc == SPAWN_RESOURCE_EXHAUSTED, "Echo of 100 kB: %s (%s)",
	              spawn_status_name(rc), r.message ? r.message : "");
	spawn_reply_fini(&r);
	/* Under the limit it goes through, unchanged. */
	blob.data.len = 1000;
	rc = itc_invoke(client, ITC_COUNTER, "Echo", &blob.base, it_ms(10000), &r);
	ck_assert_msg(rc == SPAWN_OK, "Echo of 1 kB: %s (%s)", spawn_status_name(rc),
	              r.message ? r.message : "");
	It__Blob *back = NULL;
	ck_assert_int_eq(
	    spawn_payload_unpack(&r.payload, &it__blob__descriptor, (ProtobufCMessage **)&back),
	    SPAWN_OK);
	ck_assert_uint_eq(back->data.len, 1000);
	ck_assert(memcmp(back->data.data, big, 1000) == 0);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	spawn_reply_fini(&r);
	expect_add(ITC_COUNTER, 1, 1);
	end_world((it_proc *[]){host, NULL});
}
END_TEST

/* request_size is the size of the InvocationRequest libspawn sends for
 * Echo on the counter with an it.Blob of n bytes. */
static size_t request_size(size_t n)
{
	It__Blob blob = IT__BLOB__INIT;
	blob.data.len = n;
	char url[64];
	spawn_type_url(&it__blob__descriptor, url, sizeof url);
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = url;
	any.value.len = it__blob__get_packed_size(&blob);
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = ITC_SYSTEM;
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = "counter";
	id.system = ITC_SYSTEM;
	Spawn__Actors__Actor actor = SPAWN__ACTORS__ACTOR__INIT;
	actor.id = &id;
	Spawn__InvocationRequest m = SPAWN__INVOCATION_REQUEST__INIT;
	m.system = &sys;
	m.actor = &actor;
	m.action_name = "Echo";
	m.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	m.value = &any;
	return spawn__invocation_request__get_packed_size(&m);
}

/* A request just under --max-message-bytes becomes a bigger
 * InvocationTask (actor id, context, the actor's state). It must fail on
 * its own (RESOURCE_EXHAUSTED) without breaking the host's stream, which
 * other actors' invocations share. */
START_TEST(a_request_whose_task_is_over_the_limit_fails_alone)
{
	enum { LIMIT = 65536 };
	const char *gargs[] = {"--max-message-bytes", "65536", NULL};
	start_world("oversized_task", gargs, NULL);
	expect_add(ITC_COUNTER, 1, 1); /* the counter has a state now */

	/* A bystander: another actor's invocation in flight on the same
	 * host stream. */
	itc_batch b;
	itc_batch_init(&b, 1);
	ck_assert_int_eq(itc_batch_start(&b, 0, client, (itc_actor){"bystander", "counters"},
	                                 "Hang", NULL, it_ms(60000)),
	                 SPAWN_OK);
	ck_assert(it_proc_wait_line(host, "hanging bystander", it_ms(10000), NULL, 0));

	size_t n = LIMIT;
	while (request_size(n) > LIMIT - 8)
		n--;
	static uint8_t big[LIMIT];
	It__Blob blob = IT__BLOB__INIT;
	blob.data.data = big;
	blob.data.len = n;
	spawn_reply r;
	int rc = itc_invoke(client, ITC_COUNTER, "Echo", &blob.base, it_ms(10000), &r);
	fprintf(stderr, "oversized_task: Echo of %zu bytes (request %zu): %s (%s)\n", n,
	        request_size(n), spawn_status_name(rc), r.message ? r.message : "");
	spawn_reply_fini(&r);
	/* Either the gateway refuses it up front or the host answers; what
	 * must not happen is the host's stream going down with it. */
	ck_assert_msg(rc == SPAWN_RESOURCE_EXHAUSTED || rc == SPAWN_OK, "Echo: %s",
	              spawn_status_name(rc));
	expect_add(ITC_COUNTER, 1, 2);
	ck_assert_msg(itc_batch_done(&b) == 0, "the bystander's call ended: %s: %s",
	              spawn_status_name(b.res[0].status), b.res[0].msg);
	ck_assert_int_eq(it_proc_count_lines(host, "registered"), 0);
	end_world((it_proc *[]){host, NULL});
	itc_batch_fini(&b);
}
END_TEST

/* A host configured with the gateway's limit (as spawn.h asks) whose
 * reply is over it: the call fails on its own (RESOURCE_EXHAUSTED) and
 * the host's stream, shared with other actors' calls, stays up. */
START_TEST(a_reply_over_the_limit_fails_alone)
{
	const char *gargs[] = {"--max-message-bytes", "65536", NULL};
	const char *hargs[] = {"--max-message-bytes", "65536", NULL};
	start_world("oversized_reply", gargs, hargs);
	expect_add(ITC_COUNTER, 1, 1);
	itc_batch b;
	itc_batch_init(&b, 1);
	ck_assert_int_eq(itc_batch_start(&b, 0, client, (itc_actor){"bystander", "counters"},
	                                 "Hang", NULL, it_ms(60000)),
	                 SPAWN_OK);
	ck_assert(it_proc_wait_line(host, "hanging bystander", it_ms(10000), NULL, 0));

	It__Add big = IT__ADD__INIT;
	big.value = 100000;
	spawn_reply r;
	int rc = itc_invoke(client, ITC_COUNTER, "Big", &big.base, it_ms(10000), &r);
	fprintf(stderr, "oversized_reply: Big(100000): %s (%s)\n", spawn_status_name(rc),
	        r.message ? r.message : "");
	spawn_reply_fini(&r);
	ck_assert_msg(rc == SPAWN_RESOURCE_EXHAUSTED, "Big: %s", spawn_status_name(rc));
	expect_add(ITC_COUNTER, 1, 2);
	ck_assert_msg(itc_batch_done(&b) == 0, "the bystander's call ended: %s: %s",
	              spawn_status_name(b.res[0].status), b.res[0].msg);
	ck_assert_int_eq(it_proc_count_lines(host, "registered"), 0);
	end_world((it_proc *[]){host, NULL});
	itc_batch_fini(&b);
}
END_TEST

/* ---- raw hosts ------------------------------------------------------------------------- */

START_TEST(a_malformed_host_message_ends_that_hosts_stream)
{
	start_world("malformed_host_message", NULL, NULL);
	raw_stream *s = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(20000));
	ck_assert_ptr_nonnull(s);
	static const unsigned char junk[] = {0xff, 0xff, 0xff};
	raw_stream_send(s, junk, sizeof junk, it_ms(10000));
	char details[256];
	int st = raw_stream_status(s, it_ms(10000), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_INVALID_ARGUMENT, "status %d (%s)", st, details);
	ck_assert_msg(strstr(details, "malformed HostMessage"), "details: %s", details);
	raw_stream_close(s);
	expect_add(ITC_COUNTER, 1, 1);
	end_world((it_proc *[]){host, NULL});
}
END_TEST

/* raw_register registers system "raw" on s (the stateful NAMED actor "r"
 * and the UNNAMED template "rt", both with action "A") and waits for the
 * gateway's answer. */
static void raw_register(raw_stream *s)
{
	ck_assert_msg(raw_host_register(s, "raw", "r", "rt", true, it_ms(10000)),
	              "no answer to the registration");
}

START_TEST(a_result_for_a_request_never_issued_ends_that_hosts_stream)
{
	start_world("unknown_request_id", NULL, NULL);
	raw_stream *s = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(20000));
	ck_assert_ptr_nonnull(s);
	raw_register(s);
	raw_host_result(s, 4242, it_ms(10000));
	char details[256];
	int st = raw_stream_status(s, it_ms(10000), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_INVALID_ARGUMENT, "status %d (%s)", st, details);
	ck_assert_msg(strstr(details, "unknown request id 4242"), "details: %s", details);
	raw_stream_close(s);
	/* Its actor lost its only host. */
	expect_status("raw", "r", "A", SPAWN_UNAVAILABLE, NULL);
	expect_add(ITC_COUNTER, 1, 1);
	end_world((it_proc *[]){host, NULL});
}
END_TEST

/* ---- the registration answer comes first ------------------------------------------------- */

/* Keeps IN_FLIGHT invocations of raw/r going until stopped: each
 * completion starts the next one (on the client's callback thread). */
typedef struct flood {
	spawn_client *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	long started, done; /* started counts a call before it starts */
} flood;

static void flood_reply(void *user, spawn_reply *r);

/* flood_start starts call number n (already counted in started). */
static void flood_start(flood *f, long n)
{
	/* Many actors, so dispatches run on every gateway thread at once. */
	char name[32];
	snprintf(name, sizeof name, "ri-%ld", n % 64);
	spawn_request req = {.system = "raw", .actor = name, .parent = "rt", .action = "A"};
	if (spawn_client_invoke_async(f->c, &req, 10000, flood_reply, f) != SPAWN_OK) {
		pthread_mutex_lock(&f->mu);
		f->done++;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
	}
}

/* Runs on the client's callback thread: the next call replaces this one
 * unless the test has stopped the flood (decided under the same lock, so
 * once stop is set no call starts). */
static void flood_reply(void *user, spawn_reply *r)
{
	(void)r;
	flood *f = user;
	pthread_mutex_lock(&f->mu);
	f->done++;
	long n = f->stop ? -1 : f->started++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	if (n >= 0)
		flood_start(f, n);
}

/* The race is narrow: many rounds, bounded by a time budget. */
enum { FLOOD_IN_FLIGHT = 64, REGISTER_ROUNDS = 3000, REGISTER_BUDGET_MS = 3000 };

/* gateway.proto: the gateway answers the registration, "then" sends
 * invocations. A host registering while callers are waiting for its
 * actor must see the RegistrationResponse before any InvocationTask. */
START_TEST(the_registration_answer_comes_before_any_invocation)
{
	start_world("registration_first", NULL, NULL);
	/* Make raw/r known (with no host left) so calls to it are routed. */
	raw_stream *s = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(20000));
	ck_assert_ptr_nonnull(s);
	raw_register(s);
	raw_stream_close(s);

	flood f = {.c = client};
	pthread_mutex_init(&f.mu, NULL);
	pthread_cond_init(&f.cv, NULL);
	f.started = FLOOD_IN_FLIGHT;
	for (int i = 0; i < FLOOD_IN_FLIGHT; i++)
		flood_start(&f, i);
	int tasks_first = 0, rounds = 0;
	int64_t end = it_now_ms() + it_ms(REGISTER_BUDGET_MS);
	for (; rounds < REGISTER_ROUNDS && !tasks_first && it_now_ms() < end; rounds++) {
		s = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(20000));
		ck_assert_ptr_nonnull(s);
		raw_registration reg;
		ck_assert(raw_stream_send_msg(
		    s, &raw_registration_init(&reg, "raw", "r", "rt", true)->base, it_ms(10000)));
		Spawn__Gateway__V1__GatewayMessage *gm =
		    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
		        s, &spawn__gateway__v1__gateway_message__descriptor, it_ms(10000));
		ck_assert_msg(gm != NULL, "no first message from the gateway");
		tasks_first +=
		    gm->msg_case != SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_REGISTRATION;
		protobuf_c_message_free_unpacked(&gm->base, NULL);
		raw_stream_close(s);
	}
	pthread_mutex_lock(&f.mu);
	f.stop = true;
	while (f.done < f.started)
		pthread_cond_wait(&f.cv, &f.mu);
	long calls = f.done;
	pthread_mutex_unlock(&f.mu);
	fprintf(stderr, "registration_first: %d rounds, %ld calls, %d InvocationTask(s) first\n",
	        rounds, calls, tasks_first);
	ck_assert_msg(tasks_first == 0,
	              "an InvocationTask arrived before the RegistrationResponse (round %d)",
	              rounds);
	expect_add(ITC_COUNTER, 1, 1);
	end_world((it_proc *[]){host, NULL});
	pthread_cond_destroy(&f.cv);
	pthread_mutex_destroy(&f.mu);
}
END_TEST

START_TEST(a_result_before_the_registration_ends_that_hosts_stream)
{
	start_world("result_before_registration", NULL, NULL);
	raw_stream *s = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(20000));
	ck_assert_ptr_nonnull(s);
	raw_host_result(s, 1, it_ms(10000));
	char details[256];
	int st = raw_stream_status(s, it_ms(10000), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_FAILED_PRECONDITION, "status %d (%s)", st, details);
	raw_stream_close(s);
	expect_add(ITC_COUNTER, 1, 1);
	end_world((it_proc *[]){host, NULL});
}
END_TEST

/* ---- deadlines, host errors, mailbox, no host ------------------------------------------------ */

/* A task written to the host that timed out may still run there: its
 * actor takes no next turn until the host answers, its stream ends, or the
 * grace after the task's deadline passes; then the host counts as broken
 * and is disconnected (it-host reconnects). */
START_TEST(a_hang_past_the_callers_deadline_is_deadline_exceeded)
{
	const char *gargs[] = {"--host-grace", "500", NULL};
	start_world("deadline", gargs, NULL);
	expect_add(ITC_COUNTER, 4, 4);
	itc_batch b;
	itc_batch_init(&b, 1);
	int64_t t0 = it_now_ms();
	/* Not waiting for "hanging": on a slow machine the deadline may pass
	 * before the host starts the handler, which must give the same. */
	ck_assert_int_eq(itc_batch_start(&b, 0, client, ITC_COUNTER, "Hang", NULL, 300), SPAWN_OK);
	ck_assert(itc_batch_wait(&b, 1, it_ms(10000)));
	int64_t took = it_now_ms() - t0;
	ck_assert_msg(b.res[0].status == SPAWN_DEADLINE_EXCEEDED, "Hang: %s: %s",
	              spawn_status_name(b.res[0].status), b.res[0].msg);
	ck_assert_msg(took < it_ms(5000), "DEADLINE_EXCEEDED after %" PRId64 " ms", took);
	itc_batch_fini(&b);
	/* The host never answers: after the grace it is disconnected and comes
	 * back; the actor is free again and its state is what it was. */
	ck_assert_msg(it_proc_wait_line(host, "registered", it_ms(15000), NULL, 0),
	              "the host holding a timed-out task was not disconnected");
	expect_get(ITC_COUNTER, 4);
	expect_add(ITC_COUNTER, 1, 5);
	end_world((it_proc *[]){host, NULL});
}
END_TEST

START_TEST(a_host_slower_than_host_timeout_is_deadline_exceeded)
{
	const char *gargs[] = {"--host-timeout", "300", "--host-grace", "500", NULL};
	start_world("host_timeout", gargs, NULL);
	expect_add(ITC_COUNTER, 2, 2);
	itc_batch b;
	itc_batch_init(&b, 1);
	int64_t t0 = it_now_ms();
	start_hang(&b, 0, host, 0); /* no client deadline: the gateway's bound applies */
	ck_assert(itc_batch_wait(&b, 1, it_ms(10000)));
	int64_t took = it_now_ms() - t0;
	ck_assert_msg(b.res[0].status == SPAWN_DEADLINE_EXCEEDED, "Hang: %s: %s",
	              spawn_status_name(b.res[0].status), b.res[0].msg);
	ck_assert_msg(took >= 250 && took < it_ms(5000), "answered after %" PRId64 " ms", took);
	itc_batch_fini(&b);
	/* As above: the silent host is dropped after the grace, and returns. */
	ck_assert(it_proc_wait_line(host, "registered", it_ms(15000), NULL, 0));
	expect_add(ITC_COUNTER, 1, 3);
	end_world((it_proc *[]){host, NULL});
}
END_TEST

/* A host that answers after the gateway gave up: its answer is dropped
 * (the actor keeps the state it had), and its stream stays up. */
START_TEST(a_late_answer_is_dropped_and_the_stream_stays)
{
	const char *gargs[] = {"--host-timeout", "150", NULL};
	const char *hargs[] = {"--actions", "Add,Get,Sleep", NULL};
	start_world("late_answer", gargs, hargs);
	expect_add(ITC_COUNTER, 1, 1);
	It__Add nap = IT__ADD__INIT;
	nap.value = 600;
	spawn_reply r;
	int rc = itc_invoke(client, ITC_COUNTER, "Sleep", &nap.base, it_ms(10000), &r);
	ck_assert_msg(rc == SPAWN_DEADLINE_EXCEEDED, "Sleep: %s: %s", spawn_status_name(rc),
	              r.message ? r.message : "");
	spawn_reply_fini(&r);
	/* The host now answers; the adds below reach it after that answer
	 * (a false pass is possible if they do not, a false failure is not). */
	ck_assert(it_proc_wait_line(host, "slept counter", it_ms(10000), NULL, 0));
	expect_add(ITC_COUNTER, 1, 2);
	expect_add(ITC_COUNTER, 1, 3);
	expect_get(ITC_COUNTER, 3);
	ck_assert_int_eq(it_proc_count_lines(host, "registered"), 0);
	end_world((it_proc *[]){host, NULL});
}
END_TEST

START_TEST(a_failing_action_is_failed_precondition_and_keeps_the_state)
{
	start_world("host_error", NULL, NULL);
	expect_add(ITC_COUNTER, 3, 3);
	spawn_reply r;
	int rc = itc_invoke(client, ITC_COUNTER, "Fail", NULL, it_ms(10000), &r);
	ck_assert_int_eq(rc, SPAWN_FAILED_PRECONDITION);
	ck_assert_str_eq(r.message, "nope");
	spawn_reply_fini(&r);
	expect_get(ITC_COUNTER, 3);
	expect_add(ITC_COUNTER, 1, 4);
	end_world((it_proc *[]){host, NULL});
}
END_TEST

START_TEST(a_full_mailbox_is_resource_exhausted)
{
	const char *gargs[] = {"--mailbox-size", "2", NULL};
	const char *aargs[] = {"--actions", "Add,Get,Hang", NULL};
	start_world("mailbox_full", gargs, aargs);
	const char *bargs[] = {"--actions", "Add,Get", NULL};
	it_proc *second = it_host_start(&w, "host2", gw.target, bargs);

	itc_batch b;
	itc_batch_init(&b, 4);
	start_hang(&b, 0, host, it_ms(60000)); /* busy: the counter's one call in flight */
	for (size_t i = 1; i <= 3; i++) {
		It__Add add = IT__ADD__INIT;
		add.value = 1;
		ck_assert_int_eq(
		    itc_batch_start(&b, i, client, ITC_COUNTER, "Add", &add.base, it_ms(60000)),
		    SPAWN_OK);
	}
	/* Two wait in the mailbox; the third does not fit. */
	ck_assert(itc_batch_wait(&b, 1, it_ms(10000)));
	size_t full = 0;
	for (size_t i = 1; i <= 3; i++)
		if (b.res[i].status == SPAWN_RESOURCE_EXHAUSTED) {
			full = i;
			ck_assert_msg(strstr(b.res[i].msg, "mailbox"), "message: %s", b.res[i].msg);
		}
	ck_assert_msg(full != 0, "the first answer was not RESOURCE_EXHAUSTED");
	ck_assert_uint_eq(itc_batch_done(&b), 1);

	/* Free the actor: the two queued adds then run on the other host. */
	it_proc_kill(host);
	ck_assert(itc_batch_wait(&b, 4, it_ms(15000)));
	ck_assert_int_eq(b.res[0].status, SPAWN_UNAVAILABLE);
	int64_t seen = 0;
	for (size_t i = 1; i <= 3; i++) {
		if (i == full)
			continue;
		ck_assert_msg(b.res[i].status == SPAWN_OK, "queued add: %s: %s",
		              spawn_status_name(b.res[i].status), b.res[i].msg);
		seen |= 1 << b.res[i].total->total;
	}
	ck_assert_int_eq(seen, (1 << 1) | (1 << 2));
	itc_batch_fini(&b);
	expect_add(ITC_COUNTER, 1, 3);
	end_world((it_proc *[]){second, NULL});
}
END_TEST

START_TEST(a_known_actor_without_a_host_is_unavailable)
{
	start_world("no_host", NULL, NULL);
	expect_add(ITC_COUNTER, 1, 1);
	/* Kill the only host while it runs a Hang: the Hang's answer tells
	 * the test the gateway has dropped the host. */
	itc_batch b;
	itc_batch_init(&b, 1);
	start_hang(&b, 0, host, it_ms(60000));
	it_proc_kill(host);
	ck_assert(itc_batch_wait(&b, 1, it_ms(15000)));
	ck_assert_int_eq(b.res[0].status, SPAWN_UNAVAILABLE);
	itc_batch_fini(&b);

	/* A fail-fast client sees the answer itself; a default one retries it
	 * (marked never dispatched: docs/protocol.md, "Retryable answers"). */
	spawn_client *retrying = client;
	spawn_client_opts o = {.target = gw.target, .fail_fast = true};
	ck_assert_int_eq(spawn_client_create_opts(&client, &o), SPAWN_OK);
	expect_status("it", "counter", "Add", SPAWN_UNAVAILABLE, "counter");
	expect_status("it", "counter", "Get", SPAWN_UNAVAILABLE, NULL);
	spawn_client_destroy(client);
	client = retrying;

	it_proc *second = it_host_start(&w, "host2", gw.target, NULL);
	expect_add(ITC_COUNTER, 1, 2);
	end_world((it_proc *[]){second, NULL});
}
END_TEST

static Suite *errors_suite(void)
{
	it_case cases[] = {
	    {"garbage_request", a_request_that_is_not_an_invocation_request_is_invalid_argument},
	    {"unknown_names", unknown_system_actor_and_action_are_not_found_by_name},
	    {"oversized", a_message_over_the_limit_is_resource_exhausted},
	    {"oversized_task", a_request_whose_task_is_over_the_limit_fails_alone},
	    {"oversized_reply", a_reply_over_the_limit_fails_alone},
	    {"malformed_host_message", a_malformed_host_message_ends_that_hosts_stream},
	    {"unknown_request_id", a_result_for_a_request_never_issued_ends_that_hosts_stream},
	    {"result_before_registration", a_result_before_the_registration_ends_that_hosts_stream},
	    {"registration_first", the_registration_answer_comes_before_any_invocation},
	    {"deadline", a_hang_past_the_callers_deadline_is_deadline_exceeded},
	    {"host_timeout", a_host_slower_than_host_timeout_is_deadline_exceeded},
	    {"late_answer", a_late_answer_is_dropped_and_the_stream_stays},
	    {"host_error", a_failing_action_is_failed_precondition_and_keeps_the_state},
	    {"mailbox_full", a_full_mailbox_is_resource_exhausted},
	    {"no_host", a_known_actor_without_a_host_is_unavailable},
	};
	return IT_SUITE("integration_errors", cases, teardown, 40);
}

int main(void)
{
	return it_run(errors_suite());
}
