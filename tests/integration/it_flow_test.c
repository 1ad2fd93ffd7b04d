/* it_flow_test.c - the normal flow over real processes: a round trip,
 * 1,000 actors at once, a host dying mid-invocation, a second host taking
 * over, async calls, the mailbox's arrival order, and hosts dying under
 * load. Each test starts its own gateway (ephemeral port, own store) and
 * it-host processes; see harness.h for how they are cleaned up.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <spawn/spawn.h>

#include "harness.h"
#include "itc.h"

static it_world w;
static spawn_client *client;

static void teardown(void)
{
	spawn_client_destroy(client);
	client = NULL;
	it_world_fini(&w);
}

static spawn_client *connect_client(const char *target)
{
	ck_assert_int_eq(spawn_client_create(&client, target), SPAWN_OK);
	return client;
}

/* expect_add asserts that Add(value) on a answers OK with total want. */
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

/* ---- 1. round trip ------------------------------------------------------------- */

START_TEST(add_add_get_makes_a_round_trip)
{
	it_world_init(&w, "round_trip");
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", NULL, NULL);
	it_proc *host = it_host_start(&w, "host", gw.target, NULL);
	connect_client(gw.target);

	expect_add(ITC_COUNTER, 1, 1);
	expect_add(ITC_COUNTER, 1, 2);
	expect_get(ITC_COUNTER, 2);

	/* Both exit cleanly (under sanitizers: without leaks). */
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host);
	it_gateway_stop(&gw);
}
END_TEST

/* ---- 2. 1,000 actors at once ------------------------------------------------------ */

enum { N_ACTORS = 1000, N_ADDS = 5 };

/* Every Add carries value = seq, so an actor's total after k adds is the
 * sum of the k seqs it has seen, and its state's seqs list is the order in
 * which the gateway ran them. */
START_TEST(a_thousand_actors_in_flight_at_once_run_one_call_at_a_time)
{
	it_world_init(&w, "thousand_actors");
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", NULL, NULL);
	const char *hargs[] = {"--workers", "8", NULL};
	it_proc *host = it_host_start(&w, "host", gw.target, hargs);
	connect_client(gw.target);

	static char names[N_ACTORS][16];
	itc_batch b;
	itc_batch_init(&b, N_ACTORS * N_ADDS);
	for (int a = 0; a < N_ACTORS; a++) {
		snprintf(names[a], sizeof names[a], "c-%04d", a);
		for (int k = 1; k <= N_ADDS; k++) {
			It__Add add = IT__ADD__INIT;
			add.value = k;
			add.seq = k;
			itc_actor act = {names[a], "counters"};
			ck_assert_int_eq(itc_batch_start(&b, (size_t)a * N_ADDS + (size_t)(k - 1),
			                                 client, act, "Add", &add.base,
			                                 it_ms(60000)),
			                 SPAWN_OK);
		}
	}
	bool all = itc_batch_wait(&b, b.n, it_ms(90000));
	ck_assert_msg(all, "only %zu of %zu calls completed", itc_batch_done(&b), b.n);

	int in_send_order = 0;
	for (int a = 0; a < N_ACTORS; a++) {
		itc_result *r = &b.res[(size_t)a * N_ADDS];
		/* by_adds[j] = the reply that saw j+1 adds applied */
		const It__Total *by_adds[N_ADDS] = {0};
		for (int k = 0; k < N_ADDS; k++) {
			ck_assert_msg(r[k].status == SPAWN_OK, "%s Add seq %d: %s: %s", names[a],
			              k + 1, spawn_status_name(r[k].status), r[k].msg);
			const It__Total *t = r[k].total;
			ck_assert_ptr_nonnull(t);
			ck_assert_msg(t->adds >= 1 && t->adds <= N_ADDS, "%s: adds %" PRId64,
			              names[a], t->adds);
			ck_assert_msg(!by_adds[t->adds - 1],
			              "%s: two replies saw %" PRId64 " adds (ran concurrently)",
			              names[a], t->adds);
			by_adds[t->adds - 1] = t;
			/* Its own seq is the last one applied. */
			ck_assert_uint_eq(t->n_seqs, (size_t)t->adds);
			ck_assert_int_eq(t->seqs[t->n_seqs - 1], k + 1);
		}
		/* Each reply's history is a prefix of the final one: the adds ran
		 * one after another, each on its predecessor's state. */
		const It__Total *fin = by_adds[N_ADDS - 1];
		bool ordered = true;
		int64_t seen = 0;
		for (int j = 0; j < N_ADDS; j++) {
			const It__Total *t = by_adds[j];
			int64_t sum = 0;
			for (size_t q = 0; q < t->n_seqs; q++) {
				ck_assert_int_eq(t->seqs[q], fin->seqs[q]);
				sum += t->seqs[q];
			}
			ck_assert_int_eq(t->total, sum);
			ck_assert_msg(!(seen & (1 << fin->seqs[j])), "%s: seq %" PRId64 " twice",
			              names[a], fin->seqs[j]);
			seen |= 1 << fin->seqs[j];
			ordered = ordered && fin->seqs[j] == j + 1;
		}
		ck_assert_int_eq(fin->total, N_ADDS * (N_ADDS + 1) / 2);
		in_send_order += ordered;
	}
	fprintf(stderr, "thousand_actors: %d of %d actors ran their adds in send order\n",
	        in_send_order, N_ACTORS);
	itc_batch_fini(&b);

	/* The state the gateway keeps agrees with the replies. */
	for (int a = 0; a < N_ACTORS; a += 97)
		expect_get((itc_actor){names[a], "counters"}, N_ADDS * (N_ADDS + 1) / 2);

	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host);
	it_gateway_stop(&gw);
}
END_TEST

/* ---- 3. host killed mid-invocation ---------------------------------------------------- */

/* start_hang starts Hang on actor a (async, in b slot i) and waits until
 * host h prints that it is hanging. */
static void start_hang(itc_batch *b, size_t i, itc_actor a, it_proc *h)
{
	ck_assert_int_eq(itc_batch_start(b, i, client, a, "Hang", NULL, it_ms(60000)), SPAWN_OK);
	char want[64];
	snprintf(want, sizeof want, "hanging %s", a.name);
	if (!it_proc_wait_line(h, want, it_ms(10000), NULL, 0)) {
		it_proc_dump(h);
		ck_abort_msg("the Hang invocation did not reach %s", h->name);
	}
}

START_TEST(a_host_killed_mid_invocation_fails_the_call_and_keeps_the_state)
{
	it_world_init(&w, "host_killed");
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", NULL, NULL);
	it_proc *a = it_host_start(&w, "host", gw.target, NULL);
	connect_client(gw.target);
	expect_add(ITC_COUNTER, 5, 5);

	itc_batch b;
	itc_batch_init(&b, 1);
	start_hang(&b, 0, ITC_COUNTER, a);
	it_proc_kill(a);
	ck_assert_msg(itc_batch_wait(&b, 1, it_ms(15000)), "no answer after the host died");
	ck_assert_msg(b.res[0].status == SPAWN_UNAVAILABLE, "Hang: %s: %s",
	              spawn_status_name(b.res[0].status), b.res[0].msg);
	ck_assert_msg(strstr(b.res[0].msg, "went away"), "message: %s", b.res[0].msg);
	itc_batch_fini(&b);

	it_proc *second = it_host_start(&w, "host2", gw.target, NULL);
	expect_get(ITC_COUNTER, 5);
	expect_add(ITC_COUNTER, 1, 6);

	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(second);
	it_gateway_stop(&gw);
}
END_TEST

/* ---- 4. a second host takes over ------------------------------------------------------- */

START_TEST(a_second_host_takes_over_when_one_dies)
{
	it_world_init(&w, "takeover");
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", NULL, NULL);
	/* Only A serves Hang: a Hang routed to A tells the test when the
	 * gateway has noticed A's death (it fails the Hang right after
	 * unbinding A), so nothing below races with that. */
	const char *aargs[] = {"--actions", "Add,Get,Hang", "--trace", NULL};
	const char *bargs[] = {"--actions", "Add,Get", "--trace", NULL};
	it_proc *a = it_host_start(&w, "host", gw.target, aargs);
	it_proc *bh = it_host_start(&w, "host2", gw.target, bargs);
	connect_client(gw.target);

	int64_t want = 0;
	for (int i = 0; i < 10; i++)
		expect_add(ITC_COUNTER, 1, ++want);
	int on_a = it_proc_count_lines(a, "invoked counter Add");
	int on_b = it_proc_count_lines(bh, "invoked counter Add");
	ck_assert_int_eq(on_a + on_b, 10);
	ck_assert_msg(on_a > 0 && on_b > 0, "adds on A: %d, on B: %d (expected both)", on_a, on_b);

	itc_batch b;
	itc_batch_init(&b, 1);
	start_hang(&b, 0, ITC_COUNTER, a);
	it_proc_kill(a);
	ck_assert(itc_batch_wait(&b, 1, it_ms(15000)));
	ck_assert_msg(b.res[0].status == SPAWN_UNAVAILABLE, "Hang: %s: %s",
	              spawn_status_name(b.res[0].status), b.res[0].msg);
	itc_batch_fini(&b);

	for (int i = 0; i < 20; i++)
		expect_add(ITC_COUNTER, 1, ++want);
	expect_get(ITC_COUNTER, want);
	ck_assert_int_eq(it_proc_count_lines(bh, "invoked counter Add"), 20);

	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(bh);
	it_gateway_stop(&gw);
}
END_TEST

/* ---- mailbox order --------------------------------------------------------------------- */

enum { FIFO_ACTORS = 10, FIFO_ADDS = 20 };

/* invoke_async_add sends Add(1, seq) with async: true and returns once the
 * gateway has accepted it (queued in the actor's mailbox). */
static void invoke_async_add(itc_actor a, int64_t seq)
{
	It__Add add = IT__ADD__INIT;
	add.value = 1;
	add.seq = seq;
	spawn_payload p;
	ck_assert_int_eq(spawn_payload_pack(&p, &add.base), SPAWN_OK);
	spawn_request req = {.system = ITC_SYSTEM,
	                     .actor = a.name,
	                     .parent = a.parent,
	                     .action = "Add",
	                     .payload = p,
	                     .async = true};
	spawn_reply r;
	int rc = spawn_client_invoke(client, &req, &r, it_ms(10000));
	spawn_payload_fini(&p);
	ck_assert_msg(rc == SPAWN_OK, "async Add on %s: %s: %s", a.name, spawn_status_name(rc),
	              r.message ? r.message : "");
	spawn_reply_fini(&r);
}

/* Arrival order made certain: each actor is held busy by a Hang while
 * adds are queued one at a time (each accepted before the next is sent),
 * interleaved across actors; then the Hangs end and every actor must run
 * its adds exactly in that order. */
START_TEST(queued_invocations_run_in_arrival_order)
{
	it_world_init(&w, "mailbox_fifo");
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", NULL, NULL);
	const char *aargs[] = {"--actions", "Add,Get,Hang", "--workers", "16", NULL};
	const char *bargs[] = {"--actions", "Add,Get", NULL};
	it_proc *a = it_host_start(&w, "host", gw.target, aargs);
	it_proc *bh = it_host_start(&w, "host2", gw.target, bargs);
	connect_client(gw.target);

	static char names[FIFO_ACTORS][16];
	itc_batch hangs;
	itc_batch_init(&hangs, FIFO_ACTORS);
	for (int i = 0; i < FIFO_ACTORS; i++) {
		snprintf(names[i], sizeof names[i], "q-%02d", i);
		itc_actor act = {names[i], "counters"};
		ck_assert_int_eq(
		    itc_batch_start(&hangs, (size_t)i, client, act, "Hang", NULL, it_ms(60000)),
		    SPAWN_OK);
		char want[40];
		snprintf(want, sizeof want, "hanging %s", names[i]);
		ck_assert_msg(it_proc_wait_line(a, want, it_ms(10000), NULL, 0), "no %s", want);
	}
	for (int k = 1; k <= FIFO_ADDS; k++)
		for (int i = 0; i < FIFO_ACTORS; i++)
			invoke_async_add((itc_actor){names[i], "counters"}, k);
	/* Release: the Hangs fail with the host, the queues drain on B. */
	it_proc_kill(a);
	ck_assert(itc_batch_wait(&hangs, FIFO_ACTORS, it_ms(15000)));
	for (int i = 0; i < FIFO_ACTORS; i++)
		ck_assert_int_eq(hangs.res[i].status, SPAWN_UNAVAILABLE);
	itc_batch_fini(&hangs);

	for (int i = 0; i < FIFO_ACTORS; i++) {
		/* Get queues behind the adds, so it sees all of them. */
		spawn_reply r;
		int rc = itc_invoke(client, (itc_actor){names[i], "counters"}, "Get", NULL,
		                    it_ms(30000), &r);
		ck_assert_msg(rc == SPAWN_OK, "Get %s: %s", names[i], spawn_status_name(rc));
		It__Total *t = itc_total(&r);
		spawn_reply_fini(&r);
		ck_assert_ptr_nonnull(t);
		ck_assert_uint_eq(t->n_seqs, FIFO_ADDS);
		for (size_t q = 0; q < t->n_seqs; q++)
			ck_assert_msg(t->seqs[q] == (int64_t)q + 1,
			              "%s ran seq %" PRId64 " at position %zu", names[i],
			              t->seqs[q], q + 1);
		protobuf_c_message_free_unpacked(&t->base, NULL);
	}
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(bh);
	it_gateway_stop(&gw);
}
END_TEST

/* ---- hosts coming and going under load ------------------------------------------------ */

enum { CHURN_ACTORS = 200, CHURN_ADDS = 10 };

/* While thousands of adds are in flight, hosts are killed and others
 * start. Every call ends OK or UNAVAILABLE (never anything else), and each
 * actor's state counts exactly its OK adds: a failed call changed
 * nothing, an acknowledged one was kept. */
START_TEST(hosts_dying_under_load_lose_no_acknowledged_add)
{
	it_world_init(&w, "host_churn");
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", NULL, NULL);
	it_proc *a = it_host_start(&w, "host", gw.target, NULL);
	it_proc *bh = it_host_start(&w, "host2", gw.target, NULL);
	connect_client(gw.target);

	static char names[CHURN_ACTORS][16];
	itc_batch b;
	itc_batch_init(&b, CHURN_ACTORS * CHURN_ADDS);
	for (int k = 0; k < CHURN_ADDS; k++)
		for (int i = 0; i < CHURN_ACTORS; i++) {
			snprintf(names[i], sizeof names[i], "h-%03d", i);
			It__Add add = IT__ADD__INIT;
			add.value = 1;
			ck_assert_int_eq(itc_batch_start(&b, (size_t)(i * CHURN_ADDS + k), client,
			                                 (itc_actor){names[i], "counters"}, "Add",
			                                 &add.base, it_ms(60000)),
			                 SPAWN_OK);
		}
	it_proc_kill(a);
	it_proc *c = it_host_start(&w, "host3", gw.target, NULL);
	it_proc_kill(bh);
	it_proc *d = it_host_start(&w, "host4", gw.target, NULL);
	ck_assert_msg(itc_batch_wait(&b, b.n, it_ms(60000)), "only %zu of %zu calls completed",
	              itc_batch_done(&b), b.n);

	int ok = 0, unavailable = 0;
	for (int i = 0; i < CHURN_ACTORS; i++) {
		int64_t acked = 0, seen = 0;
		for (int k = 0; k < CHURN_ADDS; k++) {
			itc_result *r = &b.res[i * CHURN_ADDS + k];
			ck_assert_msg(r->status == SPAWN_OK || r->status == SPAWN_UNAVAILABLE,
			              "%s: %s: %s", names[i], spawn_status_name(r->status), r->msg);
			if (r->status != SPAWN_OK) {
				unavailable++;
				continue;
			}
			ok++;
			acked++;
			ck_assert_ptr_nonnull(r->total);
			int64_t t = r->total->total;
			ck_assert_msg(t >= 1 && t <= CHURN_ADDS && !(seen & (1 << t)),
			              "%s: total %" PRId64 " seen twice or out of range", names[i],
			              t);
			seen |= 1 << t;
		}
		/* The acknowledged adds saw totals 1..acked, one each. */
		ck_assert_int_eq(seen, ((int64_t)1 << (acked + 1)) - 2);
		expect_get((itc_actor){names[i], "counters"}, acked);
	}
	fprintf(stderr, "host_churn: %d OK, %d UNAVAILABLE\n", ok, unavailable);
	ck_assert_int_gt(ok, 0);
	itc_batch_fini(&b);

	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(c);
	it_host_stop(d);
	it_gateway_stop(&gw);
}
END_TEST

/* ---- async invocations ---------------------------------------------------------------- */

enum { ASYNC_ROUNDS = 300 };

/* An async Add is answered once accepted; a call the same client makes
 * after that answer arrives after it, so runs after it (FIFO mailbox). */
START_TEST(an_accepted_async_invocation_runs_before_later_calls)
{
	it_world_init(&w, "async");
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", NULL, NULL);
	it_proc *host = it_host_start(&w, "host", gw.target, NULL);
	connect_client(gw.target);
	for (int i = 1; i <= ASYNC_ROUNDS; i++) {
		It__Add add = IT__ADD__INIT;
		add.value = 1;
		spawn_payload p;
		ck_assert_int_eq(spawn_payload_pack(&p, &add.base), SPAWN_OK);
		spawn_request req = {.system = ITC_SYSTEM,
		                     .actor = "counter",
		                     .action = "Add",
		                     .payload = p,
		                     .async = true};
		spawn_reply r;
		int rc = spawn_client_invoke(client, &req, &r, it_ms(10000));
		spawn_payload_fini(&p);
		ck_assert_msg(rc == SPAWN_OK, "async Add: %s: %s", spawn_status_name(rc),
		              r.message ? r.message : "");
		ck_assert_ptr_null(r.payload.type_url); /* no value: answered on acceptance */
		spawn_reply_fini(&r);
		int64_t total = -1;
		char msg[200];
		rc = itc_get(client, ITC_COUNTER, &total, msg, sizeof msg);
		ck_assert_msg(rc == SPAWN_OK, "Get: %s: %s", spawn_status_name(rc), msg);
		ck_assert_msg(total == i,
		              "round %d: Get saw %" PRId64 " (ran before the async Add)", i, total);
	}
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host);
	it_gateway_stop(&gw);
}
END_TEST

static Suite *flow_suite(void)
{
	Suite *s = suite_create("integration_flow");
	struct {
		const char *name;
		const TTest *test;
		double timeout;
	} cases[] = {
	    {"round_trip", add_add_get_makes_a_round_trip, 30},
	    {"thousand_actors", a_thousand_actors_in_flight_at_once_run_one_call_at_a_time, 120},
	    {"host_killed", a_host_killed_mid_invocation_fails_the_call_and_keeps_the_state, 40},
	    {"takeover", a_second_host_takes_over_when_one_dies, 40},
	    {"async", an_accepted_async_invocation_runs_before_later_calls, 40},
	    {"mailbox_fifo", queued_invocations_run_in_arrival_order, 40},
	    {"host_churn", hosts_dying_under_load_lose_no_acknowledged_add, 90},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_checked_fixture(tc, NULL, teardown);
		tcase_set_timeout(tc, (double)it_ms((int64_t)cases[i].timeout));
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	return it_run(flow_suite());
}
