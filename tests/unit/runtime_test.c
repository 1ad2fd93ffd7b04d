/* runtime_test.c - the actor runtime against a fake host and a real
 * SQLite statestore: mailbox order and bounds, state threading, errors,
 * checkpoints, deadlines, activation and deactivation. */
#include <check.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gm.h"
#include "rt_fixture.h"
#include "runtime_int.h" /* gwi_sys_hash: schedule row ids */
#include "workflow.h"

#define SYS "test-system"

/* ---- fault injection: saves that fail on demand -------------------------------- *
 * The test links with -Wl,--wrap=gw_store_save_batch: every batch the
 * persist thread writes passes through here. save_fail > 0 makes the batch
 * after the next save_pass ones fail with GW_EUNAVAIL (as a database that
 * went away would), one batch per count. */
static atomic_int save_pass, save_fail;
gw_err __real_gw_store_save_batch(gw_store *s, const gw_state *states, size_t n, gw_err *results);
gw_err __wrap_gw_store_save_batch(gw_store *s, const gw_state *states, size_t n, gw_err *results);
gw_err __wrap_gw_store_save_batch(gw_store *s, const gw_state *states, size_t n, gw_err *results)
{
	if (atomic_load(&save_fail) > 0) {
		if (atomic_fetch_sub(&save_pass, 1) <= 0) {
			atomic_fetch_sub(&save_fail, 1);
			for (size_t i = 0; i < n; i++)
				results[i] = GW_EUNAVAIL;
			return GW_EUNAVAIL;
		}
	}
	return __real_gw_store_save_batch(s, states, n, results);
}

/* ---- fixture (rt_fixture.h) -------------------------------------------------- */

static void register_actors(bool stateful, int64_t snapshot_ms, int64_t deactivate_ms)
{
	Spawn__Actors__TimeoutStrategy snap_t = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT,
	                               deact_t = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	snap_t.timeout = snapshot_ms;
	deact_t.timeout = deactivate_ms;
	Spawn__Actors__ActorSnapshotStrategy snap = SPAWN__ACTORS__ACTOR_SNAPSHOT_STRATEGY__INIT;
	snap.strategy_case = SPAWN__ACTORS__ACTOR_SNAPSHOT_STRATEGY__STRATEGY_TIMEOUT;
	snap.timeout = &snap_t;
	Spawn__Actors__ActorDeactivationStrategy deact =
	    SPAWN__ACTORS__ACTOR_DEACTIVATION_STRATEGY__INIT;
	deact.strategy_case = SPAWN__ACTORS__ACTOR_DEACTIVATION_STRATEGY__STRATEGY_TIMEOUT;
	deact.timeout = &deact_t;
	Spawn__Actors__ActorSettings st = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	st.kind = SPAWN__ACTORS__KIND__NAMED;
	st.stateful = stateful;
	st.snapshot_strategy = &snap;
	st.deactivation_strategy = &deact;
	st.state_type = STATE_TYPE;
	/* One registration entry per actor name the tests use: a0..a999, x1000..x1049. */
	static char names[1050][16];
	static rtf_actor actors[1050];
	for (int i = 0; i < 1050; i++) {
		snprintf(names[i], sizeof names[i], i < 1000 ? "a%d" : "x%d", i);
		actors[i] = (rtf_actor){names[i], &st};
	}
	char why[512] = "";
	ck_assert_int_eq(rtf_register(&host, SYS, actors, 1050,
	                              (const char *const[]){"Add", "Get", NULL}, why, sizeof why),
	                 GW_OK);
}

static void setup_with(uint32_t mailbox, bool stateful, int64_t snapshot_ms, int64_t deactivate_ms)
{
	rtf_open("rt");
	ck_assert_int_eq(gw_registry_create(&reg, NULL), GW_OK);
	register_actors(stateful, snapshot_ms, deactivate_ms);
	gw_runtime_opts ro = {.shards = 4, .mailbox_max = mailbox, .host_timeout_ms = 60000};
	ck_assert_int_eq(gw_runtime_create(&rt, &ro, reg, persist), GW_OK);
	atomic_store(&save_pass, 0);
	atomic_store(&save_fail, 0);
}

static void setup(void)
{
	setup_with(100, true, 60000, 60000);
}

static gw_gm *tgm; /* metrics of the test that enables them; outlives rt */

static void teardown(void)
{
	rtf_close();
	gw_gm_destroy(tgm);
	tgm = NULL;
}

/* ---- helpers ------------------------------------------------------------------- */

static gw_inv *inv_new(const char *system, const char *actor, const char *action, int64_t value,
                       int64_t deadline_ms, int tag);

static void invoke_full(const char *system, const char *actor, const char *action, int64_t value,
                        int64_t deadline_ms, int tag)
{
	gw_runtime_invoke(rt, inv_new(system, actor, action, value, deadline_ms, tag));
}

/* invoke_keyed: Add(value) delivered under the gateway's idempotency key
 * (as an outbox delivery arrives: gw_inv.idem_key, out of band) */
static void invoke_keyed(const char *actor, int64_t value, int tag, const char *key)
{
	gw_inv *inv = inv_new(SYS, actor, "Add", value, 0, tag);
	inv->idem_key = spawn_arena_strdup(&inv->arena, key);
	gw_runtime_invoke(rt, inv);
}

static gw_inv *inv_new(const char *system, const char *actor, const char *action, int64_t value,
                       int64_t deadline_ms, int tag)
{
	gw_inv *inv = gw_inv_create(0);
	spawn_arena *a = &inv->arena;
	Spawn__InvocationRequest *rq = rtf_request(a, system, actor, action);
	rq->value = spawn_arena_alloc(a, sizeof *rq->value);
	google__protobuf__any__init(rq->value);
	rq->value->type_url = "type.googleapis.com/test.Add";
	rq->value->value.data = spawn_arena_memdup(a, &value, 8);
	rq->value->value.len = 8;
	rq->payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	inv->req = rq;
	inv->deadline_ms = deadline_ms;
	inv->done = on_done;
	inv->user = (void *)(intptr_t)tag;
	return inv;
}

static void invoke(const char *actor, int64_t value, int tag)
{
	invoke_full(SYS, actor, "Add", value, 0, tag);
}

static int64_t task_payload(size_t i)
{
	const Spawn__ActorInvocation *ai = fake_task_inv(&host, i);
	return ai && ai->value ? decode_i64(ai->value->value.data, ai->value->value.len) : -1;
}

/* the state a task carried: -1 when none */
static int64_t task_state(size_t i)
{
	const Spawn__ActorInvocation *ai = fake_task_inv(&host, i);
	if (!ai || !ai->current_context || !ai->current_context->state)
		return -1;
	return decode_i64(ai->current_context->state->value.data,
	                  ai->current_context->state->value.len);
}

/* answer task i: new state (or -1 to send none), reply value, checkpoint */
static void answer_wf(size_t i, int64_t state, int64_t reply, bool checkpoint, Spawn__Workflow *wf);

static void answer(size_t i, int64_t state, int64_t reply, bool checkpoint)
{
	answer_wf(i, state, reply, checkpoint, NULL);
}

static void answer_full(size_t i, int64_t state, int64_t reply, bool checkpoint,
                        Spawn__Workflow *wf, const char *tag_key, const char *tag_value);

static void answer_wf(size_t i, int64_t state, int64_t reply, bool checkpoint, Spawn__Workflow *wf)
{
	answer_full(i, state, reply, checkpoint, wf, NULL, NULL);
}

/* answer_full: answer_wf, and the turn sets the actor's tags to the one
 * tag_key=tag_value (NULL: the tags stay as they were) */
static void answer_full(size_t i, int64_t state, int64_t reply, bool checkpoint,
                        Spawn__Workflow *wf, const char *tag_key, const char *tag_value)
{
	uint64_t id;
	gw_inv *inv = rtf_take(&host, i, &id);
	Google__Protobuf__Any st = GOOGLE__PROTOBUF__ANY__INIT, rp = GOOGLE__PROTOBUF__ANY__INIT;
	st.type_url = STATE_TYPE;
	st.value.data = (uint8_t *)&state;
	st.value.len = 8;
	rp.type_url = "type.googleapis.com/test.Total";
	rp.value.data = (uint8_t *)&reply;
	rp.value.len = 8;
	Spawn__Context ctx = SPAWN__CONTEXT__INIT;
	if (state >= 0)
		ctx.state = &st;
	Spawn__Context__TagsEntry te = SPAWN__CONTEXT__TAGS_ENTRY__INIT, *tep[] = {&te};
	if (tag_key) {
		te.key = (char *)tag_key;
		te.value = (char *)tag_value;
		ctx.n_tags = 1;
		ctx.tags = tep;
	} else {
		/* the tags the task carried: unchanged */
		const Spawn__ActorInvocation *ai = fake_task_inv(&host, i);
		if (ai && ai->current_context) {
			ctx.n_tags = ai->current_context->n_tags;
			ctx.tags = ai->current_context->tags;
		}
	}
	Spawn__ActorInvocationResponse r = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	r.updated_context = &ctx;
	r.payload_case = SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_VALUE;
	r.value = &rp;
	r.checkpoint = checkpoint;
	r.workflow = wf;
	rtf_respond(inv, id, &r);
}

static void answer_error(size_t i, int code, const char *msg)
{
	pthread_mutex_lock(&host.mu);
	host.tasks[i].answered = true;
	gw_inv *inv = host.tasks[i].inv;
	pthread_mutex_unlock(&host.mu);
	Spawn__Gateway__V1__HostError he = SPAWN__GATEWAY__V1__HOST_ERROR__INIT;
	he.code = code;
	he.message = (char *)msg;
	Spawn__Gateway__V1__InvocationResult res = SPAWN__GATEWAY__V1__INVOCATION_RESULT__INIT;
	res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR;
	res.error = &he;
	gw_runtime_result(rt, inv, &res);
}

static uint64_t stored_revision(const char *actor, int64_t *value)
{
	gw_store *s2;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s2, url, &so), GW_OK);
	gw_actor_key k = {SYS, actor};
	gw_loaded l;
	uint64_t rev = 0;
	if (gw_store_load(s2, &k, &l) == GW_OK) {
		rev = l.revision;
		Spawn__Actors__ActorState *as =
		    spawn__actors__actor_state__unpack(NULL, l.len, l.data);
		ck_assert_ptr_nonnull(as);
		if (value)
			*value = as->state ? decode_i64(as->state->value.data, as->state->value.len)
			                   : -1;
		spawn__actors__actor_state__free_unpacked(as, NULL);
		gw_loaded_fini(&l);
	}
	gw_store_close(s2);
	return rev;
}

/* ---- tests --------------------------------------------------------------------- */

START_TEST(mailbox_runs_one_invocation_at_a_time_in_arrival_order)
{
	for (int i = 1; i <= 5; i++)
		invoke("a1", i, i);
	ck_assert(fake_host_wait(&host, 1));
	for (size_t i = 0; i < 5; i++) {
		/* exactly one task in flight: the next is sent only after an answer */
		ck_assert_int_eq(host.ntasks, i + 1);
		ck_assert_int_eq(task_payload(i), (int64_t)i + 1);
		answer(i, (int64_t)i + 1, (int64_t)i + 1, false);
		if (i < 4)
			ck_assert(fake_host_wait(&host, i + 2));
	}
	ck_assert(wait_outs(5));
	for (size_t i = 0; i < 5; i++) {
		ck_assert_int_eq(outs[i].err, GW_OK);
		ck_assert_int_eq(outs[i].tag, (int)i + 1);
		ck_assert_int_eq(outs[i].reply, (int64_t)i + 1);
	}
}
END_TEST

START_TEST(different_actors_run_concurrently)
{
	invoke("a1", 1, 1);
	invoke("a2", 1, 2);
	invoke("a3", 1, 3);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_int_eq(host.ntasks, 3);
	ck_assert_int_eq(outs_count(), 0);
}
END_TEST

START_TEST(state_returned_by_the_host_reaches_the_next_invocation)
{
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	ck_assert_int_eq(task_state(0), -1); /* a new actor has no state */
	answer(0, 41, 41, false);
	invoke("a1", 1, 2);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_int_eq(task_state(1), 41);
	answer(1, -1, 0, false); /* no state in the answer: keep the current one */
	invoke("a1", 1, 3);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_int_eq(task_state(2), 41);
}
END_TEST

START_TEST(a_full_mailbox_answers_resource_exhausted)
{
	teardown();
	setup_with(2, true, 60000, 60000);
	invoke("a1", 1, 1); /* dispatched */
	ck_assert(fake_host_wait(&host, 1));
	invoke("a1", 2, 2); /* queued */
	invoke("a1", 3, 3); /* queued */
	invoke("a1", 4, 4); /* over the bound */
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].tag, 4);
	ck_assert_int_eq(outs[0].err, GW_EFULL);
	ck_assert_int_eq(gw_err_status(outs[0].err), GRPC_STATUS_RESOURCE_EXHAUSTED);
	/* the queued ones still run, in order */
	answer(0, 1, 1, false);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_int_eq(task_payload(1), 2);
	answer(1, 2, 2, false);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_int_eq(task_payload(2), 3);
}
END_TEST

START_TEST(unknown_names_and_missing_fields_are_refused)
{
	invoke_full(SYS, "nobody", "Add", 1, 0, 1);
	invoke_full("no-system", "a1", "Add", 1, 0, 2);
	invoke_full(SYS, "a1", "NoSuchAction", 1, 0, 3);
	invoke_full(SYS, "", "Add", 1, 0, 4);
	ck_assert(wait_outs(4));
	/* unknown names are looked up among stored instances first, so the
	 * answers come in any order: match them by tag */
	for (size_t k = 0; k < 4; k++) {
		const outcome *o = &outs[k];
		if (o->tag == 1) {
			ck_assert_int_eq(o->err, GW_ENOTFOUND);
			ck_assert_str_eq(o->msg,
			                 "actor 'nobody' not found in system 'test-system'");
		} else if (o->tag == 2) {
			ck_assert_int_eq(o->err, GW_ENOTFOUND);
		} else if (o->tag == 3) {
			ck_assert_int_eq(o->err, GW_ENOTFOUND);
			ck_assert_ptr_nonnull(strstr(o->msg, "NoSuchAction"));
		} else {
			ck_assert_int_eq(o->err, GW_EINVAL);
		}
	}
	ck_assert_int_eq(host.ntasks, 0);
}
END_TEST

START_TEST(no_live_host_answers_unavailable)
{
	host.live = false;
	invoke("a1", 1, 1);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_EUNAVAIL);
	ck_assert_int_eq(gw_err_status(outs[0].err), GRPC_STATUS_UNAVAILABLE);
}
END_TEST

START_TEST(a_host_error_reaches_the_caller_and_keeps_the_state)
{
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 10, 10, false);
	invoke("a1", 1, 2);
	ck_assert(fake_host_wait(&host, 2));
	answer_error(1, GRPC_STATUS_FAILED_PRECONDITION, "counter is frozen");
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_EHOST);
	ck_assert_int_eq(outs[1].host_code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_str_eq(outs[1].msg, "counter is frozen");
	invoke("a1", 1, 3);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_int_eq(task_state(2), 10);
}
END_TEST

START_TEST(an_abandoned_invocation_fails_unavailable_and_keeps_the_state)
{
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 5, 5, false);
	invoke("a1", 1, 2);
	invoke("a1", 1, 3);
	ck_assert(fake_host_wait(&host, 2));
	host.tasks[1].answered = true;
	gw_runtime_abandon(rt, host.tasks[1].inv, GW_EUNAVAIL, "host went away");
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_EUNAVAIL);
	/* the next queued invocation runs with the unchanged state */
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_int_eq(task_state(2), 5);
}
END_TEST

START_TEST(a_checkpointed_reply_waits_for_the_durable_save)
{
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 77, 77, true);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	/* acknowledged, so it must already be in the store */
	int64_t v = 0;
	ck_assert_int_eq(stored_revision("a1", &v), 1);
	ck_assert_int_eq(v, 77);
	invoke("a1", 1, 2);
	ck_assert(fake_host_wait(&host, 2));
	answer(1, 78, 78, true);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(stored_revision("a1", &v), 2);
	ck_assert_int_eq(v, 78);
}
END_TEST

START_TEST(an_unchanged_state_is_not_saved_again)
{
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 9, 9, true);
	ck_assert(wait_outs(1));
	invoke("a1", 1, 2);
	ck_assert(fake_host_wait(&host, 2));
	answer(1, 9, 9, true); /* same state back */
	ck_assert(wait_outs(2));
	ck_assert_int_eq(stored_revision("a1", NULL), 1);
}
END_TEST

START_TEST(a_deadline_that_passes_fails_the_call_and_frees_the_actor)
{
	int64_t now = spawn_now_ns() / 1000000;
	/* 1 s: long enough for the task to be written first on a loaded machine */
	invoke_full(SYS, "a1", "Add", 1, now + 1000, 1);
	invoke("a1", 2, 2);
	ck_assert(fake_host_wait(&host, 1));
	ck_assert(wait_outs(1)); /* the timer fires; no answer is ever sent */
	ck_assert_int_eq(outs[0].err, GW_ETIMEDOUT);
	ck_assert_int_eq(gw_err_status(outs[0].err), GRPC_STATUS_DEADLINE_EXCEEDED);
	/* the actor moves on to the next invocation */
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_int_eq(task_payload(1), 2);
	ck_assert_int_eq(task_state(1), -1);
}
END_TEST

START_TEST(snapshot_interval_saves_a_changed_state_without_a_checkpoint)
{
	teardown();
	setup_with(100, true, 20, 60000);
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 3, 3, false);
	ck_assert(wait_outs(1));
	/* the snapshot timer (20 ms) saves it; flush waits for saves in flight */
	wait_until(stored_revision("a1", NULL) == 1);
	int64_t v = 0;
	ck_assert_int_eq(stored_revision("a1", &v), 1);
	ck_assert_int_eq(v, 3);
}
END_TEST

START_TEST(an_idle_actor_is_deactivated_after_a_final_save_and_reactivated_with_its_state)
{
	teardown();
	setup_with(100, true, 600000, 30);
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 12, 12, false);
	ck_assert(wait_outs(1));
	gw_runtime_stats st;
	gw_runtime_get_stats(rt, &st);
	ck_assert_int_eq(st.active_actors, 1);
	wait_until((gw_runtime_get_stats(rt, &st), st.active_actors == 0));
	ck_assert_int_eq(st.active_actors, 0);
	ck_assert_int_eq(st.deactivations, 1);
	int64_t v = 0;
	ck_assert_int_eq(stored_revision("a1", &v), 1);
	ck_assert_int_eq(v, 12);
	/* reactivation loads it */
	invoke("a1", 1, 2);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_int_eq(task_state(1), 12);
}
END_TEST

START_TEST(flush_saves_every_dirty_actor)
{
	for (int i = 0; i < 50; i++) {
		char n[16];
		snprintf(n, sizeof n, "a%d", i);
		invoke(n, 1, i);
	}
	ck_assert(fake_host_wait(&host, 50));
	for (size_t i = 0; i < 50; i++)
		answer(i, 100 + (int64_t)i, 0, false);
	ck_assert(wait_outs(50));
	ck_assert_int_eq(gw_runtime_flush(rt, 5000), GW_OK);
	for (int i = 0; i < 50; i++) {
		char n[16];
		snprintf(n, sizeof n, "a%d", i);
		int64_t v = 0;
		ck_assert_int_eq(stored_revision(n, &v), 1);
	}
	gw_persist_stats ps;
	gw_persist_get_stats(persist, &ps);
	ck_assert_int_eq(ps.saves, 50);
	ck_assert_uint_lt(ps.batches, 50); /* group commit: fewer transactions than saves */
}
END_TEST

START_TEST(stateless_actors_never_touch_the_store)
{
	teardown();
	setup_with(100, false, 10, 60000);
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 5, 5, true);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	ck_assert_int_eq(gw_runtime_flush(rt, 1000), GW_OK);
	ck_assert_int_eq(stored_revision("a1", NULL), 0);
}
END_TEST

START_TEST(thousand_actors_keep_per_actor_order)
{
	/* 1000 actors x 3 invocations, answered in a scrambled global order */
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 1000; i++) {
			char n[16];
			snprintf(n, sizeof n, "a%d", i);
			invoke(n, round, i * 10 + round);
		}
	size_t sent = 0;
	for (int round = 0; round < 3; round++) {
		ck_assert(fake_host_wait(&host, sent + 1000));
		/* answer this round's tasks from the last to the first */
		for (size_t k = sent + 1000; k-- > sent;) {
			ck_assert_int_eq(task_payload(k), round);
			answer(k, round, round, false);
		}
		sent += 1000;
	}
	ck_assert(wait_outs(3000));
	int last[1000];
	memset(last, -1, sizeof last);
	for (size_t k = 0; k < 3000; k++) {
		ck_assert_int_eq(outs[k].err, GW_OK);
		int actor = outs[k].tag / 10, round = outs[k].tag % 10;
		ck_assert_int_eq(round, last[actor] + 1);
		last[actor] = round;
	}
}
END_TEST

static void invoke_ref(const char *actor, const char *ref, int tag)
{
	gw_inv *inv = gw_inv_create(0);
	spawn_arena *a = &inv->arena;
	Spawn__InvocationRequest *rq = rtf_request(a, SYS, actor, "Add");
	rq->register_ref = ref ? spawn_arena_strdup(a, ref) : "";
	inv->req = rq;
	inv->done = on_done;
	inv->user = (void *)(intptr_t)tag;
	gw_runtime_invoke(rt, inv);
}

/* register_template registers "tmpl", a stateful UNNAMED actor with the
 * action Add, on the fake host. */
static void register_template(void)
{
	Spawn__Actors__ActorSettings st = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	st.kind = SPAWN__ACTORS__KIND__UNNAMED;
	st.stateful = true;
	const rtf_actor tmpl = {"tmpl", &st};
	char why[512] = "";
	ck_assert_int_eq(
	    rtf_register(&host, SYS, &tmpl, 1, (const char *const[]){"Add", NULL}, why, sizeof why),
	    GW_OK);
}

START_TEST(register_ref_creates_instances_of_unnamed_actors)
{
	register_template();

	invoke_ref("inst-1", "tmpl", 1);
	ck_assert(fake_host_wait(&host, 1));
	const Spawn__ActorInvocation *ai = fake_task_inv(&host, 0);
	ck_assert_str_eq(ai->actor->name, "inst-1");
	ck_assert_str_eq(ai->actor->parent, "tmpl");
	answer(0, 7, 7, false);
	/* active now: reachable by name alone */
	invoke_ref("inst-1", NULL, 2);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_int_eq(task_state(1), 7);
	answer(1, 8, 8, false);
	/* each instance has its own state */
	invoke_ref("inst-2", "tmpl", 3);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_int_eq(task_state(2), -1);
	answer(2, 1, 1, false);
	ck_assert(wait_outs(3));
	/* spawned explicitly, then invoked by name alone */
	ck_assert_int_eq(gw_registry_spawn(reg, SYS, "inst-9", "tmpl", NULL), GW_OK);
	ck_assert_int_eq(gw_registry_spawn(reg, SYS, "inst-9", "tmpl", NULL),
	                 GW_OK); /* idempotent */
	ck_assert_int_eq(gw_registry_spawn(reg, SYS, "a1", "tmpl", NULL),
	                 GW_EINVAL); /* name taken */
	ck_assert_int_eq(gw_registry_spawn(reg, SYS, "x", "nope", NULL), GW_ENOTFOUND);
	invoke_ref("inst-9", NULL, 9);
	ck_assert(fake_host_wait(&host, 4));
	ck_assert_str_eq(fake_task_inv(&host, 3)->actor->parent, "tmpl");
	invoke_ref("inst-3", NULL, 4); /* never created */
	invoke_ref("tmpl", NULL, 5);   /* the template itself */
	invoke_ref("inst-4", "a1", 6); /* a NAMED actor is no template */
	ck_assert(wait_outs(6));
	/* inst-3 is looked up in the statestore first, so it may finish last */
	for (size_t k = 3; k < 6; k++)
		ck_assert_int_eq(outs[k].err, outs[k].tag == 4 ? GW_ENOTFOUND : GW_EINVAL);
}
END_TEST

/* ---- fencing, reads and restores ------------------------------------------------ */

/* another_gateway_writes plays a second gateway on the same store: it takes
 * a newer activation epoch and writes value as the next revision. */
static void another_gateway_writes(const char *actor, int64_t value)
{
	gw_store *s2;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s2, url, &so), GW_OK);
	gw_actor_key k = {SYS, actor};
	uint64_t epoch = 0;
	ck_assert_int_eq(gw_store_acquire(s2, &k, &epoch), GW_OK);
	gw_loaded l;
	uint64_t rev = 0;
	if (gw_store_load(s2, &k, &l) == GW_OK) {
		rev = l.revision;
		gw_loaded_fini(&l);
	}
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = STATE_TYPE;
	any.value.data = (uint8_t *)&value;
	any.value.len = 8;
	Spawn__Actors__ActorState as = SPAWN__ACTORS__ACTOR_STATE__INIT;
	as.state = &any;
	uint8_t buf[128];
	size_t n = spawn__actors__actor_state__pack(&as, buf);
	gw_state st = {.key = k,
	               .type_url = STATE_TYPE,
	               .data = buf,
	               .len = n,
	               .expected = rev,
	               .epoch = epoch};
	gw_err res;
	ck_assert_int_eq(gw_store_save_batch(s2, &st, 1, &res), GW_OK);
	ck_assert_int_eq(res, GW_OK);
	gw_store_close(s2);
}

START_TEST(a_fenced_activation_refuses_its_checkpoint_and_reloads_the_newer_state)
{
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 10, 10, true);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	/* another gateway activates a1 and writes 500 */
	another_gateway_writes("a1", 500);
	invoke("a1", 1, 2);
	invoke("a1", 1, 3);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_int_eq(task_state(1), 10); /* this activation does not know yet */
	answer(1, 11, 11, true);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_EFENCED);
	ck_assert_int_eq(gw_err_status(outs[1].err), GRPC_STATUS_ABORTED);
	/* the newer state was not overwritten ... */
	int64_t v = 0;
	ck_assert_int_eq(stored_revision("a1", &v), 2);
	ck_assert_int_eq(v, 500);
	/* ... and the next invocation runs on a fresh activation that sees it */
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_int_eq(task_state(2), 500);
	answer(2, 501, 501, true);
	ck_assert(wait_outs(3));
	ck_assert_int_eq(outs[2].err, GW_OK);
	ck_assert_int_eq(stored_revision("a1", &v), 3);
	ck_assert_int_eq(v, 501);
}
END_TEST

typedef struct read_result {
	bool called;
	gw_err err;
	int64_t value;
	uint64_t revision;
	bool active, dirty;
	size_t ntags;
} read_result;

static void on_read(void *user, gw_err err, const char *msg, const gw_blob *state,
                    const gw_blob *tags, const gw_read_meta *meta)
{
	read_result *r = user;
	pthread_mutex_lock(&omu);
	r->err = err;
	r->value = state ? decode_i64(gw_blob_value(state), state->len) : -1;
	r->revision = meta->revision;
	r->active = meta->active;
	r->dirty = meta->dirty;
	r->ntags = 0;
	if (tags) {
		Spawn__Actors__ActorState *t =
		    spawn__actors__actor_state__unpack(NULL, tags->len, gw_blob_value(tags));
		r->ntags = t ? t->n_tags : (size_t)-1;
		spawn__actors__actor_state__free_unpacked(t, NULL);
	}
	r->called = true;
	pthread_cond_broadcast(&ocv);
	pthread_mutex_unlock(&omu);
}

static read_result read_state(const char *actor, uint64_t revision)
{
	read_result r = {0};
	ck_assert_int_eq(gw_runtime_read(rt, SYS, actor, revision, on_read, &r), GW_OK);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&omu);
	while (!r.called)
		if (pthread_cond_timedwait(&ocv, &omu, &ts))
			break;
	pthread_mutex_unlock(&omu);
	ck_assert(r.called);
	return r;
}

START_TEST(state_is_read_without_a_host_from_memory_or_the_store)
{
	read_result r = read_state("a1", 0);
	ck_assert_int_eq(r.err, GW_ENOTFOUND);
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 33, 33, true);
	invoke("a1", 1, 2);
	ck_assert(fake_host_wait(&host, 2));
	answer(1, 34, 34, false); /* in memory only */
	ck_assert(wait_outs(2));
	r = read_state("a1", 0);
	ck_assert_int_eq(r.err, GW_OK);
	ck_assert(r.active);
	ck_assert(r.dirty);
	ck_assert_int_eq(r.value, 34);
	ck_assert_int_eq(r.revision, 1);
	ck_assert_int_eq(host.ntasks, 2); /* no host call for the read */
	/* an inactive actor is read from the store */
	another_gateway_writes("a2", 7);
	r = read_state("a2", 0);
	ck_assert_int_eq(r.err, GW_OK);
	ck_assert(!r.active);
	ck_assert_int_eq(r.value, 7);
	ck_assert_int_eq(r.revision, 1);
}
END_TEST

static void invoke_restore(const char *actor, uint64_t revision, int tag)
{
	gw_inv *inv = gw_inv_create(0);
	spawn_arena *a = &inv->arena;
	Spawn__InvocationRequest *rq = rtf_request(a, SYS, actor, "");
	inv->req = rq;
	inv->kind = GW_INV_RESTORE;
	inv->restore_rev = revision;
	inv->done = on_done;
	inv->user = (void *)(intptr_t)tag;
	gw_runtime_invoke(rt, inv);
}

static Spawn__InvocationRequest *effect_req(spawn_arena *ar, int64_t value, const char *key);
static size_t stored_outbox(const char *actor, bool *listed);

/* A workflow of one side effect (caller storage). */
typedef struct one_effect {
	Spawn__SideEffect se, *sep[1];
	Spawn__Workflow wf;
} one_effect;

static Spawn__Workflow *effect_wf(one_effect *e, Spawn__InvocationRequest *rq)
{
	spawn__side_effect__init(&e->se);
	e->se.request = rq;
	e->sep[0] = &e->se;
	spawn__workflow__init(&e->wf);
	e->wf.n_effects = 1;
	e->wf.effects = e->sep;
	return &e->wf;
}

START_TEST(a_restore_makes_an_old_revision_current_as_a_new_revision)
{
	teardown();
	/* keep history: reopen the store with a policy */
	snprintf(dir, sizeof dir, "/tmp/spawn-rt-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(url, sizeof url, "sqlite://%s/state.db", dir);
	gw_store_opts so = {.keys = KEY, .history = 10};
	ck_assert_int_eq(gw_store_open(&store, url, &so), GW_OK);
	gw_persist_opts po = {.max_batch = 64};
	ck_assert_int_eq(gw_persist_create(&persist, store, &po), GW_OK);
	ck_assert_int_eq(gw_registry_create(&reg, NULL), GW_OK);
	fake_host_init(&host);
	register_actors(true, 60000, 60000);
	gw_runtime_opts ro = {.shards = 4, .mailbox_max = 100, .host_timeout_ms = 60000};
	ck_assert_int_eq(gw_runtime_create(&rt, &ro, reg, persist), GW_OK);
	nouts = 0;

	for (int i = 0; i < 3; i++) {
		invoke("a1", 1, i);
		ck_assert(fake_host_wait(&host, (size_t)i + 1));
		answer((size_t)i, 100 + i, 0, true); /* revisions 1, 2, 3 = 100, 101, 102 */
		ck_assert(wait_outs((size_t)i + 1));
	}
	invoke_restore("a1", 1, 10);
	ck_assert(wait_outs(4));
	ck_assert_int_eq(outs[3].err, GW_OK);
	int64_t v = 0;
	ck_assert_int_eq(stored_revision("a1", &v), 4);
	ck_assert_int_eq(v, 100);
	/* the actor continues from the restored state */
	invoke("a1", 1, 11);
	ck_assert(fake_host_wait(&host, 4));
	ck_assert_int_eq(task_state(3), 100);
	answer(3, 1000, 0, true);
	ck_assert(wait_outs(5));
	/* a revision that is not kept */
	invoke_restore("a1", 99, 12);
	ck_assert(wait_outs(6));
	ck_assert_int_eq(outs[5].err, GW_ENOTFOUND);
	ck_assert_int_eq(stored_revision("a1", &v), 5);
	ck_assert_int_eq(v, 1000);
	read_result r = read_state("a1", 2);
	ck_assert_int_eq(r.err, GW_OK);
	ck_assert_int_eq(r.value, 101);
	/* Revision 6 carries an outbox (a checkpointed effect to a3), cleared
	 * by revision 7 once delivered. Restoring 6 brings its state back, not
	 * its outbox: the new revision is neither holding nor flagged. */
	invoke("a1", 1, 13);
	ck_assert(fake_host_wait(&host, 5));
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	one_effect oe;
	answer_wf(4, 2000, 0, true, effect_wf(&oe, effect_req(&ar, 4, NULL)));
	ck_assert(wait_outs(7));
	ck_assert_int_eq(stored_revision("a1", NULL), 6);
	ck_assert(fake_host_wait(&host, 6));
	answer(5, 4, 0, true); /* a3 applies it: acknowledged */
	bool listed = true;
	for (int i = 0; i < 500 && (stored_outbox("a1", &listed) || listed); i++)
		ck_assert_int_eq(gw_runtime_flush(rt, 5000), GW_OK);
	ck_assert_int_eq(stored_revision("a1", NULL), 7);
	invoke_restore("a1", 6, 14);
	ck_assert(wait_outs(8));
	ck_assert_int_eq(outs[7].err, GW_OK);
	ck_assert_int_eq(stored_revision("a1", &v), 8);
	ck_assert_int_eq(v, 2000);
	ck_assert_uint_eq(stored_outbox("a1", &listed), 0);
	ck_assert(!listed);
	spawn_arena_fini(&ar);
}
END_TEST

/* ---- workflows, timers, pooled actors -------------------------------------------- */

static const char *task_actor(size_t i)
{
	const Spawn__ActorInvocation *ai = fake_task_inv(&host, i);
	return ai ? ai->actor->name : "";
}

static const char *task_action(size_t i)
{
	const Spawn__ActorInvocation *ai = fake_task_inv(&host, i);
	return ai ? ai->action_name : "";
}

START_TEST(pipe_answers_the_caller_with_the_next_action_fed_with_the_reply)
{
	invoke("a1", 5, 1);
	ck_assert(fake_host_wait(&host, 1));
	Spawn__Pipe pipe = SPAWN__PIPE__INIT;
	pipe.actor = "a2";
	pipe.action_name = "Add";
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	wf.routing_case = SPAWN__WORKFLOW__ROUTING_PIPE;
	wf.pipe = &pipe;
	answer_wf(0, 1, 42, false, &wf);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_str_eq(task_actor(1), "a2");
	ck_assert_int_eq(task_payload(1), 42); /* a1's reply is a2's input */
	const Spawn__ActorInvocation *ai = fake_task_inv(&host, 1);
	ck_assert_str_eq(ai->caller->name, "a1");
	ck_assert_int_eq(outs_count(), 0); /* the caller still waits */
	answer(1, 1, 99, false);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	ck_assert_int_eq(outs[0].reply, 99);
	ck_assert_int_eq(outs[0].tag, 1);
}
END_TEST

START_TEST(forward_passes_the_input_on)
{
	invoke("a1", 5, 1);
	ck_assert(fake_host_wait(&host, 1));
	Spawn__Forward fw = SPAWN__FORWARD__INIT;
	fw.actor = "a2";
	fw.action_name = "Get";
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	wf.routing_case = SPAWN__WORKFLOW__ROUTING_FORWARD;
	wf.forward = &fw;
	answer_wf(0, 1, 42, true, &wf); /* after the checkpoint commits */
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_str_eq(task_actor(1), "a2");
	ck_assert_str_eq(task_action(1), "Get");
	ck_assert_int_eq(task_payload(1), 5); /* the caller's input */
	ck_assert_int_eq(stored_revision("a1", NULL), 1);
	answer(1, 1, 7, false);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].reply, 7);
}
END_TEST

START_TEST(side_effects_run_after_the_reply_without_blocking_it)
{
	invoke("a1", 5, 1);
	ck_assert(fake_host_wait(&host, 1));
	/* the effect: a3.Add(11), written as a full InvocationRequest */
	int64_t v = 11;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "type.googleapis.com/test.Add";
	any.value.data = (uint8_t *)&v;
	any.value.len = 8;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = SYS;
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = "a3";
	Spawn__Actors__Actor act = SPAWN__ACTORS__ACTOR__INIT;
	act.id = &id;
	Spawn__InvocationRequest rq = SPAWN__INVOCATION_REQUEST__INIT;
	rq.system = &sys;
	rq.actor = &act;
	rq.action_name = "Add";
	rq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	rq.value = &any;
	Spawn__SideEffect se = SPAWN__SIDE_EFFECT__INIT, *sep[] = {&se, &se};
	se.request = &rq;
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	wf.n_effects = 2;
	wf.effects = sep;
	answer_wf(0, 1, 42, false, &wf);
	ck_assert(wait_outs(1)); /* answered without waiting for the effects */
	ck_assert_int_eq(outs[0].reply, 42);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_str_eq(task_actor(1), "a3");
	ck_assert_int_eq(task_payload(1), 11);
	ck_assert_str_eq(fake_task_inv(&host, 1)->caller->name, "a1");
	answer(1, 11, 0, false);
	ck_assert(fake_host_wait(&host, 3)); /* the second effect, in a3's mailbox order */
	ck_assert_int_eq(task_state(2), 11);
}
END_TEST

START_TEST(a_pipe_cycle_is_cut_by_the_hop_limit)
{
	invoke("a1", 1, 1);
	Spawn__Pipe pipe = SPAWN__PIPE__INIT;
	pipe.actor = "a1";
	pipe.action_name = "Add";
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	wf.routing_case = SPAWN__WORKFLOW__ROUTING_PIPE;
	wf.pipe = &pipe;
	size_t i = 0;
	while (outs_count() == 0 && i < 100) {
		ck_assert(fake_host_wait(&host, i + 1));
		answer_wf(i, (int64_t)i, (int64_t)i, false, &wf);
		i++;
	}
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_EINVAL);
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "hops"));
	ck_assert_int_eq(i, 17); /* the client's call plus 16 hops */
}
END_TEST

static void register_special(void)
{
	/* s1, s2 subscribe to "news" (s1 with action Get, s2 with the default
	 * "receive"); "tick" has a 20 ms timer action; "pool" is POOLED (3). */
	static Spawn__Actors__Action add = SPAWN__ACTORS__ACTION__INIT,
	                             get = SPAWN__ACTORS__ACTION__INIT,
	                             recv = SPAWN__ACTORS__ACTION__INIT;
	add.name = "Add";
	get.name = "Get";
	recv.name = "receive";
	static Spawn__Actors__Action *acts[] = {&add, &get, &recv};
	static Spawn__Actors__Channel c1 = SPAWN__ACTORS__CHANNEL__INIT,
	                              c2 = SPAWN__ACTORS__CHANNEL__INIT;
	c1.topic = "news";
	c1.action = "Get";
	c2.topic = "news";
	static Spawn__Actors__Channel *cg1[] = {&c1}, *cg2[] = {&c2};
	static Spawn__Actors__Metadata m1 = SPAWN__ACTORS__METADATA__INIT,
	                               m2 = SPAWN__ACTORS__METADATA__INIT;
	m1.n_channel_group = 1;
	m1.channel_group = cg1;
	m2.n_channel_group = 1;
	m2.channel_group = cg2;
	static Spawn__Actors__FixedTimerAction ta = SPAWN__ACTORS__FIXED_TIMER_ACTION__INIT;
	ta.seconds = 20; /* milliseconds, as in Spawn */
	ta.action = &add;
	static Spawn__Actors__FixedTimerAction *tas[] = {&ta};
	static Spawn__Actors__ActorSettings named = SPAWN__ACTORS__ACTOR_SETTINGS__INIT,
	                                    pooled = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	named.kind = SPAWN__ACTORS__KIND__NAMED;
	named.stateful = true;
	pooled.kind = SPAWN__ACTORS__KIND__POOLED;
	pooled.max_pool_size = 3;
	static const char *names[] = {"s1", "s2", "tick", "pool"};
	static Spawn__Actors__ActorId ids[4];
	static Spawn__Actors__Actor actors[4];
	static Spawn__Actors__Registry__ActorsEntry e[4], *ep[4];
	for (int i = 0; i < 4; i++) {
		spawn__actors__actor_id__init(&ids[i]);
		ids[i].name = (char *)names[i];
		spawn__actors__actor__init(&actors[i]);
		actors[i].id = &ids[i];
		actors[i].settings = i == 3 ? &pooled : &named;
		actors[i].n_actions = 3;
		actors[i].actions = acts;
		spawn__actors__registry__actors_entry__init(&e[i]);
		e[i].key = (char *)names[i];
		e[i].value = &actors[i];
		ep[i] = &e[i];
	}
	actors[0].metadata = &m1;
	actors[1].metadata = &m2;
	actors[2].n_timer_actions = 1;
	actors[2].timer_actions = tas;
	Spawn__Actors__Registry r = SPAWN__ACTORS__REGISTRY__INIT;
	r.n_actors = 4;
	r.actors = ep;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = SYS;
	sys.registry = &r;
	char why[512] = "";
	ck_assert_int_eq(gw_registry_register(reg, &host, &sys, why, sizeof why), GW_OK);
}

START_TEST(broadcast_reaches_every_subscriber_of_the_channel)
{
	register_special();
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	int64_t v = 3;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "type.googleapis.com/test.News";
	any.value.data = (uint8_t *)&v;
	any.value.len = 8;
	Spawn__Broadcast b = SPAWN__BROADCAST__INIT;
	b.channel_group = "news";
	b.payload_case = SPAWN__BROADCAST__PAYLOAD_VALUE;
	b.value = &any;
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	wf.broadcast = &b;
	answer_wf(0, 1, 1, false, &wf);
	ck_assert(fake_host_wait(&host, 3));
	bool got1 = false, got2 = false;
	for (size_t i = 1; i < 3; i++) {
		ck_assert_int_eq(task_payload(i), 3);
		if (!strcmp(task_actor(i), "s1")) {
			got1 = true;
			ck_assert_str_eq(task_action(i), "Get");
		} else if (!strcmp(task_actor(i), "s2")) {
			got2 = true;
			ck_assert_str_eq(task_action(i), "receive");
		}
	}
	ck_assert(got1 && got2);
}
END_TEST

START_TEST(timer_actions_run_while_active_one_at_a_time)
{
	register_special();
	invoke("tick", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 1, 1, false);
	ck_assert(wait_outs(1));
	/* the timer's turn arrives by itself, with the state and no payload */
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_str_eq(task_actor(1), "tick");
	ck_assert_str_eq(task_action(1), "Add");
	ck_assert_int_eq(task_state(1), 1);
	ck_assert_int_eq(fake_task_inv(&host, 1)->payload_case,
	                 SPAWN__ACTOR_INVOCATION__PAYLOAD_NOOP);
	/* while that turn runs, later ticks do not pile up behind it */
	struct timespec ts = {0, 100 * 1000000L};
	nanosleep(&ts, NULL); /* five periods: proves an absence, not a readiness */
	ck_assert_int_eq(host.ntasks, 2);
	answer(1, 2, 0, false);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_int_eq(task_state(2), 2);
}
END_TEST

/* A task already written when its deadline passed may still run on the
 * host: the caller fails, but the actor's next turn waits until the host
 * hands the turn back (gw_runtime_release). The effective deadline travels
 * with every task, --host-timeout when the caller set none. */
START_TEST(a_written_task_past_its_deadline_holds_the_actor_until_released)
{
	host.written = true;
	int64_t now = spawn_now_ns() / 1000000, wall = spawn_wall_ms();
	/* 1 s: long enough for the task to be written first on a loaded machine */
	invoke_full(SYS, "a1", "Add", 1, now + 1000, 1);
	invoke("a1", 2, 2);
	ck_assert(fake_host_wait(&host, 1));
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_ETIMEDOUT);
	/* A second task would have been sent before the first call's outcome. */
	pthread_mutex_lock(&host.mu);
	size_t sent = host.ntasks, held = host.nheld;
	pthread_mutex_unlock(&host.mu);
	ck_assert_int_eq(sent, 1);
	ck_assert_int_eq(held, 1);
	int64_t d0 = host.tasks[0].msg->invocation->deadline_unix_ms;
	ck_assert(d0 >= wall + 990 && d0 <= spawn_wall_ms() + 1000);
	gw_runtime_release(rt, host.held);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_int_eq(task_payload(1), 2);
	int64_t d1 = host.tasks[1].msg->invocation->deadline_unix_ms;
	ck_assert(d1 >= wall + 59000); /* host_timeout_ms 60000 */
	answer(1, 3, 3, false);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_OK);
}
END_TEST

START_TEST(a_pooled_actor_keeps_a_slot_per_held_turn)
{
	register_special();
	host.written = true;
	int64_t now = spawn_now_ns() / 1000000;
	for (int i = 0; i < 3; i++)
		invoke_full(SYS, "pool", "Add", i, now + 1000, i);
	invoke("pool", 3, 3);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert(wait_outs(3));
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(outs[i].err, GW_ETIMEDOUT);
	pthread_mutex_lock(&host.mu);
	size_t sent = host.ntasks;
	gw_actor *held = host.held;
	pthread_mutex_unlock(&host.mu);
	ck_assert_int_eq(sent, 3); /* max_pool_size 3, all held */
	gw_runtime_release(rt, held);
	ck_assert(fake_host_wait(&host, 4));
	ck_assert_int_eq(task_payload(3), 3);
	answer(3, -1, 13, false);
	ck_assert(wait_outs(4));
	ck_assert_int_eq(outs[3].err, GW_OK);
	gw_runtime_release(rt, held);
	gw_runtime_release(rt, held);
}
END_TEST

START_TEST(pooled_actors_run_up_to_their_pool_size_in_parallel)
{
	register_special();
	for (int i = 0; i < 5; i++)
		invoke("pool", i, i);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_int_eq(host.ntasks, 3); /* max_pool_size */
	answer(1, -1, 10, false);
	ck_assert(fake_host_wait(&host, 4));
	ck_assert_int_eq(host.ntasks, 4);
	answer(0, -1, 11, false);
	answer(2, -1, 12, false);
	answer(3, -1, 13, false);
	ck_assert(fake_host_wait(&host, 5));
	answer(4, -1, 14, false);
	ck_assert(wait_outs(5));
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(outs[i].err, GW_OK);
	ck_assert_int_eq(gw_runtime_flush(rt, 1000), GW_OK);
	ck_assert_int_eq(stored_revision("pool", NULL), 0); /* stateless */
}
END_TEST

/* put_scheduled_sys stores a scheduled invocation of actor.Add(value) in
 * SYS, due a second ago, under id, sealed under the data key of sealed_for
 * (NULL: under the keyring key, as earlier gateways stored them). */
static void put_scheduled_sys(gw_store *s, const char *id, const char *actor, int64_t value,
                              const char *sealed_for)
{
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "type.googleapis.com/test.Add";
	any.value.data = (uint8_t *)&value;
	any.value.len = 8;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = SYS;
	Spawn__Actors__ActorId aid = SPAWN__ACTORS__ACTOR_ID__INIT;
	aid.name = (char *)actor;
	Spawn__Actors__Actor act = SPAWN__ACTORS__ACTOR__INIT;
	act.id = &aid;
	Spawn__InvocationRequest rq = SPAWN__INVOCATION_REQUEST__INIT;
	rq.system = &sys;
	rq.actor = &act;
	rq.action_name = "Add";
	rq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	rq.value = &any;
	rq.scheduled_to = spawn_wall_ms() - 1000;
	uint8_t buf[256];
	size_t n = spawn__invocation_request__pack(&rq, buf);
	ck_assert_int_eq(gw_store_schedule_put_sys(s, id, sealed_for, rq.scheduled_to, buf, n),
	                 GW_OK);
}

static void put_scheduled(gw_store *s, const char *id, const char *actor, int64_t value)
{
	put_scheduled_sys(s, id, actor, value, NULL);
}

/* A row sealed under one system's data key that targets another system
 * (written by someone holding only that key) is never delivered; a row
 * sealed for its own target is. */
START_TEST(a_scheduled_invocation_sealed_for_another_system_is_never_delivered)
{
	gw_store *s3;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s3, url, &so), GW_OK);
	put_scheduled_sys(s3, "sched-bad", "a1", 1, "another-system");
	put_scheduled_sys(s3, "sched-good", "a2", 2, SYS);
	gw_store_close(s3);
	gw_runtime_start_scheduler(rt, "test-gateway", 60000);
	ck_assert(fake_host_wait(&host, 1));
	ck_assert_str_eq(task_actor(0), "a2");
	ck_assert_int_eq(task_payload(0), 2);
	answer(0, 2, 0, false);
	/* The good row is deleted; the bad one stays (leased, logged). */
	uint64_t pending = 2;
	for (int i = 0; i < 2500 && pending != 1; i++) {
		ck_assert_int_eq(gw_store_open(&s3, url, &so), GW_OK);
		ck_assert_int_eq(gw_store_schedule_count(s3, &pending), GW_OK);
		gw_store_close(s3);
		if (pending != 1)
			nanosleep(&(struct timespec){0, 2000000}, NULL); /* readiness poll */
	}
	ck_assert_uint_eq(pending, 1);
	ck_assert_int_eq(host.ntasks, 1);
}
END_TEST

/* wait_schedule_empty polls the store (a handle of its own) until no
 * scheduled row is left, for at most 5 s; returns the rows left. */
static uint64_t wait_schedule_empty(void)
{
	gw_store *s;
	gw_store_opts so = {.keys = KEY};
	uint64_t pending = 1;
	for (int i = 0; i < 2500 && pending; i++) {
		ck_assert_int_eq(gw_store_open(&s, url, &so), GW_OK);
		ck_assert_int_eq(gw_store_schedule_count(s, &pending), GW_OK);
		gw_store_close(s);
		if (pending)
			nanosleep(&(struct timespec){0, 2000000}, NULL); /* readiness poll */
	}
	return pending;
}

START_TEST(instances_and_scheduled_invocations_survive_a_restart)
{
	/* a template, an instance made by register_ref, and a scheduled call */
	register_template();
	invoke_ref("inst-1", "tmpl", 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 5, 5, true);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(gw_runtime_flush(rt, 2000), GW_OK);

	/* "restart": a new runtime and registry on the same store */
	gw_runtime_destroy(rt);
	gw_registry_destroy(reg);
	ck_assert_int_eq(gw_registry_create(&reg, NULL), GW_OK);
	register_template();
	register_actors(true, 60000, 60000);
	gw_runtime_opts ro = {.shards = 4, .mailbox_max = 100, .host_timeout_ms = 60000};
	ck_assert_int_eq(gw_runtime_create(&rt, &ro, reg, persist), GW_OK);
	/* the instance is found by name alone, from the statestore */
	invoke_ref("inst-1", NULL, 2);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_str_eq(task_actor(1), "inst-1");
	ck_assert_int_eq(task_state(1), 5);
	answer(1, 6, 6, false);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_OK);
	invoke_ref("inst-404", NULL, 3);
	ck_assert(wait_outs(3));
	ck_assert_int_eq(outs[2].err, GW_ENOTFOUND);

	/* a scheduled invocation stored now, overdue: delivered once the
	 * scheduler runs, as an async call */
	gw_store *s3;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s3, url, &so), GW_OK);
	put_scheduled(s3, "sched0001", "a7", 9);
	gw_store_close(s3);
	gw_runtime_start_scheduler(rt, "test-gateway", 60000);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_str_eq(task_actor(2), "a7");
	ck_assert_int_eq(task_payload(2), 9);
	answer(2, 9, 0, false);
	/* delivered: the row is deleted (a later claim finds nothing) */
	ck_assert_int_eq(wait_schedule_empty(), 0);
	ck_assert_int_eq(host.ntasks, 3); /* delivered once */
}
END_TEST

enum { BURST = 2500, BURST_ACTORS = 1000 };

START_TEST(a_burst_of_due_scheduled_invocations_runs_each_once_and_deletes_every_row)
{
	/* More rows than one claim takes, two or three per actor (a mailbox
	 * holds the later ones), all overdue. */
	gw_store *s3;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s3, url, &so), GW_OK);
	for (int i = 0; i < BURST; i++) {
		char id[32], actor[16];
		snprintf(id, sizeof id, "burst%05d", i);
		snprintf(actor, sizeof actor, "a%d", i % BURST_ACTORS);
		put_scheduled(s3, id, actor, i);
	}
	gw_store_close(s3);
	gw_runtime_start_scheduler(rt, "test-gateway", 60000);
	/* Answer every task as it comes: an actor's next one follows. */
	static bool seen[BURST];
	memset(seen, 0, sizeof seen);
	for (size_t k = 0; k < BURST; k++) {
		ck_assert_msg(fake_host_wait(&host, k + 1), "task %zu never came", k);
		int64_t v = task_payload(k);
		ck_assert(v >= 0 && v < BURST);
		ck_assert_msg(!seen[v], "invocation %lld delivered twice", (long long)v);
		seen[v] = true;
		char actor[16];
		snprintf(actor, sizeof actor, "a%lld", (long long)(v % BURST_ACTORS));
		ck_assert_str_eq(task_actor(k), actor);
		answer(k, v, 0, false);
	}
	/* Every delivered row is deleted (in batches), and nothing runs twice. */
	ck_assert_int_eq(wait_schedule_empty(), 0);
	nanosleep(&(struct timespec){0, 50000000}, NULL); /* a late duplicate would show */
	ck_assert_uint_eq(host.ntasks, BURST);
	gw_persist_stats ps;
	gw_persist_get_stats(persist, &ps);
	ck_assert_uint_eq(ps.scheduled_delivered, BURST);
}
END_TEST

/* A steady load of saves on the persist thread: LOAD_SLOTS always queued. */
enum { LOAD_SLOTS = 64 };
typedef struct save_load {
	atomic_bool stop;
	atomic_int inflight;
	struct load_slot {
		struct save_load *l;
		atomic_uint_fast64_t rev; /* the persist thread counts, the test reads */
		char name[16];
	} slot[LOAD_SLOTS];
} save_load;

static void load_save(struct load_slot *sl);

static void load_saved(void *arg, gw_err err)
{
	struct load_slot *sl = arg;
	if (err == GW_OK)
		atomic_fetch_add(&sl->rev, 1);
	if (atomic_load(&sl->l->stop))
		atomic_fetch_sub(&sl->l->inflight, 1);
	else
		load_save(sl);
}

static void load_save(struct load_slot *sl)
{
	uint8_t data[64] = {0};
	uint64_t rev = atomic_load(&sl->rev);
	memcpy(data, &rev, sizeof rev);
	gw_blob *b = gw_blob_create(NULL, data, sizeof data);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(gw_persist_save(persist, SYS, sl->name, "", b, rev, 0, 0, load_saved, sl),
	                 GW_OK);
}

START_TEST(scheduled_invocations_fire_while_the_persist_queue_never_empties)
{
	gw_store *s3;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s3, url, &so), GW_OK);
	put_scheduled(s3, "busy0001", "a1", 5); /* overdue */
	gw_store_close(s3);
	/* Saves keep the queue busy from before the scheduler starts. */
	static save_load load;
	memset(&load, 0, sizeof load);
	atomic_store(&load.inflight, LOAD_SLOTS);
	for (int i = 0; i < LOAD_SLOTS; i++) {
		load.slot[i].l = &load;
		snprintf(load.slot[i].name, sizeof load.slot[i].name, "load%d", i);
		load_save(&load.slot[i]);
	}
	gw_runtime_start_scheduler(rt, "test-gateway", 60000);
	bool fired = fake_host_wait(&host, 1);
	uint64_t saved = 0;
	for (int i = 0; i < LOAD_SLOTS; i++)
		saved += atomic_load(&load.slot[i].rev);
	atomic_store(&load.stop, true);
	for (int i = 0; i < 5000 && atomic_load(&load.inflight) > 0; i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL); /* bounded drain of the load */
	ck_assert_int_eq(atomic_load(&load.inflight), 0);
	ck_assert_msg(fired, "the scheduled invocation never fired under load (%llu saves done)",
	              (unsigned long long)saved);
	ck_assert_str_eq(task_actor(0), "a1");
	ck_assert_int_eq(task_payload(0), 5);
	ck_assert_uint_gt(saved, 0); /* the load really ran */
}
END_TEST

/* ---- the outbox of checkpointed effects -------------------------------------------- */

/* a request to a3.Add(value) carrying idempotency key (NULL = none) */
static Spawn__InvocationRequest *effect_req(spawn_arena *ar, int64_t value, const char *key)
{
	Spawn__InvocationRequest *rq = rtf_request(ar, SYS, "a3", "Add");
	rq->value = spawn_arena_alloc(ar, sizeof *rq->value);
	google__protobuf__any__init(rq->value);
	rq->value->type_url = "type.googleapis.com/test.Add";
	rq->value->value.data = spawn_arena_memdup(ar, &value, 8);
	rq->value->value.len = 8;
	rq->payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	if (key) {
		Spawn__InvocationRequest__MetadataEntry *e = spawn_arena_alloc(ar, sizeof *e);
		spawn__invocation_request__metadata_entry__init(e);
		e->key = "spawn-idempotency-key";
		e->value = (char *)key;
		rq->metadata = spawn_arena_alloc(ar, sizeof *rq->metadata);
		rq->metadata[0] = e;
		rq->n_metadata = 1;
	}
	return rq;
}

static const char *task_key(size_t i)
{
	const Spawn__ActorInvocation *ai = fake_task_inv(&host, i);
	for (size_t k = 0; ai && k < ai->current_context->n_metadata; k++)
		if (!strcmp(ai->current_context->metadata[k]->key, "spawn-idempotency-key"))
			return ai->current_context->metadata[k]->value;
	return NULL;
}

static size_t find_task(const char *actor, size_t from)
{
	for (size_t i = from; i < host.ntasks; i++)
		if (!strcmp(task_actor(i), actor))
			return i;
	return (size_t)-1;
}

/* stored_outbox: the number of outbox entries in actor's stored row, and
 * whether the store lists it among the actors with undelivered effects. */
static size_t stored_outbox(const char *actor, bool *listed)
{
	gw_store *s2;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s2, url, &so), GW_OK);
	gw_actor_key k = {SYS, actor};
	gw_loaded l;
	ck_assert_int_eq(gw_store_load(s2, &k, &l), GW_OK);
	Spawn__Gateway__V1__StoredState *got =
	    spawn__gateway__v1__stored_state__unpack(NULL, l.len, l.data);
	ck_assert_ptr_nonnull(got);
	size_t n = got->n_outbox;
	spawn__gateway__v1__stored_state__free_unpacked(got, NULL);
	gw_loaded_fini(&l);
	gw_actor_key keys[8];
	size_t nk = 0;
	ck_assert_int_eq(gw_store_effects_list(s2, NULL, 8, keys, &nk), GW_OK);
	*listed = false;
	for (size_t i = 0; i < nk; i++)
		*listed = *listed || (!strcmp(keys[i].system, SYS) && !strcmp(keys[i].name, actor));
	gw_keys_fini(keys, nk);
	gw_store_close(s2);
	return n;
}

/* crash_row writes the row a crash leaves behind: a1 with state 1 and an
 * undelivered outbox holding a3.Add(value) under key (flagged or not). */
static void crash_row(int64_t value, const char *key, int effects)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	int64_t v = 1;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = STATE_TYPE;
	any.value.data = (uint8_t *)&v;
	any.value.len = 8;
	Spawn__InvocationRequest *out[] = {effect_req(&ar, value, key)};
	Spawn__Gateway__V1__StoredState ss = SPAWN__GATEWAY__V1__STORED_STATE__INIT;
	ss.state = &any;
	ss.n_outbox = 1;
	ss.outbox = out;
	uint8_t buf[512];
	size_t n = spawn__gateway__v1__stored_state__pack(&ss, buf);
	gw_store *s2;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s2, url, &so), GW_OK);
	gw_state st = {
	    .key = {SYS, "a1"}, .type_url = STATE_TYPE, .data = buf, .len = n, .effects = effects};
	gw_err res;
	ck_assert_int_eq(gw_store_save_batch(s2, &st, 1, &res), GW_OK);
	ck_assert_int_eq(res, GW_OK);
	gw_store_close(s2);
	spawn_arena_fini(&ar);
}

START_TEST(checkpointed_effects_are_stored_with_the_state_and_applied_once)
{
	/* 1. A row written before a crash: a1's state with an undelivered outbox
	 *    holding a3.Add(11) under key K. */
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	crash_row(11, "test/K", 0);
	gw_store *s2;
	gw_store_opts so = {.keys = KEY};

	/* 2. Activating a1 delivers the outbox again, with its key. */
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 2));
	size_t t3 = find_task("a3", 0), t1 = find_task("a1", 0);
	ck_assert_uint_ne(t3, (size_t)-1);
	ck_assert_uint_ne(t1, (size_t)-1);
	ck_assert_int_eq(task_payload(t3), 11);
	ck_assert_str_eq(task_key(t3), "test/K");
	answer(t3, 11, 0, true); /* a3 applies it and saves the key with its state */
	answer(t1, 2, 2, false);
	ck_assert(wait_outs(1));

	/* 3. The same delivery once more (another crash replay): skipped. */
	gw_inv *dup = gw_inv_create(0);
	dup->req = effect_req(&dup->arena, 11, NULL);
	dup->idem_key = "test/K"; /* as the gateway redelivers it (out of band) */
	dup->done = on_done;
	dup->user = (void *)(intptr_t)99;
	size_t before = host.ntasks;
	gw_runtime_invoke(rt, dup);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].tag, 99);
	ck_assert_int_eq(outs[1].err, GW_OK);
	ck_assert_int_eq(host.ntasks, before); /* the host never saw it */
	int64_t v3 = 0;
	ck_assert_int_eq(stored_revision("a3", &v3), 1);
	ck_assert_int_eq(v3, 11); /* applied once */

	/* 4. A checkpointed turn's effect carries a key naming the revision it
	 *    was committed with. */
	invoke("a1", 1, 3);
	ck_assert(fake_host_wait(&host, before + 1));
	size_t t = find_task("a1", before);
	Spawn__InvocationRequest *eff = effect_req(&ar, 5, NULL);
	one_effect oe;
	uint64_t rev_before = stored_revision("a1", NULL);
	answer_wf(t, 3, 3, true, effect_wf(&oe, eff));
	ck_assert(fake_host_wait(&host, before + 2));
	size_t te = find_task("a3", before);
	char want[128];
	snprintf(want, sizeof want, "%zu:%s2:a1@%llu#0", strlen(SYS), SYS,
	         (unsigned long long)rev_before + 1);
	ck_assert_str_eq(task_key(te), want);
	answer(te, 16, 0, true);
	ck_assert(wait_outs(3)); /* effects report to nobody: only a1's caller */
	ck_assert_int_eq(outs[2].tag, 3);
	ck_assert_int_eq(outs[2].err, GW_OK);
	/* once acknowledged, the outbox is dropped by the next save */
	bool listed = true;
	for (int i = 0; i < 500 && (stored_outbox("a1", &listed) || listed); i++)
		ck_assert_int_eq(gw_runtime_flush(rt, 5000), GW_OK);
	ck_assert_uint_eq(stored_outbox("a1", &listed), 0);
	ck_assert(!listed);
	/* and a3 keeps the keys it applied, with its state */
	ck_assert_int_eq(gw_store_open(&s2, url, &so), GW_OK);
	gw_actor_key k3 = {SYS, "a3"};
	gw_loaded l;
	ck_assert_int_eq(gw_store_load(s2, &k3, &l), GW_OK);
	Spawn__Gateway__V1__StoredState *got =
	    spawn__gateway__v1__stored_state__unpack(NULL, l.len, l.data);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(got->n_applied, 2);
	ck_assert_str_eq(got->applied[0], "test/K");
	ck_assert_str_eq(got->applied[1], want);
	spawn__gateway__v1__stored_state__free_unpacked(got, NULL);
	gw_loaded_fini(&l);
	gw_store_close(s2);
	spawn_arena_fini(&ar);
}
END_TEST

START_TEST(the_outbox_stays_stored_until_its_deliveries_are_acknowledged)
{
	/* a1's checkpointed turn emits a3.Add(5); a3 does not answer yet. */
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	one_effect oe;
	answer_wf(0, 1, 1, true, effect_wf(&oe, effect_req(&ar, 5, NULL)));
	ck_assert(wait_outs(1)); /* the caller has its answer: the outbox committed */
	ck_assert_int_eq(outs[0].err, GW_OK);
	ck_assert(fake_host_wait(&host, 2));
	size_t te = find_task("a3", 1);
	ck_assert_uint_ne(te, (size_t)-1);
	/* Delivered but not acknowledged: still stored, and listed. */
	bool listed = false;
	ck_assert_uint_eq(stored_outbox("a1", &listed), 1);
	ck_assert(listed);
	/* A second checkpointed turn appends; it does not replace. */
	invoke("a1", 1, 2);
	ck_assert(fake_host_wait(&host, 3));
	size_t t1 = find_task("a1", 2);
	answer_wf(t1, 2, 2, true, effect_wf(&oe, effect_req(&ar, 6, NULL)));
	ck_assert(wait_outs(2));
	ck_assert_uint_eq(stored_outbox("a1", &listed), 2);
	ck_assert(listed);
	/* a3 answers both (one at a time): the outbox empties, the flag clears. */
	answer(te, 5, 0, true);
	ck_assert(fake_host_wait(&host, 4));
	size_t te2 = find_task("a3", te + 1);
	ck_assert_uint_ne(te2, (size_t)-1);
	ck_assert_int_eq(task_payload(te2), 6);
	answer(te2, 11, 0, true);
	for (int i = 0; i < 500 && (stored_outbox("a1", &listed) || listed); i++)
		ck_assert_int_eq(gw_runtime_flush(rt, 5000), GW_OK);
	ck_assert_uint_eq(stored_outbox("a1", &listed), 0);
	ck_assert(!listed);
	spawn_arena_fini(&ar);
}
END_TEST

START_TEST(recovery_activates_actors_whose_effects_were_not_delivered)
{
	/* A row left by a crash: a1 with an undelivered a3.Add(7), flagged. */
	char key[128];
	snprintf(key, sizeof key, "%s/a1@1#0", SYS);
	crash_row(7, key, 1);

	/* Nobody calls a1: recovery activates it and its effect goes out. */
	ck_assert_int_eq(gw_runtime_recover_effects(rt), GW_OK);
	ck_assert(fake_host_wait(&host, 1));
	ck_assert_str_eq(task_actor(0), "a3");
	ck_assert_int_eq(task_payload(0), 7);
	ck_assert_str_eq(task_key(0), key);
	answer(0, 7, 0, true);
	bool listed = true;
	for (int i = 0; i < 500 && (stored_outbox("a1", &listed) || listed); i++)
		ck_assert_int_eq(gw_runtime_flush(rt, 5000), GW_OK);
	ck_assert_uint_eq(stored_outbox("a1", &listed), 0);
	ck_assert(!listed);
	int64_t v3 = 0;
	ck_assert_int_eq(stored_revision("a3", &v3), 1);
	ck_assert_int_eq(v3, 7);
}
END_TEST

START_TEST(a_scheduled_side_effect_is_stored_once_with_its_key_not_run)
{
	/* a1's checkpointed turn emits a3.Add(9) scheduled an hour ahead. */
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__InvocationRequest *eff = effect_req(&ar, 9, NULL);
	int64_t due = spawn_wall_ms() + 3600 * 1000;
	eff->scheduled_to = due;
	one_effect oe;
	uint64_t rev = stored_revision("a1", NULL) + 1;
	answer_wf(0, 1, 1, true, effect_wf(&oe, eff));
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	/* Stored as a scheduled invocation (that is its acknowledgement: the
	 * outbox empties), not run. */
	bool listed = true;
	for (int i = 0; i < 500 && (stored_outbox("a1", &listed) || listed); i++)
		ck_assert_int_eq(gw_runtime_flush(rt, 5000), GW_OK);
	ck_assert_uint_eq(stored_outbox("a1", &listed), 0);
	ck_assert_uint_eq(host.ntasks, 1); /* a3 was never called */
	gw_store *s2;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s2, url, &so), GW_OK);
	uint64_t pending = 0;
	ck_assert_int_eq(gw_store_schedule_count(s2, &pending), GW_OK);
	ck_assert_uint_eq(pending, 1);
	int64_t next = 0;
	ck_assert_int_eq(gw_store_schedule_next_due(s2, &next), GW_OK);
	ck_assert_int_eq(next, due);
	/* The row holds the effect with its idempotency key. */
	gw_sched *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(gw_store_schedule_claim(s2, due, "t", 1000, 4, &v, &n), GW_OK);
	ck_assert_uint_eq(n, 1);
	Spawn__InvocationRequest *rq = spawn__invocation_request__unpack(NULL, v[0].len, v[0].data);
	ck_assert_ptr_nonnull(rq);
	ck_assert_str_eq(rq->actor->id->name, "a3");
	char want[128];
	snprintf(want, sizeof want, "%zu:%s2:a1@%llu#0", strlen(SYS), SYS, (unsigned long long)rev);
	const char *key = NULL;
	for (size_t i = 0; i < rq->n_metadata; i++)
		if (!strcmp(rq->metadata[i]->key, "spawn-idempotency-key"))
			key = rq->metadata[i]->value;
	ck_assert_ptr_nonnull(key);
	ck_assert_str_eq(key, want);
	/* Storing the same outbox entry again (a redelivery after a crash)
	 * finds its row: still one. */
	gw_inv *again = gw_inv_create(0);
	size_t len = spawn__invocation_request__get_packed_size(rq);
	uint8_t *buf = spawn_arena_alloc(&again->arena, len);
	spawn__invocation_request__pack(rq, buf);
	again->req = spawn__invocation_request__unpack(&again->arena.pbc, len, buf);
	again->req->scheduled_to = due;
	again->idem_key = (char *)key; /* the outbox entry's key (out of band) */
	again->effect = true;
	again->done = on_done;
	again->user = (void *)(intptr_t)7;
	gw_runtime_invoke(rt, again);
	ck_assert(wait_outs(2)); /* stored (or found stored) */
	ck_assert_int_eq(outs[1].tag, 7);
	ck_assert_int_eq(outs[1].err, GW_OK);
	ck_assert_int_eq(gw_store_schedule_count(s2, &pending), GW_OK);
	ck_assert_uint_eq(pending, 1);
	spawn__invocation_request__free_unpacked(rq, NULL);
	gw_sched_free(v, n);
	gw_store_close(s2);
	spawn_arena_fini(&ar);
}
END_TEST

/* ---- batched activation on the persist thread ------------------------------------ */

enum { ACTS = 150 };
typedef struct act_rec {
	gw_err err;
	uint64_t rev, epoch;
	size_t len;
	int order;
} act_rec;
static act_rec acts[ACTS + 1];
static int acts_done;
static bool gate_open, gate_entered;
static pthread_mutex_t act_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t act_cv = PTHREAD_COND_INITIALIZER;

/* gate_cb holds the persist thread until the test opens the gate, so the
 * activations queued meanwhile are all in its next drain. */
static void gate_cb(void *arg, gw_err err, gw_blob *state, uint64_t rev, uint64_t epoch)
{
	(void)arg, (void)err, (void)rev, (void)epoch;
	gw_blob_rele(state);
	pthread_mutex_lock(&act_mu);
	gate_entered = true;
	pthread_cond_broadcast(&act_cv);
	while (!gate_open)
		pthread_cond_wait(&act_cv, &act_mu);
	pthread_mutex_unlock(&act_mu);
}

/* gate_close queues the gate and waits until the persist thread is held
 * in it: every job queued after this is in its next drain. */
static void gate_close(void)
{
	gate_open = gate_entered = false;
	ck_assert_int_eq(gw_persist_read(persist, SYS, "gate", 0, gate_cb, NULL), GW_OK);
	pthread_mutex_lock(&act_mu);
	while (!gate_entered)
		pthread_cond_wait(&act_cv, &act_mu);
	pthread_mutex_unlock(&act_mu);
}

static void put_cb(void *arg, gw_err err)
{
	__atomic_store_n((gw_err *)arg, err, __ATOMIC_RELEASE);
}

static void act_cb(void *arg, gw_err err, gw_blob *state, uint64_t rev, uint64_t epoch)
{
	act_rec *r = arg;
	r->err = err;
	r->rev = rev;
	r->epoch = epoch;
	r->len = state ? state->len : 0;
	gw_blob_rele(state);
	pthread_mutex_lock(&act_mu);
	r->order = acts_done++;
	pthread_cond_broadcast(&act_cv);
	pthread_mutex_unlock(&act_mu);
}

START_TEST(activations_queued_together_run_as_store_batches_each_with_its_own_result)
{
	/* Every third actor has stored state. */
	gw_store *s3;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s3, url, &so), GW_OK);
	for (int i = 0; i < ACTS; i += 3) {
		char name[16];
		snprintf(name, sizeof name, "act%d", i);
		gw_state st = {
		    .key = {SYS, name}, .type_url = "", .data = (const uint8_t *)"s", .len = 1};
		gw_err r;
		ck_assert_int_eq(gw_store_save_batch(s3, &st, 1, &r), GW_OK);
		ck_assert_int_eq(r, GW_OK);
	}
	gw_store_close(s3);
	gw_persist_stats before, after;
	gw_persist_get_stats(persist, &before);
	memset(acts, 0, sizeof acts);
	acts_done = 0;
	gate_close();
	for (int i = 0; i < ACTS; i++) {
		char name[16];
		snprintf(name, sizeof name, "act%d", i);
		ck_assert_int_eq(gw_persist_activate(persist, SYS, name, act_cb, &acts[i]), GW_OK);
	}
	/* An actor already in the pending group: a batch of its own, after. */
	ck_assert_int_eq(gw_persist_activate(persist, SYS, "act140", act_cb, &acts[ACTS]), GW_OK);
	pthread_mutex_lock(&act_mu);
	gate_open = true;
	pthread_cond_broadcast(&act_cv);
	while (acts_done < ACTS + 1)
		pthread_cond_wait(&act_cv, &act_mu);
	pthread_mutex_unlock(&act_mu);
	for (int i = 0; i <= ACTS; i++) {
		ck_assert_int_eq(acts[i].order, i); /* callbacks in arrival order */
		int actor = i == ACTS ? 140 : i;
		ck_assert_int_eq(acts[i].err, actor % 3 == 0 ? GW_OK : GW_ENOTFOUND);
		ck_assert_uint_eq(acts[i].rev, actor % 3 == 0 ? 1 : 0);
		ck_assert_uint_eq(acts[i].len, actor % 3 == 0 ? 1 : 0);
		ck_assert_uint_eq(acts[i].epoch, i == ACTS ? 2 : 1);
	}
	/* max_batch 64: 64 + 64 + 22, then act140 again on its own. */
	gw_persist_get_stats(persist, &after);
	ck_assert_uint_eq(after.activate_batches - before.activate_batches, 4);
	ck_assert_uint_eq(after.loads - before.loads, ACTS + 2);

	/* Jobs of other actors between the activations (records of new
	 * instances) do not break the group; a job of an actor in the group
	 * (a read of b3) runs the group first. */
	enum { B = 10 };
	static act_rec bs[B + 5], rd;
	static gw_err puts[B];
	memset(bs, 0, sizeof bs);
	memset(&rd, 0, sizeof rd);
	acts_done = 0;
	gw_persist_get_stats(persist, &before);
	gate_close();
	for (int i = 0; i < B; i++) {
		char name[16], inst[16];
		snprintf(name, sizeof name, "b%d", i);
		snprintf(inst, sizeof inst, "inst%d", i);
		ck_assert_int_eq(gw_persist_activate(persist, SYS, name, act_cb, &bs[i]), GW_OK);
		puts[i] = GW_EIO;
		ck_assert_int_eq(
		    gw_persist_instance_put(persist, SYS, inst, "tmpl", put_cb, &puts[i]), GW_OK);
	}
	ck_assert_int_eq(gw_persist_read(persist, SYS, "b3", 0, act_cb, &rd), GW_OK);
	for (int i = B; i < B + 5; i++) {
		char name[16];
		snprintf(name, sizeof name, "b%d", i);
		ck_assert_int_eq(gw_persist_activate(persist, SYS, name, act_cb, &bs[i]), GW_OK);
	}
	pthread_mutex_lock(&act_mu);
	gate_open = true;
	pthread_cond_broadcast(&act_cv);
	while (acts_done < B + 5 + 1)
		pthread_cond_wait(&act_cv, &act_mu);
	pthread_mutex_unlock(&act_mu);
	for (int i = 0; i < B + 5; i++) {
		ck_assert_int_eq(bs[i].err, GW_ENOTFOUND);
		ck_assert_uint_eq(bs[i].epoch, 1);
	}
	/* The records are bulk work: they run after the activations (persist.c). */
	for (int i = 0; i < B; i++) {
		wait_until(__atomic_load_n(&puts[i], __ATOMIC_ACQUIRE) == GW_OK);
		ck_assert_int_eq(__atomic_load_n(&puts[i], __ATOMIC_ACQUIRE), GW_OK);
	}
	ck_assert_int_lt(bs[3].order, rd.order); /* b3's read after b3's activation */
	gw_persist_get_stats(persist, &after);
	ck_assert_uint_eq(after.activate_batches - before.activate_batches, 2);
}
END_TEST

/* ---- one turn outcome ------------------------------------------------------------ */

static uint64_t active_actors(void)
{
	gw_runtime_stats st;
	gw_runtime_get_stats(rt, &st);
	return st.active_actors;
}

/* A workflow of two side effects to a3 (caller storage). */
typedef struct two_effects {
	Spawn__SideEffect se[2], *sep[2];
	Spawn__Workflow wf;
} two_effects;

static Spawn__Workflow *two_effects_wf(two_effects *e, spawn_arena *ar, int64_t v0, int64_t v1)
{
	for (int i = 0; i < 2; i++) {
		spawn__side_effect__init(&e->se[i]);
		e->se[i].request = effect_req(ar, i ? v1 : v0, NULL);
		e->sep[i] = &e->se[i];
	}
	spawn__workflow__init(&e->wf);
	e->wf.n_effects = 2;
	e->wf.effects = e->sep;
	return &e->wf;
}

START_TEST(a_failed_checkpoint_rolls_back_state_tags_and_exactly_its_own_outbox_entries_and_key)
{
	teardown();
	setup_with(100, true, 60000, 800);
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	/* Turn 1 (checkpoint) emits a3.Add(5); a3 does not answer yet, so
	 * that entry stays in the outbox, in flight. */
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	one_effect oe;
	answer_wf(0, 1, 1, true, effect_wf(&oe, effect_req(&ar, 5, NULL)));
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	ck_assert(fake_host_wait(&host, 2));
	size_t te = find_task("a3", 1);
	ck_assert_uint_ne(te, (size_t)-1);
	/* Turn 2 (snapshot mode) leaves state 2 in memory only. */
	invoke("a1", 1, 2);
	ck_assert(fake_host_wait(&host, 3));
	size_t t2 = find_task("a1", 1);
	answer(t2, 2, 2, false);
	ck_assert(wait_outs(2));
	/* Turn 3 is a delivery under key K3. */
	invoke_keyed("a1", 1, 3, "test/K3");
	ck_assert(fake_host_wait(&host, 4));
	size_t t3 = find_task("a1", t2 + 1);
	ck_assert_uint_ne(t3, (size_t)-1);
	/* A snapshot save of a1 (state 2) is queued while the persist thread
	 * is held; turn 3's checkpoint (state 3, a tag, two effects) waits
	 * behind it. The snapshot commits (revision 2); the checkpoint's own
	 * save fails. */
	gate_close();
	(void)gw_runtime_flush(rt, 1);
	atomic_store(&save_pass, 1);
	atomic_store(&save_fail, 1);
	two_effects tw;
	answer_full(t3, 3, 3, true, two_effects_wf(&tw, &ar, 6, 7), "color", "red");
	pthread_mutex_lock(&act_mu);
	gate_open = true;
	pthread_cond_broadcast(&act_cv);
	pthread_mutex_unlock(&act_mu);
	ck_assert(wait_outs(3));
	ck_assert_int_eq(outs[2].err, GW_EUNAVAIL);
	ck_assert_int_eq(atomic_load(&save_fail), 0);
	/* State AND tags are what they were before turn 3. */
	read_result r = read_state("a1", 0);
	ck_assert_int_eq(r.err, GW_OK);
	ck_assert_int_eq(r.value, 2);
	ck_assert_uint_eq(r.ntags, 0);
	ck_assert_int_eq(stored_revision("a1", NULL), 2); /* the snapshot committed */
	/* Key K3 was dropped with the turn: its redelivery runs again. */
	invoke_keyed("a1", 1, 4, "test/K3");
	ck_assert(fake_host_wait(&host, 5));
	size_t t4 = find_task("a1", t3 + 1);
	ck_assert_uint_ne(t4, (size_t)-1);
	ck_assert_int_eq(task_state(t4), 2);
	ck_assert_ptr_null(fake_task_inv(&host, t4)->current_context->tags);
	answer(t4, 4, 4, false);
	ck_assert(wait_outs(4));
	ck_assert_int_eq(outs[3].err, GW_OK);
	/* Exactly turn 3's entries were dropped: turn 1's is still stored,
	 * and once a3 answers it, the outbox is empty. */
	ck_assert_int_eq(gw_runtime_flush(rt, 5000), GW_OK);
	bool listed = false;
	ck_assert_uint_eq(stored_outbox("a1", &listed), 1);
	ck_assert(listed);
	answer(te, 5, 0, false);
	for (int i = 0; i < 500 && (stored_outbox("a1", &listed) || listed); i++)
		ck_assert_int_eq(gw_runtime_flush(rt, 5000), GW_OK);
	ck_assert_uint_eq(stored_outbox("a1", &listed), 0);
	ck_assert(!listed);
	/* No task ever carried turn 3's effects (6 and 7). */
	for (size_t i = 0; i < host.ntasks; i++)
		if (!strcmp(task_actor(i), "a3"))
			ck_assert_int_eq(task_payload(i), 5);
	/* Nothing holds a1 any more: it is released after its idle time. */
	wait_until(active_actors() == 0);
	ck_assert_uint_eq(active_actors(), 0);
	int64_t v = 0;
	stored_revision("a1", &v);
	ck_assert_int_eq(v, 4);
	spawn_arena_fini(&ar);
}
END_TEST

/* ---- idempotency keys: minted by the gateway, never taken from metadata ----------- */

/* task_keys counts the spawn-idempotency-key entries task i carried. */
static size_t task_keys(size_t i)
{
	const Spawn__ActorInvocation *ai = fake_task_inv(&host, i);
	size_t n = 0;
	for (size_t k = 0; ai && k < ai->current_context->n_metadata; k++)
		n += !strcmp(ai->current_context->metadata[k]->key, "spawn-idempotency-key");
	return n;
}

/* A host's side effects carry forged keys in their metadata: the keys the
 * real effect of a1's next checkpointed turn will use (in this format and
 * in the one before). Taken from metadata, they would be recorded by a3
 * as applied and the real effect skipped. */
START_TEST(a_key_forged_in_metadata_cannot_suppress_the_real_effect)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	char forged_new[128], forged_old[128];
	snprintf(forged_new, sizeof forged_new, "%zu:%s2:a1@1#0", strlen(SYS), SYS);
	snprintf(forged_old, sizeof forged_old, "%s/a1@1#0", SYS);
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	Spawn__SideEffect se[2] = {SPAWN__SIDE_EFFECT__INIT, SPAWN__SIDE_EFFECT__INIT};
	Spawn__SideEffect *sep[] = {&se[0], &se[1]};
	se[0].request = effect_req(&ar, 100, forged_new);
	se[1].request = effect_req(&ar, 200, forged_old);
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	wf.n_effects = 2;
	wf.effects = sep;
	answer_wf(0, 1, 1, false, &wf); /* a1 stays unsaved: revision 0 */
	ck_assert(wait_outs(1));
	/* a3 runs both forged deliveries and checkpoints them. */
	for (size_t seen = 1; seen < 3; seen++) {
		ck_assert(fake_host_wait(&host, seen + 1));
		size_t t = find_task("a3", seen);
		ck_assert_uint_ne(t, (size_t)-1);
		ck_assert_uint_eq(task_keys(t), 0); /* not ours: not relayed either */
		answer(t, task_state(t) < 0 ? task_payload(t) : task_state(t) + task_payload(t), 0,
		       true);
	}
	/* a1's checkpointed turn (committed as revision 1) emits the real effect. */
	invoke("a1", 1, 2);
	ck_assert(fake_host_wait(&host, 4));
	size_t t1 = find_task("a1", 3);
	ck_assert_uint_ne(t1, (size_t)-1);
	one_effect oe;
	answer_wf(t1, 2, 2, true, effect_wf(&oe, effect_req(&ar, 5, NULL)));
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_OK);
	ck_assert_int_eq(stored_revision("a1", NULL), 1); /* a3 has not answered: no ack yet */
	/* It reaches a3, under the gateway's key (shown once, for information). */
	ck_assert(fake_host_wait(&host, 5));
	size_t te = find_task("a3", t1 + 1);
	ck_assert_uint_ne(te, (size_t)-1);
	ck_assert_int_eq(task_payload(te), 5);
	ck_assert_uint_eq(task_keys(te), 1);
	ck_assert_str_eq(task_key(te), forged_new);
	answer(te, 305, 0, true);
	int64_t v3 = 0;
	for (int i = 0; i < 500 && stored_revision("a3", &v3) < 3; i++)
		ck_assert_int_eq(gw_runtime_flush(rt, 5000), GW_OK);
	ck_assert_int_eq(v3, 305);
	spawn_arena_fini(&ar);
}
END_TEST

/* put_keyed_scheduled stores an overdue scheduled call a3.Add(value)
 * whose request metadata carries key, under row id. */
static void put_keyed_scheduled(const char *id, int64_t value, const char *key)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__InvocationRequest *rq = effect_req(&ar, value, key);
	rq->scheduled_to = spawn_wall_ms() - 1000;
	uint8_t buf[512];
	size_t n = spawn__invocation_request__pack(rq, buf);
	gw_store *s3;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s3, url, &so), GW_OK);
	ck_assert_int_eq(gw_store_schedule_put(s3, id, rq->scheduled_to, buf, n), GW_OK);
	gw_store_close(s3);
	spawn_arena_fini(&ar);
}

/* A side effect stored for later keeps its key: the scheduler takes it
 * back from the row only when the row id derives from it (a row this
 * gateway wrote for that effect). A client's scheduled call carrying a key
 * in its metadata (another row id) gets none. */
START_TEST(a_scheduled_row_gives_back_its_key_only_when_the_gateway_wrote_it)
{
	char k1[64], rest[31], id1[40];
	snprintf(k1, sizeof k1, "%zu:%s2:a1@9#0", strlen(SYS), SYS);
	ck_assert(gwi_effect_id(k1, rest));
	snprintf(id1, sizeof id1, "%08" PRIx32 ".%s", gwi_sys_hash(SYS), rest);
	put_keyed_scheduled(id1, 1, k1);
	put_keyed_scheduled("client-row-1", 2, "forged-key");
	gw_runtime_start_scheduler(rt, "test-gateway", 60000);
	for (size_t n = 1; n <= 2; n++) {
		ck_assert(fake_host_wait(&host, n));
		size_t t = n - 1;
		ck_assert_str_eq(task_actor(t), "a3");
		if (task_payload(t) == 1) {
			ck_assert_uint_eq(task_keys(t), 1);
			ck_assert_str_eq(task_key(t), k1);
		} else {
			ck_assert_int_eq(task_payload(t), 2);
			ck_assert_uint_eq(task_keys(t), 0);
		}
		answer(t, (int64_t)n, 0, true);
	}
	ck_assert_int_eq(wait_schedule_empty(), 0);
	/* The effect's row stored again (a redelivery after a crash) is
	 * recognised by a3: skipped, never sent to the host. */
	put_keyed_scheduled(id1, 1, k1);
	/* (written behind the scheduler's back: its next pass, within 5 s) */
	uint64_t left = 1;
	for (int i = 0; i < 3 && left; i++)
		left = wait_schedule_empty();
	ck_assert_int_eq(left, 0);
	ck_assert_uint_eq(host.ntasks, 2);
}
END_TEST

/* put_applied writes a3's row as the previous format left it: state 11 and
 * the keys it applied (old-format strings). */
static void put_applied(const char *key)
{
	int64_t v = 11;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = STATE_TYPE;
	any.value.data = (uint8_t *)&v;
	any.value.len = 8;
	char *applied[] = {(char *)key};
	Spawn__Gateway__V1__StoredState ss = SPAWN__GATEWAY__V1__STORED_STATE__INIT;
	ss.state = &any;
	ss.n_applied = 1;
	ss.applied = applied;
	uint8_t buf[512];
	size_t n = spawn__gateway__v1__stored_state__pack(&ss, buf);
	gw_store *s2;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s2, url, &so), GW_OK);
	gw_state st = {.key = {SYS, "a3"}, .type_url = STATE_TYPE, .data = buf, .len = n};
	gw_err res;
	ck_assert_int_eq(gw_store_save_batch(s2, &st, 1, &res), GW_OK);
	ck_assert_int_eq(res, GW_OK);
	gw_store_close(s2);
}

/* After an upgrade: a1's outbox entry and a3's applied list were written
 * by the previous format (key "system/actor@rev#n", carried in the entry's
 * metadata). The redelivery is still recognised as applied. */
START_TEST(keys_stored_by_the_previous_format_still_dedupe_after_an_upgrade)
{
	char old[128];
	snprintf(old, sizeof old, "%s/a1@4#0", SYS);
	put_applied(old);
	crash_row(11, old, 1);
	invoke("a1", 1, 1); /* activates a1: its outbox goes out again */
	ck_assert(fake_host_wait(&host, 1));
	size_t t1 = find_task("a1", 0);
	ck_assert_uint_ne(t1, (size_t)-1);
	answer(t1, 2, 2, false);
	ck_assert(wait_outs(1));
	/* a3 skips it (its key is in the applied list), so the outbox empties
	 * without a3 ever being called. */
	bool listed = true;
	for (int i = 0; i < 500 && (stored_outbox("a1", &listed) || listed); i++)
		ck_assert_int_eq(gw_runtime_flush(rt, 5000), GW_OK);
	ck_assert_uint_eq(stored_outbox("a1", &listed), 0);
	ck_assert_uint_eq(host.ntasks, 1);
	int64_t v3 = 0;
	ck_assert_int_eq(stored_revision("a3", &v3), 1);
	ck_assert_int_eq(v3, 11);
}
END_TEST

/* ---- workflows say what happened -------------------------------------------------- */

START_TEST(a_side_effect_without_a_system_goes_to_the_emitting_actors_system)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	Spawn__InvocationRequest *rq = effect_req(&ar, 9, NULL);
	rq->system = NULL; /* as the SDKs send it: "your own system" */
	one_effect oe;
	answer_wf(0, 1, 1, false, effect_wf(&oe, rq));
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_str_eq(task_actor(1), "a3");
	ck_assert_str_eq(fake_task_inv(&host, 1)->actor->system, SYS);
	ck_assert_int_eq(task_payload(1), 9);
	spawn_arena_fini(&ar);
}
END_TEST

/* A workflow entry the gateway cannot accept fails the turn: the caller
 * gets INVALID_ARGUMENT naming the entry, the turn's state is not kept
 * (the host's next task carries the state from before), nothing runs. */
START_TEST(a_workflow_entry_that_cannot_be_accepted_fails_the_turn)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	invoke("a1", 1, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 10, 10, false);
	ck_assert(wait_outs(1));
	invoke("a1", 1, 2);
	ck_assert(fake_host_wait(&host, 2));
	Spawn__SideEffect se[2] = {SPAWN__SIDE_EFFECT__INIT, SPAWN__SIDE_EFFECT__INIT};
	Spawn__SideEffect *sep[] = {&se[0], &se[1]};
	se[0].request = effect_req(&ar, 1, NULL);
	se[1].request = effect_req(&ar, 2, NULL);
	se[1].request->actor->id->name = ""; /* names no actor */
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	wf.n_effects = 2;
	wf.effects = sep;
	answer_wf(1, 11, 11, true, &wf);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_EINVAL);
	ck_assert_msg(strstr(outs[1].msg, "side effect 2 of a1 names no actor"), "msg: %s",
	              outs[1].msg);
	ck_assert_int_eq(outs[1].reply, -1);
	ck_assert_int_eq(stored_revision("a1", NULL), 0); /* the checkpoint never ran */
	invoke("a1", 1, 3);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_str_eq(task_actor(2), "a1");
	ck_assert_int_eq(task_state(2), 10); /* not 11 */
	answer(2, 12, 12, false);
	ck_assert(wait_outs(3));
	ck_assert_uint_eq(host.ntasks, 3); /* the valid effect did not run either */
	spawn_arena_fini(&ar);
}
END_TEST

START_TEST(an_error_from_a_pipe_or_forward_target_says_where_it_came_from)
{
	invoke("a1", 5, 1);
	ck_assert(fake_host_wait(&host, 1));
	Spawn__Pipe pipe = SPAWN__PIPE__INIT;
	pipe.actor = "a2";
	pipe.action_name = "Add";
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	wf.routing_case = SPAWN__WORKFLOW__ROUTING_PIPE;
	wf.pipe = &pipe;
	answer_wf(0, 1, 42, false, &wf);
	ck_assert(fake_host_wait(&host, 2));
	answer_error(1, 9, "balance too low");
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_EHOST);
	ck_assert_int_eq(outs[0].host_code, 9);
	ck_assert_str_eq(outs[0].msg, "pipe to " SYS "/a2.Add: balance too low");
	/* forward to an action the target does not have */
	invoke("a1", 5, 2);
	ck_assert(fake_host_wait(&host, 3));
	Spawn__Forward fw = SPAWN__FORWARD__INIT;
	fw.actor = "a2";
	fw.action_name = "Nope";
	Spawn__Workflow wf2 = SPAWN__WORKFLOW__INIT;
	wf2.routing_case = SPAWN__WORKFLOW__ROUTING_FORWARD;
	wf2.forward = &fw;
	answer_wf(2, 2, 42, false, &wf2);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_ENOTFOUND);
	ck_assert_msg(!strncmp(outs[1].msg, "forward to " SYS "/a2.Nope: ", 28), "msg: %s",
	              outs[1].msg);
}
END_TEST

/* metrics_expect asserts that the exposition holds exactly this line. */
static void metrics_expect(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)); p += n)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	ck_abort_msg("no line '%s' in:\n%s", line, text);
}

/* With metrics on, the runtime counts each finished invocation under its
 * system, actor type, action and status, times it, counts the activation
 * and the store's activation batch; calls to unknown names count under
 * "_none" and never under the name they made up. */
START_TEST(the_runtime_records_invocations_into_metrics)
{
	ck_assert_ptr_nonnull(tgm = gw_gm_create());
	gw_runtime_set_metrics(rt, tgm);
	gw_persist_set_metrics(persist, tgm);
	for (int i = 1; i <= 3; i++)
		invoke("a1", 1, i);
	for (size_t i = 0; i < 3; i++) {
		ck_assert(fake_host_wait(&host, i + 1));
		answer(i, (int64_t)i + 1, (int64_t)i + 1, false);
	}
	invoke("a1", 1, 4);
	ck_assert(fake_host_wait(&host, 4));
	answer_error(3, 9, "no");
	invoke("made-up-name", 1, 5);
	ck_assert(wait_outs(5));
	char *text = NULL;
	size_t len = 0;
	ck_assert_int_eq(gw_metrics_render(gw_gm_registry(tgm), &text, &len), GW_OK);
	metrics_expect(text, "spawn_invocations_total{system=\"" SYS
	                     "\",actor=\"a1\",action=\"Add\",status=\"OK\"} 3");
	metrics_expect(text, "spawn_invocation_duration_seconds_count{system=\"" SYS
	                     "\",actor=\"a1\"} 4");
	metrics_expect(text,
	               "spawn_invocation_host_seconds_count{system=\"" SYS "\",actor=\"a1\"} 4");
	metrics_expect(text, "spawn_invocations_total{system=\"_none\",actor=\"_none\","
	                     "action=\"_none\",status=\"NOT_FOUND\"} 1");
	metrics_expect(text, "spawn_activations_total{system=\"" SYS "\",actor=\"a1\"} 1");
	metrics_expect(text, "spawn_actors_active{system=\"" SYS "\",actor=\"a1\"} 1");
	metrics_expect(text, "spawn_activation_seconds_count 1");
	metrics_expect(text, "spawn_mailbox_depth_count 4");
	ck_assert_ptr_null(strstr(text, "made-up-name"));
	free(text);
}
END_TEST

static Suite *runtime_suite(void)
{
	rtf_case cases[] = {
	    {"mailbox", mailbox_runs_one_invocation_at_a_time_in_arrival_order},
	    {"concurrency", different_actors_run_concurrently},
	    {"metrics", the_runtime_records_invocations_into_metrics},
	    {"state", state_returned_by_the_host_reaches_the_next_invocation},
	    {"bounds", a_full_mailbox_answers_resource_exhausted},
	    {"names", unknown_names_and_missing_fields_are_refused},
	    {"no-host", no_live_host_answers_unavailable},
	    {"host-error", a_host_error_reaches_the_caller_and_keeps_the_state},
	    {"abandon", an_abandoned_invocation_fails_unavailable_and_keeps_the_state},
	    {"checkpoint", a_checkpointed_reply_waits_for_the_durable_save},
	    {"unchanged", an_unchanged_state_is_not_saved_again},
	    {"deadline", a_deadline_that_passes_fails_the_call_and_frees_the_actor},
	    {"held_turn", a_written_task_past_its_deadline_holds_the_actor_until_released},
	    {"held_pooled", a_pooled_actor_keeps_a_slot_per_held_turn},
	    {"snapshot", snapshot_interval_saves_a_changed_state_without_a_checkpoint},
	    {"deactivation",
	     an_idle_actor_is_deactivated_after_a_final_save_and_reactivated_with_its_state},
	    {"flush", flush_saves_every_dirty_actor},
	    {"stateless", stateless_actors_never_touch_the_store},
	    {"order-1000", thousand_actors_keep_per_actor_order},
	    {"unnamed", register_ref_creates_instances_of_unnamed_actors},
	    {"fencing", a_fenced_activation_refuses_its_checkpoint_and_reloads_the_newer_state},
	    {"read", state_is_read_without_a_host_from_memory_or_the_store},
	    {"restore", a_restore_makes_an_old_revision_current_as_a_new_revision},
	    {"pipe", pipe_answers_the_caller_with_the_next_action_fed_with_the_reply},
	    {"forward", forward_passes_the_input_on},
	    {"effects", side_effects_run_after_the_reply_without_blocking_it},
	    {"hops", a_pipe_cycle_is_cut_by_the_hop_limit},
	    {"broadcast", broadcast_reaches_every_subscriber_of_the_channel},
	    {"timers", timer_actions_run_while_active_one_at_a_time},
	    {"pooled", pooled_actors_run_up_to_their_pool_size_in_parallel},
	    {"durable", instances_and_scheduled_invocations_survive_a_restart},
	    {"sched-burst",
	     a_burst_of_due_scheduled_invocations_runs_each_once_and_deletes_every_row},
	    {"sched-busy", scheduled_invocations_fire_while_the_persist_queue_never_empties},
	    {"sched-sealed-for-another",
	     a_scheduled_invocation_sealed_for_another_system_is_never_delivered},
	    {"outbox", checkpointed_effects_are_stored_with_the_state_and_applied_once},
	    {"outbox-ack", the_outbox_stays_stored_until_its_deliveries_are_acknowledged},
	    {"outbox-recover", recovery_activates_actors_whose_effects_were_not_delivered},
	    {"outbox-scheduled", a_scheduled_side_effect_is_stored_once_with_its_key_not_run},
	    {"activate-batch",
	     activations_queued_together_run_as_store_batches_each_with_its_own_result},
	    {"effect-own-system",
	     a_side_effect_without_a_system_goes_to_the_emitting_actors_system},
	    {"workflow-refused", a_workflow_entry_that_cannot_be_accepted_fails_the_turn},
	    {"route-errors", an_error_from_a_pipe_or_forward_target_says_where_it_came_from},
	    {"forged-key", a_key_forged_in_metadata_cannot_suppress_the_real_effect},
	    {"sched-key", a_scheduled_row_gives_back_its_key_only_when_the_gateway_wrote_it},
	    {"legacy-keys", keys_stored_by_the_previous_format_still_dedupe_after_an_upgrade},
	    {"turn-rollback",
	     a_failed_checkpoint_rolls_back_state_tags_and_exactly_its_own_outbox_entries_and_key},
	};
	return RTF_SUITE("runtime", cases, setup, teardown);
}

int main(void)
{
	return rtf_run(runtime_suite());
}
