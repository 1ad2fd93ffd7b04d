/* idset_test.c - the id set: membership, refusals, growth and shrinking,
 * and removals in the middle of probe runs checked against a reference. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idset.h"

START_TEST(ids_are_added_once_found_and_removed)
{
	gw_idset s;
	gw_idset_init(&s);
	ck_assert(!gw_idset_has(&s, "a"));
	ck_assert(!gw_idset_remove(&s, "a"));
	ck_assert_int_eq(gw_idset_add(&s, "a"), GW_OK);
	ck_assert_int_eq(gw_idset_add(&s, "a"), GW_ECONFLICT);
	ck_assert_int_eq(gw_idset_add(&s, "b"), GW_OK);
	ck_assert_uint_eq(s.n, 2);
	ck_assert(gw_idset_has(&s, "a") && gw_idset_has(&s, "b"));
	ck_assert(!gw_idset_has(&s, "c"));
	ck_assert(gw_idset_remove(&s, "a"));
	ck_assert(!gw_idset_remove(&s, "a"));
	ck_assert(!gw_idset_has(&s, "a"));
	ck_assert(gw_idset_has(&s, "b"));
	ck_assert_uint_eq(s.n, 1);
	gw_idset_fini(&s);
	gw_idset_fini(NULL);
}
END_TEST

START_TEST(empty_null_and_overlong_ids_are_refused)
{
	gw_idset s;
	gw_idset_init(&s);
	char longest[GW_IDSET_ID_MAX + 2];
	memset(longest, 'x', sizeof longest);
	longest[GW_IDSET_ID_MAX + 1] = '\0';
	ck_assert_int_eq(gw_idset_add(&s, ""), GW_EINVAL);
	ck_assert_int_eq(gw_idset_add(&s, NULL), GW_EINVAL);
	ck_assert_int_eq(gw_idset_add(&s, longest), GW_EINVAL);
	longest[GW_IDSET_ID_MAX] = '\0';
	ck_assert_int_eq(gw_idset_add(&s, longest), GW_OK);
	ck_assert(gw_idset_has(&s, longest));
	ck_assert(!gw_idset_has(&s, ""));
	ck_assert(!gw_idset_has(&s, NULL));
	ck_assert_uint_eq(s.n, 1);
	gw_idset_fini(&s);
}
END_TEST

enum { MANY = 100000 };

/* The set against a reference array, through growth, removals anywhere in
 * probe runs (backward shifts, also across the table's end) and shrinking. */
START_TEST(a_hundred_thousand_ids_match_a_reference_through_growth_and_shrinking)
{
	static char ids[MANY][16];
	static bool in[MANY];
	gw_idset s;
	gw_idset_init(&s);
	srand(12345);
	for (int i = 0; i < MANY; i++)
		snprintf(ids[i], sizeof ids[i], "%08x%04x", (unsigned)rand(), (unsigned)i);
	for (int i = 0; i < MANY; i++) {
		ck_assert_int_eq(gw_idset_add(&s, ids[i]), GW_OK);
		in[i] = true;
		ck_assert_uint_lt(s.n * 2, s.cap + 1);
	}
	ck_assert_uint_eq(s.n, MANY);
	/* Remove a random two thirds, re-add some, check every id. */
	for (int k = 0; k < 2 * MANY; k++) {
		int i = rand() % MANY;
		if (k % 3 == 2) {
			ck_assert_int_eq(gw_idset_add(&s, ids[i]), in[i] ? GW_ECONFLICT : GW_OK);
			in[i] = true;
		} else {
			ck_assert(gw_idset_remove(&s, ids[i]) == in[i]);
			in[i] = false;
		}
	}
	size_t want = 0;
	for (int i = 0; i < MANY; i++) {
		ck_assert_msg(gw_idset_has(&s, ids[i]) == in[i], "id %d (%s): has %d, want %d", i,
		              ids[i], gw_idset_has(&s, ids[i]), in[i]);
		want += in[i];
	}
	ck_assert_uint_eq(s.n, want);
	/* Empty it: the table shrinks back to its smallest. */
	for (int i = 0; i < MANY; i++)
		if (in[i])
			ck_assert(gw_idset_remove(&s, ids[i]));
	ck_assert_uint_eq(s.n, 0);
	ck_assert_uint_eq(s.cap, GW_IDSET_MIN);
	gw_idset_fini(&s);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("idset");
	TCase *tc = tcase_create("idset");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ids_are_added_once_found_and_removed);
	tcase_add_test(tc, empty_null_and_overlong_ids_are_refused);
	tcase_add_test(tc, a_hundred_thousand_ids_match_a_reference_through_growth_and_shrinking);
	suite_add_tcase(su, tc);
	SRunner *sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
