/* template.h - google.api.http path templates (json_api.c): parsed once
 * when a contract is registered, matched against each request's path.
 *
 *   Template = "/" Segment { "/" Segment } [ ":" Verb ]
 *   Segment  = "*" | "**" | LITERAL | Variable
 *   Variable = "{" FieldPath [ "=" Segment { "/" Segment } ] "}"
 *
 * "**" only as the last segment; a literal is printable ASCII without
 * "{}/:*=". A parsed template owns its strings (gw_tmpl_fini). Pure
 * functions: any thread. */
#ifndef GW_TEMPLATE_H
#define GW_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#define GW_TMPL_SEGS      64   /* segments of a template or a request path */
#define GW_TMPL_VARS      16   /* variables of a template */
#define GW_TMPL_MAX_BYTES 2048 /* a template's text */

enum { GW_SEG_LIT, GW_SEG_STAR, GW_SEG_DSTAR };

typedef struct gw_tseg {
	int kind;  /* GW_SEG_* */
	char *lit; /* owned; GW_SEG_LIT */
} gw_tseg;

typedef struct gw_tvar {
	char *field;     /* owned: a field path ("a.b") */
	size_t from, to; /* the template segments it spans, [from, to) */
} gw_tvar;

typedef struct gw_tmpl {
	gw_tseg segs[GW_TMPL_SEGS];
	size_t nsegs;
	gw_tvar vars[GW_TMPL_VARS];
	size_t nvars;
	char *verb; /* owned: the ":verb" suffix without its colon; NULL = none */
} gw_tmpl;

/* gw_tmpl_parse parses t into *r (zeroed by the caller). Returns false with
 * why; *r then holds what was parsed so far: gw_tmpl_fini it either way. */
bool gw_tmpl_parse(const char *t, gw_tmpl *r, char *why, size_t wn);
void gw_tmpl_fini(gw_tmpl *r);

/* gw_tmpl_field_path_ok: s[0..n) is identifiers joined by dots, at most
 * 255 bytes. */
bool gw_tmpl_field_path_ok(const char *s, size_t n);

/* gw_tmpl_split splits a path ("/a/b"; copy is a writable copy, changed)
 * into its segments (pointers into copy, at most GW_TMPL_SEGS). Returns
 * their count, or -1 when there are more. */
int gw_tmpl_split(char *copy, char **segs);

/* gw_tmpl_match matches the path segments segs[0..n) against r (a ":verb"
 * suffix already cut off the last segment); pos[i] gets the path segment
 * where template segment i starts (pos[r->nsegs] = n), so variable v spans
 * path segments pos[v.from] .. pos[v.to]. */
bool gw_tmpl_match(const gw_tmpl *r, char **segs, int n, size_t *pos);

#endif
