/* trace.c - W3C Trace Context values and ids (see trace.h). */
#include "trace.h"

#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* W3C: uppercase hex is invalid */
}

/* hex_in reads n bytes from 2n lowercase hex digits; false on any other. */
static bool hex_in(const char *s, uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
		if (h < 0 || l < 0)
			return false;
		b[i] = (uint8_t)(h << 4 | l);
	}
	return true;
}

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

bool gw_trace_parse(const char *s, gw_trace_pos *out)
{
	if (!s)
		return false;
	size_t len = strnlen(s, GW_TRACEPARENT_LEN + 1);
	if (len < GW_TRACEPARENT_LEN)
		return false;
	uint8_t ver;
	if (!hex_in(s, &ver, 1) || ver == 0xff)
		return false;
	/* Version 00 is exactly 55 characters; a later version may append
	 * fields after a '-' (W3C: parse what version 00 defines). */
	if (ver == 0 && len != GW_TRACEPARENT_LEN)
		return false;
	if (ver != 0 && len > GW_TRACEPARENT_LEN && s[GW_TRACEPARENT_LEN] != '-')
		return false;
	if (s[2] != '-' || s[35] != '-' || s[52] != '-')
		return false;
	gw_trace_pos p;
	if (!hex_in(s + 3, p.trace, 16) || !hex_in(s + 36, p.span, 8) ||
	    !hex_in(s + 53, &p.flags, 1))
		return false;
	if (all_zero(p.trace, 16) || all_zero(p.span, 8))
		return false;
	if (ver != 0)
		p.flags &= 0x01; /* only the bits version 00 defines */
	*out = p;
	return true;
}

void gw_trace_hex(const uint8_t *b, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[b[i] >> 4];
		out[2 * i + 1] = hx[b[i] & 15];
	}
	out[2 * n] = 0;
}

void gw_trace_format(const gw_trace_pos *p, char out[GW_TRACEPARENT_LEN + 1])
{
	memcpy(out, "00-", 3);
	gw_trace_hex(p->trace, 16, out + 3);
	out[35] = '-';
	gw_trace_hex(p->span, 8, out + 36);
	out[52] = '-';
	gw_trace_hex(&p->flags, 1, out + 53);
}

/* ---- tracestate ------------------------------------------------------------- */

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '*' || c == '/';
}

/* member_valid checks one list member s[0..n) (spaces around it trimmed). */
static bool member_valid(const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n);
	if (!eq)
		return false;
	size_t kl = (size_t)(eq - s), vl = n - kl - 1;
	if (kl == 0 || vl == 0 || vl > 256)
		return false;
	const char *at = memchr(s, '@', kl);
	if (at) {
		/* multi-tenant: tenant-id@system-id */
		size_t tl = (size_t)(at - s), sl = kl - tl - 1;
		if (tl == 0 || tl > 241 || sl == 0 || sl > 14)
			return false;
		if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
			return false;
		if (!(at[1] >= 'a' && at[1] <= 'z'))
			return false;
		for (size_t i = 0; i < kl; i++)
			if (i != tl && !key_char(s[i]))
				return false;
	} else {
		if (kl > 256 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
			return false;
		for (size_t i = 0; i < kl; i++)
			if (!key_char(s[i]))
				return false;
	}
	for (size_t i = 0; i < vl; i++) {
		unsigned char c = (unsigned char)eq[1 + i];
		if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
			return false;
	}
	return eq[vl] != ' ';
}

bool gw_tracestate_valid(const char *s)
{
	if (!s)
		return false;
	size_t len = strnlen(s, GW_TRACESTATE_MAX + 1);
	if (len > GW_TRACESTATE_MAX)
		return false;
	int members = 0;
	for (const char *p = s;;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *b = p, *e = p + n;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > b) {
			if (++members > 32 || !member_valid(b, (size_t)(e - b)))
				return false;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return true;
}

/* ---- ids ------------------------------------------------------------------ */

/* A per-thread buffer of CSPRNG bytes: one getrandom per ~100 invocations
 * (40 bytes of ids each), not one per id (a syscall on every call's hot
 * path). */
static _Thread_local struct {
	uint8_t b[4096];
	size_t used;
	bool init;
} pool;

static void take(uint8_t *b, size_t n)
{
	while (n) {
		if (!pool.init || pool.used == sizeof pool.b) {
			size_t got = 0;
			while (got < sizeof pool.b) {
				ssize_t r = getrandom(pool.b + got, sizeof pool.b - got, 0);
				if (r > 0)
					got += (size_t)r;
			}
			pool.used = 0;
			pool.init = true;
		}
		size_t k = sizeof pool.b - pool.used;
		if (k > n)
			k = n;
		memcpy(b, pool.b + pool.used, k);
		/* bytes given out are not kept */
		memset(pool.b + pool.used, 0, k);
		pool.used += k;
		b += k;
		n -= k;
	}
}

void gw_trace_random(uint8_t *b, size_t n)
{
	do
		take(b, n);
	while (all_zero(b, n));
}

void gw_trace_new_span(gw_trace_pos *p)
{
	gw_trace_random(p->span, sizeof p->span);
}

void gw_trace_start(gw_trace_pos *p)
{
	gw_trace_random(p->trace, sizeof p->trace);
	gw_trace_random(p->span, sizeof p->span);
	p->flags = 0x01;
}

int64_t gw_trace_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- metadata ------------------------------------------------------------- */

const char *gw_trace_md_get(const Spawn__InvocationRequest *rq, const char *key)
{
	const char *v = NULL;
	for (size_t i = 0; rq && i < rq->n_metadata; i++)
		if (rq->metadata[i]->key && !strcasecmp(rq->metadata[i]->key, key))
			v = rq->metadata[i]->value;
	return v;
}

bool gw_trace_md_set(Spawn__InvocationRequest *rq, spawn_arena *a, const char *key,
                     const char *value, size_t max)
{
	size_t keep = 0;
	for (size_t i = 0; i < rq->n_metadata; i++)
		if (!rq->metadata[i]->key || strcasecmp(rq->metadata[i]->key, key))
			keep++;
	size_t n = keep + (value ? 1 : 0);
	if (max && n > max && n > rq->n_metadata)
		return false;
	Spawn__InvocationRequest__MetadataEntry **m =
	    n ? spawn_arena_alloc(a, n * sizeof *m) : NULL;
	Spawn__InvocationRequest__MetadataEntry *e = value ? spawn_arena_alloc(a, sizeof *e) : NULL;
	if ((n && !m) || (value && !e))
		return false;
	size_t k = 0;
	for (size_t i = 0; i < rq->n_metadata; i++)
		if (!rq->metadata[i]->key || strcasecmp(rq->metadata[i]->key, key))
			m[k++] = rq->metadata[i];
	if (value) {
		spawn__invocation_request__metadata_entry__init(e);
		e->key = spawn_arena_strdup(a, key);
		e->value = spawn_arena_strdup(a, value);
		if (!e->key || !e->value)
			return false;
		m[k++] = e;
	}
	rq->metadata = m;
	rq->n_metadata = k;
	return true;
}

bool gw_trace_md_merge(Spawn__InvocationRequest *rq, spawn_arena *a, const char *traceparent,
                       const char *tracestate, size_t max)
{
	gw_trace_pos p;
	if (gw_trace_parse(gw_trace_md_get(rq, GW_TRACEPARENT_KEY), &p))
		return true; /* the request's own */
	if (!traceparent || !gw_trace_parse(traceparent, &p))
		return true; /* nothing valid beside it: the runtime starts one */
	char tp[GW_TRACEPARENT_LEN + 1];
	gw_trace_format(&p, tp);
	const char *ts = tracestate && gw_tracestate_valid(tracestate) ? tracestate : NULL;
	/* Both or neither: a half-merged request would pair another's state. */
	size_t n = rq->n_metadata;
	Spawn__InvocationRequest__MetadataEntry **old = rq->metadata;
	if (!gw_trace_md_set(rq, a, GW_TRACEPARENT_KEY, tp, max) ||
	    !gw_trace_md_set(rq, a, GW_TRACESTATE_KEY, ts, max)) {
		rq->metadata = old;
		rq->n_metadata = n;
		return false;
	}
	return true;
}
