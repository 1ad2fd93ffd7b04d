/* uricheck.h - the request target of every HTTP request, checked at the
 * edge of gateway/http/ before any route sees it (STYLE 12).
 *
 * libmicrohttpd hands routes the percent-decoded path as a C string, so an
 * encoded NUL ("/metrics%00x") used to cut the path and reach the route
 * "/metrics"; an encoded invalid UTF-8 sequence or control byte reached the
 * routes' own checks, or not. gw_http_check_uri reads the raw target, as
 * the client sent it (the listener's URI log callback, before decoding),
 * and refuses:
 *   - a target over GW_HTTP_MAX_URI bytes (414);
 *   - a path that does not start with '/' (400);
 *   - a malformed escape ('%' not followed by two hex digits) (400);
 *   - a NUL, a control byte (C0 or DEL) or invalid UTF-8 (overlong forms,
 *     surrogates, past U+10FFFF), raw or percent-encoded, in the path or
 *     in the query string (400);
 *   - a "." or ".." path segment, or an empty one ("//"), once decoded so
 *     that "%2e%2e" and "%2f" count too; a trailing '/' is left to the
 *     routes (400).
 * Thread: any; no allocation; reads at most GW_HTTP_MAX_URI + 1 bytes. */
#ifndef GW_URICHECK_H
#define GW_URICHECK_H

#include <stdbool.h>

#define GW_HTTP_MAX_URI 4096

/* A refusal: the HTTP status to answer (400 or 414) and a static reason. */
typedef struct gw_uri_refusal {
	int status;
	const char *why; /* static */
} gw_uri_refusal;

/* gw_http_check_uri returns NULL when raw (NUL-terminated, as received)
 * is acceptable, else its refusal (static storage). */
const gw_uri_refusal *gw_http_check_uri(const char *raw);

/* gw_http_is_uri_refusal: whether p is one of the refusals
 * gw_http_check_uri returns (the listener passes them as the request's
 * first context, where a request object would be). */
bool gw_http_is_uri_refusal(const void *p);

#endif
