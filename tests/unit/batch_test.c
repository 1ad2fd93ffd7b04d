/* batch_test.c - the batched host link's writer queue and framing
 * (proto/batch.h): a lone item goes as itself, queued items go together in
 * order within the count and byte bounds, a non-batchable message is never
 * merged, a cancelled item leaves the queue, a failed write drops what is
 * queued, and the reader finds every item of a batch and refuses malformed
 * or mixed framing. */
#include <check.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "wire.h"

/* An item whose message is a GatewayMessage holding task id (with a
 * payload of pad bytes in its actor name, to vary the size). */
static spawn_wq_item *task_item(uint64_t id, size_t pad)
{
	char name[512];
	memset(name, 'a', pad);
	name[pad] = '\0';
	Spawn__Actors__ActorId aid = SPAWN__ACTORS__ACTOR_ID__INIT;
	aid.name = name;
	Spawn__ActorInvocation inv = SPAWN__ACTOR_INVOCATION__INIT;
	inv.actor = &aid;
	inv.action_name = "A";
	Spawn__Gateway__V1__InvocationTask t = SPAWN__GATEWAY__V1__INVOCATION_TASK__INIT;
	t.request_id = id;
	t.invocation = &inv;
	Spawn__Gateway__V1__GatewayMessage gm = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__INIT;
	gm.msg_case = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION;
	gm.invocation = &t;
	spawn_wq_item *it = calloc(1, sizeof *it);
	ck_assert_int_eq(spawn_wire_pack(&gm.base, &it->bb), 0);
	it->batchable = true;
	return it;
}

/* A message that is not a task (a registration answer). */
static spawn_wq_item *other_item(void)
{
	Spawn__RegistrationResponse rr = SPAWN__REGISTRATION_RESPONSE__INIT;
	Spawn__Gateway__V1__GatewayMessage gm = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__INIT;
	gm.msg_case = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_REGISTRATION;
	gm.registration = &rr;
	spawn_wq_item *it = calloc(1, sizeof *it);
	ck_assert_int_eq(spawn_wire_pack(&gm.base, &it->bb), 0);
	return it;
}

static int n_taken;
static void taken(void *user, spawn_wq_item *it)
{
	(void)user;
	ck_assert_ptr_null(it->bb);
	n_taken++;
	free(it);
}

/* next_ids takes the next message, parses it and writes the task ids it
 * carries to ids (0 for a registration); returns how many. */
static size_t next_ids(spawn_wq *q, uint64_t *ids, bool *was_batch)
{
	size_t n = 0;
	grpc_byte_buffer *bb = spawn_wq_next(q, taken, NULL, &n);
	ck_assert_ptr_nonnull(bb);
	ProtobufCMessage *m = NULL;
	ck_assert_int_eq(
	    spawn_wire_unpack(&spawn__gateway__v1__gateway_message__descriptor, bb, NULL, &m), 0);
	grpc_byte_buffer_destroy(bb);
	Spawn__Gateway__V1__GatewayMessage *gm = (Spawn__Gateway__V1__GatewayMessage *)m;
	size_t k = 0;
	*was_batch = gm->msg_case == SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_TASKS;
	if (*was_batch) {
		for (size_t i = 0; i < gm->tasks->n_tasks; i++)
			ids[k++] = gm->tasks->tasks[i]->request_id;
	} else if (gm->msg_case == SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION) {
		ids[k++] = gm->invocation->request_id;
	} else {
		ids[k++] = 0;
	}
	protobuf_c_message_free_unpacked(m, NULL);
	ck_assert_uint_eq(k, n);
	return k;
}

START_TEST(a_lone_item_goes_as_itself)
{
	spawn_wq q;
	spawn_wq_init(&q, 128, 1 << 20);
	size_t n = 7;
	ck_assert_ptr_null(spawn_wq_next(&q, taken, NULL, &n));
	ck_assert_uint_eq(n, 0);
	spawn_wq_push(&q, task_item(1, 10));
	uint64_t ids[8];
	bool batch;
	ck_assert_uint_eq(next_ids(&q, ids, &batch), 1);
	ck_assert(!batch);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(q.count, 0);
	ck_assert_uint_eq(q.bytes, 0);
}
END_TEST

START_TEST(queued_items_go_together_in_order_within_the_count_bound)
{
	spawn_wq q;
	spawn_wq_init(&q, 4, 1 << 20);
	for (uint64_t i = 1; i <= 10; i++)
		spawn_wq_push(&q, task_item(i, 5));
	ck_assert_uint_eq(q.count, 10);
	uint64_t ids[16], want = 1;
	size_t sizes[] = {4, 4, 2};
	for (int r = 0; r < 3; r++) {
		bool batch;
		size_t k = next_ids(&q, ids, &batch);
		ck_assert_uint_eq(k, sizes[r]);
		ck_assert(batch);
		for (size_t i = 0; i < k; i++)
			ck_assert_uint_eq(ids[i], want++);
	}
	ck_assert_uint_eq(q.count, 0);
	ck_assert_uint_eq(q.bytes, 0);
}
END_TEST

START_TEST(the_byte_bound_splits_batches_but_an_item_over_it_still_goes)
{
	spawn_wq q;
	spawn_wq_item *a = task_item(1, 100);
	size_t len = grpc_byte_buffer_length(a->bb);
	spawn_wq_init(&q, 128, len * 2 + len / 2);
	spawn_wq_push(&q, a);
	for (uint64_t i = 2; i <= 5; i++)
		spawn_wq_push(&q, task_item(i, 100));
	spawn_wq_push(&q, task_item(6, 400)); /* alone over the bound */
	uint64_t ids[8];
	bool batch;
	ck_assert_uint_eq(next_ids(&q, ids, &batch), 2);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 2);
	ck_assert_uint_eq(next_ids(&q, ids, &batch), 2);
	ck_assert_uint_eq(ids[0], 3);
	ck_assert_uint_eq(next_ids(&q, ids, &batch), 1);
	ck_assert_uint_eq(ids[0], 5);
	ck_assert_uint_eq(next_ids(&q, ids, &batch), 1);
	ck_assert_uint_eq(ids[0], 6);
	ck_assert(!batch);
}
END_TEST

START_TEST(a_message_that_is_not_a_task_is_never_merged)
{
	spawn_wq q;
	spawn_wq_init(&q, 128, 1 << 20);
	spawn_wq_push(&q, other_item());
	spawn_wq_push(&q, task_item(1, 3));
	spawn_wq_push(&q, task_item(2, 3));
	spawn_wq_push(&q, other_item());
	spawn_wq_push(&q, task_item(3, 3));
	uint64_t ids[8];
	bool batch;
	ck_assert_uint_eq(next_ids(&q, ids, &batch), 1);
	ck_assert_uint_eq(ids[0], 0);
	ck_assert_uint_eq(next_ids(&q, ids, &batch), 2);
	ck_assert(batch);
	ck_assert_uint_eq(ids[1], 2);
	ck_assert_uint_eq(next_ids(&q, ids, &batch), 1);
	ck_assert_uint_eq(ids[0], 0);
	ck_assert_uint_eq(next_ids(&q, ids, &batch), 1);
	ck_assert_uint_eq(ids[0], 3);
}
END_TEST

START_TEST(batching_off_sends_one_at_a_time)
{
	spawn_wq q;
	spawn_wq_init(&q, 1, 1 << 20);
	for (uint64_t i = 1; i <= 3; i++)
		spawn_wq_push(&q, task_item(i, 3));
	uint64_t ids[8];
	bool batch;
	for (uint64_t i = 1; i <= 3; i++) {
		ck_assert_uint_eq(next_ids(&q, ids, &batch), 1);
		ck_assert(!batch);
		ck_assert_uint_eq(ids[0], i);
	}
}
END_TEST

START_TEST(a_cancelled_item_leaves_the_queue)
{
	spawn_wq q;
	spawn_wq_init(&q, 128, 1 << 20);
	spawn_wq_item *it[4];
	for (int i = 0; i < 4; i++)
		spawn_wq_push(&q, it[i] = task_item((uint64_t)i + 1, 3));
	size_t before = q.bytes;
	spawn_wq_unlink(&q, it[1]);
	ck_assert_uint_eq(q.bytes, before - it[1]->len);
	grpc_byte_buffer_destroy(it[1]->bb);
	free(it[1]);
	spawn_wq_unlink(&q, it[3]); /* the tail */
	grpc_byte_buffer_destroy(it[3]->bb);
	free(it[3]);
	uint64_t ids[8];
	bool batch;
	ck_assert_uint_eq(next_ids(&q, ids, &batch), 2);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 3);
	ck_assert_ptr_null(q.head);
	ck_assert_ptr_null(q.tail);
}
END_TEST

START_TEST(a_failed_write_drops_everything_queued)
{
	spawn_wq q;
	spawn_wq_init(&q, 2, 1 << 20);
	for (uint64_t i = 1; i <= 5; i++)
		spawn_wq_push(&q, task_item(i, 3));
	n_taken = 0;
	size_t n;
	grpc_byte_buffer *inflight = spawn_wq_next(&q, taken, NULL, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(n_taken, 2);
	/* The write fails: the stream is gone, so is the queue. */
	grpc_byte_buffer_destroy(inflight);
	spawn_wq_clear(&q, taken, NULL);
	ck_assert_int_eq(n_taken, 5);
	ck_assert_uint_eq(q.count, 0);
	ck_assert_uint_eq(q.bytes, 0);
	ck_assert_ptr_null(spawn_wq_next(&q, taken, NULL, &n));
}
END_TEST

/* bytes_of copies bb into a malloc'd buffer. */
static uint8_t *bytes_of(grpc_byte_buffer *bb, size_t *len)
{
	uint8_t *d;
	ck_assert_int_eq(spawn_wire_bytes(bb, NULL, &d, len), 0);
	return d;
}

START_TEST(the_reader_finds_every_item_of_a_batch)
{
	grpc_byte_buffer *items[300];
	for (size_t i = 0; i < 300; i++) {
		spawn_wq_item *it = task_item(i + 1, i % 50);
		items[i] = it->bb;
		free(it);
	}
	grpc_byte_buffer *b = spawn_batch_join(items, 300);
	ck_assert_ptr_nonnull(b);
	size_t len, n;
	uint8_t *d = bytes_of(b, &len);
	spawn_span sp[300];
	ck_assert_int_eq(spawn_batch_scan(d, len, sp, 300, &n), 1);
	ck_assert_uint_eq(n, 300);
	for (size_t i = 0; i < 300; i++) {
		Spawn__Gateway__V1__InvocationTask *t =
		    (Spawn__Gateway__V1__InvocationTask *)protobuf_c_message_unpack(
		        &spawn__gateway__v1__invocation_task__descriptor, NULL, sp[i].len,
		        sp[i].data);
		ck_assert_ptr_nonnull(t);
		ck_assert_uint_eq(t->request_id, i + 1);
		ck_assert_uint_eq(strlen(t->invocation->actor->name), i % 50);
		protobuf_c_message_free_unpacked(&t->base, NULL);
	}
	/* Fewer slots than items: counted, not stored. */
	ck_assert_int_eq(spawn_batch_scan(d, len, sp, 10, &n), 1);
	ck_assert_uint_eq(n, 300);
	/* A plain message is not a batch. */
	size_t l1;
	uint8_t *one = bytes_of(items[0], &l1);
	ck_assert_int_eq(spawn_batch_scan(one, l1, sp, 300, &n), 0);
	/* Truncated framing is malformed. */
	ck_assert_int_eq(spawn_batch_scan(d, len - 1, sp, 300, &n), -1);
	/* A batch mixed with a single item is refused. */
	uint8_t *mixed = malloc(len + l1);
	memcpy(mixed, one, l1);
	memcpy(mixed + l1, d, len);
	ck_assert_int_eq(spawn_batch_scan(mixed, len + l1, sp, 300, &n), -1);
	/* An empty batch is a batch of 0 items (the receiver refuses it). */
	const uint8_t empty[] = {0x1a, 0x00};
	ck_assert_int_eq(spawn_batch_scan(empty, sizeof empty, sp, 300, &n), 1);
	ck_assert_uint_eq(n, 0);
	/* A message that is not a single item cannot join a batch. */
	grpc_byte_buffer *bad[2] = {items[0], b};
	ck_assert_ptr_null(spawn_batch_join(bad, 2));
	free(mixed);
	free(one);
	free(d);
	grpc_byte_buffer_destroy(b);
	for (size_t i = 0; i < 300; i++)
		grpc_byte_buffer_destroy(items[i]);
}
END_TEST

static Suite *batch_suite(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("writer");
	tcase_add_test(tc, a_lone_item_goes_as_itself);
	tcase_add_test(tc, queued_items_go_together_in_order_within_the_count_bound);
	tcase_add_test(tc, the_byte_bound_splits_batches_but_an_item_over_it_still_goes);
	tcase_add_test(tc, a_message_that_is_not_a_task_is_never_merged);
	tcase_add_test(tc, batching_off_sends_one_at_a_time);
	tcase_add_test(tc, a_cancelled_item_leaves_the_queue);
	tcase_add_test(tc, a_failed_write_drops_everything_queued);
	suite_add_tcase(s, tc);
	tc = tcase_create("reader");
	tcase_add_test(tc, the_reader_finds_every_item_of_a_batch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	grpc_init();
	SRunner *r = srunner_create(batch_suite());
	/* One process: gRPC's threads, started by grpc_init, do not survive a
	 * fork, and grpc_shutdown must run where they live. */
	srunner_set_fork_status(r, CK_NOFORK);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	grpc_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
