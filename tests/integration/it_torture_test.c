/* it_torture_test.c - N SIGKILLs of the gateway under concurrent load in
 * checkpoint mode, on SQLite and on the fixture's private PostgreSQL
 * server (issue 9, item 8).
 *
 * A cycle: start a gateway on the store and it-host --checkpoint; client
 * threads (TT_THREADS, one shared libspawn client) call Add(1, seq) on the
 * UNNAMED instances tt-000.. of `counters`, each call a fresh seq per actor;
 * once a random number of adds of this cycle were acknowledged (readiness
 * on completions, never a sleep) the gateway gets SIGKILL with calls in
 * flight; the threads stop, the host is killed, and the next cycle starts
 * a fresh gateway on the same store. After the last kill a clean gateway
 * without a host reads every actor's stored state (Admin.GetState).
 *
 * Every call is classified:
 *   acknowledged       OK, with the total it returned;
 *   failed-definitely  an answer that guarantees nothing was applied
 *                      (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION,
 *                      RESOURCE_EXHAUSTED: refused before or without a
 *                      state change);
 *   unknown            anything else (UNAVAILABLE, DEADLINE_EXCEEDED,
 *                      CANCELLED, ... around a kill).
 * The checker (check_actor) requires per actor:
 *   1. acknowledged <= stored <= acknowledged + unknown (stored = the
 *      stored total; it-host keeps total == adds == number of seqs);
 *   2. no two acknowledged adds returned the same total;
 *   3. every acknowledged seq is stored, once; every stored seq is one of
 *      an acknowledged or unknown call, never of a failed-definitely one.
 * A self-test feeds the checker records that break each rule.
 *
 * Profiles: IT_TORTURE_KILLS sets the kills of every store (make torture:
 * 100); unset, 20 on SQLite and 10 on PostgreSQL (make test). IT_TORTURE_SEED
 * fixes the random kill points (printed on stderr either way). IT_STORES
 * selects the stores (default sqlite; the _db entry runs postgres).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <spawn/spawn.h>

#include "adm.h"
#include "harness.h"
#include "itdb.h"
#include "itl.h"

enum {
	TT_THREADS = 4,
	TT_ACTORS = 8,
	TT_KILL_MIN = 10,  /* acknowledged adds of a cycle before its kill: at least */
	TT_KILL_SPAN = 200 /* ... plus up to this many more */
};

typedef enum tt_class { TT_ACK, TT_FAILED, TT_UNKNOWN } tt_class;

typedef struct tt_call {
	int64_t seq;
	tt_class cls;
	int status;
	int64_t total; /* TT_ACK: the total the add returned */
} tt_call;

typedef struct tt_actor {
	char name[32];
	tt_call *v;
	size_t n, cap;
	int64_t next_seq;
} tt_actor;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	tt_actor actors[TT_ACTORS];
	long acked_cycle; /* acknowledged adds in the current cycle */
	long calls_cycle;
	bool stop;
	spawn_client *client; /* the current cycle's */
	char system[64];
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

static it_world w;
static itdb db;
static adm_client *adm;

static void teardown(void)
{
	adm_destroy(adm);
	adm = NULL;
	spawn_client_destroy(L.client);
	L.client = NULL;
	for (size_t i = 0; i < TT_ACTORS; i++) {
		free(L.actors[i].v);
		L.actors[i].v = NULL;
	}
	it_world_fini(&w);
	itdb_fini(&db);
}

static tt_class classify(int status)
{
	switch (status) {
	case SPAWN_OK:
		return TT_ACK;
	case SPAWN_INVALID_ARGUMENT:
	case SPAWN_NOT_FOUND:
	case SPAWN_FAILED_PRECONDITION:
	case SPAWN_RESOURCE_EXHAUSTED:
		return TT_FAILED;
	default:
		return TT_UNKNOWN;
	}
}

static void record(tt_actor *a, const tt_call *c)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 256;
		a->v = realloc(a->v, a->cap * sizeof *a->v);
		if (!a->v)
			abort(); /* the test's own bookkeeping */
	}
	a->v[a->n++] = *c;
}

/* ---- the checker ------------------------------------------------------------------ */

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a < b ? -1 : a > b;
}

static const tt_call *find_seq(const tt_actor *a, int64_t seq)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].seq == seq)
			return &a->v[i];
	return NULL;
}

/* check_actor applies rules 1-3 to actor a's record and its stored state
 * (total, and the seqs it holds). True, or false with the first broken
 * rule in why. */
static bool check_actor(const tt_actor *a, int64_t stored, const int64_t *seqs, size_t n_seqs,
                        char *why, size_t n)
{
	long ack = 0, unknown = 0, failed = 0;
	int64_t *totals = malloc((a->n + 1) * sizeof *totals);
	int64_t *sorted = malloc((n_seqs + 1) * sizeof *sorted);
	if (!totals || !sorted)
		abort();
	bool ok = false;
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i].cls == TT_ACK)
			totals[ack++] = a->v[i].total;
		else if (a->v[i].cls == TT_UNKNOWN)
			unknown++;
		else
			failed++;
	}
	if (stored < ack || stored > ack + unknown) {
		snprintf(why, n,
		         "%s: stored %" PRId64 " outside [acknowledged %ld, acknowledged + unknown "
		         "%ld] (%ld failed-definitely)",
		         a->name, stored, ack, ack + unknown, failed);
		goto out;
	}
	qsort(totals, (size_t)ack, sizeof *totals, cmp_i64);
	for (long i = 1; i < ack; i++)
		if (totals[i] == totals[i - 1]) {
			snprintf(why, n, "%s: two acknowledged adds returned total %" PRId64,
			         a->name, totals[i]);
			goto out;
		}
	if (n_seqs != (size_t)stored) {
		snprintf(why, n, "%s: stored total %" PRId64 " but %zu seqs", a->name, stored,
		         n_seqs);
		goto out;
	}
	if (n_seqs)
		memcpy(sorted, seqs, n_seqs * sizeof *sorted);
	qsort(sorted, n_seqs, sizeof *sorted, cmp_i64);
	for (size_t i = 0; i < n_seqs; i++) {
		if (i && sorted[i] == sorted[i - 1]) {
			snprintf(why, n, "%s: seq %" PRId64 " applied twice", a->name, sorted[i]);
			goto out;
		}
		const tt_call *c = find_seq(a, sorted[i]);
		if (!c || c->cls == TT_FAILED) {
			snprintf(why, n, "%s: seq %" PRId64 " stored, but %s", a->name, sorted[i],
			         c ? "its call failed definitely" : "no such call was made");
			goto out;
		}
	}
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].cls == TT_ACK &&
		    !bsearch(&a->v[i].seq, sorted, n_seqs, sizeof *sorted, cmp_i64)) {
			snprintf(why, n,
			         "%s: acknowledged seq %" PRId64 " (total %" PRId64
			         ") is not stored",
			         a->name, a->v[i].seq, a->v[i].total);
			goto out;
		}
	ok = true;
out:
	free(totals);
	free(sorted);
	return ok;
}

START_TEST(the_checker_catches_each_broken_rule)
{
	tt_actor a = {.name = "self"};
	tt_call calls[] = {
	    {1, TT_ACK, 0, 1}, {2, TT_UNKNOWN, 14, 0}, {3, TT_ACK, 0, 2}, {4, TT_FAILED, 5, 0}};
	for (size_t i = 0; i < 4; i++)
		record(&a, &calls[i]);
	char why[256];
	int64_t good[] = {1, 3}, with_unknown[] = {1, 2, 3};
	ck_assert_msg(check_actor(&a, 2, good, 2, why, sizeof why), "%s", why);
	ck_assert_msg(check_actor(&a, 3, with_unknown, 3, why, sizeof why), "%s", why);
	/* 1. an acknowledged add lost; more stored than could have been */
	int64_t lost[] = {1};
	ck_assert(!check_actor(&a, 1, lost, 1, why, sizeof why));
	ck_assert_ptr_nonnull(strstr(why, "outside"));
	int64_t four[] = {1, 2, 3, 4};
	ck_assert(!check_actor(&a, 4, four, 4, why, sizeof why));
	/* 3. a failed-definitely add applied (the bounds hold) */
	int64_t failed[] = {1, 3, 4};
	ck_assert(!check_actor(&a, 3, failed, 3, why, sizeof why));
	ck_assert_ptr_nonnull(strstr(why, "failed definitely"));
	/* 3. the right count, but an acknowledged seq missing */
	int64_t swapped[] = {1, 2};
	ck_assert(!check_actor(&a, 2, swapped, 2, why, sizeof why));
	ck_assert_ptr_nonnull(strstr(why, "not stored"));
	/* 2. two acknowledged adds with one total */
	a.v[2].total = 1;
	ck_assert(!check_actor(&a, 2, good, 2, why, sizeof why));
	ck_assert_ptr_nonnull(strstr(why, "returned total"));
	free(a.v);
}
END_TEST

/* ---- load ---------------------------------------------------------------------------- */

static void *load_thread(void *arg)
{
	size_t idx = (size_t)(uintptr_t)arg, k = 0;
	for (;;) {
		pthread_mutex_lock(&L.mu);
		bool stop = L.stop;
		size_t ai = (idx * 3 + k++) % TT_ACTORS;
		tt_actor *a = &L.actors[ai];
		int64_t seq = ++a->next_seq;
		spawn_client *c = L.client;
		pthread_mutex_unlock(&L.mu);
		if (stop)
			return NULL;
		It__Total *t = NULL;
		char msg[256];
		int rc = itl_add(c, L.system, a->name, "counters", 1, seq, &t, msg, sizeof msg);
		tt_call call = {.seq = seq, .cls = classify(rc), .status = rc};
		if (rc == SPAWN_OK)
			call.total = t ? t->total : -1;
		if (t)
			protobuf_c_message_free_unpacked(&t->base, NULL);
		pthread_mutex_lock(&L.mu);
		record(a, &call);
		L.calls_cycle++;
		if (call.cls == TT_ACK)
			L.acked_cycle++;
		pthread_cond_broadcast(&L.cv);
		pthread_mutex_unlock(&L.mu);
	}
}

/* wait_acked waits until the current cycle has n acknowledged adds.
 * False on timeout (the gateway stopped serving). */
static bool wait_acked(long n, int64_t timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&L.mu);
	int e = 0;
	while (L.acked_cycle < n && e == 0)
		e = pthread_cond_timedwait(&L.cv, &L.mu, &ts);
	bool ok = L.acked_cycle >= n;
	pthread_mutex_unlock(&L.mu);
	return ok;
}

static int kills_for(itdb_kind k)
{
	const char *v = getenv("IT_TORTURE_KILLS");
	if (v && atoi(v) > 0)
		return atoi(v);
	return k == ITDB_SQLITE ? 20 : 10;
}

static unsigned seed_of(void)
{
	const char *v = getenv("IT_TORTURE_SEED");
	if (v && *v)
		return (unsigned)strtoul(v, NULL, 10);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned)(ts.tv_nsec ^ ts.tv_sec ^ getpid());
}

START_TEST(acknowledged_adds_survive_sigkills_under_load)
{
	itdb_kind kind = (itdb_kind)_i;
	if (!itdb_usable(kind))
		return;
	char cname[96];
	it_world_init(&w, itdb_case_name(cname, sizeof cname, "torture", kind));
	itdb_init(&db, &w, kind, "state.db");
	itdb_unique(L.system, sizeof L.system, "tt");
	for (size_t i = 0; i < TT_ACTORS; i++) {
		memset(&L.actors[i], 0, sizeof L.actors[i]);
		snprintf(L.actors[i].name, sizeof L.actors[i].name, "tt-%03zu", i);
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&L.cv, &ca);
	pthread_condattr_destroy(&ca);
	int kills = kills_for(kind);
	unsigned seed = seed_of();
	fprintf(stderr, "torture %s: %d kills, IT_TORTURE_SEED=%u\n", itdb_kind_name(kind), kills,
	        seed);
	int64_t t0 = it_now_ms();
	long total_calls = 0;
	for (int cycle = 0; cycle < kills; cycle++) {
		char gname[32], hname[32];
		snprintf(gname, sizeof gname, "gw-%03d", cycle);
		snprintf(hname, sizeof hname, "host-%03d", cycle);
		static const char *const gargs[] = {"--log-level", "warn", NULL};
		it_gw g;
		itdb_gateway_start(&w, &db, &g, gname, gargs, NULL);
		const char *hargs[] = {"--checkpoint", "--system", L.system,
		                       "--workers",    "4",        NULL};
		it_proc *host = it_host_start(&w, hname, g.target, hargs);
		L.client = NULL;
		ck_assert_int_eq(spawn_client_create(&L.client, g.target), SPAWN_OK);
		pthread_mutex_lock(&L.mu);
		L.stop = false;
		L.acked_cycle = L.calls_cycle = 0;
		pthread_mutex_unlock(&L.mu);
		pthread_t th[TT_THREADS];
		for (size_t i = 0; i < TT_THREADS; i++)
			ck_assert_int_eq(
			    pthread_create(&th[i], NULL, load_thread, (void *)(uintptr_t)i), 0);
		long at = TT_KILL_MIN + (long)(rand_r(&seed) % TT_KILL_SPAN);
		bool served = wait_acked(at, it_ms(30000));
		/* The kill, with calls in flight (the threads start no new call
		 * from here on; those in flight end with the connection). */
		pthread_mutex_lock(&L.mu);
		L.stop = true;
		pthread_mutex_unlock(&L.mu);
		it_proc_kill(g.p);
		for (size_t i = 0; i < TT_THREADS; i++)
			pthread_join(th[i], NULL);
		pthread_mutex_lock(&L.mu);
		total_calls += L.calls_cycle;
		long acked = L.acked_cycle;
		pthread_mutex_unlock(&L.mu);
		ck_assert_msg(served, "cycle %d: only %ld of %ld adds acknowledged in 30 s", cycle,
		              acked, at);
		spawn_client_destroy(L.client);
		L.client = NULL;
		it_proc_kill(host);
		it_proc_release(host);
		it_proc_release(g.p);
	}
	int64_t t_load = it_now_ms() - t0;

	/* A clean gateway without a host: what the store holds. */
	it_gw g;
	itdb_gateway_start(&w, &db, &g, "gw-final", NULL, NULL);
	adm = adm_create(g.target);
	long ack = 0, unknown = 0, failed = 0, stored_all = 0;
	for (size_t i = 0; i < TT_ACTORS; i++) {
		tt_actor *a = &L.actors[i];
		Spawn__Gateway__V1__ActorStateView *v = NULL;
		char msg[256];
		int rc = adm_get_state(adm, L.system, a->name, 0, &v, msg, sizeof msg);
		It__Counter *st = NULL;
		if (rc == GRPC_STATUS_OK) {
			st = adm_counter(v);
			ck_assert_msg(st != NULL, "%s: state is not an it.Counter", a->name);
		} else {
			/* Never saved: only possible when no add was acknowledged. */
			ck_assert_msg(rc == GRPC_STATUS_NOT_FOUND, "GetState %s: %s: %s", a->name,
			              adm_status_name(rc), msg);
		}
		char why[512];
		bool ok = check_actor(a, st ? st->total : 0, st ? st->seqs : NULL,
		                      st ? st->n_seqs : 0, why, sizeof why);
		for (size_t k = 0; k < a->n; k++) {
			ack += a->v[k].cls == TT_ACK;
			unknown += a->v[k].cls == TT_UNKNOWN;
			failed += a->v[k].cls == TT_FAILED;
		}
		stored_all += st ? st->total : 0;
		if (st)
			protobuf_c_message_free_unpacked(&st->base, NULL);
		if (v)
			protobuf_c_message_free_unpacked(&v->base, NULL);
		ck_assert_msg(ok, "%s", why);
	}
	fprintf(stderr,
	        "torture %s: %d SIGKILLs in %.1f s, %ld calls: %ld acknowledged, %ld unknown, "
	        "%ld failed-definitely; %ld stored (%ld of the unknown applied); checker OK\n",
	        itdb_kind_name(kind), kills, (double)t_load / 1000.0, total_calls, ack, unknown,
	        failed, stored_all, stored_all - ack);
	it_gateway_stop(&g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration_torture");
	TCase *tc = tcase_create("checker");
	tcase_add_test(tc, the_checker_catches_each_broken_rule);
	suite_add_tcase(s, tc);
	/* About 2 s per kill on SQLite under a sanitizer-free build; the
	 * timeout scales with the profile. */
	int most = 20;
	const char *v = getenv("IT_TORTURE_KILLS");
	if (v && atoi(v) > most)
		most = atoi(v);
	const itdb_case cases[] = {
	    {"torture", acknowledged_adds_survive_sigkills_under_load, 60.0 + 8.0 * most},
	};
	itdb_add_cases(s, cases, 1, "sqlite", teardown);
	itdb_launcher_start();
	return it_run(s);
}
