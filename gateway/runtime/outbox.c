/* outbox.c - effects of checkpointed turns survive a crash, exactly once.
 *
 * A stateful actor's checkpointed turn that emits side effects appends them
 * to its outbox (StoredState.outbox, kept in the actor's extra blob, actor_ext.c) before the turn's
 * save, so they commit in the same transaction as the state, with the row's
 * effects flag set (gw_state.effects). After the commit each is delivered;
 * its final outcome (applied, refused for good, or out of retries: all
 * logged) acknowledges it, which removes it from the outbox; the save that
 * follows the last acknowledgement clears the flag. Lifecycle of one entry:
 *
 *   (turn result) --- appended, save queued --> STORED (commit pending)
 *   STORED ---- save failed: turn rolled back --> (gone, never delivered)
 *   STORED ---- committed ------------------> IN FLIGHT (delivery, retries)
 *   IN FLIGHT - final outcome --------------> ACKED (removed, save soon)
 *   ACKED ----- next save commits ----------> (gone from the store)
 *
 * A crash in IN FLIGHT or ACKED leaves the entry in the stored row: the
 * next activation of the actor delivers it again, and after a restart
 * gw_runtime_recover_effects activates every actor whose row has the flag.
 * Each delivery carries an idempotency key minted here (gwi_outbox_key:
 * length-prefixed system and actor, revision, index), out of band: in
 * gw_inv.idem_key and StoredState.outbox_keys, never read from a peer's
 * metadata (hosts see it in the task's metadata, for information only); a
 * stateful target records the keys it
 * applied in its own stored state (StoredState.applied, the latest
 * GW_APPLIED_MAX), saved with the state change they caused, and skips a
 * delivery whose key it already applied. So an effect is neither lost nor
 * applied twice: a redelivered effect whose target saved its change is
 * skipped; one whose target lost its change along with the key runs again.
 * (A stateless target has nowhere to record keys: it gets the key in the
 * metadata and may see a redelivery: at least once.)
 *
 * Invariant: every entry in an active actor's outbox has a delivery in
 * flight (gwi_n_outbox counts them); the actor is not released before its
 * outbox is empty. All functions but gwi_outbox_ack run with the actor's
 * shard lock held. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime_int.h"
#include "workflow.h"

#define GW_APPLIED_MAX 64

/* legacy_key: the key an entry written before StoredState.outbox_keys
 * carries: the last GW_IDEMPOTENCY_KEY metadata entry, which that gateway
 * appended itself after whatever the emitting host had put there. */
static char *legacy_key(const Spawn__InvocationRequest *rq)
{
	char *k = NULL;
	for (size_t i = 0; i < rq->n_metadata; i++)
		if (rq->metadata[i]->key && !strcmp(rq->metadata[i]->key, GW_IDEMPOTENCY_KEY))
			k = rq->metadata[i]->value;
	return k;
}

/* extra_get unpacks gwi_extra(a) into ar (NULL when there is none), with
 * exactly one key per outbox entry (outbox_keys; "" when none is known). */
static Spawn__Gateway__V1__StoredState *extra_get(gw_actor *a, spawn_arena *ar)
{
	const gw_blob *x = gwi_extra(a);
	if (!x)
		return NULL;
	Spawn__Gateway__V1__StoredState *e =
	    spawn__gateway__v1__stored_state__unpack(&ar->pbc, x->len, gw_blob_value(x));
	if (e && e->n_outbox_keys != e->n_outbox) {
		char **k = spawn_arena_alloc(ar, (e->n_outbox ? e->n_outbox : 1) * sizeof *k);
		if (!k)
			return NULL;
		for (size_t i = 0; i < e->n_outbox; i++) {
			k[i] = i < e->n_outbox_keys ? e->outbox_keys[i] : legacy_key(e->outbox[i]);
			if (!k[i])
				k[i] = "";
		}
		e->outbox_keys = k;
		e->n_outbox_keys = e->n_outbox;
	}
	return e;
}

/* extra_set replaces the actor's extra with outbox + their keys + applied (NULL when
 * all are empty). */
static gw_err extra_set(gw_actor *a, Spawn__InvocationRequest **outbox, char **keys,
                        size_t n_outbox, char **applied, size_t n_applied)
{
	gw_blob *nb = NULL;
	if (n_outbox || n_applied) {
		Spawn__Gateway__V1__StoredState e = SPAWN__GATEWAY__V1__STORED_STATE__INIT;
		e.n_outbox = n_outbox;
		e.outbox = outbox;
		e.n_outbox_keys = n_outbox;
		e.outbox_keys = keys;
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
	if (gwi_set_extra(a, nb, (uint32_t)n_outbox) != GW_OK)
		return GW_ENOMEM; /* nothing changed */
	a->dirty = 1;
	if (a->in_save)
		a->resave = 1; /* the save in flight has the old extra */
	return GW_OK;
}

/* src_new copies "system\0name" of a into inv's arena (outbox_src). */
static char *src_new(gw_inv *inv, const gw_actor *a)
{
	size_t ls = strlen(a->type->system) + 1, ln = strlen(a->name) + 1;
	char *v = spawn_arena_alloc(&inv->arena, ls + ln);
	if (v) {
		memcpy(v, a->type->system, ls);
		memcpy(v + ls, a->name, ln);
	}
	return v;
}

const char *gwi_inv_key(const gw_inv *inv)
{
	return inv->idem_key;
}

const char *gwi_legacy_key(const Spawn__InvocationRequest *rq)
{
	return legacy_key(rq);
}

size_t gwi_outbox_key(char *out, size_t n, const char *system, const char *name, uint64_t revision,
                      size_t index)
{
	/* Length-prefixed, so no name (with '/', '@', '#' or digits and ':')
	 * makes two different effects share a key. */
	int k = snprintf(out, n, "%zu:%s%zu:%s@%llu#%zu", strlen(system), system, strlen(name),
	                 name, (unsigned long long)revision, index);
	return k < 0 ? 0 : (size_t)k;
}

Spawn__InvocationRequest__MetadataEntry **gwi_key_metadata(const gw_inv *inv, spawn_arena *ar,
                                                           size_t *n)
{
	const Spawn__InvocationRequest *rq = inv->req;
	Spawn__InvocationRequest__MetadataEntry **m =
	    spawn_arena_alloc(ar, (rq->n_metadata + 1) * sizeof *m);
	Spawn__InvocationRequest__MetadataEntry *e = spawn_arena_alloc(ar, sizeof *e);
	if (!m || !e) {
		*n = rq->n_metadata;
		return rq->metadata;
	}
	size_t k = 0;
	for (size_t i = 0; i < rq->n_metadata; i++)
		if (!rq->metadata[i]->key || strcmp(rq->metadata[i]->key, GW_IDEMPOTENCY_KEY))
			m[k++] = rq->metadata[i];
	if (inv->idem_key) {
		spawn__invocation_request__metadata_entry__init(e);
		e->key = GW_IDEMPOTENCY_KEY;
		e->value = inv->idem_key;
		m[k++] = e;
	}
	*n = k;
	return m;
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
		if (extra_set(a, e ? e->outbox : NULL, e ? e->outbox_keys : NULL,
		              e ? e->n_outbox : 0, v, keep + 1) != GW_OK)
			v = NULL;
	}
	if (!v)
		GW_ERROR("actor %s/%s: out of memory recording delivery %s (a redelivery would "
		         "run again)",
		         a->type->system, a->name, key);
	spawn_arena_fini(&ar);
}

gw_err gwi_outbox_store(gw_actor *a, gw_inv *fire, uint64_t revision)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__Gateway__V1__StoredState *e = extra_get(a, &ar);
	size_t old = e ? e->n_outbox : 0, n = old;
	for (gw_inv *i = fire; i; i = i->next)
		n++;
	Spawn__InvocationRequest **v = spawn_arena_alloc(&ar, (n ? n : 1) * sizeof *v);
	char **keys = spawn_arena_alloc(&ar, (n ? n : 1) * sizeof *keys);
	gw_err err = v && keys ? GW_OK : GW_ENOMEM;
	if (old && !err) {
		memcpy(v, e->outbox, old * sizeof *v); /* earlier turns' entries, in flight */
		memcpy(keys, e->outbox_keys, old * sizeof *keys);
	}
	size_t k = old;
	for (gw_inv *i = fire; i && !err; i = i->next, k++) {
		size_t kl = gwi_outbox_key(NULL, 0, a->type->system, a->name, revision, k - old);
		i->idem_key = spawn_arena_alloc(&i->arena, kl + 1);
		if (!i->idem_key || !(i->outbox_src = src_new(i, a))) {
			err = GW_ENOMEM;
			break;
		}
		gwi_outbox_key(i->idem_key, kl + 1, a->type->system, a->name, revision, k - old);
		v[k] = i->req;
		keys[k] = i->idem_key;
	}
	if (!err)
		err = extra_set(a, v, keys, n, e ? e->applied : NULL, e ? e->n_applied : 0);
	if (err)
		for (gw_inv *i = fire; i; i = i->next) {
			i->outbox_src = NULL; /* delivered without the outbox */
			i->idem_key = NULL;
		}
	spawn_arena_fini(&ar);
	return err;
}

void gwi_outbox_remove(gw_actor *a, const char *const *entries, size_t n, const char *applied)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__Gateway__V1__StoredState *e = extra_get(a, &ar);
	if (e) {
		/* Drop the named entries (they never committed) and the key (its
		 * state change is rolled back: a redelivery must run again). */
		size_t no = 0, na = 0;
		for (size_t i = 0; i < e->n_outbox; i++) {
			const char *k = e->outbox_keys[i];
			bool drop = false;
			for (size_t j = 0; k[0] && j < n && !drop; j++)
				drop = !strcmp(k, entries[j]);
			if (!drop) {
				e->outbox_keys[no] = e->outbox_keys[i];
				e->outbox[no++] = e->outbox[i];
			}
		}
		for (size_t i = 0; i < e->n_applied; i++)
			if (!applied || strcmp(e->applied[i], applied))
				e->applied[na++] = e->applied[i];
		if ((no != e->n_outbox || na != e->n_applied) &&
		    extra_set(a, e->outbox, e->outbox_keys, no, e->applied, na) != GW_OK)
			GW_ERROR("actor %s/%s: out of memory rolling back its outbox",
			         a->type->system, a->name);
	}
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
		if (c && c->req && e->outbox_keys[i][0])
			c->idem_key = spawn_arena_strdup(&c->arena, e->outbox_keys[i]);
		if (!c || !c->req || !(c->outbox_src = src_new(c, a)) ||
		    (e->outbox_keys[i][0] && !c->idem_key)) {
			/* The entry stays stored: the next activation tries again. */
			GW_ERROR("actor %s/%s: out of memory redelivering its outbox",
			         a->type->system, a->name);
			gw_inv_destroy(c);
			a->x->n_outbox--; /* no delivery in flight for it (e came from a->x) */
			continue;
		}
		c->done = gwi_wf_fire_done;
		c->effect = true;
		gwi_fx_submit(dl, rt, c); /* counted: --max-effects-in-flight */
		n++;
	}
	if (n)
		GW_INFO("actor %s/%s: redelivering %zu effects of its checkpointed turns",
		        a->type->system, a->name, n);
	spawn_arena_fini(&ar);
	return n;
}

void gwi_outbox_ack(gw_runtime *rt, gw_inv *d)
{
	const char *system = d->outbox_src, *name = system + strlen(system) + 1;
	const char *key = gwi_inv_key(d);
	uint32_t h = gwi_hash_key(system, name);
	gw_shard *s = gwi_shard_of(rt, h);
	pthread_mutex_lock(&s->mu);
	gw_actor *a = gwi_table_find(s, h, system, name);
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	/* Not active (fenced away, or a new activation still loading): the
	 * stored entry is delivered again by whoever activates it next. */
	Spawn__Gateway__V1__StoredState *e = a && a->st != A_LOADING ? extra_get(a, &ar) : NULL;
	size_t k = 0;
	while (e && key && k < e->n_outbox) {
		if (!strcmp(e->outbox_keys[k], key))
			break;
		k++;
	}
	if (e && key && k < e->n_outbox) {
		memmove(e->outbox + k, e->outbox + k + 1,
		        (e->n_outbox - k - 1) * sizeof *e->outbox);
		memmove(e->outbox_keys + k, e->outbox_keys + k + 1,
		        (e->n_outbox - k - 1) * sizeof *e->outbox_keys);
		if (e->n_outbox == 1)
			gwi_fault_hit(GW_FAULT_OUTBOX_ACK,
			              "effects acknowledged, outbox not cleared");
		if (extra_set(a, e->outbox, e->outbox_keys, e->n_outbox - 1, e->applied,
		              e->n_applied) != GW_OK &&
		    a->x->n_outbox-- /* no delivery in flight for it any more */)
			GW_ERROR("actor %s/%s: out of memory acknowledging %s (it is delivered "
			         "again after a restart)",
			         system, name, key);
		/* The last one out clears the row's effects flag at once; earlier
		 * ones ride on the next save. */
		gwi_extra_changed_locked(rt, a, gwi_n_outbox(a) == 0);
	}
	spawn_arena_fini(&ar);
	pthread_mutex_unlock(&s->mu);
}

/* ---- recovery after a restart ------------------------------------------- */

#define WAKE_RETRIES 40

/* wake_done: the actor is active (its outbox is on its way) or could not be
 * activated yet: typically its host has not registered after the restart. */
static void wake_done(gw_inv *inv)
{
	const Spawn__InvocationRequest *rq = inv->req;
	bool later = inv->err == GW_EUNAVAIL || inv->err == GW_ENOTFOUND ||
	             inv->err == GW_ETIMEDOUT || inv->err == GW_EFULL || inv->err == GW_EFENCED ||
	             inv->err == GW_ENOMEM || inv->err == GW_EIO;
	if (inv->err && later && inv->retries < WAKE_RETRIES && inv->rt) {
		int64_t delay = 100LL << (inv->retries < 4 ? inv->retries : 4);
		inv->retries++;
		inv->instance_checked = false; /* its template may have registered */
		gwi_runtime_retry(inv->rt, inv, delay);
		return;
	}
	if (inv->err)
		GW_WARN("actor %s/%s has undelivered effects but cannot be activated: %s; they "
		        "are delivered when it is next activated",
		        rq->system->name, rq->actor->id->name,
		        inv->msg[0] ? inv->msg : gw_strerror(inv->err));
	gw_inv_destroy(inv);
}

/* wake_new makes a GW_INV_WAKE invocation of (system, name). */
static gw_inv *wake_new(const char *system, const char *name)
{
	gw_inv *c = gw_inv_create(0);
	if (!c)
		return NULL;
	spawn_arena *ar = &c->arena;
	Spawn__InvocationRequest *rq = spawn_arena_alloc(ar, sizeof *rq);
	Spawn__Actors__ActorSystem *sys = spawn_arena_alloc(ar, sizeof *sys);
	Spawn__Actors__Actor *act = spawn_arena_alloc(ar, sizeof *act);
	Spawn__Actors__ActorId *id = spawn_arena_alloc(ar, sizeof *id);
	if (!rq || !sys || !act || !id)
		goto fail;
	spawn__invocation_request__init(rq);
	spawn__actors__actor_system__init(sys);
	spawn__actors__actor__init(act);
	spawn__actors__actor_id__init(id);
	sys->name = spawn_arena_strdup(ar, system);
	id->name = spawn_arena_strdup(ar, name);
	id->system = sys->name;
	rq->action_name = "";
	if (!sys->name || !id->name)
		goto fail;
	act->id = id;
	rq->system = sys;
	rq->actor = act;
	c->req = rq;
	c->kind = GW_INV_WAKE;
	c->done = wake_done;
	return c;
fail:
	gw_inv_destroy(c);
	return NULL;
}

static void on_pending(void *arg, gw_err err, const gw_actor_key *keys, size_t n, bool last)
{
	gw_runtime *rt = arg;
	if (err) {
		GW_WARN("effects recovery: cannot list the actors with undelivered effects: %s; "
		        "each delivers them when it is next activated",
		        gw_strerror(err));
		return;
	}
	if (n)
		GW_INFO("effects recovery: %zu actors have undelivered effects; activating them",
		        n);
	for (size_t i = 0; i < n; i++) {
		gw_inv *c = wake_new(keys[i].system, keys[i].name);
		if (!c) {
			GW_ERROR("effects recovery: out of memory activating %s/%s", keys[i].system,
			         keys[i].name);
			continue;
		}
		gw_runtime_invoke(rt, c);
	}
	(void)last;
}

gw_err gw_runtime_recover_effects(gw_runtime *rt)
{
	return gw_persist_effects_list(rt->persist, on_pending, rt);
}
