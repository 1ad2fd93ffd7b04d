/* persist.c - one thread, a FIFO of jobs, group-committed saves. */
#include "persist.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum { JOB_LOAD, JOB_SAVE };

struct gw_persist_job {
	gw_persist_job *next;
	int kind;
	void *arg;
	union {
		gw_load_cb load;
		gw_save_cb save;
	} cb;
	gw_blob *state;           /* save: owned reference */
	uint64_t expected;
	char *type_url;           /* owned */
	char *system;             /* owned; name follows in the same allocation */
	char *name;
};

struct gw_persist {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	gw_persist_job *head, *tail;
	bool stopping;
	pthread_t thread;
	gw_store *store;          /* borrowed */
	size_t max_batch;
	gw_persist_stats stats;   /* guarded by mu */
};

static void job_free(gw_persist_job *j)
{
	gw_blob_rele(j->state);
	free(j->type_url);
	free(j->system);
	free(j);
}

static void run_loads(gw_persist *p, gw_persist_job *j)
{
	gw_actor_key k = {j->system, j->name};
	gw_loaded l;
	gw_err err = gw_store_load(p->store, &k, &l);
	if (err == GW_OK) {
		gw_blob *b = gw_blob_create(l.type_url, l.data, l.len);
		uint64_t rev = l.revision;
		gw_loaded_fini(&l);
		if (!b)
			j->cb.load(j->arg, GW_ENOMEM, NULL, 0);
		else
			j->cb.load(j->arg, GW_OK, b, rev);
	} else {
		j->cb.load(j->arg, err, NULL, 0);
	}
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
	}
	err = gw_store_save_batch(p->store, st, n, res);
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

static void *persist_main(void *arg)
{
	gw_persist *p = arg;
	gw_persist_job **batch = calloc(p->max_batch, sizeof *batch);
	if (!batch)
		abort(); /* fixed-size start-up allocation */
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		gw_persist_job *list = p->head;
		p->head = p->tail = NULL;
		bool stop = p->stopping;
		pthread_mutex_unlock(&p->mu);
		if (!list && stop)
			break;
		/* Loads first, one by one; then saves in batches. The runtime
		 * never has a load and a save of one actor in flight at once, so
		 * the reordering is invisible to it. */
		size_t nb = 0;
		gw_persist_job *saves = NULL, **stail = &saves;
		while (list) {
			gw_persist_job *j = list;
			list = j->next;
			j->next = NULL;
			if (j->kind == JOB_LOAD) {
				run_loads(p, j);
				pthread_mutex_lock(&p->mu);
				p->stats.loads++;
				pthread_mutex_unlock(&p->mu);
				job_free(j);
			} else {
				*stail = j;
				stail = &j->next;
			}
		}
		while (saves) {
			nb = 0;
			while (saves && nb < p->max_batch) {
				batch[nb++] = saves;
				saves = saves->next;
			}
			run_saves(p, batch, nb);
			for (size_t i = 0; i < nb; i++)
				job_free(batch[i]);
		}
	}
	free(batch);
	return NULL;
}

gw_err gw_persist_create(gw_persist **out, gw_store *store, size_t max_batch)
{
	gw_persist *p = calloc(1, sizeof *p);
	if (!p)
		return GW_ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->store = store;
	p->max_batch = max_batch ? max_batch : 256;
	if (pthread_create(&p->thread, NULL, persist_main, p)) {
		free(p);
		return GW_ENOMEM;
	}
	*out = p;
	return GW_OK;
}

void gw_persist_destroy(gw_persist *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
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

static void enqueue(gw_persist *p, gw_persist_job *j)
{
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

gw_err gw_persist_load(gw_persist *p, const char *system, const char *name, gw_load_cb cb,
		       void *arg)
{
	gw_persist_job *j = job_new(JOB_LOAD, system, name);
	if (!j)
		return GW_ENOMEM;
	j->cb.load = cb;
	j->arg = arg;
	enqueue(p, j);
	return GW_OK;
}

gw_err gw_persist_save(gw_persist *p, const char *system, const char *name, const char *type_url,
		       gw_blob *state, uint64_t expected, gw_save_cb cb, void *arg)
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
	j->cb.save = cb;
	j->arg = arg;
	enqueue(p, j);
	return GW_OK;
}

void gw_persist_get_stats(gw_persist *p, gw_persist_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->stats;
	pthread_mutex_unlock(&p->mu);
}
