/* template_test.c - google.api.http path templates (gateway/http/template.c):
 * what parses, what is refused with a reason, and how paths match. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

static gw_tmpl t;
static char why[300];

static bool parse(const char *s)
{
	gw_tmpl_fini(&t);
	why[0] = 0;
	return gw_tmpl_parse(s, &t, why, sizeof why);
}

/* match: whether path matches t; vals gets "field=value;" per variable. */
static bool match(const char *path, char *vals, size_t n)
{
	char copy[512], *segs[GW_TMPL_SEGS];
	size_t pos[GW_TMPL_SEGS + 1];
	snprintf(copy, sizeof copy, "%s", path);
	if (t.verb) {
		char *colon = strrchr(copy, ':');
		if (!colon || strcmp(colon + 1, t.verb))
			return false;
		*colon = 0;
	}
	int k = gw_tmpl_split(copy, segs);
	if (k <= 0 || !gw_tmpl_match(&t, segs, k, pos))
		return false;
	vals[0] = 0;
	for (size_t v = 0; v < t.nvars; v++) {
		size_t len = strlen(vals);
		snprintf(vals + len, n - len, "%s=", t.vars[v].field);
		for (size_t j = pos[t.vars[v].from]; j < pos[t.vars[v].to]; j++) {
			len = strlen(vals);
			snprintf(vals + len, n - len, "%s%s", j > pos[t.vars[v].from] ? "/" : "",
			         segs[j]);
		}
		len = strlen(vals);
		snprintf(vals + len, n - len, ";");
	}
	return true;
}

START_TEST(templates_parse_and_match)
{
	char v[256];
	ck_assert(parse("/v1/counters/{counter}:add"));
	ck_assert_str_eq(t.verb, "add");
	ck_assert(match("/v1/counters/c1:add", v, sizeof v));
	ck_assert_str_eq(v, "counter=c1;");
	ck_assert(!match("/v1/counters/c1", v, sizeof v));
	ck_assert(!match("/v1/counters/c1:sub", v, sizeof v));
	ck_assert(!match("/v1/counter/c1:add", v, sizeof v));

	ck_assert(parse("/v1/{name=shelves/*/books/*}/x"));
	ck_assert(match("/v1/shelves/s1/books/b2/x", v, sizeof v));
	ck_assert_str_eq(v, "name=shelves/s1/books/b2;");
	ck_assert(!match("/v1/shelves/s1/books/x", v, sizeof v));

	ck_assert(parse("/v1/{a.b}/*/{c}"));
	ck_assert(match("/v1/x/anything/y", v, sizeof v));
	ck_assert_str_eq(v, "a.b=x;c=y;");
	ck_assert(!match("/v1/x//y", v, sizeof v)); /* an empty segment matches nothing */

	ck_assert(parse("/files/{path=**}"));
	ck_assert(match("/files/a/b/c", v, sizeof v));
	ck_assert_str_eq(v, "path=a/b/c;");
	ck_assert(match("/files", v, sizeof v)); /* ** may match no segment */
	ck_assert_str_eq(v, "path=;");

	ck_assert(parse("/v1/**"));
	ck_assert(match("/v1/x/y", v, sizeof v));
	ck_assert_uint_eq(t.nvars, 0);
}
END_TEST

START_TEST(bad_templates_are_refused_with_a_reason)
{
	static const char *const bad[] = {
	    "v1/x",       /* no leading / */
	    "/v1/{x",     /* unclosed */
	    "/v1/{x}y",   /* text after a variable */
	    "/v1/**/x",   /* ** not last */
	    "/v1//x",     /* empty segment */
	    "/v1/x/",     /* ends with / */
	    "/v1/{1x}",   /* not a field path */
	    "/v1/{a..b}", /* not a field path */
	    "/v1/x:",     /* empty verb */
	    "/v1/x y",    /* a space */
	    "/v1/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{p}/{q}", /* 17 */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(!parse(bad[i]), "%s parsed", bad[i]);
		ck_assert_msg(why[0], "%s: no reason", bad[i]);
	}
	char big[GW_TMPL_MAX_BYTES + 8];
	memset(big, 'a', sizeof big - 1);
	big[0] = '/';
	big[sizeof big - 1] = 0;
	ck_assert(!parse(big));
	char many[GW_TMPL_SEGS * 2 + 8] = "";
	for (int i = 0; i <= GW_TMPL_SEGS; i++)
		strcat(many, "/a");
	ck_assert(!parse(many));
	ck_assert_ptr_nonnull(strstr(why, "segments"));
}
END_TEST

START_TEST(a_path_of_too_many_segments_is_refused)
{
	char path[GW_TMPL_SEGS * 2 + 8] = "", *segs[GW_TMPL_SEGS];
	for (int i = 0; i < GW_TMPL_SEGS; i++)
		strcat(path, "/a");
	ck_assert_int_eq(gw_tmpl_split(path, segs), GW_TMPL_SEGS);
	strcpy(path, "");
	for (int i = 0; i <= GW_TMPL_SEGS; i++)
		strcat(path, "/a");
	ck_assert_int_eq(gw_tmpl_split(path, segs), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("template");
	TCase *tc = tcase_create("template");
	tcase_add_test(tc, templates_parse_and_match);
	tcase_add_test(tc, bad_templates_are_refused_with_a_reason);
	tcase_add_test(tc, a_path_of_too_many_segments_is_refused);
	suite_add_tcase(s, tc);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	gw_tmpl_fini(&t);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
