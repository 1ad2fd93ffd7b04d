/* lang_c.c - the C emitter: C names for the view of sdk-templates/c/.
 *
 * Keys it adds (besides the neutral ones of emit.h):
 *   file    c_header     "dir/x.spawn.h"   c_source "dir/x.spawn.c"
 *           c_pb_header  "dir/x.pb-c.h"    (protoc-c's header of the same file)
 *           c_guard      include guard
 *   actor   c_actor      "incrementor": c_prefix + snake_case(actor), prefix of
 *                        every generated identifier of the actor
 *           c_ACTOR      "INCREMENTOR" (macros)
 *           c_kind       "SPAWN_KIND_NAMED"
 *   action  c_action     "add": snake_case(action)
 *           c_member     the handler's member in the handlers struct
 *                        (c_action, with '_' appended to keywords)
 *   type    P_c          "Examples__Incrementor__Add" (protoc-c's typedef)
 *           P_c_desc     "examples__incrementor__add__descriptor"
 *
 * Parameter: c_prefix=PREFIX, prepended to every actor's identifiers (for
 * two packages with a service of the same name in one program).
 *
 * The generated identifiers of a file must be distinct; file_done checks
 * them and names the two sources of a clash.
 */
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "names.h"

/* protobuf-c's file options: extend FileOptions { ProtobufCFileOptions
 * pb_c_file = 1019; } with c_package = 6. */
#define PB_C_FILE_OPTION   1019u
#define PB_C_PACKAGE_FIELD 6u

static const char *c_prefix(cg_emit_ctx *x)
{
	const char *p = cg_param_get(x->params, "c_prefix");
	return p ? p : "";
}

static const char *actor_ident(cg_emit_ctx *x, const cg_actor *act)
{
	return cg_printf(x->a, "%s%s", c_prefix(x), cg_name_snake(x->a, act->name));
}

/* has_field tells whether the serialized message data holds field number
 * field (top level only). Malformed bytes count as absent: protoc wrote
 * them, and protoc-c would have refused the file first. */
static bool has_field(const uint8_t *data, size_t len, uint32_t field)
{
	size_t i = 0;
	while (i < len) {
		uint64_t tag = 0;
		for (int shift = 0; i < len && shift < 64; shift += 7) {
			uint8_t b = data[i++];
			tag |= (uint64_t)(b & 0x7f) << shift;
			if (!(b & 0x80))
				break;
		}
		if (tag >> 3 == field)
			return true;
		uint64_t skip = 0;
		switch (tag & 7) {
		case 0:
			while (i < len && (data[i++] & 0x80))
				;
			break;
		case 1:
			skip = 8;
			break;
		case 5:
			skip = 4;
			break;
		case 2:
			for (int shift = 0; i < len && shift < 64; shift += 7) {
				uint8_t b = data[i++];
				skip |= (uint64_t)(b & 0x7f) << shift;
				if (!(b & 0x80))
					break;
			}
			break;
		default:
			return false;
		}
		if (skip > len - i)
			return false;
		i += (size_t)skip;
	}
	return false;
}

static bool uses_c_package(cg_emit_ctx *x, const cg_proto *p)
{
	const uint8_t *data;
	size_t len;
	return cg_option_bytes((const ProtobufCMessage *)p->fd->options, PB_C_FILE_OPTION, x->a,
	                       &data, &len) > 0 &&
	       has_field(data, len, PB_C_PACKAGE_FIELD);
}

static int c_file(cg_emit_ctx *x, tpl_dict *d, const cg_file *f)
{
	cg_arena *a = x->a;
	const char *base = cg_name_strip_proto(a, f->proto->name);
	tpl_setf(d, "c_header", "%s.spawn.h", base);
	tpl_setf(d, "c_source", "%s.spawn.c", base);
	tpl_setf(d, "c_pb_header", "%s.pb-c.h", base);
	tpl_setf(d, "c_guard", "SPAWN_GEN_%s_SPAWN_H", cg_name_upper(a, cg_name_ident(a, base)));
	const char *prefix = c_prefix(x);
	for (const char *p = prefix; *p; p++) {
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
		            *p) ||
		    (p == prefix && *p >= '0' && *p <= '9')) {
			cg_errorf(x->errs, "c_prefix=%s is not the start of a C identifier",
			          prefix);
			return -1;
		}
	}
	return 0;
}

static int c_actor(cg_emit_ctx *x, tpl_dict *d, const cg_file *f, const cg_actor *act)
{
	const char *id = actor_ident(x, act);
	tpl_set(d, "c_actor", id);
	tpl_set(d, "c_ACTOR", cg_name_upper(x->a, id));
	tpl_setf(d, "c_kind", "SPAWN_KIND_%s", tpl_get(d, "kind"));
	if (strcmp(id, "spawn") == 0 || strncmp(id, "spawn_", 6) == 0) {
		cg_errorf(x->errs,
		          "%s: service %s: its C prefix \"%s\" enters libspawn's spawn_ "
		          "namespace; set c_prefix",
		          f->proto->name, act->full_name, id);
		return -1;
	}
	return 0;
}

static int c_action(cg_emit_ctx *x, tpl_dict *d, const cg_actor *act, const cg_action *ac)
{
	const char *id = cg_name_snake(x->a, ac->name);
	tpl_set(d, "c_action", id);
	tpl_set(d, "c_member", cg_name_is_c_reserved(id) ? cg_printf(x->a, "%s_", id) : id);
	return 0;
}

static int c_type(cg_emit_ctx *x, tpl_dict *d, const char *prefix, const cg_msg *m)
{
	tpl_set(d, cg_printf(x->a, "%s_c", prefix), cg_name_pbc_type(x->a, m->full_name));
	tpl_setf(d, cg_printf(x->a, "%s_c_desc", prefix), "%s__descriptor",
	         cg_name_pbc_lower(x->a, m->full_name));
	if (uses_c_package(x, m->proto)) {
		cg_errorf(x->errs,
		          "%s: message %s: the file sets protobuf-c's c_package option, which "
		          "protoc-gen-spawn does not support",
		          m->proto->name, m->full_name);
		return -1;
	}
	return 0;
}

/* ---- collisions ---------------------------------------------------------- */

typedef struct ident {
	const char *name;   /* the C identifier */
	const char *origin; /* "the async variant of action Add" */
	const char *service;
} ident;

typedef struct idents {
	ident *v;
	size_t n, cap;
} idents;

static void claim(cg_arena *a, idents *s, const char *service, const char *name, const char *origin)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		ident *v = cg_alloc_array(a, cap, sizeof *v);
		if (s->n)
			memcpy(v, s->v, s->n * sizeof *v);
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (ident){name, origin, service};
}

static int cmp_ident(const void *p, const void *q)
{
	const ident *x = p, *y = q;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->origin, y->origin);
}

/* The identifiers the C templates declare per actor and per action; keep
 * in step with sdk-templates/c/. */
static int c_file_done(cg_emit_ctx *x, tpl_dict *d, const cg_file *f)
{
	cg_arena *a = x->a;
	idents s = {0};
	for (size_t i = 0; i < f->n_actors; i++) {
		const cg_actor *act = &f->actors[i];
		const char *p = actor_ident(x, act), *P = cg_name_upper(a, p);
		const char *svc = act->full_name;
		const char *of = cg_printf(a, "actor %s", act->name);
		claim(a, &s, svc, cg_printf(a, "%s_handlers", p),
		      cg_printf(a, "the handlers of %s", of));
		claim(a, &s, svc, cg_printf(a, "%s_register", p),
		      cg_printf(a, "the registration of %s", of));
		claim(a, &s, svc, cg_printf(a, "%s_ACTOR_NAME", P),
		      cg_printf(a, "the name of %s", of));
		if (act->state) {
			claim(a, &s, svc, cg_printf(a, "%s_set_state", p),
			      cg_printf(a, "the state setter of %s", of));
			claim(a, &s, svc, cg_printf(a, "%s_STATE_TYPE", P),
			      cg_printf(a, "the state type of %s", of));
		}
		for (size_t j = 0; j < act->n_actions; j++) {
			const char *an = act->actions[j].name;
			const char *q = cg_printf(a, "%s_%s", p, cg_name_snake(a, an));
			static const char *const suffixes[][2] = {
			    {"", "the client stub of action %s"},
			    {"_async", "the async client stub of action %s"},
			    {"_cb", "the callback type of action %s"},
			    {"_reply", "the reply setter of action %s"},
			    {"_handler", "the handler adapter of action %s"},
			    {"_finish", "the async completion of action %s"},
			};
			for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++)
				claim(a, &s, svc, cg_printf(a, "%s%s", q, suffixes[k][0]),
				      cg_printf(a, suffixes[k][1], an));
		}
	}
	if (s.n)
		qsort(s.v, s.n, sizeof *s.v, cmp_ident);
	int rc = 0;
	for (size_t i = 1; i < s.n; i++) {
		if (strcmp(s.v[i - 1].name, s.v[i].name) != 0)
			continue;
		bool same = strcmp(s.v[i - 1].service, s.v[i].service) == 0;
		cg_errorf(
		    x->errs,
		    "%s: service %s: generated C name %s is used twice: by %s%s%s, and by %s; "
		    "rename one",
		    f->proto->name, s.v[i].service, s.v[i].name, s.v[i - 1].origin,
		    same ? "" : " of service ", same ? "" : s.v[i - 1].service, s.v[i].origin);
		rc = -1;
	}
	(void)d;
	return rc;
}

static const char *const c_params[] = {"c_prefix", NULL};

const cg_lang cg_lang_c = {
    .version = CG_LANG_VERSION,
    .name = "c",
    .params = c_params,
    .file = c_file,
    .actor = c_actor,
    .action = c_action,
    .type = c_type,
    .file_done = c_file_done,
};
