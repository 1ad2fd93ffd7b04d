/* sdk_host_test.c - the host SDK against a fake gateway over real gRPC
 * streams: registration, answers, concurrency, reconnects and stopping.
 * Every wait is on a completion event or a condition with a timeout. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "fake_gateway.h"
#include "spawn/spawn.h"
#include "wire.h"

#define T_MS        10000 /* generous: a slow CI box must not flake */
#define COUNTER_D   (&spawn__actors__timeout_strategy__descriptor)
#define COUNTER_URL "type.googleapis.com/spawn.actors.TimeoutStrategy"

/* ---- events from the host ---------------------------------------------------- */

typedef struct events {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int count[5]; /* by spawn_host_event */
	int last_status;
	char last_message[256];
} events;

static void events_init(events *e)
{
	memset(e, 0, sizeof *e);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
}

static void events_fini(events *e)
{
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
}

static void on_event(void *user, spawn_host_event ev, int status, const char *message)
{
	events *e = user;
	pthread_mutex_lock(&e->mu);
	e->count[ev]++;
	e->last_status = status;
	snprintf(e->last_message, sizeof e->last_message, "%s", message);
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

static struct timespec abs_deadline(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static bool wait_event(events *e, spawn_host_event ev, int n)
{
	struct timespec ts = abs_deadline(T_MS);
	pthread_mutex_lock(&e->mu);
	int rc = 0;
	while (e->count[ev] < n && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&e->cv, &e->mu, &ts);
	bool ok = e->count[ev] >= n;
	pthread_mutex_unlock(&e->mu);
	return ok;
}

/* ---- handlers ----------------------------------------------------------------- */

/* The thread of the last h_add (the inline test checks it). */
static pthread_mutex_t add_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t add_thread;

/* Counter.Add: state += payload; reply the new total. */
static void h_add(spawn_ctx *ctx, void *user)
{
	(void)user;
	pthread_mutex_lock(&add_mu);
	add_thread = pthread_self();
	pthread_mutex_unlock(&add_mu);
	Spawn__Actors__TimeoutStrategy *st, *add;
	if (spawn_ctx_state_msg(ctx, COUNTER_D, (ProtobufCMessage **)&st) ||
	    spawn_ctx_payload_msg(ctx, COUNTER_D, (ProtobufCMessage **)&add)) {
		spawn_ctx_fail(ctx, SPAWN_INVALID_ARGUMENT, "wrong types");
		return;
	}
	st->timeout += add->timeout;
	spawn_ctx_set_state_msg(ctx, &st->base);
	spawn_ctx_reply_msg(ctx, &st->base);
}

/* A gate a handler waits at until the test opens it. */
typedef struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;
	int entered;
} gate;

static void h_slow(spawn_ctx *ctx, void *user)
{
	gate *g = user;
	pthread_mutex_lock(&g->mu);
	g->entered++;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	spawn_ctx_reply(ctx, "t/slow", "s", 1);
}

static void gate_open(gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* ---- building blocks ---------------------------------------------------------- */

/* make_host_with: workers 0 with run_inline runs the handlers inline. */
static spawn_host *make_host_with(const char *target, int workers, bool run_inline, events *ev,
                                  gate *slow)
{
	spawn_host_opts o = {.target = target,
	                     .system = "sys",
	                     .service_name = "test-host",
	                     .workers = workers,
	                     .run_inline = run_inline,
	                     .backoff_min_ms = 50,
	                     .backoff_max_ms = 500,
	                     .on_event = on_event,
	                     .event_user = ev};
	spawn_host *h = NULL;
	ck_assert_int_eq(spawn_host_create(&h, &o), SPAWN_OK);
	spawn_action_def add = {.name = "Add", .handler = h_add};
	spawn_actor_def counter = {.name = "counter",
	                           .stateful = true,
	                           .state_type = COUNTER_URL,
	                           .actions = &add,
	                           .n_actions = 1};
	ck_assert_int_eq(spawn_host_add_actor(h, &counter), SPAWN_OK);
	if (slow) {
		spawn_action_def wait = {.name = "Wait", .handler = h_slow, .user = slow};
		spawn_actor_def sl = {.name = "slow", .actions = &wait, .n_actions = 1};
		ck_assert_int_eq(spawn_host_add_actor(h, &sl), SPAWN_OK);
	}
	return h;
}

static spawn_host *make_host(const char *target, int workers, events *ev, gate *slow)
{
	return make_host_with(target, workers, false, ev, slow);
}

/* accept_registration_as accepts the next Connect stream, checks the
 * registration and answers it with status (SPAWN__STATUS__OK to accept),
 * granting batches when grant is set. */
static fake_call *accept_registration_as(fake_gw *gw, Spawn__Status status, bool grant)
{
	fake_call *c = fake_gw_accept(gw, T_MS);
	ck_assert_ptr_nonnull(c);
	if (grant)
		fake_call_grant_batches(c);
	ck_assert_str_eq(fake_call_method(c), "/spawn.gateway.v1.HostGateway/Connect");
	Spawn__Gateway__V1__HostMessage *m = (Spawn__Gateway__V1__HostMessage *)fake_call_recv(
	    c, &spawn__gateway__v1__host_message__descriptor, T_MS);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->msg_case, SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION);
	Spawn__RegistrationRequest *r = m->registration;
	ck_assert_str_eq(r->service_info->service_name, "test-host");
	ck_assert_str_eq(r->service_info->support_library_name, "libspawn");
	ck_assert_str_eq(r->actor_system->name, "sys");
	ck_assert_uint_ge(r->actor_system->registry->n_actors, 1);
	ck_assert_str_eq(r->actor_system->registry->actors[0]->key, "counter");
	ck_assert(r->actor_system->registry->actors[0]->value->settings->stateful);
	protobuf_c_message_free_unpacked(&m->base, NULL);

	Spawn__RequestStatus st = SPAWN__REQUEST_STATUS__INIT;
	st.status = status;
	st.message = status == SPAWN__STATUS__OK ? "welcome" : "go away";
	Spawn__RegistrationResponse rr = SPAWN__REGISTRATION_RESPONSE__INIT;
	rr.status = &st;
	Spawn__Gateway__V1__GatewayMessage gm = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__INIT;
	gm.msg_case = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_REGISTRATION;
	gm.registration = &rr;
	ck_assert(fake_call_send(c, &gm.base, T_MS));
	return c;
}

static fake_call *accept_registration(fake_gw *gw, Spawn__Status status)
{
	return accept_registration_as(gw, status, false);
}

/* send_task sends InvocationTask{id} for actor.action with a counter
 * state and a counter payload. */
static void send_task(fake_call *c, uint64_t id, const char *actor, const char *action,
                      int64_t total, int64_t add)
{
	uint8_t sbuf[16], pbuf[16];
	Spawn__Actors__TimeoutStrategy v = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	v.timeout = total;
	Google__Protobuf__Any state = GOOGLE__PROTOBUF__ANY__INIT;
	state.type_url = COUNTER_URL;
	state.value.len = protobuf_c_message_pack(&v.base, sbuf);
	state.value.data = sbuf;
	v.timeout = add;
	Google__Protobuf__Any payload = GOOGLE__PROTOBUF__ANY__INIT;
	payload.type_url = COUNTER_URL;
	payload.value.len = protobuf_c_message_pack(&v.base, pbuf);
	payload.value.data = pbuf;

	Spawn__Actors__ActorId self = SPAWN__ACTORS__ACTOR_ID__INIT;
	self.name = (char *)actor;
	self.system = "sys";
	Spawn__Context ctx = SPAWN__CONTEXT__INIT;
	ctx.state = &state;
	Spawn__ActorInvocation inv = SPAWN__ACTOR_INVOCATION__INIT;
	inv.actor = &self;
	inv.action_name = (char *)action;
	inv.current_context = &ctx;
	inv.payload_case = SPAWN__ACTOR_INVOCATION__PAYLOAD_VALUE;
	inv.value = &payload;
	Spawn__Gateway__V1__InvocationTask task = SPAWN__GATEWAY__V1__INVOCATION_TASK__INIT;
	task.request_id = id;
	task.invocation = &inv;
	Spawn__Gateway__V1__GatewayMessage gm = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__INIT;
	gm.msg_case = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION;
	gm.invocation = &task;
	ck_assert(fake_call_send(c, &gm.base, T_MS));
}

/* recv_result returns the next InvocationResult (free the returned host
 * message with free_unpacked). */
static Spawn__Gateway__V1__HostMessage *recv_result(fake_call *c)
{
	Spawn__Gateway__V1__HostMessage *m = (Spawn__Gateway__V1__HostMessage *)fake_call_recv(
	    c, &spawn__gateway__v1__host_message__descriptor, T_MS);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->msg_case, SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT);
	return m;
}

static int64_t counter_of(const Google__Protobuf__Any *any)
{
	ck_assert_ptr_nonnull(any);
	ck_assert_str_eq(any->type_url, COUNTER_URL);
	Spawn__Actors__TimeoutStrategy *m =
	    spawn__actors__timeout_strategy__unpack(NULL, any->value.len, any->value.data);
	ck_assert_ptr_nonnull(m);
	int64_t v = m->timeout;
	spawn__actors__timeout_strategy__free_unpacked(m, NULL);
	return v;
}

static void expect_total(fake_call *c, uint64_t id, int64_t total)
{
	Spawn__Gateway__V1__HostMessage *m = recv_result(c);
	ck_assert_uint_eq(m->result->request_id, id);
	ck_assert_int_eq(m->result->outcome_case,
	                 SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	ck_assert_int_eq(counter_of(m->result->response->updated_context->state), total);
	ck_assert_int_eq(counter_of(m->result->response->value), total);
	ck_assert_str_eq(m->result->response->actor_name, "counter");
	protobuf_c_message_free_unpacked(&m->base, NULL);
}

/* ---- tests ------------------------------------------------------------------- */

START_TEST(host_registers_and_answers_an_invocation)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	events ev;
	events_init(&ev);
	spawn_host *h = make_host(fake_gw_target(gw), 1, &ev, NULL);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_ESTATE);

	fake_call *c = accept_registration(gw, SPAWN__STATUS__OK);
	ck_assert_int_eq(spawn_host_wait_registered(h, T_MS), SPAWN_OK);
	ck_assert_uint_eq(spawn_host_registrations(h), 1);
	ck_assert(wait_event(&ev, SPAWN_HOST_REGISTERED, 1));
	ck_assert_str_eq(ev.last_message, "welcome");

	/* Actors are fixed once started. */
	spawn_action_def a = {.name = "A", .handler = h_add};
	spawn_actor_def d = {.name = "late", .actions = &a, .n_actions = 1};
	ck_assert_int_eq(spawn_host_add_actor(h, &d), SPAWN_ESTATE);

	send_task(c, 9, "counter", "Add", 40, 2);
	expect_total(c, 9, 42);

	/* Unknown actions are answered, not dropped. */
	send_task(c, 10, "counter", "Nope", 0, 0);
	Spawn__Gateway__V1__HostMessage *m = recv_result(c);
	ck_assert_uint_eq(m->result->request_id, 10);
	ck_assert_int_eq(m->result->outcome_case,
	                 SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR);
	ck_assert_int_eq(m->result->error->code, SPAWN_NOT_FOUND);
	protobuf_c_message_free_unpacked(&m->base, NULL);

	spawn_host_destroy(h);
	ck_assert(fake_call_wait_closed(c, T_MS)); /* the host cancelled its stream */
	fake_call_free(c);
	fake_gw_stop(gw);
	ck_assert_int_eq(ev.count[SPAWN_HOST_DISCONNECTED], 0); /* not on our own stop */
	events_fini(&ev);
}
END_TEST

START_TEST(host_reconnects_and_registers_again_when_the_stream_closes)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	events ev;
	events_init(&ev);
	spawn_host *h = make_host(fake_gw_target(gw), 1, &ev, NULL);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);

	fake_call *c1 = accept_registration(gw, SPAWN__STATUS__OK);
	ck_assert_int_eq(spawn_host_wait_registrations(h, 1, T_MS), SPAWN_OK);
	ck_assert(fake_call_finish(c1, GRPC_STATUS_UNAVAILABLE, "gateway restarting", T_MS));
	ck_assert(wait_event(&ev, SPAWN_HOST_DISCONNECTED, 1));
	ck_assert_int_eq(ev.last_status, SPAWN_UNAVAILABLE);
	ck_assert_str_eq(ev.last_message, "gateway restarting");
	fake_call_free(c1);

	fake_call *c2 = accept_registration(gw, SPAWN__STATUS__OK);
	ck_assert_int_eq(spawn_host_wait_registrations(h, 2, T_MS), SPAWN_OK);
	ck_assert_int_eq(spawn_host_wait_registered(h, T_MS), SPAWN_OK);
	send_task(c2, 1, "counter", "Add", 1, 1);
	expect_total(c2, 1, 2);

	spawn_host_destroy(h);
	fake_call_free(c2);
	fake_gw_stop(gw);
	events_fini(&ev);
}
END_TEST

START_TEST(slow_action_does_not_block_other_actors)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	events ev;
	events_init(&ev);
	gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	spawn_host *h = make_host(fake_gw_target(gw), 2, &ev, &g);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);
	fake_call *c = accept_registration(gw, SPAWN__STATUS__OK);

	send_task(c, 1, "slow", "Wait", 0, 0);
	send_task(c, 2, "counter", "Add", 5, 5);
	/* The counter answers while the slow action still waits at the gate:
	 * results come back in completion order, not request order. */
	expect_total(c, 2, 10);
	gate_open(&g);
	Spawn__Gateway__V1__HostMessage *m = recv_result(c);
	ck_assert_uint_eq(m->result->request_id, 1);
	ck_assert_str_eq(m->result->response->value->type_url, "t/slow");
	protobuf_c_message_free_unpacked(&m->base, NULL);
	ck_assert_int_eq(g.entered, 1);

	spawn_host_destroy(h);
	fake_call_free(c);
	fake_gw_stop(gw);
	events_fini(&ev);
}
END_TEST

START_TEST(many_tasks_in_flight_are_each_answered_once)
{
	enum { N = 200 };
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	events ev;
	events_init(&ev);
	spawn_host *h = make_host(fake_gw_target(gw), 4, &ev, NULL);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);
	fake_call *c = accept_registration(gw, SPAWN__STATUS__OK);
	for (uint64_t i = 1; i <= N; i++)
		send_task(c, i, "counter", "Add", (int64_t)i, (int64_t)i);
	static bool got[N + 1];
	memset(got, 0, sizeof got);
	for (int i = 0; i < N; i++) {
		Spawn__Gateway__V1__HostMessage *m = recv_result(c);
		uint64_t id = m->result->request_id;
		ck_assert_uint_ge(id, 1);
		ck_assert_uint_le(id, N);
		ck_assert(!got[id]);
		got[id] = true;
		ck_assert_int_eq(counter_of(m->result->response->value), (int64_t)(2 * id));
		protobuf_c_message_free_unpacked(&m->base, NULL);
	}
	spawn_host_destroy(h);
	fake_call_free(c);
	fake_gw_stop(gw);
	events_fini(&ev);
}
END_TEST

START_TEST(host_started_before_the_gateway_connects_after_backoff)
{
	char dir[] = "/tmp/spawn-sdk-test-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char addr[128];
	snprintf(addr, sizeof addr, "unix:%s/gw.sock", dir);

	events ev;
	events_init(&ev);
	spawn_host *h = make_host(addr, 1, &ev, NULL);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);
	/* Nothing listens yet: the first attempt fails. */
	ck_assert(wait_event(&ev, SPAWN_HOST_DISCONNECTED, 1));
	ck_assert_int_eq(spawn_host_wait_registered(h, 0), SPAWN_ETIMEDOUT);

	fake_gw *gw = fake_gw_start(addr);
	ck_assert_ptr_nonnull(gw);
	fake_call *c = accept_registration(gw, SPAWN__STATUS__OK);
	ck_assert_int_eq(spawn_host_wait_registered(h, T_MS), SPAWN_OK);
	send_task(c, 3, "counter", "Add", 0, 7);
	expect_total(c, 3, 7);

	spawn_host_destroy(h);
	fake_call_free(c);
	fake_gw_stop(gw);
	char path[160];
	snprintf(path, sizeof path, "%s/gw.sock", dir);
	unlink(path);
	rmdir(dir);
	events_fini(&ev);
}
END_TEST

START_TEST(rejected_registration_is_retried)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	events ev;
	events_init(&ev);
	spawn_host *h = make_host(fake_gw_target(gw), 1, &ev, NULL);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);

	fake_call *c1 = accept_registration(gw, SPAWN__STATUS__ERROR);
	ck_assert(wait_event(&ev, SPAWN_HOST_REJECTED, 1));
	ck_assert(fake_call_wait_closed(c1, T_MS)); /* the host dropped the stream */
	ck_assert_uint_eq(spawn_host_registrations(h), 0);
	fake_call_free(c1);

	fake_call *c2 = accept_registration(gw, SPAWN__STATUS__OK);
	ck_assert_int_eq(spawn_host_wait_registered(h, T_MS), SPAWN_OK);
	spawn_host_destroy(h);
	fake_call_free(c2);
	fake_gw_stop(gw);
	events_fini(&ev);
}
END_TEST

START_TEST(malformed_gateway_message_drops_the_stream)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	events ev;
	events_init(&ev);
	spawn_host *h = make_host(fake_gw_target(gw), 1, &ev, NULL);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);
	fake_call *c1 = accept_registration(gw, SPAWN__STATUS__OK);
	ck_assert_int_eq(spawn_host_wait_registered(h, T_MS), SPAWN_OK);

	/* Field 1 of GatewayMessage is a message; send it as a varint. */
	Spawn__Actors__TimeoutStrategy junk = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	junk.timeout = 5;
	ck_assert(fake_call_send(c1, &junk.base, T_MS));
	ck_assert(wait_event(&ev, SPAWN_HOST_PROTOCOL_ERROR, 1));
	ck_assert(fake_call_wait_closed(c1, T_MS));
	fake_call_free(c1);

	fake_call *c2 = accept_registration(gw, SPAWN__STATUS__OK);
	ck_assert_int_eq(spawn_host_wait_registrations(h, 2, T_MS), SPAWN_OK);
	spawn_host_destroy(h);
	fake_call_free(c2);
	fake_gw_stop(gw);
	events_fini(&ev);
}
END_TEST

/* send_add_batch sends a TaskBatch of n (<= 8) Adds of 1 to "counter",
 * request ids first.., each with the counter state totals[i]. */
static void send_add_batch(fake_call *c, uint64_t first, size_t n, const int64_t *totals)
{
	uint8_t sbuf[8][16], pbuf[16];
	Spawn__Actors__TimeoutStrategy v = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	v.timeout = 1;
	Google__Protobuf__Any payload = GOOGLE__PROTOBUF__ANY__INIT;
	payload.type_url = COUNTER_URL;
	payload.value.len = protobuf_c_message_pack(&v.base, pbuf);
	payload.value.data = pbuf;
	Spawn__Actors__ActorId self = SPAWN__ACTORS__ACTOR_ID__INIT;
	self.name = "counter";
	self.system = "sys";
	Google__Protobuf__Any state[8];
	Spawn__Context ctx[8];
	Spawn__ActorInvocation inv[8];
	Spawn__Gateway__V1__InvocationTask task[8], *tp[8];
	ck_assert_uint_le(n, 8);
	for (size_t i = 0; i < n; i++) {
		v.timeout = totals[i];
		google__protobuf__any__init(&state[i]);
		state[i].type_url = COUNTER_URL;
		state[i].value.len = protobuf_c_message_pack(&v.base, sbuf[i]);
		state[i].value.data = sbuf[i];
		spawn__context__init(&ctx[i]);
		ctx[i].state = &state[i];
		spawn__actor_invocation__init(&inv[i]);
		inv[i].actor = &self;
		inv[i].action_name = "Add";
		inv[i].current_context = &ctx[i];
		inv[i].payload_case = SPAWN__ACTOR_INVOCATION__PAYLOAD_VALUE;
		inv[i].value = &payload;
		spawn__gateway__v1__invocation_task__init(&task[i]);
		task[i].request_id = first + i;
		task[i].invocation = &inv[i];
		tp[i] = &task[i];
	}
	Spawn__Gateway__V1__TaskBatch tb = SPAWN__GATEWAY__V1__TASK_BATCH__INIT;
	tb.n_tasks = n;
	tb.tasks = tp;
	Spawn__Gateway__V1__GatewayMessage gm = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__INIT;
	gm.msg_case = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_TASKS;
	gm.tasks = &tb;
	ck_assert(fake_call_send(c, &gm.base, T_MS));
}

/* The host asks for batches; a TaskBatch runs task by task (one result per
 * message: this gateway granted nothing); an empty TaskBatch is a protocol
 * error that drops the stream, and the host connects again. */
START_TEST(a_task_batch_runs_every_task_and_an_empty_one_drops_the_stream)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	events ev;
	events_init(&ev);
	spawn_host *h = make_host(fake_gw_target(gw), 1, &ev, NULL);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);
	fake_call *c1 = accept_registration(gw, SPAWN__STATUS__OK);
	char v[32] = "";
	ck_assert_uint_eq(fake_call_metadata(c1, SPAWN_LINK_MD_KEY, v, sizeof v), 1);
	ck_assert_str_eq(v, SPAWN_LINK_MD_BATCH);
	ck_assert_int_eq(spawn_host_wait_registered(h, T_MS), SPAWN_OK);

	const int64_t totals[3] = {10, 20, 30};
	send_add_batch(c1, 7, 3, totals);
	expect_total(c1, 7, 11); /* one worker: in order */
	expect_total(c1, 8, 21);
	expect_total(c1, 9, 31);

	send_add_batch(c1, 10, 0, NULL);
	ck_assert(wait_event(&ev, SPAWN_HOST_PROTOCOL_ERROR, 1));
	ck_assert(fake_call_wait_closed(c1, T_MS));
	fake_call_free(c1);
	fake_call *c2 = accept_registration(gw, SPAWN__STATUS__OK);
	ck_assert_int_eq(spawn_host_wait_registrations(h, 2, T_MS), SPAWN_OK);
	spawn_host_destroy(h);
	fake_call_free(c2);
	fake_gw_stop(gw);
	events_fini(&ev);
}
END_TEST

/* A foreground spawn_host_run on a thread of the test's own. */
typedef struct runner {
	spawn_host *h;
	int rc;
} runner;

static void *run_main(void *arg)
{
	runner *r = arg;
	r->rc = spawn_host_run(r->h);
	return NULL;
}

static void join_within(pthread_t t)
{
	struct timespec ts = abs_deadline(T_MS);
	ck_assert_int_eq(pthread_timedjoin_np(t, NULL, &ts), 0);
}

START_TEST(stop_from_another_thread_ends_run)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	events ev;
	events_init(&ev);
	runner r = {.h = make_host(fake_gw_target(gw), 1, &ev, NULL), .rc = -100};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, run_main, &r), 0);
	fake_call *c = accept_registration(gw, SPAWN__STATUS__OK);
	ck_assert_int_eq(spawn_host_wait_registered(r.h, T_MS), SPAWN_OK);
	ck_assert_int_eq(spawn_host_run(r.h), SPAWN_ESTATE); /* one run at a time */

	spawn_host_stop(r.h);
	join_within(t);
	ck_assert_int_eq(r.rc, SPAWN_OK);
	ck_assert_int_eq(spawn_host_wait_registered(r.h, 0), SPAWN_ECLOSED);
	spawn_host_stop(r.h); /* idempotent */
	spawn_host_destroy(r.h);
	fake_call_free(c);
	fake_gw_stop(gw);
	events_fini(&ev);
}
END_TEST

/* run_inline: no worker threads; the handlers run on the thread of
 * spawn_host_run, and the results of one TaskBatch leave as one
 * ResultBatch, in task order, once the gateway granted batches. A lone
 * task is answered alone. */
START_TEST(inline_handlers_run_on_the_run_thread_and_answer_a_batch_at_once)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	events ev;
	events_init(&ev);
	runner r = {.h = make_host_with(fake_gw_target(gw), 0, true, &ev, NULL), .rc = -100};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, run_main, &r), 0);
	fake_call *c = accept_registration_as(gw, SPAWN__STATUS__OK, true);
	ck_assert_int_eq(spawn_host_wait_registered(r.h, T_MS), SPAWN_OK);

	const int64_t totals[3] = {10, 20, 30};
	send_add_batch(c, 7, 3, totals);
	Spawn__Gateway__V1__HostMessage *m = (Spawn__Gateway__V1__HostMessage *)fake_call_recv(
	    c, &spawn__gateway__v1__host_message__descriptor, T_MS);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->msg_case, SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULTS);
	ck_assert_uint_eq(m->results->n_results, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_uint_eq(m->results->results[i]->request_id, 7 + i);
		ck_assert_int_eq(counter_of(m->results->results[i]->response->value),
		                 totals[i] + 1);
	}
	protobuf_c_message_free_unpacked(&m->base, NULL);
	pthread_mutex_lock(&add_mu);
	ck_assert(pthread_equal(add_thread, t));
	pthread_mutex_unlock(&add_mu);

	send_task(c, 11, "counter", "Add", 1, 2);
	expect_total(c, 11, 3);

	spawn_host_stop(r.h);
	join_within(t);
	ck_assert_int_eq(r.rc, SPAWN_OK);
	spawn_host_destroy(r.h);
	fake_call_free(c);
	fake_gw_stop(gw);
	events_fini(&ev);
}
END_TEST

static spawn_host *g_signal_host; /* for the signal handler only */

static void on_sigusr1(int sig)
{
	(void)sig;
	spawn_host_signal_stop(g_signal_host);
}

START_TEST(signal_stop_from_a_signal_handler_ends_run)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	events ev;
	events_init(&ev);
	runner r = {.h = make_host(fake_gw_target(gw), 1, &ev, NULL), .rc = -100};
	g_signal_host = r.h;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);

	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, run_main, &r), 0);
	fake_call *c = accept_registration(gw, SPAWN__STATUS__OK);
	ck_assert_int_eq(spawn_host_wait_registered(r.h, T_MS), SPAWN_OK);

	errno = 1234;
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(errno, 1234); /* the handler preserved it */
	join_within(t);
	ck_assert_int_eq(r.rc, SPAWN_OK);
	spawn_host_destroy(r.h);
	fake_call_free(c);
	fake_gw_stop(gw);
	events_fini(&ev);
}
END_TEST

static Suite *sdk_host_suite(void)
{
	Suite *s = suite_create("sdk_host");
	struct {
		const char *name;
		const TTest *t;
	} cases[] = {
	    {"register_and_answer", host_registers_and_answers_an_invocation},
	    {"reconnect", host_reconnects_and_registers_again_when_the_stream_closes},
	    {"workers", slow_action_does_not_block_other_actors},
	    {"many_in_flight", many_tasks_in_flight_are_each_answered_once},
	    {"gateway_later", host_started_before_the_gateway_connects_after_backoff},
	    {"rejected", rejected_registration_is_retried},
	    {"malformed", malformed_gateway_message_drops_the_stream},
	    {"task_batch", a_task_batch_runs_every_task_and_an_empty_one_drops_the_stream},
	    {"stop", stop_from_another_thread_ends_run},
	    {"signal_stop", signal_stop_from_a_signal_handler_ends_run},
	    {"inline", inline_handlers_run_on_the_run_thread_and_answer_a_batch_at_once},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, cases[i].t);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sdk_host_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
