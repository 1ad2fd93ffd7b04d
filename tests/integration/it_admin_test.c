/* it_admin_test.c - the gateway's Admin service (spawn.gateway.v1.Admin)
 * over a raw gRPC core client: GetState of active and inactive actors
 * without invoking any host, ListRevisions under --store-history,
 * Restore (a new revision; the next call continues from it), and the
 * errors: a revision not kept is NOT_FOUND, malformed requests are
 * INVALID_ARGUMENT. Forget: an active actor with a turn in flight, queued
 * calls, a timer, history and scheduled calls, an instance, and an actor
 * with undelivered side effects in its stored outbox, erased (every table
 * queried), the name starting fresh; an unknown actor is OK with zero
 * counts.
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
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <spawn/spawn.h>

#include "adm.h"
#include "harness.h"
#include "itc.h"
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

/* ---- Forget ------------------------------------------------------------------------ */

/* count_rows: rows of table for (system, name) in the store. */
static long long count_rows(const char *table, const char *system, const char *name)
{
	char sql[300];
	snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s WHERE system = '%s' AND name = '%s'",
	         table, system, name);
	return itdb_query_int(&db, sql);
}

static void expect_gone(const char *system, const char *name, const char *when)
{
	static const char *const tables[] = {"spawn_actor_state", "spawn_actor_history",
	                                     "spawn_instance"};
	for (size_t i = 0; i < 3; i++)
		ck_assert_msg(count_rows(tables[i], system, name) == 0, "%s: %s still holds %s/%s",
		              when, tables[i], system, name);
}

/* schedule_add stores Add(1) on system/actor (instance of parent when not
 * NULL) due in an hour; asserts it was accepted. */
static void schedule_add(const char *actor, const char *parent)
{
	It__Add add = IT__ADD__INIT;
	add.value = 1;
	uint8_t buf[32];
	size_t len = it__add__pack(&add, buf);
	char type_url[128];
	spawn_type_url(&it__add__descriptor, type_url, sizeof type_url);
	spawn_request rq = {.system = "it",
	                    .actor = actor,
	                    .parent = parent,
	                    .action = "Add",
	                    .payload = {.type_url = type_url, .data = buf, .len = len},
	                    .scheduled_to_ms = (int64_t)time(NULL) * 1000 + 3600 * 1000};
	spawn_reply r;
	int rc = spawn_client_invoke(client, &rq, &r, it_ms(10000));
	ck_assert_msg(rc == SPAWN_OK, "scheduling Add on %s: %s (%s)", actor, spawn_status_name(rc),
	              r.message ? r.message : "");
	spawn_reply_fini(&r);
}

static void expect_forget(const char *system, const char *actor,
                          const Spawn__Gateway__V1__ForgetResult *want, const char *when)
{
	Spawn__Gateway__V1__ForgetResult *f = NULL;
	char msg[256];
	int rc = adm_forget(adm, system, actor, &f, msg, sizeof msg);
	expect_status(rc, GRPC_STATUS_OK, msg, when);
	ck_assert_msg(
	    f->state_rows == want->state_rows && f->history_revisions == want->history_revisions &&
	        f->instance_records == want->instance_records && f->schedules == want->schedules &&
	        f->outbox == want->outbox && f->was_active == want->was_active,
	    "%s: erased state %" PRIu64 " history %" PRIu64 " instance %" PRIu64
	    " schedules %" PRIu64 " outbox %d active %d; wanted %" PRIu64 " %" PRIu64 " %" PRIu64
	    " %" PRIu64 " %d %d",
	    when, f->state_rows, f->history_revisions, f->instance_records, f->schedules, f->outbox,
	    f->was_active, want->state_rows, want->history_revisions, want->instance_records,
	    want->schedules, want->outbox, want->was_active);
	protobuf_c_message_free_unpacked(&f->base, NULL);
}

/* expect_queued waits until the active actor (it, actor) has `want` calls in
 * its mailbox behind its turn in flight (Admin.GetState `queued`). */
static void expect_queued(const char *actor, uint32_t want)
{
	int64_t end = it_now_ms() + it_ms(10000);
	uint32_t seen = 0;
	for (;;) {
		Spawn__Gateway__V1__ActorStateView *v = NULL;
		char msg[256];
		int rc = adm_get_state(adm, "it", actor, 0, &v, msg, sizeof msg);
		expect_status(rc, GRPC_STATUS_OK, msg,
		              "GetState of an actor with a turn in flight");
		ck_assert_msg(v->active, "%s is not active", actor);
		seen = v->queued;
		protobuf_c_message_free_unpacked(&v->base, NULL);
		if (seen == want)
			return;
		ck_assert_msg(seen < want && it_now_ms() < end,
		              "%s: %" PRIu32 " calls queued, wanted %" PRIu32, actor, seen, want);
		poll(NULL, 0, 2); /* the next look, 2 ms on */
	}
}

/* A Forget running in a thread of its own (it waits for a turn in flight). */
typedef struct bg_forget {
	pthread_t t;
	const char *target;
	int rc;
	char msg[256];
	Spawn__Gateway__V1__ForgetResult *res;
} bg_forget;

static void *bg_forget_main(void *arg)
{
	bg_forget *b = arg;
	adm_client *a = adm_create(b->target);
	b->rc = adm_forget(a, "it", "counter", &b->res, b->msg, sizeof b->msg);
	adm_destroy(a);
	return NULL;
}

START_TEST(forget_erases_an_actor_and_its_name_starts_fresh)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "forget", k));
	itdb_init(&db, &w, k, "state.db");
	const char *gargs[] = {"--store-history", "3", NULL};
	const char *hargs[] = {"--checkpoint",
	                       "--trace",
	                       "--timer",
	                       "100",
	                       "--actions",
	                       "Add,Get,Sleep,Hang,Emit",
	                       NULL};
	it_gw gw;
	itdb_gateway_start(&w, &db, &gw, "gw", gargs, NULL);
	it_proc *h = it_host_start(&w, "host", gw.target, hargs);
	ck_assert_int_eq(spawn_client_create(&client, gw.target), SPAWN_OK);
	adm = adm_create(gw.target);
	char msg[256];

	/* counter: 5 checkpointed revisions (history: the latest and 3 more),
	 * 2 scheduled calls, a running timer. inst-1: an instance. inst-keep: an
	 * instance with a scheduled call, never forgotten. */
	for (int i = 1; i <= 5; i++)
		expect_add("it", i, i, tri(i));
	ck_assert_int_eq(itl_add(client, "it", "inst-1", "counters", 7, 1, NULL, msg, sizeof msg),
	                 SPAWN_OK);
	ck_assert_int_eq(
	    itl_add(client, "it", "inst-keep", "counters", 9, 1, NULL, msg, sizeof msg), SPAWN_OK);
	schedule_add("counter", NULL);
	schedule_add("counter", NULL);
	schedule_add("inst-keep", "counters");
	ck_assert_int_eq(itdb_query_int(&db, "SELECT COUNT(*) FROM spawn_schedule"), 3);
	ck_assert_int_eq(count_rows("spawn_actor_history", "it", "counter"), 4);
	ck_assert_int_eq(count_rows("spawn_instance", "it", "inst-1"), 1);
	ck_assert_msg(it_proc_wait_line(h, "invoked counter Tick", it_ms(5000), NULL, 0),
	              "the timer never ran");

	/* A turn in flight (Sleep) and two calls queued behind it. */
	itc_batch b;
	itc_batch_init(&b, 3);
	It__Add sleep = IT__ADD__INIT, one = IT__ADD__INIT;
	sleep.value = 1500;
	one.value = 1;
	ck_assert_int_eq(
	    itc_batch_start(&b, 0, client, ITC_COUNTER, "Sleep", &sleep.base, it_ms(20000)),
	    SPAWN_OK);
	ck_assert(it_proc_wait_line(h, "invoked counter Sleep", it_ms(10000), NULL, 0));
	for (size_t i = 1; i < 3; i++)
		ck_assert_int_eq(
		    itc_batch_start(&b, i, client, ITC_COUNTER, "Add", &one.base, it_ms(20000)),
		    SPAWN_OK);
	/* The Forget starts once the gateway holds both in the mailbox. */
	expect_queued("counter", 2);
	bg_forget bf = {.target = gw.target};
	ck_assert_int_eq(pthread_create(&bf.t, NULL, bg_forget_main, &bf), 0);
	/* The queued calls are answered at once: ABORTED, forgotten. */
	ck_assert_msg(itc_batch_wait(&b, 2, it_ms(10000)), "the queued calls were not answered");
	for (size_t i = 1; i < 3; i++) {
		ck_assert_msg(b.res[i].status == SPAWN_ABORTED, "queued Add %zu: %s (%s)", i,
		              spawn_status_name(b.res[i].status), b.res[i].msg);
		ck_assert_msg(strstr(b.res[i].msg, "forgotten"), "queued Add %zu: '%s'", i,
		              b.res[i].msg);
	}
	/* While the Forget waits for the Sleep: a new call is UNAVAILABLE, marked
	 * not dispatched (an asynchronous call: the C runtime retries a
	 * synchronous one until the Forget is over), a second Forget is
	 * ABORTED. */
	itc_batch during;
	itc_batch_init(&during, 1);
	ck_assert_int_eq(
	    itc_batch_start(&during, 0, client, ITC_COUNTER, "Add", &one.base, it_ms(20000)),
	    SPAWN_OK);
	ck_assert(itc_batch_wait(&during, 1, it_ms(10000)));
	ck_assert_msg(during.res[0].status == SPAWN_UNAVAILABLE &&
	                  strstr(during.res[0].msg, "being forgotten"),
	              "Add during the Forget: %s (%s)", spawn_status_name(during.res[0].status),
	              during.res[0].msg);
	itc_batch_fini(&during);
	int rc;
	Spawn__Gateway__V1__ForgetResult *fr = NULL;
	expect_status(adm_forget(adm, "it", "counter", &fr, msg, sizeof msg), GRPC_STATUS_ABORTED,
	              msg, "a second Forget while the first runs");
	ck_assert(pthread_join(bf.t, NULL) == 0);
	expect_status(bf.rc, GRPC_STATUS_OK, bf.msg, "Forget of an active actor");
	ck_assert_uint_eq(bf.res->state_rows, 1);
	ck_assert_uint_eq(bf.res->history_revisions, 4);
	ck_assert_uint_eq(bf.res->instance_records, 0);
	ck_assert_uint_eq(bf.res->schedules, 2);
	ck_assert(!bf.res->outbox);
	ck_assert(bf.res->was_active);
	ck_assert_uint_eq(bf.res->calls_aborted, 2);
	protobuf_c_message_free_unpacked(&bf.res->base, NULL);
	/* The turn in flight finished (its caller got its answer). */
	ck_assert(itc_batch_wait(&b, 3, it_ms(10000)));
	ck_assert_msg(b.res[0].status == SPAWN_OK, "Sleep: %s (%s)",
	              spawn_status_name(b.res[0].status), b.res[0].msg);
	itc_batch_fini(&b);

	/* Nothing of it is left in the store; the rest is untouched. */
	expect_gone("it", "counter", "after the Forget");
	ck_assert_int_eq(itdb_query_int(&db, "SELECT COUNT(*) FROM spawn_schedule"), 1);
	ck_assert_int_eq(itdb_revision(&db, "it", "inst-keep"), 1);
	ck_assert_int_eq(count_rows("spawn_instance", "it", "inst-keep"), 1);
	/* Its timer stopped: no Tick of counter after what was printed. */
	it_proc_wait_line(h, "(drain)", it_ms(300), NULL, 0);
	ck_assert_msg(!it_proc_wait_line(h, "invoked counter Tick", it_ms(600), NULL, 0),
	              "the forgotten actor's timer still runs");
	/* Nor does the Sleep's state come back. */
	expect_gone("it", "counter", "after the turn in flight");

	/* The name starts from nothing. */
	expect_get("it", 0);
	ck_assert_int_eq(itdb_revision(&db, "it", "counter"), 0);
	expect_add("it", 3, 1, 3);
	ck_assert_int_eq(itdb_revision(&db, "it", "counter"), 1);

	/* An instance: erased with its record; by name alone it is unknown
	 * until it is spawned again, then fresh. */
	expect_forget(
	    "it", "inst-1",
	    &(Spawn__Gateway__V1__ForgetResult){
	        .state_rows = 1, .history_revisions = 1, .instance_records = 1, .was_active = true},
	    "Forget of an instance");
	expect_gone("it", "inst-1", "after the instance's Forget");
	rc = itl_add(client, "it", "inst-1", NULL, 1, 0, NULL, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_NOT_FOUND, "a forgotten instance by name: %s (%s)",
	              spawn_status_name(rc), msg);
	It__Total *t = NULL;
	ck_assert_int_eq(itl_add(client, "it", "inst-1", "counters", 2, 0, &t, msg, sizeof msg),
	                 SPAWN_OK);
	ck_assert_int_eq(t->total, 2);
	protobuf_c_message_free_unpacked(&t->base, NULL);

	/* An outbox: emitter's checkpointed turn left a side effect whose
	 * delivery hangs (Hang on emit-target), so its stored row is flagged
	 * with undelivered effects. Forget drops them with the row. */
	It__Add nothing = IT__ADD__INIT;
	spawn_reply er;
	rc = itc_invoke(client, (itc_actor){"emitter", "counters"}, "Emit", &nothing.base,
	                it_ms(10000), &er);
	ck_assert_msg(rc == SPAWN_OK, "Emit: %s (%s)", spawn_status_name(rc),
	              er.message ? er.message : "");
	It__Total *et = itc_total(&er);
	ck_assert_ptr_nonnull(et);
	ck_assert_int_eq(et->total, 1);
	protobuf_c_message_free_unpacked(&et->base, NULL);
	spawn_reply_fini(&er);
	ck_assert_msg(it_proc_wait_line(h, "hanging emit-target", it_ms(10000), NULL, 0),
	              "the side effect was not delivered");
	ck_assert_int_eq(
	    itdb_query_int(&db, "SELECT effects FROM spawn_actor_state WHERE system = 'it' AND "
	                        "name = 'emitter'"),
	    1);
	expect_forget("it", "emitter",
	              &(Spawn__Gateway__V1__ForgetResult){.state_rows = 1,
	                                                  .history_revisions = 1,
	                                                  .instance_records = 1,
	                                                  .outbox = true,
	                                                  .was_active = true},
	              "Forget of an actor with undelivered side effects");
	expect_gone("it", "emitter", "after the emitter's Forget");

	/* Unknown: OK, nothing erased (idempotent); a second Forget likewise. */
	expect_forget("it", "nobody", &(Spawn__Gateway__V1__ForgetResult){0},
	              "Forget of an unknown actor");
	expect_forget("nosystem", "counter", &(Spawn__Gateway__V1__ForgetResult){0},
	              "Forget in an unknown system");
	/* Malformed requests. */
	expect_status(adm_forget(adm, "it", "", &fr, msg, sizeof msg), GRPC_STATUS_INVALID_ARGUMENT,
	              msg, "Forget without an actor");
	expect_status(adm_forget(adm, "", "counter", &fr, msg, sizeof msg),
	              GRPC_STATUS_INVALID_ARGUMENT, msg, "Forget without a system");
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	expect_status(adm_call(adm, ADM_FORGET, garbage, sizeof garbage, NULL, NULL, it_ms(10000),
	                       msg, sizeof msg),
	              GRPC_STATUS_INVALID_ARGUMENT, msg, "Forget of garbage");

	adm_destroy(adm);
	adm = NULL;
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(h);
	it_gateway_stop(&gw);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration_admin");
	const itdb_case cases[] = {
	    {"admin", admin_reads_lists_and_restores_without_the_host, 90},
	    {"forget", forget_erases_an_actor_and_its_name_starts_fresh, 90},
	};
	itdb_add_cases(s, cases, sizeof cases / sizeof cases[0], "sqlite", teardown);
	itdb_launcher_start();
	return it_run(s);
}
