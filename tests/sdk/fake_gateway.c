/* fake_gateway.c - see fake_gateway.h. One completion queue; a wait for
 * one tag parks any other completion in a small list, so the test can
 * wait for events in the order it expects them. */
#include "fake_gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "batch.h"
#include "wire.h"

#define MAX_PARKED 64

enum { OP_RECV = 1, OP_SEND = 2, OP_FINISH = 4, OP_CLOSE = 8 };

struct fake_gw {
	grpc_server *server;
	grpc_completion_queue *cq;
	char target[300];
	bool requested; /* a grpc_server_request_call is pending */
	grpc_call *new_call;
	grpc_call_details details;
	grpc_metadata_array md;
	char tag_request, tag_shutdown; /* addresses used as tags */
	struct {
		void *tag;
		bool ok;
	} parked[MAX_PARKED];
	size_t n_parked;
};

struct fake_call {
	fake_gw *g;
	grpc_call *call;
	char *method; /* gpr-allocated */
	grpc_metadata_array md;
	bool sent_md;
	bool grant_batch; /* the initial metadata carries spawn-link: batch */
	grpc_metadata grant_md;
	int cancelled;
	grpc_byte_buffer *recv_bb;
	grpc_byte_buffer *send_bb;
	grpc_slice status_details;
	unsigned pending; /* OP_* in flight */
	char tag_recv, tag_send, tag_finish, tag_close;
};

static gpr_timespec deadline_ms(int64_t ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* wait_tag returns 1 (success), 0 (the op failed) or -1 (timeout). */
static int wait_tag(fake_gw *g, void *tag, int64_t timeout_ms)
{
	for (size_t i = 0; i < g->n_parked; i++) {
		if (g->parked[i].tag == tag) {
			int ok = g->parked[i].ok;
			g->parked[i] = g->parked[--g->n_parked];
			return ok;
		}
	}
	gpr_timespec deadline = deadline_ms(timeout_ms);
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(g->cq, deadline, NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			return -1;
		if (ev.tag == tag)
			return ev.success ? 1 : 0;
		if (g->n_parked == MAX_PARKED) {
			fprintf(stderr, "fake_gateway: too many parked events\n");
			abort();
		}
		g->parked[g->n_parked].tag = ev.tag;
		g->parked[g->n_parked++].ok = ev.success;
	}
}

/* slurp reads a whole file into a NUL-terminated heap string, or NULL. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0) {
			buf[len] = '\0';
			fclose(f);
			return buf;
		}
	}
	free(buf);
	fclose(f);
	return NULL;
}

static fake_gw *start(const char *addr, grpc_server_credentials *creds);

fake_gw *fake_gw_start(const char *addr)
{
	grpc_init();
	fake_gw *g = start(addr, grpc_insecure_server_credentials_create());
	grpc_shutdown();
	return g;
}

fake_gw *fake_gw_start_tls(const char *addr, const char *cert, const char *key,
                           const char *client_ca)
{
	char *cert_pem = slurp(cert), *key_pem = slurp(key);
	char *ca_pem = client_ca ? slurp(client_ca) : NULL;
	fake_gw *g = NULL;
	if (cert_pem && key_pem && (!client_ca || ca_pem)) {
		grpc_init();
		grpc_ssl_pem_key_cert_pair pair = {.private_key = key_pem, .cert_chain = cert_pem};
		grpc_server_credentials *creds = grpc_ssl_server_credentials_create_ex(
		    ca_pem, &pair, 1,
		    ca_pem ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
		           : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
		    NULL);
		g = start(addr, creds);
		grpc_shutdown();
	}
	free(cert_pem);
	free(key_pem);
	free(ca_pem);
	return g;
}

/* start takes ownership of creds. */
static fake_gw *start(const char *addr, grpc_server_credentials *creds)
{
	fake_gw *g = calloc(1, sizeof *g);
	if (!g) {
		grpc_server_credentials_release(creds);
		return NULL;
	}
	grpc_init();
	g->cq = grpc_completion_queue_create_for_next(NULL);
	g->server = grpc_server_create(NULL, NULL);
	grpc_server_register_completion_queue(g->server, g->cq, NULL);
	int port = grpc_server_add_http2_port(g->server, addr, creds);
	grpc_server_credentials_release(creds);
	if (port <= 0) {
		grpc_server_destroy(g->server);
		grpc_completion_queue_shutdown(g->cq);
		while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		           .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(g->cq);
		grpc_shutdown();
		free(g);
		return NULL;
	}
	if (strncmp(addr, "unix:", 5) == 0)
		snprintf(g->target, sizeof g->target, "%s", addr);
	else
		snprintf(g->target, sizeof g->target, "127.0.0.1:%d", port);
	grpc_server_start(g->server);
	return g;
}

const char *fake_gw_target(const fake_gw *g)
{
	return g->target;
}

fake_call *fake_gw_accept(fake_gw *g, int64_t timeout_ms)
{
	if (!g->requested) {
		grpc_call_details_init(&g->details);
		grpc_metadata_array_init(&g->md);
		if (grpc_server_request_call(g->server, &g->new_call, &g->details, &g->md, g->cq,
		                             g->cq, &g->tag_request) != GRPC_CALL_OK)
			return NULL;
		g->requested = true;
	}
	int r = wait_tag(g, &g->tag_request, timeout_ms);
	if (r < 0)
		return NULL; /* still requested; a later accept picks it up */
	g->requested = false;
	if (r == 0) {
		grpc_call_details_destroy(&g->details);
		grpc_metadata_array_destroy(&g->md);
		return NULL;
	}
	fake_call *c = calloc(1, sizeof *c);
	c->g = g;
	c->call = g->new_call;
	c->method = grpc_slice_to_c_string(g->details.method);
	c->md = g->md;
	c->status_details = grpc_empty_slice();
	grpc_call_details_destroy(&g->details);

	grpc_op op;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	if (grpc_call_start_batch(c->call, &op, 1, &c->tag_close, NULL) == GRPC_CALL_OK)
		c->pending |= OP_CLOSE;
	return c;
}

const char *fake_call_method(const fake_call *c)
{
	return c->method;
}

size_t fake_call_metadata(const fake_call *c, const char *key, char *value, size_t size)
{
	size_t n = 0;
	for (size_t i = 0; i < c->md.count; i++) {
		if (grpc_slice_str_cmp(c->md.metadata[i].key, key) != 0)
			continue;
		if (n++ == 0 && value && size) {
			grpc_slice v = c->md.metadata[i].value;
			size_t len =
			    GRPC_SLICE_LENGTH(v) < size - 1 ? GRPC_SLICE_LENGTH(v) : size - 1;
			memcpy(value, GRPC_SLICE_START_PTR(v), len);
			value[len] = '\0';
		}
	}
	return n;
}

ProtobufCMessage *fake_call_recv(fake_call *c, const ProtobufCMessageDescriptor *d,
                                 int64_t timeout_ms)
{
	if (!(c->pending & OP_RECV)) {
		grpc_op op;
		memset(&op, 0, sizeof op);
		op.op = GRPC_OP_RECV_MESSAGE;
		op.data.recv_message.recv_message = &c->recv_bb;
		if (grpc_call_start_batch(c->call, &op, 1, &c->tag_recv, NULL) != GRPC_CALL_OK)
			return NULL;
		c->pending |= OP_RECV;
	}
	int r = wait_tag(c->g, &c->tag_recv, timeout_ms);
	if (r < 0)
		return NULL;
	c->pending &= ~OP_RECV;
	if (!c->recv_bb)
		return NULL;
	ProtobufCMessage *m = NULL;
	spawn_wire_unpack(d, c->recv_bb, NULL, &m);
	grpc_byte_buffer_destroy(c->recv_bb);
	c->recv_bb = NULL;
	return m;
}

void fake_call_grant_batches(fake_call *c)
{
	c->grant_batch = true;
}

bool fake_call_send(fake_call *c, const ProtobufCMessage *m, int64_t timeout_ms)
{
	if (c->pending & OP_SEND)
		return false;
	if (spawn_wire_pack(m, &c->send_bb) != 0)
		return false;
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	size_t n = 0;
	if (!c->sent_md) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		if (c->grant_batch) {
			c->grant_md.key = grpc_slice_from_static_string(SPAWN_LINK_MD_KEY);
			c->grant_md.value = grpc_slice_from_static_string(SPAWN_LINK_MD_BATCH);
			ops[n].data.send_initial_metadata.count = 1;
			ops[n].data.send_initial_metadata.metadata = &c->grant_md;
		}
		n++;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = c->send_bb;
	if (grpc_call_start_batch(c->call, ops, n, &c->tag_send, NULL) != GRPC_CALL_OK) {
		grpc_byte_buffer_destroy(c->send_bb);
		c->send_bb = NULL;
		return false;
	}
	c->sent_md = true;
	c->pending |= OP_SEND;
	int r = wait_tag(c->g, &c->tag_send, timeout_ms);
	if (r < 0)
		return false;
	c->pending &= ~OP_SEND;
	grpc_byte_buffer_destroy(c->send_bb);
	c->send_bb = NULL;
	return r == 1;
}

bool fake_call_finish(fake_call *c, grpc_status_code code, const char *details, int64_t timeout_ms)
{
	grpc_slice_unref(c->status_details);
	c->status_details = grpc_slice_from_copied_string(details ? details : "");
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	size_t n = 0;
	if (!c->sent_md)
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n++].data.send_status_from_server.status_details = &c->status_details;
	if (grpc_call_start_batch(c->call, ops, n, &c->tag_finish, NULL) != GRPC_CALL_OK)
		return false;
	c->sent_md = true;
	c->pending |= OP_FINISH;
	int r = wait_tag(c->g, &c->tag_finish, timeout_ms);
	if (r < 0)
		return false;
	c->pending &= ~OP_FINISH;
	return r == 1;
}

bool fake_call_wait_closed(fake_call *c, int64_t timeout_ms)
{
	if (!(c->pending & OP_CLOSE))
		return c->cancelled != 0;
	if (wait_tag(c->g, &c->tag_close, timeout_ms) < 0)
		return false;
	c->pending &= ~OP_CLOSE;
	return c->cancelled != 0;
}

void fake_call_free(fake_call *c)
{
	if (!c)
		return;
	grpc_call_cancel(c->call, NULL);
	struct {
		unsigned bit;
		void *tag;
	} ops[] = {{OP_RECV, &c->tag_recv},
	           {OP_SEND, &c->tag_send},
	           {OP_FINISH, &c->tag_finish},
	           {OP_CLOSE, &c->tag_close}};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if ((c->pending & ops[i].bit) && wait_tag(c->g, ops[i].tag, 10000) < 0) {
			fprintf(stderr, "fake_gateway: op %u of a cancelled call never ended\n",
			        ops[i].bit);
			abort();
		}
	if (c->recv_bb)
		grpc_byte_buffer_destroy(c->recv_bb);
	if (c->send_bb)
		grpc_byte_buffer_destroy(c->send_bb);
	grpc_slice_unref(c->status_details);
	grpc_metadata_array_destroy(&c->md);
	gpr_free(c->method);
	grpc_call_unref(c->call);
	free(c);
}

void fake_gw_stop(fake_gw *g)
{
	if (!g)
		return;
	grpc_server_shutdown_and_notify(g->server, g->cq, &g->tag_shutdown);
	grpc_server_cancel_all_calls(g->server);
	if (wait_tag(g, &g->tag_shutdown, 10000) < 0) {
		fprintf(stderr, "fake_gateway: server shutdown did not finish\n");
		abort();
	}
	if (g->requested) {
		if (wait_tag(g, &g->tag_request, 10000) == 1)
			grpc_call_unref(g->new_call);
		grpc_call_details_destroy(&g->details);
		grpc_metadata_array_destroy(&g->md);
	}
	grpc_server_destroy(g->server);
	grpc_completion_queue_shutdown(g->cq);
	while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(g->cq);
	grpc_shutdown();
	free(g);
}
