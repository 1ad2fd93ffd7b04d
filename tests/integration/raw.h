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

#include "harness.h"
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

/* raw_unary_tls is raw_unary over TLS per tls (harness.h; NULL =
 * plaintext). A handshake the server refuses ends as UNAVAILABLE. */
int raw_unary_tls(const char *target, const it_tls *tls, const char *method, const void *data,
                  size_t len, int64_t timeout_ms, char *details, size_t dlen);

/* raw_unary_auth is raw_unary_tls (tls NULL: plaintext) with the metadata
 * "authorization: auth" (auth NULL: none), e.g. "Bearer <token>". */
int raw_unary_auth(const char *target, const it_tls *tls, const char *method, const void *data,
                   size_t len, int64_t timeout_ms, const char *auth, char *details, size_t dlen);

typedef struct raw_stream raw_stream;

/* raw_stream_open starts a streaming call (the call's deadline is
 * timeout_ms from now). Free with raw_stream_close. */
raw_stream *raw_stream_open(const char *target, const char *method, int64_t timeout_ms);

/* raw_stream_open_tls is raw_stream_open over TLS per tls (NULL = plaintext). */
raw_stream *raw_stream_open_tls(const char *target, const it_tls *tls, const char *method,
                                int64_t timeout_ms);

/* raw_stream_open_auth is raw_stream_open_tls with the metadata
 * "authorization: auth" (auth NULL: none; copied). */
raw_stream *raw_stream_open_auth(const char *target, const it_tls *tls, const char *method,
                                 int64_t timeout_ms, const char *auth);

/* raw_stream_open_md is raw_stream_open with one metadata entry key: value
 * (both copied; plaintext). The initial metadata is sent with the first
 * message. */
raw_stream *raw_stream_open_md(const char *target, const char *method, int64_t timeout_ms,
                               const char *key, const char *value);

/* raw_stream_initial_md_has tells whether the server's initial metadata
 * (waited for up to timeout_ms) holds key: value. */
bool raw_stream_initial_md_has(raw_stream *s, const char *key, const char *value,
                               int64_t timeout_ms);

/* raw_stream_peer_cert returns the PEM of the certificate the server
 * presented on s's connection (the call's auth context property
 * x509_pem_cert), or NULL (plaintext, or no connection yet: call it after
 * the first answer). The caller frees it with free(). */
char *raw_stream_peer_cert(raw_stream *s);

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

/* ---- unary calls left in flight ---- */

/* raw_call_start starts a unary call (its own channel and connection, TLS
 * per tls) with data as the request, deadline timeout_ms, and returns at
 * once; NULL when the call could not be started. raw_call_finish waits up
 * to wait_ms for its status (-1 if none came; the call is then
 * cancelled), copies the details and the response bytes (resp may be
 * NULL; free *resp with free()) and frees c. */
typedef struct raw_stream raw_call;
raw_call *raw_call_start(const char *target, const it_tls *tls, const char *method,
                         const void *data, size_t len, int64_t timeout_ms);
int raw_call_finish(raw_call *c, int64_t wait_ms, char *details, size_t dlen, uint8_t **resp,
                    size_t *resp_len);

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
