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

#endif
