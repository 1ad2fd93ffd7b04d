/* it_cluster_test.c - two gateway processes on one PostgreSQL or MariaDB
 * database (issue 3, "exactly one live activation per actor"): each has
 * its own it-host in checkpoint mode, and clients hammer the same actor
 * through both. A stale activation's save is fenced, its call refused with
 * ABORTED; the state read back from the store holds exactly the
 * acknowledged adds: none lost, none applied twice, no refused one applied.
 *
 * Runs through tests/store/with-db.sh under the ctest fixture spawn_db;
 * IT_STORES selects the stores (default: postgres,mariadb). Each test
 * works in a fresh namespace with unique actor names.
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
static spawn_client *c1, *c2;
static adm_client *adm;

static void teardown(void)
{
	spawn_client_destroy(c1);
	spawn_client_destroy(c2);
	c1 = c2 = NULL;
	adm_destroy(adm);
	adm = NULL;
	it_world_fini(&w);
	itdb_fini(&db);
}

/* read_stored starts a fresh gateway (no host, so nothing is active and
 * the state comes from the store), reads system/actor with Admin.GetState,
 * stops the gateway and returns the counter and, in *rev, the revision. */
static It__Counter *read_stored(const char *gwname, const char *system, const char *actor,
                                uint64_t *rev)
{
	it_gw g;
	itdb_gateway_start(&w, &db, &g, gwname, NULL, NULL);
	adm = adm_create(g.target);
	Spawn__Gateway__V1__ActorStateView *v = NULL;
	char msg[256];
	int rc = adm_get_state(adm, system, actor, 0, &v, msg, sizeof msg);
	ck_assert_msg(rc == GRPC_STATUS_OK, "GetState %s/%s: %s: %s", system, actor,
	              adm_status_name(rc), msg);
	ck_assert_msg(!v->active, "%s/%s is active on a gateway that has no host", system, actor);
	*rev = v->revision;
	It__Counter *st = adm_counter(v);
	ck_assert_msg(st != NULL, "the state of %s/%s is not an it.Counter", system, actor);
	protobuf_c_message_free_unpacked(&v->base, NULL);
	adm_destroy(adm);
	adm = NULL;
	it_gateway_stop(&g);
	return st;
}

/* ---- concurrent checkpointed adds through two gateways ------------------------------ */

enum { CLUSTER_ADDS = 200, CLUSTER_WINDOW = 4 };

START_TEST(two_gateways_never_lose_an_acknowledged_add)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "concurrent", k));
	itdb_init(&db, &w, k, "state.db");
	/* Checkpoints only: snapshots far away, nothing deactivates. */
	const char *gargs[] = {"--snapshot-interval", "600000", NULL};
	const char *hargs[] = {"--checkpoint", NULL};
	it_gw g1, g2;
	itdb_gateway_start(&w, &db, &g1, "gw1", gargs, NULL);
	itdb_gateway_start(&w, &db, &g2, "gw2", gargs, NULL);
	it_proc *h1 = it_host_start(&w, "host1", g1.target, hargs);
	it_proc *h2 = it_host_start(&w, "host2", g2.target, hargs);
	ck_assert_int_eq(spawn_client_create(&c1, g1.target), SPAWN_OK);
	ck_assert_int_eq(spawn_client_create(&c2, g2.target), SPAWN_OK);

	char actor[64];
	itdb_unique(actor, sizeof actor, "shared");
	static itl_load l1, l2;
	itl_init(&l1, c1, "it", "counters", actor, 1, CLUSTER_WINDOW, 0);
	itl_init(&l2, c2, "it", "counters", actor, 1, CLUSTER_WINDOW, 1000000);
	int64_t t0 = it_now_ms();
	itl_allow(&l1, CLUSTER_ADDS);
	itl_allow(&l2, CLUSTER_ADDS);
	ck_assert_msg(itl_wait(&l1, itl_idle, NULL, it_ms(120000)), "gateway 1's adds did not end");
	ck_assert_msg(itl_wait(&l2, itl_idle, NULL, it_ms(120000)), "gateway 2's adds did not end");
	int64_t ms = it_now_ms() - t0;
	itl_summary(&l1, "concurrent: through gateway 1");
	itl_summary(&l2, "concurrent: through gateway 2");
	long ok1 = itl_count(&l1, SIZE_MAX, SPAWN_OK, 0),
	     ok2 = itl_count(&l2, SIZE_MAX, SPAWN_OK, 0);
	fprintf(stderr, "concurrent (%s): %d + %d adds in %" PRId64 " ms, %ld + %ld acknowledged\n",
	        itdb_kind_name(k), CLUSTER_ADDS, CLUSTER_ADDS, ms, ok1, ok2);
	/* A refusal is a fenced activation (ABORTED), nothing else. */
	ck_assert_int_eq(itl_count(&l1, SIZE_MAX, ITL_NOT_OK, 0),
	                 itl_count(&l1, SIZE_MAX, SPAWN_ABORTED, 0));
	ck_assert_int_eq(itl_count(&l2, SIZE_MAX, ITL_NOT_OK, 0),
	                 itl_count(&l2, SIZE_MAX, SPAWN_ABORTED, 0));
	/* Both make progress: fencing hands the actor over, it does not
	 * starve one side. */
	ck_assert_int_gt(ok1, 0);
	ck_assert_int_gt(ok2, 0);

	spawn_client_destroy(c1);
	spawn_client_destroy(c2);
	c1 = c2 = NULL;
	it_host_stop(h1);
	it_host_stop(h2);
	it_gateway_stop(&g1);
	it_gateway_stop(&g2);

	uint64_t rev;
	It__Counter *st = read_stored("gw-read", "it", actor, &rev);
	itl_load *ls[] = {&l1, &l2};
	size_t idx[] = {0, 0};
	char why[256];
	ck_assert_msg(itl_verify(ls, idx, 2, st, 0, why, sizeof why), "%s: %s", actor, why);
	ck_assert_int_eq(st->adds, ok1 + ok2);
	/* One revision per durable save, and every durable save was an
	 * acknowledged add. */
	ck_assert_uint_eq(rev, (uint64_t)(ok1 + ok2));
	protobuf_c_message_free_unpacked(&st->base, NULL);
	itl_fini(&l1);
	itl_fini(&l2);
}
END_TEST

/* ---- the hand-over, step by step ------------------------------------------------------ */

/* add_on adds 1 through c and returns the status; the total goes to *total. */
static int add_on(spawn_client *c, const char *actor, int64_t seq, int64_t *total)
{
	It__Total *t = NULL;
	char msg[256];
	int rc = itl_add(c, "it", actor, "counters", 1, seq, &t, msg, sizeof msg);
	if (rc == SPAWN_OK) {
		*total = t->total;
		protobuf_c_message_free_unpacked(&t->base, NULL);
	} else {
		fprintf(stderr, "handover: add seq %" PRId64 ": %s: %s\n", seq,
		        spawn_status_name(rc), msg);
	}
	return rc;
}

/* Alternating calls: the gateway whose activation is stale learns it when
 * its save is fenced; that call is refused with ABORTED and changes
 * nothing, and the next call there reactivates with the newer state. */
START_TEST(a_stale_activation_is_refused_and_the_next_call_reloads)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "handover", k));
	itdb_init(&db, &w, k, "state.db");
	const char *gargs[] = {"--snapshot-interval", "600000", NULL};
	const char *hargs[] = {"--checkpoint", NULL};
	it_gw g1, g2;
	itdb_gateway_start(&w, &db, &g1, "gw1", gargs, NULL);
	itdb_gateway_start(&w, &db, &g2, "gw2", gargs, NULL);
	it_proc *h1 = it_host_start(&w, "host1", g1.target, hargs);
	it_proc *h2 = it_host_start(&w, "host2", g2.target, hargs);
	ck_assert_int_eq(spawn_client_create(&c1, g1.target), SPAWN_OK);
	ck_assert_int_eq(spawn_client_create(&c2, g2.target), SPAWN_OK);
	char actor[64];
	itdb_unique(actor, sizeof actor, "handover");

	int64_t total = 0;
	ck_assert_int_eq(add_on(c1, actor, 1, &total), SPAWN_OK);
	ck_assert_int_eq(total, 1);
	ck_assert_int_eq(add_on(c2, actor, 2, &total), SPAWN_OK); /* activates with total 1 */
	ck_assert_int_eq(total, 2);
	for (int round = 0; round < 3; round++) {
		spawn_client *stale = round % 2 ? c2 : c1;
		int64_t seq = 10 * (round + 1);
		ck_assert_int_eq(add_on(stale, actor, seq, &total), SPAWN_ABORTED);
		ck_assert_int_eq(add_on(stale, actor, seq + 1, &total), SPAWN_OK);
		ck_assert_int_eq(total, 3 + round);
	}
	spawn_client_destroy(c1);
	spawn_client_destroy(c2);
	c1 = c2 = NULL;
	it_host_stop(h1);
	it_host_stop(h2);
	it_gateway_stop(&g1);
	it_gateway_stop(&g2);

	uint64_t rev;
	It__Counter *st = read_stored("gw-read", "it", actor, &rev);
	ck_assert_int_eq(st->total, 5);
	ck_assert_uint_eq(rev, 5);
	int64_t want[] = {1, 2, 11, 21, 31};
	ck_assert_uint_eq(st->n_seqs, 5);
	for (size_t i = 0; i < 5; i++)
		ck_assert_int_eq(st->seqs[i], want[i]);
	protobuf_c_message_free_unpacked(&st->base, NULL);
}
END_TEST

/* ---- reading an actor that another gateway took over ---------------------------------- */

/* Gateway 1 still holds an activation that gateway 2 has superseded (a
 * newer epoch, a newer revision in the store). Admin.GetState on gateway
 * 1 must not present the superseded memory as the actor's current state:
 * the store's newer revision is the current one. */
START_TEST(getstate_never_reports_a_superseded_activation_as_current)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "stale_read", k));
	itdb_init(&db, &w, k, "state.db");
	const char *gargs[] = {"--snapshot-interval", "600000", NULL};
	const char *hargs[] = {"--checkpoint", NULL};
	it_gw g1, g2;
	itdb_gateway_start(&w, &db, &g1, "gw1", gargs, NULL);
	itdb_gateway_start(&w, &db, &g2, "gw2", gargs, NULL);
	it_proc *h1 = it_host_start(&w, "host1", g1.target, hargs);
	it_proc *h2 = it_host_start(&w, "host2", g2.target, hargs);
	ck_assert_int_eq(spawn_client_create(&c1, g1.target), SPAWN_OK);
	ck_assert_int_eq(spawn_client_create(&c2, g2.target), SPAWN_OK);
	char actor[64];
	itdb_unique(actor, sizeof actor, "stale");
	int64_t total = 0;
	ck_assert_int_eq(add_on(c1, actor, 1, &total), SPAWN_OK); /* gateway 1: revision 1 */
	ck_assert_int_eq(add_on(c2, actor, 2, &total), SPAWN_OK); /* gateway 2: revision 2 */
	ck_assert_int_eq(total, 2);

	adm = adm_create(g1.target);
	Spawn__Gateway__V1__ActorStateView *v = NULL;
	char msg[256];
	int rc = adm_get_state(adm, "it", actor, 0, &v, msg, sizeof msg);
	ck_assert_msg(rc == GRPC_STATUS_OK, "GetState on gateway 1: %s: %s", adm_status_name(rc),
	              msg);
	It__Counter *st = adm_counter(v);
	ck_assert_ptr_nonnull(st);
	ck_assert_msg(v->revision == 2 && st->total == 2,
	              "GetState on gateway 1 reports revision %" PRIu64 ", total %" PRId64
	              ", active %d as current; the store holds revision 2, total 2 (gateway 2's)",
	              v->revision, st->total, v->active);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	protobuf_c_message_free_unpacked(&v->base, NULL);
	adm_destroy(adm);
	adm = NULL;

	spawn_client_destroy(c1);
	spawn_client_destroy(c2);
	c1 = c2 = NULL;
	it_host_stop(h1);
	it_host_stop(h2);
	it_gateway_stop(&g1);
	it_gateway_stop(&g2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration_cluster");
	const itdb_case cases[] = {
	    {"concurrent", two_gateways_never_lose_an_acknowledged_add, 180},
	    {"handover", a_stale_activation_is_refused_and_the_next_call_reloads, 60},
	    {"stale_read", getstate_never_reports_a_superseded_activation_as_current, 60},
	};
	itdb_add_cases(s, cases, sizeof cases / sizeof cases[0], "postgres,mariadb", teardown);
	itdb_launcher_start();
	return it_run(s);
}
