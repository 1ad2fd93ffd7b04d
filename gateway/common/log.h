/* log.h - leveled logging to stderr. Thread: any (one write(2) per line).
 *
 * Rate limit. Lines a peer can trigger must not flood the log (STYLE.md 12),
 * so gw_log limits every call site - the format string's address, which is
 * the same for every line a given GW_WARN(...) prints - to `burst` lines
 * per `interval_ms` (default 10 per 5000 ms). Lines over the limit are
 * counted, not printed; the next line printed for that site ends with
 * "(N similar lines suppressed)", and gw_log_flush prints the counts still
 * pending. Call sites never change: the limit lives inside gw_log.
 *
 * Sites are tracked in a fixed table (GW_LOG_SITES entries, never freed:
 * format strings are literals). A site that finds no free entry is not
 * limited, so a full table can lose no line.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum gw_log_level { GW_LOG_DEBUG, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR } gw_log_level;

#define GW_LOG_SITES            1024
#define GW_LOG_BURST_DEFAULT    10
#define GW_LOG_INTERVAL_DEFAULT 5000 /* ms */

/* gw_log_set_level sets the minimum level printed (default INFO); set once
 * at start-up, before threads start. */
void gw_log_set_level(gw_log_level l);

/* gw_log_set_rate sets the per-site limit: at most burst lines per
 * interval_ms. burst == 0 or interval_ms <= 0 turns the limit off. Set once
 * at start-up, before threads start. */
void gw_log_set_rate(int burst, int64_t interval_ms);

/* gw_log_parse_rate reads "LINES/SECONDS" ("10/5"; "0" = off) into *burst
 * and *interval_ms. Returns 0, or -1 (outputs untouched) when s is not of
 * that form, LINES is outside 0..1000000 or SECONDS outside 1..86400. */
int gw_log_parse_rate(const char *s, int *burst, int64_t *interval_ms);

/* Line formats (--log-format). TEXT: "HH:MM:SS.mmm LEVEL message". JSON:
 * one object per line, {"time": RFC 3339 UTC with ms, "level", "message", and
 * when the thread's log context has them "system", "actor", "action",
 * "trace_id", "request_id"; "suppressed": N when lines of the site were
 * dropped}. Strings are escaped per RFC 8259 and made valid UTF-8 (an
 * invalid byte becomes U+FFFD), so every line parses whatever a peer put
 * in a name. Set once at start-up, before threads start. */
typedef enum gw_log_format { GW_LOG_TEXT, GW_LOG_JSON } gw_log_format;
void gw_log_set_format(gw_log_format f);

/* What the thread is working on, for the JSON fields: every pointer
 * borrowed, NULL (or request_id 0) when not known. A thread sets it with
 * gw_log_ctx_enter around the work of one call and restores what was
 * there with gw_log_ctx_leave (contexts nest). */
typedef struct gw_log_ctx {
	const char *system, *actor, *action;
	const char *trace_id; /* W3C trace id (32 hex digits) */
	uint64_t request_id;
} gw_log_ctx;

/* gw_log_ctx_enter makes *c (borrowed until the matching leave) the
 * thread's context and returns the previous one (NULL: none). */
const gw_log_ctx *gw_log_ctx_enter(const gw_log_ctx *c);
void gw_log_ctx_leave(const gw_log_ctx *prev);

void gw_log(gw_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* gw_log_flush prints one line per site with suppressed lines not yet
 * reported ("N similar lines suppressed: <format>") and resets the counts.
 * Thread: any. Call it at shutdown. */
void gw_log_flush(void);

/* Test hooks (tests/unit/log_test.c): now_ms replaces the monotonic clock
 * (NULL: the real one); sink receives each finished line, newline
 * included, instead of stderr (NULL: stderr). gw_log_reset forgets every
 * site. Not for production code; call before threads start. */
void gw_log_set_test_hooks(int64_t (*now_ms)(void), void (*sink)(const char *line, size_t len));
void gw_log_reset(void);

#define GW_DEBUG(...) gw_log(GW_LOG_DEBUG, __VA_ARGS__)
#define GW_INFO(...)  gw_log(GW_LOG_INFO, __VA_ARGS__)
#define GW_WARN(...)  gw_log(GW_LOG_WARN, __VA_ARGS__)
#define GW_ERROR(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)

#endif
