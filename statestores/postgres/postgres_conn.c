/* postgres_conn.c - the PostgreSQL driver's prepared statements, errors,
 * connection pool and the helpers that run a call's commands (the design
 * note, with the pool's invariants, is in postgres.c). */
#include "postgres_int.h"

#include "log.h"
#include "redact.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs (catalog/pg_type.h is a server header). */
#define OID_BYTEA       17
#define OID_INT2        21
#define OID_INT8        20
#define OID_TEXT        25
#define OID_TEXT_ARRAY  1009
#define OID_BYTEA_ARRAY 1001
#define OID_INT2_ARRAY  1005
#define OID_INT8_ARRAY  1016

/* The columns of a row, in the order read_row expects. */
#define ROW_COLS "revision, epoch, key_id, nonce, data, type_url"
/* A row key rotation rewrites: under another key than the primary ($1), or
 * not yet envelope 3 (crypto.h: its data begins with A7 'G' 'W' 03). */
#define NOT_CURRENT "(key_id <> $1 OR substring(data from 1 for 4) <> decode('a7475703', 'hex'))"
#define SCHED_COLS  "id, due_ms, key_id, nonce, data"
/* The database's clock in ms since the epoch: the one clock of the
 * members table (clock_timestamp: the time of the statement, not of the
 * transaction's start). */
#define DB_NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::int8"
#define ROT_WRITE(table)                                                                           \
	"UPDATE " table " SET key_id = $4, nonce = $5, data = $6 "                                 \
	"WHERE system = $1 AND name = $2 AND revision = $3 AND key_id = $7 AND nonce = $8"

/* The writes of a save segment: $1..$11 are arrays of system, name,
 * revision, epoch, key_id, nonce, data, type_url, effects, expected and the
 * oldest revision the history keeps, one element per row (distinct keys,
 * none fenced). expected 0 inserts (a row there: nothing), else updates the
 * row still at expected; done names the rows written, the others
 * conflicted. (The CTEs touch disjoint rows: one statement is safe.) */
#define SAVE_BULK                                                                                  \
	"WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], "         \
	"$5::text[], $6::bytea[], $7::bytea[], $8::text[], $9::int2[], $10::int8[], $11::int8[]) " \
	" AS v(system, name, revision, epoch, key_id, nonce, data, type_url, effects, expected, "  \
	" keep)), "                                                                                \
	"ins AS (INSERT INTO spawn_actor_state"                                                    \
	"(system, name, revision, epoch, key_id, nonce, data, type_url, updated_at, effects) "     \
	" SELECT system, name, revision, epoch, key_id, nonce, data, type_url, now(), effects "    \
	" FROM v WHERE expected = 0 ORDER BY system COLLATE \"C\", name COLLATE \"C\" "            \
	" ON CONFLICT (system, name) DO NOTHING RETURNING system, name), "                         \
	"upd AS (UPDATE spawn_actor_state s SET revision = v.revision, epoch = v.epoch, "          \
	" key_id = v.key_id, nonce = v.nonce, data = v.data, type_url = v.type_url, "              \
	" updated_at = now(), effects = v.effects FROM v "                                         \
	" WHERE v.expected > 0 AND s.system = v.system AND s.name = v.name "                       \
	" AND s.revision = v.expected RETURNING s.system, s.name), "                               \
	"done AS (SELECT system, name FROM ins UNION ALL SELECT system, name FROM upd)"
#define SAVE_BULK_TYPES                                                                            \
	{                                                                                          \
		OID_TEXT_ARRAY, OID_TEXT_ARRAY, OID_INT8_ARRAY, OID_INT8_ARRAY, OID_TEXT_ARRAY,    \
		    OID_BYTEA_ARRAY, OID_BYTEA_ARRAY, OID_TEXT_ARRAY, OID_INT2_ARRAY,              \
		    OID_INT8_ARRAY, OID_INT8_ARRAY                                                 \
	}

/* INSERT, UPDATE and HIST_PUT share $1..$8 = system, name, revision, epoch,
 * key_id, nonce, data, type_url; INSERT adds $9 = the effects flag, UPDATE
 * $9 = the expected revision and $10 = the effects flag, HIST_PUT $9 = the
 * oldest revision to keep. The rotation rewrites take
 * system, name, revision, new key_id, nonce, data, old key_id, old nonce. */
const gwi_pg_stmt gwi_pg_stmts[ST_COUNT] = {
    [ST_LOAD] = {"gw_load",
                 "SELECT " ROW_COLS " FROM spawn_actor_state WHERE system = $1 AND name = $2",
                 2,
                 {OID_TEXT, OID_TEXT}},
    [ST_LOAD_REV] = {"gw_load_rev",
                     "SELECT " ROW_COLS " FROM spawn_actor_state "
                     "WHERE system = $1 AND name = $2 AND revision = $3 "
                     "UNION ALL SELECT " ROW_COLS " FROM spawn_actor_history "
                     "WHERE system = $1 AND name = $2 AND revision = $3 LIMIT 1",
                     3,
                     {OID_TEXT, OID_TEXT, OID_INT8}},
    [ST_LIST] = {"gw_list",
                 "SELECT revision FROM spawn_actor_state WHERE system = $1 AND name = $2 "
                 "UNION SELECT revision FROM spawn_actor_history "
                 "WHERE system = $1 AND name = $2 ORDER BY 1 DESC LIMIT $3",
                 3,
                 {OID_TEXT, OID_TEXT, OID_INT8}},
    [ST_INSERT] = {"gw_insert",
                   "INSERT INTO spawn_actor_state"
                   "(system, name, revision, epoch, key_id, nonce, data, type_url, updated_at, "
                   "effects) VALUES($1, $2, $3, $4, $5, $6, $7, $8, now(), $9) "
                   "ON CONFLICT (system, name) DO NOTHING",
                   9,
                   {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA,
                    OID_TEXT, OID_INT2}},
    [ST_UPDATE] = {"gw_update",
                   "UPDATE spawn_actor_state SET revision = $3, epoch = $4, key_id = $5, "
                   "nonce = $6, data = $7, type_url = $8, updated_at = now(), effects = $10 "
                   "WHERE system = $1 AND name = $2 AND revision = $9",
                   10,
                   {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA,
                    OID_TEXT, OID_INT8, OID_INT2}},
    /* FOR SHARE: an acquire (an UPDATE of this row) waits for our commit. */
    [ST_FENCE] = {"gw_fence",
                  "SELECT epoch FROM spawn_actor_epoch WHERE system = $1 AND name = $2 "
                  "FOR SHARE",
                  2,
                  {OID_TEXT, OID_TEXT}},
    [ST_ACQUIRE] = {"gw_acquire",
                    "INSERT INTO spawn_actor_epoch AS e (system, name, epoch) VALUES($1, $2, 1) "
                    "ON CONFLICT (system, name) DO UPDATE SET epoch = e.epoch + 1 "
                    "RETURNING epoch",
                    2,
                    {OID_TEXT, OID_TEXT}},
    /* One statement: the trim and the insert touch different revisions. */
    [ST_HIST_PUT] = {"gw_hist_put",
                     "WITH trim AS (DELETE FROM spawn_actor_history "
                     " WHERE system = $1 AND name = $2 AND revision < $9) "
                     "INSERT INTO spawn_actor_history"
                     "(system, name, revision, epoch, key_id, nonce, data, type_url, updated_at) "
                     "VALUES($1, $2, $3, $4, $5, $6, $7, $8, now()) "
                     "ON CONFLICT (system, name, revision) DO UPDATE SET "
                     "epoch = excluded.epoch, key_id = excluded.key_id, "
                     "nonce = excluded.nonce, data = excluded.data, "
                     "type_url = excluded.type_url, updated_at = excluded.updated_at",
                     9,
                     {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA,
                      OID_TEXT, OID_INT8}},
    [ST_REMOVE] = {"gw_remove",
                   "WITH h AS (DELETE FROM spawn_actor_history WHERE system = $1 AND name = $2) "
                   "DELETE FROM spawn_actor_state WHERE system = $1 AND name = $2",
                   2,
                   {OID_TEXT, OID_TEXT}},
    [ST_META_GET] = {"gw_meta_get", "SELECT value FROM spawn_meta WHERE name = $1", 1, {OID_TEXT}},
    [ST_META_PUT] = {"gw_meta_put",
                     "INSERT INTO spawn_meta(name, value) VALUES($1, $2) "
                     "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                     2,
                     {OID_TEXT, OID_BYTEA}},
    /* A concurrent uncommitted creator makes this wait, then do nothing. */
    [ST_META_CREATE] = {"gw_meta_create",
                        "INSERT INTO spawn_meta(name, value) VALUES($1, $2) "
                        "ON CONFLICT (name) DO NOTHING",
                        2,
                        {OID_TEXT, OID_BYTEA}},
    [ST_ROT_COUNT] = {"gw_rot_count",
                      "SELECT (SELECT count(*) FROM spawn_actor_state WHERE " NOT_CURRENT ") + "
                      "(SELECT count(*) FROM spawn_actor_history WHERE " NOT_CURRENT ")",
                      1,
                      {OID_TEXT}},
    /* Row comparisons walk the primary key (COLLATE "C": byte order). */
    [ST_ROT_SCAN_STATE] = {"gw_rot_scan_state",
                           "SELECT system, name, " ROW_COLS " FROM spawn_actor_state "
                           "WHERE (system, name) > ($2, $3) AND " NOT_CURRENT " "
                           "ORDER BY system, name LIMIT $4",
                           4,
                           {OID_TEXT, OID_TEXT, OID_TEXT, OID_INT8}},
    [ST_ROT_SCAN_HIST] = {"gw_rot_scan_hist",
                          "SELECT system, name, " ROW_COLS " FROM spawn_actor_history "
                          "WHERE (system, name, revision) > ($2, $3, $4) AND " NOT_CURRENT " "
                          "ORDER BY system, name, revision LIMIT $5",
                          5,
                          {OID_TEXT, OID_TEXT, OID_TEXT, OID_INT8, OID_INT8}},
    [ST_ROT_WRITE_STATE] = {"gw_rot_write_state",
                            ROT_WRITE("spawn_actor_state"),
                            8,
                            {OID_TEXT, OID_TEXT, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA, OID_TEXT,
                             OID_BYTEA}},
    [ST_ROT_WRITE_HIST] = {"gw_rot_write_hist",
                           ROT_WRITE("spawn_actor_history"),
                           8,
                           {OID_TEXT, OID_TEXT, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA, OID_TEXT,
                            OID_BYTEA}},
    [ST_INST_PUT] = {"gw_inst_put",
                     "INSERT INTO spawn_instance(system, name, parent, created_at) "
                     "VALUES($1, $2, $3, now()) ON CONFLICT (system, name) DO NOTHING",
                     3,
                     {OID_TEXT, OID_TEXT, OID_TEXT}},
    [ST_INST_GET] = {"gw_inst_get",
                     "SELECT parent FROM spawn_instance WHERE system = $1 AND name = $2",
                     2,
                     {OID_TEXT, OID_TEXT}},
    [ST_SCHED_PUT] = {"gw_sched_put",
                      "INSERT INTO spawn_schedule(id, due_ms, owner, lease_until, key_id, nonce, "
                      "data) VALUES($1, $2, NULL, NULL, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                      5,
                      {OID_TEXT, OID_INT8, OID_TEXT, OID_BYTEA, OID_BYTEA}},
    /* The two claim scans, each on its partial index. SKIP LOCKED: rows a
     * concurrent claim holds are passed over, and a row it leased and
     * committed meanwhile fails the re-checked WHERE clause. */
    [ST_SCHED_FREE] = {"gw_sched_free",
                       "SELECT " SCHED_COLS " FROM spawn_schedule "
                       "WHERE owner IS NULL AND due_ms <= $1 ORDER BY due_ms, id LIMIT $2 "
                       "FOR UPDATE SKIP LOCKED",
                       2,
                       {OID_INT8, OID_INT8}},
    [ST_SCHED_EXPIRED] = {"gw_sched_expired",
                          "SELECT " SCHED_COLS " FROM spawn_schedule "
                          "WHERE owner IS NOT NULL AND lease_until <= $1 "
                          "ORDER BY due_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                          2,
                          {OID_INT8, OID_INT8}},
    [ST_SCHED_LEASE] = {"gw_sched_lease",
                        "UPDATE spawn_schedule SET owner = $2, lease_until = $3 "
                        "WHERE id = ANY($1)",
                        3,
                        {OID_TEXT_ARRAY, OID_TEXT, OID_INT8}},
    [ST_SCHED_ASIDE] = {"gw_sched_aside",
                        "UPDATE spawn_schedule SET owner = '" GW_SCHED_CORRUPT "', "
                        "lease_until = 9223372036854775807 WHERE id = $1",
                        1,
                        {OID_TEXT}},
    [ST_SCHED_DONE] = {"gw_sched_done", "DELETE FROM spawn_schedule WHERE id = $1", 1, {OID_TEXT}},
    [ST_SCHED_NEXT] = {"gw_sched_next",
                       "SELECT (SELECT due_ms FROM spawn_schedule WHERE owner IS NULL "
                       "ORDER BY due_ms LIMIT 1), "
                       "(SELECT lease_until FROM spawn_schedule WHERE owner IS NOT NULL "
                       "AND lease_until < 9223372036854775807 ORDER BY lease_until LIMIT 1)",
                       0,
                       {0}},
    [ST_SCHED_COUNT] = {"gw_sched_count", "SELECT count(*) FROM spawn_schedule", 0, {0}},
    [ST_INST_COUNTS] = {"gw_inst_counts",
                        "SELECT system, count(*) FROM spawn_instance GROUP BY system",
                        0,
                        {0}},
    [ST_SCHED_COUNTS] = {"gw_sched_counts",
                         "SELECT substr(id, 1, $1::int), count(*) FROM spawn_schedule GROUP BY 1",
                         1,
                         {OID_INT8}},
    [ST_SCHED_RANGE] = {"gw_sched_range",
                        "SELECT " SCHED_COLS " FROM spawn_schedule "
                        "WHERE id > $1 AND id < $2 ORDER BY id LIMIT $3",
                        3,
                        {OID_TEXT, OID_TEXT, OID_INT8}},
    /* Key rotation: the row keeps due_ms and its claim. */
    [ST_SCHED_RESEAL] = {"gw_sched_reseal",
                         "UPDATE spawn_schedule SET key_id = $2, nonce = $3, data = $4 "
                         "WHERE id = $1 AND key_id = $5 AND nonce = $6",
                         6,
                         {OID_TEXT, OID_TEXT, OID_BYTEA, OID_BYTEA, OID_TEXT, OID_BYTEA}},
    /* Forget: one statement (autocommit: one transaction); every delete
     * sees the same snapshot and counts what it removed. */
    [ST_FORGET] = {"gw_forget",
                   "WITH s AS (DELETE FROM spawn_actor_state WHERE system = $1 AND name = $2 "
                   "RETURNING effects), "
                   "h AS (DELETE FROM spawn_actor_history WHERE system = $1 AND name = $2 "
                   "RETURNING 1), "
                   "i AS (DELETE FROM spawn_instance WHERE system = $1 AND name = $2 "
                   "RETURNING 1), "
                   "q AS (DELETE FROM spawn_schedule WHERE id = ANY($3) RETURNING 1), "
                   "e AS (UPDATE spawn_actor_epoch SET epoch = epoch + 1, owner = NULL "
                   "WHERE system = $1 AND name = $2) "
                   "SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM h), "
                   "(SELECT count(*) FROM i), (SELECT count(*) FROM q), "
                   "(SELECT count(*) FROM s WHERE effects <> 0)",
                   3,
                   {OID_TEXT, OID_TEXT, OID_TEXT_ARRAY}},
    /* One statement (autocommit: one transaction) for a whole chunk. */
    [ST_SCHED_DONE_BATCH] = {"gw_sched_done_batch",
                             "DELETE FROM spawn_schedule WHERE id = ANY($1)",
                             1,
                             {OID_TEXT_ARRAY}},
    /* effects <> 0 implies the partial index's predicate: the scan walks
     * only the flagged rows, in key order. */
    [ST_EFFECTS_LIST] = {"gw_effects_list",
                         "SELECT system, name FROM spawn_actor_state "
                         "WHERE effects <> 0 AND (system, name) > ($1, $2) "
                         "ORDER BY system, name LIMIT $3",
                         3,
                         {OID_TEXT, OID_TEXT, OID_INT8}},
    /* Batched activation: $1 = systems, $2 = names (text[] of one length,
     * distinct pairs). The epoch rows are locked in key order (the
     * column's "C" collation), so two batches never deadlock each other. */
    [ST_ACQUIRE_BATCH] = {"gw_acquire_batch",
                          "INSERT INTO spawn_actor_epoch AS e (system, name, epoch) "
                          "SELECT k.system, k.name, 1 FROM unnest($1::text[], $2::text[]) "
                          "AS k(system, name) ORDER BY k.system COLLATE \"C\", "
                          "k.name COLLATE \"C\" "
                          "ON CONFLICT (system, name) DO UPDATE SET epoch = e.epoch + 1 "
                          "RETURNING system, name, epoch",
                          2,
                          {OID_TEXT_ARRAY, OID_TEXT_ARRAY}},
    [ST_LOAD_BATCH] = {"gw_load_batch",
                       "SELECT system, name, " ROW_COLS " FROM spawn_actor_state "
                       "WHERE (system, name) IN "
                       "(SELECT * FROM unnest($1::text[], $2::text[]))",
                       2,
                       {OID_TEXT_ARRAY, OID_TEXT_ARRAY}},
    /* save_batch, a segment of distinct keys at a time (postgres.c): the
     * fence of all its fenced rows, locked in key byte order as
     * ST_ACQUIRE_BATCH locks them, then one statement for every write. */
    [ST_FENCE_BULK] = {"gw_fence_bulk",
                       "SELECT system, name, epoch FROM spawn_actor_epoch "
                       "WHERE (system, name) IN (SELECT * FROM unnest($1::text[], $2::text[])) "
                       "ORDER BY system COLLATE \"C\", name COLLATE \"C\" FOR SHARE",
                       2,
                       {OID_TEXT_ARRAY, OID_TEXT_ARRAY}},
    [ST_SAVE_BULK] = {"gw_save_bulk", SAVE_BULK " SELECT system, name FROM done", 11,
                      SAVE_BULK_TYPES},
    [ST_SAVE_BULK_HIST] =
        {"gw_save_bulk_hist",
         SAVE_BULK ", trim AS (DELETE FROM spawn_actor_history h USING v, done "
                   " WHERE v.system = done.system AND v.name = done.name "
                   " AND h.system = v.system AND h.name = v.name AND h.revision < v.keep), "
                   "hist AS (INSERT INTO spawn_actor_history"
                   "(system, name, revision, epoch, key_id, nonce, data, type_url, updated_at) "
                   " SELECT v.system, v.name, v.revision, v.epoch, v.key_id, v.nonce, v.data, "
                   " v.type_url, now() FROM v, done "
                   " WHERE v.system = done.system AND v.name = done.name "
                   " ON CONFLICT (system, name, revision) DO UPDATE SET "
                   " epoch = excluded.epoch, key_id = excluded.key_id, "
                   " nonce = excluded.nonce, data = excluded.data, "
                   " type_url = excluded.type_url, updated_at = excluded.updated_at) "
                   "SELECT system, name FROM done",
         11, SAVE_BULK_TYPES},
    /* The members of a cluster (postgres_members.c). */
    [ST_MEMBER_JOIN] = {"gw_member_join",
                        "INSERT INTO spawn_members(id, address, status, started_ms, "
                        "heartbeat_ms, served, view_version) SELECT $1, $2, 1, t.now, t.now, "
                        "$3, 0 FROM (SELECT " DB_NOW_MS " AS now) t "
                        "ON CONFLICT (id) DO NOTHING RETURNING heartbeat_ms",
                        3,
                        {OID_TEXT, OID_TEXT, OID_TEXT}},
    /* One statement: the update and the now it wrote; 0 rows updated
     * means dead or gone. */
    [ST_MEMBER_HEARTBEAT] = {"gw_member_heartbeat",
                             "WITH t AS (SELECT " DB_NOW_MS " AS now), "
                             "u AS (UPDATE spawn_members SET heartbeat_ms = (SELECT now FROM t), "
                             "status = $2, served = $3, view_version = $4 "
                             "WHERE id = $1 AND status <> 4 RETURNING 1) "
                             "SELECT (SELECT now FROM t), (SELECT count(*) FROM u)",
                             4,
                             {OID_TEXT, OID_INT2, OID_TEXT, OID_INT8}},
    /* The now and the rows in one statement (one snapshot); no member:
     * one row with NULLs. */
    [ST_MEMBER_LIST] = {"gw_member_list",
                        "SELECT t.now, m.id, m.address, m.status::int8, m.started_ms, "
                        "m.heartbeat_ms, m.served, m.view_version "
                        "FROM (SELECT " DB_NOW_MS " AS now) t "
                        "LEFT JOIN spawn_members m ON true ORDER BY m.id",
                        0,
                        {0}},
    /* The conditional declaration: the row waits for a concurrent
     * declarer's or heartbeat's commit, then re-checks the WHERE clause
     * on the committed row, so exactly one of racing declarations wins
     * and a heartbeat in between makes it miss. */
    [ST_MEMBER_DEAD] = {"gw_member_dead",
                        "UPDATE spawn_members SET status = 4 "
                        "WHERE id = $1 AND status IN (1, 2, 3) AND heartbeat_ms = $2",
                        2,
                        {OID_TEXT, OID_INT8}},
    [ST_MEMBER_REMOVE] = {"gw_member_remove",
                          "DELETE FROM spawn_members WHERE id = $1",
                          1,
                          {OID_TEXT}},
    [ST_MEMBER_GC] = {"gw_member_gc",
                      "WITH d AS (DELETE FROM spawn_members WHERE status = 4 "
                      "AND heartbeat_ms < " DB_NOW_MS " - $1 RETURNING 1) "
                      "SELECT count(*) FROM d",
                      1,
                      {OID_INT8}},
    /* The activation lease (postgres.c, lease_activate): $1 systems, $2
     * names (text[], distinct pairs), $3 the member. LOCK creates the
     * missing epoch rows (epoch 0, no owner) and locks every row in key
     * order; TAKE runs after, in the same transaction, with a snapshot
     * newer than the locks. */
    [ST_LEASE_LOCK] = {"gw_lease_lock",
                       "INSERT INTO spawn_actor_epoch AS e (system, name, epoch) "
                       "SELECT k.system, k.name, 0 FROM unnest($1::text[], $2::text[]) "
                       "AS k(system, name) ORDER BY k.system COLLATE \"C\", "
                       "k.name COLLATE \"C\" "
                       "ON CONFLICT (system, name) DO UPDATE SET epoch = e.epoch",
                       2,
                       {OID_TEXT_ARRAY, OID_TEXT_ARRAY}},
    [ST_LEASE_TAKE] = {"gw_lease_take",
                       "WITH k AS (SELECT * FROM unnest($1::text[], $2::text[]) "
                       " AS k(system, name)), "
                       "s AS (SELECT EXISTS (SELECT 1 FROM spawn_members "
                       " WHERE id = $3 AND status <> 4) AS ok), "
                       "c AS (SELECT e.system, e.name, e.owner, (e.owner IS NULL OR e.owner = $3 "
                       " OR NOT EXISTS (SELECT 1 FROM spawn_members m "
                       " WHERE m.id = e.owner AND m.status <> 4)) AS free "
                       " FROM spawn_actor_epoch e JOIN k ON e.system = k.system "
                       " AND e.name = k.name), "
                       "u AS (UPDATE spawn_actor_epoch e SET epoch = e.epoch + 1, owner = $3 "
                       " FROM c, s WHERE s.ok AND c.free AND e.system = c.system "
                       " AND e.name = c.name RETURNING e.system, e.name, e.epoch) "
                       "SELECT c.system, c.name, u.epoch, c.owner FROM c LEFT JOIN u "
                       " ON u.system = c.system AND u.name = c.name",
                       3,
                       {OID_TEXT_ARRAY, OID_TEXT_ARRAY, OID_TEXT}},
    /* $1 systems, $2 names, $3 epochs (int8[]), $4 the member: the rows
     * still owned by the member at those epochs lose their owner (locked
     * in key order first, like every other multi-row write here). */
    [ST_LEASE_RELEASE] = {"gw_lease_release",
                          "WITH t AS (SELECT e.system, e.name FROM spawn_actor_epoch e "
                          " JOIN unnest($1::text[], $2::text[], $3::int8[]) "
                          " AS k(system, name, epoch) ON e.system = k.system "
                          " AND e.name = k.name "
                          " WHERE e.epoch = k.epoch AND e.owner = $4 "
                          " ORDER BY e.system, e.name FOR UPDATE OF e) "
                          "UPDATE spawn_actor_epoch e SET owner = NULL FROM t "
                          "WHERE e.system = t.system AND e.name = t.name RETURNING 1",
                          4,
                          {OID_TEXT_ARRAY, OID_TEXT_ARRAY, OID_INT8_ARRAY, OID_TEXT}},
};

/* ---- errors --------------------------------------------------------------- */

/* map_state maps a SQLSTATE to the error the caller sees. Retryable
 * conditions (connection, shutdown, lock or statement timeouts,
 * serialization failures and deadlocks) are GW_EUNAVAIL. */
static gw_err map_state(const char *state)
{
	if (!state || strlen(state) != 5)
		return GW_EIO;
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 ||
	    strcmp(state, "53300") == 0)
		return GW_EUNAVAIL;
	if (strcmp(state, "53200") == 0)
		return GW_ENOMEM;
	if (strncmp(state, "54", 2) == 0)
		return GW_ETOOBIG;
	if (strncmp(state, "22", 2) == 0) /* data exception: e.g. not UTF-8 */
		return GW_EINVAL;
	return GW_EIO;
}

/* No trailing newline; inner line breaks (connection errors carry hints)
 * become "; ". */
void gwi_pg_trimmed(char *buf, size_t cap, const char *msg)
{
	size_t n = 0;
	if (!msg || !*msg)
		msg = "unknown error";
	for (const char *p = msg; *p && n + 3 < cap; p++) {
		if (*p != '\n') {
			buf[n++] = *p == '\t' ? ' ' : *p;
			continue;
		}
		while (p[1] == '\t' || p[1] == ' ' || p[1] == '\n')
			p++;
		if (p[1]) {
			buf[n++] = ';';
			buf[n++] = ' ';
		}
	}
	buf[n] = '\0';
}

/* conn_lost reports whether a failed command left pc without a usable
 * connection, so the caller drops it and the next call reconnects. */
static bool conn_lost(const pg_conn *pc, const PGresult *r)
{
	if (!pc->c || PQstatus(pc->c) == CONNECTION_BAD)
		return true;
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0);
}

/* libpq returns a NULL result when it could not send or is out of memory. */
gw_err gwi_pg_fail(const pg_drv *d, const pg_conn *pc, const PGresult *r, const char *what)
{
	char msg[512];
	gw_err e;
	if (conn_lost(pc, r)) {
		e = GW_EUNAVAIL;
		gwi_pg_trimmed(msg, sizeof msg,
		               r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r)
		                                             : PQerrorMessage(pc->c));
	} else if (!r) {
		e = GW_ENOMEM;
		gwi_pg_trimmed(msg, sizeof msg, PQerrorMessage(pc->c));
	} else {
		e = map_state(PQresultErrorField(r, PG_DIAG_SQLSTATE));
		const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		gwi_pg_trimmed(msg, sizeof msg, primary ? primary : PQresultErrorMessage(r));
	}
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	GW_ERROR("postgres %s: %.80s: %s (%s)", d->where, what, msg, state ? state : "-");
	return e;
}

/* ---- connections ------------------------------------------------------------ */

void gwi_pg_conn_drop(pg_conn *pc)
{
	PQfinish(pc->c);
	pc->c = NULL;
}

/* notice routes the server's notices to our log instead of libpq's
 * default (stderr): "relation already exists, skipping" is debug noise,
 * a WARNING or the FATAL a server sends before it closes a connection is
 * worth a line. */
static void notice(void *arg, const char *msg)
{
	const pg_drv *d = arg;
	char line[512];
	gwi_pg_trimmed(line, sizeof line, msg);
	if (strncmp(line, "NOTICE", 6) == 0 || strncmp(line, "DEBUG", 5) == 0 ||
	    strncmp(line, "INFO", 4) == 0 || strncmp(line, "LOG", 3) == 0)
		GW_DEBUG("postgres %s: %s", d->where, line);
	else
		GW_WARN("postgres %s: %s", d->where, line);
}

gw_err gwi_pg_conn_open(pg_drv *d, pg_conn *pc, char *why, size_t whylen)
{
	/* Defaults first: the URL's own parameters, expanded from dbname,
	 * come later and win. */
	static const char *const keys[] = {
	    "connect_timeout",     "keepalives",       "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "tcp_user_timeout",
	    "application_name",    "dbname",           NULL};
	char ct[16] = "10", ut[16] = "30000";
	if (d->net_ms > 0) { /* store.h, net_timeout_ms */
		int secs = (d->net_ms + 999) / 1000;
		snprintf(ct, sizeof ct, "%d", secs < 2 ? 2 : secs);
		snprintf(ut, sizeof ut, "%d", d->net_ms);
	}
	const char *vals[] = {ct, "1", "30", "10", "3", ut, "spawn-gateway", d->url, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	gw_err e = GW_EUNAVAIL;
	if (!c) {
		snprintf(why, whylen, "out of memory");
		return GW_ENOMEM;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		gwi_pg_trimmed(why, whylen, PQerrorMessage(c));
		goto fail;
	}
	PQsetNoticeProcessor(c, notice, d);
	/* Bound lock waits and statements, unless the URL (options=-c...), the
	 * role or the server already set a bound of its own. */
	char setup[512];
	snprintf(setup, sizeof setup,
	         "SELECT set_config('lock_timeout', '10s', false) "
	         " WHERE current_setting('lock_timeout') = '0';"
	         "SELECT set_config('statement_timeout', '60s', false) "
	         " WHERE current_setting('statement_timeout') = '0'%s",
	         d->idle_tx_ms > 0 ? ";" : "");
	if (d->idle_tx_ms > 0) {
		/* Cluster mode (store.h, idle_tx_timeout_ms). */
		size_t at = strlen(setup);
		snprintf(setup + at, sizeof setup - at,
		         "SELECT set_config('idle_in_transaction_session_timeout', '%dms', false) "
		         " WHERE current_setting('idle_in_transaction_session_timeout') = '0'",
		         d->idle_tx_ms);
	}
	PGresult *r = PQexec(c, setup);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		gwi_pg_trimmed(why, whylen, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		e = PQstatus(c) == CONNECTION_BAD || !r ? GW_EUNAVAIL : GW_EIO;
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	pc->c = c;
	return GW_OK;
fail:
	/* libpq's messages may echo connection parameters. */
	gw_redact_secret(why, whylen, PQpass(c));
	PQfinish(c);
	return e;
}

gw_err gwi_pg_conn_prepare(pg_conn *pc, char *why, size_t whylen)
{
	PGconn *c = pc->c;
	gw_err e;
	for (int i = 0; i < ST_COUNT; i++) {
		const gwi_pg_stmt *s = &gwi_pg_stmts[i];
		PGresult *r = PQprepare(c, s->name, s->sql, s->nparams, s->types);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			char msg[400];
			gwi_pg_trimmed(msg, sizeof msg,
			               r && PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
			                   ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
			                   : PQerrorMessage(c));
			snprintf(why, whylen, "cannot prepare %s: %s", s->name, msg);
			e = PQstatus(c) == CONNECTION_BAD
			        ? GW_EUNAVAIL
			        : map_state(r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
			PQclear(r);
			goto fail;
		}
		PQclear(r);
	}
	return GW_OK;
fail:
	gwi_pg_conn_drop(pc);
	return e;
}

/* conn_stale reports whether an idle connection was closed by the server:
 * an idle connection has nothing to read unless the server said goodbye
 * (a FATAL termination message, or EOF). */
static bool conn_stale(pg_conn *pc)
{
	if (PQstatus(pc->c) != CONNECTION_OK)
		return true;
	struct pollfd p = {.fd = PQsocket(pc->c), .events = POLLIN};
	if (p.fd < 0)
		return true;
	if (poll(&p, 1, 0) <= 0)
		return false;
	if (!PQconsumeInput(pc->c) || PQstatus(pc->c) != CONNECTION_OK)
		return true;
	/* Asynchronous notices are consumed; anything else is not expected. */
	PGnotify *n;
	while ((n = PQnotifies(pc->c)))
		PQfreemem(n);
	return PQisBusy(pc->c) != 0;
}

/* The pool's table: slot i is d->conns[i]. */
static bool slot_open(void *drv, int slot)
{
	return ((pg_drv *)drv)->conns[slot].c != NULL;
}

static bool slot_stale(void *drv, int slot)
{
	return conn_stale(&((pg_drv *)drv)->conns[slot]);
}

static void slot_drop(void *drv, int slot)
{
	gwi_pg_conn_drop(&((pg_drv *)drv)->conns[slot]);
}

/* slot_ready connects the slot and prepares its statements. */
static gw_err slot_ready(void *drv, int slot, char *why, size_t whylen)
{
	pg_drv *d = drv;
	pg_conn *pc = &d->conns[slot];
	gw_err e = gwi_pg_conn_open(d, pc, why, whylen);
	return e == GW_OK ? gwi_pg_conn_prepare(pc, why, whylen) : e;
}

const gwi_conn_ops gwi_pg_conn_ops = {
    .driver = "postgres",
    .is_open = slot_open,
    .stale = slot_stale,
    .drop = slot_drop,
    .ready = slot_ready,
};

gw_err gwi_pg_conn_acquire(pg_drv *d, pg_conn **pc, bool *fresh)
{
	int slot;
	gw_err e = gwi_pool_acquire(&d->pool, &slot, fresh);
	if (e == GW_OK)
		*pc = &d->conns[slot];
	return e;
}

void gwi_pg_conn_release(pg_drv *d, pg_conn *pc)
{
	if (pc->c &&
	    (PQstatus(pc->c) != CONNECTION_OK || PQtransactionStatus(pc->c) != PQTRANS_IDLE))
		gwi_pg_conn_drop(pc);
	gwi_pool_release(&d->pool, (int)(pc - d->conns));
}

/* ---- running commands ---------------------------------------------------------- */

PGresult *gwi_pg_exec(pg_conn *pc, int id, const pg_params *p)
{
	const gwi_pg_stmt *s = &gwi_pg_stmts[id];
	return PQexecPrepared(pc->c, s->name, s->nparams, p->v, p->len, p->fmt, 1);
}

gw_err gwi_pg_retry_first(pg_drv *d, pg_conn *pc, bool fresh, int id, const char *sql,
                          const pg_params *p, ExecStatusType want, PGresult **out)
{
	for (int attempt = 0;; attempt++) {
		PGresult *r = id >= 0 ? gwi_pg_exec(pc, id, p) : PQexec(pc->c, sql);
		if (PQresultStatus(r) == want) {
			*out = r;
			return GW_OK;
		}
		if (!fresh && attempt == 0 && conn_lost(pc, r)) {
			PQclear(r);
			gw_err e = gwi_pool_reconnect(&d->pool, (int)(pc - d->conns), NULL);
			if (e != GW_OK)
				return e;
			continue;
		}
		gw_err e = gwi_pg_fail(d, pc, r, id >= 0 ? gwi_pg_stmts[id].name : sql);
		PQclear(r);
		return e;
	}
}

gw_err gwi_pg_run(pg_drv *d, pg_conn *pc, const char *sql, ExecStatusType want)
{
	PGresult *r = PQexec(pc->c, sql);
	gw_err e = PQresultStatus(r) == want ? GW_OK : gwi_pg_fail(d, pc, r, sql);
	PQclear(r);
	return e;
}

void gwi_pg_rollback(pg_drv *d, pg_conn *pc)
{
	if (pc->c && PQstatus(pc->c) == CONNECTION_OK && PQtransactionStatus(pc->c) != PQTRANS_IDLE)
		gwi_pg_run(d, pc, "ROLLBACK", PGRES_COMMAND_OK);
}

gw_err gwi_pg_begin(pg_drv *d, pg_conn **pc)
{
	pg_conn *c;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = gwi_pg_conn_acquire(d, &c, &fresh);
	if (e != GW_OK)
		return e;
	if ((e = gwi_pg_retry_first(d, c, fresh, -1, "BEGIN", NULL, PGRES_COMMAND_OK, &r)) != GW_OK)
		return gwi_pg_end(d, c, e);
	PQclear(r);
	*pc = c;
	return GW_OK;
}

gw_err gwi_pg_end(pg_drv *d, pg_conn *pc, gw_err e)
{
	if (!pc)
		return e;
	if (e == GW_OK)
		e = gwi_pg_run(d, pc, "COMMIT", PGRES_COMMAND_OK);
	if (e != GW_OK)
		gwi_pg_rollback(d, pc);
	gwi_pg_conn_release(d, pc);
	return e;
}

gw_err gwi_pg_command(pg_drv *d, int id, const pg_params *p, bool *one)
{
	pg_conn *pc;
	bool fresh;
	PGresult *r = NULL;
	gw_err e = gwi_pg_conn_acquire(d, &pc, &fresh);
	if (e != GW_OK)
		return e;
	e = gwi_pg_retry_first(d, pc, fresh, id, NULL, p, PGRES_COMMAND_OK, &r);
	if (one)
		*one = e == GW_OK && strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	gwi_pg_conn_release(d, pc);
	return e;
}

gw_err gwi_pg_query(pg_drv *d, int id, const pg_params *p, pg_conn **pc, PGresult **r)
{
	pg_conn *c;
	bool fresh;
	gw_err e = gwi_pg_conn_acquire(d, &c, &fresh);
	if (e != GW_OK)
		return e;
	if ((e = gwi_pg_retry_first(d, c, fresh, id, NULL, p, PGRES_TUPLES_OK, r)) != GW_OK) {
		gwi_pg_conn_release(d, c);
		return e;
	}
	*pc = c;
	return GW_OK;
}

void gwi_pg_query_end(pg_drv *d, pg_conn *pc, PGresult *r)
{
	PQclear(r);
	gwi_pg_conn_release(d, pc);
}

gw_err gwi_pg_query_int8(pg_drv *d, int id, const pg_params *p, uint64_t *v)
{
	pg_conn *pc;
	PGresult *r;
	gw_err e = gwi_pg_query(d, id, p, &pc, &r);
	if (e != GW_OK)
		return e;
	if (PQntuples(r) != 1 || !gwi_pg_get_int8(r, 0, 0, v))
		e = GW_ECORRUPT;
	gwi_pg_query_end(d, pc, r);
	return e;
}

/* ---- reading results ------------------------------------------------------------ */

static uint64_t be64(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | u[i];
	return v;
}

bool gwi_pg_get_int8(const PGresult *r, int i, int col, uint64_t *v)
{
	if (PQgetisnull(r, i, col) || PQgetlength(r, i, col) != 8)
		return false;
	*v = be64(PQgetvalue(r, i, col));
	return true;
}

char *gwi_pg_dup_col(const PGresult *r, int i, int col)
{
	if (PQgetisnull(r, i, col))
		return NULL;
	return strndup(PQgetvalue(r, i, col), (size_t)PQgetlength(r, i, col));
}
