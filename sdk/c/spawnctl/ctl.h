/* ctl.h - what the parts of spawnctl share (docs/spawnctl.md): the
 * connection to the gateway (ctl_rpc.c), descriptors by server reflection
 * (ctl_refl.c) and the output (ctl_out.c). A one-shot tool: one thread,
 * synchronous calls. */
#ifndef SPAWNCTL_CTL_H
#define SPAWNCTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <jansson.h>

#include "contracts.h"
#include "internal.h"
#include "pbjson.h"

/* Exit codes besides the gRPC status codes 1..16 of a failed call. */
enum {
	CTL_EXIT_USAGE = 64, /* bad command line */
	CTL_EXIT_DATA = 65,  /* input that does not parse (JSON, a number) */
	CTL_EXIT_LOCAL = 70, /* a local failure: out of memory, TLS files */
};

typedef struct ctl {
	spawni_security sec;       /* TLS credentials and the token */
	spawni_target dial;        /* what to dial */
	grpc_channel *ch;          /* owned */
	grpc_completion_queue *cq; /* owned: pluck */
	bool inited;               /* grpc_init done: ctl_close shuts it down */
	int timeout_ms;
	bool json; /* --output json */
	/* descriptors fetched by reflection (ctl_refl.c), built lazily */
	spawn_pbjson *pool;      /* owned; NULL until needed */
	gw_contracts *contracts; /* owned; NULL until needed */
	char **fetched;          /* owned: symbols already fetched, n_fetched */
	size_t n_fetched;
} ctl;

/* An error of a call: a gRPC status code and its message. */
typedef struct ctl_err {
	int code; /* grpc_status_code, or CTL_EXIT_* for a local one */
	char msg[1024];
} ctl_err;

/* ctl_fail fills e (printf format) and returns e->code. */
int ctl_fail(ctl_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ctl_open connects x to target with the security options o (borrowed).
 * Returns 0 or an exit code with e filled. */
int ctl_open(ctl *x, const char *target, const spawn_security_opts *o, ctl_err *e);
void ctl_close(ctl *x);

/* ctl_unary calls method (e.g. "/spawn.gateway.v1.Admin/List") with req
 * and parses the answer as rd into *out (caller frees with
 * protobuf_c_message_free_unpacked(*out, NULL)). Returns 0 (GRPC_STATUS_OK)
 * or the status code, with e filled. */
int ctl_unary(ctl *x, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *rd, ProtobufCMessage **out, ctl_err *e);

/* ---- reflection (ctl_refl.c) ---- */

/* ctl_refl_services lists the services the gateway serves (v1 reflection):
 * *names (caller frees each and the array with ctl_strv_free), *n. */
int ctl_refl_services(ctl *x, char ***names, size_t *n, ctl_err *e);
void ctl_strv_free(char **v, size_t n);

/* ctl_refl_symbol makes sure the file defining symbol (a message or
 * service full name) and its imports are in x->pool and x->contracts:
 * asked by reflection once per symbol. Returns 0 or a code with e filled
 * (NOT_FOUND: the gateway knows no such symbol). */
int ctl_refl_symbol(ctl *x, const char *symbol, ctl_err *e);

/* ctl_any_json: the JSON of an Any (type_url, value[0..len)) resolved
 * through the pool (its type fetched by reflection when needed): a JSON
 * value (caller's reference), or NULL with e filled. */
json_t *ctl_any_json(ctl *x, const char *type_url, const uint8_t *value, size_t len, ctl_err *e);

/* ---- output (ctl_out.c) ---- */

/* A column of a table: its heading and the key of each row object. */
typedef struct ctl_col {
	const char *head, *key; /* borrowed (string literals) */
} ctl_col;

/* ctl_print_table prints rows (a JSON array of objects) as an aligned
 * table with the columns cols[0..n). Values that are not strings or
 * numbers print as compact JSON. */
void ctl_print_table(json_t *rows, const ctl_col *cols, size_t n);
/* ctl_print_fields prints an object as aligned "key  value" lines. */
void ctl_print_fields(json_t *obj);
/* ctl_print_json prints v as indented JSON (keys in insertion order). */
void ctl_print_json(json_t *v);

#endif
