/*
 * Typed reading of JSON configuration with precise errors. A reader keeps
 * the first error it meets ("relay.json: limits.publish_rate: must be ...")
 * so callers read every key and check `mr_cfg_failed()` once at the end.
 */
#ifndef MR_CONFIG_H
#define MR_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct mr_cfg {
    const char *file; /* used as the prefix of every message */
    char err[512];
    bool failed;
} mr_cfg;

/** Load and parse a JSON file; the root must be an object. Returns NULL with c->err set. */
json_t *mr_cfg_load(mr_cfg *c, const char *path);

/** Record an error for `path` (a dotted key path) unless one is already recorded. */
void mr_cfg_error(mr_cfg *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool mr_cfg_failed(const mr_cfg *c);

/*
 * Getters. `obj` may be NULL (then defaults apply). `path` names the object
 * that holds `key` ("" at top level) and is only used for messages. On a type
 * or range error the default is returned and the error recorded.
 */
const char *mr_cfg_str(mr_cfg *c, json_t *obj, const char *path, const char *key, const char *def);
int64_t mr_cfg_int(mr_cfg *c, json_t *obj, const char *path, const char *key, int64_t def,
                   int64_t min, int64_t max);
double mr_cfg_num(mr_cfg *c, json_t *obj, const char *path, const char *key, double def, double min,
                  double max);
bool mr_cfg_bool(mr_cfg *c, json_t *obj, const char *path, const char *key, bool def);
/** Object member, or NULL when absent; an error when present but not an object. */
json_t *mr_cfg_obj(mr_cfg *c, json_t *obj, const char *path, const char *key);
/** Array member of strings, or NULL when absent. A single string is not accepted. */
json_t *mr_cfg_str_array(mr_cfg *c, json_t *obj, const char *path, const char *key);
/** Reject keys of `obj` not listed in the NULL-terminated `allowed`. */
void mr_cfg_check_keys(mr_cfg *c, json_t *obj, const char *path, const char *const *allowed);

/**
 * Parse "host:port", "[v6]:port" or ":port" into host (NUL-terminated, "" for
 * any) and port. Returns 0, or -1 when malformed.
 */
int mr_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
