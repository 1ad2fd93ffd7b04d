/* auth.h - principals, the access policy and who is calling.
 *
 * The access policy (`--access FILE`, docs/security.md "Principals and the
 * access policy") is YAML read with libyaml's document API:
 *
 *   principals:
 *     - name: orders-host
 *       identities: [uri:spiffe://spawn.test/host, dns:host.spawn.test]
 *       tokens: [sha256:<64 lowercase hex>]
 *       host: [orders]              # "*" = any system
 *       invoke:
 *         - system: billing         # "*" = any system
 *           actors: [Ledger]        # optional; an instance matches its parent too
 *           actions: [Charge]       # optional
 *       admin: false
 *       peer: false                 # true: a member of the cluster (Peer service)
 *
 * A gw_policy is immutable once parsed. gw_access holds the current one and
 * swaps it on reload (SIGHUP):
 *
 *   EMPTY --- gw_access_open(file ok) -------> SERVING(p1)
 *   SERVING(p) -- reload, file ok -----------> SERVING(p')  [write lock only for the
 *                                                           pointer swap; p freed after]
 *   SERVING(p) -- reload, file bad ----------> SERVING(p)   [error returned, logged]
 *
 * Invariants:
 *   1. A reader between gw_access_read and gw_access_done sees one whole
 *      policy; the swap waits for readers (read lock), never the reverse
 *      for long (parsing happens outside the lock).
 *   2. A principal pointer is valid only while the read lock is held: code
 *      that remembers a principal past a call (a host stream) keeps its
 *      name and looks it up again.
 *   3. Tokens are never stored, logged or echoed: only their SHA-256. A
 *      lookup is a binary search on the SHA-256 of the presented token
 *      and one constant-time comparison.
 *
 * Thread: any. Blocks: gw_access_open / gw_access_reload read the file.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "gw_err.h"

typedef struct gw_policy gw_policy;       /* opaque, immutable */
typedef struct gw_principal gw_principal; /* inside a gw_policy */

#define GW_TOKEN_HASH_LEN 71 /* "sha256:" + 64 hex, without the NUL */

/* gw_policy_parse reads the policy file at path (borrowed). Returns GW_OK
 * and *out (caller frees with gw_policy_free); GW_ECONFIG with why =
 * "FILE:LINE: reason" (unknown key, duplicate principal, malformed token
 * hash or identity, wrong type...); GW_ENOMEM. Blocks: reads the file. */
gw_err gw_policy_parse(gw_policy **out, const char *path, char *why, size_t whylen);

/* gw_policy_parse_string is gw_policy_parse on text (borrowed, len bytes);
 * name stands for the file name in messages. For tests. */
gw_err gw_policy_parse_string(gw_policy **out, const char *name, const char *text, size_t len,
                              char *why, size_t whylen);

/* gw_policy_free frees p. Accepts NULL. */
void gw_policy_free(gw_policy *p);

/* gw_policy_count: how many principals p has. */
size_t gw_policy_count(const gw_policy *p);

/* gw_policy_by_token finds the principal holding bearer token tok (len
 * bytes, borrowed): hashed with SHA-256, searched among the stored hashes,
 * confirmed in constant time. NULL when none (or the hash failed). It
 * allocates nothing itself (OpenSSL 3.0 does, inside the digest's
 * initialisation). */
const gw_principal *gw_policy_by_token(const gw_policy *p, const char *tok, size_t len);

/* gw_policy_by_identity finds the principal with identity kind ("uri" or
 * "dns") : value (len bytes, borrowed). NULL when none. */
const gw_principal *gw_policy_by_identity(const gw_policy *p, const char *kind, const char *value,
                                          size_t len);

/* gw_policy_by_name: the principal called name, or NULL. */
const gw_principal *gw_policy_by_name(const gw_policy *p, const char *name);

/* The principal's rights. Strings borrowed for the call. */
const char *gw_principal_name(const gw_principal *pr); /* borrowed from the policy */
bool gw_principal_admin(const gw_principal *pr);
/* peer: a member of the cluster, which may call spawn.gateway.v1.Peer
 * (Forward, Ping) and whose word for a forwarded call's principal the
 * owner trusts (docs/security.md, "Peers"). */
bool gw_principal_peer(const gw_principal *pr);
bool gw_principal_may_host(const gw_principal *pr, const char *system);
/* may_invoke: actor may be matched by name or by parent (an instance's
 * template; NULL when unknown); action NULL = "no action" (Spawn): only
 * the system and actor lists apply. */
bool gw_principal_may_invoke(const gw_principal *pr, const char *system, const char *actor,
                             const char *parent, const char *action);
/* restricts_actors: whether some grant on system names actors (then a
 * caller may need to find an instance's parent to decide). */
bool gw_principal_restricts_actors(const gw_principal *pr, const char *system);

/* gw_token_hash writes "sha256:" + the lowercase hex SHA-256 of tok (len
 * bytes) and a NUL into out (GW_TOKEN_HASH_LEN + 1 bytes). Returns false
 * when OpenSSL failed. */
bool gw_token_hash(const char *tok, size_t len, char out[GW_TOKEN_HASH_LEN + 1]);

/* ---- the current policy --------------------------------------------------------- */

typedef struct gw_access gw_access;

/* gw_access_open loads path (copied) as the first policy. Returns GW_OK
 * and *out (free with gw_access_close), or gw_policy_parse's errors. */
gw_err gw_access_open(gw_access **out, const char *path, char *why, size_t whylen);

/* gw_access_reload parses the file again: GW_OK and the new policy is
 * current (*count its principals); otherwise the old one stays and why
 * says what is wrong. Blocks: reads the file; waits for readers only for
 * the swap. */
gw_err gw_access_reload(gw_access *a, size_t *count, char *why, size_t whylen);

/* gw_access_read takes the read lock and returns the current policy,
 * valid (with every principal in it) until gw_access_done. */
const gw_policy *gw_access_read(gw_access *a);
void gw_access_done(gw_access *a);

/* gw_access_path: the file (borrowed from a). */
const char *gw_access_path(const gw_access *a);

/* gw_access_close frees a. Accepts NULL. */
void gw_access_close(gw_access *a);

/* ---- who is calling ------------------------------------------------------------- */

/* gw_authn_call finds the principal of a call from its initial metadata md
 * (borrowed) and its transport (call, for the mTLS peer identity):
 *   - an `authorization: Bearer <token>` entry must name a known token,
 *     whatever certificate the peer holds;
 *   - otherwise the peer certificate's SAN URIs, then DNS names, are
 *     matched against the identities.
 * Returns GW_OK and *out (valid under p's read lock); GW_EUNAUTH with why
 * ("no credential", "unknown bearer token", ...; never the token). */
gw_err gw_authn_call(const gw_policy *p, grpc_call *call, const grpc_metadata_array *md,
                     const gw_principal **out, char *why, size_t whylen);

/* gw_policy_by_cert_pem finds the principal of the first certificate in
 * pem (borrowed): its SAN URIs, then its SAN DNS names, matched as
 * gw_authn_call matches a peer's certificate (this member's own
 * certificate, checked at start-up: docs/security.md, "Peers"). Returns
 * GW_OK and *out (valid under p's read lock), GW_ENOTFOUND when no
 * identity of it is in p, GW_EINVAL when pem holds no certificate. */
gw_err gw_policy_by_cert_pem(const gw_policy *p, const char *pem, const gw_principal **out);

/* gw_authn_is_authorization: whether metadata key (len bytes) is the
 * credential header (ASCII case-insensitive "authorization"): its value
 * is never logged nor relayed. */
bool gw_authn_is_authorization(const char *key, size_t len);

#endif
