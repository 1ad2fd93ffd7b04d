/* log.c - leveled logging with a per-call-site rate limit (see log.h).
 *
 * The site table is open addressing over GW_LOG_SITES entries keyed by the
 * format string's address, probed at most PROBES entries from the hash.
 * Each entry is guarded by one of STRIPES mutexes (entry index mod
 * STRIPES): a lookup locks one stripe at a time and never two, so there is
 * no lock order. Entries are claimed and never released, and every thread
 * probes the same sequence, so two threads logging the same site agree on
 * its entry: the first free entry is claimed under its lock, and a later
 * prober sees the claim under the same lock.
 */
#include "log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STRIPES      64
#define LOG_LINE_MAX 1024
#define PROBES       8

typedef struct site {
	const void *key;      /* the format string; NULL = free */
	int64_t window_start; /* ms, on the log clock */
	uint32_t printed;     /* lines printed in this window */
	uint64_t suppressed;  /* lines dropped since the last report */
} site;

static gw_log_level min_level = GW_LOG_INFO;
static int rate_burst = GW_LOG_BURST_DEFAULT;
static int64_t rate_interval = GW_LOG_INTERVAL_DEFAULT;
static int64_t (*clock_hook)(void);
static void (*sink_hook)(const char *, size_t);

static site sites[GW_LOG_SITES];
static gw_log_format line_format = GW_LOG_TEXT;
static _Thread_local const gw_log_ctx *thread_ctx;
static pthread_mutex_t stripes[STRIPES] = {
#define M1  PTHREAD_MUTEX_INITIALIZER
#define M8  M1, M1, M1, M1, M1, M1, M1, M1
#define M64 M8, M8, M8, M8, M8, M8, M8, M8
    M64
#undef M64
#undef M8
#undef M1
};

void gw_log_set_level(gw_log_level l)
{
	min_level = l;
}

void gw_log_set_format(gw_log_format f)
{
	line_format = f;
}

const gw_log_ctx *gw_log_ctx_enter(const gw_log_ctx *c)
{
	const gw_log_ctx *prev = thread_ctx;
	thread_ctx = c;
	return prev;
}

void gw_log_ctx_leave(const gw_log_ctx *prev)
{
	thread_ctx = prev;
}

void gw_log_set_rate(int burst, int64_t interval_ms)
{
	rate_burst = burst > 0 && interval_ms > 0 ? burst : 0;
	rate_interval = interval_ms;
}

int gw_log_parse_rate(const char *s, int *burst, int64_t *interval_ms)
{
	if (!s || !*s)
		return -1;
	char *end;
	long lines = strtol(s, &end, 10);
	if (end == s || lines < 0 || lines > 1000000)
		return -1;
	if (*end == '\0' && lines == 0) {
		*burst = 0;
		*interval_ms = GW_LOG_INTERVAL_DEFAULT;
		return 0;
	}
	if (*end != '/')
		return -1;
	const char *p = end + 1;
	long secs = strtol(p, &end, 10);
	if (end == p || *end != '\0' || secs < 1 || secs > 86400)
		return -1;
	*burst = (int)lines;
	*interval_ms = (int64_t)secs * 1000;
	return 0;
}

void gw_log_set_test_hooks(int64_t (*now_ms)(void), void (*sink)(const char *line, size_t len))
{
	clock_hook = now_ms;
	sink_hook = sink;
}

void gw_log_reset(void)
{
	for (size_t i = 0; i < GW_LOG_SITES; i++) {
		pthread_mutex_t *mu = &stripes[i % STRIPES];
		pthread_mutex_lock(mu);
		memset(&sites[i], 0, sizeof sites[i]);
		pthread_mutex_unlock(mu);
	}
}

static int64_t now_ms(void)
{
	if (clock_hook)
		return clock_hook();
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t site_hash(const void *key)
{
	uint64_t h = (uint64_t)(uintptr_t)key;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)(h % GW_LOG_SITES);
}

/* admit decides whether the line of site key may be printed now. When it
 * may, *report gets the count of the site's lines dropped since its last
 * printed line (and the count restarts at 0). */
static bool admit(const void *key, uint64_t *report)
{
	*report = 0;
	if (rate_burst <= 0)
		return true;
	int64_t now = now_ms();
	size_t h = site_hash(key);
	for (size_t probe = 0; probe < PROBES; probe++) {
		size_t i = (h + probe) % GW_LOG_SITES;
		pthread_mutex_t *mu = &stripes[i % STRIPES];
		pthread_mutex_lock(mu);
		site *s = &sites[i];
		if (s->key && s->key != key) {
			pthread_mutex_unlock(mu);
			continue;
		}
		if (!s->key) {
			s->key = key;
			s->window_start = now;
		}
		/* A clock that went backwards (a test hook) also opens a window. */
		if (now - s->window_start >= rate_interval || now < s->window_start) {
			s->window_start = now;
			s->printed = 0;
		}
		bool ok = s->printed < (uint32_t)rate_burst;
		if (ok) {
			s->printed++;
			*report = s->suppressed;
			s->suppressed = 0;
		} else {
			s->suppressed++;
		}
		pthread_mutex_unlock(mu);
		return ok;
	}
	return true; /* no entry free near the hash: never lose the line */
}

static void emit(char *line, int n)
{
	if (n > LOG_LINE_MAX - 2)
		n = LOG_LINE_MAX - 2;
	line[n++] = '\n';
	if (sink_hook) {
		sink_hook(line, (size_t)n);
		return;
	}
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

static int prefix(char *line, gw_log_level l)
{
	static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	return snprintf(line, LOG_LINE_MAX, "%02d:%02d:%02d.%03ld %-5s ", tm.tm_hour, tm.tm_min,
	                tm.tm_sec, ts.tv_nsec / 1000000, names[l]);
}

/* ---- JSON lines ------------------------------------------------------------------ */

/* utf8_len: the length of the valid UTF-8 sequence at s (at most n bytes),
 * or 0 when the byte there does not start one (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	unsigned cp = c & (0xff >> (len + 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

typedef struct jbuf {
	char *p;
	size_t len, cap; /* cap keeps room for the closing brace and newline */
} jbuf;

static void jraw(jbuf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap)
		n = b->cap - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* jstr writes s as a JSON string; a string that does not fit is cut at a
 * character boundary and still closed. */
static void jstr(jbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s);
	jraw(b, "\"", 1);
	for (size_t i = 0; i < n;) {
		char esc[8];
		size_t el = 0, adv = 1;
		unsigned c = u[i];
		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c, el = 2;
		} else if (c == '\n') {
			memcpy(esc, "\\n", 2), el = 2;
		} else if (c == '\t') {
			memcpy(esc, "\\t", 2), el = 2;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4], esc[5] = hex[c & 15], el = 6;
		} else if (c < 0x80) {
			esc[0] = (char)c, el = 1;
		} else if ((adv = utf8_len(u + i, n - i)) > 0) {
			memcpy(esc, u + i, adv), el = adv;
		} else {
			memcpy(esc, "\xef\xbf\xbd", 3), el = 3, adv = 1; /* U+FFFD */
		}
		if (b->len + el + 1 > b->cap) /* room for the closing quote */
			break;
		jraw(b, esc, el);
		i += adv;
	}
	if (b->len < b->cap)
		jraw(b, "\"", 1);
	else
		b->p[b->len - 1] = '"';
}

static void jfield(jbuf *b, const char *name, const char *value)
{
	if (!value)
		return;
	jraw(b, ",", 1);
	jstr(b, name);
	jraw(b, ":", 1);
	jstr(b, value);
}

static void emit_json(gw_log_level l, const char *msg, uint64_t dropped)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char line[4 * LOG_LINE_MAX];
	jbuf b = {.p = line, .cap = sizeof line - 2};
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char t[80];
	snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	jraw(&b, "{\"time\":", 8);
	jstr(&b, t);
	jfield(&b, "level", names[l]);
	jfield(&b, "message", msg);
	const gw_log_ctx *c = thread_ctx;
	if (c) {
		jfield(&b, "system", c->system);
		jfield(&b, "actor", c->actor);
		jfield(&b, "action", c->action);
		jfield(&b, "trace_id", c->trace_id);
		if (c->request_id) {
			char id[24];
			snprintf(id, sizeof id, "%" PRIu64, c->request_id);
			jfield(&b, "request_id", id);
		}
	}
	if (dropped) {
		char d[48];
		int n = snprintf(d, sizeof d, ",\"suppressed\":%" PRIu64, dropped);
		jraw(&b, d, (size_t)n);
	}
	line[b.len++] = '}';
	line[b.len++] = '\n';
	if (sink_hook) {
		sink_hook(line, b.len);
		return;
	}
	ssize_t w = write(STDERR_FILENO, line, b.len);
	(void)w;
}

void gw_log(gw_log_level l, const char *fmt, ...)
{
	if (l < min_level)
		return;
	uint64_t dropped;
	if (!admit(fmt, &dropped))
		return;
	char line[LOG_LINE_MAX];
	if (line_format == GW_LOG_JSON) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(line, sizeof line, fmt, ap);
		va_end(ap);
		emit_json(l, line, dropped);
		return;
	}
	int n = prefix(line, l);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m > 0)
		n += m;
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	/* The count goes at the end, where a truncated message would be cut:
	 * keep room for it. */
	if (dropped) {
		char tail[64];
		int t =
		    snprintf(tail, sizeof tail, " (%" PRIu64 " similar lines suppressed)", dropped);
		if (n + t > (int)sizeof line - 2)
			n = (int)sizeof line - 2 - t;
		memcpy(line + n, tail, (size_t)t);
		n += t;
	}
	emit(line, n);
}

void gw_log_flush(void)
{
	for (size_t i = 0; i < GW_LOG_SITES; i++) {
		pthread_mutex_t *mu = &stripes[i % STRIPES];
		pthread_mutex_lock(mu);
		const char *key = sites[i].key;
		uint64_t dropped = sites[i].suppressed;
		sites[i].suppressed = 0;
		pthread_mutex_unlock(mu);
		if (!dropped)
			continue;
		char line[LOG_LINE_MAX];
		if (line_format == GW_LOG_JSON) {
			snprintf(line, sizeof line, "similar lines suppressed: %s", key);
			emit_json(GW_LOG_WARN, line, dropped);
			continue;
		}
		int n = prefix(line, GW_LOG_WARN);
		int m = snprintf(line + n, sizeof line - (size_t)n - 1,
		                 "%" PRIu64 " similar lines suppressed: %s", dropped, key);
		if (m > 0)
			n += m;
		emit(line, n);
	}
}
