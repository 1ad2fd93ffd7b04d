/* store_bench.c - bench-store: the statestores alone, through gw_store (the
 * same front the gateway's persist thread uses: driver + AES-256-GCM).
 *
 * For every --url (sqlite file, postgres, mariadb), every round measures:
 *
 *   load      cold load latency: N actors are written (batched), the store
 *             is closed and opened again (no client-side state survives),
 *             then each actor is loaded exactly once in a shuffled order:
 *             p50/p99 of gw_store_load (round trip + decrypt + check).
 *   activate  the same on another N actors, timing what the gateway does to
 *             activate an actor: gw_store_acquire (a new activation epoch:
 *             a write transaction) and then gw_store_load.
 *   activate_batch  the same on another N actors, activated by
 *             gw_store_activate_batch in batches of --activate-batch (what
 *             the persist thread does with activations that arrive
 *             together): per-actor time = a batch's time / its size; the
 *             summary compares its mean with the one-by-one mean of the
 *             same round.
 *   save      closed-loop saves from one thread (as the persist thread) for
 *             each --sizes x --batches cell over a working set of W actors
 *             whose rows exist: batch 1 is one transaction per save (one by
 *             one), batch B > 1 writes B actors per transaction (group
 *             commit). saves/s and the commit latency of one batch. Like
 *             the gateway's, every save is fenced: it carries the epoch
 *             gw_store_acquire gave its actor (--unfenced: epoch 0, the
 *             store skips the fence check).
 *   fsync     (--fsync-dir) the disk's floor: p50/p99 of a 4 KiB pwrite +
 *             fdatasync in that directory, the cost every durable commit pays
 *             at least once.
 *
 * Interleaving: in each round every store runs every test before the next
 * test starts, so a ratio between stores (x_sqlite) or between batch sizes
 * (x_batch1) compares runs taken seconds apart. The summary shows medians
 * over rounds; ratios are medians of the per-round ratios.
 *
 * Honesty: every load checks the plaintext byte for byte and the revision;
 * every save checks its per-row result; any failure counts as an error,
 * prints a first_error line, and makes the exit status 1 (RESULT: FAILED).
 * Every test is bounded by its duration or its actor count, and a watchdog
 * (--timeout-s) ends a run that hangs (a store call that never returns).
 *
 * Output (stable keys, one line per measurement, scripts parse them):
 *   fsync    round= n= p50_us= p99_us=
 *   load     store= round= size= n= p50_us= p99_us= mean_us= open_ms= errors=
 *   activate store= round= size= n= p50_us= p99_us= mean_us= errors=
 *   activate_batch store= round= size= n= batch= p50_us= p99_us= mean_us= errors=
 *            (per actor: p50/p99 over batches of batch time / batch size)
 *   save     store= round= size= batch= saves= batches= seconds= saves_per_s=
 *            commit_p50_us= commit_p99_us= errors=
 * then a human-readable summary and RESULT: ok | RESULT: FAILED.
 * Exit status: 0 ok, 1 errors, 2 bad flags.
 *
 * Count mode (--count SYSTEM --count-actors N): no benchmark; reads actors
 * <prefix>0..N-1 of SYSTEM as a gateway stored them (serialized
 * spawn.actors.ActorState whose Any holds bench-echo-host's 8-byte call
 * counter) and prints, per store:
 *   count store= system= actors= found= missing= sum= errors=
 * bench/stores.sh compares sum with the calls the load generator saw
 * acknowledged: what a gateway acknowledged must be in the store.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "spawn/actors/actor.pb-c.h"
#include "store.h"

#define MAX_URLS    8
#define MAX_SIZES   4
#define MAX_BATCHES 6
#define MAX_ROUNDS  20
#define TYPE_URL    "type.googleapis.com/bench.State"
/* The default key: bench data is no secret, and a fixed key lets a rerun
 * open a database an earlier run set up (its key check). */
#define BENCH_KEY                                                                                  \
	"YmVuY2gtc3RvcmU6IG5vdCBhIHNlY3JldCBrZXkhISE=" /* "bench-store: not a secret key!!!" */

typedef struct target {
	const char *url;
	char label[32];
	uint64_t *revs[MAX_SIZES];   /* working-set revisions per size; NULL = not created */
	uint64_t *epochs[MAX_SIZES]; /* working-set activation epochs (0 with --unfenced) */
} target;

/* Per-round results; NaN-free: a missing value is < 0. */
typedef struct cell {
	double v[MAX_ROUNDS];
} cell;

static struct {
	target t[MAX_URLS];
	int nt;
	long sizes[MAX_SIZES];
	int nsizes;
	long batches[MAX_BATCHES];
	int nbatches;
	long rounds, actors, save_ms, warmup_ms, working_set, timeout_s, fsync_n, act_batch;
	bool unfenced;
	bool lease;      /* --lease: activations take the activation lease */
	char member[96]; /* --lease: the member id this run joined as */
	const char *fsync_dir, *keys;
	const char *count_system, *count_prefix;
	long count_actors;
	char prefix[48];
	uint64_t errors;
	bool first_error_shown;
	/* results */
	cell load_p50[MAX_URLS][MAX_SIZES], load_p99[MAX_URLS][MAX_SIZES];
	cell act_p50[MAX_URLS][MAX_SIZES], act_p99[MAX_URLS][MAX_SIZES];
	cell act_mean[MAX_URLS][MAX_SIZES], bat_mean[MAX_URLS][MAX_SIZES];
	cell bat_p50[MAX_URLS][MAX_SIZES], bat_p99[MAX_URLS][MAX_SIZES];
	cell rate[MAX_URLS][MAX_SIZES][MAX_BATCHES];
	cell commit_p50[MAX_URLS][MAX_SIZES][MAX_BATCHES],
	    commit_p99[MAX_URLS][MAX_SIZES][MAX_BATCHES];
	cell fsync_p50, fsync_p99;
} B;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p) {
		fprintf(stderr, "bench-store: out of memory\n");
		exit(1);
	}
	return p;
}

static void error_at(const char *what, const target *t, const char *detail)
{
	B.errors++;
	if (!B.first_error_shown) {
		B.first_error_shown = true;
		printf("first_error store=%s op=%s msg=\"%s\"\n", t ? t->label : "-", what, detail);
		fflush(stdout);
	}
	fprintf(stderr, "bench-store: %s %s: %s\n", t ? t->label : "-", what, detail);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "bench-store: watchdog: the run exceeded --timeout-s; "
	                          "a store call is stuck\nRESULT: FAILED (watchdog)\n";
	ssize_t w = write(STDOUT_FILENO, msg, sizeof msg - 1);
	(void)w;
	_exit(1);
}

/* ---- flags ------------------------------------------------------------- */

static int parse_list(const char *name, const char *val, long *out, int cap, long min, long max)
{
	if (!val) {
		fprintf(stderr, "%s needs a value\n", name);
		return -1;
	}
	char *dup = strdup(val), *save = NULL;
	int n = 0;
	for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == cap) {
			fprintf(stderr, "%s: at most %d values\n", name, cap);
			free(dup);
			return -1;
		}
		if (bench_flag_long(name, tok, min, max, &out[n]))
			return free(dup), -1;
		n++;
	}
	free(dup);
	if (n == 0) {
		fprintf(stderr, "%s: empty list\n", name);
		return -1;
	}
	return n;
}

static void label_of(const char *url, char *out, size_t len)
{
	const char *p = strstr(url, "://");
	size_t n = p ? (size_t)(p - url) : strcspn(url, ":");
	char scheme[16];
	snprintf(scheme, sizeof scheme, "%.*s", (int)n, url);
	if (!strcmp(scheme, "postgresql"))
		snprintf(scheme, sizeof scheme, "postgres");
	else if (!strcmp(scheme, "mysql"))
		snprintf(scheme, sizeof scheme, "mariadb");
	/* Two URLs of one scheme get distinct labels. */
	int dup = 0;
	for (int i = 0; i < B.nt; i++)
		if (!strncmp(B.t[i].label, scheme, strlen(scheme)))
			dup++;
	if (dup)
		snprintf(out, len, "%s%d", scheme, dup + 1);
	else
		snprintf(out, len, "%s", scheme);
}

static void usage(const char *prog)
{
	fprintf(
	    stderr,
	    "usage: %s --url URL [--url URL ...] [options]\n"
	    "  --url URL            a statestore URL (sqlite:///path.db, postgres://..., "
	    "mariadb://...)\n"
	    "  --rounds N           interleaved rounds [3]\n"
	    "  --actors N           actors per cold-load and per activation test, per round "
	    "[1000]\n"
	    "  --sizes LIST         state sizes in bytes [64,4096]\n"
	    "  --batches LIST       saves per transaction [1,64,256]\n"
	    "  --save-ms MS         measured time of each save cell [1500]\n"
	    "  --warmup-ms MS       untimed saves before each save cell [200]\n"
	    "  --working-set N      actors the save cells rotate over (>= largest batch) [1024]\n"
	    "  --fsync-dir DIR      also time 4 KiB pwrite+fdatasync in DIR (the disk floor)\n"
	    "  --fsync-n N          fdatasyncs per round for that probe [200]\n"
	    "  --activate-batch N   actors per gw_store_activate_batch [256: the maximum]\n"
	    "  --keys K             keyring (default: a fixed bench key, no secret)\n"
	    "  --unfenced           saves carry epoch 0 (no fence check; the gateway always "
	    "fences)\n"
	    "  --lease              activate and activate_batch take the activation lease as a\n"
	    "                       member of the cluster (postgres, mariadb): what a gateway\n"
	    "                       in cluster mode does (gw_store_lease_*)\n"
	    "  --timeout-s S        watchdog for the whole run [900]\n"
	    "count mode (no benchmark; needs the gateway's --keys):\n"
	    "  --count SYSTEM       sum bench-echo-host's call counters stored for SYSTEM\n"
	    "  --count-actors N     actors <prefix>0..N-1 [1000]\n"
	    "  --count-prefix P     actor name prefix [bench-]\n",
	    prog);
}

/* ---- data -------------------------------------------------------------- */

/* fill writes the content actor `idx` has at revision `rev`: a header
 * naming both, then bytes derived from them, so a load can check every
 * byte (and a row of another actor or revision never passes). */
static void fill(uint8_t *buf, size_t len, uint64_t idx, uint64_t rev)
{
	uint64_t x = idx * 0x9E3779B97F4A7C15ull ^ rev * 0xC2B2AE3D27D4EB4Full ^ len;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	uint64_t hdr[2] = {idx, rev};
	memcpy(buf, hdr, len < sizeof hdr ? len : sizeof hdr);
}

static gw_err open_store(target *t, gw_store **out)
{
	char why[256] = "";
	gw_store_opts o = {.keys = B.keys, .err = why, .errlen = sizeof why, .pool_size = 1};
	gw_err e = gw_store_open(out, t->url, &o);
	if (e != GW_OK) {
		char msg[400];
		snprintf(msg, sizeof msg, "%s: %s", gw_err_name(e), why[0] ? why : gw_strerror(e));
		error_at("open", t, msg);
		return e;
	}
	if (B.lease) {
		/* A live member of the cluster (its row ACTIVE), as a gateway in
		 * cluster mode is; joined once per store (a second join of the
		 * id is ECONFLICT: the row is there). */
		bool alive = false;
		e = gw_store_member_join(*out, B.member, "127.0.0.1:1", "", NULL);
		if (e == GW_OK || e == GW_ECONFLICT)
			e = gw_store_member_heartbeat(*out, B.member, GW_MEMBER_ACTIVE, "", 1,
			                              &alive, NULL);
		if (e != GW_OK || !alive) {
			error_at("open", t,
			         "--lease: cannot join as a member (sqlite has no leases)");
			gw_store_close(*out);
			*out = NULL;
			return e != GW_OK ? e : GW_ECONFIG;
		}
	}
	return GW_OK;
}

/* write_new creates actors name0..n-1 of system sys at revision 1, 256 per
 * transaction. Returns false on any failure (counted). */
static bool write_new(target *t, gw_store *s, const char *sys, size_t n, size_t size)
{
	enum { CHUNK = 256 };
	gw_state st[CHUNK];
	gw_err res[CHUNK];
	char names[CHUNK][24];
	uint8_t *data = xmalloc(CHUNK * size);
	bool ok = true;
	for (size_t base = 0; base < n && ok; base += CHUNK) {
		size_t k = n - base < CHUNK ? n - base : CHUNK;
		for (size_t i = 0; i < k; i++) {
			snprintf(names[i], sizeof names[i], "a%zu", base + i);
			fill(data + i * size, size, base + i, 1);
			st[i] = (gw_state){.key = {sys, names[i]},
			                   .type_url = TYPE_URL,
			                   .data = data + i * size,
			                   .len = size,
			                   .expected = 0};
		}
		gw_err e = gw_store_save_batch(s, st, k, res);
		for (size_t i = 0; i < k && ok; i++) {
			if (e != GW_OK || res[i] != GW_OK) {
				char msg[200];
				snprintf(msg, sizeof msg, "create %s/%s: %s", sys, names[i],
				         gw_err_name(e != GW_OK ? e : res[i]));
				error_at("create", t, msg);
				ok = false;
			}
		}
	}
	free(data);
	return ok;
}

static void shuffle(size_t *v, size_t n, uint64_t *seed)
{
	for (size_t i = 0; i + 1 < n; i++) {
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		size_t j = i + (size_t)((*seed >> 33) % (n - i));
		size_t tmp = v[i];
		v[i] = v[j];
		v[j] = tmp;
	}
}

static double q_us(const bench_hist *h, double q)
{
	return h->count ? (double)bench_hist_quantile(h, q) / 1000.0 : -1;
}

/* ---- load and activate --------------------------------------------------- */

/* What load_test times. */
enum { T_LOAD, T_ACTIVATE, T_BATCH };
static const char *const t_name[] = {"load", "act", "bat"};

/* check_loaded: actor i of sys loaded as written (revision 1); else an
 * error of test what. */
static bool check_loaded(target *t, const char *what, const char *sys, const char *name, size_t i,
                         size_t size, uint8_t *want, const gw_loaded *l)
{
	fill(want, size, i, 1);
	if (l->len == size && !memcmp(l->data, want, size) && l->revision == 1 &&
	    !strcmp(l->type_url, TYPE_URL))
		return true;
	char msg[200];
	snprintf(msg, sizeof msg, "%s/%s: wrong content (len %zu, revision %" PRIu64 ")", sys, name,
	         l->len, l->revision);
	error_at(what, t, msg);
	return false;
}

/* batch_run activates the n actors order[0..n) of sys in batches of
 * B.act_batch; records each batch's time per actor into h; returns the
 * total time (ns) of the batches without errors. */
static double batch_run(target *t, gw_store *s, const char *sys, const size_t *order, size_t n,
                        size_t size, uint8_t *want, bench_hist *h)
{
	size_t max = (size_t)B.act_batch;
	gw_actor_key *keys = xmalloc(max * sizeof *keys);
	char(*names)[24] = xmalloc(max * sizeof *names);
	uint64_t *epochs = xmalloc(max * sizeof *epochs);
	gw_loaded *out = xmalloc(max * sizeof *out);
	gw_err *res = xmalloc(max * sizeof *res);
	double sum = 0;
	for (size_t k0 = 0; k0 < n; k0 += max) {
		size_t nb = n - k0 < max ? n - k0 : max;
		for (size_t j = 0; j < nb; j++) {
			snprintf(names[j], sizeof names[j], "a%zu", order[k0 + j]);
			keys[j] = (gw_actor_key){sys, names[j]};
		}
		int64_t t0 = now_ns();
		gw_err e =
		    B.lease ? gw_store_lease_activate(s, keys, nb, B.member, epochs, NULL, out, res)
		            : gw_store_activate_batch(s, keys, nb, epochs, out, res);
		int64_t dt = now_ns() - t0;
		bool ok = e == GW_OK;
		char msg[200];
		if (!ok) {
			snprintf(msg, sizeof msg, "activate_batch of %zu in %s: %s", nb, sys,
			         gw_err_name(e));
			error_at("activate_batch", t, msg);
			continue;
		}
		for (size_t j = 0; j < nb; j++) {
			if (res[j] != GW_OK || epochs[j] == 0) {
				snprintf(msg, sizeof msg, "activate_batch %s/%s: %s", sys, names[j],
				         gw_err_name(res[j]));
				error_at("activate_batch", t, msg);
				ok = false;
				continue;
			}
			ok = check_loaded(t, "activate_batch", sys, names[j], order[k0 + j], size,
			                  want, &out[j]) &&
			     ok;
			gw_loaded_fini(&out[j]);
		}
		if (ok) {
			bench_hist_record(h, (uint64_t)dt / nb);
			sum += (double)dt;
		}
	}
	free(keys);
	free(names);
	free(epochs);
	free(out);
	free(res);
	return sum;
}

/* load_test: see the header. T_ACTIVATE: acquire before each load;
 * T_BATCH: gw_store_activate_batch. */
static void load_test(target *t, int ti, int si, int round, int mode)
{
	size_t size = (size_t)B.sizes[si], n = (size_t)B.actors;
	bool activate = mode == T_ACTIVATE;
	char sys[96];
	snprintf(sys, sizeof sys, "%s-%s-r%d-s%zu", B.prefix, t_name[mode], round, size);
	gw_store *s = NULL;
	uint64_t err0 = B.errors;
	if (open_store(t, &s) != GW_OK)
		return;
	bool ok = write_new(t, s, sys, n, size);
	gw_store_close(s);
	s = NULL;
	if (!ok)
		return;
	/* Cold for the client: a new connection, nothing cached in the process. */
	int64_t o0 = now_ns();
	if (open_store(t, &s) != GW_OK)
		return;
	double open_ms = (double)(now_ns() - o0) / 1e6;
	size_t *order = xmalloc(n * sizeof *order);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	uint64_t seed = (uint64_t)round * 1000003u + (uint64_t)si * 7919u + (uint64_t)mode * 17;
	shuffle(order, n, &seed);
	uint8_t *want = xmalloc(size);
	bench_hist *h = xmalloc(sizeof *h);
	bench_hist_init(h);
	double sum = 0;
	if (mode == T_BATCH)
		sum = batch_run(t, s, sys, order, n, size, want, h);
	for (size_t k = 0; mode != T_BATCH && k < n; k++) {
		size_t i = order[k];
		char name[24];
		snprintf(name, sizeof name, "a%zu", i);
		gw_actor_key key = {sys, name};
		gw_loaded l;
		uint64_t epoch = 0;
		int64_t t0 = now_ns();
		gw_err e = !activate ? GW_OK
		           : B.lease ? gw_store_lease_acquire(s, &key, B.member, &epoch, NULL, 0)
		                     : gw_store_acquire(s, &key, &epoch);
		if (e == GW_OK)
			e = gw_store_load(s, &key, &l);
		int64_t dt = now_ns() - t0;
		char msg[200];
		if (e != GW_OK) {
			snprintf(msg, sizeof msg, "%s %s/%s: %s",
			         activate ? "acquire+load" : "load", sys, name, gw_err_name(e));
			error_at(activate ? "activate" : "load", t, msg);
			continue;
		}
		if (activate && epoch == 0) {
			snprintf(msg, sizeof msg, "%s/%s: epoch 0", sys, name);
			error_at("activate", t, msg);
		} else if (check_loaded(t, activate ? "activate" : "load", sys, name, i, size, want,
		                        &l)) {
			bench_hist_record(h, (uint64_t)dt);
			sum += (double)dt;
		}
		gw_loaded_fini(&l);
	}
	gw_store_close(s);
	double p50 = q_us(h, 0.50), p99 = q_us(h, 0.99);
	double mean = h->count ? sum / (double)h->count / 1000.0 : -1;
	if (mode == T_BATCH) {
		/* per actor: the batches' total time over their n actors (a
		 * round with an error has no mean) */
		mean = h->count && B.errors == err0 ? sum / (double)n / 1000.0 : -1;
		printf("activate_batch store=%s round=%d size=%zu n=%zu batch=%ld p50_us=%.1f "
		       "p99_us=%.1f mean_us=%.1f errors=%" PRIu64 "\n",
		       t->label, round, size, n, B.act_batch, p50, p99, mean, B.errors - err0);
		B.bat_mean[ti][si].v[round - 1] = mean;
		B.bat_p50[ti][si].v[round - 1] = p50;
		B.bat_p99[ti][si].v[round - 1] = p99;
	} else if (activate) {
		printf("activate store=%s round=%d size=%zu n=%" PRIu64
		       " p50_us=%.1f p99_us=%.1f mean_us=%.1f errors=%" PRIu64 "\n",
		       t->label, round, size, h->count, p50, p99, mean, B.errors - err0);
		B.act_p50[ti][si].v[round - 1] = p50;
		B.act_p99[ti][si].v[round - 1] = p99;
		B.act_mean[ti][si].v[round - 1] = mean;
	} else {
		printf("load store=%s round=%d size=%zu n=%" PRIu64
		       " p50_us=%.1f p99_us=%.1f mean_us=%.1f open_ms=%.1f errors=%" PRIu64 "\n",
		       t->label, round, size, h->count, p50, p99, mean, open_ms, B.errors - err0);
		B.load_p50[ti][si].v[round - 1] = p50;
		B.load_p99[ti][si].v[round - 1] = p99;
	}
	fflush(stdout);
	free(h);
	free(want);
	free(order);
}

/* ---- saves ---------------------------------------------------------------- */

/* save_run saves batches of `batch` distinct actors of the working set
 * (round robin from *next) for ms milliseconds; records commit latencies
 * into h when h is not NULL. Returns saves made; false in *ok on failure. */
static uint64_t save_run(target *t, gw_store *s, int si, size_t batch, long ms, size_t *next,
                         bench_hist *h, uint64_t *batches, bool *ok)
{
	size_t size = (size_t)B.sizes[si], w = (size_t)B.working_set;
	uint64_t *revs = t->revs[si], *epochs = t->epochs[si];
	char sys[96];
	snprintf(sys, sizeof sys, "%s-ws-s%zu", B.prefix, size);
	gw_state *st = xmalloc(batch * sizeof *st);
	gw_err *res = xmalloc(batch * sizeof *res);
	char(*names)[24] = xmalloc(batch * sizeof *names);
	size_t *idx = xmalloc(batch * sizeof *idx);
	uint8_t *data = xmalloc(batch * size);
	uint64_t saves = 0;
	int64_t end = now_ns() + (int64_t)ms * 1000000;
	while (*ok && now_ns() < end) {
		for (size_t i = 0; i < batch; i++) {
			idx[i] = *next;
			*next = (*next + 1) % w;
			snprintf(names[i], sizeof names[i], "a%zu", idx[i]);
			fill(data + i * size, size, idx[i], revs[idx[i]] + 1);
			st[i] = (gw_state){.key = {sys, names[i]},
			                   .type_url = TYPE_URL,
			                   .data = data + i * size,
			                   .len = size,
			                   .expected = revs[idx[i]],
			                   .epoch = epochs[idx[i]]};
		}
		int64_t t0 = now_ns();
		gw_err e = gw_store_save_batch(s, st, batch, res);
		int64_t dt = now_ns() - t0;
		(*batches)++;
		bool batch_ok = e == GW_OK;
		for (size_t i = 0; i < batch; i++) {
			if (e == GW_OK && res[i] == GW_OK) {
				revs[idx[i]]++;
				saves++;
				continue;
			}
			batch_ok = false;
			char msg[200];
			snprintf(msg, sizeof msg, "save %s/%s (expected revision %" PRIu64 "): %s",
			         sys, names[i], revs[idx[i]], gw_err_name(e != GW_OK ? e : res[i]));
			error_at("save", t, msg);
			*ok = false;
		}
		if (batch_ok && h)
			bench_hist_record(h, (uint64_t)dt);
	}
	free(data);
	free(idx);
	free(names);
	free(res);
	free(st);
	return saves;
}

static void save_test(target *t, int ti, int si, int bi, int round)
{
	size_t size = (size_t)B.sizes[si], batch = (size_t)B.batches[bi];
	uint64_t err0 = B.errors;
	gw_store *s = NULL;
	if (open_store(t, &s) != GW_OK)
		return;
	if (!t->revs[si]) {
		/* The working set: rows that exist, so every save replaces one. */
		char sys[96];
		snprintf(sys, sizeof sys, "%s-ws-s%zu", B.prefix, size);
		if (!write_new(t, s, sys, (size_t)B.working_set, size)) {
			gw_store_close(s);
			return;
		}
		uint64_t *revs = xmalloc((size_t)B.working_set * sizeof(uint64_t));
		uint64_t *epochs = xmalloc((size_t)B.working_set * sizeof(uint64_t));
		bool ok = true;
		for (long i = 0; i < B.working_set && ok; i++) {
			revs[i] = 1;
			if (B.unfenced)
				continue;
			/* Activate it, as the gateway does before it saves. */
			char name[24];
			snprintf(name, sizeof name, "a%ld", i);
			gw_actor_key key = {sys, name};
			gw_err e = gw_store_acquire(s, &key, &epochs[i]);
			if (e != GW_OK) {
				char msg[200];
				snprintf(msg, sizeof msg, "acquire %s/%s: %s", sys, name,
				         gw_err_name(e));
				error_at("acquire", t, msg);
				ok = false;
			}
		}
		if (!ok) {
			free(revs);
			free(epochs);
			gw_store_close(s);
			return;
		}
		t->revs[si] = revs;
		t->epochs[si] = epochs;
	}
	static size_t next[MAX_URLS][MAX_SIZES];
	bool ok = true;
	uint64_t nb = 0;
	save_run(t, s, si, batch, B.warmup_ms, &next[ti][si], NULL, &nb, &ok);
	bench_hist *h = xmalloc(sizeof *h);
	bench_hist_init(h);
	nb = 0;
	int64_t t0 = now_ns();
	uint64_t saves = ok ? save_run(t, s, si, batch, B.save_ms, &next[ti][si], h, &nb, &ok) : 0;
	double secs = (double)(now_ns() - t0) / 1e9;
	gw_store_close(s);
	double rate = ok && secs > 0 ? (double)saves / secs : -1;
	printf(
	    "save store=%s round=%d size=%zu batch=%zu saves=%" PRIu64 " batches=%" PRIu64
	    " seconds=%.3f saves_per_s=%.1f commit_p50_us=%.1f commit_p99_us=%.1f errors=%" PRIu64
	    "\n",
	    t->label, round, size, batch, saves, nb, secs, rate, q_us(h, 0.5), q_us(h, 0.99),
	    B.errors - err0);
	fflush(stdout);
	B.rate[ti][si][bi].v[round - 1] = rate;
	B.commit_p50[ti][si][bi].v[round - 1] = q_us(h, 0.5);
	B.commit_p99[ti][si][bi].v[round - 1] = q_us(h, 0.99);
	free(h);
}

/* ---- fsync probe ----------------------------------------------------------- */

static void fsync_probe(int round)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/bench-store-fsync.%d", B.fsync_dir, (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		error_at("fsync", NULL, strerror(errno));
		return;
	}
	uint8_t buf[4096];
	memset(buf, 0xA5, sizeof buf);
	bench_hist *h = xmalloc(sizeof *h);
	bench_hist_init(h);
	for (long i = 0; i < B.fsync_n; i++) {
		buf[0] = (uint8_t)i;
		int64_t t0 = now_ns();
		/* Rewrite one block in place, like a log that wraps: the data
		 * must reach the disk each time, the file's size never changes
		 * after the first write (as a WAL file in steady state). */
		if (pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf || fdatasync(fd) != 0) {
			error_at("fsync", NULL, strerror(errno));
			break;
		}
		if (i > 0)
			bench_hist_record(h, (uint64_t)(now_ns() - t0));
	}
	close(fd);
	unlink(path);
	printf("fsync round=%d n=%" PRIu64 " p50_us=%.1f p99_us=%.1f\n", round, h->count,
	       q_us(h, 0.5), q_us(h, 0.99));
	fflush(stdout);
	B.fsync_p50.v[round - 1] = q_us(h, 0.5);
	B.fsync_p99.v[round - 1] = q_us(h, 0.99);
	free(h);
}

/* ---- summary ---------------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* median of the values >= 0 of v[0..n); -1 when none. */
static double median(const double *v, int n)
{
	double tmp[MAX_ROUNDS];
	int k = 0;
	for (int i = 0; i < n; i++)
		if (v[i] >= 0)
			tmp[k++] = v[i];
	if (!k)
		return -1;
	qsort(tmp, (size_t)k, sizeof *tmp, cmp_d);
	return k % 2 ? tmp[k / 2] : (tmp[k / 2 - 1] + tmp[k / 2]) / 2;
}

static double med(const cell *c)
{
	return median(c->v, (int)B.rounds);
}

/* median over rounds of a[r] / b[r] (rounds where both are known). */
static double med_ratio(const cell *a, const cell *b)
{
	double r[MAX_ROUNDS];
	for (int i = 0; i < B.rounds; i++)
		r[i] = a->v[i] >= 0 && b->v[i] > 0 ? a->v[i] / b->v[i] : -1;
	return median(r, (int)B.rounds);
}

static void fmt(char *out, size_t len, const char *f, double v)
{
	if (v < 0)
		snprintf(out, len, "-");
	else
		snprintf(out, len, f, v);
}

static void summary(void)
{
	int base = -1, one = -1;
	for (int i = 0; i < B.nt; i++)
		if (!strcmp(B.t[i].label, "sqlite")) {
			base = i;
			break;
		}
	for (int b = 0; b < B.nbatches; b++)
		if (B.batches[b] == 1)
			one = b;
	char a[32], b2[32], c[32], d[32], e[32];
	printf("\n");
	if (B.fsync_dir) {
		printf(
		    "disk: 4 KiB pwrite+fdatasync p50 %.0f us, p99 %.0f us (median of %ld rounds);"
		    " p50 by round:",
		    med(&B.fsync_p50), med(&B.fsync_p99), B.rounds);
		/* A round whose floor moved is a round a neighbour disturbed. */
		for (int r = 0; r < B.rounds; r++)
			printf(" %.0f", B.fsync_p50.v[r]);
		printf(" us\n\n");
	}
	printf("cold load (gw_store_load: round trip + decrypt; each of %ld actors once, new "
	       "connection)\n"
	       "and activation (gw_store_acquire + gw_store_load); medians over %ld rounds\n",
	       B.actors, B.rounds);
	printf("%-10s %6s %12s %12s %12s %12s  %s\n", "store", "size", "load_p50_us", "load_p99_us",
	       "act_p50_us", "act_p99_us", "load_p50/sqlite  act_p50/sqlite");
	for (int t = 0; t < B.nt; t++)
		for (int s = 0; s < B.nsizes; s++) {
			fmt(a, sizeof a, "%.1f", med(&B.load_p50[t][s]));
			fmt(b2, sizeof b2, "%.1f", med(&B.load_p99[t][s]));
			fmt(c, sizeof c, "%.1f", med(&B.act_p50[t][s]));
			fmt(d, sizeof d, "%.1f", med(&B.act_p99[t][s]));
			char note[96] = "";
			if (base >= 0 && t != base) {
				fmt(e, sizeof e, "x%.2f",
				    med_ratio(&B.load_p50[t][s], &B.load_p50[base][s]));
				char f2[32];
				fmt(f2, sizeof f2, "x%.2f",
				    med_ratio(&B.act_p50[t][s], &B.act_p50[base][s]));
				snprintf(note, sizeof note, "%-16s %s", e, f2);
			}
			printf("%-10s %6ld %12s %12s %12s %12s  %s\n", B.t[t].label, B.sizes[s], a,
			       b2, c, d, note);
		}
	printf("\nactivation one by one (gw_store_acquire + gw_store_load) vs batched "
	       "(gw_store_activate_batch, %ld per batch), per actor;\nmedians over %ld rounds; "
	       "x_one_by_one: batched mean / one-by-one mean of the same round (median of "
	       "per-round ratios)\n",
	       B.act_batch, B.rounds);
	printf("%-10s %6s %12s %12s %13s %13s %13s\n", "store", "size", "act_mean_us",
	       "batch_mean_us", "batch_p50_us", "batch_p99_us", "x_one_by_one");
	for (int t = 0; t < B.nt; t++)
		for (int s = 0; s < B.nsizes; s++) {
			fmt(a, sizeof a, "%.1f", med(&B.act_mean[t][s]));
			fmt(b2, sizeof b2, "%.1f", med(&B.bat_mean[t][s]));
			fmt(c, sizeof c, "%.1f", med(&B.bat_p50[t][s]));
			fmt(d, sizeof d, "%.1f", med(&B.bat_p99[t][s]));
			fmt(e, sizeof e, "x%.3f", med_ratio(&B.bat_mean[t][s], &B.act_mean[t][s]));
			printf("%-10s %6ld %12s %12s %13s %13s %13s\n", B.t[t].label, B.sizes[s], a,
			       b2, c, d, e);
		}
	printf(
	    "\nsaves from one thread, batch = saves per transaction (1 = one by one); medians over "
	    "%ld rounds;\nx_batch1: over batch 1 of the same store, x_sqlite: over sqlite at the "
	    "same "
	    "cell (medians of per-round ratios);\nsaves/s@p50 = batch / commit_p50 (the rate a "
	    "median "
	    "commit gives: robust to disk stalls)\n",
	    B.rounds);
	printf("%-10s %6s %6s %9s %9s %9s %13s %13s  %s\n", "store", "size", "batch", "saves/s",
	       "x_batch1", "x_sqlite", "commit_p50_us", "commit_p99_us",
	       "saves/s@p50 x_batch1@p50");
	for (int t = 0; t < B.nt; t++)
		for (int s = 0; s < B.nsizes; s++)
			for (int bi = 0; bi < B.nbatches; bi++) {
				fmt(a, sizeof a, "%.0f", med(&B.rate[t][s][bi]));
				fmt(b2, sizeof b2, "%.1f", med(&B.commit_p50[t][s][bi]));
				fmt(c, sizeof c, "%.1f", med(&B.commit_p99[t][s][bi]));
				char x1[32] = "", xs[32] = "", pr[32] = "", px[32] = "";
				if (one >= 0 && bi != one)
					fmt(x1, sizeof x1, "x%.2f",
					    med_ratio(&B.rate[t][s][bi], &B.rate[t][s][one]));
				if (base >= 0 && t != base)
					fmt(xs, sizeof xs, "x%.2f",
					    med_ratio(&B.rate[t][s][bi], &B.rate[base][s][bi]));
				/* The rate a median commit gives (batch / commit_p50):
				 * robust to the stalls a shared disk adds to the mean. */
				cell r50;
				for (int r = 0; r < MAX_ROUNDS; r++) {
					double p = B.commit_p50[t][s][bi].v[r];
					r50.v[r] = p > 0 ? (double)B.batches[bi] * 1e6 / p : -1;
				}
				fmt(pr, sizeof pr, "%.0f", med(&r50));
				if (one >= 0 && bi != one)
					fmt(px, sizeof px, "x%.2f",
					    med_ratio(&B.commit_p50[t][s][one],
					              &B.commit_p50[t][s][bi]) *
					        (double)B.batches[bi]);
				printf("%-10s %6ld %6ld %9s %9s %9s %13s %13s  %11s %s\n",
				       B.t[t].label, B.sizes[s], B.batches[bi], a, x1, xs, b2, c,
				       pr, px);
			}
}

/* ---- count mode ------------------------------------------------------------ */

static void count_counters(target *t)
{
	gw_store *s = NULL;
	uint64_t err0 = B.errors, found = 0, missing = 0, sum = 0;
	if (open_store(t, &s) != GW_OK)
		return;
	for (long i = 0; i < B.count_actors; i++) {
		char name[128], msg[300];
		snprintf(name, sizeof name, "%s%ld", B.count_prefix, i);
		gw_actor_key key = {B.count_system, name};
		gw_loaded l;
		gw_err e = gw_store_load(s, &key, &l);
		if (e == GW_ENOTFOUND) {
			missing++;
			continue;
		}
		if (e != GW_OK) {
			snprintf(msg, sizeof msg, "load %s/%s: %s", B.count_system, name,
			         gw_err_name(e));
			error_at("count", t, msg);
			continue;
		}
		Spawn__Actors__ActorState *as =
		    spawn__actors__actor_state__unpack(NULL, l.len, l.data);
		uint64_t n = 0;
		if (!as || !as->state || as->state->value.len != sizeof n) {
			snprintf(msg, sizeof msg, "%s/%s: not an ActorState with an 8-byte counter",
			         B.count_system, name);
			error_at("count", t, msg);
		} else {
			memcpy(&n, as->state->value.data, sizeof n);
			found++;
			sum += n;
		}
		if (as)
			spawn__actors__actor_state__free_unpacked(as, NULL);
		gw_loaded_fini(&l);
	}
	gw_store_close(s);
	printf("count store=%s system=%s actors=%ld found=%" PRIu64 " missing=%" PRIu64
	       " sum=%" PRIu64 " errors=%" PRIu64 "\n",
	       t->label, B.count_system, B.count_actors, found, missing, sum, B.errors - err0);
}

/* ---- main ----------------------------------------------------------------- */

int main(int argc, char **argv)
{
	B.rounds = 3;
	B.actors = 1000;
	B.save_ms = 1500;
	B.warmup_ms = 200;
	B.working_set = 1024;
	B.timeout_s = 900;
	B.fsync_n = 200;
	B.act_batch = GW_STORE_ACTIVATE_MAX;
	B.sizes[0] = 64, B.sizes[1] = 4096, B.nsizes = 2;
	B.batches[0] = 1, B.batches[1] = 64, B.batches[2] = 256, B.nbatches = 3;
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;
		if (!strcmp(f, "--url") && v) {
			if (B.nt == MAX_URLS) {
				fprintf(stderr, "--url: at most %d\n", MAX_URLS);
				return 2;
			}
			label_of(v, B.t[B.nt].label, sizeof B.t[B.nt].label);
			B.t[B.nt++].url = v;
		} else if (!strcmp(f, "--rounds"))
			rc = bench_flag_long(f, v, 1, MAX_ROUNDS, &B.rounds);
		else if (!strcmp(f, "--actors"))
			rc = bench_flag_long(f, v, 1, 10000000, &B.actors);
		else if (!strcmp(f, "--save-ms"))
			rc = bench_flag_long(f, v, 1, 3600000, &B.save_ms);
		else if (!strcmp(f, "--warmup-ms"))
			rc = bench_flag_long(f, v, 0, 3600000, &B.warmup_ms);
		else if (!strcmp(f, "--working-set"))
			rc = bench_flag_long(f, v, 1, 10000000, &B.working_set);
		else if (!strcmp(f, "--timeout-s"))
			rc = bench_flag_long(f, v, 1, 86400, &B.timeout_s);
		else if (!strcmp(f, "--fsync-n"))
			rc = bench_flag_long(f, v, 2, 1000000, &B.fsync_n);
		else if (!strcmp(f, "--activate-batch"))
			rc = bench_flag_long(f, v, 1, GW_STORE_ACTIVATE_MAX, &B.act_batch);
		else if (!strcmp(f, "--sizes"))
			rc = (B.nsizes = parse_list(f, v, B.sizes, MAX_SIZES, 0, 16 << 20)) < 0;
		else if (!strcmp(f, "--batches"))
			rc = (B.nbatches = parse_list(f, v, B.batches, MAX_BATCHES, 1, 100000)) < 0;
		else if (!strcmp(f, "--fsync-dir") && v)
			B.fsync_dir = v;
		else if (!strcmp(f, "--keys") && v)
			B.keys = v;
		else if (!strcmp(f, "--unfenced")) {
			B.unfenced = true;
			continue; /* no value */
		} else if (!strcmp(f, "--lease")) {
			B.lease = true;
			continue; /* no value */
		} else if (!strcmp(f, "--count") && v)
			B.count_system = v;
		else if (!strcmp(f, "--count-prefix") && v)
			B.count_prefix = v;
		else if (!strcmp(f, "--count-actors"))
			rc = bench_flag_long(f, v, 1, 100000000, &B.count_actors);
		else {
			usage(argv[0]);
			return 2;
		}
		if (rc)
			return 2;
		i++;
	}
	if (B.nt == 0) {
		usage(argv[0]);
		return 2;
	}
	for (int b = 0; b < B.nbatches; b++)
		if (B.batches[b] > B.working_set) {
			fprintf(stderr, "--working-set %ld is smaller than batch %ld\n",
			        B.working_set, B.batches[b]);
			return 2;
		}
	if (B.count_system) {
		if (!B.keys) {
			fprintf(stderr, "--count needs --keys (the gateway's key)\n");
			return 2;
		}
		if (!B.count_prefix)
			B.count_prefix = "bench-";
		if (!B.count_actors)
			B.count_actors = 1000;
		signal(SIGALRM, on_alarm);
		alarm((unsigned)B.timeout_s);
		for (int t = 0; t < B.nt; t++)
			count_counters(&B.t[t]);
		return B.errors ? 1 : 0;
	}
	if (!B.keys)
		B.keys = BENCH_KEY;
	for (int t = 0; t < B.nt; t++)
		for (int s = 0; s < B.nsizes; s++)
			for (int r = 0; r < MAX_ROUNDS; r++) {
				B.load_p50[t][s].v[r] = B.load_p99[t][s].v[r] = -1;
				B.act_p50[t][s].v[r] = B.act_p99[t][s].v[r] = -1;
				B.act_mean[t][s].v[r] = B.bat_mean[t][s].v[r] = -1;
				B.bat_p50[t][s].v[r] = B.bat_p99[t][s].v[r] = -1;
				for (int b = 0; b < MAX_BATCHES; b++)
					B.rate[t][s][b].v[r] = B.commit_p50[t][s][b].v[r] =
					    B.commit_p99[t][s][b].v[r] = -1;
			}
	for (int r = 0; r < MAX_ROUNDS; r++)
		B.fsync_p50.v[r] = B.fsync_p99.v[r] = -1;
	/* Names unique to this run: repeated runs on one database never meet. */
	snprintf(B.prefix, sizeof B.prefix, "bs%ld-%d", (long)time(NULL), (int)getpid());
	snprintf(B.member, sizeof B.member, "bench-store@%s", B.prefix);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)B.timeout_s);

	printf(
	    "settings: stores=%d rounds=%ld actors=%ld save_ms=%ld warmup_ms=%ld working_set=%ld "
	    "sizes=",
	    B.nt, B.rounds, B.actors, B.save_ms, B.warmup_ms, B.working_set);
	for (int s = 0; s < B.nsizes; s++)
		printf("%s%ld", s ? "," : "", B.sizes[s]);
	printf(" batches=");
	for (int b = 0; b < B.nbatches; b++)
		printf("%s%ld", b ? "," : "", B.batches[b]);
	printf(" fenced=%s lease=%s prefix=%s\n", B.unfenced ? "no" : "yes", B.lease ? "yes" : "no",
	       B.prefix);
	for (int t = 0; t < B.nt; t++)
		printf("store %s\n", B.t[t].label); /* never the URL: it may hold a password */
	fflush(stdout);

	for (int r = 1; r <= B.rounds; r++) {
		if (B.fsync_dir)
			fsync_probe(r);
		for (int s = 0; s < B.nsizes; s++)
			for (int t = 0; t < B.nt; t++) {
				load_test(&B.t[t], t, s, r, T_LOAD);
				load_test(&B.t[t], t, s, r, T_ACTIVATE);
				load_test(&B.t[t], t, s, r, T_BATCH);
			}
		for (int s = 0; s < B.nsizes; s++)
			for (int b = 0; b < B.nbatches; b++)
				for (int t = 0; t < B.nt; t++)
					save_test(&B.t[t], t, s, b, r);
	}
	alarm(0);
	summary();
	for (int t = 0; t < B.nt; t++)
		for (int s = 0; s < MAX_SIZES; s++)
			free(B.t[t].revs[s]), free(B.t[t].epochs[s]);
	if (B.errors) {
		printf("\nRESULT: FAILED (%" PRIu64 " errors)\n", B.errors);
		return 1;
	}
	printf("\nRESULT: ok (no errors)\n");
	return 0;
}
