/* it_edge_test.c - hostile input at the edge (issue 9, items 1 and 4):
 * names with a hidden NUL, invalid UTF-8, over-limit names and metadata,
 * the reserved "spawn-" metadata namespace, and a raw host returning
 * invalid tags, type URLs and workflow targets or registering a bad name.
 *
 * Every test keeps a canary beside the hostile peer: the Python
 * Incrementor (a conformant protobuf runtime that refuses invalid UTF-8)
 * serving "spawn-system/incrementor", and a thread calling Add(1) on it
 * in a loop that requires each total to be the previous one plus one. A
 * hostile call that reached the Incrementor (every hostile Add adds 1000)
 * or a host stream dropped by a message it cannot parse shows up there. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <check.h>
#include <spawn/spawn.h>

#include "canary.h"
#include "harness.h"
#include "incrementor/incrementor.pb-c.h"
#include "raw.h"
#include "wire.h"

#define RAW_METHOD_SPAWN     "/spawn.gateway.v1.ActorGateway/Spawn"
#define RAW_METHOD_GET_STATE "/spawn.gateway.v1.Admin/GetState"
#define HOSTILE_ADD          1000

static it_world w;
static it_gw gw;
static it_proc *py;

/* ---- the canary ---------------------------------------------------------------------------- */

/* The sequence the canary checks: each total is the previous one plus one,
 * or plus HOSTILE_ADD once per hostile Add allowed to reach the Incrementor. */
static struct {
	pthread_mutex_t mu;
	int64_t last_total;
	int jumps; /* mu: hostile Adds allowed to have reached the Incrementor */
} seq = {.mu = PTHREAD_MUTEX_INITIALIZER};

static it_canary can;

/* incrementor_add: the canary's call, Add(1) on spawn-system/incrementor. */
static bool incrementor_add(spawn_client *c, void *user, char *err, size_t n)
{
	(void)user;
	Examples__Incrementor__Add add = EXAMPLES__INCREMENTOR__ADD__INIT;
	add.value = 1;
	spawn_payload p;
	if (spawn_payload_pack(&p, &add.base) != SPAWN_OK) {
		snprintf(err, n, "out of memory");
		return false;
	}
	spawn_request req = {
	    .system = "spawn-system", .actor = "incrementor", .action = "Add", .payload = p};
	spawn_reply r;
	int rc = spawn_client_invoke(c, &req, &r, it_ms(10000));
	spawn_payload_fini(&p);
	if (rc != SPAWN_OK) {
		snprintf(err, n, "Add: %s: %s", spawn_status_name(rc), r.message ? r.message : "");
		spawn_reply_fini(&r);
		return false;
	}
	Examples__Incrementor__Total *t = NULL;
	if (spawn_payload_unpack(&r.payload, &examples__incrementor__total__descriptor,
	                         (ProtobufCMessage **)&t) != SPAWN_OK) {
		snprintf(err, n, "Add: the reply is not a Total");
		spawn_reply_fini(&r);
		return false;
	}
	pthread_mutex_lock(&seq.mu);
	int64_t want = seq.last_total + 1;
	if (seq.jumps > 0 && t->total == want + HOSTILE_ADD) {
		seq.jumps--;
		want += HOSTILE_ADD;
	}
	seq.last_total = t->total;
	pthread_mutex_unlock(&seq.mu);
	bool good = t->total == want;
	if (!good)
		snprintf(err, n,
		         "Add(1) answered total %" PRId64 ", expected %" PRId64
		         " (a hostile call reached the Incrementor?)",
		         t->total, want);
	protobuf_c_message_free_unpacked(&t->base, NULL);
	spawn_reply_fini(&r);
	return good;
}

/* canary_progress waits until the canary has made n more good calls (so
 * it ran beside the step before), asserting it stayed healthy. */
static void canary_progress(long n)
{
	it_canary_progress(&can, n);
}

/* start_world: a gateway (extra args), the Python Incrementor, the canary. */
static void start_world(const char *name, const char *const gargs[])
{
	it_world_init(&w, name);
	it_gateway_start(&w, &gw, "gw", "state.db", gargs, NULL);
	char proto_out[600], script[600];
	snprintf(proto_out, sizeof proto_out, "%s/python-gen", it_build_dir());
	snprintf(script, sizeof script, "%s/examples/incrementor/python/host.py", it_source_dir());
	ck_assert_msg(access(proto_out, R_OK) == 0, "%s missing (target python_proto)", proto_out);
	const char *argv[] = {"/usr/bin/python3", script,    "--gateway", gw.target,
	                      "--proto-out",      proto_out, NULL};
	const char *env[] = {"PYTHONDONTWRITEBYTECODE=1", NULL};
	py = it_spawn(&w, "py", argv, env);
	if (!it_proc_wait_line(py, "registered", it_ms(30000), NULL, 0)) {
		it_proc_dump(py);
		ck_abort_msg("the Python Incrementor did not register");
	}
	seq.last_total = 0;
	seq.jumps = 0;
	it_canary_start(&can, gw.target, incrementor_add, NULL);
	canary_progress(3);
}

/* end_world stops the canary (asserting it stayed healthy throughout),
 * the Python host (it must exit 0: its stream was never broken) and the
 * gateway (exit 0: no sanitizer finding, everything saved). */
static void end_world(void)
{
	canary_progress(3);
	it_canary_stop(&can, 0, 0);
	ck_assert_int_eq(it_proc_count_lines(py, "registered"), 0); /* never re-registered */
	it_proc_signal(py, SIGTERM);
	ck_assert(it_proc_wait_exit(py, it_ms(20000)));
	ck_assert_int_eq(it_exit_code(py), 0);
	it_gateway_stop(&gw);
}

static void teardown(void)
{
	it_canary_abandon(&can);
	it_world_fini(&w);
}

/* ---- hand-built bytes --------------------------------------------------------------------------
 */

typedef struct bytes {
	uint8_t *data;
	size_t len;
} bytes;

static bytes pack(const ProtobufCMessage *m)
{
	bytes b;
	b.len = protobuf_c_message_get_packed_size(m);
	b.data = malloc(b.len ? b.len : 1);
	ck_assert_ptr_nonnull(b.data);
	protobuf_c_message_pack(m, b.data);
	return b;
}

/* patch replaces the string s (a whole field value, so it cannot be
 * mistaken for a tag or a length) with the same number of bytes from with:
 * bytes the C API of protobuf-c cannot express. */
static void patch_n(bytes *b, const char *s, const char *with, size_t n)
{
	for (size_t i = 0; i + n <= b->len; i++)
		if (!memcmp(b->data + i, s, n)) {
			memcpy(b->data + i, with, n);
			return;
		}
	ck_abort_msg("%s not found", s);
}
#define PATCH(b, s, with)                                                                          \
	do {                                                                                       \
		_Static_assert(sizeof(s) == sizeof(with), "same length");                          \
		patch_n(b, s, with, sizeof(s) - 1);                                                \
	} while (0)

/* An InvocationRequest for Add(HOSTILE_ADD) with one metadata entry
 * (mkey NULL = none) and extra entries. */
static bytes invocation(const char *system, const char *actor, const char *action, const char *mkey,
                        const char *mval, size_t extra_md)
{
	Examples__Incrementor__Add add = EXAMPLES__INCREMENTOR__ADD__INIT;
	add.value = HOSTILE_ADD;
	uint8_t val[16];
	size_t vlen = examples__incrementor__add__pack(&add, val);
	char url[128];
	spawn_type_url(&examples__incrementor__add__descriptor, url, sizeof url);
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = url;
	any.value.data = val;
	any.value.len = vlen;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = (char *)system;
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = (char *)actor;
	id.system = (char *)system;
	Spawn__Actors__Actor act = SPAWN__ACTORS__ACTOR__INIT;
	act.id = &id;
	Spawn__InvocationRequest rq = SPAWN__INVOCATION_REQUEST__INIT;
	rq.system = &sys;
	rq.actor = &act;
	rq.action_name = (char *)action;
	rq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	rq.value = &any;
	size_t n = (mkey ? 1 : 0) + extra_md;
	Spawn__InvocationRequest__MetadataEntry *e = calloc(n ? n : 1, sizeof *e);
	Spawn__InvocationRequest__MetadataEntry **ep = calloc(n ? n : 1, sizeof *ep);
	char(*keys)[24] = calloc(n ? n : 1, sizeof *keys);
	for (size_t i = 0; i < n; i++) {
		spawn__invocation_request__metadata_entry__init(&e[i]);
		snprintf(keys[i], sizeof keys[i], "k%zu", i);
		e[i].key = i == 0 && mkey ? (char *)mkey : keys[i];
		e[i].value = i == 0 && mkey ? (char *)mval : "v";
		ep[i] = &e[i];
	}
	rq.n_metadata = n;
	rq.metadata = ep;
	bytes b = pack(&rq.base);
	free(e);
	free(ep);
	free(keys);
	return b;
}

/* expect_refused sends b to method and asserts INVALID_ARGUMENT with a
 * message naming field (and saying why, when why is not NULL). */
static void expect_refused(const char *method, bytes b, const char *field, const char *why)
{
	char details[512] = "";
	int st = raw_unary(gw.target, method, b.data, b.len, it_ms(10000), details, sizeof details);
	free(b.data);
	ck_assert_msg(st == GRPC_STATUS_INVALID_ARGUMENT,
	              "%s: status %d (%s), want INVALID_ARGUMENT", field, st, details);
	ck_assert_msg(strstr(details, field), "'%s' does not name %s", details, field);
	if (why)
		ck_assert_msg(strstr(details, why), "'%s' does not say %s", details, why);
}

/* ---- 1. names with a hidden NUL -------------------------------------------------------------- */

START_TEST(names_with_a_hidden_nul_never_reach_the_actor)
{
	start_world("hidden_nul", NULL);
	bytes b = invocation("spawn-system", "incrementor#evil", "Add", NULL, NULL, 0);
	PATCH(&b, "incrementor#evil", "incrementor\0evil");
	expect_refused(RAW_METHOD_INVOKE, b, "actor.id.name", "NUL");
	canary_progress(2);

	b = invocation("spawn-system#zz", "incrementor", "Add", NULL, NULL, 0);
	PATCH(&b, "spawn-system#zz", "spawn-system\0zz");
	expect_refused(RAW_METHOD_INVOKE, b, "system.name", "NUL");
	canary_progress(2);

	b = invocation("spawn-system", "incrementor", "Add#q", NULL, NULL, 0);
	PATCH(&b, "Add#q", "Add\0q");
	expect_refused(RAW_METHOD_INVOKE, b, "action_name", "NUL");
	canary_progress(2);

	/* Spawn and Admin read names too. */
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = "inst#x";
	id.system = "spawn-system";
	id.parent = "incrementor";
	Spawn__Actors__ActorId *ids[1] = {&id};
	Spawn__SpawnRequest sr = SPAWN__SPAWN_REQUEST__INIT;
	sr.n_actors = 1;
	sr.actors = ids;
	b = pack(&sr.base);
	PATCH(&b, "inst#x", "inst\0x");
	expect_refused(RAW_METHOD_SPAWN, b, "actors[0].name", "NUL");

	Spawn__Gateway__V1__ActorRef ref = SPAWN__GATEWAY__V1__ACTOR_REF__INIT;
	ref.system = "spawn-system";
	ref.actor = "incrementor#";
	Spawn__Gateway__V1__GetStateRequest gs = SPAWN__GATEWAY__V1__GET_STATE_REQUEST__INIT;
	gs.actor = &ref;
	b = pack(&gs.base);
	PATCH(&b, "incrementor#", "incrementor\0");
	expect_refused(RAW_METHOD_GET_STATE, b, "actor.actor", "NUL");
	end_world();
}
END_TEST

/* ---- 2. invalid UTF-8, limits, reserved metadata ------------------------------------------------
 */

START_TEST(invalid_utf8_over_limit_input_and_reserved_metadata_are_refused)
{
	const char *gargs[] = {"--max-metadata-value-bytes", "100", NULL};
	start_world("bad_strings", gargs);
	/* Invalid UTF-8 in a metadata value: relayed, it would break the
	 * Python host's stream. */
	bytes b = invocation("spawn-system", "incrementor", "Add", "trace", "ok##", 0);
	PATCH(&b, "ok##", "ok\xc3\x28");
	expect_refused(RAW_METHOD_INVOKE, b, "metadata[\"trace\"]", "not valid UTF-8");
	canary_progress(2);
	/* A surrogate and an overlong form. */
	b = invocation("spawn-system", "incrementor", "Add", "trace", "###", 0);
	PATCH(&b, "###", "\xed\xa0\x80");
	expect_refused(RAW_METHOD_INVOKE, b, "metadata[\"trace\"]", "not valid UTF-8");
	b = invocation("spawn-system", "incrementor", "Ad##", NULL, NULL, 0);
	PATCH(&b, "Ad##", "Ad\xc1\x81");
	expect_refused(RAW_METHOD_INVOKE, b, "action_name", "not valid UTF-8");
	/* A control character. */
	b = invocation("spawn-system", "incrementor", "Add", "trace", "a\x1b[2J", 0);
	expect_refused(RAW_METHOD_INVOKE, b, "metadata[\"trace\"]", "control character");
	canary_progress(2);

	/* Over the limits: a 256-byte name, 65 metadata entries, a value over
	 * the configured 100 bytes. */
	char name[257];
	memset(name, 'i', 256);
	name[256] = 0;
	b = invocation("spawn-system", name, "Add", NULL, NULL, 0);
	expect_refused(RAW_METHOD_INVOKE, b, "actor.id.name",
	               "256 bytes, over the limit of 255 (--max-name-bytes)");
	b = invocation("spawn-system", "incrementor", "Add", NULL, NULL, 65);
	expect_refused(RAW_METHOD_INVOKE, b, "metadata",
	               "65 entries, over the limit of 64 (--max-metadata-entries)");
	char val[102];
	memset(val, 'v', 101);
	val[101] = 0;
	b = invocation("spawn-system", "incrementor", "Add", "trace", val, 0);
	expect_refused(RAW_METHOD_INVOKE, b, "metadata[\"trace\"]",
	               "101 bytes, over the limit of 100 (--max-metadata-value-bytes)");
	canary_progress(2);

	/* The reserved namespace, in any case. */
	b = invocation("spawn-system", "incrementor", "Add", "spawn-idempotency-key", "x", 0);
	expect_refused(RAW_METHOD_INVOKE, b, "metadata[\"spawn-idempotency-key\"]", "reserved");
	b = invocation("spawn-system", "incrementor", "Add", "Spawn-Anything", "x", 0);
	expect_refused(RAW_METHOD_INVOKE, b, "metadata[\"Spawn-Anything\"]", "reserved");

	/* At the limits, with ordinary metadata, the call goes through (and
	 * the canary sees its Add). */
	val[100] = 0;
	b = invocation("spawn-system", "incrementor", "Add", "trace", val, 63);
	pthread_mutex_lock(&seq.mu);
	seq.jumps++;
	pthread_mutex_unlock(&seq.mu);
	char details[256] = "";
	int st = raw_unary(gw.target, RAW_METHOD_INVOKE, b.data, b.len, it_ms(10000), details,
	                   sizeof details);
	free(b.data);
	ck_assert_msg(st == GRPC_STATUS_OK, "status %d (%s)", st, details);
	canary_progress(2);
	pthread_mutex_lock(&seq.mu);
	int jumps = seq.jumps;
	pthread_mutex_unlock(&seq.mu);
	ck_assert_int_eq(jumps, 0);
	end_world();
}
END_TEST

/* ---- 3. a hostile host
 * --------------------------------------------------------------------------- */

/* A client call of raw/r.A run in its own thread while the test plays the
 * raw host. */
typedef struct call {
	pthread_t thread;
	spawn_client *client;
	int rc;
	char msg[600];
} call;

static void *call_main(void *arg)
{
	call *c = arg;
	spawn_request req = {.system = "raw", .actor = "r", .action = "A"};
	spawn_reply r;
	c->rc = spawn_client_invoke(c->client, &req, &r, it_ms(20000));
	snprintf(c->msg, sizeof c->msg, "%s", r.message ? r.message : "");
	spawn_reply_fini(&r);
	return NULL;
}

static void call_start(call *c, spawn_client *client)
{
	memset(c, 0, sizeof *c);
	c->client = client;
	ck_assert_int_eq(pthread_create(&c->thread, NULL, call_main, c), 0);
}

/* registration registers system sys with the stateful NAMED actor name
 * (action "A"), all strings as given. */
static bytes registration(const char *sys_name, const char *name)
{
	Spawn__Actors__Action act = SPAWN__ACTORS__ACTION__INIT;
	act.name = "A";
	Spawn__Actors__Action *acts[1] = {&act};
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = (char *)name;
	id.system = (char *)sys_name;
	Spawn__Actors__ActorSettings st = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	st.kind = SPAWN__ACTORS__KIND__NAMED;
	st.stateful = true;
	Spawn__Actors__Actor actor = SPAWN__ACTORS__ACTOR__INIT;
	actor.id = &id;
	actor.settings = &st;
	actor.n_actions = 1;
	actor.actions = acts;
	Spawn__Actors__Registry__ActorsEntry e = SPAWN__ACTORS__REGISTRY__ACTORS_ENTRY__INIT;
	e.key = (char *)name;
	e.value = &actor;
	Spawn__Actors__Registry__ActorsEntry *es[1] = {&e};
	Spawn__Actors__Registry reg = SPAWN__ACTORS__REGISTRY__INIT;
	reg.n_actors = 1;
	reg.actors = es;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = (char *)sys_name;
	sys.registry = &reg;
	Spawn__RegistrationRequest rr = SPAWN__REGISTRATION_REQUEST__INIT;
	rr.actor_system = &sys;
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION;
	hm.registration = &rr;
	return pack(&hm.base);
}

/* What the raw host answers. */
enum reply_kind {
	GOOD,         /* state "S1", tags {a: b} */
	BAD_TAG,      /* a tag value with an invalid byte */
	BAD_URL,      /* a state type URL with a space */
	NUL_PIPE,     /* pipe to "r\0q" */
	NUL_EFFECT,   /* side effect to "r\0q" */
	BAD_CHANNEL,  /* broadcast to an overlong-encoded channel */
	SPAWN_EFFECT, /* valid: side effect to r with metadata spawn-idempotency-key */
};

#define STATE_URL "type.googleapis.com/raw.State"

static void raw_reply(raw_stream *s, uint64_t id, enum reply_kind k)
{
	Google__Protobuf__Any state = GOOGLE__PROTOBUF__ANY__INIT;
	state.type_url = k == BAD_URL ? "type.googleapis.com/raw State" : STATE_URL;
	state.value.data = (uint8_t *)"S1";
	state.value.len = 2;
	Spawn__Context__TagsEntry tag = SPAWN__CONTEXT__TAGS_ENTRY__INIT;
	tag.key = "a";
	tag.value = k == BAD_TAG ? "b#" : "b";
	Spawn__Context__TagsEntry *tags[1] = {&tag};
	Spawn__Context ctx = SPAWN__CONTEXT__INIT;
	ctx.state = &state;
	ctx.n_tags = 1;
	ctx.tags = tags;
	Spawn__ActorInvocationResponse resp = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	resp.updated_context = &ctx;
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	Spawn__Pipe pipe = SPAWN__PIPE__INIT;
	Spawn__Broadcast bc = SPAWN__BROADCAST__INIT;
	Spawn__Actors__ActorSystem esys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	Spawn__Actors__ActorId eid = SPAWN__ACTORS__ACTOR_ID__INIT;
	Spawn__Actors__Actor eact = SPAWN__ACTORS__ACTOR__INIT;
	Spawn__InvocationRequest erq = SPAWN__INVOCATION_REQUEST__INIT;
	Spawn__InvocationRequest__MetadataEntry md[2] = {
	    SPAWN__INVOCATION_REQUEST__METADATA_ENTRY__INIT,
	    SPAWN__INVOCATION_REQUEST__METADATA_ENTRY__INIT};
	Spawn__InvocationRequest__MetadataEntry *mdp[2] = {&md[0], &md[1]};
	Spawn__SideEffect eff = SPAWN__SIDE_EFFECT__INIT;
	Spawn__SideEffect *effs[1] = {&eff};
	if (k == NUL_PIPE) {
		pipe.actor = "r#q";
		pipe.action_name = "A";
		wf.routing_case = SPAWN__WORKFLOW__ROUTING_PIPE;
		wf.pipe = &pipe;
		resp.workflow = &wf;
	} else if (k == NUL_EFFECT || k == SPAWN_EFFECT) {
		esys.name = "raw";
		eid.name = k == NUL_EFFECT ? "r#q" : "r";
		eid.system = "raw";
		eact.id = &eid;
		erq.system = &esys;
		erq.actor = &eact;
		erq.action_name = "A";
		md[0].key = "spawn-idempotency-key";
		md[0].value = "forged";
		md[1].key = "trace";
		md[1].value = "t1";
		erq.n_metadata = 2;
		erq.metadata = mdp;
		eff.request = &erq;
		wf.n_effects = 1;
		wf.effects = effs;
		resp.workflow = &wf;
	} else if (k == BAD_CHANNEL) {
		bc.channel_group = "ch##";
		wf.broadcast = &bc;
		resp.workflow = &wf;
	}
	Spawn__Gateway__V1__InvocationResult res = SPAWN__GATEWAY__V1__INVOCATION_RESULT__INIT;
	res.request_id = id;
	res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE;
	res.response = &resp;
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT;
	hm.result = &res;
	bytes b = pack(&hm.base);
	if (k == BAD_TAG)
		PATCH(&b, "b#", "b\xff");
	else if (k == NUL_PIPE || k == NUL_EFFECT)
		PATCH(&b, "r#q", "r\0q");
	else if (k == BAD_CHANNEL)
		PATCH(&b, "ch##", "ch\xc0\xa0");
	ck_assert(raw_stream_send(s, b.data, b.len, it_ms(10000)));
	free(b.data);
}

/* next_task waits for the next task on s and asserts the actor's state
 * and tags are those of the last good turn (none before the first). */
static Spawn__Gateway__V1__GatewayMessage *next_task(raw_stream *s, bool after_good)
{
	Spawn__Gateway__V1__GatewayMessage *gm =
	    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
	        s, &spawn__gateway__v1__gateway_message__descriptor, it_ms(20000));
	ck_assert_msg(gm != NULL, "no task came (the stream is gone?)");
	ck_assert_int_eq(gm->msg_case, SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION);
	const Spawn__Context *ctx = gm->invocation->invocation->current_context;
	if (after_good) {
		ck_assert_msg(ctx && ctx->state, "the task carries no state");
		ck_assert_str_eq(ctx->state->type_url, STATE_URL);
		ck_assert_uint_eq(ctx->state->value.len, 2);
		ck_assert(!memcmp(ctx->state->value.data, "S1", 2));
		ck_assert_uint_eq(ctx->n_tags, 1);
		ck_assert_str_eq(ctx->tags[0]->key, "a");
		ck_assert_str_eq(ctx->tags[0]->value, "b");
	}
	return gm;
}

/* one_turn: a client call, its task (state checked), the reply of kind k;
 * asserts the call's outcome: OK, or INVALID_ARGUMENT naming field. */
static void one_turn(raw_stream *s, spawn_client *client, enum reply_kind k, bool after_good,
                     const char *field)
{
	call c;
	call_start(&c, client);
	Spawn__Gateway__V1__GatewayMessage *gm = next_task(s, after_good);
	raw_reply(s, gm->invocation->request_id, k);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	pthread_join(c.thread, NULL);
	if (!field) {
		ck_assert_msg(c.rc == SPAWN_OK, "%s: %s", spawn_status_name(c.rc), c.msg);
		return;
	}
	ck_assert_msg(c.rc == SPAWN_INVALID_ARGUMENT,
	              "reply kind %d: %s (%s), want INVALID_ARGUMENT", k, spawn_status_name(c.rc),
	              c.msg);
	ck_assert_msg(strstr(c.msg, field), "'%s' does not name %s", c.msg, field);
	canary_progress(1);
}

START_TEST(a_hosts_invalid_result_fails_only_that_turn)
{
	start_world("hostile_host", NULL);
	raw_stream *s = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(120000));
	ck_assert_ptr_nonnull(s);
	bytes b = registration("raw", "r");
	ck_assert(raw_stream_send(s, b.data, b.len, it_ms(10000)));
	free(b.data);
	Spawn__Gateway__V1__GatewayMessage *gm =
	    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
	        s, &spawn__gateway__v1__gateway_message__descriptor, it_ms(10000));
	ck_assert_msg(gm != NULL, "no answer to the registration");
	ck_assert_int_eq(gm->msg_case, SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_REGISTRATION);
	protobuf_c_message_free_unpacked(&gm->base, NULL);

	spawn_client *client;
	ck_assert_int_eq(spawn_client_create(&client, gw.target), SPAWN_OK);
	one_turn(s, client, GOOD, false, NULL);
	/* Each bad result fails its turn; the next task shows the state and
	 * tags of the good turn, on the same stream. */
	one_turn(s, client, BAD_TAG, true, "updated_context.tags[\"a\"]");
	one_turn(s, client, BAD_URL, true, "updated_context.state.type_url");
	one_turn(s, client, NUL_PIPE, true, "workflow.pipe.actor");
	one_turn(s, client, NUL_EFFECT, true, "workflow.effects[0].request.actor.id.name");
	one_turn(s, client, BAD_CHANNEL, true, "workflow.broadcast.channel_group");
	/* A side effect copying reserved metadata forward: delivered without it. */
	one_turn(s, client, SPAWN_EFFECT, true, NULL);
	gm = next_task(s, true);
	const Spawn__Context *ctx = gm->invocation->invocation->current_context;
	bool trace = false;
	for (size_t i = 0; ctx && i < ctx->n_metadata; i++) {
		ck_assert_msg(strncasecmp(ctx->metadata[i]->key, "spawn-", 6) != 0,
		              "the effect carries %s=%s", ctx->metadata[i]->key,
		              ctx->metadata[i]->value);
		trace |= !strcmp(ctx->metadata[i]->key, "trace");
	}
	ck_assert_msg(trace, "the effect lost its ordinary metadata");
	raw_reply(s, gm->invocation->request_id, GOOD);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	/* And the stream still serves. */
	one_turn(s, client, GOOD, true, NULL);

	/* A registration with a NUL in an actor's name is refused, naming it. */
	raw_stream *s2 = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(20000));
	b = registration("raw2", "b#d");
	PATCH(&b, "b#d", "b\0d");
	ck_assert(raw_stream_send(s2, b.data, b.len, it_ms(10000)));
	free(b.data);
	char details[512];
	int st = raw_stream_status(s2, it_ms(10000), details, sizeof details);
	raw_stream_close(s2);
	ck_assert_msg(st == GRPC_STATUS_INVALID_ARGUMENT, "status %d (%s)", st, details);
	ck_assert_msg(strstr(details, "registration.actor_system.registry.actors[0].key") &&
	                  strstr(details, "NUL"),
	              "details: %s", details);
	spawn_request req = {.system = "raw2", .actor = "b", .action = "A"};
	spawn_reply r;
	int rc = spawn_client_invoke(client, &req, &r, it_ms(10000));
	ck_assert_msg(rc == SPAWN_NOT_FOUND, "raw2/b: %s (%s)", spawn_status_name(rc),
	              r.message ? r.message : "");
	spawn_reply_fini(&r);

	spawn_client_destroy(client);
	raw_stream_close(s);
	end_world();
}
END_TEST

static Suite *edge_suite(void)
{
	it_case cases[] = {
	    {"hidden_nul", names_with_a_hidden_nul_never_reach_the_actor},
	    {"bad_strings", invalid_utf8_over_limit_input_and_reserved_metadata_are_refused},
	    {"hostile_host", a_hosts_invalid_result_fails_only_that_turn},
	};
	return IT_SUITE("integration_edge", cases, teardown, 90);
}

int main(void)
{
	return it_run(edge_suite());
}
