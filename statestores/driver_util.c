/* driver_util.c - what the statestore drivers share that depends on neither
 * an SQL dialect nor a client library (see driver_util.h). */
#include "driver_util.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- open options ---------------------------------------------------------- */

gw_err gwi_opts_history(const char *driver, const gw_store_opts *opts, int *history)
{
	int h = opts ? opts->history : 0;
	if (h < 0 || h > GWI_HISTORY_MAX) {
		gwi_store_errf(opts, "%s: history %d is outside 0..%d", driver, h, GWI_HISTORY_MAX);
		return GW_ECONFIG;
	}
	*history = h;
	return GW_OK;
}

gw_err gwi_opts_pool(const char *driver, const gw_store_opts *opts, int *pool)
{
	int n = opts && opts->pool_size > 0 ? opts->pool_size : GWI_POOL_DEFAULT;
	if ((opts && opts->pool_size < 0) || n > GWI_POOL_MAX) {
		gwi_store_errf(opts, "%s: pool_size %d is outside 1..%d", driver, n, GWI_POOL_MAX);
		return GW_ECONFIG;
	}
	*pool = n;
	return GW_OK;
}

/* ---- the pool ------------------------------------------------------------------ */

gw_err gwi_pool_init(gwi_pool *p, int n, const gwi_conn_ops *ops, void *drv, const char *where)
{
	p->ops = ops;
	p->drv = drv;
	p->where = where;
	p->n = n;
	p->busy = calloc((size_t)n, sizeof *p->busy);
	if (!p->busy)
		return GW_ENOMEM;
	if (pthread_mutex_init(&p->mu, NULL) != 0)
		return GW_ENOMEM;
	if (pthread_cond_init(&p->cv, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		return GW_ENOMEM;
	}
	p->sync_ok = true;
	return GW_OK;
}

void gwi_pool_fini(gwi_pool *p)
{
	if (p->sync_ok) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		p->sync_ok = false;
	}
	free(p->busy);
	p->busy = NULL;
}

gw_err gwi_pool_acquire(gwi_pool *p, int *slot, bool *fresh)
{
	const gwi_conn_ops *ops = p->ops;
	int s = -1;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		/* Prefer a connected one: opening costs round trips. */
		for (int i = 0; i < p->n; i++) {
			if (!p->busy[i] && (ops->is_open(p->drv, i) || s < 0))
				s = i;
			if (s >= 0 && ops->is_open(p->drv, s))
				break;
		}
		if (s >= 0)
			break;
		pthread_cond_wait(&p->cv, &p->mu);
	}
	p->busy[s] = true;
	pthread_mutex_unlock(&p->mu);

	*fresh = false;
	if (ops->is_open(p->drv, s) && ops->stale(p->drv, s)) {
		GW_WARN("%s %s: connection closed by the server; reconnecting", ops->driver,
		        p->where);
		ops->drop(p->drv, s);
	}
	if (!ops->is_open(p->drv, s)) {
		char why[512];
		gw_err e = ops->ready(p->drv, s, why, sizeof why);
		if (e != GW_OK) {
			GW_ERROR("%s %s: cannot connect: %s", ops->driver, p->where, why);
			gwi_pool_release(p, s);
			return e;
		}
		*fresh = true;
	}
	*slot = s;
	return GW_OK;
}

void gwi_pool_release(gwi_pool *p, int slot)
{
	pthread_mutex_lock(&p->mu);
	p->busy[slot] = false;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

gw_err gwi_pool_reconnect(gwi_pool *p, int slot, const char *lost)
{
	const gwi_conn_ops *ops = p->ops;
	if (lost)
		GW_WARN("%s %s: connection lost (%s); reconnecting", ops->driver, p->where, lost);
	else
		GW_WARN("%s %s: connection lost; reconnecting", ops->driver, p->where);
	ops->drop(p->drv, slot);
	char why[512];
	gw_err e = ops->ready(p->drv, slot, why, sizeof why);
	if (e != GW_OK)
		GW_ERROR("%s %s: cannot connect: %s", ops->driver, p->where, why);
	return e;
}

/* ---- URLs -------------------------------------------------------------------- */

void gwi_url_auth_split(const char *url, const char *stops, gwi_url_auth *out)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	const char *end = p + strcspn(p, stops);
	const char *at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	memset(out, 0, sizeof *out);
	out->host = p;
	out->end = end;
	if (!at)
		return;
	const char *colon = memchr(p, ':', (size_t)(at - p));
	out->user = p;
	out->user_len = (size_t)((colon ? colon : at) - p);
	if (colon) {
		out->password = colon + 1;
		out->password_len = (size_t)(at - colon - 1);
	}
	out->host = at + 1;
}

char *gwi_store_where(const char *user, const char *host, const char *port, const char *db)
{
	size_t n = strlen(user) + strlen(host) + strlen(port) + strlen(db) + 4;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%s%s%s:%s/%s", user, *user ? "@" : "", host, port, db);
	return out;
}

/* ---- rows ------------------------------------------------------------------------ */

uint64_t gwi_history_keep(uint64_t revision, int history)
{
	return revision > (uint64_t)history ? revision - (uint64_t)history : 0;
}

void gwi_nonce_copy(uint8_t *nonce, const void *src, size_t len)
{
	size_t cap = sizeof((gw_row *)0)->nonce;
	memset(nonce, 0, cap);
	if (src && len > 0)
		memcpy(nonce, src, len < cap ? len : cap);
}

void gwi_scan_rows_fini(gw_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)rows[i].key.system);
		free((char *)rows[i].key.name);
		free((char *)rows[i].key_id);
		free((char *)rows[i].type_url);
		free(rows[i].data);
	}
}

void gwi_results_set(gw_err *results, size_t n, gw_err e)
{
	for (size_t i = 0; i < n; i++)
		results[i] = e;
}

gw_err gwi_instance_existing(void *drv, gw_err (*get)(void *, const gw_actor_key *, char **),
                             const gw_actor_key *k, const char *parent)
{
	char *have = NULL;
	gw_err e = get(drv, k, &have);
	if (e != GW_OK)
		return e == GW_ENOTFOUND ? GW_EIO : e;
	e = strcmp(have, parent) == 0 ? GW_OK : GW_ECONFLICT;
	free(have);
	return e;
}

/* ---- scheduled invocations ----------------------------------------------------- */

bool gwi_sched_id_ok(const char *id)
{
	if (!id)
		return false;
	size_t n = strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-");
	return n > 0 && n <= GW_SCHED_ID_MAX && id[n] == '\0';
}

char *gwi_id_list(const char *head, char quote, const char *tail, const char *const *ids, size_t n)
{
	/* Each id: a comma, two quotes and at most GW_SCHED_ID_MAX bytes. */
	size_t cap = strlen(head) + strlen(tail) + 1 + n * (GW_SCHED_ID_MAX + 3);
	size_t off = strlen(head);
	char *s = malloc(cap);
	if (!s)
		return NULL;
	memcpy(s, head, off);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s%c%.*s%c", i ? "," : "", quote,
		                        GW_SCHED_ID_MAX, ids[i], quote);
	snprintf(s + off, cap - off, "%s", tail);
	return s;
}

static void sched_rows_fini(gw_sched_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)rows[i].key_id);
		free(rows[i].data);
	}
}

static int sched_cmp(const void *a, const void *b)
{
	const gw_sched_row *x = a, *y = b;
	if (x->due_ms != y->due_ms)
		return x->due_ms < y->due_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

gw_err gwi_claim_init(gwi_claim *c, size_t max)
{
	c->n = 0;
	c->max = max;
	c->rows = calloc(max * 2, sizeof *c->rows);
	return c->rows ? GW_OK : GW_ENOMEM;
}

size_t gwi_claim_pick(gwi_claim *c)
{
	qsort(c->rows, c->n, sizeof *c->rows, sched_cmp);
	return c->n < c->max ? c->n : c->max;
}

void gwi_claim_hand_out(gwi_claim *c, size_t take, gw_sched_row *out, size_t *n)
{
	memcpy(out, c->rows, take * sizeof *c->rows);
	sched_rows_fini(c->rows + take, c->n - take);
	free(c->rows);
	c->rows = NULL;
	c->n = 0;
	*n = take;
}

void gwi_claim_fini(gwi_claim *c)
{
	if (c->rows)
		sched_rows_fini(c->rows, c->n);
	free(c->rows);
	c->rows = NULL;
	c->n = 0;
}

/* ---- keys of a batch --------------------------------------------------------------- */

static int key_cmp(const char *sa, const char *na, const char *sb, const char *nb)
{
	int c = strcmp(sa, sb);
	return c ? c : strcmp(na, nb);
}

static int key_ptr_cmp(const void *a, const void *b)
{
	const gw_actor_key *x = *(const gw_actor_key *const *)a;
	const gw_actor_key *y = *(const gw_actor_key *const *)b;
	return key_cmp(x->system, x->name, y->system, y->name);
}

void gwi_keys_sort(const gw_actor_key *keys, size_t n, const gw_actor_key **by_key)
{
	for (size_t i = 0; i < n; i++)
		by_key[i] = &keys[i];
	if (n > 1)
		qsort(by_key, n, sizeof *by_key, key_ptr_cmp);
}

size_t gwi_keys_find(const gw_actor_key *keys, const gw_actor_key *const *by_key, size_t n,
                     const char *system, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(system, name, by_key[mid]->system, by_key[mid]->name);
		if (c == 0)
			return (size_t)(by_key[mid] - keys);
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return SIZE_MAX;
}

void gwi_rows_fini(gw_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)rows[i].key_id);
		free((char *)rows[i].type_url);
		free(rows[i].data);
		rows[i].key_id = rows[i].type_url = NULL;
		rows[i].data = NULL;
		rows[i].len = 0;
	}
}

size_t gwi_row_bytes(const gw_row *row)
{
	return row->len + strlen(row->key.system) + strlen(row->key.name) + strlen(row->key_id) +
	       strlen(row->type_url) + sizeof row->nonce;
}

size_t gwi_save_segment(const gw_row *rows, size_t n, size_t max, size_t max_bytes)
{
	size_t bytes = gwi_row_bytes(&rows[0]), k = 1;
	for (; k < n && k < max; k++) {
		size_t b = gwi_row_bytes(&rows[k]);
		if (bytes > max_bytes || b > max_bytes - bytes)
			break;
		/* Quadratic, but over at most max keys of one batch. */
		for (size_t j = 0; j < k; j++)
			if (key_cmp(rows[j].key.system, rows[j].key.name, rows[k].key.system,
			            rows[k].key.name) == 0)
				return k;
		bytes += b;
	}
	return k;
}
