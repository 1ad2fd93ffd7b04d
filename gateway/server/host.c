/* host.c - one actor host connection: the HostGateway.Connect stream.
 *
 * Host connection lifecycle:
 *
 *   ACCEPTING --- stream opened ------------> REGISTERING  [waiting for registration]
 *   REGISTERING - valid registration -------> ACTIVE       [bound in the registry]
 *   ACTIVE ------ registration (again) -----> ACTIVE       [bindings replaced]
 *   ACTIVE ------ result failing the checks -> ACTIVE       [ingress.c: that turn fails
 *                                                          INVALID_ARGUMENT, state unchanged]
 *   ACTIVE ------ cross-system effect the ---> ACTIVE       [that turn fails PERMISSION_DENIED,
 *                 principal may not invoke                 state unchanged]
 *   ACCEPTING --- no valid credential -------> CLOSING      [UNAUTHENTICATED; with --access]
 *   REGISTERING - system its principal may --> CLOSING      [PERMISSION_DENIED naming it]
 *                 not serve
 *   ACTIVE ------ policy reloaded, principal -> CLOSING     [PERMISSION_DENIED;
 *                 may no longer serve it                   gw_server_access_reloaded]
 *   any --------- stream ends / bad message -> CLOSING     [unbound; invocations in
 *                 or bad registration                      flight fail UNAVAILABLE]
 *   CLOSING ----- status sent, refs gone ---> (freed)
 *
 * Ops outstanding on the call: one receive (always, until CLOSING), at most
 * one send (outbound messages queue behind it), and the final status.
 * Each holds a reference; so do registry bindings and dispatched
 * invocations. The last gw_host_rele frees the connection.
 *
 * Request ids: the gateway numbers tasks 1, 2, 3... per stream. A result
 * for an id that was issued but is no longer pending (it timed out) is a
 * late answer and is dropped; an id never issued is a protocol violation
 * and closes the stream with INVALID_ARGUMENT.
 *
 * A task's life on the connection (docs/design/call-lifecycle.md):
 *
 *   QUEUED ---- written (send batch started) --> WRITTEN
 *   QUEUED ---- cancelled (deadline, caller) --> (gone: it left the queue, never ran)
 *   WRITTEN --- result ------------------------> (gone: the runtime gets the result)
 *   WRITTEN --- cancelled (deadline, caller) --> HELD  [caller failed; the actor's turn
 *                                                       slot stays taken]
 *   HELD ------ late result / stream ends -----> (gone: gw_runtime_release frees the slot)
 *   HELD ------ grace after its deadline ------> the host is broken: CLOSING
 *
 * Bounds: the bytes of QUEUED tasks are at most srv->o.host_queue_bytes;
 * a task over it is refused (GW_EFULL). A host refused a task and not
 * finishing a single send for host_stall_ms is closed (the watchdog,
 * gwi_host_watch, checks both timers).
 *
 * Batches (docs/protocol.md, proto/batch.h): a host that asks for them
 * (request metadata spawn-link: batch) is granted them in the initial
 * metadata of the first reply, and then gets the tasks that queued while
 * the previous write was in flight as one TaskBatch (up to --host-batch
 * tasks and --host-batch-bytes); a lone queued task still goes as a plain
 * invocation. A ResultBatch is checked whole (not empty, at most
 * SPAWN_BATCH_MAX_ITEMS results, each a known request id at most once)
 * before any of its results is handled; then each result is checked and
 * handled as a single one would be.
 *
 * Lock order: shard -> host. The host lock is never held while calling the
 * runtime or the registry.
 */
#include "server_int.h"

#include <inttypes.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum { H_ACCEPTING, H_REGISTERING, H_ACTIVE, H_CLOSING };

typedef struct outmsg {
	spawn_wq_item it; /* first: the queue's links and the owned message */
	uint64_t id;      /* the task's request id; 0 for other messages */
} outmsg;

typedef struct pend {
	uint64_t id;       /* 0 = empty slot */
	gw_inv *inv;       /* borrowed from the runtime until its result; NULL when HELD */
	outmsg *queued;    /* the task while it is QUEUED, else NULL */
	gw_actor *held;    /* HELD: the actor whose turn slot this task keeps (the runtime's;
	                      handed back with gw_runtime_release) */
	int64_t expiry_ms; /* HELD: monotonic ms after which the host counts as broken */
} pend;

struct gw_host {
	gw_target target; /* first: the runtime calls host_ops through it */
	gwi_tag accept_tag, recv_tag, send_tag, status_tag;
	gw_server *srv;
	gwi_cq *q;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	pthread_mutex_t mu;
	atomic_int refs;
	atomic_int st;
	/* receive */
	grpc_byte_buffer *rbuf;
	grpc_op rop;
	/* send queue (mu): outmsgs; oq.bytes counts the queued messages (not the
	   one in flight) */
	spawn_wq oq;
	bool batch;            /* the host asked for batches and got them (fixed at accept) */
	grpc_metadata md_out;  /* the initial metadata granting batches */
	int64_t full_since_ms; /* a task was refused for the bound; 0 = not full */
	int64_t send_since_ms; /* when the send in flight started */
	size_t nheld;          /* HELD entries in pt */
	int64_t held_min_ms;   /* no HELD entry expires before this */
	/* the server's list of open connections (srv->hmu) */
	struct gw_host *lnext, *lprev;
	bool listed;
	bool sending, md_sent, status_wanted, status_started;
	grpc_op sops[2];
	grpc_byte_buffer *sbuf;
	/* status */
	grpc_status_code code;
	grpc_slice details;
	int cancelled;
	grpc_op stops[3];
	/* pending invocations (mu): open addressing, linear probing */
	pend *pt;
	size_t pcap, pcount;
	uint64_t next_id;
	char peer[96];
	char system[64]; /* written under mu (read by gw_server_access_reloaded) */
	char *principal; /* owned: the authenticated principal's name (with --access);
	                    looked up again in the current policy when needed */
	int kind;        /* GWI_CALL_HOST, or GWI_CALL_LIGHT when refused while draining */
};

/* ---- references ---------------------------------------------------------- */

static void outmsg_free(void *user, spawn_wq_item *it)
{
	(void)user;
	free(it); /* the item is the outmsg's first member */
}

void gw_host_hold(gw_host *h)
{
	atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
}

void gw_host_rele(gw_host *h)
{
	if (!h || atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
		return;
	spawn_wq_clear(&h->oq, outmsg_free, NULL);
	if (h->rbuf)
		grpc_byte_buffer_destroy(h->rbuf);
	if (h->sbuf)
		grpc_byte_buffer_destroy(h->sbuf);
	if (h->status_started)
		grpc_slice_unref(h->details);
	grpc_metadata_array_destroy(&h->md);
	if (h->call) {
		grpc_call_unref(h->call);
		gwi_calls_add(h->srv, h->kind, -1);
	}
	pthread_mutex_destroy(&h->mu);
	free(h->pt);
	free(h->principal);
	free(h);
}

bool gw_host_live(gw_host *h)
{
	return atomic_load_explicit(&h->st, memory_order_acquire) == H_ACTIVE;
}

/* ---- pending table (mu held) --------------------------------------------------- */

/* pend_home is id's first slot in a table of cap (a power of two) slots.
 * Request ids are sequential: taken as they are, the entries in flight
 * fill one contiguous run, and every pend_take walked all of it. Mixed,
 * the runs stay short at the table's load (at most one half). */
static size_t pend_home(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9e3779b97f4a7c15u) >> 32) & (cap - 1);
}

static pend *pend_find(gw_host *h, uint64_t id)
{
	if (!h->pcap || !id)
		return NULL;
	size_t j = pend_home(id, h->pcap);
	while (h->pt[j].id && h->pt[j].id != id)
		j = (j + 1) & (h->pcap - 1);
	return h->pt[j].id ? &h->pt[j] : NULL;
}

static bool pend_put(gw_host *h, uint64_t id, gw_inv *inv)
{
	if ((h->pcount + 1) * 2 > h->pcap) {
		size_t nc = h->pcap ? h->pcap * 2 : 64;
		pend *nt = calloc(nc, sizeof *nt);
		if (!nt)
			return false;
		for (size_t i = 0; i < h->pcap; i++)
			if (h->pt[i].id) {
				size_t j = pend_home(h->pt[i].id, nc);
				while (nt[j].id)
					j = (j + 1) & (nc - 1);
				nt[j] = h->pt[i];
			}
		free(h->pt);
		h->pt = nt;
		h->pcap = nc;
	}
	size_t j = pend_home(id, h->pcap);
	while (h->pt[j].id)
		j = (j + 1) & (h->pcap - 1);
	h->pt[j] = (pend){.id = id, .inv = inv};
	h->pcount++;
	return true;
}

/* pend_take removes entry id (a QUEUED task leaves the send queue too) and
 * returns it; .id == 0 when there was none. */
static pend pend_take(gw_host *h, uint64_t id)
{
	pend *p = pend_find(h, id);
	if (!p)
		return (pend){0};
	pend out = *p;
	if (out.queued) {
		spawn_wq_unlink(&h->oq, &out.queued->it);
		grpc_byte_buffer_destroy(out.queued->it.bb);
		free(out.queued);
		out.queued = NULL;
	}
	if (out.held)
		h->nheld--;
	size_t j = (size_t)(p - h->pt);
	h->pt[j].id = 0;
	h->pcount--;
	/* Re-insert the rest of the probe run so lookups stay correct. */
	for (size_t k = (j + 1) & (h->pcap - 1); h->pt[k].id; k = (k + 1) & (h->pcap - 1)) {
		pend e = h->pt[k];
		h->pt[k].id = 0;
		size_t m = pend_home(e.id, h->pcap);
		while (h->pt[m].id)
			m = (m + 1) & (h->pcap - 1);
		h->pt[m] = e;
	}
	return out;
}

/* ---- sending ------------------------------------------------------------------ */

static void start_status_locked(gw_host *h);

/* taken_locked: spawn_wq_next took m's message for writing. */
static void taken_locked(void *user, spawn_wq_item *it)
{
	gw_host *h = user;
	outmsg *m = (outmsg *)it;
	if (m->id) {
		pend *p = pend_find(h, m->id);
		if (p)
			p->queued = NULL; /* WRITTEN from now on */
	}
	free(m);
}

/* start_send_locked starts the next queued message (or batch) if none is
 * in flight. */
static void start_send_locked(gw_host *h)
{
	if (h->sending)
		return;
	size_t k;
	h->sbuf = spawn_wq_next(&h->oq, taken_locked, h, &k);
	if (!h->sbuf) {
		if (h->status_wanted && !h->status_started)
			start_status_locked(h);
		return;
	}
	h->send_since_ms = gwi_host_now_ms();
	size_t n = 0;
	memset(h->sops, 0, sizeof h->sops);
	if (!h->md_sent) {
		h->sops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		if (h->batch) {
			h->sops[n].data.send_initial_metadata.count = 1;
			h->sops[n].data.send_initial_metadata.metadata = &h->md_out;
		}
		n++;
		h->md_sent = true;
	}
	h->sops[n].op = GRPC_OP_SEND_MESSAGE;
	h->sops[n++].data.send_message.send_message = h->sbuf;
	h->sending = true;
	gw_host_hold(h);
	if (grpc_call_start_batch(h->call, h->sops, n, &h->send_tag, NULL) != GRPC_CALL_OK) {
		GW_ERROR("host %s: start_batch(send) failed", h->peer);
		h->sending = false;
		grpc_byte_buffer_destroy(h->sbuf);
		h->sbuf = NULL;
		atomic_fetch_sub(&h->refs, 1); /* cannot be the last: the caller holds one */
	}
}

/* enqueue_locked queues bb (owned) as the message of task id (0: not a
 * task; else its pending entry exists). */
static bool enqueue_locked(gw_host *h, grpc_byte_buffer *bb, uint64_t id)
{
	outmsg *m = malloc(sizeof *m);
	if (!m) {
		grpc_byte_buffer_destroy(bb);
		return false;
	}
	m->it.bb = bb;
	m->it.batchable = id != 0;
	m->id = id;
	spawn_wq_push(&h->oq, &m->it);
	if (id) {
		pend *p = pend_find(h, id);
		if (p)
			p->queued = m;
	}
	start_send_locked(h);
	return true;
}

static void send_tag(gwi_tag *t, bool ok)
{
	gw_host *h = (gw_host *)((char *)t - offsetof(gw_host, send_tag));
	pthread_mutex_lock(&h->mu);
	h->sending = false;
	grpc_byte_buffer_destroy(h->sbuf);
	h->sbuf = NULL;
	h->full_since_ms = 0; /* the host reads: slow maybe, not stalled */
	if (ok)
		start_send_locked(h);
	else if (h->status_wanted && !h->status_started)
		start_status_locked(h);
	pthread_mutex_unlock(&h->mu);
	/* A failed send means the stream is broken; the pending receive fails
	 * too and closes the connection. */
	gw_host_rele(h);
}

static gw_err host_send(gw_host *h, gw_inv *inv, gw_task_build_fn build)
{
	pthread_mutex_lock(&h->mu);
	if (atomic_load(&h->st) != H_ACTIVE) {
		pthread_mutex_unlock(&h->mu);
		return GW_EUNAVAIL;
	}
	size_t bound = h->srv->o.host_queue_bytes;
	if (h->oq.bytes >= bound) {
		if (!h->full_since_ms)
			h->full_since_ms = gwi_host_now_ms();
		pthread_mutex_unlock(&h->mu);
		return GW_EFULL;
	}
	uint64_t id = ++h->next_id;
	grpc_byte_buffer *bb = build(inv, id);
	size_t len = bb ? grpc_byte_buffer_length(bb) : 0;
	if (bb && len > (size_t)h->srv->o.max_message_bytes) {
		/* gRPC would fail the send and with it the whole stream. */
		grpc_byte_buffer_destroy(bb);
		pthread_mutex_unlock(&h->mu);
		return GW_ETOOBIG;
	}
	if (bb && h->oq.bytes && h->oq.bytes + len > bound) {
		/* One task alone may exceed the bound (max_message_bytes caps it). */
		grpc_byte_buffer_destroy(bb);
		if (!h->full_since_ms)
			h->full_since_ms = gwi_host_now_ms();
		pthread_mutex_unlock(&h->mu);
		return GW_EFULL;
	}
	if (!bb || !pend_put(h, id, inv)) {
		if (bb)
			grpc_byte_buffer_destroy(bb);
		pthread_mutex_unlock(&h->mu);
		return GW_ENOMEM;
	}
	inv->req_id = id;
	if (!enqueue_locked(h, bb, id)) {
		pend_take(h, id);
		pthread_mutex_unlock(&h->mu);
		return GW_ENOMEM;
	}
	pthread_mutex_unlock(&h->mu);
	return GW_OK;
}

static int host_cancel(gw_host *h, uint64_t req_id, gw_actor *hold, int64_t expiry_ms)
{
	pthread_mutex_lock(&h->mu);
	pend *p = pend_find(h, req_id);
	int r = GW_CANCEL_GONE;
	if (p && p->inv && p->queued) {
		pend_take(h, req_id); /* never written: it leaves the queue */
		r = GW_CANCEL_UNSENT;
	} else if (p && p->inv) {
		/* Written: the host may be running it. Its slot stays taken. */
		p->inv = NULL;
		p->held = hold;
		p->expiry_ms = expiry_ms;
		if (!h->nheld++ || expiry_ms < h->held_min_ms)
			h->held_min_ms = expiry_ms;
		r = GW_CANCEL_HELD;
	}
	pthread_mutex_unlock(&h->mu);
	return r;
}

/* The runtime's view of a host connection (STYLE §10). */
static const gw_target_ops host_ops = {
    .version = GW_TARGET_OPS_VERSION,
    .send = host_send,
    .cancel = host_cancel,
    .hold = gw_host_hold,
    .rele = gw_host_rele,
    .live = gw_host_live,
};

/* ---- closing ------------------------------------------------------------------- */

static void status_tag(gwi_tag *t, bool ok)
{
	gw_host *h = (gw_host *)((char *)t - offsetof(gw_host, status_tag));
	gw_host_rele(h);
}

static void start_status_locked(gw_host *h)
{
	h->status_started = true;
	size_t n = 0;
	memset(h->stops, 0, sizeof h->stops);
	if (!h->md_sent) {
		h->stops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		h->md_sent = true;
	}
	h->stops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	h->stops[n].data.send_status_from_server.status = h->code;
	h->stops[n++].data.send_status_from_server.status_details = &h->details;
	h->stops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	h->stops[n++].data.recv_close_on_server.cancelled = &h->cancelled;
	gw_host_hold(h);
	if (grpc_call_start_batch(h->call, h->stops, n, &h->status_tag, NULL) != GRPC_CALL_OK)
		atomic_fetch_sub(&h->refs, 1);
}

/* host_close ends the connection: no more work goes to it, invocations
 * in flight on it fail with UNAVAILABLE and leave their actors' state as
 * it was. Safe to call more than once. */
static void host_close(gw_host *h, grpc_status_code code, const char *why)
{
	gw_server *srv = h->srv;
	pthread_mutex_lock(&srv->hmu);
	if (h->listed) {
		if (h->lprev)
			h->lprev->lnext = h->lnext;
		else
			srv->hosts = h->lnext;
		if (h->lnext)
			h->lnext->lprev = h->lprev;
		h->listed = false;
	}
	pthread_mutex_unlock(&srv->hmu);
	pthread_mutex_lock(&h->mu);
	int prev = atomic_exchange(&h->st, H_CLOSING);
	if (prev == H_CLOSING) {
		pthread_mutex_unlock(&h->mu);
		return;
	}
	pend *pt = h->pt;
	size_t pcap = h->pcap;
	h->pt = NULL;
	h->pcap = h->pcount = h->nheld = 0;
	h->code = code;
	h->details = grpc_slice_from_copied_string(why ? why : "");
	h->status_wanted = true;
	/* Tasks not yet sent belong to invocations failed below: drop them. */
	spawn_wq_clear(&h->oq, outmsg_free, NULL);
	if (!h->sending)
		start_status_locked(h);
	pthread_mutex_unlock(&h->mu);
	/* REGISTERING too: a registration may be bound while its reply is
	 * still being queued. */
	if (prev == H_ACTIVE || prev == H_REGISTERING)
		gw_registry_unbind_host(h->srv->reg, h);
	/* Its contracts stay served (KEPT) until a set replaces them. */
	gw_contracts_release(h->srv->o.contracts, h);
	GW_INFO("host %s (%s) disconnected%s%s", h->peer, h->system[0] ? h->system : "-",
	        why && why[0] ? ": " : "", why ? why : "");
	char msg[160];
	snprintf(msg, sizeof msg, "the actor host %s went away during the invocation", h->peer);
	for (size_t i = 0; i < pcap; i++)
		if (pt[i].id && pt[i].inv)
			gw_runtime_abandon(h->srv->rt, pt[i].inv, GW_EUNAVAIL, msg);
		else if (pt[i].id && pt[i].held)
			gw_runtime_release(h->srv->rt, pt[i].held); /* it can run no longer */
	free(pt);
}

/* ---- receiving ------------------------------------------------------------------- */

static void start_recv(gw_host *h)
{
	memset(&h->rop, 0, sizeof h->rop);
	h->rop.op = GRPC_OP_RECV_MESSAGE;
	h->rop.data.recv_message.recv_message = &h->rbuf;
	gw_host_hold(h);
	if (grpc_call_start_batch(h->call, &h->rop, 1, &h->recv_tag, NULL) != GRPC_CALL_OK) {
		atomic_fetch_sub(&h->refs, 1);
		host_close(h, GRPC_STATUS_INTERNAL, "cannot receive");
	}
}

static void send_registration_reply(gw_host *h)
{
	Spawn__RequestStatus status = SPAWN__REQUEST_STATUS__INIT;
	status.status = SPAWN__STATUS__OK;
	Spawn__ProxyInfo pi = SPAWN__PROXY_INFO__INIT;
	pi.protocol_major_version = 1;
	pi.protocol_minor_version = 0;
	pi.proxy_name = "spawn-gateway-c";
	pi.proxy_version = "0.1.0";
	Spawn__RegistrationResponse rr = SPAWN__REGISTRATION_RESPONSE__INIT;
	rr.status = &status;
	rr.proxy_info = &pi;
	Spawn__Gateway__V1__GatewayMessage gm = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__INIT;
	gm.msg_case = SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_REGISTRATION;
	gm.registration = &rr;
	grpc_byte_buffer *bb;
	if (spawn_wire_pack(&gm.base, &bb)) {
		host_close(h, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	pthread_mutex_lock(&h->mu);
	enqueue_locked(h, bb, 0);
	/* Only now may tasks be queued: the reply goes out first (the order
	 * gateway.proto promises). Dispatch checks the state under this lock. */
	int expect = H_REGISTERING;
	atomic_compare_exchange_strong(&h->st, &expect, H_ACTIVE);
	pthread_mutex_unlock(&h->mu);
}

/* cross_system_allowed checks the side effects of a result (res,
 * borrowed) of a turn of inv's system S: each that targets another system T
 * needs the host's principal to be allowed to invoke T's actor and action
 * (docs/security.md, "Cross-system rule"). Pipes, forwards and broadcasts
 * stay inside S by the protocol (workflow.h), so only effects can cross.
 * Returns true, or false with why naming the first refused effect. */
static bool cross_system_allowed(gw_host *h, const gw_inv *inv,
                                 const Spawn__Gateway__V1__InvocationResult *res, char *why,
                                 size_t n)
{
	const Spawn__Workflow *w =
	    res->outcome_case == SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE &&
	            res->response
	        ? res->response->workflow
	        : NULL;
	if (!w || !w->n_effects)
		return true;
	const char *own =
	    inv->req && inv->req->system && inv->req->system->name ? inv->req->system->name : "";
	bool ok = true;
	gw_access *a = h->srv->o.access;
	const gw_policy *pol = NULL;
	const gw_principal *pr = NULL;
	for (size_t i = 0; i < w->n_effects && ok; i++) {
		const Spawn__InvocationRequest *rq = w->effects[i] ? w->effects[i]->request : NULL;
		const char *to = rq && rq->system && rq->system->name ? rq->system->name : "";
		if (!to[0] || !strcmp(to, own))
			continue; /* its own system (an empty one means its own) */
		if (!pol) {
			pol = gw_access_read(a);
			pr = h->principal ? gw_policy_by_name(pol, h->principal) : NULL;
		}
		const char *actor =
		    rq->actor && rq->actor->id && rq->actor->id->name ? rq->actor->id->name : "";
		const char *action = rq->action_name ? rq->action_name : "";
		if (!pr || !gwi_may_invoke(h->srv, pr, to, actor, rq->register_ref, action)) {
			snprintf(why, n,
			         "side effect %zu of %s/%s to %s/%s.%s refused: principal '%s' of "
			         "system '%s' may not invoke it",
			         i, own,
			         inv->req->actor && inv->req->actor->id ? inv->req->actor->id->name
			                                                : "?",
			         to, actor, action, h->principal ? h->principal : "?", own);
			ok = false;
		}
	}
	if (pol)
		gw_access_done(a);
	return ok;
}

/* handle_contracts registers a host's contracts (gateway/contracts), before
 * or after its registration (with --access: after). A set that is too big or malformed closes the
 * stream (RESOURCE_EXHAUSTED / INVALID_ARGUMENT naming the fault); a set
 * that clashes with a file or service another connected host (or
 * --descriptors) holds is refused whole and logged, and the host keeps
 * serving its actors through Invoke: a rolling upgrade of a contract must
 * not take the new hosts down while old ones run. */
static bool handle_contracts(gw_host *h, const Spawn__Gateway__V1__Contracts *ct)
{
	gw_contracts *pool = h->srv->o.contracts;
	if (!pool)
		return true;
	if (h->srv->o.access && atomic_load(&h->st) != H_ACTIVE) {
		/* With a policy, only a principal that may host gets to add
		 * services: its registration says so first. */
		host_close(h, GRPC_STATUS_FAILED_PRECONDITION,
		           "contracts refused: with --access, a host sends its contracts after its "
		           "registration");
		return false;
	}
	char why[700];
	gw_err err = gw_contracts_add(pool, h, ct->files.data, ct->files.len, why, sizeof why);
	if (err == GW_ECONFLICT) {
		GW_WARN("host %s: contracts refused, the registered ones stay: %s", h->peer, why);
		return true;
	}
	if (err) {
		char msg[800];
		snprintf(msg, sizeof msg, "contracts refused: %s", why);
		GW_WARN("host %s: %s", h->peer, msg);
		host_close(h, gw_err_status(err), msg);
		return false;
	}
	GW_INFO("host %s: contracts registered (%zu bytes)", h->peer, ct->files.len);
	return true;
}

/* handle_message processes one HostMessage. bad: NULL, or why one of its
 * strings failed the ingress checks (the message is then refused: a
 * registration closes the stream, a result fails its turn). Returns false
 * when the stream must close (the status is already decided). */
static bool handle_result(gw_host *h, Spawn__Gateway__V1__InvocationResult *res, const char *bad);

static bool handle_message(gw_host *h, Spawn__Gateway__V1__HostMessage *m, const char *bad)
{
	if (m->msg_case == SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION) {
		Spawn__RegistrationRequest *rr = m->registration;
		if (bad) {
			char why[GW_WC_PATH_MAX + 300];
			snprintf(why, sizeof why, "registration refused: %s", bad);
			host_close(h, GRPC_STATUS_INVALID_ARGUMENT, why);
			return false;
		}
		char why[512] = "registration carries no actor system";
		/* With --access, the check, the binding and h->system happen under
		 * the policy's read lock: a reload either precedes them (and the
		 * check sees the new policy) or finds h->system set
		 * (gw_server_access_reloaded). */
		gw_access *a = h->srv->o.access;
		const gw_policy *pol = a ? gw_access_read(a) : NULL;
		const gw_principal *pr =
		    pol && h->principal ? gw_policy_by_name(pol, h->principal) : NULL;
		const char *sysname =
		    rr && rr->actor_system && rr->actor_system->name ? rr->actor_system->name : "";
		gw_err err = GW_OK;
		if (a && (!pr || !gw_principal_may_host(pr, sysname))) {
			err = GW_EDENIED;
			gwi_refusal_count(h->srv, GW_REFUSAL_HOST, GRPC_STATUS_PERMISSION_DENIED);
			snprintf(why, sizeof why, "principal '%s' may not serve system '%s'",
			         h->principal ? h->principal : "?", sysname);
		} else {
			err = rr && rr->actor_system
			          ? gw_registry_register(h->srv->reg, h, rr->actor_system, why,
			                                 sizeof why)
			          : GW_EINVAL;
		}
		if (!err) {
			pthread_mutex_lock(&h->mu);
			snprintf(h->system, sizeof h->system, "%s", rr->actor_system->name);
			pthread_mutex_unlock(&h->mu);
		}
		if (a)
			gw_access_done(a);
		if (err) {
			/* The registration rules (docs/protocol.md): the host hears why. */
			GW_WARN("host %s: registration refused: %s", h->peer, why);
			host_close(h, gw_err_status(err), why);
			return false;
		}
		GW_INFO("host %s registered system '%s' (%zu actors)", h->peer, h->system,
		        rr->actor_system->registry->n_actors);
		send_registration_reply(h);
		return true;
	}
	if (m->msg_case == SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_CONTRACTS && m->contracts)
		return handle_contracts(h, m->contracts);
	if (m->msg_case != SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT || !m->result) {
		host_close(h, GRPC_STATUS_INVALID_ARGUMENT,
		           "HostMessage carries neither registration, contracts nor result");
		return false;
	}
	if (atomic_load(&h->st) != H_ACTIVE) {
		host_close(h, GRPC_STATUS_FAILED_PRECONDITION,
		           "a result arrived before the registration");
		return false;
	}
	return handle_result(h, m->result, bad);
}

/* handle_result processes one result of an ACTIVE host (alone or out of a
 * checked batch); bad as for handle_message. */
static bool handle_result(gw_host *h, Spawn__Gateway__V1__InvocationResult *res, const char *bad)
{
	uint64_t id = res->request_id;
	pthread_mutex_lock(&h->mu);
	pend p = pend_take(h, id);
	uint64_t issued = h->next_id;
	pthread_mutex_unlock(&h->mu);
	gw_inv *inv = p.inv;
	if (p.held) {
		/* A late answer to a task that timed out: dropped, and the turn it
		 * held is over. */
		GW_DEBUG("host %s: late result for request %" PRIu64 " dropped", h->peer, id);
		gw_runtime_release(h->srv->rt, p.held);
		return true;
	}
	if (!inv) {
		if (id == 0 || id > issued) {
			char why[96];
			snprintf(why, sizeof why, "unknown request id %" PRIu64, id);
			host_close(h, GRPC_STATUS_INVALID_ARGUMENT, why);
			return false;
		}
		GW_DEBUG("host %s: late result for request %" PRIu64 " dropped", h->peer, id);
		return true;
	}
	if (bad) {
		/* The turn fails, the actor's state stays as it was, and the
		 * stream stays up: nothing of this result is stored or relayed. */
		char why[GW_WC_PATH_MAX + 300];
		snprintf(why, sizeof why, "the actor host returned an invalid result: %s", bad);
		GW_WARN("host %s: request %" PRIu64 ": %s", h->peer, id, why);
		gw_runtime_abandon(h->srv->rt, inv, GW_EINVAL, why);
		return true;
	}
	if (gw_wc_strip_reserved(res))
		GW_DEBUG("host %s: request %" PRIu64
		         ": reserved metadata dropped from side effects",
		         h->peer, id);
	char why[600];
	if (h->srv->o.access && !cross_system_allowed(h, inv, res, why, sizeof why)) {
		/* As any refused effect: the turn fails and its state is not kept. */
		GW_WARN("host %s: request %" PRIu64 ": %s", h->peer, id, why);
		gw_runtime_abandon(h->srv->rt, inv, GW_EDENIED, why);
		return true;
	}
	gw_runtime_result(h->srv->rt, inv, res);
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* handle_batch processes a ResultBatch whose n results are at items[0..n)
 * (n counted, min(n, SPAWN_BATCH_MAX_ITEMS) stored). The batch is checked
 * whole first: a batch that breaks the protocol closes the stream before
 * any of its results counts. Returns false when the stream must close. */
static bool handle_batch(gw_host *h, const spawn_span *items, size_t n, spawn_arena *ar)
{
	char why[GW_WC_PATH_MAX + 300];
	if (atomic_load(&h->st) != H_ACTIVE) {
		host_close(h, GRPC_STATUS_FAILED_PRECONDITION,
		           "a result arrived before the registration");
		return false;
	}
	if (n == 0) {
		host_close(h, GRPC_STATUS_INVALID_ARGUMENT, "empty ResultBatch");
		return false;
	}
	if (n > SPAWN_BATCH_MAX_ITEMS) {
		snprintf(why, sizeof why, "ResultBatch of %zu results over the limit of %d", n,
		         SPAWN_BATCH_MAX_ITEMS);
		host_close(h, GRPC_STATUS_INVALID_ARGUMENT, why);
		return false;
	}
	Spawn__Gateway__V1__InvocationResult **res = spawn_arena_alloc(ar, n * sizeof *res);
	uint64_t *ids = spawn_arena_alloc(ar, n * sizeof *ids);
	if (!res || !ids) {
		host_close(h, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		res[i] = (Spawn__Gateway__V1__InvocationResult *)protobuf_c_message_unpack(
		    &spawn__gateway__v1__invocation_result__descriptor, &ar->pbc, items[i].len,
		    items[i].data);
		if (!res[i]) {
			snprintf(why, sizeof why,
			         "ResultBatch result %zu is not a valid InvocationResult", i);
			host_close(h, GRPC_STATUS_INVALID_ARGUMENT, why);
			return false;
		}
		ids[i] = res[i]->request_id;
	}
	pthread_mutex_lock(&h->mu);
	uint64_t issued = h->next_id;
	pthread_mutex_unlock(&h->mu);
	for (size_t i = 0; i < n; i++)
		if (ids[i] == 0 || ids[i] > issued) {
			snprintf(why, sizeof why,
			         "ResultBatch result %zu: unknown request id %" PRIu64, i, ids[i]);
			host_close(h, GRPC_STATUS_INVALID_ARGUMENT, why);
			return false;
		}
	qsort(ids, n, sizeof *ids, cmp_u64);
	for (size_t i = 1; i < n; i++)
		if (ids[i] == ids[i - 1]) {
			snprintf(why, sizeof why,
			         "ResultBatch answers request id %" PRIu64 " more than once",
			         ids[i]);
			host_close(h, GRPC_STATUS_INVALID_ARGUMENT, why);
			return false;
		}
	for (size_t i = 0; i < n; i++) {
		gw_wc_fail f;
		const char *bad = NULL;
		if (gw_wc_check(&res[i]->base, items[i].data, items[i].len, &h->srv->o.limits,
		                &f)) {
			snprintf(why, sizeof why, "%s: %s", f.path, f.why);
			bad = why;
		}
		if (!handle_result(h, res[i], bad))
			return false;
	}
	return true;
}

static void recv_tag(gwi_tag *t, bool ok)
{
	gw_host *h = (gw_host *)((char *)t - offsetof(gw_host, recv_tag));
	grpc_byte_buffer *bb = h->rbuf;
	h->rbuf = NULL;
	if (!ok || !bb) {
		/* The host closed its side, or the connection broke. */
		if (bb)
			grpc_byte_buffer_destroy(bb);
		host_close(h, GRPC_STATUS_OK, "");
		gw_host_rele(h);
		return;
	}
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	grpc_byte_buffer_reader r;
	grpc_slice whole = grpc_empty_slice();
	if (grpc_byte_buffer_reader_init(&r, bb)) {
		whole = grpc_byte_buffer_reader_readall(&r);
		grpc_byte_buffer_reader_destroy(&r);
	}
	grpc_byte_buffer_destroy(bb);
	const uint8_t *data = GRPC_SLICE_START_PTR(whole);
	size_t len = GRPC_SLICE_LENGTH(whole);
	spawn_span items[SPAWN_BATCH_MAX_ITEMS];
	size_t n = 0;
	int kind = spawn_batch_scan(data, len, items, SPAWN_BATCH_MAX_ITEMS, &n);
	bool keep = false;
	if (kind < 0) {
		host_close(
		    h, GRPC_STATUS_INVALID_ARGUMENT,
		    "malformed HostMessage (batch framing, or a batch mixed with other fields)");
	} else if (kind > 0) {
		keep = handle_batch(h, items, n, &ar);
	} else {
		ProtobufCMessage *m = NULL;
		char why[GW_WC_PATH_MAX + 200];
		gw_err bad =
		    gwi_unpack_checked_bytes(h->srv, &spawn__gateway__v1__host_message__descriptor,
		                             data, len, &ar, &m, why, sizeof why);
		if (!m)
			host_close(h, GRPC_STATUS_INVALID_ARGUMENT, "malformed HostMessage");
		else
			keep = handle_message(h, (Spawn__Gateway__V1__HostMessage *)m,
			                      bad ? why : NULL);
	}
	grpc_slice_unref(whole);
	spawn_arena_fini(&ar);
	if (keep && atomic_load(&h->st) != H_CLOSING)
		start_recv(h);
	gw_host_rele(h);
}

static void accept_tag(gwi_tag *t, bool ok)
{
	gw_host *h = (gw_host *)((char *)t - offsetof(gw_host, accept_tag));
	if (!ok) {
		h->call = NULL;
		gw_host_rele(h);
		return;
	}
	h->kind = gwi_call_admit(h->srv, GWI_CALL_HOST);
	gwi_host_request(h->srv, h->q);
	pthread_mutex_lock(&h->srv->hmu);
	h->lnext = h->srv->hosts;
	if (h->lnext)
		h->lnext->lprev = h;
	h->srv->hosts = h;
	h->listed = true;
	pthread_mutex_unlock(&h->srv->hmu);
	char *peer = grpc_call_get_peer(h->call);
	snprintf(h->peer, sizeof h->peer, "%s", peer ? peer : "?");
	gpr_free(peer);
	/* Batches: granted when the host asks and the gateway may batch. */
	for (size_t i = 0; i < h->md.count && h->srv->o.host_batch > 1; i++)
		if (grpc_slice_str_cmp(h->md.metadata[i].key, SPAWN_LINK_MD_KEY) == 0 &&
		    grpc_slice_str_cmp(h->md.metadata[i].value, SPAWN_LINK_MD_BATCH) == 0)
			h->batch = true;
	if (h->batch) {
		h->md_out.key = grpc_slice_from_static_string(SPAWN_LINK_MD_KEY);
		h->md_out.value = grpc_slice_from_static_string(SPAWN_LINK_MD_BATCH);
		spawn_wq_set_batch(&h->oq, h->srv->o.host_batch, h->srv->o.host_batch_bytes);
	}
	if (h->kind != GWI_CALL_HOST) {
		/* The gateway drains (gw_server_shutdown): no new host. */
		host_close(h, GRPC_STATUS_UNAVAILABLE, "the gateway is shutting down");
		gw_host_rele(h);
		return;
	}
	gw_access *a = h->srv->o.access;
	if (a) {
		/* Who the host is, once per stream; its rights are checked on
		 * registration against the policy current then. */
		char why[300];
		const gw_principal *pr = NULL;
		const gw_policy *pol = gw_access_read(a);
		if (gw_authn_call(pol, h->call, &h->md, &pr, why, sizeof why) == GW_OK &&
		    !(h->principal = strdup(gw_principal_name(pr))))
			snprintf(why, sizeof why, "out of memory");
		gw_access_done(a);
		if (!h->principal) {
			GW_WARN("host %s: refused: %s", h->peer, why);
			if (!pr)
				gwi_refusal_count(h->srv, GW_REFUSAL_HOST,
				                  GRPC_STATUS_UNAUTHENTICATED);
			host_close(
			    h, pr ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_UNAUTHENTICATED,
			    why);
			gw_host_rele(h);
			return;
		}
	}
	atomic_store(&h->st, H_REGISTERING);
	start_recv(h);
	gw_host_rele(h); /* the accept reference; start_recv took its own */
}

void gwi_host_request(gw_server *s, gwi_cq *q)
{
	if (atomic_load(&s->shutting_down))
		return;
	gw_host *h = calloc(1, sizeof *h);
	if (!h) {
		GW_ERROR("out of memory posting a host slot");
		return;
	}
	h->target.ops = &host_ops;
	spawn_wq_init(&h->oq, 1, 0); /* no batches until the host asks (accept_tag) */
	h->accept_tag.fn = accept_tag;
	h->recv_tag.fn = recv_tag;
	h->send_tag.fn = send_tag;
	h->status_tag.fn = status_tag;
	h->srv = s;
	h->q = q;
	pthread_mutex_init(&h->mu, NULL);
	atomic_init(&h->refs, 1);
	atomic_init(&h->st, H_ACCEPTING);
	grpc_metadata_array_init(&h->md);
	if (grpc_server_request_registered_call(s->hsrv, s->m_connect, &h->call, &h->deadline,
	                                        &h->md, NULL, q->cq, q->cq,
	                                        &h->accept_tag) != GRPC_CALL_OK) {
		h->call = NULL;
		gw_host_rele(h);
	}
}

/* ---- the watchdog ---------------------------------------------------------------- */

int64_t gwi_host_now_ms(void)
{
	return spawn_now_ns() / 1000000;
}

/* broken_locked tells why h must be closed now, or returns false. Also
 * recomputes held_min_ms when its earliest entry is gone. */
static bool broken_locked(gw_host *h, int64_t now, char *why, size_t n)
{
	const gw_server_opts *o = &h->srv->o;
	if (h->full_since_ms && h->sending && now - h->full_since_ms >= o->host_stall_ms &&
	    now - h->send_since_ms >= o->host_stall_ms) {
		snprintf(why, n,
		         "the host did not read its stream for %lld ms with %zu bytes queued "
		         "(--host-queue-bytes %zu, --host-stall %lld)",
		         (long long)(now - h->send_since_ms), h->oq.bytes, o->host_queue_bytes,
		         (long long)o->host_stall_ms);
		return true;
	}
	if (!h->nheld || h->held_min_ms > now)
		return false;
	int64_t min = INT64_MAX;
	for (size_t i = 0; i < h->pcap; i++) {
		const pend *p = &h->pt[i];
		if (!p->id || !p->held)
			continue;
		if (p->expiry_ms <= now) {
			snprintf(why, n,
			         "the host did not answer request %" PRIu64
			         " within the grace after its deadline (--host-grace)",
			         p->id);
			return true;
		}
		if (p->expiry_ms < min)
			min = p->expiry_ms;
	}
	h->held_min_ms = min;
	return false;
}

void gwi_host_watch(gw_server *s, int64_t now)
{
	for (;;) {
		gw_host *bad = NULL;
		char why[200];
		pthread_mutex_lock(&s->hmu);
		for (gw_host *h = s->hosts; h && !bad; h = h->lnext) {
			pthread_mutex_lock(&h->mu);
			if (broken_locked(h, now, why, sizeof why)) {
				bad = h;
				gw_host_hold(
				    h); /* listed hosts have a receive in flight: refs > 0 */
			}
			pthread_mutex_unlock(&h->mu);
		}
		pthread_mutex_unlock(&s->hmu);
		if (!bad)
			return;
		GW_WARN("host %s: %s; disconnecting it", bad->peer, why);
		host_close(bad, GRPC_STATUS_UNAVAILABLE, why); /* unlists it */
		/* A status would queue behind the unread messages: cancel the
		 * stream, which fails the send in flight and frees the rest. */
		grpc_call_cancel_with_status(bad->call, GRPC_STATUS_UNAVAILABLE, why, NULL);
		gw_host_rele(bad);
	}
}

/* ---- the access policy reloaded --------------------------------------------------- */

void gw_server_hosts_each(gw_server *s, gw_host_stat_fn fn, void *user)
{
	pthread_mutex_lock(&s->hmu);
	for (gw_host *h = s->hosts; h; h = h->lnext) {
		pthread_mutex_lock(&h->mu);
		char system[sizeof h->system];
		memcpy(system, h->system, sizeof system);
		size_t tasks = h->pcount, bytes = h->oq.bytes;
		pthread_mutex_unlock(&h->mu);
		fn(user, system, tasks, bytes);
	}
	pthread_mutex_unlock(&s->hmu);
}

size_t gw_server_access_reloaded(gw_server *s)
{
	gw_access *a = s->o.access;
	size_t closed = 0;
	if (!a)
		return 0;
	for (;;) {
		gw_host *bad = NULL;
		char why[400];
		pthread_mutex_lock(&s->hmu);
		const gw_policy *pol = gw_access_read(a);
		for (gw_host *h = s->hosts; h && !bad; h = h->lnext) {
			pthread_mutex_lock(&h->mu);
			if (h->system[0] && h->principal) {
				const gw_principal *pr = gw_policy_by_name(pol, h->principal);
				if (!pr || !gw_principal_may_host(pr, h->system)) {
					snprintf(why, sizeof why,
					         "access policy reloaded: principal '%s' may no "
					         "longer serve system '%s'",
					         h->principal, h->system);
					bad = h;
					gw_host_hold(h);
				}
			}
			pthread_mutex_unlock(&h->mu);
		}
		gw_access_done(a);
		pthread_mutex_unlock(&s->hmu);
		if (!bad)
			return closed;
		GW_INFO("host %s: %s; disconnecting it", bad->peer, why);
		host_close(bad, GRPC_STATUS_PERMISSION_DENIED, why); /* unlists it */
		gw_host_rele(bad);
		closed++;
	}
}

/* ---- listings (Admin.List, part spawnctl) ---- */

void gwi_host_foreach(gw_server *s, gwi_host_info_fn fn, void *user)
{
	pthread_mutex_lock(&s->hmu);
	for (gw_host *h = s->hosts; h; h = h->lnext) {
		pthread_mutex_lock(&h->mu);
		gwi_host_info hi = {
		    .system = h->system,
		    .peer = h->peer,
		    .principal = h->principal ? h->principal : "",
		    .in_flight = h->pcount,
		    .batch = h->batch,
		};
		fn(user, &hi);
		pthread_mutex_unlock(&h->mu);
	}
	pthread_mutex_unlock(&s->hmu);
}
