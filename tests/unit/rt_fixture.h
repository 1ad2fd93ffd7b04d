/* rt_fixture.h - the runtime fixture shared by the unit tests of the
 * runtime (bounds_test.c, type_lifetime_test.c, runtime_test.c): a real
 * SQLite store in a fresh temp dir with its persist thread, a fake host
 * (fake_host.h), the outcomes of finished invocations, and helpers to
 * register actors, build requests and answer tasks.
 *
 * The fixture's objects are globals of the test program (Check runs each
 * test in its own process): rtf_open creates store, persist and host; the
 * test creates reg and rt (their options differ); rtf_close stops and
 * frees everything in the gateway's two phases (STYLE 11).
 */
#ifndef RT_FIXTURE_H
#define RT_FIXTURE_H

#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "fake_host.h"
#include "persist.h"
#include "registry.h"
#include "runtime.h"
#include "store.h"

#define KEY        "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
#define STATE_TYPE "type.googleapis.com/test.State"

extern char dir[64], url[128]; /* the temp dir and the store URL (sqlite://DIR/state.db) */
extern gw_store *store;        /* owned by the fixture: rtf_open / rtf_close */
extern gw_persist *persist;    /* owned by the fixture: rtf_open / rtf_close */
extern gw_registry *reg;       /* created by the test; rtf_close destroys it if set */
extern gw_runtime *rt;         /* created by the test; rtf_close destroys it if set */
extern gw_host host;           /* the fake host: rtf_open / rtf_close */

/* The outcome of a finished invocation, in the order they finished. */
typedef struct outcome {
	gw_err err;
	int host_code;
	char msg[1024];
	int64_t reply;       /* an 8-byte reply payload, -1 = none */
	int tag;             /* gw_inv.user as an int */
	bool not_dispatched; /* the answer carries spawn-retry: not-dispatched */
	int64_t at_ms;       /* monotonic ms when it was answered */
} outcome;

#define RTF_MAX_OUTS 8192
extern pthread_mutex_t omu; /* guards outs and nouts while the runtime runs */
extern pthread_cond_t ocv;  /* broadcast (under omu) when an outcome is recorded */
extern outcome outs[RTF_MAX_OUTS];
extern size_t nouts;

/* rtf_open makes the temp dir /tmp/spawn-<tag>-XXXXXX, opens the store
 * (KEY) and its persist thread (batches of 64), initializes the fake host
 * and clears the outcomes (asserts). */
void rtf_open(const char *tag);

/* rtf_close stops rt (if set) and drains persist while the actors are
 * alive, then frees rt, persist, reg (if set), the store and the host and
 * removes the temp dir (asserts). */
void rtf_close(void);

/* on_done is the gw_inv.done of the tests: it records the outcome (tag =
 * gw_inv.user) and frees inv. */
void on_done(gw_inv *inv);

/* wait_outs waits up to 5 s until n outcomes are recorded; false if not. */
bool wait_outs(size_t n);

/* outs_count is how many outcomes are recorded now. */
size_t outs_count(void);

/* decode_i64: the int64 of an 8-byte payload, -1 for any other length. */
int64_t decode_i64(const uint8_t *p, size_t n);

/* wait_until polls a condition every 2 ms for at most 5 s: a readiness
 * wait for effects of the runtime's own timers. */
#define wait_until(cond)                                                                           \
	do {                                                                                       \
		for (int i_ = 0; i_ < 2500 && !(cond); i_++)                                       \
			nanosleep(&(struct timespec){0, 2000000}, NULL);                           \
	} while (0)

/* rtf_actor: one actor of a registration, its name and settings (both
 * borrowed for the call). */
typedef struct rtf_actor {
	const char *name;
	const Spawn__Actors__ActorSettings *settings;
} rtf_actor;

/* rtf_register registers system with n actors, each with the actions
 * named in actions (NULL-terminated), for host h in reg. Returns what
 * gw_registry_register returns; why (whylen bytes) gets its message. */
gw_err rtf_register(gw_host *h, const char *system, const rtf_actor *actors, size_t n,
                    const char *const actions[], char *why, size_t whylen);

/* rtf_request builds in a (the invocation's arena) a request for action
 * of system/actor without a payload; the caller adds one. */
Spawn__InvocationRequest *rtf_request(spawn_arena *a, const char *system, const char *actor,
                                      const char *action);

/* rtf_take marks task i of h answered (asserting it was not) and returns
 * its invocation, setting *id to its request id. */
gw_inv *rtf_take(gw_host *h, size_t i, uint64_t *id);

/* rtf_respond hands the runtime the response r (borrowed for the call)
 * to request id of inv. */
void rtf_respond(gw_inv *inv, uint64_t id, Spawn__ActorInvocationResponse *r);

/* A test of a suite: the TCase name and the test. */
typedef struct rtf_case {
	const char *name;
	const TTest *test;
} rtf_case;

/* rtf_suite makes the Suite name with one TCase per case (n of them, the
 * array borrowed for the call), each with setup and teardown as its
 * checked fixture and a timeout of 30 s. RTF_SUITE counts the cases. */
Suite *rtf_suite(const char *name, const rtf_case *cases, size_t n, void (*setup)(void),
                 void (*teardown)(void));
#define RTF_SUITE(name, cases, setup, teardown)                                                    \
	rtf_suite((name), (cases), sizeof(cases) / sizeof((cases)[0]), (setup), (teardown))

/* rtf_run runs s (and frees it) and returns the exit status for main. */
int rtf_run(Suite *s);

#endif
