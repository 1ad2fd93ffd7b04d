/* http_tls.c - the HTTP listener's certificate, reloaded as its files
 * change (see http_tls.h). */
#include "http_tls.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

#define MAX_CHAIN 16

/* One loaded pair. */
typedef struct gen {
	gnutls_pcert_st chain[MAX_CHAIN];
	unsigned n;
	gnutls_privkey_t key;
	struct gen *older; /* kept until destroy (invariant 2) */
} gen;

/* What a stat of a file says, to tell a change. */
typedef struct fstamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool ok;
} fstamp;

struct gw_http_tls {
	pthread_mutex_t mu;
	char *cert_path, *key_path; /* owned */
	gen *cur;                   /* under mu; the newest, older ones chained */
	unsigned generation;
	fstamp cert_seen, key_seen; /* the files as last tried (loaded or refused) */
};

static fstamp stamp(const char *path)
{
	struct stat st;
	fstamp f = {0};
	if (stat(path, &st) == 0)
		f = (fstamp){st.st_dev, st.st_ino, st.st_size, st.st_mtim, true};
	return f;
}

static bool same(const fstamp *a, const fstamp *b)
{
	return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void gen_free(gen *g)
{
	while (g) {
		gen *older = g->older;
		for (unsigned i = 0; i < g->n; i++)
			gnutls_pcert_deinit(&g->chain[i]);
		if (g->key)
			gnutls_privkey_deinit(g->key);
		free(g);
		g = older;
	}
}

/* key_matches: whether the leaf's public key is the private key's. */
static bool key_matches(gnutls_pcert_st *leaf, gnutls_privkey_t key)
{
	gnutls_pubkey_t pub = NULL;
	unsigned char a[64], b[64];
	size_t al = sizeof a, bl = sizeof b;
	bool ok =
	    gnutls_pubkey_init(&pub) == 0 && gnutls_pubkey_import_privkey(pub, key, 0, 0) == 0 &&
	    gnutls_pubkey_get_key_id(pub, 0, a, &al) == 0 &&
	    gnutls_pubkey_get_key_id(leaf->pubkey, 0, b, &bl) == 0 && al == bl && !memcmp(a, b, al);
	if (pub)
		gnutls_pubkey_deinit(pub);
	return ok;
}

/* load reads and checks the pair. Returns it, or NULL with why. */
static gen *load(const char *cert_path, const char *key_path, char *why, size_t wn)
{
	gnutls_datum_t c = {NULL, 0}, k = {NULL, 0};
	gen *g = calloc(1, sizeof *g);
	int rc;
	if (!g) {
		snprintf(why, wn, "out of memory");
		return NULL;
	}
	if ((rc = gnutls_load_file(cert_path, &c)) < 0) {
		snprintf(why, wn, "--tls-cert %s: %s", cert_path, gnutls_strerror(rc));
		goto fail;
	}
	if ((rc = gnutls_load_file(key_path, &k)) < 0) {
		snprintf(why, wn, "--tls-key %s: %s", key_path, gnutls_strerror(rc));
		goto fail;
	}
	g->n = MAX_CHAIN;
	if ((rc = gnutls_pcert_list_import_x509_raw(g->chain, &g->n, &c, GNUTLS_X509_FMT_PEM, 0)) <
	        0 ||
	    g->n == 0) {
		g->n = 0;
		snprintf(why, wn, "--tls-cert %s: no PEM certificate chain (%s)", cert_path,
		         rc < 0 ? gnutls_strerror(rc) : "empty");
		goto fail;
	}
	if ((rc = gnutls_privkey_init(&g->key)) < 0 ||
	    (rc = gnutls_privkey_import_x509_raw(g->key, &k, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		snprintf(why, wn, "--tls-key %s: not a PEM private key (%s)", key_path,
		         gnutls_strerror(rc));
		goto fail;
	}
	if (!key_matches(&g->chain[0], g->key)) {
		snprintf(why, wn, "--tls-key %s does not match the certificate of %s", key_path,
		         cert_path);
		goto fail;
	}
	gnutls_free(c.data);
	if (k.data) {
		explicit_bzero(k.data, k.size);
		gnutls_free(k.data);
	}
	return g;
fail:
	gnutls_free(c.data);
	if (k.data) {
		explicit_bzero(k.data, k.size);
		gnutls_free(k.data);
	}
	gen_free(g);
	return NULL;
}

gw_err gw_http_tls_create(gw_http_tls **out, const char *cert_path, const char *key_path, char *why,
                          size_t whylen)
{
	gw_http_tls *t = calloc(1, sizeof *t);
	if (!t)
		return GW_ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	if (!(t->cert_path = strdup(cert_path)) || !(t->key_path = strdup(key_path))) {
		gw_http_tls_destroy(t);
		return GW_ENOMEM;
	}
	t->cert_seen = stamp(cert_path);
	t->key_seen = stamp(key_path);
	if (!(t->cur = load(cert_path, key_path, why, whylen))) {
		gw_http_tls_destroy(t);
		return GW_ECONFIG;
	}
	t->generation = 1;
	*out = t;
	return GW_OK;
}

int gw_http_tls_current(gw_http_tls *t, gnutls_pcert_st **pcert, unsigned *n, gnutls_privkey_t *key)
{
	pthread_mutex_lock(&t->mu);
	fstamp c = stamp(t->cert_path), k = stamp(t->key_path);
	if (!same(&c, &t->cert_seen) || !same(&k, &t->key_seen)) {
		/* Tried once per change: a pair refused now is tried again when
		 * either file changes once more. */
		t->cert_seen = c;
		t->key_seen = k;
		char why[600];
		gen *g = load(t->cert_path, t->key_path, why, sizeof why);
		if (g) {
			g->older = t->cur;
			t->cur = g;
			t->generation++;
			GW_INFO("--http: TLS certificate %s reloaded (generation %u)", t->cert_path,
			        t->generation);
		} else {
			GW_WARN("--http: TLS files changed but not reloaded, the previous pair "
			        "stays: %s",
			        why);
		}
	}
	int rc = -1;
	if (t->cur) {
		*pcert = t->cur->chain;
		*n = t->cur->n;
		*key = t->cur->key;
		rc = 0;
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

unsigned gw_http_tls_generation(gw_http_tls *t)
{
	pthread_mutex_lock(&t->mu);
	unsigned g = t->generation;
	pthread_mutex_unlock(&t->mu);
	return g;
}

void gw_http_tls_destroy(gw_http_tls *t)
{
	if (!t)
		return;
	gen_free(t->cur);
	pthread_mutex_destroy(&t->mu);
	free(t->cert_path);
	free(t->key_path);
	free(t);
}
