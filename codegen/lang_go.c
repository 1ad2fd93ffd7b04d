/* lang_go.c - the Go emitter: Go names for the view of sdk-templates/go/.
 *
 * The generated file stands on the package protoc-gen-go (protobuf-go
 * v1.28, Debian's) writes for the same contract, and on the Go runtime
 * (sdk/go/spawn: its typed layer, typed.go). It goes into the contract's Go
 * package, where protoc-gen-go's default (paths=import) puts x.pb.go:
 * "IMPORT/PATH/x.spawn.go". So `--go_out=DIR --spawn_out=lang=go:DIR` fill
 * one package.
 *
 * Go packages: a file's `option go_package = "import/path;name"` (the name
 * defaults to the path's last element). A file without it takes
 * go_import_prefix=PREFIX (plugin parameter) + "/" + its proto package with
 * '.' as '/' ("golden/golden/common_types"); give protoc-gen-go the same
 * with --go_opt=M<file>=<path>. Neither is an error naming the file.
 *
 * Keys it adds (besides the neutral ones of emit.h):
 *   file    go_file       "import/path/x.spawn.go" (the output)
 *           go_package    the Go package name
 *           go_desc_var   "IncrementorContractDescriptors": the file's set
 *           go_runtime    the runtime's import path (go_runtime=PATH;
 *                         default "spawn-gateway/go/spawn")
 *           go_imports    list, sorted by path: go_alias, go_path (the
 *                         other Go packages the actors' types live in)
 *   actor   go_kind       "spawn.Named", "spawn.Unnamed" or "spawn.Pooled"
 *           go_state_type the state's message name ("pkg.State")
 *   action  go_method     the exported method name (GoCamelCase of the rpc)
 *   type    P_go          "Name" or "alias.Name": the Go type (a pointer is
 *                         *P_go), protoc-gen-go's name for it
 */
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "names.h"

#define GO_RUNTIME_DEFAULT "spawn-gateway/go/spawn"

static bool is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

/* protobuf-go's GoCamelCase (internal/strs): the Go name of a proto name. */
static const char *go_camel(cg_arena *a, const char *s)
{
	cg_buf b = CG_BUF_INIT;
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.' && i + 1 < n && is_lower(s[i + 1])) {
			/* skip '.' in ".{{lowercase}}" */
		} else if (c == '.') {
			cg_buf_putc(&b, '_');
		} else if (c == '_' && (i == 0 || s[i - 1] == '.')) {
			cg_buf_putc(&b, 'X');
		} else if (c == '_' && i + 1 < n && is_lower(s[i + 1])) {
			/* skip '_' in "_{{lowercase}}" */
		} else if (c >= '0' && c <= '9') {
			cg_buf_putc(&b, c);
		} else {
			if (is_lower(c))
				c = (char)(c - 'a' + 'A');
			cg_buf_putc(&b, c);
			for (; i + 1 < n && is_lower(s[i + 1]); i++)
				cg_buf_putc(&b, s[i + 1]);
		}
	}
	char *r = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return r;
}

/* The Go import path and package name of a file; -1 when it has none
 * (with report, the error is appended). */
static int go_pkg(cg_emit_ctx *x, const cg_proto *p, bool report, const char **path,
                  const char **name)
{
	cg_arena *a = x->a;
	const Google__Protobuf__FileOptions *o = p->fd->options;
	const char *gp = o && o->go_package && *o->go_package ? o->go_package : NULL;
	if (gp) {
		const char *semi = strchr(gp, ';');
		if (semi) {
			*path = cg_printf(a, "%.*s", (int)(semi - gp), gp);
			*name = semi + 1;
			return 0;
		}
		*path = gp;
	} else {
		const char *prefix = cg_param_get(x->params, "go_import_prefix");
		if (!prefix || !*prefix) {
			if (!report)
				return -1;
			cg_errorf(x->errs,
			          "%s: no option go_package: add one, or give the plugin "
			          "go_import_prefix=PREFIX (lang=go)",
			          p->name);
			return -1;
		}
		char *pk = cg_printf(a, "%s", *p->package ? p->package : "nopackage");
		for (char *c = pk; *c; c++)
			if (*c == '.')
				*c = '/';
		*path = cg_printf(a, "%s/%s", prefix, pk);
	}
	const char *slash = strrchr(*path, '/');
	char *nm = cg_printf(a, "%s", slash ? slash + 1 : *path);
	for (char *c = nm; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9')))
			*c = '_';
	*name = nm;
	return 0;
}

/* The alias of another package in the generated file: its name, then the
 * path's elements joined, made an identifier. */
static const char *go_alias(cg_arena *a, const char *path)
{
	char *s = cg_printf(a, "%s", path);
	for (char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9')))
			*c = '_';
	return s;
}

static int cmp_str(const void *p, const void *q)
{
	return strcmp(*(const char *const *)p, *(const char *const *)q);
}

static int go_file(cg_emit_ctx *x, tpl_dict *d, const cg_file *f)
{
	cg_arena *a = x->a;
	const char *path, *name;
	if (go_pkg(x, f->proto, true, &path, &name) < 0)
		return -1;
	const char *base = strrchr(cg_name_strip_proto(a, f->proto->name), '/');
	base = base ? base + 1 : cg_name_strip_proto(a, f->proto->name);
	tpl_setf(d, "go_file", "%s/%s.spawn.go", path, base);
	tpl_set(d, "go_package", name);
	tpl_setf(d, "go_desc_var", "%sContractDescriptors", go_camel(a, base));
	const char *rt = cg_param_get(x->params, "go_runtime");
	tpl_set(d, "go_runtime", rt && *rt ? rt : GO_RUNTIME_DEFAULT);
	/* The other packages the actors' types live in, each once, sorted. */
	const cg_msg **ms;
	size_t n_ms = cg_file_msgs(a, f, &ms);
	const char **paths = cg_alloc_array(a, n_ms ? n_ms : 1, sizeof *paths);
	const cg_proto **bad = cg_alloc_array(a, n_ms ? n_ms : 1, sizeof *bad); /* once each */
	size_t n = 0, n_bad = 0;
	int rc = 0;
	for (size_t j = 0; j < n_ms; j++) {
		const char *p, *nm;
		if (go_pkg(x, ms[j]->proto, false, &p, &nm) < 0) {
			size_t b = 0;
			while (b < n_bad && bad[b] != ms[j]->proto)
				b++;
			if (b == n_bad) {
				bad[n_bad++] = ms[j]->proto;
				go_pkg(x, ms[j]->proto, true, &p, &nm);
			}
			rc = -1;
			continue;
		}
		if (strcmp(p, path) != 0)
			paths[n++] = p;
	}
	if (n)
		qsort(paths, n, sizeof *paths, cmp_str);
	tpl_list(d, "go_imports");
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(paths[i - 1], paths[i]) == 0)
			continue;
		tpl_dict *id = tpl_add(d, "go_imports");
		tpl_set(id, "go_path", paths[i]);
		tpl_set(id, "go_alias", go_alias(a, paths[i]));
	}
	return rc;
}

static int go_actor(cg_emit_ctx *x, tpl_dict *d, const cg_file *f, const cg_actor *act)
{
	(void)x;
	(void)f;
	tpl_set(d, "go_kind",
	        act->kind == CG_KIND_UNNAMED  ? "spawn.Unnamed"
	        : act->kind == CG_KIND_POOLED ? "spawn.Pooled"
	                                      : "spawn.Named");
	if (act->state)
		tpl_set(d, "go_state_type", act->state->full_name);
	return 0;
}

static int go_action(cg_emit_ctx *x, tpl_dict *d, const cg_actor *act, const cg_action *ac)
{
	(void)act;
	tpl_set(d, "go_method", go_camel(x->a, ac->name));
	return 0;
}

static int go_type(cg_emit_ctx *x, tpl_dict *d, const char *prefix, const cg_msg *m)
{
	cg_arena *a = x->a;
	const char *pkg = m->proto->package;
	size_t skip = *pkg ? strlen(pkg) + 1 : 0; /* "pkg." */
	const char *gname = go_camel(a, m->full_name + skip);
	const char *path, *name;
	/* Files without a Go package were reported by the file hook. */
	if (go_pkg(x, m->proto, false, &path, &name) < 0)
		return -1;
	const char *key = cg_printf(a, "%s_go", prefix);
	const char *self = NULL, *self_name;
	if (x->file && go_pkg(x, x->file->proto, false, &self, &self_name) < 0)
		return -1;
	if (self && strcmp(path, self) == 0)
		tpl_set(d, key, gname);
	else
		tpl_setf(d, key, "%s.%s", go_alias(a, path), gname);
	return 0;
}

static const char *const go_params[] = {"go_import_prefix", "go_runtime", NULL};

const cg_lang cg_lang_go = {
    .version = CG_LANG_VERSION,
    .name = "go",
    .params = go_params,
    .file = go_file,
    .actor = go_actor,
    .action = go_action,
    .type = go_type,
};
