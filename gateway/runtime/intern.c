/* intern.c - the string pool of intern.h: open addressing over a fixed
 * table twice GW_INTERN_MAX slots wide (never resized, so a lookup never
 * races a move), linear probing, FNV-1a hashes.
 *
 * Invariants:
 *   1. A slot is NULL (never used) or points to a NUL-terminated string
 *      that never changes and is never freed.
 *   2. Every interned string sits in the probe run from its home slot with
 *      no NULL slot between: a lookup that meets NULL may stop.
 *   3. count <= GW_INTERN_MAX < SLOTS, so a probe run always ends. */
#include "intern.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS (2 * GW_INTERN_MAX) /* power of two */

static _Atomic(const char *) slots[SLOTS];
static atomic_size_t count;
static pthread_mutex_t insert_mu = PTHREAD_MUTEX_INITIALIZER;

static uint32_t hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

/* same: whether the pooled p equals s (len bytes, no NUL in them). strncmp
 * stops at p's NUL when p is shorter: never reads past it. */
static bool same(const char *p, const char *s, size_t len)
{
	return !strncmp(p, s, len) && p[len] == 0;
}

/* find: s's slot content, or NULL with *at the first empty slot of its run. */
static const char *find(const char *s, size_t len, uint32_t h, size_t *at)
{
	for (size_t i = h & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
		const char *p = atomic_load_explicit(&slots[i], memory_order_acquire);
		if (!p) {
			*at = i;
			return NULL;
		}
		if (same(p, s, len))
			return p;
	}
}

const char *gw_intern(const char *s, size_t len)
{
	if (len > GW_INTERN_LEN_MAX || memchr(s, 0, len))
		return NULL;
	uint32_t h = hash(s, len);
	size_t at;
	const char *p = find(s, len, h, &at);
	if (p)
		return p;
	if (atomic_load_explicit(&count, memory_order_relaxed) >= GW_INTERN_MAX)
		return NULL;
	pthread_mutex_lock(&insert_mu);
	p = find(s, len, h, &at); /* another thread may have added it */
	if (!p && atomic_load_explicit(&count, memory_order_relaxed) < GW_INTERN_MAX) {
		char *c = malloc(len + 1);
		if (c) {
			memcpy(c, s, len);
			c[len] = 0;
			atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
			atomic_store_explicit(&slots[at], c, memory_order_release);
			p = c;
		}
	}
	pthread_mutex_unlock(&insert_mu);
	return p;
}

size_t gw_intern_count(void)
{
	return atomic_load_explicit(&count, memory_order_relaxed);
}
