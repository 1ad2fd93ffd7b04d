/* json_api.h - HTTP/JSON transcoding on the gateway's HTTP listener (issue
 * 12 §2; docs/http-json.md):
 *
 *   annotated routes   every rpc of a registered contract (an actor
 *                      service) carrying a google.api.http option, served
 *                      at its verb and path template: path variables and
 *                      query parameters set fields of the input, the body
 *                      ("*" or one field) is JSON; the call goes where the
 *                      same rpc called as a plain gRPC service goes
 *                      (server/edge.h);
 *   generic route      POST /v1/{system}/{actor}/{action}[?parent=P]: the
 *                      body is JSON of the action's input type, found over
 *                      the contracts by the actor's type (P, the
 *                      instance's template, or the actor) and the action,
 *                      or, when no contract describes it, a JSON
 *                      google.protobuf.Any ("@type" names the type);
 *   replies            the JSON of the output type (proto3 JSON mapping);
 *                      no reply is {}; for an Any request, an Any;
 *   errors             {"code": <gRPC code>, "message": "..."} with the
 *                      HTTP status of the standard gRPC-to-HTTP table.
 *
 * With an access policy (--access), every JSON route needs an
 * `Authorization: Bearer <token>` header, authenticated and authorized as
 * a client's Invoke; Spawn's own HTTP API (/api/v1/...) carries no
 * credential and is answered 403 here (spawn_api.c serves only /health
 * then).
 *
 * The JSON pool mirrors the contracts (gw_contracts_set_mirror): every
 * pool the contracts would hold is built first as a spawn_pbjson pool with
 * its routes; a set that does not build there, or whose HTTP rules do not
 * parse, is refused whole. The current pool (a snapshot) is replaced on
 * each change and freed when the last request using it is answered:
 *
 *   (none) -- prepare ok --> CANDIDATE -- commit --> CURRENT -- next commit --> RETIRED
 *   CANDIDATE -- abort --> (freed)            RETIRED -- last request answered --> (freed)
 *
 * Thread: handlers run on the HTTP listener's thread; replies are written
 * from the runtime's completion, on any thread. Nothing here blocks. */
#ifndef GW_JSON_API_H
#define GW_JSON_API_H

#include "contracts.h"
#include "gw_err.h"
#include "http.h"
#include "registry.h"
#include "runtime.h"
#include "server.h"
#include "wirecheck.h"

typedef struct gw_jsonapi gw_jsonapi;

#define GW_JSONAPI_MAX_RULES  4096 /* HTTP rules (bindings) in one pool */
#define GW_JSONAPI_MAX_PARAMS 64   /* path variables + query parameters of a request */
#define GW_JSONAPI_MAX_PATH   2048 /* bytes of a request path */

typedef struct gw_jsonapi_opts {
	gw_wc_limits limits; /* names at the edge; 0 fields = defaults */
	bool policy;         /* an access policy is enforced: Spawn's API answers 403 */
} gw_jsonapi_opts;

/* gw_jsonapi_create registers the JSON routes on http (before
 * gw_http_start) and mirrors contracts into its JSON pool. http, srv, rt,
 * reg and contracts are borrowed and must outlive the API (destroy it after
 * gw_http_destroy and once no host can register contracts any more).
 * Returns GW_OK; GW_EINVAL (why: the current contracts do not build as a
 * JSON pool); GW_ENOMEM. */
gw_err gw_jsonapi_create(gw_jsonapi **out, const gw_jsonapi_opts *o, gw_http *http, gw_server *srv,
                         gw_runtime *rt, gw_registry *reg, gw_contracts *contracts, char *why,
                         size_t whylen);

/* gw_jsonapi_destroy frees the API. Accepts NULL. */
void gw_jsonapi_destroy(gw_jsonapi *a);

/* gw_jsonapi_http_status: the HTTP status of a gRPC status code (the
 * standard table: INVALID_ARGUMENT 400, NOT_FOUND 404, ...). */
int gw_jsonapi_http_status(int grpc_code);

#endif
