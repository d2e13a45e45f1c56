/* tests/mustache/test_engine.c - placeholder, filled below. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hellepoll/mustache.h>

static void test_engine_compiles(void **state)
{
    struct hp_mustache *t;
    (void)state;
    assert_int_equal(hp_mustache_compile(&t, "x", "a", 1, NULL, NULL), 0);
    hp_mustache_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_compiles),
    };
    return cmocka_run_group_tests_name("mustache/engine", tests, NULL, NULL);
}
