/* store_int.h - the body of gw_store and the helpers shared by the
 * front's files (store.c, store_rotate.c, store_members.c). Not a public
 * interface. */
#ifndef GW_STORE_INT_H
#define GW_STORE_INT_H

#include "crypto.h"
#include "store.h"

struct gw_store {
	const gw_store_ops *ops; /* borrowed: a static driver table */
	void *drv;               /* owned: ops->close */
	gw_keyring *kr;          /* owned: gw_keyring_free */
};

/* store.c, for the other files of the front: gwi_store_key_ok says whether
 * a key is valid (both strings non-empty); gwi_store_row_open decrypts a
 * row a driver loaded for k into *out and consumes (frees) the row either
 * way. */
bool gwi_store_key_ok(const gw_actor_key *k);
gw_err gwi_store_row_open(gw_store *s, const gw_actor_key *k, gw_row *row, gw_loaded *out);
/* gwi_store_row_fini frees what a driver's load or scan handed over in r
 * (key_id, type_url, data; not the key). */
void gwi_store_row_fini(gw_row *r);
/* gwi_store_sched_row_fini frees a scheduled row's owned fields. */
void gwi_store_sched_row_fini(gw_sched_row *r);
/* gwi_store_sched_open opens a scheduled invocation's data (sealed by
 * gw_store_schedule_put or _put_sys); *system (may be NULL) as
 * gw_open_sched (crypto.h). *pt owned by the caller. */
gw_err gwi_store_sched_open(gw_store *s, const char *id, const gw_sealed *in, uint8_t **pt,
                            size_t *ptlen, char **system);
/* gwi_store_keycheck_reseal moves the key check to the primary key (once
 * every readable row is there, so a keyring without the old keys opens
 * the store). */
gw_err gwi_store_keycheck_reseal(gw_store *s);

#endif
