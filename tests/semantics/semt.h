/* semt.h - what the actor-semantics suites share: starting the gateway and
 * the semantic hosts (sem-host in C, sem_host.py in Python) through the
 * integration harness (tests/integration/harness.h), and calling sem.Msg
 * actions with libspawn.
 *
 * Each test starts one gateway listening on 127.0.0.1:0 (for clients) and
 * on a unix socket in its directory (for hosts: the socket's path survives a
 * gateway restart, so hosts reconnect by themselves). Readiness is always a
 * line read from a process ("listening", "registered", an action's line);
 * every wait is bounded and scaled by it_ms() under sanitizers.
 */
#ifndef SPAWN_TESTS_SEMT_H
#define SPAWN_TESTS_SEMT_H

#include <spawn/spawn.h>

#include "harness.h"
#include "itdb.h"
#include "sem.pb-c.h"

/* A gateway of one test. */
typedef struct semt_gw {
	it_gw gw;           /* gw.target: TCP, for clients */
	char sock[600];     /* the unix socket's path */
	char host_url[620]; /* "unix:PATH", for hosts */
	itdb db;            /* the statestore (see semt_gateway_start) */
	bool fixed_url;     /* db.url is SPAWN_SEM_STORE_URL verbatim */
} semt_gw;

/* semt_gateway_start starts a gateway, waits for its "listening" line and
 * fills g. extra: more gateway arguments (NULL-terminated; may be NULL).
 * Asserts.
 *
 * The statestore, from the environment:
 *   SPAWN_SEM_STORE=postgres   a fresh schema per call on the server of
 *                              SPAWN_TEST_POSTGRES_URL (the ctest fixture
 *                              spawn_db; tests/store/with-db.sh), made as
 *                              itdb does (search_path in the URL) and
 *                              dropped by semt_gateway_done;
 *   SPAWN_SEM_STORE_URL=URL    a postgres:// URL: a fresh schema on that
 *                              server, likewise; any other URL: used as
 *                              it is (the suites expect fresh state there);
 *   neither                    the SQLite file db in the world's directory.
 * Gateways on a non-file store get SPAWN_STATESTORE_KEY (ITDB_KEY_ENV). */
void semt_gateway_start(it_world *w, semt_gw *g, const char *name, const char *db,
                        const char *const extra[]);

/* semt_gateway_done stops g (as it_gateway_stop) and drops its fresh
 * schema, if any. */
void semt_gateway_done(semt_gw *g);

/* semt_gateway_restart stops g (SIGTERM, asserting exit 0 after the final
 * saves) and starts a new gateway on the same store and socket. */
void semt_gateway_restart(it_world *w, semt_gw *g, const char *name, const char *db,
                          const char *const extra[]);

/* semt_c_host starts sem-host for system with extra arguments (NULL-
 * terminated; may be NULL) and waits for "registered". Asserts. */
it_proc *semt_c_host(it_world *w, const char *name, const semt_gw *g, const char *system,
                     const char *const extra[]);

/* semt_py_host starts sem_host.py (on the Python SDK) for system and waits
 * for "registered". Asserts. */
it_proc *semt_py_host(it_world *w, const char *name, const semt_gw *g, const char *system);

/* semt_host_stop: SIGTERM, asserting exit 0 (a sanitizer finding fails). */
void semt_host_stop(it_proc *p);

/* semt_expect_line waits for a line starting with prefix from p (at most
 * it_ms(ms)); on timeout prints p's stderr and fails the test. */
void semt_expect_line(it_proc *p, const char *prefix, int64_t ms);

/* semt_expect_lines waits until p printed a line starting with each of
 * prefixes (NULL-terminated, at most 16), in any order; other lines are
 * skipped. Fails the test after it_ms(ms). */
void semt_expect_lines(it_proc *p, const char *const prefixes[], int64_t ms);

/* One call's outcome. */
typedef struct semt_out {
	int status;       /* spawn_status */
	char msg[512];    /* the failure's message */
	char text[512];   /* the reply's text */
	char caller[256]; /* the reply's caller */
	int64_t n;        /* the reply's n */
} semt_out;

/* A call: system / actor / action with a sem.Msg. Metadata: n_md pairs. */
typedef struct semt_call {
	const char *system, *actor, *action;
	const Sem__Msg *msg; /* NULL = an empty sem.Msg */
	const spawn_metadata *md;
	size_t n_md;
	bool async;
} semt_call;

/* semt_invoke makes the call with a timeout of it_ms(timeout_ms) and fills
 * out (never asserts on the call's status; asserts when a reply is not a
 * sem.Msg). Returns out->status. */
int semt_invoke(spawn_client *c, const semt_call *call, semt_out *out, int64_t timeout_ms);

/* semt_msg is a sem.Msg with text and a target (strings borrowed). */
Sem__Msg semt_msg(const char *text, const char *to_actor, const char *to_action);

#endif
