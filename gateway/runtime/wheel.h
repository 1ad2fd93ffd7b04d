/* wheel.h - a hashed timing wheel with intrusive nodes.
 *
 * Used per shard for actor idle timeouts, snapshot intervals and
 * invocation deadlines: O(1) arm and disarm, no allocation, so a million
 * active actors cost two nodes each and nothing else.
 * Thread: a wheel belongs to its shard; callers hold the shard lock.
 */
#ifndef GW_WHEEL_H
#define GW_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_WHEEL_SLOTS   1024u /* power of two */
#define GW_WHEEL_TICK_MS 10

/* 24 bytes: the due time and the owner's tag share one word (a monotonic
 * millisecond count needs far fewer than 56 bits: 2^55 ms is a million
 * years), so an actor's nodes cost no padding (docs/design/memory.md). */
typedef struct gw_tnode {
	struct gw_tnode *prev, *next; /* NULL when not armed */
	int64_t due_ms : 56;          /* monotonic milliseconds */
	int64_t kind : 8;             /* owner's tag (0..127): which timer this is */
} gw_tnode;

typedef struct gw_wheel {
	gw_tnode slots[GW_WHEEL_SLOTS]; /* list heads (sentinels) */
	int64_t now_ms;                 /* time the wheel has advanced to */
	uint64_t armed;
} gw_wheel;

void gw_wheel_init(gw_wheel *w, int64_t now_ms);

static inline bool gw_tnode_armed(const gw_tnode *n)
{
	return n->next != NULL;
}

/* gw_wheel_arm (re)arms n to fire at due_ms (disarming it first). */
void gw_wheel_arm(gw_wheel *w, gw_tnode *n, int64_t due_ms);

/* gw_wheel_disarm removes n; harmless when n is not armed. */
void gw_wheel_disarm(gw_wheel *w, gw_tnode *n);

/* gw_wheel_expire advances to now_ms and moves every node due by then onto
 * *out (a NULL-terminated singly linked list through ->next, nodes
 * disarmed: ->prev is NULL). The caller handles them; a handler may re-arm. */
void gw_wheel_expire(gw_wheel *w, int64_t now_ms, gw_tnode **out);

#endif
