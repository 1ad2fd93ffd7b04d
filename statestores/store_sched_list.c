/* store_sched_list.c - reading the stored scheduled invocations page by
 * page, for Admin.ListSchedules and Admin.CancelSchedule (part spawnctl;
 * docs/spawnctl.md). Rows are read with the driver's sched_range (ops
 * version 7) and opened as a claim opens them; nothing is leased or
 * changed. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "store_int.h"

gw_err gw_store_schedule_scan(gw_store *s, const char *after, const char *below, size_t max,
                              gw_sched_scan_fn fn, void *user, size_t *n,
                              char last[GW_SCHED_ID_MAX + 1])
{
	if (!s || !fn || !n || !last || max == 0 || !s->ops->sched_range)
		return GW_EINVAL;
	if (max > 4096)
		max = 4096;
	last[0] = 0;
	*n = 0;
	gw_sched_row *rows = calloc(max, sizeof *rows);
	if (!rows)
		return GW_ENOMEM;
	size_t got = 0;
	/* ids are [A-Za-z0-9_.:-]: "~" sorts after every one */
	gw_err e =
	    s->ops->sched_range(s->drv, after ? after : "", below ? below : "~", max, rows, &got);
	for (size_t i = 0; e == GW_OK && i < got; i++) {
		gw_sched_row *r = &rows[i];
		gw_sealed in = {.key_id = r->key_id, .data = r->data, .len = r->len};
		memcpy(in.nonce, r->nonce, GW_NONCE_LEN);
		uint8_t *pt = NULL;
		size_t ptlen = 0;
		gw_err oe = gwi_store_sched_open(s, r->id, &in, &pt, &ptlen, NULL);
		if (oe == GW_ENOMEM)
			e = oe;
		if (oe == GW_OK) {
			fn(user, r->id, r->due_ms, pt, ptlen);
			OPENSSL_cleanse(pt, ptlen);
			free(pt);
		}
	}
	if (e == GW_OK) {
		*n = got;
		if (got)
			memcpy(last, rows[got - 1].id, strlen(rows[got - 1].id) + 1);
	}
	for (size_t i = 0; i < got; i++)
		gwi_store_sched_row_fini(&rows[i]);
	free(rows);
	return e;
}
