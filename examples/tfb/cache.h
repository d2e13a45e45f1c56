/*
 * A least-recently-used cache of World rows (id -> randomNumber) for the
 * cached-queries test: fixed capacity, O(1) lookups and inserts, and when it
 * is full an insert evicts the entry used longest ago. All memory is taken
 * once, by tfb_cache_init(); nothing is allocated afterwards.
 *
 * One cache per worker (per loop thread): it is not thread-safe.
 */
#ifndef TFB_CACHE_H
#define TFB_CACHE_H

#include <stdbool.h>
#include <stdint.h>

struct tfb_cache_entry;

struct tfb_cache {
    struct tfb_cache_entry *entries; /* capacity slots, the first count in use */
    uint32_t *buckets;               /* hash heads: entry index or TFB_CACHE_NONE */
    uint32_t capacity, count, mask;  /* mask: number of buckets - 1 */
    uint32_t newest, oldest;         /* ends of the recency list */
    uint64_t hits, misses, evictions;
};

/**
 * Make an empty cache for at most @p capacity entries (1..2^24).
 * @return 0, -EINVAL or -ENOMEM.
 */
int tfb_cache_init(struct tfb_cache *c, uint32_t capacity);

/** Free the cache's memory (the struct may be initialised again). */
void tfb_cache_free(struct tfb_cache *c);

/** Look @p key up; a hit becomes the most recently used entry. */
bool tfb_cache_get(struct tfb_cache *c, int32_t key, int32_t *value);

/**
 * Insert or replace @p key, as the most recently used entry. When the cache
 * is full, the least recently used entry goes first.
 */
void tfb_cache_put(struct tfb_cache *c, int32_t key, int32_t value);

#endif
