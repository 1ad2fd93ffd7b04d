/* contracts.h - the registered contracts: a pool of .proto file
 * descriptors, looked up by file, symbol, service method and extension.
 *
 * Where files come from:
 *   - built in: the gateway's own services (spawn.gateway.v1, grpc.health.v1,
 *     grpc.reflection.v1 and v1alpha), spawn/actors/{actor,extensions,protocol}.proto and the
 *     well-known types google/protobuf/{any,empty,...}.proto; never replaced;
 *   - --descriptors DIR: every *.pb / *.binpb file, a serialized
 *     google.protobuf.FileDescriptorSet, loaded at start-up (static: never
 *     replaced);
 *   - hosts: HostMessage.contracts (gateway.proto), a FileDescriptorSet,
 *     held on behalf of that host (its owner).
 *
 * A file's life in the pool:
 *
 *   (absent) -- a set adds it ---------------> HELD   [owners: the hosts that sent it,
 *                                                      or static]
 *   HELD ------ another set, same bytes -----> HELD   [one more owner]
 *   HELD ------ its last owner host leaves --> KEPT   [still served and described]
 *   KEPT ------ a set with other bytes ------> HELD   [replaced: a host's upgrade]
 *   HELD ------ a set with other bytes ------> HELD   [refused: the set is refused whole
 *                                                      and nothing of it is applied]
 *
 * A set is checked whole before anything of it is applied: its size
 * (max_set_bytes, and max_total_bytes for the pool), its nesting depth,
 * that it parses, the names in it (file names printable, every message,
 * field, enum, service and method name an identifier, type references
 * dotted identifiers), that every import resolves (in the set or the pool),
 * that every method's input and output type is a known message, and that
 * no symbol is then defined by two files (a service clash between two
 * hosts is refused here). A file of the set that is built in is skipped:
 * the built-in copy wins (hosts send spawn/actors/{actor,extensions,protocol}.proto and the
 * well-known types along with their contracts). source_code_info
 * (comments) is dropped; files are compared and served as protobuf-c
 * packs them.
 *
 * Served methods: each rpc of a service carrying the spawn.actors.actor
 * option (ServiceOptions extension 4890128), by its path
 * "/package.Service/Method". The actor is the service's name; its kind is
 * ActorOpts.kind; for UNNAMED actors, the instance name is the string
 * field of the input message marked with the spawn.actors.actor_id
 * FieldOptions extension (9999).
 *
 * Thread: every function is thread-safe (one rwlock); lookups copy out
 * what they return. Blocking: gw_contracts_load_dir reads files.
 */
#ifndef GW_CONTRACTS_H
#define GW_CONTRACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"

typedef struct gw_contracts gw_contracts;

#define GW_CONTRACTS_SET_BYTES  (1u << 20) /* default max_set_bytes */
#define GW_CONTRACTS_TOTAL_MULT 32         /* max_total_bytes = 32 x max_set_bytes */
#define GW_CONTRACTS_MAX_FILES  512        /* files per set */
#define GW_CONTRACTS_NAME_BYTES 512        /* any name or type reference */
#define GW_CONTRACTS_DEPTH      32         /* nested messages in a descriptor */

typedef struct gw_contracts_opts {
	size_t max_set_bytes;   /* one set (a host's, or one --descriptors file); 0 = default */
	size_t max_total_bytes; /* every file of the pool; 0 = GW_CONTRACTS_TOTAL_MULT x set */
} gw_contracts_opts;

/* gw_contracts_create makes a pool holding the built-in files. Returns
 * GW_OK and *out (caller frees with gw_contracts_destroy), or GW_ENOMEM /
 * GW_EINVAL (the built-in set did not load: a build fault). o may be NULL. */
gw_err gw_contracts_create(gw_contracts **out, const gw_contracts_opts *o);
void gw_contracts_destroy(gw_contracts *c);

/* gw_contracts_add checks the serialized FileDescriptorSet set[0..len)
 * (borrowed) and applies it whole, on behalf of owner (a host connection,
 * only compared; NULL = static, from --descriptors). A set from an owner
 * that holds files already first releases them (a host's new set replaces
 * its old one). Returns GW_OK; GW_ETOOBIG (over a size bound); GW_EINVAL
 * (malformed, a bad name, an import or a type not found); GW_ECONFLICT
 * (a file or symbol another owner holds with other contents). why (the
 * caller's buffer) names the file and the rule; nothing is applied then. */
gw_err gw_contracts_add(gw_contracts *c, const void *owner, const uint8_t *set, size_t len,
                        char *why, size_t whylen);

/* gw_contracts_load_dir adds every *.pb and *.binpb file of dir (sorted by
 * name; not recursive) as static. Returns GW_OK, or the first error (as
 * gw_contracts_add, or GW_ECONFIG when dir or a file cannot be read) with
 * why naming the file. */
gw_err gw_contracts_load_dir(gw_contracts *c, const char *dir, char *why, size_t whylen);

/* gw_contracts_release drops owner from every file it holds (the host
 * left); those files stay served (KEPT) until a set replaces them. */
void gw_contracts_release(gw_contracts *c, const void *owner);

/* One served method. */
enum { GW_KIND_NAMED = 1, GW_KIND_UNNAMED = 2, GW_KIND_POOLED = 3 };
typedef struct gw_contract_method {
	char actor[GW_CONTRACTS_NAME_BYTES]; /* the service's simple name */
	char action[GW_CONTRACTS_NAME_BYTES];
	char input[GW_CONTRACTS_NAME_BYTES];  /* full name, no leading dot */
	char output[GW_CONTRACTS_NAME_BYTES]; /* full name, no leading dot */
	int kind;                             /* GW_KIND_*; an unset kind is NAMED */
	uint32_t id_field;                    /* UNNAMED: the actor_id field's number; 0 = none */
	bool streaming;                       /* client or server streaming: not served */
} gw_contract_method;

/* gw_contracts_method looks up path[0..len) ("/pkg.Svc/Method"). Returns
 * GW_OK and fills *out, or GW_ENOTFOUND. */
gw_err gw_contracts_method(gw_contracts *c, const char *path, size_t len, gw_contract_method *out);

/* gw_contracts_action finds the served method whose service (the actor's
 * type) is named actor and whose rpc is action. Returns GW_OK and *out,
 * GW_ENOTFOUND, or GW_ECONFLICT when two contracts' services carry that
 * simple name (why names both paths). */
gw_err gw_contracts_action(gw_contracts *c, const char *actor, const char *action,
                           gw_contract_method *out, char *why, size_t whylen);

/* ---- the mirror: a second pool kept in step (the HTTP/JSON pool) -------------- */

/* One served method carrying a google.api.http option (all borrowed for
 * the call). */
typedef struct gw_contract_rule {
	const char *path;            /* "/pkg.Svc/Method" */
	const gw_contract_method *m; /* the method */
	const uint8_t *http;         /* the serialized google.api.HttpRule */
	size_t http_len;
} gw_contract_rule;

#define GW_CONTRACTS_MIRROR_V1 1

/* A mirror sees every pool the contracts would hold, before it is applied:
 *   prepare  builds its own candidate from the whole pool (set: a
 *            serialized FileDescriptorSet of every file; rules: the
 *            annotated methods) and returns it, or NULL with why: the set
 *            being added is then refused whole (GW_EINVAL), as a conflict
 *            in the contracts is;
 *   commit   the pool was applied: cand becomes the mirror's current one;
 *   abort    it was not (cand is dropped).
 * The callbacks run under the contracts' write lock: they must not call
 * the contracts back. Members are only appended (version). */
typedef struct gw_contracts_mirror {
	int version; /* GW_CONTRACTS_MIRROR_V1 */
	void *(*prepare)(void *user, const uint8_t *set, size_t len, const gw_contract_rule *rules,
	                 size_t nrules, char *why, size_t whylen);
	void (*commit)(void *user, void *cand);
	void (*abort)(void *user, void *cand);
	void *user; /* borrowed: outlives c, or c's last add */
} gw_contracts_mirror;

/* gw_contracts_set_mirror installs m (copied) and hands it the pool held
 * now (built-in and --descriptors files). Returns GW_OK, or GW_EINVAL
 * when the mirror refuses it (why) or m is not a known version. m NULL
 * removes the mirror (before its user is freed). */
gw_err gw_contracts_set_mirror(gw_contracts *c, const gw_contracts_mirror *m, char *why,
                               size_t whylen);

/* A list of byte strings (reflection answers): each owned. */
typedef struct gw_bytes_list {
	uint8_t **data; /* owned, as is each entry */
	size_t *len;
	size_t n;
} gw_bytes_list;
void gw_bytes_list_fini(gw_bytes_list *l);

/* The reflection queries (grpc.reflection.v1). Each fills out (caller
 * frees with gw_bytes_list_fini) and returns GW_OK, GW_ENOTFOUND or
 * GW_ENOMEM.
 *   services:           the full names of the services the gateway serves:
 *                       builtin (names, borrowed, n_builtin) and every
 *                       service carrying the actor option; sorted.
 *   file_by_name:       the file, then every file it imports, transitively
 *                       (serialized FileDescriptorProtos).
 *   file_by_symbol:     the same for the file defining a message, enum,
 *                       service, method, field, enum value or extension.
 *   file_by_extension:  the same for the file defining extension number
 *                       of type (full name).
 *   extension_numbers:  the numbers of the known extensions of type, each
 *                       a 4-byte little-endian int32. */
gw_err gw_contracts_services(gw_contracts *c, const char *const *builtin, size_t n_builtin,
                             gw_bytes_list *out);
gw_err gw_contracts_file_by_name(gw_contracts *c, const char *name, gw_bytes_list *out);
gw_err gw_contracts_file_by_symbol(gw_contracts *c, const char *symbol, gw_bytes_list *out);
gw_err gw_contracts_file_by_extension(gw_contracts *c, const char *type, int32_t number,
                                      gw_bytes_list *out);
gw_err gw_contracts_extension_numbers(gw_contracts *c, const char *type, gw_bytes_list *out);

/* ---- across the cluster (docs/design/cluster.md, "Contracts across the cluster") ---- */

/* gw_contracts_add_peer is gw_contracts_add on behalf of another member of
 * the cluster: owner (a token of gateway/cluster/cshare.c, only compared)
 * holds the set the member's hosts registered. Its files are served and
 * described here as a host's are, but never exported again
 * (gw_contracts_export). gw_contracts_release(owner) withdraws them (KEPT,
 * as a host's that left) and forgets owner. Same returns as
 * gw_contracts_add (GW_EINVAL also for a NULL owner). */
gw_err gw_contracts_add_peer(gw_contracts *c, const void *owner, const uint8_t *set, size_t len,
                             char *why, size_t whylen);

/* gw_contracts_export serializes, as one FileDescriptorSet sorted by file
 * name, every file that a host connected to this gateway holds now (an
 * owner that is not a peer; not built in, not --descriptors, not KEPT).
 * Returns GW_OK with *out (caller frees; an empty set when there is none),
 * *len and *hash (gw_contracts_hash of the bytes), or GW_ENOMEM. */
gw_err gw_contracts_export(gw_contracts *c, uint8_t **out, size_t *len, uint64_t *hash);

/* gw_contracts_gen: a number that changes whenever what
 * gw_contracts_export gives may have (a set applied, an owner released). */
uint64_t gw_contracts_gen(gw_contracts *c);

/* gw_contracts_hash: FNV-1a 64 of p[0..n). */
uint64_t gw_contracts_hash(const uint8_t *p, size_t n);

/* gw_contracts_count: files in the pool (built in included). */
size_t gw_contracts_count(gw_contracts *c);

#endif
