/* fuzz_world.h - the gateway's runtime without gRPC, for the libFuzzer
 * targets that feed decoded client requests and host messages through the
 * code the server runs after decoding (server.c, host.c, admin.c hand the
 * decoded messages to these same runtime and registry functions).
 *
 * One world per fuzzing process, built on first use: an in-memory SQLite
 * statestore, the persist thread, a registry in which the fake host
 * (tests/unit/fake_host.c) registered system "fz" (NAMED "counter",
 * UNNAMED template "counters", both stateful with actions Add and Get;
 * stateless NAMED "echo"), and a runtime over them.
 *
 * Thread: the fuzzer's thread only. Every wait is bounded (FW_WAIT_MS);
 * a wait that runs out aborts, so a hang is reported as a crash with its
 * input.
 */
#ifndef SPAWN_TESTS_FUZZ_WORLD_H
#define SPAWN_TESTS_FUZZ_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_host.h"
#include "persist.h"
#include "registry.h"
#include "runtime.h"
#include "store.h"

#define FW_SYSTEM  "fz"
#define FW_KEY     "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
#define FW_STATE   "type.googleapis.com/fz.State"
#define FW_WAIT_MS 10000

/* Every member is owned by the world and torn down at exit (fw_destroy). */
typedef struct fw_world {
	gw_store *store;     /* owned: sqlite::memory: */
	gw_persist *persist; /* owned: over store */
	gw_registry *reg;    /* owned */
	gw_runtime *rt;      /* owned: over reg and persist */
	gw_host host;        /* the fake host serving system "fz" */
	gw_host other;       /* a second fake host, for registrations under test */
} fw_world;

/* fw_get builds the world on the first call and returns it (static
 * storage; torn down at exit, so no thread of it outlives main). Aborts
 * when it cannot be built. */
fw_world *fw_get(void);

/* fw_run submits inv (owned by the runtime from here; inv->done and
 * inv->user are set here) with gw_runtime_invoke, or gw_runtime_enqueue
 * when enqueue is true, and answers every task the fake host receives with
 * a canned OK result (state 8 bytes, reply 8 bytes) until inv is done.
 * Returns the invocation's error (GW_OK, or the refusal of an enqueue). */
gw_err fw_run(fw_world *w, gw_inv *inv, bool enqueue);

/* fw_task_for_result submits an invocation of fz/counter.Add and waits
 * until the fake host holds its task; returns the task's index in
 * w->host.tasks (the caller answers it with gw_runtime_result, then calls
 * fw_finish), or SIZE_MAX when the invocation ended without a task. */
size_t fw_task_for_result(fw_world *w);

/* fw_finish answers every other task with the canned result until the
 * invocation of fw_task_for_result is done. */
void fw_finish(fw_world *w);

/* fw_quiesce answers what is left and empties the fake hosts' task tables
 * (so they never fill up over millions of inputs). */
void fw_quiesce(fw_world *w);

/* fw_canned_result fills res (and the caller storage behind it) with the
 * canned OK answer to request id. */
typedef struct fw_canned {
	int64_t v;
	Google__Protobuf__Any st, rp;
	Spawn__Context ctx;
	Spawn__ActorInvocationResponse r;
	Spawn__Gateway__V1__InvocationResult res;
} fw_canned;
void fw_canned_result(fw_canned *c, uint64_t id);

#endif
