/* Allocation wrappers: Meridian's out-of-memory policy is to abort. */
#ifndef MR_ALLOC_H
#define MR_ALLOC_H

#include <stddef.h>

/** Like malloc/calloc/realloc/strdup, but never return NULL: on exhaustion they log and abort. */
void *mr_malloc(size_t n);
void *mr_calloc(size_t count, size_t n);
void *mr_realloc(void *p, size_t n);
char *mr_strdup(const char *s);
char *mr_strndup(const char *s, size_t n);

/**
 * Make jansson allocate through mr_malloc, so that out of memory inside a JSON
 * call aborts like everywhere else instead of returning NULL to a caller that
 * may not check. Every daemon and tool calls this first thing in main().
 */
void mr_alloc_use_for_jansson(void);

/**
 * For tests only: the function mr_malloc calls underneath (default malloc),
 * to count allocations or make them fail. Set it before any thread starts.
 */
void mr_alloc_set_malloc(void *(*fn)(size_t n));

#endif
