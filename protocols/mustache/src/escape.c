/*
 * escape.c - HTML escaping of & < > " ' (as &amp; &lt; &gt; &quot; &#39;).
 * On x86-64 (which always has SSE2) 32 bytes are tested at once and the
 * runs between special characters are moved with unaligned 16-byte copies;
 * elsewhere a portable byte loop does the same job. Both write up to
 * HP__MU_SLACK bytes past the returned length (the caller guarantees room).
 */
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#define HP_ESCAPE_SSE2 1
#endif

/* Per byte: the replacement's bytes, its length in the top byte. */
#define E1(c) ((uint64_t)1 << 56 | (uint64_t)(unsigned char)(c))
#define E(len, a, b, c, d, e, f)                                                        \
    ((uint64_t)(len) << 56 | (uint64_t)(a) | (uint64_t)(b) << 8 | (uint64_t)(c) << 16 | \
     (uint64_t)(d) << 24 | (uint64_t)(e) << 32 | (uint64_t)(f) << 40)

static uint64_t table[256];
static const uint64_t specials[5][2] = {
    {'&', E(5, '&', 'a', 'm', 'p', ';', 0)},  {'<', E(4, '&', 'l', 't', ';', 0, 0)},
    {'>', E(4, '&', 'g', 't', ';', 0, 0)},    {'"', E(6, '&', 'q', 'u', 'o', 't', ';')},
    {'\'', E(5, '&', '#', '3', '9', ';', 0)},
};

/* The table is a pure function of constants: building it twice from two
 * threads writes the same values, so no synchronisation is needed beyond
 * the flag being set last (a racing reader falls back to building it too). */
static volatile int table_ready;

static void table_init(void)
{
    if (table_ready)
        return;
    for (unsigned c = 0; c < 256; c++)
        table[c] = E1(c);
    for (unsigned k = 0; k < 5; k++)
        table[specials[k][0]] = specials[k][1];
    table_ready = 1;
}

#ifdef HP_ESCAPE_SSE2
static inline char *put(char *d, unsigned char c)
{
    uint64_t e = table[c];

    memcpy(d, &e, 8); /* x86 is little-endian: the entity bytes come first */
    return d + (e >> 56);
}

static inline unsigned detect16(__m128i x)
{
    /* < and > are the bytes b with b|2 == '>', & and ' those with b|1 == '\''. */
    __m128i lt_gt = _mm_cmpeq_epi8(_mm_or_si128(x, _mm_set1_epi8(2)), _mm_set1_epi8('>'));
    __m128i amp_ap = _mm_cmpeq_epi8(_mm_or_si128(x, _mm_set1_epi8(1)), _mm_set1_epi8('\''));
    __m128i quot = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));

    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(lt_gt, amp_ap), quot));
}

static inline void move32(char *d, const char *s)
{
    __m128i r0 = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i r1 = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));

    _mm_storeu_si128((__m128i *)(void *)d, r0);
    _mm_storeu_si128((__m128i *)(void *)(d + 16), r1);
}

/* Escape the first @p valid (1..32) bytes at s, which has 64 readable bytes. */
static inline char *block32(char *d, const char *s, unsigned valid)
{
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
    unsigned m = detect16(a) | detect16(b) << 16;
    const char *run = s;

    if (valid < 32)
        m &= (1u << valid) - 1;
    _mm_storeu_si128((__m128i *)(void *)d, a);
    _mm_storeu_si128((__m128i *)(void *)(d + 16), b);
    if (!m)
        return d + valid;
    /* Each special: move the run before it (at most 32 bytes), then its entity. */
    while (m) {
        const char *sp = s + __builtin_ctz(m);
        m &= m - 1;
        move32(d, run);
        d += sp - run;
        d = put(d, (unsigned char)*sp);
        run = sp + 1;
    }
    move32(d, run);
    return d + (s + valid - run);
}

size_t hp__escape(char *dst, const char *src, size_t n)
{
    const char *s = src, *end = src + n;
    char *d = dst;

    table_init();
    while ((size_t)(end - s) >= 64) {
        d = block32(d, s, 32);
        s += 32;
    }
    if (s < end) {
        /* The last < 64 bytes go through a padded copy so loads stay in bounds. */
        char tmp[96] = {0};
        size_t rem = (size_t)(end - s);

        memcpy(tmp, s, rem);
        for (size_t off = 0; off < rem; off += 32)
            d = block32(d, tmp + off, (unsigned)(rem - off < 32 ? rem - off : 32));
    }
    return (size_t)(d - dst);
}
#else
static size_t escape_bytes(char *dst, const char *src, size_t n)
{
    char *d = dst;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        uint64_t e = table[c];
        unsigned len = (unsigned)(e >> 56);

        for (unsigned k = 0; k < len; k++)
            d[k] = (char)(e >> (8 * k));
        d += len;
    }
    return (size_t)(d - dst);
}

size_t hp__escape(char *dst, const char *src, size_t n)
{
    const char *s = src, *end = src + n;
    char *d = dst;

    table_init();
    /* Copy runs of plain bytes with memcpy; a special byte gets its entity. */
    while (s < end) {
        const char *r = s;
        while (r < end && (table[(unsigned char)*r] >> 56) == 1)
            r++;
        memcpy(d, s, (size_t)(r - s));
        d += r - s;
        if (r == end)
            break;
        d += escape_bytes(d, r, 1);
        s = r + 1;
    }
    return (size_t)(d - dst);
}
#endif
