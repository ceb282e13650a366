/*
 * Logging. Lines go to stderr, whole lines in one write so that threads do
 * not interleave. Under systemd (JOURNAL_STREAM is set) each line starts
 * with a "<N>" syslog priority so journald records the level; elsewhere it
 * starts with an ISO-8601 UTC timestamp.
 */
#include "mr_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_component = "meridian";
static _Atomic int log_level = MR_LOG_INFO;
static int log_journald = -1;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int syslog_prio[] = {3, 4, 6, 7};

void mr_log_init(const char *component, mr_log_level level)
{
    log_component = component;
    log_level = level;
    log_journald = getenv("JOURNAL_STREAM") != NULL;
}

int mr_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void mr_log_set_level(mr_log_level level)
{
    log_level = level;
}

int mr_log_enabled(mr_log_level level)
{
    return (int)level <= log_level;
}

void mr_log(mr_log_level level, const char *fmt, ...)
{
    if (!mr_log_enabled(level))
        return;
    char line[2048];
    size_t n;
    if (log_journald == 1) {
        n = (size_t)snprintf(line, sizeof line, "<%d>%s: ", syslog_prio[level], log_component);
    } else {
        struct timeval tv;
        struct tm tm;
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof line - n,
                              ".%03dZ %-5s %s: ", (int)(tv.tv_usec / 1000), level_names[level],
                              log_component);
    }
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
