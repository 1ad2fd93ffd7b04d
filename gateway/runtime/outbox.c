/* outbox.c - effects of checkpointed turns survive a crash, exactly once.
 *
 * A stateful actor's checkpointed turn that emits side effects writes them
 * into its stored state (StoredState.outbox) in the same transaction as the
 * state: they are delivered after the commit and dropped by the next save.
 * After a crash in between, the next activation delivers them again. Each
 * delivery carries an idempotency key ("system/actor@revision#n" in the
 * metadata entry GW_IDEMPOTENCY_KEY); a stateful target records the keys it
 * applied in its own stored state (StoredState.applied, the latest
 * GW_APPLIED_MAX), saved with the state change they caused, and skips a
 * delivery whose key it already applied. So an effect is neither lost nor
 * applied twice: a redelivered effect whose target saved its change is
 * skipped; one whose target lost its change along with the key runs again.
 *
 * All functions run with the actor's shard lock held. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime_int.h"

#define GW_APPLIED_MAX 64

/* extra_get unpacks a->extra into ar (NULL when there is none). */
static Spawn__Gateway__V1__StoredState *extra_get(gw_actor *a, spawn_arena *ar)
{
	if (!a->extra)
		return NULL;
	return spawn__gateway__v1__stored_state__unpack(&ar->pbc, a->extra->len,
	                                                gw_blob_value(a->extra));
}

/* extra_set replaces a->extra with outbox + applied (NULL when both empty). */
static gw_err extra_set(gw_actor *a, Spawn__InvocationRequest **outbox, size_t n_outbox,
                        char **applied, size_t n_applied)
{
	gw_blob *nb = NULL;
	if (n_outbox || n_applied) {
		Spawn__Gateway__V1__StoredState e = SPAWN__GATEWAY__V1__STORED_STATE__INIT;
		e.n_outbox = n_outbox;
		e.outbox = outbox;
		e.n_applied = n_applied;
		e.applied = applied;
		size_t n = spawn__gateway__v1__stored_state__get_packed_size(&e);
		uint8_t *buf = malloc(n ? n : 1);
		if (!buf)
			return GW_ENOMEM;
		spawn__gateway__v1__stored_state__pack(&e, buf);
		nb = gw_blob_create(NULL, buf, n);
		free(buf);
		if (!nb)
			return GW_ENOMEM;
	}
	gw_blob_rele(a->extra);
	a->extra = nb;
	a->dirty = 1;
	return GW_OK;
}

const char *gwi_inv_key(const gw_inv *inv)
{
	const Spawn__InvocationRequest *rq = inv->req;
	for (size_t i = 0; i < rq->n_metadata; i++)
		if (rq->metadata[i]->key && !strcmp(rq->metadata[i]->key, GW_IDEMPOTENCY_KEY))
			return rq->metadata[i]->value;
	return NULL;
}

bool gwi_outbox_applied(gw_actor *a, const char *key)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__Gateway__V1__StoredState *e = extra_get(a, &ar);
	bool found = false;
	for (size_t i = 0; e && i < e->n_applied && !found; i++)
		found = !strcmp(e->applied[i], key);
	spawn_arena_fini(&ar);
	return found;
}

void gwi_outbox_record(gw_actor *a, const char *key)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__Gateway__V1__StoredState *e = extra_get(a, &ar);
	size_t n = e ? e->n_applied : 0, keep = n < GW_APPLIED_MAX ? n : GW_APPLIED_MAX - 1;
	char **v = spawn_arena_alloc(&ar, (keep + 1) * sizeof *v);
	if (v) {
		/* the newest last; the oldest fall out */
		for (size_t i = 0; i < keep; i++)
			v[i] = e->applied[n - keep + i];
		v[keep] = (char *)key;
		if (extra_set(a, e ? e->outbox : NULL, e ? e->n_outbox : 0, v, keep + 1) != GW_OK)
			v = NULL;
	}
	if (!v)
		GW_ERROR("actor %s/%s: out of memory recording delivery %s (a redelivery would "
		         "run again)",
		         a->type->system, a->name, key);
	spawn_arena_fini(&ar);
}

/* add_key appends the idempotency key to an invocation's metadata. */
static bool add_key(gw_inv *inv, const char *key)
{
	spawn_arena *ar = &inv->arena;
	Spawn__InvocationRequest *rq = inv->req;
	Spawn__InvocationRequest__MetadataEntry **m =
	    spawn_arena_alloc(ar, (rq->n_metadata + 1) * sizeof *m);
	Spawn__InvocationRequest__MetadataEntry *e = spawn_arena_alloc(ar, sizeof *e);
	if (!m || !e)
		return false;
	spawn__invocation_request__metadata_entry__init(e);
	e->key = GW_IDEMPOTENCY_KEY;
	e->value = spawn_arena_strdup(ar, key);
	if (!e->value)
		return false;
	if (rq->n_metadata)
		memcpy(m, rq->metadata, rq->n_metadata * sizeof *m);
	m[rq->n_metadata] = e;
	rq->metadata = m;
	rq->n_metadata++;
	return true;
}

gw_err gwi_outbox_store(gw_actor *a, gw_inv *fire, uint64_t revision)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__Gateway__V1__StoredState *e = extra_get(a, &ar);
	size_t n = 0;
	for (gw_inv *i = fire; i; i = i->next)
		n++;
	Spawn__InvocationRequest **v = spawn_arena_alloc(&ar, (n ? n : 1) * sizeof *v);
	gw_err err = v ? GW_OK : GW_ENOMEM;
	size_t k = 0;
	for (gw_inv *i = fire; i && !err; i = i->next, k++) {
		char key[400];
		snprintf(key, sizeof key, "%s/%s@%llu#%zu", a->type->system, a->name,
		         (unsigned long long)revision, k);
		if (!add_key(i, key))
			err = GW_ENOMEM;
		v[k] = i->req;
	}
	if (!err)
		err = extra_set(a, v, n, e ? e->applied : NULL, e ? e->n_applied : 0);
	spawn_arena_fini(&ar);
	return err;
}

void gwi_outbox_clear(gw_actor *a)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__Gateway__V1__StoredState *e = extra_get(a, &ar);
	if (e && e->n_outbox)
		extra_set(a, NULL, 0, e->applied, e->n_applied);
	spawn_arena_fini(&ar);
}

size_t gwi_outbox_redeliver(gw_runtime *rt, gw_actor *a, done_list *dl)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__Gateway__V1__StoredState *e = extra_get(a, &ar);
	size_t n = 0;
	for (size_t i = 0; e && i < e->n_outbox; i++) {
		Spawn__InvocationRequest *rq = e->outbox[i];
		size_t len = spawn__invocation_request__get_packed_size(rq);
		gw_inv *c = gw_inv_create(0);
		uint8_t *buf = c ? spawn_arena_alloc(&c->arena, len ? len : 1) : NULL;
		if (buf) {
			spawn__invocation_request__pack(rq, buf);
			c->req = spawn__invocation_request__unpack(&c->arena.pbc, len, buf);
		}
		if (!c || !c->req) {
			GW_ERROR("actor %s/%s: out of memory redelivering its outbox",
			         a->type->system, a->name);
			gw_inv_destroy(c);
			continue;
		}
		c->done = gwi_wf_fire_done;
		gwi_spawn_later(dl, rt, c);
		n++;
	}
	if (n)
		GW_INFO("actor %s/%s: redelivering %zu effects of its last checkpointed turn",
		        a->type->system, a->name, n);
	spawn_arena_fini(&ar);
	if (e && e->n_outbox)
		gwi_outbox_clear(a);
	return n;
}
