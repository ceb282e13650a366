/*
 * Allocation wrappers. A relay that cannot allocate a few hundred bytes is
 * in a state no caller can repair, so instead of threading NULL checks
 * through every path we abort loudly here; the supervisor restarts the
 * process and clients resume from their last seq.
 */
#include "mr_alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void mr_oom(size_t n)
{
    fprintf(stderr, "meridian: out of memory allocating %zu bytes\n", n);
    abort();
}

/* What mr_malloc asks for memory; tests swap in one that counts or fails. */
static void *(*malloc_fn)(size_t n) = malloc;

void mr_alloc_set_malloc(void *(*fn)(size_t n))
{
    malloc_fn = fn ? fn : malloc;
}

void *mr_malloc(size_t n)
{
    void *p = malloc_fn(n ? n : 1);
    if (!p)
        mr_oom(n);
    return p;
}

void *mr_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        mr_oom(count * n);
    return p;
}

void *mr_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        mr_oom(n);
    return q;
}

char *mr_strdup(const char *s)
{
    return mr_strndup(s, strlen(s));
}

char *mr_strndup(const char *s, size_t n)
{
    char *p = mr_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void mr_alloc_use_for_jansson(void)
{
    /* free() is right for both: mr_malloc returns what malloc returned. */
    json_set_alloc_funcs(mr_malloc, free);
}
