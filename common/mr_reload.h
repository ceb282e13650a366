/*
 * What a SIGHUP may change. Each daemon reloads its file into a fresh
 * configuration, validates it whole (a bad file changes nothing) and then
 * copies the keys it can apply while running; this module compares the
 * file's JSON with the one the daemon started from and names every other
 * key that changed, so the operator reads which edits wait for a restart.
 */
#ifndef MR_RELOAD_H
#define MR_RELOAD_H

#include <jansson.h>
#include <stddef.h>

/* Exchange two lvalues of one type: a reload swaps a value in, the old one out for freeing. */
#define MR_SWAP(a, b)                                                                              \
    do {                                                                                           \
        __typeof__(a) mr_swap_tmp_ = (a);                                                          \
        (a) = (b);                                                                                 \
        (b) = mr_swap_tmp_;                                                                        \
    } while (0)

/**
 * Log "reload: KEY changed but needs a restart; the running value stays"
 * for every dotted key path that differs between `running` and `next` and
 * lies outside the NULL-terminated `reloadable` list of paths ("auth",
 * "tls.cert", "limits"...; a path covers everything beneath it). Either
 * root may be NULL (treated as {}). Returns how many keys were refused.
 */
int mr_reload_refuse_changes(const json_t *running, const json_t *next,
                             const char *const *reloadable);

/** Parse `path` as JSON (any value); NULL when it is not readable or not JSON. */
json_t *mr_reload_read_json(const char *path);

#endif
