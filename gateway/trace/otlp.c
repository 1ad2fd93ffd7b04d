/* otlp.c - the OTLP/HTTP span exporter (see otlp.h for its states).
 *
 * Spans are copied into one heap block each (the struct and its strings)
 * and linked in a FIFO under one mutex; the thread takes a batch, encodes
 * an ExportTraceServiceRequest with protobuf-c (proto/opentelemetry, our
 * own subset of opentelemetry-proto) and POSTs it with libcurl. */
#include "otlp.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "redact.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define SERVICE_DEFAULT "spawn-gateway"
#define DROP_LOG_MS     10000 /* at most one drop summary per 10 s */

typedef struct qspan {
	struct qspan *next;
	gw_span s; /* strings point into buf */
	char buf[];
} qspan;

struct gw_otlp {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool started, stopping, joined;
	qspan *head, *tail;
	size_t n;
	gw_otlp_opts o;
	char url[2048];
	char service[GW_SPAN_STR_MAX];
	char secret[256]; /* the URL's password, kept out of log lines; "" = none */
	uint64_t sent, dropped, failed;
	uint64_t dropped_logged; /* dropped when the last summary was logged */
	int64_t last_drop_log_ms;
	CURL *curl;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* cut_len: the length of s cut to max bytes at a character boundary. */
static size_t cut_len(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

void gw_otlp_submit(gw_otlp *e, const gw_span *s)
{
	if (!e)
		return;
	const char *strs[] = {s->name, s->msg, s->tracestate, s->system, s->actor, s->action};
	size_t lens[6], total = 0;
	for (int i = 0; i < 6; i++) {
		lens[i] = strs[i] ? cut_len(strs[i], GW_SPAN_STR_MAX) : 0;
		total += strs[i] ? lens[i] + 1 : 0;
	}
	pthread_mutex_lock(&e->mu);
	bool full = e->n >= e->o.queue_max || e->stopping;
	if (full)
		e->dropped++;
	pthread_mutex_unlock(&e->mu);
	if (full)
		return;
	qspan *q = malloc(sizeof *q + total);
	if (!q) {
		pthread_mutex_lock(&e->mu);
		e->dropped++;
		pthread_mutex_unlock(&e->mu);
		return;
	}
	q->next = NULL;
	q->s = *s;
	const char **dst[] = {&q->s.name,   &q->s.msg,   &q->s.tracestate,
	                      &q->s.system, &q->s.actor, &q->s.action};
	char *p = q->buf;
	for (int i = 0; i < 6; i++) {
		if (!strs[i]) {
			*dst[i] = NULL;
			continue;
		}
		memcpy(p, strs[i], lens[i]);
		p[lens[i]] = 0;
		*dst[i] = p;
		p += lens[i] + 1;
	}
	pthread_mutex_lock(&e->mu);
	if (e->n >= e->o.queue_max || e->stopping) {
		e->dropped++;
		pthread_mutex_unlock(&e->mu);
		free(q);
		return;
	}
	if (e->tail)
		e->tail->next = q;
	else
		e->head = q;
	e->tail = q;
	if (++e->n >= e->o.batch)
		pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

void gw_otlp_stats(gw_otlp *e, uint64_t *sent, uint64_t *dropped, uint64_t *failed)
{
	pthread_mutex_lock(&e->mu);
	*sent = e->sent;
	*dropped = e->dropped;
	*failed = e->failed;
	pthread_mutex_unlock(&e->mu);
}

/* ---- encoding --------------------------------------------------------------- */

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

#define ATTRS_MAX 4

typedef struct enc_span {
	span_t sp;
	Opentelemetry__Proto__Trace__V1__Status st;
	kv_t kv[ATTRS_MAX];
	av_t av[ATTRS_MAX];
	kv_t *kvp[ATTRS_MAX];
	char rid[24];
} enc_span;

static void attr_str(enc_span *x, const char *key, const char *v)
{
	if (!v)
		return;
	size_t i = x->sp.n_attributes++;
	opentelemetry__proto__common__v1__key_value__init(&x->kv[i]);
	opentelemetry__proto__common__v1__any_value__init(&x->av[i]);
	x->kv[i].key = (char *)key;
	x->av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	x->av[i].string_value = (char *)v;
	x->kv[i].value = &x->av[i];
	x->kvp[i] = &x->kv[i];
}

static void enc_one(enc_span *x, gw_span *s)
{
	span_t *sp = &x->sp;
	opentelemetry__proto__trace__v1__span__init(sp);
	opentelemetry__proto__trace__v1__status__init(&x->st);
	sp->trace_id.data = s->trace;
	sp->trace_id.len = 16;
	sp->span_id.data = s->span;
	sp->span_id.len = 8;
	if (s->has_parent) {
		sp->parent_span_id.data = s->parent;
		sp->parent_span_id.len = 8;
	}
	sp->flags = s->flags;
	sp->trace_state = (char *)(s->tracestate ? s->tracestate : "");
	sp->name = (char *)(s->name ? s->name : "span");
	sp->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
	sp->start_time_unix_nano = (uint64_t)s->start_ns;
	sp->end_time_unix_nano = (uint64_t)(s->end_ns >= s->start_ns ? s->end_ns : s->start_ns);
	x->st.code = s->error
	                 ? OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR
	                 : OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
	x->st.message = (char *)(s->error && s->msg ? s->msg : "");
	sp->status = &x->st;
	sp->attributes = x->kvp;
	sp->n_attributes = 0;
	attr_str(x, "spawn.system", s->system);
	attr_str(x, "spawn.actor", s->actor);
	attr_str(x, "spawn.action", s->action);
	if (s->request_id) {
		snprintf(x->rid, sizeof x->rid, "%" PRIu64, s->request_id);
		attr_str(x, "spawn.request_id", x->rid);
	}
}

/* encode packs the n spans of list into *out (malloc'd; caller frees). */
static bool encode(gw_otlp *e, qspan *list, size_t n, uint8_t **out, size_t *len)
{
	enc_span *xs = calloc(n ? n : 1, sizeof *xs);
	span_t **sps = calloc(n ? n : 1, sizeof *sps);
	if (!xs || !sps) {
		free(xs);
		free(sps);
		return false;
	}
	size_t i = 0;
	for (qspan *q = list; q && i < n; q = q->next, i++) {
		enc_one(&xs[i], &q->s);
		sps[i] = &xs[i].sp;
	}
	Opentelemetry__Proto__Common__V1__AnyValue sv =
	    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	sv.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	sv.string_value = e->service;
	kv_t skv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	skv.key = "service.name";
	skv.value = &sv;
	kv_t *skvp = &skv;
	Opentelemetry__Proto__Resource__V1__Resource res =
	    OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	res.attributes = &skvp;
	res.n_attributes = 1;
	Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
	    OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	scope.name = SERVICE_DEFAULT;
	Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
	    OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	ss.scope = &scope;
	ss.spans = sps;
	ss.n_spans = i;
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
	Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
	    OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	rs.resource = &res;
	rs.scope_spans = &ssp;
	rs.n_scope_spans = 1;
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
	    OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	req.resource_spans = &rsp;
	req.n_resource_spans = 1;
	size_t sz =
	    opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
	        &req);
	uint8_t *buf = malloc(sz ? sz : 1);
	if (buf)
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req,
		                                                                               buf);
	free(xs);
	free(sps);
	if (!buf)
		return false;
	*out = buf;
	*len = sz;
	return true;
}

/* ---- sending ------------------------------------------------------------------ */

static size_t discard_body(char *p, size_t sz, size_t n, void *u)
{
	(void)p;
	(void)u;
	return sz * n;
}

/* post sends one encoded batch; returns the HTTP status (0: no answer). */
static long post(gw_otlp *e, const uint8_t *body, size_t len, char *err, size_t errlen)
{
	CURL *c = e->curl;
	curl_easy_reset(c);
	char ebuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
	curl_easy_setopt(c, CURLOPT_URL, e->url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)e->o.timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	else
		snprintf(err, errlen, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
	curl_slist_free_all(h);
	return code;
}

/* send_batch takes up to batch spans off the queue (under e->mu, which it
 * releases while sending) and sends them. */
static void send_batch(gw_otlp *e)
{
	qspan *list = e->head, *last = NULL;
	size_t n = 0;
	for (qspan *q = e->head; q && n < e->o.batch; q = q->next) {
		last = q;
		n++;
	}
	if (!n)
		return;
	e->head = last->next;
	if (!e->head)
		e->tail = NULL;
	last->next = NULL;
	e->n -= n;
	pthread_mutex_unlock(&e->mu);

	uint8_t *body = NULL;
	size_t len = 0;
	char err[CURL_ERROR_SIZE + 64] = "";
	long code = 0;
	if (encode(e, list, n, &body, &len))
		code = post(e, body, len, err, sizeof err);
	else
		snprintf(err, sizeof err, "out of memory encoding %zu spans", n);
	free(body);
	while (list) {
		qspan *next = list->next;
		free(list);
		list = next;
	}

	pthread_mutex_lock(&e->mu);
	if (code >= 200 && code < 300) {
		e->sent += n;
		return;
	}
	e->failed++;
	e->dropped += n;
	if (code)
		snprintf(err, sizeof err, "HTTP status %ld", code);
	gw_redact_secret(err, sizeof err, e->secret); /* libcurl's words may quote the URL */
	int64_t now = mono_ms();
	if (now - e->last_drop_log_ms >= DROP_LOG_MS || !e->last_drop_log_ms) {
		uint64_t d = e->dropped - e->dropped_logged;
		e->dropped_logged = e->dropped;
		e->last_drop_log_ms = now;
		pthread_mutex_unlock(&e->mu);
		GW_WARN("otlp: spans not exported to the collector (%s); %" PRIu64
		        " spans dropped since the last report",
		        err, d);
		pthread_mutex_lock(&e->mu);
	}
}

static void *run(void *arg)
{
	gw_otlp *e = arg;
	pthread_mutex_lock(&e->mu);
	uint64_t queue_drops_logged = 0;
	while (!e->stopping) {
		if (e->n < e->o.batch || e->o.hold) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t ns = ts.tv_nsec + (e->o.flush_ms % 1000) * 1000000;
			ts.tv_sec += e->o.flush_ms / 1000 + ns / 1000000000;
			ts.tv_nsec = ns % 1000000000;
			pthread_cond_timedwait(&e->cv, &e->mu, &ts);
		}
		if (e->stopping)
			break;
		while (e->n && !e->stopping && !e->o.hold)
			send_batch(e);
		/* Drops at a full queue are logged here, rate-limited, never on the
		 * submitting thread. */
		if (e->dropped > e->dropped_logged && e->dropped != queue_drops_logged &&
		    mono_ms() - e->last_drop_log_ms >= DROP_LOG_MS) {
			uint64_t d = e->dropped - e->dropped_logged;
			e->dropped_logged = queue_drops_logged = e->dropped;
			e->last_drop_log_ms = mono_ms();
			pthread_mutex_unlock(&e->mu);
			GW_WARN("otlp: %" PRIu64
			        " spans dropped (queue of %zu full, or the collector "
			        "did not take them)",
			        d, e->o.queue_max);
			pthread_mutex_lock(&e->mu);
		}
	}
	/* DRAINING: what is queued goes out once. */
	while (e->n)
		send_batch(e);
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

gw_err gw_otlp_create(gw_otlp **out, const gw_otlp_opts *o, char *msg, size_t msglen)
{
	const char *url = o->endpoint ? o->endpoint : "";
	const char *scheme_end = strstr(url, "://");
	if (!scheme_end || !(strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) ||
	    !scheme_end[3] || strlen(url) > 1900) {
		snprintf(msg, msglen, "the OTLP endpoint is not an http:// or https:// URL");
		return GW_ECONFIG;
	}
	/* Thread-safe and reference-counted in the libcurl Debian ships (7.88). */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return GW_ENOMEM;
	gw_otlp *e = calloc(1, sizeof *e);
	if (!e) {
		curl_global_cleanup();
		return GW_ENOMEM;
	}
	e->o = *o;
	if (!e->o.queue_max)
		e->o.queue_max = 8192;
	if (!e->o.batch)
		e->o.batch = 512;
	if (e->o.batch > e->o.queue_max)
		e->o.batch = e->o.queue_max;
	if (e->o.flush_ms <= 0)
		e->o.flush_ms = 1000;
	if (e->o.timeout_ms <= 0)
		e->o.timeout_ms = 5000;
	snprintf(e->service, sizeof e->service, "%s",
	         o->service_name ? o->service_name : SERVICE_DEFAULT);
	/* OTLP/HTTP: an endpoint naming no path is the collector's base URL. */
	const char *path = strchr(scheme_end + 3, '/');
	if (!path || !strcmp(path, "/"))
		snprintf(e->url, sizeof e->url, "%.*s/v1/traces",
		         (int)(path ? (size_t)(path - url) : strlen(url)), url);
	else
		snprintf(e->url, sizeof e->url, "%s", url);
	e->o.endpoint = e->url;
	/* scheme://user:password@host...: the password, to redact */
	const char *auth = scheme_end + 3, *at = strchr(auth, '@'), *slash = strchr(auth, '/');
	const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (at && (!slash || at < slash) && colon && (size_t)(at - colon - 1) < sizeof e->secret)
		snprintf(e->secret, sizeof e->secret, "%.*s", (int)(at - colon - 1), colon + 1);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	e->curl = curl_easy_init();
	if (!e->curl || pthread_create(&e->thread, NULL, run, e) != 0) {
		gw_otlp_destroy(e);
		return GW_ENOMEM;
	}
	e->started = true;
	*out = e;
	return GW_OK;
}

void gw_otlp_stop(gw_otlp *e)
{
	if (!e || !e->started || e->joined)
		return;
	pthread_mutex_lock(&e->mu);
	e->stopping = true;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->thread, NULL);
	e->joined = true;
	/* What the rate limit held back is said once more at the end. */
	if (e->dropped > e->dropped_logged)
		GW_WARN("otlp: %" PRIu64 " spans dropped since the last report (at shutdown)",
		        e->dropped - e->dropped_logged);
	e->dropped_logged = e->dropped;
}

void gw_otlp_destroy(gw_otlp *e)
{
	if (!e)
		return;
	gw_otlp_stop(e);
	while (e->head) {
		qspan *n = e->head->next;
		free(e->head);
		e->head = n;
	}
	if (e->curl)
		curl_easy_cleanup(e->curl);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free(e);
	curl_global_cleanup();
}
