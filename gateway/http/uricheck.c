/* uricheck.c - see uricheck.h. */
#include "uricheck.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wirecheck.h"

enum { R_LONG, R_NOSLASH, R_ESCAPE, R_NUL, R_CONTROL, R_UTF8, R_EMPTY, R_DOT, R_COUNT };

static const gw_uri_refusal refusals[R_COUNT] = {
    [R_LONG] = {414, "the request target is over 4096 bytes"},
    [R_NOSLASH] = {400, "the request target is not a path starting with '/'"},
    [R_ESCAPE] = {400, "the request target holds a malformed percent escape"},
    [R_NUL] = {400, "the request target holds an encoded NUL byte"},
    [R_CONTROL] = {400, "the request target holds a control byte"},
    [R_UTF8] = {400, "the request target is not valid UTF-8 once decoded"},
    [R_EMPTY] = {400, "the request path has an empty segment (//)"},
    [R_DOT] = {400, "the request path has a '.' or '..' segment"},
};

bool gw_http_is_uri_refusal(const void *p)
{
	uintptr_t a = (uintptr_t)p, lo = (uintptr_t)&refusals[0];
	return a >= lo && a < (uintptr_t)&refusals[R_COUNT];
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* decode percent-decodes s[0..n) into out (room for n bytes); '+' is a
 * space in a query. Returns the decoded length, or -1 on a bad escape. */
static long decode(const char *s, size_t n, bool query, uint8_t *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = hi < 0 ? -1 : hexval(s[i + 2]);
			if (lo < 0)
				return -1;
			out[o++] = (uint8_t)(hi << 4 | lo);
			i += 2;
			continue;
		}
		out[o++] = query && s[i] == '+' ? ' ' : (uint8_t)s[i];
	}
	return (long)o;
}

/* text: the decoded bytes must be UTF-8 without NUL or control bytes. */
static const gw_uri_refusal *text_check(const uint8_t *b, size_t n)
{
	size_t off = 0;
	if (!gw_wc_utf8(b, n, false, &off))
		return NULL;
	if (b[off] == 0)
		return &refusals[R_NUL];
	if (b[off] < 0x20 || b[off] == 0x7f)
		return &refusals[R_CONTROL];
	return &refusals[R_UTF8];
}

const gw_uri_refusal *gw_http_check_uri(const char *raw)
{
	size_t n = raw ? strnlen(raw, GW_HTTP_MAX_URI + 1) : 0;
	if (n > GW_HTTP_MAX_URI)
		return &refusals[R_LONG];
	if (n == 0 || raw[0] != '/')
		return &refusals[R_NOSLASH];
	const char *q = memchr(raw, '?', n);
	size_t plen = q ? (size_t)(q - raw) : n;
	uint8_t buf[GW_HTTP_MAX_URI];
	long d = decode(raw, plen, false, buf);
	if (d < 0)
		return &refusals[R_ESCAPE];
	const gw_uri_refusal *bad = text_check(buf, (size_t)d);
	if (bad)
		return bad;
	/* Segments of the decoded path: none empty, none "." or "..". */
	for (size_t i = 1, start = 1; i <= (size_t)d; i++) {
		if (i < (size_t)d && buf[i] != '/')
			continue;
		size_t len = i - start;
		if (len == 0 && i < (size_t)d)
			return &refusals[R_EMPTY];
		if ((len == 1 && buf[start] == '.') ||
		    (len == 2 && buf[start] == '.' && buf[start + 1] == '.'))
			return &refusals[R_DOT];
		start = i + 1;
	}
	if (q) {
		d = decode(q + 1, n - plen - 1, true, buf);
		if (d < 0)
			return &refusals[R_ESCAPE];
		return text_check(buf, (size_t)d);
	}
	return NULL;
}
