/* batch.h - the batched host link's writer and reader (docs/protocol.md,
 * "Batched host link"), shared by the gateway and the C SDK.
 *
 * A stream has one message being written at a time. Messages queue behind
 * it in a spawn_wq; when the write completes, spawn_wq_next takes the next
 * message to write: the head alone, or, when batching is on, the head and
 * the batchable items queued behind it, up to a count and a byte bound,
 * joined into one batch message. Nothing waits for a batch to fill: a
 * queue holding one item writes it alone, exactly as without batching.
 *
 * Batch encoding. An item is a serialized outer message (GatewayMessage or
 * HostMessage) holding only its single-item field (invocation = 2,
 * result = 2): bytes `tag(2, LEN) varint(len) item`. The batch is the outer
 * message holding only its batch field (tasks = 3, results = 3), a message
 * whose repeated field 1 holds the items: `tag(3, LEN) varint(total)` then
 * each item re-tagged `tag(1, LEN) varint(len) item`. Both tags are one
 * byte, so re-tagging changes one byte and no length.
 *
 * Reading: spawn_batch_scan finds the items of a received batch message
 * in place (no copy) so each can be parsed and checked on its own.
 *
 * Queue states of an item:
 *   QUEUED --- spawn_wq_next takes it (taken callback) --> WRITING (owned by
 *                                                          the returned buffer)
 *   QUEUED --- spawn_wq_unlink (cancelled) -------------> the caller's again
 *   QUEUED --- spawn_wq_clear (stream gone) ------------> freed
 *
 * Thread: a spawn_wq is not locked; its owner serializes calls (the
 * gateway's host lock, the SDK's host mutex). The functions never block.
 */
#ifndef SPAWN_BATCH_H
#define SPAWN_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>

/* Protocol facts (gateway.proto). */
#define SPAWN_BATCH_ITEM_FIELD 2    /* invocation / result */
#define SPAWN_BATCH_FIELD      3    /* tasks / results */
#define SPAWN_BATCH_MAX_ITEMS  1024 /* most items a receiver accepts in one batch */
#define SPAWN_LINK_MD_KEY      "spawn-link"
#define SPAWN_LINK_MD_BATCH    "batch"

/* One queued message. Embedded in the caller's own record or allocated
 * alone; the queue links it but never frees the item itself (the taken
 * and clear callbacks hand it back). */
typedef struct spawn_wq_item {
	struct spawn_wq_item *next, *prev; /* queue links (the queue's) */
	grpc_byte_buffer *bb;              /* owned until taken: the serialized message */
	size_t len;                        /* bytes of bb */
	bool batchable;                    /* an item message (task/result); else sent alone */
} spawn_wq_item;

typedef struct spawn_wq {
	spawn_wq_item *head, *tail; /* borrowed items, oldest first */
	size_t bytes;               /* bytes of the queued items */
	size_t count;               /* queued items */
	uint32_t max_items;         /* a batch's count bound; <= 1: never batch */
	size_t max_bytes;           /* a batch's byte bound (items' bytes) */
} spawn_wq;

/* Called for each item spawn_wq_next or spawn_wq_clear takes off the
 * queue, after its bb left it (it->bb is NULL): the caller frees or
 * recycles it. */
typedef void (*spawn_wq_taken_fn)(void *user, spawn_wq_item *it);

/* spawn_wq_init empties q. max_items <= 1 turns batching off. */
void spawn_wq_init(spawn_wq *q, uint32_t max_items, size_t max_bytes);

/* spawn_wq_set_batch changes the bounds (batching granted or refused on a
 * new stream). */
void spawn_wq_set_batch(spawn_wq *q, uint32_t max_items, size_t max_bytes);

/* spawn_wq_push queues it (it->bb set, owned by the queue from now on). */
void spawn_wq_push(spawn_wq *q, spawn_wq_item *it);

/* spawn_wq_unlink takes a QUEUED item out (a cancelled task); it->bb stays
 * set and is the caller's again. */
void spawn_wq_unlink(spawn_wq *q, spawn_wq_item *it);

/* spawn_wq_next returns the next message to write (the caller owns and
 * destroys it once written), or NULL when the queue is empty. *n gets the
 * number of items in it. Each item taken goes to taken(user, it) first, in
 * queue order. Without memory to join a batch, the head goes alone. */
grpc_byte_buffer *spawn_wq_next(spawn_wq *q, spawn_wq_taken_fn taken, void *user, size_t *n);

/* spawn_wq_clear drops every queued item (a broken or closed stream):
 * each bb is destroyed and the item handed to taken. */
void spawn_wq_clear(spawn_wq *q, spawn_wq_taken_fn taken, void *user);

/* spawn_batch_join joins n item messages (borrowed; see the encoding
 * above) into one batch message (caller destroys). NULL when an item is
 * not a single-item message or memory ran out. */
grpc_byte_buffer *spawn_batch_join(grpc_byte_buffer *const *items, size_t n);

/* A byte range of a received message. */
typedef struct spawn_span {
	const uint8_t *data; /* borrowed: points into the scanned message */
	size_t len;
} spawn_span;

/* spawn_batch_scan looks at a received outer message data[0..len).
 * Returns 0 when it holds no batch field (a single-item or other message,
 * for the ordinary parser); 1 when it is a batch: the items' ranges go to
 * items[0..max) in order and *n gets their number (which may exceed max:
 * the rest are counted, not stored); -1 when the framing is malformed or
 * the batch field is mixed with other fields. */
int spawn_batch_scan(const uint8_t *data, size_t len, spawn_span *items, size_t max, size_t *n);

#endif
