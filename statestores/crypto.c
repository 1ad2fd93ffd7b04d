/* crypto.c - AES-256-GCM sealing for the statestore (see crypto.h). */
#include "crypto.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* A ring has few keys (the current one and those being rotated out); the
 * limit only stops a malformed spec from asking for a huge allocation. */
#define GW_KEYRING_MAX 64

/* EVP_*Update take an int length: feed large states in pieces. */
#define GW_CHUNK ((size_t)1 << 30)

typedef struct gw_key {
	char id[GW_KEY_ID_MAX + 1];
	uint8_t key[GW_KEY_LEN];
} gw_key;

struct gw_keyring {
	size_t n;      /* >= 1; keys[0] is the primary */
	gw_key keys[]; /* owned; zeroed on free */
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- parsing ----------------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* trim narrows [*p, *p + *n) to drop blanks at both ends. */
static void trim(const char **p, size_t *n)
{
	while (*n > 0 && is_blank(**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && is_blank((*p)[*n - 1]))
		(*n)--;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* b64_decoded_len validates s (n chars, standard alphabet, '=' padding
 * optional but correct when present) and returns the decoded length, or -1
 * when s is not base64. */
static long b64_decoded_len(const char *s, size_t n)
{
	size_t pad = 0;
	while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
		pad++;
	size_t r = n - pad;
	if (r % 4 == 1 || (pad > 0 && n % 4 != 0))
		return -1;
	for (size_t i = 0; i < r; i++)
		if (b64_value(s[i]) < 0)
			return -1;
	return (long)(r / 4 * 3 + (r % 4 == 0 ? 0 : r % 4 - 1));
}

/* b64_decode decodes s, already checked by b64_decoded_len, into out. */
static void b64_decode(const char *s, size_t n, uint8_t *out)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		acc = (acc << 6) | (uint32_t)b64_value(s[i]);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	acc = 0;
	OPENSSL_cleanse(&acc, sizeof acc);
}

static bool valid_id(const char *p, size_t n)
{
	if (n == 0 || n > GW_KEY_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* parse_entry fills k from one "id:key" entry (or a bare key, has_id
 * false). idx is 1-based, for messages. Messages never quote the key. */
static gw_err parse_entry(gw_key *k, const char *p, size_t n, bool has_id, size_t idx, char *err,
                          size_t errlen)
{
	const char *id = "k0", *key = p;
	size_t idn = 2, keyn = n;
	if (has_id) {
		const char *colon = memchr(p, ':', n);
		if (!colon) {
			errf(err, errlen, "statestore key entry %zu has no \"id:\" prefix", idx);
			return GW_ECONFIG;
		}
		id = p;
		idn = (size_t)(colon - p);
		key = colon + 1;
		keyn = n - idn - 1;
		trim(&id, &idn);
		trim(&key, &keyn);
		if (idn == 0) {
			errf(err, errlen, "statestore key entry %zu has an empty key id", idx);
			return GW_ECONFIG;
		}
		if (!valid_id(id, idn)) {
			errf(err, errlen,
			     "statestore key entry %zu: key id must be 1..%d characters of "
			     "[A-Za-z0-9_.-]",
			     idx, GW_KEY_ID_MAX);
			return GW_ECONFIG;
		}
	}
	memcpy(k->id, id, idn);
	k->id[idn] = '\0';
	if (keyn == 0) {
		errf(err, errlen, "statestore key '%s' is empty", k->id);
		return GW_ECONFIG;
	}
	long dl = b64_decoded_len(key, keyn);
	if (dl < 0) {
		errf(err, errlen, "statestore key '%s' is not valid base64", k->id);
		return GW_ECONFIG;
	}
	if (dl != GW_KEY_LEN) {
		errf(err, errlen,
		     "statestore key '%s' decodes to %ld bytes; AES-256 needs exactly %d "
		     "(generate one with: openssl rand -base64 32)",
		     k->id, dl, GW_KEY_LEN);
		return GW_ECONFIG;
	}
	b64_decode(key, keyn, k->key);
	return GW_OK;
}

gw_err gw_keyring_parse(gw_keyring **out, const char *spec, char *err, size_t errlen)
{
	gw_keyring *kr = NULL;
	gw_err rc = GW_ECONFIG;
	if (!out || !spec) {
		errf(err, errlen, "no statestore key given");
		return GW_EINVAL;
	}
	const char *p = spec;
	size_t n = strlen(spec);
	trim(&p, &n);
	if (n == 0) {
		errf(err, errlen, "the statestore key is empty");
		return GW_ECONFIG;
	}
	/* ':' is not in the base64 alphabet, so it tells the two forms apart. */
	bool ring = memchr(p, ':', n) != NULL;
	size_t entries = 1;
	for (size_t i = 0; ring && i < n; i++)
		if (p[i] == ',')
			entries++;
	if (entries > GW_KEYRING_MAX) {
		errf(err, errlen, "the statestore keyring has %zu keys, at most %d allowed",
		     entries, GW_KEYRING_MAX);
		return GW_ECONFIG;
	}
	kr = calloc(1, sizeof *kr + entries * sizeof kr->keys[0]);
	if (!kr) {
		errf(err, errlen, "out of memory parsing the statestore keyring");
		return GW_ENOMEM;
	}
	const char *end = p + n;
	for (size_t i = 0; i < entries; i++) {
		const char *comma = ring ? memchr(p, ',', (size_t)(end - p)) : NULL;
		const char *e = comma ? comma : end;
		const char *ep = p;
		size_t en = (size_t)(e - p);
		trim(&ep, &en);
		if (en == 0) {
			errf(err, errlen, "statestore keyring entry %zu is empty", i + 1);
			rc = GW_ECONFIG;
			goto fail;
		}
		rc = parse_entry(&kr->keys[i], ep, en, ring, i + 1, err, errlen);
		kr->n = i + 1; /* so fail: cleanses what was written */
		if (rc != GW_OK)
			goto fail;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(kr->keys[j].id, kr->keys[i].id) == 0) {
				errf(err, errlen, "statestore key id '%s' appears twice",
				     kr->keys[i].id);
				rc = GW_ECONFIG;
				goto fail;
			}
		}
		p = e + 1;
	}
	*out = kr;
	return GW_OK;
fail:
	gw_keyring_free(kr);
	return rc;
}

void gw_keyring_free(gw_keyring *kr)
{
	if (!kr)
		return;
	OPENSSL_cleanse(kr->keys, kr->n * sizeof kr->keys[0]);
	free(kr);
}

gw_err gw_keyring_generate(char out[GW_KEY_B64_LEN + 1])
{
	uint8_t raw[GW_KEY_LEN];
	if (RAND_bytes(raw, sizeof raw) != 1)
		return GW_ECRYPTO;
	int n = EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw);
	OPENSSL_cleanse(raw, sizeof raw);
	return n == GW_KEY_B64_LEN ? GW_OK : GW_ECRYPTO;
}

const char *gw_keyring_primary_id(const gw_keyring *kr)
{
	return kr->keys[0].id;
}

/* ---- sealing ----------------------------------------------------------- */

static const gw_key *find_key(const gw_keyring *kr, const char *id)
{
	for (size_t i = 0; i < kr->n; i++)
		if (strcmp(kr->keys[i].id, id) == 0)
			return &kr->keys[i];
	return NULL;
}

static void be32(uint8_t b[4], uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

const uint8_t gw_env2_magic[GW_ENV2_MAGIC_LEN] = {0xA7, 'G', 'W', 0x02};

/* add_aad feeds the actor identity to ctx as GCM associated data, in
 * pieces (GCM accepts several AAD updates before the payload). enc selects
 * EVP_EncryptUpdate or EVP_DecryptUpdate. rev: envelope 2 binds the
 * revision too (0x02 || be64(revision) follow); NULL: envelope 1. */
static bool add_aad(EVP_CIPHER_CTX *ctx, bool enc, const char *system, const char *name,
                    const uint64_t *rev)
{
	size_t ls = strlen(system), ln = strlen(name);
	if (ls > INT_MAX || ln > INT_MAX)
		return false;
	uint8_t ps[4], pn[4], zero = 0, rv[9] = {2};
	be32(ps, (uint32_t)ls);
	be32(pn, (uint32_t)ln);
	if (rev) {
		be32(rv + 1, (uint32_t)(*rev >> 32));
		be32(rv + 5, (uint32_t)*rev);
	}
	const struct {
		const uint8_t *p;
		size_t n;
	} parts[] = {{ps, 4}, {(const uint8_t *)system, ls}, {&zero, 1},
	             {pn, 4}, {(const uint8_t *)name, ln},   {rv, rev ? sizeof rv : 0}};
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		int outl;
		if (parts[i].n == 0)
			continue;
		int ok = enc ? EVP_EncryptUpdate(ctx, NULL, &outl, parts[i].p, (int)parts[i].n)
		             : EVP_DecryptUpdate(ctx, NULL, &outl, parts[i].p, (int)parts[i].n);
		if (ok != 1)
			return false;
	}
	return true;
}

/* crypt_all runs the payload through ctx in chunks of at most GW_CHUNK. */
static bool crypt_all(EVP_CIPHER_CTX *ctx, bool enc, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t off = 0;
	while (off < len) {
		size_t c = len - off < GW_CHUNK ? len - off : GW_CHUNK;
		int outl = 0;
		int ok = enc ? EVP_EncryptUpdate(ctx, out + off, &outl, in + off, (int)c)
		             : EVP_DecryptUpdate(ctx, out + off, &outl, in + off, (int)c);
		if (ok != 1 || (size_t)outl != c)
			return false;
		off += c;
	}
	return true;
}

/* seal_env seals for envelope 1 (rev NULL) or 2 (the magic first, the
 * revision in the AAD). */
static gw_err seal_env(const gw_keyring *kr, const char *system, const char *name,
                       const uint64_t *rev, const uint8_t *pt, size_t len, gw_sealed *out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *buf = NULL;
	gw_err rc = GW_ECRYPTO;
	size_t head = rev ? GW_ENV2_MAGIC_LEN : 0;
	if (!kr || !system || !name || (!pt && len > 0) || !out)
		return GW_EINVAL;
	if (len > SIZE_MAX - GW_TAG_LEN - head)
		return GW_ETOOBIG;
	const gw_key *k = &kr->keys[0];
	uint8_t nonce[GW_NONCE_LEN];
	if (RAND_bytes(nonce, sizeof nonce) != 1)
		return GW_ECRYPTO;
	buf = malloc(head + len + GW_TAG_LEN);
	if (!buf)
		return GW_ENOMEM;
	memcpy(buf, gw_env2_magic, head);
	uint8_t *ct = buf + head;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx) {
		rc = GW_ENOMEM;
		goto fail;
	}
	int outl = 0;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GW_NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, k->key, nonce) != 1 ||
	    !add_aad(ctx, true, system, name, rev) || !crypt_all(ctx, true, pt, len, ct) ||
	    EVP_EncryptFinal_ex(ctx, ct + len, &outl) != 1 || outl != 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GW_TAG_LEN, ct + len) != 1)
		goto fail;
	EVP_CIPHER_CTX_free(ctx); /* cleanses the key schedule */
	out->key_id = k->id;
	memcpy(out->nonce, nonce, sizeof nonce);
	out->data = buf;
	out->len = head + len + GW_TAG_LEN;
	return GW_OK;
fail:
	EVP_CIPHER_CTX_free(ctx);
	free(buf); /* ciphertext only: nothing secret to wipe */
	return rc;
}

gw_err gw_seal(const gw_keyring *kr, const char *system, const char *name, const uint8_t *pt,
               size_t len, gw_sealed *out)
{
	return seal_env(kr, system, name, NULL, pt, len, out);
}

gw_err gw_seal_rev(const gw_keyring *kr, const char *system, const char *name, uint64_t revision,
                   const uint8_t *pt, size_t len, gw_sealed *out)
{
	return seal_env(kr, system, name, &revision, pt, len, out);
}

/* open_env opens data (ciphertext || tag, dlen bytes) of in as envelope 1
 * (rev NULL) or 2. */
static gw_err open_env(const gw_keyring *kr, const char *system, const char *name,
                       const uint64_t *rev, const gw_sealed *in, const uint8_t *data, size_t dlen,
                       uint8_t **pt, size_t *ptlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	gw_err rc = GW_ECRYPTO;
	if (dlen < GW_TAG_LEN)
		return GW_ECORRUPT;
	const gw_key *k = find_key(kr, in->key_id);
	if (!k)
		return GW_ECRYPTO;
	len = dlen - GW_TAG_LEN;
	uint8_t tag[GW_TAG_LEN];
	memcpy(tag, data + len, GW_TAG_LEN);
	buf = malloc(len > 0 ? len : 1);
	if (!buf)
		return GW_ENOMEM;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx) {
		rc = GW_ENOMEM;
		goto fail;
	}
	int outl = 0;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GW_NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, k->key, in->nonce) != 1 ||
	    !add_aad(ctx, false, system, name, rev) || !crypt_all(ctx, false, data, len, buf) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GW_TAG_LEN, tag) != 1)
		goto fail;
	/* Final verifies the tag; until it passes, buf is unauthenticated. */
	if (EVP_DecryptFinal_ex(ctx, buf + len, &outl) != 1 || outl != 0)
		goto fail;
	EVP_CIPHER_CTX_free(ctx);
	*pt = buf;
	*ptlen = len;
	return GW_OK;
fail:
	EVP_CIPHER_CTX_free(ctx);
	if (buf)
		OPENSSL_cleanse(buf, len);
	free(buf);
	return rc;
}

static bool open_args_ok(const gw_keyring *kr, const char *system, const char *name,
                         const gw_sealed *in, uint8_t **pt, size_t *ptlen)
{
	return kr && system && name && in && in->key_id && (in->data || in->len == 0) && pt &&
	       ptlen;
}

gw_err gw_open(const gw_keyring *kr, const char *system, const char *name, const gw_sealed *in,
               uint8_t **pt, size_t *ptlen)
{
	if (!open_args_ok(kr, system, name, in, pt, ptlen))
		return GW_EINVAL;
	return open_env(kr, system, name, NULL, in, in->data, in->len, pt, ptlen);
}

gw_err gw_open_rev(const gw_keyring *kr, const char *system, const char *name, uint64_t revision,
                   const gw_sealed *in, uint8_t **pt, size_t *ptlen, int *envelope)
{
	if (!open_args_ok(kr, system, name, in, pt, ptlen))
		return GW_EINVAL;
	if (in->len >= GW_ENV2_MAGIC_LEN + GW_TAG_LEN &&
	    !memcmp(in->data, gw_env2_magic, GW_ENV2_MAGIC_LEN)) {
		gw_err e = open_env(kr, system, name, &revision, in, in->data + GW_ENV2_MAGIC_LEN,
		                    in->len - GW_ENV2_MAGIC_LEN, pt, ptlen);
		if (e != GW_ECRYPTO) {
			if (e == GW_OK && envelope)
				*envelope = 2;
			return e;
		}
		/* Not envelope 2 for this revision: either a row moved to another
		 * revision (then envelope 1 fails too: its tag covers other
		 * bytes and another AAD), or an envelope 1 row whose ciphertext
		 * happens to begin with the magic (1 in 2^32). */
	}
	gw_err e = open_env(kr, system, name, NULL, in, in->data, in->len, pt, ptlen);
	if (e == GW_OK && envelope)
		*envelope = 1;
	return e;
}
