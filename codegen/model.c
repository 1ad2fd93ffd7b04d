/* model.c - CodeGeneratorRequest -> model, with the contract checks.
 *
 * The actor option arrives as an unknown field of ServiceOptions (number
 * 4890128, protobuf-c has no extensions); cg_option_bytes reassembles it
 * and spawn__actors__actor_opts__unpack (protoc-c code of
 * proto/spawn/actors/extensions.proto) decodes it.
 */
#include "model.h"

#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "spawn/actors/extensions.pb-c.h"

/* extend google.protobuf.ServiceOptions { ActorOpts actor = 4890128; } */
#define ACTOR_OPTION 4890128u

/* ---- options ------------------------------------------------------------- */

int cg_option_bytes(const ProtobufCMessage *opts, uint32_t field, cg_arena *a, const uint8_t **data,
                    size_t *len)
{
	if (!opts)
		return 0;
	cg_buf b = CG_BUF_INIT;
	int found = 0;
	for (unsigned i = 0; i < opts->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &opts->unknown_fields[i];
		if (u->tag != field)
			continue;
		if (u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
			goto bad;
		/* The entry holds the varint length, then the bytes. */
		uint64_t n = 0;
		size_t k = 0;
		for (;; k++) {
			if (k >= u->len || k >= 10)
				goto bad;
			n |= (uint64_t)(u->data[k] & 0x7f) << (7 * k);
			if (!(u->data[k] & 0x80))
				break;
		}
		k++;
		if (n != u->len - k)
			goto bad;
		cg_buf_add(&b, u->data + k, (size_t)n);
		found = 1;
	}
	if (found) {
		*len = b.len;
		*data = cg_memdup(a, b.data ? b.data : "", b.len);
	}
	cg_buf_fini(&b);
	return found;
bad:
	cg_buf_fini(&b);
	return -1;
}

/* ---- messages ------------------------------------------------------------ */

static size_t count_msgs(size_t n, Google__Protobuf__DescriptorProto *const *msgs)
{
	size_t c = n;
	for (size_t i = 0; i < n; i++)
		c += count_msgs(msgs[i]->n_nested_type, msgs[i]->nested_type);
	return c;
}

static void add_msgs(cg_model *m, cg_arena *a, const cg_proto *p, const char *scope, size_t n,
                     Google__Protobuf__DescriptorProto *const *msgs)
{
	for (size_t i = 0; i < n; i++) {
		cg_msg *x = &m->msgs[m->n_msgs++];
		x->name = cg_strdup(a, msgs[i]->name);
		x->full_name = *scope ? cg_printf(a, "%s.%s", scope, x->name) : x->name;
		x->proto = p;
		add_msgs(m, a, p, x->full_name, msgs[i]->n_nested_type, msgs[i]->nested_type);
	}
}

static int cmp_msg(const void *x, const void *y)
{
	return strcmp(((const cg_msg *)x)->full_name, ((const cg_msg *)y)->full_name);
}

const cg_msg *cg_model_find(const cg_model *m, const char *full_name)
{
	if (*full_name == '.')
		full_name++;
	cg_msg key = {.full_name = full_name};
	return bsearch(&key, m->msgs, m->n_msgs, sizeof *m->msgs, cmp_msg);
}

/* resolve_state finds the message a state_type names. It may be a type
 * URL (".../pkg.Msg"), a full name with a leading dot, or a name relative
 * to the package, resolved the way protoc resolves type names: "a.b.X",
 * then "a.X", then "X". The candidates tried are listed in tried. */
static const cg_msg *resolve_state(const cg_model *m, cg_arena *a, const char *package,
                                   const char *name, cg_buf *tried)
{
	const char *slash = strrchr(name, '/');
	if (slash)
		return cg_model_find(m, slash + 1);
	if (*name == '.')
		return cg_model_find(m, name);
	char *scope = cg_strdup(a, package);
	for (;;) {
		const char *cand = *scope ? cg_printf(a, "%s.%s", scope, name) : name;
		cg_buf_printf(tried, "%s%s", tried->len ? ", " : "", cand);
		const cg_msg *x = cg_model_find(m, cand);
		if (x || !*scope)
			return x;
		char *dot = strrchr(scope, '.');
		if (dot)
			*dot = '\0';
		else
			*scope = '\0';
	}
}

/* ---- actors -------------------------------------------------------------- */

/* Where an error is: "FILE: service FULL_NAME: ". */
typedef struct where {
	const char *file;
	const char *service;
	cg_errors *errs;
} where;

#define FAIL(w, fmt, ...)                                                                          \
	cg_errorf((w)->errs, "%s: service %s: " fmt, (w)->file, (w)->service, __VA_ARGS__)

static int cmp_action(const void *x, const void *y)
{
	return strcmp(((const cg_action *)x)->name, ((const cg_action *)y)->name);
}

static int cmp_actor(const void *x, const void *y)
{
	return strcmp(((const cg_actor *)x)->name, ((const cg_actor *)y)->name);
}

/* Names that generated code in every language derives identifiers from
 * must differ in more than case and underscores ("Add" and "add" both
 * become add()). */
typedef struct keyed {
	const char *key; /* cg_name_snake(name) without underscores */
	const char *name;
	const char *service;
} keyed;

static int cmp_keyed(const void *x, const void *y)
{
	const keyed *p = x, *q = y;
	int c = strcmp(p->key, q->key);
	return c ? c : strcmp(p->name, q->name);
}

static const char *name_key(cg_arena *a, const char *name)
{
	char *s = cg_name_lower(a, name);
	char *o = s;
	for (const char *p = s; *p; p++)
		if (*p != '_')
			*o++ = *p;
	*o = '\0';
	return s;
}

static void read_settings(const Spawn__Actors__ActorOpts *o, cg_actor *act, where *w)
{
	if (o->base.n_unknown_fields)
		FAIL(w, "(spawn.actors.actor) has field %u, unknown to this protoc-gen-spawn",
		     o->base.unknown_fields[0].tag);
	switch ((int)o->kind) {
	case SPAWN__ACTORS__KIND__UNKNOW_KIND:
	case SPAWN__ACTORS__KIND__NAMED:
		act->kind = CG_KIND_NAMED;
		break;
	case SPAWN__ACTORS__KIND__UNNAMED:
		act->kind = CG_KIND_UNNAMED;
		break;
	case SPAWN__ACTORS__KIND__POOLED:
		act->kind = CG_KIND_POOLED;
		break;
	default: {
		const ProtobufCEnumValue *v =
		    protobuf_c_enum_descriptor_get_value(&spawn__actors__kind__descriptor, o->kind);
		if (v)
			FAIL(w, "kind %s is not supported (use NAMED, UNNAMED or POOLED)", v->name);
		else
			FAIL(w,
			     "kind %d is not a value of spawn.actors.Kind (NAMED, UNNAMED or "
			     "POOLED)",
			     (int)o->kind);
	}
	}
	if (o->sourceable)
		FAIL(w, "option %s is not supported by this gateway", "sourceable");
	if (o->strict_events_ordering)
		FAIL(w, "option %s is not supported by this gateway", "strict_events_ordering");
	if (o->events_retention_strategy)
		FAIL(w, "option %s is not supported by this gateway", "events_retention_strategy");
	if (o->n_subjects)
		FAIL(w, "option %s is not supported by this gateway", "subjects");
	if (o->deactivate_timeout < 0)
		FAIL(w,
		     "deactivate_timeout is %lld; it must be >= 0 (milliseconds, 0 = the "
		     "gateway's default)",
		     (long long)o->deactivate_timeout);
	if (o->snapshot_interval < 0)
		FAIL(w,
		     "snapshot_interval is %lld; it must be >= 0 (milliseconds, 0 = the "
		     "gateway's default)",
		     (long long)o->snapshot_interval);
	act->stateful = o->stateful;
	act->deactivate_timeout_ms = o->deactivate_timeout;
	act->snapshot_interval_ms = o->snapshot_interval;
}

static void read_state(const cg_model *m, cg_arena *a, const cg_proto *p,
                       const Spawn__Actors__ActorOpts *o, cg_actor *act, where *w)
{
	const char *st = o->state_type ? o->state_type : "";
	if (*st) {
		cg_buf tried = CG_BUF_INIT;
		act->state = resolve_state(m, a, p->package, st, &tried);
		if (!act->state && tried.len)
			FAIL(w, "state_type \"%s\" names no message (looked for %s)", st,
			     cg_buf_str(&tried));
		else if (!act->state)
			FAIL(w, "state_type \"%s\" names no message", st);
		cg_buf_fini(&tried);
		if (!act->stateful)
			FAIL(w,
			     "state_type \"%s\" is set but stateful is false (add stateful: true)",
			     st);
	} else if (act->stateful) {
		FAIL(w, "%s", "stateful: true needs a state_type (the message of the state)");
	}
	if (act->stateful && act->kind == CG_KIND_POOLED)
		FAIL(w, "%s", "a POOLED actor cannot be stateful");
}

static void read_actions(const cg_model *m, cg_arena *a,
                         const Google__Protobuf__ServiceDescriptorProto *svc, cg_actor *act,
                         where *w)
{
	if (!svc->n_method)
		FAIL(w, "%s", "an actor needs at least one rpc (its actions)");
	act->actions = cg_alloc_array(a, svc->n_method, sizeof *act->actions);
	for (size_t i = 0; i < svc->n_method; i++) {
		const Google__Protobuf__MethodDescriptorProto *rpc = svc->method[i];
		if (rpc->client_streaming || rpc->server_streaming) {
			FAIL(w, "rpc %s is %s; an action takes one message and returns one",
			     rpc->name,
			     rpc->client_streaming && rpc->server_streaming
			         ? "a bidirectional stream"
			     : rpc->client_streaming ? "client-streaming"
			                             : "server-streaming");
			continue;
		}
		cg_action *x = &act->actions[act->n_actions];
		x->name = cg_strdup(a, rpc->name);
		x->input = cg_model_find(m, rpc->input_type ? rpc->input_type : "");
		x->output = cg_model_find(m, rpc->output_type ? rpc->output_type : "");
		if (!x->input || !x->output) {
			FAIL(w, "rpc %s: type %s is not in the request", rpc->name,
			     x->input ? rpc->output_type : rpc->input_type);
			continue;
		}
		act->n_actions++;
	}
	qsort(act->actions, act->n_actions, sizeof *act->actions, cmp_action);

	keyed *k = cg_alloc_array(a, act->n_actions, sizeof *k);
	for (size_t i = 0; i < act->n_actions; i++)
		k[i] = (keyed){name_key(a, act->actions[i].name), act->actions[i].name, NULL};
	qsort(k, act->n_actions, sizeof *k, cmp_keyed);
	for (size_t i = 1; i < act->n_actions; i++)
		if (strcmp(k[i - 1].key, k[i].key) == 0)
			FAIL(w,
			     "action name used twice: \"%s\" and \"%s\" (action names must differ "
			     "in more than case and underscores)",
			     k[i - 1].name, k[i].name);
}

/* read_actor fills act from svc when it carries the actor option.
 * Returns 1 (an actor), 0 (no option: not an actor). Errors go to w. */
static int read_actor(const cg_model *m, cg_arena *a, const cg_proto *p,
                      const Google__Protobuf__ServiceDescriptorProto *svc, cg_actor *act, where *w)
{
	const uint8_t *data;
	size_t len;
	int rc =
	    cg_option_bytes((const ProtobufCMessage *)svc->options, ACTOR_OPTION, a, &data, &len);
	if (rc == 0)
		return 0;
	act->name = cg_strdup(a, svc->name);
	act->full_name = w->service;
	if (rc < 0) {
		FAIL(w, "%s", "the (spawn.actors.actor) option is malformed");
		return 1;
	}
	Spawn__Actors__ActorOpts *o = spawn__actors__actor_opts__unpack(NULL, len, data);
	if (!o) {
		FAIL(w, "%s",
		     "the (spawn.actors.actor) option does not decode as spawn.actors.ActorOpts");
		return 1;
	}
	read_settings(o, act, w);
	read_state(m, a, p, o, act, w);
	spawn__actors__actor_opts__free_unpacked(o, NULL);
	read_actions(m, a, svc, act, w);
	return 1;
}

static void read_file(const cg_model *m, cg_arena *a, const cg_proto *p, cg_file *f,
                      cg_errors *errs)
{
	const Google__Protobuf__FileDescriptorProto *fd = p->fd;
	f->proto = p;
	f->actors = cg_alloc_array(a, fd->n_service, sizeof *f->actors);
	for (size_t i = 0; i < fd->n_service; i++) {
		const Google__Protobuf__ServiceDescriptorProto *svc = fd->service[i];
		where w = {
		    .file = p->name,
		    .service = *p->package ? cg_printf(a, "%s.%s", p->package, svc->name)
		                           : cg_strdup(a, svc->name),
		    .errs = errs,
		};
		if (read_actor(m, a, p, svc, &f->actors[f->n_actors], &w))
			f->n_actors++;
	}
	qsort(f->actors, f->n_actors, sizeof *f->actors, cmp_actor);

	keyed *k = cg_alloc_array(a, f->n_actors, sizeof *k);
	for (size_t i = 0; i < f->n_actors; i++)
		k[i] = (keyed){name_key(a, f->actors[i].name), f->actors[i].name,
		               f->actors[i].full_name};
	qsort(k, f->n_actors, sizeof *k, cmp_keyed);
	for (size_t i = 1; i < f->n_actors; i++)
		if (strcmp(k[i - 1].key, k[i].key) == 0)
			cg_errorf(
			    errs,
			    "%s: service %s: actor name used twice: \"%s\" (service %s) and "
			    "\"%s\" (actor names must differ in more than case and underscores)",
			    p->name, k[i].service, k[i - 1].name, k[i - 1].service, k[i].name);
}

int cg_model_build(cg_model *m, cg_arena *a,
                   const Google__Protobuf__Compiler__CodeGeneratorRequest *req, cg_errors *errs)
{
	size_t errors_before = errs->count;
	memset(m, 0, sizeof *m);
	m->protos = cg_alloc_array(a, req->n_proto_file, sizeof *m->protos);
	size_t n_msgs = 0;
	for (size_t i = 0; i < req->n_proto_file; i++) {
		const Google__Protobuf__FileDescriptorProto *fd = req->proto_file[i];
		cg_proto *p = &m->protos[m->n_protos++];
		p->name = cg_strdup(a, fd->name ? fd->name : "");
		p->package = cg_strdup(a, fd->package ? fd->package : "");
		p->fd = fd;
		n_msgs += count_msgs(fd->n_message_type, fd->message_type);
	}
	m->msgs = cg_alloc_array(a, n_msgs, sizeof *m->msgs);
	for (size_t i = 0; i < m->n_protos; i++)
		add_msgs(m, a, &m->protos[i], m->protos[i].package, m->protos[i].fd->n_message_type,
		         m->protos[i].fd->message_type);
	qsort(m->msgs, m->n_msgs, sizeof *m->msgs, cmp_msg);

	m->files = cg_alloc_array(a, req->n_file_to_generate, sizeof *m->files);
	for (size_t i = 0; i < req->n_file_to_generate; i++) {
		const cg_proto *p = NULL;
		for (size_t j = 0; j < m->n_protos && !p; j++)
			if (strcmp(m->protos[j].name, req->file_to_generate[i]) == 0)
				p = &m->protos[j];
		if (!p) {
			cg_errorf(errs, "%s: not among the request's files",
			          req->file_to_generate[i]);
			continue;
		}
		read_file(m, a, p, &m->files[m->n_files++], errs);
	}
	return errs->count == errors_before ? 0 : -1;
}
