/* http.h - the gateway's one HTTP/1.1 listener (libmicrohttpd) and its route
 * table.
 *
 * Subsystems register routes (method + path prefix -> handler) before
 * gw_http_start; the listener serves them on one internal polling thread
 * with keep-alive connections. A handler runs on that thread, must not
 * block, and answers its request exactly once with gw_http_reply, from any
 * thread, now or later (the connection is suspended meanwhile).
 *
 * A request's life:
 *
 *   RECEIVING --- headers: no route ------------> answered 404 / 405
 *   RECEIVING --- body over max_body -----------> HANDLING, refusal 413
 *   RECEIVING --- body complete ----------------> HANDLING (the handler runs)
 *   HANDLING ---- over max_pending / draining --> (refusal 503 given to the handler)
 *   HANDLING ---- handler returned, no reply ---> SUSPENDED (connection parked)
 *   HANDLING/SUSPENDED -- gw_http_reply --------> REPLIED (resumed; response queued)
 *   REPLIED ----- response sent or conn gone ---> (freed, once the handler's
 *                                                  reference is gone too)
 *
 * Invariants:
 *   1. every request that reaches a handler is answered exactly once
 *      (gw_http_reply); a second reply is ignored;
 *   2. at most max_pending requests are HANDLING or SUSPENDED at once; the
 *      handler of one over it gets a 503 refusal (gw_http_req_refusal);
 *   3. at most max_conns connections are open; more are refused by the
 *      listener;
 *   4. a body is at most max_body bytes; a longer one is not kept (413
 *      refusal) and the connection closes after the answer.
 *
 * Bodies and headers are borrowed by the handler until it replies. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"

typedef struct gw_http gw_http;
typedef struct gw_http_req gw_http_req;

typedef struct gw_http_opts {
	const char *addr;          /* borrowed: "HOST:PORT" (port 0 = pick one) */
	size_t max_body;           /* bytes of one request body; 0 = 4 MiB */
	unsigned max_conns;        /* open connections; 0 = 1024 */
	unsigned max_pending;      /* requests handled and not answered yet; 0 = 4096 */
	unsigned idle_timeout_s;   /* an idle keep-alive connection closes; 0 = 60 */
	const char *tls_cert_file; /* borrowed (copied): PEM chain; non-NULL = HTTPS, reloaded
	                              as the file changes (http_tls.h) */
	const char *tls_key_file;  /* borrowed (copied): its PEM private key */
} gw_http_opts;

/* A route's handler: runs on the listener's thread with req (borrowed until
 * gw_http_reply). user is the pointer given to gw_http_route. */
typedef void (*gw_http_handler)(void *user, gw_http_req *req);

/* gw_http_create binds opts->addr (copied). Returns GW_OK and *out (caller
 * frees with gw_http_destroy); GW_ECONFIG (bad address, or it cannot be
 * bound: why says which); GW_ENOMEM. Blocks: no. Thread: main. */
gw_err gw_http_create(gw_http **out, const gw_http_opts *o, char *why, size_t n);

/* gw_http_route adds a route: requests whose method equals method and whose
 * path is path_prefix or starts with path_prefix + "/" go to fn (the longest
 * matching prefix wins). Strings copied. Only before gw_http_start.
 * Returns GW_OK, GW_EINVAL (bad arguments, or started), GW_ENOMEM. */
gw_err gw_http_route(gw_http *h, const char *method, const char *path_prefix, gw_http_handler fn,
                     void *user);

/* gw_http_start starts serving. Returns GW_OK or GW_EIO (why). */
gw_err gw_http_start(gw_http *h, char *why, size_t n);

/* gw_http_port is the TCP port bound (useful with port 0). */
int gw_http_port(const gw_http *h);

/* gw_http_addr is the address as given (borrowed from h). */
const char *gw_http_addr(const gw_http *h);

/* gw_http_drain: requests arriving from now on get a 503 refusal (handlers
 * see it and answer without work); the listener stays open, as the gRPC
 * listeners do while they drain, until gw_http_destroy. Then it waits
 * up to wait_ms for the requests in progress to be answered. Returns how
 * many are still unanswered. Blocks: yes. Thread: any but the listener's. */
size_t gw_http_drain(gw_http *h, int64_t wait_ms);

/* gw_http_destroy stops the listener and frees h: requests still unanswered
 * are answered 503 here (a later gw_http_reply for them is ignored and their
 * memory stays with the handler's reference). Accepts NULL. Blocks: until
 * the listener's thread ends. */
void gw_http_destroy(gw_http *h);

/* ---- the request (borrowed by the handler until it replies) ---------------- */

const char *gw_http_req_method(const gw_http_req *r);
/* The path without the query string. */
const char *gw_http_req_path(const gw_http_req *r);
/* A query argument (NULL when absent); as MHD decoded it. */
const char *gw_http_req_query(gw_http_req *r, const char *key);
/* gw_http_req_queries calls fn for each query argument in order (value ""
 * when it has none; both borrowed for the call) until fn returns false.
 * Returns how many it visited. */
typedef bool (*gw_http_query_fn)(void *user, const char *key, const char *value);
size_t gw_http_req_queries(gw_http_req *r, gw_http_query_fn fn, void *user);
/* A header (case-insensitive name; NULL when absent). */
const char *gw_http_req_header(gw_http_req *r, const char *name);
/* The body (NULL with *len 0 when there is none). */
const uint8_t *gw_http_req_body(const gw_http_req *r, size_t *len);
/* The peer's IP address as text ("127.0.0.1", "::1"; "" when unknown). */
const char *gw_http_req_peer(const gw_http_req *r);

/* gw_http_req_refusal: 0, or the HTTP status the handler must answer
 * without doing the request's work (413: body over max_body; 503: too many
 * requests in progress, or draining), with *why (static text) saying so. */
int gw_http_req_refusal(const gw_http_req *r, const char **why);

/* gw_http_reply answers r with status, a Content-Type (borrowed; NULL = none)
 * and body (copied; len 0 = empty). Exactly once per request (invariant 1);
 * afterwards r must not be touched. Thread: any. Returns GW_OK, or GW_ENOMEM
 * (the request is then answered 500 with an empty body). */
gw_err gw_http_reply(gw_http_req *r, int status, const char *content_type, const void *body,
                     size_t len);

typedef struct gw_http_stats {
	uint64_t requests;  /* handled by a route */
	uint64_t refused;   /* 413 / 503 refusals */
	uint64_t not_found; /* no route, or a target refused (uricheck.h) */
	uint64_t pending;   /* now: handled, not answered */
} gw_http_stats;
void gw_http_get_stats(gw_http *h, gw_http_stats *out);

#endif
