/* sem_gateway_issues_test.c - gateway behaviour found wrong by the
 * semantics work, one test each, failing until the gateway is fixed. Its
 * ctest entry (semantics_gateway_issues_test) is DISABLED until then; run
 * it by hand: ctest -R semantics_gateway_issues --output-on-failure
 * (or the binary, with SPAWN_BUILD_DIR and SPAWN_SOURCE_DIR set).
 */
#include <string.h>

#include "semt.h"

/* Issue: a host cannot remove an actor's last tag.
 *
 * gw_runtime_result (gateway/runtime/runtime.c, "if (uc && uc->n_tags)")
 * replaces the actor's tags only when the host hands back at least one, so
 * a turn whose updated_context.tags is empty - the host removed the last
 * tag - leaves the old tags in memory and in the store. Expected (the
 * tags of the updated context are the actor's tags, as the state is): the
 * tag is gone. Fix: when the response carries an updated_context, replace
 * a->tags with its tags even when there are none (NULL blob, dirty when
 * there were tags before). */
START_TEST(removing_the_last_tag_removes_it)
{
	it_world w;
	it_world_init(&w, "last_tag");
	semt_gw g;
	semt_gateway_start(&w, &g, "gw", "state.db", NULL);
	it_proc *h = semt_c_host(&w, "host", &g, "sem", NULL);
	spawn_client *cl;
	ck_assert_int_eq(spawn_client_create(&cl, g.gw.target), SPAWN_OK);

	Sem__Msg__KvEntry e = SEM__MSG__KV_ENTRY__INIT, *ep = &e;
	Sem__Msg m = SEM__MSG__INIT;
	m.kv = &ep;
	m.n_kv = 1;
	semt_out o;
	semt_call tag = {.system = "sem", .actor = "a", .action = "Tag", .msg = &m};
	e.key = "color", e.value = "blue";
	ck_assert_int_eq(semt_invoke(cl, &tag, &o, 15000), SPAWN_OK);
	e.value = ""; /* sem-host removes the tag: the turn hands back no tags */
	ck_assert_int_eq(semt_invoke(cl, &tag, &o, 15000), SPAWN_OK);

	Sem__Msg q = semt_msg("color", NULL, NULL);
	semt_call get = {.system = "sem", .actor = "a", .action = "GetTag", .msg = &q};
	ck_assert_int_eq(semt_invoke(cl, &get, &o, 15000), SPAWN_OK);
	ck_assert_msg(!strcmp(o.text, "-"), "the removed tag is still there: color=%s", o.text);

	spawn_client_destroy(cl);
	semt_host_stop(h);
	semt_gateway_done(&g);
	it_world_fini(&w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("semantics_gateway_issues");
	TCase *tc = tcase_create("last_tag");
	tcase_set_timeout(tc, (double)it_ms(120000) / 1000.0);
	tcase_add_test(tc, removing_the_last_tag_removes_it);
	suite_add_tcase(s, tc);
	return it_run(s);
}
