/* postgres_members.c - the members table of a cluster (spawn_members,
 * store.h "cluster membership"): join, heartbeat, list, the conditional
 * dead declaration, remove and the collection of old dead rows. Every
 * time is the database's clock (DB_NOW_MS in postgres_conn.c). */
#include "postgres_int.h"

#include <stdlib.h>
#include <string.h>

gw_err gwi_pg_member_join(void *drv, const char *id, const char *address, const char *served,
                          int64_t *now_ms)
{
	pg_drv *d = drv;
	pg_conn *pc;
	PGresult *r;
	pg_params p;
	p_text(&p, 0, id);
	p_text(&p, 1, address);
	p_text(&p, 2, served);
	gw_err e = gwi_pg_query(d, ST_MEMBER_JOIN, &p, &pc, &r);
	if (e != GW_OK)
		return e;
	uint64_t now;
	if (PQntuples(r) == 0)
		e = GW_ECONFLICT; /* the id exists */
	else if (!gwi_pg_get_int8(r, 0, 0, &now))
		e = GW_ECORRUPT;
	else
		*now_ms = (int64_t)now;
	gwi_pg_query_end(d, pc, r);
	return e;
}

gw_err gwi_pg_member_heartbeat(void *drv, const char *id, int status, const char *served,
                               uint64_t view_version, bool *alive, int64_t *now_ms)
{
	pg_drv *d = drv;
	pg_conn *pc;
	PGresult *r;
	pg_params p;
	p_text(&p, 0, id);
	p_int(&p, 1, 0, (uint64_t)status);
	p_text(&p, 2, served);
	p_int(&p, 3, 1, view_version);
	gw_err e = gwi_pg_query(d, ST_MEMBER_HEARTBEAT, &p, &pc, &r);
	if (e != GW_OK)
		return e;
	uint64_t now, n;
	if (PQntuples(r) != 1 || !gwi_pg_get_int8(r, 0, 0, &now) || !gwi_pg_get_int8(r, 0, 1, &n)) {
		e = GW_ECORRUPT;
	} else {
		*now_ms = (int64_t)now;
		*alive = n == 1;
	}
	gwi_pg_query_end(d, pc, r);
	return e;
}

gw_err gwi_pg_member_list(void *drv, gw_err (*fn)(void *user, const gw_member_row *row), void *user,
                          int64_t *now_ms)
{
	pg_drv *d = drv;
	pg_conn *pc;
	PGresult *r;
	pg_params p = {0}; /* no parameters */
	gw_err e = gwi_pg_query(d, ST_MEMBER_LIST, &p, &pc, &r);
	if (e != GW_OK)
		return e;
	uint64_t now;
	if (PQntuples(r) < 1 || !gwi_pg_get_int8(r, 0, 0, &now)) {
		e = GW_ECORRUPT;
		goto out;
	}
	*now_ms = (int64_t)now;
	for (int i = 0; i < PQntuples(r) && e == GW_OK; i++) {
		if (PQgetisnull(r, i, 1))
			continue; /* the LEFT JOIN's row of an empty table */
		uint64_t st, started, hb, vv;
		if (!gwi_pg_get_int8(r, i, 3, &st) || !gwi_pg_get_int8(r, i, 4, &started) ||
		    !gwi_pg_get_int8(r, i, 5, &hb) || !gwi_pg_get_int8(r, i, 7, &vv)) {
			e = GW_ECORRUPT;
			break;
		}
		gw_member_row row = {
		    .id = PQgetvalue(r, i, 1),
		    .address = PQgetvalue(r, i, 2),
		    .status = (int)st,
		    .started_ms = (int64_t)started,
		    .heartbeat_ms = (int64_t)hb,
		    .served = PQgetvalue(r, i, 6),
		    .view_version = vv,
		};
		e = fn(user, &row);
	}
out:
	gwi_pg_query_end(d, pc, r);
	return e;
}

gw_err gwi_pg_member_declare_dead(void *drv, const char *id, int64_t observed, bool *won)
{
	pg_params p;
	p_text(&p, 0, id);
	p_int(&p, 1, 0, (uint64_t)observed);
	return gwi_pg_command(drv, ST_MEMBER_DEAD, &p, won);
}

gw_err gwi_pg_member_remove(void *drv, const char *id)
{
	pg_params p;
	p_text(&p, 0, id);
	return gwi_pg_command(drv, ST_MEMBER_REMOVE, &p, NULL);
}

gw_err gwi_pg_member_gc(void *drv, int64_t dead_for_ms, uint64_t *removed)
{
	pg_params p;
	p_int(&p, 0, 0, (uint64_t)dead_for_ms);
	return gwi_pg_query_int8(drv, ST_MEMBER_GC, &p, removed);
}
