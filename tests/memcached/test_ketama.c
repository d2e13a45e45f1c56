/*
 * tests/memcached/test_ketama.c - MD5 against RFC 1321's test vectors, and
 * key placement against libmemcached's own (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED)
 * when it is installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ketama.h"

#ifdef HP_HAVE_LIBMEMCACHED
#include <libmemcached/memcached.h>
#endif

static void hex(const unsigned char d[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_md5(void **state)
{
    static const char *const v[][2] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    unsigned char d[16];
    char h[33];

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        hp__mc_md5(v[i][0], strlen(v[i][0]), d);
        hex(d, h);
        assert_string_equal(h, v[i][1]);
    }
}

static const char *const hosts[] = {"127.0.0.1", "127.0.0.2", "127.0.0.3", "10.0.0.4"};
static const uint16_t ports[] = {11211, 11212, 11213, 11211};

/* Keys spread over every server, and removing one server moves only its keys. */
static void test_spread(void **state)
{
    struct hp__mc_ring four, three;
    size_t count[4] = {0}, moved = 0;

    (void)state;
    assert_int_equal(hp__mc_ring_build(&four, hosts, ports, 4), 0);
    assert_int_equal(hp__mc_ring_build(&three, hosts, ports, 3), 0);
    assert_int_equal(four.n, 4 * 160);
    for (int i = 0; i < 10000; i++) {
        char key[32];
        int n = snprintf(key, sizeof(key), "key:%d", i);
        uint32_t a = hp__mc_ring_lookup(&four, key, (size_t)n);
        uint32_t b = hp__mc_ring_lookup(&three, key, (size_t)n);

        count[a]++;
        if (a != 3 && a != b)
            moved++;
    }
    for (int s = 0; s < 4; s++)
        assert_true(count[s] > 1500 && count[s] < 3500);
    assert_int_equal(moved, 0);
    hp__mc_ring_free(&four);
    hp__mc_ring_free(&three);
}

static void test_libmemcached(void **state)
{
#ifdef HP_HAVE_LIBMEMCACHED
    memcached_st *m = memcached_create(NULL);
    struct hp__mc_ring ring;

    (void)state;
    assert_non_null(m);
    for (int i = 0; i < 4; i++)
        assert_int_equal(memcached_server_add(m, hosts[i], ports[i]), MEMCACHED_SUCCESS);
    assert_int_equal(memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
                     MEMCACHED_SUCCESS);
    assert_int_equal(hp__mc_ring_build(&ring, hosts, ports, 4), 0);
    for (int i = 0; i < 5000; i++) {
        char key[32];
        int n = snprintf(key, sizeof(key), "user:%d:profile", i * 7919);
        uint32_t theirs = memcached_generate_hash(m, key, (size_t)n);
        uint32_t ours = hp__mc_ring_lookup(&ring, key, (size_t)n);

        if (theirs != ours)
            fail_msg("key %s: libmemcached %u, ours %u", key, theirs, ours);
    }
    hp__mc_ring_free(&ring);
    memcached_free(m);
#else
    (void)state;
    fprintf(stderr, "*** SKIPPED: libmemcached-dev not installed; placement not compared ***\n");
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_md5),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_libmemcached),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
