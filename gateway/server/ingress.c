/* ingress.c - every message a peer sends is parsed and checked here once:
 * protobuf-c parses it, wirecheck checks every string in the bytes it was
 * parsed from (see gateway/common/wirecheck.h), and the rules of the
 * reserved "spawn-" metadata namespace apply. Past this point, code may
 * trust names, metadata, tags and type URLs. */
#include <stdio.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "server_int.h"

gw_err gwi_unpack_checked(const gw_server *s, const ProtobufCMessageDescriptor *d,
                          grpc_byte_buffer *bb, spawn_arena *arena, ProtobufCMessage **out,
                          char *why, size_t whylen)
{
	*out = NULL;
	grpc_byte_buffer_reader r;
	if (!bb || !grpc_byte_buffer_reader_init(&r, bb)) {
		snprintf(why, whylen, "request is not a valid %s", d->name);
		return GW_EINVAL;
	}
	/* Single-slice buffers (the common case) are read in place. */
	grpc_slice whole = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	const uint8_t *data = GRPC_SLICE_START_PTR(whole);
	size_t len = GRPC_SLICE_LENGTH(whole);
	ProtobufCMessage *m = protobuf_c_message_unpack(d, arena ? &arena->pbc : NULL, len, data);
	if (!m) {
		grpc_slice_unref(whole);
		snprintf(why, whylen, "request is not a valid %s", d->name);
		return GW_EINVAL;
	}
	gw_wc_fail f;
	gw_err err = gw_wc_check(m, data, len, &s->o.limits, &f);
	grpc_slice_unref(whole);
	if (err)
		snprintf(why, whylen, "%s: %s", f.path, f.why);
	*out = m;
	return err;
}

gw_err gwi_check_client_metadata(const Spawn__InvocationRequest *rq, char *why, size_t whylen)
{
	for (size_t i = 0; i < rq->n_metadata; i++) {
		const char *k = rq->metadata[i] ? rq->metadata[i]->key : NULL;
		if (gw_wc_reserved_key(k)) {
			/* k passed wirecheck: UTF-8 without controls, bounded. */
			snprintf(why, whylen,
			         "metadata[\"%s\"]: keys starting with \"" GW_WC_RESERVED_PREFIX
			         "\" are reserved to the gateway",
			         k);
			return GW_EINVAL;
		}
	}
	return GW_OK;
}

/* strip_request drops reserved keys from one request's metadata, in place
 * (the array lives in the message's arena). */
static size_t strip_request(Spawn__InvocationRequest *rq)
{
	size_t kept = 0, n = rq->n_metadata;
	for (size_t i = 0; i < n; i++)
		if (rq->metadata[i] && !gw_wc_reserved_key(rq->metadata[i]->key))
			rq->metadata[kept++] = rq->metadata[i];
	rq->n_metadata = kept;
	return n - kept;
}

size_t gwi_strip_reserved(Spawn__Gateway__V1__InvocationResult *res)
{
	if (res->outcome_case != SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE ||
	    !res->response || !res->response->workflow)
		return 0;
	/* Side effects are the only requests a host writes whole; pipe, forward
	 * and broadcast are built by the gateway from names. */
	const Spawn__Workflow *wf = res->response->workflow;
	size_t dropped = 0;
	for (size_t i = 0; i < wf->n_effects; i++)
		if (wf->effects[i] && wf->effects[i]->request)
			dropped += strip_request(wf->effects[i]->request);
	return dropped;
}
