/* raw.c - see raw.h. Tags are the addresses of the struct's one-byte
 * fields; each op kind has at most one batch in flight. */
#include "raw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "wire.h"

enum { P_SEND = 1, P_RECV = 2, P_STATUS = 4, P_MD = 8, P_RMD = 16 };

struct raw_stream {
	grpc_channel *ch;
	grpc_completion_queue *cq;
	grpc_call *call;
	unsigned pending;
	bool status_done;
	grpc_metadata_array md_initial, md_trailing;
	grpc_status_code status;
	grpc_slice details;
	grpc_byte_buffer *send_bb, *recv_bb;
	char tag_send, tag_recv, tag_status, tag_md, tag_rmd;
	grpc_metadata auth; /* "authorization", sent when n_auth == 1 */
	size_t n_auth;
};

static gpr_timespec after_ms(int64_t ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static void copy_details(grpc_slice s, char *out, size_t n)
{
	if (!out || !n)
		return;
	char *d = grpc_slice_to_c_string(s);
	snprintf(out, n, "%s", d ? d : "");
	gpr_free(d);
}

/* wait_tag plucks tag; returns 1 (ok), 0 (op failed), -1 (timeout). */
static int wait_tag(raw_stream *s, void *tag, unsigned bit, int64_t timeout_ms)
{
	grpc_event ev = grpc_completion_queue_pluck(s->cq, tag, after_ms(timeout_ms), NULL);
	if (ev.type != GRPC_OP_COMPLETE)
		return -1;
	s->pending &= ~bit;
	return ev.success ? 1 : 0;
}

/* open_call starts a call whose deadline is timeout_ms from now (<= 0:
 * none), over TLS per tls (NULL: plaintext, on a channel made as before). */
static raw_stream *open_call_md(const char *target, const it_tls *tls, const char *method,
                                int64_t timeout_ms, const char *key, const char *auth)
{
	raw_stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	grpc_init();
	if (tls) {
		s->ch = it_channel_create(target, tls);
		if (!s->ch) {
			free(s);
			grpc_shutdown();
			return NULL;
		}
	} else {
		grpc_channel_credentials *cr = grpc_insecure_credentials_create();
		s->ch = grpc_channel_create(target, cr, NULL);
		grpc_channel_credentials_release(cr);
	}
	s->cq = grpc_completion_queue_create_for_pluck(NULL);
	s->call = grpc_channel_create_call(
	    s->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, grpc_slice_from_static_string(method),
	    NULL, timeout_ms > 0 ? after_ms(timeout_ms) : gpr_inf_future(GPR_CLOCK_MONOTONIC),
	    NULL);
	grpc_metadata_array_init(&s->md_initial);
	grpc_metadata_array_init(&s->md_trailing);
	s->details = grpc_empty_slice();
	if (auth) {
		s->auth.key = grpc_slice_from_copied_string(key);
		s->auth.value = grpc_slice_from_copied_string(auth);
		s->n_auth = 1;
	}
	return s;
}

static raw_stream *open_call(const char *target, const it_tls *tls, const char *method,
                             int64_t timeout_ms, const char *auth)
{
	return open_call_md(target, tls, method, timeout_ms, "authorization", auth);
}

/* send_md fills op as the SEND_INITIAL_METADATA of s (with its credential). */
static void send_md(raw_stream *s, grpc_op *op)
{
	op->op = GRPC_OP_SEND_INITIAL_METADATA;
	op->data.send_initial_metadata.count = s->n_auth;
	op->data.send_initial_metadata.metadata = s->n_auth ? &s->auth : NULL;
}

static bool start(raw_stream *s, grpc_op *ops, size_t n, void *tag, unsigned bit)
{
	if (grpc_call_start_batch(s->call, ops, n, tag, NULL) != GRPC_CALL_OK)
		return false;
	s->pending |= bit;
	return true;
}

raw_stream *raw_stream_open(const char *target, const char *method, int64_t timeout_ms)
{
	return raw_stream_open_tls(target, NULL, method, timeout_ms);
}

char *raw_stream_peer_cert(raw_stream *s)
{
	grpc_auth_context *ac = grpc_call_auth_context(s->call);
	if (!ac)
		return NULL;
	char *pem = NULL;
	grpc_auth_property_iterator it =
	    grpc_auth_context_find_properties_by_name(ac, GRPC_X509_PEM_CERT_PROPERTY_NAME);
	const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
	if (p && (pem = malloc(p->value_length + 1))) {
		memcpy(pem, p->value, p->value_length);
		pem[p->value_length] = 0;
	}
	grpc_auth_context_release(ac);
	return pem;
}

raw_stream *raw_stream_open_tls(const char *target, const it_tls *tls, const char *method,
                                int64_t timeout_ms)
{
	return raw_stream_open_auth(target, tls, method, timeout_ms, NULL);
}

static raw_stream *open_stream_md(const char *target, const it_tls *tls, const char *method,
                                  int64_t timeout_ms, const char *key, const char *auth);

raw_stream *raw_stream_open_auth(const char *target, const it_tls *tls, const char *method,
                                 int64_t timeout_ms, const char *auth)
{
	return open_stream_md(target, tls, method, timeout_ms, "authorization", auth);
}

static raw_stream *open_stream_md(const char *target, const it_tls *tls, const char *method,
                                  int64_t timeout_ms, const char *key, const char *auth)
{
	raw_stream *s = open_call_md(target, tls, method, timeout_ms, key, auth);
	if (!s)
		return NULL;
	grpc_op op[1];
	memset(op, 0, sizeof op);
	op[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op[0].data.recv_status_on_client.trailing_metadata = &s->md_trailing;
	op[0].data.recv_status_on_client.status = &s->status;
	op[0].data.recv_status_on_client.status_details = &s->details;
	start(s, op, 1, &s->tag_status, P_STATUS);
	memset(op, 0, sizeof op);
	send_md(s, &op[0]);
	start(s, op, 1, &s->tag_md, P_MD);
	/* The status is only delivered once the initial metadata has been
	 * received too, so ask for it from the start. */
	memset(op, 0, sizeof op);
	op[0].op = GRPC_OP_RECV_INITIAL_METADATA;
	op[0].data.recv_initial_metadata.recv_initial_metadata = &s->md_initial;
	start(s, op, 1, &s->tag_rmd, P_RMD);
	return s;
}

raw_stream *raw_stream_open_md(const char *target, const char *method, int64_t timeout_ms,
                               const char *key, const char *value)
{
	return open_stream_md(target, NULL, method, timeout_ms, key, value);
}

bool raw_stream_initial_md_has(raw_stream *s, const char *key, const char *value,
                               int64_t timeout_ms)
{
	if (s->pending & P_RMD)
		wait_tag(s, &s->tag_rmd, P_RMD, timeout_ms);
	for (size_t i = 0; i < s->md_initial.count; i++)
		if (!grpc_slice_str_cmp(s->md_initial.metadata[i].key, key) &&
		    !grpc_slice_str_cmp(s->md_initial.metadata[i].value, value))
			return true;
	return false;
}

bool raw_stream_send(raw_stream *s, const void *data, size_t len, int64_t timeout_ms)
{
	if (s->pending & P_MD)
		wait_tag(s, &s->tag_md, P_MD, timeout_ms);
	s->send_bb = spawn_wire_buffer(data, len);
	grpc_op op;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = s->send_bb;
	bool ok = start(s, &op, 1, &s->tag_send, P_SEND) &&
	          wait_tag(s, &s->tag_send, P_SEND, timeout_ms) == 1;
	if (!(s->pending & P_SEND)) {
		grpc_byte_buffer_destroy(s->send_bb);
		s->send_bb = NULL;
	}
	return ok;
}

bool raw_stream_send_msg(raw_stream *s, const ProtobufCMessage *m, int64_t timeout_ms)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return false;
	protobuf_c_message_pack(m, buf);
	bool ok = raw_stream_send(s, buf, n, timeout_ms);
	free(buf);
	return ok;
}

ProtobufCMessage *raw_stream_recv(raw_stream *s, const ProtobufCMessageDescriptor *d,
                                  int64_t timeout_ms)
{
	if (!(s->pending & P_RECV)) {
		grpc_op op;
		memset(&op, 0, sizeof op);
		op.op = GRPC_OP_RECV_MESSAGE;
		op.data.recv_message.recv_message = &s->recv_bb;
		if (!start(s, &op, 1, &s->tag_recv, P_RECV))
			return NULL;
	}
	if (wait_tag(s, &s->tag_recv, P_RECV, timeout_ms) != 1 || !s->recv_bb)
		return NULL;
	ProtobufCMessage *m = NULL;
	spawn_wire_unpack(d, s->recv_bb, NULL, &m);
	grpc_byte_buffer_destroy(s->recv_bb);
	s->recv_bb = NULL;
	return m;
}

int raw_stream_status(raw_stream *s, int64_t timeout_ms, char *details, size_t dlen)
{
	if (!s->status_done) {
		if (wait_tag(s, &s->tag_status, P_STATUS, timeout_ms) < 0)
			return -1;
		s->status_done = true;
	}
	copy_details(s->details, details, dlen);
	return (int)s->status;
}

void raw_stream_close(raw_stream *s)
{
	if (!s)
		return;
	if (s->call && s->pending)
		grpc_call_cancel(s->call, NULL);
	/* Cancelling completes every op in flight. */
	if (s->pending & P_MD)
		wait_tag(s, &s->tag_md, P_MD, 10000);
	if (s->pending & P_RMD)
		wait_tag(s, &s->tag_rmd, P_RMD, 10000);
	if (s->pending & P_SEND)
		wait_tag(s, &s->tag_send, P_SEND, 10000);
	if (s->pending & P_RECV)
		wait_tag(s, &s->tag_recv, P_RECV, 10000);
	if (s->pending & P_STATUS)
		wait_tag(s, &s->tag_status, P_STATUS, 10000);
	if (s->send_bb)
		grpc_byte_buffer_destroy(s->send_bb);
	if (s->recv_bb)
		grpc_byte_buffer_destroy(s->recv_bb);
	if (s->call)
		grpc_call_unref(s->call);
	grpc_metadata_array_destroy(&s->md_initial);
	grpc_metadata_array_destroy(&s->md_trailing);
	grpc_slice_unref(s->details);
	if (s->n_auth) {
		grpc_slice_unref(s->auth.value);
		grpc_slice_unref(s->auth.key);
	}
	grpc_channel_destroy(s->ch);
	grpc_completion_queue_shutdown(s->cq);
	while (grpc_completion_queue_pluck(s->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
	           .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(s->cq);
	free(s);
	grpc_shutdown();
}

/* ---- channels ---------------------------------------------------------------------------- */

/* slurp reads a PEM file whole; the caller frees. NULL when it cannot. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = 0;
	return buf;
}

grpc_channel *it_channel_create(const char *target, const it_tls *tls)
{
	grpc_arg args[2];
	size_t na = 0;
	/* A new channel is a new connection: the global subchannel pool could
	 * hand this channel another's (the tests count handshakes). */
	args[na].type = GRPC_ARG_INTEGER;
	args[na].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
	args[na++].value.integer = 1;
	grpc_channel_credentials *cr;
	if (!tls || !tls->ca) {
		cr = grpc_insecure_credentials_create();
	} else {
		char *ca = slurp(tls->ca), *cert = NULL, *key = NULL;
		grpc_ssl_pem_key_cert_pair pair = {0};
		if (tls->cert) {
			cert = slurp(tls->cert);
			key = slurp(tls->key);
			pair.cert_chain = cert;
			pair.private_key = key;
		}
		bool ok = ca && (!tls->cert || (cert && key));
		cr = ok ? grpc_ssl_credentials_create(ca, tls->cert ? &pair : NULL, NULL, NULL)
		        : NULL;
		free(ca);
		free(cert);
		free(key);
		if (!cr)
			return NULL;
		args[na].type = GRPC_ARG_STRING;
		args[na].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
		args[na++].value.string =
		    (char *)(tls->server_name ? tls->server_name : "localhost");
	}
	grpc_channel_args ca = {na, args};
	grpc_channel *ch = grpc_channel_create(target, cr, &ca);
	grpc_channel_credentials_release(cr);
	return ch;
}

/* unary_start starts the one batch of a unary call. */
static raw_stream *unary_start(const char *target, const it_tls *tls, const char *method,
                               const void *data, size_t len, int64_t call_ms, const char *auth)
{
	raw_stream *s = open_call(target, tls, method, call_ms, auth);
	if (!s)
		return NULL;
	s->send_bb = spawn_wire_buffer(data, len);
	grpc_op ops[6];
	memset(ops, 0, sizeof ops);
	send_md(s, &ops[0]);
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = s->send_bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &s->recv_bb;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &s->md_trailing;
	ops[5].data.recv_status_on_client.status = &s->status;
	ops[5].data.recv_status_on_client.status_details = &s->details;
	if (!start(s, ops, 6, &s->tag_status, P_STATUS)) {
		raw_stream_close(s);
		return NULL;
	}
	return s;
}

static int unary(const char *target, const it_tls *tls, const char *method, const void *data,
                 size_t len, int64_t call_ms, int64_t timeout_ms, int64_t slack_ms,
                 const char *auth, char *details, size_t dlen)
{
	raw_stream *s = unary_start(target, tls, method, data, len, call_ms, auth);
	if (!s)
		return -1;
	int rc = -1;
	/* The call's own deadline ends it; the extra second only covers
	 * delivery of that completion. */
	if (wait_tag(s, &s->tag_status, P_STATUS, timeout_ms + slack_ms) >= 0) {
		s->status_done = true;
		rc = (int)s->status;
		copy_details(s->details, details, dlen);
	}
	raw_stream_close(s);
	return rc;
}

int raw_unary(const char *target, const char *method, const void *data, size_t len,
              int64_t timeout_ms, char *details, size_t dlen)
{
	return unary(target, NULL, method, data, len, timeout_ms, timeout_ms, 1000, NULL, details,
	             dlen);
}

int raw_unary_tls(const char *target, const it_tls *tls, const char *method, const void *data,
                  size_t len, int64_t timeout_ms, char *details, size_t dlen)
{
	return unary(target, tls, method, data, len, timeout_ms, timeout_ms, 1000, NULL, details,
	             dlen);
}

raw_call *raw_call_start(const char *target, const it_tls *tls, const char *method,
                         const void *data, size_t len, int64_t timeout_ms)
{
	return unary_start(target, tls, method, data, len, timeout_ms, NULL);
}

int raw_call_finish(raw_call *s, int64_t wait_ms, char *details, size_t dlen, uint8_t **resp,
                    size_t *resp_len)
{
	int rc = -1;
	if (resp)
		*resp = NULL;
	if (resp_len)
		*resp_len = 0;
	if (wait_tag(s, &s->tag_status, P_STATUS, wait_ms) >= 0) {
		s->status_done = true;
		rc = (int)s->status;
		copy_details(s->details, details, dlen);
		if (resp && s->recv_bb) {
			grpc_byte_buffer_reader r;
			if (grpc_byte_buffer_reader_init(&r, s->recv_bb)) {
				grpc_slice all = grpc_byte_buffer_reader_readall(&r);
				size_t n = GRPC_SLICE_LENGTH(all);
				if ((*resp = malloc(n ? n : 1))) {
					memcpy(*resp, GRPC_SLICE_START_PTR(all), n);
					if (resp_len)
						*resp_len = n;
				}
				grpc_slice_unref(all);
				grpc_byte_buffer_reader_destroy(&r);
			}
		}
	}
	raw_stream_close(s);
	return rc;
}

int raw_unary_no_deadline(const char *target, const char *method, const void *data, size_t len,
                          int64_t wait_ms, char *details, size_t dlen)
{
	return unary(target, NULL, method, data, len, 0, wait_ms, 1000, NULL, details, dlen);
}

int raw_unary_cancel_after(const char *target, const char *method, const void *data, size_t len,
                           int64_t after_ms, char *details, size_t dlen)
{
	return unary(target, NULL, method, data, len, 0, after_ms, 0, NULL, details, dlen);
}

int raw_unary_auth(const char *target, const it_tls *tls, const char *method, const void *data,
                   size_t len, int64_t timeout_ms, const char *auth, char *details, size_t dlen)
{
	return unary(target, tls, method, data, len, timeout_ms, timeout_ms, 1000, auth, details,
	             dlen);
}

/* ---- a raw host ---- */

Spawn__Gateway__V1__HostMessage *raw_registration_init(raw_registration *r, const char *system,
                                                       const char *named, const char *unnamed,
                                                       bool stateful)
{
	memset(r, 0, sizeof *r);
	spawn__actors__action__init(&r->act);
	r->act.name = "A";
	r->acts[0] = &r->act;
	const char *names[2] = {named, unnamed};
	for (int i = 0; i < 2; i++) {
		spawn__actors__actor_id__init(&r->id[i]);
		spawn__actors__actor_settings__init(&r->st[i]);
		spawn__actors__actor__init(&r->actor[i]);
		spawn__actors__registry__actors_entry__init(&r->e[i]);
		r->id[i].name = (char *)names[i];
		r->id[i].system = (char *)system;
		r->st[i].kind = i ? SPAWN__ACTORS__KIND__UNNAMED : SPAWN__ACTORS__KIND__NAMED;
		r->st[i].stateful = stateful;
		r->actor[i].id = &r->id[i];
		r->actor[i].settings = &r->st[i];
		r->actor[i].n_actions = 1;
		r->actor[i].actions = r->acts;
		r->e[i].key = (char *)names[i];
		r->e[i].value = &r->actor[i];
		r->es[i] = &r->e[i];
	}
	spawn__actors__registry__init(&r->reg);
	r->reg.n_actors = 2;
	r->reg.actors = r->es;
	spawn__actors__actor_system__init(&r->sys);
	r->sys.name = (char *)system;
	r->sys.registry = &r->reg;
	spawn__registration_request__init(&r->rr);
	r->rr.actor_system = &r->sys;
	spawn__gateway__v1__host_message__init(&r->hm);
	r->hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION;
	r->hm.registration = &r->rr;
	return &r->hm;
}

bool raw_host_register(raw_stream *s, const char *system, const char *named, const char *unnamed,
                       bool stateful, int64_t timeout_ms)
{
	raw_registration r;
	if (!raw_stream_send_msg(
	        s, &raw_registration_init(&r, system, named, unnamed, stateful)->base, timeout_ms))
		return false;
	Spawn__Gateway__V1__GatewayMessage *gm =
	    (Spawn__Gateway__V1__GatewayMessage *)raw_stream_recv(
	        s, &spawn__gateway__v1__gateway_message__descriptor, timeout_ms);
	bool ok = gm && gm->msg_case == SPAWN__GATEWAY__V1__GATEWAY_MESSAGE__MSG_REGISTRATION;
	if (gm)
		protobuf_c_message_free_unpacked(&gm->base, NULL);
	return ok;
}

bool raw_host_result(raw_stream *s, uint64_t id, int64_t timeout_ms)
{
	Spawn__ActorInvocationResponse resp = SPAWN__ACTOR_INVOCATION_RESPONSE__INIT;
	Spawn__Gateway__V1__InvocationResult res = SPAWN__GATEWAY__V1__INVOCATION_RESULT__INIT;
	res.request_id = id;
	res.outcome_case = SPAWN__GATEWAY__V1__INVOCATION_RESULT__OUTCOME_RESPONSE;
	res.response = &resp;
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_RESULT;
	hm.result = &res;
	return raw_stream_send_msg(s, &hm.base, timeout_ms);
}
