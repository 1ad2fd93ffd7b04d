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

typedef struct raw_stream raw_stream;

/* raw_stream_open starts a streaming call (the call's deadline is
 * timeout_ms from now). Free with raw_stream_close. */
raw_stream *raw_stream_open(const char *target, const char *method, int64_t timeout_ms);

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

#endif
