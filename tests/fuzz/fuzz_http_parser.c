/*
 * tests/fuzz/fuzz_http_parser.c - libFuzzer target for the request-head
 * parser and the chunked decoder. Each input is parsed whole and again in
 * two pieces (split at a point taken from the input), and the two verdicts
 * must agree; a head that parses is followed by its body through the
 * chunked decoder, in place, as the server does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct hp__http_limits limits = {
    .max_target = 256,
    .max_head = 2048,
    .max_headers = 16,
    .max_body = 4096,
};

static int64_t parse(const char *buf, size_t len, size_t split, struct hp__http_parser *p,
                     struct hp__http_field *fields)
{
    int64_t rc = 0;

    hp__http_parser_reset(p, fields, &limits);
    if (split > 0 && split < len)
        rc = hp__http_parse_head(p, buf, split);
    if (rc == 0)
        rc = hp__http_parse_head(p, buf, len);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hp__http_field f1[16], f2[16];
    struct hp__http_parser p1, p2;
    size_t split = size > 0 ? data[0] % (size + 1) : 0;
    char *buf = malloc(size ? size : 1);
    int64_t a, b;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    a = parse(buf, size, 0, &p1, f1);
    b = parse(buf, size, split, &p2, f2);
    if (a != b || (a > 0 && (p1.nfields != p2.nfields || p1.flags != p2.flags)))
        abort(); /* a split changed the verdict */
    if (a > 0 && (p1.flags & HP__REQ_CHUNKED)) {
        struct hp__http_chunked c;
        size_t r = (size_t)a, w = (size_t)a;

        memset(&c, 0, sizeof(c));
        if (hp__http_chunked_decode(&c, buf, size, &r, &w, limits.max_body, 512) >= 0 &&
            (w > r || r > size))
            abort();
    }
    free(buf);
    return 0;
}
