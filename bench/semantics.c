/* semantics.c - bench-semantics: the actor-semantics scenarios of issue 5
 * section 6, against a running spawn-gateway (bench/semantics.sh starts
 * one). One process is both the actor host (libspawn, in a background
 * thread) and the client, so the host's delivery records are read directly.
 *
 * Host (system --system, default "bsem"), all actors stateless:
 *   c0..c4           "chain": pipe to the next one's "chain" (c4 replies);
 *                    "step": reply with the input (one plain turn)
 *   pub              "publish": broadcast the input on channel "bench-topic"
 *   sub-0..sub-N-1   subscribed to "bench-topic" (action "receive"): count
 *   sched-0..K-1     "fire": record (now - the scheduled time in the input)
 *
 * Scenarios (--scenarios pipe,broadcast,scheduled):
 *   pipe       --pipe-iters times, interleaved: one call c0.chain (the
 *              gateway pipes c0->c1->c2->c3->c4) and 5 sequential calls
 *              c0.step..c4.step; latency p50/p99 of each and their ratio.
 *   broadcast  --bcast-rounds calls pub.publish; each waits until all
 *              --subscribers deliveries arrived; deliveries/s from the
 *              call's start to the last delivery (round 1 activates the
 *              subscribers: reported apart from the warm rounds).
 *   scheduled  --sched-n invocations submitted (--sched-threads threads)
 *              with scheduled_to spread over [t0 + lead, t0 + lead +
 *              window]; fire rate (deliveries / (last - first delivery))
 *              and lateness (delivery - scheduled_to) p50/p99/max.
 * Prints "key value" result lines; exit 1 on any error or timeout.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spawn/spawn.h>

#define BYTES_URL "type.googleapis.com/bench.Bytes"
#define TOPIC     "bench-topic"
#define CHAIN     5

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t pct(const int64_t *sorted, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

/* ---- host ------------------------------------------------------------- */

static atomic_long bcast_got;
static atomic_llong bcast_last_us;
static int64_t *sched_late_us; /* one per delivery, by arrival order */
static atomic_long sched_got;
static atomic_llong sched_first_us, sched_last_us;
static long sched_cap;
static atomic_long errors;

static void h_step(spawn_ctx *ctx, void *user)
{
	(void)user;
	const spawn_payload *in = spawn_ctx_payload(ctx);
	spawn_ctx_reply(ctx, BYTES_URL, in->data, in->len);
}

static void h_chain(spawn_ctx *ctx, void *user)
{
	const char *next = user;
	const spawn_payload *in = spawn_ctx_payload(ctx);
	spawn_ctx_reply(ctx, BYTES_URL, in->data, in->len);
	if (next)
		spawn_ctx_pipe(ctx, next, "chain");
}

static void h_publish(spawn_ctx *ctx, void *user)
{
	(void)user;
	const spawn_payload *in = spawn_ctx_payload(ctx);
	spawn_ctx_broadcast(ctx, TOPIC, BYTES_URL, in->data, in->len);
}

static void h_receive(spawn_ctx *ctx, void *user)
{
	(void)user;
	(void)ctx;
	atomic_store(&bcast_last_us, now_us());
	atomic_fetch_add(&bcast_got, 1);
}

static void h_fire(spawn_ctx *ctx, void *user)
{
	(void)user;
	int64_t t = now_us();
	const spawn_payload *in = spawn_ctx_payload(ctx);
	int64_t due_ms = 0;
	if (in->len != sizeof due_ms) {
		atomic_fetch_add(&errors, 1);
		return;
	}
	memcpy(&due_ms, in->data, sizeof due_ms);
	long i = atomic_fetch_add(&sched_got, 1);
	if (i < sched_cap)
		sched_late_us[i] = t - due_ms * 1000;
	long long zero = 0;
	atomic_compare_exchange_strong(&sched_first_us, &zero, t);
	atomic_store(&sched_last_us, t);
}

/* ---- options ------------------------------------------------------------ */

static const char *gateway = "127.0.0.1:8090", *host_target, *system_name = "bsem";
static const char *scenarios = "pipe,broadcast,scheduled";
static int workers = 4, pipe_iters = 2000, subscribers = 10000, bcast_rounds = 3;
static int sched_actors = 64, sched_threads = 16;
static long sched_n = 100000;
static int64_t sched_lead_ms = 15000, sched_window_ms = 2000, wait_ms = 60000;

static bool want(const char *s)
{
	return strstr(scenarios, s) != NULL;
}

/* ---- client helpers ------------------------------------------------------- */

static spawn_client *cl;

static int call(const char *actor, const char *action, int64_t sched_ms, const void *data,
                size_t len, bool async)
{
	spawn_request rq = {.system = system_name,
	                    .actor = actor,
	                    .action = action,
	                    .payload = {.type_url = BYTES_URL, .data = data, .len = len},
	                    .async = async,
	                    .scheduled_to_ms = sched_ms};
	spawn_reply r;
	int rc = spawn_client_invoke(cl, &rq, &r, 30000);
	if (rc != SPAWN_OK) {
		if (atomic_fetch_add(&errors, 1) < 5)
			fprintf(stderr, "bench-semantics: %s.%s: %s %s\n", actor, action,
			        spawn_status_name(rc), r.message ? r.message : "");
	}
	spawn_reply_fini(&r);
	return rc;
}

/* ---- scenarios ------------------------------------------------------------- */

static void run_pipe(void)
{
	static const char *const names[CHAIN] = {"c0", "c1", "c2", "c3", "c4"};
	char buf[64];
	memset(buf, 'x', sizeof buf);
	int64_t *chain = calloc((size_t)pipe_iters, sizeof *chain);
	int64_t *seq = calloc((size_t)pipe_iters, sizeof *seq);
	for (int w = 0; w < 100; w++) { /* warm-up: activations, connections */
		call("c0", "chain", 0, buf, sizeof buf, false);
		for (int k = 0; k < CHAIN; k++)
			call(names[k], "step", 0, buf, sizeof buf, false);
	}
	for (int i = 0; i < pipe_iters; i++) {
		int64_t t = now_us();
		call("c0", "chain", 0, buf, sizeof buf, false);
		chain[i] = now_us() - t;
		t = now_us();
		for (int k = 0; k < CHAIN; k++)
			call(names[k], "step", 0, buf, sizeof buf, false);
		seq[i] = now_us() - t;
	}
	qsort(chain, (size_t)pipe_iters, sizeof *chain, cmp_i64);
	qsort(seq, (size_t)pipe_iters, sizeof *seq, cmp_i64);
	size_t n = (size_t)pipe_iters;
	printf("pipe_iters %d\n", pipe_iters);
	printf("pipe_chain5_p50_us %" PRId64 "\npipe_chain5_p99_us %" PRId64 "\n",
	       pct(chain, n, .5), pct(chain, n, .99));
	printf("pipe_seq5_p50_us %" PRId64 "\npipe_seq5_p99_us %" PRId64 "\n", pct(seq, n, .5),
	       pct(seq, n, .99));
	printf("pipe_ratio_p50 %.3f\n", (double)pct(chain, n, .5) / (double)pct(seq, n, .5));
	free(chain);
	free(seq);
}

static bool wait_count(atomic_long *c, long target, int64_t ms)
{
	int64_t end = now_us() + ms * 1000;
	while (atomic_load(c) < target) {
		if (now_us() > end)
			return false;
		struct timespec d = {0, 200000};
		nanosleep(&d, NULL);
	}
	return true;
}

static void run_broadcast(void)
{
	char buf[64];
	memset(buf, 'b', sizeof buf);
	double warm_sum = 0;
	int warm_n = 0;
	for (int r = 0; r < bcast_rounds; r++) {
		long target = (long)subscribers * (r + 1);
		int64_t t0 = now_us();
		if (call("pub", "publish", 0, buf, sizeof buf, false) != SPAWN_OK)
			return;
		if (!wait_count(&bcast_got, target, wait_ms)) {
			fprintf(
			    stderr, "bench-semantics: broadcast round %d: %ld of %d deliveries\n",
			    r + 1, atomic_load(&bcast_got) - (long)subscribers * r, subscribers);
			atomic_fetch_add(&errors, 1);
			return;
		}
		double s = (double)(atomic_load(&bcast_last_us) - t0) / 1e6;
		double rate = subscribers / s;
		printf("broadcast_round%d_ms %.1f\nbroadcast_round%d_deliveries_per_s %.0f\n",
		       r + 1, s * 1000, r + 1, rate);
		if (r > 0) {
			warm_sum += rate;
			warm_n++;
		}
	}
	printf("broadcast_subscribers %d\n", subscribers);
	if (warm_n)
		printf("broadcast_warm_deliveries_per_s %.0f\n", warm_sum / warm_n);
}

static int64_t sched_t0_ms;
static atomic_long sched_next;

static void *sched_submit(void *arg)
{
	(void)arg;
	char actor[32];
	for (;;) {
		long i = atomic_fetch_add(&sched_next, 1);
		if (i >= sched_n)
			return NULL;
		int64_t due = sched_t0_ms + sched_lead_ms +
		              (int64_t)((double)sched_window_ms * (double)i / (double)sched_n);
		snprintf(actor, sizeof actor, "sched-%ld", i % sched_actors);
		call(actor, "fire", due, &due, sizeof due, true);
	}
}

static void run_scheduled(void)
{
	sched_cap = sched_n;
	sched_late_us = calloc((size_t)sched_n, sizeof *sched_late_us);
	sched_t0_ms = now_us() / 1000;
	int64_t s0 = now_us();
	pthread_t th[64];
	int nt = sched_threads > 64 ? 64 : sched_threads;
	for (int i = 0; i < nt; i++)
		pthread_create(&th[i], NULL, sched_submit, NULL);
	for (int i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	int64_t s1 = now_us();
	printf("sched_n %ld\nsched_submit_per_s %.0f\n", sched_n, sched_n / ((s1 - s0) / 1e6));
	int64_t first_due_us = (sched_t0_ms + sched_lead_ms) * 1000;
	printf("sched_submit_end_vs_first_due_ms %.0f\n", (s1 - first_due_us) / 1000.0);
	if (s1 > first_due_us)
		fprintf(stderr, "bench-semantics: submission ended after the first due time: "
		                "raise --sched-lead-ms\n");
	int64_t left = (first_due_us + sched_window_ms * 1000 - now_us()) / 1000;
	if (!wait_count(&sched_got, sched_n, (left > 0 ? left : 0) + wait_ms)) {
		fprintf(stderr, "bench-semantics: scheduled: %ld of %ld delivered\n",
		        atomic_load(&sched_got), sched_n);
		atomic_fetch_add(&errors, 1);
	}
	long got = atomic_load(&sched_got);
	size_t n = (size_t)(got < sched_n ? got : sched_n);
	qsort(sched_late_us, n, sizeof *sched_late_us, cmp_i64);
	double span = (double)(atomic_load(&sched_last_us) - atomic_load(&sched_first_us)) / 1e6;
	printf("sched_delivered %ld\n", got);
	printf("sched_fire_span_s %.3f\nsched_fire_per_s %.0f\n", span, span > 0 ? got / span : 0);
	printf("sched_late_p50_ms %.1f\nsched_late_p99_ms %.1f\nsched_late_max_ms %.1f\n",
	       pct(sched_late_us, n, .5) / 1000.0, pct(sched_late_us, n, .99) / 1000.0,
	       n ? sched_late_us[n - 1] / 1000.0 : 0);
	printf("sched_early_min_ms %.1f\n", n ? sched_late_us[0] / 1000.0 : 0);
}

/* ---- main ------------------------------------------------------------------ */

static int add(spawn_host *h, const char *name, const spawn_action_def *acts, size_t n,
               const spawn_channel_def *ch)
{
	spawn_actor_def d = {.name = name,
	                     .kind = SPAWN_KIND_NAMED,
	                     .actions = acts,
	                     .n_actions = n,
	                     .channels = ch,
	                     .n_channels = ch ? 1 : 0};
	int rc = spawn_host_add_actor(h, &d);
	if (rc)
		fprintf(stderr, "bench-semantics: add %s: %s\n", name, spawn_strerror(rc));
	return rc;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(s) (!strcmp(a, s) && v && (i++, 1))
		if (OPT("--gateway"))
			gateway = v;
		else if (OPT("--host-gateway"))
			host_target = v;
		else if (OPT("--system"))
			system_name = v;
		else if (OPT("--scenarios"))
			scenarios = v;
		else if (OPT("--workers"))
			workers = atoi(v);
		else if (OPT("--pipe-iters"))
			pipe_iters = atoi(v);
		else if (OPT("--subscribers"))
			subscribers = atoi(v);
		else if (OPT("--bcast-rounds"))
			bcast_rounds = atoi(v);
		else if (OPT("--sched-n"))
			sched_n = atol(v);
		else if (OPT("--sched-actors"))
			sched_actors = atoi(v);
		else if (OPT("--sched-threads"))
			sched_threads = atoi(v);
		else if (OPT("--sched-lead-ms"))
			sched_lead_ms = atoll(v);
		else if (OPT("--sched-window-ms"))
			sched_window_ms = atoll(v);
		else if (OPT("--wait-ms"))
			wait_ms = atoll(v);
		else {
			fprintf(stderr, "bench-semantics: unknown or incomplete option %s\n", a);
			return 2;
		}
#undef OPT
	}
	if (pipe_iters < 1 || subscribers < 1 || sched_n < 1 || sched_actors < 1 ||
	    sched_threads < 1) {
		fprintf(stderr, "bench-semantics: counts must be >= 1\n");
		return 2;
	}
	spawn_host *h;
	spawn_host_opts o = {.target = host_target ? host_target : gateway,
	                     .system = system_name,
	                     .service_name = "bench-semantics",
	                     .workers = workers,
	                     .max_message_bytes = 64 << 20};
	if (spawn_host_create(&h, &o)) {
		fprintf(stderr, "bench-semantics: host create failed\n");
		return 1;
	}
	static const char *const next[CHAIN] = {"c1", "c2", "c3", "c4", NULL};
	char name[32];
	for (int k = 0; k < CHAIN; k++) {
		spawn_action_def acts[2] = {
		    {.name = "chain", .handler = h_chain, .user = (void *)next[k]},
		    {.name = "step", .handler = h_step}};
		snprintf(name, sizeof name, "c%d", k);
		if (add(h, name, acts, 2, NULL))
			return 1;
	}
	spawn_action_def pub = {.name = "publish", .handler = h_publish};
	if (add(h, "pub", &pub, 1, NULL))
		return 1;
	spawn_action_def recv = {.name = "receive", .handler = h_receive};
	spawn_channel_def ch = {.topic = TOPIC, .action = "receive"};
	for (int i = 0; want("broadcast") && i < subscribers; i++) {
		snprintf(name, sizeof name, "sub-%d", i);
		if (add(h, name, &recv, 1, &ch))
			return 1;
	}
	spawn_action_def fire = {.name = "fire", .handler = h_fire};
	for (int i = 0; want("scheduled") && i < sched_actors; i++) {
		snprintf(name, sizeof name, "sched-%d", i);
		if (add(h, name, &fire, 1, NULL))
			return 1;
	}
	int64_t r0 = now_us();
	if (spawn_host_start(h) || spawn_host_wait_registered(h, 60000)) {
		fprintf(stderr, "bench-semantics: the host did not register\n");
		spawn_host_destroy(h);
		return 1;
	}
	printf("host_register_ms %.1f\n", (now_us() - r0) / 1000.0);
	fflush(stdout);
	if (spawn_client_create(&cl, gateway)) {
		spawn_host_destroy(h);
		return 1;
	}
	if (want("pipe"))
		run_pipe();
	fflush(stdout);
	if (want("broadcast"))
		run_broadcast();
	fflush(stdout);
	if (want("scheduled"))
		run_scheduled();
	fflush(stdout);
	spawn_client_destroy(cl);
	spawn_host_destroy(h);
	free(sched_late_us);
	long e = atomic_load(&errors);
	printf("errors %ld\n", e);
	return e ? 1 : 0;
}
