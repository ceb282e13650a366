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

#endif
