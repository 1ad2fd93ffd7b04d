/* registry.h - which actors exist and which hosts serve them.
 *
 *   system ("spawn-system") -> actor type ("incrementor": settings, actions)
 *                           -> bindings: connected hosts serving it, each
 *                              with the actions that host registered
 *
 * A type, once registered, stays known for the life of the process even
 * when its last host leaves: invoking it then answers UNAVAILABLE (a host
 * is missing), not NOT_FOUND (no such actor). Types are never freed before
 * gw_registry_destroy, so actors may keep a plain pointer to theirs.
 *
 * Thread: all functions are thread-safe (one rwlock). Lock order: a shard
 * lock may be held when calling in; the host lock must not be.
 */
#ifndef GW_REGISTRY_H
#define GW_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"
#include "wire.h"

typedef struct gw_registry gw_registry;
typedef struct gw_host gw_host; /* server/host.h; the registry only holds references */

#define GW_MAX_TIMERS 8

/* A timer action: runs every period_ms while an instance is active. */
typedef struct gw_timer_def {
	char name[64];     /* the action */
	int64_t period_ms; /* FixedTimerAction.seconds, read as milliseconds (as Spawn) */
} gw_timer_def;

/* The timer actions of a type. */
typedef struct gw_actor_timers {
	int n;
	gw_timer_def def[GW_MAX_TIMERS];
} gw_actor_timers;

/* The settings the runtime applies to every instance of a type. Copied
 * out by value (small: the hot path copies it); never borrowed across the
 * lock. */
typedef struct gw_actor_settings {
	int kind; /* Spawn__Actors__Kind */
	bool stateful;
	int64_t snapshot_ms;   /* 0 = save only on checkpoint/deactivation */
	int64_t deactivate_ms; /* 0 = the gateway default */
	int32_t max_pool_size; /* POOLED: invocations in parallel; 0 = gateway default */
} gw_actor_settings;

/* An actor type. Fields are read-only after creation except where noted;
 * the struct lives until gw_registry_destroy. */
typedef struct gw_actor_type {
	char *system;               /* owned */
	char *name;                 /* owned */
	gw_actor_settings settings; /* guarded by the registry lock */
	gw_actor_timers timers;     /* guarded by the registry lock */
} gw_actor_type;

gw_err gw_registry_create(gw_registry **out);
void gw_registry_destroy(gw_registry *r);

/* gw_registry_register binds every actor of sys (borrowed) to host, which
 * gets one gw_host_hold per binding. Re-registering an actor updates its
 * settings (latest wins) and actions. Returns GW_OK, GW_EINVAL with *why
 * set to a static message (empty system name, an actor without a name,
 * an actor without actions), or GW_ENOMEM. Nothing is bound on error. */
gw_err gw_registry_register(gw_registry *r, gw_host *host, const Spawn__Actors__ActorSystem *sys,
                            const char **why);

/* gw_registry_unbind_host removes every binding of host (it is gone) and
 * releases the references it held. */
void gw_registry_unbind_host(gw_registry *r, gw_host *host);

/* gw_registry_lookup finds the type of (system, actor).
 * Returns GW_OK and sets *type (stable pointer) and *settings (a copy),
 * or GW_ENOTFOUND. */
gw_err gw_registry_lookup(gw_registry *r, const char *system, const char *actor,
                          gw_actor_type **type, gw_actor_settings *settings);

/* gw_registry_settings / gw_registry_timers copy the current settings or
 * timer actions of a type (a stable pointer from lookup): no name lookup. */
void gw_registry_settings(gw_registry *r, gw_actor_type *type, gw_actor_settings *out);
void gw_registry_timers(gw_registry *r, gw_actor_type *type, gw_actor_timers *out);

/* gw_registry_spawn records an instance `name` of the UNNAMED actor
 * `parent` in system (all borrowed, copied), so invocations by name reach
 * it. Idempotent. Returns GW_OK; GW_ENOTFOUND (no such parent);
 * GW_EINVAL (parent is not UNNAMED, or name is taken by a registered
 * actor or by an instance of another template); GW_ENOMEM.
 * *created (may be NULL) tells whether this call added it (the runtime
 * then records it in the statestore, so it survives restarts). */
gw_err gw_registry_spawn(gw_registry *r, const char *system, const char *name, const char *parent,
                         bool *created);

/* gw_registry_lookup_instance finds a spawned instance: GW_OK and its
 * template's *type and *settings, or GW_ENOTFOUND. */
gw_err gw_registry_lookup_instance(gw_registry *r, const char *system, const char *name,
                                   gw_actor_type **type, gw_actor_settings *settings);

/* gw_registry_knows_action tells whether any registration of type ever
 * declared action (GW_OK) or not (GW_ENOTFOUND). */
gw_err gw_registry_knows_action(gw_registry *r, gw_actor_type *type, const char *action);

/* gw_registry_pick chooses a live host for action on type, round robin
 * over the hosts that registered that action.
 * Returns GW_OK and *host with a reference the caller releases
 * (gw_host_rele); GW_ENOTFOUND when no registration of the type ever had
 * the action; GW_EUNAVAIL when it had but no host serving it is live. */
gw_err gw_registry_pick(gw_registry *r, gw_actor_type *type, const char *action, gw_host **host);

/* gw_registry_subscribers calls fn(user, actor, action) for every NAMED
 * or POOLED actor of system subscribed to topic (Metadata.channel_group);
 * action is the channel's action, "receive" when it names none. Strings
 * are borrowed for the call. fn runs under the registry's read lock: it
 * must not call back into the registry. Returns how many were found. */
size_t gw_registry_subscribers(gw_registry *r, const char *system, const char *topic,
                               void (*fn)(void *user, const char *actor, const char *action),
                               void *user);

/* Reference counting and liveness of hosts, implemented by server/host.c. */
void gw_host_hold(gw_host *h);
void gw_host_rele(gw_host *h);
bool gw_host_live(gw_host *h);

#endif
