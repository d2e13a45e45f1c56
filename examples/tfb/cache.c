/*
 * cache.c - see cache.h. The entries live in one array; a doubly linked
 * list through it (indices, not pointers) orders them by recency, and a
 * chained hash table over the same array finds them by key.
 */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>

#define TFB_CACHE_NONE UINT32_MAX

struct tfb_cache_entry {
    int32_t key, value;
    uint32_t newer, older; /* recency list */
    uint32_t chain;        /* next entry in the same hash bucket */
};

static uint32_t bucket_of(const struct tfb_cache *c, int32_t key)
{
    /* Fibonacci hashing: consecutive ids spread over the buckets. */
    return (uint32_t)(((uint64_t)(uint32_t)key * 0x9E3779B97F4A7C15ull) >> 32) & c->mask;
}

int tfb_cache_init(struct tfb_cache *c, uint32_t capacity)
{
    uint32_t nbuckets = 1;

    if (capacity == 0 || capacity > (1u << 24))
        return -EINVAL;
    while (nbuckets < capacity * 2) /* load factor at most 1/2 */
        nbuckets <<= 1;
    *c = (struct tfb_cache){.capacity = capacity,
                            .mask = nbuckets - 1,
                            .newest = TFB_CACHE_NONE,
                            .oldest = TFB_CACHE_NONE};
    c->entries = malloc(sizeof(*c->entries) * capacity);
    c->buckets = malloc(sizeof(*c->buckets) * nbuckets);
    if (c->entries == NULL || c->buckets == NULL) {
        tfb_cache_free(c);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < nbuckets; i++)
        c->buckets[i] = TFB_CACHE_NONE;
    return 0;
}

void tfb_cache_free(struct tfb_cache *c)
{
    free(c->entries);
    free(c->buckets);
    c->entries = NULL;
    c->buckets = NULL;
    c->capacity = c->count = 0;
}

static uint32_t find(const struct tfb_cache *c, int32_t key)
{
    uint32_t i = c->buckets[bucket_of(c, key)];

    while (i != TFB_CACHE_NONE && c->entries[i].key != key)
        i = c->entries[i].chain;
    return i;
}

static void list_unlink(struct tfb_cache *c, uint32_t i)
{
    struct tfb_cache_entry *e = &c->entries[i];

    if (e->newer != TFB_CACHE_NONE)
        c->entries[e->newer].older = e->older;
    else
        c->newest = e->older;
    if (e->older != TFB_CACHE_NONE)
        c->entries[e->older].newer = e->newer;
    else
        c->oldest = e->newer;
}

static void list_push_newest(struct tfb_cache *c, uint32_t i)
{
    struct tfb_cache_entry *e = &c->entries[i];

    e->newer = TFB_CACHE_NONE;
    e->older = c->newest;
    if (c->newest != TFB_CACHE_NONE)
        c->entries[c->newest].newer = i;
    c->newest = i;
    if (c->oldest == TFB_CACHE_NONE)
        c->oldest = i;
}

static void hash_unlink(struct tfb_cache *c, uint32_t i)
{
    uint32_t *link = &c->buckets[bucket_of(c, c->entries[i].key)];

    while (*link != i)
        link = &c->entries[*link].chain;
    *link = c->entries[i].chain;
}

bool tfb_cache_get(struct tfb_cache *c, int32_t key, int32_t *value)
{
    uint32_t i = find(c, key);

    if (i == TFB_CACHE_NONE) {
        c->misses++;
        return false;
    }
    c->hits++;
    if (c->newest != i) {
        list_unlink(c, i);
        list_push_newest(c, i);
    }
    *value = c->entries[i].value;
    return true;
}

void tfb_cache_put(struct tfb_cache *c, int32_t key, int32_t value)
{
    uint32_t i = find(c, key), b;

    if (i != TFB_CACHE_NONE) {
        c->entries[i].value = value;
        list_unlink(c, i);
        list_push_newest(c, i);
        return;
    }
    if (c->count < c->capacity) {
        i = c->count++;
    } else { /* full: reuse the least recently used entry */
        i = c->oldest;
        list_unlink(c, i);
        hash_unlink(c, i);
        c->evictions++;
    }
    b = bucket_of(c, key);
    c->entries[i].key = key;
    c->entries[i].value = value;
    c->entries[i].chain = c->buckets[b];
    c->buckets[b] = i;
    list_push_newest(c, i);
}
