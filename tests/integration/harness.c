/* harness.c - see harness.h. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc_security.h>

extern char **environ;

/* The run's root temp dir: set by it_run before any test is forked, so
 * every test process inherits it. */
static char it_root[256];

int64_t it_ms(int64_t ms)
{
#ifdef IT_SANITIZE
	return ms * 4;
#else
	return ms;
#endif
}

int64_t it_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *it_build_dir(void)
{
	const char *d = getenv("SPAWN_BUILD_DIR");
	ck_assert_msg(d && *d, "SPAWN_BUILD_DIR is not set (run the suite through ctest)");
	return d;
}

const char *it_source_dir(void)
{
	const char *d = getenv("SPAWN_SOURCE_DIR");
	ck_assert_msg(d && *d, "SPAWN_SOURCE_DIR is not set (run the suite through ctest)");
	return d;
}

/* ---- directories ---------------------------------------------------------- */

/* IT_KEEP=1 keeps every directory, for debugging. */
static bool keep_dirs(void)
{
	const char *keep = getenv("IT_KEEP");
	return keep && *keep && strcmp(keep, "0") != 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *it_path(const it_world *w, const char *file, char *buf, size_t n)
{
	int k = snprintf(buf, n, "%s/%s", w->dir, file);
	ck_assert_msg(k > 0 && (size_t)k < n, "path too long: %s/%s", w->dir, file);
	return buf;
}

void it_world_init(it_world *w, const char *name)
{
	memset(w, 0, sizeof *w);
	for (size_t i = 0; i < IT_MAX_PROCS; i++)
		w->procs[i].out = w->procs[i].pidfd = -1;
	ck_assert_msg(it_root[0], "it_world_init outside it_run");
	/* The test process dies with the runner (ctest's timeout kills the
	 * runner, not the test), and its own processes die with it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(w->dir, sizeof w->dir, "%s/%s", it_root, name);
	rm_tree(w->dir); /* a rerun of the same test in one root (CK_FORK=no) */
	ck_assert_msg(mkdir(w->dir, 0700) == 0, "mkdir %s: %s", w->dir, strerror(errno));
}

static void proc_close(it_proc *p)
{
	if (p->out >= 0)
		close(p->out);
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->out = p->pidfd = -1;
}

void it_world_fini(it_world *w)
{
	for (size_t i = 0; i < IT_MAX_PROCS; i++) {
		it_proc *p = &w->procs[i];
		if (p->pid && !p->reaped) {
			kill(p->pid, SIGKILL);
			if (waitpid(p->pid, &p->status, 0) == p->pid)
				p->reaped = true;
		}
		proc_close(p);
	}
	if (!keep_dirs())
		rm_tree(w->dir);
	w->dir[0] = '\0';
}

/* ---- processes -------------------------------------------------------------- */

static bool is_our_setting(const char *kv)
{
	/* The harness decides every SPAWN_* setting of what it starts; only
	 * the build and source locations pass through. */
	return !strncmp(kv, "SPAWN_", 6) && strncmp(kv, "SPAWN_BUILD_DIR=", 16) &&
	       strncmp(kv, "SPAWN_SOURCE_DIR=", 17);
}

it_proc *it_spawn(it_world *w, const char *name, const char *const argv[], const char *const env[])
{
	it_proc *p = NULL;
	for (size_t i = 0; i < IT_MAX_PROCS && !p; i++)
		if (!w->procs[i].pid)
			p = &w->procs[i];
	ck_assert_msg(p != NULL, "more than %d processes in one test", IT_MAX_PROCS);
	memset(p, 0, sizeof *p);
	p->out = p->pidfd = -1;
	snprintf(p->name, sizeof p->name, "%s", name);
	char file[64];
	snprintf(file, sizeof file, "%s.log", name);
	it_path(w, file, p->errlog, sizeof p->errlog);

	/* Everything the child needs is prepared before fork: after it, the
	 * child only makes async-signal-safe calls. */
	size_t n_env = 0, n_extra = 0;
	while (environ[n_env])
		n_env++;
	while (env && env[n_extra])
		n_extra++;
	char **envp = calloc(n_env + n_extra + 1, sizeof *envp);
	ck_assert_ptr_nonnull(envp);
	size_t k = 0;
	for (size_t i = 0; i < n_env; i++)
		if (!is_our_setting(environ[i]))
			envp[k++] = environ[i];
	for (size_t i = 0; i < n_extra; i++)
		envp[k++] = (char *)env[i];
	envp[k] = NULL;

	int pfd[2];
	ck_assert_msg(pipe2(pfd, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	int errfd = open(p->errlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	ck_assert_msg(errfd >= 0, "open %s: %s", p->errlog, strerror(errno));
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_msg(nullfd >= 0, "open /dev/null: %s", strerror(errno));
	pid_t parent = getpid();

	pid_t pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Die with the test process, whatever ends it. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(126);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(nullfd, 0) < 0 || dup2(pfd[1], 1) < 0 || dup2(errfd, 2) < 0)
			_exit(126);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		execve(argv[0], (char *const *)argv, envp);
		_exit(127);
	}
	free(envp);
	close(pfd[1]);
	close(errfd);
	close(nullfd);
	p->pid = pid;
	p->out = pfd[0];
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0U);
	return p;
}

/* fill reads once from the pipe, waiting up to timeout_ms. Returns false
 * on timeout; sets eof at the end of the stream. */
static bool fill(it_proc *p, int64_t timeout_ms)
{
	if (p->eof || p->out < 0) {
		p->eof = true;
		return true;
	}
	struct pollfd pfd = {.fd = p->out, .events = POLLIN};
	int r = poll(&pfd, 1, timeout_ms < 0 ? 0 : (int)timeout_ms);
	if (r < 0 && errno == EINTR)
		return true;
	if (r <= 0)
		return false;
	if (p->len == sizeof p->buf) {
		/* A line longer than the buffer: drop what is there. */
		p->len = 0;
	}
	ssize_t n = read(p->out, p->buf + p->len, sizeof p->buf - p->len);
	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		p->eof = true;
	else
		p->len += (size_t)n;
	return true;
}

/* take_line removes the first complete line from the buffer into line
 * (NUL-terminated, truncated to n). Returns false when there is none. */
static bool take_line(it_proc *p, char *line, size_t n)
{
	char *nl = memchr(p->buf, '\n', p->len);
	if (!nl)
		return false;
	size_t len = (size_t)(nl - p->buf);
	size_t c = len < n - 1 ? len : n - 1;
	memcpy(line, p->buf, c);
	line[c] = '\0';
	memmove(p->buf, nl + 1, p->len - len - 1);
	p->len -= len + 1;
	return true;
}

bool it_proc_wait_line(it_proc *p, const char *prefix, int64_t timeout_ms, char *line, size_t n)
{
	int64_t end = it_now_ms() + timeout_ms;
	char tmp[1024];
	for (;;) {
		while (take_line(p, tmp, sizeof tmp))
			if (!strncmp(tmp, prefix, strlen(prefix))) {
				if (line)
					snprintf(line, n, "%s", tmp);
				return true;
			}
		if (p->eof)
			return false;
		int64_t left = end - it_now_ms();
		if (left <= 0 || !fill(p, left))
			return false;
	}
}

int it_proc_count_lines(it_proc *p, const char *prefix)
{
	while (!p->eof) {
		struct pollfd pfd = {.fd = p->out, .events = POLLIN};
		if (p->out < 0 || poll(&pfd, 1, 0) <= 0)
			break;
		fill(p, 0);
		if (p->len == sizeof p->buf)
			break; /* count what we have; the rest next time */
	}
	int count = 0;
	char tmp[1024];
	while (take_line(p, tmp, sizeof tmp))
		count += !strncmp(tmp, prefix, strlen(prefix));
	return count;
}

void it_proc_signal(it_proc *p, int sig)
{
	if (p && p->pid && !p->reaped)
		kill(p->pid, sig);
}

bool it_proc_wait_exit(it_proc *p, int64_t timeout_ms)
{
	if (p->reaped)
		return true;
	int64_t end = it_now_ms() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(p->pid, &p->status, WNOHANG);
		if (r == p->pid) {
			p->reaped = true;
			return true;
		}
		ck_assert_msg(r == 0, "waitpid %s: %s", p->name, strerror(errno));
		int64_t left = end - it_now_ms();
		if (left <= 0)
			return false;
		if (p->pidfd >= 0) {
			struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
			poll(&pfd, 1, (int)left);
		} else {
			/* No pidfd (old kernel): a bounded re-check, not a
			 * readiness guess. */
			poll(NULL, 0, left < 10 ? (int)left : 10);
		}
	}
}

void it_proc_kill(it_proc *p)
{
	it_proc_signal(p, SIGKILL);
	ck_assert_msg(it_proc_wait_exit(p, it_ms(10000)), "%s did not die on SIGKILL", p->name);
}

void it_proc_release(it_proc *p)
{
	ck_assert_msg(p->reaped, "%s released before it was reaped", p->name);
	proc_close(p);
	p->pid = 0;
}

int it_exit_code(const it_proc *p)
{
	if (WIFEXITED(p->status))
		return WEXITSTATUS(p->status);
	if (WIFSIGNALED(p->status))
		return 128 + WTERMSIG(p->status);
	return -1;
}

bool it_file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

long it_proc_status_kb(pid_t pid, const char *name)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kb = -1;
	size_t n = strlen(name);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, name, n) && line[n] == ':')
			kb = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return kb;
}

Suite *it_suite(const char *name, const it_case *cases, size_t n, void (*teardown)(void),
                int64_t timeout_s)
{
	Suite *s = suite_create(name);
	for (size_t i = 0; i < n; i++) {
		TCase *tc = tcase_create(cases[i].name);
		if (teardown)
			tcase_add_checked_fixture(tc, NULL, teardown);
		tcase_set_timeout(tc, (double)it_ms(timeout_s));
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

static void dump_file(const char *path, int max_lines)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	/* Keep the last max_lines lines in a ring. */
	char **ring = calloc((size_t)max_lines, sizeof *ring);
	char line[1024];
	long n = 0;
	while (ring && fgets(line, sizeof line, f)) {
		free(ring[n % max_lines]);
		ring[n % max_lines] = strdup(line);
		n++;
	}
	fclose(f);
	fprintf(stderr, "---- %s (last %d lines) ----\n", path, max_lines);
	for (long i = n > max_lines ? n - max_lines : 0; ring && i < n; i++)
		fputs(ring[i % max_lines] ? ring[i % max_lines] : "", stderr);
	for (int i = 0; ring && i < max_lines; i++)
		free(ring[i]);
	free(ring);
}

void it_proc_dump(const it_proc *p)
{
	dump_file(p->errlog, 40);
}

/* ---- gateway and hosts ---------------------------------------------------------- */

it_proc *it_gateway_spawn(it_world *w, const char *name, const char *db, const char *const args[],
                          const char *const env[])
{
	char bin[PATH_MAX], dbpath[600], url[700];
	snprintf(bin, sizeof bin, "%s/gateway/spawn-gateway", it_build_dir());
	snprintf(url, sizeof url, "sqlite://%s", it_path(w, db, dbpath, sizeof dbpath));
	const char *argv[40] = {bin, "--listen",    "127.0.0.1:0", "--statestore",
	                        url, "--log-level", "info"};
	size_t n = 7;
	for (size_t i = 0; args && args[i]; i++) {
		ck_assert(n < 39);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return it_spawn(w, name, argv, env);
}

void it_gateway_start(it_world *w, it_gw *g, const char *name, const char *db,
                      const char *const args[], const char *const env[])
{
	memset(g, 0, sizeof *g);
	g->p = it_gateway_spawn(w, name, db, args, env);
	char line[256];
	if (!it_proc_wait_line(g->p, "listening ", it_ms(15000), line, sizeof line)) {
		it_proc_dump(g->p);
		ck_abort_msg("gateway %s did not print 'listening' in time", name);
	}
	/* "listening 127.0.0.1:0 PORT" */
	const char *sp = strrchr(line, ' ');
	g->port = sp ? atoi(sp + 1) : 0;
	ck_assert_msg(g->port > 0, "no port in '%s'", line);
	snprintf(g->target, sizeof g->target, "127.0.0.1:%d", g->port);
}

void it_gateway_stop(it_gw *g)
{
	it_proc_signal(g->p, SIGTERM);
	bool done = it_proc_wait_exit(g->p, it_ms(20000));
	if (!done || it_exit_code(g->p) != 0)
		it_proc_dump(g->p);
	ck_assert_msg(done, "gateway did not exit within 20 s of SIGTERM");
	ck_assert_int_eq(it_exit_code(g->p), 0);
}

it_proc *it_host_start(it_world *w, const char *name, const char *target, const char *const args[])
{
	char bin[PATH_MAX];
	snprintf(bin, sizeof bin, "%s/tests/integration/it-host", it_build_dir());
	const char *argv[32] = {bin, "--gateway", target};
	size_t n = 3;
	for (size_t i = 0; args && args[i]; i++) {
		ck_assert(n < 31);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	it_proc *p = it_spawn(w, name, argv, NULL);
	if (!it_proc_wait_line(p, "registered", it_ms(15000), NULL, 0)) {
		it_proc_dump(p);
		ck_abort_msg("host %s did not register in time", name);
	}
	return p;
}

void it_host_stop(it_proc *p)
{
	it_proc_signal(p, SIGTERM);
	bool done = it_proc_wait_exit(p, it_ms(20000));
	if (!done || it_exit_code(p) != 0)
		it_proc_dump(p);
	ck_assert_msg(done, "host %s did not exit within 20 s of SIGTERM", p->name);
	ck_assert_int_eq(it_exit_code(p), 0);
}

/* ---- the run ---------------------------------------------------------------------- */

static void dump_dir_logs(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n > 4 && !strcmp(e->d_name + n - 4, ".log")) {
			char path[PATH_MAX];
			int k = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
			if (k > 0 && (size_t)k < sizeof path)
				dump_file(path, 60);
		}
	}
	closedir(d);
}

/* reap_orphans waits (bounded) for every remaining child: after the
 * runner's own test processes, only orphans killed by SIGKILL are left. */
static void reap_orphans(void)
{
	int64_t end = it_now_ms() + 10000;
	for (;;) {
		int st;
		pid_t r = waitpid(-1, &st, WNOHANG);
		if (r > 0)
			continue;
		if (r < 0 || it_now_ms() >= end)
			return; /* ECHILD: none left */
		poll(NULL, 0, 10);
	}
}

int it_run(Suite *s)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(it_root, sizeof it_root, "%s/spawn-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(it_root)) {
		fprintf(stderr, "mkdtemp %s: %s\n", it_root, strerror(errno));
		return 1;
	}
	/* A killed host must not take the test process with it. */
	signal(SIGPIPE, SIG_IGN);
	/* Processes of a test that failed (Check ends it at once) die by their
	 * parent-death signal and are reparented here, to be reaped below
	 * rather than left to an init that may not reap. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	reap_orphans();
	int failed = srunner_ntests_failed(sr);
	if (failed) {
		TestResult **res = srunner_failures(sr);
		for (int i = 0; i < failed; i++) {
			char dir[PATH_MAX];
			snprintf(dir, sizeof dir, "%s/%s", it_root, tr_tcname(res[i]));
			fprintf(stderr, "==== logs of failed test %s ====\n", tr_tcname(res[i]));
			dump_dir_logs(dir);
		}
		free(res);
	}
	srunner_free(sr);
	if (keep_dirs())
		fprintf(stderr, "IT_KEEP: the tests' directories stay in %s\n", it_root);
	else
		rm_tree(it_root);
	return failed ? 1 : 0;
}

/* ---- TLS --------------------------------------------------------------------------------- */

const char *it_certs(it_world *w)
{
	if (w->certs[0])
		return w->certs;
	char dir[600], cmd[1600];
	snprintf(dir, sizeof dir, "%s/certs", w->dir);
	snprintf(cmd, sizeof cmd, "'%s/tests/tls/mkcerts.sh' '%s' >/dev/null", it_source_dir(),
	         dir);
	int rc = system(cmd);
	ck_assert_msg(rc == 0, "mkcerts.sh %s failed: %d", dir, rc);
	snprintf(w->certs, sizeof w->certs, "%s", dir);
	return w->certs;
}

const char *it_cert(it_world *w, const char *file, char *buf, size_t n)
{
	int k = snprintf(buf, n, "%s/%s", it_certs(w), file);
	ck_assert_msg(k > 0 && (size_t)k < n, "path too long");
	return buf;
}

/* it_channel_create lives in raw.c (tools build raw.c without the harness). */
