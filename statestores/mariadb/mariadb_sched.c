/* mariadb_sched.c - the MariaDB driver's UNNAMED instances and scheduled
 * invocations (the design note, with sched_claim, is in mariadb.c). */
#include "mariadb_int.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

/* ---- UNNAMED instances ------------------------------------------------------------ */

gw_err gwi_my_instance_get(void *drv, const gw_actor_key *k, char **parent)
{
	my_drv *d = drv;
	my_conn *mc;
	unsigned long len;
	bool null = false;
	my_binds x;
	b_key(&x, k);
	gw_err e = gwi_my_query(d, ST_INST_GET, &x, "instance get", &mc);
	if (e != GW_OK)
		return e;
	e = gwi_my_fetch_blob(d, mc, ST_INST_GET, "instance get", parent, &len, &null);
	if (e == GW_OK && null)
		e = GW_ECORRUPT;
	gwi_my_query_end(d, mc, ST_INST_GET);
	return e;
}

gw_err gwi_my_instance_put(void *drv, const gw_actor_key *k, const char *parent)
{
	my_binds x;
	bool inserted = false;
	b_key(&x, k);
	b_str(&x, 2, parent);
	/* Autocommit; an existing row is left as it is (0 affected rows). */
	gw_err e = gwi_my_command(drv, ST_INST_PUT, &x, "instance put", &inserted);
	if (e != GW_OK || inserted)
		return e;
	return gwi_instance_existing(drv, gwi_my_instance_get, k, parent);
}

/* ---- scheduled invocations ---------------------------------------------------------- */

gw_err gwi_my_sched_put(void *drv, const gw_sched_row *row)
{
	my_binds x;
	bool inserted = false;
	b_str(&x, 0, row->id);
	b_int(&x, 1, 0, (uint64_t)row->due_ms);
	b_str(&x, 2, row->key_id);
	b_bytes(&x, 3, row->nonce, sizeof row->nonce);
	b_bytes(&x, 4, row->data, row->len);
	gw_err e = gwi_my_command(drv, ST_SCHED_PUT, &x, "schedule put", &inserted);
	return e == GW_OK && !inserted ? GW_ECONFLICT : e;
}

/* sched_scan runs claim scan id (now, max) in the open transaction and
 * appends its rows to c. A malformed row is skipped; a nonce of the wrong
 * size is zero-padded (the row then fails to open and the front sets it
 * aside). */
static gw_err sched_scan_x(my_drv *d, my_conn *mc, int id, my_binds *x, gwi_claim *c);

static gw_err sched_scan(my_drv *d, my_conn *mc, int id, int64_t now, gwi_claim *c)
{
	my_binds x;
	b_int(&x, 0, 0, (uint64_t)now);
	b_int(&x, 1, 1, c->max);
	return sched_scan_x(d, mc, id, &x, c);
}

/* sched_scan_x is sched_scan with the statement's parameters bound. */
static gw_err sched_scan_x(my_drv *d, my_conn *mc, int id, my_binds *x, gwi_claim *c)
{
	size_t max = c->max;
	gw_err e = gwi_my_exec(d, mc, id, x, "schedule claim (scan)");
	if (e != GW_OK)
		return e;
	MYSQL_STMT *st = mc->st[id];
	MYSQL_BIND r[5];
	unsigned long len[5] = {0};
	my_bool null[5] = {0};
	char idbuf[64];
	long long due = 0;
	uint8_t nonce[16];
	memset(r, 0, sizeof r);
	for (int i = 0; i < 5; i++) {
		r[i].buffer_type = MYSQL_TYPE_BLOB;
		r[i].length = &len[i];
		r[i].is_null = &null[i];
	}
	r[0].buffer = idbuf;
	r[0].buffer_length = sizeof idbuf;
	r[1].buffer_type = MYSQL_TYPE_LONGLONG;
	r[1].buffer = &due;
	r[3].buffer = nonce;
	r[3].buffer_length = sizeof nonce;
	size_t got = 0;
	int rc = 0;
	if (mysql_stmt_bind_result(st, r) != 0) {
		e = gwi_my_fail(d, mc, st, "schedule claim (bind)");
		goto out;
	}
	while (got < max && ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED)) {
		gw_sched_row *row = &c->rows[c->n];
		if (null[0] || null[1] || null[2] || null[4] || len[0] == 0 ||
		    len[0] >= sizeof row->id) {
			GW_ERROR("mariadb %s: a scheduled invocation row is malformed: skipped",
			         d->where);
			continue;
		}
		memset(row, 0, sizeof *row);
		memcpy(row->id, idbuf, len[0]);
		row->due_ms = due;
		char *key_id = NULL, *data = NULL;
		if ((e = gwi_my_fetch_bytes(d, mc, st, 2, len[2], &key_id)) != GW_OK ||
		    (e = gwi_my_fetch_bytes(d, mc, st, 4, len[4], &data)) != GW_OK) {
			free(key_id);
			goto out;
		}
		gwi_nonce_copy(row->nonce, nonce, null[3] ? 0 : len[3]);
		row->key_id = key_id;
		row->data = (uint8_t *)data;
		row->len = len[4];
		c->n++;
		got++;
	}
	if (got < max && rc != MYSQL_NO_DATA && rc != 0 && rc != MYSQL_DATA_TRUNCATED)
		e = gwi_my_fail(d, mc, st, "schedule claim (fetch)");
out:
	if (mc->m)
		mysql_stmt_free_result(st);
	return e;
}

gw_err gwi_my_sched_claim(void *drv, int64_t now, const char *owner, int64_t lease_until,
                          size_t max, gw_sched_row *rows, size_t *n)
{
	my_drv *d = drv;
	my_conn *mc = NULL;
	size_t take = 0;
	gwi_claim c;
	gw_err e = gwi_claim_init(&c, max);
	if (e == GW_OK)
		e = gwi_my_begin(d, &mc);
	if (e == GW_OK)
		e = sched_scan(d, mc, ST_SCHED_FREE, now, &c);
	if (e == GW_OK)
		e = sched_scan(d, mc, ST_SCHED_EXPIRED, now, &c);
	if (e == GW_OK)
		take = gwi_claim_pick(&c);
	/* Rows locked but not taken are released at COMMIT. */
	for (size_t i = 0; e == GW_OK && i < take; i++) {
		my_binds x;
		b_str(&x, 0, owner);
		b_int(&x, 1, 0, (uint64_t)lease_until);
		b_str(&x, 2, c.rows[i].id);
		e = gwi_my_exec(d, mc, ST_SCHED_LEASE, &x, "schedule claim (lease)");
	}
	if ((e = gwi_my_end(d, mc, e)) == GW_OK)
		gwi_claim_hand_out(&c, take, rows, n);
	gwi_claim_fini(&c);
	return e;
}

gw_err gwi_my_sched_set_aside(void *drv, const char *id)
{
	my_binds x;
	b_str(&x, 0, id);
	return gwi_my_command(drv, ST_SCHED_ASIDE, &x, "schedule set aside", NULL);
}

gw_err gwi_my_sched_done(void *drv, const char *id)
{
	my_binds x;
	b_str(&x, 0, id);
	return gwi_my_command(drv, ST_SCHED_DONE, &x, "schedule done", NULL);
}

/* One DELETE per chunk, autocommit (one transaction). The ids are spelled
 * into the statement: a prepared statement has a fixed number of
 * parameters, and ids are [A-Za-z0-9_.:-] of at most GW_SCHED_ID_MAX bytes
 * (store.c checks), so quoting each is enough. 4,096 ids make ~170 KB, far
 * below max_allowed_packet. */
gw_err gwi_my_sched_done_batch(void *drv, const char *const *ids, size_t n)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	char *sql = gwi_id_list("DELETE FROM spawn_schedule WHERE id IN (", '\'', ")", ids, n);
	if (!sql)
		return GW_ENOMEM;
	gw_err e = gwi_my_conn_acquire(d, &mc, &fresh);
	if (e == GW_OK) {
		e = gwi_my_query_first(d, mc, fresh, sql, "schedule done (batch)");
		gwi_my_conn_release(d, mc);
	}
	free(sql);
	return e;
}

gw_err gwi_my_sched_next_due(void *drv, int64_t *due_ms)
{
	my_drv *d = drv;
	my_conn *mc;
	my_binds x;
	memset(&x, 0, sizeof x);
	gw_err e = gwi_my_query(d, ST_SCHED_NEXT, &x, "schedule next due", &mc);
	if (e != GW_OK)
		return e;
	MYSQL_STMT *st = mc->st[ST_SCHED_NEXT];
	long long v[2] = {0};
	my_bool null[2] = {0};
	MYSQL_BIND r[2];
	memset(r, 0, sizeof r);
	for (int i = 0; i < 2; i++) {
		r[i].buffer_type = MYSQL_TYPE_LONGLONG;
		r[i].buffer = &v[i];
		r[i].is_null = &null[i];
	}
	if (mysql_stmt_bind_result(st, r) != 0) {
		e = gwi_my_fail(d, mc, st, "schedule next due (bind)");
		goto out;
	}
	int rc = mysql_stmt_fetch(st);
	if (rc != 0) {
		e = rc == MYSQL_NO_DATA ? GW_ECORRUPT
		                        : gwi_my_fail(d, mc, st, "schedule next due (fetch)");
		goto out;
	}
	e = GW_ENOTFOUND;
	for (int i = 0; i < 2; i++) {
		if (null[i])
			continue;
		if (e == GW_ENOTFOUND || v[i] < *due_ms)
			*due_ms = v[i];
		e = GW_OK;
	}
out:
	gwi_my_query_end(d, mc, ST_SCHED_NEXT);
	return e;
}

gw_err gwi_my_sched_count(void *drv, uint64_t *n)
{
	my_binds x;
	memset(&x, 0, sizeof x);
	return gwi_my_query_int(drv, ST_SCHED_COUNT, &x, "schedule count", n);
}

/* ---- counts for quotas ------------------------------------------------------------ */

/* each_count calls fn per (bytes, count) row of statement id. */
static gw_err each_count(my_drv *d, int id, my_binds *x, const char *what, gw_count_fn fn,
                         void *user)
{
	my_conn *mc;
	gw_err e = gwi_my_query(d, id, x, what, &mc);
	if (e != GW_OK)
		return e;
	MYSQL_STMT *st = mc->st[id];
	MYSQL_BIND r[2];
	unsigned long len = 0;
	long long n = 0;
	memset(r, 0, sizeof r);
	r[0].buffer_type = MYSQL_TYPE_BLOB;
	r[0].length = &len;
	r[1].buffer_type = MYSQL_TYPE_LONGLONG;
	r[1].buffer = &n;
	if (mysql_stmt_bind_result(st, r) != 0) {
		e = gwi_my_fail(d, mc, st, what);
		goto out;
	}
	int rc;
	/* No buffer bound for the key: each fetch measures it, fetch_bytes copies. */
	while ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
		char *key = NULL;
		if ((e = gwi_my_fetch_bytes(d, mc, st, 0, len, &key)) != GW_OK)
			goto out;
		fn(user, key, (uint64_t)n);
		free(key);
	}
	if (rc != MYSQL_NO_DATA)
		e = gwi_my_fail(d, mc, st, what);
out:
	gwi_my_query_end(d, mc, id);
	return e;
}

gw_err gwi_my_instance_counts(void *drv, gw_count_fn fn, void *user)
{
	my_binds x;
	memset(&x, 0, sizeof x);
	return each_count(drv, ST_INST_COUNTS, &x, "instance counts", fn, user);
}

gw_err gwi_my_sched_counts(void *drv, size_t prefix_len, gw_count_fn fn, void *user)
{
	my_binds x;
	memset(&x, 0, sizeof x);
	b_int(&x, 0, 0, prefix_len);
	return each_count(drv, ST_SCHED_COUNTS, &x, "schedule counts", fn, user);
}

/* ---- forget ----------------------------------------------------------------------- */

gw_err gwi_my_sched_range(void *drv, const char *after, const char *below, size_t max,
                          gw_sched_row *rows, size_t *n)
{
	my_drv *d = drv;
	my_conn *mc = NULL;
	gwi_claim c;
	my_binds x;
	b_str(&x, 0, after);
	b_str(&x, 1, below);
	b_int(&x, 2, 0, max);
	gw_err e = gwi_claim_init(&c, max);
	if (e == GW_OK)
		e = gwi_my_begin(d, &mc);
	if (e == GW_OK)
		e = sched_scan_x(d, mc, ST_SCHED_RANGE, &x, &c);
	if ((e = gwi_my_end(d, mc, e)) == GW_OK)
		gwi_claim_hand_out(&c, c.n, rows, n);
	gwi_claim_fini(&c);
	return e;
}

/* forget_key runs delete id on k in the open transaction; *n gets the rows
 * it removed. */
static gw_err forget_key(my_drv *d, my_conn *mc, int id, const gw_actor_key *k, uint64_t *n,
                         const char *what)
{
	my_binds x;
	b_key(&x, k);
	gw_err e = gwi_my_exec(d, mc, id, &x, what);
	if (e == GW_OK)
		*n = (uint64_t)mysql_stmt_affected_rows(mc->st[id]);
	return e;
}

/* The schedule ids are spelled into the DELETE as in sched_done_batch. */
gw_err gwi_my_forget(void *drv, const gw_actor_key *k, const char *const *ids, size_t n,
                     gw_forget_counts *out)
{
	my_drv *d = drv;
	my_conn *mc = NULL;
	gw_forget_counts c = {0};
	char *sql =
	    n ? gwi_id_list("DELETE FROM spawn_schedule WHERE id IN (", '\'', ")", ids, n) : NULL;
	if (n && !sql)
		return GW_ENOMEM;
	gw_err e = gwi_my_begin(d, &mc);
	if (e == GW_OK) {
		my_binds x;
		bool found = false;
		uint64_t fx = 0;
		b_key(&x, k);
		if ((e = gwi_my_exec(d, mc, ST_FORGET_FX, &x, "forget (effects)")) == GW_OK)
			e = gwi_my_fetch_int(d, mc, ST_FORGET_FX, &found, &fx);
		c.outbox = found && fx != 0;
	}
	if (e == GW_OK)
		e = forget_key(d, mc, ST_REMOVE, k, &c.state, "forget");
	if (e == GW_OK)
		e = forget_key(d, mc, ST_REMOVE_HIST, k, &c.history, "forget (history)");
	if (e == GW_OK)
		e = forget_key(d, mc, ST_FORGET_INST, k, &c.instance, "forget (instance)");
	if (e == GW_OK && sql) {
		if (mysql_real_query(mc->m, sql, strlen(sql)) != 0)
			e = gwi_my_fail(d, mc, NULL, "forget (schedules)");
		else
			c.schedules = (uint64_t)mysql_affected_rows(mc->m);
	}
	if (e == GW_OK) {
		uint64_t bumped = 0;
		e = forget_key(d, mc, ST_FORGET_EPOCH, k, &bumped, "forget (epoch)");
	}
	if ((e = gwi_my_end(d, mc, e)) == GW_OK)
		*out = c;
	free(sql);
	return e;
}

gw_err gwi_my_sched_reseal(void *drv, const gw_sched_reseal *rows, size_t n, gw_err *results)
{
	my_drv *d = drv;
	my_conn *mc = NULL;
	gw_err e = gwi_my_begin(d, &mc);
	for (size_t i = 0; e == GW_OK && i < n; i++) {
		const gw_sched_reseal *w = &rows[i];
		my_binds x;
		b_str(&x, 0, w->key_id);
		b_bytes(&x, 1, w->nonce, sizeof w->nonce);
		b_bytes(&x, 2, w->data, w->len);
		b_str(&x, 3, w->id);
		b_str(&x, 4, w->old_key_id);
		b_bytes(&x, 5, w->old_nonce, sizeof w->old_nonce);
		if ((e = gwi_my_exec(d, mc, ST_SCHED_RESEAL, &x, "schedule re-seal")) == GW_OK)
			results[i] = mysql_stmt_affected_rows(mc->st[ST_SCHED_RESEAL]) == 1
			                 ? GW_OK
			                 : GW_ECONFLICT;
	}
	if ((e = gwi_my_end(d, mc, e)) != GW_OK)
		gwi_results_set(results, n, e);
	return e;
}
