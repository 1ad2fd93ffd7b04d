/* wirecheck_test.c - the string checks at the edge: UTF-8 (overlongs,
 * surrogates, past U+10FFFF, truncated), NUL and control characters hidden
 * from protobuf-c, length and entry limits, type URLs, the field paths in
 * the answers, the reserved metadata namespace, and malformed or random
 * input that must never be read past its end. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "wirecheck.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* A packed message whose bytes the test edits. */
typedef struct packed {
	uint8_t *data;
	size_t len;
} packed;

static packed pack(const ProtobufCMessage *m)
{
	packed p;
	p.len = protobuf_c_message_get_packed_size(m);
	p.data = malloc(p.len ? p.len : 1);
	ck_assert_ptr_nonnull(p.data);
	protobuf_c_message_pack(m, p.data);
	return p;
}

/* patch replaces the string s in p (a whole field value, so it cannot be
 * mistaken for a tag or a length) with as many bytes of with: how the
 * tests put bytes on the wire that the C API cannot express. */
static void patch_n(packed *p, const char *s, const char *with, size_t n)
{
	for (size_t i = 0; i + n <= p->len; i++)
		if (!memcmp(p->data + i, s, n)) {
			memcpy(p->data + i, with, n);
			return;
		}
	ck_abort_msg("%s not found", s);
}
#define PATCH(p, s, with)                                                                          \
	do {                                                                                       \
		_Static_assert(sizeof(s) == sizeof(with), "same length");                          \
		patch_n(p, s, with, sizeof(s) - 1);                                                \
	} while (0)

/* check runs both checks the gateway runs (wire first, then counts on
 * what protobuf-c unpacked, which must accept the bytes). */
static gw_err check(const ProtobufCMessageDescriptor *d, const packed *p, const gw_wc_limits *l,
                    gw_wc_fail *f)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, p->len, p->data);
	ck_assert_msg(m != NULL, "protobuf-c refused the test's bytes");
	gw_err err = gw_wc_check(m, p->data, p->len, l, f);
	protobuf_c_message_free_unpacked(m, NULL);
	return err;
}

static void expect_bad(const ProtobufCMessageDescriptor *d, const packed *p, const gw_wc_limits *l,
                       const char *path, const char *why)
{
	gw_wc_fail f = {{0}, {0}};
	ck_assert_int_eq(check(d, p, l, &f), GW_EINVAL);
	ck_assert_str_eq(f.path, path);
	ck_assert_msg(strstr(f.why, why), "why '%s' does not say '%s'", f.why, why);
}

static void expect_ok(const ProtobufCMessageDescriptor *d, const packed *p, const gw_wc_limits *l)
{
	gw_wc_fail f = {{0}, {0}};
	gw_err err = check(d, p, l, &f);
	ck_assert_msg(err == GW_OK, "refused: %s: %s", f.path, f.why);
}

/* An InvocationRequest like a client's: system, actor, action, payload and
 * one metadata entry, every string settable. */
typedef struct req {
	Spawn__Actors__ActorSystem sys;
	Spawn__Actors__ActorId id;
	Spawn__Actors__Actor actor;
	Google__Protobuf__Any any;
	Spawn__InvocationRequest__MetadataEntry md, *mds[1];
	Spawn__InvocationRequest rq;
} req;

static void req_init(req *r, const char *system, const char *name, const char *action,
                     const char *mkey, const char *mval)
{
	spawn__actors__actor_system__init(&r->sys);
	spawn__actors__actor_id__init(&r->id);
	spawn__actors__actor__init(&r->actor);
	google__protobuf__any__init(&r->any);
	spawn__invocation_request__metadata_entry__init(&r->md);
	spawn__invocation_request__init(&r->rq);
	r->sys.name = (char *)system;
	r->id.name = (char *)name;
	r->id.system = (char *)system;
	r->actor.id = &r->id;
	r->any.type_url = "type.googleapis.com/examples.incrementor.Add";
	static uint8_t bad_bytes[] = {0xff, 0x00, 0xc0, 0xaf}; /* bytes: never checked */
	r->any.value.data = bad_bytes;
	r->any.value.len = sizeof bad_bytes;
	r->rq.system = &r->sys;
	r->rq.actor = &r->actor;
	r->rq.action_name = (char *)action;
	r->rq.payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_VALUE;
	r->rq.value = &r->any;
	if (mkey) {
		r->md.key = (char *)mkey;
		r->md.value = (char *)mval;
		r->mds[0] = &r->md;
		r->rq.n_metadata = 1;
		r->rq.metadata = r->mds;
	}
}

#define IRQ  (&spawn__invocation_request__descriptor)
#define HMSG (&spawn__gateway__v1__host_message__descriptor)

/* ---- UTF-8 ------------------------------------------------------------------------------ */

START_TEST(utf8_accepts_every_valid_form_and_refuses_the_rest)
{
	static const struct {
		const char *s;
		size_t n;
		bool ok;
		size_t off;
	} cases[] = {
	    {"", 0, true, 0},
	    {"plain ascii", 11, true, 0},
	    {"caf\xc3\xa9", 5, true, 0},       /* U+00E9 */
	    {"\xe2\x82\xac", 3, true, 0},      /* U+20AC */
	    {"\xef\xbf\xbf", 3, true, 0},      /* U+FFFF */
	    {"\xf0\x9d\x84\x9e", 4, true, 0},  /* U+1D11E */
	    {"\xf4\x8f\xbf\xbf", 4, true, 0},  /* U+10FFFF, the last */
	    {"\xed\x9f\xbf", 3, true, 0},      /* U+D7FF, before the surrogates */
	    {"\xee\x80\x80", 3, true, 0},      /* U+E000, after them */
	    {"a\xc0\xaf", 3, false, 1},        /* overlong '/' */
	    {"\xc1\xbf", 2, false, 0},         /* overlong */
	    {"\xe0\x80\xaf", 3, false, 0},     /* overlong, 3 bytes */
	    {"\xe0\x9f\xbf", 3, false, 0},     /* overlong U+07FF */
	    {"\xf0\x80\x80\xaf", 4, false, 0}, /* overlong, 4 bytes */
	    {"\xf0\x8f\xbf\xbf", 4, false, 0}, /* overlong U+FFFF */
	    {"ab\xed\xa0\x80", 5, false, 2},   /* U+D800, a surrogate */
	    {"\xed\xbf\xbf", 3, false, 0},     /* U+DFFF */
	    {"\xf4\x90\x80\x80", 4, false, 0}, /* U+110000 */
	    {"\xf5\x80\x80\x80", 4, false, 0}, /* lead past F4 */
	    {"\xff", 1, false, 0},
	    {"\xfe", 1, false, 0},
	    {"x\x80", 2, false, 1},            /* stray continuation */
	    {"\xe2\x82", 2, false, 0},         /* truncated */
	    {"\xf0\x9d\x84", 3, false, 0},     /* truncated */
	    {"\xe2\x28\xa1", 3, false, 0},     /* bad continuation */
	    {"\xf0\x9d\x28\x9e", 4, false, 0}, /* bad third byte */
	    {"ok\0evil", 7, false, 2},         /* NUL */
	    {"\x01", 1, false, 0},
	    {"tab\there", 8, false, 3},
	    {"nl\n", 3, false, 2},
	    {"del\x7f", 4, false, 3},
	    {"\xc2\x80", 2, true, 0}, /* U+0080 (C1 controls are not C0) */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t off = 999;
		const char *why = gw_wc_utf8((const uint8_t *)cases[i].s, cases[i].n, false, &off);
		ck_assert_msg((why == NULL) == cases[i].ok, "case %zu: %s", i, why ? why : "ok");
		if (!cases[i].ok)
			ck_assert_msg(off == cases[i].off, "case %zu: offset %zu, want %zu", i, off,
			              cases[i].off);
	}
	/* Free text may hold TAB, LF and CR, never NUL or other controls. */
	size_t off;
	ck_assert_ptr_null(gw_wc_utf8((const uint8_t *)"a\tb\r\nc", 6, true, &off));
	ck_assert_ptr_nonnull(gw_wc_utf8((const uint8_t *)"a\x01", 2, true, &off));
	ck_assert_ptr_nonnull(gw_wc_utf8((const uint8_t *)"a\0", 2, true, &off));
	ck_assert_ptr_nonnull(gw_wc_utf8((const uint8_t *)"\x1b[31m", 5, true, &off));
}
END_TEST

/* gw_wc_utf8 skips 8 printable ASCII bytes at a time: every byte value at
 * every position of strings of 1..40 bytes gives the answer and the offset
 * of a byte-by-byte check (a bad byte between two good words, at a word's
 * edge, in the tail shorter than a word). */
START_TEST(utf8_word_at_a_time_matches_byte_by_byte)
{
	static const uint8_t bytes[] = {0x00, 0x01, '\t', '\n', '\r', 0x1f,
	                                0x20, '~',  0x7f, 0x80, 0xc3, 0xff};
	uint8_t buf[41];
	for (size_t n = 1; n <= 40; n++)
		for (size_t at = 0; at < n; at++)
			for (size_t b = 0; b < sizeof bytes; b++)
				for (int text = 0; text < 2; text++) {
					for (size_t i = 0; i < n; i++)
						buf[i] = (uint8_t)('a' + i % 26);
					uint8_t c = bytes[b];
					buf[at] = c;
					/* the one byte decides, alone: printable ASCII and
					 * (free text) TAB, LF, CR pass; the rest fail at it */
					bool ok = (c >= 0x20 && c < 0x7f) ||
					          (text && (c == '\t' || c == '\n' || c == '\r'));
					size_t off = 999;
					const char *why = gw_wc_utf8(buf, n, text, &off);
					ck_assert_msg((why == NULL) == ok,
					              "n %zu at %zu byte 0x%02x text %d: %s", n, at,
					              c, text, why ? why : "ok");
					if (!ok)
						ck_assert_msg(
						    off == at,
						    "n %zu byte 0x%02x: offset %zu, want %zu", n, c,
						    off, at);
				}
	/* valid multi-byte sequences between and across words */
	const char *mixed = "abcdefgh\xc3\xa9"
	                    "abcdefg\xe2\x82\xac"
	                    "abcdefgh\xf0\x9d\x84\x9e";
	size_t off;
	ck_assert_ptr_null(gw_wc_utf8((const uint8_t *)mixed, strlen(mixed), false, &off));
}
END_TEST

START_TEST(type_urls_must_end_in_a_message_name)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
	    {"", true},
	    {"type.googleapis.com/examples.incrementor.Add", true},
	    {"t/x.P", true},
	    {"spawn.actors.TimeoutStrategy", true},
	    {"a/b/c/pkg.M_2", true},
	    {"type.googleapis.com/", false},
	    {"type.googleapis.com/pkg.", false},
	    {"type.googleapis.com/.pkg", false},
	    {"type.googleapis.com/pkg..M", false},
	    {"type.googleapis.com/1pkg.M", false},
	    {"type.googleapis.com/pkg.M-1", false},
	    {"type googleapis.com/pkg.M", false},
	    {"type.googleapis.com/pkg.M ", false},
	    {"caf\xc3\xa9/pkg.M", false},
	    {"/", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_msg(gw_wc_type_url_ok(cases[i].s, strlen(cases[i].s)) == cases[i].ok,
		              "'%s'", cases[i].s);
}
END_TEST

/* The walker remembers the last type URLs it accepted (per thread): a URL
 * that passed passes again without its shape walk, and one that differs
 * from it in any byte, at the same length, is still refused with the
 * reason and path of a first sight; URLs past the remembered length and
 * more URLs than are remembered are checked in full every time. */
START_TEST(remembered_type_urls_never_pass_a_different_url)
{
	static const char good[] = "type.googleapis.com/examples.incrementor.Add";
	static const struct {
		const char *bad; /* same length as good */
		const char *why;
	} bads[] = {
	    {"type.googleapis.com/examples.incrementor.Ad\x01", "control character at offset 43"},
	    {"type.googleapis.com/examples.incrementor.Ad\x00", "NUL byte at offset 43"},
	    {"type.googleapis.com/examples.incrementor.Ad-", "not a type URL"},
	    {"type.googleapis.com/examples.incrementor..dd", "not a type URL"},
	    {"type.googleapis.com/examples.incrementor..dd", "not a type URL"},
	};
	for (int round = 0; round < 3; round++) {
		req r;
		req_init(&r, "spawn-system", "incrementor", "Add", NULL, NULL);
		packed p = pack(&r.rq.base);
		expect_ok(IRQ, &p, NULL); /* good, remembered from here on */
		expect_ok(IRQ, &p, NULL);
		free(p.data);
		for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
			req_init(&r, "spawn-system", "incrementor", "Add", NULL, NULL);
			r.any.type_url = (char *)good;
			p = pack(&r.rq.base);
			patch_n(&p, good, bads[i].bad, sizeof good - 1);
			expect_bad(IRQ, &p, NULL, "value.type_url", bads[i].why);
			free(p.data);
		}
		/* more distinct URLs than are remembered, and a long one */
		char url[200];
		for (int k = 0; k < 12; k++) {
			snprintf(url, sizeof url, "t/p%d.M", k);
			req_init(&r, "spawn-system", "incrementor", "Add", NULL, NULL);
			r.any.type_url = url;
			p = pack(&r.rq.base);
			expect_ok(IRQ, &p, NULL);
			free(p.data);
		}
		memset(url, 'a', 150);
		memcpy(url, "t/", 2);
		url[150] = 0;
		req_init(&r, "spawn-system", "incrementor", "Add", NULL, NULL);
		r.any.type_url = url;
		p = pack(&r.rq.base);
		expect_ok(IRQ, &p, NULL);
		expect_ok(IRQ, &p, NULL);
		url[149] = '-';
		free(p.data);
		p = pack(&r.rq.base);
		expect_bad(IRQ, &p, NULL, "value.type_url", "not a type URL");
		free(p.data);
	}
}
END_TEST

START_TEST(the_spawn_metadata_namespace_is_reserved_in_any_case)
{
	ck_assert(gw_wc_reserved_key("spawn-idempotency-key"));
	ck_assert(gw_wc_reserved_key("SPAWN-IDEMPOTENCY-KEY"));
	ck_assert(gw_wc_reserved_key("Spawn-x"));
	ck_assert(gw_wc_reserved_key("spawn-"));
	ck_assert(!gw_wc_reserved_key("spawn"));
	ck_assert(!gw_wc_reserved_key("spawnx-"));
	ck_assert(!gw_wc_reserved_key("x-spawn-"));
	ck_assert(!gw_wc_reserved_key(""));
	ck_assert(!gw_wc_reserved_key(NULL));
}
END_TEST

/* ---- what protobuf-c hides: NUL inside a name ------------------------------------------------ */

START_TEST(a_nul_inside_a_name_is_refused_naming_the_field)
{
	req r;
	/* The markers are replaced by a NUL on the wire. */
	req_init(&r, "spawn-system", "incrementorXevil", "Add", NULL, NULL);
	packed p = pack(&r.rq.base);
	PATCH(&p, "incrementorXevil", "incrementor\0evil");
	/* protobuf-c unpacks it as "incrementor": the reason for the walker. */
	Spawn__InvocationRequest *u = spawn__invocation_request__unpack(NULL, p.len, p.data);
	ck_assert_ptr_nonnull(u);
	ck_assert_str_eq(u->actor->id->name, "incrementor");
	spawn__invocation_request__free_unpacked(u, NULL);
	expect_bad(IRQ, &p, NULL, "actor.id.name", "NUL byte at offset 11");
	free(p.data);

	req_init(&r, "spawn-systemXzz", "incrementor", "Add", NULL, NULL);
	p = pack(&r.rq.base);
	PATCH(&p, "spawn-systemXzz", "spawn-system\0zz");
	expect_bad(IRQ, &p, NULL, "system.name", "NUL");
	free(p.data);

	req_init(&r, "spawn-system", "incrementor", "AddXq", NULL, NULL);
	p = pack(&r.rq.base);
	PATCH(&p, "AddXq", "Add\0q");
	expect_bad(IRQ, &p, NULL, "action_name", "NUL byte at offset 3");
	free(p.data);

	/* The same request without the markers passes, bytes payload and all. */
	req_init(&r, "spawn-system", "incrementor", "Add", "trace", "abc");
	p = pack(&r.rq.base);
	expect_ok(IRQ, &p, NULL);
	free(p.data);
}
END_TEST

START_TEST(metadata_keys_and_values_are_checked_and_named)
{
	req r;
	req_init(&r, "s", "a", "Add", "trace", "okXX");
	packed p = pack(&r.rq.base);
	PATCH(&p, "okXX", "ok\xc3\x28"); /* invalid UTF-8 */
	expect_bad(IRQ, &p, NULL, "metadata[\"trace\"]", "not valid UTF-8 at offset 2");
	free(p.data);

	req_init(&r, "s", "a", "Add", "trXce", "v");
	p = pack(&r.rq.base);
	PATCH(&p, "trXce", "tr\0ce");
	expect_bad(IRQ, &p, NULL, "metadata[0].key", "NUL");
	free(p.data);

	req_init(&r, "s", "a", "Add", "k", "line\x01");
	p = pack(&r.rq.base);
	expect_bad(IRQ, &p, NULL, "metadata[\"k\"]", "control character at offset 4");
	free(p.data);

	/* A key that is shown is escaped into ASCII. */
	req_init(&r, "s", "a", "Add", "k\"\\", "\x7f");
	p = pack(&r.rq.base);
	expect_bad(IRQ, &p, NULL, "metadata[\"k\\x22\\x5c\"]", "control");
	free(p.data);
}
END_TEST

START_TEST(length_limits_are_enforced_at_the_byte_and_name_the_flag)
{
	static char name[300], key[200], val[5000];
	memset(name, 'n', 255);
	name[255] = 0;
	memset(key, 'k', 128);
	key[128] = 0;
	memset(val, 'v', 4096);
	val[4096] = 0;
	req r;
	req_init(&r, "s", name, "Add", key, val);
	packed p = pack(&r.rq.base);
	expect_ok(IRQ, &p, NULL);
	free(p.data);

	name[255] = 'n';
	name[256] = 0;
	req_init(&r, "s", name, "Add", key, val);
	p = pack(&r.rq.base);
	expect_bad(IRQ, &p, NULL, "actor.id.name",
	           "is 256 bytes, over the limit of 255 (--max-name-bytes)");
	free(p.data);
	name[255] = 0;

	key[128] = 'k';
	key[129] = 0;
	req_init(&r, "s", name, "Add", key, val);
	p = pack(&r.rq.base);
	gw_wc_fail f;
	ck_assert_int_eq(check(IRQ, &p, NULL, &f), GW_EINVAL);
	ck_assert_msg(strstr(f.path, "metadata[\"kkk") && strstr(f.path, "...\"].key"), "%s",
	              f.path);
	ck_assert(strstr(f.why, "--max-metadata-key-bytes"));
	free(p.data);
	key[128] = 0;

	val[4096] = 'v';
	val[4097] = 0;
	req_init(&r, "s", name, "Add", "k", val);
	p = pack(&r.rq.base);
	expect_bad(IRQ, &p, NULL, "metadata[\"k\"]", "4097 bytes, over the limit of 4096");
	/* The limits are configurable. */
	gw_wc_limits l = {.metadata_value_bytes = 5000};
	gw_wc_limits_resolve(&l);
	ck_assert_uint_eq(l.name_bytes, GW_WC_NAME_BYTES);
	expect_ok(IRQ, &p, &l);
	l.name_bytes = 1;
	expect_bad(IRQ, &p, &l, "actor.id.name", "255 bytes, over the limit of 1");
	free(p.data);
}
END_TEST

START_TEST(metadata_entries_are_counted)
{
	enum { N = 65 };
	static Spawn__InvocationRequest__MetadataEntry e[N], *ep[N];
	static char keys[N][8];
	req r;
	req_init(&r, "s", "a", "Add", NULL, NULL);
	for (int i = 0; i < N; i++) {
		spawn__invocation_request__metadata_entry__init(&e[i]);
		snprintf(keys[i], sizeof keys[i], "k%d", i);
		e[i].key = keys[i];
		e[i].value = "v";
		ep[i] = &e[i];
	}
	r.rq.metadata = ep;
	r.rq.n_metadata = N - 1;
	packed p = pack(&r.rq.base);
	expect_ok(IRQ, &p, NULL);
	free(p.data);
	r.rq.n_metadata = N;
	p = pack(&r.rq.base);
	expect_bad(IRQ, &p, NULL, "metadata",
	           "has 65 entries, over the limit of 64 (--max-metadata-entries)");
	free(p.data);
	/* The gateway's own key (copied forward by a host) is not counted. */
	e[N - 1].key = "spawn-idempotency-key";
	p = pack(&r.rq.base);
	expect_ok(IRQ, &p, NULL);
	free(p.data);
}
END_TEST

/* ---- what hosts send back ----------------------------------------------------------------------
 */

/* A HostMessage with a result: reply, state, tags and a workflow with one
 * side effect and a pipe. */
typedef struct result {
	Google__Protobuf__Any state, reply;
	Spawn__Context__TagsEntry tag, *tags[1];
	Spawn__Context ctx;
	req effect_rq;
	Spawn__SideEffect effect, *effects[1];
	Spawn__Pipe pipe;
	Spawn__Workflow wf;
	Spawn__ActorInvocationResponse resp;
	Spawn__Gateway__V1__InvocationResult res;
	Spawn__Gateway__V1__HostMessage hm;
} result;

static void result_init(result *x, const char *tag_val, const char *state_url,
                        const char *effect_actor, const char *pipe_actor)
{
	google__protobuf__any__init(&x->state);
	google__protobuf__any__init(&x->reply);
	spawn__context__tags_entry__init(&x->tag);
	spawn__context__init(&x->ctx);
	spawn__side_effect__init(&x->effect);
	spawn__pipe__init(&x->pipe);
	spawn__workflow__init(&x->wf);
	spawn__actor_invocation_response__init(&x->resp);
	spawn__gateway__v1__invocation_result__init(&x->res);
	spawn__gateway__v1__host_message__init(&x->hm);
	x->state.type_url = (char *)state_url;
	x->reply.type_url = "type.googleapis.com/examples.incrementor.Total";
	x->tag.key = "color";
	x->tag.value = (char *)tag_val;
	x->tags[0] = &x->tag;
	x->ctx.state = &x->state;
	x->ctx.n_tags = 1;
	x->ctx.tags = x->tags;
	req_init(&x->effect_rq, "spawn-system", effect_actor, "Add", "spawn-idempotency-key", "k");
	x->effect.request = &x->effect_rq.rq;
	x->effects[0] = &x->effect;
	x->pipe.actor = (char *)pipe_actor;
	x->pipe.action_name = "Get";
	x->wf.n_effects = 1;
	x->wf.effects = x->effects;
	x->wf.routing_case = SPAWN__WORKFLOW__ROUTING_PIPE;
	x->wf.pipe = &x->pipe;
	x->resp.updated_context = &x->ctx;
	x->resp.payload_case = SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_VALUE;
	x->resp.value = &x->reply;
	x->resp.workflow = &x->wf;
	x->res.request_id = 7;
	x->res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE;
	x->res.response = &x->resp;
	x->hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT;
	x->hm.result = &x->res;
}

START_TEST(a_hosts_result_is_checked_down_to_its_workflow)
{
	const char *url = "type.googleapis.com/examples.incrementor.State";
	result x;
	result_init(&x, "red", url, "other", "next");
	packed p = pack(&x.hm.base);
	expect_ok(HMSG, &p, NULL);
	free(p.data);

	result_init(&x, "rXd", url, "other", "next");
	p = pack(&x.hm.base);
	PATCH(&p, "rXd",
	      "r\xff"
	      "d");
	expect_bad(HMSG, &p, NULL, "result.response.updated_context.tags[\"color\"]",
	           "not valid UTF-8");
	free(p.data);

	result_init(&x, "red", "type.googleapis.com/not a type", "other", "next");
	p = pack(&x.hm.base);
	expect_bad(HMSG, &p, NULL, "result.response.updated_context.state.type_url",
	           "not a type URL");
	free(p.data);

	result_init(&x, "red", url, "otherXevil", "next");
	p = pack(&x.hm.base);
	PATCH(&p, "otherXevil", "other\0evil");
	expect_bad(HMSG, &p, NULL, "result.response.workflow.effects[0].request.actor.id.name",
	           "NUL");
	free(p.data);

	result_init(&x, "red", url, "other", "neXt");
	p = pack(&x.hm.base);
	PATCH(&p, "neXt", "ne\0t");
	expect_bad(HMSG, &p, NULL, "result.response.workflow.pipe.actor", "NUL");
	free(p.data);

	/* A host's error message is free text: new lines are fine. */
	Spawn__Gateway__V1__HostError he = SPAWN__GATEWAY__V1__HOST_ERROR__INIT;
	he.code = 9;
	he.message = "Traceback:\n\tline 1\r\n";
	x.res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_ERROR;
	x.res.error = &he;
	p = pack(&x.hm.base);
	expect_ok(HMSG, &p, NULL);
	free(p.data);
	he.message = "bell\a";
	p = pack(&x.hm.base);
	expect_bad(HMSG, &p, NULL, "result.error.message", "control character at offset 4");
	free(p.data);
}
END_TEST

/* Tags split over two occurrences of updated_context are merged by
 * protobuf-c: the count is taken after the merge. */
START_TEST(tags_spread_over_repeated_occurrences_are_counted_together)
{
	enum { N = 40 };
	static Spawn__Context__TagsEntry e[N], *ep[N];
	static char keys[N][8];
	for (int i = 0; i < N; i++) {
		spawn__context__tags_entry__init(&e[i]);
		snprintf(keys[i], sizeof keys[i], "t%d", i);
		e[i].key = keys[i];
		e[i].value = "v";
		ep[i] = &e[i];
	}
	Spawn__Context ctx = SPAWN__CONTEXT__INIT;
	ctx.n_tags = N;
	ctx.tags = ep;
	Spawn__ActorInvocationResponse one = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	one.updated_context = &ctx;
	packed a = pack(&one.base);
	/* the same field twice: 80 tags once merged */
	packed two = {malloc(2 * a.len), 2 * a.len};
	memcpy(two.data, a.data, a.len);
	memcpy(two.data + a.len, a.data, a.len);
	ck_assert_int_eq(gw_wc_check_wire(&spawn__actor_invocation_response__descriptor, two.data,
	                                  two.len, NULL, NULL),
	                 GW_OK);
	Spawn__ActorInvocationResponse *u =
	    spawn__actor_invocation_response__unpack(NULL, two.len, two.data);
	ck_assert_ptr_nonnull(u);
	ck_assert_uint_eq(u->updated_context->n_tags, 2 * N);
	spawn__actor_invocation_response__free_unpacked(u, NULL);
	expect_bad(&spawn__actor_invocation_response__descriptor, &two, NULL,
	           "updated_context.tags", "has 80 entries, over the limit of 64 (--max-tags)");
	free(a.data);
	free(two.data);
}
END_TEST

START_TEST(a_registration_is_checked_keys_and_values)
{
	Spawn__Actors__Action act = SPAWN__ACTORS__ACTION__INIT;
	Spawn__Actors__Action *acts[1] = {&act};
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	Spawn__Actors__ActorSettings st = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	Spawn__Actors__Actor actor = SPAWN__ACTORS__ACTOR__INIT;
	Spawn__Actors__Registry__ActorsEntry e = SPAWN__ACTORS__REGISTRY__ACTORS_ENTRY__INIT;
	Spawn__Actors__Registry__ActorsEntry *es[1] = {&e};
	Spawn__Actors__Registry reg = SPAWN__ACTORS__REGISTRY__INIT;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	Spawn__RegistrationRequest rr = SPAWN__REGISTRATION_REQUEST__INIT;
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	act.name = "Add";
	id.name = "counter";
	id.system = "it";
	st.state_type = "type.googleapis.com/it.State";
	actor.id = &id;
	actor.settings = &st;
	actor.n_actions = 1;
	actor.actions = acts;
	e.key = "counter";
	e.value = &actor;
	reg.n_actors = 1;
	reg.actors = es;
	sys.name = "it";
	sys.registry = &reg;
	rr.actor_system = &sys;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION;
	hm.registration = &rr;
	packed p = pack(&hm.base);
	expect_ok(HMSG, &p, NULL);
	free(p.data);

	e.key = "couXter";
	p = pack(&hm.base);
	PATCH(&p, "couXter", "cou\0ter");
	expect_bad(HMSG, &p, NULL, "registration.actor_system.registry.actors[0].key", "NUL");
	free(p.data);

	e.key = "counter";
	act.name = "AXd";
	p = pack(&hm.base);
	PATCH(&p, "AXd",
	      "A\x80"
	      "d");
	expect_bad(HMSG, &p, NULL,
	           "registration.actor_system.registry.actors[\"counter\"].actions[0].name",
	           "not valid UTF-8");
	free(p.data);
}
END_TEST

/* ---- malformed and random input ---------------------------------------------------------------
 */

START_TEST(malformed_input_is_refused_without_reading_past_its_end)
{
	result x;
	result_init(&x, "red", "t/x.S", "other", "next");
	packed p = pack(&x.hm.base);
	/* Every prefix, in a buffer of exactly that size (ASan sees overruns). */
	for (size_t n = 0; n <= p.len; n++) {
		uint8_t *b = malloc(n ? n : 1);
		memcpy(b, p.data, n);
		gw_wc_fail f;
		gw_err err = gw_wc_check_wire(HMSG, b, n, NULL, &f);
		ck_assert(err == GW_OK || err == GW_EINVAL);
		free(b);
	}
	free(p.data);
	/* A group (wire type 3), a length past the end, a varint that never ends. */
	static const uint8_t group[] = {0x0b, 0x0c};
	static const uint8_t past[] = {0x0a, 0x7f, 0x01};
	static const uint8_t endless[] = {0x08, 0xff, 0xff, 0xff};
	gw_wc_fail f;
	ck_assert_int_eq(gw_wc_check_wire(HMSG, group, sizeof group, NULL, &f), GW_EINVAL);
	ck_assert_int_eq(gw_wc_check_wire(HMSG, past, sizeof past, NULL, &f), GW_EINVAL);
	ck_assert_int_eq(gw_wc_check_wire(HMSG, endless, sizeof endless, NULL, &f), GW_EINVAL);
	ck_assert_int_eq(gw_wc_check_wire(HMSG, NULL, 0, NULL, &f), GW_OK);
	/* Unknown fields are skipped, whatever they hold. */
	static const uint8_t unknown[] = {0xba, 0x06, 0x02, 0xff, 0x00}; /* field 103 */
	ck_assert_int_eq(gw_wc_check_wire(HMSG, unknown, sizeof unknown, NULL, &f), GW_OK);
}
END_TEST

/* Random mutations of a valid message: the walker never crashes, and when
 * both it and protobuf-c accept, every unpacked name is as long on the
 * wire as in C (no hidden NUL got through). */
START_TEST(random_mutations_never_crash_and_never_hide_a_nul)
{
	req r;
	req_init(&r, "spawn-system", "incrementor", "Add", "trace", "abc");
	packed p = pack(&r.rq.base);
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	uint8_t *b = malloc(p.len);
	int accepted = 0;
	for (int it = 0; it < 200000; it++) {
		memcpy(b, p.data, p.len);
		for (int k = 0; k < 3; k++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			b[seed % p.len] = (uint8_t)(seed >> 32);
		}
		gw_wc_fail f;
		gw_err err = gw_wc_check_wire(IRQ, b, p.len, NULL, &f);
		if (err != GW_OK)
			continue;
		Spawn__InvocationRequest *u = spawn__invocation_request__unpack(NULL, p.len, b);
		if (!u)
			continue;
		accepted++;
		/* A NUL-free wire string unpacks to a C string with no early end,
		 * so every name in it is still found verbatim on the wire. */
		const char *names[] = {u->system ? u->system->name : NULL,
		                       u->actor && u->actor->id ? u->actor->id->name : NULL,
		                       u->action_name};
		for (size_t i = 0; i < 3; i++) {
			if (!names[i] || !names[i][0])
				continue;
			size_t n = strlen(names[i]);
			bool found = false;
			for (size_t j = 1; j + n <= p.len && !found; j++)
				found = b[j - 1] == n && !memcmp(b + j, names[i], n);
			ck_assert_msg(found, "'%s' unpacked, not on the wire as such", names[i]);
		}
		spawn__invocation_request__free_unpacked(u, NULL);
	}
	ck_assert_int_gt(accepted, 100);
	free(b);
	free(p.data);
}
END_TEST

static Suite *wirecheck_suite(void)
{
	Suite *s = suite_create("wirecheck");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
	    {"utf8", utf8_accepts_every_valid_form_and_refuses_the_rest},
	    {"utf8_words", utf8_word_at_a_time_matches_byte_by_byte},
	    {"type_url", type_urls_must_end_in_a_message_name},
	    {"type_url_seen", remembered_type_urls_never_pass_a_different_url},
	    {"reserved", the_spawn_metadata_namespace_is_reserved_in_any_case},
	    {"nul_in_name", a_nul_inside_a_name_is_refused_naming_the_field},
	    {"metadata", metadata_keys_and_values_are_checked_and_named},
	    {"lengths", length_limits_are_enforced_at_the_byte_and_name_the_flag},
	    {"metadata_entries", metadata_entries_are_counted},
	    {"result", a_hosts_result_is_checked_down_to_its_workflow},
	    {"merged_tags", tags_spread_over_repeated_occurrences_are_counted_together},
	    {"registration", a_registration_is_checked_keys_and_values},
	    {"malformed", malformed_input_is_refused_without_reading_past_its_end},
	    {"random", random_mutations_never_crash_and_never_hide_a_nul},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wirecheck_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
