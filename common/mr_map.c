/* String-keyed chained hash map with FNV-1a hashing; grows at load factor 1. */
#include "mr_map.h"
#include "mr_alloc.h"

#include <stdlib.h>
#include <string.h>

static unsigned hash_key(const char *k, size_t n)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

void mr_map_init(mr_map *m)
{
    m->nbuckets = 16;
    m->count = 0;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, so sizeof a pointer */
    m->buckets = mr_calloc(m->nbuckets, sizeof *m->buckets);
}

void mr_map_free(mr_map *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        mr_map_entry *e = m->buckets[i];
        while (e) {
            mr_map_entry *n = e->next;
            if (free_value)
                free_value(e->value);
            free(e);
            e = n;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->count = m->nbuckets = 0;
}

static mr_map_entry **find(const mr_map *m, const char *key, size_t klen, unsigned h)
{
    mr_map_entry **pp = &m->buckets[h & (m->nbuckets - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0))
        pp = &(*pp)->next;
    return pp;
}

void *mr_map_get(const mr_map *m, const char *key, size_t klen)
{
    mr_map_entry **pp = find(m, key, klen, hash_key(key, klen));
    return *pp ? (*pp)->value : NULL;
}

static void grow(mr_map *m)
{
    size_t nb = m->nbuckets * 2;
    mr_map_entry **b = mr_calloc(nb, sizeof *b); /* NOLINT(bugprone-sizeof-expression): as above */
    for (size_t i = 0; i < m->nbuckets; i++) {
        mr_map_entry *e = m->buckets[i];
        while (e) {
            mr_map_entry *n = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

void *mr_map_put(mr_map *m, const char *key, size_t klen, void *value)
{
    unsigned h = hash_key(key, klen);
    mr_map_entry **pp = find(m, key, klen, h);
    if (*pp) {
        void *old = (*pp)->value;
        (*pp)->value = value;
        return old;
    }
    mr_map_entry *e = mr_malloc(sizeof *e + klen + 1);
    e->next = NULL;
    e->value = value;
    e->klen = klen;
    e->hash = h;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    *pp = e;
    if (++m->count > m->nbuckets)
        grow(m);
    return NULL;
}

void *mr_map_del(mr_map *m, const char *key, size_t klen)
{
    mr_map_entry **pp = find(m, key, klen, hash_key(key, klen));
    mr_map_entry *e = *pp;
    if (!e)
        return NULL;
    *pp = e->next;
    void *v = e->value;
    free(e);
    m->count--;
    return v;
}

mr_map_entry *mr_map_first(const mr_map *m, size_t *bucket)
{
    for (*bucket = 0; *bucket < m->nbuckets; (*bucket)++)
        if (m->buckets[*bucket])
            return m->buckets[*bucket];
    return NULL;
}

mr_map_entry *mr_map_next(const mr_map *m, size_t *bucket, mr_map_entry *e)
{
    if (e->next)
        return e->next;
    for ((*bucket)++; *bucket < m->nbuckets; (*bucket)++)
        if (m->buckets[*bucket])
            return m->buckets[*bucket];
    return NULL;
}
