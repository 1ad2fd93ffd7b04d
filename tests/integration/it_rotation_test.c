/* it_rotation_test.c - key rotation over real processes (issue 3, part 5):
 * 300 actors' states sealed under key A; a gateway restarted with the
 * keyring "B:...,A:..." and --rotate-keys re-encrypts every row to B in
 * the background while adds go on (progress read with Admin.KeyRotation);
 * after it, a gateway with only key B reads every actor's exact state
 * (Admin.GetState, no host), older revisions included, and key A alone is
 * refused at start-up. On a server, a second gateway with the same
 * keyring (not rotating) saves other actors during the rotation.
 *
 * IT_STORES selects the stores (default: sqlite). Under the ctest fixture
 * spawn_db (through tests/store/with-db.sh) the same test runs on
 * PostgreSQL and MariaDB, each in a fresh namespace.
 */
#include <inttypes.h>
#include <poll.h>
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
static spawn_client *client, *client2;
static adm_client *adm;

static void teardown(void)
{
	spawn_client_destroy(client);
	spawn_client_destroy(client2);
	client = client2 = NULL;
	adm_destroy(adm);
	adm = NULL;
	it_world_fini(&w);
	itdb_fini(&db);
}

/* ROT_ACTORS take adds during the rotation; ROT_BULK more actors only make
 * the rotation longer, so that it overlaps those adds. */
enum { ROT_ACTORS = 300, ROT_ADDS = 3, ROT_BULK = 1200 };

#define KEYS_A  "SPAWN_STATESTORE_KEYS=A:" ITDB_KEY_A
#define KEYS_BA "SPAWN_STATESTORE_KEYS=B:" ITDB_KEY_B ",A:" ITDB_KEY_A
#define KEYS_B  "SPAWN_STATESTORE_KEYS=B:" ITDB_KEY_B

/* rows_not_under counts rows (latest states, and history where the store
 * keeps it) sealed under a key other than key_id. */
static long long rows_not_under(const char *key_id)
{
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM spawn_actor_state WHERE key_id <> '%s'",
	         key_id);
	long long n = itdb_query_int(&db, sql);
	ck_assert_int_ge(n, 0);
	bool history =
	    db.kind != ITDB_SQLITE || itdb_query_int(&db, "SELECT COUNT(*) FROM sqlite_master "
	                                                  "WHERE name = 'spawn_actor_history'") > 0;
	if (history) {
		snprintf(sql, sizeof sql,
		         "SELECT COUNT(*) FROM spawn_actor_history WHERE key_id <> '%s'", key_id);
		long long h = itdb_query_int(&db, sql);
		ck_assert_int_ge(h, 0);
		n += h;
	}
	return n;
}

/* verify_actors reads every actor of ld with Admin.GetState (the gateway
 * in adm has no host: the state comes from the store) and checks it holds
 * exactly its acknowledged adds (adds of them), then reads every older
 * revision the store kept. Returns how many older revisions it read. */
static long verify_actors(itl_load *ld, int64_t adds)
{
	char msg[256];
	long older = 0;
	for (size_t i = 0; i < ld->n_actors; i++) {
		Spawn__Gateway__V1__ActorStateView *v = NULL;
		int rc = adm_get_state(adm, "it", ld->actors[i].name, 0, &v, msg, sizeof msg);
		ck_assert_msg(rc == GRPC_STATUS_OK, "GetState it/%s under key B only: %s: %s",
		              ld->actors[i].name, adm_status_name(rc), msg);
		It__Counter *st = adm_counter(v);
		ck_assert_ptr_nonnull(st);
		itl_load *ls[] = {ld};
		size_t idx[] = {i};
		char why[256];
		ck_assert_msg(itl_verify(ls, idx, 1, st, 0, why, sizeof why), "it/%s: %s",
		              ld->actors[i].name, why);
		ck_assert_int_eq(st->adds, adds);
		protobuf_c_message_free_unpacked(&st->base, NULL);
		protobuf_c_message_free_unpacked(&v->base, NULL);
		/* Every older revision the store kept decrypts too. */
		Spawn__Gateway__V1__RevisionList *rl = NULL;
		rc = adm_list_revisions(adm, "it", ld->actors[i].name, &rl, msg, sizeof msg);
		ck_assert_msg(rc == GRPC_STATUS_OK, "ListRevisions it/%s: %s: %s",
		              ld->actors[i].name, adm_status_name(rc), msg);
		for (size_t r = 1; r < rl->n_revisions; r++) {
			rc = adm_get_state(adm, "it", ld->actors[i].name, rl->revisions[r], &v, msg,
			                   sizeof msg);
			ck_assert_msg(rc == GRPC_STATUS_OK,
			              "GetState it/%s @%" PRIu64 " under key B only: %s: %s",
			              ld->actors[i].name, rl->revisions[r], adm_status_name(rc),
			              msg);
			protobuf_c_message_free_unpacked(&v->base, NULL);
			older++;
		}
		protobuf_c_message_free_unpacked(&rl->base, NULL);
	}
	return older;
}

START_TEST(rotation_reencrypts_every_row_while_adds_go_on)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "rotation", k));
	itdb_init(&db, &w, k, "state.db");
	/* Frequent snapshots: saves under the new key race the rotation's
	 * rewrites; history keeps older revisions sealed under A too. */
	const char *gargs[] = {"--snapshot-interval", "50", "--store-history", "2", NULL};
	const char *gargs_rot[] = {"--snapshot-interval", "50", "--store-history", "2",
	                           "--rotate-keys",       NULL};
	const char *env_a[] = {KEYS_A, NULL}, *env_ba[] = {KEYS_BA, NULL},
	           *env_b[] = {KEYS_B, NULL};

	/* 1. Every actor's state under key A. */
	it_gw g1;
	itdb_gateway_start(&w, &db, &g1, "gw-a", gargs, env_a);
	it_proc *h1 = it_host_start(&w, "host-a", g1.target, NULL);
	ck_assert_int_eq(spawn_client_create(&client, g1.target), SPAWN_OK);
	char prefix[64];
	itdb_unique(prefix, sizeof prefix, "r");
	static itl_load l, bulk;
	itl_init(&l, client, "it", "counters", prefix, ROT_ACTORS, 1, 0);
	char bulk_prefix[80];
	snprintf(bulk_prefix, sizeof bulk_prefix, "%s-bulk", prefix);
	itl_init(&bulk, client, "it", "counters", bulk_prefix, ROT_BULK, 1, 0);
	itl_allow(&l, 1);
	itl_allow(&bulk, 1);
	ck_assert(itl_wait(&l, itl_idle, NULL, it_ms(60000)));
	ck_assert(itl_wait(&bulk, itl_idle, NULL, it_ms(60000)));
	ck_assert_int_eq(itl_count(&l, SIZE_MAX, SPAWN_OK, 0), ROT_ACTORS);
	ck_assert_int_eq(itl_count(&bulk, SIZE_MAX, SPAWN_OK, 0), ROT_BULK);
	spawn_client_destroy(client);
	client = NULL;
	it_gateway_stop(&g1);
	it_host_stop(h1);
	ck_assert_int_eq(rows_not_under("A"), 0);
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM spawn_actor_state WHERE name LIKE '%s-%%'",
	         prefix);
	ck_assert_int_eq(itdb_query_int(&db, sql), ROT_ACTORS + ROT_BULK);

	/* 2. B first, A still there, rotation on, adds going on. On a server
	 * a second gateway (same keyring, not rotating) adds to the bulk
	 * actors meanwhile: the rotation's rewrites race another process's
	 * saves too. */
	it_gw g2, g2b;
	itdb_gateway_start(&w, &db, &g2, "gw-ba", gargs_rot, env_ba);
	adm = adm_create(g2.target);
	it_proc *h2 = it_host_start(&w, "host-ba", g2.target, NULL), *h2b = NULL;
	ck_assert_int_eq(spawn_client_create(&client, g2.target), SPAWN_OK);
	bool second = k != ITDB_SQLITE;
	if (second) {
		itdb_gateway_start(&w, &db, &g2b, "gw-ba-2", gargs, env_ba);
		h2b = it_host_start(&w, "host-ba-2", g2b.target, NULL);
		ck_assert_int_eq(spawn_client_create(&client2, g2b.target), SPAWN_OK);
		bulk.c = client2;
		itl_allow(&bulk, ROT_ADDS);
	}
	l.c = client;
	itl_allow(&l, ROT_ADDS);
	Spawn__Gateway__V1__KeyRotationStatus *ks = NULL;
	char msg[256];
	int64_t end = it_now_ms() + it_ms(60000);
	long polls = 0, adds_at_done = -1, midway = 0;
	for (;;) {
		int rc = adm_key_rotation(adm, &ks, msg, sizeof msg);
		ck_assert_msg(rc == GRPC_STATUS_OK, "KeyRotation: %s: %s", adm_status_name(rc),
		              msg);
		ck_assert(ks->enabled);
		polls++;
		midway += !ks->done && ks->rewritten > 0;
		if (ks->done) {
			adds_at_done = itl_count(&l, SIZE_MAX, ITL_ANY, 0) - ROT_ACTORS;
			break;
		}
		protobuf_c_message_free_unpacked(&ks->base, NULL);
		ks = NULL;
		ck_assert_msg(it_now_ms() < end, "key rotation not done within the time bound");
		/* Progress has no event to wait on: re-check every 20 ms. */
		poll(NULL, 0, 20);
	}
	fprintf(stderr,
	        "rotation (%s): done after %ld polls (%ld saw it midway): %" PRIu64
	        " rewritten, %" PRIu64 " remaining, %" PRIu64
	        " failed; %ld of %d adds completed by then\n",
	        itdb_kind_name(k), polls, midway, ks->rewritten, ks->remaining, ks->failed,
	        adds_at_done, ROT_ACTORS * ROT_ADDS);
	ck_assert_uint_eq(ks->failed, 0);
	ck_assert_uint_eq(ks->remaining, 0);
	ck_assert_uint_ge(ks->rewritten, 1);
	protobuf_c_message_free_unpacked(&ks->base, NULL);
	ck_assert(itl_wait(&l, itl_idle, NULL, it_ms(60000)));
	itl_summary(&l, "rotation: adds through the rotating gateway");
	ck_assert_int_eq(itl_count(&l, SIZE_MAX, ITL_NOT_OK, 0), 0);
	adm_destroy(adm);
	adm = NULL;
	spawn_client_destroy(client);
	client = NULL;
	it_gateway_stop(&g2);
	it_host_stop(h2);
	if (second) {
		ck_assert(itl_wait(&bulk, itl_idle, NULL, it_ms(60000)));
		itl_summary(&bulk, "rotation: adds through the second gateway");
		ck_assert_int_eq(itl_count(&bulk, SIZE_MAX, ITL_NOT_OK, 0), 0);
		spawn_client_destroy(client2);
		client2 = NULL;
		it_gateway_stop(&g2b);
		it_host_stop(h2b);
	}
	ck_assert_int_eq(rows_not_under("B"), 0);

	/* 3. Only B: every actor exactly as acknowledged, and every older
	 * revision the store kept decrypts too. No host: the state comes from
	 * the store. */
	it_gw g3;
	itdb_gateway_start(&w, &db, &g3, "gw-b", gargs, env_b);
	adm = adm_create(g3.target);
	long older =
	    verify_actors(&l, 1 + ROT_ADDS) + verify_actors(&bulk, second ? 1 + ROT_ADDS : 1);
	fprintf(stderr, "rotation (%s): %d actors read under B only, %ld older revisions too\n",
	        itdb_kind_name(k), ROT_ACTORS + ROT_BULK, older);
	adm_destroy(adm);
	adm = NULL;
	it_gateway_stop(&g3);

	/* 4. Key A alone no longer opens the store. */
	it_proc *p = itdb_gateway_spawn(&w, &db, "gw-a-again", gargs, env_a);
	bool exited = it_proc_wait_exit(p, it_ms(30000));
	if (!exited || it_exit_code(p) != 2)
		it_proc_dump(p);
	ck_assert_msg(exited, "a gateway with only the old key kept running");
	ck_assert_int_eq(it_exit_code(p), 2);
	itl_fini(&l);
	itl_fini(&bulk);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration_rotation");
	const itdb_case cases[] = {
	    {"rotation", rotation_reencrypts_every_row_while_adds_go_on, 180},
	};
	itdb_add_cases(s, cases, sizeof cases / sizeof cases[0], "sqlite", teardown);
	itdb_launcher_start();
	return it_run(s);
}
