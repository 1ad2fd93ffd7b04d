/* fuzz_client_request.c - libFuzzer target: the requests clients send
 * (spawn.SpawnInvocation Invoke and Spawn, spawn.gateway.v1.Admin), decoded
 * and handled as the server does after a call's message arrives.
 *
 * Input: byte 0 picks the method (mod 6, in the order of GWI_M_*: Invoke,
 * Spawn, GetState, ListRevisions, Restore, KeyRotation); the rest is the
 * request message. It is wrapped in a grpc_byte_buffer and decoded with
 * spawn_wire_unpack, as server.c and admin.c do; then every request that
 * decodes goes through ingress_ok() (the ingress checks) and on to the
 * runtime, registry and persist functions the handlers call, against the
 * world of fuzz_world.h (a fake host answers every task).
 *
 * Scheduled invocations (scheduled_to ahead) are checked and re-encoded as
 * accept_scheduled does, but not stored (they would fire long after the
 * input). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "fuzz_world.h"
#include "wire.h"
#include "wirecheck.h"

enum { M_INVOKE, M_SPAWN, M_GET_STATE, M_LIST_REVISIONS, M_RESTORE, M_KEY_ROTATION, M_COUNT };

static const ProtobufCMessageDescriptor *const desc[M_COUNT] = {
    [M_INVOKE] = &spawn__invocation_request__descriptor,
    [M_SPAWN] = &spawn__spawn_request__descriptor,
    [M_GET_STATE] = &spawn__gateway__v1__get_state_request__descriptor,
    [M_LIST_REVISIONS] = &spawn__gateway__v1__actor_ref__descriptor,
    [M_RESTORE] = &spawn__gateway__v1__restore_request__descriptor,
    [M_KEY_ROTATION] = &spawn__gateway__v1__key_rotation_request__descriptor,
};

/* ingress_ok: the checks the server applies to a decoded request before
 * any handler sees it (gwi_unpack_checked, then for Invoke the reserved
 * metadata rule): every string of the bytes it was decoded from, with the
 * server's default limits. */
static bool ingress_ok(int method, const ProtobufCMessage *m, const uint8_t *data, size_t len)
{
	gw_wc_limits lim = {0};
	gw_wc_limits_resolve(&lim);
	gw_wc_fail f;
	if (gw_wc_check(m, data, len, &lim, &f) != GW_OK)
		return false;
	char why[256];
	return method != M_INVOKE ||
	       gw_wc_check_client_metadata((const Spawn__InvocationRequest *)m, why, sizeof why) ==
	           GW_OK;
}

/* A request the gateway re-encodes (scheduled invocations, outbox
 * entries, tasks) decodes again, and encoding that changes nothing. (The
 * first encoding may lose what a C string cannot hold, e.g. bytes after a
 * NUL: the ingress checks refuse such strings.) */
static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
	*n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*n ? *n : 1);
	if (!buf || protobuf_c_message_pack(m, buf) != *n)
		abort();
	return buf;
}

static void reencode(const ProtobufCMessage *m)
{
	if (fz_has_unknown(m))
		return;
	size_t n1, n2;
	uint8_t *b1 = pack(m, &n1);
	ProtobufCMessage *again = protobuf_c_message_unpack(m->descriptor, NULL, n1, b1);
	if (!again) {
		fprintf(stderr, "a decoded %s does not decode after pack\n", m->descriptor->name);
		abort();
	}
	uint8_t *b2 = pack(again, &n2);
	if (n1 != n2 || memcmp(b1, b2, n1) != 0) {
		fprintf(stderr, "pack(unpack(pack(m))) != pack(m) for %s\n", m->descriptor->name);
		abort();
	}
	protobuf_c_message_free_unpacked(again, NULL);
	free(b1);
	free(b2);
}

static void invoke(fw_world *w, grpc_byte_buffer *bb, const uint8_t *data, size_t len)
{
	gw_inv *inv = gw_inv_create(0);
	if (!inv)
		abort();
	ProtobufCMessage *m = NULL;
	if (spawn_wire_unpack(desc[M_INVOKE], bb, &inv->arena, &m) ||
	    !ingress_ok(M_INVOKE, m, data, len)) {
		gw_inv_destroy(inv);
		return;
	}
	reencode(m);
	inv->req = (Spawn__InvocationRequest *)m;
	Spawn__InvocationRequest *rq = inv->req;
	if (rq->scheduled_to > spawn_wall_ms()) {
		gw_inv_destroy(inv);
		return;
	}
	/* handle_invoke: a plain call runs; async (or overdue scheduled) calls
	 * are queued with gw_runtime_enqueue. No client deadline. */
	fw_run(w, inv, rq->async || rq->scheduled_to > 0);
}

static void restore_turn(fw_world *w, const char *system, const char *name, uint64_t revision)
{
	gw_inv *inv = gw_inv_create(0);
	if (!inv)
		abort();
	spawn_arena *a = &inv->arena;
	Spawn__InvocationRequest *iq = spawn_arena_alloc(a, sizeof *iq);
	Spawn__Actors__ActorSystem *sys = spawn_arena_alloc(a, sizeof *sys);
	Spawn__Actors__Actor *act = spawn_arena_alloc(a, sizeof *act);
	Spawn__Actors__ActorId *id = spawn_arena_alloc(a, sizeof *id);
	if (!id)
		abort();
	spawn__invocation_request__init(iq);
	spawn__actors__actor_system__init(sys);
	spawn__actors__actor__init(act);
	spawn__actors__actor_id__init(id);
	sys->name = spawn_arena_strdup(a, system);
	id->name = spawn_arena_strdup(a, name);
	id->system = sys->name;
	act->id = id;
	iq->system = sys;
	iq->actor = act;
	inv->req = iq;
	inv->kind = GW_INV_RESTORE;
	inv->restore_rev = revision;
	fw_run(w, inv, false);
}

/* Completions of persist / read work: a flag under a mutex. */
static pthread_mutex_t cmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ccv = PTHREAD_COND_INITIALIZER;
static int pending;

static void one_done(void)
{
	pthread_mutex_lock(&cmu);
	pending--;
	pthread_cond_broadcast(&ccv);
	pthread_mutex_unlock(&cmu);
}

static void put_done(void *arg, gw_err err)
{
	(void)arg;
	(void)err;
	one_done();
}

static void read_done(void *user, gw_err err, const char *msg, const gw_blob *state,
                      const gw_blob *tags, const gw_read_meta *meta)
{
	(void)user, (void)err, (void)msg, (void)meta;
	/* admin.c's view_reply decodes the tags it is given. */
	if (tags) {
		Spawn__Actors__ActorState *t =
		    spawn__actors__actor_state__unpack(NULL, tags->len, gw_blob_value(tags));
		if (t)
			spawn__actors__actor_state__free_unpacked(t, NULL);
	}
	if (state && gw_blob_value(state) == NULL)
		abort();
	one_done();
}

static void list_done(void *arg, gw_err err, const uint64_t *revs, size_t n)
{
	(void)arg, (void)err, (void)revs, (void)n;
	one_done();
}

static void wait_pending(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += FW_WAIT_MS / 1000;
	pthread_mutex_lock(&cmu);
	while (pending > 0)
		if (pthread_cond_timedwait(&ccv, &cmu, &ts)) {
			fprintf(stderr, "a persist job did not complete in time\n");
			abort();
		}
	pthread_mutex_unlock(&cmu);
}

static void spawn(fw_world *w, Spawn__SpawnRequest *rq)
{
	/* handle_spawn's checks and calls, actor by actor. */
	for (size_t i = 0; i < rq->n_actors; i++) {
		Spawn__Actors__ActorId *id = rq->actors[i];
		if (!id || !id->name || !id->name[0] || !id->system || !id->system[0] ||
		    !id->parent || !id->parent[0])
			return;
		bool created = false;
		if (gw_registry_spawn(w->reg, id->system, id->name, id->parent, &created) != GW_OK)
			return;
		if (created) {
			pthread_mutex_lock(&cmu);
			pending++;
			pthread_mutex_unlock(&cmu);
			if (gw_persist_instance_put(w->persist, id->system, id->name, id->parent,
			                            put_done, NULL) != GW_OK)
				one_done();
			wait_pending();
		}
		if (rq->revision > 0)
			restore_turn(w, id->system, id->name, (uint64_t)rq->revision);
	}
}

static bool ref_ok(const Spawn__Gateway__V1__ActorRef *r)
{
	return r && r->system && r->system[0] && r->actor && r->actor[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	fw_world *w = fw_get();
	int method = data[0] % M_COUNT;
	grpc_byte_buffer *bb = spawn_wire_buffer(data + 1, size - 1);
	if (!bb)
		abort();
	if (method == M_INVOKE) {
		invoke(w, bb, data + 1, size - 1);
		grpc_byte_buffer_destroy(bb);
		fw_quiesce(w);
		return 0;
	}
	ProtobufCMessage *m = NULL;
	int bad = spawn_wire_unpack(desc[method], bb, NULL, &m);
	grpc_byte_buffer_destroy(bb);
	if (bad)
		return 0;
	if (!ingress_ok(method, m, data + 1, size - 1)) {
		protobuf_c_message_free_unpacked(m, NULL);
		return 0;
	}
	reencode(m);
	switch (method) {
	case M_SPAWN:
		spawn(w, (Spawn__SpawnRequest *)m);
		break;
	case M_GET_STATE: {
		Spawn__Gateway__V1__GetStateRequest *rq = (Spawn__Gateway__V1__GetStateRequest *)m;
		if (!ref_ok(rq->actor))
			break;
		pthread_mutex_lock(&cmu);
		pending++;
		pthread_mutex_unlock(&cmu);
		if (gw_runtime_read(w->rt, rq->actor->system, rq->actor->actor, rq->revision,
		                    read_done, NULL) != GW_OK)
			one_done();
		wait_pending();
		break;
	}
	case M_LIST_REVISIONS: {
		Spawn__Gateway__V1__ActorRef *rq = (Spawn__Gateway__V1__ActorRef *)m;
		if (!ref_ok(rq))
			break;
		pthread_mutex_lock(&cmu);
		pending++;
		pthread_mutex_unlock(&cmu);
		if (gw_runtime_list_revisions(w->rt, rq->system, rq->actor, list_done, NULL) !=
		    GW_OK)
			one_done();
		wait_pending();
		break;
	}
	case M_RESTORE: {
		Spawn__Gateway__V1__RestoreRequest *rq = (Spawn__Gateway__V1__RestoreRequest *)m;
		if (ref_ok(rq->actor) && rq->revision != 0)
			restore_turn(w, rq->actor->system, rq->actor->actor, rq->revision);
		break;
	}
	default: {
		gw_persist_stats st;
		gw_persist_get_stats(w->persist, &st);
		break;
	}
	}
	protobuf_c_message_free_unpacked(m, NULL);
	fw_quiesce(w);
	return 0;
}
