/* peer.h - calls to the other members of the cluster (spawn.gateway.v1.Peer).
 *
 * One grpc channel per member address, made on first use and reused; every
 * call runs asynchronously on the peers' own completion queue and thread,
 * never on a server CQ thread (STYLE.md 13.6). With TLS the peers present the
 * server's own certificate as their client certificate and trust the
 * client CA (docs/design/cluster.md, "Placement and routing"). With a peer
 * token, every call also carries "authorization: Bearer <token>": under
 * --access the receiving member authenticates the caller as a principal
 * with peer: true (docs/security.md, "Peers").
 *
 * A call:
 *   STARTED -- answer, error or deadline --> DONE  [fn runs once, on the peer thread]
 *   STARTED -- gw_peer_call_cancel --------> DONE  [fn runs with CANCELLED]
 * The caller keeps one reference (gw_peer_call_rele) for as long as it may
 * cancel; the call keeps another until fn ran. */
#ifndef GW_CLUSTER_PEER_H
#define GW_CLUSTER_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "gw_err.h"

typedef struct gw_peers gw_peers;
typedef struct gw_peer_call gw_peer_call;

typedef struct gw_peers_opts {
	/* PEM texts, borrowed (copied). ca_pem non-NULL = TLS: the peer's server
	 * certificate must chain to ca_pem; cert_pem/key_pem are presented as
	 * the client certificate (NULL: none). */
	const char *ca_pem, *cert_pem, *key_pem;
	/* The name the peers' certificates must carry (--peer-tls-server-name),
	 * borrowed (copied); NULL = the host of the address dialled. */
	const char *server_name;
	/* The bearer token sent on every peer call (--peer-token-file), borrowed
	 * (copied; zeroed when the peers are destroyed); NULL = none. */
	const char *token;
	int max_message_bytes; /* 0 = 4 MiB */
	/* With TLS, the member's certificate files as they change on disk
	 * (gw_tls_pems_since, server/tls.h): read on the peers' own thread once a
	 * second; a newer set makes new credentials, and calls from
	 * then on go over new channels (new connections presenting the renewed
	 * certificate), while the calls on the old channels finish there. The
	 * PEM texts it returns are freed with pems_free. NULL = the texts above
	 * for the peers' lifetime. pems_user is borrowed and must outlive the
	 * peers. */
	bool (*pems)(void *pems_user, uint64_t *gen, char **ca, char **cert, char **key);
	void (*pems_free)(char *ca, char *cert, char *key);
	void *pems_user;
	uint64_t pems_gen; /* the generation of the texts above (pems' *gen) */
} gw_peers_opts;

/* gw_peers_create starts the peers' completion-queue thread. Returns GW_OK
 * and sets *out; GW_ENOMEM; GW_ECONFIG (gRPC refused the TLS texts). */
gw_err gw_peers_create(gw_peers **out, const gw_peers_opts *o);

/* gw_peers_set_token replaces the bearer token of the calls started from
 * now on with token (borrowed, copied; NULL = none): --peer-token-file read
 * again on SIGHUP. Calls in flight keep theirs. Returns GW_OK. Thread: any;
 * never blocks for long. */
gw_err gw_peers_set_token(gw_peers *p, const char *token);

/* gw_peers_destroy cancels the calls in flight, waits for their callbacks,
 * stops the thread and closes every channel. Accepts NULL. Blocks. */
void gw_peers_destroy(gw_peers *p);

/* The trailer of a Peer call the receiving member refused because of the
 * caller's credential (UNAUTHENTICATED or PERMISSION_DENIED: not a peer of
 * its access policy), as opposed to a refusal of the call's own content. */
#define GW_PEER_REFUSED_KEY "spawn-peer"
#define GW_PEER_REFUSED     "refused"

/* The start of gRPC core's message for a call that found no connection to
 * the member and was never sent (UNAVAILABLE). */
#define GW_PEER_NOT_SENT "failed to connect to all addresses"

/* Completion of a call, on the peer thread: code and details (borrowed),
 * resp the response message (borrowed; NULL unless code is OK), owner the
 * value of the "spawn-owner" trailer (borrowed; NULL when absent),
 * not_dispatched the "spawn-retry: not-dispatched" trailer (or a call
 * gRPC never sent: UNAVAILABLE GW_PEER_NOT_SENT) and
 * peer_refused the GW_PEER_REFUSED_KEY trailer (the member refused this
 * one as a peer). */
typedef void (*gw_peer_done_fn)(void *user, grpc_status_code code, const char *details,
                                grpc_byte_buffer *resp, const char *owner, bool not_dispatched,
                                bool peer_refused);

/* gw_peer_call_start calls method (a static path, "/spawn.gateway.v1.Peer/
 * Forward") on the member at address with req (borrowed; gRPC keeps its own
 * reference), deadline_ms (monotonic ms; 0 = none). Returns GW_OK and sets
 * *out (the caller's reference: gw_peer_call_rele) and fn will run exactly
 * once; GW_ESHUTDOWN (destroying) or GW_ENOMEM: fn will not run. Thread:
 * any; never blocks. */
gw_err gw_peer_call_start(gw_peers *p, const char *address, const char *method,
                          grpc_byte_buffer *req, int64_t deadline_ms, gw_peer_done_fn fn,
                          void *user, gw_peer_call **out);

/* gw_peer_call_cancel cancels c if it has not completed (fn then runs with
 * CANCELLED, on the peer thread). Thread: any, while holding a reference. */
void gw_peer_call_cancel(gw_peer_call *c);

/* gw_peer_call_rele drops the caller's reference. Accepts NULL. */
void gw_peer_call_rele(gw_peer_call *c);

#define GW_PEER_PING "/spawn.gateway.v1.Peer/Ping"

/* gw_peer_ping calls Peer.Ping on the member at address and waits for the
 * answer: true when the member answering is expect_id (borrowed) itself
 * (a process restarted on the same address is another member), false on
 * any error or after timeout_ms (<= 0: 1000). self_id (borrowed; NULL = "")
 * and view_version are sent as the caller's. Blocks: yes, up to timeout_ms
 * (never call it on a completion-queue thread). Thread: any other. */
bool gw_peer_ping(gw_peers *p, const char *address, const char *expect_id, const char *self_id,
                  uint64_t view_version, int64_t timeout_ms);

/* Calls started so far (for tests and statistics). */
uint64_t gw_peers_calls(gw_peers *p);

#endif
