/* template.h - the `$var$` template engine of protoc-gen-spawn.
 *
 * Templates are data files under sdk-templates/<lang>/. The syntax:
 *
 *   $name$            the value of name, looked up in the current scope and
 *                     then in the enclosing ones (an unknown name is an error)
 *   $name|f|g$        the value passed through filters f then g (below)
 *   $$                a literal '$'
 *   $#list$...$/list$ the body once per item of list, in the item's scope;
 *                     inside, $@index$ (0-based), and flags @first, @last
 *   $?name$...$/name$ the body if name is true: a non-empty string or list
 *   $^name$...$/name$ the body if name is false
 *   $!comment$        nothing
 *
 * A line holding nothing but one section or comment tag (and blanks)
 * disappears entirely, newline included, so sections do not leave blank
 * lines behind. Tags end on the line they start.
 *
 * Filters (escaping and case; names.h does the work):
 *   c        escape for the inside of a C string literal
 *   py       escape for the inside of a Python "..." literal
 *   js       escape for the inside of a JavaScript/TypeScript "..." literal
 *   comment  make safe inside a C block comment (breaks its delimiters)
 *   upper lower snake pascal camel ident   see names.h
 *
 * Values come from a tree of tpl_dict scopes that the emitter builds (the
 * "view"): each key holds a string or a list of child scopes. Flags are
 * strings: "1" for true, "" for false.
 */
#ifndef CG_TEMPLATE_H
#define CG_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

typedef struct tpl_dict tpl_dict; /* one scope of a view */
typedef struct tpl tpl;           /* a parsed template */

/* tpl_dict_create returns an empty scope owned by a. */
tpl_dict *tpl_dict_create(cg_arena *a);

/* tpl_set sets key to a copy of value (replacing an earlier value);
 * tpl_setf formats it; tpl_set_flag sets "1" or "". Strings are copied
 * into the dict's arena. */
void tpl_set(tpl_dict *d, const char *key, const char *value);
void tpl_setf(tpl_dict *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tpl_set_flag(tpl_dict *d, const char *key, bool on);

/* tpl_list makes key an empty list (so that templates can test an empty
 * list); tpl_add appends a new empty scope to the list key (creating the
 * list) and returns it. */
void tpl_list(tpl_dict *d, const char *key);
tpl_dict *tpl_add(tpl_dict *d, const char *key);

/* tpl_get returns the string value of key in d itself (no enclosing
 * scopes), NULL when absent or a list. */
const char *tpl_get(const tpl_dict *d, const char *key);

/* tpl_parse parses text (len bytes; need not be NUL-terminated) of the
 * template called name (used in error messages: "c/header.h.tpl:12: ...").
 * Returns 0 and sets *out (owned by a); or -1 and appends the error to
 * errs. */
int tpl_parse(tpl **out, cg_arena *a, const char *name, const char *text, size_t len,
              cg_errors *errs);

/* tpl_render renders t with root scope d, appending to out. Returns 0; or
 * -1 after appending the error ("name:LINE: unknown name $x$") to errs;
 * out then holds a partial rendering. Scratch memory comes from a. */
int tpl_render(const tpl *t, const tpl_dict *d, cg_arena *a, cg_buf *out, cg_errors *errs);

/* tpl_filter_apply runs the filter called name over in (for callers that
 * need a filter outside a template). Returns NULL for an unknown filter. */
const char *tpl_filter_apply(cg_arena *a, const char *name, const char *in);

#endif
