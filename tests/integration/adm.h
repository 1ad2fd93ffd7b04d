/* adm.h - a client of the gateway's spawn.gateway.v1.Admin service on the
 * gRPC core API (libspawn has no admin calls): one channel, synchronous
 * unary calls on a private pluck completion queue, every wait bounded.
 * Replies are the protobuf-c types of spawn_proto.
 *
 * Every call returns the call's gRPC status (GRPC_STATUS_OK = 0), or -1
 * when it did not complete in time, and copies the status details into
 * msg (may be NULL). On OK, *out (when the call has one) is the parsed
 * reply: free it with protobuf_c_message_free_unpacked(&(*out)->base,
 * NULL); otherwise *out is NULL.
 * Thread: one thread per adm_client.
 */
#ifndef SPAWN_TESTS_IT_ADM_H
#define SPAWN_TESTS_IT_ADM_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>

#include "it.pb-c.h"
#include "spawn/gateway/v1/gateway.pb-c.h"

#define ADM_GET_STATE      "/spawn.gateway.v1.Admin/GetState"
#define ADM_LIST_REVISIONS "/spawn.gateway.v1.Admin/ListRevisions"
#define ADM_RESTORE        "/spawn.gateway.v1.Admin/Restore"
#define ADM_KEY_ROTATION   "/spawn.gateway.v1.Admin/KeyRotation"
#define ADM_FORGET         "/spawn.gateway.v1.Admin/Forget"

typedef struct adm_client adm_client;

/* adm_create connects (lazily) to target ("127.0.0.1:PORT"). Asserts. */
adm_client *adm_create(const char *target);

/* adm_destroy frees a. Accepts NULL. */
void adm_destroy(adm_client *a);

/* adm_call sends data (any bytes) to method and parses an OK reply as rd
 * (NULL: the reply is dropped). */
int adm_call(adm_client *a, const char *method, const void *data, size_t len,
             const ProtobufCMessageDescriptor *rd, ProtobufCMessage **out, int64_t timeout_ms,
             char *msg, size_t n);

/* adm_call_msg packs req and calls adm_call. */
int adm_call_msg(adm_client *a, const char *method, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *rd, ProtobufCMessage **out, int64_t timeout_ms,
                 char *msg, size_t n);

/* The methods, with the usual arguments (revision 0 = current). */
int adm_get_state(adm_client *a, const char *system, const char *actor, uint64_t revision,
                  Spawn__Gateway__V1__ActorStateView **out, char *msg, size_t n);
int adm_list_revisions(adm_client *a, const char *system, const char *actor,
                       Spawn__Gateway__V1__RevisionList **out, char *msg, size_t n);
int adm_restore(adm_client *a, const char *system, const char *actor, uint64_t revision,
                Spawn__Gateway__V1__ActorStateView **out, char *msg, size_t n);
int adm_key_rotation(adm_client *a, Spawn__Gateway__V1__KeyRotationStatus **out, char *msg,
                     size_t n);
int adm_forget(adm_client *a, const char *system, const char *actor,
               Spawn__Gateway__V1__ForgetResult **out, char *msg, size_t n);

/* adm_counter unpacks the it.Counter of a view (no state: an empty
 * counter). NULL when the state is not an it.Counter. Free with
 * protobuf_c_message_free_unpacked(&c->base, NULL). */
It__Counter *adm_counter(const Spawn__Gateway__V1__ActorStateView *v);

/* adm_status_name: "OK", "NOT_FOUND", ...; "TIMEOUT" for -1. */
const char *adm_status_name(int status);

#endif
