/*
 * ketama.c - the ketama continuum. For each server, 160 points (equal
 * weights): for i in 0..39 the MD5 of "host:port-i" ("host-i" when the port
 * is memcached's default 11211) gives four 32-bit points, read little-endian
 * from its 16 bytes. A key's MD5 (first four bytes, little-endian) picks the
 * first point at or after it, wrapping around. This is libmemcached's
 * weighted ketama (and the original last.fm ketama), so keys land on the
 * same servers as there.
 */
#include "ketama.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- MD5 (RFC 1321) ---- */

struct md5 {
    uint32_t a, b, c, d;
    uint64_t len;
    unsigned char buf[64];
};

static uint32_t rol(uint32_t x, unsigned s)
{
    return (x << s) | (x >> (32 - s));
}

static void md5_block(struct md5 *m, const unsigned char *p)
{
    static const uint32_t k[64] = {
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391};
    static const unsigned char r[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                        5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                        4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                        6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
    uint32_t w[16], a = m->a, b = m->b, c = m->c, d = m->d;

    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[i * 4] | (uint32_t)p[i * 4 + 1] << 8 | (uint32_t)p[i * 4 + 2] << 16 |
               (uint32_t)p[i * 4 + 3] << 24;
    for (unsigned i = 0; i < 64; i++) {
        uint32_t f, t;
        unsigned g;

        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
        }
        t = d;
        d = c;
        c = b;
        b = b + rol(a + f + k[i] + w[g], r[i]);
        a = t;
    }
    m->a += a;
    m->b += b;
    m->c += c;
    m->d += d;
}

void hp__mc_md5(const void *data, size_t len, unsigned char out[16])
{
    struct md5 m = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0, {0}};
    const unsigned char *p = data;
    size_t fill;
    uint64_t bits = (uint64_t)len * 8;

    m.len = len;
    for (; len >= 64; p += 64, len -= 64)
        md5_block(&m, p);
    memcpy(m.buf, p, len);
    fill = len;
    m.buf[fill++] = 0x80;
    if (fill > 56) {
        memset(m.buf + fill, 0, 64 - fill);
        md5_block(&m, m.buf);
        fill = 0;
    }
    memset(m.buf + fill, 0, 56 - fill);
    for (int i = 0; i < 8; i++)
        m.buf[56 + i] = (unsigned char)(bits >> (8 * i));
    md5_block(&m, m.buf);
    for (int i = 0; i < 4; i++) {
        uint32_t v = i == 0 ? m.a : i == 1 ? m.b : i == 2 ? m.c : m.d;

        out[i * 4] = (unsigned char)v;
        out[i * 4 + 1] = (unsigned char)(v >> 8);
        out[i * 4 + 2] = (unsigned char)(v >> 16);
        out[i * 4 + 3] = (unsigned char)(v >> 24);
    }
}

/* ---- the continuum ---- */

#define POINTS_PER_SERVER 160
#define POINTS_PER_HASH   4

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int cmp_point(const void *a, const void *b)
{
    const struct hp__mc_point *x = a, *y = b;

    return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : 0;
}

int hp__mc_ring_build(struct hp__mc_ring *ring, const char *const *hosts, const uint16_t *ports,
                      size_t n)
{
    size_t k = 0;

    ring->n = 0;
    ring->points = calloc(n * POINTS_PER_SERVER, sizeof(*ring->points));
    if (ring->points == NULL)
        return -ENOMEM;
    for (size_t s = 0; s < n; s++) {
        for (unsigned i = 0; i < POINTS_PER_SERVER / POINTS_PER_HASH; i++) {
            char name[320];
            unsigned char d[16];
            int len = ports[s] == 11211
                          ? snprintf(name, sizeof(name), "%s-%u", hosts[s], i)
                          : snprintf(name, sizeof(name), "%s:%u-%u", hosts[s], ports[s], i);

            if (len < 0 || (size_t)len >= sizeof(name))
                len = (int)sizeof(name) - 1;
            hp__mc_md5(name, (size_t)len, d);
            for (unsigned h = 0; h < POINTS_PER_HASH; h++) {
                ring->points[k].hash = le32(d + h * 4);
                ring->points[k].server = (uint32_t)s;
                k++;
            }
        }
    }
    ring->n = k;
    qsort(ring->points, ring->n, sizeof(*ring->points), cmp_point);
    return 0;
}

void hp__mc_ring_free(struct hp__mc_ring *ring)
{
    free(ring->points);
    ring->points = NULL;
    ring->n = 0;
}

uint32_t hp__mc_ring_lookup(const struct hp__mc_ring *ring, const void *key, size_t len)
{
    unsigned char d[16];
    uint32_t h;
    size_t lo = 0, hi = ring->n;

    if (ring->n == 0)
        return 0;
    hp__mc_md5(key, len, d);
    h = le32(d);
    /* first point with hash >= h */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (ring->points[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return ring->points[lo == ring->n ? 0 : lo].server;
}
