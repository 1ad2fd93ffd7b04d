/* health.c - grpc.health.v1.Health/Check on every listener.
 *
 * The standard health protocol (proto/grpc/health/v1/health.proto), so
 * Kubernetes' grpc probes, load balancers and grpc-health-probe can ask
 * the gateway whether to send it work. What it answers, per service name:
 *
 *   ""                              SERVING when ready, else NOT_SERVING
 *   spawn.gateway.v1.ActorGateway   the same, where that service is served
 *   spawn.gateway.v1.HostGateway    the same, where that service is served
 *   spawn.gateway.v1.Admin          the same, where that service is served
 *   grpc.health.v1.Health           SERVING whenever it answers at all: the
 *                                   process is alive (liveness probes)
 *   anything else                   the call fails NOT_FOUND
 *
 * "Where that service is served": a listener answers for the services it
 * serves (--host-listen: HostGateway only); a --health-listen listener
 * answers for every service of the gateway. Ready = no GW_UNREADY_*
 * condition (server.h): start-up complete, not draining, and in cluster
 * mode a member of the view.
 *
 * Watch is not served: it answers UNIMPLEMENTED (an unregistered method),
 * which gRPC clients doing client-side health checking take as "health
 * checking disabled" (gRPC's health-checking.md). Check is answered on the
 * CQ thread without taking a lock, and needs no credential (no --access
 * rule applies): it reveals readiness and nothing else.
 */
#include <stdio.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "server_int.h"

static const struct {
	const char *name;
	unsigned role; /* GWI_ROLE_* that serves it; 0 = every listener */
	bool live;     /* SERVING whenever it answers (liveness) */
} services[] = {
    {"", 0, false},
    {"grpc.health.v1.Health", 0, true},
    {"spawn.gateway.v1.ActorGateway", GWI_ROLE_CLIENT, false},
    {"spawn.gateway.v1.HostGateway", GWI_ROLE_HOST, false},
    {"spawn.gateway.v1.Admin", GWI_ROLE_ADMIN, false},
};

void gwi_health_handle(gwi_ucall *c)
{
	ProtobufCMessage *m = NULL;
	char why[GW_WC_PATH_MAX + 200];
	if (gwi_unpack_checked(c->srv, &grpc__health__v1__health_check_request__descriptor,
	                       c->payload, NULL, &m, why, sizeof why)) {
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		gwi_ucall_reply(c, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
		return;
	}
	const char *name = ((Grpc__Health__V1__HealthCheckRequest *)m)->service;
	size_t i = 0, n = sizeof services / sizeof services[0];
	while (i < n && (strcmp(services[i].name, name ? name : "") ||
	                 (services[i].role && !(c->grp->reports & services[i].role))))
		i++;
	if (i == n) {
		/* The name passed the ingress checks (UTF-8, no control
		 * characters, bounded): it may go into the answer. */
		snprintf(why, sizeof why, "unknown service '%.200s'", name ? name : "");
		protobuf_c_message_free_unpacked(m, NULL);
		gwi_ucall_reply(c, GRPC_STATUS_NOT_FOUND, why, NULL);
		return;
	}
	protobuf_c_message_free_unpacked(m, NULL);
	Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	r.status = services[i].live || gw_server_unready(c->srv) == 0
	               ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
	               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	gwi_ucall_reply(c, GRPC_STATUS_OK, NULL, &r.base);
}
