/* store_fencing.c - the conformance suite's second half (conformance.h),
 * run over every target like the first: activation epochs and fencing,
 * revisions and history, key rotation, the fresh-store key check race, and
 * the migration from schema version 1.
 *
 * Concurrency tests give each thread a gw_store of its own (a sqlite store
 * serves one thread at a time; two handles on one file are two gateways).
 */
#include "conformance.h"
#include "store.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bytes 64..95 and 96..127 */
#define KEY_B "t2:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="
#define KEY_C "t3:YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8="

/* ---- helpers ------------------------------------------------------------ */

static gw_store *open_with(ctx *c, const char *keys, int history)
{
	gw_store *s = NULL;
	gw_store_opts o = {
	    .keys = keys, .history = history, .err = c->err, .errlen = sizeof c->err};
	gw_err e = gw_store_open(&s, c->url, &o);
	ck_assert_msg(e == GW_OK, "[%s] open %s: %s: %s", c->t->name, c->url, gw_err_name(e),
	              c->err);
	return s;
}

static gw_err save_s(gw_store *s, const char *sys, const char *name, const char *data,
                     uint64_t expected, uint64_t epoch)
{
	return save(s, sys, name, data, strlen(data), expected, epoch);
}

/* expect_revision asserts that revision rev of the actor loads as data
 * (rev 0: the latest, whatever its number). */
static void expect_revision(gw_store *s, const char *sys, const char *name, uint64_t rev,
                            const char *data)
{
	gw_actor_key k = {sys, name};
	gw_loaded l = {0};
	gw_err e = gw_store_load_revision(s, &k, rev, &l);
	ck_assert_msg(e == GW_OK, "load %s/%s revision %llu: %s", sys, name,
	              (unsigned long long)rev, gw_err_name(e));
	if (rev != 0)
		ck_assert_uint_eq(l.revision, rev);
	ck_assert_msg(l.len == strlen(data) && memcmp(l.data, data, l.len) == 0,
	              "%s/%s revision %llu: '%.*s', want '%s'", sys, name, (unsigned long long)rev,
	              (int)l.len, (const char *)l.data, data);
	gw_loaded_fini(&l);
}

static long long count_key(const ctx *c, const char *key_id)
{
	long long n = -1;
	ck_assert(c->t->raw_count_key(c, key_id, &n));
	return n;
}

/* ---- activation epochs ---------------------------------------------------- */

enum { ACQUIRERS = 2, ACQUIRES = 50 };

typedef struct acquirer {
	gw_store *s;
	const char *sys;
	pthread_barrier_t *bar;
	uint64_t got[ACQUIRES];
	gw_err e;
} acquirer;

static void *acquire_loop(void *arg)
{
	acquirer *a = arg;
	gw_actor_key k = {a->sys, "hot"};
	pthread_barrier_wait(a->bar);
	for (int i = 0; i < ACQUIRES && a->e == GW_OK; i++)
		a->e = gw_store_acquire(a->s, &k, &a->got[i]);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

START_TEST(acquire_gives_strictly_increasing_epochs_across_stores)
{
	ctx c;
	ctx_open(&c, _i);
	gw_store *s2 = must_open(&c, TEST_KEY);
	gw_actor_key k = {c.sys, "a"}, other = {c.sys, "b"};
	uint64_t prev = 0, e = 0;
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(gw_store_acquire(i % 2 ? s2 : c.s, &k, &e), GW_OK);
		if (i == 0)
			ck_assert_uint_eq(e, 1); /* a new actor starts at 1 */
		ck_assert_uint_gt(e, prev);
		prev = e;
	}
	/* Per actor; with or without state. */
	ck_assert_int_eq(gw_store_acquire(s2, &other, &e), GW_OK);
	ck_assert_uint_eq(e, 1);
	gw_actor_key bad = {c.sys, ""};
	ck_assert_int_eq(gw_store_acquire(c.s, &bad, &e), GW_EINVAL);
	ck_assert_int_eq(gw_store_acquire(c.s, NULL, &e), GW_EINVAL);
	ck_assert_int_eq(gw_store_acquire(c.s, &k, NULL), GW_EINVAL);

	/* Two stores acquiring at once never hand out one epoch twice. */
	pthread_barrier_t bar;
	pthread_t th[ACQUIRERS];
	acquirer a[ACQUIRERS];
	ck_assert_int_eq(pthread_barrier_init(&bar, NULL, ACQUIRERS), 0);
	for (int i = 0; i < ACQUIRERS; i++) {
		a[i] = (acquirer){.s = i ? s2 : c.s, .sys = c.sys, .bar = &bar};
		ck_assert_int_eq(pthread_create(&th[i], NULL, acquire_loop, &a[i]), 0);
	}
	for (int i = 0; i < ACQUIRERS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	uint64_t all[ACQUIRERS * ACQUIRES];
	for (int i = 0; i < ACQUIRERS; i++) {
		ck_assert_msg(a[i].e == GW_OK, "acquirer %d: %s", i, gw_err_name(a[i].e));
		for (int j = 0; j < ACQUIRES; j++) {
			if (j > 0)
				ck_assert_uint_gt(a[i].got[j], a[i].got[j - 1]);
			all[i * ACQUIRES + j] = a[i].got[j];
		}
	}
	qsort(all, ACQUIRERS * ACQUIRES, sizeof all[0], cmp_u64);
	for (int i = 0; i < ACQUIRERS * ACQUIRES; i++)
		ck_assert_uint_eq(all[i], (uint64_t)i + 1);
	gw_store_close(s2);
	ctx_close(&c);
}
END_TEST

START_TEST(a_save_with_an_older_epoch_is_fenced_and_changes_nothing)
{
	ctx c;
	ctx_open(&c, _i);
	gw_store *s2 = must_open(&c, TEST_KEY);
	gw_actor_key k = {c.sys, "f"};
	uint64_t e1 = 0, e2 = 0, e3 = 0;
	/* Gateway 1 activates and saves; gateway 2 takes over. */
	ck_assert_int_eq(gw_store_acquire(c.s, &k, &e1), GW_OK);
	ck_assert_int_eq(save_s(c.s, c.sys, "f", "one", 0, e1), GW_OK);
	ck_assert_int_eq(gw_store_acquire(s2, &k, &e2), GW_OK);
	ck_assert_uint_gt(e2, e1);
	expect_state(s2, c.sys, "f", "one", 3, 1);
	/* The stale activation is fenced, whatever revision it names. */
	ck_assert_int_eq(save_s(c.s, c.sys, "f", "stale", 1, e1), GW_EFENCED);
	ck_assert_int_eq(save_s(c.s, c.sys, "f", "stale", 0, e1), GW_EFENCED);
	ck_assert_int_eq(save_s(c.s, c.sys, "f", "stale", 9, e1), GW_EFENCED);
	expect_state(c.s, c.sys, "f", "one", 3, 1);
	/* The current one saves; it still needs the right revision. */
	ck_assert_int_eq(save_s(s2, c.sys, "f", "two", 5, e2), GW_ECONFLICT);
	ck_assert_int_eq(save_s(s2, c.sys, "f", "two", 1, e2), GW_OK);
	ck_assert_int_eq(save_s(s2, c.sys, "f", "three", 2, e2), GW_OK);
	expect_state(c.s, c.sys, "f", "three", 5, 3);
	/* Back to gateway 1: gateway 2 is fenced now. */
	ck_assert_int_eq(gw_store_acquire(c.s, &k, &e3), GW_OK);
	ck_assert_uint_gt(e3, e2);
	ck_assert_int_eq(save_s(s2, c.sys, "f", "late", 3, e2), GW_EFENCED);
	ck_assert_int_eq(save_s(c.s, c.sys, "f", "four", 3, e3 + 1),
	                 GW_EFENCED); /* not handed out */
	ck_assert_int_eq(save_s(c.s, c.sys, "f", "four", 3, e3), GW_OK);
	gw_loaded l = {0};
	ck_assert_int_eq(load(s2, c.sys, "f", &l), GW_OK);
	ck_assert_uint_eq(l.epoch, e3);
	gw_loaded_fini(&l);
	/* In a batch, a fenced row is one row's outcome. */
	gw_state st[2] = {
	    {.key = k, .data = (const uint8_t *)"x", .len = 1, .expected = 4, .epoch = e2},
	    {.key = {c.sys, "g"}, .data = (const uint8_t *)"g", .len = 1}};
	gw_err res[2];
	ck_assert_int_eq(gw_store_save_batch(s2, st, 2, res), GW_OK);
	ck_assert_int_eq(res[0], GW_EFENCED);
	ck_assert_int_eq(res[1], GW_OK);
	expect_state(c.s, c.sys, "f", "four", 4, 4);
	/* Epoch 0 is unfenced (tools). */
	ck_assert_int_eq(save_s(s2, c.sys, "f", "tool", 4, 0), GW_OK);
	/* A removed actor keeps its epoch: the stale activation stays fenced. */
	ck_assert_int_eq(gw_store_remove(c.s, &k), GW_OK);
	ck_assert_int_eq(save_s(c.s, c.sys, "f", "reborn", 0, e3), GW_OK);
	ck_assert_int_eq(gw_store_acquire(s2, &k, &e1), GW_OK);
	ck_assert_uint_gt(e1, e3);
	ck_assert_int_eq(save_s(c.s, c.sys, "f", "zombie", 1, e3), GW_EFENCED);
	expect_state(s2, c.sys, "f", "reborn", 6, 1);
	gw_store_close(s2);
	ctx_close(&c);
}
END_TEST

/* The race: two gateways keep activating one counter and adding to it. A
 * save either lands on the latest revision or is fenced: never a conflict
 * (the fence is checked under the lock acquire waits for), never a lost
 * increment. */
enum { RACE_ROUNDS = 40, RACE_SAVES = 3 };

typedef struct activator {
	gw_store *s;
	const char *sys;
	pthread_barrier_t *bar;
	int oks, fenced;
	uint64_t revs[RACE_ROUNDS * RACE_SAVES];
	gw_err bad;
	const char *what;
} activator;

/* activate_round: one activation (acquire, load) and up to RACE_SAVES
 * increments, until fenced. */
static void activate_round(activator *a)
{
	gw_actor_key k = {a->sys, "counter"};
	uint64_t epoch = 0, rev = 0;
	long value = 0;
	gw_loaded l = {0};
	gw_err e = gw_store_acquire(a->s, &k, &epoch);
	if (e != GW_OK) {
		a->bad = e, a->what = "acquire";
		return;
	}
	e = gw_store_load(a->s, &k, &l);
	if (e == GW_OK) {
		char buf[32];
		snprintf(buf, sizeof buf, "%.*s", (int)l.len, (const char *)l.data);
		value = strtol(buf, NULL, 10);
		rev = l.revision;
		gw_loaded_fini(&l);
	} else if (e != GW_ENOTFOUND) {
		a->bad = e, a->what = "load";
		return;
	}
	if (value != (long)rev) { /* every save wrote its own revision */
		a->bad = GW_ECORRUPT, a->what = "value != revision: an update was lost";
		return;
	}
	for (int j = 0; j < RACE_SAVES; j++) {
		char buf[32];
		snprintf(buf, sizeof buf, "%ld", value + 1);
		gw_state st = {.key = k,
		               .type_url = TYPE_URL,
		               .data = (const uint8_t *)buf,
		               .len = strlen(buf),
		               .expected = rev,
		               .epoch = epoch};
		gw_err res = GW_EIO;
		e = gw_store_save_batch(a->s, &st, 1, &res);
		if (e != GW_OK || (res != GW_OK && res != GW_EFENCED)) {
			a->bad = e != GW_OK ? e : res, a->what = "save";
			return;
		}
		if (res == GW_EFENCED) {
			a->fenced++;
			return;
		}
		a->revs[a->oks++] = ++rev;
		value++;
	}
}

/* Each round starts both gateways together (the barrier), so their
 * activations and saves overlap on every driver. */
static void *activate_loop(void *arg)
{
	activator *a = arg;
	for (int round = 0; round < RACE_ROUNDS; round++) {
		pthread_barrier_wait(a->bar);
		if (a->bad == GW_OK)
			activate_round(a);
	}
	return NULL;
}

START_TEST(activations_racing_on_one_actor_lose_no_update)
{
	ctx c;
	ctx_open(&c, _i);
	pthread_barrier_t bar;
	pthread_t th[2];
	activator a[2];
	ck_assert_int_eq(pthread_barrier_init(&bar, NULL, 2), 0);
	for (int i = 0; i < 2; i++) {
		a[i] = (activator){.s = must_open(&c, TEST_KEY), .sys = c.sys, .bar = &bar};
		ck_assert_int_eq(pthread_create(&th[i], NULL, activate_loop, &a[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	int total = 0;
	for (int i = 0; i < 2; i++) {
		ck_assert_msg(a[i].bad == GW_OK, "gateway %d: %s: %s", i, a[i].what,
		              gw_err_name(a[i].bad));
		total += a[i].oks;
		gw_store_close(a[i].s);
	}
	/* Every acknowledged save is one increment, at its own revision. */
	uint64_t revs[2 * RACE_ROUNDS * RACE_SAVES];
	memcpy(revs, a[0].revs, (size_t)a[0].oks * sizeof revs[0]);
	memcpy(revs + a[0].oks, a[1].revs, (size_t)a[1].oks * sizeof revs[0]);
	qsort(revs, (size_t)total, sizeof revs[0], cmp_u64);
	for (int i = 0; i < total; i++)
		ck_assert_uint_eq(revs[i], (uint64_t)i + 1);
	char want[32];
	snprintf(want, sizeof want, "%d", total);
	expect_state(c.s, c.sys, "counter", want, strlen(want), (uint64_t)total);
	printf("store_conformance: [%s] race: %d saves acknowledged, %d + %d fenced\n", c.t->name,
	       total, a[0].fenced, a[1].fenced);
	ck_assert_int_gt(total, 0);
	ctx_close(&c);
}
END_TEST

/* ---- revisions ------------------------------------------------------------- */

/* ---- mixed batches ------------------------------------------------------------ */

/* Kinds of row in a mixed batch, by i % MIX_KINDS. */
enum {
	MIX_NEW,      /* no row, expected 0, unfenced: OK */
	MIX_OK,       /* at 1, expected 1, the current epoch: OK */
	MIX_FENCED,   /* at 1, expected 1, an older epoch: EFENCED */
	MIX_CONFLICT, /* at 1, expected 5, the current epoch: ECONFLICT */
	MIX_EXISTS,   /* at 1, expected 0, unfenced: ECONFLICT */
	MIX_BOTH,     /* at 1, expected 7, an older epoch: EFENCED (fencing wins) */
	MIX_NEVER,    /* no row, never acquired, epoch 3: EFENCED */
	MIX_KINDS
};

enum { MIX_N = 300, MIX_DUPS = 4, MIX_ALL = MIX_N + MIX_DUPS };

/* A batch with every outcome at once, larger than a driver's bulk segment
 * and with keys twice in it, gets each row's outcome as the same rows
 * saved one by one, in order, would: the effects flag and the history
 * follow the rows saved, and only them. */
START_TEST(a_mixed_batch_gets_each_rows_outcome_as_saved_one_by_one)
{
	ctx c;
	ctx_open(&c, _i);
	gw_store *s = open_with(&c, TEST_KEY, 2);
	static char names[MIX_N][16], datas[MIX_ALL][24];
	static gw_state st[MIX_ALL];
	static gw_err res[MIX_ALL], want[MIX_ALL];
	static uint64_t cur[MIX_N];
	for (int i = 0; i < MIX_N; i++) {
		int kind = i % MIX_KINDS;
		gw_actor_key k = {c.sys, names[i]};
		uint64_t old = 0;
		snprintf(names[i], sizeof names[i], "m-%03d", i);
		if (kind != MIX_NEW && kind != MIX_NEVER)
			ck_assert_int_eq(save_s(s, c.sys, names[i], "before", 0, 0), GW_OK);
		if (kind == MIX_OK || kind == MIX_FENCED || kind == MIX_CONFLICT ||
		    kind == MIX_BOTH) {
			ck_assert_int_eq(gw_store_acquire(s, &k, &old), GW_OK);
			ck_assert_int_eq(gw_store_acquire(s, &k, &cur[i]), GW_OK);
		}
		snprintf(datas[i], sizeof datas[i], "after %d", i);
		static const uint64_t expected[MIX_KINDS] = {0, 1, 1, 5, 0, 7, 0};
		static const gw_err outcome[MIX_KINDS] = {
		    GW_OK, GW_OK, GW_EFENCED, GW_ECONFLICT, GW_ECONFLICT, GW_EFENCED, GW_EFENCED};
		st[i] = (gw_state){.key = k,
		                   .type_url = TYPE_URL,
		                   .data = (const uint8_t *)datas[i],
		                   .len = strlen(datas[i]),
		                   .expected = expected[kind],
		                   .epoch = kind == MIX_FENCED || kind == MIX_BOTH ? old
		                            : kind == MIX_NEVER                    ? 3
		                                                                   : cur[i],
		                   .effects = i % 2};
		want[i] = outcome[kind];
	}
	/* Keys twice: each later row sees what the earlier one did. An OK row
	 * saved again (after its revision 2), a conflicting one retried at its
	 * real revision, a new one saved again, and a fenced one again. */
	static const int dup_of[MIX_DUPS] = {MIX_OK, 7 * MIX_KINDS + MIX_CONFLICT,
	                                     40 * MIX_KINDS + MIX_NEW, MIX_FENCED};
	static const uint64_t dup_expected[MIX_DUPS] = {2, 1, 1, 1};
	static const gw_err dup_want[MIX_DUPS] = {GW_OK, GW_OK, GW_OK, GW_EFENCED};
	for (int d = 0; d < MIX_DUPS; d++) {
		int i = MIX_N + d, of = dup_of[d];
		snprintf(datas[i], sizeof datas[i], "again %d", of);
		st[i] = st[of];
		st[i].data = (const uint8_t *)datas[i];
		st[i].len = strlen(datas[i]);
		st[i].expected = dup_expected[d];
		st[i].effects = 1;
		want[i] = dup_want[d];
	}
	ck_assert_int_eq(gw_store_save_batch(s, st, MIX_ALL, res), GW_OK);
	for (int i = 0; i < MIX_ALL; i++)
		ck_assert_msg(res[i] == want[i], "[%s] row %d: %s, want %s", c.t->name, i,
		              gw_err_name(res[i]), gw_err_name(want[i]));
	/* What each actor holds now: its last saved row, else what it had. */
	for (int i = 0; i < MIX_N; i++) {
		int last = -1, kind = i % MIX_KINDS;
		uint64_t revs[4], rev = 0;
		size_t nrev = 0;
		for (int j = 0; j < MIX_ALL; j++)
			if (st[j].key.name == names[i] && res[j] == GW_OK) {
				last = j;
				rev = st[j].expected + 1;
			}
		gw_actor_key k = {c.sys, names[i]};
		ck_assert_int_eq(gw_store_list_revisions(s, &k, revs, 4, &nrev), GW_OK);
		if (last >= 0) {
			expect_state(s, c.sys, names[i], datas[last], strlen(datas[last]), rev);
			ck_assert_uint_eq(nrev, rev); /* history 2: every revision so far */
			expect_revision(s, c.sys, names[i], rev, datas[last]);
		} else if (kind == MIX_NEW || kind == MIX_NEVER) {
			gw_loaded l = {0};
			ck_assert_int_eq(load(s, c.sys, names[i], &l), GW_ENOTFOUND);
			ck_assert_uint_eq(nrev, 0);
		} else {
			expect_state(s, c.sys, names[i], "before", 6, 1);
			ck_assert_uint_eq(nrev, 1);
		}
	}
	/* The effects flags: the saved rows' own, the others' untouched (0). */
	gw_actor_key after = {c.sys, ""}, out[MIX_N];
	size_t nfx = 0, flagged = 0;
	ck_assert_int_eq(gw_store_effects_list(s, &after, MIX_N, out, &nfx), GW_OK);
	for (int i = 0; i < MIX_N; i++) {
		int last = -1;
		for (int j = 0; j < MIX_ALL; j++)
			if (st[j].key.name == names[i] && res[j] == GW_OK)
				last = j;
		bool listed = false;
		for (size_t j = 0; j < nfx; j++)
			listed |=
			    strcmp(out[j].system, c.sys) == 0 && strcmp(out[j].name, names[i]) == 0;
		ck_assert_msg(listed == (last >= 0 && st[last].effects), "[%s] %s flag %d",
		              c.t->name, names[i], listed);
		flagged += listed;
	}
	for (size_t j = 0; j < nfx; j++)
		ck_assert_msg(strcmp(out[j].system, c.sys) != 0 || flagged-- > 0, "extra flag");
	gw_keys_fini(out, nfx);
	gw_store_close(s);
	ctx_close(&c);
}
END_TEST

START_TEST(revisions_are_listed_and_loaded_per_the_history_policy)
{
	ctx c;
	ctx_open(&c, _i);
	gw_store *h = open_with(&c, TEST_KEY, 3);
	gw_actor_key k = {c.sys, "r"};
	char v[16];
	for (int i = 1; i <= 6; i++) {
		snprintf(v, sizeof v, "v%d", i);
		ck_assert_int_eq(save_s(h, c.sys, "r", v, (uint64_t)i - 1, 0), GW_OK);
	}
	uint64_t revs[10] = {0};
	size_t n = 99;
	ck_assert_int_eq(gw_store_list_revisions(h, &k, revs, 10, &n), GW_OK);
	ck_assert_uint_eq(n, 4); /* the latest and 3 older */
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(revs[i], 6 - i);
	ck_assert_int_eq(gw_store_list_revisions(h, &k, revs, 2, &n), GW_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(revs[0], 6);
	ck_assert_uint_eq(revs[1], 5);
	for (uint64_t r = 3; r <= 6; r++) {
		snprintf(v, sizeof v, "v%llu", (unsigned long long)r);
		expect_revision(h, c.sys, "r", r, v);
		expect_revision(c.s, c.sys, "r", r, v); /* any store reads what is kept */
	}
	expect_revision(h, c.sys, "r", 0, "v6"); /* 0: the latest */
	gw_loaded l = {.revision = 77};
	uint64_t gone[] = {1, 2, 7, UINT64_MAX};
	for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
		ck_assert_int_eq(gw_store_load_revision(h, &k, gone[i], &l), GW_ENOTFOUND);
	ck_assert_uint_eq(l.revision, 77);
	/* No state: nothing listed. */
	gw_actor_key none = {c.sys, "none"};
	ck_assert_int_eq(gw_store_list_revisions(h, &none, revs, 10, &n), GW_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(gw_store_load_revision(h, &none, 1, &l), GW_ENOTFOUND);
	ck_assert_int_eq(gw_store_load_revision(h, &none, 0, &l), GW_ENOTFOUND);
	/* History 0 keeps only the latest. */
	for (int i = 1; i <= 3; i++) {
		snprintf(v, sizeof v, "z%d", i);
		ck_assert_int_eq(save_s(c.s, c.sys, "z", v, (uint64_t)i - 1, 0), GW_OK);
	}
	gw_actor_key z = {c.sys, "z"};
	ck_assert_int_eq(gw_store_list_revisions(c.s, &z, revs, 10, &n), GW_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(revs[0], 3);
	expect_revision(c.s, c.sys, "z", 3, "z3");
	ck_assert_int_eq(gw_store_load_revision(c.s, &z, 2, &l), GW_ENOTFOUND);
	/* Arguments. */
	ck_assert_int_eq(gw_store_list_revisions(h, &k, revs, 10, NULL), GW_EINVAL);
	ck_assert_int_eq(gw_store_list_revisions(h, &k, NULL, 10, &n), GW_EINVAL);
	ck_assert_int_eq(gw_store_list_revisions(h, &k, NULL, 0, &n), GW_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(gw_store_load_revision(h, &k, 3, NULL), GW_EINVAL);
	/* Remove takes the history with it. */
	ck_assert_int_eq(gw_store_remove(h, &k), GW_OK);
	ck_assert_int_eq(gw_store_list_revisions(h, &k, revs, 10, &n), GW_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(gw_store_load_revision(h, &k, 5, &l), GW_ENOTFOUND);
	gw_store_close(h);
	ctx_close(&c);
}
END_TEST

/* ---- key rotation ------------------------------------------------------------ */

static void actor_name(char *buf, size_t cap, const char *prefix, int i)
{
	snprintf(buf, cap, "%s-%02d", prefix, i);
}

/* fill saves revisions 1..revs of n actors "<prefix>-NN" with "<prefix>NN-vR". */
static void fill(gw_store *s, const char *sys, const char *prefix, int n, int revs)
{
	char name[32], data[32];
	for (int i = 0; i < n; i++) {
		actor_name(name, sizeof name, prefix, i);
		for (int r = 1; r <= revs; r++) {
			snprintf(data, sizeof data, "%s%02d-v%d", prefix, i, r);
			ck_assert_int_eq(save_s(s, sys, name, data, (uint64_t)r - 1, 0), GW_OK);
		}
	}
}

/* Every ROT_SPREAD-th actor is hot: saved while the rotation runs, spread
 * over the key space so that saves land ahead of the cursor too. */
enum { ROT_ACTORS = 50, ROT_REVS = 5, ROT_HISTORY = 3, ROT_SPREAD = 5 };
#define ROT_HOT (ROT_ACTORS / ROT_SPREAD)

typedef struct saver {
	gw_store *s;
	const char *sys;
	atomic_int *stop;
	int rounds;
	char last[ROT_HOT][32];
	uint64_t rev[ROT_HOT];
	gw_err bad;
} saver;

/* save_loop keeps saving the hot actors while a rotation runs.
 * Rotation keeps revisions, so these saves never conflict. */
static void *save_loop(void *arg)
{
	saver *sv = arg;
	char name[32];
	for (sv->rounds = 0; sv->bad == GW_OK && (!atomic_load(sv->stop) || sv->rounds < 3);
	     sv->rounds++) {
		for (int i = 0; i < ROT_HOT && sv->bad == GW_OK; i++) {
			actor_name(name, sizeof name, "r", i * ROT_SPREAD);
			gw_loaded l = {0};
			gw_err e = load(sv->s, sv->sys, name, &l);
			if (e != GW_OK) {
				sv->bad = e;
				break;
			}
			snprintf(sv->last[i], sizeof sv->last[i], "r%02d-s%d", i * ROT_SPREAD,
			         sv->rounds);
			e = save_s(sv->s, sv->sys, name, sv->last[i], l.revision, 0);
			sv->rev[i] = l.revision + 1;
			gw_loaded_fini(&l);
			if (e != GW_OK)
				sv->bad = e;
		}
	}
	return NULL;
}

START_TEST(rotation_reencrypts_every_row_while_saves_go_on)
{
	ctx c;
	ctx_open(&c, _i);
	ctx_close(&c);
	gw_store *w = open_with(&c, TEST_KEY, ROT_HISTORY);
	fill(w, c.sys, "r", ROT_ACTORS, ROT_REVS);
	gw_store_close(w);
	/* Per actor: the latest row and ROT_HISTORY + 1 history rows. */
	const long long rows = ROT_ACTORS * (1 + ROT_HISTORY + 1);
	ck_assert_int_eq(count_key(&c, "t1"), rows);

	gw_store *r = open_with(&c, KEY_B "," TEST_KEY, ROT_HISTORY);
	atomic_int stop = 0;
	saver sv = {
	    .s = open_with(&c, KEY_B "," TEST_KEY, ROT_HISTORY), .sys = c.sys, .stop = &stop};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, save_loop, &sv), 0);
	gw_rotation p = {0};
	int steps = 0;
	while (!p.done) {
		uint64_t before = p.rewritten;
		gw_err e = gw_store_rotate_step(r, 7, &p);
		ck_assert_msg(e == GW_OK, "step %d: %s", steps, gw_err_name(e));
		ck_assert_uint_le(p.rewritten - before, 7);
		ck_assert_int_lt(++steps, 500);
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	ck_assert_msg(sv.bad == GW_OK, "saver: %s", gw_err_name(sv.bad));
	printf("store_conformance: [%s] rotation: %d steps, %llu rewritten, %d save rounds\n",
	       c.t->name, steps, (unsigned long long)p.rewritten, sv.rounds);
	/* The actors nobody saved meanwhile were all rewritten by the rotation;
	 * rows of the others may have been overwritten by a save first. */
	const long long cold = (ROT_ACTORS - ROT_HOT) * (1 + ROT_HISTORY + 1);
	ck_assert_uint_ge(p.rewritten, (uint64_t)cold);
	ck_assert_uint_le(p.rewritten, (uint64_t)rows);
	ck_assert_uint_ge((uint64_t)steps, p.rewritten / 7);
	ck_assert_uint_eq(p.failed, 0);
	ck_assert_uint_eq(p.remaining, 0);
	ck_assert_int_eq(count_key(&c, "t1"), 0);
	gw_store_close(sv.s);
	gw_store_close(r);

	/* B alone opens the store (the key check moved) and reads every row. */
	gw_store *b = open_with(&c, KEY_B, ROT_HISTORY);
	char name[32], data[32];
	for (int i = 0; i < ROT_ACTORS; i++) {
		actor_name(name, sizeof name, "r", i);
		gw_actor_key k = {c.sys, name};
		uint64_t revs[8];
		size_t n = 0;
		ck_assert_int_eq(gw_store_list_revisions(b, &k, revs, 8, &n), GW_OK);
		ck_assert_uint_eq(n, ROT_HISTORY + 1);
		bool hot = i % ROT_SPREAD == 0;
		uint64_t latest = hot ? sv.rev[i / ROT_SPREAD] : ROT_REVS;
		for (size_t j = 0; j < n; j++) {
			ck_assert_uint_eq(revs[j], latest - j); /* revisions unchanged */
			gw_loaded l = {0};
			ck_assert_int_eq(gw_store_load_revision(b, &k, revs[j], &l), GW_OK);
			gw_loaded_fini(&l);
		}
		if (!hot) {
			for (uint64_t rv = ROT_REVS - ROT_HISTORY; rv <= ROT_REVS; rv++) {
				snprintf(data, sizeof data, "r%02d-v%llu", i,
				         (unsigned long long)rv);
				expect_revision(b, c.sys, name, rv, data);
			}
		} else {
			expect_revision(b, c.sys, name, latest, sv.last[i / ROT_SPREAD]);
		}
	}
	gw_store_close(b);
	/* The old key alone no longer opens it. */
	gw_store *s = NULL;
	ck_assert_int_eq(try_open(&c, c.url, TEST_KEY, &s), GW_ECRYPTO);
}
END_TEST

START_TEST(a_rotation_resumes_in_a_new_store_and_counts_exactly)
{
	ctx c;
	ctx_open(&c, _i);
	ctx_close(&c);
	enum { N = 20, REVS = 3, HIST = 2 };
	const uint64_t rows = N * (1 + REVS); /* history keeps revisions 1..3 */
	gw_store *w = open_with(&c, TEST_KEY, HIST);
	fill(w, c.sys, "s", N, REVS);
	gw_store_close(w);
	ck_assert_int_eq(count_key(&c, "t1"), (long long)rows);

	gw_rotation p = {0};
	gw_store *r1 = open_with(&c, KEY_B "," TEST_KEY, HIST);
	ck_assert_int_eq(gw_store_rotate_step(r1, 0, &p), GW_EINVAL);
	ck_assert_int_eq(gw_store_rotate_step(r1, 7, NULL), GW_EINVAL);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(gw_store_rotate_step(r1, 7, &p), GW_OK);
		ck_assert_uint_eq(p.rewritten, 7 * (uint64_t)(i + 1));
		ck_assert_uint_eq(p.remaining, rows - p.rewritten);
		ck_assert(!p.done);
	}
	gw_store_close(r1); /* a gateway restart mid-way */
	gw_store *r2 = open_with(&c, KEY_B "," TEST_KEY, HIST);
	int steps = 0;
	while (!p.done) {
		ck_assert_int_eq(gw_store_rotate_step(r2, 7, &p), GW_OK);
		if (!p.done)
			ck_assert_uint_eq(p.remaining, rows - p.rewritten);
		ck_assert_int_lt(++steps, 100);
	}
	ck_assert_uint_eq(p.rewritten, rows);
	ck_assert_uint_eq(p.failed, 0);
	ck_assert_uint_eq(p.remaining, 0);
	ck_assert_int_eq(count_key(&c, "t1"), 0);
	ck_assert_int_eq(count_key(&c, "t2"), (long long)rows);
	/* Done stays done. */
	ck_assert_int_eq(gw_store_rotate_step(r2, 7, &p), GW_OK);
	ck_assert(p.done);
	ck_assert_uint_eq(p.rewritten, rows);
	gw_store_close(r2);

	/* A new primary starts a new pass. */
	gw_rotation q = {0};
	gw_store *r3 = open_with(&c, KEY_C "," KEY_B, HIST);
	ck_assert_int_eq(gw_store_rotate_step(r3, 1000, &q), GW_OK);
	ck_assert(q.done);
	ck_assert_uint_eq(q.rewritten, rows);
	gw_store_close(r3);
	gw_store *only = open_with(&c, KEY_C, HIST);
	char name[32], data[32];
	for (int i = 0; i < N; i++) {
		actor_name(name, sizeof name, "s", i);
		for (int rv = 1; rv <= REVS; rv++) {
			snprintf(data, sizeof data, "s%02d-v%d", i, rv);
			expect_revision(only, c.sys, name, (uint64_t)rv, data);
		}
	}
	gw_store_close(only);
}
END_TEST

START_TEST(a_row_sealed_under_an_old_key_behind_the_cursor_gets_another_pass)
{
	ctx c;
	ctx_open(&c, _i);
	ctx_close(&c);
	gw_store *w = open_with(&c, TEST_KEY, 0);
	fill(w, c.sys, "p", 10, 1);
	gw_rotation p = {0};
	gw_store *r = open_with(&c, KEY_B "," TEST_KEY, 0);
	ck_assert_int_eq(gw_store_rotate_step(r, 5, &p), GW_OK);
	ck_assert_uint_eq(p.rewritten, 5);
	/* A gateway still on the old keyring saves an actor the pass is past. */
	ck_assert_int_eq(save_s(w, c.sys, "p-00", "old key again", 1, 0), GW_OK);
	int steps = 0;
	while (!p.done) {
		ck_assert_int_eq(gw_store_rotate_step(r, 5, &p), GW_OK);
		ck_assert_int_lt(++steps, 20);
	}
	ck_assert_uint_eq(p.rewritten, 11);
	ck_assert_int_eq(count_key(&c, "t1"), 0);
	gw_store_close(w);
	gw_store_close(r);
	gw_store *b = open_with(&c, KEY_B, 0);
	expect_revision(b, c.sys, "p-00", 2, "old key again");
	gw_store_close(b);
}
END_TEST

START_TEST(rotation_counts_an_unreadable_row_and_leaves_it_as_it_is)
{
	ctx c;
	ctx_open(&c, _i);
	ctx_close(&c);
	gw_store *w = open_with(&c, TEST_KEY, 0);
	fill(w, c.sys, "k", 6, 1);
	gw_store_close(w);
	/* One row cut short, one carrying another actor's sealed columns. */
	ck_assert(c.t->raw_truncate(&c, c.sys, "k-02", 20));
	ck_assert(c.t->raw_copy(&c, c.sys, "k-04", c.sys, "k-05"));
	gw_store *r = open_with(&c, KEY_B "," TEST_KEY, 0);
	gw_loaded l;
	ck_assert_int_eq(load(r, c.sys, "k-02", &l), GW_ECRYPTO);
	ck_assert_int_eq(load(r, c.sys, "k-05", &l), GW_ECRYPTO);
	gw_rotation p = {0};
	int steps = 0;
	while (!p.done) {
		ck_assert_int_eq(gw_store_rotate_step(r, 4, &p), GW_OK);
		ck_assert_int_lt(++steps, 20);
	}
	ck_assert_uint_eq(p.rewritten, 4);
	ck_assert_uint_eq(p.failed, 2);
	ck_assert_uint_eq(p.remaining, 0);
	ck_assert_int_eq(count_key(&c, "t1"), 2); /* left under the old key */
	/* Done again, nothing counted twice. */
	ck_assert_int_eq(gw_store_rotate_step(r, 4, &p), GW_OK);
	ck_assert(p.done);
	ck_assert_uint_eq(p.failed, 2);
	ck_assert_uint_eq(p.rewritten, 4);
	/* The rows are untouched: still the same failure with the old key. */
	ck_assert_int_eq(load(r, c.sys, "k-02", &l), GW_ECRYPTO);
	ck_assert_int_eq(load(r, c.sys, "k-05", &l), GW_ECRYPTO);
	gw_store_close(r);
	gw_store *b = open_with(&c, KEY_B, 0);
	expect_state(b, c.sys, "k-00", "k00-v1", 6, 1);
	expect_state(b, c.sys, "k-04", "k04-v1", 6, 1);
	ck_assert_int_eq(load(b, c.sys, "k-02", &l), GW_ECRYPTO);
	gw_store_close(b);
}
END_TEST

/* ---- the key check of a new store ------------------------------------------------ */

typedef struct keyed_opener {
	const char *url, *keys;
	pthread_barrier_t *bar;
	gw_store *s;
	gw_err e;
	char err[512];
} keyed_opener;

static void *open_keyed(void *arg)
{
	keyed_opener *o = arg;
	gw_store_opts opts = {.keys = o->keys, .err = o->err, .errlen = sizeof o->err};
	pthread_barrier_wait(o->bar);
	o->e = gw_store_open(&o->s, o->url, &opts);
	return NULL;
}

START_TEST(two_new_stores_opened_at_once_with_different_keys_never_both_open)
{
	ctx c;
	ctx_open(&c, _i);
	static const char *const keys[2] = {TEST_KEY, KEY_B};
	for (int round = 0; round < 4; round++) {
		char url[PATH_MAX + 160];
		fresh_url(&c, url, sizeof url);
		pthread_barrier_t bar;
		pthread_t th[2];
		keyed_opener o[2];
		ck_assert_int_eq(pthread_barrier_init(&bar, NULL, 2), 0);
		for (int i = 0; i < 2; i++) {
			o[i] =
			    (keyed_opener){.url = url, .keys = keys[(i + round) % 2], .bar = &bar};
			ck_assert_int_eq(pthread_create(&th[i], NULL, open_keyed, &o[i]), 0);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&bar);
		int won = -1;
		for (int i = 0; i < 2; i++) {
			if (o[i].e == GW_OK) {
				ck_assert_msg(won < 0, "round %d: both opened", round);
				won = i;
				continue;
			}
			ck_assert_msg(o[i].e == GW_ECRYPTO, "round %d, opener %d: %s: %s", round, i,
			              gw_err_name(o[i].e), o[i].err);
		}
		ck_assert_msg(won >= 0, "round %d: neither opened", round);
		gw_store_close(o[won].s);
		/* The winner's key is the store's key from now on. */
		gw_store *s = NULL;
		ck_assert_int_eq(try_open(&c, url, o[won].keys, &s), GW_OK);
		gw_store_close(s);
		s = NULL;
		ck_assert_int_eq(try_open(&c, url, o[1 - won].keys, &s), GW_ECRYPTO);
		ck_assert_ptr_null(s);
	}
	ctx_close(&c);
}
END_TEST

/* ---- schema version 1 --------------------------------------------------------------- */

START_TEST(a_version_1_store_is_migrated_and_its_epochs_kept)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save_s(c.s, c.sys, "m", "old", 0, 0), GW_OK);
	ctx_close(&c);
	ck_assert(c.t->raw_downgrade_v1(&c));
	c.s = must_open(&c, TEST_KEY); /* migrates to version 2 */
	gw_loaded l = {0};
	ck_assert_int_eq(load(c.s, c.sys, "m", &l), GW_OK);
	ck_assert_uint_eq(l.revision, 1);
	ck_assert_uint_eq(l.epoch, 5);
	gw_loaded_fini(&l);
	/* Version 1 fenced with epoch 5: the next epoch is above it. */
	gw_actor_key k = {c.sys, "m"}, fresh = {c.sys, "new"};
	uint64_t e = 0;
	ck_assert_int_eq(gw_store_acquire(c.s, &k, &e), GW_OK);
	ck_assert_uint_eq(e, 6);
	ck_assert_int_eq(gw_store_acquire(c.s, &fresh, &e), GW_OK);
	ck_assert_uint_eq(e, 1);
	ck_assert_int_eq(save_s(c.s, c.sys, "m", "stale", 1, 5), GW_EFENCED);
	ck_assert_int_eq(save_s(c.s, c.sys, "m", "new", 1, 6), GW_OK);
	uint64_t revs[4];
	size_t n = 0;
	ck_assert_int_eq(gw_store_list_revisions(c.s, &k, revs, 4, &n), GW_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(revs[0], 2);
	ctx_close(&c);
	/* Opening a current store migrates nothing. */
	c.s = must_open(&c, TEST_KEY);
	expect_state(c.s, c.sys, "m", "new", 3, 2);
	ctx_close(&c);
}
END_TEST

void conf_add_fencing(Suite *s, int ntargets)
{
	CONF_ADD(s, acquire_gives_strictly_increasing_epochs_across_stores, 60, ntargets);
	CONF_ADD(s, a_save_with_an_older_epoch_is_fenced_and_changes_nothing, 60, ntargets);
	CONF_ADD(s, activations_racing_on_one_actor_lose_no_update, 120, ntargets);
	CONF_ADD(s, a_mixed_batch_gets_each_rows_outcome_as_saved_one_by_one, 120, ntargets);
	CONF_ADD(s, revisions_are_listed_and_loaded_per_the_history_policy, 60, ntargets);
	CONF_ADD(s, rotation_reencrypts_every_row_while_saves_go_on, 180, ntargets);
	CONF_ADD(s, a_rotation_resumes_in_a_new_store_and_counts_exactly, 120, ntargets);
	CONF_ADD(s, a_row_sealed_under_an_old_key_behind_the_cursor_gets_another_pass, 60,
	         ntargets);
	CONF_ADD(s, rotation_counts_an_unreadable_row_and_leaves_it_as_it_is, 60, ntargets);
	CONF_ADD(s, two_new_stores_opened_at_once_with_different_keys_never_both_open, 60,
	         ntargets);
	CONF_ADD(s, a_version_1_store_is_migrated_and_its_epochs_kept, 60, ntargets);
}
