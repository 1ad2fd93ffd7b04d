/* gm.h - the gateway's own metrics: the families it records into on its
 * paths (invocations, latencies, activations, the statestore, schedules)
 * over the registry of metrics.h. The list, with labels and meanings, is
 * in docs/operations.md ("Metrics").
 *
 * Every function accepts a NULL gw_gm and then does nothing: with
 * --metrics off no gw_gm exists, and what the hot path pays is one test.
 *
 * Labels are bounded (metrics.h): system, actor (the actor's TYPE: a
 * NAMED or POOLED actor's name, an UNNAMED instance's template; never an
 * instance name or any other actor id), action (one the actor's type
 * declares, or a built-in read), status (a gRPC status name), op (a store
 * operation). Invocations that never reached an actor (unknown names,
 * refused at resolve) are counted under system, actor and action "_none",
 * so a client cannot grow a label set with names it makes up.
 *
 * Recording looks a label set's series up in a per-thread cache (gm.c),
 * so a recording thread takes no lock once it has seen a label set.
 *
 * Thread safety: create before the threads that record start; record from
 * any thread; destroy after they are gone. */
#ifndef GW_GM_H
#define GW_GM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"
#include "metrics.h"

typedef struct gw_gm gw_gm;

/* Store operations timed by the persist thread (op label). */
typedef enum gw_gm_op {
	GW_GM_OP_ACTIVATE, /* activation batches: epochs + rows */
	GW_GM_OP_READ,     /* reads of a revision (GetState, restores) */
	GW_GM_OP_SAVE,     /* save batches (group commit) */
	GW_GM_OP_LIST,     /* revision listings */
	GW_GM_OP_INSTANCE, /* instance records (put, get) */
	GW_GM_OP_SCHEDULE, /* scheduled invocations (put, claim, delete batches) */
	GW_GM_OP_OTHER,    /* the rest: effects listings, releases, admin calls */
	GW_GM_OP_COUNT
} gw_gm_op;

/* gw_gm_create makes the registry (with the process_* families) and the
 * gateway's families. Returns NULL when out of memory. Caller frees with
 * gw_gm_destroy. */
gw_gm *gw_gm_create(void);
void gw_gm_destroy(gw_gm *g);

/* gw_gm_registry: the registry (owned by g) where the other parts add
 * their scrape-time gauges. NULL for a NULL g. */
gw_metrics *gw_gm_registry(gw_gm *g);

/* gw_gm_now_ns: the monotonic clock the latencies use (0 when g is NULL,
 * so a gateway without metrics does not read the clock). */
int64_t gw_gm_now_ns(const gw_gm *g);

/* gw_gm_invocation counts one finished invocation and its latencies
 * (ns; a stage the call never reached is 0 and not observed: t_enq = 0
 * no total, t_disp = 0 no queue wait or host time; t_end from
 * gw_gm_now_ns). system, actor, action are NULL for an invocation that
 * never reached an actor ("_none"). Strings borrowed. */
void gw_gm_invocation(gw_gm *g, const char *system, const char *actor, const char *action,
                      gw_err err, int64_t t_enq, int64_t t_disp, int64_t t_end);

/* gw_gm_mailbox_depth observes the depth of a mailbox right after a push. */
void gw_gm_mailbox_depth(gw_gm *g, uint32_t depth);

/* gw_gm_activation counts an activation (true) or a deactivation (false)
 * of an actor of type system/actor; spawn_actors_active is their
 * difference, per type, at scrape time. */
void gw_gm_activation(gw_gm *g, const char *system, const char *actor, bool activated);

/* gw_gm_activation_latency observes an activation's time from its
 * submission to the statestore's answer (ns). */
void gw_gm_activation_latency(gw_gm *g, int64_t ns);

/* gw_gm_store observes one store operation: its duration (ns), the rows it
 * carried (batches; 0 = not a batch) and whether it failed. */
void gw_gm_store(gw_gm *g, gw_gm_op op, size_t rows, int64_t ns, bool failed);

/* gw_gm_schedule_lateness observes how late a scheduled invocation was
 * handed to the runtime (ms after its due time; negative counts as 0). */
void gw_gm_schedule_lateness(gw_gm *g, int64_t late_ms);

#endif
