/* placement_test.c - gw_place: rendezvous hashing over a membership view. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "cshare.h"
#include "placement.h"

static const char *const served_all[] = {"sys/Counter", "sys/Other"};
static const char *const served_other[] = {"sys/Other"};

static void member(gw_member *m, const char *id, int status, const char *const *served, size_t n)
{
	m->id = id;
	m->address = id;
	m->status = status;
	m->served = served;
	m->n_served = n;
}

static void three(gw_member ms[3], gw_view *v)
{
	member(&ms[0], "127.0.0.1:7001@1700000000000-a1", GW_MEMBER_ACTIVE, served_all, 2);
	member(&ms[1], "127.0.0.1:7002@1700000000001-b2", GW_MEMBER_ACTIVE, served_all, 2);
	member(&ms[2], "127.0.0.1:7003@1700000000002-c3", GW_MEMBER_ACTIVE, served_all, 2);
	v->version = 7;
	v->n = 3;
	v->members = ms;
	v->self = 0;
}

#define NAMES 30000

START_TEST(every_member_computes_the_same_owner_from_the_same_view)
{
	gw_member a[3], b[3];
	gw_view va, vb;
	three(a, &va);
	three(b, &vb);
	vb.self = 2; /* another member's copy of the same view */
	char name[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "actor-%d", i);
		size_t o = gw_place(&va, "sys", "Counter", name);
		ck_assert_uint_lt(o, 3);
		ck_assert_uint_eq(o, gw_place(&vb, "sys", "Counter", name));
	}
	/* Fixed weights: the same on every machine and after every restart. */
	ck_assert_uint_eq(gw_place_weight("m", "s", "n"), gw_place_weight("m", "s", "n"));
	ck_assert(gw_place_weight("m", "ab", "c") != gw_place_weight("m", "a", "bc"));
}
END_TEST

START_TEST(three_members_share_names_within_ten_percent)
{
	gw_member ms[3];
	gw_view v;
	three(ms, &v);
	int count[3] = {0};
	char name[32];
	for (int i = 0; i < NAMES; i++) {
		snprintf(name, sizeof name, "user-%d", i);
		count[gw_place(&v, "sys", "Counter", name)]++;
	}
	for (int k = 0; k < 3; k++) {
		ck_assert_int_gt(count[k], NAMES / 3 * 9 / 10);
		ck_assert_int_lt(count[k], NAMES / 3 * 11 / 10);
	}
}
END_TEST

START_TEST(removing_a_member_moves_only_its_actors)
{
	gw_member ms[3], two[2];
	gw_view v, v2;
	three(ms, &v);
	two[0] = ms[0];
	two[1] = ms[2];
	v2 = v;
	v2.n = 2;
	v2.members = two;
	int moved = 0;
	char name[32];
	for (int i = 0; i < NAMES; i++) {
		snprintf(name, sizeof name, "user-%d", i);
		size_t before = gw_place(&v, "sys", "Counter", name);
		size_t after = gw_place(&v2, "sys", "Counter", name);
		const char *ib = ms[before].id, *ia = two[after].id;
		if (before == 1) {
			moved++;
			ck_assert_str_ne(ia, ms[1].id);
		} else {
			ck_assert_str_eq(ib, ia); /* nobody else's actors move */
		}
	}
	ck_assert_int_gt(moved, NAMES / 3 * 9 / 10);
	ck_assert_int_lt(moved, NAMES / 3 * 11 / 10);
	/* Marking it dead (status) moves the same actors as removing it. */
	ms[1].status = GW_MEMBER_DEAD;
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof name, "user-%d", i);
		ck_assert_str_eq(ms[gw_place(&v, "sys", "Counter", name)].id,
		                 two[gw_place(&v2, "sys", "Counter", name)].id);
	}
}
END_TEST

START_TEST(members_not_serving_the_type_or_not_active_never_own)
{
	gw_member ms[3];
	gw_view v;
	three(ms, &v);
	ms[0].served = served_other;
	ms[0].n_served = 1;
	ms[1].status = GW_MEMBER_JOINING;
	char name[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "n%d", i);
		ck_assert_uint_eq(gw_place(&v, "sys", "Counter", name), 2);
		ck_assert_uint_ne(gw_place(&v, "sys", "Other", name), 1);
	}
	ms[2].status = GW_MEMBER_LEAVING;
	ck_assert_uint_eq(gw_place(&v, "sys", "Counter", "x"), SIZE_MAX);
	ck_assert_uint_eq(gw_place(&v, "other-system", "Other", "x"), SIZE_MAX);
	ck_assert_uint_eq(gw_place(NULL, "sys", "Counter", "x"), SIZE_MAX);
	/* "sys/Counter" must match whole: "sy" / "s/Counter" are not it. */
	ck_assert(!gw_member_serves(&ms[1], "sy", "s/Counter"));
	ck_assert(gw_member_serves(&ms[1], "sys", "Counter"));
	ck_assert(!gw_member_serves(&ms[1], "sys", "Count"));
}
END_TEST

/* The type index of plain calls (cshare.h): one system per type, two are
 * named, marked lines (subscriptions, contracts hashes) are no types. */
START_TEST(the_type_index_finds_one_system_and_names_two)
{
	const char *lines[] = {"sys-a/Counter",
	                       "sys-a/Other",
	                       "\x1fsys-a\x1f"
	                       "Counter\x1ft\x1fgo",
	                       "\x1e"
	                       "0123456789abcdef",
	                       "sys-b/Other",
	                       "sys-a/Counter",
	                       "noslash",
	                       "/Lead",
	                       "sys-c/"};
	gw_typeix *x = gw_typeix_build(lines, sizeof lines / sizeof lines[0]);
	ck_assert_ptr_nonnull(x);
	char sys[64], why[600];
	ck_assert_int_eq(gw_typeix_find(x, "Counter", sys, sizeof sys, why, sizeof why), GW_OK);
	ck_assert_str_eq(sys, "sys-a");
	ck_assert_int_eq(gw_typeix_find(x, "Other", sys, sizeof sys, why, sizeof why), GW_ECONFIG);
	ck_assert_msg(strstr(why, "sys-a and sys-b"), "%s", why);
	const char *none[] = {"\x1fsys-a\x1f"
	                      "Counter\x1ft\x1fgo",
	                      "\x1e"
	                      "0123456789abcdef",
	                      "Lead", "noslash", ""};
	for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
		ck_assert_int_eq(gw_typeix_find(x, none[i], sys, sizeof sys, why, sizeof why),
		                 GW_ENOTFOUND);
	gw_typeix_free(x);
	x = gw_typeix_build(NULL, 0);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(gw_typeix_find(x, "Counter", sys, sizeof sys, why, sizeof why),
	                 GW_ENOTFOUND);
	gw_typeix_free(x);
	ck_assert_int_eq(gw_typeix_find(NULL, "Counter", sys, sizeof sys, why, sizeof why),
	                 GW_ENOTFOUND);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("placement");
	TCase *tc = tcase_create("rendezvous");
	tcase_add_test(tc, every_member_computes_the_same_owner_from_the_same_view);
	tcase_add_test(tc, three_members_share_names_within_ten_percent);
	tcase_add_test(tc, removing_a_member_moves_only_its_actors);
	tcase_add_test(tc, members_not_serving_the_type_or_not_active_never_own);
	tcase_add_test(tc, the_type_index_finds_one_system_and_names_two);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
