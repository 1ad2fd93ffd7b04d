/* ctl_refl.c - descriptors from the gateway's grpc.reflection.v1 service,
 * for spawnctl's JSON (docs/spawnctl.md). Each question is its own
 * ServerReflectionInfo stream carrying one request (the gateway answers
 * it, then ends the stream OK at the half-close). The files that come back
 * (the file defining the symbol and every file it imports) go into two
 * pools: gateway/pbjson's (libprotobuf's JSON mapping) for conversions and
 * gateway/contracts' for the lookup of an actor's action (its input and
 * output types), exactly as the gateway itself reads contracts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#define REFL_METHOD "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_rq;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_rp;

void ctl_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* ask sends one reflection request; *out is the answer (caller frees). An
 * error_response becomes its code. */
static int ask(ctl *x, const refl_rq *rq, refl_rp **out, ctl_err *e)
{
	ProtobufCMessage *m = NULL;
	int rc = ctl_unary(x, REFL_METHOD, &rq->base,
	                   &grpc__reflection__v1__server_reflection_response__descriptor, &m, e);
	if (rc)
		return rc;
	refl_rp *r = (refl_rp *)m;
	if (r->message_response_case ==
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE) {
		int code = r->error_response->error_code;
		rc = ctl_fail(e, code > 0 && code <= 16 ? code : GRPC_STATUS_UNKNOWN,
		              "reflection: %s", r->error_response->error_message);
		protobuf_c_message_free_unpacked(m, NULL);
		return rc;
	}
	*out = r;
	return 0;
}

int ctl_refl_services(ctl *x, char ***names, size_t *n, ctl_err *e)
{
	refl_rq rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	rq.message_request_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
	rq.list_services = "";
	refl_rp *r = NULL;
	int rc = ask(x, &rq, &r, e);
	if (rc)
		return rc;
	if (r->message_response_case !=
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return ctl_fail(e, GRPC_STATUS_INTERNAL, "reflection answered no list of services");
	}
	size_t k = r->list_services_response->n_service;
	char **v = calloc(k ? k : 1, sizeof *v);
	for (size_t i = 0; v && i < k; i++)
		if (!(v[i] = strdup(r->list_services_response->service[i]->name))) {
			ctl_strv_free(v, i);
			v = NULL;
		}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	if (!v)
		return ctl_fail(e, CTL_EXIT_LOCAL, "out of memory");
	*names = v;
	*n = k;
	return 0;
}

/* put_varint appends v to p; returns the bytes written. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t i = 0;
	do {
		p[i++] = (uint8_t)(v & 0x7f) | (v > 0x7f ? 0x80 : 0);
		v >>= 7;
	} while (v);
	return i;
}

static bool pools_ready(ctl *x, ctl_err *e)
{
	if (!x->pool && !(x->pool = spawn_pbjson_create())) {
		ctl_fail(e, CTL_EXIT_LOCAL, "out of memory");
		return false;
	}
	if (!x->contracts && gw_contracts_create(&x->contracts, NULL) != GW_OK) {
		ctl_fail(e, CTL_EXIT_LOCAL, "cannot build the descriptor pool");
		return false;
	}
	return true;
}

int ctl_refl_symbol(ctl *x, const char *symbol, ctl_err *e)
{
	for (size_t i = 0; i < x->n_fetched; i++)
		if (strcmp(x->fetched[i], symbol) == 0)
			return 0;
	if (!pools_ready(x, e))
		return e->code;
	refl_rq rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	rq.message_request_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
	rq.file_containing_symbol = (char *)symbol;
	refl_rp *r = NULL;
	int rc = ask(x, &rq, &r, e);
	if (rc)
		return rc;
	if (r->message_response_case !=
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return ctl_fail(e, GRPC_STATUS_INTERNAL, "reflection answered no file for %s",
		                symbol);
	}
	/* A FileDescriptorSet is its files as field 1, each tagged and
	 * length-prefixed: the files come serialized already. */
	const Grpc__Reflection__V1__FileDescriptorResponse *fr = r->file_descriptor_response;
	size_t len = 0;
	for (size_t i = 0; i < fr->n_file_descriptor_proto; i++)
		len += 11 + fr->file_descriptor_proto[i].len;
	uint8_t *set = malloc(len ? len : 1);
	if (!set) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return ctl_fail(e, CTL_EXIT_LOCAL, "out of memory");
	}
	size_t o = 0;
	for (size_t i = 0; i < fr->n_file_descriptor_proto; i++) {
		set[o++] = 0x0a; /* field 1, length-delimited */
		o += put_varint(set + o, fr->file_descriptor_proto[i].len);
		memcpy(set + o, fr->file_descriptor_proto[i].data,
		       fr->file_descriptor_proto[i].len);
		o += fr->file_descriptor_proto[i].len;
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	char why[512];
	int prc = spawn_pbjson_add(x->pool, set, o, why, sizeof why);
	gw_err gerr = prc == SPAWN_PBJSON_OK
	                  ? gw_contracts_add(x->contracts, NULL, set, o, why, sizeof why)
	                  : GW_OK;
	free(set);
	if (prc != SPAWN_PBJSON_OK || gerr != GW_OK)
		return ctl_fail(e, GRPC_STATUS_INTERNAL, "the descriptors of %s do not load: %s",
		                symbol, why);
	char **nf = realloc(x->fetched, (x->n_fetched + 1) * sizeof *nf);
	if (!nf || !(nf[x->n_fetched] = strdup(symbol))) {
		if (nf)
			x->fetched = nf;
		return ctl_fail(e, CTL_EXIT_LOCAL, "out of memory");
	}
	x->fetched = nf;
	x->n_fetched++;
	return 0;
}

json_t *ctl_any_json(ctl *x, const char *type_url, const uint8_t *value, size_t len, ctl_err *e)
{
	const char *slash = strrchr(type_url, '/');
	const char *name = slash ? slash + 1 : type_url;
	if (!name[0]) {
		ctl_fail(e, GRPC_STATUS_INVALID_ARGUMENT, "an Any without a type");
		return NULL;
	}
	if (!pools_ready(x, e))
		return NULL;
	if (!spawn_pbjson_has(x->pool, name) && ctl_refl_symbol(x, name, e))
		return NULL;
	char *js = NULL, why[512];
	size_t jl = 0;
	if (spawn_pbjson_to_json(x->pool, name, value, len, SPAWN_PBJSON_DEFAULTS, &js, &jl, why,
	                         sizeof why) != SPAWN_PBJSON_OK) {
		ctl_fail(e, GRPC_STATUS_INTERNAL, "a %s that does not convert to JSON: %s", name,
		         why);
		return NULL;
	}
	json_error_t je;
	json_t *v = json_loadb(js, jl, JSON_DECODE_ANY, &je);
	free(js);
	if (!v)
		ctl_fail(e, GRPC_STATUS_INTERNAL, "libprotobuf's JSON does not parse: %s", je.text);
	return v;
}
