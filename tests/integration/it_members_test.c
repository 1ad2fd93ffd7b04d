/* it_members_test.c - the membership of a cluster (issue 11, section 1;
 * docs/design/cluster.md): three gateway processes with --advertise on one
 * PostgreSQL or MariaDB database, short timings (heartbeat 100 ms, member
 * timeout 1000 ms, scaled under sanitizers).
 *
 *   - all three see each other ACTIVE, with the same served types;
 *   - kill -9 of one: the others declare it dead within 2x the member
 *     timeout, with exactly one declaring update (p50 / max printed);
 *   - SIGTERM: LEAVING, then the row is gone; nobody declares it dead;
 *   - a member whose database stops answering (a black-hole proxy between
 *     it and the server) fences itself before the member timeout, the
 *     others declare its old row dead after that, and it rejoins under a
 *     new id when the database answers again;
 *   - a member stopped (SIGSTOP) past the timeout is declared dead; when
 *     it runs again it fences itself and rejoins under a new id;
 *   - in process (gw_cluster with a test probe): a silent member that
 *     answers its probe is not declared dead, one that stops answering is;
 *     views grow in version; leave writes LEAVING and destroy removes the row.
 *
 * The database is the witness: the test reads spawn_members behind the
 * gateways' backs (itdb). Runs through tests/store/with-db.sh under the
 * ctest fixture spawn_db; IT_STORES selects the stores (default:
 * postgres,mariadb); a missing server fails with CI=true.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "grpc/health/v1/health.pb-c.h"
#include "harness.h"
#include "itdb.h"
#include "itproxy.h"
#include "membership.h"
#include "raw.h"

#include <stdatomic.h>

#define HEARTBEAT_MS 100
#define TIMEOUT_MS   1000
#define NMEMBERS     3
#define KILLS        3

static it_world w;
static itdb db;
static itp *proxy;

typedef struct member {
	it_gw g;
	char id[300];
	char log[700];
} member;

static void teardown(void)
{
	it_world_fini(&w);
	itp_stop(proxy);
	proxy = NULL;
	itdb_fini(&db);
}

/* poll_pause: the step of the readiness polls on the database (a wait for a
 * state, bounded by each caller's deadline; never a sleep that a result
 * depends on). */
static void poll_pause(void)
{
	usleep(10 * 1000);
}

/* serving asks m's grpc.health.v1 Check for "" (readiness: a member of
 * the view, docs/deploy.md): 1 SERVING, 0 NOT_SERVING; asserts the call
 * is answered. */
static int serving(const member *m)
{
	uint8_t rq[2] = {0}; /* HealthCheckRequest{service: ""}: no bytes at all */
	raw_call *c =
	    raw_call_start(m->g.target, NULL, "/grpc.health.v1.Health/Check", rq, 0, it_ms(10000));
	ck_assert_ptr_nonnull(c);
	char details[300];
	uint8_t *resp = NULL;
	size_t len = 0;
	int st = raw_call_finish(c, it_ms(15000), details, sizeof details, &resp, &len);
	ck_assert_msg(st == 0, "Health/Check on %s: %d %s", m->g.target, st, details);
	Grpc__Health__V1__HealthCheckResponse *r =
	    grpc__health__v1__health_check_response__unpack(NULL, len, resp);
	free(resp);
	ck_assert_ptr_nonnull(r);
	int s = r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	ck_assert(s || r->status ==
	                   GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
	grpc__health__v1__health_check_response__free_unpacked(r, NULL);
	return s;
}

/* wait_joined reads "member ID joined" from m's stdout into m->id. */
static void wait_joined(member *m, const char *what)
{
	char line[600];
	ck_assert_msg(it_proc_wait_line(m->g.p, "member ", it_ms(20000), line, sizeof line),
	              "%s: no 'member ... joined' line", what);
	char id[300] = "", verb[32] = "";
	ck_assert_msg(sscanf(line, "member %299s %31s", id, verb) == 2, "%s: '%s'", what, line);
	ck_assert_msg(strcmp(verb, "joined") == 0, "%s: '%s' before joining", what, line);
	snprintf(m->id, sizeof m->id, "%s", id);
}

/* wait_fenced waits for "member ID fenced" (ID: m->id). */
static void wait_fenced(member *m, int64_t timeout_ms)
{
	char line[600], want[512];
	snprintf(want, sizeof want, "member %s fenced", m->id);
	ck_assert_msg(it_proc_wait_line(m->g.p, want, timeout_ms, line, sizeof line),
	              "%s did not fence itself", m->id);
}

/* start_member starts gateway i with store d (its URL may go through the
 * proxy) and waits until it is an ACTIVE member. */
static void start_member(member *m, const itdb *d, const char *name, int i)
{
	char adv[64], hb[24], to[24];
	snprintf(adv, sizeof adv, "127.0.0.1:%d", 17000 + i); /* an id, not dialled yet */
	snprintf(hb, sizeof hb, "%lld", (long long)it_ms(HEARTBEAT_MS));
	snprintf(to, sizeof to, "%lld", (long long)it_ms(TIMEOUT_MS));
	const char *args[] = {"--advertise", adv, "--heartbeat-ms", hb, "--member-timeout-ms", to,
	                      NULL};
	itdb_gateway_start(&w, d, &m->g, name, args, NULL);
	char file[80];
	snprintf(file, sizeof file, "%s.log", name);
	it_path(&w, file, m->log, sizeof m->log);
	wait_joined(m, name);
}

/* status_of: the status of row id (0: no row; -1: error). */
static long long status_of(const char *id)
{
	char sql[600];
	snprintf(sql, sizeof sql, "SELECT status FROM spawn_members WHERE id = '%s'", id);
	return itdb_query_int(&db, sql);
}

/* wait_status polls until row id has status want (0: gone); returns the
 * time it took, or -1 past timeout_ms. */
static int64_t wait_status(const char *id, long long want, int64_t timeout_ms)
{
	int64_t t0 = it_now_ms();
	while (it_now_ms() - t0 < timeout_ms) {
		if (status_of(id) == want)
			return it_now_ms() - t0;
		poll_pause();
	}
	return -1;
}

/* count_in_file: how many lines of path contain needle. */
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

/* fence_age: the age of m's last heartbeat when its fence clock fenced it,
 * as its log says ("member ID FENCED itself: no heartbeat reached the
 * database for N ms"); -1 when no such line. */
static long long fence_age(const member *m)
{
	char needle[512];
	snprintf(needle, sizeof needle,
	         "member %s FENCED itself: no heartbeat reached the database for ", m->id);
	FILE *f = fopen(m->log, "r");
	if (!f)
		return -1;
	char line[8192];
	long long age = -1;
	while (age < 0 && fgets(line, sizeof line, f)) {
		const char *at = strstr(line, needle);
		if (at && sscanf(at + strlen(needle), "%lld ms", &age) != 1)
			age = -1;
	}
	fclose(f);
	return age;
}

/* declarations: the lines of every member's log that declare id dead. */
static int declarations(member *ms, int n, const char *id)
{
	char needle[512];
	snprintf(needle, sizeof needle, "declared member %s dead", id);
	int c = 0;
	for (int i = 0; i < n; i++)
		c += count_in_file(ms[i].log, needle);
	return c;
}

/* settled_declarations: declarations of id once the declarer's log line is
 * out (the row turns DEAD before its declarer logs it; bounded wait), then
 * the count. */
static int settled_declarations(member *ms, int n, const char *id)
{
	int64_t t0 = it_now_ms();
	while (declarations(ms, n, id) < 1 && it_now_ms() - t0 < it_ms(2000))
		poll_pause();
	return declarations(ms, n, id);
}

/* last_view_ok: the last view line of log shows n members, all active and
 * each serving at least one type. */
static bool last_view_ok(const char *log, int n)
{
	FILE *f = fopen(log, "r");
	if (!f)
		return false;
	char line[8192], last[8192] = "";
	while (fgets(line, sizeof line, f))
		if (strstr(line, "cluster: view "))
			snprintf(last, sizeof last, "%s", line);
	fclose(f);
	char want[32];
	snprintf(want, sizeof want, ": %d members: ", n);
	if (!strstr(last, want) || strstr(last, "(0 types)"))
		return false;
	int active = 0;
	for (const char *p = last; (p = strstr(p, "=active(")); p++)
		active++;
	return active == n;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- all three see each other ------------------------------------------------------ */

START_TEST(three_members_see_each_other_active_with_the_same_served_types)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "view", k));
	itdb_init(&db, &w, k, "state.db");
	member m[NMEMBERS];
	for (int i = 0; i < NMEMBERS; i++) {
		char gw[16], host[16];
		snprintf(gw, sizeof gw, "gw%d", i);
		snprintf(host, sizeof host, "host%d", i);
		start_member(&m[i], &db, gw, i);
		it_host_start(&w, host, m[i].g.target, NULL);
	}
	/* The database: three ACTIVE rows serving one same non-empty set. */
	int64_t t0 = it_now_ms();
	long long active = 0, distinct = 0;
	while (it_now_ms() - t0 < it_ms(10000)) {
		active = itdb_query_int(&db, "SELECT COUNT(*) FROM spawn_members "
		                             "WHERE status = 2 AND served <> ''");
		distinct = itdb_query_int(&db, "SELECT COUNT(DISTINCT served) FROM spawn_members");
		if (active == NMEMBERS && distinct == 1)
			break;
		poll_pause();
	}
	ck_assert_msg(active == NMEMBERS && distinct == 1,
	              "%lld members active with served types, %lld distinct served lists", active,
	              distinct);
	ck_assert_int_eq(itdb_query_int(&db, "SELECT COUNT(*) FROM spawn_members WHERE served "
	                                     "LIKE '%it/%'"),
	                 NMEMBERS);
	/* Every member: a view of the three, all active, all serving. */
	for (int i = 0; i < NMEMBERS; i++) {
		t0 = it_now_ms();
		while (!last_view_ok(m[i].log, NMEMBERS) && it_now_ms() - t0 < it_ms(10000))
			poll_pause();
		ck_assert_msg(last_view_ok(m[i].log, NMEMBERS),
		              "gw%d never logged a view of %d active members serving types", i,
		              NMEMBERS);
	}
	/* Distinct ids; nobody was declared dead. */
	ck_assert_str_ne(m[0].id, m[1].id);
	ck_assert_str_ne(m[1].id, m[2].id);
	ck_assert_int_eq(itdb_query_int(&db, "SELECT COUNT(*) FROM spawn_members WHERE status = 4"),
	                 0);
	for (int i = 0; i < NMEMBERS; i++)
		it_gateway_stop(&m[i].g);
	/* Every row went with its member. */
	ck_assert_int_eq(itdb_query_int(&db, "SELECT COUNT(*) FROM spawn_members"), 0);
}
END_TEST

/* ---- kill -9 ----------------------------------------------------------------------- */

START_TEST(a_killed_member_is_declared_dead_once_within_two_timeouts)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "kill", k));
	itdb_init(&db, &w, k, "state.db");
	member m[NMEMBERS + KILLS];
	for (int i = 0; i < NMEMBERS; i++) {
		char gw[16];
		snprintf(gw, sizeof gw, "gw%d", i);
		start_member(&m[i], &db, gw, i);
	}
	int64_t took[KILLS];
	for (int r = 0; r < KILLS; r++) {
		/* The victim: the newest member (the first round: gw2). */
		member *v = &m[NMEMBERS - 1 + r];
		int64_t t0 = it_now_ms();
		it_proc_kill(v->g.p);
		ck_assert_msg(wait_status(v->id, 4, it_ms(4 * TIMEOUT_MS)) >= 0,
		              "round %d: %s not declared dead", r, v->id);
		took[r] = it_now_ms() - t0; /* from the kill */
		ck_assert_msg(took[r] <= 2 * it_ms(TIMEOUT_MS),
		              "round %d: %s declared dead after %lld ms (> 2 x %lld ms)", r, v->id,
		              (long long)took[r], (long long)it_ms(TIMEOUT_MS));
		/* Exactly one declaring update, by a survivor; the survivors
		 * themselves stay ACTIVE. */
		ck_assert_int_eq(settled_declarations(m, NMEMBERS + r, v->id), 1);
		ck_assert_int_eq(itdb_query_int(&db, "SELECT COUNT(*) FROM spawn_members "
		                                     "WHERE status = 4"),
		                 r + 1);
		ck_assert_int_eq(itdb_query_int(&db, "SELECT COUNT(*) FROM spawn_members "
		                                     "WHERE status = 2"),
		                 NMEMBERS - 1);
		/* A new member takes the victim's place. */
		char gw[16];
		snprintf(gw, sizeof gw, "gw%d", NMEMBERS + r);
		start_member(&m[NMEMBERS + r], &db, gw, NMEMBERS + r);
	}
	int64_t sorted[KILLS];
	memcpy(sorted, took, sizeof sorted);
	qsort(sorted, KILLS, sizeof sorted[0], cmp_i64);
	fprintf(stderr,
	        "[%s] kill -9 -> declared dead: p50 %lld ms, max %lld ms over %d kills (member "
	        "timeout %lld ms, heartbeat %lld ms)\n",
	        itdb_kind_name(k), (long long)sorted[KILLS / 2], (long long)sorted[KILLS - 1],
	        KILLS, (long long)it_ms(TIMEOUT_MS), (long long)it_ms(HEARTBEAT_MS));
	for (int i = 0; i < NMEMBERS - 1; i++)
		it_gateway_stop(&m[i].g);
	it_gateway_stop(&m[NMEMBERS + KILLS - 1].g);
}
END_TEST

/* ---- SIGTERM ----------------------------------------------------------------------- */

START_TEST(a_member_stopped_with_sigterm_leaves_and_is_not_declared_dead)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "leave", k));
	itdb_init(&db, &w, k, "state.db");
	member m[NMEMBERS];
	for (int i = 0; i < NMEMBERS; i++) {
		char gw[16];
		snprintf(gw, sizeof gw, "gw%d", i);
		start_member(&m[i], &db, gw, i);
	}
	member *v = &m[NMEMBERS - 1];
	it_gateway_stop(&v->g); /* SIGTERM, exit 0 */
	char needle[512];
	snprintf(needle, sizeof needle, "cluster: member %s is leaving", v->id);
	ck_assert_msg(count_in_file(v->log, needle) == 1, "no LEAVING written before the drain");
	snprintf(needle, sizeof needle, "cluster: member %s left", v->id);
	ck_assert_msg(count_in_file(v->log, needle) == 1, "the row was not removed at exit");
	ck_assert_int_eq(status_of(v->id), 0);
	/* The others never declare it dead (for two timeouts). */
	int64_t t0 = it_now_ms();
	while (it_now_ms() - t0 < 2 * it_ms(TIMEOUT_MS)) {
		ck_assert_int_eq(declarations(m, NMEMBERS, v->id), 0);
		ck_assert_int_eq(status_of(v->id), 0);
		poll_pause();
	}
	ck_assert_int_eq(itdb_query_int(&db, "SELECT COUNT(*) FROM spawn_members WHERE status = 2"),
	                 NMEMBERS - 1);
	for (int i = 0; i < NMEMBERS - 1; i++)
		it_gateway_stop(&m[i].g);
}
END_TEST

/* ---- the database stops answering one member ----------------------------------------- */

START_TEST(a_member_cut_from_the_database_fences_itself_first_and_rejoins)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "dbcut", k));
	itdb_init(&db, &w, k, "state.db");
	proxy = itp_start(itdb_server_port(&db));
	itdb via = db;
	itdb_via_port(&db, itp_port(proxy), via.url, sizeof via.url);
	member m[NMEMBERS];
	for (int i = 0; i < NMEMBERS - 1; i++) {
		char gw[16];
		snprintf(gw, sizeof gw, "gw%d", i);
		start_member(&m[i], &db, gw, i);
	}
	member *v = &m[NMEMBERS - 1];
	start_member(v, &via, "cut", NMEMBERS - 1);
	char old[300];
	snprintf(old, sizeof old, "%s", v->id);
	ck_assert_msg(serving(v), "a member that joined is not ready");

	int64_t t0 = it_now_ms();
	itp_blackhole(proxy, true);
	wait_fenced(v, 2 * it_ms(TIMEOUT_MS));
	int64_t fenced = it_now_ms() - t0; /* as this test saw it: late under load */
	/* Readiness went before the "fenced" line was printed. */
	ck_assert_msg(!serving(v), "a fenced member still answers SERVING");
	/* Before the member timeout by the member's own clock: the age of its
	 * last heartbeat when it fenced, which the others compare with the
	 * timeout (this process reads the line later on a loaded machine). */
	long long age = fence_age(v);
	ck_assert_msg(age >= 0 && age < it_ms(TIMEOUT_MS),
	              "fenced when its last heartbeat was %lld ms old: not before the member "
	              "timeout (%lld ms)",
	              (long long)age, (long long)it_ms(TIMEOUT_MS));
	/* The others declare its old row dead, after it fenced itself. */
	int64_t declared = wait_status(old, 4, it_ms(4 * TIMEOUT_MS));
	ck_assert_msg(declared >= 0, "%s was never declared dead", old);
	declared += fenced;
	ck_assert_int_eq(settled_declarations(m, NMEMBERS - 1, old), 1);
	fprintf(stderr,
	        "[%s] database cut: fenced at a heartbeat age of %lld ms (seen %lld ms after the "
	        "cut), declared dead after ~%lld ms\n",
	        itdb_kind_name(k), (long long)age, (long long)fenced, (long long)declared);

	/* The database answers again: a new member, under a new id. */
	itp_blackhole(proxy, false);
	wait_joined(v, "the cut member");
	ck_assert_msg(serving(v), "the member rejoined and is not ready");
	ck_assert_str_ne(v->id, old);
	ck_assert_int_eq(wait_status(v->id, 2, it_ms(5000)) >= 0, 1);
	for (int i = 0; i < NMEMBERS; i++)
		it_gateway_stop(&m[i].g);
}
END_TEST

/* ---- stopped past the timeout ------------------------------------------------------------ */

START_TEST(a_member_declared_dead_while_stopped_fences_itself_and_rejoins)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "stopped", k));
	itdb_init(&db, &w, k, "state.db");
	member m[NMEMBERS];
	for (int i = 0; i < NMEMBERS; i++) {
		char gw[16];
		snprintf(gw, sizeof gw, "gw%d", i);
		start_member(&m[i], &db, gw, i);
	}
	member *v = &m[NMEMBERS - 1];
	char old[300];
	snprintf(old, sizeof old, "%s", v->id);
	it_proc_signal(v->g.p, SIGSTOP);
	ck_assert_msg(wait_status(old, 4, it_ms(4 * TIMEOUT_MS)) >= 0,
	              "%s was not declared dead while stopped", old);
	ck_assert_int_eq(settled_declarations(m, NMEMBERS, old), 1);
	it_proc_signal(v->g.p, SIGCONT);
	wait_fenced(v, it_ms(5000));
	wait_joined(v, "the stopped member");
	ck_assert_str_ne(v->id, old);
	ck_assert_int_eq(status_of(old), 4); /* its old row stays dead */
	ck_assert_int_eq(wait_status(v->id, 2, it_ms(5000)) >= 0, 1);
	ck_assert_int_eq(itdb_query_int(&db, "SELECT COUNT(*) FROM spawn_members WHERE status = 2"),
	                 NMEMBERS);
	for (int i = 0; i < NMEMBERS; i++)
		it_gateway_stop(&m[i].g);
}
END_TEST

/* ---- the probe (in process) ----------------------------------------------------------- */

typedef struct probe_ctx {
	atomic_bool answer;
	atomic_int calls;
	atomic_int views;
	_Atomic uint64_t last_version;
	atomic_bool versions_grew; /* every view's version above the one before */
	char ghost[128];
} probe_ctx;

static bool test_probe(void *user, const gw_member *m, int64_t timeout_ms)
{
	probe_ctx *p = user;
	(void)timeout_ms;
	if (strcmp(m->id, p->ghost) != 0)
		return false;
	atomic_fetch_add(&p->calls, 1);
	return atomic_load(&p->answer);
}

static void test_view(void *user, gw_view *v)
{
	probe_ctx *p = user;
	if (v->version <= atomic_load(&p->last_version))
		atomic_store(&p->versions_grew, false);
	atomic_store(&p->last_version, v->version);
	atomic_fetch_add(&p->views, 1);
}

/* view_has: the current view shows id, and this member as self. */
static bool view_has(gw_cluster *c, const char *id)
{
	gw_view *v = gw_cluster_view_hold(c);
	bool found = false;
	for (size_t i = 0; i < v->n; i++)
		found |= strcmp(v->members[i].id, id) == 0;
	bool self = v->self != SIZE_MAX;
	gw_view_rele(v);
	return found && self;
}

START_TEST(a_silent_member_answering_its_probe_is_not_declared_dead)
{
	itdb_kind k = (itdb_kind)_i;
	if (!itdb_usable(k))
		return;
	char name[96];
	it_world_init(&w, itdb_case_name(name, sizeof name, "probe", k));
	itdb_init(&db, &w, k, "state.db");
	gw_store_opts so = {.keys = ITDB_KEY_A, .pool_size = 1};
	gw_store *raw = NULL, *ms = NULL;
	ck_assert_int_eq(gw_store_open(&raw, db.url, &so), GW_OK);
	ck_assert_int_eq(gw_store_open(&ms, db.url, &so), GW_OK);
	static probe_ctx pc;
	memset(&pc, 0, sizeof pc);
	atomic_store(&pc.answer, true);
	atomic_store(&pc.versions_grew, true);
	snprintf(pc.ghost, sizeof pc.ghost, "127.0.0.1:18002@ghost-%d", (int)getpid());
	int64_t timeout = it_ms(TIMEOUT_MS);
	gw_cluster_opts o = {.advertise = "127.0.0.1:18001",
	                     .heartbeat_ms = it_ms(HEARTBEAT_MS),
	                     .member_timeout_ms = timeout,
	                     .probe = test_probe,
	                     .on_view = test_view,
	                     .user = &pc};
	gw_cluster *c = NULL;
	ck_assert_int_eq(gw_cluster_create(&c, ms, &o), GW_OK);
	ck_assert(!gw_cluster_serving(c)); /* not joined yet */
	ck_assert_int_eq(gw_cluster_start(c), GW_OK);
	/* A member that joined and never heartbeats again. */
	ck_assert_int_eq(gw_store_member_join(raw, pc.ghost, "127.0.0.1:18002", "", NULL), GW_OK);
	int64_t t0 = it_now_ms();
	while (!view_has(c, pc.ghost) && it_now_ms() - t0 < it_ms(5000))
		poll_pause();
	ck_assert(view_has(c, pc.ghost));
	ck_assert(gw_cluster_serving(c));
	/* Silent past two timeouts, but it answers: probed, not declared. */
	t0 = it_now_ms();
	while (it_now_ms() - t0 < 2 * timeout) {
		ck_assert_int_eq(status_of(pc.ghost), GW_MEMBER_JOINING);
		poll_pause();
	}
	int calls = atomic_load(&pc.calls);
	ck_assert_int_gt(calls, 0);
	/* It stops answering: declared dead within a timeout, gone from the view. */
	atomic_store(&pc.answer, false);
	ck_assert_msg(wait_status(pc.ghost, GW_MEMBER_DEAD, timeout) >= 0,
	              "a member missing heartbeats and its probe was not declared dead");
	t0 = it_now_ms();
	while (view_has(c, pc.ghost) && it_now_ms() - t0 < it_ms(5000))
		poll_pause();
	ck_assert(!view_has(c, pc.ghost));
	ck_assert(atomic_load(&pc.versions_grew));
	int views = atomic_load(&pc.views);
	ck_assert_int_ge(views, 2); /* with the ghost (maybe after one without), without */
	/* Leave: LEAVING in the table; destroy: the row goes. */
	gw_view *v = gw_cluster_view_hold(c);
	ck_assert_uint_ne(v->self, SIZE_MAX);
	char self[256];
	snprintf(self, sizeof self, "%s", v->members[v->self].id);
	gw_view_rele(v);
	ck_assert(gw_cluster_leave(c, it_ms(5000)));
	ck_assert_int_eq(status_of(self), GW_MEMBER_LEAVING);
	gw_cluster_destroy(c);
	ck_assert_int_eq(status_of(self), 0);
	gw_store_close(raw);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration_members");
	const itdb_case cases[] = {
	    {"view", three_members_see_each_other_active_with_the_same_served_types, 90},
	    {"kill", a_killed_member_is_declared_dead_once_within_two_timeouts, 120},
	    {"leave", a_member_stopped_with_sigterm_leaves_and_is_not_declared_dead, 90},
	    {"dbcut", a_member_cut_from_the_database_fences_itself_first_and_rejoins, 90},
	    {"stopped", a_member_declared_dead_while_stopped_fences_itself_and_rejoins, 90},
	    {"probe", a_silent_member_answering_its_probe_is_not_declared_dead, 60},
	};
	itdb_add_cases(s, cases, sizeof cases / sizeof cases[0], "postgres,mariadb", teardown);
	itdb_launcher_start();
	return it_run(s);
}
