/* store_lease.c - the conformance cases of the activation lease (store.h
 * "activation leases", ops version 10): an epoch is taken only when the row
 * has no owner, is the member's own, or its owner is not live (DEAD or
 * gone), and only by a live member; two live members racing for one actor
 * never both win; a batch takes the free keys and loads them; a release
 * clears only the member's own row at its own epoch; Forget clears it.
 * SQLite has no members table: every lease call there is GW_ECONFIG. */
#include "conformance.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RACES 20

/* join makes member id (unique per test: c->sys in it) ACTIVE. */
static void join(ctx *c, char *id, size_t cap, const char *name)
{
	snprintf(id, cap, "127.0.0.1:%s@%s", name, c->sys);
	bool alive = false;
	ck_assert_int_eq(gw_store_member_join(c->s, id, "127.0.0.1:1", "", NULL), GW_OK);
	ck_assert_int_eq(gw_store_member_heartbeat(c->s, id, GW_MEMBER_ACTIVE, "", 1, &alive, NULL),
	                 GW_OK);
	ck_assert(alive);
}

/* heartbeat_of reads member id's heartbeat_ms (what a declarer observes). */
static int64_t heartbeat_of(gw_store *s, const char *id)
{
	gw_member_row *rows = NULL;
	size_t n = 0;
	int64_t now = 0, hb = -1;
	ck_assert_int_eq(gw_store_member_list(s, &rows, &n, &now), GW_OK);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(rows[i].id, id))
			hb = rows[i].heartbeat_ms;
	gw_member_rows_free(rows, n);
	ck_assert_int_ge(hb, 0);
	return hb;
}

static bool sqlite_refuses(ctx *c)
{
	if (gw_store_lease_ok(c->s))
		return false;
	gw_actor_key k = {c->sys, "a"};
	uint64_t e = 0;
	gw_loaded out;
	gw_err r;
	ck_assert_int_eq(gw_store_lease_acquire(c->s, &k, "m@1-x", &e, NULL, 0), GW_ECONFIG);
	ck_assert_int_eq(gw_store_lease_activate(c->s, &k, 1, "m@1-x", &e, NULL, &out, &r),
	                 GW_ECONFIG);
	ck_assert_int_eq(r, GW_ECONFIG);
	e = 1;
	ck_assert_int_eq(gw_store_lease_release(c->s, &k, &e, 1, "m@1-x", NULL), GW_ECONFIG);
	ctx_close(c);
	return true;
}

START_TEST(the_lease_is_taken_only_when_free_mine_or_held_by_a_member_not_live)
{
	ctx c;
	ctx_open(&c, _i);
	if (sqlite_refuses(&c))
		return;
	char a[128], b[128], d[128];
	join(&c, a, sizeof a, "a");
	join(&c, b, sizeof b, "b");
	gw_actor_key k = {c.sys, "counter"};
	char holder[GW_MEMBER_ID_MAX + 1];
	uint64_t e = 0;

	/* Free: A takes it; A again (its own): a newer epoch. */
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, a, &e, holder, sizeof holder), GW_OK);
	ck_assert_uint_eq(e, 1);
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, a, &e, holder, sizeof holder), GW_OK);
	ck_assert_uint_eq(e, 2);
	/* A save with A's epoch passes the fence. */
	ck_assert_int_eq(save(c.s, c.sys, "counter", "one", 3, 0, 2), GW_OK);

	/* Held by live A: B is refused, nothing changes, A is named. */
	uint64_t eb = 77;
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, b, &eb, holder, sizeof holder), GW_EOWNED);
	ck_assert_uint_eq(eb, 77);
	ck_assert_str_eq(holder, a);
	ck_assert_int_eq(save(c.s, c.sys, "counter", "two", 3, 1, 2), GW_OK); /* still A's */

	/* A declared dead: B takes it, and A's epoch is fenced. */
	ck_assert_int_eq(gw_store_member_declare_dead(c.s, a, heartbeat_of(c.s, a)), GW_OK);
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, b, &eb, holder, sizeof holder), GW_OK);
	ck_assert_uint_eq(eb, 3);
	ck_assert_int_eq(save(c.s, c.sys, "counter", "old", 3, 2, 2), GW_EFENCED);
	/* A dead member takes nothing, not even a free actor ("" = not live). */
	gw_actor_key free_k = {c.sys, "free"};
	holder[0] = 'x';
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &free_k, a, &e, holder, sizeof holder),
	                 GW_EOWNED);
	ck_assert_str_eq(holder, "");
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, a, &e, holder, sizeof holder), GW_EOWNED);

	/* B's row gone (a leave, or collected): D takes it. */
	ck_assert_int_eq(gw_store_member_remove(c.s, b), GW_OK);
	join(&c, d, sizeof d, "d");
	uint64_t ed = 0;
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, d, &ed, holder, sizeof holder), GW_OK);
	ck_assert_uint_eq(ed, 4);

	/* Bad arguments. */
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, "", &e, NULL, 0), GW_EINVAL);
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, NULL, &e, NULL, 0), GW_EINVAL);
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, d, NULL, NULL, 0), GW_EINVAL);
	ctx_close(&c);
}
END_TEST

START_TEST(a_release_clears_only_the_members_own_lease_at_its_epoch)
{
	ctx c;
	ctx_open(&c, _i);
	if (sqlite_refuses(&c))
		return;
	char a[128], b[128];
	join(&c, a, sizeof a, "a");
	join(&c, b, sizeof b, "b");
	gw_actor_key k = {c.sys, "x"};
	char holder[GW_MEMBER_ID_MAX + 1];
	uint64_t e = 0, eb = 0, n = 99;
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, a, &e, holder, sizeof holder), GW_OK);

	/* A non-owner's release, and the owner's at another epoch: refused. */
	ck_assert_int_eq(gw_store_lease_release(c.s, &k, &e, 1, b, &n), GW_OK);
	ck_assert_uint_eq(n, 0);
	uint64_t wrong = e + 1;
	ck_assert_int_eq(gw_store_lease_release(c.s, &k, &wrong, 1, a, &n), GW_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, b, &eb, holder, sizeof holder), GW_EOWNED);
	ck_assert_str_eq(holder, a);

	/* A late release of an older activation of A's leaves the newer one. */
	uint64_t old = e;
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, a, &e, holder, sizeof holder), GW_OK);
	ck_assert_int_eq(gw_store_lease_release(c.s, &k, &old, 1, a, &n), GW_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, b, &eb, holder, sizeof holder), GW_EOWNED);

	/* The owner's release at its epoch: B takes it next. */
	ck_assert_int_eq(gw_store_lease_release(c.s, &k, &e, 1, a, &n), GW_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &k, b, &eb, holder, sizeof holder), GW_OK);
	ck_assert_uint_gt(eb, e);

	/* Several keys in one release; Forget clears the owner too. */
	gw_actor_key ks[3] = {{c.sys, "r1"}, {c.sys, "r2"}, {c.sys, "r3"}};
	uint64_t es[3];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(gw_store_lease_acquire(c.s, &ks[i], b, &es[i], NULL, 0), GW_OK);
	ck_assert_int_eq(gw_store_lease_release(c.s, ks, es, 2, b, &n), GW_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &ks[2], a, &e, holder, sizeof holder),
	                 GW_EOWNED);
	ck_assert_int_eq(gw_store_forget(c.s, &ks[2], NULL, NULL, NULL, NULL), GW_OK);
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &ks[2], a, &e, holder, sizeof holder), GW_OK);

	/* Bad arguments: a key twice, epoch 0. */
	gw_actor_key twice[2] = {{c.sys, "r1"}, {c.sys, "r1"}};
	uint64_t two[2] = {1, 1};
	ck_assert_int_eq(gw_store_lease_release(c.s, twice, two, 2, a, &n), GW_EINVAL);
	uint64_t zero = 0;
	ck_assert_int_eq(gw_store_lease_release(c.s, &k, &zero, 1, a, &n), GW_EINVAL);
	ctx_close(&c);
}
END_TEST

typedef struct racer {
	gw_store *s;
	const gw_actor_key *k;
	const char *member;
	pthread_barrier_t *bar;
	gw_err got;
	uint64_t epoch;
	char holder[GW_MEMBER_ID_MAX + 1];
	bool batch;
} racer;

static void *race(void *arg)
{
	racer *r = arg;
	pthread_barrier_wait(r->bar);
	if (r->batch) {
		gw_loaded out;
		gw_err res = GW_EIO;
		char(*h)[GW_MEMBER_ID_MAX + 1] = &r->holder;
		r->got =
		    gw_store_lease_activate(r->s, r->k, 1, r->member, &r->epoch, h, &out, &res);
		if (r->got == GW_OK) {
			r->got = res == GW_ENOTFOUND ? GW_OK : res;
			if (res == GW_OK)
				gw_loaded_fini(&out);
		}
	} else {
		r->got = gw_store_lease_acquire(r->s, r->k, r->member, &r->epoch, r->holder,
		                                sizeof r->holder);
	}
	return NULL;
}

START_TEST(two_live_members_racing_for_one_actor_never_both_win)
{
	ctx c;
	ctx_open(&c, _i);
	if (sqlite_refuses(&c))
		return;
	gw_store *s2 = must_open(&c, TEST_KEY);
	char a[128], b[128];
	join(&c, a, sizeof a, "a");
	join(&c, b, sizeof b, "b");
	for (int k = 0; k < RACES; k++) {
		char name[32];
		snprintf(name, sizeof name, "race-%d", k);
		gw_actor_key key = {c.sys, name};
		/* Half the races on a fresh actor, half on one A released; odd
		 * races use the batched activation on one side. */
		if (k % 2) {
			uint64_t e, n;
			ck_assert_int_eq(gw_store_lease_acquire(c.s, &key, a, &e, NULL, 0), GW_OK);
			ck_assert_int_eq(gw_store_lease_release(c.s, &key, &e, 1, a, &n), GW_OK);
			ck_assert_uint_eq(n, 1);
		}
		pthread_barrier_t bar;
		ck_assert_int_eq(pthread_barrier_init(&bar, NULL, 2), 0);
		racer r[2] = {{.s = c.s, .k = &key, .member = a, .bar = &bar, .batch = k % 2},
		              {.s = s2, .k = &key, .member = b, .bar = &bar}};
		pthread_t th[2];
		for (int i = 0; i < 2; i++)
			ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&bar);
		int won = (r[0].got == GW_OK) + (r[1].got == GW_OK);
		int lost = (r[0].got == GW_EOWNED) + (r[1].got == GW_EOWNED);
		ck_assert_msg(won == 1 && lost == 1, "[%s] race %d: %s / %s", c.t->name, k,
		              gw_strerror(r[0].got), gw_strerror(r[1].got));
		const racer *w = r[0].got == GW_OK ? &r[0] : &r[1];
		const racer *l = r[0].got == GW_OK ? &r[1] : &r[0];
		ck_assert_str_eq(l->holder, w->member); /* the loser names the winner */
		/* The winner's epoch is the current one: its save passes. */
		ck_assert_int_eq(save(c.s, c.sys, name, "v", 1, 0, w->epoch), GW_OK);
	}
	gw_store_close(s2);
	ctx_close(&c);
}
END_TEST

START_TEST(a_lease_batch_takes_the_free_keys_loads_them_and_names_the_holders)
{
	ctx c;
	ctx_open(&c, _i);
	if (sqlite_refuses(&c))
		return;
	char a[128], b[128];
	join(&c, a, sizeof a, "a");
	join(&c, b, sizeof b, "b");
	gw_actor_key keys[4] = {{c.sys, "held"}, {c.sys, "saved"}, {c.sys, "new"}, {c.sys, "mine"}};
	uint64_t e;
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &keys[0], b, &e, NULL, 0), GW_OK);
	ck_assert_int_eq(save(c.s, c.sys, "saved", "state", 5, 0, 0), GW_OK);
	uint64_t mine = 0;
	ck_assert_int_eq(gw_store_lease_acquire(c.s, &keys[3], a, &mine, NULL, 0), GW_OK);

	uint64_t epochs[4] = {0, 0, 0, 0};
	char holders[4][GW_MEMBER_ID_MAX + 1];
	gw_loaded out[4];
	gw_err res[4];
	ck_assert_int_eq(gw_store_lease_activate(c.s, keys, 4, a, epochs, holders, out, res),
	                 GW_OK);
	ck_assert_int_eq(res[0], GW_EOWNED);
	ck_assert_str_eq(holders[0], b);
	ck_assert_uint_eq(epochs[0], 0);
	ck_assert_int_eq(res[1], GW_OK);
	ck_assert_uint_eq(out[1].len, 5);
	ck_assert_mem_eq(out[1].data, "state", 5);
	ck_assert_uint_eq(out[1].revision, 1);
	ck_assert_uint_eq(epochs[1], 1);
	gw_loaded_fini(&out[1]);
	ck_assert_int_eq(res[2], GW_ENOTFOUND);
	ck_assert_uint_eq(epochs[2], 1);
	ck_assert_int_eq(res[3], GW_ENOTFOUND);
	ck_assert_uint_eq(epochs[3], mine + 1);

	/* Every key held by A now, but "held": B is refused on all three. */
	gw_err r2[3];
	uint64_t e2[3] = {0, 0, 0};
	ck_assert_int_eq(gw_store_lease_activate(c.s, &keys[1], 3, b, e2, NULL, out, r2), GW_OK);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(r2[i], GW_EOWNED);
	/* A key twice is refused whole. */
	gw_actor_key twice[2] = {keys[1], keys[1]};
	ck_assert_int_eq(gw_store_lease_activate(c.s, twice, 2, a, e2, NULL, out, r2), GW_EINVAL);
	ck_assert_int_eq(r2[0], GW_EINVAL);
	ctx_close(&c);
}
END_TEST

void conf_add_lease(Suite *s, int ntargets)
{
	CONF_ADD(s, the_lease_is_taken_only_when_free_mine_or_held_by_a_member_not_live, 60,
	         ntargets);
	CONF_ADD(s, a_release_clears_only_the_members_own_lease_at_its_epoch, 60, ntargets);
	CONF_ADD(s, two_live_members_racing_for_one_actor_never_both_win, 120, ntargets);
	CONF_ADD(s, a_lease_batch_takes_the_free_keys_loads_them_and_names_the_holders, 60,
	         ntargets);
}
