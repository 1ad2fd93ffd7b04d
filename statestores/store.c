/* store.c - the statestore front: driver registry, keyring and key file,
 * key check, and the encryption of every state (see store.h, crypto.h and
 * docs/design/statestore.md).
 *
 * Open:
 *   url --scheme--> driver table (version >= 2) --open--> drv
 *   keys: opts->keys | "<db path>.key" (created 0600 if absent) | ECONFIG
 *   key check: meta "keycheck" must open under the keyring (else ECRYPTO);
 *              created (insert-only) under the primary key when the store
 *              is new, then read back and verified.
 *
 * Key rotation (gw_store_rotate_step), one pass at a time, its cursor in
 * meta "rotation" (rot_* below):
 *
 *   (no record, or another primary) --count--> SCAN STATE (cursor "", "")
 *   SCAN STATE ---- scan < asked ----> SCAN HISTORY (cursor "", "", 0)
 *   SCAN HISTORY -- scan < asked ----> SCAN SCHEDULES (cursor: id "")
 *   SCAN SCHEDULES  scan < asked ----> END
 *   END --- rows under other keys <= this pass's failed --> DONE [reseal key check]
 *   END --- more --------------------> SCAN STATE (a new pass, counters reset)
 *   DONE -- next call ---------------> END (count again)
 *
 * Invariants:
 *   1. A driver only ever receives ciphertext: rows are sealed here.
 *   2. Every row is sealed with a fresh nonce, under its system's data key
 *      (HKDF of the keyring key over the system name) and the AAD of its
 *      own actor, revision and key id (envelope 3, crypto.h), so a row
 *      moved onto another system, actor or revision fails to load
 *      (GW_ECRYPTO), and one system's data key opens no other system's
 *      rows. Rows of envelopes 1 and 2 (under the keyring key itself)
 *      still load; a save or a key rotation rewrites them as envelope 3:
 *      the rotation's scan takes every row whose key id is not the
 *      primary OR whose data does not begin with the envelope 3 magic.
 *   3. A store opens only when its key check authenticates, so a wrong key
 *      is caught at start-up, not at the first load. Two openers of a new
 *      store cannot both write a key check: the write is insert-only.
 *   4. Rotation never changes a revision and never writes a row it could
 *      not open: a re-encryption is conditional on the row being exactly
 *      the one read (revision, key id, nonce), so a concurrent save wins.
 *   5. A scheduled invocation is sealed under its target system's data key
 *      with the AAD of (system, id) (gw_store_schedule_put_sys; rows of
 *      earlier gateways: the keyring key, the AAD of (GW_SCHED_AAD_SYSTEM,
 *      id)); a claimed row that does not open is set aside in the store,
 *      never returned and never deleted (store.h). Rotation re-seals a
 *      scheduled row in the form it had (envelope 3 for its system, or the
 *      earlier form) under the primary key, conditional on its key id and
 *      nonce, so a row done or forgotten meanwhile is left alone.
 */
#include "store.h"
#include "store_int.h"

#include "crypto.h"
#include "driver_util.h"
#include "log.h"
#include "redact.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* The registry: the one place that knows which drivers were built. */
static const gw_store_ops *const drivers[] = {
#ifdef GW_HAVE_SQLITE
    &gw_sqlite_ops,
#endif
#ifdef GW_HAVE_POSTGRES
    &gw_postgres_ops,
    &gw_postgresql_ops,
#endif
#ifdef GW_HAVE_MARIADB
    &gw_mariadb_ops,
    &gw_mysql_ops,
#endif
    NULL,
};

_Static_assert(GW_SCHED_SYSTEM_MAX == GW_SEAL_SYSTEM_MAX, "one bound for a row's system");

#define KEYCHECK_META    "keycheck"
#define KEYCHECK_SYSTEM  "__spawn"
#define KEYCHECK_NAME    "keycheck"
#define KEYCHECK_VERSION 1
static const char keycheck_plain[] = "spawn statestore key check v1";

/* A key file holds one base64 key, or a keyring after a rotation. */
#define KEY_FILE_MAX 16384

void gwi_store_errf(const gw_store_opts *opts, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (opts && opts->err && opts->errlen > 0)
		snprintf(opts->err, opts->errlen, "%s", line);
	else
		GW_ERROR("statestore: %s", line);
}

/* ---- registry ----------------------------------------------------------- */

static gw_err find_driver(const char *url, const gw_store_opts *opts, const gw_store_ops **ops)
{
	size_t n = strcspn(url, ":");
	if (url[n] != ':' || n == 0) {
		char shown[512];
		gwi_store_errf(opts, "statestore URL '%s' has no scheme (try sqlite:///path.db)",
		               gw_redact_url(url, shown, sizeof shown));
		return GW_ECONFIG;
	}
	char built[128] = "";
	for (size_t i = 0; drivers[i]; i++) {
		if (strlen(drivers[i]->scheme) == n && strncmp(drivers[i]->scheme, url, n) == 0) {
			/* Members are only appended: a table of an older version
			 * lacks what this front calls. */
			if (drivers[i]->version < GW_STORE_OPS_VERSION) {
				gwi_store_errf(opts,
				               "statestore driver '%s' has version %d; this "
				               "build needs %d",
				               drivers[i]->scheme, drivers[i]->version,
				               GW_STORE_OPS_VERSION);
				return GW_ECONFIG;
			}
			*ops = drivers[i];
			return GW_OK;
		}
		size_t used = strlen(built);
		snprintf(built + used, sizeof built - used, "%s%s", used ? ", " : "",
		         drivers[i]->scheme);
	}
	gwi_store_errf(opts, "no statestore driver for scheme '%.*s' in this build (built: %s)",
	               (int)n, url, built[0] ? built : "none");
	return GW_ECONFIG;
}

/* ---- the key file ------------------------------------------------------- */

/* fsync_dir makes a new directory entry durable. File systems that cannot
 * sync a directory say EINVAL; that is not an error. */
static gw_err fsync_dir(const char *file)
{
	const char *slash = strrchr(file, '/');
	char *dir = slash ? strndup(file, slash == file ? 1 : (size_t)(slash - file)) : strdup(".");
	if (!dir)
		return GW_ENOMEM;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return GW_EIO;
	int rc = fsync(fd);
	int err = errno;
	close(fd);
	return rc == 0 || err == EINVAL ? GW_OK : GW_EIO;
}

/* key_file_read parses the keyring in the open file fd (named kpath). */
static gw_err key_file_read(int fd, const char *kpath, const gw_store_opts *opts, gw_keyring **kr)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	gw_err e = GW_ECONFIG;
	if (fstat(fd, &st) != 0) {
		gwi_store_errf(opts, "cannot stat key file %s: %s", kpath, strerror(errno));
		return GW_EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		gwi_store_errf(opts, "key file %s is not a regular file", kpath);
		return GW_ECONFIG;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		gwi_store_errf(opts,
		               "key file %s has mode %04o: group/other may not have access "
		               "(chmod 600 %s)",
		               kpath, (unsigned)(st.st_mode & 07777), kpath);
		return GW_ECONFIG;
	}
	buf = malloc(KEY_FILE_MAX + 1);
	if (!buf)
		return GW_ENOMEM;
	for (;;) {
		ssize_t r = read(fd, buf + len, KEY_FILE_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			gwi_store_errf(opts, "cannot read key file %s: %s", kpath, strerror(errno));
			e = GW_EIO;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > KEY_FILE_MAX) {
			gwi_store_errf(opts, "key file %s is larger than %d bytes", kpath,
			               KEY_FILE_MAX);
			goto out;
		}
	}
	buf[len] = '\0';
	char why[256];
	e = gw_keyring_parse(kr, buf, why, sizeof why);
	if (e != GW_OK)
		gwi_store_errf(opts, "key file %s: %s", kpath, why);
out:
	OPENSSL_cleanse(buf, KEY_FILE_MAX + 1);
	free(buf);
	return e;
}

/* key_file_create writes a fresh key to kpath, which must not exist
 * (GW_ENOTFOUND tells the caller another process created it first). */
static gw_err key_file_create(const char *kpath, const gw_store_opts *opts, gw_keyring **kr)
{
	char key[GW_KEY_B64_LEN + 2];
	gw_err e = gw_keyring_generate(key);
	if (e != GW_OK) {
		gwi_store_errf(opts, "cannot generate a statestore key: no randomness");
		return e;
	}
	int fd = open(kpath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno == EEXIST ? GW_ENOTFOUND : GW_EIO;
		if (e == GW_EIO)
			gwi_store_errf(opts, "cannot create key file %s: %s", kpath,
			               strerror(errno));
		goto out;
	}
	strcat(key, "\n");
	size_t off = 0, len = strlen(key);
	while (off < len) {
		ssize_t w = write(fd, key + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	/* The key is as precious as the database: it must be on disk before
	 * the first state sealed with it. */
	if (off != len || fsync(fd) != 0) {
		gwi_store_errf(opts, "cannot write key file %s: %s", kpath, strerror(errno));
		close(fd);
		unlink(kpath);
		e = GW_EIO;
		goto out;
	}
	close(fd);
	if (fsync_dir(kpath) != GW_OK) {
		gwi_store_errf(opts, "cannot sync the directory of key file %s", kpath);
		unlink(kpath);
		e = GW_EIO;
		goto out;
	}
	char why[256];
	e = gw_keyring_parse(kr, key, why, sizeof why);
	if (e != GW_OK) {
		gwi_store_errf(opts, "generated key: %s", why);
		unlink(kpath);
	}
	/* Logged by gw_store_open once the key check shows the store is new:
	 * a store restored without its key file must not say it has a key. */
out:
	OPENSSL_cleanse(key, sizeof key);
	return e;
}

/* key_file_keyring reads "<dbpath>.key", creating it when absent. On
 * GW_OK *kfile gets the file's path (caller frees) and *created says
 * whether this call made it, so a failed open can remove a key that never
 * protected anything. */
static gw_err key_file_keyring(const char *dbpath, const gw_store_opts *opts, gw_keyring **kr,
                               char **kfile, bool *created)
{
	size_t n = strlen(dbpath) + sizeof ".key";
	char *kpath = malloc(n);
	gw_err e = GW_EIO;
	if (!kpath)
		return GW_ENOMEM;
	snprintf(kpath, n, "%s.key", dbpath);
	/* Twice: a concurrent opener may create the file between our read
	 * attempt and our O_EXCL create. */
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = open(kpath, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			e = key_file_read(fd, kpath, opts, kr);
			close(fd);
			if (e == GW_OK) {
				*kfile = kpath;
				*created = false;
				return GW_OK;
			}
			break;
		}
		if (errno != ENOENT) {
			gwi_store_errf(opts, "cannot open key file %s: %s", kpath, strerror(errno));
			e = errno == EACCES ? GW_ECONFIG : GW_EIO;
			break;
		}
		e = key_file_create(kpath, opts, kr);
		if (e == GW_OK) {
			*kfile = kpath;
			*created = true;
			return GW_OK;
		}
		if (e != GW_ENOTFOUND)
			break;
		e = GW_EIO; /* lost the race twice: the file keeps vanishing */
		if (attempt == 1)
			gwi_store_errf(opts, "key file %s appears and disappears", kpath);
	}
	free(kpath);
	return e;
}

/* ---- the key check ------------------------------------------------------ */

/* The record: version(1) | key id length(1) | key id | nonce(12) | sealed. */

/* keycheck_write seals the key check under the primary key: insert-only
 * when create (GW_ECONFLICT: another opener's record is there), else
 * replacing the record (rotation, once every row is under the primary). */
static gw_err keycheck_write(gw_store *s, bool create)
{
	gw_sealed sl = {0};
	gw_err e = gw_seal(s->kr, KEYCHECK_SYSTEM, KEYCHECK_NAME, (const uint8_t *)keycheck_plain,
	                   sizeof keycheck_plain - 1, &sl);
	if (e != GW_OK)
		return e;
	size_t idn = strlen(sl.key_id);
	size_t n = 2 + idn + GW_NONCE_LEN + sl.len;
	uint8_t *rec = malloc(n);
	if (!rec) {
		free(sl.data);
		return GW_ENOMEM;
	}
	rec[0] = KEYCHECK_VERSION;
	rec[1] = (uint8_t)idn;
	memcpy(rec + 2, sl.key_id, idn);
	memcpy(rec + 2 + idn, sl.nonce, GW_NONCE_LEN);
	memcpy(rec + 2 + idn + GW_NONCE_LEN, sl.data, sl.len);
	e = create ? s->ops->meta_create(s->drv, KEYCHECK_META, rec, n)
	           : s->ops->meta_put(s->drv, KEYCHECK_META, rec, n);
	free(rec);
	free(sl.data);
	return e;
}

/* keycheck_verify opens the record under the keyring. id (caller storage,
 * may be NULL) gets the key id it was sealed under. kfile (may be NULL) is
 * the key file the keyring came from, made when this open created it
 * because none existed: the error then says so, since the usual cause is a
 * database restored without its key file (docs/operations.md). */
static gw_err keycheck_verify(gw_store *s, const uint8_t *rec, size_t n, const gw_store_opts *opts,
                              char id_out[GW_KEY_ID_MAX + 1], const char *kfile, bool made)
{
	char id[GW_KEY_ID_MAX + 1];
	if (n < 2 || rec[0] != KEYCHECK_VERSION || rec[1] == 0 || rec[1] > GW_KEY_ID_MAX ||
	    n < 2 + (size_t)rec[1] + GW_NONCE_LEN + GW_TAG_LEN) {
		gwi_store_errf(opts, "the statestore key check record is malformed");
		return GW_ECORRUPT;
	}
	size_t idn = rec[1];
	memcpy(id, rec + 2, idn);
	id[idn] = '\0';
	if (id_out)
		memcpy(id_out, id, idn + 1);
	gw_sealed in = {.key_id = id,
	                .data = (uint8_t *)(rec + 2 + idn + GW_NONCE_LEN),
	                .len = n - 2 - idn - GW_NONCE_LEN};
	memcpy(in.nonce, rec + 2 + idn, GW_NONCE_LEN);
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	gw_err e = gw_open(s->kr, KEYCHECK_SYSTEM, KEYCHECK_NAME, &in, &pt, &ptlen);
	if (e == GW_OK && (ptlen != sizeof keycheck_plain - 1 || memcmp(pt, keycheck_plain, ptlen)))
		e = GW_ECRYPTO;
	free(pt);
	if ((e == GW_ECRYPTO || e == GW_ECORRUPT) && kfile && made) {
		gwi_store_errf(opts,
		               "the key file %s did not exist, so a new key was made, which does "
		               "not open this database (its key check is sealed under key id "
		               "'%s'): restore the database's key file, or give its key in "
		               "SPAWN_STATESTORE_KEY",
		               kfile, id);
		return GW_ECRYPTO;
	}
	if (e == GW_ECRYPTO || e == GW_ECORRUPT) {
		gwi_store_errf(opts,
		               "statestore key does not match the stored key check (sealed "
		               "under key id '%s'; keyring has primary '%s'%s%s)",
		               id, gw_keyring_primary_id(s->kr), kfile ? " from the key file " : "",
		               kfile ? kfile : "");
		return GW_ECRYPTO;
	}
	return e;
}

/* keycheck proves at open that the keyring fits the store. A new store
 * gets a record sealed under the primary key, written insert-only; the
 * record is read back and verified either way, so of two openers racing on
 * a new store with different keys one creates the record and the other
 * (its create refused) verifies that one and fails with GW_ECRYPTO. */
static gw_err keycheck(gw_store *s, const gw_store_opts *opts, const char *kfile, bool made)
{
	uint8_t *rec = NULL;
	size_t n = 0;
	gw_err e = s->ops->meta_get(s->drv, KEYCHECK_META, &rec, &n);
	if (e == GW_ENOTFOUND) {
		e = keycheck_write(s, true);
		if (e == GW_ECONFLICT)
			e = GW_OK; /* another opener created it: verify theirs */
		if (e != GW_OK) {
			gwi_store_errf(opts, "cannot write the statestore key check: %s",
			               gw_strerror(e));
			return e;
		}
		e = s->ops->meta_get(s->drv, KEYCHECK_META, &rec, &n);
	}
	if (e != GW_OK) {
		gwi_store_errf(opts, "cannot read the statestore key check: %s", gw_strerror(e));
		return e;
	}
	e = keycheck_verify(s, rec, n, opts, NULL, kfile, made);
	free(rec);
	return e;
}

/* ---- open / close ------------------------------------------------------- */

gw_err gw_store_open(gw_store **out, const char *url, const gw_store_opts *opts)
{
	gw_store *s = NULL;
	char *kfile = NULL;   /* the key file the keyring came from, if any */
	bool created = false; /* made by this call: removed on failure */
	const gw_store_ops *ops = NULL;
	gw_err e;
	if (!out || !url)
		return GW_EINVAL;
	if ((e = find_driver(url, opts, &ops)) != GW_OK)
		return e;
	s = calloc(1, sizeof *s);
	if (!s)
		return GW_ENOMEM;
	s->ops = ops;
	/* Parse given keys before the driver creates anything on disk. */
	if (opts && opts->keys) {
		char why[256];
		if ((e = gw_keyring_parse(&s->kr, opts->keys, why, sizeof why)) != GW_OK) {
			gwi_store_errf(opts, "%s", why);
			goto fail;
		}
	}
	if ((e = ops->open(url, opts, &s->drv)) != GW_OK)
		goto fail;
	if (!s->kr) {
		const char *path = ops->path ? ops->path(s->drv) : NULL;
		if (!path) {
			gwi_store_errf(opts, "SPAWN_STATESTORE_KEY is required for %s",
			               ops->scheme);
			e = GW_ECONFIG;
			goto fail;
		}
		if ((e = key_file_keyring(path, opts, &s->kr, &kfile, &created)) != GW_OK)
			goto fail;
	}
	if ((e = keycheck(s, opts, kfile, created)) != GW_OK)
		goto fail;
	if (created)
		GW_INFO("statestore: created key file %s; back it up with the database", kfile);
	free(kfile);
	*out = s;
	return GW_OK;
fail:
	if (created)
		unlink(kfile);
	free(kfile);
	gw_store_close(s);
	return e;
}

void gw_store_close(gw_store *s)
{
	if (!s)
		return;
	if (s->drv)
		s->ops->close(s->drv);
	gw_keyring_free(s->kr);
	free(s);
}

const char *gw_store_scheme(const gw_store *s)
{
	return s->ops->scheme;
}

/* ---- state -------------------------------------------------------------- */

bool gwi_store_key_ok(const gw_actor_key *k)
{
	return k && k->system && k->name && k->system[0] && k->name[0];
}

/* row_fini frees what a driver's load handed over. */
void gwi_store_row_fini(gw_row *r)
{
	free((char *)r->key_id);
	free((char *)r->type_url);
	free(r->data);
}

/* row_open authenticates and decrypts a row a driver loaded for k into
 * *out. The row is consumed (freed) either way. */
gw_err gwi_store_row_open(gw_store *s, const gw_actor_key *k, gw_row *row, gw_loaded *out)
{
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	gw_sealed in = {.key_id = row->key_id, .data = row->data, .len = row->len};
	memcpy(in.nonce, row->nonce, GW_NONCE_LEN);
	gw_err e = gw_open_rev(s->kr, k->system, k->name, row->revision, &in, &pt, &ptlen, NULL);
	if (e != GW_OK) {
		if (e == GW_ECRYPTO)
			GW_WARN("statestore: %s/%s revision %llu (key id '%s') does not "
			        "authenticate",
			        k->system, k->name, (unsigned long long)row->revision, row->key_id);
		gwi_store_row_fini(row);
		return e;
	}
	out->type_url = (char *)row->type_url; /* ownership moves to *out */
	out->data = pt;
	out->len = ptlen;
	out->revision = row->revision;
	out->epoch = row->epoch;
	row->type_url = NULL;
	gwi_store_row_fini(row);
	return GW_OK;
}

gw_err gw_store_load(gw_store *s, const gw_actor_key *k, gw_loaded *out)
{
	gw_row row = {0};
	if (!s || !gwi_store_key_ok(k) || !out)
		return GW_EINVAL;
	gw_err e = s->ops->load(s->drv, k, &row);
	if (e != GW_OK)
		return e;
	return gwi_store_row_open(s, k, &row, out);
}

gw_err gw_store_load_revision(gw_store *s, const gw_actor_key *k, uint64_t revision, gw_loaded *out)
{
	gw_row row = {0};
	if (!s || !gwi_store_key_ok(k) || !out)
		return GW_EINVAL;
	if (revision == 0)
		return gw_store_load(s, k, out);
	if (revision > GWI_STORE_MAX_INT)
		return GW_ENOTFOUND; /* no stored revision can be that large */
	gw_err e = s->ops->load_revision(s->drv, k, revision, &row);
	if (e != GW_OK)
		return e;
	return gwi_store_row_open(s, k, &row, out);
}

gw_err gw_store_list_revisions(gw_store *s, const gw_actor_key *k, uint64_t *revs, size_t cap,
                               size_t *n)
{
	if (!s || !gwi_store_key_ok(k) || !n || (!revs && cap > 0))
		return GW_EINVAL;
	if (cap == 0) {
		*n = 0;
		return GW_OK;
	}
	size_t got = 0;
	gw_err e = s->ops->list_revisions(s->drv, k, revs, cap, &got);
	if (e == GW_OK)
		*n = got;
	return e;
}

gw_err gw_store_acquire(gw_store *s, const gw_actor_key *k, uint64_t *epoch)
{
	if (!s || !gwi_store_key_ok(k) || !epoch)
		return GW_EINVAL;
	uint64_t v = 0;
	gw_err e = s->ops->acquire(s->drv, k, &v);
	if (e != GW_OK)
		return e;
	if (v == 0 || v > GWI_STORE_MAX_INT) {
		GW_ERROR("statestore: %s/%s: the driver handed out epoch %llu", k->system, k->name,
		         (unsigned long long)v);
		return GW_ECORRUPT;
	}
	*epoch = v;
	return GW_OK;
}

/* activate_keys_ok: every key valid and no key twice (by_key: caller
 * storage of n, left sorted). */
static bool activate_keys_ok(const gw_actor_key *keys, size_t n, const gw_actor_key **by_key)
{
	for (size_t i = 0; i < n; i++)
		if (!gwi_store_key_ok(&keys[i]))
			return false;
	gwi_keys_sort(keys, n, by_key);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(by_key[i - 1]->system, by_key[i]->system) &&
		    !strcmp(by_key[i - 1]->name, by_key[i]->name))
			return false;
	return true;
}

gw_err gw_store_activate_batch(gw_store *s, const gw_actor_key *keys, size_t n, uint64_t *epochs,
                               gw_loaded *out, gw_err *results)
{
	if (n == 0)
		return GW_OK;
	if (!results)
		return GW_EINVAL;
	const gw_actor_key *by_key[GW_STORE_ACTIVATE_MAX];
	if (!s || !keys || !epochs || !out || n > GW_STORE_ACTIVATE_MAX ||
	    !activate_keys_ok(keys, n, by_key)) {
		gwi_results_set(results, n, GW_EINVAL);
		return GW_EINVAL;
	}
	gw_row *rows = calloc(n, sizeof *rows);
	uint64_t *v = calloc(n, sizeof *v);
	gw_err e =
	    rows && v ? s->ops->activate_batch(s->drv, keys, n, v, rows, results) : GW_ENOMEM;
	if (e != GW_OK) {
		gwi_results_set(results, n, e);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i] == 0 || v[i] > GWI_STORE_MAX_INT) {
			/* as gw_store_acquire: an epoch no driver may hand out */
			GW_ERROR("statestore: %s/%s: the driver handed out epoch %llu",
			         keys[i].system, keys[i].name, (unsigned long long)v[i]);
			if (results[i] == GW_OK)
				gwi_store_row_fini(&rows[i]);
			results[i] = GW_ECORRUPT;
			continue;
		}
		epochs[i] = v[i];
		if (results[i] == GW_OK)
			results[i] = gwi_store_row_open(s, &keys[i], &rows[i], &out[i]);
	}
out:
	free(rows);
	free(v);
	return e;
}

static bool state_ok(const gw_state *st)
{
	return gwi_store_key_ok(&st->key) && (st->data || st->len == 0) &&
	       st->expected < GWI_STORE_MAX_INT && st->epoch <= GWI_STORE_MAX_INT;
}

gw_err gw_store_save_batch(gw_store *s, const gw_state *states, size_t n, gw_err *results)
{
	gw_row *rows = NULL;
	size_t sealed = 0;
	gw_err e = GW_OK;
	if (!s || (n > 0 && (!states || !results)))
		return GW_EINVAL;
	if (n == 0)
		return GW_OK;
	for (size_t i = 0; i < n; i++) {
		if (!state_ok(&states[i])) {
			e = GW_EINVAL;
			goto out;
		}
	}
	rows = calloc(n, sizeof *rows);
	if (!rows) {
		e = GW_ENOMEM;
		goto out;
	}
	for (; sealed < n; sealed++) {
		const gw_state *st = &states[sealed];
		gw_sealed sl;
		e = gw_seal_sys(s->kr, st->key.system, st->key.name, st->expected + 1, st->data,
		                st->len, &sl);
		if (e != GW_OK)
			goto out;
		gw_row *r = &rows[sealed];
		r->key = st->key;
		r->revision = st->expected + 1;
		r->expected = st->expected;
		r->epoch = st->epoch;
		r->key_id = sl.key_id;
		memcpy(r->nonce, sl.nonce, GW_NONCE_LEN);
		r->data = sl.data;
		r->len = sl.len;
		r->type_url = st->type_url ? st->type_url : "";
		r->effects = st->effects != 0;
	}
	/* A driver sets every result on success; the preset only matters for
	 * a driver that forgets one. */
	for (size_t i = 0; i < n; i++)
		results[i] = GW_EIO;
	e = s->ops->save_batch(s->drv, rows, n, results);
out:
	for (size_t i = 0; i < sealed; i++)
		free(rows[i].data);
	free(rows);
	if (e != GW_OK)
		for (size_t i = 0; i < n; i++)
			results[i] = e;
	return e;
}

gw_err gw_store_remove(gw_store *s, const gw_actor_key *k)
{
	if (!s || !gwi_store_key_ok(k))
		return GW_EINVAL;
	return s->ops->remove(s->drv, k);
}

/* sched_open opens a scheduled invocation's data (sealed by
 * gw_store_schedule_put or _put_sys); *system (may be NULL) as
 * gw_open_sched. */
gw_err gwi_store_sched_open(gw_store *s, const char *id, const gw_sealed *in, uint8_t **pt,
                            size_t *ptlen, char **system)
{
	return gw_open_sched(s->kr, GW_SCHED_AAD_SYSTEM, id, in, pt, ptlen, system);
}

void gwi_store_sched_row_fini(gw_sched_row *r)
{
	free((char *)r->key_id);
	free(r->data);
	r->key_id = NULL;
	r->data = NULL;
}

/* keycheck_reseal moves the key check to the primary key once every
 * readable row is there, so a keyring without the old keys opens the
 * store. */
gw_err gwi_store_keycheck_reseal(gw_store *s)
{
	uint8_t *rec = NULL;
	size_t n = 0;
	char id[GW_KEY_ID_MAX + 1];
	gw_err e = s->ops->meta_get(s->drv, KEYCHECK_META, &rec, &n);
	if (e != GW_OK)
		return e;
	e = keycheck_verify(s, rec, n, NULL, id, NULL, false);
	free(rec);
	if (e == GW_OK && strcmp(id, gw_keyring_primary_id(s->kr)) != 0) {
		e = keycheck_write(s, false);
		if (e == GW_OK)
			GW_INFO("statestore: key check resealed from key '%s' to '%s'", id,
			        gw_keyring_primary_id(s->kr));
	}
	return e;
}

/* ---- UNNAMED instances ---------------------------------------------------- */

gw_err gw_store_instance_put(gw_store *s, const gw_actor_key *k, const char *parent)
{
	if (!s || !gwi_store_key_ok(k) || !parent || !parent[0])
		return GW_EINVAL;
	return s->ops->instance_put(s->drv, k, parent);
}

gw_err gw_store_instance_get(gw_store *s, const gw_actor_key *k, char **parent)
{
	if (!s || !gwi_store_key_ok(k) || !parent)
		return GW_EINVAL;
	char *p = NULL;
	gw_err e = s->ops->instance_get(s->drv, k, &p);
	if (e == GW_OK)
		*parent = p;
	return e;
}

/* ---- scheduled invocations --------------------------------------------------- */

gw_err gw_store_schedule_put(gw_store *s, const char *id, int64_t due_ms, const uint8_t *data,
                             size_t len)
{
	return gw_store_schedule_put_sys(s, id, NULL, due_ms, data, len);
}

gw_err gw_store_schedule_put_sys(gw_store *s, const char *id, const char *system, int64_t due_ms,
                                 const uint8_t *data, size_t len)
{
	if (!s || !gwi_sched_id_ok(id) || due_ms < 0 || (!data && len > 0))
		return GW_EINVAL;
	gw_sealed sl;
	gw_err e = system ? gw_seal_sched(s->kr, system, id, data, len, &sl)
	                  : gw_seal(s->kr, GW_SCHED_AAD_SYSTEM, id, data, len, &sl);
	if (e != GW_OK)
		return e;
	gw_sched_row row = {.due_ms = due_ms, .key_id = sl.key_id, .data = sl.data, .len = sl.len};
	snprintf(row.id, sizeof row.id, "%s", id);
	memcpy(row.nonce, sl.nonce, GW_NONCE_LEN);
	e = s->ops->sched_put(s->drv, &row);
	free(sl.data);
	return e;
}

gw_err gw_store_schedule_claim(gw_store *s, int64_t now_ms, const char *owner, int64_t lease_ms,
                               size_t max, gw_sched **out, size_t *n)
{
	if (!s || !out || !n || !owner || !owner[0] || strlen(owner) > GW_SCHED_OWNER_MAX ||
	    strcmp(owner, GW_SCHED_CORRUPT) == 0 || now_ms < 0 || lease_ms <= 0 ||
	    lease_ms >= INT64_MAX - now_ms)
		return GW_EINVAL;
	if (max == 0) {
		*out = NULL;
		*n = 0;
		return GW_OK;
	}
	/* A claim is a bounded batch; the cap keeps a huge max from
	 * allocating before anything is known to be due. */
	if (max > 4096)
		max = 4096;
	gw_sched_row *rows = calloc(max, sizeof *rows);
	gw_sched *v = calloc(max, sizeof *v);
	size_t got = 0, m = 0;
	gw_err e = GW_ENOMEM;
	if (!rows || !v)
		goto fail;
	if ((e = s->ops->sched_claim(s->drv, now_ms, owner, now_ms + lease_ms, max, rows, &got)) !=
	    GW_OK)
		goto fail;
	for (size_t i = 0; i < got; i++) {
		gw_sched_row *r = &rows[i];
		gw_sealed in = {.key_id = r->key_id, .data = r->data, .len = r->len};
		memcpy(in.nonce, r->nonce, GW_NONCE_LEN);
		uint8_t *pt = NULL;
		size_t ptlen = 0;
		char *sys = NULL;
		gw_err oe = gwi_store_sched_open(s, r->id, &in, &pt, &ptlen, &sys);
		if (oe == GW_ECRYPTO || oe == GW_ECORRUPT) {
			/* Invariant 3: never returned, never deleted. If setting it
			 * aside fails, the lease just taken keeps it away until it
			 * expires, and the next claim tries again. */
			gw_err ae = s->ops->sched_set_aside(s->drv, r->id);
			GW_ERROR("statestore: scheduled invocation %s (key id '%s', due %lld) does "
			         "not open (%s): set aside as owner '%s'%s",
			         r->id, r->key_id, (long long)r->due_ms, gw_strerror(oe),
			         GW_SCHED_CORRUPT,
			         ae == GW_OK ? "" : " (not recorded: retried later)");
			continue;
		}
		if (oe != GW_OK) {
			/* Out of memory: the rows stay leased and come back when the
			 * lease expires. */
			e = oe;
			goto fail;
		}
		snprintf(v[m].id, sizeof v[m].id, "%s", r->id);
		v[m].due_ms = r->due_ms;
		v[m].data = pt;
		v[m].len = ptlen;
		v[m].system = sys;
		m++;
	}
	for (size_t i = 0; i < got; i++)
		gwi_store_sched_row_fini(&rows[i]);
	free(rows);
	if (m == 0) {
		free(v);
		v = NULL;
	}
	*out = v;
	*n = m;
	return GW_OK;
fail:
	for (size_t i = 0; i < got; i++)
		gwi_store_sched_row_fini(&rows[i]);
	free(rows);
	gw_sched_free(v, m);
	return e;
}

gw_err gw_store_schedule_done(gw_store *s, const char *id)
{
	if (!s || !gwi_sched_id_ok(id))
		return GW_EINVAL;
	return s->ops->sched_done(s->drv, id);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

gw_err gw_store_schedule_done_batch(gw_store *s, const char *const *ids, size_t n)
{
	if (!s || (n > 0 && !ids))
		return GW_EINVAL;
	/* Every id first: a bad one anywhere deletes nothing. */
	for (size_t i = 0; i < n; i++)
		if (!gwi_sched_id_ok(ids[i]))
			return GW_EINVAL;
	size_t cap = n < GW_SCHED_DONE_CHUNK ? n : GW_SCHED_DONE_CHUNK;
	const char **v = cap ? malloc(cap * sizeof *v) : NULL;
	if (cap && !v)
		return GW_ENOMEM;
	gw_err e = GW_OK;
	for (size_t off = 0; off < n && e == GW_OK; off += cap) {
		size_t m = n - off < cap ? n - off : cap;
		/* In key order: each index page is visited once per chunk, and
		 * concurrent batches lock rows in one order. */
		memcpy(v, ids + off, m * sizeof *v);
		qsort(v, m, sizeof *v, cmp_str);
		e = s->ops->sched_done_batch(s->drv, v, m);
	}
	free(v);
	return e;
}

gw_err gw_store_schedule_next_due(gw_store *s, int64_t *due_ms)
{
	if (!s || !due_ms)
		return GW_EINVAL;
	int64_t v = 0;
	gw_err e = s->ops->sched_next_due(s->drv, &v);
	if (e == GW_OK)
		*due_ms = v;
	return e;
}

gw_err gw_store_instance_counts(gw_store *s, gw_count_fn fn, void *user)
{
	if (!s || !fn)
		return GW_EINVAL;
	return s->ops->instance_counts(s->drv, fn, user);
}

gw_err gw_store_schedule_counts(gw_store *s, size_t prefix_len, gw_count_fn fn, void *user)
{
	if (!s || !fn || prefix_len < 1 || prefix_len > GW_SCHED_ID_MAX)
		return GW_EINVAL;
	return s->ops->sched_counts(s->drv, prefix_len, fn, user);
}

gw_err gw_store_schedule_count(gw_store *s, uint64_t *pending)
{
	if (!s || !pending)
		return GW_EINVAL;
	uint64_t v = 0;
	gw_err e = s->ops->sched_count(s->drv, &v);
	if (e == GW_OK)
		*pending = v;
	return e;
}

void gw_sched_free(gw_sched *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].data);
		free(v[i].system);
	}
	free(v);
}

/* ---- undelivered side effects --------------------------------------------------- */

gw_err gw_store_effects_list(gw_store *s, const gw_actor_key *after, size_t max, gw_actor_key *out,
                             size_t *n)
{
	if (!s || !out || !n || max == 0 || (after && (!after->system || !after->name)))
		return GW_EINVAL;
	static const gw_actor_key start = {"", ""}; /* before every real key */
	size_t got = 0;
	gw_err e = s->ops->effects_list(s->drv, after ? after : &start, max, out, &got);
	if (e == GW_OK)
		*n = got;
	return e;
}

void gw_keys_fini(gw_actor_key *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++) {
		free((char *)v[i].system);
		free((char *)v[i].name);
		v[i].system = v[i].name = NULL;
	}
}

void gw_loaded_fini(gw_loaded *l)
{
	if (!l)
		return;
	free(l->type_url);
	free(l->data);
	memset(l, 0, sizeof *l);
}

/* ---- forgetting an actor ------------------------------------------------------- */

/* Schedule rows read per page while looking for an actor's. */
#define FORGET_PAGE 256

/* forget_scan appends to *ids (*n of them, *cap room; owned strings) the
 * ids of the schedule rows that begin with prefix, open, and match. */
static gw_err forget_scan(gw_store *s, const char *prefix, gw_sched_match_fn match, void *user,
                          char ***ids, size_t *n, size_t *cap)
{
	char after[GW_SCHED_ID_MAX + 1], below[GW_SCHED_ID_MAX + 1];
	size_t pl = strlen(prefix);
	/* Every id that begins with prefix sorts after it (ids are longer
	 * than the prefix) and before prefix with its last byte raised. */
	memcpy(after, prefix, pl + 1);
	memcpy(below, prefix, pl + 1);
	below[pl - 1]++;
	gw_sched_row *rows = calloc(FORGET_PAGE, sizeof *rows);
	if (!rows)
		return GW_ENOMEM;
	gw_err e = GW_OK;
	for (;;) {
		size_t got = 0;
		if ((e = s->ops->sched_range(s->drv, after, below, FORGET_PAGE, rows, &got)) !=
		    GW_OK)
			break;
		for (size_t i = 0; i < got && e == GW_OK; i++) {
			gw_sched_row *r = &rows[i];
			gw_sealed in = {.key_id = r->key_id, .data = r->data, .len = r->len};
			memcpy(in.nonce, r->nonce, GW_NONCE_LEN);
			uint8_t *pt = NULL;
			size_t ptlen = 0;
			gw_err oe = gwi_store_sched_open(s, r->id, &in, &pt, &ptlen, NULL);
			if (oe == GW_ENOMEM)
				e = oe;
			if (oe != GW_OK)
				continue; /* a row that does not open cannot be told apart */
			bool hit = match(user, pt, ptlen);
			OPENSSL_cleanse(pt, ptlen);
			free(pt);
			if (!hit)
				continue;
			if (*n == *cap) {
				size_t nc = *cap ? *cap * 2 : 16;
				char **v = realloc(*ids, nc * sizeof *v);
				if (!v) {
					e = GW_ENOMEM;
					break;
				}
				*ids = v;
				*cap = nc;
			}
			if (!((*ids)[*n] = strdup(r->id)))
				e = GW_ENOMEM;
			else
				(*n)++;
		}
		if (got > 0)
			snprintf(after, sizeof after, "%s", rows[got - 1].id);
		for (size_t i = 0; i < got; i++)
			gwi_store_sched_row_fini(&rows[i]);
		if (e != GW_OK || got < FORGET_PAGE)
			break;
	}
	free(rows);
	return e;
}

gw_err gw_store_forget(gw_store *s, const gw_actor_key *k, const char *sched_prefix,
                       gw_sched_match_fn match, void *user, gw_forget_counts *out)
{
	if (!s || !gwi_store_key_ok(k))
		return GW_EINVAL;
	bool scan = sched_prefix && match;
	if (scan && !gwi_sched_id_ok(sched_prefix))
		return GW_EINVAL;
	char **ids = NULL;
	size_t n = 0, cap = 0;
	gw_err e = scan ? forget_scan(s, sched_prefix, match, user, &ids, &n, &cap) : GW_OK;
	if (e == GW_OK) {
		gw_forget_counts c = {0};
		e = s->ops->forget(s->drv, k, (const char *const *)ids, n, &c);
		if (e == GW_OK && out)
			*out = c;
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return e;
}
