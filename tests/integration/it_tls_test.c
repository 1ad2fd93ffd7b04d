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

/* A client's TLS settings with the storage of their paths. */
typedef struct tid {
	it_tls t;
	char ca[700], cert[700], key[700];
} tid;

/* tls_of fills id for a client trusting ca (a file of the PKI) with the
 * identity who ("client", "host", "rogue", ...; NULL = no certificate)
 * and returns its it_tls. */
static const it_tls *tls_of(tid *id, const char *ca, const char *who)
{
	memset(id, 0, sizeof *id);
	id->t.ca = it_cert(&w, ca, id->ca, sizeof id->ca);
	if (who) {
		char f[64];
		snprintf(f, sizeof f, "%s.pem", who);
		id->t.cert = it_cert(&w, f, id->cert, sizeof id->cert);
		snprintf(f, sizeof f, "%s.key", who);
		id->t.key = it_cert(&w, f, id->key, sizeof id->key);
	}
	return &id->t;
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
static size_t pack_invoke(const char *system, const char *actor, const char *parent, uint8_t **out)
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
	char actor[64], details[300];
	Spawn__Gateway__V1__GatewayMessage *gm =
	    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
	        s, &spawn__gateway__v1__gateway_message__descriptor, it_ms(10000));
	if (!gm) {
		int st = raw_call_finish(c, it_ms(1000), details, sizeof details, NULL, NULL);
		ck_abort_msg("no task reached the host; the call ended %d %s", st, details);
	}
	ck_assert_int_eq(gm->msg_case, SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION);
	uint64_t id = gm->invocation->request_id;
	snprintf(actor, sizeof actor, "%s", gm->invocation->invocation->actor->name);
	protobuf_c_message_free_unpacked(&gm->base, NULL);
	ck_assert_str_eq(actor, "r");
	ck_assert(raw_host_result(s, id, it_ms(10000)));
	int st = raw_call_finish(c, it_ms(20000), details, sizeof details, NULL, NULL);
	ck_assert_msg(st == GRPC_STATUS_OK, "Invoke through the TLS host link: %d %s", st, details);
}

/* listener_port reads the next "listening ADDR PORT" line of the gateway
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

/* stream_status opens a call of method on target over tls and returns the
 * status it ends with (the gateway answers at once when it does not serve
 * the method there). */
static int stream_status(const char *target, const it_tls *tls, const char *method)
{
	raw_stream *s = raw_stream_open_tls(target, tls, method, it_ms(10000));
	ck_assert_ptr_nonnull(s);
	char details[300];
	int st = raw_stream_status(s, it_ms(10000), details, sizeof details);
	raw_stream_close(s);
	return st;
}

/* read_x509 parses the first certificate of a PEM string. */
static X509 *read_x509(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

static X509 *read_x509_file(const char *path)
{
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_msg(x != NULL, "%s: no certificate", path);
	return x;
}

/* served_is says whether a NEW connection to target (its own channel)
 * is given the certificate of file (a PEM of the PKI): the client-side
 * auth context's x509_pem_cert against the file. */
static bool served_is(const char *target, const it_tls *tls, const char *file)
{
	raw_stream *s = raw_stream_open_tls(target, tls, PROBE_METHOD, it_ms(10000));
	ck_assert_ptr_nonnull(s);
	char details[300];
	int st = raw_stream_status(s, it_ms(10000), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNIMPLEMENTED, "probe: %d %s", st, details);
	char *pem = raw_stream_peer_cert(s);
	raw_stream_close(s);
	ck_assert_msg(pem != NULL, "no x509_pem_cert in the call's auth context");
	X509 *got = read_x509(pem), *want = read_x509_file(file);
	free(pem);
	ck_assert_ptr_nonnull(got);
	bool same = X509_cmp(got, want) == 0;
	X509_free(got);
	X509_free(want);
	return same;
}

/* sh_line runs a shell command and returns its first line of output in buf
 * (without the newline); asserts it printed one. */
static const char *sh_line(const char *cmd, char *buf, size_t n)
{
	FILE *p = popen(cmd, "r");
	ck_assert_msg(p != NULL, "popen %s", cmd);
	buf[0] = 0;
	char *got = fgets(buf, (int)n, p);
	pclose(p);
	ck_assert_msg(got != NULL, "no output from: %s", cmd);
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

/* s_client_serial asks the real openssl s_client for the serial of the
 * certificate a new connection to port gets ("serial=HEX"). */
static const char *s_client_serial(int port, char *buf, size_t n)
{
	char cmd[3000];
	snprintf(cmd, sizeof cmd,
	         "openssl s_client -connect 127.0.0.1:%d -servername localhost -alpn h2 "
	         "-verify_return_error -CAfile '%s' -cert '%s' -key '%s' </dev/null 2>/dev/null "
	         "| openssl x509 -noout -serial",
	         port, C("ca.pem"), C("client.pem"), C("client.key"));
	return sh_line(cmd, buf, n);
}

static const char *file_serial(const char *file, char *buf, size_t n)
{
	char cmd[1000];
	snprintf(cmd, sizeof cmd, "openssl x509 -noout -serial -in '%s'", file);
	return sh_line(cmd, buf, n);
}

/* copy_file copies src over dst in place (the same inode, as cp does):
 * truncated, then written. */
static void copy_file(const char *src, const char *dst)
{
	FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
	ck_assert_msg(in && out, "copy %s -> %s", src, dst);
	char buf[8192];
	size_t k;
	while ((k = fread(buf, 1, sizeof buf, in)) > 0)
		ck_assert_uint_eq(fwrite(buf, 1, k, out), k);
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
}

/* count_in counts the occurrences of needle in the file at path (its
 * first MiB). */
static int count_in(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	char *buf = malloc(1 << 20);
	ck_assert_ptr_nonnull(buf);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[n] = 0;
	int k = 0;
	for (const char *p = buf; (p = strstr(p, needle)); p += strlen(needle))
		k++;
	free(buf);
	return k;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
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
	tid ht, ct, nt;
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
	invoke_through_host(gw.target, &ct.t, h);
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
	tid t;
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
	tid t;
	char details[300];
	int st = probe(gw.target, tls_of(&t, "rogue-ca.pem", "client"), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "client trusting the rogue CA: %d %s", st,
	              details);
	tls_of(&t, "ca.pem", "client");
	t.t.server_name = "gateway.example.org";
	st = probe(gw.target, &t.t, details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "a name the certificate lacks: %d %s", st,
	              details);
	t.t.server_name = NULL;
	st = probe(gw.target, &t.t, details, sizeof details);
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
	tid t;
	char details[300];
	int st = probe(gw.target, tls_of(&t, "ca.pem", NULL), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNIMPLEMENTED, "TLS without a client certificate: %d %s",
	              st, details);
	st = probe(gw.target, tls_of(&t, "ca.pem", "client"), details, sizeof details);
	ck_assert_int_eq(st, GRPC_STATUS_UNIMPLEMENTED);
	st = probe(gw.target, NULL, details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "plaintext on a TLS listener: %d %s", st,
	              details);
	tid ht, ct;
	raw_stream *h = sink_host(gw.target, tls_of(&ht, "ca.pem", NULL));
	invoke_through_host(gw.target, tls_of(&ct, "ca.pem", NULL), h);
	raw_stream_close(h);
	it_gateway_stop(&gw);
}
END_TEST

/* The listener of a unix socket gets TLS too. */
START_TEST(a_unix_socket_listener_gets_tls_too)
{
	it_world_init(&w, "tls_unix_socket");
	char sock[600], target[620];
	it_path(&w, "gw.sock", sock, sizeof sock);
	char listen[620];
	snprintf(listen, sizeof listen, "unix:%s", sock);
	snprintf(target, sizeof target, "unix:%s", sock);
	it_gw gw;
	const char *args[] = {MTLS_ARGS, "--listen", listen, NULL};
	start_gw(&gw, args);
	tid t;
	char details[300];
	int st = probe(target, tls_of(&t, "ca.pem", "client"), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNIMPLEMENTED, "mTLS over the unix socket: %d %s", st,
	              details);
	st = probe(target, NULL, details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "plaintext on the unix socket: %d %s", st,
	              details);
	st = probe(target, tls_of(&t, "ca.pem", NULL), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAVAILABLE, "no client certificate: %d %s", st, details);
	it_gateway_stop(&gw);
}
END_TEST

/* ---- reload ---------------------------------------------------------------------------- */

enum { IN_FLIGHT = 64 };

/* The certificate renewed on disk while 64 calls are in flight, each held
 * by the host on a connection made before: a half-written renewal (a file
 * that does not parse, then a key that does not match) is ignored; the
 * complete one is served to the next new connection (client auth context
 * and the real openssl s_client agree); every call in flight and the host
 * link carry on. */
START_TEST(a_renewed_certificate_reaches_new_connections_and_no_call_in_flight_fails)
{
	it_world_init(&w, "renewal");
	char cert[600], key[600];
	it_path(&w, "live.pem", cert, sizeof cert);
	it_path(&w, "live.key", key, sizeof key);
	copy_file(C("server-chain.pem"), cert);
	copy_file(C("server.key"), key);
	it_gw gw;
	const char *args[] = {"--tls-cert",      cert,        "--tls-key", key,
	                      "--tls-client-ca", C("ca.pem"), NULL};
	start_gw(&gw, args);
	tid ct, ht;
	tls_of(&ct, "ca.pem", "client");
	raw_stream *h = sink_host(gw.target, tls_of(&ht, "ca.pem", "host"));
	ck_assert(served_is(gw.target, &ct.t, C("server.pem")));

	/* 64 calls, each on its own connection, all held by the host. */
	raw_call *calls[IN_FLIGHT];
	for (int i = 0; i < IN_FLIGHT; i++) {
		char name[32];
		snprintf(name, sizeof name, "i%d", i);
		uint8_t *rq;
		size_t n = pack_invoke("sink", name, "t", &rq);
		calls[i] = raw_call_start(gw.target, &ct.t, RAW_METHOD_INVOKE, rq, n, it_ms(60000));
		free(rq);
		ck_assert_ptr_nonnull(calls[i]);
	}
	uint64_t ids[IN_FLIGHT];
	for (int i = 0; i < IN_FLIGHT; i++)
		ids[i] = sink_next(h, NULL, 0);

	char a[200], b[200];
	/* Half written: a certificate file that does not parse. */
	write_file(cert, "-----BEGIN CERTIFICATE-----\nMIIB\n");
	ck_assert_msg(served_is(gw.target, &ct.t, C("server.pem")),
	              "a broken certificate file replaced the one in use");
	/* The new certificate with the old key: they do not match. */
	copy_file(C("server2-chain.pem"), cert);
	ck_assert_msg(served_is(gw.target, &ct.t, C("server.pem")),
	              "a certificate without its key replaced the one in use");
	ck_assert_str_eq(s_client_serial(gw.port, a, sizeof a),
	                 file_serial(C("server.pem"), b, sizeof b));
	/* The key arrives: the renewal is complete. */
	copy_file(C("server2.key"), key);
	ck_assert_msg(served_is(gw.target, &ct.t, C("server2.pem")),
	              "a new connection did not get the renewed certificate");
	ck_assert_str_eq(s_client_serial(gw.port, a, sizeof a),
	                 file_serial(C("server2.pem"), b, sizeof b));
	ck_assert_str_ne(a, file_serial(C("server.pem"), b, sizeof b));
	/* One warning per refused state, not one per handshake (the mismatched
	 * state saw two: the probe's and s_client's). */
	ck_assert_int_eq(count_in(gw.p->errlog, "TLS: the changed certificate files are not used"),
	                 2);
	ck_assert_msg(it_file_contains(gw.p->errlog, "TLS: certificate files changed"),
	              "the renewal was not logged");

	/* Every call in flight completes, on the connections made before. */
	for (int i = 0; i < IN_FLIGHT; i++)
		ck_assert(raw_host_result(h, ids[i], it_ms(10000)));
	int ok = 0;
	for (int i = 0; i < IN_FLIGHT; i++) {
		char details[300];
		int st =
		    raw_call_finish(calls[i], it_ms(30000), details, sizeof details, NULL, NULL);
		ck_assert_msg(st == GRPC_STATUS_OK, "call %d in flight: %d %s", i, st, details);
		ok++;
	}
	ck_assert_int_eq(ok, IN_FLIGHT);
	/* The host link made before the renewal still carries invocations,
	 * from clients of the new certificate too. */
	invoke_through_host(gw.target, &ct.t, h);
	raw_stream_close(h);
	it_gateway_stop(&gw);
}
END_TEST

/* The client CA bundle is reloaded like the certificate: a CA added to it
 * is trusted by the next handshake, a CA removed no longer is. */
START_TEST(the_client_ca_bundle_is_reloaded_too)
{
	it_world_init(&w, "client_ca_reload");
	char ca[600];
	it_path(&w, "live-ca.pem", ca, sizeof ca);
	copy_file(C("ca.pem"), ca);
	it_gw gw;
	const char *args[] = {TLS_ARGS("server-chain.pem", "server.key"), "--tls-client-ca", ca,
	                      NULL};
	start_gw(&gw, args);
	tid good, rogue;
	tls_of(&good, "ca.pem", "client");
	tls_of(&rogue, "ca.pem", "rogue");
	char details[300];
	ck_assert_int_eq(probe(gw.target, &rogue.t, details, sizeof details),
	                 GRPC_STATUS_UNAVAILABLE);
	/* The rogue CA joins the bundle. */
	char both[600];
	it_path(&w, "both.pem", both, sizeof both);
	char cmd[2000];
	snprintf(cmd, sizeof cmd, "cat '%s' '%s' > '%s'", C("ca.pem"), C("rogue-ca.pem"), both);
	ck_assert_int_eq(system(cmd), 0);
	copy_file(both, ca);
	int st = probe(gw.target, &rogue.t, details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNIMPLEMENTED, "a CA added to the bundle: %d %s", st,
	              details);
	ck_assert_int_eq(probe(gw.target, &good.t, details, sizeof details),
	                 GRPC_STATUS_UNIMPLEMENTED);
	/* And leaves it. */
	copy_file(C("ca.pem"), ca);
	ck_assert_int_eq(probe(gw.target, &rogue.t, details, sizeof details),
	                 GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(probe(gw.target, &good.t, details, sizeof details),
	                 GRPC_STATUS_UNIMPLEMENTED);
	it_gateway_stop(&gw);
}
END_TEST

/* ---- start-up checks ------------------------------------------------------------------- */

/* expect_refusal starts the gateway with args and asserts it exits 2 with
 * a log naming want. */
static void expect_refusal(const char *name, const char *const args[], const char *want)
{
	it_proc *p = it_gateway_spawn(&w, name, "refused.db", args, NULL);
	ck_assert_msg(it_proc_wait_exit(p, it_ms(15000)), "%s: the gateway kept running", name);
	if (it_exit_code(p) != 2 || !it_file_contains(p->errlog, want)) {
		it_proc_dump(p);
		ck_abort_msg("%s: exit %d, want 2 and a log saying '%s'", name, it_exit_code(p),
		             want);
	}
	it_proc_release(p);
}

/* Unreadable, non-PEM or mismatched TLS files stop the start (exit 2)
 * with a message naming the file; the right files start. */
START_TEST(bad_tls_files_refuse_to_start_with_a_clear_error)
{
	it_world_init(&w, "bad_tls_files");
	char junk[600], missing[600];
	it_path(&w, "junk.pem", junk, sizeof junk);
	it_path(&w, "missing.pem", missing, sizeof missing);
	write_file(junk, "not a certificate\n");
	const char *mismatch[] = {TLS_ARGS("server.pem", "client.key"), NULL};
	expect_refusal("mismatch", mismatch, "does not match the certificate of --tls-cert");
	const char *nofile[] = {"--tls-cert", missing, "--tls-key", C("server.key"), NULL};
	expect_refusal("nofile", nofile, "cannot open");
	const char *notpem[] = {"--tls-cert", junk, "--tls-key", C("server.key"), NULL};
	expect_refusal("notpem", notpem, "no PEM certificate");
	const char *nokey[] = {"--tls-cert", C("server.pem"), "--tls-key", junk, NULL};
	expect_refusal("nokey", nokey, "no PEM private key");
	const char *badca[] = {TLS_ARGS("server.pem", "server.key"), "--tls-client-ca", junk, NULL};
	expect_refusal("badca", badca, "--tls-client-ca");
	const char *halfpair[] = {"--tls-cert", C("server.pem"), NULL};
	expect_refusal("halfpair", halfpair, "--tls-cert needs --tls-key");
	const char *caonly[] = {"--tls-client-ca", C("ca.pem"), NULL};
	expect_refusal("caonly", caonly, "--tls-client-ca needs --tls-cert");
	/* The happy path of the same files. */
	it_gw gw;
	const char *good[] = {TLS_ARGS("server.pem", "server.key"), "--tls-client-ca", C("ca.pem"),
	                      NULL};
	start_gw(&gw, good);
	it_gateway_stop(&gw);
}
END_TEST

/* ---- safe by default ------------------------------------------------------------------- */

/* A minimal access policy in the format of docs/security.md. */
static const char *write_policy(char *buf, size_t n)
{
	it_path(&w, "access.yaml", buf, n);
	write_file(buf, "principals:\n"
	                "  - name: tester\n"
	                "    identities:\n"
	                "      - uri:spiffe://spawn.test/client\n"
	                "    invoke:\n"
	                "      - system: sink\n");
	return buf;
}

/* A plaintext bind on a non-loopback address (0.0.0.0) refuses to start
 * unless --insecure, which starts with a warning; TLS alone is not enough,
 * TLS and --access are. Loopback and unix sockets need nothing. */
START_TEST(a_non_loopback_bind_needs_tls_and_a_policy_or_insecure)
{
	it_world_init(&w, "safe_defaults");
	const char *plain[] = {"--listen", "0.0.0.0:0", NULL};
	expect_refusal("plain", plain, "--listen 0.0.0.0:0 is not a loopback address");
	expect_refusal("plain2", plain, "--insecure");
	const char *host[] = {"--host-listen", "0.0.0.0:0", NULL};
	expect_refusal("host", host, "--host-listen 0.0.0.0:0 is not a loopback address");
	const char *admin[] = {"--admin-listen", "[::]:0", NULL};
	expect_refusal("admin", admin, "--admin-listen [::]:0 is not a loopback address");
	const char *tls_only[] = {"--listen", "0.0.0.0:0", TLS_ARGS("server.pem", "server.key"),
	                          NULL};
	expect_refusal("tls_only", tls_only, "(add --access FILE)");

	/* --insecure: it starts, and says what it exposes. */
	it_gw gw;
	const char *insecure[] = {"--listen", "0.0.0.0:0", "--insecure", NULL};
	start_gw(&gw, insecure);
	char any[64];
	next_listener(&gw, any, sizeof any); /* the 0.0.0.0 listener, reached on loopback */
	char details[300];
	ck_assert_int_eq(probe(any, NULL, details, sizeof details), GRPC_STATUS_UNIMPLEMENTED);
	ck_assert_msg(it_file_contains(gw.p->errlog, "WARN  --insecure: 0.0.0.0:0 is served in "
	                                             "plaintext without authentication"),
	              "no start-up warning for the insecure bind");
	it_gateway_stop(&gw);

	/* TLS and a policy: it starts without a warning. */
	char policy[600];
	it_gw gw2;
	const char *secured[] = {
	    "--listen",  "0.0.0.0:0", TLS_ARGS("server.pem", "server.key"), "--tls-client-ca",
	    C("ca.pem"), "--access",  write_policy(policy, sizeof policy),  NULL};
	it_gateway_start(&w, &gw2, "gw2", "state2.db", secured, NULL);
	next_listener(&gw2, any, sizeof any);
	tid t;
	ck_assert_int_eq(probe(any, NULL, details, sizeof details), GRPC_STATUS_UNAVAILABLE);
	int st = probe(any, tls_of(&t, "ca.pem", "client"), details, sizeof details);
	ck_assert_msg(st != GRPC_STATUS_UNAVAILABLE, "mTLS on the 0.0.0.0 listener: %d %s", st,
	              details);
	ck_assert(!it_file_contains(gw2.p->errlog, "--insecure"));
	it_gateway_stop(&gw2);
}
END_TEST

/* ---- split listeners ------------------------------------------------------------------- */

#define ADMIN_KEY_ROTATION "/spawn.gateway.v1.Admin/KeyRotation"

/* --host-listen and --admin-listen: each service answers only on its own
 * listeners (UNIMPLEMENTED elsewhere), all of them under mTLS, and a host
 * on the host listener serves clients of the client listener. */
START_TEST(split_listeners_serve_each_role_only_on_its_own)
{
	it_world_init(&w, "split_listeners");
	it_gw gw;
	const char *args[] = {MTLS_ARGS,        "--host-listen", "127.0.0.1:0",
	                      "--admin-listen", "127.0.0.1:0",   NULL};
	start_gw(&gw, args);
	char hostl[64], adminl[64];
	next_listener(&gw, hostl, sizeof hostl);
	next_listener(&gw, adminl, sizeof adminl);
	const char *cl = gw.target;
	tid ct, ht, at;
	tls_of(&ct, "ca.pem", "client");
	tls_of(&ht, "ca.pem", "host");
	tls_of(&at, "ca.pem", "admin");
	char details[300];

	/* Each service refused where it is not served. */
	ck_assert_int_eq(stream_status(cl, &ht.t, RAW_METHOD_CONNECT), GRPC_STATUS_UNIMPLEMENTED);
	ck_assert_int_eq(stream_status(adminl, &ht.t, RAW_METHOD_CONNECT),
	                 GRPC_STATUS_UNIMPLEMENTED);
	int st = raw_unary_tls(cl, &at.t, ADMIN_KEY_ROTATION, "", 0, it_ms(10000), details,
	                       sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNIMPLEMENTED, "Admin on the client listener: %d %s", st,
	              details);
	ck_assert_int_eq(raw_unary_tls(hostl, &at.t, ADMIN_KEY_ROTATION, "", 0, it_ms(10000),
	                               details, sizeof details),
	                 GRPC_STATUS_UNIMPLEMENTED);
	uint8_t *rq;
	size_t n = pack_invoke("sink", "r", NULL, &rq);
	ck_assert_int_eq(raw_unary_tls(hostl, &ct.t, RAW_METHOD_INVOKE, rq, n, it_ms(10000),
	                               details, sizeof details),
	                 GRPC_STATUS_UNIMPLEMENTED);
	ck_assert_int_eq(raw_unary_tls(adminl, &ct.t, RAW_METHOD_INVOKE, rq, n, it_ms(10000),
	                               details, sizeof details),
	                 GRPC_STATUS_UNIMPLEMENTED);
	free(rq);
	/* Every listener is under mTLS. */
	ck_assert_int_eq(probe(hostl, NULL, details, sizeof details), GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(probe(adminl, NULL, details, sizeof details), GRPC_STATUS_UNAVAILABLE);

	/* Each works on its own. */
	raw_stream *h = sink_host(hostl, &ht.t);
	invoke_through_host(cl, &ct.t, h);
	st = raw_unary_tls(adminl, &at.t, ADMIN_KEY_ROTATION, "", 0, it_ms(10000), details,
	                   sizeof details);
	ck_assert_msg(st == GRPC_STATUS_OK, "Admin on the admin listener: %d %s", st, details);
	raw_stream_close(h);
	it_gateway_stop(&gw);
}
END_TEST

/* With --host-listen only, Admin stays on the client listener; with no
 * split at all, everything is served on --listen (today's behaviour). */
START_TEST(without_a_listener_of_its_own_a_role_is_served_on_listen)
{
	it_world_init(&w, "split_defaults");
	it_gw gw;
	const char *args[] = {"--host-listen", "127.0.0.1:0", NULL};
	start_gw(&gw, args);
	char hostl[64], details[300];
	next_listener(&gw, hostl, sizeof hostl);
	int st =
	    raw_unary(gw.target, ADMIN_KEY_ROTATION, "", 0, it_ms(10000), details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_OK, "Admin on --listen: %d %s", st, details);
	ck_assert_int_eq(stream_status(gw.target, NULL, RAW_METHOD_CONNECT),
	                 GRPC_STATUS_UNIMPLEMENTED);
	raw_stream *h = sink_host(hostl, NULL);
	invoke_through_host(gw.target, NULL, h);
	raw_stream_close(h);
	it_gateway_stop(&gw);

	it_gw all;
	it_gateway_start(&w, &all, "gw_all", "all.db", NULL, NULL);
	st =
	    raw_unary(all.target, ADMIN_KEY_ROTATION, "", 0, it_ms(10000), details, sizeof details);
	ck_assert_int_eq(st, GRPC_STATUS_OK);
	h = sink_host(all.target, NULL);
	invoke_through_host(all.target, NULL, h);
	raw_stream_close(h);
	it_gateway_stop(&all);
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
	    {"tls_unix_socket", a_unix_socket_listener_gets_tls_too},
	    {"renewal", a_renewed_certificate_reaches_new_connections_and_no_call_in_flight_fails},
	    {"client_ca_reload", the_client_ca_bundle_is_reloaded_too},
	    {"bad_tls_files", bad_tls_files_refuse_to_start_with_a_clear_error},
	    {"safe_defaults", a_non_loopback_bind_needs_tls_and_a_policy_or_insecure},
	    {"split_listeners", split_listeners_serve_each_role_only_on_its_own},
	    {"split_defaults", without_a_listener_of_its_own_a_role_is_served_on_listen},
	};
	return IT_SUITE("integration_tls", cases, teardown, 120);
}

int main(void)
{
	return it_run(tls_suite());
}
