/* it_routing_test.c - gateways of one cluster route each actor to its owner
 * (issue 11, "Placement and routing"; docs/design/cluster.md).
 *
 * Two or three gateway processes on one PostgreSQL or MariaDB namespace,
 * each with its own it-host (--trace: "invoked ACTOR ACTION" per turn, so
 * the test sees which member ran a call). The membership view comes from
 * the hidden flag --cluster-test-view: a file the test writes once it knows
 * every gateway's port, read on SIGUSR1 ("view N" on stdout once applied)
 * and fed to the router exactly as the membership module's on_view is.
 *
 * Runs through tests/store/with-db.sh under the ctest fixture spawn_db;
 * IT_STORES selects the stores (default: postgres,mariadb).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <spawn/spawn.h>

#include "harness.h"
#include "itc.h"
#include "itcluster.h"
#include "itdb.h"
#include "raw.h"

#define SERVED               ITCL_SERVED
#define GW_PEER_PING_PATH    "/spawn.gateway.v1.Peer/Ping"
#define GW_PEER_FORWARD_PATH "/spawn.gateway.v1.Peer/Forward"

static it_world w;
static itdb db;
static spawn_client *cl[ITCL_MAX];

static void teardown(void)
{
	itcl_teardown(&w, &db, cl);
}

typedef itcl_member member;

/* With peer_listen set, start_members gives every gateway a --peer-listen
 * of its own, and the views advertise those addresses. */
static bool peer_listen;

/* With mtls set, start_members gives every gateway TLS with client
 * certificates required (tests/tls/mkcerts.sh), and the hosts and clients
 * their certificates (libspawn's SPAWN_TLS_* environment). */
static bool mtls;

/* start_members starts n gateways (each with the view file DIR/view-<i>
 * and its own tracing host) and their clients. */
static void start_members(member *m, int n, const char *host_actions)
{
	itcl_certs c = {0};
	if (mtls)
		itcl_certs_load(&w, &c, "server", NULL);
	for (int i = 0; i < n; i++) {
		char gname[16], hname[16];
		itcl_member_init(&w, &m[i], i);
		snprintf(gname, sizeof gname, "gw%d", i);
		snprintf(hname, sizeof hname, "host%d", i);
		const char *gargs[] = {"--cluster-test-view",
		                       m[i].view,
		                       "--snapshot-interval",
		                       "600000",
		                       mtls ? "--tls-cert" : NULL,
		                       c.scert,
		                       "--tls-key",
		                       c.skey,
		                       "--tls-client-ca",
		                       c.ca,
		                       NULL};
		const char *pargs[] = {"--cluster-test-view",
		                       m[i].view,
		                       "--snapshot-interval",
		                       "600000",
		                       "--peer-listen",
		                       "127.0.0.1:0",
		                       NULL};
		itdb_gateway_start(&w, &db, &m[i].g, gname, peer_listen ? pargs : gargs, NULL);
		if (peer_listen) {
			char line[128], addr[64];
			int port = 0;
			ck_assert(it_proc_wait_line(m[i].g.p, "listening", it_ms(10000), line,
			                            sizeof line));
			ck_assert_int_eq(sscanf(line, "listening %63s %d", addr, &port), 2);
			snprintf(m[i].peer, sizeof m[i].peer, "127.0.0.1:%d", port);
		}
		if (!mtls) {
			const char *hargs[] = {"--checkpoint", "--trace", "--actions", host_actions,
			                       NULL};
			m[i].host = it_host_start(&w, hname, m[i].g.target, hargs);
		} else {
			m[i].host = itcl_tls_host(&w, hname, m[i].g.target, &c, NULL, host_actions);
		}
		ck_assert_int_eq(spawn_client_create(&cl[i], m[i].g.target), SPAWN_OK);
	}
}

/* The member write_view marks dead (status 4), or -1. */
static int dead_member = -1;

static void stop_members(member *m, int n)
{
	itcl_stop(m, n, cl);
}

/* write_view writes member i's view file (dead_member DEAD, the others
 * ACTIVE) with the types each serves (serves[k] NULL: SERVED) and has the
 * gateway apply it. */
static void write_view(member *m, int n, int i, uint64_t version, const char *const *serves)
{
	int status[ITCL_MAX];
	for (int k = 0; k < n; k++)
		status[k] = k == dead_member ? 4 : 2;
	itcl_write_view(m, n, i, version, status, serves);
}

static void ran(member *m, int n, const char *actor, int *out)
{
	itcl_ran(m, n, actor, out);
}

static int add(int via, const char *actor, int64_t value, int64_t *total)
{
	char msg[256];
	itc_actor a = {.name = actor, .parent = "counters"};
	int rc = itc_add(cl[via], a, value, 0, total, msg, sizeof msg);
	if (rc != SPAWN_OK)
		fprintf(stderr, "add %" PRId64 " via %d to %s: %s: %s\n", value, via, actor,
		        spawn_status_name(rc), msg);
	return rc;
}

/* owner_of finds which member's host runs actor (one Get via member 0). */
static int owner_of(member *m, int n, const char *actor)
{
	int64_t total;
	char msg[256];
	itc_actor a = {.name = actor, .parent = "counters"};
	ck_assert_int_eq(itc_get(cl[0], a, &total, msg, sizeof msg), SPAWN_OK);
	int c[3];
	ran(m, n, actor, c);
	for (int i = 0; i < n; i++)
		if (c[i])
			return i;
	ck_abort_msg("no host ran %s", actor);
	return -1;
}

/* ---- every call reaches the owner; reads are current -------------------------------- */

enum { ACTORS = 12 };

static void check_owners(member *m, itdb_kind k);

START_TEST(a_call_to_any_member_reaches_the_owner)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "owner", k));
	itdb_init(&db, &w, k, "state.db");
	member m[3];
	start_members(m, 3, "Add,Get");
	for (int i = 0; i < 3; i++)
		write_view(m, 3, i, 1, NULL);
	check_owners(m, k);
	stop_members(m, 3);
}
END_TEST

/* Mutual TLS between members: every listener requires a client certificate
 * the test CA signed, so a forward goes through only because the member
 * presents its own server certificate (EKU clientAuth) to its peer. */
START_TEST(members_forward_to_each_other_over_mutual_tls)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "mtls", k));
	itdb_init(&db, &w, k, "state.db");
	mtls = true;
	member m[3];
	start_members(m, 3, "Add,Get");
	for (int i = 0; i < 3; i++)
		write_view(m, 3, i, 1, NULL);
	check_owners(m, k);
	stop_members(m, 3);
	mtls = false;
}
END_TEST

/* --peer-listen: the members reach each other there; Peer calls are not
 * served on the client listener, nor client calls on the peer listener. */
START_TEST(members_reach_each_other_on_their_peer_listeners)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "peer_listen", k));
	itdb_init(&db, &w, k, "state.db");
	peer_listen = true;
	member m[3];
	start_members(m, 3, "Add,Get");
	for (int i = 0; i < 3; i++)
		write_view(m, 3, i, 1, NULL);
	check_owners(m, k);
	uint8_t empty[1];
	char details[256];
	ck_assert_int_eq(raw_unary(m[0].g.target, GW_PEER_PING_PATH, empty, 0, it_ms(5000), details,
	                           sizeof details),
	                 GRPC_STATUS_UNIMPLEMENTED);
	ck_assert_int_eq(
	    raw_unary(m[0].peer, RAW_METHOD_INVOKE, empty, 0, it_ms(5000), details, sizeof details),
	    GRPC_STATUS_UNIMPLEMENTED);
	ck_assert_int_eq(
	    raw_unary(m[0].peer, GW_PEER_PING_PATH, empty, 0, it_ms(5000), details, sizeof details),
	    GRPC_STATUS_OK);

	/* Hostile Forwards, hand-encoded (STYLE.md 12): each refused with
	 * INVALID_ARGUMENT naming what is wrong, and the members go on serving. */
	static const uint8_t garbage[] = {0xff, 0xff, 0xff};
	static const uint8_t hops99[] = {0x0a, 0x00, 0x10, 0x63}; /* request {}, hops 99 */
	static const uint8_t nul_id[] = {0x0a, 0x00, 0x1a, 0x03,
	                                 'a',  0,    'b'}; /* sender_id "a\0b" */
	static const struct {
		const uint8_t *b;
		size_t n;
		const char *says;
	} bad[] = {
	    {garbage, sizeof garbage, "not a valid"},
	    {garbage, 0, "request is required"}, /* no bytes: a ForwardRequest without request */
	    {hops99, sizeof hops99, "hops over the limit"},
	    {nul_id, sizeof nul_id, "NUL"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int st = raw_unary(m[0].peer, GW_PEER_FORWARD_PATH, bad[i].b, bad[i].n, it_ms(5000),
		                   details, sizeof details);
		ck_assert_msg(st == GRPC_STATUS_INVALID_ARGUMENT && strstr(details, bad[i].says),
		              "hostile Forward %zu: %d %s", i, st, details);
	}
	/* A well-behaved peer is still answered. */
	ck_assert_int_eq(
	    raw_unary(m[0].peer, GW_PEER_PING_PATH, empty, 0, it_ms(5000), details, sizeof details),
	    GRPC_STATUS_OK);
	stop_members(m, 3);
	peer_listen = false;
}
END_TEST

/* check_owners: calls through every member reach each actor's owner, reads
 * are current, and a view change hands actors over. */
static void check_owners(member *m, itdb_kind k)
{
	int owned[3] = {0};
	char actors[ACTORS][64];
	for (int a = 0; a < ACTORS; a++) {
		char *actor = actors[a];
		itdb_unique(actor, 64, "owned");
		/* The stale read of issue 11: add 1 via A = 1, add 1 via B = 2,
		 * add 0 via A = 2 (not A's stale 1), and once more via C. */
		int64_t t = 0;
		ck_assert_int_eq(add(0, actor, 1, &t), SPAWN_OK);
		ck_assert_int_eq(t, 1);
		ck_assert_int_eq(add(1, actor, 1, &t), SPAWN_OK);
		ck_assert_int_eq(t, 2);
		ck_assert_int_eq(add(0, actor, 0, &t), SPAWN_OK);
		ck_assert_int_eq(t, 2);
		ck_assert_int_eq(add(2, actor, 1, &t), SPAWN_OK);
		ck_assert_int_eq(t, 3);
		/* Every turn ran on one host: the owner's. */
		int c[3];
		ran(m, 3, actor, c);
		int hosts = (c[0] > 0) + (c[1] > 0) + (c[2] > 0);
		ck_assert_msg(hosts == 1 && c[0] + c[1] + c[2] == 4,
		              "%s ran on hosts %d/%d/%d; want all 4 turns on one", actor, c[0],
		              c[1], c[2]);
		for (int i = 0; i < 3; i++)
			owned[i] += c[i] > 0;
	}
	fprintf(stderr, "owner (%s): actors owned per member %d/%d/%d\n", itdb_kind_name(k),
	        owned[0], owned[1], owned[2]);
	/* Placement spreads them: 12 names on one member is a 3^-11 event. */
	ck_assert_int_ge((owned[0] > 0) + (owned[1] > 0) + (owned[2] > 0), 2);

	/* Handoff: a view where member c is dead. c's actors (active there)
	 * leave it (saved, deactivated); every call, c's included, goes to
	 * the new owners, and the totals go on from where they were. */
	dead_member = 2;
	for (int i = 0; i < 3; i++)
		write_view(m, 3, i, 2, NULL);
	for (int a = 0; a < ACTORS; a++) {
		int64_t t = 0;
		for (int via = 0; via < 3; via++) {
			ck_assert_int_eq(add(via, actors[a], 1, &t), SPAWN_OK);
			ck_assert_int_eq(t, 4 + via);
		}
		int c[3];
		ran(m, 3, actors[a], c);
		ck_assert_msg(c[2] == 0 && (c[0] == 3 || c[1] == 3),
		              "%s ran on hosts %d/%d/%d after the view change", actors[a], c[0],
		              c[1], c[2]);
	}
	dead_member = -1;
}

/* ---- deadlines and cancellation travel with the forward --------------------------------- */

/* sleep_async starts Sleep(ms) on actor through c (the owner's turn slot
 * is then taken for ms). */
typedef struct sleeper {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int status;
} sleeper;

static void sleeper_reply(void *user, spawn_reply *r)
{
	sleeper *s = user;
	pthread_mutex_lock(&s->mu);
	s->done = true;
	s->status = r->status;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void sleep_async(spawn_client *c, const char *actor, int64_t ms, sleeper *s)
{
	static uint8_t buf[32];
	It__Add add = IT__ADD__INIT;
	add.value = ms;
	size_t len = it__add__pack(&add, buf);
	spawn_request rq = {
	    .system = "it",
	    .actor = actor,
	    .parent = "counters",
	    .action = "Sleep",
	    .payload = {.type_url = "type.googleapis.com/it.Add", .data = buf, .len = len}};
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->done = false;
	ck_assert_int_eq(spawn_client_invoke_async(c, &rq, ms + it_ms(30000), sleeper_reply, s),
	                 SPAWN_OK);
}

static void sleeper_wait(sleeper *s)
{
	pthread_mutex_lock(&s->mu);
	int64_t end = it_now_ms() + it_ms(60000);
	while (!s->done && it_now_ms() < end) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	bool done = s->done;
	pthread_mutex_unlock(&s->mu);
	ck_assert_msg(done, "the Sleep call never answered");
}

START_TEST(a_forward_keeps_the_deadline_and_the_cancel_of_its_caller)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "deadline", k));
	itdb_init(&db, &w, k, "state.db");
	member m[2];
	start_members(m, 2, "Add,Get,Sleep");
	for (int i = 0; i < 2; i++)
		write_view(m, 2, i, 1, NULL);
	char actor[64];
	itdb_unique(actor, sizeof actor, "slow");
	int owner = owner_of(m, 2, actor), other = 1 - owner;

	/* The owner's turn slot is busy for a while (Sleep through the owner). */
	int64_t sleep_ms = it_ms(4000);
	sleeper s;
	sleep_async(cl[owner], actor, sleep_ms, &s);
	ck_assert_msg(it_proc_wait_line(m[owner].host, "invoked", it_ms(10000), NULL, 0),
	              "the Sleep did not start on the owner");

	/* Through the other member with a 500 ms deadline: answered
	 * DEADLINE_EXCEEDED at the deadline, not after the Sleep. */
	int64_t t0 = it_now_ms(), total = 0;
	spawn_reply r;
	itc_actor a = {.name = actor, .parent = "counters"};
	int rc = itc_invoke(cl[other], a, "Get", NULL, 500, &r);
	spawn_reply_fini(&r);
	int64_t took = it_now_ms() - t0;
	fprintf(stderr, "deadline (%s): answered %s after %" PRId64 " ms\n", itdb_kind_name(k),
	        spawn_status_name(rc), took);
	ck_assert_int_eq(rc, SPAWN_DEADLINE_EXCEEDED);
	ck_assert_int_lt(took, it_ms(2000));

	/* A call through the other member whose client goes away: it leaves
	 * the owner's mailbox (it never runs: the next Add sees only the Sleep's
	 * 1000). */
	uint8_t payload[32];
	It__Add one = IT__ADD__INIT;
	one.value = 1;
	size_t plen = it__add__pack(&one, payload);
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = "it";
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = actor;
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
	uint8_t req[256];
	size_t len = spawn__invocation_request__pack(&rq, req);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(raw_unary_cancel_after(m[other].g.target, RAW_METHOD_INVOKE, req,
		                                        len, 200, NULL, 0),
		                 -1);
	sleeper_wait(&s);
	ck_assert_int_eq(s.status, SPAWN_OK);
	ck_assert_int_eq(add(other, actor, 1, &total), SPAWN_OK);
	ck_assert_msg(total == 1001, "total %" PRId64 ": a cancelled forward ran at the owner",
	              total);
	int c[3];
	ran(m, 2, actor, c);
	ck_assert_int_eq(c[other], 0);
	stop_members(m, 2);
}
END_TEST

/* ---- members that disagree --------------------------------------------------------------- */

START_TEST(members_that_disagree_cannot_pass_a_call_back_and_forth)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "disagree", k));
	itdb_init(&db, &w, k, "state.db");
	member m[2];
	start_members(m, 2, "Add,Get");
	/* Member a believes only b serves the type; b believes only a does. */
	const char *a_sees[] = {"-", SERVED}, *b_sees[] = {SERVED, "-"};
	write_view(m, 2, 0, 1, a_sees);
	write_view(m, 2, 1, 1, b_sees);
	char actor[64];
	itdb_unique(actor, sizeof actor, "torn");
	int64_t t0 = it_now_ms(), total = 0;
	spawn_reply r;
	itc_actor a = {.name = actor, .parent = "counters"};
	int rc = itc_invoke(cl[0], a, "Get", NULL, 1500, &r);
	spawn_reply_fini(&r);
	int64_t took = it_now_ms() - t0;
	fprintf(stderr, "disagree (%s): answered %s after %" PRId64 " ms\n", itdb_kind_name(k),
	        spawn_status_name(rc), took);
	/* a forwarded once, b refused (not the owner in its view), a waited
	 * for a newer view until the deadline: never ran, never bounced. */
	ck_assert_int_eq(rc, SPAWN_DEADLINE_EXCEEDED);
	ck_assert_int_lt(took, it_ms(3000));
	int c[3];
	ran(m, 2, actor, c);
	ck_assert_int_eq(c[0] + c[1], 0);

	/* A call waiting on a refusal goes through once the views agree. */
	sleeper s;
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	s.done = false;
	uint8_t buf[32];
	It__Add add1 = IT__ADD__INIT;
	add1.value = 5;
	spawn_request rq = {.system = "it",
	                    .actor = actor,
	                    .parent = "counters",
	                    .action = "Add",
	                    .payload = {.type_url = "type.googleapis.com/it.Add",
	                                .data = buf,
	                                .len = it__add__pack(&add1, buf)}};
	ck_assert_int_eq(spawn_client_invoke_async(cl[0], &rq, it_ms(20000), sleeper_reply, &s),
	                 SPAWN_OK);
	write_view(m, 2, 1, 2, a_sees); /* b: "b serves it" = a's view */
	write_view(m, 2, 0, 2, a_sees); /* a: a newer view wakes the waiting call */
	sleeper_wait(&s);
	ck_assert_int_eq(s.status, SPAWN_OK);
	ran(m, 2, actor, c);
	ck_assert_int_eq(c[0], 0);
	ck_assert_int_eq(c[1], 1);
	ck_assert_int_eq(add(0, actor, 0, &total), SPAWN_OK);
	ck_assert_int_eq(total, 5);
	stop_members(m, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration_routing");
	const itdb_case cases[] = {
	    {"owner", a_call_to_any_member_reaches_the_owner, 120},
	    {"mtls", members_forward_to_each_other_over_mutual_tls, 120},
	    {"peer_listen", members_reach_each_other_on_their_peer_listeners, 120},
	    {"deadline", a_forward_keeps_the_deadline_and_the_cancel_of_its_caller, 120},
	    {"disagree", members_that_disagree_cannot_pass_a_call_back_and_forth, 120},
	};
	itdb_add_cases(s, cases, sizeof cases / sizeof cases[0], "postgres,mariadb", teardown);
	itdb_launcher_start();
	return it_run(s);
}
