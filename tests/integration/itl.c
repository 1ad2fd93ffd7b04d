/* itl.c - see itl.h. */
#include "itl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

/* One call in flight: what its callback needs to find its record (the
 * record array may grow, so indexes, not pointers). */
typedef struct itl_slot {
	itl_load *l;
	size_t actor, call;
} itl_slot;

void itl_init(itl_load *l, spawn_client *c, const char *system, const char *parent,
              const char *prefix, size_t n, int window, int64_t seq_base)
{
	memset(l, 0, sizeof *l);
	l->c = c;
	snprintf(l->system, sizeof l->system, "%s", system);
	snprintf(l->parent, sizeof l->parent, "%s", parent ? parent : "");
	l->window = window;
	l->timeout_ms = it_ms(30000);
	l->seq_base = seq_base;
	l->n_actors = n;
	l->actors = calloc(n, sizeof *l->actors);
	ck_assert_ptr_nonnull(l->actors);
	for (size_t i = 0; i < n; i++) {
		if (n == 1)
			snprintf(l->actors[i].name, sizeof l->actors[i].name, "%s", prefix);
		else
			snprintf(l->actors[i].name, sizeof l->actors[i].name, "%s-%03zu", prefix,
			         i);
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
}

void itl_fini(itl_load *l)
{
	if (!l->actors)
		return;
	for (size_t i = 0; i < l->n_actors; i++)
		free(l->actors[i].calls);
	free(l->actors);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	memset(l, 0, sizeof *l);
}

/* reserve_locked picks the calls the window allows now: records them as
 * started and returns their slots in v (cap entries), count in *nv. */
static void reserve_locked(itl_load *l, itl_slot **v, size_t cap, size_t *nv)
{
	*nv = 0;
	if (l->stopping)
		return;
	for (size_t i = 0; i < l->n_actors; i++) {
		itl_actor *a = &l->actors[i];
		while (a->inflight < l->window && (long)a->n < a->limit && *nv < cap) {
			if (a->n == a->cap) {
				a->cap = a->cap ? 2 * a->cap : 64;
				a->calls = realloc(a->calls, a->cap * sizeof *a->calls);
				if (!a->calls)
					abort(); /* a test's own bookkeeping */
			}
			itl_call *c = &a->calls[a->n];
			c->seq = l->seq_base + (int64_t)a->n + 1;
			c->status = ITL_PENDING;
			c->t_start = it_now_ms();
			c->t_end = 0;
			itl_slot *s = malloc(sizeof *s);
			if (!s)
				abort();
			*s = (itl_slot){l, i, a->n};
			v[(*nv)++] = s;
			a->n++;
			a->inflight++;
			l->inflight++;
		}
	}
}

static void complete_locked(itl_load *l, const itl_slot *s, int status)
{
	itl_actor *a = &l->actors[s->actor];
	a->calls[s->call].status = status;
	a->calls[s->call].t_end = it_now_ms();
	a->inflight--;
	l->inflight--;
	pthread_cond_broadcast(&l->cv);
}

static void on_reply(void *user, spawn_reply *r);

/* pump starts what the window allows, outside the mutex. */
static void pump(itl_load *l)
{
	for (;;) {
		itl_slot *v[64];
		size_t nv;
		pthread_mutex_lock(&l->mu);
		reserve_locked(l, v, sizeof v / sizeof v[0], &nv);
		pthread_mutex_unlock(&l->mu);
		if (!nv)
			return;
		for (size_t k = 0; k < nv; k++) {
			itl_slot *s = v[k];
			pthread_mutex_lock(&l->mu);
			It__Add add = IT__ADD__INIT;
			add.value = 1;
			add.seq = l->actors[s->actor].calls[s->call].seq;
			char name[64];
			snprintf(name, sizeof name, "%s", l->actors[s->actor].name);
			pthread_mutex_unlock(&l->mu);
			spawn_payload p = {0};
			int rc = spawn_payload_pack(&p, &add.base);
			if (rc == SPAWN_OK) {
				spawn_request req = {.system = l->system,
				                     .actor = name,
				                     .parent = l->parent[0] ? l->parent : NULL,
				                     .action = "Add",
				                     .payload = p};
				rc = spawn_client_invoke_async(l->c, &req, l->timeout_ms, on_reply,
				                               s);
			}
			spawn_payload_fini(&p);
			if (rc != SPAWN_OK) {
				pthread_mutex_lock(&l->mu);
				complete_locked(l, s, rc);
				pthread_mutex_unlock(&l->mu);
				free(s);
			}
		}
	}
}

/* Runs on the client's callback thread. */
static void on_reply(void *user, spawn_reply *r)
{
	itl_slot *s = user;
	itl_load *l = s->l;
	pthread_mutex_lock(&l->mu);
	complete_locked(l, s, r->status);
	pthread_mutex_unlock(&l->mu);
	free(s);
	pump(l);
}

void itl_allow(itl_load *l, long more)
{
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->n_actors; i++) {
		itl_actor *a = &l->actors[i];
		a->limit = more >= ITL_UNLIMITED || a->limit + more >= ITL_UNLIMITED
		               ? ITL_UNLIMITED
		               : a->limit + more;
	}
	pthread_mutex_unlock(&l->mu);
	pump(l);
}

bool itl_wait(itl_load *l, itl_pred pred, void *arg, int64_t timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->mu);
	int e = 0;
	bool ok;
	while (!(ok = pred(l, arg)) && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&l->cv, &l->mu, &ts);
	pthread_mutex_unlock(&l->mu);
	return ok;
}

bool itl_idle(const itl_load *l, void *arg)
{
	(void)arg;
	if (l->inflight)
		return false;
	if (l->stopping)
		return true;
	for (size_t i = 0; i < l->n_actors; i++)
		if ((long)l->actors[i].n < l->actors[i].limit)
			return false;
	return true;
}

static bool none_in_flight(const itl_load *l, void *arg)
{
	(void)arg;
	return l->inflight == 0;
}

void itl_resume(itl_load *l)
{
	pthread_mutex_lock(&l->mu);
	l->stopping = false;
	pthread_mutex_unlock(&l->mu);
}

bool itl_stop(itl_load *l, int64_t timeout_ms)
{
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_mutex_unlock(&l->mu);
	return itl_wait(l, none_in_flight, NULL, timeout_ms);
}

long itl_count_locked(const itl_load *l, size_t i, int status, int64_t t_from)
{
	long n = 0;
	for (size_t a = 0; a < l->n_actors; a++) {
		if (i != SIZE_MAX && a != i)
			continue;
		const itl_actor *ac = &l->actors[a];
		for (size_t k = 0; k < ac->n; k++) {
			const itl_call *c = &ac->calls[k];
			if (c->status == ITL_PENDING || c->t_start < t_from)
				continue;
			if (status == ITL_ANY || c->status == status ||
			    (status == ITL_NOT_OK && c->status != SPAWN_OK))
				n++;
		}
	}
	return n;
}

long itl_count(itl_load *l, size_t i, int status, int64_t t_from)
{
	pthread_mutex_lock(&l->mu);
	long n = itl_count_locked(l, i, status, t_from);
	pthread_mutex_unlock(&l->mu);
	return n;
}

void itl_summary(itl_load *l, const char *label)
{
	enum { NS = 17 };
	long by[NS] = {0}, other = 0, total = 0;
	pthread_mutex_lock(&l->mu);
	for (size_t a = 0; a < l->n_actors; a++)
		for (size_t k = 0; k < l->actors[a].n; k++) {
			int s = l->actors[a].calls[k].status;
			total++;
			if (s >= 0 && s < NS)
				by[s]++;
			else
				other++;
		}
	pthread_mutex_unlock(&l->mu);
	char buf[512];
	int len = snprintf(buf, sizeof buf, "%s: %ld calls:", label, total);
	for (int s = 0; s < NS; s++)
		if (by[s] && len < (int)sizeof buf)
			len += snprintf(buf + len, sizeof buf - (size_t)len, " %ld %s", by[s],
			                spawn_status_name(s));
	if (other && len < (int)sizeof buf)
		snprintf(buf + len, sizeof buf - (size_t)len, " %ld other", other);
	fprintf(stderr, "%s\n", buf);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* find_call: the call of seq among the loads, or NULL. */
static const itl_call *find_call(itl_load *const ls[], const size_t idx[], size_t k, int64_t seq)
{
	for (size_t j = 0; j < k; j++) {
		const itl_actor *a = &ls[j]->actors[idx[j]];
		if (seq > ls[j]->seq_base && seq <= ls[j]->seq_base + (int64_t)a->n)
			return &a->calls[seq - ls[j]->seq_base - 1];
	}
	return NULL;
}

bool itl_verify(itl_load *const ls[], const size_t idx[], size_t k, const It__Counter *st,
                unsigned extra, char *why, size_t n)
{
	for (size_t j = 0; j < k; j++)
		pthread_mutex_lock(&ls[j]->mu);
	bool ok = false;
	int64_t *seqs = malloc((st->n_seqs + 1) * sizeof *seqs);
	if (!seqs)
		abort();
	memcpy(seqs, st->seqs, st->n_seqs * sizeof *seqs);
	qsort(seqs, st->n_seqs, sizeof *seqs, cmp_i64);
	if (st->adds != (int64_t)st->n_seqs || st->total != (int64_t)st->n_seqs) {
		snprintf(why, n, "total %" PRId64 ", adds %" PRId64 ", %zu seqs: should be equal",
		         st->total, st->adds, st->n_seqs);
		goto out;
	}
	for (size_t q = 0; q < st->n_seqs; q++) {
		if (q > 0 && seqs[q] == seqs[q - 1]) {
			snprintf(why, n, "seq %" PRId64 " applied twice", seqs[q]);
			goto out;
		}
		const itl_call *c = find_call(ls, idx, k, seqs[q]);
		if (!c) {
			snprintf(why, n, "seq %" PRId64 " stored, but no such call was made",
			         seqs[q]);
			goto out;
		}
		if (c->status != SPAWN_OK &&
		    !(c->status >= 0 && c->status < 32 && (extra & (1u << c->status)))) {
			snprintf(why, n, "seq %" PRId64 " stored, but its call failed with %s",
			         seqs[q], spawn_status_name(c->status));
			goto out;
		}
	}
	for (size_t j = 0; j < k; j++) {
		const itl_actor *a = &ls[j]->actors[idx[j]];
		for (size_t q = 0; q < a->n; q++) {
			if (a->calls[q].status != SPAWN_OK)
				continue;
			if (!bsearch(&a->calls[q].seq, seqs, st->n_seqs, sizeof *seqs, cmp_i64)) {
				snprintf(why, n,
				         "acknowledged add seq %" PRId64
				         " of %s is not in the stored "
				         "state (%zu seqs stored)",
				         a->calls[q].seq, a->name, st->n_seqs);
				goto out;
			}
		}
	}
	ok = true;
out:
	free(seqs);
	for (size_t j = k; j-- > 0;)
		pthread_mutex_unlock(&ls[j]->mu);
	return ok;
}

static int call_sync(spawn_client *c, const char *system, const char *actor, const char *parent,
                     const char *action, const ProtobufCMessage *m, It__Total **out, char *msg,
                     size_t n)
{
	if (out)
		*out = NULL;
	spawn_payload p = {0};
	if (m && spawn_payload_pack(&p, m) != SPAWN_OK)
		return SPAWN_ENOMEM;
	spawn_request req = {
	    .system = system, .actor = actor, .parent = parent, .action = action, .payload = p};
	spawn_reply r;
	int rc = spawn_client_invoke(c, &req, &r, it_ms(30000));
	spawn_payload_fini(&p);
	if (msg && n)
		snprintf(msg, n, "%s", r.message ? r.message : "");
	if (rc == SPAWN_OK && out &&
	    spawn_payload_unpack(&r.payload, &it__total__descriptor, (ProtobufCMessage **)out) !=
	        SPAWN_OK) {
		rc = SPAWN_EPROTO;
		if (msg && n)
			snprintf(msg, n, "reply is not an it.Total");
	}
	spawn_reply_fini(&r);
	return rc;
}

int itl_add(spawn_client *c, const char *system, const char *actor, const char *parent,
            int64_t value, int64_t seq, It__Total **out, char *msg, size_t n)
{
	It__Add add = IT__ADD__INIT;
	add.value = value;
	add.seq = seq;
	return call_sync(c, system, actor, parent, "Add", &add.base, out, msg, n);
}

int itl_get(spawn_client *c, const char *system, const char *actor, const char *parent,
            It__Total **out, char *msg, size_t n)
{
	return call_sync(c, system, actor, parent, "Get", NULL, out, msg, n);
}
