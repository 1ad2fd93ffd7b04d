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
	gw_err err = gwi_unpack_checked_bytes(s, d, GRPC_SLICE_START_PTR(whole),
	                                      GRPC_SLICE_LENGTH(whole), arena, out, why, whylen);
	grpc_slice_unref(whole);
	return err;
}

gw_err gwi_unpack_checked_bytes(const gw_server *s, const ProtobufCMessageDescriptor *d,
                                const uint8_t *data, size_t len, spawn_arena *arena,
                                ProtobufCMessage **out, char *why, size_t whylen)
{
	*out = NULL;
	ProtobufCMessage *m = protobuf_c_message_unpack(d, arena ? &arena->pbc : NULL, len, data);
	if (!m) {
		snprintf(why, whylen, "request is not a valid %s", d->name);
		return GW_EINVAL;
	}
	gw_wc_fail f;
	gw_err err = gw_wc_check(m, data, len, &s->o.limits, &f);
	if (err)
		snprintf(why, whylen, "%s: %s", f.path, f.why);
	*out = m;
	return err;
}
