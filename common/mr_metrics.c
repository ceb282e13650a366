/*
 * Prometheus metric registry: a linked list walked by the renderer under a
 * mutex. The renderer also appends what every daemon exports alike: the
 * build (meridian_build_info) and the process_* metrics of the Prometheus
 * client libraries, read from /proc at scrape time, so dashboards and
 * alerts written for any Prometheus-instrumented service work unchanged.
 */
#include "mr_metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef MERIDIAN_COMMIT
#define MERIDIAN_COMMIT "unknown"
#endif
#ifndef MERIDIAN_VERSION
#define MERIDIAN_VERSION "unknown"
#endif

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

const char *mr_build_commit(void)
{
    return MERIDIAN_COMMIT;
}

/* Seconds since the epoch at which the system booted (btime of /proc/stat), or -1. */
static long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[256];
    long long bt = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    (void)fclose(f); /* opened to read only */
    return bt;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void one_metric(mr_buf *out, const char *name, const char *help, const char *type, double v)
{
    mr_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.15g\n", name, help, name, type, name, v);
}

/*
 * The process_* metrics as the Prometheus client libraries define them.
 * Fields of /proc/self/stat after the command name (which may hold spaces
 * and parentheses, hence the last ')'): 14 utime, 15 stime, 22 starttime
 * (clock ticks since boot), 23 vsize (bytes), 24 rss (pages).
 */
static void render_process(mr_buf *out)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    (void)fclose(f); /* opened to read only */
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long utime, stime, start, vsize;
    long long rss;
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                     "%*d %llu %llu %lld",
                     &utime, &stime, &start, &vsize, &rss) != 5)
        return;
    double tick = (double)sysconf(_SC_CLK_TCK);
    one_metric(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
               "counter", (double)(utime + stime) / tick);
    one_metric(out, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
               (double)rss * (double)sysconf(_SC_PAGESIZE));
    one_metric(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge",
               (double)vsize);
    long long bt = boot_time();
    if (bt >= 0)
        one_metric(out, "process_start_time_seconds",
                   "Start time of the process since unix epoch in seconds.", "gauge",
                   (double)bt + (double)start / tick);
    int fds = open_fds();
    if (fds >= 0)
        one_metric(out, "process_open_fds", "Number of open file descriptors.", "gauge", fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        one_metric(out, "process_max_fds", "Maximum number of open file descriptors.", "gauge",
                   rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
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
    mr_buf_printf(out,
                  "# HELP meridian_build_info The version and git commit this binary was built "
                  "from; always 1.\n# TYPE meridian_build_info gauge\n"
                  "meridian_build_info{version=\"%s\",commit=\"%s\"} 1\n",
                  MERIDIAN_VERSION, mr_build_commit());
    render_process(out);
}
