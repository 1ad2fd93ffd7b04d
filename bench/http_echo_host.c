/* http_echo_host.c - bench-http-echo-host: the actor host of the `spawnhttp`
 * benchmark scenario, speaking Spawn's HTTP/1.1 protocol (docs/protocol.md):
 * the same actor as bench-echo-host (an UNNAMED template "echo-actor",
 * stateful, whose action answers with the request's payload and counts the
 * calls in an 8-byte state), but served as Spawn's SDKs serve actors: the
 * gateway calls POST /api/v1/actors/actions back on this process.
 *
 *   bench-http-echo-host [--action A]
 *       serves on 127.0.0.1, one thread (as bench-echo-host's one worker);
 *       prints "listening PORT"; SIGTERM/SIGINT stop it.
 *   bench-http-echo-host --register HOST:PORT [--system S] [--action A]
 *       registers system S with the gateway's --http listener at HOST:PORT
 *       (POST /api/v1/system), prints the answer's message ("Accepted"),
 *       exits 0 on success. */
#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spawn/actors/protocol.pb-c.h"

#define STATE_URL "type.googleapis.com/bench.Counter"
#define MAX_BODY  (4u << 20)

typedef struct body {
	uint8_t *p;
	size_t n;
} body;

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const uint8_t *p, size_t n)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    n, (void *)(n ? p : (const uint8_t *)""), MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* on_request: one ActorInvocation in, one ActorInvocationResponse out. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **ctx)
{
	(void)cls;
	(void)version;
	body *b = *ctx;
	if (!b) {
		if (strcmp(method, "POST") || strcmp(url, "/api/v1/actors/actions"))
			return answer(c, MHD_HTTP_NOT_FOUND, NULL, 0);
		if (!(b = calloc(1, sizeof *b)))
			return MHD_NO;
		*ctx = b;
		return MHD_YES;
	}
	if (*size) {
		if (b->n + *size > MAX_BODY)
			return MHD_NO;
		uint8_t *p = realloc(b->p, b->n + *size);
		if (!p)
			return MHD_NO;
		memcpy(p + b->n, data, *size);
		b->p = p;
		b->n += *size;
		*size = 0;
		return MHD_YES;
	}
	Spawn__ActorInvocation *inv = spawn__actor_invocation__unpack(NULL, b->n, b->p);
	if (!inv)
		return answer(c, MHD_HTTP_BAD_REQUEST, NULL, 0);
	uint64_t n = 0;
	const Spawn__Context *cur = inv->current_context;
	if (cur && cur->state && cur->state->value.len == sizeof n)
		memcpy(&n, cur->state->value.data, sizeof n);
	n++;
	Google__Protobuf__Any st = GOOGLE__PROTOBUF__ANY__INIT;
	st.type_url = STATE_URL;
	st.value.data = (uint8_t *)&n;
	st.value.len = sizeof n;
	Spawn__Context uc = SPAWN__CONTEXT__INIT;
	uc.state = &st;
	uc.self = inv->actor;
	Spawn__Workflow wf = SPAWN__WORKFLOW__INIT;
	Spawn__Noop noop = SPAWN__NOOP__INIT;
	Spawn__ActorInvocationResponse r = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	r.actor_name = inv->actor ? inv->actor->name : "";
	r.actor_system = inv->actor ? inv->actor->system : "";
	r.updated_context = &uc;
	r.workflow = &wf;
	if (inv->payload_case == SPAWN__ACTOR_INVOCATION__PAYLOAD_VALUE) {
		r.payload_case = SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_VALUE;
		r.value = inv->value;
	} else {
		r.payload_case = SPAWN__ACTOR_INVOCATION_RESPONSE__PAYLOAD_NOOP;
		r.noop = &noop;
	}
	size_t len = spawn__actor_invocation_response__get_packed_size(&r);
	uint8_t *out = malloc(len ? len : 1);
	enum MHD_Result ret = MHD_NO;
	if (out) {
		spawn__actor_invocation_response__pack(&r, out);
		ret = answer(c, MHD_HTTP_OK, out, len);
		free(out);
	}
	spawn__actor_invocation__free_unpacked(inv, NULL);
	return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **ctx,
                    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	body *b = *ctx;
	if (b) {
		free(b->p);
		free(b);
		*ctx = NULL;
	}
}

static int serve(void)
{
	/* SIGTERM / SIGINT are taken by sigwait below; the listener's thread
	 * inherits the mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_request, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE,
	    (unsigned)511, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "bench-http-echo-host: cannot listen\n");
		return 1;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("listening %u\n", di ? di->port : 0);
	fflush(stdout);
	int sig;
	sigwait(&sigs, &sig);
	MHD_stop_daemon(d);
	return 0;
}

static size_t collect(char *p, size_t size, size_t n, void *user)
{
	body *b = user;
	size_t len = size * n;
	uint8_t *q = realloc(b->p, b->n + len);
	if (!q)
		return 0;
	memcpy(q + b->n, p, len);
	b->p = q;
	b->n += len;
	return len;
}

static int do_register(const char *proxy, const char *system, const char *action)
{
	Spawn__Actors__ActorId id = SPAWN__ACTORS__ACTOR_ID__INIT;
	id.name = "echo-actor";
	id.system = (char *)system;
	Spawn__Actors__ActorSettings st = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	st.kind = SPAWN__ACTORS__KIND__UNNAMED;
	st.stateful = true;
	st.state_type = STATE_URL;
	Spawn__Actors__Action act = SPAWN__ACTORS__ACTION__INIT;
	act.name = (char *)action;
	Spawn__Actors__Action *acts[] = {&act};
	Spawn__Actors__Actor a = SPAWN__ACTORS__ACTOR__INIT;
	a.id = &id;
	a.settings = &st;
	a.actions = acts;
	a.n_actions = 1;
	Spawn__Actors__Registry__ActorsEntry e = SPAWN__ACTORS__REGISTRY__ACTORS_ENTRY__INIT;
	e.key = "echo-actor";
	e.value = &a;
	Spawn__Actors__Registry__ActorsEntry *es[] = {&e};
	Spawn__Actors__Registry reg = SPAWN__ACTORS__REGISTRY__INIT;
	reg.actors = es;
	reg.n_actors = 1;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = (char *)system;
	sys.registry = &reg;
	Spawn__ServiceInfo si = SPAWN__SERVICE_INFO__INIT;
	si.service_name = "bench-http-echo-host";
	Spawn__RegistrationRequest rr = SPAWN__REGISTRATION_REQUEST__INIT;
	rr.service_info = &si;
	rr.actor_system = &sys;
	size_t len = spawn__registration_request__get_packed_size(&rr);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return 1;
	spawn__registration_request__pack(&rr, buf);
	char url[300];
	snprintf(url, sizeof url, "http://%s/api/v1/system", proxy);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
	body out = {0};
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)buf);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	Spawn__RegistrationResponse *resp =
	    rc == CURLE_OK ? spawn__registration_response__unpack(NULL, out.n, out.p) : NULL;
	int ok = resp && resp->status && resp->status->status == SPAWN__STATUS__OK;
	printf("%s\n", resp && resp->status && resp->status->message ? resp->status->message
	                                                             : curl_easy_strerror(rc));
	if (resp)
		spawn__registration_response__free_unpacked(resp, NULL);
	free(out.p);
	free(buf);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	return ok && status == 200 ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *system = "bench", *action = "echo", *proxy = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--system") && i + 1 < argc)
			system = argv[++i];
		else if (!strcmp(argv[i], "--action") && i + 1 < argc)
			action = argv[++i];
		else if (!strcmp(argv[i], "--register") && i + 1 < argc)
			proxy = argv[++i];
		else {
			fprintf(stderr,
			        "usage: %s [--register HOST:PORT] [--system S] [--action A]\n",
			        argv[0]);
			return 2;
		}
	}
	if (proxy)
		return do_register(proxy, system, action);
	return serve();
}
