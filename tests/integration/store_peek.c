/* store_peek.c - see store_peek.h. Knows the row schema of
 * docs/design/statestore.md (table spawn_actor_state). */
#include "store_peek.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

int64_t it_store_revision(const char *db, const char *system, const char *name)
{
	sqlite3 *c = NULL;
	if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(c);
		return -1;
	}
	sqlite3_busy_timeout(c, 2000);
	int64_t rev = 0;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(
	        c, "SELECT revision FROM spawn_actor_state WHERE system = ?1 AND name = ?2", -1,
	        &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, system, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			rev = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(c);
	return rev;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool it_store_wait_revision(const char *db, const char *system, const char *name, int64_t min,
                            int64_t timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		if (it_store_revision(db, system, name) >= min)
			return true;
		if (now_ms() >= end)
			return false;
		/* The store has no change notification: re-check the
		 * condition, bounded by the timeout. */
		poll(NULL, 0, 20);
	}
}

bool it_store_tamper(const char *db, const char *system, const char *name)
{
	sqlite3 *c = NULL;
	if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(c);
		return false;
	}
	sqlite3_busy_timeout(c, 2000);
	bool done = false;
	void *copy = NULL;
	int n = 0;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(c,
	                       "SELECT data FROM spawn_actor_state WHERE system = ?1 AND name = ?2",
	                       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, system, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && (n = sqlite3_column_bytes(st, 0)) > 0 &&
		    (copy = malloc((size_t)n)))
			memcpy(copy, sqlite3_column_blob(st, 0), (size_t)n);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (copy) {
		((unsigned char *)copy)[n / 2] ^= 0x01;
		if (sqlite3_prepare_v2(c,
		                       "UPDATE spawn_actor_state SET data = ?3 "
		                       "WHERE system = ?1 AND name = ?2",
		                       -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, system, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
			sqlite3_bind_blob(st, 3, copy, n, SQLITE_STATIC);
			done = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(c) == 1;
		}
		sqlite3_finalize(st);
	}
	free(copy);
	sqlite3_close(c);
	return done;
}

void *it_store_lock(const char *db, int64_t timeout_ms)
{
	sqlite3 *c = NULL;
	if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(c);
		return NULL;
	}
	sqlite3_busy_timeout(c, (int)timeout_ms);
	if (sqlite3_exec(c, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(c);
		return NULL;
	}
	return c;
}

void it_store_unlock(void *lock)
{
	sqlite3 *c = lock;
	if (!c)
		return;
	sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(c);
}
