/* timers.c - timer actions (FixedTimerAction) of active actors, and the
 * timer thread (gwi_timer_main: deadlines, timer turns, idle deactivation).
 *
 * While an actor is active, each of its timer actions runs every period
 * (FixedTimerAction.seconds, read as milliseconds as Spawn does) as a turn
 * in its mailbox, with the actor's state and no payload. At most one turn of
 * each timer waits or runs at a time; a failing one is logged and the next
 * tick tries again. Timer turns do not count as activity: an actor nobody
 * calls is deactivated after its idle timeout even while its timers run. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "log.h"
#include "condwait.h"
#include "runtime_int.h"

/* timers_start_locked arms an actor's timer actions when it becomes
 * active (the first tick one period after activation). */
void gwi_timers_start_locked(gw_runtime *rt, gw_actor *a)
{
	gw_actor_timers st;
	gw_registry_timers(rt->reg, a->type, &st);
	if (!st.n || gwi_timers(a))
		return;
	gw_actor_ext *x = gwi_ext(a);
	actor_timers *t = x ? calloc(1, sizeof *t) : NULL;
	if (!t) {
		gwi_ext_trim(a);
		GW_ERROR("actor %s/%s: out of memory; its timer actions do not run",
		         a->type->system, a->name);
		return;
	}
	x->timers = t;
	int64_t now = gwi_now_ms(), first = INT64_MAX;
	t->a = a;
	t->n = st.n;
	for (int i = 0; i < t->n; i++) {
		t->period[i] = st.def[i].period_ms;
		t->due[i] = now + t->period[i];
		memcpy(t->name[i], st.def[i].name, sizeof t->name[i]);
		if (t->due[i] < first)
			first = t->due[i];
	}
	t->t.kind = T_TIMER;
	gw_wheel_arm(&gwi_ashard(a)->wheel, &t->t, first);
}

/* timer_inv makes the invocation of timer action i: the actor's own
 * action with no payload, answered to nobody. */
static void timer_done(gw_inv *inv)
{
	if (inv->err)
		GW_WARN("timer action %s of %s failed: %s (next tick retries)",
		        inv->req->action_name, inv->req->actor->id->name,
		        inv->msg[0] ? inv->msg : gw_strerror(inv->err));
	gw_inv_destroy(inv);
}

static gw_inv *timer_inv(gw_actor *a, int i)
{
	gw_inv *inv = gw_inv_create(0);
	if (!inv)
		return NULL;
	spawn_arena *ar = &inv->arena;
	Spawn__InvocationRequest *rq = spawn_arena_alloc(ar, sizeof *rq);
	Spawn__Actors__ActorSystem *sys = spawn_arena_alloc(ar, sizeof *sys);
	Spawn__Actors__Actor *act = spawn_arena_alloc(ar, sizeof *act);
	Spawn__Actors__ActorId *id = spawn_arena_alloc(ar, sizeof *id);
	Spawn__Noop *noop = spawn_arena_alloc(ar, sizeof *noop);
	if (!rq || !sys || !act || !id || !noop) {
		gw_inv_destroy(inv);
		return NULL;
	}
	spawn__invocation_request__init(rq);
	spawn__actors__actor_system__init(sys);
	spawn__actors__actor__init(act);
	spawn__actors__actor_id__init(id);
	spawn__noop__init(noop);
	sys->name = spawn_arena_strdup(ar, a->type->system);
	id->name = spawn_arena_strdup(ar, a->name);
	id->system = sys->name;
	act->id = id;
	rq->system = sys;
	rq->actor = act;
	rq->action_name = spawn_arena_strdup(ar, gwi_timers(a)->name[i]);
	rq->payload_case = SPAWN__INVOCATION_REQUEST__PAYLOAD_NOOP;
	rq->noop = noop;
	inv->req = rq;
	inv->timer = (int8_t)i;
	inv->done = timer_done;
	inv->actor = a;
	return inv;
}

void gwi_timers_fire_locked(gw_runtime *rt, actor_timers *t, done_list *dl)
{
	gw_actor *a = t->a;
	int64_t now = gwi_now_ms(), next = INT64_MAX;
	for (int i = 0; i < t->n; i++) {
		if (t->due[i] <= now) {
			t->due[i] = now + t->period[i];
			/* At most one turn of each timer waits or runs at a time. */
			if (!(t->pending & (1u << i)) && a->qlen < rt->o.mailbox_max) {
				gw_inv *inv = timer_inv(a, i);
				if (inv) {
					inv->rt = rt;
					t->pending |= (uint8_t)(1u << i);
					gwi_mq_push(rt, a, inv); /* no payload: 0 bytes */
				}
			}
		}
		if (t->due[i] < next)
			next = t->due[i];
	}
	gw_wheel_arm(&gwi_ashard(a)->wheel, &t->t, next);
	if (a->st == A_READY)
		gwi_dispatch_locked(rt, a, dl);
}

/* ---- timers ----------------------------------------------------------------- */

static void fire_locked(gw_runtime *rt, gw_shard *s, gw_tnode *n, done_list *dl)
{
	switch (n->kind) {
	case T_DEADLINE: {
		gw_inv *inv = container_of(n, gw_inv, deadline_t);
		char msg[600];
		snprintf(msg, sizeof msg, "actor %s did not answer '%s' in time", inv->actor->name,
		         inv->req->action_name);
		gwi_take_back_locked(rt, inv, GW_ETIMEDOUT, msg, dl);
		return;
	}
	case T_QDEADLINE:
		gwi_mq_expire_locked(rt, container_of(n, gw_inv, deadline_t), dl);
		return;
	case T_TIMER:
		gwi_timers_fire_locked(rt, container_of(n, actor_timers, t), dl);
		return;
	case T_LEASE:
		gwi_lease_retry_locked(rt, container_of(n, gw_actor, idle_t), dl);
		return;
	case T_IDLE: {
		gw_actor *a = container_of(n, gw_actor, idle_t);
		if (a->forgetting) {
			gwi_forget_try_locked(rt, a); /* may free a */
			return;
		}
		if (a->st != A_READY || a->mq_head || a->inflight)
			return;
		a->deactivating = 1;
		gwi_maybe_release_locked(rt, a);
		return;
	}
	}
}

void *gwi_timer_main(void *arg)
{
	gw_runtime *rt = arg;
	pthread_mutex_lock(&rt->tmu);
	while (!rt->stopping) {
		struct timespec ts = gw_ts_after_ms(CLOCK_MONOTONIC, GW_WHEEL_TICK_MS);
		pthread_cond_timedwait(&rt->tcv, &rt->tmu, &ts);
		if (rt->stopping)
			break;
		pthread_mutex_unlock(&rt->tmu);
		int64_t now = gwi_now_ms();
		/* Resubmit fire-and-forget invocations whose retry is due. */
		gw_inv *due = NULL;
		pthread_mutex_lock(&rt->rmu);
		for (gw_inv **pp = &rt->retry; *pp;) {
			gw_inv *i = *pp;
			if (i->retry_at_ms <= now) {
				*pp = i->next;
				i->next = due;
				due = i;
			} else {
				pp = &i->next;
			}
		}
		pthread_mutex_unlock(&rt->rmu);
		while (due) {
			gw_inv *n = due->next;
			due->next = NULL;
			due->handoff_retry = false; /* set again if it meets a leaving actor */
			gw_runtime_invoke(rt, due);
			due = n;
		}
		for (size_t i = 0; i < rt->nshards; i++) {
			gw_shard *s = &rt->shards[i];
			done_list dl = {0};
			gw_tnode *list;
			pthread_mutex_lock(&s->mu);
			gw_wheel_expire(&s->wheel, now, &list);
			while (list) {
				gw_tnode *n = list;
				list = n->next;
				n->next = NULL;
				fire_locked(rt, s, n, &dl);
			}
			/* Snapshot timers (snapq.c), one at a time: a save never
			 * frees its actor. */
			for (gw_actor *a; (a = gwi_snap_pop_due(s, now));)
				gwi_start_save_locked(rt, a);
			pthread_mutex_unlock(&s->mu);
			gwi_deliver(&dl);
		}
		/* Types whose hosts left a grace period ago (one atomic load
		 * when none is due). */
		gw_registry_sweep(rt->reg);
		pthread_mutex_lock(&rt->tmu);
	}
	pthread_mutex_unlock(&rt->tmu);
	return NULL;
}
