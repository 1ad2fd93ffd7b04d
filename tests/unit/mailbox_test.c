/* mailbox_test.c - an actor's mailbox (gateway/runtime/mailbox.c) against a
 * fake host: a queued call leaves at its deadline while its actor is busy
 * or HELD (its bytes given back at once, the order of the others kept),
 * and the request bytes queued per actor (--mailbox-bytes) and per
 * gateway (--queued-bytes) are bounded with RESOURCE_EXHAUSTED naming the
 * flag; a call whose caller went away (gw_runtime_cancel) leaves the
 * mailbox or the host's queue at once, or keeps its actor HELD when written. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt_fixture.h"

#define SYS "mailbox-system"

static gw_runtime_opts ropts;

static int64_t now_ms(void)
{
	return spawn_now_ns() / 1000000;
}

/* "a1", "a2": NAMED, stateless, one action Add. */
static void register_all(void)
{
	Spawn__Actors__ActorSettings named = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	named.kind = SPAWN__ACTORS__KIND__NAMED;
	rtf_actor actors[] = {{"a1", &named}, {"a2", &named}};
	char why[256] = "";
	ck_assert_int_eq(rtf_register(&host, SYS, actors, 2, (const char *const[]){"Add", NULL},
	                              why, sizeof why),
	                 GW_OK);
}

static void start_runtime(void)
{
	ck_assert_int_eq(gw_registry_create(&reg, NULL), GW_OK);
	register_all();
	ck_assert_int_eq(gw_runtime_create(&rt, &ropts, reg, persist), GW_OK);
}

static void setup(void)
{
	rtf_open("mailbox");
	memset(&ropts, 0, sizeof ropts);
	ropts.shards = 4;
	ropts.mailbox_max = 100;
	ropts.host_timeout_ms = 60000;
}

static void teardown(void)
{
	rtf_close();
}

/* ---- helpers ------------------------------------------------------------------- */

static Spawn__InvocationRequest *req_new(spawn_arena *a, const char *actor, size_t payload)
{
	Spawn__InvocationRequest *rq = rtf_request(a, SYS, actor, "Add");
	rq->value = spawn_arena_alloc(a, sizeof *rq->value);
	google__protobuf__any__init(rq->value);
	rq->value->type_url = "type.googleapis.com/test.Add";
	rq->value->value.data = spawn_arena_alloc(a, payload ? payload : 1);
	memset(rq->value->value.data, 'p', payload);
	rq->value->value.len = payload;
	rq->payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	return rq;
}

/* invoke: a call to actor with payload bytes and a deadline deadline_in ms
 * from now (0: none), answered to on_done with tag. */
static void invoke(const char *actor, size_t payload, int64_t deadline_in, int tag)
{
	gw_inv *inv = gw_inv_create(0);
	inv->req = req_new(&inv->arena, actor, payload);
	inv->done = on_done;
	inv->user = (void *)(intptr_t)tag;
	inv->deadline_ms = deadline_in ? now_ms() + deadline_in : 0;
	gw_runtime_invoke(rt, inv);
}

/* answer task i with an empty response (no state: the actors are stateless). */
static void answer(size_t i)
{
	uint64_t id;
	gw_inv *inv = rtf_take(&host, i, &id);
	Spawn__ActorInvocationResponse r = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	rtf_respond(inv, id, &r);
}

static size_t ntasks(void)
{
	pthread_mutex_lock(&host.mu);
	size_t n = host.ntasks;
	pthread_mutex_unlock(&host.mu);
	return n;
}

static const char *task_actor(size_t i)
{
	return fake_task_inv(&host, i)->actor->name;
}

static size_t task_payload(size_t i)
{
	return fake_task_inv(&host, i)->value->value.len;
}

static gw_runtime_stats stats(void)
{
	gw_runtime_stats st;
	memset(&st, 0, sizeof st);
	gw_runtime_get_stats(rt, &st);
	return st;
}

/* ---- deadlines of queued calls ------------------------------------------------- */

START_TEST(a_queued_call_leaves_at_its_deadline_while_its_actor_is_busy)
{
	start_runtime();
	invoke("a1", 8, 0, 1); /* dispatched, never answered here: a1 stays BUSY */
	ck_assert(fake_host_wait(&host, 1));
	invoke("a1", 100, 0, 2);       /* queued, no deadline */
	invoke("a1", 1 << 20, 150, 3); /* queued, 1 MiB, deadline in 150 ms */
	invoke("a1", 200, 0, 4);       /* queued, no deadline */
	ck_assert_uint_ge(stats().queued_bytes, 1 << 20);
	int64_t t0 = now_ms();
	ck_assert(wait_outs(1)); /* without anything answered */
	int64_t took = now_ms() - t0;
	ck_assert_int_eq(outs[0].tag, 3);
	ck_assert_int_eq(outs[0].err, GW_ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "deadline passed while queued for actor a1"));
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "busy"));
	ck_assert_int_lt(took, 1000);
	/* its bytes were given back when it left, not at a1's next turn */
	gw_runtime_stats st = stats();
	ck_assert_uint_lt(st.queued_bytes, 1024);
	ck_assert_uint_eq(st.queued_expired, 1);
	ck_assert_uint_eq(ntasks(), 1);
	/* the others keep their order: 2 then 4 */
	answer(0);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_uint_eq(task_payload(1), 100);
	answer(1);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_uint_eq(task_payload(2), 200);
	answer(2);
	ck_assert(wait_outs(4));
	ck_assert_uint_eq(ntasks(), 3);
	ck_assert_uint_eq(stats().queued_bytes, 0);
}
END_TEST

START_TEST(queued_calls_leave_at_their_deadline_while_their_actor_is_held)
{
	host.written = true; /* a timed-out task may still run: HELD */
	start_runtime();
	invoke("a1", 8, 100, 1);
	ck_assert(fake_host_wait(&host, 1));
	for (int i = 0; i < 20; i++)
		invoke("a1", 64 * 1024, 200 + 10 * i, 10 + i);
	ck_assert(wait_outs(21));
	for (size_t i = 0; i < 21; i++)
		ck_assert_int_eq(outs[i].err, GW_ETIMEDOUT);
	ck_assert_int_eq(outs[0].tag, 1); /* the turn itself, then the queued ones */
	ck_assert_ptr_nonnull(strstr(outs[20].msg, "while queued"));
	ck_assert_uint_eq(stats().queued_bytes, 0);
	ck_assert_uint_eq(stats().queued_expired, 20);
	ck_assert_uint_eq(ntasks(), 1); /* nothing was sent while HELD */
	/* the host's late answer frees the turn; a new call runs */
	ck_assert_uint_eq(host.nheld, 1);
	gw_runtime_release(rt, host.held);
	invoke("a1", 8, 0, 99);
	ck_assert(fake_host_wait(&host, 2));
	answer(1);
	ck_assert(wait_outs(22));
	ck_assert_int_eq(outs[21].err, GW_OK);
}
END_TEST

/* ---- bytes bounds -------------------------------------------------------------- */

START_TEST(the_bytes_queued_for_one_actor_are_bounded)
{
	ropts.mailbox_bytes = 100 * 1024;
	start_runtime();
	invoke("a1", 8, 0, 1);
	ck_assert(fake_host_wait(&host, 1));
	invoke("a1", 40 * 1024, 0, 2);
	invoke("a1", 40 * 1024, 0, 3);
	ck_assert_uint_eq(outs_count(), 0);
	invoke("a1", 40 * 1024, 0, 4); /* 120 KiB would wait: refused at once */
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].tag, 4);
	ck_assert_int_eq(outs[0].err, GW_EFULL);
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "mailbox of actor a1 is full"));
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "--mailbox-bytes"));
	ck_assert_uint_eq(stats().queued_refused, 1);
	/* another actor is not affected */
	invoke("a2", 40 * 1024, 0, 5);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_str_eq(task_actor(1), "a2");
	answer(1);
	/* a turn of a1 gives room back */
	answer(0);
	ck_assert(fake_host_wait(&host, 3));
	invoke("a1", 40 * 1024, 0, 6);
	ck_assert(wait_outs(3));
	ck_assert_uint_eq(outs_count(), 3);                 /* 6 is queued, not refused */
	ck_assert_uint_gt(stats().queued_bytes, 80 * 1024); /* 3 and 6 wait */
	ck_assert_uint_lt(stats().queued_bytes, 81 * 1024);
}
END_TEST

START_TEST(the_bytes_queued_in_the_gateway_are_bounded)
{
	ropts.queued_bytes = 100 * 1024;
	start_runtime();
	invoke("a1", 8, 0, 1);
	invoke("a2", 8, 0, 2);
	ck_assert(fake_host_wait(&host, 2));
	invoke("a1", 40 * 1024, 0, 3);
	invoke("a2", 40 * 1024, 0, 4);
	ck_assert_uint_eq(outs_count(), 0);
	invoke("a2", 40 * 1024, 0, 5);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].tag, 5);
	ck_assert_int_eq(outs[0].err, GW_EFULL);
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "--queued-bytes"));
	ck_assert_uint_eq(stats().queued_refused, 1);
	/* a small call still fits */
	invoke("a1", 1000, 0, 6);
	ck_assert_uint_eq(outs_count(), 1);
	ck_assert_uint_gt(stats().queued_bytes, 81 * 1024);
}
END_TEST

/* wait_active waits (3 s at most) until n actors are active. */
static bool wait_active(uint64_t n)
{
	for (int i = 0; i < 300; i++) {
		if (stats().active_actors == n)
			return true;
		usleep(10000);
	}
	return stats().active_actors == n;
}

/* An actor activated for a call that was refused (or whose every call
 * failed) is not kept for ever: it idles out like any other. */
START_TEST(an_actor_whose_only_call_was_refused_idles_out)
{
	ropts.mailbox_bytes = 1024;
	ropts.deactivate_ms = 100;
	start_runtime();
	invoke("a2", 4096, 0, 1);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_EFULL);
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "--mailbox-bytes"));
	ck_assert(wait_active(0));
	/* and with no host at all: the call fails, the actor idles out */
	host.live = false;
	invoke("a1", 8, 0, 2);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_EUNAVAIL);
	ck_assert(wait_active(0));
}
END_TEST

/* ---- a caller that goes away (gw_runtime_cancel) -------------------------------- */

/* Invocations kept alive past their done (gw_runtime_cancel's contract):
 * on_kept records the outcome like on_done and leaves inv to the test. */
static gw_inv *kept[4096];
static size_t nkept;
static int rdone[4096]; /* done calls per tag */

static void on_kept(gw_inv *inv)
{
	pthread_mutex_lock(&omu);
	int tag = (int)(intptr_t)inv->user;
	if (nouts < sizeof outs / sizeof outs[0]) {
		outcome *o = &outs[nouts];
		o->err = inv->err;
		snprintf(o->msg, sizeof o->msg, "%s", inv->msg);
		o->tag = tag;
	}
	nouts++;
	rdone[tag]++;
	pthread_cond_broadcast(&ocv);
	pthread_mutex_unlock(&omu);
}

static gw_inv *invoke_kept(const char *actor, size_t payload, int tag, bool submit)
{
	gw_inv *inv = gw_inv_create(0);
	inv->req = req_new(&inv->arena, actor, payload);
	inv->done = on_kept;
	inv->user = (void *)(intptr_t)tag;
	kept[nkept++] = inv;
	if (submit)
		gw_runtime_invoke(rt, inv);
	return inv;
}

static void free_kept(void)
{
	for (size_t i = 0; i < nkept; i++)
		gw_inv_destroy(kept[i]);
	nkept = 0;
	memset(rdone, 0, sizeof rdone);
}

/* answer_try answers task i unless it was cancelled (as host.c does under
 * its lock: a result and a cancel of one task, only one of them wins). */
static bool answer_try(size_t i)
{
	pthread_mutex_lock(&host.mu);
	if (host.tasks[i].answered) {
		pthread_mutex_unlock(&host.mu);
		return false;
	}
	host.tasks[i].answered = true;
	gw_inv *inv = host.tasks[i].inv;
	uint64_t id = host.tasks[i].id;
	/* delivered under the host's lock, as host.c's pending table would
	 * hand it out: a cancel meanwhile sees it gone */
	pthread_mutex_unlock(&host.mu);
	Spawn__ActorInvocationResponse r = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	rtf_respond(inv, id, &r);
	return true;
}

START_TEST(a_cancelled_queued_call_leaves_the_mailbox_at_once)
{
	start_runtime();
	invoke_kept("a1", 8, 1, true); /* a1 BUSY, never answered until the end */
	ck_assert(fake_host_wait(&host, 1));
	gw_inv *big = invoke_kept("a1", 1 << 20, 2, true); /* queued, no deadline */
	invoke_kept("a1", 200, 3, true);
	ck_assert_uint_ge(stats().queued_bytes, 1 << 20);
	gw_runtime_cancel(rt, big);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].tag, 2);
	ck_assert_int_eq(outs[0].err, GW_ECANCELLED);
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "cancelled the call while it was queued"));
	ck_assert_uint_lt(stats().queued_bytes, 1024); /* given back at once */
	ck_assert_uint_eq(stats().cancelled, 1);
	gw_runtime_cancel(rt, big); /* again: nothing, done ran once */
	ck_assert_uint_eq(outs_count(), 1);
	/* it never runs: the next turn is call 3 */
	answer(0);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_uint_eq(task_payload(1), 200);
	answer(1);
	ck_assert(wait_outs(3));
	ck_assert_uint_eq(ntasks(), 2);
	ck_assert_int_eq(rdone[2], 1);
	free_kept();
}
END_TEST

START_TEST(a_cancelled_unsent_task_leaves_the_host_queue_and_the_actor_goes_on)
{
	start_runtime(); /* host.written = false: a cancelled task was still queued */
	gw_inv *first = invoke_kept("a1", 8, 1, true);
	ck_assert(fake_host_wait(&host, 1));
	invoke_kept("a1", 300, 2, true);
	gw_runtime_cancel(rt, first);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].tag, 1);
	ck_assert_int_eq(outs[0].err, GW_ECANCELLED);
	ck_assert(host.tasks[0].answered); /* the target cancelled it */
	ck_assert_uint_eq(host.nheld, 0);
	/* the actor took its next turn at once */
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_uint_eq(task_payload(1), 300);
	answer(1);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_OK);
	ck_assert_uint_eq(stats().cancelled, 1);
	free_kept();
}
END_TEST

START_TEST(a_cancelled_written_task_keeps_its_actor_held)
{
	host.written = true;
	start_runtime();
	gw_inv *first = invoke_kept("a1", 8, 1, true);
	ck_assert(fake_host_wait(&host, 1));
	invoke_kept("a1", 300, 2, true);
	gw_runtime_cancel(rt, first);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_ECANCELLED);
	/* the host may still run it: no second turn is sent */
	ck_assert_uint_eq(host.nheld, 1);
	ck_assert_uint_eq(ntasks(), 1);
	ck_assert_uint_eq(outs_count(), 1);
	gw_runtime_release(rt, host.held); /* its (dropped) answer, or its end */
	ck_assert(fake_host_wait(&host, 2));
	answer(1);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].tag, 2);
	ck_assert_int_eq(outs[1].err, GW_OK);
	free_kept();
}
END_TEST

START_TEST(a_cancel_after_the_answer_or_before_the_call_is_queued)
{
	start_runtime();
	gw_inv *done = invoke_kept("a1", 8, 1, true);
	ck_assert(fake_host_wait(&host, 1));
	answer(0);
	ck_assert(wait_outs(1));
	gw_runtime_cancel(rt, done); /* finished: a no-op */
	ck_assert_uint_eq(outs_count(), 1);
	ck_assert_int_eq(outs[0].err, GW_OK);
	/* cancelled before it reached the runtime: refused when it gets there */
	gw_inv *early = invoke_kept("a1", 8, 2, false);
	gw_runtime_cancel(rt, early);
	gw_runtime_invoke(rt, early);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_ECANCELLED);
	ck_assert_uint_eq(ntasks(), 1);
	ck_assert_uint_eq(stats().cancelled, 0); /* nothing had to leave a queue */
	free_kept();
}
END_TEST

typedef struct racer {
	gw_inv *a, *b;
} racer;

static void *race_cancel(void *arg)
{
	racer *r = arg;
	gw_runtime_cancel(rt, r->a);
	gw_runtime_cancel(rt, r->b);
	return NULL;
}

/* A cancel racing the result of the same turn, and the dispatch of the
 * call queued behind it: every call completes exactly once, the actor is
 * never left BUSY, no memory is touched after done (ASan). */
START_TEST(a_cancel_racing_the_result_completes_each_call_once)
{
	start_runtime();
	size_t sent = 0;
	int ok = 0, cancelled = 0;
	for (int it = 0; it < 600; it++) {
		racer r;
		r.a = invoke_kept("a1", 8, 2 * it, true);
		ck_assert(fake_host_wait(&host, sent + 1));
		r.b = invoke_kept("a1", 16, 2 * it + 1, true); /* queued behind a */
		pthread_t th;
		ck_assert_int_eq(pthread_create(&th, NULL, race_cancel, &r), 0);
		answer_try(sent); /* a's result, unless the cancel won */
		pthread_join(th, NULL);
		/* b was cancelled (queued or unsent) before anyone answered it */
		size_t n = ntasks();
		for (size_t i = sent + 1; i < n; i++)
			ck_assert(!answer_try(i));
		sent = n;
		ck_assert(wait_outs((size_t)(2 * it + 2)));
		ck_assert_int_eq(rdone[2 * it], 1);
		ck_assert_int_eq(rdone[2 * it + 1], 1);
		ck_assert_int_eq(r.b->err, GW_ECANCELLED);
		ck_assert(r.a->err == GW_OK || r.a->err == GW_ECANCELLED);
		ok += r.a->err == GW_OK;
		cancelled += r.a->err == GW_ECANCELLED;
	}
	ck_assert_uint_eq(outs_count(), 1200);
	ck_assert_uint_eq(stats().queued_bytes, 0);
	/* the actor is free: a last call runs */
	invoke_kept("a1", 8, 4000, true);
	ck_assert(fake_host_wait(&host, sent + 1));
	ck_assert(answer_try(sent));
	ck_assert(wait_outs(1201));
	ck_assert_int_eq(rdone[4000], 1);
	fprintf(stderr, "race: %d answered, %d cancelled first\n", ok, cancelled);
	free_kept();
}
END_TEST

static Suite *mailbox_suite(void)
{
	rtf_case cases[] = {
	    {"deadline-busy", a_queued_call_leaves_at_its_deadline_while_its_actor_is_busy},
	    {"deadline-held", queued_calls_leave_at_their_deadline_while_their_actor_is_held},
	    {"mailbox-bytes", the_bytes_queued_for_one_actor_are_bounded},
	    {"queued-bytes", the_bytes_queued_in_the_gateway_are_bounded},
	    {"refused-idles-out", an_actor_whose_only_call_was_refused_idles_out},
	    {"cancel-queued", a_cancelled_queued_call_leaves_the_mailbox_at_once},
	    {"cancel-unsent", a_cancelled_unsent_task_leaves_the_host_queue_and_the_actor_goes_on},
	    {"cancel-written", a_cancelled_written_task_keeps_its_actor_held},
	    {"cancel-finished-or-early", a_cancel_after_the_answer_or_before_the_call_is_queued},
	    {"cancel-race", a_cancel_racing_the_result_completes_each_call_once},
	};
	return RTF_SUITE("mailbox", cases, setup, teardown);
}

int main(void)
{
	return rtf_run(mailbox_suite());
}
