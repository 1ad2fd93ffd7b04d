/* log_test.c - the per-call-site rate limit of gw_log: a fake clock and a
 * sink that keeps the lines, no sleeps. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int64_t fake_now;
static char lines[64][4200];
static int n_lines;
static int n_total; /* also those past the lines array */
static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t fake_clock(void)
{
	return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

static void sink(const char *line, size_t len)
{
	pthread_mutex_lock(&sink_mu);
	if (n_lines < 64) {
		size_t n = len < sizeof lines[0] - 1 ? len : sizeof lines[0] - 1;
		memcpy(lines[n_lines], line, n);
		lines[n_lines][n] = '\0';
		n_lines++;
	}
	n_total++;
	pthread_mutex_unlock(&sink_mu);
}

static void setup(void)
{
	fake_now = 1000000;
	n_lines = n_total = 0;
	gw_log_set_level(GW_LOG_INFO);
	gw_log_set_rate(3, 1000);
	gw_log_set_test_hooks(fake_clock, sink);
	gw_log_reset();
}

static void teardown(void)
{
	gw_log_set_test_hooks(NULL, NULL);
}

/* Each helper is one call site: one format string literal. */
static void site_a(int i)
{
	GW_WARN("site a line %d", i);
}

static void site_b(int i)
{
	GW_WARN("site b line %d", i);
}

static void site_debug(int i)
{
	GW_DEBUG("debug line %d", i);
}

START_TEST(a_site_prints_its_burst_per_interval_then_says_how_many_it_dropped)
{
	for (int i = 0; i < 10; i++)
		site_a(i);
	ck_assert_int_eq(n_total, 3);
	ck_assert_ptr_nonnull(strstr(lines[0], "site a line 0"));
	ck_assert_ptr_nonnull(strstr(lines[2], "site a line 2"));
	ck_assert_ptr_null(strstr(lines[2], "suppressed"));
	/* Still inside the interval: dropped. */
	fake_now += 999;
	site_a(10);
	ck_assert_int_eq(n_total, 3);
	/* The next interval: the first line carries the count, once. */
	fake_now += 1;
	site_a(11);
	site_a(12);
	ck_assert_int_eq(n_total, 5);
	ck_assert_ptr_nonnull(strstr(lines[3], "site a line 11 (8 similar lines suppressed)\n"));
	ck_assert_ptr_null(strstr(lines[4], "suppressed"));
}
END_TEST

START_TEST(sites_are_limited_independently)
{
	for (int i = 0; i < 5; i++) {
		site_a(i);
		site_b(i);
	}
	ck_assert_int_eq(n_total, 6);
	int a = 0, b = 0;
	for (int i = 0; i < n_lines; i++) {
		a += strstr(lines[i], "site a") != NULL;
		b += strstr(lines[i], "site b") != NULL;
	}
	ck_assert_int_eq(a, 3);
	ck_assert_int_eq(b, 3);
}
END_TEST

START_TEST(flush_reports_counts_not_yet_reported_once)
{
	for (int i = 0; i < 7; i++)
		site_a(i);
	site_b(0);
	ck_assert_int_eq(n_total, 4);
	gw_log_flush();
	ck_assert_int_eq(n_total, 5);
	ck_assert_ptr_nonnull(strstr(lines[4], "4 similar lines suppressed: site a line %d"));
	gw_log_flush();
	ck_assert_int_eq(n_total, 5);
	/* Reported by the flush: the next line of the site says nothing. */
	fake_now += 1000;
	site_a(99);
	ck_assert_int_eq(n_total, 6);
	ck_assert_ptr_null(strstr(lines[5], "suppressed"));
}
END_TEST

START_TEST(a_zero_rate_turns_the_limit_off)
{
	gw_log_set_rate(0, 1000);
	for (int i = 0; i < 50; i++)
		site_a(i);
	ck_assert_int_eq(n_total, 50);
}
END_TEST

START_TEST(lines_below_the_level_neither_print_nor_count)
{
	for (int i = 0; i < 10; i++)
		site_debug(i);
	ck_assert_int_eq(n_total, 0);
	gw_log_set_level(GW_LOG_DEBUG);
	site_debug(0);
	ck_assert_int_eq(n_total, 1);
	ck_assert_ptr_null(strstr(lines[0], "suppressed"));
}
END_TEST

START_TEST(a_long_line_keeps_its_count)
{
	char big[2000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	for (int i = 0; i < 6; i++) {
		if (i == 5)
			fake_now += 1000;
		GW_WARN("big %s", big);
	}
	ck_assert_int_eq(n_total, 4);
	const char *l = lines[3];
	size_t len = strlen(l);
	ck_assert_uint_lt(len, 1025);
	ck_assert_ptr_nonnull(strstr(l, "x (2 similar lines suppressed)\n"));
}
END_TEST

enum { THREADS = 8, PER_THREAD = 5000 };

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++)
		site_a(i);
	return NULL;
}

/* The clock stands still: of all the threads' lines exactly the burst is
 * printed, and the flush accounts for every other one. */
START_TEST(threads_logging_one_site_share_one_count)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(n_total, 3);
	gw_log_flush();
	ck_assert_int_eq(n_total, 4);
	char want[64];
	snprintf(want, sizeof want, "%d similar lines suppressed", THREADS * PER_THREAD - 3);
	ck_assert_ptr_nonnull(strstr(lines[3], want));
}
END_TEST

START_TEST(rates_parse_as_lines_per_seconds)
{
	int b = -1;
	int64_t ms = -1;
	ck_assert_int_eq(gw_log_parse_rate("10/5", &b, &ms), 0);
	ck_assert_int_eq(b, 10);
	ck_assert_int_eq(ms, 5000);
	ck_assert_int_eq(gw_log_parse_rate("0", &b, &ms), 0);
	ck_assert_int_eq(b, 0);
	b = 7;
	ck_assert_int_eq(gw_log_parse_rate("", &b, &ms), -1);
	ck_assert_int_eq(gw_log_parse_rate("5", &b, &ms), -1);
	ck_assert_int_eq(gw_log_parse_rate("5/0", &b, &ms), -1);
	ck_assert_int_eq(gw_log_parse_rate("-1/5", &b, &ms), -1);
	ck_assert_int_eq(gw_log_parse_rate("5/5s", &b, &ms), -1);
	ck_assert_int_eq(gw_log_parse_rate("x/5", &b, &ms), -1);
	ck_assert_int_eq(b, 7);
}
END_TEST

/* ---- JSON lines ------------------------------------------------------------------- */

/* parse_json_lines runs the kept lines through Python's json module (a
 * parser nobody here wrote) with check, a Python expression over `o` (the
 * object of line i, `i`) that must hold for every line; returns the
 * checker's output ("" when all good). */
static void expect_json(const char *check, char *out, size_t cap)
{
	char path[] = "/tmp/spawn-logjson-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	for (int i = 0; i < n_lines; i++)
		fputs(lines[i], f);
	fclose(f);
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
	         "python3 -c 'import json,sys\n"
	         "for i,l in enumerate(open(sys.argv[1],encoding=\"utf-8\",errors=\"strict\")):\n"
	         "  o=json.loads(l)\n"
	         "  assert l.endswith(\"}\\n\"), l\n"
	         "  assert %s, (i,o)\n' %s 2>&1",
	         check, path);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	size_t got = fread(out, 1, cap - 1, p);
	out[got] = '\0';
	int rc = pclose(p);
	unlink(path);
	ck_assert_msg(rc == 0 && got == 0, "python3 (rc %d): %s", rc, out);
}

START_TEST(json_lines_parse_and_carry_the_thread_context)
{
	gw_log_set_format(GW_LOG_JSON);
	gw_log_ctx c = {.system = "shop",
	                .actor = "cart \"7\"",
	                .action = "Add",
	                .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
	                .request_id = 42};
	const gw_log_ctx *prev = gw_log_ctx_enter(&c);
	ck_assert_ptr_null(prev);
	GW_WARN("quote \" backslash \\ newline \n tab \t ctl \x01 del \x7f bad \xff\xfe e-acute "
	        "\xc3\xa9 "
	        "cut \xe2\x82");
	gw_log_ctx inner = {.system = "bank"};
	const gw_log_ctx *outer = gw_log_ctx_enter(&inner);
	ck_assert_ptr_eq(outer, &c);
	GW_INFO("nested");
	gw_log_ctx_leave(outer);
	gw_log_ctx_leave(prev);
	GW_ERROR("no context");
	gw_log_set_format(GW_LOG_TEXT);
	ck_assert_int_eq(n_lines, 3);
	char out[4096];
	expect_json("(i!=0 or (o[\"level\"]==\"warn\" and o[\"system\"]==\"shop\" and "
	            "o[\"actor\"]==\"cart \\\"7\\\"\" and o[\"action\"]==\"Add\" and "
	            "o[\"request_id\"]==\"42\" and len(o[\"trace_id\"])==32 and "
	            "o[\"message\"]==\"quote \\\" backslash \\\\ newline \\n tab \\t ctl \\x01 del "
	            "\\x7f bad \\ufffd\\ufffd e-acute \\u00e9 cut \\ufffd\\ufffd\")) and "
	            "(i!=1 or (o[\"system\"]==\"bank\" and \"actor\" not in o and "
	            "o[\"message\"]==\"nested\")) and "
	            "(i!=2 or (o[\"level\"]==\"error\" and \"system\" not in o)) and "
	            "o[\"time\"].endswith(\"Z\") and len(o[\"time\"])==24",
	            out, sizeof out);
}
END_TEST

START_TEST(a_json_line_over_the_limit_is_cut_and_still_parses)
{
	gw_log_set_format(GW_LOG_JSON);
	char big[1200];
	for (size_t i = 0; i + 2 < sizeof big; i += 2)
		memcpy(big + i, "\xc3\xa9", 2); /* U+00E9, two bytes each */
	big[sizeof big - 1] = '\0';
	for (int i = 0; i < 5; i++)
		GW_WARN("%s \"%d\"", big, i); /* burst 3: the 4th and 5th are dropped */
	fake_now += 1000;
	GW_WARN("%s \"%d\"", big, 9);
	gw_log_set_format(GW_LOG_TEXT);
	ck_assert_int_eq(n_lines, 4);
	char out[4096];
	expect_json("len(o[\"message\"])>400 and set(o[\"message\"][:400])=={\"\\u00e9\"} and "
	            "(i!=3 or o[\"suppressed\"]==2) and (i==3 or \"suppressed\" not in o)",
	            out, sizeof out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("rate_limit");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_site_prints_its_burst_per_interval_then_says_how_many_it_dropped);
	tcase_add_test(tc, sites_are_limited_independently);
	tcase_add_test(tc, flush_reports_counts_not_yet_reported_once);
	tcase_add_test(tc, a_zero_rate_turns_the_limit_off);
	tcase_add_test(tc, lines_below_the_level_neither_print_nor_count);
	tcase_add_test(tc, a_long_line_keeps_its_count);
	tcase_add_test(tc, threads_logging_one_site_share_one_count);
	tcase_add_test(tc, rates_parse_as_lines_per_seconds);
	tcase_add_test(tc, json_lines_parse_and_carry_the_thread_context);
	tcase_add_test(tc, a_json_line_over_the_limit_is_cut_and_still_parses);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
