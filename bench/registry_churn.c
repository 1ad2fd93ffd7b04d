/* registry_churn.c - hosts that register actor types and leave, one after
 * the other (bench/registry_churn.sh measures the gateway's RSS around it).
 *
 *   bench-registry-churn TARGET HOSTS ACTORS [PREFIX]
 *
 * Each of HOSTS connections registers system "churn" with ACTORS NAMED,
 * stateful actors named PREFIX-h<i>-a<j> (every host its own names, as
 * deployments that rename their actors), waits for the gateway's answer,
 * and closes its stream. Prints "registered HOSTS x ACTORS" and exits 0,
 * or 1 if a registration is not answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "raw.h"
#include "wire.h"

static int register_one(const char *target, const char *prefix, int host, int actors)
{
	Spawn__Actors__Action act = SPAWN__ACTORS__ACTION__INIT, *acts[1] = {&act};
	act.name = "Add";
	Spawn__Actors__ActorSettings st = SPAWN__ACTORS__ACTOR_SETTINGS__INIT;
	st.kind = SPAWN__ACTORS__KIND__NAMED;
	st.stateful = true;
	st.state_type = "type.googleapis.com/churn.State";
	Spawn__Actors__ActorId *ids = calloc((size_t)actors, sizeof *ids);
	Spawn__Actors__Actor *as = calloc((size_t)actors, sizeof *as);
	Spawn__Actors__Registry__ActorsEntry *es = calloc((size_t)actors, sizeof *es);
	Spawn__Actors__Registry__ActorsEntry **ep = calloc((size_t)actors, sizeof *ep);
	char(*names)[48] = calloc((size_t)actors, sizeof *names);
	if (!ids || !as || !es || !ep || !names)
		return 1;
	for (int j = 0; j < actors; j++) {
		snprintf(names[j], sizeof names[j], "%s-h%d-a%d", prefix, host, j);
		spawn__actors__actor_id__init(&ids[j]);
		ids[j].name = names[j];
		ids[j].system = "churn";
		spawn__actors__actor__init(&as[j]);
		as[j].id = &ids[j];
		as[j].settings = &st;
		as[j].n_actions = 1;
		as[j].actions = acts;
		spawn__actors__registry__actors_entry__init(&es[j]);
		es[j].key = names[j];
		es[j].value = &as[j];
		ep[j] = &es[j];
	}
	Spawn__Actors__Registry reg = SPAWN__ACTORS__REGISTRY__INIT;
	reg.n_actors = (size_t)actors;
	reg.actors = ep;
	Spawn__Actors__ActorSystem sys = SPAWN__ACTORS__ACTOR_SYSTEM__INIT;
	sys.name = "churn";
	sys.registry = &reg;
	Spawn__RegistrationRequest rr = SPAWN__REGISTRATION_REQUEST__INIT;
	rr.actor_system = &sys;
	Spawn__Gateway__V1__HostMessage hm = SPAWN__GATEWAY__V1__HOST_MESSAGE__INIT;
	hm.msg_case = SPAWN__GATEWAY__V1__HOST_MESSAGE__MSG_REGISTRATION;
	hm.registration = &rr;
	int rc = 1;
	raw_stream *s = raw_stream_open(target, RAW_METHOD_CONNECT, 60000);
	if (s && raw_stream_send_msg(s, &hm.base, 60000)) {
		ProtobufCMessage *m =
		    raw_stream_recv(s, &spawn__gateway__v1__gateway_message__descriptor, 60000);
		if (m) {
			rc = 0;
			protobuf_c_message_free_unpacked(m, NULL);
		}
	}
	raw_stream_close(s);
	free(ids);
	free(as);
	free(es);
	free(ep);
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s TARGET HOSTS ACTORS [PREFIX]\n", argv[0]);
		return 2;
	}
	int hosts = atoi(argv[2]), actors = atoi(argv[3]);
	const char *prefix = argc > 4 ? argv[4] : "c";
	grpc_init();
	for (int i = 0; i < hosts; i++)
		if (register_one(argv[1], prefix, i, actors)) {
			fprintf(stderr, "registration %d not answered\n", i);
			grpc_shutdown();
			return 1;
		}
	printf("registered %d x %d\n", hosts, actors);
	grpc_shutdown();
	return 0;
}
