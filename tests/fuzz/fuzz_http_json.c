/* fuzz_http_json.c - libFuzzer target: what a client controls on the
 * HTTP/JSON routes (gateway/http/json_api.c) and what a contract author
 * controls in their google.api.http rules:
 *
 *   byte 0 even: the rest is a path template (a contract's rule): parsed
 *                (gateway/http/template.c); a template that parses is then
 *                matched against the same text split as a request path,
 *                and the variables' spans must lie within the path;
 *   byte 0 odd:  a request: byte 1 picks the input type, byte 2 the rule's
 *                body ("*", none, or a field), then up to 8 parameters
 *                "name\0value\0" (path variables and query arguments) up to
 *                a "\0\0", then the JSON body, all into
 *                spawn_pbjson_from_http over a pool of the gateway's
 *                built-in descriptors; what it builds is printed back as
 *                JSON;
 *   byte 0 % 4 == 3: the rest is a raw request target (the listener's
 *                check at the edge, gateway/http/uricheck.c): a refusal is
 *                a 400 or 414 with a reason; an accepted target starts with
 *                '/', is within the bound and holds no raw control byte.
 * Every refusal must say why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "template.h"
#include "uricheck.h"

extern const unsigned char gw_contracts_builtin[];
extern const size_t gw_contracts_builtin_len;

static spawn_pbjson *pool;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	char why[512];
	pool = spawn_pbjson_create();
	if (!pool || spawn_pbjson_add(pool, gw_contracts_builtin, gw_contracts_builtin_len, why,
	                              sizeof why) != SPAWN_PBJSON_OK)
		abort();
	return 0;
}

static void fuzz_template(const uint8_t *data, size_t size)
{
	char *t = malloc(size + 1), *path = malloc(size + 2);
	if (!t || !path)
		abort();
	memcpy(t, data, size);
	t[size] = 0;
	gw_tmpl r;
	memset(&r, 0, sizeof r);
	char why[300] = "";
	if (gw_tmpl_parse(t, &r, why, sizeof why)) {
		char *segs[GW_TMPL_SEGS];
		size_t pos[GW_TMPL_SEGS + 1];
		path[0] = '/';
		memcpy(path + 1, t, strlen(t) + 1);
		int n = gw_tmpl_split(path, segs);
		if (n > 0 && gw_tmpl_match(&r, segs, n, pos))
			for (size_t v = 0; v < r.nvars; v++)
				if (r.vars[v].from > r.vars[v].to ||
				    pos[r.vars[v].to] > (size_t)n ||
				    pos[r.vars[v].from] > pos[r.vars[v].to])
					abort();
	} else if (!why[0]) {
		abort();
	}
	gw_tmpl_fini(&r);
	free(t);
	free(path);
}

static void fuzz_request(const uint8_t *data, size_t size)
{
	static const char *const types[] = {
	    "google.protobuf.Type",      "google.protobuf.Value",
	    "google.protobuf.Duration",  "google.protobuf.Any",
	    "google.protobuf.FieldMask", "grpc.health.v1.HealthCheckRequest",
	    "google.protobuf.Api",       "google.protobuf.Int64Value",
	};
	static const char *const bodies[] = {"*", "", "name", "fields", "value", "options"};
	if (size < 2)
		return;
	const char *type = types[data[0] % (sizeof types / sizeof types[0])];
	const char *body = bodies[data[1] % (sizeof bodies / sizeof bodies[0])];
	data += 2, size -= 2;
	char *copy = malloc(size + 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	copy[size] = 0;
	const char *names[8], *values[8];
	size_t n = 0, off = 0;
	while (n < 8 && off < size && copy[off]) {
		const char *k = copy + off;
		off += strlen(k) + 1;
		if (off >= size)
			break;
		names[n] = k;
		values[n++] = copy + off;
		off += strlen(copy + off) + 1;
	}
	if (off < size && !copy[off])
		off++;
	const char *json = off < size ? copy + off : "";
	size_t jl = off < size ? size - off : 0;
	uint8_t *bin = NULL;
	size_t blen = 0;
	char why[600] = "";
	int rc = spawn_pbjson_from_http(pool, type, body, json, jl, names, values, n, &bin, &blen,
	                                why, sizeof why);
	if (rc == SPAWN_PBJSON_OK) {
		char *out = NULL;
		size_t olen = 0;
		if (spawn_pbjson_to_json(pool, type, bin, blen, 0, &out, &olen, why, sizeof why) ==
		    SPAWN_PBJSON_OK)
			free(out);
		free(bin);
	} else if (rc != SPAWN_PBJSON_ENOMEM && !why[0]) {
		abort();
	}
	free(copy);
}

static void fuzz_uri(const uint8_t *data, size_t size)
{
	char *t = malloc(size + 1);
	if (!t)
		abort();
	memcpy(t, data, size);
	t[size] = 0;
	const gw_uri_refusal *r = gw_http_check_uri(t);
	if (r) {
		if (!gw_http_is_uri_refusal(r) || (r->status != 400 && r->status != 414) ||
		    !r->why || !r->why[0])
			abort();
	} else {
		size_t n = strlen(t);
		if (t[0] != '/' || n > GW_HTTP_MAX_URI)
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
				abort();
	}
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] % 4 == 3)
		fuzz_uri(data + 1, size - 1);
	else if (data[0] % 2 == 0)
		fuzz_template(data + 1, size - 1);
	else
		fuzz_request(data + 1, size - 1);
	return 0;
}
