/* conformance-client-c - the C client driver of the conformance suite:
 * runs the calls run.py sends on stdin through the typed stubs
 * protoc-gen-spawn generated from conformance.proto, and writes their
 * outcomes on stdout. The line protocol is in README.md ("Client
 * drivers"); in short:
 *
 *   -> ready
 *   <- CALL N TIMEOUT_MS        then N lines: ACTOR INSTANCE ACTION INPUT
 *   -> N lines, in order:       OK REPLY | ERR CODE MESSAGE
 *   <- RECONNECT                -> OK (a new client: the gateway restarted)
 *   <- QUIT                     (exit 0)
 *
 * INSTANCE "-" means the contract's name (NULL); INPUT, REPLY and
 * MESSAGE are base64 ("-" when empty). One call goes through the
 * synchronous stub; N > 1 calls are started at once through the async
 * stubs and waited for together.
 *
 *   conformance-client-c --gateway TARGET [--system NAME]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.spawn.h"

/* ---- base64 ------------------------------------------------------------ */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* b64_encode returns the base64 of data (malloc'd; "-" when len is 0), or
 * NULL when memory ran out. */
static char *b64_encode(const uint8_t *data, size_t len)
{
	if (len == 0)
		return strdup("-");
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		*o++ = B64[v >> 18 & 63];
		*o++ = B64[v >> 12 & 63];
		*o++ = i + 1 < len ? B64[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? B64[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* b64_decode decodes s in place ("-" is empty) and sets *len.
 * Returns 0, or -1 on a character outside the alphabet. */
static int b64_decode(char *s, size_t *len)
{
	uint8_t *o = (uint8_t *)s;
	uint32_t v = 0;
	int bits = 0;
	if (strcmp(s, "-") == 0) {
		*len = 0;
		return 0;
	}
	for (const char *p = s; *p && *p != '='; p++) {
		const char *at = strchr(B64, *p);
		if (!at)
			return -1;
		v = v << 6 | (uint32_t)(at - B64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (uint8_t)(v >> bits);
		}
	}
	*len = (size_t)(o - (uint8_t *)s);
	return 0;
}

/* ---- one call ------------------------------------------------------------ */

/* A call's outcome: status, and the reply packed or the message. */
typedef struct slot {
	int status;
	uint8_t *reply; /* packed reply (status SPAWN_OK) */
	size_t reply_len;
	char *message; /* why (other statuses) */
	struct batch *batch;
} slot;

/* The calls of one CALL command started through the async stubs. */
typedef struct batch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t pending;
} batch;

/* slot_finish records a call's outcome; reply (owned) is freed. */
static void slot_finish(slot *s, int status, const char *message, ProtobufCMessage *reply)
{
	s->status = status;
	if (status == SPAWN_OK && reply) {
		s->reply_len = protobuf_c_message_get_packed_size(reply);
		s->reply = malloc(s->reply_len ? s->reply_len : 1);
		if (s->reply)
			protobuf_c_message_pack(reply, s->reply);
		else
			s->status = SPAWN_ENOMEM;
	} else if (status != SPAWN_OK) {
		s->message = strdup(message ? message : "");
	}
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
}

static void slot_done_async(slot *s, int status, const char *message, ProtobufCMessage *reply)
{
	slot_finish(s, status, message, reply);
	batch *b = s->batch;
	pthread_mutex_lock(&b->mu);
	if (--b->pending == 0)
		pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* What the driver knows of an action: its input type and how to start it
 * through the generated stubs, synchronously or not. */
typedef struct action {
	const char *actor, *action;
	const ProtobufCMessageDescriptor *input;
	void (*call)(spawn_client *c, const char *sys, const char *actor,
	             const ProtobufCMessage *in, int64_t timeout_ms, slot *s);
	int (*start)(spawn_client *c, const char *sys, const char *actor,
	             const ProtobufCMessage *in, int64_t timeout_ms, slot *s);
} action;

/* ACTION(stub, In, Out) adapts the typed stubs stub() and stub_async(). */
#define ACTION(stub, In, Out)                                                                      \
	static void stub##_call(spawn_client *c, const char *sys, const char *actor,               \
	                        const ProtobufCMessage *in, int64_t timeout_ms, slot *s)           \
	{                                                                                          \
		Out *out = NULL;                                                                   \
		char *why = NULL;                                                                  \
		int rc = stub(c, sys, actor, (const In *)in, &out, &why, timeout_ms);              \
		slot_finish(s, rc, why, (ProtobufCMessage *)out);                                  \
		free(why);                                                                         \
	}                                                                                          \
	static void stub##_done(void *user, int status, const char *message, Out *reply)           \
	{                                                                                          \
		slot_done_async(user, status, message, (ProtobufCMessage *)reply);                 \
	}                                                                                          \
	static int stub##_start(spawn_client *c, const char *sys, const char *actor,               \
	                        const ProtobufCMessage *in, int64_t timeout_ms, slot *s)           \
	{                                                                                          \
		return stub##_async(c, sys, actor, (const In *)in, timeout_ms, stub##_done, s);    \
	}

ACTION(keeper_set, Conformance__V1__Profile, Conformance__V1__Profile)
ACTION(keeper_merge, Conformance__V1__Profile, Conformance__V1__Profile)
ACTION(keeper_get, Conformance__V1__GetRequest, Conformance__V1__Profile)
ACTION(keeper_fail, Conformance__V1__FailRequest, Conformance__V1__Profile)
ACTION(keeper_echo, Conformance__V1__Blob, Conformance__V1__Blob)
ACTION(keeper_increment, Conformance__V1__IncrementRequest, Conformance__V1__Profile)
ACTION(echoer_echo, Conformance__V1__Blob, Conformance__V1__Blob)
ACTION(echoer_fail, Conformance__V1__FailRequest, Conformance__V1__Blob)
ACTION(tally_add, Conformance__V1__IncrementRequest, Conformance__V1__Count)
ACTION(tally_get, Conformance__V1__GetRequest, Conformance__V1__Count)

#define ENTRY(actor, act, stub, in)                                                                \
	{                                                                                          \
		actor, act, &in##__descriptor, stub##_call, stub##_start                           \
	}
static const action ACTIONS[] = {
    ENTRY("Keeper", "Set", keeper_set, conformance__v1__profile),
    ENTRY("Keeper", "Merge", keeper_merge, conformance__v1__profile),
    ENTRY("Keeper", "Get", keeper_get, conformance__v1__get_request),
    ENTRY("Keeper", "Fail", keeper_fail, conformance__v1__fail_request),
    ENTRY("Keeper", "Echo", keeper_echo, conformance__v1__blob),
    ENTRY("Keeper", "Increment", keeper_increment, conformance__v1__increment_request),
    ENTRY("Echoer", "Echo", echoer_echo, conformance__v1__blob),
    ENTRY("Echoer", "Fail", echoer_fail, conformance__v1__fail_request),
    ENTRY("Tally", "Add", tally_add, conformance__v1__increment_request),
    ENTRY("Tally", "Get", tally_get, conformance__v1__get_request),
};

static const action *find_action(const char *actor, const char *name)
{
	for (size_t i = 0; i < sizeof ACTIONS / sizeof ACTIONS[0]; i++)
		if (strcmp(ACTIONS[i].actor, actor) == 0 && strcmp(ACTIONS[i].action, name) == 0)
			return &ACTIONS[i];
	return NULL;
}

/* ---- the command loop ---------------------------------------------------- */

/* One parsed call line. */
typedef struct call_line {
	const action *act;
	char *instance; /* NULL: the contract's name */
	ProtobufCMessage *in;
} call_line;

static int fatal(const char *what)
{
	fprintf(stderr, "conformance-client-c: %s\n", what);
	return 1;
}

/* parse_call reads "ACTOR INSTANCE ACTION INPUT" (line is modified). */
static int parse_call(char *line, call_line *cl)
{
	char *save = NULL;
	char *actor = strtok_r(line, " \n", &save);
	char *inst = strtok_r(NULL, " \n", &save);
	char *name = strtok_r(NULL, " \n", &save);
	char *input = strtok_r(NULL, " \n", &save);
	size_t len;
	if (!actor || !inst || !name || !input || b64_decode(input, &len) != 0)
		return -1;
	cl->act = find_action(actor, name);
	if (!cl->act)
		return -1;
	cl->instance = strcmp(inst, "-") == 0 ? NULL : strdup(inst);
	cl->in = protobuf_c_message_unpack(cl->act->input, NULL, len, (const uint8_t *)input);
	return cl->in ? 0 : -1;
}

static void print_slot(const slot *s)
{
	char *b64;
	if (s->status == SPAWN_OK) {
		b64 = b64_encode(s->reply, s->reply_len);
		printf("OK %s\n", b64 ? b64 : "-");
	} else {
		const char *m = s->message ? s->message : "";
		b64 = b64_encode((const uint8_t *)m, strlen(m));
		printf("ERR %d %s\n", s->status, b64 ? b64 : "-");
	}
	free(b64);
}

/* run_calls runs n parsed calls and prints their outcomes. */
static void run_calls(spawn_client *c, const char *sys, call_line *cls, size_t n,
                      int64_t timeout_ms)
{
	slot *slots = calloc(n, sizeof *slots);
	batch b = {.pending = 0};
	if (!slots)
		abort(); /* a test driver: out of memory ends it */
	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.cv, NULL);
	if (n == 1) {
		cls[0].act->call(c, sys, cls[0].instance, cls[0].in, timeout_ms, &slots[0]);
	} else {
		pthread_mutex_lock(&b.mu);
		for (size_t i = 0; i < n; i++) {
			slots[i].batch = &b;
			int rc = cls[i].act->start(c, sys, cls[i].instance, cls[i].in, timeout_ms,
			                           &slots[i]);
			if (rc == SPAWN_OK) {
				b.pending++;
			} else {
				slots[i].status = rc;
				slots[i].message = strdup("the async stub refused the call");
			}
		}
		while (b.pending > 0)
			pthread_cond_wait(&b.cv, &b.mu);
		pthread_mutex_unlock(&b.mu);
	}
	for (size_t i = 0; i < n; i++) {
		print_slot(&slots[i]);
		free(slots[i].reply);
		free(slots[i].message);
	}
	fflush(stdout);
	pthread_cond_destroy(&b.cv);
	pthread_mutex_destroy(&b.mu);
	free(slots);
}

int main(int argc, char **argv)
{
	const char *gateway = NULL, *sys = "conformance";
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--gateway") == 0)
			gateway = argv[i + 1];
		else if (strcmp(argv[i], "--system") == 0)
			sys = argv[i + 1];
	}
	if (!gateway) {
		fprintf(stderr, "usage: conformance-client-c --gateway TARGET [--system NAME]\n");
		return 2;
	}
	spawn_client *c = NULL;
	if (spawn_client_create(&c, gateway) != SPAWN_OK)
		return fatal("cannot create the client");
	printf("ready\n");
	fflush(stdout);

	char *line = NULL;
	size_t cap = 0;
	int rc = 0;
	while (getline(&line, &cap, stdin) > 0) {
		unsigned long n;
		long long timeout_ms;
		if (strcmp(line, "QUIT\n") == 0)
			break;
		if (strcmp(line, "RECONNECT\n") == 0) {
			spawn_client_destroy(c);
			c = NULL;
			if (spawn_client_create(&c, gateway) != SPAWN_OK) {
				rc = fatal("cannot create the client");
				break;
			}
			printf("OK\n");
			fflush(stdout);
			continue;
		}
		if (sscanf(line, "CALL %lu %lld", &n, &timeout_ms) != 2 || n == 0) {
			rc = fatal("bad command");
			break;
		}
		call_line *cls = calloc(n, sizeof *cls);
		size_t got = 0;
		if (!cls)
			abort();
		for (; got < n && getline(&line, &cap, stdin) > 0; got++)
			if (parse_call(line, &cls[got]) != 0)
				break;
		if (got == n)
			run_calls(c, sys, cls, n, timeout_ms);
		for (size_t i = 0; i < n; i++) {
			free(cls[i].instance);
			if (cls[i].in)
				protobuf_c_message_free_unpacked(cls[i].in, NULL);
		}
		free(cls);
		if (got != n) {
			rc = fatal("bad call line");
			break;
		}
	}
	free(line);
	spawn_client_destroy(c);
	return rc;
}
