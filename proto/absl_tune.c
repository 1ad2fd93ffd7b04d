/* absl_tune.c - see absl_tune.h.
 *
 * Debian's libabsl is built without NDEBUG, so Abseil's mutex deadlock
 * detection is on by default: every absl::Mutex lock and unlock inside gRPC
 * (one per call batch, one per TLS record protected or unprotected, ...)
 * also updates a process-wide lock graph under a global lock. That is a
 * debugging aid, off in Abseil's release builds. It costs the gateway 3 %
 * of its CPU per call in plaintext and about 10 % with mTLS, and a C host a
 * similar share (docs/benchmarks.md, "What security costs" and issue 15).
 * The setter is C++ (absl::SetMutexDeadlockDetectionMode, kIgnore = 0), so
 * it is looked up by its mangled name under the inline namespaces of the
 * builds we know; with none found (another build) nothing changes. */
#include "absl_tune.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

bool spawn_absl_deadlock_detection_off(void)
{
	static const char *const names[] = {
	    "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
	    "_ZN4absl12lts_2022062329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
	    "_ZN4absl29SetMutexDeadlockDetectionModeENS_15OnDeadlockCycleE",
	};
	const char *keep = getenv(SPAWN_ABSL_DEADLOCK_ENV);
	if (keep && !strcmp(keep, "1"))
		return false;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		void *sym = dlsym(RTLD_DEFAULT, names[i]);
		if (sym) {
			void (*set_mode)(int);
			memcpy(&set_mode, &sym, sizeof set_mode); /* object -> function pointer */
			set_mode(0);                              /* OnDeadlockCycle::kIgnore */
			return true;
		}
	}
	return false;
}
