/*
 * Logging. Lines go to stderr, whole lines in one write so that threads do
 * not interleave. Under systemd (JOURNAL_STREAM is set) each line starts
 * with a "<N>" syslog priority so journald records the level; elsewhere a
 * text line starts with an ISO-8601 UTC timestamp. The JSON format carries
 * the same four things (ts, level, component, msg) as one object per line
 * for log shippers.
 *
 * Every message is sanitized first (mr_log_sanitize): one event must stay
 * one line whatever a library put in its error text (libpq's errors end in
 * a newline and often carry a second, tab-indented line), and a credential
 * that reached a message by accident (a conninfo or URL in an error) must
 * not reach the log.
 */
#include "mr_log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_MSG_MAX  2048
#define LOG_LINE_MAX (LOG_MSG_MAX * 2 + 256)

static const char *log_component = "meridian";
static _Atomic int log_level = MR_LOG_INFO;
static _Atomic int log_format = MR_LOG_TEXT;
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

mr_log_level mr_log_get_level(void)
{
    return (mr_log_level)log_level;
}

mr_log_format mr_log_get_format(void)
{
    return (mr_log_format)log_format;
}

int mr_log_enabled(mr_log_level level)
{
    return (int)level <= log_level;
}

int mr_log_format_parse(const char *s)
{
    if (strcmp(s, "text") == 0)
        return MR_LOG_TEXT;
    if (strcmp(s, "json") == 0)
        return MR_LOG_JSON;
    return -1;
}

void mr_log_set_format(mr_log_format format)
{
    log_format = format;
}

/* A bounded writer: bytes beyond the capacity (less one for the NUL) are dropped. */
typedef struct out {
    char *p;
    size_t n, cap;
} out;

static void put(out *o, char c)
{
    if (o->n + 1 < o->cap)
        o->p[o->n++] = c;
}

static void puts_n(out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(o, s[i]);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Length of the value of a conninfo keyword at `s`: a quoted value with \-escapes, or a word. */
static size_t conninfo_value_len(const char *s)
{
    size_t i = 0;
    if (s[0] == '\'') {
        for (i = 1; s[i] && s[i] != '\''; i++)
            if (s[i] == '\\' && s[i + 1])
                i++;
        return s[i] ? i + 1 : i;
    }
    while (s[i] && !is_blank(s[i]))
        i++;
    return i;
}

/* At `s` (just after "://"): the length of a `user:password@` password, with its start. */
static bool url_password(const char *s, size_t *start, size_t *len)
{
    size_t end = strcspn(s, "/ ?#;");
    const char *at = memchr(s, '@', end);
    if (!at)
        return false;
    const char *colon = memchr(s, ':', (size_t)(at - s));
    if (!colon)
        return false;
    *start = (size_t)(colon + 1 - s);
    *len = (size_t)(at - colon - 1);
    return true;
}

void mr_log_sanitize(const char *in, char *outbuf, size_t outlen)
{
    if (outlen == 0)
        return;
    out o = {outbuf, 0, outlen};
    size_t i = 0;
    while (in[i]) {
        char c = in[i];
        if (c == '\n' || c == '\r') {
            /* A line break and the blanks around it: "; " if anything follows. */
            while (o.n > 0 && is_blank(o.p[o.n - 1]))
                o.n--;
            while (in[i] == '\n' || in[i] == '\r' || is_blank(in[i]))
                i++;
            if (in[i] && o.n > 0)
                puts_n(&o, "; ", 2);
            continue;
        }
        if (strncasecmp(in + i, "password=", 9) == 0) {
            puts_n(&o, in + i, 9);
            i += 9;
            i += conninfo_value_len(in + i);
            puts_n(&o, "***", 3);
            continue;
        }
        size_t start, len;
        if (c == ':' && strncmp(in + i, "://", 3) == 0 && url_password(in + i + 3, &start, &len)) {
            puts_n(&o, in + i, 3 + start);
            puts_n(&o, "***", 3);
            i += 3 + start + len;
            continue;
        }
        if (((unsigned char)c < 0x20 && c != '\t') || c == 0x7f)
            c = ' ';
        put(&o, c);
        i++;
    }
    while (o.n > 0 && is_blank(o.p[o.n - 1]))
        o.n--;
    o.p[o.n] = '\0';
}

/* `s` as the contents of a JSON string; an escape that would not fit whole is left out. */
static void put_json_str(out *o, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        size_t n;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\t') {
            esc[0] = '\\';
            esc[1] = 't';
            n = 2;
        } else if (c < 0x20) {
            n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else {
            esc[0] = (char)c;
            n = 1;
        }
        /* Room for the escape plus the closing `"}` and the newline. */
        if (o->n + n + 3 >= o->cap)
            return;
        puts_n(o, esc, n);
    }
}

void mr_log(mr_log_level level, const char *fmt, ...)
{
    if (!mr_log_enabled(level))
        return;
    char raw[LOG_MSG_MAX], msg[LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(raw, sizeof raw, fmt, ap); /* a longer message is cut, not lost */
    va_end(ap);
    mr_log_sanitize(raw, msg, sizeof msg);

    char line[LOG_LINE_MAX], ts[40] = "";
    out o = {line, 0, sizeof line - 1}; /* one byte kept for the newline */
    if (log_journald == 1) {
        char prio[8];
        puts_n(&o, prio, (size_t)snprintf(prio, sizeof prio, "<%d>", syslog_prio[level]));
    }
    if (log_journald != 1 || log_format == MR_LOG_JSON) {
        struct timeval tv;
        struct tm tm;
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    }
    if (log_format == MR_LOG_JSON) {
        puts_n(&o, "{\"ts\":\"", 7);
        puts_n(&o, ts, strlen(ts));
        puts_n(&o, "\",\"level\":\"", 11);
        puts_n(&o, level_names[level], strlen(level_names[level]));
        puts_n(&o, "\",\"component\":\"", 15);
        put_json_str(&o, log_component);
        puts_n(&o, "\",\"msg\":\"", 9);
        put_json_str(&o, msg);
        puts_n(&o, "\"}", 2);
    } else {
        char head[128];
        int n = log_journald == 1 ? snprintf(head, sizeof head, "%s: ", log_component)
                                  : snprintf(head, sizeof head, "%s %-5s %s: ", ts,
                                             level_names[level], log_component);
        puts_n(&o, head, n > 0 && (size_t)n < sizeof head ? (size_t)n : 0);
        puts_n(&o, msg, strlen(msg));
    }
    line[o.n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, o.n);
    (void)w;
}
