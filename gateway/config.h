/* config.h - the daemon's configuration: flags, then environment, then
 * defaults. See `spawn-gateway --help`. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"
#include "wirecheck.h"

#define GW_MAX_LISTEN 8

typedef struct gw_config {
	const char *listen[GW_MAX_LISTEN]; /* borrowed from argv/environ or static */
	size_t n_listen;
	const char *statestore; /* URL */
	const char *keys;       /* keyring or single key; NULL = key file */
	int threads;
	size_t shards;
	uint32_t mailbox_max;
	int64_t mailbox_bytes; /* request bytes queued per actor */
	int64_t queued_bytes;  /* request bytes queued in all mailboxes */
	int64_t deactivate_ms, snapshot_ms, host_timeout_ms, drain_ms;
	int64_t flush_timeout_ms; /* SIGTERM: how long to wait for changed states' saves */
	int64_t persist_drain_ms; /* then for the statestore thread's call in progress */
	int max_message_bytes;
	size_t save_batch;
	int store_pool;         /* connections for networked stores; 0 = driver default */
	int store_history;      /* older revisions kept per actor */
	bool rotate_keys;       /* re-encrypt rows to the primary key in the background */
	int log_level;          /* gw_log_level */
	int log_format;         /* gw_log_format (--log-format) */
	int64_t type_grace_ms;  /* an orphaned actor type is forgotten after this */
	int64_t timer_floor_ms; /* shortest timer-action period accepted */

	/* String limits at ingress (--max-name-bytes ...), defaults resolved. */
	gw_wc_limits limits;
	/* host links (docs/design/call-lifecycle.md) */
	int64_t host_queue_bytes;      /* per host: queued task bytes before RESOURCE_EXHAUSTED */
	int64_t host_stall_ms;         /* full and not reading this long: disconnected */
	int64_t host_batch;            /* most tasks in one message to a host; 1 = no batches */
	int64_t host_batch_bytes;      /* most task bytes in one batch */
	int64_t host_grace_ms;         /* a written task past its deadline: answer within this */
	int64_t registration_grace_ms; /* after start: known actors UNAVAILABLE, 0 = none */
	int log_burst;                 /* lines per call site per log_interval_ms; 0 = no limit */
	const char *otlp_endpoint;     /* OTLP/HTTP span export URL (borrowed); NULL = off */
	int64_t otlp_queue;            /* spans queued for export at most; 0 = 8192 */
	int64_t log_interval_ms;
	/* bounds (gw_runtime_opts; 0 = the runtime's default) */
	uint32_t max_effects_per_turn, max_effects_in_flight, max_instances, max_schedules;
	size_t max_outbox_bytes, max_state_bytes;
	int64_t max_schedule_ahead_ms;
	/* Security (docs/security.md). Paths are borrowed from argv/environ. */
	const char *tls_cert;      /* PEM certificate chain for every listener; NULL = plaintext */
	const char *tls_key;       /* its PEM private key */
	const char *tls_client_ca; /* PEM CA: clients must present a certificate it signed */
	const char *host_listen[GW_MAX_LISTEN]; /* HostGateway only there (none: on listen) */
	size_t n_host_listen;
	const char *admin_listen[GW_MAX_LISTEN]; /* Admin only there (none: on listen) */
	size_t n_admin_listen;
	const char *health_listen[GW_MAX_LISTEN]; /* grpc.health.v1 only, plaintext (none: none) */
	size_t n_health_listen;
	const char *access; /* the access policy file (--access); NULL = everyone may do all */
	bool insecure;      /* plaintext or policy-less non-loopback binds allowed (warned) */
	bool hash_token;    /* --hash-token: print the hash of the token on stdin, exit */
	/* Cluster (docs/design/cluster.md). advertise: borrowed; NULL = one
	 * gateway alone (no membership). */
	const char *advertise;     /* HOST:PORT peers and clients reach this member at */
	int64_t heartbeat_ms;      /* --heartbeat-ms: how often the member heartbeats */
	int64_t member_timeout_ms; /* --member-timeout-ms: silence before it is declared dead */
	/* Cluster (docs/design/cluster.md). Hidden, for tests: a membership view
	 * read from this file (at start-up and on SIGUSR1) turns routing on
	 * (gateway/cluster/viewfile.h). NULL = a single gateway. */
	const char *cluster_test_view;
	const char *peer_listen[GW_MAX_LISTEN]; /* the Peer service only there (none: on listen) */
	size_t n_peer_listen;
	/* Peers as principals (docs/security.md, "Peers"); borrowed from
	 * argv/environ. */
	const char *peer_token_file;      /* the bearer token this member sends its peers */
	const char *peer_tls_server_name; /* the name peers' certificates carry; NULL = host */
	/* Contracts (gateway/contracts). descriptors: borrowed; NULL = none. */
	const char *descriptors;   /* --descriptors DIR: descriptor sets loaded at start */
	size_t max_contract_bytes; /* --max-contract-bytes: one set; 0 = the default */
	/* Spawn's HTTP/1.1 protocol (docs/protocol.md, "Spawn's HTTP protocol").
	 * http: borrowed; NULL = no HTTP listener. */
	const char *http;           /* --http HOST:PORT */
	const char *spawn_host_url; /* Spawn hosts' base URL; borrowed or spawn_host_buf;
	                               NULL = each registering peer's address */
	int spawn_host_port;        /* with spawn_host_url NULL (USER_FUNCTION_PORT); 8090 */
	char spawn_host_buf[300];   /* USER_FUNCTION_HOST:USER_FUNCTION_PORT as a URL */
	int64_t http_max_body;      /* bytes of one HTTP request body; default max_message_bytes */
	uint32_t http_max_conns;    /* open HTTP connections; default 1024 */
	uint32_t http_max_pending;  /* HTTP requests in progress; default 4096 */
	uint32_t spawn_host_tasks;  /* calls to Spawn HTTP hosts in flight; default 10000 */
	bool metrics;               /* --metrics on|off: record and serve /metrics (with --http);
	                               default on */
} gw_config;

/* gw_config_addr_is_local says whether a listen address is safe to serve
 * without TLS and a policy: a unix socket, or a TCP address on loopback
 * (127.0.0.0/8, ::1, localhost). A name or a wildcard is not. */
bool gw_config_addr_is_local(const char *addr);

/* gw_config_parse fills *c from argv and the environment. Returns GW_OK,
 * GW_ECONFIG with a message in why, or GW_ENOTFOUND when --help or
 * --version was printed (exit 0). */
gw_err gw_config_parse(gw_config *c, int argc, char **argv, char *why, size_t whylen);

void gw_config_usage(const char *prog);

#endif
