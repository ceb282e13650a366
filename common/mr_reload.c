/*
 * The refusal half of a reload (mr_reload.h): a walk over two JSON
 * objects that stops at reloadable paths and reports the first level at
 * which anything else differs.
 */
#include "mr_reload.h"
#include "mr_log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* `path` is listed, or lies beneath a listed path. */
static bool covered(const char *path, const char *const *reloadable)
{
    for (size_t i = 0; reloadable[i]; i++) {
        size_t n = strlen(reloadable[i]);
        if (strncmp(path, reloadable[i], n) == 0 && (path[n] == '\0' || path[n] == '.'))
            return true;
    }
    return false;
}

/* A listed path lies beneath `path`: the walk must go down to find it. */
static bool holds_listed(const char *path, const char *const *reloadable)
{
    size_t n = strlen(path);
    for (size_t i = 0; reloadable[i]; i++)
        if (strncmp(reloadable[i], path, n) == 0 && reloadable[i][n] == '.')
            return true;
    return false;
}

static int walk(const json_t *a, const json_t *b, const char *prefix,
                const char *const *reloadable);

static int compare_member(const json_t *a, const json_t *b, const char *path,
                          const char *const *reloadable)
{
    if (covered(path, reloadable))
        return 0;
    if (a && b && json_equal((json_t *)a, (json_t *)b))
        return 0;
    bool objects = (!a || json_is_object(a)) && (!b || json_is_object(b));
    if (objects && holds_listed(path, reloadable))
        return walk(a, b, path, reloadable);
    mr_log_warn("reload: %s changed but needs a restart; the running value stays", path);
    return 1;
}

static int walk(const json_t *a, const json_t *b, const char *prefix, const char *const *reloadable)
{
    int refused = 0;
    const char *key;
    json_t *v;
    char path[512];
    /* Members of `a` (changed or removed), then those only `b` has (added). */
    json_object_foreach((json_t *)a, key, v)
    {
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", key);
        refused += compare_member(v, b ? json_object_get(b, key) : NULL, path, reloadable);
    }
    json_object_foreach((json_t *)b, key, v)
    {
        if (a && json_object_get(a, key))
            continue;
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", key);
        refused += compare_member(NULL, v, path, reloadable);
    }
    return refused;
}

int mr_reload_refuse_changes(const json_t *running, const json_t *next,
                             const char *const *reloadable)
{
    const json_t *a = json_is_object(running) ? running : NULL;
    const json_t *b = json_is_object(next) ? next : NULL;
    return walk(a, b, "", reloadable);
}

json_t *mr_reload_read_json(const char *path)
{
    return json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
}
