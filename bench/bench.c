/* bench.c - CQ threads, server scaffold, histogram and flags shared by the
 * bench binaries. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sigwait, pthread_sigmask (the build defines it too) */
#endif
#include "bench.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

/* ---- completion-queue tags -------------------------------------------- */

void *bench_cq_loop(void *arg)
{
	grpc_completion_queue *cq = arg;
	for (;;) {
		grpc_event ev =
		    grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue; /* GRPC_QUEUE_TIMEOUT cannot happen with an infinite deadline */
		bench_tag *t = ev.tag;
		t->done(t, ev.success != 0);
	}
	return NULL;
}

/* ---- server scaffold --------------------------------------------------- */

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (!p) {
		/* Fixed-size startup allocation: nothing sensible to do but stop. */
		fprintf(stderr, "bench: out of memory\n");
		abort();
	}
	return p;
}

void bench_init(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	/* Threads created from now on (ours and gRPC's) inherit the mask, so
	 * only sigwait() in the main thread ever sees these signals. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	grpc_init();
}

int bench_server_start(bench_server *s, const char *addr, int nthreads, int prerequest,
                       bench_request_fn request, void *app)
{
	memset(s, 0, sizeof *s);
	s->app = app;
	s->nthreads = nthreads;
	s->server = grpc_server_create(NULL, NULL);
	s->invoke = grpc_server_register_method(s->server, BENCH_INVOKE_METHOD, NULL,
	                                        GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	if (!s->invoke) {
		fprintf(stderr, "bench: cannot register %s\n", BENCH_INVOKE_METHOD);
		goto fail;
	}
	s->cqs = xcalloc((size_t)nthreads, sizeof *s->cqs);
	s->threads = xcalloc((size_t)nthreads, sizeof *s->threads);
	for (int i = 0; i < nthreads; i++) {
		s->cqs[i] = grpc_completion_queue_create_for_next(NULL);
		grpc_server_register_completion_queue(s->server, s->cqs[i], NULL);
	}
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
	s->port = grpc_server_add_http2_port(s->server, addr, creds);
	grpc_server_credentials_release(creds);
	if (s->port == 0) {
		fprintf(stderr, "bench: cannot listen on %s\n", addr);
		goto fail;
	}
	grpc_server_start(s->server);
	for (int i = 0; i < nthreads; i++)
		for (int k = 0; k < prerequest; k++)
			if (!request(s, i)) {
				fprintf(stderr, "bench: cannot request calls\n");
				abort(); /* the server was just started: a programmer error */
			}
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&s->threads[i], NULL, bench_cq_loop, s->cqs[i]) != 0) {
			fprintf(stderr, "bench: cannot create thread\n");
			abort();
		}
	return 0;
fail:
	/* Nothing was started: no call or thread refers to the queues yet. */
	grpc_server_destroy(s->server);
	for (int i = 0; s->cqs && i < nthreads; i++) {
		grpc_completion_queue_shutdown(s->cqs[i]);
		while (
		    grpc_completion_queue_next(s->cqs[i], gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
		        .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(s->cqs[i]);
	}
	free(s->cqs);
	free(s->threads);
	return -1;
}

void bench_server_wait_signal(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	int sig;
	while (sigwait(&set, &sig) != 0)
		;
}

typedef struct shutdown_wait {
	bench_tag tag;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
} shutdown_wait;

static void shutdown_done(bench_tag *t, bool ok)
{
	shutdown_wait *w = (shutdown_wait *)t;
	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void bench_server_stop(bench_server *s, void (*before_drain)(bench_server *s))
{
	shutdown_wait w = {.tag.done = shutdown_done, .done = false};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	grpc_server_shutdown_and_notify(s->server, s->cqs[0], &w.tag);
	grpc_server_cancel_all_calls(s->server);
	/* Calls waiting on something outside the server (the forwarder's
	 * upstream) must be released before the shutdown can complete. */
	if (before_drain)
		before_drain(s);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	grpc_server_destroy(s->server);
	for (int i = 0; i < s->nthreads; i++)
		grpc_completion_queue_shutdown(s->cqs[i]);
	for (int i = 0; i < s->nthreads; i++) {
		pthread_join(s->threads[i], NULL);
		grpc_completion_queue_destroy(s->cqs[i]);
	}
	free(s->cqs);
	free(s->threads);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
}

/* ---- latency histogram --------------------------------------------------- */

#define SUB (1u << BENCH_HIST_SUB_BITS)

static int hist_index(uint64_t v)
{
	if (v < SUB)
		return (int)v;
	int e = 63 - __builtin_clzll(v); /* v in [2^e, 2^(e+1)), e >= SUB_BITS */
	if (e >= BENCH_HIST_MAX_BITS)
		return BENCH_HIST_BUCKETS - 1;
	int shift = e - BENCH_HIST_SUB_BITS;
	return (int)(SUB + (unsigned)shift * SUB + ((v >> shift) - SUB));
}

/* The middle of bucket i: the value a quantile in it reports. */
static uint64_t hist_mid(int i)
{
	if (i < (int)SUB)
		return (uint64_t)i;
	unsigned shift = (unsigned)(i - (int)SUB) / SUB;
	uint64_t sub = (uint64_t)((unsigned)(i - (int)SUB) % SUB) + SUB;
	return (sub << shift) + ((1ull << shift) >> 1);
}

void bench_hist_init(bench_hist *h)
{
	memset(h, 0, sizeof *h);
	h->min_ns = UINT64_MAX;
}

void bench_hist_record(bench_hist *h, uint64_t ns)
{
	h->buckets[hist_index(ns)]++;
	h->count++;
	h->sum_ns += (double)ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void bench_hist_merge(bench_hist *dst, const bench_hist *src)
{
	for (int i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
	if (src->min_ns < dst->min_ns)
		dst->min_ns = src->min_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

uint64_t bench_hist_quantile(const bench_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999999);
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (int i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t v = hist_mid(i);
			/* The exact extremes are known: never report past them. */
			if (v < h->min_ns)
				v = h->min_ns;
			if (v > h->max_ns)
				v = h->max_ns;
			return v;
		}
	}
	return h->max_ns;
}

/* ---- flags ------------------------------------------------------------- */

int bench_flag_long(const char *name, const char *val, long min, long max, long *out)
{
	if (!val) {
		fprintf(stderr, "%s needs a value\n", name);
		return -1;
	}
	char *end;
	errno = 0;
	long v = strtol(val, &end, 10);
	if (errno || end == val || *end || v < min || v > max) {
		fprintf(stderr, "%s: expected an integer in [%ld, %ld], got '%s'\n", name, min, max,
		        val);
		return -1;
	}
	*out = v;
	return 0;
}
