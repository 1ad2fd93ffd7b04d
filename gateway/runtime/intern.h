/* intern.h - a bounded, insert-only pool of short immutable strings (state
 * type URLs), so a million actors whose states have the same type share one
 * copy of its URL instead of holding one each (docs/design/memory.md).
 *
 * States: a string is ABSENT until gw_intern first sees it, then INTERNED
 * until the process exits (never removed, never changed). Once the pool is
 * FULL (GW_INTERN_MAX strings, or a string longer than GW_INTERN_LEN_MAX)
 * gw_intern answers NULL and the caller keeps its own copy: a host sending
 * many distinct URLs costs memory per state again, never an error, and the
 * pool stays bounded (GW_INTERN_MAX * (GW_INTERN_LEN_MAX + 1) bytes at most).
 *
 * Process-wide: one pool for the process, like a string table, because the
 * strings it holds are immutable and never freed: it holds no server state
 * (nothing in it changes a call's outcome).
 * Thread: gw_intern from any thread; lookups read the table without a lock
 * (slots are published once with a release store), inserts take a mutex. */
#ifndef GW_INTERN_H
#define GW_INTERN_H

#include <stddef.h>

#define GW_INTERN_MAX     4096 /* distinct strings, at most */
#define GW_INTERN_LEN_MAX 255  /* longest string interned, bytes */

/* gw_intern returns the pool's copy of s (len bytes, no NUL needed; static
 * storage until exit, never NULL when interned), or NULL when s is too long
 * or the pool is full (or out of memory). */
const char *gw_intern(const char *s, size_t len);

/* gw_intern_count is how many strings the pool holds (tests, diagnostics). */
size_t gw_intern_count(void);

#endif
