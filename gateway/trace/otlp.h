/* otlp.h - spans exported with OTLP over HTTP (protobuf bodies, POST to
 * .../v1/traces) from a background thread (docs/observability.md).
 *
 * States of the exporter:
 *
 *   RUNNING --- gw_otlp_submit ----------> RUNNING  [span copied into the queue;
 *                                                    queue full: dropped, counted]
 *   RUNNING --- batch full or flush_ms --> SENDING  [the thread takes up to batch
 *                                                    spans, encodes, POSTs]
 *   SENDING --- answered / failed -------> RUNNING  [failed: the batch is dropped,
 *                                                    counted, logged (rate-limited)]
 *   RUNNING --- gw_otlp_stop ------------> DRAINING [what is queued is sent once]
 *   DRAINING -- sent or failed ----------> STOPPED  [the thread ended]
 *   STOPPED --- gw_otlp_destroy ---------> (freed)
 *
 * Invariants:
 *   1. gw_otlp_submit never blocks on the network and never waits for the
 *      thread: it takes one mutex for a copy, or drops;
 *   2. at most queue_max spans are held (the bound of the queue);
 *   3. one request is in flight at a time (the thread's own libcurl easy
 *      handle, with connect and total timeouts).
 *
 * Thread: gw_otlp_submit and gw_otlp_stats from any thread; create and
 * destroy from one.
 */
#ifndef GW_OTLP_H
#define GW_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"

typedef struct gw_otlp gw_otlp;

typedef struct gw_otlp_opts {
	const char *endpoint;     /* URL; one with no path (or "/") gets /v1/traces */
	const char *service_name; /* resource service.name; NULL = "spawn-gateway" */
	size_t queue_max;         /* spans held at most; 0 = 8192 */
	size_t batch;             /* spans per request at most; 0 = 512 */
	int64_t flush_ms;         /* longest a span waits to be sent; 0 = 1000 */
	int64_t timeout_ms;       /* one request's total timeout; 0 = 5000 */
	bool hold;                /* tests only: send nothing until gw_otlp_stop */
} gw_otlp_opts;

typedef enum gw_span_kind {
	GW_SPAN_INTERNAL = 1,
	GW_SPAN_SERVER = 2,
	GW_SPAN_CLIENT = 3,
	GW_SPAN_PRODUCER = 4,
	GW_SPAN_CONSUMER = 5
} gw_span_kind;

/* One finished span. Strings borrowed for gw_otlp_submit (it copies them,
 * each cut at GW_SPAN_STR_MAX bytes on a character boundary). */
#define GW_SPAN_STR_MAX 256
typedef struct gw_span {
	uint8_t trace[16], span[8], parent[8];
	bool has_parent;
	uint8_t flags;
	const char *name;
	gw_span_kind kind;
	int64_t start_ns, end_ns; /* unix ns */
	bool error;               /* status ERROR (with msg), else OK */
	const char *msg;
	const char *tracestate;
	/* attributes (NULL = absent): spawn.system, spawn.actor, spawn.action */
	const char *system, *actor, *action;
	uint64_t request_id; /* spawn.request_id when nonzero */
} gw_span;

/* gw_otlp_create starts the exporter thread. Returns GW_OK and *out, or
 * GW_ECONFIG (msg says why: a URL that is not http(s)://) or GW_ENOMEM.
 * The caller frees with gw_otlp_destroy. */
gw_err gw_otlp_create(gw_otlp **out, const gw_otlp_opts *o, char *msg, size_t msglen);

/* gw_otlp_submit queues a copy of s (borrowed). Never blocks beyond one
 * mutex; a full queue drops the span (counted). e may be NULL (no-op). */
void gw_otlp_submit(gw_otlp *e, const gw_span *s);

/* gw_otlp_stats reports spans sent (accepted by the receiver), dropped
 * (queue full, or a request that failed) and requests that failed. */
void gw_otlp_stats(gw_otlp *e, uint64_t *sent, uint64_t *dropped, uint64_t *failed);

/* gw_otlp_stop is the first phase of shutdown: spans submitted from now on
 * are dropped (counted), what is queued is sent (one attempt per batch),
 * the thread ends. Idempotent. Blocks: up to one request's timeout per
 * batch queued. */
void gw_otlp_stop(gw_otlp *e);

/* gw_otlp_destroy stops e (gw_otlp_stop) if it was not, and frees it.
 * Accepts NULL. */
void gw_otlp_destroy(gw_otlp *e);

#endif
