/* http.c - the HTTP/1.1 listener on libmicrohttpd (see http.h for the
 * request states and invariants).
 *
 * Threads: libmicrohttpd's one internal polling thread runs the access
 * callback (and so every handler) and the completion callback; any thread
 * may call gw_http_reply. A request's mu orders its reply against its
 * suspension: the handler's thread suspends under mu, a replying thread
 * resumes under mu, so a resume never precedes its suspend.
 *
 * Memory: a request has two references, libmicrohttpd's (dropped in the
 * completion callback) and the handler's (taken when the handler is called,
 * dropped by gw_http_reply). The last one frees it. */
#include "http.h"
#include "condwait.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http_tls.h"
#include "log.h"
#include "uricheck.h"

#define MAX_ROUTES 32

typedef struct route {
	char *method;       /* owned */
	char *prefix;       /* owned */
	size_t plen;        /* strlen(prefix) */
	gw_http_handler fn; /* the handler */
	void *user;         /* borrowed: the registrant's */
} route;

enum { R_RECEIVING, R_HANDLING, R_SUSPENDED, R_REPLIED };

struct gw_http_req {
	gw_http *h;                  /* borrowed: the listener (outlives r until replied) */
	struct MHD_Connection *conn; /* borrowed: libmicrohttpd's */
	const route *rt;             /* borrowed from h->routes */
	pthread_mutex_t mu;
	atomic_int refs;
	int st;                    /* R_*, under mu */
	int refusal;               /* 0, 413 or 503 */
	const char *refusal_why;   /* static text */
	bool refusal_json;         /* answer {"code","message"} (a refused target) */
	bool counted;              /* counts in h->pending */
	bool listed;               /* in h->live (h->mu) */
	struct MHD_Response *resp; /* owned until queued */
	int status;                /* with resp */
	uint8_t *body;             /* owned (malloc) */
	size_t blen, bcap;
	char method[16];
	char *path; /* owned */
	char peer[INET6_ADDRSTRLEN];
	struct gw_http_req *next, *prev; /* h->live */
};

struct gw_http {
	gw_http_opts o;
	char *addr;       /* owned copy of o.addr */
	gw_http_tls *tls; /* owned: the certificate; NULL = plain HTTP */
	struct sockaddr_storage sa;
	socklen_t salen;
	int port;
	struct MHD_Daemon *d;
	route routes[MAX_ROUTES];
	size_t nroutes;
	pthread_mutex_t mu; /* live, draining */
	pthread_cond_t cv;  /* pending went down */
	gw_http_req *live;  /* requests that reached a handler and are not freed */
	bool draining;
	atomic_ullong pending, requests, refused, not_found;
};

/* ---- address ------------------------------------------------------------------ */

static gw_err parse_addr(gw_http *h, const char *addr, char *why, size_t n)
{
	const char *colon = strrchr(addr, ':');
	if (!colon || colon == addr || !colon[1]) {
		snprintf(why, n, "--http %s: give HOST:PORT", addr);
		return GW_ECONFIG;
	}
	char host[256];
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof host) {
		snprintf(why, n, "--http %s: host name too long", addr);
		return GW_ECONFIG;
	}
	memcpy(host, addr, hl);
	host[hl] = 0;
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = 0;
	}
	char *end = NULL;
	long port = strtol(colon + 1, &end, 10);
	if (!end || *end || port < 0 || port > 65535) {
		snprintf(why, n, "--http %s: bad port", addr);
		return GW_ECONFIG;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai = NULL;
	int e = getaddrinfo(host, NULL, &hints, &ai);
	if (e || !ai) {
		snprintf(why, n, "--http %s: %s", addr, gai_strerror(e));
		return GW_ECONFIG;
	}
	memcpy(&h->sa, ai->ai_addr, ai->ai_addrlen);
	h->salen = ai->ai_addrlen;
	freeaddrinfo(ai);
	if (h->sa.ss_family == AF_INET)
		((struct sockaddr_in *)&h->sa)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&h->sa)->sin6_port = htons((uint16_t)port);
	return GW_OK;
}

gw_err gw_http_create(gw_http **out, const gw_http_opts *o, char *why, size_t n)
{
	if (!o || !o->addr) {
		snprintf(why, n, "no address");
		return GW_ECONFIG;
	}
	gw_http *h = calloc(1, sizeof *h);
	if (!h)
		return GW_ENOMEM;
	h->o = *o;
	if (!h->o.max_body)
		h->o.max_body = 4u << 20;
	if (!h->o.max_conns)
		h->o.max_conns = 1024;
	if (!h->o.max_pending)
		h->o.max_pending = 4096;
	if (!h->o.idle_timeout_s)
		h->o.idle_timeout_s = 60;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->addr = strdup(o->addr);
	h->o.addr = h->addr;
	gw_err err = h->addr ? parse_addr(h, o->addr, why, n) : GW_ENOMEM;
	if (!err && (!o->tls_cert_file) != (!o->tls_key_file)) {
		snprintf(why, n, "--http %s: HTTPS needs both a certificate and its key", o->addr);
		err = GW_ECONFIG;
	}
	if (!err && o->tls_cert_file)
		err = gw_http_tls_create(&h->tls, o->tls_cert_file, o->tls_key_file, why, n);
	h->o.tls_cert_file = h->o.tls_key_file = NULL; /* borrowed: not kept */
	if (err) {
		gw_http_destroy(h);
		return err;
	}
	*out = h;
	return GW_OK;
}

gw_err gw_http_route(gw_http *h, const char *method, const char *path_prefix, gw_http_handler fn,
                     void *user)
{
	if (!h || h->d || !method || !path_prefix || path_prefix[0] != '/' || !fn ||
	    h->nroutes == MAX_ROUTES)
		return GW_EINVAL;
	route *r = &h->routes[h->nroutes];
	r->method = strdup(method);
	r->prefix = strdup(path_prefix);
	if (!r->method || !r->prefix) {
		free(r->method);
		free(r->prefix);
		return GW_ENOMEM;
	}
	r->plen = strlen(path_prefix);
	while (r->plen > 1 && r->prefix[r->plen - 1] == '/')
		r->prefix[--r->plen] = 0; /* "/x/" matches as "/x" */
	r->fn = fn;
	r->user = user;
	h->nroutes++;
	return GW_OK;
}

/* find_route: the longest prefix of path with method; *path_known tells
 * whether some route matched the path with another method (405). */
static const route *find_route(const gw_http *h, const char *method, const char *path,
                               bool *path_known)
{
	const route *best = NULL;
	*path_known = false;
	for (size_t i = 0; i < h->nroutes; i++) {
		const route *r = &h->routes[i];
		bool match = !strncmp(path, r->prefix, r->plen) &&
		             (path[r->plen] == 0 || path[r->plen] == '/' || r->plen == 1);
		if (!match)
			continue;
		if (strcmp(method, r->method)) {
			*path_known = true;
			continue;
		}
		if (!best || r->plen > best->plen)
			best = r;
	}
	return best;
}

/* ---- requests ----------------------------------------------------------------- */

static void req_rele(gw_http_req *r)
{
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	if (r->resp)
		MHD_destroy_response(r->resp);
	free(r->body);
	free(r->path);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static void unlist(gw_http *h, gw_http_req *r)
{
	pthread_mutex_lock(&h->mu);
	if (r->listed) {
		if (r->prev)
			r->prev->next = r->next;
		else
			h->live = r->next;
		if (r->next)
			r->next->prev = r->prev;
		r->listed = false;
		pthread_cond_broadcast(&h->cv); /* gw_http_destroy may wait for it */
	}
	pthread_mutex_unlock(&h->mu);
}

/* queue_body answers status with body[0..len) of content type type. */
static enum MHD_Result queue_body(struct MHD_Connection *c, unsigned status, const char *type,
                                  const char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, mode);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result queue_plain(struct MHD_Connection *c, unsigned status, const char *text)
{
	return queue_body(c, status, "text/plain", text, strlen(text), MHD_RESPMEM_PERSISTENT);
}

/* queue_json answers a refused request target as the JSON routes answer
 * their errors: {"code": INVALID_ARGUMENT, "message": why} (why: static
 * text without quotes or backslashes). */
static enum MHD_Result queue_json(struct MHD_Connection *c, unsigned status, const char *why)
{
	char body[256];
	int n = snprintf(body, sizeof body, "{\"code\":3,\"message\":\"%s\"}", why);
	if (n < 0 || (size_t)n >= sizeof body)
		return MHD_NO;
	return queue_body(c, status, "application/json", body, (size_t)n, MHD_RESPMEM_MUST_COPY);
}

/* on_uri sees the request target as the client sent it, before
 * libmicrohttpd decodes it (a decoded "%00" would cut the path): a refused
 * target becomes the request's first context (uricheck.h). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)cls, (void)c;
	return (void *)(uintptr_t)gw_http_check_uri(uri);
}

static enum MHD_Result queue_reply(gw_http_req *r)
{
	struct MHD_Response *resp = r->resp;
	r->resp = NULL;
	enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void peer_of(struct MHD_Connection *c, char *out, size_t n)
{
	out[0] = 0;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
		          (socklen_t)n);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		          out, (socklen_t)n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	gw_http *h = cls;
	gw_http_req *r = *con_cls;
	(void)version;
	const gw_uri_refusal *bad = NULL;
	if (gw_http_is_uri_refusal(r)) {
		bad = (const gw_uri_refusal *)(const void *)r;
		r = NULL;
	}
	if (!r) {
		bool known = false;
		const route *rt = bad ? NULL : find_route(h, method, url, &known);
		r = calloc(1, sizeof *r);
		if (!r || !(r->path = strdup(url))) {
			free(r);
			return MHD_NO; /* closes the connection */
		}
		r->h = h;
		r->conn = conn;
		r->rt = rt;
		if (bad) {
			/* Refused before any route: answered once its body is read. */
			atomic_fetch_add(&h->not_found, 1);
			r->refusal = bad->status;
			r->refusal_why = bad->why;
			r->refusal_json = true;
		} else if (!rt) {
			/* Answered once its body is read, so the connection stays
			 * usable (an answer before the body closes it). */
			atomic_fetch_add(&h->not_found, 1);
			r->refusal = known ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND;
			r->refusal_why = known ? "method not allowed\n" : "not found\n";
		}
		pthread_mutex_init(&r->mu, NULL);
		atomic_init(&r->refs, 1);
		snprintf(r->method, sizeof r->method, "%s", method);
		peer_of(conn, r->peer, sizeof r->peer);
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (!r->refusal && cl && strtoull(cl, NULL, 10) > h->o.max_body) {
			r->refusal = MHD_HTTP_CONTENT_TOO_LARGE;
			r->refusal_why = "request body over the size limit (--http-max-body)";
		}
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->refusal)
			return MHD_YES; /* discarded */
		if (r->blen + n > h->o.max_body) {
			free(r->body);
			r->body = NULL;
			r->blen = r->bcap = 0;
			r->refusal = MHD_HTTP_CONTENT_TOO_LARGE;
			r->refusal_why = "request body over the size limit (--http-max-body)";
			return MHD_YES;
		}
		if (r->blen + n > r->bcap) {
			size_t cap = r->bcap ? r->bcap : 4096;
			while (cap < r->blen + n)
				cap *= 2;
			if (cap > h->o.max_body)
				cap = h->o.max_body;
			uint8_t *b = realloc(r->body, cap);
			if (!b)
				return MHD_NO;
			r->body = b;
			r->bcap = cap;
		}
		memcpy(r->body + r->blen, upload_data, n);
		r->blen += n;
		return MHD_YES;
	}
	pthread_mutex_lock(&r->mu);
	int st = r->st;
	pthread_mutex_unlock(&r->mu);
	if (st == R_REPLIED)
		return queue_reply(r); /* resumed after its reply */
	if (st != R_RECEIVING)
		return MHD_YES; /* spurious call while suspended */
	if (r->refusal_json)
		return queue_json(conn, (unsigned)r->refusal,
		                  r->refusal_why); /* a refused target */
	if (!r->rt)
		return queue_plain(conn, (unsigned)r->refusal, r->refusal_why); /* no route */
	/* The body is complete: hand it to the route. */
	pthread_mutex_lock(&h->mu);
	if (!r->refusal && h->draining) {
		r->refusal = MHD_HTTP_SERVICE_UNAVAILABLE;
		r->refusal_why = "the gateway is shutting down";
	} else if (!r->refusal && atomic_load(&h->pending) >= h->o.max_pending) {
		r->refusal = MHD_HTTP_SERVICE_UNAVAILABLE;
		r->refusal_why = "too many HTTP requests in progress (--http-max-pending)";
	}
	if (!r->refusal) {
		r->counted = true;
		atomic_fetch_add(&h->pending, 1);
	}
	r->next = h->live;
	if (r->next)
		r->next->prev = r;
	h->live = r;
	r->listed = true;
	pthread_mutex_unlock(&h->mu);
	atomic_fetch_add(r->refusal ? &h->refused : &h->requests, 1);
	r->st = R_HANDLING;
	atomic_fetch_add(&r->refs, 1); /* the handler's, until gw_http_reply */
	r->rt->fn(r->rt->user, r);
	pthread_mutex_lock(&r->mu);
	if (r->st == R_REPLIED) {
		pthread_mutex_unlock(&r->mu);
		return queue_reply(r);
	}
	r->st = R_SUSPENDED;
	MHD_suspend_connection(conn);
	pthread_mutex_unlock(&r->mu);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	gw_http *h = cls;
	gw_http_req *r = *con_cls;
	(void)conn;
	(void)toe;
	if (!r || gw_http_is_uri_refusal(r)) {
		*con_cls = NULL; /* refused before the access callback: nothing allocated */
		return;
	}
	*con_cls = NULL;
	unlist(h, r);
	req_rele(r);
}

gw_err gw_http_reply(gw_http_req *r, int status, const char *content_type, const void *body,
                     size_t len)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, (void *)(len ? body : ""), MHD_RESPMEM_MUST_COPY);
	gw_err err = GW_OK;
	if (!resp) {
		err = GW_ENOMEM;
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	} else if (content_type) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	}
	pthread_mutex_lock(&r->mu);
	if (r->st == R_REPLIED || r->st == R_RECEIVING) {
		/* Answered already (the listener answered it at its end). */
		pthread_mutex_unlock(&r->mu);
		if (resp)
			MHD_destroy_response(resp);
		req_rele(r);
		return err;
	}
	gw_http *h = r->h;
	bool was_suspended = r->st == R_SUSPENDED;
	r->resp = resp;
	r->status = status;
	r->st = R_REPLIED;
	if (r->counted) {
		r->counted = false;
		pthread_mutex_lock(&h->mu);
		atomic_fetch_sub(&h->pending, 1);
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
	}
	if (was_suspended)
		MHD_resume_connection(r->conn);
	pthread_mutex_unlock(&r->mu);
	req_rele(r);
	return err;
}

/* ---- accessors ------------------------------------------------------------------ */

const char *gw_http_req_method(const gw_http_req *r)
{
	return r->method;
}

const char *gw_http_req_path(const gw_http_req *r)
{
	return r->path;
}

const char *gw_http_req_query(gw_http_req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

typedef struct qwalk {
	gw_http_query_fn fn;
	void *user;
} qwalk;

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
	(void)kind;
	qwalk *w = cls;
	return w->fn(w->user, key, value ? value : "") ? MHD_YES : MHD_NO;
}

size_t gw_http_req_queries(gw_http_req *r, gw_http_query_fn fn, void *user)
{
	qwalk w = {fn, user};
	int n = MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, on_arg, &w);
	return n > 0 ? (size_t)n : 0;
}

const char *gw_http_req_header(gw_http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const uint8_t *gw_http_req_body(const gw_http_req *r, size_t *len)
{
	*len = r->blen;
	return r->body;
}

const char *gw_http_req_peer(const gw_http_req *r)
{
	return r->peer;
}

int gw_http_req_refusal(const gw_http_req *r, const char **why)
{
	if (why)
		*why = r->refusal_why;
	return r->refusal;
}

void gw_http_get_stats(gw_http *h, gw_http_stats *out)
{
	out->requests = atomic_load(&h->requests);
	out->refused = atomic_load(&h->refused);
	out->not_found = atomic_load(&h->not_found);
	out->pending = atomic_load(&h->pending);
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[512];
	vsnprintf(line, sizeof line, fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = 0;
	GW_DEBUG("http: %s", line);
}

/* on_connection gives each connection h as its socket context, where
 * on_cert finds it (GnuTLS's session pointer is the connection). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	(void)c;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		*socket_context = cls;
}

/* on_cert: GnuTLS asks for the certificate at a handshake. */
static int on_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                   const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                   gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *key)
{
	(void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
	struct MHD_Connection *c = gnutls_session_get_ptr(session);
	const union MHD_ConnectionInfo *ci =
	    c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
	gw_http *h = ci ? ci->socket_context : NULL;
	if (!h || !h->tls)
		return -1;
	return gw_http_tls_current(h->tls, pcert, pcert_length, key);
}

gw_err gw_http_start(gw_http *h, char *why, size_t n)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
	                 MHD_USE_ERROR_LOG;
	if (h->sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* HTTPS (GnuTLS inside libmicrohttpd) when a certificate was given:
	 * asked for at each handshake (on_cert), so a renewed file is served
	 * to new connections. The connection's socket context is h, for it. */
	struct MHD_OptionItem tls[] = {
	    {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)on_cert},
	    {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h},
	    {MHD_OPTION_END, 0, NULL},
	};
	if (h->tls) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
		    MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
			snprintf(why, n, "--http %s: this libmicrohttpd has no TLS", h->addr);
			return GW_ECONFIG;
		}
		flags |= MHD_USE_TLS;
	}
	h->d = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&h->sa, MHD_OPTION_CONNECTION_LIMIT,
	    h->o.max_conns, MHD_OPTION_CONNECTION_TIMEOUT, h->o.idle_timeout_s,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)0, MHD_OPTION_ARRAY,
	    h->tls ? tls : tls + 2, MHD_OPTION_END);
	if (!h->d) {
		snprintf(why, n, "--http %s: cannot listen (address in use or not local%s)",
		         h->addr, h->tls ? ", or TLS does not start" : "");
		return GW_ECONFIG;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : 0;
	return GW_OK;
}

int gw_http_port(const gw_http *h)
{
	return h->port;
}

const char *gw_http_addr(const gw_http *h)
{
	return h->addr;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t gw_http_drain(gw_http *h, int64_t wait_ms)
{
	if (!h || !h->d)
		return 0;
	pthread_mutex_lock(&h->mu);
	h->draining = true;
	pthread_mutex_unlock(&h->mu);
	/* The listener stays open, as the gRPC listeners during their drain:
	 * every new request is answered 503 (readiness "down" included) until
	 * gw_http_destroy closes it. */
	int64_t end = mono_ms() + wait_ms;
	pthread_mutex_lock(&h->mu);
	while (atomic_load(&h->pending) && mono_ms() < end) {
		gw_cond_wait_ms(&h->cv, &h->mu, 20);
	}
	size_t left = (size_t)atomic_load(&h->pending);
	pthread_mutex_unlock(&h->mu);
	return left;
}

void gw_http_destroy(gw_http *h)
{
	if (!h)
		return;
	if (h->d) {
		/* Every request still waiting is answered here, so that no
		 * connection stays suspended (libmicrohttpd cannot stop then). */
		for (;;) {
			gw_http_req *pick = NULL;
			pthread_mutex_lock(&h->mu);
			h->draining = true;
			for (gw_http_req *r = h->live; r && !pick; r = r->next) {
				pthread_mutex_lock(&r->mu);
				if (r->st == R_HANDLING || r->st == R_SUSPENDED) {
					pick = r;
					atomic_fetch_add(&r->refs, 1); /* given to the reply */
				}
				pthread_mutex_unlock(&r->mu);
			}
			pthread_mutex_unlock(&h->mu);
			if (!pick)
				break;
			static const char msg[] = "the gateway is shutting down\n";
			gw_http_reply(pick, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", msg,
			              sizeof msg - 1);
		}
		/* Let the listener's thread send those answers (a stopped daemon
		 * closes their connections first), for up to a second. */
		int64_t end = mono_ms() + 1000;
		pthread_mutex_lock(&h->mu);
		while (h->live && mono_ms() < end) {
			gw_cond_wait_ms(&h->cv, &h->mu, 20);
		}
		pthread_mutex_unlock(&h->mu);
		MHD_stop_daemon(h->d);
		h->d = NULL;
	}
	for (size_t i = 0; i < h->nroutes; i++) {
		free(h->routes[i].method);
		free(h->routes[i].prefix);
	}
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h->addr);
	gw_http_tls_destroy(h->tls); /* after the daemon: no handshake runs */
	free(h);
}
