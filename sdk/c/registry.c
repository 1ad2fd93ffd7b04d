/* registry.c - the actors a host declares, and the RegistrationRequest
 * that tells the gateway about them. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static bool empty(const char *s)
{
	return !s || !*s;
}

static void actor_fini(spawni_actor *a)
{
	if (!a)
		return;
	free(a->name);
	free(a->state_type);
	if (a->actions)
		for (size_t i = 0; i < a->n_actions; i++)
			free(a->actions[i].name);
	free(a->actions);
	if (a->channels)
		for (size_t i = 0; i < a->n_channels; i++) {
			free(a->channels[i].topic);
			free(a->channels[i].action);
		}
	free(a->channels);
	memset(a, 0, sizeof *a);
}

void spawni_registry_fini(spawni_registry *r)
{
	for (size_t i = 0; i < r->n; i++)
		actor_fini(&r->actors[i]);
	free(r->actors);
	memset(r, 0, sizeof *r);
}

static int cmp_action(const void *a, const void *b)
{
	return strcmp(((const spawni_action *)a)->name, ((const spawni_action *)b)->name);
}

static int validate(const spawn_actor_def *def)
{
	if (!def || empty(def->name) || !def->actions || def->n_actions == 0)
		return SPAWN_EINVAL;
	if (def->kind != 0 && def->kind != SPAWN_KIND_NAMED && def->kind != SPAWN_KIND_UNNAMED &&
	    def->kind != SPAWN_KIND_POOLED)
		return SPAWN_EINVAL;
	if (def->snapshot_interval_ms < 0 || def->deactivate_timeout_ms < 0 ||
	    def->min_pool_size < 0 || def->max_pool_size < 0)
		return SPAWN_EINVAL;
	if (def->max_pool_size && def->min_pool_size > def->max_pool_size)
		return SPAWN_EINVAL;
	for (size_t i = 0; i < def->n_actions; i++) {
		const spawn_action_def *ad = &def->actions[i];
		if (empty(ad->name) || !ad->handler || ad->timer_ms < 0)
			return SPAWN_EINVAL;
	}
	if (def->n_channels && !def->channels)
		return SPAWN_EINVAL;
	for (size_t i = 0; i < def->n_channels; i++) {
		const spawn_channel_def *cd = &def->channels[i];
		if (empty(cd->topic))
			return SPAWN_EINVAL;
		/* A subscription must land on an action the actor has: the
		 * gateway would otherwise fail every delivery with NOT_FOUND,
		 * far from this mistake. */
		const char *want = empty(cd->action) ? SPAWN_DEFAULT_CHANNEL_ACTION : cd->action;
		bool found = false;
		for (size_t k = 0; k < def->n_actions && !found; k++)
			found = strcmp(def->actions[k].name, want) == 0;
		if (!found)
			return SPAWN_EINVAL;
	}
	return SPAWN_OK;
}

int spawni_registry_add(spawni_registry *r, const spawn_actor_def *def)
{
	int rc = validate(def);
	if (rc)
		return rc;
	/* Find the sorted insertion point; equal name -> EEXIST. */
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->actors[mid].name, def->name);
		if (c == 0)
			return SPAWN_EEXIST;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}

	spawni_actor a = {0};
	a.kind = def->kind ? def->kind : SPAWN_KIND_NAMED;
	a.stateful = def->stateful;
	a.snapshot_interval_ms = def->snapshot_interval_ms;
	a.deactivate_timeout_ms = def->deactivate_timeout_ms;
	a.min_pool_size = def->min_pool_size;
	a.max_pool_size = def->max_pool_size;
	a.name = strdup(def->name);
	a.actions = calloc(def->n_actions, sizeof *a.actions);
	if (!a.name || !a.actions)
		goto nomem;
	if (!empty(def->state_type) && !(a.state_type = strdup(def->state_type)))
		goto nomem;
	for (size_t i = 0; i < def->n_actions; i++) {
		const spawn_action_def *ad = &def->actions[i];
		spawni_action *dst = &a.actions[i];
		if (!(dst->name = strdup(ad->name)))
			goto nomem;
		a.n_actions = i + 1;
		dst->handler = ad->handler;
		dst->user = ad->user;
		dst->timer_ms = ad->timer_ms;
	}
	if (def->n_channels) {
		a.channels = calloc(def->n_channels, sizeof *a.channels);
		if (!a.channels)
			goto nomem;
		for (size_t i = 0; i < def->n_channels; i++) {
			const spawn_channel_def *cd = &def->channels[i];
			spawni_channel *dst = &a.channels[i];
			a.n_channels = i + 1;
			dst->topic = strdup(cd->topic);
			dst->action =
			    strdup(empty(cd->action) ? SPAWN_DEFAULT_CHANNEL_ACTION : cd->action);
			if (!dst->topic || !dst->action)
				goto nomem;
		}
	}
	qsort(a.actions, a.n_actions, sizeof *a.actions, cmp_action);
	for (size_t i = 1; i < a.n_actions; i++) {
		if (strcmp(a.actions[i - 1].name, a.actions[i].name) == 0) {
			actor_fini(&a);
			return SPAWN_EEXIST;
		}
	}

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		spawni_actor *n = realloc(r->actors, cap * sizeof *n);
		if (!n)
			goto nomem;
		r->actors = n;
		r->cap = cap;
	}
	memmove(&r->actors[lo + 1], &r->actors[lo], (r->n - lo) * sizeof *r->actors);
	r->actors[lo] = a;
	r->n++;
	return SPAWN_OK;
nomem:
	actor_fini(&a);
	return SPAWN_ENOMEM;
}

const spawni_actor *spawni_registry_find(const spawni_registry *r, const char *name)
{
	if (!name)
		return NULL;
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->actors[mid].name, name);
		if (c == 0)
			return &r->actors[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const spawni_action *spawni_actor_find_action(const spawni_actor *a, const char *name)
{
	if (!name)
		return NULL;
	size_t lo = 0, hi = a->n_actions;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(a->actions[mid].name, name);
		if (c == 0)
			return &a->actions[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- registration ---------------------------------------------------- */

static Spawn__Actors__TimeoutStrategy *timeout_strategy(spawn_arena *a, int64_t ms)
{
	Spawn__Actors__TimeoutStrategy *t =
	    spawni_new(a, &spawn__actors__timeout_strategy__descriptor);
	if (t)
		t->timeout = ms;
	return t;
}

static Spawn__Actors__Actor *actor_msg(const spawni_actor *src, const char *system, spawn_arena *a)
{
	Spawn__Actors__Actor *m = spawni_new(a, &spawn__actors__actor__descriptor);
	Spawn__Actors__ActorId *id = spawni_new(a, &spawn__actors__actor_id__descriptor);
	Spawn__Actors__ActorSettings *st =
	    spawni_new(a, &spawn__actors__actor_settings__descriptor);
	if (!m || !id || !st)
		return NULL;
	/* Strings point into the registry, which outlives the packed bytes. */
	id->name = src->name;
	id->system = (char *)system;
	m->id = id;
	st->kind = (Spawn__Actors__Kind)src->kind;
	st->stateful = src->stateful;
	if (src->state_type)
		st->state_type = src->state_type;
	st->min_pool_size = src->min_pool_size;
	st->max_pool_size = src->max_pool_size;
	if (src->snapshot_interval_ms) {
		Spawn__Actors__ActorSnapshotStrategy *s =
		    spawni_new(a, &spawn__actors__actor_snapshot_strategy__descriptor);
		if (!s || !(s->timeout = timeout_strategy(a, src->snapshot_interval_ms)))
			return NULL;
		s->strategy_case = SPAWN__ACTORS__ACTOR_SNAPSHOT_STRATEGY__STRATEGY_TIMEOUT;
		st->snapshot_strategy = s;
	}
	if (src->deactivate_timeout_ms) {
		Spawn__Actors__ActorDeactivationStrategy *s =
		    spawni_new(a, &spawn__actors__actor_deactivation_strategy__descriptor);
		if (!s || !(s->timeout = timeout_strategy(a, src->deactivate_timeout_ms)))
			return NULL;
		s->strategy_case = SPAWN__ACTORS__ACTOR_DEACTIVATION_STRATEGY__STRATEGY_TIMEOUT;
		st->deactivation_strategy = s;
	}
	m->settings = st;

	size_t n_timers = 0;
	for (size_t i = 0; i < src->n_actions; i++)
		n_timers += src->actions[i].timer_ms > 0;
	m->actions = spawn_arena_alloc(a, src->n_actions * sizeof *m->actions);
	m->timer_actions =
	    spawn_arena_alloc(a, (n_timers ? n_timers : 1) * sizeof *m->timer_actions);
	if (!m->actions || !m->timer_actions)
		return NULL;
	for (size_t i = 0; i < src->n_actions; i++) {
		const spawni_action *sa = &src->actions[i];
		Spawn__Actors__Action *act = spawni_new(a, &spawn__actors__action__descriptor);
		if (!act)
			return NULL;
		act->name = sa->name;
		if (sa->timer_ms > 0) {
			Spawn__Actors__FixedTimerAction *t =
			    spawni_new(a, &spawn__actors__fixed_timer_action__descriptor);
			if (!t)
				return NULL;
			t->seconds = sa->timer_ms; /* milliseconds on the wire, see actor.proto */
			t->action = act;
			m->timer_actions[m->n_timer_actions++] = t;
		} else {
			m->actions[m->n_actions++] = act;
		}
	}
	if (src->n_channels) {
		Spawn__Actors__Metadata *md = spawni_new(a, &spawn__actors__metadata__descriptor);
		if (!md)
			return NULL;
		md->channel_group =
		    spawn_arena_alloc(a, src->n_channels * sizeof *md->channel_group);
		if (!md->channel_group)
			return NULL;
		for (size_t i = 0; i < src->n_channels; i++) {
			Spawn__Actors__Channel *c =
			    spawni_new(a, &spawn__actors__channel__descriptor);
			if (!c)
				return NULL;
			c->topic = src->channels[i].topic;
			c->action = src->channels[i].action;
			md->channel_group[md->n_channel_group++] = c;
		}
		m->metadata = md;
	}
	return m;
}

int spawni_registration(const spawni_registry *r, const spawni_service *svc, spawn_arena *a,
                        Spawn__RegistrationRequest **out)
{
	Spawn__RegistrationRequest *req = spawni_new(a, &spawn__registration_request__descriptor);
	Spawn__ServiceInfo *si = spawni_new(a, &spawn__service_info__descriptor);
	Spawn__Actors__ActorSystem *sys = spawni_new(a, &spawn__actors__actor_system__descriptor);
	Spawn__Actors__Registry *reg = spawni_new(a, &spawn__actors__registry__descriptor);
	if (!req || !si || !sys || !reg)
		return SPAWN_ENOMEM;
	si->service_name = (char *)svc->name;
	si->service_version = (char *)svc->version;
	si->service_runtime = SPAWNI_RUNTIME;
	si->support_library_name = SPAWNI_LIBRARY_NAME;
	si->support_library_version = SPAWN_VERSION_STRING;
	si->protocol_major_version = SPAWNI_PROTOCOL_MAJOR;
	si->protocol_minor_version = SPAWNI_PROTOCOL_MINOR;
	sys->name = (char *)svc->system;
	sys->registry = reg;
	reg->actors = spawn_arena_alloc(a, (r->n ? r->n : 1) * sizeof *reg->actors);
	if (!reg->actors)
		return SPAWN_ENOMEM;
	for (size_t i = 0; i < r->n; i++) {
		Spawn__Actors__Registry__ActorsEntry *e =
		    spawni_new(a, &spawn__actors__registry__actors_entry__descriptor);
		if (!e || !(e->value = actor_msg(&r->actors[i], svc->system, a)))
			return SPAWN_ENOMEM;
		e->key = r->actors[i].name;
		reg->actors[reg->n_actors++] = e;
	}
	req->service_info = si;
	req->actor_system = sys;
	*out = req;
	return SPAWN_OK;
}
