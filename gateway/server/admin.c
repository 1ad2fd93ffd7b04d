/* admin.c - spawn.gateway.v1.Admin: reads, revision listings, restores,
 * key-rotation progress and Forget. No actor host is involved; statestore work runs on
 * the persist thread and each reply is sent from whichever thread finishes
 * it (see docs/design/call-lifecycle.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server_int.h"

/* ref_ok validates an ActorRef; on failure it answers the call. */
static bool ref_ok(gwi_ucall *c, const Spawn__Gateway__V1__ActorRef *r)
{
	if (r && r->system && r->system[0] && r->actor && r->actor[0])
		return true;
	gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT,
	                "actor.system and actor.actor are required", NULL);
	return false;
}

static void reply_err(gwi_ucall *c, gw_err err, const char *msg)
{
	gwi_ucall_reply(c, gw_err_status(err), msg && msg[0] ? msg : gw_strerror(err), NULL);
}

/* A read in flight: the call and the actor's name for the reply. */
typedef struct read_ctx {
	gwi_ucall *c;
	char *system, *actor; /* owned, one allocation */
} read_ctx;

static read_ctx *read_ctx_new(gwi_ucall *c, const char *system, const char *actor)
{
	size_t ls = strlen(system) + 1, la = strlen(actor) + 1;
	read_ctx *r = malloc(sizeof *r + ls + la);
	if (!r)
		return NULL;
	r->c = c;
	r->system = (char *)(r + 1);
	r->actor = r->system + ls;
	memcpy(r->system, system, ls);
	memcpy(r->actor, actor, la);
	return r;
}

static void view_reply(void *user, gw_err err, const char *msg, const gw_blob *state,
                       const gw_blob *tags, const gw_read_meta *meta)
{
	read_ctx *r = user;
	if (err) {
		if (err == GW_ENOTFOUND) {
			char m[200];
			snprintf(m, sizeof m, "actor '%s' in system '%s': %s", r->actor, r->system,
			         msg ? msg : "not found");
			reply_err(r->c, err, m);
		} else {
			reply_err(r->c, err, msg);
		}
		free(r);
		return;
	}
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.system = r->system;
	id.name = r->actor;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	Spawn__Gateway__V1__ActorStateView v = SPAWN__GATEWAY__V1__ACTOR_STATE_VIEW__INIT;
	v.id = &id;
	v.revision = meta->revision;
	v.active = meta->active;
	v.dirty = meta->dirty;
	v.queued = meta->queued;
	if (state) {
		any.type_url = (char *)gw_blob_type(state);
		any.value.data = (uint8_t *)gw_blob_value(state);
		any.value.len = state->len;
		v.state = &any;
	}
	if (tags) {
		Spawn__Actors__ActorState *t =
		    spawn__actors__actor_state__unpack(&ar.pbc, tags->len, gw_blob_value(tags));
		if (t) {
			/* map entries of ActorState and ActorStateView are wire-identical */
			v.n_tags = t->n_tags;
			v.tags = (Spawn__Gateway__V1__ActorStateView__TagsEntry **)t->tags;
		}
	}
	gwi_ucall_reply(r->c, GRPC_STATUS_OK, NULL, &v.base);
	spawn_arena_fini(&ar);
	free(r);
}

static void get_state(gwi_ucall *c, Spawn__Gateway__V1__GetStateRequest *rq)
{
	if (!ref_ok(c, rq->actor))
		return;
	read_ctx *r = read_ctx_new(c, rq->actor->system, rq->actor->actor);
	if (!r || gw_runtime_read(c->srv->rt, r->system, r->actor, rq->revision, view_reply, r)) {
		free(r);
		reply_err(c, GW_ENOMEM, NULL);
	}
}

static void list_reply(void *user, gw_err err, const uint64_t *revs, size_t n)
{
	read_ctx *r = user;
	if (err) {
		reply_err(r->c, err, NULL);
	} else {
		Spawn__Gateway__V1__RevisionList l = SPAWN__GATEWAY__V1__REVISION_LIST__INIT;
		l.n_revisions = n;
		l.revisions = (uint64_t *)revs;
		gwi_ucall_reply(r->c, GRPC_STATUS_OK, NULL, &l.base);
	}
	free(r);
}

static void list_revisions(gwi_ucall *c, Spawn__Gateway__V1__ActorRef *rq)
{
	if (!ref_ok(c, rq))
		return;
	read_ctx *r = read_ctx_new(c, rq->system, rq->actor);
	if (!r || gw_runtime_list_revisions(c->srv->rt, r->system, r->actor, list_reply, r)) {
		free(r);
		reply_err(c, GW_ENOMEM, NULL);
	}
}

/* restore_done: the restore turn finished; answer with the actor's view
 * (now the restored state, active in memory). */
static void restore_done(gw_inv *inv)
{
	read_ctx *r = inv->user;
	if (inv->err) {
		reply_err(r->c, inv->err, inv->msg);
		free(r);
	} else if (gw_runtime_read(r->c->srv->rt, r->system, r->actor, 0, view_reply, r)) {
		reply_err(r->c, GW_ENOMEM, NULL);
		free(r);
	}
	gw_inv_destroy(inv);
}

static void restore(gwi_ucall *c, Spawn__Gateway__V1__RestoreRequest *rq)
{
	if (!ref_ok(c, rq->actor))
		return;
	if (rq->revision == 0) {
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, "revision is required", NULL);
		return;
	}
	read_ctx *r = read_ctx_new(c, rq->actor->system, rq->actor->actor);
	gw_inv *inv = r ? gw_inv_create(0) : NULL;
	if (!inv) {
		free(r);
		reply_err(c, GW_ENOMEM, NULL);
		return;
	}
	/* A restore is a turn of the actor: an invocation naming it, no action. */
	spawn_arena *a = &inv->arena;
	Spawn__InvocationRequest *iq = spawn_arena_alloc(a, sizeof *iq);
	Spawn__Actors__ActorSystem *sys = spawn_arena_alloc(a, sizeof *sys);
	Spawn__Actors__Actor *act = spawn_arena_alloc(a, sizeof *act);
	Spawn__Actors__ActorId *id = spawn_arena_alloc(a, sizeof *id);
	spawn__invocation_request__init(iq);
	spawn__actors__actor_system__init(sys);
	spawn__actors__actor__init(act);
	spawn__actors__actor_id__init(id);
	sys->name = r->system;
	id->name = r->actor;
	id->system = r->system;
	act->id = id;
	iq->system = sys;
	iq->actor = act;
	inv->req = iq;
	inv->kind = GW_INV_RESTORE;
	inv->restore_rev = rq->revision;
	inv->done = restore_done;
	inv->user = r;
	gw_runtime_invoke(c->srv->rt, inv);
}

void gwi_admin_key_rotation_local(gwi_ucall *c, Spawn__Gateway__V1__KeyRotationStatus *ks)
{
	gw_persist_stats st;
	gw_persist_get_stats(gw_runtime_persist(c->srv->rt), &st);
	spawn__gateway__v1__key_rotation_status__init(ks);
	ks->enabled = st.rotate_enabled;
	ks->done = st.rotation.done;
	ks->rewritten = st.rotation.rewritten;
	ks->remaining = st.rotation.remaining;
	ks->failed = st.rotation.failed;
}

static void key_rotation(gwi_ucall *c)
{
	Spawn__Gateway__V1__KeyRotationStatus ks;
	gwi_admin_key_rotation_local(c, &ks);
	gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &ks.base);
}

/* forget_done: the Forget finished (persist thread). */
static void forget_done(void *user, gw_err err, const gw_forget_counts *n, bool was_active,
                        uint64_t calls_aborted)
{
	read_ctx *r = user;
	if (err) {
		char m[300];
		snprintf(m, sizeof m, "Forget of actor '%s' in system '%s': %s", r->actor,
		         r->system, gw_strerror(err));
		reply_err(r->c, err, m);
	} else {
		Spawn__Gateway__V1__ForgetResult fr = SPAWN__GATEWAY__V1__FORGET_RESULT__INIT;
		fr.state_rows = n->state;
		fr.history_revisions = n->history;
		fr.instance_records = n->instance;
		fr.schedules = n->schedules;
		fr.outbox = n->outbox != 0;
		fr.was_active = was_active;
		fr.calls_aborted = calls_aborted;
		gwi_ucall_reply(r->c, GRPC_STATUS_OK, NULL, &fr.base);
	}
	free(r);
}

static void forget(gwi_ucall *c, Spawn__Gateway__V1__ActorRef *rq)
{
	if (!ref_ok(c, rq))
		return;
	read_ctx *r = read_ctx_new(c, rq->system, rq->actor);
	gw_err err =
	    r ? gw_runtime_forget(c->srv->rt, r->system, r->actor, forget_done, r) : GW_ENOMEM;
	if (err == GW_OK)
		return;
	free(r);
	if (err == GW_ECONFLICT)
		gwi_ucall_reply(c, GRPC_STATUS_ABORTED,
		                "a Forget of this actor is already in progress", NULL);
	else
		reply_err(c, err, NULL);
}

void gwi_admin_handle(gwi_ucall *c)
{
	static const ProtobufCMessageDescriptor *const desc[GWI_M_COUNT] = {
	    [GWI_M_GET_STATE] = &spawn__gateway__v1__get_state_request__descriptor,
	    [GWI_M_LIST_REVISIONS] = &spawn__gateway__v1__actor_ref__descriptor,
	    [GWI_M_RESTORE] = &spawn__gateway__v1__restore_request__descriptor,
	    [GWI_M_KEY_ROTATION] = &spawn__gateway__v1__key_rotation_request__descriptor,
	    [GWI_M_FORGET] = &spawn__gateway__v1__actor_ref__descriptor,
	    [GWI_M_LIST] = &spawn__gateway__v1__list_request__descriptor,
	    [GWI_M_MEMBERS] = &spawn__gateway__v1__members_request__descriptor,
	    [GWI_M_LIST_SCHEDULES] = &spawn__gateway__v1__list_schedules_request__descriptor,
	    [GWI_M_CANCEL_SCHEDULE] = &spawn__gateway__v1__schedule_ref__descriptor,
	};
	ProtobufCMessage *m = NULL;
	char why[GW_WC_PATH_MAX + 200];
	if (gwi_unpack_checked(c->srv, desc[c->method], c->payload, NULL, &m, why, sizeof why)) {
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
		return;
	}
	/* In a cluster a call naming an actor runs on its owner, and
	 * KeyRotation answers for every member (admin_cluster.c). */
	if (c->srv->o.router && gwi_cadmin_take(c, c->method, m))
		return;
	gwi_admin_run(c, c->method, m);
	protobuf_c_message_free_unpacked(m, NULL);
}

void gwi_admin_run(gwi_ucall *c, int method, ProtobufCMessage *m)
{
	switch (method) {
	case GWI_M_GET_STATE:
		get_state(c, (Spawn__Gateway__V1__GetStateRequest *)m);
		break;
	case GWI_M_LIST_REVISIONS:
		list_revisions(c, (Spawn__Gateway__V1__ActorRef *)m);
		break;
	case GWI_M_RESTORE:
		restore(c, (Spawn__Gateway__V1__RestoreRequest *)m);
		break;
	case GWI_M_FORGET:
		forget(c, (Spawn__Gateway__V1__ActorRef *)m);
		break;
	case GWI_M_LIST: /* admin_list.c: every member answers in a cluster */
		if (gwi_admin_list_check(c, (Spawn__Gateway__V1__ListRequest *)m)) {
			if (c->srv->o.router && c->srv->o.peers)
				gwi_admin_list_cluster(c, (Spawn__Gateway__V1__ListRequest *)m);
			else
				gwi_admin_list_local(c, (Spawn__Gateway__V1__ListRequest *)m, "");
		}
		break;
	case GWI_M_MEMBERS:
		gwi_admin_members(c);
		break;
	case GWI_M_LIST_SCHEDULES: /* the store is the cluster's: any member answers */
		gwi_admin_list_schedules(c, (Spawn__Gateway__V1__ListSchedulesRequest *)m);
		break;
	case GWI_M_CANCEL_SCHEDULE:
		gwi_admin_cancel_schedule(c, (Spawn__Gateway__V1__ScheduleRef *)m);
		break;
	default:
		key_rotation(c);
		break;
	}
}
