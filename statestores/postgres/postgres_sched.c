/* postgres_sched.c - the PostgreSQL driver's UNNAMED instances and
 * scheduled invocations (the design note, with sched_claim, is in
 * postgres.c). */
#include "postgres_int.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

/* ---- UNNAMED instances -------------------------------------------------------- */

gw_err gwi_pg_instance_get(void *drv, const gw_actor_key *k, char **parent)
{
	pg_drv *d = drv;
	pg_conn *pc;
	PGresult *r;
	pg_params p;
	p_key(&p, k);
	gw_err e = gwi_pg_query(d, ST_INST_GET, &p, &pc, &r);
	if (e != GW_OK)
		return e;
	if (PQntuples(r) == 0)
		e = GW_ENOTFOUND;
	else if (PQgetisnull(r, 0, 0))
		e = GW_ECORRUPT;
	else if (!(*parent = gwi_pg_dup_col(r, 0, 0)))
		e = GW_ENOMEM;
	gwi_pg_query_end(d, pc, r);
	return e;
}

gw_err gwi_pg_instance_put(void *drv, const gw_actor_key *k, const char *parent)
{
	pg_params p;
	bool inserted = false;
	p_key(&p, k);
	p_text(&p, 2, parent);
	/* Autocommit. A concurrent uncommitted insert of k makes this wait,
	 * then do nothing; the read below then sees the winner's row. */
	gw_err e = gwi_pg_command(drv, ST_INST_PUT, &p, &inserted);
	if (e != GW_OK || inserted)
		return e;
	return gwi_instance_existing(drv, gwi_pg_instance_get, k, parent);
}

/* ---- scheduled invocations ------------------------------------------------------- */

gw_err gwi_pg_sched_put(void *drv, const gw_sched_row *row)
{
	pg_params p;
	bool inserted = false;
	p_text(&p, 0, row->id);
	p_int(&p, 1, 0, (uint64_t)row->due_ms);
	p_text(&p, 2, row->key_id);
	p_bytes(&p, 3, row->nonce, sizeof row->nonce);
	p_bytes(&p, 4, row->data, row->len);
	gw_err e = gwi_pg_command(drv, ST_SCHED_PUT, &p, &inserted);
	return e == GW_OK && !inserted ? GW_ECONFLICT : e;
}

/* sched_scan runs claim scan id (now, max) in the open transaction and
 * appends its rows to c. A malformed row is skipped; a nonce of the wrong
 * size is zero-padded (the row then fails to open and the front sets it
 * aside). */
static gw_err sched_scan_p(pg_drv *d, pg_conn *pc, int id, const pg_params *p, gwi_claim *c);

static gw_err sched_scan(pg_drv *d, pg_conn *pc, int id, int64_t now, gwi_claim *c)
{
	pg_params p;
	p_int(&p, 0, 0, (uint64_t)now);
	p_int(&p, 1, 1, c->max);
	return sched_scan_p(d, pc, id, &p, c);
}

/* sched_scan_p is sched_scan with the statement's parameters given. */
static gw_err sched_scan_p(pg_drv *d, pg_conn *pc, int id, const pg_params *p, gwi_claim *c)
{
	size_t max = c->max;
	PGresult *r = gwi_pg_exec(pc, id, p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		gw_err e = gwi_pg_fail(d, pc, r, "schedule claim (scan)");
		PQclear(r);
		return e;
	}
	size_t got = 0;
	for (int i = 0; i < PQntuples(r) && got < max; i++) {
		gw_sched_row *row = &c->rows[c->n];
		uint64_t due = 0;
		int idlen = PQgetlength(r, i, 0);
		if (PQgetisnull(r, i, 0) || idlen <= 0 || idlen >= (int)sizeof row->id ||
		    !gwi_pg_get_int8(r, i, 1, &due) || PQgetisnull(r, i, 2) ||
		    PQgetisnull(r, i, 4)) {
			GW_ERROR("postgres %s: a scheduled invocation row is malformed: skipped",
			         d->where);
			continue;
		}
		memset(row, 0, sizeof *row);
		memcpy(row->id, PQgetvalue(r, i, 0), (size_t)idlen);
		row->due_ms = (int64_t)due;
		size_t len = (size_t)PQgetlength(r, i, 4);
		char *key_id = gwi_pg_dup_col(r, i, 2);
		uint8_t *data = malloc(len > 0 ? len : 1);
		if (!key_id || !data) {
			free(key_id);
			free(data);
			PQclear(r);
			return GW_ENOMEM;
		}
		memcpy(data, PQgetvalue(r, i, 4), len);
		gwi_nonce_copy(row->nonce, PQgetvalue(r, i, 3),
		               PQgetisnull(r, i, 3) ? 0 : (size_t)PQgetlength(r, i, 3));
		row->key_id = key_id;
		row->data = data;
		row->len = len;
		c->n++;
		got++;
	}
	PQclear(r);
	return GW_OK;
}

/* lease gives the first take candidates of c to owner until lease_until,
 * in the open transaction; rows locked but not taken are released at
 * COMMIT. */
static gw_err lease(pg_drv *d, pg_conn *pc, const gwi_claim *c, size_t take, const char *owner,
                    int64_t lease_until)
{
	const char **idv = malloc(take * sizeof *idv);
	for (size_t i = 0; idv && i < take; i++)
		idv[i] = c->rows[i].id;
	char *ids = idv ? gwi_id_list("{", '"', "}", idv, take) : NULL;
	free(idv);
	if (!ids)
		return GW_ENOMEM;
	pg_params p;
	p_text(&p, 0, ids);
	p_text(&p, 1, owner);
	p_int(&p, 2, 0, (uint64_t)lease_until);
	PGresult *r = gwi_pg_exec(pc, ST_SCHED_LEASE, &p);
	gw_err e = PQresultStatus(r) == PGRES_COMMAND_OK
	               ? GW_OK
	               : gwi_pg_fail(d, pc, r, "schedule claim (lease)");
	PQclear(r);
	free(ids);
	return e;
}

gw_err gwi_pg_sched_claim(void *drv, int64_t now, const char *owner, int64_t lease_until,
                          size_t max, gw_sched_row *rows, size_t *n)
{
	pg_drv *d = drv;
	pg_conn *pc = NULL;
	size_t take = 0;
	gwi_claim c;
	gw_err e = gwi_claim_init(&c, max);
	if (e == GW_OK)
		e = gwi_pg_begin(d, &pc);
	if (e == GW_OK)
		e = sched_scan(d, pc, ST_SCHED_FREE, now, &c);
	if (e == GW_OK)
		e = sched_scan(d, pc, ST_SCHED_EXPIRED, now, &c);
	if (e == GW_OK && (take = gwi_claim_pick(&c)) > 0)
		e = lease(d, pc, &c, take, owner, lease_until);
	if ((e = gwi_pg_end(d, pc, e)) == GW_OK)
		gwi_claim_hand_out(&c, take, rows, n);
	gwi_claim_fini(&c);
	return e;
}

/* sched_by_id runs statement id with $1 = the row id, or the text[] of
 * ids (autocommit). */
static gw_err sched_by_id(pg_drv *d, int id, const char *row_id)
{
	pg_params p;
	p_text(&p, 0, row_id);
	return gwi_pg_command(d, id, &p, NULL);
}

gw_err gwi_pg_sched_set_aside(void *drv, const char *id)
{
	return sched_by_id(drv, ST_SCHED_ASIDE, id);
}

gw_err gwi_pg_sched_done(void *drv, const char *id)
{
	return sched_by_id(drv, ST_SCHED_DONE, id);
}

gw_err gwi_pg_sched_done_batch(void *drv, const char *const *ids, size_t n)
{
	char *arr = gwi_id_list("{", '"', "}", ids, n);
	if (!arr)
		return GW_ENOMEM;
	gw_err e = sched_by_id(drv, ST_SCHED_DONE_BATCH, arr);
	free(arr);
	return e;
}

gw_err gwi_pg_sched_next_due(void *drv, int64_t *due_ms)
{
	pg_drv *d = drv;
	pg_conn *pc;
	PGresult *r;
	pg_params p = {0}; /* no parameters */
	gw_err e = gwi_pg_query(d, ST_SCHED_NEXT, &p, &pc, &r);
	if (e != GW_OK)
		return e;
	e = GW_ENOTFOUND;
	for (int c = 0; c < 2 && PQntuples(r) == 1; c++) {
		uint64_t v;
		if (PQgetisnull(r, 0, c))
			continue;
		if (!gwi_pg_get_int8(r, 0, c, &v)) {
			e = GW_ECORRUPT;
			break;
		}
		if (e == GW_ENOTFOUND || (int64_t)v < *due_ms)
			*due_ms = (int64_t)v;
		e = GW_OK;
	}
	gwi_pg_query_end(d, pc, r);
	return e;
}

gw_err gwi_pg_sched_count(void *drv, uint64_t *n)
{
	pg_params p = {0}; /* no parameters */
	return gwi_pg_query_int8(drv, ST_SCHED_COUNT, &p, n);
}

/* ---- counts for quotas ------------------------------------------------------------ */

/* each_count calls fn per (text, int8) row of statement id. */
static gw_err each_count(pg_drv *d, int id, const pg_params *p, gw_count_fn fn, void *user)
{
	pg_conn *pc;
	PGresult *r;
	gw_err e = gwi_pg_query(d, id, p, &pc, &r);
	if (e != GW_OK)
		return e;
	for (int i = 0; i < PQntuples(r) && e == GW_OK; i++) {
		uint64_t n;
		char *key = gwi_pg_dup_col(r, i, 0);
		if (!key)
			e = GW_ENOMEM;
		else if (!gwi_pg_get_int8(r, i, 1, &n))
			e = GW_ECORRUPT;
		else
			fn(user, key, n);
		free(key);
	}
	gwi_pg_query_end(d, pc, r);
	return e;
}

gw_err gwi_pg_instance_counts(void *drv, gw_count_fn fn, void *user)
{
	pg_params p = {0}; /* no parameters */
	return each_count(drv, ST_INST_COUNTS, &p, fn, user);
}

gw_err gwi_pg_sched_counts(void *drv, size_t prefix_len, gw_count_fn fn, void *user)
{
	pg_params p;
	p_int(&p, 0, 0, prefix_len);
	return each_count(drv, ST_SCHED_COUNTS, &p, fn, user);
}

/* ---- forget ------------------------------------------------------------------ */

gw_err gwi_pg_sched_range(void *drv, const char *after, const char *below, size_t max,
                          gw_sched_row *rows, size_t *n)
{
	pg_drv *d = drv;
	pg_conn *pc = NULL;
	gwi_claim c;
	pg_params p;
	p_text(&p, 0, after);
	p_text(&p, 1, below);
	p_int(&p, 2, 0, max);
	gw_err e = gwi_claim_init(&c, max);
	if (e == GW_OK)
		e = gwi_pg_begin(d, &pc);
	if (e == GW_OK)
		e = sched_scan_p(d, pc, ST_SCHED_RANGE, &p, &c);
	if ((e = gwi_pg_end(d, pc, e)) == GW_OK)
		gwi_claim_hand_out(&c, c.n, rows, n);
	gwi_claim_fini(&c);
	return e;
}

gw_err gwi_pg_forget(void *drv, const gw_actor_key *k, const char *const *ids, size_t n,
                     gw_forget_counts *out)
{
	pg_drv *d = drv;
	pg_conn *pc;
	PGresult *r;
	char *arr = gwi_id_list("{", '"', "}", ids, n);
	if (!arr)
		return GW_ENOMEM;
	pg_params p;
	p_key(&p, k);
	p_text(&p, 2, arr);
	gw_err e = gwi_pg_query(d, ST_FORGET, &p, &pc, &r);
	free(arr);
	if (e != GW_OK)
		return e;
	uint64_t v[5] = {0};
	for (int i = 0; i < 5; i++)
		if (PQntuples(r) != 1 || !gwi_pg_get_int8(r, 0, i, &v[i]))
			e = GW_ECORRUPT;
	gwi_pg_query_end(d, pc, r);
	if (e == GW_OK)
		*out = (gw_forget_counts){.state = v[0],
		                          .history = v[1],
		                          .instance = v[2],
		                          .schedules = v[3],
		                          .outbox = v[4]};
	return e;
}

gw_err gwi_pg_sched_reseal(void *drv, const gw_sched_reseal *rows, size_t n, gw_err *results)
{
	pg_drv *d = drv;
	pg_conn *pc = NULL;
	gw_err e = gwi_pg_begin(d, &pc);
	for (size_t i = 0; e == GW_OK && i < n; i++) {
		const gw_sched_reseal *w = &rows[i];
		pg_params p;
		p_text(&p, 0, w->id);
		p_text(&p, 1, w->key_id);
		p_bytes(&p, 2, w->nonce, sizeof w->nonce);
		p_bytes(&p, 3, w->data, w->len);
		p_text(&p, 4, w->old_key_id);
		p_bytes(&p, 5, w->old_nonce, sizeof w->old_nonce);
		PGresult *r = gwi_pg_exec(pc, ST_SCHED_RESEAL, &p);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			e = gwi_pg_fail(d, pc, r, "schedule re-seal");
		else
			results[i] = strcmp(PQcmdTuples(r), "1") == 0 ? GW_OK : GW_ECONFLICT;
		PQclear(r);
	}
	if ((e = gwi_pg_end(d, pc, e)) != GW_OK)
		gwi_results_set(results, n, e);
	return e;
}
