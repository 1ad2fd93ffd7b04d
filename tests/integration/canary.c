/* canary.c - the well-behaved client beside a hostile peer (canary.h). */
#include "canary.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "harness.h"
#include "itc.h"

bool it_canary_add_counter(spawn_client *c, void *user, char *err, size_t n)
{
	(void)user;
	int64_t total = 0;
	char msg[200] = "";
	int rc = itc_add(c, ITC_COUNTER, 1, 0, &total, msg, sizeof msg);
	if (rc == SPAWN_OK)
		return true;
	snprintf(err, n, "Add: %s: %.150s", spawn_status_name(rc), msg);
	return false;
}

static void *canary_main(void *arg)
{
	it_canary *k = arg;
	for (;;) {
		pthread_mutex_lock(&k->mu);
		bool stop = k->stop;
		pthread_mutex_unlock(&k->mu);
		if (stop)
			break;
		char err[sizeof k->first_err] = "";
		int64_t t0 = it_now_ms();
		bool good = k->call(k->client, k->user, err, sizeof err);
		int64_t took = it_now_ms() - t0;
		pthread_mutex_lock(&k->mu);
		if (good)
			k->ok++;
		else if (!k->failed++)
			memcpy(k->first_err, err, sizeof err);
		if (took > k->worst_ms)
			k->worst_ms = took;
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->mu);
	}
	return NULL;
}

void it_canary_start(it_canary *k, const char *target, it_canary_call call, void *user)
{
	memset(k, 0, sizeof *k);
	k->call = call ? call : it_canary_add_counter;
	k->user = user;
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	ck_assert_int_eq(spawn_client_create(&k->client, target), SPAWN_OK);
	ck_assert_int_eq(pthread_create(&k->th, NULL, canary_main, k), 0);
	k->running = true;
}

void it_canary_progress(it_canary *k, long n)
{
	int64_t end = it_now_ms() + it_ms(20000);
	pthread_mutex_lock(&k->mu);
	long want = k->ok + n;
	while (k->ok < want && !k->failed && it_now_ms() < end) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&k->cv, &k->mu, &ts);
	}
	long ok = k->ok, failed = k->failed;
	pthread_mutex_unlock(&k->mu);
	ck_assert_msg(failed == 0, "the canary failed: %s", k->first_err);
	ck_assert_msg(ok >= want, "the canary made no progress (%ld good calls)", ok);
}

void it_canary_abandon(it_canary *k)
{
	if (!k->running)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = true;
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->th, NULL);
	spawn_client_destroy(k->client);
	k->client = NULL;
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	k->running = false;
}

void it_canary_stop(it_canary *k, long min_ok, int64_t worst_ms)
{
	/* Fewer good calls than asked for: on a loaded machine a short case
	 * may end before the canary's thread ran at all. The gateway must then
	 * still serve it now (it_canary_progress asserts it, failing on any
	 * failed call). */
	pthread_mutex_lock(&k->mu);
	long have = k->ok;
	pthread_mutex_unlock(&k->mu);
	if (k->running && have < min_ok)
		it_canary_progress(k, min_ok - have);
	it_canary_abandon(k);
	fprintf(stderr, "canary: %ld ok, %ld failed, slowest %" PRId64 " ms\n", k->ok, k->failed,
	        k->worst_ms);
	ck_assert_msg(k->failed == 0, "the canary failed %ld time(s), first: %s", k->failed,
	              k->first_err);
	ck_assert_msg(k->ok >= min_ok, "the canary made only %ld calls", k->ok);
	ck_assert_msg(worst_ms <= 0 || k->worst_ms < worst_ms, "a canary call took %" PRId64 " ms",
	              k->worst_ms);
}
