/* gm.c - the gateway's own metric families (gm.h). */
#include "gm.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NONE "_none"

/* Bounds of the label sets (metrics.h: past them, "_other"). */
#define MAX_INV_SERIES  4096 /* system x actor type x action x status */
#define MAX_TYPE_SERIES 1024 /* system x actor type */

struct gw_gm {
	gw_metrics *m; /* owned */
	gw_family *inv, *queue, *host, *total;
	gw_family *depth;
	gw_family *act, *deact, *act_lat;
	gw_family *store_lat, *store_rows, *store_err;
	gw_family *late;
	gw_series op_lat[GW_GM_OP_COUNT], op_rows[GW_GM_OP_COUNT], op_err[GW_GM_OP_COUNT];
	gw_series depth_s, act_lat_s, late_s;
	uint64_t gen; /* tells this gw_gm from an earlier one at the same address */
};

static atomic_uint_fast64_t gm_generations;

/* The per-thread cache of an invocation's series: one lookup (one hash of
 * system, actor, action and status) finds the counter's and the three
 * histograms' series together. Direct-mapped; static TLS (9 KiB a thread). */
#define INV_SLOTS 64
typedef struct inv_ent {
	uint64_t gen;
	gw_series inv, total, queue, host;
	uint16_t klen;
	char key[GW_METRICS_CACHE_KEY];
} inv_ent;
static _Thread_local inv_ent inv_tc[INV_SLOTS];

static const char *const op_names[GW_GM_OP_COUNT] = {
    [GW_GM_OP_ACTIVATE] = "activate", [GW_GM_OP_READ] = "read",
    [GW_GM_OP_SAVE] = "save",         [GW_GM_OP_LIST] = "list",
    [GW_GM_OP_INSTANCE] = "instance", [GW_GM_OP_SCHEDULE] = "schedule",
    [GW_GM_OP_OTHER] = "other",
};

/* gRPC status names, as grpc/status.h numbers them. */
static const char *const status_names[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

/* Latency buckets in microseconds: 50 us to 60 s. */
static const uint64_t lat_us[] = {50,      100,     250,      500,      1000,    2500,   5000,
                                  10000,   25000,   50000,    100000,   250000,  500000, 1000000,
                                  2500000, 5000000, 10000000, 30000000, 60000000};
/* Mailbox depth right after a push. */
static const uint64_t depth_b[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000};
/* Rows of one store batch. */
static const uint64_t rows_b[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
/* Lateness of scheduled invocations in milliseconds: 10 ms to 1 h. */
static const uint64_t late_ms[] = {10,   50,    100,   250,   500,    1000,   2500,
                                   5000, 10000, 30000, 60000, 300000, 900000, 3600000};

#define N(a) (sizeof a / sizeof a[0])

/* actors_active: spawn_actors_active = activations - deactivations per
 * type, read at scrape time. */
typedef struct active_ctx {
	gw_gm *g;
	gw_gauge_out *out;
} active_ctx;

static void active_one(void *user, const char *const *values, uint64_t activated)
{
	active_ctx *c = user;
	gw_series d = gw_family_series(c->g->deact, values);
	uint64_t gone = gw_metric_value(c->g->m, c->g->deact, d);
	gw_gauge_emit(c->out, values, activated > gone ? (double)(activated - gone) : 0);
}

static void g_active(void *user, gw_gauge_out *out)
{
	active_ctx c = {.g = user, .out = out};
	gw_family_each(c.g->act, active_one, &c);
}

gw_gm *gw_gm_create(void)
{
	gw_gm *g = calloc(1, sizeof *g);
	if (!g || !(g->m = gw_metrics_create()) || gw_metrics_process(g->m) != GW_OK)
		goto fail;
	g->gen = atomic_fetch_add(&gm_generations, 1) + 1;
	static const char *const inv_l[] = {"system", "actor", "action", "status"};
	static const char *const type_l[] = {"system", "actor"};
	static const char *const op_l[] = {"op"};
	g->inv = gw_metrics_counter(g->m, "spawn_invocations_total",
	                            "Invocations finished, by system, actor type, action and "
	                            "gRPC status.",
	                            inv_l, 4, MAX_INV_SERIES);
	g->queue = gw_metrics_histogram(
	    g->m, "spawn_invocation_queue_seconds",
	    "Time an invocation waited in its actor's mailbox (and activation) before its turn "
	    "was sent to a host.",
	    type_l, 2, MAX_TYPE_SERIES, lat_us, N(lat_us), 1e-6);
	g->host = gw_metrics_histogram(
	    g->m, "spawn_invocation_host_seconds",
	    "Time from an invocation's turn sent to a host to its outcome (host time).", type_l, 2,
	    MAX_TYPE_SERIES, lat_us, N(lat_us), 1e-6);
	g->total =
	    gw_metrics_histogram(g->m, "spawn_invocation_duration_seconds",
	                         "Time from an invocation's arrival at the runtime to its outcome.",
	                         type_l, 2, MAX_TYPE_SERIES, lat_us, N(lat_us), 1e-6);
	g->depth = gw_metrics_histogram(g->m, "spawn_mailbox_depth",
	                                "Invocations in an actor's mailbox right after one was "
	                                "queued.",
	                                NULL, 0, 1, depth_b, N(depth_b), 1);
	g->act = gw_metrics_counter(g->m, "spawn_activations_total",
	                            "Actors activated, by system and actor type.", type_l, 2,
	                            MAX_TYPE_SERIES);
	g->deact = gw_metrics_counter(g->m, "spawn_deactivations_total",
	                              "Actors deactivated (freed from memory), by system and "
	                              "actor type.",
	                              type_l, 2, MAX_TYPE_SERIES);
	g->act_lat = gw_metrics_histogram(
	    g->m, "spawn_activation_seconds",
	    "Time from an activation's submission to the statestore's answer (epoch and state).",
	    NULL, 0, 1, lat_us, N(lat_us), 1e-6);
	g->store_lat = gw_metrics_histogram(g->m, "spawn_store_operation_seconds",
	                                    "Duration of statestore operations, by operation.",
	                                    op_l, 1, GW_GM_OP_COUNT, lat_us, N(lat_us), 1e-6);
	g->store_rows = gw_metrics_histogram(
	    g->m, "spawn_store_batch_rows",
	    "Rows carried by one statestore batch (save and activation batches, schedules).", op_l,
	    1, GW_GM_OP_COUNT, rows_b, N(rows_b), 1);
	g->store_err = gw_metrics_counter(g->m, "spawn_store_errors_total",
	                                  "Statestore operations that failed, by operation.", op_l,
	                                  1, GW_GM_OP_COUNT);
	g->late = gw_metrics_histogram(
	    g->m, "spawn_schedule_lateness_seconds",
	    "How late scheduled invocations were handed to the runtime after their due time.", NULL,
	    0, 1, late_ms, N(late_ms), 1e-3);
	if (!g->act || gw_metrics_gauge(g->m, "spawn_actors_active",
	                                "Actors active (in memory) now, by system and actor type.",
	                                "gauge", type_l, 2, g_active, g) != GW_OK)
		goto fail;
	if (!g->inv || !g->queue || !g->host || !g->total || !g->depth || !g->act || !g->deact ||
	    !g->act_lat || !g->store_lat || !g->store_rows || !g->store_err || !g->late)
		goto fail;
	for (int i = 0; i < GW_GM_OP_COUNT; i++) {
		const char *v[] = {op_names[i]};
		g->op_lat[i] = gw_family_series(g->store_lat, v);
		g->op_rows[i] = gw_family_series(g->store_rows, v);
		g->op_err[i] = gw_family_series(g->store_err, v);
	}
	g->depth_s = gw_family_series(g->depth, NULL);
	g->act_lat_s = gw_family_series(g->act_lat, NULL);
	g->late_s = gw_family_series(g->late, NULL);
	return g;
fail:
	gw_gm_destroy(g);
	return NULL;
}

void gw_gm_destroy(gw_gm *g)
{
	if (!g)
		return;
	gw_metrics_destroy(g->m);
	free(g);
}

gw_metrics *gw_gm_registry(gw_gm *g)
{
	return g ? g->m : NULL;
}

int64_t gw_gm_now_ns(const gw_gm *g)
{
	if (!g)
		return 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t us_of(int64_t ns)
{
	return ns > 0 ? (uint64_t)(ns / 1000) : 0;
}

void gw_gm_invocation(gw_gm *g, const char *system, const char *actor, const char *action,
                      gw_err err, int64_t t_enq, int64_t t_disp, int64_t t_end)
{
	if (!g)
		return;
	unsigned code = (unsigned)gw_err_status(err);
	const char *v[4] = {system ? system : NONE, actor ? actor : NONE,
	                    action && action[0] ? action : NONE,
	                    code < N(status_names) ? status_names[code] : "UNKNOWN"};
	/* The key: the four values joined (the status as its name). */
	char key[GW_METRICS_CACHE_KEY];
	size_t k = 0;
	bool fits = true;
	for (int i = 0; i < 4 && fits; i++) {
		size_t l = strlen(v[i]);
		if ((fits = k + l + 1 <= sizeof key)) {
			memcpy(key + k, v[i], l);
			k += l;
			key[k++] = '\x1f';
		}
	}
	inv_ent one, *e = &one;
	if (fits) {
		uint64_t h = 1469598103934665603ULL;
		for (size_t i = 0; i < k; i++)
			h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
		e = &inv_tc[(h ^ (h >> 32)) & (INV_SLOTS - 1)];
	}
	if (!fits || e->gen != g->gen || e->klen != k || memcmp(e->key, key, k)) {
		/* A miss: the families' own lookups (each takes its lock once). */
		e->inv = gw_family_series(g->inv, v);
		e->total = gw_family_series(g->total, v);
		e->queue = gw_family_series(g->queue, v);
		e->host = gw_family_series(g->host, v);
		if (fits && e->inv && e->total && e->queue && e->host) {
			e->gen = g->gen;
			e->klen = (uint16_t)k;
			memcpy(e->key, key, k);
		} else {
			e->gen = 0;
		}
	}
	gw_metric_add(g->m, e->inv, 1);
	if (!t_enq)
		return;
	gw_metric_observe(g->m, g->total, e->total, us_of(t_end - t_enq));
	if (!t_disp)
		return;
	gw_metric_observe(g->m, g->queue, e->queue, us_of(t_disp - t_enq));
	gw_metric_observe(g->m, g->host, e->host, us_of(t_end - t_disp));
}

void gw_gm_mailbox_depth(gw_gm *g, uint32_t depth)
{
	if (g)
		gw_metric_observe(g->m, g->depth, g->depth_s, depth);
}

void gw_gm_activation(gw_gm *g, const char *system, const char *actor, bool activated)
{
	if (!g)
		return;
	const char *v[2] = {system ? system : NONE, actor ? actor : NONE};
	gw_family *f = activated ? g->act : g->deact;
	gw_metric_add(g->m, gw_family_series_cached(f, v), 1);
}

void gw_gm_activation_latency(gw_gm *g, int64_t ns)
{
	if (g)
		gw_metric_observe(g->m, g->act_lat, g->act_lat_s, us_of(ns));
}

void gw_gm_store(gw_gm *g, gw_gm_op op, size_t rows, int64_t ns, bool failed)
{
	if (!g || (unsigned)op >= GW_GM_OP_COUNT)
		return;
	gw_metric_observe(g->m, g->store_lat, g->op_lat[op], us_of(ns));
	if (rows)
		gw_metric_observe(g->m, g->store_rows, g->op_rows[op], rows);
	if (failed)
		gw_metric_add(g->m, g->op_err[op], 1);
}

void gw_gm_schedule_lateness(gw_gm *g, int64_t late)
{
	if (g)
		gw_metric_observe(g->m, g->late, g->late_s, late > 0 ? (uint64_t)late : 0);
}
