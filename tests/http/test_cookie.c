/*
 * tests/http/test_cookie.c - Cookie header parsing (what browsers send and
 * hostile variants), Set-Cookie building with every attribute, refusal of
 * anything that could inject an attribute or a header, IMF-fixdate against
 * gmtime_r, and a round trip: every value the builder accepts is read back
 * unchanged by the parser.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <hellepoll/cookie.h>

#define S(x) HP_STR_LIT(x)

struct pair {
    const char *name, *value;
};

static void expect_pairs(struct hp_str header, const struct pair *want, size_t n)
{
    struct hp_cookie_iter it;
    struct hp_str name, value;
    size_t i = 0;

    hp_cookie_iter_init(&it, header);
    while (hp_cookie_next(&it, &name, &value)) {
        if (i >= n)
            fail_msg("extra cookie %.*s in %.*s", (int)name.len, name.ptr, (int)header.len,
                     header.ptr);
        assert_int_equal(name.len, strlen(want[i].name));
        assert_memory_equal(name.ptr, want[i].name, name.len);
        assert_int_equal(value.len, strlen(want[i].value));
        assert_memory_equal(value.ptr, want[i].value, value.len);
        i++;
    }
    assert_int_equal(i, n);
}

static void test_cookie_header_parsing(void **state)
{
    (void)state;
    {
        static const struct pair w[] = {{"a", "1"}, {"b", "2"}, {"sid", "x=y"}};

        expect_pairs(S("a=1; b=2; sid=x=y"), w, 3);
    }
    {
        static const struct pair w[] = {{"q", "quoted value"}, {"e", ""}, {"e2", ""}};

        expect_pairs(S("q=\"quoted value\";e=;e2=\"\""), w, 3);
    }
    {
        /* spaces and tabs around, empty pieces, pairs without '=', bad names */
        static const struct pair w[] = {{"a", "1"}, {"c", "3"}, {"d", "\"half"}};

        expect_pairs(S(" \t a = 1 ;;; novalue; =nameless; b c=2; c=3;d=\"half; "), w, 3);
    }
    expect_pairs(S(""), NULL, 0);
    expect_pairs(S(";;;"), NULL, 0);
    expect_pairs(S("="), NULL, 0);
    {
        static const struct pair w[] = {{"x", "\xff\x01"}};

        expect_pairs(S("x=\xff\x01"), w, 1); /* bytes are passed on, not judged */
    }
}

static void test_cookie_get(void **state)
{
    struct hp_str h = S("theme=dark; sid=abc123; SID=upper; sid=second"), v;

    (void)state;
    assert_true(hp_cookie_get(h, S("sid"), &v));
    assert_int_equal(v.len, 6);
    assert_memory_equal(v.ptr, "abc123", 6);
    assert_true(hp_cookie_get(h, S("SID"), &v));
    assert_memory_equal(v.ptr, "upper", 5);
    v = S("untouched");
    assert_false(hp_cookie_get(h, S("nope"), &v));
    assert_int_equal(v.len, 9);
    assert_false(hp_cookie_get(h, S("them"), &v));
}

static void expect_format(const struct hp_cookie *c, const char *want)
{
    char buf[512];
    size_t len = 0;

    assert_int_equal(hp_cookie_format(c, buf, sizeof(buf), &len), 0);
    if (len != strlen(want) || memcmp(buf, want, len) != 0)
        fail_msg("got  %.*s\nwant %s", (int)len, buf, want);
}

static void test_set_cookie_attributes(void **state)
{
    (void)state;
    expect_format(&(struct hp_cookie){.name = S("a"), .value = S("b")}, "a=b");
    expect_format(&(struct hp_cookie){.name = S("a"), .value = S("")}, "a=");
    expect_format(&(struct hp_cookie){.name = S("q"), .value = S("\"x\"")}, "q=\"x\"");
    expect_format(&(struct hp_cookie){.name = S("sid"),
                                      .value = S("abc"),
                                      .path = S("/"),
                                      .domain = S("example.com"),
                                      .has_max_age = true,
                                      .max_age = 3600,
                                      .has_expires = true,
                                      .expires = 784111777,
                                      .secure = true,
                                      .http_only = true,
                                      .same_site = HP_COOKIE_SAME_SITE_LAX},
                  "sid=abc; Path=/; Domain=example.com; Max-Age=3600; "
                  "Expires=Sun, 06 Nov 1994 08:49:37 GMT; Secure; HttpOnly; SameSite=Lax");
    expect_format(&(struct hp_cookie){.name = S("gone"),
                                      .has_max_age = true,
                                      .has_expires = true,
                                      .same_site = HP_COOKIE_SAME_SITE_STRICT},
                  "gone=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Strict");
    expect_format(
        &(struct hp_cookie){
            .name = S("x"), .value = S("1"), .secure = true, .same_site = HP_COOKIE_SAME_SITE_NONE},
        "x=1; Secure; SameSite=None");
}

static void test_set_cookie_refuses_injection(void **state)
{
    static const struct hp_str bad_names[] = {
        {"", 0},         {"a b", 3}, {"a;b", 3}, {"a=b", 3}, {"a\r\nX: y", 8}, {"a\"", 2},
        {"\xc3\xa9", 2}, {"a,b", 3}, {"a\0", 2}, {"(a)", 3}, {"a/b", 3},
    };
    static const struct hp_str bad_values[] = {
        {"a b", 3}, {"a;b", 3},       {"a,b", 3},      {"a\\b", 3}, {"\"", 1},
        {"\"a", 2}, {"a\r\nX: y", 8}, {"a\tb", 3},     {"\x7f", 1}, {"\xc3\xa9", 2},
        {"a\0", 2}, {"\"a b\"", 5},   {"\"a\"b\"", 5},
    };
    static const struct hp_str bad_paths[] = {
        {"/a;b", 4}, {"/\r\n", 3}, {"/\x7f", 2}, {"/\xff", 2}};
    static const struct hp_str bad_domains[] = {{"a b", 3}, {"a;b", 3}, {"a/b", 3}, {"a:80", 4}};
    struct hp_cookie c;
    char buf[256];
    size_t len = 7;

    (void)state;
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        c = (struct hp_cookie){.name = bad_names[i], .value = S("v")};
        assert_int_equal(hp_cookie_format(&c, buf, sizeof(buf), &len), -EINVAL);
    }
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        c = (struct hp_cookie){.name = S("n"), .value = bad_values[i]};
        assert_int_equal(hp_cookie_format(&c, buf, sizeof(buf), &len), -EINVAL);
    }
    for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
        c = (struct hp_cookie){.name = S("n"), .path = bad_paths[i]};
        assert_int_equal(hp_cookie_format(&c, buf, sizeof(buf), &len), -EINVAL);
    }
    for (size_t i = 0; i < sizeof(bad_domains) / sizeof(bad_domains[0]); i++) {
        c = (struct hp_cookie){.name = S("n"), .domain = bad_domains[i]};
        assert_int_equal(hp_cookie_format(&c, buf, sizeof(buf), &len), -EINVAL);
    }
    c = (struct hp_cookie){.name = S("n"), .has_max_age = true, .max_age = -1};
    assert_int_equal(hp_cookie_format(&c, buf, sizeof(buf), &len), -EINVAL);
    c = (struct hp_cookie){.name = S("n"), .has_expires = true, .expires = -1};
    assert_int_equal(hp_cookie_format(&c, buf, sizeof(buf), &len), -EINVAL);
    c = (struct hp_cookie){.name = S("n"), .has_expires = true, .expires = INT64_C(253402300800)};
    assert_int_equal(hp_cookie_format(&c, buf, sizeof(buf), &len), -EINVAL);
    c = (struct hp_cookie){.name = S("n"), .same_site = HP_COOKIE_SAME_SITE_NONE};
    assert_int_equal(hp_cookie_format(&c, buf, sizeof(buf), &len), -EINVAL);
    c = (struct hp_cookie){.name = S("n"), .same_site = (enum hp_cookie_same_site)9};
    assert_int_equal(hp_cookie_format(&c, buf, sizeof(buf), &len), -EINVAL);
    assert_int_equal(len, 7); /* untouched */
    /* too small a buffer, at every size */
    c = (struct hp_cookie){.name = S("n"), .value = S("v"), .path = S("/p"), .http_only = true};
    for (size_t cap = 0; cap < 25; cap++)
        assert_int_equal(hp_cookie_format(&c, buf, cap, &len), cap >= 22 ? 0 : -ENOBUFS);
}

static void test_imf_fixdate_matches_gmtime(void **state)
{
    static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char out[29], want[64];

    (void)state;
    assert_int_equal(hp_http_format_date(-1, out), -EINVAL);
    assert_int_equal(hp_http_format_date(INT64_C(253402300800), out), -EINVAL);
    assert_int_equal(hp_http_format_date(INT64_C(253402300799), out), 0);
    assert_memory_equal(out, "Fri, 31 Dec 9999 23:59:59 GMT", 29);
    assert_int_equal(hp_http_format_date(951782400, out), 0); /* a leap day of a century */
    assert_memory_equal(out, "Tue, 29 Feb 2000 00:00:00 GMT", 29);
    srand(11);
    for (int i = 0; i < 100000; i++) {
        int64_t t = ((int64_t)rand() << 16 ^ rand()) % INT64_C(253402300800);
        time_t tt = (time_t)t;
        struct tm tm;

        assert_non_null(gmtime_r(&tt, &tm));
        snprintf(want, sizeof(want), "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday],
                 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        assert_int_equal(hp_http_format_date(t, out), 0);
        assert_memory_equal(out, want, 29);
    }
}

/* Random cookie-octet values: what the builder writes, the parser reads back. */
static void test_cookie_round_trip(void **state)
{
    char octets[100], value[40], buf[256];
    size_t n = 0, len;

    (void)state;
    for (int c = 0x21; c <= 0x7e; c++)
        if (c != '"' && c != ',' && c != ';' && c != '\\')
            octets[n++] = (char)c;
    srand(5);
    for (int i = 0; i < 5000; i++) {
        size_t vl = (size_t)rand() % sizeof(value);
        struct hp_cookie c = {.name = S("k"), .path = S("/"), .http_only = i % 2};
        struct hp_str got;
        char header[300];
        int hl;

        for (size_t k = 0; k < vl; k++)
            value[k] = octets[rand() % (int)n];
        c.value = (struct hp_str){value, vl};
        assert_int_equal(hp_cookie_format(&c, buf, sizeof(buf), &len), 0);
        /* A user agent sends back name=value, the part before the first "; ". */
        hl = snprintf(header, sizeof(header), "other=1; %.*s; last=2",
                      (int)(strstr(buf, "; Path") - buf), buf);
        assert_true(hp_cookie_get((struct hp_str){header, (size_t)hl}, S("k"), &got));
        assert_int_equal(got.len, vl);
        assert_memory_equal(got.ptr, value, vl);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie_header_parsing),
        cmocka_unit_test(test_cookie_get),
        cmocka_unit_test(test_set_cookie_attributes),
        cmocka_unit_test(test_set_cookie_refuses_injection),
        cmocka_unit_test(test_imf_fixdate_matches_gmtime),
        cmocka_unit_test(test_cookie_round_trip),
    };

    return cmocka_run_group_tests_name("http/cookie", tests, NULL, NULL);
}
