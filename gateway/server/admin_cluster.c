/* admin_cluster.c - Admin calls answered for the whole cluster
 * (docs/design/cluster.md, "Admin calls across the cluster").
 *
 * A call that names an actor (GetState, ListRevisions, Restore, Forget)
 * runs on the actor's owner, whichever member received it: the entry member
 * finds the owner in its view (gw_router_owner_of) and runs the call here
 * or sends it with Peer.Admin. The owner answers from its memory (an active
 * actor's state, its queue; a restore or a Forget is a turn there).
 *
 * One call at the entry member (struct cadm):
 *   (taken) ---- owner is self, or no member serves the type --> (local)  [gwi_admin_run]
 *   (taken) ---- the name is unknown here -----> LOOKUP    [an instance? the store says]
 *   LOOKUP ----- answered ---------------------> (taken)   [decided again, once]
 *   (taken) ---- owner is another member ------> SENT      [Peer.Admin, deadline = the call's]
 *   (taken) ---- no view / fenced -------------> WAITING   [gw_router_await]
 *   SENT ------- FAILED_PRECONDITION + spawn-owner --> WAITING [for a newer view]
 *   SENT ------- any other answer -------------> (done)    [the owner's reply or error]
 *   WAITING ---- a newer view -----------------> (taken)
 *   WAITING ---- the deadline or 10 s ---------> (done)    [DEADLINE_EXCEEDED, or
 *                                                           UNAVAILABLE + not-dispatched]
 * Invariants, as for Peer.Forward (routing.h): a member never sends an
 * Admin call it received from a peer further (Peer.Admin runs it or
 * refuses it); after GW_ROUTE_HOPS attempts the call fails UNAVAILABLE,
 * not dispatched.
 *
 * KeyRotation (struct kagg) asks every member of the view with Peer.Admin
 * at once (each answers its own progress), and answers the sums with each
 * member's own answer, and every member that did not answer (its code and
 * message: it is never hidden). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "peer.h"
#include "server_int.h"

#define CADM_WAIT_MS 10000 /* longest a call without a deadline waits for a view */
#define KAGG_WAIT_MS 3000  /* longest the members' key-rotation answers are awaited */

static int64_t now_ms(void)
{
	return spawn_now_ns() / 1000000;
}

/* ---- the reply of Peer.Admin ------------------------------------------------- */

void gwi_peer_admin_wrap(Spawn__Gateway__V1__PeerAdminReply *out, const ProtobufCMessage *msg)
{
	spawn__gateway__v1__peer_admin_reply__init(out);
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	if (d == &spawn__gateway__v1__actor_state_view__descriptor) {
		out->reply_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REPLY__REPLY_STATE;
		out->state = (Spawn__Gateway__V1__ActorStateView *)msg;
	} else if (d == &spawn__gateway__v1__revision_list__descriptor) {
		out->reply_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REPLY__REPLY_REVISIONS;
		out->revisions = (Spawn__Gateway__V1__RevisionList *)msg;
	} else if (d == &spawn__gateway__v1__forget_result__descriptor) {
		out->reply_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REPLY__REPLY_FORGOTTEN;
		out->forgotten = (Spawn__Gateway__V1__ForgetResult *)msg;
	} else if (d == &spawn__gateway__v1__key_rotation_status__descriptor) {
		out->reply_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REPLY__REPLY_KEY_ROTATION;
		out->key_rotation = (Spawn__Gateway__V1__KeyRotationStatus *)msg;
	} else if (d == &spawn__gateway__v1__list_reply__descriptor) {
		out->reply_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REPLY__REPLY_LIST;
		out->list = (Spawn__Gateway__V1__ListReply *)msg;
	}
}

/* ref_of: the actor a request of method names (NULL for KeyRotation or a
 * request without one: gwi_admin_run answers that). */
static const Spawn__Gateway__V1__ActorRef *ref_of(int method, const ProtobufCMessage *m)
{
	switch (method) {
	case GWI_M_GET_STATE:
		return ((const Spawn__Gateway__V1__GetStateRequest *)m)->actor;
	case GWI_M_RESTORE:
		return ((const Spawn__Gateway__V1__RestoreRequest *)m)->actor;
	case GWI_M_LIST_REVISIONS:
	case GWI_M_FORGET:
		return (const Spawn__Gateway__V1__ActorRef *)m;
	default:
		return NULL;
	}
}

static bool ref_named(const Spawn__Gateway__V1__ActorRef *r)
{
	return r && r->system && r->system[0] && r->actor && r->actor[0];
}

/* ---- a call naming an actor, at the entry member -------------------------------- */

typedef struct cadm {
	gwi_ucall *c;
	int method;
	ProtobufCMessage *m;                     /* owned (heap): the client's request */
	const Spawn__Gateway__V1__ActorRef *ref; /* borrowed from m */
	int64_t deadline_ms;                     /* monotonic; 0 = none */
	int64_t wait_until;                      /* a wait for a view ends here at the latest */
	uint64_t version;                        /* the view the last decision used */
	uint8_t attempts;                        /* Peer.Admin calls made */
	bool instance_checked;                   /* the store was asked whether it is an instance */
} cadm;

static void cadm_free(cadm *x)
{
	protobuf_c_message_free_unpacked(x->m, NULL);
	free(x);
}

static void cadm_fail(cadm *x, grpc_status_code code, bool not_dispatched, const char *msg)
{
	x->c->not_dispatched = not_dispatched;
	gwi_ucall_reply(x->c, code, msg, NULL);
	cadm_free(x);
}

static void cadm_decide(cadm *x);

static void cadm_woke(void *user, bool newer)
{
	cadm *x = user;
	if (newer) {
		cadm_decide(x);
		return;
	}
	char msg[600];
	if (x->deadline_ms && x->deadline_ms <= now_ms()) {
		snprintf(msg, sizeof msg, "deadline exceeded waiting for the owner of actor %s",
		         x->ref->actor);
		cadm_fail(x, GRPC_STATUS_DEADLINE_EXCEEDED, false, msg);
	} else {
		snprintf(msg, sizeof msg, "no owner for actor %s in the cluster's view yet; retry",
		         x->ref->actor);
		cadm_fail(x, GRPC_STATUS_UNAVAILABLE, true, msg);
	}
}

/* cadm_wait: wait for a view newer than x->version (within the call's
 * deadline, at most CADM_WAIT_MS from the first wait). */
static void cadm_wait(cadm *x)
{
	if (!x->wait_until) {
		x->wait_until = now_ms() + CADM_WAIT_MS;
		if (x->deadline_ms && x->deadline_ms < x->wait_until)
			x->wait_until = x->deadline_ms;
	}
	if (gw_router_await(x->c->srv->o.router, x->version, x->wait_until, cadm_woke, x) != GW_OK)
		cadm_fail(x, GRPC_STATUS_UNAVAILABLE, true, "the gateway is shutting down");
}

/* The owner's answer. Peer thread. */
static void cadm_answered(void *user, grpc_status_code code, const char *details,
                          grpc_byte_buffer *resp, const char *owner, bool not_dispatched,
                          bool peer_refused)
{
	cadm *x = user;
	if (peer_refused) {
		/* The owner does not take this member as a peer (its policy): not
		 * the caller's own credentials, so never their UNAUTHENTICATED or
		 * PERMISSION_DENIED; nothing ran there. */
		char m[400];
		snprintf(m, sizeof m, "the actor's owner refused this member as a peer: %s",
		         details ? details : "");
		cadm_fail(x, GRPC_STATUS_UNAVAILABLE, true, m);
		return;
	}
	if (code == GRPC_STATUS_FAILED_PRECONDITION && owner) {
		cadm_wait(x); /* not the owner in its view: wait for a newer one */
		return;
	}
	if (code != GRPC_STATUS_OK) {
		cadm_fail(x, code, code == GRPC_STATUS_UNAVAILABLE && not_dispatched, details);
		return;
	}
	spawn_arena a;
	spawn_arena_init(&a, 0);
	Spawn__Gateway__V1__PeerAdminReply *r = NULL;
	const ProtobufCMessage *inner = NULL;
	if (spawn_wire_unpack(&spawn__gateway__v1__peer_admin_reply__descriptor, resp, &a,
	                      (ProtobufCMessage **)&r) == 0) {
		switch (r->reply_case) {
		case SPAWN__GATEWAY__V1__PEER_ADMIN_REPLY__REPLY_STATE:
			if (x->method == GWI_M_GET_STATE || x->method == GWI_M_RESTORE)
				inner = &r->state->base;
			break;
		case SPAWN__GATEWAY__V1__PEER_ADMIN_REPLY__REPLY_REVISIONS:
			if (x->method == GWI_M_LIST_REVISIONS)
				inner = &r->revisions->base;
			break;
		case SPAWN__GATEWAY__V1__PEER_ADMIN_REPLY__REPLY_FORGOTTEN:
			if (x->method == GWI_M_FORGET)
				inner = &r->forgotten->base;
			break;
		default:
			break;
		}
	}
	if (inner)
		gwi_ucall_reply(x->c, GRPC_STATUS_OK, NULL, inner);
	else
		gwi_ucall_reply(x->c, GRPC_STATUS_INTERNAL,
		                "the actor's owner answered a malformed reply", NULL);
	spawn_arena_fini(&a);
	cadm_free(x);
}

/* The store said whether the name is an instance (persist thread): an
 * instance found is registered here with its template, which places it. */
static void cadm_found(void *user, gw_err err)
{
	(void)err; /* not found or unreachable: decided as a name nobody serves */
	cadm_decide(user);
}

static void cadm_send(cadm *x, const char *address)
{
	char self[512];
	uint64_t version;
	gw_router_self(x->c->srv->o.router, self, sizeof self, &version);
	Spawn__Gateway__V1__PeerAdminRequest pr = SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__INIT;
	pr.sender_id = self;
	pr.view_version = x->version;
	pr.hops = ++x->attempts;
	switch (x->method) {
	case GWI_M_GET_STATE:
		pr.call_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_GET_STATE;
		pr.get_state = (Spawn__Gateway__V1__GetStateRequest *)x->m;
		break;
	case GWI_M_LIST_REVISIONS:
		pr.call_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_LIST_REVISIONS;
		pr.list_revisions = (Spawn__Gateway__V1__ActorRef *)x->m;
		break;
	case GWI_M_RESTORE:
		pr.call_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_RESTORE;
		pr.restore = (Spawn__Gateway__V1__RestoreRequest *)x->m;
		break;
	default:
		pr.call_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_FORGET;
		pr.forget = (Spawn__Gateway__V1__ActorRef *)x->m;
		break;
	}
	grpc_byte_buffer *bb = NULL;
	if (spawn_wire_pack(&pr.base, &bb) != 0) {
		cadm_fail(x, GRPC_STATUS_RESOURCE_EXHAUSTED, true, "out of memory");
		return;
	}
	/* Not cancelled when the client goes: the owner's work is bounded by
	 * the call's deadline, which travels with it. */
	gw_peer_call *call = NULL;
	gw_err err = gw_peer_call_start(x->c->srv->o.peers, address, GW_PEER_ADMIN, bb,
	                                x->deadline_ms, cadm_answered, x, &call);
	grpc_byte_buffer_destroy(bb);
	if (err) {
		cadm_fail(x, GRPC_STATUS_UNAVAILABLE, true,
		          "cannot send the Admin call to the actor's owner");
		return;
	}
	gw_peer_call_rele(call); /* cadm_answered runs once either way */
}

static void cadm_decide(cadm *x)
{
	char owner[512], address[512];
	bool known = false;
	int w = gw_router_owner_of(x->c->srv->o.router, x->ref->system, x->ref->actor, owner,
	                           sizeof owner, address, sizeof address, &x->version, &known);
	if (w == GW_OWNER_NONE && !known && !x->instance_checked) {
		x->instance_checked = true;
		if (gw_runtime_find_instance(x->c->srv->rt, x->ref->system, x->ref->actor,
		                             cadm_found, x) == GW_OK)
			return;
	}
	if (w == GW_OWNER_SELF || w == GW_OWNER_NONE) {
		/* This member owns it, or no member serves its type: the store
		 * (or nobody) holds it, and here is as good as anywhere. */
		gwi_admin_run(x->c, x->method, x->m);
		cadm_free(x);
		return;
	}
	if (w == GW_OWNER_NOVIEW) {
		cadm_wait(x);
		return;
	}
	if (x->attempts >= GW_ROUTE_HOPS) {
		char msg[600];
		snprintf(msg, sizeof msg,
		         "actor %s: its owner could not be settled after %d attempts (members "
		         "disagree about the view); retry",
		         x->ref->actor, GW_ROUTE_HOPS);
		cadm_fail(x, GRPC_STATUS_UNAVAILABLE, true, msg);
		return;
	}
	GW_DEBUG("admin call of %s/%s: sent to its owner %s", x->ref->system, x->ref->actor, owner);
	cadm_send(x, address);
}

/* ---- KeyRotation: every member's answer -------------------------------------------- */

typedef struct kmember {
	char *id, *address; /* owned */
	bool answered;
	Spawn__Gateway__V1__KeyRotationStatus st; /* answered: its counts (no repeated fields) */
	int code;                                 /* not answered: its status */
	char msg[300];
	struct kagg *k;
} kmember;

typedef struct kagg {
	gwi_ucall *c;
	pthread_mutex_t mu;
	size_t pending; /* answers still awaited, plus one while starting */
	size_t n;
	kmember *m; /* owned, n */
} kagg;

static void kagg_free(kagg *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->m[i].id);
		free(k->m[i].address);
	}
	free(k->m);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

/* kagg_finish answers the aggregate (once every member answered or failed). */
static void kagg_finish(kagg *k)
{
	Spawn__Gateway__V1__KeyRotationStatus ks = SPAWN__GATEWAY__V1__KEY_ROTATION_STATUS__INIT;
	size_t na = 0, nu = 0;
	for (size_t i = 0; i < k->n; i++)
		na += k->m[i].answered;
	nu = k->n - na;
	Spawn__Gateway__V1__MemberKeyRotation *mk = calloc(na ? na : 1, sizeof *mk);
	Spawn__Gateway__V1__MemberKeyRotation **mkp = calloc(na ? na : 1, sizeof *mkp);
	Spawn__Gateway__V1__MemberFailure *mf = calloc(nu ? nu : 1, sizeof *mf);
	Spawn__Gateway__V1__MemberFailure **mfp = calloc(nu ? nu : 1, sizeof *mfp);
	if (!mk || !mkp || !mf || !mfp) {
		gwi_ucall_reply(k->c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		goto out;
	}
	bool all_done = nu == 0;
	size_t a = 0, u = 0;
	for (size_t i = 0; i < k->n; i++) {
		kmember *m = &k->m[i];
		if (m->answered) {
			spawn__gateway__v1__member_key_rotation__init(&mk[a]);
			mk[a].member_id = m->id;
			mk[a].address = m->address;
			mk[a].status = &m->st;
			mkp[a] = &mk[a];
			a++;
			ks.enabled |= m->st.enabled;
			ks.rewritten += m->st.rewritten;
			ks.remaining += m->st.remaining;
			ks.failed += m->st.failed;
			if (m->st.enabled && !m->st.done)
				all_done = false;
		} else {
			spawn__gateway__v1__member_failure__init(&mf[u]);
			mf[u].member_id = m->id;
			mf[u].address = m->address;
			mf[u].code = m->code;
			mf[u].message = m->msg;
			mfp[u] = &mf[u];
			u++;
		}
	}
	ks.done = ks.enabled && all_done;
	ks.n_members = na;
	ks.members = mkp;
	ks.n_unanswered = nu;
	ks.unanswered = mfp;
	if (nu)
		GW_WARN("admin KeyRotation: %zu of %zu members did not answer (the first: %s: %s)",
		        nu, k->n, mf[0].member_id, mf[0].message);
	gwi_ucall_reply(k->c, GRPC_STATUS_OK, NULL, &ks.base);
out:
	free(mk);
	free(mkp);
	free(mf);
	free(mfp);
	kagg_free(k);
}

static void kagg_rele(kagg *k)
{
	pthread_mutex_lock(&k->mu);
	bool last = --k->pending == 0;
	pthread_mutex_unlock(&k->mu);
	if (last)
		kagg_finish(k);
}

/* A member's answer. Peer thread. */
static void kagg_answered(void *user, grpc_status_code code, const char *details,
                          grpc_byte_buffer *resp, const char *owner, bool not_dispatched,
                          bool peer_refused)
{
	kmember *m = user;
	(void)owner;
	(void)not_dispatched;
	(void)peer_refused; /* a member refusing this one as a peer is named in
	                       unanswered with its code, like any member that failed */
	if (code == GRPC_STATUS_OK) {
		spawn_arena a;
		spawn_arena_init(&a, 0);
		Spawn__Gateway__V1__PeerAdminReply *r = NULL;
		if (spawn_wire_unpack(&spawn__gateway__v1__peer_admin_reply__descriptor, resp, &a,
		                      (ProtobufCMessage **)&r) == 0 &&
		    r->reply_case == SPAWN__GATEWAY__V1__PEER_ADMIN_REPLY__REPLY_KEY_ROTATION) {
			const Spawn__Gateway__V1__KeyRotationStatus *s = r->key_rotation;
			m->st.enabled = s->enabled;
			m->st.done = s->done;
			m->st.rewritten = s->rewritten;
			m->st.remaining = s->remaining;
			m->st.failed = s->failed;
			m->answered = true;
		} else {
			m->code = GRPC_STATUS_INTERNAL;
			snprintf(m->msg, sizeof m->msg, "a malformed reply");
		}
		spawn_arena_fini(&a);
	} else {
		m->code = code;
		snprintf(m->msg, sizeof m->msg, "%s",
		         details && details[0] ? details : "no answer");
	}
	kagg_rele(m->k);
}

static void kagg_start(gwi_ucall *c)
{
	gw_server *s = c->srv;
	gw_view *v = gw_router_view_copy(s->o.router);
	if (!v || v->self >= v->n) {
		/* No view (yet, or fenced): the members are not known, so this
		 * member answers for itself alone, and says so. */
		gw_router_view_free(v);
		Spawn__Gateway__V1__KeyRotationStatus ks;
		gwi_admin_key_rotation_local(c, &ks);
		Spawn__Gateway__V1__MemberFailure f = SPAWN__GATEWAY__V1__MEMBER_FAILURE__INIT,
		                                  *fp = &f;
		f.member_id = "";
		f.address = "";
		f.code = GRPC_STATUS_UNAVAILABLE;
		f.message =
		    "this member has no view of the cluster: the other members were not asked";
		ks.done = false;
		ks.n_unanswered = 1;
		ks.unanswered = &fp;
		gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &ks.base);
		return;
	}
	kagg *k = calloc(1, sizeof *k);
	if (!k || !(k->m = calloc(v->n, sizeof *k->m))) {
		free(k);
		gw_router_view_free(v);
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	pthread_mutex_init(&k->mu, NULL);
	k->c = c;
	k->n = v->n;
	k->pending = 1;
	for (size_t i = 0; i < v->n; i++) {
		k->m[i].k = k;
		k->m[i].id = strdup(v->members[i].id);
		k->m[i].address = strdup(v->members[i].address);
		spawn__gateway__v1__key_rotation_status__init(&k->m[i].st);
		if (!k->m[i].id || !k->m[i].address) {
			k->m[i].code = GRPC_STATUS_RESOURCE_EXHAUSTED;
			snprintf(k->m[i].msg, sizeof k->m[i].msg, "out of memory");
		}
	}
	gwi_fanout f;
	gwi_fanout_init(&f, c, KAGG_WAIT_MS);
	Spawn__Gateway__V1__KeyRotationRequest kr = SPAWN__GATEWAY__V1__KEY_ROTATION_REQUEST__INIT;
	f.pr.call_case = SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_KEY_ROTATION;
	f.pr.key_rotation = &kr;
	for (size_t i = 0; i < v->n; i++) {
		kmember *m = &k->m[i];
		if (!m->id || !m->address)
			continue;
		if (i == v->self) {
			gwi_admin_key_rotation_local(c, &m->st);
			m->answered = true;
			continue;
		}
		gwi_fanout_send(&f, s, m->address, &k->mu, &k->pending, kagg_answered, m, &m->code,
		                m->msg, sizeof m->msg);
	}
	gw_router_view_free(v);
	kagg_rele(k); /* the start's own count */
}

/* ---- a fan-out to every member (KeyRotation here, List in admin_list.c) -------------- */

void gwi_fanout_init(gwi_fanout *f, gwi_ucall *c, int64_t wait_ms)
{
	int64_t now = now_ms(), dl = gwi_deadline_ms(c->deadline);
	f->until = now + wait_ms;
	/* Answer before the client's own deadline, naming who was late. */
	if (dl && dl - 100 < f->until)
		f->until = dl - 100 > now ? dl - 100 : now + 1;
	uint64_t version = 0;
	gw_router_self(c->srv->o.router, f->self, sizeof f->self, &version);
	spawn__gateway__v1__peer_admin_request__init(&f->pr);
	f->pr.sender_id = f->self;
	f->pr.view_version = version;
	f->pr.hops = 1;
}

bool gwi_fanout_send(gwi_fanout *f, gw_server *s, const char *address, pthread_mutex_t *mu,
                     size_t *pending, gw_peer_done_fn done, void *user, int *code, char *msg,
                     size_t n)
{
	/* A buffer per call: gRPC takes the slices of the one it sends. */
	grpc_byte_buffer *bb = NULL;
	if (spawn_wire_pack(&f->pr.base, &bb) != 0) {
		*code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(msg, n, "out of memory");
		return false;
	}
	pthread_mutex_lock(mu);
	(*pending)++;
	pthread_mutex_unlock(mu);
	gw_peer_call *call = NULL;
	gw_err err =
	    gw_peer_call_start(s->o.peers, address, GW_PEER_ADMIN, bb, f->until, done, user, &call);
	grpc_byte_buffer_destroy(bb);
	if (err != GW_OK) {
		*code = GRPC_STATUS_UNAVAILABLE;
		snprintf(msg, n, "cannot call the member");
		pthread_mutex_lock(mu);
		(*pending)--;
		pthread_mutex_unlock(mu);
		return false;
	}
	gw_peer_call_rele(call);
	return true;
}

/* ---- the entry points ------------------------------------------------------------- */

bool gwi_cadmin_take(gwi_ucall *c, int method, ProtobufCMessage *m)
{
	if (!c->srv->o.peers)
		return false; /* no links to the others: a single gateway's answer */
	if (method == GWI_M_KEY_ROTATION) {
		protobuf_c_message_free_unpacked(m, NULL);
		kagg_start(c);
		return true;
	}
	const Spawn__Gateway__V1__ActorRef *ref = ref_of(method, m);
	if (!ref_named(ref))
		return false; /* gwi_admin_run answers INVALID_ARGUMENT */
	cadm *x = calloc(1, sizeof *x);
	if (!x)
		return false; /* here, as a single gateway would */
	x->c = c;
	x->method = method;
	x->m = m;
	x->ref = ref;
	x->deadline_ms = gwi_deadline_ms(c->deadline);
	cadm_decide(x);
	return true;
}

void gwi_peer_admin_handle(gwi_ucall *c)
{
	ProtobufCMessage *m = NULL;
	char why[GW_WC_PATH_MAX + 200];
	if (gwi_unpack_checked(c->srv, &spawn__gateway__v1__peer_admin_request__descriptor,
	                       c->payload, NULL, &m, why, sizeof why)) {
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
		return;
	}
	Spawn__Gateway__V1__PeerAdminRequest *pr = (Spawn__Gateway__V1__PeerAdminRequest *)m;
	int method = -1;
	ProtobufCMessage *call = NULL;
	switch (pr->call_case) {
	case SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_GET_STATE:
		method = GWI_M_GET_STATE;
		call = &pr->get_state->base;
		break;
	case SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_LIST_REVISIONS:
		method = GWI_M_LIST_REVISIONS;
		call = &pr->list_revisions->base;
		break;
	case SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_RESTORE:
		method = GWI_M_RESTORE;
		call = &pr->restore->base;
		break;
	case SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_FORGET:
		method = GWI_M_FORGET;
		call = &pr->forget->base;
		break;
	case SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_KEY_ROTATION:
		method = GWI_M_KEY_ROTATION;
		break;
	case SPAWN__GATEWAY__V1__PEER_ADMIN_REQUEST__CALL_LIST:
		method = GWI_M_LIST;
		break;
	default:
		break;
	}
	const char *bad = method < 0                 ? "call is required"
	                  : pr->hops > GW_ROUTE_HOPS ? "hops over the limit"
	                  : method != GWI_M_KEY_ROTATION && method != GWI_M_LIST &&
	                          !ref_named(ref_of(method, call))
	                      ? "actor.system and actor.actor are required"
	                      : NULL;
	if (bad) {
		protobuf_c_message_free_unpacked(m, NULL);
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, bad, NULL);
		return;
	}
	if (method == GWI_M_LIST) {
		/* this member's own page, its items named by its id in the view */
		char self[512];
		uint64_t version;
		gw_router_self(c->srv->o.router, self, sizeof self, &version);
		if (gwi_admin_list_check(c, pr->list))
			gwi_admin_list_local(c, pr->list, self);
		protobuf_c_message_free_unpacked(m, NULL);
		return;
	}
	if (method == GWI_M_KEY_ROTATION) {
		Spawn__Gateway__V1__KeyRotationStatus ks;
		gwi_admin_key_rotation_local(c, &ks);
		gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &ks.base);
		protobuf_c_message_free_unpacked(m, NULL);
		return;
	}
	const Spawn__Gateway__V1__ActorRef *ref = ref_of(method, call);
	char owner[512], address[512];
	uint64_t version;
	bool known;
	int w = gw_router_owner_of(c->srv->o.router, ref->system, ref->actor, owner, sizeof owner,
	                           address, sizeof address, &version, &known);
	if (w == GW_OWNER_OTHER || w == GW_OWNER_NOVIEW) {
		snprintf(why, sizeof why,
		         "member does not own the actor in its view %llu (sender's view %llu)",
		         (unsigned long long)version, (unsigned long long)pr->view_version);
		c->owner = strdup(owner);
		protobuf_c_message_free_unpacked(m, NULL);
		gwi_ucall_reply(c, GRPC_STATUS_FAILED_PRECONDITION, why, NULL);
		return;
	}
	gwi_admin_run(c, method, call);
	protobuf_c_message_free_unpacked(m, NULL);
}
