/* admin_list.c - Admin.List and Admin.Members (part spawnctl;
 * docs/spawnctl.md): what the gateway serves now, for operators.
 *
 * A List answers one page of one kind of item (systems, actor types, hosts,
 * active actors), in the order of each item's key:
 *   systems    name \0 member
 *   actors     system \0 name \0 member
 *   hosts      system \0 peer \0 member
 *   instances  system \0 actor \0 member
 * The page token is the kind's letter and ':' then the hex of the last key
 * given; the next page holds the items whose key is greater. Keys are
 * compared bytewise (shorter first on a common prefix).
 *
 * One gateway: the items are read from the registry, the host list and the
 * runtime's shards (each under its own lock, never two at once), and the
 * page_size + 1 smallest keys after the token are kept in a bounded
 * max-heap, so a page over a million active actors holds page_size + 1 of
 * them, never all.
 *
 * A cluster (struct lagg): the entry member sends the same request to every
 * member of its view with Peer.Admin (each answers its own page, naming
 * itself) and merges: the page_size smallest keys of the union, with a next
 * token when the union or any member had more. A member that does not
 * answer in time is named in `unanswered` with its code; the page is
 * answered anyway.
 *
 *   (started) -- every member asked --> WAITING -- last answer or deadline --> (answered)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "peer.h"
#include "server_int.h"

#define LIST_PAGE_DEFAULT 100
#define LIST_PAGE_MAX     1000
#define LIST_TOKEN_MAX    16384 /* characters of a page token */
#define LAGG_WAIT_MS      3000  /* longest the members' answers are awaited */

typedef Spawn__Gateway__V1__ListRequest list_rq;
typedef Spawn__Gateway__V1__ListReply list_rp;

static const char kind_letter[] = {'s', 'a', 'h', 'i'};

/* ---- keys ------------------------------------------------------------------ */

typedef struct lkey {
	char *p; /* owned (malloc) */
	size_t n;
} lkey;

static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

/* key_make joins n parts with NUL bytes into *k. false: out of memory. */
static bool key_make(lkey *k, const char *const *parts, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(parts[i]) + (i ? 1 : 0);
	k->p = malloc(len ? len : 1);
	k->n = len;
	if (!k->p)
		return false;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (i)
			k->p[o++] = 0;
		size_t l = strlen(parts[i]);
		memcpy(k->p + o, parts[i], l);
		o += l;
	}
	return true;
}

/* The key of the i-th item of reply r of kind, held by member. */
static bool item_key(const list_rp *r, int kind, size_t i, const char *member, lkey *k)
{
	const char *p[3];
	size_t n = 3;
	switch (kind) {
	case SPAWN__GATEWAY__V1__LIST_KIND__LIST_SYSTEMS:
		p[0] = r->systems[i]->name;
		p[1] = member;
		n = 2;
		break;
	case SPAWN__GATEWAY__V1__LIST_KIND__LIST_ACTORS:
		p[0] = r->actors[i]->system;
		p[1] = r->actors[i]->name;
		p[2] = member;
		break;
	case SPAWN__GATEWAY__V1__LIST_KIND__LIST_HOSTS:
		p[0] = r->hosts[i]->system;
		p[1] = r->hosts[i]->peer;
		p[2] = member;
		break;
	default:
		p[0] = r->instances[i]->system;
		p[1] = r->instances[i]->actor;
		p[2] = member;
		break;
	}
	return key_make(k, p, n);
}

static size_t reply_count(const list_rp *r, int kind)
{
	switch (kind) {
	case SPAWN__GATEWAY__V1__LIST_KIND__LIST_SYSTEMS:
		return r->n_systems;
	case SPAWN__GATEWAY__V1__LIST_KIND__LIST_ACTORS:
		return r->n_actors;
	case SPAWN__GATEWAY__V1__LIST_KIND__LIST_HOSTS:
		return r->n_hosts;
	default:
		return r->n_instances;
	}
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* token_decode: the key after which a page starts (k->n == 0 and k->p NULL
 * for the first page). false: not a token of this kind. */
static bool token_decode(const char *t, int kind, lkey *k)
{
	k->p = NULL;
	k->n = 0;
	if (!t || !t[0])
		return true;
	size_t len = strlen(t);
	if (len < 2 || len > LIST_TOKEN_MAX || t[0] != kind_letter[kind] || t[1] != ':' ||
	    (len - 2) % 2)
		return false;
	size_t n = (len - 2) / 2;
	char *p = malloc(n ? n : 1);
	if (!p)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(t[2 + 2 * i]), lo = hexval(t[3 + 2 * i]);
		if (hi < 0 || lo < 0) {
			free(p);
			return false;
		}
		p[i] = (char)(hi << 4 | lo);
	}
	k->p = p;
	k->n = n;
	return true;
}

/* token_encode: the token of key k (caller frees), NULL when out of memory. */
static char *token_encode(int kind, const lkey *k)
{
	static const char hex[] = "0123456789abcdef";
	char *t = malloc(2 * k->n + 3);
	if (!t)
		return NULL;
	t[0] = kind_letter[kind];
	t[1] = ':';
	for (size_t i = 0; i < k->n; i++) {
		t[2 + 2 * i] = hex[(unsigned char)k->p[i] >> 4];
		t[3 + 2 * i] = hex[(unsigned char)k->p[i] & 15];
	}
	t[2 + 2 * k->n] = 0;
	return t;
}

/* ---- checks ----------------------------------------------------------------- */

bool gwi_admin_list_check(gwi_ucall *c, const list_rq *rq)
{
	const char *bad = NULL;
	lkey k = {0};
	if ((int)rq->kind < 0 || (int)rq->kind > SPAWN__GATEWAY__V1__LIST_KIND__LIST_INSTANCES)
		bad = "kind is not a ListKind (systems 0, actors 1, hosts 2, instances 3)";
	else if (rq->page_size > LIST_PAGE_MAX)
		bad = "page_size is over 1000";
	else if (!token_decode(rq->page_token, (int)rq->kind, &k))
		bad = "page_token is not one this kind of list gave";
	free(k.p);
	if (bad)
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, bad, NULL);
	return bad == NULL;
}

/* ---- one gateway's items: a bounded max-heap of the smallest keys ------------ */

typedef struct cand {
	lkey key;
	void *msg; /* in the collector's arena */
} cand;

typedef struct coll {
	int kind;
	const char *system; /* "" = all */
	const char *member;
	lkey after;   /* owned: items with a greater key only */
	size_t limit; /* page_size + 1 */
	cand *heap;   /* owned: max-heap on key, n entries */
	size_t n;
	spawn_arena ar;
	char *scratch; /* owned: the key being offered */
	size_t scap;
	bool oom;
	bool stopped;   /* the server began its shutdown: the walk ended early */
	gw_server *srv; /* borrowed */
} coll;

/* heap_up: returns where entry i ends. */
static size_t heap_up(cand *h, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (key_cmp(h[p].key.p, h[p].key.n, h[i].key.p, h[i].key.n) >= 0)
			return i;
		cand t = h[p];
		h[p] = h[i];
		h[i] = t;
		i = p;
	}
	return i;
}

static void heap_down(cand *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && key_cmp(h[l].key.p, h[l].key.n, h[m].key.p, h[m].key.n) > 0)
			m = l;
		if (r < n && key_cmp(h[r].key.p, h[r].key.n, h[m].key.p, h[m].key.n) > 0)
			m = r;
		if (m == i)
			return;
		cand t = h[m];
		h[m] = h[i];
		h[i] = t;
		i = m;
	}
}

/* coll_offer: whether an item of these key parts belongs to the page; if
 * so it takes a slot and returns where its message goes (*slot), else NULL. */
static void **coll_offer(coll *x, const char *const *parts, size_t n)
{
	if (x->oom)
		return NULL;
	if (x->system[0] && strcmp(parts[0], x->system) != 0)
		return NULL;
	/* The key is built in the scratch buffer: only an item that enters
	 * the page gets its own copy (a walk over a million actors allocates
	 * for the few that do). */
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(parts[i]) + (i ? 1 : 0);
	if (len + 1 > x->scap) {
		char *ns = realloc(x->scratch, len + 1);
		if (!ns) {
			x->oom = true;
			return NULL;
		}
		x->scratch = ns;
		x->scap = len + 1;
	}
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (i)
			x->scratch[o++] = 0;
		size_t l = strlen(parts[i]);
		memcpy(x->scratch + o, parts[i], l);
		o += l;
	}
	if (x->after.p && key_cmp(x->scratch, len, x->after.p, x->after.n) <= 0)
		return NULL;
	if (x->n == x->limit && key_cmp(x->scratch, len, x->heap[0].key.p, x->heap[0].key.n) >= 0)
		return NULL;
	/* an item seen twice (a shard's table grew during the walk) */
	for (size_t j = 0; j < x->n; j++)
		if (key_cmp(x->scratch, len, x->heap[j].key.p, x->heap[j].key.n) == 0)
			return NULL;
	lkey k = {malloc(len ? len : 1), len};
	if (!k.p) {
		x->oom = true;
		return NULL;
	}
	memcpy(k.p, x->scratch, len);
	if (x->n == x->limit) {
		free(x->heap[0].key.p);
		x->heap[0] = x->heap[--x->n];
		heap_down(x->heap, x->n, 0);
	}
	x->heap[x->n].key = k;
	x->heap[x->n].msg = NULL;
	size_t i = x->n++;
	return &x->heap[heap_up(x->heap, i)].msg;
}

static char *ad(coll *x, const char *s)
{
	char *d = spawn_arena_strdup(&x->ar, s ? s : "");
	if (!d)
		x->oom = true;
	return d;
}

static void *aalloc(coll *x, size_t n)
{
	void *p = spawn_arena_alloc(&x->ar, n);
	if (!p)
		x->oom = true;
	return p;
}

static void type_item(void *user, const gw_type_info *t)
{
	coll *x = user;
	const char *parts[3] = {t->system, t->name, x->member};
	void **slot = coll_offer(x, parts, 3);
	if (!slot)
		return;
	Spawn__Gateway__V1__ActorTypeInfo *a = aalloc(x, sizeof *a);
	char **acts = t->n_actions ? aalloc(x, t->n_actions * sizeof *acts) : NULL;
	if (!a || (t->n_actions && !acts))
		return;
	spawn__gateway__v1__actor_type_info__init(a);
	a->system = ad(x, t->system);
	a->name = ad(x, t->name);
	a->kind = (Spawn__Actors__Kind)t->kind;
	a->hosts = (uint32_t)t->hosts;
	a->state_type = ad(x, t->state_type);
	for (size_t i = 0; i < t->n_actions; i++)
		acts[i] = ad(x, t->actions[i]);
	a->n_actions = t->n_actions;
	a->actions = acts;
	*slot = a;
}

static void host_item(void *user, const gwi_host_info *h)
{
	coll *x = user;
	const char *parts[3] = {h->system, h->peer, x->member};
	void **slot = coll_offer(x, parts, 3);
	if (!slot)
		return;
	Spawn__Gateway__V1__HostInfo *m = aalloc(x, sizeof *m);
	if (!m)
		return;
	spawn__gateway__v1__host_info__init(m);
	m->system = ad(x, h->system);
	m->peer = ad(x, h->peer);
	m->principal = ad(x, h->principal);
	m->in_flight = (uint32_t)h->in_flight;
	m->batch = h->batch;
	*slot = m;
}

static bool active_item(void *user, const gw_active_info *a)
{
	coll *x = user;
	if (atomic_load(&x->srv->shutting_down))
		x->stopped = true;
	if (x->stopped || x->oom)
		return false;
	const char *parts[3] = {a->system, a->name, x->member};
	void **slot = coll_offer(x, parts, 3);
	if (!slot)
		return true;
	Spawn__Gateway__V1__InstanceInfo *m = aalloc(x, sizeof *m);
	if (!m)
		return false;
	spawn__gateway__v1__instance_info__init(m);
	m->system = ad(x, a->system);
	m->actor = ad(x, a->name);
	m->type = ad(x, a->type);
	m->queued = a->queued;
	m->busy = a->busy;
	m->revision = a->revision;
	*slot = m;
	return true;
}

/* Systems: every system with a registered type, with its counts. */
typedef struct sysent {
	char *name; /* owned */
	uint32_t types, hosts, active;
} sysent;

typedef struct syslist {
	sysent *v; /* owned */
	size_t n, cap;
	bool oom, stopped;
	gw_server *srv; /* borrowed */
} syslist;

static int sysent_cmp(const void *a, const void *b)
{
	return strcmp(((const sysent *)a)->name, ((const sysent *)b)->name);
}

static sysent *sys_find(syslist *l, const char *name)
{
	sysent k = {.name = (char *)name};
	return l->n ? bsearch(&k, l->v, l->n, sizeof *l->v, sysent_cmp) : NULL;
}

static void sys_type(void *user, const gw_type_info *t)
{
	syslist *l = user;
	if (l->oom)
		return;
	if (l->n == l->cap) {
		size_t nc = l->cap ? 2 * l->cap : 16;
		sysent *nv = realloc(l->v, nc * sizeof *nv);
		if (!nv) {
			l->oom = true;
			return;
		}
		l->v = nv;
		l->cap = nc;
	}
	if (!(l->v[l->n].name = strdup(t->system))) {
		l->oom = true;
		return;
	}
	l->v[l->n].types = 1;
	l->v[l->n].hosts = l->v[l->n].active = 0;
	l->n++;
}

static void sys_host(void *user, const gwi_host_info *h)
{
	sysent *e = sys_find(user, h->system);
	if (e)
		e->hosts++;
}

static bool sys_active(void *user, const gw_active_info *a)
{
	syslist *l = user;
	if (atomic_load(&l->srv->shutting_down)) {
		l->stopped = true;
		return false;
	}
	sysent *e = sys_find(l, a->system);
	if (e)
		e->active++;
	return true;
}

static void list_systems(coll *x, gw_server *s)
{
	syslist l = {.srv = s};
	gw_registry_foreach_type(s->reg, sys_type, &l);
	if (l.n)
		qsort(l.v, l.n, sizeof *l.v, sysent_cmp);
	/* merge the entries of one system (one per type) */
	size_t w = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (w && strcmp(l.v[w - 1].name, l.v[i].name) == 0) {
			l.v[w - 1].types++;
			free(l.v[i].name);
		} else {
			l.v[w++] = l.v[i];
		}
	}
	l.n = w;
	if (!l.oom) {
		gwi_host_foreach(s, sys_host, &l);
		gw_runtime_foreach_active(s->rt, sys_active, &l);
	}
	x->oom |= l.oom;
	x->stopped |= l.stopped;
	for (size_t i = 0; i < l.n; i++) {
		const char *parts[2] = {l.v[i].name, x->member};
		void **slot = coll_offer(x, parts, 2);
		Spawn__Gateway__V1__SystemInfo *m = slot ? aalloc(x, sizeof *m) : NULL;
		if (m) {
			spawn__gateway__v1__system_info__init(m);
			m->name = ad(x, l.v[i].name);
			m->actor_types = l.v[i].types;
			m->hosts = l.v[i].hosts;
			m->active = l.v[i].active;
			*slot = m;
		}
		free(l.v[i].name);
	}
	free(l.v);
}

static int cand_cmp(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	return key_cmp(x->key.p, x->key.n, y->key.p, y->key.n);
}

/* fill_reply: the first k of the sorted cands into r (pointers borrowed
 * from cands and members). With more, *token is the next page's token
 * (caller frees), else NULL. */
static bool fill_reply(list_rp *r, int kind, cand *cands, size_t k, char **members, bool more,
                       char **token)
{
	void **items = calloc(k ? k : 1, sizeof *items);
	if (!items)
		return false;
	for (size_t i = 0; i < k; i++)
		items[i] = cands[i].msg;
	switch (kind) {
	case SPAWN__GATEWAY__V1__LIST_KIND__LIST_SYSTEMS:
		r->n_systems = k;
		r->systems = (Spawn__Gateway__V1__SystemInfo **)items;
		break;
	case SPAWN__GATEWAY__V1__LIST_KIND__LIST_ACTORS:
		r->n_actors = k;
		r->actors = (Spawn__Gateway__V1__ActorTypeInfo **)items;
		break;
	case SPAWN__GATEWAY__V1__LIST_KIND__LIST_HOSTS:
		r->n_hosts = k;
		r->hosts = (Spawn__Gateway__V1__HostInfo **)items;
		break;
	default:
		r->n_instances = k;
		r->instances = (Spawn__Gateway__V1__InstanceInfo **)items;
		break;
	}
	r->n_members = k;
	r->members = members;
	*token = NULL;
	if (more && k > 0 && !(*token = token_encode(kind, &cands[k - 1].key)))
		return false;
	r->next_page_token = *token ? *token : "";
	return true;
}

static void reply_free_items(list_rp *r)
{
	free(r->systems);
	free(r->actors);
	free(r->hosts);
	free(r->instances);
}

static size_t page_of(const list_rq *rq)
{
	return rq->page_size ? rq->page_size : LIST_PAGE_DEFAULT;
}

/* list_walk answers c with this gateway's page of kind. */
static void list_walk(gwi_ucall *c, int kind, const char *system, const char *page_token,
                      size_t page, const char *member, bool job)
{
	gw_server *s = c->srv;
	coll x = {.kind = kind, .system = system, .member = member, .limit = page + 1, .srv = s};
	spawn_arena_init(&x.ar, 0);
	token_decode(page_token, x.kind, &x.after); /* checked by gwi_admin_list_check */
	x.heap = calloc(x.limit, sizeof *x.heap);
	char **members = calloc(x.limit, sizeof *members);
	if (!x.heap || !members) {
		x.oom = true;
	} else {
		switch (x.kind) {
		case SPAWN__GATEWAY__V1__LIST_KIND__LIST_SYSTEMS:
			list_systems(&x, s);
			break;
		case SPAWN__GATEWAY__V1__LIST_KIND__LIST_ACTORS:
			gw_registry_foreach_type(s->reg, type_item, &x);
			break;
		case SPAWN__GATEWAY__V1__LIST_KIND__LIST_HOSTS:
			gwi_host_foreach(s, host_item, &x);
			break;
		default:
			gw_runtime_foreach_active(s->rt, active_item, &x);
			break;
		}
	}
	for (size_t i = 0; i < x.n && !x.oom; i++)
		if (!x.heap[i].msg)
			x.oom = true;
	list_rp r = SPAWN__GATEWAY__V1__LIST_REPLY__INIT;
	char *token = NULL;
	if (!x.oom) {
		qsort(x.heap, x.n, sizeof *x.heap, cand_cmp);
		for (size_t i = 0; i < x.limit; i++)
			members[i] = (char *)x.member;
		x.oom = !fill_reply(&r, x.kind, x.heap, x.n < page ? x.n : page, members,
		                    x.n > page, &token);
	}
	/* a job's slot is given back before the answer: once the call is
	 * answered the server may be shut down and freed */
	if (job)
		atomic_fetch_sub(&s->listings, 1);
	if (x.stopped)
		gwi_ucall_reply(c, GRPC_STATUS_UNAVAILABLE, "the gateway is shutting down", NULL);
	else if (x.oom)
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
	else
		gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &r.base);
	reply_free_items(&r);
	free(token);
	free(members);
	for (size_t i = 0; x.heap && i < x.n; i++)
		free(x.heap[i].key.p);
	free(x.heap);
	free(x.scratch);
	free(x.after.p);
	spawn_arena_fini(&x.ar);
}

/* A listing of this gateway's items runs on a thread of its own, never on
 * the completion-queue thread that received it (a walk over a million
 * active actors takes a second: the CQ's other calls would wait). At most
 * LIST_THREADS run at once (gw_server.listings); one more is refused
 * RESOURCE_EXHAUSTED. The call is answered before the thread ends, and the
 * server's shutdown waits for every call to be answered (wait_calls); a
 * walk sees the shutdown (gw_server.shutting_down) and stops. */
#define LIST_THREADS 4

typedef struct ljob {
	gwi_ucall *c;
	int kind;
	size_t page;
	char *system, *token, *member; /* owned, one allocation */
} ljob;

static void *ljob_main(void *arg)
{
	ljob *j = arg;
	list_walk(j->c, j->kind, j->system, j->token, j->page, j->member, true);
	free(j);
	return NULL;
}

void gwi_admin_list_local(gwi_ucall *c, const list_rq *rq, const char *member)
{
	gw_server *s = c->srv;
	const char *sys = rq->system ? rq->system : "", *tok = rq->page_token ? rq->page_token : "";
	member = member ? member : "";
	if (atomic_fetch_add(&s->listings, 1) >= LIST_THREADS) {
		atomic_fetch_sub(&s->listings, 1);
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
		                "too many listings in progress on this gateway; retry", NULL);
		return;
	}
	size_t ls = strlen(sys) + 1, lt = strlen(tok) + 1, lm = strlen(member) + 1;
	ljob *j = malloc(sizeof *j + ls + lt + lm);
	pthread_t th;
	pthread_attr_t at;
	bool started = false;
	if (j) {
		j->c = c;
		j->kind = (int)rq->kind;
		j->page = page_of(rq);
		j->system = (char *)(j + 1);
		j->token = j->system + ls;
		j->member = j->token + lt;
		memcpy(j->system, sys, ls);
		memcpy(j->token, tok, lt);
		memcpy(j->member, member, lm);
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		started = pthread_create(&th, &at, ljob_main, j) == 0;
		pthread_attr_destroy(&at);
	}
	if (!started) {
		free(j);
		atomic_fetch_sub(&s->listings, 1);
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
		                "cannot start a listing (out of memory or threads); retry", NULL);
	}
}

/* ---- a cluster: every member's page, merged ------------------------------------ */

typedef struct lmember {
	char *id, *address; /* owned */
	list_rp *r;         /* owned (protobuf-c heap): its answer; NULL = not answered */
	int code;           /* not answered: its status */
	char msg[300];
	struct lagg *g;
} lmember;

typedef struct lagg {
	gwi_ucall *c;
	int kind;
	size_t page;
	pthread_mutex_t mu;
	size_t pending; /* answers still awaited, plus one while starting */
	size_t n;
	lmember *m; /* owned, n */
} lagg;

static void lagg_free(lagg *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->m[i].id);
		free(g->m[i].address);
		if (g->m[i].r)
			protobuf_c_message_free_unpacked(&g->m[i].r->base, NULL);
	}
	free(g->m);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

static void lagg_finish(lagg *g)
{
	size_t total = 0, nu = 0;
	bool more = false;
	for (size_t i = 0; i < g->n; i++) {
		if (g->m[i].r) {
			total += reply_count(g->m[i].r, g->kind);
			more |= g->m[i].r->next_page_token && g->m[i].r->next_page_token[0];
		} else {
			nu++;
		}
	}
	cand *cands = calloc(total ? total : 1, sizeof *cands);
	char **owner = calloc(total ? total : 1, sizeof *owner); /* member of cands[i] */
	char **members = calloc(total ? total : 1, sizeof *members);
	Spawn__Gateway__V1__MemberFailure *mf = calloc(nu ? nu : 1, sizeof *mf);
	Spawn__Gateway__V1__MemberFailure **mfp = calloc(nu ? nu : 1, sizeof *mfp);
	list_rp r = SPAWN__GATEWAY__V1__LIST_REPLY__INIT;
	char *token = NULL;
	bool oom = !cands || !owner || !members || !mf || !mfp;
	size_t k = 0, u = 0;
	for (size_t i = 0; i < g->n && !oom; i++) {
		lmember *m = &g->m[i];
		if (!m->r) {
			spawn__gateway__v1__member_failure__init(&mf[u]);
			mf[u].member_id = m->id;
			mf[u].address = m->address;
			mf[u].code = m->code;
			mf[u].message = m->msg;
			mfp[u] = &mf[u];
			u++;
			continue;
		}
		size_t cnt = reply_count(m->r, g->kind);
		for (size_t j = 0; j < cnt && !oom; j++) {
			/* the member's own name for itself: the id in the view */
			if (!item_key(m->r, g->kind, j, m->id, &cands[k].key)) {
				oom = true;
				break;
			}
			switch (g->kind) {
			case SPAWN__GATEWAY__V1__LIST_KIND__LIST_SYSTEMS:
				cands[k].msg = m->r->systems[j];
				break;
			case SPAWN__GATEWAY__V1__LIST_KIND__LIST_ACTORS:
				cands[k].msg = m->r->actors[j];
				break;
			case SPAWN__GATEWAY__V1__LIST_KIND__LIST_HOSTS:
				cands[k].msg = m->r->hosts[j];
				break;
			default:
				cands[k].msg = m->r->instances[j];
				break;
			}
			/* the owner rides with the candidate through the sort */
			owner[k] = m->id;
			k++;
		}
	}
	if (!oom) {
		/* sort an index so each candidate keeps its member */
		typedef struct {
			cand c;
			char *member;
		} pair;
		pair *pv = calloc(k ? k : 1, sizeof *pv);
		if (!pv) {
			oom = true;
		} else {
			for (size_t i = 0; i < k; i++) {
				pv[i].c = cands[i];
				pv[i].member = owner[i];
			}
			qsort(pv, k, sizeof *pv, cand_cmp); /* cand is the first member */
			for (size_t i = 0; i < k; i++) {
				cands[i] = pv[i].c;
				members[i] = pv[i].member;
			}
			free(pv);
			/* more past the page: the union's own excess, or a member's
			 * (whose rest is past its own last, so past this page's) */
			size_t take = k < g->page ? k : g->page;
			oom = !fill_reply(&r, g->kind, cands, take, members, k > g->page || more,
			                  &token);
		}
	}
	r.n_unanswered = u;
	r.unanswered = mfp;
	if (u && !oom)
		GW_WARN("admin List: %zu of %zu members did not answer (the first: %s: %s)", u,
		        g->n, mf[0].member_id, mf[0].message);
	if (oom)
		gwi_ucall_reply(g->c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
	else
		gwi_ucall_reply(g->c, GRPC_STATUS_OK, NULL, &r.base);
	reply_free_items(&r);
	free(token);
	for (size_t i = 0; cands && i < k; i++)
		free(cands[i].key.p);
	free(cands);
	free(owner);
	free(members);
	free(mf);
	free(mfp);
	lagg_free(g);
}

static void lagg_rele(lagg *g)
{
	pthread_mutex_lock(&g->mu);
	bool last = --g->pending == 0;
	pthread_mutex_unlock(&g->mu);
	if (last)
		lagg_finish(g);
}

/* A member's answer. Peer thread. */
static void lagg_answered(void *user, grpc_status_code code, const char *details,
                          grpc_byte_buffer *resp, const char *owner, bool not_dispatched,
                          bool peer_refused)
{
	lmember *m = user;
	(void)owner;
	(void)not_dispatched;
	(void)peer_refused; /* named in unanswered with its code, like any failure */
	if (code == GRPC_STATUS_OK) {
		Spawn__Gateway__V1__PeerAdminReply *r = NULL;
		if (spawn_wire_unpack(&spawn__gateway__v1__peer_admin_reply__descriptor, resp, NULL,
		                      (ProtobufCMessage **)&r) == 0 &&
		    r->reply_case == SPAWN__GATEWAY__V1__PEER_ADMIN_REPLY__REPLY_LIST &&
		    reply_count(r->list, m->g->kind) <= m->g->page) {
			m->r = r->list; /* taken out of the wrapper */
			r->list = NULL;
			r->reply_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REPLY__REPLY__NOT_SET;
		} else {
			m->code = GRPC_STATUS_INTERNAL;
			snprintf(m->msg, sizeof m->msg, "a malformed reply");
		}
		if (r)
			protobuf_c_message_free_unpacked(&r->base, NULL);
	} else {
		m->code = code;
		snprintf(m->msg, sizeof m->msg, "%s",
		         details && details[0] ? details : "no answer");
	}
	lagg_rele(m->g);
}

void gwi_admin_list_cluster(gwi_ucall *c, const list_rq *rq)
{
	gw_server *s = c->srv;
	gw_view *v = gw_router_view_copy(s->o.router);
	if (!v || v->self >= v->n) {
		gw_router_view_free(v);
		gwi_ucall_reply(c, GRPC_STATUS_UNAVAILABLE,
		                "this member has no view of the cluster yet; retry", NULL);
		return;
	}
	lagg *g = calloc(1, sizeof *g);
	if (!g || !(g->m = calloc(v->n, sizeof *g->m))) {
		free(g);
		gw_router_view_free(v);
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	pthread_mutex_init(&g->mu, NULL);
	g->c = c;
	g->kind = (int)rq->kind;
	g->page = page_of(rq);
	g->n = v->n;
	g->pending = 1;
	gwi_fanout f;
	gwi_fanout_init(&f, c, LAGG_WAIT_MS);
	f.pr.call_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_LIST;
	f.pr.list = (list_rq *)rq;
	for (size_t i = 0; i < v->n; i++) {
		lmember *m = &g->m[i];
		m->g = g;
		m->id = strdup(v->members[i].id);
		m->address = strdup(v->members[i].address);
		if (!m->id || !m->address) {
			m->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
			snprintf(m->msg, sizeof m->msg, "out of memory");
			continue;
		}
		/* Every member, this one too, answers through Peer.Admin: one
		 * path, and each names itself as its view does. */
		gwi_fanout_send(&f, s, m->address, &g->mu, &g->pending, lagg_answered, m, &m->code,
		                m->msg, sizeof m->msg);
	}
	gw_router_view_free(v);
	lagg_rele(g);
}

/* ---- Members ------------------------------------------------------------------- */

static const char *status_name(int st)
{
	switch (st) {
	case GW_MEMBER_JOINING:
		return "joining";
	case GW_MEMBER_ACTIVE:
		return "active";
	case GW_MEMBER_LEAVING:
		return "leaving";
	case GW_MEMBER_DEAD:
		return "dead";
	default:
		return "unknown";
	}
}

void gwi_admin_members(gwi_ucall *c)
{
	gw_server *s = c->srv;
	Spawn__Gateway__V1__MembersReply r = SPAWN__GATEWAY__V1__MEMBERS_REPLY__INIT;
	if (!s->o.router) {
		/* One member: this gateway, with what its hosts serve. */
		char *served = NULL;
		if (gw_registry_served(s->reg, &served) != GW_OK) {
			gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
			return;
		}
		size_t lines = 0;
		for (char *p = served; *p; p++)
			lines += *p == '\n';
		char **sv = calloc(lines + 1, sizeof *sv);
		if (!sv) {
			free(served);
			gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
			return;
		}
		size_t n = 0;
		for (char *save = NULL, *t = strtok_r(served, "\n", &save); t;
		     t = strtok_r(NULL, "\n", &save))
			if (t[0] != GW_SUB_MARK)
				sv[n++] = t;
		Spawn__Gateway__V1__MemberInfo mi = SPAWN__GATEWAY__V1__MEMBER_INFO__INIT,
		                               *mp = &mi;
		mi.id = "";
		/* the first client listener, with the port it bound (":0" asks
		 * for any) */
		char addr[300] = "";
		if (s->o.n_listen) {
			const char *l = s->o.listen[0];
			size_t len = strlen(l);
			if (len > 2 && strcmp(l + len - 2, ":0") == 0)
				snprintf(addr, sizeof addr, "%.*s:%d", (int)(len - 2), l,
				         gw_server_port(s, 0));
			else
				snprintf(addr, sizeof addr, "%s", l);
		}
		mi.address = addr;
		mi.status = "active";
		mi.self = true;
		mi.n_served = n;
		mi.served = sv;
		r.n_members = 1;
		r.members = &mp;
		gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &r.base);
		free(sv);
		free(served);
		return;
	}
	gw_view *v = gw_router_view_copy(s->o.router);
	if (!v) {
		gwi_ucall_reply(c, GRPC_STATUS_UNAVAILABLE,
		                "this member has no view of the cluster yet; retry", NULL);
		return;
	}
	Spawn__Gateway__V1__MemberInfo *mi = calloc(v->n ? v->n : 1, sizeof *mi);
	Spawn__Gateway__V1__MemberInfo **mp = calloc(v->n ? v->n : 1, sizeof *mp);
	if (!mi || !mp) {
		free(mi);
		free(mp);
		gw_router_view_free(v);
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		const gw_member *m = &v->members[i];
		spawn__gateway__v1__member_info__init(&mi[i]);
		mi[i].id = (char *)m->id;
		mi[i].address = (char *)m->address;
		mi[i].status = (char *)status_name(m->status);
		mi[i].self = i == v->self;
		/* the types only: not the channel subscriptions nor the contracts
		 * hash published with them (lines marked by a control character) */
		mi[i].served = calloc(m->n_served ? m->n_served : 1, sizeof(char *));
		for (size_t j = 0; mi[i].served && j < m->n_served; j++)
			if ((unsigned char)m->served[j][0] >= 0x20)
				mi[i].served[mi[i].n_served++] = (char *)m->served[j];
		mp[i] = &mi[i];
	}
	r.cluster = true;
	r.view_version = v->version;
	r.n_members = v->n;
	r.members = mp;
	gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &r.base);
	for (size_t i = 0; i < v->n; i++)
		free(mi[i].served);
	free(mi);
	free(mp);
	gw_router_view_free(v);
}
