/* registry_test.c - actor types, host bindings, picking and liveness. */
#include <check.h>
#include <string.h>

#include "fake_host.h"
#include "registry.h"

static Spawn__Actors__ActorSystem *make_system(const char *sys, const char *actor,
                                               const char **actions, size_t n, int kind,
                                               bool stateful)
{
	static Spawn__Actors__Action acts[8], *ap[8];
	static Spawn__Actors__ActorId id;
	static Spawn__Actors__ActorSettings st;
	static Spawn__Actors__Actor a;
	static Spawn__Actors__Registry__ActorsEntry e, *ep[1];
	static Spawn__Actors__Registry r;
	static Spawn__Actors__ActorSystem s;
	for (size_t i = 0; i < n; i++) {
		spawn__actors__action__init(&acts[i]);
		acts[i].name = (char *)actions[i];
		ap[i] = &acts[i];
	}
	spawn__actors__actor_id__init(&id);
	id.name = (char *)actor;
	spawn__actors__actor_settings__init(&st);
	st.kind = kind;
	st.stateful = stateful;
	spawn__actors__actor__init(&a);
	a.id = &id;
	a.settings = &st;
	a.n_actions = n;
	a.actions = ap;
	spawn__actors__registry__actors_entry__init(&e);
	e.key = (char *)actor;
	e.value = &a;
	ep[0] = &e;
	spawn__actors__registry__init(&r);
	r.n_actors = 1;
	r.actors = ep;
	spawn__actors__actor_system__init(&s);
	s.name = (char *)sys;
	s.registry = &r;
	return &s;
}

START_TEST(lookup_finds_registered_types_only)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	ck_assert_int_eq(gw_registry_create(&r, NULL), GW_OK);
	const char *acts[] = {"Add", "Get"};
	char why[512] = "";
	ck_assert_int_eq(
	    gw_registry_register(r, &h, make_system("s", "counter", acts, 2, 1, true), why, sizeof why),
	    GW_OK);
	gw_actor_type *t;
	gw_actor_settings st;
	ck_assert_int_eq(gw_registry_lookup(r, "s", "counter", &t, &st), GW_OK);
	ck_assert_str_eq(t->name, "counter");
	ck_assert(st.stateful);
	ck_assert_int_eq(gw_registry_lookup(r, "s", "other", &t, NULL), GW_ENOTFOUND);
	ck_assert_int_eq(gw_registry_lookup(r, "s2", "counter", &t, NULL), GW_ENOTFOUND);
	ck_assert_int_eq(h.refs, 1); /* one binding holds the host */
	gw_registry_destroy(r);
	ck_assert_int_eq(h.refs, 0);
	fake_host_free(&h);
}
END_TEST

START_TEST(pick_distinguishes_unknown_actions_from_missing_hosts)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, NULL);
	const char *acts[] = {"Add"};
	char why[512] = "";
	gw_registry_register(r, &h, make_system("s", "c", acts, 1, 1, true), why, sizeof why);
	gw_actor_type *t;
	gw_registry_lookup(r, "s", "c", &t, NULL);
	gw_host *got = NULL;
	ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_OK);
	ck_assert_ptr_eq(got, &h);
	gw_host_rele(got);
	ck_assert_int_eq(gw_registry_pick(r, t, "Nope", &got), GW_ENOTFOUND);
	h.live = false;
	ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_EUNAVAIL);
	/* the host leaves: the type stays known, so it is UNAVAILABLE, not NOT_FOUND */
	gw_registry_unbind_host(r, &h);
	ck_assert_int_eq(h.refs, 0);
	ck_assert_int_eq(gw_registry_lookup(r, "s", "c", &t, NULL), GW_OK);
	ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_EUNAVAIL);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

START_TEST(work_is_spread_over_hosts_and_fails_over)
{
	gw_registry *r;
	gw_host h1, h2;
	fake_host_init(&h1);
	fake_host_init(&h2);
	gw_registry_create(&r, NULL);
	const char *acts[] = {"Add"};
	char why[512] = "";
	gw_registry_register(r, &h1, make_system("s", "c", acts, 1, 1, true), why, sizeof why);
	gw_registry_register(r, &h2, make_system("s", "c", acts, 1, 1, true), why, sizeof why);
	gw_actor_type *t;
	gw_registry_lookup(r, "s", "c", &t, NULL);
	int n1 = 0, n2 = 0;
	for (int i = 0; i < 10; i++) {
		gw_host *got;
		ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_OK);
		n1 += got == &h1;
		n2 += got == &h2;
		gw_host_rele(got);
	}
	ck_assert_int_eq(n1, 5);
	ck_assert_int_eq(n2, 5);
	gw_registry_unbind_host(r, &h1);
	for (int i = 0; i < 4; i++) {
		gw_host *got;
		ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_OK);
		ck_assert_ptr_eq(got, &h2);
		gw_host_rele(got);
	}
	gw_registry_destroy(r);
	fake_host_free(&h1);
	fake_host_free(&h2);
}
END_TEST

START_TEST(a_host_only_gets_the_actions_it_registered)
{
	gw_registry *r;
	gw_host h1, h2;
	fake_host_init(&h1);
	fake_host_init(&h2);
	gw_registry_create(&r, NULL);
	const char *a1[] = {"Add"}, *a2[] = {"Get"};
	char why[512] = "";
	gw_registry_register(r, &h1, make_system("s", "c", a1, 1, 1, true), why, sizeof why);
	gw_registry_register(r, &h2, make_system("s", "c", a2, 1, 1, true), why, sizeof why);
	gw_actor_type *t;
	gw_registry_lookup(r, "s", "c", &t, NULL);
	for (int i = 0; i < 4; i++) {
		gw_host *got;
		ck_assert_int_eq(gw_registry_pick(r, t, "Get", &got), GW_OK);
		ck_assert_ptr_eq(got, &h2);
		gw_host_rele(got);
	}
	gw_registry_destroy(r);
	fake_host_free(&h1);
	fake_host_free(&h2);
}
END_TEST

START_TEST(bad_registrations_are_refused_with_a_reason)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, NULL);
	const char *acts[] = {"Add"};
	char why[512] = "";
	ck_assert_int_eq(gw_registry_register(r, &h, make_system("", "c", acts, 1, 1, true), why, sizeof why),
	                 GW_EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "system"));
	why[0] = 0;
	ck_assert_int_eq(gw_registry_register(r, &h, make_system("s", "c", acts, 0, 1, true), why, sizeof why),
	                 GW_EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "actions"));
	why[0] = 0;
	ck_assert_int_eq(gw_registry_register(r, &h, make_system("s", "", acts, 1, 1, true), why, sizeof why),
	                 GW_EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "name"));
	ck_assert_int_eq(h.refs, 0);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

START_TEST(pooled_actors_are_stateless)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, NULL);
	const char *acts[] = {"Run"};
	char why[512] = "";
	gw_registry_register(r, &h, make_system("s", "p", acts, 1, 3, true), why, sizeof why);
	gw_actor_type *t;
	gw_actor_settings st;
	ck_assert_int_eq(gw_registry_lookup(r, "s", "p", &t, &st), GW_OK);
	ck_assert(!st.stateful);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("registry");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, lookup_finds_registered_types_only);
	tcase_add_test(tc, pick_distinguishes_unknown_actions_from_missing_hosts);
	tcase_add_test(tc, work_is_spread_over_hosts_and_fails_over);
	tcase_add_test(tc, a_host_only_gets_the_actions_it_registered);
	tcase_add_test(tc, bad_registrations_are_refused_with_a_reason);
	tcase_add_test(tc, pooled_actors_are_stateless);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
