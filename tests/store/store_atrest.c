/* store_atrest.c - the conformance suite of ops version 7 and envelope 3:
 * per-system data keys (rows of one system never open as another's, rows
 * an earlier gateway sealed still open and key rotation rewrites them) and
 * gw_store_forget (every table emptied of one actor, nothing else
 * touched), over every target (see store_conformance.c).
 */
#include "conformance.h"
#include "crypto.h"
#include "store.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gw_err save_fx(gw_store *s, const char *sys, const char *name, const char *data,
                      uint64_t expected, int fx)
{
	gw_state st = {.key = {sys, name},
	               .type_url = TYPE_URL,
	               .data = (const uint8_t *)data,
	               .len = strlen(data),
	               .expected = expected,
	               .effects = fx};
	gw_err r = GW_EIO;
	gw_err e = gw_store_save_batch(s, &st, 1, &r);
	ck_assert_msg(e == GW_OK, "save %s/%s: batch failed: %s", sys, name, gw_err_name(e));
	return r;
}

static void expect_str(gw_store *s, const char *sys, const char *name, const char *v, uint64_t rev)
{
	expect_state(s, sys, name, v, strlen(v), rev);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void rows_of(const ctx *c, const char *sys, const char *name, long long out[5])
{
	ck_assert(c->t->raw_actor_rows(c, sys, name, out));
}

/* ---- envelope 3 ---------------------------------------------------------------- */

/* Every save writes envelope 3; a row the previous gateway wrote (envelope
 * 2, under the keyring key itself) still loads, and the key rotation, with
 * the same primary key, rewrites it as envelope 3 (its revision kept). */
START_TEST(an_envelope_2_row_loads_and_key_rotation_rewrites_it_as_envelope_3)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_set_sealed || !c.t->raw_actor_rows) {
		ctx_close(&c);
		return;
	}
	long long r[5];
	ck_assert_int_eq(save_fx(c.s, c.sys, "fresh", "new row", 0, 0), GW_OK);
	rows_of(&c, c.sys, "fresh", r);
	ck_assert_int_eq(r[0], 1);
	ck_assert_int_eq(r[4], 1); /* written as envelope 3 */
	ck_assert_int_eq(save_fx(c.s, c.sys, "legacy", "placeholder", 0, 0), GW_OK);
	gw_keyring *kr = NULL;
	ck_assert_int_eq(gw_keyring_parse(&kr, TEST_KEY, NULL, 0), GW_OK);
	const char *old = "sealed by the gateway before, envelope 2";
	gw_sealed sl;
	ck_assert_int_eq(
	    gw_seal_rev(kr, c.sys, "legacy", 1, (const uint8_t *)old, strlen(old), &sl), GW_OK);
	char nh[2 * GW_NONCE_LEN + 1], dh[512];
	hex(sl.nonce, GW_NONCE_LEN, nh);
	hex(sl.data, sl.len, dh);
	free(sl.data);
	gw_keyring_free(kr);
	ck_assert(c.t->raw_set_sealed(&c, c.sys, "legacy", nh, dh));
	rows_of(&c, c.sys, "legacy", r);
	ck_assert_int_eq(r[4], 0);
	expect_str(c.s, c.sys, "legacy", old, 1);

	/* Same primary key: the rotation still has work, the envelope. */
	gw_rotation pr = {0};
	ck_assert_int_eq(gw_store_rotate_step(c.s, 100, &pr), GW_OK);
	ck_assert_uint_eq(pr.rewritten, 1);
	ck_assert_uint_eq(pr.failed, 0);
	ck_assert_int_eq(pr.done, 1);
	rows_of(&c, c.sys, "legacy", r);
	ck_assert_int_eq(r[4], 1);
	expect_str(c.s, c.sys, "legacy", old, 1);
	expect_str(c.s, c.sys, "fresh", "new row", 1);
	/* Done: nothing left to rewrite. */
	gw_rotation again = {0};
	ck_assert_int_eq(gw_store_rotate_step(c.s, 100, &again), GW_OK);
	ck_assert_uint_eq(again.rewritten, 0);
	ck_assert_int_eq(again.done, 1);
	ctx_close(&c);
}
END_TEST

/* A row of system A put on the same actor name of system B (both at
 * revision 1) is refused (GW_ECRYPTO), never read as B's plaintext; A's
 * own row still loads. */
START_TEST(a_row_swapped_onto_another_system_does_not_open)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_copy) {
		ctx_close(&c);
		return;
	}
	char other[80];
	snprintf(other, sizeof other, "%s.b", c.sys);
	ck_assert_int_eq(save_fx(c.s, c.sys, "acct", "alpha's secret", 0, 0), GW_OK);
	ck_assert_int_eq(save_fx(c.s, other, "acct", "beta's own", 0, 0), GW_OK);
	ck_assert(c.t->raw_copy(&c, c.sys, "acct", other, "acct"));
	gw_loaded l;
	ck_assert_int_eq(load(c.s, other, "acct", &l), GW_ECRYPTO);
	expect_str(c.s, c.sys, "acct", "alpha's secret", 1);
	ctx_close(&c);
}
END_TEST

/* ---- forget ------------------------------------------------------------------------ */

/* A scheduled invocation's data in this suite is "to:<actor>": match says
 * whether it targets the actor named by user. */
static bool to_actor(void *user, const uint8_t *data, size_t len)
{
	char want[128];
	snprintf(want, sizeof want, "to:%s", (const char *)user);
	return len == strlen(want) && memcmp(data, want, len) == 0;
}

/* put_sched stores a row sealed under system's data key (NULL: under the
 * keyring key, as earlier gateways did). */
static void put_sched_sys(gw_store *s, const char *id, const char *system, const char *data)
{
	ck_assert_int_eq(
	    gw_store_schedule_put_sys(s, id, system, 1000, (const uint8_t *)data, strlen(data)),
	    GW_OK);
}

static void put_sched(gw_store *s, const char *id, const char *data)
{
	put_sched_sys(s, id, NULL, data);
}

START_TEST(forget_erases_every_row_of_the_actor_and_nothing_else)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_actor_rows) {
		ctx_close(&c);
		return;
	}
	gw_store *h = NULL;
	gw_store_opts o = {.keys = TEST_KEY, .history = 3, .err = c.err, .errlen = sizeof c.err};
	ck_assert_int_eq(gw_store_open(&h, c.url, &o), GW_OK);
	char other[80];
	snprintf(other, sizeof other, "%s.o", c.sys);
	gw_actor_key gone = {c.sys, "gone"}, kept = {c.sys, "kept"}, twin = {other, "gone"};
	uint64_t ep = 0;
	/* gone: 5 revisions (the history holds the latest and 3 older), effects, an
	 * instance record, an epoch, 3 schedule rows in its system's prefix. */
	for (uint64_t r = 0; r < 5; r++)
		ck_assert_int_eq(save_fx(h, c.sys, "gone", "g", r, r == 4), GW_OK);
	ck_assert_int_eq(gw_store_instance_put(h, &gone, "Template"), GW_OK);
	ck_assert_int_eq(gw_store_acquire(h, &gone, &ep), GW_OK);
	put_sched_sys(h, "cafe0001.a1", c.sys, "to:gone");
	put_sched(h, "cafe0001.a2", "to:gone"); /* as an earlier gateway sealed it */
	put_sched_sys(h, "cafe0001.zz", c.sys, "to:gone");
	/* Outside the prefix: not looked at, even though it names gone. */
	put_sched(h, "cafe0002.a1", "to:gone");
	/* kept: same system, same prefix; twin: same name, another system. */
	ck_assert_int_eq(save_fx(h, c.sys, "kept", "k1", 0, 0), GW_OK);
	ck_assert_int_eq(save_fx(h, c.sys, "kept", "k2", 1, 1), GW_OK);
	ck_assert_int_eq(gw_store_instance_put(h, &kept, "Template"), GW_OK);
	put_sched_sys(h, "cafe0001.b1", c.sys, "to:kept");
	put_sched(h, "cafe0001.b2", "to:kept");
	ck_assert_int_eq(save_fx(h, other, "gone", "twin", 0, 0), GW_OK);
	ck_assert_int_eq(gw_store_instance_put(h, &twin, "Template"), GW_OK);
	long long r[5];
	rows_of(&c, c.sys, "gone", r);
	ck_assert_int_eq(r[0], 1);
	ck_assert_int_eq(r[1], 4);
	ck_assert_int_eq(r[2], 1);
	ck_assert_int_eq(r[3], 1);

	gw_forget_counts fc = {0};
	ck_assert_int_eq(gw_store_forget(h, &gone, "cafe0001.", to_actor, "gone", &fc), GW_OK);
	/* The epoch was bumped: the activation that predates the forget is
	 * fenced, it cannot write the actor back. */
	ck_assert_int_eq(save(h, c.sys, "gone", "resurrected", 11, 0, ep), GW_EFENCED);
	uint64_t ep2 = 0;
	ck_assert_int_eq(gw_store_acquire(h, &gone, &ep2), GW_OK);
	ck_assert_uint_eq(ep2, ep + 2);
	ck_assert_uint_eq(fc.state, 1);
	ck_assert_uint_eq(fc.history, 4);
	ck_assert_uint_eq(fc.instance, 1);
	ck_assert_uint_eq(fc.schedules, 3);
	ck_assert_uint_eq(fc.outbox, 1);
	rows_of(&c, c.sys, "gone", r);
	ck_assert_int_eq(r[0], 0);
	ck_assert_int_eq(r[1], 0);
	ck_assert_int_eq(r[2], 0);
	ck_assert_int_eq(r[3], 1); /* the epoch stays: fencing never goes back */
	gw_loaded l;
	ck_assert_int_eq(load(h, c.sys, "gone", &l), GW_ENOTFOUND);
	size_t nrev = 9;
	uint64_t revs[8];
	ck_assert_int_eq(gw_store_list_revisions(h, &gone, revs, 8, &nrev), GW_OK);
	ck_assert_uint_eq(nrev, 0);
	char *parent = NULL;
	ck_assert_int_eq(gw_store_instance_get(h, &gone, &parent), GW_ENOTFOUND);
	gw_actor_key page[4];
	size_t n = 0;
	ck_assert_int_eq(gw_store_effects_list(h, NULL, 4, page, &n), GW_OK);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(strcmp(page[i].name, "gone") != 0 || strcmp(page[i].system, c.sys),
		              "the forgotten actor is still listed with effects");
	gw_keys_fini(page, n);

	/* Everything else is untouched. */
	rows_of(&c, c.sys, "kept", r);
	ck_assert_int_eq(r[0], 1);
	ck_assert_int_eq(r[1], 2);
	ck_assert_int_eq(r[2], 1);
	expect_str(h, c.sys, "kept", "k2", 2);
	expect_str(h, other, "gone", "twin", 1);
	ck_assert_int_eq(gw_store_instance_get(h, &twin, &parent), GW_OK);
	free(parent);
	uint64_t pending = 0;
	ck_assert_int_eq(gw_store_schedule_count(h, &pending), GW_OK);
	ck_assert_uint_eq(pending, 3);
	gw_sched *due = NULL;
	ck_assert_int_eq(gw_store_schedule_claim(h, 5000, "gw-test", 60000, 10, &due, &n), GW_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(due[0].id, "cafe0001.b1");
	ck_assert_str_eq(due[0].system, c.sys); /* sealed under its system's key */
	ck_assert_str_eq(due[1].id, "cafe0001.b2");
	ck_assert_ptr_null(due[1].system); /* sealed under the keyring key */
	ck_assert_str_eq(due[2].id, "cafe0002.a1");
	gw_sched_free(due, n);

	/* Forgetting again finds nothing: OK with zero counts. */
	ck_assert_int_eq(gw_store_forget(h, &gone, "cafe0001.", to_actor, "gone", &fc), GW_OK);
	ck_assert_uint_eq(fc.state + fc.history + fc.instance + fc.schedules + fc.outbox, 0);
	/* And the name starts again from nothing: a new row is revision 1. */
	uint64_t ep3 = 0;
	ck_assert_int_eq(gw_store_acquire(h, &gone, &ep3), GW_OK);
	ck_assert_uint_eq(ep3, ep2 + 2); /* the second forget bumped it too */
	ck_assert_int_eq(save(h, c.sys, "gone", "anew", 4, 0, ep3), GW_OK);
	expect_str(h, c.sys, "gone", "anew", 1);
	gw_store_close(h);
	ctx_close(&c);
}
END_TEST

START_TEST(bad_forget_arguments_are_refused)
{
	ctx c;
	ctx_open(&c, _i);
	gw_actor_key k = {c.sys, "a"}, empty = {c.sys, ""};
	ck_assert_int_eq(gw_store_forget(NULL, &k, NULL, NULL, NULL, NULL), GW_EINVAL);
	ck_assert_int_eq(gw_store_forget(c.s, NULL, NULL, NULL, NULL, NULL), GW_EINVAL);
	ck_assert_int_eq(gw_store_forget(c.s, &empty, NULL, NULL, NULL, NULL), GW_EINVAL);
	ck_assert_int_eq(gw_store_forget(c.s, &k, "no spaces'", to_actor, "a", NULL), GW_EINVAL);
	/* No prefix: schedules are left alone, the rest is erased. */
	ck_assert_int_eq(save_fx(c.s, c.sys, "a", "x", 0, 0), GW_OK);
	put_sched(c.s, "beef0001.a", "to:a");
	gw_forget_counts fc;
	ck_assert_int_eq(gw_store_forget(c.s, &k, NULL, NULL, NULL, &fc), GW_OK);
	ck_assert_uint_eq(fc.state, 1);
	ck_assert_uint_eq(fc.schedules, 0);
	uint64_t pending = 0;
	ck_assert_int_eq(gw_store_schedule_count(c.s, &pending), GW_OK);
	ck_assert_uint_eq(pending, 1);
	ctx_close(&c);
}
END_TEST

/* Scheduled invocations sealed per system: claimed with their system, the
 * plaintext nowhere in the table, and a row's data put on another id (or a
 * row of another system) is set aside, never returned. */
START_TEST(scheduled_invocations_are_sealed_under_their_systems_key)
{
	ctx c;
	ctx_open(&c, _i);
	char other[80];
	snprintf(other, sizeof other, "%s.o", c.sys);
	put_sched_sys(c.s, "beef0001.a", c.sys, "to:a SPAWN-PLAINTEXT-SCHED-MARK");
	put_sched_sys(c.s, "beef0002.b", other, "to:b");
	if (c.t->raw_sched_contains) {
		long long hits = -1;
		ck_assert(c.t->raw_sched_contains(&c, "SPAWN-PLAINTEXT-SCHED-MARK", &hits));
		ck_assert_int_eq(hits, 0);
	}
	gw_sched *due = NULL;
	size_t n = 0;
	ck_assert_int_eq(gw_store_schedule_claim(c.s, 5000, "gw-test", 60000, 10, &due, &n), GW_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(due[0].id, "beef0001.a");
	ck_assert_str_eq(due[0].system, c.sys);
	ck_assert_uint_eq(due[0].len, strlen("to:a SPAWN-PLAINTEXT-SCHED-MARK"));
	ck_assert_str_eq(due[1].system, other);
	gw_sched_free(due, n);
	ck_assert_int_eq(gw_store_schedule_put_sys(c.s, "beef0003.c", "", 1000, NULL, 0),
	                 GW_EINVAL);
	ctx_close(&c);
}
END_TEST

void conf_add_atrest(Suite *s, int ntargets)
{
	CONF_ADD(s, an_envelope_2_row_loads_and_key_rotation_rewrites_it_as_envelope_3, 60,
	         ntargets);
	CONF_ADD(s, a_row_swapped_onto_another_system_does_not_open, 30, ntargets);
	CONF_ADD(s, forget_erases_every_row_of_the_actor_and_nothing_else, 60, ntargets);
	CONF_ADD(s, bad_forget_arguments_are_refused, 30, ntargets);
	CONF_ADD(s, scheduled_invocations_are_sealed_under_their_systems_key, 30, ntargets);
}
