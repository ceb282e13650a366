/* Prometheus metric registry: a linked list walked by the renderer under a mutex. */
#include "mr_metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static mr_metric *registry_head, *registry_tail;

const double mr_latency_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
const size_t mr_latency_buckets_n = sizeof mr_latency_buckets / sizeof mr_latency_buckets[0];

void mr_metric_register(mr_metric *m)
{
    if (!m->name || !m->help) {
        /* A metric without a name is a programming error: fail at start, not at scrape. */
        fprintf(stderr, "meridian: metric registered without a name or help text\n");
        abort();
    }
    pthread_mutex_lock(&registry_lock);
    m->next = NULL;
    if (registry_tail)
        registry_tail->next = m;
    else
        registry_head = m;
    registry_tail = m;
    pthread_mutex_unlock(&registry_lock);
}

void mr_metric_observe_us(mr_metric *m, uint64_t us)
{
    double s = (double)us / 1e6;
    for (size_t i = 0; i < m->nbounds && i < MR_HIST_MAX_BUCKETS; i++) {
        if (s <= m->bounds[i]) {
            atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us, us, memory_order_relaxed);
}

static const char *kind_name(mr_metric_kind k)
{
    return k == MR_METRIC_COUNTER ? "counter" : k == MR_METRIC_GAUGE ? "gauge" : "histogram";
}

static void render_histogram(mr_buf *out, mr_metric *m)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < m->nbounds && i < MR_HIST_MAX_BUCKETS; i++) {
        cum += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        mr_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", m->name, m->bounds[i],
                      (unsigned long long)cum);
    }
    uint64_t count = atomic_load_explicit(&m->count, memory_order_relaxed);
    mr_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", m->name, (unsigned long long)count);
    mr_buf_printf(out, "%s_sum %.6f\n", m->name,
                  (double)atomic_load_explicit(&m->sum_us, memory_order_relaxed) / 1e6);
    mr_buf_printf(out, "%s_count %llu\n", m->name, (unsigned long long)count);
}

void mr_metrics_render(mr_buf *out)
{
    pthread_mutex_lock(&registry_lock);
    const char *last = NULL;
    for (mr_metric *m = registry_head; m; m = m->next) {
        if (!last || strcmp(last, m->name) != 0) {
            mr_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                          kind_name(m->kind));
            last = m->name;
        }
        if (m->kind == MR_METRIC_HISTOGRAM) {
            render_histogram(out, m);
        } else if (m->labels) {
            mr_buf_printf(out, "%s{%s} %lld\n", m->name, m->labels, (long long)mr_metric_get(m));
        } else {
            mr_buf_printf(out, "%s %lld\n", m->name, (long long)mr_metric_get(m));
        }
    }
    pthread_mutex_unlock(&registry_lock);
}
