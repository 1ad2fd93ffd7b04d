/* registry_test.c - actor types, host bindings, picking and liveness. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_host.h"
#include "registry.h"

static Spawn__Actors__ActorSystem *make_system(const char *sys, const char *actor,
                                               const char **actions, size_t n, int kind,
                                               bool stateful)
{
	static Spawn__Actors__Action acts[8], *ap[8];
	static Spawn__Actors__ActorId id;
	static Spawn__Actors__ActorSettings st;
	static Spawn__Actors__Actor a;
	static Spawn__Actors__Registry__ActorsEntry e, *ep[1];
	static Spawn__Actors__Registry r;
	static Spawn__Actors__ActorSystem s;
	for (size_t i = 0; i < n; i++) {
		spawn__actors__action__init(&acts[i]);
		acts[i].name = (char *)actions[i];
		ap[i] = &acts[i];
	}
	spawn__actors__actor_id__init(&id);
	id.name = (char *)actor;
	spawn__actors__actor_settings__init(&st);
	st.kind = kind;
	st.stateful = stateful;
	spawn__actors__actor__init(&a);
	a.id = &id;
	a.settings = &st;
	a.n_actions = n;
	a.actions = ap;
	spawn__actors__registry__actors_entry__init(&e);
	e.key = (char *)actor;
	e.value = &a;
	ep[0] = &e;
	spawn__actors__registry__init(&r);
	r.n_actors = 1;
	r.actors = ep;
	spawn__actors__actor_system__init(&s);
	s.name = (char *)sys;
	s.registry = &r;
	return &s;
}

START_TEST(lookup_finds_registered_types_only)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	ck_assert_int_eq(gw_registry_create(&r, NULL), GW_OK);
	const char *acts[] = {"Add", "Get"};
	char why[512] = "";
	ck_assert_int_eq(gw_registry_register(r, &h, make_system("s", "counter", acts, 2, 1, true),
	                                      why, sizeof why),
	                 GW_OK);
	gw_actor_type *t;
	gw_actor_settings st;
	ck_assert_int_eq(gw_registry_lookup(r, "s", "counter", &t, &st), GW_OK);
	ck_assert_str_eq(t->name, "counter");
	ck_assert(st.stateful);
	ck_assert_int_eq(gw_registry_lookup(r, "s", "other", &t, NULL), GW_ENOTFOUND);
	ck_assert_int_eq(gw_registry_lookup(r, "s2", "counter", &t, NULL), GW_ENOTFOUND);
	ck_assert_int_eq(h.refs, 1); /* one binding holds the host */
	gw_registry_destroy(r);
	ck_assert_int_eq(h.refs, 0);
	fake_host_free(&h);
}
END_TEST

START_TEST(served_lists_the_types_live_hosts_serve_sorted)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	ck_assert_int_eq(gw_registry_create(&r, NULL), GW_OK);
	char *out = NULL;
	ck_assert_int_eq(gw_registry_served(r, &out), GW_OK);
	ck_assert_str_eq(out, "");
	free(out);
	const char *acts[] = {"Add"};
	char why[512] = "";
	const char *const types[][2] = {{"s", "zeta"}, {"s", "alpha"}, {"b", "counter"}};
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(gw_registry_register(
		                     r, &h, make_system(types[i][0], types[i][1], acts, 1, 1, true),
		                     why, sizeof why),
		                 GW_OK);
	ck_assert_int_eq(gw_registry_served(r, &out), GW_OK);
	ck_assert_str_eq(out, "b/counter\ns/alpha\ns/zeta");
	free(out);
	/* The host goes: its types are ORPHAN, served by nobody here. */
	gw_registry_unbind_host(r, &h);
	ck_assert_int_eq(gw_registry_served(r, &out), GW_OK);
	ck_assert_str_eq(out, "");
	free(out);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

/* A cluster's members learn each other's channel subscriptions from the
 * served list (docs/design/cluster.md, "Broadcasts across members"): one
 * GW_SUB_MARK-separated line per subscription of a NAMED or POOLED actor;
 * an UNNAMED template's channels are not subscriptions (no instance is
 * chosen by a broadcast). */
START_TEST(served_lists_the_channel_subscriptions_of_named_actors)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	ck_assert_int_eq(gw_registry_create(&r, NULL), GW_OK);
	const char *acts[] = {"receive", "onNews"};
	char why[512] = "";
	const struct {
		const char *actor;
		int kind;
	} subs[] = {{"sub", SPAWN__ACTORS__KIND__NAMED}, {"tmpl", SPAWN__ACTORS__KIND__UNNAMED}};
	for (size_t i = 0; i < 2; i++) {
		Spawn__Actors__ActorSystem *sys =
		    make_system("s", subs[i].actor, acts, 2, subs[i].kind, true);
		Spawn__Actors__Channel c1 = SPAWN__ACTORS__CHANNEL__INIT,
		                       c2 = SPAWN__ACTORS__CHANNEL__INIT;
		c1.topic = "news";
		c2.topic = "alerts";
		c2.action = "onNews";
		Spawn__Actors__Channel *cs[] = {&c1, &c2};
		Spawn__Actors__Metadata md = SPAWN__ACTORS__METADATA__INIT;
		md.n_channel_group = 2;
		md.channel_group = cs;
		sys->registry->actors[0]->value->metadata = &md;
		ck_assert_msg(gw_registry_register(r, &h, sys, why, sizeof why) == GW_OK, "%s",
		              why);
	}
	char *out = NULL;
	ck_assert_int_eq(gw_registry_served(r, &out), GW_OK);
	ck_assert_str_eq(out, "\x1fs\x1fsub\x1f"
	                      "alerts\x1fonNews\n\x1fs\x1fsub\x1fnews\x1freceive\ns/sub\ns/tmpl");
	free(out);

	/* Subscriptions past what a member row holds are left out; the
	 * types stay (placement stands on them). */
	enum { TOPICS = 70 };
	static char topics[TOPICS][1100];
	Spawn__Actors__Channel ch[TOPICS], *chp[TOPICS];
	for (int i = 0; i < TOPICS; i++) {
		memset(topics[i], 'x', 1000);
		snprintf(topics[i] + 1000, 100, "%d", i);
		spawn__actors__channel__init(&ch[i]);
		ch[i].topic = topics[i];
		chp[i] = &ch[i];
	}
	Spawn__Actors__ActorSystem *sys =
	    make_system("s", "big", acts, 2, SPAWN__ACTORS__KIND__NAMED, true);
	Spawn__Actors__Metadata md = SPAWN__ACTORS__METADATA__INIT;
	md.n_channel_group = TOPICS;
	md.channel_group = chp;
	sys->registry->actors[0]->value->metadata = &md;
	ck_assert_msg(gw_registry_register(r, &h, sys, why, sizeof why) == GW_OK, "%s", why);
	ck_assert_int_eq(gw_registry_served(r, &out), GW_OK);
	ck_assert_str_eq(out, "s/big\ns/sub\ns/tmpl");
	free(out);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

START_TEST(pick_distinguishes_unknown_actions_from_missing_hosts)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, NULL);
	const char *acts[] = {"Add"};
	char why[512] = "";
	gw_registry_register(r, &h, make_system("s", "c", acts, 1, 1, true), why, sizeof why);
	gw_actor_type *t;
	gw_registry_lookup(r, "s", "c", &t, NULL);
	gw_host *got = NULL;
	ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_OK);
	ck_assert_ptr_eq(got, &h);
	gw_host_rele(got);
	ck_assert_int_eq(gw_registry_pick(r, t, "Nope", &got), GW_ENOTFOUND);
	h.live = false;
	ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_EUNAVAIL);
	/* the host leaves: the type stays known, so it is UNAVAILABLE, not NOT_FOUND */
	gw_registry_unbind_host(r, &h);
	ck_assert_int_eq(h.refs, 0);
	ck_assert_int_eq(gw_registry_lookup(r, "s", "c", &t, NULL), GW_OK);
	ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_EUNAVAIL);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

START_TEST(work_is_spread_over_hosts_and_fails_over)
{
	gw_registry *r;
	gw_host h1, h2;
	fake_host_init(&h1);
	fake_host_init(&h2);
	gw_registry_create(&r, NULL);
	const char *acts[] = {"Add"};
	char why[512] = "";
	gw_registry_register(r, &h1, make_system("s", "c", acts, 1, 1, true), why, sizeof why);
	gw_registry_register(r, &h2, make_system("s", "c", acts, 1, 1, true), why, sizeof why);
	gw_actor_type *t;
	gw_registry_lookup(r, "s", "c", &t, NULL);
	int n1 = 0, n2 = 0;
	for (int i = 0; i < 10; i++) {
		gw_host *got;
		ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_OK);
		n1 += got == &h1;
		n2 += got == &h2;
		gw_host_rele(got);
	}
	ck_assert_int_eq(n1, 5);
	ck_assert_int_eq(n2, 5);
	gw_registry_unbind_host(r, &h1);
	for (int i = 0; i < 4; i++) {
		gw_host *got;
		ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_OK);
		ck_assert_ptr_eq(got, &h2);
		gw_host_rele(got);
	}
	gw_registry_destroy(r);
	fake_host_free(&h1);
	fake_host_free(&h2);
}
END_TEST

START_TEST(a_host_only_gets_the_actions_it_registered)
{
	gw_registry *r;
	gw_host h1, h2;
	fake_host_init(&h1);
	fake_host_init(&h2);
	gw_registry_create(&r, NULL);
	const char *a1[] = {"Add"}, *a2[] = {"Get"};
	char why[512] = "";
	gw_registry_register(r, &h1, make_system("s", "c", a1, 1, 1, true), why, sizeof why);
	gw_registry_register(r, &h2, make_system("s", "c", a2, 1, 1, true), why, sizeof why);
	gw_actor_type *t;
	gw_registry_lookup(r, "s", "c", &t, NULL);
	for (int i = 0; i < 4; i++) {
		gw_host *got;
		ck_assert_int_eq(gw_registry_pick(r, t, "Get", &got), GW_OK);
		ck_assert_ptr_eq(got, &h2);
		gw_host_rele(got);
	}
	gw_registry_destroy(r);
	fake_host_free(&h1);
	fake_host_free(&h2);
}
END_TEST

START_TEST(bad_registrations_are_refused_with_a_reason)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, NULL);
	const char *acts[] = {"Add"};
	char why[512] = "";
	ck_assert_int_eq(
	    gw_registry_register(r, &h, make_system("", "c", acts, 1, 1, true), why, sizeof why),
	    GW_EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "system"));
	why[0] = 0;
	ck_assert_int_eq(
	    gw_registry_register(r, &h, make_system("s", "c", acts, 0, 1, true), why, sizeof why),
	    GW_EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "actions"));
	why[0] = 0;
	ck_assert_int_eq(
	    gw_registry_register(r, &h, make_system("s", "", acts, 1, 1, true), why, sizeof why),
	    GW_EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "name"));
	ck_assert_int_eq(h.refs, 0);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

START_TEST(pooled_actors_are_stateless)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, NULL);
	const char *acts[] = {"Run"};
	char why[512] = "";
	gw_registry_register(r, &h, make_system("s", "p", acts, 1, 3, true), why, sizeof why);
	gw_actor_type *t;
	gw_actor_settings st;
	ck_assert_int_eq(gw_registry_lookup(r, "s", "p", &t, &st), GW_OK);
	ck_assert(!st.stateful);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

/* ---- registration rules ---------------------------------------------------- */

/* One actor of a registration, as a test writes it: zero fields take the
 * defaults (key = name, NAMED, stateful, action "Add"). */
typedef struct spec {
	const char *key, *name, *id_system, *state_type, *action, *timer, *topic;
	int kind, timer_ms, max_pool;
	int64_t snapshot_ms;
	bool stateless;
} spec;

typedef struct built {
	Spawn__Actors__Action act, tact, *ap[1];
	Spawn__Actors__FixedTimerAction t, *tp[1];
	Spawn__Actors__ActorId id;
	Spawn__Actors__ActorSettings st;
	Spawn__Actors__ActorSnapshotStrategy snap;
	Spawn__Actors__TimeoutStrategy snap_to;
	Spawn__Actors__Channel ch, *chp[1];
	Spawn__Actors__Metadata md;
	Spawn__Actors__Actor a;
	Spawn__Actors__Registry__ActorsEntry e;
} built;

/* build fills sys with n actors (storage in b, caller's) of system sysname. */
static Spawn__Actors__ActorSystem *build(Spawn__Actors__ActorSystem *sys,
                                         Spawn__Actors__Registry *reg,
                                         Spawn__Actors__Registry__ActorsEntry **ep, built *b,
                                         const char *sysname, const spec *sp, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const spec *x = &sp[i];
		built *o = &b[i];
		memset(o, 0, sizeof *o);
		spawn__actors__action__init(&o->act);
		o->act.name = (char *)(x->action ? x->action : "Add");
		o->ap[0] = &o->act;
		spawn__actors__actor_id__init(&o->id);
		o->id.name = (char *)x->name;
		if (x->id_system)
			o->id.system = (char *)x->id_system;
		spawn__actors__actor_settings__init(&o->st);
		o->st.kind = x->kind ? x->kind : SPAWN__ACTORS__KIND__NAMED;
		o->st.stateful = !x->stateless;
		o->st.max_pool_size = x->max_pool;
		if (x->state_type)
			o->st.state_type = (char *)x->state_type;
		if (x->snapshot_ms) {
			spawn__actors__actor_snapshot_strategy__init(&o->snap);
			spawn__actors__timeout_strategy__init(&o->snap_to);
			o->snap_to.timeout = x->snapshot_ms;
			o->snap.strategy_case =
			    SPAWN__ACTORS__ACTOR_SNAPSHOT_STRATEGY__STRATEGY_TIMEOUT;
			o->snap.timeout = &o->snap_to;
			o->st.snapshot_strategy = &o->snap;
		}
		spawn__actors__actor__init(&o->a);
		o->a.id = &o->id;
		o->a.settings = &o->st;
		o->a.n_actions = 1;
		o->a.actions = o->ap;
		if (x->timer) {
			spawn__actors__action__init(&o->tact);
			o->tact.name = (char *)x->timer;
			spawn__actors__fixed_timer_action__init(&o->t);
			o->t.seconds = x->timer_ms;
			o->t.action = &o->tact;
			o->tp[0] = &o->t;
			o->a.n_timer_actions = 1;
			o->a.timer_actions = o->tp;
		}
		if (x->topic) {
			spawn__actors__channel__init(&o->ch);
			o->ch.topic = (char *)x->topic;
			o->chp[0] = &o->ch;
			spawn__actors__metadata__init(&o->md);
			o->md.n_channel_group = 1;
			o->md.channel_group = o->chp;
			o->a.metadata = &o->md;
		}
		spawn__actors__registry__actors_entry__init(&o->e);
		o->e.key = (char *)(x->key ? x->key : x->name);
		o->e.value = &o->a;
		ep[i] = &o->e;
	}
	spawn__actors__registry__init(reg);
	reg->n_actors = n;
	reg->actors = ep;
	spawn__actors__actor_system__init(sys);
	sys->name = (char *)sysname;
	sys->registry = reg;
	return sys;
}

/* reg1 registers one actor for host h; why gets the refusal. */
static gw_err reg1(gw_registry *r, gw_host *h, spec sp, char *why, size_t n)
{
	Spawn__Actors__ActorSystem sys;
	Spawn__Actors__Registry reg;
	Spawn__Actors__Registry__ActorsEntry *ep[1];
	built b[1];
	why[0] = 0;
	return gw_registry_register(r, h, build(&sys, &reg, ep, b, "s", &sp, 1), why, n);
}

#define CK_REFUSED(call, code, text)                                                               \
	do {                                                                                       \
		ck_assert_int_eq((call), (code));                                                  \
		ck_assert_msg(strstr(why, (text)) != NULL, "'%s' not in: %s", (text), why);        \
	} while (0)

START_TEST(a_second_host_joins_only_with_the_same_settings)
{
	gw_registry *r;
	gw_host h1, h2;
	fake_host_init(&h1);
	fake_host_init(&h2);
	gw_registry_create(&r, NULL);
	char why[512];
	spec base = {.name = "incrementor",
	             .state_type = "type.googleapis.com/ex.State",
	             .timer = "Tick",
	             .timer_ms = 100,
	             .topic = "news",
	             .snapshot_ms = 500};
	ck_assert_int_eq(reg1(r, &h1, base, why, sizeof why), GW_OK);
	spec x = base;
	x.kind = SPAWN__ACTORS__KIND__UNNAMED;
	CK_REFUSED(
	    reg1(r, &h2, x, why, sizeof why), GW_ECONFIG,
	    "actor \"incrementor\": kind UNNAMED differs from NAMED registered by a live host");
	ck_assert_int_eq(gw_err_status(GW_ECONFIG), GRPC_STATUS_FAILED_PRECONDITION);
	x = base;
	x.kind = SPAWN__ACTORS__KIND__POOLED;
	CK_REFUSED(reg1(r, &h2, x, why, sizeof why), GW_ECONFIG, "kind POOLED differs from NAMED");
	x = base;
	x.stateless = true;
	CK_REFUSED(reg1(r, &h2, x, why, sizeof why), GW_ECONFIG,
	           "stateful false differs from true");
	x = base;
	x.snapshot_ms = 0;
	CK_REFUSED(reg1(r, &h2, x, why, sizeof why), GW_ECONFIG, "snapshot timeout");
	x = base;
	x.max_pool = 4;
	CK_REFUSED(reg1(r, &h2, x, why, sizeof why), GW_ECONFIG, "max_pool_size 4 differs from 0");
	x = base;
	x.state_type = "ex.Other";
	CK_REFUSED(reg1(r, &h2, x, why, sizeof why), GW_ECONFIG,
	           "state_type \"ex.Other\" differs from \"ex.State\"");
	x = base;
	x.timer_ms = 200;
	CK_REFUSED(reg1(r, &h2, x, why, sizeof why), GW_ECONFIG, "timer actions");
	x = base;
	x.topic = "sports";
	CK_REFUSED(reg1(r, &h2, x, why, sizeof why), GW_ECONFIG, "channel subscriptions");
	ck_assert_int_eq(h2.refs, 0); /* nothing of h2 is bound */
	/* the type kept h1's settings, and h1 still serves it */
	gw_actor_type *t;
	gw_actor_settings st;
	ck_assert_int_eq(gw_registry_lookup(r, "s", "incrementor", &t, &st), GW_OK);
	ck_assert_int_eq(st.kind, SPAWN__ACTORS__KIND__NAMED);
	ck_assert(st.stateful);
	gw_host *got;
	ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_OK);
	ck_assert_ptr_eq(got, &h1);
	gw_host_rele(got);
	/* the same settings join, with other actions (the state_type written
	 * as a message name is the same type) */
	x = base;
	x.action = "Get";
	x.state_type = "ex.State";
	ck_assert_int_eq(reg1(r, &h2, x, why, sizeof why), GW_OK);
	ck_assert_int_eq(gw_registry_pick(r, t, "Get", &got), GW_OK);
	ck_assert_ptr_eq(got, &h2);
	gw_host_rele(got);
	gw_registry_type_rele(t);
	gw_registry_destroy(r);
	fake_host_free(&h1);
	fake_host_free(&h2);
}
END_TEST

START_TEST(settings_change_only_when_no_other_host_serves_the_type)
{
	gw_registry *r;
	gw_host h1, h2;
	fake_host_init(&h1);
	fake_host_init(&h2);
	gw_registry_create(&r, NULL);
	char why[512];
	spec base = {.name = "c"};
	ck_assert_int_eq(reg1(r, &h1, base, why, sizeof why), GW_OK);
	/* the only host may change its own settings by registering again */
	spec x = base;
	x.max_pool = 2;
	ck_assert_int_eq(reg1(r, &h1, x, why, sizeof why), GW_OK);
	gw_actor_type *t;
	gw_actor_settings st;
	ck_assert_int_eq(gw_registry_lookup(r, "s", "c", &t, &st), GW_OK);
	ck_assert_int_eq(st.max_pool_size, 2);
	x.kind = SPAWN__ACTORS__KIND__UNNAMED;
	CK_REFUSED(reg1(r, &h2, x, why, sizeof why), GW_ECONFIG, "kind UNNAMED");
	/* once h1 is gone, new settings replace the old ones */
	gw_registry_unbind_host(r, &h1);
	ck_assert_int_eq(reg1(r, &h2, x, why, sizeof why), GW_OK);
	gw_registry_settings(r, t, &st);
	ck_assert_int_eq(st.kind, SPAWN__ACTORS__KIND__UNNAMED);
	gw_registry_type_rele(t);
	gw_registry_destroy(r);
	fake_host_free(&h1);
	fake_host_free(&h2);
}
END_TEST

START_TEST(a_refused_registration_binds_nothing)
{
	gw_registry *r;
	gw_host h1, h2;
	fake_host_init(&h1);
	fake_host_init(&h2);
	gw_registry_create(&r, NULL);
	char why[512];
	ck_assert_int_eq(reg1(r, &h1, (spec){.name = "b"}, why, sizeof why), GW_OK);
	Spawn__Actors__ActorSystem sys;
	Spawn__Actors__Registry reg;
	Spawn__Actors__Registry__ActorsEntry *ep[2];
	built b[2];
	spec sp[2] = {{.name = "a"}, {.name = "b", .stateless = true}};
	CK_REFUSED(
	    gw_registry_register(r, &h2, build(&sys, &reg, ep, b, "s", sp, 2), why, sizeof why),
	    GW_ECONFIG, "actor \"b\": stateful false");
	gw_actor_type *t;
	ck_assert_int_eq(gw_registry_lookup(r, "s", "a", &t, NULL), GW_ENOTFOUND);
	ck_assert_int_eq(h2.refs, 0);
	ck_assert_uint_eq(gw_registry_count(r), 1);
	gw_registry_destroy(r);
	fake_host_free(&h1);
	fake_host_free(&h2);
}
END_TEST

START_TEST(the_map_key_is_the_actor_name_and_the_system_is_the_registered_one)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, NULL);
	char why[512];
	CK_REFUSED(reg1(r, &h, (spec){.key = "incrementor", .name = "evil"}, why, sizeof why),
	           GW_EINVAL,
	           "actor map key \"incrementor\" differs from its ActorId.name \"evil\"");
	CK_REFUSED(reg1(r, &h, (spec){.key = "incrementor", .name = ""}, why, sizeof why),
	           GW_EINVAL, "actor map key \"incrementor\"");
	CK_REFUSED(reg1(r, &h, (spec){.name = "c", .id_system = "other"}, why, sizeof why),
	           GW_EINVAL,
	           "actor map key \"c\": ActorId.system \"other\" differs from the system being "
	           "registered \"s\"");
	ck_assert_int_eq(h.refs, 0);
	ck_assert_int_eq(reg1(r, &h, (spec){.name = "c", .id_system = "s"}, why, sizeof why),
	                 GW_OK);
	ck_assert_int_eq(reg1(r, &h, (spec){.name = "d", .id_system = ""}, why, sizeof why), GW_OK);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

START_TEST(a_declared_state_type_is_well_formed)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, NULL);
	char why[512];
	const char *good[] = {"ex.State", ".ex.State", "State", "type.googleapis.com/ex.v1.State_2",
	                      "example.com/x/ex.State"};
	const char *bad[] = {"ex..State",
	                     "1ex.State",
	                     "/ex.State",
	                     "ex.State/",
	                     "ex.State.",
	                     "ex State",
	                     "type.googleapis.com/",
	                     "ex.St-ate",
	                     "bad host/ex.State"};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		ck_assert_msg(reg1(r, &h, (spec){.name = "g", .state_type = good[i]}, why,
		                   sizeof why) == GW_OK,
		              "%s refused: %s", good[i], why);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		CK_REFUSED(reg1(r, &h, (spec){.name = "b", .state_type = bad[i]}, why, sizeof why),
		           GW_EINVAL, "is neither a protobuf message name");
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

START_TEST(results_of_another_state_type_are_refused)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, NULL);
	char why[512], msg[512];
	ck_assert_int_eq(
	    reg1(r, &h, (spec){.name = "d", .state_type = "ex.State"}, why, sizeof why), GW_OK);
	ck_assert_int_eq(reg1(r, &h, (spec){.name = "u"}, why, sizeof why), GW_OK);
	gw_actor_type *d, *u;
	ck_assert_int_eq(gw_registry_lookup(r, "s", "d", &d, NULL), GW_OK);
	ck_assert_int_eq(gw_registry_lookup(r, "s", "u", &u, NULL), GW_OK);
	ck_assert_int_eq(
	    gw_registry_check_state(r, d, "type.googleapis.com/ex.State", msg, sizeof msg), GW_OK);
	ck_assert_int_eq(
	    gw_registry_check_state(r, d, "type.googleapis.com/ex.Other", msg, sizeof msg),
	    GW_ECONFIG);
	ck_assert_ptr_nonnull(strstr(msg, "\"type.googleapis.com/ex.Other\""));
	ck_assert_ptr_nonnull(strstr(msg, "declared state_type \"ex.State\""));
	ck_assert_int_eq(gw_registry_check_state(r, d, "", msg, sizeof msg), GW_ECONFIG);
	/* no declaration (as Spawn SDKs that predate the field): any type */
	ck_assert_int_eq(gw_registry_check_state(r, u, "type.googleapis.com/x.Y", msg, sizeof msg),
	                 GW_OK);
	gw_registry_type_rele(d);
	gw_registry_type_rele(u);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

START_TEST(timer_periods_are_positive_and_above_the_floor)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, NULL); /* floor 10 ms */
	char why[512];
	CK_REFUSED(
	    reg1(r, &h, (spec){.name = "t", .timer = "Tick", .timer_ms = 0}, why, sizeof why),
	    GW_EINVAL, "timer action \"Tick\" has period 0 ms; periods must be positive");
	CK_REFUSED(
	    reg1(r, &h, (spec){.name = "t", .timer = "Tick", .timer_ms = -5}, why, sizeof why),
	    GW_EINVAL, "must be positive");
	CK_REFUSED(
	    reg1(r, &h, (spec){.name = "t", .timer = "Tick", .timer_ms = 9}, why, sizeof why),
	    GW_EINVAL, "period 9 ms, below the floor of 10 ms");
	CK_REFUSED(reg1(r, &h, (spec){.name = "t", .timer = "", .timer_ms = 50}, why, sizeof why),
	           GW_EINVAL, "names no action");
	ck_assert_int_eq(
	    reg1(r, &h, (spec){.name = "t", .timer = "Tick", .timer_ms = 10}, why, sizeof why),
	    GW_OK);
	gw_registry_destroy(r);
	gw_registry_create(&r, &(gw_registry_opts){.timer_floor_ms = 1, .grace_ms = 0});
	ck_assert_int_eq(
	    reg1(r, &h, (spec){.name = "t", .timer = "Tick", .timer_ms = 2}, why, sizeof why),
	    GW_OK);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

START_TEST(a_type_without_host_is_freed_after_the_grace)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, &(gw_registry_opts){.timer_floor_ms = 10, .grace_ms = 0});
	char why[512];
	ck_assert_int_eq(reg1(r, &h, (spec){.name = "n"}, why, sizeof why), GW_OK);
	ck_assert_int_eq(reg1(r, &h, (spec){.name = "tmpl", .kind = SPAWN__ACTORS__KIND__UNNAMED},
	                      why, sizeof why),
	                 GW_OK);
	ck_assert_int_eq(gw_registry_spawn(r, "s", "inst-1", "tmpl", NULL), GW_OK);
	ck_assert_uint_eq(gw_registry_count(r), 2);
	ck_assert_uint_eq(gw_registry_sweep(r), 0); /* served: nothing to free */
	/* an actor holds "n": the host leaves, the type stays known */
	gw_actor_type *t;
	ck_assert_int_eq(gw_registry_lookup(r, "s", "n", &t, NULL), GW_OK);
	gw_registry_unbind_host(r, &h);
	ck_assert_int_eq(h.refs, 0);
	ck_assert_uint_eq(gw_registry_sweep(r), 1); /* tmpl, and its instance with it */
	gw_actor_type *it;
	ck_assert_int_eq(gw_registry_lookup_instance(r, "s", "inst-1", &it, NULL), GW_ENOTFOUND);
	ck_assert_int_eq(gw_registry_lookup(r, "s", "tmpl", &it, NULL), GW_ENOTFOUND);
	gw_host *got;
	ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_EUNAVAIL);
	ck_assert_uint_eq(gw_registry_count(r), 1);
	/* forgotten (grace 0): not found, though an actor still holds it */
	ck_assert_int_eq(gw_registry_lookup(r, "s", "n", &it, NULL), GW_ENOTFOUND);
	/* a registration revives the same entry, which the actor shares */
	ck_assert_int_eq(reg1(r, &h, (spec){.name = "n"}, why, sizeof why), GW_OK);
	ck_assert_int_eq(gw_registry_lookup(r, "s", "n", &it, NULL), GW_OK);
	ck_assert_ptr_eq(it, t);
	gw_registry_type_rele(it);
	ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_OK);
	gw_host_rele(got);
	gw_registry_unbind_host(r, &h);
	ck_assert_uint_eq(gw_registry_sweep(r), 0); /* still held */
	ck_assert_uint_eq(gw_registry_count(r), 1);
	/* the actor is gone: the next due sweep frees it (held entries are
	 * looked at again a second later) */
	gw_registry_type_rele(t);
	ck_assert_uint_eq(gw_registry_sweep(r), 0);
	gw_registry_destroy(r);

	/* with a grace, the type answers UNAVAILABLE meanwhile */
	gw_registry_create(&r, &(gw_registry_opts){.timer_floor_ms = 10, .grace_ms = 60000});
	ck_assert_int_eq(reg1(r, &h, (spec){.name = "n"}, why, sizeof why), GW_OK);
	gw_registry_unbind_host(r, &h);
	ck_assert_uint_eq(gw_registry_sweep(r), 0);
	ck_assert_int_eq(gw_registry_lookup(r, "s", "n", &t, NULL), GW_OK);
	ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_EUNAVAIL);
	gw_registry_type_rele(t);
	/* a host registering it again ends the grace */
	ck_assert_int_eq(reg1(r, &h, (spec){.name = "n", .stateless = true}, why, sizeof why),
	                 GW_OK);
	ck_assert_int_eq(gw_registry_pick(r, t, "Add", &got), GW_OK);
	gw_host_rele(got);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

START_TEST(churn_of_hosts_leaves_no_type_behind)
{
	gw_registry *r;
	gw_registry_create(&r, &(gw_registry_opts){.timer_floor_ms = 10, .grace_ms = 0});
	char why[512], names[100][16];
	spec sp[100];
	built *b = calloc(100, sizeof *b);
	Spawn__Actors__Registry__ActorsEntry *ep[100];
	Spawn__Actors__ActorSystem sys;
	Spawn__Actors__Registry reg;
	for (int round = 0; round < 50; round++) {
		gw_host h;
		fake_host_init(&h);
		for (int i = 0; i < 100; i++) {
			snprintf(names[i], sizeof names[i], "r%d-a%d", round, i);
			sp[i] = (spec){.name = names[i]};
		}
		ck_assert_int_eq(gw_registry_register(r, &h, build(&sys, &reg, ep, b, "s", sp, 100),
		                                      why, sizeof why),
		                 GW_OK);
		ck_assert_uint_eq(gw_registry_count(r), 100);
		gw_registry_unbind_host(r, &h);
		ck_assert_uint_eq(gw_registry_sweep(r), 100);
		ck_assert_uint_eq(gw_registry_count(r), 0);
		fake_host_free(&h);
	}
	free(b);
	gw_registry_destroy(r);
}
END_TEST

START_TEST(instances_go_with_their_template_whatever_its_kind_became)
{
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, &(gw_registry_opts){.timer_floor_ms = 10, .grace_ms = 0});
	char why[512];
	spec tmpl = {.name = "t", .kind = SPAWN__ACTORS__KIND__UNNAMED};
	ck_assert_int_eq(reg1(r, &h, tmpl, why, sizeof why), GW_OK);
	ck_assert_int_eq(gw_registry_spawn(r, "s", "i1", "t", NULL), GW_OK);
	gw_registry_unbind_host(r, &h);
	/* forgotten, then registered again as NAMED: the instance's template
	 * is no longer UNNAMED */
	ck_assert_int_eq(reg1(r, &h, (spec){.name = "t"}, why, sizeof why), GW_OK);
	gw_registry_unbind_host(r, &h);
	ck_assert_uint_eq(gw_registry_sweep(r), 1);
	gw_actor_type *t;
	ck_assert_int_eq(gw_registry_lookup_instance(r, "s", "i1", &t, NULL), GW_ENOTFOUND);
	ck_assert_int_eq(reg1(r, &h, tmpl, why, sizeof why), GW_OK);
	ck_assert_int_eq(gw_registry_lookup_instance(r, "s", "i1", &t, NULL), GW_ENOTFOUND);
	ck_assert_int_eq(gw_registry_spawn(r, "s", "i1", "t", NULL), GW_OK);
	gw_registry_destroy(r);
	fake_host_free(&h);
}
END_TEST

/* The instance table (open addressing, backward-shift removal): many
 * instances of two templates, half of them unspawned in a scattered order,
 * then one template freed with its instances; every lookup answers right
 * after each step (a broken probe run would lose an instance that is
 * still there). */
START_TEST(many_instances_stay_findable_through_removals)
{
	enum { N = 20000 };
	gw_registry *r;
	gw_host h;
	fake_host_init(&h);
	gw_registry_create(&r, &(gw_registry_opts){.timer_floor_ms = 10, .grace_ms = 0});
	char why[512], name[32];
	ck_assert_int_eq(reg1(r, &h, (spec){.name = "ta", .kind = SPAWN__ACTORS__KIND__UNNAMED},
	                      why, sizeof why),
	                 GW_OK);
	gw_host h2;
	fake_host_init(&h2);
	ck_assert_int_eq(reg1(r, &h2, (spec){.name = "tb", .kind = SPAWN__ACTORS__KIND__UNNAMED},
	                      why, sizeof why),
	                 GW_OK);
	for (int i = 0; i < N; i++) {
		bool created = false;
		snprintf(name, sizeof name, "i%d", i);
		ck_assert_int_eq(gw_registry_spawn(r, "s", name, i % 2 ? "tb" : "ta", &created),
		                 GW_OK);
		ck_assert(created);
	}
	/* unspawn every i with i % 4 == 1 (all of tb's, half of them), in
	 * a scattered order */
	for (int k = 0; k < N; k++) {
		int i = (int)(((long long)k * 7919) % N);
		if (i % 4 != 1)
			continue;
		snprintf(name, sizeof name, "i%d", i);
		ck_assert_int_eq(gw_registry_unspawn(r, "s", name), GW_OK);
		ck_assert_int_eq(gw_registry_unspawn(r, "s", name), GW_ENOTFOUND);
	}
	for (int i = 0; i < N; i++) {
		gw_actor_type *t;
		snprintf(name, sizeof name, "i%d", i);
		gw_err want = i % 4 == 1 ? GW_ENOTFOUND : GW_OK;
		ck_assert_msg(gw_registry_lookup_instance(r, "s", name, &t, NULL) == want, "%s",
		              name);
		if (want == GW_OK) {
			ck_assert_str_eq(t->name, i % 2 ? "tb" : "ta");
			gw_registry_type_rele(t);
		}
	}
	/* tb's host leaves: tb and its remaining instances go */
	gw_registry_unbind_host(r, &h2);
	ck_assert_uint_eq(gw_registry_sweep(r), 1);
	for (int i = 0; i < N; i++) {
		gw_actor_type *t;
		snprintf(name, sizeof name, "i%d", i);
		gw_err want = i % 2 ? GW_ENOTFOUND : GW_OK;
		ck_assert_msg(gw_registry_lookup_instance(r, "s", name, &t, NULL) == want, "%s",
		              name);
		if (want == GW_OK)
			gw_registry_type_rele(t);
	}
	gw_registry_destroy(r);
	fake_host_free(&h);
	fake_host_free(&h2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("registry");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, lookup_finds_registered_types_only);
	tcase_add_test(tc, many_instances_stay_findable_through_removals);
	tcase_add_test(tc, served_lists_the_types_live_hosts_serve_sorted);
	tcase_add_test(tc, served_lists_the_channel_subscriptions_of_named_actors);
	tcase_add_test(tc, pick_distinguishes_unknown_actions_from_missing_hosts);
	tcase_add_test(tc, work_is_spread_over_hosts_and_fails_over);
	tcase_add_test(tc, a_host_only_gets_the_actions_it_registered);
	tcase_add_test(tc, bad_registrations_are_refused_with_a_reason);
	tcase_add_test(tc, pooled_actors_are_stateless);
	TCase *rules = tcase_create("registration rules");
	tcase_set_timeout(rules, 10);
	tcase_add_test(rules, a_second_host_joins_only_with_the_same_settings);
	tcase_add_test(rules, settings_change_only_when_no_other_host_serves_the_type);
	tcase_add_test(rules, a_refused_registration_binds_nothing);
	tcase_add_test(rules, the_map_key_is_the_actor_name_and_the_system_is_the_registered_one);
	tcase_add_test(rules, a_declared_state_type_is_well_formed);
	tcase_add_test(rules, results_of_another_state_type_are_refused);
	tcase_add_test(rules, timer_periods_are_positive_and_above_the_floor);
	tcase_add_test(rules, a_type_without_host_is_freed_after_the_grace);
	tcase_add_test(rules, churn_of_hosts_leaves_no_type_behind);
	tcase_add_test(rules, instances_go_with_their_template_whatever_its_kind_became);
	suite_add_tcase(s, rules);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
