/* bench.h - what the benchmark binaries share: completion-queue tags and
 * threads, the server scaffold of the echo server and the forwarder, the
 * latency histogram of the load generator, and flag parsing.
 *
 * The bench binaries are tools, not part of the gateway: they depend only
 * on spawn_proto and gRPC core, so they measure the same thing whatever
 * state the gateway is in.
 */
#ifndef SPAWN_BENCH_H
#define SPAWN_BENCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

/* The one method every bench binary serves or calls. */
#define BENCH_INVOKE_METHOD "/spawn.gateway.v1.ActorGateway/Invoke"

/* ---- completion-queue tags -------------------------------------------- */

/* Every tag put on a bench completion queue is a bench_tag, embedded in the
 * per-call struct; the CQ thread calls done(tag, ok) for each event. */
typedef struct bench_tag bench_tag;
struct bench_tag {
	void (*done)(bench_tag *t, bool ok);
};

/* bench_cq_loop polls cq (a grpc_completion_queue *, borrowed) until it is
 * shut down and drained, dispatching every event to its tag. Signature fits
 * pthread_create. */
void *bench_cq_loop(void *cq);

/* ---- server scaffold --------------------------------------------------- */

typedef struct bench_server bench_server;

/* Called once per CQ at start, and again by the application after each new
 * call, to ask gRPC for one more call on queue idx. Returns false when the
 * request could not be made (the server is shutting down). */
typedef bool (*bench_request_fn)(bench_server *s, int idx);

struct bench_server {
	grpc_server *server;         /* owned */
	void *invoke;                /* registered-method handle, owned by server */
	int nthreads;                /* one CQ and one thread each */
	grpc_completion_queue **cqs; /* owned, nthreads entries */
	pthread_t *threads;          /* owned, nthreads entries */
	int port;                    /* bound port */
	void *app;                   /* borrowed: the application's state */
};

/* bench_init blocks SIGINT and SIGTERM (every thread created afterwards,
 * gRPC's included, inherits the mask, so only bench_server_wait_signal()
 * sees them), ignores SIGPIPE and calls grpc_init(). Call it first in
 * main, before any thread exists; pair it with grpc_shutdown(). */
void bench_init(void);

/* bench_server_start creates a server listening on addr ("127.0.0.1:0"),
 * registers Invoke with its initial payload read, starts nthreads CQ
 * threads and asks `request` for `prerequest` calls per queue. Needs
 * bench_init(). Returns 0 and fills *s; -1 with a message on stderr.
 * Blocks: binds a socket. Thread: main, once. */
int bench_server_start(bench_server *s, const char *addr, int nthreads, int prerequest,
                       bench_request_fn request, void *app);

/* bench_server_wait_signal blocks until SIGINT or SIGTERM. */
void bench_server_wait_signal(void);

/* bench_server_stop shuts the server down: stops accepting calls, cancels
 * the ones in progress, waits for the queues to drain, joins the threads
 * and frees everything (it does not call grpc_shutdown()). before_drain (may be NULL) runs after
 * the server is shut down and before the queues are: the forwarder cancels its upstream calls
 * there. Blocks: yes. Thread: main. */
void bench_server_stop(bench_server *s, void (*before_drain)(bench_server *s));

/* ---- latency histogram --------------------------------------------------- */

/* Log-linear buckets over nanoseconds, HdrHistogram-style: values below
 * 2^BENCH_HIST_SUB_BITS are exact, above it each power of two is split into
 * 2^BENCH_HIST_SUB_BITS equal buckets, so a bucket is at most 1/128 of its
 * value wide; quantiles report the bucket midpoint (error < 0.4%).
 * Values past 2^BENCH_HIST_MAX_BITS ns (~18 minutes) land in the last
 * bucket. Not thread-safe: one per thread, merged at the end. */
#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_MAX_BITS 40
#define BENCH_HIST_BUCKETS                                                                         \
	((1 << BENCH_HIST_SUB_BITS) +                                                              \
	 (BENCH_HIST_MAX_BITS - BENCH_HIST_SUB_BITS) * (1 << BENCH_HIST_SUB_BITS))

typedef struct bench_hist {
	uint64_t count;
	uint64_t min_ns, max_ns;
	double sum_ns;
	uint64_t buckets[BENCH_HIST_BUCKETS];
} bench_hist;

void bench_hist_init(bench_hist *h);
void bench_hist_record(bench_hist *h, uint64_t ns);
/* bench_hist_merge adds src (borrowed) into dst. */
void bench_hist_merge(bench_hist *dst, const bench_hist *src);
/* bench_hist_quantile returns the value at quantile q in [0,1], in ns
 * (0 for an empty histogram). */
uint64_t bench_hist_quantile(const bench_hist *h, double q);

/* ---- flags ------------------------------------------------------------- */

/* bench_flag_long parses a decimal integer in [min, max] for flag name.
 * Returns 0 and sets *out; -1 with a message on stderr. */
int bench_flag_long(const char *name, const char *val, long min, long max, long *out);

#endif
