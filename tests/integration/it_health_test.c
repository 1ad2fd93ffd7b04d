/* it_health_test.c - grpc.health.v1.Health/Check (gateway/server/health.c):
 * what every listener answers for which service name, over plaintext and
 * over mTLS, on the plaintext --health-listen beside mTLS listeners, and
 * during a drain (SIGTERM with a call in flight): NOT_SERVING while the
 * listeners stay open, new calls and hosts refused UNAVAILABLE, the call in
 * flight still answered, then a clean exit.
 *
 * Every peer is a real gRPC core channel over loopback (raw.h); the call in
 * flight is held by a raw host that answers only when the test says so.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <grpc/grpc.h>
#include <grpc/status.h>

#include "grpc/health/v1/health.pb-c.h"
#include "harness.h"
#include "raw.h"
#include "wire.h"

#define CHECK_METHOD "/grpc.health.v1.Health/Check"
#define WATCH_METHOD "/grpc.health.v1.Health/Watch"

#define SERVING     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING

static it_world w;

static void teardown(void)
{
	it_world_fini(&w);
}

/* ---- helpers --------------------------------------------------------------------------- */

/* check calls Health/Check for service on target over tls (NULL =
 * plaintext). Returns the call's gRPC status; with OK, *serving is the
 * answer's ServingStatus (-1 when the answer does not parse). */
static int check(const char *target, const it_tls *tls, const char *service, int *serving)
{
	Grpc__Health__V1__HealthCheckRequest rq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	rq.service = (char *)service;
	uint8_t buf[512];
	size_t n = grpc__health__v1__health_check_request__pack(&rq, buf);
	raw_call *c = raw_call_start(target, tls, CHECK_METHOD, buf, n, it_ms(10000));
	ck_assert_ptr_nonnull(c);
	char details[300];
	uint8_t *resp = NULL;
	size_t len = 0;
	int st = raw_call_finish(c, it_ms(15000), details, sizeof details, &resp, &len);
	*serving = -1;
	if (st == GRPC_STATUS_OK) {
		Grpc__Health__V1__HealthCheckResponse *r =
		    grpc__health__v1__health_check_response__unpack(NULL, len, resp);
		if (r) {
			*serving = (int)r->status;
			grpc__health__v1__health_check_response__free_unpacked(r, NULL);
		}
	}
	free(resp);
	return st;
}

/* expect_check asserts the status and the ServingStatus of one Check. */
static void expect_check(const char *target, const it_tls *tls, const char *service, int want_st,
                         int want_serving)
{
	int serving;
	int st = check(target, tls, service, &serving);
	ck_assert_msg(st == want_st, "Check '%s' on %s: status %d, expected %d", service, target,
	              st, want_st);
	if (st == GRPC_STATUS_OK)
		ck_assert_msg(serving == want_serving,
		              "Check '%s' on %s: ServingStatus %d, expected %d", service, target,
		              serving, want_serving);
}

/* next_listener reads the next "listening ADDR PORT" line of the gateway
 * (after the one it_gateway_start read) and returns 127.0.0.1:PORT in buf. */
static const char *next_listener(it_gw *g, char *buf, size_t n)
{
	char line[300];
	ck_assert_msg(it_proc_wait_line(g->p, "listening ", it_ms(10000), line, sizeof line),
	              "a listener's line is missing");
	const char *sp = strrchr(line, ' ');
	int port = sp ? atoi(sp + 1) : 0;
	ck_assert_msg(port > 0, "no port in '%s'", line);
	snprintf(buf, n, "127.0.0.1:%d", port);
	return buf;
}

/* A client's TLS settings with the storage of their paths. */
typedef struct tid {
	it_tls t;
	char ca[700], cert[700], key[700];
} tid;

/* tls_of fills id for a client trusting the test CA with the identity who
 * ("client", ...; NULL = no certificate) and returns its it_tls. */
static const it_tls *tls_of(tid *id, const char *who)
{
	memset(id, 0, sizeof *id);
	id->t.ca = it_cert(&w, "ca.pem", id->ca, sizeof id->ca);
	if (who) {
		char f[64];
		snprintf(f, sizeof f, "%s.pem", who);
		id->t.cert = it_cert(&w, f, id->cert, sizeof id->cert);
		snprintf(f, sizeof f, "%s.key", who);
		id->t.key = it_cert(&w, f, id->key, sizeof id->key);
	}
	return &id->t;
}

/* pack_invoke packs an InvocationRequest of action "A" on the NAMED actor
 * sink/r. The caller frees *out. */
static size_t pack_invoke(uint8_t **out)
{
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = "sink";
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = "r";
	id.system = "sink";
	Spawn__Actors__Actor a = SPAWN__ACTORS__ACTOR__INIT;
	a.id = &id;
	Spawn__Noop noop = SPAWN__NOOP__INIT;
	Spawn__InvocationRequest rq = SPAWN__INVOCATION_REQUEST__INIT;
	rq.system = &sys;
	rq.actor = &a;
	rq.action_name = "A";
	rq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_NOOP;
	rq.noop = &noop;
	size_t n = spawn__invocation_request__get_packed_size(&rq);
	*out = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(*out);
	spawn__invocation_request__pack(&rq, *out);
	return n;
}

/* ---- the tests ------------------------------------------------------------------------- */

/* Every listener answers Check; each for "" and the services it serves,
 * NOT_FOUND for the others and for names nobody serves; Watch is not
 * served (UNIMPLEMENTED). */
START_TEST(check_answers_on_every_listener_for_the_services_it_serves)
{
	it_world_init(&w, "every_listener");
	it_gw gw;
	const char *args[] = {
	    "--host-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--health-listen",
	    "127.0.0.1:0",   NULL};
	it_gateway_start(&w, &gw, "gw", "state.db", args, NULL);
	char hostl[64], adminl[64], healthl[64];
	next_listener(&gw, hostl, sizeof hostl);
	next_listener(&gw, adminl, sizeof adminl);
	next_listener(&gw, healthl, sizeof healthl);
	const char *cl = gw.target;
	const char *all[] = {cl, hostl, adminl, healthl};
	for (int i = 0; i < 4; i++) {
		expect_check(all[i], NULL, "", GRPC_STATUS_OK, SERVING);
		expect_check(all[i], NULL, "grpc.health.v1.Health", GRPC_STATUS_OK, SERVING);
		expect_check(all[i], NULL, "spawn.gateway.v1.Nothing", GRPC_STATUS_NOT_FOUND, 0);
		expect_check(all[i], NULL, "spawn.gateway.v1.actorgateway", GRPC_STATUS_NOT_FOUND,
		             0);
	}
	/* Each service where it is served; --health-listen answers for all. */
	expect_check(cl, NULL, "spawn.gateway.v1.ActorGateway", GRPC_STATUS_OK, SERVING);
	expect_check(cl, NULL, "spawn.gateway.v1.HostGateway", GRPC_STATUS_NOT_FOUND, 0);
	expect_check(cl, NULL, "spawn.gateway.v1.Admin", GRPC_STATUS_NOT_FOUND, 0);
	expect_check(hostl, NULL, "spawn.gateway.v1.HostGateway", GRPC_STATUS_OK, SERVING);
	expect_check(hostl, NULL, "spawn.gateway.v1.ActorGateway", GRPC_STATUS_NOT_FOUND, 0);
	expect_check(adminl, NULL, "spawn.gateway.v1.Admin", GRPC_STATUS_OK, SERVING);
	expect_check(adminl, NULL, "spawn.gateway.v1.ActorGateway", GRPC_STATUS_NOT_FOUND, 0);
	expect_check(healthl, NULL, "spawn.gateway.v1.ActorGateway", GRPC_STATUS_OK, SERVING);
	expect_check(healthl, NULL, "spawn.gateway.v1.HostGateway", GRPC_STATUS_OK, SERVING);
	expect_check(healthl, NULL, "spawn.gateway.v1.Admin", GRPC_STATUS_OK, SERVING);

	/* The health listener serves nothing else. */
	char details[300];
	uint8_t *rq;
	size_t n = pack_invoke(&rq);
	int st =
	    raw_unary(healthl, RAW_METHOD_INVOKE, rq, n, it_ms(10000), details, sizeof details);
	free(rq);
	ck_assert_msg(st == GRPC_STATUS_UNIMPLEMENTED, "Invoke on --health-listen: %d %s", st,
	              details);
	/* Watch is not served. */
	st = raw_unary(cl, WATCH_METHOD, "", 0, it_ms(10000), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNIMPLEMENTED, "Watch: %d %s", st, details);
	/* A request that is not a HealthCheckRequest. */
	st = raw_unary(cl, CHECK_METHOD, "\xff\xff\xff", 3, it_ms(10000), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_INVALID_ARGUMENT, "a malformed Check: %d %s", st, details);
	/* A service name with a control character is refused at the edge. */
	st = check(cl, NULL, "bad\x01name", &(int){0});
	ck_assert_int_eq(st, GRPC_STATUS_INVALID_ARGUMENT);
	/* Nothing of it disturbed the gateway. */
	expect_check(cl, NULL, "", GRPC_STATUS_OK, SERVING);
	it_gateway_stop(&gw);
}
END_TEST

/* Under mTLS, Check needs the client's certificate like every call (the
 * handshake comes first); --health-listen stays plaintext beside it, for
 * probes that speak no TLS (Kubernetes' grpc probes). */
START_TEST(check_over_mtls_and_on_a_plaintext_health_listener)
{
	it_world_init(&w, "mtls");
	it_certs(&w);
	char cert[700], key[700], ca[700];
	it_cert(&w, "server-chain.pem", cert, sizeof cert);
	it_cert(&w, "server.key", key, sizeof key);
	it_cert(&w, "ca.pem", ca, sizeof ca);
	it_gw gw;
	const char *args[] = {
	    "--tls-cert",      cert,          "--tls-key", key, "--tls-client-ca", ca,
	    "--health-listen", "127.0.0.1:0", NULL};
	it_gateway_start(&w, &gw, "gw", "state.db", args, NULL);
	char healthl[64];
	next_listener(&gw, healthl, sizeof healthl);
	tid client, anon;
	tls_of(&client, "client");
	tls_of(&anon, NULL);

	expect_check(gw.target, &client.t, "", GRPC_STATUS_OK, SERVING);
	expect_check(gw.target, &client.t, "spawn.gateway.v1.ActorGateway", GRPC_STATUS_OK,
	             SERVING);
	expect_check(gw.target, &client.t, "nope", GRPC_STATUS_NOT_FOUND, 0);
	/* No client certificate, or no TLS at all: the handshake fails. */
	expect_check(gw.target, &anon.t, "", GRPC_STATUS_UNAVAILABLE, 0);
	expect_check(gw.target, NULL, "", GRPC_STATUS_UNAVAILABLE, 0);
	/* The health listener is plaintext, and TLS to it fails. */
	expect_check(healthl, NULL, "", GRPC_STATUS_OK, SERVING);
	expect_check(healthl, NULL, "spawn.gateway.v1.ActorGateway", GRPC_STATUS_OK, SERVING);
	expect_check(healthl, &client.t, "", GRPC_STATUS_UNAVAILABLE, 0);
	it_gateway_stop(&gw);
}
END_TEST

/* SIGTERM with a call in flight: readiness goes NOT_SERVING at once and
 * the listeners stay open while the call finishes. Meanwhile the liveness
 * service still answers SERVING, a new call is refused UNAVAILABLE (never
 * dispatched) and a new host too; the call in flight is answered OK; then
 * the gateway stops and exits 0. */
START_TEST(check_answers_not_serving_during_the_drain)
{
	it_world_init(&w, "drain");
	it_gw gw;
	const char *args[] = {"--drain", "60000", "--health-listen", "127.0.0.1:0", NULL};
	it_gateway_start(&w, &gw, "gw", "state.db", args, NULL);
	char healthl[64];
	next_listener(&gw, healthl, sizeof healthl);
	expect_check(gw.target, NULL, "spawn.gateway.v1.ActorGateway", GRPC_STATUS_OK, SERVING);

	/* A call held in a host that answers only when told. */
	raw_stream *h = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(120000));
	ck_assert_ptr_nonnull(h);
	ck_assert(raw_host_register(h, "sink", "r", "t", false, it_ms(10000)));
	uint8_t *rq;
	size_t n = pack_invoke(&rq);
	raw_call *held = raw_call_start(gw.target, NULL, RAW_METHOD_INVOKE, rq, n, it_ms(60000));
	ck_assert_ptr_nonnull(held);
	Spawn__Gateway__V1__GatewayMessage *gm =
	    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
	        h, &spawn__gateway__v1__gateway_message__descriptor, it_ms(10000));
	ck_assert_msg(gm != NULL, "the call did not reach the host");
	ck_assert_int_eq(gm->msg_case, SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION);
	uint64_t id = gm->invocation->request_id;
	protobuf_c_message_free_unpacked(&gm->base, NULL);

	it_proc_signal(gw.p, SIGTERM);
	/* Readiness turns off as the signal is handled: wait for it (bounded). */
	int64_t end = it_now_ms() + it_ms(10000);
	int serving = SERVING, st;
	while ((st = check(gw.target, NULL, "", &serving)) == GRPC_STATUS_OK &&
	       serving == SERVING && it_now_ms() < end)
		poll(NULL, 0, 20);
	ck_assert_msg(st == GRPC_STATUS_OK && serving == NOT_SERVING,
	              "during the drain Check '' answered status %d, ServingStatus %d", st,
	              serving);
	expect_check(gw.target, NULL, "spawn.gateway.v1.ActorGateway", GRPC_STATUS_OK, NOT_SERVING);
	expect_check(healthl, NULL, "", GRPC_STATUS_OK, NOT_SERVING);
	expect_check(healthl, NULL, "spawn.gateway.v1.ActorGateway", GRPC_STATUS_OK, NOT_SERVING);
	expect_check(healthl, NULL, "grpc.health.v1.Health", GRPC_STATUS_OK, SERVING);
	expect_check(gw.target, NULL, "nope", GRPC_STATUS_NOT_FOUND, 0);

	/* New work is refused, never dispatched. */
	char details[300];
	st = raw_unary(gw.target, RAW_METHOD_INVOKE, rq, n, it_ms(10000), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE && strstr(details, "shutting down"),
	              "a new Invoke during the drain: %d %s", st, details);
	raw_stream *h2 = raw_stream_open(gw.target, RAW_METHOD_CONNECT, it_ms(10000));
	ck_assert_ptr_nonnull(h2);
	st = raw_stream_status(h2, it_ms(10000), details, sizeof details);
	raw_stream_close(h2);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "a new host during the drain: %d %s", st,
	              details);
	free(rq);
	ck_assert_msg(!it_proc_wait_exit(gw.p, 0), "the gateway left before the call finished");

	/* The call in flight is answered, which ends the drain. */
	ck_assert(raw_host_result(h, id, it_ms(10000)));
	st = raw_call_finish(held, it_ms(20000), details, sizeof details, NULL, NULL);
	ck_assert_msg(st == GRPC_STATUS_OK, "the call in flight: %d %s", st, details);
	ck_assert_msg(it_proc_wait_exit(gw.p, it_ms(30000)), "the gateway did not exit");
	ck_assert_int_eq(it_exit_code(gw.p), 0);
	raw_stream_close(h);
}
END_TEST

static Suite *health_suite(void)
{
	it_case cases[] = {
	    {"every_listener", check_answers_on_every_listener_for_the_services_it_serves},
	    {"mtls", check_over_mtls_and_on_a_plaintext_health_listener},
	    {"drain", check_answers_not_serving_during_the_drain},
	};
	return IT_SUITE("integration_health", cases, teardown, 120);
}

int main(void)
{
	return it_run(health_suite());
}
