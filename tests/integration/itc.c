/* itc.c - see itc.h. */
#include "itc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int itc_invoke(spawn_client *c, itc_actor a, const char *action, const ProtobufCMessage *m,
               int64_t timeout_ms, spawn_reply *r)
{
	spawn_payload p = {0};
	if (m && spawn_payload_pack(&p, m) != SPAWN_OK) {
		memset(r, 0, sizeof *r);
		r->status = SPAWN_ENOMEM;
		return SPAWN_ENOMEM;
	}
	spawn_request req = {
	    .system = ITC_SYSTEM,
	    .actor = a.name,
	    .parent = a.parent,
	    .action = action,
	    .payload = p,
	};
	int rc = spawn_client_invoke(c, &req, r, timeout_ms);
	spawn_payload_fini(&p);
	return rc;
}

It__Total *itc_total(const spawn_reply *r)
{
	It__Total *t = NULL;
	if (spawn_payload_unpack(&r->payload, &it__total__descriptor, (ProtobufCMessage **)&t) !=
	    SPAWN_OK)
		return NULL;
	return t;
}

static int finish(spawn_reply *r, int rc, int64_t *total, char *msg, size_t n)
{
	if (msg && n)
		snprintf(msg, n, "%s", r->message ? r->message : "");
	if (rc == SPAWN_OK) {
		It__Total *t = itc_total(r);
		if (!t) {
			rc = SPAWN_EPROTO;
			if (msg && n)
				snprintf(msg, n, "reply is not an it.Total");
		} else {
			*total = t->total;
			protobuf_c_message_free_unpacked(&t->base, NULL);
		}
	}
	spawn_reply_fini(r);
	return rc;
}

int itc_add(spawn_client *c, itc_actor a, int64_t value, int64_t seq, int64_t *total, char *msg,
            size_t n)
{
	It__Add add = IT__ADD__INIT;
	add.value = value;
	add.seq = seq;
	spawn_reply r;
	int rc = itc_invoke(c, a, "Add", &add.base, 30000, &r);
	return finish(&r, rc, total, msg, n);
}

int itc_get(spawn_client *c, itc_actor a, int64_t *total, char *msg, size_t n)
{
	spawn_reply r;
	int rc = itc_invoke(c, a, "Get", NULL, 30000, &r);
	return finish(&r, rc, total, msg, n);
}

/* ---- batches ------------------------------------------------------------- */

typedef struct itc_slot {
	itc_batch *b;
	size_t i;
} itc_slot;

void itc_batch_init(itc_batch *b, size_t n)
{
	memset(b, 0, sizeof *b);
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
	b->n = n;
	b->res = calloc(n, sizeof *b->res);
	b->slots = calloc(n, sizeof *b->slots);
	if (!b->res || !b->slots)
		abort();
	for (size_t i = 0; i < n; i++)
		b->res[i].status = -1000; /* not completed */
}

void itc_batch_fini(itc_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->res[i].total)
			protobuf_c_message_free_unpacked(&b->res[i].total->base, NULL);
	free(b->res);
	free(b->slots);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	memset(b, 0, sizeof *b);
}

/* Runs on the client's callback thread. */
static void on_reply(void *user, spawn_reply *r)
{
	itc_slot *s = user;
	itc_batch *b = s->b;
	itc_result *res = &b->res[s->i];
	res->status = r->status;
	snprintf(res->msg, sizeof res->msg, "%s", r->message ? r->message : "");
	if (r->status == SPAWN_OK)
		res->total = itc_total(r);
	pthread_mutex_lock(&b->mu);
	b->done++;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

int itc_batch_start(itc_batch *b, size_t i, spawn_client *c, itc_actor a, const char *action,
                    const ProtobufCMessage *m, int64_t timeout_ms)
{
	spawn_payload p = {0};
	if (m && spawn_payload_pack(&p, m) != SPAWN_OK)
		return SPAWN_ENOMEM;
	spawn_request req = {
	    .system = ITC_SYSTEM,
	    .actor = a.name,
	    .parent = a.parent,
	    .action = action,
	    .payload = p,
	};
	b->slots[i] = (itc_slot){b, i};
	int rc = spawn_client_invoke_async(c, &req, timeout_ms, on_reply, &b->slots[i]);
	spawn_payload_fini(&p);
	if (rc == SPAWN_OK) {
		pthread_mutex_lock(&b->mu);
		b->started++;
		pthread_mutex_unlock(&b->mu);
	}
	return rc;
}

bool itc_batch_wait(itc_batch *b, size_t count, int64_t timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->mu);
	int e = 0;
	while (b->done < count && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&b->cv, &b->mu, &ts);
	bool ok = b->done >= count;
	pthread_mutex_unlock(&b->mu);
	return ok;
}

size_t itc_batch_done(itc_batch *b)
{
	pthread_mutex_lock(&b->mu);
	size_t n = b->done;
	pthread_mutex_unlock(&b->mu);
	return n;
}
