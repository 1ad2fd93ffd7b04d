/* registry.h - which actors exist and which hosts serve them.
 *
 *   system ("spawn-system") -> actor type ("incrementor": settings, actions)
 *                           -> bindings: connected hosts serving it, each
 *                              with the actions that host registered
 *
 * Registration rules (docs/protocol.md, "Registration"): a map key equals
 * ActorId.name, ActorId.system is empty or the registration's system, a
 * declared state_type is a message name or type URL, timer periods are at
 * least the floor. A host joining a type that other hosts serve must bring
 * the same settings (gw_actor_settings, state_type, timer actions, channel
 * subscriptions); settings change only when no other host serves the type.
 *
 * Type entry lifecycle:
 *
 *   SERVED ---- last binding gone (host left) -> ORPHAN     [calls: UNAVAILABLE]
 *   ORPHAN ---- a host registers it -----------> SERVED     [its settings win]
 *   ORPHAN ---- grace over --------------------> FORGOTTEN  [lookups: NOT_FOUND;
 *                                                            active actors idle out]
 *   FORGOTTEN - a host registers it -----------> SERVED     [same entry, revived]
 *   FORGOTTEN - no reference left, swept ------> (freed)    [its instances too]
 *
 * Invariants:
 *   1. A type pointer obtained from gw_registry_lookup or
 *      gw_registry_lookup_instance carries a reference (gw_registry_type_rele);
 *      a referenced type is never freed. Active actors hold one each.
 *   2. A freed type is first unlinked under the write lock, so no lookup
 *      can find it; only gw_registry_sweep frees types.
 *   3. There is at most one entry per (system, name): a FORGOTTEN entry
 *      stays in the table until freed, so actors still holding it and new
 *      registrations share it.
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
	int32_t min_pool_size; /* as registered (compared between hosts, not used) */
} gw_actor_settings;

/* An actor type. Fields are read-only after creation except where noted;
 * the struct lives while a reference is held (invariant 1). */
typedef struct gw_actor_type {
	char *system;               /* owned */
	char *name;                 /* owned */
	gw_actor_settings settings; /* guarded by the registry lock */
	gw_actor_timers timers;     /* guarded by the registry lock */
} gw_actor_type;

/* Options of gw_registry_create (NULL = the defaults). */
typedef struct gw_registry_opts {
	int64_t timer_floor_ms; /* shortest timer period accepted; >= 1; default 10 */
	int64_t grace_ms;       /* a type without host stays known this long; >= 0;
	                           default 60000 */
} gw_registry_opts;

#define GW_REGISTRY_TIMER_FLOOR_MS 10
#define GW_REGISTRY_GRACE_MS       60000

/* gw_registry_create makes an empty registry. opts (borrowed, may be NULL)
 * is copied. Returns GW_OK and *out (caller frees with
 * gw_registry_destroy), or GW_ENOMEM. */
gw_err gw_registry_create(gw_registry **out, const gw_registry_opts *opts);
void gw_registry_destroy(gw_registry *r);

/* gw_registry_register binds every actor of sys (borrowed) to host, which
 * gets one gw_host_hold per binding. A type no other host serves takes the
 * settings of this registration; a type another host serves must be
 * registered with the same settings. Returns GW_OK; GW_EINVAL (a rule of
 * docs/protocol.md is broken: empty system, key != ActorId.name, foreign
 * ActorId.system, bad state_type, no actions, timer period below the
 * floor); GW_ECONFIG (FAILED_PRECONDITION: settings differ from those of
 * a live host); GW_ENOMEM. On error why (caller's buffer of whylen bytes)
 * names the actor and the rule, and nothing new is bound. */
gw_err gw_registry_register(gw_registry *r, gw_host *host, const Spawn__Actors__ActorSystem *sys,
                            char *why, size_t whylen);

/* gw_registry_unbind_host removes every binding of host (it is gone) and
 * releases the references it held. */
void gw_registry_unbind_host(gw_registry *r, gw_host *host);

/* gw_registry_lookup finds the type of (system, actor).
 * Returns GW_OK and sets *type (a reference: release with
 * gw_registry_type_rele) and *settings (a copy, may be NULL), or
 * GW_ENOTFOUND. */
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

/* gw_registry_unspawn forgets instance `name` of system (borrowed): an
 * invocation by name no longer reaches it until it is spawned again
 * (Admin.Forget). GW_OK when it was known, GW_ENOTFOUND otherwise. */
gw_err gw_registry_unspawn(gw_registry *r, const char *system, const char *name);

/* gw_registry_lookup_instance finds a spawned instance: GW_OK and its
 * template's *type (a reference, as gw_registry_lookup) and *settings, or
 * GW_ENOTFOUND. */
gw_err gw_registry_lookup_instance(gw_registry *r, const char *system, const char *name,
                                   gw_actor_type **type, gw_actor_settings *settings);

/* gw_registry_knows_action tells whether a registration of type declared
 * action since the type last had no host (GW_OK) or not (GW_ENOTFOUND). */
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

/* gw_registry_type_hold / _rele take and drop a reference on a type the
 * caller already holds one on (invariant 1). Thread: any, no lock needed. */
void gw_registry_type_hold(gw_actor_type *type);
void gw_registry_type_rele(gw_actor_type *type);

/* gw_registry_check_state tells whether a result's state type URL
 * (borrowed) matches the state_type type declared: GW_OK (it does, or
 * none was declared), or GW_ECONFIG with msg naming both types. */
gw_err gw_registry_check_state(gw_registry *r, gw_actor_type *type, const char *type_url, char *msg,
                               size_t n);

/* gw_registry_sweep frees the FORGOTTEN types no one references, with
 * their instances.
 * Cheap when there is nothing to do (one atomic load). Returns how many
 * types were freed. Thread: any (the runtime's timer thread calls it). */
size_t gw_registry_sweep(gw_registry *r);

/* gw_registry_count returns how many type entries exist (ORPHAN and
 * FORGOTTEN ones not yet freed included). */
size_t gw_registry_count(gw_registry *r);

/* gw_registry_served writes the actor types that connected hosts serve now
 * (SERVED: at least one binding), as "system/actor" lines, and the channel
 * subscriptions of those that are NAMED or POOLED, one line each,
 * GW_SUB_MARK system GW_SUB_MARK actor GW_SUB_MARK topic GW_SUB_MARK action,
 * joined by '\n', sorted, into *out (caller frees; "" when none). The
 * cluster's membership publishes it, so every member knows the subscribers
 * of the others (docs/design/cluster.md, "Broadcasts across members").
 * Past GW_SERVED_MAX bytes the subscriptions are left out (logged).
 * Returns GW_OK or GW_ENOMEM (*out untouched). */
#define GW_SUB_MARK   '\x1f' /* a control character: the ingress refuses it in every name */
#define GW_SERVED_MAX 65536  /* = GW_MEMBER_TEXT_MAX (store.h): what a member row holds */
gw_err gw_registry_served(gw_registry *r, char **out);

/* gw_registry_served_gen: a number that changes whenever the types of
 * gw_registry_served may have (a binding added or dropped): a cache of
 * what it lists is current while the number is. Thread: any; no lock. */
uint64_t gw_registry_served_gen(gw_registry *r);

/* Reference counting and liveness of gRPC hosts, implemented by server/host.c
 * (the registry itself calls every target through its gw_target_ops). */
void gw_host_hold(gw_host *h);
void gw_host_rele(gw_host *h);
bool gw_host_live(gw_host *h);

/* One actor type, as gw_registry_foreach_type shows it: every pointer is
 * borrowed for the callback only. */
typedef struct gw_type_info {
	const char *system, *name;
	int kind;                   /* Spawn__Actors__Kind */
	size_t hosts;               /* bindings: hosts serving it now (0: ORPHAN or FORGOTTEN) */
	const char *const *actions; /* every action registered, sorted; n_actions */
	size_t n_actions;
	const char *state_type; /* declared state message; NULL = none */
} gw_type_info;
typedef void (*gw_type_info_fn)(void *user, const gw_type_info *t);

/* gw_registry_foreach_type calls fn once per type entry (order
 * unspecified) under the registry's read lock: fn copies what it keeps and
 * must not call into the registry. For listings (Admin.List). */
void gw_registry_foreach_type(gw_registry *r, gw_type_info_fn fn, void *user);

#endif
