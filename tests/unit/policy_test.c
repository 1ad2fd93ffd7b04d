/* policy_test.c - the access policy parser (gateway/auth): a full policy
 * and its lookups, and every refusal with its FILE:LINE; token hashes;
 * the reload that keeps the old policy when the new file is bad. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"

static void hash_of(const char *tok, char out[GW_TOKEN_HASH_LEN + 1])
{
	ck_assert(gw_token_hash(tok, strlen(tok), out));
}

static gw_policy *parse_ok(const char *text)
{
	gw_policy *p = NULL;
	char why[400] = "";
	gw_err err = gw_policy_parse_string(&p, "t.yaml", text, strlen(text), why, sizeof why);
	ck_assert_msg(err == GW_OK, "refused: %s", why);
	return p;
}

/* refused asserts that text is refused with a message starting with
 * "t.yaml:LINE: " and containing want. */
static void refused(const char *text, int line, const char *want)
{
	gw_policy *p = NULL;
	char why[400] = "";
	gw_err err = gw_policy_parse_string(&p, "t.yaml", text, strlen(text), why, sizeof why);
	ck_assert_msg(err == GW_ECONFIG, "accepted, wanted a refusal containing '%s'", want);
	ck_assert_ptr_null(p);
	char prefix[32];
	if (line > 0)
		snprintf(prefix, sizeof prefix, "t.yaml:%d: ", line);
	else
		snprintf(prefix, sizeof prefix, "t.yaml: ");
	ck_assert_msg(!strncmp(why, prefix, strlen(prefix)), "'%s' does not start with '%s'", why,
	              prefix);
	ck_assert_msg(strstr(why, want) != NULL, "'%s' does not contain '%s'", why, want);
}

START_TEST(token_hashes_are_sha256_in_lowercase_hex)
{
	char h[GW_TOKEN_HASH_LEN + 1];
	hash_of("tok", h);
	ck_assert_str_eq(h,
	                 "sha256:1a7674eb4ee78df7e1ac439a93c3fa8e3c945784d4dec9fd8e3011738b2f1d62");
	ck_assert_uint_eq(strlen(h), GW_TOKEN_HASH_LEN);
}
END_TEST

START_TEST(a_full_policy_maps_credentials_to_rights)
{
	char hc[GW_TOKEN_HASH_LEN + 1], ha[GW_TOKEN_HASH_LEN + 1], text[2048];
	hash_of("client-token", hc);
	hash_of("admin-token", ha);
	snprintf(text, sizeof text,
	         "# the test policy\n"
	         "principals:\n"
	         "  - name: orders-host\n"
	         "    identities:\n"
	         "      - uri:spiffe://spawn.test/host\n"
	         "      - dns:host.spawn.test\n"
	         "    host: [orders]\n"
	         "    invoke:\n"
	         "      - system: billing\n"
	         "        actors: [Ledger]\n"
	         "        actions: [Charge, Get]\n"
	         "  - name: client\n"
	         "    tokens: [%s]\n"
	         "    invoke:\n"
	         "      - system: orders\n"
	         "    admin: false\n"
	         "  - name: ops\n"
	         "    tokens:\n"
	         "      - %s\n"
	         "    host: ['*']\n"
	         "    invoke: [{system: '*'}]\n"
	         "    admin: true\n",
	         hc, ha);
	gw_policy *p = parse_ok(text);
	ck_assert_uint_eq(gw_policy_count(p), 3);

	const gw_principal *c = gw_policy_by_token(p, "client-token", 12);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(gw_principal_name(c), "client");
	ck_assert(!gw_principal_admin(c));
	ck_assert(gw_principal_may_invoke(c, "orders", "anyone", NULL, "AnyAction"));
	ck_assert(!gw_principal_may_invoke(c, "billing", "Ledger", NULL, "Charge"));
	ck_assert(!gw_principal_may_host(c, "orders"));
	/* A prefix, a longer token, another token: nobody. */
	ck_assert_ptr_null(gw_policy_by_token(p, "client-toke", 11));
	ck_assert_ptr_null(gw_policy_by_token(p, "client-token2", 13));
	ck_assert_ptr_null(gw_policy_by_token(p, "", 0));

	const gw_principal *h = gw_policy_by_identity(p, "uri", "spiffe://spawn.test/host", 24);
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(gw_principal_name(h), "orders-host");
	ck_assert_ptr_eq(gw_policy_by_identity(p, "dns", "host.spawn.test", 15), h);
	ck_assert_ptr_null(gw_policy_by_identity(p, "dns", "spiffe://spawn.test/host", 24));
	ck_assert_ptr_null(gw_policy_by_identity(p, "uri", "spiffe://spawn.test/hos", 23));
	ck_assert(gw_principal_may_host(h, "orders"));
	ck_assert(!gw_principal_may_host(h, "billing"));
	ck_assert(gw_principal_may_invoke(h, "billing", "Ledger", NULL, "Charge"));
	ck_assert(!gw_principal_may_invoke(h, "billing", "Ledger", NULL, "Refund"));
	ck_assert(!gw_principal_may_invoke(h, "billing", "Other", NULL, "Charge"));
	/* An instance of Ledger matches through its parent. */
	ck_assert(gw_principal_may_invoke(h, "billing", "ledger-42", "Ledger", "Get"));
	/* Spawn (no action): only system and actor apply. */
	ck_assert(gw_principal_may_invoke(h, "billing", "ledger-42", "Ledger", NULL));
	ck_assert(gw_principal_restricts_actors(h, "billing"));
	ck_assert(!gw_principal_restricts_actors(c, "orders"));

	const gw_principal *o = gw_policy_by_token(p, "admin-token", 11);
	ck_assert_ptr_nonnull(o);
	ck_assert(gw_principal_admin(o));
	ck_assert(gw_principal_may_host(o, "anything"));
	ck_assert(gw_principal_may_invoke(o, "x", "y", NULL, "z"));
	ck_assert_ptr_eq(gw_policy_by_name(p, "ops"), o);
	ck_assert_ptr_null(gw_policy_by_name(p, "nobody"));
	gw_policy_free(p);

	/* No principals at all: valid, and nobody is anyone. */
	p = parse_ok("principals: []\n");
	ck_assert_uint_eq(gw_policy_count(p), 0);
	ck_assert_ptr_null(gw_policy_by_token(p, "client-token", 12));
	gw_policy_free(p);
}
END_TEST

/* peer: true names the members of a cluster (the Peer service); it is a
 * right of its own, implied by nothing else (not by admin, not by "*"). */
START_TEST(peer_true_names_the_members_of_the_cluster)
{
	char hp[GW_TOKEN_HASH_LEN + 1], text[1024];
	hash_of("peer-token", hp);
	snprintf(text, sizeof text,
	         "principals:\n"
	         "  - name: cluster\n"
	         "    identities: [uri:spiffe://spawn.test/peer]\n"
	         "    tokens: [%s]\n"
	         "    peer: true\n"
	         "  - name: ops\n"
	         "    identities: [uri:spiffe://spawn.test/admin]\n"
	         "    host: ['*']\n"
	         "    invoke: [{system: '*'}]\n"
	         "    admin: true\n"
	         "  - name: web\n"
	         "    identities: [uri:spiffe://spawn.test/client]\n"
	         "    peer: false\n",
	         hp);
	gw_policy *p = parse_ok(text);
	const gw_principal *c = gw_policy_by_token(p, "peer-token", 10);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_eq(gw_policy_by_identity(p, "uri", "spiffe://spawn.test/peer", 24), c);
	ck_assert(gw_principal_peer(c));
	/* A peer gets no other right from it. */
	ck_assert(!gw_principal_admin(c));
	ck_assert(!gw_principal_may_invoke(c, "it", "a", NULL, "Add"));
	ck_assert(!gw_principal_may_host(c, "it"));
	ck_assert(!gw_principal_peer(gw_policy_by_name(p, "ops")));
	ck_assert(!gw_principal_peer(gw_policy_by_name(p, "web")));
	gw_policy_free(p);
	refused("principals:\n  - name: a\n    peer: yes\n", 3, "peer must be true or false");
	refused("principals:\n  - name: a\n    peer: [true]\n", 3, "peer must be a string");
	refused("principals:\n  - name: a\n    peer: true\n    peer: false\n", 4,
	        "duplicate key 'peer'");
}
END_TEST

START_TEST(mistakes_are_refused_with_file_and_line)
{
	refused("principals:\n  - name: a\n    hots: [x]\n", 3, "unknown key 'hots'");
	refused("principal: []\n", 1, "unknown key 'principal'");
	refused("principals:\n  - name: a\n  - name: b\n  - name: a\n", 4,
	        "duplicate principal name 'a'");
	refused("principals:\n  - name: a\n    tokens: [sha256:abc]\n", 3, "64 lowercase hex");
	refused("principals:\n  - name: a\n    tokens:\n      - sha256:"
	        "1A7674EB4EE78DF7E1AC439A93C3FA8E3C945784D4DEC9FD8E3011738B2F1D62\n",
	        4, "lowercase hex");
	refused("principals:\n  - name: a\n    tokens: [my-plain-token]\n", 3, "given as its hash");
	refused("principals:\n  - name: a\n    identities: [spiffe://x/y]\n", 3,
	        "neither uri:VALUE nor dns:VALUE");
	refused("principals:\n  - name: a\n    identities: ['uri:']\n", 3, "neither uri:");
	refused("principals:\n  - name: a\n    admin: yes\n", 3, "admin must be true or false");
	refused("principals:\n  - host: [x]\n", 2, "a principal needs a name");
	refused("principals:\n  - name: a\n    invoke:\n      - actors: [X]\n", 4,
	        "needs a system");
	refused("principals:\n  - name: a\n    invoke:\n      - system: s\n        verbs: [X]\n", 5,
	        "unknown key 'verbs'");
	refused("principals:\n  - name: a\n    name: b\n", 3, "duplicate key 'name'");
	refused("principals:\n  - name: a\n    host: orders\n", 3, "host must be a list");
	refused("principals:\n  - name: a\n    identities: [uri:x]\n  - name: b\n"
	        "    identities: [uri:x]\n",
	        4, "identity uri:x already belongs to principal 'a'");
	refused("principals:\n  - name: a\n    tokens: [\"sha256:"
	        "1a7674eb4ee78df7e1ac439a93c3fa8e3c945784d4dec9fd8e3011738b2f1d62\"]\n"
	        "  - name: b\n    tokens: [\"sha256:"
	        "1a7674eb4ee78df7e1ac439a93c3fa8e3c945784d4dec9fd8e3011738b2f1d62\"]\n",
	        4, "also listed");
	refused("principals: [\n", 2, ""); /* not YAML */
	refused("principals: {a: 1}\n", 1, "principals must be a list");
	refused("", 0, "the file is empty");
	refused("principals: []\n---\nprincipals: []\n", 0, "more than one YAML document");
	/* A token pasted by mistake is never echoed. */
	gw_policy *p = NULL;
	char why[400];
	const char *t = "principals:\n  - name: a\n    tokens: [s3cr3t-token-value]\n";
	ck_assert_int_eq(gw_policy_parse_string(&p, "t.yaml", t, strlen(t), why, sizeof why),
	                 GW_ECONFIG);
	ck_assert_msg(strstr(why, "s3cr3t") == NULL, "the message echoes the token: %s", why);
}
END_TEST

START_TEST(a_bad_reload_keeps_the_old_policy_and_a_good_one_replaces_it)
{
	char path[] = "/tmp/policy_test_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	char hc[GW_TOKEN_HASH_LEN + 1], text[512];
	hash_of("client-token", hc);
	snprintf(text, sizeof text, "principals:\n  - name: first\n    tokens: [%s]\n", hc);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	gw_access *a = NULL;
	char why[400];
	ck_assert_int_eq(gw_access_open(&a, path, why, sizeof why), GW_OK);
	ck_assert_str_eq(gw_access_path(a), path);

	FILE *f = fopen(path, "w");
	fputs("principals:\n  - name: second\n    bogus: 1\n", f);
	fclose(f);
	size_t n = 99;
	ck_assert_int_eq(gw_access_reload(a, &n, why, sizeof why), GW_ECONFIG);
	ck_assert_msg(strstr(why, ":3: unknown key 'bogus'") != NULL, "%s", why);
	ck_assert_uint_eq(n, 99);
	const gw_policy *p = gw_access_read(a);
	ck_assert_str_eq(gw_principal_name(gw_policy_by_token(p, "client-token", 12)), "first");
	gw_access_done(a);

	f = fopen(path, "w");
	fprintf(f, "principals:\n  - name: second\n    tokens: [%s]\n  - name: third\n", hc);
	fclose(f);
	ck_assert_int_eq(gw_access_reload(a, &n, why, sizeof why), GW_OK);
	ck_assert_uint_eq(n, 2);
	p = gw_access_read(a);
	ck_assert_str_eq(gw_principal_name(gw_policy_by_token(p, "client-token", 12)), "second");
	gw_access_done(a);

	unlink(path);
	ck_assert_int_eq(gw_access_reload(a, &n, why, sizeof why), GW_ECONFIG);
	ck_assert_msg(strstr(why, "cannot open") != NULL, "%s", why);
	gw_access_close(a);
	ck_assert_int_eq(gw_access_open(&a, path, why, sizeof why), GW_ECONFIG);
}
END_TEST

START_TEST(the_authorization_key_is_recognised_in_any_case)
{
	ck_assert(gw_authn_is_authorization("authorization", 13));
	ck_assert(gw_authn_is_authorization("Authorization", 13));
	ck_assert(!gw_authn_is_authorization("authorizatio", 12));
	ck_assert(!gw_authn_is_authorization("authorization-x", 15));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");
	tcase_add_test(tc, token_hashes_are_sha256_in_lowercase_hex);
	tcase_add_test(tc, a_full_policy_maps_credentials_to_rights);
	tcase_add_test(tc, peer_true_names_the_members_of_the_cluster);
	tcase_add_test(tc, mistakes_are_refused_with_file_and_line);
	tcase_add_test(tc, a_bad_reload_keeps_the_old_policy_and_a_good_one_replaces_it);
	tcase_add_test(tc, the_authorization_key_is_recognised_in_any_case);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
