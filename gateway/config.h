/* config.h - the daemon's configuration: flags, then environment, then
 * defaults. See `spawn-gateway --help`. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"

#define GW_MAX_LISTEN 8

typedef struct gw_config {
	const char *listen[GW_MAX_LISTEN]; /* borrowed from argv/environ or static */
	size_t n_listen;
	const char *statestore; /* URL */
	const char *keys;       /* keyring or single key; NULL = key file */
	int threads;
	size_t shards;
	uint32_t mailbox_max;
	int64_t deactivate_ms, snapshot_ms, host_timeout_ms, drain_ms;
	int64_t flush_timeout_ms; /* SIGTERM: how long to wait for changed states' saves */
	int64_t persist_drain_ms; /* then for the statestore thread's call in progress */
	int max_message_bytes;
	size_t save_batch;
	int store_pool;    /* connections for networked stores; 0 = driver default */
	int store_history; /* older revisions kept per actor */
	bool rotate_keys;  /* re-encrypt rows to the primary key in the background */
	int log_level;     /* gw_log_level */
} gw_config;

/* gw_config_parse fills *c from argv and the environment. Returns GW_OK,
 * GW_ECONFIG with a message in why, or GW_ENOTFOUND when --help or
 * --version was printed (exit 0). */
gw_err gw_config_parse(gw_config *c, int argc, char **argv, char *why, size_t whylen);

void gw_config_usage(const char *prog);

#endif
