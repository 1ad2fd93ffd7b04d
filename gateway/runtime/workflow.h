/* workflow.h - turning an action's Workflow into invocations (internal to
 * the runtime).
 *
 *   effects    -> fire-and-forget invocations, after the turn (and after its
 *                 save, in checkpoint mode); failures are retried with
 *                 backoff and logged, never dropped silently
 *   broadcast  -> one fire-and-forget invocation per subscriber of the
 *                 channel group in the actor's system
 *   pipe       -> the caller's answer comes from another action, fed with
 *                 this action's reply
 *   forward    -> the caller's answer comes from another action, fed with
 *                 this action's input
 *
 * Every invocation a workflow creates carries hops = parent's + 1; past
 * GW_MAX_HOPS the chain is cut with a clear error (A pipes to B pipes to A).
 * The caller of a chained invocation sees the emitting actor as caller.
 */
#ifndef GW_WORKFLOW_H
#define GW_WORKFLOW_H

#include "registry.h"
#include "runtime.h"

#define GW_MAX_HOPS 16

typedef struct gw_wf {
	gw_inv *route; /* pipe/forward: completes the parent when it completes */
	gw_inv *fire;  /* effects and broadcast deliveries, linked through next */
	size_t n_fire;
} gw_wf;

/* gwi_wf_build prepares the invocations of workflow w (borrowed), emitted
 * by actor (system, name) in the turn of parent (borrowed; its request
 * gives forward's input and the metadata) with reply (borrowed, may be
 * NULL). Returns GW_OK with *out filled (possibly empty; the caller owns
 * the invocations: submit them or gwi_wf_discard), GW_EINVAL with msg set
 * (naming the entry) when an entry cannot be accepted: the hop limit, a
 * side effect without a request, actor or action, a pipe or forward
 * without actor or action, a broadcast without channel group; or
 * GW_ENOMEM. A side effect without system.name goes to `system`. */
gw_err gwi_wf_build(gw_registry *reg, const gw_inv *parent, const char *system, const char *name,
                    const Spawn__Workflow *w, const gw_blob *reply, gw_wf *out, char *msg,
                    size_t n);

/* gwi_wf_discard destroys prepared invocations that will not run. */
void gwi_wf_discard(gw_wf *wf);

/* gwi_wf_fire_done is the completion of fire-and-forget invocations: it
 * logs failures and asks the runtime to retry retryable ones. */
void gwi_wf_fire_done(gw_inv *inv);

/* gwi_wf_schedule stores a side effect whose scheduled_to (Unix ms) is
 * still ahead as a scheduled invocation (gw_persist_schedule; the
 * scheduler delivers it at that time, across restarts) and completes inv
 * with GW_OK once the row is durable, or with the error (retried as any
 * failed effect). An effect carrying an idempotency key (an outbox entry)
 * gets a row id derived from the key, so storing it again after a crash
 * finds the row already there. Takes ownership of inv. */
void gwi_wf_schedule(gw_runtime *rt, gw_inv *inv);

/* gwi_effect_id writes the part of the schedule row id of the effect with
 * idempotency key (NULL: a random id) that follows the target system's
 * hash ("%08x." of gw_runtime_schedule_id) into id. false when randomness
 * failed. */
bool gwi_effect_id(const char *key, char id[31]);

/* Implemented by runtime.c: resubmit inv after delay_ms (the timer thread
 * runs it). */
void gwi_runtime_retry(gw_runtime *rt, gw_inv *inv, int64_t delay_ms);

#endif
