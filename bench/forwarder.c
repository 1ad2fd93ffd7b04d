/* forwarder.c - bench-forwarder: the physical limit of a one-hop gateway.
 *
 * Accepts ActorGateway/Invoke, sends the request bytes unchanged to the
 * upstream as a new call of the same method, and answers with the
 * upstream's reply bytes, status code and message. No parsing, no actor
 * logic, no state: whatever a gateway costs beyond this is its own work.
 *
 *   bench-forwarder --upstream HOST:PORT [--listen ADDR] [--threads N]
 *                   [--channels C] [--prerequest K]
 *
 * Prints "listening PORT" on stdout once it accepts calls, then runs until
 * SIGINT or SIGTERM.
 *
 * One call's life (the fwd_call is the CQ tag of each step, and only one
 * step is ever outstanding):
 *   REQUESTED --new call------> UPSTREAM  [one client batch: send all, recv all]
 *   UPSTREAM ---upstream done-> REPLYING  [reply, status and close in one batch]
 *   REPLYING ---done----------> freed
 * Invariants:
 *   1. A call is on its thread's in-flight list exactly while UPSTREAM, so
 *      shutdown can cancel every upstream call (grpc_call_cancel is
 *      thread-safe) and the server's shutdown cannot wait on a live
 *      upstream.
 *   2. The request byte buffer is handed to the upstream batch as is: gRPC
 *      slices are reference-counted, so forwarding copies nothing.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

#include "bench.h"

typedef enum { FWD_REQUESTED, FWD_UPSTREAM, FWD_REPLYING } fwd_stage;

typedef struct fwd_call fwd_call;

/* Per CQ thread: the calls now waiting on the upstream (invariant 1). */
typedef struct fwd_shard {
	pthread_mutex_t mu;
	fwd_call *inflight; /* intrusive list, borrowed entries */
	bool stopping;      /* set once at shutdown: new upstream calls are cancelled */
} fwd_shard;

typedef struct fwd {
	int nchannels;
	grpc_channel **channels;  /* owned */
	void **methods;           /* registered Invoke per channel, owned by the channel */
	fwd_shard *shards;        /* owned, one per CQ thread */
	atomic_uint next_channel; /* round robin over the channels */
} fwd;

struct fwd_call {
	bench_tag tag;     /* first: the CQ tag */
	bench_server *srv; /* borrowed */
	int idx;
	fwd_stage stage;
	fwd_call *prev, *next; /* in shards[idx].inflight while UPSTREAM */
	grpc_call *scall;      /* server side, owned once arrived */
	grpc_call *ccall;      /* upstream, owned */
	gpr_timespec deadline;
	grpc_metadata_array md;                      /* request metadata (not forwarded), owned */
	grpc_byte_buffer *req;                       /* owned */
	grpc_byte_buffer *resp;                      /* upstream reply, owned */
	grpc_metadata_array up_initial, up_trailing; /* owned */
	grpc_status_code up_status;
	grpc_slice up_details; /* owned */
	int cancelled;
	grpc_op ops[6];
};

static void fwd_done(bench_tag *t, bool ok);

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (!p) {
		fprintf(stderr, "bench-forwarder: out of memory\n");
		abort();
	}
	return p;
}

static bool fwd_request(bench_server *s, int idx)
{
	fwd_call *c = xcalloc(1, sizeof *c);
	c->tag.done = fwd_done;
	c->srv = s;
	c->idx = idx;
	c->stage = FWD_REQUESTED;
	c->up_details = grpc_empty_slice();
	grpc_metadata_array_init(&c->md);
	grpc_metadata_array_init(&c->up_initial);
	grpc_metadata_array_init(&c->up_trailing);
	grpc_call_error e =
	    grpc_server_request_registered_call(s->server, s->invoke, &c->scall, &c->deadline,
	                                        &c->md, &c->req, s->cqs[idx], s->cqs[idx], &c->tag);
	if (e != GRPC_CALL_OK) {
		grpc_metadata_array_destroy(&c->md);
		grpc_metadata_array_destroy(&c->up_initial);
		grpc_metadata_array_destroy(&c->up_trailing);
		free(c);
		return false;
	}
	return true;
}

static void fwd_free(fwd_call *c)
{
	if (c->req)
		grpc_byte_buffer_destroy(c->req);
	if (c->resp)
		grpc_byte_buffer_destroy(c->resp);
	grpc_slice_unref(c->up_details);
	grpc_metadata_array_destroy(&c->md);
	grpc_metadata_array_destroy(&c->up_initial);
	grpc_metadata_array_destroy(&c->up_trailing);
	if (c->ccall)
		grpc_call_unref(c->ccall);
	if (c->scall)
		grpc_call_unref(c->scall);
	free(c);
}

static void shard_add(fwd_shard *sh, fwd_call *c)
{
	pthread_mutex_lock(&sh->mu);
	c->prev = NULL;
	c->next = sh->inflight;
	if (sh->inflight)
		sh->inflight->prev = c;
	sh->inflight = c;
	if (sh->stopping)
		grpc_call_cancel(c->ccall, NULL);
	pthread_mutex_unlock(&sh->mu);
}

static void shard_remove(fwd_shard *sh, fwd_call *c)
{
	pthread_mutex_lock(&sh->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		sh->inflight = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	pthread_mutex_unlock(&sh->mu);
}

/* fwd_reply answers the client with what the upstream said (or, when the
 * upstream batch itself failed, UNAVAILABLE). */
static void fwd_reply(fwd_call *c, bool upstream_ok)
{
	grpc_status_code code = c->up_status;
	if (!upstream_ok) {
		code = GRPC_STATUS_UNAVAILABLE;
		grpc_slice_unref(c->up_details);
		c->up_details = grpc_slice_from_static_string("forwarder: upstream batch failed");
	}
	grpc_op *op = c->ops;
	memset(c->ops, 0, sizeof c->ops);
	op->op = GRPC_OP_SEND_INITIAL_METADATA;
	op++;
	if (c->resp && code == GRPC_STATUS_OK) {
		op->op = GRPC_OP_SEND_MESSAGE;
		op->data.send_message.send_message = c->resp;
		op++;
	}
	op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op->data.send_status_from_server.status = code;
	op->data.send_status_from_server.status_details = &c->up_details;
	op++;
	op->op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op->data.recv_close_on_server.cancelled = &c->cancelled;
	op++;
	c->stage = FWD_REPLYING;
	if (grpc_call_start_batch(c->scall, c->ops, (size_t)(op - c->ops), &c->tag, NULL) !=
	    GRPC_CALL_OK)
		fwd_free(c);
}

static void fwd_upstream(fwd_call *c)
{
	fwd *f = c->srv->app;
	unsigned ch = atomic_fetch_add_explicit(&f->next_channel, 1, memory_order_relaxed) %
	              (unsigned)f->nchannels;
	c->ccall = grpc_channel_create_registered_call(f->channels[ch], NULL,
	                                               GRPC_PROPAGATE_DEFAULTS, c->srv->cqs[c->idx],
	                                               f->methods[ch], c->deadline, NULL);
	grpc_op *op = c->ops;
	memset(c->ops, 0, sizeof c->ops);
	op->op = GRPC_OP_SEND_INITIAL_METADATA;
	op++;
	op->op = GRPC_OP_SEND_MESSAGE;
	op->data.send_message.send_message = c->req; /* invariant 2 */
	op++;
	op->op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	op++;
	op->op = GRPC_OP_RECV_INITIAL_METADATA;
	op->data.recv_initial_metadata.recv_initial_metadata = &c->up_initial;
	op++;
	op->op = GRPC_OP_RECV_MESSAGE;
	op->data.recv_message.recv_message = &c->resp;
	op++;
	op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op->data.recv_status_on_client.trailing_metadata = &c->up_trailing;
	op->data.recv_status_on_client.status = &c->up_status;
	op->data.recv_status_on_client.status_details = &c->up_details;
	op++;
	c->stage = FWD_UPSTREAM;
	fwd_shard *sh = &f->shards[c->idx];
	shard_add(sh, c);
	if (grpc_call_start_batch(c->ccall, c->ops, (size_t)(op - c->ops), &c->tag, NULL) !=
	    GRPC_CALL_OK) {
		shard_remove(sh, c);
		fwd_reply(c, false);
	}
}

static void fwd_done(bench_tag *t, bool ok)
{
	fwd_call *c = (fwd_call *)t;
	switch (c->stage) {
	case FWD_REQUESTED:
		if (!ok) {
			fwd_free(c);
			return;
		}
		fwd_request(c->srv, c->idx);
		if (!c->req) {
			/* A client that half-closed without a message. */
			c->up_status = GRPC_STATUS_INVALID_ARGUMENT;
			c->up_details = grpc_slice_from_static_string("no request message");
			fwd_reply(c, true);
			return;
		}
		fwd_upstream(c);
		return;
	case FWD_UPSTREAM:
		shard_remove(&((fwd *)c->srv->app)->shards[c->idx], c);
		fwd_reply(c, ok);
		return;
	case FWD_REPLYING:
		fwd_free(c);
		return;
	}
}

static void fwd_cancel_upstream(bench_server *s)
{
	fwd *f = s->app;
	for (int i = 0; i < s->nthreads; i++) {
		fwd_shard *sh = &f->shards[i];
		pthread_mutex_lock(&sh->mu);
		sh->stopping = true;
		for (fwd_call *c = sh->inflight; c; c = c->next)
			grpc_call_cancel(c->ccall, NULL);
		pthread_mutex_unlock(&sh->mu);
	}
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: bench-forwarder --upstream HOST:PORT [--listen ADDR] [--threads N]\n"
	        "                       [--channels C] [--prerequest K]\n"
	        "  --upstream HOST:PORT  where every Invoke is forwarded\n"
	        "  --listen ADDR         address to bind (default 127.0.0.1:0, an ephemeral port)\n"
	        "  --threads N           completion-queue threads (default 1)\n"
	        "  --channels C          upstream channels (TCP connections), used round robin "
	        "(default 1)\n"
	        "  --prerequest K        calls requested ahead per thread (default 256)\n");
}

int main(int argc, char **argv)
{
	const char *listen = "127.0.0.1:0", *upstream = NULL;
	long threads = 1, channels = 1, prerequest = 256;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--listen") && v) {
			listen = v;
			i++;
		} else if (!strcmp(a, "--upstream") && v) {
			upstream = v;
			i++;
		} else if (!strcmp(a, "--threads")) {
			if (bench_flag_long(a, v, 1, 256, &threads))
				return 2;
			i++;
		} else if (!strcmp(a, "--channels")) {
			if (bench_flag_long(a, v, 1, 256, &channels))
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
	if (!upstream) {
		usage();
		return 2;
	}

	fwd f = {.nchannels = (int)channels};
	f.channels = xcalloc((size_t)channels, sizeof *f.channels);
	f.methods = xcalloc((size_t)channels, sizeof *f.methods);
	f.shards = xcalloc((size_t)threads, sizeof *f.shards);
	for (long i = 0; i < threads; i++)
		pthread_mutex_init(&f.shards[i].mu, NULL);

	/* The channels exist before the server: a call may arrive as soon as
	 * it listens. */
	bench_init();
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	for (long i = 0; i < channels; i++) {
		/* A local subchannel pool per channel: each channel gets its own
		 * TCP connection instead of sharing the process-wide one. */
		grpc_arg arg = {.type = GRPC_ARG_INTEGER,
		                .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
		                .value.integer = 1};
		grpc_channel_args args = {.num_args = 1, .args = &arg};
		f.channels[i] = grpc_channel_create(upstream, creds, &args);
		f.methods[i] =
		    grpc_channel_register_call(f.channels[i], BENCH_INVOKE_METHOD, NULL, NULL);
	}
	grpc_channel_credentials_release(creds);
	bench_server s;
	int rc = 1;
	if (bench_server_start(&s, listen, (int)threads, (int)prerequest, fwd_request, &f) != 0)
		goto out;
	printf("listening %d\n", s.port);
	fflush(stdout);
	bench_server_wait_signal();
	bench_server_stop(&s, fwd_cancel_upstream);
	rc = 0;
out:
	for (long i = 0; i < channels; i++)
		grpc_channel_destroy(f.channels[i]);
	grpc_shutdown();
	for (long i = 0; i < threads; i++)
		pthread_mutex_destroy(&f.shards[i].mu);
	free(f.channels);
	free(f.methods);
	free(f.shards);
	return rc;
}
