/* itdb.h - the statestore of a test, on any driver: a SQLite file in the
 * test's directory, or a fresh namespace on the private PostgreSQL or
 * MariaDB server of the ctest fixture spawn_db (tests/store/with-db.sh
 * exports SPAWN_TEST_POSTGRES_URL / SPAWN_TEST_MARIADB_URL and the
 * servers' _STOP / _START commands). Also: gateways on that store, raw SQL
 * behind the gateway's back, and stopping / starting the server.
 *
 * Namespaces: a PostgreSQL schema (the store URL selects it with
 * options=-csearch_path) or a MariaDB database `spawn_test_it_<pid>_<n>`,
 * made by itdb_init and dropped by itdb_fini. A test that fails leaves its
 * namespace behind on the private server (Check ends it at once); the
 * fixture wipes the servers at its next start.
 *
 * Thread: the test's main thread (raw SQL uses connections of its own,
 * opened and closed per statement).
 */
#ifndef SPAWN_TESTS_IT_ITDB_H
#define SPAWN_TESTS_IT_ITDB_H

#include <stdbool.h>
#include <stdint.h>

#include "harness.h"

typedef enum itdb_kind { ITDB_SQLITE, ITDB_POSTGRES, ITDB_MARIADB } itdb_kind;

/* Two keys (base64 of bytes 0..31 and of 32 bytes of 0xA5). */
#define ITDB_KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define ITDB_KEY_B "paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaU="
/* The key every gateway gets unless a test passes its own environment. */
#define ITDB_KEY_ENV "SPAWN_STATESTORE_KEY=" ITDB_KEY_A

typedef struct itdb {
	itdb_kind kind;
	char url[1024];   /* the store URL gateways get */
	char server[512]; /* networked: the server's URL from the environment */
	char ns[80];      /* networked: the namespace made for this test */
	char path[600];   /* sqlite: the database file */
	const it_world *w;
} itdb;

/* itdb_kind_name: "sqlite", "postgres", "mariadb". */
const char *itdb_kind_name(itdb_kind k);

/* itdb_kinds parses the comma-separated store list in the environment
 * variable var (e.g. IT_STORES="sqlite,postgres"), or def when unset, into
 * out (at most 3). Returns how many. */
int itdb_kinds(const char *var, const char *def, itdb_kind out[3]);

/* itdb_usable tells whether tests on k can run: sqlite always; a server
 * when its URL is in the environment and its driver was built. When not,
 * it fails the test if CI=true, else prints a "SKIPPED" line on stderr and
 * returns false. Call it first in a test. */
bool itdb_usable(itdb_kind k);

/* itdb_init prepares the store of a test in w: for sqlite the file
 * w->dir/file; for a server a fresh namespace (starting the server first
 * if it is down, e.g. after a test that failed mid-outage). Asserts. */
void itdb_init(itdb *d, const it_world *w, itdb_kind k, const char *file);

/* itdb_fini drops the namespace (never asserts). Accepts a zeroed itdb. */
void itdb_fini(itdb *d);

/* itdb_exec runs sql in the store (namespace). False on error (logged). */
bool itdb_exec(const itdb *d, const char *sql);

/* itdb_query_int returns the first column of the first row of sql as an
 * integer; 0 when there is no row; -1 on error (logged). */
long long itdb_query_int(const itdb *d, const char *sql);

/* itdb_revision: the stored revision of (system, name); 0 = no row. */
long long itdb_revision(const itdb *d, const char *system, const char *name);

/* Damage an actor's row behind the gateway's back (names are test-made:
 * no quoting needed). True when a row changed. */
bool itdb_flip_byte(const itdb *d, const char *system, const char *name);
bool itdb_truncate(const itdb *d, const char *system, const char *name, int len);
bool itdb_set_key_id(const itdb *d, const char *system, const char *name, const char *key_id);

/* itdb_server_port is the TCP port of the server in d->server; 0 for
 * sqlite. itdb_via_port writes d's store URL with that port replaced by
 * port into out (to reach the server through a proxy). */
int itdb_server_port(const itdb *d);
void itdb_via_port(const itdb *d, int port, char *out, size_t n);

/* itdb_server_stop / _start run the server's stop / start command (from
 * the fixture's env file) and assert it exits 0 in time. Networked only.
 *
 * The commands run in the launcher when there is one (see below), else as
 * a child of the test. Their output goes to w->dir/<engine>-stop.log /
 * -start.log. */
void itdb_server_stop(it_world *w, const itdb *d);
void itdb_server_start(it_world *w, const itdb *d);

/* itdb_launcher_start starts the process that runs the servers' stop and
 * start commands; call it in main, before it_run. Why: it_run makes the
 * runner a child subreaper, so a server a test starts (a daemon, orphaned
 * by its start script) would become the runner's child, and the runner
 * reaps only after the last test: a later stop of that server would leave
 * a zombie that scripts/db-stop.sh, waiting with kill -0, takes for a
 * live server (60 s, then exit 1). The launcher is orphaned to init before
 * the runner becomes a subreaper, so what it starts is init's to reap. It
 * ends when the runner and its tests have closed their end of its socket. */
void itdb_launcher_start(void);

/* itdb_gateway_spawn starts spawn-gateway on 127.0.0.1:0 with the store
 * d->url, the arguments args and the environment env (NULL: ITDB_KEY_ENV),
 * and does not wait; itdb_gateway_start also waits for "listening" and
 * fills g. As it_gateway_spawn / it_gateway_start. */
it_proc *itdb_gateway_spawn(it_world *w, const itdb *d, const char *name, const char *const args[],
                            const char *const env[]);
void itdb_gateway_start(it_world *w, const itdb *d, it_gw *g, const char *name,
                        const char *const args[], const char *const env[]);

/* A test that runs once per store: Check's loop index _i is the kind. */
typedef struct itdb_case {
	const char *name; /* the TCase is "<name>_<kind>" */
	const TTest *test;
	double timeout; /* seconds, before it_ms scaling */
} itdb_case;

/* itdb_add_cases adds one TCase per case and per store kind listed in the
 * environment variable IT_STORES (default def) to s, with teardown as
 * its checked teardown. */
void itdb_add_cases(Suite *s, const itdb_case *cases, size_t n, const char *def,
                    void (*teardown)(void));

/* itdb_case_name writes "<name>_<kind>" (the TCase's name, which is also
 * the name of the test's directory) into buf. */
const char *itdb_case_name(char *buf, size_t n, const char *name, itdb_kind k);

/* itdb_unique writes a name unique to this process and call into buf:
 * prefix-<pid>-<n>. */
const char *itdb_unique(char *buf, size_t n, const char *prefix);

#endif
