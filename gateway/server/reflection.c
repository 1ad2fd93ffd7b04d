/* reflection.c - gRPC server reflection, grpc.reflection.v1 and v1alpha.
 *
 * ServerReflectionInfo is a bidirectional stream: each request gets one
 * response, in order. The two versions share their wire format (same
 * messages, same field numbers), so one handler parses both with the v1
 * types. What it answers, from the registered contracts (gateway/contracts,
 * built-in files included):
 *
 *   list_services                  the gateway's services on this listener
 *                                  and every actor service of a contract
 *   file_by_filename               the file and its imports, transitively
 *   file_containing_symbol         the same for the file defining the symbol
 *   file_containing_extension      the same for the extension's file
 *   all_extension_numbers_of_type  the known extension numbers of a message
 *   anything else / not found      error_response NOT_FOUND / INVALID_ARGUMENT
 *
 * With --access, the caller must authenticate (any principal); without a
 * credential the stream ends UNAUTHENTICATED.
 *
 * One stream, one struct (the tags). Exactly one batch is outstanding at a
 * time, so no reference count is needed:
 *
 *   START ---- initial metadata + receive --> RECEIVING
 *   RECEIVING - request --------------------> SENDING   [one response]
 *   SENDING --- sent -----------------------> RECEIVING
 *   RECEIVING - half-close / cancelled -----> CLOSING   [status OK]
 *   SENDING --- failed (cancelled) ---------> CLOSING
 *   CLOSING --- status sent ----------------> (freed)
 *
 * Counted as a light call (server.c): the drain does not wait for it; the
 * shutdown's cancel_all ends it.
 */
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "log.h"

typedef struct rcall {
	gwi_tag tag;
	gw_server *srv;
	gwi_group *grp; /* borrowed */
	grpc_call *call;
	grpc_metadata_array md;
	bool alpha;
	bool closing;
	bool md_sent;           /* initial metadata went out with the first receive */
	grpc_byte_buffer *rbuf; /* owned: the request received */
	grpc_byte_buffer *sbuf; /* owned: the response being sent */
	grpc_slice details;
	int cancelled;
	grpc_op ops[3];
} rcall;

static void rcall_tag(gwi_tag *t, bool ok);

static void rcall_free(rcall *r)
{
	if (r->rbuf)
		grpc_byte_buffer_destroy(r->rbuf);
	if (r->sbuf)
		grpc_byte_buffer_destroy(r->sbuf);
	grpc_metadata_array_destroy(&r->md);
	grpc_call_unref(r->call);
	gwi_calls_add(r->srv, GWI_CALL_LIGHT, -1);
	free(r);
}

static void rcall_close(rcall *r, grpc_status_code code, const char *detail)
{
	r->closing = true;
	r->details = grpc_slice_from_copied_string(detail);
	memset(r->ops, 0, sizeof r->ops);
	size_t n = 0;
	if (!r->md_sent)
		r->ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	r->ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	r->ops[n].data.send_status_from_server.status = code;
	r->ops[n++].data.send_status_from_server.status_details = &r->details;
	r->ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	r->ops[n++].data.recv_close_on_server.cancelled = &r->cancelled;
	grpc_call_error e = grpc_call_start_batch(r->call, r->ops, n, &r->tag, NULL);
	if (e != GRPC_CALL_OK) {
		/* Never leave the client waiting: end the call from here. */
		GW_ERROR("reflection: start_batch for the status failed: %d", e);
		grpc_call_cancel_with_status(r->call, code, detail, NULL);
		grpc_slice_unref(r->details);
		rcall_free(r);
	}
}

static void rcall_recv(rcall *r, bool with_md)
{
	memset(r->ops, 0, sizeof r->ops);
	size_t n = 0;
	if (with_md) {
		r->ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		r->md_sent = true;
	}
	r->ops[n].op = GRPC_OP_RECV_MESSAGE;
	r->ops[n++].data.recv_message.recv_message = &r->rbuf;
	if (grpc_call_start_batch(r->call, r->ops, n, &r->tag, NULL) != GRPC_CALL_OK)
		rcall_close(r, GRPC_STATUS_INTERNAL, "cannot receive");
}

/* The gateway's own services a listener of roles answers reflection for. */
static size_t own_services(unsigned roles, const char **out)
{
	size_t n = 0;
	out[n++] = "grpc.health.v1.Health";
	out[n++] = "grpc.reflection.v1.ServerReflection";
	out[n++] = "grpc.reflection.v1alpha.ServerReflection";
	if (roles & GWI_ROLE_CLIENT)
		out[n++] = "spawn.gateway.v1.ActorGateway";
	if (roles & GWI_ROLE_HOST)
		out[n++] = "spawn.gateway.v1.HostGateway";
	if (roles & GWI_ROLE_ADMIN)
		out[n++] = "spawn.gateway.v1.Admin";
	return n;
}

/* answer fills resp for req; the lists it points into are freed by the
 * caller after packing. */
static void answer(rcall *r, const Grpc__Reflection__V1__ServerReflectionRequest *req,
                   Grpc__Reflection__V1__ServerReflectionResponse *resp, gw_bytes_list *l,
                   Grpc__Reflection__V1__FileDescriptorResponse *fdr,
                   Grpc__Reflection__V1__ListServiceResponse *lsr,
                   Grpc__Reflection__V1__ServiceResponse ***svcs,
                   Grpc__Reflection__V1__ExtensionNumberResponse *enr,
                   Grpc__Reflection__V1__ErrorResponse *er, char *why, size_t wn)
{
	gw_contracts *c = r->srv->o.contracts;
	gw_err err = GW_OK;
	const char *what = "";
	switch (req->message_request_case) {
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
		const char *own[8];
		size_t n = own_services(r->grp->roles, own);
		err = c ? gw_contracts_services(c, own, n, l) : GW_ENOTFOUND;
		if (err)
			break;
		*svcs = calloc(l->n ? l->n : 1, sizeof **svcs);
		Grpc__Reflection__V1__ServiceResponse *one = calloc(l->n ? l->n : 1, sizeof *one);
		if (!*svcs || !one) {
			free(one);
			err = GW_ENOMEM;
			break;
		}
		for (size_t i = 0; i < l->n; i++) {
			grpc__reflection__v1__service_response__init(&one[i]);
			/* list entries are not NUL-terminated: re-own them as strings */
			char *name = realloc(l->data[i], l->len[i] + 1);
			if (!name) {
				err = GW_ENOMEM;
				break;
			}
			name[l->len[i]] = 0;
			l->data[i] = (uint8_t *)name;
			one[i].name = name;
			(*svcs)[i] = &one[i];
		}
		lsr->n_service = l->n;
		lsr->service = *svcs;
		resp->message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
		resp->list_services_response = lsr;
		return;
	}
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		what = req->file_by_filename;
		err = c ? gw_contracts_file_by_name(c, what, l) : GW_ENOTFOUND;
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
		what = req->file_containing_symbol;
		err = c ? gw_contracts_file_by_symbol(c, what, l) : GW_ENOTFOUND;
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
		what = req->file_containing_extension &&
		               req->file_containing_extension->containing_type
		           ? req->file_containing_extension->containing_type
		           : "";
		err = c && req->file_containing_extension
		          ? gw_contracts_file_by_extension(
		                c, what, req->file_containing_extension->extension_number, l)
		          : GW_ENOTFOUND;
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
		what = req->all_extension_numbers_of_type;
		err = c ? gw_contracts_extension_numbers(c, what, l) : GW_ENOTFOUND;
		if (!err) {
			enr->base_type_name = (char *)what;
			enr->n_extension_number = l->n;
			enr->extension_number = calloc(l->n ? l->n : 1, sizeof(int32_t));
			if (!enr->extension_number) {
				err = GW_ENOMEM;
				break;
			}
			for (size_t i = 0; i < l->n; i++) {
				const uint8_t *b = l->data[i];
				enr->extension_number[i] =
				    (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 |
				              (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
			}
			resp->message_response_case =
			    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
			resp->all_extension_numbers_response = enr;
			return;
		}
		break;
	default:
		er->error_code = GRPC_STATUS_INVALID_ARGUMENT;
		er->error_message = "the request names no query";
		resp->message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
		resp->error_response = er;
		return;
	}
	if (err) {
		/* The name passed the ingress checks: it may go into the answer. */
		er->error_code =
		    err == GW_ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_NOT_FOUND;
		snprintf(why, wn, "%s: '%.300s'", err == GW_ENOMEM ? "out of memory" : "not found",
		         what ? what : "");
		er->error_message = why;
		resp->message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
		resp->error_response = er;
		return;
	}
	fdr->n_file_descriptor_proto = l->n;
	fdr->file_descriptor_proto = calloc(l->n ? l->n : 1, sizeof *fdr->file_descriptor_proto);
	if (!fdr->file_descriptor_proto) {
		er->error_code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		er->error_message = "out of memory";
		resp->message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
		resp->error_response = er;
		return;
	}
	for (size_t i = 0; i < l->n; i++)
		fdr->file_descriptor_proto[i] = (ProtobufCBinaryData){l->len[i], l->data[i]};
	resp->message_response_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
	resp->file_descriptor_response = fdr;
}

/* handle answers the request in r->rbuf with one response. */
static void handle(rcall *r)
{
	ProtobufCMessage *m = NULL;
	char why[GW_WC_PATH_MAX + 400];
	gw_err bad =
	    gwi_unpack_checked(r->srv, &grpc__reflection__v1__server_reflection_request__descriptor,
	                       r->rbuf, NULL, &m, why, sizeof why);
	grpc_byte_buffer_destroy(r->rbuf);
	r->rbuf = NULL;
	if (bad) {
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		rcall_close(r, GRPC_STATUS_INVALID_ARGUMENT, why);
		return;
	}
	Grpc__Reflection__V1__ServerReflectionRequest *req = (void *)m;
	Grpc__Reflection__V1__ServerReflectionResponse resp =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	Grpc__Reflection__V1__FileDescriptorResponse fdr =
	    GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	Grpc__Reflection__V1__ListServiceResponse lsr =
	    GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1__ExtensionNumberResponse enr =
	    GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
	Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
	Grpc__Reflection__V1__ServiceResponse **svcs = NULL;
	gw_bytes_list l = {0};
	char ewhy[400];
	resp.valid_host = req->host;
	resp.original_request = req;
	answer(r, req, &resp, &l, &fdr, &lsr, &svcs, &enr, &er, ewhy, sizeof ewhy);
	gw_err perr = spawn_wire_pack(&resp.base, &r->sbuf) ? GW_ENOMEM : GW_OK;
	if (svcs)
		free(svcs[0]);
	free(svcs);
	free(fdr.file_descriptor_proto);
	free(enr.extension_number);
	gw_bytes_list_fini(&l);
	protobuf_c_message_free_unpacked(m, NULL);
	if (perr) {
		rcall_close(r, GRPC_STATUS_RESOURCE_EXHAUSTED,
		            "out of memory packing the response");
		return;
	}
	memset(r->ops, 0, sizeof r->ops);
	r->ops[0].op = GRPC_OP_SEND_MESSAGE;
	r->ops[0].data.send_message.send_message = r->sbuf;
	if (grpc_call_start_batch(r->call, r->ops, 1, &r->tag, NULL) != GRPC_CALL_OK)
		rcall_close(r, GRPC_STATUS_INTERNAL, "cannot send");
}

static void rcall_tag(gwi_tag *t, bool ok)
{
	rcall *r = (rcall *)t;
	if (r->closing) {
		grpc_slice_unref(r->details);
		rcall_free(r);
		return;
	}
	if (r->sbuf) {
		/* A response went out (or failed: the stream is gone). */
		grpc_byte_buffer_destroy(r->sbuf);
		r->sbuf = NULL;
		if (!ok)
			rcall_close(r, GRPC_STATUS_CANCELLED, "cancelled");
		else
			rcall_recv(r, false);
		return;
	}
	if (!ok || !r->rbuf) {
		rcall_close(r, GRPC_STATUS_OK, ""); /* the client half-closed */
		return;
	}
	handle(r);
}

void gwi_reflection_start(gw_server *s, gwi_group *g, grpc_call *call, grpc_metadata_array *md,
                          bool alpha)
{
	gwi_calls_add(s, GWI_CALL_LIGHT, 1);
	rcall *r = calloc(1, sizeof *r);
	if (!r) {
		GW_ERROR("out of memory starting a reflection stream");
		grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory",
		                             NULL);
		grpc_call_unref(call);
		gwi_calls_add(s, GWI_CALL_LIGHT, -1);
		return;
	}
	r->tag.fn = rcall_tag;
	r->srv = s;
	r->grp = g;
	r->call = call;
	r->alpha = alpha;
	r->md = *md;
	grpc_metadata_array_init(md);
	gw_access *a = s->o.access;
	if (a) {
		char why[300];
		const gw_principal *pr = NULL;
		const gw_policy *p = gw_access_read(a);
		gw_err err = gw_authn_call(p, r->call, &r->md, &pr, why, sizeof why);
		gw_access_done(a);
		if (err) {
			rcall_close(r, GRPC_STATUS_UNAUTHENTICATED, why);
			return;
		}
	}
	rcall_recv(r, true);
}
