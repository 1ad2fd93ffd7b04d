#include "fake_host.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const gw_target_ops fake_ops;

void fake_host_init(gw_host *h)
{
	memset(h, 0, sizeof *h);
	h->target.ops = &fake_ops;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->live = true;
}

void fake_host_free(gw_host *h)
{
	for (size_t i = 0; i < h->ntasks; i++)
		if (h->tasks[i].msg)
			spawn__gateway__v1__gateway_message__free_unpacked(h->tasks[i].msg, NULL);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
}

void gw_host_hold(gw_host *h)
{
	pthread_mutex_lock(&h->mu);
	h->refs++;
	pthread_mutex_unlock(&h->mu);
}

void gw_host_rele(gw_host *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->refs--;
	pthread_mutex_unlock(&h->mu);
}

bool gw_host_live(gw_host *h)
{
	return h->live;
}

static gw_err fake_send(gw_host *h, gw_inv *inv, gw_task_build_fn build)
{
	pthread_mutex_lock(&h->mu);
	if (!h->live || h->ntasks == FAKE_MAX_TASKS) {
		pthread_mutex_unlock(&h->mu);
		return GW_EUNAVAIL;
	}
	uint64_t id = ++h->next_id;
	grpc_byte_buffer *bb = build(inv, id);
	ProtobufCMessage *m = NULL;
	spawn_wire_unpack(&spawn__gateway__v1__gateway_message__descriptor, bb, NULL, &m);
	grpc_byte_buffer_destroy(bb);
	inv->req_id = id;
	h->tasks[h->ntasks++] =
	    (fake_task){id, inv, (Spawn__Gateway__V1__GatewayMessage *)m, false};
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	return GW_OK;
}

static int fake_cancel(gw_host *h, uint64_t req_id, gw_actor *hold, int64_t expiry_ms)
{
	(void)expiry_ms;
	int r = GW_CANCEL_GONE;
	pthread_mutex_lock(&h->mu);
	for (size_t i = 0; i < h->ntasks; i++)
		if (h->tasks[i].id == req_id && !h->tasks[i].answered) {
			h->tasks[i].answered = true;
			r = h->written ? GW_CANCEL_HELD : GW_CANCEL_UNSENT;
			if (h->written) {
				h->held = hold;
				h->nheld++;
			}
		}
	pthread_mutex_unlock(&h->mu);
	return r;
}

static const gw_target_ops fake_ops = {
    .version = GW_TARGET_OPS_VERSION,
    .send = fake_send,
    .cancel = fake_cancel,
    .hold = gw_host_hold,
    .rele = gw_host_rele,
    .live = gw_host_live,
};

bool fake_host_wait(gw_host *h, size_t n)
{
	return fake_host_wait_ms(h, n, 5000);
}

bool fake_host_wait_ms(gw_host *h, size_t n, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&h->mu);
	while (h->ntasks < n)
		if (pthread_cond_timedwait(&h->cv, &h->mu, &ts))
			break;
	bool ok = h->ntasks >= n;
	pthread_mutex_unlock(&h->mu);
	return ok;
}

const Spawn__ActorInvocation *fake_task_inv(gw_host *h, size_t i)
{
	return h->tasks[i].msg ? h->tasks[i].msg->invocation->invocation : NULL;
}
