/* it_resume_test.c - long-lived libspawn clients over gateway restarts
 * (issue 9, item 7): the gateway is SIGKILLed and started again on the same
 * address (a TCP port, a unix socket), and the first call of a client that
 * was idle across the restart must not fail because of its dead connection.
 *
 * Two clients, both created before the first gateway dies and idle while it
 * restarts:
 *   - A calls an actor nobody registered right after the new gateway prints
 *     `listening`: the answer must be the new gateway's NOT_FOUND, never the
 *     UNAVAILABLE of a write on the dead connection;
 *   - B calls Add once the host has registered again: it must succeed.
 * And a third client, created while the gateway is down, calls while it is
 * down: the call waits for the new gateway (wait-for-ready) and gets its
 * answer instead of failing at once.
 * Retryable answers (docs/protocol.md): the host is stopped (SIGSTOP) across
 * each restart, so B's Add, made right after the new gateway prints
 * `listening`, reaches it before the host has registered again. The gateway
 * answers UNAVAILABLE marked never dispatched; B retries it and succeeds once
 * the host is continued and has registered. A fail-fast client making the
 * same call meanwhile gets the UNAVAILABLE (fail_fast: no retry).
 * And a call that was dispatched and lost (the host killed during it) fails
 * UNAVAILABLE without a retry, while one made when no host is connected
 * waits (by retrying) for a new host.
 * The times from `listening` to A's answer and to B's success are printed
 * (measured, not asserted: the machine may be loaded).
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <spawn/spawn.h>

#include "harness.h"
#include "itc.h"

static it_world w;
static spawn_client *ca, *cb;

static void teardown(void)
{
	spawn_client_destroy(ca);
	spawn_client_destroy(cb);
	ca = cb = NULL;
	it_world_fini(&w);
}

/* start_gateway starts a gateway on db that also listens on listen and
 * waits for that address's `listening` line. */
static it_proc *start_gateway(const char *name, const char *listen)
{
	const char *args[] = {"--listen", listen, NULL};
	it_proc *p = it_gateway_spawn(&w, name, "state.db", args, NULL);
	char prefix[700];
	snprintf(prefix, sizeof prefix, "listening %s ", listen);
	if (!it_proc_wait_line(p, prefix, it_ms(15000), NULL, 0)) {
		it_proc_dump(p);
		ck_abort_msg("gateway %s did not listen on %s in time", name, listen);
	}
	return p;
}

static int call_nobody(spawn_client *c, char *msg, size_t n)
{
	spawn_request req = {
	    .system = ITC_SYSTEM, .actor = "nobody-registered-this", .action = "Get"};
	spawn_reply r;
	int rc = spawn_client_invoke(c, &req, &r, it_ms(10000));
	snprintf(msg, n, "%s", r.message ? r.message : "");
	spawn_reply_fini(&r);
	return rc;
}

/* A synchronous Add of a long-lived client, on its own thread. */
typedef struct bg_add {
	spawn_client *c;
	int rc;
	int64_t total, done_ms;
	char msg[300];
} bg_add;

static void *bg_add_main(void *arg)
{
	bg_add *b = arg;
	b->rc = itc_add(b->c, ITC_COUNTER, 1, 0, &b->total, b->msg, sizeof b->msg);
	b->done_ms = it_now_ms();
	return NULL;
}

static spawn_client *fail_fast_client(const char *target)
{
	spawn_client *c = NULL;
	spawn_client_opts o = {.target = target, .fail_fast = true};
	ck_assert_int_eq(spawn_client_create_opts(&c, &o), SPAWN_OK);
	return c;
}

/* A call of a client made while the gateway is down, on its own thread. */
typedef struct early_call {
	const char *target;
	int rc;
	char msg[300];
} early_call;

static void *early_main(void *arg)
{
	early_call *e = arg;
	spawn_client *c;
	e->rc = spawn_client_create(&c, e->target);
	if (e->rc == SPAWN_OK) {
		e->rc = call_nobody(c, e->msg, sizeof e->msg);
		spawn_client_destroy(c);
	}
	return NULL;
}

static void restarts_on(const char *transport, const char *listen, const char *target)
{
	it_proc *gw = start_gateway("gw0", listen);
	const char *hargs[] = {"--checkpoint", NULL}; /* the store knows the counter */
	it_proc *host = it_host_start(&w, "host", target, hargs);
	ck_assert_int_eq(spawn_client_create(&ca, target), SPAWN_OK);
	ck_assert_int_eq(spawn_client_create(&cb, target), SPAWN_OK);
	char msg[300];
	int64_t total = -1;
	ck_assert_int_eq(call_nobody(ca, msg, sizeof msg), SPAWN_NOT_FOUND);
	int rc = itc_add(cb, ITC_COUNTER, 1, 0, &total, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "Add before the restart: %s: %s", spawn_status_name(rc), msg);

	/* SPAWN_RESUME_BENCH (bench/resume.sh): the host is not stopped; the
	 * time to B's first Add measures the host's own reconnect. */
	bool bench = getenv("SPAWN_RESUME_BENCH") != NULL;
	for (int round = 1; round <= 3; round++) {
		if (!bench)
			it_proc_signal(host, SIGSTOP); /* it re-registers only once continued */
		it_proc_kill(gw);
		early_call early = {.target = target};
		pthread_t t, tb;
		ck_assert_int_eq(pthread_create(&t, NULL, early_main, &early), 0);
		char name[32];
		snprintf(name, sizeof name, "gw%d", round);
		gw = start_gateway(name, listen);
		int64_t t0 = it_now_ms();
		bg_add badd = {.c = cb};
		ck_assert_int_eq(pthread_create(&tb, NULL, bg_add_main, &badd), 0);
		rc = call_nobody(ca, msg, sizeof msg);
		int64_t t1 = it_now_ms();
		ck_assert_msg(rc == SPAWN_NOT_FOUND,
		              "%s round %d: the first call after the restart got %s: %s", transport,
		              round, spawn_status_name(rc), msg);
		if (!bench) {
			spawn_client *cf = fail_fast_client(target);
			int frc = itc_add(cf, ITC_COUNTER, 1, 0, &total, msg, sizeof msg);
			spawn_client_destroy(cf);
			ck_assert_msg(
			    frc == SPAWN_UNAVAILABLE,
			    "%s round %d: a fail-fast Add before the host registered got %s: %s",
			    transport, round, spawn_status_name(frc), msg);
		}
		pthread_join(t, NULL);
		ck_assert_msg(early.rc == SPAWN_NOT_FOUND,
		              "%s round %d: a call made while the gateway was down got %s: %s",
		              transport, round, spawn_status_name(early.rc), early.msg);
		int64_t tc = it_now_ms();
		if (!bench)
			it_proc_signal(host, SIGCONT);
		pthread_join(tb, NULL);
		ck_assert_msg(
		    badd.rc == SPAWN_OK,
		    "%s round %d: an Add made before the host registered again got %s: %s",
		    transport, round, spawn_status_name(badd.rc), badd.msg);
		if (!it_proc_wait_line(host, "registered", it_ms(15000), NULL, 0)) {
			it_proc_dump(host);
			ck_abort_msg("the host did not register again");
		}
		int64_t t2 = it_now_ms();
		rc = itc_add(cb, ITC_COUNTER, 1, 0, &total, msg, sizeof msg);
		int64_t t3 = it_now_ms();
		ck_assert_msg(rc == SPAWN_OK, "%s round %d: Add after the restart: %s: %s",
		              transport, round, spawn_status_name(rc), msg);
		ck_assert_int_eq(total, badd.total + 1);
		if (bench)
			fprintf(stderr,
			        "resume %s round %d: listening -> first answer %" PRId64
			        " ms; listening -> first Add OK %" PRId64 " ms\n",
			        transport, round, t1 - t0, badd.done_ms - t0);
		else
			fprintf(stderr,
			        "resume %s round %d: listening -> first answer %" PRId64
			        " ms; host continued -> retried Add OK %" PRId64
			        " ms; host registered -> next Add OK %" PRId64 " ms\n",
			        transport, round, t1 - t0, badd.done_ms - tc, t3 - t2);
	}
	it_host_stop(host);
	it_proc_signal(gw, SIGTERM);
	ck_assert(it_proc_wait_exit(gw, it_ms(20000)));
	ck_assert_int_eq(it_exit_code(gw), 0);
}

START_TEST(a_long_lived_client_resumes_after_a_restart_on_the_same_tcp_port)
{
	it_world_init(&w, "tcp");
	/* A free port: the first gateway's own ephemeral one, kept for the
	 * restarts. */
	it_gw probe;
	it_gateway_start(&w, &probe, "probe", "probe.db", NULL, NULL);
	int port = probe.port;
	it_proc_kill(probe.p);
	char listen[64];
	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	restarts_on("tcp", listen, listen);
}
END_TEST

START_TEST(a_long_lived_client_resumes_after_a_restart_on_the_same_unix_socket)
{
	it_world_init(&w, "unix");
	char sock[600], listen[620];
	it_path(&w, "gw.sock", sock, sizeof sock);
	snprintf(listen, sizeof listen, "unix:%s", sock);
	restarts_on("unix", listen, listen);
}
END_TEST

/* A synchronous Hang on the counter, on its own thread. */
typedef struct bg_hang {
	spawn_client *c;
	int rc;
	char msg[300];
} bg_hang;

static void *bg_hang_main(void *arg)
{
	bg_hang *b = arg;
	spawn_reply r;
	b->rc = itc_invoke(b->c, ITC_COUNTER, "Hang", NULL, it_ms(20000), &r);
	snprintf(b->msg, sizeof b->msg, "%s", r.message ? r.message : "");
	spawn_reply_fini(&r);
	return NULL;
}

START_TEST(a_dispatched_call_that_is_lost_is_not_retried_an_undispatched_one_is)
{
	it_world_init(&w, "lost");
	it_gw g;
	it_gateway_start(&w, &g, "gw", "state.db", NULL, NULL);
	const char *hargs[] = {"--actions", "Add,Get,Hang", NULL};
	it_proc *host = it_host_start(&w, "host", g.target, hargs);
	ck_assert_int_eq(spawn_client_create(&ca, g.target), SPAWN_OK);
	char msg[300];
	int64_t total = -1;
	int rc = itc_add(ca, ITC_COUNTER, 1, 0, &total, msg, sizeof msg);
	ck_assert_msg(rc == SPAWN_OK, "Add: %s: %s", spawn_status_name(rc), msg);

	/* Dispatched, then its host dies: whether it ran is unknown, so the
	 * answer is UNAVAILABLE without the mark, and the client does not
	 * retry it (a retry would find no host and wait out the deadline). */
	bg_hang hang = {.c = ca};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, bg_hang_main, &hang), 0);
	if (!it_proc_wait_line(host, "hanging counter", it_ms(10000), NULL, 0)) {
		it_proc_dump(host);
		ck_abort_msg("Hang did not reach the host");
	}
	it_proc_kill(host);
	pthread_join(t, NULL);
	ck_assert_msg(hang.rc == SPAWN_UNAVAILABLE && strstr(hang.msg, "went away"),
	              "a call whose host died during it got %s: %s", spawn_status_name(hang.rc),
	              hang.msg);

	/* No host connected: never dispatched. A fail-fast client gets the
	 * UNAVAILABLE; a retrying one gets the answer of the next host. */
	bg_add badd = {.c = ca};
	ck_assert_int_eq(pthread_create(&t, NULL, bg_add_main, &badd), 0);
	spawn_client *cf = fail_fast_client(g.target);
	rc = itc_add(cf, ITC_COUNTER, 1, 0, &total, msg, sizeof msg);
	spawn_client_destroy(cf);
	ck_assert_msg(rc == SPAWN_UNAVAILABLE && strstr(msg, "no host serving"),
	              "a fail-fast Add without a host got %s: %s", spawn_status_name(rc), msg);
	it_proc *host2 = it_host_start(&w, "host2", g.target, hargs);
	pthread_join(t, NULL);
	ck_assert_msg(badd.rc == SPAWN_OK, "an Add made while no host was connected got %s: %s",
	              spawn_status_name(badd.rc), badd.msg);
	it_host_stop(host2);
}
END_TEST

static Suite *resume_suite(void)
{
	it_case cases[] = {
	    {"tcp", a_long_lived_client_resumes_after_a_restart_on_the_same_tcp_port},
	    {"unix", a_long_lived_client_resumes_after_a_restart_on_the_same_unix_socket},
	    {"lost", a_dispatched_call_that_is_lost_is_not_retried_an_undispatched_one_is},
	};
	return IT_SUITE("integration_resume", cases, teardown, 90);
}

int main(void)
{
	return it_run(resume_suite());
}
