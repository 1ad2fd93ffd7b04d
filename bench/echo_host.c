/* echo_host.c - bench-echo-host: the actor host of the `gateway` and
 * `actors` benchmark scenarios, on libspawn.
 *
 * Registers system S with one UNNAMED actor template "echo-actor" (stateful,
 * snapshot mode) whose action A answers with the request's payload and
 * counts the calls in its state (an 8-byte counter), so every call changes
 * the state and the gateway's snapshot path is exercised. Benchmarks invoke
 * instances bench-0..bench-N with register_ref "echo-actor".
 * --checkpoint: every reply also asks for a checkpoint, so the gateway
 * answers only once the new state is durable in its statestore (the
 * `checkpoint` mode of bench/stores.sh); without it the state is saved by
 * the gateway's snapshots (the `snapshot` mode).
 * TLS, mTLS and a bearer token come from the C SDK's environment fallbacks
 * (SPAWN_TLS_CA, SPAWN_TLS_CERT, SPAWN_TLS_KEY, SPAWN_TLS_SERVER_NAME,
 * SPAWN_TOKEN): the `security` scenario of bench/run.sh sets them.
 * Its handler never blocks, so by default it runs on the stream's own
 * thread (spawn_host_opts.run_inline, docs/sdk/c.md "Inline handlers");
 * --workers N runs it on N worker threads instead (the SDK's default mode).
 * Prints "ready" once registered. SIGTERM/SIGINT stop it. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spawn/spawn.h>

#define STATE_URL "type.googleapis.com/bench.Counter"

static spawn_host *host;
static bool checkpoint;

static void echo(spawn_ctx *ctx, void *user)
{
	(void)user;
	const spawn_payload *in = spawn_ctx_payload(ctx);
	const spawn_payload *st = spawn_ctx_state(ctx);
	uint64_t n = 0;
	if (st->type_url && st->len == sizeof n)
		memcpy(&n, st->data, sizeof n);
	n++;
	spawn_ctx_set_state(ctx, STATE_URL, &n, sizeof n);
	if (checkpoint)
		spawn_ctx_checkpoint(ctx, true);
	spawn_ctx_reply(ctx, in->type_url, in->data, in->len);
}

static void on_signal(int sig)
{
	(void)sig;
	spawn_host_signal_stop(host);
}

static void on_event(void *user, spawn_host_event ev, int status, const char *message)
{
	(void)user;
	if (ev == SPAWN_HOST_REGISTERED) {
		printf("ready\n");
		fflush(stdout);
	} else {
		fprintf(stderr, "bench-echo-host: event %d: %s %s\n", ev, spawn_status_name(status),
		        message ? message : "");
	}
}

int main(int argc, char **argv)
{
	const char *gateway = "127.0.0.1:8090", *system = "bench", *action = "echo";
	const char *actor = "echo-actor";
	int workers = 0; /* 0: inline */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--gateway") && i + 1 < argc)
			gateway = argv[++i];
		else if (!strcmp(argv[i], "--system") && i + 1 < argc)
			system = argv[++i];
		else if (!strcmp(argv[i], "--action") && i + 1 < argc)
			action = argv[++i];
		else if (!strcmp(argv[i], "--actor") && i + 1 < argc)
			actor = argv[++i];
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc && atoi(argv[i + 1]) > 0)
			workers = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--checkpoint"))
			checkpoint = true;
		else {
			fprintf(stderr,
			        "usage: %s [--gateway T] [--system S] [--action A] [--actor NAME] "
			        "[--workers N] [--checkpoint]\n",
			        argv[0]);
			return 2;
		}
	}
	spawn_host_opts o = {.target = gateway,
	                     .system = system,
	                     .service_name = "bench-echo-host",
	                     .workers = workers,
	                     .run_inline = workers == 0,
	                     .on_event = on_event};
	int rc = spawn_host_create(&host, &o);
	if (rc) {
		fprintf(stderr, "bench-echo-host: %s\n", spawn_strerror(rc));
		return 1;
	}
	spawn_action_def act = {.name = action, .handler = echo};
	spawn_actor_def def = {.name = actor,
	                       .kind = SPAWN_KIND_UNNAMED,
	                       .stateful = true,
	                       .state_type = STATE_URL,
	                       .actions = &act,
	                       .n_actions = 1};
	if ((rc = spawn_host_add_actor(host, &def))) {
		fprintf(stderr, "bench-echo-host: %s\n", spawn_strerror(rc));
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	rc = spawn_host_run(host);
	spawn_host_destroy(host);
	return rc ? 1 : 0;
}
