/* blob.h - an immutable, reference-counted byte string.
 *
 * Actor state is held as a blob: a save job holds its own reference while
 * the actor moves on to a newer state, so neither copies nor waits.
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

typedef struct gw_blob {
	atomic_uint refs;
	uint32_t type_len; /* bytes of type_url at data[0..type_len) */
	size_t len;        /* bytes of value after the type URL */
	uint8_t data[];    /* type_url (NUL-terminated), then value */
} gw_blob;

/* gw_blob_create copies a type URL and a value. Returns NULL when out of
 * memory. The caller holds the one reference. */
static inline gw_blob *gw_blob_create(const char *type_url, const void *value, size_t len)
{
	size_t tl = type_url ? strlen(type_url) : 0;
	gw_blob *b = malloc(sizeof *b + tl + 1 + len);
	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->type_len = (uint32_t)tl;
	b->len = len;
	if (tl)
		memcpy(b->data, type_url, tl);
	b->data[tl] = 0;
	if (len)
		memcpy(b->data + tl + 1, value, len);
	return b;
}

static inline const char *gw_blob_type(const gw_blob *b)
{
	return (const char *)b->data;
}

static inline const uint8_t *gw_blob_value(const gw_blob *b)
{
	return b->data + b->type_len + 1;
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
