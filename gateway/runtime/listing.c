/* listing.c - the active actors, for Admin.List (part spawnctl;
 * docs/spawnctl.md). Reads each shard's table under its lock, LIST_CHUNK
 * buckets at a time; nothing is changed. */
#include <inttypes.h>
#include <stdio.h>

#include "runtime_int.h"

/* Buckets walked per hold of a shard's lock: a listing over millions of
 * actors never holds one shard for long (its calls wait meanwhile). */
#define LIST_CHUNK 512

void gw_runtime_foreach_active(gw_runtime *rt, gw_active_fn fn, void *user)
{
	for (size_t i = 0; i < rt->nshards; i++) {
		gw_shard *s = &rt->shards[i];
		pthread_mutex_lock(&s->mu);
		size_t nb = s->nbuckets, b = 0;
		while (b < s->nbuckets) {
			if (s->nbuckets != nb) {
				/* the table grew while the lock was let go: walk it
				 * again (the caller drops what it saw twice) */
				nb = s->nbuckets;
				b = 0;
			}
			size_t end = b + LIST_CHUNK < nb ? b + LIST_CHUNK : nb;
			for (; b < end; b++)
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
					if (!fn(user, &ai)) {
						pthread_mutex_unlock(&s->mu);
						return;
					}
				}
			if (b < nb) {
				pthread_mutex_unlock(&s->mu);
				pthread_mutex_lock(&s->mu);
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
}

void gw_runtime_sched_prefix(const char *system, char out[16])
{
	snprintf(out, 16, "%08" PRIx32 ".", gwi_sys_hash(system));
}
