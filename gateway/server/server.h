/* server.h - the gRPC front of the gateway (gRPC C core).
 *
 * Serves spawn.gateway.v1.ActorGateway (Invoke, Spawn) for clients,
 * spawn.gateway.v1.HostGateway (Connect) for actor hosts, the Admin
 * service, and grpc.health.v1.Health (Check) on every listener, on N
 * completion-queue threads, each with its own completion queue. CQ threads
 * only parse, hand work to the runtime and start batches; they never block
 * on I/O (the statestore runs on the persist thread).
 *
 * Readiness (health.c; docs/deploy.md, "Health checks"): Check answers
 * SERVING while no condition below holds the gateway back, NOT_SERVING
 * while one does. Each condition is one bit, set and cleared by the part
 * it belongs to:
 *
 *   STARTING ---- main: start-up complete -----> (clear)  [statestore open,
 *                                                          effects recovered,
 *                                                          listeners up]
 *   MEMBERSHIP -- membership: ACTIVE in view --> (clear)  [cluster mode only]
 *   (clear) ----- membership: fenced ----------> MEMBERSHIP
 *   (clear) ----- SIGTERM (main, then gw_server_shutdown) -> DRAINING, for good
 *   (clear) ----- statestore check fails ------> STORE     [with --http only]
 *   STORE ------- statestore check answers ----> (clear)
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "contracts.h"
#include "gw_err.h"
#include "registry.h"
#include "routing.h"
#include "runtime.h"
#include "tls.h"
#include "wirecheck.h"

typedef struct gw_server gw_server;

typedef struct gw_server_opts {
	const char *const *listen; /* borrowed: "127.0.0.1:8090", "unix:/run/spawn.sock": clients,
	                              and hosts and Admin when they have no listeners below */
	size_t n_listen;
	const char *const *host_listen; /* borrowed: HostGateway only; 0 of them = on listen */
	size_t n_host_listen;
	const char *const *admin_listen; /* borrowed: Admin only; 0 of them = on listen */
	size_t n_admin_listen;
	const char *const *peer_listen; /* borrowed: the Peer service only (with a router);
	                                   0 of them = on listen */
	size_t n_peer_listen;
	const char *const *health_listen; /* borrowed: grpc.health.v1.Health only, always
	                                     plaintext (probes speak no TLS); 0 of them = none */
	size_t n_health_listen;
	gw_wc_limits limits;     /* string limits at ingress; 0 fields = defaults */
	int threads;             /* completion-queue threads; 0 = CPUs in the affinity mask */
	int max_message_bytes;   /* receive and send bound; 0 = 4 MiB */
	int64_t drain_ms;        /* graceful stop: wait for client calls; 0 = 5000 */
	size_t host_queue_bytes; /* per host: bytes of tasks waiting to be written before
	                            new ones are refused (RESOURCE_EXHAUSTED); 0 = 64 MiB */
	uint32_t host_batch;     /* most tasks in one message to a host that asked for
	                            batches; 0 = 128, 1 = no batches (docs/protocol.md) */
	size_t host_batch_bytes; /* most task bytes in one batch; 0 = 256 KiB */
	int64_t host_stall_ms;   /* a host over host_queue_bytes that has not finished a
	                            write for this long is disconnected; 0 = 10000 */
	gw_access *access;       /* borrowed, outlives the server: the access policy
	                            (--access); NULL = every caller may do everything */
	gw_tls *tls;       /* borrowed, must outlive the server: TLS on every listener (tls.h);
	                      NULL = plaintext */
	gw_router *router; /* borrowed, must outlive the server: cluster mode, serves
	                      spawn.gateway.v1.Peer on the client listeners
	                      (docs/design/cluster.md); NULL = a single gateway */
	gw_peers *peers;   /* borrowed, must outlive the server: with router, the links
	                      Admin calls are forwarded and aggregated over */
	gw_contracts *contracts;  /* borrowed, must outlive the server: the registered
	                             contracts, served as plain gRPC services and by
	                             reflection (plain.c, reflection.c); NULL = none */
	struct gw_cshare *cshare; /* borrowed, must outlive the server: with a membership,
	                             the systems served anywhere in the cluster
	                             (cluster/cshare.h); NULL = this gateway's own */
	int64_t leave_ms;         /* cluster mode: how long after the drain began every peer's
	                             view has this member LEAVING (and stops forwarding to it);
	                             the drain's new calls are parked at least until then before
	                             gRPC's shutdown (docs/design/cluster.md, "The drain");
	                             0 = GWI_PARK_MS after the calls in flight finished only.
	                             Appended member. */
} gw_server_opts;

/* gw_server_create binds every listen address. rt and reg are borrowed
 * and must outlive the server. Returns GW_OK, GW_ECONFIG (an address could
 * not be bound: *why names it) or GW_ENOMEM. */
gw_err gw_server_create(gw_server **out, const gw_server_opts *o, gw_runtime *rt, gw_registry *reg,
                        char *why, size_t whylen);

/* Listen addresses are numbered listen[], then host_listen[], then
 * admin_listen[], then peer_listen[], then health_listen[]. gw_server_listeners is how many there
 * are; gw_server_address is address i as given (borrowed from the opts). */
size_t gw_server_listeners(const gw_server *s);
const char *gw_server_address(const gw_server *s, size_t i);

/* gw_server_port returns the TCP port bound for listen address i (useful
 * with port 0), or 0 for unix sockets. */
int gw_server_port(const gw_server *s, size_t i);

/* gw_server_start starts accepting calls and the CQ threads. */
gw_err gw_server_start(gw_server *s);

/* The conditions that hold readiness back (see the top of this file). */
enum {
	/* Set by gw_server_create; main clears it once start-up is complete. */
	GW_UNREADY_STARTING = 1u << 0,
	/* Set before the drain (main, and gw_server_shutdown); never cleared. */
	GW_UNREADY_DRAINING = 1u << 1,
	/* The hook of cluster mode (--advertise): main sets it before
	 * gw_server_start when the gateway is a cluster member, and the
	 * membership (gateway/cluster) clears it once this member is ACTIVE
	 * in its view, and sets it again whenever the member fences itself
	 * (declared dead, or the database out of reach past the timeout),
	 * until it has rejoined. A standalone gateway never sets it. */
	GW_UNREADY_MEMBERSHIP = 1u << 2,
	/* With --http: set while the statestore does not answer the periodic
	 * readiness check (gateway/metrics/expose.h), cleared once it does. */
	GW_UNREADY_STORE = 1u << 3,
};

/* gw_server_set_unready sets (on) or clears the conditions conds
 * (GW_UNREADY_*, or-ed); a change of readiness is logged. Thread: any. */
void gw_server_set_unready(gw_server *s, unsigned conds, bool on);

/* gw_server_unready returns the conditions set now: 0 = ready. Thread: any. */
unsigned gw_server_unready(const gw_server *s);

/* gw_server_hosts_each calls fn for every open host connection with the
 * system it registered ("" before its registration; borrowed for the
 * call), its tasks in flight and the bytes of tasks waiting to be written
 * to it. fn runs under the server's host-list lock: it must not block or
 * call into the server. Thread: any but a CQ thread (metrics scrapes). */
typedef void (*gw_host_stat_fn)(void *user, const char *system, size_t tasks, size_t queue_bytes);
void gw_server_hosts_each(gw_server *s, gw_host_stat_fn fn, void *user);

/* Authorization refusals counted since start (--access), by what was
 * refused (GW_REFUSAL_*) and the answer: unauth true = UNAUTHENTICATED,
 * false = PERMISSION_DENIED. Thread: any. */
enum { GW_REFUSAL_INVOKE, GW_REFUSAL_ADMIN, GW_REFUSAL_PEER, GW_REFUSAL_HOST, GW_REFUSAL_KINDS };
uint64_t gw_server_refusals(const gw_server *s, int kind, bool unauth);

/* gw_server_access_reloaded is called after gw_access_reload swapped the
 * policy: every connected host whose principal may no longer serve its
 * system is disconnected (its stream ends PERMISSION_DENIED). Returns how
 * many. Thread: any but a CQ thread. */
size_t gw_server_access_reloaded(gw_server *s);

/* gw_server_shutdown drains, then stops: readiness goes NOT_SERVING
 * (GW_UNREADY_DRAINING); for up to drain_ms, while client calls in flight
 * finish, the listeners stay open: Health answers NOT_SERVING, a new call
 * is refused UNAVAILABLE with the not-dispatched trailer, a new host stream
 * UNAVAILABLE. Then new calls are parked (answered not-dispatched after
 * the GOAWAY) for 200 ms, and in cluster mode until leave_ms after the
 * drain began. Then every listener stops accepting, what remains is
 * cancelled (host streams included), and it waits until every call has
 * finished. Blocks: yes. */
void gw_server_shutdown(gw_server *s);

/* gw_server_destroy stops the CQ threads and frees the server; call
 * gw_server_shutdown first. Accepts NULL. */
void gw_server_destroy(gw_server *s);

#endif
