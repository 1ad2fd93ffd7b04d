/* fuzz_host_message.c - libFuzzer target: what an actor host sends on its
 * Connect stream (spawn.gateway.v1.HostMessage), decoded and handled as
 * server/host.c does.
 *
 * Input: one HostMessage. It is wrapped in a grpc_byte_buffer and decoded
 * with spawn_wire_unpack (recv_tag); then, as handle_message does:
 *   registration  gw_registry_register by a second fake host (the world's
 *                 own host keeps serving system "fz"), which is then
 *                 unbound, as when its stream ends;
 *   result        the answer to a real task: the world invokes
 *                 fz/counter.Add, the fake host takes the task, and the
 *                 fuzzed InvocationResult (its request_id set to the task's,
 *                 as host.c matches it) goes to gw_runtime_result, with its
 *                 state, reply, tags, checkpoint and workflow (side
 *                 effects, pipe, forward, broadcast). Tasks the workflow
 *                 starts are answered with the canned result.
 *   anything else is refused as host.c refuses it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_world.h"
#include "wire.h"
#include "wirecheck.h"

/* ingress_ok: the checks host.c applies to a decoded HostMessage before
 * handle_message acts on it (gwi_unpack_checked with the server's default
 * limits, then the reserved keys dropped from a result's side effects). */
static bool ingress_ok(Spawn__Gateway__V1__HostMessage *m, const uint8_t *data, size_t len)
{
	gw_wc_limits lim = {0};
	gw_wc_limits_resolve(&lim);
	gw_wc_fail f;
	if (gw_wc_check(&m->base, data, len, &lim, &f) != GW_OK)
		return false;
	if (m->msg_case == SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT && m->result)
		gw_wc_strip_reserved(m->result);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fw_world *w = fw_get();
	grpc_byte_buffer *bb = spawn_wire_buffer(data, size);
	if (!bb)
		abort();
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	ProtobufCMessage *pm = NULL;
	int bad = spawn_wire_unpack(&spawn__gateway__v1__host_message__descriptor, bb, &ar, &pm);
	grpc_byte_buffer_destroy(bb);
	Spawn__Gateway__V1__HostMessage *m = (Spawn__Gateway__V1__HostMessage *)pm;
	if (bad || !ingress_ok(m, data, size))
		goto out;
	if (m->msg_case == SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION) {
		Spawn__RegistrationRequest *rr = m->registration;
		char why[256];
		if (rr && rr->actor_system &&
		    gw_registry_register(w->reg, &w->other, rr->actor_system, why, sizeof why) ==
		        GW_OK)
			gw_registry_unbind_host(w->reg, &w->other);
		goto out;
	}
	if (m->msg_case != SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT || !m->result)
		goto out;
	size_t i = fw_task_for_result(w);
	if (i == SIZE_MAX)
		goto out; /* a registration under test changed fz/counter */
	pthread_mutex_lock(&w->host.mu);
	gw_inv *inv = w->host.tasks[i].inv;
	uint64_t id = w->host.tasks[i].id;
	pthread_mutex_unlock(&w->host.mu);
	m->result->request_id = id;
	gw_runtime_result(w->rt, inv, m->result);
	fw_finish(w);
out:
	spawn_arena_fini(&ar);
	fw_quiesce(w);
	return 0;
}
