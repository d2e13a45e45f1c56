/*
 * escape.c - HTML escaping of & < > " ' (as &amp; &lt; &gt; &quot; &#39;).
 *
 * On x86-64 the input goes through one branch-free step per 32-byte window
 * (AVX2 when the CPU has it, else SSSE3, else SSE2, which every x86-64 has;
 * chosen once at run time):
 *
 *   1. copy the window's 32 bytes to the output as they are;
 *   2. find the first byte in it that needs escaping, with a sentinel bit
 *      at 32 so that "none" means the byte just after the window;
 *   3. write that byte's table entry over the copy at its place (8 bytes:
 *      an entity, or the byte itself if it needs none) and move both
 *      pointers past it by the entry's length.
 *
 * A window with a special byte thus costs the same as one without, and
 * nothing is copied twice except the bytes after a special, which the next
 * window copies again to their shifted place. AVX2 and SSSE3 find the
 * specials exactly (the five have five different low nibbles: one byte
 * shuffle maps every byte to the special sharing its low nibble, one
 * compare keeps the equal ones). SSE2 has no byte shuffle: its two-op test
 * lets through a few harmless bytes too (digits, : ; = ? $ %), which it
 * passes over inside the window. The last <= 32 bytes go through
 * a copy padded with zeros, so no load reads past the input. Elsewhere a
 * portable loop copies runs with memcpy.
 *
 * Every path may write up to HP__MU_SLACK bytes past the returned length;
 * the caller guarantees room for 6 * n + HP__MU_SLACK bytes.
 */
#include <string.h>

#include "internal.h"

/* Build-time defines, for measuring and testing: HP_MUSTACHE_NO_AVX2 leaves
 * out AVX2, HP_MUSTACHE_NO_SSSE3 SSSE3 (both: SSE2 only), HP_MUSTACHE_PORTABLE
 * keeps to the portable loop. */
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(HP_MUSTACHE_PORTABLE)
#include <cpuid.h>
#include <immintrin.h>
#define HP_ESCAPE_X86    1
#define HP__TARGET_AVX2  __attribute__((target("avx2,bmi")))
#define HP__TARGET_SSSE3 __attribute__((target("ssse3")))
#define HP__TARGET_XSAVE __attribute__((target("xsave")))
#endif

/*
 * Per byte: what it becomes (little-endian: the first output byte lowest)
 * and how many bytes that is. Constant tables: nothing to initialise.
 */
#define ENT(c)                                      \
    ((c) == '&'    ? 0x3b706d6126ull   /* &amp; */  \
     : (c) == '<'  ? 0x3b746c26ull     /* &lt; */   \
     : (c) == '>'  ? 0x3b746726ull     /* &gt; */   \
     : (c) == '"'  ? 0x3b746f757126ull /* &quot; */ \
     : (c) == '\'' ? 0x3b39332326ull   /* &#39; */  \
                   : (uint64_t)(c))
/* its length less one: how far the output moves ahead of the input */
#define GROW(c) \
    ((c) == '&' || (c) == '\'' ? 4u : (c) == '<' || (c) == '>' ? 3u : (c) == '"' ? 5u : 0u)
#define R4(F, c)   F(c), F((c) + 1), F((c) + 2), F((c) + 3)
#define R16(F, c)  R4(F, c), R4(F, (c) + 4), R4(F, (c) + 8), R4(F, (c) + 12)
#define R64(F, c)  R16(F, c), R16(F, (c) + 16), R16(F, (c) + 32), R16(F, (c) + 48)
#define R256(F, c) R64(F, c), R64(F, (c) + 64), R64(F, (c) + 128), R64(F, (c) + 192)

static const uint64_t ent[256] = {R256(ENT, 0)};
static const size_t grow[256] = {R256(GROW, 0)};

#ifdef HP_ESCAPE_X86
#if !defined(HP_MUSTACHE_NO_AVX2)
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

/* 0: not asked yet, 1: SSE2, 2: SSSE3, 3: AVX2. Asked on first use; a race only asks twice. */
static _Atomic int isa;

static int detect(void)
{
#ifndef HP_MUSTACHE_NO_AVX2
    if (has_avx2())
        return 3;
#endif
#ifndef HP_MUSTACHE_NO_SSSE3
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 9)))
        return 2;
#endif
    return 1;
}

/* BSF of a nonzero m (asked for directly: the builtin's int costs a sign extension). */
#define BSF(i, m) __asm__("bsfq %1, %0" : "=r"(i) : "r"(m) : "cc")

/*
 * SSE2: copy the 32 bytes at s to d and return the first special's index,
 * or 32 if there is none. (b ^ 0x49) > 0x6a as signed bytes holds for
 * " $ % & ' 0-9 : ; < = > ? and nothing else (of the two-op tests SSE2
 * offers, the one that lets through the fewest bytes common in text, found
 * by trying them all: spaces, letters, commas, full stops, hyphens, slashes
 * and UTF-8 stay out); a candidate that needs no entity is passed over here
 * rather than stepped over, which would cost a whole step each.
 */
static inline size_t window_sse2(char *d, const char *s, size_t *cp, size_t *gp)
{
    const __m128i k = _mm_set1_epi8(0x49), lim = _mm_set1_epi8(0x6a);
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
    uint64_t m;
    size_t i, c, g;

    _mm_storeu_si128((__m128i *)(void *)d, a);
    _mm_storeu_si128((__m128i *)(void *)(d + 16), b);
    a = _mm_cmpgt_epi8(_mm_xor_si128(a, k), lim);
    b = _mm_cmpgt_epi8(_mm_xor_si128(b, k), lim);
    m = (uint64_t)(unsigned)_mm_movemask_epi8(a) | (uint64_t)(unsigned)_mm_movemask_epi8(b) << 16 |
        (uint64_t)1 << 32;
    BSF(i, m);
    c = (unsigned char)s[i];
    g = grow[c];
    if (__builtin_expect(g == 0, 0)) {
        while (i < 32 && g == 0) {
            m &= m - 1; /* the sentinel stays */
            BSF(i, m);
            c = (unsigned char)s[i];
            g = grow[c];
        }
    }
    *cp = c;
    *gp = g;
    return i;
}

/* For the tail: the index alone. */
static inline size_t first_sse2(char *d, const char *s)
{
    size_t c, g;

    return window_sse2(d, s, &c, &g);
}

/* The five specials have five different low nibbles: PSHUFB maps every byte
 * to the special sharing its low nibble (0xff, which matches no byte it can
 * meet, where there is none; 0 for bytes >= 0x80), one compare keeps the
 * equal ones. */
#define SPECIALS_LUT -1, -1, 0x22, -1, -1, -1, 0x26, 0x27, -1, -1, -1, -1, 0x3c, -1, 0x3e, -1

/* SSSE3: as SSE2, with the exact test. */
static HP__TARGET_SSSE3 inline size_t window_ssse3(char *d, const char *s)
{
    const __m128i lut = _mm_setr_epi8(SPECIALS_LUT);
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
    uint64_t m;
    size_t i;

    _mm_storeu_si128((__m128i *)(void *)d, a);
    _mm_storeu_si128((__m128i *)(void *)(d + 16), b);
    a = _mm_cmpeq_epi8(_mm_shuffle_epi8(lut, a), a);
    b = _mm_cmpeq_epi8(_mm_shuffle_epi8(lut, b), b);
    m = (uint64_t)(unsigned)_mm_movemask_epi8(a) | (uint64_t)(unsigned)_mm_movemask_epi8(b) << 16 |
        (uint64_t)1 << 32;
    BSF(i, m);
    return i;
}

/* AVX2: the exact test on 32 bytes at once; BMI1's TZCNT gives 32 for none. */
static HP__TARGET_AVX2 inline size_t window_avx2(char *d, const char *s)
{
    const __m256i lut = _mm256_setr_epi8(SPECIALS_LUT, SPECIALS_LUT);
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)s);

    _mm256_storeu_si256((__m256i *)(void *)d, a);
    return _tzcnt_u32(
        (unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_shuffle_epi8(lut, a), a)));
}

/*
 * One step (see the file comment) at s, whose output goes to s + delta (an
 * integer: the two pointers are in different objects): the window is
 * copied, then its first candidate, or the byte at 32 if there is none, is
 * written as its table entry. Needs 33 readable bytes at s. Keeping the
 * distance rather than the output pointer makes the entry's length one add.
 */
#define OUT(s, delta) ((char *)((uintptr_t)(s) + (delta)))
/* SSE2's step: its window function also hands over the byte and its growth. */
#define STEP_SSE2(window, s, delta)                             \
    do {                                                        \
        size_t c_, g_, i_ = window(OUT(s, delta), s, &c_, &g_); \
        (s) += i_ + 1;                                          \
        memcpy(OUT(s, delta) - 1, &ent[c_], 8);                 \
        (delta) += g_;                                          \
    } while (0)
#define STEP(window, s, delta)                  \
    do {                                        \
        size_t i_ = window(OUT(s, delta), s);   \
        size_t c_ = (unsigned char)(s)[i_];     \
        (s) += i_ + 1;                          \
        memcpy(OUT(s, delta) - 1, &ent[c_], 8); \
        (delta) += grow[c_];                    \
    } while (0)

/*
 * The last rem (<= 32) bytes: copied into a buffer followed by 32 zeros (no
 * candidates), stepped through there. A step that finds no candidate before
 * the end finishes.
 */
#define TAIL(window, d, src, rem)                                                      \
    do {                                                                               \
        _Alignas(16) char tmp_[64];                                                    \
        const char *s_ = tmp_, *e_ = tmp_ + (rem);                                     \
        copy_small(tmp_, (src), (rem));                                                \
        _mm_storeu_si128((__m128i *)(void *)(tmp_ + (rem)), _mm_setzero_si128());      \
        _mm_storeu_si128((__m128i *)(void *)(tmp_ + (rem) + 16), _mm_setzero_si128()); \
        while (s_ < e_) {                                                              \
            size_t i_ = window(d, s_);                                                 \
            if (i_ >= (size_t)(e_ - s_)) {                                             \
                (d) += e_ - s_;                                                        \
                break;                                                                 \
            }                                                                          \
            unsigned char c_ = (unsigned char)s_[i_];                                  \
            memcpy((d) + i_, &ent[c_], 8);                                             \
            (d) += i_ + 1 + grow[c_];                                                  \
            s_ += i_ + 1;                                                              \
        }                                                                              \
    } while (0)

/* n <= 32 bytes from s to d, with a few overlapping fixed-size moves. */
static inline void copy_small(char *d, const char *s, size_t n)
{
    if (n >= 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
        _mm_storeu_si128((__m128i *)(void *)d, a);
        _mm_storeu_si128((__m128i *)(void *)(d + n - 16), b);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

/* A step needs 33 bytes and moves s by at most 33: two steps per loop test. */
#define ESCAPE_FN(name, attr, STEP, window, first)           \
    static attr char *name(char *d, const char *s, size_t n) \
    {                                                        \
        const char *end = s + n;                             \
        uintptr_t delta = (uintptr_t)d - (uintptr_t)s;       \
                                                             \
        if (n >= 66) {                                       \
            for (const char *last = end - 66; s <= last;) {  \
                STEP(window, s, delta);                      \
                STEP(window, s, delta);                      \
            }                                                \
        }                                                    \
        while (end - s > 32)                                 \
            STEP(window, s, delta);                          \
        d = OUT(s, delta);                                   \
        TAIL(first, d, s, (size_t)(end - s));                \
        return d;                                            \
    }

ESCAPE_FN(escape_sse2, , STEP_SSE2, window_sse2, first_sse2)
ESCAPE_FN(escape_ssse3, HP__TARGET_SSSE3, STEP, window_ssse3, window_ssse3)
ESCAPE_FN(escape_avx2, HP__TARGET_AVX2, STEP, window_avx2, window_avx2)

size_t hp__escape(char *dst, const char *src, size_t n)
{
    int k = isa;

    if (__builtin_expect(k == 0, 0))
        isa = k = detect();
    return (size_t)((k == 3   ? escape_avx2(dst, src, n)
                     : k == 2 ? escape_ssse3(dst, src, n)
                              : escape_sse2(dst, src, n)) -
                    dst);
}
#else
size_t hp__escape(char *dst, const char *src, size_t n)
{
    const char *s = src, *end = src + n;
    char *d = dst;

    /* Copy runs of plain bytes with memcpy; a special byte gets its entity. */
    while (s < end) {
        const char *r = s;
        while (r < end && grow[(unsigned char)*r] == 0)
            r++;
        memcpy(d, s, (size_t)(r - s));
        d += r - s;
        if (r == end)
            break;
        uint64_t e = ent[(unsigned char)*r];
        for (size_t k = 0; k <= grow[(unsigned char)*r]; k++)
            *d++ = (char)(e >> (8 * k)); /* any byte order */
        s = r + 1;
    }
    return (size_t)(d - dst);
}
#endif
