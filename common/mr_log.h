/* Logging: one line per event on stderr, with a syslog priority prefix under journald. */
#ifndef MR_LOG_H
#define MR_LOG_H

typedef enum { MR_LOG_ERROR = 0, MR_LOG_WARN, MR_LOG_INFO, MR_LOG_DEBUG } mr_log_level;

/** Set the process-wide component name ("relay", "control"...) and the minimum level. */
void mr_log_init(const char *component, mr_log_level level);
/** Parse "error", "warn", "info" or "debug"; returns -1 when unknown. */
int mr_log_level_parse(const char *s);
void mr_log_set_level(mr_log_level level);
int mr_log_enabled(mr_log_level level);
void mr_log(mr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mr_log_error(...) mr_log(MR_LOG_ERROR, __VA_ARGS__)
#define mr_log_warn(...)  mr_log(MR_LOG_WARN, __VA_ARGS__)
#define mr_log_info(...)  mr_log(MR_LOG_INFO, __VA_ARGS__)
#define mr_log_debug(...)                                                                          \
    do {                                                                                           \
        if (mr_log_enabled(MR_LOG_DEBUG))                                                          \
            mr_log(MR_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif
