/*
 * tests/http/test_parser.c - the request-head parser and chunked decoder,
 * from tables of valid and invalid inputs. Every input is parsed whole, then
 * split at every byte boundary, then one byte at a time; all must agree.
 * Each parse sees its bytes placed so that they end at a PROT_NONE guard
 * page, so reading one byte too far crashes the test, and the placement
 * moves between calls, as a real read buffer may.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "parser.h"

/* ---- guard-page placement ---------------------------------------------- */

static char *guard_base;
static size_t guard_span; /* usable bytes before the guard page */

static int setup_guard(void **state)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    (void)state;
    guard_span = 16 * page;
    guard_base =
        mmap(NULL, guard_span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (guard_base == MAP_FAILED)
        return -1;
    return mprotect(guard_base + guard_span, page, PROT_NONE);
}

static int teardown_guard(void **state)
{
    (void)state;
    munmap(guard_base, guard_span + (size_t)sysconf(_SC_PAGESIZE));
    return 0;
}

/* Copy @p len bytes so they end at the guard page; returns the copy. */
static char *place(const char *in, size_t len)
{
    assert_true(len <= guard_span);
    char *p = guard_base + guard_span - len;
    memmove(p, in, len);
    return p;
}

/* ---- head cases -------------------------------------------------------- */

static const struct hp__http_limits limits = {
    .max_target = 64,
    .max_head = 512,
    .max_headers = 8,
    .max_body = 1000,
};

struct head_case {
    const char *name;
    const char *in;
    size_t len;
    int status; /* 0: valid */
    size_t head_len;
    const char *method, *target, *path, *query;
    int minor;
    unsigned nfields;
    uint64_t content_length;
    unsigned flags; /* flags that must be set */
};

#define OK(n, s, hl, m, t, pa, q, mi, nf, cl, fl)               \
    {                                                           \
        n, s, sizeof(s) - 1, 0, hl, m, t, pa, q, mi, nf, cl, fl \
    }
#define BAD(n, s, st)                                                  \
    {                                                                  \
        n, s, sizeof(s) - 1, st, 0, NULL, NULL, NULL, NULL, 0, 0, 0, 0 \
    }

#define H "Host: example.com\r\n"

static const struct head_case head_cases[] = {
    OK("simple get", "GET / HTTP/1.1\r\n" H "\r\n", 37, "GET", "/", "/", NULL, 1, 1, 0,
       HP__REQ_HAS_HOST),
    OK("http/1.0 without host", "GET /a HTTP/1.0\r\n\r\n", 19, "GET", "/a", "/a", NULL, 0, 0, 0, 0),
    OK("path and query", "GET /p/q?x=1&y HTTP/1.1\r\n" H "\r\n", 46, "GET", "/p/q?x=1&y", "/p/q",
       "x=1&y", 1, 1, 0, 0),
    OK("empty query", "GET /p? HTTP/1.1\r\n" H "\r\n", 39, "GET", "/p?", "/p", "", 1, 1, 0, 0),
    OK("body follows head", "POST /u HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhello", 58, "POST",
       "/u", "/u", NULL, 1, 2, 5, HP__REQ_HAS_LENGTH),
    OK("pipelined data is not part of the head", "GET / HTTP/1.1\r\n" H "\r\nGET / HTTP/1.1\r\n",
       37, "GET", "/", "/", NULL, 1, 1, 0, 0),
    OK("leading empty lines are ignored", "\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", 41, "GET", "/",
       "/", NULL, 1, 1, 0, 0),
    OK("bare lf line ends", "GET / HTTP/1.1\n" H "\n", 35, "GET", "/", "/", NULL, 1, 1, 0, 0),
    OK("ows around values is trimmed",
       "GET / HTTP/1.1\r\nHost:\t example.com \t\r\nX:  a b  \r\n\r\n", 51, "GET", "/", "/", NULL,
       1, 2, 0, 0),
    OK("empty value", "GET / HTTP/1.1\r\n" H "X-Empty:\r\n\r\n", 47, "GET", "/", "/", NULL, 1, 2, 0,
       0),
    OK("obs-text in value", "GET / HTTP/1.1\r\n" H "X: caf\xc3\xa9\r\n\r\n", 47, "GET", "/", "/",
       NULL, 1, 2, 0, 0),
    OK("chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n", 66, "POST", "/",
       "/", NULL, 1, 2, 0, HP__REQ_CHUNKED),
    OK("chunked is case-insensitive, over two fields",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \r\nTransfer-Encoding: CHUNKED\r\n\r\n", 87,
       "POST", "/", "/", NULL, 1, 3, 0, HP__REQ_CHUNKED),
    OK("identical content-lengths",
       "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-length: 003\r\n\r\n", 78, "POST", "/",
       "/", NULL, 1, 3, 3, HP__REQ_HAS_LENGTH),
    OK("connection close", "GET / HTTP/1.1\r\n" H "Connection: keep-alive, Close\r\n\r\n", 68,
       "GET", "/", "/", NULL, 1, 2, 0, HP__REQ_CLOSE | HP__REQ_KEEPALIVE),
    OK("http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 42, "GET", "/",
       "/", NULL, 0, 1, 0, HP__REQ_KEEPALIVE),
    OK("expect 100-continue",
       "PUT /f HTTP/1.1\r\n" H "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\n", 79, "PUT", "/f",
       "/f", NULL, 1, 3, 1, HP__REQ_EXPECT_100),
    OK("options asterisk", "OPTIONS * HTTP/1.1\r\n" H "\r\n", 41, "OPTIONS", "*", "*", NULL, 1, 1,
       0, 0),
    OK("absolute form", "GET http://example.com/a/b?c HTTP/1.1\r\n" H "\r\n", 60, "GET",
       "http://example.com/a/b?c", "/a/b", "c", 1, 1, 0, HP__REQ_ABSOLUTE),
    OK("absolute form without path", "GET HTTPS://example.com:8080 HTTP/1.1\r\n" H "\r\n", 60,
       "GET", "HTTPS://example.com:8080", "", NULL, 1, 1, 0, HP__REQ_ABSOLUTE),
    OK("connect authority form", "CONNECT example.com:443 HTTP/1.1\r\n" H "\r\n", 55, "CONNECT",
       "example.com:443", "", NULL, 1, 1, 0, 0),
    OK("extension method", "PURGE-ALL /x HTTP/1.1\r\n" H "\r\n", 44, "PURGE-ALL", "/x", "/x", NULL,
       1, 1, 0, 0),
    OK("host with port and ipv6", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 36, "GET", "/", "/",
       NULL, 1, 1, 0, HP__REQ_HAS_HOST),
    OK("empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 25, "GET", "/", "/", NULL, 1, 1, 0,
       HP__REQ_HAS_HOST),
    OK("content-length at the limit", "POST / HTTP/1.1\r\n" H "Content-Length: 1000\r\n\r\n", 60,
       "POST", "/", "/", NULL, 1, 2, 1000, 0),

    BAD("cl and te",
        "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    BAD("te and cl",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
    BAD("differing content-lengths",
        "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
    BAD("content-length list", "POST / HTTP/1.1\r\n" H "Content-Length: 3, 3\r\n\r\n", 400),
    BAD("content-length sign", "POST / HTTP/1.1\r\n" H "Content-Length: +3\r\n\r\n", 400),
    BAD("content-length hex", "POST / HTTP/1.1\r\n" H "Content-Length: 0x3\r\n\r\n", 400),
    BAD("content-length empty", "POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", 400),
    BAD("content-length overflow",
        "POST / HTTP/1.1\r\n" H "Content-Length: 18446744073709551616\r\n\r\n", 400),
    BAD("content-length over the limit", "POST / HTTP/1.1\r\n" H "Content-Length: 1001\r\n\r\n",
        413),
    BAD("final coding not chunked",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    BAD("chunked twice",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        400),
    BAD("only an unknown coding", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", 400),
    BAD("unsupported coding before chunked",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
    BAD("empty transfer-encoding", "POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n", 400),
    BAD("te in http/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    BAD("chunked with parameter", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;x=1\r\n\r\n",
        400),
    BAD("whitespace before colon", "GET / HTTP/1.1\r\n" H "X-A : b\r\n\r\n", 400),
    BAD("tab before colon", "GET / HTTP/1.1\r\n" H "X-A\t: b\r\n\r\n", 400),
    BAD("obs-fold", "GET / HTTP/1.1\r\n" H "X-A: b\r\n  c\r\n\r\n", 400),
    BAD("obs-fold with tab", "GET / HTTP/1.1\r\n" H "X-A: b\r\n\tc\r\n\r\n", 400),
    BAD("whitespace before first field", "GET / HTTP/1.1\r\n " H "\r\n", 400),
    BAD("bare cr in value", "GET / HTTP/1.1\r\n" H "X: a\rb\r\n\r\n", 400),
    BAD("bare cr after request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
    BAD("bare cr at end of head", "GET / HTTP/1.1\r\n" H "\rX", 400),
    BAD("bare cr leading", "\rGET / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("nul in value", "GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n", 400),
    BAD("control char in value",
        "GET / HTTP/1.1\r\n" H "X: a\x01"
        "b\r\n\r\n",
        400),
    BAD("del in value", "GET / HTTP/1.1\r\n" H "X: a\x7f\r\n\r\n", 400),
    BAD("control char in name", "GET / HTTP/1.1\r\n" H "X\x01: a\r\n\r\n", 400),
    BAD("slash in name", "GET / HTTP/1.1\r\n" H "X/Y: a\r\n\r\n", 400),
    BAD("empty name", "GET / HTTP/1.1\r\n" H ": a\r\n\r\n", 400),
    BAD("no colon", "GET / HTTP/1.1\r\n" H "Xyz\r\n\r\n", 400),
    BAD("invalid method char", "G(T / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("lowercase version", "GET / http/1.1\r\n" H "\r\n", 400),
    BAD("malformed version", "GET / HTTP/1.1x\r\n" H "\r\n", 400),
    BAD("short version", "GET / HTTP/1\r\n" H "\r\n", 400),
    BAD("http/0.9 request", "GET /\r\n\r\n", 400),
    BAD("two spaces after method", "GET  / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("two spaces after target", "GET /  HTTP/1.1\r\n" H "\r\n", 400),
    BAD("tab separator", "GET\t/ HTTP/1.1\r\n" H "\r\n", 400),
    BAD("empty method", " / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("http/2.0", "GET / HTTP/2.0\r\n" H "\r\n", 505),
    BAD("http/1.2", "GET / HTTP/1.2\r\n" H "\r\n", 505),
    BAD("http/0.9 version", "GET / HTTP/0.9\r\n\r\n", 505),
    BAD("missing host", "GET / HTTP/1.1\r\n\r\n", 400),
    BAD("duplicate host", "GET / HTTP/1.1\r\n" H H "\r\n", 400),
    BAD("duplicate host in http/1.0", "GET / HTTP/1.0\r\n" H H "\r\n", 400),
    BAD("host with userinfo", "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400),
    BAD("host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    BAD("host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    BAD("host with bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400),
    BAD("host bad ip literal", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    BAD("target not origin form", "GET x HTTP/1.1\r\n" H "\r\n", 400),
    BAD("asterisk not for get", "GET * HTTP/1.1\r\n" H "\r\n", 400),
    BAD("absolute form bad scheme", "GET ftp://a/ HTTP/1.1\r\n" H "\r\n", 400),
    BAD("absolute form no authority", "GET http:///a HTTP/1.1\r\n" H "\r\n", 400),
    BAD("fragment in target", "GET /a#b HTTP/1.1\r\n" H "\r\n", 400),
    BAD("control char in target", "GET /a\x01 HTTP/1.1\r\n" H "\r\n", 400),
    BAD("obs-text in target", "GET /\xff HTTP/1.1\r\n" H "\r\n", 400),
    BAD("target too long",
        "GET /0123456789012345678901234567890123456789012345678901234567890123 HTTP/1.1\r\n" H
        "\r\n",
        414),
    BAD("too many fields",
        "GET / HTTP/1.1\r\n" H
        "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\n\r\n",
        431),
    BAD("head too large",
        "GET / HTTP/1.1\r\n" H
        "A: 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"
        "B: 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"
        "C: 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"
        "D: 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"
        "E: 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"
        "F: 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"
        "\r\n",
        431),
};

/* Parse @p len bytes of @p in, in pieces ending at each offset of @p cuts. */
static int64_t parse_pieces(struct hp__http_parser *p, struct hp__http_field *fields,
                            const struct head_case *tc, const size_t *cuts, size_t ncuts)
{
    int64_t rc = 0;

    hp__http_parser_reset(p, fields, &limits);
    for (size_t i = 0; i < ncuts; i++) {
        const char *buf = place(tc->in, cuts[i]);
        rc = hp__http_parse_head(p, buf, cuts[i]);
        if (rc != 0)
            return rc;
    }
    return rc;
}

static void str_equal(const char *want, const char *at, size_t len, const char *what,
                      const char *name)
{
    if (strlen(want) != len || memcmp(want, at, len) != 0)
        fail_msg("%s: %s is '%.*s', want '%s'", name, what, (int)len, at, want);
}

/* Check the results of a parse that ended with @p rc against the table. */
static void check_head(const struct head_case *tc, const struct hp__http_parser *p, int64_t rc,
                       const char *how)
{
    const char *buf = guard_base + guard_span - tc->len; /* the last placement is the whole */

    if (tc->status != 0) {
        if (rc != -tc->status)
            fail_msg("%s (%s): got %lld, want -%d", tc->name, how, (long long)rc, tc->status);
        assert_non_null(p->reason);
        assert_null(strchr(p->reason, '\n'));
        return;
    }
    if (rc != (int64_t)tc->head_len)
        fail_msg("%s (%s): got %lld (%s), want %zu", tc->name, how, (long long)rc,
                 p->reason ? p->reason : "-", tc->head_len);
    str_equal(tc->method, buf + p->method_off, p->method_len, "method", tc->name);
    str_equal(tc->target, buf + p->target_off, p->target_len, "target", tc->name);
    str_equal(tc->path, buf + p->path_off, p->path_len, "path", tc->name);
    if (tc->query == NULL)
        assert_int_equal(p->query_off, 0);
    else
        str_equal(tc->query, buf + p->query_off, p->query_len, "query", tc->name);
    assert_int_equal(p->version_minor, tc->minor);
    assert_int_equal(p->nfields, tc->nfields);
    assert_int_equal(p->content_length, tc->content_length);
    if ((p->flags & tc->flags) != tc->flags)
        fail_msg("%s: flags %#x lack %#x", tc->name, p->flags, tc->flags);
}

static void run_head_case(const struct head_case *tc)
{
    struct hp__http_field fields[8];
    struct hp__http_parser p;
    size_t cuts[2];
    int64_t rc;

    /* Whole. */
    cuts[0] = tc->len;
    rc = parse_pieces(&p, fields, tc, cuts, 1);
    if (rc == 0)
        fail_msg("%s: incomplete", tc->name);
    check_head(tc, &p, rc, "whole");

    /* Split once at every boundary. */
    for (size_t k = 1; k < tc->len; k++) {
        cuts[0] = k;
        cuts[1] = tc->len;
        rc = parse_pieces(&p, fields, tc, cuts, 2);
        char how[32];
        snprintf(how, sizeof(how), "split at %zu", k);
        /* An early verdict came from the prefix: re-place the whole so views line up. */
        place(tc->in, tc->len);
        check_head(tc, &p, rc, how);
    }

    /* One byte at a time. */
    hp__http_parser_reset(&p, fields, &limits);
    rc = 0;
    for (size_t k = 1; k <= tc->len && rc == 0; k++)
        rc = hp__http_parse_head(&p, place(tc->in, k), k);
    place(tc->in, tc->len);
    check_head(tc, &p, rc, "bytewise");
}

static void test_parser_head_table_whole_split_and_bytewise(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(head_cases) / sizeof(head_cases[0]); i++)
        run_head_case(&head_cases[i]);
}

static void test_parser_head_is_incomplete_until_the_empty_line(void **state)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r";
    struct hp__http_field fields[8];
    struct hp__http_parser p;

    (void)state;
    hp__http_parser_reset(&p, fields, &limits);
    assert_int_equal(hp__http_parse_head(&p, place(req, sizeof(req) - 1), sizeof(req) - 1), 0);
}

static void test_parser_header_views_are_exact(void **state)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Long-Name:  v  1 \r\n\r\n";
    struct hp__http_field fields[8];
    struct hp__http_parser p;

    (void)state;
    hp__http_parser_reset(&p, fields, &limits);
    const char *buf = place(req, sizeof(req) - 1);
    assert_true(hp__http_parse_head(&p, buf, sizeof(req) - 1) > 0);
    assert_int_equal(p.nfields, 2);
    str_equal("Host", buf + fields[0].name_off, fields[0].name_len, "name", "views");
    str_equal("h", buf + fields[0].value_off, fields[0].value_len, "value", "views");
    str_equal("X-Long-Name", buf + fields[1].name_off, fields[1].name_len, "name", "views");
    str_equal("v  1", buf + fields[1].value_off, fields[1].value_len, "value", "views");
}

static void test_parser_reason_is_one_line_for_every_error(void **state)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n";
    struct hp__http_field fields[8];
    struct hp__http_parser p;

    (void)state;
    hp__http_parser_reset(&p, fields, &limits);
    assert_int_equal(hp__http_parse_head(&p, place(req, sizeof(req) - 1), sizeof(req) - 1), -400);
    assert_string_equal(p.reason, "whitespace before colon");
}

/* ---- chunked cases ----------------------------------------------------- */

struct chunk_case {
    const char *name;
    const char *in;
    size_t len;
    int status;       /* 0: valid */
    const char *data; /* decoded bytes */
    size_t used;      /* bytes consumed up to the end of the body */
};

#define COK(n, s, d, u)              \
    {                                \
        n, s, sizeof(s) - 1, 0, d, u \
    }
#define CBAD(n, s, st)                   \
    {                                    \
        n, s, sizeof(s) - 1, st, NULL, 0 \
    }

static const struct chunk_case chunk_cases[] = {
    COK("one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", 15),
    COK("several chunks", "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "abcde", 20),
    COK("hex upper case", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", 20),
    COK("hex lower case", "f\r\n0123456789abcde\r\n0\r\n\r\n", "0123456789abcde", 25),
    COK("empty body", "0\r\n\r\n", "", 5),
    COK("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", 20),
    COK("extensions are skipped", "5;name=value;x=\"q s\"\r\nhello\r\n0;end\r\n\r\n", "hello", 38),
    COK("whitespace before extension", "5 ;a\r\nhello\r\n0\r\n\r\n", "hello", 18),
    COK("trailers are skipped", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n", "hello", 31),
    COK("extension with spaces around = and a quoted pair",
        "1 ; a = b ; c=\"x\\\"y\"\r\nx\r\n0\r\n\r\n", "x", 30),
    COK("trailer lines may end in bare lf", "0\r\nX: 1\n\n", "", 9),
    COK("bytes after the body are left", "1\r\nx\r\n0\r\n\r\nGET", "x", 11),
    COK("body at the limit", "10\r\n0123456789abcdef\r\n0\r\n\r\n", "0123456789abcdef", 27),
    CBAD("not hex", "g\r\n", 400),
    CBAD("empty size", "\r\n", 400),
    CBAD("size overflows", "10000000000000000\r\n", 400),
    CBAD("whitespace then line end", "5 \r\nhello\r\n0\r\n\r\n", 400),
    CBAD("junk after size", "5x\r\nhello\r\n0\r\n\r\n", 400),
    CBAD("data longer than size", "3\r\nabcd\r\n0\r\n\r\n", 400),
    CBAD("bare cr after size", "3\rabc\r\n", 400),
    CBAD("control char in extension", "3;a\x01\r\nabc\r\n", 400),
    CBAD("bare lf after size", "5\nhello\r\n0\r\n\r\n", 400),
    CBAD("bare lf after chunk data", "5\r\nhello\n0\r\n\r\n", 400),
    CBAD("bare lf after the last size", "5\r\nhello\r\n0\n\r\n", 400),
    CBAD("bare lf after an extension", "5;a=b\nhello\r\n0\r\n\r\n", 400),
    CBAD("extension without a name", "2;\r\nab\r\n0\r\n\r\n", 400),
    CBAD("extension with an empty name", "2;=\r\nab\r\n0\r\n\r\n", 400),
    CBAD("extension with an empty value", "2;a=\r\nab\r\n0\r\n\r\n", 400),
    CBAD("extension with an unbalanced quote", "2;a=\"x\r\nab\r\n0\r\n\r\n", 400),
    CBAD("extension name not a token", "2;a@b\r\nab\r\n0\r\n\r\n", 400),
    CBAD("extension value not a token", "2;a=b@c\r\nab\r\n0\r\n\r\n", 400),
    CBAD("extension with junk after a quoted value", "2;a=\"x\"y\r\nab\r\n0\r\n\r\n", 400),
    CBAD("trailer obs-fold", "0\r\nX: 1\r\n 2\r\n\r\n", 400),
    CBAD("trailer whitespace before colon", "0\r\nX : 1\r\n\r\n", 400),
    CBAD("trailer bare cr", "0\r\nX: 1\rY\r\n\r\n", 400),
    CBAD("body over the limit", "11\r\n0123456789abcdefg\r\n0\r\n\r\n", 413),
    CBAD("over the limit over several chunks", "10\r\n0123456789abcdef\r\n1\r\nx\r\n0\r\n\r\n",
         413),
    CBAD("size line too long",
         "1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 400),
    CBAD("trailers too long",
         "0\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
         431),
};

#define CHUNK_MAX_BODY 16
#define CHUNK_MAX_META 48

/*
 * Decode tc in place, feeding prefixes ending at each of @p cuts; the
 * buffer keeps the decoded bytes at its front as a connection's would.
 */
static int decode_pieces(const struct chunk_case *tc, const size_t *cuts, size_t ncuts,
                         size_t *rpos, size_t *wpos, char **out)
{
    struct hp__http_chunked c;
    char *buf = place(tc->in, tc->len);
    int rc = 0;

    memset(&c, 0, sizeof(c));
    *rpos = *wpos = 0;
    for (size_t i = 0; i < ncuts && rc == 0; i++)
        rc = hp__http_chunked_decode(&c, buf, cuts[i], rpos, wpos, CHUNK_MAX_BODY, CHUNK_MAX_META);
    if (rc < 0) {
        assert_non_null(c.reason);
    }
    *out = buf;
    return rc;
}

static void check_chunk(const struct chunk_case *tc, int rc, size_t rpos, size_t wpos,
                        const char *buf, const char *how)
{
    if (tc->status != 0) {
        if (rc != -tc->status)
            fail_msg("%s (%s): got %d, want -%d", tc->name, how, rc, tc->status);
        return;
    }
    if (rc != 1)
        fail_msg("%s (%s): got %d, want 1", tc->name, how, rc);
    assert_int_equal(rpos, tc->used);
    str_equal(tc->data, buf, wpos, "data", tc->name);
}

static void test_parser_chunked_table_whole_split_and_bytewise(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
        const struct chunk_case *tc = &chunk_cases[i];
        size_t cuts[2], r, w;
        char *buf;
        int rc;

        cuts[0] = tc->len;
        rc = decode_pieces(tc, cuts, 1, &r, &w, &buf);
        check_chunk(tc, rc, r, w, buf, "whole");
        for (size_t k = 1; k < tc->len; k++) {
            cuts[0] = k;
            cuts[1] = tc->len;
            rc = decode_pieces(tc, cuts, 2, &r, &w, &buf);
            check_chunk(tc, rc, r, w, buf, "split");
        }
        size_t bytewise[512];
        assert_true(tc->len <= 512);
        for (size_t k = 0; k < tc->len; k++)
            bytewise[k] = k + 1;
        rc = decode_pieces(tc, bytewise, tc->len, &r, &w, &buf);
        check_chunk(tc, rc, r, w, buf, "bytewise");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_head_table_whole_split_and_bytewise),
        cmocka_unit_test(test_parser_head_is_incomplete_until_the_empty_line),
        cmocka_unit_test(test_parser_header_views_are_exact),
        cmocka_unit_test(test_parser_reason_is_one_line_for_every_error),
        cmocka_unit_test(test_parser_chunked_table_whole_split_and_bytewise),
    };

    return cmocka_run_group_tests_name("http/parser", tests, setup_guard, teardown_guard);
}
