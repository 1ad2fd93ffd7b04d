/* it_hostlink_test.c - host links and server hygiene (issue 9, items 5 and 7):
 * a host that stops reading its stream keeps the gateway's memory bounded
 * and is disconnected; no two turns of one actor overlap after a stall;
 * unknown methods are UNIMPLEMENTED at once; a second gateway cannot share
 * a port; after a restart, stored actors are UNAVAILABLE until their hosts
 * register again. A well-behaved canary (it-host and its counter) keeps
 * answering beside every hostile peer.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <spawn/spawn.h>

#include "canary.h"
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

static void start_world(const char *name, const char *const gargs[])
{
	it_world_init(&w, name);
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);
	host = it_host_start(&w, "host", gw.target, NULL);
	ck_assert_int_eq(spawn_client_create(&client, gw.target), SPAWN_OK);
}

static void end_world(void)
{
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host);
	it_gateway_stop(&gw);
}

static void expect_add(spawn_client *c, itc_actor a, int64_t value, int64_t want)
{
	int64_t total = -1;
	char msg[200];
	int rc = itc_add(c, a, value, 0, &total, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "Add(%" PRId64 ") on %s: %s: %s", value, a.name,
	              spawn_status_name(rc), msg);
	ck_assert_int_eq(total, want);
}

/* ---- a raw host of system "sink" ------------------------------------------------------- */

/* sink_connect: a raw host of system "sink" with the stateless NAMED actor
 * "r" and the stateless UNNAMED template "t", both with action "A". */
static raw_stream *sink_connect(void)
{
	raw_stream *s = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(120000));
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(raw_host_register(s, "sink", "r", "t", false, it_ms(10000)),
	              "no answer to the registration");
	return s;
}

static void sink_result(raw_stream *s, uint64_t id)
{
	ck_assert(raw_host_result(s, id, it_ms(10000)));
}

/* ---- flood: async calls with big payloads to sink/t instances ---------------------------- */

enum { FLOOD_PAYLOAD = 1 << 20 };

typedef struct flood {
	spawn_client *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long total, started, done;
	long by_status[32];
	char exhausted_msg[200];
	int64_t deadline_ms;
	const uint8_t *payload;
} flood;

static void flood_reply(void *user, spawn_reply *r);

static void flood_start(flood *f, long n)
{
	char name[32];
	snprintf(name, sizeof name, "i-%ld", n); /* one instance per call: no mailbox waits */
	spawn_request req = {
	    .system = "sink",
	    .actor = name,
	    .parent = "t",
	    .action = "A",
	    .payload = {.type_url = "type.googleapis.com/google.protobuf.BytesValue",
	                .data = f->payload,
	                .len = FLOOD_PAYLOAD},
	};
	if (spawn_client_invoke_async(f->c, &req, f->deadline_ms, flood_reply, f) != SPAWN_OK) {
		pthread_mutex_lock(&f->mu);
		f->done++;
		f->by_status[31]++;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
	}
}

static void flood_reply(void *user, spawn_reply *r)
{
	flood *f = user;
	pthread_mutex_lock(&f->mu);
	f->done++;
	f->by_status[r->status >= 0 && r->status < 31 ? r->status : 31]++;
	if (r->status == SPAWN_RESOURCE_EXHAUSTED && !f->exhausted_msg[0])
		snprintf(f->exhausted_msg, sizeof f->exhausted_msg, "%s",
		         r->message ? r->message : "");
	long n = f->started < f->total ? f->started++ : -1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	if (n >= 0)
		flood_start(f, n);
}

/* A host that registers and then never reads its stream, under a flood of
 * calls with 1 MB payloads: tasks of failed calls leave its queue, the
 * queue is bounded (RESOURCE_EXHAUSTED), the host is disconnected once it
 * has been over the bound for --host-stall, and the gateway's peak RSS
 * stays far below what the flood sent (today: every task stays queued). */
START_TEST(a_host_that_stops_reading_is_bounded_and_disconnected)
{
	const char *gargs[] = {"--host-queue-bytes", "8388608", "--host-stall", "1000", NULL};
	start_world("stalled_host", gargs);
	expect_add(client, ITC_COUNTER, 1, 1);
	raw_stream *sink = sink_connect(); /* and never reads again */
	long rss0 = it_proc_status_kb(gw.p->pid, "VmRSS");
	ck_assert_int_gt(rss0, 0);

	it_canary k;
	it_canary_start(&k, gw.target, NULL, NULL);
	static uint8_t payload[FLOOD_PAYLOAD];
	memset(payload, 'x', sizeof payload);
	flood f = {.c = client, .total = 400, .deadline_ms = 1000, .payload = payload};
	pthread_mutex_init(&f.mu, NULL);
	pthread_cond_init(&f.cv, NULL);
	enum { IN_FLIGHT = 32 };
	f.started = IN_FLIGHT;
	for (long i = 0; i < IN_FLIGHT; i++)
		flood_start(&f, i);
	pthread_mutex_lock(&f.mu);
	int64_t end = it_now_ms() + it_ms(120000);
	while (f.done < f.total && it_now_ms() < end) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&f.cv, &f.mu, &ts);
	}
	long done = f.done;
	pthread_mutex_unlock(&f.mu);
	ck_assert_msg(done == f.total, "only %ld of %ld calls answered", done, f.total);
	long peak = it_proc_status_kb(gw.p->pid, "VmHWM"),
	     rss = it_proc_status_kb(gw.p->pid, "VmRSS");
	ck_assert_int_gt(peak, 0);
	fprintf(stderr,
	        "stalled_host: RSS %ld kB before, peak %ld kB, now %ld kB; OK %ld, "
	        "DEADLINE_EXCEEDED %ld, RESOURCE_EXHAUSTED %ld, UNAVAILABLE %ld, other %ld\n",
	        rss0, peak, rss, f.by_status[SPAWN_OK], f.by_status[SPAWN_DEADLINE_EXCEEDED],
	        f.by_status[SPAWN_RESOURCE_EXHAUSTED], f.by_status[SPAWN_UNAVAILABLE],
	        f.total - f.by_status[SPAWN_OK] - f.by_status[SPAWN_DEADLINE_EXCEEDED] -
	            f.by_status[SPAWN_RESOURCE_EXHAUSTED] - f.by_status[SPAWN_UNAVAILABLE]);
	/* 400 MB went to a host that read none of it. */
#ifdef IT_SANITIZE
	const long bound_kb = 600 * 1024; /* ASan's quarantine and shadow */
#else
	const long bound_kb = 200 * 1024;
#endif
	ck_assert_msg(peak < bound_kb, "gateway peak RSS %ld kB", peak);
	ck_assert_int_eq(f.by_status[SPAWN_OK], 0);
	ck_assert_msg(f.by_status[SPAWN_RESOURCE_EXHAUSTED] > 0, "the queue bound never refused");
	ck_assert_msg(strstr(f.exhausted_msg, "--host-queue-bytes"), "message: %s",
	              f.exhausted_msg);
	/* The stalled host was disconnected: its stream ends (once it reads
	 * what it had received) and the gateway says why. */
	while (1) {
		ProtobufCMessage *m = raw_stream_recv(
		    sink, &spawn__gateway__v1__gateway_message__descriptor, it_ms(5000));
		if (!m)
			break;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	char details[300] = "";
	int st = raw_stream_status(sink, it_ms(15000), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE || st == GRPC_STATUS_CANCELLED,
	              "the stalled host's stream: status %d (%s)", st, details);
	raw_stream_close(sink);
	/* Either bound may close it first: the stall (--host-stall) or a
	 * written task that outlived the grace after its deadline. */
	ck_assert_msg(it_file_contains(gw.p->errlog, "did not read its stream") ||
	                  it_file_contains(gw.p->errlog, "within the grace after its deadline"),
	              "the gateway did not log the stalled host");
	it_canary_stop(&k, 5, it_ms(2000));
	expect_add(client, ITC_COUNTER, 1, k.ok + 2);
	pthread_cond_destroy(&f.cv);
	pthread_mutex_destroy(&f.mu);
	end_world();
}
END_TEST

/* callers of sink/r, one async call each */
typedef struct calls {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, status[16];
} calls;

typedef struct call_slot {
	calls *c;
	int i;
} call_slot;

static void call_reply(void *user, spawn_reply *r)
{
	call_slot *s = user;
	pthread_mutex_lock(&s->c->mu);
	s->c->status[s->i] = r->status;
	s->c->done++;
	pthread_cond_broadcast(&s->c->cv);
	pthread_mutex_unlock(&s->c->mu);
}

static void calls_wait(calls *c, int n)
{
	int64_t end = it_now_ms() + it_ms(20000);
	pthread_mutex_lock(&c->mu);
	while (c->done < n && it_now_ms() < end) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	}
	int done = c->done;
	pthread_mutex_unlock(&c->mu);
	ck_assert_msg(done >= n, "%d of %d calls answered", done, n);
}

/* A host that stops reading while the callers of one actor time out: the
 * task written before the stall may still run on it, so the actor's next
 * turns are not sent; when the host reads again it finds one task of that
 * actor, never two, and none sent after its caller had failed. */
START_TEST(no_second_turn_of_an_actor_is_sent_while_the_first_may_run)
{
	const char *gargs[] = {"--host-grace", "20000", NULL};
	start_world("no_overlap", gargs);
	raw_stream *sink = sink_connect(); /* reads nothing until told below */
	it_canary k;
	it_canary_start(&k, gw.target, NULL, NULL);

	enum { N = 5 };
	calls c = {0};
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	call_slot slots[N + 1];
	for (int i = 0; i < N; i++) {
		slots[i] = (call_slot){&c, i};
		spawn_request req = {.system = "sink", .actor = "r", .action = "A"};
		ck_assert_int_eq(
		    spawn_client_invoke_async(client, &req, 300, call_reply, &slots[i]), SPAWN_OK);
		calls_wait(&c, i + 1); /* one after the other: each times out */
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(c.status[i], SPAWN_DEADLINE_EXCEEDED);
	int64_t failed_at = spawn_wall_ms();

	/* The host reads again: everything the gateway sent it so far. */
	uint64_t ids[64];
	int n = 0;
	for (;;) {
		Spawn__Gateway__V1__GatewayMessage *gm =
		    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
		        sink, &spawn__gateway__v1__gateway_message__descriptor, it_ms(1000));
		if (!gm)
			break;
		ck_assert_int_eq(gm->msg_case, SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION);
		const Spawn__Gateway__V1__InvocationTask *t = gm->invocation;
		ck_assert_str_eq(t->invocation->actor->name, "r");
		/* The effective deadline always travels with the task. */
		ck_assert_msg(t->deadline_unix_ms > 0 && t->deadline_unix_ms <= failed_at + 50,
		              "task %" PRIu64 ": deadline %" PRId64, t->request_id,
		              t->deadline_unix_ms);
		if (n < 64)
			ids[n++] = t->request_id;
		protobuf_c_message_free_unpacked(&gm->base, NULL);
	}
	fprintf(stderr, "no_overlap: the host found %d task(s) of actor r\n", n);
	ck_assert_msg(n == 1, "%d tasks of one actor were outstanding at once", n);

	/* Its late answer is dropped and ends the held turn: the next call of
	 * the actor is sent, alone, and answered. */
	sink_result(sink, ids[0]);
	slots[N] = (call_slot){&c, N};
	spawn_request req = {.system = "sink", .actor = "r", .action = "A"};
	ck_assert_int_eq(
	    spawn_client_invoke_async(client, &req, it_ms(10000), call_reply, &slots[N]), SPAWN_OK);
	Spawn__Gateway__V1__GatewayMessage *gm =
	    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
	        sink, &spawn__gateway__v1__gateway_message__descriptor, it_ms(10000));
	ck_assert_msg(gm != NULL, "the actor's next turn was not sent after the late answer");
	ck_assert_int_eq(gm->msg_case, SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION);
	uint64_t id = gm->invocation->request_id;
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	sink_result(sink, id);
	calls_wait(&c, N + 1);
	ck_assert_int_eq(c.status[N], SPAWN_OK);
	/* Nothing else was sent. */
	gm = (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
	    sink, &spawn__gateway__v1__gateway_message__descriptor, 300);
	ck_assert_msg(gm == NULL, "a task of a failed call was sent");
	raw_stream_close(sink);
	it_canary_stop(&k, 3, it_ms(2000));
	pthread_cond_destroy(&c.cv);
	pthread_mutex_destroy(&c.mu);
	end_world();
}
END_TEST

/* ---- server hygiene ----------------------------------------------------------------------- */

START_TEST(an_unknown_method_is_unimplemented_at_once)
{
	start_world("unknown_method", NULL);
	char details[200] = "";
	int64_t t0 = it_now_ms();
	/* No deadline: today such a call is never answered. */
	int st = raw_unary_no_deadline(gw.target, "/foo.Bar/Baz", "", 0, it_ms(5000), details,
	                               sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNIMPLEMENTED, "status %d (%s)", st, details);
	ck_assert_msg(strstr(details, "/foo.Bar/Baz"), "details: %s", details);
	ck_assert_msg(it_now_ms() - t0 < it_ms(2000), "answered after %" PRId64 " ms",
	              it_now_ms() - t0);
	/* Many of them, more than the slots posted per queue. */
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(
		    raw_unary_no_deadline(gw.target, "/x.Y/Z", "ab", 2, it_ms(5000), NULL, 0),
		    GRPC_STATUS_UNIMPLEMENTED);
	expect_add(client, ITC_COUNTER, 1, 1);
	end_world();
}
END_TEST

START_TEST(a_second_gateway_on_a_port_in_use_refuses_to_start)
{
	start_world("port_in_use", NULL);
	expect_add(client, ITC_COUNTER, 1, 1);
	char addr[64];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", gw.port);
	const char *args[] = {"--listen", addr, NULL};
	it_proc *second = it_gateway_spawn(&w, "gw2", "state2.db", args, NULL);
	ck_assert_msg(it_proc_wait_exit(second, it_ms(15000)), "the second gateway kept running");
	ck_assert_msg(it_exit_code(second) != 0, "the second gateway exited 0");
	char want[96];
	snprintf(want, sizeof want, "cannot listen on %s", addr);
	if (!it_file_contains(second->errlog, want)) {
		it_proc_dump(second);
		ck_abort_msg("the second gateway's log does not say '%s'", want);
	}
	/* The first still serves, alone. */
	for (int i = 0; i < 20; i++)
		expect_add(client, ITC_COUNTER, 1, 2 + i);
	end_world();
}
END_TEST

static void expect_status(spawn_client *c, const char *system, const char *actor,
                          const char *action, int want, const char *want_msg)
{
	spawn_request req = {.system = system, .actor = actor, .action = action};
	spawn_reply r;
	int rc = spawn_client_invoke(c, &req, &r, it_ms(10000));
	ck_assert_msg(rc == want, "%s/%s.%s: %s (%s), expected %s", system, actor, action,
	              spawn_status_name(rc), r.message ? r.message : "", spawn_status_name(want));
	if (want_msg)
		ck_assert_msg(r.message && strstr(r.message, want_msg),
		              "message '%s' does not say '%s'", r.message ? r.message : "",
		              want_msg);
	spawn_reply_fini(&r);
}

/* After a restart, an actor the store knows (a row, or an instance
 * record) is UNAVAILABLE until its host registers again, not NOT_FOUND;
 * a name the store does not know is NOT_FOUND; without the grace the
 * stored actor is NOT_FOUND as before. */
START_TEST(a_stored_actor_is_unavailable_until_its_host_registers_after_a_restart)
{
	start_world("registration_grace", NULL);
	expect_add(client, ITC_COUNTER, 5, 5);
	itc_actor inst = {"inst-1", "counters"};
	expect_add(client, inst, 7, 7);
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host);
	it_gateway_stop(&gw); /* saves both */

	it_gateway_start(&w, &gw, "gw2", "state.db", NULL, NULL);
	/* Fail-fast: it sees the UNAVAILABLE itself (a default client retries
	 * it: docs/protocol.md, "Retryable answers"). */
	spawn_client_opts ff = {.target = gw.target, .fail_fast = true};
	ck_assert_int_eq(spawn_client_create_opts(&client, &ff), SPAWN_OK);
	expect_status(client, "it", "counter", "Add", SPAWN_UNAVAILABLE, "no host has registered");
	expect_status(client, "it", "inst-1", "Add", SPAWN_UNAVAILABLE, "no host has registered");
	expect_status(client, "it", "nobody", "Add", SPAWN_NOT_FOUND, NULL);
	host = it_host_start(&w, "host2", gw.target, NULL);
	/* Registered, still within the grace: an unknown action is NOT_FOUND. */
	expect_status(client, "it", "counter", "Nope", SPAWN_NOT_FOUND, NULL);
	expect_add(client, ITC_COUNTER, 1, 6);
	expect_add(client, (itc_actor){"inst-1", NULL}, 1, 8);
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host);
	it_gateway_stop(&gw);

	const char *nograce[] = {"--registration-grace", "0", NULL};
	it_gateway_start(&w, &gw, "gw3", "state.db", nograce, NULL);
	ck_assert_int_eq(spawn_client_create(&client, gw.target), SPAWN_OK);
	expect_status(client, "it", "counter", "Add", SPAWN_NOT_FOUND, NULL);
	host = it_host_start(&w, "host3", gw.target, NULL);
	expect_add(client, ITC_COUNTER, 1, 7);
	end_world();
}
END_TEST

static Suite *hostlink_suite(void)
{
	it_case cases[] = {
	    {"stalled_host", a_host_that_stops_reading_is_bounded_and_disconnected},
	    {"no_overlap", no_second_turn_of_an_actor_is_sent_while_the_first_may_run},
	    {"unknown_method", an_unknown_method_is_unimplemented_at_once},
	    {"port_in_use", a_second_gateway_on_a_port_in_use_refuses_to_start},
	    {"registration_grace",
	     a_stored_actor_is_unavailable_until_its_host_registers_after_a_restart},
	};
	return IT_SUITE("integration_hostlink", cases, teardown, 150);
}

int main(void)
{
	return it_run(hostlink_suite());
}
