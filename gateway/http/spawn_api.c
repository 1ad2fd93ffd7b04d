/* spawn_api.c - Spawn's HTTP/1.1 API (see spawn_api.h).
 *
 * Each handler runs on the HTTP listener's thread: it parses and checks the
 * body once (protobuf-c, then wirecheck: STYLE 12), hands the work to the
 * runtime and answers from the runtime's completion, on whatever thread
 * that runs. Nothing here blocks. */
#include "spawn_api.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "log.h"
#include "persist.h"
#include "trace.h"
#include "wire.h"

#define PB_TYPE "application/octet-stream"

/* One registered system and the target its actors are bound to. */
typedef struct sysent {
	char *name;      /* owned */
	gw_host *target; /* a reference */
	struct sysent *next;
} sysent;

struct gw_spawnapi {
	gw_spawnapi_opts o;
	char *host_url;   /* owned copy of o.host_url */
	gw_http *http;    /* borrowed */
	gw_runtime *rt;   /* borrowed */
	gw_registry *reg; /* borrowed */
	gw_hhosts *hh;    /* borrowed */
	pthread_mutex_t mu;
	sysent *systems; /* mu */
};

/* ---- answers -------------------------------------------------------------------- */

static void reply_pb(gw_http_req *req, int status, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		gw_http_reply(req, 500, NULL, NULL, 0);
		return;
	}
	protobuf_c_message_pack(m, buf);
	gw_http_reply(req, status, PB_TYPE, buf, n);
	free(buf);
}

/* Spawn's error shape for each route: its response message with status
 * ERROR (or ACTOR_NOT_FOUND) and a message. */
enum { K_REGISTER, K_SPAWN, K_INVOKE };

static void reply_error(gw_http_req *req, int kind, int http, int spawn_status, const char *msg)
{
	Spawn__RequestStatus st = SPAWN__REQUEST_STATUS__INIT;
	st.status = spawn_status;
	st.message = (char *)msg;
	if (kind == K_REGISTER) {
		Spawn__RegistrationResponse r = SPAWN__REGISTRATION_RESPONSE__INIT;
		r.status = &st;
		reply_pb(req, http, &r.base);
	} else if (kind == K_SPAWN) {
		Spawn__SpawnResponse r = SPAWN__SPAWN_RESPONSE__INIT;
		r.status = &st;
		reply_pb(req, http, &r.base);
	} else {
		Spawn__InvocationResponse r = SPAWN__INVOCATION_RESPONSE__INIT;
		r.status = &st;
		reply_pb(req, http, &r.base);
	}
}

static int spawn_status_of(gw_err err)
{
	return err == GW_ENOTFOUND ? SPAWN__STATUS__ACTOR_NOT_FOUND : SPAWN__STATUS__ERROR;
}

/* edge_refused answers requests the edge refuses before any work: the
 * listener's refusals (413, 503) and bodies that are not protobuf (415).
 * Returns true when it answered. */
static bool edge_refused(gw_http_req *req, int kind)
{
	const char *why = NULL;
	int code = gw_http_req_refusal(req, &why);
	if (code) {
		reply_error(req, kind, code, SPAWN__STATUS__ERROR, why);
		return true;
	}
	const char *ct = gw_http_req_header(req, "Content-Type");
	if (ct) {
		size_t n = strcspn(ct, "; \t");
		static const char *const ok[] = {"application/octet-stream", "application/protobuf",
		                                 "application/x-protobuf"};
		for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
			if (strlen(ok[i]) == n && !strncasecmp(ct, ok[i], n))
				return false;
		reply_error(req, kind, 415, SPAWN__STATUS__ERROR,
		            "the body must be protobuf (Content-Type application/octet-stream or "
		            "application/protobuf)");
		return true;
	}
	return false;
}

/* unpack_checked parses the body as d (into arena; NULL = the heap, freed by
 * the caller) and checks its strings. Returns the message, or NULL with why
 * set (a message that failed the checks is freed here). */
static ProtobufCMessage *unpack_checked(gw_spawnapi *a, gw_http_req *req,
                                        const ProtobufCMessageDescriptor *d, spawn_arena *arena,
                                        char *why, size_t n)
{
	size_t len;
	const uint8_t *body = gw_http_req_body(req, &len);
	ProtobufCMessage *m = protobuf_c_message_unpack(d, arena ? &arena->pbc : NULL, len,
	                                                body ? body : (uint8_t *)"");
	if (!m) {
		snprintf(why, n, "the body is not a valid %s (%zu bytes)", d->name, len);
		return NULL;
	}
	gw_wc_fail f;
	if (gw_wc_check(m, body, len, &a->o.limits, &f)) {
		snprintf(why, n, "%s: %s", f.path, f.why);
		if (!arena)
			protobuf_c_message_free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}

/* ---- registration ----------------------------------------------------------------- */

/* host_base writes the base URL of the host registering from peer. */
static void host_base(const gw_spawnapi *a, const char *peer, char *out, size_t n)
{
	if (a->host_url) {
		snprintf(out, n, "%s", a->host_url);
		return;
	}
	int port = a->o.host_port ? a->o.host_port : 8090;
	if (strchr(peer, ':'))
		snprintf(out, n, "http://[%s]:%d", peer, port);
	else
		snprintf(out, n, "http://%s:%d", peer[0] ? peer : "127.0.0.1", port);
}

static void handle_register(gw_spawnapi *a, gw_http_req *req)
{
	char why[GW_WC_PATH_MAX + 400];
	Spawn__RegistrationRequest *rr = (Spawn__RegistrationRequest *)unpack_checked(
	    a, req, &spawn__registration_request__descriptor, NULL, why, sizeof why);
	if (!rr) {
		reply_error(req, K_REGISTER, 500, SPAWN__STATUS__ERROR, why);
		return;
	}
	const Spawn__Actors__ActorSystem *sys = rr->actor_system;
	if (!sys || !sys->name || !sys->name[0] || !sys->registry) {
		protobuf_c_message_free_unpacked(&rr->base, NULL);
		reply_error(req, K_REGISTER, 500, SPAWN__STATUS__ERROR,
		            "the registration carries no actor system with a name and actors");
		return;
	}
	char base[600];
	host_base(a, gw_http_req_peer(req), base, sizeof base);
	gw_host *t = NULL;
	gw_err err = gw_hhosts_target(a->hh, sys->name, base, &t);
	if (err) {
		snprintf(why, sizeof why, "cannot call the host back at %s: %s", base,
		         gw_strerror(err));
		protobuf_c_message_free_unpacked(&rr->base, NULL);
		reply_error(req, K_REGISTER, 500, SPAWN__STATUS__ERROR, why);
		return;
	}
	/* One registration at a time per API: the move from an old address
	 * and the binding happen together. */
	pthread_mutex_lock(&a->mu);
	sysent *e = a->systems;
	while (e && strcmp(e->name, sys->name))
		e = e->next;
	if (e && e->target && e->target != t) {
		/* The system moved: its old host takes no new turn. */
		GW_INFO("spawn http: system '%s' moves from %s to %s", sys->name,
		        gw_hhosts_url(e->target), base);
		gw_registry_unbind_host(a->reg, e->target);
		gw_hhosts_retire(e->target);
		gw_target_ops_of(e->target)->rele(e->target);
		e->target = NULL;
	}
	err = gw_registry_register(a->reg, t, sys, why, sizeof why);
	if (!err && !e && (e = calloc(1, sizeof *e))) {
		if ((e->name = strdup(sys->name))) {
			e->next = a->systems;
			a->systems = e;
		} else {
			free(e);
			e = NULL; /* still bound; only a later move would not unbind it */
		}
	}
	if (!err && e && !e->target) {
		e->target = t; /* the reference gw_hhosts_target gave */
		t = NULL;
	}
	pthread_mutex_unlock(&a->mu);
	if (t)
		gw_target_ops_of(t)->rele(t);
	if (err) {
		GW_WARN("spawn http: registration of '%s' refused: %s", sys->name, why);
		protobuf_c_message_free_unpacked(&rr->base, NULL);
		reply_error(req, K_REGISTER, 500, SPAWN__STATUS__ERROR, why);
		return;
	}
	GW_INFO("spawn http: host %s registered system '%s' (%zu actors)", base, sys->name,
	        sys->registry->n_actors);
	protobuf_c_message_free_unpacked(&rr->base, NULL);
	Spawn__RequestStatus st = SPAWN__REQUEST_STATUS__INIT;
	st.status = SPAWN__STATUS__OK;
	st.message = "Accepted";
	Spawn__ProxyInfo pi = SPAWN__PROXY_INFO__INIT;
	pi.protocol_major_version = 1;
	pi.protocol_minor_version = 0;
	pi.proxy_name = "spawn-gateway-c";
	pi.proxy_version = "0.1.0";
	Spawn__RegistrationResponse resp = SPAWN__REGISTRATION_RESPONSE__INIT;
	resp.status = &st;
	resp.proxy_info = &pi;
	reply_pb(req, 200, &resp.base);
}

/* ---- invoke ----------------------------------------------------------------------- */

/* reply_ok answers an invoke: rq (NULL for an async call: no system, actor
 * or payload, as Spawn answers those) and the reply value (NULL = Noop). */
static void reply_ok(gw_http_req *req, const Spawn__InvocationRequest *rq, const gw_blob *value)
{
	Spawn__RequestStatus st = SPAWN__REQUEST_STATUS__INIT;
	st.status = SPAWN__STATUS__OK;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	Spawn__Actors__Actor actor = SPAWN__ACTORS__ACTOR__INIT;
	Spawn__InvocationResponse resp = SPAWN__INVOCATION_RESPONSE__INIT;
	resp.status = &st;
	if (rq) {
		sys.name = rq->system->name;
		id.name = rq->actor->id->name;
		id.system = rq->system->name;
		actor.id = &id;
		resp.system = &sys;
		resp.actor = &actor;
	}
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	Spawn__Noop noop = SPAWN__NOOP__INIT;
	if (value) {
		/* Byte for byte as the host gave it: type URLs are never rewritten. */
		any.type_url = (char *)gw_blob_type(value);
		any.value.data = (uint8_t *)gw_blob_value(value);
		any.value.len = value->len;
		resp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_VALUE;
		resp.value = &any;
	} else if (rq) {
		resp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_NOOP;
		resp.noop = &noop;
	}
	reply_pb(req, 200, &resp.base);
}

static void reply_inv_error(gw_http_req *req, const gw_inv *inv, gw_err err)
{
	char msg[1100];
	snprintf(msg, sizeof msg, "%s",
	         inv->msg[0] || inv->host_message ? inv->msg : gw_strerror(err));
	reply_error(req, K_INVOKE, 500, spawn_status_of(err), msg);
}

/* invoke_done answers a synchronous invoke. Any thread. */
static void invoke_done(gw_inv *inv)
{
	gw_http_req *req = inv->user;
	if (inv->err)
		reply_inv_error(req, inv, inv->err);
	else
		reply_ok(req, inv->req, inv->reply);
	gw_inv_destroy(inv);
}

/* async_done: the caller was answered at acceptance; failures are logged. */
static void async_done(gw_inv *inv)
{
	if (inv->err != GW_OK)
		GW_WARN("spawn http: async invocation of %s.%s failed: %s",
		        inv->req->actor->id->name, inv->req->action_name,
		        inv->msg[0] ? inv->msg : gw_strerror(inv->err));
	gw_inv_destroy(inv);
}

/* async_routed_done: the router forwarded an async call to the actor's
 * owner, which answered at acceptance. */
static void async_routed_done(gw_inv *inv)
{
	gw_http_req *req = inv->user;
	if (inv->err)
		reply_inv_error(req, inv, inv->err);
	else
		reply_ok(req, NULL, NULL);
	gw_inv_destroy(inv);
}

typedef struct async_ctx {
	gw_spawnapi *a;
	gw_http_req *req;
	gw_inv *inv;
} async_ctx;

static void accept_async(gw_spawnapi *a, gw_http_req *req, gw_inv *inv);

/* async_found: the statestore was asked whether the name is an instance
 * spawned before a restart (persist thread). */
static void async_found(void *user, gw_err err)
{
	async_ctx *x = user;
	gw_spawnapi *a = x->a;
	gw_http_req *req = x->req;
	gw_inv *inv = x->inv;
	free(x);
	if (err == GW_OK) {
		accept_async(a, req, inv);
		return;
	}
	if (err == GW_ENOTFOUND && inv->over_quota)
		err = GW_EFULL;
	reply_inv_error(req, inv, err);
	gw_inv_destroy(inv);
}

/* accept_async queues inv in its actor's mailbox, then answers: a call the
 * client makes after this answer cannot overtake it. */
static void accept_async(gw_spawnapi *a, gw_http_req *req, gw_inv *inv)
{
	gw_err err = gw_runtime_enqueue(a->rt, inv);
	if (err == GW_OK) {
		reply_ok(req, NULL, NULL); /* inv is the runtime's now */
		return;
	}
	const Spawn__InvocationRequest *rq = inv->req;
	bool by_name = err == GW_ENOTFOUND && !(rq->register_ref && rq->register_ref[0]);
	if ((by_name || (err == GW_EFULL && inv->over_quota)) && !inv->instance_checked) {
		inv->instance_checked = true;
		async_ctx *x = malloc(sizeof *x);
		if (x) {
			*x = (async_ctx){a, req, inv};
			if (gw_runtime_find_instance(a->rt, rq->system->name, rq->actor->id->name,
			                             async_found, x) == GW_OK)
				return;
			free(x);
		}
	}
	reply_inv_error(req, inv, err);
	gw_inv_destroy(inv);
}

/* A scheduled invocation: answered once its row is durable. */
typedef struct sched_put {
	gw_http_req *req;
	gw_runtime *rt;
	char id[40];
} sched_put;

static void scheduled_stored(void *arg, gw_err err)
{
	sched_put *sp = arg;
	gw_http_req *req = sp->req;
	if (err)
		gw_runtime_schedule_gone(sp->rt, sp->id);
	free(sp);
	if (err)
		reply_error(req, K_INVOKE, 500, SPAWN__STATUS__ERROR,
		            "the scheduled invocation could not be stored");
	else
		reply_ok(req, NULL, NULL);
}

static void accept_scheduled(gw_spawnapi *a, gw_http_req *req, gw_inv *inv)
{
	Spawn__InvocationRequest *rq = inv->req;
	const char *system = rq->system->name, *name = rq->actor->id->name;
	bool ref = rq->register_ref && rq->register_ref[0];
	gw_actor_type *t = NULL;
	char msg[400];
	if (!ref && gw_registry_lookup(a->reg, system, name, &t, NULL) != GW_OK &&
	    gw_registry_lookup_instance(a->reg, system, name, &t, NULL) != GW_OK) {
		snprintf(msg, sizeof msg, "actor '%s' not found in system '%s'", name, system);
		gw_inv_destroy(inv);
		reply_error(req, K_INVOKE, 500, SPAWN__STATUS__ACTOR_NOT_FOUND, msg);
		return;
	}
	if (t)
		gw_registry_type_rele(t); /* only its existence mattered */
	uint8_t rnd[15];
	char rest[31];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		gw_inv_destroy(inv);
		reply_error(req, K_INVOKE, 500, SPAWN__STATUS__ERROR, "no randomness for an id");
		return;
	}
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(rest + 2 * i, 3, "%02x", rnd[i]);
	size_t len = spawn__invocation_request__get_packed_size(rq);
	uint8_t *buf = spawn_arena_alloc(&inv->arena, len ? len : 1);
	sched_put *sp = buf ? malloc(sizeof *sp) : NULL;
	if (!sp) {
		gw_inv_destroy(inv);
		reply_error(req, K_INVOKE, 500, SPAWN__STATUS__ERROR, "out of memory");
		return;
	}
	gw_err err =
	    gw_runtime_schedule_id(a->rt, system, rq->scheduled_to, rest, sp->id, msg, sizeof msg);
	if (err) {
		free(sp);
		gw_inv_destroy(inv);
		reply_error(req, K_INVOKE, 500, SPAWN__STATUS__ERROR, msg);
		return;
	}
	sp->req = req;
	sp->rt = a->rt;
	spawn__invocation_request__pack(rq, buf);
	err = gw_persist_schedule(gw_runtime_persist(a->rt), sp->id, rq->scheduled_to, buf, len,
	                          scheduled_stored, sp);
	gw_inv_destroy(inv);
	if (err) {
		gw_runtime_schedule_gone(sp->rt, sp->id);
		free(sp);
		reply_error(req, K_INVOKE, 500, SPAWN__STATUS__ERROR, "out of memory");
	}
}

static void handle_invoke(gw_spawnapi *a, gw_http_req *req)
{
	gw_inv *inv = gw_inv_create(0);
	if (!inv) {
		reply_error(req, K_INVOKE, 500, SPAWN__STATUS__ERROR, "out of memory");
		return;
	}
	char why[GW_WC_PATH_MAX + 200];
	Spawn__InvocationRequest *rq = (Spawn__InvocationRequest *)unpack_checked(
	    a, req, &spawn__invocation_request__descriptor, &inv->arena, why, sizeof why);
	if (rq && gw_wc_check_client_metadata(rq, why, sizeof why))
		rq = NULL;
	if (rq && (!rq->system || !rq->system->name || !rq->system->name[0] || !rq->actor ||
	           !rq->actor->id || !rq->actor->id->name || !rq->actor->id->name[0] ||
	           !rq->action_name || !rq->action_name[0])) {
		snprintf(why, sizeof why,
		         "system.name, actor.id.name and action_name are required");
		rq = NULL;
	}
	if (!rq) {
		gw_inv_destroy(inv);
		reply_error(req, K_INVOKE, 500, SPAWN__STATUS__ERROR, why);
		return;
	}
	inv->req = rq;
	inv->user = req;
	/* W3C trace context in the HTTP headers (the body's own wins; an
	 * invalid one is replaced by the runtime, never refused). */
	gw_trace_md_merge(rq, &inv->arena, gw_http_req_header(req, GW_TRACEPARENT_KEY),
	                  gw_http_req_header(req, GW_TRACESTATE_KEY), a->o.limits.metadata_entries);
	if (rq->scheduled_to > spawn_wall_ms()) {
		accept_scheduled(a, req, inv);
		return;
	}
	if (!rq->async && rq->scheduled_to <= 0) {
		inv->done = invoke_done;
		gw_runtime_invoke(a->rt, inv);
		return;
	}
	/* Async (or scheduled for a time already past). In a cluster the
	 * owner queues it: the answer waits for its acceptance. */
	inv->done = async_routed_done;
	if (gw_runtime_route(a->rt, inv))
		return;
	inv->user = NULL;
	inv->done = async_done;
	accept_async(a, req, inv);
}

/* ---- spawn ------------------------------------------------------------------------ */

/* spawned: the runtime ran the SpawnRequest (gw_runtime_spawn_request). */
static void spawned(void *user, gw_err err, const char *msg)
{
	gw_http_req *req = user;
	if (err) {
		reply_error(req, K_SPAWN, 500, spawn_status_of(err), msg);
		return;
	}
	Spawn__RequestStatus st = SPAWN__REQUEST_STATUS__INIT;
	st.status = SPAWN__STATUS__OK;
	Spawn__SpawnResponse resp = SPAWN__SPAWN_RESPONSE__INIT;
	resp.status = &st;
	reply_pb(req, 200, &resp.base);
}

static void handle_spawn(gw_spawnapi *a, gw_http_req *req)
{
	char why[GW_WC_PATH_MAX + 200];
	Spawn__SpawnRequest *rq = (Spawn__SpawnRequest *)unpack_checked(
	    a, req, &spawn__spawn_request__descriptor, NULL, why, sizeof why);
	if (!rq) {
		reply_error(req, K_SPAWN, 500, SPAWN__STATUS__ERROR, why);
		return;
	}
	int64_t revision = rq->revision;
	const char *q = gw_http_req_query(req, "revision");
	if (q) {
		char *end = NULL;
		long long v = strtoll(q, &end, 10);
		if (!q[0] || *end || v < 0) {
			protobuf_c_message_free_unpacked(&rq->base, NULL);
			reply_error(req, K_SPAWN, 500, SPAWN__STATUS__ERROR,
			            "?revision= must be a number >= 0");
			return;
		}
		revision = v;
	}
	gw_runtime_spawn_request(a->rt, rq->actors, rq->n_actors,
	                         revision > 0 ? (uint64_t)revision : 0, spawned, req);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* ---- routing ---------------------------------------------------------------------- */

/* count_segments counts the non-empty segments of p ("/a/b" = 2);
 * segment_is compares segment i (0-based) with want. */
static int count_segments(const char *p)
{
	int n = 0;
	for (; *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			n++;
	return n;
}

static bool segment_is(const char *p, int i, const char *want)
{
	for (int k = 0; *p; p++) {
		if (*p != '/')
			continue;
		if (k++ == i) {
			size_t n = strcspn(p + 1, "/");
			return strlen(want) == n && !strncmp(p + 1, want, n);
		}
	}
	return false;
}

/* state_read answers GET /api/v1/system/{system}/actors/{actor}: the
 * state as a serialized google.protobuf.Any (what Spawn's proxy route
 * reads with Actors.get_state), or 404 with a RequestStatus
 * ACTOR_NOT_FOUND when the actor has no state. */
static void state_read(void *user, gw_err err, const char *msg, const gw_blob *state,
                       const gw_blob *tags, const gw_read_meta *meta)
{
	(void)tags;
	(void)meta;
	gw_http_req *req = user;
	Spawn__RequestStatus st = SPAWN__REQUEST_STATUS__INIT;
	if (err || !state) {
		st.status = err && err != GW_ENOTFOUND ? SPAWN__STATUS__ERROR
		                                       : SPAWN__STATUS__ACTOR_NOT_FOUND;
		st.message = (char *)(msg && msg[0] ? msg
		                      : err         ? gw_strerror(err)
		                                    : "the actor has no state");
		reply_pb(req, st.status == SPAWN__STATUS__ERROR ? 500 : 404, &st.base);
		return;
	}
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = (char *)gw_blob_type(state);
	any.value.data = (uint8_t *)gw_blob_value(state);
	any.value.len = state->len;
	reply_pb(req, 200, &any.base);
}

static void on_system_get(void *user, gw_http_req *req)
{
	gw_spawnapi *a = user;
	const char *rest = gw_http_req_path(req) + strlen("/api/v1/system");
	Spawn__RequestStatus st = SPAWN__REQUEST_STATUS__INIT;
	st.status = SPAWN__STATUS__ERROR;
	int nseg = count_segments(rest);
	if (nseg == 0 ||
	    (nseg == 4 && segment_is(rest, 1, "actors") && segment_is(rest, 3, "invoke"))) {
		static const char na[] = "method not allowed\n"; /* POST routes */
		gw_http_reply(req, 405, "text/plain", na, sizeof na - 1);
		return;
	}
	if (rest[0] != '/' || nseg != 3 || !segment_is(rest, 1, "actors")) {
		static const char nf[] = "not found\n";
		gw_http_reply(req, 404, "text/plain", nf, sizeof nf - 1);
		return;
	}
	const char *why = NULL;
	int code = gw_http_req_refusal(req, &why);
	if (code) {
		st.message = (char *)why;
		reply_pb(req, code, &st.base);
		return;
	}
	/* "/{system}/actors/{actor}": each name checked at the edge. */
	char system[GW_WC_NAME_BYTES + 1], actor[GW_WC_NAME_BYTES + 1];
	size_t sl = strcspn(rest + 1, "/");
	const char *an = rest + 1 + sl + strlen("/actors/");
	size_t al = strlen(an), off;
	if (!sl || sl > a->o.limits.name_bytes || sl >= sizeof system || !al ||
	    al > a->o.limits.name_bytes || al >= sizeof actor || an[al - 1] == '/' ||
	    gw_wc_utf8((const uint8_t *)rest + 1, sl, false, &off) ||
	    gw_wc_utf8((const uint8_t *)an, al, false, &off)) {
		st.message = "the system and actor names must be 1 to 255 bytes of UTF-8 without "
		             "control characters";
		reply_pb(req, 400, &st.base);
		return;
	}
	memcpy(system, rest + 1, sl);
	system[sl] = 0;
	memcpy(actor, an, al);
	actor[al] = 0;
	uint64_t revision = 0;
	const char *q = gw_http_req_query(req, "revision");
	if (q) {
		char *end = NULL;
		long long v = strtoll(q, &end, 10);
		if (!q[0] || *end || v < 0) {
			st.message = "?revision= must be a number >= 0";
			reply_pb(req, 400, &st.base);
			return;
		}
		revision = (uint64_t)v;
	}
	if (gw_runtime_read(a->rt, system, actor, revision, state_read, req) != GW_OK) {
		st.message = "out of memory";
		reply_pb(req, 500, &st.base);
	}
}

static void on_system(void *user, gw_http_req *req)
{
	gw_spawnapi *a = user;
	/* The path after /api/v1/system: "" (register), /{name}/actors/spawn,
	 * /{name}/actors/{actor}/invoke. Names in the path are not used: the
	 * target comes from the body, as Spawn's proxy takes it. */
	const char *rest = gw_http_req_path(req) + strlen("/api/v1/system");
	int kind = -1, n = count_segments(rest);
	if (!rest[0] || !strcmp(rest, "/"))
		kind = K_REGISTER;
	else if (n == 3 && segment_is(rest, 1, "actors") && segment_is(rest, 2, "spawn"))
		kind = K_SPAWN;
	else if (n == 4 && segment_is(rest, 1, "actors") && segment_is(rest, 3, "invoke"))
		kind = K_INVOKE;
	if (kind < 0) {
		static const char nf[] = "not found\n";
		gw_http_reply(req, 404, "text/plain", nf, sizeof nf - 1);
		return;
	}
	if (edge_refused(req, kind))
		return;
	if (kind == K_REGISTER)
		handle_register(a, req);
	else if (kind == K_SPAWN)
		handle_spawn(a, req);
	else
		handle_invoke(a, req);
}

static void on_health(void *user, gw_http_req *req)
{
	gw_spawnapi *a = user;
	const char *p = gw_http_req_path(req);
	static const char up[] = "{\"status\":\"up\"}", down[] = "{\"status\":\"down\"}";
	if (!strcmp(p, "/health") || !strcmp(p, "/health/") || !strcmp(p, "/health/liveness")) {
		gw_http_reply(req, 200, "application/json", up, sizeof up - 1);
	} else if (!strcmp(p, "/health/readiness")) {
		bool ready =
		    !gw_http_req_refusal(req, NULL) && (!a->o.ready || a->o.ready(a->o.ready_user));
		if (ready)
			gw_http_reply(req, 200, "application/json", up, sizeof up - 1);
		else
			gw_http_reply(req, 503, "application/json", down, sizeof down - 1);
	} else {
		static const char nf[] = "not found\n";
		gw_http_reply(req, 404, "text/plain", nf, sizeof nf - 1);
	}
}

gw_err gw_spawnapi_create(gw_spawnapi **out, const gw_spawnapi_opts *o, gw_http *http,
                          gw_runtime *rt, gw_registry *reg, gw_hhosts *hh)
{
	gw_spawnapi *a = calloc(1, sizeof *a);
	if (!a)
		return GW_ENOMEM;
	if (o)
		a->o = *o;
	gw_wc_limits_resolve(&a->o.limits);
	a->http = http;
	a->rt = rt;
	a->reg = reg;
	a->hh = hh;
	pthread_mutex_init(&a->mu, NULL);
	if (a->o.host_url && !(a->host_url = strdup(a->o.host_url))) {
		gw_spawnapi_destroy(a);
		return GW_ENOMEM;
	}
	gw_err err =
	    a->o.health_only ? GW_OK : gw_http_route(http, "POST", "/api/v1/system", on_system, a);
	if (!err && !a->o.health_only)
		err = gw_http_route(http, "GET", "/api/v1/system", on_system_get, a);
	if (!err)
		err = gw_http_route(http, "GET", "/health", on_health, a);
	if (err) {
		gw_spawnapi_destroy(a);
		return err;
	}
	*out = a;
	return GW_OK;
}

void gw_spawnapi_unbind(gw_spawnapi *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	for (sysent *e = a->systems; e; e = e->next)
		if (e->target) {
			gw_registry_unbind_host(a->reg, e->target);
			gw_hhosts_retire(e->target);
		}
	pthread_mutex_unlock(&a->mu);
}

void gw_spawnapi_destroy(gw_spawnapi *a)
{
	if (!a)
		return;
	while (a->systems) {
		sysent *e = a->systems;
		a->systems = e->next;
		if (e->target)
			gw_target_ops_of(e->target)->rele(e->target);
		free(e->name);
		free(e);
	}
	pthread_mutex_destroy(&a->mu);
	free(a->host_url);
	free(a);
}
