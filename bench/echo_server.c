/* echo_server.c - bench-echo-server: the `direct` baseline.
 *
 * Answers ActorGateway/Invoke with an InvocationResponse carrying status OK,
 * the request's system and actor, and the request's payload: one hop with
 * the least work a real answer needs (parse, build, serialize). A
 * malformed request gets INVALID_ARGUMENT.
 *
 *   bench-echo-server [--listen ADDR] [--threads N] [--prerequest K]
 *
 * Prints "listening PORT" on stdout once it accepts calls, then runs until
 * SIGINT or SIGTERM.
 *
 * One call's life (the echo_call is the CQ tag of both steps):
 *   REQUESTED --new call--> SENDING  [reply, status and close in one batch]
 *   SENDING ----done------> freed
 * A REQUESTED call that fails (server shutdown) is freed at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "wire.h"

typedef enum { ECHO_REQUESTED, ECHO_SENDING } echo_stage;

typedef struct echo_call {
	bench_tag tag;     /* first: the CQ tag */
	bench_server *srv; /* borrowed */
	int idx;           /* CQ this call lives on */
	echo_stage stage;
	grpc_call *call; /* owned once the call arrived */
	gpr_timespec deadline;
	grpc_metadata_array md; /* request metadata, owned */
	grpc_byte_buffer *req;  /* owned: initial payload read by gRPC */
	grpc_byte_buffer *resp; /* owned */
	grpc_slice details;     /* status message, owned */
	int cancelled;
	grpc_op ops[4];
	spawn_arena arena; /* the unpacked request */
} echo_call;

static void echo_done(bench_tag *t, bool ok);

static bool echo_request(bench_server *s, int idx)
{
	echo_call *c = calloc(1, sizeof *c);
	if (!c) {
		fprintf(stderr, "bench-echo-server: out of memory\n");
		abort();
	}
	c->tag.done = echo_done;
	c->srv = s;
	c->idx = idx;
	c->stage = ECHO_REQUESTED;
	c->details = grpc_empty_slice();
	grpc_metadata_array_init(&c->md);
	spawn_arena_init(&c->arena, 0);
	grpc_call_error e =
	    grpc_server_request_registered_call(s->server, s->invoke, &c->call, &c->deadline,
	                                        &c->md, &c->req, s->cqs[idx], s->cqs[idx], &c->tag);
	if (e != GRPC_CALL_OK) {
		grpc_metadata_array_destroy(&c->md);
		free(c);
		return false;
	}
	return true;
}

static void echo_free(echo_call *c)
{
	if (c->req)
		grpc_byte_buffer_destroy(c->req);
	if (c->resp)
		grpc_byte_buffer_destroy(c->resp);
	grpc_slice_unref(c->details);
	grpc_metadata_array_destroy(&c->md);
	if (c->call)
		grpc_call_unref(c->call);
	spawn_arena_fini(&c->arena);
	free(c);
}

/* echo_reply builds the answer to c->req into c->resp, or sets an error
 * status. */
static grpc_status_code echo_reply(echo_call *c)
{
	ProtobufCMessage *m;
	if (spawn_wire_unpack(&spawn__invocation_request__descriptor, c->req, &c->arena, &m) != 0) {
		c->details = grpc_slice_from_static_string("malformed InvocationRequest");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	Spawn__InvocationRequest *rq = (Spawn__InvocationRequest *)m;
	Spawn__RequestStatus st = SPAWN__REQUEST_STATUS__INIT;
	st.status = SPAWN__STATUS__OK;
	Spawn__InvocationResponse rp = SPAWN__INVOCATION_RESPONSE__INIT;
	rp.status = &st;
	rp.system = rq->system; /* borrowed from the arena until packed */
	rp.actor = rq->actor;
	if (rq->payload_case == SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE) {
		rp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_VALUE;
		rp.value = rq->value;
	} else if (rq->payload_case == SPAWN__INVOCATION_REQUEST__PAYLOAD_NOOP) {
		rp.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_NOOP;
		rp.noop = rq->noop;
	}
	if (spawn_wire_pack(&rp.base, &c->resp) != 0) {
		c->details = grpc_slice_from_static_string("out of memory");
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	return GRPC_STATUS_OK;
}

static void echo_done(bench_tag *t, bool ok)
{
	echo_call *c = (echo_call *)t;
	if (c->stage == ECHO_SENDING || !ok) {
		echo_free(c);
		return;
	}
	/* Keep the number of requested calls constant. */
	echo_request(c->srv, c->idx);

	grpc_status_code code = echo_reply(c);
	grpc_op *op = c->ops;
	memset(c->ops, 0, sizeof c->ops);
	op->op = GRPC_OP_SEND_INITIAL_METADATA;
	op++;
	if (c->resp) {
		op->op = GRPC_OP_SEND_MESSAGE;
		op->data.send_message.send_message = c->resp;
		op++;
	}
	op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op->data.send_status_from_server.status = code;
	op->data.send_status_from_server.status_details = &c->details;
	op++;
	op->op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op->data.recv_close_on_server.cancelled = &c->cancelled;
	op++;
	c->stage = ECHO_SENDING;
	if (grpc_call_start_batch(c->call, c->ops, (size_t)(op - c->ops), &c->tag, NULL) !=
	    GRPC_CALL_OK)
		echo_free(c);
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: bench-echo-server [--listen ADDR] [--threads N] "
	        "[--prerequest K]\n"
	        "  --listen ADDR    address to bind (default 127.0.0.1:0, an ephemeral port)\n"
	        "  --threads N      completion-queue threads (default 1)\n"
	        "  --prerequest K   calls requested ahead per thread (default 256)\n");
}

int main(int argc, char **argv)
{
	const char *listen = "127.0.0.1:0";
	long threads = 1, prerequest = 256;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--listen") && v) {
			listen = v;
			i++;
		} else if (!strcmp(a, "--threads")) {
			if (bench_flag_long(a, v, 1, 256, &threads))
				return 2;
			i++;
		} else if (!strcmp(a, "--prerequest")) {
			if (bench_flag_long(a, v, 1, 100000, &prerequest))
				return 2;
			i++;
		} else {
			usage();
			return 2;
		}
	}
	bench_init();
	bench_server s;
	if (bench_server_start(&s, listen, (int)threads, (int)prerequest, echo_request, NULL) !=
	    0) {
		grpc_shutdown();
		return 1;
	}
	printf("listening %d\n", s.port);
	fflush(stdout);
	bench_server_wait_signal();
	bench_server_stop(&s, NULL);
	grpc_shutdown();
	return 0;
}
