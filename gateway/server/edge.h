/* edge.h - what the gateway's other fronts (the HTTP/JSON routes,
 * gateway/http/json_api.c) share with the gRPC client edge, so that a call
 * through either reaches the same actor under the same rules:
 *
 *   gw_edge_contract_target  the system and instance a contract method's
 *                            call goes to (plain.c: actors as plain gRPC
 *                            services, issue 12 §1);
 *   gw_edge_request          the InvocationRequest of such a call;
 *   gw_edge_authorize_bearer the access policy's answer for a bearer token
 *                            (authz.c), as for a client's Invoke.
 *
 * Thread: any. Nothing here blocks. */
#ifndef GW_EDGE_H
#define GW_EDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>

#include "contracts.h"
#include "server.h"

/* gw_edge_contract_target finds where a call of contract method m with the
 * serialized input body[0..len) (borrowed) goes: name (the service's
 * actor, or for UNNAMED the instance named by the input's actor_id field:
 * GW_CONTRACTS_NAME_BYTES) and system (the one system in which a host
 * registered the actor: sn bytes). Returns GRPC_STATUS_OK, or a code with
 * why (*not_dispatched set for UNAVAILABLE: no host has the actor). */
grpc_status_code gw_edge_contract_target(gw_server *s, const gw_contract_method *m,
                                         const uint8_t *body, size_t len, char *name, char *system,
                                         size_t sn, char *why, size_t wn, bool *not_dispatched);

/* gw_edge_request builds inv->req in inv's arena: system/name's action,
 * ref (the parent for a new UNNAMED instance; NULL = none) and the payload
 * (an Any of type url_type, "type.googleapis.com/" prepended unless it
 * holds a '/', value body[0..len), copied). Returns false when out of
 * memory. */
bool gw_edge_request(gw_inv *inv, const char *system, const char *name, const char *ref,
                     const char *action, const char *url_type, const uint8_t *body, size_t len);

/* gw_edge_authorize_bearer authenticates the value of an HTTP
 * Authorization header (borrowed; NULL when absent) as "Bearer <token>"
 * against the access policy and checks that its principal may invoke
 * action of system/actor (ref: the parent of a new instance), as a
 * client's Invoke is checked. Returns GRPC_STATUS_OK (also without a
 * policy), UNAUTHENTICATED (no credential, not a bearer token, an unknown
 * token) or PERMISSION_DENIED, with why (never the token). With arena,
 * *principal gets the principal's name (for a forwarded call). */
grpc_status_code gw_edge_authorize_bearer(gw_server *s, const char *authorization,
                                          const char *system, const char *actor, const char *ref,
                                          const char *action, char *why, size_t n,
                                          spawn_arena *arena, char **principal);

/* gw_edge_authenticate_bearer is the first half of gw_edge_authorize_bearer:
 * whether the header names a known token (GRPC_STATUS_OK, also without a
 * policy) or not (UNAUTHENTICATED, why), so that a caller without a
 * credential learns nothing about what exists. */
grpc_status_code gw_edge_authenticate_bearer(gw_server *s, const char *authorization, char *why,
                                             size_t n);

/* gw_edge_has_policy: whether the server enforces an access policy. */
bool gw_edge_has_policy(const gw_server *s);

#endif
