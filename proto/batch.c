/* batch.c - the batched host link's writer queue and batch framing
 * (batch.h). */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#define TAG_LEN(field) ((uint8_t)(((field) << 3) | 2))

void spawn_wq_init(spawn_wq *q, uint32_t max_items, size_t max_bytes)
{
	memset(q, 0, sizeof *q);
	spawn_wq_set_batch(q, max_items, max_bytes);
}

void spawn_wq_set_batch(spawn_wq *q, uint32_t max_items, size_t max_bytes)
{
	q->max_items = max_items > SPAWN_BATCH_MAX_ITEMS ? SPAWN_BATCH_MAX_ITEMS : max_items;
	q->max_bytes = max_bytes;
}

void spawn_wq_push(spawn_wq *q, spawn_wq_item *it)
{
	it->len = grpc_byte_buffer_length(it->bb);
	it->next = NULL;
	it->prev = q->tail;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->bytes += it->len;
	q->count++;
}

void spawn_wq_unlink(spawn_wq *q, spawn_wq_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		q->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		q->tail = it->prev;
	it->next = it->prev = NULL;
	q->bytes -= it->len;
	q->count--;
}

/* take_head unlinks the head and returns its buffer; the item goes to
 * taken. */
static grpc_byte_buffer *take_head(spawn_wq *q, spawn_wq_taken_fn taken, void *user)
{
	spawn_wq_item *it = q->head;
	grpc_byte_buffer *bb = it->bb;
	spawn_wq_unlink(q, it);
	it->bb = NULL;
	if (taken)
		taken(user, it);
	return bb;
}

grpc_byte_buffer *spawn_wq_next(spawn_wq *q, spawn_wq_taken_fn taken, void *user, size_t *n)
{
	*n = 0;
	if (!q->head)
		return NULL;
	/* How many items go together: consecutive batchable ones from the
	 * head, within both bounds (the head always goes). */
	size_t k = 0, bytes = 0;
	for (spawn_wq_item *it = q->head; it && it->batchable && k < q->max_items; it = it->next) {
		if (k && bytes + it->len > q->max_bytes)
			break;
		bytes += it->len;
		k++;
	}
	if (k < 2) {
		*n = 1;
		return take_head(q, taken, user);
	}
	grpc_byte_buffer *one[64];
	grpc_byte_buffer **items = k <= 64 ? one : malloc(k * sizeof *items);
	grpc_byte_buffer *out = NULL;
	if (items) {
		spawn_wq_item *it = q->head;
		for (size_t i = 0; i < k; i++, it = it->next)
			items[i] = it->bb;
		out = spawn_batch_join(items, k);
		if (items != one)
			free(items);
	}
	if (!out) {
		*n = 1;
		return take_head(q, taken, user);
	}
	for (size_t i = 0; i < k; i++)
		grpc_byte_buffer_destroy(take_head(q, taken, user));
	*n = k;
	return out;
}

void spawn_wq_clear(spawn_wq *q, spawn_wq_taken_fn taken, void *user)
{
	while (q->head)
		grpc_byte_buffer_destroy(take_head(q, taken, user));
}

/* ---- framing ---------------------------------------------------------------- */

static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* varint_get reads a varint at *p (< end); returns false when it runs past
 * end or over 10 bytes. */
static bool varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned s = 0; s < 70 && *p < end; s += 7) {
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

/* single_item checks that data[0..len) is exactly one length-delimited
 * field SPAWN_BATCH_ITEM_FIELD. */
static bool single_item(const uint8_t *data, size_t len)
{
	if (len < 2 || data[0] != TAG_LEN(SPAWN_BATCH_ITEM_FIELD))
		return false;
	const uint8_t *p = data + 1, *end = data + len;
	uint64_t n;
	return varint_get(&p, end, &n) && n == (uint64_t)(end - p);
}

grpc_byte_buffer *spawn_batch_join(grpc_byte_buffer *const *items, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += grpc_byte_buffer_length(items[i]);
	uint8_t hdr[11];
	hdr[0] = TAG_LEN(SPAWN_BATCH_FIELD);
	size_t hl = 1 + varint_put(hdr + 1, total);
	grpc_slice s = grpc_slice_malloc(hl + total);
	uint8_t *p = GRPC_SLICE_START_PTR(s);
	memcpy(p, hdr, hl);
	p += hl;
	for (size_t i = 0; i < n; i++) {
		uint8_t *start = p;
		grpc_byte_buffer_reader r;
		if (!grpc_byte_buffer_reader_init(&r, items[i])) {
			grpc_slice_unref(s);
			return NULL;
		}
		grpc_slice piece;
		while (grpc_byte_buffer_reader_next(&r, &piece)) {
			memcpy(p, GRPC_SLICE_START_PTR(piece), GRPC_SLICE_LENGTH(piece));
			p += GRPC_SLICE_LENGTH(piece);
			grpc_slice_unref(piece);
		}
		grpc_byte_buffer_reader_destroy(&r);
		if (!single_item(start, (size_t)(p - start))) {
			grpc_slice_unref(s);
			return NULL;
		}
		start[0] = TAG_LEN(1); /* repeated field 1 of the batch message */
	}
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

/* skip_field moves *p past the value of a field of wire type wt. */
static bool skip_field(const uint8_t **p, const uint8_t *end, unsigned wt)
{
	uint64_t v;
	switch (wt) {
	case 0:
		return varint_get(p, end, &v);
	case 1:
		if (end - *p < 8)
			return false;
		*p += 8;
		return true;
	case 2:
		if (!varint_get(p, end, &v) || v > (uint64_t)(end - *p))
			return false;
		*p += v;
		return true;
	case 5:
		if (end - *p < 4)
			return false;
		*p += 4;
		return true;
	default:
		return false; /* groups are not used by our protocol */
	}
}

int spawn_batch_scan(const uint8_t *data, size_t len, spawn_span *items, size_t max, size_t *n)
{
	*n = 0;
	const uint8_t *p = data, *end = data + len;
	bool batch = false, other = false;
	while (p < end) {
		uint64_t key;
		if (!varint_get(&p, end, &key))
			return -1;
		uint64_t field = key >> 3;
		unsigned wt = (unsigned)(key & 7);
		if (field != SPAWN_BATCH_FIELD) {
			if (!skip_field(&p, end, wt))
				return -1;
			other = true;
			continue;
		}
		uint64_t blen;
		if (wt != 2 || !varint_get(&p, end, &blen) || blen > (uint64_t)(end - p))
			return -1;
		batch = true;
		/* Occurrences of a message field merge: their items add up. */
		const uint8_t *q = p, *bend = p + blen;
		p = bend;
		while (q < bend) {
			uint64_t k;
			if (!varint_get(&q, bend, &k))
				return -1;
			if ((k >> 3) != 1) {
				if (!skip_field(&q, bend, (unsigned)(k & 7)))
					return -1;
				continue;
			}
			uint64_t ilen;
			if ((k & 7) != 2 || !varint_get(&q, bend, &ilen) ||
			    ilen > (uint64_t)(bend - q))
				return -1;
			if (*n < max)
				items[*n] = (spawn_span){q, (size_t)ilen};
			(*n)++;
			q += ilen;
		}
	}
	if (batch && other)
		return -1;
	return batch ? 1 : 0;
}
