/* routing_test.c - the router (gateway/cluster/routing.c) over the real
 * runtime, a fake host and a fake peer link: a call runs here when this
 * member owns its actor, is forwarded with its deadline otherwise and
 * answered with the owner's answer; a refusal waits for a newer view and the
 * attempts are bounded (GW_ROUTE_HOPS); without a view a call waits until its
 * deadline; a cancel reaches the forward. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "routing.h"
#include "rt_fixture.h"

#define SYS "rsys"

static gw_router *router;

/* ---- the fake peer link --------------------------------------------------------- */

struct gw_peer_call {
	int idx;
};

typedef struct fcall {
	char address[64];
	Spawn__Gateway__V1__ForwardRequest *fr; /* unpacked request (heap) */
	int64_t deadline_ms;
	gw_peer_done_fn fn;
	void *user;
	bool cancelled;
	struct gw_peer_call h;
} fcall;

static pthread_mutex_t pmu = PTHREAD_MUTEX_INITIALIZER;
static fcall calls[16];
static int ncalls;

static gw_err f_start(gw_peers *p, const char *address, const char *method, grpc_byte_buffer *req,
                      int64_t deadline_ms, gw_peer_done_fn fn, void *user, gw_peer_call **out)
{
	(void)p;
	ck_assert_str_eq(method, GW_PEER_FORWARD);
	pthread_mutex_lock(&pmu);
	ck_assert_int_lt(ncalls, 16);
	fcall *c = &calls[ncalls];
	snprintf(c->address, sizeof c->address, "%s", address);
	ck_assert_int_eq(spawn_wire_unpack(&spawn__gateway__v1__forward_request__descriptor, req,
	                                   NULL, (ProtobufCMessage **)&c->fr),
	                 0);
	c->deadline_ms = deadline_ms;
	c->fn = fn;
	c->user = user;
	c->h.idx = ncalls++;
	*out = &c->h;
	pthread_mutex_unlock(&pmu);
	return GW_OK;
}

static void f_cancel(gw_peer_call *c)
{
	pthread_mutex_lock(&pmu);
	calls[c->idx].cancelled = true;
	pthread_mutex_unlock(&pmu);
}

static void f_rele(gw_peer_call *c)
{
	(void)c;
}

static const gw_router_peer_ops fake_peers = {.start = f_start, .cancel = f_cancel, .rele = f_rele};

static int ncalls_now(void)
{
	pthread_mutex_lock(&pmu);
	int n = ncalls;
	pthread_mutex_unlock(&pmu);
	return n;
}

/* answer call i: code, with an 8-byte payload v when OK, the owner trailer
 * (NULL: none). */
static void answer_call_ex(int i, grpc_status_code code, int64_t v, const char *owner,
                           const char *details, bool peer_refused);
static void answer_call(int i, grpc_status_code code, int64_t v, const char *owner,
                        const char *details)
{
	answer_call_ex(i, code, v, owner, details, false);
}

/* answer_call_ex: answer_call, with the peer-refused trailer when asked. */
static void answer_call_ex(int i, grpc_status_code code, int64_t v, const char *owner,
                           const char *details, bool peer_refused)
{
	grpc_byte_buffer *bb = NULL;
	if (code == GRPC_STATUS_OK) {
		uint8_t val[8];
		for (int k = 0; k < 8; k++)
			val[k] = (uint8_t)((uint64_t)v >> (8 * k));
		Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
		any.type_url = "type.googleapis.com/test.Out";
		any.value.data = val;
		any.value.len = 8;
		Spawn__InvocationResponse r = SPAWN__INVOCATION_RESPONSE__INIT;
		r.payload_case = SPAWN__INVOCATION_RESPONSE__PAYLOAD_VALUE;
		r.value = &any;
		ck_assert_int_eq(spawn_wire_pack(&r.base, &bb), 0);
	}
	pthread_mutex_lock(&pmu);
	fcall c = calls[i];
	pthread_mutex_unlock(&pmu);
	c.fn(c.user, code, details ? details : "", bb, owner, false, peer_refused);
	if (bb)
		grpc_byte_buffer_destroy(bb);
}

/* answer_not_dispatched: call i answered UNAVAILABLE with the
 * not-dispatched trailer (the owner draining; or a forward gRPC never sent,
 * peer.c). */
static void answer_not_dispatched(int i, const char *details)
{
	pthread_mutex_lock(&pmu);
	fcall c = calls[i];
	pthread_mutex_unlock(&pmu);
	c.fn(c.user, GRPC_STATUS_UNAVAILABLE, details, NULL, NULL, true, false);
}

/* ---- views ----------------------------------------------------------------------- */

static const char *const served_all[] = {SYS "/a1", SYS "/a2"};

/* view: members m-a (this one) at a:1 and m-b at b:1; self_serves /
 * other_serves: whether each serves the actors. */
static void view(uint64_t version, bool self_serves, bool other_serves)
{
	gw_member ms[2] = {
	    {.id = "m-a",
	     .address = "a:1",
	     .status = GW_MEMBER_ACTIVE,
	     .served = served_all,
	     .n_served = self_serves ? 2 : 0},
	    {.id = "m-b",
	     .address = "b:1",
	     .status = GW_MEMBER_ACTIVE,
	     .served = served_all,
	     .n_served = other_serves ? 2 : 0},
	};
	gw_view v = {.version = version, .n = 2, .members = ms, .self = 0};
	gw_router_on_view(router, &v);
}

/* view_fenced: the membership's view after this member (m-a) fenced
 * itself: the same members, no self; other_serves: whether m-b serves. */
static void view_fenced(uint64_t version, bool other_serves)
{
	gw_member ms[2] = {
	    {.id = "m-a",
	     .address = "a:1",
	     .status = GW_MEMBER_ACTIVE,
	     .served = served_all,
	     .n_served = 2},
	    {.id = "m-b",
	     .address = "b:1",
	     .status = GW_MEMBER_ACTIVE,
	     .served = served_all,
	     .n_served = other_serves ? 2 : 0},
	};
	gw_view v = {.version = version, .n = 2, .members = ms, .self = SIZE_MAX};
	gw_router_on_view(router, &v);
}

/* ---- fixture ------------------------------------------------------------------- */

static void setup(void)
{
	rtf_open("routing");
	gw_runtime_opts ro;
	memset(&ro, 0, sizeof ro);
	ro.shards = 4;
	ro.host_timeout_ms = 60000;
	ncalls = 0;
	ck_assert_int_eq(gw_registry_create(&reg, NULL), GW_OK);
	Spawn__Actors__ActorSettings named = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	named.kind = SPAWN__ACTORS__KIND__NAMED;
	rtf_actor actors[] = {{"a1", &named}, {"a2", &named}};
	char why[256] = "";
	ck_assert_int_eq(rtf_register(&host, SYS, actors, 2, (const char *const[]){"Add", NULL},
	                              why, sizeof why),
	                 GW_OK);
	ck_assert_int_eq(gw_runtime_create(&rt, &ro, reg, persist), GW_OK);
	gw_router_opts o = {
	    .rt = rt, .reg = reg, .peers = NULL, .peer_ops = &fake_peers, .wait_ms = 5000};
	ck_assert_int_eq(gw_router_create(&router, &o), GW_OK);
	gw_runtime_set_router(rt, &gw_router_ops_v1, router);
}

static void teardown(void)
{
	gw_router_stop(router);
	rtf_close();
	gw_router_destroy(router);
	router = NULL;
	for (int i = 0; i < ncalls; i++)
		protobuf_c_message_free_unpacked(&calls[i].fr->base, NULL);
}

static int64_t now_ms(void)
{
	return spawn_now_ns() / 1000000;
}

static gw_inv *invoke(const char *actor, int tag, int64_t deadline_in)
{
	gw_inv *inv = gw_inv_create(0);
	inv->req = rtf_request(&inv->arena, SYS, actor, "Add");
	inv->done = on_done;
	inv->user = (void *)(intptr_t)tag;
	inv->deadline_ms = deadline_in ? now_ms() + deadline_in : 0;
	gw_runtime_invoke(rt, inv);
	return inv;
}

/* ---- tests ----------------------------------------------------------------------- */

START_TEST(the_owner_runs_the_call_here)
{
	view(1, true, false);
	invoke("a1", 1, 0);
	ck_assert(fake_host_wait(&host, 1));
	ck_assert_int_eq(ncalls_now(), 0);
	uint64_t id;
	gw_inv *inv = rtf_take(&host, 0, &id);
	Spawn__ActorInvocationResponse r = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	rtf_respond(inv, id, &r);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
}
END_TEST

START_TEST(another_owner_gets_the_call_with_its_deadline_and_answers_it)
{
	view(1, false, true);
	int64_t before = now_ms();
	invoke("a1", 7, 5000);
	ck_assert_int_eq(ncalls_now(), 1);
	ck_assert_str_eq(calls[0].address, "b:1");
	ck_assert_uint_eq(calls[0].fr->hops, 1);
	ck_assert_str_eq(calls[0].fr->sender_id, "m-a");
	ck_assert_uint_eq(calls[0].fr->view_version, 1);
	ck_assert_str_eq(calls[0].fr->request->actor->id->name, "a1");
	ck_assert_int_ge(calls[0].deadline_ms, before + 5000);
	ck_assert_int_le(calls[0].deadline_ms, now_ms() + 5000);
	ck_assert_uint_eq(fake_host_wait_ms(&host, 1, 50), false); /* never ran here */
	answer_call(0, GRPC_STATUS_OK, 42, NULL, NULL);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	ck_assert_int_eq(outs[0].reply, 42);
	ck_assert_int_eq(outs[0].tag, 7);
	/* An error of the owner keeps its code and message. */
	invoke("a2", 8, 0);
	answer_call(1, GRPC_STATUS_NOT_FOUND, 0, NULL, "no such thing");
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_ENOTFOUND);
	ck_assert_str_eq(outs[1].msg, "no such thing");
	invoke("a2", 9, 0);
	answer_call(2, GRPC_STATUS_FAILED_PRECONDITION, 0, NULL, "host says no");
	ck_assert(wait_outs(3));
	ck_assert_int_eq(outs[2].err, GW_EHOST);
	ck_assert_int_eq(outs[2].host_code, GRPC_STATUS_FAILED_PRECONDITION);
}
END_TEST

START_TEST(refusals_wait_for_a_newer_view_and_end_after_four_attempts)
{
	view(1, false, true);
	invoke("a1", 1, 0);
	for (int k = 0; k < GW_ROUTE_HOPS; k++) {
		ck_assert_int_eq(ncalls_now(), k + 1);
		ck_assert_uint_eq(calls[k].fr->hops, (unsigned)k + 1);
		/* The owner in m-b's view is m-a: refused, the call waits. */
		answer_call(k, GRPC_STATUS_FAILED_PRECONDITION, 0, "m-a", "not the owner");
		ck_assert_int_eq(outs_count(), 0);
		ck_assert_int_eq(ncalls_now(), k + 1); /* no newer view: no new attempt */
		view(2 + (uint64_t)k, false, true);    /* a newer view: tried again */
		if (k + 1 < GW_ROUTE_HOPS)
			wait_until(ncalls_now() == k + 2);
	}
	ck_assert(wait_outs(1));
	ck_assert_int_eq(ncalls_now(), GW_ROUTE_HOPS);
	ck_assert_int_eq(outs[0].err, GW_EUNAVAIL);
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "attempts"));
	/* A refusal followed by a view that makes this member the owner: the
	 * call runs here. */
	invoke("a2", 2, 0);
	ck_assert_int_eq(ncalls_now(), GW_ROUTE_HOPS + 1);
	answer_call(GW_ROUTE_HOPS, GRPC_STATUS_FAILED_PRECONDITION, 0, "m-a", "not the owner");
	view(10, true, false);
	ck_assert(fake_host_wait(&host, 1));
}
END_TEST

/* An owner that is stopping refuses a forward not-dispatched (or gRPC could
 * not reach it): the call waits for a newer view and runs where that view
 * says, instead of failing to its caller (docs/design/cluster.md, "The
 * drain"). An UNAVAILABLE without the trailer is an unknown outcome: it
 * reaches the caller as it is. */
START_TEST(an_owner_that_stops_sends_the_call_to_the_next_view)
{
	view(1, false, true);
	invoke("a1", 1, 0);
	ck_assert_int_eq(ncalls_now(), 1);
	answer_not_dispatched(0, "the gateway is shutting down");
	ck_assert_int_eq(outs_count(), 0);
	ck_assert_uint_eq(fake_host_wait_ms(&host, 1, 50), false);
	view(2, true, false); /* the view without the stopped owner: this member */
	ck_assert(fake_host_wait(&host, 1));
	ck_assert_int_eq(outs_count(), 0);
	/* Another owner, that gRPC could not reach: the same, to the next one. */
	view(3, false, true);
	invoke("a2", 2, 0);
	ck_assert_int_eq(ncalls_now(), 2);
	answer_not_dispatched(1, "failed to connect to all addresses; last error: refused");
	view(4, false, true);
	wait_until(ncalls_now() == 3);
	ck_assert_uint_eq(calls[2].fr->hops, 2);
	answer_call(2, GRPC_STATUS_OK, 5, NULL, NULL);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	ck_assert_int_eq(outs[0].tag, 2);
	/* Cancelled by the owner's gRPC server, with no trailer: unknown. */
	invoke("a2", 3, 0);
	ck_assert_int_eq(ncalls_now(), 4);
	answer_call(3, GRPC_STATUS_UNAVAILABLE, 0, NULL, "Cancelling all calls");
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_EUNAVAIL);
	ck_assert(!outs[1].not_dispatched);
	ck_assert_str_eq(outs[1].msg, "Cancelling all calls");
}
END_TEST

START_TEST(without_a_view_a_call_waits_until_its_deadline)
{
	int64_t t0 = now_ms();
	invoke("a1", 1, 200);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_ETIMEDOUT);
	ck_assert_int_ge(now_ms() - t0, 190);
	/* A view that arrives while a call waits releases it. */
	invoke("a2", 2, 5000);
	view(1, false, true);
	wait_until(ncalls_now() == 1);
	ck_assert_int_eq(ncalls_now(), 1);
	answer_call(0, GRPC_STATUS_OK, 5, NULL, NULL);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_OK);
}
END_TEST

START_TEST(a_cancel_reaches_the_forward_and_a_waiting_call)
{
	view(1, false, true);
	gw_inv *inv = invoke("a1", 1, 0);
	ck_assert_int_eq(ncalls_now(), 1);
	gw_runtime_cancel(rt, inv); /* inv stays allocated until its done: not answered yet */
	ck_assert(calls[0].cancelled);
	answer_call(0, GRPC_STATUS_CANCELLED, 0, NULL, "Cancelled");
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_ECANCELLED);
	/* A call waiting after a refusal ends at once. */
	inv = invoke("a2", 2, 0);
	ck_assert_int_eq(ncalls_now(), 2);
	answer_call(1, GRPC_STATUS_FAILED_PRECONDITION, 0, "m-a", "not the owner");
	ck_assert_int_eq(outs_count(), 1);
	gw_runtime_cancel(rt, inv);
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_ECANCELLED);
}
END_TEST

/* The principal the entry member authorized travels in the forward; an
 * owner that refuses this member as a peer (its credential) is not the
 * caller's fault: UNAVAILABLE, never dispatched, not PERMISSION_DENIED. A
 * PERMISSION_DENIED of the turn itself (the cross-system rule at the
 * owner) keeps its code. */
START_TEST(the_principal_travels_and_a_peer_refusal_is_not_the_callers)
{
	view(1, false, true);
	gw_inv *inv = gw_inv_create(0);
	inv->req = rtf_request(&inv->arena, SYS, "a1", "Add");
	inv->done = on_done;
	inv->user = (void *)(intptr_t)1;
	inv->principal = spawn_arena_strdup(&inv->arena, "web");
	gw_runtime_invoke(rt, inv);
	ck_assert_int_eq(ncalls_now(), 1);
	ck_assert_str_eq(calls[0].fr->principal, "web");
	answer_call_ex(0, GRPC_STATUS_PERMISSION_DENIED, 0, NULL,
	               "principal 'm-a' is not a peer of the cluster", true);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_EUNAVAIL);
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "refused this member as a peer"));
	ck_assert_ptr_nonnull(strstr(outs[0].msg, "is not a peer"));
	/* A call without a principal (made by the gateway itself) sends "". */
	invoke("a2", 2, 0);
	ck_assert_int_eq(ncalls_now(), 2);
	ck_assert_str_eq(calls[1].fr->principal, "");
	answer_call(1, GRPC_STATUS_PERMISSION_DENIED, 0, NULL, "side effect 0 refused");
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_EDENIED);
	ck_assert_str_eq(outs[1].msg, "side effect 0 refused");
}
END_TEST

/* A member that lost the database (docs/design/cluster.md, "The member
 * loses the database"): its calls go to the owner the view gives with its
 * old incarnation dead, or fail at once, not dispatched; none waits for a
 * view (before: each waited until its deadline). */
START_TEST(a_fenced_member_forwards_or_fails_at_once)
{
	view(1, true, true);
	view_fenced(2, true);
	int64_t t0 = now_ms();
	invoke("a1", 1, 5000);
	ck_assert_int_eq(ncalls_now(), 1); /* m-b owns every actor now */
	ck_assert_str_eq(calls[0].address, "b:1");
	ck_assert_str_eq(calls[0].fr->sender_id, "m-a");
	answer_call(0, GRPC_STATUS_OK, 3, NULL, NULL);
	ck_assert(wait_outs(1));
	ck_assert_int_eq(outs[0].err, GW_OK);
	/* m-b has not declared m-a dead yet: its refusal ends the call. */
	invoke("a2", 2, 5000);
	ck_assert_int_eq(ncalls_now(), 2);
	answer_call(1, GRPC_STATUS_FAILED_PRECONDITION, 0, "m-a", "not the owner");
	ck_assert(wait_outs(2));
	ck_assert_int_eq(outs[1].err, GW_EUNAVAIL);
	ck_assert(outs[1].not_dispatched);
	ck_assert_ptr_nonnull(strstr(outs[1].msg, "fenced"));
	/* No other member serves the actors: refused at once. */
	view_fenced(3, false);
	invoke("a1", 3, 5000);
	ck_assert(wait_outs(3));
	ck_assert_int_eq(outs[2].err, GW_EUNAVAIL);
	ck_assert(outs[2].not_dispatched);
	ck_assert_int_eq(ncalls_now(), 2);
	ck_assert_int_lt(now_ms() - t0, 2500); /* nothing waited for a view or a deadline */
	ck_assert_uint_eq(fake_host_wait_ms(&host, 1, 20), false); /* nothing ran here */
	/* Rejoined (a view with self again): it serves its own actors. */
	view(4, true, false);
	invoke("a1", 4, 5000);
	ck_assert(fake_host_wait(&host, 1));
	ck_assert_int_eq(ncalls_now(), 2);
	uint64_t id;
	gw_inv *inv = rtf_take(&host, 0, &id);
	Spawn__ActorInvocationResponse r = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	rtf_respond(inv, id, &r);
	ck_assert(wait_outs(4));
	ck_assert_int_eq(outs[3].err, GW_OK);
}
END_TEST

int main(void)
{
	const rtf_case cases[] = {
	    {"self", the_owner_runs_the_call_here},
	    {"forward", another_owner_gets_the_call_with_its_deadline_and_answers_it},
	    {"refusals", refusals_wait_for_a_newer_view_and_end_after_four_attempts},
	    {"noview", without_a_view_a_call_waits_until_its_deadline},
	    {"cancel", a_cancel_reaches_the_forward_and_a_waiting_call},
	    {"principal", the_principal_travels_and_a_peer_refusal_is_not_the_callers},
	    {"fenced", a_fenced_member_forwards_or_fails_at_once},
	    {"stopping", an_owner_that_stops_sends_the_call_to_the_next_view},
	};
	return rtf_run(RTF_SUITE("routing", cases, setup, teardown));
}
