/* result.c - a target's answer to a turn: gw_runtime_result (runtime.h)
 * checks the host's response (state type, workflow, tags, outbox), applies
 * it to the actor as one turn outcome (turn.c) and ends the turn. Split
 * from runtime.c; the turn's states are in docs/design/actor-lifecycle.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime_int.h"
#include "workflow.h"

/* same_state tells whether the host sent back exactly the state it got. */
static bool same_state(const gw_blob *b, const Google__Protobuf__Any *any)
{
	if (!b)
		return false;
	const char *tu = any->type_url ? any->type_url : "";
	return b->len == any->value.len && !strcmp(gw_blob_type(b), tu) &&
	       (b->len == 0 || !memcmp(gw_blob_value(b), any->value.data, b->len));
}

void gw_runtime_result(gw_runtime *rt, gw_inv *inv, const Spawn__Gateway__V1__InvocationResult *res)
{
	gw_actor *a = inv->actor;
	gw_shard *s = gwi_ashard(a);
	done_list dl = {0};
	gwi_log_scope ls;
	gwi_log_enter(&ls, inv);
	pthread_mutex_lock(&s->mu);
	inv->tr.result_ns = gw_trace_now_ns();
	gw_wheel_disarm(&s->wheel, &inv->deadline_t);
	gwi_target_rele(inv->host);
	inv->host = NULL;
	if (res->outcome_case != SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE ||
	    !res->response) {
		const Spawn__Gateway__V1__HostError *he =
		    res->outcome_case == SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR
		        ? res->error
		        : NULL;
		int code = he ? he->code : GRPC_STATUS_UNKNOWN;
		if (code <= 0 || code > 16)
			code = GRPC_STATUS_UNKNOWN;
		/* A host's UNAUTHENTICATED or PERMISSION_DENIED would misstate the
		 * caller's own credentials: UNKNOWN, prefixed with the host's code
		 * (docs/security.md, "Host error codes"). */
		const char *prefix = code == GRPC_STATUS_PERMISSION_DENIED
		                         ? "actor host answered PERMISSION_DENIED: "
		                     : code == GRPC_STATUS_UNAUTHENTICATED
		                         ? "actor host answered UNAUTHENTICATED: "
		                         : "";
		if (prefix[0])
			code = GRPC_STATUS_UNKNOWN;
		inv->host_code = code;
		gwi_finish(&dl, inv, GW_EHOST, "%s%s", prefix,
		           he ? (he->message ? he->message : "") : "the host returned no response");
		inv->host_message = he != NULL; /* the host's words, even when empty */
		gwi_turn_over_locked(rt, a, &dl);
		goto out;
	}
	const Spawn__ActorInvocationResponse *r = res->response;
	/* A state of another type than the declared state_type fails the turn
	 * and leaves the state as it was (docs/protocol.md, Registration). */
	const Spawn__Context *sc = r->updated_context;
	char smsg[512];
	if (!a->pooled && a->stateful && sc && sc->state &&
	    gw_registry_check_state(rt->reg, a->type, sc->state->type_url, smsg, sizeof smsg) !=
	        GW_OK) {
		gwi_finish(&dl, inv, GW_ECONFIG, "%s", smsg);
		gwi_end_turn_locked(rt, a, &dl);
		goto out;
	}
	/* The reply value, kept until the caller is answered. */
	if (r->payload_case == SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_VALUE && r->value) {
		inv->reply =
		    gw_blob_create(r->value->type_url, r->value->value.data, r->value->value.len);
		if (!inv->reply) {
			gwi_finish(&dl, inv, GW_ENOMEM, "reply of actor %s too large", a->name);
			gwi_turn_over_locked(rt, a, &dl);
			goto out;
		}
	}
	if (r->workflow && r->workflow->n_effects > rt->o.max_effects_per_turn) {
		gw_blob_rele(inv->reply);
		inv->reply = NULL;
		gwi_finish(&dl, inv, GW_ETOOBIG,
		           "actor %s emitted %zu side effects in one turn; at most %u are allowed "
		           "(--max-effects-per-turn): the turn is refused, its state unchanged",
		           a->name, r->workflow->n_effects, rt->o.max_effects_per_turn);
		gwi_turn_over_locked(rt, a, &dl);
		goto out;
	}
	if (r->workflow) {
		gw_wf wf;
		char wmsg[160];
		gw_err werr = gwi_wf_build(rt->reg, inv, a->type->system, a->name, r->workflow,
		                           inv->reply, &wf, wmsg, sizeof wmsg);
		if (werr) {
			/* The turn fails whole: no reply, its state is not kept. */
			gw_blob_rele(inv->reply);
			inv->reply = NULL;
			gwi_finish(&dl, inv, werr, "%s", wmsg);
			gwi_turn_over_locked(rt, a, &dl);
			goto out;
		}
		inv->wf_route = wf.route;
		inv->wf_fire = wf.fire;
	}
	{
		char bmsg[400];
		gw_err berr = gwi_result_bounds(rt, a, inv, r, bmsg, sizeof bmsg);
		if (berr) {
			gw_blob_rele(inv->reply);
			inv->reply = NULL;
			gwi_discard_workflow(inv);
			gwi_finish(&dl, inv, berr, "%s", bmsg);
			gwi_turn_over_locked(rt, a, &dl);
			goto out;
		}
	}
	if (a->pooled) {
		/* Stateless and parallel: only the reply and the workflow count. */
		if (!gwi_submit_workflow(&dl, rt, inv))
			gwi_finish(&dl, inv, GW_OK, NULL);
		gwi_pooled_end_locked(rt, a, &dl);
		goto out;
	}
	/* From here on the turn changes the actor: a->turn (begun at
	 * dispatch) can take every change back. */
	const Spawn__Context *uc = r->updated_context;
	if (uc && uc->state && !same_state(a->state, uc->state)) {
		gw_blob *nb = gw_blob_create(uc->state->type_url, uc->state->value.data,
		                             uc->state->value.len);
		if (!nb) {
			gwi_finish(&dl, inv, GW_ENOMEM, "state of actor %s too large", a->name);
			gwi_end_turn_locked(rt, a, &dl);
			goto out;
		}
		gw_blob_rele(a->state);
		a->state = nb;
		a->state_moved = 1;
		a->dirty = 1;
	}
	/* The updated context carries the actor's whole tag set: none left
	 * means the host removed them all. */
	if (uc && !uc->n_tags && gwi_tags(a)) {
		gwi_set_tags(a, NULL);
		a->dirty = 1;
	} else if (uc && uc->n_tags) {
		Spawn__Actors__ActorState t = SPAWN__ACTORS__ACTOR_STATE__INIT;
		t.n_tags = uc->n_tags;
		t.tags = (Spawn__Actors__ActorState__TagsEntry **)uc->tags; /* same layout */
		size_t n = spawn__actors__actor_state__get_packed_size(&t);
		uint8_t *buf = malloc(n ? n : 1);
		if (buf) {
			spawn__actors__actor_state__pack(&t, buf);
			gw_blob *old = gwi_tags(a);
			if (!old || old->len != n || memcmp(gw_blob_value(old), buf, n)) {
				gwi_set_tags(a, gw_blob_create(NULL, buf, n));
				a->dirty = 1;
			}
			free(buf);
		}
	}
	/* A delivery with an idempotency key: remember it with the state it
	 * changed (the same save). */
	const char *key = a->stateful ? gwi_inv_key(inv) : NULL;
	if (key)
		gwi_turn_record_key(a, key);
	/* Checkpointed effects go into the outbox, in the state's transaction. */
	if (r->checkpoint && a->stateful && inv->wf_fire &&
	    gwi_turn_store_outbox(a, inv->wf_fire) != GW_OK)
		GW_ERROR("actor %s/%s: out of memory writing the outbox; effects delivered "
		         "without it",
		         a->type->system, a->name);
	if (r->checkpoint && a->stateful && a->dirty) {
		/* Stay BUSY until the state is durable (invariant 4). */
		a->ckpt = 1;
		inv->tr.save0_ns = gw_trace_now_ns();
		gwi_snap_disarm(s, a);
		gwi_start_save_locked(rt, a);
		if (!a->in_save) {
			/* Could not even queue the save: fail now, roll back. */
			a->ckpt = 0;
			gwi_turn_rollback(a);
			gw_blob_rele(inv->reply);
			inv->reply = NULL;
			gwi_discard_workflow(inv);
			gwi_finish(&dl, inv, GW_EUNAVAIL, "state of actor %s could not be saved",
			           a->name);
			gwi_end_turn_locked(rt, a, &dl);
		}
		goto out;
	}
	if (!gwi_submit_workflow(&dl, rt, inv))
		gwi_finish(&dl, inv, GW_OK, NULL);
	gwi_end_turn_locked(rt, a, &dl);
out:
	pthread_mutex_unlock(&s->mu);
	gwi_log_leave(&ls);
	gwi_deliver(&dl);
}
