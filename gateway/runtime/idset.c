/* idset.c - open addressing over inline ids (see idset.h). */
#include "idset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: ids are mostly random hex, any mixing hash spreads them. */
static size_t home(const gw_idset *s, const char *id)
{
	uint32_t h = 2166136261u;
	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	return h & (s->cap - 1);
}

/* find returns the slot holding id, or the empty slot ending its probe run
 * (where an add puts it). cap > 0 and the table is never full (inv. 3). */
static size_t find(const gw_idset *s, const char *id)
{
	size_t i = home(s, id);
	while (s->slot[i][0] && strcmp(s->slot[i], id) != 0)
		i = (i + 1) & (s->cap - 1);
	return i;
}

/* resize moves every id into a new table of cap slots. */
static gw_err resize(gw_idset *s, size_t cap)
{
	gw_idset t = {.slot = calloc(cap, sizeof *s->slot), .cap = cap, .n = s->n};
	if (!t.slot)
		return GW_ENOMEM;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i][0])
			memcpy(t.slot[find(&t, s->slot[i])], s->slot[i], sizeof *s->slot);
	free(s->slot);
	*s = t;
	return GW_OK;
}

void gw_idset_init(gw_idset *s)
{
	memset(s, 0, sizeof *s);
}

void gw_idset_fini(gw_idset *s)
{
	if (!s)
		return;
	free(s->slot);
	memset(s, 0, sizeof *s);
}

gw_err gw_idset_add(gw_idset *s, const char *id)
{
	size_t len = id ? strlen(id) : 0;
	if (len == 0 || len > GW_IDSET_ID_MAX)
		return GW_EINVAL;
	if (s->cap == 0 || (s->n + 1) * 2 > s->cap) {
		gw_err e = resize(s, s->cap ? s->cap * 2 : GW_IDSET_MIN);
		if (e != GW_OK)
			return e;
	}
	size_t i = find(s, id);
	if (s->slot[i][0])
		return GW_ECONFLICT;
	memcpy(s->slot[i], id, len + 1);
	s->n++;
	return GW_OK;
}

bool gw_idset_has(const gw_idset *s, const char *id)
{
	if (s->n == 0 || !id || !id[0])
		return false;
	return s->slot[find(s, id)][0] != '\0';
}

bool gw_idset_remove(gw_idset *s, const char *id)
{
	if (!gw_idset_has(s, id))
		return false;
	size_t mask = s->cap - 1, hole = find(s, id);
	/* Backward shift: pull later members of the run into the hole when
	 * their home slot does not lie (cyclically) after the hole, so every
	 * id stays reachable from its home slot (invariant 2). */
	for (size_t j = (hole + 1) & mask; s->slot[j][0]; j = (j + 1) & mask) {
		size_t h = home(s, s->slot[j]);
		bool movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
		if (movable) {
			memcpy(s->slot[hole], s->slot[j], sizeof *s->slot);
			hole = j;
		}
	}
	s->slot[hole][0] = '\0';
	s->n--;
	if (s->cap > GW_IDSET_MIN && s->n * 8 < s->cap)
		resize(s, s->cap / 2); /* on failure the larger table stays */
	return true;
}
