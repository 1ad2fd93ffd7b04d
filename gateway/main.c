/* main.c - spawn-gateway: args -> config -> run. */
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "absl_tune.h"
#include "auth.h"
#include "config.h"
#include "expose.h"
#include "gm.h"
#include "http.h"
#include "http_host.h"
#include "json_api.h"
#include "spawn_api.h"
#include "log.h"
#include "otlp.h"
#include "cshare.h"
#include "membership.h"
#include "peer.h"
#include "routing.h"
#include "viewfile.h"
#include "persist.h"
#include "redact.h"
#include "registry.h"
#include "runtime.h"
#include "server.h"
#include "store.h"

/* ---- cluster callbacks (membership.h) ----------------------------------------------- */

/* What the membership's callbacks reach: the registry (what is served
 * here), the server (readiness), the router (which gets every view) and
 * the peers (probes). */
typedef struct cluster_ctx {
	gw_registry *reg;    /* borrowed, outlives the cluster */
	gw_server *srv;      /* borrowed, outlives the cluster (readiness: GW_UNREADY_MEMBERSHIP) */
	gw_router *router;   /* borrowed; NULL without cluster mode */
	gw_peers *peers;     /* borrowed; NULL without cluster mode */
	gw_persist *persist; /* borrowed, outlives the cluster: the member whose
	                        activation leases it takes (lease mode) */
	gw_expose *expose;   /* borrowed, outlives the cluster; NULL without --http */
	gw_cshare *cshare;   /* borrowed; contracts across the cluster (cluster/cshare.h) */
	/* The membership thread runs until gw_cluster_destroy, after the
	 * router and the peers are stopped: callbacks use them under the read
	 * lock while open; cluster_ctx_close (write lock) ends that. */
	pthread_rwlock_t lock;
	bool open;
} cluster_ctx;

/* cluster_ctx_close: from here on no membership callback reaches the
 * router or the peers. Waits for a probe in progress (bounded by its
 * timeout). */
static void cluster_ctx_close(cluster_ctx *cx)
{
	pthread_rwlock_wrlock(&cx->lock);
	cx->open = false;
	pthread_rwlock_unlock(&cx->lock);
}

/* on_joined: stdout says when this member is ACTIVE (tests and scripts wait
 * for "member ID joined", as for "listening"). */
static void cluster_joined(void *user, const char *id)
{
	cluster_ctx *x = user;
	/* A member of the view: ready (grpc.health.v1), unless draining. */
	gw_server_set_unready(x->srv, GW_UNREADY_MEMBERSHIP, false);
	/* Activations take their lease as this member from now on. */
	gw_persist_set_member(x->persist, id);
	printf("member %s joined\n", id);
	fflush(stdout);
}

/* on_fenced: this member stopped being one. The view published with it has
 * no self, so the router hands every activation off and holds new calls
 * until the member has rejoined (docs/design/cluster.md). */
static void cluster_fenced(void *user, const char *id, const char *why)
{
	cluster_ctx *x = user;
	/* Not a member any more: NOT_SERVING until it has rejoined. */
	gw_server_set_unready(x->srv, GW_UNREADY_MEMBERSHIP, true);
	/* No lease is taken until it has rejoined (under its new id). */
	gw_persist_set_member(x->persist, NULL);
	gw_expose_fenced(x->expose); /* spawn_cluster_fenced_total */
	GW_ERROR("cluster: member %s FENCED itself: %s; rejoining under a new id", id, why);
	printf("member %s fenced\n", id);
	fflush(stdout);
}

/* view_metrics gives the view's members by status to the metrics
 * (spawn_cluster_members; expose may be NULL). */
static void view_metrics(gw_expose *expose, const gw_view *v)
{
	size_t by_status[5] = {0};
	for (size_t i = 0; i < v->n; i++)
		by_status[v->members[i].status >= 1 && v->members[i].status <= 4
		              ? v->members[i].status
		              : 0]++;
	gw_expose_view(expose, by_status);
}

/* on_view: one INFO line per view change, and the view goes to the router. */
static void cluster_view(void *user, gw_view *v)
{
	cluster_ctx *cx = user;
	pthread_rwlock_rdlock(&cx->lock);
	if (cx->open && cx->router)
		gw_router_on_view(cx->router, v);
	if (cx->open && cx->cshare)
		gw_cshare_on_view(cx->cshare, v);
	pthread_rwlock_unlock(&cx->lock);
	view_metrics(cx->expose, v);
	char line[1024];
	size_t at = 0;
	static const char *const names[] = {"?", "joining", "active", "leaving", "dead"};
	for (size_t i = 0; i < v->n && at + 1 < sizeof line; i++) {
		const gw_member *m = &v->members[i];
		size_t subs = 0; /* channel subscriptions (registry.h, GW_SUB_MARK) */
		for (size_t k = 0; k < m->n_served; k++)
			subs +=
			    m->served[k][0] == GW_SUB_MARK || m->served[k][0] == GW_CONTRACTS_MARK;
		char sub[40] = "";
		if (subs)
			snprintf(sub, sizeof sub, ", %zu subscriptions", subs);
		int n = snprintf(line + at, sizeof line - at, "%s%s%s=%s(%zu types%s)",
		                 i ? " " : "", i == v->self ? "*" : "", m->id,
		                 m->status >= 1 && m->status <= 4 ? names[m->status] : "?",
		                 m->n_served - subs, sub);
		if (n < 0)
			break;
		at += (size_t)n;
	}
	if (at >= sizeof line)
		at = sizeof line - 1;
	line[at] = '\0';
	GW_INFO("cluster: view %llu: %zu members%s%s", (unsigned long long)v->version, v->n,
	        v->n ? ": " : "", line);
}

/* cluster_served: what the hosts connected here serve (the registry). */
static gw_err cluster_served(void *user, char **out)
{
	cluster_ctx *cx = user;
	gw_err err = gw_registry_served(cx->reg, out);
	/* With the hash of this member's contracts (cluster/cshare.h). */
	if (err)
		return err;
	pthread_rwlock_rdlock(&cx->lock);
	if (cx->open && cx->cshare)
		err = gw_cshare_served(cx->cshare, out, GW_SERVED_MAX);
	pthread_rwlock_unlock(&cx->lock);
	if (err) {
		free(*out);
		*out = NULL;
	}
	return err;
}

/* cluster_probe: a silent member is alive when it answers Peer.Ping itself. */
static bool cluster_probe(void *user, const gw_member *m, int64_t timeout_ms)
{
	cluster_ctx *cx = user;
	pthread_rwlock_rdlock(&cx->lock);
	bool alive = cx->open && cx->peers &&
	             gw_peer_ping(cx->peers, m->address, m->id, NULL, 0, timeout_ms);
	pthread_rwlock_unlock(&cx->lock);
	return alive;
}

/* cluster_open opens the membership's own store handle (one connection:
 * membership.c says why) and starts it. */
static gw_err cluster_open(gw_cluster **out, const gw_config *cfg, cluster_ctx *cx)
{
	char serr[512] = "";
	gw_store_opts so = {.keys = cfg->keys,
	                    .err = serr,
	                    .errlen = sizeof serr,
	                    .pool_size = 1,
	                    .idle_tx_timeout_ms = (int)gw_cluster_fence_after_ms(
	                        cfg->heartbeat_ms, cfg->member_timeout_ms),
	                    /* Back within a heartbeat or two of the
	                     * database's return after a cut, not after TCP's
	                     * retransmission backoff (store.h). */
	                    .net_timeout_ms = (int)gw_cluster_fence_after_ms(
	                        cfg->heartbeat_ms, cfg->member_timeout_ms)};
	gw_store *ms = NULL;
	gw_err err = gw_store_open(&ms, cfg->statestore, &so);
	if (err) {
		GW_ERROR("cluster: statestore: %s", serr[0] ? serr : gw_strerror(err));
		return err;
	}
	if (!gw_store_cluster_ok(ms)) {
		GW_ERROR("--advertise: " GW_STORE_CLUSTER_NEEDS);
		gw_store_close(ms);
		return GW_ECONFIG;
	}
	gw_cluster_opts co = {
	    .advertise = cfg->advertise,
	    .heartbeat_ms = cfg->heartbeat_ms,
	    .member_timeout_ms = cfg->member_timeout_ms,
	    .served = cluster_served,
	    .probe = cluster_probe,
	    .on_view = cluster_view,
	    .on_joined = cluster_joined,
	    .on_fenced = cluster_fenced,
	    .user = cx,
	};
	if ((err = gw_cluster_create(out, ms, &co))) {
		gw_store_close(ms);
		return err;
	}
	GW_INFO("cluster: advertising %s, heartbeat %lld ms, member timeout %lld ms, fences "
	        "itself %lld ms after its last heartbeat",
	        cfg->advertise, (long long)cfg->heartbeat_ms, (long long)cfg->member_timeout_ms,
	        (long long)gw_cluster_fence_after_ms(cfg->heartbeat_ms, cfg->member_timeout_ms));
	return gw_cluster_start(*out);
}

/* shutdown_drain waits up to ms for the persist thread to finish what it
 * is doing (saves the flush started, their callbacks) while every actor is
 * still alive. false: it is still inside a store call (a database that
 * does not answer): the caller must exit at once, with _exit, freeing
 * nothing: the runtime, the persist and the store stay in use by that
 * thread, and the state it was saving is named in the log. */
static bool shutdown_drain(gw_runtime *rt, gw_persist *persist, int64_t ms)
{
	if (!persist || gw_persist_drain(persist, ms))
		return true;
	GW_ERROR("shutdown: the statestore thread is still inside a call after %lld ms "
	         "(--persist-drain); exiting now without freeing what it uses",
	         (long long)ms);
	gw_runtime_report_unsaved(rt, true);
	fflush(stdout);
	fflush(stderr);
	return false;
}

/* hash_token prints the policy hash of the token read on stdin (one line;
 * its newline is not part of it). The token itself is never printed. */
static int hash_token(void)
{
	char tok[4097];
	size_t n = fread(tok, 1, sizeof tok, stdin);
	if (n == sizeof tok) {
		fprintf(stderr,
		        "spawn-gateway: --hash-token: the token is longer than 4096 bytes\n");
		return 2;
	}
	if (n && tok[n - 1] == '\n')
		n--;
	if (n && tok[n - 1] == '\r')
		n--;
	char h[GW_TOKEN_HASH_LEN + 1];
	bool ok = n > 0 && memchr(tok, '\n', n) == NULL && gw_token_hash(tok, n, h);
	memset(tok, 0, sizeof tok);
	if (!ok) {
		fprintf(stderr, "spawn-gateway: --hash-token: give one non-empty token on stdin\n");
		return 2;
	}
	printf("%s\n", h);
	return 0;
}

/* warn_exposure: with --insecure, every listener the safe-by-default rule
 * would have refused is named at start-up (docs/security.md). */
static void warn_exposure(const gw_config *c)
{
	if (!c->insecure || (c->tls_cert && c->access))
		return;
	const char *const *lists[4] = {c->listen, c->host_listen, c->admin_listen, c->peer_listen};
	const size_t ns[4] = {c->n_listen, c->n_host_listen, c->n_admin_listen, c->n_peer_listen};
	for (int k = 0; k < 4; k++)
		for (size_t i = 0; i < ns[k]; i++)
			if (!gw_config_addr_is_local(lists[k][i]))
				GW_WARN("--insecure: %s is served %s: anyone who reaches it can "
				        "register hosts, invoke any actor and use Admin",
				        lists[k][i],
				        c->tls_cert ? "with TLS but without an access policy"
				                    : "in plaintext without authentication");
	if (c->http && !gw_config_addr_is_local(c->http))
		GW_WARN("--insecure: --http %s is served %s", c->http,
		        c->access ? "in plaintext: bearer tokens cross the network readable"
		        : c->tls_cert
		            ? "over HTTPS without an access policy: anyone who reaches it "
		              "can invoke any actor and use Spawn's HTTP API"
		            : "in plaintext without authentication: anyone who reaches it "
		              "can invoke any actor and use Spawn's HTTP API");
}

/* read_pem reads a whole PEM file (NULL path: NULL). Caller frees. */
static char *read_pem(const char *path)
{
	if (!path)
		return NULL;
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while (m && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		fwrite(chunk, 1, n, m);
	if (m)
		fclose(m);
	fclose(f);
	return buf;
}

/* The longest peer token read from --peer-token-file. */
#define PEER_TOKEN_MAX 4096

/* read_peer_token reads the first line of path (its newline, and a \r
 * before it, are not part of the token) into a new buffer (*out; the
 * caller zeroes and frees it). The token goes into a header value: 1 to
 * PEER_TOKEN_MAX visible ASCII characters. Messages never show the token. */
static bool read_peer_token(const char *path, char **out, char *why, size_t n)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, n, "--peer-token-file %s: cannot open: %s", path, strerror(errno));
		return false;
	}
	char *buf = calloc(1, PEER_TOKEN_MAX + 2);
	bool ok = buf && fgets(buf, PEER_TOKEN_MAX + 2, f);
	fclose(f);
	size_t len = ok ? strcspn(buf, "\r\n") : 0;
	ok = ok && len > 0 && len <= PEER_TOKEN_MAX && (buf[len] || strlen(buf) <= PEER_TOKEN_MAX);
	for (size_t i = 0; ok && i < len; i++)
		ok = buf[i] > 0x20 && buf[i] < 0x7f;
	if (!ok) {
		if (buf)
			explicit_bzero(buf, PEER_TOKEN_MAX + 2);
		free(buf);
		snprintf(why, n,
		         "--peer-token-file %s: the first line must be the token: 1 to %d "
		         "visible ASCII characters",
		         path, PEER_TOKEN_MAX);
		return false;
	}
	buf[len] = 0;
	*out = buf;
	return true;
}

/* own_peer checks that the credential this member presents to its peers
 * (its token when given, else its TLS certificate) names a principal with
 * peer: true in the policy a: the members of a cluster share one policy,
 * so a member that is not a peer in its own is refused by every other.
 * Returns true, or false with why naming what to fix (never the token). */
static bool own_peer(gw_access *a, const char *token, const char *cert_path, char *why, size_t n)
{
	const gw_policy *p = gw_access_read(a);
	const gw_principal *pr = NULL;
	const char *what =
	    token ? "the token of --peer-token-file" : "the certificate of --tls-cert";
	bool ok = false;
	if (token) {
		pr = gw_policy_by_token(p, token, strlen(token));
	} else {
		char *pem = read_pem(cert_path);
		if (!pem || gw_policy_by_cert_pem(p, pem, &pr) == GW_EINVAL)
			snprintf(why, n, "cannot read the certificate %s", cert_path);
		free(pem);
	}
	if (!pr && !why[0])
		snprintf(why, n,
		         "%s is no principal of the access policy %s: this member's calls to "
		         "its peers would be refused (add its identity or token hash to a "
		         "principal with peer: true)",
		         what, gw_access_path(a));
	else if (pr && !gw_principal_peer(pr))
		snprintf(why, n,
		         "%s is principal '%s' of the access policy %s, which is not a peer: "
		         "this member's calls to its peers would be refused (add peer: true)",
		         what, gw_principal_name(pr), gw_access_path(a));
	else if (pr)
		ok = true;
	gw_access_done(a);
	return ok;
}

/* cluster_start makes the peers (with TLS: the server's own certificate as
 * the client certificate, the client CA as the trust anchor; with a peer
 * token: the token on every call) and the router, and installs the router
 * in the runtime. With --access, this member's own credential must be a
 * peer of the policy. */
static bool peer_pems(void *user, uint64_t *gen, char **ca, char **cert, char **key)
{
	return gw_tls_pems_since(user, gen, ca, cert, key);
}

static gw_err cluster_start(const gw_config *c, const gw_config *pems, gw_tls *tls,
                            gw_access *access, const char *peer_token, gw_runtime *rt,
                            gw_registry *reg, gw_peers **peers, gw_router **router, char *why,
                            size_t n)
{
	if (c->n_peer_listen && !c->cluster_test_view && !c->advertise) {
		snprintf(why, n,
		         "--peer-listen serves the cluster's Peer service: it needs "
		         "cluster mode");
		return GW_ECONFIG;
	}
	if (access) {
		/* The owner trusts a peer's word for the caller's principal, so
		 * the Peer service is for principals with peer: true only. */
		if (!peer_token && !pems->tls_cert) {
			snprintf(why, n,
			         "cluster mode with --access needs a credential for the calls "
			         "to peers: --peer-token-file FILE (the token of a principal "
			         "with peer: true), or TLS (--tls-cert, --tls-key, "
			         "--tls-client-ca: the member's certificate)");
			return GW_ECONFIG;
		}
		why[0] = 0;
		if (!own_peer(access, peer_token, pems->tls_cert, why, n))
			return GW_ECONFIG;
	}
	/* The PEM texts the server's TLS checked (cert, key and CA together),
	 * and from then on as they change on disk (gw_tls_pems_since). */
	char *ca = NULL, *cert = NULL, *key = NULL;
	uint64_t gen = 0;
	if (pems->tls_cert) {
		if (!pems->tls_client_ca || !tls ||
		    !gw_tls_pems_since(tls, &gen, &ca, &cert, &key)) {
			snprintf(why, n,
			         "cluster mode with TLS needs --tls-client-ca (the peers' trust "
			         "anchor) and a readable --tls-cert and --tls-key");
			return GW_ECONFIG;
		}
	}
	gw_peers_opts po = {.ca_pem = ca,
	                    .cert_pem = cert,
	                    .key_pem = key,
	                    .server_name = c->peer_tls_server_name,
	                    .token = peer_token,
	                    .max_message_bytes = c->max_message_bytes,
	                    .pems = ca ? peer_pems : NULL,
	                    .pems_free = gw_tls_pems_free,
	                    .pems_user = tls,
	                    .pems_gen = gen};
	gw_err err = gw_peers_create(peers, &po);
	if (ca)
		gw_tls_pems_free(ca, cert, key);
	if (err) {
		snprintf(why, n, "cannot set up the peer channels: %s", gw_strerror(err));
		return err;
	}
	gw_router_opts ro = {.rt = rt, .reg = reg, .peers = *peers};
	if ((err = gw_router_create(router, &ro))) {
		snprintf(why, n, "cannot start the router: %s", gw_strerror(err));
		return err;
	}
	gw_runtime_set_router(rt, &gw_router_ops_v1, *router);
	return GW_OK;
}

/* load_test_view feeds the --cluster-test-view file to the router as the
 * membership's on_view would (and to the metrics, expose may be NULL);
 * stdout says "view N" once it is applied. */
static void load_test_view(const char *path, gw_router *router, bool must, gw_expose *expose)
{
	gw_view *v = NULL;
	char why[600];
	if (gw_view_file_load(path, &v, why, sizeof why) != GW_OK) {
		if (must)
			GW_ERROR("--cluster-test-view: %s", why);
		return;
	}
	gw_router_on_view(router, v);
	view_metrics(expose, v);
	printf("view %llu\n", (unsigned long long)v->version);
	fflush(stdout);
	gw_view_file_free(v);
}

static bool http_ready(void *user)
{
	return gw_server_unready(user) == 0;
}

/* http_start serves Spawn's HTTP API on --http (docs/protocol.md): the
 * listener, the client calling hosts back, and the routes. */
/* otlp_start starts the span exporter of --otlp-endpoint and hands it to
 * the runtime (docs/observability.md). */
static gw_err otlp_start(const gw_config *c, gw_runtime *rt, gw_otlp **out)
{
	char why[400] = "", shown[300];
	gw_otlp_opts o = {.endpoint = c->otlp_endpoint, .queue_max = (size_t)c->otlp_queue};
	gw_err err = gw_otlp_create(out, &o, why, sizeof why);
	gw_redact_url(c->otlp_endpoint, shown, sizeof shown);
	if (err) {
		if (err == GW_ECONFIG) /* why quotes the URL: say it again, redacted */
			snprintf(why, sizeof why,
			         "--otlp-endpoint: '%s' is not an http:// or "
			         "https:// URL",
			         shown);
		GW_ERROR("tracing: %s", why[0] ? why : gw_strerror(err));
		return err;
	}
	gw_runtime_set_otlp(rt, *out);
	GW_INFO("tracing: spans exported with OTLP/HTTP to %s", shown);
	return GW_OK;
}

static gw_err http_start(const gw_config *c, gw_runtime *rt, gw_registry *reg, gw_server *srv,
                         gw_contracts *contracts, gw_http **http, gw_hhosts **hh, gw_spawnapi **api,
                         gw_jsonapi **json, const gw_expose_opts *xo, gw_expose **ex)
{
	char why[512] = "";
	gw_hhosts_opts ho = {.max_tasks = c->spawn_host_tasks,
	                     .max_reply_bytes = (size_t)c->max_message_bytes,
	                     .grace_ms = c->host_grace_ms,
	                     .limits = c->limits};
	gw_err err = gw_hhosts_create(hh, &ho, rt);
	if (err) {
		GW_ERROR("--http: cannot start the HTTP client for Spawn hosts: %s",
		         gw_strerror(err));
		return err;
	}
	/* HTTPS with the gateway's certificate files, reloaded as they change
	 * (docs/http-json.md). */
	gw_http_opts o = {.addr = c->http,
	                  .max_body = (size_t)c->http_max_body,
	                  .max_conns = c->http_max_conns,
	                  .max_pending = c->http_max_pending,
	                  .tls_cert_file = c->tls_cert,
	                  .tls_key_file = c->tls_key};
	if ((err = gw_http_create(http, &o, why, sizeof why))) {
		GW_ERROR("%s", why[0] ? why : gw_strerror(err));
		return err;
	}
	gw_spawnapi_opts so = {.host_url = c->spawn_host_url,
	                       .host_port = c->spawn_host_port,
	                       .limits = c->limits,
	                       .ready = http_ready,
	                       .ready_user = srv,
	                       .health_only = c->access != NULL};
	gw_jsonapi_opts jo = {.limits = c->limits, .policy = c->access != NULL};
	gw_expose_opts eo = *xo;
	eo.hhosts = *hh; /* the HTTP hosts are made here */
	if ((err = gw_spawnapi_create(api, &so, *http, rt, reg, *hh)) ||
	    (err = gw_jsonapi_create(json, &jo, *http, srv, rt, reg, contracts, why, sizeof why)) ||
	    (err = gw_expose_create(ex, &eo, *http)) ||
	    (err = gw_http_start(*http, why, sizeof why))) {
		GW_ERROR("%s", why[0] ? why : gw_strerror(err));
		return err;
	}
	GW_INFO("HTTP%s on %s (port %d): JSON routes%s; hosts called back at %s",
	        c->tls_cert ? "S" : "", c->http, gw_http_port(*http),
	        c->access ? " with bearer tokens (Spawn's API off: --access)" : ", Spawn's API",
	        c->spawn_host_url ? c->spawn_host_url : "the registering peer's address");
	return GW_OK;
}

/* http_stop is the first phase of the HTTP side's shutdown: new requests
 * are refused 503, those in progress get up to wait_ms, the HTTP hosts are
 * unbound and the calls in flight to them end (abandoned: UNAVAILABLE).
 * Idempotent; accepts NULLs. */
static void http_stop(gw_http *http, gw_spawnapi *api, gw_hhosts *hh, int64_t wait_ms)
{
	size_t left = gw_http_drain(http, wait_ms);
	if (left && wait_ms)
		GW_WARN("shutdown: %zu Spawn HTTP requests still in progress", left);
	gw_spawnapi_unbind(api);
	gw_hhosts_stop(hh);
	if (http && wait_ms) {
		gw_http_stats hs;
		gw_hhosts_stats cs;
		gw_http_get_stats(http, &hs);
		gw_hhosts_get_stats(hh, &cs);
		GW_INFO("Spawn HTTP: %llu requests, %llu refused (413/503), %llu without a route; "
		        "host calls: %llu, %llu answered, %llu host errors, %llu failed, %llu "
		        "refused (--spawn-host-tasks)",
		        (unsigned long long)hs.requests, (unsigned long long)hs.refused,
		        (unsigned long long)hs.not_found, (unsigned long long)cs.calls,
		        (unsigned long long)cs.ok, (unsigned long long)cs.host_errors,
		        (unsigned long long)cs.failed, (unsigned long long)cs.refused_full);
	}
}

/* A fatal signal (an assertion of a library, a crash) prints where it
 * happened on stderr before the process dies of it, so a crash in the
 * field or in CI leaves a trace: "spawn-gateway: fatal signal N" and the
 * frames (binary(+offset): addr2line -e spawn-gateway resolves them). Only
 * async-signal-safe calls in the handler: backtrace() was called once at
 * start-up, so its library is loaded. The signal then takes its default
 * action (SA_RESETHAND), core dump included. Under AddressSanitizer the
 * sanitizer keeps its own SIGSEGV/SIGBUS/SIGFPE reports. */
static void fatal_trace(int sig)
{
	char head[64];
	int n = snprintf(head, sizeof head, "spawn-gateway: fatal signal %d; backtrace:\n", sig);
	ssize_t w = write(STDERR_FILENO, head, (size_t)n);
	(void)w;
	void *frames[64];
	int depth = backtrace(frames, 64);
	backtrace_symbols_fd(frames, depth, STDERR_FILENO);
	raise(sig);
}

static void fatal_signals_trace(void)
{
	void *warm[1];
	(void)backtrace(warm, 1);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fatal_trace;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGABRT, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
#if !defined(__SANITIZE_ADDRESS__)
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
#endif
}

int main(int argc, char **argv)
{
	gw_config cfg;
	char why[1024] = "";
	gw_err err = gw_config_parse(&cfg, argc, argv, why, sizeof why);
	if (err == GW_ENOTFOUND)
		return 0;
	if (err) {
		fprintf(stderr, "spawn-gateway: %s\n", why);
		return 2;
	}
	if (cfg.hash_token)
		return hash_token();
	gw_log_set_level((gw_log_level)cfg.log_level);
	gw_log_set_format((gw_log_format)cfg.log_format);
	gw_log_set_rate(cfg.log_burst, cfg.log_interval_ms);
	warn_exposure(&cfg);
	/* The TLS files are checked before anything else starts. */
	gw_tls *tls = NULL;
	if (cfg.tls_cert) {
		gw_tls_opts to = {
		    .cert = cfg.tls_cert, .key = cfg.tls_key, .client_ca = cfg.tls_client_ca};
		if ((err = gw_tls_create(&tls, &to, why, sizeof why))) {
			fprintf(stderr, "spawn-gateway: %s\n", why[0] ? why : gw_strerror(err));
			return 2;
		}
	}

	/* Signals are taken by sigwait below; every thread inherits the mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP); /* reloads the access policy */
	if (cfg.cluster_test_view)
		sigaddset(&sigs, SIGUSR1); /* reads the test view again */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	fatal_signals_trace();

	int rc = 1;
	gw_store *store = NULL;
	gw_persist *persist = NULL;
	gw_registry *reg = NULL;
	gw_runtime *rt = NULL;
	gw_otlp *otlp = NULL; /* span export (--otlp-endpoint); freed after the runtime */
	gw_server *srv = NULL;
	gw_access *access = NULL;
	gw_contracts *contracts = NULL;
	gw_cluster *cluster = NULL;
	cluster_ctx cx = {.open = false};
	pthread_rwlock_init(&cx.lock, NULL);
	gw_peers *peers = NULL;
	gw_router *router = NULL;
	gw_cshare *cshare = NULL; /* with a membership: contracts across the cluster */
	gw_http *http = NULL;     /* --http: Spawn's HTTP API */
	gw_hhosts *hhosts = NULL; /* hosts called back over HTTP */
	gw_spawnapi *spawnapi = NULL;
	gw_jsonapi *jsonapi = NULL; /* --http: the JSON routes */
	gw_gm *gm = NULL;           /* --metrics on with --http: what the gateway records */
	gw_expose *expose = NULL;   /* /metrics, /healthz, /readyz on --http */
	const gw_config *tls_pems = &cfg;
	if (cfg.access && gw_access_open(&access, cfg.access, why, sizeof why)) {
		fprintf(stderr, "spawn-gateway: --access %s\n", why);
		gw_tls_destroy(tls);
		return 2;
	}
	/* The bearer token of this member's calls to its peers: zeroed and
	 * freed at exit, never logged. */
	char *peer_token = NULL;
	if (cfg.peer_token_file &&
	    !read_peer_token(cfg.peer_token_file, &peer_token, why, sizeof why)) {
		fprintf(stderr, "spawn-gateway: %s\n", why);
		gw_access_close(access);
		gw_tls_destroy(tls);
		return 2;
	}
	gw_contracts_opts co = {.max_set_bytes = cfg.max_contract_bytes};
	if (gw_contracts_create(&contracts, &co) != GW_OK) {
		fprintf(stderr, "spawn-gateway: the built-in descriptors do not load\n");
		gw_access_close(access);
		if (peer_token) {
			explicit_bzero(peer_token, strlen(peer_token));
			free(peer_token);
		}
		gw_tls_destroy(tls);
		return 2;
	}
	if (cfg.descriptors &&
	    gw_contracts_load_dir(contracts, cfg.descriptors, why, sizeof why) != GW_OK) {
		fprintf(stderr, "spawn-gateway: %s\n", why);
		gw_contracts_destroy(contracts);
		if (peer_token) {
			explicit_bzero(peer_token, strlen(peer_token));
			free(peer_token);
		}
		gw_access_close(access);
		gw_tls_destroy(tls);
		return 2;
	}
	spawn_absl_deadlock_detection_off(); /* proto/absl_tune.c, before grpc_init */
	grpc_init();

	char serr[512] = "";
	gw_store_opts so = {.keys = cfg.keys,
	                    .err = serr,
	                    .errlen = sizeof serr,
	                    .pool_size = cfg.store_pool,
	                    .history = cfg.store_history,
	                    /* A member cut off mid-transaction frees its rows
	                     * by the time it has fenced itself (store.h). */
	                    .idle_tx_timeout_ms = cfg.advertise
	                                              ? (int)gw_cluster_fence_after_ms(
	                                                    cfg.heartbeat_ms, cfg.member_timeout_ms)
	                                              : 0};
	/* The URL as logs may show it: never with its password. */
	char store_shown[512];
	gw_redact_url(cfg.statestore, store_shown, sizeof store_shown);
	err = gw_store_open(&store, cfg.statestore, &so);
	if (err) {
		GW_ERROR("statestore %s: %s%s", store_shown, serr[0] ? serr : gw_strerror(err),
		         err == GW_ECRYPTO && cfg.keys ? " (wrong SPAWN_STATESTORE_KEY?)" : "");
		rc = 2;
		goto out;
	}
	/* Cluster mode routes each call to its actor's owner, with --access
	 * too: the peers are principals of the policy (peer: true), and the
	 * owner trusts their word for a call's principal. */
	bool routing = cfg.cluster_test_view || cfg.n_peer_listen || cfg.advertise;
	/* With a membership and routing, every activation holds the actor's
	 * lease: no second live activation anywhere (docs/design/cluster.md,
	 * "The activation lease"). */
	gw_persist_opts po = {.max_batch = cfg.save_batch,
	                      .rotate = cfg.rotate_keys,
	                      .lease = cfg.advertise && routing && gw_store_lease_ok(store)};
	gw_registry_opts rgo = {.timer_floor_ms = cfg.timer_floor_ms,
	                        .grace_ms = cfg.type_grace_ms};
	if ((err = gw_persist_create(&persist, store, &po)) ||
	    (err = gw_registry_create(&reg, &rgo)))
		goto fail;
	if (cfg.http && cfg.metrics && !(gm = gw_gm_create())) {
		err = GW_ENOMEM;
		goto fail;
	}
	gw_persist_set_metrics(persist, gm);
	gw_runtime_opts ro = {
	    .shards = cfg.shards,
	    .mailbox_max = cfg.mailbox_max,
	    .mailbox_bytes = (size_t)cfg.mailbox_bytes,
	    .queued_bytes = (size_t)cfg.queued_bytes,
	    .deactivate_ms = cfg.deactivate_ms,
	    .snapshot_ms = cfg.snapshot_ms,
	    .host_timeout_ms = cfg.host_timeout_ms,
	    .host_grace_ms = cfg.host_grace_ms,
	    .registration_grace_ms = cfg.registration_grace_ms,
	    .max_effects_per_turn = cfg.max_effects_per_turn,
	    .max_outbox_bytes = cfg.max_outbox_bytes,
	    .max_effects_in_flight = cfg.max_effects_in_flight,
	    .max_state_bytes = cfg.max_state_bytes,
	    .max_message_bytes = (size_t)cfg.max_message_bytes,
	    .max_instances = cfg.max_instances,
	    .max_schedules = cfg.max_schedules,
	    .max_schedule_ahead_ms = cfg.max_schedule_ahead_ms,
	};
	if ((err = gw_runtime_create(&rt, &ro, reg, persist)))
		goto fail;
	gw_runtime_set_metrics(rt, gm);
	if (cfg.otlp_endpoint && (err = otlp_start(&cfg, rt, &otlp)))
		goto fail;
	/* The quotas per system start from what the store holds. */
	if ((err = gw_runtime_load_quotas(rt))) {
		GW_ERROR("statestore: cannot count the stored instances and schedules");
		goto fail;
	}
	/* Scheduled invocations: claimed under this gateway's id, with a lease
	 * longer than any invocation may take. */
	char owner[128], host[64] = "gateway";
	gethostname(host, sizeof host - 1);
	snprintf(owner, sizeof owner, "%s:%ld:%lld", host, (long)getpid(),
	         (long long)spawn_wall_ms());
	gw_runtime_start_scheduler(rt, owner, cfg.host_timeout_ms + 30000);
	/* Effects a crash left undelivered go out once their actors' hosts
	 * are back. In a cluster the router starts that recovery with the
	 * first view holding this member, and each member wakes only the
	 * actors it owns (docs/design/cluster.md, "Outbox recovery"). */
	if (!routing && (err = gw_runtime_recover_effects(rt)))
		goto fail;
	/* Cluster mode: the peers, the router (installed in the runtime before
	 * the first call can arrive), and the view (docs/design/cluster.md). */
	if (routing) {
		if ((err = cluster_start(&cfg, tls_pems, tls, access, peer_token, rt, reg, &peers,
		                         &router, why, sizeof why))) {
			GW_ERROR("%s", why);
			rc = 2;
			goto out;
		}
		load_test_view(cfg.cluster_test_view, router, false, NULL);
		gw_cshare_opts cso = {.contracts = contracts, .peers = peers};
		if (cfg.advertise && (err = gw_cshare_create(&cshare, &cso)))
			goto fail;
	}
	gw_server_opts sv = {
	    .listen = cfg.listen,
	    .n_listen = cfg.n_listen,
	    .host_listen = cfg.host_listen,
	    .n_host_listen = cfg.n_host_listen,
	    .admin_listen = cfg.admin_listen,
	    .n_admin_listen = cfg.n_admin_listen,
	    .peer_listen = cfg.peer_listen,
	    .n_peer_listen = cfg.n_peer_listen,
	    .health_listen = cfg.health_listen,
	    .n_health_listen = cfg.n_health_listen,
	    .threads = cfg.threads,
	    .max_message_bytes = cfg.max_message_bytes,
	    .drain_ms = cfg.drain_ms,
	    /* Peers read the view at each heartbeat: one period, and a margin for
	     * the read itself. */
	    .leave_ms = cfg.advertise ? cfg.heartbeat_ms + 250 : 0,
	    .limits = cfg.limits,
	    .host_queue_bytes = (size_t)cfg.host_queue_bytes,
	    .host_stall_ms = cfg.host_stall_ms,
	    .host_batch = (uint32_t)cfg.host_batch,
	    .host_batch_bytes = (size_t)cfg.host_batch_bytes,
	    .access = access,
	    .tls = tls,
	    .contracts = contracts,
	    .router = router,
	    .peers = peers,
	    .cshare = cshare,
	};
	if ((err = gw_server_create(&srv, &sv, rt, reg, why, sizeof why))) {
		GW_ERROR("%s", why[0] ? why : gw_strerror(err));
		rc = 2;
		goto out;
	}
	/* In cluster mode, ready once this member is ACTIVE in the view. */
	if (cfg.advertise)
		gw_server_set_unready(srv, GW_UNREADY_MEMBERSHIP, true);
	if ((err = gw_server_start(srv)))
		goto fail;
	gw_expose_opts xo = {.gm = gm,
	                     .srv = srv,
	                     .rt = rt,
	                     .persist = persist,
	                     .router = router,
	                     .tls = tls,
	                     .otlp = otlp};
	if (cfg.http && (err = http_start(&cfg, rt, reg, srv, contracts, &http, &hhosts, &spawnapi,
	                                  &jsonapi, &xo, &expose))) {
		rc = 2;
		goto out;
	}
	/* Without --http readiness (the gRPC health service) follows the
	 * statestore too: the same check, no routes. */
	if (!cfg.http && (err = gw_expose_create(&expose, &xo, NULL))) {
		GW_ERROR("readiness: cannot start the statestore check: %s", gw_strerror(err));
		rc = 2;
		goto out;
	}
	/* Start-up is complete: the statestore is open, the effects of a
	 * crash are recovered and every listener is up. Health says SERVING
	 * from here (unless another condition holds it back: server.h). */
	gw_server_set_unready(srv, GW_UNREADY_STARTING, false);
	for (size_t i = 0; i < gw_server_listeners(srv); i++)
		printf("listening %s %d\n", gw_server_address(srv, i), gw_server_port(srv, i));
	if (http)
		printf("listening http%s://%s %d\n", cfg.tls_cert ? "s" : "", gw_http_addr(http),
		       gw_http_port(http));
	fflush(stdout);
	GW_INFO("spawn-gateway ready: statestore %s (%s)", store_shown, gw_store_scheme(store));
	cx.reg = reg;
	cx.srv = srv;
	cx.router = router;
	cx.peers = peers;
	cx.persist = persist;
	cx.expose = expose;
	cx.cshare = cshare;
	cx.open = true;
	if (cfg.advertise && (err = cluster_open(&cluster, &cfg, &cx))) {
		rc = 2;
		goto out;
	}
	if (access) {
		size_t n = gw_policy_count(gw_access_read(access));
		gw_access_done(access);
		GW_INFO("access policy %s: %zu principals", cfg.access, n);
	}

	int sig = 0;
	while (sigwait(&sigs, &sig) == 0 && (sig == SIGHUP || sig == SIGUSR1)) {
		if (sig == SIGUSR1) {
			load_test_view(cfg.cluster_test_view, router, true, expose);
			continue;
		}
		/* Like "listening", stdout says when a reload is done (tests and
		 * scripts wait for it): "access reloaded N" or "access not
		 * reloaded". */
		size_t n = 0;
		/* The peer token first, so the check of this member's own
		 * credential after the policy's reload sees the new one. */
		char *tok = NULL;
		if (peers && cfg.peer_token_file) {
			if (!read_peer_token(cfg.peer_token_file, &tok, why, sizeof why)) {
				GW_ERROR(
				    "the peer token was NOT reloaded, the previous one stays: %s",
				    why);
			} else {
				gw_peers_set_token(peers, tok);
				explicit_bzero(peer_token, strlen(peer_token));
				free(peer_token);
				peer_token = tok;
				GW_INFO("peer token reloaded from %s", cfg.peer_token_file);
			}
		}
		if (!access) {
			GW_WARN("SIGHUP: no --access policy to reload");
		} else if (gw_access_reload(access, &n, why, sizeof why) != GW_OK) {
			GW_ERROR("access policy NOT reloaded, the previous one stays: %s", why);
			printf("access not reloaded\n");
		} else {
			size_t gone = gw_server_access_reloaded(srv);
			GW_INFO("access policy reloaded from %s: %zu principals, %zu hosts "
			        "disconnected",
			        cfg.access, n, gone);
			why[0] = 0;
			if (router && !own_peer(access, peer_token, cfg.tls_cert, why, sizeof why))
				GW_ERROR("cluster: after the reload, %s", why);
			printf("access reloaded %zu\n", n);
		}
		fflush(stdout);
	}
	GW_INFO("signal %d: draining calls and saving state", sig);
	/* Readiness goes first, before anything else stops: Health answers
	 * NOT_SERVING from now on, so probes and load balancers take this
	 * gateway out while it drains. */
	gw_server_set_unready(srv, GW_UNREADY_DRAINING, true);
	/* The peers see this member LEAVING before it stops serving; its row
	 * goes when it exits (gw_cluster_destroy). */
	if (cluster && !gw_cluster_leave(cluster, cfg.member_timeout_ms))
		GW_WARN("cluster: LEAVING could not be written; the peers will declare this "
		        "member dead");
	/* Shutdown in two phases (docs/design/threading.md): stop what
	 * produces work, drain while what the work points at is alive, then
	 * free. */
	gw_http_drain(http, 0);  /* Spawn's HTTP API refuses new requests from now on too */
	gw_server_shutdown(srv); /* listeners, client calls, host streams */
	http_stop(http, spawnapi, hhosts, cfg.drain_ms); /* HTTP requests still in progress */
	cluster_ctx_close(&cx);  /* the membership goes on, without router and peers */
	gw_router_stop(router);  /* calls waiting for a view fail */
	gw_peers_destroy(peers); /* forwards in flight end */
	peers = NULL;
	gw_runtime_stop(rt); /* timers, the scheduler */
	err = gw_runtime_flush(rt, cfg.flush_timeout_ms);
	if (err) {
		GW_ERROR("shutdown: not every actor state could be saved within %lld ms "
		         "(--flush-timeout): %s",
		         (long long)cfg.flush_timeout_ms, gw_strerror(err));
		gw_runtime_report_unsaved(rt, true);
	}
	if (!shutdown_drain(rt, persist, cfg.persist_drain_ms))
		_exit(1); /* see shutdown_drain */
	if (err) {
		/* The statestore may have taken the saves while it drained. */
		size_t left = gw_runtime_report_unsaved(rt, true);
		if (!left)
			GW_INFO("shutdown: every actor state saved after all (late)");
		rc = left ? 1 : 0;
	} else {
		GW_INFO("shutdown: every actor state saved");
		rc = 0;
	}
	goto out;
fail:
	GW_ERROR("start-up failed: %s", gw_strerror(err));
out:
	/* The membership first: its callbacks set the server's readiness
	 * (cluster_ctx), so its threads end before the server is freed. Its
	 * row goes now; the saves of the shutdown are done by here. */
	gw_cluster_destroy(cluster);
	cluster = NULL;
	http_stop(http, spawnapi, hhosts, 0); /* no handler reaches the runtime from here on */
	gw_expose_stop(expose);               /* no store check reaches the server any more */
	gw_server_shutdown(srv);              /* (done already after a signal) */
	cluster_ctx_close(&cx);
	gw_router_stop(router);
	gw_peers_destroy(peers);
	if (rt) {
		gw_runtime_stop(rt);
		if (!shutdown_drain(rt, persist, cfg.persist_drain_ms))
			_exit(rc ? rc : 1);
	}
	gw_persist_stop(persist); /* no callback into the runtime from here on */
	/* Calls still queued (a lease wait, a handoff's retry: no timer moves
	 * them now) are answered while the server's completion queues are
	 * open: a reply after they are shut down aborts in gRPC (call.cc,
	 * grpc_cq_begin_op). Then the server goes. */
	if (rt) {
		size_t k = gw_runtime_fail_queued(rt);
		if (k)
			GW_INFO("shutdown: %zu calls still queued answered UNAVAILABLE (not "
			        "dispatched)",
			        k);
	}
	gw_server_destroy(srv);
	gw_cshare_destroy(cshare); /* after the peers (answers ran) and the server */
	gw_tls_destroy(tls);       /* after the server: its listeners' credentials point to it */
	gw_runtime_destroy(rt);
	gw_otlp_destroy(otlp); /* every invocation is freed: its spans are queued */
	gw_router_destroy(router);
	gw_persist_destroy(persist);
	pthread_rwlock_destroy(&cx.lock);
	gw_registry_destroy(reg);
	/* After the registry: its bindings held the HTTP hosts. */
	gw_http_destroy(http);
	gw_spawnapi_destroy(spawnapi);
	gw_jsonapi_destroy(jsonapi); /* no host adds contracts any more */
	gw_hhosts_destroy(hhosts);
	gw_expose_destroy(expose); /* after the listener and the persist thread */
	gw_gm_destroy(gm);         /* after everything that records or scrapes */
	gw_store_close(store);
	gw_access_close(access);
	gw_contracts_destroy(contracts);
	if (peer_token) {
		explicit_bzero(peer_token, strlen(peer_token));
		free(peer_token);
	}
	grpc_shutdown();
	gw_log_flush();
	return rc;
}
