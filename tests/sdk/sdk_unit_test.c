/* sdk_unit_test.c - libspawn without a gateway: status table, payload
 * helpers, argument validation, the registration message, the dispatcher
 * (handler -> InvocationResult) driven through spawni_execute, and the
 * typed helpers generated code stands on (typed.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* spawn.actors.TimeoutStrategy {int64 timeout} stands in for a user's
 * state message; spawn.actors.ActorId for a second, different type. */
#define COUNTER_D   (&spawn__actors__timeout_strategy__descriptor)
#define COUNTER_URL "type.googleapis.com/spawn.actors.TimeoutStrategy"
#define OTHER_D     (&spawn__actors__actor_id__descriptor)

/* ---- status and payload helpers ------------------------------------------ */

START_TEST(status_names_and_messages_cover_both_tables)
{
	ck_assert_str_eq(spawn_status_name(SPAWN_OK), "OK");
	ck_assert_str_eq(spawn_status_name(5), "NOT_FOUND");
	ck_assert_str_eq(spawn_status_name(SPAWN_UNAUTHENTICATED), "UNAUTHENTICATED");
	ck_assert_str_eq(spawn_status_name(SPAWN_EINVAL), "EINVAL");
	ck_assert_str_eq(spawn_status_name(SPAWN_ESYS), "ESYS");
	ck_assert_str_eq(spawn_status_name(999), "?");
	ck_assert_str_eq(spawn_strerror(SPAWN_UNAVAILABLE), "unavailable");
	ck_assert_str_eq(spawn_strerror(SPAWN_ETYPE), "payload has another type");
	ck_assert_str_eq(spawn_strerror(-999), "unknown status");
	ck_assert_str_eq(spawn_version(), SPAWN_VERSION_STRING);
}
END_TEST

START_TEST(type_url_is_built_from_the_descriptor_and_truncates_like_snprintf)
{
	char buf[128];
	size_t n = spawn_type_url(COUNTER_D, buf, sizeof buf);
	ck_assert_str_eq(buf, COUNTER_URL);
	ck_assert_uint_eq(n, strlen(COUNTER_URL));
	char small[8];
	ck_assert_uint_eq(spawn_type_url(COUNTER_D, small, sizeof small), strlen(COUNTER_URL));
	ck_assert_str_eq(small, "type.go");
	ck_assert_uint_eq(spawn_type_url(COUNTER_D, NULL, 0), strlen(COUNTER_URL));
}
END_TEST

START_TEST(payload_pack_unpack_round_trips_and_checks_the_type)
{
	Spawn__Actors__TimeoutStrategy in = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	in.timeout = 4242;
	spawn_payload p;
	ck_assert_int_eq(spawn_payload_pack(&p, &in.base), SPAWN_OK);
	ck_assert_str_eq(p.type_url, COUNTER_URL);
	ck_assert(spawn_payload_is(&p, COUNTER_D));
	ck_assert(!spawn_payload_is(&p, OTHER_D));

	ProtobufCMessage *m = NULL;
	ck_assert_int_eq(spawn_payload_unpack(&p, COUNTER_D, &m), SPAWN_OK);
	ck_assert_int_eq(((Spawn__Actors__TimeoutStrategy *)m)->timeout, 4242);
	protobuf_c_message_free_unpacked(m, NULL);
	ck_assert_int_eq(spawn_payload_unpack(&p, OTHER_D, &m), SPAWN_ETYPE);

	spawn_payload_fini(&p);
	ck_assert_ptr_null(p.type_url);
	ck_assert_uint_eq(p.len, 0);
	spawn_payload_fini(&p); /* zeroed: no-op */
	spawn_payload_fini(NULL);

	/* A message with all defaults packs to zero bytes but keeps its type. */
	Spawn__Actors__TimeoutStrategy zero = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	ck_assert_int_eq(spawn_payload_pack(&p, &zero.base), SPAWN_OK);
	ck_assert_uint_eq(p.len, 0);
	ck_assert_ptr_null(p.data);
	ck_assert_int_eq(spawn_payload_unpack(&p, COUNTER_D, &m), SPAWN_OK);
	protobuf_c_message_free_unpacked(m, NULL);
	spawn_payload_fini(&p);
}
END_TEST

START_TEST(payload_unpack_rejects_garbage_and_missing_values)
{
	ProtobufCMessage *m = NULL;
	spawn_payload none = {0};
	ck_assert_int_eq(spawn_payload_unpack(&none, COUNTER_D, &m), SPAWN_ETYPE);
	/* Field 1 as varint with a truncated value. */
	static const uint8_t garbage[] = {0x08, 0xff};
	spawn_payload bad = {.type_url = COUNTER_URL, .data = garbage, .len = sizeof garbage};
	ck_assert_int_eq(spawn_payload_unpack(&bad, COUNTER_D, &m), SPAWN_EPROTO);
	ck_assert_int_eq(spawn_payload_unpack(NULL, COUNTER_D, &m), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_payload_unpack(&bad, NULL, &m), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_payload_pack(NULL, NULL), SPAWN_EINVAL);
	/* A bare full name (no slash) still matches. */
	spawn_payload bare = {.type_url = "spawn.actors.TimeoutStrategy"};
	ck_assert(spawn_payload_is(&bare, COUNTER_D));
	ck_assert(!spawn_payload_is(NULL, COUNTER_D));
	spawn_reply_fini(NULL);
}
END_TEST

START_TEST(reply_msg_reads_the_reply_as_a_typed_message)
{
	Spawn__Actors__TimeoutStrategy v = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	v.timeout = 9;
	spawn_reply r = {.status = SPAWN_OK};
	ck_assert_int_eq(spawn_payload_pack(&r.payload, &v.base), SPAWN_OK);
	ProtobufCMessage *const sentinel = &v.base;
	ProtobufCMessage *m = NULL;
	const char *why = "unset";
	ck_assert_int_eq(spawni_reply_msg(&r, COUNTER_D, &m, &why), SPAWN_OK);
	ck_assert_ptr_null(why);
	ck_assert_ptr_eq(m->descriptor, COUNTER_D);
	ck_assert_int_eq(((Spawn__Actors__TimeoutStrategy *)m)->timeout, 9);
	protobuf_c_message_free_unpacked(m, NULL);

	/* Another type than asked for: ETYPE, said so, *out untouched. */
	m = sentinel;
	ck_assert_int_eq(spawni_reply_msg(&r, OTHER_D, &m, &why), SPAWN_ETYPE);
	ck_assert_str_eq(why, "the reply has another type");
	ck_assert_ptr_eq(m, sentinel);
	/* Without out the reply is not read, so its type does not matter. */
	why = "unset";
	ck_assert_int_eq(spawni_reply_msg(&r, OTHER_D, NULL, &why), SPAWN_OK);
	ck_assert_ptr_null(why);
	spawn_payload_fini(&r.payload);

	/* No value: a message of the asked type with default values. */
	m = NULL;
	ck_assert_int_eq(spawni_reply_msg(&r, COUNTER_D, &m, &why), SPAWN_OK);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_eq(m->descriptor, COUNTER_D);
	ck_assert_int_eq(((Spawn__Actors__TimeoutStrategy *)m)->timeout, 0);
	protobuf_c_message_free_unpacked(m, NULL);

	/* Bytes that do not parse. */
	static const uint8_t garbage[] = {0x08, 0xff};
	r.payload =
	    (spawn_payload){.type_url = COUNTER_URL, .data = garbage, .len = sizeof garbage};
	m = sentinel;
	ck_assert_int_eq(spawni_reply_msg(&r, COUNTER_D, &m, &why), SPAWN_EPROTO);
	ck_assert_str_eq(why, spawn_strerror(SPAWN_EPROTO));
	ck_assert_ptr_eq(m, sentinel);

	/* A failed call: its status, with its message or the status's text;
	 * the payload is not looked at. */
	char gone[] = "no actor x";
	r.status = SPAWN_NOT_FOUND;
	r.message = gone;
	ck_assert_int_eq(spawni_reply_msg(&r, COUNTER_D, &m, &why), SPAWN_NOT_FOUND);
	ck_assert_str_eq(why, "no actor x");
	ck_assert_ptr_eq(m, sentinel);
	r.message = NULL;
	ck_assert_int_eq(spawni_reply_msg(&r, COUNTER_D, &m, &why), SPAWN_NOT_FOUND);
	ck_assert_str_eq(why, "not found");
	ck_assert_ptr_eq(m, sentinel);
}
END_TEST

START_TEST(backoff_stays_within_bounds_and_grows)
{
	unsigned seed = 7;
	for (int round = 0; round < 200; round++) {
		int64_t d0 = spawni_backoff_ms(0, 100, 5000, &seed);
		ck_assert_int_ge(d0, 100);
		ck_assert_int_le(d0, 120);
		int64_t d3 = spawni_backoff_ms(3, 100, 5000, &seed);
		ck_assert_int_ge(d3, 640);
		ck_assert_int_le(d3, 960);
		int64_t d40 = spawni_backoff_ms(40, 100, 5000, &seed);
		ck_assert_int_ge(d40, 4000);
		ck_assert_int_le(d40, 5000);
	}
}
END_TEST

/* ---- argument validation --------------------------------------------------- */

static void nop_handler(spawn_ctx *ctx, void *user)
{
	(void)ctx;
	(void)user;
}

static spawn_host *make_host(void)
{
	spawn_host_opts o = {.target = "unix:/nonexistent/spawn.sock", .system = "sys"};
	spawn_host *h = NULL;
	ck_assert_int_eq(spawn_host_create(&h, &o), SPAWN_OK);
	return h;
}

START_TEST(host_create_rejects_bad_options)
{
	spawn_host *h = (spawn_host *)0x1; /* must stay untouched on error */
	spawn_host_opts ok = {.target = "127.0.0.1:1", .system = "sys"};
	ck_assert_int_eq(spawn_host_create(NULL, &ok), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_host_create(&h, NULL), SPAWN_EINVAL);
	spawn_host_opts o = ok;
	o.target = "";
	ck_assert_int_eq(spawn_host_create(&h, &o), SPAWN_EINVAL);
	o = ok;
	o.system = NULL;
	ck_assert_int_eq(spawn_host_create(&h, &o), SPAWN_EINVAL);
	o = ok;
	o.workers = -1;
	ck_assert_int_eq(spawn_host_create(&h, &o), SPAWN_EINVAL);
	o = ok;
	o.max_message_bytes = -1;
	ck_assert_int_eq(spawn_host_create(&h, &o), SPAWN_EINVAL);
	o = ok;
	o.run_inline = true; /* no workers when inline */
	o.workers = 2;
	ck_assert_int_eq(spawn_host_create(&h, &o), SPAWN_EINVAL);
	o = ok;
	o.backoff_min_ms = 6000; /* above the default maximum */
	ck_assert_int_eq(spawn_host_create(&h, &o), SPAWN_EINVAL);
	ck_assert_ptr_eq(h, (spawn_host *)0x1);
	spawn_host_destroy(NULL);
}
END_TEST

START_TEST(add_actor_validates_definitions)
{
	spawn_host *h = make_host();
	spawn_action_def acts[] = {{.name = "A", .handler = nop_handler},
	                           {.name = "B", .handler = nop_handler}};
	spawn_actor_def d = {.name = "x", .actions = acts, .n_actions = 2};

	spawn_actor_def bad = d;
	ck_assert_int_eq(spawn_host_add_actor(h, NULL), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_host_add_actor(NULL, &d), SPAWN_EINVAL);
	bad.name = "";
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EINVAL);
	bad = d;
	bad.n_actions = 0;
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EINVAL);
	bad = d;
	bad.kind = (spawn_actor_kind)7;
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EINVAL);
	bad = d;
	bad.snapshot_interval_ms = -1;
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EINVAL);
	bad = d;
	bad.min_pool_size = 5;
	bad.max_pool_size = 2;
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EINVAL);

	spawn_action_def no_handler[] = {{.name = "A"}};
	bad = d;
	bad.actions = no_handler;
	bad.n_actions = 1;
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EINVAL);
	spawn_action_def unnamed[] = {{.name = NULL, .handler = nop_handler}};
	bad.actions = unnamed;
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EINVAL);
	spawn_action_def twice[] = {{.name = "A", .handler = nop_handler},
	                            {.name = "A", .handler = nop_handler}};
	bad.actions = twice;
	bad.n_actions = 2;
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EEXIST);

	/* Channels: a topic, and an action the actor has ("receive" when
	 * none is named). */
	bad = d;
	bad.n_channels = 1; /* channels NULL */
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EINVAL);
	spawn_channel_def no_topic[] = {{.topic = "", .action = "A"}};
	bad.channels = no_topic;
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EINVAL);
	spawn_channel_def no_receive[] = {{.topic = "news"}};
	bad.channels = no_receive;
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EINVAL);
	spawn_channel_def unknown[] = {{.topic = "news", .action = "C"}};
	bad.channels = unknown;
	ck_assert_int_eq(spawn_host_add_actor(h, &bad), SPAWN_EINVAL);
	spawn_channel_def fine[] = {{.topic = "news", .action = "B"}};
	spawn_actor_def sub = d;
	sub.name = "sub";
	sub.channels = fine;
	sub.n_channels = 1;
	ck_assert_int_eq(spawn_host_add_actor(h, &sub), SPAWN_OK);

	ck_assert_int_eq(spawn_host_add_actor(h, &d), SPAWN_OK);
	ck_assert_int_eq(spawn_host_add_actor(h, &d), SPAWN_EEXIST);
	spawn_host_destroy(h);
}
END_TEST

START_TEST(run_and_start_need_actors)
{
	spawn_host *h = make_host();
	ck_assert_int_eq(spawn_host_run(h), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_host_run(NULL), SPAWN_EINVAL);
	spawn_host_destroy(h);
}
END_TEST

START_TEST(stop_before_run_makes_run_return_at_once)
{
	spawn_host *h = make_host();
	spawn_action_def a = {.name = "A", .handler = nop_handler};
	spawn_actor_def d = {.name = "x", .actions = &a, .n_actions = 1};
	ck_assert_int_eq(spawn_host_add_actor(h, &d), SPAWN_OK);
	spawn_host_stop(h);
	ck_assert_int_eq(spawn_host_run(h), SPAWN_OK);
	ck_assert_int_eq(spawn_host_start(h), SPAWN_ECLOSED);
	ck_assert_int_eq(spawn_host_add_actor(h, &d), SPAWN_ESTATE);
	ck_assert_int_eq(spawn_host_wait_registered(h, 1000), SPAWN_ECLOSED);
	spawn_host_destroy(h);
}
END_TEST

START_TEST(wait_registered_times_out)
{
	spawn_host *h = make_host();
	ck_assert_int_eq(spawn_host_wait_registered(h, 0), SPAWN_ETIMEDOUT);
	ck_assert_int_eq(spawn_host_wait_registered(h, 20), SPAWN_ETIMEDOUT);
	ck_assert_int_eq(spawn_host_wait_registrations(h, 1, 0), SPAWN_ETIMEDOUT);
	ck_assert_int_eq(spawn_host_wait_registrations(h, 0, 0), SPAWN_OK);
	ck_assert_uint_eq(spawn_host_registrations(h), 0);
	spawn_host_destroy(h);
}
END_TEST

START_TEST(client_rejects_bad_requests)
{
	spawn_client *c = (spawn_client *)0x1;
	ck_assert_int_eq(spawn_client_create(&c, ""), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_client_create(&c, NULL), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_client_create(NULL, "127.0.0.1:1"), SPAWN_EINVAL);
	ck_assert_ptr_eq(c, (spawn_client *)0x1);
	/* Creating connects lazily: nothing listens here and that is fine. */
	ck_assert_int_eq(spawn_client_create(&c, "unix:/nonexistent/spawn.sock"), SPAWN_OK);

	spawn_reply r;
	spawn_request req = {.system = "s", .actor = "a"}; /* no action */
	ck_assert_int_eq(spawn_client_invoke(c, &req, &r, 1000), SPAWN_EINVAL);
	ck_assert_int_eq(r.status, SPAWN_EINVAL);
	ck_assert_ptr_nonnull(r.message);
	spawn_reply_fini(&r);
	ck_assert_ptr_null(r.message);

	req.action = "Add";
	req.payload.data = "xy";
	req.payload.len = 2; /* bytes without a type URL */
	ck_assert_int_eq(spawn_client_invoke(c, &req, &r, 1000), SPAWN_EINVAL);
	spawn_reply_fini(&r);
	ck_assert_int_eq(spawn_client_invoke(c, NULL, &r, 1000), SPAWN_EINVAL);
	spawn_reply_fini(&r);
	ck_assert_int_eq(spawn_client_invoke(c, &req, NULL, 1000), SPAWN_EINVAL);

	spawn_actor_id ids[] = {{.name = "i1", .parent = "t"}};
	ck_assert_int_eq(spawn_client_spawn(c, "s", ids, 0, &r, 1000), SPAWN_EINVAL);
	spawn_reply_fini(&r);
	spawn_actor_id no_parent[] = {{.name = "i1"}};
	ck_assert_int_eq(spawn_client_spawn(c, "s", no_parent, 1, &r, 1000), SPAWN_EINVAL);
	spawn_reply_fini(&r);

	spawn_request ok = {.system = "s", .actor = "a", .action = "b"};
	ck_assert_int_eq(spawn_client_invoke_async(c, &ok, 1000, NULL, NULL), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_client_invoke_async(c, &req, 1000, (spawn_reply_fn)1, NULL),
	                 SPAWN_EINVAL);
	spawn_client_destroy(c);
	spawn_client_destroy(NULL);
}
END_TEST

static int msg_done_runs;

static void never_called(void)
{
}

static void count_msg_done(spawn_fn fn, void *user, int status, const char *message,
                           ProtobufCMessage *reply)
{
	(void)fn;
	(void)user;
	(void)status;
	(void)message;
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	msg_done_runs++;
}

START_TEST(typed_client_calls_check_their_arguments)
{
	spawn_client *c;
	/* fail_fast: the call to nowhere below fails at once instead of
	 * waiting its deadline for a gateway. */
	spawn_client_opts o = {.target = "unix:/nonexistent/spawn.sock", .fail_fast = true};
	ck_assert_int_eq(spawn_client_create_opts(&c, &o), SPAWN_OK);
	spawn_request req = {.system = "s", .actor = "a", .action = "b"};
	Spawn__Actors__TimeoutStrategy in = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	ProtobufCMessage *const sentinel = &in.base;
	ProtobufCMessage *out = sentinel;
	char *msg = NULL;

	ck_assert_int_eq(spawn_client_invoke_msg(c, &req, NULL, COUNTER_D, &out, &msg, 5000),
	                 SPAWN_EINVAL);
	ck_assert_str_eq(msg, "invalid argument");
	free(msg);
	ck_assert_int_eq(spawn_client_invoke_msg(c, NULL, &in.base, COUNTER_D, &out, NULL, 5000),
	                 SPAWN_EINVAL);
	ck_assert_int_eq(spawn_client_invoke_msg(c, &req, &in.base, NULL, &out, NULL, 5000),
	                 SPAWN_EINVAL);
	/* The request's own checks still apply, with spawn_client_invoke's
	 * message. */
	spawn_request no_action = {.system = "s", .actor = "a"};
	ck_assert_int_eq(
	    spawn_client_invoke_msg(c, &no_action, &in.base, COUNTER_D, &out, &msg, 5000),
	    SPAWN_EINVAL);
	ck_assert_str_eq(msg,
	                 "system, actor and action are required; payload bytes need a type URL");
	free(msg);
	/* Nothing listens there: the call's own status, with a message. */
	ck_assert_int_eq(spawn_client_invoke_msg(c, &req, &in.base, COUNTER_D, &out, &msg, 5000),
	                 SPAWN_UNAVAILABLE);
	ck_assert_ptr_nonnull(msg);
	free(msg);
	ck_assert_ptr_eq(out, sentinel);

	/* Asynchronous: a missing part is refused and done never runs. */
	msg_done_runs = 0;
	spawn_fn fn = never_called;
	ck_assert_int_eq(spawn_client_invoke_msg_async(c, NULL, &in.base, COUNTER_D, 5000,
	                                               count_msg_done, fn, NULL),
	                 SPAWN_EINVAL);
	ck_assert_int_eq(
	    spawn_client_invoke_msg_async(c, &req, NULL, COUNTER_D, 5000, count_msg_done, fn, NULL),
	    SPAWN_EINVAL);
	ck_assert_int_eq(
	    spawn_client_invoke_msg_async(c, &req, &in.base, NULL, 5000, count_msg_done, fn, NULL),
	    SPAWN_EINVAL);
	ck_assert_int_eq(
	    spawn_client_invoke_msg_async(c, &req, &in.base, COUNTER_D, 5000, NULL, fn, NULL),
	    SPAWN_EINVAL);
	ck_assert_int_eq(spawn_client_invoke_msg_async(c, &req, &in.base, COUNTER_D, 5000,
	                                               count_msg_done, NULL, NULL),
	                 SPAWN_EINVAL);
	ck_assert_int_eq(spawn_client_invoke_msg_async(c, &no_action, &in.base, COUNTER_D, 5000,
	                                               count_msg_done, fn, NULL),
	                 SPAWN_EINVAL);
	/* destroy runs every pending callback before it returns. */
	spawn_client_destroy(c);
	ck_assert_int_eq(msg_done_runs, 0);
}
END_TEST

/* ---- registration ------------------------------------------------------------ */

START_TEST(registration_describes_every_actor)
{
	spawni_registry reg = {0};
	spawn_action_def acts[] = {{.name = "Tick", .handler = nop_handler, .timer_ms = 250},
	                           {.name = "Add", .handler = nop_handler}};
	spawn_actor_def counter = {.name = "counter",
	                           .stateful = true,
	                           .state_type = COUNTER_URL,
	                           .snapshot_interval_ms = 1500,
	                           .deactivate_timeout_ms = 60000,
	                           .actions = acts,
	                           .n_actions = 2};
	spawn_actor_def pool = {.name = "pool",
	                        .kind = SPAWN_KIND_POOLED,
	                        .min_pool_size = 1,
	                        .max_pool_size = 4,
	                        .actions = &acts[1],
	                        .n_actions = 1};
	ck_assert_int_eq(spawni_registry_add(&reg, &pool), SPAWN_OK);
	ck_assert_int_eq(spawni_registry_add(&reg, &counter), SPAWN_OK);

	spawn_arena a;
	spawn_arena_init(&a, 0);
	spawni_service svc = {"sys", "svc", "1.2.3"};
	Spawn__RegistrationRequest *req;
	ck_assert_int_eq(spawni_registration(&reg, &svc, &a, &req), SPAWN_OK);

	/* Through the wire and back, as the gateway sees it. */
	size_t n = protobuf_c_message_get_packed_size(&req->base);
	uint8_t *buf = malloc(n);
	protobuf_c_message_pack(&req->base, buf);
	Spawn__RegistrationRequest *got = spawn__registration_request__unpack(NULL, n, buf);
	free(buf);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got->service_info->service_name, "svc");
	ck_assert_str_eq(got->service_info->service_version, "1.2.3");
	ck_assert_str_eq(got->service_info->support_library_name, "libspawn");
	ck_assert_str_eq(got->service_info->support_library_version, SPAWN_VERSION_STRING);
	ck_assert_str_eq(got->actor_system->name, "sys");
	ck_assert_uint_eq(got->actor_system->registry->n_actors, 2);
	/* Sorted by name. */
	Spawn__Actors__Actor *c = got->actor_system->registry->actors[0]->value;
	ck_assert_str_eq(got->actor_system->registry->actors[0]->key, "counter");
	ck_assert_str_eq(c->id->name, "counter");
	ck_assert_str_eq(c->id->system, "sys");
	ck_assert_int_eq(c->settings->kind, SPAWN__ACTORS__KIND__NAMED);
	ck_assert(c->settings->stateful);
	ck_assert_str_eq(c->settings->state_type, COUNTER_URL);
	ck_assert_int_eq(c->settings->snapshot_strategy->timeout->timeout, 1500);
	ck_assert_int_eq(c->settings->deactivation_strategy->timeout->timeout, 60000);
	ck_assert_uint_eq(c->n_actions, 1);
	ck_assert_str_eq(c->actions[0]->name, "Add");
	ck_assert_uint_eq(c->n_timer_actions, 1);
	ck_assert_str_eq(c->timer_actions[0]->action->name, "Tick");
	ck_assert_int_eq(c->timer_actions[0]->seconds, 250);
	Spawn__Actors__Actor *p = got->actor_system->registry->actors[1]->value;
	ck_assert_str_eq(p->id->name, "pool");
	ck_assert_int_eq(p->settings->kind, SPAWN__ACTORS__KIND__POOLED);
	ck_assert_int_eq(p->settings->max_pool_size, 4);
	ck_assert_ptr_null(p->settings->snapshot_strategy);
	spawn__registration_request__free_unpacked(got, NULL);
	spawn_arena_fini(&a);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(registration_carries_channel_subscriptions)
{
	spawni_registry reg = {0};
	spawn_action_def acts[] = {{.name = "receive", .handler = nop_handler},
	                           {.name = "OnAlert", .handler = nop_handler}};
	spawn_channel_def chans[] = {{.topic = "news"},
	                             {.topic = "alerts", .action = "OnAlert"},
	                             {.topic = "misc", .action = ""}};
	spawn_actor_def sub = {
	    .name = "sub", .actions = acts, .n_actions = 2, .channels = chans, .n_channels = 3};
	spawn_actor_def plain = {.name = "plain", .actions = acts, .n_actions = 1};
	ck_assert_int_eq(spawni_registry_add(&reg, &sub), SPAWN_OK);
	ck_assert_int_eq(spawni_registry_add(&reg, &plain), SPAWN_OK);

	spawn_arena a;
	spawn_arena_init(&a, 0);
	spawni_service svc = {"sys", "svc", "1"};
	Spawn__RegistrationRequest *req;
	ck_assert_int_eq(spawni_registration(&reg, &svc, &a, &req), SPAWN_OK);
	size_t n = protobuf_c_message_get_packed_size(&req->base);
	uint8_t *buf = malloc(n);
	protobuf_c_message_pack(&req->base, buf);
	Spawn__RegistrationRequest *got = spawn__registration_request__unpack(NULL, n, buf);
	free(buf);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(got->actor_system->registry->n_actors, 2);
	Spawn__Actors__Actor *p = got->actor_system->registry->actors[0]->value;
	ck_assert_str_eq(p->id->name, "plain");
	ck_assert_ptr_null(p->metadata); /* no channels: no Metadata at all */
	Spawn__Actors__Actor *s = got->actor_system->registry->actors[1]->value;
	ck_assert_str_eq(s->id->name, "sub");
	ck_assert_ptr_nonnull(s->metadata);
	ck_assert_uint_eq(s->metadata->n_channel_group, 3);
	/* In definition order; the default action is spelled out. */
	ck_assert_str_eq(s->metadata->channel_group[0]->topic, "news");
	ck_assert_str_eq(s->metadata->channel_group[0]->action, SPAWN_DEFAULT_CHANNEL_ACTION);
	ck_assert_str_eq(s->metadata->channel_group[1]->topic, "alerts");
	ck_assert_str_eq(s->metadata->channel_group[1]->action, "OnAlert");
	ck_assert_str_eq(s->metadata->channel_group[2]->action, "receive");
	spawn__registration_request__free_unpacked(got, NULL);
	spawn_arena_fini(&a);
	spawni_registry_fini(&reg);
}
END_TEST

/* ---- dispatch ------------------------------------------------------------------ */

/* A task with every part of an invocation filled in. */
typedef struct fixture {
	Spawn__Gateway__V1__InvocationTask task;
	Spawn__ActorInvocation inv;
	Spawn__Actors__ActorId self, caller;
	Spawn__Context ctx;
	Google__Protobuf__Any state, payload;
	Spawn__Context__MetadataEntry md, *mdp[1];
	Spawn__Context__TagsEntry tag, *tagp[1];
	uint8_t state_bytes[16], payload_bytes[16];
	spawn_arena arena;
	Spawn__Gateway__V1__InvocationResult res;
} fixture;

static void fixture_init(fixture *f, const char *actor, const char *action, int64_t total,
                         int64_t add)
{
	memset(f, 0, sizeof *f);
	spawn__gateway__v1__invocation_task__init(&f->task);
	spawn__actor_invocation__init(&f->inv);
	spawn__actors__actor_id__init(&f->self);
	spawn__actors__actor_id__init(&f->caller);
	spawn__context__init(&f->ctx);
	google__protobuf__any__init(&f->state);
	google__protobuf__any__init(&f->payload);
	spawn__context__metadata_entry__init(&f->md);
	spawn__context__tags_entry__init(&f->tag);

	f->self.name = (char *)actor;
	f->self.system = "sys";
	f->caller.name = "other";
	f->caller.system = "sys";
	Spawn__Actors__TimeoutStrategy s = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	s.timeout = total;
	f->state.type_url = COUNTER_URL;
	f->state.value.len = protobuf_c_message_pack(&s.base, f->state_bytes);
	f->state.value.data = f->state_bytes;
	s.timeout = add;
	f->payload.type_url = COUNTER_URL;
	f->payload.value.len = protobuf_c_message_pack(&s.base, f->payload_bytes);
	f->payload.value.data = f->payload_bytes;
	f->md.key = "trace";
	f->md.value = "abc";
	f->mdp[0] = &f->md;
	f->tag.key = "color";
	f->tag.value = "blue";
	f->tagp[0] = &f->tag;
	f->ctx.state = &f->state;
	f->ctx.n_metadata = 1;
	f->ctx.metadata = f->mdp;
	f->ctx.n_tags = 1;
	f->ctx.tags = f->tagp;
	f->ctx.self = &f->self;
	f->inv.actor = &f->self;
	f->inv.action_name = (char *)action;
	f->inv.current_context = &f->ctx;
	f->inv.caller = &f->caller;
	f->inv.payload_case = SPAWN__ACTOR_INVOCATION__PAYLOAD_VALUE;
	f->inv.value = &f->payload;
	f->task.request_id = 77;
	f->task.invocation = &f->inv;
	spawn_arena_init(&f->arena, 0);
}

static void fixture_fini(fixture *f)
{
	spawn_arena_fini(&f->arena);
}

/* run packs and re-parses the result, proving it serializes; the caller
 * frees the returned message with free_unpacked. */
static Spawn__Gateway__V1__InvocationResult *run(const spawni_registry *reg, fixture *f,
                                                 int64_t now_ms)
{
	spawni_execute(reg, &f->task, now_ms, &f->arena, &f->res);
	size_t n = protobuf_c_message_get_packed_size(&f->res.base);
	uint8_t *buf = malloc(n ? n : 1);
	protobuf_c_message_pack(&f->res.base, buf);
	Spawn__Gateway__V1__InvocationResult *r =
	    spawn__gateway__v1__invocation_result__unpack(NULL, n, buf);
	free(buf);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->request_id, 77);
	return r;
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

/* What handlers saw, for the assertions. */
static struct {
	int calls;
	char actor[32], system[32], action[32], caller[32], caller_system[32], parent[32];
	char trace[32], color[32];
	bool no_parent, missing_md_null;
	int64_t deadline;
	size_t state_len;
} seen;

static void copy(char *dst, const char *src)
{
	snprintf(dst, 32, "%s", src ? src : "(null)");
}

static void h_observe(spawn_ctx *ctx, void *user)
{
	(void)user;
	seen.calls++;
	copy(seen.actor, spawn_ctx_actor(ctx));
	copy(seen.system, spawn_ctx_system(ctx));
	copy(seen.action, spawn_ctx_action(ctx));
	copy(seen.caller, spawn_ctx_caller_actor(ctx));
	copy(seen.caller_system, spawn_ctx_caller_system(ctx));
	copy(seen.parent, spawn_ctx_parent(ctx));
	copy(seen.trace, spawn_ctx_metadata(ctx, "trace"));
	copy(seen.color, spawn_ctx_tag(ctx, "color"));
	seen.missing_md_null =
	    spawn_ctx_metadata(ctx, "nope") == NULL && spawn_ctx_tag(ctx, "nope") == NULL;
	seen.deadline = spawn_ctx_deadline_ms(ctx);
	seen.state_len = spawn_ctx_state(ctx)->len;
}

/* Adds the payload to the state with the message helpers. */
static void h_add(spawn_ctx *ctx, void *user)
{
	bool checkpoint = user != NULL;
	seen.calls++;
	Spawn__Actors__TimeoutStrategy *st, *add;
	ck_assert_int_eq(spawn_ctx_state_msg(ctx, COUNTER_D, (ProtobufCMessage **)&st), SPAWN_OK);
	ck_assert_int_eq(spawn_ctx_payload_msg(ctx, COUNTER_D, (ProtobufCMessage **)&add),
	                 SPAWN_OK);
	st->timeout += add->timeout;
	ck_assert_int_eq(spawn_ctx_set_state_msg(ctx, &st->base), SPAWN_OK);
	ck_assert_int_eq(spawn_ctx_reply_msg(ctx, &st->base), SPAWN_OK);
	spawn_ctx_checkpoint(ctx, checkpoint);
}

static void h_raw(spawn_ctx *ctx, void *user)
{
	(void)user;
	seen.calls++;
	ck_assert_int_eq(spawn_ctx_set_state(ctx, NULL, "x", 1), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_set_state(ctx, "t/x.Y", NULL, 3), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_set_state(ctx, "t/x.First", "aa", 2), SPAWN_OK);
	ck_assert_int_eq(spawn_ctx_set_state(ctx, "t/x.S", "abc", 3), SPAWN_OK); /* last wins */
	ck_assert_int_eq(spawn_ctx_reply(ctx, "t/x.R", "xy", 2), SPAWN_OK);
}

static void h_reply_none(spawn_ctx *ctx, void *user)
{
	(void)user;
	ck_assert_int_eq(spawn_ctx_reply(ctx, "t/x.R", "xy", 2), SPAWN_OK);
	ck_assert_int_eq(spawn_ctx_reply(ctx, NULL, NULL, 0), SPAWN_OK); /* back to Noop */
}

static void h_fail(spawn_ctx *ctx, void *user)
{
	seen.calls++;
	spawn_ctx_set_state(ctx, "t/x.S", "abc", 3);
	spawn_ctx_reply(ctx, "t/x.R", "xy", 2);
	spawn_ctx_fail(ctx, (int)(intptr_t)user, (int)(intptr_t)user == 3 ? "bad input" : NULL);
}

static void h_types(spawn_ctx *ctx, void *user)
{
	(void)user;
	seen.calls++;
	ProtobufCMessage *m;
	ck_assert_int_eq(spawn_ctx_state_msg(ctx, OTHER_D, &m), SPAWN_ETYPE);
	ck_assert_int_eq(spawn_ctx_payload_msg(ctx, OTHER_D, &m), SPAWN_ETYPE);
	ck_assert_int_eq(spawn_ctx_state_msg(ctx, NULL, &m), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_state_msg(NULL, COUNTER_D, &m), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_set_state_msg(ctx, NULL), SPAWN_EINVAL);
}

static void reg_add(spawni_registry *reg, const char *name, spawn_actor_kind kind,
                    const char *action, spawn_handler fn, void *user)
{
	spawn_action_def a = {.name = action, .handler = fn, .user = user};
	spawn_actor_def d = {.name = name, .kind = kind, .actions = &a, .n_actions = 1};
	ck_assert_int_eq(spawni_registry_add(reg, &d), SPAWN_OK);
}

START_TEST(handler_that_sets_nothing_keeps_the_state)
{
	spawni_registry reg = {0};
	reg_add(&reg, "c", 0, "Look", h_observe, NULL);
	fixture f;
	fixture_init(&f, "c", "Look", 41, 1);
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	Spawn__ActorInvocationResponse *resp = r->response;
	ck_assert_str_eq(resp->actor_name, "c");
	ck_assert_str_eq(resp->actor_system, "sys");
	ck_assert_int_eq(counter_of(resp->updated_context->state), 41);
	ck_assert_int_eq(resp->payload_case, SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_NOOP);
	ck_assert(!resp->checkpoint);
	ck_assert_str_eq(resp->updated_context->self->name, "c");
	ck_assert_str_eq(resp->updated_context->caller->name, "other");
	ck_assert_uint_eq(resp->updated_context->n_tags, 1);
	ck_assert_str_eq(resp->updated_context->tags[0]->value, "blue");
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(ctx_getters_expose_the_invocation)
{
	memset(&seen, 0, sizeof seen);
	spawni_registry reg = {0};
	reg_add(&reg, "c", 0, "Look", h_observe, NULL);
	fixture f;
	fixture_init(&f, "c", "Look", 41, 1);
	f.task.deadline_unix_ms = 5000;
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 1000);
	ck_assert_int_eq(seen.calls, 1);
	ck_assert_str_eq(seen.actor, "c");
	ck_assert_str_eq(seen.system, "sys");
	ck_assert_str_eq(seen.action, "Look");
	ck_assert_str_eq(seen.caller, "other");
	ck_assert_str_eq(seen.caller_system, "sys");
	ck_assert_str_eq(seen.parent, "(null)");
	ck_assert_str_eq(seen.trace, "abc");
	ck_assert_str_eq(seen.color, "blue");
	ck_assert(seen.missing_md_null);
	ck_assert_int_eq(seen.deadline, 5000);
	ck_assert_uint_eq(seen.state_len, f.state.value.len);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	/* A client call has no caller, and a first call no state. */
	fixture_init(&f, "c", "Look", 0, 0);
	f.inv.caller = NULL;
	f.ctx.state = NULL;
	r = run(&reg, &f, 0);
	ck_assert_str_eq(seen.caller, "(null)");
	ck_assert_uint_eq(seen.state_len, 0);
	ck_assert_ptr_null(r->response->updated_context->state);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(handler_outcome_becomes_the_response)
{
	spawni_registry reg = {0};
	reg_add(&reg, "c", 0, "Add", h_add, (void *)1);
	reg_add(&reg, "raw", 0, "Set", h_raw, NULL);
	reg_add(&reg, "none", 0, "Reply", h_reply_none, NULL);
	fixture f;
	fixture_init(&f, "c", "Add", 40, 2);
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	ck_assert_int_eq(counter_of(r->response->updated_context->state), 42);
	ck_assert_int_eq(r->response->payload_case,
	                 SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_VALUE);
	ck_assert_int_eq(counter_of(r->response->value), 42);
	ck_assert(r->response->checkpoint);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	fixture_init(&f, "raw", "Set", 40, 2);
	r = run(&reg, &f, 0);
	Google__Protobuf__Any *st = r->response->updated_context->state;
	ck_assert_str_eq(st->type_url, "t/x.S");
	ck_assert_uint_eq(st->value.len, 3);
	ck_assert_mem_eq(st->value.data, "abc", 3);
	ck_assert_str_eq(r->response->value->type_url, "t/x.R");
	ck_assert_mem_eq(r->response->value->value.data, "xy", 2);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	fixture_init(&f, "none", "Reply", 40, 2);
	r = run(&reg, &f, 0);
	ck_assert_int_eq(r->response->payload_case, SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_NOOP);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(failing_handler_discards_state_and_reply)
{
	spawni_registry reg = {0};
	reg_add(&reg, "c", 0, "Fail", h_fail, (void *)(intptr_t)SPAWN_INVALID_ARGUMENT);
	fixture f;
	fixture_init(&f, "c", "Fail", 40, 2);
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR);
	ck_assert_int_eq(r->error->code, SPAWN_INVALID_ARGUMENT);
	ck_assert_str_eq(r->error->message, "bad input");
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(fail_codes_out_of_range_become_unknown)
{
	int codes[] = {0, 17, -4, 99};
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		spawni_registry reg = {0};
		reg_add(&reg, "c", 0, "Fail", h_fail, (void *)(intptr_t)codes[i]);
		fixture f;
		fixture_init(&f, "c", "Fail", 40, 2);
		Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
		ck_assert_int_eq(r->error->code, SPAWN_UNKNOWN);
		ck_assert_str_eq(r->error->message, "unknown error"); /* NULL message */
		spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
		fixture_fini(&f);
		spawni_registry_fini(&reg);
	}
}
END_TEST

START_TEST(message_helpers_default_missing_values_and_check_types)
{
	memset(&seen, 0, sizeof seen);
	spawni_registry reg = {0};
	reg_add(&reg, "c", 0, "Add", h_add, NULL);
	reg_add(&reg, "t", 0, "Types", h_types, NULL);
	/* First call: no state and no payload -> defaults, total 0 + 0. */
	fixture f;
	fixture_init(&f, "c", "Add", 0, 0);
	f.ctx.state = NULL;
	f.inv.payload_case = SPAWN__ACTOR_INVOCATION__PAYLOAD_NOOP;
	Spawn__Noop noop = SPAWN__NOOP__INIT;
	f.inv.noop = &noop;
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(counter_of(r->response->updated_context->state), 0);
	ck_assert(!r->response->checkpoint);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	/* An empty Any is "no state" too. */
	fixture_init(&f, "c", "Add", 0, 5);
	f.state.type_url = "";
	f.state.value.len = 0;
	r = run(&reg, &f, 0);
	ck_assert_int_eq(counter_of(r->response->updated_context->state), 5);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	fixture_init(&f, "t", "Types", 1, 1);
	r = run(&reg, &f, 0);
	ck_assert_int_eq(seen.calls, 3);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(unnamed_instances_run_their_template)
{
	memset(&seen, 0, sizeof seen);
	spawni_registry reg = {0};
	reg_add(&reg, "tmpl", SPAWN_KIND_UNNAMED, "Look", h_observe, NULL);
	fixture f;
	fixture_init(&f, "instance-1", "Look", 1, 1);
	f.self.parent = "tmpl";
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	ck_assert_str_eq(seen.actor, "instance-1");
	ck_assert_str_eq(seen.parent, "tmpl");
	ck_assert_str_eq(r->response->actor_name, "instance-1");
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(unknown_actor_or_action_is_not_found)
{
	spawni_registry reg = {0};
	reg_add(&reg, "c", 0, "Look", h_observe, NULL);
	fixture f;
	fixture_init(&f, "nobody", "Look", 1, 1);
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR);
	ck_assert_int_eq(r->error->code, SPAWN_NOT_FOUND);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	fixture_init(&f, "c", "Nope", 1, 1);
	r = run(&reg, &f, 0);
	ck_assert_int_eq(r->error->code, SPAWN_NOT_FOUND);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(expired_deadline_skips_the_handler)
{
	memset(&seen, 0, sizeof seen);
	spawni_registry reg = {0};
	reg_add(&reg, "c", 0, "Look", h_observe, NULL);
	fixture f;
	fixture_init(&f, "c", "Look", 1, 1);
	f.task.deadline_unix_ms = 1000;
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 1000);
	ck_assert_int_eq(r->error->code, SPAWN_DEADLINE_EXCEEDED);
	ck_assert_int_eq(seen.calls, 0);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(task_without_invocation_is_invalid)
{
	spawni_registry reg = {0};
	reg_add(&reg, "c", 0, "Look", h_observe, NULL);
	fixture f;
	fixture_init(&f, "c", "Look", 1, 1);
	f.task.invocation = NULL;
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(r->error->code, SPAWN_INVALID_ARGUMENT);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	fixture_init(&f, "", "Look", 1, 1);
	r = run(&reg, &f, 0);
	ck_assert_int_eq(r->error->code, SPAWN_INVALID_ARGUMENT);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

static void oom_h_add(spawn_ctx *ctx, void *user)
{
	/* Like h_add but tolerant: under a memory limit the helpers may fail. */
	(void)user;
	Spawn__Actors__TimeoutStrategy *st;
	if (spawn_ctx_state_msg(ctx, COUNTER_D, (ProtobufCMessage **)&st) != SPAWN_OK) {
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, NULL);
		return;
	}
	st->timeout++;
	if (spawn_ctx_set_state_msg(ctx, &st->base) != SPAWN_OK)
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, NULL);
}

/* oom_sweep runs handler fn (user) as c.Add under arena limits from 16
 * upward until a run succeeds. Each run either succeeds or reports
 * RESOURCE_EXHAUSTED, never crashes or leaves a half-built result; both
 * outcomes must be seen. */
static void oom_sweep(spawn_handler fn, void *user)
{
	spawni_registry reg = {0};
	reg_add(&reg, "c", 0, "Add", fn, user);
	bool saw_oom = false, saw_ok = false;
	for (size_t limit = 16; limit < 4096 && !saw_ok; limit += 16) {
		fixture f;
		fixture_init(&f, "c", "Add", 1, 1);
		spawn_arena_fini(&f.arena);
		spawn_arena_init(&f.arena, limit);
		spawni_execute(&reg, &f.task, 0, &f.arena, &f.res);
		if (f.res.outcome_case == SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR) {
			ck_assert_int_eq(f.res.error->code, SPAWN_RESOURCE_EXHAUSTED);
			saw_oom = true;
		} else {
			saw_ok = true;
		}
		size_t n = protobuf_c_message_get_packed_size(&f.res.base);
		ck_assert_uint_gt(n, 0);
		fixture_fini(&f);
	}
	ck_assert(saw_oom);
	ck_assert(saw_ok);
	spawni_registry_fini(&reg);
}

static bool state_msg_saw_enomem;

/* Only unpacks the state: a full arena must read as ENOMEM, never as
 * bytes that do not parse. */
static void h_state_msg_rc(spawn_ctx *ctx, void *user)
{
	(void)user;
	ProtobufCMessage *m;
	int rc = spawn_ctx_state_msg(ctx, COUNTER_D, &m);
	if (rc == SPAWN_ENOMEM)
		state_msg_saw_enomem = true;
	else
		ck_assert_int_eq(rc, SPAWN_OK);
}

START_TEST(unpacking_into_a_full_arena_is_out_of_memory_not_malformed)
{
	state_msg_saw_enomem = false;
	oom_sweep(h_state_msg_rc, NULL);
	ck_assert(state_msg_saw_enomem);
}
END_TEST

START_TEST(out_of_memory_in_the_arena_becomes_resource_exhausted)
{
	oom_sweep(oom_h_add, NULL);
}
END_TEST

/* ---- typed handler steps ---------------------------------------------------- */

/* The types a handler expects its state and input to have. */
typedef struct expect_types {
	const ProtobufCMessageDescriptor *state, *payload;
} expect_types;

static const expect_types counters = {COUNTER_D, COUNTER_D};
static const expect_types other_state = {OTHER_D, COUNTER_D};
static const expect_types other_payload = {COUNTER_D, OTHER_D};

static int expect_reached; /* handlers that got past both expectations */

/* Replies state + input, read with the expecting helpers. */
static void h_expect(spawn_ctx *ctx, void *user)
{
	const expect_types *t = user;
	Spawn__Actors__TimeoutStrategy *st, *in;
	if (spawn_ctx_expect_state(ctx, t->state, (ProtobufCMessage **)&st) != SPAWN_OK ||
	    spawn_ctx_expect_payload(ctx, t->payload, (ProtobufCMessage **)&in) != SPAWN_OK)
		return;
	expect_reached++;
	st->timeout += in->timeout;
	spawn_ctx_fail_on_error(ctx, spawn_ctx_reply_msg(ctx, &st->base));
}

/* NULL arguments: refused, and the invocation goes on. */
static void h_expect_null(spawn_ctx *ctx, void *user)
{
	(void)user;
	ProtobufCMessage *m;
	ck_assert_int_eq(spawn_ctx_expect_state(NULL, COUNTER_D, &m), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_expect_state(ctx, NULL, &m), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_expect_state(ctx, COUNTER_D, NULL), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_expect_payload(NULL, COUNTER_D, &m), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_expect_payload(ctx, NULL, &m), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_expect_payload(ctx, COUNTER_D, NULL), SPAWN_EINVAL);
	expect_reached++;
}

/* run_expect runs h_expect on actor "c", action "Add", state total and
 * input add (state NULL and payload Noop when none). */
static Spawn__Gateway__V1__InvocationResult *run_expect(const expect_types *t, int64_t total,
                                                        int64_t add, bool none, fixture *f)
{
	spawni_registry reg = {0};
	reg_add(&reg, "c", 0, "Add", h_expect, (void *)t);
	fixture_init(f, "c", "Add", total, add);
	static Spawn__Noop noop = SPAWN__NOOP__INIT;
	if (none) {
		f->ctx.state = NULL;
		f->inv.payload_case = SPAWN__ACTOR_INVOCATION__PAYLOAD_NOOP;
		f->inv.noop = &noop;
	}
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, f, 0);
	spawni_registry_fini(&reg);
	return r;
}

/* check_failed asserts that r failed with code and message, then frees r. */
static void check_failed(Spawn__Gateway__V1__InvocationResult *r, int code, const char *message)
{
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR);
	ck_assert_int_eq(r->error->code, code);
	ck_assert_str_eq(r->error->message, message);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
}

START_TEST(expect_helpers_hand_out_the_typed_state_and_input)
{
	expect_reached = 0;
	fixture f;
	Spawn__Gateway__V1__InvocationResult *r = run_expect(&counters, 40, 2, false, &f);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	ck_assert_int_eq(counter_of(r->response->value), 42);
	ck_assert_int_eq(expect_reached, 1);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	/* A new actor called without input: default values for both. */
	r = run_expect(&counters, 40, 2, true, &f);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	ck_assert_int_eq(counter_of(r->response->value), 0);
	ck_assert_int_eq(expect_reached, 2);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	spawni_registry reg = {0};
	reg_add(&reg, "n", 0, "Null", h_expect_null, NULL);
	fixture_init(&f, "n", "Null", 1, 1);
	r = run(&reg, &f, 0);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	ck_assert_int_eq(expect_reached, 3);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(expect_helpers_fail_the_invocation_on_a_wrong_type)
{
	expect_reached = 0;
	fixture f;
	Spawn__Gateway__V1__InvocationResult *r = run_expect(&other_state, 40, 2, false, &f);
	check_failed(r, SPAWN_FAILED_PRECONDITION,
	             "the state of actor c is not a spawn.actors.ActorId");
	fixture_fini(&f);

	r = run_expect(&other_payload, 40, 2, false, &f);
	check_failed(r, SPAWN_INVALID_ARGUMENT, "action Add takes a spawn.actors.ActorId");
	fixture_fini(&f);

	/* Input bytes that do not parse as the expected type. */
	spawni_registry reg = {0};
	reg_add(&reg, "c", 0, "Add", h_expect, (void *)&counters);
	fixture_init(&f, "c", "Add", 40, 2);
	static const uint8_t garbage[] = {0x08, 0xff};
	f.payload.value.data = (uint8_t *)garbage;
	f.payload.value.len = sizeof garbage;
	r = run(&reg, &f, 0);
	check_failed(r, SPAWN_INVALID_ARGUMENT, "action Add takes a spawn.actors.TimeoutStrategy");
	fixture_fini(&f);
	spawni_registry_fini(&reg);
	ck_assert_int_eq(expect_reached, 0);
}
END_TEST

START_TEST(expect_helpers_out_of_memory_becomes_resource_exhausted)
{
	oom_sweep(h_expect, (void *)&counters);
}
END_TEST

static int fail_on_error_returned;

/* user: the status handed to spawn_ctx_fail_on_error. */
static void h_fail_on_error(spawn_ctx *ctx, void *user)
{
	fail_on_error_returned = spawn_ctx_fail_on_error(ctx, (int)(intptr_t)user);
}

START_TEST(fail_on_error_fails_with_a_code_for_the_status)
{
	static const struct {
		int status, code; /* code 0: the invocation does not fail */
		const char *message;
	} cases[] = {
	    {SPAWN_OK, 0, NULL},
	    {SPAWN_ENOMEM, SPAWN_RESOURCE_EXHAUSTED, "out of memory"},
	    {SPAWN_EINVAL, SPAWN_INTERNAL, "invalid argument"},
	    {SPAWN_ETYPE, SPAWN_INTERNAL, "payload has another type"},
	    {SPAWN_NOT_FOUND, SPAWN_NOT_FOUND, "not found"},
	    {SPAWN_UNAUTHENTICATED, SPAWN_UNAUTHENTICATED, "unauthenticated"},
	    {17, SPAWN_INTERNAL, "unknown status"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		spawni_registry reg = {0};
		reg_add(&reg, "c", 0, "Go", h_fail_on_error, (void *)(intptr_t)cases[i].status);
		fixture f;
		fixture_init(&f, "c", "Go", 1, 1);
		fail_on_error_returned = -12345;
		Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
		ck_assert_int_eq(fail_on_error_returned, cases[i].status);
		if (cases[i].code == 0) {
			ck_assert_int_eq(r->outcome_case,
			                 SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
			spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
		} else {
			check_failed(r, cases[i].code, cases[i].message);
		}
		fixture_fini(&f);
		spawni_registry_fini(&reg);
	}
	ck_assert_int_eq(spawn_ctx_fail_on_error(NULL, SPAWN_ENOMEM), SPAWN_ENOMEM);
	ck_assert_int_eq(spawn_ctx_fail_on_error(NULL, SPAWN_OK), SPAWN_OK);
}
END_TEST

/* ---- workflows and tags ------------------------------------------------------ */

static const char *md_value(const Spawn__InvocationRequest *rq, const char *key)
{
	for (size_t i = 0; i < rq->n_metadata; i++)
		if (!strcmp(rq->metadata[i]->key, key))
			return rq->metadata[i]->value;
	return NULL;
}

/* Pipes to b.Next with a reply; the caller of the chain gets b's answer. */
static void h_pipe(spawn_ctx *ctx, void *user)
{
	(void)user;
	Spawn__Actors__TimeoutStrategy t = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	t.timeout = 7;
	ck_assert_int_eq(spawn_ctx_reply_msg(ctx, &t.base), SPAWN_OK);
	char actor[8] = "b", action[8] = "Next";
	ck_assert_int_eq(spawn_ctx_pipe(ctx, actor, action), SPAWN_OK);
	/* Copied: the handler's buffers may change afterwards. */
	strcpy(actor, "zz");
	strcpy(action, "zz");
	ck_assert_int_eq(spawn_ctx_pipe(ctx, "", "Next"), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_pipe(ctx, "b", NULL), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_pipe(NULL, "b", "Next"), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_forward(ctx, NULL, "x"), SPAWN_EINVAL);
}

/* Pipe first, then forward: the last routing wins. */
static void h_forward(spawn_ctx *ctx, void *user)
{
	(void)user;
	ck_assert_int_eq(spawn_ctx_pipe(ctx, "b", "Next"), SPAWN_OK);
	ck_assert_int_eq(spawn_ctx_forward(ctx, "c", "Other"), SPAWN_OK);
}

static void h_effects(spawn_ctx *ctx, void *user)
{
	(void)user;
	static const uint8_t bytes[] = {1, 2, 3};
	spawn_metadata md[] = {{"k", "v"}, {"empty", NULL}};
	char actor[8] = "b";
	spawn_request own = {.actor = actor,
	                     .action = "Note",
	                     .payload = {.type_url = "t/x.P", .data = bytes, .len = 3},
	                     .metadata = md,
	                     .n_metadata = 2};
	ck_assert_int_eq(spawn_ctx_side_effect(ctx, &own), SPAWN_OK);
	strcpy(actor, "zz"); /* copied */
	spawn_request other = {.system = "other-sys",
	                       .actor = "inst-1",
	                       .action = "Hello",
	                       .parent = "tmpl",
	                       .pooled = true,
	                       .async = false};
	ck_assert_int_eq(spawn_ctx_side_effect(ctx, &other), SPAWN_OK);
	/* Refused: nothing added. */
	spawn_request bad = own;
	bad.action = "";
	ck_assert_int_eq(spawn_ctx_side_effect(ctx, &bad), SPAWN_EINVAL);
	bad = own;
	bad.scheduled_to_ms = -1;
	ck_assert_int_eq(spawn_ctx_side_effect(ctx, &bad), SPAWN_EINVAL);
	bad = own;
	bad.payload.type_url = NULL;
	ck_assert_int_eq(spawn_ctx_side_effect(ctx, &bad), SPAWN_EINVAL);
	bad = own;
	bad.metadata = NULL;
	ck_assert_int_eq(spawn_ctx_side_effect(ctx, &bad), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_side_effect(ctx, NULL), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_side_effect(NULL, &own), SPAWN_EINVAL);
	/* More than the first array holds: the effects keep their order. */
	for (int i = 0; i < 5; i++) {
		char name[8];
		snprintf(name, sizeof name, "n%d", i);
		spawn_request r = {.actor = name, .action = "Note"};
		ck_assert_int_eq(spawn_ctx_side_effect(ctx, &r), SPAWN_OK);
	}
}

static void h_broadcast(spawn_ctx *ctx, void *user)
{
	(void)user;
	ck_assert_int_eq(spawn_ctx_broadcast(ctx, "first", "t/x.A", "a", 1), SPAWN_OK);
	ck_assert_int_eq(spawn_ctx_broadcast(ctx, "", "t/x.A", "a", 1), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_broadcast(ctx, "news", "t/x.A", NULL, 2), SPAWN_EINVAL);
	Spawn__Actors__TimeoutStrategy t = SPAWN__ACTORS__TIMEOUT_STRATEGY__INIT;
	t.timeout = 99;
	char ch[8] = "news";
	ck_assert_int_eq(spawn_ctx_broadcast_msg(ctx, ch, &t.base), SPAWN_OK); /* last wins */
	strcpy(ch, "zz");
}

static void h_broadcast_noop(spawn_ctx *ctx, void *user)
{
	(void)user;
	ck_assert_int_eq(spawn_ctx_broadcast_msg(ctx, "ping", NULL), SPAWN_OK);
}

static void h_workflow_then_fail(spawn_ctx *ctx, void *user)
{
	(void)user;
	spawn_request r = {.actor = "b", .action = "Note"};
	ck_assert_int_eq(spawn_ctx_side_effect(ctx, &r), SPAWN_OK);
	ck_assert_int_eq(spawn_ctx_pipe(ctx, "b", "Next"), SPAWN_OK);
	ck_assert_int_eq(spawn_ctx_broadcast(ctx, "news", NULL, NULL, 0), SPAWN_OK);
	ck_assert_int_eq(spawn_ctx_set_tag(ctx, "color", "red"), SPAWN_OK);
	spawn_ctx_fail(ctx, SPAWN_ABORTED, "changed my mind");
}

START_TEST(pipe_and_forward_become_the_routing)
{
	spawni_registry reg = {0};
	reg_add(&reg, "a", 0, "Pipe", h_pipe, NULL);
	reg_add(&reg, "f", 0, "Fwd", h_forward, NULL);
	reg_add(&reg, "n", 0, "Look", h_observe, NULL);
	fixture f;
	fixture_init(&f, "a", "Pipe", 1, 1);
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	Spawn__Workflow *wf = r->response->workflow;
	ck_assert_ptr_nonnull(wf);
	ck_assert_int_eq(wf->routing_case, SPAWN__WORKFLOW__ROUTING_PIPE);
	ck_assert_str_eq(wf->pipe->actor, "b");
	ck_assert_str_eq(wf->pipe->action_name, "Next");
	ck_assert_uint_eq(wf->n_effects, 0);
	ck_assert_ptr_null(wf->broadcast);
	/* The reply still goes back: the gateway feeds it to the pipe. */
	ck_assert_int_eq(counter_of(r->response->value), 7);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	fixture_init(&f, "f", "Fwd", 1, 1);
	r = run(&reg, &f, 0);
	wf = r->response->workflow;
	ck_assert_int_eq(wf->routing_case, SPAWN__WORKFLOW__ROUTING_FORWARD);
	ck_assert_str_eq(wf->forward->actor, "c");
	ck_assert_str_eq(wf->forward->action_name, "Other");
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	/* A handler that asks for nothing sends no workflow. */
	fixture_init(&f, "n", "Look", 1, 1);
	r = run(&reg, &f, 0);
	ck_assert_ptr_null(r->response->workflow);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(side_effects_are_full_invocations_in_order)
{
	spawni_registry reg = {0};
	reg_add(&reg, "a", 0, "Effects", h_effects, NULL);
	fixture f;
	fixture_init(&f, "a", "Effects", 1, 1);
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	Spawn__Workflow *wf = r->response->workflow;
	ck_assert_ptr_nonnull(wf);
	ck_assert_int_eq(wf->routing_case, SPAWN__WORKFLOW__ROUTING__NOT_SET);
	ck_assert_uint_eq(wf->n_effects, 7);

	const Spawn__InvocationRequest *e = wf->effects[0]->request;
	ck_assert_str_eq(e->system->name, "sys"); /* the actor's own system */
	ck_assert_str_eq(e->actor->id->name, "b");
	ck_assert_str_eq(e->actor->id->system, "sys");
	ck_assert_str_eq(e->action_name, "Note");
	ck_assert(e->async);
	ck_assert_ptr_null(e->caller); /* the gateway names the emitter */
	ck_assert_int_eq(e->payload_case, SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE);
	ck_assert_str_eq(e->value->type_url, "t/x.P");
	ck_assert_uint_eq(e->value->value.len, 3);
	ck_assert_int_eq(e->value->value.data[2], 3);
	ck_assert_uint_eq(e->n_metadata, 2);
	ck_assert_str_eq(md_value(e, "k"), "v");
	ck_assert_str_eq(md_value(e, "empty"), "");
	ck_assert_str_eq(e->register_ref, "");

	e = wf->effects[1]->request;
	ck_assert_str_eq(e->system->name, "other-sys");
	ck_assert_str_eq(e->actor->id->system, "other-sys");
	ck_assert_str_eq(e->actor->id->name, "inst-1");
	ck_assert_str_eq(e->actor->id->parent, "tmpl");
	ck_assert_str_eq(e->register_ref, "tmpl");
	ck_assert(e->pooled);
	ck_assert(e->async); /* always */
	ck_assert_int_eq(e->payload_case, SPAWN__INVOCATION_REQUEST__PAYLOAD_NOOP);
	for (int i = 0; i < 5; i++) {
		char name[8];
		snprintf(name, sizeof name, "n%d", i);
		ck_assert_str_eq(wf->effects[2 + i]->request->actor->id->name, name);
	}
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

#define TP_TURN "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TP_OWN  "00-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-00f067aa0ba902b7-01"

static void h_trace(spawn_ctx *ctx, void *user)
{
	(void)user;
	ck_assert_str_eq(spawn_ctx_traceparent(ctx), TP_TURN);
	spawn_metadata md[2];
	ck_assert_uint_eq(spawn_ctx_trace(ctx, md), 2);
	ck_assert_str_eq(md[0].key, "traceparent");
	ck_assert_str_eq(md[0].value, TP_TURN);
	ck_assert_str_eq(md[1].key, "tracestate");
	ck_assert_str_eq(md[1].value, "k=v");
	spawn_request plain = {.actor = "b", .action = "Note"};
	ck_assert_int_eq(spawn_ctx_side_effect(ctx, &plain), SPAWN_OK);
	spawn_metadata own_md[] = {{"TraceParent", TP_OWN}};
	spawn_request own = {.actor = "c", .action = "Note", .metadata = own_md, .n_metadata = 1};
	ck_assert_int_eq(spawn_ctx_side_effect(ctx, &own), SPAWN_OK);
}

START_TEST(the_trace_context_is_exposed_and_side_effects_carry_it)
{
	spawni_registry reg = {0};
	reg_add(&reg, "a", 0, "Traced", h_trace, NULL);
	fixture f;
	fixture_init(&f, "a", "Traced", 1, 1);
	Spawn__Context__MetadataEntry tp = SPAWN__CONTEXT__METADATA_ENTRY__INIT;
	Spawn__Context__MetadataEntry ts = SPAWN__CONTEXT__METADATA_ENTRY__INIT;
	tp.key = "traceparent";
	tp.value = TP_TURN;
	ts.key = "tracestate";
	ts.value = "k=v";
	Spawn__Context__MetadataEntry *mdp[] = {&f.md, &tp, &ts};
	f.ctx.metadata = mdp;
	f.ctx.n_metadata = 3;
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	Spawn__Workflow *wf = r->response->workflow;
	ck_assert_uint_eq(wf->n_effects, 2);
	ck_assert_str_eq(md_value(wf->effects[0]->request, "traceparent"), TP_TURN);
	ck_assert_str_eq(md_value(wf->effects[0]->request, "tracestate"), "k=v");
	/* the handler's own traceparent stays, alone */
	ck_assert_uint_eq(wf->effects[1]->request->n_metadata, 1);
	ck_assert_str_eq(md_value(wf->effects[1]->request, "TraceParent"), TP_OWN);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	/* a turn without trace context: nothing to pass on */
	fixture_init(&f, "a", "Look", 1, 1);
	spawn_metadata md[2];
	ck_assert_uint_eq(spawn_ctx_trace(NULL, md), 0);
	ck_assert_ptr_null(spawn_ctx_traceparent(NULL));
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(broadcast_carries_channel_and_payload)
{
	spawni_registry reg = {0};
	reg_add(&reg, "a", 0, "Pub", h_broadcast, NULL);
	reg_add(&reg, "b", 0, "Ping", h_broadcast_noop, NULL);
	fixture f;
	fixture_init(&f, "a", "Pub", 1, 1);
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	Spawn__Broadcast *b = r->response->workflow->broadcast;
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(b->channel_group, "news");
	ck_assert_int_eq(b->payload_case, SPAWN__BROADCAST__PAYLOAD_VALUE);
	ck_assert_int_eq(counter_of(b->value), 99);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);

	fixture_init(&f, "b", "Ping", 1, 1);
	r = run(&reg, &f, 0);
	b = r->response->workflow->broadcast;
	ck_assert_str_eq(b->channel_group, "ping");
	ck_assert_int_eq(b->payload_case, SPAWN__BROADCAST__PAYLOAD_NOOP);
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

START_TEST(a_failing_handler_sends_no_workflow_and_no_tags)
{
	spawni_registry reg = {0};
	reg_add(&reg, "a", 0, "Go", h_workflow_then_fail, NULL);
	fixture f;
	fixture_init(&f, "a", "Go", 1, 1);
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR);
	ck_assert_int_eq(r->error->code, SPAWN_ABORTED);
	ck_assert_str_eq(r->error->message, "changed my mind");
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

static void h_tags(spawn_ctx *ctx, void *user)
{
	(void)user;
	ck_assert_str_eq(spawn_ctx_tag(ctx, "color"), "blue");
	ck_assert_int_eq(spawn_ctx_set_tag(ctx, "color", "red"), SPAWN_OK);
	ck_assert_str_eq(spawn_ctx_tag(ctx, "color"), "red"); /* seen at once */
	for (int i = 0; i < 6; i++) {
		char k[8], v[8];
		snprintf(k, sizeof k, "k%d", i);
		snprintf(v, sizeof v, "v%d", i);
		ck_assert_int_eq(spawn_ctx_set_tag(ctx, k, v), SPAWN_OK);
	}
	ck_assert_int_eq(spawn_ctx_set_tag(ctx, "k3", NULL), SPAWN_OK); /* removed */
	ck_assert_int_eq(spawn_ctx_set_tag(ctx, "absent", NULL), SPAWN_OK);
	ck_assert_ptr_null(spawn_ctx_tag(ctx, "k3"));
	ck_assert_int_eq(spawn_ctx_set_tag(ctx, "", "x"), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_set_tag(ctx, NULL, "x"), SPAWN_EINVAL);
	ck_assert_int_eq(spawn_ctx_set_tag(NULL, "k", "x"), SPAWN_EINVAL);
}

static const char *tag_value(const Spawn__Context *c, const char *key)
{
	for (size_t i = 0; i < c->n_tags; i++)
		if (!strcmp(c->tags[i]->key, key))
			return c->tags[i]->value;
	return NULL;
}

START_TEST(tags_set_by_the_handler_go_back_with_the_state)
{
	spawni_registry reg = {0};
	reg_add(&reg, "a", 0, "Tag", h_tags, NULL);
	fixture f;
	fixture_init(&f, "a", "Tag", 1, 1);
	Spawn__Gateway__V1__InvocationResult *r = run(&reg, &f, 0);
	ck_assert_int_eq(r->outcome_case, SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE);
	const Spawn__Context *uc = r->response->updated_context;
	ck_assert_uint_eq(uc->n_tags, 6); /* color + k0..k5 - k3 */
	ck_assert_str_eq(tag_value(uc, "color"), "red");
	ck_assert_str_eq(tag_value(uc, "k5"), "v5");
	ck_assert_ptr_null(tag_value(uc, "k3"));
	/* The task's own entry was replaced, not written. */
	ck_assert_str_eq(f.tag.value, "blue");
	ck_assert_int_eq(counter_of(uc->state), 1); /* state untouched */
	spawn__gateway__v1__invocation_result__free_unpacked(r, NULL);
	fixture_fini(&f);
	spawni_registry_fini(&reg);
}
END_TEST

static void oom_h_workflow(spawn_ctx *ctx, void *user)
{
	(void)user;
	spawn_metadata md[] = {{"k", "v"}};
	spawn_request e = {.system = "s2",
	                   .actor = "b",
	                   .action = "Note",
	                   .payload = {.type_url = "t/x.P", .data = "abc", .len = 3},
	                   .metadata = md,
	                   .n_metadata = 1,
	                   .parent = "tmpl"};
	int rc = SPAWN_OK;
	for (int i = 0; i < 6 && rc == SPAWN_OK; i++)
		rc = spawn_ctx_side_effect(ctx, &e);
	if (rc == SPAWN_OK)
		rc = spawn_ctx_pipe(ctx, "b", "Next");
	if (rc == SPAWN_OK)
		rc = spawn_ctx_broadcast(ctx, "news", "t/x.B", "xyz", 3);
	for (int i = 0; i < 6 && rc == SPAWN_OK; i++) {
		char k[8];
		snprintf(k, sizeof k, "t%d", i);
		rc = spawn_ctx_set_tag(ctx, k, "v");
	}
	if (rc != SPAWN_OK) {
		ck_assert_int_eq(rc, SPAWN_ENOMEM);
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, NULL);
	}
}

START_TEST(out_of_memory_while_building_a_workflow_fails_cleanly)
{
	spawni_registry reg = {0};
	reg_add(&reg, "a", 0, "Go", oom_h_workflow, NULL);
	bool saw_oom = false, saw_ok = false;
	for (size_t limit = 64; limit < 65536 && !saw_ok; limit += 64) {
		fixture f;
		fixture_init(&f, "a", "Go", 1, 1);
		spawn_arena_fini(&f.arena);
		spawn_arena_init(&f.arena, limit);
		spawni_execute(&reg, &f.task, 0, &f.arena, &f.res);
		if (f.res.outcome_case == SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR) {
			ck_assert_int_eq(f.res.error->code, SPAWN_RESOURCE_EXHAUSTED);
			saw_oom = true;
		} else {
			ck_assert_uint_eq(f.res.response->workflow->n_effects, 6);
			ck_assert_uint_eq(f.res.response->updated_context->n_tags, 7);
			saw_ok = true;
		}
		ck_assert_uint_gt(protobuf_c_message_get_packed_size(&f.res.base), 0);
		fixture_fini(&f);
	}
	ck_assert(saw_oom);
	ck_assert(saw_ok);
	spawni_registry_fini(&reg);
}
END_TEST

/* ---- several gateways (target.c) ------------------------------------------- */

/* target_of returns the status of spawni_target_init(given) and copies the
 * uri and authority ("" for none) into uri / auth. */
static int target_of(const char *given, bool tls, const char *server_name, char *uri, char *auth)
{
	spawni_security sec = {.tls = tls, .server_name = (char *)server_name};
	spawni_target t;
	int rc = spawni_target_init(&t, given, &sec);
	uri[0] = auth[0] = '\0';
	if (rc == SPAWN_OK) {
		snprintf(uri, 128, "%s", t.uri);
		snprintf(auth, 128, "%s", t.authority ? t.authority : "");
		grpc_arg args[SPAWNI_TARGET_MAX_ARGS];
		size_t n = spawni_target_args(&t, args);
		ck_assert_uint_eq(n, t.authority ? 2 : 1);
		ck_assert_str_eq(args[0].key, GRPC_ARG_SERVICE_CONFIG);
		ck_assert_ptr_nonnull(strstr(args[0].value.string, "round_robin"));
	} else {
		ck_assert_ptr_null(t.uri);
	}
	spawni_target_fini(&t);
	return rc;
}

START_TEST(a_gateway_list_becomes_one_round_robin_target)
{
	char uri[128], auth[128];
	/* One target: gRPC's, untouched, still round robin (a DNS name). */
	ck_assert_int_eq(target_of("127.0.0.1:8090", false, NULL, uri, auth), SPAWN_OK);
	ck_assert_str_eq(uri, "127.0.0.1:8090");
	ck_assert_str_eq(auth, "");
	ck_assert_int_eq(target_of("dns:///gw.example:8090", true, NULL, uri, auth), SPAWN_OK);
	ck_assert_str_eq(uri, "dns:///gw.example:8090");
	ck_assert_int_eq(target_of("unix:/run/spawn.sock", false, NULL, uri, auth), SPAWN_OK);
	ck_assert_str_eq(uri, "unix:/run/spawn.sock");
	/* Lists. */
	ck_assert_int_eq(target_of("127.0.0.1:1, 127.0.0.1:2 ,127.0.0.1:3", true, NULL, uri, auth),
	                 SPAWN_OK);
	ck_assert_str_eq(uri, "ipv4:127.0.0.1:1,127.0.0.1:2,127.0.0.1:3");
	ck_assert_str_eq(auth, "127.0.0.1:1");
	ck_assert_int_eq(target_of("[::1]:1,[::1]:2", false, NULL, uri, auth), SPAWN_OK);
	ck_assert_str_eq(uri, "ipv6:[::1]:1,[::1]:2");
	ck_assert_str_eq(auth, "[::1]:1");
	ck_assert_int_eq(target_of("ipv4:10.0.0.1:80,10.0.0.2:80", false, NULL, uri, auth),
	                 SPAWN_OK);
	ck_assert_str_eq(uri, "ipv4:10.0.0.1:80,10.0.0.2:80");
	ck_assert_str_eq(auth, "10.0.0.1:80");
	/* TLS over different hosts needs a name every certificate carries. */
	ck_assert_int_eq(target_of("10.0.0.1:80,10.0.0.2:80", true, NULL, uri, auth), SPAWN_ETLS);
	ck_assert_int_eq(target_of("10.0.0.1:80,10.0.0.2:80", true, "gw", uri, auth), SPAWN_OK);
	/* Not a list of numeric addresses. */
	static const char *const bad[] = {
	    "gw1:80,gw2:80",
	    "127.0.0.1:1,[::1]:2",
	    "127.0.0.1:0,127.0.0.1:1",
	    "127.0.0.1:1,",
	    ",127.0.0.1:1",
	    "127.0.0.1:1 127.0.0.1:2,127.0.0.1:3",
	    "127.0.0.1:65536,1.1.1.1:1",
	    "[::1:1,[::1]:2",
	    "127.0.0.1,127.0.0.2",
	    "",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(target_of(bad[i], false, NULL, uri, auth) == SPAWN_EINVAL,
		              "%s accepted", bad[i]);
	/* Clients and hosts refuse them at create. */
	spawn_client *c = (spawn_client *)0x1;
	ck_assert_int_eq(spawn_client_create(&c, "gw1:80,gw2:80"), SPAWN_EINVAL);
	ck_assert_ptr_eq(c, (spawn_client *)0x1);
	spawn_host *h = (spawn_host *)0x1;
	spawn_host_opts ho = {.target = "gw1:80,gw2:80", .system = "sys"};
	ck_assert_int_eq(spawn_host_create(&h, &ho), SPAWN_EINVAL);
	ck_assert_ptr_eq(h, (spawn_host *)0x1);
	ck_assert_int_eq(spawn_client_create(&c, "127.0.0.1:1,127.0.0.1:2"), SPAWN_OK);
	spawn_client_destroy(c);
}
END_TEST

static Suite *sdk_unit_suite(void)
{
	Suite *s = suite_create("sdk_unit");
	struct {
		const char *name;
		const TTest *t;
	} cases[] = {
	    {"status", status_names_and_messages_cover_both_tables},
	    {"type_url", type_url_is_built_from_the_descriptor_and_truncates_like_snprintf},
	    {"payload_round_trip", payload_pack_unpack_round_trips_and_checks_the_type},
	    {"payload_errors", payload_unpack_rejects_garbage_and_missing_values},
	    {"reply_msg", reply_msg_reads_the_reply_as_a_typed_message},
	    {"backoff", backoff_stays_within_bounds_and_grows},
	    {"host_create", host_create_rejects_bad_options},
	    {"add_actor", add_actor_validates_definitions},
	    {"run_needs_actors", run_and_start_need_actors},
	    {"stop_before_run", stop_before_run_makes_run_return_at_once},
	    {"wait_registered", wait_registered_times_out},
	    {"client_validation", client_rejects_bad_requests},
	    {"typed_client_validation", typed_client_calls_check_their_arguments},
	    {"registration", registration_describes_every_actor},
	    {"registration_channels", registration_carries_channel_subscriptions},
	    {"pipe_forward", pipe_and_forward_become_the_routing},
	    {"side_effects", side_effects_are_full_invocations_in_order},
	    {"trace_context", the_trace_context_is_exposed_and_side_effects_carry_it},
	    {"broadcast", broadcast_carries_channel_and_payload},
	    {"workflow_fail", a_failing_handler_sends_no_workflow_and_no_tags},
	    {"tags", tags_set_by_the_handler_go_back_with_the_state},
	    {"keeps_state", handler_that_sets_nothing_keeps_the_state},
	    {"getters", ctx_getters_expose_the_invocation},
	    {"outcome", handler_outcome_becomes_the_response},
	    {"fail", failing_handler_discards_state_and_reply},
	    {"fail_codes", fail_codes_out_of_range_become_unknown},
	    {"msg_helpers", message_helpers_default_missing_values_and_check_types},
	    {"unnamed", unnamed_instances_run_their_template},
	    {"not_found", unknown_actor_or_action_is_not_found},
	    {"deadline", expired_deadline_skips_the_handler},
	    {"no_invocation", task_without_invocation_is_invalid},
	    {"oom", out_of_memory_in_the_arena_becomes_resource_exhausted},
	    {"oom_unpack", unpacking_into_a_full_arena_is_out_of_memory_not_malformed},
	    {"oom_workflow", out_of_memory_while_building_a_workflow_fails_cleanly},
	    {"expect", expect_helpers_hand_out_the_typed_state_and_input},
	    {"expect_wrong_type", expect_helpers_fail_the_invocation_on_a_wrong_type},
	    {"expect_oom", expect_helpers_out_of_memory_becomes_resource_exhausted},
	    {"fail_on_error", fail_on_error_fails_with_a_code_for_the_status},
	    {"gateway_list", a_gateway_list_becomes_one_round_robin_target},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, 30);
		tcase_add_test(tc, cases[i].t);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sdk_unit_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
