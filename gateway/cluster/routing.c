/* routing.c - the router: owner by placement, forward, wait, refuse.
 * States and invariants in routing.h. */
#include "routing.h"
#include "condwait.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "placement.h"
#include "wire.h"

/* A copy of a view, owned by the router. */
typedef struct rview {
	gw_view v;
	gw_member *ms; /* owned, v.members points here */
	char **strs;   /* owned: every string of ms, to free */
	size_t nstrs;
} rview;

/* One call the router holds (inv->rstate). */
typedef struct fwd {
	gw_router *r;
	gw_inv *inv;             /* borrowed until done */
	gw_peer_call *call;      /* FORWARDED: the Peer.Forward call; under r->mu */
	uint64_t version;        /* the view the last decision used */
	uint8_t attempts;        /* forwards made */
	bool waiting;            /* WAITING: in r->waiting */
	bool none;               /* waiting because no member serves the type */
	bool lapsed;             /* the wait ended without a newer view (router thread) */
	bool refused;            /* waiting after a refusal: a newer view, or the retry
	                            delay (the owner's view may be the one behind) */
	int64_t wait_until;      /* WAITING: monotonic ms */
	struct fwd *prev, *next; /* r->waiting */
	char to[128];            /* FORWARDED: the owner's address (for the log) */
} fwd;

/* One gw_router_await: a wait for a view newer than version. */
typedef struct await {
	uint64_t version;
	int64_t until_ms;
	gw_await_fn fn;
	void *user;
	struct await *next;
} await;

struct gw_router {
	gw_router_opts o;
	pthread_mutex_t mu; /* guards view, waiting, every fwd and inv->rstate */
	pthread_cond_t cv;  /* the thread: a view arrived, a wait started, stop */
	rview *view;        /* owned; NULL until the first view */
	fwd *waiting;
	await *awaits; /* gw_router_await, under mu */
	bool stop;
	/* FENCED (docs/design/cluster.md, "The member loses the database"):
	 * the id this member had before the view without self arrived; empty
	 * otherwise. While set, calls are forwarded to the owner the view gives
	 * with that incarnation marked DEAD (the owner the peers will compute
	 * once they declare it), or fail at once, never wait. Under mu. */
	char fenced_id[512];
	pthread_t thread;
	bool thread_started;
	atomic_uint_fast64_t forwarded, refused, waited, local;
};

static int64_t now_ms(void)
{
	return spawn_now_ns() / 1000000;
}

/* ---- views ---------------------------------------------------------------- */

static void rview_free(rview *rv)
{
	if (!rv)
		return;
	for (size_t i = 0; i < rv->nstrs; i++)
		free(rv->strs[i]);
	free(rv->strs);
	if (rv->ms)
		for (size_t i = 0; i < rv->v.n; i++)
			free((void *)rv->ms[i].served);
	free(rv->ms);
	free(rv);
}

static char *keep(rview *rv, const char *s)
{
	char *c = strdup(s ? s : "");
	if (c)
		rv->strs[rv->nstrs++] = c;
	return c;
}

static rview *rview_copy(const gw_view *v)
{
	rview *rv = calloc(1, sizeof *rv);
	if (!rv)
		return NULL;
	size_t total = 0;
	for (size_t i = 0; i < v->n; i++)
		total += 2 + v->members[i].n_served;
	rv->v.version = v->version;
	rv->v.self = v->self;
	rv->v.n = v->n;
	rv->ms = calloc(v->n ? v->n : 1, sizeof *rv->ms);
	rv->strs = calloc(total ? total : 1, sizeof *rv->strs);
	if (!rv->ms || !rv->strs)
		goto fail;
	for (size_t i = 0; i < v->n; i++) {
		const gw_member *m = &v->members[i];
		gw_member *c = &rv->ms[i];
		c->status = m->status;
		c->n_served = m->n_served;
		const char **served = calloc(m->n_served ? m->n_served : 1, sizeof *served);
		c->served = served;
		if (!served || !(c->id = keep(rv, m->id)) || !(c->address = keep(rv, m->address)))
			goto fail;
		for (size_t k = 0; k < m->n_served; k++)
			if (!(served[k] = keep(rv, m->served[k])))
				goto fail;
	}
	rv->v.members = rv->ms;
	return rv;
fail:
	rview_free(rv);
	return NULL;
}

/* ---- the owner of a request ------------------------------------------------- */

/* type_of names rq's actor type (the template of an instance, else the
 * actor's own name) in type; *here: a host of this member registered it. */
static void type_of(gw_router *r, const Spawn__InvocationRequest *rq, char *type, size_t n,
                    bool *here)
{
	const char *system = rq->system && rq->system->name ? rq->system->name : "";
	const char *name =
	    rq->actor && rq->actor->id && rq->actor->id->name ? rq->actor->id->name : "";
	const char *ref =
	    rq->register_ref && rq->register_ref[0] ? rq->register_ref
	    : rq->actor && rq->actor->id && rq->actor->id->parent && rq->actor->id->parent[0]
	        ? rq->actor->id->parent
	        : NULL;
	gw_actor_type *t = NULL;
	*here = false;
	if (!ref && gw_registry_lookup(r->o.reg, system, name, &t, NULL) == GW_OK) {
		*here = true;
		snprintf(type, n, "%s", t->name);
	} else if (!ref && gw_registry_lookup_instance(r->o.reg, system, name, &t, NULL) == GW_OK) {
		*here = true;
		snprintf(type, n, "%s", t->name);
	} else if (ref) {
		*here = gw_registry_lookup(r->o.reg, system, ref, &t, NULL) == GW_OK;
		snprintf(type, n, "%s", ref);
	} else {
		snprintf(type, n, "%s", name); /* a named actor no host here serves */
	}
	if (t)
		gw_registry_type_rele(t);
}

/* owner_locked: where rq's actor lives in r->view; *m the owner (OTHER).
 * Without self in the view it is GW_OWNER_NOVIEW, except for routing
 * (route) while FENCED: then the owner among the other members (this
 * member's old incarnation is DEAD in the router's copy of the view), or
 * GW_OWNER_NONE. A fenced member never owns anything. */
static int owner_locked(gw_router *r, const Spawn__InvocationRequest *rq, const char *type,
                        const gw_member **m, bool route)
{
	rview *rv = r->view;
	bool fenced = route && r->fenced_id[0] && rv && rv->v.self == SIZE_MAX;
	if (!rv || ((rv->v.self == SIZE_MAX || rv->v.self >= rv->v.n) && !fenced))
		return GW_OWNER_NOVIEW;
	const char *system = rq->system && rq->system->name ? rq->system->name : "";
	const char *name =
	    rq->actor && rq->actor->id && rq->actor->id->name ? rq->actor->id->name : "";
	size_t o = gw_place(&rv->v, system, type, name);
	if (o == SIZE_MAX)
		return GW_OWNER_NONE;
	*m = &rv->v.members[o];
	return o == rv->v.self ? GW_OWNER_SELF : GW_OWNER_OTHER;
}

int gw_router_owner(gw_router *r, const Spawn__InvocationRequest *rq, char *owner_id, size_t n,
                    uint64_t *version)
{
	char type[512];
	bool here;
	type_of(r, rq, type, sizeof type, &here);
	const gw_member *m = NULL;
	pthread_mutex_lock(&r->mu);
	int w = owner_locked(r, rq, type, &m, false);
	snprintf(owner_id, n, "%s", w == GW_OWNER_OTHER ? m->id : "");
	*version = r->view ? r->view->v.version : 0;
	pthread_mutex_unlock(&r->mu);
	return w;
}

void gw_router_self(gw_router *r, char *id, size_t n, uint64_t *version)
{
	pthread_mutex_lock(&r->mu);
	rview *rv = r->view;
	snprintf(id, n, "%s", rv && rv->v.self < rv->v.n ? rv->v.members[rv->v.self].id : "");
	*version = rv ? rv->v.version : 0;
	pthread_mutex_unlock(&r->mu);
}

int gw_router_owner_of(gw_router *r, const char *system, const char *name, char *owner_id, size_t n,
                       char *address, size_t an, uint64_t *version, bool *known)
{
	/* The request the router would see for a call of this actor. */
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	Spawn__Actors__Actor act = SPAWN__ACTORS__ACTOR__INIT;
	Spawn__InvocationRequest rq = SPAWN__INVOCATION_REQUEST__INIT;
	sys.name = (char *)system;
	id.name = (char *)name;
	id.system = (char *)system;
	act.id = &id;
	rq.system = &sys;
	rq.actor = &act;
	char type[512];
	type_of(r, &rq, type, sizeof type, known);
	const gw_member *m = NULL;
	pthread_mutex_lock(&r->mu);
	int w = owner_locked(r, &rq, type, &m, false);
	snprintf(owner_id, n, "%s", w == GW_OWNER_OTHER ? m->id : "");
	snprintf(address, an, "%s", w == GW_OWNER_OTHER ? m->address : "");
	*version = r->view ? r->view->v.version : 0;
	pthread_mutex_unlock(&r->mu);
	return w;
}

gw_view *gw_router_view_copy(gw_router *r)
{
	pthread_mutex_lock(&r->mu);
	rview *rv = r->view ? rview_copy(&r->view->v) : NULL;
	pthread_mutex_unlock(&r->mu);
	return rv ? &rv->v : NULL;
}

void gw_router_view_free(gw_view *v)
{
	/* v is the first member of an rview (gw_router_view_copy). */
	rview_free((rview *)(void *)v);
}

gw_err gw_router_await(gw_router *r, uint64_t version, int64_t until_ms, gw_await_fn fn, void *user)
{
	await *a = calloc(1, sizeof *a);
	if (!a)
		return GW_ENOMEM;
	a->version = version;
	a->until_ms = until_ms;
	a->fn = fn;
	a->user = user;
	pthread_mutex_lock(&r->mu);
	if (r->stop) {
		pthread_mutex_unlock(&r->mu);
		free(a);
		return GW_ESHUTDOWN;
	}
	a->next = r->awaits;
	r->awaits = a;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return GW_OK;
}

/* ---- completing ------------------------------------------------------------- */

static void unwait_locked(gw_router *r, fwd *f)
{
	if (!f->waiting)
		return;
	if (f->prev)
		f->prev->next = f->next;
	else
		r->waiting = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
	f->waiting = false;
}

/* release_locked: the router lets go of f's inv (inv->rstate cleared, so a
 * cancel from now on is the runtime's). */
static gw_inv *release_locked(gw_router *r, fwd *f)
{
	gw_inv *inv = f->inv;
	unwait_locked(r, f);
	inv->rstate = NULL;
	return inv;
}

static void fwd_free(fwd *f)
{
	f->r->o.peer_ops->rele(f->call);
	free(f);
}

/* finish completes inv (no lock held) with err and msg. */
static void finish(gw_inv *inv, gw_err err, bool not_dispatched, const char *fmt, const char *a,
                   const char *b)
{
	inv->err = err;
	inv->not_dispatched = not_dispatched;
	if (fmt)
		snprintf(inv->msg, sizeof inv->msg, fmt, a ? a : "", b ? b : "");
	inv->done(inv);
}

static const char *actor_name(const gw_inv *inv)
{
	const Spawn__InvocationRequest *rq = inv->req;
	return rq->actor && rq->actor->id && rq->actor->id->name ? rq->actor->id->name : "";
}

/* ---- deciding ---------------------------------------------------------------- */

static void forward_done(void *user, grpc_status_code code, const char *details,
                         grpc_byte_buffer *resp, const char *owner, bool not_dispatched,
                         bool peer_refused);

/* pack_forward builds the ForwardRequest of f. NULL when out of memory. */
static grpc_byte_buffer *pack_forward(gw_router *r, fwd *f, const char *self_id)
{
	gw_inv *inv = f->inv;
	Spawn__Gateway__V1__ForwardRequest fr = SPAWN__GATEWAY__V1__FORWARD_REQUEST__INIT;
	fr.request = inv->req;
	fr.hops = f->attempts;
	fr.sender_id = (char *)self_id;
	fr.view_version = f->version;
	fr.idempotency_key = inv->idem_key ? inv->idem_key : "";
	fr.depth = inv->hops;
	/* Who the entry member authorized (--access); the owner trusts it. */
	fr.principal = inv->principal ? inv->principal : "";
	(void)r;
	/* The owner answers an async request at acceptance. Only a client's
	 * async call wants that; the submitter of anything else (an effect, an
	 * outbox delivery whose answer acknowledges it, a scheduled invocation
	 * whose row goes with the answer) counts on the turn's outcome, as a
	 * local run gives it. */
	bool async = inv->req->async;
	if (!inv->accept_only)
		inv->req->async = false;
	grpc_byte_buffer *bb = NULL;
	int rc = spawn_wire_pack(&fr.base, &bb);
	inv->req->async = async;
	return rc == 0 ? bb : NULL;
}

/* decide routes f once. offered: called from route (returning false runs
 * inv in the runtime); otherwise a local decision calls
 * gw_runtime_invoke_local. Returns whether the router keeps (or finished)
 * the call. No lock held. */
static bool decide(gw_router *r, fwd *f, bool offered)
{
	gw_inv *inv = f->inv;
	f->refused = false; /* set again by the next refusal */
	char type[512];
	bool here;
	type_of(r, inv->req, type, sizeof type, &here);
	const gw_member *m = NULL;
	char self_id[512], address[512];
	pthread_mutex_lock(&r->mu);
	if (inv->route_cancelled) {
		release_locked(r, f);
		pthread_mutex_unlock(&r->mu);
		fwd_free(f);
		finish(inv, GW_ECANCELLED, false, "the caller cancelled the call to actor %s%s",
		       actor_name(inv), "");
		return true;
	}
	if (r->stop) {
		release_locked(r, f);
		pthread_mutex_unlock(&r->mu);
		fwd_free(f);
		finish(inv, GW_ESHUTDOWN, true, "the gateway is shutting down%s%s", "", "");
		return true;
	}
	int w = owner_locked(r, inv->req, type, &m, true);
	f->version = r->view ? r->view->v.version : 0;
	int64_t now = now_ms();
	if (r->fenced_id[0] && w != GW_OWNER_OTHER) {
		/* FENCED, and no other member to forward to: fail at once (the
		 * member timeout would pass before this member could serve it). */
		release_locked(r, f);
		pthread_mutex_unlock(&r->mu);
		fwd_free(f);
		finish(inv, GW_EUNAVAIL, true,
		       "actor %s: this member of the cluster lost its database (fenced) and no "
		       "other member serves the actor yet; retry%s",
		       actor_name(inv), "");
		return true;
	}
	bool wait = w == GW_OWNER_NOVIEW || (w == GW_OWNER_NONE && here && !f->none);
	if (wait) {
		int64_t cap = now + (w == GW_OWNER_NONE ? r->o.none_wait_ms : r->o.wait_ms);
		f->none = w == GW_OWNER_NONE;
		f->wait_until =
		    inv->deadline_ms > 0 && inv->deadline_ms < cap ? inv->deadline_ms : cap;
		f->waiting = true;
		f->prev = NULL;
		f->next = r->waiting;
		if (r->waiting)
			r->waiting->prev = f;
		r->waiting = f;
		atomic_fetch_add(&r->waited, 1);
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
		return true;
	}
	if (w == GW_OWNER_SELF || w == GW_OWNER_NONE) {
		/* Here: this member owns it, or nobody serves the type (the
		 * runtime answers as a gateway without such a host does). */
		release_locked(r, f);
		pthread_mutex_unlock(&r->mu);
		fwd_free(f);
		atomic_fetch_add(&r->local, 1);
		if (offered)
			return false;
		if (w == GW_OWNER_SELF) {
			gw_runtime_invoke_local(r->o.rt, inv);
		} else {
			/* Nobody serves its type: this submission runs here (the
			 * answer of a gateway without the host); if the store then
			 * finds it is an instance, it is routed again. */
			inv->route_skip = true;
			gw_runtime_invoke(r->o.rt, inv);
		}
		return true;
	}
	if (f->attempts >= GW_ROUTE_HOPS) {
		release_locked(r, f);
		pthread_mutex_unlock(&r->mu);
		fwd_free(f);
		finish(
		    inv, GW_EUNAVAIL, true,
		    "actor %s: its owner could not be settled after %s attempts (members disagree "
		    "about the view); retry",
		    actor_name(inv), "4");
		return true;
	}
	snprintf(address, sizeof address, "%s", m->address);
	snprintf(f->to, sizeof f->to, "%s", m->address);
	snprintf(self_id, sizeof self_id, "%s",
	         r->fenced_id[0] ? r->fenced_id : r->view->v.members[r->view->v.self].id);
	f->attempts++;
	pthread_mutex_unlock(&r->mu);
	grpc_byte_buffer *bb = pack_forward(r, f, self_id);
	gw_peer_call *c = NULL;
	/* Started under the router's lock, and f->call set before it is
	 * released: the owner's answer (forward_done, on the peers' thread,
	 * which takes this lock first) may come at once, and it frees f.
	 * (The lock order router -> peers is the one cancel uses too.) */
	pthread_mutex_lock(&r->mu);
	gw_err err = bb ? r->o.peer_ops->start(r->o.peers, address, GW_PEER_FORWARD, bb,
	                                       inv->deadline_ms, forward_done, f, &c)
	                : GW_ENOMEM;
	if (err) {
		release_locked(r, f);
		pthread_mutex_unlock(&r->mu);
		if (bb)
			grpc_byte_buffer_destroy(bb);
		fwd_free(f);
		finish(inv, err == GW_ESHUTDOWN ? GW_ESHUTDOWN : GW_ENOMEM, true,
		       "cannot forward the call to actor %s to its owner%s", actor_name(inv), "");
		return true;
	}
	atomic_fetch_add(&r->forwarded, 1);
	f->call = c;
	/* A cancel that came while this was deciding (f->call was NULL then):
	 * cancelled here, under r->mu, while f (and its reference to c) is
	 * sure to be alive. */
	if (inv->route_cancelled)
		r->o.peer_ops->cancel(c);
	pthread_mutex_unlock(&r->mu);
	grpc_byte_buffer_destroy(bb); /* borrowed by start: gRPC holds its own reference */
	return true;
}

/* The owner's answer. Peer thread. */
static void forward_done(void *user, grpc_status_code code, const char *details,
                         grpc_byte_buffer *resp, const char *owner, bool not_dispatched,
                         bool peer_refused)
{
	fwd *f = user;
	gw_router *r = f->r;
	gw_inv *inv = f->inv;
	pthread_mutex_lock(&r->mu);
	r->o.peer_ops->rele(f->call);
	f->call = NULL;
	bool cancelled = inv->route_cancelled;
	/* Refused (not the owner in its view), or not run there: the owner was
	 * stopping (draining) or unreachable, which a newer view settles as a
	 * refusal does; the call waits or retries here rather than fail
	 * (bounded by GW_ROUTE_HOPS and its deadline). */
	bool moved = code == GRPC_STATUS_FAILED_PRECONDITION && owner;
	bool retry = moved || (code == GRPC_STATUS_UNAVAILABLE && not_dispatched);
	if (retry && !cancelled && !r->stop) {
		/* Refused: not the owner in its view. Wait for a newer view
		 * than the one this forward used, then decide again. */
		atomic_fetch_add(&r->refused, 1);
		if (r->fenced_id[0] && !moved) {
			/* FENCED: no view comes; the caller may retry elsewhere. */
			release_locked(r, f);
			pthread_mutex_unlock(&r->mu);
			fwd_free(f);
			finish(inv, GW_EUNAVAIL, true, "%s%s", details, "");
			return;
		}
		if (r->fenced_id[0]) {
			/* FENCED: the owner's view still has this member's old
			 * incarnation (until it is declared dead); fail at once
			 * rather than wait for a view this member cannot get. */
			release_locked(r, f);
			pthread_mutex_unlock(&r->mu);
			fwd_free(f);
			finish(
			    inv, GW_EUNAVAIL, true,
			    "actor %s: this member of the cluster lost its database (fenced) and "
			    "the actor's new owner has not taken it over yet; retry%s",
			    actor_name(inv), "");
			return;
		}
		/* The receiver's view may be the older one (it has not seen
		 * the view that made it the owner yet): then no newer view
		 * comes here, and the forward is made again after a delay
		 * doubling from GW_REFUSED_RETRY_MS (attempts stay bounded by
		 * GW_ROUTE_HOPS). */
		unsigned sh = f->attempts > 0 ? f->attempts - 1u : 0u;
		int64_t cap = now_ms() + ((int64_t)GW_REFUSED_RETRY_MS << (sh < 4 ? sh : 4));
		f->none = false;
		f->refused = true;
		f->wait_until =
		    inv->deadline_ms > 0 && inv->deadline_ms < cap ? inv->deadline_ms : cap;
		if (r->view && r->view->v.version > f->version) {
			pthread_mutex_unlock(&r->mu);
			decide(r, f, false); /* a newer view came meanwhile */
			return;
		}
		f->waiting = true;
		f->prev = NULL;
		f->next = r->waiting;
		if (r->waiting)
			r->waiting->prev = f;
		r->waiting = f;
		atomic_fetch_add(&r->waited, 1);
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
		return;
	}
	release_locked(r, f);
	pthread_mutex_unlock(&r->mu);
	if ((code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_CANCELLED) && !not_dispatched &&
	    !cancelled)
		GW_WARN("cluster: the forward of a call to actor %s to %s ended %s (%s): its "
		        "outcome is unknown",
		        actor_name(inv), f->to,
		        code == GRPC_STATUS_CANCELLED ? "CANCELLED" : "UNAVAILABLE", details);
	fwd_free(f);
	if (code == GRPC_STATUS_OK) {
		Spawn__InvocationResponse *ir = NULL;
		spawn_arena a;
		spawn_arena_init(&a, 0);
		if (spawn_wire_unpack(&spawn__invocation_response__descriptor, resp, &a,
		                      (ProtobufCMessage **)&ir) != 0) {
			spawn_arena_fini(&a);
			finish(inv, GW_EIO, false,
			       "the owner of actor %s answered a malformed response%s",
			       actor_name(inv), "");
			return;
		}
		inv->reply = NULL;
		if (ir->payload_case == SPAWN__INVOCATION_RESPONSE__PAYLOAD_VALUE && ir->value) {
			inv->reply = gw_blob_create(ir->value->type_url ? ir->value->type_url : "",
			                            ir->value->value.data, ir->value->value.len);
			if (!inv->reply) {
				spawn_arena_fini(&a);
				finish(inv, GW_ENOMEM, false, "out of memory%s%s", "", "");
				return;
			}
		}
		spawn_arena_fini(&a);
		finish(inv, GW_OK, false, NULL, NULL, NULL);
		return;
	}
	if (cancelled && code == GRPC_STATUS_CANCELLED) {
		finish(inv, GW_ECANCELLED, false, "the caller cancelled the call to actor %s%s",
		       actor_name(inv), "");
		return;
	}
	if (peer_refused) {
		/* The owner refused this member's credential (not a peer of its
		 * policy): a fault of the cluster's set-up, not of the caller's
		 * rights, so never UNAUTHENTICATED or PERMISSION_DENIED to the
		 * caller (docs/security.md). The call never ran there. */
		GW_WARN("cluster: the owner of actor %s refused this member as a peer: %s",
		        actor_name(inv), details);
		finish(inv, GW_EUNAVAIL, true,
		       "the owner of actor %s refused this member as a peer of the cluster (%s)",
		       actor_name(inv), details);
		return;
	}
	/* The owner's error, as the owner gave it: a code the error table
	 * maps back keeps its meaning here (an effect's retry, an outbox
	 * acknowledgement); others travel as a host's code would. */
	gw_err err;
	switch (code) {
	case GRPC_STATUS_INVALID_ARGUMENT:
		err = GW_EINVAL;
		break;
	case GRPC_STATUS_NOT_FOUND:
		err = GW_ENOTFOUND;
		break;
	case GRPC_STATUS_ABORTED:
		err = GW_ECONFLICT;
		break;
	case GRPC_STATUS_UNAVAILABLE:
		err = GW_EUNAVAIL;
		break;
	case GRPC_STATUS_RESOURCE_EXHAUSTED:
		err = GW_EFULL;
		break;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		err = GW_ETIMEDOUT;
		break;
	case GRPC_STATUS_CANCELLED:
		err = GW_ECANCELLED;
		break;
	case GRPC_STATUS_UNAUTHENTICATED:
		err = GW_EUNAUTH;
		break;
	case GRPC_STATUS_PERMISSION_DENIED:
		err = GW_EDENIED;
		break;
	default:
		err = GW_EHOST;
		inv->host_code = (int)code;
		inv->host_message = true;
		break;
	}
	finish(inv, err, err == GW_EUNAVAIL && not_dispatched, "%s%s", details, "");
}

/* ---- the runtime's ops ---------------------------------------------------------- */

static bool route(void *vr, gw_inv *inv)
{
	gw_router *r = vr;
	fwd *f = calloc(1, sizeof *f);
	if (!f) {
		finish(inv, GW_ENOMEM, true, "out of memory routing the call to actor %s%s",
		       actor_name(inv), "");
		return true;
	}
	f->r = r;
	f->inv = inv;
	pthread_mutex_lock(&r->mu);
	inv->rstate = f;
	pthread_mutex_unlock(&r->mu);
	return decide(r, f, true);
}

static bool cancel(void *vr, gw_inv *inv)
{
	gw_router *r = vr;
	pthread_mutex_lock(&r->mu);
	inv->route_cancelled = true;
	fwd *f = inv->rstate;
	if (!f) {
		pthread_mutex_unlock(&r->mu);
		return false;
	}
	if (f->waiting) {
		release_locked(r, f);
		pthread_mutex_unlock(&r->mu);
		fwd_free(f);
		finish(inv, GW_ECANCELLED, false, "the caller cancelled the call to actor %s%s",
		       actor_name(inv), "");
		return true;
	}
	/* Forwarded (cancelling the call at the owner: its done follows with
	 * CANCELLED), or being decided (decide sees route_cancelled). */
	if (f->call)
		r->o.peer_ops->cancel(f->call);
	pthread_mutex_unlock(&r->mu);
	return true;
}

/* owns: whether this member owns rq's actor now (recovery of an outbox
 * after a crash is its owner's only: runtime.h, gw_router_ops.owns). */
static int owns(void *vr, const Spawn__InvocationRequest *rq, char *owner_id, size_t n)
{
	gw_router *r = vr;
	char type[512];
	bool here;
	type_of(r, rq, type, sizeof type, &here);
	const gw_member *m = NULL;
	pthread_mutex_lock(&r->mu);
	int w = r->stop ? GW_OWNER_NOVIEW : owner_locked(r, rq, type, &m, false);
	snprintf(owner_id, n, "%s", w == GW_OWNER_OTHER ? m->id : "");
	pthread_mutex_unlock(&r->mu);
	switch (w) {
	case GW_OWNER_SELF:
		return GW_OWNS_YES;
	case GW_OWNER_OTHER:
		return GW_OWNS_NO;
	case GW_OWNER_NONE:
		/* Nobody serves its type: when a host here registered it, the
		 * view has not caught up (wait); else the runtime answers as a
		 * gateway without the host (and looks an instance up in the
		 * store, after which this is asked again with its template). */
		return here ? GW_OWNS_WAIT : GW_OWNS_YES;
	default:
		return GW_OWNS_WAIT;
	}
}

/* sub_field: the next GW_SUB_MARK-separated field of *p (in a copy). */
static char *sub_field(char **p)
{
	char *f = *p, *e = f ? strchr(f, GW_SUB_MARK) : NULL;
	if (e) {
		*e = 0;
		*p = e + 1;
	} else {
		*p = NULL;
	}
	return f;
}

static size_t subscribers(void *vr, const char *system, const char *topic,
                          void (*fn)(void *user, const char *actor, const char *action), void *user)
{
	gw_router *r = vr;
	size_t found = 0;
	char line[4 * 1024];
	pthread_mutex_lock(&r->mu);
	rview *rv = r->view;
	for (size_t i = 0; rv && i < rv->v.n; i++) {
		const gw_member *m = &rv->v.members[i];
		if (i == rv->v.self || m->status != GW_MEMBER_ACTIVE)
			continue; /* this member's own come from its registry */
		for (size_t k = 0; k < m->n_served; k++) {
			const char *s = m->served[k];
			if (s[0] != GW_SUB_MARK || strlen(s) >= sizeof line)
				continue;
			memcpy(line, s + 1, strlen(s));
			char *p = line;
			char *sys = sub_field(&p), *actor = sub_field(&p), *top = sub_field(&p),
			     *action = sub_field(&p);
			if (!sys || !actor || !top || !action || p || !actor[0] || !action[0] ||
			    strcmp(sys, system) || strcmp(top, topic))
				continue;
			fn(user, actor, action);
			found++;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return found;
}

const gw_router_ops gw_router_ops_v1 = {
    .version = GW_ROUTER_OPS_VERSION,
    .route = route,
    .cancel = cancel,
    .owns = owns,
    .subscribers = subscribers,
};

/* ---- the thread: waits ------------------------------------------------------------ */

static void *router_main(void *arg)
{
	gw_router *r = arg;
	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		int64_t now = now_ms(), next = now + 1000;
		fwd *ready = NULL;
		uint64_t version = r->view ? r->view->v.version : 0;
		await *fire = NULL;
		for (await **pa = &r->awaits; *pa;) {
			await *a = *pa;
			if (version > a->version || a->until_ms <= now) {
				*pa = a->next;
				a->next = fire;
				fire = a;
			} else {
				if (a->until_ms < next)
					next = a->until_ms;
				pa = &a->next;
			}
		}
		if (fire) {
			pthread_mutex_unlock(&r->mu);
			while (fire) {
				await *a = fire;
				fire = a->next;
				a->fn(a->user, version > a->version);
				free(a);
			}
			pthread_mutex_lock(&r->mu);
			continue;
		}
		for (fwd *f = r->waiting, *n; f; f = n) {
			n = f->next;
			bool newer = version > f->version;
			if (newer || f->wait_until <= now) {
				unwait_locked(r, f);
				f->lapsed = !newer;
				f->next = ready;
				ready = f;
			} else if (f->wait_until < next) {
				next = f->wait_until;
			}
		}
		if (ready) {
			pthread_mutex_unlock(&r->mu);
			while (ready) {
				fwd *f = ready;
				ready = f->next;
				f->next = NULL;
				gw_inv *inv = f->inv;
				bool expired = inv->deadline_ms > 0 && inv->deadline_ms <= now_ms();
				bool retry = f->refused;
				if (expired || (f->lapsed && !f->none && !retry)) {
					/* The deadline passed, or no newer view came within
					 * the cap: never sent anywhere. */
					pthread_mutex_lock(&r->mu);
					release_locked(r, f);
					pthread_mutex_unlock(&r->mu);
					fwd_free(f);
					if (expired)
						finish(inv, GW_ETIMEDOUT, false,
						       "deadline exceeded waiting for the owner of "
						       "actor %s%s",
						       actor_name(inv), "");
					else
						finish(inv, GW_EUNAVAIL, true,
						       "no owner for actor %s in the cluster's "
						       "view yet; "
						       "retry%s",
						       actor_name(inv), "");
					continue;
				}
				decide(r, f, false);
			}
			pthread_mutex_lock(&r->mu);
			continue;
		}
		gw_cond_wait_ms(&r->cv, &r->mu, next - now);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static const gw_router_peer_ops real_peers = {
    .start = gw_peer_call_start, .cancel = gw_peer_call_cancel, .rele = gw_peer_call_rele};

gw_err gw_router_create(gw_router **out, const gw_router_opts *o)
{
	gw_router *r = calloc(1, sizeof *r);
	if (!r)
		return GW_ENOMEM;
	r->o = *o;
	if (!r->o.peer_ops)
		r->o.peer_ops = &real_peers;
	if (r->o.wait_ms <= 0)
		r->o.wait_ms = 10000;
	if (r->o.none_wait_ms <= 0)
		r->o.none_wait_ms = 2000;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (pthread_create(&r->thread, NULL, router_main, r)) {
		gw_router_destroy(r);
		return GW_ENOMEM;
	}
	r->thread_started = true;
	*out = r;
	return GW_OK;
}

/* mine: whether this member owns (system, type, name) in the current view
 * (the runtime's gw_mine_fn; called under a shard lock, takes r->mu: the
 * router never takes a shard lock while it holds r->mu). An actor no
 * member serves, or without a view, stays. */
static bool mine(void *user, const char *system, const char *type, const char *name)
{
	gw_router *r = user;
	pthread_mutex_lock(&r->mu);
	bool m = true;
	rview *rv = r->view;
	if (rv) {
		size_t o = gw_place(&rv->v, system, type, name);
		m = o == SIZE_MAX || o == rv->v.self;
	}
	pthread_mutex_unlock(&r->mu);
	return m;
}

/* lost_owners: whether going from view old to nw may give this member
 * actors whose outbox a crash left undelivered: nw has this member and old
 * did not (the first view, or the first after fencing), this member became
 * ACTIVE, or an ACTIVE member of old is gone from nw or no longer ACTIVE
 * there (it crashed or was declared dead; a LEAVING member drains its
 * actors itself). */
static bool lost_owners(const rview *old, const rview *nw)
{
	if (nw->v.self == SIZE_MAX || nw->v.self >= nw->v.n)
		return false;
	if (!old || old->v.self == SIZE_MAX || old->v.self >= old->v.n)
		return true;
	/* This member just became ACTIVE (it joined): only now does placement
	 * give it actors; a pass while JOINING left them all to others. */
	if (old->v.members[old->v.self].status != GW_MEMBER_ACTIVE &&
	    nw->v.members[nw->v.self].status == GW_MEMBER_ACTIVE)
		return true;
	for (size_t i = 0; i < old->v.n; i++) {
		const gw_member *o = &old->v.members[i];
		if (o->status != GW_MEMBER_ACTIVE)
			continue;
		bool active = false;
		for (size_t k = 0; k < nw->v.n && !active; k++)
			active = !strcmp(nw->v.members[k].id, o->id) &&
			         (nw->v.members[k].status == GW_MEMBER_ACTIVE ||
			          nw->v.members[k].status == GW_MEMBER_LEAVING);
		if (!active)
			return true;
	}
	return false;
}

void gw_router_on_view(void *user, gw_view *v)
{
	gw_router *r = user;
	rview *rv = rview_copy(v);
	if (!rv) {
		GW_ERROR("out of memory copying view %llu; the previous view stays",
		         (unsigned long long)v->version);
		return;
	}
	pthread_mutex_lock(&r->mu);
	if (r->view && r->view->v.version >= rv->v.version) {
		pthread_mutex_unlock(&r->mu);
		rview_free(rv);
		return;
	}
	rview *old = r->view;
	bool fenced = false;
	if (rv->v.self == SIZE_MAX && old && (old->v.self < old->v.n || r->fenced_id[0])) {
		/* FENCED (the membership's view without self after one with
		 * it): remember the incarnation that fenced, and mark it DEAD in
		 * this copy, as the peers will once they declare it. */
		if (!r->fenced_id[0])
			snprintf(r->fenced_id, sizeof r->fenced_id, "%s",
			         old->v.members[old->v.self].id);
		for (size_t i = 0; i < rv->v.n; i++)
			if (!strcmp(rv->ms[i].id, r->fenced_id))
				rv->ms[i].status = GW_MEMBER_DEAD;
		fenced = true;
	} else if (rv->v.self < rv->v.n) {
		r->fenced_id[0] = '\0'; /* a member again (rejoined) */
	}
	r->view = rv;
	bool recover = lost_owners(old, rv);
	pthread_cond_signal(&r->cv); /* waiting calls are routed again */
	pthread_mutex_unlock(&r->mu);
	rview_free(old);
	/* Handoff: the actors this view gives to other members leave. */
	size_t n = gw_runtime_rebalance(r->o.rt, mine, r);
	if (n)
		GW_INFO("view %llu: %zu active actors handed off to their new owners",
		        (unsigned long long)v->version, n);
	if (fenced) {
		/* Callers waiting for a save the lost database may never answer
		 * are answered now (their outcome is unknown): fail fast. */
		size_t k = gw_runtime_fence_waiters(r->o.rt);
		if (k)
			GW_WARN(
			    "view %llu: fenced: %zu calls waiting for a save answered UNAVAILABLE "
			    "(outcome unknown)",
			    (unsigned long long)v->version, k);
	}
	if (recover) {
		/* Outboxes a crash left undelivered: each actor's owner (this
		 * member for the ones it owns now) activates it; the runtime asks
		 * owns() per actor. */
		GW_INFO("view %llu: effects recovery for the actors this member owns now",
		        (unsigned long long)v->version);
		if (gw_runtime_recover_effects(r->o.rt) != GW_OK)
			GW_ERROR("view %llu: out of memory starting the effects recovery",
			         (unsigned long long)v->version);
	}
}

void gw_router_get_stats(gw_router *r, gw_router_stats *out)
{
	out->forwarded = atomic_load(&r->forwarded);
	out->refused = atomic_load(&r->refused);
	out->waited = atomic_load(&r->waited);
	out->local = atomic_load(&r->local);
}

void gw_router_stop(gw_router *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	fwd *list = r->waiting;
	r->waiting = NULL;
	for (fwd *f = list; f; f = f->next) {
		f->waiting = false;
		f->inv->rstate = NULL;
	}
	for (fwd *f = list; f; f = f->next)
		f->prev = NULL;
	await *awaits = r->awaits;
	r->awaits = NULL;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	while (awaits) {
		await *a = awaits;
		awaits = a->next;
		a->fn(a->user, false);
		free(a);
	}
	while (list) {
		fwd *f = list;
		list = f->next;
		gw_inv *inv = f->inv;
		fwd_free(f);
		finish(inv, GW_ESHUTDOWN, true, "the gateway is shutting down%s%s", "", "");
	}
	if (r->thread_started) {
		pthread_join(r->thread, NULL);
		r->thread_started = false;
	}
}

void gw_router_destroy(gw_router *r)
{
	if (!r)
		return;
	gw_router_stop(r);
	rview_free(r->view);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}
