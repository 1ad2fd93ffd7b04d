/* security.c - the TLS credentials and the bearer token of a host or a
 * client (spawn_security_opts): options or environment, files read once at
 * create, so a bad path is an error there rather than a handshake that
 * fails on every reconnect. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

/* A PEM file is small; anything larger is not one. */
#define MAX_PEM_BYTES (1 << 20)

/* pick returns the option, else the environment variable; NULL or "" =
 * none. */
static const char *pick(const char *opt, const char *env)
{
	const char *v = opt ? opt : getenv(env);
	return v && *v ? v : NULL;
}

/* read_pem reads path (what names it in the error) into a NUL-terminated
 * heap string (caller frees). Returns SPAWN_OK, SPAWN_ETLS (logged) or
 * SPAWN_ENOMEM. */
static int read_pem(const char *what, const char *path, char **out)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "libspawn: cannot read the TLS %s file %s: %s\n", what, path,
		        strerror(errno));
		return SPAWN_ETLS;
	}
	char *buf = malloc(MAX_PEM_BYTES + 1);
	if (!buf) {
		fclose(f);
		return SPAWN_ENOMEM;
	}
	size_t n = fread(buf, 1, MAX_PEM_BYTES + 1, f);
	int err = ferror(f) ? errno : 0;
	fclose(f);
	const char *why = err ? strerror(err) : n > MAX_PEM_BYTES ? "larger than 1 MiB" : NULL;
	if (!why) {
		buf[n] = '\0';
		if (!strstr(buf, "-----BEGIN "))
			why = "no PEM block in it";
	}
	if (why) {
		fprintf(stderr, "libspawn: cannot read the TLS %s file %s: %s\n", what, path, why);
		free(buf);
		return SPAWN_ETLS;
	}
	*out = buf;
	return SPAWN_OK;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

int spawni_security_init(spawni_security *s, const spawn_security_opts *o)
{
	static const spawn_security_opts none;
	if (!o)
		o = &none;
	memset(s, 0, sizeof *s);
	const char *ca = pick(o->tls_ca, "SPAWN_TLS_CA");
	const char *cert = pick(o->tls_cert, "SPAWN_TLS_CERT");
	const char *key = pick(o->tls_key, "SPAWN_TLS_KEY");
	const char *name = pick(o->tls_server_name, "SPAWN_TLS_SERVER_NAME");
	const char *token = pick(o->token, "SPAWN_TOKEN");
	if (token && !printable(token)) {
		/* Never echo the token itself. */
		fprintf(stderr, "libspawn: the bearer token holds characters outside printable "
		                "ASCII\n");
		return SPAWN_EINVAL;
	}
	if (!cert != !key) {
		fprintf(stderr, "libspawn: a TLS client certificate needs its key and a key its "
		                "certificate (tls_cert/SPAWN_TLS_CERT, tls_key/SPAWN_TLS_KEY)\n");
		return SPAWN_ETLS;
	}
	if (cert && !ca) {
		fprintf(stderr, "libspawn: a TLS client certificate needs the gateway's CA "
		                "(tls_ca/SPAWN_TLS_CA)\n");
		return SPAWN_ETLS;
	}
	if (name && !ca) {
		fprintf(stderr, "libspawn: a TLS server name needs the gateway's CA "
		                "(tls_ca/SPAWN_TLS_CA)\n");
		return SPAWN_ETLS;
	}
	char *ca_pem = NULL, *cert_pem = NULL, *key_pem = NULL;
	int rc = SPAWN_OK;
	if (ca && (rc = read_pem("CA", ca, &ca_pem)) != SPAWN_OK)
		goto fail;
	if (cert && (rc = read_pem("certificate", cert, &cert_pem)) != SPAWN_OK)
		goto fail;
	if (key && (rc = read_pem("key", key, &key_pem)) != SPAWN_OK)
		goto fail;
	if ((name && !(s->server_name = strdup(name)))) {
		rc = SPAWN_ENOMEM;
		goto fail;
	}
	if (token) {
		size_t len = strlen("Bearer ") + strlen(token) + 1;
		if (!(s->authorization = malloc(len))) {
			rc = SPAWN_ENOMEM;
			goto fail;
		}
		snprintf(s->authorization, len, "Bearer %s", token);
		/* Static slices: they point into s, which outlives every call. */
		s->auth_md.key = grpc_slice_from_static_string("authorization");
		s->auth_md.value = grpc_slice_from_static_string(s->authorization);
	}
	if (ca_pem) {
		grpc_ssl_pem_key_cert_pair pair = {.private_key = key_pem, .cert_chain = cert_pem};
		/* The PEM strings are copied by gRPC. */
		s->creds =
		    grpc_ssl_credentials_create_ex(ca_pem, cert_pem ? &pair : NULL, NULL, NULL);
		if (!s->creds) {
			fprintf(stderr, "libspawn: gRPC refused the TLS settings (CA %s)\n", ca);
			rc = SPAWN_ETLS;
			goto fail;
		}
		s->tls = true;
	} else {
		s->creds = grpc_insecure_credentials_create();
	}
	free(ca_pem);
	free(cert_pem);
	free(key_pem);
	return SPAWN_OK;
fail:
	free(ca_pem);
	free(cert_pem);
	free(key_pem);
	spawni_security_fini(s);
	return rc;
}

void spawni_security_fini(spawni_security *s)
{
	if (!s)
		return;
	if (s->creds)
		grpc_channel_credentials_release(s->creds);
	free(s->server_name);
	if (s->authorization) {
		/* Wipe it: freed memory should not keep a credential around. */
		volatile char *p = s->authorization;
		while (*p)
			*p++ = 0;
		free(s->authorization);
	}
	memset(s, 0, sizeof *s);
}

size_t spawni_security_args(const spawni_security *s, grpc_arg *args)
{
	if (!s->server_name)
		return 0;
	args[0].type = GRPC_ARG_STRING;
	args[0].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
	args[0].value.string = s->server_name;
	return 1;
}

void spawni_security_md(const spawni_security *s, grpc_op *op)
{
	if (!s->authorization)
		return;
	op->data.send_initial_metadata.count = 1;
	op->data.send_initial_metadata.metadata = (grpc_metadata *)&s->auth_md;
}
