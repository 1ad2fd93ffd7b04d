/* sdk_client_test.c - the client SDK against a fake ActorGateway over real
 * gRPC: request contents, replies, statuses, deadlines, async callbacks,
 * cancellation on destroy, and the typed calls generated stubs use. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_gateway.h"
#include "spawn/spawn.h"
#include "wire.h"

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

/* ---- a synchronous call on a helper thread, so the test can play the
 * gateway meanwhile ---------------------------------------------------------- */

typedef struct sync_call {
	spawn_client *c;
	spawn_request req;
	int64_t timeout_ms;
	bool spawn; /* spawn_client_spawn instead of invoke */
	spawn_reply reply;
	int rc;
	pthread_t t;
} sync_call;

static void *sync_main(void *arg)
{
	sync_call *s = arg;
	if (s->spawn) {
		spawn_actor_id ids[] = {{.name = "inst-1", .parent = "tmpl"},
		                        {.name = "inst-2", .parent = "tmpl"}};
		s->rc = spawn_client_spawn(s->c, "sys", ids, 2, &s->reply, s->timeout_ms);
	} else {
		s->rc = spawn_client_invoke(s->c, &s->req, &s->reply, s->timeout_ms);
	}
	return NULL;
}

static void sync_start(sync_call *s)
{
	ck_assert_int_eq(pthread_create(&s->t, NULL, sync_main, s), 0);
}

static void sync_join(sync_call *s)
{
	struct timespec ts = abs_deadline(T_MS);
	ck_assert_int_eq(pthread_timedjoin_np(s->t, NULL, &ts), 0);
}

/* ---- the gateway side -------------------------------------------------------- */

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

/* answer sends an InvocationResponse with value (type_url, data) or a Noop
 * when type_url is NULL, with RequestStatus st, then status OK. */
static void answer(fake_call *c, const char *type_url, const char *data, Spawn__Status st,
                   const char *st_msg)
{
	Spawn__RequestStatus rs = SPAWN__REQUEST_STATUS__INIT;
	rs.status = st;
	if (st_msg)
		rs.message = (char *)st_msg;
	Spawn__InvocationResponse resp = SPAWN__INVOCATION_RESPONSE__INIT;
	resp.status = &rs;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	Spawn__Noop noop = SPAWN__NOOP__INIT;
	if (type_url) {
		any.type_url = (char *)type_url;
		any.value.data = (uint8_t *)data;
		any.value.len = strlen(data);
		resp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_VALUE;
		resp.value = &any;
	} else {
		resp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_NOOP;
		resp.noop = &noop;
	}
	ck_assert(fake_call_send(c, &resp.base, T_MS));
	ck_assert(fake_call_finish(c, GRPC_STATUS_OK, "", T_MS));
}

static fake_gw *start_gw(spawn_client **client)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	ck_assert_int_eq(spawn_client_create(client, fake_gw_target(gw)), SPAWN_OK);
	return gw;
}

/* ---- tests ------------------------------------------------------------------- */

START_TEST(invoke_sends_the_request_and_returns_the_reply)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	spawn_metadata md[] = {{"trace", "t-1"}, {"empty", NULL}};
	sync_call s = {
	    .c = cl,
	    .timeout_ms = T_MS,
	    .req = {
	        .system = "sys",
	        .actor = "inst-9",
	        .action = "Add",
	        .payload = {.type_url = "type.googleapis.com/x.Add", .data = "\x08\x02", .len = 2},
	        .metadata = md,
	        .n_metadata = 2,
	        .parent = "tmpl",
	        .scheduled_to_ms = 1234}};
	sync_start(&s);

	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	ck_assert_str_eq(req->system->name, "sys");
	ck_assert_str_eq(req->actor->id->name, "inst-9");
	ck_assert_str_eq(req->actor->id->system, "sys");
	ck_assert_str_eq(req->actor->id->parent, "tmpl");
	ck_assert_str_eq(req->register_ref, "tmpl");
	ck_assert_str_eq(req->action_name, "Add");
	ck_assert_int_eq(req->payload_case, SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE);
	ck_assert_str_eq(req->value->type_url, "type.googleapis.com/x.Add");
	ck_assert_uint_eq(req->value->value.len, 2);
	ck_assert_mem_eq(req->value->value.data, "\x08\x02", 2);
	ck_assert(!req->async);
	ck_assert_int_eq(req->scheduled_to, 1234);
	ck_assert_uint_eq(req->n_metadata, 2);
	ck_assert_str_eq(req->metadata[0]->key, "trace");
	ck_assert_str_eq(req->metadata[0]->value, "t-1");
	ck_assert_str_eq(req->metadata[1]->value, "");
	protobuf_c_message_free_unpacked(&req->base, NULL);
	answer(c, "type.googleapis.com/x.Total", "\x08\x2a", SPAWN__STATUS__OK, NULL);

	sync_join(&s);
	ck_assert_int_eq(s.rc, SPAWN_OK);
	ck_assert_int_eq(s.reply.status, SPAWN_OK);
	ck_assert_ptr_null(s.reply.message);
	ck_assert_str_eq(s.reply.payload.type_url, "type.googleapis.com/x.Total");
	ck_assert_uint_eq(s.reply.payload.len, 2);
	ck_assert_mem_eq(s.reply.payload.data, "\x08\x2a", 2);
	spawn_reply_fini(&s.reply);
	fake_call_free(c);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(noop_reply_and_no_payload_travel_as_noop)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	sync_call s = {.c = cl,
	               .timeout_ms = T_MS,
	               .req = {.system = "sys", .actor = "a", .action = "Ping", .async = true}};
	sync_start(&s);
	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	ck_assert_int_eq(req->payload_case, SPAWN__INVOCATION_REQUEST__PAYLOAD_NOOP);
	ck_assert(req->async);
	ck_assert_str_eq(req->register_ref, "");
	protobuf_c_message_free_unpacked(&req->base, NULL);
	answer(c, NULL, NULL, SPAWN__STATUS__OK, NULL);
	sync_join(&s);
	ck_assert_int_eq(s.rc, SPAWN_OK);
	ck_assert_ptr_null(s.reply.payload.type_url);
	ck_assert_uint_eq(s.reply.payload.len, 0);
	spawn_reply_fini(&s.reply);
	fake_call_free(c);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(gateway_status_becomes_the_reply_status)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	sync_call s = {.c = cl,
	               .timeout_ms = T_MS,
	               .req = {.system = "sys", .actor = "ghost", .action = "Add"}};
	sync_start(&s);
	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	ck_assert(fake_call_finish(c, GRPC_STATUS_NOT_FOUND, "no actor ghost in sys", T_MS));
	sync_join(&s);
	ck_assert_int_eq(s.rc, SPAWN_NOT_FOUND);
	ck_assert_int_eq(s.reply.status, SPAWN_NOT_FOUND);
	ck_assert_str_eq(s.reply.message, "no actor ghost in sys");
	ck_assert_ptr_null(s.reply.payload.type_url);
	spawn_reply_fini(&s.reply);
	fake_call_free(c);

	/* Without details the message is the code's description. */
	sync_start(&s);
	c = accept_invoke(gw, &req);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	ck_assert(fake_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, T_MS));
	sync_join(&s);
	ck_assert_int_eq(s.rc, SPAWN_RESOURCE_EXHAUSTED);
	ck_assert_str_eq(s.reply.message, "resource exhausted");
	spawn_reply_fini(&s.reply);
	fake_call_free(c);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(request_status_inside_a_response_is_honoured)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	sync_call s = {
	    .c = cl, .timeout_ms = T_MS, .req = {.system = "sys", .actor = "a", .action = "Add"}};
	sync_start(&s);
	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	answer(c, NULL, NULL, SPAWN__STATUS__ACTOR_NOT_FOUND, "gone");
	sync_join(&s);
	ck_assert_int_eq(s.rc, SPAWN_NOT_FOUND);
	ck_assert_str_eq(s.reply.message, "gone");
	spawn_reply_fini(&s.reply);
	fake_call_free(c);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(malformed_response_is_a_protocol_error)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	sync_call s = {
	    .c = cl, .timeout_ms = T_MS, .req = {.system = "sys", .actor = "a", .action = "Add"}};
	sync_start(&s);
	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	/* InvocationResponse field 1 is a message; this sends a varint. */
	Spawn__Actors__TimeoutStrategy junk = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	junk.timeout = 3;
	ck_assert(fake_call_send(c, &junk.base, T_MS));
	ck_assert(fake_call_finish(c, GRPC_STATUS_OK, "", T_MS));
	sync_join(&s);
	ck_assert_int_eq(s.rc, SPAWN_EPROTO);
	ck_assert_ptr_nonnull(s.reply.message);
	spawn_reply_fini(&s.reply);
	fake_call_free(c);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(timeout_gives_deadline_exceeded)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	sync_call s = {
	    .c = cl, .timeout_ms = 300, .req = {.system = "sys", .actor = "a", .action = "Add"}};
	sync_start(&s);
	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req); /* ... and never answer */
	protobuf_c_message_free_unpacked(&req->base, NULL);
	sync_join(&s);
	ck_assert_int_eq(s.rc, SPAWN_DEADLINE_EXCEEDED);
	ck_assert_ptr_nonnull(s.reply.message);
	spawn_reply_fini(&s.reply);
	fake_call_wait_closed(c, T_MS);
	fake_call_free(c);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

/* An unreachable gateway: a call with a deadline waits for it (wait-for-
 * ready) and ends DEADLINE_EXCEEDED saying there was no connection; a call
 * without one, or of a fail_fast client, is UNAVAILABLE at once. */
START_TEST(unreachable_gateway_is_unavailable)
{
	static const char target[] = "unix:/nonexistent-spawn-dir/gw.sock";
	spawn_client *cl;
	ck_assert_int_eq(spawn_client_create(&cl, target), SPAWN_OK);
	spawn_request req = {.system = "sys", .actor = "a", .action = "Add"};
	spawn_reply r;
	ck_assert_int_eq(spawn_client_invoke(cl, &req, &r, 300), SPAWN_DEADLINE_EXCEEDED);
	ck_assert_ptr_nonnull(
	    strstr(r.message, "no connection to the gateway at unix:/nonexistent"));
	spawn_reply_fini(&r);
	ck_assert_int_eq(spawn_client_invoke(cl, &req, &r, 0), SPAWN_UNAVAILABLE);
	ck_assert_ptr_nonnull(r.message);
	spawn_reply_fini(&r);
	spawn_client_destroy(cl);

	spawn_client_opts o = {.target = target, .fail_fast = true};
	ck_assert_int_eq(spawn_client_create_opts(&cl, &o), SPAWN_OK);
	ck_assert_int_eq(spawn_client_invoke(cl, &req, &r, T_MS), SPAWN_UNAVAILABLE);
	ck_assert_ptr_nonnull(r.message);
	spawn_reply_fini(&r);
	spawn_client_destroy(cl);
}
END_TEST

START_TEST(client_options_are_checked)
{
	spawn_client *cl = NULL;
	spawn_client_opts o = {.target = "127.0.0.1:1", .reconnect_min_ms = -1};
	ck_assert_int_eq(spawn_client_create_opts(&cl, &o), SPAWN_EINVAL);
	o.reconnect_min_ms = 500;
	o.reconnect_max_ms = 100;
	ck_assert_int_eq(spawn_client_create_opts(&cl, &o), SPAWN_EINVAL);
	o.target = "";
	o.reconnect_max_ms = 0;
	ck_assert_int_eq(spawn_client_create_opts(&cl, &o), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_client_create_opts(&cl, NULL), SPAWN_EINVAL);
	ck_assert_ptr_null(cl);
	/* Only a minimum above the default maximum: the maximum follows. */
	o.target = "127.0.0.1:1";
	ck_assert_int_eq(spawn_client_create_opts(&cl, &o), SPAWN_OK);
	spawn_client_destroy(cl);
	spawn_client_opts quiet = {.target = "127.0.0.1:1", .no_watch = true};
	ck_assert_int_eq(spawn_client_create_opts(&cl, &quiet), SPAWN_OK);
	spawn_client_destroy(cl);
}
END_TEST

START_TEST(spawn_creates_instances)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	sync_call s = {.c = cl, .timeout_ms = T_MS, .spawn = true};
	sync_start(&s);
	fake_call *c = fake_gw_accept(gw, T_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(fake_call_method(c), "/spawn.gateway.v1.ActorGateway/Spawn");
	Spawn__SpawnRequest *req =
	    (Spawn__SpawnRequest *)fake_call_recv(c, &spawn__spawn_request__descriptor, T_MS);
	ck_assert_ptr_nonnull(req);
	ck_assert_uint_eq(req->n_actors, 2);
	ck_assert_str_eq(req->actors[0]->name, "inst-1");
	ck_assert_str_eq(req->actors[1]->name, "inst-2");
	ck_assert_str_eq(req->actors[1]->parent, "tmpl");
	ck_assert_str_eq(req->actors[1]->system, "sys");
	protobuf_c_message_free_unpacked(&req->base, NULL);
	Spawn__RequestStatus rs = SPAWN__REQUEST_STATUS__INIT;
	rs.status = SPAWN__STATUS__OK;
	Spawn__SpawnResponse resp = SPAWN__SPAWN_RESPONSE__INIT;
	resp.status = &rs;
	ck_assert(fake_call_send(c, &resp.base, T_MS));
	ck_assert(fake_call_finish(c, GRPC_STATUS_OK, "", T_MS));
	sync_join(&s);
	ck_assert_int_eq(s.rc, SPAWN_OK);
	spawn_reply_fini(&s.reply);
	fake_call_free(c);

	/* A refusal inside the response. */
	sync_start(&s);
	c = fake_gw_accept(gw, T_MS);
	ck_assert_ptr_nonnull(c);
	req = (Spawn__SpawnRequest *)fake_call_recv(c, &spawn__spawn_request__descriptor, T_MS);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	rs.status = SPAWN__STATUS__ERROR;
	rs.message = "tmpl is not UNNAMED";
	ck_assert(fake_call_send(c, &resp.base, T_MS));
	ck_assert(fake_call_finish(c, GRPC_STATUS_OK, "", T_MS));
	sync_join(&s);
	ck_assert_int_eq(s.rc, SPAWN_UNKNOWN);
	ck_assert_str_eq(s.reply.message, "tmpl is not UNNAMED");
	spawn_reply_fini(&s.reply);
	fake_call_free(c);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

/* ---- async ------------------------------------------------------------------- */

typedef struct collected {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n;
	int status[8];
	char payload[8][16];
	pthread_t thread[8];
} collected;

static void on_reply(void *user, spawn_reply *r)
{
	collected *col = user;
	pthread_mutex_lock(&col->mu);
	int i = col->n++;
	col->status[i] = r->status;
	snprintf(col->payload[i], sizeof col->payload[i], "%.*s", (int)r->payload.len,
	         r->payload.data ? (const char *)r->payload.data : "");
	col->thread[i] = pthread_self();
	pthread_cond_broadcast(&col->cv);
	pthread_mutex_unlock(&col->mu);
}

/* wait_count waits up to T_MS until *count (guarded by mu, signalled on
 * cv) reaches n; false on timeout. */
static bool wait_count(pthread_mutex_t *mu, pthread_cond_t *cv, const int *count, int n)
{
	struct timespec ts = abs_deadline(T_MS);
	pthread_mutex_lock(mu);
	int rc = 0;
	while (*count < n && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(cv, mu, &ts);
	bool ok = *count >= n;
	pthread_mutex_unlock(mu);
	return ok;
}

static bool wait_collected(collected *col, int n)
{
	return wait_count(&col->mu, &col->cv, &col->n, n);
}

START_TEST(async_calls_complete_on_the_client_thread_in_any_order)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	collected col = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	const char *names[] = {"a0", "a1", "a2"};
	for (int i = 0; i < 3; i++) {
		spawn_request req = {.system = "sys", .actor = names[i], .action = "Echo"};
		ck_assert_int_eq(spawn_client_invoke_async(cl, &req, T_MS, on_reply, &col),
		                 SPAWN_OK);
	}
	fake_call *calls[3];
	char actor[3][8];
	for (int i = 0; i < 3; i++) {
		Spawn__InvocationRequest *req;
		calls[i] = accept_invoke(gw, &req);
		snprintf(actor[i], sizeof actor[i], "%s", req->actor->id->name);
		protobuf_c_message_free_unpacked(&req->base, NULL);
	}
	for (int i = 2; i >= 0; i--) {
		answer(calls[i], "t/echo", actor[i], SPAWN__STATUS__OK, NULL);
		ck_assert(wait_collected(&col, 3 - i));
		ck_assert_str_eq(col.payload[2 - i], actor[i]); /* in answer order */
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(col.status[i], SPAWN_OK);
		ck_assert(!pthread_equal(col.thread[i], pthread_self()));
		fake_call_free(calls[i]);
	}
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(destroy_cancels_calls_in_flight)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	collected col = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	spawn_request req = {.system = "sys", .actor = "a", .action = "Hang"};
	ck_assert_int_eq(spawn_client_invoke_async(cl, &req, 0, on_reply, &col), SPAWN_OK);
	Spawn__InvocationRequest *got;
	fake_call *c = accept_invoke(gw, &got); /* in flight at the gateway */
	protobuf_c_message_free_unpacked(&got->base, NULL);

	spawn_client_destroy(cl);
	/* The callback ran before destroy returned. */
	ck_assert_int_eq(col.n, 1);
	ck_assert_int_eq(col.status[0], SPAWN_CANCELLED);
	ck_assert(fake_call_wait_closed(c, T_MS));
	fake_call_free(c);
	fake_gw_stop(gw);
}
END_TEST

/* ---- typed calls (spawn_client_invoke_msg[_async]) ----------------------------- */

#define TS_D   (&spawn__actors__timeout_strategy__descriptor)
#define TS_URL "type.googleapis.com/spawn.actors.TimeoutStrategy"

/* A typed call on a helper thread: input {timeout: 5}, reply into out
 * (or out NULL when !want_out). */
typedef struct msg_sync {
	spawn_client *c;
	spawn_request req;
	bool want_out;
	ProtobufCMessage *out;
	char *message;
	int rc;
	pthread_t t;
} msg_sync;

static void *msg_sync_main(void *arg)
{
	msg_sync *s = arg;
	Spawn__Actors__TimeoutStrategy in = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	in.timeout = 5;
	s->rc = spawn_client_invoke_msg(s->c, &s->req, &in.base, TS_D, s->want_out ? &s->out : NULL,
	                                &s->message, T_MS);
	return NULL;
}

/* msg_round runs one typed call; the gateway side answers with answer()'s
 * arguments, or fails the call with code when type_url is "!". */
static void msg_round(fake_gw *gw, msg_sync *s, const char *type_url, const char *data,
                      grpc_status_code code)
{
	s->message = (char *)"unset";
	ck_assert_int_eq(pthread_create(&s->t, NULL, msg_sync_main, s), 0);
	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	if (type_url && strcmp(type_url, "!") == 0)
		ck_assert(fake_call_finish(c, code, data, T_MS));
	else
		answer(c, type_url, data, SPAWN__STATUS__OK, NULL);
	struct timespec ts = abs_deadline(T_MS);
	ck_assert_int_eq(pthread_timedjoin_np(s->t, NULL, &ts), 0);
	fake_call_free(c);
}

static int64_t timeout_of(const ProtobufCMessage *m)
{
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_eq(m->descriptor, TS_D);
	return ((const Spawn__Actors__TimeoutStrategy *)m)->timeout;
}

START_TEST(typed_invoke_packs_the_input_and_reads_the_typed_reply)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	msg_sync s = {.c = cl,
	              .want_out = true,
	              .req = {.system = "sys",
	                      .actor = "w",
	                      .action = "Run",
	                      .pooled = true,
	                      .payload = {.type_url = "t/ignored", .data = "zz", .len = 2}}};
	s.message = (char *)"unset";
	ck_assert_int_eq(pthread_create(&s.t, NULL, msg_sync_main, &s), 0);
	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	ck_assert_str_eq(req->actor->id->name, "w");
	ck_assert_str_eq(req->action_name, "Run");
	ck_assert(req->pooled);
	/* The payload is the input message, not req.payload. */
	ck_assert_int_eq(req->payload_case, SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE);
	ck_assert_str_eq(req->value->type_url, TS_URL);
	Spawn__Actors__TimeoutStrategy *got = spawn__actors__timeout_strategy__unpack(
	    NULL, req->value->value.len, req->value->value.data);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(got->timeout, 5);
	spawn__actors__timeout_strategy__free_unpacked(got, NULL);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	answer(c, TS_URL, "\x08\x2a", SPAWN__STATUS__OK, NULL);
	struct timespec ts = abs_deadline(T_MS);
	ck_assert_int_eq(pthread_timedjoin_np(s.t, NULL, &ts), 0);
	fake_call_free(c);
	ck_assert_int_eq(s.rc, SPAWN_OK);
	ck_assert_ptr_null(s.message);
	ck_assert_int_eq(timeout_of(s.out), 42);
	protobuf_c_message_free_unpacked(s.out, NULL);
	ck_assert_str_eq(s.req.payload.type_url, "t/ignored"); /* the caller's, untouched */

	/* A reply without a value: default values of the reply's type. */
	s.out = NULL;
	msg_round(gw, &s, NULL, NULL, GRPC_STATUS_OK);
	ck_assert_int_eq(s.rc, SPAWN_OK);
	ck_assert_ptr_null(s.message);
	ck_assert_int_eq(timeout_of(s.out), 0);
	protobuf_c_message_free_unpacked(s.out, NULL);

	/* A reply of another type: ETYPE, and out stays as it was. */
	Spawn__Actors__TimeoutStrategy sentinel = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	s.out = &sentinel.base;
	msg_round(gw, &s, "type.googleapis.com/spawn.actors.ActorId", "", GRPC_STATUS_OK);
	ck_assert_int_eq(s.rc, SPAWN_ETYPE);
	ck_assert_str_eq(s.message, "the reply has another type");
	ck_assert_ptr_eq(s.out, &sentinel.base);
	free(s.message);

	/* The gateway's failure: its status and message. */
	msg_round(gw, &s, "!", "no actor w", GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(s.rc, SPAWN_NOT_FOUND);
	ck_assert_str_eq(s.message, "no actor w");
	ck_assert_ptr_eq(s.out, &sentinel.base);
	free(s.message);

	/* Without out the reply is not read: its type does not matter. */
	s.want_out = false;
	msg_round(gw, &s, "type.googleapis.com/spawn.actors.ActorId", "", GRPC_STATUS_OK);
	ck_assert_int_eq(s.rc, SPAWN_OK);
	ck_assert_ptr_null(s.message);

	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

/* What spawn_msg_done_fn calls saw. */
typedef struct msg_log {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n;
	spawn_fn fn[4];
	int status[4];
	char message[4][64];
	int64_t value[4]; /* -1: no reply */
	pthread_t thread[4];
} msg_log;

static void typed_cb_stand_in(void)
{
}

static void on_msg_done(spawn_fn fn, void *user, int status, const char *message,
                        ProtobufCMessage *reply)
{
	msg_log *l = user;
	pthread_mutex_lock(&l->mu);
	int i = l->n < 4 ? l->n : 3;
	l->fn[i] = fn;
	l->status[i] = status;
	snprintf(l->message[i], sizeof l->message[i], "%s", message ? message : "(null)");
	l->value[i] = reply ? timeout_of(reply) : -1;
	l->thread[i] = pthread_self();
	l->n++;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
}

static bool wait_msg_log(msg_log *l, int n)
{
	return wait_count(&l->mu, &l->cv, &l->n, n);
}

START_TEST(typed_async_calls_done_once_with_fn_user_and_the_typed_reply)
{
	spawn_client *cl;
	fake_gw *gw = start_gw(&cl);
	msg_log l = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	spawn_request rq = {.system = "sys", .actor = "a", .action = "Get"};
	Spawn__Actors__TimeoutStrategy in = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	in.timeout = 7;

	ck_assert_int_eq(spawn_client_invoke_msg_async(cl, &rq, &in.base, TS_D, T_MS, on_msg_done,
	                                               typed_cb_stand_in, &l),
	                 SPAWN_OK);
	Spawn__InvocationRequest *req;
	fake_call *c = accept_invoke(gw, &req);
	ck_assert_str_eq(req->value->type_url, TS_URL);
	ck_assert_uint_eq(req->value->value.len, 2);
	ck_assert_mem_eq(req->value->value.data, "\x08\x07", 2);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	answer(c, TS_URL, "\x08\x2a", SPAWN__STATUS__OK, NULL);
	ck_assert(wait_msg_log(&l, 1));
	fake_call_free(c);
	ck_assert(l.fn[0] == (spawn_fn)typed_cb_stand_in);
	ck_assert_int_eq(l.status[0], SPAWN_OK);
	ck_assert_str_eq(l.message[0], "(null)");
	ck_assert_int_eq(l.value[0], 42);
	ck_assert(!pthread_equal(l.thread[0], pthread_self()));

	/* Another type: ETYPE, no reply. */
	ck_assert_int_eq(spawn_client_invoke_msg_async(cl, &rq, &in.base, TS_D, T_MS, on_msg_done,
	                                               typed_cb_stand_in, &l),
	                 SPAWN_OK);
	c = accept_invoke(gw, &req);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	answer(c, "type.googleapis.com/spawn.actors.ActorId", "", SPAWN__STATUS__OK, NULL);
	ck_assert(wait_msg_log(&l, 2));
	fake_call_free(c);
	ck_assert_int_eq(l.status[1], SPAWN_ETYPE);
	ck_assert_str_eq(l.message[1], "the reply has another type");
	ck_assert_int_eq(l.value[1], -1);

	/* In flight when the client goes: CANCELLED, before destroy returns. */
	ck_assert_int_eq(spawn_client_invoke_msg_async(cl, &rq, &in.base, TS_D, 0, on_msg_done,
	                                               typed_cb_stand_in, &l),
	                 SPAWN_OK);
	c = accept_invoke(gw, &req);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	spawn_client_destroy(cl);
	ck_assert_int_eq(l.n, 3);
	ck_assert_int_eq(l.status[2], SPAWN_CANCELLED);
	ck_assert_int_eq(l.value[2], -1);
	ck_assert(fake_call_wait_closed(c, T_MS));
	fake_call_free(c);
	fake_gw_stop(gw);
}
END_TEST

static Suite *sdk_client_suite(void)
{
	Suite *s = suite_create("sdk_client");
	struct {
		const char *name;
		const TTest *t;
	} cases[] = {
	    {"invoke", invoke_sends_the_request_and_returns_the_reply},
	    {"noop", noop_reply_and_no_payload_travel_as_noop},
	    {"grpc_status", gateway_status_becomes_the_reply_status},
	    {"request_status", request_status_inside_a_response_is_honoured},
	    {"malformed", malformed_response_is_a_protocol_error},
	    {"timeout", timeout_gives_deadline_exceeded},
	    {"unreachable", unreachable_gateway_is_unavailable},
	    {"client_options", client_options_are_checked},
	    {"spawn", spawn_creates_instances},
	    {"async", async_calls_complete_on_the_client_thread_in_any_order},
	    {"destroy_cancels", destroy_cancels_calls_in_flight},
	    {"typed_invoke", typed_invoke_packs_the_input_and_reads_the_typed_reply},
	    {"typed_async", typed_async_calls_done_once_with_fn_user_and_the_typed_reply},
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
	SRunner *sr = srunner_create(sdk_client_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
