/* raw.h - a gRPC core peer that sends what the SDK never would.
 *
 * For the bad-input scenarios: a unary call with arbitrary request bytes,
 * and a bidirectional stream (a "raw host" on HostGateway.Connect) that
 * sends arbitrary bytes or messages and reads the gateway's answers and
 * final status. Everything is synchronous on a private pluck completion
 * queue; every wait is bounded. Thread: one thread per object.
 */
#ifndef SPAWN_TESTS_IT_RAW_H
#define SPAWN_TESTS_IT_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "wire.h"

#define RAW_METHOD_INVOKE  "/spawn.gateway.v1.ActorGateway/Invoke"
#define RAW_METHOD_CONNECT "/spawn.gateway.v1.HostGateway/Connect"

/* raw_unary calls method on target with data as the request message and
 * returns the call's status (details copied into details). Returns -1 if
 * the call did not complete within timeout_ms. */
int raw_unary(const char *target, const char *method, const void *data, size_t len,
              int64_t timeout_ms, char *details, size_t dlen);

/* raw_unary_no_deadline is raw_unary with a call that has no deadline:
 * the test waits at most wait_ms for its status (-1 if none came). */
int raw_unary_no_deadline(const char *target, const char *method, const void *data, size_t len,
                          int64_t wait_ms, char *details, size_t dlen);

/* raw_unary_cancel_after sends a call without a deadline and cancels it
 * (the client goes away) when no status came within after_ms: then -1. */
int raw_unary_cancel_after(const char *target, const char *method, const void *data, size_t len,
                           int64_t after_ms, char *details, size_t dlen);

/* raw_unary_auth is raw_unary with the metadata "authorization: auth"
 * (auth NULL: none), e.g. auth = "Bearer <token>". */
int raw_unary_auth(const char *target, const char *method, const void *data, size_t len,
                   int64_t timeout_ms, const char *auth, char *details, size_t dlen);

/* raw_set_tls makes every later call of this process use TLS with the CA
 * file ca, and the client certificate cert + key when both are given
 * (mTLS); server_name overrides the name checked in the server's
 * certificate (NULL: "localhost"). ca NULL: plaintext again. Returns false
 * when a file cannot be read. Not thread-safe: call it before the calls. */
bool raw_set_tls(const char *ca, const char *cert, const char *key, const char *server_name);

typedef struct raw_stream raw_stream;

/* raw_stream_open starts a streaming call (the call's deadline is
 * timeout_ms from now). Free with raw_stream_close. */
raw_stream *raw_stream_open(const char *target, const char *method, int64_t timeout_ms);

/* raw_stream_open_auth is raw_stream_open with the metadata
 * "authorization: auth" (auth NULL: none; copied). */
raw_stream *raw_stream_open_auth(const char *target, const char *method, int64_t timeout_ms,
                                 const char *auth);

/* raw_stream_send sends data as one message. False if the send failed
 * (the stream is over) or did not complete in time. */
bool raw_stream_send(raw_stream *s, const void *data, size_t len, int64_t timeout_ms);
bool raw_stream_send_msg(raw_stream *s, const ProtobufCMessage *m, int64_t timeout_ms);

/* raw_stream_recv waits for the next message and parses it as type d.
 * Returns it (free with protobuf_c_message_free_unpacked(m, NULL)) or NULL
 * at the end of the stream, on a parse error or timeout. */
ProtobufCMessage *raw_stream_recv(raw_stream *s, const ProtobufCMessageDescriptor *d,
                                  int64_t timeout_ms);

/* raw_stream_status waits for the call's final status; -1 on timeout. */
int raw_stream_status(raw_stream *s, int64_t timeout_ms, char *details, size_t dlen);

/* raw_stream_close cancels the call if it is still open and frees s.
 * Accepts NULL. */
void raw_stream_close(raw_stream *s);

/* ---- a raw host ---- */

/* The storage of a registration message for two actors of one system,
 * both with the one action "A": a NAMED actor and an UNNAMED template. */
typedef struct raw_registration {
	Spawn__Actors__Action act;
	Spawn__Actors__Action *acts[1];
	Spawn__Actors__ActorId id[2];
	Spawn__Actors__ActorSettings st[2];
	Spawn__Actors__Actor actor[2];
	Spawn__Actors__Registry__ActorsEntry e[2], *es[2];
	Spawn__Actors__Registry reg;
	Spawn__Actors__ActorSystem sys;
	Spawn__RegistrationRequest rr;
	Spawn__Gateway__V1__HostMessage hm;
} raw_registration;

/* raw_registration_init fills r with the HostMessage registering system
 * with the NAMED actor named and the UNNAMED template unnamed (stateful or
 * not) and returns it (pointing into r; the strings are borrowed for as
 * long as r is used). */
Spawn__Gateway__V1__HostMessage *raw_registration_init(raw_registration *r, const char *system,
                                                       const char *named, const char *unnamed,
                                                       bool stateful);

/* raw_host_register sends that registration on s and waits for the
 * gateway's registration answer. False if the send failed or the next
 * message was not a registration answer within timeout_ms. */
bool raw_host_register(raw_stream *s, const char *system, const char *named, const char *unnamed,
                       bool stateful, int64_t timeout_ms);

/* raw_host_result sends the result of request id with an empty response.
 * False if the send failed. */
bool raw_host_result(raw_stream *s, uint64_t id, int64_t timeout_ms);

#endif
