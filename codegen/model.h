/* model.h - what protoc-gen-spawn knows about the contracts of one run.
 *
 * cg_model_build turns a CodeGeneratorRequest into this model: the files
 * to generate, their actors (services carrying the spawn.actors.actor
 * option), each actor's settings and actions (rpcs), and every message of
 * the request (so types from imports resolve). Services without the
 * option are ordinary gRPC services and are skipped. The model is
 * language-neutral; emitters (emit.h) render it.
 *
 * Determinism: actors are sorted by name, actions by name, messages by
 * full name; files keep protoc's order (the command line's).
 *
 * Names are proto names: full names carry no leading dot
 * ("examples.incrementor.Add").
 */
#ifndef CG_MODEL_H
#define CG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "google/protobuf/compiler/plugin.pb-c.h"

#include "arena.h"

/* One .proto file of the request (generated or imported). */
typedef struct cg_proto {
	const char *name;    /* "incrementor/incrementor.proto", as protoc names it */
	const char *package; /* "examples.incrementor"; "" when none */
	const Google__Protobuf__FileDescriptorProto *fd; /* borrowed from the request */
} cg_proto;

/* A message type, top-level or nested. */
typedef struct cg_msg {
	const char *full_name; /* "examples.incrementor.Outer.Inner" */
	const char *name;      /* "Inner" */
	const cg_proto *proto; /* the file defining it */
} cg_msg;

/* An action: one unary rpc of the actor's service. */
typedef struct cg_action {
	const char *name; /* the rpc's name, also the action's name on the wire */
	const cg_msg *input;
	const cg_msg *output;
} cg_action;

/* Values of spawn.actors.Kind that the gateway serves. */
typedef enum cg_kind { CG_KIND_NAMED = 1, CG_KIND_UNNAMED = 2, CG_KIND_POOLED = 3 } cg_kind;

/* An actor: a service with the spawn.actors.actor option. */
typedef struct cg_actor {
	const char *name;      /* the service's name, which is the actor's name */
	const char *full_name; /* "examples.incrementor.Incrementor" */
	cg_kind kind;          /* UNKNOW_KIND (0) in the contract becomes NAMED */
	bool stateful;
	const cg_msg *state;           /* the state_type; NULL for stateless actors */
	int64_t deactivate_timeout_ms; /* 0 = the gateway's default */
	int64_t snapshot_interval_ms;  /* 0 = the gateway's default */
	cg_action *actions;            /* n_actions >= 1, sorted by name */
	size_t n_actions;
} cg_actor;

/* A file to generate. */
typedef struct cg_file {
	const cg_proto *proto;
	cg_actor *actors; /* sorted by name; may be empty */
	size_t n_actors;
} cg_file;

typedef struct cg_model {
	cg_proto *protos; /* every file of the request */
	size_t n_protos;
	cg_msg *msgs; /* every message, sorted by full name */
	size_t n_msgs;
	cg_file *files; /* the files to generate */
	size_t n_files;
} cg_model;

/* cg_model_build fills *m from req (borrowed; it must outlive m), in
 * arena a. Problems with the contracts are appended to errs, one line
 * each, naming the file and the service:
 *   "x.proto: service pkg.Svc: state_type \"Foo\" names no message ..."
 * Returns 0 when there were none, -1 otherwise (m is then incomplete). */
int cg_model_build(cg_model *m, cg_arena *a,
                   const Google__Protobuf__Compiler__CodeGeneratorRequest *req, cg_errors *errs);

/* cg_model_find returns the message of that full name (an optional
 * leading dot is ignored), NULL when none. */
const cg_msg *cg_model_find(const cg_model *m, const char *full_name);

/* cg_option_bytes collects the value of the length-delimited option
 * number field from the unknown fields of an options message (protobuf-c
 * keeps custom options there): each entry's length prefix is stripped and
 * the entries are concatenated, which is how protobuf merges an option
 * written as several `option (x).f = ...;` lines. Returns 1 and sets
 * *data and *len (arena memory) when present, 0 when absent, -1 when an entry
 * is malformed. opts may be NULL. */
int cg_option_bytes(const ProtobufCMessage *opts, uint32_t field, cg_arena *a, const uint8_t **data,
                    size_t *len);

#endif
