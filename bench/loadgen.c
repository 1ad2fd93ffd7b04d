/* loadgen.c - bench-loadgen: closed-loop load on ActorGateway/Invoke.
 *
 * Duration mode (default): N calls in flight; each finished call starts
 * the next one at once, to actor "<prefix><i mod M>". Calls finishing in
 * the warmup are counted apart; the latency of every successful call
 * finishing inside the measured window goes into a log-linear histogram.
 * No call starts after the window; the ones still in flight drain (each
 * call has a deadline, and past the hard end the rest are cancelled), so
 * the run always ends by itself.
 *
 * Activation mode (--activate M --batch K): actors <prefix>0..M-1 are
 * invoked exactly once each, K at a time; the measured window is the whole
 * run. The `actors` scenario uses it to make a gateway hold M actors.
 *
 * Output, one line on stdout (keys are stable, scripts parse them):
 *   calls=  successful calls finished in the window
 *   errors= failed calls over the whole run (warmup, window and drain): a
 *           non-OK gRPC status, or (unless --no-verify) a reply that does not
 *           parse, lacks RequestStatus OK, or does not echo the payload
 *   seconds= rps= p50_us= p90_us= p99_us= p999_us= max_us= mean_us=
 *   inflight= actors= warmup_calls= drain_calls=
 *   aborted=1 when --max-errors stopped starting calls early; seconds is
 *           still the planned window, and the run is a failure anyway
 * and, when errors > 0, a second line: first_error code=N name=X msg="..."
 * Exit status: 0 without errors, 1 with errors, 2 on bad flags.
 *
 * Plain mode (--plain PATH): the same calls as plain gRPC calls of an
 * actor's contract (gateway/server/plain.c): each request is a
 * bench.Echo message (bench/echo.proto: value = the payload, id = the
 * actor's name) sent to PATH ("/bench.Echo/echo"); the reply must be the
 * same bytes (the echo host returns its input).
 *
 * Security: --tls-ca makes every channel TLS (the gateway's certificate must
 * chain to it and name the target's host, or --tls-server-name); with
 * --tls-cert and --tls-key too it is mutual TLS. Each channel is one
 * connection, handshaken once and reused by every call. --token sends
 * "authorization: Bearer <token>" with every call (one metadata entry built
 * once and shared by all calls), over TLS or not.
 *
 * Threads: each of --threads owns a completion queue and its share of the
 * in-flight slots, so the hot path takes no lock; histograms and counters
 * are merged after the threads are joined.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>

#include "bench.h"
#include "wire.h"

/* Requests for up to this many actors are serialized once, up front. */
#define LG_CACHE_MAX 65536
#define LG_TYPE_URL  "type.googleapis.com/google.protobuf.BytesValue"

typedef struct lg lg;
typedef struct lg_thread lg_thread;

/* One call in flight; its address is the CQ tag. */
typedef struct lg_slot {
	lg_thread *th; /* borrowed */
	int chan;      /* channel index */
	bool active;
	grpc_call *call;               /* owned while active */
	grpc_byte_buffer *send, *recv; /* owned while active */
	grpc_metadata_array initial, trailing;
	grpc_status_code status;
	grpc_slice details;
	int64_t start_ns;
	grpc_op ops[6];
	spawn_arena arena; /* the unpacked reply */
} lg_slot;

struct lg_thread {
	lg *g; /* borrowed */
	pthread_t tid;
	grpc_completion_queue *cq; /* owned */
	lg_slot *slots;            /* owned */
	int nslots;
	int active;      /* slots with a call in flight */
	bench_hist hist; /* measured window, successful calls */
	uint64_t calls, errors, warm_calls, late_calls;
	int64_t last_done_ns;
};

struct lg {
	/* flags */
	const char *target, *system, *action, *prefix, *register_ref;
	const char *plain; /* --plain PATH; NULL = ActorGateway/Invoke */
	const char *tls_ca, *tls_cert, *tls_key, *tls_server_name, *token; /* borrowed: argv */
	long inflight, actors, duration_ms, warmup_ms, payload_bytes, channels, threads;
	long timeout_ms, max_errors;
	bool activate, verify;
	/* run */
	grpc_channel **chans;      /* owned */
	void **methods;            /* per channel, owned by the channel */
	grpc_byte_buffer **cached; /* owned: requests for actors < ncached */
	long ncached;
	uint8_t *any_value; /* owned: the Any.value every request carries */
	size_t any_len;
	int64_t t0, warm_end, meas_end, hard_end;
	atomic_long next_seq;   /* next actor index */
	atomic_long nerrors;    /* errors so far, for --max-errors */
	pthread_mutex_t err_mu; /* guards the first error */
	bool have_error;
	int err_code;
	char err_msg[256];
	lg_thread *ths;     /* owned */
	grpc_metadata auth; /* "authorization: Bearer <token>"; slices owned; with --token */
	size_t nauth;       /* 1 with --token, else 0 */
};

/* ---- requests ---------------------------------------------------------- */

/* lg_pack serializes the request to actor index i. Returns NULL when out of
 * memory. The caller destroys the buffer. */
static grpc_byte_buffer *lg_pack(const lg *g, long i)
{
	char name[96];
	snprintf(name, sizeof name, "%s%ld", g->prefix, i);
	if (g->plain) {
		/* bench.Echo{value = 1 (the BytesValue's bytes field, as is), id = 2} */
		size_t nl = strlen(name), n = g->any_len + 2 + nl;
		uint8_t *b = malloc(n);
		if (!b)
			return NULL;
		memcpy(b, g->any_value, g->any_len);
		b[g->any_len] = 0x12;
		b[g->any_len + 1] = (uint8_t)nl;
		memcpy(b + g->any_len + 2, name, nl);
		grpc_slice sl = grpc_slice_from_copied_buffer((const char *)b, n);
		free(b);
		grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
		grpc_slice_unref(sl);
		return bb;
	}
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = (char *)g->system;
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = name;
	id.system = (char *)g->system;
	Spawn__Actors__Actor actor = SPAWN__ACTORS__ACTOR__INIT;
	actor.id = &id;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = LG_TYPE_URL;
	any.value.data = g->any_value;
	any.value.len = g->any_len;
	Spawn__InvocationRequest rq = SPAWN__INVOCATION_REQUEST__INIT;
	rq.system = &sys;
	rq.actor = &actor;
	rq.action_name = (char *)g->action;
	if (g->register_ref)
		rq.register_ref = (char *)g->register_ref;
	rq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	rq.value = &any;
	grpc_byte_buffer *bb;
	return spawn_wire_pack(&rq.base, &bb) == 0 ? bb : NULL;
}

/* The payload: a serialized google.protobuf.BytesValue whose bytes field is
 * payload_bytes long (field 1, wire type 2, varint length, bytes). */
static int lg_make_payload(lg *g)
{
	size_t n = (size_t)g->payload_bytes;
	g->any_value = malloc(n + 11);
	if (!g->any_value)
		return -1;
	size_t off = 0;
	g->any_value[off++] = 0x0a;
	size_t v = n;
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		g->any_value[off++] = b | (v ? 0x80 : 0);
	} while (v);
	for (size_t i = 0; i < n; i++)
		g->any_value[off + i] = (uint8_t)('a' + i % 26);
	g->any_len = off + n;
	return 0;
}

/* ---- errors ------------------------------------------------------------ */

static const char *lg_status_name(int code)
{
	static const char *names[] = {"OK",
	                              "CANCELLED",
	                              "UNKNOWN",
	                              "INVALID_ARGUMENT",
	                              "DEADLINE_EXCEEDED",
	                              "NOT_FOUND",
	                              "ALREADY_EXISTS",
	                              "PERMISSION_DENIED",
	                              "RESOURCE_EXHAUSTED",
	                              "FAILED_PRECONDITION",
	                              "ABORTED",
	                              "OUT_OF_RANGE",
	                              "UNIMPLEMENTED",
	                              "INTERNAL",
	                              "UNAVAILABLE",
	                              "DATA_LOSS",
	                              "UNAUTHENTICATED"};
	if (code >= 0 && code < (int)(sizeof names / sizeof names[0]))
		return names[code];
	return code < 0 ? "BAD_REPLY" : "?";
}

/* lg_error notes one failed call for --max-errors and keeps the first one
 * for the report (the caller tallies it in its thread's errors).
 * code < 0 marks a reply that arrived with OK but is wrong. */
static void lg_error(lg *g, int code, const char *msg, size_t len)
{
	atomic_fetch_add_explicit(&g->nerrors, 1, memory_order_relaxed);
	pthread_mutex_lock(&g->err_mu);
	if (!g->have_error) {
		g->have_error = true;
		g->err_code = code;
		if (len >= sizeof g->err_msg)
			len = sizeof g->err_msg - 1;
		memcpy(g->err_msg, msg, len);
		g->err_msg[len] = 0;
		for (size_t i = 0; i < len; i++)
			if (g->err_msg[i] == '"' || g->err_msg[i] == '\n')
				g->err_msg[i] = '\'';
	}
	pthread_mutex_unlock(&g->err_mu);
}

/* lg_check returns true when the finished call in sl succeeded, and
 * reports why not otherwise. */
static bool lg_check(lg *g, lg_slot *sl, bool ok)
{
	if (!ok) {
		lg_error(g, GRPC_STATUS_INTERNAL, "batch failed", 12);
		return false;
	}
	if (sl->status != GRPC_STATUS_OK) {
		lg_error(g, (int)sl->status, (const char *)GRPC_SLICE_START_PTR(sl->details),
		         GRPC_SLICE_LENGTH(sl->details));
		return false;
	}
	if (!g->verify)
		return true;
	const char *why = NULL;
	if (g->plain) {
		/* The reply is the request: its payload, then its id field. */
		grpc_byte_buffer_reader r;
		if (!sl->recv || !grpc_byte_buffer_reader_init(&r, sl->recv)) {
			why = "OK without a reply";
		} else {
			grpc_slice all = grpc_byte_buffer_reader_readall(&r);
			grpc_byte_buffer_reader_destroy(&r);
			if (GRPC_SLICE_LENGTH(all) < g->any_len ||
			    memcmp(GRPC_SLICE_START_PTR(all), g->any_value, g->any_len) != 0)
				why = "reply does not echo the request";
			grpc_slice_unref(all);
		}
		if (why)
			lg_error(g, -1, why, strlen(why));
		return !why;
	}
	ProtobufCMessage *m;
	if (spawn_wire_unpack(&spawn__invocation_response__descriptor, sl->recv, &sl->arena, &m) !=
	    0) {
		why = sl->recv ? "reply is not an InvocationResponse" : "OK without a reply";
	} else {
		Spawn__InvocationResponse *rp = (Spawn__InvocationResponse *)m;
		if (!rp->status || rp->status->status != SPAWN__STATUS__OK)
			why = "reply RequestStatus is not OK";
		else if (rp->payload_case != SPAWN__INVOCATION_RESPONSE__PAYLOAD_VALUE ||
		         !rp->value || strcmp(rp->value->type_url, LG_TYPE_URL) != 0 ||
		         rp->value->value.len != g->any_len ||
		         memcmp(rp->value->value.data, g->any_value, g->any_len) != 0)
			why = "reply payload does not echo the request";
	}
	if (why) {
		lg_error(g, -1, why, strlen(why));
		return false;
	}
	return true;
}

/* ---- the closed loop ---------------------------------------------------- */

static void lg_slot_reset(lg_slot *sl)
{
	if (sl->call)
		grpc_call_unref(sl->call);
	if (sl->send)
		grpc_byte_buffer_destroy(sl->send);
	if (sl->recv)
		grpc_byte_buffer_destroy(sl->recv);
	sl->call = NULL;
	sl->send = sl->recv = NULL;
	grpc_slice_unref(sl->details);
	sl->details = grpc_empty_slice();
	grpc_metadata_array_destroy(&sl->initial);
	grpc_metadata_array_destroy(&sl->trailing);
	grpc_metadata_array_init(&sl->initial);
	grpc_metadata_array_init(&sl->trailing);
	spawn_arena_fini(&sl->arena);
	sl->active = false;
}

/* lg_issue starts the next call on sl, unless the run is over. */
static void lg_issue(lg_slot *sl)
{
	lg_thread *th = sl->th;
	lg *g = th->g;
	int64_t now = spawn_now_ns();
	if (!g->activate && now >= g->meas_end)
		return;
	if (g->max_errors &&
	    atomic_load_explicit(&g->nerrors, memory_order_relaxed) >= g->max_errors)
		return;
	long seq = atomic_fetch_add_explicit(&g->next_seq, 1, memory_order_relaxed);
	if (g->activate && seq >= g->actors)
		return;
	long actor = seq % g->actors;
	if (actor < g->ncached)
		sl->send = grpc_byte_buffer_copy(g->cached[actor]); /* shares the slices */
	else
		sl->send = lg_pack(g, actor);
	if (!sl->send) {
		lg_error(g, GRPC_STATUS_RESOURCE_EXHAUSTED, "loadgen out of memory", 21);
		th->errors++;
		return;
	}
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	                                     gpr_time_from_millis(g->timeout_ms, GPR_TIMESPAN));
	sl->call =
	    grpc_channel_create_registered_call(g->chans[sl->chan], NULL, GRPC_PROPAGATE_DEFAULTS,
	                                        th->cq, g->methods[sl->chan], deadline, NULL);
	grpc_op *op = sl->ops;
	memset(sl->ops, 0, sizeof sl->ops);
	op->op = GRPC_OP_SEND_INITIAL_METADATA;
	op->data.send_initial_metadata.count = g->nauth;
	op->data.send_initial_metadata.metadata = g->nauth ? &g->auth : NULL;
	op++;
	op->op = GRPC_OP_SEND_MESSAGE;
	op->data.send_message.send_message = sl->send;
	op++;
	op->op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	op++;
	op->op = GRPC_OP_RECV_INITIAL_METADATA;
	op->data.recv_initial_metadata.recv_initial_metadata = &sl->initial;
	op++;
	op->op = GRPC_OP_RECV_MESSAGE;
	op->data.recv_message.recv_message = &sl->recv;
	op++;
	op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op->data.recv_status_on_client.trailing_metadata = &sl->trailing;
	op->data.recv_status_on_client.status = &sl->status;
	op->data.recv_status_on_client.status_details = &sl->details;
	op++;
	spawn_arena_init(&sl->arena, 0);
	sl->start_ns = spawn_now_ns();
	sl->active = true;
	th->active++;
	if (grpc_call_start_batch(sl->call, sl->ops, (size_t)(op - sl->ops), sl, NULL) !=
	    GRPC_CALL_OK) {
		/* A programmer error (bad op set): count it and stop this slot. */
		lg_error(g, GRPC_STATUS_INTERNAL, "grpc_call_start_batch failed", 28);
		th->errors++;
		th->active--;
		lg_slot_reset(sl);
	}
}

static void lg_finish(lg_slot *sl, bool ok)
{
	lg_thread *th = sl->th;
	lg *g = th->g;
	int64_t now = spawn_now_ns();
	bool good = lg_check(g, sl, ok);
	th->active--;
	th->last_done_ns = now;
	if (!good)
		th->errors++;
	else if (now < g->warm_end)
		th->warm_calls++;
	else if (now < g->meas_end) {
		th->calls++;
		bench_hist_record(&th->hist, (uint64_t)(now - sl->start_ns));
	} else
		th->late_calls++;
	lg_slot_reset(sl);
}

static void *lg_thread_main(void *arg)
{
	lg_thread *th = arg;
	lg *g = th->g;
	for (int i = 0; i < th->nslots; i++)
		lg_issue(&th->slots[i]);
	bool cancelled = false;
	while (th->active > 0) {
		gpr_timespec wake = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
		                                 gpr_time_from_millis(200, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(th->cq, wake, NULL);
		if (ev.type == GRPC_OP_COMPLETE) {
			lg_slot *sl = ev.tag;
			lg_finish(sl, ev.success != 0);
			lg_issue(sl);
		}
		if (!cancelled && g->hard_end && spawn_now_ns() > g->hard_end) {
			/* Past every deadline: whatever is left is stuck; cancel it
			 * (each cancelled call still completes, as an error). */
			for (int i = 0; i < th->nslots; i++)
				if (th->slots[i].active)
					grpc_call_cancel(th->slots[i].call, NULL);
			cancelled = true;
		}
	}
	grpc_completion_queue_shutdown(th->cq);
	while (grpc_completion_queue_next(th->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	return NULL;
}

/* ---- security --------------------------------------------------------------- */

/* lg_read_file returns the contents of path, NUL-terminated (caller frees),
 * or NULL with a message on stderr. */
static char *lg_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	if (!f) {
		fprintf(stderr, "bench-loadgen: cannot read %s\n", path);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap += 65536);
			if (!nb) {
				free(buf);
				fclose(f);
				fprintf(stderr, "bench-loadgen: out of memory\n");
				return NULL;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	buf[len] = 0;
	bool bad = ferror(f) || !strstr(buf, "-----BEGIN ");
	fclose(f);
	if (bad) {
		fprintf(stderr, "bench-loadgen: %s is not a PEM file\n", path);
		free(buf);
		return NULL;
	}
	return buf;
}

/* lg_creds makes the channel credentials the flags ask for: insecure, TLS
 * or mutual TLS. NULL on an unreadable file (said on stderr). */
static grpc_channel_credentials *lg_creds(const lg *g)
{
	if (!g->tls_ca)
		return grpc_insecure_credentials_create();
	char *ca = lg_read_file(g->tls_ca), *cert = NULL, *key = NULL;
	grpc_channel_credentials *c = NULL;
	if (!ca)
		goto done;
	if (g->tls_cert &&
	    (!(cert = lg_read_file(g->tls_cert)) || !(key = lg_read_file(g->tls_key))))
		goto done;
	grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
	c = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
done:
	free(ca);
	free(cert);
	if (key) {
		memset(key, 0, strlen(key));
		free(key);
	}
	return c;
}

/* ---- main ----------------------------------------------------------------- */

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: bench-loadgen --target HOST:PORT[,HOST:PORT...] [options]\n"
	    "  (several targets: channel i dials target i mod their number, so with\n"
	    "   --channels N the calls spread evenly over them: members of a cluster)\n"
	    "  --inflight N        calls in flight (default 1)\n"
	    "  --actors M          distinct actors, called round robin (default 1)\n"
	    "  --duration-ms D     measured window (default 3000)\n"
	    "  --warmup-ms W       warmup before it, not measured (default 1000)\n"
	    "  --activate M        activation mode: call actors 0..M-1 once each\n"
	    "  --batch K           calls in flight in activation mode (default 64)\n"
	    "  --system S          actor system (default bench)\n"
	    "  --action A          action name (default echo)\n"
	    "  --actor-prefix P    actor names are P<i> (default bench-)\n"
	    "  --register-ref R    set register_ref: the actors are instances of UNNAMED actor R\n"
	    "  --plain PATH        call PATH (\"/bench.Echo/echo\") as a plain gRPC method with a\n"
	    "                      bench.Echo request (bench/echo.proto) instead of Invoke\n"
	    "  --payload-bytes B   bytes in the BytesValue payload (default 64)\n"
	    "  --channels C        channels (TCP connections), slots spread over them (default 1)\n"
	    "  --threads T         completion-queue threads (default 1)\n"
	    "  --timeout-ms T      deadline of each call (default 5000)\n"
	    "  --max-errors E      stop starting calls after E errors, 0 = never (default 1000)\n"
	    "  --no-verify         only check the gRPC status, not the reply's content\n"
	    "  --tls-ca FILE       TLS: PEM CA certificate(s) the gateway's certificate chains to\n"
	    "  --tls-cert FILE     mTLS: PEM client certificate (chain); needs --tls-key, "
	    "--tls-ca\n"
	    "  --tls-key FILE      its PEM private key\n"
	    "  --tls-server-name N the name the gateway's certificate must carry (default: the\n"
	    "                      target's host)\n"
	    "  --token T           send \"authorization: Bearer T\" with every call\n");
}

static int lg_flags(lg *g, int argc, char **argv)
{
	long batch = 64;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		long *num = NULL, min = 0, max = 0;
		if (!strcmp(a, "--no-verify")) {
			g->verify = false;
			continue;
		}
		if (!v) {
			usage();
			return -1;
		}
		if (!strcmp(a, "--target"))
			g->target = v;
		else if (!strcmp(a, "--system"))
			g->system = v;
		else if (!strcmp(a, "--action"))
			g->action = v;
		else if (!strcmp(a, "--actor-prefix"))
			g->prefix = v;
		else if (!strcmp(a, "--register-ref"))
			g->register_ref = v;
		else if (!strcmp(a, "--plain"))
			g->plain = v;
		else if (!strcmp(a, "--tls-ca"))
			g->tls_ca = v;
		else if (!strcmp(a, "--tls-cert"))
			g->tls_cert = v;
		else if (!strcmp(a, "--tls-key"))
			g->tls_key = v;
		else if (!strcmp(a, "--tls-server-name"))
			g->tls_server_name = v;
		else if (!strcmp(a, "--token"))
			g->token = v;
		else if (!strcmp(a, "--inflight"))
			num = &g->inflight, min = 1, max = 1000000;
		else if (!strcmp(a, "--actors"))
			num = &g->actors, min = 1, max = 1000000000;
		else if (!strcmp(a, "--duration-ms"))
			num = &g->duration_ms, min = 1, max = 3600000;
		else if (!strcmp(a, "--warmup-ms"))
			num = &g->warmup_ms, min = 0, max = 3600000;
		else if (!strcmp(a, "--activate")) {
			num = &g->actors, min = 1, max = 1000000000;
			g->activate = true;
		} else if (!strcmp(a, "--batch"))
			num = &batch, min = 1, max = 1000000;
		else if (!strcmp(a, "--payload-bytes"))
			num = &g->payload_bytes, min = 0, max = 4000000;
		else if (!strcmp(a, "--channels"))
			num = &g->channels, min = 1, max = 1024;
		else if (!strcmp(a, "--threads"))
			num = &g->threads, min = 1, max = 256;
		else if (!strcmp(a, "--timeout-ms"))
			num = &g->timeout_ms, min = 1, max = 3600000;
		else if (!strcmp(a, "--max-errors"))
			num = &g->max_errors, min = 0, max = 1000000000;
		else {
			usage();
			return -1;
		}
		if (num && bench_flag_long(a, v, min, max, num))
			return -1;
		i++;
	}
	if (!g->target) {
		usage();
		return -1;
	}
	if (!g->tls_cert != !g->tls_key || (g->tls_cert && !g->tls_ca) ||
	    (g->tls_server_name && !g->tls_ca)) {
		fprintf(stderr, "bench-loadgen: --tls-cert and --tls-key go together, and they and "
		                "--tls-server-name need --tls-ca\n");
		return -1;
	}
	if (g->activate)
		g->inflight = batch < g->actors ? batch : g->actors;
	if (g->threads > g->inflight)
		g->threads = g->inflight;
	return 0;
}

int main(int argc, char **argv)
{
	lg g = {.system = "bench",
	        .action = "echo",
	        .prefix = "bench-",
	        .inflight = 1,
	        .actors = 1,
	        .duration_ms = 3000,
	        .warmup_ms = 1000,
	        .payload_bytes = 64,
	        .channels = 1,
	        .threads = 1,
	        .timeout_ms = 5000,
	        .max_errors = 1000,
	        .verify = true};
	if (lg_flags(&g, argc, argv) != 0)
		return 2;
	pthread_mutex_init(&g.err_mu, NULL);
	if (lg_make_payload(&g) != 0) {
		fprintf(stderr, "bench-loadgen: out of memory\n");
		return 1;
	}

	bench_init();
	grpc_channel_credentials *creds = lg_creds(&g);
	if (!creds)
		return 2;
	if (g.token) {
		char *v = malloc(strlen(g.token) + 8);
		if (!v) {
			fprintf(stderr, "bench-loadgen: out of memory\n");
			return 1;
		}
		sprintf(v, "Bearer %s", g.token);
		g.auth.key = grpc_slice_from_static_string("authorization");
		g.auth.value = grpc_slice_from_copied_string(v);
		g.nauth = 1;
		free(v);
	}
	g.chans = calloc((size_t)g.channels, sizeof *g.chans);
	g.methods = calloc((size_t)g.channels, sizeof *g.methods);
	g.ths = calloc((size_t)g.threads, sizeof *g.ths);
	g.ncached = g.actors <= LG_CACHE_MAX ? g.actors : 0;
	g.cached = calloc((size_t)g.ncached + 1, sizeof *g.cached);
	if (!g.chans || !g.methods || !g.ths || !g.cached) {
		fprintf(stderr, "bench-loadgen: out of memory\n");
		return 1;
	}
	for (long i = 0; i < g.channels; i++) {
		/* Own subchannel pool: each channel is its own TCP connection. */
		grpc_arg arg[2] = {{.type = GRPC_ARG_INTEGER,
		                    .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
		                    .value.integer = 1},
		                   {.type = GRPC_ARG_STRING,
		                    .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
		                    .value.string = (char *)g.tls_server_name}};
		grpc_channel_args args = {.num_args = g.tls_server_name ? 2 : 1, .args = arg};
		/* Channel i dials the (i mod n)-th of the comma-separated targets. */
		size_t nt = 1;
		for (const char *c = g.target; *c; c++)
			nt += *c == ',';
		const char *t = g.target;
		for (size_t k = (size_t)i % nt; k > 0; k--)
			t = strchr(t, ',') + 1;
		char one[256];
		size_t len = strcspn(t, ",");
		if (len >= sizeof one) {
			fprintf(stderr, "bench-loadgen: target too long\n");
			return 2;
		}
		memcpy(one, t, len);
		one[len] = '\0';
		g.chans[i] = grpc_channel_create(one, creds, &args);
		g.methods[i] = grpc_channel_register_call(
		    g.chans[i], g.plain ? g.plain : BENCH_INVOKE_METHOD, NULL, NULL);
	}
	grpc_channel_credentials_release(creds);
	for (long i = 0; i < g.ncached; i++)
		if (!(g.cached[i] = lg_pack(&g, i))) {
			fprintf(stderr, "bench-loadgen: out of memory\n");
			return 1;
		}

	long slot = 0;
	for (long t = 0; t < g.threads; t++) {
		lg_thread *th = &g.ths[t];
		th->g = &g;
		th->cq = grpc_completion_queue_create_for_next(NULL);
		th->nslots = (int)(g.inflight / g.threads + (t < g.inflight % g.threads));
		th->slots = calloc((size_t)th->nslots, sizeof *th->slots);
		if (!th->slots) {
			fprintf(stderr, "bench-loadgen: out of memory\n");
			return 1;
		}
		bench_hist_init(&th->hist);
		for (int i = 0; i < th->nslots; i++, slot++) {
			lg_slot *sl = &th->slots[i];
			sl->th = th;
			sl->chan = (int)(slot % g.channels);
			sl->details = grpc_empty_slice();
			grpc_metadata_array_init(&sl->initial);
			grpc_metadata_array_init(&sl->trailing);
		}
	}

	g.t0 = spawn_now_ns();
	if (g.activate) {
		g.warm_end = g.t0;
		g.meas_end = INT64_MAX;
		g.hard_end = 0; /* every call has a deadline; the run is bounded by M */
	} else {
		g.warm_end = g.t0 + g.warmup_ms * 1000000LL;
		g.meas_end = g.warm_end + g.duration_ms * 1000000LL;
		g.hard_end = g.meas_end + (g.timeout_ms + 1000) * 1000000LL;
	}
	for (long t = 0; t < g.threads; t++)
		if (pthread_create(&g.ths[t].tid, NULL, lg_thread_main, &g.ths[t]) != 0) {
			fprintf(stderr, "bench-loadgen: cannot create thread\n");
			return 1;
		}

	bench_hist h;
	bench_hist_init(&h);
	uint64_t calls = 0, errors = 0, warm = 0, late = 0;
	int64_t last = g.t0;
	for (long t = 0; t < g.threads; t++) {
		lg_thread *th = &g.ths[t];
		pthread_join(th->tid, NULL);
		bench_hist_merge(&h, &th->hist);
		calls += th->calls;
		errors += th->errors;
		warm += th->warm_calls;
		late += th->late_calls;
		if (th->last_done_ns > last)
			last = th->last_done_ns;
	}
	int aborted =
	    g.max_errors && atomic_load_explicit(&g.nerrors, memory_order_relaxed) >= g.max_errors;
	double seconds = g.activate ? (double)(last - g.t0) / 1e9 : (double)g.duration_ms / 1e3;
	if (seconds <= 0)
		seconds = 1e-9;
	printf("calls=%" PRIu64 " errors=%" PRIu64 " seconds=%.3f rps=%.1f p50_us=%.1f p90_us=%.1f "
	       "p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f inflight=%ld actors=%ld "
	       "warmup_calls=%" PRIu64 " drain_calls=%" PRIu64 " aborted=%d\n",
	       calls, errors, seconds, (double)calls / seconds,
	       (double)bench_hist_quantile(&h, 0.50) / 1e3,
	       (double)bench_hist_quantile(&h, 0.90) / 1e3,
	       (double)bench_hist_quantile(&h, 0.99) / 1e3,
	       (double)bench_hist_quantile(&h, 0.999) / 1e3, (double)h.max_ns / 1e3,
	       h.count ? h.sum_ns / (double)h.count / 1e3 : 0.0, g.inflight, g.actors, warm, late,
	       aborted);
	if (g.have_error)
		printf("first_error code=%d name=%s msg=\"%s\"\n", g.err_code,
		       lg_status_name(g.err_code), g.err_msg);
	fflush(stdout);

	for (long t = 0; t < g.threads; t++) {
		for (int i = 0; i < g.ths[t].nslots; i++)
			lg_slot_reset(&g.ths[t].slots[i]);
		free(g.ths[t].slots);
		grpc_completion_queue_destroy(g.ths[t].cq);
	}
	for (long i = 0; i < g.ncached; i++)
		grpc_byte_buffer_destroy(g.cached[i]);
	for (long i = 0; i < g.channels; i++)
		grpc_channel_destroy(g.chans[i]);
	free(g.cached);
	free(g.chans);
	free(g.methods);
	free(g.ths);
	free(g.any_value);
	if (g.nauth) {
		grpc_slice_unref(g.auth.key);
		grpc_slice_unref(g.auth.value);
	}
	grpc_shutdown();
	pthread_mutex_destroy(&g.err_mu);
	return errors ? 1 : 0;
}
