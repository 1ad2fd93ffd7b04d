/* stubs_test.c - the C that protoc-gen-spawn generates for the golden
 * "multi" case (multi.proto: Counter NAMED and stateful, Session UNNAMED,
 * Worker POOLED and stateless), run on libspawn against the fake gateway
 * of tests/sdk over real gRPC. The client stubs must build the right
 * requests and hand back typed replies and failures; the skeletons must
 * register the contract's settings and adapt invocations to the typed
 * handlers. Every wait has a timeout; nothing sleeps. */
#include "google/protobuf/descriptor.pb-c.h"
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_gateway.h"
#include "multi.spawn.h"
#include "spawn/gateway/v1/gateway.pb-c.h"

#define T_MS 10000

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

/* ---- the client side ----------------------------------------------------------- */

/* One typed call on a helper thread, so the test can play the gateway. */
typedef struct call {
	spawn_client *c;
	int which; /* 0 counter_increment, 1 session_record, 2 worker_run */
	const char *actor;
	Count *count;
	SessionState *session;
	JobResult *job;
	char *message;
	int rc;
	pthread_t t;
} call;

static void *call_main(void *arg)
{
	call *k = arg;
	if (k->which == 0) {
		Delta d = DELTA__INIT;
		d.by = 2;
		k->rc = counter_increment(k->c, "sys", k->actor, &d, &k->count, &k->message, T_MS);
	} else if (k->which == 1) {
		Event e = EVENT__INIT;
		e.what = "login";
		k->rc = session_record(k->c, "sys", k->actor, &e, &k->session, &k->message, T_MS);
	} else {
		Job j = JOB__INIT;
		j.id = "j-1";
		k->rc = worker_run(k->c, "sys", k->actor, &j, &k->job, &k->message, T_MS);
	}
	return NULL;
}

static void call_start(call *k)
{
	ck_assert_int_eq(pthread_create(&k->t, NULL, call_main, k), 0);
}

static void call_join(call *k)
{
	struct timespec ts = abs_deadline(T_MS);
	ck_assert_int_eq(pthread_timedjoin_np(k->t, NULL, &ts), 0);
}

static fake_call *accept_invoke(fake_gw *gw, Spawn__InvocationRequest **req)
{
	fake_call *c = fake_gw_accept(gw, T_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(fake_call_method(c), "/spawn.gateway.v1.ActorGateway/Invoke");
	*req = (Spawn__InvocationRequest *)fake_call_recv(c, &spawn__invocation_request__descriptor,
	                                                  T_MS);
	ck_assert_ptr_nonnull(*req);
	return c;
}

/* answer replies with m packed into an Any of type url (NULL m: a Noop). */
static void answer(fake_call *c, const char *url, const ProtobufCMessage *m)
{
	uint8_t buf[256];
	Spawn__RequestStatus rs = SPAWN__REQUEST_STATUS__INIT;
	rs.status = SPAWN__STATUS__OK;
	Spawn__InvocationResponse resp = SPAWN__INVOCATION_RESPONSE__INIT;
	resp.status = &rs;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	Spawn__Noop noop = SPAWN__NOOP__INIT;
	if (m) {
		any.type_url = (char *)url;
		any.value.len = protobuf_c_message_pack(m, buf);
		any.value.data = buf;
		resp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_VALUE;
		resp.value = &any;
	} else {
		resp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_NOOP;
		resp.noop = &noop;
	}
	ck_assert(fake_call_send(c, &resp.base, T_MS));
	ck_assert(fake_call_finish(c, GRPC_STATUS_OK, "", T_MS));
}

static fake_gw *start_gw(spawn_client **cl)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	ck_assert_int_eq(spawn_client_create(cl, fake_gw_target(gw)), SPAWN_OK);
	return gw;
}

START_TEST(a_stub_sends_its_typed_input_and_returns_the_typed_reply)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	call k = {.c = cl, .which = 0}; /* actor NULL: the contract's name */
	call_start(&k);

	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	ck_assert_str_eq(req->system->name, "sys");
	ck_assert_str_eq(req->actor->id->name, "Counter");
	ck_assert_str_eq(req->action_name, "Increment");
	ck_assert_str_eq(req->register_ref, "");
	ck_assert(!req->pooled);
	ck_assert_int_eq(req->payload_case, SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE);
	ck_assert_str_eq(req->value->type_url, "type.googleapis.com/Delta");
	Delta *d = delta__unpack(NULL, req->value->value.len, req->value->value.data);
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(d->by, 2);
	delta__free_unpacked(d, NULL);
	protobuf_c_message_free_unpacked(&req->base, NULL);

	Count n = COUNT__INIT;
	n.n = 42;
	answer(c, "type.googleapis.com/Count", &n.base);
	call_join(&k);
	ck_assert_int_eq(k.rc, SPAWN_OK);
	ck_assert_ptr_null(k.message);
	ck_assert_ptr_nonnull(k.count);
	ck_assert_int_eq(k.count->n, 42);
	count__free_unpacked(k.count, NULL);
	fake_call_free(c);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(unnamed_and_pooled_actors_are_addressed_as_their_kind_says)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);

	call k = {.c = cl, .which = 1, .actor = "s-1"};
	call_start(&k);
	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	ck_assert_str_eq(req->actor->id->name, "s-1");
	ck_assert_str_eq(req->actor->id->parent, "Session"); /* the template */
	ck_assert_str_eq(req->register_ref, "Session");
	ck_assert_str_eq(req->action_name, "Record");
	protobuf_c_message_free_unpacked(&req->base, NULL);
	answer(c, NULL, NULL); /* no value: the stub gives defaults */
	call_join(&k);
	ck_assert_int_eq(k.rc, SPAWN_OK);
	ck_assert_ptr_nonnull(k.session);
	ck_assert_str_eq(k.session->user, "");
	ck_assert_uint_eq(k.session->n_events, 0);
	session_state__free_unpacked(k.session, NULL);
	fake_call_free(c);

	call w = {.c = cl, .which = 2, .actor = "w"};
	call_start(&w);
	c = accept_invoke(gw, &req);
	ck_assert(req->pooled);
	ck_assert_str_eq(req->register_ref, "");
	ck_assert_str_eq(req->action_name, "Run");
	protobuf_c_message_free_unpacked(&req->base, NULL);
	JobResult r = JOB_RESULT__INIT;
	r.id = "j-1";
	answer(c, "type.googleapis.com/JobResult", &r.base);
	call_join(&w);
	ck_assert_int_eq(w.rc, SPAWN_OK);
	ck_assert_str_eq(w.job->id, "j-1");
	job_result__free_unpacked(w.job, NULL);
	fake_call_free(c);

	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(a_failure_returns_its_status_and_message_and_leaves_out_alone)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	Count sentinel = COUNT__INIT;

	call k = {.c = cl, .which = 0, .actor = "nobody", .count = &sentinel};
	call_start(&k);
	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	ck_assert(fake_call_finish(c, GRPC_STATUS_NOT_FOUND, "no actor nobody", T_MS));
	call_join(&k);
	ck_assert_int_eq(k.rc, SPAWN_NOT_FOUND);
	ck_assert_str_eq(k.message, "no actor nobody");
	ck_assert_ptr_eq(k.count, &sentinel);
	free(k.message);
	fake_call_free(c);

	/* A reply of another type than the contract's. */
	call t = {.c = cl, .which = 0, .count = &sentinel};
	call_start(&t);
	c = accept_invoke(gw, &req);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	Event e = EVENT__INIT;
	answer(c, "type.googleapis.com/Event", &e.base);
	call_join(&t);
	ck_assert_int_eq(t.rc, SPAWN_ETYPE);
	ck_assert_str_eq(t.message, "the reply has another type");
	ck_assert_ptr_eq(t.count, &sentinel);
	free(t.message);
	fake_call_free(c);

	/* Bad arguments never reach the gateway. */
	Count *out = &sentinel;
	char *msg;
	ck_assert_int_eq(counter_get(cl, "sys", NULL, NULL, &out, &msg, T_MS), SPAWN_EINVAL);
	ck_assert_str_eq(msg, spawn_strerror(SPAWN_EINVAL));
	ck_assert_ptr_eq(out, &sentinel);
	free(msg);

	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

typedef struct done {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls, status;
	char message[128];
	int64_t n;
} done;

static void on_count(void *user, int status, const char *message, Count *reply)
{
	done *d = user;
	pthread_mutex_lock(&d->mu);
	d->calls++;
	d->status = status;
	snprintf(d->message, sizeof d->message, "%s", message ? message : "(null)");
	if (reply) {
		d->n = reply->n;
		count__free_unpacked(reply, NULL);
	}
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static void wait_calls(done *d, int n)
{
	struct timespec ts = abs_deadline(T_MS);
	pthread_mutex_lock(&d->mu);
	while (d->calls < n)
		ck_assert_int_ne(pthread_cond_timedwait(&d->cv, &d->mu, &ts), ETIMEDOUT);
	pthread_mutex_unlock(&d->mu);
}

START_TEST(the_async_stub_calls_back_once_with_the_typed_reply)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	done d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	Delta in = DELTA__INIT;
	ck_assert_int_eq(counter_get_async(cl, "sys", NULL, &in, T_MS, NULL, &d), SPAWN_EINVAL);
	ck_assert_int_eq(counter_get_async(cl, "sys", NULL, NULL, T_MS, on_count, &d),
	                 SPAWN_EINVAL);

	ck_assert_int_eq(counter_get_async(cl, "sys", NULL, &in, T_MS, on_count, &d), SPAWN_OK);
	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	ck_assert_str_eq(req->action_name, "Get");
	protobuf_c_message_free_unpacked(&req->base, NULL);
	Count n = COUNT__INIT;
	n.n = 7;
	answer(c, "type.googleapis.com/Count", &n.base);
	wait_calls(&d, 1);
	ck_assert_int_eq(d.status, SPAWN_OK);
	ck_assert_str_eq(d.message, "(null)");
	ck_assert_int_eq(d.n, 7);
	fake_call_free(c);

	ck_assert_int_eq(counter_get_async(cl, "sys", "x", &in, T_MS, on_count, &d), SPAWN_OK);
	c = accept_invoke(gw, &req);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	ck_assert(fake_call_finish(c, GRPC_STATUS_UNAVAILABLE, "no host", T_MS));
	wait_calls(&d, 2);
	ck_assert_int_eq(d.status, SPAWN_UNAVAILABLE);
	ck_assert_str_eq(d.message, "no host");
	fake_call_free(c);

	spawn_client_destroy(cl);
	fake_gw_stop(gw);
	ck_assert_int_eq(d.calls, 2);
}
END_TEST

/* ---- the host side ------------------------------------------------------------- */

static void on_increment(spawn_ctx *ctx, const Count *state, const Delta *in, void *user)
{
	int *calls = user;
	(*calls)++;
	Count next = *state;
	next.n += in->by;
	if (counter_set_state(ctx, &next) == SPAWN_OK)
		counter_increment_reply(ctx, &next);
}

static void on_run(spawn_ctx *ctx, const Job *in, void *user)
{
	(void)user;
	JobResult r = JOB_RESULT__INIT;
	r.id = in->id;
	r.output.data = (uint8_t *)"done";
	r.output.len = 4;
	worker_run_reply(ctx, &r);
}

static int increments;
static const counter_handlers counter_hs = {.increment = on_increment, .user = &increments};
static const worker_handlers worker_hs = {.run = on_run};
static const session_handlers session_hs = {0}; /* Record unimplemented */

static spawn_host *start_host(fake_gw *gw)
{
	spawn_host_opts o = {.target = fake_gw_target(gw), .system = "sys", .backoff_min_ms = 50};
	spawn_host *h;
	ck_assert_int_eq(spawn_host_create(&h, &o), SPAWN_OK);
	ck_assert_int_eq(counter_register(h, &counter_hs), SPAWN_OK);
	ck_assert_int_eq(session_register(h, &session_hs), SPAWN_OK);
	ck_assert_int_eq(worker_register(h, &worker_hs), SPAWN_OK);
	ck_assert_int_eq(counter_register(h, &counter_hs), SPAWN_EEXIST);
	ck_assert_int_eq(worker_register(h, NULL), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);
	return h;
}

static const Spawn__Actors__Actor *find_actor(const Spawn__RegistrationRequest *r, const char *name)
{
	const Spawn__Actors__Registry *reg = r->actor_system->registry;
	for (size_t i = 0; i < reg->n_actors; i++)
		if (strcmp(reg->actors[i]->key, name) == 0)
			return reg->actors[i]->value;
	ck_abort_msg("actor %s not registered", name);
	return NULL;
}

static fake_call *accept_host(fake_gw *gw, Spawn__Gateway__V1__HostMessage **reg)
{
	fake_call *c = fake_gw_accept(gw, T_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(fake_call_method(c), "/spawn.gateway.v1.HostGateway/Connect");
	*reg = (Spawn__Gateway__V1__HostMessage *)fake_call_recv(
	    c, &spawn__gateway__v1__host_message__descriptor, T_MS);
	ck_assert_ptr_nonnull(*reg);
	ck_assert_int_eq((*reg)->msg_case, SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION);
	Spawn__RequestStatus st = SPAWN__REQUEST_STATUS__INIT;
	st.status = SPAWN__STATUS__OK;
	Spawn__RegistrationResponse rr = SPAWN__REGISTRATION_RESPONSE__INIT;
	rr.status = &st;
	Spawn__Gateway__V1__GatewayMessage gm = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__INIT;
	gm.msg_case = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_REGISTRATION;
	gm.registration = &rr;
	ck_assert(fake_call_send(c, &gm.base, T_MS));
	/* The generated register functions send the contract's descriptors
	 * right after the registration (docs/protocol.md, "Contracts"). */
	Spawn__Gateway__V1__HostMessage *ct = (Spawn__Gateway__V1__HostMessage *)fake_call_recv(
	    c, &spawn__gateway__v1__host_message__descriptor, T_MS);
	ck_assert_ptr_nonnull(ct);
	ck_assert_int_eq(ct->msg_case, SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_CONTRACTS);
	Google__Protobuf__FileDescriptorSet *fs = google__protobuf__file_descriptor_set__unpack(
	    NULL, ct->contracts->files.len, ct->contracts->files.data);
	ck_assert_ptr_nonnull(fs);
	ck_assert_uint_gt(fs->n_file, 0);
	google__protobuf__file_descriptor_set__free_unpacked(fs, NULL);
	protobuf_c_message_free_unpacked(&ct->base, NULL);
	return c;
}

/* send_task sends an invocation of actor.action with state and input
 * (url NULL: none). An actor "instance/template" is an instance of an
 * UNNAMED template. */
static void send_task(fake_call *c, uint64_t id, const char *actor, const char *action,
                      const char *state_url, const ProtobufCMessage *state, const char *in_url,
                      const ProtobufCMessage *in)
{
	uint8_t sbuf[256], pbuf[256];
	Google__Protobuf__Any s = GOOGLE__PROTOBUF__ANY__INIT, p = GOOGLE__PROTOBUF__ANY__INIT;
	Spawn__Actors__ActorId self = SPAWN__ACTORS__ACTOR_ID__INIT;
	char name[64];
	snprintf(name, sizeof name, "%s", actor);
	char *slash = strchr(name, '/');
	if (slash) {
		*slash = '\0';
		self.parent = slash + 1;
	}
	self.name = name;
	self.system = "sys";
	Spawn__Context ctx = SPAWN__CONTEXT__INIT;
	if (state_url) {
		s.type_url = (char *)state_url;
		s.value.len = protobuf_c_message_pack(state, sbuf);
		s.value.data = sbuf;
		ctx.state = &s;
	}
	Spawn__ActorInvocation inv = SPAWN__ACTOR_INVOCATION__INIT;
	inv.actor = &self;
	inv.action_name = (char *)action;
	inv.current_context = &ctx;
	if (in_url) {
		p.type_url = (char *)in_url;
		p.value.len = protobuf_c_message_pack(in, pbuf);
		p.value.data = pbuf;
		inv.payload_case = SPAWN__ACTOR_INVOCATION__PAYLOAD_VALUE;
		inv.value = &p;
	}
	Spawn__Gateway__V1__InvocationTask task = SPAWN__GATEWAY__V1__INVOCATION_TASK__INIT;
	task.request_id = id;
	task.invocation = &inv;
	Spawn__Gateway__V1__GatewayMessage gm = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__INIT;
	gm.msg_case = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION;
	gm.invocation = &task;
	ck_assert(fake_call_send(c, &gm.base, T_MS));
}

static Spawn__Gateway__V1__InvocationResult *recv_result(fake_call *c,
                                                         Spawn__Gateway__V1__HostMessage **m)
{
	*m = (Spawn__Gateway__V1__HostMessage *)fake_call_recv(
	    c, &spawn__gateway__v1__host_message__descriptor, T_MS);
	ck_assert_ptr_nonnull(*m);
	ck_assert_int_eq((*m)->msg_case, SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT);
	return (*m)->result;
}

static int64_t count_of(const Google__Protobuf__Any *any)
{
	ck_assert_ptr_nonnull(any);
	ck_assert_str_eq(any->type_url, "type.googleapis.com/Count");
	Count *m = count__unpack(NULL, any->value.len, any->value.data);
	ck_assert_ptr_nonnull(m);
	int64_t v = m->n;
	count__free_unpacked(m, NULL);
	return v;
}

START_TEST(registration_carries_the_settings_of_the_contract)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	spawn_host *h = start_host(gw);
	Spawn__Gateway__V1__HostMessage *reg;
	fake_call *c = accept_host(gw, &reg);

	const Spawn__Actors__Actor *a = find_actor(reg->registration, "Counter");
	ck_assert_int_eq(a->settings->kind, SPAWN__ACTORS__KIND__NAMED);
	ck_assert(a->settings->stateful);
	ck_assert_str_eq(a->settings->state_type, "type.googleapis.com/Count");
	ck_assert_int_eq(a->settings->deactivation_strategy->timeout->timeout, 30000);
	ck_assert_int_eq(a->settings->snapshot_strategy->timeout->timeout, 1000);
	ck_assert_uint_eq(a->n_actions, 2);
	ck_assert_str_eq(a->actions[0]->name, "Get");
	ck_assert_str_eq(a->actions[1]->name, "Increment");

	a = find_actor(reg->registration, "Session");
	ck_assert_int_eq(a->settings->kind, SPAWN__ACTORS__KIND__UNNAMED);
	ck_assert(a->settings->stateful);
	ck_assert_str_eq(a->settings->state_type, "type.googleapis.com/SessionState");

	a = find_actor(reg->registration, "Worker");
	ck_assert_int_eq(a->settings->kind, SPAWN__ACTORS__KIND__POOLED);
	ck_assert(!a->settings->stateful);
	ck_assert_str_eq(a->settings->state_type, "");
	ck_assert_ptr_null(a->settings->deactivation_strategy);
	ck_assert_uint_eq(a->n_actions, 1);
	ck_assert_str_eq(a->actions[0]->name, "Run");
	protobuf_c_message_free_unpacked(&reg->base, NULL);

	spawn_host_destroy(h);
	fake_call_free(c);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(invocations_reach_the_typed_handlers_and_their_outcome_returns)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	spawn_host *h = start_host(gw);
	Spawn__Gateway__V1__HostMessage *reg, *m;
	fake_call *c = accept_host(gw, &reg);
	protobuf_c_message_free_unpacked(&reg->base, NULL);
	ck_assert_int_eq(spawn_host_wait_registered(h, T_MS), SPAWN_OK);

	/* Stateful: the state and the input arrive typed; the new state and
	 * the reply go back. */
	Count st = COUNT__INIT;
	st.n = 40;
	Delta d = DELTA__INIT;
	d.by = 2;
	send_task(c, 1, "Counter", "Increment", "type.googleapis.com/Count", &st.base,
	          "type.googleapis.com/Delta", &d.base);
	Spawn__Gateway__V1__InvocationResult *r = recv_result(c, &m);
	ck_assert_uint_eq(r->request_id, 1);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	ck_assert_int_eq(count_of(r->response->updated_context->state), 42);
	ck_assert_int_eq(count_of(r->response->value), 42);
	protobuf_c_message_free_unpacked(&m->base, NULL);

	/* A new actor has no state yet: the handler sees default values. */
	send_task(c, 2, "Counter", "Increment", NULL, NULL, "type.googleapis.com/Delta", &d.base);
	r = recv_result(c, &m);
	ck_assert_int_eq(count_of(r->response->value), 2);
	protobuf_c_message_free_unpacked(&m->base, NULL);

	/* Stateless: the handler gets the input only. */
	Job j = JOB__INIT;
	j.id = "j-9";
	send_task(c, 3, "Worker", "Run", NULL, NULL, "type.googleapis.com/Job", &j.base);
	r = recv_result(c, &m);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	ck_assert_str_eq(r->response->value->type_url, "type.googleapis.com/JobResult");
	JobResult *jr =
	    job_result__unpack(NULL, r->response->value->value.len, r->response->value->value.data);
	ck_assert_str_eq(jr->id, "j-9");
	ck_assert_uint_eq(jr->output.len, 4);
	job_result__free_unpacked(jr, NULL);
	protobuf_c_message_free_unpacked(&m->base, NULL);

	/* An input of another type fails before the handler. */
	send_task(c, 4, "Counter", "Increment", NULL, NULL, "type.googleapis.com/Job", &j.base);
	r = recv_result(c, &m);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR);
	ck_assert_int_eq(r->error->code, SPAWN_INVALID_ARGUMENT);
	ck_assert_str_eq(r->error->message, "action Increment takes a Delta");
	protobuf_c_message_free_unpacked(&m->base, NULL);

	/* So does a state of another type. */
	send_task(c, 5, "Counter", "Increment", "type.googleapis.com/Job", &j.base,
	          "type.googleapis.com/Delta", &d.base);
	r = recv_result(c, &m);
	ck_assert_int_eq(r->error->code, SPAWN_FAILED_PRECONDITION);
	ck_assert_str_eq(r->error->message, "the state of actor Counter is not a Count");
	protobuf_c_message_free_unpacked(&m->base, NULL);

	/* A NULL handler answers UNIMPLEMENTED. */
	Event e = EVENT__INIT;
	send_task(c, 6, "s-1/Session", "Record", NULL, NULL, "type.googleapis.com/Event", &e.base);
	r = recv_result(c, &m);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR);
	ck_assert_int_eq(r->error->code, SPAWN_UNIMPLEMENTED);
	ck_assert_str_eq(r->error->message, "Session.Record is not implemented");
	protobuf_c_message_free_unpacked(&m->base, NULL);

	spawn_host_destroy(h);
	ck_assert_int_eq(increments, 2); /* the failed ones never ran it */
	fake_call_free(c);
	fake_gw_stop(gw);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("codegen_stubs");
	TCase *cl = tcase_create("client");
	tcase_set_timeout(cl, 60);
	tcase_add_test(cl, a_stub_sends_its_typed_input_and_returns_the_typed_reply);
	tcase_add_test(cl, unnamed_and_pooled_actors_are_addressed_as_their_kind_says);
	tcase_add_test(cl, a_failure_returns_its_status_and_message_and_leaves_out_alone);
	tcase_add_test(cl, the_async_stub_calls_back_once_with_the_typed_reply);
	suite_add_tcase(s, cl);
	TCase *ho = tcase_create("host");
	tcase_set_timeout(ho, 60);
	tcase_add_test(ho, registration_carries_the_settings_of_the_contract);
	tcase_add_test(ho, invocations_reach_the_typed_handlers_and_their_outcome_returns);
	suite_add_tcase(s, ho);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
