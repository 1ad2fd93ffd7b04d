/* incrementor-gen-host - serves the Incrementor actor with the code
 * protoc-gen-spawn generated from incrementor.proto.
 *
 *   incrementor-gen-host [--gateway TARGET] [--system NAME] [--checkpoint]
 *
 * Actor "Incrementor" (INCREMENTOR_ACTOR_NAME: the service's name) in
 * system NAME ("spawn-system"): Add adds its value to the total and
 * replies the new total. Prints "registered" (flushed) each time the
 * gateway accepts the registration; runs until SIGINT or SIGTERM (exit 0).
 * TARGET defaults to $SPAWN_GATEWAY, then 127.0.0.1:8090.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incrementor.spawn.h"

static spawn_host *g_host; /* for the signal handler only */

static void on_signal(int sig)
{
	(void)sig;
	spawn_host_signal_stop(g_host);
}

/* Add: the state and the input arrive typed; the outcome goes back typed. */
static void on_add(spawn_ctx *ctx, const Examples__Incrementor__State *state,
                   const Examples__Incrementor__Add *in, void *user)
{
	const bool *checkpoint = user;
	Examples__Incrementor__State next = *state;
	if (__builtin_add_overflow(state->total, in->value, &next.total)) {
		spawn_ctx_fail(ctx, SPAWN_OUT_OF_RANGE, "total would overflow int64");
		return;
	}
	Examples__Incrementor__Total reply = EXAMPLES__INCREMENTOR__TOTAL__INIT;
	reply.total = next.total;
	if (incrementor_set_state(ctx, &next) == SPAWN_OK &&
	    incrementor_add_reply(ctx, &reply) == SPAWN_OK)
		spawn_ctx_checkpoint(ctx, *checkpoint);
}

static void on_event(void *user, spawn_host_event ev, int status, const char *message)
{
	(void)user;
	if (ev == SPAWN_HOST_REGISTERED) {
		printf("registered\n");
		fflush(stdout);
	} else {
		fprintf(stderr, "incrementor-gen-host: %s (%s): %s\n",
		        ev == SPAWN_HOST_DISCONNECTED ? "disconnected" : "refused",
		        spawn_status_name(status), message ? message : "");
	}
}

int main(int argc, char **argv)
{
	const char *gateway = getenv("SPAWN_GATEWAY");
	const char *system = "spawn-system";
	bool checkpoint = false;
	if (!gateway || !*gateway)
		gateway = "127.0.0.1:8090";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--gateway") == 0 && i + 1 < argc) {
			gateway = argv[++i];
		} else if (strcmp(argv[i], "--system") == 0 && i + 1 < argc) {
			system = argv[++i];
		} else if (strcmp(argv[i], "--checkpoint") == 0) {
			checkpoint = true;
		} else {
			fprintf(stderr, "usage: incrementor-gen-host [--gateway TARGET] "
			                "[--system NAME] [--checkpoint]\n");
			return 2;
		}
	}

	spawn_host_opts opts = {
	    .target = gateway,
	    .system = system,
	    .service_name = "incrementor-gen-host",
	    .on_event = on_event,
	};
	int rc = spawn_host_create(&g_host, &opts);
	if (rc != SPAWN_OK) {
		fprintf(stderr, "incrementor-gen-host: %s\n", spawn_strerror(rc));
		return 1;
	}
	/* Retained until spawn_host_destroy, hence static. */
	static incrementor_handlers handlers = {.add = on_add};
	handlers.user = &checkpoint;
	rc = incrementor_register(g_host, &handlers);
	if (rc != SPAWN_OK) {
		fprintf(stderr, "incrementor-gen-host: register: %s\n", spawn_strerror(rc));
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
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	spawn_host_destroy(g_host);
	if (rc != SPAWN_OK)
		fprintf(stderr, "incrementor-gen-host: %s\n", spawn_strerror(rc));
	return rc == SPAWN_OK ? 0 : 1;
}
