/*
 * static_rules.c - the parts of RFC 9110 the static handler evaluates,
 * as pure functions over header values: HTTP-dates (§5.6.7, all three
 * formats a recipient must accept), entity-tag lists (§8.8.3, strong and
 * weak comparison), byte ranges (§14.1.2) and Accept-Encoding (§12.5.3).
 */
#include <string.h>
#include <strings.h>

#include "static_internal.h"

static bool digits(const char *p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        *v = *v * 10 + (p[i] - '0');
    }
    return true;
}

static int month_of(const char *p)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

    for (int i = 0; i < 12; i++) {
        if (memcmp(months + 3 * i, p, 3) == 0)
            return i;
    }
    return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "HH:MM:SS" */
static bool clock_of(const char *p, int *h, int *mi, int *s)
{
    return p[2] == ':' && p[5] == ':' && digits(p, 2, h) && digits(p + 3, 2, mi) &&
           digits(p + 6, 2, s) && *h < 24 && *mi < 60 && *s < 61;
}

bool hp__http_date_parse(struct hp_str str, int64_t *t)
{
    const char *s = str.ptr;
    size_t n = str.len;
    const char *comma = memchr(s, ',', n < 12 ? n : 12);
    int d, mo, y, h, mi, sec;

    if (n == 29 && comma == s + 3) { /* Sun, 06 Nov 1994 08:49:37 GMT */
        if (s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
            memcmp(s + 25, " GMT", 4) != 0 || !digits(s + 5, 2, &d) || (mo = month_of(s + 8)) < 0 ||
            !digits(s + 12, 4, &y) || !clock_of(s + 17, &h, &mi, &sec))
            return false;
    } else if (comma) { /* Sunday, 06-Nov-94 08:49:37 GMT */
        const char *p = comma + 2;

        if ((size_t)(p - s) + 22 != n || comma[1] != ' ' || p[2] != '-' || p[6] != '-' ||
            p[9] != ' ' || memcmp(p + 18, " GMT", 4) != 0 || !digits(p, 2, &d) ||
            (mo = month_of(p + 3)) < 0 || !digits(p + 7, 2, &y) || !clock_of(p + 10, &h, &mi, &sec))
            return false;
        y += y < 70 ? 2000 : 1900; /* RFC 9110: a two-digit year more than 50 years ahead is past */
    } else if (n == 24) {          /* Sun Nov  6 08:49:37 1994 */
        if (s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' ||
            (mo = month_of(s + 4)) < 0 || !clock_of(s + 11, &h, &mi, &sec) ||
            !digits(s + 20, 4, &y))
            return false;
        if (s[8] == ' ' ? !digits(s + 9, 1, &d) : !digits(s + 8, 2, &d))
            return false;
    } else {
        return false;
    }
    if (d < 1 || d > 31)
        return false;
    *t = days_from_civil(y, mo + 1, d) * 86400 + h * 3600 + mi * 60 + sec;
    return true;
}

size_t hp__http_date_format(int64_t t, char out[30])
{
    static const char days[] = "ThuFriSatSunMonTueWed"; /* 1970-01-01 was a Thursday */
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t z = t >= 0 ? t / 86400 : (t - 86399) / 86400, secs = t - z * 86400;
    int64_t era, doe, yoe, y, doy, mp, d, m;
    char *w = out;

    /* civil_from_days */
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y < 0 || y > 9999)
        y = 1970, m = 1, d = 1, secs = 0, z = 719468;
    memcpy(w, days + 3 * ((z - 719468) % 7 + 7) % 21, 3);
    w += 3;
    *w++ = ',';
    *w++ = ' ';
    *w++ = (char)('0' + d / 10);
    *w++ = (char)('0' + d % 10);
    *w++ = ' ';
    memcpy(w, months + 3 * (m - 1), 3);
    w += 3;
    *w++ = ' ';
    *w++ = (char)('0' + y / 1000);
    *w++ = (char)('0' + y / 100 % 10);
    *w++ = (char)('0' + y / 10 % 10);
    *w++ = (char)('0' + y % 10);
    *w++ = ' ';
    *w++ = (char)('0' + secs / 36000);
    *w++ = (char)('0' + secs / 3600 % 10);
    *w++ = ':';
    *w++ = (char)('0' + secs % 3600 / 600);
    *w++ = (char)('0' + secs % 3600 / 60 % 10);
    *w++ = ':';
    *w++ = (char)('0' + secs % 60 / 10);
    *w++ = (char)('0' + secs % 10);
    memcpy(w, " GMT", 5);
    return 29;
}

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

bool hp__etag_match(struct hp_str list, struct hp_str etag, bool weak)
{
    const char *p = list.ptr, *end = list.ptr + list.len;

    while (p < end) {
        bool is_weak = false;
        const char *q;

        while (p < end && (ows(*p) || *p == ','))
            p++;
        if (p == end)
            break;
        if (*p == '*')
            return true;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            is_weak = true;
            p += 2;
        }
        if (p == end || *p != '"' || !(q = memchr(p + 1, '"', (size_t)(end - p - 1))))
            return false; /* malformed: matches nothing */
        q++;
        if ((weak || !is_weak) && (size_t)(q - p) == etag.len && memcmp(p, etag.ptr, etag.len) == 0)
            return true;
        p = q;
        while (p < end && ows(*p))
            p++;
        if (p < end && *p != ',')
            return false;
    }
    return false;
}

/* Decimal digits at *p (at least one); false on overflow. */
static bool number(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;

    *v = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        if (*v > (UINT64_MAX - 9) / 10)
            return false;
        *v = *v * 10 + (uint64_t)(**p - '0');
        (*p)++;
    }
    return *p > s;
}

int hp__ranges_parse(struct hp_str h, uint64_t len, struct hp__range *out, unsigned max,
                     unsigned *n)
{
    const char *p = h.ptr, *end = h.ptr + h.len;
    unsigned specs = 0, k = 0;

    *n = 0;
    if (h.len < 6 || strncasecmp(p, "bytes=", 6) != 0)
        return HP__RANGE_IGNORE;
    p += 6;
    for (;;) {
        uint64_t first, last;

        while (p < end && (ows(*p) || *p == ','))
            p++;
        if (p == end)
            break;
        if (++specs > max)
            return HP__RANGE_IGNORE;
        if (*p == '-') {
            p++;
            if (!number(&p, end, &last))
                return HP__RANGE_IGNORE;
            if (last == 0 || len == 0)
                goto next; /* unsatisfiable */
            first = last >= len ? 0 : len - last;
            last = len - 1;
        } else {
            if (!number(&p, end, &first) || p == end || *p++ != '-')
                return HP__RANGE_IGNORE;
            if (p < end && *p >= '0' && *p <= '9') {
                if (!number(&p, end, &last) || last < first)
                    return HP__RANGE_IGNORE;
            } else {
                last = UINT64_MAX;
            }
            if (first >= len)
                goto next;
            if (last >= len)
                last = len - 1;
        }
        /* Insert sorted by first. */
        {
            unsigned i = k;

            while (i > 0 && out[i - 1].first > first) {
                out[i] = out[i - 1];
                i--;
            }
            out[i].first = first;
            out[i].last = last;
            k++;
        }
    next:
        while (p < end && ows(*p))
            p++;
        if (p < end && *p != ',')
            return HP__RANGE_IGNORE;
    }
    if (specs == 0)
        return HP__RANGE_IGNORE;
    if (k == 0)
        return HP__RANGE_UNSAT;
    /* Merge overlapping and adjacent ranges. */
    unsigned m = 0;
    for (unsigned i = 1; i < k; i++) {
        if (out[i].first <= out[m].last + 1) {
            if (out[i].last > out[m].last)
                out[m].last = out[i].last;
        } else {
            out[++m] = out[i];
        }
    }
    *n = m + 1;
    return HP__RANGE_OK;
}

/* A q-value: "0", "0.5", "1", "1.000"; in thousandths, -1 if malformed. */
static int qvalue(const char *p, const char *end)
{
    int q, scale = 100;

    if (p == end || (*p != '0' && *p != '1'))
        return -1;
    q = (*p++ - '0') * 1000;
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9' && scale > 0; p++, scale /= 10)
            q += (*p - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

int hp__accept_encoding(struct hp_str h, unsigned avail)
{
    int q_gzip = -1, q_br = -1, q_star = -1, q_id = -1;
    const char *p = h.ptr, *end = h.ptr + h.len;

    while (p < end) {
        const char *tok, *tend;
        int q = 1000;

        while (p < end && (ows(*p) || *p == ','))
            p++;
        tok = p;
        while (p < end && *p != ',' && *p != ';' && !ows(*p))
            p++;
        tend = p;
        while (p < end && *p != ',') {
            /* parameters: only q matters */
            while (p < end && (ows(*p) || *p == ';'))
                p++;
            if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                const char *v = p + 2;

                while (p < end && *p != ',' && *p != ';' && !ows(*p))
                    p++;
                q = qvalue(v, p);
            } else {
                while (p < end && *p != ',' && *p != ';')
                    p++;
            }
        }
        size_t n = (size_t)(tend - tok);
        if (q < 0 || n == 0)
            continue;
        if ((n == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
            (n == 6 && strncasecmp(tok, "x-gzip", 6) == 0))
            q_gzip = q;
        else if (n == 2 && strncasecmp(tok, "br", 2) == 0)
            q_br = q;
        else if (n == 1 && *tok == '*')
            q_star = q;
        else if (n == 8 && strncasecmp(tok, "identity", 8) == 0)
            q_id = q;
    }
    if (q_gzip < 0)
        q_gzip = q_star;
    if (q_br < 0)
        q_br = q_star;
    if (q_id < 0)
        q_id = q_star >= 0 ? q_star : 1;
    if (!(avail & (1u << HP__ENC_GZIP)))
        q_gzip = -1;
    if (!(avail & (1u << HP__ENC_BR)))
        q_br = -1;
    if (q_br > 0 && q_br >= q_gzip && q_br >= q_id)
        return HP__ENC_BR;
    if (q_gzip > 0 && q_gzip >= q_id)
        return HP__ENC_GZIP;
    return HP__ENC_IDENTITY;
}
