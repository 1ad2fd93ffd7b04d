/* redact_test.c - gw_redact_url and gw_redact_secret: URLs, conninfo
 * strings, odd passwords, tight buffers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

static void check_url(const char *in, const char *want)
{
	char out[512];
	ck_assert_str_eq(gw_redact_url(in, out, sizeof out), want);
}

START_TEST(a_urls_userinfo_password_is_replaced_and_the_user_kept)
{
	check_url("postgres://spawn:s3cret@db.example:5432/spawn?sslmode=require",
	          "postgres://spawn:***@db.example:5432/spawn?sslmode=require");
	check_url("mariadb://root:hunter2@127.0.0.1/db", "mariadb://root:***@127.0.0.1/db");
	check_url("mysql://u:p%40ss@[::1]:3306/x", "mysql://u:***@[::1]:3306/x");
	/* Unencoded '/' and '@' in the password still go. */
	check_url("postgres://u:pa/ss@h/db", "postgres://u:***@h/db");
	check_url("postgres://u:p@ss@h/db", "postgres://u:***@h/db");
	/* An empty password is shown as redacted too. */
	check_url("postgres://u:@h/db", "postgres://u:***@h/db");
}
END_TEST

START_TEST(urls_without_credentials_are_unchanged)
{
	check_url("sqlite:///var/lib/spawn/state.db", "sqlite:///var/lib/spawn/state.db");
	check_url("sqlite::memory:", "sqlite::memory:");
	check_url("postgres://spawn@h:5432/db", "postgres://spawn@h:5432/db");
	check_url("postgres://h/db?options=-csearch_path%3Dx",
	          "postgres://h/db?options=-csearch_path%3Dx");
	check_url("", "");
	char out[8] = "junk";
	ck_assert_str_eq(gw_redact_url(NULL, out, sizeof out), "");
}
END_TEST

START_TEST(password_parameters_are_replaced_in_queries_and_conninfo)
{
	check_url("postgres://u@h/db?sslmode=disable&password=abc&x=1",
	          "postgres://u@h/db?sslmode=disable&password=***&x=1");
	check_url("postgres://h/db?PASSWORD=abc", "postgres://h/db?PASSWORD=***");
	check_url("host=h user=u password=abc dbname=d", "host=h user=u password=*** dbname=d");
	check_url("host=h password = 'a b\\' c' dbname=d", "host=h password = *** dbname=d");
	check_url("password=abc", "password=***");
	check_url("pwd=abc;uid=u", "pwd=***;uid=u");
	check_url("sslpassword=k1 passwd=k2 pass=k3", "sslpassword=*** passwd=*** pass=***");
	/* Keys that merely end in a secret word are not secrets. */
	check_url("host=h mypassword=x", "host=h mypassword=x");
	/* Both kinds in one URL. */
	check_url("postgres://u:one@h/db?password=two", "postgres://u:***@h/db?password=***");
	/* TLS parameters: file names are shown, the key's password is not. */
	check_url("postgres://u:pw@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&"
	          "sslcert=/etc/c.pem&sslkey=/etc/c.key&sslpassword=k",
	          "postgres://u:***@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&"
	          "sslcert=/etc/c.pem&sslkey=/etc/c.key&sslpassword=***");
	check_url("mariadb://u:pw@h/db?ssl-mode=verify-ca&ssl-ca=/ca.pem&ssl-cert=/c.pem&"
	          "ssl-key=/c.key",
	          "mariadb://u:***@h/db?ssl-mode=verify-ca&ssl-ca=/ca.pem&ssl-cert=/c.pem&"
	          "ssl-key=/c.key");
}
END_TEST

START_TEST(a_small_buffer_cuts_but_never_shows_the_secret)
{
	char out[24];
	gw_redact_url("postgres://u:topsecretvalue@a-long-host-name/db", out, sizeof out);
	ck_assert_ptr_null(strstr(out, "topsecret"));
	ck_assert_uint_eq(strlen(out), sizeof out - 1);
	char one[1] = "x";
	gw_redact_url("postgres://u:p@h", one, sizeof one);
	ck_assert_str_eq(one, "");
}
END_TEST

START_TEST(a_secret_echoed_by_a_library_is_replaced_everywhere)
{
	char msg[128] = "FATAL: password \"hunter2\" rejected; hunter2 again";
	gw_redact_secret(msg, sizeof msg, "hunter2");
	ck_assert_str_eq(msg, "FATAL: password \"***\" rejected; *** again");
	/* Longer than the secret: cut to the capacity, never past it. */
	char small[12] = "ab:ab:ab:ab";
	gw_redact_secret(small, sizeof small, "ab");
	ck_assert_str_eq(small, "***:***:***");
	char tiny[8] = "a a a a";
	gw_redact_secret(tiny, sizeof tiny, "a");
	ck_assert_str_eq(tiny, "*** ***");
	char same[16] = "unchanged";
	gw_redact_secret(same, sizeof same, "");
	gw_redact_secret(same, sizeof same, NULL);
	gw_redact_secret(same, sizeof same, "absent");
	ck_assert_str_eq(same, "unchanged");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("redact");
	TCase *tc = tcase_create("redact");
	tcase_add_test(tc, a_urls_userinfo_password_is_replaced_and_the_user_kept);
	tcase_add_test(tc, urls_without_credentials_are_unchanged);
	tcase_add_test(tc, password_parameters_are_replaced_in_queries_and_conninfo);
	tcase_add_test(tc, a_small_buffer_cuts_but_never_shows_the_secret);
	tcase_add_test(tc, a_secret_echoed_by_a_library_is_replaced_everywhere);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
