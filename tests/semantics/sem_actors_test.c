/* sem_actors_test.c - timer actions and POOLED actors, end to end: the real
 * gateway, sem-host (libspawn) and sem_host.py (Python SDK).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "semt.h"

static it_world w;
static semt_gw g;
static spawn_client *cl;

static void up(const char *name)
{
	it_world_init(&w, name);
	semt_gateway_start(&w, &g, "gw", "state.db", NULL);
	ck_assert_int_eq(spawn_client_create(&cl, g.gw.target), SPAWN_OK);
}

static void down(void)
{
	spawn_client_destroy(cl);
	cl = NULL;
	semt_gateway_done(&g);
	it_world_fini(&w);
}

static semt_out call(const char *actor, const char *action, const Sem__Msg *m)
{
	semt_call c = {.system = "sem", .actor = actor, .action = action, .msg = m};
	semt_out o;
	int rc = semt_invoke(cl, &c, &o, 15000);
	ck_assert_msg(rc == SPAWN_OK, "%s.%s: %s %s", actor, action, spawn_status_name(rc), o.msg);
	return o;
}

/* ---- timers ------------------------------------------------------------------ */

START_TEST(timer_actions_run_with_the_state_while_active)
{
	up("timers");
	/* 50 ms periods: FixedTimerAction.seconds holds milliseconds. Were it
	 * read as seconds, the first tick would come after 50 s, far past the
	 * waits below. */
	const char *const fast[] = {"--tick-ms", "50", NULL};
	it_proc *h = semt_c_host(&w, "host", &g, "sem", fast);
	it_proc *py = semt_py_host(&w, "py", &g, "sem");

	/* Timers run only while the actor is active: activate both. */
	int64_t t0 = it_now_ms();
	semt_out o = call("ticker", "Get", NULL);
	ck_assert_int_le(o.n, 1);
	call("pytick", "Get", NULL);

	/* Each tick sees the state the previous one left: 1, 2, 3 in order. */
	semt_expect_line(h, "tick ticker 1", 5000);
	semt_expect_line(h, "tick ticker 2", 5000);
	semt_expect_line(h, "tick ticker 3", 5000);
	int64_t took = it_now_ms() - t0;
	ck_assert_msg(took < it_ms(4000), "three 50 ms ticks took %lld ms", (long long)took);
	semt_expect_line(py, "tick pytick 3", 5000);

	/* The state changed with no invocation in between, and keeps moving. */
	int64_t n1 = call("ticker", "Get", NULL).n;
	ck_assert_int_ge(n1, 3);
	char line[32];
	snprintf(line, sizeof line, "tick ticker %lld", (long long)n1 + 2);
	semt_expect_line(h, line, 5000);
	ck_assert_int_ge(call("ticker", "Get", NULL).n, n1 + 2);
	ck_assert_int_ge(call("pytick", "Get", NULL).n, 3);

	/* Invocations interleave with the ticks (one turn at a time). */
	Sem__Msg m = semt_msg("hi", NULL, NULL);
	ck_assert_str_eq(call("ticker", "Next", &m).text, "hi>ticker");
	/* Actors without timers never tick. */
	ck_assert_int_eq(it_proc_count_lines(h, "tick a"), 0);

	semt_host_stop(py);
	semt_host_stop(h);
	down();
}
END_TEST

/* ---- pooled ---------------------------------------------------------------------- */

typedef struct gather {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, ok;
	int64_t max_n;
	char err[256];
} gather;

static void on_gathered(void *user, spawn_reply *r)
{
	gather *gt = user;
	int64_t n = -1;
	if (r->status == SPAWN_OK && r->payload.type_url) {
		ProtobufCMessage *m = NULL;
		if (spawn_payload_unpack(&r->payload, &sem__msg__descriptor, &m) == SPAWN_OK) {
			n = ((Sem__Msg *)m)->n;
			protobuf_c_message_free_unpacked(m, NULL);
		}
	}
	pthread_mutex_lock(&gt->mu);
	gt->done++;
	if (r->status == SPAWN_OK)
		gt->ok++;
	else
		snprintf(gt->err, sizeof gt->err, "%s: %s", spawn_status_name(r->status),
		         r->message ? r->message : "");
	if (n > gt->max_n)
		gt->max_n = n;
	pthread_cond_broadcast(&gt->cv);
	pthread_mutex_unlock(&gt->mu);
}

START_TEST(a_pooled_actor_runs_max_pool_size_invocations_at_once)
{
	up("pooled");
	/* max_pool_size 4; 8 workers, so the host is not the bound. */
	const char *const args[] = {"--pool", "4", "--workers", "8", NULL};
	it_proc *h = semt_c_host(&w, "host", &g, "sem", args);

	/* Each Gather blocks until 4 run at once: only a gateway that runs
	 * max_pool_size invocations in parallel lets any of them finish.
	 * Two more than the pool hold must wait for a free slot. */
	gather gt = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, ""};
	Sem__Msg m = semt_msg("g", NULL, NULL);
	spawn_payload p;
	ck_assert_int_eq(spawn_payload_pack(&p, &m.base), SPAWN_OK);
	spawn_request req = {.system = "sem", .actor = "pool", .action = "Gather", .payload = p};
	enum { CALLS = 6 };
	for (int i = 0; i < CALLS; i++)
		ck_assert_int_eq(
		    spawn_client_invoke_async(cl, &req, it_ms(30000), on_gathered, &gt), SPAWN_OK);
	spawn_payload_fini(&p);

	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += it_ms(40000) / 1000;
	pthread_mutex_lock(&gt.mu);
	while (gt.done < CALLS)
		if (pthread_cond_timedwait(&gt.cv, &gt.mu, &until) != 0)
			break;
	int done = gt.done, ok = gt.ok;
	int64_t max_n = gt.max_n;
	char err[256];
	snprintf(err, sizeof err, "%s", gt.err);
	pthread_mutex_unlock(&gt.mu);
	ck_assert_msg(done == CALLS, "only %d of %d Gathers answered", done, CALLS);
	ck_assert_msg(ok == CALLS, "%d of %d Gathers failed; last: %s", CALLS - ok, CALLS, err);
	ck_assert_int_eq(max_n, 4);

	/* Never more than max_pool_size at once. */
	ck_assert_int_eq(call("pool", "Stats", NULL).n, 4);

	semt_host_stop(h);
	down();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("semantics_actors");
	struct {
		const char *name;
		const TTest *t;
		int timeout;
	} cases[] = {
	    {"timers", timer_actions_run_with_the_state_while_active, 120},
	    {"pooled", a_pooled_actor_runs_max_pool_size_invocations_at_once, 120},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, (double)it_ms(cases[i].timeout * 1000) / 1000.0);
		tcase_add_test(tc, cases[i].t);
		suite_add_tcase(s, tc);
	}
	return it_run(s);
}
