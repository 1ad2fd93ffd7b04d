/* tracectx.c - W3C trace context from a gRPC call's request metadata
 * (docs/observability.md): a client may send `traceparent` / `tracestate`
 * as gRPC metadata instead of (or besides) InvocationRequest.metadata; the
 * request's own valid traceparent wins. Values are copied out of the
 * slices with a bound; anything W3C does not allow is ignored here and
 * replaced by the runtime (gwi_trace_begin), never refused. */
#include <string.h>

#include "server_int.h"
#include "trace.h"

/* md_value copies the last value of key in md into buf (cap bytes) and
 * returns buf, or NULL when absent or longer than cap - 1 (then invalid
 * anyway: traceparent and tracestate have length bounds). */
static const char *md_value(const grpc_metadata_array *md, const char *key, char *buf, size_t cap)
{
	const char *v = NULL;
	for (size_t i = 0; i < md->count; i++) {
		if (grpc_slice_str_cmp(md->metadata[i].key, key) != 0)
			continue;
		size_t n = GRPC_SLICE_LENGTH(md->metadata[i].value);
		if (n >= cap || memchr(GRPC_SLICE_START_PTR(md->metadata[i].value), 0, n)) {
			v = NULL;
			continue;
		}
		memcpy(buf, GRPC_SLICE_START_PTR(md->metadata[i].value), n);
		buf[n] = 0;
		v = buf;
	}
	return v;
}

bool gwi_trace_from_md(const grpc_metadata_array *md, Spawn__InvocationRequest *rq, spawn_arena *a,
                       size_t max_entries)
{
	char tp[GW_TRACEPARENT_LEN + 64], ts[GW_TRACESTATE_MAX + 1];
	const char *p = md_value(md, GW_TRACEPARENT_KEY, tp, sizeof tp);
	if (!p)
		return true;
	return gw_trace_md_merge(rq, a, p, md_value(md, GW_TRACESTATE_KEY, ts, sizeof ts),
	                         max_entries);
}
