/* spawnctl.c - the command-line tool for the gateway (docs/spawnctl.md):
 * invoke actors with JSON through server reflection, read and restore
 * their state, list what the gateway serves, key rotation, members,
 * forget. Output: aligned tables for people, --output json for scripts.
 * Exit codes: 0, the gRPC status code of the failed call (1..16), or
 * CTL_EXIT_* (ctl.h) for the tool's own failures. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "spawn/gateway/v1/gateway.pb-c.h"

#define ADMIN   "/spawn.gateway.v1.Admin/"
#define GATEWAY "/spawn.gateway.v1.ActorGateway/"

/* What the command line asked. */
typedef struct args {
	const char *gateway, *ca, *cert, *key, *server_name, *token_file;
	const char *output, *parent, *system, *actor, *page_token;
	long timeout_s, page_size, delay_s;
	unsigned long long revision;
	bool all;
	char **pos; /* borrowed from argv: the command and its operands */
	int npos;
} args;

static const char *const code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static const char *code_name(int code)
{
	if (code >= 0 && code <= 16)
		return code_names[code];
	return code == CTL_EXIT_USAGE ? "USAGE" : code == CTL_EXIT_DATA ? "BAD_INPUT" : "LOCAL";
}

static void usage(FILE *f)
{
	fputs("usage: spawnctl [options] COMMAND [ARGS]\n"
	      "\n"
	      "Commands:\n"
	      "  invoke SYSTEM ACTOR ACTION [JSON]  call an action; JSON of its input type\n"
	      "                                     (default {}), found by server reflection\n"
	      "  get-state SYSTEM ACTOR             the actor's state as JSON (--revision R)\n"
	      "  list [systems|actors|hosts|instances]\n"
	      "                                     what the gateway serves (default systems)\n"
	      "  revisions SYSTEM ACTOR             the revisions kept, newest first\n"
	      "  restore SYSTEM ACTOR REVISION      make revision REVISION the state again\n"
	      "  keys status                        progress of the key rotation\n"
	      "  members                            the cluster's members (or this gateway)\n"
	      "  forget SYSTEM ACTOR                erase an actor completely\n"
	      "  schedules list                     scheduled invocations not yet delivered\n"
	      "                                     (--system, --actor)\n"
	      "  schedules cancel ID                delete one before it is delivered\n"
	      "\n"
	      "Connection:\n"
	      "  --gateway ADDR      the gateway (default $SPAWN_GATEWAY, else 127.0.0.1:8090)\n"
	      "  --ca FILE           CA of the gateway's certificate: TLS (or $SPAWN_TLS_CA)\n"
	      "  --cert FILE         client certificate: mutual TLS (or $SPAWN_TLS_CERT)\n"
	      "  --key FILE          its private key (or $SPAWN_TLS_KEY)\n"
	      "  --server-name NAME  the name the gateway's certificate carries\n"
	      "                      (or $SPAWN_TLS_SERVER_NAME)\n"
	      "  --token-file FILE   a bearer token, read from FILE (or $SPAWN_TOKEN)\n"
	      "  --timeout SECONDS   deadline of each call (default 10)\n"
	      "\n"
	      "Output and selection:\n"
	      "  --output FORMAT     table, for people (default), or json, for scripts\n"
	      "  --parent TEMPLATE   invoke: the UNNAMED template of the instance ACTOR\n"
	      "  --delay SECONDS     invoke: schedule the call that far ahead (answered at once)\n"
	      "  --revision R        get-state: a kept revision instead of the current state\n"
	      "  --system NAME       list, schedules list: only this system's items\n"
	      "  --actor NAME        schedules list: only those to this actor (with --system)\n"
	      "  --page-size N       list, schedules list: items per page (1..1000, default 100)\n"
	      "  --page-token T      list, schedules list: the page after the one that gave T\n"
	      "  --all               list, schedules list: every page\n"
	      "\n"
	      "Exit status: 0 on success; the gRPC status code of a failed call (5 NOT_FOUND,\n"
	      "7 PERMISSION_DENIED, 14 UNAVAILABLE, 16 UNAUTHENTICATED, ...); 64 a bad\n"
	      "command line; 65 input that does not parse; 70 a local failure.\n",
	      f);
}

/* ---- small helpers ----------------------------------------------------------- */

static json_t *jstr(const char *s)
{
	return json_string(s ? s : "");
}

static json_t *tags_json(size_t n, Spawn__Gateway__V1__ActorStateView__TagsEntry **t)
{
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, t[i]->key ? t[i]->key : "", jstr(t[i]->value));
	return o;
}

static bool parse_u64(const char *s, unsigned long long *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		return false;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* read_token reads the token file (one line; trailing newline dropped)
 * into *out (caller frees). */
static int read_token(const char *path, char **out, ctl_err *e)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return ctl_fail(e, CTL_EXIT_LOCAL, "cannot read --token-file %s: %s", path,
		                strerror(errno));
	char buf[4097];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	if (n == sizeof buf - 1)
		return ctl_fail(e, CTL_EXIT_LOCAL, "--token-file %s: longer than 4096 bytes", path);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	if (!n)
		return ctl_fail(e, CTL_EXIT_LOCAL, "--token-file %s is empty", path);
	if (!(*out = strdup(buf)))
		return ctl_fail(e, CTL_EXIT_LOCAL, "out of memory");
	return 0;
}

static Spawn__Gateway__V1__ActorRef ref_of(const char *system, const char *actor)
{
	Spawn__Gateway__V1__ActorRef r = SPAWN__GATEWAY__V1__ACTOR_REF__INIT;
	r.system = (char *)system;
	r.actor = (char *)actor;
	return r;
}

/* state_json: an ActorStateView as JSON; the state through the pool (an
 * unresolvable type is shown by its URL and size, with a note). */
static json_t *state_json(ctl *x, const Spawn__Gateway__V1__ActorStateView *v)
{
	json_t *o = json_object();
	json_object_set_new(o, "system", jstr(v->id ? v->id->system : ""));
	json_object_set_new(o, "actor", jstr(v->id ? v->id->name : ""));
	json_object_set_new(o, "revision", json_integer((json_int_t)v->revision));
	json_object_set_new(o, "active", json_boolean(v->active));
	json_object_set_new(o, "dirty", json_boolean(v->dirty));
	json_object_set_new(o, "queued", json_integer(v->queued));
	json_object_set_new(o, "tags", tags_json(v->n_tags, v->tags));
	if (!v->state) {
		json_object_set_new(o, "state", json_null());
		return o;
	}
	ctl_err e;
	json_t *s = ctl_any_json(x, v->state->type_url ? v->state->type_url : "",
	                         v->state->value.data, v->state->value.len, &e);
	if (!s) {
		fprintf(stderr,
		        "spawnctl: the state's type is not known by reflection (%s): shown "
		        "by its type URL and size\n",
		        e.msg);
		s = json_object();
		json_object_set_new(s, "@type", jstr(v->state->type_url));
		json_object_set_new(s, "bytes", json_integer((json_int_t)v->state->value.len));
	}
	json_object_set_new(o, "state", s);
	return o;
}

/* ---- commands ------------------------------------------------------------------ */

/* find_service: the actor service of the contracts whose simple name is
 * actor (caller frees *svc). */
static int find_service(ctl *x, const char *actor, char **svc, ctl_err *e)
{
	char **names = NULL;
	size_t n = 0;
	int rc = ctl_refl_services(x, &names, &n, e);
	if (rc)
		return rc;
	*svc = NULL;
	size_t found = 0;
	for (size_t i = 0; i < n; i++) {
		const char *dot = strrchr(names[i], '.');
		const char *simple = dot ? dot + 1 : names[i];
		if (strcmp(simple, actor) == 0 && strncmp(names[i], "spawn.gateway.", 14) != 0 &&
		    strncmp(names[i], "grpc.", 5) != 0) {
			if (!found++)
				*svc = strdup(names[i]);
		}
	}
	ctl_strv_free(names, n);
	if (!found)
		return ctl_fail(
		    e, GRPC_STATUS_NOT_FOUND,
		    "no contract the gateway serves describes actor '%s' (its host sends "
		    "none, and the gateway has no --descriptors for it)",
		    actor);
	if (found > 1) {
		free(*svc);
		return ctl_fail(e, GRPC_STATUS_FAILED_PRECONDITION,
		                "%zu contract services are named '%s': ambiguous", found, actor);
	}
	return *svc ? 0 : ctl_fail(e, CTL_EXIT_LOCAL, "out of memory");
}

static int cmd_invoke(ctl *x, const args *a, ctl_err *e)
{
	if (a->npos < 4 || a->npos > 5)
		return ctl_fail(e, CTL_EXIT_USAGE, "invoke SYSTEM ACTOR ACTION [JSON]");
	const char *system = a->pos[1], *actor = a->pos[2], *action = a->pos[3];
	const char *body = a->npos == 5 ? a->pos[4] : "{}";
	char *svc = NULL;
	int rc = find_service(x, a->parent ? a->parent : actor, &svc, e);
	if (rc)
		return rc;
	rc = ctl_refl_symbol(x, svc, e);
	char path[1200];
	snprintf(path, sizeof path, "/%s/%s", svc, action);
	gw_contract_method m;
	if (!rc && gw_contracts_method(x->contracts, path, strlen(path), &m) != GW_OK)
		rc = ctl_fail(e, GRPC_STATUS_NOT_FOUND,
		              "actor '%s' has no action '%s' in its contract %s",
		              a->parent ? a->parent : actor, action, svc);
	free(svc);
	if (rc)
		return rc;
	uint8_t *bin = NULL;
	size_t blen = 0;
	char why[512];
	if (spawn_pbjson_from_json(x->pool, m.input, body, strlen(body), &bin, &blen, why,
	                           sizeof why) != SPAWN_PBJSON_OK)
		return ctl_fail(e, CTL_EXIT_DATA, "the JSON is not a %s: %s", m.input, why);
	char url[GW_CONTRACTS_NAME_BYTES + 32];
	snprintf(url, sizeof url, "type.googleapis.com/%s", m.input);
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = url;
	any.value.data = bin;
	any.value.len = blen;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = (char *)system;
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = (char *)actor;
	id.system = (char *)system;
	Spawn__Actors__Actor act = SPAWN__ACTORS__ACTOR__INIT;
	act.id = &id;
	Spawn__InvocationRequest rq = SPAWN__INVOCATION_REQUEST__INIT;
	rq.system = &sys;
	rq.actor = &act;
	rq.action_name = (char *)action;
	rq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	rq.value = &any;
	if (a->parent)
		rq.register_ref = (char *)a->parent;
	if (a->delay_s)
		rq.scheduled_to = spawn_wall_ms() + (int64_t)a->delay_s * 1000;
	ProtobufCMessage *out = NULL;
	rc = ctl_unary(x, GATEWAY "Invoke", &rq.base, &spawn__invocation_response__descriptor, &out,
	               e);
	free(bin);
	if (rc)
		return rc;
	Spawn__InvocationResponse *r = (Spawn__InvocationResponse *)out;
	json_t *j = NULL;
	if (r->payload_case == SPAWN__INVOCATION_RESPONSE__PAYLOAD_VALUE && r->value)
		j = ctl_any_json(x, r->value->type_url ? r->value->type_url : "",
		                 r->value->value.data, r->value->value.len, e);
	else
		j = json_object(); /* no reply: google.protobuf.Empty */
	protobuf_c_message_free_unpacked(out, NULL);
	if (!j)
		return e->code;
	ctl_print_json(j);
	json_decref(j);
	return 0;
}

static int print_view(ctl *x, ProtobufCMessage *out)
{
	json_t *j = state_json(x, (Spawn__Gateway__V1__ActorStateView *)out);
	protobuf_c_message_free_unpacked(out, NULL);
	if (x->json)
		ctl_print_json(j);
	else
		ctl_print_fields(j);
	json_decref(j);
	return 0;
}

static int cmd_get_state(ctl *x, const args *a, ctl_err *e)
{
	if (a->npos != 3)
		return ctl_fail(e, CTL_EXIT_USAGE, "get-state SYSTEM ACTOR [--revision R]");
	Spawn__Gateway__V1__ActorRef ref = ref_of(a->pos[1], a->pos[2]);
	Spawn__Gateway__V1__GetStateRequest rq = SPAWN__GATEWAY__V1__GET_STATE_REQUEST__INIT;
	rq.actor = &ref;
	rq.revision = a->revision;
	ProtobufCMessage *out = NULL;
	int rc = ctl_unary(x, ADMIN "GetState", &rq.base,
	                   &spawn__gateway__v1__actor_state_view__descriptor, &out, e);
	return rc ? rc : print_view(x, out);
}

static int cmd_restore(ctl *x, const args *a, ctl_err *e)
{
	unsigned long long rev;
	if (a->npos != 4)
		return ctl_fail(e, CTL_EXIT_USAGE, "restore SYSTEM ACTOR REVISION");
	if (!parse_u64(a->pos[3], &rev) || rev == 0)
		return ctl_fail(e, CTL_EXIT_USAGE, "REVISION must be a number from 1");
	Spawn__Gateway__V1__ActorRef ref = ref_of(a->pos[1], a->pos[2]);
	Spawn__Gateway__V1__RestoreRequest rq = SPAWN__GATEWAY__V1__RESTORE_REQUEST__INIT;
	rq.actor = &ref;
	rq.revision = rev;
	ProtobufCMessage *out = NULL;
	int rc = ctl_unary(x, ADMIN "Restore", &rq.base,
	                   &spawn__gateway__v1__actor_state_view__descriptor, &out, e);
	return rc ? rc : print_view(x, out);
}

static int cmd_revisions(ctl *x, const args *a, ctl_err *e)
{
	if (a->npos != 3)
		return ctl_fail(e, CTL_EXIT_USAGE, "revisions SYSTEM ACTOR");
	Spawn__Gateway__V1__ActorRef ref = ref_of(a->pos[1], a->pos[2]);
	ProtobufCMessage *out = NULL;
	int rc = ctl_unary(x, ADMIN "ListRevisions", &ref.base,
	                   &spawn__gateway__v1__revision_list__descriptor, &out, e);
	if (rc)
		return rc;
	Spawn__Gateway__V1__RevisionList *l = (Spawn__Gateway__V1__RevisionList *)out;
	json_t *arr = json_array();
	for (size_t i = 0; i < l->n_revisions; i++)
		json_array_append_new(arr, json_integer((json_int_t)l->revisions[i]));
	protobuf_c_message_free_unpacked(out, NULL);
	if (x->json) {
		json_t *o = json_pack("{s:o}", "revisions", arr);
		ctl_print_json(o);
		json_decref(o);
	} else {
		puts("REVISION");
		for (size_t i = 0; i < json_array_size(arr); i++)
			printf("%" JSON_INTEGER_FORMAT "\n",
			       json_integer_value(json_array_get(arr, i)));
		json_decref(arr);
	}
	return 0;
}

static int cmd_forget(ctl *x, const args *a, ctl_err *e)
{
	if (a->npos != 3)
		return ctl_fail(e, CTL_EXIT_USAGE, "forget SYSTEM ACTOR");
	Spawn__Gateway__V1__ActorRef ref = ref_of(a->pos[1], a->pos[2]);
	ProtobufCMessage *out = NULL;
	int rc = ctl_unary(x, ADMIN "Forget", &ref.base,
	                   &spawn__gateway__v1__forget_result__descriptor, &out, e);
	if (rc)
		return rc;
	Spawn__Gateway__V1__ForgetResult *f = (Spawn__Gateway__V1__ForgetResult *)out;
	json_t *o = json_pack(
	    "{s:I,s:I,s:I,s:I,s:b,s:b,s:I}", "state_rows", (json_int_t)f->state_rows,
	    "history_revisions", (json_int_t)f->history_revisions, "instance_records",
	    (json_int_t)f->instance_records, "schedules", (json_int_t)f->schedules, "outbox",
	    f->outbox, "was_active", f->was_active, "calls_aborted", (json_int_t)f->calls_aborted);
	protobuf_c_message_free_unpacked(out, NULL);
	if (x->json)
		ctl_print_json(o);
	else
		ctl_print_fields(o);
	json_decref(o);
	return 0;
}

static json_t *failures_json(size_t n, Spawn__Gateway__V1__MemberFailure **f)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(
		    arr, json_pack("{s:o,s:o,s:s,s:o}", "member_id", jstr(f[i]->member_id),
		                   "address", jstr(f[i]->address), "code", code_name(f[i]->code),
		                   "message", jstr(f[i]->message)));
	return arr;
}

static void warn_unanswered(json_t *arr)
{
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *f = json_array_get(arr, i);
		fprintf(stderr, "spawnctl: member %s (%s) did not answer: %s: %s\n",
		        json_string_value(json_object_get(f, "member_id")),
		        json_string_value(json_object_get(f, "address")),
		        json_string_value(json_object_get(f, "code")),
		        json_string_value(json_object_get(f, "message")));
	}
}

static int cmd_keys(ctl *x, const args *a, ctl_err *e)
{
	if (a->npos != 2 || strcmp(a->pos[1], "status") != 0)
		return ctl_fail(e, CTL_EXIT_USAGE, "keys status");
	Spawn__Gateway__V1__KeyRotationRequest rq = SPAWN__GATEWAY__V1__KEY_ROTATION_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	int rc = ctl_unary(x, ADMIN "KeyRotation", &rq.base,
	                   &spawn__gateway__v1__key_rotation_status__descriptor, &out, e);
	if (rc)
		return rc;
	Spawn__Gateway__V1__KeyRotationStatus *k = (Spawn__Gateway__V1__KeyRotationStatus *)out;
	json_t *o = json_pack("{s:b,s:b,s:I,s:I,s:I}", "enabled", k->enabled, "done", k->done,
	                      "rewritten", (json_int_t)k->rewritten, "remaining",
	                      (json_int_t)k->remaining, "failed", (json_int_t)k->failed);
	json_t *mem = json_array();
	for (size_t i = 0; i < k->n_members; i++) {
		const Spawn__Gateway__V1__KeyRotationStatus *s = k->members[i]->status;
		json_array_append_new(
		    mem, json_pack("{s:o,s:o,s:b,s:b,s:I,s:I,s:I}", "member_id",
		                   jstr(k->members[i]->member_id), "address",
		                   jstr(k->members[i]->address), "enabled", s && s->enabled, "done",
		                   s && s->done, "rewritten", (json_int_t)(s ? s->rewritten : 0),
		                   "remaining", (json_int_t)(s ? s->remaining : 0), "failed",
		                   (json_int_t)(s ? s->failed : 0)));
	}
	json_t *un = failures_json(k->n_unanswered, k->unanswered);
	protobuf_c_message_free_unpacked(out, NULL);
	if (x->json) {
		json_object_set_new(o, "members", mem);
		json_object_set_new(o, "unanswered", un);
		ctl_print_json(o);
	} else {
		ctl_print_fields(o);
		if (json_array_size(mem)) {
			static const ctl_col cols[] = {
			    {"MEMBER", "member_id"},    {"ADDRESS", "address"},
			    {"ENABLED", "enabled"},     {"DONE", "done"},
			    {"REWRITTEN", "rewritten"}, {"REMAINING", "remaining"},
			    {"FAILED", "failed"}};
			putchar('\n');
			ctl_print_table(mem, cols, sizeof cols / sizeof *cols);
		}
		warn_unanswered(un);
		json_decref(mem);
		json_decref(un);
	}
	json_decref(o);
	return 0;
}

static int cmd_members(ctl *x, const args *a, ctl_err *e)
{
	if (a->npos != 1)
		return ctl_fail(e, CTL_EXIT_USAGE, "members");
	Spawn__Gateway__V1__MembersRequest rq = SPAWN__GATEWAY__V1__MEMBERS_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	int rc = ctl_unary(x, ADMIN "Members", &rq.base,
	                   &spawn__gateway__v1__members_reply__descriptor, &out, e);
	if (rc)
		return rc;
	Spawn__Gateway__V1__MembersReply *r = (Spawn__Gateway__V1__MembersReply *)out;
	json_t *mem = json_array();
	for (size_t i = 0; i < r->n_members; i++) {
		const Spawn__Gateway__V1__MemberInfo *m = r->members[i];
		json_t *served = json_array();
		for (size_t k = 0; k < m->n_served; k++)
			json_array_append_new(served, jstr(m->served[k]));
		json_array_append_new(mem, json_pack("{s:o,s:o,s:o,s:b,s:o}", "id", jstr(m->id),
		                                     "address", jstr(m->address), "status",
		                                     jstr(m->status), "self", m->self, "served",
		                                     served));
	}
	json_t *o = json_pack("{s:b,s:I,s:o}", "cluster", r->cluster, "view_version",
	                      (json_int_t)r->view_version, "members", mem);
	protobuf_c_message_free_unpacked(out, NULL);
	if (x->json) {
		ctl_print_json(o);
	} else {
		static const ctl_col cols[] = {{"ID", "id"},
		                               {"ADDRESS", "address"},
		                               {"STATUS", "status"},
		                               {"SELF", "self"},
		                               {"SERVED", "served"}};
		ctl_print_table(mem, cols, sizeof cols / sizeof *cols);
	}
	json_decref(o);
	return 0;
}

/* ---- list -------------------------------------------------------------------- */

static const char *kind_name(int k)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&spawn__actors__kind__descriptor, k);
	return v ? v->name : "UNKNOWN";
}

/* list_items appends the items of one page r of kind to arr, each naming
 * its member. */
static void list_items(json_t *arr, const Spawn__Gateway__V1__ListReply *r, int kind)
{
	size_t n = 0;
	for (size_t i = 0;; i++) {
		json_t *o = NULL;
		switch (kind) {
		case SPAWN__GATEWAY__V1__LIST_KIND__LIST_SYSTEMS:
			n = r->n_systems;
			if (i < n)
				o = json_pack("{s:o,s:I,s:I,s:I}", "system",
				              jstr(r->systems[i]->name), "actor_types",
				              (json_int_t)r->systems[i]->actor_types, "hosts",
				              (json_int_t)r->systems[i]->hosts, "active",
				              (json_int_t)r->systems[i]->active);
			break;
		case SPAWN__GATEWAY__V1__LIST_KIND__LIST_ACTORS:
			n = r->n_actors;
			if (i < n) {
				const Spawn__Gateway__V1__ActorTypeInfo *t = r->actors[i];
				json_t *acts = json_array();
				for (size_t k = 0; k < t->n_actions; k++)
					json_array_append_new(acts, jstr(t->actions[k]));
				o = json_pack("{s:o,s:o,s:s,s:I,s:o,s:o}", "system",
				              jstr(t->system), "actor", jstr(t->name), "kind",
				              kind_name(t->kind), "hosts", (json_int_t)t->hosts,
				              "actions", acts, "state_type", jstr(t->state_type));
			}
			break;
		case SPAWN__GATEWAY__V1__LIST_KIND__LIST_HOSTS:
			n = r->n_hosts;
			if (i < n)
				o = json_pack("{s:o,s:o,s:o,s:I,s:b}", "system",
				              jstr(r->hosts[i]->system), "peer",
				              jstr(r->hosts[i]->peer), "principal",
				              jstr(r->hosts[i]->principal), "in_flight",
				              (json_int_t)r->hosts[i]->in_flight, "batch",
				              r->hosts[i]->batch);
			break;
		default:
			n = r->n_instances;
			if (i < n)
				o = json_pack("{s:o,s:o,s:o,s:I,s:b,s:I}", "system",
				              jstr(r->instances[i]->system), "actor",
				              jstr(r->instances[i]->actor), "type",
				              jstr(r->instances[i]->type), "queued",
				              (json_int_t)r->instances[i]->queued, "busy",
				              r->instances[i]->busy, "revision",
				              (json_int_t)r->instances[i]->revision);
			break;
		}
		if (i >= n)
			return;
		json_object_set_new(o, "member", jstr(i < r->n_members ? r->members[i] : ""));
		json_array_append_new(arr, o);
	}
}

/* next_page moves *token (owned) to next (borrowed; NULL = none) after a
 * page: true when --all asks for the next one. A failure (out of memory, a
 * gateway that gives the same token twice) sets *rc. */
static bool next_page(char **token, const char *next, bool all, int *rc, ctl_err *e)
{
	const char *n = next ? next : "";
	bool same = strcmp(*token, n) == 0;
	free(*token);
	if (!(*token = strdup(n))) {
		*rc = ctl_fail(e, CTL_EXIT_LOCAL, "out of memory");
		return false;
	}
	if (!all || !n[0])
		return false;
	if (same) {
		*rc =
		    ctl_fail(e, GRPC_STATUS_INTERNAL, "the gateway gave the same page token twice");
		return false;
	}
	return true;
}

static int cmd_list(ctl *x, const args *a, ctl_err *e)
{
	static const char *const kinds[] = {"systems", "actors", "hosts", "instances"};
	int kind = 0;
	if (a->npos > 2)
		return ctl_fail(e, CTL_EXIT_USAGE, "list [systems|actors|hosts|instances]");
	if (a->npos == 2) {
		for (kind = 0; kind < 4 && strcmp(a->pos[1], kinds[kind]) != 0; kind++)
			;
		if (kind == 4)
			return ctl_fail(e, CTL_EXIT_USAGE,
			                "list what? systems, actors, hosts or instances");
	}
	json_t *items = json_array(), *un = json_array();
	char *token = strdup(a->page_token ? a->page_token : "");
	int rc = token ? 0 : ctl_fail(e, CTL_EXIT_LOCAL, "out of memory");
	for (int page = 0; !rc; page++) {
		Spawn__Gateway__V1__ListRequest rq = SPAWN__GATEWAY__V1__LIST_REQUEST__INIT;
		rq.kind = (Spawn__Gateway__V1__ListKind)kind;
		rq.system = (char *)(a->system ? a->system : "");
		rq.page_size = (uint32_t)a->page_size;
		rq.page_token = token;
		ProtobufCMessage *out = NULL;
		if ((rc = ctl_unary(x, ADMIN "List", &rq.base,
		                    &spawn__gateway__v1__list_reply__descriptor, &out, e)))
			break;
		Spawn__Gateway__V1__ListReply *r = (Spawn__Gateway__V1__ListReply *)out;
		list_items(items, r, kind);
		if (page == 0) /* every page names the same missing members */
		{
			json_t *f = failures_json(r->n_unanswered, r->unanswered);
			json_array_extend(un, f);
			json_decref(f);
		}
		bool more = next_page(&token, r->next_page_token, a->all, &rc, e);
		protobuf_c_message_free_unpacked(out, NULL);
		if (!more)
			break;
	}
	if (!rc) {
		if (x->json) {
			json_t *o = json_pack("{s:s,s:O,s:s,s:O}", "kind", kinds[kind], "items",
			                      items, "next_page_token", token, "unanswered", un);
			ctl_print_json(o);
			json_decref(o);
		} else {
			static const ctl_col cs[] = {{"SYSTEM", "system"},
			                             {"ACTOR TYPES", "actor_types"},
			                             {"HOSTS", "hosts"},
			                             {"ACTIVE", "active"},
			                             {"MEMBER", "member"}};
			static const ctl_col ca[] = {
			    {"SYSTEM", "system"},   {"ACTOR", "actor"},
			    {"KIND", "kind"},       {"HOSTS", "hosts"},
			    {"ACTIONS", "actions"}, {"STATE TYPE", "state_type"},
			    {"MEMBER", "member"}};
			static const ctl_col ch[] = {
			    {"SYSTEM", "system"},       {"PEER", "peer"},
			    {"PRINCIPAL", "principal"}, {"IN FLIGHT", "in_flight"},
			    {"BATCH", "batch"},         {"MEMBER", "member"}};
			static const ctl_col ci[] = {{"SYSTEM", "system"}, {"ACTOR", "actor"},
			                             {"TYPE", "type"},     {"QUEUED", "queued"},
			                             {"BUSY", "busy"},     {"REVISION", "revision"},
			                             {"MEMBER", "member"}};
			static const ctl_col *const cols[] = {cs, ca, ch, ci};
			static const size_t ncols[] = {5, 7, 6, 7};
			/* the MEMBER column only in a cluster */
			bool cluster = false;
			for (size_t i = 0; i < json_array_size(items); i++)
				cluster |= json_string_length(json_object_get(
				               json_array_get(items, i), "member")) > 0;
			ctl_print_table(items, cols[kind], ncols[kind] - (cluster ? 0 : 1));
			if (token[0])
				printf("(more: --page-token %s)\n", token);
			warn_unanswered(un);
		}
	}
	free(token);
	json_decref(items);
	json_decref(un);
	return rc;
}

/* ---- schedules ------------------------------------------------------------------ */

static json_t *sched_json(const Spawn__Gateway__V1__ScheduleInfo *si)
{
	/* the due time for people too: UTC, to the second */
	char due[32] = "";
	time_t t = (time_t)(si->due_unix_ms / 1000);
	struct tm tm;
	if (gmtime_r(&t, &tm))
		strftime(due, sizeof due, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:o,s:I,s:s,s:o,s:o,s:o}", "id", jstr(si->id), "due_unix_ms",
	                 (json_int_t)si->due_unix_ms, "due", due, "system", jstr(si->system),
	                 "actor", jstr(si->actor), "action", jstr(si->action));
}

static const ctl_col sched_cols[] = {{"ID", "id"},
                                     {"DUE (UTC)", "due"},
                                     {"SYSTEM", "system"},
                                     {"ACTOR", "actor"},
                                     {"ACTION", "action"}};

static int cmd_schedules(ctl *x, const args *a, ctl_err *e)
{
	if (a->npos == 3 && strcmp(a->pos[1], "cancel") == 0) {
		Spawn__Gateway__V1__ScheduleRef rq = SPAWN__GATEWAY__V1__SCHEDULE_REF__INIT;
		rq.id = a->pos[2];
		ProtobufCMessage *out = NULL;
		int rc = ctl_unary(x, ADMIN "CancelSchedule", &rq.base,
		                   &spawn__gateway__v1__cancel_schedule_reply__descriptor, &out, e);
		if (rc)
			return rc;
		Spawn__Gateway__V1__CancelScheduleReply *r =
		    (Spawn__Gateway__V1__CancelScheduleReply *)out;
		json_t *o = r->schedule ? sched_json(r->schedule) : json_object();
		protobuf_c_message_free_unpacked(out, NULL);
		json_t *w = json_pack("{s:o}", "cancelled", o);
		if (x->json)
			ctl_print_json(w);
		else
			ctl_print_fields(json_object_get(w, "cancelled"));
		json_decref(w);
		return 0;
	}
	if (a->npos != 2 || strcmp(a->pos[1], "list") != 0)
		return ctl_fail(e, CTL_EXIT_USAGE, "schedules list | schedules cancel ID");
	json_t *items = json_array();
	char *token = strdup(a->page_token ? a->page_token : "");
	int rc = token ? 0 : ctl_fail(e, CTL_EXIT_LOCAL, "out of memory");
	while (!rc) {
		Spawn__Gateway__V1__ListSchedulesRequest rq =
		    SPAWN__GATEWAY__V1__LIST_SCHEDULES_REQUEST__INIT;
		rq.system = (char *)(a->system ? a->system : "");
		rq.actor = (char *)(a->actor ? a->actor : "");
		rq.page_size = (uint32_t)a->page_size;
		rq.page_token = token;
		ProtobufCMessage *out = NULL;
		if ((rc = ctl_unary(x, ADMIN "ListSchedules", &rq.base,
		                    &spawn__gateway__v1__schedule_list__descriptor, &out, e)))
			break;
		Spawn__Gateway__V1__ScheduleList *l = (Spawn__Gateway__V1__ScheduleList *)out;
		for (size_t i = 0; i < l->n_schedules; i++)
			json_array_append_new(items, sched_json(l->schedules[i]));
		bool more = next_page(&token, l->next_page_token, a->all, &rc, e);
		protobuf_c_message_free_unpacked(out, NULL);
		if (!more)
			break;
	}
	if (!rc) {
		if (x->json) {
			json_t *o =
			    json_pack("{s:O,s:s}", "items", items, "next_page_token", token);
			ctl_print_json(o);
			json_decref(o);
		} else {
			ctl_print_table(items, sched_cols, sizeof sched_cols / sizeof *sched_cols);
			if (token[0])
				printf("(more: --page-token %s)\n", token);
		}
	}
	free(token);
	json_decref(items);
	return rc;
}

/* ---- main ------------------------------------------------------------------------ */

static int parse(int argc, char **argv, args *a, ctl_err *e)
{
	enum {
		O_GW = 256,
		O_CA,
		O_CERT,
		O_KEY,
		O_SNAME,
		O_TOKEN,
		O_TIMEOUT,
		O_OUTPUT,
		O_PARENT,
		O_REV,
		O_SYSTEM,
		O_PSIZE,
		O_PTOKEN,
		O_ALL,
		O_HELP,
		O_ACTOR,
		O_DELAY
	};
	static const struct option opts[] = {
	    {"gateway", required_argument, NULL, O_GW},
	    {"ca", required_argument, NULL, O_CA},
	    {"cert", required_argument, NULL, O_CERT},
	    {"key", required_argument, NULL, O_KEY},
	    {"server-name", required_argument, NULL, O_SNAME},
	    {"token-file", required_argument, NULL, O_TOKEN},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"output", required_argument, NULL, O_OUTPUT},
	    {"parent", required_argument, NULL, O_PARENT},
	    {"revision", required_argument, NULL, O_REV},
	    {"system", required_argument, NULL, O_SYSTEM},
	    {"page-size", required_argument, NULL, O_PSIZE},
	    {"page-token", required_argument, NULL, O_PTOKEN},
	    {"all", no_argument, NULL, O_ALL},
	    {"actor", required_argument, NULL, O_ACTOR},
	    {"delay", required_argument, NULL, O_DELAY},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	a->timeout_s = 10;
	a->output = "table";
	const char *env = getenv("SPAWN_GATEWAY");
	a->gateway = env && *env ? env : "127.0.0.1:8090";
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
		unsigned long long v;
		switch (c) {
		case O_GW:
			a->gateway = optarg;
			break;
		case O_CA:
			a->ca = optarg;
			break;
		case O_CERT:
			a->cert = optarg;
			break;
		case O_KEY:
			a->key = optarg;
			break;
		case O_SNAME:
			a->server_name = optarg;
			break;
		case O_TOKEN:
			a->token_file = optarg;
			break;
		case O_TIMEOUT:
			if (!parse_u64(optarg, &v) || v == 0 || v > 86400)
				return ctl_fail(e, CTL_EXIT_USAGE,
				                "--timeout takes 1..86400 seconds");
			a->timeout_s = (long)v;
			break;
		case O_OUTPUT:
			if (strcmp(optarg, "table") != 0 && strcmp(optarg, "json") != 0)
				return ctl_fail(e, CTL_EXIT_USAGE, "--output is table or json");
			a->output = optarg;
			break;
		case O_PARENT:
			a->parent = optarg;
			break;
		case O_REV:
			if (!parse_u64(optarg, &a->revision))
				return ctl_fail(e, CTL_EXIT_USAGE, "--revision takes a number");
			break;
		case O_SYSTEM:
			a->system = optarg;
			break;
		case O_PSIZE:
			if (!parse_u64(optarg, &v) || v == 0 || v > 1000)
				return ctl_fail(e, CTL_EXIT_USAGE, "--page-size takes 1..1000");
			a->page_size = (long)v;
			break;
		case O_PTOKEN:
			a->page_token = optarg;
			break;
		case O_ALL:
			a->all = true;
			break;
		case O_ACTOR:
			a->actor = optarg;
			break;
		case O_DELAY:
			if (!parse_u64(optarg, &v) || v == 0 || v > 31536000)
				return ctl_fail(e, CTL_EXIT_USAGE,
				                "--delay takes 1..31536000 seconds");
			a->delay_s = (long)v;
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			return ctl_fail(e, CTL_EXIT_USAGE, "%s: %s (spawnctl --help)",
			                c == ':' ? "an option needs a value" : "unknown option",
			                argv[optind - 1]);
		}
	}
	a->pos = argv + optind;
	a->npos = argc - optind;
	if (a->npos < 1)
		return ctl_fail(e, CTL_EXIT_USAGE, "no command (spawnctl --help)");
	return 0;
}

int main(int argc, char **argv)
{
	/* GNU getopt_long permutes: options may come before or after the
	 * command and its operands, which keep their order ("--" ends the
	 * options, e.g. before a JSON operand that starts with '-'). */
	args a = {0};
	ctl_err e = {0};
	int rc = parse(argc, argv, &a, &e);
	ctl x = {0};
	char *token = NULL;
	if (!rc && a.token_file)
		rc = read_token(a.token_file, &token, &e);
	if (!rc) {
		spawn_security_opts so = {.tls_ca = a.ca,
		                          .tls_cert = a.cert,
		                          .tls_key = a.key,
		                          .tls_server_name = a.server_name,
		                          .token = token};
		x.timeout_ms = (int)a.timeout_s * 1000;
		x.json = strcmp(a.output, "json") == 0;
		rc = ctl_open(&x, a.gateway, &so, &e);
	}
	if (!rc) {
		const char *cmd = a.pos[0];
		if (strcmp(cmd, "invoke") == 0)
			rc = cmd_invoke(&x, &a, &e);
		else if (strcmp(cmd, "get-state") == 0)
			rc = cmd_get_state(&x, &a, &e);
		else if (strcmp(cmd, "list") == 0)
			rc = cmd_list(&x, &a, &e);
		else if (strcmp(cmd, "revisions") == 0)
			rc = cmd_revisions(&x, &a, &e);
		else if (strcmp(cmd, "restore") == 0)
			rc = cmd_restore(&x, &a, &e);
		else if (strcmp(cmd, "keys") == 0)
			rc = cmd_keys(&x, &a, &e);
		else if (strcmp(cmd, "members") == 0)
			rc = cmd_members(&x, &a, &e);
		else if (strcmp(cmd, "forget") == 0)
			rc = cmd_forget(&x, &a, &e);
		else if (strcmp(cmd, "schedules") == 0)
			rc = cmd_schedules(&x, &a, &e);
		else
			rc = ctl_fail(&e, CTL_EXIT_USAGE, "unknown command '%s' (spawnctl --help)",
			              cmd);
	}
	if (rc)
		fprintf(stderr, "spawnctl: %s: %s\n", code_name(rc), e.msg);
	ctl_close(&x);
	if (token) {
		memset(token, 0, strlen(token));
		free(token);
	}
	return rc;
}
