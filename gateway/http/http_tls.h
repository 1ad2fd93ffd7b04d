/* http_tls.h - the HTTP listener's certificate (HTTPS with --tls-cert and
 * --tls-key), served to new connections as the files change on disk, as
 * the gRPC listeners' are (server/tls.h), without a restart.
 *
 * libmicrohttpd hands the TLS handshake to GnuTLS, which asks for the
 * certificate at every handshake (MHD_OPTION_HTTPS_CERT_CALLBACK). Each ask
 * stats the two files (cheap: nothing is read while nothing changed); when
 * one changed, both are read and checked (PEM parses, the key matches the
 * leaf) and become the next generation:
 *
 *   LOADED(gen N) -- files changed, valid ----> LOADED(gen N+1)  [logged]
 *   LOADED(gen N) -- files changed, refused --> LOADED(gen N)    [warned once per change:
 *                                                                 a renewal half written]
 *
 * Invariants:
 *  1. The pair in use always passed the checks together.
 *  2. A reload never touches an open connection: a generation handed to a
 *     handshake stays allocated until gw_http_tls_destroy (GnuTLS does not
 *     copy it), so each renewal keeps a few KB until the gateway exits.
 *
 * Thread: any (one mutex). Blocks: reads the files when they changed. */
#ifndef GW_HTTP_TLS_H
#define GW_HTTP_TLS_H

#include <stddef.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "gw_err.h"

typedef struct gw_http_tls gw_http_tls;

/* gw_http_tls_create reads and checks cert_path (a PEM chain, leaf first)
 * and key_path (its PEM private key); both copied. Returns GW_OK and *out
 * (free with gw_http_tls_destroy, after the listener stopped), GW_ECONFIG
 * (why: the file and what is wrong) or GW_ENOMEM. */
gw_err gw_http_tls_create(gw_http_tls **out, const char *cert_path, const char *key_path, char *why,
                          size_t whylen);

/* gw_http_tls_current reloads when the files changed and gives the current
 * chain and key (borrowed from t until gw_http_tls_destroy). Returns 0, or
 * -1 when nothing was ever loaded. */
int gw_http_tls_current(gw_http_tls *t, gnutls_pcert_st **pcert, unsigned *n,
                        gnutls_privkey_t *key);

/* gw_http_tls_generation: how many pairs were loaded (1 after create). */
unsigned gw_http_tls_generation(gw_http_tls *t);

void gw_http_tls_destroy(gw_http_tls *t); /* accepts NULL */

#endif
