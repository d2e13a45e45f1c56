/*
 * escape.c - HTML escaping of & < > " ' (as &amp; &lt; &gt; &quot; &#39;).
 *
 * On x86-64 the input goes through one branch-free step per 32-byte window
 * (SSE2, which every x86-64 has, or AVX2 when the CPU has it, chosen once
 * at run time):
 *
 *   1. copy the window's 32 bytes to the output as they are;
 *   2. find the first byte in it that may need escaping, with a sentinel bit
 *      at 32 so that "none" means the byte just after the window;
 *   3. write that byte's table entry over the copy at its place (8 bytes:
 *      an entity, or the byte itself if it needs none) and move both
 *      pointers past it by the entry's length.
 *
 * A window with a special byte thus costs the same as one without, and
 * nothing is copied twice except the bytes after a special, which the next
 * window copies again to their shifted place. The AVX2 test is exact (the
 * five specials have five different low nibbles: one vpshufb maps every
 * byte to the special sharing its low nibble, one compare keeps the equal
 * ones); SSE2 has no byte shuffle, so its test is the two-operation range
 * 0x22..0x3e, and a candidate that needs no escaping (a digit, say) is
 * handled like a special of length 1. The last <= 32 bytes go through a
 * copy padded with zeros, so no load reads past the input. Elsewhere a
 * portable loop copies runs with memcpy.
 *
 * Every path may write up to HP__MU_SLACK bytes past the returned length;
 * the caller guarantees room for 6 * n + HP__MU_SLACK bytes.
 */
#include <string.h>

#include "internal.h"

/* Build-time defines, for measuring and testing: HP_MUSTACHE_NO_AVX2 keeps
 * to SSE2, HP_MUSTACHE_PORTABLE to the portable loop. */
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(HP_MUSTACHE_PORTABLE)
#include <cpuid.h>
#include <immintrin.h>
#define HP_ESCAPE_X86    1
#define HP__TARGET_AVX2  __attribute__((target("avx2,bmi")))
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

/* 0: not asked yet, 1: SSE2, 2: AVX2. Asked on first use; a race only asks twice. */
static _Atomic int isa;

/*
 * SSE2: copy the 32 bytes at s to d and return the first candidate's index,
 * or 32 if there is none. (b + 0x41) as a signed byte is > 98 exactly for b
 * in 0x22..0x3e. BSF (asked for directly: the builtin's int costs a sign
 * extension) is defined here: the sentinel bit makes the operand nonzero.
 */
static inline size_t window_sse2(char *d, const char *s)
{
    const __m128i k = _mm_set1_epi8(0x41), lim = _mm_set1_epi8(98);
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
    uint64_t m;
    size_t i;

    _mm_storeu_si128((__m128i *)(void *)d, a);
    _mm_storeu_si128((__m128i *)(void *)(d + 16), b);
    a = _mm_cmpgt_epi8(_mm_add_epi8(a, k), lim);
    b = _mm_cmpgt_epi8(_mm_add_epi8(b, k), lim);
    m = (uint64_t)(unsigned)_mm_movemask_epi8(a) | (uint64_t)(unsigned)_mm_movemask_epi8(b) << 16 |
        (uint64_t)1 << 32;
    __asm__("bsfq %1, %0" : "=r"(i) : "r"(m) : "cc");
    return i;
}

/* AVX2: the same, exactly the five specials (see the file comment); BMI1's
 * TZCNT gives 32 for no candidate. */
static HP__TARGET_AVX2 inline size_t window_avx2(char *d, const char *s)
{
    /* low nibble 2 '"', 6 '&', 7 '\'', 12 '<', 14 '>'; 0xff matches no byte it can meet */
    const __m256i lut =
        _mm256_setr_epi8(-1, -1, 0x22, -1, -1, -1, 0x26, 0x27, -1, -1, -1, -1, 0x3c, -1, 0x3e, -1,
                         -1, -1, 0x22, -1, -1, -1, 0x26, 0x27, -1, -1, -1, -1, 0x3c, -1, 0x3e, -1);
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

/* A step needs 33 bytes; a step moves s by at most 33. */
static char *escape_sse2(char *d, const char *s, size_t n)
{
    const char *end = s + n;
    uintptr_t delta = (uintptr_t)d - (uintptr_t)s;

    if (n >= 66) {
        for (const char *last = end - 66; s <= last;) {
            STEP(window_sse2, s, delta);
            STEP(window_sse2, s, delta);
        }
    }
    while (end - s > 32)
        STEP(window_sse2, s, delta);
    d = OUT(s, delta);
    TAIL(window_sse2, d, s, (size_t)(end - s));
    return d;
}

static HP__TARGET_AVX2 char *escape_avx2(char *d, const char *s, size_t n)
{
    const char *end = s + n;
    uintptr_t delta = (uintptr_t)d - (uintptr_t)s;

    /* two steps per test: the loop's compare costs half */
    if (n >= 66) {
        for (const char *last = end - 66; s <= last;) {
            STEP(window_avx2, s, delta);
            STEP(window_avx2, s, delta);
        }
    }
    while (end - s > 32)
        STEP(window_avx2, s, delta);
    d = OUT(s, delta);
    TAIL(window_avx2, d, s, (size_t)(end - s));
    return d;
}

static int detect(void)
{
#ifndef HP_MUSTACHE_NO_AVX2
    if (has_avx2())
        return 2;
#endif
    return 1;
}

size_t hp__escape(char *dst, const char *src, size_t n)
{
    int k = isa;

    if (__builtin_expect(k == 0, 0))
        isa = k = detect();
    return (size_t)((k == 2 ? escape_avx2(dst, src, n) : escape_sse2(dst, src, n)) - dst);
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
