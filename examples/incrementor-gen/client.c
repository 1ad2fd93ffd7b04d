/* incrementor-gen-client - invokes the Incrementor through the typed stubs
 * protoc-gen-spawn generated from incrementor.proto.
 *
 *   incrementor-gen-client [--gateway TARGET] [--system NAME] [--actor NAME]
 *                          [--async] [--timeout MS] add N
 *
 * Prints the total the actor replies. --async uses incrementor_add_async
 * and waits for its callback. On failure prints
 * "incrementor-gen-client: STATUS: message" on stderr and exits 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incrementor.spawn.h"

/* The outcome of an async call, handed from the client's thread. */
typedef struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int status;
	char *message;
	int64_t total;
} waiter;

static void on_total(void *user, int status, const char *message,
                     Examples__Incrementor__Total *reply)
{
	waiter *w = user;
	pthread_mutex_lock(&w->mu);
	w->status = status;
	w->message = message ? strdup(message) : NULL;
	if (reply) {
		w->total = reply->total;
		protobuf_c_message_free_unpacked((ProtobufCMessage *)reply, NULL);
	}
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void usage(void)
{
	fprintf(stderr, "usage: incrementor-gen-client [--gateway TARGET] [--system NAME] "
	                "[--actor NAME] [--async] [--timeout MS] add N\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *gateway = getenv("SPAWN_GATEWAY");
	const char *system = "spawn-system", *actor = NULL, *cmd = NULL, *arg = NULL;
	bool async = false;
	int64_t timeout_ms = 10000;
	if (!gateway || !*gateway)
		gateway = "127.0.0.1:8090";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--gateway") == 0 && i + 1 < argc)
			gateway = argv[++i];
		else if (strcmp(argv[i], "--system") == 0 && i + 1 < argc)
			system = argv[++i];
		else if (strcmp(argv[i], "--actor") == 0 && i + 1 < argc)
			actor = argv[++i];
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout_ms = strtoll(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--async") == 0)
			async = true;
		else if (!cmd)
			cmd = argv[i];
		else if (!arg)
			arg = argv[i];
		else
			usage();
	}
	if (!cmd || !arg || strcmp(cmd, "add") != 0)
		usage();
	char *end;
	errno = 0;
	long long n = strtoll(arg, &end, 10);
	if (errno || *end || end == arg)
		usage();

	spawn_client *c;
	int rc = spawn_client_create(&c, gateway);
	if (rc != SPAWN_OK) {
		fprintf(stderr, "incrementor-gen-client: %s\n", spawn_strerror(rc));
		return 1;
	}
	Examples__Incrementor__Add add = EXAMPLES__INCREMENTOR__ADD__INIT;
	add.value = n;
	char *message = NULL;
	int64_t total = 0;
	if (async) {
		waiter w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
		rc = incrementor_add_async(c, system, actor, &add, timeout_ms, on_total, &w);
		if (rc == SPAWN_OK) {
			pthread_mutex_lock(&w.mu);
			while (!w.done)
				pthread_cond_wait(&w.cv, &w.mu);
			pthread_mutex_unlock(&w.mu);
			rc = w.status;
			message = w.message;
			total = w.total;
		}
	} else {
		Examples__Incrementor__Total *reply;
		rc = incrementor_add(c, system, actor, &add, &reply, &message, timeout_ms);
		if (rc == SPAWN_OK) {
			total = reply->total;
			protobuf_c_message_free_unpacked((ProtobufCMessage *)reply, NULL);
		}
	}
	spawn_client_destroy(c);
	if (rc != SPAWN_OK) {
		fprintf(stderr, "incrementor-gen-client: %s: %s\n", spawn_status_name(rc),
		        message ? message : spawn_strerror(rc));
		free(message);
		return 1;
	}
	printf("%" PRId64 "\n", total);
	return 0;
}
