/* sqlite_sched.c - the SQLite driver's UNNAMED instances, scheduled
 * invocations, forgetting an actor and counts for quotas (sqlite_int.h;
 * the design note is in sqlite.c).
 */
#include "sqlite_int.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UNNAMED instances ------------------------------------------------------ */

gw_err gwi_sq_instance_get(void *drv, const gw_actor_key *k, char **parent)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_INST_GET];
	gw_err e = GW_OK;
	int rc = gwi_sq_bind_key(st, k);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		e = GW_ENOTFOUND;
	} else if (rc != SQLITE_ROW) {
		e = gwi_sq_fail(d, rc, "instance get");
	} else {
		char *p = gwi_sq_dup_text(st, 0);
		if (!p)
			e = sqlite3_column_type(st, 0) == SQLITE_NULL ? GW_ECORRUPT : GW_ENOMEM;
		else
			*parent = p;
	}
	sqlite3_reset(st);
	return e;
}

gw_err gwi_sq_instance_put(void *drv, const gw_actor_key *k, const char *parent)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_INST_PUT];
	int rc = gwi_sq_bind_key(st, k);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 3, parent, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 4, gwi_sq_now_ms());
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	gw_err e = rc == SQLITE_DONE ? GW_OK : gwi_sq_fail(d, rc, "instance put");
	int changed = sqlite3_changes(d->db);
	sqlite3_reset(st);
	if (e != GW_OK || changed == 1)
		return e;
	/* Already there: the same parent is an idempotent repeat. */
	return gwi_instance_existing(d, gwi_sq_instance_get, k, parent);
}

/* ---- scheduled invocations ------------------------------------------------------ */

gw_err gwi_sq_sched_put(void *drv, const gw_sched_row *row)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_SCHED_PUT];
	int rc = sqlite3_bind_text(st, 1, row->id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, row->due_ms);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 3, row->key_id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(st, 4, row->nonce, (int)sizeof row->nonce, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob64(st, 5, row->data, (sqlite3_uint64)row->len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	gw_err e = rc == SQLITE_DONE ? GW_OK : gwi_sq_fail(d, rc, "schedule put");
	int changed = sqlite3_changes(d->db);
	sqlite3_reset(st);
	return e == GW_OK && changed != 1 ? GW_ECONFLICT : e;
}

/* sched_read copies the current result row (id, due_ms, key_id, nonce,
 * data) of st into *out (owned fields). A malformed nonce is zero-padded:
 * the row then fails to open and is set aside by the front. */
static gw_err sched_read(sqlite3_stmt *st, gw_sched_row *out)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	if (!id || strlen(id) >= sizeof out->id || sqlite3_column_type(st, 2) == SQLITE_NULL)
		return GW_ECORRUPT;
	const void *blob = sqlite3_column_blob(st, 4);
	size_t len = (size_t)sqlite3_column_bytes(st, 4);
	char *key_id = gwi_sq_dup_text(st, 2);
	uint8_t *data = malloc(len > 0 ? len : 1);
	if (!key_id || !data) {
		free(key_id);
		free(data);
		return GW_ENOMEM;
	}
	if (len > 0)
		memcpy(data, blob, len);
	memset(out, 0, sizeof *out);
	snprintf(out->id, sizeof out->id, "%s", id);
	out->due_ms = sqlite3_column_int64(st, 1);
	out->key_id = key_id;
	const void *nonce = sqlite3_column_blob(st, 3);
	gwi_nonce_copy(out->nonce, nonce, (size_t)sqlite3_column_bytes(st, 3));
	out->data = data;
	out->len = len;
	return GW_OK;
}

/* sched_scan appends up to c->max rows of scan id (bound ?1 = now, ?2 =
 * max) to c. A malformed row (id too long, NULL key id) is skipped. */
static gw_err sched_scan(sqlite_drv *d, int id, int64_t now, gwi_claim *c)
{
	sqlite3_stmt *st = d->st[id];
	gw_err e = GW_OK;
	size_t got = 0, max = c->max;
	int rc = sqlite3_bind_int64(st, 1, now);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while (rc == SQLITE_OK && got < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = SQLITE_OK;
		gw_err re = sched_read(st, &c->rows[c->n]);
		if (re == GW_ECORRUPT) {
			GW_ERROR("sqlite %s: a scheduled invocation row is malformed: skipped",
			         gwi_sq_where(d));
			continue;
		}
		if (re != GW_OK) {
			e = re;
			break;
		}
		c->n++;
		got++;
	}
	if (e == GW_OK && rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		e = gwi_sq_fail(d, rc, "schedule claim (scan)");
	sqlite3_reset(st);
	return e;
}

gw_err gwi_sq_sched_claim(void *drv, int64_t now, const char *owner, int64_t lease_until,
                          size_t max, gw_sched_row *rows, size_t *n)
{
	sqlite_drv *d = drv;
	gwi_claim c;
	if (gwi_claim_init(&c, max) != GW_OK)
		return GW_ENOMEM;
	gw_err e = gwi_sq_run(d, ST_BEGIN, "begin");
	if (e == GW_OK)
		e = sched_scan(d, ST_SCHED_FREE, now, &c);
	if (e == GW_OK)
		e = sched_scan(d, ST_SCHED_EXPIRED, now, &c);
	size_t take = 0;
	if (e == GW_OK)
		take = gwi_claim_pick(&c);
	sqlite3_stmt *st = d->st[ST_SCHED_LEASE];
	for (size_t i = 0; e == GW_OK && i < take; i++) {
		int rc = sqlite3_bind_text(st, 1, c.rows[i].id, -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(st, 3, lease_until);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			e = gwi_sq_fail(d, rc, "schedule claim (lease)");
		sqlite3_reset(st);
	}
	if ((e = gwi_sq_end_tx(d, e)) == GW_OK)
		gwi_claim_hand_out(&c, take, rows, n);
	gwi_claim_fini(&c);
	return e;
}

/* sched_by_id runs statement id bound to ?1 = the row id. */
static gw_err sched_by_id(sqlite_drv *d, int id, const char *row_id, const char *what)
{
	int rc = sqlite3_bind_text(d->st[id], 1, row_id, -1, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		gw_err e = gwi_sq_fail(d, rc, what);
		sqlite3_reset(d->st[id]);
		return e;
	}
	return gwi_sq_run(d, id, what);
}

gw_err gwi_sq_sched_set_aside(void *drv, const char *id)
{
	return sched_by_id(drv, ST_SCHED_ASIDE, id, "schedule set aside");
}

/* Deletes of delivered rows commit without an fsync, like an acquire: a
 * power cut that loses them only makes their rows come back when their
 * leases expire, to be delivered again, which is what a gateway crash
 * between delivery and done does anyway (at least once, store.h). Every
 * gateway on the file runs on this machine and dies with it. */
gw_err gwi_sq_sched_done(void *drv, const char *id)
{
	gwi_sq_sync_normal(drv);
	return gwi_sq_sync_full(drv, sched_by_id(drv, ST_SCHED_DONE, id, "schedule done"));
}

/* One DELETE per id, all inside one write transaction: in-process statements
 * cost microseconds; what a delete per transaction cost was its commit. No
 * fsync either (see gwi_sq_sched_done). */
gw_err gwi_sq_sched_done_batch(void *drv, const char *const *ids, size_t n)
{
	sqlite_drv *d = drv;
	gwi_sq_sync_normal(d);
	gw_err e = gwi_sq_run(d, ST_BEGIN, "begin");
	for (size_t i = 0; e == GW_OK && i < n; i++)
		e = sched_by_id(d, ST_SCHED_DONE, ids[i], "schedule done (batch)");
	return gwi_sq_sync_full(d, gwi_sq_end_tx(d, e));
}

/* ---- forget ------------------------------------------------------------------ */

gw_err gwi_sq_sched_range(void *drv, const char *after, const char *below, size_t max,
                          gw_sched_row *rows, size_t *n)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_SCHED_RANGE];
	gwi_claim c;
	if (gwi_claim_init(&c, max) != GW_OK)
		return GW_ENOMEM;
	gw_err e = GW_OK;
	int rc = sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, below, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	while (rc == SQLITE_OK && c.n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = SQLITE_OK;
		gw_err re = sched_read(st, &c.rows[c.n]);
		if (re == GW_ECORRUPT)
			continue;
		if (re != GW_OK) {
			e = re;
			break;
		}
		c.n++;
	}
	if (e == GW_OK && rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		e = gwi_sq_fail(d, rc, "schedule range");
	sqlite3_reset(st);
	if (e == GW_OK)
		gwi_claim_hand_out(&c, c.n, rows, n);
	gwi_claim_fini(&c);
	return e;
}

gw_err gwi_sq_sched_reseal(void *drv, const gw_sched_reseal *rows, size_t n, gw_err *results)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_SCHED_RESEAL];
	gw_err e = gwi_sq_run(d, ST_BEGIN, "begin");
	for (size_t i = 0; e == GW_OK && i < n; i++) {
		const gw_sched_reseal *w = &rows[i];
		int rc = sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(st, 2, w->key_id, -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc =
			    sqlite3_bind_blob(st, 3, w->nonce, (int)sizeof w->nonce, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_blob64(st, 4, w->data, (sqlite3_uint64)w->len,
			                         SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(st, 5, w->old_key_id, -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_blob(st, 6, w->old_nonce, (int)sizeof w->old_nonce,
			                       SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			e = gwi_sq_fail(d, rc, "schedule re-seal");
		else
			results[i] = sqlite3_changes(d->db) == 1 ? GW_OK : GW_ECONFLICT;
		sqlite3_reset(st);
	}
	if ((e = gwi_sq_end_tx(d, e)) != GW_OK)
		gwi_results_set(results, n, e);
	return e;
}

/* forget_state deletes k's latest row; *n rows deleted, *effects its flag. */
static gw_err forget_state(sqlite_drv *d, const gw_actor_key *k, uint64_t *n, uint64_t *effects)
{
	sqlite3_stmt *st = d->st[ST_FORGET_STATE];
	int rc = gwi_sq_bind_key(st, k);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = SQLITE_OK;
		(*n)++;
		if (sqlite3_column_int64(st, 0) != 0)
			*effects = 1;
	}
	gw_err e = rc == SQLITE_DONE || rc == SQLITE_OK ? GW_OK : gwi_sq_fail(d, rc, "forget");
	sqlite3_reset(st);
	return e;
}

gw_err gwi_sq_forget(void *drv, const gw_actor_key *k, const char *const *ids, size_t n,
                     gw_forget_counts *out)
{
	sqlite_drv *d = drv;
	gw_forget_counts c = {0};
	gw_err e = gwi_sq_run(d, ST_BEGIN, "begin");
	if (e == GW_OK)
		e = forget_state(d, k, &c.state, &c.outbox);
	if (e == GW_OK &&
	    (e = gwi_sq_run_key(d, ST_FORGET_HIST, k, false, 0, "forget (history)")) == GW_OK)
		c.history = (uint64_t)sqlite3_changes(d->db);
	if (e == GW_OK &&
	    (e = gwi_sq_run_key(d, ST_FORGET_INST, k, false, 0, "forget (instance)")) == GW_OK)
		c.instance = (uint64_t)sqlite3_changes(d->db);
	for (size_t i = 0; e == GW_OK && i < n; i++)
		if ((e = sched_by_id(d, ST_SCHED_DONE, ids[i], "forget (schedule)")) == GW_OK)
			c.schedules += (uint64_t)sqlite3_changes(d->db);
	if (e == GW_OK)
		e = gwi_sq_run_key(d, ST_FORGET_EPOCH, k, false, 0, "forget (epoch)");
	if ((e = gwi_sq_end_tx(d, e)) == GW_OK)
		*out = c;
	return e;
}

gw_err gwi_sq_sched_next_due(void *drv, int64_t *due_ms)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_SCHED_NEXT];
	gw_err e = GW_ENOTFOUND;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		for (int c = 0; c < 2; c++) {
			if (sqlite3_column_type(st, c) == SQLITE_NULL)
				continue;
			int64_t v = sqlite3_column_int64(st, c);
			if (e == GW_ENOTFOUND || v < *due_ms)
				*due_ms = v;
			e = GW_OK;
		}
	} else {
		e = gwi_sq_fail(d, rc, "schedule next due");
	}
	sqlite3_reset(st);
	return e;
}

gw_err gwi_sq_sched_count(void *drv, uint64_t *n)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_SCHED_COUNT];
	gw_err e = GW_OK;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(st, 0);
	else
		e = gwi_sq_fail(d, rc, "schedule count");
	sqlite3_reset(st);
	return e;
}

/* ---- counts for quotas ---------------------------------------------------------- */

/* each_count steps st (bound) and calls fn per (text, count) row. */
static gw_err each_count(sqlite_drv *d, sqlite3_stmt *st, gw_count_fn fn, void *user,
                         const char *what)
{
	gw_err e = GW_OK;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		fn(user, key ? key : "", (uint64_t)sqlite3_column_int64(st, 1));
	}
	if (rc != SQLITE_DONE)
		e = gwi_sq_fail(d, rc, what);
	sqlite3_reset(st);
	return e;
}

gw_err gwi_sq_instance_counts(void *drv, gw_count_fn fn, void *user)
{
	sqlite_drv *d = drv;
	return each_count(d, d->st[ST_INST_COUNTS], fn, user, "instance counts");
}

gw_err gwi_sq_sched_counts(void *drv, size_t prefix_len, gw_count_fn fn, void *user)
{
	sqlite_drv *d = drv;
	sqlite3_stmt *st = d->st[ST_SCHED_COUNTS];
	int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)prefix_len);
	if (rc != SQLITE_OK) {
		sqlite3_reset(st);
		return gwi_sq_fail(d, rc, "schedule counts");
	}
	return each_count(d, st, fn, user, "schedule counts");
}
