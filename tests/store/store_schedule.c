/* store_schedule.c - the conformance suite of schema version 3: UNNAMED
 * instances (spawn_instance) and scheduled invocations (spawn_schedule),
 * with the batch done of ops version 4, over every target (see
 * store_conformance.c). Times are explicit (now_ms is a parameter), so no
 * test sleeps.
 */
#include "conformance.h"
#include "store.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T0     1700000000000LL /* a "now" in Unix epoch milliseconds */
#define LEASE  60000LL
#define MARKER "SPAWN-SCHEDULE-PLAINTEXT-5c1e"

static gw_err put_str(gw_store *s, const char *id, int64_t due, const char *data)
{
	return gw_store_schedule_put(s, id, due, (const uint8_t *)data, strlen(data));
}

/* claim claims and asserts the call succeeded. */
static size_t claim(gw_store *s, int64_t now, const char *owner, size_t max, gw_sched **out)
{
	size_t n = 99;
	gw_err e = gw_store_schedule_claim(s, now, owner, LEASE, max, out, &n);
	ck_assert_msg(e == GW_OK, "claim: %s", gw_err_name(e));
	ck_assert(n <= max);
	ck_assert(n > 0 || *out == NULL);
	return n;
}

static uint64_t count(gw_store *s)
{
	uint64_t n = 0;
	ck_assert_int_eq(gw_store_schedule_count(s, &n), GW_OK);
	return n;
}

static double ms_since(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

/* ---- UNNAMED instances ------------------------------------------------------------- */

START_TEST(instances_are_put_once_conflict_on_another_parent_and_survive_reopen)
{
	ctx c;
	ctx_open(&c, _i);
	gw_actor_key k = {c.sys, "worker-1"}, other = {c.sys, "worker-2"};
	char *parent = (char *)"untouched";
	ck_assert_int_eq(gw_store_instance_get(c.s, &k, &parent), GW_ENOTFOUND);
	ck_assert_str_eq(parent, "untouched");
	ck_assert_int_eq(gw_store_instance_put(c.s, &k, "worker"), GW_OK);
	ck_assert_int_eq(gw_store_instance_put(c.s, &k, "worker"), GW_OK); /* idempotent */
	ck_assert_int_eq(gw_store_instance_put(c.s, &k, "other-template"), GW_ECONFLICT);
	ck_assert_int_eq(gw_store_instance_put(c.s, &other, "worker"), GW_OK);
	ck_assert_int_eq(gw_store_instance_put(c.s, &k, ""), GW_EINVAL);
	ck_assert_int_eq(gw_store_instance_put(c.s, &k, NULL), GW_EINVAL);
	ctx_close(&c);
	/* A restarted gateway finds its instances. */
	c.s = must_open(&c, TEST_KEY);
	ck_assert_int_eq(gw_store_instance_get(c.s, &k, &parent), GW_OK);
	ck_assert_str_eq(parent, "worker");
	free(parent);
	ck_assert_int_eq(gw_store_instance_get(c.s, &other, &parent), GW_OK);
	ck_assert_str_eq(parent, "worker");
	free(parent);
	/* Instances are keyed by system too. */
	gw_actor_key elsewhere = {"another-system", "worker-1"};
	ck_assert_int_eq(gw_store_instance_get(c.s, &elsewhere, &parent), GW_ENOTFOUND);
	ctx_close(&c);
}
END_TEST

/* ---- scheduled invocations ------------------------------------------------------------ */

START_TEST(scheduled_invocations_are_claimed_in_due_order_up_to_the_limit)
{
	ctx c;
	ctx_open(&c, _i);
	/* Put out of order; "e" is not due at T0. */
	ck_assert_int_eq(put_str(c.s, "c", T0 - 1000, "third"), GW_OK);
	ck_assert_int_eq(put_str(c.s, "a", T0 - 3000, "first"), GW_OK);
	ck_assert_int_eq(put_str(c.s, "e", T0 + 5000, "later"), GW_OK);
	ck_assert_int_eq(put_str(c.s, "b", T0 - 2000, "second"), GW_OK);
	ck_assert_int_eq(put_str(c.s, "d", T0, "due now"), GW_OK);
	ck_assert_int_eq(put_str(c.s, "a", T0, "again"), GW_ECONFLICT);
	ck_assert_uint_eq(count(c.s), 5);
	gw_sched *v = NULL;
	size_t n = claim(c.s, T0, "gw-1", 2, &v);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].id, "a");
	ck_assert_int_eq(v[0].due_ms, T0 - 3000);
	ck_assert_uint_eq(v[0].len, 5);
	ck_assert(memcmp(v[0].data, "first", 5) == 0);
	ck_assert_str_eq(v[1].id, "b");
	ck_assert(memcmp(v[1].data, "second", 6) == 0);
	gw_sched_free(v, n);
	n = claim(c.s, T0, "gw-1", 10, &v);
	ck_assert_uint_eq(n, 2); /* c and d; e is not due */
	ck_assert_str_eq(v[0].id, "c");
	ck_assert_str_eq(v[1].id, "d");
	ck_assert(memcmp(v[1].data, "due now", 7) == 0);
	gw_sched_free(v, n);
	ck_assert_uint_eq(claim(c.s, T0, "gw-1", 10, &v), 0);
	/* e becomes due. */
	n = claim(c.s, T0 + 5000, "gw-1", 10, &v);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].id, "e");
	gw_sched_free(v, n);
	/* max 0 claims nothing. */
	n = 7;
	ck_assert_int_eq(gw_store_schedule_claim(c.s, T0 + 99999, "gw-1", LEASE, 0, &v, &n), GW_OK);
	ck_assert_uint_eq(n, 0);
	ctx_close(&c);
}
END_TEST

START_TEST(a_claimed_invocation_comes_back_only_after_its_lease_expires)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(put_str(c.s, "job", T0 - 10, "payload"), GW_OK);
	ck_assert_int_eq(put_str(c.s, "empty", T0 - 5, ""), GW_OK);
	gw_sched *v = NULL;
	size_t n = claim(c.s, T0, "gw-1", 10, &v);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[1].id, "empty");
	ck_assert_uint_eq(v[1].len, 0);
	ck_assert_ptr_nonnull(v[1].data);
	gw_sched_free(v, n);
	/* Leased until T0 + LEASE: nobody gets them before. */
	ck_assert_uint_eq(claim(c.s, T0 + 1, "gw-2", 10, &v), 0);
	ck_assert_uint_eq(claim(c.s, T0 + LEASE - 1, "gw-2", 10, &v), 0);
	int64_t due = 0;
	ck_assert_int_eq(gw_store_schedule_next_due(c.s, &due), GW_OK);
	ck_assert_int_eq(due, T0 + LEASE); /* the wake-up for the expiring lease */
	/* The lease expired (gw-1 died before done): another gateway gets it. */
	n = claim(c.s, T0 + LEASE, "gw-2", 1, &v);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].id, "job");
	ck_assert(memcmp(v[0].data, "payload", 7) == 0);
	gw_sched_free(v, n);
	/* done deletes; a second done and a done of an unknown id are fine. */
	ck_assert_int_eq(gw_store_schedule_done(c.s, "job"), GW_OK);
	ck_assert_int_eq(gw_store_schedule_done(c.s, "job"), GW_OK);
	ck_assert_int_eq(gw_store_schedule_done(c.s, "never-put"), GW_OK);
	ck_assert_uint_eq(count(c.s), 1);
	n = claim(c.s, T0 + 10 * LEASE, "gw-3", 10, &v);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].id, "empty");
	gw_sched_free(v, n);
	ck_assert_int_eq(gw_store_schedule_done(c.s, "empty"), GW_OK);
	ck_assert_uint_eq(count(c.s), 0);
	ck_assert_int_eq(gw_store_schedule_next_due(c.s, &due), GW_ENOTFOUND);
	ctx_close(&c);
}
END_TEST

START_TEST(next_due_and_count_follow_puts_claims_and_dones)
{
	ctx c;
	ctx_open(&c, _i);
	int64_t due = 42;
	ck_assert_int_eq(gw_store_schedule_next_due(c.s, &due), GW_ENOTFOUND);
	ck_assert_int_eq(due, 42);
	ck_assert_uint_eq(count(c.s), 0);
	ck_assert_int_eq(put_str(c.s, "late", T0 + 9000, "x"), GW_OK);
	ck_assert_int_eq(gw_store_schedule_next_due(c.s, &due), GW_OK);
	ck_assert_int_eq(due, T0 + 9000);
	ck_assert_int_eq(put_str(c.s, "soon", T0 + 100, "x"), GW_OK);
	ck_assert_int_eq(put_str(c.s, "overdue", T0 - 100, "x"), GW_OK);
	ck_assert_int_eq(gw_store_schedule_next_due(c.s, &due), GW_OK);
	ck_assert_int_eq(due, T0 - 100); /* in the past: claim now */
	ck_assert_uint_eq(count(c.s), 3);
	gw_sched *v = NULL;
	size_t n = claim(c.s, T0, "gw-1", 10, &v);
	ck_assert_uint_eq(n, 1);
	gw_sched_free(v, n);
	ck_assert_int_eq(gw_store_schedule_next_due(c.s, &due), GW_OK);
	ck_assert_int_eq(due, T0 + 100);
	ck_assert_uint_eq(count(c.s), 3); /* claimed is still pending */
	ck_assert_int_eq(gw_store_schedule_done(c.s, "overdue"), GW_OK);
	ck_assert_uint_eq(count(c.s), 2);
	ctx_close(&c);
}
END_TEST

START_TEST(pending_invocations_survive_a_restart_and_overdue_ones_run_once)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(put_str(c.s, "before-crash", T0 + 1000, "kept"), GW_OK);
	ck_assert_int_eq(put_str(c.s, "in-flight", T0 - 1000, "leased"), GW_OK);
	gw_sched *v = NULL;
	size_t n = claim(c.s, T0, "gw-old", 10, &v);
	ck_assert_uint_eq(n, 1);
	gw_sched_free(v, n);
	ctx_close(&c); /* the gateway stops */
	c.s = must_open(&c, TEST_KEY);
	/* After start-up, long after: both are overdue and come back once. */
	int64_t later = T0 + 10 * LEASE;
	n = claim(c.s, later, "gw-new", 10, &v);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].id, "in-flight");
	ck_assert_str_eq(v[1].id, "before-crash");
	ck_assert(memcmp(v[1].data, "kept", 4) == 0);
	gw_sched_free(v, n);
	ck_assert_uint_eq(claim(c.s, later, "gw-new", 10, &v), 0);
	ctx_close(&c);
}
END_TEST

START_TEST(scheduled_data_is_encrypted_at_rest)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(put_str(c.s, "secret", T0, "payload " MARKER " payload"), GW_OK);
	if (c.t->raw_sched_contains) {
		long long hits = -1;
		ck_assert(c.t->raw_sched_contains(&c, MARKER, &hits));
		ck_assert_int_eq(hits, 0);
		ck_assert(c.t->raw_sched_contains(&c, "", &hits)); /* the probe works */
		ck_assert_int_eq(hits, 1);
	}
	gw_sched *v = NULL;
	size_t n = claim(c.s, T0, "gw-1", 1, &v);
	ck_assert_uint_eq(n, 1);
	ck_assert(memmem(v[0].data, v[0].len, MARKER, strlen(MARKER)) != NULL);
	gw_sched_free(v, n);
	ctx_close(&c);
}
END_TEST

START_TEST(a_row_that_does_not_open_is_set_aside_never_returned_nor_deleted)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_sched_fill) {
		ctx_close(&c);
		return;
	}
	/* Two rows whose data opens under no key, due first. */
	ck_assert(c.t->raw_sched_fill(&c, "bad", 2, T0 - 500));
	ck_assert_int_eq(put_str(c.s, "good", T0 - 100, "fine"), GW_OK);
	gw_sched *v = NULL;
	size_t n = claim(c.s, T0, "gw-1", 10, &v);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].id, "good");
	gw_sched_free(v, n);
	ck_assert_int_eq(gw_store_schedule_done(c.s, "good"), GW_OK);
	/* Set aside for good: not after the lease, not for next_due. */
	ck_assert_uint_eq(claim(c.s, T0 + 100 * LEASE, "gw-2", 10, &v), 0);
	int64_t due = 0;
	ck_assert_int_eq(gw_store_schedule_next_due(c.s, &due), GW_ENOTFOUND);
	ck_assert_uint_eq(count(c.s), 2); /* still there for an operator */
	/* A copy of a good row's data onto another id would not open either:
	 * the AAD binds the id (crypto_test covers the AAD itself). */
	ck_assert_int_eq(gw_store_schedule_claim(c.s, T0, GW_SCHED_CORRUPT, LEASE, 1, &v, &n),
	                 GW_EINVAL);
	ctx_close(&c);
}
END_TEST

/* A second key id for the rotation (bytes 64..95). */
#define SCHED_KEY_B "t2:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="

static gw_store *open_keys(ctx *c, const char *keys)
{
	gw_store *s = NULL;
	gw_store_opts o = {.keys = keys, .err = c->err, .errlen = sizeof c->err};
	gw_err e = gw_store_open(&s, c->url, &o);
	ck_assert_msg(e == GW_OK, "[%s] open: %s: %s", c->t->name, gw_err_name(e), c->err);
	return s;
}

/* expect_payloads claims every due row of s at now (as owner) and checks
 * that each opens to the payload its id was put with. Returns how many. */
static size_t expect_payloads(gw_store *s, int64_t now, const char *owner)
{
	gw_sched *v = NULL;
	size_t n = claim(s, now, owner, 1000, &v);
	for (size_t i = 0; i < n; i++) {
		char want[64];
		snprintf(want, sizeof want, "payload of %s", v[i].id);
		ck_assert_msg(v[i].len == strlen(want) && !memcmp(v[i].data, want, v[i].len),
		              "%s: '%.*s'", v[i].id, (int)v[i].len, (const char *)v[i].data);
	}
	gw_sched_free(v, n);
	return n;
}

/* Key rotation re-seals the scheduled invocations too (both forms: for a
 * system, and as earlier gateways sealed them), keeping their due times
 * and claims, so the old key can leave the keyring once it says done. */
START_TEST(key_rotation_reseals_scheduled_invocations_keeping_due_and_claim)
{
	enum { N = 300, LEGACY = 2, CLAIMED = 5 }; /* more than one page of 256 */
	ctx c;
	ctx_open(&c, _i);
	ctx_close(&c);
	gw_store *w = open_keys(&c, TEST_KEY);
	char id[32], data[64];
	for (int i = 0; i < N + LEGACY; i++) {
		snprintf(id, sizeof id, "%s-%04d", i < N ? "rot" : "old", i);
		snprintf(data, sizeof data, "payload of %s", id);
		gw_err e = i < N ? gw_store_schedule_put_sys(w, id, c.sys, T0 + i,
		                                             (const uint8_t *)data, strlen(data))
		                 : put_str(w, id, T0 + i, data);
		ck_assert_int_eq(e, GW_OK);
	}
	bool bad = c.t->raw_sched_fill && c.t->raw_sched_fill(&c, "bad", 1, T0 - 500);
	/* Five rows claimed before the rotation: they stay claimed. */
	gw_sched *v = NULL;
	/* (The row that does not open is due first: that claim sets it aside.) */
	ck_assert_uint_eq(claim(w, T0 + 4, "gw-1", CLAIMED + (bad ? 1 : 0), &v), CLAIMED);
	gw_sched_free(v, CLAIMED);
	gw_store_close(w);

	gw_store *r = open_keys(&c, SCHED_KEY_B "," TEST_KEY);
	gw_rotation p = {0};
	int steps = 0;
	while (!p.done) {
		gw_err e = gw_store_rotate_step(r, 50, &p);
		ck_assert_msg(e == GW_OK, "step %d: %s", steps, gw_err_name(e));
		ck_assert_int_lt(++steps, 100);
	}
	printf("store_conformance: [%s] schedule rotation: %d steps, %llu rewritten, %llu failed\n",
	       c.t->name, steps, (unsigned long long)p.rewritten, (unsigned long long)p.failed);
	ck_assert_uint_eq(p.rewritten, N + LEGACY);
	ck_assert_uint_eq(p.failed, bad ? 1 : 0);
	ck_assert_uint_eq(p.remaining, 0);
	/* Done stays done, and rewrites nothing more. */
	gw_rotation again = {0};
	ck_assert_int_eq(gw_store_rotate_step(r, 50, &again), GW_OK);
	ck_assert(again.done);
	ck_assert_uint_eq(again.rewritten, 0);
	gw_store_close(r);

	/* The new key alone opens the store and every row. */
	gw_store *b = open_keys(&c, SCHED_KEY_B);
	ck_assert_uint_eq(count(b), N + LEGACY + (bad ? 1 : 0));
	/* The unclaimed rows (the one that never opened is set aside). */
	ck_assert_uint_eq(expect_payloads(b, T0 + 1000, "gw-2"), N + LEGACY - CLAIMED);
	/* The claimed ones come back only when their lease has expired. */
	ck_assert_uint_eq(expect_payloads(b, T0 + 4 + LEASE + 1, "gw-2"), CLAIMED);
	gw_store_close(b);
}
END_TEST

START_TEST(bad_schedule_arguments_are_refused)
{
	ctx c;
	ctx_open(&c, _i);
	gw_sched *v = NULL;
	size_t n = 0;
	int64_t due;
	uint64_t cnt;
	char long_id[64];
	memset(long_id, 'x', sizeof long_id - 1);
	long_id[GW_SCHED_ID_MAX + 1] = '\0';
	ck_assert_int_eq(put_str(c.s, "", T0, "x"), GW_EINVAL);
	ck_assert_int_eq(put_str(c.s, long_id, T0, "x"), GW_EINVAL);
	long_id[GW_SCHED_ID_MAX] = '\0';
	ck_assert_int_eq(put_str(c.s, long_id, T0, "x"), GW_OK); /* the longest */
	ck_assert_int_eq(put_str(c.s, "a b", T0, "x"), GW_EINVAL);
	ck_assert_int_eq(put_str(c.s, "quote'", T0, "x"), GW_EINVAL);
	ck_assert_int_eq(put_str(c.s, "neg", -1, "x"), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_put(c.s, NULL, T0, NULL, 0), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_put(c.s, "null-data", T0, NULL, 3), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_put(c.s, "no-data", T0, NULL, 0), GW_OK);
	ck_assert_int_eq(gw_store_schedule_claim(c.s, T0, NULL, LEASE, 1, &v, &n), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_claim(c.s, T0, "", LEASE, 1, &v, &n), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_claim(c.s, T0, "gw", 0, 1, &v, &n), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_claim(c.s, -1, "gw", LEASE, 1, &v, &n), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_claim(c.s, T0, "gw", INT64_MAX - T0, 1, &v, &n),
	                 GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_claim(c.s, T0, "gw", LEASE, 1, NULL, &n), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_claim(c.s, T0, "gw", LEASE, 1, &v, NULL), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_done(c.s, ""), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_next_due(c.s, NULL), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_count(c.s, NULL), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_next_due(NULL, &due), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_count(NULL, &cnt), GW_EINVAL);
	gw_actor_key bad = {c.sys, ""};
	char *parent = NULL;
	ck_assert_int_eq(gw_store_instance_put(c.s, &bad, "p"), GW_EINVAL);
	ck_assert_int_eq(gw_store_instance_get(c.s, &bad, &parent), GW_EINVAL);
	gw_sched_free(NULL, 0);
	/* The no-data row claims as an empty plaintext. */
	n = claim(c.s, T0, "gw", 10, &v);
	ck_assert_uint_eq(n, 2);
	gw_sched_free(v, n);
	ctx_close(&c);
}
END_TEST

/* ---- batch done (ops version 4) ---------------------------------------------------------- */

/* claimed_ids claims everything due at now for owner and writes the ids in
 * claim order, space-separated, into buf. */
static const char *claimed_ids(gw_store *s, int64_t now, char *buf, size_t cap)
{
	gw_sched *v = NULL;
	size_t n = claim(s, now, "gw-check", 100, &v);
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t used = strlen(buf);
		snprintf(buf + used, cap - used, "%s%s", i ? " " : "", v[i].id);
	}
	gw_sched_free(v, n);
	return buf;
}

START_TEST(a_done_batch_deletes_exactly_the_named_rows)
{
	ctx c;
	ctx_open(&c, _i);
	const char *all[] = {"a", "b", "c", "d", "e", "f"};
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(put_str(c.s, all[i], T0 - 100 + i, all[i]), GW_OK);
	/* Leased or not, done deletes; missing ids and repeats are fine. */
	gw_sched *v = NULL;
	size_t n = claim(c.s, T0, "gw-1", 2, &v); /* a and b leased */
	ck_assert_uint_eq(n, 2);
	gw_sched_free(v, n);
	const char *done[] = {"b", "never-put", "d", "b", "f"};
	ck_assert_int_eq(gw_store_schedule_done_batch(c.s, done, 5), GW_OK);
	ck_assert_uint_eq(count(c.s), 3);
	/* a (its lease expired), c, e: the others are gone. */
	char buf[256];
	ck_assert_str_eq(claimed_ids(c.s, T0 + LEASE, buf, sizeof buf), "a c e");
	/* Again, all missing now but one; and an empty batch. */
	ck_assert_int_eq(gw_store_schedule_done_batch(c.s, done, 5), GW_OK);
	ck_assert_int_eq(gw_store_schedule_done_batch(c.s, NULL, 0), GW_OK);
	ck_assert_uint_eq(count(c.s), 3);
	const char *rest[] = {"e", "a", "c"};
	ck_assert_int_eq(gw_store_schedule_done_batch(c.s, rest, 3), GW_OK);
	ck_assert_uint_eq(count(c.s), 0);
	int64_t due = 0;
	ck_assert_int_eq(gw_store_schedule_next_due(c.s, &due), GW_ENOTFOUND);
	ctx_close(&c);
}
END_TEST

START_TEST(a_done_batch_with_a_bad_id_deletes_nothing)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(put_str(c.s, "x1", T0, "x"), GW_OK);
	ck_assert_int_eq(put_str(c.s, "x2", T0, "x"), GW_OK);
	char long_id[64];
	memset(long_id, 'x', sizeof long_id - 1);
	long_id[GW_SCHED_ID_MAX + 1] = '\0';
	/* The bad id comes last: the good ones before it stay too. */
	const char *quote[] = {"x1", "x2", "it's"};
	const char *empty[] = {"x1", ""};
	const char *toolong[] = {"x2", long_id};
	const char *null[] = {"x1", NULL};
	ck_assert_int_eq(gw_store_schedule_done_batch(c.s, quote, 3), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_done_batch(c.s, empty, 2), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_done_batch(c.s, toolong, 2), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_done_batch(c.s, null, 2), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_done_batch(c.s, NULL, 1), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_done_batch(NULL, quote, 1), GW_EINVAL);
	ck_assert_uint_eq(count(c.s), 2);
	long_id[GW_SCHED_ID_MAX] = '\0'; /* the longest valid id */
	ck_assert_int_eq(put_str(c.s, long_id, T0, "x"), GW_OK);
	const char *good[] = {long_id, "x1"};
	ck_assert_int_eq(gw_store_schedule_done_batch(c.s, good, 2), GW_OK);
	char buf[256];
	ck_assert_str_eq(claimed_ids(c.s, T0, buf, sizeof buf), "x2");
	ctx_close(&c);
}
END_TEST

enum { DONE_BIG = 5000 };

START_TEST(a_done_batch_of_5000_rows_spans_chunks_and_deletes_them_all)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_sched_fill) {
		ctx_close(&c);
		return;
	}
	/* DONE_BIG rows behind the driver (ids d0000000..), and two through the
	 * API on either side of them in id order. */
	ck_assert(c.t->raw_sched_fill(&c, "d", DONE_BIG, T0));
	ck_assert_int_eq(put_str(c.s, "c-keep", T0, "x"), GW_OK);
	ck_assert_int_eq(put_str(c.s, "e-keep", T0, "x"), GW_OK);
	ck_assert_uint_eq(count(c.s), DONE_BIG + 2);
	static char ids[DONE_BIG][16];
	static const char *v[DONE_BIG];
	for (int i = 0; i < DONE_BIG; i++) {
		snprintf(ids[i], sizeof ids[i], "d%07d", DONE_BIG - 1 - i); /* any order */
		v[i] = ids[i];
	}
	ck_assert_int_gt(DONE_BIG, GW_SCHED_DONE_CHUNK); /* two transactions */
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	ck_assert_int_eq(gw_store_schedule_done_batch(c.s, v, DONE_BIG), GW_OK);
	printf("[%s] done batch of %d: %.1f ms\n", c.t->name, DONE_BIG, ms_since(&t));
	ck_assert_uint_eq(count(c.s), 2);
	char buf[256];
	ck_assert_str_eq(claimed_ids(c.s, T0 + 10 * LEASE, buf, sizeof buf), "c-keep e-keep");
	ctx_close(&c);
}
END_TEST

/* ---- scale ------------------------------------------------------------------------------ */

enum { BIG = 100000, REAL = 150 };

START_TEST(a_100000_row_schedule_claims_and_finds_the_next_due_through_its_indexes)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_sched_fill) {
		ctx_close(&c);
		return;
	}
	/* 100,000 pending rows due in the future (inserted behind the driver
	 * in one statement), and REAL rows due now, put through the API. */
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	ck_assert(c.t->raw_sched_fill(&c, "f", BIG, T0 + 3600000));
	double fill = ms_since(&t);
	for (int i = 0; i < REAL; i++) {
		char id[32], data[32];
		snprintf(id, sizeof id, "r%04d", i);
		snprintf(data, sizeof data, "invocation %d", i);
		/* Reverse order of due time: the claim must sort. */
		ck_assert_int_eq(put_str(c.s, id, T0 - 1000 * (REAL - i), data), GW_OK);
	}
	ck_assert_uint_eq(count(c.s), BIG + REAL);
	clock_gettime(CLOCK_MONOTONIC, &t);
	int64_t due = 0;
	ck_assert_int_eq(gw_store_schedule_next_due(c.s, &due), GW_OK);
	double next_ms = ms_since(&t);
	ck_assert_int_eq(due, T0 - 1000 * REAL);
	clock_gettime(CLOCK_MONOTONIC, &t);
	gw_sched *v = NULL;
	size_t n = claim(c.s, T0, "gw-1", 100, &v);
	double claim_ms = ms_since(&t);
	ck_assert_uint_eq(n, 100);
	for (size_t i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof id, "r%04zu", i);
		ck_assert_str_eq(v[i].id, id);
		ck_assert_int_eq(v[i].due_ms, T0 - 1000 * (REAL - (int64_t)i));
	}
	gw_sched_free(v, n);
	/* The rest of the real rows, then nothing: the 100,000 are not due. */
	ck_assert_uint_eq(claim(c.s, T0, "gw-1", 100, &v), REAL - 100);
	gw_sched_free(v, REAL - 100);
	ck_assert_uint_eq(claim(c.s, T0, "gw-1", 100, &v), 0);
	ck_assert_int_eq(gw_store_schedule_next_due(c.s, &due), GW_OK);
	ck_assert_int_eq(due, T0 + LEASE); /* the leases expire before the fill is due */
	printf("[%s] 100,000 pending: fill %.0f ms, next_due %.2f ms, claim of 100 %.2f ms\n",
	       c.t->name, fill, next_ms, claim_ms);
	/* The plans: index range scans, never a table scan. */
	if (c.t->raw_sched_indexed) {
		char why[2048];
		ck_assert_msg(c.t->raw_sched_indexed(&c, why, sizeof why), "[%s] plan: %s",
		              c.t->name, why);
	}
	/* Generous: a sanitizer build on a loaded machine, not a benchmark. */
	ck_assert_msg(next_ms < 500 && claim_ms < 2000, "next_due %.1f ms, claim %.1f ms", next_ms,
	              claim_ms);
	ctx_close(&c);
}
END_TEST

/* ---- concurrency ------------------------------------------------------------------------ */

enum { RACE_ROWS = 300, RACE_BATCH = 7 };

typedef struct claimer {
	gw_store *s;
	const char *owner;
	pthread_barrier_t *bar;
	char (*ids)[40]; /* RACE_ROWS entries */
	size_t n;
	gw_err e;
} claimer;

static void *claim_all(void *arg)
{
	claimer *cl = arg;
	pthread_barrier_wait(cl->bar);
	for (;;) {
		gw_sched *v = NULL;
		size_t n = 0;
		cl->e = gw_store_schedule_claim(cl->s, T0, cl->owner, LEASE, RACE_BATCH, &v, &n);
		if (cl->e == GW_EUNAVAIL) /* a lock wait that timed out: retry */
			continue;
		if (cl->e != GW_OK || n == 0)
			break;
		for (size_t i = 0; i < n && cl->n < RACE_ROWS; i++)
			memcpy(cl->ids[cl->n++], v[i].id, sizeof v[i].id);
		gw_sched_free(v, n);
	}
	return NULL;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

START_TEST(two_stores_claiming_at_once_never_get_the_same_row)
{
	ctx c;
	ctx_open(&c, _i);
	for (int i = 0; i < RACE_ROWS; i++) {
		char id[32];
		snprintf(id, sizeof id, "job%04d", i);
		ck_assert_int_eq(put_str(c.s, id, T0 - RACE_ROWS + i, "x"), GW_OK);
	}
	static char ids[2][RACE_ROWS][40], all[2 * RACE_ROWS][40];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	claimer cl[2] = {{.owner = "gw-a", .bar = &bar, .ids = ids[0]},
	                 {.owner = "gw-b", .bar = &bar, .ids = ids[1]}};
	cl[0].s = must_open(&c, TEST_KEY);
	cl[1].s = must_open(&c, TEST_KEY);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, claim_all, &cl[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	size_t total = 0;
	for (int i = 0; i < 2; i++) {
		ck_assert_msg(cl[i].e == GW_OK, "%s: %s", cl[i].owner, gw_err_name(cl[i].e));
		memcpy(all[total], ids[i], cl[i].n * sizeof ids[i][0]);
		total += cl[i].n;
		gw_store_close(cl[i].s);
	}
	printf("[%s] concurrent claims: %zu + %zu rows\n", c.t->name, cl[0].n, cl[1].n);
	ck_assert_uint_eq(total, RACE_ROWS);
	qsort(all, total, sizeof all[0], cmp_id);
	for (size_t i = 1; i < total; i++)
		ck_assert_msg(strcmp(all[i - 1], all[i]) != 0, "%s claimed twice", all[i]);
	gw_sched *v = NULL;
	ck_assert_uint_eq(claim(c.s, T0, "gw-c", 10, &v), 0);
	ctx_close(&c);
}
END_TEST

/* ---- schema version 2 ------------------------------------------------------------------ */

START_TEST(a_version_2_store_is_migrated_to_version_3)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_downgrade_v2) {
		ctx_close(&c);
		return;
	}
	ck_assert_int_eq(save(c.s, c.sys, "m", "kept", 4, 0, 0), GW_OK);
	ctx_close(&c);
	ck_assert(c.t->raw_downgrade_v2(&c));
	c.s = must_open(&c, TEST_KEY); /* migrates to version 3 */
	expect_state(c.s, c.sys, "m", "kept", 4, 1);
	gw_actor_key k = {c.sys, "i"};
	ck_assert_int_eq(gw_store_instance_put(c.s, &k, "tmpl"), GW_OK);
	ck_assert_int_eq(put_str(c.s, "s", T0, "x"), GW_OK);
	ctx_close(&c);
	/* A current store migrates nothing and keeps both. */
	c.s = must_open(&c, TEST_KEY);
	char *parent = NULL;
	ck_assert_int_eq(gw_store_instance_get(c.s, &k, &parent), GW_OK);
	ck_assert_str_eq(parent, "tmpl");
	free(parent);
	ck_assert_uint_eq(count(c.s), 1);
	ctx_close(&c);
}
END_TEST

/* ---- counts for quotas (ops version 6) ------------------------------------------------ */

typedef struct counted {
	char key[8][64];
	uint64_t n[8];
	int k;
} counted;

static void count_into(void *user, const char *key, uint64_t n)
{
	counted *c = user;
	if (c->k < 8) {
		snprintf(c->key[c->k], sizeof c->key[c->k], "%s", key);
		c->n[c->k++] = n;
	}
}

/* counted_of: the count reported for key (0 when not reported). */
static uint64_t counted_of(const counted *c, const char *key)
{
	for (int i = 0; i < c->k; i++)
		if (!strcmp(c->key[i], key))
			return c->n[i];
	return 0;
}

START_TEST(instances_and_schedules_are_counted_per_system_and_per_id_prefix)
{
	ctx c;
	ctx_open(&c, _i);
	char other[80];
	snprintf(other, sizeof other, "%s-b", c.sys);
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof name, "inst-%d", i);
		gw_actor_key k = {i < 3 ? c.sys : other, name};
		ck_assert_int_eq(gw_store_instance_put(c.s, &k, "tmpl"), GW_OK);
	}
	counted ci = {.k = 0};
	ck_assert_int_eq(gw_store_instance_counts(c.s, count_into, &ci), GW_OK);
	ck_assert_uint_eq(counted_of(&ci, c.sys), 3);
	ck_assert_uint_eq(counted_of(&ci, other), 2);
	/* ids that start with a system's hash, as the gateway writes them */
	const char *ids[] = {"0a0b0c0d.r1", "0a0b0c0d.r2", "0a0b0c0d.r3", "ffee0011.r1", "short"};
	for (size_t i = 0; i < 5; i++)
		ck_assert_int_eq(put_str(c.s, ids[i], T0 + 1000, "x"), GW_OK);
	gw_sched *v = NULL;
	size_t n = claim(c.s, T0 + 2000, "gw-1", 1, &v); /* a leased row still counts */
	ck_assert_uint_eq(n, 1);
	gw_sched_free(v, n);
	counted cs = {.k = 0};
	ck_assert_int_eq(gw_store_schedule_counts(c.s, 9, count_into, &cs), GW_OK);
	ck_assert_uint_eq(counted_of(&cs, "0a0b0c0d."), 3);
	ck_assert_uint_eq(counted_of(&cs, "ffee0011."), 1);
	ck_assert_uint_eq(counted_of(&cs, "short"), 1);
	ck_assert_int_eq(gw_store_schedule_done(c.s, "0a0b0c0d.r2"), GW_OK);
	cs.k = 0;
	ck_assert_int_eq(gw_store_schedule_counts(c.s, 9, count_into, &cs), GW_OK);
	ck_assert_uint_eq(counted_of(&cs, "0a0b0c0d."), 2);
	/* arguments */
	ck_assert_int_eq(gw_store_schedule_counts(c.s, 0, count_into, &cs), GW_EINVAL);
	ck_assert_int_eq(gw_store_schedule_counts(c.s, GW_SCHED_ID_MAX + 1, count_into, &cs),
	                 GW_EINVAL);
	ck_assert_int_eq(gw_store_instance_counts(c.s, NULL, NULL), GW_EINVAL);
	ctx_close(&c);
}
END_TEST

void conf_add_schedule(Suite *s, int ntargets)
{
	CONF_ADD(s, instances_and_schedules_are_counted_per_system_and_per_id_prefix, 30, ntargets);
	CONF_ADD(s, instances_are_put_once_conflict_on_another_parent_and_survive_reopen, 30,
	         ntargets);
	CONF_ADD(s, scheduled_invocations_are_claimed_in_due_order_up_to_the_limit, 30, ntargets);
	CONF_ADD(s, a_claimed_invocation_comes_back_only_after_its_lease_expires, 30, ntargets);
	CONF_ADD(s, next_due_and_count_follow_puts_claims_and_dones, 30, ntargets);
	CONF_ADD(s, pending_invocations_survive_a_restart_and_overdue_ones_run_once, 30, ntargets);
	CONF_ADD(s, scheduled_data_is_encrypted_at_rest, 30, ntargets);
	CONF_ADD(s, a_row_that_does_not_open_is_set_aside_never_returned_nor_deleted, 30, ntargets);
	CONF_ADD(s, bad_schedule_arguments_are_refused, 30, ntargets);
	CONF_ADD(s, key_rotation_reseals_scheduled_invocations_keeping_due_and_claim, 60, ntargets);
	CONF_ADD(s, a_100000_row_schedule_claims_and_finds_the_next_due_through_its_indexes, 300,
	         ntargets);
	CONF_ADD(s, two_stores_claiming_at_once_never_get_the_same_row, 120, ntargets);
	CONF_ADD(s, a_version_2_store_is_migrated_to_version_3, 60, ntargets);
	CONF_ADD(s, a_done_batch_deletes_exactly_the_named_rows, 30, ntargets);
	CONF_ADD(s, a_done_batch_with_a_bad_id_deletes_nothing, 30, ntargets);
	CONF_ADD(s, a_done_batch_of_5000_rows_spans_chunks_and_deletes_them_all, 120, ntargets);
}
