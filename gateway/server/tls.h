/* tls.h - the gateway's server TLS: certificate files validated at start-up
 * and served to new connections as they change on disk, without a restart.
 *
 * gRPC core's certificate-config fetcher (grpc_security.h) asks each
 * listener's credentials for the current configuration at every TLS
 * handshake. The fetcher here stats the three files (cheap: no read while
 * nothing changed); when one changed it reads and checks them all (PEM
 * parses, the key matches the certificate) and hands the new configuration
 * to each listener once. A file that does not parse or a key that does not
 * match its certificate (a renewal half written) keeps the configuration
 * loaded before and logs a warning once per change.
 *
 *   LOADED(gen N) -- files changed, all valid ---> LOADED(gen N+1)  [logged: serial, expiry]
 *   LOADED(gen N) -- files changed, refused -----> LOADED(gen N)    [warned once; retried when
 *                                                                    they change again, or
 *                                                                    after 1 s at most]
 *   listener at gen M < N -- next handshake ------> listener at gen N [RELOAD_NEW: gRPC builds a
 *                                                                    new handshaker factory;
 *                                                                    open connections keep theirs]
 * Invariants:
 *  1. The files in use always passed the checks together (cert, key, CA).
 *  2. A reload never touches an open connection: calls in flight go on.
 *  3. Each listener is told RELOAD_NEW once per generation.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc_security.h>

#include "gw_err.h"

typedef struct gw_tls gw_tls;

typedef struct gw_tls_opts {
	const char *cert;      /* borrowed (copied): PEM certificate chain, leaf first */
	const char *key;       /* borrowed (copied): PEM private key of the leaf */
	const char *client_ca; /* borrowed (copied): PEM CA bundle; non-NULL = mTLS (clients must
	                          present a certificate this CA signed) */
} gw_tls_opts;

/* gw_tls_create reads and checks the files of o. Returns GW_OK and sets
 * *out; GW_ECONFIG (why names the file and what is wrong: unreadable, not
 * PEM, key not matching the certificate) or GW_ENOMEM, *out untouched.
 * Blocks: yes (reads the files). Thread: any. Free with gw_tls_destroy,
 * after every grpc_server using its credentials was destroyed. */
gw_err gw_tls_create(gw_tls **out, const gw_tls_opts *o, char *why, size_t whylen);

/* gw_tls_server_credentials makes the credentials of one listener (each
 * listener needs its own: the fetcher tracks per listener what it was
 * given). The caller releases them with grpc_server_credentials_release
 * once the port was added; they point to t, which must outlive the
 * grpc_server. NULL when out of memory. Thread: any. */
grpc_server_credentials *gw_tls_server_credentials(gw_tls *t);

/* gw_tls_handshakes: TLS handshakes the listeners started since t was
 * made (gRPC core asks for the certificate at each one). Thread: any. */
uint64_t gw_tls_handshakes(gw_tls *t);

/* gw_tls_pems_since is the client side of the same files (the peer links
 * of a cluster member present its server certificate as their client
 * certificate, with the client CA as trust anchor: gateway/cluster/peer.c).
 * It refreshes the files as a handshake does; when the set in use is of
 * another generation than *gen, it sets *ca, *cert and *key to copies of its
 * PEM texts (*ca NULL without --tls-client-ca; free the three with
 * gw_tls_pems_free, which zeroes them), sets *gen and returns true. False:
 * the same generation, or out of memory (nothing set). Blocks: a stat of
 * each file, a read when they changed. Thread: any. */
bool gw_tls_pems_since(gw_tls *t, uint64_t *gen, char **ca, char **cert, char **key);
void gw_tls_pems_free(char *ca, char *cert, char *key);

/* gw_tls_destroy frees t. Accepts NULL. */
void gw_tls_destroy(gw_tls *t);

#endif
