/* registry.c - systems, actor types and host bindings.
 *
 * Types live in one hash table keyed by "system\0name" and bindings in a
 * small array per type. Hot path: gw_registry_pick under the read lock.
 * Registration checks every actor of a request before binding any (one
 * write-locked section), so a refused registration changes nothing. */
#include "registry.h"
#include "runtime.h" /* gw_target_ops_of: every bound host is a target (STYLE 10) */

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "slab.h"

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
	char **known; /* owned, sorted: every action registered since the type
	                 last had no other host */
	size_t n_known;
	char **topics;        /* owned, sorted by (topic, action): channel topics */
	char **topic_actions; /* owned: action per topic ("receive" default) */
	size_t n_topics;
	char *state_type;        /* owned: declared message name (no URL prefix); NULL = none */
	atomic_uint rr;          /* round-robin cursor */
	atomic_int refs;         /* lookups and actors holding the type (invariant 1) */
	int64_t orphan_since_ms; /* ORPHAN (nb == 0): when the last binding went */
	size_t n_inst;           /* instances (inst_entry) whose template this is */
} type_entry;

/* An instance of an UNNAMED template: "system\0name" -> template. 12
 * bytes and the name, in the registry's slab (slab.h: with a name of up
 * to 11 bytes one entry is a 24-byte slot), named in an open-addressing
 * table by its 4-byte slab handle (no chain link, no pointer):
 * docs/design/memory.md. */
typedef struct inst_entry {
	type_entry *tmpl;
	uint32_t hash; /* the low 32 bits of hash2(system, name) */
	char name[];   /* the instance name; system is tmpl->t.system */
} inst_entry;

struct gw_registry {
	pthread_rwlock_t lock;
	gw_registry_opts o;
	type_entry **buckets;
	size_t nbuckets, count;
	uint32_t *islots; /* owned: nislots (a power of two) slots, each the
	                     islab handle of an entry (gw_slab_handle), 0 = empty;
	                     linear probing, at most 3/4 full, removal by
	                     backward shift (no tombstones) */
	size_t nislots, icount;
	gw_slab islab;                   /* the inst_entry objects (under the write lock) */
	atomic_int_fast64_t sweep_at_ms; /* next sweep worth doing; INT64_MAX = none */
	size_t freed_untrimmed;          /* types freed since the last malloc_trim */
	atomic_uint_fast64_t served_gen; /* + 1 at each binding added or dropped */
};

/* At most this many types are freed per sweep, so neither the timer
 * thread nor lookups (the write lock) wait long after a large host left:
 * 100,000 types take ~50 ticks of the runtime's timer. */
#define SWEEP_BATCH 2048

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

gw_err gw_registry_create(gw_registry **out, const gw_registry_opts *opts)
{
	gw_registry *r = calloc(1, sizeof *r);
	if (!r)
		return GW_ENOMEM;
	r->o.timer_floor_ms = GW_REGISTRY_TIMER_FLOOR_MS;
	r->o.grace_ms = GW_REGISTRY_GRACE_MS;
	if (opts) {
		r->o.timer_floor_ms = opts->timer_floor_ms > 0 ? opts->timer_floor_ms : 1;
		r->o.grace_ms = opts->grace_ms >= 0 ? opts->grace_ms : 0;
	}
	atomic_init(&r->sweep_at_ms, INT64_MAX);
	atomic_init(&r->served_gen, 0);
	r->nbuckets = 256;
	r->buckets = calloc(r->nbuckets, sizeof *r->buckets);
	r->nislots = 1024;
	r->islots = calloc(r->nislots, sizeof *r->islots);
	if (!r->buckets || !r->islots) {
		free(r->buckets);
		free(r->islots);
		free(r);
		return GW_ENOMEM;
	}
	pthread_rwlock_init(&r->lock, NULL);
	gw_slab_init(&r->islab);
	*out = r;
	return GW_OK;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* entry_free frees an unlinked entry and releases its bindings' hosts. */
static void entry_free(type_entry *e)
{
	for (size_t j = 0; j < e->nb; j++) {
		gw_target_ops_of(e->b[j].host)->rele(e->b[j].host);
		free_strv(e->b[j].actions, e->b[j].n_actions);
	}
	free(e->b);
	free_strv(e->known, e->n_known);
	free_strv(e->topics, e->n_topics);
	free_strv(e->topic_actions, e->n_topics);
	free(e->state_type);
	free(e->t.system);
	free(e->t.name);
	free(e);
}

void gw_registry_destroy(gw_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nbuckets; i++) {
		type_entry *e = r->buckets[i];
		while (e) {
			type_entry *n = e->next;
			entry_free(e);
			e = n;
		}
	}
	free(r->buckets);
	for (size_t i = 0; i < r->nislots; i++)
		if (r->islots[i])
			gw_slab_free(gw_slab_ptr(&r->islab, r->islots[i]));
	free(r->islots);
	gw_slab_fini(&r->islab);
	pthread_rwlock_destroy(&r->lock);
	free(r);
}

/* forgotten tells whether e is an ORPHAN past its grace: lookups no
 * longer find it (NOT_FOUND), though actors still holding it keep it
 * allocated until they deactivate. A registration revives it. */
static bool forgotten(const gw_registry *r, const type_entry *e)
{
	return e && !e->nb && now_ms() - e->orphan_since_ms >= r->o.grace_ms;
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
	s.min_pool_size = st->min_pool_size;
	if (s.kind == SPAWN__ACTORS__KIND__POOLED)
		s.stateful = false;
	return s;
}

static int cmp_timer(const void *a, const void *b)
{
	return strcmp(((const gw_timer_def *)a)->name, ((const gw_timer_def *)b)->name);
}

/* timers_of copies the actor's timer actions, sorted by name (at most
 * GW_MAX_TIMERS, the rest are logged and ignored). Periods were checked
 * by check_actor. */
static void timers_of(const Spawn__Actors__Actor *a, gw_actor_timers *s)
{
	s->n = 0;
	for (size_t i = 0; i < a->n_timer_actions; i++) {
		const Spawn__Actors__FixedTimerAction *t = a->timer_actions[i];
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
	qsort(s->def, (size_t)s->n, sizeof s->def[0], cmp_timer);
}

static bool same_timers(const gw_actor_timers *x, const gw_actor_timers *y)
{
	if (x->n != y->n)
		return false;
	for (int i = 0; i < x->n; i++)
		if (strcmp(x->def[i].name, y->def[i].name) ||
		    x->def[i].period_ms != y->def[i].period_ms)
			return false;
	return true;
}

/* state_name returns the message name a state_type or type URL names:
 * the part after the last '/', without a leading '.'; "" for none. */
static const char *state_name(const char *t)
{
	if (!t)
		return "";
	const char *slash = strrchr(t, '/');
	t = slash ? slash + 1 : t;
	return *t == '.' && !slash ? t + 1 : t;
}

static bool is_ident_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_ident(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* state_type_ok: "pkg.Msg" (".pkg.Msg" too, as protoc writes it) or a
 * type URL "host/pkg.Msg" ("type.googleapis.com/pkg.Msg"): a non-empty
 * prefix of printable ASCII without spaces, then a dotted name of
 * protobuf identifiers. At most 512 bytes. */
static bool state_type_ok(const char *t)
{
	size_t len = strlen(t);
	if (len == 0 || len > 512)
		return false;
	const char *slash = strrchr(t, '/');
	if (slash) {
		if (slash == t)
			return false;
		for (const char *p = t; p < slash; p++)
			if (*p <= ' ' || *p > '~')
				return false;
	}
	const char *n = state_name(t);
	if (!*n)
		return false;
	bool start = true;
	for (const char *p = n; *p; p++) {
		if (start) {
			if (!is_ident_start(*p))
				return false;
			start = false;
		} else if (*p == '.') {
			start = true;
		} else if (!is_ident(*p)) {
			return false;
		}
	}
	return !start;
}

static void free_pairs(char **t, char **act, size_t n)
{
	free_strv(t, n);
	free_strv(act, n);
}

/* build_topics copies an actor's channel subscriptions as (topic, action)
 * pairs sorted by topic then action, without duplicates. */
static gw_err build_topics(const Spawn__Actors__Actor *a, char ***tp, char ***ap, size_t *np)
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
		char *nt = strdup(c->topic);
		char *na = strdup(c->action && c->action[0] ? c->action : "receive");
		if (!nt || !na) {
			free(nt);
			free(na);
			free_pairs(t, act, k);
			return GW_ENOMEM;
		}
		/* insertion keeps the pairs sorted (channel lists are short) */
		size_t j = k;
		while (j > 0) {
			int c1 = strcmp(t[j - 1], nt);
			if (c1 < 0 || (c1 == 0 && strcmp(act[j - 1], na) <= 0))
				break;
			t[j] = t[j - 1];
			act[j] = act[j - 1];
			j--;
		}
		if (j > 0 && !strcmp(t[j - 1], nt) && !strcmp(act[j - 1], na)) {
			memmove(&t[j], &t[j + 1], (k - j) * sizeof *t); /* duplicate: undo */
			memmove(&act[j], &act[j + 1], (k - j) * sizeof *act);
			free(nt);
			free(na);
			continue;
		}
		t[j] = nt;
		act[j] = na;
		k++;
	}
	*tp = t;
	*ap = act;
	*np = k;
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

/* served_by_other tells whether a host other than host serves e (a
 * binding exists only while its host's stream is open). */
static bool served_by_other(const type_entry *e, const gw_host *host)
{
	for (size_t i = 0; i < e->nb; i++)
		if (e->b[i].host != host)
			return true;
	return false;
}

static const char *kind_name(int k, char *buf, size_t n)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&spawn__actors__kind__descriptor, k);
	if (v)
		return v->name;
	snprintf(buf, n, "%d", k);
	return buf;
}

/* same_settings compares what a registration of actor `a` asks with the
 * entry's settings; on a difference it names the first one in why. */
static gw_err same_settings(const type_entry *e, const Spawn__Actors__Actor *a, const char *name,
                            char *why, size_t n)
{
	gw_actor_settings s = settings_of(a);
	const gw_actor_settings *o = &e->t.settings;
	const char *tail = "registered by a live host";
	char b1[16], b2[16];
	if (s.kind != o->kind) {
		snprintf(why, n, "actor \"%s\": kind %s differs from %s %s", name,
		         kind_name(s.kind, b1, sizeof b1), kind_name(o->kind, b2, sizeof b2), tail);
		return GW_ECONFIG;
	}
	if (s.stateful != o->stateful) {
		snprintf(why, n, "actor \"%s\": stateful %s differs from %s %s", name,
		         s.stateful ? "true" : "false", o->stateful ? "true" : "false", tail);
		return GW_ECONFIG;
	}
#define SAME_NUM(field, label)                                                                     \
	if (s.field != o->field) {                                                                 \
		snprintf(why, n,                                                                   \
		         "actor \"%s\": " label " %" PRId64 " differs from %" PRId64 " %s", name,  \
		         (int64_t)s.field, (int64_t)o->field, tail);                               \
		return GW_ECONFIG;                                                                 \
	}
	SAME_NUM(snapshot_ms, "snapshot timeout (ms)")
	SAME_NUM(deactivate_ms, "deactivation timeout (ms)")
	SAME_NUM(min_pool_size, "min_pool_size")
	SAME_NUM(max_pool_size, "max_pool_size")
#undef SAME_NUM
	const char *st = state_name(a->settings ? a->settings->state_type : NULL);
	const char *ost = e->state_type ? e->state_type : "";
	if (strcmp(st, ost)) {
		snprintf(why, n, "actor \"%s\": state_type \"%s\" differs from \"%s\" %s", name, st,
		         ost, tail);
		return GW_ECONFIG;
	}
	gw_actor_timers t;
	timers_of(a, &t);
	if (!same_timers(&t, &e->t.timers)) {
		snprintf(why, n, "actor \"%s\": timer actions (%d) differ from the %d %s", name,
		         t.n, e->t.timers.n, tail);
		return GW_ECONFIG;
	}
	char **tp, **ap;
	size_t np;
	if (build_topics(a, &tp, &ap, &np) != GW_OK) {
		snprintf(why, n, "out of memory");
		return GW_ENOMEM;
	}
	bool same = np == e->n_topics;
	for (size_t i = 0; same && i < np; i++)
		same = !strcmp(tp[i], e->topics[i]) && !strcmp(ap[i], e->topic_actions[i]);
	free_pairs(tp, ap, np);
	if (!same) {
		snprintf(why, n, "actor \"%s\": channel subscriptions differ from those %s", name,
		         tail);
		return GW_ECONFIG;
	}
	return GW_OK;
}

/* set_conf replaces the entry's settings with those of a registration. */
static gw_err set_conf(type_entry *e, const Spawn__Actors__Actor *a)
{
	char **tp, **ap;
	size_t np;
	const char *st = state_name(a->settings ? a->settings->state_type : NULL);
	char *nst = *st ? strdup(st) : NULL;
	if ((*st && !nst) || build_topics(a, &tp, &ap, &np) != GW_OK) {
		free(nst);
		return GW_ENOMEM;
	}
	e->t.settings = settings_of(a);
	timers_of(a, &e->t.timers);
	free(e->state_type);
	e->state_type = nst;
	free_pairs(e->topics, e->topic_actions, e->n_topics);
	e->topics = tp;
	e->topic_actions = ap;
	e->n_topics = np;
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
		atomic_init(&e->refs, 0);
		e->hash = hash2(system, name);
		e->next = r->buckets[e->hash & (r->nbuckets - 1)];
		r->buckets[e->hash & (r->nbuckets - 1)] = e;
		r->count++;
	}
	if (!served_by_other(e, host)) {
		/* No other host serves it: this registration's settings win, and
		 * the actions are those this host serves. */
		if (set_conf(e, a) != GW_OK)
			goto nomem;
		free_strv(e->known, e->n_known);
		e->known = NULL;
		e->n_known = 0;
	}
	if (merge_known(e, acts, n) != GW_OK)
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
	gw_target_ops_of(host)->hold(host);
	e->b[e->nb++] = (binding){.host = host, .actions = acts, .n_actions = n};
	atomic_fetch_add(&r->served_gen, 1);
	return GW_OK;
nomem:
	free_strv(acts, n);
	return GW_ENOMEM;
}

/* check_actor applies the rules that need no registry state to entry i
 * of a registration of system sys. */
static gw_err check_actor(const gw_registry *r, const char *sys,
                          const Spawn__Actors__Registry__ActorsEntry *en, char *why, size_t n)
{
	const Spawn__Actors__Actor *a = en ? en->value : NULL;
	const char *key = en && en->key ? en->key : "";
	const char *name = a && a->id && a->id->name ? a->id->name : "";
	if (!a || (!key[0] && !name[0])) {
		snprintf(why, n, "an actor in the registration has no name");
		return GW_EINVAL;
	}
	if (strcmp(key, name)) {
		snprintf(why, n, "actor map key \"%s\" differs from its ActorId.name \"%s\"", key,
		         name);
		return GW_EINVAL;
	}
	const char *asys = a->id->system ? a->id->system : "";
	if (asys[0] && strcmp(asys, sys)) {
		snprintf(why, n,
		         "actor map key \"%s\": ActorId.system \"%s\" differs from the system "
		         "being registered \"%s\"",
		         key, asys, sys);
		return GW_EINVAL;
	}
	if (a->n_actions == 0 && a->n_timer_actions == 0) {
		snprintf(why, n, "actor \"%s\" has no actions", name);
		return GW_EINVAL;
	}
	const char *st = a->settings && a->settings->state_type ? a->settings->state_type : "";
	if (st[0] && !state_type_ok(st)) {
		snprintf(why, n,
		         "actor \"%s\": state_type \"%.200s\" is neither a protobuf message name "
		         "(pkg.Msg) nor a type URL (type.googleapis.com/pkg.Msg)",
		         name, st);
		return GW_EINVAL;
	}
	for (size_t i = 0; i < a->n_timer_actions; i++) {
		const Spawn__Actors__FixedTimerAction *t = a->timer_actions[i];
		if (!t || !t->action || !t->action->name || !t->action->name[0]) {
			snprintf(why, n, "actor \"%s\": a timer action names no action", name);
			return GW_EINVAL;
		}
		if (t->seconds <= 0) {
			snprintf(
			    why, n,
			    "actor \"%s\": timer action \"%s\" has period %d ms; periods must be "
			    "positive",
			    name, t->action->name, (int)t->seconds);
			return GW_EINVAL;
		}
		if (t->seconds < r->o.timer_floor_ms) {
			snprintf(why, n,
			         "actor \"%s\": timer action \"%s\" has period %d ms, below the "
			         "floor of %" PRId64 " ms",
			         name, t->action->name, (int)t->seconds, r->o.timer_floor_ms);
			return GW_EINVAL;
		}
	}
	return GW_OK;
}

gw_err gw_registry_register(gw_registry *r, gw_host *host, const Spawn__Actors__ActorSystem *sys,
                            char *why, size_t whylen)
{
	if (!sys || !sys->name || !sys->name[0]) {
		snprintf(why, whylen, "registration names no actor system");
		return GW_EINVAL;
	}
	const Spawn__Actors__Registry *reg = sys->registry;
	if (!reg || reg->n_actors == 0) {
		snprintf(why, whylen, "registration has no actors");
		return GW_EINVAL;
	}
	gw_err err = GW_OK;
	for (size_t i = 0; i < reg->n_actors && !err; i++)
		err = check_actor(r, sys->name, reg->actors[i], why, whylen);
	if (err)
		return err;
	pthread_rwlock_wrlock(&r->lock);
	/* Check every actor against the types other hosts serve, then bind:
	 * a refused registration binds nothing. */
	for (size_t i = 0; i < reg->n_actors && !err; i++) {
		const Spawn__Actors__Registry__ActorsEntry *en = reg->actors[i];
		type_entry *e = find(r, sys->name, en->key);
		if (e && served_by_other(e, host))
			err = same_settings(e, en->value, en->key, why, whylen);
	}
	for (size_t i = 0; i < reg->n_actors && !err; i++) {
		const Spawn__Actors__Registry__ActorsEntry *en = reg->actors[i];
		err = bind_one(r, host, sys->name, en->value, en->key);
		if (err)
			snprintf(why, whylen, "out of memory");
	}
	pthread_rwlock_unlock(&r->lock);
	if (err == GW_ENOMEM)
		gw_registry_unbind_host(r, host);
	return err;
}

void gw_registry_unbind_host(gw_registry *r, gw_host *host)
{
	pthread_rwlock_wrlock(&r->lock);
	size_t dropped = 0;
	int64_t now = now_ms();
	for (size_t i = 0; i < r->nbuckets; i++)
		for (type_entry *e = r->buckets[i]; e; e = e->next)
			for (size_t j = 0; j < e->nb; j++)
				if (e->b[j].host == host) {
					free_strv(e->b[j].actions, e->b[j].n_actions);
					e->b[j] = e->b[--e->nb];
					atomic_fetch_add(&r->served_gen, 1);
					dropped++;
					if (!e->nb) {
						e->orphan_since_ms = now;
						int64_t due = now + r->o.grace_ms;
						if (due < atomic_load(&r->sweep_at_ms))
							atomic_store(&r->sweep_at_ms, due);
					}
					break;
				}
	pthread_rwlock_unlock(&r->lock);
	while (dropped--)
		gw_target_ops_of(host)->rele(host);
}

static void inst_delete_at(gw_registry *r, size_t i);

/* islot: the entry in slot i, or NULL. */
static inst_entry *islot(const gw_registry *r, size_t i)
{
	return r->islots[i] ? gw_slab_ptr(&r->islab, r->islots[i]) : NULL;
}

/* remove_instances frees the instances of template t (being freed),
 * whatever its kind became since they were spawned. */
static void remove_instances(gw_registry *r, const type_entry *t)
{
	if (!t->n_inst)
		return;
	/* A slot emptied at i may let an entry of a later run move back
	 * into it (inst_delete_at): look at i again before moving on. */
	for (size_t i = 0; i < r->nislots;) {
		inst_entry *e = islot(r, i);
		if (e && e->tmpl == t) {
			inst_delete_at(r, i);
			gw_slab_free(e);
		} else {
			i++;
		}
	}
}

size_t gw_registry_sweep(gw_registry *r)
{
	int64_t now = now_ms();
	if (now < atomic_load(&r->sweep_at_ms))
		return 0;
	size_t freed = 0;
	int64_t next = INT64_MAX;
	pthread_rwlock_wrlock(&r->lock);
	for (size_t i = 0; i < r->nbuckets && freed < SWEEP_BATCH; i++)
		for (type_entry **pp = &r->buckets[i]; *pp;) {
			type_entry *e = *pp;
			if (e->nb) {
				pp = &e->next;
				continue;
			}
			int64_t due = e->orphan_since_ms + r->o.grace_ms;
			if (due > now || atomic_load(&e->refs) > 0) {
				/* Not yet, or actors still hold it: look again at its
				 * due time, or in a second while they deactivate. */
				int64_t again = due > now ? due : now + 1000;
				if (again < next)
					next = again;
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			r->count--;
			remove_instances(r, e);
			entry_free(e);
			freed++;
		}
	if (freed >= SWEEP_BATCH)
		next = now; /* more may be due: go on at the next tick */
	atomic_store(&r->sweep_at_ms, next);
	r->freed_untrimmed += freed;
	bool trim = r->freed_untrimmed >= 64 && freed < SWEEP_BATCH;
	if (trim)
		r->freed_untrimmed = 0;
	pthread_rwlock_unlock(&r->lock);
#ifdef __GLIBC__
	/* Many small blocks went back to malloc: hand the free pages to the
	 * system once the backlog is done, or the RSS of a gateway that saw a
	 * large registration never comes down (glibc trims only the top of the
	 * heap by itself). */
	if (trim)
		malloc_trim(0);
#endif
	if (freed)
		GW_INFO("registry: %zu actor type(s) without a host for %" PRId64
		        " ms freed in %" PRId64 " ms; %zu left",
		        freed, r->o.grace_ms, now_ms() - now, gw_registry_count(r));
	return freed;
}

size_t gw_registry_count(gw_registry *r)
{
	pthread_rwlock_rdlock(&r->lock);
	size_t n = r->count;
	pthread_rwlock_unlock(&r->lock);
	return n;
}

uint64_t gw_registry_served_gen(gw_registry *r)
{
	return atomic_load(&r->served_gen);
}

gw_err gw_registry_served(gw_registry *r, char **out)
{
	char **v = NULL;
	size_t n = 0, cap = 0, bytes = 1;
	gw_err e = GW_OK;
	pthread_rwlock_rdlock(&r->lock);
	for (size_t b = 0; b < r->nbuckets && e == GW_OK; b++) {
		for (type_entry *t = r->buckets[b]; t && e == GW_OK; t = t->next) {
			if (t->nb == 0)
				continue;
			bool subs = t->t.settings.kind != SPAWN__ACTORS__KIND__UNNAMED;
			size_t lines = 1 + (subs ? t->n_topics : 0);
			if (n + lines > cap) {
				size_t nc = cap ? cap * 2 : 16;
				while (nc < n + lines)
					nc *= 2;
				char **nv = realloc(v, nc * sizeof *nv);
				if (!nv) {
					e = GW_ENOMEM;
					break;
				}
				v = nv;
				cap = nc;
			}
			size_t len = strlen(t->t.system) + strlen(t->t.name) + 2;
			if (!(v[n] = malloc(len))) {
				e = GW_ENOMEM;
				break;
			}
			snprintf(v[n], len, "%s/%s", t->t.system, t->t.name);
			bytes += len;
			n++;
			for (size_t k = 0; subs && k < t->n_topics; k++) {
				len = strlen(t->t.system) + strlen(t->t.name) +
				      strlen(t->topics[k]) + strlen(t->topic_actions[k]) + 5;
				if (!(v[n] = malloc(len))) {
					e = GW_ENOMEM;
					break;
				}
				snprintf(v[n], len, "%c%s%c%s%c%s%c%s", GW_SUB_MARK, t->t.system,
				         GW_SUB_MARK, t->t.name, GW_SUB_MARK, t->topics[k],
				         GW_SUB_MARK, t->topic_actions[k]);
				bytes += len;
				n++;
			}
		}
	}
	pthread_rwlock_unlock(&r->lock);
	/* The membership publishes at most GW_SERVED_MAX bytes: past that the
	 * subscriptions are left out (the types must be there: placement
	 * stands on them), and broadcasts from other members miss them. */
	bool subs = true;
	if (bytes > GW_SERVED_MAX) {
		subs = false;
		bytes = 1;
		for (size_t i = 0; i < n; i++)
			if (v[i][0] != GW_SUB_MARK)
				bytes += strlen(v[i]) + 1;
		GW_WARN("registry: the served list is over %d bytes: channel subscriptions are not "
		        "published to the cluster (broadcasts from other members miss them)",
		        GW_SERVED_MAX);
	}
	char *s = e == GW_OK ? malloc(bytes) : NULL;
	if (s) {
		if (n > 1)
			qsort(v, n, sizeof *v, cmp_str);
		size_t at = 0;
		for (size_t i = 0; i < n; i++) {
			if (!subs && v[i][0] == GW_SUB_MARK)
				continue;
			size_t len = strlen(v[i]);
			if (at)
				s[at++] = '\n';
			memcpy(s + at, v[i], len);
			at += len;
		}
		s[at] = '\0';
		*out = s;
	} else {
		e = GW_ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return e;
}

void gw_registry_type_hold(gw_actor_type *type)
{
	atomic_fetch_add_explicit(&((type_entry *)type)->refs, 1, memory_order_relaxed);
}

void gw_registry_type_rele(gw_actor_type *type)
{
	if (type)
		atomic_fetch_sub_explicit(&((type_entry *)type)->refs, 1, memory_order_release);
}

gw_err gw_registry_check_state(gw_registry *r, gw_actor_type *type, const char *type_url, char *msg,
                               size_t n)
{
	type_entry *e = (type_entry *)type;
	gw_err err = GW_OK;
	pthread_rwlock_rdlock(&r->lock);
	if (e->state_type && strcmp(state_name(type_url ? type_url : ""), e->state_type)) {
		snprintf(
		    msg, n,
		    "actor type %s returned a state of type \"%.200s\"; it declared state_type "
		    "\"%.200s\"",
		    e->t.name, type_url ? type_url : "", e->state_type);
		err = GW_ECONFIG;
	}
	pthread_rwlock_unlock(&r->lock);
	return err;
}

gw_err gw_registry_lookup(gw_registry *r, const char *system, const char *actor,
                          gw_actor_type **type, gw_actor_settings *settings)
{
	pthread_rwlock_rdlock(&r->lock);
	type_entry *e = find(r, system, actor);
	if (forgotten(r, e))
		e = NULL;
	if (e) {
		gw_registry_type_hold(&e->t);
		*type = &e->t;
		if (settings)
			*settings = e->t.settings;
	}
	pthread_rwlock_unlock(&r->lock);
	return e ? GW_OK : GW_ENOTFOUND;
}

static size_t inst_home(const gw_registry *r, uint32_t h)
{
	return h & (r->nislots - 1);
}

/* inst_slot: the slot holding (system, name), or the empty slot ending its
 * probe run (*found false). */
static size_t inst_slot(const gw_registry *r, const char *system, const char *name, uint32_t h,
                        bool *found)
{
	size_t m = r->nislots - 1;
	for (size_t i = inst_home(r, h);; i = (i + 1) & m) {
		inst_entry *e = islot(r, i);
		if (!e) {
			*found = false;
			return i;
		}
		if (e->hash == h && !strcmp(e->name, name) && !strcmp(e->tmpl->t.system, system)) {
			*found = true;
			return i;
		}
	}
}

static inst_entry *find_inst(gw_registry *r, const char *system, const char *name, uint32_t h)
{
	bool found;
	size_t i = inst_slot(r, system, name, h, &found);
	return found ? islot(r, i) : NULL;
}

/* inst_delete_at empties slot i (the entry is the caller's to free) and
 * shifts back the entries of the run after it that may move, so every
 * entry stays reachable from its home slot without a gap. */
static void inst_delete_at(gw_registry *r, size_t i)
{
	size_t m = r->nislots - 1;
	islot(r, i)->tmpl->n_inst--;
	r->islots[i] = 0;
	r->icount--;
	for (size_t j = (i + 1) & m; r->islots[j]; j = (j + 1) & m) {
		size_t home = inst_home(r, islot(r, j)->hash);
		/* j's entry may move to i when its home is not in (i, j]. */
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		r->islots[i] = r->islots[j];
		r->islots[j] = 0;
		i = j;
	}
}

static void grow_inst(gw_registry *r)
{
	size_t nb = r->nislots * 2;
	uint32_t *b = calloc(nb, sizeof *b);
	if (!b)
		return; /* the caller refuses the insert when the table is full */
	for (size_t i = 0; i < r->nislots; i++) {
		inst_entry *e = islot(r, i);
		if (!e)
			continue;
		size_t j = e->hash & (nb - 1);
		while (b[j])
			j = (j + 1) & (nb - 1);
		b[j] = r->islots[i];
	}
	free(r->islots);
	r->islots = b;
	r->nislots = nb;
}

gw_err gw_registry_spawn(gw_registry *r, const char *system, const char *name, const char *parent,
                         bool *created)
{
	uint32_t h = (uint32_t)hash2(system, name);
	gw_err err = GW_OK;
	if (created)
		*created = false;
	/* Fast path (every invocation with register_ref comes here): known. */
	pthread_rwlock_rdlock(&r->lock);
	inst_entry *e = find_inst(r, system, name, h);
	bool known = e && !strcmp(e->tmpl->t.name, parent) && !forgotten(r, e->tmpl);
	pthread_rwlock_unlock(&r->lock);
	if (known)
		return GW_OK;
	pthread_rwlock_wrlock(&r->lock);
	type_entry *t = find(r, system, parent);
	if (forgotten(r, t))
		t = NULL;
	e = find_inst(r, system, name, h);
	if (!t)
		err = GW_ENOTFOUND;
	else if (t->t.settings.kind != SPAWN__ACTORS__KIND__UNNAMED || find(r, system, name))
		err = GW_EINVAL;
	else if (e)
		err = e->tmpl == t ? GW_OK : GW_EINVAL;
	else {
		size_t nl = strlen(name) + 1;
		if ((r->icount + 1) * 4 > r->nislots * 3)
			grow_inst(r);
		e = (r->icount + 1) * 4 <= r->nislots * 3 ? gw_slab_alloc(&r->islab, sizeof *e + nl)
		                                          : NULL;
		if (!e) {
			err = GW_ENOMEM;
		} else {
			memcpy(e->name, name, nl);
			e->hash = h;
			e->tmpl = t;
			t->n_inst++;
			bool found;
			r->islots[inst_slot(r, system, name, h, &found)] = gw_slab_handle(e);
			r->icount++;
			if (created)
				*created = true;
		}
	}
	pthread_rwlock_unlock(&r->lock);
	return err;
}

gw_err gw_registry_unspawn(gw_registry *r, const char *system, const char *name)
{
	uint32_t h = (uint32_t)hash2(system, name);
	gw_err err = GW_ENOTFOUND;
	pthread_rwlock_wrlock(&r->lock);
	bool found;
	size_t i = inst_slot(r, system, name, h, &found);
	if (found) {
		inst_entry *e = islot(r, i);
		inst_delete_at(r, i);
		gw_slab_free(e);
		err = GW_OK;
	}
	pthread_rwlock_unlock(&r->lock);
	return err;
}

gw_err gw_registry_lookup_instance(gw_registry *r, const char *system, const char *name,
                                   gw_actor_type **type, gw_actor_settings *settings)
{
	pthread_rwlock_rdlock(&r->lock);
	inst_entry *e = find_inst(r, system, name, (uint32_t)hash2(system, name));
	if (e && forgotten(r, e->tmpl))
		e = NULL;
	if (e) {
		gw_registry_type_hold(&e->tmpl->t);
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
			    strcmp(e->t.system, system) || forgotten(r, e))
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
			if (has_action(b->actions, b->n_actions, action) &&
			    gw_target_ops_of(b->host)->live(b->host)) {
				gw_target_ops_of(b->host)->hold(b->host);
				*host = b->host;
				err = GW_OK;
				break;
			}
		}
	}
	pthread_rwlock_unlock(&r->lock);
	return err;
}

/* ---- listings (Admin.List, part spawnctl) ---- */

void gw_registry_foreach_type(gw_registry *r, gw_type_info_fn fn, void *user)
{
	pthread_rwlock_rdlock(&r->lock);
	for (size_t b = 0; b < r->nbuckets; b++)
		for (type_entry *t = r->buckets[b]; t; t = t->next) {
			gw_type_info ti = {
			    .system = t->t.system,
			    .name = t->t.name,
			    .kind = t->t.settings.kind,
			    .hosts = t->nb,
			    .actions = (const char *const *)t->known,
			    .n_actions = t->n_known,
			    .state_type = t->state_type,
			};
			fn(user, &ti);
		}
	pthread_rwlock_unlock(&r->lock);
}
