/* host.c - a host's connection to the gateway: one HostGateway.Connect
 * stream at a time, worker threads for the handlers, reconnect on loss.
 *
 * Threads
 *   I/O thread  the caller of spawn_host_run (or the thread of
 *               spawn_host_start). Owns the completion queue, the channel
 *               and the call; turns received GatewayMessages into jobs.
 *   workers     opts.workers threads; each takes a job, runs the handler
 *               (dispatch.c), packs the InvocationResult and queues it.
 *               None with opts.run_inline: the I/O thread runs the
 *               handlers of each message it receives itself, then queues
 *               their results together (run_inline).
 *   signal      reads the self-pipe and calls spawn_host_stop, so that
 *               spawn_host_signal_stop only has to write(2).
 *
 * Stream states (per connection attempt, I/O thread)
 *
 *   CONNECTING --- call created ------------> OPEN      [send registration,
 *                                                         arm recv + status]
 *   OPEN -------- registration accepted ----> SERVING   [REGISTERED event]
 *   OPEN -------- registration refused -----> CLOSING   [REJECTED; cancel]
 *   SERVING ----- invocation --------------> SERVING    [job to the workers]
 *   any --------- status received ----------> DRAINING  [call = NULL, queued
 *                                                         results dropped]
 *   DRAINING ---- outstanding == 0 ---------> CLOSED    [unref call, destroy
 *                                                         channel; backoff]
 *
 * Invariants
 *   1. At most one SEND_MESSAGE is in flight on the call (h->sending);
 *      further results wait in the send queue, in completion order.
 *   2. Batches are started only under h->mu and only while h->call is set;
 *      h->outstanding counts them, and the call is released only when the
 *      status has arrived and h->outstanding is back to 0.
 *   3. A result carries the generation of the stream its task came from;
 *      it is sent only on that stream (request ids are per stream).
 *   4. grpc_call_cancel is the only thing other threads do to the call,
 *      always under h->mu while h->call is set.
 *
 * Batches (docs/protocol.md "Batched host link", proto/batch.h): every
 * stream asks for them (request metadata spawn-link: batch). A TaskBatch is
 * split into one job per task (run at once, in order, when inline). When the gateway granted
 * batches (the same entry in its initial metadata), the results that queued while the previous send
 * was in flight go out as one ResultBatch (at most SPAWNI_BATCH_MAX results or SPAWNI_BATCH_BYTES
 * bytes); otherwise one result per message, which is all an older gateway understands.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#define DEFAULT_SERVICE_NAME    "libspawn-host"
#define DEFAULT_SERVICE_VERSION "0.0.0"
#define DEFAULT_BACKOFF_MIN_MS  15
#define DEFAULT_BACKOFF_MAX_MS  2000
/* How long one connection attempt may take (gRPC's minimum connect
 * timeout), independent of the backoff: a short first delay after a
 * gateway restart must not also cut a slow connect to a distant gateway. */
#define CONNECT_TIMEOUT_MS 5000

/* Completion-queue tags: one of each kind is outstanding at a time. */
enum { TAG_START = 1, TAG_RECV, TAG_STATUS, TAG_SEND };
#define TAG(t) ((void *)(uintptr_t)(t))

/* Bytes on the self-pipe. */
#define PIPE_STOP 's'
#define PIPE_QUIT 'q'

/* One received InvocationTask on its way to a worker. */
typedef struct job {
	struct job *next;
	uint64_t gen;                                   /* stream it came from */
	const Spawn__Gateway__V1__InvocationTask *task; /* in arena */
	spawn_arena arena;                              /* everything of this task */
} job;

/* Result batches: bounds of one ResultBatch. */
#define SPAWNI_BATCH_MAX   128
#define SPAWNI_BATCH_BYTES (256u << 10)

struct spawn_host {
	/* Configuration, fixed at create. */
	char *target; /* owned */
	char *system; /* owned */
	char *service_name;
	char *service_version;
	int workers;
	bool run_inline; /* handlers run on the I/O thread; no workers */
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
	int64_t keepalive_ms;
	int32_t max_message_bytes; /* 0 = gRPC's default */
	spawni_security sec;       /* credentials and token */
	spawni_target dial;        /* what each attempt dials (one member of a list) */
	spawn_host_event_fn on_event;
	void *event_user;
	int sigpipe[2]; /* [0] read by the signal thread, [1] written non-blocking */

	spawni_registry reg; /* changes only before started */
	/* The contracts (spawn_host_add_contract): serialized FileDescriptorSets
	 * concatenated, which is one FileDescriptorSet; sent after the
	 * registration on every stream. Changes only before started. */
	uint8_t *contracts; /* owned; NULL = none */
	size_t contracts_len;
	grpc_byte_buffer *contracts_bb; /* owned: the HostMessage, built by serve */

	pthread_mutex_t mu;
	pthread_cond_t state_cv; /* registered, registrations, stopping, backoff */
	pthread_cond_t jobs_cv;  /* job queue, workers_quit */

	/* Guarded by mu. */
	bool started; /* run or start happened: actors are fixed */
	bool running; /* spawn_host_run (or its thread) is active */
	bool stopping;
	bool bg; /* bg_thread exists and is not joined */
	pthread_t bg_thread;
	bool registered;
	uint64_t registrations;

	grpc_call *call;           /* the live stream, NULL when none (invariant 4) */
	uint64_t gen;              /* generation of the current stream */
	int outstanding;           /* batches in flight on call (invariant 2) */
	bool sending;              /* a SEND_MESSAGE is in flight (invariant 1) */
	grpc_byte_buffer *send_bb; /* the one in flight; owned */
	spawn_wq sq;               /* results waiting to be sent (malloc'd items) */
	grpc_metadata link_md[2];  /* Connect's request metadata: the token, spawn-link */

	job *jq_head, *jq_tail; /* tasks waiting for a worker */
	bool workers_quit;
};

static void host_event(spawn_host *h, spawn_host_event ev, int status, const char *msg)
{
	if (h->on_event) {
		h->on_event(h->event_user, ev, status, msg ? msg : "");
		return;
	}
	const char *what = ev == SPAWN_HOST_DISCONNECTED     ? "disconnected"
	                   : ev == SPAWN_HOST_REJECTED       ? "registration rejected"
	                   : ev == SPAWN_HOST_PROTOCOL_ERROR ? "protocol error"
	                                                     : NULL;
	if (what)
		fprintf(stderr, "libspawn: host of system %s at %s: %s: %s%s%s\n", h->system,
		        h->target, what, spawn_status_name(status), msg && *msg ? ": " : "",
		        msg ? msg : "");
}

/* ---- lifecycle ------------------------------------------------------- */

static bool empty(const char *s)
{
	return !s || !*s;
}

int spawn_host_create(spawn_host **out, const spawn_host_opts *opts)
{
	if (!out || !opts || empty(opts->target) || empty(opts->system) || opts->workers < 0 ||
	    opts->backoff_min_ms < 0 || opts->backoff_max_ms < 0 || opts->keepalive_ms < 0 ||
	    opts->max_message_bytes < 0 || (opts->run_inline && opts->workers > 0))
		return SPAWN_EINVAL;
	int64_t bmin = opts->backoff_min_ms ? opts->backoff_min_ms : DEFAULT_BACKOFF_MIN_MS;
	int64_t bmax = opts->backoff_max_ms ? opts->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
	if (bmin > bmax)
		return SPAWN_EINVAL;

	spawn_host *h = calloc(1, sizeof *h);
	if (!h)
		return SPAWN_ENOMEM;
	h->sigpipe[0] = h->sigpipe[1] = -1;
	h->target = strdup(opts->target);
	h->system = strdup(opts->system);
	h->service_name = strdup(opts->service_name ? opts->service_name : DEFAULT_SERVICE_NAME);
	h->service_version =
	    strdup(opts->service_version ? opts->service_version : DEFAULT_SERVICE_VERSION);
	if (!h->target || !h->system || !h->service_name || !h->service_version) {
		free(h->target);
		free(h->system);
		free(h->service_name);
		free(h->service_version);
		free(h);
		return SPAWN_ENOMEM;
	}
	if (pipe2(h->sigpipe, O_CLOEXEC) != 0) {
		free(h->target);
		free(h->system);
		free(h->service_name);
		free(h->service_version);
		free(h);
		return SPAWN_ESYS;
	}
	/* The writer is a signal handler: it must never block. */
	fcntl(h->sigpipe[1], F_SETFL, fcntl(h->sigpipe[1], F_GETFL) | O_NONBLOCK);
	h->workers = opts->workers ? opts->workers : 1;
	h->run_inline = opts->run_inline;
	h->backoff_min_ms = bmin;
	h->backoff_max_ms = bmax;
	h->keepalive_ms = opts->keepalive_ms;
	h->max_message_bytes = opts->max_message_bytes;
	h->on_event = opts->on_event;
	h->event_user = opts->event_user;
	spawn_absl_deadlock_detection_off(); /* before grpc_init; SPAWN_ABSL_DEADLOCK_DETECTION=1
	                                        keeps it */
	grpc_init();
	int rc = spawni_security_init(&h->sec, &opts->security);
	if (rc == SPAWN_OK) {
		rc = spawni_target_init(&h->dial, opts->target, &h->sec);
		if (rc != SPAWN_OK)
			spawni_security_fini(&h->sec);
	}
	if (rc != SPAWN_OK) {
		close(h->sigpipe[0]);
		close(h->sigpipe[1]);
		free(h->target);
		free(h->system);
		free(h->service_name);
		free(h->service_version);
		free(h);
		grpc_shutdown();
		return rc;
	}
	pthread_mutex_init(&h->mu, NULL);
	spawni_cond_init(&h->state_cv);
	spawni_cond_init(&h->jobs_cv);
	*out = h;
	return SPAWN_OK;
}

int spawn_host_add_actor(spawn_host *h, const spawn_actor_def *def)
{
	if (!h || !def)
		return SPAWN_EINVAL;
	pthread_mutex_lock(&h->mu);
	int rc = h->started || h->stopping ? SPAWN_ESTATE : spawni_registry_add(&h->reg, def);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

void spawn_host_stop(spawn_host *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	if (h->call)
		grpc_call_cancel(h->call, NULL);
	pthread_cond_broadcast(&h->state_cv);
	pthread_mutex_unlock(&h->mu);
}

void spawn_host_signal_stop(spawn_host *h)
{
	if (!h)
		return;
	int saved = errno;
	char c = PIPE_STOP;
	/* A full pipe already holds a stop request; nothing to add. */
	ssize_t n = write(h->sigpipe[1], &c, 1);
	(void)n;
	errno = saved;
}

static void item_free(void *user, spawn_wq_item *it)
{
	(void)user;
	free(it);
}

static void free_queues(spawn_host *h)
{
	while (h->jq_head) {
		job *j = h->jq_head;
		h->jq_head = j->next;
		spawn_arena_fini(&j->arena);
		free(j);
	}
	h->jq_tail = NULL;
	spawn_wq_clear(&h->sq, item_free, NULL);
}

void spawn_host_destroy(spawn_host *h)
{
	if (!h)
		return;
	spawn_host_stop(h);
	pthread_mutex_lock(&h->mu);
	bool join = h->bg;
	h->bg = false;
	pthread_mutex_unlock(&h->mu);
	if (join)
		pthread_join(h->bg_thread, NULL);
	free_queues(h);
	spawni_registry_fini(&h->reg);
	free(h->contracts);
	if (h->contracts_bb)
		grpc_byte_buffer_destroy(h->contracts_bb);
	pthread_cond_destroy(&h->jobs_cv);
	pthread_cond_destroy(&h->state_cv);
	pthread_mutex_destroy(&h->mu);
	close(h->sigpipe[0]);
	close(h->sigpipe[1]);
	free(h->target);
	free(h->system);
	free(h->service_name);
	free(h->service_version);
	spawni_security_fini(&h->sec);
	spawni_target_fini(&h->dial);
	free(h);
	grpc_shutdown();
}

/* holds: whether hay[0..n) contains needle[0..k) (k > 0). */
static bool holds(const uint8_t *hay, size_t n, const uint8_t *needle, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (hay[i] == needle[0] && !memcmp(hay + i, needle, k))
			return true;
	return false;
}

int spawn_host_add_contract(spawn_host *h, const void *set, size_t len)
{
	if (!h || (!set && len))
		return SPAWN_EINVAL;
	pthread_mutex_lock(&h->mu);
	int rc = SPAWN_OK;
	if (h->started) {
		rc = SPAWN_ESTATE;
	} else if (len && !holds(h->contracts, h->contracts_len, set, len)) {
		/* A set already added (two actors of one contract) is sent once. */
		uint8_t *p = realloc(h->contracts, h->contracts_len + len);
		if (!p) {
			rc = SPAWN_ENOMEM;
		} else {
			memcpy(p + h->contracts_len, set, len);
			h->contracts = p;
			h->contracts_len += len;
		}
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

/* ---- waiting for registration ------------------------------------------- */

int spawn_host_wait_registered(spawn_host *h, int64_t timeout_ms)
{
	if (!h)
		return SPAWN_EINVAL;
	int64_t deadline = spawni_deadline_ns(timeout_ms);
	bool timed_out = false;
	int rc;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		if (h->stopping) {
			rc = SPAWN_ECLOSED;
			break;
		}
		if (h->registered) {
			rc = SPAWN_OK;
			break;
		}
		if (timed_out) {
			rc = SPAWN_ETIMEDOUT;
			break;
		}
		timed_out = spawni_cond_wait_until(&h->state_cv, &h->mu, deadline);
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

uint64_t spawn_host_registrations(spawn_host *h)
{
	if (!h)
		return 0;
	pthread_mutex_lock(&h->mu);
	uint64_t n = h->registrations;
	pthread_mutex_unlock(&h->mu);
	return n;
}

int spawn_host_wait_registrations(spawn_host *h, uint64_t n, int64_t timeout_ms)
{
	if (!h)
		return SPAWN_EINVAL;
	int64_t deadline = spawni_deadline_ns(timeout_ms);
	bool timed_out = false;
	int rc;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		if (h->registrations >= n) {
			rc = SPAWN_OK;
			break;
		}
		if (h->stopping) {
			rc = SPAWN_ECLOSED;
			break;
		}
		if (timed_out) {
			rc = SPAWN_ETIMEDOUT;
			break;
		}
		timed_out = spawni_cond_wait_until(&h->state_cv, &h->mu, deadline);
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

/* ---- sending (any thread, under h->mu) ---------------------------------- */

/* pump_locked starts the next queued send if the slot is free
 * (invariant 1). */
static void pump_locked(spawn_host *h)
{
	if (h->sending || !h->sq.head || !h->call)
		return;
	size_t k;
	h->send_bb = spawn_wq_next(&h->sq, item_free, NULL, &k);
	grpc_op op = {.op = GRPC_OP_SEND_MESSAGE};
	op.data.send_message.send_message = h->send_bb;
	if (grpc_call_start_batch(h->call, &op, 1, TAG(TAG_SEND), NULL) != GRPC_CALL_OK) {
		/* Cannot happen with one op and no send in flight; treat the
		 * stream as broken rather than lose track of the buffer. */
		grpc_byte_buffer_destroy(h->send_bb);
		h->send_bb = NULL;
		grpc_call_cancel(h->call, NULL);
		return;
	}
	h->sending = true;
	h->outstanding++;
}

/* ---- running a task (a worker, or the I/O thread when inline) --------- */

/* run_job runs j's handler and packs its HostMessage; frees j. Returns the
 * result to queue (for stream *gen), or NULL when out of memory. */
static spawn_wq_item *run_job(spawn_host *h, job *j, uint64_t *gen)
{
	Spawn__Gateway__V1__InvocationResult res;
	spawni_execute(&h->reg, j->task, spawn_wall_ms(), &j->arena, &res);
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT;
	hm.result = &res;
	grpc_byte_buffer *bb = NULL;
	spawn_wq_item *o = NULL;
	Spawn__Gateway__V1__HostError too_big = SPAWN__GATEWAY__V1__HOST_ERROR__INIT;
	/* Without a configured limit, the gateway's default (4 MiB) applies. */
	size_t limit = h->max_message_bytes > 0 ? (size_t)h->max_message_bytes : 4u << 20;
	if (protobuf_c_message_get_packed_size(&hm.base) > limit) {
		/* Sending it would fail the whole stream (and every call on
		 * it): answer this one call with an error instead. */
		too_big.code = SPAWN_RESOURCE_EXHAUSTED;
		too_big.message = "the action's result exceeds the message size limit";
		res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR;
		res.error = &too_big;
	}
	if (spawn_wire_pack(&hm.base, &bb) != 0 || !(o = malloc(sizeof *o))) {
		/* Unanswered, the gateway times the call out: the best we
		 * can do without memory. */
		fprintf(stderr, "libspawn: out of memory packing a result; dropped\n");
		if (bb)
			grpc_byte_buffer_destroy(bb);
		bb = NULL;
	}
	*gen = j->gen;
	spawn_arena_fini(&j->arena);
	free(j);
	if (!bb)
		return NULL;
	o->bb = bb;
	o->batchable = true;
	return o;
}

/* queue_result_locked queues o (a result for stream gen) to be sent, or
 * drops it when that stream is gone (invariant 3). Does not start a send. */
static void queue_result_locked(spawn_host *h, spawn_wq_item *o, uint64_t gen)
{
	if (h->call && gen == h->gen) {
		spawn_wq_push(&h->sq, o);
	} else {
		grpc_byte_buffer_destroy(o->bb);
		free(o);
	}
}

/* ---- workers ----------------------------------------------------------- */

static void *worker_main(void *arg)
{
	spawn_host *h = arg;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->jq_head && !h->workers_quit)
			pthread_cond_wait(&h->jobs_cv, &h->mu);
		if (h->workers_quit)
			break;
		job *j = h->jq_head;
		h->jq_head = j->next;
		if (!h->jq_head)
			h->jq_tail = NULL;
		pthread_mutex_unlock(&h->mu);

		uint64_t gen;
		spawn_wq_item *o = run_job(h, j, &gen);

		pthread_mutex_lock(&h->mu);
		if (o) {
			queue_result_locked(h, o, gen);
			pump_locked(h);
		}
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* run_inline runs the jobs list (of the current stream) on the I/O thread
 * (spawn_host_opts.run_inline): no hand-off to a worker, and their results
 * leave together, in one ResultBatch when the gateway granted batches. */
static void run_inline(spawn_host *h, job *list)
{
	spawn_wq_item *head = NULL, **tail = &head;
	uint64_t gen = 0;
	while (list) {
		job *j = list;
		list = j->next;
		spawn_wq_item *o = run_job(h, j, &gen);
		if (o) {
			o->next = NULL;
			*tail = o;
			tail = &o->next;
		}
	}
	pthread_mutex_lock(&h->mu);
	while (head) {
		spawn_wq_item *o = head;
		head = o->next;
		queue_result_locked(h, o, gen); /* one stream: the I/O thread's own */
	}
	pump_locked(h);
	pthread_mutex_unlock(&h->mu);
}

/* ---- signal thread ----------------------------------------------------- */

static void *signal_main(void *arg)
{
	spawn_host *h = arg;
	for (;;) {
		char c;
		ssize_t n = read(h->sigpipe[0], &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || c == PIPE_QUIT)
			break;
		spawn_host_stop(h);
	}
	return NULL;
}

/* ---- the I/O thread ---------------------------------------------------- */

/* What one connection attempt keeps on the I/O thread's stack. */
typedef struct conn {
	grpc_channel *channel;
	grpc_call *call;
	grpc_metadata_array md_initial;
	grpc_metadata_array md_trailing;
	grpc_byte_buffer *reg_bb;  /* the registration in flight; owned */
	grpc_byte_buffer *recv_bb; /* filled by RECV_MESSAGE; owned */
	grpc_status_code status;
	grpc_slice details;
	bool got_status;
	bool registered; /* the gateway accepted us on this stream */
	bool saw_md;     /* md_initial was looked at for the batch grant */
} conn;

static int arm_recv_locked(spawn_host *h, conn *c, bool first)
{
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	size_t n = 0;
	if (first) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->md_initial;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &c->recv_bb;
	if (grpc_call_start_batch(c->call, ops, n, TAG(TAG_RECV), NULL) != GRPC_CALL_OK)
		return -1;
	h->outstanding++;
	return 0;
}

/* open_stream creates the call and starts the three standing batches.
 * Returns false when stopping (nothing left to clean but the channel). */
static bool open_stream(spawn_host *h, conn *c, grpc_completion_queue *cq,
                        const grpc_byte_buffer *reg_template)
{
	c->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
	                                   grpc_slice_from_static_string(SPAWNI_METHOD_CONNECT),
	                                   NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (!c->call)
		spawni_oom("grpc_channel_create_call");
	c->reg_bb = grpc_byte_buffer_copy((grpc_byte_buffer *)reg_template);

	pthread_mutex_lock(&h->mu);
	if (h->stopping) {
		pthread_mutex_unlock(&h->mu);
		return false;
	}
	h->call = c->call;
	h->gen++;
	h->outstanding = 0;
	/* One result per message until the gateway grants batches. */
	spawn_wq_set_batch(&h->sq, 1, SPAWNI_BATCH_BYTES);

	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	spawni_security_md(&h->sec, &ops[0]);
	/* Ask for batches: the token (if any) and spawn-link. */
	size_t nmd = ops[0].data.send_initial_metadata.count;
	if (nmd)
		h->link_md[0] = ops[0].data.send_initial_metadata.metadata[0];
	h->link_md[nmd].key = grpc_slice_from_static_string(SPAWN_LINK_MD_KEY);
	h->link_md[nmd].value = grpc_slice_from_static_string(SPAWN_LINK_MD_BATCH);
	ops[0].data.send_initial_metadata.count = nmd + 1;
	ops[0].data.send_initial_metadata.metadata = h->link_md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = c->reg_bb;
	bool ok = grpc_call_start_batch(c->call, ops, 2, TAG(TAG_START), NULL) == GRPC_CALL_OK;
	if (ok) {
		h->outstanding++;
		h->sending = true; /* the registration holds the send slot */
	}
	if (ok && h->contracts_bb) {
		/* The contracts go right after the registration (nothing is
		 * queued on a new stream), alone: not a result to batch. */
		spawn_wq_item *o = calloc(1, sizeof *o);
		if (!o)
			spawni_oom("contracts");
		o->bb = grpc_byte_buffer_copy(h->contracts_bb);
		o->len = grpc_byte_buffer_length(o->bb);
		o->batchable = false;
		spawn_wq_push(&h->sq, o);
	}
	ok = ok && arm_recv_locked(h, c, true) == 0;
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &c->md_trailing;
	ops[0].data.recv_status_on_client.status = &c->status;
	ops[0].data.recv_status_on_client.status_details = &c->details;
	if (grpc_call_start_batch(c->call, ops, 1, TAG(TAG_STATUS), NULL) == GRPC_CALL_OK)
		h->outstanding++;
	else
		spawni_fatal("cannot start RECV_STATUS_ON_CLIENT"); /* no way to end the call */
	if (!ok)
		grpc_call_cancel(c->call, NULL);
	pthread_mutex_unlock(&h->mu);
	return true;
}

/* on_batch queues one job per task of a TaskBatch (data[0..len) the whole
 * GatewayMessage, items its tasks); false on a malformed batch. */
static bool on_batch(spawn_host *h, const spawn_span *items, size_t n)
{
	if (n == 0 || n > SPAWN_BATCH_MAX_ITEMS)
		return false;
	job *first = NULL, *last = NULL;
	for (size_t i = 0; i < n; i++) {
		job *t = malloc(sizeof *t);
		if (!t)
			spawni_oom("job");
		spawn_arena_init(&t->arena, 0);
		t->next = NULL;
		t->task = (const Spawn__Gateway__V1__InvocationTask *)protobuf_c_message_unpack(
		    &spawn__gateway__v1__invocation_task__descriptor, &t->arena.pbc, items[i].len,
		    items[i].data);
		if (last)
			last->next = t;
		else
			first = t;
		last = t;
		if (!t->task) {
			while (first) {
				job *x = first;
				first = x->next;
				spawn_arena_fini(&x->arena);
				free(x);
			}
			return false;
		}
	}
	pthread_mutex_lock(&h->mu);
	for (job *t = first; t; t = t->next)
		t->gen = h->gen;
	if (h->run_inline) {
		pthread_mutex_unlock(&h->mu);
		run_inline(h, first);
		return true;
	}
	if (h->jq_tail)
		h->jq_tail->next = first;
	else
		h->jq_head = first;
	h->jq_tail = last;
	pthread_cond_broadcast(&h->jobs_cv);
	pthread_mutex_unlock(&h->mu);
	return true;
}

/* on_message handles one GatewayMessage; returns false to drop the stream. */
static bool on_message(spawn_host *h, conn *c)
{
	if (!c->saw_md) {
		/* The initial metadata arrived with the first message. */
		c->saw_md = true;
		for (size_t i = 0; i < c->md_initial.count; i++)
			if (!grpc_slice_str_cmp(c->md_initial.metadata[i].key, SPAWN_LINK_MD_KEY) &&
			    !grpc_slice_str_cmp(c->md_initial.metadata[i].value,
			                        SPAWN_LINK_MD_BATCH)) {
				/* Within the message limit too (the gateway's default
				 * when none is configured), less the batch's header. */
				size_t limit = h->max_message_bytes > 0
				                   ? (size_t)h->max_message_bytes
				                   : 4u << 20;
				size_t bytes = SPAWNI_BATCH_BYTES < limit - 16 ? SPAWNI_BATCH_BYTES
				                                               : limit - 16;
				pthread_mutex_lock(&h->mu);
				spawn_wq_set_batch(&h->sq, SPAWNI_BATCH_MAX, bytes);
				pthread_mutex_unlock(&h->mu);
			}
	}
	uint8_t *data = NULL;
	size_t len = 0;
	if (spawn_wire_bytes(c->recv_bb, NULL, &data, &len) != 0)
		spawni_oom("message bytes");
	spawn_span items[SPAWN_BATCH_MAX_ITEMS];
	size_t n = 0;
	int kind = spawn_batch_scan(data, len, items, SPAWN_BATCH_MAX_ITEMS, &n);
	if (kind != 0) {
		bool ok = kind > 0 && on_batch(h, items, n);
		free(data);
		grpc_byte_buffer_destroy(c->recv_bb);
		c->recv_bb = NULL;
		if (!ok)
			host_event(h, SPAWN_HOST_PROTOCOL_ERROR, SPAWN_EPROTO,
			           "malformed TaskBatch");
		return ok;
	}
	free(data);
	job *j = malloc(sizeof *j);
	if (!j)
		spawni_oom("job");
	spawn_arena_init(&j->arena, 0);
	ProtobufCMessage *m = NULL;
	int rc = spawn_wire_unpack(&spawn__gateway__v1__gateway_message__descriptor, c->recv_bb,
	                           &j->arena, &m);
	grpc_byte_buffer_destroy(c->recv_bb);
	c->recv_bb = NULL;
	if (rc != 0) {
		spawn_arena_fini(&j->arena);
		free(j);
		host_event(h, SPAWN_HOST_PROTOCOL_ERROR, SPAWN_EPROTO, "unparsable GatewayMessage");
		return false;
	}
	Spawn__Gateway__V1__GatewayMessage *gm = (Spawn__Gateway__V1__GatewayMessage *)m;
	switch (gm->msg_case) {
	case SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION:
		j->task = gm->invocation;
		j->next = NULL;
		pthread_mutex_lock(&h->mu);
		j->gen = h->gen;
		if (h->run_inline) {
			pthread_mutex_unlock(&h->mu);
			run_inline(h, j);
			return true;
		}
		if (h->jq_tail)
			h->jq_tail->next = j;
		else
			h->jq_head = j;
		h->jq_tail = j;
		pthread_cond_signal(&h->jobs_cv);
		pthread_mutex_unlock(&h->mu);
		return true;
	case SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_REGISTRATION: {
		const Spawn__RequestStatus *st = gm->registration ? gm->registration->status : NULL;
		bool refused = st && (st->status == SPAWN__STATUS__ERROR ||
		                      st->status == SPAWN__STATUS__ACTOR_NOT_FOUND);
		if (refused) {
			host_event(h, SPAWN_HOST_REJECTED, SPAWN_FAILED_PRECONDITION, st->message);
		} else if (!c->registered) {
			c->registered = true;
			pthread_mutex_lock(&h->mu);
			h->registered = true;
			h->registrations++;
			pthread_cond_broadcast(&h->state_cv);
			pthread_mutex_unlock(&h->mu);
			host_event(h, SPAWN_HOST_REGISTERED, SPAWN_OK, st ? st->message : "");
		}
		spawn_arena_fini(&j->arena);
		free(j);
		return !refused;
	}
	default:
		/* A message kind newer than us: ignore it (forward compatible). */
		spawn_arena_fini(&j->arena);
		free(j);
		return true;
	}
}

/* serve_stream runs one connection from open to closed. Sets *registered
 * when the gateway accepted the registration on it. */
static void serve_stream(spawn_host *h, grpc_completion_queue *cq, grpc_channel_credentials *creds,
                         const grpc_channel_args *args, const grpc_byte_buffer *reg_template,
                         bool *registered)
{
	conn c;
	memset(&c, 0, sizeof c);
	grpc_metadata_array_init(&c.md_initial);
	grpc_metadata_array_init(&c.md_trailing);
	c.details = grpc_empty_slice();
	/* A fresh channel per attempt: our backoff decides when to dial, not
	 * the channel's own (which would also wait up to two minutes). */
	c.channel = grpc_channel_create(h->dial.uri, creds, args);
	if (!open_stream(h, &c, cq, reg_template))
		goto done;

	for (;;) {
		pthread_mutex_lock(&h->mu);
		bool finished = c.got_status && h->outstanding == 0;
		pthread_mutex_unlock(&h->mu);
		if (finished)
			break;
		grpc_event ev =
		    grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			spawni_fatal("host completion queue ended while a stream was open");
		switch ((uintptr_t)ev.tag) {
		case TAG_START:
			pthread_mutex_lock(&h->mu);
			h->outstanding--;
			h->sending = false;
			grpc_byte_buffer_destroy(c.reg_bb);
			c.reg_bb = NULL;
			if (ev.success)
				pump_locked(h);
			pthread_mutex_unlock(&h->mu);
			break;
		case TAG_SEND:
			pthread_mutex_lock(&h->mu);
			h->outstanding--;
			h->sending = false;
			grpc_byte_buffer_destroy(h->send_bb);
			h->send_bb = NULL;
			if (ev.success)
				pump_locked(h);
			pthread_mutex_unlock(&h->mu);
			break;
		case TAG_RECV: {
			pthread_mutex_lock(&h->mu);
			h->outstanding--;
			pthread_mutex_unlock(&h->mu);
			if (!ev.success || !c.recv_bb) {
				/* The gateway half-closed; the status follows. Make
				 * sure it does. */
				if (c.recv_bb) {
					grpc_byte_buffer_destroy(c.recv_bb);
					c.recv_bb = NULL;
				}
				grpc_call_cancel(c.call, NULL);
				break;
			}
			bool keep = on_message(h, &c);
			pthread_mutex_lock(&h->mu);
			if (!keep || !h->call || arm_recv_locked(h, &c, false) != 0)
				grpc_call_cancel(c.call, NULL);
			pthread_mutex_unlock(&h->mu);
			break;
		}
		case TAG_STATUS:
			pthread_mutex_lock(&h->mu);
			h->outstanding--;
			c.got_status = true;
			h->call = NULL; /* no new batches, no cancels (invariants 2, 4) */
			h->registered = false;
			/* Results queued for this stream have nobody to go to. */
			spawn_wq_clear(&h->sq, item_free, NULL);
			pthread_cond_broadcast(&h->state_cv);
			pthread_mutex_unlock(&h->mu);
			/* Flushes whatever is still pending on the call. */
			grpc_call_cancel(c.call, NULL);
			break;
		}
	}

	pthread_mutex_lock(&h->mu);
	bool stopping = h->stopping;
	pthread_mutex_unlock(&h->mu);
	if (!stopping) {
		char *why = grpc_slice_to_c_string(c.details);
		host_event(h, SPAWN_HOST_DISCONNECTED, (int)c.status, why);
		gpr_free(why);
	}
done:
	*registered = c.registered;
	if (c.call)
		grpc_call_unref(c.call);
	if (c.reg_bb)
		grpc_byte_buffer_destroy(c.reg_bb);
	grpc_channel_destroy(c.channel);
	grpc_metadata_array_destroy(&c.md_initial);
	grpc_metadata_array_destroy(&c.md_trailing);
	grpc_slice_unref(c.details);
}

/* build_registration packs the RegistrationRequest once per run. */
static int build_registration(spawn_host *h, grpc_byte_buffer **out)
{
	spawn_arena a;
	spawn_arena_init(&a, 0);
	Spawn__RegistrationRequest *req;
	spawni_service svc = {h->system, h->service_name, h->service_version};
	int rc = spawni_registration(&h->reg, &svc, &a, &req);
	if (rc == SPAWN_OK) {
		Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
		hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION;
		hm.registration = req;
		if (spawn_wire_pack(&hm.base, out) != 0)
			rc = SPAWN_ENOMEM;
	}
	spawn_arena_fini(&a);
	return rc;
}

/* serve is spawn_host_run after the entry checks; h->running is set. */
static int serve(spawn_host *h)
{
	grpc_byte_buffer *reg = NULL;
	int rc = build_registration(h, &reg);
	if (rc)
		return rc;
	if (h->contracts && !h->contracts_bb) {
		Spawn__Gateway__V1__Contracts ct = SPAWN__GATEWAY__V1__CONTRACTS__INIT;
		ct.files.data = h->contracts;
		ct.files.len = h->contracts_len;
		Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
		hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_CONTRACTS;
		hm.contracts = &ct;
		if (spawn_wire_pack(&hm.base, &h->contracts_bb) != 0) {
			grpc_byte_buffer_destroy(reg);
			return SPAWN_ENOMEM;
		}
	}

	pthread_t sig_thread;
	pthread_t *workers = calloc((size_t)h->workers, sizeof *workers);
	int n_workers = 0;
	bool sig_started = false;
	if (!workers) {
		rc = SPAWN_ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&h->mu);
	h->workers_quit = false;
	pthread_mutex_unlock(&h->mu);
	for (; !h->run_inline && n_workers < h->workers; n_workers++) {
		if (pthread_create(&workers[n_workers], NULL, worker_main, h) != 0) {
			rc = SPAWN_ESYS;
			goto out;
		}
	}
	if (pthread_create(&sig_thread, NULL, signal_main, h) != 0) {
		rc = SPAWN_ESYS;
		goto out;
	}
	sig_started = true;

	char agent[64];
	snprintf(agent, sizeof agent, "libspawn/%s", SPAWN_VERSION_STRING);
	grpc_arg args[9 + SPAWNI_SECURITY_MAX_ARGS + SPAWNI_TARGET_MAX_ARGS];
	size_t n_args = 0;
	args[n_args].type = GRPC_ARG_STRING;
	args[n_args].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
	args[n_args++].value.string = agent;
	args[n_args].type = GRPC_ARG_INTEGER;
	args[n_args].key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
	args[n_args++].value.integer = (int)h->backoff_min_ms;
	args[n_args].type = GRPC_ARG_INTEGER;
	args[n_args].key = (char *)GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
	args[n_args++].value.integer = CONNECT_TIMEOUT_MS;
	args[n_args].type = GRPC_ARG_INTEGER;
	args[n_args].key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
	args[n_args++].value.integer = (int)h->backoff_max_ms;
	if (h->keepalive_ms > 0) {
		args[n_args].type = GRPC_ARG_INTEGER;
		args[n_args].key = (char *)GRPC_ARG_KEEPALIVE_TIME_MS;
		args[n_args++].value.integer = (int)h->keepalive_ms;
		args[n_args].type = GRPC_ARG_INTEGER;
		args[n_args].key = (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
		args[n_args++].value.integer = (int)h->keepalive_ms;
		args[n_args].type = GRPC_ARG_INTEGER;
		args[n_args].key = (char *)GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA;
		args[n_args++].value.integer = 0;
	}
	if (h->max_message_bytes > 0) {
		args[n_args].type = GRPC_ARG_INTEGER;
		args[n_args].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
		args[n_args++].value.integer = h->max_message_bytes;
		args[n_args].type = GRPC_ARG_INTEGER;
		args[n_args].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
		args[n_args++].value.integer = h->max_message_bytes;
	}
	n_args += spawni_security_args(&h->sec, args + n_args);
	n_args += spawni_target_args(&h->dial, args + n_args);
	grpc_channel_args chargs = {.num_args = n_args, .args = args};

	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	grpc_channel_credentials *creds = h->sec.creds;
	unsigned seed = (unsigned)spawn_now_ns() ^ (unsigned)(uintptr_t)h ^ (unsigned)getpid();
	unsigned attempt = 0;
	for (;;) {
		bool registered = false;
		serve_stream(h, cq, creds, &chargs, reg, &registered);
		if (registered)
			attempt = 0;
		int64_t delay =
		    spawni_backoff_ms(attempt, h->backoff_min_ms, h->backoff_max_ms, &seed);
		if (attempt < 64)
			attempt++;
		int64_t deadline = spawni_deadline_ns(delay);
		bool stop;
		pthread_mutex_lock(&h->mu);
		while (!h->stopping && !spawni_cond_wait_until(&h->state_cv, &h->mu, deadline))
			;
		stop = h->stopping;
		pthread_mutex_unlock(&h->mu);
		if (stop)
			break;
	}
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);

out:
	if (sig_started) {
		char c = PIPE_QUIT;
		while (write(h->sigpipe[1], &c, 1) < 0 && errno == EINTR)
			;
		pthread_join(sig_thread, NULL);
	}
	pthread_mutex_lock(&h->mu);
	h->workers_quit = true;
	pthread_cond_broadcast(&h->jobs_cv);
	pthread_mutex_unlock(&h->mu);
	for (int i = 0; i < n_workers; i++)
		pthread_join(workers[i], NULL);
	free(workers);
	pthread_mutex_lock(&h->mu);
	free_queues(h);
	pthread_mutex_unlock(&h->mu);
	grpc_byte_buffer_destroy(reg);
	return rc;
}

/* enter checks whether run may begin and marks it running. */
static int enter(spawn_host *h, bool background)
{
	if (!h)
		return SPAWN_EINVAL;
	int rc = SPAWN_OK;
	pthread_mutex_lock(&h->mu);
	if (h->running || h->bg)
		rc = SPAWN_ESTATE;
	else if (h->stopping)
		rc = background ? SPAWN_ECLOSED : SPAWN_OK;
	else if (h->reg.n == 0)
		rc = SPAWN_EINVAL;
	if (rc == SPAWN_OK && !h->stopping) {
		h->running = true;
		h->started = true;
	} else if (rc == SPAWN_OK) {
		rc = 1; /* stopped before run: return at once with SPAWN_OK */
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

static int leave(spawn_host *h, int rc)
{
	pthread_mutex_lock(&h->mu);
	h->running = false;
	h->registered = false;
	pthread_cond_broadcast(&h->state_cv);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int spawn_host_run(spawn_host *h)
{
	int rc = enter(h, false);
	if (rc == 1)
		return SPAWN_OK;
	if (rc)
		return rc;
	return leave(h, serve(h));
}

static void *bg_main(void *arg)
{
	spawn_host *h = arg;
	int rc = leave(h, serve(h));
	if (rc != SPAWN_OK)
		fprintf(stderr, "libspawn: host of system %s stopped: %s\n", h->system,
		        spawn_strerror(rc));
	return NULL;
}

int spawn_host_start(spawn_host *h)
{
	int rc = enter(h, true);
	if (rc)
		return rc;
	pthread_mutex_lock(&h->mu);
	h->bg = true;
	pthread_mutex_unlock(&h->mu);
	if (pthread_create(&h->bg_thread, NULL, bg_main, h) != 0) {
		pthread_mutex_lock(&h->mu);
		h->bg = false;
		pthread_mutex_unlock(&h->mu);
		leave(h, 0);
		return SPAWN_ESYS;
	}
	return SPAWN_OK;
}
