/* itcluster.c - the members of a test cluster (itcluster.h). */
#include "itcluster.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <check.h>

void itcl_certs_load(it_world *w, itcl_certs *c, const char *server, const char *server_name)
{
	char f[64];
	it_cert(w, "ca.pem", c->ca, sizeof c->ca);
	snprintf(f, sizeof f, "%s-chain.pem", server);
	it_cert(w, f, c->scert, sizeof c->scert);
	snprintf(f, sizeof f, "%s.key", server);
	it_cert(w, f, c->skey, sizeof c->skey);
	it_cert(w, "host.pem", c->hcert, sizeof c->hcert);
	it_cert(w, "host.key", c->hkey, sizeof c->hkey);
	it_cert(w, "client.pem", c->ccert, sizeof c->ccert);
	it_cert(w, "client.key", c->ckey, sizeof c->ckey);
	setenv("SPAWN_TLS_CA", c->ca, 1); /* the test's clients */
	setenv("SPAWN_TLS_CERT", c->ccert, 1);
	setenv("SPAWN_TLS_KEY", c->ckey, 1);
	if (server_name)
		setenv("SPAWN_TLS_SERVER_NAME", server_name, 1);
}

void itcl_member_init(it_world *w, itcl_member *m, int i)
{
	char file[32];
	snprintf(file, sizeof file, "view-%d", i);
	it_path(w, file, m->view, sizeof m->view);
	snprintf(m->id, sizeof m->id, "member-%c", 'a' + i);
	m->peer[0] = 0;
	m->policy[0] = 0;
}

it_proc *itcl_tls_host(it_world *w, const char *name, const char *target, const itcl_certs *c,
                       const char *server_name, const char *actions)
{
	char bin[700], e1[800], e2[800], e3[800], e4[300];
	snprintf(bin, sizeof bin, "%s/tests/integration/it-host", it_build_dir());
	snprintf(e1, sizeof e1, "SPAWN_TLS_CA=%s", c->ca);
	snprintf(e2, sizeof e2, "SPAWN_TLS_CERT=%s", c->hcert);
	snprintf(e3, sizeof e3, "SPAWN_TLS_KEY=%s", c->hkey);
	snprintf(e4, sizeof e4, "SPAWN_TLS_SERVER_NAME=%s", server_name ? server_name : "");
	const char *argv[] = {bin,       "--gateway", target,  "--checkpoint",
	                      "--trace", "--actions", actions, NULL};
	const char *env[] = {e1, e2, e3, server_name ? e4 : NULL, NULL};
	it_proc *p = it_spawn(w, name, argv, env);
	ck_assert_msg(it_proc_wait_line(p, "registered", it_ms(15000), NULL, 0),
	              "TLS host %s did not register", name);
	return p;
}

void itcl_write_view(itcl_member *m, int n, int i, uint64_t version, const int *status,
                     const char *const *serves)
{
	char tmp[700];
	snprintf(tmp, sizeof tmp, "%s.tmp", m[i].view);
	FILE *f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "version %" PRIu64 "\nself %s\n", version, m[i].id);
	for (int k = 0; k < n; k++)
		fprintf(f, "member %s %s %d %s\n", m[k].id,
		        m[k].peer[0] ? m[k].peer : m[k].g.target, status ? status[k] : 2,
		        serves && serves[k] ? serves[k] : ITCL_SERVED);
	fclose(f);
	ck_assert_int_eq(rename(tmp, m[i].view), 0);
	it_proc_signal(m[i].g.p, SIGUSR1);
	char want[32], line[64];
	snprintf(want, sizeof want, "view %" PRIu64, version);
	ck_assert_msg(it_proc_wait_line(m[i].g.p, want, it_ms(10000), line, sizeof line),
	              "gateway %d did not apply view %" PRIu64, i, version);
}

void itcl_ran(itcl_member *m, int n, const char *actor, int out[ITCL_MAX])
{
	char prefix[1024];
	snprintf(prefix, sizeof prefix, "invoked %s ", actor);
	for (int i = 0; i < ITCL_MAX; i++)
		out[i] = i < n ? it_proc_count_lines(m[i].host, prefix) : 0;
}

void itcl_stop(itcl_member *m, int n, spawn_client **cl)
{
	for (int i = 0; i < n; i++) {
		spawn_client_destroy(cl[i]);
		cl[i] = NULL;
	}
	for (int i = 0; i < n; i++)
		it_host_stop(m[i].host);
	for (int i = 0; i < n; i++)
		it_gateway_stop(&m[i].g);
}

void itcl_teardown(it_world *w, itdb *db, spawn_client **cl)
{
	for (int i = 0; i < ITCL_MAX; i++) {
		spawn_client_destroy(cl[i]);
		cl[i] = NULL;
	}
	it_world_fini(w);
	itdb_fini(db);
}
