/* metrics_test.c - the per-thread metrics and their exposition
 * (gateway/metrics/metrics.h): exact sums across threads, the cardinality
 * bounds, histogram buckets, escaping, refused names, process_* families,
 * and the whole exposition read by Prometheus' own parser (promtool check
 * metrics).
 */
#include "metrics.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gw_metrics *m;

static void setup(void)
{
	m = gw_metrics_create();
	ck_assert_ptr_nonnull(m);
}

static void teardown(void)
{
	gw_metrics_destroy(m);
	m = NULL;
}

static char *render(void)
{
	char *out = NULL;
	size_t len = 0;
	ck_assert_int_eq(gw_metrics_render(m, &out, &len), GW_OK);
	ck_assert_uint_eq(strlen(out), len);
	return out;
}

/* expect_line asserts that the exposition holds exactly this line. */
static void expect_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)); p += n)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return;
	ck_abort_msg("no line '%s' in:\n%s", line, text);
}

/* ---- counters over threads -------------------------------------------------------- */

enum { THREADS = 8, ADDS = 200000 };

typedef struct adder {
	gw_series s[3];
} adder;

static void *add_main(void *arg)
{
	adder *a = arg;
	for (int i = 0; i < ADDS; i++)
		gw_metric_add(m, a->s[i % 3], 1 + (uint64_t)(i % 3));
	return NULL;
}

START_TEST(counters_from_many_threads_sum_exactly)
{
	const char *labels[] = {"system", "status"};
	gw_family *f = gw_metrics_counter(m, "spawn_test_calls_total", "Calls.", labels, 2, 16);
	ck_assert_ptr_nonnull(f);
	adder a;
	const char *v0[] = {"shop", "OK"}, *v1[] = {"shop", "NOT_FOUND"}, *v2[] = {"bank", "OK"};
	a.s[0] = gw_family_series(f, v0);
	a.s[1] = gw_family_series(f, v1);
	a.s[2] = gw_family_series(f, v2);
	ck_assert(a.s[0] && a.s[1] && a.s[2]);
	ck_assert_uint_eq(gw_family_series(f, v0),
	                  a.s[0]); /* the same label set: the same series */
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, add_main, &a), 0);
	/* A scrape while they count: never more than the final sums. */
	char *mid = render();
	free(mid);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	/* Each thread: i % 3 == k for a third of the adds (ADDS = 3q + 2). */
	uint64_t per[3] = {0};
	for (int i = 0; i < ADDS; i++)
		per[i % 3] += 1 + (uint64_t)(i % 3);
	for (int k = 0; k < 3; k++)
		ck_assert_uint_eq(gw_metric_value(m, f, a.s[k]), THREADS * per[k]);
	char *text = render();
	char line[128];
	snprintf(line, sizeof line, "spawn_test_calls_total{system=\"shop\",status=\"OK\"} %llu",
	         (unsigned long long)(THREADS * per[0]));
	expect_line(text, line);
	snprintf(line, sizeof line, "spawn_test_calls_total{system=\"bank\",status=\"OK\"} %llu",
	         (unsigned long long)(THREADS * per[2]));
	expect_line(text, line);
	expect_line(text, "# TYPE spawn_test_calls_total counter");
	expect_line(text, "# HELP spawn_test_calls_total Calls.");
	free(text);
}
END_TEST

/* Counts made by threads that have exited stay. */
START_TEST(counts_of_exited_threads_stay)
{
	gw_family *f = gw_metrics_counter(m, "spawn_test_exits_total", "x", NULL, 0, 1);
	gw_series s = gw_family_series(f, NULL);
	ck_assert_uint_ne(s, 0);
	adder a = {.s = {s, s, s}};
	for (int round = 0; round < 3; round++) {
		pthread_t t;
		ck_assert_int_eq(pthread_create(&t, NULL, add_main, &a), 0);
		pthread_join(t, NULL);
	}
	uint64_t one = 0;
	for (int i = 0; i < ADDS; i++)
		one += 1 + (uint64_t)(i % 3);
	ck_assert_uint_eq(gw_metric_value(m, f, s), 3 * one);
}
END_TEST

/* ---- bounds ------------------------------------------------------------------------ */

START_TEST(label_sets_over_the_bound_go_to_the_overflow_series)
{
	const char *labels[] = {"action"};
	gw_family *f = gw_metrics_counter(m, "spawn_test_bounded_total", "b", labels, 1, 3);
	ck_assert_ptr_nonnull(f);
	char name[16];
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof name, "a%d", i);
		const char *v[] = {name};
		gw_metric_add(m, gw_family_series(f, v), 1);
	}
	char *text = render();
	expect_line(text, "spawn_test_bounded_total{action=\"a0\"} 1");
	expect_line(text, "spawn_test_bounded_total{action=\"a2\"} 1");
	expect_line(text, "spawn_test_bounded_total{action=\"_other\"} 7");
	ck_assert_ptr_null(strstr(text, "action=\"a3\""));
	free(text);
	/* A NULL value counts as overflow too, never crashes. */
	const char *nullv[] = {NULL};
	ck_assert_uint_ne(gw_family_series(f, nullv), 0);
}
END_TEST

/* The per-thread cache finds the same series as the family, keeps label
 * sets of two registries apart (a registry made at a freed one's address
 * must not get its series), sends sets too long to cache to the family,
 * and keeps the overflow rule. */
START_TEST(cached_series_are_the_familys_series)
{
	const char *labels[] = {"system", "action"};
	gw_family *f = gw_metrics_counter(m, "spawn_test_cached_total", "c", labels, 2, 3);
	ck_assert_ptr_nonnull(f);
	const char *v[] = {"shop", "Add"}, *w[] = {"shop", "Get"};
	gw_series a = gw_family_series_cached(f, v);
	ck_assert_uint_ne(a, 0);
	ck_assert_uint_eq(gw_family_series_cached(f, v), a);
	ck_assert_uint_eq(gw_family_series(f, v), a);
	ck_assert_uint_ne(gw_family_series_cached(f, w), a);
	char longv[200];
	memset(longv, 'x', sizeof longv - 1);
	longv[sizeof longv - 1] = 0;
	const char *lv[] = {longv, "Add"};
	gw_series l = gw_family_series_cached(f, lv);
	ck_assert_uint_eq(l, gw_family_series(f, lv));
	const char *o[] = {"bank", "Add"}; /* the fourth set: over the bound of 3 */
	gw_metric_add(m, gw_family_series_cached(f, o), 5);
	char *text = render();
	expect_line(text, "spawn_test_cached_total{system=\"_other\",action=\"_other\"} 5");
	free(text);
	/* A new registry with the same family: the cache must not hand out
	 * the old registry's series. */
	gw_metrics_destroy(m);
	m = gw_metrics_create();
	gw_family *g = gw_metrics_counter(m, "spawn_test_cached_total", "c", labels, 2, 3);
	const char *first[] = {"bank", "Get"};
	gw_series b = gw_family_series_cached(g, first);
	gw_metric_add(m, gw_family_series_cached(g, v), 2);
	ck_assert_uint_eq(gw_metric_value(m, g, gw_family_series(g, v)), 2);
	ck_assert_uint_ne(b, gw_family_series(g, v));
}
END_TEST

typedef struct each_ctx {
	int n;
	uint64_t sum;
} each_ctx;

static void each_one(void *user, const char *const *values, uint64_t total)
{
	each_ctx *c = user;
	ck_assert_ptr_nonnull(values[0]);
	c->n++;
	c->sum += total;
}

START_TEST(each_visits_every_series_with_its_total)
{
	const char *labels[] = {"actor"};
	gw_family *f = gw_metrics_counter(m, "spawn_test_each_total", "e", labels, 1, 8);
	const char *a[] = {"a"}, *b[] = {"b"};
	gw_metric_add(m, gw_family_series(f, a), 3);
	gw_metric_add(m, gw_family_series(f, b), 4);
	each_ctx c = {0};
	gw_family_each(f, each_one, &c);
	ck_assert_int_eq(c.n, 3); /* a, b and the overflow series */
	ck_assert_uint_eq(c.sum, 7);
}
END_TEST

START_TEST(the_registry_refuses_bad_names_and_duplicates)
{
	const char *labels[] = {"system"}, *le[] = {"le"}, *bad[] = {"bad-label"};
	ck_assert_ptr_null(gw_metrics_counter(m, "no_suffix", "h", NULL, 0, 1));
	ck_assert_ptr_null(gw_metrics_counter(m, "bad-name_total", "h", NULL, 0, 1));
	ck_assert_ptr_null(gw_metrics_counter(m, "9lives_total", "h", NULL, 0, 1));
	ck_assert_ptr_null(gw_metrics_counter(m, "x_total", "h", le, 1, 1));
	ck_assert_ptr_null(gw_metrics_counter(m, "x_total", "h", bad, 1, 1));
	ck_assert_ptr_null(gw_metrics_counter(m, "x_total", "h", labels, 1, 0));
	ck_assert_ptr_nonnull(gw_metrics_counter(m, "x_total", "h", labels, 1, 1));
	ck_assert_ptr_null(gw_metrics_counter(m, "x_total", "h", labels, 1, 1)); /* taken */
	const uint64_t down[] = {10, 5};
	ck_assert_ptr_null(gw_metrics_histogram(m, "h_seconds", "h", NULL, 0, 1, down, 2, 1e-6));
	ck_assert_int_eq(gw_metrics_gauge(m, "g", "h", "summary", NULL, 0, NULL, NULL), GW_EINVAL);
}
END_TEST

/* ---- histograms and escaping ----------------------------------------------------------- */

START_TEST(histograms_count_cumulative_buckets_in_base_units)
{
	const char *labels[] = {"system"};
	const uint64_t bounds[] = {100, 1000, 10000}; /* microseconds */
	gw_family *f = gw_metrics_histogram(m, "spawn_test_latency_seconds", "Latency.", labels, 1,
	                                    4, bounds, 3, 1e-6);
	ck_assert_ptr_nonnull(f);
	const char *v[] = {"shop"};
	gw_series s = gw_family_series(f, v);
	const uint64_t obs[] = {50, 100, 500, 5000, 50000};
	for (size_t i = 0; i < 5; i++)
		gw_metric_observe(m, f, s, obs[i]);
	ck_assert_uint_eq(gw_metric_value(m, f, s), 5);
	char *text = render();
	expect_line(text, "# TYPE spawn_test_latency_seconds histogram");
	expect_line(text, "spawn_test_latency_seconds_bucket{system=\"shop\",le=\"0.0001\"} 2");
	expect_line(text, "spawn_test_latency_seconds_bucket{system=\"shop\",le=\"0.001\"} 3");
	expect_line(text, "spawn_test_latency_seconds_bucket{system=\"shop\",le=\"0.01\"} 4");
	expect_line(text, "spawn_test_latency_seconds_bucket{system=\"shop\",le=\"+Inf\"} 5");
	expect_line(text, "spawn_test_latency_seconds_sum{system=\"shop\"} 0.05565");
	expect_line(text, "spawn_test_latency_seconds_count{system=\"shop\"} 5");
	free(text);
}
END_TEST

START_TEST(label_values_and_help_are_escaped)
{
	const char *labels[] = {"actor"};
	gw_family *f =
	    gw_metrics_counter(m, "spawn_test_escape_total", "Back\\slash\nnew line", labels, 1, 4);
	const char *v[] = {"a\"b\\c\nd"};
	gw_metric_add(m, gw_family_series(f, v), 2);
	char *text = render();
	expect_line(text, "# HELP spawn_test_escape_total Back\\\\slash\\nnew line");
	expect_line(text, "spawn_test_escape_total{actor=\"a\\\"b\\\\c\\nd\"} 2");
	free(text);
}
END_TEST

/* ---- gauges, process_*, and Prometheus' parser ---------------------------------------- */

static void two_systems(void *user, gw_gauge_out *o)
{
	int *n = user;
	const char *a[] = {"shop"}, *b[] = {"bank"};
	gw_gauge_emit(o, a, *n);
	gw_gauge_emit(o, b, 0.5);
}

START_TEST(gauges_are_read_at_scrape_time)
{
	int n = 3;
	const char *labels[] = {"system"};
	ck_assert_int_eq(gw_metrics_gauge(m, "spawn_test_active_actors", "Active.", "gauge", labels,
	                                  1, two_systems, &n),
	                 GW_OK);
	char *text = render();
	expect_line(text, "spawn_test_active_actors{system=\"shop\"} 3");
	expect_line(text, "spawn_test_active_actors{system=\"bank\"} 0.5");
	free(text);
	n = 7;
	text = render();
	expect_line(text, "spawn_test_active_actors{system=\"shop\"} 7");
	free(text);
}
END_TEST

START_TEST(process_metrics_are_plausible)
{
	ck_assert_int_eq(gw_metrics_process(m), GW_OK);
	char *text = render();
	double rss = 0, fds = 0, start = 0;
	const char *p = strstr(text, "\nprocess_resident_memory_bytes ");
	ck_assert_ptr_nonnull(p);
	rss = strtod(p + strlen("\nprocess_resident_memory_bytes "), NULL);
	p = strstr(text, "\nprocess_open_fds ");
	ck_assert_ptr_nonnull(p);
	fds = strtod(p + strlen("\nprocess_open_fds "), NULL);
	p = strstr(text, "\nprocess_start_time_seconds ");
	ck_assert_ptr_nonnull(p);
	start = strtod(p + strlen("\nprocess_start_time_seconds "), NULL);
	ck_assert_msg(rss > 1e6, "rss %g", rss);
	ck_assert_msg(fds >= 3, "fds %g", fds);
	ck_assert_msg(start > 1.6e9, "start %g", start);
	ck_assert_ptr_nonnull(strstr(text, "\nprocess_cpu_seconds_total "));
	free(text);
}
END_TEST

/* The whole exposition, every kind, goes through `promtool check metrics`
 * (Prometheus' own parser and linter): exit 0 and no complaint. */
START_TEST(promtool_accepts_the_exposition)
{
	ck_assert_msg(system("command -v promtool >/dev/null") == 0,
	              "promtool is missing (Debian prometheus; scripts/install-deps.sh)");
	const char *labels[] = {"system", "action"};
	gw_family *c = gw_metrics_counter(m, "spawn_test_invocations_total",
	                                  "Invocations by system and action.", labels, 2, 8);
	const uint64_t bounds[] = {100, 1000};
	gw_family *h = gw_metrics_histogram(m, "spawn_test_turn_seconds", "Turn time.", labels, 2,
	                                    8, bounds, 2, 1e-6);
	const char *v[] = {"shop", "Add \"quoted\""};
	gw_metric_add(m, gw_family_series(c, v), 5);
	gw_metric_observe(m, h, gw_family_series(h, v), 250);
	int n = 1;
	const char *gl[] = {"system"};
	ck_assert_int_eq(gw_metrics_gauge(m, "spawn_test_mailbox_depth", "Depth.", "gauge", gl, 1,
	                                  two_systems, &n),
	                 GW_OK);
	ck_assert_int_eq(gw_metrics_process(m), GW_OK);
	char *text = render();
	char path[] = "/tmp/spawn-metrics-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.out 2>&1", path, path);
	int rc = system(cmd);
	char out[4096] = "";
	snprintf(cmd, sizeof cmd, "%s.out", path);
	FILE *o = fopen(cmd, "r");
	if (o) {
		size_t got = fread(out, 1, sizeof out - 1, o);
		out[got] = '\0';
		fclose(o);
	}
	unlink(cmd);
	unlink(path);
	ck_assert_msg(rc == 0 && out[0] == '\0', "promtool (rc %d): %s\n--- exposition:\n%s", rc,
	              out, text);
	free(text);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, counters_from_many_threads_sum_exactly);
	tcase_add_test(tc, counts_of_exited_threads_stay);
	tcase_add_test(tc, label_sets_over_the_bound_go_to_the_overflow_series);
	tcase_add_test(tc, the_registry_refuses_bad_names_and_duplicates);
	tcase_add_test(tc, cached_series_are_the_familys_series);
	tcase_add_test(tc, each_visits_every_series_with_its_total);
	tcase_add_test(tc, histograms_count_cumulative_buckets_in_base_units);
	tcase_add_test(tc, label_values_and_help_are_escaped);
	tcase_add_test(tc, gauges_are_read_at_scrape_time);
	tcase_add_test(tc, process_metrics_are_plausible);
	tcase_add_test(tc, promtool_accepts_the_exposition);
	suite_add_tcase(s, tc);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
