/* sem-host - the C actor host of the actor-semantics suites, on libspawn.
 *
 *   sem-host --gateway TARGET [--system NAME] [--workers N] [--tick-ms MS]
 *            [--pool N] [--actors a,sub1,...]
 *
 * --actors registers only the actors listed (all of them by default), so
 * hosts on different gateways can serve different actors of one system
 * (the cluster suites).
 * Registers in system NAME ("sem" by default) these actors, each answering
 * the actions below with sem.Msg in and out (state sem.State):
 *
 *   a, b, c     NAMED, stateful: every generic action
 *   sub1        like a, subscribed to channel "news" (action "receive")
 *   sub2        like a, subscribed to channel "news" with action "onNews"
 *   loner       like a, subscribed to nothing
 *   ticker      like a, plus the timer action Tick every --tick-ms (50)
 *   pool        POOLED, max_pool_size --pool (4): Gather, Stats
 *
 * Generic actions (SELF = the actor's name, CALLER = "SYSTEM/NAME" of the
 * calling actor or "-" for a client):
 *   Next     state n+1, last = text; replies text + ">SELF", caller, n.
 *            prints "next SELF TEXT caller=CALLER", plus " at=MS" (the
 *            host's Unix time in ms) when at_ms is set (a scheduled
 *            effect's due time, carried by Effect); with checkpoint set
 *            the turn is a checkpointed one
 *   receive, onNews  as Next; prints "got SELF ACTION TEXT caller=CALLER"
 *   Pipe     prints "pipe SELF"; replies the input with ">SELF" appended
 *            and to_actor = SELF (so a Pipe target that pipes again
 *            bounces back: a cycle); pipes to to_actor.to_action
 *   Forward  prints "forward SELF"; replies "ignored"; forwards its input
 *            to to_actor.to_action
 *   Effect   side effect to to_system (own when empty) / to_actor /
 *            to_action with Msg{text, checkpoint, at_ms} and metadata kv,
 *            scheduled for at_ms (Unix ms; 0 = at once); replies
 *            text + ">SELF!"
 *   (Pipe, Forward and Effect with checkpoint set also make the turn a
 *   checkpointed one that changes the state: n+1)
 *   Publish  broadcasts Msg{text} on channel; replies "published"
 *   Get      replies the state: n, text = last
 *   Tag      sets the tags kv (value "" removes); replies "tagged"
 *   GetTag   replies text = the tag named text ("-" when absent)
 *   Meta     replies text = the invocation's metadata "trace" ("-" when
 *            absent), caller
 *   Block    prints "blocked SELF TEXT caller=CALLER", waits for SIGUSR1
 *            (one signal releases one Block), prints "unblocked SELF TEXT",
 *            then as Next
 *   Tick     (ticker's timer) state n+1; prints "tick SELF N"
 * Pool actions:
 *   Gather   waits until --pool Gathers run at once (or one did before),
 *            at most 20 s (then DEADLINE_EXCEEDED); replies n = the most
 *            Gathers seen running at once
 *   Stats    replies n = the most Gathers seen running at once
 *
 * stdout: one line per event above plus "registered" per registration,
 * each flushed. SIGTERM/SIGINT: stop (a waiting Block fails), exit 0.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <spawn/spawn.h>

#include "sem.pb-c.h"

static spawn_host *g_host;
static int g_stop_pipe[2] = {-1, -1}; /* readable once stopping */
static int g_gate_pipe[2] = {-1, -1}; /* one byte per SIGUSR1 */
static pthread_mutex_t g_out_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_stop(int sig)
{
	(void)sig;
	int saved = errno;
	char b = 1;
	ssize_t n = write(g_stop_pipe[1], &b, 1);
	(void)n;
	errno = saved;
	spawn_host_signal_stop(g_host);
}

static void on_gate(int sig)
{
	(void)sig;
	int saved = errno;
	char b = 1;
	ssize_t n = write(g_gate_pipe[1], &b, 1);
	(void)n;
	errno = saved;
}

/* say prints one line on stdout and flushes it (the tests read lines). */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&g_out_mu);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&g_out_mu);
	va_end(ap);
}

static const char *caller_of(spawn_ctx *ctx, char *buf, size_t n)
{
	const char *a = spawn_ctx_caller_actor(ctx), *s = spawn_ctx_caller_system(ctx);
	if (!a)
		return "-";
	snprintf(buf, n, "%s/%s", s ? s : "?", a);
	return buf;
}

static bool input(spawn_ctx *ctx, Sem__Msg **m)
{
	if (spawn_ctx_payload_msg(ctx, &sem__msg__descriptor, (ProtobufCMessage **)m) == SPAWN_OK)
		return true;
	spawn_ctx_fail(ctx, SPAWN_INVALID_ARGUMENT, "takes a sem.Msg");
	return false;
}

static bool state(spawn_ctx *ctx, Sem__State **s)
{
	if (spawn_ctx_state_msg(ctx, &sem__state__descriptor, (ProtobufCMessage **)s) == SPAWN_OK)
		return true;
	spawn_ctx_fail(ctx, SPAWN_DATA_LOSS, "state is not a sem.State");
	return false;
}

static void check(spawn_ctx *ctx, int rc, const char *what)
{
	if (rc != SPAWN_OK) {
		char msg[128];
		snprintf(msg, sizeof msg, "%s: %s", what, spawn_strerror(rc));
		spawn_ctx_fail(ctx, SPAWN_INTERNAL, msg);
	}
}

/* reply_text replies Msg{text, caller, n}. */
static void reply_text(spawn_ctx *ctx, const char *text, int64_t n)
{
	char cb[160];
	Sem__Msg r = SEM__MSG__INIT;
	r.text = (char *)text;
	const char *c = caller_of(ctx, cb, sizeof cb);
	r.caller = (char *)(strcmp(c, "-") ? c : "");
	r.n = n;
	check(ctx, spawn_ctx_reply_msg(ctx, &r.base), "reply");
}

/* wall_ms is the Unix time in ms (the clock scheduled effects are due by). */
static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* next_turn: state n+1, last = text; replies text + ">SELF". */
static void next_turn(spawn_ctx *ctx, const Sem__Msg *in)
{
	Sem__State *st;
	if (!state(ctx, &st))
		return;
	st->n++;
	char *orig = st->last;
	st->last = in->text;
	int rc = spawn_ctx_set_state_msg(ctx, &st->base);
	st->last = orig;
	check(ctx, rc, "state");
	if (in->checkpoint)
		spawn_ctx_checkpoint(ctx, true);
	char text[512];
	snprintf(text, sizeof text, "%s>%s", in->text, spawn_ctx_actor(ctx));
	reply_text(ctx, text, st->n);
}

static void on_next(spawn_ctx *ctx, void *user)
{
	(void)user;
	Sem__Msg *in;
	char cb[160];
	if (!input(ctx, &in))
		return;
	if (in->at_ms)
		say("next %s %s caller=%s at=%lld", spawn_ctx_actor(ctx), in->text,
		    caller_of(ctx, cb, sizeof cb), (long long)wall_ms());
	else
		say("next %s %s caller=%s", spawn_ctx_actor(ctx), in->text,
		    caller_of(ctx, cb, sizeof cb));
	next_turn(ctx, in);
}

static void on_receive(spawn_ctx *ctx, void *user)
{
	(void)user;
	Sem__Msg *in;
	char cb[160];
	if (!input(ctx, &in))
		return;
	say("got %s %s %s caller=%s", spawn_ctx_actor(ctx), spawn_ctx_action(ctx), in->text,
	    caller_of(ctx, cb, sizeof cb));
	next_turn(ctx, in);
}

/* checkpointed: with in->checkpoint, the turn changes the state (n+1) and
 * asks for a durable save before the caller is answered. */
static void checkpointed(spawn_ctx *ctx, const Sem__Msg *in)
{
	if (!in->checkpoint)
		return;
	Sem__State *st;
	if (!state(ctx, &st))
		return;
	st->n++;
	check(ctx, spawn_ctx_set_state_msg(ctx, &st->base), "state");
	spawn_ctx_checkpoint(ctx, true);
}

static void on_pipe(spawn_ctx *ctx, void *user)
{
	(void)user;
	Sem__Msg *in;
	if (!input(ctx, &in))
		return;
	say("pipe %s", spawn_ctx_actor(ctx));
	char text[512];
	snprintf(text, sizeof text, "%s>%s", in->text, spawn_ctx_actor(ctx));
	Sem__Msg r = *in;
	r.text = text;
	r.to_actor = (char *)spawn_ctx_actor(ctx);
	r.checkpoint = false;
	check(ctx, spawn_ctx_reply_msg(ctx, &r.base), "reply");
	check(ctx, spawn_ctx_pipe(ctx, in->to_actor, in->to_action), "pipe");
	checkpointed(ctx, in);
}

static void on_forward(spawn_ctx *ctx, void *user)
{
	(void)user;
	Sem__Msg *in;
	if (!input(ctx, &in))
		return;
	say("forward %s", spawn_ctx_actor(ctx));
	reply_text(ctx, "ignored", 0);
	check(ctx, spawn_ctx_forward(ctx, in->to_actor, in->to_action), "forward");
	checkpointed(ctx, in);
}

static void on_effect(spawn_ctx *ctx, void *user)
{
	(void)user;
	Sem__Msg *in;
	if (!input(ctx, &in))
		return;
	Sem__Msg out = SEM__MSG__INIT;
	out.text = in->text;
	out.checkpoint = in->checkpoint;
	out.at_ms = in->at_ms;
	spawn_payload p;
	int rc = spawn_payload_pack(&p, &out.base);
	if (rc != SPAWN_OK) {
		check(ctx, rc, "pack");
		return;
	}
	spawn_metadata md[8];
	size_t n_md = 0;
	for (size_t i = 0; i < in->n_kv && n_md < 8; i++)
		md[n_md++] = (spawn_metadata){in->kv[i]->key, in->kv[i]->value};
	spawn_request req = {
	    .system = in->to_system[0] ? in->to_system : NULL,
	    .actor = in->to_actor,
	    .action = in->to_action,
	    .payload = p,
	    .metadata = md,
	    .n_metadata = n_md,
	    .scheduled_to_ms = in->at_ms,
	};
	rc = spawn_ctx_side_effect(ctx, &req);
	spawn_payload_fini(&p);
	if (rc != SPAWN_OK) {
		check(ctx, rc, "side effect");
		return;
	}
	char text[512];
	snprintf(text, sizeof text, "%s>%s!", in->text, spawn_ctx_actor(ctx));
	reply_text(ctx, text, 0);
	checkpointed(ctx, in);
}

static void on_publish(spawn_ctx *ctx, void *user)
{
	(void)user;
	Sem__Msg *in;
	if (!input(ctx, &in))
		return;
	Sem__Msg out = SEM__MSG__INIT;
	out.text = in->text;
	check(ctx, spawn_ctx_broadcast_msg(ctx, in->channel, &out.base), "broadcast");
	reply_text(ctx, "published", 0);
}

static void on_get(spawn_ctx *ctx, void *user)
{
	(void)user;
	Sem__State *st;
	if (state(ctx, &st))
		reply_text(ctx, st->last, st->n);
}

static void on_tag(spawn_ctx *ctx, void *user)
{
	(void)user;
	Sem__Msg *in;
	if (!input(ctx, &in))
		return;
	for (size_t i = 0; i < in->n_kv; i++)
		check(ctx,
		      spawn_ctx_set_tag(ctx, in->kv[i]->key,
		                        in->kv[i]->value[0] ? in->kv[i]->value : NULL),
		      "tag");
	reply_text(ctx, "tagged", 0);
}

static void on_get_tag(spawn_ctx *ctx, void *user)
{
	(void)user;
	Sem__Msg *in;
	if (!input(ctx, &in))
		return;
	const char *v = spawn_ctx_tag(ctx, in->text);
	reply_text(ctx, v ? v : "-", 0);
}

static void on_meta(spawn_ctx *ctx, void *user)
{
	(void)user;
	const char *v = spawn_ctx_metadata(ctx, "trace");
	reply_text(ctx, v ? v : "-", 0);
}

static void on_block(spawn_ctx *ctx, void *user)
{
	(void)user;
	Sem__Msg *in;
	char cb[160];
	if (!input(ctx, &in))
		return;
	say("blocked %s %s caller=%s", spawn_ctx_actor(ctx), in->text,
	    caller_of(ctx, cb, sizeof cb));
	struct pollfd pfd[2] = {{.fd = g_gate_pipe[0], .events = POLLIN},
	                        {.fd = g_stop_pipe[0], .events = POLLIN}};
	for (;;) {
		int r = poll(pfd, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (pfd[1].revents) {
			spawn_ctx_fail(ctx, SPAWN_UNAVAILABLE, "sem-host is stopping");
			return;
		}
		char b;
		if (pfd[0].revents && read(g_gate_pipe[0], &b, 1) == 1)
			break;
	}
	say("unblocked %s %s", spawn_ctx_actor(ctx), in->text);
	next_turn(ctx, in);
}

static void on_tick(spawn_ctx *ctx, void *user)
{
	(void)user;
	Sem__State *st;
	if (!state(ctx, &st))
		return;
	st->n++;
	check(ctx, spawn_ctx_set_state_msg(ctx, &st->base), "state");
	say("tick %s %lld", spawn_ctx_actor(ctx), (long long)st->n);
}

/* ---- the pool ------------------------------------------------------------ */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int target;   /* --pool */
	int inflight; /* Gathers running now */
	int max;      /* the most at once */
	bool reached; /* target Gathers ran at once */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 4, 0, 0, false};

static void on_gather(spawn_ctx *ctx, void *user)
{
	(void)user;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&pool.mu);
	pool.inflight++;
	if (pool.inflight > pool.max)
		pool.max = pool.inflight;
	if (pool.inflight >= pool.target) {
		pool.reached = true;
		pthread_cond_broadcast(&pool.cv);
	}
	int rc = 0;
	while (!pool.reached && rc == 0)
		rc = pthread_cond_timedwait(&pool.cv, &pool.mu, &until);
	bool ok = pool.reached;
	int seen = pool.inflight, max = pool.max;
	pool.inflight--;
	pthread_mutex_unlock(&pool.mu);
	if (!ok) {
		char msg[96];
		snprintf(msg, sizeof msg, "only %d Gathers ran at once, not %d", seen, pool.target);
		spawn_ctx_fail(ctx, SPAWN_DEADLINE_EXCEEDED, msg);
		return;
	}
	reply_text(ctx, "gathered", max);
}

static void on_stats(spawn_ctx *ctx, void *user)
{
	(void)user;
	pthread_mutex_lock(&pool.mu);
	int max = pool.max;
	pthread_mutex_unlock(&pool.mu);
	reply_text(ctx, "stats", max);
}

/* ---- main ------------------------------------------------------------------ */

static void on_event(void *user, spawn_host_event ev, int status, const char *message)
{
	(void)user;
	if (ev == SPAWN_HOST_REGISTERED) {
		say("registered");
		return;
	}
	fprintf(stderr, "sem-host: event %d (%s): %s\n", (int)ev, spawn_status_name(status),
	        message ? message : "");
}

static void usage(void)
{
	fprintf(stderr, "usage: sem-host --gateway TARGET [--system NAME] [--workers N] "
	                "[--tick-ms MS] [--pool N] [--actors LIST]\n");
	exit(2);
}

/* listed: whether name is one of the comma-separated names of list. */
static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, name, n))
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

int main(int argc, char **argv)
{
	const char *gateway = NULL, *system = "sem", *only = NULL;
	int workers = 8, tick_ms = 50;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--gateway") && i + 1 < argc)
			gateway = argv[++i];
		else if (!strcmp(argv[i], "--system") && i + 1 < argc)
			system = argv[++i];
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			workers = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--tick-ms") && i + 1 < argc)
			tick_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--pool") && i + 1 < argc)
			pool.target = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--actors") && i + 1 < argc)
			only = argv[++i];
		else
			usage();
	}
	if (!gateway || workers < 1 || tick_ms < 1 || pool.target < 1)
		usage();

	static const struct {
		const char *name;
		spawn_handler fn;
	} generic[] = {{"Next", on_next},       {"receive", on_receive}, {"onNews", on_receive},
	               {"Pipe", on_pipe},       {"Forward", on_forward}, {"Effect", on_effect},
	               {"Publish", on_publish}, {"Get", on_get},         {"Tag", on_tag},
	               {"GetTag", on_get_tag},  {"Meta", on_meta},       {"Block", on_block}};
	enum { N_GENERIC = sizeof generic / sizeof generic[0] };
	spawn_action_def acts[N_GENERIC + 1];
	for (size_t i = 0; i < N_GENERIC; i++)
		acts[i] = (spawn_action_def){.name = generic[i].name, .handler = generic[i].fn};
	acts[N_GENERIC] =
	    (spawn_action_def){.name = "Tick", .handler = on_tick, .timer_ms = tick_ms};
	spawn_action_def pool_acts[] = {{.name = "Gather", .handler = on_gather},
	                                {.name = "Stats", .handler = on_stats}};

	if (pipe(g_stop_pipe) != 0 || pipe(g_gate_pipe) != 0) {
		perror("sem-host: pipe");
		return 1;
	}
	spawn_host_opts opts = {
	    .target = gateway,
	    .system = system,
	    .service_name = "sem-host",
	    .workers = workers,
	    .backoff_min_ms = 50,
	    .backoff_max_ms = 500,
	    .on_event = on_event,
	};
	int rc = spawn_host_create(&g_host, &opts);
	if (rc != SPAWN_OK) {
		fprintf(stderr, "sem-host: %s\n", spawn_strerror(rc));
		return 1;
	}
	char state_type[128];
	spawn_type_url(&sem__state__descriptor, state_type, sizeof state_type);
	spawn_channel_def news[] = {{.topic = "news"}};
	spawn_channel_def news_on[] = {{.topic = "news", .action = "onNews"}};
	spawn_actor_def base = {.kind = SPAWN_KIND_NAMED,
	                        .stateful = true,
	                        .state_type = state_type,
	                        .actions = acts,
	                        .n_actions = N_GENERIC};
	spawn_actor_def defs[9];
	size_t n = 0;
	const char *plain[] = {"a", "b", "c", "loner"};
	for (size_t i = 0; i < 4; i++) {
		defs[n] = base;
		defs[n++].name = plain[i];
	}
	defs[n] = base;
	defs[n].name = "sub1";
	defs[n].channels = news;
	defs[n++].n_channels = 1;
	defs[n] = base;
	defs[n].name = "sub2";
	defs[n].channels = news_on;
	defs[n++].n_channels = 1;
	defs[n] = base;
	defs[n].name = "ticker";
	defs[n++].n_actions = N_GENERIC + 1;
	defs[n++] = (spawn_actor_def){.name = "pool",
	                              .kind = SPAWN_KIND_POOLED,
	                              .max_pool_size = pool.target,
	                              .actions = pool_acts,
	                              .n_actions = 2};
	for (size_t i = 0; i < n; i++) {
		if (only && !listed(only, defs[i].name))
			continue;
		if ((rc = spawn_host_add_actor(g_host, &defs[i])) != SPAWN_OK) {
			fprintf(stderr, "sem-host: add actor %s: %s\n", defs[i].name,
			        spawn_strerror(rc));
			spawn_host_destroy(g_host);
			return 1;
		}
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_gate;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	rc = spawn_host_run(g_host);
	if (rc != SPAWN_OK)
		fprintf(stderr, "sem-host: %s\n", spawn_strerror(rc));
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR1, SIG_IGN);
	spawn_host_destroy(g_host);
	close(g_stop_pipe[0]);
	close(g_stop_pipe[1]);
	close(g_gate_pipe[0]);
	close(g_gate_pipe[1]);
	return rc == SPAWN_OK ? 0 : 1;
}
