/* tracing.c - W3C trace context through the runtime, its spans, and the
 * per-turn log context (docs/observability.md).
 *
 * An invocation's trace, from submission to free:
 *
 *   (new) ---- gwi_trace_begin -----> BEGUN     [continues the valid traceparent of
 *                                                its request, or starts a trace;
 *                                                its own span id and its host turn's
 *                                                are drawn; the request's traceparent
 *                                                now names its own span]
 *   BEGUN ---- dispatch ------------> SENT      [the task's Context.metadata carries
 *                                                traceparent = trace + turn span]
 *   SENT ----- result / abandon ----> ANSWERED
 *   any ------ gw_inv_destroy ------> (spans)   [invocation, queue, activation, host
 *                                                turn, save: those that happened]
 *
 * Invariants:
 *   1. gwi_trace_begin runs once per invocation (tr.begun): a resubmission
 *      (routing back, an instance looked up, a retry) keeps its span;
 *   2. what a peer sent is never passed on unchecked: an invalid traceparent
 *      is replaced, and its tracestate dropped with it;
 *   3. spans are handed to the exporter without waiting (gw_otlp_submit),
 *      only for sampled traces (flag bit 0: parent-based sampling).
 */
#include <stdio.h>
#include <string.h>

#include "otlp.h"
#include "runtime_int.h"
#include "trace.h"
#include "wirecheck.h"

void gw_runtime_set_otlp(gw_runtime *rt, gw_otlp *e)
{
	rt->otlp = e;
}

void gwi_trace_begin(gw_inv *inv)
{
	gw_inv_trace *t = &inv->tr;
	if (t->begun || !inv->req)
		return;
	t->begun = true;
	t->begin_ns = gw_trace_now_ns();
	Spawn__InvocationRequest *rq = inv->req;
	const char *in = gw_trace_md_get(rq, GW_TRACEPARENT_KEY);
	gw_trace_pos p;
	bool keep_state = false;
	if (gw_trace_parse(in, &p)) {
		t->pos = p;
		memcpy(t->parent, p.span, sizeof t->parent);
		t->has_parent = true;
		const char *ts = gw_trace_md_get(rq, GW_TRACESTATE_KEY);
		keep_state = ts && gw_tracestate_valid(ts);
		if (ts && !keep_state)
			gw_trace_md_set(rq, &inv->arena, GW_TRACESTATE_KEY, NULL, 0);
	} else {
		gw_trace_start(&t->pos);
		if (gw_trace_md_get(rq, GW_TRACESTATE_KEY))
			gw_trace_md_set(rq, &inv->arena, GW_TRACESTATE_KEY, NULL, 0);
	}
	gw_trace_new_span(&t->pos);
	gw_trace_random(t->turn, sizeof t->turn);
	gw_trace_hex(t->pos.trace, 16, t->hex);
	/* What goes on from here (a forward to the owner, a stored schedule or
	 * outbox entry, a pipe's child) continues this invocation's span. A
	 * request already at the entry bound keeps its metadata as it is
	 * (a peer would refuse one entry more); its host still sees the trace
	 * (gwi_trace_task_md). */
	char tp[GW_TRACEPARENT_LEN + 1];
	gw_trace_format(&t->pos, tp);
	gw_trace_md_set(rq, &inv->arena, GW_TRACEPARENT_KEY, tp, GW_WC_METADATA_ENTRIES);
}

void gwi_trace_child(const gw_inv *parent, gw_inv *child, bool keep_valid)
{
	const gw_inv_trace *t = &parent->tr;
	if (!t->begun || !child->req)
		return;
	gw_trace_pos p;
	if (keep_valid && gw_trace_parse(gw_trace_md_get(child->req, GW_TRACEPARENT_KEY), &p))
		return; /* the host passed the context on itself */
	p = t->pos;
	memcpy(p.span, t->turn, sizeof p.span); /* the turn that emitted it */
	char tp[GW_TRACEPARENT_LEN + 1];
	gw_trace_format(&p, tp);
	const char *ts = gw_trace_md_get(parent->req, GW_TRACESTATE_KEY);
	gw_trace_md_set(child->req, &child->arena, GW_TRACEPARENT_KEY, tp, GW_WC_METADATA_ENTRIES);
	gw_trace_md_set(child->req, &child->arena, GW_TRACESTATE_KEY, ts, GW_WC_METADATA_ENTRIES);
}

Spawn__InvocationRequest__MetadataEntry **
gwi_trace_task_md(const gw_inv *inv, spawn_arena *ar, Spawn__InvocationRequest__MetadataEntry **m,
                  size_t *n)
{
	const gw_inv_trace *t = &inv->tr;
	if (!t->begun)
		return m;
	gw_trace_pos p = t->pos;
	memcpy(p.span, t->turn, sizeof p.span);
	char tp[GW_TRACEPARENT_LEN + 1];
	gw_trace_format(&p, tp);
	/* A request view over m, so the metadata helpers apply; m itself (the
	 * request's, maybe) is not changed: a new array is made in ar. */
	Spawn__InvocationRequest view = SPAWN__INVOCATION_REQUEST__INIT;
	view.metadata = m;
	view.n_metadata = *n;
	if (!gw_trace_md_set(&view, ar, GW_TRACEPARENT_KEY, tp, 0))
		return m;
	*n = view.n_metadata;
	return view.metadata;
}

void gwi_log_enter(gwi_log_scope *ls, const gw_inv *inv)
{
	const Spawn__InvocationRequest *rq = inv->req;
	memset(&ls->c, 0, sizeof ls->c);
	if (rq) {
		ls->c.system = rq->system ? rq->system->name : NULL;
		ls->c.actor = rq->actor && rq->actor->id ? rq->actor->id->name : NULL;
		ls->c.action = rq->action_name;
	}
	ls->c.trace_id = inv->tr.begun ? inv->tr.hex : NULL;
	ls->c.request_id = inv->req_id;
	ls->prev = gw_log_ctx_enter(&ls->c);
}

void gwi_log_leave(gwi_log_scope *ls)
{
	gw_log_ctx_leave(ls->prev);
}

/* span_name: what the invocation was, for its own span. */
static const char *span_name(const gw_inv *inv, gw_span_kind *kind)
{
	*kind = GW_SPAN_INTERNAL;
	if (inv->tr.name) {
		*kind = GW_SPAN_CONSUMER;
		return inv->tr.name;
	}
	if (inv->kind == GW_INV_RESTORE)
		return "restore";
	if (inv->kind == GW_INV_WAKE)
		return "wake";
	if (inv->timer >= 0)
		return "timer";
	if (inv->route == 1)
		return "pipe";
	if (inv->route == 2)
		return "forward";
	if (inv->effect || inv->outbox_src) {
		*kind = GW_SPAN_CONSUMER;
		return "effect delivery";
	}
	if (inv->hops > 0) {
		*kind = GW_SPAN_CONSUMER;
		return "broadcast delivery";
	}
	*kind = GW_SPAN_SERVER;
	return inv->local ? "invoke (owner)" : "invoke";
}

static void sub(gw_otlp *e, gw_span *s, const char *name, gw_span_kind kind, const uint8_t *span,
                int64_t start, int64_t end)
{
	s->name = name;
	s->kind = kind;
	memcpy(s->span, span, 8);
	s->start_ns = start;
	s->end_ns = end;
	gw_otlp_submit(e, s);
}

void gwi_trace_end(gw_inv *inv)
{
	const gw_inv_trace *t = &inv->tr;
	gw_otlp *e = inv->rt ? inv->rt->otlp : NULL;
	if (!e || !t->begun || !(t->pos.flags & 0x01))
		return;
	const Spawn__InvocationRequest *rq = inv->req;
	gw_span s = {0};
	memcpy(s.trace, t->pos.trace, 16);
	s.flags = t->pos.flags;
	s.system = rq && rq->system ? rq->system->name : NULL;
	s.actor = rq && rq->actor && rq->actor->id ? rq->actor->id->name : NULL;
	s.action = rq ? rq->action_name : NULL;
	s.tracestate = rq ? gw_trace_md_get(rq, GW_TRACESTATE_KEY) : NULL;
	s.request_id = inv->req_id;
	int64_t now = gw_trace_now_ns();
	/* The invocation's own span, child of what it continues. */
	gw_span_kind kind;
	const char *name = span_name(inv, &kind);
	s.has_parent = t->has_parent;
	memcpy(s.parent, t->parent, 8);
	s.error = inv->err != GW_OK;
	s.msg = s.error ? (inv->msg[0] ? inv->msg : gw_strerror(inv->err)) : NULL;
	sub(e, &s, name, kind, t->pos.span, t->begin_ns, now);
	/* Its stages, children of it. */
	s.has_parent = true;
	memcpy(s.parent, t->pos.span, 8);
	s.error = false;
	s.msg = NULL;
	uint8_t id[8];
	if (t->dispatch_ns) {
		gw_trace_random(id, 8);
		sub(e, &s, "queue", GW_SPAN_INTERNAL, id, t->begin_ns, t->dispatch_ns);
	}
	if (t->act0_ns && t->act1_ns) {
		gw_trace_random(id, 8);
		sub(e, &s, "activation", GW_SPAN_INTERNAL, id, t->act0_ns, t->act1_ns);
	}
	if (t->dispatch_ns) {
		/* The host's spans are children of this one: its id went out in
		 * the task's traceparent. */
		bool answered = t->result_ns != 0;
		s.error = !answered || (inv->err == GW_EHOST);
		s.msg = !answered ? "no answer from the host" : s.error ? inv->msg : NULL;
		sub(e, &s, "host turn", GW_SPAN_CLIENT, t->turn, t->dispatch_ns,
		    answered ? t->result_ns : now);
		s.error = false;
		s.msg = NULL;
	}
	if (t->save0_ns) {
		gw_trace_random(id, 8);
		s.error = !t->save1_ns || inv->err == GW_EUNAVAIL;
		s.msg = s.error ? "save failed" : NULL;
		sub(e, &s, "save", GW_SPAN_INTERNAL, id, t->save0_ns,
		    t->save1_ns ? t->save1_ns : now);
	}
}
