/* common.c - status table, payload helpers and small utilities shared by
 * the host and the client halves of libspawn. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/status.h>
#include <grpc/support/time.h>

/* The public codes are the gRPC codes by number; keep them in lock step. */
#define SPAWNI_CHECK_CODE(name, val, msg)                                                          \
	_Static_assert(SPAWN_##name == (int)GRPC_STATUS_##name,                                    \
	               "status " #name " differs from gRPC");
SPAWN_CODE_MAP(SPAWNI_CHECK_CODE)
#undef SPAWNI_CHECK_CODE

const char *spawn_version(void)
{
	return SPAWN_VERSION_STRING;
}

const char *spawn_strerror(int status)
{
	switch (status) {
	case SPAWN_OK:
		return "success";
#define SPAWNI_MSG(name, val, msg)                                                                 \
	case val:                                                                                  \
		return msg;
		SPAWN_CODE_MAP(SPAWNI_MSG)
		SPAWN_ERR_MAP(SPAWNI_MSG)
#undef SPAWNI_MSG
	}
	return "unknown status";
}

const char *spawn_status_name(int status)
{
	switch (status) {
	case SPAWN_OK:
		return "OK";
#define SPAWNI_NAME(name, val, msg)                                                                \
	case val:                                                                                  \
		return #name;
		SPAWN_CODE_MAP(SPAWNI_NAME)
		SPAWN_ERR_MAP(SPAWNI_NAME)
#undef SPAWNI_NAME
	}
	return "?";
}

int spawni_grpc_code(int code)
{
	return code >= 1 && code <= 16 ? code : SPAWN_UNKNOWN;
}

/* ---- payloads -------------------------------------------------------- */

size_t spawn_type_url(const ProtobufCMessageDescriptor *d, char *buf, size_t size)
{
	if (!d)
		return 0;
	int n = snprintf(buf, size, "%s%s", SPAWN_TYPE_URL_PREFIX, d->name);
	return n < 0 ? 0 : (size_t)n;
}

const char *spawni_type_name(const char *type_url)
{
	const char *slash = strrchr(type_url, '/');
	return slash ? slash + 1 : type_url;
}

bool spawn_payload_is(const spawn_payload *p, const ProtobufCMessageDescriptor *d)
{
	if (!p || !d || !p->type_url)
		return false;
	return strcmp(spawni_type_name(p->type_url), d->name) == 0;
}

int spawni_payload_dup(spawn_payload *out, const char *type_url, const void *data, size_t len)
{
	memset(out, 0, sizeof *out);
	if (!type_url)
		return SPAWN_OK;
	/* One block: the URL, its NUL, then the data; spawn_payload_fini frees
	 * it through type_url. */
	size_t ulen = strlen(type_url) + 1;
	if (len > SIZE_MAX - ulen)
		return SPAWN_ENOMEM;
	char *block = malloc(ulen + len);
	if (!block)
		return SPAWN_ENOMEM;
	memcpy(block, type_url, ulen);
	if (len)
		memcpy(block + ulen, data, len);
	out->type_url = block;
	out->data = len ? block + ulen : NULL;
	out->len = len;
	return SPAWN_OK;
}

int spawn_payload_pack(spawn_payload *out, const ProtobufCMessage *m)
{
	if (!out || !m || !m->descriptor)
		return SPAWN_EINVAL;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	size_t ulen = spawn_type_url(d, NULL, 0) + 1;
	size_t len = protobuf_c_message_get_packed_size(m);
	char *block = malloc(ulen + len);
	if (!block)
		return SPAWN_ENOMEM;
	spawn_type_url(d, block, ulen);
	protobuf_c_message_pack(m, (uint8_t *)block + ulen);
	out->type_url = block;
	out->data = len ? block + ulen : NULL;
	out->len = len;
	return SPAWN_OK;
}

void spawn_payload_fini(spawn_payload *p)
{
	if (!p)
		return;
	free((void *)p->type_url);
	memset(p, 0, sizeof *p);
}

int spawn_payload_unpack(const spawn_payload *p, const ProtobufCMessageDescriptor *d,
                         ProtobufCMessage **out)
{
	if (!p || !d || !out)
		return SPAWN_EINVAL;
	if (!spawn_payload_is(p, d))
		return SPAWN_ETYPE;
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, p->len, p->data);
	if (!m)
		return SPAWN_EPROTO;
	*out = m;
	return SPAWN_OK;
}

void spawn_reply_fini(spawn_reply *r)
{
	if (!r)
		return;
	free(r->message);
	spawn_payload_fini(&r->payload);
	memset(r, 0, sizeof *r);
}

/* ---- small utilities ------------------------------------------------- */

void *spawni_new(spawn_arena *a, const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = spawn_arena_alloc(a, d->sizeof_message);
	if (m)
		d->message_init(m);
	return m;
}

char *spawni_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

int64_t spawni_backoff_ms(unsigned attempt, int64_t min_ms, int64_t max_ms, unsigned *seed)
{
	int64_t base = min_ms;
	for (unsigned i = 0; i < attempt && base < max_ms; i++)
		base *= 2;
	if (base > max_ms)
		base = max_ms;
	/* +-20% so that hosts restarted together do not reconnect in step. */
	double factor = 0.8 + 0.4 * ((double)rand_r(seed) / (double)RAND_MAX);
	int64_t d = (int64_t)((double)base * factor);
	if (d < min_ms)
		d = min_ms;
	if (d > max_ms)
		d = max_ms;
	return d;
}

void spawni_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
}

int64_t spawni_deadline_ns(int64_t timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return spawn_now_ns() + timeout_ms * 1000000LL;
}

bool spawni_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ns)
{
	if (deadline_ns < 0) {
		pthread_cond_wait(cv, mu);
		return false;
	}
	struct timespec ts = {.tv_sec = deadline_ns / 1000000000LL,
	                      .tv_nsec = deadline_ns % 1000000000LL};
	return pthread_cond_timedwait(cv, mu, &ts) == ETIMEDOUT;
}

gpr_timespec spawni_grpc_deadline(int64_t timeout_ms)
{
	if (timeout_ms <= 0)
		return gpr_inf_future(GPR_CLOCK_MONOTONIC);
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	                    gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

void spawni_oom(const char *where)
{
	fprintf(stderr, "libspawn: out of memory in %s\n", where);
	abort();
}

void spawni_fatal(const char *what)
{
	fprintf(stderr, "libspawn: fatal: %s\n", what);
	abort();
}
