/* ctl_rpc.c - spawnctl's connection to the gateway: one channel with the C
 * SDK's TLS and token handling (sdk/c/security.c, target.c) and
 * synchronous unary calls on a pluck completion queue. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "ctl.h"

int ctl_fail(ctl_err *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	e->code = code;
	return code;
}

int ctl_open(ctl *x, const char *target, const spawn_security_opts *o, ctl_err *e)
{
	grpc_init();
	x->inited = true;
	int rc = spawni_security_init(&x->sec, o);
	if (rc != SPAWN_OK)
		return ctl_fail(e, rc == SPAWN_EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_LOCAL,
		                "the TLS or token options are not usable (see above)");
	rc = spawni_target_init(&x->dial, target, &x->sec);
	if (rc != SPAWN_OK)
		return ctl_fail(e, rc == SPAWN_ENOMEM ? CTL_EXIT_LOCAL : CTL_EXIT_USAGE,
		                "--gateway %s is not a usable target", target);
	grpc_arg args[1 + SPAWNI_SECURITY_MAX_ARGS + SPAWNI_TARGET_MAX_ARGS] = {
	    {.type = GRPC_ARG_STRING,
	     .key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING,
	     .value.string = "spawnctl"},
	};
	size_t n = 1 + spawni_security_args(&x->sec, args + 1);
	n += spawni_target_args(&x->dial, args + n);
	grpc_channel_args ca = {.num_args = n, .args = args};
	x->ch = grpc_channel_create(x->dial.uri, x->sec.creds, &ca);
	x->cq = grpc_completion_queue_create_for_pluck(NULL);
	if (!x->ch || !x->cq)
		return ctl_fail(e, CTL_EXIT_LOCAL, "cannot create a gRPC channel");
	return 0;
}

void ctl_close(ctl *x)
{
	if (!x->inited)
		return;
	if (x->ch)
		grpc_channel_destroy(x->ch);
	if (x->cq) {
		grpc_completion_queue_shutdown(x->cq);
		while (grpc_completion_queue_pluck(x->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME),
		                                   NULL)
		           .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(x->cq);
	}
	spawn_pbjson_destroy(x->pool);
	if (x->contracts)
		gw_contracts_destroy(x->contracts);
	ctl_strv_free(x->fetched, x->n_fetched);
	spawni_target_fini(&x->dial);
	spawni_security_fini(&x->sec);
	grpc_shutdown();
}

/* batch runs ops on call and waits for them (the call's deadline bounds
 * every wait). false: the batch could not start. */
static bool batch(ctl *x, grpc_call *call, grpc_op *ops, size_t n, void *tag)
{
	if (grpc_call_start_batch(call, ops, n, tag, NULL) != GRPC_CALL_OK)
		return false;
	grpc_event ev =
	    grpc_completion_queue_pluck(x->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	return ev.type == GRPC_OP_COMPLETE;
}

static gpr_timespec deadline(ctl *x)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
	                    gpr_time_from_millis(x->timeout_ms, GPR_TIMESPAN));
}

int ctl_unary(ctl *x, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *rd, ProtobufCMessage **out, ctl_err *e)
{
	*out = NULL;
	grpc_byte_buffer *sbuf = NULL, *rbuf = NULL;
	if (spawn_wire_pack(req, &sbuf) != 0)
		return ctl_fail(e, CTL_EXIT_LOCAL, "out of memory");
	grpc_slice path = grpc_slice_from_static_string(method);
	grpc_call *call = grpc_channel_create_call(x->ch, NULL, GRPC_PROPAGATE_DEFAULTS, x->cq,
	                                           path, NULL, deadline(x), NULL);
	grpc_metadata_array md_in, trailers;
	grpc_metadata_array_init(&md_in);
	grpc_metadata_array_init(&trailers);
	grpc_status_code code = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	spawni_security_md(&x->sec, &ops[0]);
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = sbuf;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_in;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &rbuf;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.status = &code;
	ops[5].data.recv_status_on_client.status_details = &details;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailers;
	int rc = 0;
	if (!call || !batch(x, call, ops, 6, call)) {
		rc = ctl_fail(e, CTL_EXIT_LOCAL, "cannot start the call %s", method);
	} else if (code != GRPC_STATUS_OK) {
		char *d = grpc_slice_to_c_string(details);
		rc = ctl_fail(e, code, "%s", d && d[0] ? d : "(no message)");
		gpr_free(d);
	} else if (!rbuf || spawn_wire_unpack(rd, rbuf, NULL, out) != 0) {
		rc = ctl_fail(e, GRPC_STATUS_INTERNAL, "the gateway's answer to %s is not a %s",
		              method, rd->name);
	}
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&md_in);
	grpc_metadata_array_destroy(&trailers);
	if (rbuf)
		grpc_byte_buffer_destroy(rbuf);
	grpc_byte_buffer_destroy(sbuf);
	if (call)
		grpc_call_unref(call);
	return rc;
}
