/* fake_gateway.h - a scriptable gRPC server for the SDK tests.
 *
 * Just enough of a gateway to drive libspawn over real sockets: it accepts
 * calls of any method and lets the test receive and send messages on each,
 * one step at a time, waiting on completion events (never on sleeps).
 * Single-threaded: drive it from one test thread. Every wait has a
 * timeout so a broken SDK fails the test instead of hanging it.
 */
#ifndef SPAWN_TESTS_FAKE_GATEWAY_H
#define SPAWN_TESTS_FAKE_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

typedef struct fake_gw fake_gw;
typedef struct fake_call fake_call;

/* fake_gw_start listens on addr: "127.0.0.1:0" picks a free port,
 * "unix:/path" a socket. Returns NULL if it cannot bind. Free with
 * fake_gw_stop. */
fake_gw *fake_gw_start(const char *addr);

/* fake_gw_start_tls is fake_gw_start serving TLS with the PEM files cert
 * (chain) and key; with client_ca (a PEM file, or NULL) it requires a
 * client certificate signed by that CA (mTLS). Paths borrowed. Returns
 * NULL if a file cannot be read or the address cannot be bound. */
fake_gw *fake_gw_start_tls(const char *addr, const char *cert, const char *key,
                           const char *client_ca);

/* fake_gw_target is what a client dials ("127.0.0.1:PORT" or the unix
 * address); owned by g. */
const char *fake_gw_target(const fake_gw *g);

/* fake_gw_accept waits up to timeout_ms for the next call. Returns NULL on
 * timeout. Free the call with fake_call_free before fake_gw_stop. */
fake_call *fake_gw_accept(fake_gw *g, int64_t timeout_ms);

/* fake_call_method is the call's method path ("/pkg.Service/Method"). */
const char *fake_call_method(const fake_call *c);

/* fake_call_metadata counts the call's initial metadata entries named key
 * and copies the first one's value into value (size bytes, truncated,
 * NUL-terminated) when value is non-NULL and there is one. */
size_t fake_call_metadata(const fake_call *c, const char *key, char *value, size_t size);

/* fake_call_recv waits for the next message and parses it as type d.
 * Returns the message (free with protobuf_c_message_free_unpacked(m,
 * NULL)), or NULL when the peer closed its side, the call ended, the bytes
 * did not parse, or timeout_ms passed. */
ProtobufCMessage *fake_call_recv(fake_call *c, const ProtobufCMessageDescriptor *d,
                                 int64_t timeout_ms);

/* fake_call_grant_batches makes the call's initial metadata (sent with the
 * first fake_call_send) grant the batched host link, as the gateway does
 * (spawn-link: batch). Call it before the first send. */
void fake_call_grant_batches(fake_call *c);

/* fake_call_send sends m (with the initial metadata first time). Returns
 * false if the send failed or did not complete in time. */
bool fake_call_send(fake_call *c, const ProtobufCMessage *m, int64_t timeout_ms);

/* fake_call_finish ends the call with a status. Returns false on failure. */
bool fake_call_finish(fake_call *c, grpc_status_code code, const char *details, int64_t timeout_ms);

/* fake_call_wait_closed waits until the client side is gone (cancelled or
 * finished); returns true if it was cancelled. */
bool fake_call_wait_closed(fake_call *c, int64_t timeout_ms);

/* fake_call_free cancels the call if it is still open, waits for its
 * pending operations and frees it. Accepts NULL. */
void fake_call_free(fake_call *c);

/* fake_gw_stop shuts the server down and frees it. Accepts NULL. */
void fake_gw_stop(fake_gw *g);

#endif
