/* http_loadgen.c - bench-http-loadgen: closed-loop load on the gateway's
 * HTTP/JSON generic route (docs/http-json.md), the HTTP twin of
 * bench-loadgen's duration mode (scenario `plain` of bench/run.sh:
 * plain-json next to plain-invoke and plain-stub).
 *
 * N calls in flight over libcurl's multi interface (keep-alive
 * connections, reused); each finished call starts the next at once, to
 * actor "<prefix><i mod M>": POST URL/v1/SYSTEM/<name>/ACTION?parent=REF
 * with the body {"value":"<base64 payload>","id":"<name>"} (a bench.EchoMsg
 * in the proto3 JSON mapping, fields in number order). The echo host returns
 * its input, so the reply must be the same bytes (--no-verify skips the
 * check). Calls finishing in the warmup are counted apart; the latency of
 * each successful call finishing in the measured window goes into the
 * histogram; no call starts after the window.
 *
 * Output: one line with the keys of bench-loadgen (calls= errors= seconds=
 * rps= p50_us= p90_us= p99_us= p999_us= max_us= mean_us= inflight= actors=
 * warmup_calls= drain_calls= aborted=), and when errors > 0 a second line
 * first_error code=HTTP_STATUS name=http msg="...". Exit status: 0 without
 * errors, 1 with errors, 2 on bad flags.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

typedef struct slot {
	CURL *easy;
	char url[512];
	char *body; /* owned */
	size_t blen;
	char *resp; /* owned: the reply so far */
	size_t rlen, rcap;
	int64_t t0;
} slot;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
	slot *s = user;
	size_t k = size * n;
	if (s->rlen + k + 1 > s->rcap) {
		size_t cap = (s->rlen + k + 1) * 2;
		char *q = realloc(s->resp, cap);
		if (!q)
			return 0;
		s->resp = q;
		s->rcap = cap;
	}
	memcpy(s->resp + s->rlen, p, k);
	s->rlen += k;
	s->resp[s->rlen] = 0;
	return k;
}

static void b64(const uint8_t *in, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = 0;
}

typedef struct cfg {
	const char *url, *system, *action, *prefix, *parent;
	long inflight, actors, duration_ms, warmup_ms, payload, timeout_ms;
	bool verify;
} cfg;

/* prepare sets s up for a call to actor i. */
static bool prepare(const cfg *g, slot *s, long i, const char *payload64)
{
	char name[128];
	snprintf(name, sizeof name, "%s%ld", g->prefix, i);
	snprintf(s->url, sizeof s->url, "%s/v1/%s/%s/%s%s%s", g->url, g->system, name, g->action,
	         g->parent ? "?parent=" : "", g->parent ? g->parent : "");
	free(s->body);
	size_t n = strlen(payload64) + strlen(name) + 32;
	if (!(s->body = malloc(n)))
		return false;
	s->blen = (size_t)snprintf(s->body, n, "{\"value\":\"%s\",\"id\":\"%s\"}", payload64, name);
	s->rlen = 0;
	curl_easy_setopt(s->easy, CURLOPT_URL, s->url);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)s->blen);
	s->t0 = now_ns();
	return true;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: bench-http-loadgen --url http://HOST:PORT [--inflight N] [--actors M]\n"
	        "  [--duration-ms D] [--warmup-ms W] [--payload-bytes B] [--system S]\n"
	        "  [--action A] [--register-ref PARENT] [--actor-prefix P] [--timeout-ms T]\n"
	        "  [--no-verify]\n");
}

int main(int argc, char **argv)
{
	cfg g = {.system = "bench",
	         .action = "echo",
	         .prefix = "bench-",
	         .inflight = 1,
	         .actors = 1,
	         .duration_ms = 3000,
	         .warmup_ms = 1000,
	         .payload = 64,
	         .timeout_ms = 10000,
	         .verify = true};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		long *num = !strcmp(a, "--inflight")        ? &g.inflight
		            : !strcmp(a, "--actors")        ? &g.actors
		            : !strcmp(a, "--duration-ms")   ? &g.duration_ms
		            : !strcmp(a, "--warmup-ms")     ? &g.warmup_ms
		            : !strcmp(a, "--payload-bytes") ? &g.payload
		            : !strcmp(a, "--timeout-ms")    ? &g.timeout_ms
		                                            : NULL;
		if (!strcmp(a, "--no-verify")) {
			g.verify = false;
			continue;
		}
		if ((!strcmp(a, "--threads") || !strcmp(a, "--channels")) && v) {
			/* bench/run.sh passes bench-loadgen's flags: one thread and
			 * one multi handle here, whose connections are reused. */
			if (strcmp(v, "1")) {
				fprintf(stderr, "bench-http-loadgen: %s must be 1\n", a);
				return 2;
			}
			i++;
			continue;
		}
		if (!v) {
			usage();
			return 2;
		}
		if (num) {
			if (bench_flag_long(a, v, a[2] == 'w' || a[2] == 'p' ? 0 : 1, 100000000,
			                    num))
				return 2;
		} else if (!strcmp(a, "--url"))
			g.url = v;
		else if (!strcmp(a, "--system"))
			g.system = v;
		else if (!strcmp(a, "--action"))
			g.action = v;
		else if (!strcmp(a, "--register-ref"))
			g.parent = v;
		else if (!strcmp(a, "--actor-prefix"))
			g.prefix = v;
		else {
			usage();
			return 2;
		}
		i++;
	}
	if (!g.url || g.payload > 1 << 20) {
		usage();
		return 2;
	}
	uint8_t *raw = malloc((size_t)g.payload + 1);
	char *payload64 = malloc((size_t)g.payload / 3 * 4 + 8);
	slot *slots = calloc((size_t)g.inflight, sizeof *slots);
	if (!raw || !payload64 || !slots)
		return 1;
	for (long i = 0; i < g.payload; i++)
		raw[i] = (uint8_t)(i * 31 + 7);
	b64(raw, (size_t)g.payload, payload64);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURLM *multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, g.inflight);
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
	bench_hist h;
	bench_hist_init(&h);
	uint64_t calls = 0, errors = 0, warm = 0, late = 0;
	int err_code = 0;
	char err_msg[300] = "";
	long next = 0;
	int64_t t0 = now_ns(), warm_end = t0 + g.warmup_ms * 1000000LL,
	        meas_end = warm_end + g.duration_ms * 1000000LL;
	int running = 0;
	for (long i = 0; i < g.inflight; i++) {
		slot *s = &slots[i];
		s->easy = curl_easy_init();
		curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
		curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
		curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, g.timeout_ms);
		curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
		if (!prepare(&g, s, next++ % g.actors, payload64))
			return 1;
		curl_multi_add_handle(multi, s->easy);
		running++;
	}
	while (running) {
		int still = 0;
		curl_multi_perform(multi, &still);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			slot *s = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			int64_t t1 = now_ns();
			long status = 0;
			curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
			bool ok = m->data.result == CURLE_OK && status == 200 &&
			          (!g.verify ||
			           (s->rlen == s->blen && !memcmp(s->resp, s->body, s->blen)));
			curl_multi_remove_handle(multi, s->easy);
			running--;
			if (!ok) {
				if (!errors++) {
					err_code = (int)status;
					snprintf(err_msg, sizeof err_msg, "%s: %.200s",
					         m->data.result == CURLE_OK
					             ? "reply"
					             : curl_easy_strerror(m->data.result),
					         s->resp ? s->resp : "");
					for (char *c = err_msg; *c; c++)
						if (*c == '"' || *c == '\n')
							*c = '\'';
				}
			} else if (t1 <= warm_end) {
				warm++;
			} else if (t1 <= meas_end) {
				calls++;
				bench_hist_record(&h, (uint64_t)(t1 - s->t0));
			} else {
				late++;
			}
			if (t1 < meas_end) {
				if (!prepare(&g, s, next++ % g.actors, payload64))
					return 1;
				curl_multi_add_handle(multi, s->easy);
				running++;
			}
		}
		if (running)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	double seconds = (double)g.duration_ms / 1e3;
	printf("calls=%" PRIu64 " errors=%" PRIu64 " seconds=%.3f rps=%.1f p50_us=%.1f p90_us=%.1f "
	       "p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f inflight=%ld actors=%ld "
	       "warmup_calls=%" PRIu64 " drain_calls=%" PRIu64 " aborted=0\n",
	       calls, errors, seconds, (double)calls / seconds,
	       (double)bench_hist_quantile(&h, 0.50) / 1e3,
	       (double)bench_hist_quantile(&h, 0.90) / 1e3,
	       (double)bench_hist_quantile(&h, 0.99) / 1e3,
	       (double)bench_hist_quantile(&h, 0.999) / 1e3, (double)h.max_ns / 1e3,
	       h.count ? h.sum_ns / (double)h.count / 1e3 : 0.0, g.inflight, g.actors, warm, late);
	if (errors)
		printf("first_error code=%d name=http msg=\"%s\"\n", err_code, err_msg);
	fflush(stdout);
	for (long i = 0; i < g.inflight; i++) {
		curl_easy_cleanup(slots[i].easy);
		free(slots[i].body);
		free(slots[i].resp);
	}
	curl_slist_free_all(hdr);
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	free(slots);
	free(raw);
	free(payload64);
	return errors ? 1 : 0;
}
