/* access.c - the current policy (swapped on reload) and the principal of
 * a call. The design note with the states is in auth.h.
 *
 * Why a read-write lock and not a reference-counted snapshot: a check is a
 * handful of comparisons under the read lock (one atomic on the lock, no
 * allocation), and a reload is rare; a refcount would cost the same atomic
 * plus a release, and the principal pointers would still need the policy
 * alive. */
#include "auth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

struct gw_access {
	pthread_rwlock_t lock;
	gw_policy *cur; /* owned; replaced under the write lock */
	char *path;     /* owned */
};

gw_err gw_access_open(gw_access **out, const char *path, char *why, size_t whylen)
{
	gw_policy *p = NULL;
	gw_err err = gw_policy_parse(&p, path, why, whylen);
	if (err)
		return err;
	gw_access *a = calloc(1, sizeof *a);
	if (!a || !(a->path = strdup(path))) {
		free(a);
		gw_policy_free(p);
		return GW_ENOMEM;
	}
	/* Writers first: a reload is not starved by a steady stream of calls. */
	pthread_rwlockattr_t at;
	pthread_rwlockattr_init(&at);
	pthread_rwlockattr_setkind_np(&at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&a->lock, &at);
	pthread_rwlockattr_destroy(&at);
	a->cur = p;
	*out = a;
	return GW_OK;
}

gw_err gw_access_reload(gw_access *a, size_t *count, char *why, size_t whylen)
{
	gw_policy *p = NULL;
	gw_err err = gw_policy_parse(&p, a->path, why, whylen);
	if (err)
		return err;
	pthread_rwlock_wrlock(&a->lock);
	gw_policy *old = a->cur;
	a->cur = p;
	pthread_rwlock_unlock(&a->lock);
	gw_policy_free(old); /* no reader can hold it: they hold the read lock */
	if (count)
		*count = gw_policy_count(p);
	return GW_OK;
}

const gw_policy *gw_access_read(gw_access *a)
{
	pthread_rwlock_rdlock(&a->lock);
	return a->cur;
}

void gw_access_done(gw_access *a)
{
	pthread_rwlock_unlock(&a->lock);
}

const char *gw_access_path(const gw_access *a)
{
	return a->path;
}

void gw_access_close(gw_access *a)
{
	if (!a)
		return;
	gw_policy_free(a->cur);
	pthread_rwlock_destroy(&a->lock);
	free(a->path);
	free(a);
}

/* ---- the principal of a call ------------------------------------------------------ */

bool gw_authn_is_authorization(const char *key, size_t len)
{
	return len == 13 && !strncasecmp(key, "authorization", 13);
}

/* peer_identity matches the certificate's SAN URIs, then its DNS names. */
static const gw_principal *peer_identity(const gw_policy *p, grpc_call *call, bool *cert)
{
	grpc_auth_context *ctx = grpc_call_auth_context(call);
	if (!ctx)
		return NULL;
	const gw_principal *found = NULL;
	if (grpc_auth_context_peer_is_authenticated(ctx)) {
		*cert = true;
		static const struct {
			const char *prop, *kind;
		} kinds[] = {{GRPC_PEER_URI_PROPERTY_NAME, "uri"},
		             {GRPC_PEER_DNS_PROPERTY_NAME, "dns"}};
		for (size_t k = 0; k < 2 && !found; k++) {
			grpc_auth_property_iterator it =
			    grpc_auth_context_find_properties_by_name(ctx, kinds[k].prop);
			const grpc_auth_property *pr;
			while (!found && (pr = grpc_auth_property_iterator_next(&it)))
				found = gw_policy_by_identity(p, kinds[k].kind, pr->value,
				                              pr->value_length);
		}
	}
	grpc_auth_context_release(ctx);
	return found;
}

gw_err gw_authn_call(const gw_policy *p, grpc_call *call, const grpc_metadata_array *md,
                     const gw_principal **out, char *why, size_t whylen)
{
	for (size_t i = 0; md && i < md->count; i++) {
		const grpc_slice *k = &md->metadata[i].key;
		if (!gw_authn_is_authorization((const char *)GRPC_SLICE_START_PTR(*k),
		                               GRPC_SLICE_LENGTH(*k)))
			continue;
		const char *v = (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
		size_t n = GRPC_SLICE_LENGTH(md->metadata[i].value);
		if (n < 7 || strncasecmp(v, "Bearer ", 7)) {
			snprintf(why, whylen,
			         "the authorization metadata is not \"Bearer <token>\"");
			return GW_EUNAUTH;
		}
		v += 7;
		n -= 7;
		while (n && *v == ' ') {
			v++;
			n--;
		}
		const gw_principal *pr = n ? gw_policy_by_token(p, v, n) : NULL;
		if (!pr) {
			snprintf(why, whylen, "unknown bearer token");
			return GW_EUNAUTH;
		}
		*out = pr;
		return GW_OK;
	}
	bool cert = false;
	const gw_principal *pr = call ? peer_identity(p, call, &cert) : NULL;
	if (!pr && cert) {
		snprintf(why, whylen,
		         "the client certificate's identity is not in the access policy");
		return GW_EUNAUTH;
	}
	if (!pr) {
		snprintf(why, whylen,
		         "no credential: send \"authorization: Bearer <token>\" or a "
		         "client certificate whose identity the access policy lists");
		return GW_EUNAUTH;
	}
	*out = pr;
	return GW_OK;
}

gw_err gw_policy_by_cert_pem(const gw_policy *p, const char *pem, const gw_principal **out)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!x)
		return GW_EINVAL;
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	const gw_principal *found = NULL;
	/* URIs first, then DNS names: the order of peer_identity. */
	static const struct {
		int type;
		const char *kind;
	} kinds[] = {{GEN_URI, "uri"}, {GEN_DNS, "dns"}};
	for (size_t k = 0; k < 2 && !found; k++)
		for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !found; i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
			if (g->type != kinds[k].type)
				continue;
			const ASN1_IA5STRING *v = g->d.ia5; /* uniformResourceIdentifier, dNSName */
			found = gw_policy_by_identity(p, kinds[k].kind, (const char *)v->data,
			                              (size_t)v->length);
		}
	GENERAL_NAMES_free(names);
	X509_free(x);
	if (!found)
		return GW_ENOTFOUND;
	*out = found;
	return GW_OK;
}
