/* server_int.h - what server.c and host.c share. Not a public interface. */
#ifndef GW_SERVER_INT_H
#define GW_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <grpc/grpc.h>

#include "server.h"

/* Every completion-queue tag is a gwi_tag: the CQ thread calls fn. */
typedef struct gwi_tag {
	void (*fn)(struct gwi_tag *t, bool ok);
} gwi_tag;

typedef struct gwi_cq {
	grpc_completion_queue *cq;
	pthread_t thread;
	struct gw_server *srv;
	int idx;
} gwi_cq;

struct gw_server {
	gw_server_opts o;
	grpc_server *server;
	gwi_cq *cqs;
	int ncq;
	void *m_invoke, *m_spawn, *m_connect; /* registered methods */
	gw_runtime *rt;                        /* borrowed */
	gw_registry *reg;                      /* borrowed */
	int *ports;
	atomic_bool shutting_down;
	/* live call accounting, for shutdown */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long client_calls, host_calls;
	bool started;
	gwi_tag shutdown_tag;                  /* server shutdown notification */
	bool shutdown_done;                    /* guarded by mu */
};

void gwi_calls_add(struct gw_server *s, bool host, long delta);

/* host.c: one accept slot per call of gwi_host_request. */
void gwi_host_request(struct gw_server *s, gwi_cq *q);

#endif
