/* fuzz_stored_row.c - libFuzzer target: rows read back from the statestore
 * (statestores/store.c and crypto.c over the SQLite driver): the AES-GCM
 * envelope (key id, nonce, ciphertext || tag), the rotation record and
 * scheduled invocations.
 *
 * One store per process on a file in a temp dir (/dev/shm when there is
 * one), keyring "a:K1,b:K2"; raw SQL writes rows behind the store's back
 * through a connection of its own. Input: byte 0 picks the mode (mod 5):
 *   0 raw row       [klen][key id][12 nonce][8 revision][data...] written
 *                   as fz/row's latest state; gw_store_load must refuse it
 *                   or return what opens, and what opens is decoded as the
 *                   runtime decodes a state (gwi_decode_state);
 *   1 sealed state  [data...] saved with gw_store_save_batch (the store
 *                   seals it), loaded back: must be byte-identical, then
 *                   decoded as in mode 0;
 *   2 rotation      [data...] as the "rotation" meta record, then one
 *                   gw_store_rotate_step (rot_decode / the pass);
 *   3 raw schedule  [klen][key id][12 nonce][data...] as a due scheduled
 *                   invocation, claimed with gw_store_schedule_claim; what
 *                   opens is decoded as durable.c decodes it
 *                   (spawn.InvocationRequest);
 *   4 sealed sched  [data...] through gw_store_schedule_put, then claimed:
 *                   must come back byte-identical. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "runtime_int.h"
#include "store.h"

#define K1 "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
#define K2 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static gw_store *store;
static sqlite3 *raw;
static char dir[256];

static void die(const char *what)
{
	fprintf(stderr, "fuzz_stored_row: %s\n", what);
	abort();
}

static void rm_dir(void)
{
	char p[320];
	static const char *const files[] = {"db", "db-wal", "db-shm", "db.key"};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void setup(void)
{
	if (store)
		return;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof dir, "%s/spawn-fuzz-row-XXXXXX", base);
	if (!mkdtemp(dir))
		die("mkdtemp");
	atexit(rm_dir);
	char url[400], path[320];
	snprintf(path, sizeof path, "%s/db", dir);
	snprintf(url, sizeof url, "sqlite://%s", path);
	gw_store_opts so = {.keys = "a:" K1 ",b:" K2};
	if (gw_store_open(&store, url, &so) != GW_OK)
		die("gw_store_open");
	if (sqlite3_open(path, &raw) != SQLITE_OK)
		die("sqlite3_open");
	sqlite3_busy_timeout(raw, 10000);
	sqlite3_exec(raw, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
}

static void exec_bind(const char *sql, const char *key_id, const uint8_t *nonce,
                      const uint8_t *data, size_t len, bool has_n, int64_t n)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(raw, sql, -1, &st, NULL) != SQLITE_OK)
		die(sqlite3_errmsg(raw));
	int k = 1;
	if (key_id)
		sqlite3_bind_text(st, k++, key_id, -1, SQLITE_TRANSIENT);
	if (nonce)
		sqlite3_bind_blob(st, k++, nonce, 12, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, k++, len ? (const void *)data : "", (int)len, SQLITE_TRANSIENT);
	if (has_n)
		sqlite3_bind_int64(st, k++, n);
	if (sqlite3_step(st) != SQLITE_DONE)
		die(sqlite3_errmsg(raw));
	sqlite3_finalize(st);
}

/* A state that opened is decoded as the runtime decodes it. */
static void decode_state(const gw_loaded *l)
{
	gw_blob *b = gw_blob_create(l->type_url, l->data, l->len);
	if (!b)
		abort();
	gw_actor a;
	memset(&a, 0, sizeof a);
	(void)gwi_decode_state(&a, b);
	gw_blob_rele(a.state);
	gwi_ext_free(&a); /* the tags and outbox it decoded */
	gw_blob_rele(b);
}

static const gw_actor_key row_key = {"fz", "row"};

static void raw_row(const uint8_t *p, size_t n)
{
	if (n < 1)
		return;
	size_t klen = p[0];
	p++, n--;
	if (n < klen + 12 + 8)
		return;
	char key_id[256];
	memcpy(key_id, p, klen);
	key_id[klen] = '\0';
	const uint8_t *nonce = p + klen;
	int64_t rev;
	memcpy(&rev, nonce + 12, 8);
	const uint8_t *data = nonce + 20;
	size_t len = n - klen - 20;
	exec_bind("INSERT OR REPLACE INTO spawn_actor_state(system, name, revision, epoch, key_id,"
	          " nonce, data, type_url, updated_at) VALUES('fz', 'row', ?4, 0, ?1, ?2, ?3,"
	          " 'type.googleapis.com/fz.State', 0)",
	          key_id, nonce, data, len, true, rev);
	gw_loaded l;
	if (gw_store_load(store, &row_key, &l) == GW_OK) {
		decode_state(&l);
		gw_loaded_fini(&l);
	}
	uint64_t revs[8];
	size_t nr = 0;
	(void)gw_store_list_revisions(store, &row_key, revs, 8, &nr);
}

static void sealed_row(const uint8_t *p, size_t n)
{
	gw_loaded l;
	uint64_t cur = 0;
	gw_err e = gw_store_load(store, &row_key, &l);
	if (e == GW_OK) {
		cur = l.revision;
		gw_loaded_fini(&l);
	} else if (e != GW_ENOTFOUND) {
		/* A raw row of mode 0 that does not open: start over. */
		if (gw_store_remove(store, &row_key) != GW_OK)
			die("remove");
	}
	gw_state st = {.key = row_key,
	               .type_url = "type.googleapis.com/fz.State",
	               .data = p,
	               .len = n,
	               .expected = cur};
	gw_err res = GW_OK;
	if (gw_store_save_batch(store, &st, 1, &res) != GW_OK || res != GW_OK)
		return; /* a conflict with a raw row's revision: fine */
	if (gw_store_load(store, &row_key, &l) != GW_OK)
		die("a state just saved does not load");
	if (l.len != n || (n && memcmp(l.data, p, n) != 0))
		die("a state just saved loads different bytes");
	decode_state(&l);
	gw_loaded_fini(&l);
}

static void rotation(const uint8_t *p, size_t n)
{
	exec_bind("INSERT OR REPLACE INTO spawn_meta(name, value) VALUES('rotation', ?1)", NULL,
	          NULL, p, n, false, 0);
	gw_rotation prog;
	(void)gw_store_rotate_step(store, 4, &prog);
}

static void claim_all(const uint8_t *want, size_t want_len, bool must)
{
	gw_sched *v = NULL;
	size_t got = 0;
	if (gw_store_schedule_claim(store, spawn_wall_ms(), "fz", 60000, 8, &v, &got) != GW_OK)
		return;
	bool seen = false;
	for (size_t i = 0; i < got; i++) {
		/* durable.c's sched_deliver decodes an InvocationRequest. */
		Spawn__InvocationRequest *rq =
		    spawn__invocation_request__unpack(NULL, v[i].len, v[i].data);
		if (rq)
			spawn__invocation_request__free_unpacked(rq, NULL);
		if (want && v[i].len == want_len &&
		    (!want_len || !memcmp(v[i].data, want, want_len)))
			seen = true;
		(void)gw_store_schedule_done(store, v[i].id);
	}
	gw_sched_free(v, got);
	if (must && !seen)
		die("a scheduled invocation just put did not come back intact");
	sqlite3_exec(raw, "DELETE FROM spawn_schedule", NULL, NULL, NULL);
}

static void raw_sched(const uint8_t *p, size_t n)
{
	if (n < 1)
		return;
	size_t klen = p[0];
	p++, n--;
	if (n < klen + 12)
		return;
	char key_id[256];
	memcpy(key_id, p, klen);
	key_id[klen] = '\0';
	exec_bind("INSERT OR REPLACE INTO spawn_schedule(id, due_ms, owner, lease_until, key_id,"
	          " nonce, data) VALUES('fz-sched', 0, NULL, NULL, ?1, ?2, ?3)",
	          key_id, p + klen, p + klen + 12, n - klen - 12, false, 0);
	claim_all(NULL, 0, false);
}

static void sealed_sched(const uint8_t *p, size_t n)
{
	if (gw_store_schedule_put(store, "fz-sealed", 1, p, n) != GW_OK)
		return;
	claim_all(p, n, true);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	gw_log_set_level(GW_LOG_ERROR + 1); /* rows that do not open are logged */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	setup();
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	switch (data[0] % 5) {
	case 0:
		raw_row(p, n);
		break;
	case 1:
		sealed_row(p, n);
		break;
	case 2:
		rotation(p, n);
		break;
	case 3:
		raw_sched(p, n);
		break;
	default:
		sealed_sched(p, n);
		break;
	}
	return 0;
}
