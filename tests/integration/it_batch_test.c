/* it_batch_test.c - the batched host link (docs/protocol.md "Batched host
 * link"): a raw host that asks for batches is granted them and gets the
 * tasks that queued during a write as TaskBatches, every task once and in
 * order; a host that does not ask (an older host) gets one task per message;
 * hostile ResultBatches (empty, over the count bound, an unknown or a
 * repeated request id, a batch mixed with a single result) close only that
 * host's stream with INVALID_ARGUMENT naming the fault while the canary
 * keeps answering; a bad string in one result of a batch fails that turn
 * only; the C runtime answers 200 concurrent calls right, batched and with
 * --host-batch 1, and with its handlers inline.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <spawn/spawn.h>

#include "batch.h"
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

static void start_world(const char *name, const char *const gargs[], const char *const hargs[])
{
	it_world_init(&w, name);
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);
	host = it_host_start(&w, "host", gw.target, hargs);
	ck_assert_int_eq(spawn_client_create(&client, gw.target), SPAWN_OK);
}

static void end_world(void)
{
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host);
	it_gateway_stop(&gw);
}

/* ---- async calls to sink/i-N (instances of template t) ------------------------------------ */

enum { MAXCALLS = 256 };

typedef struct calls {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, status[MAXCALLS];
	char msg[MAXCALLS][160];
} calls;

typedef struct call_slot {
	calls *c;
	int i;
} call_slot;

static calls cs;
static call_slot slots[MAXCALLS];
static int next_instance; /* every call of a suite goes to a fresh instance */

static void call_reply(void *user, spawn_reply *r)
{
	call_slot *s = user;
	pthread_mutex_lock(&s->c->mu);
	s->c->status[s->i] = r->status;
	snprintf(s->c->msg[s->i], sizeof s->c->msg[0], "%s", r->message ? r->message : "");
	s->c->done++;
	pthread_cond_broadcast(&s->c->cv);
	pthread_mutex_unlock(&s->c->mu);
}

static void calls_start(int n)
{
	memset(&cs, 0, sizeof cs);
	pthread_mutex_init(&cs.mu, NULL);
	pthread_cond_init(&cs.cv, NULL);
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "i-%d", next_instance++);
		slots[i] = (call_slot){&cs, i};
		spawn_request req = {.system = "sink", .actor = name, .parent = "t", .action = "A"};
		ck_assert_int_eq(
		    spawn_client_invoke_async(client, &req, it_ms(30000), call_reply, &slots[i]),
		    SPAWN_OK);
	}
}

static void calls_wait(int n)
{
	int64_t end = it_now_ms() + it_ms(30000);
	pthread_mutex_lock(&cs.mu);
	while (cs.done < n && it_now_ms() < end) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&cs.cv, &cs.mu, &ts);
	}
	int done = cs.done;
	pthread_mutex_unlock(&cs.mu);
	ck_assert_msg(done >= n, "%d of %d calls answered", done, n);
}

static void calls_fini(void)
{
	pthread_cond_destroy(&cs.cv);
	pthread_mutex_destroy(&cs.mu);
}

/* ---- raw hosts of system "sink" ------------------------------------------------------------ */

static raw_stream *sink_connect(bool ask)
{
	raw_stream *s = ask ? raw_stream_open_md(gw.target, RAW_METHOD_CONNECT, it_ms(120000),
	                                         SPAWN_LINK_MD_KEY, SPAWN_LINK_MD_BATCH)
	                    : raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(120000));
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(raw_host_register(s, "sink", "r", "t", false, it_ms(10000)),
	              "no answer to the registration");
	return s;
}

/* recv_tasks reads messages until n tasks arrived; ids[] gets them in
 * arrival order. Returns how many messages carried them and counts the
 * TaskBatches in *batches. */
static int recv_tasks(raw_stream *s, int n, uint64_t *ids, int *batches)
{
	int got = 0, msgs = 0;
	*batches = 0;
	while (got < n) {
		Spawn__Gateway__V1__GatewayMessage *gm =
		    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
		        s, &spawn__gateway__v1__gateway_message__descriptor, it_ms(20000));
		if (!gm) {
			char cmd[700];
			snprintf(cmd, sizeof cmd, "tail -n 30 %s >&2", gw.p->errlog);
			if (system(cmd) != 0)
				fprintf(stderr, "(no gateway log)\n");
		}
		ck_assert_msg(gm, "only %d of %d tasks arrived (in %d messages, %d batches)", got,
		              n, msgs, *batches);
		msgs++;
		if (gm->msg_case == SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_TASKS) {
			(*batches)++;
			ck_assert_uint_gt(gm->tasks->n_tasks, 1); /* a lone task goes as itself */
			ck_assert_uint_le(gm->tasks->n_tasks, 128);
			for (size_t i = 0; i < gm->tasks->n_tasks; i++) {
				ck_assert_int_lt(got, n);
				ids[got++] = gm->tasks->tasks[i]->request_id;
			}
		} else {
			ck_assert_int_eq(gm->msg_case,
			                 SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION);
			ids[got++] = gm->invocation->request_id;
		}
		protobuf_c_message_free_unpacked(&gm->base, NULL);
	}
	return msgs;
}

/* send_results answers ids[0..n) as one ResultBatch (a raw message built
 * by hand, so hostile shapes can be sent too). */
static void send_batch(raw_stream *s, const uint64_t *ids, size_t n, const char *bad_type_url_at0)
{
	Spawn__Gateway__V1__InvocationResult *rs = calloc(n ? n : 1, sizeof *rs);
	Spawn__Gateway__V1__InvocationResult **rp = calloc(n ? n : 1, sizeof *rp);
	Spawn__ActorInvocationResponse *resp = calloc(n ? n : 1, sizeof *resp);
	Google__Protobuf__Any bad = GOOGLE__PROTOBUF__ANY__INIT;
	for (size_t i = 0; i < n; i++) {
		spawn__gateway__v1__invocation_result__init(&rs[i]);
		spawn__actor_invocation_response__init(&resp[i]);
		rs[i].request_id = ids[i];
		rs[i].outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE;
		rs[i].response = &resp[i];
		rp[i] = &rs[i];
	}
	if (bad_type_url_at0 && n) {
		bad.type_url = (char *)bad_type_url_at0;
		resp[0].payload_case = SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_VALUE;
		resp[0].value = &bad;
	}
	Spawn__Gateway__V1__ResultBatch rb = SPAWN__GATEWAY__V1__RESULT_BATCH__INIT;
	rb.n_results = n;
	rb.results = rp;
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULTS;
	hm.results = &rb;
	ck_assert(raw_stream_send_msg(s, &hm.base, it_ms(10000)));
	free(rs);
	free(rp);
	free(resp);
}

static void expect_closed(raw_stream *s, const char *why)
{
	char details[300] = "";
	int st = raw_stream_status(s, it_ms(15000), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_INVALID_ARGUMENT && strstr(details, why),
	              "stream status %d (%s), want INVALID_ARGUMENT with '%s'", st, details, why);
}

/* ---- cases ------------------------------------------------------------------------------------
 */

/* 200 calls on 200 instances: a host that asks is granted batches, and
 * what queued during a write arrives as TaskBatches, each task once, in
 * the order of the ids; answered in one ResultBatch per read, every call
 * succeeds. A host that does not ask gets one task per message. */
START_TEST(a_host_that_asks_gets_batches_and_an_older_host_single_tasks)
{
	/* A fresh world (gateway and client) for each host connection: when a
	 * host of a system is closed and another registers it again at once,
	 * with the canary calling and one spawn_client reused, the first calls
	 * after the reconnect sometimes never reach the new host (2 runs in 5;
	 * also with single results and with the gateway of main at 2ba7f2a, so
	 * not a batching fault: reported, not fixed here). */
	for (int ask = 1; ask >= 0; ask--) {
		start_world(ask ? "batch_grant" : "batch_nogrant", NULL, NULL);
		raw_stream *s = sink_connect(ask);
		ck_assert_int_eq(raw_stream_initial_md_has(s, SPAWN_LINK_MD_KEY,
		                                           SPAWN_LINK_MD_BATCH, it_ms(5000)),
		                 ask);
		enum { N = 200 };
		calls_start(N);
		uint64_t ids[N];
		int batches;
		int msgs = recv_tasks(s, N, ids, &batches);
		for (int i = 1; i < N; i++)
			ck_assert_msg(ids[i] > ids[i - 1], "task %d: id %" PRIu64 " after %" PRIu64,
			              i, ids[i], ids[i - 1]);
		if (ask) {
			ck_assert_msg(batches > 0 && msgs < N,
			              "%d tasks came in %d messages, %d batches", N, msgs, batches);
			for (int i = 0; i < N; i += 50)
				send_batch(s, ids + i, 50, NULL);
		} else {
			ck_assert_int_eq(batches, 0);
			ck_assert_int_eq(msgs, N);
			for (int i = 0; i < N; i++)
				ck_assert(raw_host_result(s, ids[i], it_ms(10000)));
		}
		calls_wait(N);
		for (int i = 0; i < N; i++)
			ck_assert_msg(cs.status[i] == SPAWN_OK, "call %d: %s %s", i,
			              spawn_status_name(cs.status[i]), cs.msg[i]);
		calls_fini();
		raw_stream_close(s);
		end_world();
		it_world_fini(&w);
	}
}
END_TEST

/* Each hostile ResultBatch closes that host's stream with INVALID_ARGUMENT
 * naming the fault before any of its results counts (the calls on it fail
 * UNAVAILABLE), and the canary beside it keeps answering. */
START_TEST(hostile_result_batches_are_refused_clearly)
{
	static uint64_t many[SPAWN_BATCH_MAX_ITEMS + 1];
	struct {
		const char *name, *why;
	} cases[] = {
	    {"empty", "empty ResultBatch"},
	    {"over", "over the limit of 1024"},
	    {"unknown", "unknown request id 999999"},
	    {"repeated", "more than once"},
	    {"mixed", "batch mixed with other fields"},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		char wname[64];
		snprintf(wname, sizeof wname, "batch_hostile_%s", cases[c].name);
		start_world(wname, NULL, NULL); /* fresh: see the grant case */
		it_canary k;
		it_canary_start(&k, gw.target, NULL, NULL);
		raw_stream *s = sink_connect(true);
		calls_start(2);
		uint64_t ids[2];
		int batches;
		recv_tasks(s, 2, ids, &batches);
		const char *name = cases[c].name;
		if (!strcmp(name, "empty")) {
			send_batch(s, ids, 0, NULL);
		} else if (!strcmp(name, "over")) {
			for (size_t i = 0; i < SPAWN_BATCH_MAX_ITEMS + 1; i++)
				many[i] = ids[i % 2];
			send_batch(s, many, SPAWN_BATCH_MAX_ITEMS + 1, NULL);
		} else if (!strcmp(name, "unknown")) {
			uint64_t x[2] = {ids[0], 999999};
			send_batch(s, x, 2, NULL);
		} else if (!strcmp(name, "repeated")) {
			uint64_t x[3] = {ids[0], ids[1], ids[0]};
			send_batch(s, x, 3, NULL);
		} else {
			/* A single result followed by a batch in one HostMessage. */
			uint8_t buf[64];
			size_t n = 0;
			buf[n++] = 0x12; /* result = 2 */
			buf[n++] = 2;
			buf[n++] = 0x08; /* request_id = 1 */
			buf[n++] = (uint8_t)ids[0];
			buf[n++] = 0x1a; /* results = 3 */
			buf[n++] = 4;
			buf[n++] = 0x0a; /* results[0] */
			buf[n++] = 2;
			buf[n++] = 0x08;
			buf[n++] = (uint8_t)ids[1];
			ck_assert(ids[0] < 128 && ids[1] < 128);
			ck_assert(raw_stream_send(s, buf, n, it_ms(10000)));
		}
		expect_closed(s, cases[c].why);
		calls_wait(2);
		for (int i = 0; i < 2; i++)
			ck_assert_msg(cs.status[i] == SPAWN_UNAVAILABLE, "%s: call %d: %s %s", name,
			              i, spawn_status_name(cs.status[i]), cs.msg[i]);
		calls_fini();
		raw_stream_close(s);
		it_canary_stop(&k, 1, it_ms(2000));
		end_world();
		it_world_fini(&w);
	}
}
END_TEST

/* A result with an invalid type URL inside a batch fails its own turn
 * (INVALID_ARGUMENT naming the field); the other result of the batch is
 * delivered and the stream stays up. */
START_TEST(a_bad_result_in_a_batch_fails_only_its_turn)
{
	start_world("batch_bad_item", NULL, NULL);
	raw_stream *s = sink_connect(true);
	calls_start(2);
	uint64_t ids[2];
	int batches;
	recv_tasks(s, 2, ids, &batches);
	send_batch(s, ids, 2, "type.googleapis.com/bad\x01name");
	calls_wait(2);
	/* ids[] are in call order: call i got request ids[i]. */
	int bad = -1, good = -1;
	for (int i = 0; i < 2; i++)
		if (cs.status[i] == SPAWN_INVALID_ARGUMENT)
			bad = i;
		else if (cs.status[i] == SPAWN_OK)
			good = i;
	ck_assert_msg(bad >= 0 && good >= 0, "statuses %s / %s", spawn_status_name(cs.status[0]),
	              spawn_status_name(cs.status[1]));
	ck_assert_msg(strstr(cs.msg[bad], "type_url"), "%s", cs.msg[bad]);
	calls_fini();
	/* Still up: another call is served. */
	calls_start(1);
	recv_tasks(s, 1, ids, &batches);
	ck_assert(raw_host_result(s, ids[0], it_ms(10000)));
	calls_wait(1);
	ck_assert_int_eq(cs.status[0], SPAWN_OK);
	calls_fini();
	raw_stream_close(s);
	end_world();
}
END_TEST

/* The C runtime (it-host) under 200 concurrent Adds on 200 instances,
 * with batches and with --host-batch 1: every total is right. */
static void many_adds(const char *name, const char *const gargs[], const char *const hargs[])
{
	start_world(name, gargs, hargs);
	enum { N = 200 };
	itc_batch b;
	itc_batch_init(&b, N);
	char nm[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(nm[i], sizeof nm[i], "c-%d", i);
		It__Add add = IT__ADD__INIT;
		add.value = i + 1;
		ck_assert_int_eq(itc_batch_start(&b, (size_t)i, client,
		                                 (itc_actor){nm[i], "counters"}, "Add", &add.base,
		                                 it_ms(30000)),
		                 SPAWN_OK);
	}
	ck_assert(itc_batch_wait(&b, N, it_ms(30000)));
	for (int i = 0; i < N; i++) {
		ck_assert_msg(b.res[i].status == SPAWN_OK, "call %d: %s %s", i,
		              spawn_status_name(b.res[i].status), b.res[i].msg);
		ck_assert_int_eq(b.res[i].total->total, i + 1);
	}
	itc_batch_fini(&b);
	end_world();
}

START_TEST(the_c_runtime_answers_right_with_batches)
{
	many_adds("batch_c", NULL, NULL);
}
END_TEST

START_TEST(the_c_runtime_answers_right_without_batches)
{
	const char *const args[] = {"--host-batch", "1", NULL};
	many_adds("batch_c_off", args, NULL);
}
END_TEST

/* The same with the C runtime's handlers inline (spawn_host_opts.run_inline):
 * the results of each TaskBatch go back together. */
START_TEST(the_c_runtime_answers_right_inline)
{
	const char *const hargs[] = {"--inline", NULL};
	many_adds("batch_c_inline", NULL, hargs);
}
END_TEST

static Suite *batch_suite(void)
{
	it_case cases[] = {
	    {"grant", a_host_that_asks_gets_batches_and_an_older_host_single_tasks},
	    {"hostile", hostile_result_batches_are_refused_clearly},
	    {"bad_item", a_bad_result_in_a_batch_fails_only_its_turn},
	    {"c_batched", the_c_runtime_answers_right_with_batches},
	    {"c_unbatched", the_c_runtime_answers_right_without_batches},
	    {"c_inline", the_c_runtime_answers_right_inline},
	};
	return IT_SUITE("integration_batch", cases, teardown, 150);
}

int main(void)
{
	return it_run(batch_suite());
}
