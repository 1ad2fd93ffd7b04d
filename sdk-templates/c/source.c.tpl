/* $banner|comment$ */
#include "$c_header|c$"
$?actors$

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared by the stubs of this file ---------------------------------- */

typedef void (*spawn_gen_fn)(void);

/* An async call in flight: the typed callback and how to call it. */
typedef struct spawn_gen_async {
	const ProtobufCMessageDescriptor *reply_type;
	void (*finish)(const struct spawn_gen_async *call, int status, const char *message,
		ProtobufCMessage *reply);
	spawn_gen_fn cb;
	void *user;
} spawn_gen_async;

static char *spawn_gen_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	return p ? memcpy(p, s, n) : NULL;
}

/* spawn_gen_result reads a finished call: on success the reply as a
 * message of type d (default values when it carries none) into *out,
 * unless out is NULL; on failure *why says why (borrowed from r). */
static int spawn_gen_result(const spawn_reply *r, const ProtobufCMessageDescriptor *d,
	ProtobufCMessage **out, const char **why)
{
	static const uint8_t none[1];
	int rc = r->status;
	*why = rc == SPAWN_OK ? NULL : r->message ? r->message : spawn_strerror(rc);
	if (rc != SPAWN_OK || !out)
		return rc;
	ProtobufCMessage *m = NULL;
	if (r->payload.type_url)
		rc = spawn_payload_unpack(&r->payload, d, &m);
	else if (!(m = protobuf_c_message_unpack(d, NULL, 0, none)))
		rc = SPAWN_ENOMEM;
	if (rc != SPAWN_OK)
		*why = rc == SPAWN_ETYPE ? "the reply has another type" : spawn_strerror(rc);
	else
		*out = m;
	return rc;
}

static int spawn_gen_call(spawn_client *c, spawn_request *req, const ProtobufCMessage *in,
	const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **out, char **message,
	int64_t timeout_ms)
{
	const char *why = NULL;
	spawn_reply r = {0};
	int rc = in ? spawn_payload_pack(&req->payload, in) : SPAWN_EINVAL;
	if (rc == SPAWN_OK) {
		spawn_client_invoke(c, req, &r, timeout_ms);
		spawn_payload_fini(&req->payload);
		rc = spawn_gen_result(&r, reply_type, out, &why);
	} else {
		why = spawn_strerror(rc);
	}
	if (message)
		*message = rc == SPAWN_OK ? NULL : spawn_gen_strdup(why);
	spawn_reply_fini(&r);
	return rc;
}

static void spawn_gen_done(void *user, spawn_reply *r)
{
	spawn_gen_async *call = user;
	ProtobufCMessage *m = NULL;
	const char *why;
	int rc = spawn_gen_result(r, call->reply_type, &m, &why);
	call->finish(call, rc, why, m);
	free(call);
}

static int spawn_gen_call_async(spawn_client *c, spawn_request *req, const ProtobufCMessage *in,
	const spawn_gen_async *proto, int64_t timeout_ms)
{
	if (!in || !proto->cb)
		return SPAWN_EINVAL;
	spawn_gen_async *call = malloc(sizeof *call);
	if (!call)
		return SPAWN_ENOMEM;
	*call = *proto;
	int rc = spawn_payload_pack(&req->payload, in);
	if (rc == SPAWN_OK)
		rc = spawn_client_invoke_async(c, req, timeout_ms, spawn_gen_done, call);
	spawn_payload_fini(&req->payload);
	if (rc != SPAWN_OK)
		free(call);
	return rc;
}

/* spawn_gen_input unpacks the invocation's input for a handler; on
 * failure the invocation fails and the handler does not run. */
static int spawn_gen_input(spawn_ctx *ctx, const ProtobufCMessageDescriptor *d,
	ProtobufCMessage **out)
{
	int rc = spawn_ctx_payload_msg(ctx, d, out);
	if (rc == SPAWN_ENOMEM) {
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
	} else if (rc != SPAWN_OK) {
		char why[256];
		snprintf(why, sizeof why, "action %s takes a %s", spawn_ctx_action(ctx), d->name);
		spawn_ctx_fail(ctx, SPAWN_INVALID_ARGUMENT, why);
	}
	return rc;
}
$?has_state$

/* spawn_gen_state unpacks the actor's state for a handler (default values
 * for a new actor); on failure the invocation fails. */
static int spawn_gen_state(spawn_ctx *ctx, const ProtobufCMessageDescriptor *d,
	ProtobufCMessage **out)
{
	int rc = spawn_ctx_state_msg(ctx, d, out);
	if (rc == SPAWN_ENOMEM) {
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
	} else if (rc != SPAWN_OK) {
		char why[256];
		snprintf(why, sizeof why, "the state of actor %s is not a %s", spawn_ctx_actor(ctx),
			d->name);
		spawn_ctx_fail(ctx, SPAWN_FAILED_PRECONDITION, why);
	}
	return rc;
}
$/has_state$

/* spawn_gen_outcome makes a failed setter fail the invocation. */
static int spawn_gen_outcome(spawn_ctx *ctx, int rc)
{
	if (rc != SPAWN_OK)
		spawn_ctx_fail(ctx, rc == SPAWN_ENOMEM ? SPAWN_RESOURCE_EXHAUSTED : SPAWN_INTERNAL,
			spawn_strerror(rc));
	return rc;
}
$/actors$
$#actors$

/* ======================================================================
 * Actor $actor|comment$
 * ==================================================================== */
$#actions$

int $c_actor$_$c_action$(spawn_client *c, const char *system, const char *actor,
	const $input_c$ *in, $output_c$ **out,
	char **message, int64_t timeout_ms)
{
	spawn_request req = {
		.system = system,
		.actor = actor ? actor : $c_ACTOR$_ACTOR_NAME,
		.action = "$action|c$",
$?unnamed$
		.parent = $c_ACTOR$_ACTOR_NAME,
$/unnamed$
$?pooled$
		.pooled = true,
$/pooled$
	};
	ProtobufCMessage *m = NULL;
	int rc = spawn_gen_call(c, &req, (const ProtobufCMessage *)in,
		&$output_c_desc$, out ? &m : NULL, message, timeout_ms);
	if (rc == SPAWN_OK && out)
		*out = ($output_c$ *)m;
	return rc;
}

static void $c_actor$_$c_action$_finish(const spawn_gen_async *call, int status,
	const char *message, ProtobufCMessage *reply)
{
	(($c_actor$_$c_action$_cb)call->cb)(call->user, status, message,
		($output_c$ *)reply);
}

int $c_actor$_$c_action$_async(spawn_client *c, const char *system, const char *actor,
	const $input_c$ *in, int64_t timeout_ms,
	$c_actor$_$c_action$_cb cb, void *user)
{
	spawn_request req = {
		.system = system,
		.actor = actor ? actor : $c_ACTOR$_ACTOR_NAME,
		.action = "$action|c$",
$?unnamed$
		.parent = $c_ACTOR$_ACTOR_NAME,
$/unnamed$
$?pooled$
		.pooled = true,
$/pooled$
	};
	const spawn_gen_async call = {
		&$output_c_desc$, $c_actor$_$c_action$_finish, (spawn_gen_fn)cb, user};
	return spawn_gen_call_async(c, &req, (const ProtobufCMessage *)in, &call, timeout_ms);
}

static void $c_actor$_$c_action$_handler(spawn_ctx *ctx, void *user)
{
	const $c_actor$_handlers *hs = user;
$?has_state$
	ProtobufCMessage *state, *in;
$/has_state$
$^has_state$
	ProtobufCMessage *in;
$/has_state$
	if (!hs->$c_member$) {
		spawn_ctx_fail(ctx, SPAWN_UNIMPLEMENTED, "$actor|c$.$action|c$ is not implemented");
		return;
	}
$?has_state$
	if (spawn_gen_state(ctx, &$state_c_desc$, &state) != SPAWN_OK ||
		spawn_gen_input(ctx, &$input_c_desc$, &in) != SPAWN_OK)
		return;
	hs->$c_member$(ctx, (const $state_c$ *)state,
		(const $input_c$ *)in, hs->user);
$/has_state$
$^has_state$
	if (spawn_gen_input(ctx, &$input_c_desc$, &in) != SPAWN_OK)
		return;
	hs->$c_member$(ctx, (const $input_c$ *)in, hs->user);
$/has_state$
}

int $c_actor$_$c_action$_reply(spawn_ctx *ctx, const $output_c$ *reply)
{
	return spawn_gen_outcome(ctx, spawn_ctx_reply_msg(ctx, (const ProtobufCMessage *)reply));
}
$/actions$
$?has_state$

int $c_actor$_set_state(spawn_ctx *ctx, const $state_c$ *state)
{
	return spawn_gen_outcome(ctx, spawn_ctx_set_state_msg(ctx, (const ProtobufCMessage *)state));
}
$/has_state$

int $c_actor$_register(spawn_host *h, const $c_actor$_handlers *hs)
{
	if (!hs)
		return SPAWN_EINVAL;
	const spawn_action_def actions[] = {
$#actions$
		{.name = "$action|c$", .handler = $c_actor$_$c_action$_handler, .user = (void *)hs},
$/actions$
	};
	const spawn_actor_def def = {
		.name = $c_ACTOR$_ACTOR_NAME,
		.kind = $c_kind$,
		.stateful = $?stateful$true$/stateful$$^stateful$false$/stateful$,
$?has_state$
		.state_type = $c_ACTOR$_STATE_TYPE,
$/has_state$
		.snapshot_interval_ms = INT64_C($snapshot_interval_ms$),
		.deactivate_timeout_ms = INT64_C($deactivate_timeout_ms$),
		.actions = actions,
		.n_actions = sizeof actions / sizeof actions[0],
	};
	return spawn_host_add_actor(h, &def);
}
$/actors$
