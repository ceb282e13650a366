/*
 * Logging: one line per event on stderr, as text or as JSON, with a syslog
 * priority prefix under journald. Messages are folded onto one line
 * (libpq's errors span several) and credentials that slip into a message
 * (a conninfo password, a URL's password) are masked.
 */
#ifndef MR_LOG_H
#define MR_LOG_H

#include <stddef.h>

typedef enum { MR_LOG_ERROR = 0, MR_LOG_WARN, MR_LOG_INFO, MR_LOG_DEBUG } mr_log_level;
typedef enum { MR_LOG_TEXT = 0, MR_LOG_JSON } mr_log_format;

/** Set the process-wide component name ("relay", "control"...) and the minimum level. */
void mr_log_init(const char *component, mr_log_level level);
/** Parse "error", "warn", "info" or "debug"; returns -1 when unknown. */
int mr_log_level_parse(const char *s);
void mr_log_set_level(mr_log_level level);
/** The level and format in force (a reload that reads a file it may refuse restores them). */
mr_log_level mr_log_get_level(void);
mr_log_format mr_log_get_format(void);
int mr_log_enabled(mr_log_level level);
/** Parse "text" or "json" (the `log_format` config key); returns -1 when unknown. */
int mr_log_format_parse(const char *s);
/**
 * Text (the default): `2026-11-28T10:00:00.123Z info  relay: message`.
 * JSON: `{"ts":"2026-11-28T10:00:00.123Z","level":"info","component":"relay","msg":"message"}`.
 * Under journald (JOURNAL_STREAM set) either starts with "<N>" instead of the
 * text timestamp, so that the journal records the level.
 */
void mr_log_set_format(mr_log_format format);
void mr_log(mr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Copy `in` to `out` (at most `outlen` bytes with the NUL) folded onto one
 * line with credentials masked: every line break with the blanks around it
 * becomes "; ", trailing breaks and blanks go, other control characters
 * become spaces, and the values of `password=` (libpq conninfo, any case)
 * and of a URL's `user:password@` become "***". mr_log does this to every
 * message; exposed for the tests.
 */
void mr_log_sanitize(const char *in, char *out, size_t outlen);

#define mr_log_error(...) mr_log(MR_LOG_ERROR, __VA_ARGS__)
#define mr_log_warn(...)  mr_log(MR_LOG_WARN, __VA_ARGS__)
#define mr_log_info(...)  mr_log(MR_LOG_INFO, __VA_ARGS__)
#define mr_log_debug(...)                                                                          \
    do {                                                                                           \
        if (mr_log_enabled(MR_LOG_DEBUG))                                                          \
            mr_log(MR_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif
