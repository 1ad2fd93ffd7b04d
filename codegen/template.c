/* template.c - see template.h.
 *
 * A template is parsed once into a tree of nodes (text, variable,
 * section) and rendered many times against views. Parsing resolves the
 * filters and checks that sections nest; rendering resolves names, so a
 * name missing from a view is reported with the template line using it.
 */
#include "template.h"

#include <stdio.h>
#include <string.h>

#include "names.h"

/* ---- views --------------------------------------------------------------- */

typedef struct entry {
	const char *key;
	bool is_list;
	const char *str;  /* !is_list */
	tpl_dict **items; /* is_list: n items */
	size_t n, cap;
	struct entry *next;
} entry;

struct tpl_dict {
	cg_arena *a;
	entry *head;
};

tpl_dict *tpl_dict_create(cg_arena *a)
{
	tpl_dict *d = cg_alloc(a, sizeof *d);
	d->a = a;
	return d;
}

static entry *find(const tpl_dict *d, const char *key)
{
	for (entry *e = d->head; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static entry *find_or_add(tpl_dict *d, const char *key)
{
	entry *e = find(d, key);
	if (!e) {
		e = cg_alloc(d->a, sizeof *e);
		e->key = cg_strdup(d->a, key);
		e->next = d->head;
		d->head = e;
	}
	return e;
}

void tpl_set(tpl_dict *d, const char *key, const char *value)
{
	entry *e = find_or_add(d, key);
	e->is_list = false;
	e->str = cg_strdup(d->a, value);
}

void tpl_setf(tpl_dict *d, const char *key, const char *fmt, ...)
{
	cg_buf b = CG_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cg_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	tpl_set(d, key, cg_buf_str(&b));
	cg_buf_fini(&b);
}

void tpl_set_flag(tpl_dict *d, const char *key, bool on)
{
	tpl_set(d, key, on ? "1" : "");
}

void tpl_list(tpl_dict *d, const char *key)
{
	entry *e = find_or_add(d, key);
	if (!e->is_list) {
		e->is_list = true;
		e->str = NULL;
		e->n = 0;
	}
}

tpl_dict *tpl_add(tpl_dict *d, const char *key)
{
	tpl_list(d, key);
	entry *e = find(d, key);
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		tpl_dict **items = cg_alloc_array(d->a, cap, sizeof *items);
		if (e->n)
			memcpy(items, e->items, e->n * sizeof *items);
		e->items = items;
		e->cap = cap;
	}
	tpl_dict *child = tpl_dict_create(d->a);
	e->items[e->n++] = child;
	return child;
}

const char *tpl_get(const tpl_dict *d, const char *key)
{
	const entry *e = find(d, key);
	return e && !e->is_list ? e->str : NULL;
}

/* ---- filters ------------------------------------------------------------- */

typedef const char *(*filter_fn)(cg_arena *a, const char *in);

/* Inside "..." in C: quotes, backslashes and '?' (trigraphs) escaped,
 * other bytes outside printable ASCII as three-digit octal (octal escapes
 * stop after three digits, unlike \x). */
static const char *esc_c(cg_arena *a, const char *in)
{
	cg_buf b = CG_BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		switch (*p) {
		case '"':
			cg_buf_puts(&b, "\\\"");
			break;
		case '\\':
			cg_buf_puts(&b, "\\\\");
			break;
		case '?':
			cg_buf_puts(&b, "\\?");
			break;
		case '\n':
			cg_buf_puts(&b, "\\n");
			break;
		case '\t':
			cg_buf_puts(&b, "\\t");
			break;
		default:
			if (*p < 0x20 || *p >= 0x7f)
				cg_buf_printf(&b, "\\%03o", *p);
			else
				cg_buf_putc(&b, (char)*p);
		}
	}
	char *r = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return r;
}

/* Inside "..." in Python 3 (source is UTF-8, so bytes >= 0x80 stay). */
static const char *esc_py(cg_arena *a, const char *in)
{
	cg_buf b = CG_BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		switch (*p) {
		case '"':
			cg_buf_puts(&b, "\\\"");
			break;
		case '\\':
			cg_buf_puts(&b, "\\\\");
			break;
		case '\n':
			cg_buf_puts(&b, "\\n");
			break;
		case '\t':
			cg_buf_puts(&b, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				cg_buf_printf(&b, "\\x%02x", *p);
			else
				cg_buf_putc(&b, (char)*p);
		}
	}
	char *r = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return r;
}

/* Inside "..." in JavaScript/TypeScript; U+2028 and U+2029 end lines in
 * older engines, so they are escaped too. */
static const char *esc_js(cg_arena *a, const char *in)
{
	cg_buf b = CG_BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
			cg_buf_puts(&b, p[2] == 0xa8 ? "\\u2028" : "\\u2029");
			p += 2;
			continue;
		}
		switch (*p) {
		case '"':
			cg_buf_puts(&b, "\\\"");
			break;
		case '\\':
			cg_buf_puts(&b, "\\\\");
			break;
		case '\n':
			cg_buf_puts(&b, "\\n");
			break;
		case '\t':
			cg_buf_puts(&b, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				cg_buf_printf(&b, "\\u%04x", *p);
			else
				cg_buf_putc(&b, (char)*p);
		}
	}
	char *r = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return r;
}

/* Inside a C block comment: neither opens nor closes one, and no line
 * breaks (a value stays on the template's line). */
static const char *esc_comment(cg_arena *a, const char *in)
{
	cg_buf b = CG_BUF_INIT;
	for (const char *p = in; *p; p++) {
		if ((p[0] == '*' && p[1] == '/') || (p[0] == '/' && p[1] == '*')) {
			cg_buf_putc(&b, p[0]);
			cg_buf_putc(&b, ' ');
		} else if (*p == '\n' || *p == '\r') {
			cg_buf_putc(&b, ' ');
		} else {
			cg_buf_putc(&b, *p);
		}
	}
	char *r = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return r;
}

static const char *f_upper(cg_arena *a, const char *in)
{
	return cg_name_upper(a, in);
}
static const char *f_lower(cg_arena *a, const char *in)
{
	return cg_name_lower(a, in);
}
static const char *f_snake(cg_arena *a, const char *in)
{
	return cg_name_snake(a, in);
}
static const char *f_pascal(cg_arena *a, const char *in)
{
	return cg_name_pascal(a, in);
}
static const char *f_camel(cg_arena *a, const char *in)
{
	return cg_name_camel(a, in);
}
static const char *f_ident(cg_arena *a, const char *in)
{
	return cg_name_ident(a, in);
}

typedef struct filter {
	const char *name;
	filter_fn fn;
} filter;

static const filter filters[] = {
    {"c", esc_c},       {"py", esc_py},     {"js", esc_js},     {"comment", esc_comment},
    {"upper", f_upper}, {"lower", f_lower}, {"snake", f_snake}, {"pascal", f_pascal},
    {"camel", f_camel}, {"ident", f_ident},
};

static const filter *find_filter(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
		if (strlen(filters[i].name) == n && memcmp(filters[i].name, name, n) == 0)
			return &filters[i];
	return NULL;
}

const char *tpl_filter_apply(cg_arena *a, const char *name, const char *in)
{
	const filter *f = find_filter(name, strlen(name));
	return f ? f->fn(a, in) : NULL;
}

/* ---- parsing ------------------------------------------------------------- */

typedef enum node_kind { N_TEXT, N_VAR, N_EACH, N_IF, N_UNLESS } node_kind;

typedef struct node {
	node_kind kind;
	int line;
	const char *text; /* N_TEXT: len bytes */
	size_t len;
	const char *name; /* the others */
	const filter **filters;
	size_t n_filters;
	struct node *body; /* sections */
	struct node *next;
} node;

struct tpl {
	const char *name;
	node *body;
};

typedef struct parser {
	cg_arena *a;
	const char *name;
	const char *s;
	size_t len;
	size_t pos;        /* next byte to read */
	size_t line_start; /* offset of the first byte of the current line */
	int line;          /* 1-based number of the current line */
	cg_errors *errs;
} parser;

static int parse_error(parser *p, int line, const char *fmt, const char *arg, size_t n)
{
	cg_buf b = CG_BUF_INIT;
	cg_buf_printf(&b, fmt, (int)n, arg);
	cg_errorf(p->errs, "template %s:%d: %s", p->name, line, cg_buf_str(&b));
	cg_buf_fini(&b);
	return -1;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '@';
}

static bool valid_name(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char(s[i]))
			return false;
	return true;
}

static bool blank(const char *s, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/* Appends a node to the list whose last next-pointer is *tail. */
static node *add_node(parser *p, node ***tail, node_kind kind, int line)
{
	node *n = cg_alloc(p->a, sizeof *n);
	n->kind = kind;
	n->line = line;
	**tail = n;
	*tail = &n->next;
	return n;
}

static void add_text(parser *p, node ***tail, size_t from, size_t to, int line)
{
	if (to <= from)
		return;
	node *n = add_node(p, tail, N_TEXT, line);
	n->text = p->s + from;
	n->len = to - from;
}

/* parse_var fills n from "name|filter|filter". */
static int parse_var(parser *p, node *n, const char *tag, size_t len)
{
	const char *bar = memchr(tag, '|', len);
	size_t name_len = bar ? (size_t)(bar - tag) : len;
	if (!valid_name(tag, name_len))
		return parse_error(p, n->line, "bad name in $%.*s$", tag, len);
	n->name = cg_strndup(p->a, tag, name_len);
	size_t count = 0;
	for (size_t i = 0; i < len; i++)
		count += tag[i] == '|';
	n->filters = cg_alloc_array(p->a, count, sizeof *n->filters);
	const char *f = bar;
	while (f) {
		f++;
		const char *end = memchr(f, '|', (size_t)(tag + len - f));
		size_t flen = end ? (size_t)(end - f) : (size_t)(tag + len - f);
		const filter *fl = find_filter(f, flen);
		if (!fl)
			return parse_error(p, n->line, "unknown filter \"%.*s\"", f, flen);
		n->filters[n->n_filters++] = fl;
		f = end;
	}
	return 0;
}

/* parse_block parses until $/close$ (or the end when close is NULL) into
 * *out. open_line is where the section opened, for errors. */
static int parse_block(parser *p, const char *close, size_t close_len, int open_line, node **out)
{
	node **tail = out;
	size_t seg = p->pos; /* start of the pending text */
	int seg_line = p->line;
	for (;;) {
		size_t i = p->pos;
		while (i < p->len && p->s[i] != '$') {
			if (p->s[i] == '\n') {
				p->line++;
				p->line_start = i + 1;
			}
			i++;
		}
		if (i >= p->len) {
			add_text(p, &tail, seg, p->len, seg_line);
			p->pos = p->len;
			if (close)
				return parse_error(p, open_line,
				                   "$#%.*s$ (or $?/$^) is never closed", close,
				                   close_len);
			return 0;
		}
		if (i + 1 < p->len && p->s[i + 1] == '$') { /* "$$" */
			add_text(p, &tail, seg, i + 1, seg_line);
			p->pos = seg = i + 2;
			seg_line = p->line;
			continue;
		}
		size_t j = i + 1;
		while (j < p->len && p->s[j] != '$' && p->s[j] != '\n')
			j++;
		if (j >= p->len || p->s[j] != '$')
			return parse_error(p, p->line, "unterminated tag $%.*s", p->s + i + 1,
			                   j - i - 1 > 20 ? 20 : j - i - 1);
		const char *tag = p->s + i + 1;
		size_t tag_len = j - i - 1;
		int tag_line = p->line;
		char sigil = tag_len ? tag[0] : 0;
		bool block =
		    sigil == '#' || sigil == '?' || sigil == '^' || sigil == '/' || sigil == '!';

		size_t text_end = i, next = j + 1;
		if (block) {
			size_t eol = next;
			while (eol < p->len && p->s[eol] != '\n')
				eol++;
			if (blank(p->s, p->line_start, i) && blank(p->s, next, eol)) {
				/* Standalone: the whole line goes, newline included. */
				text_end = p->line_start;
				next = eol < p->len ? eol + 1 : eol;
				if (eol < p->len) {
					p->line++;
					p->line_start = next;
				}
			}
		}
		add_text(p, &tail, seg, text_end, seg_line);
		p->pos = seg = next;
		seg_line = p->line;

		if (sigil == '!')
			continue;
		if (sigil == '/') {
			if (!close || tag_len - 1 != close_len ||
			    memcmp(tag + 1, close, close_len) != 0)
				return parse_error(p, tag_line, "$%.*s$ closes no open section",
				                   tag, tag_len);
			return 0;
		}
		if (block) {
			if (!valid_name(tag + 1, tag_len - 1))
				return parse_error(p, tag_line, "bad section name in $%.*s$", tag,
				                   tag_len);
			node_kind k = sigil == '#' ? N_EACH : sigil == '?' ? N_IF : N_UNLESS;
			node *n = add_node(p, &tail, k, tag_line);
			n->name = cg_strndup(p->a, tag + 1, tag_len - 1);
			if (parse_block(p, tag + 1, tag_len - 1, tag_line, &n->body) != 0)
				return -1;
			seg = p->pos;
			seg_line = p->line;
			continue;
		}
		node *n = add_node(p, &tail, N_VAR, tag_line);
		if (parse_var(p, n, tag, tag_len) != 0)
			return -1;
	}
}

int tpl_parse(tpl **out, cg_arena *a, const char *name, const char *text, size_t len,
              cg_errors *errs)
{
	parser p = {.a = a, .name = name, .s = text, .len = len, .line = 1, .errs = errs};
	tpl *t = cg_alloc(a, sizeof *t);
	t->name = cg_strdup(a, name);
	if (parse_block(&p, NULL, 0, 1, &t->body) != 0)
		return -1;
	*out = t;
	return 0;
}

/* ---- rendering ----------------------------------------------------------- */

typedef struct scope {
	const tpl_dict *d;
	const struct scope *up;
	bool loop; /* an item of a $#list$ */
	size_t index, count;
} scope;

typedef struct renderer {
	const tpl *t;
	cg_arena *a;
	cg_buf *out;
	cg_errors *errs;
} renderer;

static int render_error(renderer *r, const node *n, const char *what)
{
	cg_errorf(r->errs, "template %s:%d: %s $%s$", r->t->name, n->line, what, n->name);
	return -1;
}

/* lookup resolves n->name in the scope chain. Loop variables (@index,
 * @first, @last) come back as *special. */
static const entry *lookup(const scope *sc, const char *name, const char **special, cg_arena *a)
{
	*special = NULL;
	if (name[0] == '@') {
		for (; sc; sc = sc->up) {
			if (!sc->loop)
				continue;
			if (strcmp(name, "@index") == 0)
				*special = cg_printf(a, "%zu", sc->index);
			else if (strcmp(name, "@first") == 0)
				*special = sc->index == 0 ? "1" : "";
			else if (strcmp(name, "@last") == 0)
				*special = sc->index + 1 == sc->count ? "1" : "";
			return NULL;
		}
		return NULL;
	}
	for (; sc; sc = sc->up) {
		const entry *e = find(sc->d, name);
		if (e)
			return e;
	}
	return NULL;
}

static int render_nodes(renderer *r, const node *n, const scope *sc)
{
	for (; n; n = n->next) {
		if (n->kind == N_TEXT) {
			cg_buf_add(r->out, n->text, n->len);
			continue;
		}
		const char *special;
		const entry *e = lookup(sc, n->name, &special, r->a);
		if (!e && !special)
			return render_error(r, n, "unknown name");
		switch (n->kind) {
		case N_VAR: {
			if (e && e->is_list)
				return render_error(r, n, "a list used as a value:");
			const char *v = special ? special : e->str;
			for (size_t i = 0; i < n->n_filters; i++)
				v = n->filters[i]->fn(r->a, v);
			cg_buf_puts(r->out, v);
			break;
		}
		case N_EACH:
			if (!e || !e->is_list)
				return render_error(r, n, "a value used as a list:");
			for (size_t i = 0; i < e->n; i++) {
				scope item = {.d = e->items[i],
				              .up = sc,
				              .loop = true,
				              .index = i,
				              .count = e->n};
				if (render_nodes(r, n->body, &item) != 0)
					return -1;
			}
			break;
		case N_IF:
		case N_UNLESS: {
			bool on = special      ? *special != '\0'
			          : e->is_list ? e->n > 0
			                       : *e->str != '\0';
			if (on == (n->kind == N_IF) && render_nodes(r, n->body, sc) != 0)
				return -1;
			break;
		}
		case N_TEXT:
			break;
		}
	}
	return 0;
}

int tpl_render(const tpl *t, const tpl_dict *d, cg_arena *a, cg_buf *out, cg_errors *errs)
{
	renderer r = {.t = t, .a = a, .out = out, .errs = errs};
	scope root = {.d = d};
	return render_nodes(&r, t->body, &root);
}
