/* internal.h - what the files of libspawn share; not installed.
 *
 * spawni_ is the prefix of cross-file internals. The tests include this
 * header to drive the dispatcher (spawni_execute) without a gateway.
 */
#ifndef SPAWN_INTERNAL_H
#define SPAWN_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "spawn/spawn.h"
#include "absl_tune.h"
#include "batch.h"
#include "wire.h"

/* Identity sent in the registration (ServiceInfo). */
#define SPAWNI_LIBRARY_NAME   "libspawn"
#define SPAWNI_RUNTIME        "C11"
#define SPAWNI_PROTOCOL_MAJOR 1
#define SPAWNI_PROTOCOL_MINOR 0

#define SPAWNI_METHOD_INVOKE  "/spawn.gateway.v1.ActorGateway/Invoke"
#define SPAWNI_METHOD_SPAWN   "/spawn.gateway.v1.ActorGateway/Spawn"
#define SPAWNI_METHOD_CONNECT "/spawn.gateway.v1.HostGateway/Connect"

/* ---- actor registry (registry.c) ------------------------------------- */

typedef struct spawni_action {
	char *name; /* owned */
	spawn_handler handler;
	void *user; /* the user's; not owned */
	int32_t timer_ms;
} spawni_action;

/* A channel subscription (Metadata.channel_group). */
typedef struct spawni_channel {
	char *topic;  /* owned */
	char *action; /* owned; never NULL: SPAWN_DEFAULT_CHANNEL_ACTION when the
	                 definition named none */
} spawni_channel;

typedef struct spawni_actor {
	char *name;            /* owned */
	spawn_actor_kind kind; /* never 0: normalized to NAMED */
	bool stateful;
	char *state_type; /* owned; NULL = unspecified */
	int64_t snapshot_interval_ms;
	int64_t deactivate_timeout_ms;
	int32_t min_pool_size;
	int32_t max_pool_size;
	spawni_action *actions; /* owned; n_actions, sorted by name */
	size_t n_actions;
	spawni_channel *channels; /* owned; n_channels, in definition order */
	size_t n_channels;
} spawni_actor;

/* The actors of one host, sorted by name so lookups are a binary search.
 * Not synchronized: the host only changes it before it starts running. */
typedef struct spawni_registry {
	spawni_actor *actors; /* owned; n entries */
	size_t n;
	size_t cap;
} spawni_registry;

/* spawni_registry_add validates def and inserts a deep copy.
 * Returns SPAWN_OK, SPAWN_EINVAL, SPAWN_EEXIST or SPAWN_ENOMEM (registry
 * unchanged on error). */
int spawni_registry_add(spawni_registry *r, const spawn_actor_def *def);
/* spawni_registry_fini frees every actor. Accepts a zeroed registry. */
void spawni_registry_fini(spawni_registry *r);
/* spawni_registry_find returns the actor called name, or NULL. */
const spawni_actor *spawni_registry_find(const spawni_registry *r, const char *name);
/* spawni_actor_find_action returns the action called name, or NULL. */
const spawni_action *spawni_actor_find_action(const spawni_actor *a, const char *name);

/* What a host says about itself in its registration. */
typedef struct spawni_service {
	const char *system;
	const char *name;
	const char *version;
} spawni_service;

/* spawni_registration builds the RegistrationRequest for r; all memory
 * (the message and what it points to) lives in arena a or in r.
 * Returns SPAWN_OK and sets *out, or SPAWN_ENOMEM. */
int spawni_registration(const spawni_registry *r, const spawni_service *svc, spawn_arena *a,
                        Spawn__RegistrationRequest **out);

/* ---- dispatch (dispatch.c) ------------------------------------------- */

/* spawni_execute runs one task on the calling thread: finds the actor and
 * action, runs the handler with a spawn_ctx, and fills *res (initialized
 * here) with the response or the error. now_ms is the wall clock in Unix
 * milliseconds, for the deadline check. Everything *res points to lives in
 * arena a or inside task (both retained until *res is packed). Never fails:
 * out-of-memory becomes a RESOURCE_EXHAUSTED HostError. */
void spawni_execute(const spawni_registry *r, const Spawn__Gateway__V1__InvocationTask *task,
                    int64_t now_ms, spawn_arena *a, Spawn__Gateway__V1__InvocationResult *res);

/* ---- requests (client.c) ---------------------------------------------- */

/* spawni_request_msg builds the InvocationRequest of req for system (which
 * replaces req->system) in arena a. With copy, every string and byte is
 * copied into a; without, the message borrows req's memory.
 * Returns SPAWN_OK and sets *out; SPAWN_EINVAL (empty system, actor or
 * action; payload bytes without type URL; metadata without key);
 * SPAWN_ENOMEM. */
int spawni_request_msg(const spawn_request *req, const char *system, bool copy, spawn_arena *a,
                       Spawn__InvocationRequest **out);

/* ---- typed calls (typed.c) --------------------------------------------- */

/* spawni_reply_msg reads the finished call r: on success the reply as a
 * message of type d (default values when it carries none) into *out
 * (caller frees with protobuf_c_message_free_unpacked), unless out is
 * NULL. Returns r->status, or SPAWN_ETYPE, SPAWN_EPROTO or SPAWN_ENOMEM
 * when the reply cannot be read; *out is written only on success. *why
 * becomes NULL on success, else says why (static, or borrowed from r). */
int spawni_reply_msg(const spawn_reply *r, const ProtobufCMessageDescriptor *d,
                     ProtobufCMessage **out, const char **why);

/* ---- TLS and token (security.c) --------------------------------------- */

/* What a host or client uses to reach the gateway: the channel credentials
 * and the bearer token, built once at create from spawn_security_opts and
 * the SPAWN_TLS_* / SPAWN_TOKEN environment. Fixed after init: any thread
 * may read it. */
typedef struct spawni_security {
	grpc_channel_credentials *creds; /* owned; SSL with a CA, else insecure */
	bool tls;                        /* creds are SSL */
	char *server_name;               /* owned; NULL = the target's host */
	char *authorization;             /* owned; "Bearer <token>"; NULL = no token */
	grpc_metadata auth_md;           /* static slices into authorization */
} spawni_security;

/* spawni_security_init fills *s from o (borrowed; NULL = all from the
 * environment). Needs grpc_init() done. Returns SPAWN_OK; SPAWN_ETLS (files
 * unreadable, not PEM, a certificate without key or CA; one line on
 * stderr), SPAWN_EINVAL (token not printable ASCII) or SPAWN_ENOMEM, with
 * *s zeroed. */
int spawni_security_init(spawni_security *s, const spawn_security_opts *o);
/* spawni_security_fini releases s and wipes the token. Accepts a zeroed s. */
void spawni_security_fini(spawni_security *s);
/* spawni_security_args writes the channel args s needs (at most
 * SPAWNI_SECURITY_MAX_ARGS) into args and returns how many; they borrow s. */
#define SPAWNI_SECURITY_MAX_ARGS 1
size_t spawni_security_args(const spawni_security *s, grpc_arg *args);
/* spawni_security_md sets the metadata of a GRPC_OP_SEND_INITIAL_METADATA
 * op to the token, if any (borrowed from s, which outlives the call). */
void spawni_security_md(const spawni_security *s, grpc_op *op);

/* ---- what to dial (target.c) ------------------------------------------ */

/* The gRPC target of a host or client and the channel args it needs: the
 * round_robin policy always, and for a list of addresses the authority
 * (the first entry: the name checked in the members' certificates unless
 * tls_server_name overrides it). Fixed after init. */
typedef struct spawni_target {
	char *uri;       /* owned; what gRPC dials */
	char *authority; /* owned; NULL = gRPC's default (a single address) */
} spawni_target;

/* spawni_target_init reads given (borrowed): any gRPC target
 * ("127.0.0.1:8090", "dns:///gw.example:8090", "unix:/run/spawn.sock"),
 * or a list of numeric addresses "A:P,B:P" (IPv4, or [IPv6] in brackets;
 * one family; also accepted as "ipv4:A:P,B:P" / "ipv6:..."), which
 * becomes gRPC's "ipv4:"/"ipv6:" target. sec (borrowed) tells whether TLS
 * is on and a server name given: TLS over a list whose hosts differ needs
 * one. Returns SPAWN_OK; SPAWN_EINVAL (empty, or a bad list: one line on
 * stderr), SPAWN_ETLS (TLS, hosts differ, no server name; logged) or
 * SPAWN_ENOMEM, with *t zeroed. */
int spawni_target_init(spawni_target *t, const char *given, const spawni_security *sec);
/* spawni_target_fini frees t. Accepts a zeroed t. */
void spawni_target_fini(spawni_target *t);
/* spawni_target_args writes the channel args t needs (at most
 * SPAWNI_TARGET_MAX_ARGS) into args and returns how many; they borrow t. */
#define SPAWNI_TARGET_MAX_ARGS 2
size_t spawni_target_args(const spawni_target *t, grpc_arg *args);

/* ---- helpers (common.c) ---------------------------------------------- */

/* spawni_grpc_code clamps a code to a valid failure code: 1..16 stay,
 * anything else becomes SPAWN_UNKNOWN. */
int spawni_grpc_code(int code);

/* spawni_backoff_ms returns the delay before reconnect attempt number
 * attempt (0-based): min_ms * 2^attempt capped at max_ms, times a random
 * factor in [0.8, 1.2], then clamped to [min_ms, max_ms]. seed is a
 * rand_r state owned by the caller. */
int64_t spawni_backoff_ms(unsigned attempt, int64_t min_ms, int64_t max_ms, unsigned *seed);

/* spawni_type_name returns the part of a type URL after its last '/'. */
const char *spawni_type_name(const char *type_url);

/* spawni_new allocates one message of type d in arena a and initializes
 * it with its defaults; NULL when out of memory. */
void *spawni_new(spawn_arena *a, const ProtobufCMessageDescriptor *d);

/* spawni_strdup is strdup that returns NULL for NULL. */
char *spawni_strdup(const char *s);

/* spawni_payload_dup copies (type_url, data, len) into one heap block and
 * describes it in *out (spawn_payload_fini frees it). A NULL type_url
 * gives a zeroed *out. Returns SPAWN_OK or SPAWN_ENOMEM. */
int spawni_payload_dup(spawn_payload *out, const char *type_url, const void *data, size_t len);

/* spawni_cond_init initializes a condition variable on CLOCK_MONOTONIC. */
void spawni_cond_init(pthread_cond_t *cv);

/* spawni_cond_wait_until waits on cv until signalled or the monotonic time
 * deadline_ns passes (deadline_ns < 0 = no deadline). Returns true on
 * timeout. */
bool spawni_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ns);

/* spawni_deadline_ns converts a relative timeout to a monotonic deadline;
 * timeout_ms < 0 gives -1 (none). */
int64_t spawni_deadline_ns(int64_t timeout_ms);

/* spawni_grpc_deadline converts timeout_ms (<= 0 = none) to a gpr deadline. */
gpr_timespec spawni_grpc_deadline(int64_t timeout_ms);

/* spawni_oom logs a line and aborts: for fixed internal allocations only
 * (STYLE.md 5); peer-sized allocations are checked instead. */
_Noreturn void spawni_oom(const char *where);

/* spawni_fatal logs a line and aborts: for broken internal invariants
 * (gRPC refusing a batch we built correctly), never for peer input. */
_Noreturn void spawni_fatal(const char *what);

#endif
