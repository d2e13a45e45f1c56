/*
 * tests/fuzz/fuzz_static_rules.c - libFuzzer target for the static handler's
 * request rules: the path normaliser (its output never holds a "..", "."
 * or empty segment, a backslash or a NUL, and never starts with '/'), the
 * Range parser (sorted, disjoint, inside the representation, at most the
 * cap), HTTP-dates (what parses formats back to a date that parses to the
 * same time), entity-tag lists and Accept-Encoding. The first byte picks
 * the representation length; the rest is the header value or path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "static_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *in, size_t len, bool dotfiles)
{
    char out[512];
    bool dir;
    int n = hp__static_path(in, len, out, sizeof(out), dotfiles, &dir);

    if (n < 0) {
        if (n != -400 && n != -403 && n != -404)
            abort();
        return;
    }
    if ((size_t)n != strlen(out) || out[0] == '/' || memchr(out, '\\', (size_t)n))
        abort();
    for (const char *s = out; *s;) {
        size_t k = strcspn(s, "/");

        if (k == 0 || (k == 1 && s[0] == '.') || (k == 2 && s[0] == '.' && s[1] == '.'))
            abort();
        if (!dotfiles && s[0] == '.')
            abort();
        s += k;
        if (*s == '/')
            s++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hp__range r[8];
    unsigned n;
    uint64_t len;
    struct hp_str v;
    int64_t t, t2;
    char fmt[30];

    if (size < 1)
        return 0;
    len = data[0] < 250 ? data[0] : (uint64_t)data[0] << 40;
    v = (struct hp_str){(const char *)data + 1, size - 1};
    check_path(v.ptr, v.len, false);
    check_path(v.ptr, v.len, true);
    switch (hp__ranges_parse(v, len, r, 8, &n)) {
    case HP__RANGE_OK:
        if (n == 0 || n > 8)
            abort();
        for (unsigned i = 0; i < n; i++) {
            if (r[i].first > r[i].last || r[i].last >= len ||
                (i > 0 && r[i].first <= r[i - 1].last + 1))
                abort();
        }
        break;
    case HP__RANGE_IGNORE:
    case HP__RANGE_UNSAT:
        break;
    default:
        abort();
    }
    if (hp__http_date_parse(v, &t) && t >= 0 && t < 253402300800) {
        hp__http_date_format(t, fmt);
        if (!hp__http_date_parse(hp_str_make(fmt), &t2) || t2 != t)
            abort();
    }
    (void)hp__etag_match(v, HP_STR_LIT("\"abc\""), data[0] & 1);
    if (hp__accept_encoding(v, data[0] & 6) > HP__ENC_BR)
        abort();
    return 0;
}
