/* store_lease.c - the front of the activation leases (store ops version 10):
 * argument checks, then the driver, then the decryption of what a lease
 * activation loaded. docs/design/cluster.md, "The activation lease". */
#include "store.h"
#include "store_int.h"

#include "driver_util.h"
#include "log.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool gw_store_lease_ok(const gw_store *s)
{
	return s && s->ops->lease_activate && s->ops->lease_release;
}

static bool member_ok(const char *m)
{
	return m && m[0] && strlen(m) <= GW_MEMBER_ID_MAX;
}

/* keys_distinct: every key valid and none twice (by_key: caller storage of
 * n, left sorted). */
static bool keys_distinct(const gw_actor_key *keys, size_t n, const gw_actor_key **by_key)
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

gw_err gw_store_lease_acquire(gw_store *s, const gw_actor_key *k, const char *member,
                              uint64_t *epoch, char *holder, size_t holder_len)
{
	if (!s || !gwi_store_key_ok(k) || !epoch || !member_ok(member))
		return GW_EINVAL;
	if (!gw_store_lease_ok(s))
		return GW_ECONFIG;
	uint64_t v = 0;
	char h[1][GW_MEMBER_ID_MAX + 1];
	h[0][0] = '\0';
	gw_err e = s->ops->lease_activate(s->drv, k, 1, member, &v, h, NULL, NULL);
	if (e != GW_OK)
		return e;
	if (v == 0) {
		if (holder && holder_len)
			snprintf(holder, holder_len, "%s", h[0]);
		return GW_EOWNED;
	}
	if (v > GWI_STORE_MAX_INT) {
		GW_ERROR("statestore: %s/%s: the driver handed out epoch %llu", k->system, k->name,
		         (unsigned long long)v);
		return GW_ECORRUPT;
	}
	*epoch = v;
	return GW_OK;
}

gw_err gw_store_lease_activate(gw_store *s, const gw_actor_key *keys, size_t n, const char *member,
                               uint64_t *epochs, char (*holders)[GW_MEMBER_ID_MAX + 1],
                               gw_loaded *out, gw_err *results)
{
	if (n == 0)
		return GW_OK;
	if (!results)
		return GW_EINVAL;
	const gw_actor_key *by_key[GW_STORE_ACTIVATE_MAX];
	if (!s || !keys || !epochs || !out || n > GW_STORE_ACTIVATE_MAX || !member_ok(member) ||
	    !keys_distinct(keys, n, by_key)) {
		gwi_results_set(results, n, GW_EINVAL);
		return GW_EINVAL;
	}
	if (!gw_store_lease_ok(s)) {
		gwi_results_set(results, n, GW_ECONFIG);
		return GW_ECONFIG;
	}
	gw_row *rows = calloc(n, sizeof *rows);
	uint64_t *v = calloc(n, sizeof *v);
	char(*h)[GW_MEMBER_ID_MAX + 1] = calloc(n, sizeof *h);
	gw_err e = rows && v && h
	               ? s->ops->lease_activate(s->drv, keys, n, member, v, h, rows, results)
	               : GW_ENOMEM;
	if (e != GW_OK) {
		gwi_results_set(results, n, e);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i] == 0) {
			results[i] = GW_EOWNED;
			if (holders)
				memcpy(holders[i], h[i], sizeof h[i]);
			continue;
		}
		if (v[i] > GWI_STORE_MAX_INT) {
			GW_ERROR("statestore: %s/%s: the driver handed out epoch %llu",
			         keys[i].system, keys[i].name, (unsigned long long)v[i]);
			if (results[i] == GW_OK)
				gwi_rows_fini(&rows[i], 1);
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
	free(h);
	return e;
}

gw_err gw_store_lease_release(gw_store *s, const gw_actor_key *keys, const uint64_t *epochs,
                              size_t n, const char *member, uint64_t *released)
{
	if (n == 0) {
		if (released)
			*released = 0;
		return GW_OK;
	}
	const gw_actor_key *by_key[GW_STORE_ACTIVATE_MAX];
	if (!s || !keys || !epochs || n > GW_STORE_ACTIVATE_MAX || !member_ok(member) ||
	    !keys_distinct(keys, n, by_key))
		return GW_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (epochs[i] == 0 || epochs[i] > GWI_STORE_MAX_INT)
			return GW_EINVAL;
	if (!gw_store_lease_ok(s))
		return GW_ECONFIG;
	uint64_t r = 0;
	gw_err e = s->ops->lease_release(s->drv, keys, epochs, n, member, &r);
	if (e == GW_OK && released)
		*released = r;
	return e;
}
