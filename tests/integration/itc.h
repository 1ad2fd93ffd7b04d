/* itc.h - client helpers of the integration suites: the counter actor of
 * it-host (system "it") through libspawn, synchronous and in batches of
 * asynchronous calls.
 */
#ifndef SPAWN_TESTS_IT_ITC_H
#define SPAWN_TESTS_IT_ITC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <spawn/spawn.h>

#include "it.pb-c.h"

#define ITC_SYSTEM "it"

/* An actor address: name, and the UNNAMED template for instances (NULL
 * for the NAMED actor "counter"). */
typedef struct itc_actor {
	const char *name;
	const char *parent;
} itc_actor;

#define ITC_COUNTER ((itc_actor){"counter", NULL})

/* itc_invoke calls action of actor a with payload m (NULL = none). Returns
 * the status; *r is always initialized (spawn_reply_fini it). */
int itc_invoke(spawn_client *c, itc_actor a, const char *action, const ProtobufCMessage *m,
               int64_t timeout_ms, spawn_reply *r);

/* itc_total unpacks an it.Total reply; NULL if the reply is not one.
 * Free with protobuf_c_message_free_unpacked(&t->base, NULL). */
It__Total *itc_total(const spawn_reply *r);

/* itc_add / itc_get: Add(value, seq) / Get on a, returning the status and,
 * on success, the total in *total. msg (may be NULL) receives the error
 * message. */
int itc_add(spawn_client *c, itc_actor a, int64_t value, int64_t seq, int64_t *total, char *msg,
            size_t n);
int itc_get(spawn_client *c, itc_actor a, int64_t *total, char *msg, size_t n);

/* A batch of asynchronous invocations whose outcomes the test examines
 * after all have completed. */
typedef struct itc_result {
	int status;
	char msg[160];
	It__Total *total; /* owned by the batch; NULL unless OK with an it.Total */
} itc_result;

typedef struct itc_batch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t n, started, done;
	itc_result *res; /* n entries */
	struct itc_slot *slots;
} itc_batch;

void itc_batch_init(itc_batch *b, size_t n);
void itc_batch_fini(itc_batch *b);

/* itc_batch_start starts call i (< n) of the batch. Returns the status of
 * spawn_client_invoke_async. */
int itc_batch_start(itc_batch *b, size_t i, spawn_client *c, itc_actor a, const char *action,
                    const ProtobufCMessage *m, int64_t timeout_ms);

/* itc_batch_wait waits until `count` calls have completed. False on
 * timeout. */
bool itc_batch_wait(itc_batch *b, size_t count, int64_t timeout_ms);

/* itc_batch_done is how many calls have completed so far. */
size_t itc_batch_done(itc_batch *b);

#endif
