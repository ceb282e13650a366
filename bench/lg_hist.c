/*
 * Log-linear histogram. A value v below LG_HIST_SUB goes to bucket v; above
 * that, the position of its highest set bit picks the major bucket and the
 * next LG_HIST_SUB_BITS bits pick the sub-bucket, so every bucket is at most
 * 1/32 of its value wide. 40 majors cover microseconds up to days.
 */
#include "lg_hist.h"

#include <string.h>

void lg_hist_init(lg_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min_us = UINT64_MAX;
}

static unsigned hist_index(uint64_t v)
{
    if (v < LG_HIST_SUB)
        return (unsigned)v;
    unsigned hb = 63 - (unsigned)__builtin_clzll(v); /* >= LG_HIST_SUB_BITS */
    unsigned major = hb - LG_HIST_SUB_BITS + 1;
    unsigned sub = (unsigned)(v >> (hb - LG_HIST_SUB_BITS)) & (LG_HIST_SUB - 1);
    unsigned idx = major * LG_HIST_SUB + sub;
    return idx < LG_HIST_BUCKETS ? idx : LG_HIST_BUCKETS - 1;
}

/* The largest value that lands in bucket idx. */
static uint64_t hist_upper(unsigned idx)
{
    unsigned major = idx / LG_HIST_SUB, sub = idx % LG_HIST_SUB;
    if (major == 0)
        return sub;
    unsigned shift = major - 1;
    return (((uint64_t)(LG_HIST_SUB + sub) + 1) << shift) - 1;
}

void lg_hist_add(lg_hist *h, int64_t us)
{
    uint64_t v = us < 0 ? 0 : (uint64_t)us;
    h->b[hist_index(v)]++;
    h->count++;
    h->sum_us += v;
    if (v > h->max_us)
        h->max_us = v;
    if (v < h->min_us)
        h->min_us = v;
}

void lg_hist_merge(lg_hist *dst, const lg_hist *src)
{
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
    if (src->min_us < dst->min_us)
        dst->min_us = src->min_us;
}

uint64_t lg_hist_quantile(const lg_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t up = hist_upper(i);
            return up < h->max_us ? up : h->max_us;
        }
    }
    return h->max_us;
}
