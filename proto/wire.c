/* wire.c - byte buffers <-> protobuf-c, and the per-call arena. */
#include "wire.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

struct spawn_arena_chunk {
	spawn_arena_chunk *next;
	size_t cap;
	_Alignas(16) char data[];
};

static void *pbc_alloc(void *ad, size_t n)
{
	return spawn_arena_alloc(ad, n);
}

static void pbc_free(void *ad, void *p)
{
	/* Arena memory is released all at once by spawn_arena_fini. */
	(void)ad;
	(void)p;
}

void spawn_arena_init(spawn_arena *a, size_t limit)
{
	a->head = NULL;
	a->used = 0;
	a->cap = sizeof a->first;
	a->total = 0;
	a->limit = limit;
	a->pbc.alloc = pbc_alloc;
	a->pbc.free = pbc_free;
	a->pbc.allocator_data = a;
}

void spawn_arena_fini(spawn_arena *a)
{
	spawn_arena_chunk *c = a->head;
	while (c) {
		spawn_arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	a->head = NULL;
	a->used = 0;
	a->cap = sizeof a->first;
	a->total = 0;
}

void *spawn_arena_alloc(spawn_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n == 0)
		n = 16;
	if (a->limit && a->total + n > a->limit)
		return NULL;
	if (a->used + n > a->cap) {
		size_t cap = a->head ? a->head->cap * 2 : 4096;
		if (cap < n)
			cap = n;
		spawn_arena_chunk *c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->next = a->head;
		c->cap = cap;
		a->head = c;
		a->used = 0;
		a->cap = cap;
	}
	char *base = a->head ? a->head->data : a->first;
	/* first[] is only 8-aligned inside the struct; align the offset. */
	uintptr_t p = (uintptr_t)(base + a->used);
	uintptr_t aligned = (p + 15) & ~(uintptr_t)15;
	size_t pad = aligned - p;
	if (a->used + pad + n > a->cap) {
		/* Alignment padding pushed us over: take a fresh chunk. */
		a->used = a->cap;
		return spawn_arena_alloc(a, n);
	}
	a->used += pad + n;
	a->total += n;
	return (void *)aligned;
}

char *spawn_arena_strdup(spawn_arena *a, const char *s)
{
	return s ? spawn_arena_memdup(a, s, strlen(s) + 1) : NULL;
}

void *spawn_arena_memdup(spawn_arena *a, const void *p, size_t n)
{
	void *d = spawn_arena_alloc(a, n);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

int spawn_wire_pack(const ProtobufCMessage *m, grpc_byte_buffer **out)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	grpc_slice s = grpc_slice_malloc(n);
	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	*out = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return *out ? 0 : -1;
}

int spawn_wire_bytes(grpc_byte_buffer *bb, spawn_arena *arena, uint8_t **data, size_t *len)
{
	if (!bb)
		return -1;
	grpc_byte_buffer_reader r;
	if (!grpc_byte_buffer_reader_init(&r, bb))
		return -1;
	size_t n = grpc_byte_buffer_length(bb);
	uint8_t *buf = arena ? spawn_arena_alloc(arena, n ? n : 1) : malloc(n ? n : 1);
	if (!buf) {
		grpc_byte_buffer_reader_destroy(&r);
		return -1;
	}
	size_t off = 0;
	grpc_slice s;
	while (grpc_byte_buffer_reader_next(&r, &s)) {
		size_t l = GRPC_SLICE_LENGTH(s);
		if (off + l > n)
			l = n - off; /* cannot happen; keeps the copy in bounds */
		memcpy(buf + off, GRPC_SLICE_START_PTR(s), l);
		off += l;
		grpc_slice_unref(s);
	}
	grpc_byte_buffer_reader_destroy(&r);
	*data = buf;
	*len = off;
	return 0;
}

int spawn_wire_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb, spawn_arena *arena,
                      ProtobufCMessage **out)
{
	if (!bb)
		return -1;
	grpc_byte_buffer_reader r;
	if (!grpc_byte_buffer_reader_init(&r, bb))
		return -1;
	/* Single-slice buffers (the common case) are parsed in place. */
	grpc_slice whole = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	ProtobufCMessage *m = protobuf_c_message_unpack(
	    d, arena ? &arena->pbc : NULL, GRPC_SLICE_LENGTH(whole), GRPC_SLICE_START_PTR(whole));
	grpc_slice_unref(whole);
	if (!m)
		return -1;
	*out = m;
	return 0;
}

grpc_byte_buffer *spawn_wire_buffer(const void *data, size_t len)
{
	grpc_slice s = grpc_slice_from_copied_buffer(data, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

int64_t spawn_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t spawn_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}
