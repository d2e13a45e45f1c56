/*
 * tests/fuzz/fuzz_memcached.c - libFuzzer target for the memcached meta
 * response parser. The input is parsed as a stream of responses twice:
 * whole, and fed in pieces (sizes taken from the input), the way a socket
 * delivers it; both must give the same responses and the same verdict, and
 * every view must lie inside the consumed bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct trace {
    size_t consumed[64];
    int rc[64];
    uint32_t opaque[64];
    size_t n;
    ssize_t verdict;
};

static void check(const struct hp__mc_resp *r, const char *buf, size_t n)
{
    if (r->data_len && (r->data < buf || r->data + r->data_len > buf + n))
        abort(); /* a view outside the response */
}

/* Parse buf[0..len) as a stream; deliver at most @p step new bytes per call. */
static void run(const char *buf, size_t len, size_t step, struct trace *t)
{
    struct hp__mc_parser p;
    size_t off = 0, avail = 0;

    hp__mc_parser_init(&p, 512);
    memset(t, 0, sizeof(*t));
    while (off < len && t->n < 64) {
        struct hp__mc_resp r;
        ssize_t n;

        avail = avail + step > len - off ? len - off : avail + step;
        n = hp__mc_parse(&p, buf + off, avail, &r);
        if (n < 0) {
            t->verdict = n;
            return;
        }
        if (n == 0) {
            if (avail == len - off)
                return; /* incomplete at the end */
            continue;
        }
        if ((size_t)n > avail)
            abort();
        check(&r, buf + off, (size_t)n);
        t->consumed[t->n] = (size_t)n;
        t->rc[t->n] = (int)r.rc;
        t->opaque[t->n] = r.opaque;
        t->n++;
        off += (size_t)n;
        avail -= (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trace a, b;
    size_t step = size ? (size_t)(data[0] % 7) + 1 : 1;
    char *buf = malloc(size ? size : 1);

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    run(buf, size, size ? size : 1, &a);
    run(buf, size, step, &b);
    if (a.n != b.n || a.verdict != b.verdict ||
        memcmp(a.consumed, b.consumed, sizeof(a.consumed)) != 0 ||
        memcmp(a.rc, b.rc, sizeof(a.rc)) != 0 || memcmp(a.opaque, b.opaque, sizeof(a.opaque)) != 0)
        abort(); /* delivery in pieces changed the result */
    free(buf);
    return 0;
}
