/* incrementor-host - serves the Incrementor actor through a Spawn gateway.
 *
 *   incrementor-host [--gateway TARGET] [--system NAME] [--checkpoint]
 *                    [--unnamed] [--workers N]
 *
 * Actor "incrementor" in system "spawn-system" (by default): stateful,
 * state examples.incrementor.State; action "Add" takes an
 * examples.incrementor.Add, adds its value to the total and replies with
 * an examples.incrementor.Total. --checkpoint asks the gateway to save the
 * state before answering each Add. --unnamed registers the actor as an
 * UNNAMED template, so clients can address any instance name with
 * `incrementor-client --parent incrementor --actor NAME`.
 *
 * Prints "registered" on stdout (flushed) each time the gateway accepts
 * the registration; runs until SIGINT or SIGTERM (exit 0). TARGET defaults
 * to the SPAWN_GATEWAY environment variable, then to 127.0.0.1:8090 (the
 * gateway's default listen address); either may name several members,
 * "A:P,B:P" or "dns:///NAME:PORT": the host registers with one of them
 * (docs/sdk/c.md, "Several gateways").
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spawn/spawn.h>

#include "incrementor/incrementor.pb-c.h"

typedef struct config {
	const char *gateway;
	const char *system;
	bool checkpoint;
	bool unnamed;
	int workers;
} config;

/* The signal handler needs to reach the host; this is the only global and
 * it is written once before the handlers are installed. */
static spawn_host *g_host;

static void on_signal(int sig)
{
	(void)sig;
	spawn_host_signal_stop(g_host);
}

/* Add: total += value; reply the new total. */
static void on_add(spawn_ctx *ctx, void *user)
{
	const config *cfg = user;
	Examples__Incrementor__State *state;
	Examples__Incrementor__Add *add;
	if (spawn_ctx_state_msg(ctx, &examples__incrementor__state__descriptor,
	                        (ProtobufCMessage **)&state) != SPAWN_OK) {
		spawn_ctx_fail(ctx, SPAWN_FAILED_PRECONDITION,
		               "state is not an examples.incrementor.State");
		return;
	}
	if (spawn_ctx_payload_msg(ctx, &examples__incrementor__add__descriptor,
	                          (ProtobufCMessage **)&add) != SPAWN_OK) {
		spawn_ctx_fail(ctx, SPAWN_INVALID_ARGUMENT,
		               "Add takes an examples.incrementor.Add");
		return;
	}
	int64_t total;
	if (__builtin_add_overflow(state->total, add->value, &total)) {
		spawn_ctx_fail(ctx, SPAWN_OUT_OF_RANGE, "total would overflow int64");
		return;
	}
	state->total = total;
	Examples__Incrementor__Total reply = EXAMPLES__INCREMENTOR__TOTAL__INIT;
	reply.total = total;
	if (spawn_ctx_set_state_msg(ctx, &state->base) != SPAWN_OK ||
	    spawn_ctx_reply_msg(ctx, &reply.base) != SPAWN_OK) {
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	spawn_ctx_checkpoint(ctx, cfg->checkpoint);
}

static void on_event(void *user, spawn_host_event ev, int status, const char *message)
{
	(void)user;
	switch (ev) {
	case SPAWN_HOST_REGISTERED:
		printf("registered\n");
		fflush(stdout);
		break;
	case SPAWN_HOST_DISCONNECTED:
		fprintf(stderr, "incrementor-host: disconnected (%s: %s); reconnecting\n",
		        spawn_status_name(status), message);
		break;
	case SPAWN_HOST_REJECTED:
		fprintf(stderr, "incrementor-host: registration rejected: %s\n", message);
		break;
	case SPAWN_HOST_PROTOCOL_ERROR:
		fprintf(stderr, "incrementor-host: protocol error: %s\n", message);
		break;
	}
}

static const char *default_gateway(void)
{
	const char *env = getenv("SPAWN_GATEWAY");
	return env && *env ? env : "127.0.0.1:8090";
}

static void usage(void)
{
	fprintf(stderr, "usage: incrementor-host [--gateway TARGET] [--system NAME] "
	                "[--checkpoint] [--unnamed] [--workers N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	config cfg = {.gateway = default_gateway(), .system = "spawn-system", .workers = 1};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--gateway") == 0 && i + 1 < argc)
			cfg.gateway = argv[++i];
		else if (strcmp(argv[i], "--system") == 0 && i + 1 < argc)
			cfg.system = argv[++i];
		else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
			cfg.workers = atoi(argv[++i]);
		else if (strcmp(argv[i], "--checkpoint") == 0)
			cfg.checkpoint = true;
		else if (strcmp(argv[i], "--unnamed") == 0)
			cfg.unnamed = true;
		else
			usage();
	}
	if (!*cfg.gateway || cfg.workers < 1)
		usage();

	spawn_host_opts opts = {
	    .target = cfg.gateway,
	    .system = cfg.system,
	    .service_name = "incrementor-host",
	    .service_version = SPAWN_VERSION_STRING,
	    .workers = cfg.workers,
	    .on_event = on_event,
	};
	int rc = spawn_host_create(&g_host, &opts);
	if (rc != SPAWN_OK) {
		fprintf(stderr, "incrementor-host: %s\n", spawn_strerror(rc));
		return 1;
	}

	char state_type[128];
	spawn_type_url(&examples__incrementor__state__descriptor, state_type, sizeof state_type);
	spawn_action_def actions[] = {{.name = "Add", .handler = on_add, .user = &cfg}};
	spawn_actor_def actor = {
	    .name = "incrementor",
	    .kind = cfg.unnamed ? SPAWN_KIND_UNNAMED : SPAWN_KIND_NAMED,
	    .stateful = true,
	    .state_type = state_type,
	    .actions = actions,
	    .n_actions = 1,
	};
	rc = spawn_host_add_actor(g_host, &actor);
	if (rc != SPAWN_OK) {
		fprintf(stderr, "incrementor-host: add actor: %s\n", spawn_strerror(rc));
		spawn_host_destroy(g_host);
		return 1;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	rc = spawn_host_run(g_host);
	if (rc != SPAWN_OK)
		fprintf(stderr, "incrementor-host: %s\n", spawn_strerror(rc));
	/* No handler may touch the host once it is freed. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	spawn_host_destroy(g_host);
	return rc == SPAWN_OK ? 0 : 1;
}
