/* conformance.h - the target table of the store conformance suite, the
 * helpers its files share (store_conformance.c), and the raw hooks
 * (conformance_raw.c) that reach each backend behind its driver's back:
 * through sqlite3, libpq or mariadb-connector-c directly.
 */
#ifndef GW_TEST_CONFORMANCE_H
#define GW_TEST_CONFORMANCE_H

#include "store.h"

#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* bytes 0..31 and 32..63 */
#define TEST_KEY  "t1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define OTHER_KEY "t1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define TYPE_URL  "type.googleapis.com/example.Counter"

typedef struct ctx ctx;

typedef struct target {
	const char *name;
	char url[PATH_MAX + 32]; /* networked: from the environment */
	bool file_backed;        /* URL built per test in a fresh temp dir */
	const char *keyless_url; /* a URL of this driver with no file behind it */
	/* Raw access behind the driver's back, for the tamper tests; NULL
	 * until a target provides it (then those tests pass trivially).
	 * raw_copy: put the sealed columns of (fsys, fname) on (tsys, tname),
	 *           creating that row if needed.
	 * raw_truncate: cut (sys, name)'s ciphertext to len bytes.
	 * raw_fail_on: make every later write of actor `name` fail inside the
	 *           backend (an injected storage error). */
	bool (*raw_copy)(const ctx *c, const char *fsys, const char *fname, const char *tsys,
	                 const char *tname);
	bool (*raw_truncate)(const ctx *c, const char *sys, const char *name, int len);
	bool (*raw_fail_on)(const ctx *c, const char *name);
	/* raw_replay: put the sealed columns (key_id, nonce, data) of (sys,
	 *           name)'s history row at revision rev on its latest row, which
	 *           keeps its own revision: an old state replayed as the current
	 *           one. Appended for envelope 2 (statestore.md). */
	bool (*raw_replay)(const ctx *c, const char *sys, const char *name, long long rev);
	/* raw_set_sealed: replace the nonce and data of (sys, name)'s latest
	 *           row with the given bytes (hex), keeping its key id and
	 *           revision: a row as an earlier gateway sealed it. */
	bool (*raw_set_sealed)(const ctx *c, const char *sys, const char *name,
	                       const char *nonce_hex, const char *data_hex);
	/* raw_set_version: overwrite spawn_meta.schema_version with v.
	 * raw_history: count, min and max revision of (sys, name) in
	 *           spawn_actor_history (NULL: the driver keeps no history). */
	bool (*raw_set_version)(const ctx *c, const char *v);
	bool (*raw_history)(const ctx *c, const char *sys, const char *name, long long out[3]);
	/* raw_count_key: rows (latest and history) sealed under key_id.
	 * raw_downgrade_v1: make the store look as schema version 1 left it:
	 *           drop what version 2 added, record version 1, and give every
	 *           latest row epoch 5 (as version 1 fencing would have). */
	bool (*raw_count_key)(const ctx *c, const char *key_id, long long *n);
	bool (*raw_downgrade_v1)(const ctx *c);
	/* Scheduled invocations (store_schedule.c):
	 * raw_sched_fill: insert n rows behind the driver, ids <prefix>%07d,
	 *           due_ms first_due + i, unclaimed, under key id "t1" with a
	 *           zero nonce and random bytes as data (they never open).
	 * raw_sched_contains: *n = rows whose data holds needle (plain bytes).
	 * raw_sched_indexed: whether the backend plans the driver's claim
	 *           scans and next-due lookups (the same query shapes as the
	 *           driver's statements: keep them in step) on the schedule
	 *           indexes, never as a table scan; why gets the plan when not.
	 * raw_downgrade_v2: make the store look as schema version 2 left it:
	 *           drop spawn_instance and spawn_schedule, record version 2. */
	bool (*raw_sched_fill)(const ctx *c, const char *prefix, long n, long long first_due);
	bool (*raw_sched_contains)(const ctx *c, const char *needle, long long *n);
	bool (*raw_sched_indexed)(const ctx *c, char *why, size_t cap);
	bool (*raw_downgrade_v2)(const ctx *c);
	/* Schema version 4 (store_effects.c):
	 * raw_downgrade_v3: make the store look as schema version 3 left it:
	 *           drop the effects column of spawn_actor_state and its
	 *           index, record version 3 (the downgrades to 1 and 2 drop
	 *           them too).
	 * raw_effects_indexed: whether the backend plans the driver's effects
	 *           listing (the same query shape: keep them in step) as a
	 *           search of spawn_actor_state_effects, never a table scan;
	 *           why gets the plan when not.
	 * ddl_autocommits: the backend commits each DDL statement on its own
	 *           (MariaDB), so a migration cut short leaves part of a step
	 *           behind, and the step must run again over it. */
	bool (*raw_downgrade_v3)(const ctx *c);
	bool (*raw_effects_indexed)(const ctx *c, char *why, size_t cap);
	bool ddl_autocommits;
	/* ns_new: write into url a URL of a fresh, empty namespace on the
	 * target's server (conf_ns_teardown drops it after the test).
	 * NULL: t->url is shared. ns_drop: drop namespace name. */
	bool (*ns_new)(const struct target *t, char *url, size_t cap);
	void (*ns_drop)(const struct target *t, const char *name);
	/* raw_actor_rows: rows of (sys, name): out[0] spawn_actor_state,
	 *           out[1] spawn_actor_history, out[2] spawn_instance,
	 *           out[3] spawn_actor_epoch, out[4] rows of the first two
	 *           whose data is envelope 3 (begins with A7 'G' 'W' 03).
	 *           Appended for envelope 3 and Forget. */
	bool (*raw_actor_rows)(const ctx *c, const char *sys, const char *name, long long out[5]);
	/* Shell commands that stop / restart the server; NULL: not ours. */
	const char *stop_cmd, *start_cmd;
} target;

struct ctx {
	const target *t;
	char dir[256]; /* under root: short */
	char db[PATH_MAX];
	char url[PATH_MAX + 32];
	char sys[64];
	char err[512];
	gw_store *s;
};

/* The targets of this run (store_conformance.c builds the table). */
extern target targets[4];

/* Shared helpers (store_conformance.c). ctx_open gives c a fresh, empty
 * store of target i opened with TEST_KEY (c->s); ctx_close closes c->s.
 * try_open reports its reason in c->err; must_open asserts success.
 * fresh_url: the URL of another empty store of c's target. save saves one
 * state (data of len bytes) and returns its row result (asserting the
 * batch committed); load is gw_store_load; expect_state asserts that the
 * actor loads as (data, len) at revision rev. */
void ctx_open(ctx *c, int i);
void ctx_close(ctx *c);
gw_err try_open(ctx *c, const char *url, const char *keys, gw_store **out);
gw_store *must_open(ctx *c, const char *keys);
void fresh_url(const ctx *c, char *url, size_t cap);
gw_err save(gw_store *s, const char *sys, const char *name, const void *data, size_t len,
            uint64_t expected, uint64_t epoch);
gw_err load(gw_store *s, const char *sys, const char *name, gw_loaded *out);
void expect_state(gw_store *s, const char *sys, const char *name, const void *data, size_t len,
                  uint64_t rev);

/* CONF_ADD adds fn as a loop test over the n targets, with the namespace
 * teardown. */
#define CONF_ADD(suite, fn, timeout, n)                                                            \
	do {                                                                                       \
		TCase *tc_ = tcase_create(#fn);                                                    \
		tcase_set_timeout(tc_, timeout);                                                   \
		tcase_add_checked_fixture(tc_, NULL, conf_ns_teardown);                            \
		tcase_add_loop_test(tc_, fn, 0, n);                                                \
		suite_add_tcase(suite, tc_);                                                       \
	} while (0)

/* conf_add_fencing adds the suite of store_fencing.c: activation epochs,
 * revisions, key rotation, the fresh-store key check race. */
void conf_add_fencing(Suite *s, int ntargets);

/* conf_add_schedule adds the suite of store_schedule.c: UNNAMED
 * instances and scheduled invocations (schema version 3). */
void conf_add_schedule(Suite *s, int ntargets);

/* conf_add_effects adds the suite of store_effects.c: the effects flag of
 * the latest row and its listing (schema version 4). */
void conf_add_effects(Suite *s, int ntargets);

/* conf_add_activate adds the suite of store_activate.c: batched
 * activation (gw_store_activate_batch, ops version 5). */
void conf_add_activate(Suite *s, int ntargets);

/* conf_add_atrest adds the suite of store_atrest.c: envelope 3 (per-system
 * data keys) and gw_store_forget (ops version 7). */
void conf_add_atrest(Suite *s, int ntargets);

/* conf_add_members adds the suite of store_members.c: the members table of
 * a cluster (ops version 8; sqlite refuses). */
void conf_add_members(Suite *s, int ntargets);
/* conf_add_lease adds the suite of store_lease.c: the activation lease
 * (ops version 9). */
void conf_add_lease(Suite *s, int ntargets);

/* conf_raw_<backend> fills t's raw hooks and namespace functions when the
 * backend's client library is built into the suite (GW_TEST_<BACKEND>);
 * otherwise it leaves them NULL. */
void conf_raw_sqlite(target *t);
void conf_raw_postgres(target *t);
void conf_raw_mariadb(target *t);

/* conf_ns_teardown drops every namespace the current test made (a checked
 * fixture: it runs in the test's process). */
void conf_ns_teardown(void);

#endif
