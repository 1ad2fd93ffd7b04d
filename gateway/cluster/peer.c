/* peer.c - calls to the other members: channels, one CQ, one thread. */
#include "peer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "log.h"
#include "wire.h"

/* A channel to one address. Lifecycle: LIVE (in chans: new calls use it)
 * -- the certificate files renewed --> RETIRED (in retired: only its calls
 * in flight use it) -- its last call ends --> destroyed. Under p->mu. */
typedef struct chan {
	char *address;
	grpc_channel *ch;
	long calls; /* calls started on it whose fn has not run */
	struct chan *next;
} chan;

struct gw_peers {
	grpc_completion_queue *cq;
	pthread_t thread;
	bool thread_started;
	grpc_channel_credentials *creds; /* under mu (renew swaps it) */
	int max_message_bytes;
	char *server_name;  /* owned; NULL = the address's host */
	grpc_slice auth;    /* under mu: "Bearer <token>" (a reference owned; every call
	                       takes its own); empty = no token */
	bool has_auth;      /* under mu */
	pthread_mutex_t mu; /* guards chans, retired, calls, closing, the pems state */
	pthread_cond_t cv;  /* calls reached 0 */
	chan *chans;        /* owned: LIVE channels */
	chan *retired;      /* owned: RETIRED channels with calls in flight */
	/* gw_peers_opts.pems and its state (the peers' thread's alone: renew):
	 * the generation of the credentials in use, when the files may be asked
	 * again (monotonic ms). creds itself is swapped under mu. */
	bool (*pems)(void *pems_user, uint64_t *gen, char **ca, char **cert, char **key);
	void (*pems_free)(char *ca, char *cert, char *key);
	void *pems_user;
	uint64_t pems_gen;
	int64_t pems_next_ms;
	bool tls;
	struct gw_peer_call *live; /* calls whose fn has not run, for destroy to cancel */
	long calls;                /* calls whose fn has not run yet */
	bool closing;              /* no new calls */
	atomic_uint_least64_t started;
};

struct gw_peer_call {
	gw_peers *p;
	struct gw_peer_call *prev, *next; /* in p->live, under p->mu */
	chan *chan;                       /* borrowed: the channel it went on (calls counted) */
	atomic_int refs;
	grpc_call *call;
	gw_peer_done_fn fn;
	void *user;
	grpc_metadata_array initial, trailing;
	grpc_metadata md; /* authorization (has_md): the value a reference owned */
	bool has_md;
	grpc_byte_buffer *resp;
	grpc_status_code status;
	grpc_slice details;
	grpc_op ops[6];
};

void gw_peer_call_rele(gw_peer_call *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	grpc_metadata_array_destroy(&c->initial);
	grpc_metadata_array_destroy(&c->trailing);
	if (c->has_md)
		grpc_slice_unref(c->md.value);
	if (c->resp)
		grpc_byte_buffer_destroy(c->resp);
	grpc_slice_unref(c->details);
	if (c->call)
		grpc_call_unref(c->call);
	free(c);
}

static char *trailer(const grpc_metadata_array *md, const char *key)
{
	for (size_t i = 0; i < md->count; i++)
		if (!grpc_slice_str_cmp(md->metadata[i].key, key))
			return grpc_slice_to_c_string(md->metadata[i].value);
	return NULL;
}

static void unlink_call(gw_peers *p, gw_peer_call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		p->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void chan_free(chan *c)
{
	if (!c)
		return;
	grpc_channel_destroy(c->ch);
	free(c->address);
	free(c);
}

/* chan_call_ended counts a call of c as ended; returns c, unlinked from
 * the retired list, when it was RETIRED and that was its last call (the
 * caller frees it outside mu). Under mu. */
static chan *chan_call_ended(gw_peers *p, chan *c)
{
	if (!c || --c->calls > 0)
		return NULL;
	for (chan **pp = &p->retired; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			return c;
		}
	return NULL;
}

static void complete(gw_peer_call *c)
{
	char *details = grpc_slice_to_c_string(c->details);
	char *owner = trailer(&c->trailing, "spawn-owner");
	char *retry = trailer(&c->trailing, "spawn-retry");
	char *refused = trailer(&c->trailing, GW_PEER_REFUSED_KEY);
	/* Not dispatched: the owner said so, or gRPC found no connection to
	 * it and never sent the call (the owner down or restarting; gRPC
	 * core's message for a pick that failed, which Spawn's test clients
	 * match too: tests/cluster/chaos.py NOT_SENT). */
	bool nd = (retry && !strcmp(retry, "not-dispatched")) ||
	          (c->status == GRPC_STATUS_UNAVAILABLE && details &&
	           !strncmp(details, GW_PEER_NOT_SENT, sizeof GW_PEER_NOT_SENT - 1));
	bool pr = refused && !strcmp(refused, GW_PEER_REFUSED) &&
	          (c->status == GRPC_STATUS_UNAUTHENTICATED ||
	           c->status == GRPC_STATUS_PERMISSION_DENIED);
	c->fn(c->user, c->status, details ? details : "",
	      c->status == GRPC_STATUS_OK ? c->resp : NULL, owner, nd, pr);
	gpr_free(details);
	gpr_free(owner);
	gpr_free(retry);
	gpr_free(refused);
	gw_peers *p = c->p;
	pthread_mutex_lock(&p->mu);
	unlink_call(p, c);
	chan *gone = chan_call_ended(p, c->chan);
	pthread_mutex_unlock(&p->mu);
	chan_free(gone);
	gw_peer_call_rele(c);
	pthread_mutex_lock(&p->mu);
	if (--p->calls == 0)
		pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* renew, on the peers' own thread (never a caller's: the files are read
 * here, outside mu): at most once a second, asks whether the certificate
 * files changed; with a newer valid set, new credentials, and every LIVE
 * channel RETIRED (one with no call in flight destroyed at once), so the
 * next calls dial new connections that present the renewed certificate.
 * pems_gen and pems_next_ms are this thread's alone. */
static void renew(gw_peers *p)
{
	int64_t now = mono_ms();
	if (!p->pems || now < p->pems_next_ms)
		return;
	p->pems_next_ms = now + 1000;
	char *ca = NULL, *cert = NULL, *key = NULL;
	uint64_t gen = p->pems_gen;
	if (!p->pems(p->pems_user, &gen, &ca, &cert, &key))
		return;
	grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
	grpc_channel_credentials *creds = grpc_ssl_credentials_create_ex(ca, &pair, NULL, NULL);
	p->pems_free(ca, cert, key);
	if (!creds) {
		GW_WARN("peer links: the renewed certificate files were refused by gRPC; the peers "
		        "keep the credentials loaded before");
		return;
	}
	p->pems_gen = gen;
	chan *idle = NULL;
	size_t moved = 0;
	pthread_mutex_lock(&p->mu);
	grpc_channel_credentials *old = p->creds;
	p->creds = creds;
	while (p->chans) {
		chan *c = p->chans;
		p->chans = c->next;
		chan **to = c->calls == 0 ? &idle : &p->retired;
		c->next = *to;
		*to = c;
		moved++;
	}
	pthread_mutex_unlock(&p->mu);
	grpc_channel_credentials_release(old); /* each channel holds its own */
	while (idle) {
		chan *n = idle->next;
		chan_free(idle);
		idle = n;
	}
	GW_INFO("peer links: certificate files renewed: the next peer calls dial new connections "
	        "with them (%zu channel%s retired)",
	        moved, moved == 1 ? "" : "s");
}

static void *peer_main(void *arg)
{
	gw_peers *p = arg;
	for (;;) {
		/* With renewable files, wake at least once a second to look. */
		gpr_timespec until = p->pems
		                         ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
		                                        gpr_time_from_millis(1000, GPR_TIMESPAN))
		                         : gpr_inf_future(GPR_CLOCK_MONOTONIC);
		grpc_event ev = grpc_completion_queue_next(p->cq, until, NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE && ev.tag)
			complete(ev.tag); /* RECV_STATUS_ON_CLIENT always completes */
		renew(p);
	}
	return NULL;
}

gw_err gw_peers_create(gw_peers **out, const gw_peers_opts *o)
{
	gw_peers *p = calloc(1, sizeof *p);
	if (!p)
		return GW_ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->max_message_bytes = o->max_message_bytes > 0 ? o->max_message_bytes : 4 << 20;
	p->auth = grpc_empty_slice();
	if (o->server_name && !(p->server_name = strdup(o->server_name))) {
		gw_peers_destroy(p);
		return GW_ENOMEM;
	}
	if (o->token) {
		size_t n = strlen(o->token);
		p->auth = grpc_slice_malloc(7 + n);
		memcpy(GRPC_SLICE_START_PTR(p->auth), "Bearer ", 7);
		memcpy(GRPC_SLICE_START_PTR(p->auth) + 7, o->token, n);
		p->has_auth = true;
	}
	if (o->ca_pem) {
		grpc_ssl_pem_key_cert_pair pair = {.private_key = o->key_pem,
		                                   .cert_chain = o->cert_pem};
		p->creds = grpc_ssl_credentials_create_ex(
		    o->ca_pem, o->cert_pem && o->key_pem ? &pair : NULL, NULL, NULL);
		if (!p->creds) {
			gw_peers_destroy(p);
			return GW_ECONFIG;
		}
		p->tls = true;
		p->pems = o->pems;
		p->pems_free = o->pems_free;
		p->pems_user = o->pems_user;
		p->pems_gen = o->pems_gen;
	} else {
		p->creds = grpc_insecure_credentials_create();
	}
	p->cq = grpc_completion_queue_create_for_next(NULL);
	if (!p->creds || !p->cq || pthread_create(&p->thread, NULL, peer_main, p)) {
		gw_peers_destroy(p);
		return GW_ENOMEM;
	}
	p->thread_started = true;
	*out = p;
	return GW_OK;
}

/* channel_for returns the LIVE channel to address, made on first use.
 * Under mu. */
static chan *channel_for(gw_peers *p, const char *address)
{
	for (chan *c = p->chans; c; c = c->next)
		if (!strcmp(c->address, address))
			return c;
	chan *c = calloc(1, sizeof *c);
	if (!c || !(c->address = strdup(address))) {
		free(c);
		return NULL;
	}
	grpc_arg args[] = {
	    {GRPC_ARG_INTEGER,
	     GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
	     {.integer = p->max_message_bytes}},
	    {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = p->max_message_bytes}},
	    /* Find a member that vanished without closing its connections. */
	    {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = 10000}},
	    {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = 5000}},
	    /* A member restarting comes back quickly: do not back off for long. */
	    {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, {.integer = 1000}},
	    /* No channelz: nothing reads it, and it counts every call. */
	    {GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_CHANNELZ, {.integer = 0}},
	    /* --peer-tls-server-name: members dialled at pod IPs present a
	     * certificate for one service name (the last arg, left out when
	     * not set). */
	    {GRPC_ARG_STRING, GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, {.string = p->server_name}},
	};
	grpc_channel_args ca = {sizeof args / sizeof args[0] - (p->server_name ? 0 : 1), args};
	c->ch = grpc_channel_create(address, p->creds, &ca);
	if (!c->ch) {
		free(c->address);
		free(c);
		return NULL;
	}
	c->next = p->chans;
	p->chans = c;
	return c;
}

gw_err gw_peer_call_start(gw_peers *p, const char *address, const char *method,
                          grpc_byte_buffer *req, int64_t deadline_ms, gw_peer_done_fn fn,
                          void *user, gw_peer_call **out)
{
	gw_peer_call *c = calloc(1, sizeof *c);
	if (!c)
		return GW_ENOMEM;
	atomic_init(&c->refs, 2); /* the caller's and the completion's */
	c->p = p;
	c->fn = fn;
	c->user = user;
	c->details = grpc_empty_slice();
	grpc_metadata_array_init(&c->initial);
	grpc_metadata_array_init(&c->trailing);
	gpr_timespec dl = gpr_inf_future(GPR_CLOCK_MONOTONIC);
	if (deadline_ms > 0) {
		/* deadline_ms is on the runtime's clock (spawn_now_ns); gpr's
		 * monotonic clock may count from another origin. */
		int64_t left = deadline_ms - spawn_now_ns() / 1000000;
		dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
		                  gpr_time_from_millis(left > 0 ? left : 0, GPR_TIMESPAN));
	}
	pthread_mutex_lock(&p->mu);
	if (p->has_auth) {
		/* The token current now; a later gw_peers_set_token does not
		 * change this call's. */
		c->md.key = grpc_slice_from_static_string("authorization");
		c->md.value = grpc_slice_ref(p->auth);
		c->has_md = true;
	}
	chan *ch = p->closing ? NULL : channel_for(p, address);
	if (ch) {
		grpc_slice m = grpc_slice_from_static_string(method);
		c->call = grpc_channel_create_call(ch->ch, NULL, GRPC_PROPAGATE_DEFAULTS, p->cq, m,
		                                   NULL, dl, NULL);
	}
	if (c->call) {
		p->calls++;
		c->chan = ch;
		ch->calls++;
		c->next = p->live;
		if (p->live)
			p->live->prev = c;
		p->live = c;
	}
	bool closing = p->closing;
	pthread_mutex_unlock(&p->mu);
	if (!c->call) {
		atomic_store(&c->refs, 1);
		gw_peer_call_rele(c);
		return closing ? GW_ESHUTDOWN : GW_ENOMEM;
	}
	atomic_fetch_add(&p->started, 1);
	grpc_op *op = c->ops;
	memset(c->ops, 0, sizeof c->ops);
	op->op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->has_md) {
		op->data.send_initial_metadata.count = 1;
		op->data.send_initial_metadata.metadata = &c->md;
	}
	op++;
	op->op = GRPC_OP_SEND_MESSAGE;
	op->data.send_message.send_message = req;
	op++;
	op->op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	op++;
	op->op = GRPC_OP_RECV_INITIAL_METADATA;
	op->data.recv_initial_metadata.recv_initial_metadata = &c->initial;
	op++;
	op->op = GRPC_OP_RECV_MESSAGE;
	op->data.recv_message.recv_message = &c->resp;
	op++;
	op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op->data.recv_status_on_client.trailing_metadata = &c->trailing;
	op->data.recv_status_on_client.status = &c->status;
	op->data.recv_status_on_client.status_details = &c->details;
	op++;
	if (grpc_call_start_batch(c->call, c->ops, (size_t)(op - c->ops), c, NULL) !=
	    GRPC_CALL_OK) {
		GW_ERROR("start_batch for a peer call failed");
		pthread_mutex_lock(&p->mu);
		unlink_call(p, c);
		chan *gone = chan_call_ended(p, c->chan);
		if (--p->calls == 0)
			pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		chan_free(gone);
		atomic_store(&c->refs, 1);
		gw_peer_call_rele(c);
		return GW_ENOMEM;
	}
	*out = c;
	return GW_OK;
}

gw_err gw_peers_set_token(gw_peers *p, const char *token)
{
	grpc_slice auth = grpc_empty_slice();
	if (token) {
		size_t n = strlen(token);
		auth = grpc_slice_malloc(7 + n);
		memcpy(GRPC_SLICE_START_PTR(auth), "Bearer ", 7);
		memcpy(GRPC_SLICE_START_PTR(auth) + 7, token, n);
	}
	pthread_mutex_lock(&p->mu);
	grpc_slice old = p->auth;
	p->auth = auth;
	p->has_auth = token != NULL;
	pthread_mutex_unlock(&p->mu);
	/* Calls in flight may still hold the old one: released, not zeroed. */
	grpc_slice_unref(old);
	return GW_OK;
}

void gw_peer_call_cancel(gw_peer_call *c)
{
	if (c && c->call)
		grpc_call_cancel(c->call, NULL);
}

uint64_t gw_peers_calls(gw_peers *p)
{
	return atomic_load(&p->started);
}

void gw_peers_destroy(gw_peers *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->closing = true;
	/* Each cancelled call still completes (fn runs with CANCELLED). */
	for (gw_peer_call *c = p->live; c; c = c->next)
		grpc_call_cancel(c->call, NULL);
	while (p->calls > 0)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	if (p->cq) {
		grpc_completion_queue_shutdown(p->cq);
		if (p->thread_started)
			pthread_join(p->thread, NULL);
		grpc_completion_queue_destroy(p->cq);
	}
	/* Every call has ended: no channel is in use. */
	chan *lists[2] = {p->chans, p->retired};
	for (int i = 0; i < 2; i++)
		while (lists[i]) {
			chan *n = lists[i]->next;
			chan_free(lists[i]);
			lists[i] = n;
		}
	p->chans = p->retired = NULL;
	if (p->creds)
		grpc_channel_credentials_release(p->creds);
	/* Every call has ended (and dropped its reference): the last one. */
	if (p->has_auth)
		explicit_bzero(GRPC_SLICE_START_PTR(p->auth), GRPC_SLICE_LENGTH(p->auth));
	grpc_slice_unref(p->auth);
	free(p->server_name);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

/* ---- probes (membership.h: the probe of a silent member) ------------------------------ */

typedef struct ping_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, alive;
	const char *expect_id; /* borrowed for the wait */
} ping_wait;

static void ping_done(void *user, grpc_status_code code, const char *details,
                      grpc_byte_buffer *resp, const char *owner, bool not_dispatched,
                      bool peer_refused)
{
	(void)owner;
	(void)not_dispatched;
	ping_wait *w = user;
	if (peer_refused)
		GW_WARN("cluster: a member refused this member's Ping as a peer: %s (%s; is this "
		        "member's credential a principal with peer: true in its --access "
		        "policy?)",
		        code == GRPC_STATUS_UNAUTHENTICATED ? "UNAUTHENTICATED"
		                                            : "PERMISSION_DENIED",
		        details);
	bool alive = false;
	if (code == GRPC_STATUS_OK && resp) {
		spawn_arena a;
		spawn_arena_init(&a, 0);
		Spawn__Gateway__V1__PingReply *r = NULL;
		/* Alive means the member itself answered: a process restarted on the
		 * same address is another member (another id). */
		if (spawn_wire_unpack(&spawn__gateway__v1__ping_reply__descriptor, resp, &a,
		                      (ProtobufCMessage **)&r) == 0)
			alive = r->member_id && !strcmp(r->member_id, w->expect_id);
		spawn_arena_fini(&a);
	}
	pthread_mutex_lock(&w->mu);
	w->alive = alive;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

bool gw_peer_ping(gw_peers *p, const char *address, const char *expect_id, const char *self_id,
                  uint64_t view_version, int64_t timeout_ms)
{
	Spawn__Gateway__V1__PingRequest rq = SPAWN__GATEWAY__V1__PING_REQUEST__INIT;
	rq.sender_id = (char *)(self_id ? self_id : "");
	rq.view_version = view_version;
	grpc_byte_buffer *bb = NULL;
	if (spawn_wire_pack(&rq.base, &bb) != 0)
		return false;
	ping_wait w = {.expect_id = expect_id};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	gw_peer_call *c = NULL;
	int64_t deadline = spawn_now_ns() / 1000000 + (timeout_ms > 0 ? timeout_ms : 1000);
	gw_err err = gw_peer_call_start(p, address, GW_PEER_PING, bb, deadline, ping_done, &w, &c);
	grpc_byte_buffer_destroy(bb);
	bool alive = false;
	if (!err) {
		/* The call's own deadline ends it; fn runs exactly once. */
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		alive = w.alive;
		pthread_mutex_unlock(&w.mu);
		gw_peer_call_rele(c);
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return alive;
}
