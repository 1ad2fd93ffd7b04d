/* expose.h - what the HTTP listener (--http) serves for operators:
 * GET /metrics (Prometheus text 0.0.4 from gm.h's registry, with the
 * gauges read from the other parts at scrape time), GET /healthz (live)
 * and GET /readyz (ready). docs/operations.md lists the metrics.
 *
 * Readiness: ready when no server condition holds it back (server.h:
 * start-up complete, not draining, a member of the view in cluster mode,
 * the statestore answering). The statestore check is one
 * gw_store_schedule_next_due on the persist thread (behind the queued
 * work), submitted every GW_STORE_CHECK_MS by a checker thread, at most one
 * in flight; an answer counts for GW_STORE_FRESH_MS. The checker sets the
 * server's GW_UNREADY_STORE while the last answer failed or is older than
 * that (the statestore hangs), and clears it once one succeeds: so
 * /readyz, grpc.health.v1 and Spawn's /health/readiness agree, and a probe
 * never waits for the store or costs a query of its own.
 *
 *   check:   NONE --submitted--> PENDING --answered--> OK | FAILED
 *            OK/FAILED --every CHECK_MS (none in flight)--> PENDING
 *   STORE condition: set at create (NONE: not checked yet); on each
 *            answer set (FAILED) or cleared (OK) at once; set by the checker
 *            when the last answer is older than FRESH_MS (a hung store)
 *   /readyz 200 iff: gw_server_unready(srv) == 0
 *
 * Both health routes and /metrics are answered on the listener's thread at
 * once (never parked), also while the listener drains (SIGTERM): /readyz
 * then says 503 "draining", /healthz still 200. */
#ifndef GW_EXPOSE_H
#define GW_EXPOSE_H

#include <stddef.h>
#include <stdint.h>

#include "gm.h"
#include "gw_err.h"
#include "http.h"
#include "http_host.h"
#include "otlp.h"
#include "persist.h"
#include "routing.h"
#include "runtime.h"
#include "server.h"
#include "tls.h"

#define GW_STORE_CHECK_MS 1000
#define GW_STORE_FRESH_MS 10000

typedef struct gw_expose gw_expose;

typedef struct gw_expose_opts {
	gw_gm *gm;           /* borrowed; NULL = --metrics off: /metrics answers 404 */
	gw_server *srv;      /* borrowed: readiness, hosts, refusals */
	gw_runtime *rt;      /* borrowed: mailboxes, effects, schedules */
	gw_persist *persist; /* borrowed: queue depth, the store check */
	gw_router *router;   /* borrowed; NULL outside cluster mode */
	gw_tls *tls;         /* borrowed; NULL without TLS */
	gw_hhosts *hhosts;   /* borrowed: hosts of Spawn's HTTP protocol; NULL = none */
	gw_otlp *otlp;       /* borrowed: the span exporter; NULL = --otlp-endpoint off */
} gw_expose_opts;

/* gw_expose_create registers the scrape-time gauges in gm's registry,
 * routes /metrics, /healthz and /readyz on http (before gw_http_start;
 * http NULL = no --http: only the store check, which readiness and the
 * gRPC health service follow all the same), and submits the first store
 * check. Everything borrowed must outlive the
 * HTTP listener's last request (gw_http_destroy). Returns GW_OK and *out
 * (free with gw_expose_destroy after gw_http_destroy), GW_ENOMEM or
 * GW_EINVAL. Thread: main, at start-up. */
gw_err gw_expose_create(gw_expose **out, const gw_expose_opts *o, gw_http *http);

/* gw_expose_view records the cluster view's members by status (index:
 * gw_member status 1..4: joining, active, leaving, dead) for the
 * spawn_cluster_members gauge. Thread: any. */
void gw_expose_view(gw_expose *e, const size_t by_status[5]);

/* gw_expose_fenced counts one self-fencing of this member (membership's
 * on_fenced) for spawn_cluster_fenced_total. Accepts NULL. Thread: any. */
void gw_expose_fenced(gw_expose *e);

/* gw_expose_stop ends the checker thread: no store check is submitted any
 * more, and one already queued (it runs before gw_persist_stop returns)
 * no longer touches the server. Call before gw_server_destroy. Accepts
 * NULL; idempotent. */
void gw_expose_stop(gw_expose *e);

void gw_expose_destroy(gw_expose *e);

#endif
