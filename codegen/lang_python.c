/* lang_python.c - the Python emitter: Python names for the view of
 * sdk-templates/python/.
 *
 * The generated module stands on the modules protoc's --python_out writes
 * for the same contracts (x_pb2.py) and on the Python SDK (sdk/python:
 * spawn_typed, over spawn_host and spawn_client). Keys it adds (besides
 * the neutral ones of emit.h):
 *   file    py_module    "dir/x_spawn.py": the output, beside protoc's
 *                        "dir/x_pb2.py"
 *           py_imports   list, sorted, one per module of protoc's that the
 *                        file's actors use: py_import, the statement
 *                        ("import x_pb2 as x__pb2",
 *                        "from dir import x_pb2 as dir_dot_x__pb2")
 *   action  py_method    "add": snake_case(action), '_' appended to Python
 *                        keywords (the method of the client and of the
 *                        actor base class)
 *   type    P_py         "x__pb2.Outer.Inner": the message class
 *
 * protoc's names (python_generator.cc): module "dir/x-y.proto" ->
 * "dir.x_y_pb2", aliased with '_' doubled and '.' as "_dot_".
 */
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "names.h"

/* The module protoc --python_out writes for a .proto: "a.b.x_pb2". */
static const char *py_module_name(cg_arena *a, const char *proto_file)
{
	char *s = cg_name_strip_proto(a, proto_file);
	for (char *p = s; *p; p++) {
		if (*p == '-')
			*p = '_';
		else if (*p == '/')
			*p = '.';
	}
	return cg_printf(a, "%s_pb2", s);
}

/* protoc's alias of that module inside generated code. */
static const char *py_module_alias(cg_arena *a, const char *module)
{
	cg_buf b = CG_BUF_INIT;
	for (const char *p = module; *p; p++) {
		if (*p == '_')
			cg_buf_puts(&b, "__");
		else if (*p == '.')
			cg_buf_puts(&b, "_dot_");
		else
			cg_buf_putc(&b, *p);
	}
	char *r = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return r;
}

static const char *py_import(cg_arena *a, const char *proto_file)
{
	const char *module = py_module_name(a, proto_file);
	const char *alias = py_module_alias(a, module);
	const char *dot = strrchr(module, '.');
	if (!dot)
		return cg_printf(a, "import %s as %s", module, alias);
	return cg_printf(a, "from %.*s import %s as %s", (int)(dot - module), module, dot + 1,
	                 alias);
}

/* Python's keywords: a method named so gets '_' appended. */
static const char *const py_keywords[] = {
    "False", "None",     "True",  "and",    "as",   "assert", "async",  "await",    "break",
    "class", "continue", "def",   "del",    "elif", "else",   "except", "finally",  "for",
    "from",  "global",   "if",    "import", "in",   "is",     "lambda", "nonlocal", "not",
    "or",    "pass",     "raise", "return", "try",  "while",  "with",   "yield",    NULL,
};

static int py_file(cg_emit_ctx *x, tpl_dict *d, const cg_file *f)
{
	cg_arena *a = x->a;
	tpl_setf(d, "py_module", "%s_spawn.py", cg_name_strip_proto(a, f->proto->name));
	/* The modules of every message the actors use, each once, sorted. */
	const cg_msg **ms;
	size_t n = cg_file_msgs(a, f, &ms);
	const char **imports = cg_alloc_array(a, n ? n : 1, sizeof *imports);
	for (size_t i = 0; i < n; i++)
		imports[i] = py_import(a, ms[i]->proto->name);
	cg_list_unique(d, "py_imports", "py_import", imports, n);
	return 0;
}

static int py_action(cg_emit_ctx *x, tpl_dict *d, const cg_actor *act, const cg_action *ac)
{
	(void)act;
	tpl_set(d, "py_method", cg_method_name(x->a, ac->name, py_keywords));
	return 0;
}

static int py_type(cg_emit_ctx *x, tpl_dict *d, const char *prefix, const cg_msg *m)
{
	cg_arena *a = x->a;
	const char *pkg = m->proto->package;
	size_t skip = *pkg ? strlen(pkg) + 1 : 0; /* "pkg." */
	const char *alias = py_module_alias(a, py_module_name(a, m->proto->name));
	tpl_setf(d, cg_printf(a, "%s_py", prefix), "%s.%s", alias, m->full_name + skip);
	return 0;
}

const cg_lang cg_lang_python = {
    .version = CG_LANG_VERSION,
    .name = "python",
    .file = py_file,
    .action = py_action,
    .type = py_type,
};
