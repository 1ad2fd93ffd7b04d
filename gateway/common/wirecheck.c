/* wirecheck.c - string checks on serialized messages (see wirecheck.h).
 *
 * Why on the wire bytes: protobuf-c has no UTF-8 check and its unpacked
 * strings are NUL-terminated copies, so an embedded NUL is invisible after
 * unpacking. This file reads only what it needs to find string fields (tag,
 * wire type, length); protobuf-c remains the parser of record. */
#include "wirecheck.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "google/protobuf/any.pb-c.h"
#include "spawn/actors/actor.pb-c.h"
#include "spawn/actors/protocol.pb-c.h"
#include "spawn/gateway/v1/gateway.pb-c.h"

#define MAX_DEPTH 64

/* What a string field is, for its length bound and its extra rules. The
 * map roles sit on the map field itself; its entries' key and value get
 * the matching key/value roles. */
enum role {
	R_PLAIN = 0, /* encoding checks only */
	R_TEXT,      /* free text: TAB, LF, CR allowed */
	R_NAME,
	R_TYPE_URL,  /* Any.type_url: bounded, shaped */
	R_TYPE_NAME, /* ActorSettings.state_type: bounded (the registry checks its shape) */
	R_META_MAP,
	R_TAG_MAP,
	R_NAME_MAP, /* map<string, message> keyed by a name (Registry.actors) */
	R_MAP,      /* any other map: plain keys and values */
	R_META_KEY,
	R_META_VALUE,
	R_TAG_KEY,
	R_TAG_VALUE,
};

typedef struct rule {
	const ProtobufCMessageDescriptor *d;
	uint32_t id;
	enum role role;
} rule;

/* The roles of the Spawn protocol's string and map fields. Every other
 * string field is R_PLAIN. */
static const rule rules[] = {
    {&spawn__actors__registry__descriptor, 1, R_NAME_MAP},             /* actors */
    {&spawn__actors__actor_system__descriptor, 1, R_NAME},             /* name */
    {&spawn__actors__action__descriptor, 1, R_NAME},                   /* name */
    {&spawn__actors__actor_state__descriptor, 1, R_TAG_MAP},           /* tags */
    {&spawn__actors__metadata__descriptor, 2, R_TAG_MAP},              /* tags */
    {&spawn__actors__channel__descriptor, 1, R_NAME},                  /* topic */
    {&spawn__actors__channel__descriptor, 2, R_NAME},                  /* action */
    {&spawn__actors__projection_subject__descriptor, 1, R_NAME},       /* actor */
    {&spawn__actors__projection_subject__descriptor, 2, R_NAME},       /* source_action */
    {&spawn__actors__projection_subject__descriptor, 3, R_NAME},       /* action */
    {&spawn__actors__actor_settings__descriptor, 8, R_TYPE_NAME},      /* state_type */
    {&spawn__actors__actor_id__descriptor, 1, R_NAME},                 /* name */
    {&spawn__actors__actor_id__descriptor, 2, R_NAME},                 /* system */
    {&spawn__actors__actor_id__descriptor, 3, R_NAME},                 /* parent */
    {&spawn__context__descriptor, 4, R_META_MAP},                      /* metadata */
    {&spawn__context__descriptor, 5, R_TAG_MAP},                       /* tags */
    {&spawn__broadcast__descriptor, 1, R_NAME},                        /* channel_group */
    {&spawn__pipe__descriptor, 1, R_NAME},                             /* actor */
    {&spawn__pipe__descriptor, 2, R_NAME},                             /* action_name */
    {&spawn__pipe__descriptor, 3, R_NAME},                             /* register_ref */
    {&spawn__forward__descriptor, 1, R_NAME},                          /* actor */
    {&spawn__forward__descriptor, 2, R_NAME},                          /* action_name */
    {&spawn__forward__descriptor, 3, R_NAME},                          /* register_ref */
    {&spawn__fact__descriptor, 3, R_META_MAP},                         /* metadata */
    {&spawn__invocation_request__descriptor, 3, R_NAME},               /* action_name */
    {&spawn__invocation_request__descriptor, 8, R_META_MAP},           /* metadata */
    {&spawn__invocation_request__descriptor, 11, R_NAME},              /* register_ref */
    {&spawn__actor_invocation__descriptor, 2, R_NAME},                 /* action_name */
    {&spawn__actor_invocation_response__descriptor, 1, R_NAME},        /* actor_name */
    {&spawn__actor_invocation_response__descriptor, 2, R_NAME},        /* actor_system */
    {&spawn__request_status__descriptor, 2, R_TEXT},                   /* message */
    {&spawn__gateway__v1__host_error__descriptor, 2, R_TEXT},          /* message */
    {&spawn__gateway__v1__actor_ref__descriptor, 1, R_NAME},           /* system */
    {&spawn__gateway__v1__actor_ref__descriptor, 2, R_NAME},           /* actor */
    {&spawn__gateway__v1__actor_state_view__descriptor, 4, R_TAG_MAP}, /* tags */
    {&spawn__gateway__v1__stored_state__descriptor, 1, R_TAG_MAP},     /* tags */
    {&google__protobuf__any__descriptor, 1, R_TYPE_URL},               /* type_url */
    {&spawn__gateway__v1__forward_request__descriptor, 5, R_NAME},     /* principal */

    /* Peer.Contracts (docs/design/cluster.md, "Contracts across the cluster") */
    {&spawn__gateway__v1__peer_contracts_request__descriptor, 1, R_NAME}, /* sender_id */
};

/* rules_of finds the rules of d. The table groups them by descriptor; an
 * index by descriptor address, built once, finds the group without a scan
 * of the table (walk_msg asks for every message it enters). */
#define RULE_SLOTS 128 /* a power of two, over twice the descriptors in rules[] */

static struct rule_slot {
	const ProtobufCMessageDescriptor *d; /* NULL: empty */
	uint16_t first, n;                   /* the group: rules[first .. first + n) */
} rule_index[RULE_SLOTS];
static pthread_once_t rule_once = PTHREAD_ONCE_INIT;

static size_t rule_hash(const ProtobufCMessageDescriptor *d)
{
	uint64_t h = (uint64_t)(uintptr_t)d * 0x9e3779b97f4a7c15u;
	return (size_t)(h >> 57) & (RULE_SLOTS - 1);
}

static void rule_index_build(void)
{
	const size_t all = sizeof rules / sizeof rules[0];
	_Static_assert(sizeof rules / sizeof rules[0] < RULE_SLOTS / 2, "grow RULE_SLOTS");
	for (size_t i = 0; i < all;) {
		size_t k = i;
		while (k < all && rules[k].d == rules[i].d)
			k++;
		size_t h = rule_hash(rules[i].d);
		while (rule_index[h].d)
			h = (h + 1) & (RULE_SLOTS - 1);
		rule_index[h] = (struct rule_slot){rules[i].d, (uint16_t)i, (uint16_t)(k - i)};
		i = k;
	}
}

static const rule *rules_of(const ProtobufCMessageDescriptor *d, size_t *n)
{
	pthread_once(&rule_once, rule_index_build);
	for (size_t h = rule_hash(d);; h = (h + 1) & (RULE_SLOTS - 1)) {
		if (rule_index[h].d == d) {
			*n = rule_index[h].n;
			return &rules[rule_index[h].first];
		}
		if (!rule_index[h].d)
			break;
	}
	*n = 0;
	return NULL;
}

static enum role role_in(const rule *r, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].id == id)
			return r[i].role;
	return R_PLAIN;
}

static enum role role_of(const ProtobufCMessageDescriptor *d, uint32_t id)
{
	size_t n;
	const rule *r = rules_of(d, &n);
	return role_in(r, n, id);
}

void gw_wc_limits_resolve(gw_wc_limits *l)
{
#define DEF(f, v)                                                                                  \
	if (!l->f)                                                                                 \
		l->f = v;
	DEF(name_bytes, GW_WC_NAME_BYTES)
	DEF(metadata_key_bytes, GW_WC_METADATA_KEY_BYTES)
	DEF(metadata_value_bytes, GW_WC_METADATA_VALUE_BYTES)
	DEF(metadata_entries, GW_WC_METADATA_ENTRIES)
	DEF(tag_key_bytes, GW_WC_TAG_KEY_BYTES)
	DEF(tag_value_bytes, GW_WC_TAG_VALUE_BYTES)
	DEF(tag_entries, GW_WC_TAG_ENTRIES)
	DEF(type_url_bytes, GW_WC_TYPE_URL_BYTES)
#undef DEF
}

/* ---- one string ------------------------------------------------------------------ */

/* ascii8: the 8 bytes at s are printable ASCII (0x20..0x7e), tested
 * together: no high bit, no byte under 0x20 (subtracting 0x20 from it
 * borrows into its high bit) and no DEL (0x7f ^ 0x7f is a zero byte). */
static bool ascii8(const uint8_t *s)
{
	uint64_t v, d;
	memcpy(&v, s, sizeof v);
	const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
	d = v ^ (0x7f * ones);
	return !((v | ((v - 0x20 * ones) & ~v) | ((d - ones) & ~d)) & high);
}

const char *gw_wc_utf8(const uint8_t *s, size_t n, bool text, size_t *off)
{
	size_t i = 0;
	while (i < n) {
		if (n - i >= 8 && ascii8(s + i)) {
			i += 8;
			continue;
		}
		uint8_t c = s[i];
		if (c < 0x80) {
			if (c == 0) {
				*off = i;
				return "contains a NUL byte";
			}
			if ((c < 0x20 && !(text && (c == '\t' || c == '\n' || c == '\r'))) ||
			    c == 0x7f) {
				*off = i;
				return "contains a control character";
			}
			i++;
			continue;
		}
		/* Lead byte: length and the range of the first continuation byte,
		 * which rules out overlong forms (C0, C1, E0 80..9F, F0 80..8F),
		 * surrogates (ED A0..BF) and code points past U+10FFFF (F4 90.., F5..). */
		size_t len;
		uint8_t lo = 0x80, hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			*off = i;
			return "is not valid UTF-8";
		}
		if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) {
			*off = i;
			return "is not valid UTF-8";
		}
		for (size_t k = 2; k < len; k++)
			if ((s[i + k] & 0xc0) != 0x80) {
				*off = i;
				return "is not valid UTF-8";
			}
		i += len;
	}
	return NULL;
}

/* The byte classes of a type URL, without branches on ranges: an
 * identifier starts with [A-Za-z_] and goes on with [A-Za-z0-9_]. */
static inline bool ident_start(uint8_t c)
{
	return (unsigned)((c | 0x20) - 'a') < 26 || c == '_';
}

static inline bool ident_char(uint8_t c)
{
	return ident_start(c) || (unsigned)(c - '0') < 10;
}

bool gw_wc_type_url_ok(const char *str, size_t n)
{
	const uint8_t *s = (const uint8_t *)str;
	if (n == 0)
		return true;
	size_t name = n;
	while (name > 0 && s[name - 1] != '/')
		name--;
	for (size_t i = 0; i < name; i++)
		if ((unsigned)(s[i] - 0x21) > 0x7e - 0x21) /* printable, no space */
			return false;
	/* s[name..n): ident(.ident)* */
	bool start = true;
	for (size_t i = name; i < n; i++) {
		if (start) {
			if (!ident_start(s[i]))
				return false;
			start = false;
		} else if (s[i] == '.') {
			start = true;
		} else if (!ident_char(s[i])) {
			return false;
		}
	}
	return !start;
}

bool gw_wc_reserved_key(const char *key)
{
	static const char p[] = GW_WC_RESERVED_PREFIX;
	if (!key)
		return false;
	for (size_t i = 0; i + 1 < sizeof p; i++) {
		char c = key[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != p[i])
			return false;
	}
	return true;
}

/* ---- the walk ----------------------------------------------------------------------- */

/* The path to the field being checked: a chain of segments on the C stack,
 * rendered into text only when a check fails (the success path formats
 * nothing). */
typedef struct seg {
	const struct seg *up;
	enum { S_FIELD, S_INDEX, S_KEY, S_KEYFIELD, S_ENTRY } kind;
	const char *name;                    /* S_FIELD */
	const uint8_t *key;                  /* S_KEY: shown, at most 48 bytes of it;
	                                        S_ENTRY: the entry's bytes */
	size_t klen;                         /* S_KEY, S_ENTRY: length of key */
	size_t idx;                          /* S_INDEX, S_ENTRY: the occurrence */
	const ProtobufCMessageDescriptor *d; /* S_ENTRY: the entry's type */
} seg;

typedef struct walk {
	const gw_wc_limits *l;
	gw_wc_fail *fail;
	const seg *top; /* innermost segment; NULL at the root */
	int depth;
} walk;

/* enter links s (caller storage) as the innermost segment. */
static void enter(walk *w, seg *s)
{
	s->up = w->top;
	w->top = s;
}

static void leave(walk *w, const seg *s)
{
	w->top = s->up;
}

static const uint8_t *entry_key(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                                size_t len, size_t *klen);

/* render_seg appends one segment to buf at *o (bounded, NUL-terminated). */
static void render_seg(char *buf, size_t cap, size_t *o, const seg *s)
{
	if (*o >= cap - 1)
		return;
	int r = 0;
	seg shown;
	if (s->kind == S_ENTRY) {
		/* a map entry: by its key when that can be shown, else by position */
		shown = (seg){.kind = S_INDEX, .idx = s->idx};
		shown.key = entry_key(s->d, s->key, s->klen, &shown.klen);
		if (shown.key)
			shown.kind = S_KEY;
		s = &shown;
	}
	switch (s->kind) {
	case S_FIELD:
		r = snprintf(buf + *o, cap - *o, "%s%s", *o ? "." : "", s->name);
		break;
	case S_INDEX:
		r = snprintf(buf + *o, cap - *o, "[%zu]", s->idx);
		break;
	case S_KEYFIELD:
		r = snprintf(buf + *o, cap - *o, ".key");
		break;
	case S_ENTRY:
		break;
	case S_KEY: {
		char k[48 * 4 + 4];
		size_t n = 0;
		for (size_t i = 0; i < s->klen && i < 48; i++) {
			uint8_t c = s->key[i];
			if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
				k[n++] = (char)c;
			else
				n += (size_t)snprintf(k + n, sizeof k - n, "\\x%02x", c);
		}
		k[n] = 0;
		r = snprintf(buf + *o, cap - *o, "[\"%s%s\"]", k, s->klen > 48 ? "..." : "");
		break;
	}
	}
	if (r > 0)
		*o += (size_t)r;
	if (*o >= cap)
		*o = cap - 1;
}

static gw_err failf(walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static gw_err failf(walk *w, const char *fmt, ...)
{
	if (!w->fail)
		return GW_EINVAL;
	const seg *chain[3 * MAX_DEPTH + 8];
	size_t n = 0;
	for (const seg *s = w->top; s && n < sizeof chain / sizeof chain[0]; s = s->up)
		chain[n++] = s;
	size_t o = 0;
	w->fail->path[0] = 0;
	while (n > 0)
		render_seg(w->fail->path, sizeof w->fail->path, &o, chain[--n]);
	if (!o)
		snprintf(w->fail->path, sizeof w->fail->path, "(message)");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->fail->why, sizeof w->fail->why, fmt, ap);
	va_end(ap);
	return GW_EINVAL;
}

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

/* next_field reads one field: its number, wire type and, for wire type 2,
 * its payload. Returns false on malformed input. */
static bool next_field(const uint8_t **p, const uint8_t *end, uint32_t *num, int *wt,
                       const uint8_t **val, size_t *vlen)
{
	uint64_t tag, v;
	if (!varint(p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
		return false;
	*num = (uint32_t)(tag >> 3);
	*wt = (int)(tag & 7);
	switch (*wt) {
	case 0:
		return varint(p, end, &v);
	case 1:
		if (end - *p < 8)
			return false;
		*p += 8;
		return true;
	case 5:
		if (end - *p < 4)
			return false;
		*p += 4;
		return true;
	case 2:
		if (!varint(p, end, &v) || v > (uint64_t)(end - *p))
			return false;
		*val = *p;
		*vlen = (size_t)v;
		*p += v;
		return true;
	default: /* groups: protobuf-c does not read them either */
		return false;
	}
}

/* is_map_entry: protobuf-c marks no map entries; they are the generated
 * "...Entry" messages with exactly key = 1 and value = 2. */
static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
	if (d->n_fields != 2 || d->fields[0].id != 1 || d->fields[1].id != 2 ||
	    strcmp(d->fields[0].name, "key") || strcmp(d->fields[1].name, "value"))
		return false;
	size_t n = strlen(d->name);
	return n > 5 && !strcmp(d->name + n - 5, "Entry");
}

/* entry_key finds the last key field (1) of a map entry when it is a
 * string that can be shown; NULL otherwise. */
static const uint8_t *entry_key(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                                size_t len, size_t *klen)
{
	if (d->fields[0].type != PROTOBUF_C_TYPE_STRING)
		return NULL;
	const uint8_t *p = data, *end = data + len, *key = NULL, *val;
	size_t vlen, off;
	uint32_t num;
	int wt;
	while (p < end) {
		if (!next_field(&p, end, &num, &wt, &val, &vlen))
			return NULL;
		if (num == 1 && wt == 2) {
			key = val;
			*klen = vlen;
		}
	}
	if (!key)
		return (const uint8_t *)""; /* absent: the empty key */
	if (gw_wc_utf8(key, *klen, false, &off))
		return NULL;
	return key;
}

static const char *limit_flag(enum role r)
{
	switch (r) {
	case R_NAME:
		return "--max-name-bytes";
	case R_META_KEY:
		return "--max-metadata-key-bytes";
	case R_META_VALUE:
		return "--max-metadata-value-bytes";
	case R_TAG_KEY:
		return "--max-tag-key-bytes";
	case R_TAG_VALUE:
		return "--max-tag-value-bytes";
	default:
		return "built in";
	}
}

static uint32_t limit_of(const gw_wc_limits *l, enum role r)
{
	switch (r) {
	case R_NAME:
		return l->name_bytes;
	case R_META_KEY:
		return l->metadata_key_bytes;
	case R_META_VALUE:
		return l->metadata_value_bytes;
	case R_TAG_KEY:
		return l->tag_key_bytes;
	case R_TAG_VALUE:
		return l->tag_value_bytes;
	case R_TYPE_URL:
	case R_TYPE_NAME:
		return l->type_url_bytes;
	default:
		return 0;
	}
}

/* The type URLs this thread accepted last. A system sends the same few
 * type URLs with every call (its payload and state types): a URL equal to
 * one that passed passes again (the check is a function of the bytes), for
 * a length compare and a memcmp instead of the walk of its shape. */
#define URL_SEEN     4
#define URL_SEEN_LEN 96
static _Thread_local struct {
	uint8_t url[URL_SEEN][URL_SEEN_LEN];
	uint8_t len[URL_SEEN]; /* 0: empty slot */
	unsigned next;         /* the slot to replace */
} url_cache;

static bool url_seen(const uint8_t *s, size_t n)
{
	for (unsigned i = 0; i < URL_SEEN; i++)
		if (url_cache.len[i] == n && n && !memcmp(url_cache.url[i], s, n))
			return true;
	return false;
}

static void url_remember(const uint8_t *s, size_t n)
{
	if (!n || n > URL_SEEN_LEN)
		return;
	unsigned i = url_cache.next++ % URL_SEEN;
	memcpy(url_cache.url[i], s, n);
	url_cache.len[i] = (uint8_t)n;
}

static gw_err check_string(walk *w, enum role r, const uint8_t *s, size_t n)
{
	uint32_t max = limit_of(w->l, r);
	if (max && n > max)
		return failf(w, "is %zu bytes, over the limit of %u (%s)", n, max, limit_flag(r));
	/* A type URL that has its shape is printable ASCII, so valid UTF-8:
	 * the encoding is checked (for its message) only when the shape fails. */
	bool url = r == R_TYPE_URL;
	if (url && url_seen(s, n))
		return GW_OK;
	if (url && gw_wc_type_url_ok((const char *)s, n)) {
		url_remember(s, n);
		return GW_OK;
	}
	size_t off = 0;
	const char *why = gw_wc_utf8(s, n, r == R_TEXT, &off);
	if (why)
		return failf(w, "%s at offset %zu", why, off);
	if (url)
		return failf(w, "is not a type URL (expected [prefix/]package.Message)");
	return GW_OK;
}

/* walk_msg checks the message d in data[0..len). in_map: the role of the
 * map field this message is an entry of (R_PLAIN when it is not one). */
static gw_err walk_msg(walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *data,
                       size_t len, enum role in_map)
{
	if (++w->depth > MAX_DEPTH)
		return failf(w, "messages nested more than %d deep", MAX_DEPTH);
	/* Occurrences of each repeated field so far, for "[i]" in paths (only
	 * the entries of d's fields are used: only those are zeroed). */
	uint32_t seen[64];
	memset(seen, 0, (d->n_fields < 64 ? d->n_fields : 64) * sizeof seen[0]);
	size_t nr;
	const rule *rs = rules_of(d, &nr);
	const uint8_t *p = data, *end = data + len;
	gw_err err = GW_OK;
	while (p < end && !err) {
		const uint8_t *val = NULL;
		size_t vlen = 0;
		uint32_t num;
		int wt;
		if (!next_field(&p, end, &num, &wt, &val, &vlen))
			return failf(w, "is not a valid %s", d->name);
		if (wt != 2)
			continue; /* scalars hold no strings */
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, num);
		if (!f)
			continue; /* unknown fields hold no strings we relay */
		size_t fi = (size_t)(f - d->fields);
		uint32_t idx = fi < 64 ? seen[fi]++ : 0;
		enum role r = role_in(rs, nr, f->id);
		if (in_map != R_PLAIN)
			r = f->id == 1 ? (in_map == R_META_MAP   ? R_META_KEY
			                  : in_map == R_TAG_MAP  ? R_TAG_KEY
			                  : in_map == R_NAME_MAP ? R_NAME
			                                         : R_PLAIN)
			               : (in_map == R_META_MAP  ? R_META_VALUE
			                  : in_map == R_TAG_MAP ? R_TAG_VALUE
			                                        : R_PLAIN);
		/* a map value is named by its entry ("m[\"k\"]"), a key as "m[i].key" */
		seg fs = {.kind = S_FIELD, .name = f->name};
		if (in_map != R_PLAIN)
			fs.kind = S_KEYFIELD;
		bool named = in_map == R_PLAIN || f->id == 1;
		if (named)
			enter(w, &fs);
		if (f->type == PROTOBUF_C_TYPE_STRING) {
			err = check_string(w, r, val, vlen);
		} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			const ProtobufCMessageDescriptor *sub = f->descriptor;
			seg is = {.kind = S_INDEX, .idx = idx};
			if (f->label == PROTOBUF_C_LABEL_REPEATED && is_map_entry(sub)) {
				is = (seg){.kind = S_ENTRY,
				           .key = val,
				           .klen = vlen,
				           .idx = idx,
				           .d = sub};
				enter(w, &is);
				err = walk_msg(w, sub, val, vlen, r == R_PLAIN ? R_MAP : r);
				leave(w, &is);
			} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
				enter(w, &is);
				err = walk_msg(w, sub, val, vlen, R_PLAIN);
				leave(w, &is);
			} else {
				err = walk_msg(w, sub, val, vlen, R_PLAIN);
			}
		}
		if (named)
			leave(w, &fs);
	}
	w->depth--;
	return err;
}

gw_err gw_wc_check_wire(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                        const gw_wc_limits *l, gw_wc_fail *fail)
{
	gw_wc_limits def = {0};
	if (!l) {
		gw_wc_limits_resolve(&def);
		l = &def;
	}
	walk w = {.l = l, .fail = fail};
	if (!d || (!data && len))
		return failf(&w, "no message");
	return walk_msg(&w, d, data ? data : (const uint8_t *)"", len, R_PLAIN);
}

/* ---- entry counts, on the unpacked message ------------------------------------------------ */

static gw_err count_msg(walk *w, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (++w->depth > MAX_DEPTH)
		return failf(w, "messages nested more than %d deep", MAX_DEPTH);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *base = (const char *)m;
		seg fs = {.kind = S_FIELD, .name = f->name};
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			if (!n)
				continue;
			ProtobufCMessage *const *v =
			    *(ProtobufCMessage *const *const *)(base + f->offset);
			enum role r = role_of(d, f->id);
			uint32_t max = r == R_META_MAP  ? w->l->metadata_entries
			               : r == R_TAG_MAP ? w->l->tag_entries
			                                : 0;
			enter(w, &fs);
			const ProtobufCMessageDescriptor *sub = f->descriptor;
			/* Keys of the reserved namespace are the gateway's own (a host may
			 * copy them forward; ingress refuses or drops them): not counted. */
			size_t counted = n;
			for (size_t k = 0; max && n > max && r == R_META_MAP && k < n; k++)
				if (v[k] &&
				    gw_wc_reserved_key(*(char *const *)((const char *)v[k] +
				                                        sub->fields[0].offset)))
					counted--;
			if (max && counted > max)
				return failf(
				    w, "has %zu entries, over the limit of %u (%s)", counted, max,
				    r == R_META_MAP ? "--max-metadata-entries" : "--max-tags");
			bool entry =
			    is_map_entry(sub) && sub->fields[0].type == PROTOBUF_C_TYPE_STRING;
			for (size_t k = 0; k < n; k++) {
				if (!v[k])
					continue;
				seg is = {.kind = S_INDEX, .idx = k};
				const char *key = entry ? *(char *const *)((const char *)v[k] +
				                                           sub->fields[0].offset)
				                        : NULL;
				if (key) {
					is.kind = S_KEY;
					is.key = (const uint8_t *)key;
					is.klen = strlen(key);
				}
				enter(w, &is);
				gw_err err = count_msg(w, v[k]);
				if (err)
					return err;
				leave(w, &is);
			}
			leave(w, &fs);
		} else {
			if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
			    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
				continue;
			const ProtobufCMessage *sub =
			    *(ProtobufCMessage *const *)(base + f->offset);
			if (sub) {
				enter(w, &fs);
				gw_err err = count_msg(w, sub);
				if (err)
					return err;
				leave(w, &fs);
			}
		}
	}
	w->depth--;
	return GW_OK;
}

gw_err gw_wc_check_counts(const ProtobufCMessage *m, const gw_wc_limits *l, gw_wc_fail *fail)
{
	gw_wc_limits def = {0};
	if (!l) {
		gw_wc_limits_resolve(&def);
		l = &def;
	}
	walk w = {.l = l, .fail = fail};
	return m ? count_msg(&w, m) : GW_OK;
}

gw_err gw_wc_check(const ProtobufCMessage *m, const uint8_t *data, size_t len,
                   const gw_wc_limits *l, gw_wc_fail *fail)
{
	gw_err err = gw_wc_check_wire(m->descriptor, data, len, l, fail);
	return err ? err : gw_wc_check_counts(m, l, fail);
}

/* ---- the reserved "spawn-" namespace ------------------------------------------ */

gw_err gw_wc_check_client_metadata(const Spawn__InvocationRequest *rq, char *why, size_t whylen)
{
	for (size_t i = 0; i < rq->n_metadata; i++) {
		const char *k = rq->metadata[i] ? rq->metadata[i]->key : NULL;
		if (gw_wc_reserved_key(k)) {
			/* k passed wirecheck: UTF-8 without controls, bounded. */
			snprintf(why, whylen,
			         "metadata[\"%s\"]: keys starting with \"" GW_WC_RESERVED_PREFIX
			         "\" are reserved to the gateway",
			         k);
			return GW_EINVAL;
		}
	}
	return GW_OK;
}

/* strip_request drops reserved keys from one request's metadata, in place
 * (the array lives in the message's arena). */
static size_t strip_request(Spawn__InvocationRequest *rq)
{
	size_t kept = 0, n = rq->n_metadata;
	for (size_t i = 0; i < n; i++)
		if (rq->metadata[i] && !gw_wc_reserved_key(rq->metadata[i]->key))
			rq->metadata[kept++] = rq->metadata[i];
	rq->n_metadata = kept;
	return n - kept;
}

size_t gw_wc_strip_reserved(Spawn__Gateway__V1__InvocationResult *res)
{
	if (res->outcome_case != SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE ||
	    !res->response || !res->response->workflow)
		return 0;
	/* Side effects are the only requests a host writes whole; pipe, forward
	 * and broadcast are built by the gateway from names. */
	const Spawn__Workflow *wf = res->response->workflow;
	size_t dropped = 0;
	for (size_t i = 0; i < wf->n_effects; i++)
		if (wf->effects[i] && wf->effects[i]->request)
			dropped += strip_request(wf->effects[i]->request);
	return dropped;
}
