/* names.h - every name the generator derives from a contract, in one
 * place: case conversions used by the templates' filters, identifiers, and
 * the names protoc-c gives to messages.
 *
 * All functions return a new string in arena a; inputs are borrowed.
 * Letters are ASCII; other bytes are copied unchanged (except by
 * cg_name_ident).
 */
#ifndef CG_NAMES_H
#define CG_NAMES_H

#include <stdbool.h>

#include "arena.h"

/* cg_name_snake: words in lower case joined by '_'. A word starts at an
 * upper-case letter after a lower-case letter or digit, and at the last
 * capital of a run followed by a lower-case letter:
 * "Add" -> "add", "GetURL" -> "get_url", "HTTPServer" -> "http_server",
 * "add_item" -> "add_item", "v2Add" -> "v2_add". */
char *cg_name_snake(cg_arena *a, const char *s);

/* cg_name_pascal: the words of cg_name_snake, each capitalized, joined:
 * "add_item" -> "AddItem", "GetURL" -> "GetUrl". cg_name_camel is the
 * same with the first word in lower case: "getUrl". */
char *cg_name_pascal(cg_arena *a, const char *s);
char *cg_name_camel(cg_arena *a, const char *s);

char *cg_name_upper(cg_arena *a, const char *s);
char *cg_name_lower(cg_arena *a, const char *s);

/* cg_name_ident makes a C-like identifier: every byte outside
 * [A-Za-z0-9_] becomes '_', and a leading digit gets a '_' before it:
 * "incrementor/incrementor.proto" -> "incrementor_incrementor_proto". */
char *cg_name_ident(cg_arena *a, const char *s);

/* cg_name_is_c_reserved tells whether s is a C11 or C++ keyword (generated
 * headers are usable from C++), or a name reserved in a generated struct
 * ("user"). */
bool cg_name_is_c_reserved(const char *s);

/* The names protoc-c (protobuf-c 1.4.1, c_helpers.cc) gives a message of
 * full name "pkg.sub.Outer.Inner_msg":
 *   cg_name_pbc_type  "Pkg__Sub__Outer__InnerMsg"   (the struct's typedef)
 *   cg_name_pbc_lower "pkg__sub__outer__inner_msg"  (+ "__descriptor" etc.)
 *   cg_name_pbc_upper "PKG__SUB__OUTER__INNER_MSG"  (+ "__INIT")
 * Files using protobuf-c's c_package option get other names; the C
 * emitter rejects them. */
char *cg_name_pbc_type(cg_arena *a, const char *full_name);
char *cg_name_pbc_lower(cg_arena *a, const char *full_name);
char *cg_name_pbc_upper(cg_arena *a, const char *full_name);

/* cg_name_strip_proto: "dir/x.proto" -> "dir/x" (other names unchanged). */
char *cg_name_strip_proto(cg_arena *a, const char *file);

#endif
