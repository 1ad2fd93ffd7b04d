/* store_effects.c - the conformance suite of schema version 4: the effects
 * flag of an actor's latest row (gw_state.effects) and its listing
 * (gw_store_effects_list), over every target (see store_conformance.c).
 */
#include "conformance.h"
#include "store.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bytes 64..95: a second key id for the rotation test */
#define KEY_B "t2:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="

/* save_fx saves one state of (sys, name) with the effects flag fx and
 * returns its row result. */
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

/* listed writes every flagged key, paging max at a time from after, as
 * "system/name" lines into buf (systems other than the test's own are
 * left out, for a shared server), and returns buf. */
static const char *listed(gw_store *s, const char *sys, const gw_actor_key *after, size_t max,
                          char *buf, size_t cap)
{
	gw_actor_key page[8], cur = {"", ""};
	char csys[128] = "", cname[128] = "";
	ck_assert_uint_le(max, 8);
	buf[0] = '\0';
	if (after)
		cur = *after;
	for (int pages = 0;; pages++) {
		size_t n = 99;
		ck_assert_int_lt(pages, 1000);
		gw_err e =
		    gw_store_effects_list(s, pages == 0 && !after ? NULL : &cur, max, page, &n);
		ck_assert_msg(e == GW_OK, "effects list: %s", gw_err_name(e));
		ck_assert_uint_le(n, max);
		for (size_t i = 0; i < n; i++) {
			size_t used = strlen(buf);
			if (strcmp(page[i].system, sys) == 0)
				snprintf(buf + used, cap - used, "%s ", page[i].name);
		}
		if (n > 0) {
			snprintf(csys, sizeof csys, "%s", page[n - 1].system);
			snprintf(cname, sizeof cname, "%s", page[n - 1].name);
			cur = (gw_actor_key){csys, cname};
		}
		gw_keys_fini(page, n);
		if (n > 0)
			ck_assert_ptr_null(page[0].system); /* fini cleared it */
		if (n < max)
			break;
	}
	return buf;
}

START_TEST(the_effects_flag_is_set_by_a_save_cleared_by_the_next_and_listed_in_key_order)
{
	ctx c;
	ctx_open(&c, _i);
	char buf[1024];
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 4, buf, sizeof buf), "");
	/* Put out of key order; "b" and "B" differ (byte order: "B" < "a"). */
	const char *flagged[] = {"m", "b", "zz", "a", "B", "a2", "k"};
	for (int i = 0; i < 7; i++)
		ck_assert_int_eq(save_fx(c.s, c.sys, flagged[i], "turn 1", 0, 1), GW_OK);
	ck_assert_int_eq(save_fx(c.s, c.sys, "plain", "no effects", 0, 0), GW_OK);
	ck_assert_int_eq(save_fx(c.s, c.sys, "other-value", "any non-zero", 0, 7), GW_OK);
	/* Another system sorts after ours ("conf-..." < "zzz-..."). */
	char other[80];
	snprintf(other, sizeof other, "zzz-%s", c.sys);
	ck_assert_int_eq(save_fx(c.s, other, "a", "elsewhere", 0, 1), GW_OK);
	const char *want = "B a a2 b k m other-value zz ";
	/* Every page size gives the same walk, page boundaries and all. */
	for (size_t max = 1; max <= 8; max++)
		ck_assert_str_eq(listed(c.s, c.sys, NULL, max, buf, sizeof buf), want);
	ck_assert_str_eq(listed(c.s, other, NULL, 3, buf, sizeof buf), "a ");
	/* Strictly after: a key itself is not listed again. */
	gw_actor_key from = {c.sys, "a2"};
	ck_assert_str_eq(listed(c.s, c.sys, &from, 2, buf, sizeof buf), "b k m other-value zz ");
	gw_actor_key between = {c.sys, "c"};
	ck_assert_str_eq(listed(c.s, c.sys, &between, 2, buf, sizeof buf), "k m other-value zz ");
	/* A later save without effects clears the flag; one with sets it. */
	ck_assert_int_eq(save_fx(c.s, c.sys, "m", "turn 2", 1, 0), GW_OK);
	ck_assert_int_eq(save_fx(c.s, c.sys, "a", "turn 2", 1, 0), GW_OK);
	ck_assert_int_eq(save_fx(c.s, c.sys, "plain", "now with", 1, 1), GW_OK);
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 3, buf, sizeof buf),
	                 "B a2 b k other-value plain zz ");
	/* A save that is not written (conflict) leaves the flag as it was. */
	ck_assert_int_eq(save_fx(c.s, c.sys, "m", "stale", 1, 1), GW_ECONFLICT);
	ck_assert_int_eq(save_fx(c.s, c.sys, "b", "stale", 5, 0), GW_ECONFLICT);
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 3, buf, sizeof buf),
	                 "B a2 b k other-value plain zz ");
	/* The state itself is what the save wrote. */
	expect_state(c.s, c.sys, "m", "turn 2", 6, 2);
	expect_state(c.s, c.sys, "plain", "now with", 8, 2);
	/* It is stored: a reopened store lists the same. */
	ctx_close(&c);
	c.s = must_open(&c, TEST_KEY);
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 8, buf, sizeof buf),
	                 "B a2 b k other-value plain zz ");
	ctx_close(&c);
}
END_TEST

START_TEST(a_batch_saves_each_rows_own_flag)
{
	ctx c;
	ctx_open(&c, _i);
	gw_state st[4];
	gw_err res[4];
	const char *names[] = {"w", "x", "y", "z"};
	for (int i = 0; i < 4; i++)
		st[i] = (gw_state){.key = {c.sys, names[i]},
		                   .type_url = TYPE_URL,
		                   .data = (const uint8_t *)"s",
		                   .len = 1,
		                   .expected = i == 2 ? 9 : 0, /* y conflicts */
		                   .effects = i % 2 == 0};
	ck_assert_int_eq(gw_store_save_batch(c.s, st, 4, res), GW_OK);
	ck_assert_int_eq(res[0], GW_OK);
	ck_assert_int_eq(res[2], GW_ECONFLICT);
	char buf[256];
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 8, buf, sizeof buf), "w ");
	ctx_close(&c);
}
END_TEST

START_TEST(a_removed_actor_is_not_listed)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save_fx(c.s, c.sys, "gone", "outbox", 0, 1), GW_OK);
	ck_assert_int_eq(save_fx(c.s, c.sys, "kept", "outbox", 0, 1), GW_OK);
	char buf[256];
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 8, buf, sizeof buf), "gone kept ");
	gw_actor_key k = {c.sys, "gone"};
	ck_assert_int_eq(gw_store_remove(c.s, &k), GW_OK);
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 8, buf, sizeof buf), "kept ");
	/* A new row of the removed actor starts unflagged unless it says so. */
	ck_assert_int_eq(save_fx(c.s, c.sys, "gone", "fresh", 0, 0), GW_OK);
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 8, buf, sizeof buf), "kept ");
	ctx_close(&c);
}
END_TEST

START_TEST(the_effects_flag_survives_a_key_rotation)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_count_key) {
		ctx_close(&c);
		return;
	}
	ck_assert_int_eq(save_fx(c.s, c.sys, "fx-1", "outbox", 0, 1), GW_OK);
	ck_assert_int_eq(save_fx(c.s, c.sys, "fx-0", "quiet", 0, 0), GW_OK);
	ck_assert_int_eq(save_fx(c.s, c.sys, "fx-2", "outbox", 0, 1), GW_OK);
	ctx_close(&c);
	gw_store *r = NULL;
	ck_assert_int_eq(try_open(&c, c.url, KEY_B "," TEST_KEY, &r), GW_OK);
	gw_rotation p = {0};
	for (int steps = 0; !p.done; steps++) {
		ck_assert_int_lt(steps, 100);
		ck_assert_int_eq(gw_store_rotate_step(r, 2, &p), GW_OK);
	}
	ck_assert_uint_eq(p.rewritten, 3);
	long long old = -1;
	ck_assert(c.t->raw_count_key(&c, "t1", &old));
	ck_assert_int_eq(old, 0); /* every row was rewritten... */
	char buf[256];
	/* ...and the flags kept. */
	ck_assert_str_eq(listed(r, c.sys, NULL, 8, buf, sizeof buf), "fx-1 fx-2 ");
	expect_state(r, c.sys, "fx-1", "outbox", 6, 1);
	gw_store_close(r);
}
END_TEST

START_TEST(bad_effects_list_arguments_are_refused)
{
	ctx c;
	ctx_open(&c, _i);
	gw_actor_key out[2] = {{"untouched", "untouched"}, {NULL, NULL}};
	gw_actor_key half = {c.sys, NULL};
	size_t n = 42;
	ck_assert_int_eq(gw_store_effects_list(c.s, NULL, 0, out, &n), GW_EINVAL);
	ck_assert_int_eq(gw_store_effects_list(c.s, NULL, 2, NULL, &n), GW_EINVAL);
	ck_assert_int_eq(gw_store_effects_list(c.s, NULL, 2, out, NULL), GW_EINVAL);
	ck_assert_int_eq(gw_store_effects_list(c.s, &half, 2, out, &n), GW_EINVAL);
	ck_assert_int_eq(gw_store_effects_list(NULL, NULL, 2, out, &n), GW_EINVAL);
	ck_assert_uint_eq(n, 42);
	ck_assert_str_eq(out[0].system, "untouched");
	gw_keys_fini(NULL, 3);
	/* An empty store lists nothing, and says so. */
	ck_assert_int_eq(gw_store_effects_list(c.s, NULL, 2, out, &n), GW_OK);
	ck_assert_uint_eq(n, 0);
	ctx_close(&c);
}
END_TEST

enum { FX_ROWS = 3000 };

START_TEST(the_effects_listing_reads_the_flagged_rows_through_their_index)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_effects_indexed) {
		ctx_close(&c);
		return;
	}
	/* Many rows, few flagged: the plan must not walk the table. */
	enum { BATCH = 500 };
	static gw_state st[BATCH];
	static gw_err res[BATCH];
	static char names[BATCH][16];
	for (int b = 0; b < FX_ROWS / BATCH; b++) {
		for (int i = 0; i < BATCH; i++) {
			int k = b * BATCH + i;
			snprintf(names[i], sizeof names[i], "r%05d", k);
			st[i] = (gw_state){.key = {c.sys, names[i]},
			                   .type_url = TYPE_URL,
			                   .data = (const uint8_t *)"s",
			                   .len = 1,
			                   .effects = k % 1000 == 7};
		}
		ck_assert_int_eq(gw_store_save_batch(c.s, st, BATCH, res), GW_OK);
	}
	char buf[256];
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 2, buf, sizeof buf), "r00007 r01007 r02007 ");
	char why[2048];
	ck_assert_msg(c.t->raw_effects_indexed(&c, why, sizeof why), "[%s] plan: %s", c.t->name,
	              why);
	ctx_close(&c);
}
END_TEST

/* ---- schema version 3 ------------------------------------------------------------------ */

START_TEST(a_version_3_store_is_migrated_to_version_4_and_keeps_its_rows)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_downgrade_v3) {
		ctx_close(&c);
		return;
	}
	ck_assert_int_eq(save_fx(c.s, c.sys, "old-1", "kept", 0, 0), GW_OK);
	ck_assert_int_eq(save_fx(c.s, c.sys, "old-2", "kept too", 0, 0), GW_OK);
	ck_assert_int_eq(save_fx(c.s, c.sys, "old-2", "kept too, v2", 1, 0), GW_OK);
	ck_assert_int_eq(gw_store_schedule_put(c.s, "sched-1", 1, (const uint8_t *)"x", 1), GW_OK);
	ctx_close(&c);
	ck_assert(c.t->raw_downgrade_v3(&c)); /* no effects column, version 3 */
	c.s = must_open(&c, TEST_KEY);        /* migrates to version 4 */
	expect_state(c.s, c.sys, "old-1", "kept", 4, 1);
	expect_state(c.s, c.sys, "old-2", "kept too, v2", 12, 2);
	uint64_t pending = 0;
	ck_assert_int_eq(gw_store_schedule_count(c.s, &pending), GW_OK);
	ck_assert_uint_eq(pending, 1);
	char buf[256];
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 8, buf, sizeof buf), ""); /* existing rows: 0 */
	ck_assert_int_eq(save_fx(c.s, c.sys, "old-2", "with effects", 2, 1), GW_OK);
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 8, buf, sizeof buf), "old-2 ");
	ctx_close(&c);
	/* A current store migrates nothing and keeps the flag. */
	c.s = must_open(&c, TEST_KEY);
	ck_assert_str_eq(listed(c.s, c.sys, NULL, 8, buf, sizeof buf), "old-2 ");
	ctx_close(&c);
	/* Where DDL commits statement by statement, a migration cut short after
	 * its DDL (the version not yet recorded) runs again over it. */
	if (c.t->ddl_autocommits && c.t->raw_set_version) {
		ck_assert(c.t->raw_set_version(&c, "3"));
		c.s = must_open(&c, TEST_KEY);
		ck_assert_str_eq(listed(c.s, c.sys, NULL, 8, buf, sizeof buf), "old-2 ");
		expect_state(c.s, c.sys, "old-1", "kept", 4, 1);
		ctx_close(&c);
	}
}
END_TEST

void conf_add_effects(Suite *s, int ntargets)
{
	CONF_ADD(s, the_effects_flag_is_set_by_a_save_cleared_by_the_next_and_listed_in_key_order,
	         60, ntargets);
	CONF_ADD(s, a_batch_saves_each_rows_own_flag, 30, ntargets);
	CONF_ADD(s, a_removed_actor_is_not_listed, 30, ntargets);
	CONF_ADD(s, the_effects_flag_survives_a_key_rotation, 60, ntargets);
	CONF_ADD(s, bad_effects_list_arguments_are_refused, 30, ntargets);
	CONF_ADD(s, the_effects_listing_reads_the_flagged_rows_through_their_index, 120, ntargets);
	CONF_ADD(s, a_version_3_store_is_migrated_to_version_4_and_keeps_its_rows, 60, ntargets);
}
