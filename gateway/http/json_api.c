/* json_api.c - HTTP/JSON transcoding (see json_api.h).
 *
 * Each handler runs on the HTTP listener's thread: it checks the request
 * at the edge (STYLE 12: the path's bytes, names, the count and size of
 * parameters, the body's type), converts the JSON with libprotobuf's
 * mapping (gateway/pbjson) over the pool snapshot it holds a reference
 * to, and hands the call to the runtime; the runtime's completion writes
 * the JSON reply on whatever thread it runs. Nothing here blocks. */
#include "json_api.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "edge.h"
#include "google/api/http.pb-c.h"
#include "log.h"
#include "pbjson.h"
#include "template.h"
#include "trace.h"

#define JSON_TYPE "application/json"

/* ---- the pool snapshot: a spawn_pbjson pool and its routes ---------------------------- */

typedef struct jrule {
	char method[16]; /* GET, POST, PUT, DELETE, PATCH */
	char *mpath;     /* owned: the contract method, "/pkg.Svc/Method" */
	gw_tmpl t;       /* the path template */
	char *body;      /* owned: "" (no body), "*" or a field */
} jrule;

typedef struct jpool {
	atomic_int refs;
	spawn_pbjson *pb; /* owned */
	jrule *rules;     /* owned */
	size_t nrules, cap;
} jpool;

struct gw_jsonapi {
	gw_jsonapi_opts o;
	gw_http *http;           /* borrowed */
	gw_server *srv;          /* borrowed */
	gw_runtime *rt;          /* borrowed */
	gw_registry *reg;        /* borrowed */
	gw_contracts *contracts; /* borrowed */
	pthread_mutex_t mu;
	jpool *cur; /* a reference, under mu */
};

static void rule_fini(jrule *r)
{
	gw_tmpl_fini(&r->t);
	free(r->mpath);
	free(r->body);
}

static void pool_rele(jpool *p)
{
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	for (size_t i = 0; i < p->nrules; i++)
		rule_fini(&p->rules[i]);
	free(p->rules);
	spawn_pbjson_destroy(p->pb);
	free(p);
}

static jpool *pool_get(gw_jsonapi *a)
{
	pthread_mutex_lock(&a->mu);
	jpool *p = a->cur;
	if (p)
		atomic_fetch_add(&p->refs, 1);
	pthread_mutex_unlock(&a->mu);
	return p;
}

/* add_rule parses one binding of method m (pattern and body) into
 * p->rules. Returns false with why. */
static bool add_rule(jpool *p, const gw_contract_rule *cr, const Google__Api__HttpRule *h,
                     char *why, size_t wn)
{
	const char *method = NULL, *tmpl = NULL;
	switch (h->pattern_case) {
	case GOOGLE__API__HTTP_RULE__PATTERN_GET:
		method = "GET", tmpl = h->get;
		break;
	case GOOGLE__API__HTTP_RULE__PATTERN_PUT:
		method = "PUT", tmpl = h->put;
		break;
	case GOOGLE__API__HTTP_RULE__PATTERN_POST:
		method = "POST", tmpl = h->post;
		break;
	case GOOGLE__API__HTTP_RULE__PATTERN_DELETE:
		method = "DELETE", tmpl = h->delete_;
		break;
	case GOOGLE__API__HTTP_RULE__PATTERN_PATCH:
		method = "PATCH", tmpl = h->patch;
		break;
	case GOOGLE__API__HTTP_RULE__PATTERN_CUSTOM:
		method = h->custom ? h->custom->kind : NULL;
		tmpl = h->custom ? h->custom->path : NULL;
		break;
	default:
		snprintf(why, wn, "%.300s: a google.api.http rule without a pattern", cr->path);
		return false;
	}
	if (!method || !tmpl || !method[0] || strlen(method) >= sizeof p->rules[0].method) {
		snprintf(why, wn, "%.300s: a google.api.http rule without a verb or path",
		         cr->path);
		return false;
	}
	static const char *const served[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
	bool known = false;
	for (size_t i = 0; i < sizeof served / sizeof served[0]; i++)
		known = known || !strcmp(method, served[i]);
	if (!known) {
		snprintf(why, wn,
		         "%.300s: custom verb '%.20s' is not served (GET, POST, PUT, DELETE, "
		         "PATCH are)",
		         cr->path, method);
		return false;
	}
	if (h->response_body && h->response_body[0]) {
		snprintf(why, wn,
		         "%.300s: response_body is not served (the whole output message is the "
		         "reply)",
		         cr->path);
		return false;
	}
	const char *body = h->body ? h->body : "";
	if (body[0] && strcmp(body, "*") && !gw_tmpl_field_path_ok(body, strlen(body))) {
		snprintf(why, wn, "%.300s: body '%.200s' is not '*' or a field", cr->path, body);
		return false;
	}
	if (p->nrules == GW_JSONAPI_MAX_RULES) {
		snprintf(why, wn, "more than %d google.api.http bindings", GW_JSONAPI_MAX_RULES);
		return false;
	}
	if (p->nrules == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		jrule *more = realloc(p->rules, cap * sizeof *more);
		if (!more) {
			snprintf(why, wn, "out of memory");
			return false;
		}
		p->rules = more;
		p->cap = cap;
	}
	jrule *r = &p->rules[p->nrules];
	memset(r, 0, sizeof *r);
	snprintf(r->method, sizeof r->method, "%s", method);
	char w[200] = "";
	bool ok = gw_tmpl_parse(tmpl, &r->t, w, sizeof w);
	if (ok && (!(r->mpath = strdup(cr->path)) || !(r->body = strdup(body)))) {
		ok = false;
		snprintf(w, sizeof w, "out of memory");
	}
	if (!ok) {
		snprintf(why, wn, "%.300s: path template '%.300s': %s", cr->path, tmpl, w);
		rule_fini(r);
		return false;
	}
	p->nrules++;
	return true;
}

/* mirror_prepare builds a pool snapshot of the contracts' candidate pool. */
static void *mirror_prepare(void *user, const uint8_t *set, size_t len,
                            const gw_contract_rule *rules, size_t nrules, char *why, size_t wn)
{
	(void)user;
	jpool *p = calloc(1, sizeof *p);
	if (!p || !(p->pb = spawn_pbjson_create())) {
		free(p);
		snprintf(why, wn, "out of memory");
		return NULL;
	}
	atomic_init(&p->refs, 1);
	if (spawn_pbjson_add(p->pb, set, len, why, wn) != SPAWN_PBJSON_OK) {
		pool_rele(p);
		return NULL;
	}
	for (size_t i = 0; i < nrules; i++) {
		Google__Api__HttpRule *h =
		    google__api__http_rule__unpack(NULL, rules[i].http_len, rules[i].http);
		bool ok = h != NULL;
		if (!h)
			snprintf(why, wn, "%.300s: the google.api.http option does not parse",
			         rules[i].path);
		else if (h->n_additional_bindings > 8)
			ok = false,
			snprintf(why, wn, "%.300s: more than 8 additional_bindings", rules[i].path);
		if (ok)
			ok = add_rule(p, &rules[i], h, why, wn);
		for (size_t k = 0; ok && h && k < h->n_additional_bindings; k++) {
			if (h->additional_bindings[k]->n_additional_bindings) {
				snprintf(why, wn, "%.300s: an additional binding has its own",
				         rules[i].path);
				ok = false;
			} else {
				ok = add_rule(p, &rules[i], h->additional_bindings[k], why, wn);
			}
		}
		if (h)
			google__api__http_rule__free_unpacked(h, NULL);
		if (!ok) {
			pool_rele(p);
			return NULL;
		}
	}
	return p;
}

static void mirror_commit(void *user, void *cand)
{
	gw_jsonapi *a = user;
	pthread_mutex_lock(&a->mu);
	jpool *old = a->cur;
	a->cur = cand;
	pthread_mutex_unlock(&a->mu);
	pool_rele(old);
}

static void mirror_abort(void *user, void *cand)
{
	(void)user;
	pool_rele(cand);
}

/* ---- answers ------------------------------------------------------------------------ */

int gw_jsonapi_http_status(int code)
{
	static const int table[] = {
	    [0] = 200,  /* OK */
	    [1] = 499,  /* CANCELLED */
	    [2] = 500,  /* UNKNOWN */
	    [3] = 400,  /* INVALID_ARGUMENT */
	    [4] = 504,  /* DEADLINE_EXCEEDED */
	    [5] = 404,  /* NOT_FOUND */
	    [6] = 409,  /* ALREADY_EXISTS */
	    [7] = 403,  /* PERMISSION_DENIED */
	    [8] = 429,  /* RESOURCE_EXHAUSTED */
	    [9] = 400,  /* FAILED_PRECONDITION */
	    [10] = 409, /* ABORTED */
	    [11] = 400, /* OUT_OF_RANGE */
	    [12] = 501, /* UNIMPLEMENTED */
	    [13] = 500, /* INTERNAL */
	    [14] = 503, /* UNAVAILABLE */
	    [15] = 500, /* DATA_LOSS */
	    [16] = 401, /* UNAUTHENTICATED */
	};
	return code >= 0 && code < (int)(sizeof table / sizeof table[0]) ? table[code] : 500;
}

/* reply_status answers {"code", "message"} with http (0 = from the table). */
static void reply_status(gw_http_req *req, int http, int code, const char *msg)
{
	char cut[1200];
	size_t n = strlen(msg), off = 0;
	if (n >= sizeof cut)
		n = sizeof cut - 1;
	memcpy(cut, msg, n);
	cut[n] = 0;
	/* Only valid UTF-8 goes into the JSON: cut at the first bad byte (a
	 * parser's message may quote the client's bytes). */
	while (gw_wc_utf8((const uint8_t *)cut, strlen(cut), true, &off))
		cut[off] = 0;
	char *json = NULL;
	size_t jl = 0;
	if (spawn_pbjson_status_json(code, cut, &json, &jl) != SPAWN_PBJSON_OK) {
		static const char oom[] = "{\"code\":8,\"message\":\"out of memory\"}";
		gw_http_reply(req, 500, JSON_TYPE, oom, sizeof oom - 1);
		return;
	}
	gw_http_reply(req, http ? http : gw_jsonapi_http_status(code), JSON_TYPE, json, jl);
	free(json);
}

/* One call in the runtime: kept in its invocation's arena. */
typedef struct jcall {
	gw_http_req *req;
	jpool *pool;                          /* a reference */
	char out[GW_CONTRACTS_NAME_BYTES];    /* the output type; "" = reply an Any */
	char action[GW_CONTRACTS_NAME_BYTES]; /* for messages */
} jcall;

/* call_done answers from the invocation's outcome. Any thread. */
static void call_done(gw_inv *inv)
{
	jcall *c = inv->user;
	gw_http_req *req = c->req;
	char why[1400];
	if (inv->err != GW_OK) {
		int code = inv->err == GW_EHOST ? inv->host_code : (int)gw_err_status(inv->err);
		reply_status(req, 0, code,
		             inv->msg[0] || inv->host_message ? inv->msg : gw_strerror(inv->err));
	} else if (!inv->reply) {
		gw_http_reply(req, 200, JSON_TYPE, "{}", 2);
	} else {
		const char *url = gw_blob_type(inv->reply);
		const char *slash = strrchr(url, '/');
		const char *type = slash ? slash + 1 : url;
		char *json = NULL;
		size_t jl = 0;
		int rc;
		if (c->out[0] && strcmp(type, c->out)) {
			snprintf(why, sizeof why,
			         "%.300s replied with a %.300s, the rpc returns %.300s", c->action,
			         type, c->out);
			reply_status(req, 0, 13, why);
		} else if (c->out[0]) {
			rc = spawn_pbjson_to_json(c->pool->pb, c->out, gw_blob_value(inv->reply),
			                          inv->reply->len, 0, &json, &jl, why, sizeof why);
			if (rc == SPAWN_PBJSON_OK)
				gw_http_reply(req, 200, JSON_TYPE, json, jl);
			else
				reply_status(req, 0, 13, why);
		} else {
			/* No contract: the reply as a google.protobuf.Any, "@type" and all. */
			Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
			any.type_url = (char *)url;
			any.value.data = (uint8_t *)gw_blob_value(inv->reply);
			any.value.len = inv->reply->len;
			size_t n = google__protobuf__any__get_packed_size(&any);
			uint8_t *bin = malloc(n ? n : 1);
			rc = bin ? SPAWN_PBJSON_OK : SPAWN_PBJSON_ENOMEM;
			if (bin) {
				google__protobuf__any__pack(&any, bin);
				rc = spawn_pbjson_to_json(c->pool->pb, "google.protobuf.Any", bin,
				                          n, 0, &json, &jl, why, sizeof why);
			}
			free(bin);
			if (rc == SPAWN_PBJSON_OK)
				gw_http_reply(req, 200, JSON_TYPE, json, jl);
			else if (rc == SPAWN_PBJSON_ENOMEM)
				reply_status(req, 0, 8, "out of memory");
			else
				reply_status(req, 0, 13, why);
		}
		free(json);
	}
	pool_rele(c->pool);
	gw_inv_destroy(inv);
}

/* ---- the edge ----------------------------------------------------------------------- */

/* body_is_json: the body may be read as JSON: no Content-Type,
 * application/json (parameters allowed), or what curl -d and browsers send
 * unasked (text/plain, application/x-www-form-urlencoded). Protobuf and
 * other types are refused (415): they are not JSON. */
static bool body_is_json(gw_http_req *req)
{
	const char *ct = gw_http_req_header(req, "Content-Type");
	if (!ct)
		return true;
	size_t n = strcspn(ct, "; \t");
	static const char *const ok[] = {JSON_TYPE, "text/plain",
	                                 "application/x-www-form-urlencoded"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (n == strlen(ok[i]) && !strncasecmp(ct, ok[i], n))
			return true;
	return false;
}

/* name_ok checks a name taken from the path: UTF-8, no control character,
 * within the limit. */
static bool name_ok(const gw_jsonapi *a, const char *s, size_t n)
{
	size_t off;
	return n && n <= a->o.limits.name_bytes && !gw_wc_utf8((const uint8_t *)s, n, false, &off);
}

/* The request's parameters: path variables, then query arguments. */
typedef struct params {
	const char *names[GW_JSONAPI_MAX_PARAMS];
	const char *values[GW_JSONAPI_MAX_PARAMS];
	size_t n;
	char buf[GW_JSONAPI_MAX_PATH + GW_TMPL_SEGS]; /* path variables' values */
	size_t used;
	char why[300]; /* a refused query argument */
} params;

static bool on_query(void *user, const char *key, const char *value)
{
	params *p = user;
	size_t off;
	if (p->n == GW_JSONAPI_MAX_PARAMS) {
		snprintf(p->why, sizeof p->why, "more than %d parameters", GW_JSONAPI_MAX_PARAMS);
		return false;
	}
	if (!gw_tmpl_field_path_ok(key, strlen(key))) {
		snprintf(p->why, sizeof p->why, "a query parameter is not a field path");
		return false;
	}
	if (strlen(value) > 4096 || gw_wc_utf8((const uint8_t *)value, strlen(value), true, &off)) {
		snprintf(p->why, sizeof p->why,
		         "query parameter '%.100s' is over 4096 bytes or not valid UTF-8 text",
		         key);
		return false;
	}
	p->names[p->n] = key;
	p->values[p->n++] = value;
	return true;
}

/* invoke_ready authorizes and starts the call built in inv. */
static void invoke_start(gw_jsonapi *a, gw_http_req *req, gw_inv *inv, jpool *pool,
                         const char *system, const char *name, const char *ref, const char *action,
                         const char *in_type, const char *out_type, const uint8_t *bin, size_t blen)
{
	char why[1200];
	int code = (int)gw_edge_authorize_bearer(a->srv, gw_http_req_header(req, "Authorization"),
	                                         system, name, ref, action, why, sizeof why,
	                                         &inv->arena, &inv->principal);
	jcall *c = code ? NULL : spawn_arena_alloc(&inv->arena, sizeof *c);
	/* W3C trace context in the HTTP headers: an invalid one is replaced by
	 * the runtime, never refused (docs/observability.md). */
	if (!code &&
	    (!c || !gw_edge_request(inv, system, name, ref, action, in_type, bin, blen) ||
	     !gw_trace_md_merge(inv->req, &inv->arena, gw_http_req_header(req, GW_TRACEPARENT_KEY),
	                        gw_http_req_header(req, GW_TRACESTATE_KEY),
	                        a->o.limits.metadata_entries))) {
		code = 8;
		snprintf(why, sizeof why, "out of memory");
	}
	if (code) {
		gw_inv_destroy(inv);
		pool_rele(pool);
		reply_status(req, 0, code, why);
		return;
	}
	c->req = req;
	c->pool = pool;
	snprintf(c->out, sizeof c->out, "%s", out_type ? out_type : "");
	snprintf(c->action, sizeof c->action, "%s", action);
	inv->user = c;
	inv->done = call_done;
	gw_runtime_invoke(a->rt, inv);
}

/* handle_rule serves an annotated route: r matched with the path segments
 * at pos. Takes pool's reference. */
static void handle_rule(gw_jsonapi *a, gw_http_req *req, jpool *pool, const jrule *r, char **segs,
                        const size_t *pos)
{
	char why[1200];
	gw_contract_method m;
	if (gw_contracts_method(a->contracts, r->mpath, strlen(r->mpath), &m) != GW_OK) {
		pool_rele(pool);
		reply_status(req, 0, 5, "the contract of this route is no longer registered");
		return;
	}
	if (m.streaming) {
		pool_rele(pool);
		snprintf(why, sizeof why, "%s.%s streams: actions are unary", m.actor, m.action);
		reply_status(req, 0, 12, why);
		return;
	}
	if (r->body[0] && !body_is_json(req)) {
		pool_rele(pool);
		reply_status(req, 415, 3, "the body must be JSON (Content-Type application/json)");
		return;
	}
	params *p = calloc(1, sizeof *p);
	if (!p) {
		pool_rele(pool);
		reply_status(req, 0, 8, "out of memory");
		return;
	}
	for (size_t v = 0; v < r->t.nvars; v++) {
		char *out = p->buf + p->used;
		for (size_t j = pos[r->t.vars[v].from]; j < pos[r->t.vars[v].to]; j++) {
			size_t l = strlen(segs[j]);
			if (j > pos[r->t.vars[v].from])
				p->buf[p->used++] = '/';
			memcpy(p->buf + p->used, segs[j], l);
			p->used += l;
		}
		p->buf[p->used++] = 0;
		p->names[p->n] = r->t.vars[v].field;
		p->values[p->n++] = out;
	}
	if (!r->body[0] || strcmp(r->body, "*"))
		gw_http_req_queries(req, on_query, p);
	if (p->why[0]) {
		pool_rele(pool);
		reply_status(req, 0, 3, p->why);
		free(p);
		return;
	}
	size_t blen = 0;
	const uint8_t *body = gw_http_req_body(req, &blen);
	uint8_t *bin = NULL;
	size_t binlen = 0;
	int rc = spawn_pbjson_from_http(pool->pb, m.input, r->body, (const char *)body, blen,
	                                p->names, p->values, p->n, &bin, &binlen, why, sizeof why);
	free(p);
	if (rc != SPAWN_PBJSON_OK) {
		pool_rele(pool);
		reply_status(req, 0,
		             rc == SPAWN_PBJSON_ENOMEM    ? 8
		             : rc == SPAWN_PBJSON_ENOTYPE ? 13
		                                          : 3,
		             rc == SPAWN_PBJSON_ENOMEM ? "out of memory" : why);
		return;
	}
	char name[GW_CONTRACTS_NAME_BYTES], system[GW_WC_NAME_BYTES + 1];
	bool not_dispatched = false;
	int code = (int)gw_edge_contract_target(a->srv, &m, bin, binlen, name, system,
	                                        sizeof system, why, sizeof why, &not_dispatched);
	gw_inv *inv = code ? NULL : gw_inv_create(0);
	if (!code && !inv) {
		code = 8;
		snprintf(why, sizeof why, "out of memory");
	}
	if (code) {
		free(bin);
		pool_rele(pool);
		reply_status(req, 0, code, why);
		return;
	}
	invoke_start(a, req, inv, pool, system, name, m.kind == GW_KIND_UNNAMED ? m.actor : NULL,
	             m.action, m.input, m.output, bin, binlen);
	free(bin);
}

/* handle_generic serves POST /v1/{system}/{actor}/{action}. Takes pool's
 * reference. */
static void handle_generic(gw_jsonapi *a, gw_http_req *req, jpool *pool, const char *system,
                           const char *actor, const char *action)
{
	char why[1200];
	const char *parent = gw_http_req_query(req, "parent");
	if (!name_ok(a, system, strlen(system)) || !name_ok(a, actor, strlen(actor)) ||
	    !name_ok(a, action, strlen(action)) ||
	    (parent && !name_ok(a, parent, strlen(parent)))) {
		pool_rele(pool);
		snprintf(why, sizeof why,
		         "system, actor, action and ?parent= must be 1 to %u bytes of UTF-8 "
		         "without control characters",
		         a->o.limits.name_bytes);
		reply_status(req, 0, 3, why);
		return;
	}
	if (!body_is_json(req)) {
		pool_rele(pool);
		reply_status(req, 415, 3, "the body must be JSON (Content-Type application/json)");
		return;
	}
	/* The actor's type: the parent named, the instance's template, or the
	 * actor itself. */
	char type[GW_CONTRACTS_NAME_BYTES];
	gw_actor_type *t = NULL;
	if (parent)
		snprintf(type, sizeof type, "%s", parent);
	else if (gw_registry_lookup_instance(a->reg, system, actor, &t, NULL) == GW_OK) {
		snprintf(type, sizeof type, "%s", t->name);
		gw_registry_type_rele(t);
	} else
		snprintf(type, sizeof type, "%s", actor);
	gw_contract_method m;
	gw_err e = gw_contracts_action(a->contracts, type, action, &m, why, sizeof why);
	if (e == GW_ECONFLICT) {
		pool_rele(pool);
		reply_status(req, 0, 9, why);
		return;
	}
	size_t blen = 0;
	const uint8_t *body = gw_http_req_body(req, &blen);
	uint8_t *bin = NULL;
	size_t binlen = 0;
	int rc;
	Google__Protobuf__Any *any = NULL;
	if (e == GW_OK) {
		rc = spawn_pbjson_from_json(pool->pb, m.input, blen ? (const char *)body : "{}",
		                            blen ? blen : 2, &bin, &binlen, why, sizeof why);
	} else {
		/* No contract describes it: the body names its type ("@type"). */
		rc = spawn_pbjson_from_json(pool->pb, "google.protobuf.Any",
		                            blen ? (const char *)body : "{}", blen ? blen : 2, &bin,
		                            &binlen, why, sizeof why);
		if (rc == SPAWN_PBJSON_OK) {
			any = google__protobuf__any__unpack(NULL, binlen, bin);
			if (!any || !any->type_url || !any->type_url[0])
				rc = SPAWN_PBJSON_EINVAL;
		}
		if (rc == SPAWN_PBJSON_EINVAL) {
			gw_actor_type *k = NULL;
			bool known =
			    parent ||
			    gw_registry_lookup(a->reg, system, actor, &k, NULL) == GW_OK ||
			    gw_registry_lookup_instance(a->reg, system, actor, &k, NULL) == GW_OK;
			if (k)
				gw_registry_type_rele(k);
			if (!known) {
				free(bin);
				if (any)
					google__protobuf__any__free_unpacked(any, NULL);
				pool_rele(pool);
				snprintf(why, sizeof why, "actor '%s' not found in system '%s'",
				         actor, system);
				reply_status(req, 0, 5, why);
				return;
			}
			char parsed[600];
			snprintf(parsed, sizeof parsed, "%.500s", why);
			snprintf(why, sizeof why,
			         "no registered contract describes %.200s.%.200s: send a JSON "
			         "google.protobuf.Any, its type in \"@type\" (%.500s)",
			         type, action, any ? "no @type" : parsed);
		}
	}
	if (rc != SPAWN_PBJSON_OK) {
		free(bin);
		if (any)
			google__protobuf__any__free_unpacked(any, NULL);
		pool_rele(pool);
		reply_status(req, 0, rc == SPAWN_PBJSON_ENOMEM ? 8 : 3,
		             rc == SPAWN_PBJSON_ENOMEM ? "out of memory" : why);
		return;
	}
	gw_inv *inv = gw_inv_create(0);
	if (!inv) {
		free(bin);
		if (any)
			google__protobuf__any__free_unpacked(any, NULL);
		pool_rele(pool);
		reply_status(req, 0, 8, "out of memory");
		return;
	}
	if (any)
		invoke_start(a, req, inv, pool, system, actor, parent, action, any->type_url, NULL,
		             any->value.data, any->value.len);
	else
		invoke_start(a, req, inv, pool, system, actor, parent, action, m.input, m.output,
		             bin, binlen);
	if (any)
		google__protobuf__any__free_unpacked(any, NULL);
	free(bin);
}

static void on_request(void *user, gw_http_req *req)
{
	gw_jsonapi *a = user;
	const char *why = NULL;
	int refusal = gw_http_req_refusal(req, &why);
	if (refusal) {
		reply_status(req, refusal, refusal == 413 ? 8 : 14, why);
		return;
	}
	const char *path = gw_http_req_path(req);
	size_t plen = strlen(path), off;
	if (a->o.policy && (!strncmp(path, "/api/v1/", 8) || !strcmp(path, "/api/v1"))) {
		reply_status(req, 403, 7,
		             "Spawn's HTTP API carries no credentials: with --access it is not "
		             "served (use the JSON routes with a bearer token, or gRPC)");
		return;
	}
	if (plen > GW_JSONAPI_MAX_PATH || gw_wc_utf8((const uint8_t *)path, plen, false, &off)) {
		reply_status(req, 400, 3, "the path is over 2048 bytes or not valid UTF-8 text");
		return;
	}
	/* With a policy, no credential learns nothing: 401 before any look-up. */
	char awhy[200];
	if (a->o.policy &&
	    gw_edge_authenticate_bearer(a->srv, gw_http_req_header(req, "Authorization"), awhy,
	                                sizeof awhy) != 0) {
		reply_status(req, 401, 16, awhy);
		return;
	}
	char *copy = strdup(path);
	char *segs[GW_TMPL_SEGS];
	size_t pos[GW_TMPL_SEGS + 1];
	jpool *pool = copy ? pool_get(a) : NULL;
	if (!pool) {
		free(copy);
		reply_status(req, 503, 14, "the JSON routes are not ready");
		return;
	}
	const char *method = gw_http_req_method(req);
	bool path_known = false;
	/* One split of the path serves every rule: a rule with a ":verb"
	 * suffix cuts it off the last segment for its own match. */
	int n = gw_tmpl_split(copy, segs);
	char *last = n > 0 ? segs[n - 1] : NULL;
	size_t last_len = last ? strlen(last) : 0;
	for (size_t i = 0; n > 0 && i < pool->nrules; i++) {
		const jrule *r = &pool->rules[i];
		char *colon = NULL;
		if (r->t.verb) {
			size_t vl = strlen(r->t.verb);
			if (last_len < vl + 2 || last[last_len - vl - 1] != ':' ||
			    strcmp(last + last_len - vl, r->t.verb))
				continue;
			colon = last + last_len - vl - 1;
			*colon = 0;
		}
		bool hit = gw_tmpl_match(&r->t, segs, n, pos);
		if (hit && strcmp(method, r->method)) {
			path_known = true;
			hit = false;
		}
		if (hit) {
			handle_rule(a, req, pool, r, segs, pos);
			free(copy);
			return;
		}
		if (colon)
			*colon = ':';
	}
	if (n == 4 && !strcmp(segs[0], "v1") && !strcmp(method, "POST")) {
		handle_generic(a, req, pool, segs[1], segs[2], segs[3]);
		free(copy);
		return;
	}
	free(copy);
	pool_rele(pool);
	if (path_known)
		reply_status(req, 405, 12, "the route does not take this method");
	else
		reply_status(req, 404, 5,
		             "no route: POST /v1/{system}/{actor}/{action}, or a "
		             "google.api.http route of a registered contract");
}

gw_err gw_jsonapi_create(gw_jsonapi **out, const gw_jsonapi_opts *o, gw_http *http, gw_server *srv,
                         gw_runtime *rt, gw_registry *reg, gw_contracts *contracts, char *why,
                         size_t whylen)
{
	gw_jsonapi *a = calloc(1, sizeof *a);
	if (!a)
		return GW_ENOMEM;
	if (o)
		a->o = *o;
	gw_wc_limits_resolve(&a->o.limits);
	a->http = http;
	a->srv = srv;
	a->rt = rt;
	a->reg = reg;
	a->contracts = contracts;
	pthread_mutex_init(&a->mu, NULL);
	gw_contracts_mirror m = {.version = GW_CONTRACTS_MIRROR_V1,
	                         .prepare = mirror_prepare,
	                         .commit = mirror_commit,
	                         .abort = mirror_abort,
	                         .user = a};
	gw_err err = gw_contracts_set_mirror(contracts, &m, why, whylen);
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
	for (size_t i = 0; !err && i < sizeof methods / sizeof methods[0]; i++)
		err = gw_http_route(http, methods[i], "/", on_request, a);
	if (err) {
		gw_jsonapi_destroy(a);
		return err;
	}
	*out = a;
	return GW_OK;
}

void gw_jsonapi_destroy(gw_jsonapi *a)
{
	if (!a)
		return;
	if (a->contracts)
		gw_contracts_set_mirror(a->contracts, NULL, NULL, 0);
	pool_rele(a->cur);
	pthread_mutex_destroy(&a->mu);
	free(a);
}
