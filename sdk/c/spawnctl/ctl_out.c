/* ctl_out.c - spawnctl's output: aligned tables and fields for people,
 * JSON (jansson: it escapes, we never do) for scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char *str_or(json_t *v)
{
	const char *s = json_string_value(v);
	return s ? s : "";
}

/* cell: the text of v (caller frees). */
static char *cell(json_t *v)
{
	if (!v || json_is_null(v))
		return strdup("");
	if (json_is_string(v))
		return strdup(json_string_value(v));
	if (json_is_true(v))
		return strdup("yes");
	if (json_is_false(v))
		return strdup("no");
	if (json_is_array(v) && json_array_size(v) > 0 && json_is_string(json_array_get(v, 0))) {
		/* a list of names: comma-separated */
		size_t len = 1;
		for (size_t i = 0; i < json_array_size(v); i++)
			len += strlen(str_or(json_array_get(v, i))) + 1;
		char *s = malloc(len);
		if (!s)
			return NULL;
		s[0] = 0;
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				strcat(s, ",");
			strcat(s, str_or(json_array_get(v, i)));
		}
		return s;
	}
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
}

/* The printed width of s: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void pad(const char *s, size_t w, bool last)
{
	fputs(s, stdout);
	if (!last)
		for (size_t k = width(s); k < w + 2; k++)
			putchar(' ');
}

void ctl_print_table(json_t *rows, const ctl_col *cols, size_t n)
{
	size_t nr = json_array_size(rows);
	size_t *w = calloc(n, sizeof *w);
	char **cells = calloc((nr + 1) * n, sizeof *cells);
	if (!w || !cells) {
		free(w);
		free(cells);
		ctl_print_json(rows);
		return;
	}
	for (size_t c = 0; c < n; c++) {
		cells[c] = strdup(cols[c].head);
		for (size_t r = 0; r < nr; r++)
			cells[(r + 1) * n + c] =
			    cell(json_object_get(json_array_get(rows, r), cols[c].key));
	}
	for (size_t i = 0; i < (nr + 1) * n; i++)
		if (cells[i] && width(cells[i]) > w[i % n])
			w[i % n] = width(cells[i]);
	for (size_t r = 0; r <= nr; r++) {
		for (size_t c = 0; c < n; c++)
			pad(cells[r * n + c] ? cells[r * n + c] : "", w[c], c + 1 == n);
		putchar('\n');
	}
	for (size_t i = 0; i < (nr + 1) * n; i++)
		free(cells[i]);
	free(cells);
	free(w);
}

void ctl_print_fields(json_t *obj)
{
	size_t w = 0;
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		if (width(k) > w)
			w = width(k);
	}
	json_object_foreach(obj, k, v)
	{
		char *s = cell(v);
		pad(k, w, false);
		puts(s ? s : "");
		free(s);
	}
}

void ctl_print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	if (s)
		puts(s);
	free(s);
}
