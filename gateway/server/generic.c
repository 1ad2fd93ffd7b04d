/* generic.c - calls to methods no registered handler serves.
 *
 * Every group of listeners keeps a few slots for unregistered calls
 * (grpc_server_request_call). Such a call is offered to gwi_generic_take
 * (plain.c): an rpc of a registered contract or grpc.reflection is taken
 * there; every other one is answered UNIMPLEMENTED "unknown method <path>"
 * at once, so a client without a deadline never hangs.
 */
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- calls to methods not registered ------------------------------------------------ */

/* One call to a method no registered handler serves; the struct is the tag.
 *   REQUESTED -- call arrives --> dispatched (gcall_dispatch) --> REPLYING --> freed
 * A call to an rpc of a registered contract or to grpc.reflection is taken
 * by gwi_generic_take (plain.c); every other one is answered UNIMPLEMENTED
 * at once, so a client without a deadline never hangs. */
typedef struct gcall {
	gwi_tag tag;
	gw_server *srv;
	gwi_group *grp; /* borrowed: the group it was requested on */
	gwi_cq *q;
	int phase;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	grpc_slice status;
	int cancelled;
	grpc_op ops[3];
} gcall;

static void gcall_tag(gwi_tag *t, bool ok);

void gwi_gcall_request(gw_server *s, gwi_group *g, gwi_cq *q)
{
	if (atomic_load(&s->shutting_down))
		return;
	gcall *c = calloc(1, sizeof *c);
	if (!c) {
		GW_ERROR("out of memory posting a call slot");
		return;
	}
	c->tag.fn = gcall_tag;
	c->srv = s;
	c->grp = g;
	c->q = q;
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	if (grpc_server_request_call(g->server, &c->call, &c->details, &c->md, q->cq, q->cq,
	                             &c->tag) != GRPC_CALL_OK) {
		grpc_call_details_destroy(&c->details);
		grpc_metadata_array_destroy(&c->md);
		free(c);
	}
}

static void gcall_free(gcall *c)
{
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	if (c->call) {
		grpc_call_unref(c->call);
		gwi_calls_add(c->srv, GWI_CALL_LIGHT, -1);
	}
	free(c);
}

/* gcall_finish answers the call with code and detail (copied), no message. */
static void gcall_finish(gcall *c, grpc_status_code code, const char *detail)
{
	c->phase = GWI_C_REPLYING;
	c->status = grpc_slice_from_copied_string(detail);
	memset(c->ops, 0, sizeof c->ops);
	c->ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	c->ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	c->ops[1].data.send_status_from_server.status = code;
	c->ops[1].data.send_status_from_server.status_details = &c->status;
	c->ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	c->ops[2].data.recv_close_on_server.cancelled = &c->cancelled;
	if (grpc_call_start_batch(c->call, c->ops, 3, &c->tag, NULL) != GRPC_CALL_OK) {
		grpc_slice_unref(c->status);
		gcall_free(c);
	}
}

static void gcall_dispatch(gcall *c)
{
	char method[200];
	size_t n = GRPC_SLICE_LENGTH(c->details.method);
	if (n >= sizeof method)
		n = sizeof method - 1;
	memcpy(method, GRPC_SLICE_START_PTR(c->details.method), n);
	method[n] = 0;
	/* The path is peer input: only printable ASCII goes into the answer. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)method[i] < 0x20 || (unsigned char)method[i] > 0x7e)
			method[i] = '?';
	char detail[256];
	snprintf(detail, sizeof detail, "unknown method %s", method);
	gcall_finish(c, GRPC_STATUS_UNIMPLEMENTED, detail);
}

static void gcall_tag(gwi_tag *t, bool ok)
{
	gcall *c = (gcall *)t;
	if (c->phase == GWI_C_REPLYING) {
		grpc_slice_unref(c->status);
		gcall_free(c);
		return;
	}
	if (!ok) {
		c->call = NULL;
		gcall_free(c);
		return;
	}
	gwi_gcall_request(c->srv, c->grp, c->q);
	if (gwi_generic_take(c->srv, c->q, c->grp, c->call, &c->details, &c->md)) {
		c->call = NULL; /* the taker's now */
		gcall_free(c);
		return;
	}
	gwi_calls_add(c->srv, GWI_CALL_LIGHT, 1); /* answered at once */
	gcall_dispatch(c);
}
