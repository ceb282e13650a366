/* JSON configuration reader: typed getters that record the first error with its key path. */
#include "mr_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *mr_cfg_load(mr_cfg *c, const char *path)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(c->err, sizeof c->err, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        c->failed = true;
        return NULL;
    }
    if (!json_is_object(root)) {
        snprintf(c->err, sizeof c->err, "%s: the top level must be a JSON object", path);
        c->failed = true;
        json_decref(root);
        return NULL;
    }
    return root;
}

void mr_cfg_error(mr_cfg *c, const char *path, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    int n = snprintf(c->err, sizeof c->err, "%s: %s: ", c->file ? c->file : "config", path);
    if (n < 0 || (size_t)n >= sizeof c->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    /* A message longer than the buffer is cut: the start names the key. */
    (void)vsnprintf(c->err + n, sizeof c->err - (size_t)n, fmt, ap);
    va_end(ap);
}

bool mr_cfg_failed(const mr_cfg *c)
{
    return c->failed;
}

static void key_path(char *out, size_t n, const char *path, const char *key)
{
    if (path && *path)
        snprintf(out, n, "%s.%s", path, key);
    else
        snprintf(out, n, "%s", key);
}

const char *mr_cfg_str(mr_cfg *c, json_t *obj, const char *path, const char *key, const char *def)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v))
        return def;
    if (!json_is_string(v)) {
        char kp[256];
        key_path(kp, sizeof kp, path, key);
        mr_cfg_error(c, kp, "must be a string");
        return def;
    }
    return json_string_value(v);
}

int64_t mr_cfg_int(mr_cfg *c, json_t *obj, const char *path, const char *key, int64_t def,
                   int64_t min, int64_t max)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v))
        return def;
    char kp[256];
    key_path(kp, sizeof kp, path, key);
    if (!json_is_integer(v)) {
        mr_cfg_error(c, kp, "must be an integer");
        return def;
    }
    int64_t x = json_integer_value(v);
    if (x < min || x > max) {
        mr_cfg_error(c, kp, "must be between %lld and %lld (got %lld)", (long long)min,
                     (long long)max, (long long)x);
        return def;
    }
    return x;
}

double mr_cfg_num(mr_cfg *c, json_t *obj, const char *path, const char *key, double def, double min,
                  double max)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v))
        return def;
    char kp[256];
    key_path(kp, sizeof kp, path, key);
    if (!json_is_number(v)) {
        mr_cfg_error(c, kp, "must be a number");
        return def;
    }
    double x = json_number_value(v);
    if (x < min || x > max) {
        mr_cfg_error(c, kp, "must be between %g and %g (got %g)", min, max, x);
        return def;
    }
    return x;
}

bool mr_cfg_bool(mr_cfg *c, json_t *obj, const char *path, const char *key, bool def)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v))
        return def;
    if (!json_is_boolean(v)) {
        char kp[256];
        key_path(kp, sizeof kp, path, key);
        mr_cfg_error(c, kp, "must be true or false");
        return def;
    }
    return json_is_true(v);
}

json_t *mr_cfg_obj(mr_cfg *c, json_t *obj, const char *path, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_object(v)) {
        char kp[256];
        key_path(kp, sizeof kp, path, key);
        mr_cfg_error(c, kp, "must be an object");
        return NULL;
    }
    return v;
}

json_t *mr_cfg_str_array(mr_cfg *c, json_t *obj, const char *path, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v))
        return NULL;
    char kp[256];
    key_path(kp, sizeof kp, path, key);
    if (!json_is_array(v)) {
        mr_cfg_error(c, kp, "must be an array of strings");
        return NULL;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || json_string_length(e) == 0) {
            mr_cfg_error(c, kp, "element %zu must be a non-empty string", i);
            return NULL;
        }
    }
    return v;
}

void mr_cfg_check_keys(mr_cfg *c, json_t *obj, const char *path, const char *const *allowed)
{
    if (!obj)
        return;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = true;
        if (!ok) {
            char kp[256];
            key_path(kp, sizeof kp, path, key);
            mr_cfg_error(c, kp, "unknown key");
            return;
        }
    }
}

int mr_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return -1;
        hl = (size_t)(end - s - 1);
        s++;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl >= hostlen)
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}
