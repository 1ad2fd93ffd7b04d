/* absl_tune_test.c - proto/absl_tune.c: the shared switch that turns off
 * Abseil's mutex deadlock detection (gateway and C SDK), and its opt-out.
 * Each case runs in a child process that takes two gRPC mutexes (absl::Mutex
 * under gpr_mu) in both orders: with the detection on, Debian's Abseil
 * aborts on that lock-order cycle; turned off, the child exits 0. */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpc/support/sync.h>

#include "absl_tune.h"

/* child takes a and b in both orders after the switch; exits with 0 when
 * it got through (10 + the switch's answer when that was unexpected). */
static void child(const char *env, bool want_off)
{
	if (env)
		setenv(SPAWN_ABSL_DEADLOCK_ENV, env, 1);
	else
		unsetenv(SPAWN_ABSL_DEADLOCK_ENV);
	bool off = spawn_absl_deadlock_detection_off();
	if (off != want_off)
		_exit(10 + off);
	gpr_mu a, b;
	gpr_mu_init(&a);
	gpr_mu_init(&b);
	gpr_mu_lock(&a);
	gpr_mu_lock(&b);
	gpr_mu_unlock(&b);
	gpr_mu_unlock(&a);
	gpr_mu_lock(&b);
	gpr_mu_lock(&a); /* the cycle a -> b -> a */
	gpr_mu_unlock(&a);
	gpr_mu_unlock(&b);
	_exit(0);
}

static int run(const char *env, bool want_off)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		child(env, want_off);
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return st;
}

START_TEST(detection_is_off_and_a_lock_order_cycle_passes)
{
	int st = run(NULL, true);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
	st = run("0", true); /* only "1" keeps it */
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}
END_TEST

START_TEST(the_environment_keeps_it_and_the_cycle_aborts)
{
	int st = run("1", false);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x", st);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("absl_tune");
	TCase *tc = tcase_create("absl_tune");
	tcase_add_test(tc, detection_is_off_and_a_lock_order_cycle_passes);
	tcase_add_test(tc, the_environment_keeps_it_and_the_cycle_aborts);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
