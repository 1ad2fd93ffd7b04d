/* $banner|comment$ */
#include "$c_header|c$"
$?has_actors$

/* The descriptors of $file|comment$ and its imports (a serialized
 * google.protobuf.FileDescriptorSet; the gateway's built-in files left
 * out): the gateway serves the actors as plain gRPC services and by
 * reflection (docs/protocol.md, "Contracts"). */
static const unsigned char spawn_contract_descriptors[] = {
	$contract_c$
};
$/has_actors$
$#actors$

/* ======================================================================
 * Actor $actor|comment$
 * ==================================================================== */
$#actions$

int $c_actor$_$c_action$(spawn_client *c, const char *system, const char *actor,
	const $input_c$ *in, $output_c$ **out,
	char **message, int64_t timeout_ms)
{
	const spawn_request req = {
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
	int rc = spawn_client_invoke_msg(c, &req, (const ProtobufCMessage *)in,
		&$output_c_desc$, out ? &m : NULL, message, timeout_ms);
	if (rc == SPAWN_OK && out)
		*out = ($output_c$ *)m;
	return rc;
}

static void $c_actor$_$c_action$_finish(spawn_fn fn, void *user, int status,
	const char *message, ProtobufCMessage *reply)
{
	(($c_actor$_$c_action$_cb)fn)(user, status, message,
		($output_c$ *)reply);
}

int $c_actor$_$c_action$_async(spawn_client *c, const char *system, const char *actor,
	const $input_c$ *in, int64_t timeout_ms,
	$c_actor$_$c_action$_cb cb, void *user)
{
	const spawn_request req = {
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
	return spawn_client_invoke_msg_async(c, &req, (const ProtobufCMessage *)in,
		&$output_c_desc$, timeout_ms,
		$c_actor$_$c_action$_finish, (spawn_fn)cb, user);
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
	if (spawn_ctx_expect_state(ctx, &$state_c_desc$, &state) != SPAWN_OK ||
		spawn_ctx_expect_payload(ctx, &$input_c_desc$, &in) != SPAWN_OK)
		return;
	hs->$c_member$(ctx, (const $state_c$ *)state,
		(const $input_c$ *)in, hs->user);
$/has_state$
$^has_state$
	if (spawn_ctx_expect_payload(ctx, &$input_c_desc$, &in) != SPAWN_OK)
		return;
	hs->$c_member$(ctx, (const $input_c$ *)in, hs->user);
$/has_state$
}

int $c_actor$_$c_action$_reply(spawn_ctx *ctx, const $output_c$ *reply)
{
	return spawn_ctx_fail_on_error(ctx,
		spawn_ctx_reply_msg(ctx, (const ProtobufCMessage *)reply));
}
$/actions$
$?has_state$

int $c_actor$_set_state(spawn_ctx *ctx, const $state_c$ *state)
{
	return spawn_ctx_fail_on_error(ctx,
		spawn_ctx_set_state_msg(ctx, (const ProtobufCMessage *)state));
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
	int rc = spawn_host_add_actor(h, &def);
	return rc ? rc : spawn_host_add_contract(h, spawn_contract_descriptors,
	                                   sizeof spawn_contract_descriptors);
}
$/actors$
