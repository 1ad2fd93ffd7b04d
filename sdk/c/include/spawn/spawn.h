/* spawn.h - libspawn, the C SDK of the Spawn actor gateway.
 *
 * Two halves share this header:
 *
 *   HOST    a process that serves actors. It dials out to the gateway
 *           (HostGateway.Connect, one bidirectional gRPC stream), registers
 *           its actor system, then runs the actions the gateway sends it.
 *           The gateway owns the actors' state: each invocation arrives
 *           with the current state and the host hands back the new one.
 *   CLIENT  anything that calls `system / actor / action` through the
 *           gateway (ActorGateway.Invoke and ActorGateway.Spawn).
 *
 * Conventions of the whole API (read these once):
 *
 *   Status codes. Every function that can fail returns an int:
 *     0 (SPAWN_OK)  success;
 *     1 .. 16       a gRPC status code, as the gateway or a host gave it
 *                   (same numbers as grpc_status_code and google.rpc.Code;
 *                   SPAWN_NOT_FOUND == GRPC_STATUS_NOT_FOUND and so on);
 *     < 0           a local error detected by libspawn (SPAWN_EINVAL ...).
 *   spawn_strerror() turns any of them into a static message. Results go to
 *   a trailing out-parameter written only on success, except spawn_reply,
 *   which always carries the status and message of the call.
 *
 *   Ownership. Every pointer says who owns it: "borrowed" means valid only
 *   until the function returns (libspawn copies what it keeps); "owned by
 *   X" means X frees it; "retained until Y" means the caller keeps it alive
 *   until Y.
 *
 *   Threads. A spawn_host and a spawn_client may be used from any thread
 *   unless a function says otherwise. libspawn calls grpc_init() in every
 *   _create and grpc_shutdown() in every _destroy, so it composes with
 *   other gRPC users in the same process.
 *
 *   Payloads. Values travel as google.protobuf.Any: a type URL
 *   ("type.googleapis.com/examples.incrementor.Add") plus the serialized
 *   message. spawn_payload describes one; the *_msg helpers pack and unpack
 *   protobuf-c messages for you.
 *
 * Link with `pkg-config --cflags --libs spawn`.
 */
#ifndef SPAWN_SPAWN_H
#define SPAWN_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(SPAWN_BUILDING)
#define SPAWN_API __attribute__((visibility("default")))
#else
#define SPAWN_API
#endif

#define SPAWN_VERSION_MAJOR  0
#define SPAWN_VERSION_MINOR  1
#define SPAWN_VERSION_PATCH  0
#define SPAWN_VERSION_STRING "0.1.0"

/* spawn_version returns SPAWN_VERSION_STRING of the library actually
 * linked (static storage). */
SPAWN_API const char *spawn_version(void);

/* ======================================================================
 * Status codes
 * ==================================================================== */

/* The gRPC status codes (positive), as the gateway and hosts use them. */
#define SPAWN_CODE_MAP(XX)                                                                         \
	XX(CANCELLED, 1, "cancelled")                                                              \
	XX(UNKNOWN, 2, "unknown error")                                                            \
	XX(INVALID_ARGUMENT, 3, "invalid argument")                                                \
	XX(DEADLINE_EXCEEDED, 4, "deadline exceeded")                                              \
	XX(NOT_FOUND, 5, "not found")                                                              \
	XX(ALREADY_EXISTS, 6, "already exists")                                                    \
	XX(PERMISSION_DENIED, 7, "permission denied")                                              \
	XX(RESOURCE_EXHAUSTED, 8, "resource exhausted")                                            \
	XX(FAILED_PRECONDITION, 9, "failed precondition")                                          \
	XX(ABORTED, 10, "aborted")                                                                 \
	XX(OUT_OF_RANGE, 11, "out of range")                                                       \
	XX(UNIMPLEMENTED, 12, "unimplemented")                                                     \
	XX(INTERNAL, 13, "internal error")                                                         \
	XX(UNAVAILABLE, 14, "unavailable")                                                         \
	XX(DATA_LOSS, 15, "data loss")                                                             \
	XX(UNAUTHENTICATED, 16, "unauthenticated")

/* Local errors (negative): detected in this process, never sent. Members
 * are only ever appended. */
#define SPAWN_ERR_MAP(XX)                                                                          \
	XX(EINVAL, -1, "invalid argument")                                                         \
	XX(ENOMEM, -2, "out of memory")                                                            \
	XX(ESTATE, -3, "not allowed in the object's current state")                                \
	XX(ETIMEDOUT, -4, "timed out")                                                             \
	XX(ECLOSED, -5, "stopped or closed")                                                       \
	XX(EPROTO, -6, "malformed message from the peer")                                          \
	XX(EEXIST, -7, "name already defined")                                                     \
	XX(ETYPE, -8, "payload has another type")                                                  \
	XX(ESYS, -9, "system resource unavailable (thread, pipe)")                                 \
	XX(ETLS, -10,                                                                              \
	   "TLS settings unusable (a CA, certificate or key file unreadable or "                   \
	   "not PEM, or a certificate without its key)")

/* clang-format off */
typedef enum spawn_status {
	SPAWN_OK = 0,
#define SPAWN_CODE_ENUM(name, val, msg) SPAWN_##name = val,
	SPAWN_CODE_MAP(SPAWN_CODE_ENUM)
#undef SPAWN_CODE_ENUM
#define SPAWN_ERR_ENUM(name, val, msg) SPAWN_##name = val,
	SPAWN_ERR_MAP(SPAWN_ERR_ENUM)
#undef SPAWN_ERR_ENUM
} spawn_status;
/* clang-format on */

/* spawn_strerror describes any status returned by libspawn (static
 * storage; "unknown status" outside the tables). Thread: any. */
SPAWN_API const char *spawn_strerror(int status);

/* spawn_status_name returns the symbolic name: "OK", "NOT_FOUND",
 * "EINVAL"; "?" outside the tables. */
SPAWN_API const char *spawn_status_name(int status);

/* ======================================================================
 * Payloads
 * ==================================================================== */

/* The prefix of the type URLs libspawn builds. */
#define SPAWN_TYPE_URL_PREFIX "type.googleapis.com/"

/* A value with its type, i.e. the two fields of a google.protobuf.Any.
 * Whoever hands one out says who owns the memory it points to. */
typedef struct spawn_payload {
	const char *type_url; /* NULL = no value (the protocol's Noop) */
	const void *data;     /* serialized message; NULL only when len == 0 */
	size_t len;
} spawn_payload;

/* spawn_type_url writes SPAWN_TYPE_URL_PREFIX + d->name (the message's full
 * name) into buf like snprintf: at most size bytes, NUL-terminated when
 * size > 0. Returns the length of the whole URL (without the NUL); the
 * output is complete when the return value is < size. d is borrowed. */
SPAWN_API size_t spawn_type_url(const ProtobufCMessageDescriptor *d, char *buf, size_t size);

/* spawn_payload_is tells whether p holds a message of type d: the part of
 * p->type_url after its last '/' equals d->name. False for NULL or empty p. */
SPAWN_API bool spawn_payload_is(const spawn_payload *p, const ProtobufCMessageDescriptor *d);

/* spawn_payload_pack serializes m and sets *out to it, with the type URL
 * taken from m's descriptor. The memory of *out is one allocation owned by
 * the caller, freed with spawn_payload_fini(out).
 * Returns SPAWN_OK, SPAWN_EINVAL (NULL argument) or SPAWN_ENOMEM; *out is
 * written only on success. */
SPAWN_API int spawn_payload_pack(spawn_payload *out, const ProtobufCMessage *m);

/* spawn_payload_fini frees a payload made by spawn_payload_pack and zeroes
 * it. Accepts NULL and zeroed payloads. Never call it on payloads libspawn
 * lends you (spawn_ctx_state, spawn_reply.payload). */
SPAWN_API void spawn_payload_fini(spawn_payload *p);

/* spawn_payload_unpack parses p as a message of type d.
 * Returns SPAWN_OK and sets *out (caller frees with
 * protobuf_c_message_free_unpacked(*out, NULL)); SPAWN_ETYPE when p holds
 * no value or another type (see spawn_payload_is); SPAWN_EPROTO when the
 * bytes do not parse; SPAWN_EINVAL on NULL arguments. */
SPAWN_API int spawn_payload_unpack(const spawn_payload *p, const ProtobufCMessageDescriptor *d,
                                   ProtobufCMessage **out);

/* ======================================================================
 * Host: serving actors
 * ==================================================================== */

typedef struct spawn_host spawn_host; /* opaque */
typedef struct spawn_ctx spawn_ctx;   /* opaque; one invocation, see below */

/* An action handler. It runs on one of the host's worker threads, reads
 * the invocation from ctx and sets its outcome with spawn_ctx_set_state,
 * spawn_ctx_reply, spawn_ctx_checkpoint or spawn_ctx_fail. ctx and
 * everything read from it are valid only until the handler returns.
 * user is spawn_action_def.user. Handlers of one NAMED or UNNAMED actor
 * instance never overlap (the gateway sends one invocation per actor at a
 * time); handlers of different actors, and of POOLED actors, may run at
 * once on different workers. With spawn_host_opts.run_inline they run one
 * at a time on the host's own thread instead. A handler must not call
 * spawn_host_destroy. */
typedef void (*spawn_handler)(spawn_ctx *ctx, void *user);

/* How instances of an actor come to exist (values of spawn.actors.Kind). */
typedef enum spawn_actor_kind {
	SPAWN_KIND_NAMED = 1,   /* one instance, named as the actor (0 means this too) */
	SPAWN_KIND_UNNAMED = 2, /* a template; instances are spawned with names */
	SPAWN_KIND_POOLED = 3   /* stateless; several invocations may run at once */
} spawn_actor_kind;

typedef struct spawn_action_def {
	const char *name;      /* borrowed; required, unique within the actor */
	spawn_handler handler; /* required */
	void *user;            /* passed to handler; retained until spawn_host_destroy */
	int32_t timer_ms;      /* > 0: the gateway also runs this action every
	                          timer_ms while the actor is active (a
	                          FixedTimerAction); 0 = only on request */
} spawn_action_def;

/* The action a channel subscription delivers to when it names none
 * (Spawn's default). */
#define SPAWN_DEFAULT_CHANNEL_ACTION "receive"

/* A pub-sub subscription (spawn.actors.Channel in Metadata.channel_group):
 * every broadcast on topic in the actor's system becomes an invocation of
 * action with the broadcast's payload. The gateway activates a subscriber
 * that is not active. */
typedef struct spawn_channel_def {
	const char *topic;  /* borrowed; required */
	const char *action; /* borrowed; NULL or "" = SPAWN_DEFAULT_CHANNEL_ACTION;
	                       must be one of the actor's actions */
} spawn_channel_def;

typedef struct spawn_actor_def {
	const char *name;              /* borrowed; required, unique within the host */
	spawn_actor_kind kind;         /* 0 = SPAWN_KIND_NAMED */
	bool stateful;                 /* the gateway keeps and persists the state */
	const char *state_type;        /* borrowed; type URL of the state, NULL = unspecified */
	int64_t snapshot_interval_ms;  /* how often the gateway saves the state; 0 = its default */
	int64_t deactivate_timeout_ms; /* idle time before deactivation; 0 = gateway default */
	int32_t min_pool_size;         /* POOLED only; 0 = gateway default */
	int32_t max_pool_size;         /* POOLED only; 0 = gateway default */
	const spawn_action_def *actions; /* borrowed; n_actions >= 1 entries */
	size_t n_actions;
	/* Members below were appended in 0.1 (workflows); zero-initialized
	 * definitions keep their earlier meaning. */
	const spawn_channel_def *channels; /* borrowed; n_channels entries; NULL
	                                      when n_channels == 0 */
	size_t n_channels;
} spawn_actor_def;

/* How a host or a client authenticates the gateway and itself to it
 * (spawn_host_opts.security, spawn_client_opts.security). Zero-init and set
 * what you need; fields are only ever appended.
 *
 * Each field left NULL is read from its environment variable when the
 * host or client is created (SPAWN_TLS_CA, SPAWN_TLS_CERT, SPAWN_TLS_KEY,
 * SPAWN_TLS_SERVER_NAME, SPAWN_TOKEN); "" means none and does not read the
 * environment. With a CA the connection is TLS (the gateway's certificate
 * must chain to it and name the target's host, or tls_server_name; for a
 * list of members, every member's certificate must name the first entry's
 * host, or tls_server_name); with a certificate and key too it is mutual
 * TLS, as a gateway started with --tls-client-ca requires. Without a CA it is plaintext, as the
 * gateway serves it on loopback and unix sockets without --tls-cert. The files are read once, at
 * create: a file that cannot be read, or that holds no PEM block, fails the create with SPAWN_ETLS
 * and a line on stderr naming the file. The token is sent as "authorization: Bearer <token>" in the
 * metadata of every call (and of the host's stream); it is never logged. A token also works over
 * plaintext, where anyone on the path can read it: use TLS off loopback. */
typedef struct spawn_security_opts {
	const char *tls_ca;          /* borrowed; PEM file of the CA certificate(s) that
	                                sign the gateway's certificate */
	const char *tls_cert;        /* borrowed; PEM file of this process's certificate
	                                (chain); needs tls_key and tls_ca */
	const char *tls_key;         /* borrowed; PEM file of its private key */
	const char *tls_server_name; /* borrowed; the name the gateway's certificate must
	                                carry, instead of the target's host */
	const char *token;           /* borrowed; bearer token (printable ASCII) */
} spawn_security_opts;

/* What happened to the host's connection (for spawn_host_opts.on_event). */
typedef enum spawn_host_event {
	SPAWN_HOST_REGISTERED = 1,    /* the gateway accepted the registration */
	SPAWN_HOST_DISCONNECTED = 2,  /* the stream ended or could not start;
	                                 status and message say why; a reconnect
	                                 follows after the backoff */
	SPAWN_HOST_REJECTED = 3,      /* the gateway refused the registration
	                                 (message from it); retried after backoff */
	SPAWN_HOST_PROTOCOL_ERROR = 4 /* the gateway sent something malformed;
	                                 the stream is dropped and reopened */
} spawn_host_event;

/* An event callback. It runs on the host's I/O thread: it must return
 * quickly and must not call spawn_host_stop/run/destroy (spawn_host_signal_stop
 * is fine). message is borrowed until the callback returns; status is a
 * spawn_status (the gRPC status of the stream for DISCONNECTED). */
typedef void (*spawn_host_event_fn)(void *user, spawn_host_event ev, int status,
                                    const char *message);

typedef struct spawn_host_opts {
	const char *target;           /* borrowed; required: the gateway's address,
	                                 "127.0.0.1:8090", "localhost:8090",
	                                 "unix:/run/spawn.sock" (any gRPC target), or
	                                 several members: "10.0.0.1:8090,10.0.0.2:8090"
	                                 (numeric, one family) or
	                                 "dns:///NAME:PORT"; the host registers with one
	                                 and, when it goes away, with another
	                                 (docs/sdk/c.md "Several gateways") */
	const char *system;           /* borrowed; required: the actor system name */
	const char *service_name;     /* borrowed; NULL = "libspawn-host" */
	const char *service_version;  /* borrowed; NULL = "0.0.0" */
	int workers;                  /* handler threads; 0 = 1 */
	int64_t backoff_min_ms;       /* first reconnect delay; 0 = 15 */
	int64_t backoff_max_ms;       /* largest reconnect delay; 0 = 2000 (one connection
	                                 attempt may take up to 5 s, whatever the delay) */
	int64_t keepalive_ms;         /* > 0: HTTP/2 keepalive ping period, to notice a
	                                 dead gateway; the gateway must permit it.
	                                 0 = off */
	int32_t max_message_bytes;    /* largest message sent or received; 0 = gRPC's
	                                 defaults (receive 4 MiB, send unlimited).
	                                 Match the gateway's --max-message-bytes */
	spawn_host_event_fn on_event; /* NULL = DISCONNECTED, REJECTED and
	                                 PROTOCOL_ERROR are printed on stderr */
	void *event_user;             /* passed to on_event; retained until destroy */
	spawn_security_opts security; /* TLS and token; zero = the SPAWN_TLS_* and
	                                 SPAWN_TOKEN environment, else plaintext */
	bool run_inline;              /* true: no worker threads (workers must be 0);
	                                 handlers run on the thread of spawn_host_run,
	                                 which receives the stream, and the results
	                                 of one received message leave together.
	                                 Saves a thread hand-off per message, but
	                                 while a handler runs the stream is not
	                                 read: only for handlers that never block
	                                 and never call the gateway synchronously
	                                 (docs/sdk/c.md "Inline handlers") */
} spawn_host_opts;

/* spawn_host_create makes a host for opts->system that will talk to the
 * gateway at opts->target. Nothing is connected until spawn_host_run or
 * spawn_host_start. opts and its strings are borrowed (copied).
 * Returns SPAWN_OK and sets *out (caller frees with spawn_host_destroy);
 * SPAWN_EINVAL (NULL or empty target/system, a list of members that is
 * not numeric HOST:PORTs of one family, workers < 0, run_inline with
 * workers > 0, negative or inverted
 * backoffs, negative keepalive or message size, a token with characters
 * outside printable ASCII), SPAWN_ETLS (see spawn_security_opts; also TLS
 * over a list of different hosts without tls_server_name), SPAWN_ENOMEM or SPAWN_ESYS; *out is
 * untouched then. Blocks: no. Thread: any. */
SPAWN_API int spawn_host_create(spawn_host **out, const spawn_host_opts *opts);

/* spawn_host_add_actor declares one actor and its actions. def and all it
 * points to are borrowed (copied), except each action's user pointer.
 * Returns SPAWN_OK; SPAWN_EINVAL (NULL or empty names, no actions, NULL
 * handler, unknown kind, negative intervals or timers, a channel without
 * topic or whose action the actor lacks); SPAWN_EEXIST (an
 * actor of that name, or two actions of one name); SPAWN_ESTATE (the host
 * is running or was started: actors are fixed from then on); SPAWN_ENOMEM.
 * Blocks: no. Thread: any, but not concurrently with run/start. */
SPAWN_API int spawn_host_add_actor(spawn_host *h, const spawn_actor_def *def);

/* spawn_host_add_contract adds the descriptors of a contract the host
 * serves: set[0..len) (copied) is a serialized google.protobuf.FileDescriptorSet
 * (the .proto file and everything it imports). The gateway then serves
 * each service carrying the spawn.actors.actor option as a plain gRPC
 * service and describes it by server reflection (docs/protocol.md,
 * "Contracts"). The code protoc-gen-spawn generates calls it from each
 * actor's _register function. All sets added go, as one, right after the
 * registration on every stream; a set added twice is sent once.
 * Returns SPAWN_OK; SPAWN_EINVAL; SPAWN_ESTATE (the host was started);
 * SPAWN_ENOMEM. Blocks: no. Thread: any, but not concurrently with
 * run/start. */
SPAWN_API int spawn_host_add_contract(spawn_host *h, const void *set, size_t len);

/* spawn_host_run serves on the calling thread until spawn_host_stop:
 *   connect -> send the registration -> gateway accepts (REGISTERED) ->
 *   run invocations on the workers (or inline: run_inline), answer each
 *   on the same stream ->
 *   stream ends (DISCONNECTED) -> wait the backoff -> connect again.
 * The backoff starts at backoff_min_ms, doubles per failed attempt up to
 * backoff_max_ms, varies by +-20% (jitter), and starts over after every
 * successful registration. An invocation whose deadline has passed when a
 * worker picks it up is answered DEADLINE_EXCEEDED without running the
 * handler; invocations of an unknown actor or action are answered
 * NOT_FOUND. Results of invocations still running when a stream ends are
 * dropped (the gateway has already failed those calls).
 * Returns SPAWN_OK once stopped (at once if spawn_host_stop came first);
 * SPAWN_EINVAL when no actor was added; SPAWN_ESTATE when the host is
 * already running; SPAWN_ENOMEM or SPAWN_ESYS when it cannot set up.
 * Blocks: yes. Thread: any, one at a time. */
SPAWN_API int spawn_host_run(spawn_host *h);

/* spawn_host_start runs spawn_host_run on a new background thread and
 * returns at once. spawn_host_destroy stops and joins that thread.
 * Returns SPAWN_OK; SPAWN_EINVAL (no actors); SPAWN_ESTATE (already
 * running or started); SPAWN_ECLOSED (spawn_host_stop came first);
 * SPAWN_ESYS (no thread). Setup failures of the thread (ENOMEM, ESYS) are
 * printed on stderr and end it. Blocks: no. */
SPAWN_API int spawn_host_start(spawn_host *h);

/* spawn_host_wait_registered waits until the host is registered on its
 * current stream (returns at once if it is). timeout_ms < 0 waits forever.
 * Returns SPAWN_OK; SPAWN_ETIMEDOUT; SPAWN_ECLOSED once the host is
 * stopping. Blocks: yes, up to timeout_ms. Thread: any, not a handler. */
SPAWN_API int spawn_host_wait_registered(spawn_host *h, int64_t timeout_ms);

/* spawn_host_registrations returns how many times the gateway has accepted
 * this host's registration (one per successful (re)connection). Lets a
 * caller see a re-registration: wait for the count to pass a value with
 * spawn_host_wait_registrations. Thread: any. */
SPAWN_API uint64_t spawn_host_registrations(spawn_host *h);

/* spawn_host_wait_registrations waits until spawn_host_registrations(h)
 * >= n. Same returns and timeout as spawn_host_wait_registered. */
SPAWN_API int spawn_host_wait_registrations(spawn_host *h, uint64_t n, int64_t timeout_ms);

/* spawn_host_stop asks the host to stop: the stream is cancelled, workers
 * finish the handler they are in, and spawn_host_run returns. Stopping is
 * final: a stopped host can only be destroyed. Idempotent.
 * Blocks: no (it does not wait for run to return). Thread: any, including
 * handlers and event callbacks. Not async-signal-safe: from a signal
 * handler use spawn_host_signal_stop. */
SPAWN_API void spawn_host_stop(spawn_host *h);

/* spawn_host_signal_stop is spawn_host_stop for signal handlers: it only
 * writes one byte to the host's self-pipe (write(2) is async-signal-safe,
 * errno is preserved); a helper thread of spawn_host_run reads it and calls
 * spawn_host_stop. Safe to call before run starts (run then returns at
 * once). Restore the signal's disposition before spawn_host_destroy: a
 * handler must never run on a destroyed host. */
SPAWN_API void spawn_host_signal_stop(spawn_host *h);

/* spawn_host_destroy stops the host, joins the thread of spawn_host_start
 * if any, and frees everything. Accepts NULL. A spawn_host_run running on
 * another thread must have returned first (stop it, then join your
 * thread). Blocks: yes, until the running handlers return. Thread: not a
 * handler or event callback of h. */
SPAWN_API void spawn_host_destroy(spawn_host *h);

/* ---- inside a handler ------------------------------------------------ */

/* Identity of the invocation. Strings are borrowed until the handler
 * returns; never NULL unless stated. */
/* One metadata entry (defined with the client, below). */
typedef struct spawn_metadata spawn_metadata;

SPAWN_API const char *spawn_ctx_system(const spawn_ctx *ctx);
SPAWN_API const char *spawn_ctx_actor(const spawn_ctx *ctx); /* instance name */
/* The template's name for instances of UNNAMED actors; NULL otherwise. */
SPAWN_API const char *spawn_ctx_parent(const spawn_ctx *ctx);
SPAWN_API const char *spawn_ctx_action(const spawn_ctx *ctx);
/* The calling actor when an actor invoked this one; NULL for clients. */
SPAWN_API const char *spawn_ctx_caller_actor(const spawn_ctx *ctx);
SPAWN_API const char *spawn_ctx_caller_system(const spawn_ctx *ctx);
/* When the caller stops waiting, in Unix epoch milliseconds; 0 = never. */
SPAWN_API int64_t spawn_ctx_deadline_ms(const spawn_ctx *ctx);

/* spawn_ctx_state is the actor's current state (type_url NULL when it has
 * none yet); spawn_ctx_payload is the invocation's input (type_url NULL for
 * none). Never NULL; borrowed until the handler returns. */
SPAWN_API const spawn_payload *spawn_ctx_state(const spawn_ctx *ctx);
SPAWN_API const spawn_payload *spawn_ctx_payload(const spawn_ctx *ctx);

/* spawn_ctx_metadata returns the invocation's metadata value for key, and
 * spawn_ctx_tag the actor's tag; NULL when absent. Borrowed. */
SPAWN_API const char *spawn_ctx_metadata(const spawn_ctx *ctx, const char *key);

/* W3C trace context (docs/observability.md). The gateway hands every turn
 * a `traceparent` (naming its host-turn span as the parent) and the
 * caller's `tracestate`, if any, in the metadata.
 * spawn_ctx_traceparent returns the turn's traceparent (NULL from a
 * gateway that does not trace); spawn_ctx_trace fills md[0..1] with the
 * traceparent and tracestate entries present (md has room for 2; strings borrowed from ctx,
 * valid during the handler) and returns how many (0..2): put them in a
 * spawn_request's metadata to pass the trace on in a client call made
 * from the handler. Side effects carry it on their own (unless their own
 * metadata names a traceparent); pipes, forwards and broadcasts are
 * continued by the gateway. */
SPAWN_API const char *spawn_ctx_traceparent(const spawn_ctx *ctx);
SPAWN_API size_t spawn_ctx_trace(const spawn_ctx *ctx, spawn_metadata *md);
SPAWN_API const char *spawn_ctx_tag(const spawn_ctx *ctx, const char *key);

/* spawn_ctx_state_msg / spawn_ctx_payload_msg unpack the state / payload
 * as a message of type d. The message lives in ctx's memory: valid until
 * the handler returns, never freed by the caller. When the actor has no
 * state yet, spawn_ctx_state_msg gives a message with default values (so
 * "total = 0" needs no special case); spawn_ctx_payload_msg does the same
 * for an invocation without payload.
 * Returns SPAWN_OK and sets *out; SPAWN_ETYPE (a value of another type),
 * SPAWN_EPROTO (does not parse), SPAWN_ENOMEM, SPAWN_EINVAL. */
SPAWN_API int spawn_ctx_state_msg(spawn_ctx *ctx, const ProtobufCMessageDescriptor *d,
                                  ProtobufCMessage **out);
SPAWN_API int spawn_ctx_payload_msg(spawn_ctx *ctx, const ProtobufCMessageDescriptor *d,
                                    ProtobufCMessage **out);

/* The outcome. A handler that sets nothing answers with the state
 * unchanged and no reply value.
 *
 * spawn_ctx_set_state replaces the actor's state (type_url required; data
 * and len are copied). Calling it again replaces the earlier value.
 * spawn_ctx_reply sets the value the caller receives (type_url NULL = no
 * value); copied; the last call wins.
 * Both return SPAWN_OK, SPAWN_EINVAL (NULL ctx or type_url, NULL data with
 * len > 0) or SPAWN_ENOMEM. The _msg variants pack m (borrowed) first. */
SPAWN_API int spawn_ctx_set_state(spawn_ctx *ctx, const char *type_url, const void *data,
                                  size_t len);
SPAWN_API int spawn_ctx_set_state_msg(spawn_ctx *ctx, const ProtobufCMessage *m);
SPAWN_API int spawn_ctx_reply(spawn_ctx *ctx, const char *type_url, const void *data, size_t len);
SPAWN_API int spawn_ctx_reply_msg(spawn_ctx *ctx, const ProtobufCMessage *m);

/* spawn_ctx_checkpoint asks the gateway to save the new state durably
 * before it answers the caller (default false). */
SPAWN_API void spawn_ctx_checkpoint(spawn_ctx *ctx, bool on);

/* spawn_ctx_set_tag sets the actor's tag key to value (both copied);
 * value NULL removes it. Tags are stored with the state (they survive
 * restarts) and every later invocation sees them (spawn_ctx_tag, which
 * already returns the new value within this handler). Tags not touched are
 * kept. Returns SPAWN_OK, SPAWN_EINVAL (NULL ctx or key, empty key) or
 * SPAWN_ENOMEM. Note: the gateway keeps the stored tags when a turn hands
 * back none, so removing the last tag does not reach the store. */
SPAWN_API int spawn_ctx_set_tag(spawn_ctx *ctx, const char *key, const char *value);

/* ---- workflows: what happens after the turn ---------------------------
 *
 * A handler may ask the gateway to go on after its turn
 * (ActorInvocationResponse.workflow). Everything below is discarded when
 * the handler fails (spawn_ctx_fail). Every invocation a workflow makes has
 * this actor as its caller (spawn_ctx_caller_actor/_system in the target)
 * and counts one hop more than this one; the gateway cuts chains past its
 * hop limit (16) with INVALID_ARGUMENT, so a pipe cycle ends with an error
 * for the original caller instead of running forever. Like every spawn_ctx_
 * function these only record what the handler asks for: they never block
 * and are called on the handler's thread with its own ctx.
 *
 * Routing (one per turn; the last spawn_ctx_pipe or spawn_ctx_forward wins):
 *   pipe     the reply this handler set (spawn_ctx_reply; none = no value)
 *            goes as input to actor.action in the same system, and the
 *            caller receives that action's reply instead of this one.
 *   forward  this invocation's own input goes to actor.action in the same
 *            system, and the caller receives that action's reply.
 * Both copy actor and action (borrowed) and return SPAWN_OK, SPAWN_EINVAL
 * (NULL ctx, NULL or empty actor or action) or SPAWN_ENOMEM. The
 * invocation's metadata goes along. */
SPAWN_API int spawn_ctx_pipe(spawn_ctx *ctx, const char *actor, const char *action);
SPAWN_API int spawn_ctx_forward(spawn_ctx *ctx, const char *actor, const char *action);

/* spawn_ctx_side_effect adds an invocation the gateway fires after this
 * turn (after the state is saved, for a checkpointed turn): fire and
 * forget, never delaying the reply; failures are retried by the gateway
 * with backoff and logged. req (see the client's spawn_request, all of it
 * borrowed and copied) names the target: system (NULL = this actor's
 * system, so any system of the gateway can be reached), actor, action,
 * payload, metadata, parent (register_ref: the UNNAMED template to
 * instantiate actor from), pooled and scheduled_to_ms (a Unix time in ms
 * still ahead: the gateway stores the effect durably, as a scheduled
 * invocation, and fires it then, also across a restart of the gateway;
 * 0 or past: at once). async is ignored (effects are always
 * asynchronous). Several calls add several effects, fired in order; the
 * gateway refuses a turn with more than its --max-effects-per-turn (default
 * 64) with RESOURCE_EXHAUSTED, state unchanged, nothing delivered.
 * Returns SPAWN_OK; SPAWN_EINVAL (NULL ctx or req, missing actor or action,
 * payload data without a type URL, metadata entries without key, or
 * scheduled_to_ms < 0); SPAWN_ENOMEM. */
struct spawn_request; /* the client's, below */
SPAWN_API int spawn_ctx_side_effect(spawn_ctx *ctx, const struct spawn_request *req);

/* spawn_ctx_broadcast sends (type_url, data, len) - type_url NULL = no value
 * - to every actor of this actor's system subscribed to channel (see
 * spawn_channel_def), each getting one fire-and-forget invocation of its
 * channel's action after this turn. A channel without subscribers is a
 * no-op. One broadcast per turn: the last call wins. channel and the
 * payload are copied. Returns SPAWN_OK, SPAWN_EINVAL (NULL ctx, NULL or
 * empty channel, NULL data with len > 0) or SPAWN_ENOMEM. The _msg variant
 * packs m (borrowed; NULL = no value) first. */
SPAWN_API int spawn_ctx_broadcast(spawn_ctx *ctx, const char *channel, const char *type_url,
                                  const void *data, size_t len);
SPAWN_API int spawn_ctx_broadcast_msg(spawn_ctx *ctx, const char *channel,
                                      const ProtobufCMessage *m);

/* spawn_ctx_fail makes the invocation fail: the state stays as it was, any
 * reply, state, tag or workflow set is discarded, and the caller gets
 * code with message (copied; NULL = the code's description). code is a
 * gRPC status code (SPAWN_INVALID_ARGUMENT ...); 0 or values outside 1..16
 * become SPAWN_UNKNOWN, as the gateway would. The last call wins. */
SPAWN_API void spawn_ctx_fail(spawn_ctx *ctx, int code, const char *message);

/* ======================================================================
 * Client: invoking actors
 * ==================================================================== */

typedef struct spawn_client spawn_client; /* opaque */

/* One metadata entry of an invocation (InvocationRequest.metadata; the
 * actor reads it with spawn_ctx_metadata). Strings borrowed. */
struct spawn_metadata {
	const char *key;
	const char *value;
};

/* One invocation: system / actor / action with an optional payload. All
 * pointers are borrowed for the duration of the invoke call. Zero-init
 * the struct and fill what you need; fields are only ever appended. */
typedef struct spawn_request {
	const char *system;             /* required */
	const char *actor;              /* required: the actor (or UNNAMED instance) name */
	const char *action;             /* required */
	spawn_payload payload;          /* type_url NULL = no payload */
	bool async;                     /* the gateway accepts and answers at once, with no
	                                   value; the action runs later */
	const spawn_metadata *metadata; /* n_metadata entries */
	size_t n_metadata;
	const char *parent;      /* UNNAMED template to instantiate `actor` from on
	                            demand (register_ref); NULL = none */
	bool pooled;             /* the actor is POOLED */
	int64_t scheduled_to_ms; /* run at this Unix time in ms; 0 = now */
} spawn_request;

/* The outcome of a call. status equals the return value of the call; on
 * failure message says why. Owned by the caller, freed with
 * spawn_reply_fini. */
typedef struct spawn_reply {
	int status;            /* spawn_status */
	char *message;         /* NULL on success; never NULL on failure unless
	                          memory ran out */
	spawn_payload payload; /* the action's reply value; type_url NULL for none */
} spawn_reply;

/* spawn_reply_fini frees the reply's memory and zeroes it. Accepts NULL
 * and zeroed replies. */
SPAWN_API void spawn_reply_fini(spawn_reply *r);

/* How a client behaves across gateway restarts. Zero-init the struct and
 * set what you need; fields are only ever appended.
 *
 * A gateway restart, as the client sees it: the connection dies (the
 * client's own thread watches it while the client is idle, so the death is
 * noticed at once instead of by the next call's write); calls made while
 * the gateway is down wait for it, up to their deadline (wait-for-ready:
 * only calls that were never sent wait, so no call the gateway may have
 * seen is ever sent twice); the client dials again after
 * reconnect_min_ms, backing off to reconnect_max_ms while the gateway
 * stays down. A call in flight when the gateway dies still fails with
 * SPAWN_UNAVAILABLE: whether it ran is unknown, and only the caller can
 * tell whether it may be repeated.
 * An UNAVAILABLE answer that the gateway marks never dispatched (trailer
 * "spawn-retry: not-dispatched": no host has registered the actor yet after
 * a gateway restart, or none of its hosts is connected) is retried by the
 * synchronous calls (spawn_client_invoke, spawn_client_spawn) after 10 ms
 * doubling to 100 ms (+-20%), until the call's deadline (5 s for a call
 * without one); asynchronous calls are not retried. */
typedef struct spawn_client_opts {
	const char *target;       /* required, borrowed: "127.0.0.1:8090", "unix:/run/spawn.sock",
	                             or several members, "10.0.0.1:8090,10.0.0.2:8090"
	                             (numeric, one family) or "dns:///NAME:PORT": calls go
	                             round robin over the members reached (docs/sdk/c.md
	                             "Several gateways") */
	int64_t reconnect_min_ms; /* first delay before dialing again after a failed
	                             attempt; 0 = 20 */
	int64_t reconnect_max_ms; /* largest delay between attempts while the gateway
	                             stays down; 0 = 50 (a waiting call goes out at
	                             most about this long after the gateway is back) */
	bool fail_fast;           /* calls fail at once with SPAWN_UNAVAILABLE while no
	                             connection can be made, instead of waiting up to
	                             their deadline (calls without a deadline never wait),
	                             and answers marked never dispatched are not retried */
	bool no_watch;            /* no idle watch of the connection (and no client
	                             thread until the first async call): the first
	                             call after a gateway restart may then fail with
	                             SPAWN_UNAVAILABLE */
	spawn_security_opts security; /* TLS and token; zero = the SPAWN_TLS_* and
	                                 SPAWN_TOKEN environment, else plaintext.
	                                 A failed handshake (wrong CA, no client
	                                 certificate for an mTLS gateway) makes
	                                 calls fail with SPAWN_UNAVAILABLE, or
	                                 SPAWN_DEADLINE_EXCEEDED while they wait */
} spawn_client_opts;

/* spawn_client_create makes a client of the gateway at target (borrowed;
 * "127.0.0.1:8090", "unix:/run/spawn.sock") with the default options (see
 * spawn_client_opts). It connects lazily: an unreachable gateway shows up
 * on the first call, as SPAWN_DEADLINE_EXCEEDED (a call with a deadline
 * waits for the gateway) or SPAWN_UNAVAILABLE (no deadline, or fail_fast).
 * Returns SPAWN_OK and sets *out (caller frees with spawn_client_destroy),
 * SPAWN_EINVAL (NULL or empty target, or a list of members that is not
 * numeric HOST:PORTs of one family; one line on stderr), SPAWN_ETLS (the
 * TLS files of the
 * SPAWN_TLS_* environment, see spawn_security_opts), SPAWN_ENOMEM or
 * SPAWN_ESYS (no client thread). */
SPAWN_API int spawn_client_create(spawn_client **out, const char *target);

/* spawn_client_create_opts is spawn_client_create with options (borrowed).
 * Also SPAWN_EINVAL for negative or inverted reconnect delays or a token
 * with characters outside printable ASCII. */
SPAWN_API int spawn_client_create_opts(spawn_client **out, const spawn_client_opts *opts);

/* spawn_client_invoke calls req and waits for its outcome. timeout_ms <= 0
 * means no deadline.
 * Always initializes *out (also on failure; call spawn_reply_fini) and
 * returns out->status: SPAWN_OK with out->payload the action's reply; a
 * gRPC status from the gateway or the host (see gateway.proto:
 * NOT_FOUND, UNAVAILABLE, DEADLINE_EXCEEDED, ...); SPAWN_EINVAL (missing
 * system/actor/action, payload data without a type URL); SPAWN_EPROTO
 * (unparsable response); SPAWN_ENOMEM.
 * Blocks: yes, up to timeout_ms. Thread: any, concurrently. */
SPAWN_API int spawn_client_invoke(spawn_client *c, const spawn_request *req, spawn_reply *out,
                                  int64_t timeout_ms);

/* A completion callback of spawn_client_invoke_async. It runs on the
 * client's own thread, one callback at a time, and should return quickly.
 * reply is owned by libspawn and freed after the callback returns; to keep
 * it, copy the struct and zero the original (memset) - the copy is then
 * yours to spawn_reply_fini. The callback may call spawn_client_invoke and
 * spawn_client_invoke_async, but not spawn_client_destroy. */
typedef void (*spawn_reply_fn)(void *user, spawn_reply *reply);

/* spawn_client_invoke_async starts req and returns at once; cb(user, reply)
 * runs exactly once later, with the same statuses as spawn_client_invoke
 * (SPAWN_CANCELLED when the client is destroyed first). user is retained
 * until the callback.
 * Returns SPAWN_OK (the callback will run); SPAWN_EINVAL, SPAWN_ENOMEM,
 * SPAWN_ESYS (no client thread) or SPAWN_ECLOSED (client being destroyed):
 * then the callback never runs. Blocks: no. Thread: any. */
SPAWN_API int spawn_client_invoke_async(spawn_client *c, const spawn_request *req,
                                        int64_t timeout_ms, spawn_reply_fn cb, void *user);

/* An actor instance to spawn (SpawnRequest.actors). Strings borrowed. */
typedef struct spawn_actor_id {
	const char *name;   /* required: the new instance's name */
	const char *parent; /* required: the UNNAMED actor it instantiates */
} spawn_actor_id;

/* spawn_client_spawn creates n instances of UNNAMED actors in system.
 * Same reply and return conventions as spawn_client_invoke (the reply has
 * no payload). SPAWN_EINVAL for n == 0 or missing names. Blocks: yes. */
SPAWN_API int spawn_client_spawn(spawn_client *c, const char *system, const spawn_actor_id *actors,
                                 size_t n, spawn_reply *out, int64_t timeout_ms);

/* spawn_client_destroy cancels the calls still in flight (their callbacks
 * run with SPAWN_CANCELLED before it returns), stops the client thread and
 * frees the client. Accepts NULL. Blocks: yes, until those callbacks
 * return. Thread: any but the client's callback thread; no other call on c
 * may be running or start. */
SPAWN_API void spawn_client_destroy(spawn_client *c);

/* ======================================================================
 * Typed calls and handlers: what generated code stands on
 * ====================================================================
 *
 * The C that protoc-gen-spawn generates is thin typed shims over the
 * functions below: one tested copy here instead of one per generated
 * file. Hand-written typed wrappers may use them the same way. They add to
 * the calls above only what a typed API needs: packing the input, reading
 * the reply as a message, and turning a wrong type or a failed step into
 * a status and a message. Nothing here changes what goes on the wire. */

/* Any function: a typed callback travels through libspawn as a spawn_fn.
 * C allows converting a function pointer to another function pointer type
 * and back, but not calling it through the other type, so the code that
 * knows the callback's real type converts it back before calling it (see
 * spawn_msg_done_fn). */
typedef void (*spawn_fn)(void);

/* spawn_client_invoke_msg calls req with the message in as its payload
 * (req->payload is not used) and waits for the reply, up to timeout_ms
 * (<= 0: no deadline). c, req and in are borrowed.
 * Returns SPAWN_OK and, when out is not NULL, sets *out to the reply as a
 * message of type reply_type (caller frees with
 * protobuf_c_message_free_unpacked(*out, NULL)); a reply without a value
 * gives a message with default values. With out NULL the reply is not
 * read. Otherwise returns the call's status (those of spawn_client_invoke),
 * SPAWN_ETYPE (the reply has another type than reply_type), SPAWN_EPROTO
 * (the reply's bytes do not parse), SPAWN_EINVAL (NULL req, in or
 * reply_type) or SPAWN_ENOMEM, and leaves *out untouched.
 * When message is not NULL, *message becomes NULL on success and says why
 * on failure: the gateway's or the host's message, "the reply has another
 * type", else spawn_strerror(status) (caller frees with free(); NULL only
 * when memory ran out).
 * Blocks: yes, up to timeout_ms. Thread: any, concurrently. */
SPAWN_API int spawn_client_invoke_msg(spawn_client *c, const spawn_request *req,
                                      const ProtobufCMessage *in,
                                      const ProtobufCMessageDescriptor *reply_type,
                                      ProtobufCMessage **out, char **message, int64_t timeout_ms);

/* The completion of spawn_client_invoke_msg_async. It runs once, on the
 * client's thread (the rules of spawn_reply_fn apply), with the fn and
 * user given to the call and the outcome as spawn_client_invoke_msg
 * reports it: status; message, NULL on success, else why (borrowed until
 * done returns); reply, on success the reply as a message of reply_type
 * (done owns it: protobuf_c_message_free_unpacked(reply, NULL)), else
 * NULL. */
typedef void (*spawn_msg_done_fn)(spawn_fn fn, void *user, int status, const char *message,
                                  ProtobufCMessage *reply);

/* spawn_client_invoke_msg_async starts the call of spawn_client_invoke_msg
 * and returns at once; done(fn, user, ...) runs exactly once later
 * (SPAWN_CANCELLED when the client is destroyed first). A typed stub
 * passes its caller's typed callback as fn, and as done a function that
 * converts fn back to that type and calls it with the reply converted to
 * the reply's type. c, req and in are borrowed (in is packed before the
 * call returns); fn and user are passed to done untouched, and user is
 * retained until then.
 * Returns SPAWN_OK (done will run); SPAWN_EINVAL (NULL req, in,
 * reply_type, done or fn, or a request spawn_client_invoke_async
 * refuses), SPAWN_ENOMEM, SPAWN_ESYS (no client thread) or SPAWN_ECLOSED
 * (client being destroyed): then done never runs.
 * Blocks: no. Thread: any. */
SPAWN_API int spawn_client_invoke_msg_async(spawn_client *c, const spawn_request *req,
                                            const ProtobufCMessage *in,
                                            const ProtobufCMessageDescriptor *reply_type,
                                            int64_t timeout_ms, spawn_msg_done_fn done, spawn_fn fn,
                                            void *user);

/* spawn_ctx_expect_state and spawn_ctx_expect_payload are
 * spawn_ctx_state_msg and spawn_ctx_payload_msg for a handler that cannot
 * run without its state and input of type d: on failure they also fail the
 * invocation (spawn_ctx_fail), with RESOURCE_EXHAUSTED when memory ran
 * out, else with
 *   FAILED_PRECONDITION "the state of actor A is not a T"   (expect_state)
 *   INVALID_ARGUMENT    "action A takes a T"                 (expect_payload)
 * where T is d->name. Return and *out as those of spawn_ctx_state_msg /
 * spawn_ctx_payload_msg (the message lives in ctx's memory until the
 * handler returns; default values when there is no value). With a NULL
 * argument they return SPAWN_EINVAL and leave the invocation alone.
 * Blocks: no. Thread: the handler's, with its own ctx. */
SPAWN_API int spawn_ctx_expect_state(spawn_ctx *ctx, const ProtobufCMessageDescriptor *d,
                                     ProtobufCMessage **out);
SPAWN_API int spawn_ctx_expect_payload(spawn_ctx *ctx, const ProtobufCMessageDescriptor *d,
                                       ProtobufCMessage **out);

/* spawn_ctx_fail_on_error makes a failed step fail the invocation: for
 * status != SPAWN_OK it calls spawn_ctx_fail with RESOURCE_EXHAUSTED for
 * SPAWN_ENOMEM, status itself for a gRPC code (1..16), INTERNAL for
 * anything else, and spawn_strerror(status) as the message. Returns
 * status, so that it wraps an outcome setter:
 *   return spawn_ctx_fail_on_error(ctx, spawn_ctx_reply_msg(ctx, m));
 * A NULL ctx only returns status.
 * Blocks: no. Thread: the handler's, with its own ctx. */
SPAWN_API int spawn_ctx_fail_on_error(spawn_ctx *ctx, int status);

#ifdef __cplusplus
}
#endif

#endif
