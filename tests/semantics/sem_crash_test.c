/* sem_crash_test.c - side effects across gateway crashes, end to end: the
 * real gateway (crashed on purpose at its fault points, SPAWN_FAULT),
 * sem-host (libspawn), a libspawn client.
 *
 * A checkpointed turn's side effects commit with its state (the outbox)
 * and are delivered after the commit; a crash before the delivery is
 * repaired by the restarted gateway on its own (no call needed), and a
 * crash after the target applied an effect does not apply it twice (the
 * target's stored idempotency keys). A side effect scheduled for later is
 * stored durably and fires once, at its time, across a restart.
 *
 * Each gateway's log is DIR/<its name>.log (gw, gw2, gw3), so a line
 * counted in one is that gateway's doing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semt.h"

#define FAULT_EXIT 86 /* the gateway's exit code at a fault point */

static it_world w;
static semt_gw g;
static spawn_client *cl;

static const char *const fault_commit[] = {"SPAWN_FAULT=exit-after-outbox-commit", NULL};
static const char *const fault_ack[] = {"SPAWN_FAULT=exit-after-outbox-ack", NULL};

/* connect_client (re)connects cl to the current gateway. */
static void connect_client(void)
{
	if (cl)
		spawn_client_destroy(cl);
	cl = NULL;
	ck_assert_int_eq(spawn_client_create(&cl, g.gw.target), SPAWN_OK);
}

static void up(const char *name, const char *const env[])
{
	it_world_init(&w, name);
	semt_gateway_start_env(&w, &g, "gw", "state.db", NULL, env);
	if (env)
		/* The fault point is armed, or the test would prove nothing. */
		semt_expect_log(g.gw.p, "this process exits with code 86", 5000, NULL, 0);
	connect_client();
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

/* restart_clean restarts the gateway with SIGTERM (exit 0 asserted), waits
 * for host h to register again and reconnects the client. */
static void restart_clean(it_proc *h, const char *name)
{
	semt_gateway_restart(&w, &g, name, "state.db", NULL);
	semt_expect_line(h, "registered", 30000);
	connect_client();
}

/* expect_settled: after a clean restart, activating a and b (a's outbox
 * would be redelivered on its activation, before a.Get returns, and reach
 * b's mailbox before b.Get) shows the counts and no delivery at all. */
static void expect_settled(it_proc *h, int64_t a_n, int64_t b_n)
{
	ck_assert_int_eq(call("a", "Get", NULL).n, a_n);
	semt_out o = call("b", "Get", NULL);
	ck_assert_int_eq(o.n, b_n);
	ck_assert_str_eq(o.text, "fx");
	ck_assert_int_eq(it_proc_count_lines(h, "next b"), 0);
	ck_assert_int_eq(semt_log_count(g.gw.p, "effects recovery:"), 0);
	ck_assert_int_eq(semt_log_count(g.gw.p, "redelivering"), 0);
	ck_assert_int_eq(semt_log_count(g.gw.p, "already applied"), 0);
}

/* ---- a crash between the commit and the delivery ----------------------------- */

START_TEST(effects_committed_before_a_crash_are_delivered_after_the_restart)
{
	up("crash_commit", fault_commit);
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);

	/* a's checkpointed turn emits an effect to b (checkpointed too): the
	 * gateway commits a's state with the effect in its outbox and dies
	 * before replying or delivering. */
	Sem__Msg e = semt_msg("fx", "b", "Next");
	e.checkpoint = true;
	semt_call c = {.system = "sem", .actor = "a", .action = "Effect", .msg = &e};
	semt_out o;
	int rc = semt_invoke(cl, &c, &o, 15000);
	ck_assert_msg(rc != SPAWN_OK, "a.Effect answered OK (%s) by a gateway that exited first",
	              o.text);
	it_proc *old = g.gw.p;
	semt_gateway_expect_exit(&g, FAULT_EXIT, 20000);
	ck_assert_int_eq(semt_log_count(old, "outbox committed, not delivered: exiting now"), 1);
	ck_assert_int_eq(it_proc_count_lines(h, "next b"), 0);

	/* A new gateway, no fault: once the host is back, b gets the effect
	 * without anyone calling a. */
	semt_gateway_respawn(&w, &g, "gw2", NULL, NULL);
	semt_expect_line(h, "registered", 30000);
	semt_expect_line(h, "next b fx caller=sem/a", 30000);
	semt_expect_log(g.gw.p, "effects recovery: 1 actors have undelivered effects", 5000, NULL,
	                0);
	semt_expect_log(g.gw.p, "actor sem/a: redelivering 1 effects", 5000, NULL, 0);
	connect_client();
	o = call("b", "Get", NULL);
	ck_assert_int_eq(o.n, 1);
	ck_assert_str_eq(o.text, "fx");
	/* a's turn committed before the crash: its state change is there. */
	ck_assert_int_eq(call("a", "Get", NULL).n, 1);
	ck_assert_int_eq(it_proc_count_lines(h, "next b"), 0);

	/* The delivery was acknowledged and a's outbox cleared: a clean
	 * restart delivers nothing again. */
	restart_clean(h, "gw3");
	expect_settled(h, 1, 1);

	semt_host_stop(h);
	down();
}
END_TEST

/* ---- a crash after the delivery, before the outbox is cleared ----------------- */

START_TEST(an_effect_applied_before_a_crash_is_not_applied_again)
{
	up("crash_ack", fault_ack);
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);

	/* b applies (and saves) the effect; the gateway dies when it is
	 * acknowledged, before a's outbox is cleared in the store. a's caller
	 * may or may not have its reply by then: not asserted. */
	Sem__Msg e = semt_msg("fx", "b", "Next");
	e.checkpoint = true;
	semt_call c = {.system = "sem", .actor = "a", .action = "Effect", .msg = &e};
	semt_out o;
	(void)semt_invoke(cl, &c, &o, 15000);
	semt_expect_line(h, "next b fx caller=sem/a", 10000);
	it_proc *old = g.gw.p;
	semt_gateway_expect_exit(&g, FAULT_EXIT, 20000);
	ck_assert_int_eq(
	    semt_log_count(old, "effects acknowledged, outbox not cleared: exiting now"), 1);

	/* The restarted gateway redelivers a's stored outbox; b skips it. */
	semt_gateway_respawn(&w, &g, "gw2", NULL, NULL);
	semt_expect_line(h, "registered", 30000);
	char line[1024];
	semt_expect_log(g.gw.p, "already applied; skipped", 30000, line, sizeof line);
	/* keys are length-prefixed: len(system):system len(name):name@rev#n */
	ck_assert_msg(strstr(line, "actor sem/b: delivery 3:sem1:a@") != NULL,
	              "skipped by whom? '%s'", line);
	ck_assert_int_eq(semt_log_count(g.gw.p, "already applied; skipped"), 1);
	semt_expect_log(g.gw.p, "actor sem/a: redelivering 1 effects", 5000, NULL, 0);
	connect_client();
	o = call("b", "Get", NULL);
	ck_assert_int_eq(o.n, 1);
	ck_assert_str_eq(o.text, "fx");
	ck_assert_int_eq(call("a", "Get", NULL).n, 1);
	ck_assert_int_eq(it_proc_count_lines(h, "next b"), 0);

	/* The skip acknowledged the entry: a clean restart delivers nothing. */
	restart_clean(h, "gw3");
	expect_settled(h, 1, 1);

	semt_host_stop(h);
	down();
}
END_TEST

/* ---- a side effect scheduled for later ---------------------------------------- */

/* next_b_at waits for host h's next "next b TEXT caller=sem/a at=MS" line,
 * copies TEXT into text and returns MS (the host's wall clock). */
static int64_t next_b_at(it_proc *h, char *text, size_t n)
{
	char line[1024];
	if (!it_proc_wait_line(h, "next b ", it_ms(30000), line, sizeof line)) {
		it_proc_dump(h);
		ck_abort_msg("no scheduled effect reached b within %lld ms",
		             (long long)it_ms(30000));
	}
	char t[256];
	long long at = 0;
	ck_assert_msg(sscanf(line, "next b %255s caller=sem/a at=%lld", t, &at) == 2,
	              "unexpected line '%s'", line);
	snprintf(text, n, "%s", t);
	return at;
}

START_TEST(a_scheduled_effect_fires_once_at_its_time_across_a_restart)
{
	up("scheduled", NULL);
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);

	/* Two effects to b due in ~3 s: one from a plain turn of a, one from
	 * a checkpointed turn (its outbox entry becomes the scheduled row). */
	int64_t due = semt_wall_ms() + it_ms(3000);
	Sem__Msg e = semt_msg("late", "b", "Next");
	e.at_ms = due;
	Sem__Msg ec = semt_msg("late-ckpt", "b", "Next");
	ec.at_ms = due;
	ec.checkpoint = true;
	ck_assert_str_eq(call("a", "Effect", &e).text, "late>a!");
	ck_assert_str_eq(call("a", "Effect", &ec).text, "late-ckpt>a!");
	/* Answered at once, not at the effects' time. */
	int64_t now = semt_wall_ms();
	ck_assert_msg(now < due, "a's caller was answered %lld ms after the due time",
	              (long long)(now - due));
	ck_assert_int_eq(call("b", "Get", NULL).n, 0);

	/* A clean restart before the due time: the effects are in the store. */
	restart_clean(h, "gw2");
	now = semt_wall_ms();
	ck_assert_msg(now < due, "the restart ended %lld ms after the due time: nothing proven",
	              (long long)(now - due));
	ck_assert_int_eq(it_proc_count_lines(h, "next b"), 0);

	/* Each fires once, no earlier than due (by the host's clock). */
	bool seen_plain = false, seen_ckpt = false;
	for (int i = 0; i < 2; i++) {
		char text[256];
		int64_t at = next_b_at(h, text, sizeof text);
		ck_assert_msg(at >= due, "%s reached b %lld ms before its due time", text,
		              (long long)(due - at));
		if (!strcmp(text, "late")) {
			ck_assert_msg(!seen_plain, "'late' reached b twice");
			seen_plain = true;
		} else {
			ck_assert_str_eq(text, "late-ckpt");
			ck_assert_msg(!seen_ckpt, "'late-ckpt' reached b twice");
			seen_ckpt = true;
		}
	}
	ck_assert_int_eq(call("b", "Get", NULL).n, 2);
	ck_assert_int_eq(call("a", "Get", NULL).n, 1); /* its checkpointed turn */

	/* Once only: after another restart, a marker scheduled now fires
	 * after any overdue row (the scheduler claims rows in due order). */
	restart_clean(h, "gw3");
	Sem__Msg mk = semt_msg("marker", "b", "Next");
	mk.at_ms = semt_wall_ms() + it_ms(300);
	ck_assert_str_eq(call("a", "Effect", &mk).text, "marker>a!");
	char text[256];
	next_b_at(h, text, sizeof text);
	ck_assert_str_eq(text, "marker");
	ck_assert_int_eq(call("b", "Get", NULL).n, 3);
	/* Nor is an overdue row waiting to be retried (claimed before the
	 * host was back, it would log so). */
	ck_assert_int_eq(semt_log_count(g.gw.p, "scheduled invocation"), 0);

	semt_host_stop(h);
	down();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("semantics_crash");
	struct {
		const char *name;
		const TTest *t;
		int timeout;
	} cases[] = {
	    {"crash_commit", effects_committed_before_a_crash_are_delivered_after_the_restart, 180},
	    {"crash_ack", an_effect_applied_before_a_crash_is_not_applied_again, 180},
	    {"scheduled", a_scheduled_effect_fires_once_at_its_time_across_a_restart, 180},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, (double)it_ms(cases[i].timeout * 1000) / 1000.0);
		tcase_add_test(tc, cases[i].t);
		suite_add_tcase(s, tc);
	}
	return it_run(s);
}
