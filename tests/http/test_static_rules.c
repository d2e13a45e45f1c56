/*
 * tests/http/test_static_rules.c - the static handler's pure rules, from
 * the RFCs' own examples and edge cases: path normalisation and refusals,
 * the three HTTP-date formats (RFC 9110 §5.6.7), entity-tag comparison
 * (§8.8.3.2's table), Range parsing (§14.1.2's examples), Accept-Encoding
 * q-values (§12.5.3) and the Content-Type table.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "static_internal.h"

static struct hp_str S(const char *s) {
    return hp_str_make(s);
}

static bool
str_is(struct hp_str a, const char *b)
{
    return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

static void path_is(const char *in, const char *want, bool want_dir)
{
    char out[256];
    bool dir;
    int n = hp__static_path(in, strlen(in), out, sizeof(out), false, &dir);

    if (n < 0)
        fail_msg("%s refused with %d", in, -n);
    assert_string_equal(out, want);
    assert_int_equal((size_t)n, strlen(want));
    if (dir != want_dir)
        fail_msg("%s: dir %d", in, dir);
}

static void path_refused(const char *in, int status)
{
    char out[256];
    bool dir;
    int n = hp__static_path(in, strlen(in), out, sizeof(out), false, &dir);

    if (n != -status)
        fail_msg("%s: %d, wanted -%d", in, n, status);
}

static void test_rules_path_normalisation_and_refusals(void **state)
{
    (void)state;
    path_is("/", "", true);
    path_is("", "", true);
    path_is("/a/b.txt", "a/b.txt", false);
    path_is("//a///b.txt", "a/b.txt", false);
    path_is("/a/./b.txt", "a/b.txt", false);
    path_is("/a/../b.txt", "b.txt", false);
    path_is("/a/b/..", "a", true);
    path_is("/a/", "a", true);
    path_is("/a/.", "a", true);
    path_is("/%41%62c", "Abc", false);
    path_is("/sp%20ace", "sp ace", false);
    path_is("/a%2Eb", "a.b", false); /* a dot inside a name is fine */
    path_refused("/../a", 400);
    path_refused("/a/../../b", 400);
    path_refused("/%2e%2e/a", 400);
    path_refused("/%2E%2e/a", 400);
    path_refused("/.%2e/a", 400);
    path_refused("/a/%2e/b", 400);
    path_refused("/a%2fb", 404);
    path_refused("/a%2Fb", 404);
    path_refused("/a%00b", 400);
    path_refused("/a\\b", 400);
    path_refused("/a%5cb", 400);
    path_refused("/a%zz", 400);
    path_refused("/a%4", 400);
    path_refused("/.git/config", 403);
    path_refused("/a/.env", 403);
    {
        char out[8];
        bool dir;

        assert_int_equal(hp__static_path("/abcdefghij", 11, out, sizeof(out), false, &dir), -404);
        assert_int_equal(hp__static_path("/.env", 5, out, sizeof(out), true, &dir), 4);
    }
}

static void date_is(const char *s, int64_t want)
{
    int64_t t = 0;

    if (!hp__http_date_parse(S(s), &t))
        fail_msg("'%s' not parsed", s);
    assert_int_equal(t, want);
}

static void test_rules_http_dates_in_all_three_formats(void **state)
{
    char out[30];
    int64_t t;

    (void)state;
    /* RFC 9110 §5.6.7's example, 784111777 seconds after the epoch. */
    date_is("Sun, 06 Nov 1994 08:49:37 GMT", 784111777);
    date_is("Sunday, 06-Nov-94 08:49:37 GMT", 784111777);
    date_is("Sun Nov  6 08:49:37 1994", 784111777);
    date_is("Thu, 02 Jan 2020 03:04:05 GMT", 1577934245);
    date_is("Thu, 01 Jan 1970 00:00:00 GMT", 0);
    date_is("Tue, 29 Feb 2028 23:59:59 GMT", 1835481599);
    assert_false(hp__http_date_parse(S("Sun, 06 Nov 1994 08:49:37 UTC"), &t));
    assert_false(hp__http_date_parse(S("Sun, 06 Foo 1994 08:49:37 GMT"), &t));
    assert_false(hp__http_date_parse(S("Sun, 06 Nov 1994 25:49:37 GMT"), &t));
    assert_false(hp__http_date_parse(S("yesterday"), &t));
    assert_false(hp__http_date_parse(S(""), &t));
    assert_int_equal(hp__http_date_format(784111777, out), 29);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    hp__http_date_format(1835481599, out);
    assert_string_equal(out, "Tue, 29 Feb 2028 23:59:59 GMT");
    hp__http_date_format(0, out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
}

static void test_rules_entity_tag_comparison(void **state)
{
    (void)state;
    /* RFC 9110 §8.8.3.2: W/"1" vs W/"1": weak match, no strong match; "1" vs "1": both. */
    assert_true(hp__etag_match(S("\"1\""), S("\"1\""), false));
    assert_true(hp__etag_match(S("\"1\""), S("\"1\""), true));
    assert_false(hp__etag_match(S("W/\"1\""), S("\"1\""), false));
    assert_true(hp__etag_match(S("W/\"1\""), S("\"1\""), true));
    assert_false(hp__etag_match(S("\"2\""), S("\"1\""), true));
    assert_true(hp__etag_match(S("\"a\", \"b\" ,\"1\""), S("\"1\""), false));
    assert_true(hp__etag_match(S("*"), S("\"1\""), false));
    assert_false(hp__etag_match(S(""), S("\"1\""), true));
    assert_false(hp__etag_match(S("1"), S("\"1\""), true));   /* unquoted: malformed */
    assert_false(hp__etag_match(S("\"1"), S("\"1\""), true)); /* unterminated */
    assert_false(hp__etag_match(S("\"11\""), S("\"1\""), true));
}

static void ranges_are(const char *h, uint64_t len, int want, const char *expect)
{
    struct hp__range r[8];
    unsigned n = 0;
    char got[256] = "";
    size_t o = 0;
    int rc = hp__ranges_parse(S(h), len, r, 8, &n);

    if (rc != want)
        fail_msg("'%s' on %llu: %d, wanted %d", h, (unsigned long long)len, rc, want);
    for (unsigned i = 0; i < n; i++)
        o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%llu-%llu", i ? "," : "",
                              (unsigned long long)r[i].first, (unsigned long long)r[i].last);
    if (expect && strcmp(got, expect) != 0)
        fail_msg("'%s': got %s, wanted %s", h, got, expect);
}

static void test_rules_byte_ranges(void **state)
{
    (void)state;
    /* RFC 9110 §14.1.2's examples on a 10000-byte representation. */
    ranges_are("bytes=0-499", 10000, HP__RANGE_OK, "0-499");
    ranges_are("bytes=500-999", 10000, HP__RANGE_OK, "500-999");
    ranges_are("bytes=-500", 10000, HP__RANGE_OK, "9500-9999");
    ranges_are("bytes=9500-", 10000, HP__RANGE_OK, "9500-9999");
    ranges_are("bytes=0-0,-1", 10000, HP__RANGE_OK, "0-0,9999-9999");
    ranges_are("bytes= 0-999, 4500-5499, -1000", 10000, HP__RANGE_OK, "0-999,4500-5499,9000-9999");
    ranges_are("bytes=500-600,601-999", 10000, HP__RANGE_OK, "500-999");   /* adjacent: merged */
    ranges_are("bytes=500-700,601-999", 10000, HP__RANGE_OK, "500-999");   /* overlapping */
    ranges_are("bytes=9000-,0-10", 10000, HP__RANGE_OK, "0-10,9000-9999"); /* sorted */
    ranges_are("BYTES=0-1", 10, HP__RANGE_OK, "0-1");
    ranges_are("bytes=5-100", 10, HP__RANGE_OK, "5-9");
    ranges_are("bytes=-100", 10, HP__RANGE_OK, "0-9");
    ranges_are("bytes=10-", 10, HP__RANGE_UNSAT, "");
    ranges_are("bytes=-0", 10, HP__RANGE_UNSAT, "");
    ranges_are("bytes=0-", 0, HP__RANGE_UNSAT, "");
    ranges_are("bytes=20-30,5-6", 10, HP__RANGE_OK, "5-6"); /* the unsatisfiable one dropped */
    ranges_are("bytes=5-2", 10, HP__RANGE_IGNORE, "");
    ranges_are("bytes=a-b", 10, HP__RANGE_IGNORE, "");
    ranges_are("bytes=", 10, HP__RANGE_IGNORE, "");
    ranges_are("items=0-1", 10, HP__RANGE_IGNORE, "");
    ranges_are("bytes=0-1;x", 10, HP__RANGE_IGNORE, "");
    ranges_are("bytes=99999999999999999999-", 10, HP__RANGE_IGNORE, "");
    ranges_are("bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7", 10, HP__RANGE_OK, "0-7");
    ranges_are("bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8", 10, HP__RANGE_IGNORE, ""); /* > 8 */
}

static void test_rules_accept_encoding_q_values(void **state)
{
    const unsigned both = 1u << HP__ENC_GZIP | 1u << HP__ENC_BR, gz = 1u << HP__ENC_GZIP;

    (void)state;
    assert_int_equal(hp__accept_encoding(S("gzip, deflate, br"), both), HP__ENC_BR);
    assert_int_equal(hp__accept_encoding(S("gzip, deflate, br"), gz), HP__ENC_GZIP);
    assert_int_equal(hp__accept_encoding(S("br;q=0.5, gzip;q=0.8"), both), HP__ENC_GZIP);
    assert_int_equal(hp__accept_encoding(S("gzip;q=0, br"), both), HP__ENC_BR);
    assert_int_equal(hp__accept_encoding(S("gzip;q=0"), gz), HP__ENC_IDENTITY);
    assert_int_equal(hp__accept_encoding(S("br;q=0"), 1u << HP__ENC_BR), HP__ENC_IDENTITY);
    assert_int_equal(hp__accept_encoding(S("identity"), both), HP__ENC_IDENTITY);
    assert_int_equal(hp__accept_encoding(S(""), both), HP__ENC_IDENTITY);
    assert_int_equal(hp__accept_encoding(S("*"), both), HP__ENC_BR);
    assert_int_equal(hp__accept_encoding(S("*;q=0.3, gzip;q=0.2"), both), HP__ENC_BR);
    assert_int_equal(hp__accept_encoding(S("GZIP;Q=1.0"), gz), HP__ENC_GZIP);
    assert_int_equal(hp__accept_encoding(S("x-gzip"), gz), HP__ENC_GZIP);
    assert_int_equal(hp__accept_encoding(S("gzip;q=0.5, identity;q=1"), gz), HP__ENC_IDENTITY);
    assert_int_equal(hp__accept_encoding(S("gzip;q=2"), gz), HP__ENC_IDENTITY); /* bad q */
    assert_int_equal(hp__accept_encoding(S("deflate"), both), HP__ENC_IDENTITY);
}

static void test_rules_content_types(void **state)
{
    struct hp__mime *m;
    FILE *f;
    char path[] = "/tmp/hp-mime-XXXXXX";
    int fd;

    (void)state;
    assert_int_equal(hp__mime_new(&m, NULL), 0);
    assert_true(str_is(hp__mime_lookup(m, "a/b.HTML", 8), "text/html; charset=utf-8"));
    assert_true(str_is(hp__mime_lookup(m, "x.png", 5), "image/png"));
    assert_true(str_is(hp__mime_lookup(m, "x.mp4", 5), "video/mp4"));
    assert_true(str_is(hp__mime_lookup(m, "noext", 5), "application/octet-stream"));
    assert_true(str_is(hp__mime_lookup(m, "d.png/x", 7), "application/octet-stream"));
    hp__mime_free(m);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs("# comment\nimage/png png\napplication/x-foo foo  bar\n\n", f);
    fclose(f);
    assert_int_equal(hp__mime_new(&m, path), 0);
    assert_true(str_is(hp__mime_lookup(m, "x.bar", 5), "application/x-foo"));
    assert_true(str_is(hp__mime_lookup(m, "x.png", 5), "image/png"));
    hp__mime_free(m);
    remove(path);
    assert_int_equal(hp__mime_new(&m, "/nonexistent/mime.types"), 0); /* missing: builtin only */
    hp__mime_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_path_normalisation_and_refusals),
        cmocka_unit_test(test_rules_http_dates_in_all_three_formats),
        cmocka_unit_test(test_rules_entity_tag_comparison),
        cmocka_unit_test(test_rules_byte_ranges),
        cmocka_unit_test(test_rules_accept_encoding_q_values),
        cmocka_unit_test(test_rules_content_types),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
