#include "config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

void gw_config_usage(const char *prog)
{
	printf(
	    "Usage: %s [options]\n"
	    "\n"
	    "The Spawn actor gateway: actor hosts connect and register actors; clients\n"
	    "invoke system/actor/action over gRPC (spawn.gateway.v1).\n"
	    "Options (environment variable in brackets; MS = milliseconds):\n"
	    "\n"
	    "Listening and state\n"
	    "  --listen ADDR             listen address, repeatable: HOST:PORT or unix:/path\n"
	    "                            (port 0 picks a free port) [SPAWN_LISTEN,\n"
	    "                            comma-separated] default 127.0.0.1:8090; serves\n"
	    "                            clients, and hosts and Admin unless given below\n"
	    "  --host-listen ADDR        serve HostGateway (actor hosts) only here,\n"
	    "                            repeatable [SPAWN_HOST_LISTEN, comma-separated]\n"
	    "  --admin-listen ADDR       serve the Admin service only here, repeatable\n"
	    "                            [SPAWN_ADMIN_LISTEN, comma-separated]\n"
	    "  --health-listen ADDR      serve grpc.health.v1.Health only here, always in\n"
	    "                            plaintext (for probes that speak no TLS),\n"
	    "                            repeatable [SPAWN_HEALTH_LISTEN, comma-separated].\n"
	    "                            Every listener serves grpc.health.v1.Health;\n"
	    "                            a method not served on a listener answers\n"
	    "                            UNIMPLEMENTED.\n"
	    "  --statestore URL          sqlite:///abs/path.db | sqlite://rel/path.db\n"
	    "                            | sqlite::memory:\n"
	    "                            | postgres://user:pw@host:port/db?sslmode=...\n"
	    "                            | mariadb://user:pw@host:port/db?sslmode=...\n"
	    "                            (also mysql://; TLS: docs/security.md)\n"
	    "                            [SPAWN_STATESTORE_URL] default sqlite://spawn-state.db\n"
	    "  (key)                     AES-256-GCM key for state at rest, base64 of 32\n"
	    "                            bytes [SPAWN_STATESTORE_KEY], or a keyring\n"
	    "                            id1:key1,id2:key2 whose first key encrypts\n"
	    "                            [SPAWN_STATESTORE_KEYS]. Without one, a file-backed\n"
	    "                            store creates <db>.key (mode 0600) and reuses it.\n"
	    "  --save-batch N            most saves per statestore transaction\n"
	    "                            [SPAWN_SAVE_BATCH] default 256\n"
	    "  --store-pool N            connections to PostgreSQL/MariaDB\n"
	    "                            [SPAWN_STATESTORE_POOL] default 4\n"
	    "  --store-history N         older revisions kept per actor, for restores\n"
	    "                            [SPAWN_STATESTORE_HISTORY] default 0 (latest only)\n"
	    "  --rotate-keys             re-encrypt every stored state to the first key of\n"
	    "                            the keyring, in the background, resumable\n"
	    "                            [SPAWN_ROTATE_KEYS=1]\n"
	    "\n"
	    "Security (docs/security.md)\n"
	    "  --tls-cert FILE           PEM certificate chain (leaf first): TLS on every\n"
	    "                            listener, unix sockets included\n"
	    "                            [SPAWN_SERVER_TLS_CERT]\n"
	    "  --tls-key FILE            its PEM private key [SPAWN_SERVER_TLS_KEY]\n"
	    "  --tls-client-ca FILE      PEM CA bundle: clients, hosts and admins must\n"
	    "                            present a certificate it signed (mTLS)\n"
	    "                            [SPAWN_SERVER_TLS_CLIENT_CA]\n"
	    "                            The three files are re-read when they change: new\n"
	    "                            connections get the new certificate, open ones\n"
	    "                            keep theirs; files that do not load are ignored\n"
	    "                            (warning) and the previous ones stay in use.\n"
	    "  --access FILE             the access policy (see Access below)\n"
	    "  --insecure                allow a TCP listener that is not loopback without\n"
	    "                            TLS and --access (logged as a warning)\n"
	    "                            [SPAWN_INSECURE=1]. Without it such a listener\n"
	    "                            refuses to start; unix sockets and 127.0.0.0/8,\n"
	    "                            ::1, localhost are always allowed.\n"
	    "\n"
	    "Contracts (actors as plain gRPC services, reflection: docs/protocol.md)\n"
	    "  --descriptors DIR         load every *.pb / *.binpb file of DIR (a serialized\n"
	    "                            google.protobuf.FileDescriptorSet, e.g. from protoc\n"
	    "                            --include_imports --descriptor_set_out) at start:\n"
	    "                            each service with the spawn.actors.actor option is\n"
	    "                            served as a gRPC service; hosts may also send\n"
	    "                            theirs [SPAWN_DESCRIPTORS] default none\n"
	    "  --max-contract-bytes N    largest descriptor set (a host's, or one file);\n"
	    "                            32 times this for all registered contracts\n"
	    "                            [SPAWN_MAX_CONTRACT_BYTES] default 1048576\n"
	    "\n"
	    "Cluster (docs/design/cluster.md)\n"
	    "  --peer-listen ADDR        serve the Peer service (calls between the members of\n"
	    "                            a cluster) only here, repeatable\n"
	    "                            [SPAWN_PEER_LISTEN, comma-separated]; default: on\n"
	    "                            --listen. The members' advertised addresses must\n"
	    "                            reach it. TLS settings apply: with --tls-cert, a\n"
	    "                            member presents its own certificate to its peers\n"
	    "                            and trusts --tls-client-ca (needed then).\n"
	    "\n"
	    "Runtime\n"
	    "  --threads N               completion-queue threads [SPAWN_THREADS]\n"
	    "                            default: usable CPUs\n"
	    "  --shards N                actor shards [SPAWN_SHARDS] default 64\n"
	    "  --deactivate-timeout MS   default idle time before an actor is deactivated\n"
	    "                            [SPAWN_DEACTIVATE_TIMEOUT_MS] default 60000\n"
	    "  --snapshot-interval MS    default delay before a changed state is saved\n"
	    "                            [SPAWN_SNAPSHOT_INTERVAL_MS] default 2000\n"
	    "  --timer-floor MS          shortest timer-action period a host may register\n"
	    "                            [SPAWN_TIMER_FLOOR_MS] default 10\n"
	    "\n"
	    "Hosts\n"
	    "  --host-timeout MS         longest a host may take for one invocation\n"
	    "                            [SPAWN_HOST_TIMEOUT_MS] default 30000\n"
	    "  --host-queue-bytes N      bytes of tasks queued for one host before new ones\n"
	    "                            are refused (RESOURCE_EXHAUSTED) or go to another\n"
	    "                            host of the type [SPAWN_HOST_QUEUE_BYTES]\n"
	    "                            default 67108864\n"
	    "  --host-stall MS           a host over that bound that has not read a task\n"
	    "                            for this long is disconnected [SPAWN_HOST_STALL_MS]\n"
	    "                            default 10000\n"
	    "  --host-batch N            most tasks sent to a host in one message (a batch of\n"
	    "                            what queued during the previous write; only to hosts\n"
	    "                            that ask for batches); 1 = no batches\n"
	    "                            [SPAWN_HOST_BATCH] default 128\n"
	    "  --host-batch-bytes N      most task bytes in one batch [SPAWN_HOST_BATCH_BYTES]\n"
	    "                            default 262144\n"
	    "  --host-grace MS           a task written to a host that timed out keeps its\n"
	    "                            actor busy until the host answers; a host silent\n"
	    "                            this long past the deadline sent with the task is\n"
	    "                            disconnected [SPAWN_HOST_GRACE_MS] default 5000\n"
	    "  --registration-grace MS   after start-up, calls to actors the store knows but\n"
	    "                            no host has registered yet get UNAVAILABLE (retry),\n"
	    "                            not NOT_FOUND [SPAWN_REGISTRATION_GRACE_MS]\n"
	    "                            default 10000; 0 = none\n"
	    "  --type-grace MS           an actor type whose last host left stays known\n"
	    "                            (calls answer UNAVAILABLE) this long, then is\n"
	    "                            forgotten [SPAWN_TYPE_GRACE_MS] default 60000\n"
	    "\n"
	    "Bounds (over one: RESOURCE_EXHAUSTED naming it; nothing changed)\n"
	    "  --mailbox-size N          queued invocations per actor [SPAWN_MAILBOX_SIZE]\n"
	    "                            default 10000\n"
	    "  --mailbox-bytes N         request bytes queued per actor (over 4 GiB: 4 GiB)\n"
	    "                            [SPAWN_MAILBOX_BYTES] default 67108864\n"
	    "  --queued-bytes N          request bytes queued in all mailboxes of the gateway\n"
	    "                            [SPAWN_QUEUED_BYTES] default 1073741824\n"
	    "  --max-message-bytes N     largest message accepted or sent\n"
	    "                            [SPAWN_MAX_MESSAGE_BYTES] default 4194304\n"
	    "  --max-state-bytes N       largest state (with its tags) a result may leave: a\n"
	    "                            later task must carry it [SPAWN_MAX_STATE_BYTES]\n"
	    "                            default max-message-bytes - 65536 (payload,\n"
	    "                            metadata)\n"
	    "  --max-effects-per-turn N  side effects one result may emit\n"
	    "                            [SPAWN_MAX_EFFECTS_PER_TURN] default 64\n"
	    "  --max-outbox-bytes N      stored undelivered effects per actor\n"
	    "                            [SPAWN_MAX_OUTBOX_BYTES] default 1048576\n"
	    "  --max-effects-in-flight N side effects being delivered by this gateway:\n"
	    "                            stored ones wait, others fail their turn\n"
	    "                            [SPAWN_MAX_EFFECTS_IN_FLIGHT] default 10000\n"
	    "  --max-instances N         UNNAMED instances per actor system\n"
	    "                            [SPAWN_MAX_INSTANCES] default 1000000\n"
	    "  --max-schedules N         stored scheduled invocations per actor system\n"
	    "                            [SPAWN_MAX_SCHEDULES] default 100000\n"
	    "  --max-schedule-ahead MS   farthest scheduled_to from now (INVALID_ARGUMENT)\n"
	    "                            [SPAWN_MAX_SCHEDULE_AHEAD_MS] default 31622400000\n"
	    "                            (366 days)\n"
	    "\n"
	    "Input limits (bytes of UTF-8; longer is INVALID_ARGUMENT naming the field)\n"
	    "  --max-name-bytes N        system, actor, action, parent and channel names\n"
	    "                            [SPAWN_MAX_NAME_BYTES] default 255\n"
	    "  --max-metadata-key-bytes N    [SPAWN_MAX_METADATA_KEY_BYTES] default 128\n"
	    "  --max-metadata-value-bytes N  [SPAWN_MAX_METADATA_VALUE_BYTES] default 4096\n"
	    "  --max-metadata-entries N  metadata entries per request\n"
	    "                            [SPAWN_MAX_METADATA_ENTRIES] default 64\n"
	    "  --max-tag-key-bytes N     [SPAWN_MAX_TAG_KEY_BYTES] default 128\n"
	    "  --max-tag-value-bytes N   [SPAWN_MAX_TAG_VALUE_BYTES] default 4096\n"
	    "  --max-tags N              tags per actor [SPAWN_MAX_TAGS] default 64\n"
	    "  Every string a client or host sends must be UTF-8 without NUL or control\n"
	    "  characters; metadata keys starting with \"spawn-\" are reserved to the gateway.\n"
	    "\n"
	    "Cluster (docs/design/cluster.md; needs a PostgreSQL or MariaDB statestore)\n"
	    "  --advertise HOST:PORT     join the cluster of the gateways sharing the\n"
	    "                            statestore, reachable by peers and clients at\n"
	    "                            HOST:PORT [SPAWN_ADVERTISE] default none (alone)\n"
	    "  --heartbeat-ms MS         how often the member heartbeats in the database\n"
	    "                            [SPAWN_HEARTBEAT_MS] default 1000\n"
	    "  --member-timeout-ms MS    a member silent this long (heartbeats and probes)\n"
	    "                            is declared dead; a member that cannot heartbeat\n"
	    "                            for nearly as long fences itself; more than twice\n"
	    "                            --heartbeat-ms [SPAWN_MEMBER_TIMEOUT_MS] default 5000\n"
	    "  --peer-token-file FILE    the bearer token (first line of FILE) this member\n"
	    "                            sends on its calls to peers; with --access the\n"
	    "                            peers take it for a principal with peer: true;\n"
	    "                            read again on SIGHUP [SPAWN_PEER_TOKEN_FILE]\n"
	    "                            default none (with TLS the member's certificate\n"
	    "                            is its credential)\n"
	    "  --peer-tls-server-name NAME  the name the peers' certificates must carry\n"
	    "                            when members dial each other at addresses the\n"
	    "                            certificates do not name (pod IPs)\n"
	    "                            [SPAWN_PEER_TLS_SERVER_NAME] default: the host of\n"
	    "                            the advertised address\n"
	    "  With --access, Peer.Forward and Peer.Ping are served only to principals\n"
	    "  with peer: true (docs/security.md, \"Peers\").\n"
	    "\n"
	    "HTTP/1.1: Spawn's protocol (docs/protocol.md) and HTTP/JSON (docs/http-json.md)\n"
	    "  --http HOST:PORT          serve Spawn's HTTP API (register, spawn, invoke,\n"
	    "                            /health; SDKs set PROXY_HTTP_PORT to it) and the\n"
	    "                            JSON routes (POST /v1/SYSTEM/ACTOR/ACTION and the\n"
	    "                            contracts' google.api.http routes) here. HTTPS with\n"
	    "                            --tls-cert/--tls-key. With --access the JSON routes\n"
	    "                            need Authorization: Bearer TOKEN and Spawn's API\n"
	    "                            answers 403. Not loopback: needs TLS and --access,\n"
	    "                            or --insecure [SPAWN_HTTP] default none (off)\n"
	    "  --spawn-host-url URL      where hosts registered over HTTP are called back\n"
	    "                            (POST URL/api/v1/actors/actions), http://HOST:PORT\n"
	    "                            [SPAWN_HOST_URL, or USER_FUNCTION_HOST and\n"
	    "                            USER_FUNCTION_PORT] default the registering peer's\n"
	    "                            address, port USER_FUNCTION_PORT or 8090\n"
	    "  --http-max-body N         bytes of one HTTP request body [SPAWN_HTTP_MAX_BODY]\n"
	    "                            default --max-message-bytes\n"
	    "  --http-max-conns N        open HTTP connections [SPAWN_HTTP_MAX_CONNS]\n"
	    "                            default 1024\n"
	    "  --http-max-pending N      HTTP requests in progress; more answer 503\n"
	    "                            [SPAWN_HTTP_MAX_PENDING] default 4096\n"
	    "  --spawn-host-tasks N      calls to HTTP hosts in flight; more fail\n"
	    "                            RESOURCE_EXHAUSTED [SPAWN_HOST_TASKS] default 10000\n"
	    "\n"
	    "Metrics and health (on --http; docs/operations.md)\n"
	    "  --metrics on|off          record metrics and serve GET /metrics (Prometheus\n"
	    "                            text); /healthz and /readyz are served either way\n"
	    "                            [SPAWN_METRICS] default on\n"
	    "\n"
	    "Shutdown (SIGTERM or SIGINT)\n"
	    "  --drain MS                wait this long for calls in flight\n"
	    "                            [SPAWN_DRAIN_MS] default 5000\n"
	    "  --flush-timeout MS        then wait this long for changed states to be saved\n"
	    "                            [SPAWN_FLUSH_TIMEOUT_MS] default 30000\n"
	    "  --persist-drain MS        then wait at most this long for the statestore\n"
	    "                            thread to finish the call it is in; past it, exit\n"
	    "                            1 at once without freeing what it uses\n"
	    "                            [SPAWN_PERSIST_DRAIN_MS] default 10000\n"
	    "\n"
	    "Access (docs/security.md)\n"
	    "  --access FILE             the access policy (YAML): principals, their mTLS\n"
	    "                            identities and bearer-token hashes, the systems\n"
	    "                            each may host and invoke, admin or not; reloaded\n"
	    "                            on SIGHUP [SPAWN_ACCESS] default none (every caller\n"
	    "                            may do everything)\n"
	    "  --hash-token              read a bearer token on stdin, print its sha256:\n"
	    "                            hash for the policy's tokens list, and exit\n"
	    "\n"
	    "Logging\n"
	    "  --log-level LEVEL         debug|info|warn|error [SPAWN_LOG_LEVEL] default info\n"
	    "  --log-format FORMAT       text|json: json prints one object per line (time,\n"
	    "                            level, msg, system, actor, action, trace_id,\n"
	    "                            request_id) [SPAWN_LOG_FORMAT] default text\n"
	    "  --log-rate LINES/SECONDS  at most LINES lines per log call site per SECONDS;\n"
	    "                            the next line printed says how many were\n"
	    "                            suppressed; 0 = no limit [SPAWN_LOG_RATE]\n"
	    "                            default 10/5\n"
	    "\n"
	    "Tracing (docs/observability.md)\n"
	    "  --otlp-endpoint URL       export spans (invoke, queue, activation, host turn,\n"
	    "                            save, effect delivery) with OTLP over HTTP\n"
	    "                            (protobuf) to URL (a URL without a path gets\n"
	    "                            /v1/traces) [SPAWN_OTLP_ENDPOINT] default off;\n"
	    "                            W3C traceparent/tracestate are propagated to\n"
	    "                            hosts either way\n"
	    "  --otlp-queue SPANS        spans waiting to be sent at most; more are\n"
	    "                            dropped and counted [SPAWN_OTLP_QUEUE] default 8192\n"
	    "\n"
	    "  -h, --help                this text\n"
	    "  --version                 print the version\n"
	    "\n"
	    "On start-up it prints one line per listen address to stdout:\n"
	    "  listening ADDR PORT\n"
	    "SIGTERM or SIGINT: grpc.health.v1 answers NOT_SERVING and new calls are refused\n"
	    "(UNAVAILABLE, retryable) while those in flight finish or are cancelled; then\n"
	    "every changed actor state is saved, exit 0 (exit 1, naming each actor whose\n"
	    "state was not saved, when the statestore did not take them in time).\n"
	    "SIGHUP: read --peer-token-file and the --access policy again; a file with an\n"
	    "error keeps the old one (logged); hosts whose principal may no longer serve\n"
	    "their system are disconnected (PERMISSION_DENIED). stdout then says \"access\n"
	    "reloaded N\" (N principals) or \"access not reloaded\".\n",
	    prog);
}

static int64_t num(const char *s, const char *name, int64_t min, int64_t max, char *why,
                   size_t whylen, gw_err *err)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || v < min || v > max) {
		snprintf(why, whylen, "%s: '%s' is not a number in [%lld, %lld]", name, s,
		         (long long)min, (long long)max);
		*err = GW_ECONFIG;
		return 0;
	}
	return v;
}

/* onoff reads "on" or "off" into *v; false for anything else. */
static bool onoff(const char *s, bool *v)
{
	if (!strcmp(s, "on") || !strcmp(s, "off")) {
		*v = !strcmp(s, "on");
		return true;
	}
	return false;
}

/* format_of maps a --log-format name to gw_log_format; -1 when unknown. */
static int format_of(const char *s)
{
	if (!strcmp(s, "text"))
		return GW_LOG_TEXT;
	if (!strcmp(s, "json"))
		return GW_LOG_JSON;
	return -1;
}

static int level_of(const char *s)
{
	if (!strcmp(s, "debug"))
		return GW_LOG_DEBUG;
	if (!strcmp(s, "info"))
		return GW_LOG_INFO;
	if (!strcmp(s, "warn"))
		return GW_LOG_WARN;
	if (!strcmp(s, "error"))
		return GW_LOG_ERROR;
	return -1;
}

/* The environment's SPAWN_LISTEN lists are split into these static buffers
 * (configuration is parsed once per process). */
static char listen_env[1024], host_listen_env[1024], admin_listen_env[1024], peer_listen_env[1024],
    health_listen_env[1024];

/* env_list splits the comma-separated value of var into buf and list. */
static void env_list(const char *var, char *buf, size_t buflen, const char **list, size_t *n)
{
	const char *e = getenv(var);
	if (!e || !*e)
		return;
	snprintf(buf, buflen, "%s", e);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && *n < GW_MAX_LISTEN;
	     t = strtok_r(NULL, ",", &save))
		list[(*n)++] = t;
}

bool gw_config_addr_is_local(const char *addr)
{
	if (!strncmp(addr, "unix:", 5) || !strncmp(addr, "unix-abstract:", 14))
		return true;
	if (!strncmp(addr, "ipv4:", 5) || !strncmp(addr, "ipv6:", 5))
		addr += 5;
	char host[256];
	const char *end;
	if (addr[0] == '[') { /* [v6]:port */
		addr++;
		end = strchr(addr, ']');
	} else {
		end = strrchr(addr, ':');
	}
	if (!end || (size_t)(end - addr) >= sizeof host)
		return false;
	memcpy(host, addr, (size_t)(end - addr));
	host[end - addr] = 0;
	if (!strcasecmp(host, "localhost"))
		return true;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
	}
	return false; /* a name, a wildcard (empty, 0.0.0.0, ::) or anything else */
}

/* check_exposure applies the rule of docs/security.md: a listener that is
 * not local needs TLS and a policy, or --insecure. --health-listen is not
 * subject to it: it serves readiness and nothing else. */
static gw_err check_exposure(const gw_config *c, char *why, size_t whylen)
{
	const char *const *lists[4] = {c->listen, c->host_listen, c->admin_listen, c->peer_listen};
	const size_t ns[4] = {c->n_listen, c->n_host_listen, c->n_admin_listen, c->n_peer_listen};
	static const char *const flags[4] = {"--listen", "--host-listen", "--admin-listen",
	                                     "--peer-listen"};
	if (c->insecure || (c->tls_cert && c->access))
		return GW_OK;
	for (int k = 0; k < 4; k++)
		for (size_t i = 0; i < ns[k]; i++) {
			if (gw_config_addr_is_local(lists[k][i]))
				continue;
			snprintf(why, whylen,
			         "%s %s is not a loopback address or a unix socket: serving it "
			         "needs TLS and an access policy (add %s--access FILE), or "
			         "--insecure to serve it without them",
			         flags[k], lists[k][i],
			         c->tls_cert ? "" : "--tls-cert FILE --tls-key FILE ");
			return GW_ECONFIG;
		}
	return GW_OK;
}

/* check_http validates the flags of the HTTP listener. Spawn's HTTP API has
 * no authentication (Spawn's proxy has none): with --access it is not served
 * (answered 403) and the JSON routes need a bearer token. --tls-cert and
 * --tls-key make the listener HTTPS. A non-loopback --http needs both TLS
 * and --access, or --insecure (docs/http-json.md, "Security"). */
static gw_err check_http(gw_config *c, char *why, size_t whylen)
{
	if (!c->http_max_body)
		c->http_max_body = c->max_message_bytes;
	if (c->spawn_host_url &&
	    (strncmp(c->spawn_host_url, "http://", 7) || !c->spawn_host_url[7] ||
	     strlen(c->spawn_host_url) > 256 || strpbrk(c->spawn_host_url, " \t\r\n?#"))) {
		snprintf(why, whylen, "--spawn-host-url '%.200s' is not http://HOST:PORT",
		         c->spawn_host_url);
		return GW_ECONFIG;
	}
	if (!c->http)
		return GW_OK;
	if (!strrchr(c->http, ':') || !strncmp(c->http, "unix:", 5)) {
		snprintf(why, whylen, "--http '%s' is not HOST:PORT", c->http);
		return GW_ECONFIG;
	}
	if (!c->insecure && !(c->access && c->tls_cert) && !gw_config_addr_is_local(c->http)) {
		snprintf(why, whylen,
		         "--http %s is not a loopback address: serving it needs TLS and an "
		         "access policy (%s--access FILE: HTTPS, bearer tokens on the JSON "
		         "routes, Spawn's unauthenticated API off), or --insecure to serve it "
		         "without them",
		         c->http, c->tls_cert ? "" : "--tls-cert FILE --tls-key FILE ");
		return GW_ECONFIG;
	}
	return GW_OK;
}

/* check_cluster validates the cluster flags: an advertised HOST:PORT, a
 * store that has the members table, and timings that leave a member room
 * to miss a heartbeat before it fences itself (docs/design/cluster.md). */
static gw_err check_cluster(const gw_config *c, char *why, size_t whylen)
{
	if (c->heartbeat_ms * 2 >= c->member_timeout_ms) {
		snprintf(why, whylen,
		         "--heartbeat-ms %lld must be less than half of --member-timeout-ms %lld",
		         (long long)c->heartbeat_ms, (long long)c->member_timeout_ms);
		return GW_ECONFIG;
	}
	if (!c->advertise)
		return GW_OK;
	const char *colon = strrchr(c->advertise, ':');
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : 0;
	if (!colon || colon == c->advertise || !end || *end || port < 1 || port > 65535 ||
	    strlen(c->advertise) > 200 || strpbrk(c->advertise, " \t\r\n@/")) {
		snprintf(why, whylen, "--advertise '%s' is not HOST:PORT", c->advertise);
		return GW_ECONFIG;
	}
	if (strncmp(c->statestore, "postgres://", 11) != 0 &&
	    strncmp(c->statestore, "postgresql://", 13) != 0 &&
	    strncmp(c->statestore, "mariadb://", 10) != 0 &&
	    strncmp(c->statestore, "mysql://", 8) != 0) {
		snprintf(why, whylen,
		         "--advertise: cluster mode needs PostgreSQL or MariaDB (the "
		         "statestore is not one)");
		return GW_ECONFIG;
	}
	return GW_OK;
}

gw_err gw_config_parse(gw_config *c, int argc, char **argv, char *why, size_t whylen)
{
	memset(c, 0, sizeof *c);
	c->statestore = "sqlite://spawn-state.db";
	c->shards = 64;
	c->mailbox_max = 10000;
	c->mailbox_bytes = (int64_t)64 << 20;
	c->queued_bytes = (int64_t)1 << 30;
	c->deactivate_ms = 60000;
	c->snapshot_ms = 2000;
	c->host_timeout_ms = 30000;
	c->drain_ms = 5000;
	c->flush_timeout_ms = 30000;
	c->persist_drain_ms = 10000;
	c->heartbeat_ms = 1000;
	c->member_timeout_ms = 5000;
	c->max_message_bytes = 4 << 20;
	c->save_batch = 256;
	c->log_level = GW_LOG_INFO;
	c->log_format = GW_LOG_TEXT;
	c->metrics = true;
	c->host_queue_bytes = (int64_t)64 << 20;
	c->host_stall_ms = 10000;
	c->host_batch = 128;
	c->host_batch_bytes = 256 << 10;
	c->host_grace_ms = 5000;
	c->registration_grace_ms = 10000;
	c->type_grace_ms = 60000;
	c->timer_floor_ms = 10;
	c->log_burst = GW_LOG_BURST_DEFAULT;
	c->log_interval_ms = GW_LOG_INTERVAL_DEFAULT;
	gw_err err = GW_OK;
	const char *e;
	/* Environment first; flags override. */
	env_list("SPAWN_LISTEN", listen_env, sizeof listen_env, c->listen, &c->n_listen);
	env_list("SPAWN_HOST_LISTEN", host_listen_env, sizeof host_listen_env, c->host_listen,
	         &c->n_host_listen);
	env_list("SPAWN_ADMIN_LISTEN", admin_listen_env, sizeof admin_listen_env, c->admin_listen,
	         &c->n_admin_listen);
	env_list("SPAWN_PEER_LISTEN", peer_listen_env, sizeof peer_listen_env, c->peer_listen,
	         &c->n_peer_listen);
	env_list("SPAWN_HEALTH_LISTEN", health_listen_env, sizeof health_listen_env,
	         c->health_listen, &c->n_health_listen);
	if ((e = getenv("SPAWN_SERVER_TLS_CERT")) && *e)
		c->tls_cert = e;
	if ((e = getenv("SPAWN_SERVER_TLS_KEY")) && *e)
		c->tls_key = e;
	if ((e = getenv("SPAWN_SERVER_TLS_CLIENT_CA")) && *e)
		c->tls_client_ca = e;
	if ((e = getenv("SPAWN_INSECURE")) && *e)
		c->insecure = !strcmp(e, "1") || !strcmp(e, "true");
	if ((e = getenv("SPAWN_STATESTORE_URL")) && *e)
		c->statestore = e;
	if ((e = getenv("SPAWN_STATESTORE_KEYS")) && *e)
		c->keys = e;
	else if ((e = getenv("SPAWN_STATESTORE_KEY")) && *e)
		c->keys = e;
#define ENVNUM(var, field, lo, hi)                                                                 \
	if ((e = getenv(var)) && *e)                                                               \
		c->field = num(e, var, lo, hi, why, whylen, &err);
	ENVNUM("SPAWN_THREADS", threads, 1, 256)
	ENVNUM("SPAWN_SHARDS", shards, 1, 65536)
	ENVNUM("SPAWN_MAILBOX_SIZE", mailbox_max, 1, 100000000)
	ENVNUM("SPAWN_MAILBOX_BYTES", mailbox_bytes, 1024, 1LL << 40)
	ENVNUM("SPAWN_QUEUED_BYTES", queued_bytes, 1024, 1LL << 40)
	ENVNUM("SPAWN_DEACTIVATE_TIMEOUT_MS", deactivate_ms, 1, INT64_MAX / 4)
	ENVNUM("SPAWN_SNAPSHOT_INTERVAL_MS", snapshot_ms, 1, INT64_MAX / 4)
	ENVNUM("SPAWN_HOST_TIMEOUT_MS", host_timeout_ms, 1, INT64_MAX / 4)
	ENVNUM("SPAWN_MAX_MESSAGE_BYTES", max_message_bytes, 1024, 1 << 30)
	ENVNUM("SPAWN_SAVE_BATCH", save_batch, 1, 100000)
	ENVNUM("SPAWN_DRAIN_MS", drain_ms, 1, 3600000)
	ENVNUM("SPAWN_FLUSH_TIMEOUT_MS", flush_timeout_ms, 1, 3600000)
	ENVNUM("SPAWN_PERSIST_DRAIN_MS", persist_drain_ms, 1, 3600000)
	ENVNUM("SPAWN_HEARTBEAT_MS", heartbeat_ms, 10, 600000)
	ENVNUM("SPAWN_MEMBER_TIMEOUT_MS", member_timeout_ms, 50, 3600000)
	if ((e = getenv("SPAWN_ADVERTISE")) && *e)
		c->advertise = e;
	if ((e = getenv("SPAWN_PEER_TOKEN_FILE")) && *e)
		c->peer_token_file = e;
	if ((e = getenv("SPAWN_PEER_TLS_SERVER_NAME")) && *e)
		c->peer_tls_server_name = e;
	ENVNUM("SPAWN_STATESTORE_POOL", store_pool, 1, 64)
	ENVNUM("SPAWN_STATESTORE_HISTORY", store_history, 0, 1000000)
	ENVNUM("SPAWN_TYPE_GRACE_MS", type_grace_ms, 0, INT64_MAX / 4)
	ENVNUM("SPAWN_TIMER_FLOOR_MS", timer_floor_ms, 1, 86400000)
	ENVNUM("SPAWN_MAX_NAME_BYTES", limits.name_bytes, 1, 65535)
	ENVNUM("SPAWN_MAX_METADATA_KEY_BYTES", limits.metadata_key_bytes, 1, 65535)
	ENVNUM("SPAWN_MAX_METADATA_VALUE_BYTES", limits.metadata_value_bytes, 1, 1 << 30)
	ENVNUM("SPAWN_MAX_METADATA_ENTRIES", limits.metadata_entries, 1, 1000000)
	ENVNUM("SPAWN_MAX_TAG_KEY_BYTES", limits.tag_key_bytes, 1, 65535)
	ENVNUM("SPAWN_MAX_TAG_VALUE_BYTES", limits.tag_value_bytes, 1, 1 << 30)
	ENVNUM("SPAWN_MAX_TAGS", limits.tag_entries, 1, 1000000)
	ENVNUM("SPAWN_HOST_QUEUE_BYTES", host_queue_bytes, 1024, INT64_MAX / 4)
	ENVNUM("SPAWN_HOST_STALL_MS", host_stall_ms, 1, INT64_MAX / 4)
	ENVNUM("SPAWN_HOST_BATCH", host_batch, 1, 1024)
	ENVNUM("SPAWN_HOST_BATCH_BYTES", host_batch_bytes, 1024, 1 << 30)
	ENVNUM("SPAWN_HOST_GRACE_MS", host_grace_ms, 1, INT64_MAX / 4)
	ENVNUM("SPAWN_REGISTRATION_GRACE_MS", registration_grace_ms, 0, INT64_MAX / 4)
	ENVNUM("SPAWN_MAX_STATE_BYTES", max_state_bytes, 512, 1 << 30)
	ENVNUM("SPAWN_MAX_EFFECTS_PER_TURN", max_effects_per_turn, 1, 1000000)
	ENVNUM("SPAWN_MAX_OUTBOX_BYTES", max_outbox_bytes, 1024, 1LL << 40)
	ENVNUM("SPAWN_MAX_EFFECTS_IN_FLIGHT", max_effects_in_flight, 1, 100000000)
	ENVNUM("SPAWN_MAX_INSTANCES", max_instances, 1, 4000000000LL)
	ENVNUM("SPAWN_MAX_SCHEDULES", max_schedules, 1, 4000000000LL)
	ENVNUM("SPAWN_MAX_SCHEDULE_AHEAD_MS", max_schedule_ahead_ms, 1, INT64_MAX / 4)
	ENVNUM("SPAWN_HTTP_MAX_BODY", http_max_body, 1024, 1 << 30)
	ENVNUM("SPAWN_HTTP_MAX_CONNS", http_max_conns, 1, 1000000)
	ENVNUM("SPAWN_HTTP_MAX_PENDING", http_max_pending, 1, 10000000)
	ENVNUM("SPAWN_HOST_TASKS", spawn_host_tasks, 1, 10000000)
	ENVNUM("USER_FUNCTION_PORT", spawn_host_port, 1, 65535)
#undef ENVNUM
	if ((e = getenv("SPAWN_HTTP")) && *e)
		c->http = e;
	if ((e = getenv("SPAWN_METRICS")) && *e && !onoff(e, &c->metrics)) {
		snprintf(why, whylen, "SPAWN_METRICS: '%s' is neither on nor off", e);
		return GW_ECONFIG;
	}
	if ((e = getenv("SPAWN_HOST_URL")) && *e) {
		c->spawn_host_url = e;
	} else if ((e = getenv("USER_FUNCTION_HOST")) && *e) {
		/* Spawn's proxy settings: the host's address and port. */
		snprintf(c->spawn_host_buf, sizeof c->spawn_host_buf, "http://%s%s%s:%d",
		         strchr(e, ':') ? "[" : "", e, strchr(e, ':') ? "]" : "",
		         c->spawn_host_port ? c->spawn_host_port : 8090);
		c->spawn_host_url = c->spawn_host_buf;
	}
	if ((e = getenv("SPAWN_ACCESS")) && *e)
		c->access = e;
	if ((e = getenv("SPAWN_DESCRIPTORS")) && *e)
		c->descriptors = e;
	if ((e = getenv("SPAWN_MAX_CONTRACT_BYTES")) && *e)
		c->max_contract_bytes =
		    (size_t)num(e, "SPAWN_MAX_CONTRACT_BYTES", 1024, 1 << 30, why, whylen, &err);
	if ((e = getenv("SPAWN_ROTATE_KEYS")) && *e)
		c->rotate_keys = !strcmp(e, "1") || !strcmp(e, "true");
	if ((e = getenv("SPAWN_LOG_LEVEL")) && *e && (c->log_level = level_of(e)) < 0) {
		snprintf(why, whylen, "SPAWN_LOG_LEVEL: unknown level '%s'", e);
		return GW_ECONFIG;
	}
	if ((e = getenv("SPAWN_LOG_FORMAT")) && *e && (c->log_format = format_of(e)) < 0) {
		snprintf(why, whylen, "SPAWN_LOG_FORMAT: unknown format '%s' (text or json)", e);
		return GW_ECONFIG;
	}
	if ((e = getenv("SPAWN_OTLP_ENDPOINT")) && *e)
		c->otlp_endpoint = e;
	if ((e = getenv("SPAWN_OTLP_QUEUE")) && *e)
		c->otlp_queue = num(e, "SPAWN_OTLP_QUEUE", 16, 1 << 24, why, whylen, &err);
	if ((e = getenv("SPAWN_LOG_RATE")) && *e &&
	    gw_log_parse_rate(e, &c->log_burst, &c->log_interval_ms) != 0) {
		snprintf(why, whylen, "SPAWN_LOG_RATE: '%s' is not LINES/SECONDS (or 0)", e);
		return GW_ECONFIG;
	}
	if (err)
		return err;

	enum {
		O_LISTEN = 256,
		O_STORE,
		O_THREADS,
		O_SHARDS,
		O_MAILBOX,
		O_MAILBOXB,
		O_QUEUEDB,
		O_DEACT,
		O_SNAP,
		O_HOSTTO,
		O_MAXMSG,
		O_BATCH,
		O_DRAIN,
		O_LOG,
		O_VERSION,
		O_POOL,
		O_HISTORY,
		O_ROTATE,
		O_TYPE_GRACE,
		O_TIMER_FLOOR,
		O_LIM_NAME,
		O_LIM_MDKEY,
		O_LIM_MDVAL,
		O_LIM_MDN,
		O_LIM_TAGKEY,
		O_LIM_TAGVAL,
		O_LIM_TAGN,
		O_HOSTQ,
		O_HOSTBATCH,
		O_HOSTBATCHB,
		O_HOSTSTALL,
		O_HOSTGRACE,
		O_REGGRACE,
		O_LOGRATE,
		O_LOGFMT,
		O_MAXSTATE,
		O_FXTURN,
		O_OUTBOX,
		O_FXFLIGHT,
		O_MAXINST,
		O_MAXSCHED,
		O_AHEAD,
		O_FLUSHTO,
		O_PDRAIN,
		O_HOST_LISTEN,
		O_ADMIN_LISTEN,
		O_HEALTH_LISTEN,
		O_TLS_CERT,
		O_TLS_KEY,
		O_TLS_CLIENT_CA,
		O_ACCESS,
		O_INSECURE,
		O_HASH_TOKEN,
		O_ADVERTISE,
		O_HEARTBEAT,
		O_MEMBER_TO,
		O_CLUSTER_TEST_VIEW,
		O_PEER_LISTEN,
		O_DESCRIPTORS,
		O_MAX_CONTRACT,
		O_PEER_TOKEN_FILE,
		O_PEER_TLS_NAME,
		O_HTTP,
		O_SPAWN_HOST_URL,
		O_HTTP_MAX_BODY,
		O_HTTP_MAX_CONNS,
		O_HTTP_MAX_PENDING,
		O_SPAWN_HOST_TASKS,
		O_METRICS,
		O_OTLP_ENDPOINT,
		O_OTLP_QUEUE
	};
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, O_LISTEN},
	    {"statestore", required_argument, NULL, O_STORE},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"shards", required_argument, NULL, O_SHARDS},
	    {"mailbox-size", required_argument, NULL, O_MAILBOX},
	    {"mailbox-bytes", required_argument, NULL, O_MAILBOXB},
	    {"queued-bytes", required_argument, NULL, O_QUEUEDB},
	    {"deactivate-timeout", required_argument, NULL, O_DEACT},
	    {"snapshot-interval", required_argument, NULL, O_SNAP},
	    {"host-timeout", required_argument, NULL, O_HOSTTO},
	    {"max-message-bytes", required_argument, NULL, O_MAXMSG},
	    {"save-batch", required_argument, NULL, O_BATCH},
	    {"drain", required_argument, NULL, O_DRAIN},
	    {"log-level", required_argument, NULL, O_LOG},
	    {"store-pool", required_argument, NULL, O_POOL},
	    {"store-history", required_argument, NULL, O_HISTORY},
	    {"rotate-keys", no_argument, NULL, O_ROTATE},
	    {"type-grace", required_argument, NULL, O_TYPE_GRACE},
	    {"timer-floor", required_argument, NULL, O_TIMER_FLOOR},
	    {"max-name-bytes", required_argument, NULL, O_LIM_NAME},
	    {"max-metadata-key-bytes", required_argument, NULL, O_LIM_MDKEY},
	    {"max-metadata-value-bytes", required_argument, NULL, O_LIM_MDVAL},
	    {"max-metadata-entries", required_argument, NULL, O_LIM_MDN},
	    {"max-tag-key-bytes", required_argument, NULL, O_LIM_TAGKEY},
	    {"max-tag-value-bytes", required_argument, NULL, O_LIM_TAGVAL},
	    {"max-tags", required_argument, NULL, O_LIM_TAGN},
	    {"host-queue-bytes", required_argument, NULL, O_HOSTQ},
	    {"host-batch", required_argument, NULL, O_HOSTBATCH},
	    {"host-batch-bytes", required_argument, NULL, O_HOSTBATCHB},
	    {"host-stall", required_argument, NULL, O_HOSTSTALL},
	    {"host-grace", required_argument, NULL, O_HOSTGRACE},
	    {"registration-grace", required_argument, NULL, O_REGGRACE},
	    {"log-rate", required_argument, NULL, O_LOGRATE},
	    {"log-format", required_argument, NULL, O_LOGFMT},
	    {"max-state-bytes", required_argument, NULL, O_MAXSTATE},
	    {"max-effects-per-turn", required_argument, NULL, O_FXTURN},
	    {"max-outbox-bytes", required_argument, NULL, O_OUTBOX},
	    {"max-effects-in-flight", required_argument, NULL, O_FXFLIGHT},
	    {"max-instances", required_argument, NULL, O_MAXINST},
	    {"max-schedules", required_argument, NULL, O_MAXSCHED},
	    {"max-schedule-ahead", required_argument, NULL, O_AHEAD},
	    {"flush-timeout", required_argument, NULL, O_FLUSHTO},
	    {"persist-drain", required_argument, NULL, O_PDRAIN},
	    {"advertise", required_argument, NULL, O_ADVERTISE},
	    {"heartbeat-ms", required_argument, NULL, O_HEARTBEAT},
	    {"member-timeout-ms", required_argument, NULL, O_MEMBER_TO},
	    {"host-listen", required_argument, NULL, O_HOST_LISTEN},
	    {"admin-listen", required_argument, NULL, O_ADMIN_LISTEN},
	    {"health-listen", required_argument, NULL, O_HEALTH_LISTEN},
	    {"tls-cert", required_argument, NULL, O_TLS_CERT},
	    {"tls-key", required_argument, NULL, O_TLS_KEY},
	    {"tls-client-ca", required_argument, NULL, O_TLS_CLIENT_CA},
	    {"access", required_argument, NULL, O_ACCESS},
	    {"insecure", no_argument, NULL, O_INSECURE},
	    {"hash-token", no_argument, NULL, O_HASH_TOKEN},
	    /* Not in --help: a test's fixed membership view (docs/testing.md). */
	    {"cluster-test-view", required_argument, NULL, O_CLUSTER_TEST_VIEW},
	    {"peer-listen", required_argument, NULL, O_PEER_LISTEN},
	    {"descriptors", required_argument, NULL, O_DESCRIPTORS},
	    {"max-contract-bytes", required_argument, NULL, O_MAX_CONTRACT},
	    {"peer-token-file", required_argument, NULL, O_PEER_TOKEN_FILE},
	    {"peer-tls-server-name", required_argument, NULL, O_PEER_TLS_NAME},
	    {"http", required_argument, NULL, O_HTTP},
	    {"spawn-host-url", required_argument, NULL, O_SPAWN_HOST_URL},
	    {"http-max-body", required_argument, NULL, O_HTTP_MAX_BODY},
	    {"http-max-conns", required_argument, NULL, O_HTTP_MAX_CONNS},
	    {"http-max-pending", required_argument, NULL, O_HTTP_MAX_PENDING},
	    {"spawn-host-tasks", required_argument, NULL, O_SPAWN_HOST_TASKS},
	    {"metrics", required_argument, NULL, O_METRICS},
	    {"otlp-endpoint", required_argument, NULL, O_OTLP_ENDPOINT},
	    {"otlp-queue", required_argument, NULL, O_OTLP_QUEUE},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, O_VERSION},
	    {NULL, 0, NULL, 0},
	};
	bool listen_flag = false, host_listen_flag = false, admin_listen_flag = false,
	     peer_listen_flag = false, health_listen_flag = false;
	optind = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1 && !err) {
		switch (ch) {
		case O_LISTEN:
			if (!listen_flag) {
				c->n_listen = 0; /* flags replace the environment's list */
				listen_flag = true;
			}
			if (c->n_listen == GW_MAX_LISTEN) {
				snprintf(why, whylen, "at most %d --listen addresses",
				         GW_MAX_LISTEN);
				return GW_ECONFIG;
			}
			c->listen[c->n_listen++] = optarg;
			break;
		case O_HOST_LISTEN:
		case O_ADMIN_LISTEN:
		case O_HEALTH_LISTEN: {
			int k = ch == O_HOST_LISTEN ? 0 : ch == O_ADMIN_LISTEN ? 1 : 2;
			bool *flags[3] = {&host_listen_flag, &admin_listen_flag,
			                  &health_listen_flag};
			size_t *ns[3] = {&c->n_host_listen, &c->n_admin_listen,
			                 &c->n_health_listen};
			const char **lists[3] = {c->host_listen, c->admin_listen, c->health_listen};
			static const char *const names[3] = {"--host-listen", "--admin-listen",
			                                     "--health-listen"};
			if (!*flags[k]) {
				*ns[k] = 0; /* flags replace the environment's list */
				*flags[k] = true;
			}
			if (*ns[k] == GW_MAX_LISTEN) {
				snprintf(why, whylen, "at most %d %s addresses", GW_MAX_LISTEN,
				         names[k]);
				return GW_ECONFIG;
			}
			lists[k][(*ns[k])++] = optarg;
			break;
		}
		case O_TLS_CERT:
			c->tls_cert = optarg;
			break;
		case O_TLS_KEY:
			c->tls_key = optarg;
			break;
		case O_TLS_CLIENT_CA:
			c->tls_client_ca = optarg;
			break;
		case O_ACCESS:
			c->access = optarg;
			break;
		case O_INSECURE:
			c->insecure = true;
			break;
		case O_STORE:
			c->statestore = optarg;
			break;
		case O_THREADS:
			c->threads = (int)num(optarg, "--threads", 1, 256, why, whylen, &err);
			break;
		case O_SHARDS:
			c->shards = (size_t)num(optarg, "--shards", 1, 65536, why, whylen, &err);
			break;
		case O_MAILBOX:
			c->mailbox_max = (uint32_t)num(optarg, "--mailbox-size", 1, 100000000, why,
			                               whylen, &err);
			break;
		case O_MAILBOXB:
			c->mailbox_bytes =
			    num(optarg, "--mailbox-bytes", 1024, 1LL << 40, why, whylen, &err);
			break;
		case O_QUEUEDB:
			c->queued_bytes =
			    num(optarg, "--queued-bytes", 1024, 1LL << 40, why, whylen, &err);
			break;
		case O_DEACT:
			c->deactivate_ms = num(optarg, "--deactivate-timeout", 1, INT64_MAX / 4,
			                       why, whylen, &err);
			break;
		case O_SNAP:
			c->snapshot_ms =
			    num(optarg, "--snapshot-interval", 1, INT64_MAX / 4, why, whylen, &err);
			break;
		case O_HOSTTO:
			c->host_timeout_ms =
			    num(optarg, "--host-timeout", 1, INT64_MAX / 4, why, whylen, &err);
			break;
		case O_MAXMSG:
			c->max_message_bytes = (int)num(optarg, "--max-message-bytes", 1024,
			                                1 << 30, why, whylen, &err);
			break;
		case O_BATCH:
			c->save_batch =
			    (size_t)num(optarg, "--save-batch", 1, 100000, why, whylen, &err);
			break;
		case O_DRAIN:
			c->drain_ms = num(optarg, "--drain", 1, 3600000, why, whylen, &err);
			break;
		case O_POOL:
			c->store_pool = (int)num(optarg, "--store-pool", 1, 64, why, whylen, &err);
			break;
		case O_HISTORY:
			c->store_history =
			    (int)num(optarg, "--store-history", 0, 1000000, why, whylen, &err);
			break;
		case O_ROTATE:
			c->rotate_keys = true;
			break;
		case O_TYPE_GRACE:
			c->type_grace_ms =
			    num(optarg, "--type-grace", 0, INT64_MAX / 4, why, whylen, &err);
			break;
		case O_TIMER_FLOOR:
			c->timer_floor_ms =
			    num(optarg, "--timer-floor", 1, 86400000, why, whylen, &err);
			break;
#define LIMIT(opt, field, flag, hi)                                                                \
	case opt:                                                                                  \
		c->limits.field = (uint32_t)num(optarg, flag, 1, hi, why, whylen, &err);           \
		break;
			LIMIT(O_LIM_NAME, name_bytes, "--max-name-bytes", 65535)
			LIMIT(O_LIM_MDKEY, metadata_key_bytes, "--max-metadata-key-bytes", 65535)
			LIMIT(O_LIM_MDVAL, metadata_value_bytes, "--max-metadata-value-bytes",
			      1 << 30)
			LIMIT(O_LIM_MDN, metadata_entries, "--max-metadata-entries", 1000000)
			LIMIT(O_LIM_TAGKEY, tag_key_bytes, "--max-tag-key-bytes", 65535)
			LIMIT(O_LIM_TAGVAL, tag_value_bytes, "--max-tag-value-bytes", 1 << 30)
			LIMIT(O_LIM_TAGN, tag_entries, "--max-tags", 1000000)
#undef LIMIT
		case O_HOSTQ:
			c->host_queue_bytes = num(optarg, "--host-queue-bytes", 1024, INT64_MAX / 4,
			                          why, whylen, &err);
			break;
		case O_HOSTBATCH:
			c->host_batch = num(optarg, "--host-batch", 1, 1024, why, whylen, &err);
			break;
		case O_HOSTBATCHB:
			c->host_batch_bytes =
			    num(optarg, "--host-batch-bytes", 1024, 1 << 30, why, whylen, &err);
			break;
		case O_HOSTSTALL:
			c->host_stall_ms =
			    num(optarg, "--host-stall", 1, INT64_MAX / 4, why, whylen, &err);
			break;
		case O_HOSTGRACE:
			c->host_grace_ms =
			    num(optarg, "--host-grace", 1, INT64_MAX / 4, why, whylen, &err);
			break;
		case O_REGGRACE:
			c->registration_grace_ms = num(optarg, "--registration-grace", 0,
			                               INT64_MAX / 4, why, whylen, &err);
			break;
		case O_MAXSTATE:
			c->max_state_bytes = (size_t)num(optarg, "--max-state-bytes", 512, 1 << 30,
			                                 why, whylen, &err);
			break;
		case O_FXTURN:
			c->max_effects_per_turn = (uint32_t)num(optarg, "--max-effects-per-turn", 1,
			                                        1000000, why, whylen, &err);
			break;
		case O_OUTBOX:
			c->max_outbox_bytes = (size_t)num(optarg, "--max-outbox-bytes", 1024,
			                                  1LL << 40, why, whylen, &err);
			break;
		case O_FXFLIGHT:
			c->max_effects_in_flight = (uint32_t)num(optarg, "--max-effects-in-flight",
			                                         1, 100000000, why, whylen, &err);
			break;
		case O_MAXINST:
			c->max_instances = (uint32_t)num(optarg, "--max-instances", 1, 4000000000LL,
			                                 why, whylen, &err);
			break;
		case O_MAXSCHED:
			c->max_schedules = (uint32_t)num(optarg, "--max-schedules", 1, 4000000000LL,
			                                 why, whylen, &err);
			break;
		case O_AHEAD:
			c->max_schedule_ahead_ms = num(optarg, "--max-schedule-ahead", 1,
			                               INT64_MAX / 4, why, whylen, &err);
			break;
		case O_FLUSHTO:
			c->flush_timeout_ms =
			    num(optarg, "--flush-timeout", 1, 3600000, why, whylen, &err);
			break;
		case O_PDRAIN:
			c->persist_drain_ms =
			    num(optarg, "--persist-drain", 1, 3600000, why, whylen, &err);
			break;
		case O_ADVERTISE:
			c->advertise = optarg;
			break;
		case O_HEARTBEAT:
			c->heartbeat_ms =
			    num(optarg, "--heartbeat-ms", 10, 600000, why, whylen, &err);
			break;
		case O_MEMBER_TO:
			c->member_timeout_ms =
			    num(optarg, "--member-timeout-ms", 50, 3600000, why, whylen, &err);
			break;
		case O_LOG:
			if ((c->log_level = level_of(optarg)) < 0) {
				snprintf(why, whylen, "--log-level: unknown level '%s'", optarg);
				return GW_ECONFIG;
			}
			break;
		case O_LOGFMT:
			if ((c->log_format = format_of(optarg)) < 0) {
				snprintf(why, whylen,
				         "--log-format: unknown format '%s' (text or json)",
				         optarg);
				return GW_ECONFIG;
			}
			break;
		case O_OTLP_ENDPOINT:
			c->otlp_endpoint = optarg;
			break;
		case O_OTLP_QUEUE:
			c->otlp_queue = num(optarg, "--otlp-queue", 16, 1 << 24, why, whylen, &err);
			break;
		case O_LOGRATE:
			if (gw_log_parse_rate(optarg, &c->log_burst, &c->log_interval_ms) != 0) {
				snprintf(why, whylen,
				         "--log-rate: '%s' is not LINES/SECONDS (or 0)", optarg);
				return GW_ECONFIG;
			}
			break;
		case 'h':
			gw_config_usage(argv[0]);
			return GW_ENOTFOUND;
		case O_HASH_TOKEN:
			c->hash_token = true;
			break;
		case O_CLUSTER_TEST_VIEW:
			c->cluster_test_view = optarg;
			break;
		case O_DESCRIPTORS:
			c->descriptors = optarg;
			break;
		case O_MAX_CONTRACT:
			c->max_contract_bytes = (size_t)num(optarg, "--max-contract-bytes", 1024,
			                                    1 << 30, why, whylen, &err);
			break;
		case O_PEER_LISTEN:
			if (!peer_listen_flag) {
				c->n_peer_listen = 0; /* flags replace the environment's list */
				peer_listen_flag = true;
			}
			if (c->n_peer_listen == GW_MAX_LISTEN) {
				snprintf(why, whylen, "at most %d --peer-listen addresses",
				         GW_MAX_LISTEN);
				return GW_ECONFIG;
			}
			c->peer_listen[c->n_peer_listen++] = optarg;
			break;
		case O_PEER_TOKEN_FILE:
			c->peer_token_file = optarg;
			break;
		case O_PEER_TLS_NAME:
			c->peer_tls_server_name = optarg;
			break;
		case O_HTTP:
			c->http = optarg;
			break;
		case O_SPAWN_HOST_URL:
			c->spawn_host_url = optarg;
			break;
		case O_HTTP_MAX_BODY:
			c->http_max_body =
			    num(optarg, "--http-max-body", 1024, 1 << 30, why, whylen, &err);
			break;
		case O_HTTP_MAX_CONNS:
			c->http_max_conns = (uint32_t)num(optarg, "--http-max-conns", 1, 1000000,
			                                  why, whylen, &err);
			break;
		case O_HTTP_MAX_PENDING:
			c->http_max_pending = (uint32_t)num(optarg, "--http-max-pending", 1,
			                                    10000000, why, whylen, &err);
			break;
		case O_METRICS:
			if (!onoff(optarg, &c->metrics)) {
				snprintf(why, whylen, "--metrics: '%s' is neither on nor off",
				         optarg);
				return GW_ECONFIG;
			}
			break;
		case O_SPAWN_HOST_TASKS:
			c->spawn_host_tasks = (uint32_t)num(optarg, "--spawn-host-tasks", 1,
			                                    10000000, why, whylen, &err);
			break;
		case O_VERSION:
			printf("spawn-gateway 0.1.0\n");
			return GW_ENOTFOUND;
		default:
			snprintf(why, whylen, "unknown option (see --help)");
			return GW_ECONFIG;
		}
	}
	if (err)
		return err;
	if (optind < argc) {
		snprintf(why, whylen, "unexpected argument '%s' (see --help)", argv[optind]);
		return GW_ECONFIG;
	}
	if (c->n_listen == 0)
		c->listen[c->n_listen++] = "127.0.0.1:8090";
	gw_wc_limits_resolve(&c->limits);
	if (c->max_state_bytes && c->max_state_bytes + 4096 > (size_t)c->max_message_bytes) {
		snprintf(why, whylen,
		         "--max-state-bytes %zu leaves less than 4096 bytes of a task of "
		         "--max-message-bytes %d for its payload and metadata",
		         c->max_state_bytes, c->max_message_bytes);
		return GW_ECONFIG;
	}
	if ((c->tls_key || c->tls_client_ca) && !c->tls_cert) {
		snprintf(why, whylen, "%s needs --tls-cert (and --tls-key)",
		         c->tls_key ? "--tls-key" : "--tls-client-ca");
		return GW_ECONFIG;
	}
	if (c->tls_cert && !c->tls_key) {
		snprintf(why, whylen, "--tls-cert needs --tls-key");
		return GW_ECONFIG;
	}
	if ((err = check_cluster(c, why, whylen)) != GW_OK)
		return err;
	if (c->peer_tls_server_name && !c->tls_cert) {
		snprintf(why, whylen,
		         "--peer-tls-server-name names the peers' TLS certificates: it needs "
		         "--tls-cert");
		return GW_ECONFIG;
	}
	if (c->peer_tls_server_name &&
	    (!*c->peer_tls_server_name || strlen(c->peer_tls_server_name) > 253 ||
	     strspn(c->peer_tls_server_name,
	            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") !=
	         strlen(c->peer_tls_server_name))) {
		snprintf(why, whylen, "--peer-tls-server-name '%s' is not a host name",
		         c->peer_tls_server_name);
		return GW_ECONFIG;
	}
	if ((err = check_http(c, why, whylen)) != GW_OK)
		return err;
	return check_exposure(c, why, whylen);
}
