/* sem_workflow_test.c - workflows returned by actions, end to end: the real
 * gateway, sem-host (libspawn) and sem_host.py (Python SDK), a libspawn
 * client. Pipe, forward, side effects, broadcast, the hop limit.
 */
#include <signal.h>
#include <string.h>

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

/* call invokes sem/actor.action with m and asserts success. */
static semt_out call(const char *actor, const char *action, const Sem__Msg *m)
{
	semt_call c = {.system = "sem", .actor = actor, .action = action, .msg = m};
	semt_out o;
	int rc = semt_invoke(cl, &c, &o, 15000);
	ck_assert_msg(rc == SPAWN_OK, "%s.%s: %s %s", actor, action, spawn_status_name(rc), o.msg);
	return o;
}

/* ---- pipe ------------------------------------------------------------------ */

START_TEST(pipe_answers_the_caller_with_the_next_actions_reply)
{
	up("pipe");
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);

	/* a's reply "x>a" becomes b.Next's input; the client gets b's reply. */
	Sem__Msg m = semt_msg("x", "b", "Next");
	semt_out o = call("a", "Pipe", &m);
	ck_assert_str_eq(o.text, "x>a>b");
	ck_assert_str_eq(o.caller, "sem/a"); /* b was called by a */
	ck_assert_int_eq(o.n, 1);
	const char *const lines[] = {"pipe a", "next b x>a caller=sem/a", NULL};
	semt_expect_lines(h, lines, 5000);

	/* b's turn was a real turn: its state moved. a's did not change. */
	o = call("b", "Get", NULL);
	ck_assert_int_eq(o.n, 1);
	ck_assert_str_eq(o.text, "x>a");
	o = call("a", "Get", NULL);
	ck_assert_int_eq(o.n, 0);

	/* A pipe to an action that fails hands the caller that failure. */
	Sem__Msg bad = semt_msg("x", "b", "NoSuchAction");
	semt_call c = {.system = "sem", .actor = "a", .action = "Pipe", .msg = &bad};
	ck_assert_int_eq(semt_invoke(cl, &c, &o, 15000), SPAWN_NOT_FOUND);

	semt_host_stop(h);
	down();
}
END_TEST

/* ---- forward ---------------------------------------------------------------- */

START_TEST(forward_feeds_the_next_action_with_the_input)
{
	up("forward");
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);

	/* a replies "ignored"; b.Next gets a's own input "x". */
	Sem__Msg m = semt_msg("x", "b", "Next");
	semt_out o = call("a", "Forward", &m);
	ck_assert_str_eq(o.text, "x>b");
	ck_assert_str_eq(o.caller, "sem/a");
	const char *const lines[] = {"forward a", "next b x caller=sem/a", NULL};
	semt_expect_lines(h, lines, 5000);
	o = call("b", "Get", NULL);
	ck_assert_str_eq(o.text, "x");

	/* Forward from another actor: the caller seen by c is b. */
	Sem__Msg m2 = semt_msg("y", "c", "Next");
	o = call("b", "Forward", &m2);
	ck_assert_str_eq(o.text, "y>c");
	ck_assert_str_eq(o.caller, "sem/b");

	semt_host_stop(h);
	down();
}
END_TEST

/* ---- side effects ---------------------------------------------------------- */

START_TEST(side_effects_fire_after_the_reply_without_delaying_it)
{
	up("effects");
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);

	/* c is busy: its first Block waits for a signal. */
	Sem__Msg first = semt_msg("first", NULL, NULL);
	semt_call blk = {
	    .system = "sem", .actor = "c", .action = "Block", .msg = &first, .async = true};
	semt_out o;
	ck_assert_int_eq(semt_invoke(cl, &blk, &o, 15000), SPAWN_OK);
	semt_expect_line(h, "blocked c first caller=-", 10000);

	/* a's side effect targets the busy c: a's caller is answered at once,
	 * the effect waits in c's mailbox. */
	Sem__Msg e = semt_msg("second", "c", "Block");
	o = call("a", "Effect", &e);
	ck_assert_str_eq(o.text, "second>a!");
	ck_assert_int_eq(it_proc_count_lines(h, "blocked c second"), 0);

	/* Release the first Block: the effect runs, with a as its caller. */
	it_proc_signal(h, SIGUSR1);
	semt_expect_line(h, "unblocked c first", 10000);
	semt_expect_line(h, "blocked c second caller=sem/a", 10000);
	it_proc_signal(h, SIGUSR1);
	semt_expect_line(h, "unblocked c second", 10000);
	o = call("c", "Get", NULL);
	ck_assert_int_eq(o.n, 2);
	ck_assert_str_eq(o.text, "second");

	/* An effect on an actor that does not exist fails for good (logged by
	 * the gateway); the emitter's caller still gets its reply. */
	Sem__Msg lost = semt_msg("lost", "nobody", "Next");
	o = call("a", "Effect", &lost);
	ck_assert_str_eq(o.text, "lost>a!");

	semt_host_stop(h);
	down();
}
END_TEST

/* ---- broadcast --------------------------------------------------------------- */

START_TEST(broadcast_reaches_every_subscriber_active_or_not)
{
	up("broadcast");
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);
	it_proc *py = semt_py_host(&w, "py", &g, "sem");

	/* sub1 is active; sub2 (C, action onNews) and pysub (Python) are not. */
	semt_out o = call("sub1", "Get", NULL);
	ck_assert_int_eq(o.n, 0);

	Sem__Msg m = semt_msg("hello", NULL, NULL);
	m.channel = "news";
	o = call("a", "Publish", &m);
	ck_assert_str_eq(o.text, "published");
	const char *const c_lines[] = {"got sub1 receive hello caller=sem/a",
	                               "got sub2 onNews hello caller=sem/a", NULL};
	semt_expect_lines(h, c_lines, 10000);
	semt_expect_line(py, "got pysub receive hello caller=sem/a", 10000);

	/* Each subscriber's turn counted in its own state. */
	ck_assert_int_eq(call("sub1", "Get", NULL).n, 1);
	ck_assert_int_eq(call("sub2", "Get", NULL).n, 1);
	ck_assert_int_eq(call("pysub", "Get", NULL).n, 1);
	/* Not subscribed: nothing reached loner. Any delivery to it would
	 * have been queued before this Get (same batch as the others). */
	o = call("loner", "Get", NULL);
	ck_assert_int_eq(o.n, 0);
	ck_assert_int_eq(it_proc_count_lines(h, "got loner"), 0);
	ck_assert_int_eq(it_proc_count_lines(h, "got a "), 0);

	/* A channel nobody listens to: a no-op, the publisher is answered. */
	m.channel = "nobody";
	o = call("a", "Publish", &m);
	ck_assert_str_eq(o.text, "published");

	/* A Python publisher reaches the C subscribers too. */
	m.channel = "news";
	m.text = "again";
	o = call("py", "Publish", &m);
	ck_assert_str_eq(o.text, "published");
	const char *const again[] = {"got sub1 receive again caller=sem/py",
	                             "got sub2 onNews again caller=sem/py", NULL};
	semt_expect_lines(h, again, 10000);
	semt_expect_line(py, "got pysub receive again caller=sem/py", 10000);

	semt_host_stop(py);
	semt_host_stop(h);
	down();
}
END_TEST

/* ---- checkpointed turns --------------------------------------------------------- */

START_TEST(a_checkpointed_turns_workflow_runs_after_its_save)
{
	up("checkpoint");
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);

	/* Each turn below changes a's state and is checkpointed: the gateway
	 * holds the workflow until the save committed, then runs it. */
	Sem__Msg m = semt_msg("x", "b", "Next");
	m.checkpoint = true;
	semt_out o = call("a", "Pipe", &m);
	ck_assert_str_eq(o.text, "x>a>b");
	ck_assert_str_eq(o.caller, "sem/a");
	o = call("a", "Forward", &m);
	ck_assert_str_eq(o.text, "x>b");
	Sem__Msg e = semt_msg("fx", "c", "Next");
	e.checkpoint = true;
	o = call("a", "Effect", &e);
	ck_assert_str_eq(o.text, "fx>a!");
	semt_expect_line(h, "next c fx caller=sem/a", 10000);
	ck_assert_int_eq(call("a", "Get", NULL).n, 3);

	/* The saved state is what a restarted gateway reads back. */
	semt_gateway_restart(&w, &g, "gw2", "state.db", NULL);
	semt_expect_line(h, "registered", 30000);
	spawn_client_destroy(cl);
	ck_assert_int_eq(spawn_client_create(&cl, g.gw.target), SPAWN_OK);
	ck_assert_int_eq(call("a", "Get", NULL).n, 3);
	ck_assert_int_eq(call("b", "Get", NULL).n, 2);
	ck_assert_int_eq(call("c", "Get", NULL).n, 1);

	semt_host_stop(h);
	down();
}
END_TEST

/* ---- the hop limit -------------------------------------------------------------- */

START_TEST(a_pipe_cycle_is_cut_by_the_hop_limit)
{
	up("cycle");
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);

	/* a pipes to b.Pipe, which pipes back to a.Pipe, and so on. */
	Sem__Msg m = semt_msg("x", "b", "Pipe");
	semt_call c = {.system = "sem", .actor = "a", .action = "Pipe", .msg = &m};
	semt_out o;
	ck_assert_int_eq(semt_invoke(cl, &c, &o, 15000), SPAWN_INVALID_ARGUMENT);
	ck_assert_msg(strstr(o.msg, "hops") != NULL, "unclear error: '%s'", o.msg);
	/* Every turn before the cut ran: the client's (hop 0) and 16 more
	 * (the gateway's GW_MAX_HOPS); the 17th turn's pipe was refused. */
	ck_assert_int_eq(it_proc_count_lines(h, "pipe "), 17);

	/* Nothing is wedged: both actors answer. */
	ck_assert_int_eq(call("a", "Get", NULL).n, 0);
	Sem__Msg n = semt_msg("after", NULL, NULL);
	ck_assert_str_eq(call("b", "Next", &n).text, "after>b");

	semt_host_stop(h);
	down();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("semantics_workflow");
	struct {
		const char *name;
		const TTest *t;
		int timeout;
	} cases[] = {
	    {"pipe", pipe_answers_the_caller_with_the_next_actions_reply, 120},
	    {"forward", forward_feeds_the_next_action_with_the_input, 120},
	    {"effects", side_effects_fire_after_the_reply_without_delaying_it, 120},
	    {"broadcast", broadcast_reaches_every_subscriber_active_or_not, 180},
	    {"checkpoint", a_checkpointed_turns_workflow_runs_after_its_save, 180},
	    {"cycle", a_pipe_cycle_is_cut_by_the_hop_limit, 120},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, (double)it_ms(cases[i].timeout * 1000) / 1000.0);
		tcase_add_test(tc, cases[i].t);
		suite_add_tcase(s, tc);
	}
	return it_run(s);
}
