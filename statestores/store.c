/* store.c - the statestore front: driver registry, keyring and key file,
 * key check, and the encryption of every state (see store.h, crypto.h and
 * docs/design/statestore.md).
 *
 * Open:
 *   url --scheme--> driver table --open--> drv
 *   keys: opts->keys | "<db path>.key" (created 0600 if absent) | ECONFIG
 *   key check: meta "keycheck" must open under the keyring (else ECRYPTO);
 *              written under the primary key when the store is new.
 *
 * Invariants:
 *   1. A driver only ever receives ciphertext: rows are sealed here.
 *   2. Every row is sealed with a fresh nonce and the AAD of its own actor,
 *      so a row moved onto another actor fails to load (GW_ECRYPTO).
 *   3. A store opens only when its key check authenticates, so a wrong key
 *      is caught at start-up, not at the first load.
 */
#include "store.h"

#include "crypto.h"
#include "drivers.h"
#include "log.h"

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

struct gw_store {
	const gw_store_ops *ops; /* borrowed: a static driver table */
	void *drv;               /* owned: ops->close */
	gw_keyring *kr;          /* owned: gw_keyring_free */
};

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
		gwi_store_errf(opts, "statestore URL '%s' has no scheme (try sqlite:///path.db)",
		               url);
		return GW_ECONFIG;
	}
	char built[128] = "";
	for (size_t i = 0; drivers[i]; i++) {
		if (strlen(drivers[i]->scheme) == n && strncmp(drivers[i]->scheme, url, n) == 0) {
			if (drivers[i]->version < 1) {
				gwi_store_errf(opts, "statestore driver '%s' has version %d",
				               drivers[i]->scheme, drivers[i]->version);
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
	} else {
		GW_INFO("statestore: created key file %s; back it up with the database", kpath);
	}
out:
	OPENSSL_cleanse(key, sizeof key);
	return e;
}

/* key_file_keyring reads "<dbpath>.key", creating it when absent. When it
 * created the file, *created gets its path (caller frees), so a failed open
 * can remove a key that never protected anything. */
static gw_err key_file_keyring(const char *dbpath, const gw_store_opts *opts, gw_keyring **kr,
                               char **created)
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
			break;
		}
		if (errno != ENOENT) {
			gwi_store_errf(opts, "cannot open key file %s: %s", kpath, strerror(errno));
			e = errno == EACCES ? GW_ECONFIG : GW_EIO;
			break;
		}
		e = key_file_create(kpath, opts, kr);
		if (e == GW_OK) {
			*created = kpath;
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

static gw_err keycheck_write(gw_store *s)
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
	e = s->ops->meta_put(s->drv, KEYCHECK_META, rec, n);
	free(rec);
	free(sl.data);
	return e;
}

static gw_err keycheck_verify(gw_store *s, const uint8_t *rec, size_t n, const gw_store_opts *opts)
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
	if (e == GW_ECRYPTO || e == GW_ECORRUPT) {
		gwi_store_errf(opts,
		               "statestore key does not match the stored key check (sealed "
		               "under key id '%s'; keyring has primary '%s')",
		               id, gw_keyring_primary_id(s->kr));
		return GW_ECRYPTO;
	}
	return e;
}

/* keycheck proves at open that the keyring fits the store. A new store
 * gets a record sealed under the primary key; the record is read back and
 * verified either way, so two openers racing on a new store with different
 * keys cannot both succeed. */
static gw_err keycheck(gw_store *s, const gw_store_opts *opts)
{
	uint8_t *rec = NULL;
	size_t n = 0;
	gw_err e = s->ops->meta_get(s->drv, KEYCHECK_META, &rec, &n);
	if (e == GW_ENOTFOUND) {
		if ((e = keycheck_write(s)) != GW_OK) {
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
	e = keycheck_verify(s, rec, n, opts);
	free(rec);
	return e;
}

/* ---- open / close ------------------------------------------------------- */

gw_err gw_store_open(gw_store **out, const char *url, const gw_store_opts *opts)
{
	gw_store *s = NULL;
	char *created = NULL; /* key file made by this call, removed on failure */
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
		if ((e = key_file_keyring(path, opts, &s->kr, &created)) != GW_OK)
			goto fail;
	}
	if ((e = keycheck(s, opts)) != GW_OK)
		goto fail;
	free(created);
	*out = s;
	return GW_OK;
fail:
	if (created)
		unlink(created);
	free(created);
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

static bool key_ok(const gw_actor_key *k)
{
	return k && k->system && k->name && k->system[0] && k->name[0];
}

/* row_fini frees what a driver's load handed over. */
static void row_fini(gw_row *r)
{
	free((char *)r->key_id);
	free((char *)r->type_url);
	free(r->data);
}

gw_err gw_store_load(gw_store *s, const gw_actor_key *k, gw_loaded *out)
{
	gw_row row = {0};
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	if (!s || !key_ok(k) || !out)
		return GW_EINVAL;
	gw_err e = s->ops->load(s->drv, k, &row);
	if (e != GW_OK)
		return e;
	gw_sealed in = {.key_id = row.key_id, .data = row.data, .len = row.len};
	memcpy(in.nonce, row.nonce, GW_NONCE_LEN);
	e = gw_open(s->kr, k->system, k->name, &in, &pt, &ptlen);
	if (e != GW_OK) {
		if (e == GW_ECRYPTO)
			GW_WARN("statestore: %s/%s (key id '%s') does not authenticate", k->system,
			        k->name, row.key_id);
		row_fini(&row);
		return e;
	}
	out->type_url = (char *)row.type_url; /* ownership moves to *out */
	out->data = pt;
	out->len = ptlen;
	out->revision = row.revision;
	out->epoch = row.epoch;
	row.type_url = NULL;
	row_fini(&row);
	return GW_OK;
}

static bool state_ok(const gw_state *st)
{
	return key_ok(&st->key) && (st->data || st->len == 0) && st->expected < GWI_STORE_MAX_INT &&
	       st->epoch <= GWI_STORE_MAX_INT;
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
		e = gw_seal(s->kr, st->key.system, st->key.name, st->data, st->len, &sl);
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
	if (!s || !key_ok(k))
		return GW_EINVAL;
	return s->ops->remove(s->drv, k);
}

void gw_loaded_fini(gw_loaded *l)
{
	if (!l)
		return;
	free(l->type_url);
	free(l->data);
	memset(l, 0, sizeof *l);
}
