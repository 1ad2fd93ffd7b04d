/* template.c - google.api.http path templates (template.h). */
#include "template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_tmpl_fini(gw_tmpl *r)
{
	for (size_t i = 0; i < r->nsegs; i++)
		free(r->segs[i].lit);
	for (size_t i = 0; i < r->nvars; i++)
		free(r->vars[i].field);
	free(r->verb);
	memset(r, 0, sizeof *r);
}

/* ident_ok / field_path_ok: [A-Za-z_][A-Za-z0-9_]* and those joined by dots. */
static bool ident_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

bool gw_tmpl_field_path_ok(const char *s, size_t n)
{
	if (!n || n > 255)
		return false;
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' && !first && i + 1 < n) {
			first = true;
			continue;
		}
		if (!ident_char(s[i], first))
			return false;
		first = false;
	}
	return true;
}

/* lit_char: a literal segment's bytes: printable ASCII but the template's
 * own punctuation. */
static bool lit_char(char c)
{
	return c > 0x20 && c < 0x7f && !strchr("{}/:*=", c);
}

/* parse_segments parses "seg/seg/..." from *p up to stop (a '}' or the
 * end) into r->segs. Returns false with why. */
static bool parse_segments(const char **p, const char *end, gw_tmpl *r, char *why, size_t wn)
{
	for (;;) {
		if (r->nsegs == GW_TMPL_SEGS) {
			snprintf(why, wn, "more than %d segments", GW_TMPL_SEGS);
			return false;
		}
		gw_tseg *s = &r->segs[r->nsegs];
		const char *q = *p;
		while (q < end && *q != '/' && *q != '}')
			q++;
		size_t n = (size_t)(q - *p);
		if (n == 2 && !memcmp(*p, "**", 2)) {
			s->kind = GW_SEG_DSTAR;
		} else if (n == 1 && **p == '*') {
			s->kind = GW_SEG_STAR;
		} else {
			for (size_t i = 0; i < n; i++)
				if (!lit_char((*p)[i])) {
					snprintf(why, wn, "a segment holds '%c' or is empty",
					         (*p)[i] > 0x20 && (*p)[i] < 0x7f ? (*p)[i] : '?');
					return false;
				}
			if (!n) {
				snprintf(why, wn, "an empty segment");
				return false;
			}
			s->kind = GW_SEG_LIT;
			if (!(s->lit = strndup(*p, n))) {
				snprintf(why, wn, "out of memory");
				return false;
			}
		}
		r->nsegs++;
		*p = q;
		if (q == end || *q == '}' || (q + 1 < end && q[1] == '{'))
			return true; /* the caller reads the '/' before a variable */
		(*p)++;              /* the '/' */
		if (*p == end) {
			snprintf(why, wn, "ends with '/'");
			return false;
		}
	}
}

/* parse_template parses a google.api.http path template (and its verb)
 * into r: "/" Segment {"/" Segment} [":" Verb], a Segment "*", "**", a
 * literal or "{field[=Segments]}". Returns false with why. */
bool gw_tmpl_parse(const char *t, gw_tmpl *r, char *why, size_t wn)
{
	size_t len = strlen(t);
	if (t[0] != '/' || len > GW_TMPL_MAX_BYTES) {
		snprintf(why, wn, "a template starts with '/' and has at most %d bytes",
		         GW_TMPL_MAX_BYTES);
		return false;
	}
	/* The verb: a ':' outside braces, after the last segment. */
	const char *end = t + len;
	int depth = 0;
	for (const char *q = t; q < end; q++) {
		if (*q == '{')
			depth++;
		else if (*q == '}')
			depth--;
		else if (*q == ':' && depth == 0) {
			for (const char *v = q + 1; v < end; v++)
				if (!lit_char(*v)) {
					snprintf(why, wn, "the verb after ':' is not a literal");
					return false;
				}
			if (q + 1 == end || !(r->verb = strdup(q + 1))) {
				snprintf(why, wn, "an empty verb");
				return false;
			}
			end = q;
			break;
		}
	}
	const char *p = t + 1;
	while (p < end) {
		if (*p == '{') {
			if (r->nvars == GW_TMPL_VARS) {
				snprintf(why, wn, "more than %d variables", GW_TMPL_VARS);
				return false;
			}
			const char *f = ++p;
			while (p < end && *p != '=' && *p != '}')
				p++;
			if (p == end || !gw_tmpl_field_path_ok(f, (size_t)(p - f))) {
				snprintf(why, wn, "a variable is not {field.path[=segments]}");
				return false;
			}
			gw_tvar *v = &r->vars[r->nvars];
			if (!(v->field = strndup(f, (size_t)(p - f)))) {
				snprintf(why, wn, "out of memory");
				return false;
			}
			r->nvars++;
			v->from = r->nsegs;
			if (*p == '=') {
				p++;
				if (!parse_segments(&p, end, r, why, wn))
					return false;
			} else if (r->nsegs < GW_TMPL_SEGS) {
				r->segs[r->nsegs++].kind = GW_SEG_STAR;
			} else {
				snprintf(why, wn, "more than %d segments", GW_TMPL_SEGS);
				return false;
			}
			v->to = r->nsegs;
			if (p == end || *p != '}') {
				snprintf(why, wn, "a variable is not closed with '}'");
				return false;
			}
			p++;
		} else if (!parse_segments(&p, end, r, why, wn)) {
			return false;
		}
		if (p < end) {
			if (*p != '/') {
				snprintf(why, wn, "'%c' where a '/' belongs", *p);
				return false;
			}
			p++;
			if (p == end) {
				snprintf(why, wn, "ends with '/'");
				return false;
			}
		}
	}
	for (size_t i = 0; i + 1 < r->nsegs; i++)
		if (r->segs[i].kind == GW_SEG_DSTAR) {
			snprintf(why, wn, "'**' is allowed as the last segment only");
			return false;
		}
	return true;
}

/* split_path splits path (after its leading '/') into at most GW_TMPL_SEGS
 * segments, pointers into copy (a writable copy). Returns the count, or -1. */
int gw_tmpl_split(char *copy, char **segs)
{
	int n = 0;
	char *p = copy + 1;
	for (;;) {
		if (n == GW_TMPL_SEGS)
			return -1;
		segs[n++] = p;
		char *slash = strchr(p, '/');
		if (!slash)
			return n;
		*slash = 0;
		p = slash + 1;
	}
}

/* match_rule matches the path's segments against r: *pos gets the path
 * segment where each template segment starts (pos[r->nsegs] = n). */
bool gw_tmpl_match(const gw_tmpl *r, char **segs, int n, size_t *pos)
{
	int j = 0;
	for (size_t i = 0; i < r->nsegs; i++) {
		pos[i] = (size_t)j;
		const gw_tseg *s = &r->segs[i];
		if (s->kind == GW_SEG_DSTAR) {
			j = n;
			continue;
		}
		if (j >= n || !segs[j][0])
			return false;
		if (s->kind == GW_SEG_LIT && strcmp(s->lit, segs[j]))
			return false;
		j++;
	}
	pos[r->nsegs] = (size_t)j;
	return j == n;
}
