/* redact.c - see redact.h.
 *
 * Redaction errs on the side of hiding too much: a malformed URL whose
 * userinfo cannot be told from its path loses more than its password,
 * never less.
 */
#include "redact.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A bounded writer: what does not fit is dropped, the NUL always fits. */
typedef struct wr {
	char *p;
	size_t cap, n;
} wr;

static void put(wr *w, const char *s, size_t len)
{
	if (w->cap == 0)
		return;
	size_t room = w->cap - 1 - w->n;
	if (len > room)
		len = room;
	memcpy(w->p + w->n, s, len);
	w->n += len;
	w->p[w->n] = '\0';
}

static const char *const secret_keys[] = {"password",    "passwd", "pass", "pwd",
                                          "sslpassword", "secret", NULL};

/* secret_value: at s (a key boundary) starts `key =` with a secret key;
 * returns the start of the value (spaces skipped), else NULL. */
static const char *secret_value(const char *s)
{
	for (size_t k = 0; secret_keys[k]; k++) {
		size_t n = strlen(secret_keys[k]);
		if (strncasecmp(s, secret_keys[k], n) != 0)
			continue;
		const char *p = s + n;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		return p;
	}
	return NULL;
}

/* value_end: the end of the value starting at v: a quoted conninfo value
 * ('...' with backslash escapes) through its closing quote, else up to the
 * next separator of a URL query or a conninfo string. */
static const char *value_end(const char *v)
{
	if (*v == '\'') {
		const char *p = v + 1;
		while (*p && *p != '\'') {
			if (*p == '\\' && p[1])
				p++;
			p++;
		}
		return *p ? p + 1 : p;
	}
	return v + strcspn(v, "& \t\r\n;#");
}

static bool boundary(const char *start, const char *s)
{
	return s == start || strchr("?&; \t\r\n,", s[-1]) != NULL;
}

char *gw_redact_url(const char *in, char *out, size_t outlen)
{
	wr w = {.p = out, .cap = outlen, .n = 0};
	if (outlen)
		out[0] = '\0';
	if (!in)
		return out;
	/* The userinfo's password: from the first ':' after "://" to the last
	 * '@' before the query (a password may hold an unencoded '/' or '@'). */
	const char *pw = NULL, *at = NULL;
	const char *auth = strstr(in, "://");
	if (auth) {
		auth += 3;
		const char *end = auth + strcspn(auth, "?# \t\r\n");
		for (const char *q = auth; q < end; q++)
			if (*q == '@')
				at = q;
		if (at) {
			const char *colon = memchr(auth, ':', (size_t)(at - auth));
			if (colon)
				pw = colon + 1;
		}
	}
	const char *s = in;
	while (*s) {
		if (s == pw) {
			put(&w, GW_REDACTED, strlen(GW_REDACTED));
			s = at;
			pw = NULL; /* an empty password starts at the '@' itself */
			continue;
		}
		const char *v = boundary(in, s) ? secret_value(s) : NULL;
		if (v) {
			put(&w, s, (size_t)(v - s));
			put(&w, GW_REDACTED, strlen(GW_REDACTED));
			s = value_end(v);
			continue;
		}
		put(&w, s, 1);
		s++;
	}
	return out;
}

void gw_redact_secret(char *msg, size_t cap, const char *secret)
{
	if (!msg || !cap || !secret || !*secret || !strstr(msg, secret))
		return;
	size_t sl = strlen(secret);
	char *copy = strdup(msg);
	if (!copy) {
		/* No memory for the copy: blank it in place, same length. */
		for (char *hit = strstr(msg, secret); hit; hit = strstr(hit + sl, secret))
			memset(hit, '*', sl);
		return;
	}
	wr w = {.p = msg, .cap = cap, .n = 0};
	msg[0] = '\0';
	const char *s = copy;
	for (const char *hit = strstr(s, secret); hit; hit = strstr(s, secret)) {
		put(&w, s, (size_t)(hit - s));
		put(&w, GW_REDACTED, strlen(GW_REDACTED));
		s = hit + sl;
	}
	put(&w, s, strlen(s));
	free(copy);
}
