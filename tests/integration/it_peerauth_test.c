/* it_peerauth_test.c - the members of a cluster are principals of the
 * access policy (issue 11, "peers as principals"; docs/security.md
 * "Peers", docs/design/cluster.md).
 *
 * Three gateway processes on one PostgreSQL namespace, mTLS everywhere with
 * the certificate a member would have on Kubernetes (peer.pem: a service
 * name and a SPIFFE URI, no address; the members dial each other at
 * 127.0.0.1 and check the name given by --peer-tls-server-name), and an
 * access policy in which the members' identity is the principal 'cluster'
 * (peer: true). Each member has its own it-host (--trace: "invoked ACTOR
 * ACTION" per turn, so the test sees which member ran a call). The view
 * comes from the hidden flag --cluster-test-view, as in it_routing_test.c.
 *
 *   - calls through a non-owner are forwarded and authorized once, at the
 *     entry member: the owner trusts its word for the principal (a token
 *     principal that only the entry member's policy knows gets through it,
 *     and the owner logs that principal), and the caller's grants hold
 *     through the forward (an action it may not call is refused at the
 *     entry, never reaching any host);
 *   - a client certificate that is not a peer calling Peer.Forward or
 *     Peer.Ping directly is refused PERMISSION_DENIED (an unknown one
 *     UNAUTHENTICATED) and nothing runs; hostile principals in a peer's
 *     Forward are refused INVALID_ARGUMENT;
 *   - a policy reload that removes the peer right: the member refuses its
 *     peers' forwards (the entry answers UNAVAILABLE naming the refusal,
 *     not PERMISSION_DENIED), serves its own clients, and forwards flow
 *     again once the right is back;
 *   - without --peer-tls-server-name a member cannot reach peers whose
 *     certificate does not name their address;
 *   - peers that authenticate with --peer-token-file over plaintext
 *     loopback, and the start-up checks of this member's own credential.
 *
 * Runs through tests/store/with-db.sh under the ctest fixture spawn_db;
 * IT_STORES selects the stores (ctest: postgres).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <spawn/spawn.h>

#include "auth.h"
#include "harness.h"
#include "itc.h"
#include "itcluster.h"
#include "itdb.h"
#include "raw.h"

#define SERVED       ITCL_SERVED
#define PING_PATH    "/spawn.gateway.v1.Peer/Ping"
#define FORWARD_PATH "/spawn.gateway.v1.Peer/Forward"
#define PEER_NAME    "peer.spawn.test"

static it_world w;
static itdb db;
static spawn_client *cl[ITCL_MAX];

static void teardown(void)
{
	itcl_teardown(&w, &db, cl);
}

typedef itcl_member member;

/* ---- the access policy ------------------------------------------------------------ */

/* hash writes the policy's hash of token into out. */
static void hash(const char *token, char out[GW_TOKEN_HASH_LEN + 1])
{
	ck_assert(gw_token_hash(token, strlen(token), out));
}

/* write_policy writes the policy of the mTLS test to path: the members
 * ('cluster', peer: peer), the hosts, 'web' (Add and Get on it), 'ops'
 * (admin) and, with visitor, the token principal 'visitor' (Add only). */
static void write_policy(const char *path, bool peer, bool visitor)
{
	char hv[GW_TOKEN_HASH_LEN + 1], tmp[700];
	hash("visitor-token", hv);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
	        "principals:\n"
	        "  - name: cluster\n"
	        "    identities: [uri:spiffe://spawn.test/peer]\n"
	        "    peer: %s\n"
	        "  - name: it-host\n"
	        "    identities: [uri:spiffe://spawn.test/host]\n"
	        "    host: [it]\n"
	        "  - name: web\n"
	        "    identities: [uri:spiffe://spawn.test/client]\n"
	        "    invoke: [{system: it, actions: [Add, Get]}]\n"
	        "  - name: ops\n"
	        "    identities: [uri:spiffe://spawn.test/admin]\n"
	        "    admin: true\n",
	        peer ? "true" : "false");
	if (visitor)
		fprintf(f,
		        "  - name: visitor\n"
		        "    tokens: [%s]\n"
		        "    invoke: [{system: it, actions: [Add]}]\n",
		        hv);
	fclose(f);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/* count_in_file: how many lines of path contain needle (the whole file). */
static int count_in_file(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char line[8192];
	int n = 0;
	while (fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* ---- members ------------------------------------------------------------------------ */

/* start_tls_members starts n gateways with mTLS (peer.pem), --access
 * (each its own policy file; member 0's also knows 'visitor') and, when
 * server_name, --peer-tls-server-name; each with its own tracing host
 * (host.pem) and a client of the test (client.pem). */
static void start_tls_members(member *m, int n, bool server_name)
{
	itcl_certs c;
	itcl_certs_load(&w, &c, "peer", PEER_NAME);
	for (int i = 0; i < n; i++) {
		char file[32], gname[16], hname[16];
		itcl_member_init(&w, &m[i], i);
		snprintf(file, sizeof file, "policy-%d.yaml", i);
		it_path(&w, file, m[i].policy, sizeof m[i].policy);
		write_policy(m[i].policy, true, i == 0);
		snprintf(gname, sizeof gname, "gw%d", i);
		snprintf(hname, sizeof hname, "host%d", i);
		const char *gargs[] = {"--cluster-test-view",
		                       m[i].view,
		                       "--snapshot-interval",
		                       "600000",
		                       "--tls-cert",
		                       c.scert,
		                       "--tls-key",
		                       c.skey,
		                       "--tls-client-ca",
		                       c.ca,
		                       "--access",
		                       m[i].policy,
		                       "--log-level",
		                       "debug",
		                       "--log-rate",
		                       "0",
		                       server_name ? "--peer-tls-server-name" : NULL,
		                       PEER_NAME,
		                       NULL};
		itdb_gateway_start(&w, &db, &m[i].g, gname, gargs, NULL);
		m[i].host = itcl_tls_host(&w, hname, m[i].g.target, &c, PEER_NAME, "Add,Get");
		ck_assert_int_eq(spawn_client_create(&cl[i], m[i].g.target), SPAWN_OK);
	}
}

static void stop_members(member *m, int n)
{
	itcl_stop(m, n, cl);
}

/* With only >= 0, write_view says only that member serves the types. */
static int only = -1;

/* write_view writes member i's view file (every member ACTIVE, serving
 * SERVED, or only member `only`) as version and has the gateway apply it. */
static void write_view(member *m, int n, int i, uint64_t version)
{
	const char *serves[ITCL_MAX];
	for (int k = 0; k < n; k++)
		serves[k] = only < 0 || only == k ? SERVED : "-";
	itcl_write_view(m, n, i, version, NULL, serves);
}

static void ran(member *m, int n, const char *actor, int *out)
{
	itcl_ran(m, n, actor, out);
}

static int add_with(spawn_client *c, const char *actor, int64_t value, int64_t *total, char *msg,
                    size_t n)
{
	itc_actor a = {.name = actor, .parent = "counters"};
	return itc_add(c, a, value, 0, total, msg, n);
}

/* owned_by names a new actor in out (64 bytes) that member want owns:
 * each candidate is called once through member 0 (Get) and the host that
 * ran it says who owns it. */
static void owned_by(member *m, int n, int want, char *out)
{
	for (int tries = 0; tries < 60; tries++) {
		itdb_unique(out, 64, "pa");
		int64_t total;
		char msg[256];
		itc_actor a = {.name = out, .parent = "counters"};
		int rc = itc_get(cl[0], a, &total, msg, sizeof msg);
		ck_assert_msg(rc == SPAWN_OK, "Get %s: %s: %s", out, spawn_status_name(rc), msg);
		int c[3];
		ran(m, n, out, c);
		ck_assert_int_eq(c[0] + c[1] + c[2], 1);
		if (c[want])
			return;
	}
	ck_abort_msg("no actor owned by member %d in 60 names", want);
}

/* ---- raw Peer calls ------------------------------------------------------------------ */

/* forward_bytes packs a ForwardRequest for Add(1) on actor, claiming
 * principal, into buf; returns its length. */
static size_t forward_bytes(const char *actor, const char *principal, uint8_t *buf, size_t cap)
{
	uint8_t payload[32];
	It__Add one = IT__ADD__INIT;
	one.value = 1;
	size_t plen = it__add__pack(&one, payload);
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = "it";
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = (char *)actor;
	id.system = "it";
	id.parent = "counters";
	Spawn__Actors__Actor act = SPAWN__ACTORS__ACTOR__INIT;
	act.id = &id;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "type.googleapis.com/it.Add";
	any.value.data = payload;
	any.value.len = plen;
	Spawn__InvocationRequest rq = SPAWN__INVOCATION_REQUEST__INIT;
	rq.system = &sys;
	rq.actor = &act;
	rq.action_name = "Add";
	rq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	rq.value = &any;
	Spawn__Gateway__V1__ForwardRequest fr = SPAWN__GATEWAY__V1__FORWARD_REQUEST__INIT;
	fr.request = &rq;
	fr.hops = 1;
	fr.sender_id = "member-x";
	fr.view_version = 1;
	fr.principal = (char *)principal;
	size_t len = spawn__gateway__v1__forward_request__get_packed_size(&fr);
	ck_assert_uint_le(len, cap);
	return spawn__gateway__v1__forward_request__pack(&fr, buf);
}

/* peer_call calls method on target as the holder of certificate who
 * (NULL: none; "peer", "client", ...) with the bearer token auth (NULL:
 * none) and returns the status, the details in details. */
static int peer_call(const char *target, const char *who, const char *auth, const char *method,
                     const uint8_t *req, size_t len, char *details, size_t n)
{
	char ca[700], cert[700], key[700], f[64];
	it_cert(&w, "ca.pem", ca, sizeof ca);
	snprintf(f, sizeof f, "%s.pem", who);
	it_cert(&w, f, cert, sizeof cert);
	snprintf(f, sizeof f, "%s.key", who);
	it_cert(&w, f, key, sizeof key);
	it_tls tls = {.ca = ca, .cert = cert, .key = key, .server_name = PEER_NAME};
	return raw_unary_auth(target, &tls, method, req, len, it_ms(10000), auth, details, n);
}

/* ---- the tests ---------------------------------------------------------------------- */

START_TEST(peers_are_principals_of_the_policy_over_mutual_tls)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "mtls", k));
	itdb_init(&db, &w, k, "state.db");
	it_certs(&w);
	member m[3];
	start_tls_members(m, 3, true);
	for (int i = 0; i < 3; i++)
		write_view(m, 3, i, 1);

	/* Calls through every member reach the owner: forwarded between peers
	 * that authenticate with their certificates, and answered. */
	char a1[64], a2[64];
	owned_by(m, 3, 1, a1);
	owned_by(m, 3, 2, a2);
	int64_t t = 0;
	char msg[512];
	for (int via = 0; via < 3; via++) {
		ck_assert_int_eq(add_with(cl[via], a1, 1, &t, msg, sizeof msg), SPAWN_OK);
		ck_assert_int_eq(t, via + 1);
	}
	int c[3];
	ran(m, 3, a1, c);
	ck_assert_msg(c[0] == 0 && c[1] == 3 && c[2] == 0, "%s ran on %d/%d/%d", a1, c[0], c[1],
	              c[2]);
	for (int via = 0; via < 3; via++) {
		ck_assert_int_eq(add_with(cl[via], a2, 1, &t, msg, sizeof msg), SPAWN_OK);
		ck_assert_int_eq(t, via + 1);
	}
	ran(m, 3, a2, c);
	ck_assert_msg(c[0] == 0 && c[1] == 0 && c[2] == 3, "%s ran on %d/%d/%d", a2, c[0], c[1],
	              c[2]);
	/* The owner logged who the entry member authorized. */
	ck_assert_int_ge(count_in_file(m[1].g.p->errlog, "for principal 'web'"), 1);

	/* Authorized once, at the entry: 'visitor' exists only in member 0's
	 * policy. Through member 0 its Add reaches the owner, member 1, which
	 * trusts member 0's word and logs the principal; at member 1 itself the
	 * token is unknown. */
	spawn_client *vc = NULL;
	spawn_client_opts vo = {.target = m[0].g.target};
	vo.security.token = "visitor-token";
	ck_assert_int_eq(spawn_client_create_opts(&vc, &vo), SPAWN_OK);
	int rc = add_with(vc, a1, 10, &t, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "visitor via the entry: %s: %s", spawn_status_name(rc), msg);
	ck_assert_int_eq(t, 13);
	ran(m, 3, a1, c);
	ck_assert_int_eq(c[1], 1);
	ck_assert_int_eq(count_in_file(m[1].g.p->errlog, "for principal 'visitor'"), 1);
	/* The caller's grants hold through a forward: Get is not visitor's,
	 * refused at the entry, and no host runs it. */
	spawn_reply r;
	itc_actor a = {.name = a1, .parent = "counters"};
	rc = itc_invoke(vc, a, "Get", NULL, it_ms(5000), &r);
	ck_assert_msg(rc == SPAWN_PERMISSION_DENIED && r.message &&
	                  strstr(r.message, "principal 'visitor'"),
	              "visitor's Get: %s: %s", spawn_status_name(rc), r.message);
	spawn_reply_fini(&r);
	ran(m, 3, a1, c);
	ck_assert_int_eq(c[0] + c[1] + c[2], 0);
	spawn_client_destroy(vc);
	vo.target = m[1].g.target;
	ck_assert_int_eq(spawn_client_create_opts(&vc, &vo), SPAWN_OK);
	rc = add_with(vc, a1, 10, &t, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_UNAUTHENTICATED, "visitor at member 1: %s: %s",
	              spawn_status_name(rc), msg);
	spawn_client_destroy(vc);

	/* Not a peer: a client, a host and an admin certificate calling the
	 * Peer service directly are refused PERMISSION_DENIED, an unknown
	 * certificate and an unknown token UNAUTHENTICATED; nothing runs. A
	 * Forward claiming to come for 'ops' changes nothing. */
	uint8_t fwd[512];
	size_t flen = forward_bytes(a1, "ops", fwd, sizeof fwd);
	char details[512];
	static const char *const not_peers[] = {"client", "host", "admin"};
	for (size_t i = 0; i < 3; i++) {
		const char *paths[] = {PING_PATH, FORWARD_PATH};
		for (int p = 0; p < 2; p++) {
			int st = peer_call(m[1].g.target, not_peers[i], NULL, paths[p], fwd,
			                   p ? flen : 0, details, sizeof details);
			ck_assert_msg(st == GRPC_STATUS_PERMISSION_DENIED &&
			                  strstr(details, "is not a peer of the cluster"),
			              "%s calling %s: %d %s", not_peers[i], paths[p], st, details);
		}
	}
	int st = peer_call(m[1].g.target, "other", NULL, FORWARD_PATH, fwd, flen, details,
	                   sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAUTHENTICATED, "other: %d %s", st, details);
	st = peer_call(m[1].g.target, "peer", "Bearer not-a-known-token", FORWARD_PATH, fwd, flen,
	               details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAUTHENTICATED && strstr(details, "unknown bearer token"),
	              "a peer certificate with an unknown token: %d %s", st, details);
	ran(m, 3, a1, c);
	ck_assert_int_eq(c[0] + c[1] + c[2], 0);
	ck_assert_int_ge(
	    count_in_file(m[1].g.p->errlog,
	                  "peer Forward by principal 'web': refused PERMISSION_DENIED"),
	    1);
	/* The peer certificate itself is a peer: Ping answers, and a Forward
	 * runs at the owner (the test plays a member). */
	st = peer_call(m[1].g.target, "peer", NULL, PING_PATH, fwd, 0, details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_OK, "peer Ping: %d %s", st, details);
	st = peer_call(m[1].g.target, "peer", NULL, FORWARD_PATH, fwd, flen, details,
	               sizeof details);
	ck_assert_msg(st == GRPC_STATUS_OK, "peer Forward: %d %s", st, details);
	ran(m, 3, a1, c);
	ck_assert_int_eq(c[1], 1);
	ck_assert_int_eq(count_in_file(m[1].g.p->errlog, "for principal 'ops'"), 1);

	/* Hostile principals in a peer's Forward (STYLE.md 12): a NUL, a
	 * control character, invalid UTF-8, over --max-name-bytes. */
	char longp[300];
	memset(longp, 'p', sizeof longp - 1);
	longp[sizeof longp - 1] = 0;
	static const char *const says[] = {"NUL", "control character", "not valid UTF-8",
	                                   "over the limit"};
	const char *bad[] = {"a\x01"
	                     "b",
	                     "a\x1b[2Jb",
	                     "a\xff"
	                     "b",
	                     longp};
	for (int i = 0; i < 4; i++) {
		size_t n = forward_bytes(a1, i == 0 ? "aXb" : bad[i], fwd, sizeof fwd);
		if (i == 0) /* "aXb" -> "a\0b" in the encoded bytes */
			((uint8_t *)memchr(fwd, 'X', n))[0] = 0;
		st = peer_call(m[1].g.target, "peer", NULL, FORWARD_PATH, fwd, n, details,
		               sizeof details);
		ck_assert_msg(st == GRPC_STATUS_INVALID_ARGUMENT && strstr(details, "principal") &&
		                  strstr(details, says[i]),
		              "hostile principal %d: %d %s", i, st, details);
	}
	ran(m, 3, a1, c);
	ck_assert_int_eq(c[0] + c[1] + c[2], 0);

	/* A reload that takes the peer right away: member 1 refuses its
	 * peers. The entry answers UNAVAILABLE naming the refusal (not the
	 * caller's PERMISSION_DENIED), nothing runs; member 1 still serves its
	 * own clients. */
	write_policy(m[1].policy, false, false);
	it_proc_signal(m[1].g.p, SIGHUP);
	ck_assert(it_proc_wait_line(m[1].g.p, "access reloaded", it_ms(10000), NULL, 0));
	ck_assert_int_ge(count_in_file(m[1].g.p->errlog, "which is not a peer"), 1);
	/* The answer is marked never dispatched, so a client that retries
	 * such answers (cl[0]) would retry it until its deadline (the policy
	 * may come back): a fail-fast client gets it as the entry gave it. */
	spawn_client *ff = NULL;
	spawn_client_opts fo = {.target = m[0].g.target, .fail_fast = true};
	ck_assert_int_eq(spawn_client_create_opts(&ff, &fo), SPAWN_OK);
	rc = itc_invoke(ff, a, "Get", NULL, it_ms(15000), &r);
	ck_assert_msg(rc == SPAWN_UNAVAILABLE && r.message &&
	                  strstr(r.message, "refused this member as a peer"),
	              "a forward to a member that no longer takes the peers: %s: %s",
	              spawn_status_name(rc), r.message);
	spawn_reply_fini(&r);
	spawn_client_destroy(ff);
	ran(m, 3, a1, c);
	ck_assert_int_eq(c[0] + c[1] + c[2], 0);
	ck_assert_int_eq(add_with(cl[1], a1, 1, &t, msg, sizeof msg), SPAWN_OK);
	ck_assert_int_eq(t, 15);
	/* Member 1 still reaches member 2 (whose policy did not change). */
	ck_assert_int_eq(add_with(cl[1], a2, 1, &t, msg, sizeof msg), SPAWN_OK);
	ck_assert_int_eq(t, 4);
	/* The right back: forwards to member 1 flow again. */
	write_policy(m[1].policy, true, false);
	it_proc_signal(m[1].g.p, SIGHUP);
	ck_assert(it_proc_wait_line(m[1].g.p, "access reloaded", it_ms(10000), NULL, 0));
	ck_assert_int_eq(add_with(cl[0], a1, 1, &t, msg, sizeof msg), SPAWN_OK);
	ck_assert_int_eq(t, 16);
	ran(m, 3, a1, c);
	ck_assert_msg(c[0] == 0 && c[1] == 2 && c[2] == 0, "%s ran on %d/%d/%d", a1, c[0], c[1],
	              c[2]);
	stop_members(m, 3);
}
END_TEST

/* A member without --peer-tls-server-name checks its peers' certificates
 * against the address it dials (127.0.0.1), which peer.pem does not name:
 * its forwards fail (UNAVAILABLE) and never run; a member with the flag
 * reaches it. */
START_TEST(the_peer_tls_server_name_is_the_name_checked_in_a_peers_certificate)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "server_name", k));
	itdb_init(&db, &w, k, "state.db");
	it_certs(&w);
	member m[2];
	start_tls_members(m, 2, true);
	/* Member 0 again, without the flag (same policy, same store). */
	spawn_client_destroy(cl[0]);
	cl[0] = NULL;
	it_host_stop(m[0].host);
	it_gateway_stop(&m[0].g);
	char ca[700], scert[700], skey[700];
	it_cert(&w, "ca.pem", ca, sizeof ca);
	it_cert(&w, "peer-chain.pem", scert, sizeof scert);
	it_cert(&w, "peer.key", skey, sizeof skey);
	const char *gargs[] = {
	    "--cluster-test-view", m[0].view, "--tls-cert", scert,       "--tls-key", skey,
	    "--tls-client-ca",     ca,        "--access",   m[0].policy, NULL};
	itdb_gateway_start(&w, &db, &m[0].g, "gw0b", gargs, NULL);
	ck_assert_int_eq(spawn_client_create(&cl[0], m[0].g.target), SPAWN_OK);
	/* No host on member 0 now: every member says only member 1 serves. */
	only = 1;
	for (int i = 0; i < 2; i++)
		write_view(m, 2, i, 1);
	only = -1;
	char actor[64];
	itdb_unique(actor, sizeof actor, "sn");
	int64_t t = 0;
	char msg[512];
	int rc = add_with(cl[0], actor, 1, &t, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_UNAVAILABLE || rc == SPAWN_DEADLINE_EXCEEDED,
	              "via the member without the name: %s: %s", spawn_status_name(rc), msg);
	int c[3];
	ran(m + 1, 1, actor, c);
	ck_assert_int_eq(c[0], 0);
	ck_assert_int_eq(add_with(cl[1], actor, 1, &t, msg, sizeof msg), SPAWN_OK);
	ck_assert_int_eq(t, 1);
	spawn_client_destroy(cl[0]);
	spawn_client_destroy(cl[1]);
	cl[0] = cl[1] = NULL;
	it_host_stop(m[1].host);
	it_gateway_stop(&m[0].g);
	it_gateway_stop(&m[1].g);
}
END_TEST

/* write_token_policy writes the token test's policy to path: the peers
 * with the token hashes p1 and p2 (NULL: none), the host's hh, web's hw. */
static void write_token_policy(const char *path, const char *p1, const char *p2, const char *hh,
                               const char *hw)
{
	char tmp[700];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
	        "principals:\n"
	        "  - {name: cluster, tokens: [%s%s%s], peer: true}\n"
	        "  - {name: it-host, tokens: [%s], host: [it]}\n"
	        "  - {name: web, tokens: [%s], invoke: [{system: it}]}\n",
	        p1, p2 ? ", " : "", p2 ? p2 : "", hh, hw);
	fclose(f);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/* write_file replaces path's content with text (a rename: readers see the
 * old or the new file). */
static void write_file(const char *path, const char *text)
{
	char tmp[700];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/* reload sends SIGHUP to the n members and waits for "access reloaded". */
static void reload(member *m, int n)
{
	for (int i = 0; i < n; i++) {
		it_proc_signal(m[i].g.p, SIGHUP);
		ck_assert_msg(it_proc_wait_line(m[i].g.p, "access reloaded", it_ms(10000), NULL, 0),
		              "member %d did not reload", i);
	}
}

/* Peers with a bearer token (--peer-token-file), over plaintext loopback:
 * forwards go through; the Peer service refuses no token
 * (UNAUTHENTICATED) and a client's token (PERMISSION_DENIED). And the
 * start-up checks of this member's own credential. */
START_TEST(peers_authenticate_with_a_token_and_their_own_credential_is_checked)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "token", k));
	itdb_init(&db, &w, k, "state.db");
	char hp[GW_TOKEN_HASH_LEN + 1], hh[GW_TOKEN_HASH_LEN + 1], hw[GW_TOKEN_HASH_LEN + 1];
	hash("peer-token-0123456789", hp);
	hash("host-token", hh);
	hash("web-token", hw);
	char policy[700], tokfile[700], webfile[700], emptyfile[700];
	it_path(&w, "policy.yaml", policy, sizeof policy);
	it_path(&w, "peer.token", tokfile, sizeof tokfile);
	it_path(&w, "web.token", webfile, sizeof webfile);
	it_path(&w, "empty.token", emptyfile, sizeof emptyfile);
	write_token_policy(policy, hp, NULL, hh, hw);
	write_file(tokfile, "peer-token-0123456789\n");
	FILE *f = fopen(webfile, "w");
	fputs("web-token\n", f);
	fclose(f);
	f = fopen(emptyfile, "w");
	fputs("\n", f);
	fclose(f);

	/* Start-up refusals (exit 2, naming the fault, never the token). */
	char view[700];
	it_path(&w, "view-x", view, sizeof view);
	struct {
		const char *file;
		const char *says;
	} refusals[] = {
	    {NULL, "needs a credential for the calls to peers"},
	    {webfile, "is principal 'web' of the access policy"},
	    {emptyfile, "the first line must be the token"},
	};
	for (int i = 0; i < 3; i++) {
		char gname[16];
		snprintf(gname, sizeof gname, "bad%d", i);
		const char *args[] = {"--cluster-test-view",
		                      view,
		                      "--access",
		                      policy,
		                      refusals[i].file ? "--peer-token-file" : NULL,
		                      refusals[i].file,
		                      NULL};
		it_proc *p = itdb_gateway_spawn(&w, &db, gname, args, NULL);
		ck_assert(it_proc_wait_exit(p, it_ms(20000)));
		ck_assert_int_eq(it_exit_code(p), 2);
		ck_assert_msg(it_file_contains(p->errlog, refusals[i].says), "refusal %d: %s", i,
		              refusals[i].says);
		ck_assert(!it_file_contains(p->errlog, "web-token"));
	}

	member m[2];
	setenv("SPAWN_TOKEN", "web-token", 1); /* the test's clients */
	for (int i = 0; i < 2; i++) {
		char gname[16], hname[16];
		itcl_member_init(&w, &m[i], i);
		snprintf(gname, sizeof gname, "gw%d", i);
		snprintf(hname, sizeof hname, "host%d", i);
		const char *gargs[] = {"--cluster-test-view", m[i].view, "--access", policy,
		                       "--peer-token-file",   tokfile,   NULL};
		itdb_gateway_start(&w, &db, &m[i].g, gname, gargs, NULL);
		char bin[700];
		snprintf(bin, sizeof bin, "%s/tests/integration/it-host", it_build_dir());
		const char *argv[] = {bin,       "--gateway", m[i].g.target, "--checkpoint",
		                      "--trace", "--actions", "Add,Get",     NULL};
		const char *env[] = {"SPAWN_TOKEN=host-token", NULL};
		m[i].host = it_spawn(&w, hname, argv, env);
		ck_assert_msg(it_proc_wait_line(m[i].host, "registered", it_ms(15000), NULL, 0),
		              "host %d did not register", i);
		ck_assert_int_eq(spawn_client_create(&cl[i], m[i].g.target), SPAWN_OK);
	}
	unsetenv("SPAWN_TOKEN");
	for (int i = 0; i < 2; i++)
		write_view(m, 2, i, 1);
	char a0[64], a1[64];
	owned_by(m, 2, 0, a0);
	owned_by(m, 2, 1, a1);
	int64_t t = 0;
	char msg[512];
	for (int via = 0; via < 2; via++) {
		ck_assert_int_eq(add_with(cl[via], a0, 1, &t, msg, sizeof msg), SPAWN_OK);
		ck_assert_int_eq(t, via + 1);
	}
	int c[3];
	ran(m, 2, a0, c);
	ck_assert_msg(c[0] == 2 && c[1] == 0, "%s ran on %d/%d", a0, c[0], c[1]);
	for (int via = 0; via < 2; via++) {
		ck_assert_int_eq(add_with(cl[via], a1, 1, &t, msg, sizeof msg), SPAWN_OK);
		ck_assert_int_eq(t, via + 1);
	}
	ran(m, 2, a1, c);
	ck_assert_msg(c[0] == 0 && c[1] == 2, "%s ran on %d/%d", a1, c[0], c[1]);
	uint8_t empty[1];
	char details[512];
	int st = raw_unary_auth(m[0].g.target, NULL, PING_PATH, empty, 0, it_ms(5000), NULL,
	                        details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAUTHENTICATED, "no token: %d %s", st, details);
	st = raw_unary_auth(m[0].g.target, NULL, PING_PATH, empty, 0, it_ms(5000),
	                    "Bearer web-token", details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_PERMISSION_DENIED && strstr(details, "principal 'web'"),
	              "a client's token: %d %s", st, details);
	st = raw_unary_auth(m[0].g.target, NULL, PING_PATH, empty, 0, it_ms(5000),
	                    "Bearer peer-token-0123456789", details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_OK, "the peer token: %d %s", st, details);

	/* Rotation without a restart: the new token's hash beside the old one,
	 * the new token in the file, the old hash gone (a SIGHUP each). The
	 * forwards never fail, and the old token is refused at the end. */
	char hp2[GW_TOKEN_HASH_LEN + 1];
	hash("peer-token-rotated-9876", hp2);
	write_token_policy(policy, hp, hp2, hh, hw);
	reload(m, 2);
	write_file(tokfile, "peer-token-rotated-9876\n");
	reload(m, 2);
	write_token_policy(policy, hp2, NULL, hh, hw);
	reload(m, 2);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(count_in_file(m[i].g.p->errlog, "peer token reloaded from"), 3);
	for (int via = 0; via < 2; via++) {
		ck_assert_int_eq(add_with(cl[via], a0, 1, &t, msg, sizeof msg), SPAWN_OK);
		ck_assert_int_eq(t, via + 3);
		ck_assert_int_eq(add_with(cl[via], a1, 1, &t, msg, sizeof msg), SPAWN_OK);
		ck_assert_int_eq(t, via + 3);
	}
	st = raw_unary_auth(m[0].g.target, NULL, PING_PATH, empty, 0, it_ms(5000),
	                    "Bearer peer-token-0123456789", details, sizeof details);
	ck_assert_msg(st == GRPC_STATUS_UNAUTHENTICATED, "the old peer token: %d %s", st, details);
	/* An unreadable token file keeps the token in use. */
	write_file(tokfile, "\n");
	reload(m, 1);
	ck_assert_int_eq(count_in_file(m[0].g.p->errlog, "the peer token was NOT reloaded"), 1);
	ck_assert_int_eq(add_with(cl[0], a1, 1, &t, msg, sizeof msg), SPAWN_OK);
	ck_assert_int_eq(t, 5);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(count_in_file(m[i].g.p->errlog, "peer-token-0123456789"), 0);
		ck_assert_int_eq(count_in_file(m[i].g.p->errlog, "peer-token-rotated"), 0);
	}
	stop_members(m, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration_peerauth");
	const itdb_case cases[] = {
	    {"mtls", peers_are_principals_of_the_policy_over_mutual_tls, 180},
	    {"server_name", the_peer_tls_server_name_is_the_name_checked_in_a_peers_certificate,
	     120},
	    {"token", peers_authenticate_with_a_token_and_their_own_credential_is_checked, 120},
	};
	itdb_add_cases(s, cases, sizeof cases / sizeof cases[0], "postgres", teardown);
	itdb_launcher_start();
	return it_run(s);
}
