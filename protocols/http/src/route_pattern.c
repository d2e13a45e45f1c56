/*
 * route_pattern.c - pattern text to segments, checked: `/static`, `{name}`,
 * `{name:regex}` and a final `{name...}`, see router.h. Static text must be
 * RFC 3986 pchar bytes without '%', so that a static label can never match
 * an escape, an empty segment or a dot-segment: the lookup relies on it to
 * know that every path it matches is clean.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "route_internal.h"

static bool is_pchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

static bool is_name_char(unsigned char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    return !first && c >= '0' && c <= '9';
}

/* End of the brace group starting at @p s ('{'), nested braces counted. */
static const char *brace_end(const char *s)
{
    int depth = 0;

    for (; *s != '\0'; s++) {
        if (*s == '{')
            depth++;
        else if (*s == '}' && --depth == 0)
            return s;
    }
    return NULL;
}

/* "{...}" between @p s and @p e (the closing brace) into @p seg. */
static int parse_wild(const char *s, const char *e, struct rseg *seg, const char **why)
{
    const char *n = s + 1, *p = n;

    while (p < e && is_name_char((unsigned char)*p, p == n))
        p++;
    seg->text = (struct hp_str){n, (size_t)(p - n)};
    if (p == n) {
        *why = "a parameter needs a name ([A-Za-z_][A-Za-z0-9_]*)";
        return -EINVAL;
    }
    if (p == e) {
        seg->kind = SEG_PARAM;
        return 0;
    }
    if (e - p == 3 && memcmp(p, "...", 3) == 0) {
        seg->kind = SEG_CATCHALL;
        return 0;
    }
    if (*p == ':' && e - p > 1) {
        seg->kind = SEG_REGEX;
        seg->re = (struct hp_str){p + 1, (size_t)(e - p - 1)};
        return 0;
    }
    *why = "expected {name}, {name:regex} or {name...}";
    return -EINVAL;
}

/* One static segment [s, e): pchar bytes, no dot-segment. */
static int check_static(const char *s, const char *e, const char **why)
{
    if ((e - s == 1 && s[0] == '.') || (e - s == 2 && s[0] == '.' && s[1] == '.')) {
        *why = "dot-segments cannot be matched";
        return -EINVAL;
    }
    for (const char *p = s; p < e; p++) {
        if (!is_pchar((unsigned char)*p)) {
            *why = *p == '%' ? "write static text unescaped ('%' is not allowed)"
                             : "a byte that is not allowed in a path";
            return -EINVAL;
        }
    }
    return 0;
}

/* Parameter names must be unique within a pattern. */
static bool dup_name(const struct rseg *segs, int n)
{
    for (int i = 0; i < n; i++) {
        if (segs[i].kind == SEG_STATIC || segs[n].text.len != segs[i].text.len)
            continue;
        if (memcmp(segs[i].text.ptr, segs[n].text.ptr, segs[n].text.len) == 0)
            return true;
    }
    return false;
}

/* One segment starting at @p s; *next gets the byte after it ('/' or NUL). */
static int parse_seg(const char *s, struct rseg *seg, const char **next, const char **why)
{
    const char *e;

    if (*s == '{') {
        if ((e = brace_end(s)) == NULL) {
            *why = "unbalanced '{'";
            return -EINVAL;
        }
        if (e[1] != '/' && e[1] != '\0') {
            *why = "a parameter must be a whole segment";
            return -EINVAL;
        }
        *next = e + 1;
        return parse_wild(s, e, seg, why);
    }
    e = s + strcspn(s, "/");
    if (memchr(s, '{', (size_t)(e - s)) != NULL || memchr(s, '}', (size_t)(e - s)) != NULL) {
        *why = "a parameter must be a whole segment";
        return -EINVAL;
    }
    seg->kind = SEG_STATIC;
    seg->text = (struct hp_str){s, (size_t)(e - s)};
    *next = e;
    return check_static(s, e, why);
}

int hp__route_parse(const char *pattern, struct rseg *segs, char *err, size_t errlen)
{
    const char *why = NULL, *p = pattern;
    int n = 0, nparams = 0;

    if (*p != '/') {
        why = "a pattern starts with '/'";
        goto bad;
    }
    while (*p == '/') {
        const char *s = p + 1;
        if (n == ROUTE_MAX_SEGS) {
            why = "more than 64 segments";
            goto bad;
        }
        if (n > 0 && segs[n - 1].kind == SEG_CATCHALL) {
            why = "{name...} must be the last segment";
            goto bad;
        }
        if (parse_seg(s, &segs[n], &p, &why) != 0)
            goto bad;
        if (segs[n].kind == SEG_STATIC && segs[n].text.len == 0 && *p != '\0') {
            why = "empty segment ('//')";
            goto bad;
        }
        if (segs[n].kind != SEG_STATIC) {
            if (++nparams > HP_ROUTE_MAX_PARAMS) {
                why = "more than 16 parameters";
                goto bad;
            }
            if (dup_name(segs, n)) {
                why = "a parameter name is used twice";
                goto bad;
            }
        }
        n++;
    }
    if (*p != '\0') {
        why = "unexpected text after a parameter";
        goto bad;
    }
    return n;
bad:
    snprintf(err, errlen, "pattern \"%s\": %s", pattern, why);
    return -EINVAL;
}
