/* http_host.c - Spawn-protocol hosts called back over HTTP/1.1 through one
 * libcurl multi client (see http_host.h for the task states and
 * invariants). */
#include "http_host.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wire.h"

#define ACTIONS_PATH "/api/v1/actors/actions"
#define NBUCKETS     4096

enum { J_QUEUED, J_WRITTEN };

typedef struct htarget htarget;

typedef struct job {
	uint64_t id;
	htarget *t;     /* a reference */
	gw_inv *inv;    /* borrowed from the runtime until its end; NULL when HELD */
	gw_actor *held; /* HELD: the actor whose turn slot it keeps */
	int st;         /* J_* (client mu) */
	uint8_t *body;  /* owned: the serialized ActorInvocation */
	size_t blen;
	int64_t due_ms; /* monotonic: the call's deadline */
	CURL *easy;     /* owned while WRITTEN (client thread only) */
	uint8_t *rbuf;  /* owned: the reply so far (client thread only) */
	size_t rlen, rcap;
	bool rbig;                 /* the reply went over max_reply_bytes */
	struct job *qnext;         /* the queue of new jobs (client mu) */
	struct job *hnext;         /* the id table (client mu) */
	struct job *anext, *aprev; /* every job the client holds (client mu) */
} job;

struct htarget {
	gw_target target; /* first: the runtime calls ht_ops through it */
	gw_hhosts *c;     /* borrowed: outlives the target's use by the runtime */
	atomic_int refs;
	atomic_bool retired;
	char *system;  /* owned */
	char *base;    /* owned: "http://host:port" */
	char *url;     /* owned: base + ACTIONS_PATH */
	htarget *next; /* the client's table (client mu) */
};

struct gw_hhosts {
	gw_hhosts_opts o;
	gw_runtime *rt;          /* borrowed */
	CURLM *multi;            /* owned; the client thread's alone once started */
	struct curl_slist *hdrs; /* owned: the request headers every call shares */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	bool stop;
	uint64_t next_id;
	job *qhead, *qtail; /* new jobs for the thread */
	job *all;           /* every job held */
	job *buckets[NBUCKETS];
	uint32_t njobs;   /* invariant 1 */
	htarget *targets; /* each with the table's reference */
	CURL *idle[64];   /* easy handles kept for reuse (client thread only) */
	int nidle;
	atomic_ullong calls, ok, host_errors, failed, refused_full;
};

/* ---- targets ------------------------------------------------------------------ */

static void ht_hold(gw_host *h)
{
	htarget *t = (htarget *)(void *)h;
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

static void ht_rele(gw_host *h)
{
	htarget *t = (htarget *)(void *)h;
	if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(t->system);
	free(t->base);
	free(t->url);
	free(t);
}

static bool ht_live(gw_host *h)
{
	htarget *t = (htarget *)(void *)h;
	return !atomic_load(&t->retired);
}

static job **bucket(gw_hhosts *c, uint64_t id)
{
	return &c->buckets[id % NBUCKETS];
}

static job *job_find_locked(gw_hhosts *c, uint64_t id)
{
	for (job *j = *bucket(c, id); j; j = j->hnext)
		if (j->id == id)
			return j;
	return NULL;
}

/* job_unlink_locked takes j out of the id table, the queue and the list. */
static void job_unlink_locked(gw_hhosts *c, job *j)
{
	for (job **p = bucket(c, j->id); *p; p = &(*p)->hnext)
		if (*p == j) {
			*p = j->hnext;
			break;
		}
	if (j->st == J_QUEUED) {
		job *prev = NULL;
		for (job *q = c->qhead; q; prev = q, q = q->qnext)
			if (q == j) {
				if (prev)
					prev->qnext = q->qnext;
				else
					c->qhead = q->qnext;
				if (c->qtail == q)
					c->qtail = prev;
				break;
			}
	}
	if (j->aprev)
		j->aprev->anext = j->anext;
	else
		c->all = j->anext;
	if (j->anext)
		j->anext->aprev = j->aprev;
	c->njobs--;
}

static void job_free(job *j)
{
	if (!j)
		return;
	if (j->t)
		ht_rele((gw_host *)(void *)j->t);
	free(j->body);
	free(j->rbuf);
	free(j);
}

/* invocation_bytes serializes the ActorInvocation that build() put in the
 * task: Spawn hosts take the ActorInvocation alone. */
static uint8_t *invocation_bytes(gw_inv *inv, uint64_t id, gw_task_build_fn build, size_t *len)
{
	grpc_byte_buffer *bb = build(inv, id);
	if (!bb)
		return NULL;
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	ProtobufCMessage *m = NULL;
	uint8_t *out = NULL;
	if (spawn_wire_unpack(&spawn__gateway__v1__gateway_message__descriptor, bb, &ar, &m) == 0) {
		Spawn__Gateway__V1__GatewayMessage *gm = (Spawn__Gateway__V1__GatewayMessage *)m;
		if (gm->msg_case == SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_INVOCATION &&
		    gm->invocation && gm->invocation->invocation) {
			*len = spawn__actor_invocation__get_packed_size(gm->invocation->invocation);
			out = malloc(*len ? *len : 1);
			if (out)
				spawn__actor_invocation__pack(gm->invocation->invocation, out);
		}
	}
	spawn_arena_fini(&ar);
	grpc_byte_buffer_destroy(bb);
	return out;
}

static gw_err ht_send(gw_host *h, gw_inv *inv, gw_task_build_fn build)
{
	htarget *t = (htarget *)(void *)h;
	gw_hhosts *c = t->c;
	pthread_mutex_lock(&c->mu);
	if (c->stop || atomic_load(&t->retired)) {
		pthread_mutex_unlock(&c->mu);
		return GW_EUNAVAIL;
	}
	if (c->njobs >= c->o.max_tasks) {
		pthread_mutex_unlock(&c->mu);
		atomic_fetch_add(&c->refused_full, 1);
		return GW_EFULL;
	}
	uint64_t id = ++c->next_id;
	atomic_fetch_add(&c->calls, 1);
	job *j = calloc(1, sizeof *j);
	if (j)
		j->body = invocation_bytes(inv, id, build, &j->blen);
	if (!j || !j->body) {
		pthread_mutex_unlock(&c->mu);
		job_free(j);
		return GW_ENOMEM;
	}
	if (j->blen > c->o.max_reply_bytes) {
		/* The same bound both ways: a host could not answer with the state. */
		pthread_mutex_unlock(&c->mu);
		job_free(j);
		return GW_ETOOBIG;
	}
	j->id = id;
	j->inv = inv;
	j->due_ms = inv->due_ms;
	j->t = t;
	ht_hold(h);
	j->st = J_QUEUED;
	j->hnext = *bucket(c, id);
	*bucket(c, id) = j;
	j->anext = c->all;
	if (c->all)
		c->all->aprev = j;
	c->all = j;
	if (c->qtail)
		c->qtail->qnext = j;
	else
		c->qhead = j;
	c->qtail = j;
	c->njobs++;
	inv->req_id = id;
	pthread_mutex_unlock(&c->mu);
	curl_multi_wakeup(c->multi);
	return GW_OK;
}

static int ht_cancel(gw_host *h, uint64_t req_id, gw_actor *hold, int64_t expiry_ms)
{
	htarget *t = (htarget *)(void *)h;
	gw_hhosts *c = t->c;
	(void)expiry_ms; /* the transfer's own timeout is the deadline plus the grace */
	int r = GW_CANCEL_GONE;
	job *gone = NULL;
	pthread_mutex_lock(&c->mu);
	job *j = job_find_locked(c, req_id);
	if (j && j->inv && j->st == J_QUEUED) {
		job_unlink_locked(c, j); /* never written: it leaves the queue */
		gone = j;
		r = GW_CANCEL_UNSENT;
	} else if (j && j->inv) {
		j->inv = NULL; /* written: the host may be running it */
		j->held = hold;
		r = GW_CANCEL_HELD;
	}
	pthread_mutex_unlock(&c->mu);
	job_free(gone);
	return r;
}

/* The runtime's view of a Spawn-protocol host (STYLE 10). */
static const gw_target_ops ht_ops = {
    .version = GW_TARGET_OPS_VERSION,
    .send = ht_send,
    .cancel = ht_cancel,
    .hold = ht_hold,
    .rele = ht_rele,
    .live = ht_live,
};

gw_err gw_hhosts_target(gw_hhosts *c, const char *system, const char *base_url, gw_host **out)
{
	if (!system || !base_url || strncmp(base_url, "http://", 7) || !base_url[7] ||
	    strlen(base_url) > 512)
		return GW_EINVAL;
	size_t bl = strlen(base_url);
	while (bl > 7 && base_url[bl - 1] == '/')
		bl--;
	pthread_mutex_lock(&c->mu);
	if (c->stop) {
		pthread_mutex_unlock(&c->mu);
		return GW_EUNAVAIL;
	}
	for (htarget *t = c->targets; t; t = t->next)
		if (!strcmp(t->system, system) && strlen(t->base) == bl &&
		    !strncmp(t->base, base_url, bl) && !atomic_load(&t->retired)) {
			ht_hold((gw_host *)(void *)t);
			pthread_mutex_unlock(&c->mu);
			*out = (gw_host *)(void *)t;
			return GW_OK;
		}
	htarget *t = calloc(1, sizeof *t);
	if (t) {
		t->system = strdup(system);
		t->base = strndup(base_url, bl);
		t->url = malloc(bl + sizeof ACTIONS_PATH);
	}
	if (!t || !t->system || !t->base || !t->url) {
		pthread_mutex_unlock(&c->mu);
		if (t) {
			free(t->system);
			free(t->base);
			free(t->url);
		}
		free(t);
		return GW_ENOMEM;
	}
	memcpy(t->url, base_url, bl);
	memcpy(t->url + bl, ACTIONS_PATH, sizeof ACTIONS_PATH);
	t->target.ops = &ht_ops;
	t->c = c;
	atomic_init(&t->refs, 2); /* the table's and the caller's */
	t->next = c->targets;
	c->targets = t;
	pthread_mutex_unlock(&c->mu);
	*out = (gw_host *)(void *)t;
	return GW_OK;
}

void gw_hhosts_retire(gw_host *h)
{
	htarget *t = (htarget *)(void *)h;
	gw_hhosts *c = t->c;
	pthread_mutex_lock(&c->mu);
	atomic_store(&t->retired, true);
	bool listed = false;
	for (htarget **p = &c->targets; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			listed = true;
			break;
		}
	pthread_mutex_unlock(&c->mu);
	if (listed)
		ht_rele(h); /* the table's reference */
}

const char *gw_hhosts_url(gw_host *h)
{
	return ((htarget *)(void *)h)->base;
}

/* ---- the client thread ---------------------------------------------------------- */

static size_t on_data(char *p, size_t size, size_t nmemb, void *user)
{
	job *j = user;
	size_t n = size * nmemb;
	size_t max = j->t->c->o.max_reply_bytes;
	if (j->rlen + n > max) {
		j->rbig = true;
		return 0; /* aborts the transfer */
	}
	if (j->rlen + n > j->rcap) {
		size_t cap = j->rcap ? j->rcap : 1024;
		while (cap < j->rlen + n)
			cap *= 2;
		uint8_t *b = realloc(j->rbuf, cap);
		if (!b)
			return 0;
		j->rbuf = b;
		j->rcap = cap;
	}
	memcpy(j->rbuf + j->rlen, p, n);
	j->rlen += n;
	return n;
}

/* easy_get / easy_put keep a few easy handles for reuse: a handle set up
 * again costs less than a new one (connections live in the multi handle's
 * cache either way). Client thread only. */
static CURL *easy_get(gw_hhosts *c)
{
	return c->nidle ? c->idle[--c->nidle] : curl_easy_init();
}

static void easy_put(gw_hhosts *c, CURL *e)
{
	if (c->nidle < (int)(sizeof c->idle / sizeof c->idle[0])) {
		curl_easy_reset(e);
		c->idle[c->nidle++] = e;
	} else {
		curl_easy_cleanup(e);
	}
}

static bool start_transfer(gw_hhosts *c, job *j)
{
	CURL *e = easy_get(c);
	if (!e)
		return false;
	int64_t left = j->due_ms - spawn_now_ns() / 1000000;
	if (left < 1)
		left = 1;
	curl_easy_setopt(e, CURLOPT_URL, j->t->url);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)j->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->blen);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(e, CURLOPT_PRIVATE, j);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->o.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(left + c->o.grace_ms));
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		easy_put(c, e);
		return false;
	}
	j->easy = e;
	return true;
}

/* finish ends job j (taken out of the client) with its transfer's outcome:
 * the runtime hears of it exactly once (invariant 2). */
static void finish(gw_hhosts *c, job *j, CURLcode rc, long status)
{
	gw_runtime *rt = c->rt;
	gw_inv *inv = j->inv;
	char why[GW_WC_PATH_MAX + 400];
	if (j->held) {
		gw_runtime_release(rt, j->held); /* a late answer: dropped */
		return;
	}
	if (!inv)
		return;
	if (rc == CURLE_WRITE_ERROR && j->rbig) {
		atomic_fetch_add(&c->failed, 1);
		snprintf(why, sizeof why,
		         "the actor host at %s returned a reply over %zu bytes "
		         "(--max-message-bytes)",
		         j->t->base, c->o.max_reply_bytes);
		gw_runtime_abandon(rt, inv, GW_ETOOBIG, why);
		return;
	}
	if (rc != CURLE_OK) {
		atomic_fetch_add(&c->failed, 1);
		snprintf(why, sizeof why, "the actor host at %s could not be called: %s",
		         j->t->base, curl_easy_strerror(rc));
		gw_runtime_abandon(
		    rt, inv, rc == CURLE_OPERATION_TIMEDOUT ? GW_ETIMEDOUT : GW_EUNAVAIL, why);
		return;
	}
	Spawn__Gateway__V1__InvocationResult res = SPAWN__GATEWAY__V1__INVOCATION_RESULT__INIT;
	res.request_id = j->id;
	if (status != 200) {
		/* Spawn SDKs answer a failed handler with 400 and no body. */
		atomic_fetch_add(&c->host_errors, 1);
		Spawn__Gateway__V1__HostError he = SPAWN__GATEWAY__V1__HOST_ERROR__INIT;
		he.code = 2; /* UNKNOWN */
		snprintf(why, sizeof why, "the actor host at %s failed action '%s' (HTTP %ld)",
		         j->t->base, inv->req && inv->req->action_name ? inv->req->action_name : "",
		         status);
		he.message = why;
		res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR;
		res.error = &he;
		gw_runtime_result(rt, inv, &res);
		return;
	}
	spawn_arena ar;
	spawn_arena_init(&ar, 0);
	Spawn__ActorInvocationResponse *r = spawn__actor_invocation_response__unpack(
	    &ar.pbc, j->rlen, j->rbuf ? j->rbuf : (uint8_t *)"");
	gw_wc_fail f;
	if (!r) {
		snprintf(why, sizeof why,
		         "the actor host at %s returned a reply that is not an "
		         "ActorInvocationResponse (%zu bytes)",
		         j->t->base, j->rlen);
	} else if (gw_wc_check(&r->base, j->rbuf, j->rlen, &c->o.limits, &f)) {
		snprintf(why, sizeof why, "the actor host returned an invalid result: %s: %s",
		         f.path, f.why);
		r = NULL;
	} else if (!r->updated_context) {
		/* As Spawn's proxy: a reply without updated_context is invalid
		 * content (SDKs always set it). */
		snprintf(why, sizeof why,
		         "the actor host at %s returned a reply without updated_context",
		         j->t->base);
		r = NULL;
	}
	if (!r) {
		atomic_fetch_add(&c->failed, 1);
		GW_WARN("%s", why);
		gw_runtime_abandon(rt, inv, GW_EINVAL, why);
	} else {
		atomic_fetch_add(&c->ok, 1);
		res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE;
		res.response = r;
		gw_wc_strip_reserved(&res);
		gw_runtime_result(rt, inv, &res);
	}
	spawn_arena_fini(&ar);
}

/* end_all ends every job left when the client stops (client thread). */
static void end_all(gw_hhosts *c)
{
	for (;;) {
		pthread_mutex_lock(&c->mu);
		job *j = c->all;
		if (j)
			job_unlink_locked(c, j);
		pthread_mutex_unlock(&c->mu);
		if (!j)
			return;
		if (j->easy) {
			curl_multi_remove_handle(c->multi, j->easy);
			curl_easy_cleanup(j->easy);
		}
		if (j->held)
			gw_runtime_release(c->rt, j->held);
		else if (j->inv)
			gw_runtime_abandon(
			    c->rt, j->inv, GW_EUNAVAIL,
			    "the gateway is shutting down; the Spawn host call ended");
		job_free(j);
	}
}

static void *client_main(void *arg)
{
	gw_hhosts *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		bool stop = c->stop;
		job *fresh = c->qhead;
		c->qhead = c->qtail = NULL;
		for (job *j = fresh; j; j = j->qnext)
			j->st = J_WRITTEN;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
		for (job *j = fresh, *next; j; j = next) {
			next = j->qnext;
			if (start_transfer(c, j))
				continue;
			pthread_mutex_lock(&c->mu);
			job_unlink_locked(c, j);
			pthread_mutex_unlock(&c->mu);
			atomic_fetch_add(&c->failed, 1);
			if (j->held)
				gw_runtime_release(c->rt, j->held);
			else if (j->inv)
				gw_runtime_abandon(c->rt, j->inv, GW_ENOMEM,
				                   "cannot start the call to the actor host");
			job_free(j);
		}
		int running = 0;
		curl_multi_perform(c->multi, &running);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(c->multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			CURL *e = m->easy_handle;
			CURLcode rc = m->data.result;
			job *j = NULL;
			long status = 0;
			curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&j);
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
			curl_multi_remove_handle(c->multi, e);
			easy_put(c, e);
			pthread_mutex_lock(&c->mu);
			j->easy = NULL;
			job_unlink_locked(c, j);
			/* From here j is the thread's alone: a cancel finds it no
			 * more, and its inv or held are read once. */
			pthread_mutex_unlock(&c->mu);
			finish(c, j, rc, status);
			job_free(j);
		}
		curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
	}
	end_all(c);
	while (c->nidle)
		curl_easy_cleanup(c->idle[--c->nidle]);
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------ */

gw_err gw_hhosts_create(gw_hhosts **out, const gw_hhosts_opts *o, gw_runtime *rt)
{
	gw_hhosts *c = calloc(1, sizeof *c);
	if (!c)
		return GW_ENOMEM;
	if (o)
		c->o = *o;
	if (!c->o.max_tasks)
		c->o.max_tasks = 10000;
	if (!c->o.max_host_conns)
		c->o.max_host_conns = 64;
	if (!c->o.max_reply_bytes)
		c->o.max_reply_bytes = 4u << 20;
	if (!c->o.connect_timeout_ms)
		c->o.connect_timeout_ms = 5000;
	if (!c->o.grace_ms)
		c->o.grace_ms = 5000;
	gw_wc_limits_resolve(&c->o.limits);
	c->rt = rt;
	pthread_mutex_init(&c->mu, NULL);
	/* Reference-counted by libcurl; thread-safe since 7.84. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c->multi = curl_multi_init())) {
		gw_hhosts_destroy(c);
		return GW_EIO;
	}
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->o.max_host_conns);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->o.max_host_conns * 4);
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	struct curl_slist *h = NULL, *n;
	static const char *const hdrs[] = {
	    "Content-Type: application/octet-stream", "Accept: application/octet-stream",
	    "Connection: keep-alive", "Expect:" /* no 100-continue round trip */};
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
		if (!(n = curl_slist_append(h, hdrs[i]))) {
			curl_slist_free_all(h);
			gw_hhosts_destroy(c);
			return GW_ENOMEM;
		}
		h = n;
	}
	c->hdrs = h;
	if (pthread_create(&c->thread, NULL, client_main, c)) {
		gw_hhosts_destroy(c);
		return GW_EIO;
	}
	c->started = true;
	*out = c;
	return GW_OK;
}

void gw_hhosts_stop(gw_hhosts *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	bool was = c->stop;
	c->stop = true;
	pthread_mutex_unlock(&c->mu);
	if (was || !c->started)
		return;
	curl_multi_wakeup(c->multi);
	pthread_join(c->thread, NULL);
	c->started = false;
}

void gw_hhosts_destroy(gw_hhosts *c)
{
	if (!c)
		return;
	gw_hhosts_stop(c);
	while (c->targets) {
		htarget *t = c->targets;
		c->targets = t->next;
		atomic_store(&t->retired, true);
		ht_rele((gw_host *)(void *)t);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	curl_slist_free_all(c->hdrs);
	pthread_mutex_destroy(&c->mu);
	curl_global_cleanup();
	free(c);
}

void gw_hhosts_each(gw_hhosts *c,
                    void (*fn)(void *user, const char *system, size_t tasks, size_t bytes),
                    void *user)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	for (htarget *t = c->targets; t; t = t->next) {
		if (atomic_load(&t->retired))
			continue;
		size_t tasks = 0, bytes = 0;
		for (const job *j = c->all; j; j = j->anext)
			if (j->t == t && j->inv) {
				tasks++;
				bytes += j->blen;
			}
		fn(user, t->system, tasks, bytes);
	}
	pthread_mutex_unlock(&c->mu);
}

void gw_hhosts_get_stats(gw_hhosts *c, gw_hhosts_stats *out)
{
	out->calls = atomic_load(&c->calls);
	out->ok = atomic_load(&c->ok);
	out->host_errors = atomic_load(&c->host_errors);
	out->failed = atomic_load(&c->failed);
	out->refused_full = atomic_load(&c->refused_full);
	pthread_mutex_lock(&c->mu);
	out->in_client = c->njobs;
	pthread_mutex_unlock(&c->mu);
}
