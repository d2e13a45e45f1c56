/*
 * static_path.c - the request path to a path below the root (see
 * static_internal.h). One pass over the raw segments: each is decoded
 * straight into the output, then kept, dropped (".", empty) or used to pop
 * the previous one (".."). Anything a file name cannot hold safely is
 * refused rather than repaired.
 */
#include <string.h>

#include "static_internal.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * The common case: one leading '/', then nothing to decode or resolve (no
 * '%', backslash, NUL, "//" or "/.") and no trailing '/' (the caller checks
 * that, so in[i + 1] after a '/' is always inside). Then the path is a copy;
 * false sends everything else through the full pass.
 */
static bool plain(const char *in, size_t len, char *out, size_t cap, bool *dir)
{
    /* 1: stop here; 2: a '/', look at the next byte. */
    static const unsigned char special[256] = {[0] = 1, ['%'] = 1, ['\\'] = 1, ['/'] = 2};

    if (len < 2 || in[0] != '/' || in[1] == '.' || in[1] == '/' || len > cap)
        return false;
    for (size_t i = 1; i < len; i++) {
        unsigned char k = special[(unsigned char)in[i]];

        if (k && (k == 1 || in[i + 1] == '/' || in[i + 1] == '.'))
            return false;
    }
    memcpy(out, in + 1, len - 1);
    out[len - 1] = '\0';
    *dir = false;
    return true;
}

int hp__static_path(const char *in, size_t len, char *out, size_t cap, bool dotfiles, bool *dir)
{
    size_t i = 0, o = 0;

    if (len > 0 && in[len - 1] != '/' && plain(in, len, out, cap, dir))
        return (int)len - 1;

    *dir = true; /* "" and "/" name the root directory */
    if (cap == 0)
        return -404;
    while (i < len) {
        size_t start = o > 0 ? o + 1 : 0, w = start;
        bool enc_dot = false;

        while (i < len && in[i] == '/')
            i++;
        if (i == len)
            break; /* trailing slash(es) */
        for (; i < len && in[i] != '/'; i++) {
            char c = in[i];

            if (c == '%') {
                int hi = i + 2 < len ? hexval(in[i + 1]) : -1,
                    lo = hi >= 0 ? hexval(in[i + 2]) : -1;

                if (lo < 0)
                    return -400;
                c = (char)(hi << 4 | lo);
                i += 2;
                if (c == '/')
                    return -404;
                if (c == '.')
                    enc_dot = true;
            }
            if (c == '\0' || c == '\\')
                return -400;
            if (w + 1 >= cap)
                return -404;
            out[w++] = c;
        }
        size_t n = w - start;
        const char *seg = out + start;

        *dir = false;
        if (n == 1 && seg[0] == '.') {
            if (enc_dot)
                return -400;
            *dir = true;
            continue;
        }
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            if (enc_dot || o == 0)
                return -400;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the '/' before the popped segment */
            *dir = true;
            continue;
        }
        if (seg[0] == '.' && !dotfiles)
            return -403;
        if (o > 0)
            out[o] = '/';
        o = w;
    }
    if (i > 0 && in[len - 1] == '/')
        *dir = true;
    out[o] = '\0';
    return (int)o;
}
