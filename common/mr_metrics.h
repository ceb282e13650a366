/*
 * Prometheus metrics. Metrics are statically allocated by their owners,
 * registered once at start, updated with relaxed atomics from any thread and
 * rendered in the text exposition format by the admin server's thread.
 */
#ifndef MR_METRICS_H
#define MR_METRICS_H

#include "mr_buf.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { MR_METRIC_COUNTER, MR_METRIC_GAUGE, MR_METRIC_HISTOGRAM } mr_metric_kind;

#define MR_HIST_MAX_BUCKETS 24

typedef struct mr_metric {
    const char *name;
    const char *help;
    const char *labels; /* e.g. "code=\"rate_limited\"", or NULL */
    mr_metric_kind kind;
    _Atomic int64_t value; /* counter or gauge */
    /* Histogram: bucket upper bounds in seconds, counts per bucket, sum in microseconds. */
    const double *bounds;
    size_t nbounds;
    _Atomic uint64_t buckets[MR_HIST_MAX_BUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
    struct mr_metric *next;
} mr_metric;

#define MR_COUNTER(n, h)                                                                           \
    {                                                                                              \
        .name = (n), .help = (h), .kind = MR_METRIC_COUNTER                                        \
    }
#define MR_COUNTER_L(n, h, l)                                                                      \
    {                                                                                              \
        .name = (n), .help = (h), .labels = (l), .kind = MR_METRIC_COUNTER                         \
    }
#define MR_GAUGE(n, h)                                                                             \
    {                                                                                              \
        .name = (n), .help = (h), .kind = MR_METRIC_GAUGE                                          \
    }
#define MR_GAUGE_L(n, h, l)                                                                        \
    {                                                                                              \
        .name = (n), .help = (h), .labels = (l), .kind = MR_METRIC_GAUGE                           \
    }
#define MR_HISTOGRAM(n, h, b, nb)                                                                  \
    {                                                                                              \
        .name = (n), .help = (h), .kind = MR_METRIC_HISTOGRAM, .bounds = (b), .nbounds = (nb)      \
    }

/** Add a metric to the process registry. Metrics sharing a name must be registered consecutively.
 */
void mr_metric_register(mr_metric *m);
static inline void mr_metric_add(mr_metric *m, int64_t d)
{
    atomic_fetch_add_explicit(&m->value, d, memory_order_relaxed);
}
static inline void mr_metric_inc(mr_metric *m)
{
    mr_metric_add(m, 1);
}
static inline void mr_metric_set(mr_metric *m, int64_t v)
{
    atomic_store_explicit(&m->value, v, memory_order_relaxed);
}
static inline int64_t mr_metric_get(mr_metric *m)
{
    return atomic_load_explicit(&m->value, memory_order_relaxed);
}
/** Record one observation of `us` microseconds into a histogram. */
void mr_metric_observe_us(mr_metric *m, uint64_t us);
/**
 * Render every registered metric, then meridian_build_info{version,commit}
 * and the standard process_* metrics of this process (CPU, memory, file
 * descriptors, start time), which every daemon exports the same way.
 */
void mr_metrics_render(mr_buf *out);

/** The git commit the binary was configured from (12 hex digits), or "unknown". */
const char *mr_build_commit(void);

/** Bucket bounds (seconds) for latencies between 100 us and 10 s. */
extern const double mr_latency_buckets[];
extern const size_t mr_latency_buckets_n;

#endif
