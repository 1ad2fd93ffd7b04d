/* pbjson.h - the proto3 JSON mapping over a pool of descriptors, for C
 * (HTTP/JSON transcoding, spawnctl, reflection-driven calls).
 *
 * A small C face on libprotobuf's own implementation (util::BinaryToJsonString
 * and util::JsonToBinaryString with a type resolver over a DescriptorPool):
 * we map no JSON ourselves. The pool starts with the well-known types
 * (google.protobuf.Any, Empty, Timestamp, Struct, ...) and grows with the
 * FileDescriptorSets given to spawn_pbjson_add (a host's contract, a
 * --descriptors file). google.protobuf.Any fields are written and read with
 * their "@type", resolved in the same pool.
 *
 * Thread safety: any thread; conversions run concurrently with each other
 * and wait for an add in progress (a reader-writer lock).
 */
#ifndef SPAWN_PBJSON_H
#define SPAWN_PBJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spawn_pbjson spawn_pbjson;

/* Results. */
enum {
	SPAWN_PBJSON_OK = 0,
	SPAWN_PBJSON_ENOTYPE = 1,   /* no message type of that full name in the pool */
	SPAWN_PBJSON_EINVAL = 2,    /* input that does not parse (err says where) */
	SPAWN_PBJSON_ECONFLICT = 3, /* a file of that name with other content is there */
	SPAWN_PBJSON_ENOMEM = 4,
};

/* Output options of spawn_pbjson_to_json (or'ed). */
enum {
	SPAWN_PBJSON_PRETTY = 1,      /* indented, one field per line */
	SPAWN_PBJSON_DEFAULTS = 2,    /* fields at their default value too */
	SPAWN_PBJSON_PROTO_NAMES = 4, /* field names as in the .proto, not lowerCamelCase */
};

/* spawn_pbjson_create makes a pool holding the well-known types. NULL when
 * out of memory. */
spawn_pbjson *spawn_pbjson_create(void);
void spawn_pbjson_destroy(spawn_pbjson *p); /* accepts NULL */

/* spawn_pbjson_add adds the files of a serialized
 * google.protobuf.FileDescriptorSet (data borrowed). Files already in the
 * pool with the same content are skipped; the set must be complete (its
 * imports in it or already in the pool). All or nothing: on an error no
 * file of the set is added. err (may be NULL) gets the reason. */
int spawn_pbjson_add(spawn_pbjson *p, const uint8_t *data, size_t len, char *err, size_t errlen);

/* spawn_pbjson_has says whether a message type of that full name (e.g.
 * "examples.incrementor.Add") is in the pool. */
bool spawn_pbjson_has(spawn_pbjson *p, const char *full_name);

/* spawn_pbjson_to_json writes message full_name, serialized in bin (len
 * bytes, borrowed), as JSON into *json (malloc'd, NUL-terminated, caller
 * frees; *json_len its length). */
int spawn_pbjson_to_json(spawn_pbjson *p, const char *full_name, const uint8_t *bin, size_t len,
                         int options, char **json, size_t *json_len, char *err, size_t errlen);

/* spawn_pbjson_from_json parses JSON (len bytes, borrowed) as message
 * full_name into its binary form *bin (malloc'd, caller frees; *bin_len
 * bytes; a valid pointer also for an empty message). Unknown fields are
 * an error. */
int spawn_pbjson_from_json(spawn_pbjson *p, const char *full_name, const char *json, size_t len,
                           uint8_t **bin, size_t *bin_len, char *err, size_t errlen);

/* spawn_pbjson_from_http builds message full_name from an HTTP request as
 * google.api.http transcoding does (docs/http-json.md):
 *   body_field  "*": the JSON body (len bytes, borrowed) is the whole
 *               message; a field name: the body is that field's JSON
 *               value; NULL or "": no body is read (it must be empty);
 *   params      n (name, value) pairs, path variables first, then query
 *               parameters: name a field path ("a.b.c", proto or JSON
 *               names), value the text of a scalar (string, number, bool,
 *               enum name or number; repeated fields take one value per
 *               pair). A parameter overrides what the body set; an
 *               unknown field, or a value that does not parse, is an error (SPAWN_PBJSON_EINVAL,
 * err names it). *bin (malloc'd, caller frees) holds the binary form. */
int spawn_pbjson_from_http(spawn_pbjson *p, const char *full_name, const char *body_field,
                           const char *json, size_t len, const char *const *names,
                           const char *const *values, size_t n, uint8_t **bin, size_t *bin_len,
                           char *err, size_t errlen);

/* spawn_pbjson_status_json writes {"code": code, "message": message} (the
 * shape of google.rpc.Status without details) into *json (malloc'd,
 * NUL-terminated). message must be valid UTF-8. */
int spawn_pbjson_status_json(int code, const char *message, char **json, size_t *json_len);

#ifdef __cplusplus
}
#endif

#endif
