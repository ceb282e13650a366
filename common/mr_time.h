/* Clocks. */
#ifndef MR_TIME_H
#define MR_TIME_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/** Monotonic microseconds, for intervals. */
static inline int64_t mr_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/** Wall-clock milliseconds since the epoch, for timestamps users see. */
static inline int64_t mr_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/**
 * Initialise a condition variable whose timed waits are measured on
 * CLOCK_MONOTONIC. The default clock, CLOCK_REALTIME, follows the wall
 * clock: a step backwards (NTP, an operator) would stretch every wait by
 * the size of the step. Pair it with mr_deadline_ms().
 */
static inline int mr_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc == 0)
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

/** The CLOCK_MONOTONIC instant `ms` milliseconds from now, for pthread_cond_timedwait(). */
static inline struct timespec mr_deadline_ms(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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

#endif
