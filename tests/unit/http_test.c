/* http_test.c - the HTTP listener (gateway/http/http.h): the route table,
 * replies now and later from another thread, keep-alive, the bounds (body,
 * requests in progress) and their refusals, the drain, and a destroy with
 * requests still parked. A real listener on an ephemeral loopback port and
 * libcurl as the client. */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "uricheck.h"

typedef struct got {
	char buf[4096];
	size_t n;
} got;

static size_t collect(char *p, size_t size, size_t n, void *user)
{
	got *g = user;
	size_t len = size * n;
	if (g->n + len >= sizeof g->buf)
		len = sizeof g->buf - 1 - g->n;
	memcpy(g->buf + g->n, p, len);
	g->n += len;
	g->buf[g->n] = 0;
	return size * n;
}

/* request makes one call on easy handle e (reused: keep-alive); returns the
 * status and the body in *g. */
static long request(CURL *e, int port, const char *method, const char *path, const void *body,
                    size_t len, got *g)
{
	char url[GW_HTTP_MAX_URI + 64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	memset(g, 0, sizeof *g);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L); /* "..", "//" reach the listener */
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, g);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	CURLcode rc = curl_easy_perform(e);
	ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

/* ---- handlers ------------------------------------------------------------------ */

static void h_echo(void *user, gw_http_req *r)
{
	(void)user;
	const char *why;
	int code = gw_http_req_refusal(r, &why);
	if (code) {
		gw_http_reply(r, code, "text/plain", why, strlen(why));
		return;
	}
	size_t n;
	const uint8_t *b = gw_http_req_body(r, &n);
	char out[512];
	const char *q = gw_http_req_query(r, "x");
	int len = snprintf(out, sizeof out, "%s %s x=%s body=%.*s", gw_http_req_method(r),
	                   gw_http_req_path(r), q ? q : "-", (int)n, b ? (const char *)b : "");
	if (len >= (int)sizeof out)
		len = (int)sizeof out - 1; /* snprintf says what it would have written */
	gw_http_reply(r, 200, "text/plain", out, (size_t)len);
}

static void h_other(void *user, gw_http_req *r)
{
	(void)user;
	gw_http_reply(r, 201, NULL, "deeper", 6);
}

/* Parked requests: answered later by the test from its own thread. */
static pthread_mutex_t pmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pcv = PTHREAD_COND_INITIALIZER;
static gw_http_req *parked[16];
static int nparked;

static void h_park(void *user, gw_http_req *r)
{
	(void)user;
	const char *why;
	int code = gw_http_req_refusal(r, &why);
	if (code) {
		gw_http_reply(r, code, "text/plain", why, strlen(why));
		return;
	}
	pthread_mutex_lock(&pmu);
	parked[nparked++] = r;
	pthread_cond_broadcast(&pcv);
	pthread_mutex_unlock(&pmu);
}

static void wait_parked(int n)
{
	pthread_mutex_lock(&pmu);
	while (nparked < n)
		pthread_cond_wait(&pcv, &pmu);
	pthread_mutex_unlock(&pmu);
}

static gw_http *start(unsigned max_pending, size_t max_body)
{
	gw_http *h = NULL;
	char why[256];
	gw_http_opts o = {.addr = "127.0.0.1:0", .max_pending = max_pending, .max_body = max_body};
	ck_assert_int_eq(gw_http_create(&h, &o, why, sizeof why), GW_OK);
	ck_assert_int_eq(gw_http_route(h, "POST", "/api", h_echo, NULL), GW_OK);
	ck_assert_int_eq(gw_http_route(h, "POST", "/api/deeper/", h_other, NULL), GW_OK);
	ck_assert_int_eq(gw_http_route(h, "POST", "/park", h_park, NULL), GW_OK);
	ck_assert_int_eq(gw_http_start(h, why, sizeof why), GW_OK);
	ck_assert_int_gt(gw_http_port(h), 0);
	ck_assert_int_eq(gw_http_route(h, "GET", "/late", h_echo, NULL), GW_EINVAL);
	nparked = 0;
	return h;
}

START_TEST(routes_match_by_method_and_longest_prefix)
{
	gw_http *h = start(0, 0);
	CURL *e = curl_easy_init();
	got g;
	int port = gw_http_port(h);
	ck_assert_int_eq(request(e, port, "POST", "/api/x?x=1", "hi", 2, &g), 200);
	ck_assert_str_eq(g.buf, "POST /api/x x=1 body=hi");
	ck_assert_int_eq(request(e, port, "POST", "/api", "", 0, &g), 200);
	ck_assert_int_eq(request(e, port, "POST", "/api/deeper/y", "", 0, &g), 201);
	ck_assert_str_eq(g.buf, "deeper");
	ck_assert_int_eq(request(e, port, "POST", "/apiary", "", 0, &g), 404); /* not a prefix */
	ck_assert_int_eq(request(e, port, "GET", "/api/x", NULL, 0, &g), 405);
	ck_assert_int_eq(request(e, port, "POST", "/nowhere", "", 0, &g), 404);
	long conns = -1;
	curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &conns);
	ck_assert_int_eq(conns, 0); /* the last request reused the connection */
	gw_http_stats st;
	gw_http_get_stats(h, &st);
	ck_assert_uint_eq(st.requests, 3);
	ck_assert_uint_eq(st.not_found, 3);
	curl_easy_cleanup(e);
	gw_http_destroy(h);
}
END_TEST

/* The request target is checked before any route (uricheck.h): an
 * encoded NUL no longer cuts "/api%00x" to the route "/api". */
START_TEST(bad_targets_are_refused_400_before_any_route_and_the_connection_serves_on)
{
	gw_http *h = start(0, 0);
	CURL *e = curl_easy_init();
	got g;
	int port = gw_http_port(h);
	static const struct {
		const char *path, *why;
	} bad[] = {
	    {"/api%00", "encoded NUL"},
	    {"/api%00/x", "encoded NUL"},
	    {"/api/x?x=a%00b", "encoded NUL"},
	    {"/api/%ff", "not valid UTF-8"},
	    {"/api/%c0%af", "not valid UTF-8"},           /* overlong '/' */
	    {"/api/%ed%a0%80", "not valid UTF-8"},        /* a surrogate */
	    {"/api/x?x=%f4%90%80%80", "not valid UTF-8"}, /* past U+10FFFF */
	    {"/api/%0a", "control byte"},
	    {"/api/%7f", "control byte"},
	    {"/api/%zz", "malformed percent escape"},
	    {"/api/x%4", "malformed percent escape"},
	    {"/api/../park", "'..' segment"},
	    {"/api/%2e%2e/park", "'..' segment"},
	    {"/api/./x", "'..' segment"},
	    {"//api", "empty segment"},
	    {"/api//x", "empty segment"},
	    {"/api/%2f/x", "empty segment"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(request(e, port, "POST", bad[i].path, "body", 4, &g), 400);
		ck_assert_msg(strstr(g.buf, "{\"code\":3,\"message\":\"") == g.buf &&
		                  strstr(g.buf, bad[i].why),
		              "%s: %s", bad[i].path, g.buf);
		ck_assert_int_eq(request(e, port, "POST", "/api/ok", "x", 1, &g), 200);
		ck_assert_str_eq(g.buf, "POST /api/ok x=- body=x");
	}
	char longp[GW_HTTP_MAX_URI + 16] = "/api/";
	memset(longp + 5, 'a', GW_HTTP_MAX_URI);
	longp[GW_HTTP_MAX_URI + 5] = 0;
	ck_assert_int_eq(request(e, port, "POST", longp, "", 0, &g), 414);
	longp[GW_HTTP_MAX_URI] = 0; /* exactly the bound: served */
	ck_assert_int_eq(request(e, port, "POST", longp, "", 0, &g), 200);
	/* What stays allowed: UTF-8 names, escapes of ordinary bytes, '+'. */
	ck_assert_int_eq(request(e, port, "POST", "/api/%C3%A9t%C3%A9?x=a+b%2Bc", "", 0, &g), 200);
	ck_assert_str_eq(g.buf, "POST /api/\xc3\xa9t\xc3\xa9 x=a b+c body=");
	ck_assert_int_eq(request(e, port, "POST", "/api/x.y/..z", "", 0, &g), 200);
	gw_http_stats st;
	gw_http_get_stats(h, &st);
	ck_assert_uint_eq(st.not_found, sizeof bad / sizeof bad[0] + 1);
	curl_easy_cleanup(e);
	gw_http_destroy(h);
}
END_TEST

START_TEST(the_target_check_alone)
{
	ck_assert_ptr_null(gw_http_check_uri("/metrics"));
	ck_assert_ptr_null(gw_http_check_uri("/"));
	ck_assert_ptr_null(gw_http_check_uri("/readyz/"));
	const gw_uri_refusal *r = gw_http_check_uri("/metrics%00");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->status, 400);
	ck_assert(gw_http_is_uri_refusal(r));
	ck_assert(!gw_http_is_uri_refusal(&r));
	ck_assert_int_eq(gw_http_check_uri("")->status, 400);
	ck_assert_int_eq(gw_http_check_uri("*")->status, 400);
	ck_assert_int_eq(gw_http_check_uri(NULL)->status, 400);
	ck_assert_int_eq(gw_http_check_uri("/%")->status, 400);
	ck_assert_int_eq(gw_http_check_uri("/..")->status, 400);
	ck_assert_int_eq(gw_http_check_uri("/x?%")->status, 400);
	ck_assert_ptr_null(gw_http_check_uri("/x?"));
}
END_TEST

START_TEST(a_body_over_the_bound_is_refused_413_and_the_next_call_served)
{
	gw_http *h = start(0, 1024);
	CURL *e = curl_easy_init();
	got g;
	char *big = malloc(4096);
	memset(big, 'a', 4096);
	ck_assert_int_eq(request(e, gw_http_port(h), "POST", "/api", big, 4096, &g), 413);
	ck_assert_ptr_nonnull(strstr(g.buf, "size limit"));
	ck_assert_int_eq(request(e, gw_http_port(h), "POST", "/api", big, 1024, &g), 200);
	free(big);
	curl_easy_cleanup(e);
	gw_http_destroy(h);
}
END_TEST

typedef struct call_arg {
	int port;
	long status;
	got g;
} call_arg;

static void *call_park(void *arg)
{
	call_arg *a = arg;
	CURL *e = curl_easy_init();
	a->status = request(e, a->port, "POST", "/park", "p", 1, &a->g);
	curl_easy_cleanup(e);
	return NULL;
}

START_TEST(replies_come_later_from_another_thread_and_the_pending_bound_holds)
{
	gw_http *h = start(2, 0);
	call_arg a[3];
	pthread_t t[3];
	for (int i = 0; i < 2; i++) {
		a[i] = (call_arg){.port = gw_http_port(h)};
		pthread_create(&t[i], NULL, call_park, &a[i]);
	}
	wait_parked(2);
	/* A third request over the bound of 2 is refused at once. */
	a[2] = (call_arg){.port = gw_http_port(h)};
	pthread_create(&t[2], NULL, call_park, &a[2]);
	pthread_join(t[2], NULL);
	ck_assert_int_eq(a[2].status, 503);
	ck_assert_ptr_nonnull(strstr(a[2].g.buf, "--http-max-pending"));
	gw_http_stats st;
	gw_http_get_stats(h, &st);
	ck_assert_uint_eq(st.pending, 2);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(gw_http_reply(parked[i], 200, "text/plain", "later", 5), GW_OK);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(a[i].status, 200);
		ck_assert_str_eq(a[i].g.buf, "later");
	}
	gw_http_get_stats(h, &st);
	ck_assert_uint_eq(st.pending, 0);
	gw_http_destroy(h);
}
END_TEST

START_TEST(drain_refuses_new_requests_and_destroy_answers_the_parked_ones)
{
	gw_http *h = start(0, 0);
	CURL *e = curl_easy_init();
	got g;
	int port = gw_http_port(h);
	ck_assert_int_eq(request(e, port, "POST", "/api", "", 0, &g), 200); /* kept alive */
	call_arg a = {.port = port};
	pthread_t t;
	pthread_create(&t, NULL, call_park, &a);
	wait_parked(1);
	ck_assert_uint_eq(gw_http_drain(h, 50), 1); /* still parked after the wait */
	/* The kept-alive connection still reaches the listener: refused 503. */
	ck_assert_int_eq(request(e, port, "POST", "/api", "", 0, &g), 503);
	ck_assert_ptr_nonnull(strstr(g.buf, "shutting down"));
	curl_easy_cleanup(e);
	gw_http_destroy(h); /* answers the parked request 503 */
	pthread_join(t, NULL);
	ck_assert_int_eq(a.status, 503);
	/* The handler's own late reply is ignored; its reference frees it. */
	gw_http_reply(parked[0], 200, NULL, NULL, 0);
}
END_TEST

START_TEST(bad_addresses_are_refused)
{
	gw_http *h = NULL;
	char why[256];
	gw_http_opts o = {.addr = "no-port"};
	ck_assert_int_eq(gw_http_create(&h, &o, why, sizeof why), GW_ECONFIG);
	o.addr = "127.0.0.1:99999";
	ck_assert_int_eq(gw_http_create(&h, &o, why, sizeof why), GW_ECONFIG);
	ck_assert_ptr_null(h);
}
END_TEST

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("listener");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, routes_match_by_method_and_longest_prefix);
	tcase_add_test(tc, a_body_over_the_bound_is_refused_413_and_the_next_call_served);
	tcase_add_test(tc, replies_come_later_from_another_thread_and_the_pending_bound_holds);
	tcase_add_test(tc, drain_refuses_new_requests_and_destroy_answers_the_parked_ones);
	tcase_add_test(tc, bad_addresses_are_refused);
	tcase_add_test(tc,
	               bad_targets_are_refused_400_before_any_route_and_the_connection_serves_on);
	tcase_add_test(tc, the_target_check_alone);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
