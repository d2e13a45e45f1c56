/*
 * tests/core/test_str.c - the hp_str helpers: comparisons (case folding is
 * ASCII only), prefixes, trimming, and integer parsing at and beyond the
 * limits of 64 bits, with malformed input in every position.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <hellepoll/str.h>

#define S(x) HP_STR_LIT(x)

static void test_str_eq_compares_length_and_bytes(void **state)
{
    (void)state;
    assert_true(hp_str_eq(S("abc"), S("abc")));
    assert_false(hp_str_eq(S("abc"), S("abd")));
    assert_false(hp_str_eq(S("abc"), S("ab")));
    assert_true(hp_str_eq(S(""), (struct hp_str){NULL, 0}));
    assert_true(hp_str_eq(S("a\0b"), S("a\0b")));
    assert_false(hp_str_eq(S("a\0b"), S("a\0c")));
}

static void test_str_eq_nocase_folds_ascii_only(void **state)
{
    (void)state;
    assert_true(hp_str_eq_nocase(S("Content-Type"), S("content-TYPE")));
    assert_false(hp_str_eq_nocase(S("Content-Type"), S("content-typ")));
    /* '@' (0x40) and '`' (0x60) differ by the case bit but are not letters. */
    assert_false(hp_str_eq_nocase(S("@"), S("`")));
    assert_false(hp_str_eq_nocase(S("["), S("{")));
    /* Latin-1 and UTF-8 letters are compared as bytes. */
    assert_false(hp_str_eq_nocase(S("\xc9"), S("\xe9")));
    assert_true(hp_str_eq_nocase(S(""), S("")));
}

static void test_str_prefix(void **state)
{
    (void)state;
    assert_true(hp_str_has_prefix(S("/static/a.css"), S("/static/")));
    assert_false(hp_str_has_prefix(S("/stat"), S("/static/")));
    assert_true(hp_str_has_prefix(S("x"), S("")));
    assert_false(hp_str_has_prefix(S("/Static/"), S("/static/")));
    assert_true(hp_str_has_prefix_nocase(S("Multipart/Form-Data; b=1"), S("multipart/form-data")));
    assert_false(hp_str_has_prefix_nocase(S("multipart"), S("multipart/")));
}

static void test_str_trim(void **state)
{
    struct hp_str t;

    (void)state;
    t = hp_str_trim(S(" \t\r\n a b \v\f"));
    assert_int_equal(t.len, 3);
    assert_memory_equal(t.ptr, "a b", 3);
    assert_int_equal(hp_str_trim(S("   ")).len, 0);
    assert_int_equal(hp_str_trim(S("")).len, 0);
    t = hp_str_trim_ows(S("\t x\r \t"));
    assert_int_equal(t.len, 2); /* CR is not OWS */
    assert_memory_equal(t.ptr, "x\r", 2);
    assert_int_equal(hp_str_index(S("a=b=c"), '='), 1);
    assert_int_equal(hp_str_index(S("abc"), '='), -1);
    assert_int_equal(hp_str_index(S(""), '='), -1);
}

struct u64_case {
    const char *in;
    int rc;
    uint64_t v;
};

static void test_str_to_u64_table(void **state)
{
    static const struct u64_case cases[] = {
        {"0", 0, 0},
        {"7", 0, 7},
        {"000123", 0, 123},
        {"18446744073709551615", 0, UINT64_MAX},
        {"018446744073709551615", 0, UINT64_MAX},
        {"18446744073709551616", -ERANGE, 0},
        {"18446744073709551620", -ERANGE, 0},
        {"99999999999999999999999", -ERANGE, 0},
        {"99999999999999999999999x", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"+1", -EINVAL, 0},
        {" 1", -EINVAL, 0},
        {"1 ", -EINVAL, 0},
        {"0x10", -EINVAL, 0},
        {"1/", -EINVAL, 0},
        {"1:", -EINVAL, 0},
        {"1\xb1", -EINVAL, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 42;
        int rc = hp_str_to_u64(hp_str_make(cases[i].in), &v);

        assert_int_equal(rc, cases[i].rc);
        assert_true(v == (rc == 0 ? cases[i].v : 42)); /* untouched on failure */
    }
    /* An embedded NUL is a non-digit, not an end of string. */
    {
        uint64_t v;

        assert_int_equal(hp_str_to_u64(S("1\0002"), &v), -EINVAL);
    }
}

struct i64_case {
    const char *in;
    int rc;
    int64_t v;
};

static void test_str_to_i64_table(void **state)
{
    static const struct i64_case cases[] = {
        {"0", 0, 0},
        {"-0", 0, 0},
        {"+5", 0, 5},
        {"-5", 0, -5},
        {"9223372036854775807", 0, INT64_MAX},
        {"+9223372036854775807", 0, INT64_MAX},
        {"-9223372036854775808", 0, INT64_MIN},
        {"-09223372036854775808", 0, INT64_MIN},
        {"9223372036854775808", -ERANGE, 0},
        {"-9223372036854775809", -ERANGE, 0},
        {"18446744073709551616", -ERANGE, 0},
        {"-", -EINVAL, 0},
        {"+", -EINVAL, 0},
        {"--1", -EINVAL, 0},
        {"+-1", -EINVAL, 0},
        {"1-", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"1e3", -EINVAL, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = 42;
        int rc = hp_str_to_i64(hp_str_make(cases[i].in), &v);

        assert_int_equal(rc, cases[i].rc);
        assert_true(v == (rc == 0 ? cases[i].v : 42));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_eq_compares_length_and_bytes),
        cmocka_unit_test(test_str_eq_nocase_folds_ascii_only),
        cmocka_unit_test(test_str_prefix),
        cmocka_unit_test(test_str_trim),
        cmocka_unit_test(test_str_to_u64_table),
        cmocka_unit_test(test_str_to_i64_table),
    };

    return cmocka_run_group_tests_name("core/str", tests, NULL, NULL);
}
