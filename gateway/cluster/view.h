/* view.h - the membership view: who is in the cluster, as one member sees it.
 *
 * The membership module (membership.c) publishes views as immutable,
 * refcounted snapshots (gw_cluster_view_hold / gw_view_rele); placement and
 * routing only read them. The layout is fixed by the issue 11 brief so that
 * the parts built in parallel fit. docs/design/cluster.md. */
#ifndef GW_CLUSTER_VIEW_H
#define GW_CLUSTER_VIEW_H

#include <stddef.h>
#include <stdint.h>

/* Member statuses GW_MEMBER_JOINING..DEAD, as stored in
 * spawn_members.status, come from store.h. */
#include "store.h"

/* One member. Every string is owned by the view that holds the member. */
typedef struct gw_member {
	const char *id;            /* "advertise@start_ms" plus a random suffix; unique per start */
	const char *address;       /* the advertised HOST:PORT peers dial */
	int status;                /* GW_MEMBER_* */
	const char *const *served; /* "system/actor_type" its hosts serve */
	size_t n_served;
} gw_member;

/* A view: immutable once published. members is owned by the view. */
typedef struct gw_view {
	uint64_t version;
	size_t n;
	const gw_member *members;
	size_t self; /* index of this member, or SIZE_MAX when fenced */
} gw_view;

#endif
