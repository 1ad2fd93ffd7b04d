/* store_rotate.c - key rotation of the statestore front
 * (gw_store_rotate_step, store.h): one pass at a time over the latest
 * states, the history and the scheduled invocations, its cursor in
 * spawn_meta "rotation". The states of a pass and the invariants are in
 * store.c's note ("Key rotation").
 */
#include "store_int.h"

#include "log.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROTATION_META "rotation"

/* ---- key rotation -------------------------------------------------------- */

/* The pass record, spawn_meta "rotation":
 *   version(1) | len(primary)(1) | primary | table(1) | revision(8)
 *   | total(8) | seen(8) | failed(8) | len(system)(4) | system
 *   | len(name)(4) | name                       (integers big-endian)
 * table is GW_ROT_STATE, GW_ROT_HISTORY, GW_ROT_SCHED or ROT_END; (system,
 * name, revision) is the last row the pass went past in that table (the
 * schedules: ("", id, 0)). A record written before schedules were rotated
 * that says END makes the next step count again: schedule rows under an
 * old key start a new pass. */
#define ROTATION_VERSION 1
#define ROT_END          2
/* Rows per scan and per rewrite transaction, whatever a step asks for. */
#define ROT_CHUNK 256

typedef struct rot_state {
	char primary[GW_KEY_ID_MAX + 1];
	int table;
	char *system, *name; /* owned: the cursor */
	uint64_t revision;
	uint64_t total;  /* rows under other keys when the pass began */
	uint64_t seen;   /* rows the pass went past */
	uint64_t failed; /* rows of this pass that opened under no key */
} rot_state;

static void rot_fini(rot_state *st)
{
	free(st->system);
	free(st->name);
	st->system = st->name = NULL;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* rot_cursor_set makes (system, name, revision) the cursor. */
static gw_err rot_cursor_set(rot_state *st, const char *system, const char *name, uint64_t revision)
{
	char *sys = strdup(system), *nm = strdup(name);
	if (!sys || !nm) {
		free(sys);
		free(nm);
		return GW_ENOMEM;
	}
	rot_fini(st);
	st->system = sys;
	st->name = nm;
	st->revision = revision;
	return GW_OK;
}

/* rot_decode parses a pass record; false when it is not one. */
static bool rot_decode(const uint8_t *rec, size_t n, rot_state *st)
{
	size_t off = 0;
	if (n < 2 || rec[0] != ROTATION_VERSION || rec[1] == 0 || rec[1] > GW_KEY_ID_MAX)
		return false;
	size_t idn = rec[1];
	off = 2;
	if (n < off + idn + 1 + 8 * 4 + 4)
		return false;
	memcpy(st->primary, rec + off, idn);
	st->primary[idn] = '\0';
	off += idn;
	st->table = rec[off++];
	st->revision = get_u64(rec + off);
	st->total = get_u64(rec + off + 8);
	st->seen = get_u64(rec + off + 16);
	st->failed = get_u64(rec + off + 24);
	off += 32;
	size_t sn = get_u32(rec + off);
	off += 4;
	if (n - off < sn + 4)
		return false;
	const uint8_t *sys = rec + off;
	off += sn;
	size_t nn = get_u32(rec + off);
	off += 4;
	if (n - off != nn || st->table < GW_ROT_STATE || st->table > GW_ROT_SCHED ||
	    memchr(sys, 0, sn) || memchr(rec + off, 0, nn))
		return false;
	st->system = strndup((const char *)sys, sn);
	st->name = strndup((const char *)rec + off, nn);
	if (!st->system || !st->name) {
		rot_fini(st);
		return false;
	}
	return true;
}

static gw_err rot_write(gw_store *s, const rot_state *st)
{
	size_t idn = strlen(st->primary), sn = strlen(st->system), nn = strlen(st->name);
	size_t n = 2 + idn + 1 + 32 + 4 + sn + 4 + nn;
	uint8_t *rec = malloc(n), *p = rec;
	if (!rec)
		return GW_ENOMEM;
	*p++ = ROTATION_VERSION;
	*p++ = (uint8_t)idn;
	memcpy(p, st->primary, idn);
	p += idn;
	*p++ = (uint8_t)st->table;
	put_u64(p, st->revision);
	put_u64(p + 8, st->total);
	put_u64(p + 16, st->seen);
	put_u64(p + 24, st->failed);
	p += 32;
	put_u32(p, (uint32_t)sn);
	memcpy(p + 4, st->system, sn);
	p += 4 + sn;
	put_u32(p, (uint32_t)nn);
	memcpy(p + 4, st->name, nn);
	gw_err e = s->ops->meta_put(s->drv, ROTATION_META, rec, n);
	free(rec);
	return e;
}

/* The scheduled rows a rotation step reads per page; a page is read
 * whole (the rows under the primary key are passed over). */
#define ROT_SCHED_PAGE 256
/* Above every scheduled id ([A-Za-z0-9_.:-] sort below '~'). */
#define SCHED_ID_TOP "~"

/* sched_other_keys counts the scheduled rows under a key other than
 * primary (read page by page through sched_range). */
static gw_err sched_other_keys(gw_store *s, const char *primary, uint64_t *n)
{
	gw_sched_row *rows = calloc(ROT_SCHED_PAGE, sizeof *rows);
	if (!rows)
		return GW_ENOMEM;
	char after[GW_SCHED_ID_MAX + 1] = "";
	gw_err e;
	*n = 0;
	for (;;) {
		size_t got = 0;
		if ((e = s->ops->sched_range(s->drv, after, SCHED_ID_TOP, ROT_SCHED_PAGE, rows,
		                             &got)) != GW_OK)
			break;
		for (size_t i = 0; i < got; i++) {
			*n += strcmp(rows[i].key_id, primary) != 0;
			if (i + 1 == got)
				snprintf(after, sizeof after, "%s", rows[i].id);
			gwi_store_sched_row_fini(&rows[i]);
		}
		if (got < ROT_SCHED_PAGE)
			break;
	}
	free(rows);
	return e;
}

/* rot_total counts the rows of every rotated table under other keys. */
static gw_err rot_total(gw_store *s, const char *primary, uint64_t *n)
{
	uint64_t rows = 0, sched = 0;
	gw_err e = s->ops->rot_count(s->drv, primary, &rows);
	if (e == GW_OK)
		e = sched_other_keys(s, primary, &sched);
	if (e == GW_OK)
		*n = rows + sched;
	return e;
}

/* rot_next is the table a pass scans after table. */
static int rot_next(int table)
{
	return table == GW_ROT_STATE     ? GW_ROT_HISTORY
	       : table == GW_ROT_HISTORY ? GW_ROT_SCHED
	                                 : ROT_END;
}

/* rot_pass starts a pass over total rows under other keys. */
static gw_err rot_pass(rot_state *st, uint64_t total)
{
	st->table = GW_ROT_STATE;
	st->total = total;
	st->seen = st->failed = 0;
	return rot_cursor_set(st, "", "", 0);
}

/* rot_read loads the pass in progress, or starts one when there is none,
 * the record is unreadable, or it belongs to another primary key. */
static gw_err rot_read(gw_store *s, const char *primary, rot_state *st)
{
	uint8_t *rec = NULL;
	size_t n = 0;
	gw_err e = s->ops->meta_get(s->drv, ROTATION_META, &rec, &n);
	if (e == GW_OK) {
		bool ok = rot_decode(rec, n, st);
		free(rec);
		if (ok && strcmp(st->primary, primary) == 0)
			return GW_OK;
		if (!ok)
			GW_WARN("statestore: the key rotation record is malformed; starting over");
		else
			GW_INFO("statestore: key rotation to primary key '%s' starts (was '%s')",
			        primary, st->primary);
		rot_fini(st);
	} else if (e != GW_ENOTFOUND) {
		return e;
	}
	uint64_t total = 0;
	if ((e = rot_total(s, primary, &total)) != GW_OK)
		return e;
	snprintf(st->primary, sizeof st->primary, "%s", primary);
	return rot_pass(st, total);
}

/* rot_rows re-encrypts the rows one scan returned (rows[0..n) of table) in
 * one conditional rewrite. Adds to *rewritten and *failed. rw and res:
 * scratch of n entries. The rows stay the caller's. */
static gw_err rot_rows(gw_store *s, int table, const gw_row *rows, size_t n, gw_rewrite *rw,
                       gw_err *res, uint64_t *rewritten, uint64_t *failed)
{
	size_t m = 0;
	gw_err e = GW_OK;
	for (size_t i = 0; i < n; i++) {
		const gw_row *r = &rows[i];
		gw_sealed in = {.key_id = r->key_id, .data = r->data, .len = r->len};
		memcpy(in.nonce, r->nonce, GW_NONCE_LEN);
		uint8_t *pt = NULL;
		size_t ptlen = 0;
		e = gw_open_rev(s->kr, r->key.system, r->key.name, r->revision, &in, &pt, &ptlen,
		                NULL);
		if (e == GW_ECRYPTO || e == GW_ECORRUPT) {
			GW_WARN("statestore: key rotation: %s/%s revision %llu%s (key id '%s') "
			        "opens under no key of the keyring: left as it is",
			        r->key.system, r->key.name, (unsigned long long)r->revision,
			        table == GW_ROT_HISTORY ? " (history)" : "", r->key_id);
			(*failed)++;
			e = GW_OK;
			continue;
		}
		if (e != GW_OK)
			goto out;
		gw_sealed sl;
		e = gw_seal_sys(s->kr, r->key.system, r->key.name, r->revision, pt, ptlen, &sl);
		OPENSSL_cleanse(pt, ptlen);
		free(pt);
		if (e != GW_OK)
			goto out;
		rw[m] = (gw_rewrite){.key = r->key,
		                     .revision = r->revision,
		                     .old_key_id = r->key_id,
		                     .key_id = sl.key_id,
		                     .data = sl.data,
		                     .len = sl.len};
		memcpy(rw[m].old_nonce, r->nonce, GW_NONCE_LEN);
		memcpy(rw[m].nonce, sl.nonce, GW_NONCE_LEN);
		m++;
	}
	if (m == 0)
		goto out;
	for (size_t i = 0; i < m; i++)
		res[i] = GW_EIO;
	if ((e = s->ops->rot_rewrite(s->drv, table, rw, m, res)) != GW_OK)
		goto out;
	for (size_t i = 0; i < m; i++)
		if (res[i] == GW_OK)
			(*rewritten)++;
out:
	for (size_t i = 0; i < m; i++)
		free((uint8_t *)rw[i].data);
	return e;
}

/* rot_sched re-seals under the primary key the scheduled rows of one page
 * read after id *after (at most want rows read): each in the form it had,
 * in one conditional sched_reseal. *read: rows read (< want: the table is
 * done); *other: those under other keys; *last: the last id read. Adds to
 * *rewritten and *failed. */
static gw_err rot_sched(gw_store *s, const char *after, size_t want, size_t *read, uint64_t *other,
                        char last[GW_SCHED_ID_MAX + 1], uint64_t *rewritten, uint64_t *failed)
{
	const char *primary = gw_keyring_primary_id(s->kr);
	gw_sched_row *rows = calloc(want, sizeof *rows);
	gw_sched_reseal *rw = calloc(want, sizeof *rw);
	gw_err *res = calloc(want, sizeof *res);
	size_t got = 0, m = 0;
	gw_err e = GW_ENOMEM;
	*read = 0;
	*other = 0;
	if (!rows || !rw || !res)
		goto out;
	if ((e = s->ops->sched_range(s->drv, after, SCHED_ID_TOP, want, rows, &got)) != GW_OK)
		goto out;
	for (size_t i = 0; i < got && e == GW_OK; i++) {
		gw_sched_row *r = &rows[i];
		if (!strcmp(r->key_id, primary))
			continue;
		(*other)++;
		gw_sealed in = {.key_id = r->key_id, .data = r->data, .len = r->len};
		memcpy(in.nonce, r->nonce, GW_NONCE_LEN);
		uint8_t *pt = NULL;
		size_t ptlen = 0;
		char *sys = NULL;
		e = gwi_store_sched_open(s, r->id, &in, &pt, &ptlen, &sys);
		if (e == GW_ECRYPTO || e == GW_ECORRUPT) {
			GW_WARN("statestore: key rotation: scheduled invocation %s (key id '%s') "
			        "opens under no key of the keyring: left as it is",
			        r->id, r->key_id);
			(*failed)++;
			e = GW_OK;
			continue;
		}
		if (e != GW_OK)
			break;
		gw_sealed sl;
		e = sys ? gw_seal_sched(s->kr, sys, r->id, pt, ptlen, &sl)
		        : gw_seal(s->kr, GW_SCHED_AAD_SYSTEM, r->id, pt, ptlen, &sl);
		OPENSSL_cleanse(pt, ptlen);
		free(pt);
		free(sys);
		if (e != GW_OK)
			break;
		rw[m] = (gw_sched_reseal){.id = r->id,
		                          .old_key_id = r->key_id,
		                          .key_id = sl.key_id,
		                          .data = sl.data,
		                          .len = sl.len};
		memcpy(rw[m].old_nonce, r->nonce, GW_NONCE_LEN);
		memcpy(rw[m].nonce, sl.nonce, GW_NONCE_LEN);
		m++;
	}
	if (e == GW_OK && m > 0) {
		for (size_t i = 0; i < m; i++)
			res[i] = GW_EIO;
		e = s->ops->sched_reseal(s->drv, rw, m, res);
		for (size_t i = 0; e == GW_OK && i < m; i++)
			*rewritten += res[i] == GW_OK;
	}
	if (e == GW_OK) {
		*read = got;
		if (got > 0)
			snprintf(last, GW_SCHED_ID_MAX + 1, "%s", rows[got - 1].id);
	}
out:
	for (size_t i = 0; i < m; i++)
		free((uint8_t *)rw[i].data);
	for (size_t i = 0; i < got; i++)
		gwi_store_sched_row_fini(&rows[i]);
	free(rows);
	free(rw);
	free(res);
	return e;
}

static void rows_fini(gw_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)rows[i].key.system);
		free((char *)rows[i].key.name);
		gwi_store_row_fini(&rows[i]);
	}
}

gw_err gw_store_rotate_step(gw_store *s, size_t max_rows, gw_rotation *progress)
{
	rot_state st = {0};
	gw_row *rows = NULL;
	gw_rewrite *rw = NULL;
	gw_err *res = NULL;
	uint64_t rewritten = 0, failed = 0;
	int done = 0;
	if (!s || !progress || max_rows == 0)
		return GW_EINVAL;
	const char *primary = gw_keyring_primary_id(s->kr);
	size_t chunk = max_rows < ROT_CHUNK ? max_rows : ROT_CHUNK;
	gw_err e = GW_ENOMEM;
	rows = calloc(chunk, sizeof *rows);
	rw = calloc(chunk, sizeof *rw);
	res = calloc(chunk, sizeof *res);
	if (!rows || !rw || !res)
		goto out;
	if ((e = rot_read(s, primary, &st)) != GW_OK)
		goto out;
	bool was_end = st.table == ROT_END; /* done before: maybe nothing to record */
	for (size_t budget = max_rows; budget > 0 && st.table != ROT_END;) {
		size_t want = budget < chunk ? budget : chunk, n = 0;
		if (st.table == GW_ROT_SCHED) {
			uint64_t f = 0, other = 0;
			char last[GW_SCHED_ID_MAX + 1];
			if ((e = rot_sched(s, st.name, want, &n, &other, last, &rewritten, &f)) !=
			    GW_OK)
				goto out;
			if (n > 0 && (e = rot_cursor_set(&st, "", last, 0)) != GW_OK)
				goto out;
			failed += f;
			st.failed += f;
			st.seen += other;
			budget -= n;
			if (n < want) {
				st.table = rot_next(st.table);
				if ((e = rot_cursor_set(&st, "", "", 0)) != GW_OK)
					goto out;
			}
			continue;
		}
		gw_rot_cursor cur = {
		    .table = st.table, .key = {st.system, st.name}, .revision = st.revision};
		memset(rows, 0, want * sizeof *rows);
		if ((e = s->ops->rot_scan(s->drv, &cur, primary, rows, want, &n)) != GW_OK)
			goto out;
		uint64_t f = 0;
		e = rot_rows(s, st.table, rows, n, rw, res, &rewritten, &f);
		if (e == GW_OK && n > 0)
			e = rot_cursor_set(&st, rows[n - 1].key.system, rows[n - 1].key.name,
			                   rows[n - 1].revision);
		rows_fini(rows, n);
		if (e != GW_OK)
			goto out;
		failed += f;
		st.failed += f;
		st.seen += n;
		budget -= n;
		if (n < want) { /* this table is done */
			st.table = rot_next(st.table);
			if ((e = rot_cursor_set(&st, "", "", 0)) != GW_OK)
				goto out;
		}
	}
	if (st.table == ROT_END) {
		uint64_t left = 0;
		if ((e = rot_total(s, primary, &left)) != GW_OK)
			goto out;
		if (left <= st.failed) {
			done = 1;
			if (!was_end && (e = gwi_store_keycheck_reseal(s)) != GW_OK)
				goto out;
		} else {
			/* Rows under an old key appeared behind the cursor. */
			GW_INFO("statestore: key rotation: %llu rows under other keys after the "
			        "pass (%llu unreadable): another pass",
			        (unsigned long long)left, (unsigned long long)st.failed);
			if ((e = rot_pass(&st, left)) != GW_OK)
				goto out;
		}
	}
	if (!(was_end && done) && (e = rot_write(s, &st)) != GW_OK)
		goto out;
	progress->rewritten += rewritten;
	progress->failed += failed;
	progress->remaining = done || st.total <= st.seen ? 0 : st.total - st.seen;
	progress->done = done;
out:
	rot_fini(&st);
	free(rows);
	free(rw);
	free(res);
	return e;
}
