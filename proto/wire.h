/* wire.h - shared glue between gRPC core byte buffers and protobuf-c.
 *
 * Used by the gateway, the C SDK, the benchmarks and the tests, so the
 * one place that moves protobuf bytes in and out of gRPC is tested once.
 * Thread: every function here may be called from any thread; none blocks.
 */
#ifndef SPAWN_WIRE_H
#define SPAWN_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>
#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/any.pb-c.h"
#include "spawn/actors/actor.pb-c.h"
#include "spawn/actors/protocol.pb-c.h"
#include "spawn/gateway/v1/gateway.pb-c.h"

/* ---- arena ----------------------------------------------------------- */

/* A bump allocator for per-call memory: everything allocated from it is
 * freed together by spawn_arena_fini(). Not thread-safe: one owner. */
typedef struct spawn_arena_chunk spawn_arena_chunk;
typedef struct spawn_arena {
	spawn_arena_chunk *head; /* owned: chunks, newest first */
	size_t used;             /* bytes used in head */
	size_t cap;              /* capacity of head */
	size_t total;            /* bytes handed out, for limits */
	size_t limit;            /* 0 = unlimited; allocation past it fails */
	ProtobufCAllocator pbc;  /* adapter: allocator_data points at this arena */
	char first[512];         /* inline first chunk: small calls allocate nothing */
} spawn_arena;

/* spawn_arena_init prepares caller storage. limit bounds the total bytes
 * (0 = none); allocations past it return NULL. */
void spawn_arena_init(spawn_arena *a, size_t limit);
/* spawn_arena_fini frees every allocation. Accepts a zeroed arena. */
void spawn_arena_fini(spawn_arena *a);
/* spawn_arena_alloc returns 16-byte aligned memory owned by the arena, or
 * NULL when out of memory or past the limit. */
void *spawn_arena_alloc(spawn_arena *a, size_t n);
/* spawn_arena_strdup copies s into the arena (NULL -> NULL). */
char *spawn_arena_strdup(spawn_arena *a, const char *s);
void *spawn_arena_memdup(spawn_arena *a, const void *p, size_t n);

/* ---- messages <-> byte buffers ---------------------------------------- */

/* spawn_wire_pack serializes m into a new byte buffer.
 * Returns 0 and sets *out (caller destroys with grpc_byte_buffer_destroy),
 * or -1 when out of memory. */
int spawn_wire_pack(const ProtobufCMessage *m, grpc_byte_buffer **out);

/* spawn_wire_unpack parses bb (borrowed; not destroyed) as a message of
 * type d. With an arena, the message and its strings live in the arena
 * (do not call free_unpacked); with a NULL arena the caller frees with
 * protobuf_c_message_free_unpacked(m, NULL).
 * Returns 0 and sets *out; -1 when bb is NULL or malformed, or memory ran
 * out. */
int spawn_wire_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb, spawn_arena *arena,
                      ProtobufCMessage **out);

/* spawn_wire_bytes copies the contents of bb into one contiguous buffer.
 * With an arena the buffer lives in it, otherwise the caller frees it with
 * free(). Returns 0 and sets *data, *len; -1 on failure. */
int spawn_wire_bytes(grpc_byte_buffer *bb, spawn_arena *arena, uint8_t **data, size_t *len);

/* spawn_wire_buffer wraps a copy of data into a new byte buffer (caller
 * destroys). */
grpc_byte_buffer *spawn_wire_buffer(const void *data, size_t len);

/* ---- time ------------------------------------------------------------- */

/* Monotonic time in nanoseconds and wall-clock time in Unix milliseconds. */
int64_t spawn_now_ns(void);
int64_t spawn_wall_ms(void);

#endif
