/* state.c - the persisted form of an actor's state, reads of it that
 * involve no host, and the shutdown report of what is not saved. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime_int.h"

/* ---- state encoding -------------------------------------------------------- */

/* encode_state builds the persisted form (serialized spawn.actors.ActorState:
 * tags + Any) of the actor's current state. NULL when out of memory. */
gw_blob *gwi_encode_state(gw_actor *a)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__Actors__ActorState as = SPAWN__ACTORS__ACTOR_STATE__INIT;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	Spawn__Actors__ActorState *tags = NULL;
	const gw_blob *tb = gwi_tags(a);
	if (tb) {
		tags = spawn__actors__actor_state__unpack(&ar.pbc, tb->len, gw_blob_value(tb));
		if (tags) {
			as.n_tags = tags->n_tags;
			as.tags = tags->tags;
		}
	}
	if (a->state) {
		any.type_url = (char *)gw_blob_type(a->state);
		any.value.data = (uint8_t *)gw_blob_value(a->state);
		any.value.len = a->state->len;
		as.state = &any;
	}
	size_t n = spawn__actors__actor_state__get_packed_size(&as);
	/* The outbox and applied keys (a serialized StoredState holding only
	 * fields 100 and 101) follow: concatenated protobuf encodings parse as
	 * one merged StoredState. */
	const gw_blob *xb = gwi_extra(a);
	size_t x = xb ? xb->len : 0;
	gw_blob *b = gw_blob_alloc(NULL, n + x);
	if (b) {
		spawn__actors__actor_state__pack(&as, gw_blob_value_mut(b));
		if (x)
			memcpy(gw_blob_value_mut(b) + n, gw_blob_value(xb), x);
	}
	spawn_arena_fini(&ar);
	return b;
}

/* decode_state splits a loaded ActorState into the actor's state and tags. */
gw_err gwi_decode_state(gw_actor *a, const gw_blob *stored)
{
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	gw_err err = GW_OK;
	Spawn__Actors__ActorState *as =
	    spawn__actors__actor_state__unpack(&ar.pbc, stored->len, gw_blob_value(stored));
	if (!as) {
		err = GW_ECORRUPT;
		goto out;
	}
	if (as->state) {
		a->state_moved = 1;
		a->state = gw_blob_create(as->state->type_url, as->state->value.data,
		                          as->state->value.len);
		if (!a->state)
			err = GW_ENOMEM;
	}
	if (as->n_tags) {
		Spawn__Actors__ActorState t = SPAWN__ACTORS__ACTOR_STATE__INIT;
		t.n_tags = as->n_tags;
		t.tags = as->tags;
		size_t n = spawn__actors__actor_state__get_packed_size(&t);
		uint8_t *buf = spawn_arena_alloc(&ar, n);
		gw_blob *tb = NULL;
		if (buf) {
			spawn__actors__actor_state__pack(&t, buf);
			tb = gw_blob_create(NULL, buf, n);
		}
		if (!tb || gwi_set_tags(a, tb) != GW_OK)
			err = GW_ENOMEM;
	}
	/* Outbox, its keys and applied keys, when the row has them (StoredState). */
	Spawn__Gateway__V1__StoredState *ss =
	    spawn__gateway__v1__stored_state__unpack(&ar.pbc, stored->len, gw_blob_value(stored));
	if (!ss) {
		/* The ActorState part parsed but the outbox part does not: losing
		 * the outbox silently would lose effects; the row is damaged. */
		err = GW_ECORRUPT;
		goto out;
	}
	if (ss->n_outbox || ss->n_applied) {
		Spawn__Gateway__V1__StoredState e = SPAWN__GATEWAY__V1__STORED_STATE__INIT;
		e.n_outbox = ss->n_outbox;
		e.outbox = ss->outbox;
		e.n_applied = ss->n_applied;
		e.applied = ss->applied;
		e.n_outbox_keys = ss->n_outbox_keys; /* absent in rows of before: outbox.c */
		e.outbox_keys = ss->outbox_keys;
		size_t n = spawn__gateway__v1__stored_state__get_packed_size(&e);
		uint8_t *buf = spawn_arena_alloc(&ar, n);
		gw_blob *xb = NULL;
		if (buf) {
			spawn__gateway__v1__stored_state__pack(&e, buf);
			xb = gw_blob_create(NULL, buf, n);
		}
		if (!xb || gwi_set_extra(a, xb, (uint32_t)ss->n_outbox) != GW_OK)
			err = GW_ENOMEM;
	}
out:
	spawn_arena_fini(&ar);
	return err;
}

/* ---- reads without a host ------------------------------------------------------ */

typedef struct read_req {
	gw_read_fn fn;
	void *user;
} read_req;

static void read_loaded(void *arg, gw_err err, gw_blob *stored, uint64_t revision, uint64_t epoch)
{
	read_req *r = arg;
	(void)epoch;
	gw_actor tmp; /* only state and tags are used by decode_state */
	memset(&tmp, 0, sizeof tmp);
	if (err == GW_OK)
		err = gwi_decode_state(&tmp, stored);
	gw_blob_rele(stored);
	gw_read_meta meta = {.revision = err == GW_OK ? revision : 0};
	if (err == GW_OK)
		r->fn(r->user, GW_OK, NULL, tmp.state, gwi_tags(&tmp), &meta);
	else
		r->fn(r->user, err, err == GW_ENOTFOUND ? "no stored state" : gw_strerror(err),
		      NULL, NULL, &meta);
	gw_blob_rele(tmp.state);
	gwi_ext_free(&tmp);
	free(r);
}

/* A read of an active, stateful actor: its memory, checked against the
 * store. If another gateway has activated the actor and written a newer
 * revision since, the memory of this (superseded) activation is stale and
 * the stored state is the answer; the activation itself learns it at its
 * next save (fenced). */
typedef struct mem_read {
	gw_read_fn fn;
	void *user;
	gw_blob *state, *tags; /* owned references: the memory */
	uint64_t epoch;
	gw_read_meta meta; /* of the memory */
} mem_read;

static void mem_checked(void *arg, gw_err err, gw_blob *stored, uint64_t revision, uint64_t epoch)
{
	mem_read *m = arg;
	bool superseded = err == GW_OK && epoch != m->epoch && revision > m->meta.revision;
	if (superseded) {
		gw_actor tmp;
		memset(&tmp, 0, sizeof tmp);
		err = gwi_decode_state(&tmp, stored);
		gw_read_meta stored_meta = {.revision = err == GW_OK ? revision : 0};
		if (err == GW_OK)
			m->fn(m->user, GW_OK, NULL, tmp.state, gwi_tags(&tmp), &stored_meta);
		else
			m->fn(m->user, err, gw_strerror(err), NULL, NULL, &stored_meta);
		gw_blob_rele(tmp.state);
		gwi_ext_free(&tmp);
	} else {
		/* Ours, nothing stored yet, or the store is unreachable: memory. */
		m->fn(m->user, GW_OK, NULL, m->state, m->tags, &m->meta);
	}
	gw_blob_rele(stored);
	gw_blob_rele(m->state);
	gw_blob_rele(m->tags);
	free(m);
}

gw_err gw_runtime_read(gw_runtime *rt, const char *system, const char *name, uint64_t revision,
                       gw_read_fn fn, void *user)
{
	if (revision == 0) {
		uint32_t h = gwi_hash_key(system, name);
		gw_shard *s = gwi_shard_of(rt, h);
		pthread_mutex_lock(&s->mu);
		gw_actor *a = gwi_table_find(s, h, system, name);
		if (a && a->st != A_LOADING) {
			mem_read *m = malloc(sizeof *m);
			if (!m) {
				pthread_mutex_unlock(&s->mu);
				return GW_ENOMEM;
			}
			m->fn = fn;
			m->user = user;
			m->state = gw_blob_hold(a->state);
			m->tags = gw_blob_hold(gwi_tags(a));
			m->epoch = a->epoch;
			uint32_t calls = 0; /* the mailbox's calls, not its timer turns */
			for (const gw_inv *q = a->mq_head; q; q = q->next)
				calls += q->timer < 0;
			m->meta = (gw_read_meta){.revision = a->revision,
			                         .active = true,
			                         .dirty = a->dirty,
			                         .queued = calls};
			bool check = a->stateful && a->epoch;
			pthread_mutex_unlock(&s->mu);
			if (check &&
			    gw_persist_read(rt->persist, system, name, 0, mem_checked, m) == GW_OK)
				return GW_OK;
			mem_checked(m, GW_ENOTFOUND, NULL, 0, 0); /* memory it is */
			return GW_OK;
		}
		pthread_mutex_unlock(&s->mu);
	}
	read_req *r = malloc(sizeof *r);
	if (!r)
		return GW_ENOMEM;
	r->fn = fn;
	r->user = user;
	if (gw_persist_read(rt->persist, system, name, revision, read_loaded, r) != GW_OK) {
		free(r);
		return GW_ENOMEM;
	}
	return GW_OK;
}

gw_err gw_runtime_list_revisions(gw_runtime *rt, const char *system, const char *name,
                                 gw_list_cb fn, void *user)
{
	return gw_persist_list(rt->persist, system, name, fn, user);
}

/* ---- shutdown: what is not saved ------------------------------------------------ */

size_t gw_runtime_report_unsaved(gw_runtime *rt, bool log)
{
	size_t n = 0;
	for (size_t i = 0; i < rt->nshards; i++) {
		gw_shard *s = &rt->shards[i];
		pthread_mutex_lock(&s->mu);
		for (size_t b = 0; b < s->nbuckets; b++)
			for (gw_actor *a = s->buckets[b]; a; a = a->hnext) {
				if (!a->stateful || !(a->dirty || a->in_save))
					continue;
				if (log && n < 100)
					GW_ERROR(
					    "shutdown: not saved: %s/%s (stored revision %llu%s)",
					    a->type->system, a->name,
					    (unsigned long long)a->revision,
					    a->in_save ? ", a save in flight" : "");
				n++;
			}
		pthread_mutex_unlock(&s->mu);
	}
	if (log && n > 100)
		GW_ERROR("shutdown: not saved: %zu more actors", n - 100);
	return n;
}
