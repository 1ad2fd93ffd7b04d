/* store_activate.c - the conformance suite's batched activation
 * (gw_store_activate_batch, ops version 5), run over every target like the
 * rest (conformance.h): the same epochs and fencing as gw_store_acquire then
 * gw_store_load per actor, per-entry results, refused batches, the maximum
 * size, and batches racing across stores.
 */
#include "conformance.h"
#include "store.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* activate runs one batch over names (in sys) and asserts it committed. */
static void activate(gw_store *s, const char *sys, const char *const *names, size_t n,
                     uint64_t *epochs, gw_loaded *out, gw_err *res)
{
	gw_actor_key k[GW_STORE_ACTIVATE_MAX];
	ck_assert_uint_le(n, GW_STORE_ACTIVATE_MAX);
	for (size_t i = 0; i < n; i++)
		k[i] = (gw_actor_key){sys, names[i]};
	memset(out, 0, n * sizeof *out);
	gw_err e = gw_store_activate_batch(s, k, n, epochs, out, res);
	ck_assert_msg(e == GW_OK, "activate batch of %zu: %s", n, gw_err_name(e));
}

static void expect_loaded(const gw_loaded *l, gw_err r, const char *data, uint64_t rev)
{
	ck_assert_msg(r == GW_OK, "entry: %s, want OK", gw_err_name(r));
	ck_assert_uint_eq(l->revision, rev);
	ck_assert_str_eq(l->type_url, TYPE_URL);
	ck_assert_msg(l->len == strlen(data) && memcmp(l->data, data, l->len) == 0,
	              "loaded '%.*s', want '%s'", (int)l->len, (const char *)l->data, data);
}

static void fini_all(gw_loaded *out, const gw_err *res, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (res[i] == GW_OK)
			gw_loaded_fini(&out[i]);
}

START_TEST(a_batched_activation_takes_epochs_and_loads_like_acquire_then_load)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save(c.s, c.sys, "a", "a1", 2, 0, 0), GW_OK);
	ck_assert_int_eq(save(c.s, c.sys, "c", "c1", 2, 0, 0), GW_OK);
	ck_assert_int_eq(save(c.s, c.sys, "c", "c2", 2, 1, 0), GW_OK);
	gw_actor_key ka = {c.sys, "a"};
	uint64_t single = 0;
	ck_assert_int_eq(gw_store_acquire(c.s, &ka, &single), GW_OK);
	ck_assert_uint_eq(single, 1);

	const char *names[] = {"c", "b", "a"}; /* not in key order */
	uint64_t ep[3];
	gw_loaded out[3];
	gw_err res[3];
	activate(c.s, c.sys, names, 3, ep, out, res);
	expect_loaded(&out[0], res[0], "c2", 2);
	ck_assert_uint_eq(ep[0], 1);
	ck_assert_int_eq(res[1], GW_ENOTFOUND); /* no state, still an epoch */
	ck_assert_uint_eq(ep[1], 1);
	expect_loaded(&out[2], res[2], "a1", 1);
	ck_assert_uint_eq(ep[2], 2); /* after the single acquire */
	fini_all(out, res, 3);

	/* Single and batched acquires share one sequence per actor. */
	ck_assert_int_eq(gw_store_acquire(c.s, &ka, &single), GW_OK);
	ck_assert_uint_eq(single, 3);
	activate(c.s, c.sys, names, 3, ep, out, res);
	ck_assert_uint_eq(ep[0], 2);
	ck_assert_uint_eq(ep[1], 2);
	ck_assert_uint_eq(ep[2], 4);
	fini_all(out, res, 3);

	/* A batch of one, and n == 0. */
	activate(c.s, c.sys, names + 1, 1, ep, out, res);
	ck_assert_uint_eq(ep[0], 3);
	ck_assert_int_eq(res[0], GW_ENOTFOUND);
	ck_assert_int_eq(gw_store_activate_batch(c.s, NULL, 0, NULL, NULL, NULL), GW_OK);
	ctx_close(&c);
}
END_TEST

START_TEST(a_refused_batch_takes_no_epoch)
{
	ctx c;
	ctx_open(&c, _i);
	gw_actor_key k[GW_STORE_ACTIVATE_MAX + 1];
	uint64_t ep[GW_STORE_ACTIVATE_MAX + 1];
	gw_loaded out[GW_STORE_ACTIVATE_MAX + 1];
	gw_err res[GW_STORE_ACTIVATE_MAX + 1];
	static char names[GW_STORE_ACTIVATE_MAX + 1][16];
	for (size_t i = 0; i <= GW_STORE_ACTIVATE_MAX; i++) {
		snprintf(names[i], sizeof names[i], "r%zu", i);
		k[i] = (gw_actor_key){c.sys, names[i]};
	}
	/* Too many. */
	ck_assert_int_eq(gw_store_activate_batch(c.s, k, GW_STORE_ACTIVATE_MAX + 1, ep, out, res),
	                 GW_EINVAL);
	ck_assert_int_eq(res[0], GW_EINVAL);
	ck_assert_int_eq(res[GW_STORE_ACTIVATE_MAX], GW_EINVAL);
	/* A duplicate key. */
	gw_actor_key dup[3] = {k[0], k[1], {c.sys, "r0"}};
	ck_assert_int_eq(gw_store_activate_batch(c.s, dup, 3, ep, out, res), GW_EINVAL);
	ck_assert_int_eq(res[0], GW_EINVAL);
	ck_assert_int_eq(res[2], GW_EINVAL);
	/* A bad key among good ones; NULL arguments. */
	gw_actor_key bad[2] = {k[0], {c.sys, ""}};
	ck_assert_int_eq(gw_store_activate_batch(c.s, bad, 2, ep, out, res), GW_EINVAL);
	ck_assert_int_eq(res[0], GW_EINVAL);
	ck_assert_int_eq(gw_store_activate_batch(c.s, k, 2, NULL, out, res), GW_EINVAL);
	ck_assert_int_eq(gw_store_activate_batch(c.s, k, 2, ep, NULL, res), GW_EINVAL);
	ck_assert_int_eq(gw_store_activate_batch(c.s, k, 2, ep, out, NULL), GW_EINVAL);
	ck_assert_int_eq(gw_store_activate_batch(NULL, k, 2, ep, out, res), GW_EINVAL);
	/* None of them took an epoch. */
	uint64_t e = 0;
	ck_assert_int_eq(gw_store_acquire(c.s, &k[0], &e), GW_OK);
	ck_assert_uint_eq(e, 1);
	ck_assert_int_eq(gw_store_acquire(c.s, &k[1], &e), GW_OK);
	ck_assert_uint_eq(e, 1);
	ctx_close(&c);
}
END_TEST

START_TEST(a_save_with_an_old_epoch_is_fenced_after_a_batched_acquire)
{
	ctx c;
	ctx_open(&c, _i);
	gw_store *s2 = must_open(&c, TEST_KEY); /* another gateway */
	gw_actor_key k = {c.sys, "f"};
	uint64_t old = 0;
	ck_assert_int_eq(gw_store_acquire(c.s, &k, &old), GW_OK);
	ck_assert_int_eq(save(c.s, c.sys, "f", "f1", 2, 0, old), GW_OK);

	const char *names[] = {"f", "g"};
	uint64_t ep[2];
	gw_loaded out[2];
	gw_err res[2];
	activate(s2, c.sys, names, 2, ep, out, res);
	ck_assert_uint_gt(ep[0], old);
	expect_loaded(&out[0], res[0], "f1", 1);
	fini_all(out, res, 2);
	/* The old activation is fenced and changes nothing; the new one saves. */
	ck_assert_int_eq(save(c.s, c.sys, "f", "stale", 5, 1, old), GW_EFENCED);
	ck_assert_int_eq(save(s2, c.sys, "f", "f2", 2, 1, ep[0]), GW_OK);
	ck_assert_int_eq(save(s2, c.sys, "g", "g1", 2, 0, ep[1]), GW_OK);
	expect_state(c.s, c.sys, "f", "f2", 2, 2);
	gw_store_close(s2);
	ctx_close(&c);
}
END_TEST

START_TEST(a_row_that_does_not_open_fails_only_its_own_entry)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_copy || !c.t->raw_truncate) {
		ctx_close(&c);
		return;
	}
	ck_assert_int_eq(save(c.s, c.sys, "alice", "alice1", 6, 0, 0), GW_OK);
	ck_assert_int_eq(save(c.s, c.sys, "bob", "bob1", 4, 0, 0), GW_OK);
	ck_assert_int_eq(save(c.s, c.sys, "carol", "carol1", 6, 0, 0), GW_OK);
	ck_assert(c.t->raw_copy(&c, c.sys, "alice", c.sys, "bob")); /* another actor's row */
	ck_assert(c.t->raw_truncate(&c, c.sys, "carol", 10));       /* shorter than a tag */
	const char *names[] = {"bob", "alice", "carol", "dave"};
	uint64_t ep[4];
	gw_loaded out[4];
	gw_err res[4];
	activate(c.s, c.sys, names, 4, ep, out, res);
	ck_assert_int_eq(res[0], GW_ECRYPTO);
	expect_loaded(&out[1], res[1], "alice1", 1);
	ck_assert_int_eq(res[2], GW_ECORRUPT);
	ck_assert_int_eq(res[3], GW_ENOTFOUND);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(ep[i], 1); /* every entry took its epoch */
	fini_all(out, res, 4);
	ctx_close(&c);
}
END_TEST

START_TEST(a_batch_of_the_maximum_size_activates_every_actor)
{
	ctx c;
	ctx_open(&c, _i);
	enum { N = GW_STORE_ACTIVATE_MAX };
	static char names[N][24];
	static const char *np[N];
	static gw_state st[N];
	static gw_err res[N];
	static uint64_t ep[N];
	static gw_loaded out[N];
	for (int i = 0; i < N; i++) {
		/* odd names with quotes, backslashes and braces, in a spelled list */
		snprintf(names[i], sizeof names[i], "m'\"\\{%03d},", i);
		np[i] = names[i];
		st[i] = (gw_state){.key = {c.sys, names[i]},
		                   .type_url = TYPE_URL,
		                   .data = (const uint8_t *)names[i],
		                   .len = strlen(names[i])};
	}
	/* Every other actor has state. */
	gw_err sres[N];
	size_t ns = 0;
	gw_state with[N];
	for (int i = 0; i < N; i += 2)
		with[ns++] = st[i];
	ck_assert_int_eq(gw_store_save_batch(c.s, with, ns, sres), GW_OK);
	for (int round = 1; round <= 2; round++) {
		activate(c.s, c.sys, np, N, ep, out, res);
		for (int i = 0; i < N; i++) {
			ck_assert_uint_eq(ep[i], (uint64_t)round);
			if (i % 2)
				ck_assert_int_eq(res[i], GW_ENOTFOUND);
			else
				expect_loaded(&out[i], res[i], names[i], 1);
		}
		fini_all(out, res, N);
	}
	ctx_close(&c);
}
END_TEST

/* ---- batches racing across stores ---------------------------------------------- */

enum { RACERS = 2, RACE_KEYS = 8, RACE_ROUNDS = 20 };

typedef struct racer {
	gw_store *s;
	const char *sys;
	int id;
	pthread_barrier_t *bar;
	uint64_t got[RACE_ROUNDS][RACE_KEYS]; /* by key */
	gw_err e;
} racer;

static const char *const race_names[RACE_KEYS] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};

static void *race_loop(void *arg)
{
	racer *r = arg;
	pthread_barrier_wait(r->bar);
	for (int round = 0; round < RACE_ROUNDS && r->e == GW_OK; round++) {
		gw_actor_key k[RACE_KEYS];
		int at[RACE_KEYS];
		/* Each racer asks in its own order (reversed for racer 1). */
		for (int i = 0; i < RACE_KEYS; i++) {
			at[i] = r->id ? RACE_KEYS - 1 - i : i;
			k[i] = (gw_actor_key){r->sys, race_names[at[i]]};
		}
		uint64_t ep[RACE_KEYS];
		gw_loaded out[RACE_KEYS];
		gw_err res[RACE_KEYS];
		r->e = gw_store_activate_batch(r->s, k, RACE_KEYS, ep, out, res);
		for (int i = 0; r->e == GW_OK && i < RACE_KEYS; i++) {
			r->got[round][at[i]] = ep[i];
			if (res[i] == GW_OK)
				gw_loaded_fini(&out[i]);
		}
	}
	return NULL;
}

START_TEST(batches_racing_across_stores_never_share_an_epoch)
{
	ctx c;
	ctx_open(&c, _i);
	gw_store *s2 = must_open(&c, TEST_KEY);
	pthread_barrier_t bar;
	pthread_t th[RACERS];
	static racer r[RACERS];
	ck_assert_int_eq(pthread_barrier_init(&bar, NULL, RACERS), 0);
	for (int i = 0; i < RACERS; i++) {
		memset(&r[i], 0, sizeof r[i]);
		r[i] = (racer){.s = i ? s2 : c.s, .sys = c.sys, .id = i, .bar = &bar};
		ck_assert_int_eq(pthread_create(&th[i], NULL, race_loop, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	for (int k = 0; k < RACE_KEYS; k++) {
		char seen[RACERS * RACE_ROUNDS + 1] = {0};
		for (int i = 0; i < RACERS; i++) {
			ck_assert_msg(r[i].e == GW_OK, "racer %d: %s", i, gw_err_name(r[i].e));
			for (int round = 0; round < RACE_ROUNDS; round++) {
				uint64_t e = r[i].got[round][k];
				ck_assert_uint_ge(e, 1);
				ck_assert_uint_le(e, RACERS * RACE_ROUNDS);
				if (round > 0)
					ck_assert_uint_gt(e, r[i].got[round - 1][k]);
				ck_assert_msg(!seen[e], "key %d: epoch %llu handed out twice", k,
				              (unsigned long long)e);
				seen[e] = 1;
			}
		}
	}
	gw_store_close(s2);
	ctx_close(&c);
}
END_TEST

void conf_add_activate(Suite *s, int ntargets)
{
	CONF_ADD(s, a_batched_activation_takes_epochs_and_loads_like_acquire_then_load, 30,
	         ntargets);
	CONF_ADD(s, a_refused_batch_takes_no_epoch, 30, ntargets);
	CONF_ADD(s, a_save_with_an_old_epoch_is_fenced_after_a_batched_acquire, 30, ntargets);
	CONF_ADD(s, a_row_that_does_not_open_fails_only_its_own_entry, 30, ntargets);
	CONF_ADD(s, a_batch_of_the_maximum_size_activates_every_actor, 60, ntargets);
	CONF_ADD(s, batches_racing_across_stores_never_share_an_epoch, 120, ntargets);
}
