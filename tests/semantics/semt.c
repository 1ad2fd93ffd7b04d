/* semt.c - see semt.h. */
#include "semt.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

/* store_init chooses g's statestore from the environment (semt.h). */
static void store_init(it_world *w, semt_gw *g, const char *db)
{
	const char *url = getenv("SPAWN_SEM_STORE_URL");
	const char *kind = getenv("SPAWN_SEM_STORE");
	if (url && *url) {
		if (strncmp(url, "postgres", 8) != 0) {
			/* Any other URL: as it is. */
			g->fixed_url = true;
			g->db.kind = strncmp(url, "sqlite", 6) ? ITDB_MARIADB : ITDB_SQLITE;
			snprintf(g->db.url, sizeof g->db.url, "%s", url);
			return;
		}
		/* itdb makes its namespaces on the server of SPAWN_TEST_POSTGRES_URL
		 * and wants the server's stop / start commands: this server is not
		 * ours to stop or start ("false": itdb's restart attempt fails). */
		ck_assert_int_eq(setenv("SPAWN_TEST_POSTGRES_URL", url, 1), 0);
		ck_assert_int_eq(setenv("SPAWN_TEST_POSTGRES_STOP", "false", 0), 0);
		ck_assert_int_eq(setenv("SPAWN_TEST_POSTGRES_START", "false", 0), 0);
		kind = "postgres";
	}
	if (kind && !strcmp(kind, "postgres")) {
		ck_assert_msg(itdb_usable(ITDB_POSTGRES),
		              "SPAWN_SEM_STORE=postgres: no server (SPAWN_TEST_POSTGRES_URL) "
		              "or no postgres driver");
		itdb_init(&g->db, w, ITDB_POSTGRES, NULL);
		return;
	}
	ck_assert_msg(!kind || !*kind || !strcmp(kind, "sqlite"), "SPAWN_SEM_STORE=%s: unknown",
	              kind);
	itdb_init(&g->db, w, ITDB_SQLITE, db);
}

static void start(it_world *w, semt_gw *g, const char *name, const char *const extra[],
                  const char *const env[])
{
	const char *args[24] = {"--listen", g->host_url};
	size_t n = 2;
	for (size_t i = 0; extra && extra[i]; i++) {
		ck_assert(n < 23);
		args[n++] = extra[i];
	}
	args[n] = NULL;
	/* The key: the gateway needs one for a non-file store; the suites'
	 * fresh SQLite files go without. */
	const char *envv[16];
	size_t k = 0;
	if (g->db.kind != ITDB_SQLITE || g->fixed_url)
		envv[k++] = ITDB_KEY_ENV;
	for (size_t i = 0; env && env[i]; i++) {
		ck_assert(k < 15);
		envv[k++] = env[i];
	}
	envv[k] = NULL;
	itdb_gateway_start(w, &g->db, &g->gw, name, args, envv);
}

void semt_gateway_start_env(it_world *w, semt_gw *g, const char *name, const char *db,
                            const char *const extra[], const char *const env[])
{
	memset(g, 0, sizeof *g);
	it_path(w, "gw.sock", g->sock, sizeof g->sock);
	snprintf(g->host_url, sizeof g->host_url, "unix:%s", g->sock);
	store_init(w, g, db);
	start(w, g, name, extra, env);
}

void semt_gateway_start(it_world *w, semt_gw *g, const char *name, const char *db,
                        const char *const extra[])
{
	semt_gateway_start_env(w, g, name, db, extra, NULL);
}

void semt_gateway_done(semt_gw *g)
{
	it_gateway_stop(&g->gw);
	if (!g->fixed_url)
		itdb_fini(&g->db);
}

void semt_gateway_restart(it_world *w, semt_gw *g, const char *name, const char *db,
                          const char *const extra[])
{
	(void)db; /* the store was chosen once, by semt_gateway_start */
	it_gateway_stop(&g->gw);
	unlink(g->sock);
	start(w, g, name, extra, NULL);
}

void semt_gateway_expect_exit(semt_gw *g, int code, int64_t ms)
{
	it_proc *p = g->gw.p;
	bool done = it_proc_wait_exit(p, it_ms(ms));
	if (!done || it_exit_code(p) != code)
		it_proc_dump(p);
	ck_assert_msg(done, "gateway %s did not exit within %lld ms", p->name,
	              (long long)it_ms(ms));
	ck_assert_msg(it_exit_code(p) == code, "gateway %s exited %d, not %d", p->name,
	              it_exit_code(p), code);
}

void semt_gateway_respawn(it_world *w, semt_gw *g, const char *name, const char *const extra[],
                          const char *const env[])
{
	ck_assert_msg(g->gw.p->reaped, "gateway %s still runs", g->gw.p->name);
	/* A crashed gateway leaves its socket file behind. */
	unlink(g->sock);
	start(w, g, name, extra, env);
}

void semt_gateway_crashed(it_world *w, semt_gw *g, int code, int64_t ms, const char *name,
                          const char *const extra[], const char *const env[])
{
	semt_gateway_expect_exit(g, code, ms);
	semt_gateway_respawn(w, g, name, extra, env);
}

/* log_scan counts the lines of the file path containing needle and copies
 * the first into line (when not NULL). */
static int log_scan(const char *path, const char *needle, char *line, size_t n)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	int count = 0;
	while ((len = getline(&buf, &cap, f)) >= 0) {
		if (!strstr(buf, needle))
			continue;
		if (!count++ && line) {
			if (len > 0 && buf[len - 1] == '\n')
				buf[len - 1] = '\0';
			snprintf(line, n, "%s", buf);
		}
	}
	free(buf);
	fclose(f);
	return count;
}

bool semt_log_wait(const it_proc *p, const char *needle, int64_t ms, char *line, size_t n)
{
	int64_t end = it_now_ms() + it_ms(ms);
	/* The watch is set before each scan, so no write between a scan and
	 * the wait goes unnoticed. */
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	int wd = ifd >= 0 ? inotify_add_watch(ifd, p->errlog, IN_MODIFY) : -1;
	bool found = false;
	for (;;) {
		if (log_scan(p->errlog, needle, line, n) > 0) {
			found = true;
			break;
		}
		int64_t left = end - it_now_ms();
		if (left <= 0)
			break;
		if (wd >= 0) {
			struct pollfd pfd = {.fd = ifd, .events = POLLIN};
			if (poll(&pfd, 1, (int)left) > 0) {
				char ev[4096];
				while (read(ifd, ev, sizeof ev) > 0)
					;
			}
		} else {
			/* No inotify: a bounded re-check, not a readiness guess. */
			poll(NULL, 0, left < 20 ? (int)left : 20);
		}
	}
	if (ifd >= 0)
		close(ifd);
	return found;
}

void semt_expect_log(const it_proc *p, const char *needle, int64_t ms, char *line, size_t n)
{
	if (!semt_log_wait(p, needle, ms, line, n)) {
		it_proc_dump(p);
		ck_abort_msg("%s logged no line with '%s' within %lld ms", p->name, needle,
		             (long long)it_ms(ms));
	}
}

int semt_log_count(const it_proc *p, const char *needle)
{
	return log_scan(p->errlog, needle, NULL, 0);
}

int64_t semt_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wait_registered(it_proc *p, const char *what)
{
	if (!it_proc_wait_line(p, "registered", it_ms(30000), NULL, 0)) {
		it_proc_dump(p);
		ck_abort_msg("%s did not register in time", what);
	}
}

it_proc *semt_c_host(it_world *w, const char *name, const semt_gw *g, const char *system,
                     const char *const extra[])
{
	char bin[PATH_MAX];
	snprintf(bin, sizeof bin, "%s/tests/semantics/sem-host", it_build_dir());
	const char *argv[24] = {bin, "--gateway", g->host_url, "--system", system};
	size_t n = 5;
	for (size_t i = 0; extra && extra[i]; i++) {
		ck_assert(n < 23);
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	it_proc *p = it_spawn(w, name, argv, NULL);
	wait_registered(p, name);
	return p;
}

it_proc *semt_py_host(it_world *w, const char *name, const semt_gw *g, const char *system)
{
	char script[PATH_MAX], proto_out[PATH_MAX], sem_out[PATH_MAX];
	snprintf(script, sizeof script, "%s/tests/semantics/sem_host.py", it_source_dir());
	snprintf(proto_out, sizeof proto_out, "%s/python-gen", it_build_dir());
	snprintf(sem_out, sizeof sem_out, "%s/tests/semantics/gen/py", it_build_dir());
	ck_assert_msg(access(proto_out, R_OK) == 0, "%s missing (target python_proto)", proto_out);
	ck_assert_msg(access(sem_out, R_OK) == 0, "%s missing (target sem_py)", sem_out);
	const char *argv[] = {"/usr/bin/python3", script,  "--gateway",   g->host_url,
	                      "--system",         system,  "--proto-out", proto_out,
	                      "--sem-out",        sem_out, NULL};
	const char *env[] = {"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", NULL};
	it_proc *p = it_spawn(w, name, argv, env);
	wait_registered(p, name);
	return p;
}

void semt_host_stop(it_proc *p)
{
	it_proc_signal(p, SIGTERM);
	bool done = it_proc_wait_exit(p, it_ms(20000));
	if (!done || it_exit_code(p) != 0)
		it_proc_dump(p);
	ck_assert_msg(done, "host %s did not exit within 20 s of SIGTERM", p->name);
	ck_assert_int_eq(it_exit_code(p), 0);
}

void semt_expect_line(it_proc *p, const char *prefix, int64_t ms)
{
	if (!it_proc_wait_line(p, prefix, it_ms(ms), NULL, 0)) {
		it_proc_dump(p);
		ck_abort_msg("%s printed no line '%s...' within %lld ms", p->name, prefix,
		             (long long)it_ms(ms));
	}
}

void semt_expect_lines(it_proc *p, const char *const prefixes[], int64_t ms)
{
	size_t n = 0;
	while (prefixes[n])
		n++;
	ck_assert(n <= 16);
	bool seen[16] = {false};
	size_t left = n;
	int64_t end = it_now_ms() + it_ms(ms);
	char line[1024];
	while (left) {
		int64_t wait = end - it_now_ms();
		if (wait <= 0 || !it_proc_wait_line(p, "", wait, line, sizeof line)) {
			it_proc_dump(p);
			for (size_t i = 0; i < n; i++)
				if (!seen[i])
					ck_abort_msg("%s printed no line '%s...' within %lld ms",
					             p->name, prefixes[i], (long long)it_ms(ms));
		}
		for (size_t i = 0; i < n; i++)
			if (!seen[i] && !strncmp(line, prefixes[i], strlen(prefixes[i]))) {
				seen[i] = true;
				left--;
				break;
			}
	}
}

Sem__Msg semt_msg(const char *text, const char *to_actor, const char *to_action)
{
	Sem__Msg m = SEM__MSG__INIT;
	m.text = (char *)(text ? text : "");
	if (to_actor)
		m.to_actor = (char *)to_actor;
	if (to_action)
		m.to_action = (char *)to_action;
	return m;
}

int semt_invoke(spawn_client *c, const semt_call *call, semt_out *out, int64_t timeout_ms)
{
	memset(out, 0, sizeof *out);
	Sem__Msg empty = SEM__MSG__INIT;
	spawn_payload p;
	ck_assert_int_eq(spawn_payload_pack(&p, call->msg ? &call->msg->base : &empty.base),
	                 SPAWN_OK);
	spawn_request req = {.system = call->system,
	                     .actor = call->actor,
	                     .action = call->action,
	                     .payload = p,
	                     .metadata = call->md,
	                     .n_metadata = call->n_md,
	                     .async = call->async};
	spawn_reply r;
	out->status = spawn_client_invoke(c, &req, &r, it_ms(timeout_ms));
	spawn_payload_fini(&p);
	if (r.message)
		snprintf(out->msg, sizeof out->msg, "%s", r.message);
	if (out->status == SPAWN_OK && r.payload.type_url) {
		ProtobufCMessage *m = NULL;
		int rc = spawn_payload_unpack(&r.payload, &sem__msg__descriptor, &m);
		ck_assert_msg(rc == SPAWN_OK, "%s.%s replied %s, not a sem.Msg", call->actor,
		              call->action, r.payload.type_url);
		Sem__Msg *got = (Sem__Msg *)m;
		snprintf(out->text, sizeof out->text, "%s", got->text);
		snprintf(out->caller, sizeof out->caller, "%s", got->caller);
		out->n = got->n;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	spawn_reply_fini(&r);
	return out->status;
}
