/* itdb.c - see itdb.h. Knows the row schema of docs/schema.md (table
 * spawn_actor_state) and the env file of scripts/db-start.sh. */
#include "itdb.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#ifdef IT_HAVE_POSTGRES
#include <libpq-fe.h>
#endif
#ifdef IT_HAVE_MARIADB
#include <mysql.h>
#endif

#include "store_peek.h"

const char *itdb_kind_name(itdb_kind k)
{
	switch (k) {
	case ITDB_POSTGRES:
		return "postgres";
	case ITDB_MARIADB:
		return "mariadb";
	default:
		return "sqlite";
	}
}

int itdb_kinds(const char *var, const char *def, itdb_kind out[3])
{
	const char *list = getenv(var);
	if (!list || !*list)
		list = def;
	int n = 0;
	static const itdb_kind all[] = {ITDB_SQLITE, ITDB_POSTGRES, ITDB_MARIADB};
	for (size_t i = 0; i < 3 && n < 3; i++) {
		const char *name = itdb_kind_name(all[i]);
		size_t len = strlen(name);
		for (const char *p = list; *p;) {
			const char *end = strchr(p, ',');
			size_t l = end ? (size_t)(end - p) : strlen(p);
			if (l == len && !strncmp(p, name, len)) {
				out[n++] = all[i];
				break;
			}
			p += l + (end != NULL);
		}
	}
	return n;
}

/* env_of: the fixture's variable of kind k with suffix ("URL", "STOP",
 * "START"), or NULL. */
static const char *env_of(itdb_kind k, const char *suffix)
{
	char var[64];
	snprintf(var, sizeof var, "SPAWN_TEST_%s_%s", k == ITDB_POSTGRES ? "POSTGRES" : "MARIADB",
	         suffix);
	const char *v = getenv(var);
	return v && *v ? v : NULL;
}

static bool driver_built(itdb_kind k)
{
	switch (k) {
	case ITDB_SQLITE:
		return true;
	case ITDB_POSTGRES:
#ifdef IT_HAVE_POSTGRES
		return true;
#else
		return false;
#endif
	default:
#ifdef IT_HAVE_MARIADB
		return true;
#else
		return false;
#endif
	}
}

bool itdb_usable(itdb_kind k)
{
	if (k == ITDB_SQLITE)
		return true;
	const char *why = NULL;
	if (!driver_built(k))
		why = "its driver was not built";
	else if (!env_of(k, "URL") || !env_of(k, "STOP") || !env_of(k, "START"))
		why = "no server in the environment (run through tests/store/with-db.sh)";
	if (!why)
		return true;
	const char *ci = getenv("CI");
	ck_assert_msg(!(ci && !strcmp(ci, "true")), "%s: %s (CI=true: failing)", itdb_kind_name(k),
	              why);
	fprintf(stderr, "SKIPPED: %s: %s\n", itdb_kind_name(k), why);
	return false;
}

const char *itdb_unique(char *buf, size_t n, const char *prefix)
{
	static unsigned seq;
	snprintf(buf, n, "%s-%ld-%u", prefix, (long)getpid(), seq++);
	return buf;
}

/* ---- raw SQL per driver ---------------------------------------------------------- */

/* Each returns the rows changed (or, with out, stores the first column of
 * the first row, 0 without a row), or -1 on error. */

static long long sqlite_raw(const char *path, const char *sql, long long *out)
{
	sqlite3 *c = NULL;
	sqlite3_stmt *st = NULL;
	long long rc = -1;
	if (sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_busy_timeout(c, 5000) == SQLITE_OK &&
	    sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK) {
		int s = sqlite3_step(st);
		if (s == SQLITE_ROW) {
			if (out)
				*out = sqlite3_column_int64(st, 0);
			rc = 0;
		} else if (s == SQLITE_DONE) {
			if (out)
				*out = 0;
			rc = sqlite3_changes(c);
		}
	}
	if (rc < 0)
		fprintf(stderr, "itdb: sqlite: %s: %s\n", c ? sqlite3_errmsg(c) : "oom", sql);
	sqlite3_finalize(st);
	sqlite3_close(c);
	return rc;
}

#ifdef IT_HAVE_POSTGRES
static void pg_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* NOTICEs of DROP ... CASCADE are expected */
}

static long long pg_raw(const char *url, const char *sql, long long *out)
{
	PGconn *pc = PQconnectdb(url);
	long long rc = -1;
	if (PQstatus(pc) != CONNECTION_OK) {
		fprintf(stderr, "itdb: postgres: connect: %s", PQerrorMessage(pc));
		PQfinish(pc);
		return -1;
	}
	PQsetNoticeProcessor(pc, pg_quiet, NULL);
	PGresult *r = PQexec(pc, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		if (out)
			*out = PQntuples(r) > 0 ? atoll(PQgetvalue(r, 0, 0)) : 0;
		rc = 0;
	} else if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		if (out)
			*out = 0;
		rc = atoll(PQcmdTuples(r));
	} else {
		fprintf(stderr, "itdb: postgres: %s: %s\n", PQerrorMessage(pc), sql);
	}
	PQclear(r);
	PQfinish(pc);
	return rc;
}
#endif

#ifdef IT_HAVE_MARIADB
/* The test's own reading of mariadb://user:password@host:port/db (no
 * percent escapes: the URLs come from scripts/db-start.sh). */
typedef struct my_parts {
	char user[128], pass[128], host[128], db[128];
	unsigned port;
} my_parts;

static bool my_parse(const char *url, my_parts *m)
{
	memset(m, 0, sizeof *m);
	m->port = 3306;
	const char *p = strstr(url, "://");
	if (!p)
		return false;
	p += 3;
	const char *at = strrchr(p, '@'), *slash;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		snprintf(m->user, sizeof m->user, "%.*s", (int)((colon ? colon : at) - p), p);
		if (colon)
			snprintf(m->pass, sizeof m->pass, "%.*s", (int)(at - colon - 1), colon + 1);
		p = at + 1;
	}
	if (!(slash = strchr(p, '/')))
		return false;
	const char *colon = memchr(p, ':', (size_t)(slash - p));
	snprintf(m->host, sizeof m->host, "%.*s", (int)((colon ? colon : slash) - p), p);
	if (colon)
		m->port = (unsigned)atoi(colon + 1);
	const char *q = strchr(slash, '?');
	snprintf(m->db, sizeof m->db, "%.*s", (int)(q ? q - slash - 1 : (long)strlen(slash + 1)),
	         slash + 1);
	return true;
}

static long long my_raw(const char *url, const char *sql, long long *out)
{
	my_parts m;
	if (!my_parse(url, &m))
		return -1;
	MYSQL *db = mysql_init(NULL);
	long long rc = -1;
	if (db && mysql_real_connect(db, m.host, m.user, m.pass, m.db, m.port, NULL, 0) &&
	    mysql_query(db, sql) == 0) {
		MYSQL_RES *res = mysql_store_result(db);
		if (res) {
			MYSQL_ROW row = mysql_fetch_row(res);
			if (out)
				*out = row && row[0] ? atoll(row[0]) : 0;
			mysql_free_result(res);
			rc = 0;
		} else if (mysql_field_count(db) == 0) {
			if (out)
				*out = 0;
			rc = (long long)mysql_affected_rows(db);
		}
	}
	if (rc < 0)
		fprintf(stderr, "itdb: mariadb: %s: %s\n", db ? mysql_error(db) : "oom", sql);
	mysql_close(db);
	return rc;
}
#endif

/* raw runs sql on url (a networked server) or the sqlite file. */
static long long raw(const itdb *d, const char *url, const char *sql, long long *out)
{
	switch (d->kind) {
	case ITDB_SQLITE:
		return sqlite_raw(d->path, sql, out);
#ifdef IT_HAVE_POSTGRES
	case ITDB_POSTGRES:
		return pg_raw(url, sql, out);
#endif
#ifdef IT_HAVE_MARIADB
	case ITDB_MARIADB:
		return my_raw(url, sql, out);
#endif
	default:
		return -1;
	}
}

bool itdb_exec(const itdb *d, const char *sql)
{
	return raw(d, d->url, sql, NULL) >= 0;
}

long long itdb_query_int(const itdb *d, const char *sql)
{
	long long v = -1;
	if (raw(d, d->url, sql, &v) < 0)
		return -1;
	return v;
}

long long itdb_revision(const itdb *d, const char *system, const char *name)
{
	char sql[512];
	snprintf(sql, sizeof sql,
	         "SELECT revision FROM spawn_actor_state WHERE system = '%s' AND name = '%s'",
	         system, name);
	return itdb_query_int(d, sql);
}

static bool update_one(const itdb *d, const char *set, const char *system, const char *name)
{
	char sql[1024];
	snprintf(sql, sizeof sql,
	         "UPDATE spawn_actor_state SET %s WHERE system = '%s' AND name = '%s'", set, system,
	         name);
	return raw(d, d->url, sql, NULL) == 1;
}

bool itdb_flip_byte(const itdb *d, const char *system, const char *name)
{
	switch (d->kind) {
	case ITDB_POSTGRES:
		return update_one(d, "data = set_byte(data, 0, get_byte(data, 0) # 1)", system,
		                  name);
	case ITDB_MARIADB:
		return update_one(d, "data = CONCAT(CHAR(ASCII(data) ^ 1), SUBSTRING(data, 2))",
		                  system, name);
	default:
		/* SQLite's || makes text of blobs: flip the byte in C. */
		return it_store_tamper(d->path, system, name);
	}
}

bool itdb_truncate(const itdb *d, const char *system, const char *name, int len)
{
	char set[128];
	snprintf(set, sizeof set, "data = %s(data, 1, %d)",
	         d->kind == ITDB_SQLITE ? "substr" : "substring", len);
	if (d->kind == ITDB_POSTGRES)
		snprintf(set, sizeof set, "data = substring(data from 1 for %d)", len);
	return update_one(d, set, system, name);
}

bool itdb_set_key_id(const itdb *d, const char *system, const char *name, const char *key_id)
{
	char set[128];
	snprintf(set, sizeof set, "key_id = '%s'", key_id);
	return update_one(d, set, system, name);
}

/* ---- namespaces ------------------------------------------------------------------- */

/* ns_create makes the namespace and the URL that selects it. */
static bool ns_create(itdb *d)
{
	char sql[256];
	if (d->kind == ITDB_POSTGRES) {
		snprintf(sql, sizeof sql, "CREATE SCHEMA %s", d->ns);
		if (raw(d, d->server, sql, NULL) < 0)
			return false;
		snprintf(d->url, sizeof d->url, "%s%soptions=-csearch_path%%3D%s", d->server,
		         strchr(d->server, '?') ? "&" : "?", d->ns);
		return true;
	}
	snprintf(sql, sizeof sql, "CREATE DATABASE `%s`", d->ns);
	if (raw(d, d->server, sql, NULL) < 0)
		return false;
	/* mariadb://user:pw@host:port/DB[?...] -> .../NS[?...] */
	const char *slash = strchr(strstr(d->server, "://") + 3, '/');
	const char *q = strchr(slash, '?');
	snprintf(d->url, sizeof d->url, "%.*s/%s%s", (int)(slash - d->server), d->server, d->ns,
	         q ? q : "");
	return true;
}

void itdb_init(itdb *d, const it_world *w, itdb_kind k, const char *file)
{
	memset(d, 0, sizeof *d);
	d->kind = k;
	d->w = w;
	if (k == ITDB_SQLITE) {
		it_path(w, file, d->path, sizeof d->path);
		snprintf(d->url, sizeof d->url, "sqlite://%s", d->path);
		return;
	}
	ck_assert_msg(itdb_usable(k), "itdb_init on %s without a server", itdb_kind_name(k));
	const char *url = env_of(k, "URL");
	ck_assert_ptr_nonnull(url);
	snprintf(d->server, sizeof d->server, "%s", url);
	static unsigned n;
	/* MariaDB: the user may create databases named spawn_test*. */
	snprintf(d->ns, sizeof d->ns, "%s_it_%ld_%u", k == ITDB_MARIADB ? "spawn_test" : "spawn",
	         (long)getpid(), n++);
	if (ns_create(d))
		return;
	/* Maybe down after a test that failed mid-outage: start it, once. */
	fprintf(stderr, "itdb: %s: cannot create %s; starting the server\n", itdb_kind_name(k),
	        d->ns);
	itdb_server_start((it_world *)w, d);
	ck_assert_msg(ns_create(d), "%s: cannot create namespace %s", itdb_kind_name(k), d->ns);
}

void itdb_fini(itdb *d)
{
	if (d->kind != ITDB_SQLITE && d->ns[0]) {
		char sql[256];
		if (d->kind == ITDB_POSTGRES)
			snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", d->ns);
		else
			snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS `%s`", d->ns);
		raw(d, d->server, sql, NULL);
	}
	memset(d, 0, sizeof *d);
}

/* port_span finds the port of scheme://user:pw@host:PORT/...: *at its
 * offset and *len its length; false when there is none. */
static bool port_span(const char *url, size_t *at, size_t *len)
{
	const char *p = strstr(url, "://");
	if (!p)
		return false;
	p += 3;
	const char *slash = strchr(p, '/');
	if (!slash)
		return false;
	const char *host = p;
	for (const char *q = p; q < slash; q++)
		if (*q == '@')
			host = q + 1;
	const char *colon = memchr(host, ':', (size_t)(slash - host));
	if (!colon)
		return false;
	*at = (size_t)(colon + 1 - url);
	*len = (size_t)(slash - colon - 1);
	return true;
}

int itdb_server_port(const itdb *d)
{
	size_t at, len;
	if (d->kind == ITDB_SQLITE || !port_span(d->server, &at, &len))
		return 0;
	return atoi(d->server + at);
}

void itdb_via_port(const itdb *d, int port, char *out, size_t n)
{
	size_t at, len;
	ck_assert_msg(d->kind != ITDB_SQLITE && port_span(d->url, &at, &len), "no port in the URL");
	int k = snprintf(out, n, "%.*s%d%s", (int)at, d->url, port, d->url + at + len);
	ck_assert_msg(k > 0 && (size_t)k < n, "URL too long");
}

/* ---- the server ------------------------------------------------------------------------ */

/* ---- the launcher ---------------------------------------------------------------------------- */

typedef struct launch_req {
	uint64_t id;
	char cmd[1024];
	char log[640];
} launch_req;

typedef struct launch_rep {
	uint64_t id;
	int status; /* wait status; -1 when the command could not start */
} launch_rep;

/* The runner's end of the launcher's socket; tests inherit it. */
static int launcher_fd = -1;

static bool full_io(int fd, void *buf, size_t n, bool writing)
{
	char *p = buf;
	while (n) {
		ssize_t k = writing ? write(fd, p, n) : read(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

static void launcher_main(int fd)
{
	signal(SIGPIPE, SIG_IGN);
	/* Hold nothing of the runner's: not ctest's output pipe, no other fd. */
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	if (fd != 3 && dup2(fd, 3) == 3)
		fd = 3;
	syscall(SYS_close_range, 4U, ~0U, 0U);
	launch_req rq;
	while (full_io(fd, &rq, sizeof rq, false)) {
		rq.cmd[sizeof rq.cmd - 1] = rq.log[sizeof rq.log - 1] = '\0';
		launch_rep rp = {rq.id, -1};
		pid_t pid = fork();
		if (pid == 0) {
			int in = open("/dev/null", O_RDONLY);
			int out = open(rq.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
			    dup2(out, 2) < 0)
				_exit(126);
			syscall(SYS_close_range, 3U, ~0U, 0U);
			execl("/bin/sh", "sh", "-c", rq.cmd, (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			while (waitpid(pid, &rp.status, 0) < 0 && errno == EINTR)
				;
		if (!full_io(fd, &rp, sizeof rp, true))
			break;
	}
	_exit(0);
}

void itdb_launcher_start(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		perror("itdb: socketpair");
		return;
	}
	pid_t mid = fork();
	if (mid == 0) {
		/* Orphan the launcher now, while the runner is no subreaper. */
		close(sv[0]);
		pid_t l = fork();
		if (l == 0)
			launcher_main(sv[1]);
		_exit(l > 0 ? 0 : 1);
	}
	close(sv[1]);
	int st;
	if (mid < 0 || waitpid(mid, &st, 0) != mid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "itdb: no launcher; commands run as children of the tests\n");
		close(sv[0]);
		return;
	}
	launcher_fd = sv[0];
}

/* launch runs cmd in the launcher; returns its wait status, or -2 when
 * there is no launcher, -3 on timeout. */
static int launch(const char *cmd, const char *log, int64_t timeout_ms)
{
	if (launcher_fd < 0)
		return -2;
	static unsigned n;
	launch_req rq;
	memset(&rq, 0, sizeof rq);
	rq.id = ((uint64_t)getpid() << 32) | ++n;
	snprintf(rq.cmd, sizeof rq.cmd, "%s", cmd);
	snprintf(rq.log, sizeof rq.log, "%s", log);
	ck_assert_msg(full_io(launcher_fd, &rq, sizeof rq, true), "itdb: the launcher is gone");
	int64_t end = it_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = end - it_now_ms();
		struct pollfd pfd = {.fd = launcher_fd, .events = POLLIN};
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
			return -3;
		launch_rep rp;
		ck_assert_msg(full_io(launcher_fd, &rp, sizeof rp, false),
		              "itdb: the launcher is gone");
		/* Replies to a test that timed out before are dropped. */
		if (rp.id == rq.id)
			return rp.status;
	}
}

/* run_cmd runs cmd with /bin/sh (in the launcher when there is one) and
 * asserts it exits 0 in time. As a child of the test, its slot in the world
 * is freed again afterwards (a test may restart a server often). */
static void run_cmd(it_world *w, const char *name, const char *cmd)
{
	ck_assert_msg(cmd != NULL, "%s: no command in the environment", name);
	char file[64], log[600];
	snprintf(file, sizeof file, "%s.log", name);
	it_path(w, file, log, sizeof log);
	int st = launch(cmd, log, it_ms(120000));
	if (st != -2) {
		ck_assert_msg(st != -3, "%s did not finish in time", cmd);
		bool ok = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
		if (!ok) {
			it_proc tmp;
			memset(&tmp, 0, sizeof tmp);
			snprintf(tmp.errlog, sizeof tmp.errlog, "%s", log);
			it_proc_dump(&tmp);
		}
		ck_assert_msg(ok, "%s failed (wait status %d)", cmd, st);
		return;
	}
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	it_proc *p = it_spawn(w, name, argv, NULL);
	bool done = it_proc_wait_exit(p, it_ms(120000));
	if (!done || it_exit_code(p) != 0)
		it_proc_dump(p);
	ck_assert_msg(done, "%s did not finish in time", cmd);
	ck_assert_msg(it_exit_code(p) == 0, "%s exited %d", cmd, it_exit_code(p));
	if (p->out >= 0)
		close(p->out);
	if (p->pidfd >= 0)
		close(p->pidfd);
	memset(p, 0, sizeof *p);
	p->out = p->pidfd = -1;
}

void itdb_server_stop(it_world *w, const itdb *d)
{
	ck_assert(d->kind != ITDB_SQLITE);
	char name[32];
	snprintf(name, sizeof name, "%s-stop", itdb_kind_name(d->kind));
	run_cmd(w, name, env_of(d->kind, "STOP"));
}

void itdb_server_start(it_world *w, const itdb *d)
{
	ck_assert(d->kind != ITDB_SQLITE);
	char name[32];
	snprintf(name, sizeof name, "%s-start", itdb_kind_name(d->kind));
	run_cmd(w, name, env_of(d->kind, "START"));
}

/* ---- gateways ---------------------------------------------------------------------------- */

it_proc *itdb_gateway_spawn(it_world *w, const itdb *d, const char *name, const char *const args[],
                            const char *const env[])
{
	char bin[PATH_MAX];
	snprintf(bin, sizeof bin, "%s/gateway/spawn-gateway", it_build_dir());
	const char *argv[40] = {bin,    "--listen",    "127.0.0.1:0", "--statestore",
	                        d->url, "--log-level", "info"};
	size_t n = 7;
	for (size_t i = 0; args && args[i]; i++) {
		ck_assert(n < 39);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	static const char *const key_env[] = {ITDB_KEY_ENV, NULL};
	return it_spawn(w, name, argv, env ? env : key_env);
}

void itdb_gateway_start(it_world *w, const itdb *d, it_gw *g, const char *name,
                        const char *const args[], const char *const env[])
{
	memset(g, 0, sizeof *g);
	g->p = itdb_gateway_spawn(w, d, name, args, env);
	char line[256];
	if (!it_proc_wait_line(g->p, "listening ", it_ms(30000), line, sizeof line)) {
		it_proc_dump(g->p);
		ck_abort_msg("gateway %s (%s) did not print 'listening' in time", name,
		             itdb_kind_name(d->kind));
	}
	const char *sp = strrchr(line, ' ');
	g->port = sp ? atoi(sp + 1) : 0;
	ck_assert_msg(g->port > 0, "no port in '%s'", line);
	snprintf(g->target, sizeof g->target, "127.0.0.1:%d", g->port);
}

/* ---- suites ---------------------------------------------------------------------------- */

const char *itdb_case_name(char *buf, size_t n, const char *name, itdb_kind k)
{
	snprintf(buf, n, "%s_%s", name, itdb_kind_name(k));
	return buf;
}

void itdb_add_cases(Suite *s, const itdb_case *cases, size_t n, const char *def,
                    void (*teardown)(void))
{
	/* Check keeps the name pointer: static storage, alive for the run. */
	static char names[48][96];
	static size_t used;
	itdb_kind kinds[3];
	int nk = itdb_kinds("IT_STORES", def, kinds);
	for (size_t i = 0; i < n; i++)
		for (int j = 0; j < nk; j++) {
			if (used == sizeof names / sizeof names[0])
				abort(); /* a suite with more cases than this table */
			char *name = names[used++];
			itdb_case_name(name, sizeof names[0], cases[i].name, kinds[j]);
			TCase *tc = tcase_create(name);
			tcase_add_checked_fixture(tc, NULL, teardown);
			tcase_set_timeout(tc, (double)it_ms((int64_t)cases[i].timeout));
			tcase_add_loop_test(tc, cases[i].test, (int)kinds[j], (int)kinds[j] + 1);
			suite_add_tcase(s, tc);
		}
}
