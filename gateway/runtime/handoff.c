/* handoff.c - an actor leaves this member when the view gives it to another
 * (gw_runtime_rebalance; docs/design/cluster.md, "Handoff";
 * docs/design/actor-lifecycle.md, "Handoff").
 *
 * One actor, from the view that moves it away:
 *
 *   READY ---- rebalance: not mine --> (leaving) deactivating [dirty: final save, then freed;
 *                                                              clean: freed at once]
 *   BUSY ----- rebalance: not mine --> BUSY + leaving         [the turn in flight finishes;
 *                                                              its end deactivates as above]
 *   LOADING -- rebalance: not mine --> LOADING + leaving      [once loaded, deactivates]
 *   any leaving --- a call arrives --> routed again after GW_HANDOFF_RETRY_MS (to the owner)
 *
 * At rebalance the mailbox is emptied: queued calls are submitted again in
 * their order (gwi_spawn_later keeps it) through gw_runtime_invoke, whose
 * router sends each to the new owner (each its own forward: calls of
 * different callers may interleave there, as they may on one member).
 *
 * Invariants:
 *   1. a leaving actor never starts a turn (gwi_dispatch_locked);
 *   2. the turn in flight when the view changed ends normally: its caller is
 *      answered, a checkpoint commits before the answer;
 *   3. the last save of a leaving activation happens before it is freed; a
 *      new owner that activated earlier has a newer epoch and that save is
 *      fenced (statestore.md): nothing acknowledged is overwritten.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime_int.h"

size_t gw_runtime_rebalance(gw_runtime *rt, gw_mine_fn mine, void *user)
{
	size_t n = 0;
	for (size_t i = 0; i < rt->nshards; i++) {
		gw_shard *s = &rt->shards[i];
		done_list dl = {0};
		pthread_mutex_lock(&s->mu);
		/* Collect first: leaving may free an actor (its table entry). */
		size_t cnt = 0;
		for (size_t b = 0; b < s->nbuckets; b++)
			for (gw_actor *a = s->buckets[b]; a; a = a->hnext)
				if (!a->leaving && !a->forgetting &&
				    !mine(user, a->type->system, a->type->name, a->name))
					cnt++;
		gw_actor **list = cnt ? calloc(cnt, sizeof *list) : NULL;
		size_t k = 0;
		for (size_t b = 0; b < s->nbuckets && list; b++)
			for (gw_actor *a = s->buckets[b]; a && k < cnt; a = a->hnext)
				if (!a->leaving && !a->forgetting &&
				    !mine(user, a->type->system, a->type->name, a->name))
					list[k++] = a;
		if (cnt && !list)
			GW_ERROR("handoff: out of memory; %zu actors of shard %zu stay until their "
			         "epoch is fenced",
			         cnt, i);
		for (size_t j = 0; j < k; j++) {
			gw_actor *a = list[j];
			a->leaving = 1;
			n++;
			/* The queue, in order, back through the router: collected
			 * reversed, since gwi_spawn_later pushes on a stack. */
			gw_inv *rev = NULL;
			for (gw_inv *inv; (inv = gwi_mq_pop(rt, a));) {
				inv->next = rev;
				rev = inv;
			}
			while (rev) {
				gw_inv *inv = rev;
				rev = inv->next;
				inv->next = NULL;
				if (inv->kind == GW_INV_CALL && inv->timer < 0) {
					inv->actor = NULL;
					inv->local = false;
					gwi_spawn_later(&dl, rt, inv);
				} else if (inv->kind == GW_INV_WAKE) {
					gwi_finish(&dl, inv, GW_OK, NULL);
				} else {
					inv->not_dispatched = true;
					gwi_finish(
					    &dl, inv, GW_EUNAVAIL,
					    "actor %s moved to another member of the cluster; "
					    "retry",
					    a->name);
				}
			}
			gwi_leave_try_locked(rt, a); /* may free a */
		}
		free(list);
		pthread_mutex_unlock(&s->mu);
		gwi_deliver(&dl);
	}
	return n;
}

size_t gw_runtime_fence_waiters(gw_runtime *rt)
{
	size_t n = 0;
	for (size_t i = 0; i < rt->nshards; i++) {
		gw_shard *s = &rt->shards[i];
		done_list dl = {0};
		pthread_mutex_lock(&s->mu);
		for (size_t b = 0; b < s->nbuckets; b++) {
			gw_actor *next;
			for (gw_actor *a = s->buckets[b]; a; a = next) {
				next = a->hnext; /* gwi_end_turn_locked may free a */
				gw_inv *inv = a->busy;
				if (!a->leaving || a->pooled || !a->ckpt || !inv || !a->in_save ||
				    inv->wf_route || inv->wf_fire ||
				    (a->turn && a->turn->n_entries))
					continue;
				/* The state the save carries stays the actor's: commit the
				 * turn (gwi_end_turn_locked), as a save that lands would. */
				a->ckpt = 0;
				gw_blob_rele(inv->reply);
				inv->reply = NULL;
				gwi_finish(
				    &dl, inv, GW_EUNAVAIL,
				    "this member of the cluster lost its database while the "
				    "state of actor %s was being saved: the call may or may not "
				    "have taken effect",
				    a->name);
				gwi_end_turn_locked(rt, a, &dl); /* in_save: not freed yet */
				n++;
			}
		}
		pthread_mutex_unlock(&s->mu);
		gwi_deliver(&dl);
	}
	return n;
}
