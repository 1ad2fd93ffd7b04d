/* spawn_api.h - Spawn's HTTP/1.1 API on the gateway's HTTP listener, so
 * that unchanged Spawn SDKs (PROXY_HTTP_PORT pointed at --http) register
 * their actors and invoke them (docs/protocol.md, "Spawn's HTTP protocol"):
 *
 *   POST /api/v1/system                              RegistrationRequest -> RegistrationResponse
 *   POST /api/v1/system/{name}/actors/spawn          SpawnRequest (?revision=) -> SpawnResponse
 *   POST /api/v1/system/{name}/actors/{actor}/invoke InvocationRequest -> InvocationResponse
 *   GET  /api/v1/system/{name}/actors/{actor}        (?revision=) -> google.protobuf.Any, the
 *                                                    state (404: RequestStatus ACTOR_NOT_FOUND)
 *   GET  /health, /health/liveness, /health/readiness   {"status":"up"|"down"}
 *
 * Bodies are protobuf (application/octet-stream or application/protobuf).
 * The target is read from the body, not the path (as Spawn's proxy does).
 * Errors keep Spawn's shape: HTTP 500 (413 / 415 / 503 for refusals at the
 * edge) with the route's response message carrying status ERROR (or
 * ACTOR_NOT_FOUND) and a message; SDKs decode the body whatever the status.
 *
 * A registration binds the system's actors to a Spawn-protocol host target
 * (http_host.h) at the host address: --spawn-host-url, else
 * USER_FUNCTION_HOST / USER_FUNCTION_PORT, else the registering peer's
 * address and USER_FUNCTION_PORT (default 8090), as Spawn's proxy in daemon
 * mode. A system that registers again from another address moves there
 * (the old target is unbound and retired).
 *
 * A system's binding (one entry per system name):
 *
 *   (none) ---- registration from U ----> BOUND(U)  [the target for (system, U),
 *                                                    bound in the registry]
 *   BOUND(U) -- registration from U ----> BOUND(U)  [its bindings replaced]
 *   BOUND(U) -- registration from V ----> BOUND(V)  [U's target unbound and retired:
 *                                                    no new turn; turns in flight end]
 *   BOUND(U) -- registration refused ---> BOUND(U) or (none) after a move
 *   BOUND ----- shutdown (unbind) ------> UNBOUND   [the host client ends its calls]
 *
 * Everything past the edge is the runtime's: the same mailboxes, state,
 * stores, workflows, timers and schedules as for gRPC hosts and clients. */
#ifndef GW_SPAWN_API_H
#define GW_SPAWN_API_H

#include <stdbool.h>

#include "gw_err.h"
#include "http.h"
#include "http_host.h"
#include "registry.h"
#include "runtime.h"
#include "wirecheck.h"

typedef struct gw_spawnapi gw_spawnapi;

typedef struct gw_spawnapi_opts {
	const char *host_url;      /* borrowed: every host's base URL ("http://h:p"); NULL = the
	                              registering peer's address with host_port */
	int host_port;             /* with host_url NULL; 0 = 8090 */
	gw_wc_limits limits;       /* string checks at the edge; 0 fields = defaults */
	bool (*ready)(void *user); /* readiness for /health/readiness (NULL: always) */
	void *ready_user;          /* borrowed */
	bool health_only;          /* only GET /health...: Spawn's API is not served (--access) */
} gw_spawnapi_opts;

/* gw_spawnapi_create registers the routes above on http (before
 * gw_http_start). http, rt, reg and hh are borrowed and must outlive the
 * API's use (until gw_http_destroy). Returns GW_OK, GW_EINVAL, GW_ENOMEM. */
gw_err gw_spawnapi_create(gw_spawnapi **out, const gw_spawnapi_opts *o, gw_http *http,
                          gw_runtime *rt, gw_registry *reg, gw_hhosts *hh);

/* gw_spawnapi_unbind unbinds every Spawn-protocol host from the registry
 * (shutdown, after the listener drained). Thread: any. */
void gw_spawnapi_unbind(gw_spawnapi *a);

/* gw_spawnapi_destroy frees the API (call after gw_http_destroy). Accepts
 * NULL. */
void gw_spawnapi_destroy(gw_spawnapi *a);

#endif
