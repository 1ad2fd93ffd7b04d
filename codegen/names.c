/* names.c - see names.h. */
#include "names.h"

#include <string.h>

static bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char to_lower(char c)
{
	return is_upper(c) ? (char)(c - 'A' + 'a') : c;
}

static char to_upper(char c)
{
	return is_lower(c) ? (char)(c - 'a' + 'A') : c;
}

char *cg_name_snake(cg_arena *a, const char *s)
{
	cg_buf b = CG_BUF_INIT;
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (is_upper(c) && i > 0 && s[i - 1] != '_') {
			char prev = s[i - 1];
			bool next_lower = i + 1 < n && is_lower(s[i + 1]);
			if (is_lower(prev) || is_digit(prev) || (is_upper(prev) && next_lower))
				cg_buf_putc(&b, '_');
		}
		cg_buf_putc(&b, to_lower(c));
	}
	char *r = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return r;
}

static char *join_words(cg_arena *a, const char *s, bool first_upper)
{
	char *snake = cg_name_snake(a, s);
	cg_buf b = CG_BUF_INIT;
	bool start = true, first = true;
	for (const char *p = snake; *p; p++) {
		if (*p == '_') {
			start = true;
			continue;
		}
		cg_buf_putc(&b, start && (first_upper || !first) ? to_upper(*p) : *p);
		if (start)
			first = false;
		start = false;
	}
	char *r = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return r;
}

char *cg_name_pascal(cg_arena *a, const char *s)
{
	return join_words(a, s, true);
}

char *cg_name_camel(cg_arena *a, const char *s)
{
	return join_words(a, s, false);
}

char *cg_name_upper(cg_arena *a, const char *s)
{
	char *r = cg_strdup(a, s);
	for (char *p = r; *p; p++)
		*p = to_upper(*p);
	return r;
}

char *cg_name_lower(cg_arena *a, const char *s)
{
	char *r = cg_strdup(a, s);
	for (char *p = r; *p; p++)
		*p = to_lower(*p);
	return r;
}

char *cg_name_ident(cg_arena *a, const char *s)
{
	cg_buf b = CG_BUF_INIT;
	if (is_digit(*s))
		cg_buf_putc(&b, '_');
	for (const char *p = s; *p; p++) {
		char c = *p;
		cg_buf_putc(&b, is_upper(c) || is_lower(c) || is_digit(c) ? c : '_');
	}
	char *r = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return r;
}

bool cg_name_is_c_reserved(const char *s)
{
	static const char *const words[] = {
	    /* C11 */
	    "auto",
	    "break",
	    "case",
	    "char",
	    "const",
	    "continue",
	    "default",
	    "do",
	    "double",
	    "else",
	    "enum",
	    "extern",
	    "float",
	    "for",
	    "goto",
	    "if",
	    "inline",
	    "int",
	    "long",
	    "register",
	    "restrict",
	    "return",
	    "short",
	    "signed",
	    "sizeof",
	    "static",
	    "struct",
	    "switch",
	    "typedef",
	    "union",
	    "unsigned",
	    "void",
	    "volatile",
	    "while",
	    /* common macros of <stdbool.h> and friends */
	    "bool",
	    "true",
	    "false",
	    "errno",
	    "assert",
	    /* C++ */
	    "alignas",
	    "alignof",
	    "and",
	    "and_eq",
	    "asm",
	    "bitand",
	    "bitor",
	    "catch",
	    "class",
	    "compl",
	    "concept",
	    "const_cast",
	    "constexpr",
	    "decltype",
	    "delete",
	    "dynamic_cast",
	    "explicit",
	    "export",
	    "friend",
	    "module",
	    "mutable",
	    "namespace",
	    "new",
	    "noexcept",
	    "not",
	    "not_eq",
	    "nullptr",
	    "operator",
	    "or",
	    "or_eq",
	    "private",
	    "protected",
	    "public",
	    "reinterpret_cast",
	    "requires",
	    "static_assert",
	    "static_cast",
	    "template",
	    "this",
	    "thread_local",
	    "throw",
	    "try",
	    "typeid",
	    "typename",
	    "using",
	    "virtual",
	    "wchar_t",
	    "xor",
	    "xor_eq",
	    /* members of generated structs */
	    "user",
	};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	return false;
}

/* ---- protoc-c ---------------------------------------------------------- */

/* The three helpers below mirror FullNameToC, FullNameToLower and
 * FullNameToUpper of protoc-c: split at '.', convert each piece, join with
 * "__". */
typedef enum piece_style { PIECE_C, PIECE_LOWER, PIECE_UPPER } piece_style;

static void convert_piece(cg_buf *b, const char *p, size_t n, piece_style st)
{
	if (st == PIECE_C) {
		/* ToCamel: drop '_' and capitalize what follows it. */
		bool next_upper = true;
		for (size_t i = 0; i < n; i++) {
			if (p[i] == '_') {
				next_upper = true;
			} else {
				cg_buf_putc(b, next_upper ? to_upper(p[i]) : p[i]);
				next_upper = false;
			}
		}
		return;
	}
	/* CamelToLower / CamelToUpper: '_' before a capital that follows a
	 * non-capital, then change the case. */
	bool was_upper = true;
	for (size_t i = 0; i < n; i++) {
		bool up = is_upper(p[i]);
		if (up && !was_upper)
			cg_buf_putc(b, '_');
		cg_buf_putc(b, st == PIECE_LOWER ? to_lower(p[i]) : to_upper(p[i]));
		was_upper = up;
	}
}

static char *pbc_name(cg_arena *a, const char *full, piece_style st)
{
	cg_buf b = CG_BUF_INIT;
	const char *p = full;
	bool any = false;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n) {
			if (any)
				cg_buf_puts(&b, "__");
			convert_piece(&b, p, n, st);
			any = true;
		}
		p += n;
		if (*p == '.')
			p++;
	}
	char *r = cg_buf_take(&b, a);
	cg_buf_fini(&b);
	return r;
}

char *cg_name_pbc_type(cg_arena *a, const char *full_name)
{
	return pbc_name(a, full_name, PIECE_C);
}

char *cg_name_pbc_lower(cg_arena *a, const char *full_name)
{
	return pbc_name(a, full_name, PIECE_LOWER);
}

char *cg_name_pbc_upper(cg_arena *a, const char *full_name)
{
	return pbc_name(a, full_name, PIECE_UPPER);
}

char *cg_name_strip_proto(cg_arena *a, const char *file)
{
	size_t n = strlen(file);
	if (n > 6 && strcmp(file + n - 6, ".proto") == 0)
		n -= 6;
	return cg_strndup(a, file, n);
}
