/* placement.h - which member owns an actor (docs/design/cluster.md,
 * "Placement and routing"). */
#ifndef GW_CLUSTER_PLACEMENT_H
#define GW_CLUSTER_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "view.h"

/* gw_place returns the index in v->members of the owner of actor
 * (system, actor_name) whose type is actor_type: among the ACTIVE members
 * whose served list holds "system/actor_type", the one with the highest
 * rendezvous weight gw_place_weight(member id, system, actor_name). Ties
 * (a 2^-64 event) go to the smaller id, so the answer depends only on the
 * view's contents: every member computes the same owner from the same view,
 * across restarts and architectures. Returns SIZE_MAX when no member
 * qualifies (or v is NULL). Pure; strings borrowed. Thread: any. */
size_t gw_place(const gw_view *v, const char *system, const char *actor_type,
                const char *actor_name);

/* gw_place_weight: the rendezvous weight of member_id for (system, name):
 * FNV-1a 64 over each string (the system and name separated by a 0 byte),
 * the key's hash and the member's each passed through the murmur3 fmix64
 * finalizer and combined (see placement.c). Exposed for tests. */
uint64_t gw_place_weight(const char *member_id, const char *system, const char *name);

/* gw_member_serves: whether m's served list holds "system/actor_type". */
bool gw_member_serves(const gw_member *m, const char *system, const char *actor_type);

#endif
