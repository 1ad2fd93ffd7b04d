/* snapq.c - the snapshot timers of a shard's actors: a binary min-heap of
 * (due time, actor) in one array per shard, instead of a 24-byte timing
 * wheel node in every actor (docs/design/memory.md). Only actors with a
 * snapshot pending are in it (dirty ones, and those whose save is retried
 * after a backoff), so an idle, clean actor pays 4 bytes (snap_at) and a
 * million dirty ones 16 MiB while they wait.
 *
 *   UNARMED (snap_at 0) --- gwi_snap_arm ----------------> ARMED (snap_at = 1 + index)
 *   ARMED --- gwi_snap_arm (new due time: moved) --------> ARMED
 *   ARMED --- gwi_snap_disarm, or due (gwi_snap_pop_due) -> UNARMED
 *
 * Invariants (shard lock held for every call):
 *   1. v[0..n) is a min-heap on due_ms;
 *   2. v[i].a->snap_at == i + 1 for every i < n, and an actor not in v
 *      has snap_at == 0.
 * When the array cannot grow (out of memory) gwi_snap_arm answers
 * GW_ENOMEM and the caller saves at once instead: earlier, never later. */
#include <stdlib.h>

#include "runtime_int.h"

static void put(gw_snapq *q, uint32_t i, gw_snap_ent e)
{
	q->v[i] = e;
	e.a->snap_at = i + 1;
}

static void sift_up(gw_snapq *q, uint32_t i)
{
	gw_snap_ent e = q->v[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (q->v[p].due_ms <= e.due_ms)
			break;
		put(q, i, q->v[p]);
		i = p;
	}
	put(q, i, e);
}

static void sift_down(gw_snapq *q, uint32_t i)
{
	gw_snap_ent e = q->v[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= q->n)
			break;
		if (c + 1 < q->n && q->v[c + 1].due_ms < q->v[c].due_ms)
			c++;
		if (e.due_ms <= q->v[c].due_ms)
			break;
		put(q, i, q->v[c]);
		i = c;
	}
	put(q, i, e);
}

gw_err gwi_snap_arm(gw_shard *s, gw_actor *a, int64_t due_ms)
{
	gw_snapq *q = &s->snapq;
	if (a->snap_at) {
		uint32_t i = a->snap_at - 1;
		int64_t old = q->v[i].due_ms;
		q->v[i].due_ms = due_ms;
		if (due_ms < old)
			sift_up(q, i);
		else
			sift_down(q, i);
		return GW_OK;
	}
	if (q->n == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 64;
		gw_snap_ent *v = cap > q->cap ? realloc(q->v, (size_t)cap * sizeof *v) : NULL;
		if (!v)
			return GW_ENOMEM;
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n] = (gw_snap_ent){.due_ms = due_ms, .a = a};
	sift_up(q, q->n++);
	return GW_OK;
}

void gwi_snap_disarm(gw_shard *s, gw_actor *a)
{
	gw_snapq *q = &s->snapq;
	if (!a->snap_at)
		return;
	uint32_t i = a->snap_at - 1;
	a->snap_at = 0;
	gw_snap_ent last = q->v[--q->n];
	if (i != q->n) {
		int64_t old = q->v[i].due_ms;
		put(q, i, last);
		if (last.due_ms < old)
			sift_up(q, i);
		else
			sift_down(q, i);
	}
	if (q->n < q->cap / 4 && q->cap > 64) {
		/* A queue that emptied after a burst gives memory back: the
		 * entries left are all below cap / 2. A failed shrink keeps the
		 * larger array. */
		gw_snap_ent *v = realloc(q->v, (size_t)(q->cap / 2) * sizeof *v);
		if (v) {
			q->v = v;
			q->cap /= 2;
		}
	}
}

gw_actor *gwi_snap_pop_due(gw_shard *s, int64_t now_ms)
{
	gw_snapq *q = &s->snapq;
	if (!q->n || q->v[0].due_ms > now_ms)
		return NULL;
	gw_actor *a = q->v[0].a;
	gwi_snap_disarm(s, a);
	return a;
}

void gwi_snap_fini(gw_shard *s)
{
	free(s->snapq.v);
	s->snapq.v = NULL;
	s->snapq.n = s->snapq.cap = 0;
}
