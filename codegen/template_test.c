/* template_test.c - the template engine and the name mangling. */
#include <check.h>
#include <string.h>

#include "names.h"
#include "template.h"

/* render parses and renders text against d; returns the output or, on
 * failure, "ERR: " + the errors. */
static const char *render(cg_arena *a, const char *text, const tpl_dict *d)
{
	cg_errors errs = {CG_BUF_INIT, 0};
	cg_buf out = CG_BUF_INIT;
	tpl *t;
	if (tpl_parse(&t, a, "t.tpl", text, strlen(text), &errs) == 0)
		tpl_render(t, d, a, &out, &errs);
	const char *r = errs.count ? cg_printf(a, "ERR: %s", cg_buf_str(&errs.text))
	                           : cg_strdup(a, cg_buf_str(&out));
	cg_buf_fini(&out);
	cg_buf_fini(&errs.text);
	return r;
}

static cg_arena *a;
static tpl_dict *d;

static void setup(void)
{
	a = cg_arena_create();
	d = tpl_dict_create(a);
	tpl_set(d, "name", "Incrementor");
	tpl_set(d, "empty", "");
	tpl_set_flag(d, "yes", true);
	tpl_list(d, "none");
	const char *acts[] = {"Add", "Get", "Reset"};
	for (int i = 0; i < 3; i++) {
		tpl_dict *x = tpl_add(d, "actions");
		tpl_set(x, "action", acts[i]);
	}
}

static void teardown(void)
{
	cg_arena_destroy(a);
}

START_TEST(variables_are_substituted_and_dollars_escaped)
{
	ck_assert_str_eq(render(a, "a $name$ costs $$5", d), "a Incrementor costs $5");
}
END_TEST

START_TEST(filters_chain_left_to_right)
{
	ck_assert_str_eq(render(a, "$name|snake|upper$", d), "INCREMENTOR");
	tpl_set(d, "q", "say \"hi\"\\?\?/\n\x01");
	ck_assert_str_eq(render(a, "$q|c$", d), "say \\\"hi\\\"\\\\\\?\\?/\\n\\001");
	ck_assert_str_eq(render(a, "$q|py$", d), "say \\\"hi\\\"\\\\?\?/\\n\\x01");
	ck_assert_str_eq(render(a, "$q|js$", d), "say \\\"hi\\\"\\\\?\?/\\n\\u0001");
	tpl_set(d, "cm", "a */ b /* c");
	ck_assert_str_eq(render(a, "$cm|comment$", d), "a * / b / * c");
}
END_TEST

START_TEST(loops_repeat_with_index_first_and_last)
{
	ck_assert_str_eq(render(a, "$#actions$$@index$=$action$$^@last$, $/@last$$/actions$", d),
	                 "0=Add, 1=Get, 2=Reset");
	ck_assert_str_eq(render(a, "$#actions$$?@first$[$/@first$$action$$/actions$]", d),
	                 "[AddGetReset]");
}
END_TEST

START_TEST(loop_bodies_see_enclosing_scopes)
{
	ck_assert_str_eq(render(a, "$#actions$$name$.$action$ $/actions$", d),
	                 "Incrementor.Add Incrementor.Get Incrementor.Reset ");
}
END_TEST

START_TEST(conditions_test_strings_and_lists)
{
	ck_assert_str_eq(render(a, "$?yes$Y$/yes$$?empty$E$/empty$$^empty$e$/empty$", d), "Ye");
	ck_assert_str_eq(render(a, "$?none$N$/none$$^none$n$/none$$?actions$A$/actions$", d), "nA");
}
END_TEST

START_TEST(standalone_section_lines_vanish)
{
	const char *t = "begin\n"
	                "  $#actions$\n"
	                "  - $action$\n"
	                "  $/actions$\n"
	                "$! a comment line $\n"
	                "end\n";
	ck_assert_str_eq(render(a, t, d), "begin\n  - Add\n  - Get\n  - Reset\nend\n");
	/* A tag sharing its line with text keeps the line. */
	ck_assert_str_eq(render(a, "x $?yes$y$/yes$\nz", d), "x y\nz");
	/* The last line needs no newline. */
	ck_assert_str_eq(render(a, "a\n$?yes$\nb\n$/yes$", d), "a\nb\n");
}
END_TEST

START_TEST(errors_name_the_template_and_line)
{
	ck_assert_str_eq(render(a, "ok\n$nope$", d), "ERR: template t.tpl:2: unknown name $nope$");
	ck_assert_str_eq(render(a, "$#actions$\n$action$", d),
	                 "ERR: template t.tpl:1: $#actions$ (or $?/$^) is never closed");
	ck_assert_str_eq(render(a, "$#actions$$/other$", d),
	                 "ERR: template t.tpl:1: $/other$ closes no open section");
	ck_assert_str_eq(render(a, "\n$name|bogus$", d),
	                 "ERR: template t.tpl:2: unknown filter \"bogus\"");
	ck_assert_str_eq(render(a, "$name\n$", d), "ERR: template t.tpl:1: unterminated tag $name");
	ck_assert_str_eq(render(a, "$actions$", d),
	                 "ERR: template t.tpl:1: a list used as a value: $actions$");
	ck_assert_str_eq(render(a, "$#name$$/name$", d),
	                 "ERR: template t.tpl:1: a value used as a list: $name$");
	ck_assert_str_eq(render(a, "$@index$", d), "ERR: template t.tpl:1: unknown name $@index$");
}
END_TEST

START_TEST(snake_pascal_and_camel_split_words)
{
	ck_assert_str_eq(cg_name_snake(a, "Add"), "add");
	ck_assert_str_eq(cg_name_snake(a, "GetURL"), "get_url");
	ck_assert_str_eq(cg_name_snake(a, "HTTPServer"), "http_server");
	ck_assert_str_eq(cg_name_snake(a, "add_item"), "add_item");
	ck_assert_str_eq(cg_name_snake(a, "v2Add"), "v2_add");
	ck_assert_str_eq(cg_name_pascal(a, "add_item"), "AddItem");
	ck_assert_str_eq(cg_name_camel(a, "GetURL"), "getUrl");
	ck_assert_str_eq(cg_name_ident(a, "2dir/x-y.proto"), "_2dir_x_y_proto");
}
END_TEST

START_TEST(protoc_c_names_match_protobuf_c)
{
	ck_assert_str_eq(cg_name_pbc_type(a, "examples.incrementor.Add"),
	                 "Examples__Incrementor__Add");
	ck_assert_str_eq(cg_name_pbc_type(a, "my_pkg.Outer.inner_msg"), "MyPkg__Outer__InnerMsg");
	ck_assert_str_eq(cg_name_pbc_lower(a, "my_pkg.Outer.HTTPThing"),
	                 "my_pkg__outer__httpthing");
	ck_assert_str_eq(cg_name_pbc_lower(a, "a.FooBar"), "a__foo_bar");
	ck_assert_str_eq(cg_name_pbc_upper(a, "a.FooBar"), "A__FOO_BAR");
	ck_assert(cg_name_is_c_reserved("return"));
	ck_assert(cg_name_is_c_reserved("user"));
	ck_assert(!cg_name_is_c_reserved("add"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("codegen_template");
	TCase *t = tcase_create("template");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, variables_are_substituted_and_dollars_escaped);
	tcase_add_test(t, filters_chain_left_to_right);
	tcase_add_test(t, loops_repeat_with_index_first_and_last);
	tcase_add_test(t, loop_bodies_see_enclosing_scopes);
	tcase_add_test(t, conditions_test_strings_and_lists);
	tcase_add_test(t, standalone_section_lines_vanish);
	tcase_add_test(t, errors_name_the_template_and_line);
	suite_add_tcase(s, t);
	TCase *n = tcase_create("names");
	tcase_add_checked_fixture(n, setup, teardown);
	tcase_add_test(n, snake_pascal_and_camel_split_words);
	tcase_add_test(n, protoc_c_names_match_protobuf_c);
	suite_add_tcase(s, n);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
