/*
 * tests/mustache/test_escape.c - HTML escaping against a byte-by-byte
 * reference, on every path: this file is built three times with the
 * engine's sources (tests/mustache/CMakeLists.txt): as shipped (AVX2 when
 * the CPU has it), kept to SSSE3 (HP_MUSTACHE_NO_AVX2), to SSE2 (and
 * HP_MUSTACHE_NO_SSSE3) and to the portable loop (HP_MUSTACHE_PORTABLE). Inputs sit at the very end
 * of a block of their own size and outputs get exactly the room the engine promises to need (6 * n
 * + HP__MU_SLACK), so under ASan a read past the input or a write past that room fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "ref_escape.h"

#ifndef HP_ESCAPE_VARIANT
#define HP_ESCAPE_VARIANT "as shipped"
#endif

/* Escape @p n bytes of @p src placed @p off bytes into a block that ends
 * right after them, into an output at @p doff of a block of exactly the
 * promised room; compare with the reference. */
static void check(const char *src, size_t n, size_t off, size_t doff)
{
    char *in = malloc(off + n ? off + n : 1), *out = malloc(doff + 6 * n + HP__MU_SLACK);
    char *want = malloc(6 * n + 1);
    size_t w, got;

    assert_non_null(in);
    assert_non_null(out);
    assert_non_null(want);
    memset(in, 'x', off);
    memcpy(in + off, src, n);
    w = ref_escape(want, src, n);
    got = hp__escape(out + doff, in + off, n);
    if (got != w || memcmp(out + doff, want, w) != 0)
        fail_msg("%s: n=%zu off=%zu doff=%zu: got %zu bytes, want %zu", HP_ESCAPE_VARIANT, n, off,
                 doff, got, w);
    free(want);
    free(out);
    free(in);
}

static unsigned seed = 12345;

static unsigned rnd(void)
{
    seed = seed * 1103515245u + 12345u;
    return seed >> 16;
}

/* density 0: any byte; k > 0: a special in about one byte of 4k, else
 * letters, digits and punctuation (the SSE2 test's harmless candidates) */
static void fill(char *s, size_t n, int density)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyz ABC0123456789,.-/:;=#$%()*+?";

    for (size_t k = 0; k < n; k++) {
        unsigned r = rnd();
        s[k] = density == 0                         ? (char)(r & 0xff)
               : (r % (unsigned)(density * 4)) == 0 ? "&<>\"'"[r % 5]
                                                    : plain[r % (sizeof(plain) - 1)];
    }
}

static void test_every_length_and_alignment_up_to_200(void **state)
{
    char src[200] = {0};

    (void)state;
    for (size_t n = 0; n <= 200; n++)
        for (size_t off = 0; off < 32; off++)
            for (int density = 0; density < 4; density++) {
                fill(src, n, density);
                check(src, n, off, (off * 7 + (size_t)density) % 16);
            }
}

static void test_one_special_at_every_position(void **state)
{
    char src[100] = {0};

    (void)state;
    for (size_t n = 1; n <= 100; n++)
        for (size_t pos = 0; pos < n; pos++)
            for (int k = 0; k < 5; k++) {
                memset(src, 'a', n);
                src[pos] = "&<>\"'"[k];
                check(src, n, pos % 8, 0);
            }
}

static void test_two_specials_at_every_distance(void **state)
{
    char src[80];

    (void)state;
    for (size_t a = 0; a < 80; a++)
        for (size_t b = a + 1; b < 80; b++) {
            memset(src, 'q', sizeof(src));
            src[a] = '"';
            src[b] = '<';
            check(src, sizeof(src), 0, 0);
            check(src, b + 1, 3, 1);
        }
}

static void test_runs_of_specials_and_every_byte_value(void **state)
{
    char src[600] = {0};

    (void)state;
    for (size_t n = 0; n <= 100; n++) {
        for (size_t k = 0; k < n; k++)
            src[k] = "&<>\"'"[k % 5];
        check(src, n, n % 32, 0);
    }
    for (size_t k = 0; k < sizeof(src); k++)
        src[k] = (char)(k & 0xff);
    for (size_t n = 0; n <= sizeof(src); n += 37)
        check(src, n, 0, 0);
}

static void test_64_kib(void **state)
{
    static char src[65536];

    (void)state;
    /* the benchmark's input: one special in every 32 bytes */
    for (size_t k = 0; k < sizeof(src); k++)
        src[k] = k % 32 == 31 ? "&<>\"'"[(k / 32) % 5] : (char)('a' + k % 26);
    check(src, sizeof(src), 0, 0);
    check(src, sizeof(src) - 1, 1, 3);
    for (int density = 0; density < 6; density++) {
        fill(src, sizeof(src), density);
        for (size_t off = 0; off < 4; off++)
            check(src, sizeof(src) - off * 11, off, off);
    }
    memset(src, 'z', sizeof(src));
    check(src, sizeof(src), 0, 0);
    memset(src, '&', sizeof(src));
    check(src, sizeof(src), 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_length_and_alignment_up_to_200),
        cmocka_unit_test(test_one_special_at_every_position),
        cmocka_unit_test(test_two_specials_at_every_distance),
        cmocka_unit_test(test_runs_of_specials_and_every_byte_value),
        cmocka_unit_test(test_64_kib),
    };

    printf("escaping path: %s\n", HP_ESCAPE_VARIANT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
