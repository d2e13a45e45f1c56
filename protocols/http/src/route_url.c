/*
 * route_url.c - the byte-level path rules of the router: percent-decoding,
 * what counts as a dot-segment (RFC 3986 5.2.4, with %2e as '.', since
 * 6.2.2.2 makes them equivalent), cleaning a path for the redirect, the
 * checks on catch-all remainders, regex constraints on decoded segments,
 * and building paths back from a named route (hp_router_url()).
 */
#include <errno.h>
#include <string.h>

#include "route_internal.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The byte an escape at @p s (a '%') stands for, or -1 if malformed. */
static int escape_at(const char *s, const char *end)
{
    int hi, lo;

    if (end - s < 3 || (hi = hexval((unsigned char)s[1])) < 0 ||
        (lo = hexval((unsigned char)s[2])) < 0)
        return -1;
    return hi << 4 | lo;
}

int hp_route_decode(struct hp_str raw, char *out, size_t cap)
{
    const char *s = raw.ptr, *end = raw.ptr + raw.len;
    size_t n = 0;

    while (s < end) {
        int c = (unsigned char)*s;
        if (c == '%') {
            if ((c = escape_at(s, end)) <= 0)
                return -EINVAL; /* malformed, or a NUL */
            s += 3;
        } else {
            s++;
        }
        if (n == cap)
            return -ENOSPC;
        out[n++] = (char)c;
    }
    return n > (size_t)INT32_MAX ? -ENOSPC : (int)n;
}

bool hp__route_bad_escape(const char *s, size_t len)
{
    const char *end = s + len;

    for (s = memchr(s, '%', len); s != NULL; s = memchr(s + 1, '%', (size_t)(end - s - 1))) {
        if (escape_at(s, end) < 0)
            return true;
        if (end - s <= 3)
            break;
    }
    return false;
}

/* Is [s, s+len) "." or "..", counting %2e as '.'? */
bool hp__route_dot_segment(const char *s, size_t len)
{
    const char *end = s + len;
    int dots = 0;

    if (len == 0 || len > 6 || (*s != '.' && *s != '%'))
        return false;
    while (s < end) {
        if (*s == '.') {
            s++;
        } else if (*s == '%' && escape_at(s, end) == '.') {
            s += 3;
        } else {
            return false;
        }
        dots++;
    }
    return dots <= 2;
}

bool hp__route_unclean(const char *s, size_t len)
{
    const char *end = s + len, *seg = s + 1;

    /* s[0] is '/'; look at every segment but a final empty one. */
    for (const char *p = seg; p <= end; p++) {
        if (p < end && *p != '/')
            continue;
        if (p == seg && p < end)
            return true; /* "//" */
        if (hp__route_dot_segment(seg, (size_t)(p - seg)))
            return true;
        seg = p + 1;
    }
    return false;
}

int hp__route_rest_check(const char *s, size_t len)
{
    const char *end = s + len, *seg = s;

    /* Raw segments first: "//" and dot-segments are for the cleaning redirect. */
    for (const char *p = s; p <= end; p++) {
        if (p < end && *p != '/')
            continue;
        if ((p == seg && p < end) || hp__route_dot_segment(seg, (size_t)(p - seg)))
            return REST_UNCLEAN;
        seg = p + 1;
    }
    if (hp__route_bad_escape(s, len))
        return REST_BAD;
    /* Then with %2F and %5C as separators too: a handler that decodes the
     * value must not find a way up in it. Raw-bounded dot-segments are gone,
     * so any found now was made by a decoded separator. */
    seg = s;
    for (const char *p = s; p <= end; p++) {
        int sep = p == end || *p == '/';
        if (!sep && *p == '%') {
            int c = escape_at(p, end);
            if (c == '/' || c == '\\')
                sep = 2;
        }
        if (!sep)
            continue;
        if (hp__route_dot_segment(seg, (size_t)(p - seg)))
            return REST_BAD;
        if (sep == 2)
            p += 2;
        seg = p + 1;
    }
    return REST_OK;
}

bool hp__route_regex_ok(const regex_t *re, const char *s, size_t len)
{
    char buf[ROUTE_MAX_REGEX_IN + 1];
    int n = hp_route_decode((struct hp_str){s, len}, buf, ROUTE_MAX_REGEX_IN);

    if (n < 0)
        return false;
    buf[n] = '\0';
    return regexec(re, buf, 0, NULL, 0) == 0;
}

int hp_router_clean_path(struct hp_str path, char *out, size_t cap)
{
    const char *s = path.ptr, *end = path.ptr + path.len, *seg = s + 1;
    size_t n = 0;
    bool trail = false;

    if (path.len == 0 || *s != '/')
        return -EINVAL;
    if (cap < path.len + 1 || path.len > (size_t)INT32_MAX)
        return -ENOSPC;
    /* out holds "/seg" for every kept segment; the result is never longer
     * than the path. */
    while (seg <= end) {
        const char *p = memchr(seg, '/', (size_t)(end - seg));
        size_t len;
        if (p == NULL)
            p = end;
        len = (size_t)(p - seg);
        trail = false;
        if (len == 0) {
            trail = p == end; /* a final slash stays; "//" collapses */
        } else if (hp__route_dot_segment(seg, len)) {
            if (len != 1 && len != 3) /* "..", ".%2e", "%2e.", "%2e%2e": up one */
                while (n > 0 && out[--n] != '/')
                    ;
            trail = true; /* "/a/b/.." is "/a/" */
        } else {
            out[n++] = '/';
            memcpy(out + n, seg, len);
            n += len;
        }
        seg = p + 1;
    }
    if (n == 0 || trail)
        out[n++] = '/';
    out[n] = '\0';
    return (int)n;
}

/* ---- reverse URLs ------------------------------------------------------ */

static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

struct ubuf {
    char *p;
    size_t n, cap;
    int err;
};

static void put(struct ubuf *b, const char *s, size_t len)
{
    if (b->err == 0 && b->cap - b->n <= len)
        b->err = -ENOSPC;
    if (b->err == 0) {
        memcpy(b->p + b->n, s, len);
        b->n += len;
    }
}

static void put_encoded(struct ubuf *b, struct hp_str v, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        char e[3] = {'%', hex[c >> 4], hex[c & 15]};
        if (unreserved(c) || (keep_slash && c == '/'))
            put(b, (const char *)&v.ptr[i], 1);
        else
            put(b, e, 3);
    }
}

/* A catch-all value: no NUL, no empty segment but a final one, no dot-segment. */
static bool rest_value_ok(struct hp_str v)
{
    const char *s = v.ptr, *end = v.ptr + v.len, *seg = s;

    if (memchr(s, '\0', v.len) != NULL)
        return false;
    for (const char *p = s; p <= end; p++) {
        if (p < end && *p != '/')
            continue;
        if (p == seg && p < end)
            return false;
        if ((p - seg == 1 && seg[0] == '.') || (p - seg == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        seg = p + 1;
    }
    return true;
}

/* One parameter value for segment @p s; false if matching could not give it back. */
static bool value_ok(const struct rseg *s, struct hp_str v)
{
    regex_t re;
    char src[ROUTE_MAX_REGEX_IN + 8];
    bool ok;

    if (s->kind == SEG_CATCHALL)
        return rest_value_ok(v);
    if (v.len == 0 || memchr(v.ptr, '\0', v.len) != NULL || (v.len == 1 && v.ptr[0] == '.') ||
        (v.len == 2 && v.ptr[0] == '.' && v.ptr[1] == '.'))
        return false;
    if (s->kind != SEG_REGEX)
        return true;
    if (v.len > ROUTE_MAX_REGEX_IN || s->re.len > ROUTE_MAX_REGEX_IN)
        return false;
    /* Compiled again here: reverse URLs are not a hot path, and the tree's
     * copy is shared by threads matching concurrently. */
    memcpy(src, "^(", 2);
    memcpy(src + 2, s->re.ptr, s->re.len);
    memcpy(src + 2 + s->re.len, ")$", 3);
    if (regcomp(&re, src, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    {
        char buf[ROUTE_MAX_REGEX_IN + 1];
        memcpy(buf, v.ptr, v.len);
        buf[v.len] = '\0';
        ok = regexec(&re, buf, 0, NULL, 0) == 0;
    }
    regfree(&re);
    return ok;
}

int hp_router_url(const struct hp_router *r, const char *name, const struct hp_str *values,
                  size_t nvalues, char *buf, size_t cap)
{
    const struct iroute *rt, *mounts[ROUTE_MAX_MOUNTS];
    struct ubuf b = {buf, 0, cap, 0};
    unsigned depth = 0;
    size_t k = 0;

    if ((rt = hp__route_named(r, name, mounts, &depth)) == NULL)
        return -ENOENT;
    if (nvalues != rt->nparams)
        return -EINVAL;
    /* The prefixes of the routers it is mounted in: their static segments. */
    for (unsigned d = 0; d < depth; d++) {
        for (unsigned i = 0; i + 1 < mounts[d]->nsegs; i++) {
            put(&b, "/", 1);
            put(&b, mounts[d]->segs[i].text.ptr, mounts[d]->segs[i].text.len);
        }
    }
    for (unsigned i = 0; i < rt->nsegs; i++) {
        const struct rseg *s = &rt->segs[i];
        put(&b, "/", 1);
        if (s->kind == SEG_STATIC) {
            put(&b, s->text.ptr, s->text.len);
            continue;
        }
        if (!value_ok(s, values[k]))
            return -EINVAL;
        put_encoded(&b, values[k++], s->kind == SEG_CATCHALL);
    }
    if (b.err == 0 && b.n >= cap)
        b.err = -ENOSPC;
    if (b.err != 0)
        return b.err;
    buf[b.n] = '\0';
    return (int)b.n;
}

int hp_router_allow(const struct hp_router *r, uint32_t allow, char *buf, size_t cap)
{
    struct ubuf b = {buf, 0, cap, 0};

    if (allow & (1u << M_GET))
        allow |= 1u << M_HEAD;
    allow |= 1u << M_OPTIONS;
    for (unsigned slot = 0; slot < M_OTHER; slot++) {
        const char *m;
        if (!(allow & (1u << slot)) || (m = hp__route_slot_name(r, slot)) == NULL)
            continue;
        if (b.n > 0)
            put(&b, ", ", 2);
        put(&b, m, strlen(m));
    }
    if (b.err == 0 && b.n >= cap)
        b.err = -ENOSPC;
    if (b.err != 0)
        return b.err;
    buf[b.n] = '\0';
    return (int)b.n;
}
