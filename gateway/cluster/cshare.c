/* cshare.c - contracts across the cluster (cshare.h; docs/design/cluster.md,
 * "Contracts across the cluster"). */
#include "cshare.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wire.h"

#define HASH_HEX 16

enum { CS_UNKNOWN, CS_LOADING, CS_LOADED, CS_REFUSED, CS_FAILED };

/* One other member's contracts. Its address is the owner token handed to
 * the contracts (stable while the entry lives). */
typedef struct entry {
	struct entry *next;
	struct gw_cshare *owner;  /* borrowed: the cshare it belongs to (the answer's) */
	char *id;                 /* owned: the member's id */
	char *address;            /* owned: where to ask */
	char want[HASH_HEX + 1];  /* the hash its last view line shows */
	char asked[HASH_HEX + 1]; /* the hash asked for (LOADING) */
	char have[HASH_HEX + 1];  /* LOADED / REFUSED: the hash of that answer */
	int state;                /* CS_* */
	bool gone;                /* withdrawn while LOADING: the answer frees it */
	bool held;                /* the contracts hold files on its behalf */
} entry;

/* The type index: actor type -> its one system, or two systems. */
typedef struct tix {
	char *type;    /* owned */
	char *system;  /* owned */
	char *system2; /* owned: a second system serving the type; NULL = one */
} tix;

struct gw_typeix {
	tix *ix; /* owned, sorted by type */
	size_t n;
};

struct gw_cshare {
	gw_cshare_opts o;
	pthread_mutex_t mu; /* entries, self; taken before the contracts' lock */
	entry *entries;     /* owned list */
	char self[512];     /* this member's id in the last view ("" = none) */
	/* gw_cshare_served's last export (membership thread only) */
	bool exported;    /* the three below are set */
	uint64_t exp_gen; /* gw_contracts_gen read before it */
	uint64_t exp_hash;
	size_t exp_len;
	gw_cshare_stats st;
	pthread_mutex_t ixmu; /* ix */
	gw_typeix *ix;        /* owned: from the last view; NULL = none yet */
};

gw_err gw_cshare_create(gw_cshare **out, const gw_cshare_opts *o)
{
	gw_cshare *s = calloc(1, sizeof *s);
	if (!s)
		return GW_ENOMEM;
	s->o = *o;
	if (s->o.call_timeout_ms <= 0)
		s->o.call_timeout_ms = 5000;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->ixmu, NULL);
	*out = s;
	return GW_OK;
}

static void ix_free(tix *ix, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ix[i].type);
		free(ix[i].system);
		free(ix[i].system2);
	}
	free(ix);
}

void gw_typeix_free(gw_typeix *x)
{
	if (!x)
		return;
	ix_free(x->ix, x->n);
	free(x);
}

static void entry_free(entry *e)
{
	free(e->id);
	free(e->address);
	free(e);
}

void gw_cshare_destroy(gw_cshare *s)
{
	if (!s)
		return;
	for (entry *e = s->entries, *n; e; e = n) {
		n = e->next;
		if (e->held)
			gw_contracts_release(s->o.contracts, e);
		entry_free(e);
	}
	gw_typeix_free(s->ix);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->ixmu);
	free(s);
}

/* ---- the type index ------------------------------------------------------------------- */

static int tix_cmp(const void *a, const void *b)
{
	return strcmp(((const tix *)a)->type, ((const tix *)b)->type);
}

gw_typeix *gw_typeix_build(const char *const *lines, size_t n)
{
	gw_typeix *x = calloc(1, sizeof *x);
	tix *ix = n ? calloc(n, sizeof *ix) : NULL;
	if (!x || (n && !ix)) {
		free(x);
		free(ix);
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *l = lines[i], *slash = strchr(l, '/');
		if (!slash || slash == l || !slash[1] || (unsigned char)l[0] < 0x20)
			continue; /* a subscription or contracts line */
		ix[k].type = strdup(slash + 1);
		ix[k].system = strndup(l, (size_t)(slash - l));
		if (!ix[k].type || !ix[k].system) {
			ix_free(ix, k + 1);
			free(x);
			return NULL;
		}
		k++;
	}
	if (k > 1)
		qsort(ix, k, sizeof *ix, tix_cmp);
	/* One entry per type: a second system is kept, the rest dropped. */
	size_t w = 0;
	for (size_t r = 0; r < k; r++) {
		if (w && !strcmp(ix[w - 1].type, ix[r].type)) {
			if (strcmp(ix[w - 1].system, ix[r].system) && !ix[w - 1].system2) {
				ix[w - 1].system2 = ix[r].system;
				ix[r].system = NULL;
			}
			free(ix[r].type);
			free(ix[r].system);
			continue;
		}
		ix[w++] = ix[r];
	}
	x->ix = ix;
	x->n = w;
	return x;
}

gw_err gw_typeix_find(const gw_typeix *x, const char *actor, char *out, size_t n, char *why,
                      size_t wn)
{
	tix key = {.type = (char *)actor};
	const tix *t = x && x->n ? bsearch(&key, x->ix, x->n, sizeof *x->ix, tix_cmp) : NULL;
	if (!t)
		return GW_ENOTFOUND;
	if (t->system2) {
		snprintf(why, wn,
		         "actor %s is registered in systems %.200s and %.200s: call it with "
		         "ActorGateway.Invoke, which names the system",
		         actor, t->system, t->system2);
		return GW_ECONFIG;
	}
	snprintf(out, n, "%s", t->system);
	return GW_OK;
}

gw_err gw_cshare_system(gw_cshare *s, const char *actor, char *out, size_t n, char *why, size_t wn)
{
	pthread_mutex_lock(&s->ixmu);
	gw_err err = gw_typeix_find(s->ix, actor, out, n, why, wn);
	pthread_mutex_unlock(&s->ixmu);
	return err;
}

/* ---- asking a member for its contracts ------------------------------------------------ */

static bool hex_ok(const char *h)
{
	if (strlen(h) != HASH_HEX)
		return false;
	for (const char *p = h; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static void contracts_done(void *user, grpc_status_code code, const char *details,
                           grpc_byte_buffer *resp, const char *owner, bool not_dispatched,
                           bool peer_refused);

/* ask starts Peer.Contracts to e's member (s->mu held): LOADING, or FAILED
 * when it could not start. */
static void ask(gw_cshare *s, entry *e)
{
	Spawn__Gateway__V1__PeerContractsRequest rq =
	    SPAWN__GATEWAY__V1__PEER_CONTRACTS_REQUEST__INIT;
	rq.sender_id = s->self;
	grpc_byte_buffer *bb = NULL;
	gw_peer_call *c = NULL;
	e->state = CS_FAILED;
	if (spawn_wire_pack(&rq.base, &bb) != 0)
		return;
	memcpy(e->asked, e->want, sizeof e->asked);
	e->state = CS_LOADING;
	int64_t deadline = spawn_now_ns() / 1000000 + s->o.call_timeout_ms;
	if (gw_peer_call_start(s->o.peers, e->address, GW_PEER_CONTRACTS, bb, deadline,
	                       contracts_done, e, &c) != GW_OK) {
		e->state = CS_FAILED;
		s->st.failed++;
	}
	grpc_byte_buffer_destroy(bb);
	gw_peer_call_rele(c);
}

/* contracts_done (gw_peer_done_fn): the member's answer, on the peers'
 * thread; user is the entry. The set is
 * checked whole: its hash, then gw_contracts_add_peer's every rule. */
static void contracts_done(void *user, grpc_status_code code, const char *details,
                           grpc_byte_buffer *resp, const char *owner, bool not_dispatched,
                           bool peer_refused)
{
	(void)owner;
	(void)not_dispatched;
	entry *e = user;
	gw_cshare *s = e->owner;
	pthread_mutex_lock(&s->mu);
	if (e->gone) {
		pthread_mutex_unlock(&s->mu);
		entry_free(e);
		return;
	}
	if (code == GRPC_STATUS_RESOURCE_EXHAUSTED) {
		/* Over a message bound on the way: asking again gives the same. */
		memcpy(e->have, e->asked, sizeof e->have);
		e->state = CS_REFUSED;
		s->st.refused++;
		GW_WARN("cluster: contracts of member %s refused, not served here: %s", e->id,
		        details ? details : "over a message bound");
		if (strcmp(e->want, e->have))
			ask(s, e);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	if (code != GRPC_STATUS_OK) {
		GW_WARN(
		    "cluster: member %s did not send its contracts (code %d%s: %s); asked again at "
		    "the next heartbeat",
		    e->id, (int)code, peer_refused ? ", refused as a peer" : "",
		    details ? details : "");
		e->state = CS_FAILED;
		s->st.failed++;
		pthread_mutex_unlock(&s->mu);
		return;
	}
	spawn_arena a;
	spawn_arena_init(&a, 0);
	Spawn__Gateway__V1__PeerContractsReply *r = NULL;
	char why[700] = "";
	gw_err err = GW_EINVAL;
	if (spawn_wire_unpack(&spawn__gateway__v1__peer_contracts_reply__descriptor, resp, &a,
	                      (ProtobufCMessage **)&r) != 0) {
		snprintf(why, sizeof why, "the answer is not a PeerContractsReply");
	} else if (!r->hash || !hex_ok(r->hash)) {
		snprintf(why, sizeof why, "the answer's hash is not 16 lower-case hex digits");
	} else {
		char h[HASH_HEX + 1];
		snprintf(h, sizeof h, "%016" PRIx64,
		         gw_contracts_hash(r->files.data, r->files.len));
		if (strcmp(h, r->hash))
			snprintf(why, sizeof why, "the files do not hash to %s (%s): corrupt",
			         r->hash, h);
		else
			err = gw_contracts_add_peer(s->o.contracts, e, r->files.data, r->files.len,
			                            why, sizeof why);
	}
	if (r && r->hash && hex_ok(r->hash))
		memcpy(e->have, r->hash, sizeof e->have);
	else
		memcpy(e->have, e->asked, sizeof e->have);
	if (err == GW_OK) {
		e->state = CS_LOADED;
		e->held = true;
		s->st.loaded++;
		GW_INFO("cluster: contracts of member %s loaded (%zu bytes, hash %s)", e->id,
		        r->files.len, e->have);
	} else {
		/* Refused whole: what was served here before stays. */
		e->state = CS_REFUSED;
		s->st.refused++;
		GW_WARN("cluster: contracts of member %s refused, not served here: %s", e->id, why);
	}
	/* A newer hash arrived while this one was asked for. */
	if (strcmp(e->want, e->have))
		ask(s, e);
	pthread_mutex_unlock(&s->mu);
	spawn_arena_fini(&a);
}

static entry *entry_new(gw_cshare *s, const char *id, const char *address)
{
	entry *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->owner = s;
	e->id = strdup(id);
	e->address = strdup(address);
	if (!e->id || !e->address) {
		entry_free(e);
		return NULL;
	}
	return e;
}

/* withdraw ends what e's member published (s->mu held): its files are
 * released, and e is unlinked by the caller and freed (now, or by its
 * answer when LOADING). */
static void withdraw(gw_cshare *s, entry *e)
{
	if (e->held) {
		gw_contracts_release(s->o.contracts, e);
		GW_INFO("cluster: contracts of member %s withdrawn", e->id);
	}
	e->held = false;
	if (e->state == CS_LOADING)
		e->gone = true;
	else
		entry_free(e);
}

/* member_hash: the hash m publishes, or NULL. */
static const char *member_hash(const gw_member *m)
{
	for (size_t j = 0; j < m->n_served; j++)
		if (m->served[j][0] == GW_CONTRACTS_MARK && hex_ok(m->served[j] + 1))
			return m->served[j] + 1;
	return NULL;
}

void gw_cshare_on_view(gw_cshare *s, const gw_view *v)
{
	/* Every served line of every member, borrowed from v for the build. */
	size_t nl = 0;
	for (size_t i = 0; i < v->n; i++)
		nl += v->members[i].n_served;
	const char **lines = malloc((nl ? nl : 1) * sizeof *lines);
	gw_typeix *ix = NULL;
	if (lines) {
		nl = 0;
		for (size_t i = 0; i < v->n; i++)
			for (size_t j = 0; j < v->members[i].n_served; j++)
				lines[nl++] = v->members[i].served[j];
		ix = gw_typeix_build(lines, nl);
		free(lines);
	}
	if (ix) {
		pthread_mutex_lock(&s->ixmu);
		gw_typeix *old = s->ix;
		s->ix = ix;
		pthread_mutex_unlock(&s->ixmu);
		gw_typeix_free(old);
	} else {
		GW_WARN("cluster: out of memory for the served types index; the last one stays");
	}
	pthread_mutex_lock(&s->mu);
	snprintf(s->self, sizeof s->self, "%s",
	         v->self < v->n && v->members[v->self].id ? v->members[v->self].id : "");
	/* Withdrawn: members gone from the view, or publishing no hash. */
	for (entry **pp = &s->entries; *pp;) {
		entry *e = *pp;
		const char *h = NULL;
		for (size_t i = 0; i < v->n && !h; i++)
			if (i != v->self && !strcmp(v->members[i].id, e->id))
				h = member_hash(&v->members[i]);
		if (h) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		withdraw(s, e);
	}
	for (size_t i = 0; i < v->n; i++) {
		const gw_member *m = &v->members[i];
		const char *h = i == v->self ? NULL : member_hash(m);
		if (!h || !m->address)
			continue;
		entry *e = s->entries;
		while (e && strcmp(e->id, m->id))
			e = e->next;
		if (!e) {
			if (!(e = entry_new(s, m->id, m->address))) {
				GW_WARN("cluster: out of memory for the contracts of member %s",
				        m->id);
				continue;
			}
			e->next = s->entries;
			s->entries = e;
		}
		memcpy(e->want, h, HASH_HEX + 1);
		if (e->state == CS_LOADING || ((e->state == CS_LOADED || e->state == CS_REFUSED) &&
		                               !strcmp(e->have, e->want)))
			continue;
		ask(s, e);
	}
	pthread_mutex_unlock(&s->mu);
}

gw_err gw_cshare_served(gw_cshare *s, char **served, size_t max)
{
	pthread_mutex_lock(&s->mu);
	for (entry *e = s->entries; e; e = e->next)
		if (e->state == CS_FAILED || e->state == CS_UNKNOWN)
			ask(s, e);
	pthread_mutex_unlock(&s->mu);
	/* Exported again only when the pool changed since. */
	uint64_t gen = gw_contracts_gen(s->o.contracts);
	if (!s->exported || gen != s->exp_gen) {
		uint8_t *set = NULL;
		if (gw_contracts_export(s->o.contracts, &set, &s->exp_len, &s->exp_hash) != GW_OK)
			return GW_ENOMEM;
		free(set);
		s->exp_gen = gen;
		s->exported = true;
	}
	size_t len = s->exp_len;
	uint64_t h = s->exp_hash;
	if (!len)
		return GW_OK;
	size_t have = *served ? strlen(*served) : 0;
	if (have + HASH_HEX + 3 > max) {
		GW_WARN("cluster: the served list is full: this member's contracts are not "
		        "published (other members do not serve them)");
		return GW_OK;
	}
	char *n = realloc(*served, have + HASH_HEX + 3);
	if (!n)
		return GW_ENOMEM;
	snprintf(n + have, HASH_HEX + 3, "%s%c%016" PRIx64, have ? "\n" : "", GW_CONTRACTS_MARK, h);
	*served = n;
	return GW_OK;
}

void gw_cshare_get_stats(gw_cshare *s, gw_cshare_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->st;
	pthread_mutex_unlock(&s->mu);
}
