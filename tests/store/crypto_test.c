/* crypto_test.c - AES-256-GCM sealing of actor state (statestores/crypto.h). */
#include "crypto.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>

/* bytes 0..31, 32..63, 64..95 */
#define KEY_A  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B  "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define KEY_C  "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="
#define KEY_31 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="
#define KEY_33 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"
#define PLAIN  "counter=42; spawn.actors.ActorState"

static gw_keyring *ring(const char *spec)
{
	gw_keyring *kr = NULL;
	char why[256] = "";
	gw_err e = gw_keyring_parse(&kr, spec, why, sizeof why);
	ck_assert_msg(e == GW_OK, "parse '%s': %s (%s)", spec, gw_err_name(e), why);
	return kr;
}

static gw_sealed seal(const gw_keyring *kr, const char *sys, const char *name, const char *pt)
{
	gw_sealed s;
	ck_assert_int_eq(gw_seal(kr, sys, name, (const uint8_t *)pt, strlen(pt), &s), GW_OK);
	ck_assert_uint_eq(s.len, strlen(pt) + GW_TAG_LEN);
	return s;
}

static gw_err open_as(const gw_keyring *kr, const char *sys, const char *name, const gw_sealed *s,
                      char **out)
{
	uint8_t *pt = NULL;
	size_t n = 0;
	gw_err e = gw_open(kr, sys, name, s, &pt, &n);
	if (e == GW_OK) {
		ck_assert_ptr_nonnull(pt);
		*out = malloc(n + 1);
		memcpy(*out, pt, n);
		(*out)[n] = '\0';
		free(pt);
	}
	return e;
}

START_TEST(seal_then_open_returns_the_plaintext)
{
	gw_keyring *kr = ring(KEY_A);
	gw_sealed s = seal(kr, "sys", "actor-1", PLAIN);
	ck_assert_str_eq(s.key_id, "k0");
	ck_assert(memmem(s.data, s.len, PLAIN, strlen(PLAIN)) == NULL);
	char *out = NULL;
	ck_assert_int_eq(open_as(kr, "sys", "actor-1", &s, &out), GW_OK);
	ck_assert_str_eq(out, PLAIN);
	free(out);
	free(s.data);

	/* An empty state is still sealed (just a tag) and opens to 0 bytes. */
	gw_sealed e;
	ck_assert_int_eq(gw_seal(kr, "sys", "actor-1", NULL, 0, &e), GW_OK);
	ck_assert_uint_eq(e.len, GW_TAG_LEN);
	uint8_t *pt = NULL;
	size_t n = 99;
	ck_assert_int_eq(gw_open(kr, "sys", "actor-1", &e, &pt, &n), GW_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_nonnull(pt);
	free(pt);
	free(e.data);
	gw_keyring_free(kr);
}
END_TEST

START_TEST(a_large_state_round_trips)
{
	gw_keyring *kr = ring(KEY_A);
	size_t n = (size_t)1 << 20;
	uint8_t *big = malloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 31 + 7);
	gw_sealed s;
	ck_assert_int_eq(gw_seal(kr, "sys", "big", big, n, &s), GW_OK);
	uint8_t *pt = NULL;
	size_t m = 0;
	ck_assert_int_eq(gw_open(kr, "sys", "big", &s, &pt, &m), GW_OK);
	ck_assert_uint_eq(m, n);
	ck_assert(memcmp(pt, big, n) == 0);
	free(pt);
	free(s.data);
	free(big);
	gw_keyring_free(kr);
}
END_TEST

START_TEST(each_seal_uses_a_fresh_nonce)
{
	gw_keyring *kr = ring(KEY_A);
	gw_sealed a = seal(kr, "sys", "actor", PLAIN);
	gw_sealed b = seal(kr, "sys", "actor", PLAIN);
	ck_assert(memcmp(a.nonce, b.nonce, GW_NONCE_LEN) != 0);
	ck_assert(memcmp(a.data, b.data, a.len) != 0);
	free(a.data);
	free(b.data);
	gw_keyring_free(kr);
}
END_TEST

START_TEST(a_wrong_key_does_not_open)
{
	gw_keyring *a = ring(KEY_A), *b = ring(KEY_B);
	gw_sealed s = seal(a, "sys", "actor", PLAIN);
	char *out = NULL;
	/* Same id "k0", different key bytes: the tag does not verify. */
	ck_assert_int_eq(open_as(b, "sys", "actor", &s, &out), GW_ECRYPTO);
	ck_assert_ptr_null(out);
	free(s.data);
	gw_keyring_free(a);
	gw_keyring_free(b);
}
END_TEST

START_TEST(an_unknown_key_id_does_not_open)
{
	gw_keyring *a = ring("one:" KEY_A), *b = ring("two:" KEY_A);
	gw_sealed s = seal(a, "sys", "actor", PLAIN);
	char *out = NULL;
	ck_assert_int_eq(open_as(b, "sys", "actor", &s, &out), GW_ECRYPTO);
	free(s.data);
	gw_keyring_free(a);
	gw_keyring_free(b);
}
END_TEST

START_TEST(a_row_sealed_for_one_actor_does_not_open_as_another)
{
	gw_keyring *kr = ring(KEY_A);
	gw_sealed s = seal(kr, "sys", "alice", PLAIN);
	char *out = NULL;
	ck_assert_int_eq(open_as(kr, "sys", "bob", &s, &out), GW_ECRYPTO);
	ck_assert_int_eq(open_as(kr, "other", "alice", &s, &out), GW_ECRYPTO);
	free(s.data);

	/* Length prefixes: ("ab","c") and ("a","bc") are different actors. */
	gw_sealed t = seal(kr, "ab", "c", PLAIN);
	ck_assert_int_eq(open_as(kr, "a", "bc", &t, &out), GW_ECRYPTO);
	ck_assert_int_eq(open_as(kr, "ab", "c", &t, &out), GW_OK);
	free(out);
	free(t.data);
	gw_keyring_free(kr);
}
END_TEST

START_TEST(tampered_bytes_do_not_open)
{
	gw_keyring *kr = ring(KEY_A);
	gw_sealed s = seal(kr, "sys", "actor", PLAIN);
	char *out = NULL;
	/* Every byte of ciphertext and tag, and every byte of the nonce. */
	for (size_t i = 0; i < s.len; i++) {
		s.data[i] ^= 0x01;
		ck_assert_msg(open_as(kr, "sys", "actor", &s, &out) == GW_ECRYPTO,
		              "flipped byte %zu opened", i);
		s.data[i] ^= 0x01;
	}
	for (size_t i = 0; i < GW_NONCE_LEN; i++) {
		s.nonce[i] ^= 0x80;
		ck_assert_int_eq(open_as(kr, "sys", "actor", &s, &out), GW_ECRYPTO);
		s.nonce[i] ^= 0x80;
	}
	ck_assert_int_eq(open_as(kr, "sys", "actor", &s, &out), GW_OK);
	free(out);
	free(s.data);
	gw_keyring_free(kr);
}
END_TEST

START_TEST(a_truncated_row_is_corrupt)
{
	gw_keyring *kr = ring(KEY_A);
	gw_sealed s = seal(kr, "sys", "actor", PLAIN);
	char *out = NULL;
	size_t full = s.len;
	s.len = GW_TAG_LEN - 1;
	ck_assert_int_eq(open_as(kr, "sys", "actor", &s, &out), GW_ECORRUPT);
	s.len = 0;
	ck_assert_int_eq(open_as(kr, "sys", "actor", &s, &out), GW_ECORRUPT);
	/* Long enough to hold a tag but cut: it no longer authenticates. */
	s.len = full - 1;
	ck_assert_int_eq(open_as(kr, "sys", "actor", &s, &out), GW_ECRYPTO);
	s.len = GW_TAG_LEN;
	ck_assert_int_eq(open_as(kr, "sys", "actor", &s, &out), GW_ECRYPTO);
	free(s.data);
	gw_keyring_free(kr);
}
END_TEST

static void parse_fails(const char *spec, const char *why_contains)
{
	gw_keyring *kr = NULL;
	char why[256] = "";
	gw_err e = gw_keyring_parse(&kr, spec, why, sizeof why);
	ck_assert_msg(e == GW_ECONFIG, "'%s' parsed: %s", spec, gw_err_name(e));
	ck_assert_ptr_null(kr);
	ck_assert_msg(strstr(why, why_contains) != NULL, "'%s': reason '%s' lacks '%s'", spec, why,
	              why_contains);
	/* Reasons name ids, never key material. */
	ck_assert(strstr(why, "AAECAwQF") == NULL);
}

START_TEST(bad_keyrings_are_refused_with_a_reason)
{
	parse_fails("", "empty");
	parse_fails("  \n", "empty");
	parse_fails("not*base64!", "base64");
	parse_fails("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=x", "base64");
	parse_fails("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8===", "base64");
	parse_fails(KEY_31, "decodes to 31 bytes");
	parse_fails(KEY_33, "decodes to 33 bytes");
	parse_fails("k1:" KEY_31, "'k1' decodes to 31 bytes");
	parse_fails(":" KEY_A, "empty key id");
	parse_fails("k1:" KEY_A ", :" KEY_B, "entry 2 has an empty key id");
	parse_fails("k1:", "'k1' is empty");
	parse_fails("k1:" KEY_A ",", "entry 2 is empty");
	parse_fails("k1:" KEY_A ",,k2:" KEY_B, "entry 2 is empty");
	parse_fails("k1:" KEY_A "," KEY_B, "entry 2 has no \"id:\" prefix");
	parse_fails("k1:" KEY_A ",k1:" KEY_B, "'k1' appears twice");
	parse_fails("bad id:" KEY_A, "key id must be");
}
END_TEST

START_TEST(good_keyrings_parse)
{
	gw_keyring *kr = ring(KEY_A);
	ck_assert_str_eq(gw_keyring_primary_id(kr), "k0");
	gw_keyring_free(kr);
	kr = ring("  new-2024.1:" KEY_B " , old_1 : " KEY_A "\n");
	ck_assert_str_eq(gw_keyring_primary_id(kr), "new-2024.1");
	gw_keyring_free(kr);
	/* Padding is optional. */
	kr = ring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
	gw_keyring_free(kr);
	gw_keyring_free(NULL);
}
END_TEST

START_TEST(every_key_of_a_ring_opens_and_the_first_seals)
{
	gw_keyring *old = ring("old:" KEY_A);
	gw_keyring *rot = ring("new:" KEY_B ",old:" KEY_A ",older:" KEY_C);
	gw_keyring *older = ring("older:" KEY_C);
	gw_sealed a = seal(old, "sys", "actor", PLAIN);
	gw_sealed c = seal(older, "sys", "actor", PLAIN);
	char *out = NULL;
	ck_assert_int_eq(open_as(rot, "sys", "actor", &a, &out), GW_OK);
	ck_assert_str_eq(out, PLAIN);
	free(out);
	ck_assert_int_eq(open_as(rot, "sys", "actor", &c, &out), GW_OK);
	ck_assert_str_eq(out, PLAIN);
	free(out);
	gw_sealed b = seal(rot, "sys", "actor", PLAIN);
	ck_assert_str_eq(b.key_id, "new");
	ck_assert_int_eq(open_as(old, "sys", "actor", &b, &out), GW_ECRYPTO);
	free(a.data);
	free(b.data);
	free(c.data);
	gw_keyring_free(old);
	gw_keyring_free(rot);
	gw_keyring_free(older);
}
END_TEST

START_TEST(generated_keys_parse_and_differ)
{
	char a[GW_KEY_B64_LEN + 1], b[GW_KEY_B64_LEN + 1];
	ck_assert_int_eq(gw_keyring_generate(a), GW_OK);
	ck_assert_int_eq(gw_keyring_generate(b), GW_OK);
	ck_assert_uint_eq(strlen(a), GW_KEY_B64_LEN);
	ck_assert_str_ne(a, b);
	gw_keyring *kr = ring(a);
	gw_keyring_free(kr);
}
END_TEST

/* The documented layout, rebuilt with raw EVP calls: key bytes 0..31, AAD
 * be32(len system) system 0x00 be32(len name) name, data = ct || tag. */
START_TEST(the_sealed_format_matches_the_documented_layout)
{
	uint8_t key[32], nonce[GW_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	const uint8_t aad[] = {0, 0, 0, 3, 's', 'y', 's', 0, 0, 0, 0, 5, 'a', 'c', 't', 'o', 'r'};
	uint8_t ct[sizeof PLAIN - 1 + GW_TAG_LEN];
	int outl = 0;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	ck_assert_int_eq(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce), 1);
	ck_assert_int_eq(EVP_EncryptUpdate(ctx, NULL, &outl, aad, sizeof aad), 1);
	ck_assert_int_eq(
	    EVP_EncryptUpdate(ctx, ct, &outl, (const uint8_t *)PLAIN, (int)strlen(PLAIN)), 1);
	ck_assert_int_eq(EVP_EncryptFinal_ex(ctx, ct + outl, &outl), 1);
	ck_assert_int_eq(
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GW_TAG_LEN, ct + strlen(PLAIN)), 1);
	EVP_CIPHER_CTX_free(ctx);

	gw_keyring *kr = ring("x:" KEY_A);
	gw_sealed s = {.key_id = "x", .data = ct, .len = sizeof ct};
	memcpy(s.nonce, nonce, sizeof nonce);
	char *out = NULL;
	ck_assert_int_eq(open_as(kr, "sys", "actor", &s, &out), GW_OK);
	ck_assert_str_eq(out, PLAIN);
	free(out);
	gw_keyring_free(kr);
}
END_TEST

/* ---- envelope 2: the revision is bound too -------------------------------------- */

static gw_err open_rev(const gw_keyring *kr, const char *sys, const char *name, uint64_t rev,
                       const gw_sealed *s, char **out, int *env)
{
	uint8_t *pt = NULL;
	size_t n = 0;
	gw_err e = gw_open_rev(kr, sys, name, rev, s, &pt, &n, env);
	if (e == GW_OK) {
		*out = malloc(n + 1);
		memcpy(*out, pt, n);
		(*out)[n] = '\0';
		free(pt);
	}
	return e;
}

START_TEST(a_row_sealed_at_one_revision_does_not_open_at_another)
{
	gw_keyring *kr = ring("k:" KEY_A);
	gw_sealed s;
	ck_assert_int_eq(
	    gw_seal_rev(kr, "sys", "actor", 7, (const uint8_t *)PLAIN, strlen(PLAIN), &s), GW_OK);
	ck_assert_uint_eq(s.len, GW_ENV2_MAGIC_LEN + strlen(PLAIN) + GW_TAG_LEN);
	ck_assert_mem_eq(s.data, gw_env2_magic, GW_ENV2_MAGIC_LEN);
	char *out = NULL;
	int env = 0;
	ck_assert_int_eq(open_rev(kr, "sys", "actor", 7, &s, &out, &env), GW_OK);
	ck_assert_str_eq(out, PLAIN);
	ck_assert_int_eq(env, 2);
	free(out);
	/* Copied to another revision (older or newer), another actor: refused. */
	ck_assert_int_eq(open_rev(kr, "sys", "actor", 6, &s, &out, &env), GW_ECRYPTO);
	ck_assert_int_eq(open_rev(kr, "sys", "actor", 8, &s, &out, &env), GW_ECRYPTO);
	ck_assert_int_eq(open_rev(kr, "sys", "actor", 7ULL << 32, &s, &out, &env), GW_ECRYPTO);
	ck_assert_int_eq(open_rev(kr, "sys", "other", 7, &s, &out, &env), GW_ECRYPTO);
	/* Nor does it pass for an envelope 1 row with the magic cut off or kept. */
	ck_assert_int_eq(open_as(kr, "sys", "actor", &s, &out), GW_ECRYPTO);
	gw_sealed cut = s;
	cut.data += GW_ENV2_MAGIC_LEN;
	cut.len -= GW_ENV2_MAGIC_LEN;
	ck_assert_int_eq(open_rev(kr, "sys", "actor", 7, &cut, &out, &env), GW_ECRYPTO);
	free(s.data);
	gw_keyring_free(kr);
}
END_TEST

/* Rows written before envelope 2 (gw_seal: the actor only) still open, at
 * whatever revision they are stored. */
START_TEST(an_envelope_1_row_written_before_still_opens)
{
	gw_keyring *kr = ring("k:" KEY_A);
	gw_sealed s = seal(kr, "sys", "actor", PLAIN);
	char *out = NULL;
	int env = 0;
	ck_assert_int_eq(open_rev(kr, "sys", "actor", 3, &s, &out, &env), GW_OK);
	ck_assert_str_eq(out, PLAIN);
	ck_assert_int_eq(env, 1);
	free(out);
	ck_assert_int_eq(open_rev(kr, "sys", "other", 3, &s, &out, &env), GW_ECRYPTO);
	free(s.data);
	gw_keyring_free(kr);
}
END_TEST

/* ---- envelope 3: per-system data keys ------------------------------------------ */

/* hkdf_ref derives a data key the way crypto.h documents it, through
 * another OpenSSL interface (EVP_PKEY HKDF) than the one crypto.c uses. */
static void hkdf_ref(const char *system, uint8_t out[32])
{
	uint8_t ikm[32];
	for (int i = 0; i < 32; i++)
		ikm[i] = (uint8_t)i; /* KEY_A */
	uint8_t info[256];
	const char label[] = "spawn statestore data key v1";
	size_t n = sizeof label, ls = strlen(system);
	memcpy(info, label, n);
	info[n++] = (uint8_t)(ls >> 24);
	info[n++] = (uint8_t)(ls >> 16);
	info[n++] = (uint8_t)(ls >> 8);
	info[n++] = (uint8_t)ls;
	memcpy(info + n, system, ls);
	n += ls;
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t outlen = 32;
	ck_assert_ptr_nonnull(pc);
	ck_assert_int_eq(EVP_PKEY_derive_init(pc), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_hkdf_md(pc, EVP_sha256()), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set1_hkdf_key(pc, ikm, 32), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_add1_hkdf_info(pc, info, (int)n), 1);
	ck_assert_int_eq(EVP_PKEY_derive(pc, out, &outlen), 1);
	ck_assert_uint_eq(outlen, 32);
	EVP_PKEY_CTX_free(pc);
}

/* aad3 builds the envelope 3 AAD of (sys, name, rev, key id). */
static size_t aad3(uint8_t *b, const char *sys, const char *name, uint64_t rev, const char *kid)
{
	size_t n = 0, ls = strlen(sys), ln = strlen(name), li = strlen(kid);
	b[n++] = 0, b[n++] = 0, b[n++] = (uint8_t)(ls >> 8), b[n++] = (uint8_t)ls;
	memcpy(b + n, sys, ls), n += ls;
	b[n++] = 0;
	b[n++] = 0, b[n++] = 0, b[n++] = (uint8_t)(ln >> 8), b[n++] = (uint8_t)ln;
	memcpy(b + n, name, ln), n += ln;
	b[n++] = 3;
	for (int i = 7; i >= 0; i--)
		b[n++] = (uint8_t)(rev >> (8 * i));
	b[n++] = (uint8_t)li;
	memcpy(b + n, kid, li), n += li;
	return n;
}

/* raw_open decrypts an envelope 3 row with key and aad by hand; true when
 * the tag verifies (then out holds the plaintext, NUL-terminated). */
static bool raw_open(const gw_sealed *s, const uint8_t key[32], const uint8_t *aad, size_t aadn,
                     char *out)
{
	const uint8_t *ct = s->data + GW_ENV2_MAGIC_LEN;
	size_t len = s->len - GW_ENV2_MAGIC_LEN - GW_TAG_LEN;
	int outl = 0, fin = 0;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	bool ok =
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, s->nonce) == 1 &&
	    EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aadn) == 1 &&
	    EVP_DecryptUpdate(ctx, (uint8_t *)out, &outl, ct, (int)len) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GW_TAG_LEN, (void *)(ct + len)) == 1 &&
	    EVP_DecryptFinal_ex(ctx, (uint8_t *)out + outl, &fin) == 1;
	EVP_CIPHER_CTX_free(ctx);
	out[len] = '\0';
	return ok;
}

START_TEST(an_envelope_3_row_matches_the_documented_layout)
{
	gw_keyring *kr = ring("k1:" KEY_A);
	gw_sealed s;
	ck_assert_int_eq(
	    gw_seal_sys(kr, "orders", "o-1", 9, (const uint8_t *)PLAIN, strlen(PLAIN), &s), GW_OK);
	ck_assert_str_eq(s.key_id, "k1");
	ck_assert_uint_eq(s.len, GW_ENV2_MAGIC_LEN + strlen(PLAIN) + GW_TAG_LEN);
	ck_assert_mem_eq(s.data, gw_env3_magic, GW_ENV2_MAGIC_LEN);
	ck_assert_int_eq(gw_envelope_of(s.data, s.len), 3);
	uint8_t dk[32], ref[32], aad[256];
	hkdf_ref("orders", ref);
	ck_assert_int_eq(gw_keyring_data_key(kr, "k1", "orders", dk), GW_OK);
	ck_assert_mem_eq(dk, ref, 32);
	char out[256];
	size_t an = aad3(aad, "orders", "o-1", 9, "k1");
	ck_assert(raw_open(&s, ref, aad, an, out));
	ck_assert_str_eq(out, PLAIN);
	/* The keyring key itself (envelope 2's key) does not open it. */
	uint8_t ikm[32];
	for (int i = 0; i < 32; i++)
		ikm[i] = (uint8_t)i;
	ck_assert(!raw_open(&s, ikm, aad, an, out));
	char *o = NULL;
	int env = 0;
	ck_assert_int_eq(open_rev(kr, "orders", "o-1", 9, &s, &o, &env), GW_OK);
	ck_assert_str_eq(o, PLAIN);
	ck_assert_int_eq(env, 3);
	free(o);
	/* Another revision or actor: refused, as in envelope 2. */
	ck_assert_int_eq(open_rev(kr, "orders", "o-1", 8, &s, &o, &env), GW_ECRYPTO);
	ck_assert_int_eq(open_rev(kr, "orders", "o-2", 9, &s, &o, &env), GW_ECRYPTO);
	free(s.data);
	gw_keyring_free(kr);
}
END_TEST

/* The point of envelope 3: system B's data key opens none of system A's
 * rows, even with A's associated data, and a row of A put on B (same actor
 * name, same revision) is refused. */
START_TEST(one_systems_data_key_does_not_open_another_systems_rows)
{
	gw_keyring *kr = ring("k1:" KEY_A);
	gw_sealed s;
	ck_assert_int_eq(
	    gw_seal_sys(kr, "alpha", "acct", 1, (const uint8_t *)PLAIN, strlen(PLAIN), &s), GW_OK);
	uint8_t ka[32], kb[32], aad[256];
	ck_assert_int_eq(gw_keyring_data_key(kr, "k1", "alpha", ka), GW_OK);
	ck_assert_int_eq(gw_keyring_data_key(kr, "k1", "beta", kb), GW_OK);
	ck_assert(memcmp(ka, kb, 32) != 0);
	char out[256];
	size_t an = aad3(aad, "alpha", "acct", 1, "k1");
	ck_assert(raw_open(&s, ka, aad, an, out));
	ck_assert(!raw_open(&s, kb, aad, an, out));
	char *o = NULL;
	int env = 0;
	ck_assert_int_eq(open_rev(kr, "beta", "acct", 1, &s, &o, &env), GW_ECRYPTO);
	/* Length-prefixed info: no two system names share a key. */
	uint8_t k1[32], k2[32];
	ck_assert_int_eq(gw_keyring_data_key(kr, "k1", "ab", k1), GW_OK);
	ck_assert_int_eq(gw_keyring_data_key(kr, "k1", "abc", k2), GW_OK);
	ck_assert(memcmp(k1, k2, 32) != 0);
	ck_assert_int_eq(gw_keyring_data_key(kr, "nope", "ab", k1), GW_ENOTFOUND);
	free(s.data);
	gw_keyring_free(kr);
}
END_TEST

/* The key id is bound: two ids for the same key material (a key re-added
 * under a new id) still do not let a row be relabelled. */
START_TEST(an_envelope_3_row_relabelled_with_another_key_id_does_not_open)
{
	gw_keyring *kr = ring("a:" KEY_A ",b:" KEY_A);
	gw_sealed s;
	ck_assert_int_eq(
	    gw_seal_sys(kr, "sys", "actor", 2, (const uint8_t *)PLAIN, strlen(PLAIN), &s), GW_OK);
	ck_assert_str_eq(s.key_id, "a");
	char *o = NULL;
	ck_assert_int_eq(open_rev(kr, "sys", "actor", 2, &s, &o, NULL), GW_OK);
	free(o);
	s.key_id = "b";
	ck_assert_int_eq(open_rev(kr, "sys", "actor", 2, &s, &o, NULL), GW_ECRYPTO);
	free(s.data);
	gw_keyring_free(kr);
}
END_TEST

/* A scheduled invocation (schedule envelope 3) opens only as the row it
 * was sealed as: its id, its system (recorded in the row, under that
 * system's data key); rows sealed before still open, with no system. */
START_TEST(a_scheduled_invocation_opens_only_under_its_systems_key)
{
	gw_keyring *kr = ring("k1:" KEY_A);
	gw_sealed s;
	ck_assert_int_eq(
	    gw_seal_sched(kr, "orders", "0a0b0c0d.x1", (const uint8_t *)PLAIN, strlen(PLAIN), &s),
	    GW_OK);
	ck_assert_uint_eq(s.len, GW_ENV2_MAGIC_LEN + 4 + 6 + strlen(PLAIN) + GW_TAG_LEN);
	ck_assert_mem_eq(s.data, gw_env3_magic, GW_ENV2_MAGIC_LEN);
	ck_assert_mem_eq(s.data + GW_ENV2_MAGIC_LEN, "\0\0\0\6orders", 10);
	uint8_t *pt = NULL;
	size_t n = 0;
	char *sys = NULL;
	ck_assert_int_eq(gw_open_sched(kr, "__legacy", "0a0b0c0d.x1", &s, &pt, &n, &sys), GW_OK);
	ck_assert_uint_eq(n, strlen(PLAIN));
	ck_assert_mem_eq(pt, PLAIN, n);
	ck_assert_str_eq(sys, "orders");
	free(pt);
	free(sys);
	/* By hand: orders' data key and the documented AAD open it, another
	 * system's key does not. */
	uint8_t ko[32], kb[32], aad[256];
	ck_assert_int_eq(gw_keyring_data_key(kr, "k1", "orders", ko), GW_OK);
	ck_assert_int_eq(gw_keyring_data_key(kr, "k1", "billing", kb), GW_OK);
	size_t an = aad3(aad, "orders", "0a0b0c0d.x1", UINT64_MAX, "k1");
	/* raw_open skips a 4-byte magic: point it 4 bytes before the ciphertext,
	 * which follows the magic (4), the length (4) and "orders" (6). */
	gw_sealed body = s;
	body.data += 14 - GW_ENV2_MAGIC_LEN;
	body.len -= 14 - GW_ENV2_MAGIC_LEN;
	char out[256];
	ck_assert(raw_open(&body, ko, aad, an, out));
	ck_assert_str_eq(out, PLAIN);
	ck_assert(!raw_open(&body, kb, aad, an, out));
	/* Another id, or the recorded system changed: refused. */
	ck_assert_int_eq(gw_open_sched(kr, "__legacy", "0a0b0c0d.x2", &s, &pt, &n, &sys),
	                 GW_ECRYPTO);
	s.data[GW_ENV2_MAGIC_LEN + 4 + 5] = 't'; /* "orders" -> "ordert" */
	ck_assert_int_eq(gw_open_sched(kr, "__legacy", "0a0b0c0d.x1", &s, &pt, &n, &sys),
	                 GW_ECRYPTO);
	free(s.data);
	/* A row sealed before (envelope 1) opens, with no system. */
	s = seal(kr, "__legacy", "0a0b0c0d.x1", PLAIN);
	sys = (char *)"untouched";
	ck_assert_int_eq(gw_open_sched(kr, "__legacy", "0a0b0c0d.x1", &s, &pt, &n, &sys), GW_OK);
	ck_assert_ptr_null(sys);
	free(pt);
	free(s.data);
	ck_assert_int_eq(gw_seal_sched(kr, "", "id", NULL, 0, &s), GW_EINVAL);
	gw_keyring_free(kr);
}
END_TEST

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Data keys are derived once per (key, system) and cached; the cache is a
 * bounded table: 5,000 systems still seal and open (a system whose slot
 * was taken is derived again). Prints what a derivation and a seal cost. */
START_TEST(data_keys_are_derived_once_per_key_and_system_and_the_cache_is_bounded)
{
	gw_keyring *kr = ring("k1:" KEY_A ",k0:" KEY_B);
	uint64_t d0 = 0, h0 = 0, d1 = 0, h1 = 0;
	gw_keyring_cache_stats(kr, &d0, &h0);
	ck_assert_uint_eq(d0, 0);
	gw_sealed s;
	const int n = 20000;
	for (int i = 0; i < 200; i++) { /* warm up the cipher code and the allocator */
		ck_assert_int_eq(
		    gw_seal_rev(kr, "orders", "o", 1, (const uint8_t *)PLAIN, strlen(PLAIN), &s),
		    GW_OK);
		free(s.data);
	}
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(gw_seal_sys(kr, "orders", "o", (uint64_t)i + 1,
		                             (const uint8_t *)PLAIN, strlen(PLAIN), &s),
		                 GW_OK);
		free(s.data);
	}
	double cached = (now_us() - t0) / n;
	gw_keyring_cache_stats(kr, &d1, &h1);
	ck_assert_uint_eq(d1, 1);
	ck_assert_uint_eq(h1, (uint64_t)n - 1);
	t0 = now_us();
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(gw_seal_rev(kr, "orders", "o", (uint64_t)i + 1,
		                             (const uint8_t *)PLAIN, strlen(PLAIN), &s),
		                 GW_OK);
		free(s.data);
	}
	double env2 = (now_us() - t0) / n;
	/* 5,000 distinct systems: each derived (cache misses), all round trip. */
	const int m = 5000;
	char sys[32];
	t0 = now_us();
	for (int i = 0; i < m; i++) {
		snprintf(sys, sizeof sys, "tenant-%d", i);
		ck_assert_int_eq(
		    gw_seal_sys(kr, sys, "o", 1, (const uint8_t *)PLAIN, strlen(PLAIN), &s), GW_OK);
		free(s.data);
	}
	double miss = (now_us() - t0) / m;
	uint64_t d2 = 0;
	gw_keyring_cache_stats(kr, &d2, NULL);
	ck_assert_uint_eq(d2, d1 + (uint64_t)m);
	/* Opening under the second key of the ring derives that key's own. */
	snprintf(sys, sizeof sys, "tenant-%d", 1);
	ck_assert_int_eq(gw_seal_sys(kr, sys, "o", 1, (const uint8_t *)PLAIN, strlen(PLAIN), &s),
	                 GW_OK);
	char *o = NULL;
	ck_assert_int_eq(open_rev(kr, sys, "o", 1, &s, &o, NULL), GW_OK);
	ck_assert_str_eq(o, PLAIN);
	free(o);
	free(s.data);
	gw_keyring *k0 = ring("k0:" KEY_B ",k1:" KEY_A);
	ck_assert_int_eq(
	    gw_seal_sys(k0, "orders", "o", 1, (const uint8_t *)PLAIN, strlen(PLAIN), &s), GW_OK);
	ck_assert_str_eq(s.key_id, "k0");
	ck_assert_int_eq(open_rev(kr, "orders", "o", 1, &s, &o, NULL), GW_OK);
	free(o);
	free(s.data);
	gw_keyring_free(k0);
	fprintf(stderr,
	        "envelope 3: seal (cache hit) %.2f us, envelope 2 seal %.2f us, "
	        "seal with a derivation (miss) %.2f us, so a derivation costs ~%.2f us "
	        "(%d-byte state)\n",
	        cached, env2, miss, miss - cached, (int)strlen(PLAIN));
	gw_keyring_free(kr);
}
END_TEST

/* One TCase per behaviour, named after its test. */
#define ADD(suite, fn)                                                                             \
	do {                                                                                       \
		TCase *tc_ = tcase_create(#fn);                                                    \
		tcase_set_timeout(tc_, 20);                                                        \
		tcase_add_test(tc_, fn);                                                           \
		suite_add_tcase(suite, tc_);                                                       \
	} while (0)

static Suite *crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	ADD(s, seal_then_open_returns_the_plaintext);
	ADD(s, a_large_state_round_trips);
	ADD(s, each_seal_uses_a_fresh_nonce);
	ADD(s, a_wrong_key_does_not_open);
	ADD(s, an_unknown_key_id_does_not_open);
	ADD(s, a_row_sealed_for_one_actor_does_not_open_as_another);
	ADD(s, tampered_bytes_do_not_open);
	ADD(s, a_truncated_row_is_corrupt);
	ADD(s, bad_keyrings_are_refused_with_a_reason);
	ADD(s, good_keyrings_parse);
	ADD(s, every_key_of_a_ring_opens_and_the_first_seals);
	ADD(s, generated_keys_parse_and_differ);
	ADD(s, the_sealed_format_matches_the_documented_layout);
	ADD(s, a_row_sealed_at_one_revision_does_not_open_at_another);
	ADD(s, an_envelope_1_row_written_before_still_opens);
	ADD(s, an_envelope_3_row_matches_the_documented_layout);
	ADD(s, one_systems_data_key_does_not_open_another_systems_rows);
	ADD(s, an_envelope_3_row_relabelled_with_another_key_id_does_not_open);
	ADD(s, data_keys_are_derived_once_per_key_and_system_and_the_cache_is_bounded);
	ADD(s, a_scheduled_invocation_opens_only_under_its_systems_key);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crypto_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
