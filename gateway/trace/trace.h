/* trace.h - W3C Trace Context (https://www.w3.org/TR/trace-context/) for
 * the gateway: parsing and checking the `traceparent` and `tracestate`
 * values that arrive (gRPC metadata, InvocationRequest.metadata, HTTP
 * headers), starting a trace when none (or an invalid one) arrived, and the
 * per-invocation trace state the runtime keeps (docs/observability.md).
 *
 * The rule at every edge: a valid traceparent is continued; an invalid one
 * is replaced by a new trace (never passed on, never an error), and its
 * tracestate is dropped with it (W3C: tracestate without a valid
 * traceparent is meaningless). Ids are drawn from the kernel's CSPRNG
 * (getrandom), through a per-thread buffer.
 *
 * Thread: any (no shared state). Blocks: no (getrandom on an initialised
 * pool does not block).
 */
#ifndef GW_TRACE_H
#define GW_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define GW_TRACEPARENT_KEY "traceparent"
#define GW_TRACESTATE_KEY  "tracestate"
#define GW_TRACEPARENT_LEN 55  /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define GW_TRACESTATE_MAX  512 /* W3C: a vendor may cut at 512 characters */

/* One position in a trace: the trace id, a span id (the parent of whatever
 * continues it), the trace flags (bit 0: sampled). */
typedef struct gw_trace_pos {
	uint8_t trace[16];
	uint8_t span[8];
	uint8_t flags;
} gw_trace_pos;

/* gw_trace_parse reads a traceparent value. Returns true and fills *out
 * when s is valid per W3C Trace Context: version two lowercase hex digits,
 * not "ff"; version 00 exactly 55 characters, a later version at least 55
 * with '-' after them (read as 00); lowercase hex ids; trace id and parent
 * id not all zero. Else false, *out untouched. s borrowed; NULL = false. */
bool gw_trace_parse(const char *s, gw_trace_pos *out);

/* gw_trace_format writes p as a version-00 traceparent into out
 * (GW_TRACEPARENT_LEN + 1 bytes, NUL-terminated). */
void gw_trace_format(const gw_trace_pos *p, char out[GW_TRACEPARENT_LEN + 1]);

/* gw_trace_hex writes n bytes of b as lowercase hex into out (2n + 1). */
void gw_trace_hex(const uint8_t *b, size_t n, char *out);

/* gw_tracestate_valid tells whether s is a tracestate W3C allows: at most
 * 32 comma-separated list members (empty members and optional spaces
 * around them allowed), each key=value with key `[a-z0-9][a-z0-9_*-/]*`
 * up to 256 characters, or tenant@system (241 + 14), and value 1..256
 * printable ASCII characters other than ',' and '=', not ending in a
 * space; at most GW_TRACESTATE_MAX characters in all. */
bool gw_tracestate_valid(const char *s);

/* gw_trace_random fills b with n bytes from the CSPRNG; with nonzero set,
 * never n zero bytes (the W3C invalid id). */
void gw_trace_random(uint8_t *b, size_t n);

/* gw_trace_new_span gives p a fresh span id (same trace). */
void gw_trace_new_span(gw_trace_pos *p);

/* gw_trace_start fills p with a new trace: random trace and span ids,
 * sampled. */
void gw_trace_start(gw_trace_pos *p);

/* gw_trace_now_ns: the wall clock in ns since the epoch (span times). */
int64_t gw_trace_now_ns(void);

/* What the runtime keeps for one invocation (gw_inv.tr): where it sits in
 * its trace and when its stages began and ended (unix ns; 0 = did not
 * happen). Spans are made from it when the invocation is freed
 * (runtime/tracing.c). */
typedef struct gw_inv_trace {
	gw_trace_pos pos;  /* the trace, this invocation's own span, the flags */
	uint8_t parent[8]; /* the span it continues (has_parent) */
	uint8_t turn[8];   /* its host turn's span: the parent a host sees */
	bool begun, has_parent;
	const char *name; /* static: the invocation span's name; NULL = from its kind */
	char hex[33];     /* the trace id as hex, for log lines */
	int64_t begin_ns, dispatch_ns, result_ns, act0_ns, act1_ns, save0_ns, save1_ns;
} gw_inv_trace;

/* ---- the metadata of an InvocationRequest ----------------------------------- */

/* gw_trace_md_get returns the value of the last entry named key (ASCII
 * case-insensitive) in rq's metadata, or NULL. Borrowed from rq. */
const char *gw_trace_md_get(const Spawn__InvocationRequest *rq, const char *key);

/* gw_trace_md_set sets key to value in rq's metadata: every entry named
 * key (case-insensitive) is dropped and one entry key=value appended; with
 * value NULL the entries are only dropped. Strings are copied into a
 * (the arena owning rq). Returns false (rq unchanged) when out of memory,
 * or when max > 0 and the map would then hold more than max entries. */
bool gw_trace_md_set(Spawn__InvocationRequest *rq, spawn_arena *a, const char *key,
                     const char *value, size_t max);

/* gw_trace_md_merge puts a traceparent and tracestate that arrived beside
 * rq (gRPC request metadata, HTTP headers) into rq's metadata, unless rq's
 * metadata has a valid traceparent of its own (the request's word wins).
 * Both values borrowed, either may be NULL; a tracestate is taken only with
 * a valid traceparent. max: as in gw_trace_md_set. Returns false when out
 * of memory or over max (rq as it was). */
bool gw_trace_md_merge(Spawn__InvocationRequest *rq, spawn_arena *a, const char *traceparent,
                       const char *tracestate, size_t max);

#endif
