/* target.c - what a host or client dials: one gRPC target, or a list of
 * gateway addresses ("10.0.0.1:8090,10.0.0.2:8090") turned into gRPC's
 * multi-address target ("ipv4:10.0.0.1:8090,10.0.0.2:8090"), always with
 * the round_robin load-balancing policy. Any member of a cluster serves
 * any call (docs/sdk/c.md "Several gateways"), so a client spreads its
 * calls over every member it can reach, and a host's stream goes to one
 * of them - the next one when that member goes away.
 *
 * A list holds numeric addresses only: gRPC resolves one name per target,
 * so several names cannot be one target (one DNS name with several
 * addresses can: "dns:///gateways.example:8090"). Parsing and checking
 * happen once at create, so a bad list is SPAWN_EINVAL there rather than
 * a channel that never connects.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

/* Round robin over every address the target resolves to. gRPC's default
 * (pick_first) would send every call to the first member that answers. */
#define SERVICE_CONFIG "{\"loadBalancingConfig\":[{\"round_robin\":{}}]}"

/* A list longer than this is a mistake, not a cluster. */
#define MAX_ENTRIES 64

enum family { FAM_NONE, FAM_V4, FAM_V6 };

/* entry_parse checks one "HOST:PORT" of a list (s, len bytes; no spaces):
 * HOST a numeric IPv4 address, or an IPv6 one in brackets; PORT 1..65535.
 * Writes the host (without brackets) into host. Returns its family, or
 * FAM_NONE when it is not such an address. */
static enum family entry_parse(const char *s, size_t len, char *host, size_t n)
{
	const char *colon = NULL;
	enum family fam;
	const char *h = s;
	size_t hlen;
	if (len && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close || close + 1 >= s + len || close[1] != ':')
			return FAM_NONE;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
		fam = FAM_V6;
	} else {
		for (size_t i = 0; i < len; i++)
			if (s[i] == ':')
				colon = s + i;
		if (!colon)
			return FAM_NONE;
		hlen = (size_t)(colon - s);
		fam = FAM_V4;
	}
	if (hlen == 0 || hlen >= n)
		return FAM_NONE;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	unsigned char buf[16];
	if (inet_pton(fam == FAM_V4 ? AF_INET : AF_INET6, host, buf) != 1)
		return FAM_NONE;
	const char *p = colon + 1, *end = s + len;
	if (p == end || end - p > 5)
		return FAM_NONE;
	long port = 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return FAM_NONE;
		port = port * 10 + (*p - '0');
	}
	return port >= 1 && port <= 65535 ? fam : FAM_NONE;
}

/* list_parse turns the list given (commas, optional spaces around them)
 * into t->uri and t->authority. Returns SPAWN_OK, SPAWN_EINVAL (logged),
 * SPAWN_ETLS (logged) or SPAWN_ENOMEM. */
static int list_parse(spawni_target *t, const char *given, const spawni_security *sec)
{
	size_t cap = strlen(given) + 8;
	char *uri = malloc(cap), *first = NULL;
	if (!uri)
		return SPAWN_ENOMEM;
	enum family fam = FAM_NONE;
	size_t used = 0, n = 0;
	bool same_host = true;
	char host0[64] = "";
	const char *p = given;
	int rc = SPAWN_EINVAL;
	for (;;) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ',' && *e != ' ')
			e++;
		size_t len = (size_t)(e - p);
		const char *after = e;
		while (*after == ' ')
			after++;
		char host[64];
		enum family f = len ? entry_parse(p, len, host, sizeof host) : FAM_NONE;
		if (f == FAM_NONE || (*after && *after != ',')) {
			fprintf(stderr,
			        "libspawn: gateway list \"%s\": entry %zu is not a numeric "
			        "HOST:PORT (a list takes IPv4 addresses or [IPv6] ones; for "
			        "names use one DNS name with several addresses, "
			        "\"dns:///NAME:PORT\")\n",
			        given, n + 1);
			goto fail;
		}
		if (fam != FAM_NONE && f != fam) {
			fprintf(stderr,
			        "libspawn: gateway list \"%s\" mixes IPv4 and IPv6 addresses "
			        "(gRPC dials one family per list)\n",
			        given);
			goto fail;
		}
		if (++n > MAX_ENTRIES) {
			fprintf(stderr, "libspawn: gateway list \"%s\" has more than %d entries\n",
			        given, MAX_ENTRIES);
			goto fail;
		}
		if (fam == FAM_NONE) {
			fam = f;
			used = (size_t)snprintf(uri, cap, "%s:", f == FAM_V4 ? "ipv4" : "ipv6");
			snprintf(host0, sizeof host0, "%s", host);
			if (!(first = strndup(p, len))) {
				rc = SPAWN_ENOMEM;
				goto fail;
			}
		} else {
			uri[used++] = ',';
			same_host = same_host && !strcmp(host, host0);
		}
		memcpy(uri + used, p, len);
		used += len;
		uri[used] = '\0';
		if (!*after)
			break;
		p = after + 1;
	}
	/* The authority of a call, and the name checked in every member's
	 * certificate unless tls_server_name says otherwise. gRPC's default
	 * for a list is the list itself, which no certificate names. */
	if (sec->tls && !sec->server_name && !same_host) {
		fprintf(stderr,
		        "libspawn: gateway list \"%s\": with TLS, addresses on different "
		        "hosts need tls_server_name (SPAWN_TLS_SERVER_NAME), a name every "
		        "member's certificate carries\n",
		        given);
		rc = SPAWN_ETLS;
		goto fail;
	}
	t->uri = uri;
	t->authority = first;
	return SPAWN_OK;
fail:
	free(uri);
	free(first);
	return rc;
}

int spawni_target_init(spawni_target *t, const char *given, const spawni_security *sec)
{
	memset(t, 0, sizeof *t);
	if (!given || !*given)
		return SPAWN_EINVAL;
	/* gRPC's own multi-address targets get the same checks and the
	 * same authority as a bare list. */
	if (!strncmp(given, "ipv4:", 5) || !strncmp(given, "ipv6:", 5))
		return list_parse(t, given + 5, sec);
	/* Any other scheme is gRPC's business (dns:, unix:, ...); a comma
	 * without one makes a list. */
	bool has_scheme = !strncmp(given, "unix:", 5) || !strncmp(given, "unix-abstract:", 14) ||
	                  !strncmp(given, "dns:", 4) || strstr(given, "://") != NULL;
	if (!has_scheme && strchr(given, ','))
		return list_parse(t, given, sec);
	return (t->uri = strdup(given)) ? SPAWN_OK : SPAWN_ENOMEM;
}

void spawni_target_fini(spawni_target *t)
{
	if (!t)
		return;
	free(t->uri);
	free(t->authority);
	memset(t, 0, sizeof *t);
}

size_t spawni_target_args(const spawni_target *t, grpc_arg *args)
{
	size_t n = 0;
	args[n].type = GRPC_ARG_STRING;
	args[n].key = (char *)GRPC_ARG_SERVICE_CONFIG;
	args[n++].value.string = (char *)SERVICE_CONFIG;
	if (t->authority) {
		args[n].type = GRPC_ARG_STRING;
		args[n].key = (char *)GRPC_ARG_DEFAULT_AUTHORITY;
		args[n++].value.string = t->authority;
	}
	return n;
}
