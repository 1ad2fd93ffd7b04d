/* absl_tune.h - process-wide tuning of the Abseil that gRPC core runs on,
 * shared by the gateway (gateway/main.c) and the C SDK (sdk/c). */
#ifndef SPAWN_ABSL_TUNE_H
#define SPAWN_ABSL_TUNE_H

#include <stdbool.h>

/* The environment variable that keeps Abseil's deadlock detection as the
 * library built it: set to "1", spawn_absl_deadlock_detection_off does
 * nothing (docs/sdk/c.md "Abseil's deadlock detection"). */
#define SPAWN_ABSL_DEADLOCK_ENV "SPAWN_ABSL_DEADLOCK_DETECTION"

/* spawn_absl_deadlock_detection_off turns off Abseil's mutex deadlock
 * detection for the whole process, unless SPAWN_ABSL_DEADLOCK_ENV is "1".
 * Returns whether it did (false also when the running Abseil has no setter
 * we know). Call it before grpc_init; later calls are harmless (turning the
 * detection off never reports anything). Thread: any. Blocks: no. */
bool spawn_absl_deadlock_detection_off(void);

#endif
