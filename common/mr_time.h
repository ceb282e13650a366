/* Clocks. */
#ifndef MR_TIME_H
#define MR_TIME_H

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

#endif
