/* it_durability_test.c - state across gateway deaths and restarts:
 * checkpoints survive kill -9, snapshots give an earlier consistent
 * revision, SIGTERM loses nothing, the Python Incrementor keeps counting
 * over a restart, and a wrong key is refused at start-up.
 */
#include <ctype.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <spawn/spawn.h>

#include "harness.h"
#include "incrementor/incrementor.pb-c.h"
#include "itc.h"
#include "store_peek.h"

static it_world w;
static spawn_client *client;

static bool file_mentions(const char *path, const char *word);

static void teardown(void)
{
	spawn_client_destroy(client);
	client = NULL;
	it_world_fini(&w);
}

/* use_gateway points the test's client at a (new) gateway. */
static void use_gateway(const it_gw *gw)
{
	spawn_client_destroy(client);
	client = NULL;
	ck_assert_int_eq(spawn_client_create(&client, gw->target), SPAWN_OK);
}

static void expect_add(itc_actor a, int64_t value, int64_t seq, int64_t want)
{
	int64_t total = -1;
	char msg[200];
	int rc = itc_add(client, a, value, seq, &total, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "Add(%" PRId64 ") on %s: %s: %s", value, a.name,
	              spawn_status_name(rc), msg);
	ck_assert_int_eq(total, want);
}

/* get_total returns the full it.Total of a (asserts the call succeeds). */
static It__Total *get_total(itc_actor a)
{
	spawn_reply r;
	int rc = itc_invoke(client, a, "Get", NULL, it_ms(30000), &r);
	ck_assert_msg(rc == SPAWN_OK, "Get on %s: %s: %s", a.name, spawn_status_name(rc),
	              r.message ? r.message : "");
	It__Total *t = itc_total(&r);
	spawn_reply_fini(&r);
	ck_assert_msg(t != NULL, "Get on %s: reply is not an it.Total", a.name);
	return t;
}

static void expect_get(itc_actor a, int64_t want)
{
	It__Total *t = get_total(a);
	ck_assert_msg(t->total == want, "%s: total %" PRId64 ", expected %" PRId64, a.name,
	              t->total, want);
	protobuf_c_message_free_unpacked(&t->base, NULL);
}

/* ---- 5. checkpoints survive kill -9 ------------------------------------------------ */

enum { CKPT_ADDS = 40, CKPT_ACTORS = 20, CKPT_ACTOR_ADDS = 5 };

START_TEST(checkpointed_adds_survive_a_gateway_kill)
{
	it_world_init(&w, "checkpoint_kill");
	/* Snapshots far away: only the checkpoints can have saved anything. */
	const char *gargs[] = {"--snapshot-interval", "600000", NULL};
	const char *hargs[] = {"--checkpoint", NULL};
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);
	it_proc *host = it_host_start(&w, "host", gw.target, hargs);
	use_gateway(&gw);

	for (int i = 1; i <= CKPT_ADDS; i++)
		expect_add(ITC_COUNTER, 1, i, i);
	/* And many actors checkpointing at once (group commits). */
	static char names[CKPT_ACTORS][16];
	itc_batch b;
	itc_batch_init(&b, CKPT_ACTORS * CKPT_ACTOR_ADDS);
	for (int a = 0; a < CKPT_ACTORS; a++) {
		snprintf(names[a], sizeof names[a], "k-%02d", a);
		for (int k = 0; k < CKPT_ACTOR_ADDS; k++) {
			It__Add add = IT__ADD__INIT;
			add.value = 1;
			ck_assert_int_eq(itc_batch_start(&b, (size_t)(a * CKPT_ACTOR_ADDS + k),
			                                 client, (itc_actor){names[a], "counters"},
			                                 "Add", &add.base, it_ms(30000)),
			                 SPAWN_OK);
		}
	}
	ck_assert(itc_batch_wait(&b, b.n, it_ms(30000)));
	for (size_t i = 0; i < b.n; i++)
		ck_assert_msg(b.res[i].status == SPAWN_OK, "checkpointed add %zu: %s: %s", i,
		              spawn_status_name(b.res[i].status), b.res[i].msg);
	itc_batch_fini(&b);

	it_proc_kill(gw.p);
	it_host_stop(host);

	it_gw gw2;
	it_gateway_start(&w, &gw2, "gw2", "state.db", gargs, NULL);
	it_proc *host2 = it_host_start(&w, "host2", gw2.target, hargs);
	use_gateway(&gw2);
	It__Total *t = get_total(ITC_COUNTER);
	ck_assert_int_eq(t->total, CKPT_ADDS);
	ck_assert_int_eq(t->adds, CKPT_ADDS);
	ck_assert_uint_eq(t->n_seqs, CKPT_ADDS);
	for (size_t i = 0; i < t->n_seqs; i++)
		ck_assert_int_eq(t->seqs[i], (int64_t)i + 1);
	protobuf_c_message_free_unpacked(&t->base, NULL);
	for (int a = 0; a < CKPT_ACTORS; a++)
		expect_get((itc_actor){names[a], "counters"}, CKPT_ACTOR_ADDS);

	/* Saves go on from the stored revision: a second round, a second
	 * kill, and everything acknowledged is there. */
	for (int i = CKPT_ADDS + 1; i <= 2 * CKPT_ADDS; i++)
		expect_add(ITC_COUNTER, 1, i, i);
	it_proc_kill(gw2.p);
	it_host_stop(host2);
	it_gw gw3;
	it_gateway_start(&w, &gw3, "gw3", "state.db", gargs, NULL);
	it_proc *host3 = it_host_start(&w, "host3", gw3.target, hargs);
	use_gateway(&gw3);
	expect_get(ITC_COUNTER, 2 * CKPT_ADDS);

	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host3);
	it_gateway_stop(&gw3);
}
END_TEST

/* ---- kill -9 in the middle of checkpoints ----------------------------------------------- */

enum { CHAIN_ACTORS = 100, CHAIN_KILL_AFTER = 600 };

/* Each actor runs a chain of checkpointed adds (the next one starts when
 * the previous one is acknowledged), all chains at once; the gateway is
 * killed while they run. */
typedef struct chain {
	spawn_client *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long acked_total, outstanding;
	int64_t acked[CHAIN_ACTORS]; /* seqs 1..acked[i] acknowledged */
	char names[CHAIN_ACTORS][16];
	struct chain_slot {
		struct chain *ch;
		int i;
	} slots[CHAIN_ACTORS];
} chain;

/* chain_start starts Add(seq) on actor i; the caller has counted it in
 * outstanding. */
static void chain_start(chain *ch, int i, int64_t seq);

/* Runs on the client's callback thread. An acknowledged add is replaced by
 * the next one (outstanding unchanged); a failed one ends the chain. */
static void chain_reply(void *user, spawn_reply *r)
{
	struct chain_slot *sl = user;
	chain *ch = sl->ch;
	bool ok = r->status == SPAWN_OK;
	pthread_mutex_lock(&ch->mu);
	int64_t next = 0;
	if (ok) {
		ch->acked[sl->i]++;
		ch->acked_total++;
		next = ch->acked[sl->i] + 1;
	} else {
		ch->outstanding--;
	}
	pthread_cond_broadcast(&ch->cv);
	pthread_mutex_unlock(&ch->mu);
	if (ok)
		chain_start(ch, sl->i, next);
}

static void chain_start(chain *ch, int i, int64_t seq)
{
	It__Add add = IT__ADD__INIT;
	add.value = 1;
	add.seq = seq;
	spawn_payload p = {0};
	int rc = spawn_payload_pack(&p, &add.base);
	if (rc == SPAWN_OK) {
		spawn_request req = {.system = ITC_SYSTEM,
		                     .actor = ch->names[i],
		                     .parent = "counters",
		                     .action = "Add",
		                     .payload = p};
		rc = spawn_client_invoke_async(ch->c, &req, 30000, chain_reply, &ch->slots[i]);
	}
	if (rc != SPAWN_OK) {
		pthread_mutex_lock(&ch->mu);
		ch->outstanding--;
		pthread_cond_broadcast(&ch->cv);
		pthread_mutex_unlock(&ch->mu);
	}
	spawn_payload_fini(&p);
}

START_TEST(a_kill_during_checkpoints_keeps_every_acknowledged_add)
{
	it_world_init(&w, "kill_during_checkpoints");
	const char *gargs[] = {"--snapshot-interval", "600000", NULL};
	const char *hargs[] = {"--checkpoint", NULL};
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);
	it_proc *host = it_host_start(&w, "host", gw.target, hargs);
	use_gateway(&gw);

	static chain ch;
	memset(&ch, 0, sizeof ch);
	ch.c = client;
	pthread_mutex_init(&ch.mu, NULL);
	pthread_cond_init(&ch.cv, NULL);
	for (int i = 0; i < CHAIN_ACTORS; i++) {
		snprintf(ch.names[i], sizeof ch.names[i], "ck-%03d", i);
		ch.slots[i] = (struct chain_slot){&ch, i};
		pthread_mutex_lock(&ch.mu);
		ch.outstanding++;
		pthread_mutex_unlock(&ch.mu);
		chain_start(&ch, i, 1);
	}
	/* The acknowledgement count is the clock: no sleeping. */
	pthread_mutex_lock(&ch.mu);
	while (ch.acked_total < CHAIN_KILL_AFTER && ch.outstanding > 0)
		pthread_cond_wait(&ch.cv, &ch.mu);
	pthread_mutex_unlock(&ch.mu);
	it_proc_kill(gw.p);
	/* Every chain ends with the error of its call in flight. */
	pthread_mutex_lock(&ch.mu);
	while (ch.outstanding > 0)
		pthread_cond_wait(&ch.cv, &ch.mu);
	long acked = ch.acked_total;
	pthread_mutex_unlock(&ch.mu);
	ck_assert_int_ge(acked, CHAIN_KILL_AFTER);
	it_host_stop(host);

	it_gw gw2;
	it_gateway_start(&w, &gw2, "gw2", "state.db", gargs, NULL);
	it_proc *host2 = it_host_start(&w, "host2", gw2.target, hargs);
	use_gateway(&gw2);
	long extra = 0;
	for (int i = 0; i < CHAIN_ACTORS; i++) {
		It__Total *t = get_total((itc_actor){ch.names[i], "counters"});
		/* Every acknowledged add is there, plus at most the one that was in
		 * flight (saved, but its answer lost with the gateway), in order. */
		ck_assert_msg(t->adds == ch.acked[i] || t->adds == ch.acked[i] + 1,
		              "%s: %" PRId64 " adds stored, %" PRId64 " acknowledged", ch.names[i],
		              t->adds, ch.acked[i]);
		extra += t->adds - ch.acked[i];
		ck_assert_uint_eq(t->n_seqs, (size_t)t->adds);
		for (size_t q = 0; q < t->n_seqs; q++)
			ck_assert_int_eq(t->seqs[q], (int64_t)q + 1);
		protobuf_c_message_free_unpacked(&t->base, NULL);
	}
	fprintf(stderr,
	        "kill_during_checkpoints: %ld adds acknowledged before kill -9, %ld more were "
	        "saved without an answer\n",
	        acked, extra);
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host2);
	it_gateway_stop(&gw2);
	pthread_cond_destroy(&ch.cv);
	pthread_mutex_destroy(&ch.mu);
}
END_TEST

/* ---- 6. snapshot mode after kill -9 -------------------------------------------------- */

enum { SNAP_ADDS = 150 };

/* snapshot_run: SNAP_ADDS unacknowledged-by-store adds (Add i with value i
 * and seq i) under the given snapshot interval, kill -9, restart: the
 * state loads, and is a prefix 1..k of the adds (k in [0, N]). Returns k. */
static int64_t snapshot_run(const char *interval, const char *gwname, const char *db)
{
	const char *gargs[] = {"--snapshot-interval", interval, NULL};
	char gwname2[32], hname[32], hname2[32];
	snprintf(gwname2, sizeof gwname2, "%s-restart", gwname);
	snprintf(hname, sizeof hname, "%s-host", gwname);
	snprintf(hname2, sizeof hname2, "%s-host2", gwname);
	it_gw gw;
	it_gateway_start(&w, &gw, gwname, db, gargs, NULL);
	it_proc *host = it_host_start(&w, hname, gw.target, NULL);
	use_gateway(&gw);
	int64_t want = 0;
	for (int i = 1; i <= SNAP_ADDS; i++)
		expect_add(ITC_COUNTER, i, i, want += i);
	it_proc_kill(gw.p);
	it_host_stop(host);

	it_gw gw2;
	it_gateway_start(&w, &gw2, gwname2, db, gargs, NULL);
	it_proc *host2 = it_host_start(&w, hname2, gw2.target, NULL);
	use_gateway(&gw2);
	It__Total *t = get_total(ITC_COUNTER);
	int64_t k = t->adds;
	ck_assert_msg(k >= 0 && k <= SNAP_ADDS, "adds %" PRId64 " outside [0, %d]", k, SNAP_ADDS);
	/* A consistent revision: exactly the first k adds, in order. */
	ck_assert_uint_eq(t->n_seqs, (size_t)k);
	for (size_t i = 0; i < t->n_seqs; i++)
		ck_assert_int_eq(t->seqs[i], (int64_t)i + 1);
	ck_assert_int_eq(t->total, k * (k + 1) / 2);
	protobuf_c_message_free_unpacked(&t->base, NULL);
	/* And it goes on from there. */
	expect_add(ITC_COUNTER, k + 1, k + 1, (k + 1) * (k + 2) / 2);

	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host2);
	it_gateway_stop(&gw2);
	return k;
}

START_TEST(after_a_kill_snapshots_give_an_earlier_consistent_revision)
{
	it_world_init(&w, "snapshot_kill");
	int64_t long_k = snapshot_run("600000", "gw-long", "long.db");
	int64_t short_k = snapshot_run("20", "gw-short", "short.db");
	fprintf(stderr,
	        "snapshot_kill: %d adds, kill -9: long interval kept %" PRId64
	        ", 20 ms interval kept %" PRId64 "\n",
	        SNAP_ADDS, long_k, short_k);
}
END_TEST

/* ---- deactivation --------------------------------------------------------------------- */

/* An idle actor is deactivated after a final save (snapshots are far
 * away, so only that save can have written it), and activates again
 * from the store. */
START_TEST(an_idle_actor_is_saved_and_comes_back_from_the_store)
{
	it_world_init(&w, "deactivation");
	const char *gargs[] = {"--deactivate-timeout", "100", "--snapshot-interval", "600000",
	                       NULL};
	char db[600];
	it_path(&w, "state.db", db, sizeof db);
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);
	it_proc *host = it_host_start(&w, "host", gw.target, NULL);
	use_gateway(&gw);

	expect_add(ITC_COUNTER, 7, 1, 7);
	ck_assert_msg(it_store_wait_revision(db, "it", "counter", 1, it_ms(10000)),
	              "no save after the actor went idle");
	/* Activated again from the store. */
	It__Total *t = get_total(ITC_COUNTER);
	ck_assert_int_eq(t->total, 7);
	ck_assert_uint_eq(t->n_seqs, 1);
	protobuf_c_message_free_unpacked(&t->base, NULL);
	expect_add(ITC_COUNTER, 1, 2, 8);
	ck_assert_msg(it_store_wait_revision(db, "it", "counter", 2, it_ms(10000)),
	              "no save after the second idle period");

	/* Nothing but those saves kept it: a kill -9 loses nothing now. */
	it_proc_kill(gw.p);
	it_host_stop(host);
	it_gw gw2;
	it_gateway_start(&w, &gw2, "gw2", "state.db", gargs, NULL);
	it_proc *host2 = it_host_start(&w, "host2", gw2.target, NULL);
	use_gateway(&gw2);
	expect_get(ITC_COUNTER, 8);
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host2);
	it_gateway_stop(&gw2);
}
END_TEST

/* ---- a damaged row ----------------------------------------------------------------------- */

/* A row that fails authentication is never handed to a host as state:
 * calls to that actor fail with DATA_LOSS (again on every try, and
 * nothing overwrites the row), other actors are not affected. */
START_TEST(a_damaged_state_is_data_loss_for_that_actor_only)
{
	it_world_init(&w, "damaged_row");
	char db[600];
	it_path(&w, "state.db", db, sizeof db);
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", NULL, NULL);
	it_proc *host = it_host_start(&w, "host", gw.target, NULL);
	use_gateway(&gw);
	itc_actor good = {"good", "counters"}, bad = {"bad", "counters"};
	expect_add(good, 3, 0, 3);
	expect_add(bad, 4, 0, 4);
	spawn_client_destroy(client);
	client = NULL;
	it_gateway_stop(&gw);
	it_host_stop(host);
	int64_t rev = it_store_revision(db, "it", "bad");
	ck_assert_int_ge(rev, 1);
	ck_assert(it_store_tamper(db, "it", "bad"));

	it_gw gw2;
	it_gateway_start(&w, &gw2, "gw2", "state.db", NULL, NULL);
	it_proc *host2 = it_host_start(&w, "host2", gw2.target, NULL);
	use_gateway(&gw2);
	for (int i = 0; i < 2; i++) {
		int64_t total = -1;
		char msg[200];
		int rc = itc_add(client, bad, 1, 0, &total, msg, sizeof msg);
		ck_assert_msg(rc == SPAWN_DATA_LOSS,
		              "Add on a damaged row: %s (%s), total %" PRId64,
		              spawn_status_name(rc), msg, total);
		ck_assert_msg(strstr(msg, "bad"), "message does not name the actor: %s", msg);
	}
	expect_get(good, 3);
	expect_add(good, 1, 0, 4);
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host2);
	it_gateway_stop(&gw2);
	/* The damaged row was left alone. */
	ck_assert_int_eq(it_store_revision(db, "it", "bad"), rev);
}
END_TEST

/* ---- 7. SIGTERM loses nothing ---------------------------------------------------------- */

/* More actors than one --save-batch (256): the final flush takes several. */
enum { TERM_ADDS = 100, TERM_ACTORS = 300, TERM_ACTOR_ADDS = 3 };

START_TEST(sigterm_saves_every_change)
{
	it_world_init(&w, "sigterm");
	const char *gargs[] = {"--snapshot-interval", "600000", NULL};
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);
	it_proc *host = it_host_start(&w, "host", gw.target, NULL);
	use_gateway(&gw);

	for (int i = 1; i <= TERM_ADDS; i++)
		expect_add(ITC_COUNTER, 1, 0, i);
	static char names[TERM_ACTORS][16];
	itc_batch b;
	itc_batch_init(&b, TERM_ACTORS * TERM_ACTOR_ADDS);
	for (int a = 0; a < TERM_ACTORS; a++) {
		snprintf(names[a], sizeof names[a], "t-%02d", a);
		for (int k = 0; k < TERM_ACTOR_ADDS; k++) {
			It__Add add = IT__ADD__INIT;
			add.value = 1;
			ck_assert_int_eq(itc_batch_start(&b, (size_t)(a * TERM_ACTOR_ADDS + k),
			                                 client, (itc_actor){names[a], "counters"},
			                                 "Add", &add.base, it_ms(30000)),
			                 SPAWN_OK);
		}
	}
	ck_assert(itc_batch_wait(&b, b.n, it_ms(30000)));
	for (size_t i = 0; i < b.n; i++)
		ck_assert_msg(b.res[i].status == SPAWN_OK, "add %zu: %s: %s", i,
		              spawn_status_name(b.res[i].status), b.res[i].msg);
	itc_batch_fini(&b);

	it_gateway_stop(&gw); /* SIGTERM: exit 0 after saving */
	it_host_stop(host);

	it_gw gw2;
	it_gateway_start(&w, &gw2, "gw2", "state.db", gargs, NULL);
	it_proc *host2 = it_host_start(&w, "host2", gw2.target, NULL);
	use_gateway(&gw2);
	expect_get(ITC_COUNTER, TERM_ADDS);
	for (int a = 0; a < TERM_ACTORS; a++)
		expect_get((itc_actor){names[a], "counters"}, TERM_ACTOR_ADDS);

	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host2);
	it_gateway_stop(&gw2);
}
END_TEST

/* SIGTERM while a call hangs in a host and another waits behind it: the
 * drain ends, both callers get an error, the gateway still saves and
 * exits 0, and the state is the last acknowledged one. */
START_TEST(sigterm_with_calls_in_flight_still_saves_and_exits_cleanly)
{
	it_world_init(&w, "sigterm_in_flight");
	const char *gargs[] = {"--snapshot-interval", "600000", "--drain", "300", NULL};
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);
	it_proc *host = it_host_start(&w, "host", gw.target, NULL);
	use_gateway(&gw);
	expect_add(ITC_COUNTER, 5, 0, 5);

	itc_batch b;
	itc_batch_init(&b, 2);
	ck_assert_int_eq(itc_batch_start(&b, 0, client, ITC_COUNTER, "Hang", NULL, it_ms(60000)),
	                 SPAWN_OK);
	ck_assert(it_proc_wait_line(host, "hanging counter", it_ms(10000), NULL, 0));
	It__Add add = IT__ADD__INIT;
	add.value = 100;
	ck_assert_int_eq(
	    itc_batch_start(&b, 1, client, ITC_COUNTER, "Add", &add.base, it_ms(60000)), SPAWN_OK);
	int64_t t0 = it_now_ms();
	it_gateway_stop(&gw);
	fprintf(stderr, "sigterm_in_flight: gateway exited %" PRId64 " ms after SIGTERM\n",
	        it_now_ms() - t0);
	ck_assert(itc_batch_wait(&b, 2, it_ms(10000)));
	for (int i = 0; i < 2; i++)
		ck_assert_msg(b.res[i].status != SPAWN_OK, "call %d succeeded during shutdown", i);
	fprintf(stderr, "sigterm_in_flight: Hang -> %s (%s), queued Add -> %s (%s)\n",
	        spawn_status_name(b.res[0].status), b.res[0].msg,
	        spawn_status_name(b.res[1].status), b.res[1].msg);
	itc_batch_fini(&b);
	it_host_stop(host);

	it_gw gw2;
	it_gateway_start(&w, &gw2, "gw2", "state.db", gargs, NULL);
	it_proc *host2 = it_host_start(&w, "host2", gw2.target, NULL);
	use_gateway(&gw2);
	expect_get(ITC_COUNTER, 5);
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host2);
	it_gateway_stop(&gw2);
}
END_TEST

/* ---- 7b. SIGTERM while the statestore is stuck ---------------------------------------------- */

/* wait_mentions re-reads a log file every 20 ms until it mentions word
 * (lower case), for at most timeout_ms: a readiness wait on a process
 * whose only signal is its log. */
static bool wait_mentions(const char *path, const char *word, int64_t timeout_ms)
{
	int64_t end = it_now_ms() + timeout_ms;
	for (;;) {
		if (file_mentions(path, word))
			return true;
		if (it_now_ms() >= end)
			return false;
		poll(NULL, 0, 20);
	}
}

/* stuck_store_shutdown: counter holds 7 in memory only; the database's
 * write lock is taken by another connection, then the gateway gets
 * SIGTERM with a short --flush-timeout. Returns the gateway, its save
 * blocked in the statestore past the flush timeout; the lock is still
 * held (*lock). */
static it_proc *stuck_store_shutdown(const char *persist_drain, void **lock, it_proc **host)
{
	const char *gargs[] = {
	    "--snapshot-interval", "600000", "--flush-timeout", "300", "--persist-drain",
	    persist_drain,         NULL};
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);
	*host = it_host_start(&w, "host", gw.target, NULL);
	use_gateway(&gw);
	expect_add(ITC_COUNTER, 7, 0, 7); /* snapshot mode: in memory only */
	char db[600];
	it_path(&w, "state.db", db, sizeof db);
	ck_assert_int_eq(it_store_revision(db, "it", "counter"), 0);
	*lock = it_store_lock(db, it_ms(5000));
	ck_assert_ptr_nonnull(*lock);
	it_proc_signal(gw.p, SIGTERM);
	/* The flush gave up while the save waits for the lock. */
	bool flushed = wait_mentions(gw.p->errlog, "not every actor state", it_ms(10000));
	if (!flushed)
		it_proc_dump(gw.p);
	ck_assert_msg(flushed, "the gateway did not report its flush timeout");
	/* The actor is named on the next line, which may not be written yet. */
	ck_assert_msg(wait_mentions(gw.p->errlog, "not saved: it/counter", it_ms(5000)),
	              "the gateway did not name the actor it could not save");
	return gw.p;
}

/* The save completes only after the flush timeout: shutdown drains the
 * statestore thread while the actors are alive, then frees (no
 * use-after-free under ASan), and exits 0 since the state got saved. */
START_TEST(sigterm_with_a_store_locked_past_the_flush_timeout_drains_then_frees)
{
	it_world_init(&w, "sigterm_stuck_store");
	void *lock = NULL;
	it_proc *host = NULL;
	it_proc *gw = stuck_store_shutdown("10000", &lock, &host);
	ck_assert(!it_proc_wait_exit(gw, 0)); /* still draining */
	it_store_unlock(lock);
	bool done = it_proc_wait_exit(gw, it_ms(20000));
	if (!done || it_exit_code(gw) != 0)
		it_proc_dump(gw);
	ck_assert_msg(done, "gateway did not exit after the lock was released");
	ck_assert_msg(!file_mentions(gw->errlog, "sanitizer"), "sanitizer report");
	ck_assert_int_eq(it_exit_code(gw), 0);
	char db[600];
	it_path(&w, "state.db", db, sizeof db);
	ck_assert_int_eq(it_store_revision(db, "it", "counter"), 1);
	it_host_stop(host);
}
END_TEST

/* The lock outlasts --persist-drain as well: the gateway gives up waiting
 * for the statestore thread, names what it could not save, and exits 1 at
 * once without freeing what that thread uses (no report under ASan). */
START_TEST(sigterm_with_a_store_locked_past_the_persist_drain_gives_up_and_exits_1)
{
	it_world_init(&w, "sigterm_store_gone");
	void *lock = NULL;
	it_proc *host = NULL;
	it_proc *gw = stuck_store_shutdown("300", &lock, &host);
	bool done = it_proc_wait_exit(gw, it_ms(20000));
	if (!done || it_exit_code(gw) != 1)
		it_proc_dump(gw);
	ck_assert_msg(done, "gateway did not give up on the statestore thread");
	it_store_unlock(lock);
	ck_assert_msg(!file_mentions(gw->errlog, "sanitizer"), "sanitizer report");
	ck_assert_msg(file_mentions(gw->errlog, "statestore thread is still inside a call"),
	              "the gateway did not say why it gave up");
	ck_assert_int_eq(it_exit_code(gw), 1);
	char db[600];
	it_path(&w, "state.db", db, sizeof db);
	ck_assert_int_eq(it_store_revision(db, "it", "counter"), 0);
	it_host_stop(host);
}
END_TEST

/* ---- 8. the Python Incrementor over a restart ---------------------------------------------- */

/* incr_add calls the Incrementor's Add (examples.incrementor) and returns
 * the total it replies. */
static int64_t incr_add(int64_t value)
{
	Examples__Incrementor__Add add = EXAMPLES__INCREMENTOR__ADD__INIT;
	add.value = value;
	spawn_payload p;
	ck_assert_int_eq(spawn_payload_pack(&p, &add.base), SPAWN_OK);
	spawn_request req = {
	    .system = "spawn-system", .actor = "incrementor", .action = "Add", .payload = p};
	spawn_reply r;
	int rc = spawn_client_invoke(client, &req, &r, it_ms(30000));
	spawn_payload_fini(&p);
	ck_assert_msg(rc == SPAWN_OK, "incrementor Add: %s: %s", spawn_status_name(rc),
	              r.message ? r.message : "");
	Examples__Incrementor__Total *t = NULL;
	ck_assert_int_eq(spawn_payload_unpack(&r.payload, &examples__incrementor__total__descriptor,
	                                      (ProtobufCMessage **)&t),
	                 SPAWN_OK);
	int64_t total = t->total;
	protobuf_c_message_free_unpacked(&t->base, NULL);
	spawn_reply_fini(&r);
	return total;
}

START_TEST(the_python_incrementor_counts_on_after_a_gateway_restart)
{
	it_world_init(&w, "python_incrementor");
	/* The host dials a unix socket that outlives the gateway process, so
	 * it reconnects by itself, as in the Spawn blog's Incrementor. */
	char sock[600], listen[620], proto_out[600], script[600];
	it_path(&w, "gw.sock", sock, sizeof sock);
	snprintf(listen, sizeof listen, "unix:%s", sock);
	const char *gargs[] = {"--listen", listen, NULL};
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);

	snprintf(proto_out, sizeof proto_out, "%s/python-gen", it_build_dir());
	snprintf(script, sizeof script, "%s/examples/incrementor/python/host.py", it_source_dir());
	ck_assert_msg(access(proto_out, R_OK) == 0, "%s missing (target python_proto)", proto_out);
	const char *argv[] = {"/usr/bin/python3", script,    "--gateway", listen,
	                      "--proto-out",      proto_out, NULL};
	const char *env[] = {"PYTHONDONTWRITEBYTECODE=1", NULL};
	it_proc *py = it_spawn(&w, "py", argv, env);
	if (!it_proc_wait_line(py, "registered", it_ms(30000), NULL, 0)) {
		it_proc_dump(py);
		ck_abort_msg("the Python host did not register");
	}
	use_gateway(&gw);
	ck_assert_int_eq(incr_add(1), 1);
	ck_assert_int_eq(incr_add(1), 2);

	it_gateway_stop(&gw);
	unlink(sock);
	it_gw gw2;
	it_gateway_start(&w, &gw2, "gw2", "state.db", gargs, NULL);
	if (!it_proc_wait_line(py, "registered", it_ms(30000), NULL, 0)) {
		it_proc_dump(py);
		ck_abort_msg("the Python host did not register again after the restart");
	}
	use_gateway(&gw2);
	ck_assert_int_eq(incr_add(1), 3);

	spawn_client_destroy(client);
	client = NULL;
	it_proc_signal(py, SIGTERM);
	ck_assert(it_proc_wait_exit(py, it_ms(20000)));
	ck_assert_int_eq(it_exit_code(py), 0);
	it_gateway_stop(&gw2);
}
END_TEST

/* ---- 10. a wrong key ---------------------------------------------------------------- */

/* Two keys: base64 of bytes 0..31 and of 32 bytes of 0xA5. */
#define KEY_RIGHT "SPAWN_STATESTORE_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_WRONG "SPAWN_STATESTORE_KEY=paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaU="

static bool file_mentions(const char *path, const char *word)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char line[1024];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		for (char *p = line; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		found = strstr(line, word) != NULL;
	}
	fclose(f);
	return found;
}

/* expect_refused starts a gateway on db with env and asserts it exits 2
 * without listening, saying on stderr that the key is wrong. */
static void expect_refused(const char *name, const char *db, const char *const env[])
{
	it_proc *p = it_gateway_spawn(&w, name, db, NULL, env);
	bool exited = it_proc_wait_exit(p, it_ms(15000));
	if (!exited || it_exit_code(p) != 2)
		it_proc_dump(p);
	ck_assert_msg(exited, "the gateway kept running with a wrong key");
	ck_assert_int_eq(it_exit_code(p), 2);
	ck_assert_int_eq(it_proc_count_lines(p, "listening"), 0);
	ck_assert_msg(file_mentions(p->errlog, "key"), "stderr does not mention the key");
}

START_TEST(a_wrong_key_is_refused_at_start_up)
{
	it_world_init(&w, "wrong_key");
	const char *right[] = {KEY_RIGHT, NULL};
	const char *wrong[] = {KEY_WRONG, NULL};
	it_gw gw;
	it_gateway_start(&w, &gw, "gw", "state.db", NULL, right);
	it_proc *host = it_host_start(&w, "host", gw.target, NULL);
	use_gateway(&gw);
	expect_add(ITC_COUNTER, 7, 0, 7);
	spawn_client_destroy(client);
	client = NULL;
	it_gateway_stop(&gw);
	it_host_stop(host);

	expect_refused("gw-wrong", "state.db", wrong);
	/* Without a key the gateway makes a key file, which does not match
	 * either: refused, and the file it made is gone again. */
	expect_refused("gw-nokey", "state.db", NULL);
	char stray[600];
	ck_assert_msg(access(it_path(&w, "state.db.key", stray, sizeof stray), F_OK) != 0,
	              "a refused start left %s behind", stray);

	/* The refused start changed nothing: the right key still opens it. */
	it_gw gw3;
	it_gateway_start(&w, &gw3, "gw3", "state.db", NULL, right);
	it_proc *host3 = it_host_start(&w, "host3", gw3.target, NULL);
	use_gateway(&gw3);
	expect_get(ITC_COUNTER, 7);
	spawn_client_destroy(client);
	client = NULL;
	it_host_stop(host3);
	it_gateway_stop(&gw3);

	/* The same with the key file the gateway creates beside a new db. */
	it_gw gw4;
	it_gateway_start(&w, &gw4, "gw4", "filekey.db", NULL, NULL);
	char keyfile[600];
	ck_assert_int_eq(access(it_path(&w, "filekey.db.key", keyfile, sizeof keyfile), R_OK), 0);
	it_gateway_stop(&gw4);
	expect_refused("gw5-wrong", "filekey.db", wrong);
	/* A key file others can read is refused too, until it is private. */
	ck_assert_int_eq(chmod(keyfile, 0644), 0);
	it_proc *p = it_gateway_spawn(&w, "gw6-public", "filekey.db", NULL, NULL);
	ck_assert(it_proc_wait_exit(p, it_ms(15000)));
	if (it_exit_code(p) != 2)
		it_proc_dump(p);
	ck_assert_int_eq(it_exit_code(p), 2);
	ck_assert_msg(file_mentions(p->errlog, "chmod"), "stderr does not say how to fix it");
	ck_assert_int_eq(chmod(keyfile, 0600), 0);
	it_gw gw7;
	it_gateway_start(&w, &gw7, "gw7", "filekey.db", NULL, NULL);
	it_gateway_stop(&gw7);
}
END_TEST

static Suite *durability_suite(void)
{
	Suite *s = suite_create("integration_durability");
	struct {
		const char *name;
		const TTest *test;
		double timeout;
	} cases[] = {
	    {"checkpoint_kill", checkpointed_adds_survive_a_gateway_kill, 60},
	    {"kill_during_checkpoints", a_kill_during_checkpoints_keeps_every_acknowledged_add, 60},
	    {"snapshot_kill", after_a_kill_snapshots_give_an_earlier_consistent_revision, 60},
	    {"deactivation", an_idle_actor_is_saved_and_comes_back_from_the_store, 60},
	    {"damaged_row", a_damaged_state_is_data_loss_for_that_actor_only, 60},
	    {"sigterm", sigterm_saves_every_change, 60},
	    {"sigterm_in_flight", sigterm_with_calls_in_flight_still_saves_and_exits_cleanly, 60},
	    {"sigterm_stuck_store",
	     sigterm_with_a_store_locked_past_the_flush_timeout_drains_then_frees, 60},
	    {"sigterm_store_gone",
	     sigterm_with_a_store_locked_past_the_persist_drain_gives_up_and_exits_1, 60},
	    {"python_incrementor", the_python_incrementor_counts_on_after_a_gateway_restart, 90},
	    {"wrong_key", a_wrong_key_is_refused_at_start_up, 60},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_checked_fixture(tc, NULL, teardown);
		tcase_set_timeout(tc, (double)it_ms((int64_t)cases[i].timeout));
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	return it_run(durability_suite());
}
