/* incrementor-client - invokes the Incrementor actor through a gateway.
 *
 *   incrementor-client [--gateway TARGET] [--system NAME] [--actor NAME]
 *                      [--parent TEMPLATE] [--timeout MS] add N
 *
 * Calls action "Add" of actor NAME ("incrementor" by default) in system
 * NAME ("spawn-system") with examples.incrementor.Add{value = N} and prints
 * the total it replies on stdout. --parent names the UNNAMED template to
 * instantiate NAME from (see incrementor-host --unnamed). On failure it
 * prints "incrementor-client: STATUS: message" on stderr and exits 1.
 * TARGET defaults to the SPAWN_GATEWAY environment variable, then to
 * 127.0.0.1:8090 (the gateway's default listen address); either may name
 * several members, "A:P,B:P" or "dns:///NAME:PORT" (docs/sdk/c.md,
 * "Several gateways").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spawn/spawn.h>

#include "incrementor/incrementor.pb-c.h"

static const char *default_gateway(void)
{
	const char *env = getenv("SPAWN_GATEWAY");
	return env && *env ? env : "127.0.0.1:8090";
}

static void usage(void)
{
	fprintf(stderr, "usage: incrementor-client [--gateway TARGET] [--system NAME] "
	                "[--actor NAME] [--parent TEMPLATE] [--timeout MS] add N\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *gateway = default_gateway();
	const char *system = "spawn-system";
	const char *actor = "incrementor";
	const char *parent = NULL;
	int64_t timeout_ms = 10000;
	const char *cmd = NULL, *arg = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--gateway") == 0 && i + 1 < argc)
			gateway = argv[++i];
		else if (strcmp(argv[i], "--system") == 0 && i + 1 < argc)
			system = argv[++i];
		else if (strcmp(argv[i], "--actor") == 0 && i + 1 < argc)
			actor = argv[++i];
		else if (strcmp(argv[i], "--parent") == 0 && i + 1 < argc)
			parent = argv[++i];
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout_ms = strtoll(argv[++i], NULL, 10);
		else if (!cmd)
			cmd = argv[i];
		else if (!arg)
			arg = argv[i];
		else
			usage();
	}
	if (!*gateway || !cmd || !arg || strcmp(cmd, "add") != 0)
		usage();
	char *end;
	errno = 0;
	long long n = strtoll(arg, &end, 10);
	if (errno || *end || end == arg) {
		fprintf(stderr, "incrementor-client: not an integer: %s\n", arg);
		return 2;
	}

	Examples__Incrementor__Add add = EXAMPLES__INCREMENTOR__ADD__INIT;
	add.value = n;
	spawn_payload payload;
	if (spawn_payload_pack(&payload, &add.base) != SPAWN_OK) {
		fprintf(stderr, "incrementor-client: out of memory\n");
		return 1;
	}

	spawn_client *client;
	int rc = spawn_client_create(&client, gateway);
	if (rc != SPAWN_OK) {
		fprintf(stderr, "incrementor-client: %s\n", spawn_strerror(rc));
		spawn_payload_fini(&payload);
		return 1;
	}
	spawn_request req = {
	    .system = system,
	    .actor = actor,
	    .action = "Add",
	    .payload = payload,
	    .parent = parent,
	};
	spawn_reply reply;
	rc = spawn_client_invoke(client, &req, &reply, timeout_ms);
	int exit_code = 0;
	if (rc != SPAWN_OK) {
		fprintf(stderr, "incrementor-client: %s: %s\n", spawn_status_name(rc),
		        reply.message ? reply.message : spawn_strerror(rc));
		exit_code = 1;
	} else {
		Examples__Incrementor__Total *total;
		rc = spawn_payload_unpack(&reply.payload, &examples__incrementor__total__descriptor,
		                          (ProtobufCMessage **)&total);
		if (rc != SPAWN_OK) {
			fprintf(stderr, "incrementor-client: unexpected reply %s: %s\n",
			        reply.payload.type_url ? reply.payload.type_url : "(none)",
			        spawn_strerror(rc));
			exit_code = 1;
		} else {
			printf("%" PRId64 "\n", total->total);
			protobuf_c_message_free_unpacked(&total->base, NULL);
		}
	}
	spawn_reply_fini(&reply);
	spawn_client_destroy(client);
	spawn_payload_fini(&payload);
	return exit_code;
}
