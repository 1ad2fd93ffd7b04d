/* wheel.c - hashed timing wheel. A node sits in slot (due / tick) mod N;
 * a slot is scanned when the wheel passes it and nodes due later (a later
 * lap) stay where they are. */
#include "wheel.h"

#include <stddef.h>

void gw_wheel_init(gw_wheel *w, int64_t now_ms)
{
	for (unsigned i = 0; i < GW_WHEEL_SLOTS; i++)
		w->slots[i].prev = w->slots[i].next = &w->slots[i];
	w->now_ms = now_ms;
	w->armed = 0;
}

void gw_wheel_disarm(gw_wheel *w, gw_tnode *n)
{
	if (!n->next)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
	w->armed--;
}

void gw_wheel_arm(gw_wheel *w, gw_tnode *n, int64_t due_ms)
{
	gw_wheel_disarm(w, n);
	/* Never file a node behind the cursor: it would wait a whole lap. */
	if (due_ms < w->now_ms)
		due_ms = w->now_ms;
	n->due_ms = due_ms;
	gw_tnode *head = &w->slots[(uint64_t)(due_ms / GW_WHEEL_TICK_MS) & (GW_WHEEL_SLOTS - 1)];
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
	w->armed++;
}

void gw_wheel_expire(gw_wheel *w, int64_t now_ms, gw_tnode **out)
{
	gw_tnode *list = NULL;
	if (now_ms < w->now_ms)
		now_ms = w->now_ms;
	int64_t from = w->now_ms / GW_WHEEL_TICK_MS;
	int64_t to = now_ms / GW_WHEEL_TICK_MS;
	/* After a long stall, one lap covers every slot. */
	if (to - from >= (int64_t)GW_WHEEL_SLOTS)
		from = to - GW_WHEEL_SLOTS + 1;
	for (int64_t t = from; t <= to && w->armed; t++) {
		gw_tnode *head = &w->slots[(uint64_t)t & (GW_WHEEL_SLOTS - 1)];
		gw_tnode *n = head->next;
		while (n != head) {
			gw_tnode *next = n->next;
			if (n->due_ms <= now_ms) {
				gw_wheel_disarm(w, n);
				n->next = list;
				list = n;
			}
			n = next;
		}
	}
	w->now_ms = now_ms;
	*out = list;
}
