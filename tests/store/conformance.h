/* conformance.h - the target table of the store conformance suite and the
 * raw hooks (conformance_raw.c) that reach each backend behind its
 * driver's back: through sqlite3, libpq or mariadb-connector-c directly.
 */
#ifndef GW_TEST_CONFORMANCE_H
#define GW_TEST_CONFORMANCE_H

#include "store.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ctx ctx;

typedef struct target {
	const char *name;
	char url[PATH_MAX + 32]; /* networked: from the environment */
	bool file_backed;        /* URL built per test in a fresh temp dir */
	const char *keyless_url; /* a URL of this driver with no file behind it */
	/* Raw access behind the driver's back, for the tamper tests; NULL
	 * until a target provides it (then those tests pass trivially).
	 * raw_copy: put the sealed columns of (fsys, fname) on (tsys, tname),
	 *           creating that row if needed.
	 * raw_truncate: cut (sys, name)'s ciphertext to len bytes.
	 * raw_fail_on: make every later write of actor `name` fail inside the
	 *           backend (an injected storage error). */
	bool (*raw_copy)(const ctx *c, const char *fsys, const char *fname, const char *tsys,
	                 const char *tname);
	bool (*raw_truncate)(const ctx *c, const char *sys, const char *name, int len);
	bool (*raw_fail_on)(const ctx *c, const char *name);
	/* raw_set_version: overwrite spawn_meta.schema_version with v.
	 * raw_history: count, min and max revision of (sys, name) in
	 *           spawn_actor_history (NULL: the driver keeps no history). */
	bool (*raw_set_version)(const ctx *c, const char *v);
	bool (*raw_history)(const ctx *c, const char *sys, const char *name, long long out[3]);
	/* ns_new: write into url a URL of a fresh, empty namespace on the
	 * target's server (conf_ns_teardown drops it after the test).
	 * NULL: t->url is shared. ns_drop: drop namespace name. */
	bool (*ns_new)(const struct target *t, char *url, size_t cap);
	void (*ns_drop)(const struct target *t, const char *name);
	/* Shell commands that stop / restart the server; NULL: not ours. */
	const char *stop_cmd, *start_cmd;
} target;

struct ctx {
	const target *t;
	char dir[256]; /* under root: short */
	char db[PATH_MAX];
	char url[PATH_MAX + 32];
	char sys[64];
	char err[512];
	gw_store *s;
};

/* conf_raw_<backend> fills t's raw hooks and namespace functions when the
 * backend's client library is built into the suite (GW_TEST_<BACKEND>);
 * otherwise it leaves them NULL. */
void conf_raw_sqlite(target *t);
void conf_raw_postgres(target *t);
void conf_raw_mariadb(target *t);

/* conf_ns_teardown drops every namespace the current test made (a checked
 * fixture: it runs in the test's process). */
void conf_ns_teardown(void);

#endif
