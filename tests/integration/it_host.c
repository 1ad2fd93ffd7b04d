/* it-host - the actor host of the integration suites, built on libspawn.
 *
 *   it-host --gateway TARGET [--system NAME] [--workers N | --inline] [--checkpoint]
 *           [--actions Add,Get,Echo,Hang,Fail,Big,Sleep] [--trace]
 *           [--max-message-bytes N] [--timer MS]
 *
 * Registers, in system NAME ("it" by default), the NAMED actor "counter"
 * and the UNNAMED template "counters" (clients reach instances of it with
 * spawn_request.parent = "counters"), both stateful with state it.Counter
 * and the actions listed by --actions (all of them by default):
 *
 *   Add   it.Add{value, seq}: total += value, adds += 1, seq > 0 appended
 *         to seqs; replies it.Total with the new state. --checkpoint makes
 *         every Add checkpointed.
 *   Get   replies it.Total with the current state.
 *   Echo  replies the payload unchanged (any type).
 *   Hang  prints "hanging ACTOR" on stdout, then blocks until the process
 *         is told to stop (SIGTERM/SIGINT) or killed; answers UNAVAILABLE
 *         if it ever returns.
 *   Fail  fails with FAILED_PRECONDITION "nope".
 *   Big   it.Add{value = n}: replies an it.Blob of n bytes (state unchanged).
 *   Sleep it.Add{value = ms}: sleeps ms, then total += 1000 (a change a
 *         late answer must not make), prints "slept ACTOR" and replies
 *         it.Total. For deadline tests; not in the default set.
 *   Fan   it.Add{value = n}: a hostile fan-out: total += 1 and n side
 *         effects Fan(n) to new instances of "counters" (so every effect
 *         fans out again). For the bounds tests; not in the default set.
 *   Emit  it.Add{}: total += 1, checkpointed, with one side effect: Hang on
 *         the instance "emit-target" of "counters" (so the effect stays in
 *         the emitter's stored outbox while that Hang blocks). For the
 *         Forget test; not in the default set.
 *   Tick  with --timer MS only: a timer action the gateway runs every MS
 *         while the actor is active; it changes nothing (with --trace its
 *         line shows that the timer runs).
 *
 * stdout (each line flushed): "registered" per accepted registration,
 * "hanging ACTOR" from Hang, and with --trace "invoked ACTOR ACTION" per
 * invocation. SIGTERM/SIGINT: stop, exit 0 (so sanitizers see a clean
 * exit). Any failure to start exits 1; bad usage exits 2.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <spawn/spawn.h>

#include "it.pb-c.h"

typedef struct config {
	const char *gateway;
	const char *system;
	int workers;
	bool run_inline; /* --inline: handlers on the stream's thread */
	bool checkpoint;
	bool trace;
	const char *actions;
	int32_t max_message_bytes;
	int32_t timer_ms; /* > 0: the timer action Tick */
} config;

/* Written once before the signal handlers are installed: the handler needs
 * the host and the pipe that wakes Hang. */
static spawn_host *g_host;
static int g_stop_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno;
	char b = 1;
	/* Never read: once written, every Hang sees the pipe readable. */
	ssize_t n = write(g_stop_pipe[1], &b, 1);
	(void)n;
	errno = saved;
	spawn_host_signal_stop(g_host);
}

static void trace(const config *cfg, spawn_ctx *ctx)
{
	if (!cfg->trace)
		return;
	printf("invoked %s %s\n", spawn_ctx_actor(ctx), spawn_ctx_action(ctx));
	fflush(stdout);
}

static bool load_state(spawn_ctx *ctx, It__Counter **out)
{
	if (spawn_ctx_state_msg(ctx, &it__counter__descriptor, (ProtobufCMessage **)out) ==
	    SPAWN_OK)
		return true;
	spawn_ctx_fail(ctx, SPAWN_DATA_LOSS, "state is not an it.Counter");
	return false;
}

static void reply_total(spawn_ctx *ctx, const It__Counter *st)
{
	It__Total t = IT__TOTAL__INIT;
	t.total = st->total;
	t.adds = st->adds;
	t.n_seqs = st->n_seqs;
	t.seqs = st->seqs;
	if (spawn_ctx_reply_msg(ctx, &t.base) != SPAWN_OK)
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
}

static void on_add(spawn_ctx *ctx, void *user)
{
	const config *cfg = user;
	trace(cfg, ctx);
	It__Counter *st;
	It__Add *add;
	if (!load_state(ctx, &st))
		return;
	if (spawn_ctx_payload_msg(ctx, &it__add__descriptor, (ProtobufCMessage **)&add) !=
	    SPAWN_OK) {
		spawn_ctx_fail(ctx, SPAWN_INVALID_ARGUMENT, "Add takes an it.Add");
		return;
	}
	if (__builtin_add_overflow(st->total, add->value, &st->total)) {
		spawn_ctx_fail(ctx, SPAWN_OUT_OF_RANGE, "total would overflow");
		return;
	}
	st->adds++;
	/* The state message lives in ctx's memory; build the grown list on
	 * the heap and point the message at it only while packing. */
	int64_t *seqs = NULL, *orig = st->seqs;
	size_t n = st->n_seqs, orig_n = st->n_seqs;
	if (add->seq > 0) {
		seqs = malloc((n + 1) * sizeof *seqs);
		if (!seqs) {
			spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		if (n)
			memcpy(seqs, st->seqs, n * sizeof *seqs);
		seqs[n++] = add->seq;
		st->seqs = seqs;
		st->n_seqs = n;
	}
	if (spawn_ctx_set_state_msg(ctx, &st->base) != SPAWN_OK)
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
	else
		reply_total(ctx, st);
	st->seqs = orig;
	st->n_seqs = orig_n;
	free(seqs);
	spawn_ctx_checkpoint(ctx, cfg->checkpoint);
}

static void on_get(spawn_ctx *ctx, void *user)
{
	trace(user, ctx);
	It__Counter *st;
	if (load_state(ctx, &st))
		reply_total(ctx, st);
}

static void on_echo(spawn_ctx *ctx, void *user)
{
	trace(user, ctx);
	const spawn_payload *p = spawn_ctx_payload(ctx);
	if (p->type_url && spawn_ctx_reply(ctx, p->type_url, p->data, p->len) != SPAWN_OK)
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
}

static void on_hang(spawn_ctx *ctx, void *user)
{
	trace(user, ctx);
	printf("hanging %s\n", spawn_ctx_actor(ctx));
	fflush(stdout);
	struct pollfd pfd = {.fd = g_stop_pipe[0], .events = POLLIN};
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	spawn_ctx_fail(ctx, SPAWN_UNAVAILABLE, "it-host is stopping");
}

static void on_fail(spawn_ctx *ctx, void *user)
{
	trace(user, ctx);
	spawn_ctx_fail(ctx, SPAWN_FAILED_PRECONDITION, "nope");
}

static void on_big(spawn_ctx *ctx, void *user)
{
	trace(user, ctx);
	It__Add *add;
	if (spawn_ctx_payload_msg(ctx, &it__add__descriptor, (ProtobufCMessage **)&add) !=
	        SPAWN_OK ||
	    add->value < 0 || add->value > (64 << 20)) {
		spawn_ctx_fail(ctx, SPAWN_INVALID_ARGUMENT, "Big takes an it.Add with 0..64 MiB");
		return;
	}
	uint8_t *data = calloc(1, (size_t)add->value + 1);
	It__Blob blob = IT__BLOB__INIT;
	blob.data.data = data;
	blob.data.len = (size_t)add->value;
	if (!data || spawn_ctx_reply_msg(ctx, &blob.base) != SPAWN_OK)
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
	free(data);
}

static void on_sleep(spawn_ctx *ctx, void *user)
{
	trace(user, ctx);
	It__Counter *st;
	It__Add *add;
	if (!load_state(ctx, &st))
		return;
	if (spawn_ctx_payload_msg(ctx, &it__add__descriptor, (ProtobufCMessage **)&add) !=
	        SPAWN_OK ||
	    add->value < 0 || add->value > 60000) {
		spawn_ctx_fail(ctx, SPAWN_INVALID_ARGUMENT,
		               "Sleep takes an it.Add with 0..60000 ms");
		return;
	}
	struct timespec ts = {add->value / 1000, (add->value % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	st->total += 1000;
	if (spawn_ctx_set_state_msg(ctx, &st->base) != SPAWN_OK)
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
	else
		reply_total(ctx, st);
	printf("slept %s\n", spawn_ctx_actor(ctx));
	fflush(stdout);
}

static void on_fan(spawn_ctx *ctx, void *user)
{
	trace(user, ctx);
	It__Counter *st;
	It__Add *add;
	if (!load_state(ctx, &st))
		return;
	if (spawn_ctx_payload_msg(ctx, &it__add__descriptor, (ProtobufCMessage **)&add) !=
	        SPAWN_OK ||
	    add->value < 0 || add->value > 100000) {
		spawn_ctx_fail(ctx, SPAWN_INVALID_ARGUMENT, "Fan takes an it.Add with 0..100000");
		return;
	}
	static _Atomic unsigned long seq;
	uint8_t buf[32];
	size_t len = it__add__pack(add, buf);
	char type_url[128];
	spawn_type_url(&it__add__descriptor, type_url, sizeof type_url);
	for (int64_t i = 0; i < add->value; i++) {
		char name[96];
		snprintf(name, sizeof name, "fan-%d-%lu", (int)getpid(), ++seq);
		spawn_request rq = {.system = spawn_ctx_system(ctx),
		                    .actor = name,
		                    .action = "Fan",
		                    .payload = {.type_url = type_url, .data = buf, .len = len},
		                    .parent = "counters"};
		if (spawn_ctx_side_effect(ctx, &rq) != SPAWN_OK) {
			spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
	}
	st->total += 1;
	if (spawn_ctx_set_state_msg(ctx, &st->base) != SPAWN_OK)
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
	else
		reply_total(ctx, st);
}

static void on_emit(spawn_ctx *ctx, void *user)
{
	trace(user, ctx);
	It__Counter *st;
	if (!load_state(ctx, &st))
		return;
	It__Add add = IT__ADD__INIT;
	uint8_t buf[32];
	size_t len = it__add__pack(&add, buf);
	char type_url[128];
	spawn_type_url(&it__add__descriptor, type_url, sizeof type_url);
	spawn_request rq = {.system = spawn_ctx_system(ctx),
	                    .actor = "emit-target",
	                    .action = "Hang",
	                    .payload = {.type_url = type_url, .data = buf, .len = len},
	                    .parent = "counters"};
	st->total += 1;
	spawn_ctx_checkpoint(ctx, true);
	if (spawn_ctx_side_effect(ctx, &rq) != SPAWN_OK ||
	    spawn_ctx_set_state_msg(ctx, &st->base) != SPAWN_OK)
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
	else
		reply_total(ctx, st);
}

static void on_tick(spawn_ctx *ctx, void *user)
{
	trace(user, ctx); /* changes nothing: the trace line is the point */
	(void)ctx;
}

static void on_event(void *user, spawn_host_event ev, int status, const char *message)
{
	(void)user;
	if (ev == SPAWN_HOST_REGISTERED) {
		printf("registered\n");
		fflush(stdout);
		return;
	}
	fprintf(stderr, "it-host: event %d (%s): %s\n", (int)ev, spawn_status_name(status),
	        message ? message : "");
}

static void usage(void)
{
	fprintf(stderr, "usage: it-host --gateway TARGET [--system NAME] [--workers N | --inline] "
	                "[--checkpoint] [--actions Add,Get,Echo,Hang,Fail,Big,Sleep,Fan,Emit] "
	                "[--trace] [--max-message-bytes N] [--timer MS]\n");
	exit(2);
}

/* selected tells whether name is in the comma-separated list. */
static bool selected(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && !strncmp(p, name, n))
			return true;
		p += len + (end != NULL);
	}
	return false;
}

int main(int argc, char **argv)
{
	config cfg = {.system = "it", .workers = 4, .actions = "Add,Get,Echo,Hang,Fail,Big"};
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--gateway") && i + 1 < argc)
			cfg.gateway = argv[++i];
		else if (!strcmp(argv[i], "--system") && i + 1 < argc)
			cfg.system = argv[++i];
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			cfg.workers = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--actions") && i + 1 < argc)
			cfg.actions = argv[++i];
		else if (!strcmp(argv[i], "--max-message-bytes") && i + 1 < argc)
			cfg.max_message_bytes = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--checkpoint"))
			cfg.checkpoint = true;
		else if (!strcmp(argv[i], "--inline"))
			cfg.run_inline = true;
		else if (!strcmp(argv[i], "--trace"))
			cfg.trace = true;
		else if (!strcmp(argv[i], "--timer") && i + 1 < argc)
			cfg.timer_ms = atoi(argv[++i]);
		else
			usage();
	}
	if (!cfg.gateway || !*cfg.gateway || cfg.workers < 1 || cfg.max_message_bytes < 0)
		usage();

	static const struct {
		const char *name;
		spawn_handler fn;
	} all[] = {{"Add", on_add},     {"Get", on_get},   {"Echo", on_echo},
	           {"Hang", on_hang},   {"Fail", on_fail}, {"Big", on_big},
	           {"Sleep", on_sleep}, {"Fan", on_fan},   {"Emit", on_emit}};
	enum { N_ALL = sizeof all / sizeof all[0] };
	spawn_action_def actions[N_ALL + 1];
	size_t n_actions = 0;
	for (size_t i = 0; i < N_ALL; i++)
		if (selected(cfg.actions, all[i].name))
			actions[n_actions++] = (spawn_action_def){
			    .name = all[i].name, .handler = all[i].fn, .user = &cfg};
	if (!n_actions || cfg.timer_ms < 0)
		usage();
	if (cfg.timer_ms > 0)
		actions[n_actions++] = (spawn_action_def){
		    .name = "Tick", .handler = on_tick, .user = &cfg, .timer_ms = cfg.timer_ms};

	if (pipe(g_stop_pipe) != 0) {
		perror("it-host: pipe");
		return 1;
	}
	spawn_host_opts opts = {
	    .target = cfg.gateway,
	    .system = cfg.system,
	    .service_name = "it-host",
	    .workers = cfg.run_inline ? 0 : cfg.workers,
	    .run_inline = cfg.run_inline,
	    .backoff_min_ms = 50,
	    .backoff_max_ms = 500,
	    .max_message_bytes = cfg.max_message_bytes,
	    .on_event = on_event,
	};
	int rc = spawn_host_create(&g_host, &opts);
	if (rc != SPAWN_OK) {
		fprintf(stderr, "it-host: %s\n", spawn_strerror(rc));
		return 1;
	}
	char state_type[128];
	spawn_type_url(&it__counter__descriptor, state_type, sizeof state_type);
	spawn_actor_def named = {
	    .name = "counter",
	    .kind = SPAWN_KIND_NAMED,
	    .stateful = true,
	    .state_type = state_type,
	    .actions = actions,
	    .n_actions = n_actions,
	};
	spawn_actor_def tmpl = named;
	tmpl.name = "counters";
	tmpl.kind = SPAWN_KIND_UNNAMED;
	if ((rc = spawn_host_add_actor(g_host, &named)) != SPAWN_OK ||
	    (rc = spawn_host_add_actor(g_host, &tmpl)) != SPAWN_OK) {
		fprintf(stderr, "it-host: add actor: %s\n", spawn_strerror(rc));
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
		fprintf(stderr, "it-host: %s\n", spawn_strerror(rc));
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	spawn_host_destroy(g_host);
	close(g_stop_pipe[0]);
	close(g_stop_pipe[1]);
	return rc == SPAWN_OK ? 0 : 1;
}
