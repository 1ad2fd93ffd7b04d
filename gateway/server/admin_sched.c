/* admin_sched.c - Admin.ListSchedules and Admin.CancelSchedule (part
 * spawnctl; docs/spawnctl.md): the stored scheduled invocations, read and
 * deleted on the persist thread (gw_persist_call: the store blocks).
 *
 * A list page reads the rows in id order from just after the page token,
 * in chunks of SCHED_CHUNK, opening each: with a system, only the ids that
 * start with its prefix (gw_runtime_sched_prefix: the gateway starts every
 * id with its system's hash, so other systems' rows are never read, though
 * two systems whose hashes collide share a range and are told apart by the
 * invocation itself); with an actor, only the invocations naming it. A
 * page ends at page_size items, at the end of the rows, or after
 * SCHED_READ_MAX rows read: the token is then the last id read, and the
 * next page goes on from there.
 *
 * A cancel reads the one row (to answer NOT_FOUND, and what it was), then
 * deletes it (gw_store_schedule_done) and gives its quota slot back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server_int.h"
#include "store.h"

#define SCHED_PAGE_DEFAULT 100
#define SCHED_PAGE_MAX     1000
#define SCHED_CHUNK        256
#define SCHED_READ_MAX     4096

typedef Spawn__Gateway__V1__ScheduleInfo sched_info;

static bool id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > GW_SCHED_ID_MAX)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == ':' || *p == '-'))
			return false;
	return true;
}

/* A page in the making (persist thread). */
typedef struct sjob {
	gwi_ucall *c;
	char *system, *actor; /* owned; "" = any */
	char prefix[16];      /* the system's id prefix; "" = every system */
	char after[GW_SCHED_ID_MAX + 1];
	size_t page;
	sched_info **items; /* owned: page entries, n used */
	size_t n;
	bool oom;
	/* cancel: the one row */
	char id[GW_SCHED_ID_MAX + 1];
	bool found;
} sjob;

static void sjob_free(sjob *j)
{
	for (size_t i = 0; j->items && i < j->n; i++) {
		free(j->items[i]->id);
		free(j->items[i]->system);
		free(j->items[i]->actor);
		free(j->items[i]->action);
		free(j->items[i]);
	}
	free(j->items);
	free(j->system);
	free(j->actor);
	free(j);
}

static char *dup_or_empty(const char *s, bool *oom)
{
	char *d = strdup(s ? s : "");
	if (!d)
		*oom = true;
	return d;
}

/* one_row: a row that opened; kept when it matches the filters. */
static void one_row(void *user, const char *id, int64_t due_ms, const uint8_t *data, size_t len)
{
	sjob *j = user;
	if (j->oom || j->n >= j->page)
		return;
	Spawn__InvocationRequest *rq = spawn__invocation_request__unpack(NULL, len, data);
	if (!rq)
		return; /* a row that is not an invocation: not shown */
	const char *system = rq->system && rq->system->name && rq->system->name[0]
	                         ? rq->system->name
	                         : (rq->actor && rq->actor->id ? rq->actor->id->system : "");
	const char *actor = rq->actor && rq->actor->id ? rq->actor->id->name : "";
	bool keep = (!j->system[0] || strcmp(system ? system : "", j->system) == 0) &&
	            (!j->actor[0] || strcmp(actor ? actor : "", j->actor) == 0);
	if (keep) {
		sched_info *si = calloc(1, sizeof *si);
		if (!si) {
			j->oom = true;
		} else {
			spawn__gateway__v1__schedule_info__init(si);
			si->id = dup_or_empty(id, &j->oom);
			si->due_unix_ms = due_ms;
			si->system = dup_or_empty(system, &j->oom);
			si->actor = dup_or_empty(actor, &j->oom);
			si->action = dup_or_empty(rq->action_name, &j->oom);
			j->items[j->n++] = si;
			if (strcmp(id, j->id) == 0)
				j->found = true;
		}
	}
	spawn__invocation_request__free_unpacked(rq, NULL);
}

static void list_run(void *arg, gw_store *store)
{
	sjob *j = arg;
	char below[GW_SCHED_ID_MAX + 2] = "";
	if (j->prefix[0]) {
		/* the ids that start with the prefix: before it with its last
		 * byte raised */
		snprintf(below, sizeof below, "%s", j->prefix);
		below[strlen(below) - 1]++;
		if (strcmp(j->after, j->prefix) < 0)
			snprintf(j->after, sizeof j->after, "%s", j->prefix);
	}
	size_t read = 0, got = 0;
	char last[GW_SCHED_ID_MAX + 1] = "";
	gw_err e = GW_OK;
	bool more = true;
	while (more && !j->oom && j->n < j->page && read < SCHED_READ_MAX) {
		e = gw_store_schedule_scan(store, j->after, below[0] ? below : NULL, SCHED_CHUNK,
		                           one_row, j, &got, last);
		if (e != GW_OK)
			break;
		read += got;
		more = got == SCHED_CHUNK;
		if (got)
			snprintf(j->after, sizeof j->after, "%s", last);
	}
	if (e != GW_OK || j->oom) {
		gwi_ucall_reply(j->c, j->oom ? GRPC_STATUS_RESOURCE_EXHAUSTED : gw_err_status(e),
		                j->oom ? "out of memory" : gw_strerror(e), NULL);
	} else {
		Spawn__Gateway__V1__ScheduleList l = SPAWN__GATEWAY__V1__SCHEDULE_LIST__INIT;
		l.n_schedules = j->n;
		l.schedules = j->items;
		/* A full page goes on after its last item (the rest of its chunk
		 * is read again); a page cut by the reading bound goes on after
		 * the last row read; otherwise the rows ended. */
		l.next_page_token = j->n == j->page ? j->items[j->n - 1]->id : more ? j->after : "";
		gwi_ucall_reply(j->c, GRPC_STATUS_OK, NULL, &l.base);
	}
	sjob_free(j);
}

static sjob *sjob_new(gwi_ucall *c, const char *system, const char *actor, size_t page)
{
	sjob *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->c = c;
	j->page = page;
	j->system = strdup(system ? system : "");
	j->actor = strdup(actor ? actor : "");
	j->items = calloc(page, sizeof *j->items);
	if (!j->system || !j->actor || !j->items) {
		sjob_free(j);
		return NULL;
	}
	if (j->system[0])
		gw_runtime_sched_prefix(j->system, j->prefix);
	return j;
}

void gwi_admin_list_schedules(gwi_ucall *c, const Spawn__Gateway__V1__ListSchedulesRequest *rq)
{
	const char *bad = rq->page_size > SCHED_PAGE_MAX ? "page_size is over 1000"
	                  : rq->page_token && rq->page_token[0] && !id_ok(rq->page_token)
	                      ? "page_token is not a schedule id"
	                  : rq->actor && rq->actor[0] && !(rq->system && rq->system[0])
	                      ? "actor needs its system"
	                      : NULL;
	if (bad) {
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, bad, NULL);
		return;
	}
	sjob *j =
	    sjob_new(c, rq->system, rq->actor, rq->page_size ? rq->page_size : SCHED_PAGE_DEFAULT);
	if (!j) {
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	snprintf(j->after, sizeof j->after, "%s", rq->page_token ? rq->page_token : "");
	if (gw_persist_call(gw_runtime_persist(c->srv->rt), list_run, j) != GW_OK) {
		sjob_free(j);
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
	}
}

static void cancel_run(void *arg, gw_store *store)
{
	sjob *j = arg;
	/* exactly the row j->id: after the largest string below it, below the
	 * smallest above it (no id character sorts under 0x01 or over 0x7e) */
	char after[GW_SCHED_ID_MAX + 2], below[GW_SCHED_ID_MAX + 3];
	size_t l = strlen(j->id);
	memcpy(after, j->id, l + 1);
	after[l - 1]--;
	after[l] = 0x7f;
	after[l + 1] = 0;
	snprintf(below, sizeof below, "%s\x01", j->id);
	size_t got = 0;
	char last[GW_SCHED_ID_MAX + 1];
	gw_err e = gw_store_schedule_scan(store, after, below, 4, one_row, j, &got, last);
	if (e == GW_OK && !j->found && !j->oom) {
		char m[200];
		snprintf(m, sizeof m, "no stored scheduled invocation '%s'", j->id);
		gwi_ucall_reply(j->c, GRPC_STATUS_NOT_FOUND, m, NULL);
		sjob_free(j);
		return;
	}
	if (e == GW_OK && !j->oom)
		e = gw_store_schedule_done(store, j->id);
	if (e != GW_OK || j->oom) {
		gwi_ucall_reply(j->c, j->oom ? GRPC_STATUS_RESOURCE_EXHAUSTED : gw_err_status(e),
		                j->oom ? "out of memory" : gw_strerror(e), NULL);
	} else {
		gw_runtime_schedule_gone(j->c->srv->rt, j->id);
		GW_INFO("scheduled invocation %s (%s/%s.%s) cancelled", j->id, j->items[0]->system,
		        j->items[0]->actor, j->items[0]->action);
		Spawn__Gateway__V1__CancelScheduleReply r =
		    SPAWN__GATEWAY__V1__CANCEL_SCHEDULE_REPLY__INIT;
		r.schedule = j->items[0];
		gwi_ucall_reply(j->c, GRPC_STATUS_OK, NULL, &r.base);
	}
	sjob_free(j);
}

void gwi_admin_cancel_schedule(gwi_ucall *c, const Spawn__Gateway__V1__ScheduleRef *rq)
{
	if (!rq->id || !id_ok(rq->id)) {
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT,
		                "id is required: a schedule id (1..39 of [A-Za-z0-9_.:-])", NULL);
		return;
	}
	sjob *j = sjob_new(c, "", "", 4);
	if (!j) {
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	snprintf(j->id, sizeof j->id, "%s", rq->id);
	if (gw_persist_call(gw_runtime_persist(c->srv->rt), cancel_run, j) != GW_OK) {
		sjob_free(j);
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
	}
}
