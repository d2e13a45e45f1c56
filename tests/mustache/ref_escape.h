/*
 * ref_escape.h - the byte-by-byte HTML escaper the engine's escaping is
 * checked against (& < > " ' as the Mustache spec's entities), for the
 * mustache tests.
 */
#ifndef HP_TEST_REF_ESCAPE_H
#define HP_TEST_REF_ESCAPE_H

#include <stddef.h>
#include <string.h>

/* Escape @p n bytes of @p s into @p d (room for 6 * n bytes); returns the length written. */
static inline size_t ref_escape(char *d, const char *s, size_t n)
{
    size_t o = 0;

    for (size_t k = 0; k < n; k++) {
        const char *e;
        switch (s[k]) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            d[o++] = s[k];
            continue;
        }
        memcpy(d + o, e, strlen(e));
        o += strlen(e);
    }
    return o;
}

#endif
