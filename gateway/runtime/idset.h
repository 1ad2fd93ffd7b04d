/* idset.h - a set of short string ids (scheduled invocation ids, up to
 * GW_IDSET_ID_MAX bytes): open addressing with linear probing, the ids
 * stored inline, removal by backward shift (no tombstones).
 *
 * Add, remove and lookup cost O(1) on average at any size: the table
 * doubles at half full and halves below one eighth full (never under
 * GW_IDSET_MIN slots), so 100,000 ids in flight cost 100,000 short
 * probes, not 100,000 scans of the set.
 *
 * Invariants:
 *   1. Empty slots hold "" (an id is never empty); n counts the others.
 *   2. Every id sits in the probe run starting at its home slot, with no
 *      empty slot between the home slot and it.
 *   3. cap is 0 (nothing allocated yet) or a power of two >= GW_IDSET_MIN,
 *      and n < cap / 2 after every call.
 * Thread: none of its own; the owner serialises calls (durable.c: rt->smu).
 */
#ifndef GW_IDSET_H
#define GW_IDSET_H

#include <stdbool.h>
#include <stddef.h>

#include "gw_err.h"

#define GW_IDSET_ID_MAX 39 /* longest id, bytes (GW_SCHED_ID_MAX) */
#define GW_IDSET_MIN    64 /* smallest table, slots */

typedef struct gw_idset {
	char (*slot)[GW_IDSET_ID_MAX + 1]; /* owned: cap slots */
	size_t cap, n;
} gw_idset;

/* gw_idset_init makes *s an empty set (no allocation until the first add).
 * Caller storage; release with gw_idset_fini. */
void gw_idset_init(gw_idset *s);

/* gw_idset_fini frees the table and empties *s. Accepts NULL. */
void gw_idset_fini(gw_idset *s);

/* gw_idset_add adds id (copied). Returns GW_OK (added), GW_ECONFLICT (already
 * in the set: nothing changed), GW_EINVAL (NULL, empty or longer than
 * GW_IDSET_ID_MAX), GW_ENOMEM (the table could not grow: nothing changed). */
gw_err gw_idset_add(gw_idset *s, const char *id);

/* gw_idset_remove removes id; false when it was not in the set. A failed
 * shrink keeps the larger table (never an error). */
bool gw_idset_remove(gw_idset *s, const char *id);

/* gw_idset_has reports whether id is in the set. */
bool gw_idset_has(const gw_idset *s, const char *id);

#endif
