/* arena.c - see arena.h. */
#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Blocks are chained newest first; a request larger than a block gets a
 * block of its own. */
typedef struct block {
	struct block *next;
	size_t used, size;
	_Alignas(max_align_t) unsigned char data[];
} block;

struct cg_arena {
	block *head;
};

enum { BLOCK_SIZE = 64 * 1024 };

void cg_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("protoc-gen-spawn: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		cg_die("out of memory");
	return p;
}

cg_arena *cg_arena_create(void)
{
	cg_arena *a = xmalloc(sizeof *a);
	a->head = NULL;
	return a;
}

void cg_arena_destroy(cg_arena *a)
{
	if (!a)
		return;
	for (block *b = a->head, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

void *cg_alloc(cg_arena *a, size_t n)
{
	const size_t align = _Alignof(max_align_t);
	if (n > SIZE_MAX - align)
		cg_die("out of memory");
	n = (n + align - 1) & ~(align - 1);
	block *b = a->head;
	if (!b || b->size - b->used < n) {
		size_t size = n > BLOCK_SIZE ? n : BLOCK_SIZE;
		b = xmalloc(sizeof *b + size);
		b->used = 0;
		b->size = size;
		/* Keep filling the current block when the new one is an
		 * oversized one-off. */
		if (a->head && size > BLOCK_SIZE) {
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	void *p = b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

void *cg_alloc_array(cg_arena *a, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		cg_die("out of memory");
	return cg_alloc(a, n * size);
}

void *cg_memdup(cg_arena *a, const void *p, size_t n)
{
	void *q = cg_alloc(a, n);
	if (n)
		memcpy(q, p, n);
	return q;
}

char *cg_strndup(cg_arena *a, const char *s, size_t n)
{
	char *p = cg_alloc(a, n + 1);
	memcpy(p, s, n);
	return p;
}

char *cg_strdup(cg_arena *a, const char *s)
{
	return s ? cg_strndup(a, s, strlen(s)) : NULL;
}

char *cg_printf(cg_arena *a, const char *fmt, ...)
{
	cg_buf b = CG_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cg_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	char *s = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return s;
}

/* ---- cg_buf ---------------------------------------------------------- */

static void reserve(cg_buf *b, size_t extra)
{
	if (extra >= SIZE_MAX / 2 - b->len)
		cg_die("out of memory");
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		cg_die("out of memory");
	b->data = p;
	b->cap = cap;
}

void cg_buf_add(cg_buf *b, const void *p, size_t n)
{
	reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void cg_buf_puts(cg_buf *b, const char *s)
{
	cg_buf_add(b, s, strlen(s));
}

void cg_buf_putc(cg_buf *b, char c)
{
	cg_buf_add(b, &c, 1);
}

void cg_buf_vprintf(cg_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		cg_die("bad format string %s", fmt);
	reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void cg_buf_printf(cg_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cg_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

const char *cg_buf_str(const cg_buf *b)
{
	return b->data ? b->data : "";
}

char *cg_buf_take(cg_buf *b, cg_arena *a)
{
	char *s = cg_strndup(a, cg_buf_str(b), b->len);
	cg_buf_reset(b);
	return s;
}

void cg_buf_reset(cg_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void cg_buf_fini(cg_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void cg_errorf(cg_errors *e, const char *fmt, ...)
{
	va_list ap;
	if (e->count)
		cg_buf_putc(&e->text, '\n');
	va_start(ap, fmt);
	cg_buf_vprintf(&e->text, fmt, ap);
	va_end(ap);
	e->count++;
}
