/* store_int.h - the body of gw_store, shared by the front's files
 * (store.c, store_members.c). Not a public interface. */
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

#endif
