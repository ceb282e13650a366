/* Token bucket rate limiter, for per-connection publish limits. */
#ifndef MR_RATELIMIT_H
#define MR_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct mr_ratelimit {
    double rate;   /* tokens added per second */
    double burst;  /* bucket capacity */
    double tokens; /* tokens available now */
    int64_t last_us;
} mr_ratelimit;

/** Start full: a new connection may send `burst` messages at once. */
void mr_ratelimit_init(mr_ratelimit *rl, double rate, double burst, int64_t now_us);
/** Take one token at `now_us`; false when the bucket is empty. */
bool mr_ratelimit_take(mr_ratelimit *rl, int64_t now_us);

#endif
