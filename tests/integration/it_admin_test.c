/* it_admin_test.c - the gateway's Admin service (spawn.gateway.v1.Admin)
 * over a raw gRPC core client: GetState of active and inactive actors
 * without invoking any host, ListRevisions under --store-history,
 * Restore (a new revision; the next call continues from it), and the
 * errors: a revision not kept is NOT_FOUND, malformed requests are
 * INVALID_ARGUMENT.
 *
 * IT_STORES selects the stores (default: sqlite). Under the ctest fixture
 * spawn_db (through tests/store/with-db.sh) the same test runs on
 * PostgreSQL and MariaDB, each in a fresh namespace.
 *
 * Whether a host was invoked is read from it-host's --trace lines: every
 * invocation prints "invoked ACTOR ACTION" before it runs, and the calls
 * here are sequential, so a traced Get right after an admin call must be
 * the next line.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <spawn/spawn.h>

#include "adm.h"
#include "harness.h"
#include "itdb.h"
#include "itl.h"

static it_world w;
static itdb db;
static spawn_client *client;
static adm_client *adm;

static void teardown(void)
{
	spawn_client_destroy(client);
	client = NULL;
	adm_destroy(adm);
	adm = NULL;
	it_world_fini(&w);
	itdb_fini(&db);
}

/* expect_invoked asserts that the host's next trace line is "invoked
 * ACTOR ACTION" for what (e.g. "counter Get"). */
static void expect_invoked(it_proc *host, const char *what)
{
	char line[256], want[128];
	snprintf(want, sizeof want, "invoked %s", what);
	ck_assert_msg(it_proc_wait_line(host, "invoked ", it_ms(10000), line, sizeof line),
	              "%s: no trace line (wanted '%s')", host->name, want);
	ck_assert_msg(!strcmp(line, want), "%s: next invocation is '%s', wanted '%s'", host->name,
	              line, want);
}

static void expect_add(const char *system, int64_t value, int64_t seq, int64_t want)
{
	It__Total *t = NULL;
	char msg[256];
	int rc = itl_add(client, system, "counter", NULL, value, seq, &t, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "Add(%" PRId64 ") on %s/counter: %s: %s", value, system,
	              spawn_status_name(rc), msg);
	ck_assert_int_eq(t->total, want);
	protobuf_c_message_free_unpacked(&t->base, NULL);
}

static void expect_get(const char *system, int64_t want)
{
	It__Total *t = NULL;
	char msg[256];
	int rc = itl_get(client, system, "counter", NULL, &t, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "Get on %s/counter: %s: %s", system, spawn_status_name(rc),
	              msg);
	ck_assert_int_eq(t->total, want);
	protobuf_c_message_free_unpacked(&t->base, NULL);
}

/* A view as the test expects it; seqs NULL = not checked. */
typedef struct want_view {
	uint64_t revision;
	int64_t total;
	bool active, dirty;
	const int64_t *seqs;
	size_t n_seqs;
} want_view;

static void check_view(const Spawn__Gateway__V1__ActorStateView *v, const char *system,
                       const char *actor, const want_view *want, const char *when)
{
	ck_assert_msg(v->id && v->id->name && !strcmp(v->id->name, actor), "%s: id.name", when);
	ck_assert_msg(v->id->system && !strcmp(v->id->system, system), "%s: id.system '%s'", when,
	              v->id->system ? v->id->system : "(null)");
	ck_assert_msg(v->revision == want->revision, "%s: revision %" PRIu64 ", wanted %" PRIu64,
	              when, v->revision, want->revision);
	ck_assert_msg(v->active == want->active, "%s: active = %d", when, v->active);
	ck_assert_msg(v->dirty == want->dirty, "%s: dirty = %d", when, v->dirty);
	It__Counter *st = adm_counter(v);
	ck_assert_msg(st != NULL, "%s: the state is not an it.Counter (type '%s')", when,
	              v->state && v->state->type_url ? v->state->type_url : "(none)");
	ck_assert_msg(st->total == want->total, "%s: total %" PRId64 ", wanted %" PRId64, when,
	              st->total, want->total);
	if (want->seqs) {
		ck_assert_msg(st->n_seqs == want->n_seqs, "%s: %zu seqs, wanted %zu", when,
		              st->n_seqs, want->n_seqs);
		for (size_t i = 0; i < st->n_seqs; i++)
			ck_assert_msg(st->seqs[i] == want->seqs[i], "%s: seq[%zu] = %" PRId64, when,
			              i, st->seqs[i]);
	}
	protobuf_c_message_free_unpacked(&st->base, NULL);
}

static void expect_state(const char *system, const char *actor, uint64_t revision,
                         const want_view *want, const char *when)
{
	Spawn__Gateway__V1__ActorStateView *v = NULL;
	char msg[256];
	int rc = adm_get_state(adm, system, actor, revision, &v, msg, sizeof msg);
	ck_assert_msg(rc == GRPC_STATUS_OK, "%s: GetState %s/%s @%" PRIu64 ": %s: %s", when, system,
	              actor, revision, adm_status_name(rc), msg);
	check_view(v, system, actor, want, when);
	protobuf_c_message_free_unpacked(&v->base, NULL);
}

static void expect_revisions(const char *system, const char *actor, const uint64_t *want, size_t n,
                             const char *when)
{
	Spawn__Gateway__V1__RevisionList *l = NULL;
	char msg[256];
	int rc = adm_list_revisions(adm, system, actor, &l, msg, sizeof msg);
	ck_assert_msg(rc == GRPC_STATUS_OK, "%s: ListRevisions %s/%s: %s: %s", when, system, actor,
	              adm_status_name(rc), msg);
	char got[256] = "";
	for (size_t i = 0, len = 0; i < l->n_revisions && len < sizeof got; i++)
		len += (size_t)snprintf(got + len, sizeof got - len, " %" PRIu64, l->revisions[i]);
	ck_assert_msg(l->n_revisions == n, "%s: revisions [%s ], wanted %zu of them", when, got, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(l->revisions[i] == want[i],
		              "%s: revisions [%s ], wanted %" PRIu64 " at %zu", when, got, want[i],
		              i);
	protobuf_c_message_free_unpacked(&l->base, NULL);
}

static void expect_status(int rc, int want, const char *msg, const char *what)
{
	ck_assert_msg(rc == want, "%s: %s (%s), wanted %s", what, adm_status_name(rc), msg,
	              adm_status_name(want));
}

/* The sum 1 + 2 + ... + r: the total revision r holds. */
static int64_t tri(int64_t r)
{
	return r * (r + 1) / 2;
}

static const int64_t SEQS[] = {1, 2, 3, 4, 5, 6, 7, 8};

enum { ADDS = 8, HISTORY = 5 };

START_TEST(admin_reads_lists_and_restores_without_the_host)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "admin", k));
	itdb_init(&db, &w, k, "state.db");
	/* Snapshots far away: "snap" stays dirty until SIGTERM. */
	const char *gargs[] = {"--store-history", "5", "--snapshot-interval", "600000", NULL};
	const char *ckpt_args[] = {"--checkpoint", "--trace", NULL};
	const char *snap_args[] = {"--system", "snap", "--trace", NULL};
	it_gw gw;
	itdb_gateway_start(&w, &db, &gw, "gw", gargs, NULL);
	it_proc *hc = it_host_start(&w, "host-ckpt", gw.target, ckpt_args);
	it_proc *hs = it_host_start(&w, "host-snap", gw.target, snap_args);
	ck_assert_int_eq(spawn_client_create(&client, gw.target), SPAWN_OK);
	adm = adm_create(gw.target);
	char msg[256];

	/* Revision r holds total tri(r), seqs 1..r. */
	for (int i = 1; i <= ADDS; i++) {
		expect_add("it", i, i, tri(i));
		expect_invoked(hc, "counter Add");
	}
	expect_add("snap", 5, 0, 5);
	expect_invoked(hs, "counter Add");

	/* Active actors: from memory, no host call. */
	expect_state("it", "counter", 0, &(want_view){ADDS, tri(ADDS), true, false, SEQS, ADDS},
	             "active, checkpointed");
	expect_state("snap", "counter", 0, &(want_view){0, 5, true, true, NULL, 0},
	             "active, never saved");
	expect_get("it", tri(ADDS));
	expect_invoked(hc, "counter Get");
	expect_get("snap", 5);
	expect_invoked(hs, "counter Get");

	/* History: the latest and the HISTORY before it, newest first. */
	expect_revisions("it", "counter", (const uint64_t[]){8, 7, 6, 5, 4, 3}, HISTORY + 1,
	                 "after 8 checkpoints");
	expect_state("it", "counter", 3, &(want_view){3, tri(3), false, false, SEQS, 3},
	             "revision 3 from history");
	Spawn__Gateway__V1__ActorStateView *v = NULL;
	expect_status(adm_get_state(adm, "it", "counter", 2, &v, msg, sizeof msg),
	              GRPC_STATUS_NOT_FOUND, msg, "GetState of a revision not kept");
	expect_status(adm_get_state(adm, "it", "counter", 9, &v, msg, sizeof msg),
	              GRPC_STATUS_NOT_FOUND, msg, "GetState of a revision not written yet");
	expect_status(adm_get_state(adm, "it", "nobody", 0, &v, msg, sizeof msg),
	              GRPC_STATUS_NOT_FOUND, msg, "GetState of an actor without state");

	/* Restore 3: written as revision 9; the next Add continues from it. */
	int rc = adm_restore(adm, "it", "counter", 3, &v, msg, sizeof msg);
	expect_status(rc, GRPC_STATUS_OK, msg, "Restore to revision 3");
	check_view(v, "it", "counter", &(want_view){ADDS + 1, tri(3), true, false, SEQS, 3},
	           "the view Restore returns");
	protobuf_c_message_free_unpacked(&v->base, NULL);
	expect_revisions("it", "counter", (const uint64_t[]){9, 8, 7, 6, 5, 4}, HISTORY + 1,
	                 "after the restore");
	expect_state("it", "counter", 0, &(want_view){9, tri(3), true, false, SEQS, 3},
	             "current after the restore");
	expect_state("it", "counter", 9, &(want_view){9, tri(3), false, false, SEQS, 3},
	             "revision 9 from the store");
	expect_add("it", 100, 100, tri(3) + 100);
	expect_invoked(hc, "counter Add");
	expect_state(
	    "it", "counter", 0,
	    &(want_view){10, tri(3) + 100, true, false, (const int64_t[]){1, 2, 3, 100}, 4},
	    "the add after the restore");

	/* Revisions not kept, and restores that cannot be. */
	expect_status(adm_restore(adm, "it", "counter", 3, &v, msg, sizeof msg),
	              GRPC_STATUS_NOT_FOUND, msg, "Restore of revision 3, no longer kept");
	expect_status(adm_restore(adm, "it", "counter", 1000, &v, msg, sizeof msg),
	              GRPC_STATUS_NOT_FOUND, msg, "Restore of a revision never written");
	expect_status(adm_restore(adm, "snap", "counter", 1, &v, msg, sizeof msg),
	              GRPC_STATUS_NOT_FOUND, msg, "Restore of an actor never saved");
	expect_status(adm_restore(adm, "it", "nobody", 1, &v, msg, sizeof msg),
	              GRPC_STATUS_NOT_FOUND, msg, "Restore of an unknown actor");
	expect_status(adm_restore(adm, "nosystem", "counter", 1, &v, msg, sizeof msg),
	              GRPC_STATUS_NOT_FOUND, msg, "Restore in an unknown system");
	/* A failed restore changed nothing. */
	expect_state(
	    "it", "counter", 0,
	    &(want_view){10, tri(3) + 100, true, false, (const int64_t[]){1, 2, 3, 100}, 4},
	    "after the failed restores");

	/* Malformed requests. */
	expect_status(adm_restore(adm, "it", "counter", 0, &v, msg, sizeof msg),
	              GRPC_STATUS_INVALID_ARGUMENT, msg, "Restore without a revision");
	expect_status(adm_get_state(adm, "", "counter", 0, &v, msg, sizeof msg),
	              GRPC_STATUS_INVALID_ARGUMENT, msg, "GetState without a system");
	expect_status(adm_get_state(adm, "it", "", 0, &v, msg, sizeof msg),
	              GRPC_STATUS_INVALID_ARGUMENT, msg, "GetState without an actor");
	Spawn__Gateway__V1__RevisionList *rl = NULL;
	expect_status(adm_list_revisions(adm, "it", "", &rl, msg, sizeof msg),
	              GRPC_STATUS_INVALID_ARGUMENT, msg, "ListRevisions without an actor");
	expect_status(adm_restore(adm, "", "", 3, &v, msg, sizeof msg),
	              GRPC_STATUS_INVALID_ARGUMENT, msg, "Restore without an actor");
	Spawn__Gateway__V1__GetStateRequest no_ref = SPAWN__GATEWAY__V1__GET_STATE_REQUEST__INIT;
	expect_status(adm_call_msg(adm, ADM_GET_STATE, &no_ref.base, NULL, NULL, it_ms(10000), msg,
	                           sizeof msg),
	              GRPC_STATUS_INVALID_ARGUMENT, msg, "GetState of an empty request");
	static const char *const methods[] = {ADM_GET_STATE, ADM_LIST_REVISIONS, ADM_RESTORE,
	                                      ADM_KEY_ROTATION};
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	for (size_t i = 0; i < 4; i++)
		expect_status(adm_call(adm, methods[i], garbage, sizeof garbage, NULL, NULL,
		                       it_ms(10000), msg, sizeof msg),
		              GRPC_STATUS_INVALID_ARGUMENT, msg, methods[i]);
	/* No rotation asked for. */
	Spawn__Gateway__V1__KeyRotationStatus *ks = NULL;
	expect_status(adm_key_rotation(adm, &ks, msg, sizeof msg), GRPC_STATUS_OK, msg,
	              "KeyRotation");
	ck_assert(!ks->enabled);
	protobuf_c_message_free_unpacked(&ks->base, NULL);
	/* None of it reached a host. */
	expect_get("it", tri(3) + 100);
	expect_invoked(hc, "counter Get");
	expect_get("snap", 5);
	expect_invoked(hs, "counter Get");

	/* A new gateway: both actors inactive, read from the store. */
	adm_destroy(adm);
	adm = NULL;
	spawn_client_destroy(client);
	client = NULL;
	it_gateway_stop(&gw); /* saves snap/counter as its revision 1 */
	it_host_stop(hc);
	it_host_stop(hs);
	it_gw g2;
	itdb_gateway_start(&w, &db, &g2, "gw2", gargs, NULL);
	hc = it_host_start(&w, "host-ckpt2", g2.target, ckpt_args);
	hs = it_host_start(&w, "host-snap2", g2.target, snap_args);
	ck_assert_int_eq(spawn_client_create(&client, g2.target), SPAWN_OK);
	adm = adm_create(g2.target);
	expect_state(
	    "it", "counter", 0,
	    &(want_view){10, tri(3) + 100, false, false, (const int64_t[]){1, 2, 3, 100}, 4},
	    "inactive, checkpointed");
	expect_state("snap", "counter", 0, &(want_view){1, 5, false, false, NULL, 0},
	             "inactive, saved at SIGTERM");
	expect_revisions("it", "counter", (const uint64_t[]){10, 9, 8, 7, 6, 5}, HISTORY + 1,
	                 "on the new gateway");
	expect_get("it", tri(3) + 100);
	expect_invoked(hc, "counter Get");
	expect_state(
	    "it", "counter", 0,
	    &(want_view){10, tri(3) + 100, true, false, (const int64_t[]){1, 2, 3, 100}, 4},
	    "active again after a Get");
	/* Restore of an inactive actor activates it first. */
	rc = adm_restore(adm, "it", "counter", 9, &v, msg, sizeof msg);
	expect_status(rc, GRPC_STATUS_OK, msg, "Restore of revision 9");
	check_view(v, "it", "counter", &(want_view){11, tri(3), true, false, SEQS, 3},
	           "restored to 9 on the new gateway");
	protobuf_c_message_free_unpacked(&v->base, NULL);
	rc = adm_restore(adm, "snap", "counter", 1, &v, msg, sizeof msg);
	expect_status(rc, GRPC_STATUS_OK, msg, "Restore of an inactive actor");
	check_view(v, "snap", "counter", &(want_view){2, 5, true, false, NULL, 0},
	           "an inactive actor restored");
	protobuf_c_message_free_unpacked(&v->base, NULL);
	expect_add("snap", 1, 0, 6);
	expect_invoked(hs, "counter Add");

	adm_destroy(adm);
	adm = NULL;
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(hc);
	it_host_stop(hs);
	it_gateway_stop(&g2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration_admin");
	const itdb_case cases[] = {
	    {"admin", admin_reads_lists_and_restores_without_the_host, 90},
	};
	itdb_add_cases(s, cases, sizeof cases / sizeof cases[0], "sqlite", teardown);
	itdb_launcher_start();
	return it_run(s);
}
