/* wheel_test.c - the timing wheel: due order, disarm, laps, stalls. */
#include <check.h>

#include "wheel.h"

static int count(gw_tnode *l)
{
	int n = 0;
	for (; l; l = l->next)
		n++;
	return n;
}

START_TEST(nodes_fire_when_due_and_not_before)
{
	static gw_wheel w;
	gw_wheel_init(&w, 1000);
	gw_tnode a = {0}, b = {0};
	gw_wheel_arm(&w, &a, 1050);
	gw_wheel_arm(&w, &b, 1200);
	gw_tnode *l;
	gw_wheel_expire(&w, 1040, &l);
	ck_assert_int_eq(count(l), 0);
	gw_wheel_expire(&w, 1055, &l);
	ck_assert_ptr_eq(l, &a);
	ck_assert_int_eq(count(l), 1);
	ck_assert(!gw_tnode_armed(&b) == false);
	gw_wheel_expire(&w, 1300, &l);
	ck_assert_ptr_eq(l, &b);
	ck_assert_int_eq(w.armed, 0);
}
END_TEST

START_TEST(disarmed_and_rearmed_nodes_follow_their_last_deadline)
{
	static gw_wheel w;
	gw_wheel_init(&w, 0);
	gw_tnode a = {0};
	gw_wheel_arm(&w, &a, 100);
	gw_wheel_disarm(&w, &a);
	gw_wheel_disarm(&w, &a); /* harmless twice */
	gw_tnode *l;
	gw_wheel_expire(&w, 200, &l);
	ck_assert_ptr_null(l);
	gw_wheel_arm(&w, &a, 300);
	gw_wheel_arm(&w, &a, 500); /* re-arm moves it */
	gw_wheel_expire(&w, 400, &l);
	ck_assert_ptr_null(l);
	gw_wheel_expire(&w, 500, &l);
	ck_assert_ptr_eq(l, &a);
}
END_TEST

START_TEST(deadlines_beyond_one_lap_wait_for_their_lap)
{
	static gw_wheel w;
	gw_wheel_init(&w, 0);
	gw_tnode a = {0};
	int64_t lap = (int64_t)GW_WHEEL_SLOTS * GW_WHEEL_TICK_MS;
	gw_wheel_arm(&w, &a, lap + 50);
	gw_tnode *l;
	for (int64_t t = 10; t <= lap; t += 10) {
		gw_wheel_expire(&w, t, &l);
		ck_assert_ptr_null(l);
	}
	gw_wheel_expire(&w, lap + 60, &l);
	ck_assert_ptr_eq(l, &a);
}
END_TEST

START_TEST(a_long_stall_fires_everything_due)
{
	static gw_wheel w;
	gw_wheel_init(&w, 0);
	static gw_tnode n[100];
	for (int i = 0; i < 100; i++)
		gw_wheel_arm(&w, &n[i], i * 97);
	gw_tnode *l;
	gw_wheel_expire(&w, 1000000, &l);
	ck_assert_int_eq(count(l), 100);
	ck_assert_int_eq(w.armed, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wheel");
	TCase *tc = tcase_create("wheel");
	tcase_add_test(tc, nodes_fire_when_due_and_not_before);
	tcase_add_test(tc, disarmed_and_rearmed_nodes_follow_their_last_deadline);
	tcase_add_test(tc, deadlines_beyond_one_lap_wait_for_their_lap);
	tcase_add_test(tc, a_long_stall_fires_everything_due);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
