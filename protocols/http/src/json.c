/*
 * json.c - the JSON writer. The grammar is a small state machine: _state
 * says what the innermost level expects next (the top-level value, a key, a
 * member value, an array element, or nothing more) plus whether a comma is
 * due, and _kinds is a bit stack of the open levels (1 = object). Nothing
 * is written after the first error, which stays in _err.
 *
 * Strings: a short one with nothing to escape (the common case: keys,
 * messages) is copied as it is scanned, inline (put_plain); anything else
 * goes through put_string, which copies plain bytes 8 at a time and
 * escapes the rest. A string is first written assuming it needs no more
 * room than its length plus quotes; if that runs out, a growable writer
 * makes room for the worst case and writes it again.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/json.h>

enum {
    ST_TOP,  /* the top-level value is due */
    ST_DONE, /* the top-level value is complete */
    ST_KEY,  /* inside an object: a key or the end */
    ST_VAL,  /* inside an object, after a key: its value */
    ST_ELEM, /* inside an array: an element or the end */
    ST_COMMA = 0x10,
};

/* Byte classes: which bytes a string copy must stop at, by flag. */
enum { C_PLAIN, C_ESC, C_SLASH, C_DEL, C_HIGH };

/* clang-format off */
/*
 * The byte classes for one set of flags: E ('"', '\\', controls) and H
 * (0x80 and up) always stop a plain run, S_ ('/') and D_ (DEL) only with
 * HP_JSON_ESCAPE_HTML and HP_JSON_LATIN1; 0 is a plain byte.
 */
#define E C_ESC
#define H C_HIGH
#define CLASSES(S_, D_) { \
    E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, /* 0x00 */ \
    E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, /* 0x10 */ \
    0, 0, E, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, S_, /* 0x20 */ \
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */ \
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */ \
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, E, 0, 0, 0, /* 0x50 */ \
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */ \
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, D_, /* 0x70 */ \
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0x80 */ \
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0x90 */ \
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xa0 */ \
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xb0 */ \
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xc0 */ \
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xd0 */ \
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xe0 */ \
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xf0 */ \
}
static const unsigned char classes[4][256] = {
    CLASSES(0, 0), CLASSES(0, C_DEL), CLASSES(C_SLASH, 0), CLASSES(C_SLASH, C_DEL),
};
#undef CLASSES
#undef E
#undef H
/* clang-format on */

/* The class table for @p flags. */
static const unsigned char *classes_for(unsigned flags)
{
    return classes[((flags & HP_JSON_LATIN1) ? 1 : 0) | ((flags & HP_JSON_ESCAPE_HTML) ? 2 : 0)];
}

static void *default_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    return realloc(ptr, size);
}

static void default_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

static void init(struct hp_json *w, unsigned flags)
{
    w->_len = 0;
    w->_err = 0;
    w->_flags = flags;
    w->_depth = 0;
    w->_state = ST_TOP;
    w->_kinds = 0;
}

void hp_json_init_fixed(struct hp_json *w, void *buf, size_t cap, unsigned flags)
{
    init(w, flags);
    w->_buf = buf;
    w->_cap = buf ? cap : 0;
    w->_alloc = (struct hp_allocator){NULL, NULL, NULL};
    w->_grow = false;
}

void hp_json_init_alloc(struct hp_json *w, const struct hp_allocator *alloc, unsigned flags)
{
    init(w, flags);
    w->_buf = NULL;
    w->_cap = 0;
    if (alloc && alloc->realloc)
        w->_alloc = *alloc;
    else
        w->_alloc = (struct hp_allocator){default_realloc, default_free, NULL};
    w->_grow = true;
}

void hp_json_free(struct hp_json *w)
{
    if (w->_grow && w->_buf)
        w->_alloc.free(w->_alloc.ctx, w->_buf);
    w->_buf = NULL;
    w->_cap = 0;
    w->_len = 0;
}

void hp_json_reset(struct hp_json *w)
{
    init(w, w->_flags);
}

static int fail(struct hp_json *w, int err)
{
    if (w->_err == 0)
        w->_err = err;
    return w->_err;
}

static int grow(struct hp_json *w, size_t n)
{
    size_t cap = w->_cap ? w->_cap : 256;
    char *p;

    if (!w->_grow)
        return fail(w, -ENOBUFS);
    if (n > SIZE_MAX / 2 - w->_len)
        return fail(w, -ENOMEM);
    while (cap - w->_len < n)
        cap *= 2;
    if ((p = w->_alloc.realloc(w->_alloc.ctx, w->_buf, cap)) == NULL)
        return fail(w, -ENOMEM);
    w->_buf = p;
    w->_cap = cap;
    return 0;
}

/* Room for @p n more bytes: 0 or the (sticky) error. */
static inline int reserve(struct hp_json *w, size_t n)
{
    if (w->_cap - w->_len >= n)
        return 0;
    return grow(w, n);
}

/*
 * Place a value: check the grammar, write the separator due before it and
 * make room for @p n bytes after that. The state becomes "after a value".
 */
static int begin_value(struct hp_json *w, size_t n)
{
    unsigned st = w->_state;

    if (w->_err)
        return w->_err;
    switch (st & ~(unsigned)ST_COMMA) {
    case ST_TOP:
        w->_state = ST_DONE;
        return reserve(w, n);
    case ST_VAL:
        w->_state = ST_KEY | ST_COMMA;
        return reserve(w, n);
    case ST_ELEM:
        if (reserve(w, n + 2) != 0)
            return w->_err;
        w->_state = ST_ELEM | ST_COMMA;
        if (st & ST_COMMA) {
            w->_buf[w->_len++] = ',';
            if (w->_flags & HP_JSON_SPACED)
                w->_buf[w->_len++] = ' ';
        }
        return 0;
    default: /* a key is due, or the document is complete */
        return fail(w, -EINVAL);
    }
}

static int push(struct hp_json *w, bool object)
{
    if (begin_value(w, 1) != 0)
        return w->_err;
    if (w->_depth >= HP_JSON_MAX_DEPTH)
        return fail(w, -E2BIG);
    if (object)
        w->_kinds |= (uint64_t)1 << w->_depth;
    else
        w->_kinds &= ~((uint64_t)1 << w->_depth);
    w->_depth++;
    w->_buf[w->_len++] = object ? '{' : '[';
    w->_state = object ? ST_KEY : ST_ELEM;
    return 0;
}

static int pop(struct hp_json *w, bool object)
{
    unsigned want = object ? ST_KEY : ST_ELEM;

    if (w->_err)
        return w->_err;
    if (w->_depth == 0 || (w->_state & ~(unsigned)ST_COMMA) != want)
        return fail(w, -EINVAL);
    if (reserve(w, 1) != 0)
        return w->_err;
    w->_buf[w->_len++] = object ? '}' : ']';
    w->_depth--;
    if (w->_depth == 0)
        w->_state = ST_DONE;
    else if (w->_kinds & ((uint64_t)1 << (w->_depth - 1)))
        w->_state = ST_KEY | ST_COMMA;
    else
        w->_state = ST_ELEM | ST_COMMA;
    return 0;
}

int hp_json_obj_begin(struct hp_json *w)
{
    return push(w, true);
}

int hp_json_obj_end(struct hp_json *w)
{
    return pop(w, true);
}

int hp_json_arr_begin(struct hp_json *w)
{
    return push(w, false);
}

int hp_json_arr_end(struct hp_json *w)
{
    return pop(w, false);
}

/*
 * Length of the UTF-8 sequence at @p s (n > 0 bytes available) and whether
 * it is well-formed (Unicode Table 3-7). An ill-formed one is its maximal
 * subpart: the longest prefix that could have begun a valid sequence, at
 * least one byte.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, bool *ok)
{
    unsigned c = s[0], lo = 0x80, hi = 0xbf;
    size_t need;

    *ok = false;
    if (c < 0xc2 || c > 0xf4)
        return 1;
    if (c <= 0xdf) {
        need = 1;
    } else if (c <= 0xef) {
        need = 2;
        lo = c == 0xe0 ? 0xa0 : lo;
        hi = c == 0xed ? 0x9f : hi;
    } else {
        need = 3;
        lo = c == 0xf0 ? 0x90 : lo;
        hi = c == 0xf4 ? 0x8f : hi;
    }
    if (n < 2 || s[1] < lo || s[1] > hi)
        return 1;
    for (size_t i = 2; i <= need; i++)
        if (i >= n || s[i] < 0x80 || s[i] > 0xbf)
            return i;
    *ok = true;
    return need + 1;
}

static const char hex[] = "0123456789abcdef";

/* One escape for the byte(s) at @p s into @p out (room for 6); returns bytes written. */
static size_t escape_ctl(char *out, unsigned char c)
{
    static const char short_esc[32] = {
        [8] = 'b', [9] = 't', [10] = 'n', [12] = 'f', [13] = 'r',
    };

    out[0] = '\\';
    if (c == '"' || c == '\\') {
        out[1] = (char)c;
        return 2;
    }
    if (c < 32 && short_esc[c]) {
        out[1] = short_esc[c];
        return 2;
    }
    memcpy(out + 1, "u00", 3);
    out[4] = hex[c >> 4];
    out[5] = hex[c & 15];
    return 6;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGH UINT64_C(0x8080808080808080)

/* Nonzero if a byte of @p v is zero (exact as an existence test). */
static inline uint64_t has_zero(uint64_t v)
{
    return (v - ONES) & ~v & HIGH;
}

/*
 * Nonzero if one of the 8 bytes at @p p may need attention: a control
 * character, '"', '\\', 0x80 and up, and with the flags '/' and DEL. A
 * word at a time, so plain ASCII costs about two instructions a byte.
 */
static inline uint64_t block_special(const unsigned char *p, uint64_t slash, uint64_t del)
{
    uint64_t x;

    memcpy(&x, p, sizeof(x));
    return (x & HIGH) | ((x - ONES * 0x20) & ~x & HIGH) | has_zero(x ^ (ONES * '"')) |
           has_zero(x ^ (ONES * '\\')) | (slash & has_zero(x ^ (ONES * '/'))) |
           (del & has_zero(x ^ (ONES * 0x7f)));
}

/*
 * Write @p n bytes of @p src escaped, with its quotes, at w->_len. The
 * output is never shorter than the input plus its quotes (an escape or a
 * U+FFFD is at least as long as what it replaces), so once that much room
 * is there, plain bytes are copied without checks (8 at a time where a
 * whole word is plain) and only escapes check for their extra bytes.
 * Returns 0, -ENOBUFS (out of room: nothing is kept) or -EILSEQ.
 */
static int put_string(struct hp_json *w, const unsigned char *src, size_t n, unsigned flags)
{
    const unsigned char *s = src, *end = src + n, *cls = classes_for(flags);
    uint64_t slash = (flags & HP_JSON_ESCAPE_HTML) ? ~(uint64_t)0 : 0;
    uint64_t del = (flags & HP_JSON_LATIN1) ? ~(uint64_t)0 : 0;
    char *out = w->_buf + w->_len, *lim = w->_buf + w->_cap;

    if ((size_t)(lim - out) < n + 2)
        return -ENOBUFS;
    *out++ = '"';
    while (s < end) {
        const char *rep;
        char esc[6];
        size_t len = 1, e;
        unsigned k;
        bool ok;

        if (end - s >= 8 && !block_special(s, slash, del)) {
            memcpy(out, s, 8);
            out += 8;
            s += 8;
            continue;
        }
        if ((k = cls[*s]) == C_PLAIN) {
            *out++ = (char)*s++;
            continue;
        }
        rep = esc;
        if (k == C_ESC || (k >= C_DEL && (flags & HP_JSON_LATIN1))) {
            e = escape_ctl(esc, *s);
        } else if (k == C_SLASH) {
            rep = s > src && s[-1] == '<' ? "\\/" : "/";
            e = rep[1] ? 2 : 1;
        } else if ((len = utf8_seq(s, (size_t)(end - s), &ok)), ok) {
            bool sep = (flags & HP_JSON_ESCAPE_HTML) && len == 3 && s[0] == 0xe2 && s[1] == 0x80 &&
                       (s[2] & 0xfe) == 0xa8;

            rep = sep ? (s[2] == 0xa8 ? "\\u2028" : "\\u2029") : (const char *)s;
            e = sep ? 6 : len;
        } else if (flags & HP_JSON_UTF8_STRICT) {
            return -EILSEQ;
        } else {
            rep = "\xef\xbf\xbd"; /* U+FFFD */
            e = 3;
        }
        /* room for the replacement, the rest and the closing quote */
        if ((size_t)(lim - out) < e + (size_t)(end - s) - len + 1)
            return -ENOBUFS;
        memcpy(out, rep, e);
        out += e;
        s += len;
    }
    *out++ = '"';
    w->_len = (size_t)(out - w->_buf);
    return 0;
}

/* A string at the current position, growing the buffer for the worst case if needed. */
/*
 * The common case inline: a short string of plain bytes, with room for it
 * and its quotes. False (nothing kept) as soon as a byte needs more.
 */
static inline bool put_plain(struct hp_json *w, struct hp_str s, unsigned flags)
{
    const unsigned char *cls = classes_for(flags), *p = (const unsigned char *)s.ptr;
    char *out = w->_buf + w->_len;

    if (s.len >= 32 || w->_cap - w->_len < s.len + 2)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (cls[p[i]] != C_PLAIN)
            return false;
        out[i + 1] = (char)p[i];
    }
    out[0] = '"';
    out[s.len + 1] = '"';
    w->_len += s.len + 2;
    return true;
}

static int write_string(struct hp_json *w, struct hp_str s, unsigned flags)
{
    int err;

    if (put_plain(w, s, flags))
        return 0;
    err = put_string(w, (const unsigned char *)s.ptr, s.len, flags);

    if (err == -ENOBUFS && w->_grow) {
        if (s.len > (SIZE_MAX - 2) / 6)
            return fail(w, -ENOMEM);
        if (reserve(w, 6 * s.len + 2) != 0)
            return w->_err;
        err = put_string(w, (const unsigned char *)s.ptr, s.len, flags);
    }
    return err ? fail(w, err) : 0;
}

int hp_json_key(struct hp_json *w, struct hp_str key)
{
    unsigned st = w->_state;

    if (w->_err)
        return w->_err;
    if ((st & ~(unsigned)ST_COMMA) != ST_KEY)
        return fail(w, -EINVAL);
    if (reserve(w, key.len + 6) != 0)
        return w->_err;
    if (st & ST_COMMA) {
        w->_buf[w->_len++] = ',';
        if (w->_flags & HP_JSON_SPACED)
            w->_buf[w->_len++] = ' ';
    }
    if (write_string(w, key, w->_flags) != 0 || reserve(w, 2) != 0)
        return w->_err;
    w->_buf[w->_len++] = ':';
    if (w->_flags & HP_JSON_SPACED)
        w->_buf[w->_len++] = ' ';
    w->_state = ST_VAL;
    return 0;
}

int hp_json_str(struct hp_json *w, struct hp_str s)
{
    if (begin_value(w, s.len + 2) != 0)
        return w->_err;
    return write_string(w, s, w->_flags);
}

int hp_json_str_flags(struct hp_json *w, struct hp_str s, unsigned flags)
{
    if (begin_value(w, s.len + 2) != 0)
        return w->_err;
    return write_string(w, s, flags);
}

/* Decimal digits of @p v, right-aligned ending at @p end; returns the first. */
static char *u64_digits(char *end, uint64_t v)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";
    char *p = end;

    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;

        v /= 100;
        p -= 2;
        memcpy(p, pairs + i, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, pairs + v * 2, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

static int put_number(struct hp_json *w, uint64_t mag, bool neg)
{
    static const uint64_t pow10[19] = {
        UINT64_C(10),
        UINT64_C(100),
        UINT64_C(1000),
        UINT64_C(10000),
        UINT64_C(100000),
        UINT64_C(1000000),
        UINT64_C(10000000),
        UINT64_C(100000000),
        UINT64_C(1000000000),
        UINT64_C(10000000000),
        UINT64_C(100000000000),
        UINT64_C(1000000000000),
        UINT64_C(10000000000000),
        UINT64_C(100000000000000),
        UINT64_C(1000000000000000),
        UINT64_C(10000000000000000),
        UINT64_C(100000000000000000),
        UINT64_C(1000000000000000000),
        UINT64_C(10000000000000000000),
    };
    char *out, *end;
    unsigned n = 1; /* digits: compared, not divided */

    while (n < 20 && mag >= pow10[n - 1])
        n++;
    if (begin_value(w, n + 1) != 0)
        return w->_err;
    out = w->_buf + w->_len;
    if (neg)
        *out++ = '-';
    end = out + n;
    u64_digits(end, mag);
    w->_len = (size_t)(end - w->_buf);
    return 0;
}

int hp_json_int(struct hp_json *w, int64_t v)
{
    /* The magnitude of INT64_MIN does not fit in int64_t: negate as unsigned. */
    return put_number(w, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
}

int hp_json_uint(struct hp_json *w, uint64_t v)
{
    return put_number(w, v, false);
}

int hp_json_double(struct hp_json *w, double v)
{
    char tmp[40];
    int n = 0;
    size_t len = 0;

    if (w->_err)
        return w->_err;
    if (!isfinite(v))
        return fail(w, -EDOM);
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    if (n <= 0 || (size_t)n >= sizeof(tmp))
        return fail(w, -EINVAL);
    if (begin_value(w, (size_t)n) != 0)
        return w->_err;
    /* snprintf and strtod follow the C locale's decimal point, which may
     * not be '.': JSON's is, whatever the locale (a multi-byte point
     * becomes one '.'). */
    for (int i = 0; i < n; i++) {
        char c = tmp[i];

        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E')
            w->_buf[w->_len + len++] = c;
        else if (len == 0 || w->_buf[w->_len + len - 1] != '.')
            w->_buf[w->_len + len++] = '.';
    }
    w->_len += len;
    return 0;
}

static int put_lit(struct hp_json *w, const char *s, size_t n)
{
    if (begin_value(w, n) != 0)
        return w->_err;
    memcpy(w->_buf + w->_len, s, n);
    w->_len += n;
    return 0;
}

int hp_json_bool(struct hp_json *w, bool v)
{
    return v ? put_lit(w, "true", 4) : put_lit(w, "false", 5);
}

int hp_json_null(struct hp_json *w)
{
    return put_lit(w, "null", 4);
}

int hp_json_raw(struct hp_json *w, struct hp_str json)
{
    if (json.len == 0)
        return fail(w, -EINVAL);
    return put_lit(w, json.ptr, json.len);
}

int hp_json_kv_str(struct hp_json *w, struct hp_str key, struct hp_str s)
{
    return hp_json_key(w, key) ? w->_err : hp_json_str(w, s);
}

int hp_json_kv_int(struct hp_json *w, struct hp_str key, int64_t v)
{
    return hp_json_key(w, key) ? w->_err : hp_json_int(w, v);
}

int hp_json_kv_bool(struct hp_json *w, struct hp_str key, bool v)
{
    return hp_json_key(w, key) ? w->_err : hp_json_bool(w, v);
}

int hp_json_kv_uint(struct hp_json *w, struct hp_str key, uint64_t v)
{
    return hp_json_key(w, key) ? w->_err : hp_json_uint(w, v);
}

int hp_json_kv_double(struct hp_json *w, struct hp_str key, double v)
{
    return hp_json_key(w, key) ? w->_err : hp_json_double(w, v);
}

int hp_json_kv_null(struct hp_json *w, struct hp_str key)
{
    return hp_json_key(w, key) ? w->_err : hp_json_null(w);
}

int hp_json_finish(struct hp_json *w, struct hp_str *out)
{
    if (w->_err)
        return w->_err;
    if (w->_state != ST_DONE)
        return -EINVAL;
    out->ptr = w->_buf;
    out->len = w->_len;
    return 0;
}

int hp_json_error(const struct hp_json *w)
{
    return w->_err;
}

struct hp_str hp_json_output(const struct hp_json *w)
{
    struct hp_str s = {w->_buf ? w->_buf : "", w->_len};

    return s;
}
