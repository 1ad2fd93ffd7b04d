/* registry.c - systems, actor types and host bindings.
 *
 * Sizes are small (types number in the hundreds, hosts in the tens), so
 * types live in one hash table keyed by "system\0name" and bindings in a
 * small array per type. Hot path: gw_registry_pick under the read lock. */
#include "registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef struct binding {
	gw_host *host;  /* a reference held by this binding */
	char **actions; /* owned, sorted */
	size_t n_actions;
} binding;

typedef struct type_entry {
	gw_actor_type t;
	struct type_entry *next; /* hash chain */
	uint64_t hash;
	binding *b; /* owned array */
	size_t nb, capb;
	char **known; /* owned, sorted: every action ever registered */
	size_t n_known;
	char **topics;        /* owned: channel topics (latest registration) */
	char **topic_actions; /* owned: action per topic ("receive" default) */
	size_t n_topics;
	atomic_uint rr; /* round-robin cursor */
} type_entry;

/* An instance of an UNNAMED template: "system\0name" -> template. */
typedef struct inst_entry {
	struct inst_entry *next;
	uint64_t hash;
	type_entry *tmpl;
	char name[]; /* the instance name; system is tmpl->t.system */
} inst_entry;

struct gw_registry {
	pthread_rwlock_t lock;
	type_entry **buckets;
	size_t nbuckets, count;
	inst_entry **ibuckets;
	size_t nibuckets, icount;
};

static uint64_t hash2(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *a; a++)
		h = (h ^ (uint8_t)*a) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (; *b; b++)
		h = (h ^ (uint8_t)*b) * 1099511628211ULL;
	return h;
}

gw_err gw_registry_create(gw_registry **out)
{
	gw_registry *r = calloc(1, sizeof *r);
	if (!r)
		return GW_ENOMEM;
	r->nbuckets = 256;
	r->buckets = calloc(r->nbuckets, sizeof *r->buckets);
	r->nibuckets = 1024;
	r->ibuckets = calloc(r->nibuckets, sizeof *r->ibuckets);
	if (!r->buckets || !r->ibuckets) {
		free(r->buckets);
		free(r->ibuckets);
		free(r);
		return GW_ENOMEM;
	}
	pthread_rwlock_init(&r->lock, NULL);
	*out = r;
	return GW_OK;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void gw_registry_destroy(gw_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nbuckets; i++) {
		type_entry *e = r->buckets[i];
		while (e) {
			type_entry *n = e->next;
			for (size_t j = 0; j < e->nb; j++) {
				gw_host_rele(e->b[j].host);
				free_strv(e->b[j].actions, e->b[j].n_actions);
			}
			free(e->b);
			free_strv(e->known, e->n_known);
			free_strv(e->topics, e->n_topics);
			free_strv(e->topic_actions, e->n_topics);
			free(e->t.system);
			free(e->t.name);
			free(e);
			e = n;
		}
	}
	free(r->buckets);
	for (size_t i = 0; i < r->nibuckets; i++)
		for (inst_entry *e = r->ibuckets[i], *n; e; e = n) {
			n = e->next;
			free(e);
		}
	free(r->ibuckets);
	pthread_rwlock_destroy(&r->lock);
	free(r);
}

static type_entry *find(gw_registry *r, const char *system, const char *name)
{
	uint64_t h = hash2(system, name);
	for (type_entry *e = r->buckets[h & (r->nbuckets - 1)]; e; e = e->next)
		if (e->hash == h && !strcmp(e->t.name, name) && !strcmp(e->t.system, system))
			return e;
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_action(char **v, size_t n, const char *a)
{
	return n && bsearch(&a, v, n, sizeof *v, cmp_str) != NULL;
}

/* sorted_actions copies an actor's action names (plus timer actions),
 * sorted and without duplicates. */
static gw_err sorted_actions(const Spawn__Actors__Actor *a, char ***out, size_t *n)
{
	size_t cap = a->n_actions + a->n_timer_actions, k = 0;
	char **v = calloc(cap ? cap : 1, sizeof *v);
	if (!v)
		return GW_ENOMEM;
	for (size_t i = 0; i < a->n_actions; i++)
		if (a->actions[i] && a->actions[i]->name && a->actions[i]->name[0])
			v[k++] = strdup(a->actions[i]->name);
	for (size_t i = 0; i < a->n_timer_actions; i++) {
		Spawn__Actors__FixedTimerAction *t = a->timer_actions[i];
		if (t && t->action && t->action->name && t->action->name[0])
			v[k++] = strdup(t->action->name);
	}
	for (size_t i = 0; i < k; i++)
		if (!v[i]) {
			free_strv(v, k);
			return GW_ENOMEM;
		}
	qsort(v, k, sizeof *v, cmp_str);
	size_t u = 0;
	for (size_t i = 0; i < k; i++) {
		if (u && !strcmp(v[u - 1], v[i])) {
			free(v[i]);
			continue;
		}
		v[u++] = v[i];
	}
	*out = v;
	*n = u;
	return GW_OK;
}

static gw_actor_settings settings_of(const Spawn__Actors__Actor *a)
{
	gw_actor_settings s = {.kind = SPAWN__ACTORS__KIND__NAMED, .stateful = true};
	const Spawn__Actors__ActorSettings *st = a->settings;
	if (!st)
		return s;
	if (st->kind != SPAWN__ACTORS__KIND__UNKNOW_KIND)
		s.kind = st->kind;
	s.stateful = st->stateful;
	if (st->snapshot_strategy && st->snapshot_strategy->timeout)
		s.snapshot_ms = st->snapshot_strategy->timeout->timeout;
	if (st->deactivation_strategy && st->deactivation_strategy->timeout)
		s.deactivate_ms = st->deactivation_strategy->timeout->timeout;
	s.max_pool_size = st->max_pool_size;
	if (s.kind == SPAWN__ACTORS__KIND__POOLED)
		s.stateful = false;
	return s;
}

/* timers_of copies the actor's timer actions (at most GW_MAX_TIMERS, the
 * rest are logged and ignored). */
static void timers_of(const Spawn__Actors__Actor *a, gw_actor_timers *s)
{
	s->n = 0;
	for (size_t i = 0; i < a->n_timer_actions; i++) {
		const Spawn__Actors__FixedTimerAction *t = a->timer_actions[i];
		if (!t || !t->action || !t->action->name || !t->action->name[0] || t->seconds <= 0)
			continue;
		if (s->n == GW_MAX_TIMERS) {
			GW_WARN("actor %s: more than %d timer actions; '%s' ignored",
			        a->id && a->id->name ? a->id->name : "?", GW_MAX_TIMERS,
			        t->action->name);
			continue;
		}
		gw_timer_def *d = &s->def[s->n++];
		snprintf(d->name, sizeof d->name, "%s", t->action->name);
		d->period_ms = t->seconds; /* milliseconds, despite the field's name */
	}
}

/* set_topics replaces the entry's channel subscriptions. */
static gw_err set_topics(type_entry *e, const Spawn__Actors__Actor *a)
{
	size_t n = a->metadata ? a->metadata->n_channel_group : 0;
	char **t = calloc(n ? n : 1, sizeof *t), **act = calloc(n ? n : 1, sizeof *act);
	if (!t || !act) {
		free(t);
		free(act);
		return GW_ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const Spawn__Actors__Channel *c = a->metadata->channel_group[i];
		if (!c || !c->topic || !c->topic[0])
			continue;
		t[k] = strdup(c->topic);
		act[k] = strdup(c->action && c->action[0] ? c->action : "receive");
		if (!t[k] || !act[k]) {
			free(t[k]);
			free(act[k]);
			free_strv(t, k);
			free_strv(act, k);
			return GW_ENOMEM;
		}
		k++;
	}
	free_strv(e->topics, e->n_topics);
	free_strv(e->topic_actions, e->n_topics);
	e->topics = t;
	e->topic_actions = act;
	e->n_topics = k;
	return GW_OK;
}

/* merge_known adds actions to the entry's set of every action ever seen. */
static gw_err merge_known(type_entry *e, char **acts, size_t n)
{
	size_t add = 0;
	for (size_t i = 0; i < n; i++)
		if (!has_action(e->known, e->n_known, acts[i]))
			add++;
	if (!add)
		return GW_OK;
	char **v = realloc(e->known, (e->n_known + add) * sizeof *v);
	if (!v)
		return GW_ENOMEM;
	e->known = v;
	size_t k = e->n_known;
	for (size_t i = 0; i < n; i++)
		if (!has_action(v, e->n_known, acts[i]) && (v[k] = strdup(acts[i])))
			k++;
	e->n_known = k;
	qsort(v, k, sizeof *v, cmp_str);
	return GW_OK;
}

static gw_err grow(gw_registry *r)
{
	size_t nb = r->nbuckets * 2;
	type_entry **b = calloc(nb, sizeof *b);
	if (!b)
		return GW_ENOMEM;
	for (size_t i = 0; i < r->nbuckets; i++) {
		type_entry *e = r->buckets[i];
		while (e) {
			type_entry *n = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
			e = n;
		}
	}
	free(r->buckets);
	r->buckets = b;
	r->nbuckets = nb;
	return GW_OK;
}

static gw_err bind_one(gw_registry *r, gw_host *host, const char *system,
                       const Spawn__Actors__Actor *a, const char *name)
{
	char **acts;
	size_t n;
	gw_err err = sorted_actions(a, &acts, &n);
	if (err)
		return err;
	type_entry *e = find(r, system, name);
	if (!e) {
		if (r->count >= r->nbuckets && grow(r) != GW_OK)
			goto nomem;
		e = calloc(1, sizeof *e);
		if (!e)
			goto nomem;
		e->t.system = strdup(system);
		e->t.name = strdup(name);
		if (!e->t.system || !e->t.name) {
			free(e->t.system);
			free(e->t.name);
			free(e);
			goto nomem;
		}
		e->hash = hash2(system, name);
		e->next = r->buckets[e->hash & (r->nbuckets - 1)];
		r->buckets[e->hash & (r->nbuckets - 1)] = e;
		r->count++;
	}
	e->t.settings = settings_of(a);
	timers_of(a, &e->t.timers);
	if (merge_known(e, acts, n) != GW_OK || set_topics(e, a) != GW_OK)
		goto nomem;
	/* A host re-registering replaces its own binding. */
	for (size_t i = 0; i < e->nb; i++)
		if (e->b[i].host == host) {
			free_strv(e->b[i].actions, e->b[i].n_actions);
			e->b[i].actions = acts;
			e->b[i].n_actions = n;
			return GW_OK;
		}
	if (e->nb == e->capb) {
		size_t cap = e->capb ? e->capb * 2 : 2;
		binding *b = realloc(e->b, cap * sizeof *b);
		if (!b)
			goto nomem;
		e->b = b;
		e->capb = cap;
	}
	gw_host_hold(host);
	e->b[e->nb++] = (binding){.host = host, .actions = acts, .n_actions = n};
	return GW_OK;
nomem:
	free_strv(acts, n);
	return GW_ENOMEM;
}

gw_err gw_registry_register(gw_registry *r, gw_host *host, const Spawn__Actors__ActorSystem *sys,
                            const char **why)
{
	if (!sys || !sys->name || !sys->name[0]) {
		*why = "registration names no actor system";
		return GW_EINVAL;
	}
	const Spawn__Actors__Registry *reg = sys->registry;
	if (!reg || reg->n_actors == 0) {
		*why = "registration has no actors";
		return GW_EINVAL;
	}
	for (size_t i = 0; i < reg->n_actors; i++) {
		Spawn__Actors__Registry__ActorsEntry *en = reg->actors[i];
		const Spawn__Actors__Actor *a = en ? en->value : NULL;
		const char *name = a && a->id && a->id->name && a->id->name[0]
		                       ? a->id->name
		                       : (en && en->key ? en->key : "");
		if (!a || !name[0]) {
			*why = "an actor in the registration has no name";
			return GW_EINVAL;
		}
		if (a->n_actions == 0 && a->n_timer_actions == 0) {
			*why = "an actor in the registration has no actions";
			return GW_EINVAL;
		}
	}
	pthread_rwlock_wrlock(&r->lock);
	gw_err err = GW_OK;
	for (size_t i = 0; i < reg->n_actors && !err; i++) {
		Spawn__Actors__Registry__ActorsEntry *en = reg->actors[i];
		const Spawn__Actors__Actor *a = en->value;
		const char *name = a->id && a->id->name && a->id->name[0] ? a->id->name : en->key;
		err = bind_one(r, host, sys->name, a, name);
	}
	pthread_rwlock_unlock(&r->lock);
	if (err) {
		gw_registry_unbind_host(r, host);
		*why = "out of memory";
	}
	return err;
}

void gw_registry_unbind_host(gw_registry *r, gw_host *host)
{
	pthread_rwlock_wrlock(&r->lock);
	size_t dropped = 0;
	for (size_t i = 0; i < r->nbuckets; i++)
		for (type_entry *e = r->buckets[i]; e; e = e->next)
			for (size_t j = 0; j < e->nb; j++)
				if (e->b[j].host == host) {
					free_strv(e->b[j].actions, e->b[j].n_actions);
					e->b[j] = e->b[--e->nb];
					dropped++;
					break;
				}
	pthread_rwlock_unlock(&r->lock);
	while (dropped--)
		gw_host_rele(host);
}

gw_err gw_registry_lookup(gw_registry *r, const char *system, const char *actor,
                          gw_actor_type **type, gw_actor_settings *settings)
{
	pthread_rwlock_rdlock(&r->lock);
	type_entry *e = find(r, system, actor);
	if (e) {
		*type = &e->t;
		if (settings)
			*settings = e->t.settings;
	}
	pthread_rwlock_unlock(&r->lock);
	return e ? GW_OK : GW_ENOTFOUND;
}

static inst_entry *find_inst(gw_registry *r, const char *system, const char *name, uint64_t h)
{
	for (inst_entry *e = r->ibuckets[h & (r->nibuckets - 1)]; e; e = e->next)
		if (e->hash == h && !strcmp(e->name, name) && !strcmp(e->tmpl->t.system, system))
			return e;
	return NULL;
}

static void grow_inst(gw_registry *r)
{
	size_t nb = r->nibuckets * 2;
	inst_entry **b = calloc(nb, sizeof *b);
	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < r->nibuckets; i++)
		for (inst_entry *e = r->ibuckets[i], *n; e; e = n) {
			n = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	free(r->ibuckets);
	r->ibuckets = b;
	r->nibuckets = nb;
}

gw_err gw_registry_spawn(gw_registry *r, const char *system, const char *name, const char *parent,
                         bool *created)
{
	uint64_t h = hash2(system, name);
	gw_err err = GW_OK;
	if (created)
		*created = false;
	/* Fast path (every invocation with register_ref comes here): known. */
	pthread_rwlock_rdlock(&r->lock);
	inst_entry *e = find_inst(r, system, name, h);
	bool known = e && !strcmp(e->tmpl->t.name, parent);
	pthread_rwlock_unlock(&r->lock);
	if (known)
		return GW_OK;
	pthread_rwlock_wrlock(&r->lock);
	type_entry *t = find(r, system, parent);
	e = find_inst(r, system, name, h);
	if (!t)
		err = GW_ENOTFOUND;
	else if (t->t.settings.kind != SPAWN__ACTORS__KIND__UNNAMED || find(r, system, name))
		err = GW_EINVAL;
	else if (e)
		err = e->tmpl == t ? GW_OK : GW_EINVAL;
	else {
		size_t nl = strlen(name) + 1;
		e = malloc(sizeof *e + nl);
		if (!e) {
			err = GW_ENOMEM;
		} else {
			memcpy(e->name, name, nl);
			e->hash = h;
			e->tmpl = t;
			if (r->icount >= r->nibuckets)
				grow_inst(r);
			e->next = r->ibuckets[h & (r->nibuckets - 1)];
			r->ibuckets[h & (r->nibuckets - 1)] = e;
			r->icount++;
			if (created)
				*created = true;
		}
	}
	pthread_rwlock_unlock(&r->lock);
	return err;
}

gw_err gw_registry_lookup_instance(gw_registry *r, const char *system, const char *name,
                                   gw_actor_type **type, gw_actor_settings *settings)
{
	pthread_rwlock_rdlock(&r->lock);
	inst_entry *e = find_inst(r, system, name, hash2(system, name));
	if (e) {
		*type = &e->tmpl->t;
		if (settings)
			*settings = e->tmpl->t.settings;
	}
	pthread_rwlock_unlock(&r->lock);
	return e ? GW_OK : GW_ENOTFOUND;
}

size_t gw_registry_subscribers(gw_registry *r, const char *system, const char *topic,
                               void (*fn)(void *user, const char *actor, const char *action),
                               void *user)
{
	size_t found = 0;
	pthread_rwlock_rdlock(&r->lock);
	for (size_t i = 0; i < r->nbuckets; i++)
		for (type_entry *e = r->buckets[i]; e; e = e->next) {
			if (e->t.settings.kind == SPAWN__ACTORS__KIND__UNNAMED ||
			    strcmp(e->t.system, system))
				continue;
			for (size_t k = 0; k < e->n_topics; k++)
				if (!strcmp(e->topics[k], topic)) {
					fn(user, e->t.name, e->topic_actions[k]);
					found++;
				}
		}
	pthread_rwlock_unlock(&r->lock);
	return found;
}

void gw_registry_settings(gw_registry *r, gw_actor_type *type, gw_actor_settings *out)
{
	pthread_rwlock_rdlock(&r->lock);
	*out = type->settings;
	pthread_rwlock_unlock(&r->lock);
}

void gw_registry_timers(gw_registry *r, gw_actor_type *type, gw_actor_timers *out)
{
	pthread_rwlock_rdlock(&r->lock);
	*out = type->timers;
	pthread_rwlock_unlock(&r->lock);
}

gw_err gw_registry_knows_action(gw_registry *r, gw_actor_type *type, const char *action)
{
	type_entry *e = (type_entry *)type;
	pthread_rwlock_rdlock(&r->lock);
	bool known = has_action(e->known, e->n_known, action);
	pthread_rwlock_unlock(&r->lock);
	return known ? GW_OK : GW_ENOTFOUND;
}

gw_err gw_registry_pick(gw_registry *r, gw_actor_type *type, const char *action, gw_host **host)
{
	type_entry *e = (type_entry *)type; /* t is the first member */
	gw_err err = GW_ENOTFOUND;
	pthread_rwlock_rdlock(&r->lock);
	if (has_action(e->known, e->n_known, action)) {
		err = GW_EUNAVAIL;
		size_t nb = e->nb;
		unsigned start = atomic_fetch_add_explicit(&e->rr, 1, memory_order_relaxed);
		for (size_t k = 0; k < nb; k++) {
			binding *b = &e->b[(start + k) % nb];
			if (has_action(b->actions, b->n_actions, action) && gw_host_live(b->host)) {
				gw_host_hold(b->host);
				*host = b->host;
				err = GW_OK;
				break;
			}
		}
	}
	pthread_rwlock_unlock(&r->lock);
	return err;
}
