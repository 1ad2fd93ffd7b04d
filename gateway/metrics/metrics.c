/* metrics.c - per-thread counters merged at scrape time, and the
 * Prometheus text exposition (metrics.h).
 *
 * Layout:
 *   registry  families (registration order), the slot allocator, the slabs
 *   family    label sets -> series (a hash of the joined values, and a list
 *             in creation order for the scrape); width slots per series:
 *             1 (counter) or nbounds + 2 (histogram: the buckets up to
 *             each bound, the +Inf bucket, the sum)
 *   slab      the slots one thread writes: GW_METRICS_MAX_SLOTS uint64s in
 *             chunks of CHUNK_SLOTS, each chunk allocated by its thread on
 *             first use and published with a release store
 *
 * A thread finds its slab through a thread-local (registry generation,
 * slab) pair: the first record into a registry takes a new slab under the
 * registry's lock; later records touch only the slab. Slabs are never
 * handed to another thread, so a slot has one writer (a relaxed load and
 * store, no read-modify-write); the scrape reads every slab's slots with
 * relaxed loads. Past MAX_SLABS threads, the others share one slab written
 * with atomic adds: still exact, only slower.
 */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define CHUNK_SLOTS 512
#define NCHUNKS     (GW_METRICS_MAX_SLOTS / CHUNK_SLOTS)
#define MAX_SLABS   256

enum { T_COUNTER, T_HISTOGRAM, T_GAUGE };

typedef struct slab {
	_Atomic(_Atomic uint64_t *) chunk[NCHUNKS];
	bool shared;       /* written by several threads: atomic adds */
	struct slab *next; /* the registry's list (append at head, never removed) */
} slab;

typedef struct series {
	struct series *hnext, *onext;
	gw_series base;
	char **values; /* nlabels strings, one allocation with the struct */
} series;

struct gw_family {
	gw_metrics *m;
	char *name, *help;
	const char *kind; /* gauges: "gauge" or "counter" */
	int type;
	size_t nlabels;
	char *labels[GW_METRICS_MAX_LABELS];
	size_t width, max_series;
	uint64_t *bounds; /* histograms: nbounds, owned */
	size_t nbounds;
	double scale;
	gw_gauge_fn fn;
	void *user;
	pthread_mutex_t mu; /* guards what follows */
	series **tab;       /* hash of label sets, cap buckets */
	size_t cap, n;
	series *first, *last; /* creation order */
	gw_series other;      /* the overflow series (0 for a family without labels) */
	gw_family *next;
};

struct gw_metrics {
	uint64_t gen;
	pthread_mutex_t mu; /* families, slots, slabs */
	gw_family *first, *last;
	uint32_t next_slot;
	_Atomic(slab *) slabs;
	size_t nslabs;
	slab shared;
};

static atomic_uint_fast64_t generations;

static _Thread_local struct {
	uint64_t gen;
	slab *s;
} tls;

/* ---- names --------------------------------------------------------------------- */

static bool name_ok(const char *s, bool colon)
{
	if (!s || !s[0] || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || (colon && *p == ':')))
			return false;
	return true;
}

/* ---- registry ------------------------------------------------------------------- */

gw_metrics *gw_metrics_create(void)
{
	gw_metrics *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->gen = atomic_fetch_add(&generations, 1) + 1;
	pthread_mutex_init(&m->mu, NULL);
	m->next_slot = 1; /* 0 is no series */
	m->shared.shared = true;
	return m;
}

static void family_free(gw_family *f)
{
	for (series *s = f->first, *ns; s; s = ns) {
		ns = s->onext;
		free(s);
	}
	free(f->tab);
	free(f->bounds);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static void slab_free(slab *s)
{
	for (size_t i = 0; i < NCHUNKS; i++)
		free((void *)atomic_load_explicit(&s->chunk[i], memory_order_relaxed));
}

void gw_metrics_destroy(gw_metrics *m)
{
	if (!m)
		return;
	for (gw_family *f = m->first, *nf; f; f = nf) {
		nf = f->next;
		family_free(f);
	}
	for (slab *s = atomic_load(&m->slabs), *ns; s; s = ns) {
		ns = s->next;
		slab_free(s);
		free(s);
	}
	slab_free(&m->shared);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* family_new makes a family whose strings live in its own allocation. */
static gw_family *family_new(gw_metrics *m, int type, const char *name, const char *help,
                             const char *const *labels, size_t nlabels)
{
	if (!m || !name_ok(name, true) || !help || nlabels > GW_METRICS_MAX_LABELS ||
	    (nlabels && !labels))
		return NULL;
	size_t need = sizeof(gw_family) + strlen(name) + strlen(help) + 2;
	for (size_t i = 0; i < nlabels; i++) {
		if (!name_ok(labels[i], false) || !strcmp(labels[i], "le"))
			return NULL;
		need += strlen(labels[i]) + 1;
	}
	gw_family *f = calloc(1, need);
	if (!f)
		return NULL;
	char *p = (char *)(f + 1);
	f->name = strcpy(p, name);
	p += strlen(name) + 1;
	f->help = strcpy(p, help);
	p += strlen(help) + 1;
	for (size_t i = 0; i < nlabels; i++) {
		f->labels[i] = strcpy(p, labels[i]);
		p += strlen(labels[i]) + 1;
	}
	f->m = m;
	f->type = type;
	f->nlabels = nlabels;
	pthread_mutex_init(&f->mu, NULL);
	return f;
}

/* family_add links f into m unless its name is taken. */
static bool family_add(gw_metrics *m, gw_family *f)
{
	pthread_mutex_lock(&m->mu);
	for (gw_family *g = m->first; g; g = g->next)
		if (!strcmp(g->name, f->name)) {
			pthread_mutex_unlock(&m->mu);
			return false;
		}
	if (m->last)
		m->last->next = f;
	else
		m->first = f;
	m->last = f;
	pthread_mutex_unlock(&m->mu);
	return true;
}

/* slots_take reserves width slots; 0 when the registry is full. */
static gw_series slots_take(gw_metrics *m, size_t width)
{
	pthread_mutex_lock(&m->mu);
	gw_series base = 0;
	if ((size_t)m->next_slot + width <= GW_METRICS_MAX_SLOTS) {
		base = m->next_slot;
		m->next_slot += (uint32_t)width;
	}
	pthread_mutex_unlock(&m->mu);
	return base;
}

static series *series_new(gw_family *f, const char *const *values, gw_series base)
{
	size_t need = sizeof(series) + f->nlabels * sizeof(char *);
	for (size_t i = 0; i < f->nlabels; i++)
		need += strlen(values[i]) + 1;
	series *s = calloc(1, need);
	if (!s)
		return NULL;
	s->values = (char **)(s + 1);
	char *p = (char *)(s->values + f->nlabels);
	for (size_t i = 0; i < f->nlabels; i++) {
		s->values[i] = strcpy(p, values[i]);
		p += strlen(values[i]) + 1;
	}
	s->base = base;
	if (f->last)
		f->last->onext = s;
	else
		f->first = s;
	f->last = s;
	return s;
}

/* family_finish gives f its hash and, with labels, its overflow series. */
static gw_family *family_finish(gw_metrics *m, gw_family *f, size_t max_series)
{
	f->max_series = max_series;
	f->cap = 64;
	while (f->cap < 2 * max_series && f->cap < 65536)
		f->cap *= 2;
	f->tab = calloc(f->cap, sizeof *f->tab);
	if (!f->tab || max_series == 0)
		goto fail;
	if (f->nlabels) {
		const char *other[GW_METRICS_MAX_LABELS];
		for (size_t i = 0; i < f->nlabels; i++)
			other[i] = GW_METRICS_OTHER;
		gw_series base = slots_take(m, f->width);
		if (!base || !series_new(f, other, base))
			goto fail;
		f->other = base;
	}
	if (!family_add(m, f))
		goto fail;
	return f;
fail:
	family_free(f);
	return NULL;
}

gw_family *gw_metrics_counter(gw_metrics *m, const char *name, const char *help,
                              const char *const *labels, size_t nlabels, size_t max_series)
{
	size_t n = name ? strlen(name) : 0;
	if (n < 7 || strcmp(name + n - 6, "_total"))
		return NULL;
	gw_family *f = family_new(m, T_COUNTER, name, help, labels, nlabels);
	if (!f)
		return NULL;
	f->width = 1;
	return family_finish(m, f, max_series);
}

gw_family *gw_metrics_histogram(gw_metrics *m, const char *name, const char *help,
                                const char *const *labels, size_t nlabels, size_t max_series,
                                const uint64_t *bounds, size_t nbounds, double scale)
{
	if (!bounds || nbounds == 0 || nbounds > 64 || !(scale > 0))
		return NULL;
	for (size_t i = 1; i < nbounds; i++)
		if (bounds[i] <= bounds[i - 1])
			return NULL;
	gw_family *f = family_new(m, T_HISTOGRAM, name, help, labels, nlabels);
	if (!f)
		return NULL;
	if (!(f->bounds = malloc(nbounds * sizeof *bounds))) {
		family_free(f);
		return NULL;
	}
	memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
	f->nbounds = nbounds;
	f->scale = scale;
	f->width = nbounds + 2;
	return family_finish(m, f, max_series);
}

gw_err gw_metrics_gauge(gw_metrics *m, const char *name, const char *help, const char *kind,
                        const char *const *labels, size_t nlabels, gw_gauge_fn fn, void *user)
{
	if (!fn || !kind || (strcmp(kind, "gauge") && strcmp(kind, "counter")))
		return GW_EINVAL;
	gw_family *f = family_new(m, T_GAUGE, name, help, labels, nlabels);
	if (!f)
		return GW_EINVAL;
	f->kind = !strcmp(kind, "gauge") ? "gauge" : "counter";
	f->fn = fn;
	f->user = user;
	if (!family_add(m, f)) {
		family_free(f);
		return GW_EINVAL;
	}
	return GW_OK;
}

/* ---- series --------------------------------------------------------------------- */

static uint64_t hash_values(const gw_family *f, const char *const *values)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < f->nlabels; i++) {
		for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
			h = (h ^ *p) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL; /* separator */
	}
	return h;
}

gw_series gw_family_series(gw_family *f, const char *const *values)
{
	if (!f || f->type == T_GAUGE)
		return 0;
	if (f->nlabels == 0) {
		pthread_mutex_lock(&f->mu);
		if (!f->first) {
			gw_series base = slots_take(f->m, f->width);
			if (base)
				series_new(f, NULL, base);
		}
		gw_series b = f->first ? f->first->base : 0;
		pthread_mutex_unlock(&f->mu);
		return b;
	}
	for (size_t i = 0; i < f->nlabels; i++)
		if (!values || !values[i])
			return f->other;
	size_t b = (size_t)(hash_values(f, values) & (f->cap - 1));
	pthread_mutex_lock(&f->mu);
	for (series *s = f->tab[b]; s; s = s->hnext) {
		size_t i = 0;
		while (i < f->nlabels && !strcmp(s->values[i], values[i]))
			i++;
		if (i == f->nlabels) {
			pthread_mutex_unlock(&f->mu);
			return s->base;
		}
	}
	gw_series got = f->other;
	if (f->n < f->max_series) {
		gw_series base = slots_take(f->m, f->width);
		series *s = base ? series_new(f, values, base) : NULL;
		if (s) {
			s->hnext = f->tab[b];
			f->tab[b] = s;
			f->n++;
			got = base;
		}
	}
	pthread_mutex_unlock(&f->mu);
	return got;
}

/* The per-thread cache of gw_family_series_cached: direct-mapped, keyed by
 * (registry generation, family, joined values); an entry is written only
 * by its thread. */
#define TC_SLOTS 128
typedef struct tc_ent {
	const gw_family *f;
	uint64_t gen;
	gw_series s;
	uint16_t klen;
	char key[GW_METRICS_CACHE_KEY];
} tc_ent;
/* Static TLS (no allocation a thread's exit would leak): 15 KiB a thread. */
static _Thread_local tc_ent tc[TC_SLOTS];
static uint64_t read_slot(gw_metrics *m, uint32_t i);

gw_series gw_family_series_cached(gw_family *f, const char *const *values)
{
	if (!f || f->type == T_GAUGE)
		return 0;
	char key[GW_METRICS_CACHE_KEY];
	size_t k = 0;
	for (size_t i = 0; i < f->nlabels; i++) {
		if (!values || !values[i])
			return f->other;
		size_t l = strlen(values[i]);
		if (k + l + 1 > sizeof key)
			return gw_family_series(f, values);
		memcpy(key + k, values[i], l);
		k += l;
		key[k++] = '\x1f';
	}
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)f;
	for (size_t i = 0; i < k; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
	tc_ent *e = &tc[(h ^ (h >> 29)) & (TC_SLOTS - 1)];
	if (e->f == f && e->gen == f->m->gen && e->klen == k && !memcmp(e->key, key, k))
		return e->s;
	gw_series s = gw_family_series(f, values);
	if (s) {
		e->f = f;
		e->gen = f->m->gen;
		e->s = s;
		e->klen = (uint16_t)k;
		memcpy(e->key, key, k);
	}
	return s;
}

void gw_family_each(gw_family *f, gw_series_fn fn, void *user)
{
	if (!f || f->type != T_COUNTER || !fn)
		return;
	pthread_mutex_lock(&f->mu);
	for (const series *s = f->first; s; s = s->onext)
		fn(user, (const char *const *)s->values, read_slot(f->m, s->base));
	pthread_mutex_unlock(&f->mu);
}

/* ---- recording ------------------------------------------------------------------ */

static slab *slab_of_thread(gw_metrics *m)
{
	if (tls.gen == m->gen)
		return tls.s;
	slab *s = NULL;
	pthread_mutex_lock(&m->mu);
	if (m->nslabs < MAX_SLABS && (s = calloc(1, sizeof *s))) {
		s->next = atomic_load_explicit(&m->slabs, memory_order_relaxed);
		atomic_store_explicit(&m->slabs, s, memory_order_release);
		m->nslabs++;
	}
	pthread_mutex_unlock(&m->mu);
	if (!s)
		s = &m->shared;
	tls.gen = m->gen;
	tls.s = s;
	return s;
}

/* slot returns the address of slot i in slab s, making its chunk; NULL
 * when out of memory (the count is dropped). */
static _Atomic uint64_t *slot(slab *s, uint32_t i)
{
	_Atomic(_Atomic uint64_t *) *cp = &s->chunk[i / CHUNK_SLOTS];
	_Atomic uint64_t *c = atomic_load_explicit(cp, memory_order_acquire);
	if (!c) {
		_Atomic uint64_t *fresh = calloc(CHUNK_SLOTS, sizeof *fresh);
		if (!fresh)
			return NULL;
		_Atomic uint64_t *expected = NULL;
		/* The shared slab has several writers: the first chunk wins. */
		if (atomic_compare_exchange_strong_explicit(
		        cp, &expected, fresh, memory_order_acq_rel, memory_order_acquire)) {
			c = fresh;
		} else {
			free(fresh);
			c = expected;
		}
	}
	return &c[i % CHUNK_SLOTS];
}

static void bump(slab *s, uint32_t i, uint64_t n)
{
	_Atomic uint64_t *p = slot(s, i);
	if (!p)
		return;
	if (s->shared)
		atomic_fetch_add_explicit(p, n, memory_order_relaxed);
	else
		atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
		                      memory_order_relaxed);
}

void gw_metric_add(gw_metrics *m, gw_series s, uint64_t n)
{
	if (!m || s == 0 || s >= GW_METRICS_MAX_SLOTS)
		return;
	bump(slab_of_thread(m), s, n);
}

void gw_metric_observe(gw_metrics *m, const gw_family *f, gw_series s, uint64_t v)
{
	if (!m || !f || f->type != T_HISTOGRAM || s == 0 || s + f->width > GW_METRICS_MAX_SLOTS)
		return;
	size_t lo = 0, hi = f->nbounds; /* the first bound >= v, or nbounds (+Inf) */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (f->bounds[mid] >= v)
			hi = mid;
		else
			lo = mid + 1;
	}
	slab *sl = slab_of_thread(m);
	bump(sl, s + (uint32_t)lo, 1);
	bump(sl, s + (uint32_t)f->nbounds + 1, v);
}

/* ---- reading -------------------------------------------------------------------- */

static uint64_t read_slot(gw_metrics *m, uint32_t i)
{
	uint64_t sum = 0;
	const slab *s = atomic_load_explicit(&m->slabs, memory_order_acquire);
	for (; s; s = s->next) {
		_Atomic uint64_t *c =
		    atomic_load_explicit(&s->chunk[i / CHUNK_SLOTS], memory_order_acquire);
		if (c)
			sum += atomic_load_explicit(&c[i % CHUNK_SLOTS], memory_order_relaxed);
	}
	_Atomic uint64_t *c =
	    atomic_load_explicit(&m->shared.chunk[i / CHUNK_SLOTS], memory_order_acquire);
	if (c)
		sum += atomic_load_explicit(&c[i % CHUNK_SLOTS], memory_order_relaxed);
	return sum;
}

uint64_t gw_metric_value(gw_metrics *m, const gw_family *f, gw_series s)
{
	if (!m || !f || s == 0 || s + f->width > GW_METRICS_MAX_SLOTS + 1)
		return 0;
	if (f->type != T_HISTOGRAM)
		return read_slot(m, s);
	uint64_t n = 0;
	for (size_t i = 0; i <= f->nbounds; i++)
		n += read_slot(m, s + (uint32_t)i);
	return n;
}

/* ---- exposition ----------------------------------------------------------------- */

typedef struct buf {
	char *p;
	size_t len, cap;
	bool oom;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t nc = b->cap * 2 + (size_t)n + 1;
		char *np = realloc(b->p, nc);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
}

/* put_escaped writes s with the exposition format's escapes: \\ and \n
 * always, \" inside label values (quote). */
static void put_escaped(buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(b, "\\\\");
		else if (*s == '\n')
			put(b, "\\n");
		else if (quote && *s == '"')
			put(b, "\\\"");
		else
			put(b, "%c", *s);
	}
}

/* put_double writes the shortest of %.15g / %.17g that reads back as v. */
static void put_double(buf *b, double v)
{
	if (isnan(v)) {
		put(b, "NaN");
		return;
	}
	if (isinf(v)) {
		put(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	char s[40];
	snprintf(s, sizeof s, "%.15g", v);
	if (strtod(s, NULL) != v)
		snprintf(s, sizeof s, "%.17g", v);
	put(b, "%s", s);
}

/* put_labels writes {a="x",b="y"[,le="..."]} (nothing without labels). */
static void put_labels(buf *b, const gw_family *f, char *const *values, const char *le)
{
	if (f->nlabels == 0 && !le)
		return;
	put(b, "{");
	for (size_t i = 0; i < f->nlabels; i++) {
		put(b, "%s%s=\"", i ? "," : "", f->labels[i]);
		put_escaped(b, values[i], true);
		put(b, "\"");
	}
	if (le)
		put(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
	put(b, "}");
}

static void put_header(buf *b, const gw_family *f, const char *type)
{
	put(b, "# HELP %s ", f->name);
	put_escaped(b, f->help, false);
	put(b, "\n# TYPE %s %s\n", f->name, type);
}

/* scaled converts x (in the family's unit) to the exposed unit: a division
 * by 1/scale when that is a whole number (1e-6: x / 1e6, which rounds to
 * the nearest double of 100 us = 0.0001 where x * 1e-6 would not). */
static double scaled(const gw_family *f, double x)
{
	double inv = 1.0 / f->scale;
	if (f->scale < 1 && fabs(inv - round(inv)) < 1e-6)
		return x / round(inv);
	return x * f->scale;
}

static void render_histogram(gw_metrics *m, buf *b, const gw_family *f, const series *s)
{
	uint64_t cum = 0;
	for (size_t i = 0; i <= f->nbounds; i++) {
		cum += read_slot(m, s->base + (uint32_t)i);
		char le[40] = "+Inf";
		if (i < f->nbounds) {
			buf lb = {.p = le, .cap = sizeof le};
			put_double(&lb, scaled(f, (double)f->bounds[i]));
		}
		put(b, "%s_bucket", f->name);
		put_labels(b, f, s->values, le);
		put(b, " %llu\n", (unsigned long long)cum);
	}
	put(b, "%s_sum", f->name);
	put_labels(b, f, s->values, NULL);
	put(b, " ");
	put_double(b, scaled(f, (double)read_slot(m, s->base + (uint32_t)f->nbounds + 1)));
	put(b, "\n%s_count", f->name);
	put_labels(b, f, s->values, NULL);
	put(b, " %llu\n", (unsigned long long)cum);
}

struct gw_gauge_out {
	buf *b;
	const gw_family *f;
};

void gw_gauge_emit(gw_gauge_out *out, const char *const *values, double v)
{
	if (!out)
		return;
	for (size_t i = 0; i < out->f->nlabels; i++)
		if (!values || !values[i])
			return;
	put(out->b, "%s", out->f->name);
	put_labels(out->b, out->f, (char *const *)values, NULL);
	put(out->b, " ");
	put_double(out->b, v);
	put(out->b, "\n");
}

gw_err gw_metrics_render(gw_metrics *m, char **out, size_t *len)
{
	if (!m || !out || !len)
		return GW_EINVAL;
	buf b = {.cap = 4096};
	if (!(b.p = malloc(b.cap)))
		return GW_ENOMEM;
	b.p[0] = '\0';
	pthread_mutex_lock(&m->mu);
	gw_family *first = m->first;
	pthread_mutex_unlock(&m->mu);
	/* Families are registered before any scrape and never removed. */
	for (gw_family *f = first; f; f = f->next) {
		if (f->type == T_GAUGE) {
			put_header(&b, f, f->kind);
			gw_gauge_out go = {.b = &b, .f = f};
			f->fn(f->user, &go);
			continue;
		}
		put_header(&b, f, f->type == T_COUNTER ? "counter" : "histogram");
		pthread_mutex_lock(&f->mu);
		for (const series *s = f->first; s; s = s->onext) {
			if (f->type == T_HISTOGRAM) {
				render_histogram(m, &b, f, s);
				continue;
			}
			put(&b, "%s", f->name);
			put_labels(&b, f, s->values, NULL);
			put(&b, " %llu\n", (unsigned long long)read_slot(m, s->base));
		}
		pthread_mutex_unlock(&f->mu);
	}
	if (b.oom) {
		free(b.p);
		return GW_ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return GW_OK;
}

/* ---- process_* ------------------------------------------------------------------- */

/* proc_stat reads fields utime, stime, starttime, vsize, rss of
 * /proc/self/stat. */
static bool proc_stat(unsigned long long *utime, unsigned long long *stime,
                      unsigned long long *start, unsigned long long *vsize, long long *rss)
{
	FILE *f = fopen("/proc/self/stat", "r");
	if (!f)
		return false;
	char line[1024];
	bool ok = fgets(line, sizeof line, f) != NULL;
	fclose(f);
	/* The command name (field 2) may hold spaces: parse after its ')'. */
	char *p = ok ? strrchr(line, ')') : NULL;
	if (!p)
		return false;
	return sscanf(p + 2,
	              "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
	              "%*d %*d %llu %llu %lld",
	              utime, stime, start, vsize, rss) == 5;
}

static double boot_time(void)
{
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return 0;
	char line[256];
	double bt = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "btime %lf", &bt) == 1)
			break;
	fclose(f);
	return bt;
}

static void g_cpu(void *user, gw_gauge_out *o)
{
	(void)user;
	unsigned long long ut, st, start, vs;
	long long rss;
	if (proc_stat(&ut, &st, &start, &vs, &rss))
		gw_gauge_emit(o, NULL, (double)(ut + st) / (double)sysconf(_SC_CLK_TCK));
}

static void g_rss(void *user, gw_gauge_out *o)
{
	(void)user;
	unsigned long long ut, st, start, vs;
	long long rss;
	if (proc_stat(&ut, &st, &start, &vs, &rss))
		gw_gauge_emit(o, NULL, (double)rss * (double)sysconf(_SC_PAGESIZE));
}

static void g_vsize(void *user, gw_gauge_out *o)
{
	(void)user;
	unsigned long long ut, st, start, vs;
	long long rss;
	if (proc_stat(&ut, &st, &start, &vs, &rss))
		gw_gauge_emit(o, NULL, (double)vs);
}

static void g_start(void *user, gw_gauge_out *o)
{
	(void)user;
	unsigned long long ut, st, start, vs;
	long long rss;
	if (proc_stat(&ut, &st, &start, &vs, &rss))
		gw_gauge_emit(o, NULL, boot_time() + (double)start / (double)sysconf(_SC_CLK_TCK));
}

static void g_fds(void *user, gw_gauge_out *o)
{
	(void)user;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	long n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	gw_gauge_emit(o, NULL, (double)(n - 1)); /* the directory's own fd */
}

static void g_max_fds(void *user, gw_gauge_out *o)
{
	(void)user;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		gw_gauge_emit(o, NULL,
		              rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
}

gw_err gw_metrics_process(gw_metrics *m)
{
	static const struct {
		const char *name, *help, *kind;
		gw_gauge_fn fn;
	} g[] = {
	    {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
	     "counter", g_cpu},
	    {"process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", g_rss},
	    {"process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", g_vsize},
	    {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
	     "gauge", g_start},
	    {"process_open_fds", "Number of open file descriptors.", "gauge", g_fds},
	    {"process_max_fds", "Maximum number of open file descriptors.", "gauge", g_max_fds},
	};
	for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
		gw_err e =
		    gw_metrics_gauge(m, g[i].name, g[i].help, g[i].kind, NULL, 0, g[i].fn, NULL);
		if (e != GW_OK)
			return e;
	}
	return GW_OK;
}
