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

/* semt_gateway_start_env is semt_gateway_start with more environment for
 * the gateway: env ("K=V" strings, NULL-terminated; may be NULL), e.g.
 * "SPAWN_FAULT=exit-after-outbox-commit" (crash tests). */
void semt_gateway_start_env(it_world *w, semt_gw *g, const char *name, const char *db,
                            const char *const extra[], const char *const env[]);

/* semt_gateway_done stops g (as it_gateway_stop) and drops its fresh
 * schema, if any. */
void semt_gateway_done(semt_gw *g);

/* semt_gateway_restart stops g (SIGTERM, asserting exit 0 after the final
 * saves) and starts a new gateway on the same store and socket. */
void semt_gateway_restart(it_world *w, semt_gw *g, const char *name, const char *db,
                          const char *const extra[]);

/* semt_gateway_expect_exit waits at most it_ms(ms) for g's gateway to end
 * by itself (a fault point's _exit, a crash) and asserts its exit code is
 * code (dumping its log when not). */
void semt_gateway_expect_exit(semt_gw *g, int code, int64_t ms);

/* semt_gateway_respawn starts a new gateway on g's store and socket after
 * the previous one ended (asserts it was reaped), with extra arguments and
 * env as semt_gateway_start_env. Hosts reconnect by themselves; clients
 * must connect to the new g->gw.target (a new port). */
void semt_gateway_respawn(it_world *w, semt_gw *g, const char *name, const char *const extra[],
                          const char *const env[]);

/* semt_gateway_crashed: the gateway crashed. semt_gateway_expect_exit(g,
 * code, ms), then semt_gateway_respawn(w, g, name, extra, env). */
void semt_gateway_crashed(it_world *w, semt_gw *g, int code, int64_t ms, const char *name,
                          const char *const extra[], const char *const env[]);

/* semt_log_wait waits at most it_ms(ms) until p's stderr log (p->errlog:
 * the gateway logs there) has a line containing needle, and copies the
 * first such line into line (may be NULL; without the newline). Readiness:
 * inotify on the file (a bounded re-check every 20 ms without it). Returns
 * false on timeout. */
bool semt_log_wait(const it_proc *p, const char *needle, int64_t ms, char *line, size_t n);

/* semt_expect_log is semt_log_wait failing the test (with the log's tail)
 * on timeout. */
void semt_expect_log(const it_proc *p, const char *needle, int64_t ms, char *line, size_t n);

/* semt_log_count is the number of lines of p's stderr log that contain
 * needle now (never waits). */
int semt_log_count(const it_proc *p, const char *needle);

/* semt_wall_ms is the Unix time in ms (the clock of scheduled_to_ms). */
int64_t semt_wall_ms(void);

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
