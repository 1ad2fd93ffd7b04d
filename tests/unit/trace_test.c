/* trace_test.c - W3C trace context values (gateway/trace/trace.h) and the
 * OTLP exporter's bounded queue and failure accounting (otlp.h). */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "otlp.h"
#include "trace.h"

#define TR "4bf92f3577b34da6a3ce929d0e0e4736"
#define SP "00f067aa0ba902b7"

START_TEST(a_valid_traceparent_is_read_and_written_back_the_same)
{
	gw_trace_pos p;
	ck_assert(gw_trace_parse("00-" TR "-" SP "-01", &p));
	ck_assert_int_eq(p.flags, 1);
	ck_assert_int_eq(p.trace[0], 0x4b);
	ck_assert_int_eq(p.span[7], 0xb7);
	char out[GW_TRACEPARENT_LEN + 1];
	gw_trace_format(&p, out);
	ck_assert_str_eq(out, "00-" TR "-" SP "-01");
	ck_assert(gw_trace_parse("00-" TR "-" SP "-00", &p));
	ck_assert_int_eq(p.flags, 0);
}
END_TEST

START_TEST(a_later_version_is_read_as_version_00)
{
	gw_trace_pos p;
	ck_assert(gw_trace_parse("01-" TR "-" SP "-03-more-fields", &p));
	ck_assert_int_eq(p.flags, 1); /* only the sampled bit is known */
	ck_assert(gw_trace_parse("cc-" TR "-" SP "-01", &p));
	ck_assert(!gw_trace_parse("cc-" TR "-" SP "-01.x", &p));
}
END_TEST

START_TEST(an_invalid_traceparent_is_refused_and_the_output_untouched)
{
	static const char *bad[] = {
	    "",
	    "00",
	    "00-" TR "-" SP "-0",                            /* short */
	    "00-" TR "-" SP "-01-",                          /* 00 with more */
	    "00-" TR "-" SP "-011",                          /* long */
	    "ff-" TR "-" SP "-01",                           /* version ff */
	    "00-00000000000000000000000000000000-" SP "-01", /* zero trace */
	    "00-" TR "-0000000000000000-01",                 /* zero parent */
	    "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SP "-01", /* uppercase */
	    "00-" TR "-" SP "-0g",                           /* not hex */
	    "00_" TR "_" SP "_01",                           /* separators */
	    "0x-" TR "-" SP "-01",                           /* version not hex */
	    "00-" TR "-00f067aa0ba902b-701",                 /* misplaced dash */
	    "00-4bf92f3577b34da6a3ce929d0e0e473 -" SP "-01", /* space */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		gw_trace_pos p;
		memset(&p, 0x5a, sizeof p);
		ck_assert_msg(!gw_trace_parse(bad[i], &p), "accepted %s", bad[i]);
		ck_assert_int_eq(p.flags, 0x5a);
	}
	gw_trace_pos p;
	ck_assert(!gw_trace_parse(NULL, &p));
}
END_TEST

START_TEST(tracestate_follows_the_w3c_list_rules)
{
	ck_assert(gw_tracestate_valid("congo=t61rcWkgMzE"));
	ck_assert(gw_tracestate_valid("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
	ck_assert(gw_tracestate_valid(" rojo=1 , ,congo=2 "));
	ck_assert(gw_tracestate_valid("fw529a3039@dt=abc"));
	ck_assert(gw_tracestate_valid(""));
	ck_assert(!gw_tracestate_valid("Rojo=1"));     /* uppercase key */
	ck_assert(!gw_tracestate_valid("rojo"));       /* no value */
	ck_assert(!gw_tracestate_valid("rojo="));      /* empty value */
	ck_assert(!gw_tracestate_valid("rojo=a=b"));   /* '=' in value */
	ck_assert(!gw_tracestate_valid("rojo=a\x01")); /* control */
	ck_assert(!gw_tracestate_valid("t@Sys=1"));    /* system uppercase */
	ck_assert(!gw_tracestate_valid("@sys=1"));     /* no tenant */
	char many[40 * 8] = "";
	for (int i = 0; i < 33; i++)
		sprintf(many + strlen(many), "%sk%d=v", i ? "," : "", i);
	ck_assert(!gw_tracestate_valid(many)); /* 33 members */
	char big[600];
	memset(big, 'a', sizeof big - 1);
	big[0] = 'k', big[1] = '=';
	big[sizeof big - 1] = 0;
	ck_assert(!gw_tracestate_valid(big)); /* over 512 */
}
END_TEST

START_TEST(new_ids_are_random_and_never_zero)
{
	gw_trace_pos a, b;
	gw_trace_start(&a);
	gw_trace_start(&b);
	ck_assert_int_eq(a.flags, 1);
	ck_assert(memcmp(a.trace, b.trace, 16) != 0);
	ck_assert(memcmp(a.span, b.span, 8) != 0);
	for (int i = 0; i < 1000; i++) {
		uint8_t x[1];
		gw_trace_random(x, 1); /* one byte: zero would come 4 times in 1000 */
		ck_assert_int_ne(x[0], 0);
	}
	char out[GW_TRACEPARENT_LEN + 1];
	gw_trace_format(&a, out);
	gw_trace_pos back;
	ck_assert(gw_trace_parse(out, &back));
	ck_assert(!memcmp(&back, &a, sizeof a));
}
END_TEST

static Spawn__InvocationRequest *req_with(spawn_arena *a, const char **kv, size_t n)
{
	Spawn__InvocationRequest *rq = spawn_arena_alloc(a, sizeof *rq);
	spawn__invocation_request__init(rq);
	rq->metadata = spawn_arena_alloc(a, (n ? n : 1) * sizeof *rq->metadata);
	for (size_t i = 0; i < n; i++) {
		Spawn__InvocationRequest__MetadataEntry *e = spawn_arena_alloc(a, sizeof *e);
		spawn__invocation_request__metadata_entry__init(e);
		e->key = (char *)kv[2 * i];
		e->value = (char *)kv[2 * i + 1];
		rq->metadata[i] = e;
	}
	rq->n_metadata = n;
	return rq;
}

START_TEST(a_header_traceparent_is_merged_unless_the_request_has_a_valid_one)
{
	spawn_arena a;
	spawn_arena_init(&a, 0);
	const char *none[] = {"x", "1"};
	Spawn__InvocationRequest *rq = req_with(&a, none, 1);
	ck_assert(gw_trace_md_merge(rq, &a, "00-" TR "-" SP "-01", "k=v", 64));
	ck_assert_str_eq(gw_trace_md_get(rq, "traceparent"), "00-" TR "-" SP "-01");
	ck_assert_str_eq(gw_trace_md_get(rq, "tracestate"), "k=v");
	ck_assert_str_eq(gw_trace_md_get(rq, "x"), "1");

	/* the request's own valid one wins */
	const char *own[] = {"traceparent", "00-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-" SP "-01"};
	rq = req_with(&a, own, 1);
	ck_assert(gw_trace_md_merge(rq, &a, "00-" TR "-" SP "-01", NULL, 64));
	ck_assert_str_eq(gw_trace_md_get(rq, "traceparent"), own[1]);

	/* an invalid one in the request is replaced by the header's, its
	 * tracestate with it; an invalid header tracestate is not taken */
	const char *inv[] = {"TraceParent", "garbage", "tracestate", "old=1"};
	rq = req_with(&a, inv, 2);
	ck_assert(gw_trace_md_merge(rq, &a, "00-" TR "-" SP "-01", "BAD STATE", 64));
	ck_assert_uint_eq(rq->n_metadata, 1);
	ck_assert_str_eq(gw_trace_md_get(rq, "traceparent"), "00-" TR "-" SP "-01");
	ck_assert_ptr_null(gw_trace_md_get(rq, "tracestate"));

	/* an invalid header changes nothing */
	rq = req_with(&a, none, 1);
	ck_assert(gw_trace_md_merge(rq, &a, "00-" TR "-" SP "-0x", "k=v", 64));
	ck_assert_uint_eq(rq->n_metadata, 1);

	/* a full map is not grown */
	rq = req_with(&a, none, 1);
	ck_assert(!gw_trace_md_merge(rq, &a, "00-" TR "-" SP "-01", NULL, 1));
	ck_assert_uint_eq(rq->n_metadata, 1);
	spawn_arena_fini(&a);
}
END_TEST

/* ---- the exporter ---------------------------------------------------------- */

static char logged[8][1200];
static int n_logged;

static void sink(const char *line, size_t len)
{
	if (n_logged < 8) {
		size_t n = len < sizeof logged[0] - 1 ? len : sizeof logged[0] - 1;
		memcpy(logged[n_logged], line, n);
		logged[n_logged][n] = 0;
	}
	n_logged++;
}

/* closed_port: a loopback port nothing listens on (bound, then closed). */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

START_TEST(the_queue_is_bounded_and_a_failed_export_is_counted_and_logged)
{
	n_logged = 0;
	gw_log_set_test_hooks(NULL, sink);
	gw_log_reset();
	char url[96], msg[200];
	snprintf(url, sizeof url, "http://u:sekret-pw@127.0.0.1:%d", closed_port());
	gw_otlp *e = NULL;
	gw_otlp_opts o = {.endpoint = url, .queue_max = 16, .batch = 8, .hold = true};
	ck_assert_int_eq(gw_otlp_create(&e, &o, msg, sizeof msg), GW_OK);
	gw_span s = {.name = "invoke",
	             .kind = GW_SPAN_SERVER,
	             .start_ns = 1,
	             .end_ns = 2,
	             .system = "sys",
	             .actor = "a\xc3\xa9",
	             .action = "Go"};
	gw_trace_random(s.trace, 16);
	gw_trace_random(s.span, 8);
	s.flags = 1;
	for (int i = 0; i < 20; i++)
		gw_otlp_submit(e, &s);
	uint64_t sent, dropped, failed;
	gw_otlp_stats(e, &sent, &dropped, &failed);
	ck_assert_uint_eq(dropped, 4); /* 16 held, 4 over the bound */
	ck_assert_uint_eq(sent, 0);
	gw_otlp_stop(e); /* the 16 go out (two batches), to nobody */
	gw_otlp_stats(e, &sent, &dropped, &failed);
	ck_assert_uint_eq(sent, 0);
	ck_assert_uint_eq(failed, 2);
	ck_assert_uint_eq(dropped, 20);
	gw_otlp_submit(e, &s); /* stopped: dropped, counted */
	gw_otlp_stats(e, &sent, &dropped, &failed);
	ck_assert_uint_eq(dropped, 21);
	gw_otlp_destroy(e);
	/* one line at the first failure (the second is rate-limited), naming no
	 * URL, and the rest of the count at shutdown */
	ck_assert_int_eq(n_logged, 2);
	ck_assert_ptr_nonnull(strstr(logged[0], "otlp: spans not exported"));
	ck_assert_ptr_nonnull(strstr(logged[0], "12 spans dropped"));
	ck_assert_ptr_null(strstr(logged[0], "sekret-pw"));
	ck_assert_ptr_nonnull(strstr(logged[1], "otlp: 8 spans dropped since the last report"));
	gw_log_set_test_hooks(NULL, NULL);
}
END_TEST

START_TEST(an_endpoint_that_is_not_http_is_refused_without_echoing_it)
{
	gw_otlp *e = NULL;
	char msg[200];
	static const char *bad[] = {"", "127.0.0.1:4318", "ftp://x/v1/traces", "http://",
	                            "file:///etc/passwd"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		gw_otlp_opts o = {.endpoint = bad[i]};
		ck_assert_int_eq(gw_otlp_create(&e, &o, msg, sizeof msg), GW_ECONFIG);
		ck_assert_ptr_null(e);
		ck_assert_ptr_null(strstr(msg, "passwd"));
		ck_assert_ptr_null(strstr(msg, "ftp://x"));
		ck_assert_ptr_null(strstr(msg, "4318"));
	}
	gw_otlp_destroy(NULL);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("trace");
	TCase *w3c = tcase_create("w3c");
	tcase_add_test(w3c, a_valid_traceparent_is_read_and_written_back_the_same);
	tcase_add_test(w3c, a_later_version_is_read_as_version_00);
	tcase_add_test(w3c, an_invalid_traceparent_is_refused_and_the_output_untouched);
	tcase_add_test(w3c, tracestate_follows_the_w3c_list_rules);
	tcase_add_test(w3c, new_ids_are_random_and_never_zero);
	tcase_add_test(w3c, a_header_traceparent_is_merged_unless_the_request_has_a_valid_one);
	suite_add_tcase(s, w3c);
	TCase *otlp = tcase_create("otlp");
	tcase_set_timeout(otlp, 60);
	tcase_add_test(otlp, the_queue_is_bounded_and_a_failed_export_is_counted_and_logged);
	tcase_add_test(otlp, an_endpoint_that_is_not_http_is_refused_without_echoing_it);
	suite_add_tcase(s, otlp);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
