/* policy.c - the access policy file (libyaml's document API) and the
 * lookups on it. The format is in auth.h and docs/security.md. Parsing is
 * strict: every key is known, every value has the expected type, and a
 * mistake names FILE:LINE, so an operator's typo never widens or narrows
 * rights silently. */
#include "auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <yaml.h>

typedef struct grant {
	char *system; /* "*" = any */
	char **actors;
	size_t n_actors; /* 0 = every actor */
	char **actions;
	size_t n_actions; /* 0 = every action */
} grant;

struct gw_principal {
	char *name;
	char **uris, **dns;
	size_t n_uris, n_dns;
	uint8_t (*tokens)[32];
	size_t n_tokens;
	char **host; /* "*" = any */
	size_t n_host;
	grant *invoke;
	size_t n_invoke;
	bool admin;
	bool peer; /* a member of the cluster: may call the Peer service */
};

/* One stored token hash and its principal; the policy keeps them sorted
 * by hash for a binary search. */
typedef struct tok_ent {
	uint8_t h[32];
	const gw_principal *pr;
} tok_ent;

struct gw_policy {
	gw_principal *p;
	size_t n;
	tok_ent *toks; /* sorted by h */
	size_t n_toks;
};

/* ---- parsing ------------------------------------------------------------------ */

typedef struct pctx {
	yaml_document_t doc;
	const char *file;
	char *why;
	size_t whylen;
} pctx;

static gw_err fail(pctx *x, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n)
		snprintf(x->why, x->whylen, "%s:%lu: %s", x->file,
		         (unsigned long)n->start_mark.line + 1, msg);
	else
		snprintf(x->why, x->whylen, "%s: %s", x->file, msg);
	return GW_ECONFIG;
}

static const char *type_name(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE     ? "a scalar"
	       : n->type == YAML_SEQUENCE_NODE ? "a list"
	       : n->type == YAML_MAPPING_NODE  ? "a mapping"
	                                       : "empty";
}

/* scalar: a node's text (NUL-terminated by libyaml), or NULL with an error
 * when it is not a non-empty scalar. */
static const char *scalar(pctx *x, const yaml_node_t *n, const char *what, gw_err *err)
{
	if (n->type != YAML_SCALAR_NODE) {
		*err = fail(x, n, "%s must be a string, not %s", what, type_name(n));
		return NULL;
	}
	const char *s = (const char *)n->data.scalar.value;
	if (!n->data.scalar.length || strlen(s) != n->data.scalar.length) {
		*err = fail(x, n, "%s must be a non-empty string without NUL", what);
		return NULL;
	}
	return s;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d) {
		fprintf(stderr, "spawn-gateway: out of memory reading the access policy\n");
		abort(); /* fixed-size configuration input: STYLE 5 */
	}
	return d;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (!p) {
		fprintf(stderr, "spawn-gateway: out of memory reading the access policy\n");
		abort();
	}
	return p;
}

/* string_list reads a sequence of non-empty strings into *out (n). */
static gw_err string_list(pctx *x, yaml_node_t *n, const char *what, char ***out, size_t *count)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(x, n, "%s must be a list, not %s", what, type_name(n));
	size_t k = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	char **v = xcalloc(k, sizeof *v);
	*out = v;
	*count = 0;
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		gw_err err = GW_OK;
		const char *s = scalar(x, yaml_document_get_node(&x->doc, *it), what, &err);
		if (!s)
			return err;
		v[(*count)++] = xstrdup(s);
	}
	return GW_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* key_seen: mapping keys are unique (libyaml does not check it). */
static bool key_seen(pctx *x, yaml_node_pair_t *start, yaml_node_pair_t *cur, const char *k)
{
	for (yaml_node_pair_t *p = start; p < cur; p++) {
		yaml_node_t *kn = yaml_document_get_node(&x->doc, p->key);
		if (kn && kn->type == YAML_SCALAR_NODE && !strcmp((char *)kn->data.scalar.value, k))
			return true;
	}
	return false;
}

static gw_err parse_grant(pctx *x, yaml_node_t *n, grant *g)
{
	if (n->type != YAML_MAPPING_NODE)
		return fail(x, n, "an invoke entry must be a mapping (system, actors, actions)");
	gw_err err = GW_OK;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *kn = yaml_document_get_node(&x->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(&x->doc, p->value);
		const char *k = scalar(x, kn, "a key", &err);
		if (!k)
			return err;
		if (key_seen(x, n->data.mapping.pairs.start, p, k))
			return fail(x, kn, "duplicate key '%s'", k);
		if (!strcmp(k, "system")) {
			const char *s = scalar(x, vn, "system", &err);
			if (!s)
				return err;
			g->system = xstrdup(s);
		} else if (!strcmp(k, "actors")) {
			if ((err = string_list(x, vn, "actors", &g->actors, &g->n_actors)))
				return err;
			if (!g->n_actors)
				return fail(x, vn,
				            "actors is empty: leave it out to allow every actor");
		} else if (!strcmp(k, "actions")) {
			if ((err = string_list(x, vn, "actions", &g->actions, &g->n_actions)))
				return err;
			if (!g->n_actions)
				return fail(x, vn,
				            "actions is empty: leave it out to allow every action");
		} else {
			return fail(x, kn,
			            "unknown key '%s' in an invoke entry (system, actors, "
			            "actions)",
			            k);
		}
	}
	if (!g->system)
		return fail(x, n, "an invoke entry needs a system (\"*\" = any)");
	return GW_OK;
}

static gw_err parse_identities(pctx *x, yaml_node_t *n, gw_principal *pr)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(x, n, "identities must be a list, not %s", type_name(n));
	size_t k = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	pr->uris = xcalloc(k, sizeof *pr->uris);
	pr->dns = xcalloc(k, sizeof *pr->dns);
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *in = yaml_document_get_node(&x->doc, *it);
		gw_err err = GW_OK;
		const char *s = scalar(x, in, "an identity", &err);
		if (!s)
			return err;
		if (!strncmp(s, "uri:", 4) && s[4])
			pr->uris[pr->n_uris++] = xstrdup(s + 4);
		else if (!strncmp(s, "dns:", 4) && s[4])
			pr->dns[pr->n_dns++] = xstrdup(s + 4);
		else
			return fail(x, in,
			            "identity '%s' is neither uri:VALUE nor dns:VALUE (a SAN URI "
			            "or DNS name of the client certificate)",
			            s);
	}
	return GW_OK;
}

static gw_err parse_tokens(pctx *x, yaml_node_t *n, gw_principal *pr)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(x, n, "tokens must be a list, not %s", type_name(n));
	size_t k = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	pr->tokens = xcalloc(k, sizeof *pr->tokens);
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *tn = yaml_document_get_node(&x->doc, *it);
		gw_err err = GW_OK;
		const char *s = scalar(x, tn, "a token hash", &err);
		if (!s)
			return err;
		/* The value is not echoed: it may be a token pasted by mistake. */
		if (strncmp(s, "sha256:", 7) || strlen(s) != GW_TOKEN_HASH_LEN)
			return fail(x, tn,
			            "a token must be given as its hash, sha256: and 64 lowercase "
			            "hex digits (spawn-gateway --hash-token)");
		uint8_t *h = pr->tokens[pr->n_tokens];
		for (int i = 0; i < 32; i++) {
			int hi = hexval(s[7 + 2 * i]), lo = hexval(s[8 + 2 * i]);
			if (hi < 0 || lo < 0)
				return fail(x, tn,
				            "a token hash must be sha256: and 64 lowercase hex "
				            "digits");
			h[i] = (uint8_t)(hi << 4 | lo);
		}
		pr->n_tokens++;
	}
	return GW_OK;
}

static gw_err parse_principal(pctx *x, yaml_node_t *n, gw_principal *pr)
{
	if (n->type != YAML_MAPPING_NODE)
		return fail(x, n,
		            "a principal must be a mapping (name, identities, tokens, host, "
		            "invoke, admin, peer)");
	gw_err err = GW_OK;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *kn = yaml_document_get_node(&x->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(&x->doc, p->value);
		const char *k = scalar(x, kn, "a key", &err);
		if (!k)
			return err;
		if (key_seen(x, n->data.mapping.pairs.start, p, k))
			return fail(x, kn, "duplicate key '%s'", k);
		if (!strcmp(k, "name")) {
			const char *s = scalar(x, vn, "name", &err);
			if (!s)
				return err;
			pr->name = xstrdup(s);
		} else if (!strcmp(k, "identities")) {
			if ((err = parse_identities(x, vn, pr)))
				return err;
		} else if (!strcmp(k, "tokens")) {
			if ((err = parse_tokens(x, vn, pr)))
				return err;
		} else if (!strcmp(k, "host")) {
			if ((err = string_list(x, vn, "host", &pr->host, &pr->n_host)))
				return err;
		} else if (!strcmp(k, "invoke")) {
			if (vn->type != YAML_SEQUENCE_NODE)
				return fail(x, vn, "invoke must be a list, not %s", type_name(vn));
			size_t c =
			    (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);
			pr->invoke = xcalloc(c, sizeof *pr->invoke);
			for (yaml_node_item_t *it = vn->data.sequence.items.start;
			     it < vn->data.sequence.items.top; it++)
				if ((err = parse_grant(x, yaml_document_get_node(&x->doc, *it),
				                       &pr->invoke[pr->n_invoke++])))
					return err;
		} else if (!strcmp(k, "admin") || !strcmp(k, "peer")) {
			const char *s = scalar(x, vn, k, &err);
			if (!s)
				return err;
			bool *flag = !strcmp(k, "admin") ? &pr->admin : &pr->peer;
			if (!strcmp(s, "true"))
				*flag = true;
			else if (strcmp(s, "false"))
				return fail(x, vn, "%s must be true or false, not '%s'", k, s);
		} else {
			return fail(x, kn,
			            "unknown key '%s' in a principal (name, identities, tokens, "
			            "host, invoke, admin, peer)",
			            k);
		}
	}
	if (!pr->name)
		return fail(x, n, "a principal needs a name");
	return GW_OK;
}

static void principal_fini(gw_principal *pr)
{
	free(pr->name);
	for (size_t i = 0; i < pr->n_uris; i++)
		free(pr->uris[i]);
	for (size_t i = 0; i < pr->n_dns; i++)
		free(pr->dns[i]);
	free(pr->uris);
	free(pr->dns);
	free(pr->tokens);
	for (size_t i = 0; i < pr->n_host; i++)
		free(pr->host[i]);
	free(pr->host);
	for (size_t i = 0; i < pr->n_invoke; i++) {
		grant *g = &pr->invoke[i];
		free(g->system);
		for (size_t k = 0; k < g->n_actors; k++)
			free(g->actors[k]);
		for (size_t k = 0; k < g->n_actions; k++)
			free(g->actions[k]);
		free(g->actors);
		free(g->actions);
	}
	free(pr->invoke);
}

void gw_policy_free(gw_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		principal_fini(&p->p[i]);
	free(p->p);
	free(p->toks);
	free(p);
}

/* check_unique: names, identities and token hashes each belong to one
 * principal (else which one a caller is would depend on the order). */
static gw_err check_unique(pctx *x, gw_policy *p, yaml_node_t *seq)
{
	for (size_t i = 0; i < p->n; i++) {
		yaml_node_t *n = yaml_document_get_node(&x->doc, seq->data.sequence.items.start[i]);
		const gw_principal *a = &p->p[i];
		for (size_t j = 0; j < i; j++) {
			const gw_principal *b = &p->p[j];
			if (!strcmp(a->name, b->name))
				return fail(x, n, "duplicate principal name '%s'", a->name);
			for (size_t k = 0; k < a->n_uris; k++)
				for (size_t m = 0; m < b->n_uris; m++)
					if (!strcmp(a->uris[k], b->uris[m]))
						return fail(x, n,
						            "identity uri:%s already belongs to "
						            "principal '%s'",
						            a->uris[k], b->name);
			for (size_t k = 0; k < a->n_dns; k++)
				for (size_t m = 0; m < b->n_dns; m++)
					if (!strcmp(a->dns[k], b->dns[m]))
						return fail(x, n,
						            "identity dns:%s already belongs to "
						            "principal '%s'",
						            a->dns[k], b->name);
		}
		for (size_t j = 0; j <= i; j++) {
			const gw_principal *b = &p->p[j];
			for (size_t k = 0; k < a->n_tokens; k++)
				for (size_t m = 0; m < (j == i ? k : b->n_tokens); m++)
					if (!memcmp(a->tokens[k], b->tokens[m], 32))
						return fail(
						    x, n,
						    "a token hash of '%s' is also listed for "
						    "'%s'",
						    a->name, b->name);
		}
	}
	return GW_OK;
}

static int tok_cmp(const void *a, const void *b)
{
	return memcmp(((const tok_ent *)a)->h, ((const tok_ent *)b)->h, 32);
}

static gw_err parse_doc(pctx *x, gw_policy *p)
{
	yaml_node_t *root = yaml_document_get_root_node(&x->doc);
	if (!root)
		return fail(x, NULL,
		            "the file is empty (a policy with no principal is "
		            "\"principals: []\")");
	if (root->type != YAML_MAPPING_NODE)
		return fail(x, root, "the policy must be a mapping with the key 'principals'");
	yaml_node_t *seq = NULL;
	gw_err err = GW_OK;
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = yaml_document_get_node(&x->doc, pr->key);
		const char *k = scalar(x, kn, "a key", &err);
		if (!k)
			return err;
		if (strcmp(k, "principals"))
			return fail(x, kn, "unknown key '%s' (the policy has only 'principals')",
			            k);
		if (seq)
			return fail(x, kn, "duplicate key 'principals'");
		seq = yaml_document_get_node(&x->doc, pr->value);
	}
	if (!seq)
		return fail(x, root, "the policy has no 'principals' list");
	if (seq->type != YAML_SEQUENCE_NODE)
		return fail(x, seq, "principals must be a list, not %s", type_name(seq));
	size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	p->p = xcalloc(n, sizeof *p->p);
	for (size_t i = 0; i < n; i++) {
		p->n = i + 1;
		yaml_node_t *pn =
		    yaml_document_get_node(&x->doc, seq->data.sequence.items.start[i]);
		if ((err = parse_principal(x, pn, &p->p[i])))
			return err;
	}
	if ((err = check_unique(x, p, seq)))
		return err;
	size_t nt = 0;
	for (size_t i = 0; i < p->n; i++)
		nt += p->p[i].n_tokens;
	p->toks = xcalloc(nt, sizeof *p->toks);
	for (size_t i = 0; i < p->n; i++)
		for (size_t k = 0; k < p->p[i].n_tokens; k++) {
			memcpy(p->toks[p->n_toks].h, p->p[i].tokens[k], 32);
			p->toks[p->n_toks++].pr = &p->p[i];
		}
	qsort(p->toks, p->n_toks, sizeof *p->toks, tok_cmp);
	return GW_OK;
}

static gw_err parse_with(gw_policy **out, yaml_parser_t *parser, const char *file, char *why,
                         size_t whylen)
{
	pctx x = {.file = file, .why = why, .whylen = whylen};
	if (!yaml_parser_load(parser, &x.doc)) {
		snprintf(why, whylen, "%s:%lu: %s%s%s", file,
		         (unsigned long)parser->problem_mark.line + 1,
		         parser->problem ? parser->problem : "not valid YAML",
		         parser->context ? " " : "", parser->context ? parser->context : "");
		return GW_ECONFIG;
	}
	gw_policy *p = xcalloc(1, sizeof *p);
	gw_err err = parse_doc(&x, p);
	if (!err) {
		/* One document only: a second one would be ignored silently. */
		yaml_document_t more;
		if (!yaml_parser_load(parser, &more)) {
			err = fail(&x, NULL, "not valid YAML after the first document");
		} else {
			if (yaml_document_get_root_node(&more))
				err = fail(&x, NULL, "more than one YAML document");
			yaml_document_delete(&more);
		}
	}
	yaml_document_delete(&x.doc);
	if (err) {
		gw_policy_free(p);
		return err;
	}
	*out = p;
	return GW_OK;
}

gw_err gw_policy_parse_string(gw_policy **out, const char *name, const char *text, size_t len,
                              char *why, size_t whylen)
{
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		return GW_ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	gw_err err = parse_with(out, &parser, name, why, whylen);
	yaml_parser_delete(&parser);
	return err;
}

gw_err gw_policy_parse(gw_policy **out, const char *path, char *why, size_t whylen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(why, whylen, "%s: cannot open: %s", path, strerror(errno));
		return GW_ECONFIG;
	}
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return GW_ENOMEM;
	}
	yaml_parser_set_input_file(&parser, f);
	gw_err err = parse_with(out, &parser, path, why, whylen);
	yaml_parser_delete(&parser);
	fclose(f);
	return err;
}

/* ---- lookups ------------------------------------------------------------------ */

size_t gw_policy_count(const gw_policy *p)
{
	return p->n;
}

/* The SHA-256 implementation is fetched once; each thread keeps one
 * digest context, so hashing a token allocates nothing per call. */
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha_md;
static pthread_key_t sha_key;

static void sha_ctx_free(void *c)
{
	EVP_MD_CTX_free(c);
}

static void sha_init(void)
{
	sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	pthread_key_create(&sha_key, sha_ctx_free);
}

static bool sha256(const char *s, size_t len, uint8_t out[32])
{
	pthread_once(&sha_once, sha_init);
	if (!sha_md)
		return false;
	EVP_MD_CTX *c = pthread_getspecific(sha_key);
	if (!c) {
		if (!(c = EVP_MD_CTX_new()))
			return false;
		pthread_setspecific(sha_key, c);
	}
	unsigned int n = 0;
	return EVP_DigestInit_ex2(c, sha_md, NULL) == 1 && EVP_DigestUpdate(c, s, len) == 1 &&
	       EVP_DigestFinal_ex(c, out, &n) == 1 && n == 32;
}

bool gw_token_hash(const char *tok, size_t len, char out[GW_TOKEN_HASH_LEN + 1])
{
	uint8_t h[32];
	if (!sha256(tok, len, h))
		return false;
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[h[i] >> 4];
		out[8 + 2 * i] = hex[h[i] & 15];
	}
	out[GW_TOKEN_HASH_LEN] = 0;
	OPENSSL_cleanse(h, sizeof h);
	return true;
}

const gw_principal *gw_policy_by_token(const gw_policy *p, const char *tok, size_t len)
{
	uint8_t h[32];
	if (!sha256(tok, len, h))
		return NULL;
	/* A binary search over the sorted hashes, then one constant-time
	 * comparison. The search's timing depends only on the SHA-256 of the
	 * caller's token, which tells nothing about a stored token (finding a
	 * token from its hash is a preimage attack); the final equality is
	 * constant time anyway. */
	size_t lo = 0, hi = p->n_toks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(p->toks[mid].h, h, 32) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	const gw_principal *found = NULL;
	if (lo < p->n_toks && CRYPTO_memcmp(p->toks[lo].h, h, 32) == 0)
		found = p->toks[lo].pr;
	OPENSSL_cleanse(h, sizeof h);
	return found;
}

const gw_principal *gw_policy_by_identity(const gw_policy *p, const char *kind, const char *value,
                                          size_t len)
{
	bool uri = !strcmp(kind, "uri");
	for (size_t i = 0; i < p->n; i++) {
		char **v = uri ? p->p[i].uris : p->p[i].dns;
		size_t n = uri ? p->p[i].n_uris : p->p[i].n_dns;
		for (size_t k = 0; k < n; k++)
			if (strlen(v[k]) == len && !memcmp(v[k], value, len))
				return &p->p[i];
	}
	return NULL;
}

const gw_principal *gw_policy_by_name(const gw_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->p[i].name, name))
			return &p->p[i];
	return NULL;
}

const char *gw_principal_name(const gw_principal *pr)
{
	return pr->name;
}

bool gw_principal_admin(const gw_principal *pr)
{
	return pr->admin;
}

bool gw_principal_peer(const gw_principal *pr)
{
	return pr->peer;
}

bool gw_principal_may_host(const gw_principal *pr, const char *system)
{
	for (size_t i = 0; i < pr->n_host; i++)
		if (!strcmp(pr->host[i], "*") || !strcmp(pr->host[i], system))
			return true;
	return false;
}

static bool in_list(char *const *v, size_t n, const char *s)
{
	if (!s)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

bool gw_principal_may_invoke(const gw_principal *pr, const char *system, const char *actor,
                             const char *parent, const char *action)
{
	for (size_t i = 0; i < pr->n_invoke; i++) {
		const grant *g = &pr->invoke[i];
		if (strcmp(g->system, "*") && strcmp(g->system, system))
			continue;
		if (g->n_actors && !in_list(g->actors, g->n_actors, actor) &&
		    !in_list(g->actors, g->n_actors, parent))
			continue;
		if (action && g->n_actions && !in_list(g->actions, g->n_actions, action))
			continue;
		return true;
	}
	return false;
}

bool gw_principal_restricts_actors(const gw_principal *pr, const char *system)
{
	for (size_t i = 0; i < pr->n_invoke; i++)
		if ((!strcmp(pr->invoke[i].system, "*") || !strcmp(pr->invoke[i].system, system)) &&
		    pr->invoke[i].n_actors)
			return true;
	return false;
}
