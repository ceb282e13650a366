/*
 * Latency histogram for the load generator: log-linear buckets (HDR style)
 * over microseconds, fixed size so that worker processes can keep one in
 * shared memory and the parent can merge them without any serialisation.
 */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

/* 32 sub-buckets per power of two keeps the relative error under ~3%. */
#define LG_HIST_SUB_BITS 5
#define LG_HIST_SUB      (1 << LG_HIST_SUB_BITS)
#define LG_HIST_MAJOR    40
#define LG_HIST_BUCKETS  (LG_HIST_MAJOR * LG_HIST_SUB)

typedef struct lg_hist {
    uint64_t count;
    uint64_t sum_us;
    uint64_t max_us;
    uint64_t min_us;
    uint64_t b[LG_HIST_BUCKETS];
} lg_hist;

/** Reset to empty. */
void lg_hist_init(lg_hist *h);
/** Record one value in microseconds; negative values count as 0. */
void lg_hist_add(lg_hist *h, int64_t us);
/** Add every count of `src` into `dst`. */
void lg_hist_merge(lg_hist *dst, const lg_hist *src);
/** The value (us) at quantile q in [0,1]; the upper edge of its bucket, capped at max. */
uint64_t lg_hist_quantile(const lg_hist *h, double q);

#endif
