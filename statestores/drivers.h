/* drivers.h - the statestore drivers this tree can build, and the few
 * helpers store.c shares with them. Only store.c (the registry) and the
 * drivers include this; the runtime uses store.h.
 *
 * Which drivers are linked is a build choice (SPAWN_STORE_*); store.c is
 * the only file that asks (#ifdef GW_HAVE_*). Declaring a table that is not
 * built is harmless as long as nothing references it.
 */
#ifndef GW_STORE_DRIVERS_H
#define GW_STORE_DRIVERS_H

#include "store.h"

/* sqlite/sqlite.c: sqlite:///abs.db, sqlite://rel.db, sqlite::memory: */
extern const gw_store_ops gw_sqlite_ops;

/* postgres/postgres.c: postgres://user:password@host:port/db?sslmode=...,
 * one table per scheme libpq accepts (postgres, postgresql). */
extern const gw_store_ops gw_postgres_ops;
extern const gw_store_ops gw_postgresql_ops;

/* mariadb/mariadb.c: mariadb://user:password@host:port/db, one table per
 * scheme (mariadb, mysql). */
extern const gw_store_ops gw_mariadb_ops;
extern const gw_store_ops gw_mysql_ops;

/* gwi_store_errf reports why an open failed: into opts->err when the
 * caller gave a buffer, else to the log (GW_ERROR). opts may be NULL.
 * Drivers call it from their open() so the reason reaches the operator.
 * Thread: any. */
void gwi_store_errf(const gw_store_opts *opts, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* GWI_STORE_MAX_INT is the largest revision or epoch a driver must store:
 * INT64_MAX, since SQL integers are signed 64-bit. store.c rejects larger
 * values with GW_EINVAL before a driver sees them. */
#define GWI_STORE_MAX_INT ((uint64_t)INT64_MAX)

#endif
