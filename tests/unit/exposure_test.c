/* exposure_test.c - the safe-by-default rule of the configuration
 * (docs/security.md, "Listeners and safe defaults"): which listen
 * addresses count as local, and which configurations refuse to start. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

START_TEST(loopback_addresses_and_unix_sockets_are_local)
{
	static const char *const local[] = {
	    "127.0.0.1:8090", "127.9.8.7:1",     "localhost:0",         "LocalHost:80",
	    "[::1]:8090",     "ipv6:[::1]:8090", "ipv4:127.0.0.1:8090", "[::ffff:127.0.0.1]:1",
	    "unix:/run/s",    "unix:rel.sock",   "unix-abstract:spawn",
	};
	for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
		ck_assert_msg(gw_config_addr_is_local(local[i]), "%s should be local", local[i]);
}
END_TEST

START_TEST(wildcards_names_and_other_addresses_are_not_local)
{
	static const char *const exposed[] = {
	    "0.0.0.0:8090",        "[::]:8090",      ":8090",         "10.0.0.1:8090",
	    "128.0.0.1:1",         "[::2]:1",        "example.com:1", "localhost.evil.example:1",
	    "[::ffff:10.0.0.1]:1", "ipv4:0.0.0.0:1", "8090",          "",
	};
	for (size_t i = 0; i < sizeof exposed / sizeof exposed[0]; i++)
		ck_assert_msg(!gw_config_addr_is_local(exposed[i]), "%s should not be local",
		              exposed[i]);
}
END_TEST

/* parse runs gw_config_parse over args (NULL-terminated, without argv[0]). */
static gw_err parse(gw_config *c, const char *const args[], char *why, size_t n)
{
	char *argv[32] = {"spawn-gateway"};
	int argc = 1;
	for (; args[argc - 1]; argc++)
		argv[argc] = (char *)args[argc - 1];
	why[0] = 0;
	return gw_config_parse(c, argc, argv, why, n);
}

START_TEST(a_non_local_listener_needs_tls_and_access_or_insecure)
{
	gw_config c;
	char why[600];
	const char *plain[] = {"--listen", "0.0.0.0:8090", NULL};
	ck_assert_int_eq(parse(&c, plain, why, sizeof why), GW_ECONFIG);
	ck_assert_ptr_nonnull(strstr(why, "--tls-cert FILE --tls-key FILE --access FILE"));
	ck_assert_ptr_nonnull(strstr(why, "--insecure"));
	const char *tls[] = {"--listen", "0.0.0.0:8090", "--tls-cert", "c", "--tls-key", "k", NULL};
	ck_assert_int_eq(parse(&c, tls, why, sizeof why), GW_ECONFIG);
	ck_assert_ptr_nonnull(strstr(why, "(add --access FILE)"));
	const char *host[] = {"--host-listen", "10.1.2.3:1", NULL};
	ck_assert_int_eq(parse(&c, host, why, sizeof why), GW_ECONFIG);
	ck_assert_ptr_nonnull(strstr(why, "--host-listen 10.1.2.3:1"));

	const char *insecure[] = {"--listen", "0.0.0.0:8090", "--insecure", NULL};
	ck_assert_int_eq(parse(&c, insecure, why, sizeof why), GW_OK);
	ck_assert(c.insecure);
	const char *secured[] = {"--listen", "0.0.0.0:8090", "--tls-cert", "c", "--tls-key",
	                         "k",        "--access",     "a.yaml",     NULL};
	ck_assert_int_eq(parse(&c, secured, why, sizeof why), GW_OK);
	ck_assert_str_eq(c.access, "a.yaml");
	const char *local[] = {
	    "--listen", "127.0.0.1:1", "--host-listen", "unix:/tmp/h.sock", "--admin-listen",
	    "[::1]:2",  NULL};
	ck_assert_int_eq(parse(&c, local, why, sizeof why), GW_OK);
	ck_assert_uint_eq(c.n_host_listen, 1);
	ck_assert_uint_eq(c.n_admin_listen, 1);
	const char *none[] = {NULL};
	ck_assert_int_eq(parse(&c, none, why, sizeof why), GW_OK);
	ck_assert_str_eq(c.listen[0], "127.0.0.1:8090"); /* make run: loopback, as before */
}
END_TEST

START_TEST(cluster_flags_need_a_networked_store_and_sane_timings)
{
	gw_config c;
	char why[600];
	const char *pg = "postgres://u:p@127.0.0.1:5432/db";
	const char *ok[] = {"--statestore", pg, "--advertise", "127.0.0.1:9001", NULL};
	ck_assert_int_eq(parse(&c, ok, why, sizeof why), GW_OK);
	ck_assert_str_eq(c.advertise, "127.0.0.1:9001");
	ck_assert_int_eq(c.heartbeat_ms, 1000);
	ck_assert_int_eq(c.member_timeout_ms, 5000);
	const char *my[] = {
	    "--statestore", "mariadb://u:p@h:3306/db", "--advertise", "h:1", "--heartbeat-ms",
	    "100",          "--member-timeout-ms",     "600",         NULL};
	ck_assert_int_eq(parse(&c, my, why, sizeof why), GW_OK);
	ck_assert_int_eq(c.heartbeat_ms, 100);
	ck_assert_int_eq(c.member_timeout_ms, 600);
	/* SQLite: no cluster. */
	const char *lite[] = {"--statestore", "sqlite:///tmp/x.db", "--advertise", "127.0.0.1:1",
	                      NULL};
	ck_assert_int_eq(parse(&c, lite, why, sizeof why), GW_ECONFIG);
	ck_assert_ptr_nonnull(strstr(why, "cluster mode needs PostgreSQL or MariaDB"));
	/* A heartbeat must fit twice in the timeout. */
	const char *slow[] = {
	    "--statestore",        pg,    "--advertise", "127.0.0.1:1", "--heartbeat-ms", "300",
	    "--member-timeout-ms", "600", NULL};
	ck_assert_int_eq(parse(&c, slow, why, sizeof why), GW_ECONFIG);
	ck_assert_ptr_nonnull(strstr(why, "--heartbeat-ms"));
	/* HOST:PORT. */
	static const char *const bad[] = {"127.0.0.1", ":9",   "h:0",  "h:70000",
	                                  "a b:1",     "h:1x", "x@y:1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *a[] = {"--statestore", pg, "--advertise", bad[i], NULL};
		ck_assert_msg(parse(&c, a, why, sizeof why) == GW_ECONFIG, "%s accepted", bad[i]);
	}
}
END_TEST

START_TEST(tls_flags_come_in_pairs)
{
	gw_config c;
	char why[600];
	const char *cert_only[] = {"--tls-cert", "c", NULL};
	ck_assert_int_eq(parse(&c, cert_only, why, sizeof why), GW_ECONFIG);
	ck_assert_str_eq(why, "--tls-cert needs --tls-key");
	const char *key_only[] = {"--tls-key", "k", NULL};
	ck_assert_int_eq(parse(&c, key_only, why, sizeof why), GW_ECONFIG);
	const char *ca_only[] = {"--tls-client-ca", "ca", NULL};
	ck_assert_int_eq(parse(&c, ca_only, why, sizeof why), GW_ECONFIG);
	const char *all[] = {"--tls-cert", "c", "--tls-key", "k", "--tls-client-ca", "ca", NULL};
	ck_assert_int_eq(parse(&c, all, why, sizeof why), GW_OK);
	ck_assert_str_eq(c.tls_client_ca, "ca");
}
END_TEST

/* --health-listen serves readiness only: a non-loopback bind needs
 * neither TLS nor a policy, and is served in plaintext even with TLS. Its
 * environment list is replaced by the flags, like the other listeners'. */
START_TEST(the_health_listener_is_exempt_from_the_rule)
{
	gw_config c;
	char why[600];
	const char *health[] = {"--health-listen", "0.0.0.0:8091", NULL};
	ck_assert_int_eq(parse(&c, health, why, sizeof why), GW_OK);
	ck_assert_uint_eq(c.n_health_listen, 1);
	ck_assert_str_eq(c.health_listen[0], "0.0.0.0:8091");
	ck_assert_str_eq(c.listen[0], "127.0.0.1:8090");
	/* ...but not the client listener beside it. */
	const char *both[] = {"--health-listen", "0.0.0.0:8091", "--listen", "0.0.0.0:8090", NULL};
	ck_assert_int_eq(parse(&c, both, why, sizeof why), GW_ECONFIG);
	ck_assert_ptr_nonnull(strstr(why, "--listen 0.0.0.0:8090"));

	setenv("SPAWN_HEALTH_LISTEN", "127.0.0.1:1,127.0.0.1:2", 1);
	const char *none[] = {NULL};
	ck_assert_int_eq(parse(&c, none, why, sizeof why), GW_OK);
	ck_assert_uint_eq(c.n_health_listen, 2);
	ck_assert_str_eq(c.health_listen[1], "127.0.0.1:2");
	const char *flag[] = {"--health-listen", "127.0.0.1:3", NULL};
	ck_assert_int_eq(parse(&c, flag, why, sizeof why), GW_OK);
	ck_assert_uint_eq(c.n_health_listen, 1);
	ck_assert_str_eq(c.health_listen[0], "127.0.0.1:3");
	unsetenv("SPAWN_HEALTH_LISTEN");
}
END_TEST

/* The HTTP listener: loopback only unless TLS and --access (HTTPS, bearer
 * tokens, Spawn's unauthenticated API off) or --insecure; --access on
 * loopback is fine; the host URL is http://HOST:PORT (docs/http-json.md,
 * docs/protocol.md). */
START_TEST(the_http_listener_is_local_unless_tls_and_access_or_insecure)
{
	gw_config c;
	char why[600];
	const char *local[] = {"--http", "127.0.0.1:0", NULL};
	ck_assert_int_eq(parse(&c, local, why, sizeof why), GW_OK);
	ck_assert_str_eq(c.http, "127.0.0.1:0");
	ck_assert_int_eq(c.http_max_body, c.max_message_bytes);
	const char *wide[] = {"--http", "0.0.0.0:9001", NULL};
	ck_assert_int_eq(parse(&c, wide, why, sizeof why), GW_ECONFIG);
	ck_assert_ptr_nonnull(strstr(why, "--insecure"));
	const char *insecure[] = {"--http", "0.0.0.0:9001", "--insecure", NULL};
	ck_assert_int_eq(parse(&c, insecure, why, sizeof why), GW_OK);
	const char *access[] = {"--http", "127.0.0.1:9001", "--access", "policy.yaml", NULL};
	ck_assert_int_eq(parse(&c, access, why, sizeof why), GW_OK);
	const char *wide_access[] = {"--http", "0.0.0.0:9001", "--access", "policy.yaml", NULL};
	ck_assert_int_eq(parse(&c, wide_access, why, sizeof why), GW_ECONFIG);
	ck_assert_ptr_nonnull(strstr(why, "--tls-cert"));
	const char *wide_tls[] = {"--http", "0.0.0.0:9001", "--tls-cert",  "c.pem", "--tls-key",
	                          "k.pem",  "--access",     "policy.yaml", NULL};
	ck_assert_int_eq(parse(&c, wide_tls, why, sizeof why), GW_OK);
	const char *wide_tls_only[] = {"--http",    "0.0.0.0:9001", "--tls-cert", "c.pem",
	                               "--tls-key", "k.pem",        NULL};
	ck_assert_int_eq(parse(&c, wide_tls_only, why, sizeof why), GW_ECONFIG);
	ck_assert_ptr_nonnull(strstr(why, "--access"));
	const char *unix_http[] = {"--http", "unix:/run/x", NULL};
	ck_assert_int_eq(parse(&c, unix_http, why, sizeof why), GW_ECONFIG);
	const char *bad_url[] = {"--http", "127.0.0.1:0", "--spawn-host-url", "ftp://h:1", NULL};
	ck_assert_int_eq(parse(&c, bad_url, why, sizeof why), GW_ECONFIG);
	ck_assert_ptr_nonnull(strstr(why, "--spawn-host-url"));
	const char *query[] = {"--spawn-host-url", "http://h:1/?x", NULL};
	ck_assert_int_eq(parse(&c, query, why, sizeof why), GW_ECONFIG);
	/* Spawn's own settings for where the host listens. */
	setenv("USER_FUNCTION_HOST", "10.1.2.3", 1);
	setenv("USER_FUNCTION_PORT", "8091", 1);
	const char *none[] = {NULL};
	ck_assert_int_eq(parse(&c, none, why, sizeof why), GW_OK);
	ck_assert_str_eq(c.spawn_host_url, "http://10.1.2.3:8091");
	unsetenv("USER_FUNCTION_HOST");
	ck_assert_int_eq(parse(&c, none, why, sizeof why), GW_OK);
	ck_assert_ptr_null(c.spawn_host_url);
	ck_assert_int_eq(c.spawn_host_port, 8091);
	unsetenv("USER_FUNCTION_PORT");
}
END_TEST

int main(void)
{
	/* The rule reads the environment too: these tests set everything by flag. */
	unsetenv("SPAWN_LISTEN");
	unsetenv("SPAWN_HOST_LISTEN");
	unsetenv("SPAWN_ADMIN_LISTEN");
	unsetenv("SPAWN_HEALTH_LISTEN");
	unsetenv("SPAWN_INSECURE");
	unsetenv("SPAWN_SERVER_TLS_CERT");
	unsetenv("SPAWN_SERVER_TLS_KEY");
	unsetenv("SPAWN_SERVER_TLS_CLIENT_CA");
	Suite *s = suite_create("exposure");
	TCase *tc = tcase_create("rule");
	tcase_add_test(tc, loopback_addresses_and_unix_sockets_are_local);
	tcase_add_test(tc, wildcards_names_and_other_addresses_are_not_local);
	tcase_add_test(tc, a_non_local_listener_needs_tls_and_access_or_insecure);
	tcase_add_test(tc, tls_flags_come_in_pairs);
	tcase_add_test(tc, the_health_listener_is_exempt_from_the_rule);
	tcase_add_test(tc, the_http_listener_is_local_unless_tls_and_access_or_insecure);
	tcase_add_test(tc, cluster_flags_need_a_networked_store_and_sane_timings);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
