/* mariadb_rows.c - the MariaDB driver's actor state rows: load, save,
 * remove, revisions, activation epochs, key-rotation scans and rewrites,
 * and the listing of rows flagged with undelivered effects (the design
 * note, with save_batch and acquire, is in mariadb.c). */
#include "mariadb_int.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>

/* Result buffers of a row query: [system, name,] ROW_COLS (mariadb_conn.c).
 * Fixed columns land in place; variable ones are measured, then fetched
 * (gwi_my_fetch_bytes). */
typedef struct row_binds {
	MYSQL_BIND r[8];
	unsigned long len[8];
	my_bool null[8];
	long long rev, epoch;
	uint8_t nonce[16];
	int c; /* the column of revision: 0, or 2 after system and name */
} row_binds;

static gw_err row_bind(my_drv *d, my_conn *mc, MYSQL_STMT *st, row_binds *rb, bool with_key)
{
	memset(rb, 0, sizeof *rb);
	int c = rb->c = with_key ? 2 : 0;
	for (int i = 0; i < c + 6; i++) {
		rb->r[i].buffer_type = MYSQL_TYPE_BLOB;
		rb->r[i].length = &rb->len[i];
		rb->r[i].is_null = &rb->null[i];
	}
	rb->r[c].buffer_type = rb->r[c + 1].buffer_type = MYSQL_TYPE_LONGLONG;
	rb->r[c].buffer = &rb->rev;
	rb->r[c + 1].buffer = &rb->epoch;
	rb->r[c + 3].buffer = rb->nonce;
	rb->r[c + 3].buffer_length = sizeof rb->nonce;
	if (mysql_stmt_bind_result(st, rb->r) != 0)
		return gwi_my_fail(d, mc, st, "load (bind)");
	return GW_OK;
}

/* row_take copies the row just fetched into *out (owned fields; with the
 * key columns, out->key owned too). lenient (rotation scans): a bad
 * revision or epoch is taken as it is and a nonce of the wrong size is
 * zero-padded: the row then fails to open and is counted, rather than
 * stopping the rotation. */
static gw_err row_take(my_drv *d, my_conn *mc, MYSQL_STMT *st, row_binds *rb, bool lenient,
                       gw_row *out)
{
	int c = rb->c;
	char *sys = NULL, *name = NULL, *key_id = NULL, *type_url = NULL, *data = NULL;
	gw_err e = GW_ECORRUPT;
	for (int i = 0; i < c + 6; i++)
		if (rb->null[i])
			goto fail;
	if (!lenient && (rb->rev < 1 || rb->epoch < 0 || rb->len[c + 3] != sizeof out->nonce))
		goto fail;
	if ((c && ((e = gwi_my_fetch_bytes(d, mc, st, 0, rb->len[0], &sys)) != GW_OK ||
	           (e = gwi_my_fetch_bytes(d, mc, st, 1, rb->len[1], &name)) != GW_OK)) ||
	    (e = gwi_my_fetch_bytes(d, mc, st, c + 2, rb->len[c + 2], &key_id)) != GW_OK ||
	    (e = gwi_my_fetch_bytes(d, mc, st, c + 4, rb->len[c + 4], &data)) != GW_OK ||
	    (e = gwi_my_fetch_bytes(d, mc, st, c + 5, rb->len[c + 5], &type_url)) != GW_OK)
		goto fail;
	if (c) {
		out->key.system = sys;
		out->key.name = name;
	}
	out->revision = (uint64_t)rb->rev;
	out->expected = 0;
	out->epoch = (uint64_t)rb->epoch;
	out->key_id = key_id;
	gwi_nonce_copy(out->nonce, rb->nonce, rb->len[c + 3]);
	out->data = (uint8_t *)data;
	out->len = rb->len[c + 4];
	out->type_url = type_url;
	return GW_OK;
fail:
	free(sys);
	free(name);
	free(key_id);
	free(type_url);
	free(data);
	return e;
}

/* load_one runs the single-row query id (binds x) for k. */
static gw_err load_one(my_drv *d, int id, my_binds *x, const gw_actor_key *k, gw_row *out)
{
	my_conn *mc;
	row_binds rb;
	gw_err e = gwi_my_query(d, id, x, "load", &mc);
	if (e != GW_OK)
		return e;
	MYSQL_STMT *st = mc->st[id];
	if ((e = row_bind(d, mc, st, &rb, false)) != GW_OK)
		goto out;
	int rc = mysql_stmt_fetch(st);
	if (rc == MYSQL_NO_DATA) {
		e = GW_ENOTFOUND;
		goto out;
	}
	if (rc != 0 && rc != MYSQL_DATA_TRUNCATED) {
		e = gwi_my_fail(d, mc, st, "load (fetch)");
		goto out;
	}
	if ((e = row_take(d, mc, st, &rb, false, out)) == GW_OK)
		out->key = *k;
	else if (e == GW_ECORRUPT)
		GW_ERROR("mariadb %s: row %s/%s is malformed", d->where, k->system, k->name);
out:
	gwi_my_query_end(d, mc, id);
	return e;
}

gw_err gwi_my_load(void *drv, const gw_actor_key *k, gw_row *out)
{
	my_binds x;
	b_key(&x, k);
	return load_one(drv, ST_LOAD, &x, k, out);
}

gw_err gwi_my_load_revision(void *drv, const gw_actor_key *k, uint64_t revision, gw_row *out)
{
	my_binds x;
	b_key(&x, k);
	b_int(&x, 2, 0, revision);
	b_str(&x, 3, k->system);
	b_str(&x, 4, k->name);
	b_int(&x, 5, 0, revision);
	return load_one(drv, ST_LOAD_REV, &x, k, out);
}

gw_err gwi_my_list_revisions(void *drv, const gw_actor_key *k, uint64_t *revs, size_t cap,
                             size_t *n)
{
	my_drv *d = drv;
	my_conn *mc;
	my_binds x;
	b_key(&x, k);
	b_str(&x, 2, k->system);
	b_str(&x, 3, k->name);
	b_int(&x, 4, 0, cap > GWI_STORE_MAX_INT ? GWI_STORE_MAX_INT : cap);
	gw_err e = gwi_my_query(d, ST_LIST, &x, "list revisions", &mc);
	if (e != GW_OK)
		return e;
	MYSQL_STMT *st = mc->st[ST_LIST];
	long long rev = 0;
	my_bool null = 0;
	MYSQL_BIND r = {0};
	r.buffer_type = MYSQL_TYPE_LONGLONG;
	r.buffer = &rev;
	r.is_null = &null;
	if (mysql_stmt_bind_result(st, &r) != 0) {
		e = gwi_my_fail(d, mc, st, "list revisions (bind)");
		goto out;
	}
	size_t got = 0;
	int rc;
	while ((rc = mysql_stmt_fetch(st)) == 0) {
		if (null || rev < 1) {
			e = GW_ECORRUPT;
			goto out;
		}
		if (got < cap)
			revs[got++] = (uint64_t)rev;
	}
	if (rc != MYSQL_NO_DATA) {
		e = gwi_my_fail(d, mc, st, "list revisions (fetch)");
		goto out;
	}
	*n = got;
out:
	gwi_my_query_end(d, mc, ST_LIST);
	return e;
}

gw_err gwi_my_acquire(void *drv, const gw_actor_key *k, uint64_t *epoch)
{
	my_drv *d = drv;
	my_conn *mc;
	bool found = false;
	gw_err e = gwi_my_begin(d, &mc);
	if (e != GW_OK)
		return e;
	my_binds x;
	b_key(&x, k);
	if ((e = gwi_my_exec(d, mc, ST_ACQUIRE, &x, "acquire")) == GW_OK &&
	    (e = gwi_my_exec(d, mc, ST_EPOCH_GET, &x, "acquire (read)")) == GW_OK &&
	    (e = gwi_my_fetch_int(d, mc, ST_EPOCH_GET, &found, epoch)) == GW_OK && !found)
		e = GW_ECORRUPT; /* our own write is not there */
	return gwi_my_end(d, mc, e);
}

/* write_binds fills system, name, revision, epoch, key_id, nonce, data,
 * type_url in that order from position 0 (INSERT, HIST_PUT). */
static void write_binds(my_binds *x, const gw_row *row)
{
	b_key(x, &row->key);
	b_int(x, 2, 0, row->revision);
	b_int(x, 3, 1, row->epoch);
	b_str(x, 4, row->key_id);
	b_bytes(x, 5, row->nonce, sizeof row->nonce);
	b_bytes(x, 6, row->data, row->len);
	b_str(x, 7, row->type_url);
}

/* save_row runs one fenced, conditional write inside the open transaction.
 * The return value is a batch-level error; *result the row's outcome. */
static gw_err save_row(my_drv *d, my_conn *mc, const gw_row *row, gw_err *result)
{
	my_binds x;
	int id;
	gw_err e;
	if (row->epoch != 0) {
		bool found = false;
		uint64_t epoch = 0;
		b_key(&x, &row->key);
		if ((e = gwi_my_exec(d, mc, ST_FENCE, &x, "save (fence)")) != GW_OK ||
		    (e = gwi_my_fetch_int(d, mc, ST_FENCE, &found, &epoch)) != GW_OK)
			return e;
		if (!found || epoch != row->epoch) {
			*result = GW_EFENCED;
			return GW_OK;
		}
	}
	if (row->expected == 0) {
		id = ST_INSERT;
		write_binds(&x, row);
		b_int(&x, 8, 2, (uint64_t)row->effects);
	} else {
		id = ST_UPDATE;
		b_int(&x, 0, 0, row->revision);
		b_int(&x, 1, 1, row->epoch);
		b_str(&x, 2, row->key_id);
		b_bytes(&x, 3, row->nonce, sizeof row->nonce);
		b_bytes(&x, 4, row->data, row->len);
		b_str(&x, 5, row->type_url);
		b_int(&x, 6, 3, (uint64_t)row->effects);
		b_str(&x, 7, row->key.system);
		b_str(&x, 8, row->key.name);
		b_int(&x, 9, 2, row->expected);
	}
	if ((e = gwi_my_exec(d, mc, id, &x, "save")) != GW_OK)
		return e;
	if (mysql_stmt_affected_rows(mc->st[id]) != 1) {
		*result = GW_ECONFLICT;
		return GW_OK;
	}
	if (d->history > 0) {
		/* Keep revisions (new - history) .. new. */
		write_binds(&x, row);
		if ((e = gwi_my_exec(d, mc, ST_HIST_PUT, &x, "save (history)")) != GW_OK)
			return e;
		b_key(&x, &row->key);
		b_int(&x, 2, 0, gwi_history_keep(row->revision, d->history));
		if ((e = gwi_my_exec(d, mc, ST_HIST_TRIM, &x, "save (history trim)")) != GW_OK)
			return e;
	}
	*result = GW_OK;
	return GW_OK;
}

gw_err gwi_my_remove(void *drv, const gw_actor_key *k)
{
	my_drv *d = drv;
	my_conn *mc;
	gw_err e = gwi_my_begin(d, &mc);
	if (e != GW_OK)
		return e;
	my_binds x;
	b_key(&x, k);
	if ((e = gwi_my_exec(d, mc, ST_REMOVE_HIST, &x, "remove (history)")) == GW_OK)
		e = gwi_my_exec(d, mc, ST_REMOVE, &x, "remove");
	return gwi_my_end(d, mc, e);
}

/* ---- rotation --------------------------------------------------------------------- */

gw_err gwi_my_rot_count(void *drv, const char *primary, uint64_t *n)
{
	my_binds x;
	b_str(&x, 0, primary);
	b_str(&x, 1, primary);
	return gwi_my_query_int(drv, ST_ROT_COUNT, &x, "rotation count", n);
}

gw_err gwi_my_rot_scan(void *drv, const gw_rot_cursor *after, const char *primary, gw_row *rows,
                       size_t max, size_t *n)
{
	my_drv *d = drv;
	my_conn *mc;
	bool hist = after->table == GW_ROT_HISTORY;
	int id = hist ? ST_ROT_SCAN_HIST : ST_ROT_SCAN_STATE;
	size_t got = 0;
	row_binds rb;
	my_binds x;
	b_str(&x, 0, primary);
	b_str(&x, 1, after->key.system);
	b_str(&x, 2, after->key.system);
	b_str(&x, 3, after->key.name);
	if (hist) {
		b_str(&x, 4, after->key.name);
		b_int(&x, 5, 0, after->revision);
	}
	b_int(&x, hist ? 6 : 4, 1, max);
	gw_err e = gwi_my_query(d, id, &x, "rotation scan", &mc);
	if (e != GW_OK)
		return e;
	MYSQL_STMT *st = mc->st[id];
	if ((e = row_bind(d, mc, st, &rb, true)) != GW_OK)
		goto out;
	int rc = 0;
	while (got < max && ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED)) {
		if ((e = row_take(d, mc, st, &rb, true, &rows[got])) != GW_OK)
			goto out;
		got++;
	}
	if (got < max && rc != MYSQL_NO_DATA) {
		e = gwi_my_fail(d, mc, st, "rotation scan (fetch)");
		goto out;
	}
	*n = got;
out:
	if (e != GW_OK)
		gwi_scan_rows_fini(rows, got);
	gwi_my_query_end(d, mc, id);
	return e;
}

gw_err gwi_my_rot_rewrite(void *drv, int table, const gw_rewrite *rows, size_t n, gw_err *results)
{
	my_drv *d = drv;
	my_conn *mc = NULL;
	int id = table == GW_ROT_HISTORY ? ST_ROT_WRITE_HIST : ST_ROT_WRITE_STATE;
	gw_err e = gwi_my_begin(d, &mc);
	for (size_t i = 0; e == GW_OK && i < n; i++) {
		const gw_rewrite *w = &rows[i];
		my_binds x;
		b_str(&x, 0, w->key_id);
		b_bytes(&x, 1, w->nonce, sizeof w->nonce);
		b_bytes(&x, 2, w->data, w->len);
		b_str(&x, 3, w->key.system);
		b_str(&x, 4, w->key.name);
		b_int(&x, 5, 0, w->revision);
		b_str(&x, 6, w->old_key_id);
		b_bytes(&x, 7, w->old_nonce, sizeof w->old_nonce);
		if ((e = gwi_my_exec(d, mc, id, &x, "rotation rewrite")) == GW_OK)
			results[i] =
			    mysql_stmt_affected_rows(mc->st[id]) == 1 ? GW_OK : GW_ECONFLICT;
	}
	if ((e = gwi_my_end(d, mc, e)) != GW_OK)
		gwi_results_set(results, n, e);
	return e;
}

/* ---- undelivered side effects -------------------------------------------------------- */

gw_err gwi_my_effects_list(void *drv, const gw_actor_key *after, size_t max, gw_actor_key *out,
                           size_t *n)
{
	my_drv *d = drv;
	my_conn *mc;
	size_t got = 0;
	my_binds x;
	b_str(&x, 0, after->system);
	b_str(&x, 1, after->system);
	b_str(&x, 2, after->name);
	b_int(&x, 3, 0, max > GWI_STORE_MAX_INT ? GWI_STORE_MAX_INT : max);
	gw_err e = gwi_my_query(d, ST_EFFECTS_LIST, &x, "effects list", &mc);
	if (e != GW_OK)
		return e;
	MYSQL_STMT *st = mc->st[ST_EFFECTS_LIST];
	MYSQL_BIND r[2];
	unsigned long len[2] = {0};
	memset(r, 0, sizeof r);
	for (int i = 0; i < 2; i++) {
		r[i].buffer_type = MYSQL_TYPE_BLOB;
		r[i].length = &len[i];
	}
	if (mysql_stmt_bind_result(st, r) != 0) {
		e = gwi_my_fail(d, mc, st, "effects list (bind)");
		goto out;
	}
	int rc = 0;
	/* No buffers bound: each fetch measures the keys, fetch_bytes copies. */
	while (got < max && ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED)) {
		char *sys = NULL, *name = NULL;
		if ((e = gwi_my_fetch_bytes(d, mc, st, 0, len[0], &sys)) != GW_OK ||
		    (e = gwi_my_fetch_bytes(d, mc, st, 1, len[1], &name)) != GW_OK) {
			free(sys);
			goto out;
		}
		out[got].system = sys;
		out[got].name = name;
		got++;
	}
	if (got < max && rc != MYSQL_NO_DATA) {
		e = gwi_my_fail(d, mc, st, "effects list (fetch)");
		goto out;
	}
	*n = got;
out:
	if (e != GW_OK)
		gw_keys_fini(out, got);
	gwi_my_query_end(d, mc, ST_EFFECTS_LIST);
	return e;
}

/* ---- batched activation ------------------------------------------------------ */

static void hex_put(char **w, const char *s)
{
	static const char digits[] = "0123456789abcdef";
	*(*w)++ = 'X';
	*(*w)++ = '\'';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		*(*w)++ = digits[*c >> 4];
		*(*w)++ = digits[*c & 15];
	}
	*(*w)++ = '\'';
}

/* key_sql spells head, the n keys in by_key's order as
 * (X'system',X'name'<each>) separated by commas, then tail. Caller frees;
 * NULL: no memory. */
static char *key_sql(const char *head, const gw_actor_key *const *by_key, size_t n,
                     const char *each, const char *tail)
{
	size_t cap = strlen(head) + strlen(tail) + 1;
	for (size_t i = 0; i < n; i++)
		cap +=
		    2 * (strlen(by_key[i]->system) + strlen(by_key[i]->name)) + 10 + strlen(each);
	char *out = malloc(cap), *w = out;
	if (!out)
		return NULL;
	w += sprintf(w, "%s", head);
	for (size_t i = 0; i < n; i++) {
		if (i)
			*w++ = ',';
		*w++ = '(';
		hex_put(&w, by_key[i]->system);
		*w++ = ',';
		hex_put(&w, by_key[i]->name);
		w += sprintf(w, "%s)", each);
	}
	sprintf(w, "%s", tail);
	return out;
}

/* text_int parses a decimal column of a text-protocol row; false when it
 * is NULL or not one in 0..GWI_STORE_MAX_INT. */
static bool text_int(const char *v, unsigned long len, uint64_t *out)
{
	if (!v || len == 0 || len > 19)
		return false;
	uint64_t x = 0;
	for (unsigned long i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (x > GWI_STORE_MAX_INT)
		return false;
	*out = x;
	return true;
}

static char *text_dup(const char *v, unsigned long len)
{
	char *s = malloc(len + 1);
	if (s) {
		memcpy(s, v, len);
		s[len] = '\0';
	}
	return s;
}

/* text_row copies columns 2.. (ROW_COLS) of a text-protocol row into *out
 * (owned fields): GW_ECORRUPT (nothing copied) for a malformed row. */
static gw_err text_row(MYSQL_ROW row, const unsigned long *len, gw_row *out)
{
	uint64_t rev, epoch;
	if (!text_int(row[2], len[2], &rev) || rev < 1 || !text_int(row[3], len[3], &epoch) ||
	    !row[4] || !row[5] || len[5] != sizeof out->nonce || !row[6] || !row[7])
		return GW_ECORRUPT;
	char *key_id = text_dup(row[4], len[4]), *data = text_dup(row[6], len[6]);
	char *type_url = text_dup(row[7], len[7]);
	if (!key_id || !data || !type_url) {
		free(key_id);
		free(data);
		free(type_url);
		return GW_ENOMEM;
	}
	out->revision = rev;
	out->expected = 0;
	out->epoch = epoch;
	out->key_id = key_id;
	memcpy(out->nonce, row[5], sizeof out->nonce);
	out->data = (uint8_t *)data;
	out->len = len[6];
	out->type_url = type_url;
	return GW_OK;
}

/* batch_query runs sql (borrowed) on mc and reads its rows: for each, at
 * = the index of the key in its columns 0 and 1, then take(). */
typedef gw_err (*row_fn)(my_drv *d, size_t at, MYSQL_ROW row, const unsigned long *len, void *arg);

static gw_err batch_query(my_drv *d, my_conn *mc, bool fresh, const char *sql, const char *what,
                          const gw_actor_key *keys, const gw_actor_key *const *by_key, size_t n,
                          row_fn take, void *arg)
{
	gw_err e = gwi_my_query_first(d, mc, fresh, sql, what);
	if (e != GW_OK)
		return e;
	MYSQL_RES *res = mysql_store_result(mc->m);
	if (!res)
		return gwi_my_fail(d, mc, NULL, what);
	MYSQL_ROW row;
	while (e == GW_OK && (row = mysql_fetch_row(res)) != NULL) {
		const unsigned long *len = mysql_fetch_lengths(res);
		size_t at =
		    row[0] && row[1] ? gwi_keys_find(keys, by_key, n, row[0], row[1]) : SIZE_MAX;
		if (at == SIZE_MAX) {
			GW_ERROR("mariadb %s: %s returned a row for no key asked", d->where, what);
			e = GW_ECORRUPT;
		} else {
			e = take(d, at, row, len, arg);
		}
	}
	mysql_free_result(res);
	return e;
}

typedef struct batch_out {
	const gw_actor_key *keys;
	uint64_t *epochs;
	gw_row *rows;
	gw_err *results;
} batch_out;

static gw_err take_epoch(my_drv *d, size_t at, MYSQL_ROW row, const unsigned long *len, void *arg)
{
	batch_out *o = arg;
	if (!text_int(row[2], len[2], &o->epochs[at]) || o->epochs[at] == 0) {
		GW_ERROR("mariadb %s: batched acquire: a bad epoch", d->where);
		return GW_ECORRUPT;
	}
	return GW_OK;
}

static gw_err take_row(my_drv *d, size_t at, MYSQL_ROW row, const unsigned long *len, void *arg)
{
	batch_out *o = arg;
	if (o->results[at] != GW_ENOTFOUND)
		return GW_OK; /* cannot happen: the primary key */
	gw_err e = text_row(row, len, &o->rows[at]);
	if (e == GW_ENOMEM)
		return e;
	if (e == GW_ECORRUPT)
		GW_ERROR("mariadb %s: row %s/%s is malformed", d->where, o->keys[at].system,
		         o->keys[at].name);
	else
		o->rows[at].key = o->keys[at];
	o->results[at] = e;
	return GW_OK;
}

gw_err gwi_my_activate_batch(void *drv, const gw_actor_key *keys, size_t n, uint64_t *epochs,
                             gw_row *rows, gw_err *results)
{
	my_drv *d = drv;
	my_conn *mc = NULL;
	bool fresh = false;
	batch_out o = {keys, epochs, rows, results};
	const gw_actor_key **by_key = malloc(n * sizeof *by_key);
	char *up = NULL, *get = NULL, *load = NULL;
	gw_err e = GW_ENOMEM;
	if (!by_key)
		goto out;
	gwi_keys_sort(keys, n, by_key);
	up = key_sql("INSERT INTO spawn_actor_epoch(system, name, epoch) VALUES", by_key, n, ",1",
	             " ON DUPLICATE KEY UPDATE epoch = epoch + 1");
	get = key_sql("SELECT system, name, epoch FROM spawn_actor_epoch WHERE (system, name) IN (",
	              by_key, n, "", ")");
	load = key_sql("SELECT system, name, revision, epoch, key_id, nonce, data, type_url "
	               "FROM spawn_actor_state WHERE (system, name) IN (",
	               by_key, n, "", ")");
	if (!up || !get || !load)
		goto out;
	for (size_t i = 0; i < n; i++)
		epochs[i] = 0;
	if ((e = gwi_my_begin(d, &mc)) != GW_OK)
		goto out;
	if ((e = gwi_my_query_first(d, mc, true, up, "acquire (batch)")) == GW_OK)
		e = batch_query(d, mc, true, get, "acquire (batch read)", keys, by_key, n,
		                take_epoch, &o);
	for (size_t i = 0; e == GW_OK && i < n; i++)
		if (epochs[i] == 0) {
			GW_ERROR("mariadb %s: batched acquire gave %s/%s no epoch", d->where,
			         keys[i].system, keys[i].name);
			e = GW_ECORRUPT; /* our own write is not there */
		}
	if ((e = gwi_my_end(d, mc, e)) != GW_OK)
		goto out;
	/* After the commit: a new read sees every save that passed its fence. */
	if ((e = gwi_my_conn_acquire(d, &mc, &fresh)) != GW_OK)
		goto out;
	gwi_results_set(results, n, GW_ENOTFOUND);
	e = batch_query(d, mc, fresh, load, "load (batch)", keys, by_key, n, take_row, &o);
	gwi_my_conn_release(d, mc);
	if (e != GW_OK)
		gwi_rows_fini(rows, n);
out:
	free(by_key);
	free(up);
	free(get);
	free(load);
	return e;
}

/* ---- bulk saves ----------------------------------------------------------------- */

/* The raw bytes (gwi_row_bytes) of one save segment: its bulk executions
 * stay well below max_allowed_packet (16 MiB by default since MariaDB
 * 10.2.4; the bulk protocol needs 10.2.7). A row bigger than this goes
 * alone, through save_row. */
#define SEGMENT_BYTES (4u << 20)

/* A segment: rows[0..n) of distinct keys, visited in key byte order
 * (row SEG_ROW(g, j) is the j-th by key), so every statement meets them in
 * the order of the primary keys: two batches lock rows in one order. */
typedef struct my_seg {
	const gw_row *rows;
	size_t n;
	gw_actor_key *keys;          /* owned, n: keys[i] = rows[i].key */
	const gw_actor_key **by_key; /* owned, n */
	gw_err *results;             /* the batch's, from rows[0] */
} my_seg;

#define SEG_ROW(g, j) ((size_t)((g)->by_key[j] - (g)->keys))

/* seg_read runs head, the keys (key_sql) of the segment's rows whose
 * result is want, in key order, and tail as one query (none when no row
 * has that result), and hands each row it returns to take. */
static gw_err seg_read(my_drv *d, my_conn *mc, my_seg *g, gw_err want, const char *head,
                       const char *tail, const char *what, row_fn take)
{
	const gw_actor_key **pick = malloc(g->n * sizeof *pick);
	size_t c = 0;
	if (!pick)
		return GW_ENOMEM;
	for (size_t j = 0; j < g->n; j++)
		if (g->results[SEG_ROW(g, j)] == want)
			pick[c++] = g->by_key[j];
	char *sql = c > 0 ? key_sql(head, pick, c, "", tail) : NULL;
	gw_err e = c > 0 && !sql ? GW_ENOMEM : GW_OK;
	if (sql)
		e = batch_query(d, mc, true, sql, what, g->keys, g->by_key, g->n, take, g);
	free(pick);
	free(sql);
	return e;
}

static gw_err take_fence(my_drv *d, size_t at, MYSQL_ROW row, const unsigned long *len, void *arg)
{
	my_seg *g = arg;
	uint64_t epoch;
	if (g->rows[at].epoch == 0 || !text_int(row[2], len[2], &epoch)) {
		GW_ERROR("mariadb %s: save (fence) returned an unexpected row", d->where);
		return GW_ECORRUPT;
	}
	if (epoch == g->rows[at].epoch)
		g->results[at] = GW_ECONFLICT; /* not fenced; a conflict until written */
	return GW_OK;
}

/* seg_fence: one locking read of the fenced rows' epochs (LOCK IN SHARE
 * MODE, in key order: an acquire waits for our commit); results[i] =
 * GW_EFENCED unless the row's epoch is the current one, else GW_ECONFLICT
 * (to be written). */
static gw_err seg_fence(my_drv *d, my_conn *mc, my_seg *g)
{
	for (size_t i = 0; i < g->n; i++)
		g->results[i] = g->rows[i].epoch != 0 ? GW_EFENCED : GW_ECONFLICT;
	return seg_read(
	    d, mc, g, GW_EFENCED,
	    "SELECT system, name, epoch FROM spawn_actor_epoch WHERE (system, name) IN (",
	    ") ORDER BY system, name LOCK IN SHARE MODE", "save (fence)", take_fence);
}

/* The columns of a bulk execution (MariaDB's bulk protocol: a prepared
 * statement executed once over arrays of parameters, one round trip):
 * column-wise arrays, one element per row; byte columns as pointers and
 * lengths, integers as long long. */
enum { C_SYS, C_NAME, C_KEY_ID, C_NONCE, C_DATA, C_TYPE, C_BYTES };
enum { I_REV, I_EPOCH, I_EFFECTS, I_EXP, I_KEEP, I_INTS };

typedef struct my_bulk {
	const char *p[C_BYTES][GWI_SAVE_SEGMENT];
	unsigned long len[C_BYTES][GWI_SAVE_SEGMENT];
	long long v[I_INTS][GWI_SAVE_SEGMENT];
	unsigned rows;
} my_bulk;

static void bulk_bytes(my_bulk *k, int col, const void *p, size_t len)
{
	k->p[col][k->rows] = p ? p : "";
	k->len[col][k->rows] = (unsigned long)len;
}

/* bulk_put appends row (keep: the oldest revision its history keeps). */
static void bulk_put(my_bulk *k, const gw_row *row, uint64_t keep)
{
	bulk_bytes(k, C_SYS, row->key.system, strlen(row->key.system));
	bulk_bytes(k, C_NAME, row->key.name, strlen(row->key.name));
	bulk_bytes(k, C_KEY_ID, row->key_id, strlen(row->key_id));
	bulk_bytes(k, C_NONCE, row->nonce, sizeof row->nonce);
	bulk_bytes(k, C_DATA, row->data, row->len);
	bulk_bytes(k, C_TYPE, row->type_url, strlen(row->type_url));
	k->v[I_REV][k->rows] = (long long)row->revision;
	k->v[I_EPOCH][k->rows] = (long long)row->epoch;
	k->v[I_EFFECTS][k->rows] = row->effects ? 1 : 0;
	k->v[I_EXP][k->rows] = (long long)row->expected;
	k->v[I_KEEP][k->rows] = (long long)keep;
	k->rows++;
}

/* bulk_exec binds the columns cols[0..ncols) (C_* for bytes, I_* + C_BYTES
 * for integers) as statement id's parameters, in that order, executes it
 * once over k->rows rows and adds the rows it changed to *affected. The
 * statement is left for single executions again. */
static gw_err bulk_exec(my_drv *d, my_conn *mc, int id, my_bulk *k, const int *cols, int ncols,
                        const char *what, uint64_t *affected)
{
	MYSQL_BIND b[10];
	MYSQL_STMT *st = mc->st[id];
	unsigned int rows = k->rows, zero = 0;
	if (rows == 0)
		return GW_OK;
	memset(b, 0, sizeof b);
	for (int i = 0; i < ncols; i++) {
		if (cols[i] < C_BYTES) {
			b[i].buffer_type = MYSQL_TYPE_BLOB;
			b[i].buffer = (void *)k->p[cols[i]];
			b[i].length = k->len[cols[i]];
		} else {
			b[i].buffer_type = MYSQL_TYPE_LONGLONG;
			b[i].buffer = k->v[cols[i] - C_BYTES];
		}
	}
	gw_err e = GW_OK;
	if (mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &rows) != 0 ||
	    mysql_stmt_bind_param(st, b) != 0 || mysql_stmt_execute(st) != 0)
		e = gwi_my_fail(d, mc, st, what);
	else
		*affected += mysql_stmt_affected_rows(st);
	if (mc->st[id]) /* still there: the connection was not dropped */
		mysql_stmt_attr_set(mc->st[id], STMT_ATTR_ARRAY_SIZE, &zero);
	k->rows = 0;
	return e;
}

#define B(i) (C_BYTES + (i))
/* The parameters of the prepared statements (mariadb_conn.c), in order. */
static const int insert_cols[] = {C_SYS,   C_NAME, B(I_REV), B(I_EPOCH),  C_KEY_ID,
                                  C_NONCE, C_DATA, C_TYPE,   B(I_EFFECTS)};
static const int update_cols[] = {B(I_REV), B(I_EPOCH),   C_KEY_ID, C_NONCE, C_DATA,
                                  C_TYPE,   B(I_EFFECTS), C_SYS,    C_NAME,  B(I_EXP)};
static const int hist_cols[] = {C_SYS,    C_NAME,  B(I_REV), B(I_EPOCH),
                                C_KEY_ID, C_NONCE, C_DATA,   C_TYPE};
static const int trim_cols[] = {C_SYS, C_NAME, B(I_KEEP)};
#undef B
#define NCOLS(a) ((int)(sizeof(a) / sizeof(a)[0]))

static gw_err take_written(my_drv *d, size_t at, MYSQL_ROW row, const unsigned long *len, void *arg)
{
	my_seg *g = arg;
	const gw_row *w = &g->rows[at];
	uint64_t rev;
	/* Ours: the new revision with the nonce we sealed it with (a fresh
	 * random nonce per seal). */
	if (g->results[at] == GW_ECONFLICT && text_int(row[2], len[2], &rev) &&
	    rev == w->revision && row[3] && len[3] == sizeof w->nonce &&
	    memcmp(row[3], w->nonce, sizeof w->nonce) == 0)
		g->results[at] = GW_OK;
	return GW_OK;
}
/* seg_written settles which rows the writes changed: all of them when the
 * affected rows say so (the usual case: no read), else a read of the
 * candidates, under the locks the writes took. */
static gw_err seg_written(my_drv *d, my_conn *mc, my_seg *g, size_t want, uint64_t affected)
{
	if (affected == want) {
		for (size_t i = 0; i < g->n; i++)
			if (g->results[i] == GW_ECONFLICT)
				g->results[i] = GW_OK;
		return GW_OK;
	}
	return seg_read(d, mc, g, GW_ECONFLICT,
	                "SELECT system, name, revision, nonce FROM spawn_actor_state "
	                "WHERE (system, name) IN (",
	                ")", "save (read back)", take_written);
}

/* seg_write writes every row of the segment not fenced, in key order: one
 * bulk INSERT ... ON DUPLICATE KEY UPDATE system = system (expected 0: an
 * existing row stays as it is) and one bulk UPDATE ... WHERE revision =
 * expected (the others). */
static gw_err seg_write(my_drv *d, my_conn *mc, my_seg *g, my_bulk *k)
{
	uint64_t affected = 0;
	size_t want = 0;
	gw_err e = GW_OK;
	for (int pass = 0; pass < 2 && e == GW_OK; pass++) {
		for (size_t j = 0; j < g->n; j++) {
			const gw_row *row = &g->rows[SEG_ROW(g, j)];
			if (g->results[SEG_ROW(g, j)] == GW_ECONFLICT &&
			    (row->expected == 0) == (pass == 0))
				bulk_put(k, row, 0);
		}
		want += k->rows;
		e = pass == 0 ? bulk_exec(d, mc, ST_INSERT, k, insert_cols, NCOLS(insert_cols),
		                          "save (insert)", &affected)
		              : bulk_exec(d, mc, ST_UPDATE, k, update_cols, NCOLS(update_cols),
		                          "save (update)", &affected);
	}
	return e == GW_OK ? seg_written(d, mc, g, want, affected) : e;
}

/* seg_history writes the saved rows into the history and trims each
 * actor's revisions below new - history: two bulk executions. */
static gw_err seg_history(my_drv *d, my_conn *mc, my_seg *g, my_bulk *k)
{
	uint64_t affected = 0;
	for (size_t j = 0; j < g->n; j++) {
		const gw_row *row = &g->rows[SEG_ROW(g, j)];
		if (g->results[SEG_ROW(g, j)] == GW_OK)
			bulk_put(k, row, gwi_history_keep(row->revision, d->history));
	}
	unsigned rows = k->rows;
	gw_err e = bulk_exec(d, mc, ST_HIST_PUT, k, hist_cols, NCOLS(hist_cols), "save (history)",
	                     &affected);
	k->rows = rows; /* the same rows again */
	if (e == GW_OK)
		e = bulk_exec(d, mc, ST_HIST_TRIM, k, trim_cols, NCOLS(trim_cols),
		              "save (history trim)", &affected);
	return e;
}

/* save_segment saves rows[0..n) (distinct keys, 2 <= n <= GWI_SAVE_SEGMENT)
 * in at most six round trips whatever n: the fence, the inserts, the
 * updates, a read back only when some write found nothing and, with a
 * history policy, the history's upsert and trim. */
static gw_err save_segment(my_drv *d, my_conn *mc, const gw_row *rows, size_t n, gw_err *results)
{
	my_seg g = {rows, n, malloc(n * sizeof *g.keys), malloc(n * sizeof *g.by_key), results};
	my_bulk *k = malloc(sizeof *k);
	gw_err e = GW_ENOMEM;
	if (!g.keys || !g.by_key || !k)
		goto out;
	k->rows = 0;
	for (size_t i = 0; i < n; i++)
		g.keys[i] = rows[i].key;
	gwi_keys_sort(g.keys, n, g.by_key);
	if ((e = seg_fence(d, mc, &g)) == GW_OK && (e = seg_write(d, mc, &g, k)) == GW_OK &&
	    d->history > 0)
		e = seg_history(d, mc, &g, k);
out:
	free(g.keys);
	free(g.by_key);
	free(k);
	return e;
}

/* bulk_supported: the server speaks MariaDB's bulk protocol (MariaDB
 * 10.2.7+; not MySQL). Does not block. */
static bool bulk_supported(MYSQL *m)
{
	unsigned long caps = 0, ext = 0;
	if (mariadb_get_infov(m, MARIADB_CONNECTION_SERVER_CAPABILITIES, &caps) != 0 ||
	    mariadb_get_infov(m, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES, &ext) != 0)
		return false;
	return !(caps & CLIENT_MYSQL) && (ext & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32)) != 0;
}

/* save_batch: in segments of up to GWI_SAVE_SEGMENT rows of distinct keys
 * and SEGMENT_BYTES (gwi_save_segment); a segment of one row goes the way
 * of one row (save_row: no more round trips). */
gw_err gwi_my_save_batch(void *drv, const gw_row *rows, size_t n, gw_err *results)
{
	my_drv *d = drv;
	my_conn *mc = NULL;
	if (n == 0)
		return GW_OK;
	gw_err e = gwi_my_begin(d, &mc);
	/* MySQL has no bulk protocol: row by row there. */
	bool bulk = e == GW_OK && bulk_supported(mc->m);
	for (size_t i = 0, k; e == GW_OK && i < n; i += k) {
		k = bulk ? gwi_save_segment(&rows[i], n - i, GWI_SAVE_SEGMENT, SEGMENT_BYTES) : 1;
		e = k == 1 ? save_row(d, mc, &rows[i], &results[i])
		           : save_segment(d, mc, &rows[i], k, &results[i]);
	}
	if ((e = gwi_my_end(d, mc, e)) != GW_OK)
		gwi_results_set(results, n, e);
	return e;
}

/* ---- activation leases ------------------------------------------------------------ */

/* The activation lease (mariadb.c, lease_activate), one transaction:
 *   seed     INSERT ... ON DUPLICATE KEY UPDATE epoch = epoch: every row
 *            exists (epoch 0 when new)
 *   lock     SELECT ... ORDER BY system, name FOR UPDATE: every row locked
 *            in key order until COMMIT (a locking read keeps its locks)
 *   take     UPDATE ... epoch + 1, owner := member where the member's row
 *            is live and the owner is NULL, the member, or not live: a new
 *            statement, so (READ COMMITTED) its reads of spawn_members see
 *            every commit before the locks were granted
 *   read     each row's epoch and owner, and whether the member is live:
 *            a row was taken when its owner is the member and the member
 *            is still live (a member declared dead meanwhile reads "not
 *            taken": its epoch grew for nothing, which is harmless)
 * then COMMIT and, after it, the load of the keys that took an epoch. */
typedef struct lease_out {
	const char *member;
	uint64_t *epochs;
	char (*holders)[GW_MEMBER_ID_MAX + 1];
	bool *seen;
} lease_out;

static gw_err take_lease(my_drv *d, size_t at, MYSQL_ROW row, const unsigned long *len, void *arg)
{
	lease_out *o = arg;
	uint64_t epoch = 0, live = 0;
	if (o->seen[at] || !text_int(row[2], len[2], &epoch) || !text_int(row[4], len[4], &live)) {
		GW_ERROR("mariadb %s: lease: a bad row", d->where);
		return GW_ECORRUPT;
	}
	o->seen[at] = true;
	bool mine = row[3] && len[3] == strlen(o->member) && !memcmp(row[3], o->member, len[3]);
	o->epochs[at] = 0;
	o->holders[at][0] = '\0';
	if (mine && live && epoch > 0)
		o->epochs[at] = epoch;
	else if (row[3] && !mine)
		snprintf(o->holders[at], sizeof o->holders[at], "%.*s",
		         (int)(len[3] < GW_MEMBER_ID_MAX ? len[3] : GW_MEMBER_ID_MAX), row[3]);
	return GW_OK;
}

/* discard_query runs sql and throws its rows away (the lock). */
static gw_err discard_query(my_drv *d, my_conn *mc, const char *sql, const char *what)
{
	gw_err e = gwi_my_query_first(d, mc, true, sql, what);
	if (e != GW_OK)
		return e;
	MYSQL_RES *res = mysql_store_result(mc->m);
	if (!res)
		return gwi_my_fail(d, mc, NULL, what);
	mysql_free_result(res);
	return GW_OK;
}

/* member_sql spells "head X'member' tail". Caller frees. */
static char *member_sql(const char *head, const char *member, const char *tail)
{
	char *out = malloc(strlen(head) + 2 * strlen(member) + strlen(tail) + 4), *w = out;
	if (!out)
		return NULL;
	w += sprintf(w, "%s", head);
	hex_put(&w, member);
	sprintf(w, "%s", tail);
	return out;
}

gw_err gwi_my_lease_activate(void *drv, const gw_actor_key *keys, size_t n, const char *member,
                             uint64_t *epochs, char (*holders)[GW_MEMBER_ID_MAX + 1], gw_row *rows,
                             gw_err *results)
{
	my_drv *d = drv;
	my_conn *mc = NULL;
	bool fresh = false;
	const gw_actor_key **by_key = malloc(n * sizeof *by_key);
	const gw_actor_key **taken = malloc(n * sizeof *taken);
	bool *seen = calloc(n, sizeof *seen);
	char *seed = NULL, *lock = NULL, *take = NULL, *read = NULL, *load = NULL;
	char *mlive = NULL, *mcond = NULL, *head = NULL, *tail = NULL, *rhead = NULL;
	gw_err e = GW_ENOMEM;
	if (!by_key || !taken || !seen)
		goto out;
	gwi_keys_sort(keys, n, by_key);
	mlive = member_sql("EXISTS (SELECT 1 FROM spawn_members WHERE id = ", member,
	                   " AND status <> 4)");
	mcond = member_sql("(owner IS NULL OR owner = ", member,
	                   " OR NOT EXISTS (SELECT 1 FROM spawn_members m "
	                   "WHERE m.id = spawn_actor_epoch.owner AND m.status <> 4))");
	head = member_sql("UPDATE spawn_actor_epoch SET epoch = epoch + 1, owner = ", member,
	                  " WHERE (system, name) IN (");
	if (!mlive || !mcond || !head)
		goto out;
	size_t tcap = strlen(mlive) + strlen(mcond) + 128;
	tail = malloc(tcap);
	rhead = malloc(tcap);
	if (!tail || !rhead)
		goto out;
	snprintf(tail, tcap, ") AND %s AND %s", mlive, mcond);
	snprintf(rhead, tcap,
	         "SELECT system, name, epoch, owner, %s FROM spawn_actor_epoch "
	         "WHERE (system, name) IN (",
	         mlive);
	seed = key_sql("INSERT INTO spawn_actor_epoch(system, name, epoch) VALUES", by_key, n, ",0",
	               " ON DUPLICATE KEY UPDATE epoch = epoch");
	lock = key_sql("SELECT system FROM spawn_actor_epoch WHERE (system, name) IN (", by_key, n,
	               "", ") ORDER BY system, name FOR UPDATE");
	take = key_sql(head, by_key, n, "", tail);
	read = key_sql(rhead, by_key, n, "", ")");
	if (!seed || !lock || !take || !read)
		goto out;
	lease_out o = {member, epochs, holders, seen};
	if ((e = gwi_my_begin(d, &mc)) != GW_OK)
		goto out;
	if ((e = gwi_my_query_first(d, mc, true, seed, "lease (seed)")) == GW_OK &&
	    (e = discard_query(d, mc, lock, "lease (lock)")) == GW_OK &&
	    (e = gwi_my_query_first(d, mc, true, take, "lease (take)")) == GW_OK)
		e = batch_query(d, mc, true, read, "lease (read)", keys, by_key, n, take_lease, &o);
	for (size_t i = 0; e == GW_OK && i < n; i++)
		if (!seen[i]) {
			GW_ERROR("mariadb %s: lease: no epoch row for %s/%s", d->where,
			         keys[i].system, keys[i].name);
			e = GW_ECORRUPT; /* the seed is not there */
		}
	if ((e = gwi_my_end(d, mc, e)) != GW_OK || !rows)
		goto out;
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		results[i] = epochs[i] ? GW_ENOTFOUND : GW_EOWNED;
		if (epochs[i])
			taken[m++] = &keys[i];
	}
	if (m == 0)
		goto out;
	load = key_sql("SELECT system, name, revision, epoch, key_id, nonce, data, type_url "
	               "FROM spawn_actor_state WHERE (system, name) IN (",
	               taken, m, "", ")");
	if (!load) {
		e = GW_ENOMEM;
		goto out;
	}
	/* After the commit: a new read sees every save that passed its fence. */
	if ((e = gwi_my_conn_acquire(d, &mc, &fresh)) != GW_OK)
		goto out;
	batch_out bo = {keys, epochs, rows, results};
	e = batch_query(d, mc, fresh, load, "lease (load)", keys, by_key, n, take_row, &bo);
	gwi_my_conn_release(d, mc);
	if (e != GW_OK)
		gwi_rows_fini(rows, n);
out:
	free(by_key);
	free(taken);
	free(seen);
	free(seed);
	free(lock);
	free(take);
	free(read);
	free(load);
	free(mlive);
	free(mcond);
	free(head);
	free(tail);
	free(rhead);
	return e;
}

gw_err gwi_my_lease_release(void *drv, const gw_actor_key *keys, const uint64_t *epochs, size_t n,
                            const char *member, uint64_t *released)
{
	my_drv *d = drv;
	size_t cap = 256 + 2 * strlen(member);
	for (size_t i = 0; i < n; i++)
		cap += 2 * (strlen(keys[i].system) + strlen(keys[i].name)) + 40;
	char *sql = malloc(cap), *w = sql;
	if (!sql)
		return GW_ENOMEM;
	w += sprintf(w, "UPDATE spawn_actor_epoch SET owner = NULL WHERE owner = ");
	hex_put(&w, member);
	w += sprintf(w, " AND (system, name, epoch) IN (");
	for (size_t i = 0; i < n; i++) {
		w += sprintf(w, "%s(", i ? "," : "");
		hex_put(&w, keys[i].system);
		*w++ = ',';
		hex_put(&w, keys[i].name);
		w += sprintf(w, ",%llu)", (unsigned long long)epochs[i]);
	}
	sprintf(w, ")");
	my_conn *mc;
	bool fresh;
	gw_err e = gwi_my_conn_acquire(d, &mc, &fresh);
	if (e == GW_OK) {
		if ((e = gwi_my_query_first(d, mc, fresh, sql, "lease (release)")) == GW_OK)
			*released = (uint64_t)mysql_affected_rows(mc->m);
		gwi_my_conn_release(d, mc);
	}
	free(sql);
	return e;
}
