/* bounds_test.c - the runtime's bounds (gateway/runtime/bounds.c and the
 * result checks in runtime.c) against a fake host and a real SQLite store:
 * side effects per turn, outbox bytes per actor, effects in flight per
 * gateway, the state size a result may leave, quotas per system on
 * instances and schedules (across a restart), and the persist thread's
 * urgent class running ahead of bulk work. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt_fixture.h"

#define SYS "bounds-system"

static gw_runtime_opts ropts;

/* "a1".."a9" (NAMED, stateful) and "tmpl" (UNNAMED, stateful): Add. */
static void register_all(void)
{
	Spawn__Actors__ActorSettings named = SPAWN__ACTORS__ACTOR_SETTINGS__INIT,
	                             unnamed = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	named.kind = SPAWN__ACTORS__KIND__NAMED;
	named.stateful = true;
	named.state_type = STATE_TYPE;
	unnamed.kind = SPAWN__ACTORS__KIND__UNNAMED;
	unnamed.stateful = true;
	unnamed.state_type = STATE_TYPE;
	char names[10][8];
	rtf_actor actors[10];
	for (int i = 0; i < 10; i++) {
		if (i < 9)
			snprintf(names[i], sizeof names[i], "a%d", i + 1);
		else
			snprintf(names[i], sizeof names[i], "tmpl");
		actors[i] = (rtf_actor){names[i], i < 9 ? &named : &unnamed};
	}
	char why[256] = "";
	ck_assert_int_eq(rtf_register(&host, SYS, actors, 10, (const char *const[]){"Add", NULL},
	                              why, sizeof why),
	                 GW_OK);
}

static void start_runtime(void)
{
	ck_assert_int_eq(gw_registry_create(&reg, NULL), GW_OK);
	register_all();
	ck_assert_int_eq(gw_runtime_create(&rt, &ropts, reg, persist), GW_OK);
	ck_assert_int_eq(gw_runtime_load_quotas(rt), GW_OK);
}

static void stop_runtime(void)
{
	gw_runtime_flush(rt, 2000);
	gw_runtime_destroy(rt);
	gw_registry_destroy(reg);
	rt = NULL;
	reg = NULL;
}

static void setup(void)
{
	rtf_open("bounds");
	memset(&ropts, 0, sizeof ropts);
	ropts.shards = 4;
	ropts.mailbox_max = 100;
	ropts.host_timeout_ms = 60000;
}

static void teardown(void)
{
	rtf_close();
}

/* ---- helpers ------------------------------------------------------------------- */

static Spawn__InvocationRequest *req_new(spawn_arena *a, const char *actor, const char *ref,
                                         size_t payload)
{
	Spawn__InvocationRequest *rq = rtf_request(a, SYS, actor, "Add");
	rq->register_ref = ref ? spawn_arena_strdup(a, ref) : "";
	rq->value = spawn_arena_alloc(a, sizeof *rq->value);
	google__protobuf__any__init(rq->value);
	rq->value->type_url = "type.googleapis.com/test.Add";
	rq->value->value.data = spawn_arena_alloc(a, payload ? payload : 1);
	memset(rq->value->value.data, 'p', payload);
	rq->value->value.len = payload;
	rq->payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	return rq;
}

static void invoke(const char *actor, const char *ref, int tag)
{
	gw_inv *inv = gw_inv_create(0);
	inv->req = req_new(&inv->arena, actor, ref, 8);
	inv->done = on_done;
	inv->user = (void *)(intptr_t)tag;
	gw_runtime_invoke(rt, inv);
}

static const char *task_actor(size_t i)
{
	return fake_task_inv(&host, i)->actor->name;
}

/* the state a task carried: its length, or -1 when none */
static long task_state_len(size_t i)
{
	const Spawn__ActorInvocation *ai = fake_task_inv(&host, i);
	return ai->current_context && ai->current_context->state
	           ? (long)ai->current_context->state->value.len
	           : -1;
}

/* answer task i with a state of state_len bytes ('s'), and n_effects side
 * effects to a9 carrying effect_payload bytes each. */
static void answer(size_t i, size_t state_len, bool checkpoint, size_t n_effects,
                   size_t effect_payload)
{
	uint64_t id;
	gw_inv *inv = rtf_take(&host, i, &id);
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	uint8_t *sv = spawn_arena_alloc(&ar, state_len ? state_len : 1);
	memset(sv, 's', state_len);
	Google__Protobuf__Any st = GOOGLE__PROTOBUF__ANY__INIT;
	st.type_url = STATE_TYPE;
	st.value.data = sv;
	st.value.len = state_len;
	Spawn__Context ctx = SPAWN__CONTEXT__INIT;
	ctx.state = &st;
	Spawn__ActorInvocationResponse r = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	r.updated_context = &ctx;
	r.checkpoint = checkpoint;
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	if (n_effects) {
		Spawn__SideEffect **sep = spawn_arena_alloc(&ar, n_effects * sizeof *sep);
		for (size_t k = 0; k < n_effects; k++) {
			sep[k] = spawn_arena_alloc(&ar, sizeof **sep);
			spawn__side_effect__init(sep[k]);
			sep[k]->request = req_new(&ar, "a9", NULL, effect_payload);
		}
		wf.n_effects = n_effects;
		wf.effects = sep;
		r.workflow = &wf;
	}
	rtf_respond(inv, id, &r);
	spawn_arena_fini(&ar);
}

/* stored_revision: the stored revision of actor (0: no row). */
static uint64_t stored_revision(const char *actor)
{
	gw_store *s2;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s2, url, &so), GW_OK);
	gw_actor_key k = {SYS, actor};
	gw_loaded l;
	uint64_t rev = 0;
	if (gw_store_load(s2, &k, &l) == GW_OK) {
		rev = l.revision;
		gw_loaded_fini(&l);
	}
	gw_store_close(s2);
	return rev;
}

/* no_task_beyond: no more than n tasks were sent in the next 200 ms (a
 * bounded wait for something that must not happen). */
static bool no_task_beyond(size_t n)
{
	return !fake_host_wait_ms(&host, n + 1, 200);
}

/* ---- tests --------------------------------------------------------------------- */

START_TEST(a_turn_with_too_many_side_effects_fails_and_changes_nothing)
{
	ropts.max_effects_per_turn = 3;
	start_runtime();
	invoke("a1", NULL, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 8, true, 4, 8); /* one over the bound, checkpointed */
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_ETOOBIG);
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "--max-effects-per-turn"));
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "4 side effects"));
	ck_assert_uint_eq(stored_revision("a1"), 0); /* nothing saved */
	ck_assert(no_task_beyond(1));                /* nothing delivered */
	/* the state is unchanged: the next task carries none */
	invoke("a1", NULL, 2);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_int_eq(task_state_len(1), -1);
	answer(1, 8, true, 3, 8); /* at the bound: fine */
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_OK);
	ck_assert(fake_host_wait(&host, 3)); /* a9 runs them one at a time */
	ck_assert_str_eq(task_actor(2), "a9");
}
END_TEST

START_TEST(an_outbox_over_its_bytes_fails_the_checkpointed_turn)
{
	ropts.max_outbox_bytes = 4096;
	start_runtime();
	invoke("a1", NULL, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 8, true, 3, 2000); /* about 6 KiB of effects */
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_ETOOBIG);
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "--max-outbox-bytes"));
	ck_assert_uint_eq(stored_revision("a1"), 0);
	ck_assert(no_task_beyond(1));
	/* within the bound it is stored and delivered */
	invoke("a1", NULL, 2);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_int_eq(task_state_len(1), -1);
	answer(1, 8, true, 1, 2000);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_OK);
	ck_assert_uint_eq(stored_revision("a1"), 1);
	ck_assert(fake_host_wait(&host, 3));
}
END_TEST

START_TEST(effects_in_flight_are_bounded_stored_ones_wait_others_fail_their_turn)
{
	ropts.max_effects_in_flight = 2;
	start_runtime();
	/* a1 (not checkpointed) emits 2 effects to a9: the bound is reached */
	invoke("a1", NULL, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 8, false, 2, 8);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	ck_assert(
	    fake_host_wait(&host, 2)); /* a9 runs the first; the second waits in a9's mailbox */
	ck_assert_str_eq(task_actor(1), "a9");
	/* a2 (not checkpointed) emits 1 more: refused, state unchanged */
	invoke("a2", NULL, 2);
	ck_assert(fake_host_wait(&host, 3));
	answer(2, 8, false, 1, 8);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_EFULL);
	ck_assert_ptr_nonnull(strstr(outs[1].msg, "--max-effects-in-flight"));
	invoke("a2", NULL, 3);
	ck_assert(fake_host_wait(&host, 4));
	ck_assert_int_eq(task_state_len(3), -1);
	answer(3, 8, false, 0, 0);
	ck_assert(wait_outs(3));
	/* a3 checkpointed emits 2: stored, answered, the effects wait */
	invoke("a3", NULL, 4);
	ck_assert(fake_host_wait(&host, 5));
	answer(4, 8, true, 2, 8);
	ck_assert(wait_outs(4));
	ck_assert_int_eq(outs[3].err, GW_OK);
	ck_assert_uint_eq(stored_revision("a3"), 1);
	gw_runtime_stats rs;
	gw_runtime_get_stats(rt, &rs);
	ck_assert_uint_eq(rs.effects_in_flight, 2);
	ck_assert_uint_eq(rs.effects_parked, 2);
	/* a9 finishes its first effect: the second (already queued) runs */
	answer(1, 8, false, 0, 0);
	ck_assert(fake_host_wait(&host, 6));
	ck_assert_str_eq(task_actor(5), "a9");
	/* the parked ones go out as room appears: one per finished effect */
	answer(5, 8, false, 0, 0);
	ck_assert(fake_host_wait(&host, 7));
	ck_assert_str_eq(task_actor(6), "a9");
	answer(6, 8, false, 0, 0);
	ck_assert(fake_host_wait(&host, 8));
	ck_assert_str_eq(task_actor(7), "a9");
	answer(7, 8, false, 0, 0);
	ck_assert(no_task_beyond(8));
}
END_TEST

/* stored_outbox: the outbox entries in actor's stored row. */
static size_t stored_outbox(const char *actor)
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
	gw_store_close(s2);
	return n;
}

START_TEST(parked_effects_stay_stored_across_a_shutdown_and_go_out_after_it)
{
	ropts.max_effects_in_flight = 1;
	start_runtime();
	invoke("a3", NULL, 1);
	invoke("a1", NULL, 2);
	ck_assert(fake_host_wait(&host, 2));
	size_t t3 = strcmp(task_actor(0), "a3") ? 1 : 0;
	/* a1's effect to a9 finds no live host: it stays in flight, retrying */
	pthread_mutex_lock(&host.mu);
	host.live = false;
	pthread_mutex_unlock(&host.mu);
	answer(1 - t3, 8, false, 1, 8);
	ck_assert(wait_outs(1));
	answer(t3, 8, true, 2, 8); /* stored, then parked: no room */
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[0].err, GW_OK);
	ck_assert_int_eq(outs[1].err, GW_OK);
	gw_runtime_stats rs;
	gw_runtime_get_stats(rt, &rs);
	ck_assert_uint_eq(rs.effects_in_flight, 1);
	ck_assert_uint_eq(rs.effects_parked, 2);
	ck_assert_uint_eq(stored_outbox("a3"), 2);
	stop_runtime();
	ck_assert_uint_eq(stored_outbox("a3"), 2); /* never dropped */

	pthread_mutex_lock(&host.mu);
	host.live = true;
	pthread_mutex_unlock(&host.mu);
	start_runtime();
	ck_assert_int_eq(gw_runtime_recover_effects(rt), GW_OK);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_str_eq(task_actor(2), "a9");
	answer(2, 8, false, 0, 0);
	ck_assert(fake_host_wait(&host, 4));
	ck_assert_str_eq(task_actor(3), "a9");
	answer(3, 8, false, 0, 0);
	for (int i = 0; i < 2500 && stored_outbox("a3"); i++)
		nanosleep(&(struct timespec){0, 2000000}, NULL); /* readiness poll */
	ck_assert_uint_eq(stored_outbox("a3"), 0);
}
END_TEST

START_TEST(a_state_that_would_not_fit_in_a_later_task_is_refused_at_result_time)
{
	ropts.max_message_bytes = 64 * 1024;
	ropts.max_state_bytes = 16 * 1024;
	start_runtime();
	invoke("a1", NULL, 1);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 20 * 1024, true, 0, 0);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_ETOOBIG);
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "16384"));
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "--max-message-bytes"));
	ck_assert_uint_eq(stored_revision("a1"), 0); /* never saved */
	invoke("a1", NULL, 2);
	ck_assert(fake_host_wait(&host, 2));
	ck_assert_int_eq(task_state_len(1), -1); /* unchanged */
	answer(1, 15 * 1024, true, 0, 0);        /* fits */
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_OK);
	ck_assert_uint_eq(stored_revision("a1"), 1);
	invoke("a1", NULL, 3);
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_int_eq(task_state_len(2), 15 * 1024);
	answer(2, 15 * 1024, false, 0, 0);
	ck_assert(wait_outs(3));
}
END_TEST

START_TEST(instances_per_system_are_bounded_across_a_restart)
{
	ropts.max_instances = 2;
	start_runtime();
	invoke("i1", "tmpl", 1);
	invoke("i2", "tmpl", 2);
	ck_assert(fake_host_wait(&host, 2));
	answer(0, 8, false, 0, 0);
	answer(1, 8, false, 0, 0);
	ck_assert(wait_outs(2));
	invoke("i3", "tmpl", 3);
	ck_assert(wait_outs(3));
	ck_assert_int_eq(outs[2].err, GW_EFULL);
	ck_assert_ptr_nonnull(strstr(outs[2].msg, "--max-instances 2"));
	ck_assert_uint_eq(gw_runtime_quota_count(rt, SYS, false), 2);
	char msg[300];
	bool created = true;
	ck_assert_int_eq(gw_runtime_spawn(rt, SYS, "i4", "tmpl", &created, msg, sizeof msg),
	                 GW_EFULL);
	ck_assert(!created);
	/* an existing instance takes nothing more */
	ck_assert_int_eq(gw_runtime_spawn(rt, SYS, "i1", "tmpl", &created, msg, sizeof msg), GW_OK);
	stop_runtime();

	/* after a restart the count comes from the store */
	start_runtime();
	ck_assert_uint_eq(gw_runtime_quota_count(rt, SYS, false), 2);
	invoke("i5", "tmpl", 5);
	ck_assert(wait_outs(4));
	ck_assert_int_eq(outs[3].err, GW_EFULL);
	invoke("i1", NULL, 6); /* still there, found in the store */
	ck_assert(fake_host_wait(&host, 3));
	ck_assert_str_eq(task_actor(2), "i1");
	answer(2, 8, false, 0, 0);
	ck_assert(wait_outs(5));
	ck_assert_int_eq(outs[4].err, GW_OK);
	/* with its template named (register_ref), a stored instance over the
	 * quota is looked up, not refused */
	invoke("i2", "tmpl", 7);
	ck_assert(fake_host_wait(&host, 4));
	ck_assert_str_eq(task_actor(3), "i2");
	answer(3, 8, false, 0, 0);
	ck_assert(wait_outs(6));
	ck_assert_int_eq(outs[5].err, GW_OK);
}
END_TEST

static void put_row(const char *id)
{
	uint8_t data[] = {0};
	gw_store *s2;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s2, url, &so), GW_OK);
	ck_assert_int_eq(gw_store_schedule_put(s2, id, spawn_wall_ms() + 3600000, data, 0), GW_OK);
	gw_store_close(s2);
}

START_TEST(schedules_per_system_are_bounded_across_a_restart_and_freed_when_done)
{
	ropts.max_schedules = 2;
	ropts.max_schedule_ahead_ms = 24 * 3600 * 1000LL;
	start_runtime();
	char id1[40], id2[40], id3[40], msg[300];
	int64_t soon = spawn_wall_ms() + 3600000;
	/* too far ahead */
	ck_assert_int_eq(gw_runtime_schedule_id(rt, SYS, spawn_wall_ms() + 48 * 3600000LL, "r0",
	                                        id1, msg, sizeof msg),
	                 GW_EINVAL);
	ck_assert_ptr_nonnull(strstr(msg, "--max-schedule-ahead"));
	ck_assert_int_eq(gw_runtime_schedule_id(rt, SYS, soon, "r1", id1, msg, sizeof msg), GW_OK);
	ck_assert_int_eq(gw_runtime_schedule_id(rt, SYS, soon, "r2", id2, msg, sizeof msg), GW_OK);
	ck_assert_int_eq(gw_runtime_schedule_id(rt, SYS, soon, "r3", id3, msg, sizeof msg),
	                 GW_EFULL);
	ck_assert_ptr_nonnull(strstr(msg, "--max-schedules 2"));
	/* another system has its own quota */
	ck_assert_int_eq(gw_runtime_schedule_id(rt, "other", soon, "r4", id3, msg, sizeof msg),
	                 GW_OK);
	put_row(id1);
	put_row(id2);
	put_row(id3);
	put_row("legacy0001"); /* a row from before ids carried the system */
	stop_runtime();

	/* after a restart: counted from the store */
	start_runtime();
	ck_assert_uint_eq(gw_runtime_quota_count(rt, SYS, true), 2);
	ck_assert_uint_eq(gw_runtime_quota_count(rt, "other", true), 1);
	ck_assert_int_eq(gw_runtime_schedule_id(rt, SYS, soon, "r5", id3, msg, sizeof msg),
	                 GW_EFULL);
	/* a row deleted (delivered) gives its place back */
	gw_runtime_schedule_gone(rt, id1);
	ck_assert_uint_eq(gw_runtime_quota_count(rt, SYS, true), 1);
	ck_assert_int_eq(gw_runtime_schedule_id(rt, SYS, soon, "r6", id3, msg, sizeof msg), GW_OK);
}
END_TEST

START_TEST(a_delivered_schedule_leaves_the_quota)
{
	ropts.max_schedules = 1;
	start_runtime();
	char id[40], msg[300];
	ck_assert_int_eq(
	    gw_runtime_schedule_id(rt, SYS, spawn_wall_ms() - 10, "due", id, msg, sizeof msg),
	    GW_OK);
	/* an overdue row for a1, delivered by the scheduler */
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = SYS;
	Spawn__Actors__ActorId aid = SPAWN__ACTORS__ACTOR_ID__INIT;
	aid.name = "a1";
	Spawn__Actors__Actor act = SPAWN__ACTORS__ACTOR__INIT;
	act.id = &aid;
	Spawn__InvocationRequest rq = SPAWN__INVOCATION_REQUEST__INIT;
	rq.system = &sys;
	rq.actor = &act;
	rq.action_name = "Add";
	uint8_t buf[256];
	size_t n = spawn__invocation_request__pack(&rq, buf);
	gw_store *s2;
	gw_store_opts so = {.keys = KEY};
	ck_assert_int_eq(gw_store_open(&s2, url, &so), GW_OK);
	ck_assert_int_eq(gw_store_schedule_put(s2, id, spawn_wall_ms() - 10, buf, n), GW_OK);
	gw_store_close(s2);
	ck_assert_uint_eq(gw_runtime_quota_count(rt, SYS, true), 1);
	gw_runtime_start_scheduler(rt, "bounds-test", 60000);
	ck_assert(fake_host_wait(&host, 1));
	answer(0, 8, false, 0, 0);
	for (int i = 0; i < 2500 && gw_runtime_quota_count(rt, SYS, true); i++)
		nanosleep(&(struct timespec){0, 2000000}, NULL); /* readiness poll */
	ck_assert_uint_eq(gw_runtime_quota_count(rt, SYS, true), 0);
}
END_TEST

/* ---- persist priority ---------------------------------------------------------- */

enum { PUTS = 300 };
static pthread_mutex_t pmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pcv = PTHREAD_COND_INITIALIZER;
static int puts_done, puts_at_read = -1;
static bool gate_open, gate_entered, read_done;

static void gate_cb(void *arg, gw_err err, gw_blob *state, uint64_t rev, uint64_t epoch)
{
	(void)arg, (void)err, (void)rev, (void)epoch;
	gw_blob_rele(state);
	pthread_mutex_lock(&pmu);
	gate_entered = true;
	pthread_cond_broadcast(&pcv);
	while (!gate_open)
		pthread_cond_wait(&pcv, &pmu);
	pthread_mutex_unlock(&pmu);
}

static void read_cb(void *arg, gw_err err, gw_blob *state, uint64_t rev, uint64_t epoch)
{
	(void)arg, (void)err, (void)rev, (void)epoch;
	gw_blob_rele(state);
	pthread_mutex_lock(&pmu);
	puts_at_read = puts_done;
	read_done = true;
	pthread_cond_broadcast(&pcv);
	pthread_mutex_unlock(&pmu);
}

static void put_cb(void *arg, gw_err err)
{
	(void)arg;
	ck_assert_int_eq(err, GW_OK);
	pthread_mutex_lock(&pmu);
	int n = ++puts_done;
	pthread_cond_broadcast(&pcv);
	pthread_mutex_unlock(&pmu);
	/* A caller's read arrives while the fan-out's records are written. */
	if (n == 10)
		ck_assert_int_eq(gw_persist_read(persist, SYS, "canary", 0, read_cb, NULL), GW_OK);
}

START_TEST(reads_run_ahead_of_bulk_schedule_records)
{
	gate_open = gate_entered = read_done = false;
	puts_done = 0;
	puts_at_read = -1;
	ck_assert_int_eq(gw_persist_read(persist, SYS, "gate", 0, gate_cb, NULL), GW_OK);
	pthread_mutex_lock(&pmu);
	while (!gate_entered)
		pthread_cond_wait(&pcv, &pmu);
	pthread_mutex_unlock(&pmu);
	for (int i = 0; i < PUTS; i++) {
		/* Bulk work: stored scheduled invocations (a fan-out's scheduled
		 * effects). Instance records are urgent (a new instance's record
		 * precedes its activation). */
		char id[24];
		snprintf(id, sizeof id, "fan%d", i);
		static const uint8_t row[8] = {0};
		ck_assert_int_eq(gw_persist_schedule(persist, id, spawn_wall_ms() + 3600000, row,
		                                     sizeof row, put_cb, NULL),
		                 GW_OK);
	}
	pthread_mutex_lock(&pmu);
	gate_open = true;
	pthread_cond_broadcast(&pcv);
	while (puts_done < PUTS || !read_done)
		pthread_cond_wait(&pcv, &pmu);
	int at = puts_at_read;
	pthread_mutex_unlock(&pmu);
	/* the read ran right after the record during which it arrived, not
	 * after the other 290 */
	ck_assert_int_ge(at, 10);
	ck_assert_int_le(at, 11);
}
END_TEST

static Suite *bounds_suite(void)
{
	rtf_case cases[] = {
	    {"effects-per-turn", a_turn_with_too_many_side_effects_fails_and_changes_nothing},
	    {"outbox-bytes", an_outbox_over_its_bytes_fails_the_checkpointed_turn},
	    {"effects-in-flight",
	     effects_in_flight_are_bounded_stored_ones_wait_others_fail_their_turn},
	    {"parked-shutdown", parked_effects_stay_stored_across_a_shutdown_and_go_out_after_it},
	    {"state-size", a_state_that_would_not_fit_in_a_later_task_is_refused_at_result_time},
	    {"instances", instances_per_system_are_bounded_across_a_restart},
	    {"schedules", schedules_per_system_are_bounded_across_a_restart_and_freed_when_done},
	    {"schedule-delivered", a_delivered_schedule_leaves_the_quota},
	    {"persist-priority", reads_run_ahead_of_bulk_schedule_records},
	};
	return RTF_SUITE("bounds", cases, setup, teardown);
}

int main(void)
{
	return rtf_run(bounds_suite());
}
