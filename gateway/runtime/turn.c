/* turn.c - one turn's outcome on its actor, committed or rolled back whole.
 *
 * When a turn of a (non-POOLED) actor is dispatched, gwi_turn_begin
 * captures what the turn may change: the state, the tags, the dirty flag
 * and the outbox/applied-keys blob. While the turn's result is applied,
 * every outbox entry and idempotency key the turn adds is named in the
 * same object (gwi_turn_record_key, gwi_turn_store_outbox). The turn then
 * ends in exactly one of two ways:
 *
 *   BEGUN --- result kept (no checkpoint, or its save committed,
 *             or the turn failed before changing anything) --> gwi_turn_commit
 *   BEGUN --- checkpoint save failed or could not be queued --> gwi_turn_rollback
 *
 * Rollback restores state, tags and the dirty flag, and removes from the
 * outbox exactly the entries this turn appended, and from the applied list
 * exactly the key it recorded, by their keys: never by a revision computed
 * again at rollback time (a snapshot save of the same actor may have
 * committed meanwhile and moved the revision). Entries of earlier turns
 * (in flight) and acknowledgements that arrived during the turn stay as
 * they are. Models: PostgreSQL's ResourceOwner, SQLite's savepoints.
 *
 * Every function here runs with the actor's shard lock held. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime_int.h"

static bool blob_eq(const gw_blob *x, const gw_blob *y)
{
	if (x == y)
		return true;
	if (!x || !y || x->len != y->len)
		return false;
	return !memcmp(gw_blob_value(x), gw_blob_value(y), x->len);
}

static void turn_clear(gw_turn *t)
{
	gw_blob_rele(t->state);
	gw_blob_rele(t->tags);
	gw_blob_rele(t->extra);
	free(t->applied);
	for (size_t i = 0; i < t->n_entries; i++)
		free(t->entries[i]);
	free(t->entries);
	memset(t, 0, sizeof *t);
}

/* A closed turn goes back to its shard's free list (at most TURN_FREE_MAX
 * kept), so a turn costs an actor 8 bytes while it is closed and no
 * allocation on the hot path once the shard has served as many turns at
 * once as it ever will (docs/design/memory.md). */
#define TURN_FREE_MAX 64

static void turn_put(gw_actor *a)
{
	gw_turn *t = a->turn;
	gw_shard *s = gwi_ashard(a);
	a->turn = NULL;
	turn_clear(t);
	gwi_ext_trim(a); /* kept while the turn was open */
	if (s->n_turn_free >= TURN_FREE_MAX) {
		free(t);
		return;
	}
	t->next_free = s->turn_free;
	s->turn_free = t;
	s->n_turn_free++;
}

void gwi_turn_free_all(gw_shard *s)
{
	while (s->turn_free) {
		gw_turn *t = s->turn_free;
		s->turn_free = t->next_free;
		free(t);
	}
	s->n_turn_free = 0;
}

gw_err gwi_turn_begin(gw_actor *a)
{
	gw_turn *t = a->turn;
	if (t) {
		turn_clear(t); /* a turn that was never closed: keep what it did */
	} else {
		gw_shard *s = gwi_ashard(a);
		if (s->turn_free) {
			t = s->turn_free;
			s->turn_free = t->next_free;
			s->n_turn_free--;
			memset(t, 0, sizeof *t);
		} else if (!(t = calloc(1, sizeof *t))) {
			return GW_ENOMEM;
		}
		a->turn = t;
	}
	t->state = gw_blob_hold(a->state);
	t->tags = gw_blob_hold(gwi_tags(a));
	t->extra = gw_blob_hold(gwi_extra(a));
	t->dirty = a->dirty;
	t->open = true;
	return GW_OK;
}

void gwi_turn_record_key(gw_actor *a, const char *key)
{
	gw_turn *t = a->turn;
	gwi_outbox_record(a, key);
	if (!t || !t->open)
		return;
	free(t->applied);
	t->applied = strdup(key);
	if (!t->applied)
		GW_ERROR("actor %s/%s: out of memory noting delivery %s (a rollback keeps the key)",
		         a->type->system, a->name, key);
}

gw_err gwi_turn_store_outbox(gw_actor *a, gw_inv *fire)
{
	gw_turn *t = a->turn;
	if (!t)
		return GW_ENOMEM; /* no turn open: nothing could name the entries */
	size_t n = 0, before = t->n_entries;
	for (gw_inv *i = fire; i; i = i->next)
		n++;
	char **v = realloc(t->entries, (before + n) * sizeof *v);
	if (!v)
		return GW_ENOMEM;
	t->entries = v;
	gw_err err = gwi_outbox_store(a, fire, a->revision + 1);
	if (err)
		return err;
	for (gw_inv *i = fire; i && !err; i = i->next) {
		const char *k = gwi_inv_key(i);
		if (!k || !(t->entries[t->n_entries] = strdup(k)))
			err = GW_ENOMEM;
		else
			t->n_entries++;
	}
	if (err) {
		/* An entry the rollback could not name: take this turn's entries
		 * back out now; they go out without the outbox, as when the
		 * outbox cannot be written. */
		gwi_outbox_remove(a, (const char *const *)t->entries + before,
		                  t->n_entries - before, NULL);
		for (gw_inv *i = fire; i; i = i->next) {
			const char *k = gwi_inv_key(i);
			if (k)
				gwi_outbox_remove(a, &k, 1, NULL);
			i->outbox_src = NULL;
		}
		while (t->n_entries > before)
			free(t->entries[--t->n_entries]);
	}
	return err;
}

void gwi_turn_commit(gw_actor *a)
{
	if (a->turn)
		turn_put(a);
}

void gwi_turn_rollback(gw_actor *a)
{
	gw_turn *t = a->turn;
	if (!t || !t->open)
		return;
	gw_blob_rele(a->state);
	a->state = t->state;
	a->state_moved = 1; /* a save in flight may hold the rolled-back state */
	/* Cannot fail: captured tags mean a->x existed at begin, and it is not
	 * freed while the turn is open (actor_ext.c). */
	gwi_set_tags(a, t->tags);
	t->state = t->tags = NULL;
	a->dirty = t->dirty;
	if (t->n_entries || t->applied)
		gwi_outbox_remove(a, (const char *const *)t->entries, t->n_entries, t->applied);
	/* The outbox may have changed during the turn for other reasons (an
	 * acknowledgement of an earlier turn's entry): keep that change to be
	 * saved. */
	if (!blob_eq(gwi_extra(a), t->extra))
		a->dirty = 1;
	turn_put(a);
}
