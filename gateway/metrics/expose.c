/* expose.c - /metrics, /healthz, /readyz and the scrape-time gauges
 * (expose.h). */
#include "expose.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store.h"

enum { CHECK_NONE, CHECK_PENDING, CHECK_OK, CHECK_FAILED };

struct gw_expose {
	gw_expose_opts o;
	pthread_mutex_t mu; /* the store check */
	int last;           /* CHECK_OK / CHECK_FAILED / CHECK_NONE: the last answer */
	int64_t last_ms;    /* monotonic ms of the last answer */
	bool in_flight, stopping;
	pthread_cond_t cv; /* the checker's: signalled to stop it */
	/* The routes hold use (read) while they read the server, runtime and
	 * persist; gw_expose_stop takes it (write) to set closed: from then on
	 * they touch none of them (the listener outlives the server). */
	pthread_rwlock_t use;
	bool closed;
	pthread_t checker;
	bool checker_started;
	atomic_size_t members[5]; /* the view by gw_member status */
	atomic_bool have_view;
	atomic_uint_fast64_t fenced; /* self-fencings (gw_expose_fenced) */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the store check ------------------------------------------------------------ */

/* store_check runs on the persist thread: one cheap indexed read. */
static void store_check(void *arg, gw_store *store)
{
	gw_expose *e = arg;
	int64_t due = 0;
	gw_err err = gw_store_schedule_next_due(store, &due);
	bool ok = err == GW_OK || err == GW_ENOTFOUND;
	pthread_mutex_lock(&e->mu);
	e->last = ok ? CHECK_OK : CHECK_FAILED;
	e->last_ms = mono_ms();
	e->in_flight = false;
	/* At once, not at the checker's next tick: ready as soon as the first
	 * check answers. Not once stopped: the server may be gone by then (a
	 * check queued before gw_expose_stop runs when the persist stops). */
	if (!e->stopping)
		gw_server_set_unready(e->o.srv, GW_UNREADY_STORE, !ok);
	pthread_mutex_unlock(&e->mu);
	if (err != GW_OK && err != GW_ENOTFOUND)
		GW_WARN("readiness: the statestore check failed: %s", gw_strerror(err));
}

/* store_state: the last answer (CHECK_NONE, _OK, _FAILED) and its age. */
static int store_state(gw_expose *e, int64_t *age_ms)
{
	pthread_mutex_lock(&e->mu);
	int last = e->last;
	*age_ms = mono_ms() - e->last_ms;
	pthread_mutex_unlock(&e->mu);
	return last;
}

/* store_submit queues a check unless one is in flight or stopping. */
static void store_submit(gw_expose *e)
{
	pthread_mutex_lock(&e->mu);
	bool submit = !e->in_flight && !e->stopping;
	if (submit)
		e->in_flight = true;
	pthread_mutex_unlock(&e->mu);
	if (submit && gw_persist_call(e->o.persist, store_check, e) != GW_OK) {
		pthread_mutex_lock(&e->mu);
		e->in_flight = false;
		pthread_mutex_unlock(&e->mu);
	}
}

/* checker_main: every GW_STORE_CHECK_MS, the next check; a statestore
 * whose last answer is older than GW_STORE_FRESH_MS (it hangs) holds
 * readiness back (store_check sets and clears the condition on each
 * answer). */
static void *checker_main(void *arg)
{
	gw_expose *e = arg;
	pthread_mutex_lock(&e->mu);
	while (!e->stopping) {
		bool stale = e->last != CHECK_NONE && mono_ms() - e->last_ms >= GW_STORE_FRESH_MS;
		pthread_mutex_unlock(&e->mu);
		if (stale)
			gw_server_set_unready(e->o.srv, GW_UNREADY_STORE, true);
		store_submit(e);
		pthread_mutex_lock(&e->mu);
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)(GW_STORE_CHECK_MS % 1000) * 1000000L;
		ts.tv_sec += GW_STORE_CHECK_MS / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (!e->stopping)
			pthread_cond_timedwait(&e->cv, &e->mu, &ts);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* ---- routes --------------------------------------------------------------------- */

static void reply_text(gw_http_req *req, int status, const char *ctype, const char *body)
{
	gw_http_reply(req, status, ctype, body, strlen(body));
}

/* answerable: only the route's exact path is served (the route table
 * matches prefixes: /metrics/x is 404); a 413 refusal is answered as such;
 * the listener's other refusals (503: draining, too many in progress) do
 * not apply to these routes, answered at once without parking the
 * request. */
static bool answerable(gw_http_req *req, const char *path)
{
	if (strcmp(gw_http_req_path(req), path)) {
		reply_text(req, 404, "text/plain", "not found\n");
		return false;
	}
	const char *why = NULL;
	if (gw_http_req_refusal(req, &why) == 413) {
		reply_text(req, 413, "text/plain", why ? why : "request body too large\n");
		return false;
	}
	return true;
}

static void on_healthz(void *user, gw_http_req *req)
{
	(void)user;
	if (answerable(req, "/healthz"))
		reply_text(req, 200, "application/json", "{\"status\":\"live\"}\n");
}

static void on_readyz(void *user, gw_http_req *req)
{
	gw_expose *e = user;
	if (!answerable(req, "/readyz"))
		return;
	pthread_rwlock_rdlock(&e->use);
	unsigned un = e->closed ? GW_UNREADY_DRAINING : gw_server_unready(e->o.srv);
	pthread_rwlock_unlock(&e->use);
	int64_t age = 0;
	int st = store_state(e, &age);
	char body[320];
	size_t n = 0;
	const char *reasons[4];
	size_t nr = 0;
	if (un & GW_UNREADY_STARTING)
		reasons[nr++] = "starting";
	if (un & GW_UNREADY_DRAINING)
		reasons[nr++] = "draining";
	if (un & GW_UNREADY_MEMBERSHIP)
		reasons[nr++] = "not a member of the cluster view";
	if (un & GW_UNREADY_STORE)
		reasons[nr++] = st == CHECK_NONE ? "statestore not checked yet"
		                : st == CHECK_OK ? "statestore check overdue"
		                                 : "statestore unreachable";
	if (nr == 0) {
		reply_text(req, 200, "application/json", "{\"status\":\"ready\"}\n");
		return;
	}
	/* Fixed strings only: nothing a peer sent goes into this body. */
	n += (size_t)snprintf(body + n, sizeof body - n, "{\"status\":\"not ready\",\"reasons\":[");
	for (size_t i = 0; i < nr && n < sizeof body; i++)
		n += (size_t)snprintf(body + n, sizeof body - n, "%s\"%s\"", i ? "," : "",
		                      reasons[i]);
	if (n < sizeof body)
		snprintf(body + n, sizeof body - n, "]}\n");
	reply_text(req, 503, "application/json", body);
}

static void on_metrics(void *user, gw_http_req *req)
{
	gw_expose *e = user;
	if (!answerable(req, "/metrics"))
		return;
	if (!e->o.gm) {
		reply_text(req, 404, "text/plain", "metrics are off (--metrics off)\n");
		return;
	}
	char *text = NULL;
	size_t len = 0;
	pthread_rwlock_rdlock(&e->use);
	gw_err err =
	    e->closed ? GW_ESHUTDOWN : gw_metrics_render(gw_gm_registry(e->o.gm), &text, &len);
	pthread_rwlock_unlock(&e->use);
	if (err == GW_ESHUTDOWN) {
		reply_text(req, 503, "text/plain", "shutting down\n");
		return;
	}
	if (err != GW_OK) {
		reply_text(req, 500, "text/plain", "out of memory\n");
		return;
	}
	gw_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}

/* ---- gauges read at scrape time ------------------------------------------------- */

static void g_ready(void *user, gw_gauge_out *o)
{
	gw_expose *e = user;
	gw_gauge_emit(o, NULL, gw_server_unready(e->o.srv) == 0 ? 1 : 0);
}

static void g_store_up(void *user, gw_gauge_out *o)
{
	gw_expose *e = user;
	int64_t age = 0;
	int st = store_state(e, &age);
	gw_gauge_emit(o, NULL, st == CHECK_OK && age < GW_STORE_FRESH_MS ? 1 : 0);
}

static void g_queued_bytes(void *user, gw_gauge_out *o)
{
	gw_runtime_stats s;
	gw_runtime_get_stats(((gw_expose *)user)->o.rt, &s);
	gw_gauge_emit(o, NULL, (double)s.queued_bytes);
}

static void g_outbox(void *user, gw_gauge_out *o)
{
	gw_runtime_stats s;
	gw_runtime_get_stats(((gw_expose *)user)->o.rt, &s);
	gw_gauge_emit(o, (const char *const[]){"in_flight"}, (double)s.effects_in_flight);
	gw_gauge_emit(o, (const char *const[]){"parked"}, (double)s.effects_parked);
}

static void g_schedules(void *user, gw_gauge_out *o)
{
	gw_gauge_emit(o, NULL, (double)gw_runtime_quota_total(((gw_expose *)user)->o.rt, true));
}

static void g_persist_queue(void *user, gw_gauge_out *o)
{
	size_t bulk = 0, urgent = 0;
	gw_persist_queued(((gw_expose *)user)->o.persist, &bulk, &urgent);
	gw_gauge_emit(o, (const char *const[]){"bulk"}, (double)bulk);
	gw_gauge_emit(o, (const char *const[]){"urgent"}, (double)urgent);
}

/* Hosts per system: at most MAX_SYS systems, then "_other". */
#define MAX_SYS 256
typedef struct host_agg {
	size_t n;
	struct {
		char system[64];
		double hosts, tasks, bytes;
	} v[MAX_SYS + 1];
} host_agg;

static void host_one(void *user, const char *system, size_t tasks, size_t bytes)
{
	host_agg *a = user;
	const char *name = system[0] ? system : "_registering";
	size_t i = 0;
	while (i < a->n && strcmp(a->v[i].system, name))
		i++;
	if (i == a->n) {
		if (a->n == MAX_SYS)
			name = GW_METRICS_OTHER;
		i = 0;
		while (i < a->n && strcmp(a->v[i].system, name))
			i++;
		if (i == a->n) {
			snprintf(a->v[i].system, sizeof a->v[i].system, "%s", name);
			a->n++;
		}
	}
	a->v[i].hosts += 1;
	a->v[i].tasks += (double)tasks;
	a->v[i].bytes += (double)bytes;
}

static void g_hosts_which(gw_expose *e, gw_gauge_out *o, int which)
{
	host_agg *a = calloc(1, sizeof *a);
	if (!a)
		return;
	gw_server_hosts_each(e->o.srv, host_one, a);
	gw_hhosts_each(e->o.hhosts, host_one, a); /* hosts of Spawn's HTTP protocol */
	for (size_t i = 0; i < a->n; i++) {
		const char *v[1] = {a->v[i].system};
		gw_gauge_emit(o, v,
		              which == 0   ? a->v[i].hosts
		              : which == 1 ? a->v[i].tasks
		                           : a->v[i].bytes);
	}
	free(a);
}

static void g_hosts(void *user, gw_gauge_out *o)
{
	g_hosts_which(user, o, 0);
}
static void g_host_tasks(void *user, gw_gauge_out *o)
{
	g_hosts_which(user, o, 1);
}
static void g_host_bytes(void *user, gw_gauge_out *o)
{
	g_hosts_which(user, o, 2);
}

static void g_refusals(void *user, gw_gauge_out *o)
{
	gw_expose *e = user;
	static const char *const kinds[GW_REFUSAL_KINDS] = {[GW_REFUSAL_INVOKE] = "invoke",
	                                                    [GW_REFUSAL_ADMIN] = "admin",
	                                                    [GW_REFUSAL_PEER] = "peer",
	                                                    [GW_REFUSAL_HOST] = "host"};
	for (int k = 0; k < GW_REFUSAL_KINDS; k++)
		for (int u = 1; u >= 0; u--) {
			const char *v[2] = {kinds[k], u ? "UNAUTHENTICATED" : "PERMISSION_DENIED"};
			gw_gauge_emit(o, v, (double)gw_server_refusals(e->o.srv, k, u));
		}
}

static void g_handshakes(void *user, gw_gauge_out *o)
{
	gw_gauge_emit(o, NULL, (double)gw_tls_handshakes(((gw_expose *)user)->o.tls));
}

static void g_forwards(void *user, gw_gauge_out *o)
{
	gw_expose *e = user;
	if (!e->o.router)
		return;
	gw_router_stats s;
	gw_router_get_stats(e->o.router, &s);
	gw_gauge_emit(o, (const char *const[]){"forwarded"}, (double)s.forwarded);
	gw_gauge_emit(o, (const char *const[]){"refused"}, (double)s.refused);
}

static void g_http_hosts(void *user, gw_gauge_out *o)
{
	gw_expose *e = user;
	if (!e->o.hhosts)
		return;
	gw_hhosts_stats s;
	gw_hhosts_get_stats(e->o.hhosts, &s);
	gw_gauge_emit(o, (const char *const[]){"ok"}, (double)s.ok);
	gw_gauge_emit(o, (const char *const[]){"host_error"}, (double)s.host_errors);
	gw_gauge_emit(o, (const char *const[]){"failed"}, (double)s.failed);
	gw_gauge_emit(o, (const char *const[]){"refused"}, (double)s.refused_full);
}

static void g_http_inflight(void *user, gw_gauge_out *o)
{
	gw_expose *e = user;
	if (!e->o.hhosts)
		return;
	gw_hhosts_stats s;
	gw_hhosts_get_stats(e->o.hhosts, &s);
	gw_gauge_emit(o, NULL, (double)s.in_client);
}

/* g_otlp: the exporter's spans by result, or (failed) its failed requests. */
static void g_otlp(gw_expose *e, gw_gauge_out *o, bool failed_requests)
{
	if (!e->o.otlp)
		return;
	uint64_t sent, dropped, failed;
	gw_otlp_stats(e->o.otlp, &sent, &dropped, &failed);
	if (failed_requests) {
		gw_gauge_emit(o, NULL, (double)failed);
		return;
	}
	gw_gauge_emit(o, (const char *const[]){"sent"}, (double)sent);
	gw_gauge_emit(o, (const char *const[]){"dropped"}, (double)dropped);
}

static void g_otlp_spans(void *user, gw_gauge_out *o)
{
	g_otlp(user, o, false);
}

static void g_otlp_failed(void *user, gw_gauge_out *o)
{
	g_otlp(user, o, true);
}

static void g_members(void *user, gw_gauge_out *o)
{
	gw_expose *e = user;
	if (!atomic_load(&e->have_view))
		return;
	static const char *const names[5] = {NULL, "joining", "active", "leaving", "dead"};
	for (int i = 1; i < 5; i++)
		gw_gauge_emit(o, (const char *const[]){names[i]},
		              (double)atomic_load(&e->members[i]));
}

static void g_fenced(void *user, gw_gauge_out *o)
{
	gw_expose *e = user;
	if (atomic_load(&e->have_view))
		gw_gauge_emit(o, NULL, (double)atomic_load(&e->fenced));
}

void gw_expose_fenced(gw_expose *e)
{
	if (e)
		atomic_fetch_add(&e->fenced, 1);
}

void gw_expose_view(gw_expose *e, const size_t by_status[5])
{
	if (!e)
		return;
	for (int i = 0; i < 5; i++)
		atomic_store(&e->members[i], by_status[i]);
	atomic_store(&e->have_view, true);
}

static gw_err gauges(gw_expose *e)
{
	gw_metrics *m = gw_gm_registry(e->o.gm);
	static const char *const sys_l[] = {"system"};
	static const char *const state_l[] = {"state"};
	static const char *const class_l[] = {"class"};
	static const char *const ref_l[] = {"kind", "code"};
	static const char *const res_l[] = {"result"};
	static const char *const status_l[] = {"status"};
	const struct {
		const char *name, *help, *kind;
		const char *const *labels;
		size_t n;
		gw_gauge_fn fn;
	} g[] = {
	    {"spawn_ready", "1 when the gateway is ready (what /readyz answers 200 for), else 0.",
	     "gauge", NULL, 0, g_ready},
	    {"spawn_store_up", "1 when the statestore answered a recent check, else 0.", "gauge",
	     NULL, 0, g_store_up},
	    {"spawn_mailbox_queued_bytes", "Request bytes waiting in every actor mailbox.", "gauge",
	     NULL, 0, g_queued_bytes},
	    {"spawn_outbox_effects",
	     "Side effects being delivered (in_flight) or stored waiting "
	     "for room (parked).",
	     "gauge", state_l, 1, g_outbox},
	    {"spawn_schedules_pending", "Scheduled invocations stored and not yet delivered.",
	     "gauge", NULL, 0, g_schedules},
	    {"spawn_persist_queue_depth",
	     "Statestore jobs waiting for the persist thread, by class.", "gauge", class_l, 1,
	     g_persist_queue},
	    {"spawn_hosts_connected",
	     "Hosts by the system they registered: gRPC host connections open, and hosts of "
	     "Spawn's HTTP protocol registered.",
	     "gauge", sys_l, 1, g_hosts},
	    {"spawn_host_tasks_in_flight", "Tasks sent to hosts and not answered yet, by system.",
	     "gauge", sys_l, 1, g_host_tasks},
	    {"spawn_host_queue_bytes",
	     "Bytes of tasks waiting to be written to hosts (for Spawn's HTTP protocol: request "
	     "bodies of calls not answered yet), by system.",
	     "gauge", sys_l, 1, g_host_bytes},
	    {"spawn_authz_refusals_total",
	     "Calls and host streams refused by the access policy, by kind and code.", "counter",
	     ref_l, 2, g_refusals},
	    {"spawn_tls_handshakes_total", "TLS handshakes the listeners started.", "counter", NULL,
	     0, g_handshakes},
	    {"spawn_cluster_forwards_total",
	     "Calls forwarded to their owner over Peer.Forward (forwarded), and those a member "
	     "refused as not the owner (refused).",
	     "counter", res_l, 1, g_forwards},
	    {"spawn_cluster_members", "Members of the cluster view, by status.", "gauge", status_l,
	     1, g_members},
	    {"spawn_http_host_calls_total",
	     "Calls to hosts of Spawn's HTTP protocol, by result: ok, host_error (the host "
	     "answered an error), failed (no answer), refused (--spawn-host-tasks).",
	     "counter", res_l, 1, g_http_hosts},
	    {"spawn_cluster_fenced_total",
	     "Times this member fenced itself (it could not heartbeat for nearly the member "
	     "timeout, or found itself declared dead) and stopped serving its activations.",
	     "counter", NULL, 0, g_fenced},
	    {"spawn_otlp_spans_total",
	     "Spans of the OTLP exporter (--otlp-endpoint) by result: sent (accepted by the "
	     "receiver), dropped (the queue was full, --otlp-queue, or their request failed).",
	     "counter", res_l, 1, g_otlp_spans},
	    {"spawn_otlp_requests_failed_total",
	     "OTLP export requests that failed (no answer, a refused connection, an error "
	     "status); their spans count as dropped.",
	     "counter", NULL, 0, g_otlp_failed},
	    {"spawn_http_host_calls_in_flight",
	     "Calls to hosts of Spawn's HTTP protocol in flight.", "gauge", NULL, 0,
	     g_http_inflight},
	};
	for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
		gw_err err = gw_metrics_gauge(m, g[i].name, g[i].help, g[i].kind, g[i].labels,
		                              g[i].n, g[i].fn, e);
		if (err)
			return err;
	}
	return GW_OK;
}

gw_err gw_expose_create(gw_expose **out, const gw_expose_opts *o, gw_http *http)
{
	if (!o || !o->srv || !o->rt || !o->persist)
		return GW_EINVAL;
	gw_expose *e = calloc(1, sizeof *e);
	if (!e)
		return GW_ENOMEM;
	e->o = *o;
	pthread_mutex_init(&e->mu, NULL);
	pthread_rwlock_init(&e->use, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cv, &ca);
	pthread_condattr_destroy(&ca);
	e->last = CHECK_NONE;
	gw_err err = o->gm ? gauges(e) : GW_OK;
	if (!err && http)
		err = gw_http_route(http, "GET", "/healthz", on_healthz, e);
	if (!err && http)
		err = gw_http_route(http, "GET", "/readyz", on_readyz, e);
	if (!err && http)
		err = gw_http_route(http, "GET", "/metrics", on_metrics, e);
	if (err) {
		gw_expose_destroy(e);
		return err;
	}
	/* Not ready before the statestore answered once (the first check
	 * is the checker's first act). */
	gw_server_set_unready(o->srv, GW_UNREADY_STORE, true);
	if (pthread_create(&e->checker, NULL, checker_main, e)) {
		gw_expose_destroy(e);
		return GW_ENOMEM;
	}
	e->checker_started = true;
	*out = e;
	return GW_OK;
}

void gw_expose_stop(gw_expose *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	e->stopping = true;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
	if (e->checker_started) {
		pthread_join(e->checker, NULL);
		e->checker_started = false;
	}
	pthread_rwlock_wrlock(&e->use); /* waits for a route reading the server */
	e->closed = true;
	pthread_rwlock_unlock(&e->use);
}

void gw_expose_destroy(gw_expose *e)
{
	if (!e)
		return;
	gw_expose_stop(e);
	pthread_rwlock_destroy(&e->use);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free(e);
}
