/*
 * form.c - percent-decoding and urlencoded forms. The decoder writes at or
 * behind the byte it reads (an escape of three bytes becomes one), which is
 * what makes decoding in place safe. The pair walk only splits on '&' and
 * '='; decoding is separate so that hp_form_next_raw() costs nothing per
 * byte beyond a memchr.
 */
#include <errno.h>
#include <string.h>

#include <hellepoll/form.h>
#include <hellepoll/str.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The byte at in[*i] decoded, advancing *i; -1 for a malformed escape. */
static int decode_one(struct hp_str in, size_t *i, unsigned flags)
{
    unsigned char c = (unsigned char)in.ptr[*i];
    int hi, lo;

    if (c == '+' && (flags & HP_FORM_PLUS_SPACE)) {
        (*i)++;
        return ' ';
    }
    if (c != '%') {
        (*i)++;
        return c;
    }
    if (in.len - *i < 3 || (hi = hexval((unsigned char)in.ptr[*i + 1])) < 0 ||
        (lo = hexval((unsigned char)in.ptr[*i + 2])) < 0)
        return -1;
    *i += 3;
    return hi << 4 | lo;
}

int hp_pct_decode(struct hp_str in, char *out, size_t cap, unsigned flags, size_t *len)
{
    size_t i = 0, o = 0;

    while (i < in.len) {
        const char *p = in.ptr + i;
        size_t run = 0;
        int c;

        /* Copy the plain run up to the next byte that needs decoding. */
        while (run < in.len - i && p[run] != '%' &&
               (p[run] != '+' || !(flags & HP_FORM_PLUS_SPACE)))
            run++;
        if (run > 0) {
            if (cap - o < run)
                return -ENOBUFS;
            memmove(out + o, p, run);
            o += run;
            i += run;
            continue;
        }
        if ((c = decode_one(in, &i, flags)) < 0)
            return -EBADMSG;
        if (o == cap)
            return -ENOBUFS;
        out[o++] = (char)c;
    }
    *len = o;
    return 0;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int hp_pct_encode(struct hp_str in, char *out, size_t cap, unsigned flags, size_t *len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];

        if (is_unreserved(c) || (c == ' ' && (flags & HP_FORM_PLUS_SPACE))) {
            if (o == cap)
                return -ENOBUFS;
            out[o++] = c == ' ' ? '+' : (char)c;
        } else {
            if (cap - o < 3)
                return -ENOBUFS;
            out[o] = '%';
            out[o + 1] = hex[c >> 4];
            out[o + 2] = hex[c & 15];
            o += 3;
        }
    }
    *len = o;
    return 0;
}

bool hp_pct_equal(struct hp_str encoded, struct hp_str plain, unsigned flags)
{
    size_t i = 0, o = 0;

    while (i < encoded.len) {
        int c = decode_one(encoded, &i, flags);

        if (c < 0 || o == plain.len || (unsigned char)plain.ptr[o] != (unsigned)c)
            return false;
        o++;
    }
    return o == plain.len;
}

void hp_form_iter_init(struct hp_form_iter *it, struct hp_str input, unsigned flags,
                       size_t max_pairs)
{
    it->_rest = input;
    it->_flags = flags;
    it->_pairs = 0;
    it->_max_pairs = max_pairs ? max_pairs : HP_FORM_DEFAULT_MAX_PAIRS;
}

int hp_form_next_raw(struct hp_form_iter *it, struct hp_str *name, struct hp_str *value)
{
    struct hp_str pair;
    ptrdiff_t amp, eq;

    do { /* skip empty pairs */
        if (it->_rest.len == 0)
            return 0;
        amp = hp_str_index(it->_rest, '&');
        pair.ptr = it->_rest.ptr;
        pair.len = amp < 0 ? it->_rest.len : (size_t)amp;
        it->_rest.ptr += amp < 0 ? it->_rest.len : (size_t)amp + 1;
        it->_rest.len -= amp < 0 ? it->_rest.len : (size_t)amp + 1;
    } while (pair.len == 0);
    if (it->_pairs == it->_max_pairs) {
        it->_rest.len = 0;
        return -E2BIG;
    }
    it->_pairs++;
    eq = hp_str_index(pair, '=');
    name->ptr = pair.ptr;
    name->len = eq < 0 ? pair.len : (size_t)eq;
    value->ptr = eq < 0 ? pair.ptr + pair.len : pair.ptr + eq + 1;
    value->len = eq < 0 ? 0 : pair.len - (size_t)eq - 1;
    return 1;
}

int hp_form_next(struct hp_form_iter *it, char *buf, size_t cap, struct hp_str *name,
                 struct hp_str *value)
{
    struct hp_str rn, rv;
    size_t nl, vl;
    int rc = hp_form_next_raw(it, &rn, &rv), err;

    if (rc <= 0)
        return rc;
    if ((err = hp_pct_decode(rn, buf, cap, it->_flags, &nl)) != 0 ||
        (err = hp_pct_decode(rv, buf + nl, cap - nl, it->_flags, &vl)) != 0)
        return err;
    name->ptr = buf;
    name->len = nl;
    value->ptr = buf + nl;
    value->len = vl;
    return 1;
}

int hp_form_parse_inplace(char *buf, size_t len, unsigned flags, struct hp_form_pair *pairs,
                          size_t max_pairs, size_t *n)
{
    struct hp_form_iter it;
    struct hp_str rn, rv;
    size_t count = 0;
    int rc;

    /* Each pair decodes onto its own raw bytes, which lie at or after the
     * previous pair's output: the walk never reads what was written. */
    hp_form_iter_init(&it, (struct hp_str){buf, len}, flags, SIZE_MAX);
    while ((rc = hp_form_next_raw(&it, &rn, &rv)) > 0) {
        char *nout = buf + (rn.ptr - buf), *vout = buf + (rv.ptr - buf);
        size_t nl, vl;
        int err;

        if (count == max_pairs)
            return -E2BIG;
        if ((err = hp_pct_decode(rn, nout, rn.len, flags, &nl)) != 0 ||
            (err = hp_pct_decode(rv, vout, rv.len, flags, &vl)) != 0)
            return err;
        pairs[count].name = (struct hp_str){nout, nl};
        pairs[count].value = (struct hp_str){vout, vl};
        count++;
    }
    *n = count;
    return rc;
}

int hp_form_get(struct hp_str input, struct hp_str name, unsigned flags, char *buf, size_t cap,
                struct hp_str *value)
{
    struct hp_form_iter it;
    struct hp_str rn, rv;
    int rc;

    hp_form_iter_init(&it, input, flags, 0);
    while ((rc = hp_form_next_raw(&it, &rn, &rv)) > 0) {
        size_t vl;
        int err;

        if (!hp_pct_equal(rn, name, flags))
            continue;
        if ((err = hp_pct_decode(rv, buf, cap, flags, &vl)) != 0)
            return err;
        value->ptr = buf;
        value->len = vl;
        return 0;
    }
    return rc < 0 ? rc : -ENOENT;
}

const struct hp_form_pair *hp_form_find(const struct hp_form_pair *pairs, size_t n,
                                        struct hp_str name)
{
    for (size_t i = 0; i < n; i++)
        if (hp_str_eq(pairs[i].name, name))
            return &pairs[i];
    return NULL;
}
