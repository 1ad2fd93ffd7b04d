/* mailbox.c - an actor's mailbox: the FIFO of invocations waiting for
 * their turn, its bounds and the deadlines of the calls in it
 * (docs/design/actor-lifecycle.md, "Bounds" and "Mailbox").
 *
 * A queued invocation is in exactly one mailbox, linked both ways so it
 * can leave from the middle:
 *
 *   (enqueue) --- admitted (count, bytes) ----> QUEUED   [deadline armed: T_QDEADLINE]
 *   (enqueue) --- over a bound ---------------> refused  [RESOURCE_EXHAUSTED, names the flag]
 *   QUEUED ------ its turn (gwi_mq_pop) ------> dispatched [bytes given back]
 *   QUEUED ------ deadline passed ------------> finished DEADLINE_EXCEEDED at once
 *                                               [left the mailbox, bytes given back;
 *                                                done frees the payload]
 *   QUEUED ------ caller went away -----------> finished CANCELLED at once, the same way
 *                 (gw_runtime_cancel)
 *   QUEUED ------ activation failed, shutdown > finished with that error
 *
 * Invariants (all under the actor's shard lock, except queued_bytes which
 * is one atomic per gateway):
 *   1. a->qlen and a->qbytes count exactly the invocations in a's mailbox
 *      and the request bytes each was admitted with (inv->qbytes);
 *   2. rt->queued_bytes is the sum of every actor's qbytes;
 *   3. an invocation in a mailbox is finished only after it left it (its
 *      done runs once: the deadline node is disarmed when it leaves). */
#include <stdio.h>

#include "gm.h"
#include "runtime_int.h"

gw_err gwi_mq_admit(gw_runtime *rt, gw_actor *a, gw_inv *inv, char *msg, size_t n)
{
	const char *name = a->name;
	if (a->qlen >= rt->o.mailbox_max) {
		snprintf(msg, n, "mailbox of actor %s is full (%u waiting; --mailbox-size)", name,
		         a->qlen);
		return GW_EFULL;
	}
	size_t sz = inv->req ? spawn__invocation_request__get_packed_size(inv->req) : 0;
	if (a->qbytes + sz > rt->o.mailbox_bytes) {
		atomic_fetch_add_explicit(&rt->queued_refused, 1, memory_order_relaxed);
		snprintf(msg, n,
		         "mailbox of actor %s is full: %zu bytes of requests wait and this one has "
		         "%zu; at most %zu are allowed (--mailbox-bytes)",
		         name, (size_t)a->qbytes, sz, rt->o.mailbox_bytes);
		return GW_EFULL;
	}
	size_t before = atomic_fetch_add(&rt->queued_bytes, sz);
	if (before + sz > rt->o.queued_bytes) {
		atomic_fetch_sub(&rt->queued_bytes, sz);
		atomic_fetch_add_explicit(&rt->queued_refused, 1, memory_order_relaxed);
		snprintf(
		    msg, n,
		    "the gateway is full: %zu bytes of requests wait in mailboxes and this one "
		    "has %zu; at most %zu are allowed (--queued-bytes)",
		    before, sz, rt->o.queued_bytes);
		return GW_EFULL;
	}
	inv->qbytes = sz; /* counted in rt->queued_bytes from here: push or unadmit */
	return GW_OK;
}

void gwi_mq_push(gw_runtime *rt, gw_actor *a, gw_inv *inv)
{
	inv->actor = a;
	inv->next = NULL;
	/* The head's mq_prev is the tail (no tail pointer in the actor). */
	gw_inv *head = a->mq_head;
	if (head) {
		gw_inv *tail = head->mq_prev;
		inv->mq_prev = tail;
		tail->next = inv;
		head->mq_prev = inv;
	} else {
		inv->mq_prev = inv;
		a->mq_head = inv;
	}
	a->qlen++;
	a->qbytes += (uint32_t)inv->qbytes; /* admitted: the sum is <= mailbox_bytes */
	gw_gm_mailbox_depth(rt->gm, a->qlen);
	inv->in_mq = true;
	if (inv->deadline_ms) {
		/* It leaves at its deadline even while the actor is busy, HELD or
		 * loading: the caller is answered and its payload freed then. */
		inv->deadline_t.kind = T_QDEADLINE;
		gw_wheel_arm(&gwi_ashard(a)->wheel, &inv->deadline_t, inv->deadline_ms);
	}
}

/* unlink takes inv out of a's mailbox and gives its bytes back. */
static void unlink_inv(gw_runtime *rt, gw_actor *a, gw_inv *inv)
{
	gw_inv *head = a->mq_head;
	if (inv == head) {
		a->mq_head = inv->next;
		if (inv->next)
			inv->next->mq_prev = inv->mq_prev; /* the tail, still */
	} else {
		inv->mq_prev->next = inv->next;
		if (inv->next)
			inv->next->mq_prev = inv->mq_prev;
		else
			head->mq_prev = inv->mq_prev; /* inv was the tail */
	}
	inv->next = inv->mq_prev = NULL;
	inv->in_mq = false;
	a->qlen--;
	a->qbytes -= (uint32_t)inv->qbytes;
	atomic_fetch_sub(&rt->queued_bytes, inv->qbytes);
	inv->qbytes = 0;
	gw_wheel_disarm(&gwi_ashard(a)->wheel, &inv->deadline_t);
}

void gwi_mq_remove(gw_runtime *rt, gw_actor *a, gw_inv *inv)
{
	unlink_inv(rt, a, inv);
}

gw_inv *gwi_mq_pop(gw_runtime *rt, gw_actor *a)
{
	gw_inv *inv = a->mq_head;
	if (inv)
		unlink_inv(rt, a, inv);
	return inv;
}

void gwi_mq_expire_locked(gw_runtime *rt, gw_inv *inv, done_list *dl)
{
	gw_actor *a = inv->actor;
	unlink_inv(rt, a, inv);
	atomic_fetch_add_explicit(&rt->queued_expired, 1, memory_order_relaxed);
	gwi_finish(dl, inv, GW_ETIMEDOUT, "deadline passed while queued for actor %s (%s)", a->name,
	           a->st == A_LOADING ? "still activating"
	           : a->busy          ? "busy with an earlier call"
	           : a->held          ? "an earlier call timed out and may still run on its host"
	                              : "waiting for its turn");
}

void gwi_mq_cancel_locked(gw_runtime *rt, gw_inv *inv, done_list *dl)
{
	gw_actor *a = inv->actor;
	unlink_inv(rt, a, inv);
	atomic_fetch_add_explicit(&rt->cancelled, 1, memory_order_relaxed);
	gwi_finish(dl, inv, GW_ECANCELLED,
	           "the caller cancelled the call while it was queued for actor %s", a->name);
}
