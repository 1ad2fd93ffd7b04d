/* server.c - completion-queue threads and the client-facing unary calls.
 *
 * Call lifecycle (Invoke / Spawn), one struct per call, which is the tag:
 *
 *   REQUESTED -- new call + payload --> RUNNING   [parsed into the inv's arena,
 *                                                  handed to the runtime]
 *   RUNNING ---- runtime done --------> REPLYING  [one batch: initial metadata,
 *                                                  message, status, recv close]
 *   REPLYING --- batch complete ------> (freed)
 *
 * A request slot is re-posted as soon as a call arrives, so each CQ keeps a
 * fixed number of calls waiting to be accepted. */
#include "server_int.h"
#include "condwait.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/random.h>
#include <unistd.h>

#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "cshare.h"
#include "log.h"

#define SLOTS_PER_CQ 64

_Static_assert(GWI_M_COUNT <= sizeof(((gw_server *)0)->methods) / sizeof(void *) &&
                   GWI_M_COUNT <= sizeof(((gw_server *)0)->msrv) / sizeof(void *),
               "gw_server.methods and .msrv need a slot per GWI_M_*");

static long *calls_of(gw_server *s, int kind)
{
	return kind == GWI_CALL_HOST    ? &s->host_calls
	       : kind == GWI_CALL_LIGHT ? &s->light_calls
	                                : &s->client_calls;
}

void gwi_calls_add(gw_server *s, int kind, long delta)
{
	pthread_mutex_lock(&s->mu);
	long *n = calls_of(s, kind);
	*n += delta;
	/* Only wait_calls waits on cv, for a count to reach 0: no wake-up per
	 * call (a waiter woken twice per call cost ~9 us per call). */
	if (*n == 0)
		pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int gwi_call_admit(gw_server *s, int kind)
{
	pthread_mutex_lock(&s->mu);
	if (s->draining && kind != GWI_CALL_LIGHT)
		kind = GWI_CALL_LIGHT; /* refused: the drain does not wait for it */
	(*calls_of(s, kind))++;
	pthread_mutex_unlock(&s->mu);
	return kind;
}

static void ucall_tag(gwi_tag *t, bool ok);
static void ucall_closed(gwi_tag *t, bool ok);

/* slot_done: a posted slot completed (a call, or the server's shutdown).
 * During the shutdown gw_server_shutdown waits for the last one. */
static void slot_done(gw_server *s)
{
	if (atomic_fetch_sub(&s->slots, 1) == 1 && atomic_load(&s->shutting_down)) {
		pthread_mutex_lock(&s->mu);
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
}

/* ucall_post posts one slot for a call of method on q, registered on
 * server gs as rm; g is the group of a Health slot (NULL otherwise). */
static void ucall_post(gw_server *s, gwi_cq *q, int method, grpc_server *gs, void *rm, gwi_group *g)
{
	if (atomic_load(&s->shutting_down))
		return;
	gwi_ucall *c = calloc(1, sizeof *c);
	if (!c) {
		GW_ERROR("out of memory posting a call slot");
		return;
	}
	c->tag.fn = ucall_tag;
	c->close_tag.fn = ucall_closed;
	atomic_init(&c->refs, 1);
	c->srv = s;
	c->q = q;
	c->grp = g;
	c->method = method;
	grpc_metadata_array_init(&c->md);
	atomic_fetch_add(&s->slots, 1);
	grpc_call_error e = grpc_server_request_registered_call(
	    gs, rm, &c->call, &c->deadline, &c->md, &c->payload, q->cq, q->cq, &c->tag);
	if (e != GRPC_CALL_OK) {
		grpc_metadata_array_destroy(&c->md);
		free(c);
		slot_done(s);
	}
}

void gwi_ucall_request(gw_server *s, gwi_cq *q, int method)
{
	ucall_post(s, q, method, s->msrv[method], s->methods[method], NULL);
}

void gwi_health_request(gw_server *s, gwi_cq *q, gwi_group *g)
{
	ucall_post(s, q, GWI_M_HEALTH, g->server, g->m_health, g);
}

static void ucall_free(gwi_ucall *c)
{
	gw_inv_destroy(atomic_load(&c->inv));
	if (c->payload)
		grpc_byte_buffer_destroy(c->payload);
	if (c->resp)
		grpc_byte_buffer_destroy(c->resp);
	grpc_metadata_array_destroy(&c->md);
	free(c->owner);
	free(c->ext);
	if (c->call) {
		grpc_call_unref(c->call);
		gwi_calls_add(c->srv, c->kind, -1);
	}
	free(c);
}

/* ucall_rele drops one reference (the reply batch's, the close op's);
 * the last frees the call. */
static void ucall_rele(gwi_ucall *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1)
		ucall_free(c);
}

static void ucall_send(gwi_ucall *c, grpc_status_code code, const char *detail);

void gwi_ucall_reply(gwi_ucall *c, grpc_status_code code, const char *detail,
                     const ProtobufCMessage *msg)
{
	c->phase = GWI_C_REPLYING;
	Spawn__Gateway__V1__PeerAdminReply wrapped;
	if (msg && c->method == GWI_M_PEER_ADMIN) {
		gwi_peer_admin_wrap(&wrapped, msg);
		msg = &wrapped.base;
	}
	if (msg && spawn_wire_pack(msg, &c->resp) != 0) {
		code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		detail = "out of memory packing the response";
	}
	ucall_send(c, code, detail);
}

void gwi_ucall_reply_raw(gwi_ucall *c, grpc_status_code code, const char *detail,
                         const uint8_t *data, size_t len)
{
	c->phase = GWI_C_REPLYING;
	if (code == GRPC_STATUS_OK) {
		grpc_slice sl = grpc_slice_from_copied_buffer((const char *)data, len);
		c->resp = grpc_raw_byte_buffer_create(&sl, 1);
		grpc_slice_unref(sl);
	}
	ucall_send(c, code, detail);
}

/* ucall_send starts the reply batch: c->resp (when set) with code. */
static void ucall_send(gwi_ucall *c, grpc_status_code code, const char *detail)
{
	c->details = grpc_slice_from_copied_string(detail ? detail : "");
	grpc_op *op = c->ops;
	memset(c->ops, 0, sizeof c->ops);
	op->op = GRPC_OP_SEND_INITIAL_METADATA;
	op++;
	if (c->resp && code == GRPC_STATUS_OK) {
		op->op = GRPC_OP_SEND_MESSAGE;
		op->data.send_message.send_message = c->resp;
		op++;
	}
	op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op->data.send_status_from_server.status = code;
	op->data.send_status_from_server.status_details = &c->details;
	if (code == GRPC_STATUS_UNAVAILABLE && c->not_dispatched) {
		c->trailer.key = grpc_slice_from_static_string(GWI_RETRY_KEY);
		c->trailer.value = grpc_slice_from_static_string(GWI_RETRY_NOT_DISPATCHED);
		op->data.send_status_from_server.trailing_metadata_count = 1;
		op->data.send_status_from_server.trailing_metadata = &c->trailer;
	} else if (code == GRPC_STATUS_FAILED_PRECONDITION && c->owner) {
		c->trailer.key = grpc_slice_from_static_string(GW_OWNER_KEY);
		c->trailer.value = grpc_slice_from_static_string(c->owner);
		op->data.send_status_from_server.trailing_metadata_count = 1;
		op->data.send_status_from_server.trailing_metadata = &c->trailer;
	} else if ((code == GRPC_STATUS_UNAUTHENTICATED || code == GRPC_STATUS_PERMISSION_DENIED) &&
	           c->peer_refused) {
		c->trailer.key = grpc_slice_from_static_string(GW_PEER_REFUSED_KEY);
		c->trailer.value = grpc_slice_from_static_string(GW_PEER_REFUSED);
		op->data.send_status_from_server.trailing_metadata_count = 1;
		op->data.send_status_from_server.trailing_metadata = &c->trailer;
	}
	op++;
	/* RECV_CLOSE_ON_SERVER is posted on its own when the call arrives. */
	grpc_call_error e =
	    grpc_call_start_batch(c->call, c->ops, (size_t)(op - c->ops), &c->tag, NULL);
	if (e != GRPC_CALL_OK) {
		GW_ERROR("start_batch for a reply failed: %d", e);
		grpc_slice_unref(c->details);
		ucall_rele(c);
	}
}

int64_t gwi_deadline_ms(gpr_timespec d)
{
	if (gpr_time_cmp(d, gpr_inf_future(d.clock_type)) == 0)
		return 0;
	gpr_timespec rem = gpr_time_sub(d, gpr_now(d.clock_type));
	int64_t ms = (int64_t)rem.tv_sec * 1000 + rem.tv_nsec / 1000000;
	if (ms < 0)
		ms = 0;
	return spawn_now_ns() / 1000000 + ms + (ms == 0);
}

/* invoke_done answers a synchronous Invoke. Runs on any thread. */
static void invoke_done(gw_inv *inv)
{
	gwi_ucall *c = inv->user;
	/* inv is freed with the call (c->inv), not here: a cancel that started
	 * before this still holds it (gw_runtime_cancel's contract). */
	atomic_store(&c->answered, true);
	if (inv->err != GW_OK) {
		grpc_status_code code = inv->err == GW_EHOST ? (grpc_status_code)inv->host_code
		                                             : gw_err_status(inv->err);
		c->not_dispatched = inv->err == GW_EUNAVAIL && inv->not_dispatched;
		gwi_ucall_reply(c, code,
		                inv->msg[0] || inv->host_message ? inv->msg : gw_strerror(inv->err),
		                NULL);
		return;
	}
	Spawn__InvocationRequest *rq = inv->req;
	Spawn__RequestStatus status = SPAWN__REQUEST_STATUS__INIT;
	status.status = SPAWN__STATUS__OK;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = rq->system->name;
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = rq->actor->id->name;
	id.system = rq->system->name;
	Spawn__Actors__Actor actor = SPAWN__ACTORS__ACTOR__INIT;
	actor.id = &id;
	Spawn__InvocationResponse resp = SPAWN__INVOCATION_RESPONSE__INIT;
	resp.status = &status;
	resp.system = &sys;
	resp.actor = &actor;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	Spawn__Noop noop = SPAWN__NOOP__INIT;
	if (inv->reply) {
		any.type_url = (char *)gw_blob_type(inv->reply);
		any.value.data = (uint8_t *)gw_blob_value(inv->reply);
		any.value.len = inv->reply->len;
		resp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_VALUE;
		resp.value = &any;
	} else {
		resp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_NOOP;
		resp.noop = &noop;
	}
	gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &resp.base);
}

/* async_done: the caller was answered on acceptance; only log failures. */
static void async_done(gw_inv *inv)
{
	if (inv->err != GW_OK)
		GW_WARN("async invocation of %s.%s failed: %s", inv->req->actor->id->name,
		        inv->req->action_name, inv->msg[0] ? inv->msg : gw_strerror(inv->err));
	gw_inv_destroy(inv);
}

static void reply_accepted(gwi_ucall *c)
{
	Spawn__RequestStatus status = SPAWN__REQUEST_STATUS__INIT;
	status.status = SPAWN__STATUS__OK;
	Spawn__Noop noop = SPAWN__NOOP__INIT;
	Spawn__InvocationResponse resp = SPAWN__INVOCATION_RESPONSE__INIT;
	resp.status = &status;
	resp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_NOOP;
	resp.noop = &noop;
	gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &resp.base);
}

typedef struct async_ctx {
	gwi_ucall *c;
	gw_inv *inv;
} async_ctx;

static void accept_async(gwi_ucall *c, gw_inv *inv);

/* async_found: the statestore was asked whether the name is an instance
 * spawned before a restart. */
static void async_found(void *user, gw_err err)
{
	async_ctx *a = user;
	gwi_ucall *c = a->c;
	gw_inv *inv = a->inv;
	free(a);
	if (err == GW_OK) {
		accept_async(c, inv);
		return;
	}
	c->not_dispatched = err == GW_EUNAVAIL; /* nothing was queued */
	if (err == GW_EUNAVAIL)                 /* the registration grace after start-up */
		snprintf(inv->msg, sizeof inv->msg,
		         "no host has registered actor %s in system %s yet; retry",
		         inv->req->actor->id->name, inv->req->system->name);
	else if (err == GW_ENOTFOUND && inv->over_quota)
		err = GW_EFULL; /* not stored either: a new instance over the quota */
	gwi_ucall_reply(c, gw_err_status(err), inv->msg[0] ? inv->msg : gw_strerror(err), NULL);
	gw_inv_destroy(inv);
}

static void accept_async(gwi_ucall *c, gw_inv *inv)
{
	gw_err err = gw_runtime_enqueue(c->srv->rt, inv);
	if (err == GW_OK) {
		/* inv belongs to the runtime now (it may already be freed). */
		reply_accepted(c);
		return;
	}
	const Spawn__InvocationRequest *rq = inv->req;
	bool by_name = err == GW_ENOTFOUND && !(rq->register_ref && rq->register_ref[0]);
	if ((by_name || (err == GW_EFULL && inv->over_quota)) && !inv->instance_checked) {
		inv->instance_checked = true;
		async_ctx *a = malloc(sizeof *a);
		if (a) {
			a->c = c;
			a->inv = inv;
			if (gw_runtime_find_instance(c->srv->rt, rq->system->name,
			                             rq->actor->id->name, async_found, a) == GW_OK)
				return;
			free(a);
		}
	}
	gwi_ucall_reply(c, gw_err_status(err), inv->msg[0] ? inv->msg : gw_strerror(err), NULL);
	gw_inv_destroy(inv);
}

/* A scheduled invocation: answered once its row is durable. */
/* A scheduled invocation being stored: the call and the row id (counted
 * against the system's quota until the row is gone). */
typedef struct sched_put {
	gwi_ucall *c;
	gw_runtime *rt;
	char id[40];
} sched_put;

static void scheduled_stored(void *arg, gw_err err)
{
	sched_put *sp = arg;
	gwi_ucall *c = sp->c;
	if (err)
		gw_runtime_schedule_gone(sp->rt, sp->id);
	free(sp);
	if (err)
		gwi_ucall_reply(c, gw_err_status(err == GW_ECONFLICT ? GW_EIO : err),
		                "the scheduled invocation could not be stored", NULL);
	else
		reply_accepted(c);
}

static void accept_scheduled(gwi_ucall *c, gw_inv *inv);

/* scheduled_found: the statestore was asked about a scheduled call's name
 * (gw_runtime_find_instance; on the persist thread). */
static void scheduled_found(void *user, gw_err err)
{
	async_ctx *x = user;
	gwi_ucall *c = x->c;
	gw_inv *inv = x->inv;
	free(x);
	if (err == GW_OK) {
		accept_scheduled(c, inv); /* now registered: stored as usual */
		return;
	}
	char msg[300];
	const char *system = inv->req->system->name, *name = inv->req->actor->id->name;
	if (err == GW_EUNAVAIL) /* the registration grace after start-up */
		snprintf(msg, sizeof msg, "no host has registered actor %s in system %s yet; retry",
		         name, system);
	else if (err == GW_ENOTFOUND)
		snprintf(msg, sizeof msg, "actor '%s' not found in system '%s'", name, system);
	else
		snprintf(msg, sizeof msg, "cannot look actor '%s' up: %s", name, gw_strerror(err));
	gwi_ucall_reply(c, gw_err_status(err), msg, NULL);
	gw_inv_destroy(inv);
}

static void accept_scheduled(gwi_ucall *c, gw_inv *inv)
{
	Spawn__InvocationRequest *rq = inv->req;
	const char *system = rq->system && rq->system->name ? rq->system->name : "";
	const char *name =
	    rq->actor && rq->actor->id && rq->actor->id->name ? rq->actor->id->name : "";
	const char *ref = rq->register_ref && rq->register_ref[0] ? rq->register_ref : NULL;
	gw_actor_type *t = NULL;
	char msg[200];
	if (!system[0] || !name[0] || !rq->action_name || !rq->action_name[0]) {
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT,
		                "system.name, actor.id.name and action_name are required", NULL);
		gw_inv_destroy(inv);
		return;
	}
	if (!ref && gw_registry_lookup(c->srv->reg, system, name, &t, NULL) != GW_OK &&
	    gw_registry_lookup_instance(c->srv->reg, system, name, &t, NULL) != GW_OK) {
		/* As for an immediate call: maybe an instance stored before a
		 * restart, or (in the registration grace) a name the store knows
		 * whose host has not come back yet. */
		async_ctx *x = inv->instance_checked ? NULL : malloc(sizeof *x);
		inv->instance_checked = true;
		if (x) {
			x->c = c;
			x->inv = inv;
			if (gw_runtime_find_instance(c->srv->rt, system, name, scheduled_found,
			                             x) == GW_OK)
				return;
			free(x);
		}
		snprintf(msg, sizeof msg, "actor '%s' not found in system '%s'", name, system);
		gwi_ucall_reply(c, GRPC_STATUS_NOT_FOUND, msg, NULL);
		gw_inv_destroy(inv);
		return;
	}
	gw_registry_type_rele(t); /* only its existence mattered */
	uint8_t rnd[15];
	char rest[31];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		gwi_ucall_reply(c, GRPC_STATUS_INTERNAL, "no randomness for an id", NULL);
		gw_inv_destroy(inv);
		return;
	}
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(rest + 2 * i, 3, "%02x", rnd[i]);
	size_t len = spawn__invocation_request__get_packed_size(rq);
	uint8_t *buf = spawn_arena_alloc(&inv->arena, len ? len : 1);
	sched_put *sp = buf ? malloc(sizeof *sp) : NULL;
	if (!sp) {
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		gw_inv_destroy(inv);
		return;
	}
	/* The horizon and the system's quota of stored schedules (bounds.c). */
	char qmsg[300];
	gw_err err = gw_runtime_schedule_id(c->srv->rt, system, rq->scheduled_to, rest, sp->id,
	                                    qmsg, sizeof qmsg);
	if (err) {
		free(sp);
		gwi_ucall_reply(c, gw_err_status(err), qmsg, NULL);
		gw_inv_destroy(inv);
		return;
	}
	sp->c = c;
	sp->rt = c->srv->rt;
	spawn__invocation_request__pack(rq, buf);
	err = gw_persist_schedule(gw_runtime_persist(c->srv->rt), sp->id, rq->scheduled_to, buf,
	                          len, scheduled_stored, sp);
	gw_inv_destroy(inv);
	if (err) {
		gw_runtime_schedule_gone(sp->rt, sp->id);
		free(sp);
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
	}
}

/* strip_authorization drops "authorization" entries from a client's
 * request metadata, in place: it is the credential header's name, and the
 * request metadata reaches hosts as Context.metadata. */
static void strip_authorization(Spawn__InvocationRequest *rq)
{
	size_t k = 0;
	for (size_t i = 0; i < rq->n_metadata; i++) {
		const char *key = rq->metadata[i]->key ? rq->metadata[i]->key : "";
		if (!gw_authn_is_authorization(key, strlen(key)))
			rq->metadata[k++] = rq->metadata[i];
	}
	rq->n_metadata = k;
}

static void run_invoke(gwi_ucall *c, gw_inv *inv);

static void handle_invoke(gwi_ucall *c)
{
	gw_inv *inv = gw_inv_create(0);
	if (!inv) {
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	ProtobufCMessage *m = NULL;
	char why[GW_WC_PATH_MAX + 200];
	if (gwi_unpack_checked(c->srv, &spawn__invocation_request__descriptor, c->payload,
	                       &inv->arena, &m, why, sizeof why) ||
	    gw_wc_check_client_metadata((Spawn__InvocationRequest *)m, why, sizeof why)) {
		gw_inv_destroy(inv);
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
		return;
	}
	grpc_byte_buffer_destroy(c->payload);
	c->payload = NULL;
	inv->req = (Spawn__InvocationRequest *)m;
	inv->deadline_ms = gwi_deadline_ms(c->deadline);
	inv->user = c;
	Spawn__InvocationRequest *rq = inv->req;
	strip_authorization(rq);
	gwi_trace_from_md(&c->md, rq, &inv->arena, c->srv->o.limits.metadata_entries);
	if (c->srv->o.access) {
		const char *system = rq->system && rq->system->name ? rq->system->name : "";
		const char *name =
		    rq->actor && rq->actor->id && rq->actor->id->name ? rq->actor->id->name : "";
		/* The principal goes with the call: to the owner, when this
		 * member forwards it (ForwardRequest.principal). */
		grpc_status_code code = gwi_authorize_invoke(
		    c, system, name, rq->register_ref, rq->action_name ? rq->action_name : "", why,
		    sizeof why, &inv->arena, &inv->principal);
		if (code != GRPC_STATUS_OK) {
			gw_inv_destroy(inv);
			gwi_ucall_reply(c, code, why, NULL);
			return;
		}
	}
	run_invoke(c, inv);
}

/* async_routed_done answers an async call the router took (forwarded to
 * the actor's owner, which answered at its acceptance). */
static void async_routed_done(gw_inv *inv)
{
	gwi_ucall *c = inv->user;
	if (inv->err == GW_OK) {
		reply_accepted(c);
	} else {
		grpc_status_code code = inv->err == GW_EHOST ? (grpc_status_code)inv->host_code
		                                             : gw_err_status(inv->err);
		c->not_dispatched = inv->err == GW_EUNAVAIL && inv->not_dispatched;
		gwi_ucall_reply(c, code,
		                inv->msg[0] || inv->host_message ? inv->msg : gw_strerror(inv->err),
		                NULL);
	}
	gw_inv_destroy(inv);
}

/* run_invoke runs an Invoke whose request was checked and authorized (a
 * client's, or a peer's forward to this member as the actor's owner:
 * inv->local). */
static void run_invoke(gwi_ucall *c, gw_inv *inv)
{
	Spawn__InvocationRequest *rq = inv->req;
	if (rq->scheduled_to > spawn_wall_ms()) {
		accept_scheduled(c, inv);
		return;
	}
	if (!rq->async && rq->scheduled_to <= 0) {
		inv->done = invoke_done;
		/* From here the call frees inv. The close op may have seen the
		 * client go already (before c->inv was set): then cancel it here
		 * first, and the runtime refuses it (GW_ECANCELLED). */
		atomic_store(&c->inv, inv);
		if (atomic_load(&c->gone))
			gw_runtime_cancel(c->srv->rt, inv);
		gw_runtime_invoke(c->srv->rt, inv);
		return;
	}
	/* Async (or scheduled for a time already past): queue it, then answer,
	 * so a call the client makes after this answer cannot overtake it. In a
	 * cluster the owner queues it: the answer waits for its acceptance. */
	if (c->srv->o.router) {
		inv->done = async_routed_done;
		inv->user = c;
		inv->accept_only = true;
		if (gw_runtime_route(c->srv->rt, inv))
			return; /* the router took it */
	}
	inv->user = NULL;
	inv->deadline_ms = 0;
	inv->done = async_done;
	accept_async(c, inv);
}

/* ---- spawn.gateway.v1.Peer (docs/design/cluster.md) ------------------------------ */

/* handle_forward runs a call another member forwarded here as the actor's
 * owner, after checking that this member owns it in its own view; if not,
 * FAILED_PRECONDITION with the trailer GW_OWNER_KEY (it never forwards
 * further: routing.h, invariant 2). The peer is trusted for what it
 * checked at its edge (the caller's metadata, authorization). */
static void handle_forward(gwi_ucall *c)
{
	char peer[256], why[GW_WC_PATH_MAX + 200];
	grpc_status_code code = gwi_authorize_peer(c, peer, sizeof peer, why, sizeof why);
	if (code != GRPC_STATUS_OK) {
		gwi_ucall_reply(c, code, why, NULL);
		return;
	}
	gw_inv *inv = gw_inv_create(0);
	if (!inv) {
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	ProtobufCMessage *m = NULL;
	if (gwi_unpack_checked(c->srv, &spawn__gateway__v1__forward_request__descriptor, c->payload,
	                       &inv->arena, &m, why, sizeof why)) {
		gw_inv_destroy(inv);
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
		return;
	}
	grpc_byte_buffer_destroy(c->payload);
	c->payload = NULL;
	Spawn__Gateway__V1__ForwardRequest *fr = (Spawn__Gateway__V1__ForwardRequest *)m;
	if (!fr->request || fr->hops > GW_ROUTE_HOPS) {
		/* fr lives in inv's arena: take the answer before freeing it. */
		const char *bad = fr->request ? "hops over the limit" : "request is required";
		gw_inv_destroy(inv);
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, bad, NULL);
		return;
	}
	char owner[512];
	uint64_t version;
	int w = gw_router_owner(c->srv->o.router, fr->request, owner, sizeof owner, &version);
	if (w == GW_OWNER_OTHER || w == GW_OWNER_NOVIEW) {
		snprintf(why, sizeof why,
		         "member does not own the actor in its view %llu (sender's view %llu)",
		         (unsigned long long)version, (unsigned long long)fr->view_version);
		c->owner = strdup(owner);
		gw_inv_destroy(inv);
		gwi_ucall_reply(c, GRPC_STATUS_FAILED_PRECONDITION, why, NULL);
		return;
	}
	/* The owner (or no member serves the type: then it answers as a
	 * gateway without such a host does). */
	inv->req = fr->request;
	inv->deadline_ms = gwi_deadline_ms(c->deadline);
	inv->user = c;
	inv->local = true;
	inv->hops = (uint8_t)(fr->depth < 255 ? fr->depth : 255);
	if (fr->idempotency_key && fr->idempotency_key[0])
		inv->idem_key = fr->idempotency_key; /* in inv's arena: minted by a gateway */
	/* The entry member authorized the caller: its word for who that was
	 * is trusted (a peer of the policy said it), not checked again, and
	 * the call is not authorized a second time here. */
	if (fr->principal && fr->principal[0])
		inv->principal = fr->principal; /* in inv's arena; checked by the ingress */
	if (c->srv->o.access)
		GW_DEBUG(
		    "forward of %s/%s.%s from member %s (peer '%s') for principal '%s'",
		    fr->request->system && fr->request->system->name ? fr->request->system->name
		                                                     : "",
		    fr->request->actor && fr->request->actor->id && fr->request->actor->id->name
		        ? fr->request->actor->id->name
		        : "",
		    fr->request->action_name ? fr->request->action_name : "",
		    fr->sender_id ? fr->sender_id : "", peer,
		    inv->principal ? inv->principal : "(the cluster)");
	run_invoke(c, inv);
}

static void handle_ping(gwi_ucall *c)
{
	char peer[256], why[300];
	grpc_status_code code = gwi_authorize_peer(c, peer, sizeof peer, why, sizeof why);
	if (code != GRPC_STATUS_OK) {
		gwi_ucall_reply(c, code, why, NULL);
		return;
	}
	/* A member that fenced itself (or has not joined yet) is not alive as
	 * the id its view still names: the probe of a silent member must fail,
	 * so the others declare that row dead and take its leases. */
	if (gw_server_unready(c->srv) & GW_UNREADY_MEMBERSHIP) {
		gwi_ucall_reply(
		    c, GRPC_STATUS_UNAVAILABLE,
		    "this member is not joined (fenced or joining): not alive as any id", NULL);
		return;
	}
	char id[512];
	Spawn__Gateway__V1__PingReply r = SPAWN__GATEWAY__V1__PING_REPLY__INIT;
	gw_router_self(c->srv->o.router, id, sizeof id, &r.view_version);
	r.member_id = id;
	gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &r.base);
}

/* spawned: the runtime ran the SpawnRequest (gw_runtime_spawn_request). */
static void spawned(void *user, gw_err err, const char *msg)
{
	gwi_ucall *c = user;
	if (err) {
		gwi_ucall_reply(c, gw_err_status(err), msg, NULL);
		return;
	}
	Spawn__RequestStatus status = SPAWN__REQUEST_STATUS__INIT;
	status.status = SPAWN__STATUS__OK;
	Spawn__SpawnResponse resp = SPAWN__SPAWN_RESPONSE__INIT;
	resp.status = &status;
	gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &resp.base);
}

/* handle_spawn creates instances of UNNAMED actors: each ActorId names
 * the instance (name, system) and its template (parent). New instances are
 * recorded in the statestore before the answer, so they survive restarts;
 * creating an existing instance again is a no-op. Every instance is
 * authorized before any is created. */
static void handle_spawn(gwi_ucall *c)
{
	ProtobufCMessage *m = NULL;
	char why[GW_WC_PATH_MAX + 200];
	if (gwi_unpack_checked(c->srv, &spawn__spawn_request__descriptor, c->payload, NULL, &m, why,
	                       sizeof why)) {
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
		return;
	}
	Spawn__SpawnRequest *rq = (Spawn__SpawnRequest *)m;
	char msg[512] = "";
	grpc_status_code code = GRPC_STATUS_OK;
	for (size_t i = 0; i < rq->n_actors && code == GRPC_STATUS_OK; i++) {
		Spawn__Actors__ActorId *id = rq->actors[i];
		if (id && id->name && id->name[0] && id->system && id->system[0] && id->parent &&
		    id->parent[0]) /* malformed ones: the runtime says which */
			code = gwi_authorize_invoke(c, id->system, id->name, id->parent, NULL, msg,
			                            sizeof msg, NULL, NULL);
	}
	if (code != GRPC_STATUS_OK)
		gwi_ucall_reply(c, code, msg, NULL);
	else
		gw_runtime_spawn_request(c->srv->rt, rq->actors, rq->n_actors,
		                         rq->revision > 0 ? (uint64_t)rq->revision : 0, spawned, c);
	protobuf_c_message_free_unpacked(m, NULL);
}

void gwi_ucall_adopt(gw_server *s, gwi_cq *q, grpc_call *call, gpr_timespec deadline,
                     grpc_metadata_array *md, int method, void *ext)
{
	gwi_ucall *c = calloc(1, sizeof *c);
	if (!c) {
		/* No struct to answer with: cancel, so the client is not left waiting. */
		GW_ERROR("out of memory adopting a call");
		grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory",
		                             NULL);
		grpc_call_unref(call);
		free(ext);
		return;
	}
	c->tag.fn = ucall_tag;
	c->close_tag.fn = ucall_closed;
	atomic_init(&c->refs, 1);
	c->srv = s;
	c->q = q;
	c->method = method;
	c->ext = ext;
	c->call = call;
	c->deadline = deadline;
	c->md = *md;
	grpc_metadata_array_init(md);
	c->kind = gwi_call_admit(s, GWI_CALL_CLIENT);
	memset(&c->close_op, 0, sizeof c->close_op);
	c->close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	c->close_op.data.recv_close_on_server.cancelled = &c->cancelled;
	atomic_fetch_add(&c->refs, 1);
	if (grpc_call_start_batch(c->call, &c->close_op, 1, &c->close_tag, NULL) != GRPC_CALL_OK) {
		GW_ERROR("start_batch for a call's close failed");
		atomic_fetch_sub(&c->refs, 1);
	}
	if (c->kind != GWI_CALL_CLIENT) {
		gwi_ucall_refuse_draining(c);
		return;
	}
	c->phase = GWI_C_RECEIVING;
	memset(c->ops, 0, sizeof c->ops);
	c->ops[0].op = GRPC_OP_RECV_MESSAGE;
	c->ops[0].data.recv_message.recv_message = &c->payload;
	if (grpc_call_start_batch(c->call, c->ops, 1, &c->tag, NULL) != GRPC_CALL_OK) {
		c->phase = GWI_C_REQUESTED;
		gwi_ucall_reply(c, GRPC_STATUS_INTERNAL, "cannot receive the request", NULL);
	}
}

static void ucall_tag(gwi_tag *t, bool ok)
{
	gwi_ucall *c = (gwi_ucall *)t;
	if (c->phase == GWI_C_RECEIVING) {
		/* An adopted call's request message (gwi_ucall_adopt). */
		c->phase = GWI_C_REQUESTED;
		if (!ok || !c->payload)
			gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, "no request message",
			                NULL);
		else
			gwi_plain_handle(c);
		return;
	}
	if (c->phase == GWI_C_REPLYING) {
		grpc_slice_unref(c->details);
		ucall_rele(c);
		return;
	}
	gw_server *srv = c->srv;
	if (!ok) {
		/* Server shutting down: the slot is returned unused. */
		c->call = NULL;
		ucall_rele(c);
		slot_done(srv);
		return;
	}
	bool health = c->method == GWI_M_HEALTH;
	c->kind = gwi_call_admit(c->srv, health ? GWI_CALL_LIGHT : GWI_CALL_CLIENT);
	if (health)
		gwi_health_request(c->srv, c->q, c->grp);
	else
		gwi_ucall_request(c->srv, c->q, c->method);
	/* The close op completes as soon as the client cancels (or when the
	 * call ends), not only after the reply: a call whose client went away
	 * leaves the runtime at once instead of running later. */
	memset(&c->close_op, 0, sizeof c->close_op);
	c->close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	c->close_op.data.recv_close_on_server.cancelled = &c->cancelled;
	atomic_fetch_add(&c->refs, 1);
	if (grpc_call_start_batch(c->call, &c->close_op, 1, &c->close_tag, NULL) != GRPC_CALL_OK) {
		GW_ERROR("start_batch for a call's close failed");
		atomic_fetch_sub(&c->refs, 1);
	}
	if (health) {
		gwi_health_handle(c);
	} else if (c->kind != GWI_CALL_CLIENT) {
		/* Arrived after the drain began (gw_server_shutdown): never
		 * dispatched, so a client may retry it on another gateway. */
		gwi_ucall_refuse_draining(c);
	} else if (c->method == GWI_M_INVOKE) {
		handle_invoke(c);
	} else if (c->method == GWI_M_FORWARD) {
		handle_forward(c);
	} else if (c->method == GWI_M_PING) {
		handle_ping(c);
	} else if (c->method == GWI_M_PEER_ADMIN) {
		/* Another member's word for an Admin call it authorized at its
		 * edge: only a peer principal may send one (docs/security.md). */
		char peer[160], why[300];
		grpc_status_code code = gwi_authorize_peer(c, peer, sizeof peer, why, sizeof why);
		if (code == GRPC_STATUS_OK)
			gwi_peer_admin_handle(c);
		else
			gwi_ucall_reply(c, code, why, NULL);
	} else if (c->method == GWI_M_PEER_CONTRACTS) {
		gwi_peer_contracts_handle(c);
	} else if (c->method == GWI_M_SPAWN) {
		handle_spawn(c);
	} else {
		char why[300];
		grpc_status_code code = gwi_authorize_admin(c, why, sizeof why);
		if (code == GRPC_STATUS_OK)
			gwi_admin_handle(c);
		else
			gwi_ucall_reply(c, code, why, NULL);
	}
	/* Counted as a call, and a refusal's reply started: the shutdown's
	 * cancel_all may follow (c may be gone by now; srv is not). */
	slot_done(srv);
}

static void refuse_now(gwi_ucall *c)
{
	c->not_dispatched = true;
	gwi_ucall_reply(c, GRPC_STATUS_UNAVAILABLE, "the gateway is shutting down", NULL);
}

void gwi_ucall_refuse_draining(gwi_ucall *c)
{
	gw_server *s = c->srv;
	pthread_mutex_lock(&s->mu);
	bool park = s->parking && s->nparked < GWI_PARK_MAX;
	if (park) {
		c->park_next = s->parked;
		s->parked = c;
		s->nparked++;
	}
	pthread_mutex_unlock(&s->mu);
	if (!park)
		refuse_now(c);
}

/* ucall_closed: the close op completed. cancelled says the client went
 * away before the status was sent (cancelled, disconnected, or its
 * deadline passed: that last case is left to the runtime's own deadline,
 * so the caller's answer and the counts stay those of a deadline). */
static void ucall_closed(gwi_tag *t, bool ok)
{
	gwi_ucall *c = (gwi_ucall *)(void *)((char *)t - offsetof(gwi_ucall, close_tag));
	bool deadline = gpr_time_cmp(c->deadline, gpr_inf_future(c->deadline.clock_type)) != 0 &&
	                gpr_time_cmp(gpr_now(c->deadline.clock_type), c->deadline) >= 0;
	if (ok && c->cancelled && !deadline && !atomic_load(&c->answered)) {
		atomic_store(&c->gone, true);
		gw_inv *inv = atomic_load(&c->inv);
		if (inv && !atomic_load(&c->answered))
			gw_runtime_cancel(c->srv->rt, inv);
	}
	ucall_rele(c);
}

/* ---- threads and lifecycle ------------------------------------------------------ */

static void *cq_main(void *arg)
{
	gwi_cq *q = arg;
	for (;;) {
		grpc_event ev =
		    grpc_completion_queue_next(q->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE && ev.tag)
			((gwi_tag *)ev.tag)->fn(ev.tag, ev.success != 0);
	}
	return NULL;
}

gw_err gw_server_create(gw_server **out, const gw_server_opts *o, gw_runtime *rt, gw_registry *reg,
                        char *why, size_t whylen)
{
	gw_server *s = calloc(1, sizeof *s);
	if (!s)
		return GW_ENOMEM;
	s->o = *o;
	if (!(s->sysix = gwi_sysix_create())) {
		free(s);
		return GW_ENOMEM;
	}
	if (s->o.threads <= 0) {
		/* One CQ thread per CPU this process may run on (taskset, cgroups). */
		cpu_set_t set;
		int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
		if (n <= 0)
			n = (int)sysconf(_SC_NPROCESSORS_ONLN);
		s->o.threads = n > 0 ? n : 1;
	}
	if (s->o.max_message_bytes <= 0)
		s->o.max_message_bytes = 4 << 20;
	if (s->o.drain_ms <= 0)
		s->o.drain_ms = 5000;
	gw_wc_limits_resolve(&s->o.limits);
	if (!s->o.host_queue_bytes)
		s->o.host_queue_bytes = (size_t)64 << 20;
	if (s->o.host_stall_ms <= 0)
		s->o.host_stall_ms = 10000;
	if (!s->o.host_batch)
		s->o.host_batch = 128;
	if (s->o.host_batch > SPAWN_BATCH_MAX_ITEMS)
		s->o.host_batch = SPAWN_BATCH_MAX_ITEMS;
	if (!s->o.host_batch_bytes)
		s->o.host_batch_bytes = 256 << 10;
	/* A batch must fit the host's receive limit (the same as ours): its
	 * items plus the batch's own tag and length. */
	if (s->o.host_batch_bytes > (size_t)s->o.max_message_bytes - 16)
		s->o.host_batch_bytes = (size_t)s->o.max_message_bytes - 16;
	pthread_mutex_init(&s->hmu, NULL);
	s->rt = rt;
	s->reg = reg;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->wcv, NULL);
	grpc_arg args[] = {
	    {GRPC_ARG_INTEGER,
	     GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
	     {.integer = s->o.max_message_bytes}},
	    {GRPC_ARG_INTEGER,
	     GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
	     {.integer = s->o.max_message_bytes}},
	    /* Find hosts that vanished without closing their connection. */
	    {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = 10000}},
	    {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = 5000}},
	    {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, {.integer = 1}},
	    {GRPC_ARG_INTEGER,
	     GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
	     {.integer = 1000}},
	    {GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MAX_PING_STRIKES, {.integer = 0}},
	    /* A second gateway on an address in use must fail, not share it. */
	    {GRPC_ARG_INTEGER, GRPC_ARG_ALLOW_REUSEPORT, {.integer = 0}},
	    /* No channelz: nothing reads it, and it counts every call and message
	     * (docs/benchmarks.md, "CPU per call"). */
	    {GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_CHANNELZ, {.integer = 0}},
	};
	grpc_channel_args ca = {sizeof args / sizeof args[0], args};
	static const char *const paths[GWI_M_COUNT] = {
	    [GWI_M_INVOKE] = "/spawn.gateway.v1.ActorGateway/Invoke",
	    [GWI_M_SPAWN] = "/spawn.gateway.v1.ActorGateway/Spawn",
	    [GWI_M_GET_STATE] = "/spawn.gateway.v1.Admin/GetState",
	    [GWI_M_LIST_REVISIONS] = "/spawn.gateway.v1.Admin/ListRevisions",
	    [GWI_M_RESTORE] = "/spawn.gateway.v1.Admin/Restore",
	    [GWI_M_KEY_ROTATION] = "/spawn.gateway.v1.Admin/KeyRotation",
	    [GWI_M_FORGET] = "/spawn.gateway.v1.Admin/Forget",
	    [GWI_M_FORWARD] = GW_PEER_FORWARD,
	    [GWI_M_PING] = GW_PEER_PING,
	    [GWI_M_PEER_ADMIN] = GW_PEER_ADMIN,
	    [GWI_M_LIST] = "/spawn.gateway.v1.Admin/List",
	    [GWI_M_MEMBERS] = "/spawn.gateway.v1.Admin/Members",
	    [GWI_M_LIST_SCHEDULES] = "/spawn.gateway.v1.Admin/ListSchedules",
	    [GWI_M_CANCEL_SCHEDULE] = "/spawn.gateway.v1.Admin/CancelSchedule",
	    [GWI_M_PEER_CONTRACTS] = GW_PEER_CONTRACTS,
	};
	/* The groups of listeners: each role is served by exactly one; the
	 * health group (last) serves no role, and its Health reports on the
	 * client, host and Admin services. */
	const char *const *lists[GWI_GROUPS] = {o->listen, o->host_listen, o->admin_listen,
	                                        o->peer_listen, o->health_listen};
	const size_t ns[GWI_GROUPS] = {o->n_listen, o->n_host_listen, o->n_admin_listen,
	                               o->n_peer_listen, o->n_health_listen};
	const unsigned roles[GWI_GROUPS] = {
	    GWI_ROLE_CLIENT | (o->n_host_listen ? 0 : GWI_ROLE_HOST) |
	        (o->n_admin_listen ? 0 : GWI_ROLE_ADMIN) | (o->n_peer_listen ? 0 : GWI_ROLE_PEER),
	    GWI_ROLE_HOST, GWI_ROLE_ADMIN, GWI_ROLE_PEER, 0};
	const unsigned all_roles = GWI_ROLE_CLIENT | GWI_ROLE_HOST | GWI_ROLE_ADMIN;
	s->nlisten = o->n_listen + o->n_host_listen + o->n_admin_listen + o->n_peer_listen +
	             o->n_health_listen;
	/* Not ready until main says start-up is complete (server.h). */
	atomic_init(&s->unready, GW_UNREADY_STARTING);
	s->ncq = s->o.threads;
	s->cqs = calloc((size_t)s->ncq, sizeof *s->cqs);
	s->ports = calloc(s->nlisten ? s->nlisten : 1, sizeof *s->ports);
	if (!s->cqs || !s->ports)
		goto nomem;
	for (int i = 0; i < s->ncq; i++) {
		s->cqs[i].cq = grpc_completion_queue_create_for_next(NULL);
		s->cqs[i].srv = s;
		s->cqs[i].idx = i;
	}
	size_t li = 0; /* listener index across the groups */
	for (int k = 0; k < GWI_GROUPS; k++) {
		if (ns[k] == 0)
			continue;
		gwi_group *g = &s->groups[s->ngroups++];
		g->srv = s;
		g->roles = roles[k];
		g->reports = k == GWI_GROUPS - 1 ? all_roles : roles[k];
		g->server = grpc_server_create(&ca, NULL);
		g->m_health =
		    grpc_server_register_method(g->server, "/grpc.health.v1.Health/Check", NULL,
		                                GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		for (int m = 0; m < GWI_M_COUNT; m++) {
			bool peer = m == GWI_M_FORWARD || m == GWI_M_PING ||
			            m == GWI_M_PEER_ADMIN || m == GWI_M_PEER_CONTRACTS;
			unsigned role = peer                                    ? GWI_ROLE_PEER
			                : m == GWI_M_INVOKE || m == GWI_M_SPAWN ? GWI_ROLE_CLIENT
			                                                        : GWI_ROLE_ADMIN;
			if (!(g->roles & role) || (peer && !s->o.router))
				continue;
			s->msrv[m] = g->server;
			s->methods[m] = grpc_server_register_method(
			    g->server, paths[m], NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
			    0);
		}
		if (g->roles & GWI_ROLE_HOST) {
			s->hsrv = g->server;
			s->m_connect = grpc_server_register_method(
			    g->server, "/spawn.gateway.v1.HostGateway/Connect", NULL,
			    GRPC_SRM_PAYLOAD_NONE, 0);
		}
		for (int i = 0; i < s->ncq; i++)
			grpc_server_register_completion_queue(g->server, s->cqs[i].cq, NULL);
		for (size_t i = 0; i < ns[k]; i++, li++) {
			const char *addr = lists[k][i];
			/* --health-listen is plaintext even with TLS: Kubernetes'
			 * grpc probes and most load balancers' health checks
			 * speak no TLS, and its answers reveal only readiness. */
			bool tls = s->o.tls && k != GWI_GROUPS - 1;
			grpc_server_credentials *cr =
			    tls ? gw_tls_server_credentials(s->o.tls)
			        : grpc_insecure_server_credentials_create();
			if (!cr)
				goto nomem;
			int port = grpc_server_add_http2_port(g->server, addr, cr);
			grpc_server_credentials_release(cr);
			if (port <= 0) {
				snprintf(
				    why, whylen,
				    "cannot listen on %s: the address is in use or not available",
				    addr);
				gw_server_destroy(s);
				return GW_ECONFIG;
			}
			s->ports[li] = strncmp(addr, "unix:", 5) ? port : 0;
		}
	}
	*out = s;
	return GW_OK;
nomem:
	gw_server_destroy(s);
	return GW_ENOMEM;
}

size_t gw_server_listeners(const gw_server *s)
{
	return s->nlisten;
}

const char *gw_server_address(const gw_server *s, size_t i)
{
	const gw_server_opts *o = &s->o;
	if (i < o->n_listen)
		return o->listen[i];
	i -= o->n_listen;
	if (i < o->n_host_listen)
		return o->host_listen[i];
	i -= o->n_host_listen;
	if (i < o->n_admin_listen)
		return o->admin_listen[i];
	i -= o->n_admin_listen;
	if (i < o->n_peer_listen)
		return o->peer_listen[i];
	i -= o->n_peer_listen;
	return i < o->n_health_listen ? o->health_listen[i] : NULL;
}

void gw_server_set_unready(gw_server *s, unsigned conds, bool on)
{
	unsigned before =
	    on ? atomic_fetch_or(&s->unready, conds) : atomic_fetch_and(&s->unready, ~conds);
	unsigned after = on ? before | conds : before & ~conds;
	if (!before != !after)
		GW_INFO("readiness: %s (conditions 0x%x)", after ? "NOT_SERVING" : "SERVING",
		        after);
}

unsigned gw_server_unready(const gw_server *s)
{
	return atomic_load(&((gw_server *)s)->unready);
}

int gw_server_port(const gw_server *s, size_t i)
{
	return i < s->nlisten ? s->ports[i] : 0;
}

/* watchdog_main: stalled hosts and hosts holding a timed-out task past its
 * grace are disconnected (gwi_host_watch). It waits on its own condition
 * variable (wcv), signalled only to stop it: sharing cv with the call
 * accounting woke it twice per call. */
static void *watchdog_main(void *arg)
{
	gw_server *s = arg;
	int64_t next = gwi_host_now_ms() + GWI_WATCH_MS;
	pthread_mutex_lock(&s->mu);
	while (!s->watchdog_stop) {
		int64_t now = gwi_host_now_ms();
		if (now < next) {
			gw_cond_wait_ms(&s->wcv, &s->mu, next - now);
			continue;
		}
		next = now + GWI_WATCH_MS;
		pthread_mutex_unlock(&s->mu);
		gwi_host_watch(s, now);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

gw_err gw_server_start(gw_server *s)
{
	for (int g = 0; g < s->ngroups; g++)
		grpc_server_start(s->groups[g].server);
	s->started = true;
	for (int i = 0; i < s->ncq; i++) {
		for (int k = 0; k < SLOTS_PER_CQ; k++) {
			gwi_ucall_request(s, &s->cqs[i], GWI_M_INVOKE);
			if (s->methods[GWI_M_FORWARD]) /* as hot as Invoke in a cluster */
				gwi_ucall_request(s, &s->cqs[i], GWI_M_FORWARD);
		}
		for (int k = 0; k < 4; k++)
			gwi_host_request(s, &s->cqs[i]);
		for (int g = 0; g < s->ngroups; g++)
			for (int k = 0; k < 2; k++) {
				gwi_gcall_request(s, &s->groups[g], &s->cqs[i]);
				gwi_health_request(s, &s->cqs[i], &s->groups[g]);
			}
		for (int m = GWI_M_SPAWN; m < GWI_M_COUNT; m++)
			for (int k = 0; k < 2 && m != GWI_M_FORWARD && s->methods[m]; k++)
				gwi_ucall_request(s, &s->cqs[i], m);
	}
	for (int i = 0; i < s->ncq; i++)
		if (pthread_create(&s->cqs[i].thread, NULL, cq_main, &s->cqs[i]))
			return GW_ENOMEM;
	if (pthread_create(&s->watchdog, NULL, watchdog_main, s))
		return GW_ENOMEM;
	s->watchdog_started = true;
	return GW_OK;
}

static void watchdog_join(gw_server *s)
{
	if (!s->watchdog_started)
		return;
	pthread_mutex_lock(&s->mu);
	s->watchdog_stop = true;
	pthread_cond_broadcast(&s->wcv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->watchdog, NULL);
	s->watchdog_started = false;
}

/* cv_wait_ms waits on s->cv for at most ms (s->mu held). */
static void cv_wait_ms(gw_server *s, int64_t ms)
{
	gw_cond_wait_ms(&s->cv, &s->mu, ms);
}

/* wait_calls waits up to ms for the client work calls to finish, and
 * with all for the host streams and the light calls too. */
static bool wait_calls(gw_server *s, bool all, int64_t ms)
{
	int64_t end = spawn_now_ns() / 1000000 + ms;
	pthread_mutex_lock(&s->mu);
	while (s->client_calls > 0 || (all && (s->host_calls > 0 || s->light_calls > 0))) {
		int64_t left = end - spawn_now_ns() / 1000000;
		if (left <= 0)
			break;
		cv_wait_ms(s, left);
	}
	bool done = s->client_calls == 0 && (!all || (s->host_calls == 0 && s->light_calls == 0));
	pthread_mutex_unlock(&s->mu);
	return done;
}

/* wait_slots waits up to ms until no posted slot is outstanding (the
 * server is shutting down: each completes, with a call or without) and
 * every light call (a refusal, a Health check) has ended, its status
 * delivered. */
static bool wait_slots(gw_server *s, int64_t ms)
{
	int64_t end = spawn_now_ns() / 1000000 + ms;
	pthread_mutex_lock(&s->mu);
	while (atomic_load(&s->slots) > 0 || s->light_calls > 0) {
		int64_t left = end - spawn_now_ns() / 1000000;
		if (left <= 0)
			break;
		cv_wait_ms(s, left);
	}
	bool done = atomic_load(&s->slots) == 0 && s->light_calls == 0;
	pthread_mutex_unlock(&s->mu);
	return done;
}

/* park_wait waits ms (the drain's last phase: calls are parked meanwhile). */
static void park_wait(gw_server *s, int64_t ms)
{
	int64_t end = spawn_now_ns() / 1000000 + ms;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		int64_t left = end - spawn_now_ns() / 1000000;
		if (left <= 0)
			break;
		cv_wait_ms(s, left);
	}
	pthread_mutex_unlock(&s->mu);
}

static void shutdown_tag(gwi_tag *t, bool ok)
{
	gwi_group *g = (gwi_group *)((char *)t - offsetof(gwi_group, shutdown_tag));
	gw_server *s = g->srv;
	pthread_mutex_lock(&s->mu);
	s->shutdowns_pending--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* shutdown_groups asks every group's server to stop accepting; each
 * notifies on the first CQ. */
static void shutdown_groups(gw_server *s)
{
	pthread_mutex_lock(&s->mu);
	s->shutdowns_pending = s->ngroups;
	pthread_mutex_unlock(&s->mu);
	for (int g = 0; g < s->ngroups; g++) {
		s->groups[g].shutdown_tag.fn = shutdown_tag;
		grpc_server_shutdown_and_notify(s->groups[g].server, s->cqs[0].cq,
		                                &s->groups[g].shutdown_tag);
	}
}

void gw_server_shutdown(gw_server *s)
{
	if (!s || !s->started)
		return;
	pthread_mutex_lock(&s->mu);
	bool again = s->draining;
	s->draining = true; /* from here new work calls and hosts are refused */
	pthread_mutex_unlock(&s->mu);
	if (again)
		return;
	int64_t began = spawn_now_ns() / 1000000;
	gw_server_set_unready(s, GW_UNREADY_DRAINING, true);
	/* The drain: the listeners stay open, so Health answers NOT_SERVING
	 * and a new call is refused UNAVAILABLE (not dispatched: a client may
	 * retry it elsewhere) while the calls in flight finish. */
	if (!wait_calls(s, false, s->o.drain_ms))
		GW_WARN("shutdown: client calls still running after %lld ms; cancelling",
		        (long long)s->o.drain_ms);
	/* The last phase: calls arriving now are parked, not refused, for
	 * GWI_PARK_MS, so that a client refused during the drain, which sends
	 * again after a pause, is waiting for an answer when gRPC's shutdown
	 * begins rather than sending then (gRPC cancels a stream that reaches
	 * it after its shutdown began: CANCELLED, an unknown outcome). The
	 * parked calls are refused after the shutdown: HTTP/2 frames keep
	 * their order on a connection, so the client reads the GOAWAY first
	 * and sends its next call on a new connection (refused: the
	 * listeners are closed) or to another member. */
	pthread_mutex_lock(&s->mu);
	s->parking = true;
	pthread_mutex_unlock(&s->mu);
	/* In cluster mode, also until every peer has seen this member LEAVING
	 * (written just before this began): a peer forwards many calls at once
	 * over one connection, so it must have stopped sending them here. */
	int64_t park = GWI_PARK_MS, left = began + s->o.leave_ms - spawn_now_ns() / 1000000;
	park_wait(s, left > park ? left : park);
	/* Slots are posted until gRPC's shutdown: a call arriving meanwhile
	 * finds one and is refused not-dispatched, where a call left waiting
	 * for a slot would be killed by the shutdown. A slot posted after it
	 * completes at once, unused. (A stream that reaches gRPC after its
	 * shutdown began is cancelled by gRPC itself: no grace period here
	 * would help, it would only keep accepting such streams longer.) */
	shutdown_groups(s);                    /* every listener of every role stops accepting */
	atomic_store(&s->shutting_down, true); /* no slot is posted again */
	pthread_mutex_lock(&s->mu);
	s->parking = false;
	gwi_ucall *parked = s->parked;
	s->parked = NULL;
	s->nparked = 0;
	pthread_mutex_unlock(&s->mu);
	while (parked) {
		gwi_ucall *next = parked->park_next;
		refuse_now(parked);
		parked = next;
	}
	/* A call gRPC matched with one of our slots just before this reaches
	 * its CQ thread after it: it must be refused not-dispatched there (the
	 * client may retry it elsewhere), and the refusal delivered, not
	 * cancelled below ("Cancelling all calls", UNAVAILABLE with no trailer,
	 * or CANCELLED: an unknown outcome). The shutdown completes every slot
	 * left unmatched. */
	if (!wait_slots(s, 2000))
		GW_WARN("shutdown: call slots or refusals still pending after 2 s");
	for (int g = 0; g < s->ngroups; g++)
		grpc_server_cancel_all_calls(s->groups[g].server);
	if (!wait_calls(s, true, 10000))
		GW_WARN("shutdown: calls did not finish in 10 s");
	pthread_mutex_lock(&s->mu);
	while (s->shutdowns_pending > 0)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	watchdog_join(s); /* every host call has finished: nothing left to watch */
}

void gw_server_destroy(gw_server *s)
{
	if (!s)
		return;
	if (s->started) {
		gw_server_shutdown(s);
		watchdog_join(s); /* gw_server_start may have failed half-way */
		for (int i = 0; i < s->ncq; i++)
			grpc_completion_queue_shutdown(s->cqs[i].cq);
		for (int i = 0; i < s->ncq; i++)
			pthread_join(s->cqs[i].thread, NULL);
	}
	if (s->ngroups > 0 && !s->started) {
		/* A listener may have been added before a later address failed:
		 * gRPC requires a shutdown before destroy then. The notifications
		 * are drained with the queue below. */
		shutdown_groups(s);
	}
	for (int g = 0; g < s->ngroups; g++)
		grpc_server_destroy(s->groups[g].server);
	if (!s->started)
		for (int i = 0; s->cqs && i < s->ncq; i++)
			if (s->cqs[i].cq)
				grpc_completion_queue_shutdown(s->cqs[i].cq);
	for (int i = 0; s->cqs && i < s->ncq; i++)
		if (s->cqs[i].cq) {
			if (!s->started)
				while (grpc_completion_queue_next(
				           s->cqs[i].cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
				           .type != GRPC_QUEUE_SHUTDOWN)
					;
			grpc_completion_queue_destroy(s->cqs[i].cq);
		}
	free(s->cqs);
	free(s->ports);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->wcv);
	pthread_mutex_destroy(&s->hmu);
	gwi_sysix_destroy(s->sysix);
	free(s);
}
