/* listing.c - the active actors, for Admin.List (part spawnctl;
 * docs/spawnctl.md). Reads each shard's table under its lock; nothing is
 * changed. */
#include <inttypes.h>
#include <stdio.h>

#include "runtime_int.h"

void gw_runtime_foreach_active(gw_runtime *rt, gw_active_fn fn, void *user)
{
	for (size_t i = 0; i < rt->nshards; i++) {
		gw_shard *s = &rt->shards[i];
		pthread_mutex_lock(&s->mu);
		for (size_t b = 0; b < s->nbuckets; b++)
			for (gw_actor *a = s->buckets[b]; a; a = a->hnext) {
				if (a->forgetting || a->leaving)
					continue;
				gw_active_info ai = {
				    .system = a->type->system,
				    .type = a->type->name,
				    .name = a->name,
				    .queued = a->qlen,
				    .busy = a->busy != NULL || a->inflight > 0,
				    .revision = a->revision,
				};
				fn(user, &ai);
			}
		pthread_mutex_unlock(&s->mu);
	}
}

void gw_runtime_sched_prefix(const char *system, char out[16])
{
	snprintf(out, 16, "%08" PRIx32 ".", gwi_sys_hash(system));
}
