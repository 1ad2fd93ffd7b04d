/* lang_ruby.c - the Ruby emitter: Ruby names for the view of
 * sdk-templates/ruby/.
 *
 * The generated file stands on the files protoc's --ruby_out writes for the
 * same contracts (x_pb.rb, which register the messages in the generated
 * descriptor pool) and on the Ruby runtime (sdk/ruby: spawn_gateway,
 * typed.rb). It finds each message class by its full name in that pool
 * (SpawnGateway::Typed.msgclass), so it needs none of protoc's constant
 * names. Keys it adds (besides the neutral ones of emit.h):
 *   file    rb_file       "dir/x_spawn.rb": the output, beside "dir/x_pb.rb"
 *           rb_requires   list, sorted: rb_require ("dir/x_pb"), the
 *                         protoc files of every message the actors use
 *           rb_modules    list: rb_module, the modules of the proto package
 *                         ("conformance.v1" -> Conformance, V1), as protoc's
 *                         --ruby_out names them
 *           rb_const      "CONFORMANCE": the file's constant prefix
 *   actor   rb_actor      "KEEPER": the actor's constant prefix
 *   action  rb_method     "increment": snake_case(action), '_' appended to
 *                         Ruby keywords
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "names.h"

static const char *rb_require(cg_arena *a, const char *proto_file)
{
	return cg_printf(a, "%s_pb", cg_name_strip_proto(a, proto_file));
}

/* Ruby's keywords (and initialize): a method named so gets '_' appended. */
static const char *const rb_keywords[] = {
    "BEGIN", "END",      "alias", "and",    "begin", "break", "case",       "class",
    "def",   "defined?", "do",    "else",   "elsif", "end",   "ensure",     "false",
    "for",   "if",       "in",    "module", "next",  "nil",   "not",        "or",
    "redo",  "rescue",   "retry", "return", "self",  "super", "then",       "true",
    "undef", "unless",   "until", "when",   "while", "yield", "initialize", NULL,
};

/* "kitchen_sink" -> "KitchenSink": protoc's module name of a package part. */
static const char *rb_module(cg_arena *a, const char *part, size_t n)
{
	cg_buf b = CG_BUF_INIT;
	bool up = true;
	for (size_t i = 0; i < n; i++) {
		char c = part[i];
		if (c == '_') {
			up = true;
			continue;
		}
		cg_buf_putc(&b, up ? (char)toupper((unsigned char)c) : c);
		up = false;
	}
	char *r = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return r;
}

static int rb_file(cg_emit_ctx *x, tpl_dict *d, const cg_file *f)
{
	cg_arena *a = x->a;
	const char *base = cg_name_strip_proto(a, f->proto->name);
	tpl_setf(d, "rb_file", "%s_spawn.rb", base);
	const char *slash = strrchr(base, '/');
	tpl_set(d, "rb_const", cg_name_upper(a, cg_name_snake(a, slash ? slash + 1 : base)));
	tpl_list(d, "rb_modules");
	const char *pkg = f->proto->package;
	while (*pkg) {
		const char *dot = strchr(pkg, '.');
		size_t n = dot ? (size_t)(dot - pkg) : strlen(pkg);
		tpl_set(tpl_add(d, "rb_modules"), "rb_module", rb_module(a, pkg, n));
		pkg += n + (dot ? 1 : 0);
	}
	const cg_msg **ms;
	size_t n = cg_file_msgs(a, f, &ms);
	const char **req = cg_alloc_array(a, n ? n : 1, sizeof *req);
	for (size_t i = 0; i < n; i++)
		req[i] = rb_require(a, ms[i]->proto->name);
	cg_list_unique(d, "rb_requires", "rb_require", req, n);
	return 0;
}

static int rb_actor(cg_emit_ctx *x, tpl_dict *d, const cg_file *f, const cg_actor *act)
{
	(void)f;
	tpl_set(d, "rb_actor", cg_name_upper(x->a, cg_name_snake(x->a, act->name)));
	return 0;
}

static int rb_action(cg_emit_ctx *x, tpl_dict *d, const cg_actor *act, const cg_action *ac)
{
	(void)act;
	tpl_set(d, "rb_method", cg_method_name(x->a, ac->name, rb_keywords));
	return 0;
}

const cg_lang cg_lang_ruby = {
    .version = CG_LANG_VERSION,
    .name = "ruby",
    .file = rb_file,
    .actor = rb_actor,
    .action = rb_action,
};
