/* harness.h - real processes for the integration suites.
 *
 * A test owns an it_world: a temp directory (under the run's root) and the
 * processes it started there. Every process gets a pipe for its stdout,
 * which the test reads line by line with a timeout (poll on the fd, never
 * a sleep), and a log file for its stderr. Processes die with the test:
 * each is started with PR_SET_PDEATHSIG(SIGKILL), so a failed assertion
 * (Check ends the forked test at once) or a Check timeout kills them too;
 * it_world_fini kills and reaps them on the normal path. The run's root
 * directory is removed by it_run after every test, failed ones included,
 * once the logs of failed tests have been printed.
 *
 * Thread: the test's main thread only (the parent-death signal is tied to
 * the thread that forked). Every wait is bounded; timeouts given in ms are
 * multiplied by it_ms() under sanitizers.
 */
#ifndef SPAWN_TESTS_IT_HARNESS_H
#define SPAWN_TESTS_IT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>
#include <grpc/grpc.h>

#define IT_MAX_PROCS 12

typedef struct it_proc {
	pid_t pid;   /* 0 = slot unused */
	int out;     /* read end of its stdout; -1 once closed */
	int pidfd;   /* -1 when pidfd_open is unavailable */
	bool reaped; /* waited for; status is valid */
	int status;  /* wait status */
	char name[32];
	char errlog[600]; /* its stderr */
	char buf[16384];  /* stdout bytes not yet consumed */
	size_t len;
	bool eof;
} it_proc;

typedef struct it_world {
	char dir[512];   /* this test's temp dir */
	char certs[600]; /* the test PKI's directory once it_certs made it; "" before */
	it_proc procs[IT_MAX_PROCS];
} it_world;

/* A gateway started by it_gateway_start. */
typedef struct it_gw {
	it_proc *p; /* borrowed from the world */
	int port;
	char target[64]; /* "127.0.0.1:PORT" */
} it_gw;

/* it_ms scales a timeout for slow builds (x4 under sanitizers). */
int64_t it_ms(int64_t ms);

/* it_now_ms is the monotonic clock in ms. */
int64_t it_now_ms(void);

/* Build and source trees (from SPAWN_BUILD_DIR / SPAWN_SOURCE_DIR, which
 * gw_test sets); static storage. */
const char *it_build_dir(void);
const char *it_source_dir(void);

/* it_world_init makes the test's directory ROOT/name (name = the TCase's
 * name, so it_run can find the logs of failed tests). Asserts. */
void it_world_init(it_world *w, const char *name);

/* it_world_fini kills (SIGKILL) and reaps every process still running,
 * closes their pipes and removes the directory. Safe to call twice. */
void it_world_fini(it_world *w);

/* it_path writes w->dir + "/" + file into buf (asserts it fits). */
const char *it_path(const it_world *w, const char *file, char *buf, size_t n);

/* it_spawn starts argv[0] with argv, the test's environment minus SPAWN_*
 * settings plus env ("K=V" strings, NULL-terminated; may be NULL). Its
 * stdout is a pipe, its stderr DIR/name.log, its stdin /dev/null.
 * Returns the process (owned by w). Asserts on failure. */
it_proc *it_spawn(it_world *w, const char *name, const char *const argv[], const char *const env[]);

/* it_proc_wait_line reads lines until one starts with prefix, discarding
 * the lines before it. Returns true and copies the line (without the
 * newline) into line when line != NULL; false on timeout or EOF. */
bool it_proc_wait_line(it_proc *p, const char *prefix, int64_t timeout_ms, char *line, size_t n);

/* it_proc_count_lines reads what is available now (never waits), consumes
 * every complete line and returns how many start with prefix. */
int it_proc_count_lines(it_proc *p, const char *prefix);

/* it_proc_signal sends sig (no-op once reaped). */
void it_proc_signal(it_proc *p, int sig);

/* it_proc_wait_exit waits up to timeout_ms for the process to end and
 * reaps it. Returns true once reaped (p->status is then valid). */
bool it_proc_wait_exit(it_proc *p, int64_t timeout_ms);

/* it_proc_kill sends SIGKILL and reaps (asserts it dies in time). */
void it_proc_kill(it_proc *p);

/* it_proc_release frees the slot of a reaped process (its pipe closed)
 * for a later it_spawn: for tests that start more than IT_MAX_PROCS
 * processes over their run (the torture test restarts the gateway 100
 * times). Asserts the process was reaped. */
void it_proc_release(it_proc *p);

/* it_proc_dump prints the tail of the process's stderr log on stderr. */
void it_proc_dump(const it_proc *p);

/* it_exit_code is the exit code of a reaped process, or 128 + signal
 * number when a signal ended it. */
int it_exit_code(const it_proc *p);

/* it_gateway_spawn starts spawn-gateway on 127.0.0.1:0 with the store
 * sqlite://DIR/db plus args (NULL-terminated; may be NULL) and env, and
 * does not wait. it_gateway_start also waits for its "listening" line and
 * fills g (asserts). */
it_proc *it_gateway_spawn(it_world *w, const char *name, const char *db, const char *const args[],
                          const char *const env[]);
void it_gateway_start(it_world *w, it_gw *g, const char *name, const char *db,
                      const char *const args[], const char *const env[]);

/* it_gateway_stop sends SIGTERM and asserts the gateway exits 0 in time
 * (drain + save everything; a sanitizer finding also makes it fail). */
void it_gateway_stop(it_gw *g);

/* it_host_start starts it-host against target with extra args
 * (NULL-terminated; may be NULL) and waits for "registered" (asserts). */
it_proc *it_host_start(it_world *w, const char *name, const char *target, const char *const args[]);

/* it_host_stop sends SIGTERM and asserts the host exits 0 in time. */
void it_host_stop(it_proc *p);

/* it_file_contains: whether the file at path (its first 64 KiB) contains
 * needle; false when it cannot be read. For a process's stderr log
 * (it_proc.errlog). */
bool it_file_contains(const char *path, const char *needle);

/* it_proc_status_kb reads the "name:  N kB" line of /proc/pid/status
 * (name: "VmRSS", "VmHWM", ...). Returns N, or -1 when the file or the
 * line cannot be read. */
long it_proc_status_kb(pid_t pid, const char *name);

/* ---- TLS (docs/security.md) ----------------------------------------------------------
 * Clients and raw hosts of the suites speak TLS when given an it_tls whose
 * ca is set; NULL (or ca NULL) = plaintext, as before. The files come from
 * the test PKI of tests/tls/mkcerts.sh (it_certs). */
typedef struct it_tls {
	const char *ca;          /* PEM file of the CA the client trusts; NULL = plaintext */
	const char *cert, *key;  /* PEM files of the client's certificate and key; NULL = none */
	const char *server_name; /* name checked in the server's certificate; NULL = "localhost"
	                            (the test server certificates name localhost, 127.0.0.1, ::1) */
} it_tls;

/* it_certs makes the test PKI (tests/tls/mkcerts.sh) in DIR/certs, once
 * per world, and returns that directory (w->certs). Asserts. */
const char *it_certs(it_world *w);

/* it_cert writes it_certs(w) + "/" + file into buf (e.g. "client.pem"). */
const char *it_cert(it_world *w, const char *file, char *buf, size_t n);

/* it_channel_create makes a channel to target (its own subchannels: never
 * a connection shared with another channel), with TLS per tls; NULL when a
 * file cannot be read. The caller destroys it with grpc_channel_destroy;
 * grpc_init must have been called. Defined in raw.c. */
grpc_channel *it_channel_create(const char *target, const it_tls *tls);

/* A test of a suite: the TCase name and the test. */
typedef struct it_case {
	const char *name;
	const TTest *test;
} it_case;

/* it_suite makes the Suite name with one TCase per case (n of them, the
 * array borrowed for the call), each with teardown (may be NULL) as its
 * checked fixture and a timeout of it_ms(timeout_s) seconds. IT_SUITE
 * counts the cases of an array. */
Suite *it_suite(const char *name, const it_case *cases, size_t n, void (*teardown)(void),
                int64_t timeout_s);
#define IT_SUITE(name, cases, teardown, timeout_s)                                                 \
	it_suite((name), (cases), sizeof(cases) / sizeof((cases)[0]), (teardown), (timeout_s))

/* it_run runs suite s (fork mode, so every test is its own process) inside
 * a fresh root temp dir, prints the logs of failed tests, removes the root
 * and returns the exit status for main. */
int it_run(Suite *s);

#endif
