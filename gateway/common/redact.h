/* redact.h - credentials out of log lines and error messages (STYLE.md 13.7).
 *
 * Every URL or connection string that goes into a log line or an error
 * message passes through gw_redact_url first; every message a database
 * client library wrote (which may echo what it was given) passes through
 * gw_redact_secret with the password the driver holds.
 *
 * Thread: any (no state). Blocks: no.
 */
#ifndef GW_REDACT_H
#define GW_REDACT_H

#include <stddef.h>

/* What a credential is replaced by. */
#define GW_REDACTED "***"

/* gw_redact_url copies in to out (outlen bytes, always NUL-terminated when
 * outlen > 0, cut if too small) with the credentials replaced by "***":
 *   - the password of a URL's userinfo: scheme://user:secret@host/...
 *     becomes scheme://user:***@host/... (the user name stays);
 *   - the value of every password-like key=value pair, in a URL query
 *     (?password=x&...) or in a libpq conninfo string (password=x,
 *     password='x y'), keys password, passwd, pass, pwd, sslpassword and
 *     secret, in any case.
 * in and out are borrowed; NULL in gives "". Returns out. */
char *gw_redact_url(const char *in, char *out, size_t outlen);

/* gw_redact_secret replaces, in the NUL-terminated msg (capacity cap
 * bytes), every occurrence of secret by "***", cutting msg if the result
 * does not fit. A NULL or empty secret leaves msg unchanged. */
void gw_redact_secret(char *msg, size_t cap, const char *secret);

#endif
