/* routing.h - every call to its actor's owner (docs/design/cluster.md,
 * "Placement and routing").
 *
 * The router is the runtime's gw_router_ops (runtime.h): offered each call
 * entering the runtime, it computes the owner from the current view
 * (gw_place) and runs the call here (owner = this member), forwards it over
 * spawn.gateway.v1.Peer/Forward (owner = another member), or keeps it until
 * the next view (no view yet, this member fenced, or the owner refused).
 *
 * One call, as the router holds it (struct fwd in routing.c):
 *   (offered) --- owner is self ---------------> (runtime)  [not taken]
 *   (offered) --- owner is another member -----> FORWARDED  [Peer.Forward, deadline = the call's]
 *   (offered) --- no view / fenced / none -----> WAITING
 *   FORWARDED --- answer (any but a refusal) --> (done)     [the owner's answer, as a local one]
 *   FORWARDED --- FAILED_PRECONDITION + spawn-owner, or UNAVAILABLE not dispatched (the owner
 *                 draining, or unreachable) --> WAITING [for a view newer than the one
 * used] WAITING ----- newer view ------------------> (offered again) WAITING ----- deadline
 * --------------------> (done)     [DEADLINE_EXCEEDED] WAITING ----- wait cap, owner none -------->
 * (runtime)  [answers as a gateway without the host] any --------- caller gone ----------------->
 * (done)     [CANCELLED; a forward is cancelled at the owner too] Invariants:
 *   1. a member never forwards to itself: owner = self runs here;
 *   2. a member never forwards a call it received from a peer (Peer.Forward
 *      runs it here or refuses it), so a call makes at most one hop at a
 *      time and two members that disagree about the view cannot pass it back
 *      and forth: each refusal costs the sender one attempt and a wait for a
 *      newer view or GW_REFUSED_RETRY_MS (doubling; the receiver's view may
 *      be the one behind); after GW_ROUTE_HOPS attempts the call fails UNAVAILABLE
 *      (not dispatched: the caller may retry);
 *   3. a call is completed exactly once (done), with inv->rstate cleared first
 *      under the router's lock, so a cancel after that does nothing. */
#ifndef GW_CLUSTER_ROUTING_H
#define GW_CLUSTER_ROUTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.h"
#include "registry.h"
#include "runtime.h"
#include "view.h"

/* The most attempts (forwards) one call makes; the Peer service refuses a
 * ForwardRequest with more hops. */
#define GW_ROUTE_HOPS 4
/* A refused forward is made again after this delay (doubling with each
 * attempt) unless a newer view arrives first: the owner's view may be the
 * one that is behind. */
#define GW_REFUSED_RETRY_MS 100

#define GW_PEER_FORWARD "/spawn.gateway.v1.Peer/Forward"
#define GW_PEER_ADMIN   "/spawn.gateway.v1.Peer/Admin"
/* The trailer of a refusal: the owner in the refusing member's view. */
#define GW_OWNER_KEY "spawn-owner"

typedef struct gw_router gw_router;

/* How the router calls peers: gw_peer_call_start, gw_peer_call_cancel and
 * gw_peer_call_rele on opts.peers by default; the unit tests give a fake
 * (tests/unit/routing_test.c). p is opts.peers. */
typedef struct gw_router_peer_ops {
	gw_err (*start)(gw_peers *p, const char *address, const char *method, grpc_byte_buffer *req,
	                int64_t deadline_ms, gw_peer_done_fn fn, void *user, gw_peer_call **out);
	void (*cancel)(gw_peer_call *c);
	void (*rele)(gw_peer_call *c);
} gw_router_peer_ops;

typedef struct gw_router_opts {
	gw_runtime *rt;                     /* borrowed; outlives the router */
	gw_registry *reg;                   /* borrowed; outlives the router */
	gw_peers *peers;                    /* borrowed; outlives the router */
	const gw_router_peer_ops *peer_ops; /* static storage; NULL = the real peers */
	int64_t wait_ms;      /* longest a call without a deadline waits for a view; 0 = 10000 */
	int64_t none_wait_ms; /* longest a call waits when no member serves its type but a host
	                         here registered it (the view has not caught up); 0 = 2000 */
} gw_router_opts;

/* gw_router_create starts the router's thread (waits and their expiry). It
 * does not install itself: gw_runtime_set_router(rt, &gw_router_ops_v1, r).
 * Returns GW_OK, GW_ENOMEM. */
gw_err gw_router_create(gw_router **out, const gw_router_opts *o);
extern const gw_router_ops gw_router_ops_v1;

/* gw_router_on_view is the membership's on_view callback: v (borrowed for
 * the call; copied) becomes the current view when newer than the one held;
 * calls waiting for a view are routed again, the actors the view gives to
 * others are handed off, and when this member may have gained the actors
 * of a crashed member (the first view with this member in it, or an ACTIVE
 * member gone) it runs the effects recovery (gw_runtime_recover_effects),
 * which wakes only the actors it owns (gw_router_ops.owns). Thread: any. */
void gw_router_on_view(void *user, gw_view *v);

/* Where a request's actor lives in the current view. */
enum { GW_OWNER_SELF = 0, GW_OWNER_OTHER = 1, GW_OWNER_NONE = 2, GW_OWNER_NOVIEW = 3 };

/* gw_router_owner answers, for Peer.Forward, who owns rq's actor in the
 * current view: GW_OWNER_SELF, GW_OWNER_OTHER (owner_id gets its id),
 * GW_OWNER_NONE (no member serves the type; owner_id empty) or
 * GW_OWNER_NOVIEW (none yet, or this member is fenced). *version gets the
 * view's version (0 without one). Thread: any; never blocks. */
int gw_router_owner(gw_router *r, const Spawn__InvocationRequest *rq, char *owner_id, size_t n,
                    uint64_t *version);

/* gw_router_owner_of is gw_router_owner for the actor (system, name) an
 * Admin call names (strings borrowed): address gets the owner's address
 * (GW_OWNER_OTHER; else empty), *known whether this member's registry
 * knows the name (a type, or an instance: its template then decides).
 * Thread: any; never blocks. */
int gw_router_owner_of(gw_router *r, const char *system, const char *name, char *owner_id, size_t n,
                       char *address, size_t an, uint64_t *version, bool *known);

/* gw_router_view_copy returns a copy of the current view (NULL: none yet,
 * or out of memory); the caller frees it with gw_router_view_free. */
gw_view *gw_router_view_copy(gw_router *r);
void gw_router_view_free(gw_view *v); /* accepts NULL */

/* gw_router_await runs fn(user, newer) exactly once, on the router's
 * thread, no lock held: newer = true once a view newer than version is
 * installed, false at until_ms (monotonic ms) or at gw_router_stop.
 * Returns GW_OK; GW_ENOMEM or GW_ESHUTDOWN (stopped): fn will not run.
 * Thread: any. */
typedef void (*gw_await_fn)(void *user, bool newer);
gw_err gw_router_await(gw_router *r, uint64_t version, int64_t until_ms, gw_await_fn fn,
                       void *user);

/* gw_router_self copies this member's id in the current view (empty when
 * none) to id. */
void gw_router_self(gw_router *r, char *id, size_t n, uint64_t *version);

typedef struct gw_router_stats {
	uint64_t forwarded; /* Peer.Forward calls made */
	uint64_t refused;   /* of those, refused by a member that was not the owner */
	uint64_t waited;    /* calls that waited for a view */
	uint64_t local;     /* calls run here as their owner */
} gw_router_stats;
void gw_router_get_stats(gw_router *r, gw_router_stats *out);

/* gw_router_stop fails every waiting call (GW_ESHUTDOWN, not dispatched),
 * cancels the forwards in flight and stops the thread. New calls are then
 * run here (the server is closed by then). Blocks until the thread ends;
 * forwards complete through the peers (gw_peers_destroy waits for them). */
void gw_router_stop(gw_router *r);

/* gw_router_destroy frees r (gw_router_stop first if it was not). Call
 * after gw_peers_destroy. Accepts NULL. */
void gw_router_destroy(gw_router *r);

#endif
