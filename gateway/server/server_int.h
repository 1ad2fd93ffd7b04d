/* server_int.h - what server.c and host.c share. Not a public interface. */
#ifndef GW_SERVER_INT_H
#define GW_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <grpc/grpc.h>

#include "batch.h"
#include "peer.h"
#include "server.h"
#include "spawn/gateway/v1/gateway.pb-c.h"
#include "wire.h"
#include "wirecheck.h"

/* Every completion-queue tag is a gwi_tag: the CQ thread calls fn. */
typedef struct gwi_tag {
	void (*fn)(struct gwi_tag *t, bool ok);
} gwi_tag;

typedef struct gwi_cq {
	grpc_completion_queue *cq;
	pthread_t thread;
	struct gw_server *srv;
	int idx;
} gwi_cq;

/* What a listener serves (docs/security.md, "Listeners and safe defaults"). */
enum { GWI_ROLE_CLIENT = 1, GWI_ROLE_HOST = 2, GWI_ROLE_ADMIN = 4, GWI_ROLE_PEER = 8 };

/* One grpc_server per group of listeners with the same roles: --listen
 * (clients, plus hosts, Admin and peers when they have no listeners of
 * their own), --host-listen, --admin-listen, --peer-listen, --health-listen
 * (grpc.health.v1 only, always plaintext). Every group shares the CQ
 * threads (each CQ is registered with every group's server). A method is
 * registered on exactly one group's server, except
 * grpc.health.v1.Health/Check, which every group registers; a call to a
 * method on a group that does not register it arrives as an unregistered
 * call: UNIMPLEMENTED. */
typedef struct gwi_group {
	grpc_server *server;  /* owned */
	unsigned roles;       /* GWI_ROLE_*: the methods registered on it */
	unsigned reports;     /* GWI_ROLE_*: the services its Health answers for
	                         (health.c): roles, or all of them on --health-listen */
	void *m_health;       /* registered grpc.health.v1.Health/Check on server */
	gwi_tag shutdown_tag; /* its shutdown notification */
	struct gw_server *srv;
} gwi_group;

#define GWI_GROUPS 5

struct gw_server {
	gw_server_opts o;
	gwi_group groups[GWI_GROUPS];
	int ngroups;
	gwi_cq *cqs;
	int ncq;
	void *methods[15];     /* registered unary methods (GWI_M_*) */
	grpc_server *msrv[15]; /* borrowed from groups: the server each is registered on */
	void *m_connect;       /* registered HostGateway.Connect */
	grpc_server *hsrv;     /* borrowed from groups: the server Connect is registered on */
	size_t nlisten;        /* listen + host_listen + admin_listen + peer_listen */
	gw_runtime *rt;        /* borrowed */
	gw_registry *reg;      /* borrowed */
	int *ports;
	atomic_bool shutting_down; /* the groups are shut down: no slot is posted again */
	/* Call slots posted (ucall_post) whose completion a CQ thread has not
	 * handled yet: a call gRPC matched with one just before the shutdown
	 * is refused not-dispatched, never cancelled (gw_server_shutdown). */
	atomic_long slots;
	atomic_uint unready; /* GW_UNREADY_* conditions holding readiness back */
	atomic_int listings; /* Admin.List walks running on their threads (admin_list.c) */
	/* live call accounting, for shutdown */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool draining; /* gw_server_shutdown began: new work calls are refused */
	/* The drain's last phase (gw_server_shutdown, docs/design/cluster.md
	 * "The drain"): a work call refused from now on is parked here and
	 * answered only after gRPC's shutdown sent its GOAWAY, so its client
	 * reads the GOAWAY before the refusal and sends its next call
	 * elsewhere, never on a stream gRPC would cancel. Guarded by mu;
	 * at most GWI_PARK_MAX calls (more are refused at once). */
	bool parking;
	struct gwi_ucall *parked; /* borrowed: a list through park_next */
	int nparked;
	long client_calls, host_calls;
	long light_calls; /* answered on the spot (Health, refusals): never drained */
	bool started;
	int shutdowns_pending; /* groups whose shutdown was not notified yet; guarded by mu */
	/* open host connections (host.c), for the watchdog */
	pthread_mutex_t hmu;
	struct gw_host *hosts; /* borrowed: each unlists itself in host_close */
	/* the watchdog thread: gwi_host_watch every GWI_WATCH_MS */
	pthread_t watchdog;
	pthread_cond_t wcv;                   /* the watchdog's own: only its stop signals it */
	bool watchdog_started, watchdog_stop; /* watchdog_stop guarded by mu */
	/* authorization refusals (authz.c): [GW_REFUSAL_*][unauthenticated] */
	atomic_uint_fast64_t refusals[GW_REFUSAL_KINDS][2];
	/* plain.c: the local actor type -> system index of plain calls */
	struct gwi_sysix *sysix; /* owned (gwi_sysix_create / gwi_sysix_destroy) */
};

/* gwi_refusal_count counts a refusal of kind (GW_REFUSAL_*) answered code
 * (UNAUTHENTICATED or PERMISSION_DENIED; other codes are not counted). */
void gwi_refusal_count(struct gw_server *s, int kind, grpc_status_code code);

#define GWI_WATCH_MS 50

/* gwi_host_watch closes the host connections that stalled (over their
 * queue bound for host_stall_ms) or hold a timed-out task past its grace.
 * Watchdog thread; takes hmu, then each host's lock. */
void gwi_host_watch(struct gw_server *s, int64_t now_ms);
int64_t gwi_host_now_ms(void);

/* The kinds of calls counted for the shutdown: client work calls (what
 * the drain waits for), host streams, and light calls answered on the
 * spot without work (Health, unknown methods, calls refused while
 * draining), which only the final wait counts. */
enum { GWI_CALL_CLIENT, GWI_CALL_HOST, GWI_CALL_LIGHT };

void gwi_calls_add(struct gw_server *s, int kind, long delta);

/* gwi_call_admit counts a call that just arrived, atomically with the
 * drain's start: while the server drains, a work call is refused and
 * counted as light. Returns the kind it was counted as (GWI_CALL_*);
 * GWI_CALL_LIGHT for a work call means: refuse it (UNAVAILABLE, not
 * dispatched, or a host stream closed UNAVAILABLE). Any thread. */
int gwi_call_admit(struct gw_server *s, int kind);

/* Unary methods served by gwi_ucall. */
enum {
	GWI_M_INVOKE,
	GWI_M_SPAWN,
	GWI_M_GET_STATE,
	GWI_M_LIST_REVISIONS,
	GWI_M_RESTORE,
	GWI_M_KEY_ROTATION,
	GWI_M_FORGET,
	GWI_M_FORWARD, /* spawn.gateway.v1.Peer, in cluster mode only */
	GWI_M_PING,
	GWI_M_PEER_ADMIN,      /* spawn.gateway.v1.Peer/Admin, in cluster mode only */
	GWI_M_LIST,            /* Admin.List (admin_list.c) */
	GWI_M_MEMBERS,         /* Admin.Members (admin_list.c) */
	GWI_M_LIST_SCHEDULES,  /* Admin.ListSchedules (admin_sched.c) */
	GWI_M_CANCEL_SCHEDULE, /* Admin.CancelSchedule (admin_sched.c) */
	GWI_M_PEER_CONTRACTS,  /* spawn.gateway.v1.Peer/Contracts (plain.c), cluster mode */
	GWI_M_COUNT,
	/* grpc.health.v1.Health/Check: registered on every group (gwi_group
	 * .m_health), so outside the per-method tables above */
	GWI_M_HEALTH = GWI_M_COUNT,
	/* An rpc of an actor's contract served as a plain gRPC method
	 * (plain.c): an unregistered call adopted by gwi_ucall_adopt. */
	GWI_M_PLAIN
};
/* GWI_C_RECEIVING: an adopted call waiting for its request message. */
enum { GWI_C_REQUESTED, GWI_C_REPLYING, GWI_C_RECEIVING };

/* One unary call (server.c): the struct is the completion-queue tag.
 *   REQUESTED -- call + payload arrive --> handled (parsed, work started;
 *                                          RECV_CLOSE_ON_SERVER posted on close_tag)
 *   handled ----- client cancelled -------> handled  [a synchronous Invoke still in the
 *                                                     runtime: gw_runtime_cancel]
 *   handled ----- gwi_ucall_reply --------> REPLYING -- batch done and closed --> freed
 * Two references while handled: the reply batch's and the close op's. */
typedef struct gwi_ucall {
	gwi_tag tag;
	gwi_tag close_tag; /* RECV_CLOSE_ON_SERVER: the client cancelled, or the call ended */
	atomic_int refs;
	_Atomic(gw_inv *) inv; /* owned: a synchronous Invoke's invocation once submitted
	                          (the runtime's until its done; freed with the call) */
	atomic_bool answered;  /* inv's done ran: nothing to cancel */
	atomic_bool gone;      /* the client cancelled before the answer */
	struct gw_server *srv;
	gwi_cq *q;
	gwi_group *grp; /* borrowed: the group a Health call came on; NULL for the others */
	int method, phase;
	int kind; /* GWI_CALL_*: how it is counted (gwi_call_admit) */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload; /* owned: the request message */
	grpc_byte_buffer *resp;    /* owned: the reply being sent */
	grpc_slice details;
	int cancelled;
	bool not_dispatched; /* set before gwi_ucall_reply: an UNAVAILABLE answer carries
	                        the trailer GWI_RETRY_KEY: GWI_RETRY_NOT_DISPATCHED */
	void *ext;           /* owned (malloc): what an adopted call's handler keeps
	                        (plain.c: the contract method); freed with the call */
	char *owner;         /* owned (malloc): set before gwi_ucall_reply: a
	                        FAILED_PRECONDITION answer of Peer.Forward carries the
	                        trailer GW_OWNER_KEY: owner (routing.h) */
	bool peer_refused;   /* set before gwi_ucall_reply: an UNAUTHENTICATED or
	                        PERMISSION_DENIED answer of a Peer method refuses the
	                        caller as a peer: trailer GW_PEER_REFUSED_KEY (peer.h) */
	grpc_metadata trailer;
	grpc_op ops[4];
	grpc_op close_op;
	struct gwi_ucall *park_next; /* gw_server.parked; under its mu */
} gwi_ucall;

/* The drain's last phase: how long new work calls are parked before gRPC's
 * shutdown (a client pausing after a refusal sends its next call within
 * it), and how many at most. */
#define GWI_PARK_MS  200
#define GWI_PARK_MAX 4096

/* gwi_ucall_refuse_draining answers c (counted light: arrived while the
 * gateway drains) UNAVAILABLE, not dispatched, now, or parks it for the
 * drain's last phase (GWI_PARK_MS). Thread: any. */
void gwi_ucall_refuse_draining(gwi_ucall *c);

/* The trailing metadata of an answer the gateway guarantees it never
 * dispatched to a host, so that a client may retry the call safely
 * (docs/protocol.md, "Retryable answers"). Only the gateway sends keys of
 * the spawn- namespace (wirecheck.h). */
#define GWI_RETRY_KEY            "spawn-retry"
#define GWI_RETRY_NOT_DISPATCHED "not-dispatched"

/* gwi_ucall_request posts one slot for a call of method on q. */
void gwi_ucall_request(struct gw_server *s, gwi_cq *q, int method);

/* gwi_health_request posts one slot for a grpc.health.v1.Health/Check
 * call on group g's listeners (health.c). */
void gwi_health_request(struct gw_server *s, gwi_cq *q, gwi_group *g);

/* gwi_health_handle answers a Check call (health.c). CQ thread. */
void gwi_health_handle(gwi_ucall *c);

/* gwi_ucall_reply sends the one response batch: status code with detail,
 * and msg (borrowed; packed here) when code is OK; with code UNAVAILABLE
 * and c->not_dispatched, the retry trailer (GWI_RETRY_KEY). Any thread.
 * After it the call belongs to its completion. */
void gwi_ucall_reply(gwi_ucall *c, grpc_status_code code, const char *detail,
                     const ProtobufCMessage *msg);

/* gwi_ucall_reply_raw is gwi_ucall_reply with the message already
 * serialized: data[0..len) (borrowed; copied) is sent when code is OK. */
void gwi_ucall_reply_raw(gwi_ucall *c, grpc_status_code code, const char *detail,
                         const uint8_t *data, size_t len);

/* gwi_ucall_adopt turns an unregistered call (call, deadline and md: taken
 * over; *md is left initialised and empty) into a unary call of method
 * (GWI_M_PLAIN) on q: it is admitted as client work (refused UNAVAILABLE,
 * not dispatched, while the server drains), its request message is
 * received, then gwi_plain_handle runs. ext (owned, malloc) goes to c->ext.
 * CQ thread. */
void gwi_ucall_adopt(struct gw_server *s, gwi_cq *q, grpc_call *call, gpr_timespec deadline,
                     grpc_metadata_array *md, int method, void *ext);

/* generic.c: gwi_gcall_request posts one slot for a call to a method no
 * registered handler serves, on group g's server. */
void gwi_gcall_request(struct gw_server *s, gwi_group *g, gwi_cq *q);

/* plain.c: actors as plain gRPC services.
 * gwi_generic_take is offered every call to a method no registered handler
 * serves, on group g: an rpc of an actor's contract (on a group serving
 * clients) or grpc.reflection (v1, v1alpha) is taken (the call, details
 * and md are the taker's: returns true); anything else is left to the
 * caller (UNIMPLEMENTED). CQ thread. */
bool gwi_generic_take(struct gw_server *s, gwi_cq *q, gwi_group *g, grpc_call *call,
                      const grpc_call_details *d, grpc_metadata_array *md);
/* gwi_plain_handle runs an adopted plain call whose message arrived. */
void gwi_plain_handle(gwi_ucall *c);
/* The actor type -> system index of the hosts connected here (plain.c):
 * rebuilt from gw_registry_served when gw_registry_served_gen changed, so
 * a plain call costs a binary search, not a scan of the served list.
 * gwi_sysix_create returns NULL when out of memory. */
struct gwi_sysix *gwi_sysix_create(void);
void gwi_sysix_destroy(struct gwi_sysix *x); /* accepts NULL */
/* gwi_peer_contracts_handle answers Peer.Contracts (plain.c): the
 * contracts this member's hosts hold (cluster/cshare.h), to a peer. */
void gwi_peer_contracts_handle(gwi_ucall *c);

/* reflection.c: one grpc.reflection ServerReflectionInfo stream (call and
 * md taken over), on group g. alpha: v1alpha (same wire format). */
void gwi_reflection_start(struct gw_server *s, gwi_group *g, grpc_call *call,
                          grpc_metadata_array *md, bool alpha);

/* admin.c: the spawn.gateway.v1.Admin methods. */
/* admin.c: the spawn.gateway.v1.Admin methods. gwi_admin_handle parses
 * and checks the request; in cluster mode a call that names an actor goes
 * to gwi_cadmin_take (admin_cluster.c), else gwi_admin_run runs it here
 * with m (the parsed request of method GWI_M_*, borrowed). */
void gwi_admin_handle(gwi_ucall *c);
void gwi_admin_run(gwi_ucall *c, int method, ProtobufCMessage *m);
/* gwi_admin_key_rotation_local fills ks (caller's) with this gateway's own
 * key-rotation progress. */
struct Spawn__Gateway__V1__KeyRotationStatus;
void gwi_admin_key_rotation_local(gwi_ucall *c, struct Spawn__Gateway__V1__KeyRotationStatus *ks);

/* admin_cluster.c (docs/design/cluster.md, "Admin calls across the
 * cluster"): in cluster mode (srv->o.router), gwi_cadmin_take takes an
 * Admin call of method with its parsed request m (ownership of m, a heap
 * message, passes on true): a call naming an actor runs on its owner
 * (here, or forwarded with Peer.Admin, waiting for a newer view on a
 * refusal); KeyRotation asks every member and aggregates. false: run it
 * here as on a single gateway (m stays the caller's). */
bool gwi_cadmin_take(gwi_ucall *c, int method, ProtobufCMessage *m);
/* gwi_peer_admin_handle serves Peer.Admin: runs the call here as the
 * actor's owner, or refuses it (FAILED_PRECONDITION + spawn-owner). */
void gwi_peer_admin_handle(gwi_ucall *c);
/* gwi_peer_admin_wrap: the reply of a Peer.Admin call is the Admin
 * method's reply msg (borrowed) inside a PeerAdminReply (out, caller's). */
struct Spawn__Gateway__V1__PeerAdminReply;
void gwi_peer_admin_wrap(struct Spawn__Gateway__V1__PeerAdminReply *out,
                         const ProtobufCMessage *msg);
/* gwi_deadline_ms: a call's deadline as monotonic ms (0 = none). */
int64_t gwi_deadline_ms(gpr_timespec d);

/* A fan-out of one Admin call to every member of the view over Peer.Admin
 * (admin_cluster.c; KeyRotation there, List in admin_list.c). pr is the
 * request, its header filled by gwi_fanout_init (sender_id points into
 * self: f must stay where it is); the caller sets its call_case and its
 * message. until (monotonic ms) is when the answers stop being awaited. */
typedef struct gwi_fanout {
	Spawn__Gateway__V1__PeerAdminRequest pr;
	char self[512];
	int64_t until;
} gwi_fanout;
/* gwi_fanout_init: wait_ms from now, or 100 ms before c's deadline when that
 * comes first (the answer names who was late before the caller gives up). */
void gwi_fanout_init(gwi_fanout *f, gwi_ucall *c, int64_t wait_ms);
/* gwi_fanout_send sends f->pr to the member at address (borrowed): done(user,
 * ...) answers on a peer thread, and *pending (under mu) counts the call
 * until then. On false (not sent: done is never called) the member's code
 * and msg (n bytes) say why. */
bool gwi_fanout_send(gwi_fanout *f, gw_server *s, const char *address, pthread_mutex_t *mu,
                     size_t *pending, gw_peer_done_fn done, void *user, int *code, char *msg,
                     size_t n);

/* gwi_trace_from_md (tracectx.c) puts the W3C traceparent and tracestate
 * of a call's request metadata md (borrowed) into rq's metadata (strings
 * copied into a), unless rq carries a valid traceparent of its own; an
 * invalid one is ignored (the runtime replaces it). max_entries bounds
 * rq's metadata map. Returns false only when out of memory or the map is
 * full (rq unchanged: the runtime starts a trace). */
bool gwi_trace_from_md(const grpc_metadata_array *md, Spawn__InvocationRequest *rq, spawn_arena *a,
                       size_t max_entries);

/* ingress.c: the one place peer messages are parsed and checked.
 *
 * gwi_unpack_checked parses bb (borrowed) as d into arena (NULL: the heap;
 * the caller frees with protobuf_c_message_free_unpacked) and checks every
 * string field against the server's limits (wirecheck.h). Returns GW_OK
 * with *out set; GW_EINVAL with *out NULL when bb is not a valid d; GW_EINVAL
 * with *out set (the caller still owns it) when a string field is invalid.
 * why gets "request is not a valid X" or "field.path: reason". */
gw_err gwi_unpack_checked(const struct gw_server *s, const ProtobufCMessageDescriptor *d,
                          grpc_byte_buffer *bb, spawn_arena *arena, ProtobufCMessage **out,
                          char *why, size_t whylen);
/* gwi_unpack_checked_bytes is gwi_unpack_checked over data[0..len)
 * (borrowed; the message's bytes fields may point into arena copies only). */
gw_err gwi_unpack_checked_bytes(const struct gw_server *s, const ProtobufCMessageDescriptor *d,
                                const uint8_t *data, size_t len, spawn_arena *arena,
                                ProtobufCMessage **out, char *why, size_t whylen);

/* The reserved "spawn-" namespace: gw_wc_check_client_metadata and
 * gw_wc_strip_reserved (wirecheck.h). */

/* gwi_may_invoke: whether principal pr (under the policy's read lock) may
 * invoke action (NULL: Spawn, no action) of actor in system; ref is the
 * template a new instance would get (register_ref; may be NULL). When a
 * grant names actors, an instance matches its template's name too (looked
 * up in the registry). */
bool gwi_may_invoke(struct gw_server *s, const gw_principal *pr, const char *system,
                    const char *actor, const char *ref, const char *action);

/* authz.c: the checks of the access policy (no-ops without --access),
 * each under the policy's read lock, on the call's CQ thread.
 *
 * gwi_authorize_invoke: may the caller of c invoke action (NULL: Spawn) of
 * system/actor (ref: the template a new instance would get)? Returns
 * GRPC_STATUS_OK, or UNAUTHENTICATED / PERMISSION_DENIED (RESOURCE_EXHAUSTED
 * out of memory) with why naming what was refused. With arena, *principal
 * gets the caller's principal name, allocated in arena (for
 * ForwardRequest.principal: gw_inv.principal). */
grpc_status_code gwi_authorize_invoke(gwi_ucall *c, const char *system, const char *actor,
                                      const char *ref, const char *action, char *why, size_t n,
                                      spawn_arena *arena, char **principal);

/* gwi_authorize_admin: Admin methods need admin: true; every call is
 * logged with its method and principal, allowed or refused. */
grpc_status_code gwi_authorize_admin(gwi_ucall *c, char *why, size_t n);

/* gwi_authorize_peer: Peer methods need peer: true (docs/security.md,
 * "Peers"); a refusal sets c->peer_refused (the trailer GW_PEER_REFUSED_KEY)
 * and is logged (rate-limited). name (namelen bytes) gets the peer's
 * principal name, "" without a policy. */
grpc_status_code gwi_authorize_peer(gwi_ucall *c, char *name, size_t namelen, char *why, size_t n);

/* host.c: one accept slot per call of gwi_host_request. */
void gwi_host_request(struct gw_server *s, gwi_cq *q);

/* host.c: one connected gRPC host, as gwi_host_foreach shows it (every
 * pointer borrowed for the callback only). */
typedef struct gwi_host_info {
	const char *system;    /* "" before its registration */
	const char *peer;      /* gRPC's peer address */
	const char *principal; /* "" without --access */
	size_t in_flight;      /* tasks registered and not answered */
	bool batch;
} gwi_host_info;
typedef void (*gwi_host_info_fn)(void *user, const gwi_host_info *h);
/* gwi_host_foreach calls fn once per open host connection under hmu and
 * the host's lock: fn copies what it keeps and calls nothing. */
void gwi_host_foreach(struct gw_server *s, gwi_host_info_fn fn, void *user);

/* admin_list.c (part spawnctl): Admin.List and Admin.Members.
 * gwi_admin_list_local answers a List with this gateway's own items
 * (rq borrowed, already checked by gwi_admin_list_check); member names
 * each item ("" outside cluster mode). gwi_admin_list_check answers
 * INVALID_ARGUMENT and returns false for a request out of bounds. */
struct Spawn__Gateway__V1__ListRequest;
bool gwi_admin_list_check(gwi_ucall *c, const struct Spawn__Gateway__V1__ListRequest *rq);
void gwi_admin_list_local(gwi_ucall *c, const struct Spawn__Gateway__V1__ListRequest *rq,
                          const char *member);
/* gwi_admin_list_cluster asks every member of the view with Peer.Admin
 * and answers the merged page (rq borrowed: copied). */
void gwi_admin_list_cluster(gwi_ucall *c, const struct Spawn__Gateway__V1__ListRequest *rq);
void gwi_admin_members(gwi_ucall *c);
/* admin_sched.c: Admin.ListSchedules and Admin.CancelSchedule, run on the
 * persist thread (rq borrowed: copied). */
struct Spawn__Gateway__V1__ListSchedulesRequest;
struct Spawn__Gateway__V1__ScheduleRef;
void gwi_admin_list_schedules(gwi_ucall *c,
                              const struct Spawn__Gateway__V1__ListSchedulesRequest *rq);
void gwi_admin_cancel_schedule(gwi_ucall *c, const struct Spawn__Gateway__V1__ScheduleRef *rq);

#endif
