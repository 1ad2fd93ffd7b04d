/* crypto.c - AES-256-GCM sealing for the statestore (see crypto.h). */
#include "crypto.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
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

/* The cache of per-system data keys (envelope 3): a direct-mapped table
 * of GW_DKEY_CACHE slots, hashed on (key index, system). A collision
 * replaces the slot (its key zeroed), so the table never grows: a gateway
 * serving more systems than slots derives again, it does not allocate.
 * Slots hold a copy of the system name when it fits (longer names are
 * derived every time). */
#define GW_DKEY_CACHE  1024
#define GW_DKEY_SYSMAX 96

typedef struct gw_dkey {
	uint32_t kidx; /* index of the keyring key + 1; 0 = empty slot */
	uint8_t sysn;  /* length of sys */
	char sys[GW_DKEY_SYSMAX];
	uint8_t key[GW_KEY_LEN];
} gw_dkey;

typedef struct gw_dkey_cache {
	pthread_mutex_t mu;
	uint64_t derived, hits; /* under mu: for tests and figures */
	gw_dkey slot[GW_DKEY_CACHE];
} gw_dkey_cache;

struct gw_keyring {
	gw_dkey_cache *cache; /* owned; zeroed on free. A keyring is immutable
	                         but for this cache, behind its own mutex. */
	size_t n;             /* >= 1; keys[0] is the primary */
	gw_key keys[];        /* owned; zeroed on free */
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
	if (kr && !(kr->cache = calloc(1, sizeof *kr->cache))) {
		free(kr);
		kr = NULL;
	}
	if (kr)
		pthread_mutex_init(&kr->cache->mu, NULL);
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
	if (kr->cache) {
		pthread_mutex_destroy(&kr->cache->mu);
		OPENSSL_cleanse(kr->cache->slot, sizeof kr->cache->slot);
		free(kr->cache);
	}
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

static const gw_key *find_key(const gw_keyring *kr, const char *id, size_t *idx)
{
	for (size_t i = 0; i < kr->n; i++)
		if (strcmp(kr->keys[i].id, id) == 0) {
			if (idx)
				*idx = i;
			return &kr->keys[i];
		}
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
const uint8_t gw_env3_magic[GW_ENV2_MAGIC_LEN] = {0xA7, 'G', 'W', 0x03};

/* ---- per-system data keys (envelope 3) ------------------------------------ */

/* The HKDF info of system's data key: the label (with its NUL), then
 * be32(len(system)) || system. OpenSSL 3.0 bounds the info at 1,024 bytes,
 * so a system name longer than GW_DKEY_INFO_SYS stands in the info as its
 * SHA-256 after its length (the length still tells the two forms apart). */
static const char dkey_label[] = "spawn statestore data key v1";
#define GW_DKEY_INFO_SYS 900

static bool dkey_derive(const uint8_t ikm[GW_KEY_LEN], const char *system, uint8_t out[GW_KEY_LEN])
{
	size_t ls = strlen(system);
	if (ls > UINT32_MAX)
		return false;
	uint8_t info[sizeof dkey_label + 4 + GW_DKEY_INFO_SYS];
	size_t n = sizeof dkey_label;
	memcpy(info, dkey_label, n);
	be32(info + n, (uint32_t)ls);
	n += 4;
	if (ls <= GW_DKEY_INFO_SYS) {
		memcpy(info + n, system, ls);
		n += ls;
	} else {
		unsigned int hl = 0;
		if (EVP_Digest(system, ls, info + n, &hl, EVP_sha256(), NULL) != 1)
			return false;
		n += hl;
	}
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	EVP_KDF_free(kdf); /* the context keeps its own reference */
	if (!kctx)
		return false;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, GW_KEY_LEN),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
	    OSSL_PARAM_construct_end(),
	};
	bool ok = EVP_KDF_derive(kctx, out, GW_KEY_LEN, params) == 1;
	EVP_KDF_CTX_free(kctx);
	return ok;
}

static uint32_t dkey_hash(size_t kidx, const char *system, size_t ls)
{
	uint32_t h = 2166136261u ^ (uint32_t)kidx;
	for (size_t i = 0; i < ls; i++)
		h = (h ^ (uint8_t)system[i]) * 16777619u;
	return h;
}

/* dkey_get writes the data key of system under keyring key kidx into out
 * (caller storage; the caller cleanses it): from the cache, or derived and
 * cached. */
static bool dkey_get(const gw_keyring *kr, size_t kidx, const char *system, uint8_t out[GW_KEY_LEN])
{
	gw_dkey_cache *c = kr->cache;
	size_t ls = strlen(system);
	gw_dkey *d = NULL;
	if (ls <= GW_DKEY_SYSMAX) {
		d = &c->slot[dkey_hash(kidx, system, ls) % GW_DKEY_CACHE];
		pthread_mutex_lock(&c->mu);
		if (d->kidx == kidx + 1 && d->sysn == ls && memcmp(d->sys, system, ls) == 0) {
			memcpy(out, d->key, GW_KEY_LEN);
			c->hits++;
			pthread_mutex_unlock(&c->mu);
			return true;
		}
		pthread_mutex_unlock(&c->mu);
	}
	/* Derived outside the lock: another thread may derive the same key at
	 * once; both write the same bytes. */
	if (!dkey_derive(kr->keys[kidx].key, system, out))
		return false;
	pthread_mutex_lock(&c->mu);
	c->derived++;
	if (d) {
		OPENSSL_cleanse(d->key, sizeof d->key);
		d->kidx = (uint32_t)kidx + 1;
		d->sysn = (uint8_t)ls;
		memcpy(d->sys, system, ls);
		memcpy(d->key, out, GW_KEY_LEN);
	}
	pthread_mutex_unlock(&c->mu);
	return true;
}

gw_err gw_keyring_data_key(const gw_keyring *kr, const char *key_id, const char *system,
                           uint8_t out[GW_KEY_LEN])
{
	size_t idx = 0;
	if (!kr || !key_id || !system || !out)
		return GW_EINVAL;
	if (!find_key(kr, key_id, &idx))
		return GW_ENOTFOUND;
	return dkey_get(kr, idx, system, out) ? GW_OK : GW_ECRYPTO;
}

void gw_keyring_cache_stats(const gw_keyring *kr, uint64_t *derived, uint64_t *hits)
{
	pthread_mutex_lock(&kr->cache->mu);
	if (derived)
		*derived = kr->cache->derived;
	if (hits)
		*hits = kr->cache->hits;
	pthread_mutex_unlock(&kr->cache->mu);
}

/* add_aad feeds the actor identity to ctx as GCM associated data, in
 * pieces (GCM accepts several AAD updates before the payload). enc selects
 * EVP_EncryptUpdate or EVP_DecryptUpdate. env 1: the identity only; env 2:
 * 0x02 || be64(revision) follow; env 3: 0x03 || be64(revision) ||
 * u8(len(key_id)) || key_id follow. */
static bool add_aad(EVP_CIPHER_CTX *ctx, bool enc, const char *system, const char *name, int env,
                    uint64_t rev, const char *key_id)
{
	size_t ls = strlen(system), ln = strlen(name), li = env == 3 ? strlen(key_id) : 0;
	if (ls > INT_MAX || ln > INT_MAX || li > GW_KEY_ID_MAX)
		return false;
	uint8_t ps[4], pn[4], zero = 0, rv[10] = {(uint8_t)env};
	be32(ps, (uint32_t)ls);
	be32(pn, (uint32_t)ln);
	be32(rv + 1, (uint32_t)(rev >> 32));
	be32(rv + 5, (uint32_t)rev);
	rv[9] = (uint8_t)li;
	size_t rvn = env == 1 ? 0 : env == 2 ? 9 : 10;
	const struct {
		const uint8_t *p;
		size_t n;
	} parts[] = {{ps, 4},
	             {(const uint8_t *)system, ls},
	             {&zero, 1},
	             {pn, 4},
	             {(const uint8_t *)name, ln},
	             {rv, rvn},
	             {(const uint8_t *)key_id, li}};
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

/* seal_env seals for envelope env: 1 (no magic), 2 (its magic, the
 * revision in the AAD) or 3 (its magic, the revision and the key id in the
 * AAD, under the primary key's data key for system). */
static gw_err seal_env(const gw_keyring *kr, int env, const char *system, const char *name,
                       uint64_t rev, const uint8_t *pt, size_t len, gw_sealed *out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *buf = NULL;
	gw_err rc = GW_ECRYPTO;
	size_t head = env >= 2 ? GW_ENV2_MAGIC_LEN : 0;
	uint8_t dk[GW_KEY_LEN];
	if (!kr || !system || !name || (!pt && len > 0) || !out)
		return GW_EINVAL;
	if (len > SIZE_MAX - GW_TAG_LEN - head)
		return GW_ETOOBIG;
	const gw_key *k = &kr->keys[0];
	const uint8_t *key = k->key;
	if (env == 3) {
		if (!dkey_get(kr, 0, system, dk))
			return GW_ECRYPTO;
		key = dk;
	}
	uint8_t nonce[GW_NONCE_LEN];
	if (RAND_bytes(nonce, sizeof nonce) != 1)
		goto fail;
	buf = malloc(head + len + GW_TAG_LEN);
	if (!buf) {
		rc = GW_ENOMEM;
		goto fail;
	}
	memcpy(buf, env == 3 ? gw_env3_magic : gw_env2_magic, head);
	uint8_t *ct = buf + head;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx) {
		rc = GW_ENOMEM;
		goto fail;
	}
	int outl = 0;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GW_NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 ||
	    !add_aad(ctx, true, system, name, env, rev, k->id) ||
	    !crypt_all(ctx, true, pt, len, ct) || EVP_EncryptFinal_ex(ctx, ct + len, &outl) != 1 ||
	    outl != 0 || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GW_TAG_LEN, ct + len) != 1)
		goto fail;
	EVP_CIPHER_CTX_free(ctx); /* cleanses the key schedule */
	OPENSSL_cleanse(dk, sizeof dk);
	out->key_id = k->id;
	memcpy(out->nonce, nonce, sizeof nonce);
	out->data = buf;
	out->len = head + len + GW_TAG_LEN;
	return GW_OK;
fail:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(dk, sizeof dk);
	free(buf); /* ciphertext only: nothing secret to wipe */
	return rc;
}

gw_err gw_seal(const gw_keyring *kr, const char *system, const char *name, const uint8_t *pt,
               size_t len, gw_sealed *out)
{
	return seal_env(kr, 1, system, name, 0, pt, len, out);
}

gw_err gw_seal_rev(const gw_keyring *kr, const char *system, const char *name, uint64_t revision,
                   const uint8_t *pt, size_t len, gw_sealed *out)
{
	return seal_env(kr, 2, system, name, revision, pt, len, out);
}

gw_err gw_seal_sys(const gw_keyring *kr, const char *system, const char *name, uint64_t revision,
                   const uint8_t *pt, size_t len, gw_sealed *out)
{
	return seal_env(kr, 3, system, name, revision, pt, len, out);
}

/* open_env opens data (ciphertext || tag, dlen bytes) of in as envelope
 * env (1, 2 or 3: see seal_env). */
static gw_err open_env(const gw_keyring *kr, int env, const char *system, const char *name,
                       uint64_t rev, const gw_sealed *in, const uint8_t *data, size_t dlen,
                       uint8_t **pt, size_t *ptlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *buf = NULL;
	size_t len = 0, idx = 0;
	gw_err rc = GW_ECRYPTO;
	uint8_t dk[GW_KEY_LEN];
	if (dlen < GW_TAG_LEN)
		return GW_ECORRUPT;
	const gw_key *k = find_key(kr, in->key_id, &idx);
	if (!k)
		return GW_ECRYPTO;
	const uint8_t *key = k->key;
	if (env == 3) {
		if (!dkey_get(kr, idx, system, dk))
			return GW_ECRYPTO;
		key = dk;
	}
	len = dlen - GW_TAG_LEN;
	uint8_t tag[GW_TAG_LEN];
	memcpy(tag, data + len, GW_TAG_LEN);
	buf = malloc(len > 0 ? len : 1);
	if (!buf) {
		rc = GW_ENOMEM;
		goto fail;
	}
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx) {
		rc = GW_ENOMEM;
		goto fail;
	}
	int outl = 0;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GW_NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key, in->nonce) != 1 ||
	    !add_aad(ctx, false, system, name, env, rev, k->id) ||
	    !crypt_all(ctx, false, data, len, buf) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GW_TAG_LEN, tag) != 1)
		goto fail;
	/* Final verifies the tag; until it passes, buf is unauthenticated. */
	if (EVP_DecryptFinal_ex(ctx, buf + len, &outl) != 1 || outl != 0)
		goto fail;
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(dk, sizeof dk);
	*pt = buf;
	*ptlen = len;
	return GW_OK;
fail:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(dk, sizeof dk);
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
	return open_env(kr, 1, system, name, 0, in, in->data, in->len, pt, ptlen);
}

int gw_envelope_of(const uint8_t *data, size_t len)
{
	if (len >= GW_ENV2_MAGIC_LEN + GW_TAG_LEN && data) {
		if (!memcmp(data, gw_env3_magic, GW_ENV2_MAGIC_LEN))
			return 3;
		if (!memcmp(data, gw_env2_magic, GW_ENV2_MAGIC_LEN))
			return 2;
	}
	return 1;
}

gw_err gw_open_rev(const gw_keyring *kr, const char *system, const char *name, uint64_t revision,
                   const gw_sealed *in, uint8_t **pt, size_t *ptlen, int *envelope)
{
	if (!open_args_ok(kr, system, name, in, pt, ptlen))
		return GW_EINVAL;
	int env = gw_envelope_of(in->data, in->len);
	if (env >= 2) {
		gw_err e =
		    open_env(kr, env, system, name, revision, in, in->data + GW_ENV2_MAGIC_LEN,
		             in->len - GW_ENV2_MAGIC_LEN, pt, ptlen);
		if (e != GW_ECRYPTO) {
			if (e == GW_OK && envelope)
				*envelope = env;
			return e;
		}
		/* Not envelope 2 or 3 for this actor and revision: either a row
		 * moved to another actor, system or revision (then envelope 1
		 * fails too: its tag covers other bytes and another AAD), or an
		 * envelope 1 row whose ciphertext happens to begin with a magic
		 * (1 in 2^31). */
	}
	gw_err e = open_env(kr, 1, system, name, 0, in, in->data, in->len, pt, ptlen);
	if (e == GW_OK && envelope)
		*envelope = 1;
	return e;
}

/* ---- scheduled invocations ------------------------------------------------- */

gw_err gw_seal_sched(const gw_keyring *kr, const char *system, const char *id, const uint8_t *pt,
                     size_t len, gw_sealed *out)
{
	if (!system || !id || !out)
		return GW_EINVAL;
	size_t ls = strlen(system);
	if (ls == 0 || ls > GW_SEAL_SYSTEM_MAX)
		return GW_EINVAL;
	gw_sealed inner;
	gw_err e = seal_env(kr, 3, system, id, UINT64_MAX, pt, len, &inner);
	if (e != GW_OK)
		return e;
	/* inner.data = magic || ct || tag: put the system after the magic. */
	size_t head = GW_ENV2_MAGIC_LEN + 4 + ls;
	if (inner.len - GW_ENV2_MAGIC_LEN > SIZE_MAX - head) {
		free(inner.data);
		return GW_ETOOBIG;
	}
	uint8_t *buf = malloc(head + inner.len - GW_ENV2_MAGIC_LEN);
	if (!buf) {
		free(inner.data);
		return GW_ENOMEM;
	}
	memcpy(buf, gw_env3_magic, GW_ENV2_MAGIC_LEN);
	be32(buf + GW_ENV2_MAGIC_LEN, (uint32_t)ls);
	memcpy(buf + GW_ENV2_MAGIC_LEN + 4, system, ls);
	memcpy(buf + head, inner.data + GW_ENV2_MAGIC_LEN, inner.len - GW_ENV2_MAGIC_LEN);
	*out = inner;
	out->data = buf;
	out->len = head + inner.len - GW_ENV2_MAGIC_LEN;
	free(inner.data);
	return GW_OK;
}

gw_err gw_open_sched(const gw_keyring *kr, const char *legacy_system, const char *id,
                     const gw_sealed *in, uint8_t **pt, size_t *ptlen, char **system)
{
	if (!open_args_ok(kr, legacy_system, id, in, pt, ptlen))
		return GW_EINVAL;
	const uint8_t *d = in->data;
	if (in->len >= GW_ENV2_MAGIC_LEN + 4 + GW_TAG_LEN &&
	    !memcmp(d, gw_env3_magic, GW_ENV2_MAGIC_LEN)) {
		size_t ls = (size_t)d[4] << 24 | (size_t)d[5] << 16 | (size_t)d[6] << 8 | d[7];
		size_t head = GW_ENV2_MAGIC_LEN + 4 + ls;
		if (ls > 0 && ls <= GW_SEAL_SYSTEM_MAX && in->len >= head + GW_TAG_LEN &&
		    !memchr(d + 8, 0, ls)) {
			char *sys = malloc(ls + 1);
			if (!sys)
				return GW_ENOMEM;
			memcpy(sys, d + 8, ls);
			sys[ls] = '\0';
			gw_err e = open_env(kr, 3, sys, id, UINT64_MAX, in, d + head,
			                    in->len - head, pt, ptlen);
			if (e == GW_OK && system)
				*system = sys;
			else
				free(sys);
			if (e != GW_ECRYPTO)
				return e;
		}
		/* Else an envelope 1 row that begins with the magic by chance. */
	}
	gw_err e = open_env(kr, 1, legacy_system, id, 0, in, d, in->len, pt, ptlen);
	if (e == GW_OK && system)
		*system = NULL;
	return e;
}
