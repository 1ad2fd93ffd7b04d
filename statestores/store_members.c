/* store_members.c - the front of the cluster membership operations (store
 * ops version 8): argument checks, then the driver. docs/design/cluster.md. */
#include "store.h"
#include "store_int.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- cluster membership (ops version 8) ---------------------------------------- */

bool gw_store_cluster_ok(const gw_store *s)
{
	return s && s->ops->member_join && s->ops->member_heartbeat && s->ops->member_list &&
	       s->ops->member_declare_dead && s->ops->member_remove && s->ops->member_gc;
}

/* member_str: a member id, address or served list the table can hold. */
static bool member_str(const char *v, bool empty_ok)
{
	return v && (empty_ok || v[0]) && strlen(v) <= GW_MEMBER_TEXT_MAX;
}

gw_err gw_store_member_join(gw_store *s, const char *id, const char *address, const char *served,
                            int64_t *now_ms)
{
	if (!s || !member_str(id, false) || strlen(id) > GW_MEMBER_ID_MAX ||
	    !member_str(address, false) || strlen(address) > GW_MEMBER_ID_MAX ||
	    !member_str(served, true))
		return GW_EINVAL;
	if (!gw_store_cluster_ok(s))
		return GW_ECONFIG;
	int64_t now = 0;
	gw_err e = s->ops->member_join(s->drv, id, address, served, &now);
	if (e == GW_OK && now_ms)
		*now_ms = now;
	return e;
}

gw_err gw_store_member_heartbeat(gw_store *s, const char *id, int status, const char *served,
                                 uint64_t view_version, bool *alive, int64_t *now_ms)
{
	if (!s || !member_str(id, false) || !member_str(served, true) || !alive ||
	    status < GW_MEMBER_JOINING || status > GW_MEMBER_LEAVING || view_version > INT64_MAX)
		return GW_EINVAL;
	if (!gw_store_cluster_ok(s))
		return GW_ECONFIG;
	int64_t now = 0;
	bool ok = false;
	gw_err e = s->ops->member_heartbeat(s->drv, id, status, served, view_version, &ok, &now);
	if (e == GW_OK) {
		*alive = ok;
		if (now_ms)
			*now_ms = now;
	}
	return e;
}

/* The rows a listing collects (member_list's callback). */
typedef struct member_acc {
	gw_member_row *v;
	size_t n, cap;
} member_acc;

static gw_err member_take(void *user, const gw_member_row *row)
{
	member_acc *a = user;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 8;
		gw_member_row *v = realloc(a->v, cap * sizeof *v);
		if (!v)
			return GW_ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	gw_member_row *r = &a->v[a->n];
	*r = *row;
	r->id = strdup(row->id ? row->id : "");
	r->address = strdup(row->address ? row->address : "");
	r->served = strdup(row->served ? row->served : "");
	if (!r->id || !r->address || !r->served) {
		free(r->id);
		free(r->address);
		free(r->served);
		return GW_ENOMEM;
	}
	a->n++;
	return GW_OK;
}

gw_err gw_store_member_list(gw_store *s, gw_member_row **rows, size_t *n, int64_t *now_ms)
{
	if (!s || !rows || !n || !now_ms)
		return GW_EINVAL;
	if (!gw_store_cluster_ok(s))
		return GW_ECONFIG;
	member_acc a = {0};
	int64_t now = 0;
	gw_err e = s->ops->member_list(s->drv, member_take, &a, &now);
	if (e != GW_OK) {
		gw_member_rows_free(a.v, a.n);
		return e;
	}
	*rows = a.v;
	*n = a.n;
	*now_ms = now;
	return GW_OK;
}

void gw_member_rows_free(gw_member_row *rows, size_t n)
{
	if (!rows)
		return;
	for (size_t i = 0; i < n; i++) {
		free(rows[i].id);
		free(rows[i].address);
		free(rows[i].served);
	}
	free(rows);
}

gw_err gw_store_member_declare_dead(gw_store *s, const char *id, int64_t observed_heartbeat_ms)
{
	if (!s || !member_str(id, false))
		return GW_EINVAL;
	if (!gw_store_cluster_ok(s))
		return GW_ECONFIG;
	bool won = false;
	gw_err e = s->ops->member_declare_dead(s->drv, id, observed_heartbeat_ms, &won);
	return e == GW_OK && !won ? GW_ECONFLICT : e;
}

gw_err gw_store_member_remove(gw_store *s, const char *id)
{
	if (!s || !member_str(id, false))
		return GW_EINVAL;
	if (!gw_store_cluster_ok(s))
		return GW_ECONFIG;
	return s->ops->member_remove(s->drv, id);
}

gw_err gw_store_member_gc(gw_store *s, int64_t dead_for_ms, uint64_t *removed)
{
	if (!s || dead_for_ms <= 0)
		return GW_EINVAL;
	if (!gw_store_cluster_ok(s))
		return GW_ECONFIG;
	uint64_t n = 0;
	gw_err e = s->ops->member_gc(s->drv, dead_for_ms, &n);
	if (e == GW_OK && removed)
		*removed = n;
	return e;
}
