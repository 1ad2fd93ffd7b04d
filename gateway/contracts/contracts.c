/* contracts.c - the pool of registered .proto descriptors (contracts.h).
 *
 * Invariants:
 *   1. The pool (files, the symbol, method and extension indexes) is
 *      replaced whole under the write lock: a set is checked against a
 *      candidate copy first, so a refused set changes nothing.
 *   2. No symbol is defined by two files of the pool.
 *   3. Every import of every file resolves to a file of the pool, and every
 *      served method's input and output types are messages of the pool.
 *   4. Lookups copy out under the read lock: nothing they return points
 *      into the pool.
 */
#include "contracts.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "google/protobuf/descriptor.pb-c.h"

/* The built-in set (contracts_builtin.c, generated at build time). */
extern const unsigned char gw_contracts_builtin[];
extern const size_t gw_contracts_builtin_len;

#define OPT_ACTOR    4890128u  /* ServiceOptions: spawn.actors.actor (ActorOpts) */
#define OPT_ACTOR_ID 9999u     /* FieldOptions: spawn.actors.actor_id (bool) */
#define ACTOR_KIND   9u        /* ActorOpts.kind */
#define OPT_HTTP     72295728u /* MethodOptions: google.api.http (HttpRule) */

typedef struct cfile {
	char *name;
	uint8_t *bytes; /* owned: the FileDescriptorProto as protobuf-c packs it */
	size_t len;
	Google__Protobuf__FileDescriptorProto *fd; /* owned (protobuf-c, heap) */
	bool builtin;                              /* never replaced, never released */
	bool fixed;                                /* static (--descriptors): never replaced */
	const void **owners;                       /* borrowed tokens (hosts) */
	size_t nowners, capowners;
} cfile;

enum { SYM_OTHER, SYM_MSG };
typedef struct sym {
	char *name; /* owned, full name without a leading dot */
	cfile *f;   /* borrowed from the pool */
	int kind;
	const Google__Protobuf__DescriptorProto *msg; /* SYM_MSG: borrowed from f->fd */
} sym;

typedef struct meth {
	char *path; /* owned: "/pkg.Svc/Method" */
	gw_contract_method m;
	const uint8_t *http; /* borrowed from the file's descriptor: the serialized
	                        google.api.HttpRule option; NULL = none */
	size_t http_len;
} meth;

typedef struct ext {
	char *extendee; /* owned, no leading dot */
	int32_t number;
	cfile *f;
} ext;

typedef struct index {
	sym *syms;
	size_t nsyms, capsyms;
	meth *meths;
	size_t nmeths, capmeths;
	ext *exts;
	size_t nexts, capexts;
	char **services; /* owned: actor services' full names, sorted */
	size_t nservices, capservices;
} index_t;

struct gw_contracts {
	pthread_rwlock_t lk;
	gw_contracts_mirror mirror; /* version 0 = none */
	cfile **files;              /* owned */
	size_t nfiles;
	size_t total;
	index_t ix;
	size_t max_set, max_total;
	/* Owners that are other members (gw_contracts_add_peer): their files
	 * are not exported (gw_contracts_export). Each token borrowed. */
	const void **peers;
	size_t npeers, cappeers;
	atomic_uint_fast64_t gen; /* + 1 at each pool applied and each release */
};

/* ---- small helpers ------------------------------------------------------------------ */

static bool grow(void **p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 16;
	void *q = realloc(*p, nc * size);
	if (!q)
		return false;
	*p = q;
	*cap = nc;
	return true;
}

static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 2);
	if (!s)
		return NULL;
	if (la) {
		memcpy(s, a, la);
		s[la] = '.';
		memcpy(s + la + 1, b, lb + 1);
	} else {
		memcpy(s, b, lb + 1);
	}
	return s;
}

static const char *undot(const char *s)
{
	return s && s[0] == '.' ? s + 1 : (s ? s : "");
}

/* ident_ok: [A-Za-z_][A-Za-z0-9_]*, bounded. */
static bool ident_ok(const char *s)
{
	if (!s || !s[0] || strlen(s) >= GW_CONTRACTS_NAME_BYTES)
		return false;
	for (const char *p = s; *p; p++) {
		char ch = *p;
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
		if (!alpha && !(p > s && ch >= '0' && ch <= '9'))
			return false;
	}
	return true;
}

/* dotted_ok: identifiers joined by dots, an optional leading dot; empty
 * when allow_empty. */
static bool dotted_ok(const char *s, bool allow_empty)
{
	if (!s || !s[0])
		return allow_empty;
	if (strlen(s) >= GW_CONTRACTS_NAME_BYTES)
		return false;
	const char *p = s[0] == '.' ? s + 1 : s;
	char part[GW_CONTRACTS_NAME_BYTES];
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		memcpy(part, p, n);
		part[n] = 0;
		if (!ident_ok(part))
			return false;
		if (!dot)
			return true;
		p = dot + 1;
	}
}

/* file_name_ok: printable ASCII without spaces or backslashes, no ".."
 * segment, not absolute, bounded. */
static bool file_name_ok(const char *s)
{
	if (!s || !s[0] || s[0] == '/' || strlen(s) >= GW_CONTRACTS_NAME_BYTES)
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '\\')
			return false;
	return !strstr(s, "..");
}

/* ---- the wire: depth bound and options ---------------------------------------------- */

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (int sh = 0; sh < 64 && *p < end; sh += 7) {
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << sh;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

/* next_field reads one field: its number, wire type and, for LEN, the
 * value. Returns false on malformed input. */
static bool next_field(const uint8_t **p, const uint8_t *end, uint32_t *num, int *wt,
                       const uint8_t **val, size_t *vlen, uint64_t *vint)
{
	uint64_t key, v = 0;
	if (!varint(p, end, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
		return false;
	*num = (uint32_t)(key >> 3);
	*wt = (int)(key & 7);
	*val = NULL;
	*vlen = 0;
	switch (*wt) {
	case 0:
		if (!varint(p, end, &v))
			return false;
		*vint = v;
		return true;
	case 1:
		if (end - *p < 8)
			return false;
		*p += 8;
		return true;
	case 5:
		if (end - *p < 4)
			return false;
		*p += 4;
		return true;
	case 2:
		if (!varint(p, end, &v) || v > (uint64_t)(end - *p))
			return false;
		*val = *p;
		*vlen = (size_t)v;
		*p += v;
		return true;
	default:
		return false; /* groups are not used by descriptors */
	}
}

/* depth_ok walks data as a message of type d and bounds the nesting
 * (protobuf-c's unpacker recurses without a limit). */
static bool depth_ok(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                     int depth)
{
	if (depth > GW_CONTRACTS_DEPTH)
		return false;
	const uint8_t *p = data, *end = data + len;
	while (p < end) {
		uint32_t num;
		int wt;
		const uint8_t *val;
		size_t vlen;
		uint64_t v;
		if (!next_field(&p, end, &num, &wt, &val, &vlen, &v))
			return false;
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, num);
		if (f && wt == 2 && f->type == PROTOBUF_C_TYPE_MESSAGE &&
		    !depth_ok(f->descriptor, val, vlen, depth + 1))
			return false;
	}
	return true;
}

/* opt_varint finds the varint extension field num in the unknown fields of
 * an options message (protobuf-c keeps extensions there): *v is its last
 * value. Returns whether it occurs. */
static bool opt_varint(const ProtobufCMessage *opts, uint32_t num, uint64_t *v)
{
	bool found = false;
	for (unsigned i = 0; opts && i < opts->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &opts->unknown_fields[i];
		if (u->tag != num || u->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT)
			continue;
		const uint8_t *p = u->data;
		if (varint(&p, u->data + u->len, v))
			found = true;
	}
	return found;
}

/* actor_kind: whether opts carry the actor option, and its kind. */
static bool actor_kind(const ProtobufCMessage *opts, int *kind)
{
	bool found = false;
	*kind = GW_KIND_NAMED;
	for (unsigned i = 0; opts && i < opts->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &opts->unknown_fields[i];
		if (u->tag != OPT_ACTOR || u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
			continue;
		found = true;
		/* protobuf-c keeps the length prefix in u->data: skip it. */
		const uint8_t *p = u->data, *end = u->data + u->len;
		uint64_t n;
		if (!varint(&p, end, &n) || n > (uint64_t)(end - p))
			continue;
		end = p + n;
		while (p < end) {
			uint32_t num;
			int wt;
			const uint8_t *val;
			size_t vlen;
			uint64_t v = 0;
			if (!next_field(&p, end, &num, &wt, &val, &vlen, &v))
				break;
			if (num == ACTOR_KIND && wt == 0)
				*kind = v == 0 ? GW_KIND_NAMED : (int)v;
		}
	}
	return found;
}

/* http_rule: the last google.api.http option of a method's options (the
 * serialized HttpRule, borrowed from opts), or NULL. */
static const uint8_t *http_rule(const ProtobufCMessage *opts, size_t *len)
{
	const uint8_t *rule = NULL;
	for (unsigned i = 0; opts && i < opts->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &opts->unknown_fields[i];
		if (u->tag != OPT_HTTP || u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
			continue;
		/* protobuf-c keeps the length prefix in u->data: skip it. */
		const uint8_t *p = u->data, *end = u->data + u->len;
		uint64_t n;
		if (!varint(&p, end, &n) || n > (uint64_t)(end - p))
			continue;
		rule = p;
		*len = (size_t)n;
	}
	return rule;
}

/* ---- checks of one file --------------------------------------------------------------- */

static bool check_msg(const Google__Protobuf__DescriptorProto *m, char *why, size_t n,
                      const char *file);

static bool check_enum(const Google__Protobuf__EnumDescriptorProto *e, char *why, size_t n,
                       const char *file)
{
	if (!ident_ok(e->name)) {
		snprintf(why, n, "%s: an enum name is not an identifier", file);
		return false;
	}
	for (size_t i = 0; i < e->n_value; i++)
		if (!ident_ok(e->value[i]->name)) {
			snprintf(why, n, "%s: a value of enum %s is not an identifier", file,
			         e->name);
			return false;
		}
	return true;
}

static bool check_field(const Google__Protobuf__FieldDescriptorProto *f, char *why, size_t n,
                        const char *file, const char *in)
{
	if (!ident_ok(f->name) || !dotted_ok(f->type_name, true) || !dotted_ok(f->extendee, true)) {
		snprintf(why, n, "%s: a field of %s has a bad name or type reference", file, in);
		return false;
	}
	return true;
}

static bool check_msg(const Google__Protobuf__DescriptorProto *m, char *why, size_t n,
                      const char *file)
{
	if (!ident_ok(m->name)) {
		snprintf(why, n, "%s: a message name is not an identifier", file);
		return false;
	}
	for (size_t i = 0; i < m->n_field; i++)
		if (!check_field(m->field[i], why, n, file, m->name))
			return false;
	for (size_t i = 0; i < m->n_extension; i++)
		if (!check_field(m->extension[i], why, n, file, m->name))
			return false;
	for (size_t i = 0; i < m->n_nested_type; i++)
		if (!check_msg(m->nested_type[i], why, n, file))
			return false;
	for (size_t i = 0; i < m->n_enum_type; i++)
		if (!check_enum(m->enum_type[i], why, n, file))
			return false;
	return true;
}

static bool check_file(const Google__Protobuf__FileDescriptorProto *fd, size_t idx, char *why,
                       size_t n)
{
	if (!file_name_ok(fd->name)) {
		snprintf(why, n, "file[%zu]: the file name is missing or not a relative path", idx);
		return false;
	}
	const char *f = fd->name;
	if (!dotted_ok(fd->package, true)) {
		snprintf(why, n, "%s: the package is not a dotted name", f);
		return false;
	}
	for (size_t i = 0; i < fd->n_dependency; i++)
		if (!file_name_ok(fd->dependency[i])) {
			snprintf(why, n, "%s: import %zu is not a relative path", f, i);
			return false;
		}
	for (size_t i = 0; i < fd->n_message_type; i++)
		if (!check_msg(fd->message_type[i], why, n, f))
			return false;
	for (size_t i = 0; i < fd->n_enum_type; i++)
		if (!check_enum(fd->enum_type[i], why, n, f))
			return false;
	for (size_t i = 0; i < fd->n_extension; i++)
		if (!check_field(fd->extension[i], why, n, f, "the file"))
			return false;
	for (size_t i = 0; i < fd->n_service; i++) {
		const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
		if (!ident_ok(s->name)) {
			snprintf(why, n, "%s: a service name is not an identifier", f);
			return false;
		}
		for (size_t k = 0; k < s->n_method; k++) {
			const Google__Protobuf__MethodDescriptorProto *m = s->method[k];
			if (!ident_ok(m->name) || !dotted_ok(m->input_type, false) ||
			    !dotted_ok(m->output_type, false)) {
				snprintf(
				    why, n,
				    "%s: a method of service %s has a bad name or type reference",
				    f, s->name);
				return false;
			}
		}
	}
	return true;
}

/* ---- files ---------------------------------------------------------------------------- */

static void cfile_free(cfile *f)
{
	if (!f)
		return;
	free(f->name);
	free(f->bytes);
	if (f->fd)
		protobuf_c_message_free_unpacked(&f->fd->base, NULL);
	free(f->owners);
	free(f);
}

/* cfile_take makes a file of fd (takes ownership): source_code_info is
 * dropped and the rest packed. */
static cfile *cfile_take(Google__Protobuf__FileDescriptorProto *fd)
{
	cfile *f = calloc(1, sizeof *f);
	if (!f) {
		protobuf_c_message_free_unpacked(&fd->base, NULL);
		return NULL;
	}
	f->fd = fd;
	if (fd->source_code_info) {
		protobuf_c_message_free_unpacked(&fd->source_code_info->base, NULL);
		fd->source_code_info = NULL;
	}
	f->len = google__protobuf__file_descriptor_proto__get_packed_size(fd);
	f->bytes = malloc(f->len ? f->len : 1);
	f->name = strdup(fd->name);
	if (!f->bytes || !f->name) {
		cfile_free(f);
		return NULL;
	}
	google__protobuf__file_descriptor_proto__pack(fd, f->bytes);
	return f;
}

static bool owned_by(const cfile *f, const void *owner)
{
	for (size_t i = 0; i < f->nowners; i++)
		if (f->owners[i] == owner)
			return true;
	return false;
}

static bool add_owner(cfile *f, const void *owner)
{
	if (!owner) {
		f->fixed = true;
		return true;
	}
	if (owned_by(f, owner))
		return true;
	if (!grow((void **)&f->owners, &f->capowners, f->nowners, sizeof *f->owners))
		return false;
	f->owners[f->nowners++] = owner;
	return true;
}

static void drop_owner(cfile *f, const void *owner)
{
	for (size_t i = 0; i < f->nowners; i++)
		if (f->owners[i] == owner) {
			f->owners[i] = f->owners[--f->nowners];
			return;
		}
}

static cfile *find_file(cfile *const *files, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (files[i] && !strcmp(files[i]->name, name))
			return files[i];
	return NULL;
}

/* ---- the index -------------------------------------------------------------------------- */

static void index_fini(index_t *x)
{
	for (size_t i = 0; i < x->nsyms; i++)
		free(x->syms[i].name);
	for (size_t i = 0; i < x->nmeths; i++)
		free(x->meths[i].path);
	for (size_t i = 0; i < x->nexts; i++)
		free(x->exts[i].extendee);
	for (size_t i = 0; i < x->nservices; i++)
		free(x->services[i]);
	free(x->syms);
	free(x->meths);
	free(x->exts);
	free(x->services);
	memset(x, 0, sizeof *x);
}

static bool add_sym(index_t *x, char *name, cfile *f, int kind,
                    const Google__Protobuf__DescriptorProto *msg)
{
	if (!name || !grow((void **)&x->syms, &x->capsyms, x->nsyms, sizeof *x->syms)) {
		free(name);
		return false;
	}
	x->syms[x->nsyms++] = (sym){name, f, kind, msg};
	return true;
}

static bool add_ext(index_t *x, const Google__Protobuf__FieldDescriptorProto *e, cfile *f)
{
	char *t = strdup(undot(e->extendee));
	if (!t || !grow((void **)&x->exts, &x->capexts, x->nexts, sizeof *x->exts)) {
		free(t);
		return false;
	}
	x->exts[x->nexts++] = (ext){t, e->number, f};
	return true;
}

static bool index_fields(index_t *x, const char *scope, Google__Protobuf__FieldDescriptorProto **fs,
                         size_t n, cfile *f, bool extensions)
{
	for (size_t i = 0; i < n; i++) {
		if (!add_sym(x, join(scope, fs[i]->name), f, SYM_OTHER, NULL))
			return false;
		if (extensions && fs[i]->extendee && !add_ext(x, fs[i], f))
			return false;
	}
	return true;
}

static bool index_msg(index_t *x, const char *scope, const Google__Protobuf__DescriptorProto *m,
                      cfile *f)
{
	char *full = join(scope, m->name);
	if (!full || !add_sym(x, strdup(full), f, SYM_MSG, m)) {
		free(full);
		return false;
	}
	bool ok = index_fields(x, full, m->field, m->n_field, f, false) &&
	          index_fields(x, full, m->extension, m->n_extension, f, true);
	for (size_t i = 0; ok && i < m->n_nested_type; i++)
		ok = index_msg(x, full, m->nested_type[i], f);
	for (size_t i = 0; ok && i < m->n_enum_type; i++)
		ok = add_sym(x, join(full, m->enum_type[i]->name), f, SYM_OTHER, NULL);
	free(full);
	return ok;
}

static int sym_cmp(const void *a, const void *b)
{
	return strcmp(((const sym *)a)->name, ((const sym *)b)->name);
}

static int meth_cmp(const void *a, const void *b)
{
	return strcmp(((const meth *)a)->path, ((const meth *)b)->path);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const sym *sym_find(const index_t *x, const char *name)
{
	sym key = {.name = (char *)name};
	return x->nsyms ? bsearch(&key, x->syms, x->nsyms, sizeof *x->syms, sym_cmp) : NULL;
}

/* id_field: the number of the string field of m marked actor_id; 0 = none. */
static uint32_t id_field(const Google__Protobuf__DescriptorProto *m)
{
	for (size_t i = 0; m && i < m->n_field; i++) {
		const Google__Protobuf__FieldDescriptorProto *fl = m->field[i];
		uint64_t v = 0;
		if (fl->options && opt_varint(&fl->options->base, OPT_ACTOR_ID, &v) && v &&
		    fl->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING &&
		    fl->label != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED)
			return (uint32_t)fl->number;
	}
	return 0;
}

static void copy_name(char *dst, const char *src)
{
	snprintf(dst, GW_CONTRACTS_NAME_BYTES, "%s", src);
}

/* index_build indexes files[0..n): symbols (a clash is GW_ECONFLICT),
 * served methods (their types must be messages: GW_EINVAL) and
 * extensions. */
static gw_err index_build(index_t *x, cfile *const *files, size_t n, char *why, size_t wn)
{
	memset(x, 0, sizeof *x);
	for (size_t i = 0; i < n; i++) {
		cfile *f = files[i];
		const Google__Protobuf__FileDescriptorProto *fd = f->fd;
		const char *pkg = fd->package ? fd->package : "";
		bool ok = true;
		for (size_t k = 0; ok && k < fd->n_message_type; k++)
			ok = index_msg(x, pkg, fd->message_type[k], f);
		for (size_t k = 0; ok && k < fd->n_enum_type; k++)
			ok = add_sym(x, join(pkg, fd->enum_type[k]->name), f, SYM_OTHER, NULL);
		if (ok)
			ok = index_fields(x, pkg, fd->extension, fd->n_extension, f, true);
		for (size_t k = 0; ok && k < fd->n_service; k++) {
			const Google__Protobuf__ServiceDescriptorProto *s = fd->service[k];
			char *full = join(pkg, s->name);
			ok = full && add_sym(x, strdup(full), f, SYM_OTHER, NULL);
			for (size_t j = 0; ok && j < s->n_method; j++)
				ok = add_sym(x, join(full, s->method[j]->name), f, SYM_OTHER, NULL);
			free(full);
		}
		if (!ok) {
			index_fini(x);
			snprintf(why, wn, "out of memory indexing the contracts");
			return GW_ENOMEM;
		}
	}
	if (x->nsyms)
		qsort(x->syms, x->nsyms, sizeof *x->syms, sym_cmp);
	for (size_t i = 1; i < x->nsyms; i++)
		if (!strcmp(x->syms[i - 1].name, x->syms[i].name)) {
			snprintf(why, wn, "%.200s is defined by both %.200s and %.200s",
			         x->syms[i].name, x->syms[i - 1].f->name, x->syms[i].f->name);
			index_fini(x);
			return GW_ECONFLICT;
		}
	/* The served methods, now that every type can be found. */
	for (size_t i = 0; i < n; i++) {
		const Google__Protobuf__FileDescriptorProto *fd = files[i]->fd;
		const char *pkg = fd->package ? fd->package : "";
		for (size_t k = 0; k < fd->n_service; k++) {
			const Google__Protobuf__ServiceDescriptorProto *s = fd->service[k];
			int kind;
			if (!s->options || !actor_kind(&s->options->base, &kind))
				continue;
			char *full = join(pkg, s->name);
			if (!full || !grow((void **)&x->services, &x->capservices, x->nservices,
			                   sizeof *x->services)) {
				free(full);
				index_fini(x);
				return GW_ENOMEM;
			}
			x->services[x->nservices++] = full;
			for (size_t j = 0; j < s->n_method; j++) {
				const Google__Protobuf__MethodDescriptorProto *md = s->method[j];
				const sym *in = sym_find(x, undot(md->input_type));
				const sym *out = sym_find(x, undot(md->output_type));
				if (!in || in->kind != SYM_MSG || !out || out->kind != SYM_MSG) {
					snprintf(why, wn,
					         "%.200s: %.200s.%.200s: type %.200s is not a "
					         "known message",
					         files[i]->name, full, md->name,
					         !in || in->kind != SYM_MSG
					             ? undot(md->input_type)
					             : undot(md->output_type));
					index_fini(x);
					return GW_EINVAL;
				}
				size_t plen = strlen(full) + strlen(md->name) + 3;
				char *path = malloc(plen);
				if (!path || !grow((void **)&x->meths, &x->capmeths, x->nmeths,
				                   sizeof *x->meths)) {
					free(path);
					index_fini(x);
					return GW_ENOMEM;
				}
				snprintf(path, plen, "/%s/%s", full, md->name);
				meth *mt = &x->meths[x->nmeths++];
				memset(mt, 0, sizeof *mt);
				mt->path = path;
				copy_name(mt->m.actor, s->name);
				copy_name(mt->m.action, md->name);
				copy_name(mt->m.input, undot(md->input_type));
				copy_name(mt->m.output, undot(md->output_type));
				mt->m.kind = kind;
				mt->m.id_field = kind == GW_KIND_UNNAMED ? id_field(in->msg) : 0;
				mt->m.streaming = md->client_streaming || md->server_streaming;
				if (md->options)
					mt->http = http_rule(&md->options->base, &mt->http_len);
			}
		}
	}
	/* qsort and bsearch take no NULL array, even empty (UBSan). */
	if (x->nmeths)
		qsort(x->meths, x->nmeths, sizeof *x->meths, meth_cmp);
	if (x->nservices)
		qsort(x->services, x->nservices, sizeof *x->services, str_cmp);
	return GW_OK;
}

/* ---- the mirror ------------------------------------------------------------------------ */

/* pack_set serializes files[0..n) as a google.protobuf.FileDescriptorSet
 * (field 1, one entry per file). Returns it (malloc'd) or NULL. */
static uint8_t *pack_set(cfile *const *files, size_t n, size_t *len)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += 1 + 10 + files[i]->len;
	uint8_t *out = malloc(total ? total : 1), *p = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		*p++ = 0x0a; /* field 1, LEN */
		uint64_t v = files[i]->len;
		do {
			*p++ = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
			v >>= 7;
		} while (v);
		memcpy(p, files[i]->bytes, files[i]->len);
		p += files[i]->len;
	}
	*len = (size_t)(p - out);
	return out;
}

/* mirror_prepare hands the candidate pool (files and index x) to the
 * mirror. Returns its candidate, or NULL with why set. */
static void *mirror_prepare(gw_contracts *c, cfile *const *files, size_t n, const index_t *x,
                            char *why, size_t wn)
{
	size_t len = 0, nr = 0;
	uint8_t *set = pack_set(files, n, &len);
	gw_contract_rule *rules = calloc(x->nmeths ? x->nmeths : 1, sizeof *rules);
	void *cand = NULL;
	if (!set || !rules) {
		snprintf(why, wn, "out of memory");
	} else {
		for (size_t i = 0; i < x->nmeths; i++)
			if (x->meths[i].http)
				rules[nr++] =
				    (gw_contract_rule){x->meths[i].path, &x->meths[i].m,
				                       x->meths[i].http, x->meths[i].http_len};
		char w[600] = "";
		cand = c->mirror.prepare(c->mirror.user, set, len, rules, nr, w, sizeof w);
		if (!cand)
			snprintf(why, wn, "the descriptors do not build for HTTP/JSON: %s", w);
	}
	free(set);
	free(rules);
	return cand;
}

/* ---- adding a set --------------------------------------------------------------------- */

static gw_err add_locked(gw_contracts *c, const void *owner, const uint8_t *set, size_t len,
                         bool builtin, char *why, size_t wn)
{
	if (len > c->max_set) {
		snprintf(why, wn, "the descriptor set is %zu bytes, over the bound of %zu", len,
		         c->max_set);
		return GW_ETOOBIG;
	}
	if (!depth_ok(&google__protobuf__file_descriptor_set__descriptor, set, len, 0)) {
		snprintf(why, wn,
		         "not a valid google.protobuf.FileDescriptorSet (malformed, or nested "
		         "more than %d deep)",
		         GW_CONTRACTS_DEPTH);
		return GW_EINVAL;
	}
	Google__Protobuf__FileDescriptorSet *fs =
	    google__protobuf__file_descriptor_set__unpack(NULL, len, set);
	if (!fs) {
		snprintf(why, wn, "not a valid google.protobuf.FileDescriptorSet");
		return GW_EINVAL;
	}
	if (fs->n_file > GW_CONTRACTS_MAX_FILES) {
		snprintf(why, wn, "the descriptor set holds %zu files, over the bound of %d",
		         fs->n_file, GW_CONTRACTS_MAX_FILES);
		google__protobuf__file_descriptor_set__free_unpacked(fs, NULL);
		return GW_ETOOBIG;
	}
	for (size_t i = 0; i < fs->n_file; i++)
		if (!check_file(fs->file[i], i, why, wn)) {
			google__protobuf__file_descriptor_set__free_unpacked(fs, NULL);
			return GW_EINVAL;
		}
	/* The incoming files, packed (each takes its FileDescriptorProto). */
	size_t nin = fs->n_file;
	cfile **in = calloc(nin ? nin : 1, sizeof *in);
	gw_err err = in ? GW_OK : GW_ENOMEM;
	for (size_t i = 0; i < nin && !err; i++) {
		in[i] = cfile_take(fs->file[i]);
		fs->file[i] = NULL;
		if (!in[i])
			err = GW_ENOMEM;
	}
	for (size_t i = nin; in && i < fs->n_file; i++)
		fs->file[i] = NULL;
	fs->n_file = 0;
	google__protobuf__file_descriptor_set__free_unpacked(fs, NULL);
	/* The candidate pool: today's files, with this set's replacing others. */
	cfile **cand = err ? NULL : calloc(c->nfiles + nin + 1, sizeof *cand);
	bool *fresh = err ? NULL : calloc(c->nfiles + nin + 1, sizeof *fresh);
	size_t nc = 0;
	if (!err && (!cand || !fresh))
		err = GW_ENOMEM;
	if (err)
		snprintf(why, wn, "out of memory");
	for (size_t i = 0; !err && i < c->nfiles; i++)
		cand[nc++] = c->files[i];
	for (size_t i = 0; !err && i < nin; i++) {
		cfile *f = in[i];
		cfile *twin = find_file(in, i, f->name);
		if (twin && twin->len == f->len && !memcmp(twin->bytes, f->bytes, f->len))
			continue; /* sets concatenated by a runtime share imports */
		if (twin) {
			snprintf(why, wn, "%.200s appears twice in the set, with other contents",
			         f->name);
			err = GW_EINVAL;
			break;
		}
		size_t k = 0;
		while (k < nc && strcmp(cand[k]->name, f->name))
			k++;
		if (k == nc) {
			cand[nc] = f;
			fresh[nc++] = true;
			continue;
		}
		cfile *e = cand[k];
		if (e->builtin)
			continue; /* the built-in copy wins */
		if (e->len == f->len && !memcmp(e->bytes, f->bytes, f->len))
			continue; /* the same file: one more owner, on commit */
		bool others = e->fixed || e->nowners > (size_t)owned_by(e, owner);
		if (others) {
			snprintf(why, wn,
			         "%.200s differs from the copy %s holds (a contract clash: "
			         "same file name, other contents)",
			         f->name, e->fixed ? "--descriptors" : "another connected host");
			err = GW_ECONFLICT;
			break;
		}
		cand[k] = f; /* replaces a file its owners left, or this owner's old copy */
		fresh[k] = true;
	}
	/* Every import resolves (invariant 3). */
	for (size_t i = 0; !err && i < nc; i++)
		for (size_t d = 0; d < cand[i]->fd->n_dependency; d++)
			if (!find_file(cand, nc, cand[i]->fd->dependency[d])) {
				snprintf(why, wn,
				         "%.200s imports %.200s, which is neither in the set nor "
				         "registered",
				         cand[i]->name, cand[i]->fd->dependency[d]);
				err = GW_EINVAL;
				break;
			}
	size_t total = 0;
	for (size_t i = 0; !err && i < nc; i++)
		total += cand[i]->len;
	if (!err && total > c->max_total && !builtin) {
		snprintf(why, wn,
		         "the registered contracts would take %zu bytes, over the bound of %zu",
		         total, c->max_total);
		err = GW_ETOOBIG;
	}
	index_t x;
	if (!err)
		err = index_build(&x, cand, nc, why, wn);
	/* The mirror (the JSON pool) builds the candidate too: what it cannot
	 * build is refused here, whole, so both pools hold the same files. */
	void *mc = NULL;
	if (!err && c->mirror.version && !(mc = mirror_prepare(c, cand, nc, &x, why, wn))) {
		index_fini(&x);
		err = GW_EINVAL;
	}
	if (!err) {
		/* Commit: owners, the replaced files freed, the new index. */
		cfile **keep = realloc(c->files, (nc ? nc : 1) * sizeof *keep);
		if (!keep) {
			index_fini(&x);
			if (mc)
				c->mirror.abort(c->mirror.user, mc);
			err = GW_ENOMEM;
			snprintf(why, wn, "out of memory");
		} else {
			if (mc)
				c->mirror.commit(c->mirror.user, mc);
			c->files = keep;
			/* The owner's files not in this set lose it. */
			for (size_t i = 0; owner && i < c->nfiles; i++)
				if (!find_file(in, nin, c->files[i]->name))
					drop_owner(c->files[i], owner);
			/* Replaced files: in the old list, not in the candidate. */
			for (size_t i = 0; i < c->nfiles; i++) {
				bool still = false;
				for (size_t k = 0; k < nc && !still; k++)
					still = cand[k] == c->files[i];
				if (!still)
					cfile_free(c->files[i]);
			}
			for (size_t i = 0; i < nc; i++) {
				cfile *f = cand[i];
				f->builtin = f->builtin || (fresh[i] && builtin);
				if (!builtin && find_file(in, nin, f->name) && !f->builtin &&
				    !add_owner(f, owner)) {
					/* a few pointers: a fixed allocation (STYLE 5) */
					fprintf(stderr, "contracts: out of memory\n");
					abort();
				}
			}
			memcpy(c->files, cand, nc * sizeof *cand);
			c->nfiles = nc;
			c->total = total;
			atomic_fetch_add(&c->gen, 1);
			index_fini(&c->ix);
			c->ix = x;
			/* Incoming files not taken (same as a held copy, or built in). */
			for (size_t i = 0; i < nin; i++) {
				bool taken = false;
				for (size_t k = 0; k < nc && !taken; k++)
					taken = cand[k] == in[i];
				if (!taken)
					cfile_free(in[i]);
			}
			free(in);
			free(cand);
			free(fresh);
			return GW_OK;
		}
	}
	for (size_t i = 0; in && i < nin; i++)
		cfile_free(in[i]);
	free(in);
	free(cand);
	free(fresh);
	return err;
}

/* ---- the public functions ----------------------------------------------------------------- */

gw_err gw_contracts_create(gw_contracts **out, const gw_contracts_opts *o)
{
	gw_contracts *c = calloc(1, sizeof *c);
	if (!c)
		return GW_ENOMEM;
	pthread_rwlock_init(&c->lk, NULL);
	atomic_init(&c->gen, 0);
	c->max_set = o && o->max_set_bytes ? o->max_set_bytes : GW_CONTRACTS_SET_BYTES;
	c->max_total = o && o->max_total_bytes ? o->max_total_bytes
	                                       : c->max_set * (size_t)GW_CONTRACTS_TOTAL_MULT;
	char why[512];
	size_t max = c->max_set;
	c->max_set = gw_contracts_builtin_len; /* the built-in set is bounded by itself */
	gw_err err = add_locked(c, NULL, gw_contracts_builtin, gw_contracts_builtin_len, true, why,
	                        sizeof why);
	c->max_set = max;
	if (err) {
		fprintf(stderr, "contracts: the built-in descriptors do not load: %s\n", why);
		gw_contracts_destroy(c);
		return err == GW_ENOMEM ? GW_ENOMEM : GW_EINVAL;
	}
	*out = c;
	return GW_OK;
}

void gw_contracts_destroy(gw_contracts *c)
{
	if (!c)
		return;
	index_fini(&c->ix);
	for (size_t i = 0; i < c->nfiles; i++)
		cfile_free(c->files[i]);
	free(c->files);
	free(c->peers);
	pthread_rwlock_destroy(&c->lk);
	free(c);
}

gw_err gw_contracts_add(gw_contracts *c, const void *owner, const uint8_t *set, size_t len,
                        char *why, size_t whylen)
{
	pthread_rwlock_wrlock(&c->lk);
	gw_err err = add_locked(c, owner, set ? set : (const uint8_t *)"", len, false, why, whylen);
	pthread_rwlock_unlock(&c->lk);
	return err;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

gw_err gw_contracts_load_dir(gw_contracts *c, const char *dir, char *why, size_t whylen)
{
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(why, whylen, "--descriptors %s: %s", dir, strerror(errno));
		return GW_ECONFIG;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	gw_err err = GW_OK;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		bool pb = (l > 3 && !strcmp(e->d_name + l - 3, ".pb")) ||
		          (l > 6 && !strcmp(e->d_name + l - 6, ".binpb"));
		if (!pb)
			continue;
		char *s = strdup(e->d_name);
		if (!s || !grow((void **)&names, &cap, n, sizeof *names)) {
			free(s);
			err = GW_ENOMEM;
			break;
		}
		names[n++] = s;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, name_cmp);
	for (size_t i = 0; i < n && !err; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		FILE *f = fopen(path, "rb");
		struct stat st;
		if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
			snprintf(why, whylen, "--descriptors: cannot read %s", path);
			if (f)
				fclose(f);
			err = GW_ECONFIG;
			break;
		}
		size_t len = (size_t)st.st_size;
		if (len > c->max_set) {
			fclose(f);
			snprintf(why, whylen,
			         "--descriptors: %s: %zu bytes, over the bound of %zu "
			         "(--max-contract-bytes)",
			         path, len, c->max_set);
			err = GW_ETOOBIG;
			break;
		}
		uint8_t *buf = malloc(len ? len : 1);
		if (!buf || fread(buf, 1, len, f) != len) {
			free(buf);
			fclose(f);
			snprintf(why, whylen, "--descriptors: cannot read %s", path);
			err = GW_ECONFIG;
			break;
		}
		fclose(f);
		char w[600];
		err = gw_contracts_add(c, NULL, buf, len, w, sizeof w);
		free(buf);
		if (err)
			snprintf(why, whylen, "--descriptors: %s: %s", path, w);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (err == GW_ENOMEM)
		snprintf(why, whylen, "--descriptors %s: out of memory", dir);
	return err;
}

void gw_contracts_release(gw_contracts *c, const void *owner)
{
	if (!c || !owner)
		return;
	pthread_rwlock_wrlock(&c->lk);
	for (size_t i = 0; i < c->nfiles; i++)
		drop_owner(c->files[i], owner);
	atomic_fetch_add(&c->gen, 1);
	for (size_t i = 0; i < c->npeers; i++)
		if (c->peers[i] == owner) {
			c->peers[i] = c->peers[--c->npeers];
			break;
		}
	pthread_rwlock_unlock(&c->lk);
}

/* ---- across the cluster (docs/design/cluster.md, "Contracts across the cluster") ---- */

static bool is_peer(const gw_contracts *c, const void *owner)
{
	for (size_t i = 0; i < c->npeers; i++)
		if (c->peers[i] == owner)
			return true;
	return false;
}

gw_err gw_contracts_add_peer(gw_contracts *c, const void *owner, const uint8_t *set, size_t len,
                             char *why, size_t whylen)
{
	if (!owner)
		return GW_EINVAL;
	pthread_rwlock_wrlock(&c->lk);
	gw_err err = GW_OK;
	if (!is_peer(c, owner)) {
		if (grow((void **)&c->peers, &c->cappeers, c->npeers, sizeof *c->peers))
			c->peers[c->npeers++] = owner;
		else
			err = GW_ENOMEM;
	}
	if (!err)
		err =
		    add_locked(c, owner, set ? set : (const uint8_t *)"", len, false, why, whylen);
	pthread_rwlock_unlock(&c->lk);
	if (err == GW_ENOMEM)
		snprintf(why, whylen, "out of memory");
	return err;
}

static int cfile_cmp(const void *a, const void *b)
{
	return strcmp((*(cfile *const *)a)->name, (*(cfile *const *)b)->name);
}

uint64_t gw_contracts_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t gw_contracts_gen(gw_contracts *c)
{
	return atomic_load(&c->gen);
}

gw_err gw_contracts_export(gw_contracts *c, uint8_t **out, size_t *len, uint64_t *hash)
{
	*out = NULL;
	*len = 0;
	pthread_rwlock_rdlock(&c->lk);
	cfile **v = malloc((c->nfiles ? c->nfiles : 1) * sizeof *v);
	size_t n = 0, bytes = 0;
	for (size_t i = 0; v && i < c->nfiles; i++) {
		cfile *f = c->files[i];
		bool local = false;
		for (size_t k = 0; !f->builtin && k < f->nowners && !local; k++)
			local = !is_peer(c, f->owners[k]);
		if (!local)
			continue;
		v[n++] = f;
		bytes += f->len + 11; /* tag, length varint (at most 10 bytes) */
	}
	uint8_t *b = v ? malloc(bytes ? bytes : 1) : NULL;
	if (b) {
		if (n > 1)
			qsort(v, n, sizeof *v, cfile_cmp);
		size_t at = 0;
		for (size_t i = 0; i < n; i++) {
			b[at++] = 0x0a; /* FileDescriptorSet.file, length-delimited */
			size_t l = v[i]->len;
			do {
				b[at++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
				l >>= 7;
			} while (l);
			memcpy(b + at, v[i]->bytes, v[i]->len);
			at += v[i]->len;
		}
		*out = b;
		*len = at;
		*hash = gw_contracts_hash(b, at);
	}
	pthread_rwlock_unlock(&c->lk);
	free(v);
	return b ? GW_OK : GW_ENOMEM;
}

gw_err gw_contracts_set_mirror(gw_contracts *c, const gw_contracts_mirror *m, char *why,
                               size_t whylen)
{
	if (!m) {
		pthread_rwlock_wrlock(&c->lk);
		memset(&c->mirror, 0, sizeof c->mirror);
		pthread_rwlock_unlock(&c->lk);
		return GW_OK;
	}
	if (m->version != GW_CONTRACTS_MIRROR_V1 || !m->prepare || !m->commit || !m->abort) {
		snprintf(why, whylen, "a mirror of version %d is not known", m->version);
		return GW_EINVAL;
	}
	pthread_rwlock_wrlock(&c->lk);
	gw_err err = GW_OK;
	c->mirror = *m;
	void *mc = mirror_prepare(c, c->files, c->nfiles, &c->ix, why, whylen);
	if (mc) {
		c->mirror.commit(c->mirror.user, mc);
	} else {
		memset(&c->mirror, 0, sizeof c->mirror);
		err = GW_EINVAL;
	}
	pthread_rwlock_unlock(&c->lk);
	return err;
}

gw_err gw_contracts_action(gw_contracts *c, const char *actor, const char *action,
                           gw_contract_method *out, char *why, size_t whylen)
{
	gw_err err = GW_ENOTFOUND;
	const char *first = NULL;
	pthread_rwlock_rdlock(&c->lk);
	for (size_t i = 0; i < c->ix.nmeths; i++) {
		const meth *m = &c->ix.meths[i];
		if (strcmp(m->m.actor, actor) || strcmp(m->m.action, action))
			continue;
		if (first) {
			snprintf(why, whylen,
			         "actor %.200s.%.200s is described by two contracts (%.300s and "
			         "%.300s)",
			         actor, action, first, m->path);
			err = GW_ECONFLICT;
			break;
		}
		first = m->path;
		*out = m->m;
		err = GW_OK;
	}
	pthread_rwlock_unlock(&c->lk);
	return err;
}

gw_err gw_contracts_method(gw_contracts *c, const char *path, size_t len, gw_contract_method *out)
{
	char key[2 * GW_CONTRACTS_NAME_BYTES + 4];
	if (len >= sizeof key)
		return GW_ENOTFOUND;
	memcpy(key, path, len);
	key[len] = 0;
	gw_err err = GW_ENOTFOUND;
	pthread_rwlock_rdlock(&c->lk);
	meth k = {.path = key};
	const meth *m = c->ix.nmeths
	                    ? bsearch(&k, c->ix.meths, c->ix.nmeths, sizeof *c->ix.meths, meth_cmp)
	                    : NULL;
	if (m) {
		*out = m->m;
		err = GW_OK;
	}
	pthread_rwlock_unlock(&c->lk);
	return err;
}

size_t gw_contracts_count(gw_contracts *c)
{
	pthread_rwlock_rdlock(&c->lk);
	size_t n = c->nfiles;
	pthread_rwlock_unlock(&c->lk);
	return n;
}

/* ---- reflection ------------------------------------------------------------------------- */

void gw_bytes_list_fini(gw_bytes_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->data[i]);
	free(l->data);
	free(l->len);
	memset(l, 0, sizeof *l);
}

static bool list_push(gw_bytes_list *l, const void *data, size_t len)
{
	uint8_t **d = realloc(l->data, (l->n + 1) * sizeof *d);
	if (!d)
		return false;
	l->data = d;
	size_t *ln = realloc(l->len, (l->n + 1) * sizeof *ln);
	if (!ln)
		return false;
	l->len = ln;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return false;
	memcpy(copy, data, len);
	l->data[l->n] = copy;
	l->len[l->n++] = len;
	return true;
}

/* closure_locked lists f, then every file it imports, transitively, each
 * once (breadth first). */
static gw_err closure_locked(gw_contracts *c, cfile *f, gw_bytes_list *out)
{
	cfile **q = calloc(c->nfiles + 1, sizeof *q);
	if (!q)
		return GW_ENOMEM;
	size_t nq = 0;
	q[nq++] = f;
	for (size_t i = 0; i < nq; i++) {
		for (size_t d = 0; d < q[i]->fd->n_dependency; d++) {
			cfile *dep = find_file(c->files, c->nfiles, q[i]->fd->dependency[d]);
			if (dep && !find_file(q, nq, dep->name))
				q[nq++] = dep;
		}
	}
	gw_err err = GW_OK;
	for (size_t i = 0; i < nq && !err; i++)
		if (!list_push(out, q[i]->bytes, q[i]->len))
			err = GW_ENOMEM;
	free(q);
	if (err)
		gw_bytes_list_fini(out);
	return err;
}

gw_err gw_contracts_services(gw_contracts *c, const char *const *builtin, size_t n_builtin,
                             gw_bytes_list *out)
{
	memset(out, 0, sizeof *out);
	pthread_rwlock_rdlock(&c->lk);
	size_t n = n_builtin + c->ix.nservices;
	const char **all = calloc(n ? n : 1, sizeof *all);
	gw_err err = all ? GW_OK : GW_ENOMEM;
	for (size_t i = 0; all && i < n_builtin; i++)
		all[i] = builtin[i];
	for (size_t i = 0; all && i < c->ix.nservices; i++)
		all[n_builtin + i] = c->ix.services[i];
	if (all)
		qsort(all, n, sizeof *all, name_cmp);
	for (size_t i = 0; !err && i < n; i++)
		if (!(i > 0 && !strcmp(all[i - 1], all[i])) &&
		    !list_push(out, all[i], strlen(all[i])))
			err = GW_ENOMEM;
	pthread_rwlock_unlock(&c->lk);
	free(all);
	if (err)
		gw_bytes_list_fini(out);
	return err;
}

gw_err gw_contracts_file_by_name(gw_contracts *c, const char *name, gw_bytes_list *out)
{
	memset(out, 0, sizeof *out);
	pthread_rwlock_rdlock(&c->lk);
	cfile *f = find_file(c->files, c->nfiles, name);
	gw_err err = f ? closure_locked(c, f, out) : GW_ENOTFOUND;
	pthread_rwlock_unlock(&c->lk);
	return err;
}

gw_err gw_contracts_file_by_symbol(gw_contracts *c, const char *symbol, gw_bytes_list *out)
{
	memset(out, 0, sizeof *out);
	pthread_rwlock_rdlock(&c->lk);
	const sym *s = sym_find(&c->ix, undot(symbol));
	gw_err err = s ? closure_locked(c, s->f, out) : GW_ENOTFOUND;
	pthread_rwlock_unlock(&c->lk);
	return err;
}

gw_err gw_contracts_file_by_extension(gw_contracts *c, const char *type, int32_t number,
                                      gw_bytes_list *out)
{
	memset(out, 0, sizeof *out);
	gw_err err = GW_ENOTFOUND;
	pthread_rwlock_rdlock(&c->lk);
	for (size_t i = 0; i < c->ix.nexts; i++)
		if (c->ix.exts[i].number == number &&
		    !strcmp(c->ix.exts[i].extendee, undot(type))) {
			err = closure_locked(c, c->ix.exts[i].f, out);
			break;
		}
	pthread_rwlock_unlock(&c->lk);
	return err;
}

gw_err gw_contracts_extension_numbers(gw_contracts *c, const char *type, gw_bytes_list *out)
{
	memset(out, 0, sizeof *out);
	gw_err err = GW_OK;
	pthread_rwlock_rdlock(&c->lk);
	const sym *s = sym_find(&c->ix, undot(type));
	if (!s || s->kind != SYM_MSG)
		err = GW_ENOTFOUND;
	for (size_t i = 0; !err && i < c->ix.nexts; i++)
		if (!strcmp(c->ix.exts[i].extendee, undot(type))) {
			uint8_t b[4];
			uint32_t v = (uint32_t)c->ix.exts[i].number;
			for (int k = 0; k < 4; k++)
				b[k] = (uint8_t)(v >> (8 * k));
			if (!list_push(out, b, 4))
				err = GW_ENOMEM;
		}
	pthread_rwlock_unlock(&c->lk);
	if (err)
		gw_bytes_list_fini(out);
	return err;
}
