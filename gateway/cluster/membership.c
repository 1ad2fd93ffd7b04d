/* membership.c - join, heartbeat, view, dead declarations, self-fencing and
 * graceful leave of one member (membership.h; docs/design/cluster.md).
 *
 * Why a thread of its own with a store handle of its own (not the persist
 * thread's URGENT queue): a heartbeat must go out every heartbeat_ms
 * whatever the persist thread is doing. Queued behind a save batch, a
 * lock wait or a slow activation, a heartbeat would come late, and a busy
 * member would fence itself (or be declared dead) for being busy. With one
 * connection of its own the membership's only wait is the database itself.
 *
 * Why a second thread, the fence clock: a store call that hangs (a server
 * that stopped answering, a cut network) holds the membership thread for
 * as long as the driver's timeouts allow (seconds); the fence must fall at
 * fence_after_ms regardless. The clock thread only reads the time of the
 * last successful heartbeat and fences; gw_cluster_serving does the same
 * check on the caller's clock, so the serving path never trusts a thread
 * that may not have been scheduled (SIGSTOP, a loaded machine).
 *
 * Locks: pubmu (callbacks, one at a time; publishing a view) before mu
 * (the state); mu is never held while calling out or into the store.
 *
 * Served types: read from the registry (the served callback) at each heartbeat (a registry
 * change hook would run under the registry's lock on a completion-queue
 * thread; one heartbeat of delay is what a peer's view lags anyway).
 */
#include "membership.h"

#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Dead rows older than this are collected (bounded table); at least a
 * minute, so a dead row stays visible to every peer and to tools. */
#define GC_AFTER_MIN_MS 60000
#define GC_EVERY_BEATS  50

typedef struct view_box {
	gw_view v;
	atomic_int refs;
	char *sig; /* owned: what the version tracks (members, statuses, served, self) */
} view_box;

typedef enum { M_OUT, M_JOINING, M_ACTIVE, M_LEAVING } mstate;

struct gw_cluster {
	gw_store *store; /* owned */
	gw_cluster_opts o;
	char *advertise;         /* owned copy */
	int64_t fence_after_ms;  /* member_timeout_ms - margin */
	pthread_t thread, clock; /* the membership thread and the fence clock */
	bool started;

	pthread_mutex_t mu; /* guards what follows */
	pthread_cond_t cv;  /* stop / leave requests, leave acknowledgements */
	bool stop, leave, leave_written;
	mstate state;
	char id[GW_MEMBER_ID_MAX + 1]; /* the current incarnation's id ("" when out) */
	/* A fenced incarnation whose row this member still has to mark DEAD
	 * itself before it rejoins ("" when none): its activation leases are
	 * free at once, nobody waits for a peer to declare it. */
	char bury[GW_MEMBER_ID_MAX + 1];
	uint64_t gen;        /* incarnation: bumped by every fence */
	view_box *view;      /* current view (a reference) */
	uint64_t version;    /* last published view version */
	char *last_rows_sig; /* members part of the last view's signature */

	/* The lease: monotonic ms when the last successful heartbeat was SENT;
	 * 0 = not serving. Read without the lock (gw_cluster_serving). */
	_Atomic int64_t lease_from_ms;

	pthread_mutex_t pubmu; /* callbacks run one at a time under it */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* wait_ms waits on c->cv (c->mu held) for at most ms (the condition
 * variable runs on the monotonic clock). */
#define WAIT_MS(c, ms)                                                                             \
	do {                                                                                       \
		struct timespec ts_;                                                               \
		int64_t ms_ = (ms) > 0 ? (ms) : 0;                                                 \
		clock_gettime(CLOCK_MONOTONIC, &ts_);                                              \
		ts_.tv_sec += ms_ / 1000;                                                          \
		ts_.tv_nsec += (ms_ % 1000) * 1000000;                                             \
		ts_.tv_sec += ts_.tv_nsec / 1000000000;                                            \
		ts_.tv_nsec %= 1000000000;                                                         \
		pthread_cond_timedwait(&(c)->cv, &(c)->mu, &ts_);                                  \
	} while (0)

int64_t gw_cluster_fence_after_ms(int64_t heartbeat_ms, int64_t member_timeout_ms)
{
	/* The margin covers the fence clock's tick, the time the runtime takes
	 * to drop its activations, and a heartbeat sent but not yet written
	 * (docs/design/cluster.md): at least one heartbeat period and a fifth
	 * of the timeout. */
	int64_t margin =
	    heartbeat_ms > member_timeout_ms / 5 ? heartbeat_ms : member_timeout_ms / 5;
	return member_timeout_ms - margin;
}

/* ---- views ------------------------------------------------------------------------ */

gw_view *gw_view_hold(gw_view *v)
{
	if (v)
		atomic_fetch_add(&((view_box *)v)->refs, 1);
	return v;
}

void gw_view_rele(gw_view *v)
{
	view_box *b = (view_box *)v;
	if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	free(b->sig);
	free(b); /* members, strings and served arrays live in the same block */
}

gw_view *gw_cluster_view_hold(gw_cluster *c)
{
	pthread_mutex_lock(&c->mu);
	gw_view *v = gw_view_hold(&c->view->v);
	pthread_mutex_unlock(&c->mu);
	return v;
}

/* live: a row the view shows. */
static bool live(const gw_member_row *r)
{
	return r->status >= GW_MEMBER_JOINING && r->status <= GW_MEMBER_LEAVING;
}

/* rows_sig writes what a view of rows[0..n) shows, as one string (caller
 * frees), NULL on no memory. */
static char *rows_sig(const gw_member_row *rows, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		if (live(&rows[i]))
			len += strlen(rows[i].id) + strlen(rows[i].address) +
			       strlen(rows[i].served) + 8;
	char *s = malloc(len), *p = s;
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (live(&rows[i]))
			p += sprintf(p, "%s\t%s\t%d\t%s\x1e", rows[i].id, rows[i].address,
			             rows[i].status, rows[i].served);
	*p = '\0';
	return s;
}

/* view_build makes a view of the live rows of rows[0..n) (one block: the
 * box, the members, the served pointer arrays, the strings). */
static view_box *view_build(const gw_member_row *rows, size_t n, const char *self_id,
                            uint64_t version)
{
	size_t m = 0, bytes = 0, nserved = 0;
	for (size_t i = 0; i < n; i++) {
		if (!live(&rows[i]))
			continue;
		m++;
		bytes += strlen(rows[i].id) + strlen(rows[i].address) + strlen(rows[i].served) + 3;
		if (rows[i].served[0]) {
			nserved++;
			for (const char *p = rows[i].served; *p; p++)
				nserved += *p == '\n';
		}
	}
	size_t head = sizeof(view_box) + m * sizeof(gw_member) + nserved * sizeof(char *);
	view_box *b = calloc(1, head + bytes);
	if (!b)
		return NULL;
	gw_member *mem = (gw_member *)(b + 1);
	const char **sv = (const char **)(mem + m);
	char *str = (char *)b + head;
	b->v.version = version;
	b->v.members = mem;
	b->v.self = SIZE_MAX;
	atomic_init(&b->refs, 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!live(&rows[i]))
			continue;
		gw_member *x = &mem[k];
		x->id = strcpy(str, rows[i].id);
		str += strlen(str) + 1;
		x->address = strcpy(str, rows[i].address);
		str += strlen(str) + 1;
		x->status = rows[i].status;
		x->served = sv;
		char *s = strcpy(str, rows[i].served);
		str += strlen(str) + 1;
		while (*s) {
			sv[x->n_served++] = s;
			char *nl = strchr(s, '\n');
			if (!nl)
				break;
			*nl = '\0';
			s = nl + 1;
		}
		sv += x->n_served;
		if (self_id && strcmp(x->id, self_id) == 0)
			b->v.self = k;
		k++;
	}
	b->v.n = m;
	return b;
}

/* publish makes the view of rows[0..n) (rows NULL: the last one's members)
 * current when it differs from the last, and tells on_view. Called on the
 * membership thread or the fence clock, with pubmu held. */
static void publish(gw_cluster *c, const gw_member_row *rows, size_t n)
{
	pthread_mutex_lock(&c->mu);
	bool serving = c->state == M_ACTIVE || c->state == M_LEAVING || c->state == M_JOINING;
	char self[GW_MEMBER_ID_MAX + 1];
	snprintf(self, sizeof self, "%s", serving ? c->id : "");
	pthread_mutex_unlock(&c->mu);

	char *rs = rows ? rows_sig(rows, n) : NULL;
	if (rows && !rs)
		return; /* no memory: the next beat tries again */
	pthread_mutex_lock(&c->mu);
	const char *members = rs ? rs : (c->last_rows_sig ? c->last_rows_sig : "");
	size_t len = strlen(members) + strlen(self) + 2;
	char *sig = malloc(len);
	if (!sig) {
		pthread_mutex_unlock(&c->mu);
		free(rs);
		return;
	}
	snprintf(sig, len, "%s\x1f%s", self, members);
	bool same = c->view->sig && strcmp(c->view->sig, sig) == 0;
	pthread_mutex_unlock(&c->mu);
	if (same) {
		free(sig);
		free(rs);
		return;
	}

	view_box *b;
	if (rows) {
		b = view_build(rows, n, self[0] ? self : NULL, c->version + 1);
	} else {
		/* Same members, another self: copy the current view's members. */
		pthread_mutex_lock(&c->mu);
		view_box *cur = c->view;
		atomic_fetch_add(&cur->refs, 1);
		pthread_mutex_unlock(&c->mu);
		gw_member_row *tmp = calloc(cur->v.n ? cur->v.n : 1, sizeof *tmp);
		char **served = calloc(cur->v.n ? cur->v.n : 1, sizeof *served);
		b = NULL;
		if (tmp && served) {
			bool ok = true;
			for (size_t i = 0; i < cur->v.n && ok; i++) {
				const gw_member *m = &cur->v.members[i];
				size_t sl = 1;
				for (size_t j = 0; j < m->n_served; j++)
					sl += strlen(m->served[j]) + 1;
				if (!(served[i] = malloc(sl))) {
					ok = false;
					break;
				}
				served[i][0] = '\0';
				for (size_t j = 0; j < m->n_served; j++) {
					if (j)
						strcat(served[i], "\n");
					strcat(served[i], m->served[j]);
				}
				tmp[i] = (gw_member_row){.id = (char *)m->id,
				                         .address = (char *)m->address,
				                         .status = m->status,
				                         .served = served[i]};
			}
			if (ok)
				b = view_build(tmp, cur->v.n, self[0] ? self : NULL,
				               c->version + 1);
			for (size_t i = 0; i < cur->v.n; i++)
				free(served[i]);
		}
		free(tmp);
		free(served);
		gw_view_rele(&cur->v);
	}
	if (!b) {
		free(sig);
		free(rs);
		return;
	}
	b->sig = sig;
	pthread_mutex_lock(&c->mu);
	view_box *old = c->view;
	c->view = b;
	c->version = b->v.version;
	if (rs) {
		free(c->last_rows_sig);
		c->last_rows_sig = rs;
	}
	atomic_fetch_add(&b->refs, 1); /* for the callback */
	pthread_mutex_unlock(&c->mu);
	gw_view_rele(&old->v);
	if (c->o.on_view)
		c->o.on_view(c->o.user, &b->v);
	gw_view_rele(&b->v);
}

/* ---- fencing ------------------------------------------------------------------------- */

/* fence ends incarnation gen (if it is still the current one): not serving
 * from now on, the view's self becomes SIZE_MAX, on_fenced is told. The
 * membership thread rejoins under a new id. pubmu held. */
static void fence(gw_cluster *c, uint64_t gen, const char *why)
{
	pthread_mutex_lock(&c->mu);
	if (c->gen != gen || c->state == M_OUT) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	atomic_store(&c->lease_from_ms, 0);
	char old[GW_MEMBER_ID_MAX + 1];
	snprintf(old, sizeof old, "%s", c->id);
	snprintf(c->bury, sizeof c->bury, "%s", c->id);
	c->state = M_OUT;
	c->gen++;
	pthread_cond_broadcast(&c->cv); /* a leave waiting for this incarnation */
	pthread_mutex_unlock(&c->mu);
	if (c->o.on_fenced)
		c->o.on_fenced(c->o.user, old, why);
	publish(c, NULL, 0);
}

bool gw_cluster_serving(gw_cluster *c)
{
	int64_t from = atomic_load(&c->lease_from_ms);
	return from > 0 && mono_ms() - from < c->fence_after_ms;
}

/* The fence clock: a tick of a quarter heartbeat (at most 25 ms). */
static void *clock_main(void *arg)
{
	gw_cluster *c = arg;
	int64_t tick = c->o.heartbeat_ms / 4;
	if (tick > 25)
		tick = 25;
	if (tick < 1)
		tick = 1;
	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		int64_t from = atomic_load(&c->lease_from_ms);
		uint64_t gen = c->gen;
		int64_t age = from > 0 ? mono_ms() - from : 0;
		if (from > 0 && age >= c->fence_after_ms) {
			pthread_mutex_unlock(&c->mu);
			/* The age measured here, not the limit: how late the clock
			 * fenced is visible (and tested against the member timeout). */
			char why[128];
			snprintf(why, sizeof why,
			         "no heartbeat reached the database for %lld ms (limit %lld ms)",
			         (long long)age, (long long)c->fence_after_ms);
			pthread_mutex_lock(&c->pubmu);
			fence(c, gen, why);
			pthread_mutex_unlock(&c->pubmu);
			pthread_mutex_lock(&c->mu);
			continue;
		}
		WAIT_MS(c, tick);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* ---- the membership thread ----------------------------------------------------------- */

/* new_id makes an id for a new incarnation: advertise@start_ms-random. */
static void new_id(gw_cluster *c, char *id, size_t cap)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned r = 0;
	FILE *f = fopen("/dev/urandom", "rb");
	if (!f || fread(&r, sizeof r, 1, f) != 1)
		r = (unsigned)(ts.tv_nsec ^ (getpid() << 16));
	if (f)
		fclose(f);
	snprintf(id, cap, "%s@%lld-%08x", c->advertise,
	         (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, r);
}

/* bury marks the row of this member's fenced incarnation DEAD, with the
 * conditional declaration a peer would make (this process wrote its last
 * heartbeat, so the observed one is the last). Safe: that incarnation
 * fenced itself, its activations were handed off when the fence published
 * its view without self (under pubmu, which this takes first), and it takes
 * no lease any more (on_fenced). true when nothing is left to do (declared,
 * or the row is DEAD or gone already); false on a store error (retried
 * before the next join). */
static bool bury(gw_cluster *c)
{
	char old[GW_MEMBER_ID_MAX + 1];
	pthread_mutex_lock(&c->mu);
	snprintf(old, sizeof old, "%s", c->bury);
	pthread_mutex_unlock(&c->mu);
	if (!old[0])
		return true;
	pthread_mutex_lock(&c->pubmu); /* the fence's publish (the handoff) is done */
	pthread_mutex_unlock(&c->pubmu);
	gw_member_row *rows = NULL;
	size_t n = 0;
	int64_t now = 0;
	gw_err e = gw_store_member_list(c->store, &rows, &n, &now);
	if (e != GW_OK)
		return false;
	for (size_t i = 0; i < n && e == GW_OK; i++)
		if (!strcmp(rows[i].id, old) && live(&rows[i])) {
			e = gw_store_member_declare_dead(c->store, old, rows[i].heartbeat_ms);
			if (e == GW_OK)
				GW_INFO(
				    "cluster: marked its fenced incarnation %s dead (its leases "
				    "are free)",
				    old);
			else if (e == GW_ECONFLICT)
				e = GW_OK; /* a peer declared it meanwhile */
		}
	gw_member_rows_free(rows, n);
	if (e != GW_OK)
		return false;
	pthread_mutex_lock(&c->mu);
	if (!strcmp(c->bury, old))
		c->bury[0] = '\0';
	pthread_mutex_unlock(&c->mu);
	return true;
}

/* try_join marks the fenced incarnation DEAD (if any), then inserts a new
 * row and makes it ACTIVE (one heartbeat). */
static void try_join(gw_cluster *c, const char *served)
{
	if (!bury(c)) {
		GW_WARN("cluster: cannot mark the fenced incarnation dead yet (retrying)");
		return;
	}
	char id[GW_MEMBER_ID_MAX + 1];
	new_id(c, id, sizeof id);
	int64_t sent = mono_ms();
	gw_err e = gw_store_member_join(c->store, id, c->advertise, served, NULL);
	if (e != GW_OK) {
		GW_WARN("cluster: cannot join as %s: %s (retrying)", id, gw_strerror(e));
		return;
	}
	pthread_mutex_lock(&c->mu);
	snprintf(c->id, sizeof c->id, "%s", id);
	c->state = M_JOINING;
	uint64_t gen = c->gen;
	pthread_mutex_unlock(&c->mu);
	atomic_store(&c->lease_from_ms, sent);
	bool alive = false;
	sent = mono_ms();
	e = gw_store_member_heartbeat(c->store, id, GW_MEMBER_ACTIVE, served, 0, &alive, NULL);
	pthread_mutex_lock(&c->mu);
	bool mine = c->gen == gen && c->state == M_JOINING;
	if (mine && e == GW_OK && alive)
		c->state = M_ACTIVE;
	pthread_mutex_unlock(&c->mu);
	if (!mine || e != GW_OK || !alive)
		return; /* the next beat, or the fence, takes it from here */
	atomic_store(&c->lease_from_ms, sent);
	GW_INFO("cluster: member %s joined (%s)", id, c->advertise);
	pthread_mutex_lock(&c->pubmu);
	if (c->o.on_joined)
		c->o.on_joined(c->o.user, id);
	pthread_mutex_unlock(&c->pubmu);
}

/* beat writes one heartbeat of the current incarnation. true: written. */
static bool beat(gw_cluster *c, const char *served)
{
	pthread_mutex_lock(&c->mu);
	char id[GW_MEMBER_ID_MAX + 1];
	snprintf(id, sizeof id, "%s", c->id);
	uint64_t gen = c->gen;
	int status = c->leave ? GW_MEMBER_LEAVING : GW_MEMBER_ACTIVE;
	uint64_t vv = c->version;
	pthread_mutex_unlock(&c->mu);
	bool alive = false;
	int64_t sent = mono_ms();
	gw_err e = gw_store_member_heartbeat(c->store, id, status, served, vv, &alive, NULL);
	if (e != GW_OK) {
		GW_WARN("cluster: heartbeat of %s failed: %s", id, gw_strerror(e));
		return false;
	}
	if (!alive) {
		pthread_mutex_lock(&c->pubmu);
		fence(c, gen, "its row was declared dead by a peer (or removed)");
		pthread_mutex_unlock(&c->pubmu);
		return false;
	}
	bool joined = false;
	pthread_mutex_lock(&c->mu);
	if (c->gen == gen && c->state != M_OUT) {
		/* A lease never moves back: a late answer of an older beat
		 * must not shorten it, nor extend a fenced incarnation. */
		if (atomic_load(&c->lease_from_ms) < sent)
			atomic_store(&c->lease_from_ms, sent);
		if (c->state == M_JOINING && status == GW_MEMBER_ACTIVE) {
			c->state = M_ACTIVE;
			joined = true;
		}
		if (status == GW_MEMBER_LEAVING) {
			c->state = M_LEAVING;
			c->leave_written = true;
			pthread_cond_broadcast(&c->cv);
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (joined) {
		GW_INFO("cluster: member %s joined (%s)", id, c->advertise);
		pthread_mutex_lock(&c->pubmu);
		if (c->o.on_joined)
			c->o.on_joined(c->o.user, id);
		pthread_mutex_unlock(&c->pubmu);
	}
	return true;
}

/* suspect_and_declare: every other live member whose heartbeat is older
 * than the timeout on the database's clock, and that does not answer a
 * probe either, is declared dead (one conditional update each). */
static void suspect_and_declare(gw_cluster *c, const gw_member_row *rows, size_t n, int64_t now,
                                const char *self)
{
	for (size_t i = 0; i < n; i++) {
		const gw_member_row *r = &rows[i];
		if (!live(r) || strcmp(r->id, self) == 0)
			continue;
		int64_t age = now - r->heartbeat_ms;
		if (age <= c->o.member_timeout_ms)
			continue;
		gw_member m = {.id = r->id, .address = r->address, .status = r->status};
		if (c->o.probe && c->o.probe(c->o.user, &m, c->o.heartbeat_ms)) {
			GW_WARN("cluster: member %s has not heartbeated for %lld ms but answers "
			        "its probe: not declared",
			        r->id, (long long)age);
			continue;
		}
		gw_err e = gw_store_member_declare_dead(c->store, r->id, r->heartbeat_ms);
		if (e == GW_OK)
			GW_INFO("cluster: declared member %s dead (no heartbeat for %lld ms, no "
			        "answer to its probe)",
			        r->id, (long long)age);
		else if (e != GW_ECONFLICT)
			GW_WARN("cluster: declaring %s dead failed: %s", r->id, gw_strerror(e));
	}
}

static void *member_main(void *arg)
{
	gw_cluster *c = arg;
	unsigned beats = 0;
	int64_t next = mono_ms();
	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (!c->stop && mono_ms() < next) {
			WAIT_MS(c, next - mono_ms());
			if (c->leave && !c->leave_written && c->state != M_OUT)
				break; /* write LEAVING now */
		}
		bool stop = c->stop;
		mstate st = c->state;
		bool leave = c->leave;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
		next = mono_ms() + c->o.heartbeat_ms;

		char *served = NULL;
		if (c->o.served && c->o.served(c->o.user, &served) != GW_OK)
			served = NULL;
		const char *sv = served ? served : "";
		if (strlen(sv) > GW_MEMBER_TEXT_MAX)
			sv = ""; /* cannot happen with sane names; never a failing heartbeat */
		bool ok;
		if (st == M_OUT) {
			if (leave) {
				free(served);
				continue; /* leaving: no rejoin */
			}
			try_join(c, sv);
			pthread_mutex_lock(&c->mu);
			ok = c->state == M_ACTIVE;
			pthread_mutex_unlock(&c->mu);
		} else {
			ok = beat(c, sv);
		}
		free(served);

		gw_member_row *rows = NULL;
		size_t n = 0;
		int64_t now = 0;
		if (gw_store_member_list(c->store, &rows, &n, &now) != GW_OK)
			continue;
		pthread_mutex_lock(&c->pubmu);
		publish(c, rows, n);
		pthread_mutex_unlock(&c->pubmu);
		pthread_mutex_lock(&c->mu);
		char self[GW_MEMBER_ID_MAX + 1];
		snprintf(self, sizeof self, "%s", c->id);
		bool serving = c->state == M_ACTIVE || c->state == M_LEAVING;
		pthread_mutex_unlock(&c->mu);
		/* Only a member that just reached the database judges others:
		 * a member cut off from it may be the one in the wrong. */
		if (ok && serving && gw_cluster_serving(c))
			suspect_and_declare(c, rows, n, now, self);
		gw_member_rows_free(rows, n);
		if (++beats % GC_EVERY_BEATS == 0) {
			int64_t after = c->o.member_timeout_ms * 10;
			if (after < GC_AFTER_MIN_MS)
				after = GC_AFTER_MIN_MS;
			uint64_t removed = 0;
			if (gw_store_member_gc(c->store, after, &removed) == GW_OK && removed)
				GW_INFO("cluster: collected %llu dead member rows",
				        (unsigned long long)removed);
		}
	}
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

gw_err gw_cluster_create(gw_cluster **out, gw_store *store, const gw_cluster_opts *o)
{
	if (!out || !store || !o || !o->advertise || !o->advertise[0] ||
	    strlen(o->advertise) > 200 || o->heartbeat_ms <= 0 ||
	    o->heartbeat_ms * 2 >= o->member_timeout_ms)
		return GW_EINVAL;
	if (!gw_store_cluster_ok(store))
		return GW_ECONFIG;
	gw_cluster *c = calloc(1, sizeof *c);
	if (!c)
		return GW_ENOMEM;
	c->o = *o;
	c->advertise = strdup(o->advertise);
	c->view = view_build(NULL, 0, NULL, 0);
	if (!c->advertise || !c->view) {
		free(c->advertise);
		free(c->view);
		free(c);
		return GW_ENOMEM;
	}
	c->o.advertise = c->advertise;
	c->fence_after_ms = gw_cluster_fence_after_ms(o->heartbeat_ms, o->member_timeout_ms);
	c->store = store;
	c->state = M_OUT;
	atomic_init(&c->lease_from_ms, 0);
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->pubmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = c;
	return GW_OK;
}

gw_err gw_cluster_start(gw_cluster *c)
{
	if (pthread_create(&c->thread, NULL, member_main, c) != 0)
		return GW_ENOMEM;
	if (pthread_create(&c->clock, NULL, clock_main, c) != 0) {
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->thread, NULL);
		return GW_ENOMEM;
	}
	c->started = true;
	return GW_OK;
}

bool gw_cluster_leave(gw_cluster *c, int64_t timeout_ms)
{
	int64_t until = mono_ms() + timeout_ms;
	pthread_mutex_lock(&c->mu);
	c->leave = true;
	pthread_cond_broadcast(&c->cv);
	while (c->started && !c->leave_written && c->state != M_OUT && mono_ms() < until) {
		WAIT_MS(c, until - mono_ms());
	}
	bool ok = c->leave_written;
	char id[GW_MEMBER_ID_MAX + 1];
	snprintf(id, sizeof id, "%s", c->id);
	pthread_mutex_unlock(&c->mu);
	if (ok)
		GW_INFO("cluster: member %s is leaving", id);
	return ok;
}

void gw_cluster_destroy(gw_cluster *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (c->started) {
		pthread_join(c->thread, NULL);
		pthread_join(c->clock, NULL);
	}
	if (c->state != M_OUT && c->id[0]) {
		gw_err e = gw_store_member_remove(c->store, c->id);
		if (e == GW_OK)
			GW_INFO("cluster: member %s left", c->id);
		else
			GW_WARN("cluster: could not remove member %s: %s (peers will declare it "
			        "dead)",
			        c->id, gw_strerror(e));
	}
	atomic_store(&c->lease_from_ms, 0);
	gw_store_close(c->store);
	gw_view_rele(&c->view->v);
	free(c->last_rows_sig);
	free(c->advertise);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->pubmu);
	free(c);
}
