/* store_conformance.c - one suite, written against gw_store *, run over
 * every driver URL this build can reach.
 *
 * Targets (the table grows with the drivers):
 *   sqlite     a fresh file in a temp dir per test (when GW_TEST_SQLITE)
 *   postgres   $SPAWN_TEST_POSTGRES_URL, when set
 *   mariadb    $SPAWN_TEST_MARIADB_URL, when set
 * A target whose variable is set must have its driver built: its tests then
 * fail at open with "no statestore driver for scheme ...".
 *
 * Each test is a loop test over the table (_i = target index) and uses its
 * own actor system name, so tests never collide on a shared server. Tests
 * that need raw access to the backing store (copy a row, read the file) run
 * only on targets that provide the hook.
 */
#include "store.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef GW_TEST_SQLITE
#include <sqlite3.h>
#endif

/* bytes 0..31 and 32..63 */
#define TEST_KEY  "t1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define OTHER_KEY "t1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define TYPE_URL  "type.googleapis.com/example.Counter"
#define MARKER    "SPAWN-PLAINTEXT-MARKER-7f3a"

typedef struct ctx ctx;

typedef struct target {
	const char *name;
	char url[PATH_MAX + 32]; /* networked: from the environment */
	bool file_backed;        /* URL built per test in a fresh temp dir */
	const char *keyless_url; /* a URL of this driver with no file behind it */
	/* Raw access behind the driver's back, for the tamper tests; NULL
	 * until a target provides it (then those tests pass trivially).
	 * raw_copy: put the sealed columns of (fsys, fname) on (tsys, tname),
	 *           creating that row if needed.
	 * raw_truncate: cut (sys, name)'s ciphertext to len bytes.
	 * raw_fail_on: make every later write of actor `name` fail inside the
	 *           backend (an injected storage error). */
	bool (*raw_copy)(const ctx *c, const char *fsys, const char *fname, const char *tsys,
	                 const char *tname);
	bool (*raw_truncate)(const ctx *c, const char *sys, const char *name, int len);
	bool (*raw_fail_on)(const ctx *c, const char *name);
} target;

struct ctx {
	const target *t;
	char dir[256]; /* under root: short */
	char db[PATH_MAX];
	char url[PATH_MAX + 32];
	char sys[64];
	char err[512];
	gw_store *s;
};

static target targets[4];
static int ntargets;
static char root[] = "/tmp/spawn-store-XXXXXX";

/* ---- helpers ------------------------------------------------------------ */

static gw_err try_open(ctx *c, const char *url, const char *keys, gw_store **out)
{
	gw_store_opts o = {.keys = keys, .err = c->err, .errlen = sizeof c->err};
	c->err[0] = '\0';
	return gw_store_open(out, url, &o);
}

static gw_store *must_open(ctx *c, const char *keys)
{
	gw_store *s = NULL;
	gw_err e = try_open(c, c->url, keys, &s);
	ck_assert_msg(e == GW_OK, "[%s] open %s: %s: %s", c->t->name, c->url, gw_err_name(e),
	              c->err);
	return s;
}

static void ctx_open(ctx *c, int i)
{
	static unsigned seq;
	struct timespec ts;
	memset(c, 0, sizeof *c);
	c->t = &targets[i];
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(c->sys, sizeof c->sys, "conf-%ld-%ld-%u", (long)getpid(), (long)ts.tv_nsec, seq++);
	if (c->t->file_backed) {
		snprintf(c->dir, sizeof c->dir, "%s/t-XXXXXX", root);
		ck_assert_ptr_nonnull(mkdtemp(c->dir));
		snprintf(c->db, sizeof c->db, "%s/state.db", c->dir);
		snprintf(c->url, sizeof c->url, "%s://%s", c->t->name, c->db);
	} else {
		snprintf(c->url, sizeof c->url, "%s", c->t->url);
	}
	c->s = must_open(c, TEST_KEY);
}

static void ctx_close(ctx *c)
{
	gw_store_close(c->s);
	c->s = NULL;
}

static gw_err save(gw_store *s, const char *sys, const char *name, const void *data, size_t len,
                   uint64_t expected, uint64_t epoch)
{
	gw_state st = {.key = {sys, name},
	               .type_url = TYPE_URL,
	               .data = data,
	               .len = len,
	               .expected = expected,
	               .epoch = epoch};
	gw_err r = GW_EIO;
	gw_err e = gw_store_save_batch(s, &st, 1, &r);
	ck_assert_msg(e == GW_OK, "save %s/%s: batch failed: %s", sys, name, gw_err_name(e));
	return r;
}

static gw_err save_str(ctx *c, const char *name, const char *data, uint64_t expected)
{
	return save(c->s, c->sys, name, data, strlen(data), expected, 0);
}

static gw_err load(gw_store *s, const char *sys, const char *name, gw_loaded *out)
{
	gw_actor_key k = {sys, name};
	return gw_store_load(s, &k, out);
}

/* expect_state asserts the actor loads as (data, len) at revision rev. */
static void expect_state(gw_store *s, const char *sys, const char *name, const void *data,
                         size_t len, uint64_t rev)
{
	gw_loaded l = {0};
	gw_err e = load(s, sys, name, &l);
	ck_assert_msg(e == GW_OK, "load %s/%s: %s", sys, name, gw_err_name(e));
	ck_assert_uint_eq(l.revision, rev);
	ck_assert_uint_eq(l.len, len);
	ck_assert_ptr_nonnull(l.data);
	ck_assert(len == 0 || memcmp(l.data, data, len) == 0);
	ck_assert_str_eq(l.type_url, TYPE_URL);
	gw_loaded_fini(&l);
}

static void expect_str(ctx *c, const char *name, const char *data, uint64_t rev)
{
	expect_state(c->s, c->sys, name, data, strlen(data), rev);
}

static void expect_missing(ctx *c, const char *name)
{
	gw_loaded l = {.revision = 77};
	ck_assert_int_eq(load(c->s, c->sys, name, &l), GW_ENOTFOUND);
	ck_assert_uint_eq(l.revision, 77); /* untouched */
}

static void remove_actor(ctx *c, const char *name)
{
	gw_actor_key k = {c->sys, name};
	ck_assert_int_eq(gw_store_remove(c->s, &k), GW_OK);
}

/* file_contains reports whether path holds needle (a missing file does not). */
static bool file_contains(const char *path, const void *needle, size_t n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	size_t r;
	while ((r = fread(buf + len, 1, cap - len, f)) > 0) {
		len += r;
		if (len == cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	bool found = memmem(buf, len, needle, n) != NULL;
	free(buf);
	return found;
}

/* ---- sqlite raw access -------------------------------------------------- */

#ifdef GW_TEST_SQLITE
/* sqlite_raw runs sql on the test's database file through a connection of
 * its own, binding the texts in p (n of them) to ?1..?n. */
static bool sqlite_raw(const ctx *c, const char *sql, const char *const *p, int n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open_v2(c->db, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, 5000);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	for (int i = 0; rc == SQLITE_OK && i < n; i++)
		rc = sqlite3_bind_text(st, i + 1, p[i], -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	if (rc != SQLITE_OK)
		fprintf(stderr, "raw sql failed: %s: %s\n", sqlite3_errmsg(db), sql);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_OK;
}

static bool sqlite_raw_copy(const ctx *c, const char *fsys, const char *fname, const char *tsys,
                            const char *tname)
{
	const char *p[] = {tsys, tname, fsys, fname};
	return sqlite_raw(c,
	                  "INSERT INTO spawn_actor_state SELECT ?1, ?2, revision, epoch, key_id, "
	                  "nonce, data, type_url, updated_at FROM spawn_actor_state "
	                  "WHERE system = ?3 AND name = ?4 "
	                  "ON CONFLICT(system, name) DO UPDATE SET key_id = excluded.key_id, "
	                  "nonce = excluded.nonce, data = excluded.data",
	                  p, 4);
}

static bool sqlite_raw_truncate(const ctx *c, const char *sys, const char *name, int len)
{
	char n[16];
	snprintf(n, sizeof n, "%d", len);
	const char *p[] = {sys, name, n};
	return sqlite_raw(
	    c,
	    "UPDATE spawn_actor_state SET data = substr(data, 1, CAST(?3 AS INTEGER)) "
	    "WHERE system = ?1 AND name = ?2",
	    p, 3);
}

static bool sqlite_raw_fail_on(const ctx *c, const char *name)
{
	/* A trigger cannot take parameters: name is a test constant. */
	char sql[256];
	snprintf(sql, sizeof sql,
	         "CREATE TRIGGER fail_%s BEFORE INSERT ON spawn_actor_state "
	         "WHEN NEW.name = '%s' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
	         name, name);
	return sqlite_raw(c, sql, NULL, 0);
}
#endif

/* ---- the suite ---------------------------------------------------------- */

START_TEST(loading_a_missing_actor_is_not_found)
{
	ctx c;
	ctx_open(&c, _i);
	expect_missing(&c, "nobody");
	ctx_close(&c);
}
END_TEST

START_TEST(a_new_state_saves_as_revision_1_and_loads_back)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save_str(&c, "a", "hello", 0), GW_OK);
	expect_str(&c, "a", "hello", 1);
	ck_assert_str_eq(gw_store_scheme(c.s), c.t->name);
	remove_actor(&c, "a");
	ctx_close(&c);
}
END_TEST

START_TEST(each_save_advances_the_revision_by_one)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save_str(&c, "a", "v1", 0), GW_OK);
	ck_assert_int_eq(save_str(&c, "a", "v2", 1), GW_OK);
	expect_str(&c, "a", "v2", 2);
	ck_assert_int_eq(save_str(&c, "a", "v3", 2), GW_OK);
	expect_str(&c, "a", "v3", 3);
	remove_actor(&c, "a");
	ctx_close(&c);
}
END_TEST

START_TEST(a_stale_expected_revision_conflicts_and_writes_nothing)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save_str(&c, "a", "v1", 0), GW_OK);
	ck_assert_int_eq(save_str(&c, "a", "v2", 1), GW_OK);
	ck_assert_int_eq(save_str(&c, "a", "stale", 1), GW_ECONFLICT);
	ck_assert_int_eq(save_str(&c, "a", "future", 7), GW_ECONFLICT);
	ck_assert_int_eq(save_str(&c, "ghost", "x", 3), GW_ECONFLICT);
	expect_str(&c, "a", "v2", 2);
	expect_missing(&c, "ghost");
	remove_actor(&c, "a");
	ctx_close(&c);
}
END_TEST

START_TEST(expected_0_on_an_existing_row_conflicts)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save_str(&c, "a", "first", 0), GW_OK);
	ck_assert_int_eq(save_str(&c, "a", "second", 0), GW_ECONFLICT);
	expect_str(&c, "a", "first", 1);
	remove_actor(&c, "a");
	ctx_close(&c);
}
END_TEST

START_TEST(a_batch_of_100_with_one_conflict_saves_the_other_99)
{
	ctx c;
	ctx_open(&c, _i);
	enum { N = 100, BAD = 57 };
	char names[N][16], datas[N][32];
	gw_state st[N];
	gw_err res[N];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "b-%d", i);
		snprintf(datas[i], sizeof datas[i], "state of %d", i);
		st[i] = (gw_state){.key = {c.sys, names[i]},
		                   .type_url = TYPE_URL,
		                   .data = (const uint8_t *)datas[i],
		                   .len = strlen(datas[i])};
	}
	ck_assert_int_eq(save_str(&c, names[BAD], "already here", 0), GW_OK);
	ck_assert_int_eq(gw_store_save_batch(c.s, st, N, res), GW_OK);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(res[i] == (i == BAD ? GW_ECONFLICT : GW_OK), "row %d: %s", i,
		              gw_err_name(res[i]));
		expect_str(&c, names[i], i == BAD ? "already here" : datas[i], 1);
	}
	/* The same actor twice in one batch: the second sees the first. */
	st[0].expected = 1;
	st[1] = st[0];
	st[1].expected = 2;
	ck_assert_int_eq(gw_store_save_batch(c.s, st, 2, res), GW_OK);
	ck_assert_int_eq(res[0], GW_OK);
	ck_assert_int_eq(res[1], GW_OK);
	expect_str(&c, names[0], datas[0], 3);
	ck_assert_int_eq(gw_store_save_batch(c.s, st, 0, res), GW_OK);
	for (int i = 0; i < N; i++)
		remove_actor(&c, names[i]);
	ctx_close(&c);
}
END_TEST

START_TEST(remove_deletes_the_row)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save_str(&c, "a", "v1", 0), GW_OK);
	ck_assert_int_eq(save_str(&c, "keep", "k", 0), GW_OK);
	remove_actor(&c, "a");
	expect_missing(&c, "a");
	remove_actor(&c, "a"); /* removing nothing is fine */
	expect_str(&c, "keep", "k", 1);
	ck_assert_int_eq(save_str(&c, "a", "reborn", 0), GW_OK);
	expect_str(&c, "a", "reborn", 1);
	remove_actor(&c, "a");
	remove_actor(&c, "keep");
	ctx_close(&c);
}
END_TEST

START_TEST(an_empty_state_round_trips)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save(c.s, c.sys, "e", NULL, 0, 0, 0), GW_OK);
	expect_state(c.s, c.sys, "e", "", 0, 1);
	ck_assert_int_eq(save(c.s, c.sys, "e", "", 0, 1, 0), GW_OK);
	expect_state(c.s, c.sys, "e", "", 0, 2);
	remove_actor(&c, "e");
	ctx_close(&c);
}
END_TEST

START_TEST(a_1_mib_state_round_trips)
{
	ctx c;
	ctx_open(&c, _i);
	size_t n = (size_t)1 << 20;
	uint8_t *big = malloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 131 + (i >> 11));
	ck_assert_int_eq(save(c.s, c.sys, "big", big, n, 0, 0), GW_OK);
	expect_state(c.s, c.sys, "big", big, n, 1);
	big[n / 2] ^= 0xff;
	ck_assert_int_eq(save(c.s, c.sys, "big", big, n, 1, 0), GW_OK);
	expect_state(c.s, c.sys, "big", big, n, 2);
	free(big);
	remove_actor(&c, "big");
	ctx_close(&c);
}
END_TEST

START_TEST(a_reopened_store_reads_back_what_was_saved)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save_str(&c, "a", "v1", 0), GW_OK);
	ck_assert_int_eq(save_str(&c, "a", "v2", 1), GW_OK);
	ctx_close(&c);
	c.s = must_open(&c, TEST_KEY);
	expect_str(&c, "a", "v2", 2);
	ck_assert_int_eq(save_str(&c, "a", "v3", 2), GW_OK);
	/* A rotated ring (new key first, old kept) still opens and reads. */
	ctx_close(&c);
	c.s = must_open(&c, "t2:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=," TEST_KEY);
	expect_str(&c, "a", "v3", 3);
	ck_assert_int_eq(save_str(&c, "a", "v4 under t2", 3), GW_OK);
	ctx_close(&c);
	c.s = must_open(&c, TEST_KEY ",t2:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=");
	expect_str(&c, "a", "v4 under t2", 4);
	remove_actor(&c, "a");
	ctx_close(&c);
}
END_TEST

START_TEST(a_wrong_key_is_refused_at_open)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save_str(&c, "a", "secret", 0), GW_OK);
	ctx_close(&c);
	gw_store *s = NULL;
	ck_assert_int_eq(try_open(&c, c.url, OTHER_KEY, &s), GW_ECRYPTO);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(c.err, "does not match the stored key check"), "%s", c.err);
	ck_assert_int_eq(try_open(&c, c.url, "t1:short", &s), GW_ECONFIG);
	ck_assert_int_eq(try_open(&c, c.url, "", &s), GW_ECONFIG);
	c.s = must_open(&c, TEST_KEY);
	remove_actor(&c, "a");
	ctx_close(&c);
}
END_TEST

START_TEST(a_newer_epoch_fences_an_older_one)
{
	ctx c;
	ctx_open(&c, _i);
	ck_assert_int_eq(save(c.s, c.sys, "f", "e5", 2, 0, 5), GW_OK);
	ck_assert_int_eq(save(c.s, c.sys, "f", "e4", 2, 1, 4), GW_EFENCED);
	ck_assert_int_eq(save(c.s, c.sys, "f", "e4", 2, 0, 4), GW_EFENCED);
	ck_assert_int_eq(save(c.s, c.sys, "f", "e5", 2, 7, 5), GW_ECONFLICT);
	ck_assert_int_eq(save(c.s, c.sys, "f", "e6", 2, 1, 6), GW_OK);
	gw_loaded l = {0};
	ck_assert_int_eq(load(c.s, c.sys, "f", &l), GW_OK);
	ck_assert_uint_eq(l.epoch, 6);
	ck_assert_uint_eq(l.revision, 2);
	gw_loaded_fini(&l);
	remove_actor(&c, "f");
	ctx_close(&c);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
	ctx c;
	ctx_open(&c, _i);
	gw_state st[2] = {{.key = {c.sys, "ok"}, .data = (const uint8_t *)"x", .len = 1},
	                  {.key = {c.sys, NULL}, .data = (const uint8_t *)"x", .len = 1}};
	gw_err res[2];
	ck_assert_int_eq(gw_store_save_batch(c.s, st, 2, res), GW_EINVAL);
	ck_assert_int_eq(res[0], GW_EINVAL);
	st[1] = (gw_state){.key = {c.sys, "big"}, .expected = UINT64_MAX};
	ck_assert_int_eq(gw_store_save_batch(c.s, st, 2, res), GW_EINVAL);
	st[1] = (gw_state){.key = {"", "x"}};
	ck_assert_int_eq(gw_store_save_batch(c.s, st, 2, res), GW_EINVAL);
	expect_missing(&c, "ok"); /* nothing of a refused batch is written */
	gw_actor_key k = {c.sys, ""};
	gw_loaded l;
	ck_assert_int_eq(gw_store_load(c.s, &k, &l), GW_EINVAL);
	ck_assert_int_eq(gw_store_remove(c.s, &k), GW_EINVAL);
	/* No type: stored as "". */
	st[0].type_url = NULL;
	ck_assert_int_eq(gw_store_save_batch(c.s, st, 1, res), GW_OK);
	ck_assert_int_eq(load(c.s, c.sys, "ok", &l), GW_OK);
	ck_assert_str_eq(l.type_url, "");
	gw_loaded_fini(&l);
	gw_loaded_fini(NULL);
	remove_actor(&c, "ok");
	ctx_close(&c);
}
END_TEST

START_TEST(a_store_without_a_file_needs_a_key)
{
	ctx c;
	ctx_open(&c, _i);
	ctx_close(&c);
	gw_store *s = NULL;
	ck_assert_int_eq(try_open(&c, c.t->keyless_url, NULL, &s), GW_ECONFIG);
	ck_assert_ptr_null(s);
	char want[128];
	snprintf(want, sizeof want, "SPAWN_STATESTORE_KEY is required for %s", c.t->name);
	ck_assert_str_eq(c.err, want);
	ck_assert_int_eq(try_open(&c, c.t->keyless_url, TEST_KEY, &s), GW_OK);
	gw_store_close(s);
}
END_TEST

static void read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ssize_t n = read(fd, buf, cap - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	close(fd);
}

START_TEST(the_default_key_file_is_created_0600_and_reused)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->file_backed) {
		ctx_close(&c);
		return;
	}
	ctx_close(&c);
	/* A second database in the same dir, with no key given. */
	snprintf(c.db, sizeof c.db, "%s/default.db", c.dir);
	snprintf(c.url, sizeof c.url, "%s://%s", c.t->name, c.db);
	char kpath[PATH_MAX + 8], key1[256], key2[256];
	snprintf(kpath, sizeof kpath, "%s.key", c.db);
	c.s = must_open(&c, NULL);
	struct stat st;
	ck_assert_int_eq(stat(kpath, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	read_file(kpath, key1, sizeof key1);
	ck_assert_uint_eq(strlen(key1), 45); /* 44 base64 chars and a newline */
	ck_assert_int_eq(save_str(&c, "a", "under the file key", 0), GW_OK);
	ctx_close(&c);

	c.s = must_open(&c, NULL);
	expect_str(&c, "a", "under the file key", 1);
	ctx_close(&c);
	read_file(kpath, key2, sizeof key2);
	ck_assert_str_eq(key1, key2);

	/* The file key is the store's key: another key does not open it. */
	gw_store *s = NULL;
	ck_assert_int_eq(try_open(&c, c.url, TEST_KEY, &s), GW_ECRYPTO);

	/* A key file others can read is refused. */
	ck_assert_int_eq(chmod(kpath, 0640), 0);
	ck_assert_int_eq(try_open(&c, c.url, NULL, &s), GW_ECONFIG);
	ck_assert_msg(strstr(c.err, "chmod 600"), "%s", c.err);
	ck_assert_int_eq(chmod(kpath, 0604), 0);
	ck_assert_int_eq(try_open(&c, c.url, NULL, &s), GW_ECONFIG);
	ck_assert_int_eq(chmod(kpath, 0400), 0);
	c.s = must_open(&c, NULL);
	ctx_close(&c);

	/* state.db was made with TEST_KEY: with no key, a fresh key file would
	 * not match, so the open fails and leaves no stray key file behind. */
	snprintf(c.url, sizeof c.url, "%s://%s/state.db", c.t->name, c.dir);
	snprintf(kpath, sizeof kpath, "%s/state.db.key", c.dir);
	ck_assert_int_eq(try_open(&c, c.url, NULL, &s), GW_ECRYPTO);
	ck_assert_int_eq(stat(kpath, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(a_row_copied_onto_another_actor_does_not_authenticate)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_copy) {
		ctx_close(&c);
		return;
	}
	char other[80];
	snprintf(other, sizeof other, "%s-x", c.sys);
	ck_assert_int_eq(save_str(&c, "alice", "alice's secret", 0), GW_OK);
	ck_assert_int_eq(save_str(&c, "bob", "bob's state", 0), GW_OK);
	ck_assert_int_eq(save_str(&c, "carol", "carol's state", 0), GW_OK);
	/* Onto an existing actor, a new actor, and the same name elsewhere. */
	ck_assert(c.t->raw_copy(&c, c.sys, "alice", c.sys, "bob"));
	ck_assert(c.t->raw_copy(&c, c.sys, "alice", c.sys, "mallory"));
	ck_assert(c.t->raw_copy(&c, c.sys, "alice", other, "alice"));
	gw_loaded l;
	ck_assert_int_eq(load(c.s, c.sys, "bob", &l), GW_ECRYPTO);
	ck_assert_int_eq(load(c.s, c.sys, "mallory", &l), GW_ECRYPTO);
	ck_assert_int_eq(load(c.s, other, "alice", &l), GW_ECRYPTO);
	expect_str(&c, "alice", "alice's secret", 1);
	expect_str(&c, "carol", "carol's state", 1);

	/* Shorter than a tag: corrupt, not a crypto failure. */
	ck_assert(c.t->raw_truncate(&c, c.sys, "carol", 10));
	ck_assert_int_eq(load(c.s, c.sys, "carol", &l), GW_ECORRUPT);
	ck_assert(c.t->raw_truncate(&c, c.sys, "alice", 20));
	ck_assert_int_eq(load(c.s, c.sys, "alice", &l), GW_ECRYPTO);
	ctx_close(&c);
}
END_TEST

START_TEST(a_batch_that_fails_in_storage_writes_nothing)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_fail_on) {
		ctx_close(&c);
		return;
	}
	ck_assert_int_eq(save_str(&c, "a", "a1", 0), GW_OK);
	ck_assert(c.t->raw_fail_on(&c, "boom"));
	gw_state st[3] = {
	    {.key = {c.sys, "a"},
	     .type_url = TYPE_URL,
	     .data = (const uint8_t *)"a2",
	     .len = 2,
	     .expected = 1},
	    {.key = {c.sys, "b"}, .type_url = TYPE_URL, .data = (const uint8_t *)"b1", .len = 2},
	    {.key = {c.sys, "boom"}, .type_url = TYPE_URL, .data = (const uint8_t *)"x", .len = 1},
	};
	gw_err res[3] = {GW_OK, GW_OK, GW_OK};
	gw_err e = gw_store_save_batch(c.s, st, 3, res);
	ck_assert_int_ne(e, GW_OK);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(res[i], e);
	expect_str(&c, "a", "a1", 1);
	expect_missing(&c, "b");
	expect_missing(&c, "boom");
	/* The store is still usable after the rollback. */
	ck_assert_int_eq(gw_store_save_batch(c.s, st, 2, res), GW_OK);
	ck_assert_int_eq(res[0], GW_OK);
	ck_assert_int_eq(res[1], GW_OK);
	expect_str(&c, "a", "a2", 2);
	ctx_close(&c);
}
END_TEST

START_TEST(the_database_file_holds_no_plaintext)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->file_backed) {
		ctx_close(&c);
		return;
	}
	char big[64 * 1024];
	for (size_t i = 0; i + sizeof MARKER <= sizeof big; i += sizeof MARKER - 1)
		memcpy(big + i, MARKER, sizeof MARKER - 1);
	for (int i = 0; i < 20; i++) {
		char name[16];
		snprintf(name, sizeof name, "m-%d", i);
		ck_assert_int_eq(save(c.s, c.sys, name, big, sizeof big, 0, 0), GW_OK);
		ck_assert_int_eq(save_str(&c, name, MARKER, 1), GW_OK);
	}
	char wal[PATH_MAX + 8];
	snprintf(wal, sizeof wal, "%s-wal", c.db);
	/* While open (rows may sit in the WAL) and after close (checkpointed). */
	for (int pass = 0; pass < 2; pass++) {
		ck_assert_msg(!file_contains(c.db, MARKER, strlen(MARKER)), "plaintext in %s",
		              c.db);
		ck_assert_msg(!file_contains(wal, MARKER, strlen(MARKER)), "plaintext in %s", wal);
		ck_assert(!file_contains(c.db, "AAECAwQFBgcICQoLDA0ODxAR", 24));
		ctx_close(&c);
	}
	ck_assert(file_contains(c.db, TYPE_URL, strlen(TYPE_URL))); /* the grep works */
}
END_TEST

/* Not per target: the registry and URL parsing. */
START_TEST(unknown_schemes_and_bad_urls_are_refused)
{
	ctx c = {0};
	gw_store *s = NULL;
	ck_assert_int_eq(try_open(&c, "nosuch://x", TEST_KEY, &s), GW_ECONFIG);
	ck_assert_msg(strstr(c.err, "no statestore driver for scheme 'nosuch'"), "%s", c.err);
	ck_assert_int_eq(try_open(&c, "/var/lib/state.db", TEST_KEY, &s), GW_ECONFIG);
	ck_assert_int_eq(try_open(&c, "", TEST_KEY, &s), GW_ECONFIG);
	ck_assert_int_eq(gw_store_open(&s, NULL, NULL), GW_EINVAL);
	ck_assert_ptr_null(s);
	gw_store_close(NULL);
#ifdef GW_TEST_SQLITE
	ck_assert_int_eq(try_open(&c, "sqlite:", TEST_KEY, &s), GW_ECONFIG);
	ck_assert_int_eq(try_open(&c, "sqlite://", TEST_KEY, &s), GW_ECONFIG);
	ck_assert_int_eq(try_open(&c, "sqlite:rel.db", TEST_KEY, &s), GW_ECONFIG);
	ck_assert_int_eq(try_open(&c, "sqlite:///tmp/x.db?mode=ro", TEST_KEY, &s), GW_ECONFIG);
	/* A relative path is relative to the working directory. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/rel-XXXXXX", root);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	int cwd = open(".", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(cwd, 0);
	ck_assert_int_eq(chdir(dir), 0);
	gw_err e = try_open(&c, "sqlite://sub.db", TEST_KEY, &s);
	ck_assert_int_eq(fchdir(cwd), 0);
	close(cwd);
	ck_assert_msg(e == GW_OK, "%s", c.err);
	gw_store_close(s);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/sub.db", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
#endif
}
END_TEST

/* ---- the runner ---------------------------------------------------------- */

static void add_env_target(const char *name, const char *var)
{
	const char *url = getenv(var);
	if (!url || !*url)
		return;
	target *t = &targets[ntargets++];
	t->name = name;
	snprintf(t->url, sizeof t->url, "%s", url);
	t->keyless_url = t->url;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

#define ADD(suite, fn, timeout)                                                                    \
	do {                                                                                       \
		TCase *tc_ = tcase_create(#fn);                                                    \
		tcase_set_timeout(tc_, timeout);                                                   \
		tcase_add_loop_test(tc_, fn, 0, ntargets);                                         \
		suite_add_tcase(suite, tc_);                                                       \
	} while (0)

int main(void)
{
#ifdef GW_TEST_SQLITE
	targets[ntargets++] = (target){.name = "sqlite",
	                               .file_backed = true,
	                               .keyless_url = "sqlite::memory:",
	                               .raw_copy = sqlite_raw_copy,
	                               .raw_truncate = sqlite_raw_truncate,
	                               .raw_fail_on = sqlite_raw_fail_on};
#endif
	add_env_target("postgres", "SPAWN_TEST_POSTGRES_URL");
	add_env_target("mariadb", "SPAWN_TEST_MARIADB_URL");
	if (ntargets == 0) {
		fprintf(stderr, "store_conformance: no statestore target (sqlite not built, "
		                "no SPAWN_TEST_*_URL set)\n");
		return EXIT_FAILURE;
	}
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	for (int i = 0; i < ntargets; i++)
		printf("store_conformance: target %d: %s\n", i, targets[i].name);

	Suite *s = suite_create("store");
	ADD(s, loading_a_missing_actor_is_not_found, 30);
	ADD(s, a_new_state_saves_as_revision_1_and_loads_back, 30);
	ADD(s, each_save_advances_the_revision_by_one, 30);
	ADD(s, a_stale_expected_revision_conflicts_and_writes_nothing, 30);
	ADD(s, expected_0_on_an_existing_row_conflicts, 30);
	ADD(s, a_batch_of_100_with_one_conflict_saves_the_other_99, 60);
	ADD(s, remove_deletes_the_row, 30);
	ADD(s, an_empty_state_round_trips, 30);
	ADD(s, a_1_mib_state_round_trips, 60);
	ADD(s, a_reopened_store_reads_back_what_was_saved, 30);
	ADD(s, a_wrong_key_is_refused_at_open, 30);
	ADD(s, a_newer_epoch_fences_an_older_one, 30);
	ADD(s, bad_arguments_are_refused, 30);
	ADD(s, a_store_without_a_file_needs_a_key, 30);
	ADD(s, the_default_key_file_is_created_0600_and_reused, 30);
	ADD(s, a_row_copied_onto_another_actor_does_not_authenticate, 30);
	ADD(s, a_batch_that_fails_in_storage_writes_nothing, 30);
	ADD(s, the_database_file_holds_no_plaintext, 60);
	TCase *tc = tcase_create("unknown_schemes_and_bad_urls_are_refused");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, unknown_schemes_and_bad_urls_are_refused);
	suite_add_tcase(s, tc);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
