/* workflow.c - effects, broadcast, pipe and forward as invocations. */
#include "workflow.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "runtime_int.h"

#define MAX_EFFECT_RETRIES 8

/* child_new makes an invocation of (system, actor, action) from parent
 * with payload (NULL = Noop). Strings and bytes are copied into the
 * child's arena. */
static gw_inv *child_new(const gw_inv *parent, const char *system, const char *actor,
                         const char *action, const char *from_system, const char *from_actor,
                         const char *type_url, const uint8_t *data, size_t len, bool metadata)
{
	gw_inv *c = gw_inv_create(0);
	if (!c)
		return NULL;
	spawn_arena *a = &c->arena;
	Spawn__InvocationRequest *rq = spawn_arena_alloc(a, sizeof *rq);
	Spawn__Actors__ActorSystem *sys = spawn_arena_alloc(a, sizeof *sys);
	Spawn__Actors__Actor *act = spawn_arena_alloc(a, sizeof *act);
	Spawn__Actors__ActorId *id = spawn_arena_alloc(a, sizeof *id);
	Spawn__Actors__ActorId *caller = spawn_arena_alloc(a, sizeof *caller);
	if (!rq || !sys || !act || !id || !caller)
		goto fail;
	spawn__invocation_request__init(rq);
	spawn__actors__actor_system__init(sys);
	spawn__actors__actor__init(act);
	spawn__actors__actor_id__init(id);
	spawn__actors__actor_id__init(caller);
	sys->name = spawn_arena_strdup(a, system);
	id->name = spawn_arena_strdup(a, actor);
	id->system = sys->name;
	act->id = id;
	caller->name = spawn_arena_strdup(a, from_actor);
	caller->system = spawn_arena_strdup(a, from_system);
	rq->system = sys;
	rq->actor = act;
	rq->action_name = spawn_arena_strdup(a, action);
	rq->caller = caller;
	if (type_url) {
		Google__Protobuf__Any *any = spawn_arena_alloc(a, sizeof *any);
		if (!any)
			goto fail;
		google__protobuf__any__init(any);
		any->type_url = spawn_arena_strdup(a, type_url);
		any->value.data = spawn_arena_memdup(a, data, len);
		any->value.len = len;
		rq->payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
		rq->value = any;
	} else {
		Spawn__Noop *noop = spawn_arena_alloc(a, sizeof *noop);
		if (!noop)
			goto fail;
		spawn__noop__init(noop);
		rq->payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_NOOP;
		rq->noop = noop;
	}
	if (metadata && parent->req->n_metadata) {
		size_t m = parent->req->n_metadata;
		rq->metadata = spawn_arena_alloc(a, m * sizeof *rq->metadata);
		if (!rq->metadata)
			goto fail;
		for (size_t i = 0; i < m; i++) {
			Spawn__InvocationRequest__MetadataEntry *e =
			    spawn_arena_alloc(a, sizeof *e);
			if (!e)
				goto fail;
			spawn__invocation_request__metadata_entry__init(e);
			e->key = spawn_arena_strdup(a, parent->req->metadata[i]->key);
			e->value = spawn_arena_strdup(a, parent->req->metadata[i]->value);
			rq->metadata[i] = e;
		}
		rq->n_metadata = m;
	}
	if (!sys->name || !id->name || !rq->action_name || !caller->name || !caller->system)
		goto fail;
	c->req = rq;
	c->hops = parent->hops + 1;
	c->deadline_ms = parent->deadline_ms;
	return c;
fail:
	gw_inv_destroy(c);
	return NULL;
}

/* chain_done completes the parent of a pipe/forward with its result; an
 * error says where it came from ("pipe to sys/actor.Action: ..."). */
static void chain_done(gw_inv *child)
{
	gw_inv *parent = child->user;
	const Spawn__InvocationRequest *rq = child->req;
	parent->err = child->err;
	parent->host_code = child->host_code;
	if (child->err) {
		const char *why = child->msg[0] ? child->msg : gw_strerror(child->err);
		int n = snprintf(parent->msg, sizeof parent->msg, "%s to %s/%s.%s: %s",
		                 child->route == 2 ? "forward" : "pipe", rq->system->name,
		                 rq->actor->id->name, rq->action_name, why);
		if (n >= (int)sizeof parent->msg) {
			/* cut at a character boundary, never inside a UTF-8 sequence */
			size_t i = sizeof parent->msg - 1;
			while (i > 0 && ((unsigned char)parent->msg[i] & 0xC0) == 0x80)
				i--;
			parent->msg[i] = 0;
		}
	} else {
		memcpy(parent->msg, child->msg, sizeof parent->msg);
	}
	gw_blob_rele(parent->reply);
	parent->reply = child->reply;
	child->reply = NULL;
	gw_inv_destroy(child);
	parent->done(parent);
}

/* fire_over ends a fire-and-forget invocation for good: an outbox
 * delivery is acknowledged to its source actor first. */
static void fire_over(gw_inv *inv)
{
	/* Refused because the gateway is stopping: the entry stays stored and
	 * goes out after the restart. */
	gw_runtime *rt = inv->rt;
	if (inv->outbox_src && rt && inv->err != GW_ESHUTDOWN)
		gwi_outbox_ack(rt, inv);
	gw_inv_destroy(inv);
	if (rt)
		gwi_fx_over(rt); /* room for a parked effect */
}

/* target_name: the actor an effect names, for log lines. A side effect a
 * host sent may name none (refused or stored, then logged): found by
 * fuzz_host_message. */
static const char *target_name(const Spawn__InvocationRequest *rq)
{
	return rq->actor && rq->actor->id && rq->actor->id->name ? rq->actor->id->name
	                                                         : "(no actor)";
}

void gwi_wf_fire_done(gw_inv *inv)
{
	const Spawn__InvocationRequest *rq = inv->req;
	const char *target = target_name(rq);
	if (inv->err == GW_OK) {
		fire_over(inv);
		return;
	}
	bool retryable = inv->err == GW_EUNAVAIL || inv->err == GW_ETIMEDOUT ||
	                 inv->err == GW_EFULL || inv->err == GW_EFENCED || inv->err == GW_ENOMEM;
	if (retryable && inv->retries < MAX_EFFECT_RETRIES && inv->rt) {
		int64_t delay = 100LL << inv->retries;
		GW_WARN(
		    "invocation %s.%s from %s (side effect or broadcast) failed: %s; retry %d in "
		    "%lld ms",
		    target, rq->action_name, rq->caller ? rq->caller->name : "?",
		    inv->msg[0] ? inv->msg : gw_strerror(inv->err), inv->retries + 1,
		    (long long)delay);
		inv->retries++;
		gwi_runtime_retry(inv->rt, inv, delay);
		return;
	}
	GW_ERROR("invocation %s.%s from %s (side effect or broadcast) failed for good: %s", target,
	         rq->action_name, rq->caller ? rq->caller->name : "?",
	         inv->msg[0] ? inv->msg : gw_strerror(inv->err));
	fire_over(inv);
}

static void push_fire(gw_wf *wf, gw_inv *c)
{
	c->done = gwi_wf_fire_done;
	c->deadline_ms = 0; /* nobody waits for it */
	c->next = wf->fire;
	wf->fire = c;
	wf->n_fire++;
}

typedef struct bcast {
	const gw_inv *parent;
	const char *system, *name;
	const Spawn__Broadcast *b;
	gw_wf *wf;
	gw_inv *before; /* wf->fire before the broadcast: its deliveries are above */
	bool oom;
} bcast;

static void on_subscriber(void *user, const char *actor, const char *action)
{
	bcast *bc = user;
	/* One delivery per subscriber actor: in a cluster another member's
	 * hosts may list one that a host here serves too. */
	for (gw_inv *i = bc->wf->fire; i && i != bc->before; i = i->next)
		if (!strcmp(i->req->actor->id->name, actor))
			return;
	const Google__Protobuf__Any *v =
	    bc->b->payload_case == SPAWN__BROADCAST__PAYLOAD_VALUE ? bc->b->value : NULL;
	gw_inv *c = child_new(bc->parent, bc->system, actor, action, bc->system, bc->name,
	                      v ? (v->type_url ? v->type_url : "") : NULL, v ? v->value.data : NULL,
	                      v ? v->value.len : 0, false);
	if (!c) {
		bc->oom = true;
		return;
	}
	gwi_trace_child(bc->parent, c, false);
	push_fire(bc->wf, c);
}

gw_err gwi_wf_build(gw_registry *reg, const gw_inv *parent, const char *system, const char *name,
                    const Spawn__Workflow *w, const gw_blob *reply, gw_wf *out, char *msg, size_t n)
{
	memset(out, 0, sizeof *out);
	if (!w)
		return GW_OK;
	bool routed = w->routing_case == SPAWN__WORKFLOW__ROUTING_PIPE ||
	              w->routing_case == SPAWN__WORKFLOW__ROUTING_FORWARD;
	if ((routed || w->n_effects || w->broadcast) && parent->hops + 1 > GW_MAX_HOPS) {
		snprintf(msg, n, "workflow of %s cut: more than %d hops (a cycle?)", name,
		         GW_MAX_HOPS);
		return GW_EINVAL;
	}
	/* Every entry is checked before anything is built: one the gateway
	 * cannot accept fails the turn (runtime.c: the caller gets the error,
	 * the turn's state is not kept), never a silent drop. */
	for (size_t i = 0; i < w->n_effects; i++) {
		const Spawn__SideEffect *e = w->effects[i];
		const Spawn__InvocationRequest *r = e ? e->request : NULL;
		const char *why =
		    !r ? "has no request"
		    : !r->actor || !r->actor->id || !r->actor->id->name || !r->actor->id->name[0]
		        ? "names no actor"
		    : !r->action_name || !r->action_name[0] ? "names no action"
		                                            : NULL;
		if (why) {
			snprintf(msg, n, "side effect %zu of %s %s", i + 1, name, why);
			return GW_EINVAL;
		}
	}
	if (w->broadcast && !(w->broadcast->channel_group && w->broadcast->channel_group[0])) {
		snprintf(msg, n, "broadcast of %s names no channel group", name);
		return GW_EINVAL;
	}
	if (routed) {
		bool pipe = w->routing_case == SPAWN__WORKFLOW__ROUTING_PIPE;
		const char *to = pipe ? w->pipe->actor : w->forward->actor;
		const char *action = pipe ? w->pipe->action_name : w->forward->action_name;
		const char *ref = pipe ? w->pipe->register_ref : w->forward->register_ref;
		if (!to || !to[0] || !action || !action[0]) {
			snprintf(msg, n, "%s of %s names no actor or action",
			         pipe ? "pipe" : "forward", name);
			return GW_EINVAL;
		}
		const Spawn__InvocationRequest *in = parent->req;
		const Google__Protobuf__Any *fin =
		    in->payload_case == SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE ? in->value : NULL;
		gw_inv *c;
		if (pipe)
			c = child_new(parent, system, to, action, system, name,
			              reply ? gw_blob_type(reply) : NULL,
			              reply ? gw_blob_value(reply) : NULL, reply ? reply->len : 0,
			              true);
		else
			c = child_new(parent, system, to, action, system, name,
			              fin ? (fin->type_url ? fin->type_url : "") : NULL,
			              fin ? fin->value.data : NULL, fin ? fin->value.len : 0, true);
		if (!c)
			goto nomem;
		if (ref && ref[0])
			c->req->register_ref = spawn_arena_strdup(&c->arena, ref);
		gwi_trace_child(parent, c, false);
		c->done = chain_done;
		c->route = pipe ? 1 : 2;
		c->user = (void *)parent;
		out->route = c;
	}
	for (size_t i = 0; i < w->n_effects; i++) {
		const Spawn__SideEffect *e = w->effects[i];
		/* Deep copy through the wire format into the child's arena. */
		size_t len = spawn__invocation_request__get_packed_size(e->request);
		gw_inv *c = gw_inv_create(0);
		uint8_t *buf = c ? spawn_arena_alloc(&c->arena, len ? len : 1) : NULL;
		if (!buf) {
			gw_inv_destroy(c);
			goto nomem;
		}
		spawn__invocation_request__pack(e->request, buf);
		c->req = spawn__invocation_request__unpack(&c->arena.pbc, len, buf);
		if (!c->req) {
			gw_inv_destroy(c);
			goto nomem;
		}
		if (!c->req->system || !c->req->system->name || !c->req->system->name[0]) {
			/* No system: the emitting actor's own (as the SDKs document). */
			Spawn__Actors__ActorSystem *sys =
			    c->req->system ? c->req->system
			                   : spawn_arena_alloc(&c->arena, sizeof *sys);
			if (!sys) {
				gw_inv_destroy(c);
				goto nomem;
			}
			if (!c->req->system)
				spawn__actors__actor_system__init(sys);
			sys->name = spawn_arena_strdup(&c->arena, system);
			c->req->system = sys;
			if (!sys->name) {
				gw_inv_destroy(c);
				goto nomem;
			}
		}
		if (!c->req->caller) {
			Spawn__Actors__ActorId *caller =
			    spawn_arena_alloc(&c->arena, sizeof *caller);
			if (!caller) {
				gw_inv_destroy(c);
				goto nomem;
			}
			spawn__actors__actor_id__init(caller);
			caller->name = spawn_arena_strdup(&c->arena, name);
			caller->system = spawn_arena_strdup(&c->arena, system);
			c->req->caller = caller;
		}
		c->hops = parent->hops + 1;
		c->effect = true;
		/* The host's own traceparent (passed on from its context) stays;
		 * else the effect continues the turn that emitted it. */
		gwi_trace_child(parent, c, true);
		push_fire(out, c);
	}
	if (w->broadcast && w->broadcast->channel_group && w->broadcast->channel_group[0]) {
		bcast bc = {parent, system, name, w->broadcast, out, out->fire, false};
		size_t subs = gw_registry_subscribers(reg, system, w->broadcast->channel_group,
		                                      on_subscriber, &bc);
		/* In a cluster, also the subscribers the other members' hosts
		 * serve (the view publishes them); each delivery is routed to
		 * its actor's owner (docs/design/cluster.md). */
		gw_runtime *rt = parent->rt;
		const gw_router_ops *ro = rt ? rt->router_ops : NULL;
		if (ro && ro->version >= 2 && ro->subscribers && !bc.oom)
			subs += ro->subscribers(rt->router, system, w->broadcast->channel_group,
			                        on_subscriber, &bc);
		if (bc.oom)
			goto nomem;
		GW_DEBUG("broadcast from %s to channel '%s': %zu subscribers", name,
		         w->broadcast->channel_group, subs);
	}
	return GW_OK;
nomem:
	gwi_wf_discard(out);
	snprintf(msg, n, "out of memory building the workflow of %s", name);
	return GW_ENOMEM;
}

void gwi_wf_discard(gw_wf *wf)
{
	gw_inv_destroy(wf->route);
	while (wf->fire) {
		gw_inv *n = wf->fire->next;
		gw_inv_destroy(wf->fire);
		wf->fire = n;
	}
	memset(wf, 0, sizeof *wf);
}

/* ---- side effects scheduled for later ---------------------------------------- */

/* effect_system: the system a scheduled effect targets ("" when it names
 * none: it is refused when it runs). */
static const char *effect_system(const Spawn__InvocationRequest *rq)
{
	return rq->system && rq->system->name ? rq->system->name : "";
}

static void effect_stored(void *arg, gw_err err)
{
	gw_inv *inv = arg;
	const Spawn__InvocationRequest *rq = inv->req;
	if (err != GW_OK) /* not stored, or stored before (and counted then) */
		gwi_sched_quota_give(inv->rt, effect_system(rq));
	if (err == GW_ECONFLICT)
		err = GW_OK; /* an earlier attempt of this very effect stored it */
	if (err == GW_OK)
		GW_DEBUG("side effect %s.%s from %s scheduled for %lld", target_name(rq),
		         rq->action_name, rq->caller ? rq->caller->name : "?",
		         (long long)rq->scheduled_to);
	inv->err = err == GW_OK || err == GW_ENOMEM ? err : GW_EUNAVAIL; /* store errors: retry */
	if (err)
		snprintf(inv->msg, sizeof inv->msg, "cannot store the scheduled side effect: %s",
		         gw_strerror(err));
	inv->done(inv);
}

/* gwi_effect_id names the schedule row of an effect (the part after the
 * target system's hash, gw_runtime_schedule_id): derived from its
 * idempotency key when it has one (an outbox entry stored twice, before and
 * after a crash, is one row), else random. */
bool gwi_effect_id(const char *key, char id[31])
{
	uint64_t h[2] = {1469598103934665603ULL, 0x9e3779b97f4a7c15ULL};
	if (key) {
		for (int k = 0; k < 2; k++)
			for (const char *p = key; *p; p++)
				h[k] = (h[k] ^ (uint8_t)*p) * 1099511628211ULL;
	} else if (getrandom(h, sizeof h, 0) != (ssize_t)sizeof h) {
		return false;
	}
	snprintf(id, 31, "fx%016llx%012llx", (unsigned long long)h[0],
	         (unsigned long long)(h[1] & 0xffffffffffffULL));
	return true;
}

void gwi_wf_schedule(gw_runtime *rt, gw_inv *inv)
{
	inv->rt = rt;
	char rest[31], *id = spawn_arena_alloc(&inv->arena, 40), qmsg[300];
	size_t len = spawn__invocation_request__get_packed_size(inv->req);
	uint8_t *buf = spawn_arena_alloc(&inv->arena, len ? len : 1);
	gw_err err = buf && id ? GW_OK : GW_ENOMEM;
	if (!err && !gwi_effect_id(gwi_inv_key(inv), rest))
		err = GW_EUNAVAIL;
	if (!err && inv->idem_key) {
		/* The key rides in the stored request's metadata; the scheduler
		 * takes it back only from a row whose id derives from it (a row
		 * this gateway wrote for that key: durable.c). */
		size_t n = 0;
		Spawn__InvocationRequest__MetadataEntry **m =
		    gwi_key_metadata(inv, &inv->arena, &n);
		inv->req->metadata = m;
		inv->req->n_metadata = n;
		len = spawn__invocation_request__get_packed_size(inv->req);
		buf = spawn_arena_alloc(&inv->arena, len ? len : 1);
		if (!buf)
			err = GW_ENOMEM;
	}
	if (!err &&
	    (err = gw_runtime_schedule_id(rt, effect_system(inv->req), inv->req->scheduled_to, rest,
	                                  id, qmsg, sizeof qmsg))) {
		inv->err = err;
		snprintf(inv->msg, sizeof inv->msg, "cannot schedule the side effect: %s", qmsg);
		inv->done(inv);
		return;
	}
	if (!err) {
		/* effect_stored gives the quota back when the row is not stored */
		spawn__invocation_request__pack(inv->req, buf);
		err = gw_persist_schedule(gw_runtime_persist(rt), id, inv->req->scheduled_to, buf,
		                          len, effect_stored, inv);
		if (err)
			gw_runtime_schedule_gone(rt, id);
	}
	if (err) {
		inv->err = err;
		snprintf(inv->msg, sizeof inv->msg, "cannot schedule the side effect: %s",
		         gw_strerror(err));
		inv->done(inv);
	}
}
