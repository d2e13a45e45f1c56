/*
 * cookie.c - the Cookie header walk and the Set-Cookie builder. The builder
 * checks every piece against RFC 6265 §4.1.1's grammar before it writes
 * anything, so nothing a client sent can break out of a value. Dates are
 * computed from the Unix time directly (days to civil date), without the
 * C library's time zone machinery.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <hellepoll/cookie.h>
#include <hellepoll/str.h>

/* tchar of RFC 9110 §5.6.2. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(struct hp_str s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!is_tchar((unsigned char)s.ptr[i]))
            return false;
    return true;
}

/* cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E. */
static bool is_cookie_octet(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

static bool is_cookie_value(struct hp_str v)
{
    if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"') {
        v.ptr++;
        v.len -= 2;
    }
    for (size_t i = 0; i < v.len; i++)
        if (!is_cookie_octet((unsigned char)v.ptr[i]))
            return false;
    return true;
}

/* av-octet: any CHAR except CTLs and ';'. */
static bool is_av_value(struct hp_str v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];

        if (c < 0x20 || c >= 0x7f || c == ';')
            return false;
    }
    return true;
}

static bool is_domain(struct hp_str d)
{
    for (size_t i = 0; i < d.len; i++) {
        unsigned char c = (unsigned char)d.ptr[i];

        if (!((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '-' ||
              c == '.'))
            return false;
    }
    return d.len > 0;
}

void hp_cookie_iter_init(struct hp_cookie_iter *it, struct hp_str header)
{
    it->_rest = header;
}

bool hp_cookie_next(struct hp_cookie_iter *it, struct hp_str *name, struct hp_str *value)
{
    while (it->_rest.len > 0) {
        ptrdiff_t semi = hp_str_index(it->_rest, ';'), eq;
        struct hp_str pair = {it->_rest.ptr, semi < 0 ? it->_rest.len : (size_t)semi};
        struct hp_str n, v;

        it->_rest.ptr += semi < 0 ? it->_rest.len : (size_t)semi + 1;
        it->_rest.len -= semi < 0 ? it->_rest.len : (size_t)semi + 1;
        if ((eq = hp_str_index(pair, '=')) < 0)
            continue;
        n = hp_str_trim_ows((struct hp_str){pair.ptr, (size_t)eq});
        v = hp_str_trim_ows((struct hp_str){pair.ptr + eq + 1, pair.len - (size_t)eq - 1});
        if (!is_token(n))
            continue;
        if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"') {
            v.ptr++;
            v.len -= 2;
        }
        *name = n;
        *value = v;
        return true;
    }
    return false;
}

bool hp_cookie_get(struct hp_str header, struct hp_str name, struct hp_str *value)
{
    struct hp_cookie_iter it;
    struct hp_str n, v;

    hp_cookie_iter_init(&it, header);
    while (hp_cookie_next(&it, &n, &v)) {
        if (hp_str_eq(n, name)) {
            *value = v;
            return true;
        }
    }
    return false;
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static void civil(int64_t days, int *y, unsigned *m, unsigned *d)
{
    int64_t z = days + 719468, era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;

    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + (unsigned)era * 400) + (*m <= 2);
}

int hp_http_format_date(int64_t t, char out[29])
{
    static const char days[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char tmp[40];
    int64_t day, sec;
    unsigned m, d;
    int y;

    if (t < 0 || t > INT64_C(253402300799))
        return -EINVAL;
    day = t / 86400;
    sec = t % 86400;
    civil(day, &y, &m, &d);
    snprintf(tmp, sizeof(tmp), "%s, %02u %s %04d %02u:%02u:%02u GMT", days[day % 7], d,
             months[m - 1], y, (unsigned)(sec / 3600), (unsigned)(sec / 60 % 60),
             (unsigned)(sec % 60));
    memcpy(out, tmp, 29);
    return 0;
}

struct out {
    char *buf;
    size_t cap, len;
    bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (n == 0)
        return; /* an empty view may have a NULL ptr */
    if (o->full || o->cap - o->len < n) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_str(struct out *o, struct hp_str s)
{
    put(o, s.ptr, s.len);
}

static void put_attr(struct out *o, const char *name, struct hp_str value)
{
    put(o, "; ", 2);
    put(o, name, strlen(name));
    put_str(o, value);
}

static bool cookie_valid(const struct hp_cookie *c)
{
    if (!is_token(c->name) || !is_cookie_value(c->value))
        return false;
    if ((c->path.len && !is_av_value(c->path)) || (c->domain.len && !is_domain(c->domain)))
        return false;
    if ((c->has_max_age && c->max_age < 0) ||
        (c->has_expires && (c->expires < 0 || c->expires > INT64_C(253402300799))))
        return false;
    if (c->same_site > HP_COOKIE_SAME_SITE_NONE ||
        (c->same_site == HP_COOKIE_SAME_SITE_NONE && !c->secure))
        return false;
    return true;
}

int hp_cookie_format(const struct hp_cookie *c, char *buf, size_t cap, size_t *len)
{
    static const char *const same_site[] = {NULL, "Strict", "Lax", "None"};
    struct out o = {buf, cap, 0, false};
    char num[24];

    if (!cookie_valid(c))
        return -EINVAL;
    put_str(&o, c->name);
    put(&o, "=", 1);
    put_str(&o, c->value);
    if (c->path.len)
        put_attr(&o, "Path=", c->path);
    if (c->domain.len)
        put_attr(&o, "Domain=", c->domain);
    if (c->has_max_age) {
        int n = snprintf(num, sizeof(num), "%lld", (long long)c->max_age);

        put_attr(&o, "Max-Age=", (struct hp_str){num, (size_t)n});
    }
    if (c->has_expires) {
        char date[29];

        hp_http_format_date(c->expires, date);
        put_attr(&o, "Expires=", (struct hp_str){date, sizeof(date)});
    }
    if (c->secure)
        put(&o, "; Secure", 8);
    if (c->http_only)
        put(&o, "; HttpOnly", 10);
    if (c->same_site != HP_COOKIE_SAME_SITE_UNSET)
        put_attr(&o, "SameSite=", hp_str_make(same_site[c->same_site]));
    if (o.full)
        return -ENOBUFS;
    *len = o.len;
    return 0;
}
