/* metrics.h - the gateway's Prometheus metrics: counters and histograms
 * counted per thread and merged at scrape time, gauges read at scrape time,
 * and the text exposition format (version 0.0.4).
 *
 * Why per-thread: a counter shared by every completion-queue thread is one
 * cache line bounced between cores on every call. Here each thread that
 * records owns a slab of slots (one uint64 per counter or histogram
 * bucket), written only by it with relaxed atomics (no lock, no shared
 * line); a scrape sums the slots of every slab. Slabs outlive their thread
 * (a thread that exits leaves its counts behind, and its slab is given to
 * the next thread that records), so a count never goes backwards.
 *
 * Cardinality is bounded twice: a family takes at most max_series label
 * sets, and the whole registry at most GW_METRICS_MAX_SLOTS slots. A label
 * set over either bound is counted in the family's overflow series, whose
 * every label value is "_other" (made when the family is), so a count is
 * never lost and the scrape never grows past the bounds. Label values are
 * names the gateway checked at its edge (systems, actor types, actions,
 * status names); never an actor id.
 *
 * Thread safety: registration (gw_metrics_counter/_histogram/_gauge) at
 * start-up, before the threads that record start; gw_family_series, the
 * recording functions and gw_metrics_render from any thread at any time.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"

/* Slots of the registry: a counter series takes 1, a histogram series
 * (bounds + 3: its buckets, +Inf, count, sum). */
#define GW_METRICS_MAX_SLOTS  32768
#define GW_METRICS_MAX_LABELS 4
#define GW_METRICS_OTHER      "_other" /* the overflow series' label values */

typedef struct gw_metrics gw_metrics;
typedef struct gw_family gw_family;

/* A series: the index of its first slot; 0 is never a series. */
typedef uint32_t gw_series;

gw_metrics *gw_metrics_create(void);
/* gw_metrics_destroy frees the registry, its families and every slab. No
 * thread may record into it any more. Accepts NULL. */
void gw_metrics_destroy(gw_metrics *m);

/* gw_metrics_counter registers a counter family. name: a Prometheus metric
 * name ending in "_total"; help: one line; labels: nlabels (<=
 * GW_METRICS_MAX_LABELS) label names. All strings are copied. max_series
 * (>= 1) bounds its label sets. Returns the family (owned by m) or NULL
 * (a bad name or label, a name taken, out of memory, no slot left). */
gw_family *gw_metrics_counter(gw_metrics *m, const char *name, const char *help,
                              const char *const *labels, size_t nlabels, size_t max_series);

/* gw_metrics_histogram registers a histogram family: observations are
 * integers in some unit (e.g. microseconds); bounds[0..nbounds) strictly
 * increasing, in that unit; scale converts the unit to the exposed one
 * (1e-6: microseconds exposed as seconds, the Prometheus base unit). */
gw_family *gw_metrics_histogram(gw_metrics *m, const char *name, const char *help,
                                const char *const *labels, size_t nlabels, size_t max_series,
                                const uint64_t *bounds, size_t nbounds, double scale);

/* A gauge family is read when scraped: fn emits its current series with
 * gw_gauge_emit (label values borrowed for the call). kind is "gauge" or
 * "counter" (a total the gateway keeps elsewhere, e.g. process CPU). fn
 * runs on the scraping thread, without any metrics lock held; user must
 * live as long as m. */
typedef struct gw_gauge_out gw_gauge_out;
typedef void (*gw_gauge_fn)(void *user, gw_gauge_out *out);
gw_err gw_metrics_gauge(gw_metrics *m, const char *name, const char *help, const char *kind,
                        const char *const *labels, size_t nlabels, gw_gauge_fn fn, void *user);
void gw_gauge_emit(gw_gauge_out *out, const char *const *values, double v);

/* gw_family_series returns the series of the label values (nlabels of
 * them, borrowed), made on first use; the overflow series when over a
 * bound; 0 only for a NULL family or out of memory. Takes the family's lock:
 * callers cache the result (per action, per system, ...). */
gw_series gw_family_series(gw_family *f, const char *const *values);

/* gw_family_series_cached is gw_family_series through a per-thread cache
 * of recent label sets (a direct-mapped table keyed by the family and the
 * values): a hit takes no lock. Label sets longer than the cache keeps
 * (GW_METRICS_CACHE_KEY bytes joined) go to gw_family_series. */
#define GW_METRICS_CACHE_KEY 96
gw_series gw_family_series_cached(gw_family *f, const char *const *values);

/* gw_family_each calls fn for every series of counter family f, in
 * creation order, with its label values (borrowed for the call) and its
 * total. Holds f's lock: fn must not make series of f. */
typedef void (*gw_series_fn)(void *user, const char *const *values, uint64_t total);
void gw_family_each(gw_family *f, gw_series_fn fn, void *user);

/* gw_metric_add adds n to counter series s (0: nothing). Lock-free: the
 * calling thread's slab. */
void gw_metric_add(gw_metrics *m, gw_series s, uint64_t n);

/* gw_metric_observe records value v into histogram series s of family f. */
void gw_metric_observe(gw_metrics *m, const gw_family *f, gw_series s, uint64_t v);

/* gw_metric_value sums series s over every slab (tests, and the counters
 * the gateway reports elsewhere). For a histogram series: its count. */
uint64_t gw_metric_value(gw_metrics *m, const gw_family *f, gw_series s);

/* gw_metrics_render writes the exposition of every family in registration
 * order into *out (malloc'd, NUL-terminated, caller frees) and its length
 * into *len. GW_OK or GW_ENOMEM. */
gw_err gw_metrics_render(gw_metrics *m, char **out, size_t *len);

/* gw_metrics_process registers the process_* families of the Prometheus
 * client conventions: resident memory, virtual memory, open fds, max fds,
 * CPU seconds, start time (read from /proc/self at scrape time). */
gw_err gw_metrics_process(gw_metrics *m);

#endif
