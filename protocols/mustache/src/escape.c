/*
 * escape.c - HTML escaping of & < > " ' (as &amp; &lt; &gt; &quot; &#39;).
 *
 * On x86-64 the input is scanned 32 bytes at a time (SSE2, which every
 * x86-64 has, or AVX2 when the CPU has it, chosen once at run time): the
 * block is stored to the output first, then the first byte in it that may
 * need escaping is looked up. The vector test is a superset (every byte in
 * 0x22..0x3e) that costs two operations; a candidate that needs no escaping
 * (a digit, say) is skipped by its table entry, a real one gets its entity
 * written over the stored copy and the scan restarts after it. Elsewhere a
 * portable loop copies runs with memcpy.
 *
 * Every path may write up to HP__MU_SLACK bytes past the returned length;
 * the caller guarantees room for 6 * n + HP__MU_SLACK bytes.
 */
#include <pthread.h>
#include <string.h>

#include "internal.h"

/* HP_MUSTACHE_NO_AVX2 (a build-time define, for measuring) keeps to SSE2. */
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HP_ESCAPE_X86    1
#define HP__TARGET_AVX2  __attribute__((target("avx2,bmi")))
#define HP__TARGET_XSAVE __attribute__((target("xsave")))
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
static pthread_once_t once = PTHREAD_ONCE_INIT;

#ifdef HP_ESCAPE_X86
static bool use_avx2;
#endif

#if defined(HP_ESCAPE_X86) && !defined(HP_MUSTACHE_NO_AVX2)
static HP__TARGET_XSAVE bool os_saves_ymm(void)
{
    return (_xgetbv(0) & 6) == 6; /* XMM and YMM state enabled by the OS */
}

/* AVX2 and BMI1, asked of the CPU with cpuid (no runtime library needed). */
static bool has_avx2(void)
{
    unsigned a, b, c, d;

    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)) || !(c & (1u << 28)))
        return false; /* no OSXSAVE or no AVX */
    if (!os_saves_ymm() || __get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 5)) && (b & (1u << 3));
}
#endif

static void init(void)
{
    for (unsigned c = 0; c < 256; c++)
        table[c] = E1(c);
    for (unsigned k = 0; k < 5; k++)
        table[specials[k][0]] = specials[k][1];
#ifdef HP_ESCAPE_X86
#ifndef HP_MUSTACHE_NO_AVX2
    use_avx2 = has_avx2();
#endif
#endif
}

#ifdef HP_ESCAPE_X86
/* Candidates in 16 bytes: (b + 0x5e) as a signed byte is <= -100 exactly for b in 0x22..0x3e. */
static inline unsigned cand16(__m128i x)
{
    return (unsigned)_mm_movemask_epi8(
        _mm_cmplt_epi8(_mm_add_epi8(x, _mm_set1_epi8(0x5e)), _mm_set1_epi8(-99)));
}

/*
 * Escape the candidates of mask m in the 32 bytes at *sp, already copied to
 * *dp: on a real special write its entity, move both pointers past it and
 * return true (the caller rescans from there); false if none was real.
 */
static inline bool fix(char **dp, const char **sp, unsigned m)
{
    while (m) {
        size_t i = (size_t)__builtin_ctz(m);
        uint64_t e = table[(unsigned char)(*sp)[i]];
        /* an entity has a second byte; a plain byte's entry has only the first */
        if (e & 0xff00) {
            memcpy(*dp + i, &e, 8); /* little-endian: the entity's bytes first */
            *dp += i + (e >> 56);
            *sp += i + 1;
            return true;
        }
        m &= m - 1;
    }
    return false;
}

/* Both run loops stop with fewer than 32 bytes left; n >= 32 on entry. The
 * candidate loop is written out in each (not through fix()) so the compiler
 * keeps the table in a register and the special's path falls into the
 * next block. */
static char *run_sse2(char *d, const char **sp, const char *last)
{
    const char *s = *sp;
    const uint64_t *tab = table;

    while (s <= last) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
        _mm_storeu_si128((__m128i *)(void *)d, a);
        _mm_storeu_si128((__m128i *)(void *)(d + 16), b);
        for (unsigned m = cand16(a) | cand16(b) << 16; m; m &= m - 1) {
            size_t i = (size_t)__builtin_ctz(m);
            uint64_t e = tab[(unsigned char)s[i]];
            if (e & 0xff00) {
                memcpy(d + i, &e, 8);
                d += i + (e >> 56);
                s += i + 1;
                goto next;
            }
        }
        s += 32;
        d += 32;
    next:;
    }
    *sp = s;
    return d;
}

static HP__TARGET_AVX2 char *run_avx2(char *d, const char **sp, const char *last)
{
    const char *s = *sp;
    const __m256i k = _mm256_set1_epi8(0x5e), lim = _mm256_set1_epi8(-99);
    const uint64_t *tab = table;

    while (s <= last) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)s);
        _mm256_storeu_si256((__m256i *)(void *)d, a);
        unsigned m = (unsigned)_mm256_movemask_epi8(_mm256_cmpgt_epi8(lim, _mm256_add_epi8(a, k)));
        for (; m; m &= m - 1) {
            size_t i = (size_t)__builtin_ctz(m);
            uint64_t e = tab[(unsigned char)s[i]];
            if (e & 0xff00) {
                memcpy(d + i, &e, 8);
                d += i + (e >> 56);
                s += i + 1;
                goto next;
            }
        }
        s += 32;
        d += 32;
    next:;
    }
    *sp = s;
    return d;
}

/* The last < 32 bytes, through a zero-padded copy so loads stay in bounds. */
static char *tail(char *d, const char *src, size_t rem)
{
    char tmp[64] = {0};
    const char *s = tmp, *end = tmp + rem;

    memcpy(tmp, src, rem);
    while (s < end) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
        _mm_storeu_si128((__m128i *)(void *)d, a);
        _mm_storeu_si128((__m128i *)(void *)(d + 16), b);
        unsigned m = (cand16(a) | cand16(b) << 16) & ((1u << (end - s)) - 1);
        if (m && fix(&d, &s, m))
            continue;
        d += end - s;
        s = end;
    }
    return d;
}

size_t hp__escape(char *dst, const char *src, size_t n)
{
    const char *s = src, *end = src + n;
    char *d;

    pthread_once(&once, init);
    d = dst;
    if (n >= 32)
        d = use_avx2 ? run_avx2(dst, &s, end - 32) : run_sse2(dst, &s, end - 32);
    if (s < end)
        d = tail(d, s, (size_t)(end - s));
    return (size_t)(d - dst);
}
#else
static size_t escape_bytes(char *dst, const char *src, size_t n)
{
    char *d = dst;

    for (size_t i = 0; i < n; i++) {
        uint64_t e = table[(unsigned char)src[i]];
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

    pthread_once(&once, init);
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
