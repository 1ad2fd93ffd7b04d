/* conformance_raw.c - raw access to each backend of the conformance suite
 * (see conformance.h): fresh namespaces, and the tamper and inspection
 * hooks, each over a connection of its own.
 */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef GW_TEST_SQLITE
#include <sqlite3.h>
#endif
#ifdef GW_TEST_POSTGRES
#include <libpq-fe.h>
#endif
#ifdef GW_TEST_MARIADB
#include <mysql.h>
#endif

/* ---- namespaces ---------------------------------------------------------------- */

/* Namespaces made by the current test (a forked child), dropped by the
 * teardown fixture. */
typedef struct ns_made {
	const target *t;
	char name[64];
} ns_made;
static ns_made made[16];
static int nmade;

void conf_ns_teardown(void)
{
	for (int i = 0; i < nmade; i++)
		if (made[i].t->ns_drop)
			made[i].t->ns_drop(made[i].t, made[i].name);
	nmade = 0;
}

#if defined(GW_TEST_POSTGRES) || defined(GW_TEST_MARIADB)
static void ns_record(const target *t, const char *name)
{
	if (nmade < (int)(sizeof made / sizeof made[0])) {
		made[nmade].t = t;
		snprintf(made[nmade].name, sizeof made[nmade].name, "%s", name);
		nmade++;
	}
}

/* ns_name makes a namespace name unique to this process and call. */
static void ns_name(char *buf, size_t cap, const char *prefix)
{
	static unsigned n;
	snprintf(buf, cap, "%.40s_%ld_%u", prefix, (long)getpid(), n++);
}

#endif

#ifdef GW_TEST_POSTGRES
/* url_with adds a query parameter (already encoded) to url. */
static void url_with(char *out, size_t cap, const char *url, const char *param)
{
	snprintf(out, cap, "%s%s%s", url, strchr(url, '?') ? "&" : "?", param);
}
#endif

/* ---- sqlite raw access -------------------------------------------------- */

#ifdef GW_TEST_SQLITE
/* sqlite_raw runs sql on the test's database file through a connection of
 * its own, binding the texts in p (n of them) to ?1..?n; out (may be NULL)
 * gets the first row's columns as integers. */
static bool sqlite_raw(const ctx *c, const char *sql, const char *const *p, int n, long long *out,
                       int nout)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open_v2(c->db, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, 5000);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	for (int i = 0; rc == SQLITE_OK && i < n; i++)
		rc = sqlite3_bind_text(st, i + 1, p[i], -1, SQLITE_STATIC);
	if (rc == SQLITE_OK) {
		int s = sqlite3_step(st);
		for (int i = 0; i < nout; i++)
			out[i] = s == SQLITE_ROW ? sqlite3_column_int64(st, i) : 0;
		rc = s == SQLITE_DONE || s == SQLITE_ROW ? SQLITE_OK : SQLITE_ERROR;
	}
	if (rc != SQLITE_OK)
		fprintf(stderr, "raw sql failed: %s: %s\n", sqlite3_errmsg(db), sql);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_OK;
}

/* sqlite_raw_exec runs several statements without parameters. */
static bool sqlite_raw_exec(const ctx *c, const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(c->db, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, 5000);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		fprintf(stderr, "raw sql failed: %s: %s\n", sqlite3_errmsg(db), sql);
	sqlite3_close(db);
	return rc == SQLITE_OK;
}

static bool sqlite_raw_copy(const ctx *c, const char *fsys, const char *fname, const char *tsys,
                            const char *tname)
{
	const char *p[] = {tsys, tname, fsys, fname};
	return sqlite_raw(c,
	                  "INSERT INTO spawn_actor_state SELECT ?1, ?2, revision, epoch, key_id, "
	                  "nonce, data, type_url, updated_at, effects FROM spawn_actor_state "
	                  "WHERE system = ?3 AND name = ?4 "
	                  "ON CONFLICT(system, name) DO UPDATE SET key_id = excluded.key_id, "
	                  "nonce = excluded.nonce, data = excluded.data",
	                  p, 4, NULL, 0);
}

static bool sqlite_raw_truncate(const ctx *c, const char *sys, const char *name, int len)
{
	char n[16];
	snprintf(n, sizeof n, "%d", len);
	const char *p[] = {sys, name, n};
	return sqlite_raw(
	    c,
	    "UPDATE spawn_actor_state SET data = substr(data, 1, CAST(?3 AS INTEGER)) "
	    "WHERE system = ?1 AND name = ?2",
	    p, 3, NULL, 0);
}

static bool sqlite_raw_replay(const ctx *c, const char *sys, const char *name, long long rev)
{
	char r[24];
	snprintf(r, sizeof r, "%lld", rev);
	const char *p[] = {sys, name, r};
	return sqlite_raw(c,
	                  "UPDATE spawn_actor_state SET "
	                  "key_id = (SELECT key_id FROM spawn_actor_history h WHERE h.system = ?1 "
	                  "AND h.name = ?2 AND h.revision = CAST(?3 AS INTEGER)), "
	                  "nonce = (SELECT nonce FROM spawn_actor_history h WHERE h.system = ?1 "
	                  "AND h.name = ?2 AND h.revision = CAST(?3 AS INTEGER)), "
	                  "data = (SELECT data FROM spawn_actor_history h WHERE h.system = ?1 "
	                  "AND h.name = ?2 AND h.revision = CAST(?3 AS INTEGER)) "
	                  "WHERE system = ?1 AND name = ?2",
	                  p, 3, NULL, 0);
}

/* unhex decodes hex (lower case) into out (caller storage of strlen/2). */
static size_t unhex(const char *hex, unsigned char *out)
{
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
	return n;
}

static bool sqlite_raw_set_sealed(const ctx *c, const char *sys, const char *name,
                                  const char *nonce_hex, const char *data_hex)
{
	unsigned char nonce[64], *data = malloc(strlen(data_hex) / 2 + 1);
	size_t nn = unhex(nonce_hex, nonce), dn = unhex(data_hex, data);
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open_v2(c->db, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, 5000);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db,
		                        "UPDATE spawn_actor_state SET nonce = ?3, data = ?4 "
		                        "WHERE system = ?1 AND name = ?2",
		                        -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, sys, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, nonce, (int)nn, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, data, (int)dn, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	if (rc != SQLITE_OK)
		fprintf(stderr, "raw set sealed failed: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(data);
	return rc == SQLITE_OK;
}

static bool sqlite_raw_fail_on(const ctx *c, const char *name)
{
	/* A trigger cannot take parameters: name is a test constant. */
	char sql[256];
	snprintf(sql, sizeof sql,
	         "CREATE TRIGGER fail_%s BEFORE INSERT ON spawn_actor_state "
	         "WHEN NEW.name = '%s' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
	         name, name);
	return sqlite_raw(c, sql, NULL, 0, NULL, 0);
}

static bool sqlite_raw_set_version(const ctx *c, const char *v)
{
	const char *p[] = {v};
	return sqlite_raw(c,
	                  "UPDATE spawn_meta SET value = CAST(?1 AS INTEGER) "
	                  "WHERE name = 'schema_version'",
	                  p, 1, NULL, 0);
}

static bool sqlite_raw_history(const ctx *c, const char *sys, const char *name, long long out[3])
{
	const char *p[] = {sys, name};
	return sqlite_raw(c,
	                  "SELECT count(*), coalesce(min(revision), 0), coalesce(max(revision), 0) "
	                  "FROM spawn_actor_history WHERE system = ?1 AND name = ?2",
	                  p, 2, out, 3);
}

static bool sqlite_raw_actor_rows(const ctx *c, const char *sys, const char *name, long long out[5])
{
	const char *p[] = {sys, name};
	return sqlite_raw(
	    c,
	    "SELECT (SELECT count(*) FROM spawn_actor_state WHERE system = ?1 AND name = ?2), "
	    "(SELECT count(*) FROM spawn_actor_history WHERE system = ?1 AND name = ?2), "
	    "(SELECT count(*) FROM spawn_instance WHERE system = ?1 AND name = ?2), "
	    "(SELECT count(*) FROM spawn_actor_epoch WHERE system = ?1 AND name = ?2), "
	    "(SELECT count(*) FROM spawn_actor_state WHERE system = ?1 AND name = ?2 "
	    " AND substr(data, 1, 4) = X'A7475703') + "
	    "(SELECT count(*) FROM spawn_actor_history WHERE system = ?1 AND name = ?2 "
	    " AND substr(data, 1, 4) = X'A7475703')",
	    p, 2, out, 5);
}

static bool sqlite_raw_count_key(const ctx *c, const char *key_id, long long *n)
{
	const char *p[] = {key_id};
	return sqlite_raw(c,
	                  "SELECT (SELECT count(*) FROM spawn_actor_state WHERE key_id = ?1) + "
	                  "(SELECT count(*) FROM spawn_actor_history WHERE key_id = ?1)",
	                  p, 1, n, 1);
}

/* What schema version 4 added (statestores/sqlite/sqlite.c, step 3 -> 4). */
#define SQLITE_DROP_V4                                                                             \
	"DROP INDEX spawn_actor_state_effects; "                                                   \
	"ALTER TABLE spawn_actor_state DROP COLUMN effects; "

static bool sqlite_raw_downgrade_v1(const ctx *c)
{
	return sqlite_raw_exec(c, SQLITE_DROP_V4
	                       "DROP TABLE spawn_actor_epoch; DROP TABLE spawn_actor_history; "
	                       "UPDATE spawn_meta SET value = 1 WHERE name = 'schema_version'; "
	                       "UPDATE spawn_actor_state SET epoch = 5");
}

static bool sqlite_raw_sched_fill(const ctx *c, const char *prefix, long n, long long first_due)
{
	char sql[768];
	snprintf(
	    sql, sizeof sql,
	    "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < %ld) "
	    "INSERT INTO spawn_schedule(id, due_ms, owner, lease_until, key_id, nonce, data) "
	    "SELECT printf('%s%%07d', i), %lld + i, NULL, NULL, 't1', zeroblob(12), "
	    "randomblob(48) FROM s",
	    n, prefix, first_due);
	return sqlite_raw(c, sql, NULL, 0, NULL, 0);
}

static bool sqlite_raw_sched_contains(const ctx *c, const char *needle, long long *n)
{
	const char *p[] = {needle};
	return sqlite_raw(c,
	                  "SELECT count(*) FROM spawn_schedule "
	                  "WHERE instr(data, CAST(?1 AS BLOB)) > 0",
	                  p, 1, n, 1);
}

/* The driver's claim and next-due queries (statestores/sqlite/sqlite.c),
 * without INDEXED BY: the plan SQLite picks on its own must be the index. */
static const char *const sqlite_sched_queries[] = {
    "SELECT id, due_ms, key_id, nonce, data FROM spawn_schedule "
    "WHERE owner IS NULL AND due_ms <= 1700000000000 ORDER BY due_ms, id LIMIT 100",
    "SELECT id, due_ms, key_id, nonce, data FROM spawn_schedule "
    "WHERE owner IS NOT NULL AND lease_until <= 1700000000000 ORDER BY due_ms, id LIMIT 100",
    "SELECT due_ms FROM spawn_schedule WHERE owner IS NULL ORDER BY due_ms LIMIT 1",
    "SELECT lease_until FROM spawn_schedule WHERE owner IS NOT NULL "
    "AND lease_until < 9223372036854775807 ORDER BY lease_until LIMIT 1",
};

static bool sqlite_raw_sched_indexed(const ctx *c, char *why, size_t cap)
{
	sqlite3 *db = NULL;
	bool ok = sqlite3_open_v2(c->db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK;
	why[0] = '\0';
	for (size_t q = 0; ok && q < sizeof sqlite_sched_queries / sizeof *sqlite_sched_queries;
	     q++) {
		char sql[512];
		sqlite3_stmt *st = NULL;
		snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", sqlite_sched_queries[q]);
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
			snprintf(why, cap, "%s", sqlite3_errmsg(db));
			ok = false;
			break;
		}
		bool indexed = false;
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(st, 3);
			size_t used = strlen(why);
			snprintf(why + used, cap - used, "[%s] ", d ? d : "");
			if (d && strstr(d, "spawn_schedule") &&
			    strstr(d, "USING INDEX spawn_schedule_"))
				indexed = true;
			if (d && strstr(d, "SCAN spawn_schedule") && !strstr(d, "USING INDEX"))
				indexed = false, ok = false;
		}
		sqlite3_finalize(st);
		ok = ok && indexed;
	}
	sqlite3_close(db);
	return ok;
}

static bool sqlite_raw_downgrade_v2(const ctx *c)
{
	return sqlite_raw_exec(c, SQLITE_DROP_V4
	                       "DROP TABLE spawn_instance; DROP TABLE spawn_schedule; "
	                       "UPDATE spawn_meta SET value = 2 WHERE name = 'schema_version'");
}

static bool sqlite_raw_downgrade_v3(const ctx *c)
{
	return sqlite_raw_exec(c, SQLITE_DROP_V4
	                       "UPDATE spawn_meta SET value = 3 WHERE name = 'schema_version'");
}

/* The driver's effects listing (statestores/sqlite/sqlite.c). */
static bool sqlite_raw_effects_indexed(const ctx *c, char *why, size_t cap)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	bool ok =
	    sqlite3_open_v2(c->db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db,
	                       "EXPLAIN QUERY PLAN SELECT system, name FROM spawn_actor_state "
	                       "INDEXED BY spawn_actor_state_effects "
	                       "WHERE effects <> 0 AND (system, name) > ('a', 'b') "
	                       "ORDER BY system, name LIMIT 10",
	                       -1, &st, NULL) == SQLITE_OK;
	bool indexed = false;
	snprintf(why, cap, "%s", ok ? "" : sqlite3_errmsg(db));
	while (ok && sqlite3_step(st) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);
		size_t used = strlen(why);
		snprintf(why + used, cap - used, "[%s] ", d ? d : "");
		if (d && strstr(d, "SEARCH spawn_actor_state USING") &&
		    strstr(d, "INDEX spawn_actor_state_effects"))
			indexed = true;
		if (d && strstr(d, "TEMP B-TREE")) /* a sort: not in index order */
			ok = false;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ok && indexed;
}
#endif

/* ---- postgres raw access ---------------------------------------------------- */

#ifdef GW_TEST_POSTGRES
/* pg_raw runs sql over a connection of its own to url, with text
 * parameters p[0..n); out (may be NULL) gets the first row's columns as
 * integers. */
static void pg_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* NOTICEs of DROP ... CASCADE are expected */
}

static bool pg_raw(const char *url, const char *sql, const char *const *p, int n, long long *out,
                   int nout)
{
	PGconn *pc = PQconnectdb(url);
	bool ok = PQstatus(pc) == CONNECTION_OK;
	PQsetNoticeProcessor(pc, pg_quiet, NULL);
	if (!ok) {
		fprintf(stderr, "raw connect failed: %s", PQerrorMessage(pc));
	} else {
		PGresult *r =
		    n ? PQexecParams(pc, sql, n, NULL, p, NULL, NULL, 0) : PQexec(pc, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
		if (!ok)
			fprintf(stderr, "raw sql failed: %s: %s\n", PQerrorMessage(pc), sql);
		for (int i = 0; ok && i < nout; i++)
			out[i] = PQntuples(r) > 0 ? atoll(PQgetvalue(r, 0, i)) : 0;
		PQclear(r);
	}
	PQfinish(pc);
	return ok;
}

static bool pg_ns_new(const target *t, char *url, size_t cap)
{
	char name[64], sql[128], param[128];
	ns_name(name, sizeof name, "spawn_t");
	snprintf(sql, sizeof sql, "CREATE SCHEMA %s", name);
	if (!pg_raw(t->url, sql, NULL, 0, NULL, 0))
		return false;
	ns_record(t, name);
	snprintf(param, sizeof param, "options=-csearch_path%%3D%s", name);
	url_with(url, cap, t->url, param);
	return true;
}

static void pg_ns_drop(const target *t, const char *name)
{
	char sql[128];
	snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", name);
	pg_raw(t->url, sql, NULL, 0, NULL, 0);
}

static bool pg_raw_copy(const ctx *c, const char *fsys, const char *fname, const char *tsys,
                        const char *tname)
{
	const char *p[] = {tsys, tname, fsys, fname};
	return pg_raw(c->url,
	              "INSERT INTO spawn_actor_state SELECT $1, $2, revision, epoch, key_id, "
	              "nonce, data, type_url, updated_at, effects FROM spawn_actor_state "
	              "WHERE system = $3 AND name = $4 "
	              "ON CONFLICT(system, name) DO UPDATE SET key_id = excluded.key_id, "
	              "nonce = excluded.nonce, data = excluded.data",
	              p, 4, NULL, 0);
}

static bool pg_raw_truncate(const ctx *c, const char *sys, const char *name, int len)
{
	char n[16];
	snprintf(n, sizeof n, "%d", len);
	const char *p[] = {sys, name, n};
	return pg_raw(c->url,
	              "UPDATE spawn_actor_state SET data = substring(data from 1 for $3::int) "
	              "WHERE system = $1 AND name = $2",
	              p, 3, NULL, 0);
}

static bool pg_raw_replay(const ctx *c, const char *sys, const char *name, long long rev)
{
	char r[24];
	snprintf(r, sizeof r, "%lld", rev);
	const char *p[] = {sys, name, r};
	return pg_raw(c->url,
	              "UPDATE spawn_actor_state s SET key_id = h.key_id, nonce = h.nonce, "
	              "data = h.data FROM spawn_actor_history h WHERE s.system = $1 AND "
	              "s.name = $2 AND h.system = $1 AND h.name = $2 AND h.revision = $3::bigint",
	              p, 3, NULL, 0);
}

static bool pg_raw_set_sealed(const ctx *c, const char *sys, const char *name,
                              const char *nonce_hex, const char *data_hex)
{
	const char *p[] = {sys, name, nonce_hex, data_hex};
	return pg_raw(c->url,
	              "UPDATE spawn_actor_state SET nonce = decode($3, 'hex'), "
	              "data = decode($4, 'hex') WHERE system = $1 AND name = $2",
	              p, 4, NULL, 0);
}

static bool pg_raw_fail_on(const ctx *c, const char *name)
{
	/* name is a test constant: no quoting needed. */
	char sql[512];
	snprintf(sql, sizeof sql,
	         "CREATE FUNCTION fail_%s() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
	         "IF NEW.name = '%s' THEN RAISE EXCEPTION 'injected failure'; END IF; "
	         "RETURN NEW; END $f$; "
	         "CREATE TRIGGER fail_%s BEFORE INSERT ON spawn_actor_state "
	         "FOR EACH ROW EXECUTE FUNCTION fail_%s()",
	         name, name, name, name);
	return pg_raw(c->url, sql, NULL, 0, NULL, 0);
}

static bool pg_raw_set_version(const ctx *c, const char *v)
{
	const char *p[] = {v};
	return pg_raw(c->url,
	              "UPDATE spawn_meta SET value = convert_to($1, 'UTF8') "
	              "WHERE name = 'schema_version'",
	              p, 1, NULL, 0);
}

static bool pg_raw_history(const ctx *c, const char *sys, const char *name, long long out[3])
{
	const char *p[] = {sys, name};
	return pg_raw(c->url,
	              "SELECT count(*), coalesce(min(revision), 0), coalesce(max(revision), 0) "
	              "FROM spawn_actor_history WHERE system = $1 AND name = $2",
	              p, 2, out, 3);
}

static bool pg_raw_actor_rows(const ctx *c, const char *sys, const char *name, long long out[5])
{
	const char *p[] = {sys, name};
	return pg_raw(
	    c->url,
	    "SELECT (SELECT count(*) FROM spawn_actor_state WHERE system = $1 AND name = $2), "
	    "(SELECT count(*) FROM spawn_actor_history WHERE system = $1 AND name = $2), "
	    "(SELECT count(*) FROM spawn_instance WHERE system = $1 AND name = $2), "
	    "(SELECT count(*) FROM spawn_actor_epoch WHERE system = $1 AND name = $2), "
	    "(SELECT count(*) FROM spawn_actor_state WHERE system = $1 AND name = $2 "
	    " AND substring(data from 1 for 4) = decode('a7475703', 'hex')) + "
	    "(SELECT count(*) FROM spawn_actor_history WHERE system = $1 AND name = $2 "
	    " AND substring(data from 1 for 4) = decode('a7475703', 'hex'))",
	    p, 2, out, 5);
}

static bool pg_raw_count_key(const ctx *c, const char *key_id, long long *n)
{
	const char *p[] = {key_id};
	return pg_raw(c->url,
	              "SELECT (SELECT count(*) FROM spawn_actor_state WHERE key_id = $1) + "
	              "(SELECT count(*) FROM spawn_actor_history WHERE key_id = $1)",
	              p, 1, n, 1);
}

/* What schema version 4 added (statestores/postgres/postgres.c). */
#define PG_DROP_V4                                                                                 \
	"DROP INDEX spawn_actor_state_effects; "                                                   \
	"ALTER TABLE spawn_actor_state DROP COLUMN effects; "

static bool pg_raw_downgrade_v1(const ctx *c)
{
	return pg_raw(c->url,
	              PG_DROP_V4 "DROP TABLE spawn_actor_epoch; "
	                         "UPDATE spawn_meta SET value = convert_to('1', 'UTF8') "
	                         "WHERE name = 'schema_version'; "
	                         "UPDATE spawn_actor_state SET epoch = 5",
	              NULL, 0, NULL, 0);
}

static bool pg_raw_sched_fill(const ctx *c, const char *prefix, long n, long long first_due)
{
	char sql[768];
	snprintf(sql, sizeof sql,
	         "INSERT INTO spawn_schedule(id, due_ms, owner, lease_until, key_id, nonce, data) "
	         "SELECT '%s' || lpad(i::text, 7, '0'), %lld + i, NULL, NULL, 't1', "
	         "'\\x000000000000000000000000'::bytea, "
	         "decode(md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text), 'hex') "
	         "FROM generate_series(0, %ld - 1) i",
	         prefix, first_due, n);
	return pg_raw(c->url, sql, NULL, 0, NULL, 0);
}

static bool pg_raw_sched_contains(const ctx *c, const char *needle, long long *n)
{
	const char *p[] = {needle};
	return pg_raw(c->url,
	              "SELECT count(*) FROM spawn_schedule "
	              "WHERE position(convert_to($1, 'UTF8') in data) > 0",
	              p, 1, n, 1);
}

/* The driver's claim and next-due queries (statestores/postgres/
 * postgres_conn.c), as EXPLAIN sees them. */
static const char *const pg_sched_queries[] = {
    "SELECT id, due_ms, key_id, nonce, data FROM spawn_schedule "
    "WHERE owner IS NULL AND due_ms <= 1700000000000 ORDER BY due_ms, id LIMIT 100 "
    "FOR UPDATE SKIP LOCKED",
    "SELECT id, due_ms, key_id, nonce, data FROM spawn_schedule "
    "WHERE owner IS NOT NULL AND lease_until <= 1700000000000 ORDER BY due_ms, id LIMIT 100 "
    "FOR UPDATE SKIP LOCKED",
    "SELECT (SELECT due_ms FROM spawn_schedule WHERE owner IS NULL ORDER BY due_ms LIMIT 1), "
    "(SELECT lease_until FROM spawn_schedule WHERE owner IS NOT NULL "
    "AND lease_until < 9223372036854775807 ORDER BY lease_until LIMIT 1)",
};

static bool pg_raw_sched_indexed(const ctx *c, char *why, size_t cap)
{
	PGconn *pc = PQconnectdb(c->url);
	bool ok = PQstatus(pc) == CONNECTION_OK;
	why[0] = '\0';
	for (size_t q = 0; ok && q < sizeof pg_sched_queries / sizeof *pg_sched_queries; q++) {
		char sql[768];
		snprintf(sql, sizeof sql, "EXPLAIN %s", pg_sched_queries[q]);
		PGresult *r = PQexec(pc, sql);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(why, cap, "%s", PQerrorMessage(pc));
			ok = false;
		}
		bool indexed = false;
		for (int i = 0; ok && i < PQntuples(r); i++) {
			const char *line = PQgetvalue(r, i, 0);
			size_t used = strlen(why);
			snprintf(why + used, cap - used, "[%s] ", line);
			if (strstr(line, "spawn_schedule_due") ||
			    strstr(line, "spawn_schedule_lease"))
				indexed = true;
			if (strstr(line, "Seq Scan"))
				ok = false;
		}
		PQclear(r);
		ok = ok && indexed;
	}
	PQfinish(pc);
	return ok;
}

static bool pg_raw_downgrade_v2(const ctx *c)
{
	return pg_raw(c->url,
	              PG_DROP_V4 "DROP TABLE spawn_instance; DROP TABLE spawn_schedule; "
	                         "UPDATE spawn_meta SET value = convert_to('2', 'UTF8') "
	                         "WHERE name = 'schema_version'",
	              NULL, 0, NULL, 0);
}

static bool pg_raw_downgrade_v3(const ctx *c)
{
	return pg_raw(c->url,
	              PG_DROP_V4 "UPDATE spawn_meta SET value = convert_to('3', 'UTF8') "
	                         "WHERE name = 'schema_version'",
	              NULL, 0, NULL, 0);
}

/* The driver's effects listing (statestores/postgres/postgres_conn.c),
 * planned with fresh statistics (as autovacuum would gather them). */
static bool pg_raw_effects_indexed(const ctx *c, char *why, size_t cap)
{
	PGconn *pc = PQconnectdb(c->url);
	PGresult *r = PQstatus(pc) == CONNECTION_OK
	                  ? PQexec(pc, "ANALYZE spawn_actor_state; EXPLAIN SELECT system, name "
	                               "FROM spawn_actor_state "
	                               "WHERE effects <> 0 AND (system, name) > ('a', 'b') "
	                               "ORDER BY system, name LIMIT 100")
	                  : NULL;
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK, indexed = false;
	snprintf(why, cap, "%s", ok ? "" : PQerrorMessage(pc));
	for (int i = 0; ok && i < PQntuples(r); i++) {
		const char *line = PQgetvalue(r, i, 0);
		size_t used = strlen(why);
		snprintf(why + used, cap - used, "[%s] ", line);
		if (strstr(line, "spawn_actor_state_effects"))
			indexed = true;
		if (strstr(line, "Seq Scan"))
			ok = false;
	}
	PQclear(r);
	PQfinish(pc);
	return ok && indexed;
}
#endif

/* ---- mariadb raw access ------------------------------------------------------ */

#ifdef GW_TEST_MARIADB
/* The test's own reading of mariadb://user:password@host:port/db (no
 * percent escapes: the URLs come from scripts/db-start.sh or the user). */
typedef struct my_parts {
	char user[128], pass[128], host[128], db[128], rest[256];
	unsigned port;
} my_parts;

static bool my_parse(const char *url, my_parts *m)
{
	memset(m, 0, sizeof *m);
	m->port = 3306;
	const char *p = strstr(url, "://");
	if (!p)
		return false;
	p += 3;
	const char *at = strrchr(p, '@'), *slash;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		snprintf(m->user, sizeof m->user, "%.*s", (int)((colon ? colon : at) - p), p);
		if (colon)
			snprintf(m->pass, sizeof m->pass, "%.*s", (int)(at - colon - 1), colon + 1);
		p = at + 1;
	}
	if (!(slash = strchr(p, '/')))
		return false;
	const char *colon = memchr(p, ':', (size_t)(slash - p));
	snprintf(m->host, sizeof m->host, "%.*s", (int)((colon ? colon : slash) - p), p);
	if (colon)
		m->port = (unsigned)atoi(colon + 1);
	const char *q = strchr(slash, '?');
	snprintf(m->db, sizeof m->db, "%.*s", (int)(q ? q - slash - 1 : (long)strlen(slash + 1)),
	         slash + 1);
	snprintf(m->rest, sizeof m->rest, "%s", q ? q : "");
	return true;
}

/* my_raw runs one statement over a connection of its own to url; out (may
 * be NULL) gets the first row's columns as integers. */
static bool my_raw(const char *url, const char *sql, long long *out, int nout)
{
	my_parts m;
	if (!my_parse(url, &m))
		return false;
	MYSQL *db = mysql_init(NULL);
	bool ok = db && mysql_real_connect(db, m.host, m.user, m.pass, m.db, m.port, NULL, 0) &&
	          mysql_query(db, sql) == 0;
	if (!ok) {
		fprintf(stderr, "raw sql failed: %s: %s\n", db ? mysql_error(db) : "oom", sql);
	} else {
		MYSQL_RES *res = mysql_store_result(db);
		MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
		for (int i = 0; i < nout; i++)
			out[i] = row && row[i] ? atoll(row[i]) : 0;
		if (res)
			mysql_free_result(res);
	}
	mysql_close(db);
	return ok;
}

static bool my_ns_new(const target *t, char *url, size_t cap)
{
	my_parts m;
	char name[64], sql[128];
	if (!my_parse(t->url, &m))
		return false;
	ns_name(name, sizeof name, m.db);
	snprintf(sql, sizeof sql, "CREATE DATABASE `%s`", name);
	if (!my_raw(t->url, sql, NULL, 0))
		return false;
	ns_record(t, name);
	const char *slash = strchr(strstr(t->url, "://") + 3, '/');
	snprintf(url, cap, "%.*s/%s%s", (int)(slash - t->url), t->url, name, m.rest);
	return true;
}

static void my_ns_drop(const target *t, const char *name)
{
	char sql[128];
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS `%s`", name);
	my_raw(t->url, sql, NULL, 0);
}

/* The hooks' strings are test-made (system names, constant actor names):
 * they need no escaping. */
static bool my_raw_copy(const ctx *c, const char *fsys, const char *fname, const char *tsys,
                        const char *tname)
{
	char sql[1024];
	snprintf(sql, sizeof sql,
	         "INSERT INTO spawn_actor_state SELECT '%s', '%s', revision, epoch, key_id, "
	         "nonce, data, type_url, updated_at, effects FROM spawn_actor_state "
	         "WHERE system = '%s' AND name = '%s' "
	         "ON DUPLICATE KEY UPDATE key_id = VALUES(key_id), nonce = VALUES(nonce), "
	         "data = VALUES(data)",
	         tsys, tname, fsys, fname);
	return my_raw(c->url, sql, NULL, 0);
}

static bool my_raw_truncate(const ctx *c, const char *sys, const char *name, int len)
{
	char sql[512];
	snprintf(sql, sizeof sql,
	         "UPDATE spawn_actor_state SET data = SUBSTRING(data, 1, %d) "
	         "WHERE system = '%s' AND name = '%s'",
	         len, sys, name);
	return my_raw(c->url, sql, NULL, 0);
}

static bool my_raw_replay(const ctx *c, const char *sys, const char *name, long long rev)
{
	char sql[768];
	snprintf(sql, sizeof sql,
	         "UPDATE spawn_actor_state s JOIN spawn_actor_history h ON h.system = s.system "
	         "AND h.name = s.name SET s.key_id = h.key_id, s.nonce = h.nonce, s.data = h.data "
	         "WHERE s.system = '%s' AND s.name = '%s' AND h.revision = %lld",
	         sys, name, rev);
	return my_raw(c->url, sql, NULL, 0);
}

static bool my_raw_set_sealed(const ctx *c, const char *sys, const char *name,
                              const char *nonce_hex, const char *data_hex)
{
	size_t cap = strlen(data_hex) + 512;
	char *sql = malloc(cap);
	snprintf(sql, cap,
	         "UPDATE spawn_actor_state SET nonce = UNHEX('%s'), data = UNHEX('%s') "
	         "WHERE system = '%s' AND name = '%s'",
	         nonce_hex, data_hex, sys, name);
	bool ok = my_raw(c->url, sql, NULL, 0);
	free(sql);
	return ok;
}

static bool my_raw_fail_on(const ctx *c, const char *name)
{
	char sql[512];
	snprintf(sql, sizeof sql,
	         "CREATE TRIGGER fail_%s BEFORE INSERT ON spawn_actor_state FOR EACH ROW "
	         "BEGIN IF NEW.name = '%s' THEN SIGNAL SQLSTATE '45000' "
	         "SET MESSAGE_TEXT = 'injected failure'; END IF; END",
	         name, name);
	return my_raw(c->url, sql, NULL, 0);
}

static bool my_raw_set_version(const ctx *c, const char *v)
{
	char sql[256];
	snprintf(sql, sizeof sql,
	         "UPDATE spawn_meta SET value = '%s' WHERE name = 'schema_version'", v);
	return my_raw(c->url, sql, NULL, 0);
}

static bool my_raw_history(const ctx *c, const char *sys, const char *name, long long out[3])
{
	char sql[512];
	snprintf(sql, sizeof sql,
	         "SELECT COUNT(*), COALESCE(MIN(revision), 0), COALESCE(MAX(revision), 0) "
	         "FROM spawn_actor_history WHERE system = '%s' AND name = '%s'",
	         sys, name);
	return my_raw(c->url, sql, out, 3);
}

static bool my_raw_actor_rows(const ctx *c, const char *sys, const char *name, long long out[5])
{
	char sql[2048];
	snprintf(
	    sql, sizeof sql,
	    "SELECT (SELECT COUNT(*) FROM spawn_actor_state WHERE system = '%s' AND name = '%s'), "
	    "(SELECT COUNT(*) FROM spawn_actor_history WHERE system = '%s' AND name = '%s'), "
	    "(SELECT COUNT(*) FROM spawn_instance WHERE system = '%s' AND name = '%s'), "
	    "(SELECT COUNT(*) FROM spawn_actor_epoch WHERE system = '%s' AND name = '%s'), "
	    "(SELECT COUNT(*) FROM spawn_actor_state WHERE system = '%s' AND name = '%s' "
	    " AND LEFT(data, 4) = X'A7475703') + "
	    "(SELECT COUNT(*) FROM spawn_actor_history WHERE system = '%s' AND name = '%s' "
	    " AND LEFT(data, 4) = X'A7475703')",
	    sys, name, sys, name, sys, name, sys, name, sys, name, sys, name);
	return my_raw(c->url, sql, out, 5);
}

static bool my_raw_count_key(const ctx *c, const char *key_id, long long *n)
{
	char sql[512];
	snprintf(sql, sizeof sql,
	         "SELECT (SELECT COUNT(*) FROM spawn_actor_state WHERE key_id = '%s') + "
	         "(SELECT COUNT(*) FROM spawn_actor_history WHERE key_id = '%s')",
	         key_id, key_id);
	return my_raw(c->url, sql, n, 1);
}

/* What schema version 4 added (statestores/mariadb/mariadb.c). */
static bool my_raw_drop_v4(const ctx *c)
{
	return my_raw(c->url,
	              "ALTER TABLE spawn_actor_state DROP INDEX spawn_actor_state_effects, "
	              "DROP COLUMN effects",
	              NULL, 0);
}

static bool my_raw_downgrade_v1(const ctx *c)
{
	return my_raw_drop_v4(c) && my_raw(c->url, "DROP TABLE spawn_actor_epoch", NULL, 0) &&
	       my_raw(c->url, "UPDATE spawn_meta SET value = '1' WHERE name = 'schema_version'",
	              NULL, 0) &&
	       my_raw(c->url, "UPDATE spawn_actor_state SET epoch = 5", NULL, 0);
}

static bool my_raw_sched_fill(const ctx *c, const char *prefix, long n, long long first_due)
{
	char sql[768];
	snprintf(
	    sql, sizeof sql,
	    "SET STATEMENT max_recursive_iterations = 10000000 FOR "
	    "INSERT INTO spawn_schedule(id, due_ms, owner, lease_until, key_id, nonce, data) "
	    "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < %ld) "
	    "SELECT CONCAT('%s', LPAD(i, 7, '0')), %lld + i, NULL, NULL, 't1', "
	    "REPEAT(X'00', 12), RANDOM_BYTES(48) FROM s",
	    n, prefix, first_due);
	return my_raw(c->url, sql, NULL, 0);
}

static bool my_raw_sched_contains(const ctx *c, const char *needle, long long *n)
{
	char sql[512];
	snprintf(sql, sizeof sql,
	         "SELECT COUNT(*) FROM spawn_schedule WHERE LOCATE(BINARY '%s', data) > 0", needle);
	return my_raw(c->url, sql, n, 1);
}

/* The driver's claim and next-due queries (statestores/mariadb/
 * mariadb_conn.c), without FORCE INDEX: the plan the optimizer picks on its own. */
static const char *const my_sched_queries[] = {
    "SELECT id, due_ms, key_id, nonce, data FROM spawn_schedule "
    "WHERE owner IS NULL AND due_ms <= 1700000000000 ORDER BY due_ms, id LIMIT 100 "
    "FOR UPDATE SKIP LOCKED",
    "SELECT id, due_ms, key_id, nonce, data FROM spawn_schedule "
    "WHERE owner IS NOT NULL AND lease_until <= 1700000000000 ORDER BY due_ms, id LIMIT 100 "
    "FOR UPDATE SKIP LOCKED",
    "SELECT due_ms FROM spawn_schedule WHERE owner IS NULL ORDER BY due_ms LIMIT 1",
    "SELECT lease_until FROM spawn_schedule WHERE owner IS NOT NULL "
    "AND lease_until < 9223372036854775807 ORDER BY lease_until LIMIT 1",
};

static bool my_raw_sched_indexed(const ctx *c, char *why, size_t cap)
{
	my_parts m;
	why[0] = '\0';
	if (!my_parse(c->url, &m))
		return false;
	MYSQL *db = mysql_init(NULL);
	bool ok = db && mysql_real_connect(db, m.host, m.user, m.pass, m.db, m.port, NULL, 0);
	for (size_t q = 0; ok && q < sizeof my_sched_queries / sizeof *my_sched_queries; q++) {
		char sql[768];
		snprintf(sql, sizeof sql, "EXPLAIN %s", my_sched_queries[q]);
		if (mysql_query(db, sql) != 0) {
			snprintf(why, cap, "%s", mysql_error(db));
			ok = false;
			break;
		}
		MYSQL_RES *res = mysql_store_result(db);
		MYSQL_ROW row;
		bool indexed = false;
		/* Columns: id, select_type, table, type, possible_keys, key, ... */
		while (res && (row = mysql_fetch_row(res))) {
			size_t used = strlen(why);
			snprintf(why + used, cap - used, "[%s type=%s key=%s] ",
			         row[2] ? row[2] : "", row[3] ? row[3] : "", row[5] ? row[5] : "");
			if (row[5] && strncmp(row[5], "spawn_schedule_", 15) == 0)
				indexed = true;
			if (row[3] && strcmp(row[3], "ALL") == 0)
				ok = false;
		}
		if (res)
			mysql_free_result(res);
		ok = ok && indexed;
	}
	mysql_close(db);
	return ok;
}

static bool my_raw_downgrade_v2(const ctx *c)
{
	return my_raw_drop_v4(c) && my_raw(c->url, "DROP TABLE spawn_instance", NULL, 0) &&
	       my_raw(c->url, "DROP TABLE spawn_schedule", NULL, 0) &&
	       my_raw(c->url, "UPDATE spawn_meta SET value = '2' WHERE name = 'schema_version'",
	              NULL, 0);
}

static bool my_raw_downgrade_v3(const ctx *c)
{
	return my_raw_drop_v4(c) &&
	       my_raw(c->url, "UPDATE spawn_meta SET value = '3' WHERE name = 'schema_version'",
	              NULL, 0);
}

/* The driver's effects listing (statestores/mariadb/mariadb_conn.c),
 * FORCE INDEX and all: the index must serve it as a range in key order. */
static bool my_raw_effects_indexed(const ctx *c, char *why, size_t cap)
{
	my_parts m;
	why[0] = '\0';
	if (!my_parse(c->url, &m))
		return false;
	MYSQL *db = mysql_init(NULL);
	bool ok = db && mysql_real_connect(db, m.host, m.user, m.pass, m.db, m.port, NULL, 0) &&
	          mysql_query(db, "EXPLAIN SELECT system, name FROM spawn_actor_state "
	                          "FORCE INDEX (spawn_actor_state_effects) "
	                          "WHERE effects = 1 AND (system > 'a' OR (system = 'a' AND "
	                          "name > 'b')) ORDER BY system, name LIMIT 100") == 0;
	bool indexed = false;
	MYSQL_RES *res = ok ? mysql_store_result(db) : NULL;
	MYSQL_ROW row;
	/* Columns: id, select_type, table, type, possible_keys, key, key_len,
	 * ref, rows, Extra. */
	while (res && (row = mysql_fetch_row(res))) {
		size_t used = strlen(why);
		snprintf(why + used, cap - used, "[type=%s key=%s extra=%s] ", row[3] ? row[3] : "",
		         row[5] ? row[5] : "", row[9] ? row[9] : "");
		if (row[3] && strcmp(row[3], "range") == 0 && row[5] &&
		    strcmp(row[5], "spawn_actor_state_effects") == 0)
			indexed = true;
		if (row[9] && strstr(row[9], "filesort"))
			ok = false;
	}
	if (res)
		mysql_free_result(res);
	if (!ok && db && !why[0])
		snprintf(why, cap, "%s", mysql_error(db));
	mysql_close(db);
	return ok && indexed;
}
#endif

/* ---- the hooks per target ------------------------------------------------------- */

void conf_raw_sqlite(target *t)
{
#ifdef GW_TEST_SQLITE
	t->raw_copy = sqlite_raw_copy;
	t->raw_truncate = sqlite_raw_truncate;
	t->raw_replay = sqlite_raw_replay;
	t->raw_set_sealed = sqlite_raw_set_sealed;
	t->raw_fail_on = sqlite_raw_fail_on;
	t->raw_set_version = sqlite_raw_set_version;
	t->raw_history = sqlite_raw_history;
	t->raw_count_key = sqlite_raw_count_key;
	t->raw_downgrade_v1 = sqlite_raw_downgrade_v1;
	t->raw_sched_fill = sqlite_raw_sched_fill;
	t->raw_sched_contains = sqlite_raw_sched_contains;
	t->raw_sched_indexed = sqlite_raw_sched_indexed;
	t->raw_downgrade_v2 = sqlite_raw_downgrade_v2;
	t->raw_downgrade_v3 = sqlite_raw_downgrade_v3;
	t->raw_effects_indexed = sqlite_raw_effects_indexed;
	t->raw_actor_rows = sqlite_raw_actor_rows;
#endif
}

void conf_raw_postgres(target *t)
{
#ifdef GW_TEST_POSTGRES
	t->raw_copy = pg_raw_copy;
	t->raw_truncate = pg_raw_truncate;
	t->raw_replay = pg_raw_replay;
	t->raw_set_sealed = pg_raw_set_sealed;
	t->raw_fail_on = pg_raw_fail_on;
	t->raw_set_version = pg_raw_set_version;
	t->raw_history = pg_raw_history;
	t->raw_count_key = pg_raw_count_key;
	t->raw_downgrade_v1 = pg_raw_downgrade_v1;
	t->raw_sched_fill = pg_raw_sched_fill;
	t->raw_sched_contains = pg_raw_sched_contains;
	t->raw_sched_indexed = pg_raw_sched_indexed;
	t->raw_downgrade_v2 = pg_raw_downgrade_v2;
	t->raw_downgrade_v3 = pg_raw_downgrade_v3;
	t->raw_effects_indexed = pg_raw_effects_indexed;
	t->raw_actor_rows = pg_raw_actor_rows;
	t->ns_new = pg_ns_new;
	t->ns_drop = pg_ns_drop;
#endif
}

void conf_raw_mariadb(target *t)
{
#ifdef GW_TEST_MARIADB
	t->raw_copy = my_raw_copy;
	t->raw_truncate = my_raw_truncate;
	t->raw_replay = my_raw_replay;
	t->raw_set_sealed = my_raw_set_sealed;
	t->raw_fail_on = my_raw_fail_on;
	t->raw_set_version = my_raw_set_version;
	t->raw_history = my_raw_history;
	t->raw_count_key = my_raw_count_key;
	t->raw_downgrade_v1 = my_raw_downgrade_v1;
	t->raw_sched_fill = my_raw_sched_fill;
	t->raw_sched_contains = my_raw_sched_contains;
	t->raw_sched_indexed = my_raw_sched_indexed;
	t->raw_downgrade_v2 = my_raw_downgrade_v2;
	t->raw_downgrade_v3 = my_raw_downgrade_v3;
	t->raw_effects_indexed = my_raw_effects_indexed;
	t->raw_actor_rows = my_raw_actor_rows;
	t->ddl_autocommits = true;
	t->ns_new = my_ns_new;
	t->ns_drop = my_ns_drop;
#endif
}
