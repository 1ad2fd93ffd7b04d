/* authz.c - who may call what: the checks of the access policy for the
 * client, Admin and Peer services (docs/security.md, "What is enforced"
 * and "Peers"). Split from server.c; the contracts are in server_int.h. */
#include "server_int.h"

#include "edge.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/* ---- authorization (docs/security.md, "What is enforced") ------------------------ */

bool gwi_may_invoke(gw_server *s, const gw_principal *pr, const char *system, const char *actor,
                    const char *ref, const char *action)
{
	if (gw_principal_may_invoke(pr, system, actor, NULL, action))
		return true;
	if (!gw_principal_restricts_actors(pr, system))
		return false; /* refused for the system or the action: no parent helps */
	/* An instance matches its template's name; a new one gets ref. */
	gw_actor_type *t = NULL;
	bool ok;
	if (gw_registry_lookup_instance(s->reg, system, actor, &t, NULL) == GW_OK) {
		ok = gw_principal_may_invoke(pr, system, actor, t->name, action);
		gw_registry_type_rele(t);
	} else {
		ok = ref && gw_principal_may_invoke(pr, system, actor, ref, action);
	}
	return ok;
}

/* gwi_authorize_invoke answers whether the caller of c may invoke action (NULL:
 * Spawn) of system/actor: GRPC_STATUS_OK, or UNAUTHENTICATED /
 * PERMISSION_DENIED with why naming what was refused. One policy lookup
 * under the read lock; nothing allocated here (OpenSSL 3.0 allocates inside
 * the digest's initialisation). */
grpc_status_code gwi_authorize_invoke(gwi_ucall *c, const char *system, const char *actor,
                                      const char *ref, const char *action, char *why, size_t n,
                                      spawn_arena *arena, char **principal)
{
	gw_access *a = c->srv->o.access;
	if (!a)
		return GRPC_STATUS_OK;
	const gw_policy *p = gw_access_read(a);
	const gw_principal *pr = NULL;
	grpc_status_code code = GRPC_STATUS_OK;
	if (gw_authn_call(p, c->call, &c->md, &pr, why, n) != GW_OK) {
		code = GRPC_STATUS_UNAUTHENTICATED;
	} else if (arena && !(*principal = spawn_arena_strdup(arena, gw_principal_name(pr)))) {
		code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(why, n, "out of memory");
	} else if (!gwi_may_invoke(c->srv, pr, system, actor, ref, action)) {
		code = GRPC_STATUS_PERMISSION_DENIED;
		if (action)
			snprintf(why, n, "principal '%s' may not invoke %s/%s.%s",
			         gw_principal_name(pr), system, actor, action);
		else
			snprintf(why, n, "principal '%s' may not spawn %s/%s",
			         gw_principal_name(pr), system, actor);
	}
	gw_access_done(a);
	gwi_refusal_count(c->srv, GW_REFUSAL_INVOKE, code);
	return code;
}

void gwi_refusal_count(struct gw_server *s, int kind, grpc_status_code code)
{
	if (code == GRPC_STATUS_UNAUTHENTICATED || code == GRPC_STATUS_PERMISSION_DENIED)
		atomic_fetch_add_explicit(&s->refusals[kind][code == GRPC_STATUS_UNAUTHENTICATED],
		                          1, memory_order_relaxed);
}

uint64_t gw_server_refusals(const gw_server *s, int kind, bool unauth)
{
	if (kind < 0 || kind >= GW_REFUSAL_KINDS)
		return 0;
	return atomic_load_explicit(&s->refusals[kind][unauth], memory_order_relaxed);
}

static const char *const method_names[GWI_M_COUNT] = {
    [GWI_M_INVOKE] = "Invoke",
    [GWI_M_SPAWN] = "Spawn",
    [GWI_M_GET_STATE] = "GetState",
    [GWI_M_LIST_REVISIONS] = "ListRevisions",
    [GWI_M_RESTORE] = "Restore",
    [GWI_M_KEY_ROTATION] = "KeyRotation",
    [GWI_M_FORGET] = "Forget",
    [GWI_M_FORWARD] = "Forward",
    [GWI_M_PING] = "Ping",
    [GWI_M_PEER_ADMIN] = "Admin",
    [GWI_M_LIST] = "List",
    [GWI_M_MEMBERS] = "Members",
    [GWI_M_LIST_SCHEDULES] = "ListSchedules",
    [GWI_M_CANCEL_SCHEDULE] = "CancelSchedule",
    [GWI_M_PEER_CONTRACTS] = "Contracts",
};

/* gwi_authorize_admin: Admin methods need a principal with admin: true. Every
 * call is logged with its principal and method, refused ones too (each
 * outcome its own log site, so refusals cannot crowd out the record of
 * allowed calls under the rate limit). */
grpc_status_code gwi_authorize_admin(gwi_ucall *c, char *why, size_t n)
{
	const char *m = method_names[c->method];
	gw_access *a = c->srv->o.access;
	if (!a) {
		GW_INFO("admin %s by any caller (no --access policy): allowed", m);
		return GRPC_STATUS_OK;
	}
	const gw_policy *p = gw_access_read(a);
	const gw_principal *pr = NULL;
	grpc_status_code code = GRPC_STATUS_OK;
	if (gw_authn_call(p, c->call, &c->md, &pr, why, n) != GW_OK) {
		code = GRPC_STATUS_UNAUTHENTICATED;
		GW_INFO("admin %s by an unauthenticated caller: refused UNAUTHENTICATED (%s)", m,
		        why);
	} else if (!gw_principal_admin(pr)) {
		code = GRPC_STATUS_PERMISSION_DENIED;
		snprintf(why, n, "principal '%s' is not an admin (Admin.%s)", gw_principal_name(pr),
		         m);
		GW_INFO("admin %s by principal '%s': refused PERMISSION_DENIED", m,
		        gw_principal_name(pr));
	} else {
		GW_INFO("admin %s by principal '%s': allowed", m, gw_principal_name(pr));
	}
	gw_access_done(a);
	gwi_refusal_count(c->srv, GW_REFUSAL_ADMIN, code);
	return code;
}

/* gwi_authorize_peer: with --access, the Peer methods (Forward, Ping, Admin) need a
 * principal with peer: true, another member of the cluster (docs/security.md,
 * "Peers"): no credential or an unknown one is UNAUTHENTICATED, any other
 * principal PERMISSION_DENIED; both answers carry the trailer
 * GW_PEER_REFUSED_KEY, so the entry member tells them from a refusal of the
 * caller's own rights. name gets the peer's principal name ("" without a
 * policy). Refusals are logged (rate-limited: a peer can trigger them). */
grpc_status_code gwi_authorize_peer(gwi_ucall *c, char *name, size_t namelen, char *why, size_t n)
{
	name[0] = 0;
	gw_access *a = c->srv->o.access;
	if (!a)
		return GRPC_STATUS_OK;
	const char *m = method_names[c->method];
	const gw_policy *p = gw_access_read(a);
	const gw_principal *pr = NULL;
	grpc_status_code code = GRPC_STATUS_OK;
	if (gw_authn_call(p, c->call, &c->md, &pr, why, n) != GW_OK) {
		code = GRPC_STATUS_UNAUTHENTICATED;
		GW_WARN("peer %s by an unauthenticated caller: refused UNAUTHENTICATED (%s)", m,
		        why);
	} else if (!gw_principal_peer(pr)) {
		code = GRPC_STATUS_PERMISSION_DENIED;
		snprintf(why, n, "principal '%s' is not a peer of the cluster (Peer.%s)",
		         gw_principal_name(pr), m);
		GW_WARN("peer %s by principal '%s': refused PERMISSION_DENIED (no peer: true)", m,
		        gw_principal_name(pr));
	} else {
		snprintf(name, namelen, "%s", gw_principal_name(pr));
	}
	gw_access_done(a);
	gwi_refusal_count(c->srv, GW_REFUSAL_PEER, code);
	c->peer_refused = code != GRPC_STATUS_OK;
	return code;
}

/* ---- the HTTP/JSON routes (edge.h) ------------------------------------------------ */

bool gw_edge_has_policy(const gw_server *s)
{
	return s->o.access != NULL;
}

/* bearer_token: the token of an Authorization header value, or NULL with
 * why. */
static const char *bearer_token(const char *authorization, char *why, size_t n)
{
	if (!authorization) {
		snprintf(why, n, "no credential: send an Authorization: Bearer TOKEN header");
		return NULL;
	}
	/* "Bearer" is case-insensitive (RFC 6750 uses the RFC 7235 scheme). */
	const char *tok = NULL;
	if (!strncasecmp(authorization, "Bearer ", 7)) {
		tok = authorization + 7;
		while (*tok == ' ')
			tok++;
	}
	if (!tok || !tok[0]) {
		snprintf(why, n, "the Authorization header is not \"Bearer TOKEN\"");
		return NULL;
	}
	return tok;
}

/* token_read finds the principal of the header's bearer token: OK with
 * the policy's read lock held (the caller calls gw_access_done), or
 * UNAUTHENTICATED with why and no lock held. */
static grpc_status_code token_read(gw_access *a, const char *authorization, const gw_principal **pr,
                                   char *why, size_t n)
{
	const char *tok = bearer_token(authorization, why, n);
	if (!tok)
		return GRPC_STATUS_UNAUTHENTICATED;
	const gw_policy *p = gw_access_read(a);
	if (!(*pr = gw_policy_by_token(p, tok, strlen(tok)))) {
		gw_access_done(a);
		snprintf(why, n, "unknown bearer token");
		return GRPC_STATUS_UNAUTHENTICATED;
	}
	return GRPC_STATUS_OK;
}

grpc_status_code gw_edge_authenticate_bearer(gw_server *s, const char *authorization, char *why,
                                             size_t n)
{
	gw_access *a = s->o.access;
	const gw_principal *pr = NULL;
	if (!a)
		return GRPC_STATUS_OK;
	grpc_status_code code = token_read(a, authorization, &pr, why, n);
	if (code == GRPC_STATUS_OK)
		gw_access_done(a);
	return code;
}

grpc_status_code gw_edge_authorize_bearer(gw_server *s, const char *authorization,
                                          const char *system, const char *actor, const char *ref,
                                          const char *action, char *why, size_t n,
                                          spawn_arena *arena, char **principal)
{
	gw_access *a = s->o.access;
	const gw_principal *pr = NULL;
	if (!a)
		return GRPC_STATUS_OK;
	grpc_status_code code = token_read(a, authorization, &pr, why, n);
	if (code != GRPC_STATUS_OK)
		return code;
	if (arena && !(*principal = spawn_arena_strdup(arena, gw_principal_name(pr)))) {
		code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(why, n, "out of memory");
	} else if (!gwi_may_invoke(s, pr, system, actor, ref, action)) {
		code = GRPC_STATUS_PERMISSION_DENIED;
		snprintf(why, n, "principal '%s' may not invoke %s/%s.%s", gw_principal_name(pr),
		         system, actor, action);
	}
	gw_access_done(a);
	return code;
}
