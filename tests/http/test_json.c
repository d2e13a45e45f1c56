/*
 * tests/http/test_json.c - the JSON writer: exact output for the documents
 * an API writes (TechEmpower's included), every misuse the grammar check
 * must refuse, escaping of every byte in each string mode (UTF-8 with
 * U+FFFD, strict, Latin-1, HTML-safe), numbers at their limits, doubles
 * that read back exactly, a fixed buffer of every size from 0 up, a failing
 * allocator, and (when jansson is there) thousands of random documents
 * parsed back by jansson.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hellepoll/json.h>

#include "json_check.h"

#define S(x) HP_STR_LIT(x)

/* Finish @p w and compare its output with @p want. */
static void assert_json(struct hp_json *w, const char *want)
{
    struct hp_str out = {NULL, 0};

    assert_int_equal(hp_json_finish(w, &out), 0);
    if (out.len != strlen(want) || memcmp(out.ptr, want, out.len) != 0)
        fail_msg("got  %.*s\nwant %s", (int)out.len, out.ptr, want);
}

static void test_json_techempower_message(void **state)
{
    struct hp_json w;

    (void)state;
    hp_json_init_alloc(&w, NULL, 0);
    for (int i = 0; i < 3; i++) { /* reused per request, as a server does */
        hp_json_reset(&w);
        assert_int_equal(hp_json_obj_begin(&w), 0);
        assert_int_equal(hp_json_kv_str(&w, S("message"), S("Hello, World!")), 0);
        assert_int_equal(hp_json_obj_end(&w), 0);
        assert_json(&w, "{\"message\":\"Hello, World!\"}");
    }
    hp_json_free(&w);
}

static void test_json_nesting_and_separators(void **state)
{
    struct hp_json w;

    (void)state;
    hp_json_init_alloc(&w, NULL, 0);
    hp_json_arr_begin(&w);
    for (int i = 1; i <= 2; i++) {
        hp_json_obj_begin(&w);
        hp_json_kv_int(&w, S("id"), i);
        hp_json_kv_int(&w, S("randomNumber"), 1000 * i);
        hp_json_obj_end(&w);
    }
    hp_json_arr_begin(&w);
    hp_json_arr_end(&w);
    hp_json_obj_begin(&w);
    hp_json_obj_end(&w);
    hp_json_obj_begin(&w);
    hp_json_key(&w, S("a"));
    hp_json_arr_begin(&w);
    hp_json_null(&w);
    hp_json_bool(&w, true);
    hp_json_bool(&w, false);
    hp_json_raw(&w, S("{\"pre\":1}"));
    hp_json_arr_end(&w);
    hp_json_kv_bool(&w, S("b"), false);
    hp_json_kv_uint(&w, S("u"), UINT64_MAX);
    hp_json_kv_double(&w, S("d"), 0.5);
    hp_json_kv_null(&w, S("n"));
    hp_json_obj_end(&w);
    hp_json_arr_end(&w);
    assert_json(&w, "[{\"id\":1,\"randomNumber\":1000},{\"id\":2,\"randomNumber\":2000},[],{},"
                    "{\"a\":[null,true,false,{\"pre\":1}],\"b\":false,"
                    "\"u\":18446744073709551615,\"d\":0.5,\"n\":null}]");
    hp_json_free(&w);
}

static void test_json_spaced_looks_like_python(void **state)
{
    struct hp_json w;

    (void)state;
    hp_json_init_alloc(&w, NULL, HP_JSON_SPACED);
    hp_json_obj_begin(&w);
    hp_json_kv_str(&w, S("a"), S("x"));
    hp_json_key(&w, S("b"));
    hp_json_arr_begin(&w);
    hp_json_int(&w, 1);
    hp_json_int(&w, 2);
    hp_json_arr_end(&w);
    hp_json_obj_end(&w);
    assert_json(&w, "{\"a\": \"x\", \"b\": [1, 2]}");
    hp_json_free(&w);
}

/* Each misuse is -EINVAL, sticky, and leaves nothing more written. */
static void test_json_misuse_is_refused(void **state)
{
    struct hp_json w;
    struct hp_str out;
    char buf[256];

    (void)state;
    /* a value where a key is due */
    hp_json_init_fixed(&w, buf, sizeof(buf), 0);
    hp_json_obj_begin(&w);
    assert_int_equal(hp_json_int(&w, 1), -EINVAL);
    assert_int_equal(hp_json_key(&w, S("k")), -EINVAL); /* sticky */
    assert_int_equal(hp_json_finish(&w, &out), -EINVAL);
    assert_int_equal(hp_json_output(&w).len, 1);
    /* a key in an array, and at the top */
    hp_json_reset(&w);
    hp_json_arr_begin(&w);
    assert_int_equal(hp_json_key(&w, S("k")), -EINVAL);
    hp_json_reset(&w);
    assert_int_equal(hp_json_key(&w, S("k")), -EINVAL);
    /* a key with no value, then the end */
    hp_json_reset(&w);
    hp_json_obj_begin(&w);
    hp_json_key(&w, S("k"));
    assert_int_equal(hp_json_obj_end(&w), -EINVAL);
    /* two keys in a row */
    hp_json_reset(&w);
    hp_json_obj_begin(&w);
    hp_json_key(&w, S("k"));
    assert_int_equal(hp_json_key(&w, S("k")), -EINVAL);
    /* mismatched and unbalanced ends */
    hp_json_reset(&w);
    hp_json_obj_begin(&w);
    assert_int_equal(hp_json_arr_end(&w), -EINVAL);
    hp_json_reset(&w);
    hp_json_arr_begin(&w);
    assert_int_equal(hp_json_obj_end(&w), -EINVAL);
    hp_json_reset(&w);
    assert_int_equal(hp_json_arr_end(&w), -EINVAL);
    hp_json_reset(&w);
    hp_json_arr_begin(&w);
    hp_json_arr_end(&w);
    assert_int_equal(hp_json_arr_end(&w), -EINVAL);
    /* a second top-level value */
    hp_json_reset(&w);
    hp_json_int(&w, 1);
    assert_int_equal(hp_json_int(&w, 2), -EINVAL);
    /* incomplete and empty documents */
    hp_json_reset(&w);
    assert_int_equal(hp_json_finish(&w, &out), -EINVAL);
    hp_json_reset(&w);
    hp_json_arr_begin(&w);
    assert_int_equal(hp_json_finish(&w, &out), -EINVAL);
    assert_int_equal(hp_json_error(&w), 0); /* incomplete is not sticky */
    hp_json_arr_end(&w);
    assert_json(&w, "[]");
    /* an empty raw value would break the document */
    hp_json_reset(&w);
    assert_int_equal(hp_json_raw(&w, S("")), -EINVAL);
}

static void test_json_depth_is_limited(void **state)
{
    struct hp_json w;
    struct hp_str out;

    (void)state;
    hp_json_init_alloc(&w, NULL, 0);
    for (int i = 0; i < HP_JSON_MAX_DEPTH; i++)
        assert_int_equal(hp_json_arr_begin(&w), 0);
    assert_int_equal(hp_json_obj_begin(&w), -E2BIG);
    assert_int_equal(hp_json_arr_end(&w), -E2BIG); /* sticky */
    /* as deep as allowed, objects and arrays alternating, closed in order */
    hp_json_reset(&w);
    for (int i = 0; i < HP_JSON_MAX_DEPTH; i++) {
        if (i % 2) {
            assert_int_equal(hp_json_obj_begin(&w), 0);
            assert_int_equal(hp_json_key(&w, S("k")), 0);
        } else {
            assert_int_equal(hp_json_arr_begin(&w), 0);
        }
    }
    hp_json_str(&w, S("deep"));
    for (int i = HP_JSON_MAX_DEPTH - 1; i >= 0; i--)
        assert_int_equal(i % 2 ? hp_json_obj_end(&w) : hp_json_arr_end(&w), 0);
    assert_int_equal(hp_json_finish(&w, &out), 0);
    assert_int_equal(out.len, 2 * HP_JSON_MAX_DEPTH + 6 + 4 * HP_JSON_MAX_DEPTH / 2);
    hp_test_json_check(out.ptr, out.len, NULL, 0, 0);
    hp_json_free(&w);
}

struct str_case {
    const char *in;
    size_t len;
    unsigned flags;
    int rc;
    const char *want; /* the string with its quotes */
};

#define C(lit, flags, rc, want)               \
    {                                         \
        lit, sizeof(lit) - 1, flags, rc, want \
    }

static void test_json_string_escaping_table(void **state)
{
    static const struct str_case cases[] = {
        C("", 0, 0, "\"\""),
        C("plain ascii ~", 0, 0, "\"plain ascii ~\""),
        C("\"\\", 0, 0, "\"\\\"\\\\\""),
        C("\b\f\n\r\t", 0, 0, "\"\\b\\f\\n\\r\\t\""),
        C("\x00\x01\x1f", 0, 0, "\"\\u0000\\u0001\\u001f\""),
        C("\x7f", 0, 0, "\"\x7f\""),
        C("a/b</script>", 0, 0, "\"a/b</script>\""),
        C("a/b</script>", HP_JSON_ESCAPE_HTML, 0, "\"a/b<\\/script>\""),
        C("/</", HP_JSON_ESCAPE_HTML, 0, "\"/<\\/\""),
        /* valid UTF-8 passes through: 2, 3 and 4 bytes, the extremes */
        C("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0, 0,
          "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""),
        C("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 0, 0,
          "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\""),
        C("\xe2\x80\xa8\xe2\x80\xa9", 0, 0, "\"\xe2\x80\xa8\xe2\x80\xa9\""),
        C("\xe2\x80\xa8\xe2\x80\xa9", HP_JSON_ESCAPE_HTML, 0, "\"\\u2028\\u2029\""),
        /* ill-formed: one U+FFFD per maximal subpart */
        C("\x80", 0, 0, "\"\xef\xbf\xbd\""),
        C("a\xffz", 0, 0, "\"a\xef\xbf\xbdz\""),
        C("\xc0\xaf", 0, 0, "\"\xef\xbf\xbd\xef\xbf\xbd\""),                 /* overlong '/' */
        C("\xe0\x80\xaf", 0, 0, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""), /* overlong */
        C("\xed\xa0\x80", 0, 0, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""), /* surrogate */
        C("\xf4\x90\x80\x80", 0, 0,
          "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""), /* > U+10FFFF */
        C("\xe2\x82", 0, 0, "\"\xef\xbf\xbd\""),                   /* truncated: one */
        C("\xe2\x82z", 0, 0, "\"\xef\xbf\xbdz\""),
        C("\xf0\x9f\x98", 0, 0, "\"\xef\xbf\xbd\""),
        C("\xf0\x9f\x98\xf0\x9f\x98\x80", 0, 0, "\"\xef\xbf\xbd\xf0\x9f\x98\x80\""),
        C("\xc3", 0, 0, "\"\xef\xbf\xbd\""),
        C("\xc3\"", 0, 0, "\"\xef\xbf\xbd\\\"\""),
        /* strict */
        C("ok \xc3\xa9", HP_JSON_UTF8_STRICT, 0, "\"ok \xc3\xa9\""),
        C("bad \xc3", HP_JSON_UTF8_STRICT, -EILSEQ, NULL),
        C("\xed\xbf\xbf", HP_JSON_UTF8_STRICT, -EILSEQ, NULL),
        /* Latin-1: bytes */
        C("caf\xe9\x7f\xc3\xa9", HP_JSON_LATIN1, 0, "\"caf\\u00e9\\u007f\\u00c3\\u00a9\""),
        C("\x00\n\"", HP_JSON_LATIN1, 0, "\"\\u0000\\n\\\"\""),
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct str_case *c = &cases[i];
        struct hp_json w;
        struct hp_str out;

        hp_json_init_alloc(&w, NULL, c->flags);
        assert_int_equal(hp_json_str(&w, (struct hp_str){c->in, c->len}), c->rc);
        if (c->rc == 0) {
            assert_json(&w, c->want);
            /* the same string as a key */
            hp_json_reset(&w);
            hp_json_obj_begin(&w);
            hp_json_key(&w, (struct hp_str){c->in, c->len});
            hp_json_null(&w);
            hp_json_obj_end(&w);
            assert_int_equal(hp_json_finish(&w, &out), 0);
            assert_int_equal(out.len, strlen(c->want) + 7);
            assert_memory_equal(out.ptr + 1, c->want, strlen(c->want));
        } else {
            assert_int_equal(hp_json_finish(&w, &out), c->rc);
        }
        hp_json_free(&w);
    }
}

static void test_json_integers_at_their_limits(void **state)
{
    struct hp_json w;

    (void)state;
    hp_json_init_alloc(&w, NULL, 0);
    hp_json_arr_begin(&w);
    hp_json_int(&w, 0);
    hp_json_int(&w, -1);
    hp_json_int(&w, 9);
    hp_json_int(&w, 10);
    hp_json_int(&w, 99);
    hp_json_int(&w, 100);
    hp_json_int(&w, INT64_MAX);
    hp_json_int(&w, INT64_MIN);
    hp_json_uint(&w, UINT64_MAX);
    hp_json_arr_end(&w);
    assert_json(&w, "[0,-1,9,10,99,100,9223372036854775807,-9223372036854775808,"
                    "18446744073709551615]");
    hp_json_free(&w);
}

static void test_json_doubles_round_trip(void **state)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0.1, "0.1"},
        {1.5, "1.5"},
        {3.0, "3"},
        {-0.0, "-0"},
        {1e300, "1e+300"},
        {5e-324, "4.94065645841247e-324"},
        {1.0 / 3, "0.3333333333333333"},
        {123456789012345680.0, "1.2345678901234568e+17"},
        {0.30000000000000004, "0.30000000000000004"},
    };
    struct hp_json w;
    struct hp_str out;
    char buf[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hp_json_init_fixed(&w, buf, sizeof(buf), 0);
        assert_int_equal(hp_json_double(&w, cases[i].v), 0);
        assert_json(&w, cases[i].want);
    }
    /* random bit patterns: whatever is printed reads back as the same double */
    srand(9);
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = 0;
        double v;

        for (int k = 0; k < 4; k++)
            bits = bits << 16 ^ (uint64_t)(rand() & 0xffff);
        memcpy(&v, &bits, sizeof(v));
        hp_json_init_fixed(&w, buf, sizeof(buf) - 1, 0);
        if (!isfinite(v)) {
            assert_int_equal(hp_json_double(&w, v), -EDOM);
            continue;
        }
        assert_int_equal(hp_json_double(&w, v), 0);
        assert_int_equal(hp_json_finish(&w, &out), 0);
        buf[out.len] = '\0';
        assert_true(strtod(buf, NULL) == v || (v != v));
        assert_null(strpbrk(buf, ",inIN"));
    }
    hp_json_init_fixed(&w, buf, sizeof(buf), 0);
    assert_int_equal(hp_json_double(&w, NAN), -EDOM);
    hp_json_init_fixed(&w, buf, sizeof(buf), 0);
    assert_int_equal(hp_json_double(&w, -INFINITY), -EDOM);
    assert_int_equal(hp_json_null(&w), -EDOM);
}

/* One document with escapes of every kind, written into buffers of every size. */
static size_t write_doc(struct hp_json *w)
{
    hp_json_obj_begin(w);
    hp_json_kv_str(w, S("s"), S("a\"b\\c\n\x01\xc3\xa9\xff"));
    hp_json_key(w, S("n"));
    hp_json_arr_begin(w);
    hp_json_int(w, -1234567);
    hp_json_double(w, 2.5);
    hp_json_bool(w, true);
    hp_json_null(w);
    hp_json_arr_end(w);
    hp_json_obj_end(w);
    return hp_json_output(w).len;
}

static void test_json_fixed_buffer_of_every_size(void **state)
{
    static const char want[] =
        "{\"s\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\xef\xbf\xbd\",\"n\":[-1234567,2.5,true,null]}";
    char buf[sizeof(want) + 16];
    struct hp_json w;
    struct hp_str out;

    (void)state;
    for (size_t cap = 0; cap <= sizeof(want) + 8; cap++) {
        memset(buf, 'X', sizeof(buf));
        hp_json_init_fixed(&w, cap ? buf : NULL, cap, 0);
        write_doc(&w);
        if (cap < sizeof(want) - 1) {
            assert_int_equal(hp_json_finish(&w, &out), -ENOBUFS);
        } else {
            assert_json(&w, want);
        }
        assert_true(hp_json_output(&w).len <= cap);
        for (size_t i = cap; i < sizeof(buf); i++)
            assert_int_equal(buf[i], 'X'); /* nothing beyond the buffer */
    }
}

/* A lone string ending in each kind of escape fits a buffer of exactly its size. */
static void test_json_fixed_buffer_exact_fit_for_every_escape(void **state)
{
    static const struct {
        const char *in;
        unsigned flags;
        const char *want;
    } t[] = {
        {"a\n", 0, "\"a\\n\""},
        {"\x01", 0, "\"\\u0001\""},
        {"x\xff", 0, "\"x\xef\xbf\xbd\""},
        {"\xc3\xa9", 0, "\"\xc3\xa9\""},
        {"\xe9", HP_JSON_LATIN1, "\"\\u00e9\""},
        {"</", HP_JSON_ESCAPE_HTML, "\"<\\/\""},
        {"/", HP_JSON_ESCAPE_HTML, "\"/\""},
        {"\xe2\x80\xa8", HP_JSON_ESCAPE_HTML, "\"\\u2028\""},
        {"0123456789abcdef\"", 0, "\"0123456789abcdef\\\"\""},
    };
    char buf[64];

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t need = strlen(t[i].want);

        for (size_t cap = 0; cap <= need + 2; cap++) {
            struct hp_json w;
            struct hp_str out;

            memset(buf, 'X', sizeof(buf));
            hp_json_init_fixed(&w, buf, cap, t[i].flags);
            hp_json_str(&w, hp_str_make(t[i].in));
            if (cap < need) {
                assert_int_equal(hp_json_finish(&w, &out), -ENOBUFS);
            } else {
                assert_json(&w, t[i].want);
            }
            assert_int_equal(buf[cap], 'X');
        }
    }
}

struct failing {
    int allow; /* allocations left */
    int calls;
};

static void *failing_realloc(void *ctx, void *ptr, size_t size)
{
    struct failing *f = ctx;

    f->calls++;
    if (f->allow-- <= 0)
        return NULL;
    return realloc(ptr, size);
}

static void failing_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

static void test_json_growth_and_allocation_failure(void **state)
{
    char big[5000];
    struct hp_json w;
    struct hp_str out;

    (void)state;
    memset(big, '\n', sizeof(big)); /* 5000 bytes that become 10000 */
    for (int allow = 0; allow < 8; allow++) {
        struct failing f = {allow, 0};
        struct hp_allocator a = {failing_realloc, failing_free, &f};
        int rc;

        hp_json_init_alloc(&w, &a, 0);
        hp_json_arr_begin(&w);
        hp_json_str(&w, (struct hp_str){big, sizeof(big)});
        hp_json_str(&w, (struct hp_str){big, 10});
        hp_json_arr_end(&w);
        rc = hp_json_finish(&w, &out);
        if (rc == 0) {
            assert_int_equal(out.len, 2 + 2 * sizeof(big) + 2 + 1 + 20 + 2);
        } else {
            assert_int_equal(rc, -ENOMEM);
        }
        hp_json_free(&w);
        if (rc == 0)
            break;
        assert_true(allow < 7);
    }
}

/* Random documents from random bytes; jansson (when built in) must parse every one. */
static void test_json_random_documents_parse_back(void **state)
{
    static const unsigned modes[] = {0, HP_JSON_ESCAPE_HTML, HP_JSON_LATIN1, HP_JSON_SPACED};
    unsigned char bytes[64];
    char key[32];
    struct hp_json w;
    struct hp_str out;

    (void)state;
    srand(7);
    hp_json_init_alloc(&w, NULL, 0);
    for (int i = 0; i < 4000; i++) {
        size_t n = (size_t)rand() % sizeof(bytes);
        unsigned flags = modes[i % 4];

        for (size_t k = 0; k < n; k++)
            bytes[k] = (unsigned char)(i % 3 ? rand() : rand() % 128);
        hp_json_free(&w);
        hp_json_init_alloc(&w, NULL, flags);
        hp_json_obj_begin(&w);
        memcpy(key, bytes, n / 2);
        for (size_t k = 0; k < n / 2; k++)
            key[k] = key[k] ? key[k] : 'x'; /* jansson refuses NUL in keys */
        hp_json_kv_str(&w, (struct hp_str){key, n / 2}, (struct hp_str){(const char *)bytes, n});
        hp_json_kv_int(&w, S("i"), rand() - RAND_MAX / 2);
        hp_json_key(&w, S("d"));
        hp_json_double(&w, rand() / 7.0);
        hp_json_obj_end(&w);
        assert_int_equal(hp_json_finish(&w, &out), 0);
        hp_test_json_check(out.ptr, out.len, bytes, n, flags);
    }
    hp_json_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_techempower_message),
        cmocka_unit_test(test_json_nesting_and_separators),
        cmocka_unit_test(test_json_spaced_looks_like_python),
        cmocka_unit_test(test_json_misuse_is_refused),
        cmocka_unit_test(test_json_depth_is_limited),
        cmocka_unit_test(test_json_string_escaping_table),
        cmocka_unit_test(test_json_integers_at_their_limits),
        cmocka_unit_test(test_json_doubles_round_trip),
        cmocka_unit_test(test_json_fixed_buffer_of_every_size),
        cmocka_unit_test(test_json_fixed_buffer_exact_fit_for_every_escape),
        cmocka_unit_test(test_json_growth_and_allocation_failure),
        cmocka_unit_test(test_json_random_documents_parse_back),
    };

    return cmocka_run_group_tests_name("http/json", tests, NULL, NULL);
}
