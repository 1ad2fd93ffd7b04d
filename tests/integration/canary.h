/* canary.h - the well-behaved client that every adversarial integration
 * test keeps running beside its hostile peer (BRIEF, issue 9 item 8): a
 * thread that calls one actor in a loop on its own client and counts
 * healthy and failed calls, so the test can assert that the neighbour of
 * the hostile peer was not hurt.
 *
 *     it_canary k;
 *     it_canary_start(&k, gw.target, NULL, NULL);   // Add(1) on it/counter
 *     ... the hostile part ...
 *     it_canary_stop(&k, 5, it_ms(2000));           // >= 5 calls, all OK, each < 2 s
 */
#ifndef SPAWN_TESTS_IT_CANARY_H
#define SPAWN_TESTS_IT_CANARY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <spawn/spawn.h>

/* it_canary_call makes one call of the canary on c (borrowed, the canary's
 * own client) with user (borrowed, as given to it_canary_start). Returns
 * true when the call was healthy; else writes why into err (n bytes) and
 * returns false. Runs on the canary's thread. */
typedef bool (*it_canary_call)(spawn_client *c, void *user, char *err, size_t n);

/* it_canary_add_counter is the default call: Add(1) on it-host's NAMED
 * actor it/counter must answer OK. */
bool it_canary_add_counter(spawn_client *c, void *user, char *err, size_t n);

typedef struct it_canary {
	/* Counts: read under mu while it runs, freely after it_canary_stop. */
	long ok, failed;
	int64_t worst_ms;    /* the slowest call, healthy or not */
	char first_err[300]; /* why the first failed call failed */
	pthread_mutex_t mu;
	/* private */
	pthread_cond_t cv;
	pthread_t th;
	bool stop, running;
	spawn_client *client; /* owned, destroyed when the thread is joined */
	it_canary_call call;
	void *user; /* borrowed until the canary is stopped */
} it_canary;

/* it_canary_start starts the canary against target (borrowed for the
 * call) with call (NULL: it_canary_add_counter) and user. Asserts (Check)
 * that its client and thread start. k is overwritten. */
void it_canary_start(it_canary *k, const char *target, it_canary_call call, void *user);

/* it_canary_progress waits (up to 20 s, scaled) until the canary has made n
 * more healthy calls, so that it ran beside the step before, and asserts
 * that no call failed so far. */
void it_canary_progress(it_canary *k, long n);

/* it_canary_stop stops the canary and asserts it stayed healthy: no call
 * failed, at least min_ok calls were healthy (waiting for them, as
 * it_canary_progress does, when fewer were made by now), and (worst_ms > 0)
 * every call took less than worst_ms. Prints the counts on stderr. */
void it_canary_stop(it_canary *k, long min_ok, int64_t worst_ms);

/* it_canary_abandon stops a canary that may still run, asserting nothing
 * (for teardowns). Does nothing on a zeroed or stopped canary. */
void it_canary_abandon(it_canary *k);

#endif
