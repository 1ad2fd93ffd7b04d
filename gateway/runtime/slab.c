/* slab.c - see slab.h. */
#include "slab.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif
#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
/* LeakSanitizer scans the heap, not our mappings: a pointer held only by
 * an actor in a slab (its state blob) would look leaked (libFuzzer's
 * per-input leak check found it). Each mapping is a root region. */
#define ROOT_ADD(p, n) __lsan_register_root_region((p), (n))
#define ROOT_DEL(p, n) __lsan_unregister_root_region((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define ROOT_ADD(p, n) ((void)(p), (void)(n))
#define ROOT_DEL(p, n) ((void)(p), (void)(n))
#endif

/* At the start of every page (and of every large mapping). */
struct gw_slab_page {
	uint32_t idx;              /* first (gw_slab_handle reads it): its index in slab->dir */
	gw_slab *slab;             /* borrowed: the slab it belongs to */
	gw_slab_page *prev, *next; /* on slab->partial[cls] while PARTIAL */
	void *free;                /* free slots, linked through their first word */
	size_t map_len;            /* bytes mapped (a large mapping: more than a page) */
	uint32_t bump;             /* offset of the first never-used slot */
	uint32_t live;             /* objects in it */
	uint32_t size;             /* slot size; 0 = a large mapping of one object */
	uint32_t cls;              /* size / 8 */
	bool listed;               /* on slab->partial[cls] */
};

#define HDR (((sizeof(gw_slab_page) + 15) / 16) * 16)

/* map_aligned maps len bytes (a multiple of the system page) aligned to
 * GW_SLAB_PAGE: one mapping of len + GW_SLAB_PAGE, trimmed. */
static void *map_aligned(size_t len)
{
	size_t over = len + GW_SLAB_PAGE;
	char *m = mmap(NULL, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uintptr_t a = ((uintptr_t)m + GW_SLAB_PAGE - 1) & ~(uintptr_t)(GW_SLAB_PAGE - 1);
	size_t head = a - (uintptr_t)m;
	if (head)
		munmap(m, head);
	size_t tail = over - head - len;
	if (tail)
		munmap((char *)a + len, tail);
	ROOT_ADD((void *)a, len);
	return (void *)a;
}

/* unmap gives a mapping back (its shadow cleared first under ASan, so a
 * later mapping at the same address starts clean). */
static void unmap(gw_slab_page *pg)
{
	size_t len = pg->map_len;
	UNPOISON(pg, len);
	ROOT_DEL(pg, len);
	munmap(pg, len);
}

/* dir_add gives pg an index in s's directory (false: out of memory, or
 * GW_SLAB_MAX_PAGES reached). */
static bool dir_add(gw_slab *s, gw_slab_page *pg)
{
	if (!s->n_free) {
		if (s->ndir >= GW_SLAB_MAX_PAGES)
			return false;
		uint32_t n = s->ndir ? s->ndir * 2 : 64;
		if (n > GW_SLAB_MAX_PAGES)
			n = GW_SLAB_MAX_PAGES;
		gw_slab_page **d = realloc(s->dir, n * sizeof *d);
		if (!d)
			return false;
		s->dir = d;
		uint32_t *f = realloc(s->dir_free, n * sizeof *f);
		if (!f)
			return false;
		s->dir_free = f;
		for (uint32_t k = n; k > s->ndir; k--) { /* lowest index on top */
			s->dir[k - 1] = NULL;
			s->dir_free[s->n_free++] = k - 1;
		}
		s->ndir = n;
	}
	uint32_t i = s->dir_free[--s->n_free];
	s->dir[i] = pg;
	pg->idx = i;
	return true;
}

/* drop unmaps pg (no object left in it) and frees its index. */
static void drop(gw_slab *s, gw_slab_page *pg)
{
	s->dir[pg->idx] = NULL;
	s->dir_free[s->n_free++] = pg->idx;
	s->pages--;
	unmap(pg);
}

/* page_new maps a page (or a large mapping of len bytes) for s. */
static gw_slab_page *page_new(gw_slab *s, size_t len)
{
	gw_slab_page *pg = map_aligned(len);
	if (!pg)
		return NULL;
	if (!dir_add(s, pg)) {
		ROOT_DEL(pg, len);
		munmap(pg, len);
		return NULL;
	}
	pg->slab = s;
	pg->map_len = len;
	s->pages++;
	return pg;
}

static gw_slab_page *page_of(const void *p)
{
	return (gw_slab_page *)((uintptr_t)p & ~(uintptr_t)(GW_SLAB_PAGE - 1));
}

static void list_add(gw_slab *s, gw_slab_page *pg)
{
	pg->prev = NULL;
	pg->next = s->partial[pg->cls];
	if (pg->next)
		pg->next->prev = pg;
	s->partial[pg->cls] = pg;
	pg->listed = true;
}

static void list_del(gw_slab *s, gw_slab_page *pg)
{
	if (pg->prev)
		pg->prev->next = pg->next;
	else
		s->partial[pg->cls] = pg->next;
	if (pg->next)
		pg->next->prev = pg->prev;
	pg->prev = pg->next = NULL;
	pg->listed = false;
}

static bool page_full(const gw_slab_page *pg)
{
	return !pg->free && pg->bump + pg->size > GW_SLAB_PAGE;
}

void gw_slab_init(gw_slab *s)
{
	memset(s, 0, sizeof *s);
}

static void *alloc_large(gw_slab *s, size_t n)
{
	size_t len = (HDR + n + 4095) & ~(size_t)4095;
	if (len < n)
		return NULL;
	gw_slab_page *pg = page_new(s, len);
	if (!pg)
		return NULL;
	pg->live = 1;
	s->objects++;
	return (char *)pg + HDR; /* zero: fresh anonymous memory */
}

void *gw_slab_alloc(gw_slab *s, size_t n)
{
	if (n == 0 || n > GW_SLAB_MAX)
		return n ? alloc_large(s, n) : NULL;
	uint32_t cls = (uint32_t)((n + 7) / 8), size = cls * 8;
	gw_slab_page *pg = s->partial[cls];
	if (!pg) {
		pg = page_new(s, GW_SLAB_PAGE);
		if (!pg)
			return NULL;
		pg->bump = (uint32_t)HDR;
		pg->size = size;
		pg->cls = cls;
		POISON((char *)pg + HDR, GW_SLAB_PAGE - HDR);
		list_add(s, pg);
	}
	char *slot;
	if (pg->free) {
		slot = pg->free;
		UNPOISON(slot, size);
		pg->free = *(void **)slot;
		memset(slot, 0, size);
	} else {
		slot = (char *)pg + pg->bump; /* never used: still zero */
		pg->bump += size;
		UNPOISON(slot, size);
	}
	pg->live++;
	s->objects++;
	if (page_full(pg))
		list_del(s, pg);
	return slot;
}

void gw_slab_free(void *p)
{
	if (!p)
		return;
	gw_slab_page *pg = page_of(p);
	gw_slab *s = pg->slab;
	s->objects--;
	if (pg->size == 0) {
		drop(s, pg);
		return;
	}
	*(void **)p = pg->free;
	pg->free = p;
	POISON(p, pg->size);
	pg->live--;
	if (!pg->listed)
		list_add(s, pg);
	if (pg->live == 0 && (pg->prev || pg->next)) {
		list_del(s, pg);
		drop(s, pg);
	}
}

gw_slab *gw_slab_of(const void *p)
{
	return page_of(p)->slab;
}

void gw_slab_fini(gw_slab *s)
{
	for (size_t c = 0; c < GW_SLAB_CLASSES; c++)
		while (s->partial[c]) {
			gw_slab_page *pg = s->partial[c];
			list_del(s, pg);
			drop(s, pg);
		}
	free(s->dir);
	free(s->dir_free);
	s->dir = NULL;
	s->dir_free = NULL;
	s->ndir = s->n_free = 0;
}
