/* conformance-host-c - the actors of conformance.proto (Keeper, Echoer,
 * Tally) on the C code protoc-gen-spawn generated from it, with the
 * semantics the contract's comments define.
 *
 *   conformance-host-c --gateway TARGET [--system NAME] [--workers N]
 *
 * Prints "registered" (flushed) each time the gateway accepts the
 * registration; runs until SIGINT or SIGTERM, then exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.spawn.h"

typedef Conformance__V1__Profile Profile;

static spawn_host *g_host; /* for the signal handler only */

static void on_signal(int sig)
{
	(void)sig;
	spawn_host_signal_stop(g_host);
}

/* ---- Keeper --------------------------------------------------------- */

static void keeper_reply_state(spawn_ctx *ctx, const Profile *next)
{
	if (keeper_set_state(ctx, next) == SPAWN_OK)
		keeper_set_reply(ctx, next);
}

static void on_set(spawn_ctx *ctx, const Profile *state, const Profile *in, void *user)
{
	(void)state;
	(void)user;
	keeper_reply_state(ctx, in);
}

/* concat returns a new array of the n1 elements of a1 followed by the n2
 * of a2 (each of size sz; the elements themselves stay borrowed), or NULL
 * when both are empty or memory ran out (*ok false then). */
static void *concat(const void *a1, size_t n1, const void *a2, size_t n2, size_t sz, bool *ok)
{
	if (n1 + n2 == 0)
		return NULL;
	char *p = malloc((n1 + n2) * sz);
	if (!p) {
		*ok = false;
		return NULL;
	}
	if (n1)
		memcpy(p, a1, n1 * sz);
	if (n2)
		memcpy(p + n1 * sz, a2, n2 * sz);
	return p;
}

/* MERGE_MAP(fn, Entry, same, removes) defines fn, which merges a map
 * field of protobuf-c (an array of Entry pointers): a new array (malloc'd;
 * its entries stay borrowed) of the state's entries, then each of the
 * input's put in: replacing the entry with the same key (same(a, b)), or
 * removing it when removes(e). NULL when both are empty or memory ran out
 * (*ok false then). */
#define MERGE_MAP(fn, Entry, same, removes)                                                        \
	static Entry **fn(Entry *const *st, size_t n_st, Entry *const *in, size_t n_in,            \
	                  size_t *n_out, bool *ok)                                                 \
	{                                                                                          \
		*n_out = 0;                                                                        \
		if (n_st + n_in == 0)                                                              \
			return NULL;                                                               \
		Entry **out = malloc((n_st + n_in) * sizeof *out);                                 \
		if (!out) {                                                                        \
			*ok = false;                                                               \
			return NULL;                                                               \
		}                                                                                  \
		size_t n = n_st;                                                                   \
		if (n_st)                                                                          \
			memcpy(out, st, n_st * sizeof *out);                                       \
		for (size_t i = 0; i < n_in; i++) {                                                \
			size_t at = 0;                                                             \
			while (at < n && !same(out[at], in[i]))                                    \
				at++;                                                              \
			if (removes(in[i])) {                                                      \
				if (at < n)                                                        \
					memmove(&out[at], &out[at + 1], (--n - at) * sizeof *out); \
			} else {                                                                   \
				out[at] = in[i];                                                   \
				n += at == n;                                                      \
			}                                                                          \
		}                                                                                  \
		*n_out = n;                                                                        \
		return out;                                                                        \
	}

#define SAME_STR_KEY(a, b) (strcmp((a)->key, (b)->key) == 0)
#define SAME_INT_KEY(a, b) ((a)->key == (b)->key)
#define NEVER(e)           ((void)(e), false)
#define ZERO_VALUE(e)      ((e)->value == 0)

MERGE_MAP(merge_scores, Conformance__V1__Profile__ScoresEntry, SAME_STR_KEY, ZERO_VALUE)
MERGE_MAP(merge_shapes, Conformance__V1__Profile__ShapesEntry, SAME_STR_KEY, NEVER)
MERGE_MAP(merge_names, Conformance__V1__Profile__NamesEntry, SAME_INT_KEY, NEVER)
MERGE_MAP(merge_ranks, Conformance__V1__Profile__RanksEntry, SAME_STR_KEY, NEVER)

/* Merge: the rules of conformance.proto. next starts as a shallow copy of
 * the state (borrowed pointers into state and in); only the arrays made
 * here are freed. */
static void on_merge(spawn_ctx *ctx, const Profile *state, const Profile *in, void *user)
{
	(void)user;
	Profile next = *state;
	bool ok = true;
	if (in->name[0])
		next.name = in->name;
	if (in->counter)
		next.counter = in->counter;
	if (in->level)
		next.level = in->level;
	if (in->active)
		next.active = in->active;
	if (in->blob.len)
		next.blob = in->blob;
	if (in->ratio != 0.0)
		next.ratio = in->ratio;
	if (in->big)
		next.big = in->big;
	if (in->shape)
		next.shape = in->shape;
	next.n_labels = state->n_labels + in->n_labels;
	next.labels = concat(state->labels, state->n_labels, in->labels, in->n_labels,
	                     sizeof *next.labels, &ok);
	next.n_numbers = state->n_numbers + in->n_numbers;
	next.numbers = concat(state->numbers, state->n_numbers, in->numbers, in->n_numbers,
	                      sizeof *next.numbers, &ok);
	next.n_levels = state->n_levels + in->n_levels;
	next.levels = concat(state->levels, state->n_levels, in->levels, in->n_levels,
	                     sizeof *next.levels, &ok);
	next.n_history = state->n_history + in->n_history;
	next.history = concat(state->history, state->n_history, in->history, in->n_history,
	                      sizeof *next.history, &ok);
	next.scores = merge_scores(state->scores, state->n_scores, in->scores, in->n_scores,
	                           &next.n_scores, &ok);
	next.shapes = merge_shapes(state->shapes, state->n_shapes, in->shapes, in->n_shapes,
	                           &next.n_shapes, &ok);
	next.names =
	    merge_names(state->names, state->n_names, in->names, in->n_names, &next.n_names, &ok);
	next.ranks =
	    merge_ranks(state->ranks, state->n_ranks, in->ranks, in->n_ranks, &next.n_ranks, &ok);
	if (in->contact_case != CONFORMANCE__V1__PROFILE__CONTACT__NOT_SET) {
		next.contact_case = in->contact_case;
		switch (in->contact_case) {
		case CONFORMANCE__V1__PROFILE__CONTACT_EMAIL:
			next.email = in->email;
			break;
		case CONFORMANCE__V1__PROFILE__CONTACT_PHONE:
			next.phone = in->phone;
			break;
		case CONFORMANCE__V1__PROFILE__CONTACT_LOCATION:
			next.location = in->location;
			break;
		default:
			break;
		}
	}
	if (ok)
		keeper_reply_state(ctx, &next);
	else
		spawn_ctx_fail(ctx, SPAWN_RESOURCE_EXHAUSTED, "out of memory");
	free(next.labels);
	free(next.numbers);
	free(next.levels);
	free(next.history);
	free(next.scores);
	free(next.shapes);
	free(next.names);
	free(next.ranks);
}

static void on_get(spawn_ctx *ctx, const Profile *state, const Conformance__V1__GetRequest *in,
                   void *user)
{
	(void)in;
	(void)user;
	keeper_get_reply(ctx, state);
}

static void on_keeper_fail(spawn_ctx *ctx, const Profile *state,
                           const Conformance__V1__FailRequest *in, void *user)
{
	(void)state;
	(void)user;
	spawn_ctx_fail(ctx, in->code, in->message);
}

static void echo_of(const Conformance__V1__Blob *in, Conformance__V1__Blob *out)
{
	*out = (Conformance__V1__Blob)CONFORMANCE__V1__BLOB__INIT;
	out->data = in->data;
	out->text = in->text;
	out->size = (int64_t)in->data.len;
}

static void on_keeper_echo(spawn_ctx *ctx, const Profile *state, const Conformance__V1__Blob *in,
                           void *user)
{
	(void)state;
	(void)user;
	Conformance__V1__Blob out;
	echo_of(in, &out);
	keeper_echo_reply(ctx, &out);
}

static void on_increment(spawn_ctx *ctx, const Profile *state,
                         const Conformance__V1__IncrementRequest *in, void *user)
{
	(void)user;
	Profile next = *state;
	next.counter += in->by;
	if (keeper_set_state(ctx, &next) == SPAWN_OK &&
	    keeper_increment_reply(ctx, &next) == SPAWN_OK)
		spawn_ctx_checkpoint(ctx, in->checkpoint);
}

/* ---- Echoer --------------------------------------------------------- */

static void on_echoer_echo(spawn_ctx *ctx, const Conformance__V1__Blob *in, void *user)
{
	(void)user;
	Conformance__V1__Blob out;
	echo_of(in, &out);
	echoer_echo_reply(ctx, &out);
}

static void on_echoer_fail(spawn_ctx *ctx, const Conformance__V1__FailRequest *in, void *user)
{
	(void)user;
	spawn_ctx_fail(ctx, in->code, in->message);
}

/* ---- Tally ---------------------------------------------------------- */

static void on_tally_add(spawn_ctx *ctx, const Conformance__V1__Count *state,
                         const Conformance__V1__IncrementRequest *in, void *user)
{
	(void)user;
	Conformance__V1__Count next = *state;
	next.value += in->by;
	if (tally_set_state(ctx, &next) == SPAWN_OK && tally_add_reply(ctx, &next) == SPAWN_OK)
		spawn_ctx_checkpoint(ctx, in->checkpoint);
}

static void on_tally_get(spawn_ctx *ctx, const Conformance__V1__Count *state,
                         const Conformance__V1__GetRequest *in, void *user)
{
	(void)in;
	(void)user;
	tally_get_reply(ctx, state);
}

/* ---- main ----------------------------------------------------------- */

static void on_event(void *user, spawn_host_event ev, int status, const char *message)
{
	(void)user;
	if (ev == SPAWN_HOST_REGISTERED) {
		printf("registered\n");
		fflush(stdout);
	} else {
		fprintf(stderr, "conformance-host-c: event %d (%s): %s\n", (int)ev,
		        spawn_status_name(status), message ? message : "");
	}
}

int main(int argc, char **argv)
{
	const char *gateway = NULL, *system = "conformance";
	int workers = 4;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--gateway") == 0 && i + 1 < argc) {
			gateway = argv[++i];
		} else if (strcmp(argv[i], "--system") == 0 && i + 1 < argc) {
			system = argv[++i];
		} else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
			workers = atoi(argv[++i]);
		} else {
			gateway = NULL;
			break;
		}
	}
	if (!gateway) {
		fprintf(stderr, "usage: conformance-host-c --gateway TARGET [--system NAME] "
		                "[--workers N]\n");
		return 2;
	}
	spawn_host_opts opts = {
	    .target = gateway,
	    .system = system,
	    .service_name = "conformance-host-c",
	    .workers = workers,
	    .on_event = on_event,
	};
	int rc = spawn_host_create(&g_host, &opts);
	if (rc != SPAWN_OK) {
		fprintf(stderr, "conformance-host-c: %s\n", spawn_strerror(rc));
		return 1;
	}
	/* Retained until spawn_host_destroy, hence static. */
	static const keeper_handlers keeper = {
	    .set = on_set,
	    .merge = on_merge,
	    .get = on_get,
	    .fail = on_keeper_fail,
	    .echo = on_keeper_echo,
	    .increment = on_increment,
	};
	static const echoer_handlers echoer = {.echo = on_echoer_echo, .fail = on_echoer_fail};
	static const tally_handlers tally = {.add = on_tally_add, .get = on_tally_get};
	if ((rc = keeper_register(g_host, &keeper)) != SPAWN_OK ||
	    (rc = echoer_register(g_host, &echoer)) != SPAWN_OK ||
	    (rc = tally_register(g_host, &tally)) != SPAWN_OK) {
		fprintf(stderr, "conformance-host-c: register: %s\n", spawn_strerror(rc));
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
		fprintf(stderr, "conformance-host-c: %s\n", spawn_strerror(rc));
	return rc == SPAWN_OK ? 0 : 1;
}
