/* store_peek.h - looks into a gateway's SQLite statestore from the test,
 * through its own sqlite3 connection (WAL: readers never block the
 * gateway). Rows are sealed, so this sees revisions, not state; it can
 * also damage a row, to test what the gateway does with one.
 */
#ifndef SPAWN_TESTS_IT_STORE_PEEK_H
#define SPAWN_TESTS_IT_STORE_PEEK_H

#include <stdbool.h>
#include <stdint.h>

/* it_store_revision returns the stored revision of actor (system, name)
 * in the database file db: 0 when it has no row (or no table yet), -1 when
 * the file cannot be read. */
int64_t it_store_revision(const char *db, const char *system, const char *name);

/* it_store_wait_revision re-checks every 20 ms until the revision is at
 * least min; false after timeout_ms. */
bool it_store_wait_revision(const char *db, const char *system, const char *name, int64_t min,
                            int64_t timeout_ms);

/* it_store_tamper flips one bit of the actor's sealed data. Returns true
 * when a row was changed. Only while no gateway has the file open. */
bool it_store_tamper(const char *db, const char *system, const char *name);

/* it_store_lock takes the database's write lock from a second connection
 * (BEGIN IMMEDIATE) and keeps it until it_store_unlock: the gateway's
 * writes wait in its busy handler meanwhile (up to 5 s in the SQLite
 * driver, then they fail). Reads are not blocked (WAL). Returns the
 * connection (pass it to it_store_unlock), or NULL when the lock could not
 * be taken within timeout_ms. */
void *it_store_lock(const char *db, int64_t timeout_ms);
void it_store_unlock(void *lock);

#endif
