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
 * SPAWN_TEST_TARGETS=postgres,mariadb limits the run to the named targets
 * (ctest's store_conformance_db uses it: sqlite has its own test).
 *
 * Each test is a loop test over the table (_i = target index) and uses its
 * own actor system name, so tests never collide on a shared server. On a
 * server whose driver is built, each test also gets a fresh namespace (a
 * PostgreSQL schema, a MariaDB database named <db>_<pid>_<n>), so it starts
 * from an empty store exactly like a fresh sqlite file; the user of the URL
 * needs the right to create them. Tests that need raw access to the backing
 * store (copy a row, read the file, stop the server) run only on targets
 * that provide the hook; the others pass them with a note.
 *
 * The server-gone test runs $SPAWN_TEST_<DRIVER>_STOP and _START (shell
 * commands; scripts/db-start.sh writes them) to stop and restart a server.
 * The raw hooks live in conformance_raw.c.
 */
#include "conformance.h"
#include "crypto.h"
#include "store.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MARKER "SPAWN-PLAINTEXT-MARKER-7f3a"

target targets[4];
static int ntargets;
static char root[] = "/tmp/spawn-store-XXXXXX";

/* ---- helpers ------------------------------------------------------------ */

gw_err try_open(ctx *c, const char *url, const char *keys, gw_store **out)
{
	gw_store_opts o = {.keys = keys, .err = c->err, .errlen = sizeof c->err};
	c->err[0] = '\0';
	return gw_store_open(out, url, &o);
}

gw_store *must_open(ctx *c, const char *keys)
{
	gw_store *s = NULL;
	gw_err e = try_open(c, c->url, keys, &s);
	ck_assert_msg(e == GW_OK, "[%s] open %s: %s: %s", c->t->name, c->url, gw_err_name(e),
	              c->err);
	return s;
}

void ctx_open(ctx *c, int i)
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
	} else if (c->t->ns_new) {
		ck_assert_msg(c->t->ns_new(c->t, c->url, sizeof c->url),
		              "[%s] cannot create a test namespace", c->t->name);
	} else {
		snprintf(c->url, sizeof c->url, "%s", c->t->url);
	}
	c->s = must_open(c, TEST_KEY);
}

/* fresh_url writes a URL of another empty store of c's target, never
 * opened yet: a new file beside c's, or a new namespace. */
void fresh_url(const ctx *c, char *url, size_t cap)
{
	static unsigned n;
	if (c->t->file_backed)
		snprintf(url, cap, "%s://%s/fresh-%u.db", c->t->name, c->dir, n++);
	else if (c->t->ns_new)
		ck_assert(c->t->ns_new(c->t, url, cap));
	else
		ck_abort_msg("[%s] no way to make a fresh store", c->t->name);
}

void ctx_close(ctx *c)
{
	gw_store_close(c->s);
	c->s = NULL;
}

gw_err save(gw_store *s, const char *sys, const char *name, const void *data, size_t len,
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

gw_err load(gw_store *s, const char *sys, const char *name, gw_loaded *out)
{
	gw_actor_key k = {sys, name};
	return gw_store_load(s, &k, out);
}

/* expect_state asserts the actor loads as (data, len) at revision rev. */
void expect_state(gw_store *s, const char *sys, const char *name, const void *data, size_t len,
                  uint64_t rev)
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
	gw_actor_key k = {c.sys, "f"};
	uint64_t e1 = 0, e2 = 0;
	ck_assert_int_eq(gw_store_acquire(c.s, &k, &e1), GW_OK);
	ck_assert_int_eq(gw_store_acquire(c.s, &k, &e2), GW_OK);
	ck_assert_uint_gt(e2, e1);
	/* An epoch never handed out, and an older one, are not the current one. */
	ck_assert_int_eq(save(c.s, c.sys, "f", "e9", 2, 0, e2 + 7), GW_EFENCED);
	ck_assert_int_eq(save(c.s, c.sys, "f", "e1", 2, 0, e1), GW_EFENCED);
	expect_missing(&c, "f");
	ck_assert_int_eq(save(c.s, c.sys, "f", "e2", 2, 0, e2), GW_OK);
	/* Fencing wins over a revision conflict. */
	ck_assert_int_eq(save(c.s, c.sys, "f", "e1", 2, 7, e1), GW_EFENCED);
	ck_assert_int_eq(save(c.s, c.sys, "f", "e2", 2, 7, e2), GW_ECONFLICT);
	ck_assert_int_eq(save(c.s, c.sys, "f", "e2", 2, 1, e2), GW_OK);
	gw_loaded l = {0};
	ck_assert_int_eq(load(c.s, c.sys, "f", &l), GW_OK);
	ck_assert_uint_eq(l.epoch, e2);
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
	/* A networked store has no file: its own URL is keyless. */
	const char *url = c.t->file_backed ? c.t->keyless_url : c.url;
	ck_assert_int_eq(try_open(&c, url, NULL, &s), GW_ECONFIG);
	ck_assert_ptr_null(s);
	char want[128];
	snprintf(want, sizeof want, "SPAWN_STATESTORE_KEY is required for %s", c.t->name);
	ck_assert_str_eq(c.err, want);
	ck_assert_int_eq(try_open(&c, url, TEST_KEY, &s), GW_OK);
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
	ck_assert_msg(strstr(c.err, "did not exist, so a new key was made"), "%s", c.err);
	ck_assert_msg(strstr(c.err, kpath), "%s", c.err);
	ck_assert_int_eq(stat(kpath, &st), -1);
	ck_assert_int_eq(errno, ENOENT);

	/* A key file of another database (a restore with the wrong key file)
	 * is named in the error. */
	char other[PATH_MAX + 8];
	snprintf(other, sizeof other, "%s/default.db.key", c.dir);
	int in = open(other, O_RDONLY), out = open(kpath, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(in, 0);
	ck_assert_int_ge(out, 0);
	char buf[256];
	ssize_t got = read(in, buf, sizeof buf);
	ck_assert_int_gt(got, 0);
	ck_assert_int_eq(write(out, buf, (size_t)got), got);
	close(in);
	close(out);
	ck_assert_int_eq(try_open(&c, c.url, NULL, &s), GW_ECRYPTO);
	ck_assert_msg(strstr(c.err, "does not match the stored key check"), "%s", c.err);
	ck_assert_msg(strstr(c.err, "from the key file"), "%s", c.err);
	ck_assert_int_eq(stat(kpath, &st), 0); /* not ours to remove */
	unlink(kpath);
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

/* Envelope 2 binds the revision: an older revision's sealed row put on the
 * latest row (a replay of an old state as the current one) is DATA_LOSS
 * for that actor, not the old state; the history row itself still loads
 * at its own revision. */
START_TEST(an_older_revision_replayed_as_the_latest_does_not_authenticate)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_replay || !c.t->raw_history) {
		ctx_close(&c);
		return;
	}
	gw_store *h = NULL;
	gw_store_opts o = {.keys = TEST_KEY, .history = 2, .err = c.err, .errlen = sizeof c.err};
	ck_assert_int_eq(gw_store_open(&h, c.url, &o), GW_OK);
	ck_assert_int_eq(save(h, c.sys, "replayed", "balance=100", 11, 0, 0), GW_OK);
	ck_assert_int_eq(save(h, c.sys, "replayed", "balance=0", 9, 1, 0), GW_OK);
	ck_assert_int_eq(save(h, c.sys, "bystander", "kept", 4, 0, 0), GW_OK);
	ck_assert(c.t->raw_replay(&c, c.sys, "replayed", 1));
	gw_loaded l;
	ck_assert_int_eq(load(h, c.sys, "replayed", &l), GW_ECRYPTO);
	gw_actor_key k = {c.sys, "replayed"};
	ck_assert_int_eq(gw_store_load_revision(h, &k, 1, &l), GW_OK);
	ck_assert_uint_eq(l.len, 11);
	ck_assert_mem_eq(l.data, "balance=100", 11);
	gw_loaded_fini(&l);
	expect_state(h, c.sys, "bystander", "kept", 4, 1);
	gw_store_close(h);
	ctx_close(&c);
}
END_TEST

/* hex writes n bytes of p as lower-case hex into out (2n + 1 bytes). */
static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* A row an earlier gateway sealed (envelope 1: the AAD binds the actor,
 * not the revision, no magic) still loads after the upgrade, and the next
 * save on top of it writes envelope 2. */
START_TEST(a_row_sealed_before_envelope_2_still_loads)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_set_sealed || !c.t->raw_replay) {
		ctx_close(&c);
		return;
	}
	ck_assert_int_eq(save_str(&c, "legacy", "placeholder", 0), GW_OK);
	gw_keyring *kr = NULL;
	ck_assert_int_eq(gw_keyring_parse(&kr, TEST_KEY, NULL, 0), GW_OK);
	const char *old = "sealed by the gateway before";
	gw_sealed sl;
	ck_assert_int_eq(gw_seal(kr, c.sys, "legacy", (const uint8_t *)old, strlen(old), &sl),
	                 GW_OK);
	char nh[2 * GW_NONCE_LEN + 1], dh[512];
	hex(sl.nonce, GW_NONCE_LEN, nh);
	hex(sl.data, sl.len, dh);
	free(sl.data);
	gw_keyring_free(kr);
	ck_assert(c.t->raw_set_sealed(&c, c.sys, "legacy", nh, dh));
	expect_str(&c, "legacy", old, 1);
	/* The next save writes envelope 2 (revision-bound), which loads too. */
	ck_assert_int_eq(save_str(&c, "legacy", "after the upgrade", 1), GW_OK);
	expect_str(&c, "legacy", "after the upgrade", 2);
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

START_TEST(a_schema_version_newer_than_the_build_is_refused)
{
	ctx c;
	ctx_open(&c, _i);
	ctx_close(&c);
	if (!c.t->raw_set_version)
		return;
	gw_store *s = NULL;
	/* The current versions: 4 on sqlite, 5 on the networked drivers
	 * (spawn_members, docs/schema.md). */
	const char *current = c.t->file_backed ? "4" : "5";
	ck_assert(c.t->raw_set_version(&c, "99"));
	ck_assert_int_eq(try_open(&c, c.url, TEST_KEY, &s), GW_ECONFIG);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(c.err, "schema version 99"), "%s", c.err);
	ck_assert(c.t->raw_set_version(&c, current));
	c.s = must_open(&c, TEST_KEY);
	ctx_close(&c);
}
END_TEST

/* ---- concurrency ------------------------------------------------------------- */

enum { RACERS = 2, ROUNDS = 40, OPENERS = 4 };

typedef struct racer {
	gw_store *s;
	const char *sys;
	const char *me;
	pthread_barrier_t *bar;
	gw_err res[ROUNDS];
} racer;

/* race: each round, every racer saves the same actor expecting the
 * revision the previous round produced; the barrier lines them up. */
static void *race(void *arg)
{
	racer *r = arg;
	for (int i = 0; i < ROUNDS; i++) {
		gw_state st = {.key = {r->sys, "contended"},
		               .type_url = TYPE_URL,
		               .data = (const uint8_t *)r->me,
		               .len = strlen(r->me),
		               .expected = (uint64_t)i};
		pthread_barrier_wait(r->bar);
		gw_err res = GW_EIO;
		gw_err e = gw_store_save_batch(r->s, &st, 1, &res);
		r->res[i] = e == GW_OK ? res : e;
		pthread_barrier_wait(r->bar);
	}
	return NULL;
}

START_TEST(two_stores_racing_on_one_actor_win_each_revision_exactly_once)
{
	ctx c;
	ctx_open(&c, _i);
	pthread_barrier_t bar;
	pthread_t th[RACERS];
	racer r[RACERS];
	static const char *const names[RACERS] = {"racer-a", "racer-b"};
	ck_assert_int_eq(pthread_barrier_init(&bar, NULL, RACERS), 0);
	for (int i = 0; i < RACERS; i++) {
		r[i] = (racer){
		    .s = must_open(&c, TEST_KEY), .sys = c.sys, .me = names[i], .bar = &bar};
		ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(th[i], NULL);
	int last = -1;
	for (int round = 0; round < ROUNDS; round++) {
		int wins = 0;
		for (int i = 0; i < RACERS; i++) {
			ck_assert_msg(r[i].res[round] == GW_OK || r[i].res[round] == GW_ECONFLICT,
			              "round %d, %s: %s", round, names[i],
			              gw_err_name(r[i].res[round]));
			if (r[i].res[round] == GW_OK) {
				wins++;
				last = i;
			}
		}
		ck_assert_msg(wins == 1, "round %d: %d winners", round, wins);
	}
	expect_state(c.s, c.sys, "contended", names[last], strlen(names[last]), ROUNDS);
	for (int i = 0; i < RACERS; i++)
		gw_store_close(r[i].s);
	pthread_barrier_destroy(&bar);
	ctx_close(&c);
}
END_TEST

typedef struct opener {
	const char *url;
	pthread_barrier_t *bar;
	gw_store *s;
	gw_err e;
	char err[512];
} opener;

static void *open_at_once(void *arg)
{
	opener *o = arg;
	gw_store_opts opts = {.keys = TEST_KEY, .err = o->err, .errlen = sizeof o->err};
	pthread_barrier_wait(o->bar);
	o->e = gw_store_open(&o->s, o->url, &opts);
	return NULL;
}

START_TEST(stores_creating_one_schema_at_once_all_open)
{
	ctx c;
	ctx_open(&c, _i);
	char url[PATH_MAX + 160];
	fresh_url(&c, url, sizeof url);
	pthread_barrier_t bar;
	pthread_t th[OPENERS];
	opener o[OPENERS];
	ck_assert_int_eq(pthread_barrier_init(&bar, NULL, OPENERS), 0);
	for (int i = 0; i < OPENERS; i++) {
		o[i] = (opener){.url = url, .bar = &bar};
		ck_assert_int_eq(pthread_create(&th[i], NULL, open_at_once, &o[i]), 0);
	}
	for (int i = 0; i < OPENERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < OPENERS; i++)
		ck_assert_msg(o[i].e == GW_OK, "opener %d: %s: %s", i, gw_err_name(o[i].e),
		              o[i].err);
	/* One store: what one saves, another loads. */
	ck_assert_int_eq(save(o[0].s, c.sys, "a", "x", 1, 0, 0), GW_OK);
	expect_state(o[OPENERS - 1].s, c.sys, "a", "x", 1, 1);
	ck_assert_int_eq(save(o[1].s, c.sys, "a", "y", 1, 0, 0), GW_ECONFLICT);
	for (int i = 0; i < OPENERS; i++)
		gw_store_close(o[i].s);
	pthread_barrier_destroy(&bar);
	ctx_close(&c);
}
END_TEST

enum { WORKERS = 4, CYCLES = 25 };

typedef struct worker {
	gw_store *s;
	const char *sys;
	char name[16];
	gw_err e;
	int at; /* the cycle that failed */
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	char data[32];
	for (int i = 0; i < CYCLES; i++) {
		snprintf(data, sizeof data, "%s:%d", w->name, i);
		gw_state st = {.key = {w->sys, w->name},
		               .data = (const uint8_t *)data,
		               .len = strlen(data),
		               .expected = (uint64_t)i};
		gw_err res = GW_EIO, e = gw_store_save_batch(w->s, &st, 1, &res);
		gw_loaded l = {0};
		gw_actor_key k = {w->sys, w->name};
		if (e == GW_OK)
			e = res;
		if (e == GW_OK)
			e = gw_store_load(w->s, &k, &l);
		if (e == GW_OK && (l.revision != (uint64_t)i + 1 || l.len != strlen(data) ||
		                   memcmp(l.data, data, l.len) != 0))
			e = GW_ECORRUPT;
		gw_loaded_fini(&l);
		if (e != GW_OK) {
			w->e = e;
			w->at = i;
			return NULL;
		}
	}
	return NULL;
}

/* The networked drivers share one store between threads through their
 * connection pool (more threads than connections here). */
START_TEST(a_networked_store_serves_several_threads_through_its_pool)
{
	ctx c;
	ctx_open(&c, _i);
	if (c.t->file_backed) {
		ctx_close(&c);
		return;
	}
	ctx_close(&c);
	gw_store_opts o = {.keys = TEST_KEY, .pool_size = 2, .err = c.err, .errlen = sizeof c.err};
	ck_assert_int_eq(gw_store_open(&c.s, c.url, &o), GW_OK);
	pthread_t th[WORKERS];
	worker w[WORKERS];
	for (int i = 0; i < WORKERS; i++) {
		w[i] = (worker){.s = c.s, .sys = c.sys};
		snprintf(w[i].name, sizeof w[i].name, "w%d", i);
		ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < WORKERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < WORKERS; i++)
		ck_assert_msg(w[i].e == GW_OK, "worker %d, cycle %d: %s", i, w[i].at,
		              gw_err_name(w[i].e));
	ctx_close(&c);
	/* Pool sizes outside 1..64 are refused; 0 is the default. */
	gw_store *s = NULL;
	o.pool_size = 65;
	ck_assert_int_eq(gw_store_open(&s, c.url, &o), GW_ECONFIG);
	o.pool_size = -1;
	ck_assert_int_eq(gw_store_open(&s, c.url, &o), GW_ECONFIG);
	o.pool_size = 0;
	o.history = -1;
	ck_assert_int_eq(gw_store_open(&s, c.url, &o), GW_ECONFIG);
	ck_assert_ptr_null(s);
}
END_TEST

/* ---- history ----------------------------------------------------------------- */

START_TEST(history_keeps_the_last_n_older_revisions)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->raw_history) {
		ctx_close(&c);
		return;
	}
	gw_store *h = NULL;
	gw_store_opts o = {.keys = TEST_KEY, .history = 2, .err = c.err, .errlen = sizeof c.err};
	ck_assert_int_eq(gw_store_open(&h, c.url, &o), GW_OK);
	char v[16];
	for (int i = 0; i < 5; i++) {
		snprintf(v, sizeof v, "v%d", i + 1);
		ck_assert_int_eq(save(h, c.sys, "h", v, strlen(v), (uint64_t)i, 0), GW_OK);
	}
	expect_state(h, c.sys, "h", "v5", 2, 5);
	long long got[3];
	ck_assert(c.t->raw_history(&c, c.sys, "h", got));
	/* The latest (5) and the two before it. */
	ck_assert_int_eq(got[0], 3);
	ck_assert_int_eq(got[1], 3);
	ck_assert_int_eq(got[2], 5);
	/* A conflict or a fence adds nothing. */
	ck_assert_int_eq(save(h, c.sys, "h", "late", 4, 2, 0), GW_ECONFLICT);
	ck_assert(c.t->raw_history(&c, c.sys, "h", got));
	ck_assert_int_eq(got[0], 3);
	/* Without a history policy nothing is added; with it, trimming resumes. */
	ck_assert_int_eq(save_str(&c, "h", "v6", 5), GW_OK);
	ck_assert(c.t->raw_history(&c, c.sys, "h", got));
	ck_assert_int_eq(got[2], 5);
	ck_assert_int_eq(save(h, c.sys, "h", "v7", 2, 6, 0), GW_OK);
	ck_assert(c.t->raw_history(&c, c.sys, "h", got));
	ck_assert_int_eq(got[0], 2); /* 5 and 7: 6 was never recorded */
	ck_assert_int_eq(got[1], 5);
	ck_assert_int_eq(got[2], 7);
	/* remove deletes the history too; a reborn actor starts over. */
	gw_actor_key k = {c.sys, "h"};
	ck_assert_int_eq(gw_store_remove(h, &k), GW_OK);
	ck_assert(c.t->raw_history(&c, c.sys, "h", got));
	ck_assert_int_eq(got[0], 0);
	ck_assert_int_eq(save(h, c.sys, "h", "again", 5, 0, 0), GW_OK);
	ck_assert(c.t->raw_history(&c, c.sys, "h", got));
	ck_assert_int_eq(got[0], 1);
	ck_assert_int_eq(got[2], 1);
	gw_store_close(h);
	ctx_close(&c);
}
END_TEST

/* ---- the server goes away ---------------------------------------------------- */

/* run_cmd runs a stop/start command; its stderr stays (for a failure),
 * its stdout (the URLs) goes. */
static void run_cmd(const char *what, const char *cmd)
{
	char line[PATH_MAX * 2];
	snprintf(line, sizeof line, "%s >/dev/null", cmd);
	int rc = system(line);
	ck_assert_msg(rc == 0, "%s: '%s' exited with %d", what, cmd, rc);
}

START_TEST(a_server_that_goes_away_fails_calls_with_unavail_and_loses_nothing)
{
	ctx c;
	ctx_open(&c, _i);
	if (!c.t->stop_cmd || !c.t->start_cmd) {
		if (!c.t->file_backed)
			printf("store_conformance: [%s] server-gone test not run: "
			       "no SPAWN_TEST_*_STOP/_START commands\n",
			       c.t->name);
		ctx_close(&c);
		return;
	}
	ck_assert_int_eq(save_str(&c, "a", "v1", 0), GW_OK);
	ck_assert_int_eq(save_str(&c, "a", "v2", 1), GW_OK);
	ck_assert_int_eq(save_str(&c, "b", "b1", 0), GW_OK);
	run_cmd("stop", c.t->stop_cmd);

	gw_state st[2] = {
	    {.key = {c.sys, "a"}, .data = (const uint8_t *)"v3", .len = 2, .expected = 2},
	    {.key = {c.sys, "b"}, .data = (const uint8_t *)"b2", .len = 2, .expected = 1}};
	gw_err res[2] = {GW_OK, GW_OK};
	ck_assert_int_eq(gw_store_save_batch(c.s, st, 2, res), GW_EUNAVAIL);
	ck_assert_int_eq(res[0], GW_EUNAVAIL);
	ck_assert_int_eq(res[1], GW_EUNAVAIL);
	gw_loaded l;
	ck_assert_int_eq(load(c.s, c.sys, "a", &l), GW_EUNAVAIL);
	gw_actor_key k = {c.sys, "a"};
	ck_assert_int_eq(gw_store_remove(c.s, &k), GW_EUNAVAIL);
	gw_store *s = NULL;
	ck_assert_int_eq(try_open(&c, c.url, TEST_KEY, &s), GW_EUNAVAIL);
	ck_assert_ptr_null(s);

	run_cmd("start", c.t->start_cmd);
	/* The same store reconnects; every committed save is there. */
	expect_str(&c, "a", "v2", 2);
	expect_str(&c, "b", "b1", 1);
	ck_assert_int_eq(gw_store_save_batch(c.s, st, 2, res), GW_OK);
	ck_assert_int_eq(res[0], GW_OK);
	ck_assert_int_eq(res[1], GW_OK);
	ck_assert_int_eq(load(c.s, c.sys, "a", &l), GW_OK);
	ck_assert_uint_eq(l.revision, 3);
	gw_loaded_fini(&l);
	ctx_close(&c);
}
END_TEST

/* ---- URLs and credentials of a real server ------------------------------------ */

/* with_password writes url with its password replaced by pw; false when
 * the URL carries none. */
static bool with_password(const char *url, const char *pw, char *out, size_t cap)
{
	const char *p = strstr(url, "://");
	const char *at = p ? strchr(p + 3, '@') : NULL;
	const char *colon = at ? memchr(p + 3, ':', (size_t)(at - p - 3)) : NULL;
	if (!colon)
		return false;
	snprintf(out, cap, "%.*s%s%s", (int)(colon + 1 - url), url, pw, at);
	return true;
}

START_TEST(a_wrong_password_is_unavailable_and_never_echoed)
{
	ctx c;
	ctx_open(&c, _i);
	ctx_close(&c);
	char url[PATH_MAX + 160];
	if (c.t->file_backed || !with_password(c.url, "Wr0ngPa55word", url, sizeof url))
		return;
	gw_store *s = NULL;
	gw_err e = try_open(&c, url, TEST_KEY, &s);
	ck_assert_msg(e == GW_EUNAVAIL, "%s: %s", gw_err_name(e), c.err);
	ck_assert_ptr_null(s);
	ck_assert_msg(!strstr(c.err, "Wr0ngPa55word"), "%s", c.err);
	ck_assert_msg(strstr(c.err, "cannot connect"), "%s", c.err);
}
END_TEST

START_TEST(the_alias_scheme_opens_the_same_store)
{
	ctx c;
	ctx_open(&c, _i);
	const char *alias = strcmp(c.t->name, "postgres") == 0  ? "postgresql"
	                    : strcmp(c.t->name, "mariadb") == 0 ? "mysql"
	                                                        : NULL;
	if (!alias) {
		ctx_close(&c);
		return;
	}
	ck_assert_int_eq(save_str(&c, "a", "via the main scheme", 0), GW_OK);
	char url[PATH_MAX + 160];
	snprintf(url, sizeof url, "%s%s", alias, strstr(c.url, "://"));
	gw_store *s = NULL;
	ck_assert_msg(try_open(&c, url, TEST_KEY, &s) == GW_OK, "%s", c.err);
	ck_assert_str_eq(gw_store_scheme(s), alias);
	expect_state(s, c.sys, "a", "via the main scheme", 19, 1);
	gw_store_close(s);
	ctx_close(&c);
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
#ifdef GW_TEST_POSTGRES
	ck_assert_int_eq(try_open(&c, "postgres:/x", TEST_KEY, &s), GW_ECONFIG);
	ck_assert_int_eq(try_open(&c, "postgres://h/db?nosuch=1", TEST_KEY, &s), GW_ECONFIG);
	ck_assert_msg(strstr(c.err, "nosuch"), "%s", c.err);
	ck_assert_int_eq(try_open(&c, "postgresql://h/db?sslmode", TEST_KEY, &s), GW_ECONFIG);
	/* libpq quotes a malformed value; a password must not reach the reason. */
	ck_assert_int_eq(try_open(&c, "postgres://u:S3cret%zz@h/db", TEST_KEY, &s), GW_ECONFIG);
	ck_assert_msg(!strstr(c.err, "S3cret"), "%s", c.err);
	ck_assert_int_eq(
	    try_open(&c, "postgres://h/db?sslmode=disable&password=S3cret%zz", TEST_KEY, &s),
	    GW_ECONFIG);
	ck_assert_msg(!strstr(c.err, "S3cret"), "%s", c.err);
	/* Nothing listens on port 1: refused at once, and the password is
	 * not in the reason. */
	ck_assert_int_eq(
	    try_open(&c, "postgres://u:S3cretPw@127.0.0.1:1/db?connect_timeout=5", TEST_KEY, &s),
	    GW_EUNAVAIL);
	ck_assert_msg(!strstr(c.err, "S3cretPw") && strstr(c.err, "127.0.0.1:1/db"), "%s", c.err);
	ck_assert_int_eq(try_open(&c, "postgres://127.0.0.1:1/db", NULL, &s), GW_EUNAVAIL);
	ck_assert_ptr_null(s);
#endif
#ifdef GW_TEST_MARIADB
	static const char *const bad_my[] = {
	    "mariadb:/x",
	    "mariadb://u:p@h",
	    "mariadb://u:p@h/",
	    "mariadb://u:p@h:0/db",
	    "mariadb://u:p@h:99999/db",
	    "mariadb://u:p@h:33x/db",
	    "mariadb://u:p%zz@h/db",
	    "mariadb://u:p%00@h/db",
	    "mariadb://u:p@[::1/db",
	    "mariadb://u:p@h/db?nosuch=1",
	    "mysql://u:p@h/db?sslmode=sometimes",
	    "mysql://u:p@h/db?connect_timeout=0",
	    "mysql://u:p@h/db?socket",
	    "mariadb://u:p@h/db?ssl-mode=sometimes",
	    "mariadb://u:p@h/db?sslmode=disable&sslrootcert=/ca.pem",
	    "mariadb://u:p@h/db?sslcert=/c.pem",
	    "mariadb://u:p@h/db?sslmode=require&ssl-key=/c.key",
	    "mariadb://u:p@h/db?sslrootcert=",
	    "mariadb://u:p@h/db?ssl-capath=/etc/ssl",
	};
	for (size_t i = 0; i < sizeof bad_my / sizeof bad_my[0]; i++)
		ck_assert_msg(try_open(&c, bad_my[i], TEST_KEY, &s) == GW_ECONFIG, "%s: %s",
		              bad_my[i], c.err);
	/* The TLS parameters and their MySQL aliases parse (port 1 refuses
	 * before any handshake). */
	ck_assert_int_eq(try_open(&c,
	                          "mariadb://u:p@127.0.0.1:1/db?ssl-mode=verify-ca&ssl-ca=/ca.pem&"
	                          "ssl-cert=/c.pem&ssl-key=/c.key",
	                          TEST_KEY, &s),
	                 GW_EUNAVAIL);
	ck_assert_int_eq(try_open(&c,
	                          "mariadb://u:p@127.0.0.1:1/db?sslrootcert=/ca.pem&sslcert=/c.pem&"
	                          "sslkey=/c.key&connect_timeout=3",
	                          TEST_KEY, &s),
	                 GW_EUNAVAIL);
	ck_assert_int_eq(try_open(&c, "mariadb://u:S3cretPw@127.0.0.1:1/db", TEST_KEY, &s),
	                 GW_EUNAVAIL);
	ck_assert_msg(!strstr(c.err, "S3cretPw") && strstr(c.err, "u@127.0.0.1:1/db"), "%s", c.err);
	ck_assert_int_eq(
	    try_open(&c, "mysql://u%40x:p%40ss@[::1]:1/d%62?connect_timeout=3", TEST_KEY, &s),
	    GW_EUNAVAIL);
	ck_assert_msg(strstr(c.err, "u@x@::1:1/db"), "%s", c.err);
	ck_assert_int_eq(try_open(&c, "mariadb://127.0.0.1:1/db", NULL, &s), GW_EUNAVAIL);
	ck_assert_ptr_null(s);
#endif
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

/* wanted reports whether SPAWN_TEST_TARGETS (unset: all) names the target. */
static bool wanted(const char *name)
{
	const char *list = getenv("SPAWN_TEST_TARGETS");
	if (!list || !*list)
		return true;
	size_t n = strlen(name);
	for (const char *p = list; (p = strstr(p, name)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

static target *add_env_target(const char *name, const char *driver)
{
	char var[64];
	snprintf(var, sizeof var, "SPAWN_TEST_%s_URL", driver);
	const char *url = getenv(var);
	if (!url || !*url || !wanted(name))
		return NULL;
	target *t = &targets[ntargets++];
	t->name = name;
	snprintf(t->url, sizeof t->url, "%s", url);
	t->keyless_url = t->url;
	snprintf(var, sizeof var, "SPAWN_TEST_%s_STOP", driver);
	t->stop_cmd = getenv(var);
	snprintf(var, sizeof var, "SPAWN_TEST_%s_START", driver);
	t->start_cmd = getenv(var);
	if (!t->stop_cmd || !*t->stop_cmd || !t->start_cmd || !*t->start_cmd)
		t->stop_cmd = t->start_cmd = NULL;
	return t;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

#define ADD(suite, fn, timeout)                                                                    \
	do {                                                                                       \
		TCase *tc_ = tcase_create(#fn);                                                    \
		tcase_set_timeout(tc_, timeout);                                                   \
		tcase_add_checked_fixture(tc_, NULL, conf_ns_teardown);                            \
		tcase_add_loop_test(tc_, fn, 0, ntargets);                                         \
		suite_add_tcase(suite, tc_);                                                       \
	} while (0)

int main(void)
{
	target *t;
#ifdef GW_TEST_SQLITE
	if (wanted("sqlite")) {
		t = &targets[ntargets++];
		*t = (target){
		    .name = "sqlite", .file_backed = true, .keyless_url = "sqlite::memory:"};
		conf_raw_sqlite(t);
	}
#endif
	/* Without its driver a target has no hooks: its tests fail at open. */
	if ((t = add_env_target("postgres", "POSTGRES")))
		conf_raw_postgres(t);
	if ((t = add_env_target("mariadb", "MARIADB")))
		conf_raw_mariadb(t);
	if (ntargets == 0) {
		fprintf(stderr, "store_conformance: no statestore target (sqlite not built, "
		                "no SPAWN_TEST_*_URL set, or none in SPAWN_TEST_TARGETS)\n");
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
	ADD(s, an_older_revision_replayed_as_the_latest_does_not_authenticate, 30);
	ADD(s, a_row_sealed_before_envelope_2_still_loads, 30);
	ADD(s, a_batch_that_fails_in_storage_writes_nothing, 30);
	ADD(s, the_database_file_holds_no_plaintext, 60);
	ADD(s, a_schema_version_newer_than_the_build_is_refused, 30);
	ADD(s, two_stores_racing_on_one_actor_win_each_revision_exactly_once, 120);
	ADD(s, stores_creating_one_schema_at_once_all_open, 60);
	ADD(s, a_networked_store_serves_several_threads_through_its_pool, 60);
	ADD(s, history_keeps_the_last_n_older_revisions, 30);
	ADD(s, a_server_that_goes_away_fails_calls_with_unavail_and_loses_nothing, 120);
	ADD(s, a_wrong_password_is_unavailable_and_never_echoed, 30);
	ADD(s, the_alias_scheme_opens_the_same_store, 30);
	conf_add_fencing(s, ntargets);
	conf_add_schedule(s, ntargets);
	conf_add_effects(s, ntargets);
	conf_add_activate(s, ntargets);
	conf_add_atrest(s, ntargets);
	conf_add_members(s, ntargets);
	conf_add_lease(s, ntargets);
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
