/* seeds.c - fuzz_seeds OUTDIR: writes the seed corpus of every fuzz target
 * (OUTDIR/<target>/<nn>-<what>) from real messages, built with protobuf-c
 * as clients, hosts and the runtime build them. Deterministic: the same
 * files every run (make fuzz-seeds regenerates tests/fuzz/corpus).
 *
 * Byte 0 of a client_request seed is the method (0 Invoke, 1 Spawn,
 * 2 GetState, 3 ListRevisions, 4 Restore, 5 KeyRotation); byte 0 of a
 * stored_row seed is the mode (fuzz_stored_row.c). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spawn/actors/protocol.pb-c.h"
#include "spawn/gateway/v1/gateway.pb-c.h"

static const char *outdir;
static int seq;

static void mkdir_p(const char *d)
{
	if (mkdir(d, 0755) != 0 && errno != EEXIST) {
		perror(d);
		exit(1);
	}
}

/* put writes prefix (plen bytes, may be 0) + the packed message m. */
static void put(const char *target, const char *what, const uint8_t *prefix, size_t plen,
                const ProtobufCMessage *m)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", outdir, target);
	mkdir_p(path);
	snprintf(path, sizeof path, "%s/%s/%02d-%s", outdir, target, seq++ % 100, what);
	size_t n = m ? protobuf_c_message_get_packed_size(m) : 0;
	uint8_t *buf = malloc(plen + n + 1);
	if (!buf)
		exit(1);
	if (plen)
		memcpy(buf, prefix, plen);
	if (m)
		protobuf_c_message_pack(m, buf + plen);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, plen + n, f) != plen + n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	free(buf);
}

static void put_raw(const char *target, const char *what, const uint8_t *b, size_t n)
{
	put(target, what, b, n, NULL);
}

/* ---- building blocks ---------------------------------------------------- */

static int64_t one = 1;
static Google__Protobuf__Any any_add = {PROTOBUF_C_MESSAGE_INIT(&google__protobuf__any__descriptor),
                                        "type.googleapis.com/fz.Add",
                                        {8, (uint8_t *)&one}};
static Google__Protobuf__Any any_state = {
    PROTOBUF_C_MESSAGE_INIT(&google__protobuf__any__descriptor),
    "type.googleapis.com/fz.State",
    {8, (uint8_t *)&one}};

static Spawn__Actors__ActorSystem sys_fz = {
    PROTOBUF_C_MESSAGE_INIT(&spawn__actors__actor_system__descriptor), "fz", NULL};

static void actor_id(Spawn__Actors__ActorId *id, const char *name, const char *parent)
{
	spawn__actors__actor_id__init(id);
	id->name = (char *)name;
	id->system = "fz";
	if (parent)
		id->parent = (char *)parent;
}

typedef struct inv_parts {
	Spawn__InvocationRequest rq;
	Spawn__Actors__Actor actor;
	Spawn__Actors__ActorId id, caller;
	Spawn__InvocationRequest__MetadataEntry md, *mdp[1];
	Spawn__Noop noop;
} inv_parts;

static Spawn__InvocationRequest *inv(inv_parts *p, const char *actor, const char *action)
{
	memset(p, 0, sizeof *p);
	spawn__invocation_request__init(&p->rq);
	spawn__actors__actor__init(&p->actor);
	actor_id(&p->id, actor, NULL);
	p->actor.id = &p->id;
	p->rq.system = &sys_fz;
	p->rq.actor = &p->actor;
	p->rq.action_name = (char *)action;
	p->rq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	p->rq.value = &any_add;
	return &p->rq;
}

static void with_metadata(inv_parts *p, const char *k, const char *v)
{
	spawn__invocation_request__metadata_entry__init(&p->md);
	p->md.key = (char *)k;
	p->md.value = (char *)v;
	p->mdp[0] = &p->md;
	p->rq.n_metadata = 1;
	p->rq.metadata = p->mdp;
}

/* ---- client_request ------------------------------------------------------ */

static void client_request(void)
{
	const char *T = "client_request";
	uint8_t m;
	inv_parts p;
	m = 0;
	put(T, "invoke-add", &m, 1, &inv(&p, "counter", "Add")->base);
	put(T, "invoke-get", &m, 1, &inv(&p, "counter", "Get")->base);
	put(T, "invoke-echo", &m, 1, &inv(&p, "echo", "Add")->base);
	put(T, "invoke-unknown-actor", &m, 1, &inv(&p, "nobody", "Add")->base);
	put(T, "invoke-unknown-action", &m, 1, &inv(&p, "counter", "Nope")->base);
	Spawn__InvocationRequest *rq = inv(&p, "c-1", "Add");
	rq->register_ref = "counters";
	put(T, "invoke-register-ref", &m, 1, &rq->base);
	rq = inv(&p, "counter", "Add");
	rq->async = true;
	put(T, "invoke-async", &m, 1, &rq->base);
	rq = inv(&p, "counter", "Add");
	rq->scheduled_to = 1000;
	put(T, "invoke-overdue", &m, 1, &rq->base);
	rq = inv(&p, "counter", "Add");
	rq->payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_NOOP;
	spawn__noop__init(&p.noop);
	rq->noop = &p.noop;
	put(T, "invoke-noop", &m, 1, &rq->base);
	rq = inv(&p, "counter", "Add");
	with_metadata(&p, "trace-id", "abc");
	put(T, "invoke-metadata", &m, 1, &rq->base);
	rq = inv(&p, "counter", "Add");
	actor_id(&p.caller, "echo", NULL);
	rq->caller = &p.caller;
	put(T, "invoke-caller", &m, 1, &rq->base);
	rq = inv(&p, "counter", "Add");
	rq->pooled = true;
	put(T, "invoke-pooled", &m, 1, &rq->base);
	rq = inv(&p, "counter", "Add");
	rq->system = NULL;
	put(T, "invoke-no-system", &m, 1, &rq->base);
	put_raw(T, "invoke-empty", &m, 1);

	m = 1;
	Spawn__Actors__ActorId ids[3], *idp[3];
	actor_id(&ids[0], "c-1", "counters");
	actor_id(&ids[1], "c-2", "counters");
	actor_id(&ids[2], "c-3", "counter");
	for (int i = 0; i < 3; i++)
		idp[i] = &ids[i];
	Spawn__SpawnRequest sp = SPAWN__SPAWN_REQUEST__INIT;
	sp.n_actors = 1;
	sp.actors = idp;
	put(T, "spawn-one", &m, 1, &sp.base);
	sp.n_actors = 2;
	put(T, "spawn-two", &m, 1, &sp.base);
	sp.n_actors = 3;
	put(T, "spawn-named-parent", &m, 1, &sp.base);
	sp.n_actors = 1;
	sp.revision = 1;
	put(T, "spawn-revision", &m, 1, &sp.base);
	sp.n_actors = 0;
	put(T, "spawn-none", &m, 1, &sp.base);

	Spawn__Gateway__V1__ActorRef ref = SPAWN__GATEWAY__V1__ACTOR_REF__INIT;
	ref.system = "fz";
	ref.actor = "counter";
	Spawn__Gateway__V1__GetStateRequest gs = SPAWN__GATEWAY__V1__GET_STATE_REQUEST__INIT;
	gs.actor = &ref;
	m = 2;
	put(T, "get-state", &m, 1, &gs.base);
	gs.revision = 1;
	put(T, "get-state-rev", &m, 1, &gs.base);
	m = 3;
	put(T, "list-revisions", &m, 1, &ref.base);
	ref.actor = "c-1";
	put(T, "list-revisions-instance", &m, 1, &ref.base);
	ref.actor = "counter";
	Spawn__Gateway__V1__RestoreRequest rr = SPAWN__GATEWAY__V1__RESTORE_REQUEST__INIT;
	rr.actor = &ref;
	rr.revision = 1;
	m = 4;
	put(T, "restore", &m, 1, &rr.base);
	rr.revision = 99;
	put(T, "restore-unknown-rev", &m, 1, &rr.base);
	Spawn__Gateway__V1__KeyRotationRequest kr = SPAWN__GATEWAY__V1__KEY_ROTATION_REQUEST__INIT;
	m = 5;
	put(T, "key-rotation", &m, 1, &kr.base);
}

/* ---- host_message -------------------------------------------------------- */

static void registration(const char *T, const char *what, const char *system, int kind,
                         bool stateful, int timers)
{
	Spawn__Actors__Action add = SPAWN__ACTORS__ACTION__INIT;
	add.name = "Add";
	Spawn__Actors__Action *acts[] = {&add};
	Spawn__Actors__FixedTimerAction ta = SPAWN__ACTORS__FIXED_TIMER_ACTION__INIT,
	                                *tap[] = {&ta};
	ta.seconds = 1;
	ta.action = &add;
	Spawn__Actors__ActorSettings st = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	st.kind = kind;
	st.stateful = stateful;
	st.state_type = stateful ? "type.googleapis.com/fz.State" : "";
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = "joined";
	id.system = (char *)system;
	Spawn__Actors__Actor a = SPAWN__ACTORS__ACTOR__INIT;
	a.id = &id;
	a.settings = &st;
	a.n_actions = 1;
	a.actions = acts;
	a.n_timer_actions = (size_t)timers;
	a.timer_actions = tap;
	Spawn__Actors__Registry__ActorsEntry e = SPAWN__ACTORS__REGISTRY__ACTORS_ENTRY__INIT,
	                                     *ep[] = {&e};
	e.key = "joined";
	e.value = &a;
	Spawn__Actors__Registry r = SPAWN__ACTORS__REGISTRY__INIT;
	r.n_actors = 1;
	r.actors = ep;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = (char *)system;
	sys.registry = &r;
	Spawn__ServiceInfo si = SPAWN__SERVICE_INFO__INIT;
	si.service_name = "fuzz";
	si.protocol_major_version = 1;
	Spawn__RegistrationRequest rr = SPAWN__REGISTRATION_REQUEST__INIT;
	rr.service_info = &si;
	rr.actor_system = &sys;
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION;
	hm.registration = &rr;
	put(T, what, NULL, 0, &hm.base);
}

typedef struct res_parts {
	Spawn__Gateway__V1__HostMessage hm;
	Spawn__Gateway__V1__InvocationResult res;
	Spawn__ActorInvocationResponse r;
	Spawn__Context ctx;
	Spawn__Context__TagsEntry tag, *tagp[1];
	Spawn__Workflow wf;
	Spawn__SideEffect se, *sep[1];
	inv_parts effect;
	Spawn__Pipe pipe;
	Spawn__Forward fwd;
	Spawn__Broadcast bc;
} res_parts;

static Spawn__Gateway__V1__HostMessage *result(res_parts *p, bool checkpoint)
{
	memset(p, 0, sizeof *p);
	spawn__gateway__v1__host_message__init(&p->hm);
	spawn__gateway__v1__invocation_result__init(&p->res);
	spawn__actor_invocation_response__init(&p->r);
	spawn__context__init(&p->ctx);
	p->ctx.state = &any_state;
	p->r.updated_context = &p->ctx;
	p->r.payload_case = SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_VALUE;
	p->r.value = &any_state;
	p->r.checkpoint = checkpoint;
	p->res.request_id = 1;
	p->res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE;
	p->res.response = &p->r;
	p->hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT;
	p->hm.result = &p->res;
	return &p->hm;
}

static Spawn__Workflow *workflow(res_parts *p)
{
	spawn__workflow__init(&p->wf);
	p->r.workflow = &p->wf;
	return &p->wf;
}

static void host_message(void)
{
	const char *T = "host_message";
	registration(T, "register-named", "fz2", SPAWN__ACTORS__KIND__NAMED, true, 0);
	registration(T, "register-unnamed", "fz2", SPAWN__ACTORS__KIND__UNNAMED, true, 0);
	registration(T, "register-pooled", "fz2", SPAWN__ACTORS__KIND__POOLED, false, 0);
	registration(T, "register-timer", "fz2", SPAWN__ACTORS__KIND__NAMED, true, 1);
	registration(T, "register-into-fz", "fz", SPAWN__ACTORS__KIND__NAMED, true, 0);
	res_parts p;
	put(T, "result-ok", NULL, 0, &result(&p, false)->base);
	put(T, "result-checkpoint", NULL, 0, &result(&p, true)->base);
	result(&p, false)->result->response->updated_context->state = NULL;
	put(T, "result-no-state", NULL, 0, &p.hm.base);
	result(&p, true);
	spawn__context__tags_entry__init(&p.tag);
	p.tag.key = "colour";
	p.tag.value = "blue";
	p.tagp[0] = &p.tag;
	p.ctx.n_tags = 1;
	p.ctx.tags = p.tagp;
	put(T, "result-tags", NULL, 0, &p.hm.base);
	result(&p, false);
	p.res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR;
	Spawn__Gateway__V1__HostError he = SPAWN__GATEWAY__V1__HOST_ERROR__INIT;
	he.code = 9;
	he.message = "nope";
	p.res.error = &he;
	put(T, "result-error", NULL, 0, &p.hm.base);
	for (int ck = 0; ck < 2; ck++) {
		result(&p, ck);
		Spawn__Workflow *wf = workflow(&p);
		spawn__side_effect__init(&p.se);
		p.se.request = inv(&p.effect, "echo", "Add");
		p.sep[0] = &p.se;
		wf->n_effects = 1;
		wf->effects = p.sep;
		put(T, ck ? "result-effect-checkpoint" : "result-effect", NULL, 0, &p.hm.base);
	}
	result(&p, false);
	Spawn__Workflow *wf = workflow(&p);
	spawn__workflow__init(wf);
	spawn__side_effect__init(&p.se);
	p.se.request = inv(&p.effect, "echo", "Add");
	p.effect.rq.system = NULL;
	p.sep[0] = &p.se;
	wf->n_effects = 1;
	wf->effects = p.sep;
	put(T, "result-effect-own-system", NULL, 0, &p.hm.base);
	result(&p, false);
	wf = workflow(&p);
	spawn__side_effect__init(&p.se);
	p.se.request = inv(&p.effect, "counter", "Add");
	p.effect.rq.scheduled_to = 4102444800000LL;
	p.sep[0] = &p.se;
	wf->n_effects = 1;
	wf->effects = p.sep;
	put(T, "result-effect-scheduled", NULL, 0, &p.hm.base);
	result(&p, false);
	wf = workflow(&p);
	spawn__pipe__init(&p.pipe);
	p.pipe.actor = "echo";
	p.pipe.action_name = "Add";
	wf->routing_case = SPAWN__WORKFLOW__ROUTING_PIPE;
	wf->pipe = &p.pipe;
	put(T, "result-pipe", NULL, 0, &p.hm.base);
	result(&p, false);
	wf = workflow(&p);
	spawn__forward__init(&p.fwd);
	p.fwd.actor = "echo";
	p.fwd.action_name = "Add";
	wf->routing_case = SPAWN__WORKFLOW__ROUTING_FORWARD;
	wf->forward = &p.fwd;
	put(T, "result-forward", NULL, 0, &p.hm.base);
	p.fwd.register_ref = "counters";
	p.fwd.actor = "c-9";
	put(T, "result-forward-register-ref", NULL, 0, &p.hm.base);
	result(&p, false);
	wf = workflow(&p);
	spawn__broadcast__init(&p.bc);
	p.bc.channel_group = "news";
	p.bc.payload_case = SPAWN__BROADCAST__PAYLOAD_VALUE;
	p.bc.value = &any_add;
	wf->broadcast = &p.bc;
	put(T, "result-broadcast", NULL, 0, &p.hm.base);
	Spawn__Gateway__V1__HostMessage empty = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	put(T, "empty", NULL, 0, &empty.base);
}

/* ---- state and stored rows ------------------------------------------------- */

/* stored_state packs a StoredState as the runtime keeps it: tags, state,
 * an outbox of n_out side effects and n_applied idempotency keys. */
static void stored_state(const char *T, const char *what, const uint8_t *prefix, size_t plen,
                         bool with_state, int n_tags, int n_out, int n_applied)
{
	Spawn__Gateway__V1__StoredState ss = SPAWN__GATEWAY__V1__STORED_STATE__INIT;
	Spawn__Gateway__V1__StoredState__TagsEntry t[2], *tp[2];
	static const char *const keys[] = {"colour", "size"};
	for (int i = 0; i < n_tags; i++) {
		spawn__gateway__v1__stored_state__tags_entry__init(&t[i]);
		t[i].key = (char *)keys[i];
		t[i].value = "x";
		tp[i] = &t[i];
	}
	ss.n_tags = (size_t)n_tags;
	ss.tags = tp;
	if (with_state)
		ss.state = &any_state;
	inv_parts e[2];
	Spawn__InvocationRequest *ep[2];
	for (int i = 0; i < n_out; i++) {
		ep[i] = inv(&e[i], i ? "counter" : "echo", "Add");
		with_metadata(&e[i], "spawn-idempotency-key",
		              i ? "fz/counter@3#1" : "fz/counter@3#0");
	}
	ss.n_outbox = (size_t)n_out;
	ss.outbox = ep;
	char *applied[] = {"fz/other@1#0", "fz/other@2#0"};
	ss.n_applied = (size_t)n_applied;
	ss.applied = applied;
	put(T, what, prefix, plen, &ss.base);
}

static void state(void)
{
	const char *T = "state";
	stored_state(T, "state-only", NULL, 0, true, 0, 0, 0);
	stored_state(T, "tags", NULL, 0, true, 2, 0, 0);
	stored_state(T, "tags-no-state", NULL, 0, false, 1, 0, 0);
	stored_state(T, "outbox", NULL, 0, true, 0, 1, 0);
	stored_state(T, "outbox-two", NULL, 0, true, 1, 2, 0);
	stored_state(T, "applied", NULL, 0, true, 0, 0, 2);
	stored_state(T, "everything", NULL, 0, true, 2, 2, 2);
	stored_state(T, "empty", NULL, 0, false, 0, 0, 0);
	/* gwi_encode_state's layout: an ActorState, then fields 100 / 101. */
	uint8_t as_then_extra[] = {0x12, 0x04, 0x0a, 0x00, 0x12, 0x00,
	                           0xaa, 0x06, 0x03, 'k',  '#',  '0'};
	put_raw(T, "actorstate-then-applied", as_then_extra, sizeof as_then_extra);
}

static void stored_row(void)
{
	const char *T = "stored_row";
	/* mode 0: a raw row [klen][key id][12 nonce][8 revision][data] */
	uint8_t raw[64] = {0, 1, 'a'};
	size_t n = 3 + 12;
	uint64_t rev = 1;
	memcpy(raw + n, &rev, 8);
	n += 8;
	memset(raw + n, 0x5a, 20);
	put_raw(T, "raw-row-garbage", raw, n + 20);
	put_raw(T, "raw-row-short", raw, n + 4);
	raw[1] = 1;
	raw[2] = 'z';
	put_raw(T, "raw-row-unknown-key", raw, n + 20);
	raw[1] = 0;
	put_raw(T, "raw-row-empty-key-id", raw, 1 + 1 + 12 + 8 + 16);
	/* mode 1: plaintext the store seals */
	uint8_t m = 1;
	stored_state(T, "sealed-state", &m, 1, true, 0, 0, 0);
	stored_state(T, "sealed-everything", &m, 1, true, 2, 2, 2);
	put_raw(T, "sealed-empty", &m, 1);
	/* mode 2: rotation records (store.c rot_write's layout) */
	uint8_t rot[64] = {2, 1, 1, 'a', 0};
	n = 5;
	memset(rot + n, 0, 32); /* revision, total, seen, failed */
	n += 32;
	uint8_t tail[] = {0, 0, 0, 2, 'f', 'z', 0, 0, 0, 3, 'r', 'o', 'w'};
	memcpy(rot + n, tail, sizeof tail);
	n += sizeof tail;
	put_raw(T, "rotation-state", rot, n);
	rot[4] = 1;
	put_raw(T, "rotation-history", rot, n);
	rot[2] = 1;
	rot[3] = 'b';
	put_raw(T, "rotation-other-primary", rot, n);
	put_raw(T, "rotation-truncated", rot, n - 5);
	/* mode 3: a raw scheduled row */
	uint8_t sch[48] = {3, 1, 'a'};
	memset(sch + 3, 7, 12 + 24);
	put_raw(T, "raw-sched", sch, 3 + 12 + 24);
	/* mode 4: a scheduled invocation the store seals */
	inv_parts p;
	m = 4;
	put(T, "sealed-sched", &m, 1, &inv(&p, "counter", "Add")->base);
	Spawn__InvocationRequest *rq = inv(&p, "counter", "Add");
	rq->scheduled_to = 1000;
	with_metadata(&p, "trace-id", "abc");
	put(T, "sealed-sched-metadata", &m, 1, &rq->base);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	mkdir_p(outdir);
	client_request();
	seq = 0;
	host_message();
	seq = 0;
	state();
	seq = 0;
	stored_row();
	return 0;
}
