/* Token bucket: refilled lazily on each take from the elapsed time, so it needs no timer. */
#include "mr_ratelimit.h"

void mr_ratelimit_init(mr_ratelimit *rl, double rate, double burst, int64_t now_us)
{
    rl->rate = rate;
    rl->burst = burst;
    rl->tokens = burst;
    rl->last_us = now_us;
}

bool mr_ratelimit_take(mr_ratelimit *rl, int64_t now_us)
{
    if (now_us > rl->last_us) {
        rl->tokens += (double)(now_us - rl->last_us) * rl->rate / 1e6;
        if (rl->tokens > rl->burst)
            rl->tokens = rl->burst;
        rl->last_us = now_us;
    }
    if (rl->tokens < 1.0)
        return false;
    rl->tokens -= 1.0;
    return true;
}
