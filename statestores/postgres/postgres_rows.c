/* postgres_rows.c - the PostgreSQL driver's actor state rows: load, save,
 * remove, revisions, activation epochs, key-rotation scans and rewrites,
 * and the listing of rows flagged with undelivered effects (the design
 * note, with save_batch and acquire, is in postgres.c). */
#include "postgres_int.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* read_row copies the row columns (ROW_COLS, from column c) of result row i
 * into *out (owned fields). lenient (rotation scans): a bad revision or
 * epoch is taken as it is and a nonce of the wrong size is zero-padded,
 * instead of refusing the row: it then fails to open and is counted,
 * rather than stopping the rotation. out->key is left to the caller. */
static gw_err read_row(const PGresult *r, int i, int c, bool lenient, gw_row *out)
{
	uint64_t rev = 0, epoch = 0;
	bool ints = gwi_pg_get_int8(r, i, c, &rev) && gwi_pg_get_int8(r, i, c + 1, &epoch);
	int nlen = PQgetisnull(r, i, c + 3) ? -1 : PQgetlength(r, i, c + 3);
	if ((!lenient && (!ints || rev < 1 || rev > GWI_STORE_MAX_INT ||
	                  epoch > GWI_STORE_MAX_INT || nlen != (int)sizeof out->nonce)) ||
	    PQgetisnull(r, i, c + 2) || PQgetisnull(r, i, c + 4) || PQgetisnull(r, i, c + 5))
		return GW_ECORRUPT;
	size_t len = (size_t)PQgetlength(r, i, c + 4);
	char *key_id = gwi_pg_dup_col(r, i, c + 2), *type_url = gwi_pg_dup_col(r, i, c + 5);
	uint8_t *data = malloc(len > 0 ? len : 1);
	if (!key_id || !type_url || !data) {
		free(key_id);
		free(type_url);
		free(data);
		return GW_ENOMEM;
	}
	memcpy(data, PQgetvalue(r, i, c + 4), len);
	out->revision = rev;
	out->expected = 0;
	out->epoch = epoch;
	out->key_id = key_id;
	gwi_nonce_copy(out->nonce, PQgetvalue(r, i, c + 3), nlen > 0 ? (size_t)nlen : 0);
	out->data = data;
	out->len = len;
	out->type_url = type_url;
	return GW_OK;
}

/* load_one runs a single-row query (id, parameters p) for k. */
static gw_err load_one(pg_drv *d, int id, const pg_params *p, const gw_actor_key *k, gw_row *out)
{
	pg_conn *pc;
	PGresult *r;
	gw_err e = gwi_pg_query(d, id, p, &pc, &r);
	if (e != GW_OK)
		return e;
	if (PQntuples(r) == 0)
		e = GW_ENOTFOUND;
	else if ((e = read_row(r, 0, 0, false, out)) == GW_OK)
		out->key = *k;
	else if (e == GW_ECORRUPT)
		GW_ERROR("postgres %s: row %s/%s is malformed", d->where, k->system, k->name);
	gwi_pg_query_end(d, pc, r);
	return e;
}

gw_err gwi_pg_load(void *drv, const gw_actor_key *k, gw_row *out)
{
	pg_params p;
	p_key(&p, k);
	return load_one(drv, ST_LOAD, &p, k, out);
}

gw_err gwi_pg_load_revision(void *drv, const gw_actor_key *k, uint64_t revision, gw_row *out)
{
	pg_params p;
	p_key(&p, k);
	p_int(&p, 2, 0, revision);
	return load_one(drv, ST_LOAD_REV, &p, k, out);
}

gw_err gwi_pg_list_revisions(void *drv, const gw_actor_key *k, uint64_t *revs, size_t cap,
                             size_t *n)
{
	pg_drv *d = drv;
	pg_conn *pc;
	PGresult *r;
	pg_params p;
	p_key(&p, k);
	p_int(&p, 2, 0, cap > GWI_STORE_MAX_INT ? GWI_STORE_MAX_INT : cap);
	gw_err e = gwi_pg_query(d, ST_LIST, &p, &pc, &r);
	if (e != GW_OK)
		return e;
	size_t got = 0;
	for (int i = 0; i < PQntuples(r) && got < cap; i++) {
		if (!gwi_pg_get_int8(r, i, 0, &revs[got])) {
			e = GW_ECORRUPT;
			goto out;
		}
		got++;
	}
	*n = got;
out:
	gwi_pg_query_end(d, pc, r);
	return e;
}

gw_err gwi_pg_acquire(void *drv, const gw_actor_key *k, uint64_t *epoch)
{
	pg_params p;
	p_key(&p, k);
	/* Autocommit: the new epoch is committed when the call returns. */
	return gwi_pg_query_int8(drv, ST_ACQUIRE, &p, epoch);
}

/* row_params fills $1..$8 of a write, and $9 = extra. */
static void row_params(pg_params *p, const gw_row *row, uint64_t extra)
{
	p_key(p, &row->key);
	p_int(p, 2, 0, row->revision);
	p_int(p, 3, 1, row->epoch);
	p_text(p, 4, row->key_id);
	p_bytes(p, 5, row->nonce, sizeof row->nonce);
	p_bytes(p, 6, row->data, row->len);
	p_text(p, 7, row->type_url);
	p_int(p, 8, 2, extra);
}

/* fence reads the actor's current epoch FOR SHARE inside the open
 * transaction: *fenced unless it is row->epoch (no row: current 0). */
static gw_err fence(pg_drv *d, pg_conn *pc, const gw_row *row, bool *fenced)
{
	pg_params p;
	p_key(&p, &row->key);
	PGresult *r = gwi_pg_exec(pc, ST_FENCE, &p);
	gw_err e = GW_OK;
	uint64_t epoch;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		e = gwi_pg_fail(d, pc, r, "save (fence)");
	else if (PQntuples(r) == 0)
		*fenced = true;
	else if (gwi_pg_get_int8(r, 0, 0, &epoch))
		*fenced = epoch != row->epoch;
	else
		e = GW_ECORRUPT;
	PQclear(r);
	return e;
}

/* save_row runs one fenced, conditional write inside the open transaction.
 * The return value is a batch-level error; *result the row's outcome. */
static gw_err save_row(pg_drv *d, pg_conn *pc, const gw_row *row, gw_err *result)
{
	pg_params p;
	gw_err e;
	if (row->epoch != 0) {
		bool fenced = false;
		if ((e = fence(d, pc, row, &fenced)) != GW_OK)
			return e;
		if (fenced) {
			*result = GW_EFENCED;
			return GW_OK;
		}
	}
	row_params(&p, row, row->expected);
	if (row->expected == 0)
		p_int(&p, 8, 2, (uint64_t)row->effects); /* INSERT: $9 */
	else
		p_int(&p, 9, 3, (uint64_t)row->effects); /* UPDATE: $10 */
	PGresult *r = gwi_pg_exec(pc, row->expected == 0 ? ST_INSERT : ST_UPDATE, &p);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		e = gwi_pg_fail(d, pc, r, "save");
		PQclear(r);
		return e;
	}
	bool changed = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	if (!changed) {
		*result = GW_ECONFLICT;
		return GW_OK;
	}
	if (d->history > 0) {
		/* Keep revisions (new - history) .. new. */
		row_params(&p, row, gwi_history_keep(row->revision, d->history));
		r = gwi_pg_exec(pc, ST_HIST_PUT, &p);
		e = PQresultStatus(r) == PGRES_COMMAND_OK ? GW_OK
		                                          : gwi_pg_fail(d, pc, r, "save (history)");
		PQclear(r);
		if (e != GW_OK)
			return e;
	}
	*result = GW_OK;
	return GW_OK;
}

/* ---- bulk saves ----------------------------------------------------------------- */

/* A one-dimensional array parameter in PostgreSQL's binary format: ndim,
 * has-null, element type, length, lower bound, then each element as a
 * 4-byte length and its bytes; every integer big-endian. */
typedef struct pg_arr {
	uint8_t *buf; /* owned */
	size_t len, cap;
	bool nomem;
} pg_arr;

static void arr_raw(pg_arr *a, const void *p, size_t len)
{
	if (a->nomem)
		return;
	if (len > a->cap - a->len) {
		size_t cap = a->cap ? a->cap : 256;
		while (len > cap - a->len)
			cap *= 2;
		uint8_t *b = realloc(a->buf, cap);
		if (!b) {
			a->nomem = true;
			return;
		}
		a->buf = b;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, p, len);
	a->len += len;
}

static void arr_u32(pg_arr *a, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	arr_raw(a, b, sizeof b);
}

static void arr_start(pg_arr *a, uint32_t elem_oid, size_t n)
{
	*a = (pg_arr){0};
	arr_u32(a, 1);
	arr_u32(a, 0);
	arr_u32(a, elem_oid);
	arr_u32(a, (uint32_t)n);
	arr_u32(a, 1);
}

static void arr_bytes(pg_arr *a, const void *p, size_t len)
{
	arr_u32(a, (uint32_t)len);
	arr_raw(a, p, len);
}

static void arr_text(pg_arr *a, const char *s)
{
	arr_bytes(a, s, strlen(s));
}

static void arr_int(pg_arr *a, uint64_t v, size_t size)
{
	uint8_t b[8];
	for (size_t i = 0; i < size; i++)
		b[i] = (uint8_t)(v >> (8 * (size - 1 - i)));
	arr_bytes(a, b, size);
}

/* The element type OIDs of the save arrays (catalog/pg_type.h). */
enum { EL_BYTEA = 17, EL_INT8 = 20, EL_INT2 = 21, EL_TEXT = 25 };

/* The columns of a segment's write, in SAVE_BULK's order ($1..$11). */
enum {
	A_SYS,
	A_NAME,
	A_REV,
	A_EPOCH,
	A_KEY_ID,
	A_NONCE,
	A_DATA,
	A_TYPE,
	A_EFFECTS,
	A_EXP,
	A_KEEP,
	A_N
};

/* arr_params points p at arrays a[0..n) (binary parameters): GW_ENOMEM when
 * one failed, GW_ETOOBIG when one is past what a parameter can carry. */
static gw_err arr_params(pg_params *p, pg_arr *a, int n)
{
	for (int i = 0; i < n; i++) {
		if (a[i].nomem)
			return GW_ENOMEM;
		if (a[i].len > INT32_MAX)
			return GW_ETOOBIG;
		p_bytes(p, i, a[i].buf, a[i].len);
	}
	return GW_OK;
}

static void arrs_free(pg_arr *a, int n)
{
	for (int i = 0; i < n; i++)
		free(a[i].buf);
}

/* A segment: rows[0..n) of distinct keys, their keys sorted (keys,
 * by_key) to match what the statements return. */
typedef struct pg_seg {
	const gw_row *rows;
	size_t n;
	gw_actor_key *keys;          /* owned, n */
	const gw_actor_key **by_key; /* owned, n */
	gw_err *results;             /* the batch's, from rows[0] */
} pg_seg;

/* seg_find maps a returned (system, name) to the segment's row, or
 * SIZE_MAX. */
static size_t seg_find(const pg_seg *g, const PGresult *r, int i)
{
	return gwi_keys_find(g->keys, g->by_key, g->n, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
}

/* seg_fence reads the epochs of the segment's fenced rows in one
 * statement, FOR SHARE in key order, and sets results[i] = GW_EFENCED for
 * each row whose epoch is not the current one (no epoch row: current 0). */
static gw_err seg_fence(pg_drv *d, pg_conn *pc, pg_seg *g)
{
	pg_arr a[2];
	size_t nf = 0;
	for (size_t i = 0; i < g->n; i++)
		nf += g->rows[i].epoch != 0;
	if (nf == 0)
		return GW_OK;
	arr_start(&a[0], EL_TEXT, nf);
	arr_start(&a[1], EL_TEXT, nf);
	for (size_t i = 0; i < g->n; i++) {
		if (g->rows[i].epoch == 0)
			continue;
		arr_text(&a[0], g->rows[i].key.system);
		arr_text(&a[1], g->rows[i].key.name);
		g->results[i] = GW_EFENCED; /* until its epoch row says otherwise */
	}
	pg_params p;
	gw_err e = arr_params(&p, a, 2);
	PGresult *r = NULL;
	if (e == GW_OK) {
		r = gwi_pg_exec(pc, ST_FENCE_BULK, &p);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			e = gwi_pg_fail(d, pc, r, "save (fence)");
	}
	for (int i = 0; e == GW_OK && i < PQntuples(r); i++) {
		size_t at = seg_find(g, r, i);
		uint64_t epoch;
		if (at == SIZE_MAX || g->rows[at].epoch == 0 || !gwi_pg_get_int8(r, i, 2, &epoch)) {
			GW_ERROR("postgres %s: save (fence) returned an unexpected row", d->where);
			e = GW_ECORRUPT;
		} else if (epoch == g->rows[at].epoch) {
			g->results[at] = GW_ECONFLICT; /* not fenced; a conflict until written */
		}
	}
	PQclear(r);
	arrs_free(a, 2);
	return e;
}

/* seg_write writes the segment's rows that are not fenced with one
 * statement (and their history, with the same statement): GW_OK for the
 * rows it returns, GW_ECONFLICT for the others. */
static gw_err seg_write(pg_drv *d, pg_conn *pc, pg_seg *g)
{
	static const uint32_t elem[A_N] = {EL_TEXT,  EL_TEXT, EL_INT8, EL_INT8, EL_TEXT, EL_BYTEA,
	                                   EL_BYTEA, EL_TEXT, EL_INT2, EL_INT8, EL_INT8};
	pg_arr a[A_N];
	size_t nw = 0;
	for (size_t i = 0; i < g->n; i++) {
		if (g->rows[i].epoch == 0)
			g->results[i] = GW_ECONFLICT; /* until written */
		nw += g->results[i] == GW_ECONFLICT;
	}
	if (nw == 0)
		return GW_OK;
	for (int c = 0; c < A_N; c++)
		arr_start(&a[c], elem[c], nw);
	for (size_t i = 0; i < g->n; i++) {
		const gw_row *row = &g->rows[i];
		if (g->results[i] != GW_ECONFLICT)
			continue;
		arr_text(&a[A_SYS], row->key.system);
		arr_text(&a[A_NAME], row->key.name);
		arr_int(&a[A_REV], row->revision, 8);
		arr_int(&a[A_EPOCH], row->epoch, 8);
		arr_text(&a[A_KEY_ID], row->key_id);
		arr_bytes(&a[A_NONCE], row->nonce, sizeof row->nonce);
		arr_bytes(&a[A_DATA], row->data, row->len);
		arr_text(&a[A_TYPE], row->type_url);
		arr_int(&a[A_EFFECTS], row->effects ? 1 : 0, 2);
		arr_int(&a[A_EXP], row->expected, 8);
		arr_int(&a[A_KEEP],
		        d->history > 0 ? gwi_history_keep(row->revision, d->history) : 0, 8);
	}
	pg_params p;
	gw_err e = arr_params(&p, a, A_N);
	PGresult *r = NULL;
	if (e == GW_OK) {
		r = gwi_pg_exec(pc, d->history > 0 ? ST_SAVE_BULK_HIST : ST_SAVE_BULK, &p);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			e = gwi_pg_fail(d, pc, r, "save");
	}
	for (int i = 0; e == GW_OK && i < PQntuples(r); i++) {
		size_t at = seg_find(g, r, i);
		if (at == SIZE_MAX || g->results[at] != GW_ECONFLICT) {
			GW_ERROR("postgres %s: save returned an unexpected row", d->where);
			e = GW_ECORRUPT;
		} else {
			g->results[at] = GW_OK;
		}
	}
	PQclear(r);
	arrs_free(a, A_N);
	return e;
}

/* save_segment saves rows[0..n) (distinct keys; n >= 2) in two statements:
 * the fence, then the writes. */
static gw_err save_segment(pg_drv *d, pg_conn *pc, const gw_row *rows, size_t n, gw_err *results)
{
	pg_seg g = {rows, n, malloc(n * sizeof *g.keys), malloc(n * sizeof *g.by_key), results};
	gw_err e = GW_ENOMEM;
	if (g.keys && g.by_key) {
		for (size_t i = 0; i < n; i++)
			g.keys[i] = rows[i].key;
		gwi_keys_sort(g.keys, n, g.by_key);
		if ((e = seg_fence(d, pc, &g)) == GW_OK)
			e = seg_write(d, pc, &g);
	}
	free(g.keys);
	free(g.by_key);
	return e;
}

/* save_batch: in segments of up to GWI_SAVE_SEGMENT rows of distinct keys
 * (gwi_save_segment), two statements each; a segment of one row goes the
 * way of one row (save_row: it costs no more). */
gw_err gwi_pg_save_batch(void *drv, const gw_row *rows, size_t n, gw_err *results)
{
	pg_drv *d = drv;
	pg_conn *pc = NULL;
	if (n == 0)
		return GW_OK;
	gw_err e = gwi_pg_begin(d, &pc);
	for (size_t i = 0, k; e == GW_OK && i < n; i += k) {
		k = gwi_save_segment(&rows[i], n - i, GWI_SAVE_SEGMENT, SIZE_MAX);
		e = k == 1 ? save_row(d, pc, &rows[i], &results[i])
		           : save_segment(d, pc, &rows[i], k, &results[i]);
	}
	if ((e = gwi_pg_end(d, pc, e)) != GW_OK)
		gwi_results_set(results, n, e);
	return e;
}

gw_err gwi_pg_remove(void *drv, const gw_actor_key *k)
{
	pg_params p;
	p_key(&p, k);
	return gwi_pg_command(drv, ST_REMOVE, &p, NULL);
}

/* ---- rotation ---------------------------------------------------------------- */

gw_err gwi_pg_rot_count(void *drv, const char *primary, uint64_t *n)
{
	pg_params p;
	p_text(&p, 0, primary);
	return gwi_pg_query_int8(drv, ST_ROT_COUNT, &p, n);
}

gw_err gwi_pg_rot_scan(void *drv, const gw_rot_cursor *after, const char *primary, gw_row *rows,
                       size_t max, size_t *n)
{
	pg_drv *d = drv;
	pg_conn *pc;
	PGresult *r;
	bool hist = after->table == GW_ROT_HISTORY;
	size_t got = 0;
	pg_params p;
	p_text(&p, 0, primary);
	p_text(&p, 1, after->key.system);
	p_text(&p, 2, after->key.name);
	if (hist)
		p_int(&p, 3, 0, after->revision);
	p_int(&p, hist ? 4 : 3, 1, max);
	gw_err e = gwi_pg_query(d, hist ? ST_ROT_SCAN_HIST : ST_ROT_SCAN_STATE, &p, &pc, &r);
	if (e != GW_OK)
		return e;
	for (int i = 0; i < PQntuples(r) && got < max; i++) {
		gw_row *row = &rows[got];
		char *sys = gwi_pg_dup_col(r, i, 0), *name = gwi_pg_dup_col(r, i, 1);
		e = sys && name ? read_row(r, i, 2, true, row) : GW_ENOMEM;
		if (e != GW_OK) {
			free(sys);
			free(name);
			gwi_scan_rows_fini(rows, got);
			goto out;
		}
		row->key.system = sys;
		row->key.name = name;
		got++;
	}
	*n = got;
out:
	gwi_pg_query_end(d, pc, r);
	return e;
}

gw_err gwi_pg_rot_rewrite(void *drv, int table, const gw_rewrite *rows, size_t n, gw_err *results)
{
	pg_drv *d = drv;
	pg_conn *pc = NULL;
	int id = table == GW_ROT_HISTORY ? ST_ROT_WRITE_HIST : ST_ROT_WRITE_STATE;
	gw_err e = gwi_pg_begin(d, &pc);
	for (size_t i = 0; e == GW_OK && i < n; i++) {
		const gw_rewrite *w = &rows[i];
		pg_params p;
		p_key(&p, &w->key);
		p_int(&p, 2, 0, w->revision);
		p_text(&p, 3, w->key_id);
		p_bytes(&p, 4, w->nonce, sizeof w->nonce);
		p_bytes(&p, 5, w->data, w->len);
		p_text(&p, 6, w->old_key_id);
		p_bytes(&p, 7, w->old_nonce, sizeof w->old_nonce);
		PGresult *r = gwi_pg_exec(pc, id, &p);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			e = gwi_pg_fail(d, pc, r, "rotation rewrite");
		else
			results[i] = strcmp(PQcmdTuples(r), "1") == 0 ? GW_OK : GW_ECONFLICT;
		PQclear(r);
	}
	if ((e = gwi_pg_end(d, pc, e)) != GW_OK)
		gwi_results_set(results, n, e);
	return e;
}

/* ---- undelivered side effects ------------------------------------------------------ */

gw_err gwi_pg_effects_list(void *drv, const gw_actor_key *after, size_t max, gw_actor_key *out,
                           size_t *n)
{
	pg_drv *d = drv;
	pg_conn *pc;
	PGresult *r;
	size_t got = 0;
	pg_params p;
	p_key(&p, after);
	p_int(&p, 2, 0, max > GWI_STORE_MAX_INT ? GWI_STORE_MAX_INT : max);
	gw_err e = gwi_pg_query(d, ST_EFFECTS_LIST, &p, &pc, &r);
	if (e != GW_OK)
		return e;
	for (int i = 0; i < PQntuples(r) && got < max; i++) {
		char *sys = gwi_pg_dup_col(r, i, 0), *name = gwi_pg_dup_col(r, i, 1);
		if (!sys || !name) {
			free(sys);
			free(name);
			gw_keys_fini(out, got);
			e = GW_ENOMEM;
			goto out;
		}
		out[got].system = sys;
		out[got].name = name;
		got++;
	}
	*n = got;
out:
	gwi_pg_query_end(d, pc, r);
	return e;
}

/* ---- batched activation ------------------------------------------------------ */

/* text_array spells the systems (names: the names) of keys[0..n) as a
 * text[] literal, every element quoted with '"' and '\\' escaped. Caller
 * frees; NULL: no memory. */
static char *text_array(const gw_actor_key *keys, size_t n, bool names)
{
	size_t cap = 3;
	for (size_t i = 0; i < n; i++)
		cap += 2 * strlen(names ? keys[i].name : keys[i].system) + 3;
	char *out = malloc(cap), *w = out;
	if (!out)
		return NULL;
	*w++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*w++ = ',';
		*w++ = '"';
		for (const char *c = names ? keys[i].name : keys[i].system; *c; c++) {
			if (*c == '"' || *c == '\\')
				*w++ = '\\';
			*w++ = *c;
		}
		*w++ = '"';
	}
	*w++ = '}';
	*w = '\0';
	return out;
}

/* take_epochs matches the rows RETURNING (system, name, epoch) gave to
 * their keys: every key exactly one epoch, else GW_ECORRUPT. */
static gw_err take_epochs(pg_drv *d, const PGresult *r, const gw_actor_key *keys,
                          const gw_actor_key *const *by_key, size_t n, uint64_t *epochs)
{
	for (size_t i = 0; i < n; i++)
		epochs[i] = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		uint64_t v = 0;
		size_t at =
		    gwi_keys_find(keys, by_key, n, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		if (at == SIZE_MAX || !gwi_pg_get_int8(r, i, 2, &v) || v == 0 || epochs[at] != 0) {
			GW_ERROR("postgres %s: batched acquire returned an unexpected row",
			         d->where);
			return GW_ECORRUPT;
		}
		epochs[at] = v;
	}
	for (size_t i = 0; i < n; i++)
		if (epochs[i] == 0) {
			GW_ERROR("postgres %s: batched acquire gave %s/%s no epoch", d->where,
			         keys[i].system, keys[i].name);
			return GW_ECORRUPT;
		}
	return GW_OK;
}

/* take_rows reads the latest rows the load returned into rows[] by key. */
static gw_err take_rows(pg_drv *d, const PGresult *r, const gw_actor_key *keys,
                        const gw_actor_key *const *by_key, size_t n, gw_row *rows, gw_err *results)
{
	for (int i = 0; i < PQntuples(r); i++) {
		size_t at =
		    gwi_keys_find(keys, by_key, n, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		if (at == SIZE_MAX || results[at] != GW_ENOTFOUND)
			continue; /* not asked for (cannot happen: the primary key) */
		gw_err e = read_row(r, i, 2, false, &rows[at]);
		if (e == GW_ECORRUPT)
			GW_ERROR("postgres %s: row %s/%s is malformed", d->where, keys[at].system,
			         keys[at].name);
		else if (e != GW_OK)
			return e;
		else
			rows[at].key = keys[at];
		results[at] = e;
	}
	return GW_OK;
}

/* activate_batch: two statements, two round trips. The upsert of every
 * epoch row commits on its own (autocommit: one statement, one
 * transaction), waiting, like acquire, for the saves holding those rows
 * FOR SHARE; the load is a second statement, so its snapshot is taken
 * after that commit and sees every save that committed before it. (One
 * statement with both would read a snapshot from before its lock waits.) */
gw_err gwi_pg_activate_batch(void *drv, const gw_actor_key *keys, size_t n, uint64_t *epochs,
                             gw_row *rows, gw_err *results)
{
	pg_drv *d = drv;
	const gw_actor_key **by_key = malloc(n * sizeof *by_key);
	char *sys = text_array(keys, n, false), *names = text_array(keys, n, true);
	pg_conn *pc = NULL;
	PGresult *r = NULL;
	pg_params p;
	gw_err e = GW_ENOMEM;
	if (!by_key || !sys || !names)
		goto out;
	gwi_keys_sort(keys, n, by_key);
	p_text(&p, 0, sys);
	p_text(&p, 1, names);
	if ((e = gwi_pg_query(d, ST_ACQUIRE_BATCH, &p, &pc, &r)) != GW_OK)
		goto out;
	e = take_epochs(d, r, keys, by_key, n, epochs);
	gwi_pg_query_end(d, pc, r);
	if (e != GW_OK || (e = gwi_pg_query(d, ST_LOAD_BATCH, &p, &pc, &r)) != GW_OK)
		goto out;
	gwi_results_set(results, n, GW_ENOTFOUND);
	e = take_rows(d, r, keys, by_key, n, rows, results);
	gwi_pg_query_end(d, pc, r);
	if (e != GW_OK)
		gwi_rows_fini(rows, n);
out:
	free(by_key);
	free(sys);
	free(names);
	return e;
}

/* ---- activation leases ------------------------------------------------------- */

/* take_lease reads what ST_LEASE_TAKE returned (system, name, epoch or
 * NULL, owner) into epochs[] and holders[] by key: every key one row. */
static gw_err take_lease(pg_drv *d, const PGresult *r, const gw_actor_key *keys,
                         const gw_actor_key *const *by_key, size_t n, uint64_t *epochs,
                         char (*holders)[GW_MEMBER_ID_MAX + 1])
{
	bool *seen = calloc(n, sizeof *seen);
	if (!seen)
		return GW_ENOMEM;
	gw_err e = GW_OK;
	for (int i = 0; i < PQntuples(r) && e == GW_OK; i++) {
		size_t at =
		    gwi_keys_find(keys, by_key, n, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		if (at == SIZE_MAX || seen[at]) {
			e = GW_ECORRUPT;
			break;
		}
		seen[at] = true;
		epochs[at] = 0;
		holders[at][0] = '\0';
		if (!PQgetisnull(r, i, 2)) {
			if (!gwi_pg_get_int8(r, i, 2, &epochs[at]) || epochs[at] == 0)
				e = GW_ECORRUPT;
		} else if (!PQgetisnull(r, i, 3)) {
			snprintf(holders[at], sizeof holders[at], "%s", PQgetvalue(r, i, 3));
		}
	}
	for (size_t i = 0; e == GW_OK && i < n; i++)
		if (!seen[i])
			e = GW_ECORRUPT; /* the row LOCK made is not there */
	if (e == GW_ECORRUPT)
		GW_ERROR("postgres %s: the lease statement returned unexpected rows", d->where);
	free(seen);
	return e;
}

gw_err gwi_pg_lease_activate(void *drv, const gw_actor_key *keys, size_t n, const char *member,
                             uint64_t *epochs, char (*holders)[GW_MEMBER_ID_MAX + 1], gw_row *rows,
                             gw_err *results)
{
	pg_drv *d = drv;
	const gw_actor_key **by_key = malloc(n * sizeof *by_key);
	gw_actor_key *taken = malloc(n * sizeof *taken);
	char *sys = text_array(keys, n, false), *names = text_array(keys, n, true);
	char *tsys = NULL, *tnames = NULL;
	pg_conn *pc = NULL;
	PGresult *r = NULL;
	pg_params p;
	gw_err e = GW_ENOMEM;
	if (!by_key || !taken || !sys || !names)
		goto out;
	gwi_keys_sort(keys, n, by_key);
	p_text(&p, 0, sys);
	p_text(&p, 1, names);
	p_text(&p, 2, member);
	if ((e = gwi_pg_begin(d, &pc)) != GW_OK)
		goto out;
	r = gwi_pg_exec(pc, ST_LEASE_LOCK, &p);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		e = gwi_pg_fail(d, pc, r, "lease (lock)");
	} else {
		PQclear(r);
		r = gwi_pg_exec(pc, ST_LEASE_TAKE, &p);
		e = PQresultStatus(r) == PGRES_TUPLES_OK
		        ? take_lease(d, r, keys, by_key, n, epochs, holders)
		        : gwi_pg_fail(d, pc, r, "lease (take)");
	}
	PQclear(r);
	r = NULL;
	if ((e = gwi_pg_end(d, pc, e)) != GW_OK || !rows)
		goto out;
	/* After the commit, the rows of the keys that took an epoch. */
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		results[i] = epochs[i] ? GW_ENOTFOUND : GW_EOWNED;
		if (epochs[i])
			taken[m++] = keys[i];
	}
	if (m == 0)
		goto out;
	tsys = text_array(taken, m, false);
	tnames = text_array(taken, m, true);
	if (!tsys || !tnames) {
		e = GW_ENOMEM;
		goto out;
	}
	p_text(&p, 0, tsys);
	p_text(&p, 1, tnames);
	if ((e = gwi_pg_query(d, ST_LOAD_BATCH, &p, &pc, &r)) != GW_OK)
		goto out;
	for (int i = 0; i < PQntuples(r) && e == GW_OK; i++) {
		size_t k = gwi_keys_find(keys, by_key, n, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		if (k == SIZE_MAX || results[k] != GW_ENOTFOUND)
			continue; /* not asked for (cannot happen: the primary key) */
		gw_err re = read_row(r, i, 2, false, &rows[k]);
		if (re == GW_ECORRUPT)
			GW_ERROR("postgres %s: row %s/%s is malformed", d->where, keys[k].system,
			         keys[k].name);
		else if (re != GW_OK)
			e = re;
		else
			rows[k].key = keys[k];
		if (re == GW_OK || re == GW_ECORRUPT)
			results[k] = re;
	}
	gwi_pg_query_end(d, pc, r);
	if (e != GW_OK)
		gwi_rows_fini(rows, n);
out:
	free(by_key);
	free(taken);
	free(sys);
	free(names);
	free(tsys);
	free(tnames);
	return e;
}

/* int8_array spells epochs[0..n) as an int8[] literal. Caller frees. */
static char *int8_array(const uint64_t *v, size_t n)
{
	char *out = malloc(n * 21 + 3), *w = out;
	if (!out)
		return NULL;
	*w++ = '{';
	for (size_t i = 0; i < n; i++)
		w += sprintf(w, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
	*w++ = '}';
	*w = '\0';
	return out;
}

gw_err gwi_pg_lease_release(void *drv, const gw_actor_key *keys, const uint64_t *epochs, size_t n,
                            const char *member, uint64_t *released)
{
	pg_drv *d = drv;
	char *sys = text_array(keys, n, false), *names = text_array(keys, n, true);
	char *ep = int8_array(epochs, n);
	pg_conn *pc = NULL;
	PGresult *r = NULL;
	pg_params p;
	gw_err e = GW_ENOMEM;
	if (sys && names && ep) {
		p_text(&p, 0, sys);
		p_text(&p, 1, names);
		p_text(&p, 2, ep);
		p_text(&p, 3, member);
		if ((e = gwi_pg_query(d, ST_LEASE_RELEASE, &p, &pc, &r)) == GW_OK) {
			*released = (uint64_t)PQntuples(r);
			gwi_pg_query_end(d, pc, r);
		}
	}
	free(sys);
	free(names);
	free(ep);
	return e;
}
