/* fuzz_util.h - helpers the fuzz targets share. */
#ifndef SPAWN_TESTS_FUZZ_UTIL_H
#define SPAWN_TESTS_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* fz_has_unknown: m or a message inside it kept fields its descriptor does
 * not know. protobuf-c keeps them and packs them back, and it accepts a
 * field number 0 (as a non-minimal varint) that it then refuses to read
 * back: see tests/fuzz/README.md. */
static inline bool fz_has_unknown(const ProtobufCMessage *m)
{
	if (!m)
		return false;
	if (m->n_unknown_fields)
		return true;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		/* A oneof member is there only when its case is the one set. */
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
			continue;
		const char *base = (const char *)m + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)base;
			for (size_t k = 0; k < n; k++)
				if (fz_has_unknown(v[k]))
					return true;
		} else if (fz_has_unknown(*(ProtobufCMessage *const *)base)) {
			return true;
		}
	}
	return false;
}

#endif
