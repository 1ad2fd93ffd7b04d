/* $banner|comment$
 *
 * Typed clients and actor skeletons over libspawn (<spawn/spawn.h>) for
 * the actors of $file|comment$. Build with the protoc-c code of the same
 * file ($c_pb_header|comment$) and link with libspawn.
 *
 * Conventions of every function below (those of libspawn):
 *   - they return SPAWN_OK (0), a gRPC status code (1..16) or a negative
 *     local error (spawn_strerror() describes each);
 *   - pointer arguments are borrowed for the duration of the call;
 *   - messages handed to you are freed with
 *     protobuf_c_message_free_unpacked((ProtobufCMessage *)msg, NULL).
 */
#ifndef $c_guard$
#define $c_guard$

#include <stdint.h>

#include <spawn/spawn.h>

#include "$c_pb_header|c$"

#ifdef __cplusplus
extern "C" {
#endif
$^actors$

/* $file|comment$ declares no actor (no service has the spawn.actors.actor option). */
$/actors$
$#actors$

/* ======================================================================
 * Actor $actor|comment$ (service $actor_full|comment$)
 *   kind $kind$, $?stateful$stateful, state $state|comment$$/stateful$$^stateful$stateless$/stateful$
 *   deactivate_timeout $deactivate_timeout_ms$ ms, snapshot_interval $snapshot_interval_ms$ ms
 *   (0 = the gateway's default)
 * ==================================================================== */

/* The actor's name: the name of its service. */
#define $c_ACTOR$_ACTOR_NAME "$actor|c$"
$?has_state$

/* The type URL of the actor's state. */
#define $c_ACTOR$_STATE_TYPE SPAWN_TYPE_URL_PREFIX "$state|c$"
$/has_state$

/* ---- client ---------------------------------------------------------- */
$#actions$

/* $c_actor$_$c_action$ invokes action "$action|comment$" of the actor named actor (NULL =
 * $c_ACTOR$_ACTOR_NAME) in system, with *in, and waits for the reply
 * up to timeout_ms (<= 0: no deadline).
 * Returns SPAWN_OK and sets *out to the reply, of type
 * $output|comment$ (caller frees; a reply without a value gives
 * default values; out may be NULL). Otherwise returns
 * the call's status (SPAWN_ETYPE: the reply has another type) and leaves
 * *out untouched. When message is not NULL, *message becomes NULL on
 * success and says why on failure (caller frees with free()).
 * Blocks: yes. Thread: any. */
int $c_actor$_$c_action$(spawn_client *c, const char *system, const char *actor,
	const $input_c$ *in, $output_c$ **out,
	char **message, int64_t timeout_ms);

/* The completion of $c_actor$_$c_action$_async. It runs on the client's thread
 * with the status of $c_actor$_$c_action$; message is borrowed until it
 * returns (NULL on success); reply is the reply on success (the callback
 * owns it and frees it), NULL otherwise. */
typedef void (*$c_actor$_$c_action$_cb)(void *user, int status, const char *message,
	$output_c$ *reply);

/* $c_actor$_$c_action$_async starts the same call and returns at once:
 * SPAWN_OK, and cb(user, ...) runs exactly once later; or an error
 * (SPAWN_EINVAL, SPAWN_ENOMEM, SPAWN_ESYS, SPAWN_ECLOSED) and cb never
 * runs. user is retained until the callback. Blocks: no. */
int $c_actor$_$c_action$_async(spawn_client *c, const char *system, const char *actor,
	const $input_c$ *in, int64_t timeout_ms,
	$c_actor$_$c_action$_cb cb, void *user);
$/actions$

/* ---- actor ----------------------------------------------------------- */

/* The actions of $actor|comment$, one typed handler each. A handler runs on a
 * host worker thread with $?has_state$the actor's current state (default values
 * for a new actor) and $/has_state$the action's input, borrowed until it returns, and
 * sets the outcome with $?has_state$$c_actor$_set_state, $/has_state$the action's _reply function,
 * spawn_ctx_checkpoint and spawn_ctx_fail. Setting nothing keeps the
 * state and replies no value. A NULL handler answers UNIMPLEMENTED. */
typedef struct $c_actor$_handlers {
$#actions$
	/* $action|comment$($input|comment$) returns ($output|comment$) */
	void (*$c_member$)(spawn_ctx *ctx,$?has_state$ const $state_c$ *state,$/has_state$
		const $input_c$ *in, void *user);
$/actions$
	void *user; /* passed to every handler */
} $c_actor$_handlers;

/* $c_actor$_register declares actor $c_ACTOR$_ACTOR_NAME on h with the
 * settings of its contract and the handlers of hs (retained until
 * spawn_host_destroy). Returns the status of spawn_host_add_actor. */
int $c_actor$_register(spawn_host *h, const $c_actor$_handlers *hs);
$?has_state$

/* $c_actor$_set_state sets the actor's new state (copied), from a handler.
 * Returns SPAWN_OK; on failure (out of memory) the invocation fails. */
int $c_actor$_set_state(spawn_ctx *ctx, const $state_c$ *state);
$/has_state$
$#actions$

/* $c_actor$_$c_action$_reply sets the reply of $action|comment$ (copied), from its handler.
 * Returns SPAWN_OK; on failure (out of memory) the invocation fails. */
int $c_actor$_$c_action$_reply(spawn_ctx *ctx, const $output_c$ *reply);
$/actions$
$/actors$

#ifdef __cplusplus
}
#endif

#endif
