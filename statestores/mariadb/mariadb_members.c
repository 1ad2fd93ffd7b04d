/* mariadb_members.c - the members table of a cluster (spawn_members,
 * store.h "cluster membership"): join, heartbeat, list, the conditional
 * dead declaration, remove and the collection of old dead rows. Every
 * time is the database's clock (DB_NOW_MS in mariadb_conn.c). */
#include "mariadb_int.h"

#include <stdlib.h>

/* member_get reads row id's heartbeat_ms (the database's now a join or a
 * heartbeat just wrote) and status (*found false:
 * no row) on mc, already held. */
static gw_err member_get(my_drv *d, my_conn *mc, bool fresh, const char *id, bool *found,
                         int64_t *now_ms, int *status)
{
	my_binds x;
	b_str(&x, 0, id);
	gw_err e = gwi_my_exec_first(d, mc, fresh, ST_MEMBER_GET, &x, "member");
	if (e != GW_OK)
		return e;
	MYSQL_STMT *st = mc->st[ST_MEMBER_GET];
	long long now = 0, s = 0;
	MYSQL_BIND r[2];
	memset(r, 0, sizeof r);
	r[0].buffer_type = MYSQL_TYPE_LONGLONG;
	r[0].buffer = &now;
	r[1].buffer_type = MYSQL_TYPE_LONGLONG;
	r[1].buffer = &s;
	if (mysql_stmt_bind_result(st, r) != 0) {
		e = gwi_my_fail(d, mc, st, "member (bind)");
	} else {
		int rc = mysql_stmt_fetch(st);
		if (rc == 0) {
			*found = true;
			*now_ms = now;
			*status = (int)s;
		} else if (rc == MYSQL_NO_DATA) {
			*found = false;
		} else {
			e = gwi_my_fail(d, mc, st, "member (fetch)");
		}
	}
	if (mc->m)
		mysql_stmt_free_result(st);
	return e;
}

gw_err gwi_my_member_join(void *drv, const char *id, const char *address, const char *served,
                          int64_t *now_ms)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh, found = false;
	gw_err e = gwi_my_conn_acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	my_binds x;
	b_str(&x, 0, id);
	b_str(&x, 1, address);
	b_str(&x, 2, served);
	int status = 0;
	if ((e = gwi_my_exec_first(d, mc, fresh, ST_MEMBER_JOIN, &x, "member join")) == GW_OK) {
		if (mysql_stmt_affected_rows(mc->st[ST_MEMBER_JOIN]) != 1)
			e = GW_ECONFLICT; /* the id exists */
		else if ((e = member_get(d, mc, false, id, &found, now_ms, &status)) == GW_OK &&
		         !found)
			e = GW_ECORRUPT;
	}
	gwi_my_conn_release(d, mc);
	return e;
}

gw_err gwi_my_member_heartbeat(void *drv, const char *id, int status, const char *served,
                               uint64_t view_version, bool *alive, int64_t *now_ms)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh, found = false;
	gw_err e = gwi_my_conn_acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	my_binds x;
	b_int(&x, 0, 0, (uint64_t)status);
	b_str(&x, 1, served);
	b_int(&x, 2, 1, view_version);
	b_str(&x, 3, id);
	/* Then read the row back: DEAD is final, so a status read after the
	 * update that is not DEAD means the update was written (affected rows
	 * would say 0 for a heartbeat in the same millisecond as the last). */
	int now_status = 0;
	if ((e = gwi_my_exec_first(d, mc, fresh, ST_MEMBER_HEARTBEAT, &x, "member heartbeat")) ==
	        GW_OK &&
	    (e = member_get(d, mc, false, id, &found, now_ms, &now_status)) == GW_OK) {
		/* No row: *now_ms stays unknown (0); the member fences anyway. */
		*alive = found && now_status != GW_MEMBER_DEAD;
	}
	gwi_my_conn_release(d, mc);
	return e;
}

gw_err gwi_my_member_list(void *drv, gw_err (*fn)(void *user, const gw_member_row *row), void *user,
                          int64_t *now_ms)
{
	my_drv *d = drv;
	my_conn *mc;
	my_binds x;
	memset(&x, 0, sizeof x);
	gw_err e = gwi_my_query(d, ST_MEMBER_LIST, &x, "members", &mc);
	if (e != GW_OK)
		return e;
	MYSQL_STMT *st = mc->st[ST_MEMBER_LIST];
	MYSQL_BIND r[8];
	long long now = 0, status = 0, started = 0, hb = 0, vv = 0;
	unsigned long len[8] = {0};
	my_bool null[8] = {0};
	memset(r, 0, sizeof r);
	long long *ints[8] = {&now, NULL, NULL, &status, &started, &hb, NULL, &vv};
	for (int c = 0; c < 8; c++) {
		r[c].is_null = &null[c];
		r[c].length = &len[c];
		if (ints[c]) {
			r[c].buffer_type = MYSQL_TYPE_LONGLONG;
			r[c].buffer = ints[c];
		} else {
			r[c].buffer_type = MYSQL_TYPE_BLOB; /* measured, then fetch_bytes */
		}
	}
	if (mysql_stmt_bind_result(st, r) != 0) {
		e = gwi_my_fail(d, mc, st, "members (bind)");
		goto out;
	}
	int rc;
	bool any = false;
	while ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
		any = true;
		*now_ms = now;
		if (null[1])
			continue; /* the LEFT JOIN's row of an empty table */
		char *id = NULL, *address = NULL, *served = NULL;
		if ((e = gwi_my_fetch_bytes(d, mc, st, 1, len[1], &id)) == GW_OK &&
		    (e = gwi_my_fetch_bytes(d, mc, st, 2, len[2], &address)) == GW_OK &&
		    (e = gwi_my_fetch_bytes(d, mc, st, 6, len[6], &served)) == GW_OK) {
			gw_member_row row = {
			    .id = id,
			    .address = address,
			    .status = (int)status,
			    .started_ms = started,
			    .heartbeat_ms = hb,
			    .served = served,
			    .view_version = (uint64_t)vv,
			};
			e = fn(user, &row);
		}
		free(id);
		free(address);
		free(served);
		if (e != GW_OK)
			goto out;
	}
	if (rc != MYSQL_NO_DATA)
		e = gwi_my_fail(d, mc, st, "members (fetch)");
	else if (!any)
		e = GW_ECORRUPT;
out:
	gwi_my_query_end(d, mc, ST_MEMBER_LIST);
	return e;
}

gw_err gwi_my_member_declare_dead(void *drv, const char *id, int64_t observed, bool *won)
{
	my_binds x;
	b_str(&x, 0, id);
	b_int(&x, 1, 0, (uint64_t)observed);
	return gwi_my_command(drv, ST_MEMBER_DEAD, &x, "member dead", won);
}

gw_err gwi_my_member_remove(void *drv, const char *id)
{
	my_binds x;
	b_str(&x, 0, id);
	return gwi_my_command(drv, ST_MEMBER_REMOVE, &x, "member remove", NULL);
}

gw_err gwi_my_member_gc(void *drv, int64_t dead_for_ms, uint64_t *removed)
{
	my_drv *d = drv;
	my_conn *mc;
	bool fresh;
	gw_err e = gwi_my_conn_acquire(d, &mc, &fresh);
	if (e != GW_OK)
		return e;
	my_binds x;
	b_int(&x, 0, 0, (uint64_t)dead_for_ms);
	if ((e = gwi_my_exec_first(d, mc, fresh, ST_MEMBER_GC, &x, "member gc")) == GW_OK)
		*removed = (uint64_t)mysql_stmt_affected_rows(mc->st[ST_MEMBER_GC]);
	gwi_my_conn_release(d, mc);
	return e;
}
