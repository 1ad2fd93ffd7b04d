/* actor_ext.c - the part of an actor that few actors use (runtime_int.h,
 * gw_actor_ext): tags, the outbox and applied idempotency keys, timer
 * actions. An actor without any of them keeps one NULL pointer instead of
 * 28 bytes (docs/design/memory.md).
 *
 *   NONE (a->x NULL) --- a member set (gwi_ext, gwi_set_*) ---> SOME
 *   SOME --- every member empty, no turn open (gwi_ext_trim) --> NONE
 *   SOME / NONE --- the actor is freed (gwi_ext_free) --------> NONE
 *
 * While a turn is open the ext is never freed: the turn holds references
 * to the tags and extra it captured, and its rollback puts them back
 * without allocating (turn.c).
 * Every function here runs with the actor's shard lock held. */
#include <stdlib.h>

#include "runtime_int.h"

gw_actor_ext *gwi_ext(gw_actor *a)
{
	if (!a->x)
		a->x = calloc(1, sizeof *a->x);
	return a->x;
}

void gwi_ext_trim(gw_actor *a)
{
	gw_actor_ext *x = a->x;
	if (!x || a->turn || x->tags || x->extra || x->timers || x->n_outbox || x->pool_max)
		return;
	free(x);
	a->x = NULL;
}

gw_err gwi_set_tags(gw_actor *a, gw_blob *b)
{
	if (!b && !a->x)
		return GW_OK;
	gw_actor_ext *x = gwi_ext(a);
	if (!x) {
		gw_blob_rele(b);
		return GW_ENOMEM;
	}
	gw_blob_rele(x->tags);
	x->tags = b;
	gwi_ext_trim(a);
	return GW_OK;
}

gw_err gwi_set_extra(gw_actor *a, gw_blob *b, uint32_t n_outbox)
{
	if (!b && !n_outbox && !a->x)
		return GW_OK;
	gw_actor_ext *x = gwi_ext(a);
	if (!x) {
		gw_blob_rele(b);
		return GW_ENOMEM;
	}
	gw_blob_rele(x->extra);
	x->extra = b;
	x->n_outbox = n_outbox;
	gwi_ext_trim(a);
	return GW_OK;
}

void gwi_ext_free(gw_actor *a)
{
	gw_actor_ext *x = a->x;
	if (!x)
		return;
	gw_blob_rele(x->tags);
	gw_blob_rele(x->extra);
	free(x->timers);
	free(x);
	a->x = NULL;
}
