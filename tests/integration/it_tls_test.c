/* it_tls_test.c - TLS and mTLS on the gateway's listeners (issue 10,
 * sections 1 and 4): handshakes with trusted, missing, rogue and expired
 * client certificates; a client that does not trust the server; server TLS
 * without mTLS; a certificate renewed on disk while 64 calls are in flight;
 * start-up checks of the files; the safe-by-default rule for non-loopback
 * binds; separate client, host and admin listeners.
 *
 * Every peer is a real process or a real gRPC core channel over loopback;
 * the certificates are made per test by tests/tls/mkcerts.sh (it_certs).
 * A refused handshake reaches a gRPC client as UNAVAILABLE; a call that
 * got through the handshake to a method the gateway does not serve there
 * is UNIMPLEMENTED, which is how these tests tell "reached the gateway"
 * without needing an actor.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <check.h>
#include <grpc/grpc.h>
#include <grpc/status.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "harness.h"
#include "raw.h"
#include "wire.h"

#define PROBE_METHOD "/spawn.test.Nothing/Probe"

static it_world w;

static void teardown(void)
{
	it_world_fini(&w);
}

/* ---- helpers --------------------------------------------------------------------------- */

/* C(name): the path of a file of the test PKI, in a rotating static buffer
 * (enough for the arguments of one call). */
static const char *C(const char *name)
{
	static char bufs[16][700];
	static int k;
	char *b = bufs[k++ % 16];
	return it_cert(&w, name, b, sizeof bufs[0]);
}

/* tls_of fills t for a client trusting ca (a file of the PKI) with the
 * identity who ("client", "host", "rogue", ...; NULL = no certificate). */
static const it_tls *tls_of(it_tls *t, const char *ca, const char *who)
{
	static char cert[700], key[700];
	memset(t, 0, sizeof *t);
	t->ca = C(ca);
	if (who) {
		char f[64];
		snprintf(f, sizeof f, "%s.pem", who);
		it_cert(&w, f, cert, sizeof cert);
		snprintf(f, sizeof f, "%s.key", who);
		it_cert(&w, f, key, sizeof key);
		t->cert = cert;
		t->key = key;
	}
	return t;
}

/* probe makes one call to a method nobody serves: UNIMPLEMENTED once the
 * handshake passed, UNAVAILABLE when it was refused. */
static int probe(const char *target, const it_tls *tls, char *details, size_t n)
{
	return raw_unary_tls(target, tls, PROBE_METHOD, "", 0, it_ms(10000), details, n);
}

/* start_gw starts the gateway with extra args (NULL-terminated). */
static void start_gw(it_gw *g, const char *const args[])
{
	it_gateway_start(&w, g, "gw", "state.db", args, NULL);
}

/* mtls_args: server certificate (name: "server"), key and client CA. */
#define TLS_ARGS(cert, key) "--tls-cert", C(cert), "--tls-key", C(key)
#define MTLS_ARGS           TLS_ARGS("server-chain.pem", "server.key"), "--tls-client-ca", C("ca.pem")

/* pack_invoke packs an InvocationRequest of action "A" on actor of system
 * (an instance of parent when parent != NULL). The caller frees *out. */
static size_t pack_invoke(const char *system, const char *actor, const char *parent,
                          uint8_t **out)
{
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = (char *)system;
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = (char *)actor;
	id.system = (char *)system;
	id.parent = (char *)parent;
	Spawn__Actors__Actor a = SPAWN__ACTORS__ACTOR__INIT;
	a.id = &id;
	Spawn__Noop noop = SPAWN__NOOP__INIT;
	Spawn__InvocationRequest rq = SPAWN__INVOCATION_REQUEST__INIT;
	rq.system = &sys;
	rq.actor = &a;
	rq.action_name = "A";
	rq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_NOOP;
	rq.noop = &noop;
	rq.register_ref = (char *)parent;
	size_t n = spawn__invocation_request__get_packed_size(&rq);
	*out = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(*out);
	spawn__invocation_request__pack(&rq, *out);
	return n;
}

/* sink_host connects a raw host of system "sink" (NAMED "r", UNNAMED "t",
 * action "A") to target over tls and waits for its registration. */
static raw_stream *sink_host(const char *target, const it_tls *tls)
{
	raw_stream *s = raw_stream_open_tls(target, tls, RAW_METHOD_CONNECT, it_ms(120000));
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(raw_host_register(s, "sink", "r", "t", false, it_ms(10000)),
	              "the host was not registered");
	return s;
}

/* sink_next waits for the next task sent to the host; returns its request
 * id and copies the actor's name. Asserts one came. */
static uint64_t sink_next(raw_stream *s, char *actor, size_t n)
{
	Spawn__Gateway__V1__GatewayMessage *gm =
	    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
	        s, &spawn__gateway__v1__gateway_message__descriptor, it_ms(10000));
	ck_assert_msg(gm != NULL, "no task reached the host");
	ck_assert_int_eq(gm->msg_case, SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION);
	uint64_t id = gm->invocation->request_id;
	if (actor)
		snprintf(actor, n, "%s", gm->invocation->invocation->actor->name);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	return id;
}

/* invoke_through_host: one Invoke of sink/r by a client over ctls, served
 * by the host s; asserts it is answered OK. */
static void invoke_through_host(const char *target, const it_tls *ctls, raw_stream *s)
{
	uint8_t *rq;
	size_t n = pack_invoke("sink", "r", NULL, &rq);
	raw_call *c = raw_call_start(target, ctls, RAW_METHOD_INVOKE, rq, n, it_ms(20000));
	free(rq);
	ck_assert_ptr_nonnull(c);
	char actor[64];
	uint64_t id = sink_next(s, actor, sizeof actor);
	ck_assert_str_eq(actor, "r");
	ck_assert(raw_host_result(s, id, it_ms(10000)));
	char details[300];
	int st = raw_call_finish(c, it_ms(20000), details, sizeof details, NULL, NULL);
	ck_assert_msg(st == GRPC_STATUS_OK, "Invoke through the TLS host link: %d %s", st, details);
}

/* ---- handshakes ------------------------------------------------------------------------ */

/* mTLS on the one listener: a host and a client with certificates of the
 * CA work end to end (an invocation crosses the TLS host link); plaintext
 * and a client without a certificate are refused at the handshake. */
START_TEST(mtls_host_and_client_work_end_to_end_and_plaintext_is_refused)
{
	it_world_init(&w, "mtls_end_to_end");
	it_gw gw;
	const char *args[] = {MTLS_ARGS, NULL};
	start_gw(&gw, args);
	it_tls ht, ct, nt;
	raw_stream *h = sink_host(gw.target, tls_of(&ht, "ca.pem", "host"));
	invoke_through_host(gw.target, tls_of(&ct, "ca.pem", "client"), h);

	char details[300];
	int st = probe(gw.target, NULL, details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "plaintext on a TLS listener: %d %s", st,
	              details);
	st = probe(gw.target, tls_of(&nt, "ca.pem", NULL), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "no client certificate under mTLS: %d %s", st,
	              details);
	/* The host link was not disturbed by the refused handshakes. */
	invoke_through_host(gw.target, &ct, h);
	raw_stream_close(h);
	it_gateway_stop(&gw);
}
END_TEST

/* Client certificates under mTLS: the CA's client passes; one signed by a
 * rogue CA and an expired one are refused. */
START_TEST(mtls_refuses_rogue_and_expired_client_certificates)
{
	it_world_init(&w, "mtls_client_certs");
	it_gw gw;
	const char *args[] = {MTLS_ARGS, NULL};
	start_gw(&gw, args);
	it_tls t;
	char details[300];
	int st = probe(gw.target, tls_of(&t, "ca.pem", "client"), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNIMPLEMENTED, "trusted client certificate: %d %s", st,
	              details);
	st = probe(gw.target, tls_of(&t, "ca.pem", "rogue"), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "rogue CA's client certificate: %d %s", st,
	              details);
	st = probe(gw.target, tls_of(&t, "ca.pem", "expired"), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "expired client certificate: %d %s", st,
	              details);
	/* Still serving the good one after the refusals. */
	st = probe(gw.target, tls_of(&t, "ca.pem", "admin"), details, sizeof details);
	ck_assert_int_eq(st, GRPC_STATUS_UNIMPLEMENTED);
	it_gateway_stop(&gw);
}
END_TEST

/* A client that trusts another CA refuses the gateway's certificate; one
 * that expects another name does too. */
START_TEST(a_client_refuses_a_server_it_does_not_trust)
{
	it_world_init(&w, "client_refuses_server");
	it_gw gw;
	const char *args[] = {MTLS_ARGS, NULL};
	start_gw(&gw, args);
	it_tls t;
	char details[300];
	int st = probe(gw.target, tls_of(&t, "rogue-ca.pem", "client"), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "client trusting the rogue CA: %d %s", st,
	              details);
	tls_of(&t, "ca.pem", "client");
	t.server_name = "gateway.example.org";
	st = probe(gw.target, &t, details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "a name the certificate lacks: %d %s", st,
	              details);
	t.server_name = NULL;
	st = probe(gw.target, &t, details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNIMPLEMENTED, "the right CA and name: %d %s", st, details);
	it_gateway_stop(&gw);
}
END_TEST

/* Server TLS without --tls-client-ca: no client certificate needed, and
 * one given is not asked for; plaintext is still refused. */
START_TEST(server_tls_without_mtls_needs_no_client_certificate)
{
	it_world_init(&w, "tls_no_mtls");
	it_gw gw;
	const char *args[] = {TLS_ARGS("server.pem", "server.key"), NULL};
	start_gw(&gw, args);
	it_tls t;
	char details[300];
	int st = probe(gw.target, tls_of(&t, "ca.pem", NULL), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNIMPLEMENTED, "TLS without a client certificate: %d %s",
	              st, details);
	st = probe(gw.target, tls_of(&t, "ca.pem", "client"), details, sizeof details);
	ck_assert_int_eq(st, GRPC_STATUS_UNIMPLEMENTED);
	st = probe(gw.target, NULL, details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "plaintext on a TLS listener: %d %s", st,
	              details);
	it_tls ht, ct;
	raw_stream *h = sink_host(gw.target, tls_of(&ht, "ca.pem", NULL));
	invoke_through_host(gw.target, tls_of(&ct, "ca.pem", NULL), h);
	raw_stream_close(h);
	it_gateway_stop(&gw);
}
END_TEST

/* ---- suite ----------------------------------------------------------------------------- */

static Suite *tls_suite(void)
{
	it_case cases[] = {
	    {"mtls_end_to_end", mtls_host_and_client_work_end_to_end_and_plaintext_is_refused},
	    {"mtls_client_certs", mtls_refuses_rogue_and_expired_client_certificates},
	    {"client_refuses_server", a_client_refuses_a_server_it_does_not_trust},
	    {"tls_no_mtls", server_tls_without_mtls_needs_no_client_certificate},
	};
	return IT_SUITE("integration_tls", cases, teardown, 120);
}

int main(void)
{
	return it_run(tls_suite());
}
