/*
 * render.h - writing response heads and numbers into output blocks
 * (internal; render.c). The byte writers are inline: every response uses
 * them.
 */
#ifndef HP_HTTP_RENDER_H
#define HP_HTTP_RENDER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

static inline void put_lit(char **w, const char *s, size_t n)
{
    memcpy(*w, s, n);
    *w += n;
}

#define PUT_LIT(w, s) put_lit((w), (s), sizeof(s) - 1)

/* "00" to "99". */
static const char dec_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";

/* Decimal digits of @p v at *w, two at a time. */
static inline void put_dec(char **w, uint64_t v)
{
    const char *pairs = dec_pairs;
    size_t n = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : 4;
    char *e;

    for (uint64_t t = v / 10000; t != 0; t /= 10)
        n++;
    e = *w + n;
    *w = e;
    while (v >= 100) {
        e -= 2;
        memcpy(e, pairs + v % 100 * 2, 2);
        v /= 100;
    }
    if (v >= 10)
        memcpy(e - 2, pairs + v * 2, 2);
    else
        e[-1] = (char)('0' + v);
}

/* Hex digits of @p v at *w. */
static inline void put_hex(char **w, uint64_t v)
{
    char *e = *w + 1;

    for (uint64_t t = v; t >= 16; t >>= 4)
        e++;
    *w = e;
    do {
        *--e = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0);
}

/* How a response body is delimited. */
enum framing { FR_LENGTH, FR_CHUNKED, FR_EOF, FR_NONE };

/*
 * Append the head of @p rq's response to the connection's output block.
 * With FR_LENGTH, @p len is the Content-Length. Sets R_STARTED, and R_CLOSE
 * if the connection must close. 0, -EINVAL (bad status or content type, or
 * already started) or -ENOMEM.
 */
int hp__http_render_head(struct http_conn *c, struct req_blk *rq, int status, struct hp_str ctype,
                         enum framing fr, uint64_t len);

/* True if @p v may be a field value (no CTLs but HTAB). */
bool hp__http_valid_field_value(struct hp_str v);

#endif
