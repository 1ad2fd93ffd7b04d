/* http_host.h - actor hosts behind Spawn's HTTP/1.1 protocol, as targets.
 *
 * A Spawn SDK host (TypeScript, Python, Java, ...) does not dial the
 * gateway: it listens, and the proxy calls each turn back with
 *   POST {host}/api/v1/actors/actions   (ActorInvocation -> ActorInvocationResponse)
 * (docs/protocol.md, "Spawn's HTTP protocol"). Each such host is a gw_target
 * (runtime.h, STYLE 10) next to the gRPC host link: the runtime sends it
 * turns, cancels them, holds and releases it, and never asks which kind it
 * holds.
 *
 * All calls go through one client (gw_hhosts): one thread driving a libcurl
 * multi handle, whose connection cache keeps connections to every host
 * alive between calls. A task's life:
 *
 *   QUEUED ---- the client thread picks it up --> WRITTEN  [the POST is under way]
 *   QUEUED ---- cancelled (deadline, caller) ---> (gone: never ran)
 *   WRITTEN --- 200 + valid reply --------------> (gone: gw_runtime_result)
 *   WRITTEN --- 400 / other status -------------> (gone: the host's error for this call)
 *   WRITTEN --- connection failed / bad reply --> (gone: gw_runtime_abandon, state unchanged)
 *   WRITTEN --- cancelled ----------------------> HELD  [the actor's turn slot stays taken]
 *   HELD ------ the transfer ends (answer dropped, or its timeout: the deadline plus
 *               the grace) --------------------> (gone: gw_runtime_release)
 *
 * Invariants:
 *   1. at most max_tasks tasks are QUEUED, WRITTEN or HELD in the client;
 *      a send over it is refused (GW_EFULL);
 *   2. every task ends exactly once in gw_runtime_result, _abandon or
 *      _release (or, when cancelled while QUEUED, in none: the runtime
 *      completed it);
 *   3. a reply is at most max_reply_bytes; a longer one fails its turn.
 *
 * Lock order: shard -> client (the runtime calls send and cancel under the
 * actor's shard lock). The client lock is never held while calling the
 * runtime. */
#ifndef GW_HTTP_HOST_H
#define GW_HTTP_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"
#include "runtime.h"
#include "wirecheck.h"

typedef struct gw_hhosts gw_hhosts;

typedef struct gw_hhosts_opts {
	uint32_t max_tasks;         /* tasks in the client at once; 0 = 10000 */
	uint32_t max_host_conns;    /* connections to one host; 0 = 64 */
	size_t max_reply_bytes;     /* bytes of one reply; 0 = 4 MiB */
	int64_t connect_timeout_ms; /* 0 = 5000 */
	int64_t grace_ms;           /* a cancelled, written call may run this long past its
	                               deadline before the transfer is aborted; 0 = 5000 */
	gw_wc_limits limits;        /* string checks on replies; 0 fields = defaults */
} gw_hhosts_opts;

/* gw_hhosts_create starts the client thread. rt is borrowed and must
 * outlive the client's stop. Returns GW_OK and *out (caller frees with
 * gw_hhosts_destroy), GW_ENOMEM or GW_EIO (libcurl could not start). */
gw_err gw_hhosts_create(gw_hhosts **out, const gw_hhosts_opts *o, gw_runtime *rt);

/* gw_hhosts_target returns the target for (system, base_url) with one
 * reference (release with its ops' rele): the same object for the same pair
 * while it lives. base_url is "http://host:port" (copied). Returns GW_OK,
 * GW_EINVAL (not an http:// URL), GW_EUNAVAIL (stopped) or GW_ENOMEM. */
gw_err gw_hhosts_target(gw_hhosts *c, const char *system, const char *base_url, gw_host **out);

/* gw_hhosts_retire marks t (borrowed) gone: it takes no new task (live is
 * false); tasks in flight finish. For a system that registered again from
 * another address. */
void gw_hhosts_retire(gw_host *t);

/* gw_hhosts_url returns t's base URL (borrowed from t). */
const char *gw_hhosts_url(gw_host *t);

/* gw_hhosts_stop refuses new tasks and ends every task in the client:
 * written ones are abandoned (UNAVAILABLE), held ones released. The thread
 * ends. Idempotent. Call before the runtime is destroyed. Blocks: until the
 * thread ends. */
void gw_hhosts_stop(gw_hhosts *c);

/* gw_hhosts_destroy frees the client (stopping it first). Targets still
 * referenced (by the registry) stay allocated until their last rele: call
 * after the registry is destroyed. Accepts NULL. */
void gw_hhosts_destroy(gw_hhosts *c);

typedef struct gw_hhosts_stats {
	uint64_t calls, ok, host_errors, failed, refused_full;
	uint64_t in_client; /* now */
} gw_hhosts_stats;
void gw_hhosts_get_stats(gw_hhosts *c, gw_hhosts_stats *out);

/* gw_hhosts_each calls fn for every host target not retired (a system's
 * current registration) with its system (borrowed for the call), its tasks
 * in flight (QUEUED or WRITTEN: sent, not answered; HELD ones are not
 * tasks any more) and the bytes of their request bodies the client holds
 * (libcurl writes them; how much went out is not known). The same
 * signature as gw_server_hosts_each, so the metrics add both kinds of host
 * up. fn runs under the client's lock: it must not block or call into the
 * client. Scrape time: one pass over the jobs per target. Accepts NULL c.
 * Thread: any. */
void gw_hhosts_each(gw_hhosts *c,
                    void (*fn)(void *user, const char *system, size_t tasks, size_t bytes),
                    void *user);

#endif
