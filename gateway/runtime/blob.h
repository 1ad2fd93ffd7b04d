/* blob.h - an immutable, reference-counted byte string.
 *
 * Actor state is held as a blob: a save job holds its own reference while
 * the actor moves on to a newer state, so neither copies nor waits.
 * Layout (docs/design/memory.md): a 16-byte header, then the value; the
 * type URL is the string pool's copy (intern.h) when it has one, so the
 * states of a million actors of one type share one URL; otherwise it is
 * kept after the value in the same allocation.
 * Thread: hold/rele from any thread (atomic count); contents never change
 * after creation.
 */
#ifndef GW_BLOB_H
#define GW_BLOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "intern.h"

typedef struct gw_blob {
	atomic_uint refs;
	uint32_t len;     /* bytes of value at data[0..len) */
	const char *type; /* borrowed: the type URL ("" for none), NUL-terminated: the
	                     pool's copy (static) or data + len + 0 (this blob's own) */
	uint8_t data[];   /* value, then the type URL when the pool has none */
} gw_blob;

/* gw_blob_alloc makes a blob of a type URL (copied or pooled; NULL = "")
 * and len bytes of value left for the caller to fill (gw_blob_value_mut)
 * before it is shared. Returns NULL when out of memory or len is over
 * UINT32_MAX. The caller holds the one reference. */
static inline gw_blob *gw_blob_alloc(const char *type_url, size_t len)
{
	size_t tl = type_url ? strlen(type_url) : 0;
	const char *pooled = gw_intern(type_url ? type_url : "", tl);
	if (len > UINT32_MAX)
		return NULL;
	gw_blob *b = malloc(sizeof *b + len + (pooled ? 0 : tl + 1));
	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->len = (uint32_t)len;
	if (pooled) {
		b->type = pooled;
	} else {
		char *own = (char *)b->data + len;
		if (tl)
			memcpy(own, type_url, tl);
		own[tl] = 0;
		b->type = own;
	}
	return b;
}

/* gw_blob_create copies a type URL and a value. Returns NULL when out of
 * memory. The caller holds the one reference. */
static inline gw_blob *gw_blob_create(const char *type_url, const void *value, size_t len)
{
	gw_blob *b = gw_blob_alloc(type_url, len);
	if (b && len)
		memcpy(b->data, value, len);
	return b;
}

static inline const char *gw_blob_type(const gw_blob *b)
{
	return b->type;
}

static inline const uint8_t *gw_blob_value(const gw_blob *b)
{
	return b->data;
}

/* gw_blob_value_mut: the value of a blob gw_blob_alloc just made, not yet
 * shared. */
static inline uint8_t *gw_blob_value_mut(gw_blob *b)
{
	return b->data;
}

static inline gw_blob *gw_blob_hold(gw_blob *b)
{
	if (b)
		atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

/* gw_blob_rele drops a reference. Accepts NULL. */
static inline void gw_blob_rele(gw_blob *b)
{
	if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		free(b);
}

#endif
