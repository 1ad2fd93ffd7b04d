/* itproxy.h - a TCP forwarder between a gateway and its database server
 * that can lose the answer to a COMMIT: it forwards the COMMIT, lets the
 * server commit and answer, drops the answer and closes both sides. The
 * gateway then sees its connection break in the middle of a COMMIT that
 * did happen: the ambiguous outcome docs/design/statestore.md describes.
 *
 * COMMIT is recognised in the client's bytes as PostgreSQL's simple query
 * ('Q', length 11, "COMMIT\0") or MariaDB's COM_QUERY (0x03 "COMMIT"), the
 * way libpq's PQexec("COMMIT") and mysql_commit() send it.
 *
 * One thread runs every connection with poll; the test arms it and waits
 * for the cut on a condition variable (bounded).
 */
#ifndef SPAWN_TESTS_IT_ITPROXY_H
#define SPAWN_TESTS_IT_ITPROXY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct itp itp;

/* itp_start listens on 127.0.0.1 (a free port) and forwards every
 * connection to 127.0.0.1:server_port. Asserts. */
itp *itp_start(int server_port);

/* itp_blackhole on: from now on nothing passes either way (connections
 * stay open, new ones are accepted and never answered: a database that
 * stopped answering, or a cut network). off: every connection is closed
 * and new ones reach the server again. */
void itp_blackhole(itp *p, bool on);

/* itp_port is the port the proxy listens on. */
int itp_port(const itp *p);

/* itp_arm makes the proxy cut the next n connections that send a COMMIT
 * (after the server answered it). */
void itp_arm(itp *p, int n);

/* itp_wait_cuts waits until n cuts in all have happened. False on timeout. */
bool itp_wait_cuts(itp *p, int n, int64_t timeout_ms);

/* itp_stop closes every connection and the listener, joins the thread and
 * frees p. Accepts NULL. */
void itp_stop(itp *p);

#endif
