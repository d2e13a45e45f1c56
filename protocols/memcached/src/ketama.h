/*
 * ketama.h - consistent hashing of keys onto servers, as libmemcached's
 * MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED computes it (internal).
 */
#ifndef HP_MC_KETAMA_H
#define HP_MC_KETAMA_H

#include <stddef.h>
#include <stdint.h>

struct hp__mc_point {
    uint32_t hash;
    uint32_t server;
};

struct hp__mc_ring {
    struct hp__mc_point *points;
    size_t n;
};

/* MD5 of data (RFC 1321). */
void hp__mc_md5(const void *data, size_t len, unsigned char out[16]);

/* Build the ring for servers "host" + port, equal weights. @return 0 or -ENOMEM. */
int hp__mc_ring_build(struct hp__mc_ring *ring, const char *const *hosts, const uint16_t *ports,
                      size_t n);

void hp__mc_ring_free(struct hp__mc_ring *ring);

/* The server index for a key. */
uint32_t hp__mc_ring_lookup(const struct hp__mc_ring *ring, const void *key, size_t len);

#endif
