/* sem_context_test.c - across systems and languages, and what the Context
 * carries: the caller's ActorId, the invocation's metadata, the actor's
 * tags (stored with the state, back after a gateway restart). The real
 * gateway, sem-host (libspawn) and sem_host.py (Python SDK).
 */
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

static semt_out call_md(const char *system, const char *actor, const char *action,
                        const Sem__Msg *m, const spawn_metadata *md, size_t n_md)
{
	semt_call c = {
	    .system = system, .actor = actor, .action = action, .msg = m, .md = md, .n_md = n_md};
	semt_out o;
	int rc = semt_invoke(cl, &c, &o, 15000);
	ck_assert_msg(rc == SPAWN_OK, "%s/%s.%s: %s %s", system, actor, action,
	              spawn_status_name(rc), o.msg);
	return o;
}

static semt_out call(const char *system, const char *actor, const char *action, const Sem__Msg *m)
{
	return call_md(system, actor, action, m, NULL, 0);
}

/* ---- cross-system ------------------------------------------------------------- */

START_TEST(side_effects_cross_systems_and_the_callee_sees_the_caller)
{
	up("cross_system");
	/* System A on the C host, system B on the Python host. */
	it_proc *ha = semt_c_host(&w, "host-a", &g, "sysA", NULL);
	it_proc *hb = semt_py_host(&w, "host-b", &g, "sysB");

	/* A's actor (C) fires an effect at B's actor (Python). */
	Sem__Msg m = semt_msg("hi", "py", "Next");
	m.to_system = "sysB";
	semt_out o = call("sysA", "a", "Effect", &m);
	ck_assert_str_eq(o.text, "hi>a!");
	semt_expect_line(hb, "next py hi caller=sysA/a", 10000);

	/* And back: B's actor (Python) at A's actor (C). */
	Sem__Msg back = semt_msg("yo", "b", "Next");
	back.to_system = "sysA";
	o = call("sysB", "py", "Effect", &back);
	ck_assert_str_eq(o.text, "yo>py!");
	semt_expect_line(ha, "next b yo caller=sysB/py", 10000);

	/* The targets' turns were real turns. */
	o = call("sysB", "py", "Get", NULL);
	ck_assert_int_eq(o.n, 1);
	ck_assert_str_eq(o.text, "hi");
	ck_assert_int_eq(call("sysA", "b", "Get", NULL).n, 1);
	/* The systems stay apart: sysA has no "py", sysB no "a". */
	semt_call miss = {.system = "sysA", .actor = "py", .action = "Get"};
	ck_assert_int_eq(semt_invoke(cl, &miss, &o, 15000), SPAWN_NOT_FOUND);

	semt_host_stop(hb);
	semt_host_stop(ha);
	down();
}
END_TEST

/* ---- cross-language ---------------------------------------------------------- */

START_TEST(pipe_and_forward_cross_languages)
{
	up("cross_language");
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);
	it_proc *py = semt_py_host(&w, "py", &g, "sem");

	/* C pipes to Python. */
	Sem__Msg m = semt_msg("x", "py", "Next");
	semt_out o = call("sem", "a", "Pipe", &m);
	ck_assert_str_eq(o.text, "x>a>py");
	ck_assert_str_eq(o.caller, "sem/a");
	semt_expect_line(py, "next py x>a caller=sem/a", 5000);

	/* Python pipes to C. */
	m = semt_msg("x", "b", "Next");
	o = call("sem", "py", "Pipe", &m);
	ck_assert_str_eq(o.text, "x>py>b");
	ck_assert_str_eq(o.caller, "sem/py");
	semt_expect_line(h, "next b x>py caller=sem/py", 5000);

	/* Python forwards to C, C forwards to Python. */
	m = semt_msg("f", "c", "Next");
	o = call("sem", "py", "Forward", &m);
	ck_assert_str_eq(o.text, "f>c");
	ck_assert_str_eq(o.caller, "sem/py");
	m = semt_msg("g", "py", "Next");
	o = call("sem", "c", "Forward", &m);
	ck_assert_str_eq(o.text, "g>py");
	ck_assert_str_eq(o.caller, "sem/c");

	/* A cycle across the languages is cut as well. */
	m = semt_msg("loop", "py", "Pipe");
	semt_call c = {.system = "sem", .actor = "a", .action = "Pipe", .msg = &m};
	ck_assert_int_eq(semt_invoke(cl, &c, &o, 15000), SPAWN_INVALID_ARGUMENT);
	ck_assert_msg(strstr(o.msg, "hops") != NULL, "unclear error: '%s'", o.msg);

	semt_host_stop(py);
	semt_host_stop(h);
	down();
}
END_TEST

/* ---- metadata ------------------------------------------------------------------ */

START_TEST(invocation_metadata_reaches_the_host_and_follows_pipes)
{
	up("metadata");
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);
	it_proc *py = semt_py_host(&w, "py", &g, "sem");

	const spawn_metadata md[] = {{"trace", "t-1"}, {"other", "x"}};
	ck_assert_str_eq(call_md("sem", "a", "Meta", NULL, md, 2).text, "t-1");
	ck_assert_str_eq(call_md("sem", "py", "Meta", NULL, md, 2).text, "t-1");
	ck_assert_str_eq(call("sem", "a", "Meta", NULL).text, "-");
	ck_assert_str_eq(call("sem", "py", "Meta", NULL).text, "-");

	/* The metadata goes along a pipe, and a forward, across languages. */
	const spawn_metadata md2[] = {{"trace", "t-2"}};
	Sem__Msg m = semt_msg("x", "py", "Meta");
	semt_out o = call_md("sem", "a", "Pipe", &m, md2, 1);
	ck_assert_str_eq(o.text, "t-2");
	ck_assert_str_eq(o.caller, "sem/a");
	m = semt_msg("x", "b", "Meta");
	o = call_md("sem", "py", "Forward", &m, md2, 1);
	ck_assert_str_eq(o.text, "t-2");
	ck_assert_str_eq(o.caller, "sem/py");

	semt_host_stop(py);
	semt_host_stop(h);
	down();
}
END_TEST

/* ---- tags ------------------------------------------------------------------------- */

/* tag_msg is a Tag input setting the n entries of ep (value "" removes). */
static Sem__Msg tag_msg(Sem__Msg__KvEntry **ep, size_t n)
{
	Sem__Msg m = SEM__MSG__INIT;
	m.kv = ep;
	m.n_kv = n;
	return m;
}

static const char *get_tag(const char *actor, const char *key, semt_out *o)
{
	Sem__Msg m = semt_msg(key, NULL, NULL);
	*o = call("sem", actor, "GetTag", &m);
	return o->text;
}

START_TEST(tags_set_by_hosts_are_stored_and_survive_a_gateway_restart)
{
	up("tags");
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);
	it_proc *py = semt_py_host(&w, "py", &g, "sem");

	Sem__Msg__KvEntry e[3], *ep[3];
	for (int i = 0; i < 3; i++) {
		sem__msg__kv_entry__init(&e[i]);
		ep[i] = &e[i];
	}
	e[0].key = "color", e[0].value = "blue";
	e[1].key = "size", e[1].value = "L";
	e[2].key = "gone", e[2].value = "soon";
	Sem__Msg m = tag_msg(ep, 3);
	ck_assert_str_eq(call("sem", "a", "Tag", &m).text, "tagged");
	e[0].value = "green";
	m = tag_msg(ep, 1);
	ck_assert_str_eq(call("sem", "py", "Tag", &m).text, "tagged");
	/* Removing one tag keeps the others. */
	e[0].key = "gone", e[0].value = "";
	m = tag_msg(ep, 1);
	ck_assert_str_eq(call("sem", "a", "Tag", &m).text, "tagged");
	/* A state change beside the tags. */
	Sem__Msg n = semt_msg("s", NULL, NULL);
	call("sem", "a", "Next", &n);

	semt_out o;
	ck_assert_str_eq(get_tag("a", "color", &o), "blue");
	ck_assert_str_eq(get_tag("a", "gone", &o), "-");
	ck_assert_str_eq(get_tag("py", "color", &o), "green");

	/* Restart the gateway on the same store: the hosts reconnect through
	 * the same socket; tags and state come back from the store. */
	semt_gateway_restart(&w, &g, "gw2", "state.db", NULL);
	semt_expect_line(h, "registered", 30000);
	semt_expect_line(py, "registered", 30000);
	spawn_client_destroy(cl);
	ck_assert_int_eq(spawn_client_create(&cl, g.gw.target), SPAWN_OK);

	ck_assert_str_eq(get_tag("a", "color", &o), "blue");
	ck_assert_str_eq(get_tag("a", "size", &o), "L");
	ck_assert_str_eq(get_tag("a", "gone", &o), "-");
	ck_assert_str_eq(get_tag("py", "color", &o), "green");
	o = call("sem", "a", "Get", NULL);
	ck_assert_int_eq(o.n, 1);
	ck_assert_str_eq(o.text, "s");
	/* An actor that never had tags has none. */
	ck_assert_str_eq(get_tag("b", "color", &o), "-");

	semt_host_stop(py);
	semt_host_stop(h);
	down();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("semantics_context");
	struct {
		const char *name;
		const TTest *t;
		int timeout;
	} cases[] = {
	    {"cross_system", side_effects_cross_systems_and_the_callee_sees_the_caller, 180},
	    {"cross_language", pipe_and_forward_cross_languages, 180},
	    {"metadata", invocation_metadata_reaches_the_host_and_follows_pipes, 180},
	    {"tags", tags_set_by_hosts_are_stored_and_survive_a_gateway_restart, 180},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, (double)it_ms(cases[i].timeout * 1000) / 1000.0);
		tcase_add_test(tc, cases[i].t);
		suite_add_tcase(s, tc);
	}
	return it_run(s);
}
