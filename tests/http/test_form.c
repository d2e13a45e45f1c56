/*
 * tests/http/test_form.c - percent-decoding and urlencoded forms: tables of
 * valid and hostile inputs (bad escapes at every position, NUL, '+', empty
 * pairs, '=' in values), decoding in place, lookups, the pair limit, and a
 * buffer of every size from 0 up for hp_pct_decode.
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

#include <hellepoll/form.h>

#define S(x) HP_STR_LIT(x)

struct pct_case {
    const char *in;
    unsigned flags;
    int rc;
    const char *out;
    size_t out_len;
};

#define OK(in, flags, out)                 \
    {                                      \
        in, flags, 0, out, sizeof(out) - 1 \
    }
#define BAD(in, flags)               \
    {                                \
        in, flags, -EBADMSG, NULL, 0 \
    }

static void test_pct_decode_table(void **state)
{
    static const struct pct_case cases[] = {
        OK("", 0, ""),
        OK("abc", 0, "abc"),
        OK("a%20b", 0, "a b"),
        OK("%41%42%43", 0, "ABC"),
        OK("%e2%82%ac%E2%82%AC", 0, "\xe2\x82\xac\xe2\x82\xac"),
        OK("%00x", 0, "\0x"),
        OK("%25", 0, "%"),
        OK("%2525", 0, "%25"), /* decoded once only */
        OK("a+b", 0, "a+b"),
        OK("a+b", HP_FORM_PLUS_SPACE, "a b"),
        OK("%2B+", HP_FORM_PLUS_SPACE, "+ "),
        OK("%ff%80", 0, "\xff\x80"),
        BAD("%", 0),
        BAD("%4", 0),
        BAD("a%4", 0),
        BAD("%G0", 0),
        BAD("%0G", 0),
        BAD("%%41", 0),
        BAD("%-1", 0),
        BAD("% 41", 0),
        BAD("abc%", HP_FORM_PLUS_SPACE),
        BAD("%\x00"
            "0",
            0),
    };
    char buf[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct pct_case *c = &cases[i];
        size_t inlen = strlen(c->in) + (i == sizeof(cases) / sizeof(cases[0]) - 1 ? 2 : 0);
        struct hp_str in = {c->in, inlen};
        size_t len = 999;
        int rc = hp_pct_decode(in, buf, sizeof(buf), c->flags, &len);

        assert_int_equal(rc, c->rc);
        if (rc == 0) {
            assert_int_equal(len, c->out_len);
            assert_memory_equal(buf, c->out, len);
            assert_true(hp_pct_equal(in, (struct hp_str){c->out, c->out_len}, c->flags));
            assert_false(hp_pct_equal(in, (struct hp_str){"x", 1}, c->flags) && c->out_len != 1);
        } else {
            assert_int_equal(len, 999); /* untouched */
            assert_false(hp_pct_equal(in, S(""), c->flags));
        }
    }
}

static void test_pct_decode_in_place_and_every_buffer_size(void **state)
{
    static const char in[] = "x%41yy%42%43+zz";
    char buf[sizeof(in)];
    size_t len;

    (void)state;
    memcpy(buf, in, sizeof(in));
    assert_int_equal(hp_pct_decode((struct hp_str){buf, sizeof(in) - 1}, buf, sizeof(buf),
                                   HP_FORM_PLUS_SPACE, &len),
                     0);
    assert_int_equal(len, 9);
    assert_memory_equal(buf, "xAyyBC zz", 9);
    for (size_t cap = 0; cap < sizeof(in); cap++) {
        char out[sizeof(in)];
        int rc =
            hp_pct_decode((struct hp_str){in, sizeof(in) - 1}, out, cap, HP_FORM_PLUS_SPACE, &len);

        assert_int_equal(rc, cap >= 9 ? 0 : -ENOBUFS);
    }
}

static void test_form_walk_splits_pairs_like_browsers(void **state)
{
    static const struct {
        const char *name, *value;
    } want[] = {
        {"a", "1"}, {"b", ""}, {"c", ""}, {"", "x"}, {"d", "=e=f"}, {"g h", "i j"}, {"k&l", "m=n"},
    };
    struct hp_form_iter it;
    struct hp_str name, value;
    char buf[128];
    size_t n = 0;
    int rc;

    (void)state;
    hp_form_iter_init(&it, S("&&a=1&b=&c&&=x&d==e=f&g+h=i%20j&k%26l=m%3Dn&"), HP_FORM_PLUS_SPACE,
                      0);
    while ((rc = hp_form_next(&it, buf, sizeof(buf), &name, &value)) == 1) {
        assert_true(n < sizeof(want) / sizeof(want[0]));
        assert_int_equal(name.len, strlen(want[n].name));
        assert_memory_equal(name.ptr, want[n].name, name.len);
        assert_int_equal(value.len, strlen(want[n].value));
        assert_memory_equal(value.ptr, want[n].value, value.len);
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    assert_int_equal(hp_form_next(&it, buf, sizeof(buf), &name, &value), 0); /* stays ended */
    /* empty input */
    hp_form_iter_init(&it, S(""), 0, 0);
    assert_int_equal(hp_form_next_raw(&it, &name, &value), 0);
    hp_form_iter_init(&it, S("&&&"), 0, 0);
    assert_int_equal(hp_form_next_raw(&it, &name, &value), 0);
}

static void test_form_walk_reports_malformed_pairs_and_goes_on(void **state)
{
    struct hp_form_iter it;
    struct hp_str name, value;
    char buf[64];

    (void)state;
    hp_form_iter_init(&it, S("a=%zz&b=2&c%=3"), HP_FORM_PLUS_SPACE, 0);
    assert_int_equal(hp_form_next(&it, buf, sizeof(buf), &name, &value), -EBADMSG);
    assert_int_equal(hp_form_next(&it, buf, sizeof(buf), &name, &value), 1);
    assert_memory_equal(value.ptr, "2", 1);
    assert_int_equal(hp_form_next(&it, buf, sizeof(buf), &name, &value), -EBADMSG);
    assert_int_equal(hp_form_next(&it, buf, sizeof(buf), &name, &value), 0);
    /* raw pairs are views, undecoded */
    hp_form_iter_init(&it, S("x%20y=a+b"), 0, 0);
    assert_int_equal(hp_form_next_raw(&it, &name, &value), 1);
    assert_int_equal(name.len, 5);
    assert_int_equal(value.len, 3);
    /* a small buffer: -ENOBUFS for that pair, the walk goes on */
    hp_form_iter_init(&it, S("long=0123456789&s=1"), 0, 0);
    assert_int_equal(hp_form_next(&it, buf, 8, &name, &value), -ENOBUFS);
    assert_int_equal(hp_form_next(&it, buf, 8, &name, &value), 1);
}

static void test_form_pair_limit(void **state)
{
    char body[4 * 2000 + 1];
    struct hp_form_iter it;
    struct hp_str name, value;
    size_t n = 0, len = 0;
    int rc;

    (void)state;
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(body + len, sizeof(body) - len, "a=%d&", i % 10);
    hp_form_iter_init(&it, (struct hp_str){body, len}, 0, 0);
    while ((rc = hp_form_next_raw(&it, &name, &value)) == 1)
        n++;
    assert_int_equal(rc, -E2BIG);
    assert_int_equal(n, HP_FORM_DEFAULT_MAX_PAIRS);
    assert_int_equal(hp_form_next_raw(&it, &name, &value), 0); /* the walk is over */
    hp_form_iter_init(&it, S("a=1&b=2&c=3"), 0, 2);
    assert_int_equal(hp_form_next_raw(&it, &name, &value), 1);
    assert_int_equal(hp_form_next_raw(&it, &name, &value), 1);
    assert_int_equal(hp_form_next_raw(&it, &name, &value), -E2BIG);
    hp_form_iter_init(&it, S("a=1&b=2&&"), 0, 2); /* exactly the limit: fine */
    assert_int_equal(hp_form_next_raw(&it, &name, &value), 1);
    assert_int_equal(hp_form_next_raw(&it, &name, &value), 1);
    assert_int_equal(hp_form_next_raw(&it, &name, &value), 0);
}

static void test_form_parse_in_place(void **state)
{
    char body[] = "first=J%C3%BCrgen+M&empty=&flag&last=%3D%26";
    struct hp_form_pair pairs[4];
    size_t n = 0;
    const struct hp_form_pair *p;

    (void)state;
    assert_int_equal(
        hp_form_parse_inplace(body, sizeof(body) - 1, HP_FORM_PLUS_SPACE, pairs, 4, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(pairs[0].value.len, 9);
    assert_memory_equal(pairs[0].value.ptr, "J\xc3\xbcrgen M", 9);
    assert_int_equal(pairs[1].value.len, 0);
    assert_int_equal(pairs[2].name.len, 4);
    assert_int_equal(pairs[2].value.len, 0);
    p = hp_form_find(pairs, n, S("last"));
    assert_non_null(p);
    assert_int_equal(p->value.len, 2);
    assert_memory_equal(p->value.ptr, "=&", 2);
    assert_null(hp_form_find(pairs, n, S("missing")));
    {
        char b2[] = "a=1&b=2&c=3";

        assert_int_equal(hp_form_parse_inplace(b2, sizeof(b2) - 1, 0, pairs, 2, &n), -E2BIG);
    }
    {
        char b3[] = "a=1&b=%";

        assert_int_equal(hp_form_parse_inplace(b3, sizeof(b3) - 1, 0, pairs, 4, &n), -EBADMSG);
    }
}

static void test_form_get(void **state)
{
    struct hp_str in = S("q=caf%C3%A9+au+lait&page=2&Q=upper&bad%=x&q=second&v=%x");
    struct hp_str v;
    char buf[64];

    (void)state;
    assert_int_equal(hp_form_get(in, S("q"), HP_FORM_PLUS_SPACE, buf, sizeof(buf), &v), 0);
    assert_int_equal(v.len, 13);
    assert_memory_equal(v.ptr, "caf\xc3\xa9 au lait", 13);
    assert_int_equal(hp_form_get(in, S("Q"), HP_FORM_PLUS_SPACE, buf, sizeof(buf), &v), 0);
    assert_memory_equal(v.ptr, "upper", 5);
    assert_int_equal(hp_form_get(in, S("page"), 0, buf, sizeof(buf), &v), 0);
    assert_int_equal(hp_form_get(in, S("nope"), 0, buf, sizeof(buf), &v), -ENOENT);
    assert_int_equal(hp_form_get(in, S("v"), 0, buf, sizeof(buf), &v), -EBADMSG);
    assert_int_equal(hp_form_get(in, S("q"), HP_FORM_PLUS_SPACE, buf, 3, &v), -ENOBUFS);
    /* an encoded name matches its decoded form */
    assert_int_equal(hp_form_get(S("a%20b=1"), S("a b"), 0, buf, sizeof(buf), &v), 0);
    assert_int_equal(hp_form_get(S("a+b=1"), S("a b"), HP_FORM_PLUS_SPACE, buf, sizeof(buf), &v),
                     0);
    assert_int_equal(hp_form_get(S("a+b=1"), S("a b"), 0, buf, sizeof(buf), &v), -ENOENT);
}

static void test_pct_encode_round_trips(void **state)
{
    char in[64], enc[3 * 64], dec[64];
    size_t elen, dlen;

    (void)state;
    assert_int_equal(hp_pct_encode(S("a b+c/~\xc3\xa9"), enc, sizeof(enc), 0, &elen), 0);
    assert_int_equal(elen, 19);
    assert_memory_equal(enc, "a%20b%2Bc%2F~%C3%A9", 19);
    assert_int_equal(hp_pct_encode(S("a b+c"), enc, sizeof(enc), HP_FORM_PLUS_SPACE, &elen), 0);
    assert_int_equal(elen, 7);
    assert_memory_equal(enc, "a+b%2Bc", 7);
    assert_int_equal(hp_pct_encode(S("ab"), enc, 1, 0, &elen), -ENOBUFS);
    assert_int_equal(hp_pct_encode(S("a/"), enc, 3, 0, &elen), -ENOBUFS);
    assert_int_equal(hp_pct_encode(S("a/"), enc, 4, 0, &elen), 0);
    srand(4);
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)rand() % sizeof(in);
        unsigned flags = (unsigned)i & 1;

        for (size_t k = 0; k < n; k++)
            in[k] = (char)rand();
        assert_int_equal(hp_pct_encode((struct hp_str){in, n}, enc, 3 * n, flags, &elen), 0);
        assert_int_equal(hp_pct_decode((struct hp_str){enc, elen}, dec, sizeof(dec), flags, &dlen),
                         0);
        assert_int_equal(dlen, n);
        assert_memory_equal(dec, in, n);
        for (size_t k = 0; k < elen; k++) /* nothing a form or a URL would split on */
            assert_null(memchr("&=?#/; \"\r\n", enc[k], 10));
    }
}

/* Random bytes: decoding never writes past its buffer nor grows, and agrees with pct_equal. */
static void test_form_random_input_is_safe(void **state)
{
    static const char alphabet[] = "%+&=aF0G9 \x00\xff";
    char in[48], out[48];

    (void)state;
    srand(3);
    for (int i = 0; i < 100000; i++) {
        size_t n = (size_t)rand() % sizeof(in), len = 0;
        int rc;

        for (size_t k = 0; k < n; k++)
            in[k] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
        rc = hp_pct_decode((struct hp_str){in, n}, out, n, (unsigned)i & 1, &len);
        assert_true(rc == 0 || rc == -EBADMSG);
        if (rc == 0) {
            assert_true(len <= n);
            assert_true(
                hp_pct_equal((struct hp_str){in, n}, (struct hp_str){out, len}, (unsigned)i & 1));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pct_decode_table),
        cmocka_unit_test(test_pct_decode_in_place_and_every_buffer_size),
        cmocka_unit_test(test_pct_encode_round_trips),
        cmocka_unit_test(test_form_walk_splits_pairs_like_browsers),
        cmocka_unit_test(test_form_walk_reports_malformed_pairs_and_goes_on),
        cmocka_unit_test(test_form_pair_limit),
        cmocka_unit_test(test_form_parse_in_place),
        cmocka_unit_test(test_form_get),
        cmocka_unit_test(test_form_random_input_is_safe),
    };

    return cmocka_run_group_tests_name("http/form", tests, NULL, NULL);
}
