/* client.c - ActorGateway.Invoke and .Spawn over one gRPC channel.
 *
 * A synchronous call has its own pluck completion queue, so callers on
 * many threads never wait for each other or hop threads. Asynchronous
 * calls share one next-queue, served by the client thread; each in-flight
 * call is linked in c->calls so spawn_client_destroy can cancel it.
 *
 * Gateway restarts (spawn_client_opts in spawn.h). gRPC core notices that
 * a peer closed a connection only while some thread polls: between calls
 * nobody does (the client channel's backup poller runs every 5 s), so the
 * first call after a restart used to be written on the dead connection
 * and fail UNAVAILABLE ("Broken pipe"). gRPC cannot retry it: it cannot
 * know that the gateway never read it. So the client thread exists from
 * spawn_client_create on and keeps a connectivity watch armed on its
 * queue; polling that queue polls the connection, whose close is then
 * seen at once, and the next call dials the new gateway. Calls with a
 * deadline also carry wait-for-ready, which holds a call that was never
 * sent while the channel reconnects (never one that was sent, so the
 * at-most-once semantics of Invoke stay), and the reconnect backoff is
 * short (20 ms growing to 50 ms, +-20% jitter) so that a waiting call goes
 * out well within 100 ms of the new gateway listening. The cost: while
 * the gateway is down, a waiting client dials it every 50 ms or so.
 *
 * The watch's states (guarded by mu):
 *   OFF (no_watch, or before the thread) -- create --> ARMED
 *   ARMED -- state changed or WATCH_MS passed --> re-armed unless closing
 *   ARMED -- closing, channel destroyed (SHUTDOWN fires the watch) --> OFF
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

/* One unary call: the op array, its buffers and its results. Its address
 * is the completion-queue tag. */
typedef struct unary {
	grpc_call *call;
	grpc_op ops[6];
	grpc_metadata_array md_initial;
	grpc_metadata_array md_trailing;
	grpc_byte_buffer *send_bb; /* owned */
	grpc_byte_buffer *recv_bb; /* owned once received */
	grpc_status_code status;
	grpc_slice details;
} unary;

typedef enum call_kind { KIND_INVOKE, KIND_SPAWN } call_kind;

/* An asynchronous call; u first so the tag is the acall. */
typedef struct acall {
	unary u;
	spawn_reply_fn cb;
	void *user;
	struct acall *prev, *next; /* in c->calls while cancellable */
} acall;

/* A watch that sees no change re-arms after this long; it bounds how long
 * destroy could wait should a destroyed channel not fire the watch. */
#define WATCH_MS 1000

#define DEFAULT_RECONNECT_MIN_MS 20
#define DEFAULT_RECONNECT_MAX_MS 50

/* Retries of answers the gateway marks never dispatched: 10 ms doubling
 * to 100 ms (+-20%), until the call's deadline; a call without a deadline
 * retries this long. */
#define RETRY_MIN_MS                10
#define RETRY_MAX_MS                100
#define RETRY_NO_DEADLINE_MS        5000
#define SPAWNI_RETRY_KEY            "spawn-retry"
#define SPAWNI_RETRY_NOT_DISPATCHED "not-dispatched"

struct spawn_client {
	grpc_channel *channel;
	char *target;        /* owned; for messages */
	bool wait_for_ready; /* calls with a deadline wait for a connection */
	bool retry;          /* synchronous calls retry answers marked never dispatched */
	spawni_security sec; /* credentials and token; fixed after create */
	spawni_target dial;  /* what the channel dials; fixed after create */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* inflight reached 0; watching became false */
	char watch_tag;    /* its address is the watch's tag on cq */

	/* Guarded by mu. */
	grpc_completion_queue *cq; /* async calls and the watch; NULL until needed */
	pthread_t thread;          /* serves cq; exists when cq does */
	acall *calls;              /* cancellable async calls */
	size_t inflight;           /* async calls whose callback has not returned */
	bool watching;             /* a watch is armed on cq */
	bool closing;
};

/* ---- replies ----------------------------------------------------------- */

/* reply_status fills out's status and message and returns the status. */
static int reply_status(spawn_reply *out, int status, const char *msg)
{
	out->status = status;
	free(out->message);
	out->message = NULL;
	if (status != SPAWN_OK)
		out->message = strdup(msg && *msg ? msg : spawn_strerror(status));
	return status;
}

/* Spawn's RequestStatus inside a successful gRPC response can still say
 * the call failed (for Spawn SDK compatibility); map it to a code. */
static int request_status_code(const Spawn__RequestStatus *st)
{
	if (!st)
		return SPAWN_OK;
	switch (st->status) {
	case SPAWN__STATUS__ACTOR_NOT_FOUND:
		return SPAWN_NOT_FOUND;
	case SPAWN__STATUS__ERROR:
		return SPAWN_UNKNOWN;
	default:
		return SPAWN_OK;
	}
}

static int parse_reply(spawn_client *c, call_kind kind, unary *u, spawn_reply *out)
{
	if (u->status != GRPC_STATUS_OK) {
		char *why = grpc_slice_to_c_string(u->details);
		int rc = reply_status(out, spawni_grpc_code((int)u->status), why);
		/* A call that waited for a connection in vain: say so. */
		if (rc == SPAWN_DEADLINE_EXCEEDED &&
		    grpc_channel_check_connectivity_state(c->channel, 0) != GRPC_CHANNEL_READY) {
			char msg[512];
			snprintf(msg, sizeof msg, "%s (no connection to the gateway at %s)",
			         why && *why ? why : "deadline exceeded", c->target);
			reply_status(out, rc, msg);
		}
		gpr_free(why);
		return rc;
	}
	const ProtobufCMessageDescriptor *d = kind == KIND_INVOKE
	                                          ? &spawn__invocation_response__descriptor
	                                          : &spawn__spawn_response__descriptor;
	ProtobufCMessage *m = NULL;
	if (!u->recv_bb || spawn_wire_unpack(d, u->recv_bb, NULL, &m) != 0)
		return reply_status(out, SPAWN_EPROTO, "gateway sent an unparsable response");
	int rc;
	if (kind == KIND_INVOKE) {
		Spawn__InvocationResponse *r = (Spawn__InvocationResponse *)m;
		rc = request_status_code(r->status);
		if (rc != SPAWN_OK) {
			reply_status(out, rc, r->status->message);
		} else if (r->payload_case == SPAWN__INVOCATION_RESPONSE__PAYLOAD_VALUE &&
		           r->value) {
			const Google__Protobuf__Any *v = r->value;
			rc = spawni_payload_dup(&out->payload, v->type_url ? v->type_url : "",
			                        v->value.data, v->value.len);
			reply_status(out, rc, NULL);
		} else {
			reply_status(out, SPAWN_OK, NULL);
		}
	} else {
		Spawn__SpawnResponse *r = (Spawn__SpawnResponse *)m;
		rc = request_status_code(r->status);
		reply_status(out, rc, rc ? r->status->message : NULL);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

/* ---- requests ---------------------------------------------------------- */

static bool empty(const char *s)
{
	return !s || !*s;
}

/* The request's own checks (system aside): what makes it unsendable. */
static int check_request(const spawn_request *req)
{
	if (empty(req->actor) || empty(req->action))
		return SPAWN_EINVAL;
	if (!req->payload.type_url && req->payload.len)
		return SPAWN_EINVAL;
	if (req->payload.len && !req->payload.data)
		return SPAWN_EINVAL;
	if (req->n_metadata && !req->metadata)
		return SPAWN_EINVAL;
	for (size_t i = 0; i < req->n_metadata; i++)
		if (!req->metadata[i].key)
			return SPAWN_EINVAL;
	return SPAWN_OK;
}

/* str returns s itself (borrow) or its copy in a (copy); NULL on OOM. */
static char *str(spawn_arena *a, const char *s, bool copy)
{
	return copy ? spawn_arena_strdup(a, s) : (char *)s;
}

int spawni_request_msg(const spawn_request *req, const char *system, bool copy, spawn_arena *a,
                       Spawn__InvocationRequest **out)
{
	int rc = check_request(req);
	if (rc)
		return rc;
	if (empty(system))
		return SPAWN_EINVAL;
	Spawn__InvocationRequest *m = spawni_new(a, &spawn__invocation_request__descriptor);
	Spawn__Actors__ActorSystem *sys = spawni_new(a, &spawn__actors__actor_system__descriptor);
	Spawn__Actors__Actor *actor = spawni_new(a, &spawn__actors__actor__descriptor);
	Spawn__Actors__ActorId *id = spawni_new(a, &spawn__actors__actor_id__descriptor);
	if (!m || !sys || !actor || !id)
		return SPAWN_ENOMEM;
	if (!(sys->name = str(a, system, copy)) || !(id->name = str(a, req->actor, copy)) ||
	    !(m->action_name = str(a, req->action, copy)))
		return SPAWN_ENOMEM;
	id->system = sys->name;
	if (!empty(req->parent)) {
		if (!(id->parent = str(a, req->parent, copy)))
			return SPAWN_ENOMEM;
		m->register_ref = id->parent;
	}
	actor->id = id;
	m->system = sys;
	m->actor = actor;
	m->async = req->async;
	m->pooled = req->pooled;
	m->scheduled_to = req->scheduled_to_ms;
	if (req->payload.type_url) {
		Google__Protobuf__Any *any = spawni_new(a, &google__protobuf__any__descriptor);
		if (!any || !(any->type_url = str(a, req->payload.type_url, copy)))
			return SPAWN_ENOMEM;
		any->value.len = req->payload.len;
		any->value.data = (uint8_t *)req->payload.data;
		if (copy && req->payload.len &&
		    !(any->value.data = spawn_arena_memdup(a, req->payload.data, req->payload.len)))
			return SPAWN_ENOMEM;
		m->payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
		m->value = any;
	} else {
		if (!(m->noop = spawni_new(a, &spawn__noop__descriptor)))
			return SPAWN_ENOMEM;
		m->payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_NOOP;
	}
	if (req->n_metadata) {
		m->metadata = spawn_arena_alloc(a, req->n_metadata * sizeof *m->metadata);
		if (!m->metadata)
			return SPAWN_ENOMEM;
		for (size_t i = 0; i < req->n_metadata; i++) {
			Spawn__InvocationRequest__MetadataEntry *e =
			    spawni_new(a, &spawn__invocation_request__metadata_entry__descriptor);
			if (!e)
				return SPAWN_ENOMEM;
			const char *v = req->metadata[i].value ? req->metadata[i].value : "";
			if (!(e->key = str(a, req->metadata[i].key, copy)) ||
			    !(e->value = str(a, v, copy)))
				return SPAWN_ENOMEM;
			m->metadata[m->n_metadata++] = e;
		}
	}
	*out = m;
	return SPAWN_OK;
}

static int build_invoke(const spawn_request *req, grpc_byte_buffer **out)
{
	if (empty(req->system))
		return SPAWN_EINVAL;
	spawn_arena a;
	spawn_arena_init(&a, 0);
	/* The message only borrows the caller's strings: it is packed before
	 * we return. */
	Spawn__InvocationRequest *m;
	int rc = spawni_request_msg(req, req->system, false, &a, &m);
	if (rc == SPAWN_OK)
		rc = spawn_wire_pack(&m->base, out) == 0 ? SPAWN_OK : SPAWN_ENOMEM;
	spawn_arena_fini(&a);
	return rc;
}

static int build_spawn(const char *system, const spawn_actor_id *actors, size_t n,
                       grpc_byte_buffer **out)
{
	if (empty(system) || !actors || n == 0)
		return SPAWN_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (empty(actors[i].name) || empty(actors[i].parent))
			return SPAWN_EINVAL;
	spawn_arena a;
	spawn_arena_init(&a, 0);
	int rc = SPAWN_ENOMEM;
	Spawn__SpawnRequest *m = spawni_new(&a, &spawn__spawn_request__descriptor);
	if (!m || !(m->actors = spawn_arena_alloc(&a, n * sizeof *m->actors)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		Spawn__Actors__ActorId *id = spawni_new(&a, &spawn__actors__actor_id__descriptor);
		if (!id)
			goto out;
		id->name = (char *)actors[i].name;
		id->system = (char *)system;
		id->parent = (char *)actors[i].parent;
		m->actors[m->n_actors++] = id;
	}
	rc = spawn_wire_pack(&m->base, out) == 0 ? SPAWN_OK : SPAWN_ENOMEM;
out:
	spawn_arena_fini(&a);
	return rc;
}

/* ---- unary calls --------------------------------------------------------- */

/* unary_start creates the call and starts its single batch; takes
 * ownership of bb. On failure everything is released. */
static int unary_start(spawn_client *c, unary *u, const char *method, grpc_byte_buffer *bb,
                       grpc_completion_queue *cq, int64_t timeout_ms)
{
	memset(u, 0, sizeof *u);
	grpc_metadata_array_init(&u->md_initial);
	grpc_metadata_array_init(&u->md_trailing);
	u->details = grpc_empty_slice();
	u->send_bb = bb;
	u->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
	                                   grpc_slice_from_static_string(method), NULL,
	                                   spawni_grpc_deadline(timeout_ms), NULL);
	if (!u->call)
		spawni_oom("grpc_channel_create_call");
	grpc_op *op = u->ops;
	op->op = GRPC_OP_SEND_INITIAL_METADATA;
	/* Only a call with a deadline waits: one without would wait for ever
	 * for a gateway that is gone. */
	if (c->wait_for_ready && timeout_ms > 0)
		op->flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY |
		            GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET;
	spawni_security_md(&c->sec, op);
	op++;
	op->op = GRPC_OP_SEND_MESSAGE;
	op->data.send_message.send_message = u->send_bb;
	op++;
	op->op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	op++;
	op->op = GRPC_OP_RECV_INITIAL_METADATA;
	op->data.recv_initial_metadata.recv_initial_metadata = &u->md_initial;
	op++;
	op->op = GRPC_OP_RECV_MESSAGE;
	op->data.recv_message.recv_message = &u->recv_bb;
	op++;
	op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op->data.recv_status_on_client.trailing_metadata = &u->md_trailing;
	op->data.recv_status_on_client.status = &u->status;
	op->data.recv_status_on_client.status_details = &u->details;
	op++;
	if (grpc_call_start_batch(u->call, u->ops, (size_t)(op - u->ops), u, NULL) !=
	    GRPC_CALL_OK) {
		grpc_call_unref(u->call);
		u->call = NULL;
		return SPAWN_INTERNAL;
	}
	return SPAWN_OK;
}

static void unary_fini(unary *u)
{
	if (u->call)
		grpc_call_unref(u->call);
	if (u->send_bb)
		grpc_byte_buffer_destroy(u->send_bb);
	if (u->recv_bb)
		grpc_byte_buffer_destroy(u->recv_bb);
	grpc_metadata_array_destroy(&u->md_initial);
	grpc_metadata_array_destroy(&u->md_trailing);
	grpc_slice_unref(u->details);
	memset(u, 0, sizeof *u);
}

/* not_dispatched tells whether u ended UNAVAILABLE with the gateway's
 * trailer "spawn-retry: not-dispatched": the gateway guarantees that no
 * host ever saw the call, so sending it again cannot run it twice
 * (docs/protocol.md, "Retryable answers"). */
static bool not_dispatched(const unary *u)
{
	if (u->status != GRPC_STATUS_UNAVAILABLE)
		return false;
	for (size_t i = 0; i < u->md_trailing.count; i++)
		if (!grpc_slice_str_cmp(u->md_trailing.metadata[i].key, SPAWNI_RETRY_KEY) &&
		    !grpc_slice_str_cmp(u->md_trailing.metadata[i].value,
		                        SPAWNI_RETRY_NOT_DISPATCHED))
			return true;
	return false;
}

/* retry_wait sleeps before retry number attempt (0-based) of a call that
 * must be answered by end_ns (monotonic): RETRY_MIN_MS doubling to
 * RETRY_MAX_MS, +-20%. Returns false, without sleeping, when the retry
 * could not start before end_ns. */
static bool retry_wait(unsigned attempt, int64_t end_ns, unsigned *seed)
{
	int64_t d = spawni_backoff_ms(attempt, RETRY_MIN_MS, RETRY_MAX_MS, seed);
	if (spawn_now_ns() + d * 1000000 >= end_ns)
		return false;
	struct timespec ts = {.tv_sec = d / 1000, .tv_nsec = (d % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return true;
}

/* call_sync makes one call and waits for it. An answer the gateway marks
 * never dispatched is retried after a short backoff until the deadline
 * (without one, for RETRY_NO_DEADLINE_MS), unless the client fails fast. */
static int call_sync(spawn_client *c, call_kind kind, const char *method, grpc_byte_buffer *bb,
                     spawn_reply *out, int64_t timeout_ms)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	unary u;
	int64_t end_ns =
	    spawn_now_ns() + (timeout_ms > 0 ? timeout_ms : RETRY_NO_DEADLINE_MS) * 1000000;
	unsigned seed = (unsigned)spawn_now_ns() ^ (unsigned)(uintptr_t)&u;
	int rc;
	for (unsigned attempt = 0;; attempt++) {
		/* unary_start takes bb: keep a copy for a retry. */
		grpc_byte_buffer *again = c->retry ? grpc_byte_buffer_copy(bb) : NULL;
		int64_t left_ms = timeout_ms;
		if (timeout_ms > 0 && attempt > 0) {
			left_ms = (end_ns - spawn_now_ns()) / 1000000;
			if (left_ms < 1)
				left_ms = 1;
		}
		rc = unary_start(c, &u, method, bb, cq, left_ms);
		bb = NULL;
		if (rc != SPAWN_OK) {
			reply_status(out, rc, "could not start the call");
			if (again)
				grpc_byte_buffer_destroy(again);
			break;
		}
		grpc_event ev =
		    grpc_completion_queue_pluck(cq, &u, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		/* The batch always completes, with the status filled in; ev.success
		 * is false only when the status carries the failure. */
		(void)ev;
		if (again && not_dispatched(&u) &&
		    retry_wait(attempt < 16 ? attempt : 16, end_ns, &seed)) {
			unary_fini(&u);
			bb = again;
			continue;
		}
		if (again)
			grpc_byte_buffer_destroy(again);
		rc = parse_reply(c, kind, &u, out);
		break;
	}
	unary_fini(&u);
	grpc_completion_queue_shutdown(cq);
	while (
	    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return rc;
}

/* ---- public API ---------------------------------------------------------- */

static void *client_main(void *arg);

/* watch_arm_locked arms the connectivity watch on c->cq. Polling c->cq
 * (the client thread, always) is what makes gRPC read the connection, and
 * so see the gateway close it. Called with mu held, cq existing. */
static void watch_arm_locked(spawn_client *c)
{
	grpc_connectivity_state st = grpc_channel_check_connectivity_state(c->channel, 0);
	grpc_channel_watch_connectivity_state(
	    c->channel, st,
	    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	                 gpr_time_from_millis(WATCH_MS, GPR_TIMESPAN)),
	    c->cq, &c->watch_tag);
	c->watching = true;
}

/* thread_start_locked creates c->cq and the client thread serving it.
 * Returns SPAWN_OK or SPAWN_ESYS (nothing created). Called with mu held. */
static int thread_start_locked(spawn_client *c)
{
	c->cq = grpc_completion_queue_create_for_next(NULL);
	if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
		grpc_completion_queue_shutdown(c->cq);
		grpc_completion_queue_destroy(c->cq);
		c->cq = NULL;
		return SPAWN_ESYS;
	}
	return SPAWN_OK;
}

int spawn_client_create_opts(spawn_client **out, const spawn_client_opts *opts)
{
	if (!out || !opts || empty(opts->target) || opts->reconnect_min_ms < 0 ||
	    opts->reconnect_max_ms < 0 || opts->reconnect_min_ms > INT32_MAX ||
	    opts->reconnect_max_ms > INT32_MAX)
		return SPAWN_EINVAL;
	int64_t rmin = opts->reconnect_min_ms ? opts->reconnect_min_ms : DEFAULT_RECONNECT_MIN_MS;
	int64_t rmax = opts->reconnect_max_ms ? opts->reconnect_max_ms : DEFAULT_RECONNECT_MAX_MS;
	if (rmax < rmin) {
		if (opts->reconnect_max_ms)
			return SPAWN_EINVAL;
		rmax = rmin; /* only the minimum was given */
	}
	spawn_client *c = calloc(1, sizeof *c);
	if (!c || !(c->target = strdup(opts->target))) {
		free(c);
		return SPAWN_ENOMEM;
	}
	c->wait_for_ready = !opts->fail_fast;
	c->retry = !opts->fail_fast;
	spawn_absl_deadlock_detection_off(); /* as in spawn_host_create */
	grpc_init();
	int src = spawni_security_init(&c->sec, &opts->security);
	if (src != SPAWN_OK) {
		free(c->target);
		free(c);
		grpc_shutdown();
		return src;
	}
	src = spawni_target_init(&c->dial, opts->target, &c->sec);
	if (src != SPAWN_OK) {
		spawni_security_fini(&c->sec);
		free(c->target);
		free(c);
		grpc_shutdown();
		return src;
	}
	char agent[64];
	snprintf(agent, sizeof agent, "libspawn/%s", SPAWN_VERSION_STRING);
	/* No GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC core uses it as the
	 * timeout of one connection attempt, which must stay long enough for
	 * a distant gateway. */
	grpc_arg args[4 + SPAWNI_SECURITY_MAX_ARGS + SPAWNI_TARGET_MAX_ARGS] = {
	    {.type = GRPC_ARG_STRING,
	     .key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING,
	     .value.string = agent},
	    {.type = GRPC_ARG_INTEGER,
	     .key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
	     .value.integer = (int)rmin},
	    {.type = GRPC_ARG_INTEGER,
	     .key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
	     .value.integer = (int)rmax},
	    /* Connections of its own: gRPC would otherwise share one between
	     * the channels of a process with the same target and settings, so
	     * a client created just after the gateway died could inherit a
	     * dead connection that its own watch never polled. */
	    {.type = GRPC_ARG_INTEGER,
	     .key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
	     .value.integer = 1},
	};
	size_t n_args = 4 + spawni_security_args(&c->sec, args + 4);
	n_args += spawni_target_args(&c->dial, args + n_args);
	grpc_channel_args cargs = {.num_args = n_args, .args = args};
	c->channel = grpc_channel_create(c->dial.uri, c->sec.creds, &cargs);
	pthread_mutex_init(&c->mu, NULL);
	spawni_cond_init(&c->cv);
	if (!opts->no_watch) {
		pthread_mutex_lock(&c->mu);
		int rc = thread_start_locked(c);
		if (rc == SPAWN_OK)
			watch_arm_locked(c);
		pthread_mutex_unlock(&c->mu);
		if (rc != SPAWN_OK) {
			spawn_client_destroy(c);
			return rc;
		}
	}
	*out = c;
	return SPAWN_OK;
}

int spawn_client_create(spawn_client **out, const char *target)
{
	spawn_client_opts o = {.target = target};
	return spawn_client_create_opts(out, &o);
}

int spawn_client_invoke(spawn_client *c, const spawn_request *req, spawn_reply *out,
                        int64_t timeout_ms)
{
	if (!out)
		return SPAWN_EINVAL;
	memset(out, 0, sizeof *out);
	if (!c || !req)
		return reply_status(out, SPAWN_EINVAL, "client and request are required");
	grpc_byte_buffer *bb = NULL;
	int rc = build_invoke(req, &bb);
	if (rc)
		return reply_status(out, rc,
		                    rc == SPAWN_EINVAL ? "system, actor and action are required; "
		                                         "payload bytes need a type URL"
		                                       : NULL);
	return call_sync(c, KIND_INVOKE, SPAWNI_METHOD_INVOKE, bb, out, timeout_ms);
}

int spawn_client_spawn(spawn_client *c, const char *system, const spawn_actor_id *actors, size_t n,
                       spawn_reply *out, int64_t timeout_ms)
{
	if (!out)
		return SPAWN_EINVAL;
	memset(out, 0, sizeof *out);
	if (!c)
		return reply_status(out, SPAWN_EINVAL, "client is required");
	grpc_byte_buffer *bb = NULL;
	int rc = build_spawn(system, actors, n, &bb);
	if (rc)
		return reply_status(out, rc,
		                    rc == SPAWN_EINVAL ? "system and at least one actor with name "
		                                         "and parent are required"
		                                       : NULL);
	return call_sync(c, KIND_SPAWN, SPAWNI_METHOD_SPAWN, bb, out, timeout_ms);
}

static void *client_main(void *arg)
{
	spawn_client *c = arg;
	for (;;) {
		grpc_event ev =
		    grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.tag == &c->watch_tag) {
			/* The state changed (or WATCH_MS passed): watch on, unless
			 * destroy has begun - then the channel may be gone. */
			pthread_mutex_lock(&c->mu);
			if (c->closing) {
				c->watching = false;
				pthread_cond_broadcast(&c->cv);
			} else {
				watch_arm_locked(c);
			}
			pthread_mutex_unlock(&c->mu);
			continue;
		}
		acall *a = ev.tag;
		/* Unlink first: from here on destroy must not cancel the call. */
		pthread_mutex_lock(&c->mu);
		if (a->prev)
			a->prev->next = a->next;
		else
			c->calls = a->next;
		if (a->next)
			a->next->prev = a->prev;
		pthread_mutex_unlock(&c->mu);

		spawn_reply reply = {0};
		parse_reply(c, KIND_INVOKE, &a->u, &reply);
		a->cb(a->user, &reply);
		spawn_reply_fini(&reply);
		unary_fini(&a->u);
		free(a);

		pthread_mutex_lock(&c->mu);
		if (--c->inflight == 0)
			pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	return NULL;
}

int spawn_client_invoke_async(spawn_client *c, const spawn_request *req, int64_t timeout_ms,
                              spawn_reply_fn cb, void *user)
{
	if (!c || !req || !cb)
		return SPAWN_EINVAL;
	grpc_byte_buffer *bb = NULL;
	int rc = build_invoke(req, &bb);
	if (rc)
		return rc;
	acall *a = calloc(1, sizeof *a);
	if (!a) {
		grpc_byte_buffer_destroy(bb);
		return SPAWN_ENOMEM;
	}
	a->cb = cb;
	a->user = user;

	pthread_mutex_lock(&c->mu);
	if (c->closing) {
		rc = SPAWN_ECLOSED;
		goto fail;
	}
	if (!c->cq && (rc = thread_start_locked(c)) != SPAWN_OK)
		goto fail;
	rc = unary_start(c, &a->u, SPAWNI_METHOD_INVOKE, bb, c->cq, timeout_ms);
	bb = NULL; /* unary_start took it */
	if (rc) {
		unary_fini(&a->u);
		goto fail;
	}
	a->next = c->calls;
	if (c->calls)
		c->calls->prev = a;
	c->calls = a;
	c->inflight++;
	pthread_mutex_unlock(&c->mu);
	return SPAWN_OK;
fail:
	pthread_mutex_unlock(&c->mu);
	if (bb)
		grpc_byte_buffer_destroy(bb);
	free(a);
	return rc;
}

void spawn_client_destroy(spawn_client *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	for (acall *a = c->calls; a; a = a->next)
		grpc_call_cancel(a->u.call, NULL);
	while (c->inflight > 0)
		pthread_cond_wait(&c->cv, &c->mu);
	grpc_completion_queue *cq = c->cq;
	pthread_mutex_unlock(&c->mu);
	/* Closing is set: the watch is not re-armed any more, and destroying
	 * the channel (state SHUTDOWN) fires the one still armed. */
	grpc_channel_destroy(c->channel);
	pthread_mutex_lock(&c->mu);
	while (c->watching)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	if (cq) {
		grpc_completion_queue_shutdown(cq);
		pthread_join(c->thread, NULL);
		grpc_completion_queue_destroy(cq);
	}
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	spawni_security_fini(&c->sec);
	spawni_target_fini(&c->dial);
	free(c->target);
	free(c);
	grpc_shutdown();
}
