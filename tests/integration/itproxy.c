/* itproxy.c - see itproxy.h. */
#include "itproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

enum { MAX_PAIRS = 64 };

typedef struct pair {
	int cfd, sfd; /* -1 = unused */
	bool cut;     /* a COMMIT went through: drop the answer, close */
} pair;

struct itp {
	int lfd, port, server_port;
	int wake[2];
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int armed, cuts;       /* guarded by mu */
	bool stop;             /* guarded by mu */
	bool hole, flush;      /* guarded by mu: itp_blackhole */
	pair pairs[MAX_PAIRS]; /* the thread's own */
};

static bool is_commit(const uint8_t *b, size_t n)
{
	/* PostgreSQL: Query message, length 4 + 7, "COMMIT\0". */
	static const uint8_t pg[] = {'Q', 0, 0, 0, 11, 'C', 'O', 'M', 'M', 'I', 'T', 0};
	if (memmem(b, n, pg, sizeof pg))
		return true;
	/* MariaDB: COM_QUERY "COMMIT" (with or without a trailing NUL), not
	 * "... READ COMMITTED". */
	static const uint8_t my[] = {3, 'C', 'O', 'M', 'M', 'I', 'T'};
	const uint8_t *p = memmem(b, n, my, sizeof my);
	if (!p)
		return false;
	size_t end = (size_t)(p - b) + sizeof my;
	return end == n || b[end] == 0;
}

static bool write_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t k = write(fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		b += k;
		n -= (size_t)k;
	}
	return true;
}

static void pair_close(pair *x)
{
	if (x->cfd >= 0)
		close(x->cfd);
	if (x->sfd >= 0)
		close(x->sfd);
	x->cfd = x->sfd = -1;
	x->cut = false;
}

static void accept_one(itp *p, bool hole)
{
	int c = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	pair *x = NULL;
	for (int i = 0; i < MAX_PAIRS && !x; i++)
		if (p->pairs[i].cfd < 0)
			x = &p->pairs[i];
	if (hole && x) {
		/* A black hole: the connection opens and nothing ever answers. */
		x->cfd = c;
		x->sfd = -1;
		x->cut = false;
		return;
	}
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)p->server_port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!x || s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
		/* Server down (or too many connections): the client sees the
		 * connection refused, as without the proxy. */
		close(c);
		if (s >= 0)
			close(s);
		return;
	}
	int one = 1;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	x->cfd = c;
	x->sfd = s;
	x->cut = false;
}

static void *proxy_main(void *arg)
{
	itp *p = arg;
	static uint8_t buf[1 << 16];
	for (;;) {
		struct pollfd fds[2 + 2 * MAX_PAIRS];
		int idx[2 + 2 * MAX_PAIRS];
		nfds_t n = 0;
		fds[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
		fds[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
		for (int i = 0; i < MAX_PAIRS; i++) {
			if (p->pairs[i].cfd < 0)
				continue;
			idx[n] = i;
			fds[n++] = (struct pollfd){.fd = p->pairs[i].cfd, .events = POLLIN};
			if (p->pairs[i].sfd < 0)
				continue;
			idx[n] = i;
			fds[n++] = (struct pollfd){.fd = p->pairs[i].sfd, .events = POLLIN};
		}
		if (poll(fds, n, -1) < 0 && errno != EINTR)
			break;
		pthread_mutex_lock(&p->mu);
		bool stop = p->stop, hole = p->hole, flush = p->flush;
		p->flush = false;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		if (fds[0].revents & POLLIN) {
			char b[16];
			ssize_t r = read(p->wake[0], b, sizeof b);
			(void)r;
		}
		if (flush) {
			/* Out of the black hole: every connection breaks, new ones
			 * reach the server. */
			for (int i = 0; i < MAX_PAIRS; i++)
				pair_close(&p->pairs[i]);
			continue;
		}
		if (fds[1].revents & POLLIN)
			accept_one(p, hole);
		for (nfds_t k = 2; k < n; k++) {
			if (!fds[k].revents)
				continue;
			pair *x = &p->pairs[idx[k]];
			if (x->cfd < 0)
				continue; /* closed earlier in this round */
			bool from_client = fds[k].fd == x->cfd;
			ssize_t r = read(fds[k].fd, buf, sizeof buf);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				pair_close(x);
				continue;
			}
			if (hole)
				continue; /* swallowed both ways */
			if (from_client) {
				pthread_mutex_lock(&p->mu);
				if (p->armed > 0 && !x->cut && is_commit(buf, (size_t)r)) {
					p->armed--;
					x->cut = true;
				}
				pthread_mutex_unlock(&p->mu);
				if (!write_all(x->sfd, buf, (size_t)r))
					pair_close(x);
			} else if (x->cut) {
				/* The server answered the COMMIT: it happened. The
				 * client never hears of it. */
				pair_close(x);
				pthread_mutex_lock(&p->mu);
				p->cuts++;
				pthread_cond_broadcast(&p->cv);
				pthread_mutex_unlock(&p->mu);
			} else if (!write_all(x->cfd, buf, (size_t)r)) {
				pair_close(x);
			}
		}
	}
	for (int i = 0; i < MAX_PAIRS; i++)
		pair_close(&p->pairs[i]);
	return NULL;
}

itp *itp_start(int server_port)
{
	itp *p = calloc(1, sizeof *p);
	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < MAX_PAIRS; i++)
		p->pairs[i].cfd = p->pairs[i].sfd = -1;
	p->server_port = server_port;
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(p->lfd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof sa;
	ck_assert_int_eq(bind(p->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(p->lfd, 64), 0);
	ck_assert_int_eq(getsockname(p->lfd, (struct sockaddr *)&sa, &len), 0);
	p->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pipe2(p->wake, O_CLOEXEC), 0);
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	ck_assert_int_eq(pthread_create(&p->thread, NULL, proxy_main, p), 0);
	return p;
}

int itp_port(const itp *p)
{
	return p->port;
}

void itp_arm(itp *p, int n)
{
	pthread_mutex_lock(&p->mu);
	p->armed += n;
	pthread_mutex_unlock(&p->mu);
}

bool itp_wait_cuts(itp *p, int n, int64_t timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->mu);
	int e = 0;
	while (p->cuts < n && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	bool ok = p->cuts >= n;
	pthread_mutex_unlock(&p->mu);
	return ok;
}

void itp_blackhole(itp *p, bool on)
{
	pthread_mutex_lock(&p->mu);
	p->hole = on;
	p->flush = !on;
	pthread_mutex_unlock(&p->mu);
	char b = 1;
	ssize_t w = write(p->wake[1], &b, 1);
	(void)w;
}

void itp_stop(itp *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_mutex_unlock(&p->mu);
	char b = 1;
	ssize_t w = write(p->wake[1], &b, 1);
	(void)w;
	pthread_join(p->thread, NULL);
	close(p->lfd);
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
