/* itl.h - load on it-host's counter actors in any actor system, with a
 * record of every call, and the check of a stored state against it.
 *
 * A load drives n actors (UNNAMED instances of `parent`, or NAMED actors
 * when parent is NULL). Each actor keeps up to `window` Add{value 1, seq}
 * calls in flight, the next starting when one completes, until it has
 * started `limit` calls (raised by itl_allow) or the load stops. Call k
 * (from 0) of an actor carries seq = seq_base + k + 1, so the seqs stored
 * in an it.Counter say exactly which calls were applied.
 *
 * Everything runs on the client's callback thread and the test's thread;
 * the record is guarded by the load's mutex. Waits are condition waits
 * on completions, bounded by a timeout. No call is started while the
 * mutex is held.
 */
#ifndef SPAWN_TESTS_IT_ITL_H
#define SPAWN_TESTS_IT_ITL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <spawn/spawn.h>

#include "it.pb-c.h"

#define ITL_PENDING   (-1000) /* status of a call not completed yet */
#define ITL_UNLIMITED (1L << 40)

typedef struct itl_call {
	int64_t seq;
	int status;             /* spawn status; ITL_PENDING until completed */
	int64_t t_start, t_end; /* it_now_ms() */
} itl_call;

typedef struct itl_actor {
	char name[64];
	itl_call *calls; /* in start order */
	size_t n, cap;
	long limit; /* calls it may start in all */
	int inflight;
} itl_actor;

typedef struct itl_load {
	spawn_client *c; /* borrowed */
	char system[64];
	char parent[64]; /* "" = NAMED actors */
	int window;
	int64_t timeout_ms; /* per call */
	int64_t seq_base;
	size_t n_actors;
	itl_actor *actors;
	bool stopping;
	long inflight;
	pthread_mutex_t mu;
	pthread_cond_t cv;
} itl_load;

/* itl_init prepares a load of n actors named prefix (n == 1) or
 * prefix-NNN; nothing starts before itl_allow. parent NULL = NAMED. */
void itl_init(itl_load *l, spawn_client *c, const char *system, const char *parent,
              const char *prefix, size_t n, int window, int64_t seq_base);

/* itl_fini frees the record; the load must be idle (itl_stop). */
void itl_fini(itl_load *l);

/* itl_allow lets every actor start `more` calls (ITL_UNLIMITED: no
 * bound) and starts what the window allows. */
void itl_allow(itl_load *l, long more);

/* itl_wait waits until pred(l, arg) holds (called with the mutex held).
 * False on timeout. */
typedef bool (*itl_pred)(const itl_load *l, void *arg);
bool itl_wait(itl_load *l, itl_pred pred, void *arg, int64_t timeout_ms);

/* itl_idle: a predicate, true when no call is in flight and every actor
 * has started all it was allowed. */
bool itl_idle(const itl_load *l, void *arg);

/* itl_resume lets a stopped load start calls again (itl_allow). */
void itl_resume(itl_load *l);

/* itl_stop starts no more calls and waits until none is in flight. False
 * on timeout. */
bool itl_stop(itl_load *l, int64_t timeout_ms);

/* itl_count_locked counts the completed calls of actor i (SIZE_MAX: all
 * actors) with status `status` (ITL_ANY: any completed) that started at or
 * after t_from. Call it with the mutex held (in a predicate); itl_count
 * takes the mutex. */
#define ITL_ANY    (-2000)
#define ITL_NOT_OK (-3000)
long itl_count_locked(const itl_load *l, size_t i, int status, int64_t t_from);
long itl_count(itl_load *l, size_t i, int status, int64_t t_from);

/* itl_summary prints "label: N calls: K OK, ... by status" on stderr. */
void itl_summary(itl_load *l, const char *label);

/* itl_verify checks a stored counter against the calls of the loads that
 * drove one actor (ls[j]'s actor idx[j], j < k; their seq ranges must not
 * overlap): every OK call's seq is stored exactly once; every stored seq
 * belongs to a call that is OK or whose status is in extra (a bit mask of
 * 1 << status: calls that may have been applied without an answer); no
 * seq appears twice; adds == total == the number of seqs. Mutexes are
 * taken. Returns true, or false with the first problem in why. */
bool itl_verify(itl_load *const ls[], const size_t idx[], size_t k, const It__Counter *st,
                unsigned extra, char *why, size_t n);

/* itl_add / itl_get make one synchronous call, Add{value, seq} or Get,
 * on system/actor (parent NULL: a NAMED actor) and return its status. On OK, *out (when not NULL)
 * is the it.Total reply (free with protobuf_c_message_free_unpacked); msg (may be NULL) gets the
 * error message. */
int itl_add(spawn_client *c, const char *system, const char *actor, const char *parent,
            int64_t value, int64_t seq, It__Total **out, char *msg, size_t n);
int itl_get(spawn_client *c, const char *system, const char *actor, const char *parent,
            It__Total **out, char *msg, size_t n);

#endif
