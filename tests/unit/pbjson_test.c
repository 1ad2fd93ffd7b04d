/* pbjson_test.c - the proto3 JSON mapping over a descriptor pool
 * (gateway/pbjson/pbjson.h): round trips of every special shape (int64 as
 * strings, enums by name, maps, bytes as base64, Timestamp, Any with
 * "@type", oneofs, lowerCamelCase names), clear errors for bad input,
 * all-or-nothing adds, and conversions racing adds from threads.
 *
 * The descriptor sets are made at build time by protoc
 * (tests/unit/CMakeLists.txt): PBJSON_V1 (pbjson_test.proto with its
 * imports), PBJSON_V2 (the same file name, other content), PBJSON_EXTRA
 * (extra.proto alone, without the file it imports), PBJSON_BOTH (extra.proto
 * with its imports).
 */
#include "pbjson.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static int add_file(spawn_pbjson *p, const char *path, char *err, size_t errlen)
{
	size_t len;
	uint8_t *d = slurp(path, &len);
	int rc = spawn_pbjson_add(p, d, len, err, errlen);
	free(d);
	return rc;
}

static spawn_pbjson *pool_v1(void)
{
	spawn_pbjson *p = spawn_pbjson_create();
	ck_assert_ptr_nonnull(p);
	char err[256] = "";
	ck_assert_msg(add_file(p, PBJSON_V1, err, sizeof err) == SPAWN_PBJSON_OK, "add: %s", err);
	return p;
}

/* round trips json as type and expects the JSON written back to be want. */
static void round_trip(spawn_pbjson *p, const char *type, const char *json, int options,
                       const char *want)
{
	char err[512] = "";
	uint8_t *bin = NULL;
	size_t blen = 0;
	int rc = spawn_pbjson_from_json(p, type, json, strlen(json), &bin, &blen, err, sizeof err);
	ck_assert_msg(rc == SPAWN_PBJSON_OK, "from_json %s: %d %s", json, rc, err);
	char *out = NULL;
	size_t olen = 0;
	rc = spawn_pbjson_to_json(p, type, bin, blen, options, &out, &olen, err, sizeof err);
	ck_assert_msg(rc == SPAWN_PBJSON_OK, "to_json: %d %s", rc, err);
	ck_assert_uint_eq(strlen(out), olen);
	ck_assert_msg(!strcmp(out, want), "got  %s\nwant %s", out, want);
	free(out);
	free(bin);
}

START_TEST(every_special_shape_round_trips_per_the_proto3_mapping)
{
	spawn_pbjson *p = pool_v1();
	ck_assert(spawn_pbjson_has(p, "pbjsontest.Everything"));
	ck_assert(spawn_pbjson_has(p, "google.protobuf.Any")); /* well-known, always there */
	ck_assert(!spawn_pbjson_has(p, "pbjsontest.Nope"));
	/* int64 written as a string (read from a number too), enum by name,
	 * bytes as base64, Timestamp as RFC 3339, Any with its @type, a oneof,
	 * snake_case read in either spelling and written lowerCamelCase. */
	round_trip(
	    p, "pbjsontest.Everything",
	    "{\"count\": 12, \"kind\": \"KIND_B\", \"tags\": [\"a\", \"b\"],"
	    " \"labels\": {\"k\": \"v\"}, \"inner\": {\"name\": \"x\"}, \"blob\": \"aGk=\","
	    " \"when\": \"2026-12-07T10:00:00Z\","
	    " \"extra\": {\"@type\": \"type.googleapis.com/pbjsontest.Inner\", \"name\": \"y\"},"
	    " \"number\": 7, \"snake_case_name\": \"s\"}",
	    0,
	    "{\"count\":\"12\",\"kind\":\"KIND_B\",\"tags\":[\"a\",\"b\"],\"labels\":{\"k\":\"v\"},"
	    "\"inner\":{\"name\":\"x\"},\"blob\":\"aGk=\",\"when\":\"2026-12-07T10:00:00Z\","
	    "\"extra\":{\"@type\":\"type.googleapis.com/pbjsontest.Inner\",\"name\":\"y\"},"
	    "\"number\":7,\"snakeCaseName\":\"s\"}");
	/* Options: proto names, defaults printed. */
	round_trip(p, "pbjsontest.Everything", "{\"snakeCaseName\": \"s\"}",
	           SPAWN_PBJSON_PROTO_NAMES, "{\"snake_case_name\":\"s\"}");
	round_trip(p, "pbjsontest.Inner", "{}", SPAWN_PBJSON_DEFAULTS, "{\"name\":\"\"}");
	/* An empty message: a valid (empty) binary and "{}" back. */
	round_trip(p, "pbjsontest.Inner", "{}", 0, "{}");
	spawn_pbjson_destroy(p);
}
END_TEST

/* expect_bad: from_json of json as type fails with rc and err mentions
 * needle. */
static void expect_bad(spawn_pbjson *p, const char *type, const char *json, int rc,
                       const char *needle)
{
	char err[512] = "";
	uint8_t *bin = NULL;
	size_t blen = 0;
	int got = spawn_pbjson_from_json(p, type, json, strlen(json), &bin, &blen, err, sizeof err);
	ck_assert_msg(got == rc, "%s as %s: rc %d (%s), want %d", json, type, got, err, rc);
	ck_assert_ptr_null(bin);
	ck_assert_msg(strstr(err, needle), "%s: error '%s' lacks '%s'", json, err, needle);
}

START_TEST(bad_json_is_refused_with_a_clear_error)
{
	spawn_pbjson *p = pool_v1();
	expect_bad(p, "pbjsontest.Nope", "{}", SPAWN_PBJSON_ENOTYPE, "pbjsontest.Nope");
	expect_bad(p, "pbjsontest.Inner", "{\"name\": ", SPAWN_PBJSON_EINVAL, "");
	expect_bad(p, "pbjsontest.Inner", "{\"nmae\": \"x\"}", SPAWN_PBJSON_EINVAL, "nmae");
	expect_bad(p, "pbjsontest.Everything", "{\"count\": \"twelve\"}", SPAWN_PBJSON_EINVAL, "");
	expect_bad(p, "pbjsontest.Everything", "{\"kind\": \"KIND_Z\"}", SPAWN_PBJSON_EINVAL, "");
	expect_bad(p, "pbjsontest.Everything",
	           "{\"extra\": {\"@type\": \"type.googleapis.com/nowhere.Type\"}}",
	           SPAWN_PBJSON_EINVAL, "nowhere.Type");
	expect_bad(p, "pbjsontest.Everything", "{\"text\": \"a\", \"number\": 1}",
	           SPAWN_PBJSON_EINVAL, "");
	/* Deep nesting is bounded by the parser, not a stack overflow. */
	char deep[40000];
	size_t n = 0;
	for (int i = 0; i < 4000; i++)
		n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"inner\":");
	expect_bad(p, "pbjsontest.Everything", deep, SPAWN_PBJSON_EINVAL, "nested deeper");
	/* 60 levels are within the bound: refused for what they are (the
	 * input ends), not for their depth. */
	deep[60 * 9] = '\0';
	char msg[600];
	uint8_t *bin = NULL;
	size_t blen;
	ck_assert_int_eq(spawn_pbjson_from_json(p, "pbjsontest.Everything", deep, strlen(deep),
	                                        &bin, &blen, msg, sizeof msg),
	                 SPAWN_PBJSON_EINVAL);
	ck_assert_ptr_null(strstr(msg, "nested deeper"));
	/* Binary that is not the type. */
	char err[256] = "";
	char *out = NULL;
	const uint8_t junk[] = {0x0a, 0x10, 'a'}; /* field 1: 16 bytes announced, 1 there */
	ck_assert_int_eq(spawn_pbjson_to_json(p, "pbjsontest.Inner", junk, sizeof junk, 0, &out,
	                                      NULL, err, sizeof err),
	                 SPAWN_PBJSON_EINVAL);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(
	    spawn_pbjson_to_json(p, "pbjsontest.Nope", junk, 0, 0, &out, NULL, err, sizeof err),
	    SPAWN_PBJSON_ENOTYPE);
	spawn_pbjson_destroy(p);
}
END_TEST

START_TEST(adds_are_checked_and_all_or_nothing)
{
	spawn_pbjson *p = spawn_pbjson_create();
	char err[512] = "";
	/* Not a descriptor set at all. */
	const uint8_t junk[] = {0x0a, 0xff, 0x01};
	ck_assert_int_eq(spawn_pbjson_add(p, junk, sizeof junk, err, sizeof err),
	                 SPAWN_PBJSON_EINVAL);
	/* A file whose import is not known: it does not build, nothing added. */
	ck_assert_int_eq(add_file(p, PBJSON_EXTRA, err, sizeof err), SPAWN_PBJSON_EINVAL);
	ck_assert_msg(strstr(err, "pbjson_test.proto"), "error: %s", err);
	ck_assert(!spawn_pbjson_has(p, "pbjsontest.extra.Wrapper"));
	/* With its import in the same set: fine; the same set again: fine. */
	ck_assert_msg(add_file(p, PBJSON_BOTH, err, sizeof err) == SPAWN_PBJSON_OK, "%s", err);
	ck_assert(spawn_pbjson_has(p, "pbjsontest.extra.Wrapper"));
	ck_assert_msg(add_file(p, PBJSON_V1, err, sizeof err) == SPAWN_PBJSON_OK, "%s", err);
	ck_assert_msg(add_file(p, PBJSON_BOTH, err, sizeof err) == SPAWN_PBJSON_OK, "%s", err);
	/* The same file name with other content: refused, the pool unchanged. */
	ck_assert_int_eq(add_file(p, PBJSON_V2, err, sizeof err), SPAWN_PBJSON_ECONFLICT);
	ck_assert_msg(strstr(err, "pbjson_test.proto"), "error: %s", err);
	round_trip(p, "pbjsontest.Inner", "{\"name\": \"still a string\"}", 0,
	           "{\"name\":\"still a string\"}");
	spawn_pbjson_destroy(p);
}
END_TEST

/* ---- threads ---------------------------------------------------------------------- */

typedef struct racer {
	spawn_pbjson *p;
	atomic_int *stop;
	int rounds, bad;
} racer;

static void *convert_main(void *arg)
{
	racer *r = arg;
	const char *json = "{\"count\":\"3\",\"inner\":{\"name\":\"n\"}}";
	while (!atomic_load(r->stop) || r->rounds < 200) {
		uint8_t *bin = NULL;
		size_t blen = 0;
		char *out = NULL;
		if (spawn_pbjson_from_json(r->p, "pbjsontest.Everything", json, strlen(json), &bin,
		                           &blen, NULL, 0) != SPAWN_PBJSON_OK ||
		    spawn_pbjson_to_json(r->p, "pbjsontest.Everything", bin, blen, 0, &out, NULL,
		                         NULL, 0) != SPAWN_PBJSON_OK ||
		    strcmp(out, json))
			r->bad++;
		free(bin);
		free(out);
		r->rounds++;
	}
	return NULL;
}

START_TEST(conversions_run_while_sets_are_added)
{
	spawn_pbjson *p = pool_v1();
	atomic_int stop = 0;
	racer r[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (racer){.p = p, .stop = &stop};
		ck_assert_int_eq(pthread_create(&t[i], NULL, convert_main, &r[i]), 0);
	}
	char err[256];
	for (int i = 0; i < 50; i++) {
		ck_assert_int_eq(add_file(p, PBJSON_BOTH, err, sizeof err), SPAWN_PBJSON_OK);
		ck_assert_int_eq(add_file(p, PBJSON_V2, err, sizeof err), SPAWN_PBJSON_ECONFLICT);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(r[i].bad, 0);
	}
	spawn_pbjson_destroy(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pbjson");
	TCase *tc = tcase_create("pbjson");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, every_special_shape_round_trips_per_the_proto3_mapping);
	tcase_add_test(tc, bad_json_is_refused_with_a_clear_error);
	tcase_add_test(tc, adds_are_checked_and_all_or_nothing);
	tcase_add_test(tc, conversions_run_while_sets_are_added);
	suite_add_tcase(s, tc);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
