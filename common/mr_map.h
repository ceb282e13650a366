/*
 * A string-keyed hash map (chained, power-of-two buckets). The map owns a
 * copy of each key; values are borrowed, and an optional free callback in
 * mr_map_free releases them.
 */
#ifndef MR_MAP_H
#define MR_MAP_H

#include <stddef.h>

typedef struct mr_map_entry {
    struct mr_map_entry *next;
    void *value;
    size_t klen;
    unsigned hash;
    char key[]; /* NUL-terminated copy */
} mr_map_entry;

typedef struct mr_map {
    mr_map_entry **buckets;
    size_t nbuckets;
    size_t count;
} mr_map;

void mr_map_init(mr_map *m);
/** Release the map; `free_value` (may be NULL) is called for each value. */
void mr_map_free(mr_map *m, void (*free_value)(void *));
void *mr_map_get(const mr_map *m, const char *key, size_t klen);
/** Insert or replace; returns the previous value or NULL. */
void *mr_map_put(mr_map *m, const char *key, size_t klen, void *value);
/** Remove; returns the removed value or NULL. */
void *mr_map_del(mr_map *m, const char *key, size_t klen);

/**
 * Iterate: `for (mr_map_entry *e = mr_map_first(m, &i); e; e = mr_map_next(m, &i, e))`.
 *
 * Deleting while iterating is allowed in one form: take the next entry
 * first, then delete the current one (mr_map_del frees only that entry and
 * never moves the others; the map does not shrink), and continue from the
 * next. Every entry not deleted is still visited exactly once. Inserting
 * while iterating is not allowed: it may grow the map and rehash it.
 */
mr_map_entry *mr_map_first(const mr_map *m, size_t *bucket);
mr_map_entry *mr_map_next(const mr_map *m, size_t *bucket, mr_map_entry *e);

#endif
