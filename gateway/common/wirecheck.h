/* wirecheck.h - every string a peer sends is checked once, at the edge.
 *
 * protobuf-c accepts any bytes in a string field and NUL-terminates its
 * copy, so after unpacking "incrementor\0evil" reads as "incrementor", and
 * invalid UTF-8 passes through to hosts whose protobuf runtime (Python's)
 * refuses the whole message. The checks here therefore look at the
 * serialized bytes:
 *
 *   gw_wc_check_wire   walks a serialized message, driven by protobuf-c's
 *                      own descriptors, and checks every string field
 *                      (nested messages and map entries included; bytes
 *                      fields such as Any.value are not looked at): valid
 *                      UTF-8 (no overlong forms, no surrogates, nothing past
 *                      U+10FFFF), no NUL, no control characters (C0 and DEL;
 *                      free-text fields such as HostError.message may hold
 *                      TAB, LF and CR), the length bound of the field's role
 *                      (names, metadata, tags, type URLs) and, for
 *                      Any.type_url, the shape of a type URL.
 *   gw_wc_check_counts walks the unpacked message and bounds the number of
 *                      entries of metadata and tag maps (counted after
 *                      protobuf-c merged repeated occurrences of a message).
 *
 * The walker is not a second parser: protobuf-c still decodes the message
 * (call it first; it rejects malformed input) and the walker only reads
 * tags and lengths to find the strings. It never reads past the buffer and
 * answers malformed input with GW_EINVAL, so it may be fed any bytes (a
 * fuzz target calls it directly).
 *
 * The roles (which field is a name, a metadata map...) come from one table
 * in wirecheck.c, keyed by the Spawn protocol's descriptors; a string field
 * not in the table gets the encoding checks without a length bound (the
 * message size bounds it).
 *
 * Thread: every function may be called from any thread; none blocks or
 * allocates. Each thread remembers the last few type URLs it accepted
 * (thread-local, 4 of at most 96 bytes): an equal URL passes on a compare
 * instead of the walk of its shape; any other byte string is checked in full.
 */
#ifndef GW_WIRECHECK_H
#define GW_WIRECHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "gw_err.h"
#include "spawn/actors/protocol.pb-c.h"
#include "spawn/gateway/v1/gateway.pb-c.h"

/* Length limits in bytes of UTF-8 (0 = the default below). */
typedef struct gw_wc_limits {
	uint32_t name_bytes;           /* systems, actors, actions, parents, channels: 255 */
	uint32_t metadata_key_bytes;   /* 128 */
	uint32_t metadata_value_bytes; /* 4096 */
	uint32_t metadata_entries;     /* per map: 64 */
	uint32_t tag_key_bytes;        /* 128 */
	uint32_t tag_value_bytes;      /* 4096 */
	uint32_t tag_entries;          /* per map: 64 */
	uint32_t type_url_bytes;       /* Any.type_url and ActorSettings.state_type: 2048 */
} gw_wc_limits;

#define GW_WC_NAME_BYTES           255
#define GW_WC_METADATA_KEY_BYTES   128
#define GW_WC_METADATA_VALUE_BYTES 4096
#define GW_WC_METADATA_ENTRIES     64
#define GW_WC_TAG_KEY_BYTES        128
#define GW_WC_TAG_VALUE_BYTES      4096
#define GW_WC_TAG_ENTRIES          64
#define GW_WC_TYPE_URL_BYTES       2048

/* gw_wc_limits_resolve replaces every 0 in *l with its default. */
void gw_wc_limits_resolve(gw_wc_limits *l);

/* Where and why a check failed. path is the dotted path of the field from
 * the checked message's root: "actor.id.name", "metadata[\"k\"]" (the value
 * of map entry "k"), "metadata[2].key" (a key that cannot be shown),
 * "effects[0].request.action_name". Non-printable bytes of map keys are
 * shown as \xNN; both strings are ASCII. */
#define GW_WC_PATH_MAX 256
typedef struct gw_wc_fail {
	char path[GW_WC_PATH_MAX];
	char why[160]; /* "contains a NUL byte at offset 11" */
} gw_wc_fail;

/* gw_wc_check_wire checks the string fields of data[0..len), a serialized
 * message of type d (borrowed), against l (borrowed; NULL = defaults).
 * Returns GW_OK, or GW_EINVAL with *fail filled (fail may be NULL) for the
 * first bad field or malformed input. */
gw_err gw_wc_check_wire(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                        const gw_wc_limits *l, gw_wc_fail *fail);

/* gw_wc_check_counts bounds the entries of the metadata and tag maps of m
 * (borrowed; an unpacked message of any type). Returns GW_OK or GW_EINVAL
 * with *fail filled (fail may be NULL). */
gw_err gw_wc_check_counts(const ProtobufCMessage *m, const gw_wc_limits *l, gw_wc_fail *fail);

/* gw_wc_check runs both: data is what m was unpacked from. */
gw_err gw_wc_check(const ProtobufCMessage *m, const uint8_t *data, size_t len,
                   const gw_wc_limits *l, gw_wc_fail *fail);

/* gw_wc_utf8 checks s[0..n) as the value of a string field: valid UTF-8
 * and no NUL or control character (TAB, LF and CR allowed when text).
 * Returns NULL when it is fine, else a static reason ("contains a NUL
 * byte") and sets *off to the offset of the first bad byte. */
const char *gw_wc_utf8(const uint8_t *s, size_t n, bool text, size_t *off);

/* gw_wc_type_url_ok: empty, or "[prefix/]package.Message": the part after
 * the last '/' a dotted name of identifiers ([A-Za-z_][A-Za-z0-9_]*), the
 * prefix printable ASCII without spaces. */
bool gw_wc_type_url_ok(const char *s, size_t n);

/* The metadata namespace "spawn-" (ASCII case-insensitive) is reserved to
 * the gateway. gw_wc_reserved_key tells whether key (NUL-terminated) is in
 * it: clients' InvocationRequest.metadata holding such a key is refused;
 * such keys in what hosts return (side effects) are dropped. */
#define GW_WC_RESERVED_PREFIX "spawn-"
bool gw_wc_reserved_key(const char *key);

/* gw_wc_check_client_metadata refuses (GW_EINVAL, why naming the key) a
 * client request whose metadata uses the reserved namespace. rq borrowed. */
gw_err gw_wc_check_client_metadata(const Spawn__InvocationRequest *rq, char *why, size_t whylen);

/* gw_wc_strip_reserved drops reserved keys from the metadata of the side
 * effects in a host's result, in place (hosts may copy incoming metadata
 * forward). Returns how many were dropped. */
size_t gw_wc_strip_reserved(Spawn__Gateway__V1__InvocationResult *res);

#endif
