/* it_dbfault_test.c - the database under the gateway fails (issue 3, part
 * 6), on the real PostgreSQL and MariaDB servers of the ctest fixture
 * spawn_db:
 *
 *   outage          the server is stopped under load and started again:
 *                   active actors keep serving in snapshot mode,
 *                   checkpointed adds fail with UNAVAILABLE (never
 *                   acknowledged without a durable write, rolled back in
 *                   memory), the dirty actors are saved by the retries once
 *                   it is back, checkpoints work again, SIGTERM exits 0, and
 *                   a fresh gateway reads every acknowledged add back;
 *   outage_idle     actors going idle while it is down keep their changes
 *                   until their final save can be made; activations fail
 *                   with UNAVAILABLE meanwhile;
 *   outage_sigterm  SIGTERM while it is down: the final saves wait for it;
 *   lost_commit_*   a proxy loses the answer to a COMMIT that happened: no
 *                   acknowledged snapshot add is lost, and only that
 *                   checkpoint fails;
 *   damaged         a row damaged behind the gateway's back (a flipped
 *                   byte, a truncation, an unknown key id) is DATA_LOSS for
 *                   that actor only.
 *
 * Runs through tests/store/with-db.sh; IT_STORES selects the stores
 * (default: postgres,mariadb; on sqlite only the damaged-row case runs).
 */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <spawn/spawn.h>

#include "adm.h"
#include "harness.h"
#include "itdb.h"
#include "itl.h"
#include "itproxy.h"

static it_world w;
static itdb db;
static spawn_client *client;
static adm_client *adm;
static itp *proxy;

static void teardown(void)
{
	itp_stop(proxy);
	proxy = NULL;
	spawn_client_destroy(client);
	client = NULL;
	adm_destroy(adm);
	adm = NULL;
	it_world_fini(&w);
	itdb_fini(&db);
}

/* get_view reads system/actor with Admin.GetState (asserts OK). */
static Spawn__Gateway__V1__ActorStateView *get_view(const char *system, const char *actor)
{
	Spawn__Gateway__V1__ActorStateView *v = NULL;
	char msg[256];
	int rc = adm_get_state(adm, system, actor, 0, &v, msg, sizeof msg);
	ck_assert_msg(rc == GRPC_STATUS_OK, "GetState %s/%s: %s: %s", system, actor,
	              adm_status_name(rc), msg);
	return v;
}

/* verify_actors checks every actor of l against its state as get_view
 * reports it; extra as in itl_verify. */
static void verify_actors(itl_load *l, unsigned extra, bool want_active, const char *when)
{
	for (size_t i = 0; i < l->n_actors; i++) {
		Spawn__Gateway__V1__ActorStateView *v = get_view(l->system, l->actors[i].name);
		ck_assert_msg(v->active == want_active, "%s: %s/%s: active = %d", when, l->system,
		              l->actors[i].name, v->active);
		It__Counter *st = adm_counter(v);
		ck_assert_msg(st != NULL, "%s: %s/%s: state is not an it.Counter", when, l->system,
		              l->actors[i].name);
		itl_load *ls[] = {l};
		size_t idx[] = {i};
		char why[256];
		ck_assert_msg(itl_verify(ls, idx, 1, st, extra, why, sizeof why), "%s: %s/%s: %s",
		              when, l->system, l->actors[i].name, why);
		protobuf_c_message_free_unpacked(&st->base, NULL);
		protobuf_c_message_free_unpacked(&v->base, NULL);
	}
}

static int add_one(const char *system, const char *actor, int64_t seq, char *msg, size_t n)
{
	It__Total *t = NULL;
	int rc = itl_add(client, system, actor, "counters", 1, seq, &t, msg, n);
	if (t)
		protobuf_c_message_free_unpacked(&t->base, NULL);
	return rc;
}

/* ---- the server goes away under load -------------------------------------------------- */

enum {
	FAULT_ACTORS = 8,     /* per system */
	FAULT_WINDOW = 2,     /* calls in flight per actor */
	FAULT_WARMUP = 10,    /* adds per actor before the outage */
	FAULT_DURING = 200,   /* snapshot adds per actor allowed while the server stops */
	FAULT_DOWN_ADDS = 30, /* snapshot adds per actor with the server down */
	FAULT_DOWN_CKPT = 40, /* checkpointed adds that must fail while it is down */
	FAULT_BACK_OK = 3,    /* checkpointed successes per actor once it is back */
};

typedef struct since {
	int64_t t;
	long n;
} since;

static bool calls_since(const itl_load *l, void *arg)
{
	const since *s = arg;
	return itl_count_locked(l, SIZE_MAX, ITL_ANY, s->t) >= s->n;
}

static bool each_ok_since(const itl_load *l, void *arg)
{
	const since *s = arg;
	for (size_t i = 0; i < l->n_actors; i++)
		if (itl_count_locked(l, i, SPAWN_OK, s->t) < s->n)
			return false;
	return true;
}

/* wait_clean re-reads the actors of l until none is dirty (the gateway's
 * save retries have no event a test could wait on: re-check the
 * condition every 50 ms, bounded by the timeout). */
static void wait_clean(itl_load *l, int64_t timeout_ms)
{
	int64_t end = it_now_ms() + timeout_ms;
	for (size_t i = 0; i < l->n_actors; i++) {
		for (;;) {
			Spawn__Gateway__V1__ActorStateView *v =
			    get_view(l->system, l->actors[i].name);
			bool dirty = v->dirty;
			protobuf_c_message_free_unpacked(&v->base, NULL);
			if (!dirty)
				break;
			ck_assert_msg(it_now_ms() < end,
			              "%s/%s is still dirty after the server came back", l->system,
			              l->actors[i].name);
			poll(NULL, 0, 50);
		}
	}
}

START_TEST(the_database_going_away_loses_nothing_acknowledged)
{
	itdb_kind k = (itdb_kind)_i;
	if (k == ITDB_SQLITE) {
		fprintf(stderr, "SKIPPED: outage: sqlite has no server to stop\n");
		return;
	}
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "outage", k));
	itdb_init(&db, &w, k, "state.db");
	/* Snapshots every 200 ms, so saves fail and retry during the outage;
	 * nothing deactivates. */
	const char *gargs[] = {"--snapshot-interval", "200", "--deactivate-timeout", "600000",
	                       NULL};
	it_gw gw;
	itdb_gateway_start(&w, &db, &gw, "gw", gargs, NULL);
	const char *snap_args[] = {"--system", "snap", NULL};
	const char *ckpt_args[] = {"--system", "ckpt", "--checkpoint", NULL};
	it_proc *hs = it_host_start(&w, "host-snap", gw.target, snap_args);
	it_proc *hc = it_host_start(&w, "host-ckpt", gw.target, ckpt_args);
	ck_assert_int_eq(spawn_client_create(&client, gw.target), SPAWN_OK);
	adm = adm_create(gw.target);
	char prefix[64];
	itdb_unique(prefix, sizeof prefix, "a");
	static itl_load snap, ckpt;
	itl_init(&snap, client, "snap", "counters", prefix, FAULT_ACTORS, FAULT_WINDOW, 0);
	itl_init(&ckpt, client, "ckpt", "counters", prefix, FAULT_ACTORS, FAULT_WINDOW, 0);

	/* Server up: every actor active, everything works. */
	itl_allow(&snap, FAULT_WARMUP);
	itl_allow(&ckpt, FAULT_WARMUP);
	ck_assert(itl_wait(&snap, itl_idle, NULL, it_ms(60000)));
	ck_assert(itl_wait(&ckpt, itl_idle, NULL, it_ms(60000)));
	ck_assert_int_eq(itl_count(&snap, SIZE_MAX, ITL_NOT_OK, 0), 0);
	ck_assert_int_eq(itl_count(&ckpt, SIZE_MAX, ITL_NOT_OK, 0), 0);

	/* The server stops while both kinds of adds run. */
	itl_allow(&snap, FAULT_DURING);
	itl_allow(&ckpt, ITL_UNLIMITED);
	int64_t t_stop = it_now_ms();
	itdb_server_stop(&w, &db);
	int64_t t_down = it_now_ms();
	fprintf(stderr, "outage (%s): server stopped in %" PRId64 " ms\n", itdb_kind_name(k),
	        t_down - t_stop);

	/* Down: snapshot adds succeed, checkpointed ones fail UNAVAILABLE. */
	ck_assert(itl_wait(&snap, itl_idle, NULL, it_ms(60000)));
	itl_allow(&snap, FAULT_DOWN_ADDS);
	ck_assert(itl_wait(&snap, itl_idle, NULL, it_ms(60000)));
	ck_assert_int_eq(itl_count(&snap, SIZE_MAX, ITL_NOT_OK, t_down), 0);
	ck_assert_int_ge(itl_count(&snap, SIZE_MAX, SPAWN_OK, t_down),
	                 FAULT_ACTORS * FAULT_DOWN_ADDS);
	since s = {t_down, FAULT_DOWN_CKPT};
	ck_assert(itl_wait(&ckpt, calls_since, &s, it_ms(60000)));
	ck_assert(itl_stop(&ckpt, it_ms(60000)));
	long down_ckpt = itl_count(&ckpt, SIZE_MAX, ITL_ANY, t_down);
	ck_assert_msg(itl_count(&ckpt, SIZE_MAX, SPAWN_OK, t_down) == 0,
	              "a checkpointed add was acknowledged while the database was down");
	ck_assert_int_eq(itl_count(&ckpt, SIZE_MAX, SPAWN_UNAVAILABLE, t_down), down_ckpt);
	/* In memory: snapshot actors are dirty; checkpointed actors rolled
	 * back to exactly their acknowledged adds and are clean. */
	verify_actors(&snap, 0, true, "down, snapshot actors");
	for (size_t i = 0; i < snap.n_actors; i++) {
		Spawn__Gateway__V1__ActorStateView *v = get_view("snap", snap.actors[i].name);
		ck_assert_msg(v->dirty, "snap/%s is not dirty with the server down",
		              snap.actors[i].name);
		protobuf_c_message_free_unpacked(&v->base, NULL);
	}
	verify_actors(&ckpt, 0, true, "down, checkpointed actors");
	for (size_t i = 0; i < ckpt.n_actors; i++) {
		Spawn__Gateway__V1__ActorStateView *v = get_view("ckpt", ckpt.actors[i].name);
		ck_assert_msg(!v->dirty, "ckpt/%s is dirty after its failed checkpoints",
		              ckpt.actors[i].name);
		protobuf_c_message_free_unpacked(&v->base, NULL);
	}
	/* An inactive actor cannot be read from a store that is down. */
	char msg[256];
	Spawn__Gateway__V1__ActorStateView *none = NULL;
	int rc = adm_get_state(adm, "snap", "never-activated", 0, &none, msg, sizeof msg);
	ck_assert_msg(rc == GRPC_STATUS_UNAVAILABLE,
	              "GetState of an inactive actor, store down: %s: %s", adm_status_name(rc),
	              msg);

	/* The server comes back while both kinds of adds run. */
	itl_resume(&ckpt);
	itl_allow(&ckpt, ITL_UNLIMITED);
	itl_allow(&snap, FAULT_DURING);
	itdb_server_start(&w, &db);
	int64_t t_up = it_now_ms();
	fprintf(stderr, "outage (%s): down for %" PRId64 " ms, %ld checkpointed adds refused\n",
	        itdb_kind_name(k), t_up - t_down, down_ckpt);
	since back = {t_up, FAULT_BACK_OK};
	ck_assert_msg(itl_wait(&ckpt, each_ok_since, &back, it_ms(60000)),
	              "checkpointed adds do not work again after the server came back");
	ck_assert(itl_stop(&ckpt, it_ms(60000)));
	ck_assert(itl_wait(&snap, itl_idle, NULL, it_ms(60000)));
	ck_assert_int_eq(itl_count(&snap, SIZE_MAX, ITL_NOT_OK, 0), 0);
	/* Once a checkpoint worked again, every later one did too. */
	pthread_mutex_lock(&ckpt.mu);
	for (size_t i = 0; i < ckpt.n_actors; i++) {
		const itl_actor *a = &ckpt.actors[i];
		bool recovered = false;
		for (size_t q = 0; q < a->n; q++) {
			const itl_call *c = &a->calls[q];
			if (c->t_start < t_up)
				continue;
			if (recovered)
				ck_assert_msg(c->status == SPAWN_OK,
				              "ckpt/%s: add seq %" PRId64
				              " failed (%s) after checkpoints "
				              "worked again",
				              a->name, c->seq, spawn_status_name(c->status));
			recovered |= c->status == SPAWN_OK;
		}
	}
	pthread_mutex_unlock(&ckpt.mu);
	itl_summary(&snap, "outage: snapshot adds");
	itl_summary(&ckpt, "outage: checkpointed adds");

	/* The save retries write every dirty actor without any help. */
	wait_clean(&snap, it_ms(30000));

	adm_destroy(adm);
	adm = NULL;
	spawn_client_destroy(client);
	client = NULL;
	it_gateway_stop(&gw); /* SIGTERM: exit 0 */
	it_host_stop(hs);
	it_host_stop(hc);

	/* A fresh gateway reads every acknowledged add from the store. A
	 * checkpointed add whose COMMIT was cut off by the stop may have
	 * landed although its caller got UNAVAILABLE: allowed, never the
	 * other way round. */
	it_gw g2;
	itdb_gateway_start(&w, &db, &g2, "gw-read", NULL, NULL);
	adm = adm_create(g2.target);
	verify_actors(&snap, 0, false, "stored, snapshot actors");
	verify_actors(&ckpt, 1u << SPAWN_UNAVAILABLE, false, "stored, checkpointed actors");
	adm_destroy(adm);
	adm = NULL;
	it_gateway_stop(&g2);
	itl_fini(&snap);
	itl_fini(&ckpt);
}
END_TEST

/* ---- idle actors and shutdown while the server is down --------------------------------------- */

static bool fault_setup(itdb_kind k, const char *tcase)
{
	if (k == ITDB_SQLITE) {
		fprintf(stderr, "SKIPPED: %s: sqlite has no server to stop\n", tcase);
		return false;
	}
	if (!itdb_usable(k))
		return false;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, tcase, k));
	itdb_init(&db, &w, k, "state.db");
	return true;
}

/* wait_inactive re-reads the actors of l until none is active (idle
 * deactivation has no event a test could wait on: re-check every 50 ms,
 * bounded by the timeout). */
static void wait_inactive(itl_load *l, int64_t timeout_ms)
{
	int64_t end = it_now_ms() + timeout_ms;
	for (size_t i = 0; i < l->n_actors; i++) {
		for (;;) {
			Spawn__Gateway__V1__ActorStateView *v =
			    get_view(l->system, l->actors[i].name);
			bool active = v->active;
			protobuf_c_message_free_unpacked(&v->base, NULL);
			if (!active)
				break;
			ck_assert_msg(it_now_ms() < end, "%s/%s is still active", l->system,
			              l->actors[i].name);
			poll(NULL, 0, 50);
		}
	}
}

/* read_back verifies every actor of l from a fresh gateway on the store. */
static void read_back(itl_load *l, const char *gwname)
{
	it_gw g;
	itdb_gateway_start(&w, &db, &g, gwname, NULL, NULL);
	adm = adm_create(g.target);
	verify_actors(l, 0, false, "stored");
	adm_destroy(adm);
	adm = NULL;
	it_gateway_stop(&g);
}

/* Actors that go idle while the server is down cannot make their final
 * save: they stay active (and keep serving), and are saved and freed once
 * it is back. An actor that is not active cannot be activated meanwhile
 * (UNAVAILABLE), and can be afterwards. */
START_TEST(idle_actors_wait_for_the_database_to_come_back)
{
	itdb_kind k = (itdb_kind)_i;
	if (!fault_setup(k, "outage_idle"))
		return;
	const char *gargs[] = {"--deactivate-timeout", "300", "--snapshot-interval", "600000",
	                       NULL};
	it_gw gw;
	itdb_gateway_start(&w, &db, &gw, "gw", gargs, NULL);
	it_proc *host = it_host_start(&w, "host", gw.target, NULL);
	ck_assert_int_eq(spawn_client_create(&client, gw.target), SPAWN_OK);
	adm = adm_create(gw.target);
	char prefix[64], fresh[64], msg[256];
	itdb_unique(prefix, sizeof prefix, "idle");
	itdb_unique(fresh, sizeof fresh, "fresh");
	static itl_load l;
	itl_init(&l, client, "it", "counters", prefix, FAULT_ACTORS, 1, 0);
	/* Calls keep the actors active while the server stops. */
	itl_allow(&l, ITL_UNLIMITED);
	since active = {0, 1};
	ck_assert(itl_wait(&l, each_ok_since, &active, it_ms(60000)));
	itdb_server_stop(&w, &db);
	int64_t t_down = it_now_ms();
	since s = {t_down, FAULT_ACTORS * 20};
	ck_assert(itl_wait(&l, calls_since, &s, it_ms(60000)));
	ck_assert(itl_stop(&l, it_ms(60000)));
	ck_assert_int_eq(itl_count(&l, SIZE_MAX, ITL_NOT_OK, 0), 0);
	/* Now idle, with changes the store does not have. */
	for (size_t i = 0; i < l.n_actors; i++) {
		Spawn__Gateway__V1__ActorStateView *v = get_view("it", l.actors[i].name);
		ck_assert_msg(v->active && v->dirty,
		              "it/%s: active %d dirty %d with the server down", l.actors[i].name,
		              v->active, v->dirty);
		protobuf_c_message_free_unpacked(&v->base, NULL);
	}
	int rc = add_one("it", fresh, 1, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_UNAVAILABLE, "activating an actor with the server down: %s (%s)",
	              spawn_status_name(rc), msg);
	verify_actors(&l, 0, true, "idle, server down");

	itdb_server_start(&w, &db);
	wait_inactive(&l, it_ms(30000));
	ck_assert_int_eq(add_one("it", fresh, 1, msg, sizeof msg), SPAWN_OK);
	adm_destroy(adm);
	adm = NULL;
	spawn_client_destroy(client);
	client = NULL;
	it_gateway_stop(&gw);
	it_host_stop(host);
	read_back(&l, "gw-read");
	itl_fini(&l);
}
END_TEST

/* SIGTERM while the server is down: the gateway keeps retrying its final
 * saves; the server comes back during the drain, everything is saved and
 * the gateway exits 0. */
START_TEST(sigterm_during_an_outage_saves_once_the_database_is_back)
{
	itdb_kind k = (itdb_kind)_i;
	if (!fault_setup(k, "outage_sigterm"))
		return;
	const char *gargs[] = {"--snapshot-interval", "600000", NULL};
	it_gw gw;
	itdb_gateway_start(&w, &db, &gw, "gw", gargs, NULL);
	it_proc *host = it_host_start(&w, "host", gw.target, NULL);
	ck_assert_int_eq(spawn_client_create(&client, gw.target), SPAWN_OK);
	char prefix[64];
	itdb_unique(prefix, sizeof prefix, "term");
	static itl_load l;
	itl_init(&l, client, "it", "counters", prefix, FAULT_ACTORS, FAULT_WINDOW, 0);
	itl_allow(&l, FAULT_WARMUP);
	ck_assert(itl_wait(&l, itl_idle, NULL, it_ms(60000)));
	itdb_server_stop(&w, &db);
	itl_allow(&l, FAULT_WARMUP);
	ck_assert(itl_wait(&l, itl_idle, NULL, it_ms(60000)));
	ck_assert_int_eq(itl_count(&l, SIZE_MAX, ITL_NOT_OK, 0), 0);
	spawn_client_destroy(client);
	client = NULL;

	int64_t t0 = it_now_ms();
	it_proc_signal(gw.p, SIGTERM);
	itdb_server_start(&w, &db);
	bool done = it_proc_wait_exit(gw.p, it_ms(60000));
	if (!done || it_exit_code(gw.p) != 0)
		it_proc_dump(gw.p);
	ck_assert_msg(done, "the gateway did not exit after SIGTERM");
	ck_assert_int_eq(it_exit_code(gw.p), 0);
	fprintf(stderr, "outage_sigterm (%s): exited %" PRId64 " ms after SIGTERM\n",
	        itdb_kind_name(k), it_now_ms() - t0);
	it_host_stop(host);
	read_back(&l, "gw-read");
	itl_fini(&l);
}
END_TEST

/* ---- damaged rows ------------------------------------------------------------------------- */

START_TEST(a_damaged_row_is_data_loss_for_that_actor_only)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "damaged", k));
	itdb_init(&db, &w, k, "state.db");
	/* Only SIGTERM saves: one revision per gateway run. */
	const char *gargs[] = {"--snapshot-interval", "600000", NULL};
	it_gw gw;
	itdb_gateway_start(&w, &db, &gw, "gw", gargs, NULL);
	it_proc *host = it_host_start(&w, "host", gw.target, NULL);
	ck_assert_int_eq(spawn_client_create(&client, gw.target), SPAWN_OK);
	static const char *const actors[] = {"good", "flipped", "truncated", "unknown-key"};
	char msg[256];
	for (size_t i = 0; i < 4; i++)
		for (int j = 0; j < 2; j++)
			ck_assert_int_eq(itl_add(client, "it", actors[i], "counters", 1, 0, NULL,
			                         msg, sizeof msg),
			                 SPAWN_OK);
	spawn_client_destroy(client);
	client = NULL;
	it_gateway_stop(&gw); /* saves all four */
	it_host_stop(host);

	long long rev[4];
	for (size_t i = 0; i < 4; i++) {
		rev[i] = itdb_revision(&db, "it", actors[i]);
		ck_assert_int_ge(rev[i], 1);
	}
	ck_assert(itdb_flip_byte(&db, "it", "flipped"));
	ck_assert(itdb_truncate(&db, "it", "truncated", 10));
	ck_assert(itdb_set_key_id(&db, "it", "unknown-key", "nokey"));

	it_gw g2;
	itdb_gateway_start(&w, &db, &g2, "gw2", gargs, NULL);
	it_proc *host2 = it_host_start(&w, "host2", g2.target, NULL);
	ck_assert_int_eq(spawn_client_create(&client, g2.target), SPAWN_OK);
	adm = adm_create(g2.target);
	for (size_t i = 1; i < 4; i++) {
		for (int j = 0; j < 2; j++) {
			int rc = itl_add(client, "it", actors[i], "counters", 1, 0, NULL, msg,
			                 sizeof msg);
			ck_assert_msg(rc == SPAWN_DATA_LOSS, "Add on the %s row: %s (%s)",
			              actors[i], spawn_status_name(rc), msg);
			ck_assert_msg(strstr(msg, actors[i]), "message does not name the actor: %s",
			              msg);
		}
		Spawn__Gateway__V1__ActorStateView *v = NULL;
		int rc = adm_get_state(adm, "it", actors[i], 0, &v, msg, sizeof msg);
		ck_assert_msg(rc == GRPC_STATUS_DATA_LOSS, "GetState of the %s row: %s (%s)",
		              actors[i], adm_status_name(rc), msg);
		/* The others keep working in between. */
		It__Total *t = NULL;
		ck_assert_int_eq(
		    itl_add(client, "it", "good", "counters", 1, 0, &t, msg, sizeof msg), SPAWN_OK);
		ck_assert_int_eq(t->total, 2 + (int64_t)i);
		protobuf_c_message_free_unpacked(&t->base, NULL);
	}
	adm_destroy(adm);
	adm = NULL;
	spawn_client_destroy(client);
	client = NULL;
	it_gateway_stop(&g2);
	it_host_stop(host2);
	/* Nothing overwrote the damaged rows. */
	for (size_t i = 1; i < 4; i++)
		ck_assert_int_eq(itdb_revision(&db, "it", actors[i]), rev[i]);
	ck_assert_int_eq(itdb_revision(&db, "it", "good"), rev[0] + 1);
}
END_TEST

/* ---- a COMMIT whose answer is lost -------------------------------------------------------- */

/* wait_revision re-reads the stored revision (raw SQL) until it is at
 * least min (no event to wait on: re-check every 20 ms, bounded). */
static void wait_revision(const char *system, const char *actor, long long min)
{
	int64_t end = it_now_ms() + it_ms(10000);
	while (itdb_revision(&db, system, actor) < min) {
		ck_assert_msg(it_now_ms() < end, "%s/%s: revision %lld never stored", system, actor,
		              min);
		poll(NULL, 0, 20);
	}
}

/* wait_settled re-reads the actor until no save is owed (clean, or no
 * longer active). */
static void wait_settled(const char *system, const char *actor)
{
	int64_t end = it_now_ms() + it_ms(20000);
	for (;;) {
		Spawn__Gateway__V1__ActorStateView *v = get_view(system, actor);
		bool settled = !v->active || !v->dirty;
		protobuf_c_message_free_unpacked(&v->base, NULL);
		if (settled)
			return;
		ck_assert_msg(it_now_ms() < end, "%s/%s stays dirty", system, actor);
		poll(NULL, 0, 20);
	}
}

/* stored_seqs reads the actor from a fresh gateway straight on the
 * server (no host, nothing active) into seqs (cap entries); returns how
 * many. */
static size_t stored_seqs(const char *gwname, const char *system, const char *actor, int64_t *seqs,
                          size_t cap)
{
	it_gw g;
	itdb_gateway_start(&w, &db, &g, gwname, NULL, NULL);
	adm = adm_create(g.target);
	Spawn__Gateway__V1__ActorStateView *v = get_view(system, actor);
	It__Counter *st = adm_counter(v);
	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(st->total, (int64_t)st->n_seqs);
	size_t n = st->n_seqs < cap ? st->n_seqs : cap;
	memcpy(seqs, st->seqs, n * sizeof *seqs);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	protobuf_c_message_free_unpacked(&v->base, NULL);
	adm_destroy(adm);
	adm = NULL;
	it_gateway_stop(&g);
	return n;
}

/* The gateway reaches the server through a proxy that loses the answer
 * to one COMMIT: the save did happen, the gateway sees EUNAVAIL. Its
 * retry (same expected revision) then finds its own write and gets
 * ECONFLICT, which must not be mistaken for another gateway's write. */
typedef struct lost_run {
	it_gw gw;
	it_proc *host;
	char actor[64];
} lost_run;

static bool lost_setup(itdb_kind k, const char *tcase, bool checkpoint, lost_run *r)
{
	if (k == ITDB_SQLITE) {
		fprintf(stderr, "SKIPPED: %s: sqlite has no connection to cut\n", tcase);
		return false;
	}
	if (!itdb_usable(k))
		return false;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, tcase, k));
	itdb_init(&db, &w, k, "state.db");
	proxy = itp_start(itdb_server_port(&db));
	itdb via = db;
	itdb_via_port(&db, itp_port(proxy), via.url, sizeof via.url);
	/* Snapshots 100 ms after a change; a failed save retries after 200 ms. */
	const char *gargs[] = {"--snapshot-interval", "100", "--deactivate-timeout", "600000",
	                       NULL};
	itdb_gateway_start(&w, &via, &r->gw, "gw", gargs, NULL);
	const char *hargs[] = {checkpoint ? "--checkpoint" : NULL, NULL};
	r->host = it_host_start(&w, "host", r->gw.target, hargs);
	ck_assert_int_eq(spawn_client_create(&client, r->gw.target), SPAWN_OK);
	adm = adm_create(r->gw.target);
	itdb_unique(r->actor, sizeof r->actor, "lost");
	return true;
}

static void lost_stop(lost_run *r)
{
	adm_destroy(adm);
	adm = NULL;
	spawn_client_destroy(client);
	client = NULL;
	it_gateway_stop(&r->gw);
	it_host_stop(r->host);
}

/* Snapshot mode: an add acknowledged between the lost answer and the
 * retry lives only in memory; it must still reach the store. */
START_TEST(a_lost_commit_answer_loses_no_snapshot)
{
	lost_run r;
	if (!lost_setup((itdb_kind)_i, "lost_commit_snapshot", false, &r))
		return;
	char msg[256];
	ck_assert_int_eq(add_one("it", r.actor, 1, msg, sizeof msg), SPAWN_OK);
	wait_revision("it", r.actor, 1);
	wait_settled("it", r.actor);
	itp_arm(proxy, 1);
	ck_assert_int_eq(add_one("it", r.actor, 2, msg, sizeof msg), SPAWN_OK);
	ck_assert_msg(itp_wait_cuts(proxy, 1, it_ms(10000)), "the snapshot's COMMIT never came");
	/* Before the retry (200 ms later): acknowledged, in memory only. */
	ck_assert_int_eq(add_one("it", r.actor, 3, msg, sizeof msg), SPAWN_OK);
	wait_settled("it", r.actor);
	lost_stop(&r);

	int64_t seqs[16];
	size_t n = stored_seqs("gw-read", "it", r.actor, seqs, 16);
	ck_assert_msg(n == 3 && seqs[0] == 1 && seqs[1] == 2 && seqs[2] == 3,
	              "%zu adds stored (first %" PRId64 ", last %" PRId64 "), 3 acknowledged: the "
	              "one acknowledged between the lost COMMIT answer and the retry is lost",
	              n, n ? seqs[0] : 0, n ? seqs[n - 1] : 0);
}
END_TEST

/* Checkpoint mode: the add whose answer was lost reports UNAVAILABLE (it
 * may or may not be stored); every acknowledged add is stored, no refused
 * one is, and the next calls work: no other gateway was involved. */
START_TEST(a_lost_commit_answer_fails_only_its_checkpoint)
{
	lost_run r;
	if (!lost_setup((itdb_kind)_i, "lost_commit_checkpoint", true, &r))
		return;
	char msg[256];
	ck_assert_int_eq(add_one("it", r.actor, 1, msg, sizeof msg), SPAWN_OK);
	itp_arm(proxy, 1);
	int rc2 = add_one("it", r.actor, 2, msg, sizeof msg);
	ck_assert_msg(itp_wait_cuts(proxy, 1, it_ms(10000)), "the checkpoint's COMMIT never came");
	ck_assert_msg(rc2 == SPAWN_UNAVAILABLE, "the add whose COMMIT answer was lost: %s (%s)",
	              spawn_status_name(rc2), msg);
	bool acked[8] = {false, true, false};
	char refusals[512] = "";
	for (int64_t seq = 3; seq <= 5; seq++) {
		int rc = add_one("it", r.actor, seq, msg, sizeof msg);
		acked[seq] = rc == SPAWN_OK;
		if (rc != SPAWN_OK) {
			size_t len = strlen(refusals);
			snprintf(refusals + len, sizeof refusals - len,
			         " [add %" PRId64 ": %s: %s]", seq, spawn_status_name(rc), msg);
		}
	}
	lost_stop(&r);

	int64_t seqs[16];
	size_t n = stored_seqs("gw-read", "it", r.actor, seqs, 16);
	bool stored[8] = {false};
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(seqs[i] >= 1 && seqs[i] <= 5 && !stored[seqs[i]], "seq %" PRId64,
		              seqs[i]);
		stored[seqs[i]] = true;
	}
	for (int s = 1; s <= 5; s++) {
		ck_assert_msg(!acked[s] || stored[s], "acknowledged add %d is lost", s);
		ck_assert_msg(acked[s] || s == 2 || !stored[s], "refused add %d is stored", s);
	}
	ck_assert_msg(!refusals[0], "later adds refused after one lost COMMIT answer:%s", refusals);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration_dbfault");
	const itdb_case outage[] = {
	    {"outage", the_database_going_away_loses_nothing_acknowledged, 240},
	};
	const itdb_case damaged[] = {
	    {"damaged", a_damaged_row_is_data_loss_for_that_actor_only, 60},
	};
	itdb_add_cases(s, outage, 1, "postgres,mariadb", teardown);
	const itdb_case idle[] = {
	    {"outage_idle", idle_actors_wait_for_the_database_to_come_back, 120},
	    {"outage_sigterm", sigterm_during_an_outage_saves_once_the_database_is_back, 120},
	};
	itdb_add_cases(s, idle, 2, "postgres,mariadb", teardown);
	const itdb_case lost[] = {
	    {"lost_commit_snapshot", a_lost_commit_answer_loses_no_snapshot, 60},
	    {"lost_commit_checkpoint", a_lost_commit_answer_fails_only_its_checkpoint, 60},
	};
	itdb_add_cases(s, lost, 2, "postgres,mariadb", teardown);
	itdb_add_cases(s, damaged, 1, "postgres,mariadb", teardown);
	itdb_launcher_start();
	return it_run(s);
}
