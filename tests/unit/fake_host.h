/* fake_host.h - an in-memory stand-in for server/host.c, so the runtime is
 * unit-tested without gRPC: it records the tasks the runtime sends and lets
 * the test answer them. */
#ifndef FAKE_HOST_H
#define FAKE_HOST_H

#include <pthread.h>
#include <stdbool.h>

#include "runtime.h"

#define FAKE_MAX_TASKS 4096

typedef struct fake_task {
	uint64_t id;
	gw_inv *inv;
	Spawn__Gateway__V1__GatewayMessage *msg; /* decoded task; freed by fake_host_free */
	bool answered;
} fake_task;

struct gw_host {
	gw_target target; /* first: fake ops (send, cancel, hold, rele, live) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	bool live;
	uint64_t next_id;
	fake_task tasks[FAKE_MAX_TASKS];
	size_t ntasks;
	/* written: a cancelled task counts as written (GW_CANCEL_HELD: the
	 * test hands the hold back with gw_runtime_release); else as still
	 * queued (GW_CANCEL_UNSENT). */
	bool written;
	gw_actor *held; /* the last hold taken */
	size_t nheld;
};

void fake_host_init(gw_host *h);
void fake_host_free(gw_host *h);
/* fake_host_wait waits until at least n tasks were sent (5 s max). */
bool fake_host_wait(gw_host *h, size_t n);
/* fake_host_wait_ms: the same with a bound of ms milliseconds. */
bool fake_host_wait_ms(gw_host *h, size_t n, long ms);
/* payload value of a task: the Add.value int64 the tests send as varint */
const Spawn__ActorInvocation *fake_task_inv(gw_host *h, size_t i);

#endif
