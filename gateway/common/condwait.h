/* condwait.h - timed condition waits: the absolute deadline that
 * pthread_cond_timedwait wants, ms from now on a given clock (the clock
 * the condition variable was made with: CLOCK_REALTIME by default). */
#ifndef GW_CONDWAIT_H
#define GW_CONDWAIT_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* gw_ts_after_ms: now on clock plus ms (a negative ms counts as 0). */
static inline struct timespec gw_ts_after_ms(clockid_t clock, int64_t ms)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	if (ms < 0)
		ms = 0;
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* gw_cond_wait_ms waits on cv (a CLOCK_REALTIME condition, mu held) for
 * at most ms; returns what pthread_cond_timedwait returns. */
static inline int gw_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
	struct timespec ts = gw_ts_after_ms(CLOCK_REALTIME, ms);
	return pthread_cond_timedwait(cv, mu, &ts);
}

#endif
