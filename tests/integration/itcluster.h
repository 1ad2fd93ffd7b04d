/* itcluster.h - the members of a test cluster (it_routing_test,
 * it_peerauth_test; docs/design/cluster.md): gateway processes on one
 * PostgreSQL or MariaDB namespace whose membership view is a file the test
 * writes (the hidden flag --cluster-test-view, read on SIGUSR1, "view N" on
 * stdout once applied), each with its own tracing it-host ("invoked ACTOR
 * ACTION" per turn, so the test sees which member ran a call). */
#ifndef SPAWN_TESTS_IT_CLUSTER_H
#define SPAWN_TESTS_IT_CLUSTER_H

#include <stdint.h>

#include <spawn/spawn.h>

#include "harness.h"
#include "itdb.h"

#define ITCL_MAX    3 /* members at most */
#define ITCL_SERVED "it/counter,it/counters"

typedef struct itcl_member {
	it_gw g;
	it_proc *host;    /* its it-host (the world's process) */
	char id[32];      /* "member-a", ...: its id in the views */
	char view[600];   /* its view file */
	char peer[64];    /* "127.0.0.1:PORT" of its --peer-listen, advertised in
	                     the views; "" (g.target is advertised) */
	char policy[600]; /* its --access file, "" without one */
} itcl_member;

/* The test CA's files (tests/tls/mkcerts.sh, made by it_cert). */
typedef struct itcl_certs {
	char ca[700], scert[700], skey[700]; /* the gateways' chain and key */
	char hcert[700], hkey[700];          /* the hosts' */
	char ccert[700], ckey[700];          /* the test's clients' */
} itcl_certs;

/* itcl_certs_load fills c, the gateways' certificate being SERVER-chain.pem
 * and SERVER.key ("server" or "peer"), and gives the test's own clients
 * theirs through libspawn's SPAWN_TLS_* environment (with server_name, not
 * NULL, as SPAWN_TLS_SERVER_NAME). */
void itcl_certs_load(it_world *w, itcl_certs *c, const char *server, const char *server_name);

/* itcl_member_init names member i of w: its id and its view file. */
void itcl_member_init(it_world *w, itcl_member *m, int i);

/* itcl_tls_host starts an it-host called name (--checkpoint --trace
 * --actions actions) against target with the hosts' certificate of c (and
 * server_name unless NULL) and waits until it registered. */
it_proc *itcl_tls_host(it_world *w, const char *name, const char *target, const itcl_certs *c,
                       const char *server_name, const char *actions);

/* itcl_write_view writes member i's view file: version, self, then each
 * of the n members with status[k] (NULL: every member ACTIVE, 2) and the
 * types it serves (serves or serves[k] NULL: ITCL_SERVED), and waits until
 * the gateway applied it. */
void itcl_write_view(itcl_member *m, int n, int i, uint64_t version, const int *status,
                     const char *const *serves);

/* itcl_ran counts the turns of actor each host ran since the last count
 * (out[k] for k >= n is 0). It consumes every line the hosts wrote, other
 * actors' too: count one actor's turns before calling the next. */
void itcl_ran(itcl_member *m, int n, const char *actor, int out[ITCL_MAX]);

/* itcl_stop destroys the clients cl[0..n) (set to NULL), then stops the
 * hosts and the gateways cleanly: each gateway must exit 0 (drained,
 * saved; under sanitizers: no finding, no leak). */
void itcl_stop(itcl_member *m, int n, spawn_client **cl);

/* itcl_teardown: a suite's teardown (clients cl[0..ITCL_MAX), the world, the
 * database). */
void itcl_teardown(it_world *w, itdb *db, spawn_client **cl);

#endif
