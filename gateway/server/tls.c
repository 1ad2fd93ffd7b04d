/* tls.c - see tls.h. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "log.h"

#define TLS_FILE_MAX (1 << 20) /* a PEM file larger than this is refused */
#define TLS_RETRY_NS 1000000000LL
#define F_CERT       0
#define F_KEY        1
#define F_CA         2
#define F_COUNT      3

/* What stat says of a file: a change in any field is a change of the file
 * (a copy over it, a rename onto it, a symlink swapped as Kubernetes does). */
typedef struct tls_stamp {
	bool present;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
} tls_stamp;

/* One listener's credentials: the generation it was last given. */
typedef struct tls_lst {
	gw_tls *t;
	uint64_t gen; /* guarded by t->mu */
	struct tls_lst *next;
} tls_lst;

struct gw_tls {
	pthread_mutex_t mu;
	char *path[F_COUNT];    /* owned; path[F_CA] NULL without mTLS */
	char *pem[F_COUNT];     /* owned: the files in use (invariant 1) */
	tls_stamp st[F_COUNT];  /* of the files in use */
	tls_stamp bad[F_COUNT]; /* of the last set refused; valid when have_bad */
	bool have_bad;
	int64_t bad_ns;                  /* when it was refused */
	uint64_t gen;                    /* of the files in use; starts at 1 */
	tls_lst *lst;                    /* owned: every listener's context */
	atomic_uint_fast64_t handshakes; /* fetch calls: one per server handshake started */
};

static const char *const flag_of[F_COUNT] = {"--tls-cert", "--tls-key", "--tls-client-ca"};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void stamp_of(const struct stat *sb, tls_stamp *s)
{
	s->present = true;
	s->dev = sb->st_dev;
	s->ino = sb->st_ino;
	s->size = sb->st_size;
	s->mtime = sb->st_mtim;
	s->ctime = sb->st_ctim;
}

static bool stamp_eq(const tls_stamp *a, const tls_stamp *b)
{
	return a->present == b->present && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* read_file reads path whole (NUL-terminated) and its stamp, taken from
 * the descriptor it read. Returns the buffer (caller frees) or NULL with
 * why set. */
static char *read_file(const char *flag, const char *path, tls_stamp *st, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "%s %s: cannot open: %s", flag, path, strerror(errno));
		return NULL;
	}
	struct stat sb;
	char *buf = NULL;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(why, whylen, "%s %s: not a regular file", flag, path);
		goto fail;
	}
	if (sb.st_size <= 0 || sb.st_size > TLS_FILE_MAX) {
		snprintf(why, whylen, "%s %s: %s", flag, path,
		         sb.st_size <= 0 ? "the file is empty" : "larger than 1 MiB");
		goto fail;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		snprintf(why, whylen, "%s %s: out of memory", flag, path);
		goto fail;
	}
	size_t got = 0;
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(why, whylen, "%s %s: cannot read: %s", flag, path,
			         r < 0 ? strerror(errno) : "the file shrank while read");
			goto fail;
		}
		got += (size_t)r;
	}
	buf[got] = 0;
	stamp_of(&sb, st);
	close(fd);
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* certs_in parses every certificate of pem; returns how many, and the
 * first (caller frees with X509_free) in *first when first != NULL. */
static int certs_in(const char *pem, X509 **first)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	int n = 0;
	X509 *x;
	while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if (n == 0 && first)
			*first = x;
		else
			X509_free(x);
		n++;
	}
	BIO_free(b);
	ERR_clear_error(); /* the end of the file reads as an error */
	return n;
}

/* check_set checks the three files' contents together (invariant 1).
 * GW_OK, or GW_ECONFIG with why; leaves a one-line summary of the leaf
 * (serial and expiry) in info. Never puts key material in why. */
static gw_err check_set(char *const pem[F_COUNT], char *const path[F_COUNT], char *why,
                        size_t whylen, char *info, size_t infolen)
{
	X509 *leaf = NULL;
	EVP_PKEY *key = NULL;
	gw_err err = GW_ECONFIG;
	if (certs_in(pem[F_CERT], &leaf) == 0) {
		snprintf(why, whylen, "--tls-cert %s: no PEM certificate in the file",
		         path[F_CERT]);
		goto out;
	}
	BIO *b = BIO_new_mem_buf(pem[F_KEY], -1);
	key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	ERR_clear_error();
	if (!key) {
		snprintf(why, whylen,
		         "--tls-key %s: no PEM private key in the file (an encrypted key is not "
		         "supported)",
		         path[F_KEY]);
		goto out;
	}
	if (X509_check_private_key(leaf, key) != 1) {
		ERR_clear_error();
		snprintf(why, whylen,
		         "--tls-key %s does not match the certificate of --tls-cert %s (the first "
		         "certificate of the file must be the server's own)",
		         path[F_KEY], path[F_CERT]);
		goto out;
	}
	if (path[F_CA] && certs_in(pem[F_CA], NULL) == 0) {
		snprintf(why, whylen, "--tls-client-ca %s: no PEM certificate in the file",
		         path[F_CA]);
		goto out;
	}
	char serial[80] = "?";
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	if (hex)
		snprintf(serial, sizeof serial, "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
	bool expired = X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0;
	snprintf(info, infolen, "serial %s%s", serial, expired ? ", EXPIRED" : "");
	err = GW_OK;
out:
	X509_free(leaf);
	EVP_PKEY_free(key);
	return err;
}

/* load_set reads and checks the three files; on success replaces what t
 * holds (caller holds t->mu or owns t alone). */
static gw_err load_set(gw_tls *t, char *why, size_t whylen, char *info, size_t infolen)
{
	char *pem[F_COUNT] = {NULL, NULL, NULL};
	tls_stamp st[F_COUNT];
	memset(st, 0, sizeof st);
	gw_err err = GW_ECONFIG;
	for (int i = 0; i < F_COUNT; i++)
		if (t->path[i] &&
		    !(pem[i] = read_file(flag_of[i], t->path[i], &st[i], why, whylen)))
			goto out;
	if ((err = check_set(pem, t->path, why, whylen, info, infolen)))
		goto out;
	for (int i = 0; i < F_COUNT; i++) {
		if (t->pem[i]) {
			OPENSSL_cleanse(t->pem[i], strlen(t->pem[i]));
			free(t->pem[i]);
		}
		t->pem[i] = pem[i];
		pem[i] = NULL;
		t->st[i] = st[i];
	}
	t->gen++;
out:
	for (int i = 0; i < F_COUNT; i++)
		if (pem[i]) {
			OPENSSL_cleanse(pem[i], strlen(pem[i]));
			free(pem[i]);
		}
	return err;
}

/* refresh_locked: a cheap stat of each file; when one changed since the
 * set in use (and since the set last refused, unless that was over a
 * second ago), load the set. Caller holds t->mu. */
static void refresh_locked(gw_tls *t)
{
	tls_stamp now[F_COUNT];
	memset(now, 0, sizeof now);
	bool changed = false, same_bad = t->have_bad;
	for (int i = 0; i < F_COUNT; i++) {
		if (!t->path[i])
			continue;
		struct stat sb;
		if (stat(t->path[i], &sb) == 0)
			stamp_of(&sb, &now[i]);
		changed |= !stamp_eq(&now[i], &t->st[i]);
		same_bad &= stamp_eq(&now[i], &t->bad[i]);
	}
	if (!changed)
		return;
	if (same_bad && mono_ns() - t->bad_ns < TLS_RETRY_NS)
		return; /* refused already; retried once the files change or a second passed */
	char why[600], info[120];
	if (load_set(t, why, sizeof why, info, sizeof info) == GW_OK) {
		t->have_bad = false;
		GW_INFO("TLS: certificate files changed: new connections get %s %s (%s)",
		        flag_of[F_CERT], t->path[F_CERT], info);
		return;
	}
	if (!same_bad)
		GW_WARN("TLS: the changed certificate files are not used (%s); new connections "
		        "still get the certificate loaded before",
		        why);
	memcpy(t->bad, now, sizeof now);
	t->have_bad = true;
	t->bad_ns = mono_ns();
}

/* fetch is gRPC core's certificate-config callback, at every handshake of
 * the listener l (on a gRPC thread; it blocks only to read changed files). */
static grpc_ssl_certificate_config_reload_status fetch(void *user,
                                                       grpc_ssl_server_certificate_config **cfg)
{
	tls_lst *l = user;
	gw_tls *t = l->t;
	atomic_fetch_add_explicit(&t->handshakes, 1, memory_order_relaxed);
	grpc_ssl_certificate_config_reload_status r = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
	pthread_mutex_lock(&t->mu);
	refresh_locked(t);
	if (l->gen != t->gen) {
		grpc_ssl_pem_key_cert_pair pair = {.private_key = t->pem[F_KEY],
		                                   .cert_chain = t->pem[F_CERT]};
		/* gRPC copies the strings. Its fetcher path requires roots even
		 * when no client certificate is requested (gRPC 1.51 asserts
		 * pem_root_certs != NULL): without mTLS the server's own chain
		 * stands in, unused since clients are never asked for one. */
		const char *roots = t->pem[F_CA] ? t->pem[F_CA] : t->pem[F_CERT];
		*cfg = grpc_ssl_server_certificate_config_create(roots, &pair, 1);
		if (*cfg) {
			l->gen = t->gen;
			r = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
		} else {
			r = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return r;
}

static void pem_free(char *pem)
{
	if (pem) {
		OPENSSL_cleanse(pem, strlen(pem));
		free(pem);
	}
}

void gw_tls_pems_free(char *ca, char *cert, char *key)
{
	pem_free(ca);
	pem_free(cert);
	pem_free(key);
}

bool gw_tls_pems_since(gw_tls *t, uint64_t *gen, char **ca, char **cert, char **key)
{
	bool newer = false;
	pthread_mutex_lock(&t->mu);
	refresh_locked(t);
	if (t->gen != *gen) {
		char *c = t->pem[F_CA] ? strdup(t->pem[F_CA]) : NULL;
		char *ce = strdup(t->pem[F_CERT]);
		char *k = strdup(t->pem[F_KEY]);
		if ((c || !t->pem[F_CA]) && ce && k) {
			*ca = c;
			*cert = ce;
			*key = k;
			*gen = t->gen;
			newer = true;
		} else {
			gw_tls_pems_free(c, ce, k);
		}
	}
	pthread_mutex_unlock(&t->mu);
	return newer;
}

gw_err gw_tls_create(gw_tls **out, const gw_tls_opts *o, char *why, size_t whylen)
{
	if (!o->cert || !o->key) {
		snprintf(why, whylen, "%s",
		         o->cert ? "--tls-cert needs --tls-key"
		                 : "--tls-key and --tls-client-ca need --tls-cert");
		return GW_ECONFIG;
	}
	gw_tls *t = calloc(1, sizeof *t);
	if (!t)
		return GW_ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	const char *p[F_COUNT] = {o->cert, o->key, o->client_ca};
	for (int i = 0; i < F_COUNT; i++)
		if (p[i] && !(t->path[i] = strdup(p[i]))) {
			gw_tls_destroy(t);
			return GW_ENOMEM;
		}
	char info[120];
	gw_err err = load_set(t, why, whylen, info, sizeof info);
	if (err) {
		gw_tls_destroy(t);
		return err;
	}
	GW_INFO("TLS: %s %s (%s)%s", flag_of[F_CERT], t->path[F_CERT], info,
	        t->path[F_CA] ? ", client certificates required (mTLS)" : "");
	*out = t;
	return GW_OK;
}

grpc_server_credentials *gw_tls_server_credentials(gw_tls *t)
{
	tls_lst *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->t = t;
	pthread_mutex_lock(&t->mu);
	l->next = t->lst;
	t->lst = l;
	pthread_mutex_unlock(&t->mu);
	grpc_ssl_server_credentials_options *so =
	    grpc_ssl_server_credentials_create_options_using_config_fetcher(
	        t->path[F_CA] ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
	                      : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
	        fetch, l);
	return so ? grpc_ssl_server_credentials_create_with_options(so) : NULL;
}

void gw_tls_destroy(gw_tls *t)
{
	if (!t)
		return;
	for (int i = 0; i < F_COUNT; i++) {
		if (t->pem[i]) {
			OPENSSL_cleanse(t->pem[i], strlen(t->pem[i]));
			free(t->pem[i]);
		}
		free(t->path[i]);
	}
	while (t->lst) {
		tls_lst *n = t->lst->next;
		free(t->lst);
		t->lst = n;
	}
	pthread_mutex_destroy(&t->mu);
	free(t);
}

uint64_t gw_tls_handshakes(gw_tls *t)
{
	return t ? atomic_load_explicit(&t->handshakes, memory_order_relaxed) : 0;
}
