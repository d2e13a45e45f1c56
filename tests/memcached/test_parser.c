/*
 * tests/memcached/test_parser.c - the meta response parser (complete,
 * split at every byte, malformed) and request formatting (flags, base64
 * keys, key validation).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parser.h"
#include "request.h"

static ssize_t parse_str(const char *s, struct hp__mc_resp *r)
{
    struct hp__mc_parser p;

    hp__mc_parser_init(&p, 1024);
    return hp__mc_parse(&p, s, strlen(s), r);
}

static void test_responses(void **state)
{
    struct hp__mc_resp r;
    const char *s;

    (void)state;
    s = "VA 3 f5 c17 t-1 O14\r\nabc\r\n";
    assert_int_equal(parse_str(s, &r), (ssize_t)strlen(s));
    assert_int_equal(r.rc, HP__MC_VA);
    assert_int_equal(r.data_len, 3);
    assert_memory_equal(r.data, "abc", 3);
    assert_int_equal(r.flags, 5);
    assert_int_equal(r.cas, 17);
    assert_int_equal(r.ttl, -1);
    assert_true(r.has_opaque);
    assert_int_equal(r.opaque, 14);
    assert_int_equal(parse_str("EN O12\r\n", &r), 8);
    assert_int_equal(r.rc, HP__MC_EN);
    assert_int_equal(r.opaque, 12);
    assert_int_equal(parse_str("EN\r\n", &r), 4);
    assert_false(r.has_opaque);
    assert_int_equal(parse_str("HD c1 O13\r\n", &r), 11);
    assert_int_equal(r.rc, HP__MC_HD);
    assert_int_equal(parse_str("NS\r\n", &r), 4);
    assert_int_equal(r.rc, HP__MC_NS);
    assert_int_equal(parse_str("EX O1\r\n", &r), 7);
    assert_int_equal(r.rc, HP__MC_EX);
    assert_int_equal(parse_str("NF O1\r\n", &r), 7);
    assert_int_equal(r.rc, HP__MC_NF);
    assert_int_equal(parse_str("MN\r\n", &r), 4);
    assert_int_equal(r.rc, HP__MC_MN);
    assert_int_equal(parse_str("VA 3 O21 kfoo b\r\nabc\r\n", &r), 22);
    assert_int_equal(parse_str("VA 0\r\n\r\n", &r), 8);
    assert_int_equal(r.data_len, 0);
    s = "CLIENT_ERROR bad command line format\r\n";
    assert_int_equal(parse_str(s, &r), (ssize_t)strlen(s));
    assert_int_equal(r.rc, HP__MC_CLIENT_ERROR);
    assert_int_equal(r.data_len, strlen(s) - 2);
    assert_int_equal(parse_str("SERVER_ERROR out of memory\r\n", &r), 28);
    assert_int_equal(r.rc, HP__MC_SERVER_ERROR);
    assert_int_equal(parse_str("ERROR\r\n", &r), 7);
    assert_int_equal(r.rc, HP__MC_ERROR);
    /* A value binary inside: CR, LF and NUL bytes are data. */
    {
        static const char bin[] = "VA 4\r\n\r\n\0x\r\n";
        struct hp__mc_parser p;

        hp__mc_parser_init(&p, 1024);
        assert_int_equal(hp__mc_parse(&p, bin, sizeof(bin) - 1, &r), (ssize_t)sizeof(bin) - 1);
        assert_memory_equal(r.data, "\r\n\0x", 4);
    }
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "XX\r\n",
        "VA\r\n",
        "VA x\r\nabc\r\n",
        "VA 3\r\nabcd\r\n",
        "HD  c1\r\n",
        "HD c1 \r\n",
        "HD \r\n",
        "HD\n",
        "HD c1x\r\n",
        "HD Oabc\r\n",
        "HD O99999999999\r\n",
        "HD\rc\r\n",
        "HD 1\r\n",
        "MN O1\r\n",
        "hd\r\n",
        "HDX\r\n",
        "VA 99999999999999999999999\r\n",
        "HD f4294967296\r\n",
        "HD t-2\r\n",
        "EN\x01\r\n",
        "VA 3 \r\nabc\r\n",
        "ERRORS\r\n",
    };
    struct hp__mc_resp r;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ssize_t n = parse_str(bad[i], &r);

        if (n != -EPROTO)
            fail_msg("\"%s\" gave %zd", bad[i], n);
    }
    assert_int_equal(parse_str("VA 2000\r\n", &r), -EMSGSIZE);
    /* A line that never ends is cut off. */
    {
        char *line = malloc(HP__MC_MAX_LINE + 10);
        struct hp__mc_parser p;

        memset(line, 'a', HP__MC_MAX_LINE + 10);
        memcpy(line, "HD ", 3);
        hp__mc_parser_init(&p, 1024);
        assert_int_equal(hp__mc_parse(&p, line, HP__MC_MAX_LINE + 10, &r), -EPROTO);
        free(line);
    }
}

/* Every prefix of a stream of responses asks for more; the whole parses. */
static void test_split(void **state)
{
    static const char in[] = "VA 5 f1 O1\r\nhello\r\nEN O2\r\nHD O3\r\nVA 2 O4\r\n\r\n\r\nMN\r\n";
    static const ssize_t sizes[] = {19, 7, 7, 13, 4};
    struct hp__mc_parser p;
    struct hp__mc_resp r;
    size_t off = 0;

    (void)state;
    hp__mc_parser_init(&p, 1024);
    for (size_t k = 0; k < 5; k++) {
        for (size_t cut = 0; cut < (size_t)sizes[k]; cut++)
            assert_int_equal(hp__mc_parse(&p, in + off, cut, &r), 0);
        assert_int_equal(hp__mc_parse(&p, in + off, sizeof(in) - 1 - off, &r), sizes[k]);
        off += (size_t)sizes[k];
    }
    assert_int_equal(off, sizeof(in) - 1);
}

static void test_format(void **state)
{
    struct hp__mc_buf b = {0};
    struct hp_mc_req o = {.flags = HP_MC_RETURN_CAS | HP_MC_QUIET,
                          .ttl = 60,
                          .client_flags = 7,
                          .mode = HP_MC_ADD,
                          .cas = 99};
    static const char bin[] = {'a', ' ', 'b', 0};

    (void)state;
    assert_int_equal(hp__mc_format(&b, HP__MC_CMD_MG, HP_STR_LIT("foo"), NULL, 5, NULL, 0), 0);
    assert_int_equal(hp__mc_format(&b, HP__MC_CMD_MS, HP_STR_LIT("foo"), &o, 6, "abc", 3), 0);
    assert_int_equal(hp__mc_format(&b, HP__MC_CMD_MD, (struct hp_str){bin, 4}, NULL, 7, NULL, 0),
                     0);
    o = (struct hp_mc_req){.delta = 5, .decrement = true};
    assert_int_equal(hp__mc_format(&b, HP__MC_CMD_MA, HP_STR_LIT("n"), &o, 8, NULL, 0), 0);
    assert_int_equal(hp__mc_format(&b, HP__MC_CMD_MN, HP_STR_LIT(""), NULL, 0, NULL, 0), 0);
    b.p[b.len] = 0;
    assert_string_equal(b.p, "mg foo v f O5\r\n"
                             "ms foo 3 T60 F7 ME C99 c q O6\r\nabc\r\n"
                             "md YSBiAA== b O7\r\n"
                             "ma n v D5 MD O8\r\n"
                             "mn\r\n");
    hp__mc_buf_free(&b);
}

static void test_keys(void **state)
{
    char k[300];

    (void)state;
    memset(k, 'k', sizeof(k));
    assert_int_equal(hp_mc_key_check(HP_STR_LIT("plain")), 0);
    assert_int_equal(hp_mc_key_check(HP_STR_LIT("with space")), 1);
    assert_int_equal(hp_mc_key_check(HP_STR_LIT("tab\t")), 1);
    assert_int_equal(hp_mc_key_check(HP_STR_LIT("\xff")), 1);
    assert_int_equal(hp_mc_key_check(HP_STR_LIT("")), -EINVAL);
    assert_int_equal(hp_mc_key_check((struct hp_str){k, 250}), 0);
    assert_int_equal(hp_mc_key_check((struct hp_str){k, 251}), -EINVAL);
    k[0] = ' ';
    assert_int_equal(hp_mc_key_check((struct hp_str){k, 186}), 1);
    assert_int_equal(hp_mc_key_check((struct hp_str){k, 187}), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_responses), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_split),     cmocka_unit_test(test_format),
        cmocka_unit_test(test_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
