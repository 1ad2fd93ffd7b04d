/* adm.c - see adm.h. One batch per call (send everything, receive the
 * message and the status), plucked from the client's own queue. */
#include "adm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "wire.h"

struct adm_client {
	grpc_channel *ch;
	grpc_completion_queue *cq;
};

static gpr_timespec after_ms(int64_t ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

adm_client *adm_create(const char *target)
{
	adm_client *a = calloc(1, sizeof *a);
	ck_assert_ptr_nonnull(a);
	grpc_init();
	grpc_channel_credentials *cr = grpc_insecure_credentials_create();
	a->ch = grpc_channel_create(target, cr, NULL);
	grpc_channel_credentials_release(cr);
	a->cq = grpc_completion_queue_create_for_pluck(NULL);
	return a;
}

void adm_destroy(adm_client *a)
{
	if (!a)
		return;
	grpc_channel_destroy(a->ch);
	grpc_completion_queue_shutdown(a->cq);
	while (grpc_completion_queue_pluck(a->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
	           .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(a->cq);
	free(a);
	grpc_shutdown();
}

int adm_call(adm_client *a, const char *method, const void *data, size_t len,
             const ProtobufCMessageDescriptor *rd, ProtobufCMessage **out, int64_t timeout_ms,
             char *msg, size_t n)
{
	if (out)
		*out = NULL;
	if (msg && n)
		msg[0] = '\0';
	grpc_call *call = grpc_channel_create_call(a->ch, NULL, GRPC_PROPAGATE_DEFAULTS, a->cq,
	                                           grpc_slice_from_static_string(method), NULL,
	                                           after_ms(timeout_ms), NULL);
	ck_assert_ptr_nonnull(call);
	grpc_metadata_array md_initial, md_trailing;
	grpc_metadata_array_init(&md_initial);
	grpc_metadata_array_init(&md_trailing);
	grpc_byte_buffer *send = spawn_wire_buffer(data, len), *recv = NULL;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &md_trailing;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	int rc = -1;
	char tag;
	ck_assert_int_eq(grpc_call_start_batch(call, ops, 6, &tag, NULL), GRPC_CALL_OK);
	/* The call's deadline ends it; the extra second covers delivery. */
	grpc_event ev = grpc_completion_queue_pluck(a->cq, &tag, after_ms(timeout_ms + 1000), NULL);
	if (ev.type == GRPC_OP_COMPLETE) {
		rc = (int)status;
		if (msg && n) {
			char *d = grpc_slice_to_c_string(details);
			snprintf(msg, n, "%s", d ? d : "");
			gpr_free(d);
		}
		if (rc == GRPC_STATUS_OK && rd && out &&
		    spawn_wire_unpack(rd, recv, NULL, out) != 0) {
			snprintf(msg, n, "reply is not a valid %s", rd->name);
			rc = GRPC_STATUS_INTERNAL;
		}
	} else {
		/* Never returned by a plucked batch with a deadline in practice;
		 * cancel and collect it so nothing refers to our stack. */
		grpc_call_cancel(call, NULL);
		grpc_completion_queue_pluck(a->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	}
	if (recv)
		grpc_byte_buffer_destroy(recv);
	grpc_byte_buffer_destroy(send);
	grpc_metadata_array_destroy(&md_initial);
	grpc_metadata_array_destroy(&md_trailing);
	grpc_slice_unref(details);
	grpc_call_unref(call);
	return rc;
}

int adm_call_msg(adm_client *a, const char *method, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *rd, ProtobufCMessage **out, int64_t timeout_ms,
                 char *msg, size_t n)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(buf);
	protobuf_c_message_pack(req, buf);
	int rc = adm_call(a, method, buf, len, rd, out, timeout_ms, msg, n);
	free(buf);
	return rc;
}

/* The admin calls of the suites are quick; 30 s covers a sanitized build
 * behind a statestore that is reconnecting. */
enum { ADM_TIMEOUT_MS = 30000 };

int adm_get_state(adm_client *a, const char *system, const char *actor, uint64_t revision,
                  Spawn__Gateway__V1__ActorStateView **out, char *msg, size_t n)
{
	Spawn__Gateway__V1__ActorRef ref = SPAWN__GATEWAY__V1__ACTOR_REF__INIT;
	ref.system = (char *)system;
	ref.actor = (char *)actor;
	Spawn__Gateway__V1__GetStateRequest rq = SPAWN__GATEWAY__V1__GET_STATE_REQUEST__INIT;
	rq.actor = &ref;
	rq.revision = revision;
	return adm_call_msg(a, ADM_GET_STATE, &rq.base,
	                    &spawn__gateway__v1__actor_state_view__descriptor,
	                    (ProtobufCMessage **)out, ADM_TIMEOUT_MS, msg, n);
}

int adm_list_revisions(adm_client *a, const char *system, const char *actor,
                       Spawn__Gateway__V1__RevisionList **out, char *msg, size_t n)
{
	Spawn__Gateway__V1__ActorRef ref = SPAWN__GATEWAY__V1__ACTOR_REF__INIT;
	ref.system = (char *)system;
	ref.actor = (char *)actor;
	return adm_call_msg(a, ADM_LIST_REVISIONS, &ref.base,
	                    &spawn__gateway__v1__revision_list__descriptor,
	                    (ProtobufCMessage **)out, ADM_TIMEOUT_MS, msg, n);
}

int adm_restore(adm_client *a, const char *system, const char *actor, uint64_t revision,
                Spawn__Gateway__V1__ActorStateView **out, char *msg, size_t n)
{
	Spawn__Gateway__V1__ActorRef ref = SPAWN__GATEWAY__V1__ACTOR_REF__INIT;
	ref.system = (char *)system;
	ref.actor = (char *)actor;
	Spawn__Gateway__V1__RestoreRequest rq = SPAWN__GATEWAY__V1__RESTORE_REQUEST__INIT;
	rq.actor = &ref;
	rq.revision = revision;
	return adm_call_msg(a, ADM_RESTORE, &rq.base,
	                    &spawn__gateway__v1__actor_state_view__descriptor,
	                    (ProtobufCMessage **)out, ADM_TIMEOUT_MS, msg, n);
}

int adm_key_rotation(adm_client *a, Spawn__Gateway__V1__KeyRotationStatus **out, char *msg,
                     size_t n)
{
	Spawn__Gateway__V1__KeyRotationRequest rq = SPAWN__GATEWAY__V1__KEY_ROTATION_REQUEST__INIT;
	return adm_call_msg(a, ADM_KEY_ROTATION, &rq.base,
	                    &spawn__gateway__v1__key_rotation_status__descriptor,
	                    (ProtobufCMessage **)out, ADM_TIMEOUT_MS, msg, n);
}

int adm_forget(adm_client *a, const char *system, const char *actor,
               Spawn__Gateway__V1__ForgetResult **out, char *msg, size_t n)
{
	Spawn__Gateway__V1__ActorRef ref = SPAWN__GATEWAY__V1__ACTOR_REF__INIT;
	ref.system = (char *)system;
	ref.actor = (char *)actor;
	return adm_call_msg(a, ADM_FORGET, &ref.base,
	                    &spawn__gateway__v1__forget_result__descriptor,
	                    (ProtobufCMessage **)out, ADM_TIMEOUT_MS, msg, n);
}

const char *adm_status_name(int status)
{
	static const char *const names[] = {"OK",
	                                    "CANCELLED",
	                                    "UNKNOWN",
	                                    "INVALID_ARGUMENT",
	                                    "DEADLINE_EXCEEDED",
	                                    "NOT_FOUND",
	                                    "ALREADY_EXISTS",
	                                    "PERMISSION_DENIED",
	                                    "RESOURCE_EXHAUSTED",
	                                    "FAILED_PRECONDITION",
	                                    "ABORTED",
	                                    "OUT_OF_RANGE",
	                                    "UNIMPLEMENTED",
	                                    "INTERNAL",
	                                    "UNAVAILABLE",
	                                    "DATA_LOSS",
	                                    "UNAUTHENTICATED"};
	if (status == -1)
		return "TIMEOUT";
	if (status >= 0 && status < (int)(sizeof names / sizeof names[0]))
		return names[status];
	return "?";
}

It__Counter *adm_counter(const Spawn__Gateway__V1__ActorStateView *v)
{
	if (!v->state)
		return it__counter__unpack(NULL, 0, NULL);
	const char *t = v->state->type_url ? strrchr(v->state->type_url, '/') : NULL;
	if (!t || strcmp(t + 1, it__counter__descriptor.name))
		return NULL;
	return it__counter__unpack(NULL, v->state->value.len, v->state->value.data);
}
