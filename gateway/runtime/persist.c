/* persist.c - one thread, a FIFO of jobs, group-committed saves, batched
 * activations, batched deletes of delivered scheduled invocations, and the
 * background key rotation when the queue is idle.
 *
 * Two queues, by class (urgent_kind): URGENT (activations, reads,
 * listings, instance records and lookups: a caller waits on them, and a new
 * instance's record precedes its activation) and BULK (everything else). One
 * drain takes both:
 *
 *   URGENT jobs ---------- run first, in arrival order; JOB_ACTIVATE jobs
 *                          form activation groups, each one
 *                          gw_store_activate_batch (run when full, when an
 *                          activation of an actor already in it arrives,
 *                          before a read of an actor in it, and at the end)
 *   JOB_SAVE ------------- group-committed in batches of max_batch
 *   JOB_SCHED_DONE ------- into the pending deletes (below)
 *   other BULK jobs ------ run one by one, in arrival order
 *   between two save batches and two bulk jobs: the URGENT jobs queued
 *   meanwhile run (so a fan-out of instance records never starves them)
 *
 * So callbacks run in arrival order within a class. The runtime never has
 * an activation and a save of one actor in flight at once, and reads see
 * committed revisions, so the reordering across classes is invisible to it.
 *
 * Scheduled invocations, on the persist thread:
 *
 *   claim pass --- flush pending deletes, claim <= SCHED_CLAIM_MAX due rows,
 *                  hand each to sched_fn (the runtime delivers it)
 *   JOB_SCHED_DONE --- taken off the queue into the pending deletes
 *   pending deletes --- flushed as one gw_store_schedule_done_batch when:
 *                  a claim pass starts, GW_SCHED_DONE_CHUNK are pending, the
 *                  oldest waited DONE_MAX_WAIT_MS, the thread would go idle,
 *                  or it stops
 *
 * Invariant (durable.c relies on it): a delete's callback runs on this
 * thread after the delete ran, and claim passes run on this thread, so a
 * pass never returns a row whose delete's callback already ran (the row is
 * gone); the runtime keeps a delivered id in flight until that callback.
 * A pass runs the pending deletes first, so it claims few rows only to
 * skip them; it runs when the queue is empty or, under a queue that never
 * empties, between two drains once it is due. */
#include "persist.h"
#include "condwait.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gm.h"
#include "log.h"
#include "wire.h"

enum {
	JOB_ACTIVATE,
	JOB_READ,
	JOB_LIST,
	JOB_SAVE,
	JOB_INST_PUT,
	JOB_INST_GET,
	JOB_SCHED_PUT,
	JOB_SCHED_DONE,
	JOB_EFFECTS,
	JOB_CALL,
	JOB_RELEASE
};

/* The urgent class: what a caller waits for and that costs one read
 * (activations, reads, listings). It has its own queue and runs ahead of
 * the bulk class (saves, instance records, schedules, deletes, listings
 * of effects), also between two bulk jobs of one drain, so a tenant's
 * fan-out (thousands of instance records and saves) never makes another
 * tenant's activation or GetState wait for more than one bulk job or one
 * save batch. The runtime never has an activation and a save of one actor
 * in flight at once, and a read sees a committed revision either way, so
 * running these first changes nothing an actor can observe. */
/* Instance records are urgent too: a new instance's record must commit
 * before its activation (arrival order), or a call answered before the
 * record commits is forgotten by a crash, and a client creating instances
 * faster than records commit would grow the bulk queue without bound. */
static bool urgent_kind(int kind)
{
	return kind == JOB_ACTIVATE || kind == JOB_READ || kind == JOB_LIST ||
	       kind == JOB_INST_PUT || kind == JOB_INST_GET;
}

#define EFFECTS_PAGE 256

#define LIST_MAX 1024
/* Rows per claim transaction: enough that a burst of due rows costs one
 * fsync per thousand, few enough that a pass stays short (store.h caps a
 * claim at 4096). */
#define SCHED_CLAIM_MAX 1024
/* How long a delivered row's delete may wait for company while the queue
 * stays busy (it is flushed at once when the thread goes idle). Far below
 * any lease. */
#define DONE_MAX_WAIT_MS 100
/* Releases of leases that failed (the store unreachable) are tried again
 * this often, at most RELEASE_RETRY_MAX of them (beyond: dropped with an
 * ERROR; the member's leases free themselves when it fences and rejoins,
 * which marks its old row DEAD). */
#define RELEASE_RETRY_MS  500
#define RELEASE_RETRY_MAX 65536

struct gw_persist_job {
	gw_persist_job *next;
	int kind;
	void *arg;
	union {
		gw_load_cb load;
		gw_save_cb save;
		gw_list_cb list;
		gw_inst_cb inst;
		gw_keys_cb keys;
	} cb;
	uint8_t *data;                            /* JOB_SCHED_PUT: owned */
	void (*call)(void *arg, gw_store *store); /* JOB_CALL */
	size_t len;
	int64_t due_ms;
	gw_blob *state;    /* save: owned reference */
	uint64_t expected; /* save: revision replaced; read: revision wanted */
	uint64_t epoch;    /* save */
	int effects;       /* save: the state carries undelivered effects */
	char *type_url;    /* owned */
	char *system;      /* owned; name follows in the same allocation */
	char *name;
	int64_t t_sub_ns; /* metrics: when it was queued (0 without) */
};

struct gw_persist {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	gw_persist_job *head, *tail;   /* bulk class */
	gw_persist_job *uhead, *utail; /* urgent class (urgent_kind) */
	bool stopping;
	bool stopped;       /* the thread has ended (gw_persist_stop): jobs are refused */
	bool idle;          /* the thread waits for work: no job runs, no callback */
	bool sched_off;     /* gw_persist_stop_scheduler: no claim pass any more */
	pthread_cond_t dcv; /* idle changed (gw_persist_drain waits on it) */
	pthread_t thread;
	gw_store *store; /* borrowed */
	gw_persist_opts o;
	gw_persist_stats stats; /* guarded by mu */
	/* scheduler (persist thread only, except sched_next_ms: mu) */
	gw_sched_fn sched_fn;
	void *sched_user;
	char sched_owner[64];
	int64_t sched_lease_ms;
	int64_t sched_next_ms; /* wall ms of the next claim pass; INT64_MAX = none */
	/* pending deletes (persist thread only): JOB_SCHED_DONE jobs taken off
	 * the queue, not run yet */
	gw_persist_job *done_head, **done_tail;
	size_t ndone;
	int64_t done_since_ms; /* wall ms the oldest was taken */
	/* lease mode: the member (under mu; "" = none) and the releases to try
	 * again (persist thread only) */
	char member[GW_MEMBER_ID_MAX + 1];
	gw_persist_job *rel_retry;
	size_t nrel_retry;
	int64_t rel_retry_ms; /* wall ms of the next try */
	struct gw_gm *gm;     /* borrowed (gw_persist_set_metrics); NULL = none */
	size_t queued[2];     /* jobs in the queues, bulk and urgent (mu) */
};

static void job_free(gw_persist_job *j)
{
	free(j->data);
	gw_blob_rele(j->state);
	free(j->type_url);
	free(j->system);
	free(j);
}

/* load_done completes an activation or a read: on GW_OK it hands the
 * callback the state of *l (then freed); epoch as gw_load_cb says. */
static void load_done(gw_persist_job *j, gw_err err, gw_loaded *l, uint64_t epoch)
{
	if (err != GW_OK) {
		j->cb.load(j->arg, err, NULL, 0, epoch);
		return;
	}
	gw_blob *b = gw_blob_create(l->type_url, l->data, l->len);
	uint64_t rev = l->revision;
	gw_loaded_fini(l);
	if (!b)
		j->cb.load(j->arg, GW_ENOMEM, NULL, 0, epoch);
	else
		j->cb.load(j->arg, GW_OK, b, rev, epoch);
}

static void run_read(gw_persist *p, gw_persist_job *j)
{
	gw_actor_key k = {j->system, j->name};
	gw_loaded l;
	int64_t t0 = gw_gm_now_ns(p->gm);
	gw_err err = gw_store_load_revision(p->store, &k, j->expected, &l);
	gw_gm_store(p->gm, GW_GM_OP_READ, 0, gw_gm_now_ns(p->gm) - t0,
	            err != GW_OK && err != GW_ENOTFOUND);
	/* reads report the epoch the revision was written with */
	load_done(j, err, &l, err == GW_OK ? l.epoch : 0);
}

/* run_activations activates v[0..n) (n <= GW_STORE_ACTIVATE_MAX, distinct
 * actors) with one gw_store_activate_batch and calls each job's callback,
 * in order, with its own result: as gw_store_acquire then gw_store_load
 * per job would have. */
static void run_activations(gw_persist *p, gw_persist_job **v, size_t n)
{
	gw_actor_key k[GW_STORE_ACTIVATE_MAX] = {{0}};
	uint64_t epochs[GW_STORE_ACTIVATE_MAX];
	gw_loaded out[GW_STORE_ACTIVATE_MAX];
	gw_err res[GW_STORE_ACTIVATE_MAX];
	for (size_t i = 0; i < n; i++)
		k[i] = (gw_actor_key){v[i]->system, v[i]->name};
	gw_err err;
	size_t refused = 0;
	int64_t t0 = gw_gm_now_ns(p->gm);
	if (p->o.lease) {
		char member[GW_MEMBER_ID_MAX + 1];
		pthread_mutex_lock(&p->mu);
		memcpy(member, p->member, sizeof member);
		pthread_mutex_unlock(&p->mu);
		if (!member[0]) {
			/* Not a member (not joined yet, or fenced): no lease. */
			err = GW_OK;
			for (size_t i = 0; i < n; i++)
				res[i] = GW_EOWNED;
		} else {
			err =
			    gw_store_lease_activate(p->store, k, n, member, epochs, NULL, out, res);
		}
		for (size_t i = 0; !err && i < n; i++)
			refused += res[i] == GW_EOWNED;
	} else {
		err = gw_store_activate_batch(p->store, k, n, epochs, out, res);
	}
	int64_t t1 = gw_gm_now_ns(p->gm);
	gw_gm_store(p->gm, GW_GM_OP_ACTIVATE, n, t1 - t0, err != GW_OK);
	for (size_t i = 0; p->gm && i < n; i++)
		gw_gm_activation_latency(p->gm, t1 - v[i]->t_sub_ns);
	if (err)
		GW_WARN("statestore: batch of %zu activations failed: %s", n, gw_strerror(err));
	pthread_mutex_lock(&p->mu);
	p->stats.loads += n;
	p->stats.activate_batches++;
	p->stats.lease_refused += refused;
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < n; i++)
		load_done(v[i], err ? err : res[i], &out[i],
		          err || res[i] == GW_EOWNED ? 0 : epochs[i]);
}

/* ---- lease releases (lease mode) ------------------------------------------------ */

/* rel_retry_add keeps a release that failed for the next try (bounded). */
static void rel_retry_add(gw_persist *p, gw_persist_job *j)
{
	if (p->nrel_retry >= RELEASE_RETRY_MAX) {
		GW_ERROR("statestore: lease of %s/%s not released (%d releases already wait "
		         "for the store); it frees itself when this member fences",
		         j->system, j->name, RELEASE_RETRY_MAX);
		job_free(j);
		return;
	}
	j->next = p->rel_retry;
	p->rel_retry = j;
	p->nrel_retry++;
	p->rel_retry_ms = spawn_wall_ms() + RELEASE_RETRY_MS;
}

/* rel_chunk releases v[0..n) (distinct keys) in one statement. */
static void rel_chunk(gw_persist *p, const char *member, gw_persist_job **v, size_t n)
{
	gw_actor_key k[GW_STORE_ACTIVATE_MAX];
	uint64_t e[GW_STORE_ACTIVATE_MAX], released = 0;
	for (size_t i = 0; i < n; i++) {
		k[i] = (gw_actor_key){v[i]->system, v[i]->name};
		e[i] = v[i]->epoch;
	}
	gw_err err = gw_store_lease_release(p->store, k, e, n, member, &released);
	bool retry = err == GW_EIO || err == GW_EUNAVAIL || err == GW_ENOMEM;
	if (err)
		GW_WARN("statestore: release of %zu leases failed: %s%s", n, gw_strerror(err),
		        retry ? "; retrying" : "");
	pthread_mutex_lock(&p->mu);
	p->stats.lease_released += released;
	if (retry)
		p->stats.release_retries += n;
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < n; i++) {
		if (retry)
			rel_retry_add(p, v[i]);
		else
			job_free(v[i]);
	}
}

/* rel_run releases the leases of the list (JOB_RELEASE jobs, owned), in
 * chunks of distinct keys: a key met again starts the next chunk, so two
 * releases of one actor run in their order. With no member (fenced or
 * not joined) there is nothing this member could release. */
static void rel_run(gw_persist *p, gw_persist_job *list)
{
	char member[GW_MEMBER_ID_MAX + 1];
	pthread_mutex_lock(&p->mu);
	memcpy(member, p->member, sizeof member);
	pthread_mutex_unlock(&p->mu);
	gw_persist_job *v[GW_STORE_ACTIVATE_MAX];
	size_t n = 0;
	while (list) {
		gw_persist_job *j = list;
		list = j->next;
		j->next = NULL;
		if (!member[0]) {
			job_free(j);
			continue;
		}
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = !strcmp(v[i]->name, j->name) && !strcmp(v[i]->system, j->system);
		if (dup || n == GW_STORE_ACTIVATE_MAX) {
			rel_chunk(p, member, v, n);
			n = 0;
		}
		v[n++] = j;
	}
	if (n)
		rel_chunk(p, member, v, n);
}

/* rel_retry_run tries the releases that failed once more (their list is
 * reversed: the order of one actor's releases no longer matters once both
 * failed, each names its own epoch). */
static void rel_retry_run(gw_persist *p)
{
	gw_persist_job *list = p->rel_retry;
	p->rel_retry = NULL;
	p->nrel_retry = 0;
	rel_run(p, list);
}

/* An activation group: the JOB_ACTIVATE jobs of one run of the drained
 * queue, not run yet (persist thread only). */
typedef struct act_group {
	gw_persist_job *v[GW_STORE_ACTIVATE_MAX];
	size_t n, max;
} act_group;

static void act_flush(gw_persist *p, act_group *g)
{
	if (g->n == 0)
		return;
	run_activations(p, g->v, g->n);
	for (size_t i = 0; i < g->n; i++)
		job_free(g->v[i]);
	g->n = 0;
}

/* act_holds tells whether the group has an activation of j's actor. */
static bool act_holds(const act_group *g, const gw_persist_job *j)
{
	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->v[i]->name, j->name) && !strcmp(g->v[i]->system, j->system))
			return true;
	return false;
}

/* act_add adds j to the group, first running the group when it is full or
 * already holds j's actor (a batch takes each actor once; the second
 * activation then runs after the first, as in the queue). */
static void act_add(gw_persist *p, act_group *g, gw_persist_job *j)
{
	if (act_holds(g, j) || g->n == g->max)
		act_flush(p, g);
	g->v[g->n++] = j;
}

static void run_list(gw_persist *p, gw_persist_job *j)
{
	gw_actor_key k = {j->system, j->name};
	uint64_t *revs = malloc(LIST_MAX * sizeof *revs);
	size_t n = 0;
	int64_t t0 = gw_gm_now_ns(p->gm);
	gw_err err = revs ? gw_store_list_revisions(p->store, &k, revs, LIST_MAX, &n) : GW_ENOMEM;
	gw_gm_store(p->gm, GW_GM_OP_LIST, 0, gw_gm_now_ns(p->gm) - t0,
	            err != GW_OK && err != GW_ENOTFOUND);
	j->cb.list(j->arg, err, revs, err ? 0 : n);
	free(revs);
}

static void run_saves(gw_persist *p, gw_persist_job **v, size_t n)
{
	gw_state *st = calloc(n, sizeof *st);
	gw_err *res = calloc(n, sizeof *res);
	gw_err err;
	if (!st || !res) {
		err = GW_ENOMEM;
		for (size_t i = 0; i < n; i++)
			v[i]->cb.save(v[i]->arg, err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		st[i].key.system = v[i]->system;
		st[i].key.name = v[i]->name;
		st[i].type_url = v[i]->type_url;
		st[i].data = gw_blob_value(v[i]->state);
		st[i].len = v[i]->state->len;
		st[i].expected = v[i]->expected;
		st[i].epoch = v[i]->epoch;
		st[i].effects = v[i]->effects;
	}
	int64_t t0 = gw_gm_now_ns(p->gm);
	err = gw_store_save_batch(p->store, st, n, res);
	gw_gm_store(p->gm, GW_GM_OP_SAVE, n, gw_gm_now_ns(p->gm) - t0, err != GW_OK);
	pthread_mutex_lock(&p->mu);
	p->stats.batches++;
	p->stats.saves += n;
	if (err)
		p->stats.save_errors += n;
	pthread_mutex_unlock(&p->mu);
	if (err)
		GW_WARN("statestore: batch of %zu saves failed: %s", n, gw_strerror(err));
	for (size_t i = 0; i < n; i++)
		v[i]->cb.save(v[i]->arg, err ? err : res[i]);
out:
	free(st);
	free(res);
}

/* run_effects pages through the actors whose row has undelivered effects. */
static void run_effects(gw_persist *p, gw_persist_job *j)
{
	gw_actor_key *v = calloc(EFFECTS_PAGE, sizeof *v);
	char *after_sys = NULL, *after_name = NULL;
	size_t n = 0;
	gw_err err = v ? GW_OK : GW_ENOMEM;
	while (err == GW_OK) {
		gw_actor_key after = {after_sys, after_name};
		err =
		    gw_store_effects_list(p->store, after_sys ? &after : NULL, EFFECTS_PAGE, v, &n);
		if (err)
			break;
		bool last = n < EFFECTS_PAGE;
		j->cb.keys(j->arg, GW_OK, v, n, last);
		free(after_sys);
		free(after_name);
		after_sys = after_name = NULL;
		if (!last) {
			/* the cursor takes them over (owned: see gw_store_effects_list) */
			after_sys = (char *)v[n - 1].system;
			after_name = (char *)v[n - 1].name;
			v[n - 1].system = v[n - 1].name = NULL;
		}
		gw_keys_fini(v, n);
		if (last)
			break;
	}
	if (err)
		j->cb.keys(j->arg, err, NULL, 0, true);
	free(after_sys);
	free(after_name);
	free(v);
}

static void run_misc_op(gw_persist *p, gw_persist_job *j, gw_err *errp);

/* run_misc runs one bulk job (or an instance record), timed. */
static void run_misc(gw_persist *p, gw_persist_job *j)
{
	int64_t t0 = gw_gm_now_ns(p->gm);
	gw_err err = GW_OK;
	run_misc_op(p, j, &err);
	gw_gm_op op = j->kind == JOB_INST_PUT || j->kind == JOB_INST_GET ? GW_GM_OP_INSTANCE
	              : j->kind == JOB_SCHED_PUT                         ? GW_GM_OP_SCHEDULE
	                                                                 : GW_GM_OP_OTHER;
	gw_gm_store(p->gm, op, 0, gw_gm_now_ns(p->gm) - t0, err != GW_OK && err != GW_ENOTFOUND);
}

static void run_misc_op(gw_persist *p, gw_persist_job *j, gw_err *errp)
{
	gw_actor_key k = {j->system, j->name};
	gw_err err = GW_OK;
	switch (j->kind) {
	case JOB_INST_PUT:
		err = gw_store_instance_put(p->store, &k, j->type_url);
		if (j->cb.save)
			j->cb.save(j->arg, err);
		else if (err)
			GW_WARN("statestore: instance %s/%s not recorded: %s", j->system, j->name,
			        gw_strerror(err));
		break;
	case JOB_INST_GET: {
		char *parent = NULL;
		err = gw_store_instance_get(p->store, &k, &parent);
		j->cb.inst(j->arg, err, err ? NULL : parent);
		free(parent);
		break;
	}
	case JOB_SCHED_PUT:
		err = gw_store_schedule_put_sys(p->store, j->name, j->system[0] ? j->system : NULL,
		                                j->due_ms, j->data, j->len);
		if (err == GW_OK) {
			pthread_mutex_lock(&p->mu);
			if (j->due_ms < p->sched_next_ms)
				p->sched_next_ms = j->due_ms;
			pthread_mutex_unlock(&p->mu);
		}
		j->cb.save(j->arg, err);
		break;
	case JOB_EFFECTS:
		run_effects(p, j);
		break;
	case JOB_CALL:
		j->call(j->arg, p->store);
		break;
	}
	*errp = err;
}

static void done_failed(const char *id, gw_err err)
{
	GW_WARN("statestore: delivered scheduled invocation %s not deleted: %s (it may be "
	        "delivered again after its lease)",
	        id, gw_strerror(err));
}

/* done_take moves a JOB_SCHED_DONE job into the pending deletes. */
static void done_take(gw_persist *p, gw_persist_job *j)
{
	if (p->ndone++ == 0) {
		p->done_tail = &p->done_head;
		p->done_since_ms = spawn_wall_ms();
	}
	*p->done_tail = j;
	p->done_tail = &j->next;
}

/* done_flush deletes the pending delivered rows with one
 * gw_store_schedule_done_batch: one transaction (one fsync) for the group
 * instead of one per row. A batch the store refuses as a whole (an id it
 * finds invalid) or that cannot be assembled is retried row by row, so one
 * bad id never keeps the others from being deleted. */
static void done_flush(gw_persist *p)
{
	gw_persist_job *list = p->done_head;
	size_t n = p->ndone;
	if (n == 0)
		return;
	p->done_head = NULL;
	p->ndone = 0;
	const char **ids = malloc(n * sizeof *ids);
	gw_err err = GW_ENOMEM;
	if (ids) {
		gw_persist_job *j = list;
		for (size_t i = 0; i < n; i++, j = j->next)
			ids[i] = j->name; /* the list holds exactly n */
		int64_t t0 = gw_gm_now_ns(p->gm);
		err = gw_store_schedule_done_batch(p->store, ids, n);
		gw_gm_store(p->gm, GW_GM_OP_SCHEDULE, n, gw_gm_now_ns(p->gm) - t0, err != GW_OK);
		free(ids);
	}
	bool one_by_one = err == GW_EINVAL || err == GW_ENOMEM;
	if (err != GW_OK && !one_by_one)
		GW_WARN("statestore: %zu delivered scheduled invocations not deleted: %s (they may "
		        "be delivered again after their lease)",
		        n, gw_strerror(err));
	while (list) {
		gw_persist_job *j = list;
		list = j->next;
		gw_err e = err;
		if (one_by_one && (e = gw_store_schedule_done(p->store, j->name)) != GW_OK)
			done_failed(j->name, e);
		if (j->cb.save)
			j->cb.save(j->arg, e);
		job_free(j);
	}
}

/* target_system: the system a stored InvocationRequest targets (copied into
 * out, cap bytes; "" when it names none or does not parse). */
static void target_system(const uint8_t *data, size_t len, char *out, size_t cap)
{
	out[0] = '\0';
	Spawn__InvocationRequest *rq = spawn__invocation_request__unpack(NULL, len, data);
	if (rq && rq->system && rq->system->name)
		snprintf(out, cap, "%s", rq->system->name);
	if (rq)
		spawn__invocation_request__free_unpacked(rq, NULL);
}

/* sched_sealed_for_target: a row sealed under a system's data key must
 * target that system; one that targets another (written by someone holding
 * only that system's key) is never delivered: it stays leased, logged, and
 * comes back when its lease expires. Rows of earlier gateways (no system)
 * pass. */
static bool sched_sealed_for_target(const gw_sched *r)
{
	if (!r->system)
		return true;
	char want[GW_SCHED_SYSTEM_MAX + 1];
	target_system(r->data, r->len, want, sizeof want);
	if (!strcmp(want, r->system))
		return true;
	GW_ERROR("scheduled invocation %s was sealed for system '%s' but targets '%s': not "
	         "delivered",
	         r->id, r->system, want);
	return false;
}

/* sched_pass claims due scheduled invocations and hands them over; sets
 * the time of the next pass. */
static void sched_pass(gw_persist *p)
{
	done_flush(p); /* the invariant at the top of this file */
	int64_t now = spawn_wall_ms();
	gw_sched *v = NULL;
	size_t n = 0;
	int64_t t0 = gw_gm_now_ns(p->gm);
	gw_err err = gw_store_schedule_claim(p->store, now, p->sched_owner, p->sched_lease_ms,
	                                     SCHED_CLAIM_MAX, &v, &n);
	gw_gm_store(p->gm, GW_GM_OP_SCHEDULE, err ? 0 : n, gw_gm_now_ns(p->gm) - t0, err != GW_OK);
	int64_t next = now + 5000; /* expired leases, at the latest */
	if (err) {
		GW_WARN("scheduler: claim failed: %s; retrying", gw_strerror(err));
		next = now + 1000;
	} else {
		for (size_t i = 0; i < n; i++) {
			gw_gm_schedule_lateness(p->gm, spawn_wall_ms() - v[i].due_ms);
			if (sched_sealed_for_target(&v[i]))
				p->sched_fn(p->sched_user, v[i].id, v[i].data, v[i].len);
		}
		pthread_mutex_lock(&p->mu);
		p->stats.scheduled_delivered += n;
		pthread_mutex_unlock(&p->mu);
		gw_sched_free(v, n);
		int64_t due;
		if (n == SCHED_CLAIM_MAX)
			next = now; /* more are due */
		else if (gw_store_schedule_next_due(p->store, &due) == GW_OK && due < next)
			next = due;
	}
	pthread_mutex_lock(&p->mu);
	/* a put meanwhile may have asked for an earlier pass */
	if (next < p->sched_next_ms || p->sched_next_ms <= now)
		p->sched_next_ms = next;
	pthread_mutex_unlock(&p->mu);
}

/* rotate_once runs one rotation step; returns true while there is more. */
static bool rotate_once(gw_persist *p)
{
	gw_rotation r;
	pthread_mutex_lock(&p->mu);
	r = p->stats.rotation;
	pthread_mutex_unlock(&p->mu);
	gw_err err = gw_store_rotate_step(p->store, p->o.rotate_step, &r);
	pthread_mutex_lock(&p->mu);
	if (err == GW_OK)
		p->stats.rotation = r;
	bool more = err == GW_OK && !r.done;
	p->stats.rotating = more || err != GW_OK;
	pthread_mutex_unlock(&p->mu);
	if (err != GW_OK) {
		GW_WARN("key rotation: step failed (%s); retrying", gw_strerror(err));
		return true;
	}
	if (r.done)
		GW_INFO(
		    "key rotation: done: %llu rows re-encrypted, %llu unreadable left as they are",
		    (unsigned long long)r.rewritten, (unsigned long long)r.failed);
	else if (r.rewritten % (p->o.rotate_step * 100) < p->o.rotate_step)
		GW_INFO("key rotation: %llu rows re-encrypted, about %llu to go",
		        (unsigned long long)r.rewritten, (unsigned long long)r.remaining);
	return more;
}

/* run_urgent runs a list of urgent jobs in arrival order; activations
 * share gw_store_activate_batch calls of up to GW_STORE_ACTIVATE_MAX, and a
 * read or listing of an actor in the pending group runs that group first,
 * so each actor's jobs keep their arrival order. */
static void run_urgent(gw_persist *p, gw_persist_job *list)
{
	act_group acts = {.n = 0,
	                  .max = p->o.max_batch < GW_STORE_ACTIVATE_MAX ? p->o.max_batch
	                                                                : GW_STORE_ACTIVATE_MAX};
	while (list) {
		gw_persist_job *j = list;
		list = j->next;
		j->next = NULL;
		if (j->kind == JOB_ACTIVATE) {
			act_add(p, &acts, j);
			continue;
		}
		if (act_holds(&acts, j))
			act_flush(p, &acts);
		if (j->kind == JOB_INST_PUT || j->kind == JOB_INST_GET) {
			run_misc(p, j);
			job_free(j);
			continue;
		}
		if (j->kind == JOB_LIST)
			run_list(p, j);
		else
			run_read(p, j);
		pthread_mutex_lock(&p->mu);
		p->stats.loads++;
		pthread_mutex_unlock(&p->mu);
		job_free(j);
	}
	act_flush(p, &acts);
}

/* urgent_between runs the urgent jobs queued while bulk work runs. */
static void urgent_between(gw_persist *p)
{
	pthread_mutex_lock(&p->mu);
	gw_persist_job *u = p->uhead;
	p->uhead = p->utail = NULL;
	p->queued[1] = 0;
	pthread_mutex_unlock(&p->mu);
	if (u)
		run_urgent(p, u);
}

/* sched_on: the scheduler is set and not stopped (under mu). */
static bool sched_on(const gw_persist *p)
{
	return p->sched_fn && !p->sched_off;
}

/* mark_idle: the thread is about to wait with nothing to run (under mu). */
static void mark_idle(gw_persist *p)
{
	p->idle = true;
	pthread_cond_broadcast(&p->dcv);
}

static void *persist_main(void *arg)
{
	gw_persist *p = arg;
	gw_persist_job **batch = calloc(p->o.max_batch, sizeof *batch);
	if (!batch)
		abort(); /* fixed-size start-up allocation */
	int64_t rotate_backoff = 0;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		bool sched_due = false, idle = false, rel_due = false;
		while (!p->head && !p->uhead && !p->stopping) {
			if (sched_on(p) && p->sched_next_ms <= spawn_wall_ms()) {
				sched_due = true;
				break;
			}
			if (p->nrel_retry > 0 && p->rel_retry_ms <= spawn_wall_ms()) {
				rel_due = true;
				break;
			}
			if (p->ndone > 0) {
				idle = true; /* nothing else to do: run the deletes now */
				break;
			}
			if ((p->nrel_retry > 0 || (sched_on(p) && p->sched_next_ms != INT64_MAX)) &&
			    !p->stats.rotating) {
				/* Sleep until the next scheduled invocation or release
				 * retry (or a job). */
				int64_t at = sched_on(p) ? p->sched_next_ms : INT64_MAX;
				if (p->nrel_retry > 0 && p->rel_retry_ms < at)
					at = p->rel_retry_ms;
				int64_t ms = at - spawn_wall_ms();
				mark_idle(p);
				gw_cond_wait_ms(&p->cv, &p->mu, ms);
				continue;
			}
			if (p->stats.rotating) {
				/* Idle: rotate a step, unless a failed step asks for a pause. */
				if (rotate_backoff == 0)
					break;
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += 1;
				mark_idle(p);
				pthread_cond_timedwait(&p->cv, &p->mu, &ts);
				rotate_backoff = 0;
				continue;
			}
			mark_idle(p);
			pthread_cond_wait(&p->cv, &p->mu);
		}
		p->idle = false;
		gw_persist_job *urgent = p->uhead, *list = p->head;
		p->uhead = p->utail = p->head = p->tail = NULL;
		p->queued[0] = p->queued[1] = 0;
		bool stop = p->stopping;
		bool rotating = p->stats.rotating;
		pthread_mutex_unlock(&p->mu);
		if (urgent) {
			run_urgent(p, urgent);
			if (!list)
				continue;
		}
		if (!list && stop) {
			done_flush(p);
			if (p->nrel_retry > 0)
				rel_retry_run(p); /* one last try; what fails now is dropped */
			while (p->rel_retry) {
				gw_persist_job *j = p->rel_retry;
				p->rel_retry = j->next;
				job_free(j);
			}
			p->nrel_retry = 0;
			break;
		}
		if (sched_due && !list) {
			sched_pass(p);
			continue;
		}
		if (rel_due && !list) {
			rel_retry_run(p);
			continue;
		}
		if (idle && !list) {
			done_flush(p);
			continue;
		}
		if (!list) {
			if (rotating) {
				gw_rotation before = p->stats.rotation;
				bool more = rotate_once(p);
				if (more && p->stats.rotation.rewritten == before.rewritten &&
				    p->stats.rotation.failed == before.failed)
					rotate_backoff = 1; /* no progress: pause a second */
			}
			continue;
		}
		/* The urgent class ran first (above). Then saves in batches
		 * (group commit), then the other bulk jobs in arrival order;
		 * urgent jobs that arrive meanwhile run between two batches or
		 * two jobs. Deletes of delivered scheduled invocations join the
		 * pending ones. */
		gw_persist_job *saves = NULL, **stail = &saves, *bulk = NULL, **btail = &bulk;
		gw_persist_job *rels = NULL, **rtail = &rels;
		while (list) {
			gw_persist_job *j = list;
			list = j->next;
			j->next = NULL;
			if (j->kind == JOB_SAVE) {
				*stail = j;
				stail = &j->next;
			} else if (j->kind == JOB_RELEASE) {
				*rtail = j;
				rtail = &j->next;
			} else if (j->kind == JOB_SCHED_DONE) {
				done_take(p, j);
			} else {
				*btail = j;
				btail = &j->next;
			}
		}
		while (saves) {
			urgent_between(p);
			size_t nb = 0;
			while (saves && nb < p->o.max_batch) {
				batch[nb++] = saves;
				saves = saves->next;
			}
			run_saves(p, batch, nb);
			for (size_t i = 0; i < nb; i++)
				job_free(batch[i]);
		}
		/* After the saves of this drain: a deactivation's final save
		 * commits before its lease is released. */
		if (rels)
			rel_run(p, rels);
		while (bulk) {
			urgent_between(p);
			gw_persist_job *j = bulk;
			bulk = j->next;
			run_misc(p, j);
			pthread_mutex_lock(&p->mu);
			p->stats.loads++;
			pthread_mutex_unlock(&p->mu);
			job_free(j);
		}
		/* A queue that never empties must not starve the scheduler: a
		 * due pass also runs between two drains. */
		pthread_mutex_lock(&p->mu);
		sched_due = sched_on(p) && p->sched_next_ms <= spawn_wall_ms();
		pthread_mutex_unlock(&p->mu);
		if (sched_due)
			sched_pass(p); /* runs the pending deletes first */
		else if (p->ndone >= GW_SCHED_DONE_CHUNK ||
		         (p->ndone > 0 && spawn_wall_ms() - p->done_since_ms >= DONE_MAX_WAIT_MS))
			done_flush(p);
	}
	free(batch);
	return NULL;
}

gw_err gw_persist_create(gw_persist **out, gw_store *store, const gw_persist_opts *opts)
{
	gw_persist *p = calloc(1, sizeof *p);
	if (!p)
		return GW_ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_cond_init(&p->dcv, NULL);
	p->store = store;
	if (opts)
		p->o = *opts;
	if (!p->o.max_batch)
		p->o.max_batch = 256;
	if (!p->o.rotate_step)
		p->o.rotate_step = 100;
	p->stats.rotating = p->stats.rotate_enabled = p->o.rotate;
	p->sched_next_ms = INT64_MAX;
	if (pthread_create(&p->thread, NULL, persist_main, p)) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		pthread_cond_destroy(&p->dcv);
		free(p);
		return GW_ENOMEM;
	}
	*out = p;
	return GW_OK;
}

void gw_persist_set_metrics(gw_persist *p, struct gw_gm *gm)
{
	p->gm = gm;
}

void gw_persist_queued(gw_persist *p, size_t *bulk, size_t *urgent)
{
	pthread_mutex_lock(&p->mu);
	*bulk = p->queued[0];
	*urgent = p->queued[1];
	pthread_mutex_unlock(&p->mu);
}

void gw_persist_stop_scheduler(gw_persist *p)
{
	pthread_mutex_lock(&p->mu);
	p->sched_off = true;
	pthread_mutex_unlock(&p->mu);
}

bool gw_persist_drain(gw_persist *p, int64_t timeout_ms)
{
	struct timespec ts = gw_ts_after_ms(CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&p->mu);
	p->stats.rotating = false; /* resumes at the next start (resumable) */
	pthread_cond_signal(&p->cv);
	bool drained;
	while (!(drained = p->stopped || (p->idle && !p->head && !p->uhead)))
		if (pthread_cond_timedwait(&p->dcv, &p->mu, &ts))
			break;
	drained = p->stopped || (p->idle && !p->head && !p->uhead);
	pthread_mutex_unlock(&p->mu);
	return drained;
}

void gw_persist_stop(gw_persist *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->stopped) {
		pthread_mutex_unlock(&p->mu);
		return;
	}
	p->stopping = true;
	p->stats.rotating = false;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_mutex_lock(&p->mu);
	p->stopped = true;
	pthread_mutex_unlock(&p->mu);
}

void gw_persist_destroy(gw_persist *p)
{
	if (!p)
		return;
	gw_persist_stop(p);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	pthread_cond_destroy(&p->dcv);
	free(p);
}

static gw_persist_job *job_new(int kind, const char *system, const char *name)
{
	size_t ls = strlen(system) + 1, ln = strlen(name) + 1;
	gw_persist_job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->kind = kind;
	j->system = malloc(ls + ln);
	if (!j->system) {
		free(j);
		return NULL;
	}
	memcpy(j->system, system, ls);
	j->name = j->system + ls;
	memcpy(j->name, name, ln);
	return j;
}

/* enqueue queues j; false (j untouched) once the thread has stopped. */
static bool enqueue(gw_persist *p, gw_persist_job *j)
{
	pthread_mutex_lock(&p->mu);
	if (p->stopped) {
		pthread_mutex_unlock(&p->mu);
		return false;
	}
	j->t_sub_ns = gw_gm_now_ns(p->gm);
	p->queued[urgent_kind(j->kind)]++;
	gw_persist_job **head = urgent_kind(j->kind) ? &p->uhead : &p->head;
	gw_persist_job **tail = urgent_kind(j->kind) ? &p->utail : &p->tail;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return true;
}

/* submit queues j or frees it: GW_ESHUTDOWN once the thread has stopped
 * (the callback will not run). */
static gw_err submit(gw_persist *p, gw_persist_job *j)
{
	if (enqueue(p, j))
		return GW_OK;
	job_free(j);
	return GW_ESHUTDOWN;
}

gw_err gw_persist_activate(gw_persist *p, const char *system, const char *name, gw_load_cb cb,
                           void *arg)
{
	gw_persist_job *j = job_new(JOB_ACTIVATE, system, name);
	if (!j)
		return GW_ENOMEM;
	j->cb.load = cb;
	j->arg = arg;
	return submit(p, j);
}

void gw_persist_set_member(gw_persist *p, const char *member)
{
	pthread_mutex_lock(&p->mu);
	snprintf(p->member, sizeof p->member, "%s", member ? member : "");
	pthread_mutex_unlock(&p->mu);
}

gw_err gw_persist_release(gw_persist *p, const char *system, const char *name, uint64_t epoch)
{
	if (!p->o.lease || epoch == 0)
		return GW_OK;
	gw_persist_job *j = job_new(JOB_RELEASE, system, name);
	if (!j)
		return GW_ENOMEM;
	j->epoch = epoch;
	gw_err e = submit(p, j);
	return e == GW_ESHUTDOWN ? GW_OK : e; /* stopped: the lease frees itself at the leave */
}

gw_err gw_persist_read(gw_persist *p, const char *system, const char *name, uint64_t revision,
                       gw_load_cb cb, void *arg)
{
	gw_persist_job *j = job_new(JOB_READ, system, name);
	if (!j)
		return GW_ENOMEM;
	j->expected = revision;
	j->cb.load = cb;
	j->arg = arg;
	return submit(p, j);
}

gw_err gw_persist_list(gw_persist *p, const char *system, const char *name, gw_list_cb cb,
                       void *arg)
{
	gw_persist_job *j = job_new(JOB_LIST, system, name);
	if (!j)
		return GW_ENOMEM;
	j->cb.list = cb;
	j->arg = arg;
	return submit(p, j);
}

gw_err gw_persist_effects_list(gw_persist *p, gw_keys_cb cb, void *arg)
{
	gw_persist_job *j = job_new(JOB_EFFECTS, "", "");
	if (!j)
		return GW_ENOMEM;
	j->cb.keys = cb;
	j->arg = arg;
	return submit(p, j);
}

gw_err gw_persist_save(gw_persist *p, const char *system, const char *name, const char *type_url,
                       gw_blob *state, uint64_t expected, uint64_t epoch, int effects,
                       gw_save_cb cb, void *arg)
{
	gw_persist_job *j = job_new(JOB_SAVE, system, name);
	if (!j || !(j->type_url = strdup(type_url ? type_url : ""))) {
		if (j)
			job_free(j);
		gw_blob_rele(state);
		return GW_ENOMEM;
	}
	j->state = state;
	j->expected = expected;
	j->epoch = epoch;
	j->effects = effects;
	j->cb.save = cb;
	j->arg = arg;
	return submit(p, j);
}

void gw_persist_get_stats(gw_persist *p, gw_persist_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->stats;
	pthread_mutex_unlock(&p->mu);
}

gw_err gw_persist_instance_put(gw_persist *p, const char *system, const char *name,
                               const char *parent, gw_save_cb cb, void *arg)
{
	gw_persist_job *j = job_new(JOB_INST_PUT, system, name);
	if (!j || !(j->type_url = strdup(parent))) {
		if (j)
			job_free(j);
		return GW_ENOMEM;
	}
	j->cb.save = cb;
	j->arg = arg;
	return submit(p, j);
}

gw_err gw_persist_instance_get(gw_persist *p, const char *system, const char *name, gw_inst_cb cb,
                               void *arg)
{
	gw_persist_job *j = job_new(JOB_INST_GET, system, name);
	if (!j)
		return GW_ENOMEM;
	j->cb.inst = cb;
	j->arg = arg;
	return submit(p, j);
}

void gw_persist_set_scheduler(gw_persist *p, gw_sched_fn fn, void *user, const char *owner,
                              int64_t lease_ms)
{
	pthread_mutex_lock(&p->mu);
	p->sched_fn = fn;
	p->sched_user = user;
	snprintf(p->sched_owner, sizeof p->sched_owner, "%s", owner);
	p->sched_lease_ms = lease_ms > 0 ? lease_ms : 60000;
	p->sched_next_ms = 0; /* a first pass at once: overdue ones run after start-up */
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

gw_err gw_persist_schedule(gw_persist *p, const char *id, int64_t due_ms, const uint8_t *data,
                           size_t len, gw_save_cb cb, void *arg)
{
	/* The id travels in the name slot of the job; the system slot holds the
	 * invocation's target system, whose data key seals it ("": none named,
	 * sealed under the keyring key). */
	char sys[GW_SCHED_SYSTEM_MAX + 1];
	target_system(data, len, sys, sizeof sys);
	if (strlen(sys) >= GW_SCHED_SYSTEM_MAX)
		sys[0] = '\0';
	gw_persist_job *j = job_new(JOB_SCHED_PUT, sys, id);
	if (!j || !(j->data = malloc(len ? len : 1))) {
		if (j)
			job_free(j);
		return GW_ENOMEM;
	}
	if (len)
		memcpy(j->data, data, len);
	j->len = len;
	j->due_ms = due_ms;
	j->cb.save = cb;
	j->arg = arg;
	return submit(p, j);
}

gw_err gw_persist_schedule_done(gw_persist *p, const char *id, gw_save_cb cb, void *arg)
{
	gw_persist_job *j = job_new(JOB_SCHED_DONE, "", id);
	if (!j)
		return GW_ENOMEM;
	j->cb.save = cb;
	j->arg = arg;
	return submit(p, j);
}

gw_err gw_persist_call(gw_persist *p, void (*fn)(void *arg, gw_store *store), void *arg)
{
	gw_persist_job *j = job_new(JOB_CALL, "", "");
	if (!j)
		return GW_ENOMEM;
	j->call = fn;
	j->arg = arg;
	enqueue(p, j);
	return GW_OK;
}
