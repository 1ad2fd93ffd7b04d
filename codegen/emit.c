/* emit.c - parameters, the language table, the view, and rendering. */
#include "emit.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "names.h"

extern const cg_lang cg_lang_c, cg_lang_python, cg_lang_ts, cg_lang_go, cg_lang_ruby;

/* The languages. A new one is a cg_lang here plus sdk-templates/<name>/. */
static const cg_lang *const langs[] = {&cg_lang_c, &cg_lang_python, &cg_lang_ts, &cg_lang_go,
                                       &cg_lang_ruby};

const cg_lang *cg_lang_find(const char *name)
{
	for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++)
		if (strcmp(langs[i]->name, name) == 0)
			return langs[i];
	return NULL;
}

const char *cg_lang_names(cg_arena *a)
{
	cg_buf b = CG_BUF_INIT;
	for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++)
		cg_buf_printf(&b, "%s%s", i ? ", " : "", langs[i]->name);
	char *s = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return s;
}

/* ---- parameters ---------------------------------------------------------- */

static bool lang_accepts(const cg_lang *l, const char *key)
{
	for (const char *const *k = l->params; k && *k; k++)
		if (strcmp(*k, key) == 0)
			return true;
	return false;
}

int cg_params_parse(cg_params *p, cg_arena *a, const char *text, cg_errors *errs)
{
	size_t errors_before = errs->count;
	memset(p, 0, sizeof *p);
	char *s = cg_strdup(a, text ? text : "");
	size_t items = 1;
	for (const char *c = s; *c; c++)
		items += *c == ',';
	p->extra = cg_alloc_array(a, items, sizeof *p->extra);
	const char *lang = NULL;
	for (char *item = s, *next; item; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		if (!*item)
			continue;
		char *eq = strchr(item, '=');
		if (!eq) {
			cg_errorf(errs, "parameter \"%s\" is not key=value (e.g. lang=c)", item);
			continue;
		}
		*eq = '\0';
		if (strcmp(item, "lang") == 0)
			lang = eq + 1;
		else if (strcmp(item, "templates") == 0)
			p->templates = eq + 1;
		else
			p->extra[p->n_extra++] = (cg_param){item, eq + 1};
	}
	if (!lang || !*lang) {
		cg_errorf(errs,
		          "missing parameter lang=LANG[+LANG...] (languages: %s), e.g. "
		          "--spawn_out=lang=c:OUT_DIR",
		          cg_lang_names(a));
		return -1;
	}
	size_t n = 1;
	for (const char *c = lang; *c; c++)
		n += *c == '+';
	p->langs = cg_alloc_array(a, n, sizeof *p->langs);
	char *l = cg_strdup(a, lang);
	for (char *name = l, *next; name; name = next) {
		next = strchr(name, '+');
		if (next)
			*next++ = '\0';
		const cg_lang *found = cg_lang_find(name);
		if (!found) {
			cg_errorf(
			    errs,
			    "lang=%s: no such language in this protoc-gen-spawn (languages: %s)",
			    name, cg_lang_names(a));
			continue;
		}
		bool dup = false;
		for (size_t i = 0; i < p->n_langs; i++)
			dup |= p->langs[i] == found;
		if (!dup)
			p->langs[p->n_langs++] = found;
	}
	for (size_t i = 0; i < p->n_extra; i++) {
		bool ok = false;
		for (size_t j = 0; j < p->n_langs; j++)
			ok |= lang_accepts(p->langs[j], p->extra[i].key);
		if (!ok)
			cg_errorf(errs, "unknown parameter \"%s\" for lang=%s", p->extra[i].key,
			          lang);
	}
	return errs->count == errors_before ? 0 : -1;
}

const char *cg_param_get(const cg_params *p, const char *key)
{
	const char *v = NULL;
	for (size_t i = 0; i < p->n_extra; i++)
		if (strcmp(p->extra[i].key, key) == 0)
			v = p->extra[i].value; /* the last one wins, as with protoc's options */
	return v;
}

/* ---- finding templates --------------------------------------------------- */

#ifndef SPAWN_TEMPLATES_REL_DIR
#define SPAWN_TEMPLATES_REL_DIR "../share/spawn/sdk-templates"
#endif
#ifndef SPAWN_TEMPLATES_SOURCE_DIR
#define SPAWN_TEMPLATES_SOURCE_DIR ""
#endif
#ifndef SPAWN_TEMPLATES_INSTALL_DIR
#define SPAWN_TEMPLATES_INSTALL_DIR ""
#endif

static bool has_manifest(cg_arena *a, const char *dir, const cg_lang *lang)
{
	struct stat st;
	return *dir && stat(cg_printf(a, "%s/%s/manifest", dir, lang->name), &st) == 0 &&
	       S_ISREG(st.st_mode);
}

static const char *exe_relative(cg_arena *a)
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n <= 0)
		return "";
	buf[n] = '\0';
	char *slash = strrchr(buf, '/');
	if (!slash)
		return "";
	*slash = '\0';
	return cg_printf(a, "%s/%s", buf, SPAWN_TEMPLATES_REL_DIR);
}

const char *cg_templates_dir(cg_arena *a, const cg_params *p, const cg_lang *lang, cg_errors *errs)
{
	if (p->templates) {
		if (has_manifest(a, p->templates, lang))
			return p->templates;
		cg_errorf(errs, "templates=%s: no %s/manifest there", p->templates, lang->name);
		return NULL;
	}
	const char *cands[] = {exe_relative(a), SPAWN_TEMPLATES_SOURCE_DIR,
	                       SPAWN_TEMPLATES_INSTALL_DIR};
	cg_buf tried = CG_BUF_INIT;
	for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
		if (has_manifest(a, cands[i], lang)) {
			cg_buf_fini(&tried);
			return cands[i];
		}
		if (*cands[i])
			cg_buf_printf(&tried, "%s%s", tried.len ? ", " : "", cands[i]);
	}
	cg_errorf(errs, "no templates for lang=%s (looked in %s); pass templates=DIR", lang->name,
	          cg_buf_str(&tried));
	cg_buf_fini(&tried);
	return NULL;
}

/* ---- loading templates --------------------------------------------------- */

typedef struct entry {
	const char *tpl_name; /* "c/header.h.tpl" */
	tpl *body;
	tpl *output_name;
} entry;

typedef struct manifest {
	entry *entries;
	size_t n;
} manifest;

static char *read_file(cg_arena *a, const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	cg_buf b = CG_BUF_INIT;
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		cg_buf_add(&b, chunk, n);
	bool err = ferror(f);
	fclose(f);
	*len = b.len;
	char *s = err ? NULL : cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return s;
}

static int load_manifest(manifest *m, cg_arena *a, const char *dir, const cg_lang *lang,
                         cg_errors *errs)
{
	size_t errors_before = errs->count;
	const char *path = cg_printf(a, "%s/%s/manifest", dir, lang->name);
	size_t len;
	char *text = read_file(a, path, &len);
	if (!text) {
		cg_errorf(errs, "%s: %s", path, strerror(errno));
		return -1;
	}
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	m->entries = cg_alloc_array(a, lines, sizeof *m->entries);
	m->n = 0;
	int line_no = 0;
	for (char *line = text, *next; line; line = next) {
		line_no++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *t = line + strspn(line, " \t\r");
		if (!*t || *t == '#')
			continue;
		char *sep = t + strcspn(t, " \t");
		char *out = sep + strspn(sep, " \t");
		char *end = out + strcspn(out, " \t\r");
		if (!*sep || !*out || *(end + strspn(end, " \t\r"))) {
			cg_errorf(errs, "%s:%d: expected \"TEMPLATE OUTPUT-NAME\"", path, line_no);
			continue;
		}
		*sep = '\0';
		*end = '\0';
		entry *e = &m->entries[m->n];
		e->tpl_name = cg_printf(a, "%s/%s", lang->name, t);
		const char *tpath = cg_printf(a, "%s/%s/%s", dir, lang->name, t);
		size_t tlen;
		char *body = read_file(a, tpath, &tlen);
		if (!body) {
			cg_errorf(errs, "%s: %s", tpath, strerror(errno));
			continue;
		}
		const char *oname = cg_printf(a, "%s/manifest:%d", lang->name, line_no);
		if (tpl_parse(&e->body, a, e->tpl_name, body, tlen, errs) != 0 ||
		    tpl_parse(&e->output_name, a, oname, out, strlen(out), errs) != 0)
			continue;
		m->n++;
	}
	return errs->count == errors_before ? 0 : -1;
}

/* ---- the view ------------------------------------------------------------ */

static int set_type(cg_emit_ctx *x, const cg_lang *lang, tpl_dict *d, const char *prefix,
                    const cg_msg *m)
{
	cg_arena *a = x->a;
	tpl_set(d, prefix, m->full_name);
	tpl_set(d, cg_printf(a, "%s_name", prefix), m->name);
	tpl_set(d, cg_printf(a, "%s_file", prefix), m->proto->name);
	tpl_set(d, cg_printf(a, "%s_package", prefix), m->proto->package);
	tpl_setf(d, cg_printf(a, "%s_url", prefix), "type.googleapis.com/%s", m->full_name);
	return lang->type ? lang->type(x, d, prefix, m) : 0;
}

static const char *kind_name(cg_kind k)
{
	switch (k) {
	case CG_KIND_NAMED:
		return "NAMED";
	case CG_KIND_UNNAMED:
		return "UNNAMED";
	case CG_KIND_POOLED:
		return "POOLED";
	}
	return "NAMED";
}

/* ---- the contract's descriptors --------------------------------------------------- */

/* The files every gateway has built in (proto/CMakeLists.txt,
 * GW_BUILTIN_PROTOS, with their imports): left out of the sets, which
 * they would only make bigger (the gateway skips them anyway). */
static bool gateway_builtin(const char *name)
{
	static const char *const builtin[] = {
	    "google/protobuf/any.proto",
	    "google/protobuf/api.proto",
	    "google/protobuf/descriptor.proto",
	    "google/protobuf/duration.proto",
	    "google/protobuf/empty.proto",
	    "google/protobuf/field_mask.proto",
	    "google/protobuf/source_context.proto",
	    "google/protobuf/struct.proto",
	    "google/protobuf/timestamp.proto",
	    "google/protobuf/type.proto",
	    "google/protobuf/wrappers.proto",
	    "spawn/actors/actor.proto",
	    "spawn/actors/extensions.proto",
	    "spawn/actors/protocol.proto",
	};
	for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
		if (!strcmp(name, builtin[i]))
			return true;
	return false;
}

/* contract_set packs f's file and every file it imports, transitively
 * (breadth first, each once; the gateway's built-in files left out),
 * without source_code_info, as a serialized
 * google.protobuf.FileDescriptorSet: what the runtimes send the gateway
 * (docs/protocol.md, "Contracts"). Returns its length; *out in arena a. */
static size_t contract_set(cg_arena *a, const cg_model *m, const cg_proto *f, uint8_t **out)
{
	const cg_proto **q = cg_alloc_array(a, m->n_protos + 1, sizeof *q);
	size_t nq = 0;
	q[nq++] = f;
	for (size_t i = 0; i < nq; i++) {
		const Google__Protobuf__FileDescriptorProto *fd = q[i]->fd;
		for (size_t d = 0; d < fd->n_dependency; d++) {
			const cg_proto *dep = NULL;
			for (size_t k = 0; k < m->n_protos && !dep; k++)
				if (!strcmp(m->protos[k].name, fd->dependency[d]))
					dep = &m->protos[k];
			bool seen = false;
			for (size_t k = 0; k < nq && !seen; k++)
				seen = q[k] == dep;
			if (dep && !seen && !gateway_builtin(dep->name))
				q[nq++] = dep;
		}
	}
	cg_buf b = CG_BUF_INIT;
	for (size_t i = 0; i < nq; i++) {
		Google__Protobuf__FileDescriptorProto fd = *q[i]->fd;
		fd.source_code_info = NULL;
		size_t len = google__protobuf__file_descriptor_proto__get_packed_size(&fd);
		uint8_t *p = cg_alloc(a, len ? len : 1);
		google__protobuf__file_descriptor_proto__pack(&fd, p);
		uint8_t hdr[11];
		size_t h = 0;
		hdr[h++] = 0x0a; /* FileDescriptorSet.file, length-delimited */
		for (size_t v = len;; v >>= 7) {
			hdr[h++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
			if (v < 0x80)
				break;
		}
		cg_buf_add(&b, hdr, h);
		cg_buf_add(&b, p, len);
	}
	*out = cg_alloc(a, b.len ? b.len : 1);
	if (b.len)
		memcpy(*out, b.data, b.len);
	size_t n = b.len;
	cg_buf_fini(&b);
	return n;
}

/* set_contract gives the view the set as contract_b64 (base64) and
 * contract_c (the bytes as a C initializer list, "0x0a, 0x12, ..."). */
static void set_contract(cg_arena *a, tpl_dict *d, const cg_model *m, const cg_proto *f)
{
	uint8_t *set;
	size_t n = contract_set(a, m, f, &set);
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *e = cg_alloc(a, (n + 2) / 3 * 4 + 1), *o = e;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)set[i] << 16 | (i + 1 < n ? (uint32_t)set[i + 1] << 8 : 0) |
		             (i + 2 < n ? set[i + 2] : 0);
		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? b64[v & 63] : '=';
	}
	*o = 0;
	tpl_set(d, "contract_b64", e);
	tpl_setf(d, "contract_len", "%zu", n);
	cg_buf c = CG_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		char x[8];
		snprintf(x, sizeof x, "0x%02x,", set[i]);
		cg_buf_add(&c, x, 5);
		if (i + 1 < n)
			cg_buf_add(&c, i % 12 == 11 ? "\n\t" : " ", i % 12 == 11 ? 2 : 1);
	}
	char *cs = cg_alloc(a, c.len + 1);
	if (c.len)
		memcpy(cs, c.data, c.len);
	cs[c.len] = 0;
	cg_buf_fini(&c);
	tpl_set(d, "contract_c", cs);
}

static tpl_dict *build_view(cg_emit_ctx *x, const cg_lang *lang, const cg_file *f)
{
	cg_arena *a = x->a;
	int rc = 0;
	tpl_dict *d = tpl_dict_create(a);
	x->file = f;
	tpl_setf(d, "banner", "Generated by protoc-gen-spawn from %s. DO NOT EDIT.",
	         f->proto->name);
	tpl_set(d, "file", f->proto->name);
	tpl_set(d, "file_base", cg_name_strip_proto(a, f->proto->name));
	tpl_set(d, "package", f->proto->package);
	set_contract(a, d, x->model, f->proto);
	tpl_set_flag(d, "has_actors", f->n_actors > 0);
	tpl_list(d, "actors");
	bool any_state = false;
	if (lang->file)
		rc |= lang->file(x, d, f);
	for (size_t i = 0; i < f->n_actors; i++) {
		const cg_actor *act = &f->actors[i];
		tpl_dict *ad = tpl_add(d, "actors");
		tpl_set(ad, "actor", act->name);
		tpl_set(ad, "actor_full", act->full_name);
		tpl_set(ad, "kind", kind_name(act->kind));
		tpl_set_flag(ad, "named", act->kind == CG_KIND_NAMED);
		tpl_set_flag(ad, "unnamed", act->kind == CG_KIND_UNNAMED);
		tpl_set_flag(ad, "pooled", act->kind == CG_KIND_POOLED);
		tpl_set_flag(ad, "stateful", act->stateful);
		tpl_set_flag(ad, "has_state", act->state != NULL);
		if (act->state) {
			any_state = true;
			rc |= set_type(x, lang, ad, "state", act->state);
		}
		tpl_setf(ad, "deactivate_timeout_ms", "%lld",
		         (long long)act->deactivate_timeout_ms);
		tpl_setf(ad, "snapshot_interval_ms", "%lld", (long long)act->snapshot_interval_ms);
		tpl_setf(ad, "n_actions", "%zu", act->n_actions);
		tpl_list(ad, "actions");
		if (lang->actor)
			rc |= lang->actor(x, ad, f, act);
		for (size_t j = 0; j < act->n_actions; j++) {
			const cg_action *ac = &act->actions[j];
			tpl_dict *cd = tpl_add(ad, "actions");
			tpl_set(cd, "action", ac->name);
			rc |= set_type(x, lang, cd, "input", ac->input);
			rc |= set_type(x, lang, cd, "output", ac->output);
			if (lang->action)
				rc |= lang->action(x, cd, act, ac);
		}
	}
	tpl_set_flag(d, "has_state", any_state);
	if (lang->file_done)
		rc |= lang->file_done(x, d, f);
	return rc ? NULL : d;
}

/* ---- rendering ----------------------------------------------------------- */

static void add_output(cg_arena *a, cg_outputs *out, const char *name, const char *content)
{
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 8;
		cg_output *items = cg_alloc_array(a, cap, sizeof *items);
		if (out->n)
			memcpy(items, out->items, out->n * sizeof *items);
		out->items = items;
		out->cap = cap;
	}
	out->items[out->n++] = (cg_output){name, content};
}

static bool banner_on_top(const char *text, const char *banner)
{
	const char *end = text;
	for (int lines = 0; lines < 3 && *end; lines++) {
		const char *nl = strchr(end, '\n');
		end = nl ? nl + 1 : end + strlen(end);
	}
	const char *hit = strstr(text, banner);
	return hit && hit < end;
}

static bool safe_output_name(const char *name)
{
	if (!*name || *name == '/' || strstr(name, "//"))
		return false;
	for (const char *p = name; p; p = strchr(p, '/')) {
		if (*p == '/')
			p++;
		if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0'))
			return false;
	}
	return true;
}

int cg_emit(const cg_model *m, const cg_lang *lang, const cg_params *p, const char *dir,
            cg_arena *a, cg_outputs *out, cg_errors *errs)
{
	size_t errors_before = errs->count;
	manifest man;
	if (load_manifest(&man, a, dir, lang, errs) != 0)
		return -1;
	cg_emit_ctx x = {.a = a, .params = p, .model = m, .errs = errs};
	for (size_t i = 0; i < m->n_files; i++) {
		tpl_dict *view = build_view(&x, lang, &m->files[i]);
		if (!view)
			continue;
		const char *banner = tpl_get(view, "banner");
		for (size_t j = 0; j < man.n; j++) {
			cg_buf name = CG_BUF_INIT, text = CG_BUF_INIT;
			if (tpl_render(man.entries[j].output_name, view, a, &name, errs) == 0 &&
			    tpl_render(man.entries[j].body, view, a, &text, errs) == 0) {
				if (!safe_output_name(cg_buf_str(&name)))
					cg_errorf(errs,
					          "%s: output name \"%s\" is not a relative path",
					          man.entries[j].tpl_name, cg_buf_str(&name));
				else if (!banner_on_top(cg_buf_str(&text), banner))
					cg_errorf(errs,
					          "%s: the output does not start with $banner$",
					          man.entries[j].tpl_name);
				else
					add_output(a, out, cg_buf_take(&name, a),
					           cg_buf_take(&text, a));
			}
			cg_buf_fini(&name);
			cg_buf_fini(&text);
		}
	}
	return errs->count == errors_before ? 0 : -1;
}

/* ---- helpers of the language hooks ------------------------------------------------- */

size_t cg_file_msgs(cg_arena *a, const cg_file *f, const cg_msg ***out)
{
	size_t cap = 1;
	for (size_t i = 0; i < f->n_actors; i++)
		cap += 1 + 2 * f->actors[i].n_actions;
	const cg_msg **ms = cg_alloc_array(a, cap, sizeof *ms);
	size_t n = 0;
	for (size_t i = 0; i < f->n_actors; i++) {
		const cg_actor *act = &f->actors[i];
		if (act->state)
			ms[n++] = act->state;
		for (size_t j = 0; j < act->n_actions; j++) {
			ms[n++] = act->actions[j].input;
			ms[n++] = act->actions[j].output;
		}
	}
	*out = ms;
	return n;
}

static int cmp_str(const void *p, const void *q)
{
	return strcmp(*(const char *const *)p, *(const char *const *)q);
}

void cg_list_unique(tpl_dict *d, const char *list, const char *key, const char **v, size_t n)
{
	if (n)
		qsort(v, n, sizeof *v, cmp_str);
	tpl_list(d, list);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(v[i - 1], v[i]) != 0)
			tpl_set(tpl_add(d, list), key, v[i]);
}

const char *cg_method_name(cg_arena *a, const char *name, const char *const *keywords)
{
	const char *id = cg_name_snake(a, name);
	for (const char *const *k = keywords; *k; k++)
		if (strcmp(*k, id) == 0)
			return cg_printf(a, "%s_", id);
	return id;
}
