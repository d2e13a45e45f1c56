/*
 * tests/http/test_multipart.c - the streaming multipart/form-data parser.
 * Every message of the table (valid and hostile) is fed whole, split in two
 * at every byte, and one byte at a time, each piece in a buffer of its own
 * exact size (ASan catches any read past it); all three must produce the
 * same parts, content and verdict. Also: boundary extraction, each limit at
 * and one past its value, callback errors, and large random binary content
 * full of near-miss boundaries.
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

#include <hellepoll/multipart.h>

#define S(x) HP_STR_LIT(x)

/* What the callbacks saw, as text: "name|filename|type|content;" per part. */
struct rec {
    char *out;
    size_t len, cap;
    int fail_at; /* callback number that returns -ECANCELED, 0 for none */
    int calls;
    bool in_part;
};

static void rec_put(struct rec *r, const void *p, size_t n)
{
    if (n == 0 && r->out != NULL)
        return;
    if (r->len + n + 1 > r->cap) {
        r->cap = (r->len + n + 1) * 2;
        r->out = realloc(r->out, r->cap);
        assert_non_null(r->out);
    }
    if (n)
        memcpy(r->out + r->len, p, n);
    r->len += n;
    r->out[r->len] = '\0';
}

static int rec_check(struct rec *r)
{
    return ++r->calls == r->fail_at ? -ECANCELED : 0;
}

static int on_begin(void *ctx, const struct hp_multipart_part *p)
{
    struct rec *r = ctx;

    assert_false(r->in_part);
    r->in_part = true;
    rec_put(r, p->name.ptr, p->name.len);
    rec_put(r, "|", 1);
    if (p->has_filename)
        rec_put(r, p->filename.ptr, p->filename.len);
    else
        rec_put(r, "-", 1);
    rec_put(r, "|", 1);
    rec_put(r, p->content_type.ptr, p->content_type.len);
    rec_put(r, "|", 1);
    return rec_check(r);
}

static int on_data(void *ctx, const struct hp_multipart_part *p, const void *data, size_t len)
{
    struct rec *r = ctx;

    (void)p;
    assert_true(r->in_part);
    assert_true(len > 0);
    rec_put(r, data, len);
    return rec_check(r);
}

static int on_end(void *ctx, const struct hp_multipart_part *p)
{
    struct rec *r = ctx;

    (void)p;
    assert_true(r->in_part);
    r->in_part = false;
    rec_put(r, ";", 1);
    return rec_check(r);
}

static struct hp_multipart *new_parser(struct rec *r, const char *boundary,
                                       const struct hp_multipart_opts *limits)
{
    struct hp_multipart_opts o = limits ? *limits : (struct hp_multipart_opts){.ctx = NULL};
    struct hp_multipart *mp = NULL;

    o.on_part_begin = on_begin;
    o.on_part_data = on_data;
    o.on_part_end = on_end;
    o.ctx = r;
    assert_int_equal(hp_multipart_new(&mp, hp_str_make(boundary), &o), 0);
    return mp;
}

/* Feed @p msg in pieces cut at @p cuts (ascending, ending with len), each in its own buffer. */
static int feed_pieces(struct hp_multipart *mp, const char *msg, const size_t *cuts, size_t ncuts)
{
    size_t at = 0;
    int rc = 0;

    for (size_t i = 0; i < ncuts && rc == 0; i++) {
        size_t n = cuts[i] - at;
        char *piece = malloc(n ? n : 1);

        assert_non_null(piece);
        memcpy(piece, msg + at, n);
        rc = hp_multipart_feed(mp, piece, n);
        free(piece);
        at = cuts[i];
    }
    return rc ? rc : hp_multipart_finish(mp);
}

struct mp_case {
    const char *boundary;
    const char *msg;
    size_t len; /* 0: strlen */
    int rc;
    const char *want; /* the record, when rc == 0 (or what came before the error) */
};

static const struct mp_case cases[] = {
    /* what browsers send: a file and a field, no preamble */
    {"XyZ",
     "--XyZ\r\n"
     "Content-Disposition: form-data; name=\"field\"\r\n\r\n"
     "value\r\n"
     "--XyZ\r\n"
     "Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
     "Content-Type: text/plain\r\n\r\n"
     "line1\r\nline2\r\n\r\n"
     "--XyZ--\r\n",
     0, 0, "field|-||value;file|a.txt|text/plain|line1\r\nline2\r\n;"},
    /* preamble, epilogue, padding after boundaries, empty content, empty filename */
    {"b",
     "preamble\r\n--b\r\n\r\n--b \t\r\n"
     "content-disposition: FORM-DATA; NAME=x; filename=\"\"\r\n\r\n"
     "\r\n--b\r\nContent-Disposition: form-data; name=y\r\n\r\n\r\n--b--  epilogue\r\n--b\r\n",
     0, -EBADMSG, ""},
    {"b",
     "preamble\r\n--b \t\r\n"
     "content-disposition: FORM-DATA; NAME=x; filename=\"\"\r\n\r\n"
     "\r\n--b\r\nContent-Disposition: form-data; name=y\r\n\r\n\r\n--b--  epilogue\r\n--b\r\n",
     0, 0, "x|||;y|-||;"},
    /* near misses of the delimiter inside content */
    {"abc",
     "--abc\r\nContent-Disposition: form-data; name=n\r\n\r\n"
     "\r\r\n\r\n-\r\n--\r\n--a\r\n--ab\r\n--abd--abc\n--abc\r\n--abc--",
     0, 0, "n|-||\r\r\n\r\n-\r\n--\r\n--a\r\n--ab\r\n--abd--abc\n--abc;"},
    /* a boundary may contain spaces and punctuation (quoted in the header) */
    {"a b'()+_,-./:=?",
     "--a b'()+_,-./:=?\r\nContent-Disposition: form-data; name=\"q\\\"uo\\\\te\"; "
     "filename=\"C:\\\\x\\\\%22y%22.bin\"\r\nX-Other: 1\r\n\r\n\x00\xff\r\n--a b'()+_,-./:=?--",
     137, 0, "q\"uo\\te|C:\\x\\%22y%22.bin||\x00\xff;"},
    /* malformed */
    {"b", "--b\r\n\r\nx\r\n--b--", 0, -EBADMSG, ""}, /* no C-D */
    {"b", "--b\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--b--", 0, -EBADMSG, ""},
    {"b", "--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--", 0, -EBADMSG, ""},
    {"b", "--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--b--", 0, -EBADMSG, ""},
    {"b", "--b\r\nContent-Disposition: form-data; name=\r\n\r\nx\r\n--b--", 0, -EBADMSG, ""},
    {"b", "--b\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nx\r\n--b--", 0, -EBADMSG,
     ""},
    {"b",
     "--b\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; "
     "name=a\r\n\r\nx\r\n--b--",
     0, -EBADMSG, ""},
    {"b", "--b\r\nContent-Disposition: form-data; name=a\n\r\nx\r\n--b--", 0, -EBADMSG, ""},
    {"b", "--b\r\nContent-Disposition: form-data; name=a\r\n folded\r\n\r\nx\r\n--b--", 0, -EBADMSG,
     ""},
    {"b", "--b\r\nContent-Disposition: form-data; name=a\r\nNoColon\r\n\r\nx\r\n--b--", 0, -EBADMSG,
     ""},
    {"b", "--b\r\nContent-Disposition: form-data; name=a\r\nBad Name: 1\r\n\r\nx\r\n--b--", 0,
     -EBADMSG, ""},
    {"b", "--b\r\nContent-Disposition: form-data; name=a\r\r\n\r\nx\r\n--b--", 0, -EBADMSG, ""},
    {"b", "--bX\r\n", 0, -EBADMSG, ""}, /* a boundary line must end after the boundary */
    {"b", "--b-\r\n", 0, -EBADMSG, ""},
    {"b", "--b\rX", 0, -EBADMSG, ""},
    {"b", "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--bad\r\n--b--", 0, -EBADMSG,
     "a|-||x"},
    /* truncated */
    {"b", "", 0, -EBADMSG, ""},
    {"b", "no boundary at all", 0, -EBADMSG, ""},
    {"b", "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nxyz\r\n--b", 0, -EBADMSG,
     "a|-||xyz"},
    {"b", "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nxyz\r\n--", 0, -EBADMSG,
     "a|-||xyz"},
    {"b", "--b\r\nContent-Disposition: form-data; name=a\r\n", 0, -EBADMSG, ""},
};

/* Run one case three ways; the records and verdicts must agree with the table. */
static void run_case(const struct mp_case *c)
{
    size_t len = c->len ? c->len : strlen(c->msg), cuts[2];
    struct rec whole = {0};
    struct hp_multipart *mp = new_parser(&whole, c->boundary, NULL);
    int rc;

    cuts[0] = len;
    rc = feed_pieces(mp, c->msg, cuts, 1);
    if (rc != c->rc || (c->want && strcmp(whole.out ? whole.out : "", c->want) != 0))
        fail_msg("case %.40s: rc %d (%s), want %d; got [%s] want [%s]", c->msg, rc,
                 hp_multipart_reason(mp), c->rc, whole.out ? whole.out : "", c->want);
    assert_int_equal(hp_multipart_feed(mp, "x", 1), rc == 0 ? 0 : rc); /* sticky / epilogue */
    hp_multipart_free(mp);
    for (size_t at = 0; at <= len; at++) {
        struct rec split = {0};

        mp = new_parser(&split, c->boundary, NULL);
        cuts[0] = at;
        cuts[1] = len;
        assert_int_equal(feed_pieces(mp, c->msg, cuts, 2), rc);
        assert_int_equal(split.len, whole.len);
        if (whole.len)
            assert_memory_equal(split.out, whole.out, whole.len);
        hp_multipart_free(mp);
        free(split.out);
    }
    {
        struct rec bytes = {0};
        size_t *each = malloc((len + 1) * sizeof(*each));

        for (size_t i = 0; i < len; i++)
            each[i] = i + 1;
        mp = new_parser(&bytes, c->boundary, NULL);
        assert_int_equal(feed_pieces(mp, c->msg, each, len), rc);
        assert_int_equal(bytes.len, whole.len);
        if (whole.len)
            assert_memory_equal(bytes.out, whole.out, whole.len);
        hp_multipart_free(mp);
        free(bytes.out);
        free(each);
    }
    free(whole.out);
}

static void test_multipart_table_split_at_every_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

static void test_multipart_boundary_from_content_type(void **state)
{
    static const struct {
        const char *ct, *want; /* want NULL: -EINVAL */
    } t[] = {
        {"multipart/form-data; boundary=----WebKitFormBoundaryx0Jd", "----WebKitFormBoundaryx0Jd"},
        {"Multipart/Form-Data;BOUNDARY=\"a b:c\"", "a b:c"},
        {"multipart/form-data; charset=utf-8; boundary=xyz", "xyz"},
        {"multipart/form-data ; boundary = xyz ", "xyz"},
        {"multipart/mixed; boundary=q", "q"},
        {"multipart/form-data; boundary=\"\"", NULL},
        {"multipart/form-data; boundary=", NULL},
        {"multipart/form-data", NULL},
        {"multipart/; boundary=x", NULL},
        {"text/plain; boundary=x", NULL},
        {"multipart/form-data; boundary=\"x\\\"y\"", NULL},
        {"multipart/form-data; boundary=\"ends in space \"", NULL},
        {"multipart/form-data; boundary=a\x01"
         "b",
         NULL},
        {"multipart/form-data; boundary="
         "12345678901234567890123456789012345678901234567890123456789012345678901",
         NULL},
        {"multipart/form-data; boundary="
         "1234567890123456789012345678901234567890123456789012345678901234567890",
         "1234567890123456789012345678901234567890123456789012345678901234567890"},
        {"multipart/form-data; boundary=\"unterminated", NULL},
        {"multipart/form-data; =x; boundary=y", NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct hp_str b = S("untouched");
        int rc = hp_multipart_boundary(hp_str_make(t[i].ct), &b);

        if (t[i].want == NULL) {
            if (rc != -EINVAL)
                fail_msg("%s: accepted", t[i].ct);
            assert_int_equal(b.len, 9);
        } else {
            if (rc != 0)
                fail_msg("%s: %d", t[i].ct, rc);
            assert_int_equal(b.len, strlen(t[i].want));
            assert_memory_equal(b.ptr, t[i].want, b.len);
        }
    }
    {
        struct hp_multipart *mp = NULL;

        assert_int_equal(hp_multipart_new(&mp, S("bad\r\n"), NULL), -EINVAL);
        assert_int_equal(hp_multipart_new(&mp, S(""), NULL), -EINVAL);
        assert_null(mp);
    }
}

static int run_limits(const char *msg, const struct hp_multipart_opts *o, const char **why)
{
    struct rec r = {0};
    struct hp_multipart *mp = new_parser(&r, "b", o);
    int rc = hp_multipart_feed(mp, msg, strlen(msg));

    rc = rc ? rc : hp_multipart_finish(mp);
    *why = hp_multipart_reason(mp);
    hp_multipart_free(mp);
    free(r.out);
    return rc;
}

static void test_multipart_limits(void **state)
{
    char msg[8192];
    const char *why;
    size_t n = 0;

    (void)state;
    for (int i = 0; i < 3; i++)
        n += (size_t)snprintf(
            msg + n, sizeof(msg) - n,
            "--b\r\nContent-Disposition: form-data; name=p%d\r\n\r\n0123456789\r\n", i);
    snprintf(msg + n, sizeof(msg) - n, "--b--");
    assert_int_equal(run_limits(msg, &(struct hp_multipart_opts){.max_parts = 3}, &why), 0);
    assert_string_equal(why, "");
    assert_int_equal(run_limits(msg, &(struct hp_multipart_opts){.max_parts = 2}, &why), -E2BIG);
    assert_string_equal(why, "more parts than max_parts");
    assert_int_equal(run_limits(msg, &(struct hp_multipart_opts){.max_part_bytes = 10}, &why), 0);
    assert_int_equal(run_limits(msg, &(struct hp_multipart_opts){.max_part_bytes = 9}, &why),
                     -EFBIG);
    /* the header block "Content-Disposition: form-data; name=pN" is 39 bytes */
    assert_int_equal(run_limits(msg, &(struct hp_multipart_opts){.max_header_bytes = 39}, &why), 0);
    assert_int_equal(run_limits(msg, &(struct hp_multipart_opts){.max_header_bytes = 38}, &why),
                     -EMSGSIZE);
    /* defaults: 128 parts */
    n = 0;
    for (int i = 0; i < 129; i++)
        n += (size_t)snprintf(msg + n, sizeof(msg) - n,
                              "--b\r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n");
    snprintf(msg + n, sizeof(msg) - n, "--b--");
    assert_int_equal(run_limits(msg, NULL, &why), -E2BIG);
}

static void test_multipart_callback_errors_stop_the_parser(void **state)
{
    static const char msg[] = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nxy\r\n--b\r\n"
                              "Content-Disposition: form-data; name=b\r\n\r\nz\r\n--b--";

    (void)state;
    for (int at = 1; at <= 6; at++) {
        struct rec r = {.fail_at = at};
        struct hp_multipart *mp = new_parser(&r, "b", NULL);

        assert_int_equal(hp_multipart_feed(mp, msg, sizeof(msg) - 1), -ECANCELED);
        assert_int_equal(r.calls, at);
        assert_int_equal(hp_multipart_feed(mp, "", 0), -ECANCELED);
        assert_int_equal(hp_multipart_finish(mp), -ECANCELED);
        assert_false(hp_multipart_done(mp));
        hp_multipart_free(mp);
        free(r.out);
    }
    {
        struct rec r = {.fail_at = 7};
        struct hp_multipart *mp = new_parser(&r, "b", NULL);

        assert_int_equal(hp_multipart_feed(mp, msg, sizeof(msg) - 1), 0);
        assert_true(hp_multipart_done(mp));
        hp_multipart_free(mp);
        free(r.out);
    }
}

static int on_begin_headers(void *ctx, const struct hp_multipart_part *p)
{
    struct hp_str v;

    (void)ctx;
    assert_true(hp_multipart_part_header(p, S("x-extra"), &v));
    assert_int_equal(v.len, 5);
    assert_memory_equal(v.ptr, "a b c", 5);
    assert_true(hp_multipart_part_header(p, S("CONTENT-TYPE"), &v));
    assert_memory_equal(v.ptr, "image/png", 9);
    assert_false(hp_multipart_part_header(p, S("x-extr"), &v));
    assert_int_equal(p->index, 0);
    return 0;
}

static void test_multipart_part_header_lookup(void **state)
{
    static const char msg[] =
        "--b\r\nContent-Disposition: form-data; name=a; filename=p.png\r\nX-Extra:  a b c \r\n"
        "Content-Type: image/png\r\n\r\n\x89PNG\r\n--b--";
    struct hp_multipart_opts o = {.on_part_begin = on_begin_headers};
    struct hp_multipart *mp;

    (void)state;
    assert_int_equal(hp_multipart_new(&mp, S("b"), &o), 0);
    assert_int_equal(hp_multipart_feed(mp, msg, sizeof(msg) - 1), 0);
    assert_int_equal(hp_multipart_finish(mp), 0);
    hp_multipart_free(mp);
}

/* Large random binary parts, salted with near-miss boundaries, in random pieces. */
static void test_multipart_random_binary_content(void **state)
{
    static const char *const salt[] = {"\r",         "\r\n",        "\r\n-",
                                       "\r\n--",     "\r\n--Bound", "\r\n--Boundar",
                                       "--Boundary", "\n--Boundary"};
    enum { PARTS = 3, SIZE = 20000 };
    char *content[PARTS], *msg = malloc(PARTS * (SIZE + 200) + 20);
    size_t clen[PARTS], n = 0;

    (void)state;
    srand(1);
    for (int round = 0; round < 20; round++) {
        struct rec r = {0};
        struct hp_multipart *mp = new_parser(&r, "Boundary", NULL);
        size_t at = 0, want_len = 0;
        char *want;
        int rc = 0;

        n = 0;
        for (int p = 0; p < PARTS; p++) {
            size_t len = (size_t)rand() % SIZE;

            content[p] = malloc(len + 32);
            clen[p] = 0;
            while (clen[p] < len) {
                if (rand() % 50 == 0) {
                    const char *s = salt[rand() % 8];

                    /* fenced by 'x' so that no two make a real delimiter */
                    content[p][clen[p]++] = 'x';
                    memcpy(content[p] + clen[p], s, strlen(s));
                    clen[p] += strlen(s);
                    content[p][clen[p]++] = 'x';
                } else {
                    content[p][clen[p]++] = (char)rand();
                }
            }
            n += (size_t)sprintf(msg + n,
                                 "--Boundary\r\nContent-Disposition: form-data; name=f%d; "
                                 "filename=\"f%d.bin\"\r\n\r\n",
                                 p, p);
            memcpy(msg + n, content[p], clen[p]);
            n += clen[p];
            n += (size_t)sprintf(msg + n, "\r\n");
        }
        n += (size_t)sprintf(msg + n, "--Boundary--\r\n");
        while (at < n && rc == 0) {
            size_t piece = 1 + (size_t)rand() % 3000;

            piece = piece > n - at ? n - at : piece;
            rc = hp_multipart_feed(mp, msg + at, piece);
            at += piece;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(hp_multipart_finish(mp), 0);
        want = malloc(PARTS * (SIZE + 100));
        for (int p = 0; p < PARTS; p++) {
            want_len += (size_t)sprintf(want + want_len, "f%d|f%d.bin||", p, p);
            memcpy(want + want_len, content[p], clen[p]);
            want_len += clen[p];
            want[want_len++] = ';';
            free(content[p]);
        }
        assert_int_equal(r.len, want_len);
        assert_memory_equal(r.out, want, want_len);
        free(want);
        free(r.out);
        hp_multipart_free(mp);
    }
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multipart_table_split_at_every_byte),
        cmocka_unit_test(test_multipart_boundary_from_content_type),
        cmocka_unit_test(test_multipart_limits),
        cmocka_unit_test(test_multipart_callback_errors_stop_the_parser),
        cmocka_unit_test(test_multipart_part_header_lookup),
        cmocka_unit_test(test_multipart_random_binary_content),
    };

    return cmocka_run_group_tests_name("http/multipart", tests, NULL, NULL);
}
