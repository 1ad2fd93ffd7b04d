/* sdk_tls_test.c - libspawn's TLS and token options (spawn_security_opts)
 * against the fake gateway serving TLS with client certificates required
 * (mTLS), over real loopback sockets, with certificates made by
 * tests/tls/mkcerts.sh into a temporary directory:
 *   CA + certificate + key reach the gateway; no client certificate, or a
 *   CA that did not sign the gateway, fail at the handshake (UNAVAILABLE);
 *   the token travels as "authorization: Bearer <token>" exactly once per
 *   call and on the host's stream; the environment fallbacks; files that
 *   cannot be read fail the create (SPAWN_ETLS). */
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

static char certs[256]; /* the temporary directory holding the PKI */
static char path_buf[16][512];
static int n_paths;

/* P returns the path of certs/name (static storage, per test process). */
static const char *P(const char *name)
{
	char *p = path_buf[n_paths++ % 16];
	snprintf(p, sizeof path_buf[0], "%s/%s", certs, name);
	return p;
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

/* The mTLS fake gateway: the server certificate of the test CA, client
 * certificates required and verified against that CA. */
static fake_gw *start_mtls_gw(void)
{
	fake_gw *gw =
	    fake_gw_start_tls("127.0.0.1:0", P("server-chain.pem"), P("server.key"), P("ca.pem"));
	ck_assert_ptr_nonnull(gw);
	return gw;
}

/* ---- a synchronous call on a helper thread ---------------------------------- */

typedef struct sync_call {
	spawn_client *c;
	int64_t timeout_ms;
	spawn_reply reply;
	int rc;
	pthread_t t;
} sync_call;

static void *sync_main(void *arg)
{
	sync_call *s = arg;
	spawn_request req = {.system = "sys", .actor = "a", .action = "Get"};
	s->rc = spawn_client_invoke(s->c, &req, &s->reply, s->timeout_ms);
	return NULL;
}

static void sync_start(sync_call *s, spawn_client *c, int64_t timeout_ms)
{
	memset(s, 0, sizeof *s);
	s->c = c;
	s->timeout_ms = timeout_ms;
	ck_assert_int_eq(pthread_create(&s->t, NULL, sync_main, s), 0);
}

static void sync_join(sync_call *s)
{
	struct timespec ts = abs_deadline(T_MS);
	ck_assert_int_eq(pthread_timedjoin_np(s->t, NULL, &ts), 0);
}

/* serve_one accepts one Invoke, checks its authorization metadata (want
 * NULL = none at all) and answers it with a Noop. */
static void serve_one(fake_gw *gw, const char *want_auth)
{
	fake_call *c = fake_gw_accept(gw, T_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(fake_call_method(c), "/spawn.gateway.v1.ActorGateway/Invoke");
	char auth[256] = "";
	size_t n = fake_call_metadata(c, "authorization", auth, sizeof auth);
	if (want_auth) {
		ck_assert_uint_eq(n, 1);
		ck_assert_str_eq(auth, want_auth);
	} else {
		ck_assert_uint_eq(n, 0);
	}
	ProtobufCMessage *req = fake_call_recv(c, &spawn__invocation_request__descriptor, T_MS);
	ck_assert_ptr_nonnull(req);
	protobuf_c_message_free_unpacked(req, NULL);
	Spawn__RequestStatus rs = SPAWN__REQUEST_STATUS__INIT;
	rs.status = SPAWN__STATUS__OK;
	Spawn__Noop noop = SPAWN__NOOP__INIT;
	Spawn__InvocationResponse resp = SPAWN__INVOCATION_RESPONSE__INIT;
	resp.status = &rs;
	resp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_NOOP;
	resp.noop = &noop;
	ck_assert(fake_call_send(c, &resp.base, T_MS));
	ck_assert(fake_call_finish(c, GRPC_STATUS_OK, "", T_MS));
	fake_call_free(c);
}

/* call_ok makes one call that the gateway answers, checking the token. */
static void call_ok(fake_gw *gw, spawn_client *cl, const char *want_auth)
{
	sync_call s;
	sync_start(&s, cl, T_MS);
	serve_one(gw, want_auth);
	sync_join(&s);
	ck_assert_int_eq(s.rc, SPAWN_OK);
	spawn_reply_fini(&s.reply);
}

/* call_refused makes one call that must fail at the handshake: no call
 * ever reaches the gateway. */
static void call_refused(fake_gw *gw, spawn_client *cl)
{
	spawn_request req = {.system = "sys", .actor = "a", .action = "Get"};
	spawn_reply r;
	/* fail_fast and no deadline: the failed handshake answers at once. */
	ck_assert_int_eq(spawn_client_invoke(cl, &req, &r, 0), SPAWN_UNAVAILABLE);
	ck_assert_int_eq(r.status, SPAWN_UNAVAILABLE);
	ck_assert_ptr_nonnull(r.message);
	spawn_reply_fini(&r);
	ck_assert_ptr_null(fake_gw_accept(gw, 200));
}

static spawn_client *client_with(fake_gw *gw, spawn_security_opts sec)
{
	spawn_client_opts o = {.target = fake_gw_target(gw), .fail_fast = true, .security = sec};
	spawn_client *cl = NULL;
	ck_assert_int_eq(spawn_client_create_opts(&cl, &o), SPAWN_OK);
	return cl;
}

/* ---- tests ------------------------------------------------------------------- */

START_TEST(mtls_client_reaches_the_gateway_with_its_token_once_per_call)
{
	fake_gw *gw = start_mtls_gw();
	spawn_client *cl = client_with(gw, (spawn_security_opts){.tls_ca = P("ca.pem"),
	                                                         .tls_cert = P("client.pem"),
	                                                         .tls_key = P("client.key"),
	                                                         .token = "tok-c1"});
	for (int i = 0; i < 3; i++)
		call_ok(gw, cl, "Bearer tok-c1");
	spawn_client_destroy(cl);

	/* No token: no authorization entry at all. */
	cl = client_with(gw, (spawn_security_opts){.tls_ca = P("ca.pem"),
	                                           .tls_cert = P("client-chain.pem"),
	                                           .tls_key = P("client.key")});
	call_ok(gw, cl, NULL);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(mtls_over_a_unix_socket)
{
	/* TLS applies to unix sockets too; gRPC names the peer "localhost". */
	char addr[300];
	snprintf(addr, sizeof addr, "unix:%s/gw.sock", certs);
	fake_gw *gw = fake_gw_start_tls(addr, P("server-chain.pem"), P("server.key"), P("ca.pem"));
	ck_assert_ptr_nonnull(gw);
	spawn_client *cl = client_with(gw, (spawn_security_opts){.tls_ca = P("ca.pem"),
	                                                         .tls_cert = P("client.pem"),
	                                                         .tls_key = P("client.key"),
	                                                         .token = "tok-unix"});
	call_ok(gw, cl, "Bearer tok-unix");
	spawn_client_destroy(cl);
	cl = client_with(gw, (spawn_security_opts){.tls_ca = P("ca.pem")}); /* no certificate */
	call_refused(gw, cl);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(mtls_without_a_client_certificate_fails_the_handshake)
{
	fake_gw *gw = start_mtls_gw();
	spawn_client *cl = client_with(
	    gw, (spawn_security_opts){
	            .tls_ca = P("ca.pem"), .tls_cert = "", .tls_key = "", .token = "tok"});
	call_refused(gw, cl);
	spawn_client_destroy(cl);

	/* A client certificate from a CA the gateway does not trust: refused too. */
	cl = client_with(gw, (spawn_security_opts){.tls_ca = P("ca.pem"),
	                                           .tls_cert = P("rogue.pem"),
	                                           .tls_key = P("rogue.key")});
	call_refused(gw, cl);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(trusting_the_wrong_ca_fails_the_handshake)
{
	fake_gw *gw = start_mtls_gw();
	spawn_client *cl = client_with(gw, (spawn_security_opts){.tls_ca = P("rogue-ca.pem"),
	                                                         .tls_cert = P("client.pem"),
	                                                         .tls_key = P("client.key")});
	call_refused(gw, cl);
	spawn_client_destroy(cl);

	/* Plaintext against a TLS gateway: refused as well. */
	cl = client_with(gw, (spawn_security_opts){.tls_ca = "", .tls_cert = "", .tls_key = ""});
	call_refused(gw, cl);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(server_name_override_is_checked_against_the_certificate)
{
	fake_gw *gw = start_mtls_gw();
	spawn_security_opts sec = {.tls_ca = P("ca.pem"),
	                           .tls_cert = P("client.pem"),
	                           .tls_key = P("client.key"),
	                           .tls_server_name = "localhost"};
	spawn_client *cl = client_with(gw, sec);
	call_ok(gw, cl, NULL);
	spawn_client_destroy(cl);

	sec.tls_server_name = "gateway.elsewhere.test"; /* not in the certificate */
	cl = client_with(gw, sec);
	call_refused(gw, cl);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(environment_fallbacks_are_read_when_options_are_not_given)
{
	fake_gw *gw = start_mtls_gw();
	/* This test runs in its own process (check forks): setenv stays here. */
	setenv("SPAWN_TLS_CA", P("ca.pem"), 1);
	setenv("SPAWN_TLS_CERT", P("client.pem"), 1);
	setenv("SPAWN_TLS_KEY", P("client.key"), 1);
	setenv("SPAWN_TLS_SERVER_NAME", "localhost", 1);
	setenv("SPAWN_TOKEN", "tok-env", 1);
	spawn_client *cl = NULL;
	ck_assert_int_eq(spawn_client_create(&cl, fake_gw_target(gw)), SPAWN_OK);
	call_ok(gw, cl, "Bearer tok-env");
	spawn_client_destroy(cl);

	/* An option wins over its variable; "" means none. */
	cl = client_with(gw, (spawn_security_opts){.token = "tok-opt"});
	call_ok(gw, cl, "Bearer tok-opt");
	spawn_client_destroy(cl);
	cl = client_with(gw, (spawn_security_opts){.tls_cert = "", .tls_key = ""});
	call_refused(gw, cl);
	spawn_client_destroy(cl);

	/* The environment's client certificate is not the gateway's CA's. */
	setenv("SPAWN_TLS_CERT", P("rogue.pem"), 1);
	setenv("SPAWN_TLS_KEY", P("rogue.key"), 1);
	ck_assert_int_eq(spawn_client_create(&cl, fake_gw_target(gw)), SPAWN_OK);
	spawn_request req = {.system = "sys", .actor = "a", .action = "Get"};
	spawn_reply r;
	/* Not fail_fast: a call with a deadline waits for a handshake that
	 * never succeeds. */
	ck_assert_int_eq(spawn_client_invoke(cl, &req, &r, 300), SPAWN_DEADLINE_EXCEEDED);
	spawn_reply_fini(&r);
	ck_assert_ptr_null(fake_gw_accept(gw, 100));
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(token_over_plaintext_and_none)
{
	fake_gw *gw = fake_gw_start("127.0.0.1:0");
	ck_assert_ptr_nonnull(gw);
	unsetenv("SPAWN_TLS_CA");
	unsetenv("SPAWN_TOKEN");
	spawn_client *cl = client_with(gw, (spawn_security_opts){.token = "plain-tok"});
	call_ok(gw, cl, "Bearer plain-tok");
	call_ok(gw, cl, "Bearer plain-tok");
	spawn_client_destroy(cl);
	cl = client_with(gw, (spawn_security_opts){0});
	call_ok(gw, cl, NULL);
	spawn_client_destroy(cl);
	/* A TLS client against a plaintext gateway: refused. */
	cl = client_with(gw, (spawn_security_opts){.tls_ca = P("ca.pem")});
	call_refused(gw, cl);
	spawn_client_destroy(cl);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(unusable_files_fail_the_create)
{
	const char *target = "127.0.0.1:1";
	char notpem[512];
	snprintf(notpem, sizeof notpem, "%s/ca.db/serial", certs); /* hex, no PEM */
	struct {
		spawn_security_opts sec;
		int want;
	} cases[] = {
	    {{.tls_ca = P("missing.pem")}, SPAWN_ETLS},
	    {{.tls_ca = notpem}, SPAWN_ETLS},
	    {{.tls_ca = P("ca.pem"), .tls_cert = P("client.pem"), .tls_key = P("missing.key")},
	     SPAWN_ETLS},
	    {{.tls_ca = P("ca.pem"), .tls_cert = P("missing.pem"), .tls_key = P("client.key")},
	     SPAWN_ETLS},
	    {{.tls_ca = P("ca.pem"), .tls_cert = P("client.pem")}, SPAWN_ETLS},      /* no key */
	    {{.tls_ca = P("ca.pem"), .tls_key = P("client.key")}, SPAWN_ETLS},       /* no cert */
	    {{.tls_cert = P("client.pem"), .tls_key = P("client.key")}, SPAWN_ETLS}, /* no CA */
	    {{.tls_server_name = "localhost"}, SPAWN_ETLS},                          /* no CA */
	    {{.token = "two\nlines"}, SPAWN_EINVAL},
	    {{.tls_ca = P("ca.pem"),
	      .tls_cert = P("client.pem"),
	      .tls_key = P("client.key"),
	      .token = "ok"},
	     SPAWN_OK},
	};
	unsetenv("SPAWN_TLS_CA");
	unsetenv("SPAWN_TLS_CERT");
	unsetenv("SPAWN_TLS_KEY");
	unsetenv("SPAWN_TLS_SERVER_NAME");
	unsetenv("SPAWN_TOKEN");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		spawn_client_opts o = {.target = target, .security = cases[i].sec};
		spawn_client *cl = (spawn_client *)&cl; /* must stay untouched on failure */
		spawn_client *before = cl;
		int rc = spawn_client_create_opts(&cl, &o);
		ck_assert_msg(rc == cases[i].want, "case %zu: %s", i, spawn_status_name(rc));
		if (rc == SPAWN_OK)
			spawn_client_destroy(cl);
		else
			ck_assert_ptr_eq(cl, before);
		spawn_host_opts ho = {.target = target, .system = "sys", .security = cases[i].sec};
		spawn_host *h = NULL;
		rc = spawn_host_create(&h, &ho);
		ck_assert_msg(rc == cases[i].want, "host case %zu: %s", i, spawn_status_name(rc));
		spawn_host_destroy(h);
	}
	/* The environment's files are checked the same way. */
	setenv("SPAWN_TLS_CA", P("missing.pem"), 1);
	spawn_client *cl = NULL;
	ck_assert_int_eq(spawn_client_create(&cl, target), SPAWN_ETLS);
	ck_assert_ptr_null(cl);
	ck_assert_str_eq(spawn_status_name(SPAWN_ETLS), "ETLS");
}
END_TEST

/* ---- the host's stream --------------------------------------------------------- */

typedef struct events {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int count[5];
	int last_status;
} events;

static void on_event(void *user, spawn_host_event ev, int status, const char *message)
{
	(void)message;
	events *e = user;
	pthread_mutex_lock(&e->mu);
	e->count[ev]++;
	e->last_status = status;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
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

static void h_noop(spawn_ctx *ctx, void *user)
{
	(void)ctx;
	(void)user;
}

static spawn_host *host_with(fake_gw *gw, events *ev, spawn_security_opts sec)
{
	spawn_host_opts o = {.target = fake_gw_target(gw),
	                     .system = "sys",
	                     .backoff_min_ms = 20,
	                     .backoff_max_ms = 100,
	                     .on_event = on_event,
	                     .event_user = ev,
	                     .security = sec};
	spawn_host *h = NULL;
	ck_assert_int_eq(spawn_host_create(&h, &o), SPAWN_OK);
	spawn_action_def act = {.name = "Get", .handler = h_noop};
	spawn_actor_def a = {.name = "a", .actions = &act, .n_actions = 1};
	ck_assert_int_eq(spawn_host_add_actor(h, &a), SPAWN_OK);
	return h;
}

START_TEST(mtls_host_registers_with_its_token_on_the_stream)
{
	fake_gw *gw = start_mtls_gw();
	events ev = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	spawn_host *h = host_with(gw, &ev,
	                          (spawn_security_opts){.tls_ca = P("ca.pem"),
	                                                .tls_cert = P("host.pem"),
	                                                .tls_key = P("host.key"),
	                                                .token = "tok-host"});
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);
	fake_call *c = fake_gw_accept(gw, T_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(fake_call_method(c), "/spawn.gateway.v1.HostGateway/Connect");
	char auth[128] = "";
	ck_assert_uint_eq(fake_call_metadata(c, "authorization", auth, sizeof auth), 1);
	ck_assert_str_eq(auth, "Bearer tok-host");
	Spawn__Gateway__V1__HostMessage *m = (Spawn__Gateway__V1__HostMessage *)fake_call_recv(
	    c, &spawn__gateway__v1__host_message__descriptor, T_MS);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->msg_case, SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION);
	ck_assert_str_eq(m->registration->actor_system->name, "sys");
	protobuf_c_message_free_unpacked(&m->base, NULL);
	Spawn__RequestStatus st = SPAWN__REQUEST_STATUS__INIT;
	st.status = SPAWN__STATUS__OK;
	Spawn__RegistrationResponse rr = SPAWN__REGISTRATION_RESPONSE__INIT;
	rr.status = &st;
	Spawn__Gateway__V1__GatewayMessage gm = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__INIT;
	gm.msg_case = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_REGISTRATION;
	gm.registration = &rr;
	ck_assert(fake_call_send(c, &gm.base, T_MS));
	ck_assert(wait_event(&ev, SPAWN_HOST_REGISTERED, 1));

	/* The gateway drops the stream: the host reconnects with its token again. */
	ck_assert(fake_call_finish(c, GRPC_STATUS_UNAVAILABLE, "restarting", T_MS));
	fake_call_free(c);
	c = fake_gw_accept(gw, T_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(fake_call_metadata(c, "authorization", auth, sizeof auth), 1);
	ck_assert_str_eq(auth, "Bearer tok-host");
	spawn_host_destroy(h);
	fake_call_free(c);
	fake_gw_stop(gw);
}
END_TEST

START_TEST(host_without_a_client_certificate_never_reaches_the_gateway)
{
	fake_gw *gw = start_mtls_gw();
	events ev = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	spawn_host *h = host_with(
	    gw, &ev, (spawn_security_opts){.tls_ca = P("ca.pem"), .tls_cert = "", .tls_key = ""});
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);
	ck_assert(wait_event(&ev, SPAWN_HOST_DISCONNECTED, 2));
	pthread_mutex_lock(&ev.mu);
	ck_assert_int_eq(ev.last_status, SPAWN_UNAVAILABLE);
	ck_assert_int_eq(ev.count[SPAWN_HOST_REGISTERED], 0);
	pthread_mutex_unlock(&ev.mu);
	ck_assert_ptr_null(fake_gw_accept(gw, 100));
	spawn_host_destroy(h);

	/* Trusting the wrong CA: the same. */
	events ev2 = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	h = host_with(gw, &ev2,
	              (spawn_security_opts){.tls_ca = P("rogue-ca.pem"),
	                                    .tls_cert = P("host.pem"),
	                                    .tls_key = P("host.key")});
	ck_assert_int_eq(spawn_host_start(h), SPAWN_OK);
	ck_assert(wait_event(&ev2, SPAWN_HOST_DISCONNECTED, 1));
	pthread_mutex_lock(&ev2.mu);
	ck_assert_int_eq(ev2.last_status, SPAWN_UNAVAILABLE);
	pthread_mutex_unlock(&ev2.mu);
	ck_assert_ptr_null(fake_gw_accept(gw, 100));
	spawn_host_destroy(h);
	fake_gw_stop(gw);
}
END_TEST

static Suite *sdk_tls_suite(void)
{
	Suite *s = suite_create("sdk_tls");
	struct {
		const char *name;
		const TTest *t;
	} cases[] = {
	    {"mtls_ok", mtls_client_reaches_the_gateway_with_its_token_once_per_call},
	    {"unix", mtls_over_a_unix_socket},
	    {"no_client_cert", mtls_without_a_client_certificate_fails_the_handshake},
	    {"wrong_ca", trusting_the_wrong_ca_fails_the_handshake},
	    {"server_name", server_name_override_is_checked_against_the_certificate},
	    {"env", environment_fallbacks_are_read_when_options_are_not_given},
	    {"plaintext_token", token_over_plaintext_and_none},
	    {"bad_files", unusable_files_fail_the_create},
	    {"host_mtls", mtls_host_registers_with_its_token_on_the_stream},
	    {"host_refused", host_without_a_client_certificate_never_reaches_the_gateway},
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
	const char *src = getenv("SPAWN_SOURCE_DIR");
	if (!src) {
		fprintf(stderr, "sdk_tls_test: SPAWN_SOURCE_DIR is not set (run it with ctest)\n");
		return EXIT_FAILURE;
	}
	/* Tests must not inherit a developer's settings. */
	const char *vars[] = {"SPAWN_TLS_CA", "SPAWN_TLS_CERT", "SPAWN_TLS_KEY",
	                      "SPAWN_TLS_SERVER_NAME", "SPAWN_TOKEN"};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
	snprintf(certs, sizeof certs, "/tmp/spawn-sdk-tls-XXXXXX");
	if (!mkdtemp(certs)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "bash '%s/tests/tls/mkcerts.sh' '%s'", src, certs);
	if (system(cmd) != 0) {
		fprintf(stderr, "sdk_tls_test: %s failed\n", cmd);
		return EXIT_FAILURE;
	}
	SRunner *sr = srunner_create(sdk_tls_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", certs);
	if (system(cmd) != 0)
		fprintf(stderr, "sdk_tls_test: could not remove %s\n", certs);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
