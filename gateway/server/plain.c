/* plain.c - actors as plain gRPC services (issue 12 §1).
 *
 * Every rpc of a registered contract's service that carries the
 * spawn.actors.actor option (gateway/contracts) is served on the client
 * listeners at its own path, "/examples.incrementor.Incrementor/Add", so a
 * standard gRPC client calls actors with its own generated stubs:
 *
 *   request  the rpc's input message, as the client serialized it, becomes
 *            the invocation's payload (Any "type.googleapis.com/<input>");
 *   actor    NAMED and POOLED: the service's name; UNNAMED: the instance
 *            named by the input's string field marked spawn.actors.actor_id,
 *            created from the template (the service's actor) on first use;
 *   system   the one system in which a connected host registered that actor
 *            (two systems registering it: FAILED_PRECONDITION, none:
 *            UNAVAILABLE, not dispatched, as Invoke answers);
 *   action   the rpc's name;
 *   reply    the action's output message bytes; no reply (Noop) is the empty
 *            message (google.protobuf.Empty, or the output type with every
 *            field unset); a reply of another type than the rpc's output is
 *            INTERNAL, naming both;
 *   errors   as Invoke's (the host's own code and message included).
 *
 * A plain call is a synchronous Invoke in every other respect: the same
 * deadline, cancellation, access policy (the caller needs the right to
 * invoke that action of that actor), routing in a cluster and drain.
 *
 * Lifecycle of one call (the gwi_ucall of server.c, adopted):
 *   arrives unregistered -- gwi_generic_take finds the method --> RECEIVING
 *   RECEIVING -- request message --> gwi_plain_handle --> the runtime
 *   the runtime's done -------------> REPLYING --> freed (server.c)
 *
 * Anything else that arrives unregistered is answered UNIMPLEMENTED at
 * once by server.c; grpc.reflection goes to reflection.c.
 */
#include "server_int.h"

#include "edge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "cshare.h"
#include "log.h"

#define TYPE_PREFIX "type.googleapis.com/"

static const char REFL_V1[] = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
static const char REFL_V1ALPHA[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

static bool slice_is(grpc_slice s, const char *lit, size_t n)
{
	return GRPC_SLICE_LENGTH(s) == n && !memcmp(GRPC_SLICE_START_PTR(s), lit, n);
}

bool gwi_generic_take(gw_server *s, gwi_cq *q, gwi_group *g, grpc_call *call,
                      const grpc_call_details *d, grpc_metadata_array *md)
{
	if (!(g->roles & GWI_ROLE_CLIENT))
		return false;
	bool v1 = slice_is(d->method, REFL_V1, sizeof REFL_V1 - 1);
	if (v1 || slice_is(d->method, REFL_V1ALPHA, sizeof REFL_V1ALPHA - 1)) {
		gwi_reflection_start(s, g, call, md, !v1);
		return true;
	}
	if (!s->o.contracts)
		return false;
	gw_contract_method *m = malloc(sizeof *m);
	if (!m)
		return false; /* answered UNIMPLEMENTED: better than nothing */
	if (gw_contracts_method(s->o.contracts, (const char *)GRPC_SLICE_START_PTR(d->method),
	                        GRPC_SLICE_LENGTH(d->method), m) != GW_OK) {
		free(m);
		return false;
	}
	gwi_ucall_adopt(s, q, call, d->deadline, md, GWI_M_PLAIN, m);
	return true;
}

static int64_t deadline_ms(gpr_timespec d)
{
	if (gpr_time_cmp(d, gpr_inf_future(d.clock_type)) == 0)
		return 0;
	gpr_timespec rem = gpr_time_sub(d, gpr_now(d.clock_type));
	int64_t ms = (int64_t)rem.tv_sec * 1000 + rem.tv_nsec / 1000000;
	if (ms < 0)
		ms = 0;
	return spawn_now_ns() / 1000000 + ms + (ms == 0);
}

/* string_field finds the last occurrence of string field num at the top
 * level of the serialized message data[0..len). Returns 1 (found: *val,
 * *vlen), 0 (absent) or -1 (malformed). */
static int string_field(const uint8_t *data, size_t len, uint32_t num, const uint8_t **val,
                        size_t *vlen)
{
	const uint8_t *p = data, *end = data + len;
	int found = 0;
	while (p < end) {
		uint64_t key = 0, v = 0;
		int sh = 0;
		bool done = false;
		while (p < end && sh < 64 && !done) {
			key |= (uint64_t)(*p & 0x7f) << sh;
			done = !(*p++ & 0x80);
			sh += 7;
		}
		if (!done)
			return -1;
		int wt = (int)(key & 7);
		if (wt == 0) {
			done = false;
			for (sh = 0; p < end && sh < 64 && !done; sh += 7)
				done = !(*p++ & 0x80);
			if (!done)
				return -1;
		} else if (wt == 1 || wt == 5) {
			size_t n = wt == 1 ? 8 : 4;
			if ((size_t)(end - p) < n)
				return -1;
			p += n;
		} else if (wt == 2) {
			done = false;
			for (sh = 0; p < end && sh < 64 && !done; sh += 7) {
				v |= (uint64_t)(*p & 0x7f) << sh;
				done = !(*p++ & 0x80);
			}
			if (!done || v > (uint64_t)(end - p))
				return -1;
			if ((key >> 3) == num) {
				*val = p;
				*vlen = (size_t)v;
				found = 1;
			}
			p += v;
		} else {
			return -1;
		}
	}
	return found;
}

struct gwi_sysix {
	pthread_mutex_t mu;
	bool valid;    /* ix was built (gen is meaningful) */
	uint64_t gen;  /* gw_registry_served_gen read before ix was built */
	gw_typeix *ix; /* owned */
};

struct gwi_sysix *gwi_sysix_create(void)
{
	struct gwi_sysix *x = calloc(1, sizeof *x);
	if (x)
		pthread_mutex_init(&x->mu, NULL);
	return x;
}

void gwi_sysix_destroy(struct gwi_sysix *x)
{
	if (!x)
		return;
	gw_typeix_free(x->ix);
	pthread_mutex_destroy(&x->mu);
	free(x);
}

/* local_system: find_system over the hosts connected here: the index,
 * rebuilt first when a binding came or went since it was built (the
 * generation is read before the list, so the list is at least as new). */
static gw_err local_system(gw_server *s, const char *actor, char *out, size_t n, char *why,
                           size_t wn)
{
	struct gwi_sysix *x = s->sysix;
	pthread_mutex_lock(&x->mu);
	uint64_t gen = gw_registry_served_gen(s->reg);
	if (!x->valid || gen != x->gen) {
		char *served = NULL;
		gw_typeix *ix = NULL;
		if (gw_registry_served(s->reg, &served) == GW_OK) {
			size_t nl = 0;
			for (char *p = served; *p; p++)
				nl += *p == '\n';
			const char **lines = calloc(nl + 1, sizeof *lines);
			nl = 0;
			for (char *save = NULL, *t = lines ? strtok_r(served, "\n", &save) : NULL;
			     t; t = strtok_r(NULL, "\n", &save))
				lines[nl++] = t;
			ix = lines ? gw_typeix_build(lines, nl) : NULL;
			free(lines);
		}
		free(served);
		if (!ix) {
			pthread_mutex_unlock(&x->mu);
			return GW_ENOMEM;
		}
		gw_typeix_free(x->ix);
		x->ix = ix;
		x->gen = gen;
		x->valid = true;
	}
	gw_err err = gw_typeix_find(x->ix, actor, out, n, why, wn);
	pthread_mutex_unlock(&x->mu);
	return err == GW_ENOTFOUND ? GW_EUNAVAIL : err;
}

/* find_system: the system in which the actor type is served now: in a
 * cluster, by any member of the view (cluster/cshare.h), else (or when
 * the view does not show it yet: a host that registered here appears with
 * the next heartbeat) by a host connected here. Both are lookups in an
 * index. Returns GW_OK (out set), GW_EUNAVAIL (no host registered it),
 * GW_ECONFIG (several systems: why names two) or GW_ENOMEM. */
static gw_err find_system(gw_server *s, const char *actor, char *out, size_t n, char *why,
                          size_t wn)
{
	if (s->o.cshare) {
		gw_err e = gw_cshare_system(s->o.cshare, actor, out, n, why, wn);
		if (e != GW_ENOTFOUND)
			return e;
	}
	return local_system(s, actor, out, n, why, wn);
}

/* plain_done answers a plain call from the invocation's outcome. */
static void plain_done(gw_inv *inv)
{
	gwi_ucall *c = inv->user;
	const gw_contract_method *m = c->ext;
	atomic_store(&c->answered, true);
	if (inv->err != GW_OK) {
		grpc_status_code code = inv->err == GW_EHOST ? (grpc_status_code)inv->host_code
		                                             : gw_err_status(inv->err);
		c->not_dispatched = inv->err == GW_EUNAVAIL && inv->not_dispatched;
		gwi_ucall_reply(c, code,
		                inv->msg[0] || inv->host_message ? inv->msg : gw_strerror(inv->err),
		                NULL);
		return;
	}
	if (!inv->reply) {
		gwi_ucall_reply_raw(c, GRPC_STATUS_OK, NULL, (const uint8_t *)"", 0);
		return;
	}
	const char *url = gw_blob_type(inv->reply);
	const char *slash = strrchr(url, '/');
	const char *type = slash ? slash + 1 : url;
	if (strcmp(type, m->output)) {
		char why[2400];
		snprintf(why, sizeof why,
		         "actor %.300s replied to %.300s with a %.300s, the rpc returns %.300s",
		         m->actor, m->action, type, m->output);
		gwi_ucall_reply(c, GRPC_STATUS_INTERNAL, why, NULL);
		return;
	}
	gwi_ucall_reply_raw(c, GRPC_STATUS_OK, NULL, gw_blob_value(inv->reply), inv->reply->len);
}

grpc_status_code gw_edge_contract_target(gw_server *s, const gw_contract_method *m,
                                         const uint8_t *body, size_t len, char *name, char *system,
                                         size_t sn, char *why, size_t wn, bool *not_dispatched)
{
	*not_dispatched = false;
	snprintf(name, GW_CONTRACTS_NAME_BYTES, "%s", m->actor);
	if (m->kind == GW_KIND_UNNAMED) {
		const uint8_t *v = NULL;
		size_t vl = 0, off = 0;
		int got = m->id_field ? string_field(body, len, m->id_field, &v, &vl) : 0;
		const char *bad = got == 1 ? gw_wc_utf8(v, vl, false, &off) : NULL;
		if (!m->id_field) {
			snprintf(why, wn,
			         "actor %s is UNNAMED but %s has no string field marked "
			         "(spawn.actors.actor_id) naming the instance",
			         m->actor, m->input);
			return GRPC_STATUS_FAILED_PRECONDITION;
		}
		if (got < 0) {
			snprintf(why, wn, "request is not a valid %s", m->input);
			return GRPC_STATUS_INVALID_ARGUMENT;
		}
		if (got == 0 || vl == 0) {
			snprintf(why, wn,
			         "field %u of %s (spawn.actors.actor_id) must name the instance",
			         m->id_field, m->input);
			return GRPC_STATUS_INVALID_ARGUMENT;
		}
		if (bad || vl > s->o.limits.name_bytes || vl >= GW_CONTRACTS_NAME_BYTES) {
			snprintf(why, wn, "the instance name (field %u of %s) %s", m->id_field,
			         m->input, bad ? bad : "is over the name length limit");
			return GRPC_STATUS_INVALID_ARGUMENT;
		}
		memcpy(name, v, vl);
		name[vl] = 0;
	}
	gw_err e = find_system(s, m->actor, system, sn, why, wn);
	if (e == GW_EUNAVAIL) {
		*not_dispatched = true;
		snprintf(why, wn, "no host has registered actor %s; retry", m->actor);
		return GRPC_STATUS_UNAVAILABLE;
	}
	if (e == GW_ECONFIG)
		return GRPC_STATUS_FAILED_PRECONDITION;
	if (e) {
		snprintf(why, wn, "out of memory");
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	return GRPC_STATUS_OK;
}

bool gw_edge_request(gw_inv *inv, const char *system, const char *name, const char *ref,
                     const char *action, const char *url_type, const uint8_t *body, size_t len)
{
	spawn_arena *a = &inv->arena;
	bool full = strchr(url_type, '/') != NULL;
	Spawn__InvocationRequest *rq = spawn_arena_alloc(a, sizeof *rq);
	Spawn__Actors__ActorSystem *sys = rq ? spawn_arena_alloc(a, sizeof *sys) : NULL;
	Spawn__Actors__Actor *act = sys ? spawn_arena_alloc(a, sizeof *act) : NULL;
	Spawn__Actors__ActorId *id = act ? spawn_arena_alloc(a, sizeof *id) : NULL;
	Google__Protobuf__Any *any = id ? spawn_arena_alloc(a, sizeof *any) : NULL;
	char *url = any ? spawn_arena_alloc(a, sizeof TYPE_PREFIX + strlen(url_type)) : NULL;
	uint8_t *value = url ? spawn_arena_alloc(a, len ? len : 1) : NULL;
	if (!value)
		return false;
	spawn__invocation_request__init(rq);
	spawn__actors__actor_system__init(sys);
	spawn__actors__actor__init(act);
	spawn__actors__actor_id__init(id);
	google__protobuf__any__init(any);
	sprintf(url, "%s%s", full ? "" : TYPE_PREFIX, url_type);
	if (len)
		memcpy(value, body, len);
	sys->name = spawn_arena_strdup(a, system);
	id->name = spawn_arena_strdup(a, name);
	id->system = sys->name;
	act->id = id;
	rq->system = sys;
	rq->actor = act;
	rq->action_name = spawn_arena_strdup(a, action);
	if (ref)
		rq->register_ref = spawn_arena_strdup(a, ref);
	any->type_url = url;
	any->value.data = value;
	any->value.len = len;
	rq->payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	rq->value = any;
	if (!sys->name || !id->name || !rq->action_name || (ref && !rq->register_ref))
		return false;
	inv->req = rq;
	return true;
}

void gwi_plain_handle(gwi_ucall *c)
{
	gw_server *s = c->srv;
	const gw_contract_method *m = c->ext;
	char why[1200];
	if (m->streaming) {
		snprintf(why, sizeof why,
		         "%s.%s streams: actors answer unary calls only (actions are unary)",
		         m->actor, m->action);
		gwi_ucall_reply(c, GRPC_STATUS_UNIMPLEMENTED, why, NULL);
		return;
	}
	gw_inv *inv = gw_inv_create(0);
	if (!inv) {
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	grpc_byte_buffer_reader r;
	if (!grpc_byte_buffer_reader_init(&r, c->payload)) {
		gw_inv_destroy(inv);
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, "unreadable request", NULL);
		return;
	}
	grpc_slice whole = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	grpc_byte_buffer_destroy(c->payload);
	c->payload = NULL;
	const uint8_t *body = GRPC_SLICE_START_PTR(whole);
	size_t len = GRPC_SLICE_LENGTH(whole);
	/* The actor's name: the service's, or the instance's from the request. */
	char name[GW_CONTRACTS_NAME_BYTES];
	char system[GW_WC_NAME_BYTES + 1];
	bool not_dispatched = false;
	grpc_status_code code = gw_edge_contract_target(
	    s, m, body, len, name, system, sizeof system, why, sizeof why, &not_dispatched);
	c->not_dispatched = not_dispatched;
	const char *ref = m->kind == GW_KIND_UNNAMED ? m->actor : NULL;
	/* The principal goes with the call to the owner when this member
	 * forwards it (ForwardRequest.principal), as for Invoke. */
	if (code == GRPC_STATUS_OK && s->o.access)
		code = gwi_authorize_invoke(c, system, name, ref, m->action, why, sizeof why,
		                            &inv->arena, &inv->principal);
	if (code == GRPC_STATUS_OK &&
	    !gw_edge_request(inv, system, name, ref, m->action, m->input, body, len)) {
		code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(why, sizeof why, "out of memory");
	}
	grpc_slice_unref(whole);
	if (code != GRPC_STATUS_OK) {
		gw_inv_destroy(inv);
		gwi_ucall_reply(c, code, why, NULL);
		return;
	}
	gwi_trace_from_md(&c->md, inv->req, &inv->arena, s->o.limits.metadata_entries);
	inv->deadline_ms = deadline_ms(c->deadline);
	inv->user = c;
	inv->done = plain_done;
	/* As a synchronous Invoke (server.c, run_invoke): from here the call
	 * frees inv; a client already gone cancels it first. */
	atomic_store(&c->inv, inv);
	if (atomic_load(&c->gone))
		gw_runtime_cancel(s->rt, inv);
	gw_runtime_invoke(s->rt, inv);
}

void gwi_peer_contracts_handle(gwi_ucall *c)
{
	char peer[256], why[300];
	grpc_status_code code = gwi_authorize_peer(c, peer, sizeof peer, why, sizeof why);
	if (code != GRPC_STATUS_OK) {
		gwi_ucall_reply(c, code, why, NULL);
		return;
	}
	spawn_arena a;
	spawn_arena_init(&a, 0);
	ProtobufCMessage *m = NULL;
	if (gwi_unpack_checked(c->srv, &spawn__gateway__v1__peer_contracts_request__descriptor,
	                       c->payload, &a, &m, why, sizeof why)) {
		spawn_arena_fini(&a);
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
		return;
	}
	spawn_arena_fini(&a);
	uint8_t *set = NULL;
	size_t len = 0;
	uint64_t h = 0;
	if (!c->srv->o.contracts) {
		gwi_ucall_reply(c, GRPC_STATUS_UNIMPLEMENTED, "this member keeps no contracts",
		                NULL);
		return;
	}
	if (gw_contracts_export(c->srv->o.contracts, &set, &len, &h)) {
		gwi_ucall_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
		                "out of memory exporting this member's contracts", NULL);
		return;
	}
	char hex[17];
	snprintf(hex, sizeof hex, "%016" PRIx64, h);
	Spawn__Gateway__V1__PeerContractsReply r = SPAWN__GATEWAY__V1__PEER_CONTRACTS_REPLY__INIT;
	r.files.data = set;
	r.files.len = len;
	r.hash = hex;
	gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &r.base);
	free(set);
}
