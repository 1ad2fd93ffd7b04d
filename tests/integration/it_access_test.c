/* it_access_test.c - principals and the access policy (--access) end to
 * end, with bearer tokens over plaintext loopback (docs/security.md):
 * clients invoke and spawn only what they may (PERMISSION_DENIED naming
 * it; no or a bad token UNAUTHENTICATED), hosts register only systems
 * their principal may serve, a cross-system side effect needs the
 * emitting host's principal to be allowed to invoke its target (the turn
 * fails, its state is not kept), Admin needs the admin role and every
 * admin call is logged with its principal, a host's own UNAUTHENTICATED /
 * PERMISSION_DENIED reach the caller as UNKNOWN with a prefix, and the
 * policy is reloaded on SIGHUP (the gateway prints "access reloaded N"
 * when done; a broken file keeps the old policy).
 *
 * The same with the principal taken from the client certificate (mTLS,
 * certificates from tests/tls/mkcerts.sh): the "mtls" case.
 *
 * The hosts are raw gRPC peers played by the test's main thread; a call
 * that needs a host's answer runs in its own thread (call_start). The
 * token hashes in the policy come from `spawn-gateway --hash-token`.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <check.h>
#include <grpc/status.h>

#include "harness.h"
#include "raw.h"
#include "spawn/gateway/v1/gateway.pb-c.h"

#define M_SPAWN     "/spawn.gateway.v1.ActorGateway/Spawn"
#define M_GET_STATE "/spawn.gateway.v1.Admin/GetState"
#define M_KEY_ROT   "/spawn.gateway.v1.Admin/KeyRotation"

#define T_CLIENT  "Bearer client-token"
#define T_LIMITED "Bearer limited-token"
#define T_ADMIN   "Bearer admin-token"
#define T_ORDERS  "Bearer orders-token"
#define T_EVIL    "Bearer evil-token"
#define T_BANK    "Bearer bank-token"
#define T_PARTNER "Bearer partner-token"

static it_world w;
static it_gw gw;
/* The transport of every call and host stream: NULL = plaintext; the mTLS
 * test points it at its certificates (main thread, before the calls). */
static const it_tls *tls;

static void teardown(void)
{
	tls = NULL;
	it_world_fini(&w);
}

/* ---- the policy ------------------------------------------------------------------ */

/* hash_token runs `spawn-gateway --hash-token` with tok on stdin and
 * returns its output line (static storage, one per call site is enough:
 * the caller copies it). */
static void hash_token(const char *tok, char *out, size_t n)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "printf '%%s\\n' '%s' | '%s/gateway/spawn-gateway' --hash-token",
	         tok, it_build_dir());
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_msg(fgets(out, (int)n, p) != NULL, "--hash-token printed nothing for %s", tok);
	ck_assert_int_eq(pclose(p), 0);
	out[strcspn(out, "\n")] = 0;
	ck_assert_msg(!strncmp(out, "sha256:", 7) && strlen(out) == 71, "hash '%s'", out);
}

/* write_policy writes the test policy to DIR/policy.yaml. v2 (the
 * reloaded one): client may invoke bank too, and orders-host may serve
 * nothing any more. broken: an unknown key on line 3. */
static const char *write_policy(int version)
{
	static char path[600];
	it_path(&w, "policy.yaml", path, sizeof path);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	if (version < 0) {
		fputs("principals:\n  - name: client\n    hots: [x]\n", f);
		fclose(f);
		return path;
	}
	static const char *const toks[] = {"client-token", "limited-token", "admin-token",
	                                   "orders-token", "evil-token",    "bank-token",
	                                   "partner-token"};
	char h[7][80];
	for (int i = 0; i < 7; i++)
		hash_token(toks[i], h[i], sizeof h[i]);
	fprintf(f,
	        "# it_access_test policy v%d\n"
	        "principals:\n"
	        "  - name: client\n"
	        "    identities: [uri:spiffe://spawn.test/client]\n"
	        "    tokens: [%s]\n"
	        "    invoke:\n"
	        "      - system: orders\n"
	        "%s"
	        "  - name: limited\n"
	        "    tokens: [%s]\n"
	        "    invoke:\n"
	        "      - system: orders\n"
	        "        actors: [desk-tmpl]\n"
	        "        actions: [A]\n"
	        "  - name: admin\n"
	        "    identities: [uri:spiffe://spawn.test/admin, dns:admin.spawn.test]\n"
	        "    tokens: [%s]\n"
	        "    invoke: [{system: '*'}]\n"
	        "    admin: true\n"
	        "  - name: orders-host\n"
	        "    identities: [dns:host.spawn.test]\n"
	        "    tokens: [%s]\n"
	        "    host: [%s]\n"
	        "  - name: evil-host\n"
	        "    tokens: [%s]\n"
	        "    host: [evil]\n"
	        "  - name: bank-host\n"
	        "    tokens: [%s]\n"
	        "    host: [bank]\n"
	        "  - name: partner-host\n"
	        "    tokens: [%s]\n"
	        "    host: [partner]\n"
	        "    invoke:\n"
	        "      - system: bank\n"
	        "        actors: [acct]\n"
	        "        actions: [A]\n",
	        version, h[0], version == 2 ? "      - system: bank\n" : "", h[1], h[2], h[3],
	        version == 2 ? "" : "orders", h[4], h[5], h[6]);
	fclose(f);
	return path;
}

static void start_gateway(const char *name)
{
	it_world_init(&w, name);
	const char *args[] = {"--access", write_policy(1), NULL};
	it_gateway_start(&w, &gw, "gw", "state.db", args, NULL);
}

/* ---- client calls ------------------------------------------------------------------ */

typedef struct bytes {
	uint8_t *data;
	size_t len;
} bytes;

static bytes pack(const ProtobufCMessage *m)
{
	bytes b = {.len = protobuf_c_message_get_packed_size(m)};
	b.data = malloc(b.len ? b.len : 1);
	ck_assert_ptr_nonnull(b.data);
	protobuf_c_message_pack(m, b.data);
	return b;
}

/* invoke_bytes: system/actor.action with a payload (text, may be NULL) and
 * the request metadata authorization (a token sent the wrong way) and
 * trace. */
static bytes invoke_bytes(const char *system, const char *actor, const char *action,
                          const char *text)
{
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = (char *)system;
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = (char *)actor;
	id.system = (char *)system;
	Spawn__Actors__Actor act = SPAWN__ACTORS__ACTOR__INIT;
	act.id = &id;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "type.googleapis.com/raw.Text";
	any.value.data = (uint8_t *)(text ? text : "");
	any.value.len = text ? strlen(text) : 0;
	Spawn__InvocationRequest__MetadataEntry md[2] = {
	    SPAWN__INVOCATION_REQUEST__METADATA_ENTRY__INIT,
	    SPAWN__INVOCATION_REQUEST__METADATA_ENTRY__INIT};
	md[0].key = "Authorization";
	md[0].value = "Bearer client-token";
	md[1].key = "trace";
	md[1].value = "t1";
	Spawn__InvocationRequest__MetadataEntry *mdp[2] = {&md[0], &md[1]};
	Spawn__InvocationRequest rq = SPAWN__INVOCATION_REQUEST__INIT;
	rq.system = &sys;
	rq.actor = &act;
	rq.action_name = (char *)action;
	rq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	rq.value = &any;
	rq.n_metadata = 2;
	rq.metadata = mdp;
	return pack(&rq.base);
}

/* invoke calls system/actor.action with auth ("Bearer ..." or NULL) and
 * returns the status; msg gets the details. For calls refused before any
 * host is involved (or with no host answer needed). */
static int invoke(const char *system, const char *actor, const char *action, const char *auth,
                  char *msg, size_t n)
{
	bytes b = invoke_bytes(system, actor, action, NULL);
	int rc = raw_unary_auth(gw.target, tls, RAW_METHOD_INVOKE, b.data, b.len, it_ms(20000),
	                        auth, msg, n);
	free(b.data);
	return rc;
}

/* A call run in its own thread while the test plays the host. */
typedef struct call {
	pthread_t thread;
	const char *system, *actor, *action, *auth;
	int rc;
	char msg[600];
} call;

static void *call_main(void *arg)
{
	call *c = arg;
	c->rc = invoke(c->system, c->actor, c->action, c->auth, c->msg, sizeof c->msg);
	return NULL;
}

static void call_start(call *c, const char *system, const char *actor, const char *auth)
{
	memset(c, 0, sizeof *c);
	c->system = system;
	c->actor = actor;
	c->action = "A";
	c->auth = auth;
	ck_assert_int_eq(pthread_create(&c->thread, NULL, call_main, c), 0);
}

static void call_end(call *c, int want, const char *contains)
{
	pthread_join(c->thread, NULL);
	ck_assert_msg(c->rc == want, "%s/%s: status %d (%s), wanted %d", c->system, c->actor, c->rc,
	              c->msg, want);
	if (contains)
		ck_assert_msg(strstr(c->msg, contains) != NULL, "'%s' does not contain '%s'",
		              c->msg, contains);
}

static void expect(int rc, const char *msg, int want, const char *contains, const char *what)
{
	ck_assert_msg(rc == want, "%s: status %d (%s), wanted %d", what, rc, msg, want);
	if (contains)
		ck_assert_msg(strstr(msg, contains) != NULL, "%s: '%s' does not contain '%s'", what,
		              msg, contains);
}

/* spawn_instance: Spawn of system/name from template parent. */
static int spawn_instance(const char *system, const char *name, const char *parent,
                          const char *auth, char *msg, size_t n)
{
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = (char *)name;
	id.system = (char *)system;
	id.parent = (char *)parent;
	Spawn__Actors__ActorId *ids[1] = {&id};
	Spawn__SpawnRequest rq = SPAWN__SPAWN_REQUEST__INIT;
	rq.n_actors = 1;
	rq.actors = ids;
	bytes b = pack(&rq.base);
	int rc = raw_unary_auth(gw.target, tls, M_SPAWN, b.data, b.len, it_ms(20000), auth, msg, n);
	free(b.data);
	return rc;
}

static int get_state(const char *system, const char *actor, const char *auth, char *msg, size_t n)
{
	Spawn__Gateway__V1__ActorRef ref = SPAWN__GATEWAY__V1__ACTOR_REF__INIT;
	ref.system = (char *)system;
	ref.actor = (char *)actor;
	Spawn__Gateway__V1__GetStateRequest rq = SPAWN__GATEWAY__V1__GET_STATE_REQUEST__INIT;
	rq.actor = &ref;
	bytes b = pack(&rq.base);
	int rc =
	    raw_unary_auth(gw.target, tls, M_GET_STATE, b.data, b.len, it_ms(20000), auth, msg, n);
	free(b.data);
	return rc;
}

/* ---- raw hosts --------------------------------------------------------------------- */

/* host_connect registers system (NAMED actor named, UNNAMED template
 * named-tmpl, stateful, action "A") with auth; asserts it is accepted. */
static raw_stream *host_connect(const char *auth, const char *system, const char *named)
{
	char tmpl[64];
	snprintf(tmpl, sizeof tmpl, "%s-tmpl", named);
	raw_stream *s =
	    raw_stream_open_auth(gw.target, tls, RAW_METHOD_CONNECT, it_ms(120000), auth);
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(raw_host_register(s, system, named, tmpl, true, it_ms(10000)),
	              "the registration of %s was not answered", system);
	return s;
}

/* host_refused: registering system with auth ends the stream; returns its
 * status, details in msg. */
static int host_refused(const char *auth, const char *system, char *msg, size_t n)
{
	raw_stream *s =
	    raw_stream_open_auth(gw.target, tls, RAW_METHOD_CONNECT, it_ms(20000), auth);
	ck_assert_ptr_nonnull(s);
	raw_registration r;
	raw_stream_send_msg(s, &raw_registration_init(&r, system, "x", "x-tmpl", true)->base,
	                    it_ms(10000));
	ProtobufCMessage *m =
	    raw_stream_recv(s, &spawn__gateway__v1__gateway_message__descriptor, it_ms(10000));
	ck_assert_msg(m == NULL, "the registration of %s was answered", system);
	int rc = raw_stream_status(s, it_ms(10000), msg, n);
	raw_stream_close(s);
	return rc;
}

/* next_task waits for the next task on s. Free with
 * protobuf_c_message_free_unpacked. */
static Spawn__Gateway__V1__InvocationTask *next_task(raw_stream *s,
                                                     Spawn__Gateway__V1__GatewayMessage **gm)
{
	*gm = (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
	    s, &spawn__gateway__v1__gateway_message__descriptor, it_ms(20000));
	ck_assert_msg(*gm != NULL, "no task came (the stream is gone?)");
	ck_assert_int_eq((*gm)->msg_case, SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION);
	return (*gm)->invocation;
}

static const char *md_of(const Spawn__Context *ctx, const char *key)
{
	for (size_t i = 0; ctx && i < ctx->n_metadata; i++)
		if (!strcasecmp(ctx->metadata[i]->key, key))
			return ctx->metadata[i]->value;
	return NULL;
}

#define STATE_URL "type.googleapis.com/raw.State"

/* reply answers task id: with state (NULL: none), and with a side effect
 * to to_system/to_actor.A carrying "+1000000" when to_system is set. */
static void reply(raw_stream *s, uint64_t id, const char *state, const char *to_system,
                  const char *to_actor)
{
	Google__Protobuf__Any st = GOOGLE__PROTOBUF__ANY__INIT;
	st.type_url = STATE_URL;
	st.value.data = (uint8_t *)(state ? state : "");
	st.value.len = state ? strlen(state) : 0;
	Spawn__Context ctx = SPAWN__CONTEXT__INIT;
	ctx.state = &st;
	Spawn__ActorInvocationResponse resp = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	if (state)
		resp.updated_context = &ctx;
	Spawn__Actors__ActorSystem esys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	Spawn__Actors__ActorId eid = SPAWN__ACTORS__ACTOR_ID__INIT;
	Spawn__Actors__Actor eact = SPAWN__ACTORS__ACTOR__INIT;
	Spawn__InvocationRequest erq = SPAWN__INVOCATION_REQUEST__INIT;
	Google__Protobuf__Any add = GOOGLE__PROTOBUF__ANY__INIT;
	Spawn__SideEffect eff = SPAWN__SIDE_EFFECT__INIT;
	Spawn__SideEffect *effs[1] = {&eff};
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	if (to_system) {
		esys.name = (char *)to_system;
		eid.name = (char *)to_actor;
		eid.system = (char *)to_system;
		eact.id = &eid;
		add.type_url = "type.googleapis.com/raw.Text";
		add.value.data = (uint8_t *)"+1000000";
		add.value.len = 8;
		erq.system = &esys;
		erq.actor = &eact;
		erq.action_name = "A";
		erq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
		erq.value = &add;
		eff.request = &erq;
		wf.n_effects = 1;
		wf.effects = effs;
		resp.workflow = &wf;
	}
	Spawn__Gateway__V1__InvocationResult res = SPAWN__GATEWAY__V1__INVOCATION_RESULT__INIT;
	res.request_id = id;
	res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE;
	res.response = &resp;
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT;
	hm.result = &res;
	ck_assert(raw_stream_send_msg(s, &hm.base, it_ms(10000)));
}

static void reply_error(raw_stream *s, uint64_t id, int code, const char *message)
{
	Spawn__Gateway__V1__HostError he = SPAWN__GATEWAY__V1__HOST_ERROR__INIT;
	he.code = code;
	he.message = (char *)message;
	Spawn__Gateway__V1__InvocationResult res = SPAWN__GATEWAY__V1__INVOCATION_RESULT__INIT;
	res.request_id = id;
	res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR;
	res.error = &he;
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT;
	hm.result = &res;
	ck_assert(raw_stream_send_msg(s, &hm.base, it_ms(10000)));
}

/* serve_one: a call of system/actor.A with auth in a thread; s gets its
 * task and answers it plainly; the call must end OK. Returns nothing; the
 * task's context metadata is checked by the caller through *ctx_check. */
static void serve_one(raw_stream *s, const char *system, const char *actor, const char *auth)
{
	call c;
	call_start(&c, system, actor, auth);
	Spawn__Gateway__V1__GatewayMessage *gm;
	Spawn__Gateway__V1__InvocationTask *t = next_task(s, &gm);
	ck_assert_str_eq(t->invocation->actor->name, actor);
	reply(s, t->request_id, NULL, NULL, NULL);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	call_end(&c, GRPC_STATUS_OK, NULL);
}

/* ---- the tests --------------------------------------------------------------------- */

START_TEST(clients_invoke_and_spawn_only_what_their_principal_may)
{
	start_gateway("clients");
	raw_stream *orders = host_connect(T_ORDERS, "orders", "desk");
	char msg[600];

	/* Allowed: the host gets the task, without the token that was put in
	 * the request metadata, with the rest of it. */
	call c;
	call_start(&c, "orders", "desk", T_CLIENT);
	Spawn__Gateway__V1__GatewayMessage *gm;
	Spawn__Gateway__V1__InvocationTask *t = next_task(orders, &gm);
	const Spawn__Context *ctx = t->invocation->current_context;
	ck_assert_msg(md_of(ctx, "authorization") == NULL,
	              "the host received the authorization metadata");
	ck_assert_msg(md_of(ctx, "trace") && !strcmp(md_of(ctx, "trace"), "t1"),
	              "the host lost the trace metadata");
	reply(orders, t->request_id, NULL, NULL, NULL);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	call_end(&c, GRPC_STATUS_OK, NULL);

	/* A token for the wrong system. */
	expect(invoke("bank", "acct", "A", T_CLIENT, msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED, "principal 'client' may not invoke bank/acct.A",
	       "client on bank");
	/* No token, an unknown one, a malformed header. */
	expect(invoke("orders", "desk", "A", NULL, msg, sizeof msg), msg,
	       GRPC_STATUS_UNAUTHENTICATED, "no credential", "no token");
	expect(invoke("orders", "desk", "A", "Bearer not-a-known-token", msg, sizeof msg), msg,
	       GRPC_STATUS_UNAUTHENTICATED, "unknown bearer token", "bad token");
	ck_assert_msg(strstr(msg, "not-a-known-token") == NULL, "the answer echoes the token");
	expect(invoke("orders", "desk", "A", "Basic Y2xpZW50", msg, sizeof msg), msg,
	       GRPC_STATUS_UNAUTHENTICATED, "Bearer", "Basic credentials");
	/* A principal that holds a token *and* sends a wrong one: the token
	 * decides. */
	expect(invoke("orders", "desk", "A", "Bearer client-token2", msg, sizeof msg), msg,
	       GRPC_STATUS_UNAUTHENTICATED, "unknown bearer token", "a token's prefix");

	/* limited: only instances of desk-tmpl, only action A. */
	expect(invoke("orders", "desk", "A", T_LIMITED, msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED, "principal 'limited' may not invoke orders/desk.A",
	       "limited on desk");
	expect(spawn_instance("orders", "desk-7", "desk-tmpl", T_LIMITED, msg, sizeof msg), msg,
	       GRPC_STATUS_OK, NULL, "limited spawns desk-7");
	serve_one(orders, "orders", "desk-7", T_LIMITED); /* matched through its template */
	expect(invoke("orders", "desk-7", "B", T_LIMITED, msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED, "may not invoke orders/desk-7.B",
	       "limited, action B");
	expect(spawn_instance("bank", "acct-7", "acct-tmpl", T_LIMITED, msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED, "principal 'limited' may not spawn bank/acct-7",
	       "limited spawns in bank");
	expect(spawn_instance("orders", "desk-8", "desk-tmpl", NULL, msg, sizeof msg), msg,
	       GRPC_STATUS_UNAUTHENTICATED, NULL, "spawn without a token");
	raw_stream_close(orders);
	it_gateway_stop(&gw);
	ck_assert_msg(!it_file_contains(gw.p->errlog, "client-token"),
	              "a token is in the gateway's log");
}
END_TEST

START_TEST(hosts_register_only_systems_their_principal_may_serve)
{
	start_gateway("hosts");
	char msg[600];
	expect(host_refused(T_EVIL, "orders", msg, sizeof msg), msg, GRPC_STATUS_PERMISSION_DENIED,
	       "principal 'evil-host' may not serve system 'orders'", "evil registers orders");
	expect(host_refused(NULL, "evil", msg, sizeof msg), msg, GRPC_STATUS_UNAUTHENTICATED,
	       "no credential", "a host without a token");
	expect(host_refused("Bearer evil-token-2", "evil", msg, sizeof msg), msg,
	       GRPC_STATUS_UNAUTHENTICATED, "unknown bearer token", "a host with a bad token");
	/* A client's token does not make a host either. */
	expect(host_refused(T_CLIENT, "orders", msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED, "principal 'client' may not serve system 'orders'",
	       "a client registers orders");
	/* The happy paths: each on its own system. */
	raw_stream *evil = host_connect(T_EVIL, "evil", "mallory");
	raw_stream *orders = host_connect(T_ORDERS, "orders", "desk");
	serve_one(orders, "orders", "desk", T_CLIENT);
	serve_one(evil, "evil", "mallory", T_ADMIN);
	raw_stream_close(evil);
	raw_stream_close(orders);
}
END_TEST

/* The example: a host of one system changed another system's
 * actor by +1,000,000 through a side effect. Now the turn fails, its
 * state is not kept, and the effect never reaches the other system; a
 * host whose principal may invoke the target does get through. */
START_TEST(a_host_of_one_system_cannot_add_a_million_to_another_systems_actor)
{
	start_gateway("cross_system");
	raw_stream *bank = host_connect(T_BANK, "bank", "acct");
	raw_stream *evil = host_connect(T_EVIL, "evil", "mallory");
	raw_stream *partner = host_connect(T_PARTNER, "partner", "pal");

	/* evil/mallory answers with state "S2" and an effect bank/acct.A(+1000000). */
	call c;
	call_start(&c, "evil", "mallory", T_ADMIN);
	Spawn__Gateway__V1__GatewayMessage *gm;
	Spawn__Gateway__V1__InvocationTask *t = next_task(evil, &gm);
	reply(evil, t->request_id, "S2", "bank", "acct");
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	call_end(&c, GRPC_STATUS_PERMISSION_DENIED,
	         "side effect 0 of evil/mallory to bank/acct.A refused: principal 'evil-host' of "
	         "system 'evil' may not invoke it");

	/* The state of the refused turn was not kept. */
	call_start(&c, "evil", "mallory", T_ADMIN);
	t = next_task(evil, &gm);
	const Spawn__Context *ctx = t->invocation->current_context;
	ck_assert_msg(!ctx || !ctx->state || ctx->state->value.len == 0,
	              "the refused turn's state was kept");
	reply(evil, t->request_id, NULL, NULL, NULL);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	call_end(&c, GRPC_STATUS_OK, NULL);

	/* bank/acct's next task is a direct call, not the effect (which,
	 * had it gone out, was queued before it). */
	call_start(&c, "bank", "acct", T_ADMIN);
	t = next_task(bank, &gm);
	ck_assert_msg(!t->invocation->caller || !t->invocation->caller->name ||
	                  !t->invocation->caller->name[0],
	              "bank/acct received a task from %s/%s", t->invocation->caller->system,
	              t->invocation->caller->name);
	ck_assert_msg(t->invocation->payload_case != SPAWN__ACTOR_INVOCATION__PAYLOAD_VALUE ||
	                  t->invocation->value->value.len == 0,
	              "bank/acct received the +1000000");
	reply(bank, t->request_id, NULL, NULL, NULL);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	call_end(&c, GRPC_STATUS_OK, NULL);

	/* Allowed: partner-host may invoke bank/acct.A. */
	call_start(&c, "partner", "pal", T_ADMIN);
	t = next_task(partner, &gm);
	reply(partner, t->request_id, "P1", "bank", "acct");
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	call_end(&c, GRPC_STATUS_OK, NULL);
	t = next_task(bank, &gm);
	ck_assert_msg(t->invocation->caller && t->invocation->caller->name &&
	                  !strcmp(t->invocation->caller->name, "pal") &&
	                  !strcmp(t->invocation->caller->system, "partner"),
	              "the effect did not come from partner/pal");
	ck_assert_uint_eq(t->invocation->value->value.len, 8);
	ck_assert(!memcmp(t->invocation->value->value.data, "+1000000", 8));
	reply(bank, t->request_id, NULL, NULL, NULL);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	/* An effect inside its own system needs no invoke right. */
	call_start(&c, "evil", "mallory", T_ADMIN);
	t = next_task(evil, &gm);
	reply(evil, t->request_id, "S3", "evil", "mallory");
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	call_end(&c, GRPC_STATUS_OK, NULL);
	t = next_task(evil, &gm);
	ck_assert_str_eq(t->invocation->caller->name, "mallory");
	reply(evil, t->request_id, NULL, NULL, NULL);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	raw_stream_close(bank);
	raw_stream_close(evil);
	raw_stream_close(partner);
}
END_TEST

START_TEST(admin_calls_need_the_admin_role_and_are_logged_with_the_principal)
{
	start_gateway("admin");
	raw_stream *orders = host_connect(T_ORDERS, "orders", "desk");
	call c;
	call_start(&c, "orders", "desk", T_CLIENT);
	Spawn__Gateway__V1__GatewayMessage *gm;
	Spawn__Gateway__V1__InvocationTask *t = next_task(orders, &gm);
	reply(orders, t->request_id, "D1", NULL, NULL);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	call_end(&c, GRPC_STATUS_OK, NULL);

	char msg[600];
	expect(get_state("orders", "desk", T_CLIENT, msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED, "principal 'client' is not an admin (Admin.GetState)",
	       "GetState by a client");
	ck_assert(it_file_contains(
	    gw.p->errlog, "admin GetState by principal 'client': refused PERMISSION_DENIED"));
	expect(get_state("orders", "desk", NULL, msg, sizeof msg), msg, GRPC_STATUS_UNAUTHENTICATED,
	       "no credential", "GetState without a token");
	ck_assert(it_file_contains(gw.p->errlog,
	                           "admin GetState by an unauthenticated caller: refused "
	                           "UNAUTHENTICATED"));
	int rc = raw_unary_auth(gw.target, tls, M_KEY_ROT, "", 0, it_ms(20000), T_ORDERS, msg,
	                        sizeof msg);
	expect(rc, msg, GRPC_STATUS_PERMISSION_DENIED, "not an admin (Admin.KeyRotation)",
	       "KeyRotation by a host");
	ck_assert(it_file_contains(gw.p->errlog,
	                           "admin KeyRotation by principal 'orders-host': refused"));
	ck_assert(!it_file_contains(gw.p->errlog, "by principal 'admin'"));
	expect(get_state("orders", "desk", T_ADMIN, msg, sizeof msg), msg, GRPC_STATUS_OK, NULL,
	       "GetState by the admin");
	ck_assert(it_file_contains(gw.p->errlog, "admin GetState by principal 'admin': allowed"));
	raw_stream_close(orders);
}
END_TEST

START_TEST(the_policy_is_reloaded_on_sighup_and_a_broken_file_keeps_the_old_one)
{
	start_gateway("reload");
	raw_stream *orders = host_connect(T_ORDERS, "orders", "desk");
	raw_stream *bank = host_connect(T_BANK, "bank", "acct");
	char msg[600], line[256];
	expect(invoke("bank", "acct", "A", T_CLIENT, msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED, "may not invoke bank/acct.A", "client on bank, v1");
	serve_one(orders, "orders", "desk", T_CLIENT);

	/* v2: client may invoke bank; orders-host serves nothing any more. */
	write_policy(2);
	it_proc_signal(gw.p, SIGHUP);
	ck_assert_msg(it_proc_wait_line(gw.p, "access ", it_ms(10000), line, sizeof line),
	              "no reload line");
	ck_assert_str_eq(line, "access reloaded 7");
	/* The orders host was disconnected, PERMISSION_DENIED. */
	ck_assert_ptr_null(raw_stream_recv(orders, &spawn__gateway__v1__gateway_message__descriptor,
	                                   it_ms(10000)));
	expect(raw_stream_status(orders, it_ms(10000), msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED,
	       "principal 'orders-host' may no longer serve system 'orders'", "orders host stream");
	raw_stream_close(orders);
	expect(host_refused(T_ORDERS, "orders", msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED, "may not serve system 'orders'",
	       "orders registers again");
	serve_one(bank, "bank", "acct", T_CLIENT); /* the new right */

	/* A broken file: logged with its line, the v2 policy stays. */
	const char *path = write_policy(-1);
	it_proc_signal(gw.p, SIGHUP);
	ck_assert_msg(it_proc_wait_line(gw.p, "access ", it_ms(10000), line, sizeof line),
	              "no reload line");
	ck_assert_str_eq(line, "access not reloaded");
	char want[700];
	snprintf(want, sizeof want, "%s:3: unknown key 'hots'", path);
	ck_assert_msg(it_file_contains(gw.p->errlog, want), "the log does not say '%s'", want);
	serve_one(bank, "bank", "acct", T_CLIENT);
	expect(invoke("evil", "mallory", "A", T_CLIENT, msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED, NULL, "client on evil, v2");
	raw_stream_close(bank);
	it_gateway_stop(&gw);
}
END_TEST

START_TEST(a_hosts_own_auth_codes_reach_the_caller_as_unknown_with_a_prefix)
{
	start_gateway("host_codes");
	raw_stream *orders = host_connect(T_ORDERS, "orders", "desk");
	static const struct {
		int code, want;
		const char *msg;
	} cases[] = {
	    {GRPC_STATUS_PERMISSION_DENIED, GRPC_STATUS_UNKNOWN,
	     "actor host answered PERMISSION_DENIED: not yours"},
	    {GRPC_STATUS_UNAUTHENTICATED, GRPC_STATUS_UNKNOWN,
	     "actor host answered UNAUTHENTICATED: not yours"},
	    {GRPC_STATUS_FAILED_PRECONDITION, GRPC_STATUS_FAILED_PRECONDITION, "not yours"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		call c;
		call_start(&c, "orders", "desk", T_CLIENT);
		Spawn__Gateway__V1__GatewayMessage *gm;
		Spawn__Gateway__V1__InvocationTask *t = next_task(orders, &gm);
		reply_error(orders, t->request_id, cases[i].code, "not yours");
		protobuf_c_message_free_unpacked(&gm->base, NULL);
		pthread_join(c.thread, NULL);
		ck_assert_msg(c.rc == cases[i].want, "host code %d: got %d (%s)", cases[i].code,
		              c.rc, c.msg);
		ck_assert_str_eq(c.msg, cases[i].msg);
	}
	raw_stream_close(orders);
}
END_TEST

START_TEST(a_bad_policy_stops_start_up_and_hash_token_hashes_stdin)
{
	it_world_init(&w, "startup");
	char h[80];
	hash_token("tok", h, sizeof h);
	ck_assert_str_eq(h,
	                 "sha256:1a7674eb4ee78df7e1ac439a93c3fa8e3c945784d4dec9fd8e3011738b2f1d62");
	char cmd[700];
	snprintf(cmd, sizeof cmd, "'%s/gateway/spawn-gateway' --hash-token </dev/null 2>/dev/null",
	         it_build_dir());
	int st = system(cmd);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "an empty token: status %d", st);

	const char *path = write_policy(-1);
	const char *args[] = {"--access", path, NULL};
	it_proc *p = it_gateway_spawn(&w, "bad", "state.db", args, NULL);
	ck_assert(it_proc_wait_exit(p, it_ms(15000)));
	ck_assert_int_eq(it_exit_code(p), 2);
	char want[700];
	snprintf(want, sizeof want, "%s:3: unknown key 'hots'", path);
	ck_assert_msg(it_file_contains(p->errlog, want), "stderr does not say '%s'", want);

	const char *args2[] = {"--access", "/nonexistent/policy.yaml", NULL};
	p = it_gateway_spawn(&w, "missing", "state.db", args2, NULL);
	ck_assert(it_proc_wait_exit(p, it_ms(15000)));
	ck_assert_int_eq(it_exit_code(p), 2);
	ck_assert(it_file_contains(p->errlog, "/nonexistent/policy.yaml: cannot open"));

	/* The good policy starts. */
	write_policy(1);
	it_gateway_start(&w, &gw, "good", "state.db", args, NULL);
	it_gateway_stop(&gw);
}
END_TEST

/* The principal from the client certificate (mTLS, --tls-client-ca): the
 * test PKI's identities are spiffe://spawn.test/WHO and WHO.spawn.test; the
 * policy lists client by URI, admin by URI and DNS, orders-host by DNS, and
 * not "other". A bearer token sent over the same connection decides. */
static const it_tls *cert_of(it_tls *t, char bufs[3][700], const char *who)
{
	char f[64];
	memset(t, 0, sizeof *t);
	t->ca = it_cert(&w, "ca.pem", bufs[0], sizeof bufs[0]);
	snprintf(f, sizeof f, "%s.pem", who);
	t->cert = it_cert(&w, f, bufs[1], sizeof bufs[1]);
	snprintf(f, sizeof f, "%s.key", who);
	t->key = it_cert(&w, f, bufs[2], sizeof bufs[2]);
	return t;
}

START_TEST(the_client_certificate_names_the_principal)
{
	it_world_init(&w, "mtls");
	char cert[700], key[700], ca[700];
	const char *args[] = {"--access",
	                      write_policy(1),
	                      "--tls-cert",
	                      it_cert(&w, "server-chain.pem", cert, sizeof cert),
	                      "--tls-key",
	                      it_cert(&w, "server.key", key, sizeof key),
	                      "--tls-client-ca",
	                      it_cert(&w, "ca.pem", ca, sizeof ca),
	                      NULL};
	it_gateway_start(&w, &gw, "gw", "state.db", args, NULL);
	it_tls t_host, t_client, t_admin, t_other;
	char b_host[3][700], b_client[3][700], b_admin[3][700], b_other[3][700];
	cert_of(&t_host, b_host, "host");
	cert_of(&t_client, b_client, "client");
	cert_of(&t_admin, b_admin, "admin");
	cert_of(&t_other, b_other, "other");
	char msg[600];

	/* Hosts: DNS identity host.spawn.test is orders-host. */
	tls = &t_host;
	raw_stream *orders = host_connect(NULL, "orders", "desk");
	expect(host_refused(NULL, "bank", msg, sizeof msg), msg, GRPC_STATUS_PERMISSION_DENIED,
	       "principal 'orders-host' may not serve system 'bank'", "host cert registers bank");
	tls = &t_other;
	expect(host_refused(NULL, "orders", msg, sizeof msg), msg, GRPC_STATUS_UNAUTHENTICATED,
	       "the client certificate's identity is not in the access policy",
	       "an unknown certificate registers orders");

	/* Clients: URI identity spiffe://spawn.test/client is client. */
	tls = &t_client;
	serve_one(orders, "orders", "desk", NULL);
	expect(invoke("bank", "acct", "A", NULL, msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED, "principal 'client' may not invoke bank/acct.A",
	       "client cert on bank");
	expect(get_state("orders", "desk", NULL, msg, sizeof msg), msg,
	       GRPC_STATUS_PERMISSION_DENIED, "principal 'client' is not an admin",
	       "client cert on Admin");
	/* A token on the same connection decides, a bad one too. */
	expect(get_state("orders", "desk", T_ADMIN, msg, sizeof msg), msg, GRPC_STATUS_OK, NULL,
	       "client cert + admin token on Admin");
	expect(invoke("orders", "desk", "A", "Bearer wrong", msg, sizeof msg), msg,
	       GRPC_STATUS_UNAUTHENTICATED, "unknown bearer token", "client cert + a bad token");
	tls = &t_other;
	expect(invoke("orders", "desk", "A", NULL, msg, sizeof msg), msg,
	       GRPC_STATUS_UNAUTHENTICATED, "not in the access policy", "other cert on orders");
	/* A certificate that only opens the connection, and a token that names
	 * the principal. */
	serve_one(orders, "orders", "desk", T_CLIENT);

	/* Admin by its certificate; the log names the principal. */
	tls = &t_admin;
	expect(get_state("orders", "desk", NULL, msg, sizeof msg), msg, GRPC_STATUS_OK, NULL,
	       "admin cert on Admin");
	ck_assert(it_file_contains(gw.p->errlog, "admin GetState by principal 'admin': allowed"));
	ck_assert(it_file_contains(
	    gw.p->errlog, "admin GetState by principal 'client': refused PERMISSION_DENIED"));
	raw_stream_close(orders);
	tls = NULL;
	it_gateway_stop(&gw);
}
END_TEST

static Suite *access_suite(void)
{
	it_case cases[] = {
	    {"clients", clients_invoke_and_spawn_only_what_their_principal_may},
	    {"hosts", hosts_register_only_systems_their_principal_may_serve},
	    {"cross_system", a_host_of_one_system_cannot_add_a_million_to_another_systems_actor},
	    {"admin", admin_calls_need_the_admin_role_and_are_logged_with_the_principal},
	    {"reload", the_policy_is_reloaded_on_sighup_and_a_broken_file_keeps_the_old_one},
	    {"host_codes", a_hosts_own_auth_codes_reach_the_caller_as_unknown_with_a_prefix},
	    {"startup", a_bad_policy_stops_start_up_and_hash_token_hashes_stdin},
	    {"mtls", the_client_certificate_names_the_principal},
	};
	return IT_SUITE("access", cases, teardown, 120);
}

int main(void)
{
	return it_run(access_suite());
}
