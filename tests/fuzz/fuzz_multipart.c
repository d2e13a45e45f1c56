/*
 * tests/fuzz/fuzz_multipart.c - libFuzzer target for the multipart parser.
 * The first byte picks the limits; the rest is a body with boundary "b"
 * (after the first delimiter line, whatever the input says). Each input is
 * parsed whole, then in two pieces split at a point taken from the input,
 * then one byte at a time; the callbacks' trace (a hash of every event and
 * byte) and the verdict must be the same all three ways. Part views must
 * lie inside the parser's header block, and the content never exceeds its
 * limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/multipart.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct trace {
    uint64_t h;
    uint64_t part_bytes, max_part;
    int open;
};

static void mix(struct trace *t, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        t->h = (t->h ^ b[i]) * 1099511628211u;
}

static void check_view(const struct hp_multipart_part *p, struct hp_str v)
{
    if (v.len && (v.ptr < p->headers.ptr || v.ptr + v.len > p->headers.ptr + p->headers.len))
        abort();
}

static int on_begin(void *ctx, const struct hp_multipart_part *p)
{
    struct trace *t = ctx;

    if (t->open)
        abort();
    t->open = 1;
    t->part_bytes = 0;
    check_view(p, p->name);
    check_view(p, p->filename);
    check_view(p, p->content_type);
    mix(t, "B", 1);
    mix(t, p->name.ptr, p->name.len);
    mix(t, "|", 1);
    mix(t, p->filename.ptr, p->filename.len);
    mix(t, p->has_filename ? "F" : "-", 1);
    mix(t, p->content_type.ptr, p->content_type.len);
    return 0;
}

static int on_data(void *ctx, const struct hp_multipart_part *p, const void *d, size_t n)
{
    struct trace *t = ctx;

    (void)p;
    if (!t->open || n == 0)
        abort();
    t->part_bytes += n;
    if (t->part_bytes > t->max_part)
        abort();
    mix(t, d, n);
    return 0;
}

static int on_end(void *ctx, const struct hp_multipart_part *p)
{
    struct trace *t = ctx;

    (void)p;
    if (!t->open)
        abort();
    t->open = 0;
    mix(t, "E", 1);
    return 0;
}

static int run(const uint8_t *d, size_t n, size_t split, int bytewise, uint8_t cfg, uint64_t *h)
{
    struct trace t = {.h = 1469598103934665603u, .max_part = cfg & 1 ? 64 : 1u << 20};
    struct hp_multipart_opts o = {
        .on_part_begin = on_begin,
        .on_part_data = on_data,
        .on_part_end = on_end,
        .ctx = &t,
        .max_parts = cfg & 2 ? 2 : 0,
        .max_header_bytes = cfg & 4 ? 40 : 0,
        .max_part_bytes = t.max_part,
    };
    struct hp_multipart *mp;
    int rc = 0;

    if (hp_multipart_new(&mp, HP_STR_LIT("b"), &o) != 0)
        abort();
    if (bytewise) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            uint8_t *one = malloc(1); /* each byte alone, so ASan sees any over-read */

            one[0] = d[i];
            rc = hp_multipart_feed(mp, one, 1);
            free(one);
        }
    } else {
        rc = hp_multipart_feed(mp, d, split);
        if (rc == 0)
            rc = hp_multipart_feed(mp, d + split, n - split);
    }
    if (rc == 0)
        rc = hp_multipart_finish(mp);
    if ((rc == 0) != hp_multipart_done(mp) || (rc != 0 && hp_multipart_reason(mp)[0] == '\0'))
        abort();
    hp_multipart_free(mp);
    *h = t.h;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h1, h2, h3;
    uint8_t cfg;
    size_t split;
    uint8_t *buf;
    int a, b, c;

    if (size < 2)
        return 0;
    cfg = data[0];
    split = data[1] % (size - 1);
    buf = malloc(size - 2 ? size - 2 : 1);
    memcpy(buf, data + 2, size - 2);
    a = run(buf, size - 2, size - 2, 0, cfg, &h1);
    b = run(buf, size - 2, split > size - 2 ? size - 2 : split, 0, cfg, &h2);
    c = run(buf, size - 2, 0, 1, cfg, &h3);
    if (a != b || a != c || h1 != h2 || h1 != h3)
        abort(); /* the way the body was cut changed the result */
    free(buf);
    return 0;
}
