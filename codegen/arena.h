/* arena.h - memory for protoc-gen-spawn: one arena per run, growable
 * buffers, and the list of errors reported to protoc.
 *
 * The plugin is a short-lived process that builds a model, renders it and
 * exits, so everything it derives (names, the model, the template views) is
 * allocated from one arena and freed at once with cg_arena_destroy. Only the
 * request, the response buffer and cg_buf contents live on the heap.
 *
 * Out of memory: these are fixed internal allocations of a compiler plugin,
 * so they print "protoc-gen-spawn: out of memory" and exit(1) (protoc then
 * reports the plugin's failure).
 */
#ifndef CG_ARENA_H
#define CG_ARENA_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct cg_arena cg_arena; /* opaque */

/* cg_arena_create returns an empty arena (caller frees with
 * cg_arena_destroy). Never NULL. */
cg_arena *cg_arena_create(void);

/* cg_arena_destroy frees the arena and everything allocated from it.
 * Accepts NULL. */
void cg_arena_destroy(cg_arena *a);

/* cg_alloc returns n zeroed bytes owned by the arena, aligned for any
 * type. n may be 0 (a unique non-NULL pointer). */
void *cg_alloc(cg_arena *a, size_t n);

/* cg_alloc_array is cg_alloc(a, n * size) with an overflow check. */
void *cg_alloc_array(cg_arena *a, size_t n, size_t size);

/* Copies into the arena. cg_strdup(a, NULL) returns NULL. */
char *cg_strdup(cg_arena *a, const char *s);
char *cg_strndup(cg_arena *a, const char *s, size_t n);
void *cg_memdup(cg_arena *a, const void *p, size_t n);

/* cg_printf formats like snprintf into an arena string. */
char *cg_printf(cg_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A growable byte buffer on the heap, always NUL-terminated once written.
 * Zero-initialize (CG_BUF_INIT), append, then cg_buf_fini. */
typedef struct cg_buf {
	char *data; /* NULL until the first append */
	size_t len;
	size_t cap;
} cg_buf;

#define CG_BUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

void cg_buf_add(cg_buf *b, const void *p, size_t n);
void cg_buf_puts(cg_buf *b, const char *s);
void cg_buf_putc(cg_buf *b, char c);
void cg_buf_printf(cg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cg_buf_vprintf(cg_buf *b, const char *fmt, va_list ap);
/* cg_buf_str returns the contents ("" when empty), valid until the next
 * append or cg_buf_fini. */
const char *cg_buf_str(const cg_buf *b);
/* cg_buf_take copies the contents into the arena and empties b. */
char *cg_buf_take(cg_buf *b, cg_arena *a);
void cg_buf_reset(cg_buf *b);
void cg_buf_fini(cg_buf *b);

/* The errors of one run, reported to protoc as CodeGeneratorResponse.error:
 * one line each, "FILE: service NAME: what is wrong". */
typedef struct cg_errors {
	cg_buf text;
	size_t count;
} cg_errors;

void cg_errorf(cg_errors *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cg_die prints "protoc-gen-spawn: MESSAGE" on stderr and exits 1. */
_Noreturn void cg_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
