/*
 * tests/fuzz/fuzz_form.c - libFuzzer target for the byte-level parsers of
 * the toolkit: percent-encoding round trips, percent-decoding and form
 * walks (in place and into a buffer, which must agree, never grow and match
 * hp_pct_equal), the Cookie header walk (views inside the input, valid
 * names), the multipart boundary parameter, and JSON strings (the output of each mode must contain
 * no raw control character, and in UTF-8 mode must be well-formed UTF-8).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/cookie.h>
#include <hellepoll/form.h>
#include <hellepoll/json.h>
#include <hellepoll/multipart.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_form(const char *in, size_t n, unsigned flags)
{
    struct hp_form_pair pairs[64];
    struct hp_form_iter it;
    struct hp_str name, value;
    char *copy = malloc(n ? n : 1), *buf = malloc(n ? n : 1);
    size_t np = 0, k = 0, len;
    int rc, rc2;

    memcpy(copy, in, n);
    {
        /* encoding then decoding gives the input back */
        char *enc = malloc(3 * n + 1), *dec = malloc(n + 1);
        size_t el, dl;

        if (hp_pct_encode((struct hp_str){in, n}, enc, 3 * n, flags, &el) != 0 ||
            hp_pct_decode((struct hp_str){enc, el}, dec, n, flags, &dl) != 0 || dl != n ||
            (n && memcmp(dec, in, n) != 0))
            abort();
        free(enc);
        free(dec);
    }
    if (hp_pct_decode((struct hp_str){in, n}, buf, n, flags, &len) == 0) {
        if (len > n || !hp_pct_equal((struct hp_str){in, n}, (struct hp_str){buf, len}, flags))
            abort();
    }
    rc = hp_form_parse_inplace(copy, n, flags, pairs, 64, &np);
    hp_form_iter_init(&it, (struct hp_str){in, n}, flags, 64);
    while ((rc2 = hp_form_next(&it, buf, n, &name, &value)) == 1) {
        if (rc == 0 && (k >= np || name.len != pairs[k].name.len ||
                        memcmp(name.ptr, pairs[k].name.ptr, name.len) != 0 ||
                        value.len != pairs[k].value.len ||
                        memcmp(value.ptr, pairs[k].value.ptr, value.len) != 0))
            abort();
        k++;
    }
    if (rc == 0 && (rc2 != 0 || k != np))
        abort();
    free(copy);
    free(buf);
}

static void fuzz_cookie(const char *in, size_t n)
{
    struct hp_cookie_iter it;
    struct hp_str name, value;

    hp_cookie_iter_init(&it, (struct hp_str){in, n});
    while (hp_cookie_next(&it, &name, &value)) {
        if (name.len == 0 || name.ptr < in || name.ptr + name.len > in + n ||
            (value.len && (value.ptr < in || value.ptr + value.len > in + n)) ||
            memchr(name.ptr, ';', name.len) || memchr(value.ptr ? value.ptr : in, ';', value.len))
            abort();
    }
}

static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], lo = 0x80, hi = 0xbf;
        size_t need;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c < 0xc2 || c > 0xf4)
            return 0;
        need = c <= 0xdf ? 1 : c <= 0xef ? 2 : 3;
        lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : lo;
        hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : hi;
        if (i + need >= n || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return 0;
        i += need + 1;
    }
    return 1;
}

static void fuzz_json(const char *in, size_t n, unsigned flags)
{
    struct hp_json w;
    struct hp_str out;
    int rc;

    hp_json_init_alloc(&w, NULL, flags);
    hp_json_arr_begin(&w);
    hp_json_str(&w, (struct hp_str){in, n});
    hp_json_arr_end(&w);
    rc = hp_json_finish(&w, &out);
    if (rc == 0) {
        for (size_t i = 0; i < out.len; i++)
            if ((unsigned char)out.ptr[i] < 0x20)
                abort();
        if (!(flags & HP_JSON_LATIN1) && !utf8_ok((const unsigned char *)out.ptr, out.len))
            abort();
        if ((flags & HP_JSON_LATIN1) && memchr(out.ptr, 0x80, out.len))
            abort();
    } else if (!(flags & HP_JSON_UTF8_STRICT)) {
        abort();
    }
    hp_json_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct hp_str b;

    fuzz_form(in, size, 0);
    fuzz_form(in, size, HP_FORM_PLUS_SPACE);
    fuzz_cookie(in, size);
    if (hp_multipart_boundary((struct hp_str){in, size}, &b) == 0 &&
        (b.len == 0 || b.len > 70 || b.ptr < in || b.ptr + b.len > in + size))
        abort();
    fuzz_json(in, size, 0);
    fuzz_json(in, size, HP_JSON_UTF8_STRICT | HP_JSON_ESCAPE_HTML);
    fuzz_json(in, size, HP_JSON_LATIN1);
    return 0;
}
