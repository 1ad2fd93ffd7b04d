/* cshare.h - contracts across the cluster, and which system serves an
 * actor type anywhere in it (issue 11 §3 for plain stubs, reflection and
 * annotated HTTP routes; docs/design/cluster.md, "Contracts across the
 * cluster").
 *
 * Each member publishes, with what its hosts serve, one more served line:
 * GW_CONTRACTS_MARK followed by 16 hex digits, the hash of the contracts
 * its own hosts hold (gw_contracts_export). A member that sees another's
 * hash change asks it for the set (Peer.Contracts) and adds it to its own
 * contracts on that member's behalf (gw_contracts_add_peer): its plain
 * gRPC methods, reflection and HTTP/JSON routes then serve those actors
 * too, and routing takes each call to the owner.
 *
 * The contracts of one other member, as this member holds them:
 *
 *   UNKNOWN  -- a view shows its hash -----------> LOADING   [Peer.Contracts sent]
 *   LOADING  -- answer, hash checked, added -----> LOADED    [served here]
 *   LOADING  -- answer refused (bad hash, too
 *               big, malformed, a conflict) -----> REFUSED   [logged; the hash is
 *                                                             not asked again]
 *   LOADING  -- no answer (error, deadline) -----> FAILED    [asked again at the next
 *                                                             heartbeat]
 *   LOADED/REFUSED -- another hash in a view ----> LOADING
 *   any      -- the member leaves the view, or
 *               publishes no hash any more -----> WITHDRAWN  [gw_contracts_release: its
 *                                                             files stay described (KEPT)
 *                                                             until a set replaces them]
 *
 * Thread: any. gw_cshare_on_view and gw_cshare_served run on the
 * membership thread; answers on the peers' thread; gw_cshare_system on a
 * completion-queue thread (it never blocks: one mutex, a binary search). */
#ifndef GW_CLUSTER_CSHARE_H
#define GW_CLUSTER_CSHARE_H

#include <stddef.h>
#include <stdint.h>

#include "contracts.h"
#include "gw_err.h"
#include "peer.h"
#include "view.h"

/* The first byte of the served line carrying a member's contracts hash: a
 * control character, which the ingress refuses in every name, so it is
 * never a system (registry.h's GW_SUB_MARK is another). */
#define GW_CONTRACTS_MARK '\x1e'

#define GW_PEER_CONTRACTS "/spawn.gateway.v1.Peer/Contracts"

typedef struct gw_cshare gw_cshare;

typedef struct gw_cshare_opts {
	gw_contracts *contracts; /* borrowed, outlives the cshare */
	gw_peers *peers;         /* borrowed; destroyed BEFORE the cshare (its answers
	                            then ran: gw_peers_destroy waits for them) */
	int64_t call_timeout_ms; /* Peer.Contracts deadline; 0 = 5000 */
} gw_cshare_opts;

/* gw_cshare_create: GW_OK and *out (free with gw_cshare_destroy), GW_ENOMEM. */
gw_err gw_cshare_create(gw_cshare **out, const gw_cshare_opts *o);

/* gw_cshare_destroy withdraws every member's contracts and frees. Call it
 * after gw_peers_destroy and after the server that looks systems up here
 * is destroyed. Accepts NULL. */
void gw_cshare_destroy(gw_cshare *s);

/* gw_cshare_on_view takes a new membership view (borrowed for the call):
 * the type index is rebuilt from it, and each other member's contracts
 * are asked for, kept or withdrawn as its hash says. */
void gw_cshare_on_view(gw_cshare *s, const gw_view *v);

/* gw_cshare_served appends this member's contracts line to *served (the
 * registry's list, newline-separated; reallocated, caller frees) when its
 * hosts hold contracts, keeping it under max bytes; it also asks again the
 * members whose contracts FAILED. GW_OK or GW_ENOMEM (*served unchanged). */
gw_err gw_cshare_served(gw_cshare *s, char **served, size_t max);

/* gw_cshare_system finds the system in which actor type actor is served
 * by some member of the last view. Returns GW_OK (out, n bytes),
 * GW_ENOTFOUND (no member serves it: the caller may look at its own
 * registry, which the view shows a heartbeat later) or GW_ECONFIG (two
 * systems: why names them). */
gw_err gw_cshare_system(gw_cshare *s, const char *actor, char *out, size_t n, char *why, size_t wn);

/* ---- a type index: actor type -> the system serving it ------------------------------- */

/* An immutable index of "system/type" lines (other lines, starting with a
 * control character, are skipped). */
typedef struct gw_typeix gw_typeix;

/* gw_typeix_build indexes lines[0..n) (borrowed, copied). Returns the
 * index (free with gw_typeix_free), or NULL when out of memory. */
gw_typeix *gw_typeix_build(const char *const *lines, size_t n);
void gw_typeix_free(gw_typeix *x); /* accepts NULL */

/* gw_typeix_find: as gw_cshare_system, over x (NULL: GW_ENOTFOUND). A
 * binary search; x is only read (callers share it under their own lock). */
gw_err gw_typeix_find(const gw_typeix *x, const char *actor, char *out, size_t n, char *why,
                      size_t wn);

/* Counters for tests and the log: sets loaded, refused, failed asks. */
typedef struct gw_cshare_stats {
	uint64_t loaded, refused, failed;
} gw_cshare_stats;
void gw_cshare_get_stats(gw_cshare *s, gw_cshare_stats *out);

#endif
