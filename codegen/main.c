/* protoc-gen-spawn - the protoc plugin of the Spawn gateway: typed
 * clients and actor skeletons from .proto contracts.
 *
 *   protoc -I. -I$SPAWN_PROTO_DIR --plugin=protoc-gen-spawn=PATH \
 *          --c_out=OUT --spawn_out=lang=c:OUT my/actors.proto
 *
 * protoc writes a CodeGeneratorRequest on stdin and reads a
 * CodeGeneratorResponse from stdout. The run: parameters -> model
 * (model.h: actors and actions from the contracts, with their checks) ->
 * one emitter per requested language (emit.h: a view of the model
 * rendered through sdk-templates/<lang>/) -> response. Contract problems
 * go back as the response's error, which protoc prints as
 * "--spawn_out: FILE: service NAME: ..." and fails; problems of the plugin
 * itself (unreadable request) exit 1.
 *
 * docs/sdk/codegen.md is the user's guide.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "emit.h"
#include "model.h"

static void usage(FILE *to)
{
	fprintf(to,
	        "protoc-gen-spawn: a protoc plugin; run it through protoc:\n"
	        "  protoc -I. -I<spawn proto dir> --plugin=protoc-gen-spawn=<this file> \\\n"
	        "         --c_out=OUT --spawn_out=lang=c:OUT your/actors.proto\n"
	        "parameters (comma-separated): lang=c[+LANG...]  templates=DIR  c_prefix=PREFIX\n"
	        "see docs/sdk/codegen.md\n");
}

static unsigned char *read_all(FILE *f, size_t *len)
{
	cg_buf b = CG_BUF_INIT;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		cg_buf_add(&b, chunk, n);
	if (ferror(f)) {
		cg_buf_fini(&b);
		return NULL;
	}
	*len = b.len;
	if (!b.data)
		cg_buf_add(&b, "", 0);
	return (unsigned char *)b.data; /* caller frees */
}

/* generate fills resp from req; strings live in a. */
static void generate(const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
                     Google__Protobuf__Compiler__CodeGeneratorResponse *resp, cg_arena *a)
{
	cg_errors errs = {CG_BUF_INIT, 0};
	cg_params params;
	cg_model model;
	cg_outputs out = {0};
	if (cg_params_parse(&params, a, req->parameter, &errs) == 0 &&
	    cg_model_build(&model, a, req, &errs) == 0) {
		for (size_t i = 0; i < params.n_langs; i++) {
			const char *dir = cg_templates_dir(a, &params, params.langs[i], &errs);
			if (dir)
				cg_emit(&model, params.langs[i], &params, dir, a, &out, &errs);
		}
	}
	if (errs.count) {
		resp->error = cg_buf_take(&errs.text, a);
	} else {
		resp->n_file = out.n;
		resp->file = cg_alloc_array(a, out.n, sizeof *resp->file);
		for (size_t i = 0; i < out.n; i++) {
			Google__Protobuf__Compiler__CodeGeneratorResponse__File *f =
			    cg_alloc(a, sizeof *f);
			google__protobuf__compiler__code_generator_response__file__init(f);
			f->name = (char *)out.items[i].name;
			f->content = (char *)out.items[i].content;
			resp->file[i] = f;
		}
	}
	cg_buf_fini(&errs.text);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		bool help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
		if (strcmp(argv[1], "--version") == 0) {
			printf("protoc-gen-spawn %s\n", SPAWN_CODEGEN_VERSION);
			return 0;
		}
		usage(help ? stdout : stderr);
		return help ? 0 : 2;
	}
	size_t len;
	unsigned char *in = read_all(stdin, &len);
	if (!in)
		cg_die("cannot read the request from stdin");
	Google__Protobuf__Compiler__CodeGeneratorRequest *req =
	    google__protobuf__compiler__code_generator_request__unpack(NULL, len, in);
	free(in);
	if (!req)
		cg_die("stdin is not a CodeGeneratorRequest (run me through protoc)");

	cg_arena *a = cg_arena_create();
	Google__Protobuf__Compiler__CodeGeneratorResponse resp =
	    GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
	/* Reading descriptors only, the plugin is indifferent to proto3
	 * optional (protoc-c is not, and reports it itself). */
	resp.has_supported_features = 1;
	resp.supported_features =
	    GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__FEATURE__FEATURE_PROTO3_OPTIONAL;
	generate(req, &resp, a);

	size_t n = google__protobuf__compiler__code_generator_response__get_packed_size(&resp);
	uint8_t *buf = cg_alloc(a, n);
	google__protobuf__compiler__code_generator_response__pack(&resp, buf);
	int rc = fwrite(buf, 1, n, stdout) == n && fflush(stdout) == 0 ? 0 : 1;
	if (rc)
		fprintf(stderr, "protoc-gen-spawn: cannot write the response\n");

	google__protobuf__compiler__code_generator_request__free_unpacked(req, NULL);
	cg_arena_destroy(a);
	return rc;
}
