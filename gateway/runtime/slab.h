/* slab.h - a size-classed slab for many small long-lived objects of one
 * owner: a shard's actors, the registry's instance records
 * (docs/design/memory.md).
 *
 * Objects live in 64 KiB pages of their own, mapped with mmap and aligned
 * to 64 KiB, so:
 *   - no malloc chunk header and no rounding to 16 bytes: a slot is the
 *     object's size rounded up to 8;
 *   - no heap holes between them: calls in flight (gRPC arenas, invocations)
 *     are allocated elsewhere and never interleave with them;
 *   - the slab an object belongs to (and so its owner) is found from the
 *     object's address (gw_slab_of), so objects need no owner pointer.
 * A page holds slots of one size class (8-byte steps up to GW_SLAB_MAX);
 * a larger object gets a mapping of its own. A page whose last object is
 * freed is unmapped, unless it is the only page of its class (kept so one
 * object coming and going does not map and unmap a page each time).
 *
 * Page states: PARTIAL (on its class's list: a free or never-used slot) ->
 * FULL (off the list) -> PARTIAL when a slot is freed -> UNMAPPED when its
 * last object is freed and the class has another page (or at
 * gw_slab_fini).
 *
 * Thread: a slab and its objects' allocation and release are guarded by
 * the owner's lock (the shard lock, the registry's write lock); gw_slab_of
 * needs no lock (a page's slab never changes while it holds an object).
 * Under AddressSanitizer free slots are poisoned. */
#ifndef GW_SLAB_H
#define GW_SLAB_H

#include <stddef.h>
#include <stdint.h>

#define GW_SLAB_PAGE    ((size_t)64 * 1024) /* page size and alignment */
#define GW_SLAB_MAX     1024                /* largest slot; larger: a mapping each */
#define GW_SLAB_CLASSES (GW_SLAB_MAX / 8 + 1)

typedef struct gw_slab_page gw_slab_page;

typedef struct gw_slab {
	gw_slab_page *partial[GW_SLAB_CLASSES]; /* owned: pages with a free slot */
	size_t pages;                           /* pages and large mappings held */
	size_t objects;                         /* objects allocated */
	/* The page directory, for 32-bit handles (gw_slab_handle): */
	gw_slab_page **dir; /* owned array of ndir: borrowed pages, NULL = a free index */
	uint32_t *dir_free; /* owned: free indexes (a stack of n_free) */
	uint32_t ndir, n_free;
} gw_slab;

/* gw_slab_init makes s empty (no page mapped). */
void gw_slab_init(gw_slab *s);

/* gw_slab_alloc returns n bytes (n > 0), zeroed, aligned to 8, owned by the
 * caller until gw_slab_free; NULL when out of memory. */
void *gw_slab_alloc(gw_slab *s, size_t n);

/* gw_slab_free gives back p (from gw_slab_alloc of its slab; NULL is
 * harmless). */
void gw_slab_free(void *p);

/* gw_slab_of returns the slab p was allocated from (borrowed). */
gw_slab *gw_slab_of(const void *p);

/* Handles: an object is also named by a 32-bit handle, never 0: its
 * page's index in the slab's directory and its offset in the page in
 * 8-byte units, so a table of many objects can hold 4 bytes for each
 * instead of a pointer. gw_slab_handle answers p's handle; gw_slab_ptr
 * the object of handle h (alive in s). At most GW_SLAB_MAX_PAGES pages
 * (and large mappings) at once: gw_slab_alloc answers NULL beyond. */
#define GW_SLAB_MAX_PAGES ((uint32_t)1 << 19) /* 32 GiB of pages */
static inline uint32_t gw_slab_handle(const void *p)
{
	uintptr_t off = (uintptr_t)p & (GW_SLAB_PAGE - 1);
	uint32_t idx = *(const uint32_t *)((uintptr_t)p - off); /* the page's first word */
	return idx << 13 | (uint32_t)(off >> 3);
}
static inline void *gw_slab_ptr(const gw_slab *s, uint32_t h)
{
	return (char *)s->dir[h >> 13] + ((size_t)(h & 8191) << 3);
}

/* gw_slab_fini unmaps every page still mapped (the objects in them, if
 * any, are gone: free them first). */
void gw_slab_fini(gw_slab *s);

#endif
