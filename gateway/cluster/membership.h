/* membership.h - the members of a cluster of gateways on one PostgreSQL or
 * MariaDB store, and the view of them each member publishes.
 *
 * The design note, with the member states and the timing argument of
 * self-fencing, is docs/design/cluster.md ("Membership"). In short:
 *
 *   (none) --- join ------------------> JOINING   [row inserted, new id]
 *   JOINING -- first heartbeat -------> ACTIVE    ["member ID joined"]
 *   ACTIVE --- gw_cluster_leave ------> LEAVING   [published before the drain]
 *   LEAVING -- gw_cluster_destroy ----> (gone)    [row removed]
 *   any ------ declared by a peer ----> DEAD      [conditional update]
 *   any ------ own row DEAD or gone,
 *              or no heartbeat for
 *              fence_after_ms --------> FENCED    [on_fenced; view self = SIZE_MAX]
 *   FENCED --- database reachable ----> JOINING   [old row marked DEAD, then a new id]
 *
 * Invariants:
 *   1. A member fences itself before any peer can declare it dead: it
 *      stops serving fence_after_ms = member_timeout_ms - margin after
 *      the SEND time of its last successful heartbeat, and a peer
 *      declares only after member_timeout_ms of database time since the
 *      heartbeat was WRITTEN, which is after it was sent.
 *   2. A member is declared dead by one conditional update that names the
 *      heartbeat the declarer saw: exactly one declarer wins, and a member
 *      that heartbeated meanwhile is not declared.
 *   3. A view is immutable once published; its version grows by one at
 *      each change of members, statuses, addresses, served types or self.
 *   4. Every statestore call of the membership runs on its own thread and
 *      its own store handle (one connection): never on a completion-queue
 *      thread, and never queued behind the persist thread's saves.
 *
 * Threads: the membership thread (join, heartbeat, list, declare, leave)
 * and its fence clock (a thread that only watches the time of the last
 * heartbeat, so a database call that hangs cannot delay the fence).
 * Callbacks run on one of them, one at a time (never concurrently).
 */
#ifndef GW_CLUSTER_MEMBERSHIP_H
#define GW_CLUSTER_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"
#include "store.h"

typedef struct gw_cluster gw_cluster;

/* gw_member and gw_view (view.h): an immutable snapshot of the live
 * members (DEAD rows left out), sorted by id, reference counted:
 * gw_cluster_view_hold / the on_view callback hand one out; gw_view_rele
 * drops it. Every pointer in it is owned by the view. */
#include "view.h"

typedef struct gw_cluster_opts {
	const char *advertise; /* HOST:PORT; borrowed during create (copied) */
	int64_t heartbeat_ms;  /* > 0 and < member_timeout_ms / 2 */
	int64_t member_timeout_ms;
	/* served: what this member's hosts serve, as newline-separated
	 * "system/actor_type" lines, sorted, into *out (caller frees); GW_OK or
	 * an error (then the last list stays). Called on the membership thread
	 * at each heartbeat (the gateway passes gw_registry_served). NULL:
	 * nothing served. */
	gw_err (*served)(void *user, char **out);
	/* probe: is member m alive (a direct call to it, within timeout_ms)?
	 * Called on the membership thread before a silent member is declared
	 * dead; false or NULL = it did not answer. m is borrowed. */
	bool (*probe)(void *user, const gw_member *m, int64_t timeout_ms);
	/* on_view: a new view; v is borrowed for the call (keep it with
	 * gw_view_hold). May be NULL. */
	void (*on_view)(void *user, gw_view *v);
	/* on_joined: this member is ACTIVE under id (borrowed for the call). */
	void (*on_joined)(void *user, const char *id);
	/* on_fenced: this member stopped being one (id, borrowed: the old id;
	 * why: a reason for the log). The runtime drops its activations. */
	void (*on_fenced)(void *user, const char *id, const char *why);
	void *user;
} gw_cluster_opts;

/* gw_cluster_create makes the membership of this gateway. store: takes
 * ownership on GW_OK (the membership's own handle: open it with pool size
 * 1; closed by gw_cluster_destroy). Nothing runs until gw_cluster_start.
 * Returns GW_OK and *out; GW_EINVAL (bad options: no advertise, timings);
 * GW_ECONFIG (the store has no members table: GW_STORE_CLUSTER_NEEDS);
 * GW_ENOMEM. Does not block. */
gw_err gw_cluster_create(gw_cluster **out, gw_store *store, const gw_cluster_opts *o);

/* gw_cluster_start starts the membership thread (it joins at once and
 * keeps trying while the database is unreachable) and the fence clock.
 * GW_OK or GW_ENOMEM. */
gw_err gw_cluster_start(gw_cluster *c);

/* gw_cluster_leave marks this member LEAVING (heartbeats go on with that
 * status, published to the peers) and waits up to timeout_ms for the
 * database to take it. true: written. Call before the drain of SIGTERM.
 * Blocks: up to timeout_ms. Thread: any but the callbacks'. */
bool gw_cluster_leave(gw_cluster *c, int64_t timeout_ms);

/* gw_cluster_destroy stops the threads, removes this member's row (a
 * member that is not fenced; one try), closes the store and frees. Views
 * held stay valid. Accepts NULL. Blocks: one database call at most. */
void gw_cluster_destroy(gw_cluster *c);

/* gw_cluster_view_hold returns the current view (a reference: drop with
 * gw_view_rele); never NULL after create (version 0: nobody yet). */
gw_view *gw_cluster_view_hold(gw_cluster *c);
gw_view *gw_view_hold(gw_view *v); /* another reference to v; returns v */
void gw_view_rele(gw_view *v);     /* accepts NULL */

/* gw_cluster_serving tells whether this member may serve its activations
 * now: joined, not fenced, and its last successful heartbeat was sent
 * less than fence_after_ms ago (checked on the clock at each call, so it
 * is exact even when the fence clock thread was not scheduled). Does not
 * block. Thread: any. */
bool gw_cluster_serving(gw_cluster *c);

/* gw_cluster_fence_after_ms: member_timeout_ms minus the safety margin
 * (docs/design/cluster.md): how long after the send of its last successful
 * heartbeat a member fences itself. */
int64_t gw_cluster_fence_after_ms(int64_t heartbeat_ms, int64_t member_timeout_ms);

#endif
