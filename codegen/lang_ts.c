/* lang_ts.c - the TypeScript emitter: TypeScript names and message types
 * for the view of sdk-templates/ts/.
 *
 * The generated module is self-contained: besides the actors' contracts,
 * typed clients and actor skeletons (shims over the runtime's ActorClient
 * and registerActor) it declares a TypeScript interface per message (and a
 * const object + union type per enum) and carries the messages' definitions
 * as protobufjs JSON, which the runtime (sdk/node, spawn.TypeSet) loads.
 * Decoded messages are plain objects of those interfaces (protobufjs
 * toObject with defaults, 64-bit integers as numbers, enums as numbers,
 * bytes as Uint8Array); inputs are spawn.DeepPartial of them.
 *
 * Which types: every message and enum of the file, the actors' state,
 * input and output types, and everything their fields reach (map entries
 * become map fields). Names: a type of the file's package by its name
 * inside the package, '.' -> '_' ("Inventory_Item"); a type of another
 * package by its full name, '.' -> '_' ("golden_common_types_Money");
 * '_' appended to reserved words and to the names generated code uses
 * ("Promise_"). Fields by their JSON name ("teamId").
 *
 * Keys it adds (besides the neutral ones of emit.h):
 *   file    ts_module   "dir/x.spawn.ts"
 *           ts_sdk      the runtime's module ("@spawn-gateway/sdk"; ts_sdk=)
 *           ts_used     flag: the module uses the runtime (types or actors)
 *           ts_types    list, sorted by full name:
 *             ts_name, ts_full, ts_desc (protobufjs JSON, one line),
 *             ts_is_enum; enums: ts_values (ts_value, ts_number);
 *             messages: ts_fields (ts_field, ts_ftype, ts_optional)
 *   actor   state_ts    the state's type name (when has_state)
 *   action  ts_method   camelCase(action) ("constructor" -> "constructor_")
 *           input_ts, output_ts
 *
 * Parameter: ts_sdk=MODULE, the module specifier of the runtime.
 */
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "names.h"

typedef Google__Protobuf__DescriptorProto msg_desc;
typedef Google__Protobuf__EnumDescriptorProto enum_desc;
typedef Google__Protobuf__FieldDescriptorProto field_desc;

/* A message or enum of the request. */
typedef struct ts_type {
	const char *full;    /* "golden.kitchen_sink.Inventory.Item" */
	const char *package; /* of its file */
	const char *edition; /* "proto3" or "proto2" */
	const char *file;
	const msg_desc *msg; /* one of msg and en */
	const enum_desc *en;
	const char *ts_name; /* set for the types of the file being emitted */
	bool used;
} ts_type;

typedef struct ts_index {
	ts_type *v;
	size_t n, cap;
} ts_index;

static void idx_add(cg_arena *a, ts_index *ix, ts_type t)
{
	if (ix->n == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 64;
		ts_type *v = cg_alloc_array(a, cap, sizeof *v);
		if (ix->n)
			memcpy(v, ix->v, ix->n * sizeof *v);
		ix->v = v;
		ix->cap = cap;
	}
	ix->v[ix->n++] = t;
}

static void idx_walk_msg(cg_arena *a, ts_index *ix, const cg_proto *p, const char *edition,
                         const char *scope, const msg_desc *m)
{
	const char *full = *scope ? cg_printf(a, "%s.%s", scope, m->name) : m->name;
	idx_add(a, ix,
	        (ts_type){.full = full,
	                  .package = p->package,
	                  .edition = edition,
	                  .file = p->name,
	                  .msg = m});
	for (size_t i = 0; i < m->n_nested_type; i++)
		idx_walk_msg(a, ix, p, edition, full, m->nested_type[i]);
	for (size_t i = 0; i < m->n_enum_type; i++)
		idx_add(a, ix,
		        (ts_type){.full = cg_printf(a, "%s.%s", full, m->enum_type[i]->name),
		                  .package = p->package,
		                  .edition = edition,
		                  .file = p->name,
		                  .en = m->enum_type[i]});
}

static int cmp_type(const void *p, const void *q)
{
	return strcmp(((const ts_type *)p)->full, ((const ts_type *)q)->full);
}

static void idx_build(cg_arena *a, ts_index *ix, const cg_model *m)
{
	for (size_t i = 0; i < m->n_protos; i++) {
		const cg_proto *p = &m->protos[i];
		const Google__Protobuf__FileDescriptorProto *fd = p->fd;
		const char *edition =
		    fd->syntax && strcmp(fd->syntax, "proto3") == 0 ? "proto3" : "proto2";
		for (size_t j = 0; j < fd->n_message_type; j++)
			idx_walk_msg(a, ix, p, edition, p->package, fd->message_type[j]);
		for (size_t j = 0; j < fd->n_enum_type; j++) {
			const char *n = fd->enum_type[j]->name;
			idx_add(a, ix,
			        (ts_type){.full = *p->package ? cg_printf(a, "%s.%s", p->package, n)
			                                      : n,
			                  .package = p->package,
			                  .edition = edition,
			                  .file = p->name,
			                  .en = fd->enum_type[j]});
		}
	}
	if (ix->n)
		qsort(ix->v, ix->n, sizeof *ix->v, cmp_type);
}

static ts_type *idx_find(const ts_index *ix, const char *full)
{
	if (full && *full == '.')
		full++;
	ts_type key = {.full = full};
	return ix->n ? bsearch(&key, ix->v, ix->n, sizeof *ix->v, cmp_type) : NULL;
}

static bool is_map_entry(const ts_type *t)
{
	return t && t->msg && t->msg->options && t->msg->options->has_map_entry &&
	       t->msg->options->map_entry;
}

/* ---- names --------------------------------------------------------------- */

/* Words a type's name may not be: reserved words and the names the
 * generated code uses for itself. */
static bool is_ts_reserved(const char *s)
{
	static const char *const words[] = {
	    "Array",      "Object",    "Promise", "Record",     "Uint8Array", "any",
	    "arguments",  "await",     "bigint",  "boolean",    "break",      "case",
	    "catch",      "class",     "const",   "continue",   "debugger",   "default",
	    "delete",     "do",        "else",    "enum",       "eval",       "export",
	    "extends",    "false",     "finally", "for",        "function",   "if",
	    "implements", "import",    "in",      "instanceof", "interface",  "let",
	    "never",      "new",       "null",    "number",     "object",     "package",
	    "private",    "protected", "public",  "return",     "spawn",      "spawnTypes",
	    "static",     "string",    "super",   "switch",     "symbol",     "this",
	    "throw",      "true",      "try",     "typeof",     "undefined",  "unknown",
	    "var",        "void",      "while",   "with",       "yield",
	};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcmp(words[i], s) == 0)
			return true;
	return false;
}

/* The TypeScript name of a type, seen from a file of package pkg. */
static const char *ts_type_name(cg_arena *a, const char *pkg, const char *type_pkg,
                                const char *full)
{
	const char *rel = full;
	if (strcmp(pkg, type_pkg) == 0 && *pkg)
		rel = full + strlen(pkg) + 1;
	char *s = cg_strdup(a, rel);
	for (char *p = s; *p; p++)
		if (*p == '.')
			*p = '_';
	return is_ts_reserved(s) ? cg_printf(a, "%s_", s) : s;
}

static const char *package_of_actor(cg_arena *a, const cg_actor *act)
{
	size_t n = strlen(act->full_name) - strlen(act->name);
	return n ? cg_strndup(a, act->full_name, n - 1) : "";
}

/* ---- fields -------------------------------------------------------------- */

static const char *scalar_json(int type)
{
	static const char *const names[] = {
	    [1] = "double",  [2] = "float",     [3] = "int64",     [4] = "uint64",  [5] = "int32",
	    [6] = "fixed64", [7] = "fixed32",   [8] = "bool",      [9] = "string",  [12] = "bytes",
	    [13] = "uint32", [15] = "sfixed32", [16] = "sfixed64", [17] = "sint32", [18] = "sint64",
	};
	return type > 0 && type < (int)(sizeof names / sizeof names[0]) ? names[type] : NULL;
}

static const char *scalar_ts(int type)
{
	switch (type) {
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL:
		return "boolean";
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING:
		return "string";
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES:
		return "Uint8Array";
	default:
		return "number";
	}
}

static bool is_ref(const field_desc *f)
{
	return f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE ||
	       f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM;
}

static const char *field_name(cg_arena *a, const field_desc *f)
{
	return f->json_name && *f->json_name ? f->json_name : cg_name_camel(a, f->name);
}

static const field_desc *entry_field(const ts_type *entry, int32_t number)
{
	for (size_t i = 0; i < entry->msg->n_field; i++)
		if (entry->msg->field[i]->number == number)
			return entry->msg->field[i];
	return NULL;
}

/* ---- the file's types ---------------------------------------------------- */

typedef struct ts_file {
	cg_emit_ctx *x;
	const cg_file *f;
	ts_index ix;
	ts_type **work; /* the used types, in the order found */
	size_t n_work;
	int rc;
} ts_file;

static void use(ts_file *tf, const char *full)
{
	ts_type *t = idx_find(&tf->ix, full);
	if (!t) {
		cg_errorf(tf->x->errs, "%s: type %s is not in the request", tf->f->proto->name,
		          full);
		tf->rc = -1;
		return;
	}
	if (t->used)
		return;
	t->used = true;
	if (is_map_entry(t)) {
		for (size_t i = 0; i < t->msg->n_field; i++)
			if (is_ref(t->msg->field[i]))
				use(tf, t->msg->field[i]->type_name);
		return;
	}
	tf->work[tf->n_work++] = t;
	if (!t->msg)
		return;
	for (size_t i = 0; i < t->msg->n_field; i++) {
		const field_desc *fd = t->msg->field[i];
		if (fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP) {
			cg_errorf(tf->x->errs,
			          "%s: message %s: group field %s is not supported by lang=ts",
			          t->file, t->full, fd->name);
			tf->rc = -1;
		} else if (is_ref(fd)) {
			use(tf, fd->type_name);
		}
	}
}

/* The TypeScript type of a field's value (elements for repeated fields). */
static const char *value_ts(ts_file *tf, const field_desc *fd)
{
	if (!is_ref(fd))
		return scalar_ts(fd->type);
	ts_type *t = idx_find(&tf->ix, fd->type_name);
	return t && t->ts_name ? t->ts_name : "unknown";
}

static const char *value_json(const field_desc *fd)
{
	return is_ref(fd) ? fd->type_name : scalar_json(fd->type);
}

static void add_message(ts_file *tf, tpl_dict *td, const ts_type *t)
{
	cg_arena *a = tf->x->a;
	const msg_desc *m = t->msg;
	cg_buf j = CG_BUF_INIT;
	cg_buf_printf(&j, "{\"edition\":\"%s\",\"fields\":{", t->edition);
	tpl_list(td, "ts_fields");
	for (size_t i = 0; i < m->n_field; i++) {
		const field_desc *fd = m->field[i];
		const char *name = field_name(a, fd);
		bool repeated =
		    fd->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED;
		ts_type *ref = is_ref(fd) ? idx_find(&tf->ix, fd->type_name) : NULL;
		bool map = repeated && is_map_entry(ref);
		bool in_oneof = fd->has_oneof_index && !repeated;
		const char *ts;
		cg_buf_printf(&j, "%s\"%s\":{", i ? "," : "", name);
		if (map) {
			const field_desc *k = entry_field(ref, 1), *v = entry_field(ref, 2);
			if (!k || !v) {
				cg_errorf(tf->x->errs, "%s: map entry %s lacks its key or value",
				          t->file, ref->full);
				tf->rc = -1;
				cg_buf_fini(&j);
				return;
			}
			cg_buf_printf(&j, "\"keyType\":\"%s\",\"type\":\"%s\",",
			              scalar_json(k->type), value_json(v));
			ts = cg_printf(a, "{ [key: string]: %s }", value_ts(tf, v));
		} else {
			if (repeated)
				cg_buf_puts(&j, "\"rule\":\"repeated\",");
			else if (fd->label ==
			         GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REQUIRED)
				cg_buf_puts(&j, "\"rule\":\"required\",");
			cg_buf_printf(&j, "\"type\":\"%s\",", value_json(fd));
			ts = value_ts(tf, fd);
			if (repeated)
				ts = cg_printf(a, "%s[]", ts);
			else if (!in_oneof &&
			         fd->type ==
			             GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE)
				ts = cg_printf(a, "%s | null", ts); /* toObject's default */
		}
		cg_buf_printf(&j, "\"id\":%d", fd->number);
		bool packed = fd->options && fd->options->has_packed;
		bool p3opt = fd->has_proto3_optional && fd->proto3_optional;
		if (packed || p3opt) {
			cg_buf_puts(&j, ",\"options\":{");
			if (packed)
				cg_buf_printf(&j, "\"packed\":%s",
				              fd->options->packed ? "true" : "false");
			if (p3opt)
				cg_buf_printf(&j, "%s\"proto3_optional\":true", packed ? "," : "");
			cg_buf_putc(&j, '}');
		}
		cg_buf_putc(&j, '}');
		tpl_dict *fdict = tpl_add(td, "ts_fields");
		tpl_set(fdict, "ts_field", name);
		tpl_set(fdict, "ts_ftype", ts);
		tpl_set_flag(fdict, "ts_optional", in_oneof);
	}
	cg_buf_putc(&j, '}');
	/* Oneofs: members by JSON name; real ones also get a discriminator. */
	if (m->n_oneof_decl)
		cg_buf_puts(&j, ",\"oneofs\":{");
	for (size_t o = 0; o < m->n_oneof_decl; o++) {
		bool synthetic = false;
		cg_buf members = CG_BUF_INIT, names = CG_BUF_INIT;
		for (size_t i = 0; i < m->n_field; i++) {
			const field_desc *fd = m->field[i];
			if (!fd->has_oneof_index || fd->oneof_index != (int32_t)o)
				continue;
			synthetic |= fd->has_proto3_optional && fd->proto3_optional;
			const char *name = field_name(a, fd);
			cg_buf_printf(&members, "%s\"%s\"", members.len ? "," : "", name);
			cg_buf_printf(&names, "%s\"%s\"", names.len ? " | " : "", name);
		}
		const char *oname =
		    synthetic ? m->oneof_decl[o]->name : cg_name_camel(a, m->oneof_decl[o]->name);
		cg_buf_printf(&j, "%s\"%s\":{\"oneof\":[%s]}", o ? "," : "", oname,
		              cg_buf_str(&members));
		if (!synthetic && names.len) {
			tpl_dict *fdict = tpl_add(td, "ts_fields");
			tpl_set(fdict, "ts_field", oname);
			tpl_set(fdict, "ts_ftype", cg_buf_str(&names));
			tpl_set_flag(fdict, "ts_optional", true);
		}
		cg_buf_fini(&members);
		cg_buf_fini(&names);
	}
	if (m->n_oneof_decl)
		cg_buf_putc(&j, '}');
	cg_buf_putc(&j, '}');
	tpl_set(td, "ts_desc", cg_buf_str(&j));
	cg_buf_fini(&j);
}

static void add_enum(ts_file *tf, tpl_dict *td, const ts_type *t)
{
	cg_buf j = CG_BUF_INIT;
	cg_buf_printf(&j, "{\"edition\":\"%s\",\"values\":{", t->edition);
	tpl_list(td, "ts_values");
	for (size_t i = 0; i < t->en->n_value; i++) {
		const Google__Protobuf__EnumValueDescriptorProto *v = t->en->value[i];
		cg_buf_printf(&j, "%s\"%s\":%d", i ? "," : "", v->name, v->number);
		tpl_dict *vd = tpl_add(td, "ts_values");
		tpl_set(vd, "ts_value", v->name);
		tpl_setf(vd, "ts_number", "%d", v->number);
	}
	cg_buf_puts(&j, "}}");
	tpl_set(td, "ts_desc", cg_buf_str(&j));
	cg_buf_fini(&j);
	(void)tf;
}

/* ---- collisions ---------------------------------------------------------- */

typedef struct ident {
	const char *name;
	const char *origin;
} ident;

static int cmp_ident(const void *p, const void *q)
{
	const ident *x = p, *y = q;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->origin, y->origin);
}

static int check_names(ts_file *tf)
{
	cg_arena *a = tf->x->a;
	const cg_file *f = tf->f;
	size_t cap = tf->n_work + 4 * f->n_actors;
	ident *ids = cg_alloc_array(a, cap ? cap : 1, sizeof *ids);
	size_t n = 0;
	for (size_t i = 0; i < tf->n_work; i++)
		ids[n++] = (ident){tf->work[i]->ts_name,
		                   cg_printf(a, "%s %s", tf->work[i]->msg ? "message" : "enum",
		                             tf->work[i]->full)};
	for (size_t i = 0; i < f->n_actors; i++) {
		const char *name = f->actors[i].name, *svc = f->actors[i].full_name;
		ids[n++] = (ident){cg_printf(a, "%sContract", name),
		                   cg_printf(a, "the contract of service %s", svc)};
		ids[n++] = (ident){cg_printf(a, "%sClient", name),
		                   cg_printf(a, "the client class of service %s", svc)};
		ids[n++] = (ident){cg_printf(a, "%sHandlers", name),
		                   cg_printf(a, "the handlers interface of service %s", svc)};
		ids[n++] = (ident){cg_printf(a, "register%s", name),
		                   cg_printf(a, "the registration of service %s", svc)};
	}
	if (n)
		qsort(ids, n, sizeof *ids, cmp_ident);
	int rc = 0;
	for (size_t i = 1; i < n; i++) {
		if (strcmp(ids[i - 1].name, ids[i].name) != 0)
			continue;
		cg_errorf(tf->x->errs,
		          "%s: generated TypeScript name %s is used twice: by %s and by %s; "
		          "rename one",
		          f->proto->name, ids[i].name, ids[i - 1].origin, ids[i].origin);
		rc = -1;
	}
	return rc;
}

/* ---- hooks --------------------------------------------------------------- */

static int ts_file_hook(cg_emit_ctx *x, tpl_dict *d, const cg_file *f)
{
	cg_arena *a = x->a;
	const char *sdk = cg_param_get(x->params, "ts_sdk");
	tpl_setf(d, "ts_module", "%s.spawn.ts", cg_name_strip_proto(a, f->proto->name));
	tpl_set(d, "ts_sdk", sdk && *sdk ? sdk : "@spawn-gateway/sdk");

	ts_file tf = {.x = x, .f = f};
	idx_build(a, &tf.ix, x->model);
	tf.work = cg_alloc_array(a, tf.ix.n ? tf.ix.n : 1, sizeof *tf.work);
	for (size_t i = 0; i < tf.ix.n; i++) {
		ts_type *t = &tf.ix.v[i];
		if (strcmp(t->file, f->proto->name) == 0 && !is_map_entry(t))
			use(&tf, t->full);
	}
	for (size_t i = 0; i < f->n_actors; i++) {
		const cg_actor *act = &f->actors[i];
		if (act->state)
			use(&tf, act->state->full_name);
		for (size_t j = 0; j < act->n_actions; j++) {
			use(&tf, act->actions[j].input->full_name);
			use(&tf, act->actions[j].output->full_name);
		}
	}
	if (tf.rc)
		return -1;
	for (size_t i = 0; i < tf.ix.n; i++) {
		ts_type *t = &tf.ix.v[i];
		if (t->used && !is_map_entry(t))
			t->ts_name = ts_type_name(a, f->proto->package, t->package, t->full);
	}
	if (check_names(&tf) != 0)
		return -1;
	/* In full-name order, which puts every type after its parent. */
	tpl_list(d, "ts_types");
	for (size_t i = 0; i < tf.ix.n; i++) {
		ts_type *t = &tf.ix.v[i];
		if (!t->ts_name)
			continue;
		tpl_dict *td = tpl_add(d, "ts_types");
		tpl_set(td, "ts_name", t->ts_name);
		tpl_set(td, "ts_full", t->full);
		tpl_set_flag(td, "ts_is_enum", t->en != NULL);
		if (t->msg)
			add_message(&tf, td, t);
		else
			add_enum(&tf, td, t);
	}
	tpl_set_flag(d, "ts_used", tf.n_work > 0 || f->n_actors > 0);
	return tf.rc;
}

static int ts_actor(cg_emit_ctx *x, tpl_dict *d, const cg_file *f, const cg_actor *act)
{
	(void)f;
	if (act->state)
		tpl_set(d, "state_ts",
		        ts_type_name(x->a, package_of_actor(x->a, act), act->state->proto->package,
		                     act->state->full_name));
	return 0;
}

static int ts_action(cg_emit_ctx *x, tpl_dict *d, const cg_actor *act, const cg_action *ac)
{
	cg_arena *a = x->a;
	const char *pkg = package_of_actor(a, act);
	const char *m = cg_name_camel(a, ac->name);
	tpl_set(d, "ts_method", strcmp(m, "constructor") == 0 ? "constructor_" : m);
	tpl_set(d, "input_ts",
	        ts_type_name(a, pkg, ac->input->proto->package, ac->input->full_name));
	tpl_set(d, "output_ts",
	        ts_type_name(a, pkg, ac->output->proto->package, ac->output->full_name));
	return 0;
}

static const char *const ts_params[] = {"ts_sdk", NULL};

const cg_lang cg_lang_ts = {
    .version = CG_LANG_VERSION,
    .name = "ts",
    .params = ts_params,
    .file = ts_file_hook,
    .actor = ts_actor,
    .action = ts_action,
};
