/* it_cwide_test.c - the whole cluster answers (issue 11: Admin calls on
 * the actor's owner and aggregated, outbox recovery by the owner only,
 * scheduled invocations fired once cluster-wide; docs/design/cluster.md).
 *
 * Three gateway processes on one PostgreSQL or MariaDB namespace, each with
 * its own it-host (--trace: "invoked ACTOR ACTION" per turn, so the test
 * sees which member ran a turn). The view comes from the hidden flag
 * --cluster-test-view (as in it_routing_test.c): the file is written once
 * every port is known, applied on SIGUSR1 ("view N" on stdout) and fed to
 * the router exactly as the membership module's on_view is.
 *
 * Runs through tests/store/with-db.sh under the ctest fixture spawn_db;
 * IT_STORES selects the stores (default: postgres,mariadb).
 */
#include <dirent.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <check.h>
#include <spawn/spawn.h>

#include "adm.h"
#include "harness.h"
#include "itc.h"
#include "itcluster.h"
#include "itdb.h"
#include "raw.h"
#include "sem.pb-c.h"

#define SERVED          ITCL_SERVED
#define PEER_ADMIN_PATH "/spawn.gateway.v1.Peer/Admin"
#define PEER_PING_PATH  "/spawn.gateway.v1.Peer/Ping"

enum { N = 3 };

static it_world w;
static itdb db;
static spawn_client *cl[N];
static adm_client *ad[N];

typedef itcl_member member;

static void close_clients(void)
{
	for (int i = 0; i < N; i++) {
		spawn_client_destroy(cl[i]);
		cl[i] = NULL;
		adm_destroy(ad[i]);
		ad[i] = NULL;
	}
}

static void teardown(void)
{
	close_clients();
	it_world_fini(&w);
	itdb_fini(&db);
}

/* start_member starts gateway i (view file DIR/view-<i>) and its tracing
 * host with host_actions, and connects the clients. */
static void start_member(member *m, int i, const char *host_actions, const char *tag)
{
	char gname[24], hname[24];
	itcl_member_init(&w, &m[i], i);
	snprintf(gname, sizeof gname, "gw%d%s", i, tag);
	snprintf(hname, sizeof hname, "host%d%s", i, tag);
	const char *gargs[] = {"--cluster-test-view",
	                       m[i].view,
	                       "--snapshot-interval",
	                       "600000",
	                       "--store-history",
	                       "20",
	                       NULL};
	itdb_gateway_start(&w, &db, &m[i].g, gname, gargs, NULL);
	const char *hargs[] = {"--checkpoint", "--trace", "--actions", host_actions, NULL};
	m[i].host = it_host_start(&w, hname, m[i].g.target, hargs);
	ck_assert_int_eq(spawn_client_create(&cl[i], m[i].g.target), SPAWN_OK);
	ad[i] = adm_create(m[i].g.target);
}

/* What each member's hosts serve, as its view says (NULL: SERVED). */
static const char *served_by[N];
/* The status every member has in the views write_view writes (ACTIVE). */
static int view_status = 2;

/* write_view writes member i's view (every member ACTIVE, serving
 * served_by) and waits until the gateway applied it. */
static void write_view(member *m, int i, uint64_t version)
{
	int status[N];
	for (int k = 0; k < N; k++)
		status[k] = view_status;
	itcl_write_view(m, N, i, version, status, served_by);
}

static void start_members(member *m, const char *host_actions, const char *tag)
{
	for (int i = 0; i < N; i++)
		start_member(m, i, host_actions, tag);
	for (int i = 0; i < N; i++)
		write_view(m, i, 1);
}

static void stop_members(member *m)
{
	close_clients();
	for (int i = 0; i < N; i++)
		it_host_stop(m[i].host);
	for (int i = 0; i < N; i++)
		it_gateway_stop(&m[i].g);
}

/* turns counts the "invoked ACTOR " lines of each host since the last count. */
static void turns(member *m, const char *actor, int *out)
{
	char prefix[200];
	snprintf(prefix, sizeof prefix, "invoked %s ", actor);
	for (int i = 0; i < N; i++)
		out[i] = it_proc_count_lines(m[i].host, prefix);
}

static int64_t add(int via, const char *actor, int64_t value)
{
	char msg[256];
	int64_t total = -1;
	itc_actor a = {.name = actor, .parent = "counters"};
	int rc = itc_add(cl[via], a, value, 0, &total, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "add %" PRId64 " via %d to %s: %s: %s", value, via, actor,
	              spawn_status_name(rc), msg);
	return total;
}

/* owner_of: the member whose host runs actor's turns (one Add(0) via 0). */
static int owner_of(member *m, const char *actor)
{
	add(0, actor, 0);
	int c[N];
	turns(m, actor, c);
	for (int i = 0; i < N; i++)
		if (c[i])
			return i;
	ck_abort_msg("no host ran %s", actor);
	return -1;
}

static int64_t counter_of(const Spawn__Gateway__V1__ActorStateView *v)
{
	It__Counter *c = adm_counter(v);
	ck_assert_ptr_nonnull(c);
	int64_t t = c->total;
	protobuf_c_message_free_unpacked(&c->base, NULL);
	return t;
}

static void view_free(Spawn__Gateway__V1__ActorStateView *v)
{
	if (v)
		protobuf_c_message_free_unpacked(&v->base, NULL);
}

/* ---- Admin calls run on the actor's owner ------------------------------------------------ */

typedef struct pending {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, ok;
} pending;

static void pending_reply(void *user, spawn_reply *r)
{
	pending *p = user;
	pthread_mutex_lock(&p->mu);
	p->done++;
	p->ok += r->status == SPAWN_OK;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void pending_wait(pending *p, int n)
{
	pthread_mutex_lock(&p->mu);
	int64_t end = it_now_ms() + it_ms(60000);
	while (p->done < n && it_now_ms() < end) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	int done = p->done;
	pthread_mutex_unlock(&p->mu);
	ck_assert_msg(done >= n, "%d of %d calls answered", done, n);
}

static void start_call(int via, const char *actor, const char *action, int64_t value, pending *p)
{
	static uint8_t buf[8][32];
	static int k;
	uint8_t *b = buf[k++ % 8];
	It__Add a = IT__ADD__INIT;
	a.value = value;
	spawn_request rq = {.system = "it",
	                    .actor = actor,
	                    .parent = "counters",
	                    .action = action,
	                    .payload = {.type_url = "type.googleapis.com/it.Add",
	                                .data = b,
	                                .len = it__add__pack(&a, b)}};
	ck_assert_int_eq(spawn_client_invoke_async(cl[via], &rq, it_ms(60000), pending_reply, p),
	                 SPAWN_OK);
}

START_TEST(admin_calls_naming_an_actor_run_on_its_owner)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96], msg[512];
	it_world_init(&w, itdb_case_name(name, sizeof name, "admin", k));
	itdb_init(&db, &w, k, "state.db");
	member m[N];
	start_members(m, "Add,Get,Sleep", "");
	char actor[64];
	itdb_unique(actor, sizeof actor, "adm");
	int own = owner_of(m, actor), o1 = (own + 1) % N, o2 = (own + 2) % N;
	for (int i = 1; i <= 5; i++)
		ck_assert_int_eq(add(i % N, actor, 1), i);

	/* GetState through each other member: answered from the owner's
	 * memory (active), not from the store as a member without the actor
	 * would answer. */
	for (int via = 0; via < N; via++) {
		Spawn__Gateway__V1__ActorStateView *v = NULL;
		int st = adm_get_state(ad[via], "it", actor, 0, &v, msg, sizeof msg);
		ck_assert_msg(st == GRPC_STATUS_OK, "GetState via %d: %s %s", via,
		              adm_status_name(st), msg);
		ck_assert_msg(v->active, "GetState via %d (owner %d): not from the owner's memory",
		              via, own);
		ck_assert_int_eq(counter_of(v), 5);
		view_free(v);
	}

	/* What the hop costs: GetState through the owner and through a
	 * non-owner (Peer.Admin), mean of 200 each (printed, not asserted). */
	int64_t took[2];
	for (int pass = 0; pass < 2; pass++) {
		int via = pass ? o1 : own;
		int64_t t0 = it_now_ms();
		for (int i = 0; i < 200; i++) {
			Spawn__Gateway__V1__ActorStateView *v = NULL;
			ck_assert_int_eq(
			    adm_get_state(ad[via], "it", actor, 0, &v, msg, sizeof msg),
			    GRPC_STATUS_OK);
			view_free(v);
		}
		took[pass] = it_now_ms() - t0;
	}
	fprintf(stderr,
	        "admin (%s): GetState mean %.3f ms through the owner, %.3f ms through a "
	        "non-owner\n",
	        itdb_kind_name(k), took[0] / 200.0, took[1] / 200.0);

	/* The owner's queue, seen through another member: a Sleep holds the
	 * turn, two adds through the third member wait in the owner's mailbox.
	 * The Sleep is the window in which the adds must be forwarded and seen
	 * queued: a generous one (on a loaded machine 3 s was missed). */
	pending p = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	/* Within the gateway's 30 s --host-timeout (it_ms scales by 4 under
	 * sanitizers: 40 s would fail the Sleep itself). */
	int64_t nap = it_ms(10000) < 25000 ? it_ms(10000) : 25000;
	start_call(own, actor, "Sleep", nap, &p);
	ck_assert_msg(it_proc_wait_line(m[own].host, "invoked", it_ms(10000), NULL, 0),
	              "the Sleep did not start on the owner");
	start_call(o2, actor, "Add", 1, &p);
	start_call(o2, actor, "Add", 1, &p);
	uint32_t queued = 0;
	for (int64_t end = it_now_ms() + it_ms(10000); queued < 2 && it_now_ms() < end;) {
		Spawn__Gateway__V1__ActorStateView *v = NULL;
		ck_assert_int_eq(adm_get_state(ad[o1], "it", actor, 0, &v, msg, sizeof msg),
		                 GRPC_STATUS_OK);
		queued = v->queued;
		view_free(v);
	}
	ck_assert_msg(queued == 2, "GetState via %d saw %u calls queued at the owner", o1, queued);
	pending_wait(&p, 3);
	ck_assert_int_eq(p.ok, 3);
	int64_t total = add(o1, actor, 0);
	ck_assert_int_eq(total, 1000 + 7);

	/* ListRevisions through a non-owner: the owner's list. */
	Spawn__Gateway__V1__RevisionList *l1 = NULL, *l2 = NULL;
	ck_assert_int_eq(adm_list_revisions(ad[o1], "it", actor, &l1, msg, sizeof msg),
	                 GRPC_STATUS_OK);
	ck_assert_int_eq(adm_list_revisions(ad[own], "it", actor, &l2, msg, sizeof msg),
	                 GRPC_STATUS_OK);
	ck_assert_uint_ge(l1->n_revisions, 2);
	ck_assert_uint_eq(l1->n_revisions, l2->n_revisions);
	uint64_t oldest = l1->revisions[l1->n_revisions - 1];
	protobuf_c_message_free_unpacked(&l1->base, NULL);
	protobuf_c_message_free_unpacked(&l2->base, NULL);

	/* Restore through a non-owner: a turn on the owner (still active
	 * there, with the restored state); the next call through the third
	 * member sees it. No host ran a turn for it (a restore is the
	 * gateway's). */
	Spawn__Gateway__V1__ActorStateView *ov = NULL;
	ck_assert_int_eq(adm_get_state(ad[o2], "it", actor, oldest, &ov, msg, sizeof msg),
	                 GRPC_STATUS_OK);
	int64_t then = counter_of(ov);
	view_free(ov);
	ck_assert_int_lt(then, total);
	int c[N];
	turns(m, actor, c);
	Spawn__Gateway__V1__ActorStateView *rv = NULL;
	int st = adm_restore(ad[o2], "it", actor, oldest, &rv, msg, sizeof msg);
	ck_assert_msg(st == GRPC_STATUS_OK, "Restore via %d: %s %s", o2, adm_status_name(st), msg);
	ck_assert(rv->active);
	ck_assert_int_eq(counter_of(rv), then);
	view_free(rv);
	ck_assert_int_eq(add(o1, actor, 0), then);
	turns(m, actor, c);
	ck_assert_msg(c[own] == 1 && c[o1] == 0 && c[o2] == 0, "turns after the restore: %d/%d/%d",
	              c[0], c[1], c[2]);

	/* Forget through a non-owner: the owner deactivates it (was_active). */
	Spawn__Gateway__V1__ForgetResult *fr = NULL;
	st = adm_forget(ad[o1], "it", actor, &fr, msg, sizeof msg);
	ck_assert_msg(st == GRPC_STATUS_OK, "Forget via %d: %s %s", o1, adm_status_name(st), msg);
	ck_assert_msg(fr->was_active, "Forget via a non-owner did not reach the active owner");
	ck_assert_uint_eq(fr->state_rows, 1);
	protobuf_c_message_free_unpacked(&fr->base, NULL);
	ck_assert_int_eq(add(o2, actor, 2), 2); /* starts again from nothing */

	/* Hostile Peer.Admin calls, hand-encoded (STYLE.md 12): refused with
	 * INVALID_ARGUMENT naming the fault; the member keeps serving. */
	static const uint8_t garbage[] = {0xff, 0xff, 0xff};
	static const uint8_t hops99[] = {0x18, 0x63, 0x72, 0x00}; /* hops 99, key_rotation {} */
	static const uint8_t no_actor[] = {0x52, 0x00};           /* get_state {} */
	static const uint8_t nul_id[] = {0x0a, 0x03, 'a', 0, 'b', 0x72, 0x00};
	static const struct {
		const uint8_t *b;
		size_t n;
		const char *says;
	} bad[] = {
	    {garbage, sizeof garbage, "not a valid"},
	    {garbage, 0, "call is required"},
	    {hops99, sizeof hops99, "hops over the limit"},
	    {no_actor, sizeof no_actor, "actor.system and actor.actor are required"},
	    {nul_id, sizeof nul_id, "NUL"},
	};
	char details[256];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		st = raw_unary(m[0].g.target, PEER_ADMIN_PATH, bad[i].b, bad[i].n, it_ms(5000),
		               details, sizeof details);
		ck_assert_msg(st == GRPC_STATUS_INVALID_ARGUMENT && strstr(details, bad[i].says),
		              "hostile Peer.Admin %zu: %d %s", i, st, details);
	}
	/* A well-formed one sent to a member that does not own the actor is
	 * refused (FAILED_PRECONDITION), never passed on. */
	Spawn__Gateway__V1__ActorRef ref = SPAWN__GATEWAY__V1__ACTOR_REF__INIT;
	ref.system = "it";
	ref.actor = actor;
	Spawn__Gateway__V1__GetStateRequest gs = SPAWN__GATEWAY__V1__GET_STATE_REQUEST__INIT;
	gs.actor = &ref;
	Spawn__Gateway__V1__PeerAdminRequest pr = SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__INIT;
	pr.sender_id = "test";
	pr.hops = 1;
	pr.call_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_GET_STATE;
	pr.get_state = &gs;
	uint8_t buf[256];
	size_t len = spawn__gateway__v1__peer_admin_request__pack(&pr, buf);
	st = raw_unary(m[o1].g.target, PEER_ADMIN_PATH, buf, len, it_ms(5000), details,
	               sizeof details);
	ck_assert_msg(st == GRPC_STATUS_FAILED_PRECONDITION, "Peer.Admin to a non-owner: %d %s", st,
	              details);
	st = raw_unary(m[own].g.target, PEER_ADMIN_PATH, buf, len, it_ms(5000), details,
	               sizeof details);
	ck_assert_msg(st == GRPC_STATUS_OK, "Peer.Admin to the owner: %d %s", st, details);
	uint8_t empty[1];
	ck_assert_int_eq(raw_unary(m[0].g.target, PEER_PING_PATH, empty, 0, it_ms(5000), details,
	                           sizeof details),
	                 GRPC_STATUS_OK);
	stop_members(m);
}
END_TEST

/* ---- KeyRotation answers for every member, naming the silent ------------------------------ */

/* all_stopped: whether every thread of pid is stopped (state T in
 * /proc/PID/task/TID/stat): a SIGSTOP is delivered to each thread on its
 * own, so kill() returning does not mean the process stopped. */
static bool all_stopped(pid_t pid)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool stopped = true;
	int threads = 0;
	struct dirent *e;
	while (stopped && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[600], buf[512];
		snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = 0;
		const char *rp = strrchr(buf, ')'); /* "TID (name) STATE ..." */
		stopped = rp && rp[1] == ' ' && rp[2] == 'T';
		threads++;
	}
	closedir(d);
	return stopped && threads > 0;
}

START_TEST(key_rotation_aggregates_the_members_and_names_the_silent)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96], msg[512];
	it_world_init(&w, itdb_case_name(name, sizeof name, "keys", k));
	itdb_init(&db, &w, k, "state.db");
	member m[N];
	start_members(m, "Add,Get", "");
	Spawn__Gateway__V1__KeyRotationStatus *ks = NULL;
	int st = adm_key_rotation(ad[1], &ks, msg, sizeof msg);
	ck_assert_msg(st == GRPC_STATUS_OK, "KeyRotation: %s %s", adm_status_name(st), msg);
	ck_assert_msg(ks->n_members == N, "%zu members answered; first silent: %s %d %s",
	              ks->n_members, ks->n_unanswered ? ks->unanswered[0]->member_id : "-",
	              ks->n_unanswered ? ks->unanswered[0]->code : 0,
	              ks->n_unanswered ? ks->unanswered[0]->message : "-");
	ck_assert_uint_eq(ks->n_unanswered, 0);
	bool seen[N] = {false};
	for (size_t i = 0; i < ks->n_members; i++)
		for (int j = 0; j < N; j++)
			if (!strcmp(ks->members[i]->member_id, m[j].id)) {
				seen[j] = true;
				ck_assert_str_eq(ks->members[i]->address, m[j].g.target);
				ck_assert_ptr_nonnull(ks->members[i]->status);
			}
	ck_assert(seen[0] && seen[1] && seen[2]);
	ck_assert(!ks->enabled); /* no --rotate-keys anywhere */
	ck_assert(!ks->done);
	protobuf_c_message_free_unpacked(&ks->base, NULL);

	/* Member c stops answering (SIGSTOP: its address still accepts
	 * connections, nothing answers); the view still lists it. The
	 * aggregate answers in time and names it. */
	it_proc_signal(m[2].g.p, SIGSTOP);
	for (int64_t end = it_now_ms() + it_ms(10000); !all_stopped(m[2].g.p->pid);) {
		ck_assert_msg(it_now_ms() < end, "member c did not stop");
		poll(NULL, 0, 5);
	}
	int64_t t0 = it_now_ms();
	st = adm_key_rotation(ad[0], &ks, msg, sizeof msg);
	int64_t took = it_now_ms() - t0;
	it_proc_signal(m[2].g.p, SIGCONT);
	ck_assert_msg(st == GRPC_STATUS_OK, "KeyRotation with a silent member: %s %s",
	              adm_status_name(st), msg);
	fprintf(stderr, "keys (%s): answered after %" PRId64 " ms with member-c silent\n",
	        itdb_kind_name(k), took);
	ck_assert_uint_eq(ks->n_members, 2);
	ck_assert_uint_eq(ks->n_unanswered, 1);
	ck_assert_str_eq(ks->unanswered[0]->member_id, m[2].id);
	ck_assert_str_eq(ks->unanswered[0]->address, m[2].g.target);
	ck_assert_int_eq(ks->unanswered[0]->code, GRPC_STATUS_DEADLINE_EXCEEDED);
	ck_assert(!ks->done);
	protobuf_c_message_free_unpacked(&ks->base, NULL);

	/* Killed: refused connections are named too (UNAVAILABLE). */
	it_proc_kill(m[2].g.p);
	st = adm_key_rotation(ad[1], &ks, msg, sizeof msg);
	ck_assert_int_eq(st, GRPC_STATUS_OK);
	ck_assert_uint_eq(ks->n_unanswered, 1);
	ck_assert_str_eq(ks->unanswered[0]->member_id, m[2].id);
	ck_assert_int_eq(ks->unanswered[0]->code, GRPC_STATUS_UNAVAILABLE);
	protobuf_c_message_free_unpacked(&ks->base, NULL);
	close_clients();
	for (int i = 0; i < N; i++)
		it_host_stop(m[i].host);
	for (int i = 0; i < 2; i++)
		it_gateway_stop(&m[i].g);
}
END_TEST

/* ---- outbox recovery by the owner only ------------------------------------------------------ */

enum { EMITTERS = 6 };

START_TEST(only_the_owner_recovers_an_outbox_after_a_crash)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "recovery", k));
	itdb_init(&db, &w, k, "state.db");
	member m[N];
	start_members(m, "Add,Get,Emit,Hang", "");
	/* Each emitter's checkpointed Emit leaves one side effect (Hang on
	 * emit-target) in its stored outbox: the first hangs, the others wait
	 * behind it; all stay undelivered. */
	char em[EMITTERS][64];
	for (int e = 0; e < EMITTERS; e++) {
		itdb_unique(em[e], sizeof em[e], "emitter");
		It__Add nothing = IT__ADD__INIT;
		spawn_reply r;
		int rc = itc_invoke(cl[e % N], (itc_actor){em[e], "counters"}, "Emit",
		                    &nothing.base, it_ms(10000), &r);
		ck_assert_msg(rc == SPAWN_OK, "Emit: %s (%s)", spawn_status_name(rc),
		              r.message ? r.message : "");
		spawn_reply_fini(&r);
	}
	/* Whichever member owns emit-target: every host is looked at in turn
	 * until one says so, up to one deadline (the first delivery may be
	 * retried: a forward refused as not dispatched is made again). */
	bool hung = false;
	for (int64_t end = it_now_ms() + it_ms(20000); !hung && it_now_ms() < end;)
		for (int i = 0; i < N && !hung; i++)
			hung = it_proc_wait_line(m[i].host, "hanging emit-target", 50, NULL, 0);
	ck_assert_msg(hung, "no side effect reached emit-target");
	ck_assert_int_eq(itdb_query_int(&db, "SELECT count(*) FROM spawn_actor_state WHERE "
	                                     "effects = 1 AND name LIKE 'emitter%'"),
	                 EMITTERS);

	/* Every member crashes; the hosts go too. */
	close_clients();
	for (int i = 0; i < N; i++)
		it_proc_kill(m[i].g.p);
	for (int i = 0; i < N; i++)
		it_proc_kill(m[i].host);
	for (int i = 0; i < N; i++) {
		it_proc_release(m[i].g.p);
		it_proc_release(m[i].host);
		unlink(m[i].view); /* the new members start without a view */
	}

	/* Three new members (new processes, new ports), the same ids, JOINING
	 * at first: no member owns anything yet, so nobody wakes an emitter
	 * (each waits), and the view in which a member becomes ACTIVE starts
	 * its recovery again. The effects go to hosts without Hang: refused,
	 * acknowledged. */
	view_status = 1;
	start_members(m, "Add,Get,Emit", "b");
	view_status = 2;
	for (int i = 0; i < N; i++)
		write_view(m, i, 2);
	for (int i = 0; i < N; i++) {
		bool again = false;
		for (int64_t end = it_now_ms() + it_ms(5000); !again && it_now_ms() < end;) {
			again = it_file_contains(m[i].g.p->errlog,
			                         "view 2: effects recovery for the actors");
			if (!again) {
				struct timespec ts = {0, 20 * 1000000};
				nanosleep(&ts, NULL); /* polling a log file: no event to wait on */
			}
		}
		ck_assert_msg(again, "member %d did not run the recovery when it became ACTIVE", i);
	}
	/* Each owner wakes its emitters and delivers (the effect is refused:
	 * no Hang), which clears the rows' flag. A member that lists the rows
	 * before that leaves the others' emitters to them. */
	long long left = -1;
	for (int64_t end = it_now_ms() + it_ms(60000); left != 0 && it_now_ms() < end;) {
		left = itdb_query_int(&db, "SELECT count(*) FROM spawn_actor_state WHERE "
		                           "effects = 1 AND name LIKE 'emitter%'");
		if (left) {
			struct timespec ts = {0, 50 * 1000000};
			nanosleep(&ts, NULL); /* polling a table: no event to wait on */
		}
	}
	ck_assert_msg(left == 0, "%lld emitters still have undelivered effects", left);
	for (int e = 0; e < EMITTERS; e++) {
		char mine[512];
		snprintf(mine, sizeof mine, "actor it/%s: redelivering", em[e]);
		int woke = -1;
		for (int i = 0; i < N; i++) {
			if (!it_file_contains(m[i].g.p->errlog, mine))
				continue;
			ck_assert_msg(woke < 0, "%s recovered by members %d and %d", em[e], woke,
			              i);
			woke = i;
		}
		ck_assert_msg(woke >= 0, "nobody recovered %s", em[e]);
		/* The member that recovered it is its owner: its host runs its turns. */
		ck_assert_int_eq(owner_of(m, em[e]), woke);
		fprintf(stderr, "recovery (%s): %s recovered by member %d only\n",
		        itdb_kind_name(k), em[e], woke);
	}
	/* Every member ran the recovery; those that listed the rows before
	 * the owners delivered left the others' emitters to them. */
	int lefts = 0;
	for (int i = 0; i < N; i++) {
		ck_assert(it_file_contains(m[i].g.p->errlog, "effects recovery for the actors"));
		lefts += it_file_contains(m[i].g.p->errlog, "is owned by member");
	}
	fprintf(stderr, "recovery (%s): %d members left emitters to their owners\n",
	        itdb_kind_name(k), lefts);
	stop_members(m);
}
END_TEST

/* ---- scheduled invocations fire once cluster-wide ------------------------------------------- */

enum { SCHEDULES = 200 };

START_TEST(scheduled_invocations_fire_once_across_the_cluster)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "schedules", k));
	itdb_init(&db, &w, k, "state.db");
	member m[N];
	start_members(m, "Add,Get", "");
	char prefix[64];
	itdb_unique(prefix, sizeof prefix, "sched");
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t due = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + it_ms(3000);
	for (int i = 0; i < SCHEDULES; i++) {
		char actor[96];
		snprintf(actor, sizeof actor, "%s-%d", prefix, i);
		uint8_t buf[32];
		It__Add a = IT__ADD__INIT;
		a.value = 1;
		a.seq = i + 1;
		spawn_request rq = {.system = "it",
		                    .actor = actor,
		                    .parent = "counters",
		                    .action = "Add",
		                    .scheduled_to_ms = due + (i % 10) * 50,
		                    .payload = {.type_url = "type.googleapis.com/it.Add",
		                                .data = buf,
		                                .len = it__add__pack(&a, buf)}};
		spawn_reply r;
		int rc = spawn_client_invoke(cl[i % N], &rq, &r, it_ms(10000));
		ck_assert_msg(rc == SPAWN_OK, "schedule %d: %s %s", i, spawn_status_name(rc),
		              r.message ? r.message : "");
		spawn_reply_fini(&r);
	}
	/* Every one fires; then its row is gone (no member can fire it again). */
	char want[96];
	snprintf(want, sizeof want, "invoked %s-", prefix);
	int fired[N] = {0}, total = 0;
	for (int64_t end = it_now_ms() + it_ms(60000); total < SCHEDULES && it_now_ms() < end;) {
		for (int i = 0; i < N; i++) {
			int n = it_proc_count_lines(m[i].host, want);
			fired[i] += n;
			total += n;
		}
		if (total < SCHEDULES) {
			struct timespec ts = {0, 20 * 1000000};
			nanosleep(&ts, NULL); /* polling three pipes: no single event to wait on */
		}
	}
	ck_assert_msg(total >= SCHEDULES, "%d of %d schedules fired", total, SCHEDULES);
	long long left = -1;
	for (int64_t end = it_now_ms() + it_ms(30000); left != 0 && it_now_ms() < end;) {
		left = itdb_query_int(&db, "SELECT count(*) FROM spawn_schedule");
		if (left) {
			struct timespec ts = {0, 50 * 1000000};
			nanosleep(&ts, NULL); /* polling a table: no event to wait on */
		}
	}
	ck_assert_int_eq(left, 0);
	for (int i = 0; i < N; i++) {
		int n = it_proc_count_lines(m[i].host, want);
		fired[i] += n;
		total += n;
	}
	fprintf(stderr, "schedules (%s): %d turns for %d schedules, per member %d/%d/%d\n",
	        itdb_kind_name(k), total, SCHEDULES, fired[0], fired[1], fired[2]);
	ck_assert_int_eq(total, SCHEDULES);
	/* Each actor's total is 1 (fired once), read through any member. */
	for (int i = 0; i < SCHEDULES; i++) {
		char actor[96];
		snprintf(actor, sizeof actor, "%s-%d", prefix, i);
		ck_assert_msg(add((i + 1) % N, actor, 0) == 1, "%s fired more than once", actor);
	}
	/* Spread: each member's host ran some (placement over 200 names). */
	ck_assert_int_gt(fired[0] * fired[1] * fired[2], 0);
	stop_members(m);
}
END_TEST

/* ---- broadcasts reach the subscribers on every member --------------------------------- */

/* sem_call invokes action of sem actor with m (NULL: an empty Msg) through
 * member via; returns the reply's n (asserts OK). */
static int64_t sem_call(int via, const char *actor, const char *action, const Sem__Msg *m)
{
	Sem__Msg empty = SEM__MSG__INIT;
	if (!m)
		m = &empty;
	uint8_t buf[512];
	size_t len = sem__msg__pack(m, buf);
	spawn_request rq = {
	    .system = "sem",
	    .actor = actor,
	    .action = action,
	    .payload = {.type_url = "type.googleapis.com/sem.Msg", .data = buf, .len = len}};
	spawn_reply r;
	int rc = spawn_client_invoke(cl[via], &rq, &r, it_ms(10000));
	ck_assert_msg(rc == SPAWN_OK, "%s.%s via %d: %s %s", actor, action, via,
	              spawn_status_name(rc), r.message ? r.message : "");
	Sem__Msg *out = sem__msg__unpack(NULL, r.payload.len, r.payload.data);
	ck_assert_ptr_nonnull(out);
	int64_t n = out->n;
	sem__msg__free_unpacked(out, NULL);
	spawn_reply_fini(&r);
	return n;
}

/* wait_got waits until one of the hosts in mask printed line (the others
 * must not: counting consumes what each host printed so far); returns
 * which. */
static int wait_got(member *m, unsigned mask, const char *line)
{
	int who = -1;
	for (int64_t end = it_now_ms() + it_ms(10000); who < 0 && it_now_ms() < end;) {
		for (int i = 0; i < N; i++)
			if ((mask & (1u << i)) && it_proc_count_lines(m[i].host, line) > 0) {
				ck_assert_msg(who < 0, "'%s' on hosts %d and %d", line, who, i);
				who = i;
			}
		if (who < 0) {
			struct timespec ts = {0, 10 * 1000000};
			nanosleep(&ts, NULL); /* polling three pipes: no single event to wait on */
		}
	}
	ck_assert_msg(who >= 0, "no host printed '%s'", line);
	return who;
}

static void publish_and_check(member *m, const char *kind);

START_TEST(a_broadcast_reaches_each_subscriber_once_whichever_member_serves_it)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "broadcast", k));
	itdb_init(&db, &w, k, "state.db");
	/* The publishers a, b, c each live on one member; sub1 (channel news,
	 * action receive) is served on members 0 and 2, sub2 (news, onNews)
	 * on member 1 only. The views say what each member's hosts serve,
	 * subscriptions included, as gw_registry_served publishes them
	 * (registry_test checks that format). */
	static const char *const actors[N] = {"a,sub1", "b,sub2", "c,sub1"};
	served_by[0] = "sem/a,sem/sub1,\x1fsem\x1fsub1\x1fnews\x1freceive";
	served_by[1] = "sem/b,sem/sub2,\x1fsem\x1fsub2\x1fnews\x1fonNews";
	served_by[2] = "sem/c,sem/sub1,\x1fsem\x1fsub1\x1fnews\x1freceive";
	member m[N];
	char bin[700];
	snprintf(bin, sizeof bin, "%s/tests/semantics/sem-host", it_build_dir());
	for (int i = 0; i < N; i++) {
		char gname[24], hname[24];
		itcl_member_init(&w, &m[i], i);
		snprintf(gname, sizeof gname, "gw%d", i);
		snprintf(hname, sizeof hname, "host%d", i);
		const char *gargs[] = {"--cluster-test-view", m[i].view, NULL};
		itdb_gateway_start(&w, &db, &m[i].g, gname, gargs, NULL);
		const char *argv[] = {bin, "--gateway", m[i].g.target, "--actors", actors[i], NULL};
		m[i].host = it_spawn(&w, hname, argv, NULL);
		ck_assert_msg(it_proc_wait_line(m[i].host, "registered", it_ms(15000), NULL, 0),
		              "sem-host %d did not register", i);
		ck_assert_int_eq(spawn_client_create(&cl[i], m[i].g.target), SPAWN_OK);
	}
	for (int i = 0; i < N; i++)
		write_view(m, i, 1);
	publish_and_check(m, itdb_kind_name(k));
	for (int i = 0; i < N; i++)
		served_by[i] = NULL;
}
END_TEST

/* publish_and_check: each publisher (a on member 0, b on 1, c on 2),
 * called through another member, publishes on "news"; every subscriber
 * (sub1 served on members 0 and 2, sub2 on 1) gets each message once, on
 * the member that owns it, and its state counts N deliveries. Stops the
 * members and checks nothing arrived twice, late. */
static void publish_and_check(member *m, const char *kind)
{
	/* Each publisher, called through another member: every subscriber
	 * gets the message once, on the member that owns it. */
	static const char *const pubs[N] = {"a", "b", "c"};
	int sub1_on = -1, sub2_on = -1;
	for (int p = 0; p < N; p++) {
		Sem__Msg msg = SEM__MSG__INIT;
		char text[16];
		snprintf(text, sizeof text, "m%d", p);
		msg.text = text;
		msg.channel = "news";
		sem_call((p + 1) % N, pubs[p], "Publish", &msg);
		char l1[96], l2[96];
		snprintf(l1, sizeof l1, "got sub1 receive %s caller=sem/%s", text, pubs[p]);
		snprintf(l2, sizeof l2, "got sub2 onNews %s caller=sem/%s", text, pubs[p]);
		/* sub1 runs on member 0 or 2 (which serve it), sub2 on member 1
		 * only: each host prints only its own subscriber's lines. */
		int o1 = wait_got(m, 1u << 0 | 1u << 2, l1), o2 = wait_got(m, 1u << 1, l2);
		ck_assert_msg(sub1_on < 0 || sub1_on == o1, "sub1 ran on %d, then on %d", sub1_on,
		              o1);
		sub1_on = o1;
		sub2_on = o2;
		fprintf(stderr,
		        "broadcast (%s): %s published through member %d: sub1 on %d, sub2 on %d\n",
		        kind, pubs[p], (p + 1) % N, o1, o2);
	}
	/* Each subscriber's state counts one delivery per broadcast. */
	ck_assert_int_eq(sem_call(0, "sub1", "Get", NULL), N);
	ck_assert_int_eq(sem_call(2, "sub2", "Get", NULL), N);
	(void)sub2_on;
	close_clients();
	for (int i = 0; i < N; i++)
		it_host_stop(m[i].host);
	for (int i = 0; i < N; i++)
		it_gateway_stop(&m[i].g);
	/* Nothing arrived twice, late. */
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(it_proc_count_lines(m[i].host, "got "), 0);
}

/* ---- broadcasts on real membership -------------------------------------------------------- */

/* free_port: a loopback port free now (bound, read, closed) for a member's
 * --peer-listen / --advertise; the gateway binds it right after. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* view_complete: whether the last view line of log has n members, each
 * ACTIVE with the types and subscriptions of what (e.g. "2 types, 1
 * subscriptions"). */
static bool view_complete(const char *log, int n, const char *what)
{
	FILE *f = fopen(log, "r");
	if (!f)
		return false;
	char *line = NULL, *last = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0)
		if (strstr(line, "cluster: view ")) {
			free(last);
			last = strdup(line);
		}
	free(line);
	fclose(f);
	char want[96], members[32];
	snprintf(want, sizeof want, "=active(%s)", what);
	snprintf(members, sizeof members, ": %d members: ", n);
	int found = 0;
	for (const char *p = last; p && (p = strstr(p, want)); p += strlen(want))
		found++;
	bool ok = last && strstr(last, members) && found == n;
	free(last);
	return ok;
}

/* The broadcast case with real membership: three gateways with --advertise
 * (each on a --peer-listen port of its own, which it advertises), the
 * subscribers registered by hosts of different members; the views, the
 * subscriptions in them and the owners all come from the members table. */
START_TEST(a_broadcast_reaches_the_subscribers_of_every_member_on_real_membership)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "bcastlive", k));
	itdb_init(&db, &w, k, "state.db");
	static const char *const actors[N] = {"a,sub1", "b,sub2", "c,sub1"};
	member m[N];
	char bin[700], logs[N][700];
	snprintf(bin, sizeof bin, "%s/tests/semantics/sem-host", it_build_dir());
	for (int i = 0; i < N; i++) {
		char gname[24], hname[24], peer[64], logname[32];
		snprintf(gname, sizeof gname, "gw%d", i);
		snprintf(hname, sizeof hname, "host%d", i);
		snprintf(logname, sizeof logname, "gw%d.log", i);
		it_path(&w, logname, logs[i], sizeof logs[i]);
		snprintf(peer, sizeof peer, "127.0.0.1:%d", free_port());
		const char *gargs[] = {
		    "--peer-listen",       peer,   "--advertise", peer, "--heartbeat-ms", "100",
		    "--member-timeout-ms", "2000", NULL};
		itdb_gateway_start(&w, &db, &m[i].g, gname, gargs, NULL);
		ck_assert_msg(it_proc_wait_line(m[i].g.p, "member ", it_ms(20000), NULL, 0),
		              "gateway %d did not join", i);
		const char *argv[] = {bin, "--gateway", m[i].g.target, "--actors", actors[i], NULL};
		m[i].host = it_spawn(&w, hname, argv, NULL);
		ck_assert_msg(it_proc_wait_line(m[i].host, "registered", it_ms(15000), NULL, 0),
		              "sem-host %d did not register", i);
		ck_assert_int_eq(spawn_client_create(&cl[i], m[i].g.target), SPAWN_OK);
	}
	/* Every member's view: the three ACTIVE, each serving its publisher and
	 * subscriber type and publishing one subscription. */
	for (int i = 0; i < N; i++) {
		bool ok = false;
		for (int64_t end = it_now_ms() + it_ms(15000); !ok && it_now_ms() < end;) {
			ok = view_complete(logs[i], N, "2 types, 1 subscriptions");
			if (!ok) {
				struct timespec ts = {0, 50 * 1000000};
				nanosleep(&ts, NULL); /* polling a log file: no event to wait on */
			}
		}
		ck_assert_msg(ok, "member %d's view never held the three members' subscriptions",
		              i);
	}
	publish_and_check(m, itdb_kind_name(k));
}
END_TEST

/* ---- the membership publishes the subscriptions ----------------------------------------- */

/* With real membership (--advertise): what a member's hosts subscribe to
 * reaches the other members' views through the members table. */
START_TEST(the_membership_publishes_each_members_subscriptions)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "published", k));
	itdb_init(&db, &w, k, "state.db");
	member m[2];
	char bin[700], log1[700];
	snprintf(bin, sizeof bin, "%s/tests/semantics/sem-host", it_build_dir());
	for (int i = 0; i < 2; i++) {
		char adv[64], gname[24];
		/* an id only: these members are never dialled in this case */
		snprintf(adv, sizeof adv, "127.0.0.1:%d", 17100 + i);
		snprintf(gname, sizeof gname, "gw%d", i);
		const char *args[] = {
		    "--advertise", adv, "--heartbeat-ms", "100", "--member-timeout-ms",
		    "2000",        NULL};
		itdb_gateway_start(&w, &db, &m[i].g, gname, args, NULL);
		ck_assert(it_proc_wait_line(m[i].g.p, "member ", it_ms(20000), NULL, 0));
	}
	it_path(&w, "gw1.log", log1, sizeof log1);
	const char *argv[] = {bin, "--gateway", m[0].g.target, "--actors", "a,sub1,sub2", NULL};
	it_proc *h = it_spawn(&w, "host0", argv, NULL);
	ck_assert(it_proc_wait_line(h, "registered", it_ms(15000), NULL, 0));
	/* Member 1's view: member 0 serves 3 types, 2 of them subscribed. */
	bool seen = false;
	for (int64_t end = it_now_ms() + it_ms(10000); !seen && it_now_ms() < end;) {
		seen = it_file_contains(log1, "=active(3 types, 2 subscriptions)");
		if (!seen) {
			struct timespec ts = {0, 50 * 1000000};
			nanosleep(&ts, NULL); /* polling a log file: no event to wait on */
		}
	}
	ck_assert_msg(seen, "member 1 never saw member 0's subscriptions in its view");
	/* The row holds them as gw_registry_served wrote them. */
	ck_assert_int_eq(itdb_query_int(&db, "SELECT count(*) FROM spawn_members WHERE served "
	                                     "LIKE '%news%onNews%'"),
	                 1);
	it_host_stop(h);
	for (int i = 0; i < 2; i++)
		it_gateway_stop(&m[i].g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration_cwide");
	const itdb_case cases[] = {
	    {"admin", admin_calls_naming_an_actor_run_on_its_owner, 120},
	    {"keys", key_rotation_aggregates_the_members_and_names_the_silent, 120},
	    {"recovery", only_the_owner_recovers_an_outbox_after_a_crash, 180},
	    {"schedules", scheduled_invocations_fire_once_across_the_cluster, 180},
	    {"broadcast", a_broadcast_reaches_each_subscriber_once_whichever_member_serves_it, 120},
	    {"published", the_membership_publishes_each_members_subscriptions, 90},
	    {"bcastlive", a_broadcast_reaches_the_subscribers_of_every_member_on_real_membership,
	     120},
	};
	itdb_add_cases(s, cases, sizeof cases / sizeof cases[0], "postgres,mariadb", teardown);
	itdb_launcher_start();
	return it_run(s);
}
