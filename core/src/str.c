/*
 * str.c - pure helpers on struct hp_str views. ASCII case folding is done
 * by hand so that the result never depends on the C locale; integer parsing
 * checks for overflow before each multiply-add, so it never wraps.
 */
#include <errno.h>
#include <string.h>

#include <hellepoll/str.h>

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

static bool eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

bool hp_str_eq(struct hp_str a, struct hp_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool hp_str_eq_nocase(struct hp_str a, struct hp_str b)
{
    return a.len == b.len && eq_nocase(a.ptr, b.ptr, a.len);
}

bool hp_str_has_prefix(struct hp_str s, struct hp_str prefix)
{
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.ptr, prefix.ptr, prefix.len) == 0);
}

bool hp_str_has_prefix_nocase(struct hp_str s, struct hp_str prefix)
{
    return s.len >= prefix.len && eq_nocase(s.ptr, prefix.ptr, prefix.len);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

struct hp_str hp_str_trim(struct hp_str s)
{
    while (s.len > 0 && is_space(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && is_space(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

struct hp_str hp_str_trim_ows(struct hp_str s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

ptrdiff_t hp_str_index(struct hp_str s, char c)
{
    const char *p = s.len ? memchr(s.ptr, c, s.len) : NULL;

    return p ? p - s.ptr : -1;
}

/* Digits of @p p as a magnitude no larger than @p max. */
static int parse_digits(const char *p, size_t n, uint64_t max, uint64_t *out)
{
    bool overflow = false;
    uint64_t v = 0;

    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)p[i] - '0';

        if (d > 9)
            return -EINVAL;
        /* Keep scanning after an overflow so "99999999999999999999x" is
         * -EINVAL, not -ERANGE: a syntax error wins over a range error. */
        if (overflow || v > (max - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    if (overflow)
        return -ERANGE;
    *out = v;
    return 0;
}

int hp_str_to_u64(struct hp_str s, uint64_t *out)
{
    return parse_digits(s.ptr, s.len, UINT64_MAX, out);
}

int hp_str_to_i64(struct hp_str s, int64_t *out)
{
    bool neg = false;
    uint64_t mag;
    int err;

    if (s.len > 0 && (s.ptr[0] == '-' || s.ptr[0] == '+')) {
        neg = s.ptr[0] == '-';
        s.ptr++;
        s.len--;
    }
    err = parse_digits(s.ptr, s.len, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &mag);
    if (err != 0)
        return err;
    /* -(INT64_MIN) is not an int64_t: negate mag - 1, which always fits. */
    *out = neg ? (mag == 0 ? 0 : -(int64_t)(mag - 1) - 1) : (int64_t)mag;
    return 0;
}
