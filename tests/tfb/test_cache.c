/*
 * tests/tfb/test_cache.c - examples/tfb's LRU cache: hits and misses,
 * replacing a value, eviction of the least recently used entry (a hit
 * protects an entry), capacity 1, and a long random run checked against a
 * simple reference model.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"

static void test_hit_miss_replace(void **state)
{
    struct tfb_cache c;
    int32_t v = 0;

    (void)state;
    assert_int_equal(tfb_cache_init(&c, 4), 0);
    assert_false(tfb_cache_get(&c, 7, &v));
    tfb_cache_put(&c, 7, 70);
    assert_true(tfb_cache_get(&c, 7, &v));
    assert_int_equal(v, 70);
    tfb_cache_put(&c, 7, 71);
    assert_true(tfb_cache_get(&c, 7, &v));
    assert_int_equal(v, 71);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.hits, 2);
    assert_int_equal(c.misses, 1);
    tfb_cache_free(&c);
}

static void test_evicts_least_recent(void **state)
{
    struct tfb_cache c;
    int32_t v;

    (void)state;
    assert_int_equal(tfb_cache_init(&c, 3), 0);
    tfb_cache_put(&c, 1, 10);
    tfb_cache_put(&c, 2, 20);
    tfb_cache_put(&c, 3, 30);
    assert_true(tfb_cache_get(&c, 1, &v)); /* 1 is now the most recent: 2 is the oldest */
    tfb_cache_put(&c, 4, 40);
    assert_int_equal(c.evictions, 1);
    assert_false(tfb_cache_get(&c, 2, &v));
    assert_true(tfb_cache_get(&c, 1, &v));
    assert_int_equal(v, 10);
    assert_true(tfb_cache_get(&c, 3, &v));
    assert_true(tfb_cache_get(&c, 4, &v));
    assert_int_equal(v, 40);
    tfb_cache_put(&c, 5, 50); /* order now 1 3 4 (oldest first): 1 goes */
    assert_false(tfb_cache_get(&c, 1, &v));
    assert_int_equal(c.count, 3);
    tfb_cache_free(&c);
}

static void test_capacity_one(void **state)
{
    struct tfb_cache c;
    int32_t v;

    (void)state;
    assert_int_equal(tfb_cache_init(&c, 1), 0);
    for (int32_t k = 1; k <= 100; k++) {
        tfb_cache_put(&c, k, k * 2);
        assert_true(tfb_cache_get(&c, k, &v));
        assert_int_equal(v, k * 2);
        assert_false(tfb_cache_get(&c, k - 1, &v));
    }
    assert_int_equal(c.evictions, 99);
    tfb_cache_free(&c);
    assert_int_equal(tfb_cache_init(&c, 0), -EINVAL);
}

/* Reference: an array of keys ordered by recency, oldest first. */
struct model {
    int32_t keys[64], values[64];
    unsigned n, cap;
};

static int model_find(const struct model *m, int32_t key)
{
    for (unsigned i = 0; i < m->n; i++)
        if (m->keys[i] == key)
            return (int)i;
    return -1;
}

static void model_touch(struct model *m, unsigned i)
{
    int32_t k = m->keys[i], v = m->values[i];

    memmove(&m->keys[i], &m->keys[i + 1], (m->n - i - 1) * sizeof(m->keys[0]));
    memmove(&m->values[i], &m->values[i + 1], (m->n - i - 1) * sizeof(m->values[0]));
    m->keys[m->n - 1] = k;
    m->values[m->n - 1] = v;
}

static void test_against_model(void **state)
{
    struct tfb_cache c;
    struct model m = {.cap = 50};
    uint32_t rng = 12345;

    (void)state;
    assert_int_equal(tfb_cache_init(&c, m.cap), 0);
    for (int step = 0; step < 200000; step++) {
        int32_t key, v = -1;
        int i;

        rng = rng * 1103515245u + 12345u;
        key = (int32_t)(1 + (rng >> 16) % 120); /* more keys than room: many evictions */
        i = model_find(&m, key);
        if ((rng >> 8) & 1) {
            bool hit = tfb_cache_get(&c, key, &v);

            assert_int_equal(hit, i >= 0);
            if (i >= 0) {
                assert_int_equal(v, m.values[i]);
                model_touch(&m, (unsigned)i);
            }
        } else {
            tfb_cache_put(&c, key, step);
            if (i >= 0) {
                m.values[i] = step;
                model_touch(&m, (unsigned)i);
            } else {
                if (m.n == m.cap) { /* drop the oldest */
                    memmove(&m.keys[0], &m.keys[1], (m.n - 1) * sizeof(m.keys[0]));
                    memmove(&m.values[0], &m.values[1], (m.n - 1) * sizeof(m.values[0]));
                    m.n--;
                }
                m.keys[m.n] = key;
                m.values[m.n++] = step;
            }
        }
        assert_int_equal(c.count, m.n);
    }
    assert_true(c.evictions > 1000);
    tfb_cache_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_replace),
        cmocka_unit_test(test_evicts_least_recent),
        cmocka_unit_test(test_capacity_one),
        cmocka_unit_test(test_against_model),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
