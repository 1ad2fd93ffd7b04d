/* store_members.c - the conformance cases of the members table of a cluster
 * (store.h "cluster membership", ops version 8): join, heartbeat and list
 * on the database's clock, the conditional dead declaration (two members
 * declaring the same third: exactly one wins; a heartbeat after the
 * observation makes it miss), leave and the collection of old dead rows.
 * SQLite has no members table: every call there is GW_ECONFIG. */
#include "conformance.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* find returns row id of rows[0..n), or NULL. */
static const gw_member_row *find(const gw_member_row *rows, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].id, id) == 0)
			return &rows[i];
	return NULL;
}

/* observe lists the table and copies row id into *out (false: no row). */
static bool observe(gw_store *s, const char *id, gw_member_row *out, int64_t *now)
{
	gw_member_row *rows = NULL;
	size_t n = 0;
	int64_t t = 0;
	ck_assert_int_eq(gw_store_member_list(s, &rows, &n, &t), GW_OK);
	const gw_member_row *r = find(rows, n, id);
	if (r) {
		*out = *r;
		out->id = out->address = out->served = NULL; /* not kept */
	}
	if (now)
		*now = t;
	gw_member_rows_free(rows, n);
	return r != NULL;
}

/* sqlite_refuses: on a store without the members table every call says
 * GW_ECONFIG. true when c's store is such a one (the test ends there). */
static bool sqlite_refuses(ctx *c)
{
	if (gw_store_cluster_ok(c->s))
		return false;
	int64_t now;
	bool alive;
	gw_member_row *rows;
	size_t n;
	ck_assert_int_eq(gw_store_member_join(c->s, "a@1-x", "127.0.0.1:1", "", &now), GW_ECONFIG);
	ck_assert_int_eq(
	    gw_store_member_heartbeat(c->s, "a@1-x", GW_MEMBER_ACTIVE, "", 1, &alive, &now),
	    GW_ECONFIG);
	ck_assert_int_eq(gw_store_member_list(c->s, &rows, &n, &now), GW_ECONFIG);
	ck_assert_int_eq(gw_store_member_declare_dead(c->s, "a@1-x", 1), GW_ECONFIG);
	ck_assert_int_eq(gw_store_member_remove(c->s, "a@1-x"), GW_ECONFIG);
	ck_assert_int_eq(gw_store_member_gc(c->s, 1000, NULL), GW_ECONFIG);
	ctx_close(c);
	return true;
}

START_TEST(members_join_heartbeat_and_list_on_the_databases_clock)
{
	ctx c;
	ctx_open(&c, _i);
	if (sqlite_refuses(&c))
		return;
	char id[128];
	snprintf(id, sizeof id, "127.0.0.1:7000@%s", c.sys);
	int64_t joined = 0, now = 0;
	ck_assert_int_eq(gw_store_member_join(c.s, id, "127.0.0.1:7000", "", &joined), GW_OK);
	ck_assert_int_gt(joined, 1600000000000LL); /* ms since the epoch */
	/* An id is unique: a second join of it writes nothing. */
	ck_assert_int_eq(gw_store_member_join(c.s, id, "127.0.0.1:9", "x/y", NULL), GW_ECONFLICT);
	ck_assert_int_eq(gw_store_member_join(c.s, "", "a:1", "", NULL), GW_EINVAL);
	ck_assert_int_eq(gw_store_member_join(c.s, id, NULL, "", NULL), GW_EINVAL);

	gw_member_row r;
	ck_assert(observe(c.s, id, &r, &now));
	ck_assert_int_eq(r.status, GW_MEMBER_JOINING);
	ck_assert_int_eq(r.started_ms, joined);
	ck_assert_int_eq(r.heartbeat_ms, joined);
	ck_assert_int_ge(now, joined);

	bool alive = false;
	int64_t hb = 0;
	ck_assert_int_eq(
	    gw_store_member_heartbeat(c.s, id, GW_MEMBER_ACTIVE, "sys/a\nsys/b", 3, &alive, &hb),
	    GW_OK);
	ck_assert(alive);
	ck_assert_int_ge(hb, joined);
	gw_member_rows_free(NULL, 0);
	gw_member_row *rows = NULL;
	size_t n = 0;
	ck_assert_int_eq(gw_store_member_list(c.s, &rows, &n, &now), GW_OK);
	const gw_member_row *m = find(rows, n, id);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->status, GW_MEMBER_ACTIVE);
	ck_assert_str_eq(m->address, "127.0.0.1:7000");
	ck_assert_str_eq(m->served, "sys/a\nsys/b");
	ck_assert_uint_eq(m->view_version, 3);
	ck_assert_int_eq(m->heartbeat_ms, hb);
	ck_assert_int_eq(m->started_ms, joined);
	ck_assert_int_ge(now, hb);
	gw_member_rows_free(rows, n);

	/* A status out of the living range, or an unknown id. */
	ck_assert_int_eq(gw_store_member_heartbeat(c.s, id, GW_MEMBER_DEAD, "", 1, &alive, NULL),
	                 GW_EINVAL);
	ck_assert_int_eq(
	    gw_store_member_heartbeat(c.s, "nobody", GW_MEMBER_ACTIVE, "", 1, &alive, NULL), GW_OK);
	ck_assert(!alive);

	/* Graceful leave: LEAVING, then the row goes. */
	ck_assert_int_eq(gw_store_member_heartbeat(c.s, id, GW_MEMBER_LEAVING, "", 4, &alive, NULL),
	                 GW_OK);
	ck_assert(alive);
	ck_assert(observe(c.s, id, &r, NULL));
	ck_assert_int_eq(r.status, GW_MEMBER_LEAVING);
	ck_assert_int_eq(gw_store_member_remove(c.s, id), GW_OK);
	ck_assert(!observe(c.s, id, &r, NULL));
	ck_assert_int_eq(gw_store_member_remove(c.s, id), GW_OK);
	ck_assert_int_eq(gw_store_member_heartbeat(c.s, id, GW_MEMBER_ACTIVE, "", 5, &alive, NULL),
	                 GW_OK);
	ck_assert(!alive); /* gone: the member must fence itself */
	ctx_close(&c);
}
END_TEST

typedef struct declarer {
	gw_store *s;
	const char *id;
	int64_t observed;
	pthread_barrier_t *bar;
	gw_err got;
} declarer;

static void *declare(void *arg)
{
	declarer *d = arg;
	pthread_barrier_wait(d->bar);
	d->got = gw_store_member_declare_dead(d->s, d->id, d->observed);
	return NULL;
}

#define RACES 20

START_TEST(two_members_declaring_the_same_third_dead_exactly_one_wins)
{
	ctx c;
	ctx_open(&c, _i);
	if (sqlite_refuses(&c))
		return;
	gw_store *s2 = must_open(&c, TEST_KEY);
	for (int k = 0; k < RACES; k++) {
		char id[128];
		snprintf(id, sizeof id, "127.0.0.1:7001@%s-%d", c.sys, k);
		bool alive;
		ck_assert_int_eq(gw_store_member_join(c.s, id, "127.0.0.1:7001", "", NULL), GW_OK);
		ck_assert_int_eq(
		    gw_store_member_heartbeat(c.s, id, GW_MEMBER_ACTIVE, "s/t", 1, &alive, NULL),
		    GW_OK);
		gw_member_row r;
		ck_assert(observe(c.s, id, &r, NULL));
		pthread_barrier_t bar;
		ck_assert_int_eq(pthread_barrier_init(&bar, NULL, 2), 0);
		declarer d[2] = {{.s = c.s, .id = id, .observed = r.heartbeat_ms, .bar = &bar},
		                 {.s = s2, .id = id, .observed = r.heartbeat_ms, .bar = &bar}};
		pthread_t th[2];
		for (int i = 0; i < 2; i++)
			ck_assert_int_eq(pthread_create(&th[i], NULL, declare, &d[i]), 0);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&bar);
		int won = (d[0].got == GW_OK) + (d[1].got == GW_OK);
		int lost = (d[0].got == GW_ECONFLICT) + (d[1].got == GW_ECONFLICT);
		ck_assert_msg(won == 1 && lost == 1, "[%s] race %d: %s / %s", c.t->name, k,
		              gw_strerror(d[0].got), gw_strerror(d[1].got));
		ck_assert(observe(c.s, id, &r, NULL));
		ck_assert_int_eq(r.status, GW_MEMBER_DEAD);
		/* The dead member's next heartbeat finds out, and writes nothing. */
		ck_assert_int_eq(
		    gw_store_member_heartbeat(c.s, id, GW_MEMBER_ACTIVE, "", 2, &alive, NULL),
		    GW_OK);
		ck_assert(!alive);
		gw_member_row after;
		ck_assert(observe(c.s, id, &after, NULL));
		ck_assert_int_eq(after.status, GW_MEMBER_DEAD);
		ck_assert_int_eq(after.heartbeat_ms, r.heartbeat_ms);
		/* Declared once: a second declaration changes nothing. */
		ck_assert_int_eq(gw_store_member_declare_dead(s2, id, r.heartbeat_ms),
		                 GW_ECONFLICT);
	}
	gw_store_close(s2);
	ctx_close(&c);
}
END_TEST

START_TEST(a_heartbeat_after_the_observation_makes_the_declaration_fail)
{
	ctx c;
	ctx_open(&c, _i);
	if (sqlite_refuses(&c))
		return;
	char id[128];
	snprintf(id, sizeof id, "127.0.0.1:7002@%s", c.sys);
	bool alive;
	ck_assert_int_eq(gw_store_member_join(c.s, id, "127.0.0.1:7002", "", NULL), GW_OK);
	gw_member_row seen;
	ck_assert(observe(c.s, id, &seen, NULL));
	/* Heartbeat until the database's clock has moved past the observed
	 * heartbeat (a millisecond), as a live member does. */
	int64_t hb = seen.heartbeat_ms;
	for (int i = 0; i < 100000 && hb == seen.heartbeat_ms; i++)
		ck_assert_int_eq(
		    gw_store_member_heartbeat(c.s, id, GW_MEMBER_ACTIVE, "", 1, &alive, &hb),
		    GW_OK);
	ck_assert_int_gt(hb, seen.heartbeat_ms);
	ck_assert_int_eq(gw_store_member_declare_dead(c.s, id, seen.heartbeat_ms), GW_ECONFLICT);
	gw_member_row now;
	ck_assert(observe(c.s, id, &now, NULL));
	ck_assert_int_eq(now.status, GW_MEMBER_ACTIVE);
	/* With the current observation it is declared; and a LEAVING member
	 * can be declared too (it may die while it drains). */
	ck_assert_int_eq(gw_store_member_heartbeat(c.s, id, GW_MEMBER_LEAVING, "", 1, &alive, NULL),
	                 GW_OK);
	ck_assert(observe(c.s, id, &now, NULL));
	ck_assert_int_eq(gw_store_member_declare_dead(c.s, id, now.heartbeat_ms), GW_OK);
	/* No such member: nothing to declare. */
	ck_assert_int_eq(gw_store_member_declare_dead(c.s, "127.0.0.1:1@none", 1), GW_ECONFLICT);
	ctx_close(&c);
}
END_TEST

START_TEST(dead_rows_are_collected_once_old_and_live_rows_never)
{
	ctx c;
	ctx_open(&c, _i);
	if (sqlite_refuses(&c))
		return;
	char dead[128], live[128];
	snprintf(dead, sizeof dead, "127.0.0.1:7003@%s-dead", c.sys);
	snprintf(live, sizeof live, "127.0.0.1:7003@%s-live", c.sys);
	ck_assert_int_eq(gw_store_member_join(c.s, dead, "127.0.0.1:7003", "", NULL), GW_OK);
	ck_assert_int_eq(gw_store_member_join(c.s, live, "127.0.0.1:7004", "", NULL), GW_OK);
	gw_member_row r;
	ck_assert(observe(c.s, dead, &r, NULL));
	ck_assert_int_eq(gw_store_member_declare_dead(c.s, dead, r.heartbeat_ms), GW_OK);
	/* Not old enough for an hour-long bound. */
	uint64_t removed = 99;
	ck_assert_int_eq(gw_store_member_gc(c.s, 3600 * 1000, &removed), GW_OK);
	ck_assert(observe(c.s, dead, &r, NULL));
	ck_assert_int_eq(gw_store_member_gc(c.s, 0, NULL), GW_EINVAL);
	/* Wait (on the database's clock) until it is 2 ms old. */
	int64_t now = 0;
	for (int i = 0; i < 100000 && now <= r.heartbeat_ms + 2; i++) {
		gw_member_row x;
		ck_assert(observe(c.s, live, &x, &now));
	}
	ck_assert_int_eq(gw_store_member_gc(c.s, 1, &removed), GW_OK);
	ck_assert_uint_ge(removed, 1);
	ck_assert(!observe(c.s, dead, &r, NULL));
	ck_assert(observe(c.s, live, &r, NULL)); /* JOINING: never collected */
	ck_assert_int_eq(gw_store_member_remove(c.s, live), GW_OK);
	ctx_close(&c);
}
END_TEST

void conf_add_members(Suite *s, int ntargets)
{
	CONF_ADD(s, members_join_heartbeat_and_list_on_the_databases_clock, 60, ntargets);
	CONF_ADD(s, two_members_declaring_the_same_third_dead_exactly_one_wins, 120, ntargets);
	CONF_ADD(s, a_heartbeat_after_the_observation_makes_the_declaration_fail, 60, ntargets);
	CONF_ADD(s, dead_rows_are_collected_once_old_and_live_rows_never, 60, ntargets);
}
