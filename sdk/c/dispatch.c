/* dispatch.c - runs one InvocationTask: finds the handler, gives it a
 * spawn_ctx, and turns what it set into an InvocationResult.
 *
 * Pure with respect to the connection: no gRPC here, so the tests drive
 * it directly. All memory of one task (the unpacked task, the ctx copies,
 * the result) lives in the task's arena and goes away with it.
 */
#include "internal.h"

#include <string.h>
#include <strings.h>

struct spawn_ctx {
	const Spawn__ActorInvocation *inv; /* borrowed from the task */
	const spawni_actor *actor;
	spawn_arena *arena; /* the task's; everything ctx copies lives here */
	int64_t deadline_ms;
	spawn_payload state;   /* current; points into the task */
	spawn_payload payload; /* input; points into the task */

	/* The outcome, set by the handler. */
	spawn_payload new_state; /* in the arena; valid when state_set */
	bool state_set;
	spawn_payload reply; /* in the arena; type_url NULL = Noop */
	bool checkpoint;
	bool failed;
	int fail_code;
	const char *fail_msg; /* in the arena */

	/* The actor's tags once the handler changed one (before that, those
	 * of the task): the whole set, entries in the arena or the task. */
	bool tags_set;
	Spawn__Context__TagsEntry **tags;
	size_t n_tags, cap_tags;

	/* The workflow; strings and messages in the arena. */
	Spawn__Workflow__RoutingCase route; /* NOT_SET, PIPE or FORWARD */
	const char *route_actor, *route_action;
	Spawn__SideEffect **effects;
	size_t n_effects, cap_effects;
	const char *bcast_channel; /* NULL = no broadcast */
	spawn_payload bcast;       /* type_url NULL = Noop */
};

static spawn_payload payload_of(const Google__Protobuf__Any *any)
{
	spawn_payload p = {0};
	if (!any)
		return p;
	/* An Any with neither type nor bytes is how "no state yet" looks on
	 * the wire; treat it as none rather than as a value of type "". */
	if ((!any->type_url || !*any->type_url) && any->value.len == 0)
		return p;
	p.type_url = any->type_url ? any->type_url : "";
	p.data = any->value.len ? any->value.data : NULL;
	p.len = any->value.len;
	return p;
}

/* ---- getters ---------------------------------------------------------- */

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

const char *spawn_ctx_system(const spawn_ctx *ctx)
{
	return ctx->inv->actor->system ? ctx->inv->actor->system : "";
}

const char *spawn_ctx_actor(const spawn_ctx *ctx)
{
	return ctx->inv->actor->name ? ctx->inv->actor->name : "";
}

const char *spawn_ctx_parent(const spawn_ctx *ctx)
{
	return nonempty(ctx->inv->actor->parent);
}

const char *spawn_ctx_action(const spawn_ctx *ctx)
{
	return ctx->inv->action_name ? ctx->inv->action_name : "";
}

const char *spawn_ctx_caller_actor(const spawn_ctx *ctx)
{
	return ctx->inv->caller ? nonempty(ctx->inv->caller->name) : NULL;
}

const char *spawn_ctx_caller_system(const spawn_ctx *ctx)
{
	return ctx->inv->caller ? nonempty(ctx->inv->caller->system) : NULL;
}

int64_t spawn_ctx_deadline_ms(const spawn_ctx *ctx)
{
	return ctx->deadline_ms;
}

const spawn_payload *spawn_ctx_state(const spawn_ctx *ctx)
{
	return &ctx->state;
}

const spawn_payload *spawn_ctx_payload(const spawn_ctx *ctx)
{
	return &ctx->payload;
}

const char *spawn_ctx_metadata(const spawn_ctx *ctx, const char *key)
{
	const Spawn__Context *c = ctx->inv->current_context;
	if (!c || !key)
		return NULL;
	for (size_t i = 0; i < c->n_metadata; i++)
		if (c->metadata[i]->key && strcmp(c->metadata[i]->key, key) == 0)
			return c->metadata[i]->value;
	return NULL;
}

const char *spawn_ctx_traceparent(const spawn_ctx *ctx)
{
	return ctx ? spawn_ctx_metadata(ctx, "traceparent") : NULL;
}

size_t spawn_ctx_trace(const spawn_ctx *ctx, spawn_metadata *md)
{
	static const char *keys[] = {"traceparent", "tracestate"};
	size_t n = 0;
	for (size_t i = 0; ctx && md && i < 2; i++) {
		const char *v = spawn_ctx_metadata(ctx, keys[i]);
		if (v) {
			md[n].key = keys[i];
			md[n].value = v;
			n++;
		}
	}
	return n;
}

/* with_trace adds this turn's traceparent and tracestate to rq's metadata
 * (in the turn's arena) unless rq names a traceparent of its own. */
static int with_trace(spawn_ctx *ctx, Spawn__InvocationRequest *rq)
{
	for (size_t i = 0; i < rq->n_metadata; i++)
		if (rq->metadata[i]->key && !strcasecmp(rq->metadata[i]->key, "traceparent"))
			return SPAWN_OK;
	spawn_metadata md[2];
	size_t n = spawn_ctx_trace(ctx, md);
	if (!n)
		return SPAWN_OK;
	Spawn__InvocationRequest__MetadataEntry **m =
	    spawn_arena_alloc(ctx->arena, (rq->n_metadata + n) * sizeof *m);
	if (!m)
		return SPAWN_ENOMEM;
	if (rq->n_metadata)
		memcpy(m, rq->metadata, rq->n_metadata * sizeof *m);
	for (size_t i = 0; i < n; i++) {
		Spawn__InvocationRequest__MetadataEntry *e =
		    spawn_arena_alloc(ctx->arena, sizeof *e);
		if (!e)
			return SPAWN_ENOMEM;
		spawn__invocation_request__metadata_entry__init(e);
		e->key = (char *)md[i].key;
		e->value = (char *)md[i].value;
		m[rq->n_metadata + i] = e;
	}
	rq->metadata = m;
	rq->n_metadata += n;
	return SPAWN_OK;
}

/* tags_of gives the actor's current tag set (the handler's, once changed). */
static Spawn__Context__TagsEntry **tags_of(const spawn_ctx *ctx, size_t *n)
{
	if (ctx->tags_set) {
		*n = ctx->n_tags;
		return ctx->tags;
	}
	const Spawn__Context *c = ctx->inv->current_context;
	*n = c ? c->n_tags : 0;
	return c ? c->tags : NULL;
}

const char *spawn_ctx_tag(const spawn_ctx *ctx, const char *key)
{
	if (!ctx || !key)
		return NULL;
	size_t n;
	Spawn__Context__TagsEntry **t = tags_of(ctx, &n);
	for (size_t i = 0; i < n; i++)
		if (t[i]->key && strcmp(t[i]->key, key) == 0)
			return t[i]->value;
	return NULL;
}

static int unpack_into_arena(spawn_ctx *ctx, const spawn_payload *p,
                             const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
	if (!ctx || !d || !out)
		return SPAWN_EINVAL;
	ProtobufCMessage *m;
	if (!p->type_url) {
		/* No value yet: hand out the defaults, so handlers need no
		 * special first-call path. */
		m = spawni_new(ctx->arena, d);
		if (!m)
			return SPAWN_ENOMEM;
	} else {
		if (!spawn_payload_is(p, d))
			return SPAWN_ETYPE;
		m = protobuf_c_message_unpack(d, &ctx->arena->pbc, p->len, p->data);
		if (!m) {
			/* NULL means bytes that do not parse or an arena that ran
			 * out; parsing on the heap tells which (failure path only). */
			ProtobufCMessage *probe =
			    protobuf_c_message_unpack(d, NULL, p->len, p->data);
			if (!probe)
				return SPAWN_EPROTO;
			protobuf_c_message_free_unpacked(probe, NULL);
			return SPAWN_ENOMEM;
		}
	}
	*out = m;
	return SPAWN_OK;
}

int spawn_ctx_state_msg(spawn_ctx *ctx, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
	return ctx ? unpack_into_arena(ctx, &ctx->state, d, out) : SPAWN_EINVAL;
}

int spawn_ctx_payload_msg(spawn_ctx *ctx, const ProtobufCMessageDescriptor *d,
                          ProtobufCMessage **out)
{
	return ctx ? unpack_into_arena(ctx, &ctx->payload, d, out) : SPAWN_EINVAL;
}

/* ---- setters ---------------------------------------------------------- */

static int copy_payload(spawn_ctx *ctx, spawn_payload *dst, const char *type_url, const void *data,
                        size_t len)
{
	if (!data && len)
		return SPAWN_EINVAL;
	if (!type_url) {
		memset(dst, 0, sizeof *dst);
		return SPAWN_OK;
	}
	char *u = spawn_arena_strdup(ctx->arena, type_url);
	void *d = len ? spawn_arena_memdup(ctx->arena, data, len) : NULL;
	if (!u || (len && !d))
		return SPAWN_ENOMEM;
	dst->type_url = u;
	dst->data = d;
	dst->len = len;
	return SPAWN_OK;
}

/* Packs m straight into the arena (no heap round trip). */
static int pack_payload(spawn_ctx *ctx, spawn_payload *dst, const ProtobufCMessage *m)
{
	if (!m || !m->descriptor)
		return SPAWN_EINVAL;
	size_t ulen = spawn_type_url(m->descriptor, NULL, 0) + 1;
	size_t len = protobuf_c_message_get_packed_size(m);
	char *u = spawn_arena_alloc(ctx->arena, ulen);
	uint8_t *d = len ? spawn_arena_alloc(ctx->arena, len) : NULL;
	if (!u || (len && !d))
		return SPAWN_ENOMEM;
	spawn_type_url(m->descriptor, u, ulen);
	if (len)
		protobuf_c_message_pack(m, d);
	dst->type_url = u;
	dst->data = d;
	dst->len = len;
	return SPAWN_OK;
}

int spawn_ctx_set_state(spawn_ctx *ctx, const char *type_url, const void *data, size_t len)
{
	if (!ctx || !type_url)
		return SPAWN_EINVAL;
	int rc = copy_payload(ctx, &ctx->new_state, type_url, data, len);
	if (rc == SPAWN_OK)
		ctx->state_set = true;
	return rc;
}

int spawn_ctx_set_state_msg(spawn_ctx *ctx, const ProtobufCMessage *m)
{
	if (!ctx)
		return SPAWN_EINVAL;
	int rc = pack_payload(ctx, &ctx->new_state, m);
	if (rc == SPAWN_OK)
		ctx->state_set = true;
	return rc;
}

int spawn_ctx_reply(spawn_ctx *ctx, const char *type_url, const void *data, size_t len)
{
	if (!ctx)
		return SPAWN_EINVAL;
	return copy_payload(ctx, &ctx->reply, type_url, data, len);
}

int spawn_ctx_reply_msg(spawn_ctx *ctx, const ProtobufCMessage *m)
{
	if (!ctx)
		return SPAWN_EINVAL;
	return pack_payload(ctx, &ctx->reply, m);
}

void spawn_ctx_checkpoint(spawn_ctx *ctx, bool on)
{
	if (ctx)
		ctx->checkpoint = on;
}

/* grow returns an arena array of pointers with room for one more than n
 * (v itself when it has it; else a copy twice as large, the old one left to
 * the arena), updating *cap; NULL when out of memory. */
static void *grow(spawn_arena *a, void *v, size_t n, size_t *cap)
{
	if (n < *cap)
		return v;
	size_t c = *cap ? *cap * 2 : 4;
	void *nv = spawn_arena_alloc(a, c * sizeof(void *));
	if (!nv)
		return NULL;
	if (n)
		memcpy(nv, v, n * sizeof(void *));
	*cap = c;
	return nv;
}

int spawn_ctx_set_tag(spawn_ctx *ctx, const char *key, const char *value)
{
	if (!ctx || !key || !*key)
		return SPAWN_EINVAL;
	if (!ctx->tags_set) {
		/* First change: take over the task's set (its entries stay
		 * borrowed; changed ones are replaced, never written). */
		size_t n;
		Spawn__Context__TagsEntry **cur = tags_of(ctx, &n);
		size_t cap = n + 4;
		Spawn__Context__TagsEntry **v = spawn_arena_alloc(ctx->arena, cap * sizeof *v);
		if (!v)
			return SPAWN_ENOMEM;
		if (n)
			memcpy(v, cur, n * sizeof *v);
		ctx->tags = v;
		ctx->n_tags = n;
		ctx->cap_tags = cap;
		ctx->tags_set = true;
	}
	size_t at = ctx->n_tags;
	for (size_t i = 0; i < ctx->n_tags; i++)
		if (ctx->tags[i]->key && strcmp(ctx->tags[i]->key, key) == 0)
			at = i;
	if (!value) {
		if (at < ctx->n_tags) {
			memmove(&ctx->tags[at], &ctx->tags[at + 1],
			        (ctx->n_tags - at - 1) * sizeof *ctx->tags);
			ctx->n_tags--;
		}
		return SPAWN_OK;
	}
	Spawn__Context__TagsEntry *e =
	    spawni_new(ctx->arena, &spawn__context__tags_entry__descriptor);
	if (!e || !(e->key = spawn_arena_strdup(ctx->arena, key)) ||
	    !(e->value = spawn_arena_strdup(ctx->arena, value)))
		return SPAWN_ENOMEM;
	if (at == ctx->n_tags) {
		Spawn__Context__TagsEntry **v =
		    grow(ctx->arena, ctx->tags, ctx->n_tags, &ctx->cap_tags);
		if (!v)
			return SPAWN_ENOMEM;
		ctx->tags = v;
		ctx->n_tags++;
	}
	ctx->tags[at] = e;
	return SPAWN_OK;
}

/* ---- workflow ----------------------------------------------------------- */

static bool empty(const char *s)
{
	return !s || !*s;
}

static int route(spawn_ctx *ctx, Spawn__Workflow__RoutingCase how, const char *actor,
                 const char *action)
{
	if (!ctx || empty(actor) || empty(action))
		return SPAWN_EINVAL;
	const char *a = spawn_arena_strdup(ctx->arena, actor);
	const char *b = spawn_arena_strdup(ctx->arena, action);
	if (!a || !b)
		return SPAWN_ENOMEM;
	ctx->route = how;
	ctx->route_actor = a;
	ctx->route_action = b;
	return SPAWN_OK;
}

int spawn_ctx_pipe(spawn_ctx *ctx, const char *actor, const char *action)
{
	return route(ctx, SPAWN__WORKFLOW__ROUTING_PIPE, actor, action);
}

int spawn_ctx_forward(spawn_ctx *ctx, const char *actor, const char *action)
{
	return route(ctx, SPAWN__WORKFLOW__ROUTING_FORWARD, actor, action);
}

int spawn_ctx_side_effect(spawn_ctx *ctx, const spawn_request *req)
{
	if (!ctx || !req)
		return SPAWN_EINVAL;
	if (req->scheduled_to_ms < 0)
		return SPAWN_EINVAL;
	const char *system = empty(req->system) ? spawn_ctx_system(ctx) : req->system;
	Spawn__InvocationRequest *rq;
	int rc = spawni_request_msg(req, system, true, ctx->arena, &rq);
	if (rc)
		return rc;
	rq->async = true; /* nobody waits for an effect */
	if ((rc = with_trace(ctx, rq)))
		return rc;
	Spawn__SideEffect *se = spawni_new(ctx->arena, &spawn__side_effect__descriptor);
	Spawn__SideEffect **v =
	    se ? grow(ctx->arena, ctx->effects, ctx->n_effects, &ctx->cap_effects) : NULL;
	if (!v)
		return SPAWN_ENOMEM;
	ctx->effects = v;
	se->request = rq;
	ctx->effects[ctx->n_effects++] = se;
	return SPAWN_OK;
}

int spawn_ctx_broadcast(spawn_ctx *ctx, const char *channel, const char *type_url, const void *data,
                        size_t len)
{
	if (!ctx || empty(channel))
		return SPAWN_EINVAL;
	spawn_payload p;
	int rc = copy_payload(ctx, &p, type_url, data, len);
	if (rc)
		return rc;
	const char *ch = spawn_arena_strdup(ctx->arena, channel);
	if (!ch)
		return SPAWN_ENOMEM;
	ctx->bcast_channel = ch;
	ctx->bcast = p;
	return SPAWN_OK;
}

int spawn_ctx_broadcast_msg(spawn_ctx *ctx, const char *channel, const ProtobufCMessage *m)
{
	if (!ctx || empty(channel))
		return SPAWN_EINVAL;
	if (!m)
		return spawn_ctx_broadcast(ctx, channel, NULL, NULL, 0);
	spawn_payload p;
	int rc = pack_payload(ctx, &p, m);
	if (rc)
		return rc;
	const char *ch = spawn_arena_strdup(ctx->arena, channel);
	if (!ch)
		return SPAWN_ENOMEM;
	ctx->bcast_channel = ch;
	ctx->bcast = p;
	return SPAWN_OK;
}

void spawn_ctx_fail(spawn_ctx *ctx, int code, const char *message)
{
	if (!ctx)
		return;
	ctx->failed = true;
	ctx->fail_code = spawni_grpc_code(code);
	const char *msg = message ? message : spawn_strerror(ctx->fail_code);
	/* Out of memory here still fails the call, with the code's text. */
	ctx->fail_msg = spawn_arena_strdup(ctx->arena, msg);
	if (!ctx->fail_msg)
		ctx->fail_msg = spawn_strerror(ctx->fail_code);
}

/* ---- building the result ------------------------------------------------ */

static void result_error(Spawn__Gateway__V1__InvocationResult *res,
                         Spawn__Gateway__V1__HostError *err, int code, const char *msg)
{
	spawn__gateway__v1__host_error__init(err);
	err->code = spawni_grpc_code(code);
	err->message = (char *)(msg ? msg : spawn_strerror(err->code));
	res->outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR;
	res->error = err;
}

static Google__Protobuf__Any *any_of(spawn_arena *a, const spawn_payload *p)
{
	Google__Protobuf__Any *any = spawni_new(a, &google__protobuf__any__descriptor);
	if (!any)
		return NULL;
	any->type_url = (char *)p->type_url;
	any->value.data = (uint8_t *)p->data;
	any->value.len = p->len;
	return any;
}

/* Fills res->response from a handler that did not fail. */
static int result_response(spawn_ctx *ctx, Spawn__Gateway__V1__InvocationResult *res)
{
	spawn_arena *a = ctx->arena;
	const Spawn__ActorInvocation *inv = ctx->inv;
	Spawn__ActorInvocationResponse *r =
	    spawni_new(a, &spawn__actor_invocation_response__descriptor);
	Spawn__Context *uc = spawni_new(a, &spawn__context__descriptor);
	if (!r || !uc)
		return SPAWN_ENOMEM;
	r->actor_name = inv->actor->name;
	r->actor_system = inv->actor->system;
	r->checkpoint = ctx->checkpoint;

	/* The state goes back whole: the new one, or the current one when the
	 * handler left it alone (the gateway stores what it receives). */
	const spawn_payload *st = ctx->state_set ? &ctx->new_state : &ctx->state;
	if (st->type_url && !(uc->state = any_of(a, st)))
		return SPAWN_ENOMEM;
	uc->self = inv->actor;
	uc->caller = inv->caller;
	/* Tags belong to the actor: back as the handler left them. */
	uc->tags = tags_of(ctx, &uc->n_tags);
	r->updated_context = uc;
	if (ctx->route || ctx->n_effects || ctx->bcast_channel) {
		Spawn__Workflow *wf = spawni_new(a, &spawn__workflow__descriptor);
		if (!wf)
			return SPAWN_ENOMEM;
		if (ctx->route == SPAWN__WORKFLOW__ROUTING_PIPE) {
			Spawn__Pipe *p = spawni_new(a, &spawn__pipe__descriptor);
			if (!p)
				return SPAWN_ENOMEM;
			p->actor = (char *)ctx->route_actor;
			p->action_name = (char *)ctx->route_action;
			wf->routing_case = SPAWN__WORKFLOW__ROUTING_PIPE;
			wf->pipe = p;
		} else if (ctx->route == SPAWN__WORKFLOW__ROUTING_FORWARD) {
			Spawn__Forward *f = spawni_new(a, &spawn__forward__descriptor);
			if (!f)
				return SPAWN_ENOMEM;
			f->actor = (char *)ctx->route_actor;
			f->action_name = (char *)ctx->route_action;
			wf->routing_case = SPAWN__WORKFLOW__ROUTING_FORWARD;
			wf->forward = f;
		}
		wf->effects = ctx->effects;
		wf->n_effects = ctx->n_effects;
		if (ctx->bcast_channel) {
			Spawn__Broadcast *b = spawni_new(a, &spawn__broadcast__descriptor);
			if (!b)
				return SPAWN_ENOMEM;
			b->channel_group = (char *)ctx->bcast_channel;
			if (ctx->bcast.type_url) {
				if (!(b->value = any_of(a, &ctx->bcast)))
					return SPAWN_ENOMEM;
				b->payload_case = SPAWN__BROADCAST__PAYLOAD_VALUE;
			} else {
				if (!(b->noop = spawni_new(a, &spawn__noop__descriptor)))
					return SPAWN_ENOMEM;
				b->payload_case = SPAWN__BROADCAST__PAYLOAD_NOOP;
			}
			wf->broadcast = b;
		}
		r->workflow = wf;
	}

	if (ctx->reply.type_url) {
		if (!(r->value = any_of(a, &ctx->reply)))
			return SPAWN_ENOMEM;
		r->payload_case = SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_VALUE;
	} else {
		if (!(r->noop = spawni_new(a, &spawn__noop__descriptor)))
			return SPAWN_ENOMEM;
		r->payload_case = SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_NOOP;
	}
	res->outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE;
	res->response = r;
	return SPAWN_OK;
}

/* Answer when not even the HostError fits in the arena. Only ever read
 * (packing does not write), so sharing it between workers is safe. */
static const Spawn__Gateway__V1__HostError oom_error = {
    PROTOBUF_C_MESSAGE_INIT(&spawn__gateway__v1__host_error__descriptor),
    SPAWN_RESOURCE_EXHAUSTED,
    (char *)"host out of memory",
};

void spawni_execute(const spawni_registry *reg, const Spawn__Gateway__V1__InvocationTask *task,
                    int64_t now_ms, spawn_arena *a, Spawn__Gateway__V1__InvocationResult *res)
{
	spawn__gateway__v1__invocation_result__init(res);
	res->request_id = task->request_id;
	Spawn__Gateway__V1__HostError *err = spawn_arena_alloc(a, sizeof *err);
	if (!err) {
		res->outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR;
		res->error = (Spawn__Gateway__V1__HostError *)&oom_error;
		return;
	}

	const Spawn__ActorInvocation *inv = task->invocation;
	if (!inv || !inv->actor || !inv->actor->name || !*inv->actor->name) {
		result_error(res, err, SPAWN_INVALID_ARGUMENT, "invocation names no actor");
		return;
	}
	/* Instances of UNNAMED actors run their template's handlers. */
	const spawni_actor *actor = NULL;
	if (inv->actor->parent && *inv->actor->parent)
		actor = spawni_registry_find(reg, inv->actor->parent);
	if (!actor)
		actor = spawni_registry_find(reg, inv->actor->name);
	if (!actor) {
		result_error(res, err, SPAWN_NOT_FOUND, "no such actor on this host");
		return;
	}
	const spawni_action *action = spawni_actor_find_action(actor, inv->action_name);
	if (!action) {
		result_error(res, err, SPAWN_NOT_FOUND, "no such action on this actor");
		return;
	}
	if (task->deadline_unix_ms > 0 && now_ms >= task->deadline_unix_ms) {
		/* The caller is gone; running the action would change state nobody
		 * asked for any more. */
		result_error(res, err, SPAWN_DEADLINE_EXCEEDED,
		             "deadline passed before the action ran");
		return;
	}

	spawn_ctx ctx = {
	    .inv = inv,
	    .actor = actor,
	    .arena = a,
	    .deadline_ms = task->deadline_unix_ms,
	    .state = payload_of(inv->current_context ? inv->current_context->state : NULL),
	    .payload = inv->payload_case == SPAWN__ACTOR_INVOCATION__PAYLOAD_VALUE
	                   ? payload_of(inv->value)
	                   : (spawn_payload){0},
	};
	action->handler(&ctx, action->user);

	if (ctx.failed) {
		result_error(res, err, ctx.fail_code, ctx.fail_msg);
		return;
	}
	if (result_response(&ctx, res) != SPAWN_OK) {
		spawn__gateway__v1__invocation_result__init(res);
		res->request_id = task->request_id;
		result_error(res, err, SPAWN_RESOURCE_EXHAUSTED, "host out of memory");
	}
}
