/*
 * parser.c - memcached meta responses: a status line "RC [size] flags*\r\n",
 * for VA a data block of exactly size bytes and "\r\n". Strict: known
 * return codes only, single spaces, flags made of a letter and printable
 * token bytes, decimal numbers without overflow, and the data block's CRLF
 * checked. Never reads beyond len.
 */
#include "parser.h"

#include <errno.h>
#include <string.h>

void hp__mc_parser_init(struct hp__mc_parser *p, size_t max_value)
{
    p->max_value = max_value;
    p->scanned = 0;
    p->need = 0;
}

static bool is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Decimal digits [s, e) into *v, at most max. */
static bool parse_u64(const char *s, const char *e, uint64_t max, uint64_t *v)
{
    uint64_t n = 0;

    if (s == e || e - s > 20)
        return false;
    for (; s < e; s++) {
        unsigned d = (unsigned)(unsigned char)*s - '0';

        if (d > 9 || n > (max - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *v = n;
    return true;
}

/* One return flag [s, e): a letter and its token. */
static bool parse_flag(const char *s, const char *e, struct hp__mc_resp *out)
{
    uint64_t v;

    if (!is_letter(*s))
        return false;
    switch (*s) {
    case 'c':
        if (!parse_u64(s + 1, e, UINT64_MAX, &out->cas))
            return false;
        out->has_cas = true;
        return true;
    case 'f':
        if (!parse_u64(s + 1, e, UINT32_MAX, &v))
            return false;
        out->flags = (uint32_t)v; /* bounded by UINT32_MAX above */
        out->has_flags = true;
        return true;
    case 't':
        if (e - s == 3 && s[1] == '-' && s[2] == '1') {
            out->ttl = -1;
        } else {
            if (!parse_u64(s + 1, e, INT64_MAX, &v))
                return false;
            out->ttl = (int64_t)v; /* bounded by INT64_MAX above */
        }
        out->has_ttl = true;
        return true;
    case 'O':
        /* Our opaques are decimal 32-bit numbers: anything else is not ours. */
        if (!parse_u64(s + 1, e, UINT32_MAX, &v))
            return false;
        out->opaque = (uint32_t)v;
        out->has_opaque = true;
        return true;
    case 's':
    case 'l':
    case 'h':
        return parse_u64(s + 1, e, UINT64_MAX, &v);
    default:
        return true; /* b, k<key>, W, X, Z and future flags: tokens we ignore */
    }
}

/* The flags after the code (and size): " tok tok ..." up to the line end. */
static bool parse_flags(const char *s, const char *e, struct hp__mc_resp *out)
{
    while (s < e) {
        const char *t;

        if (*s != ' ' || s + 1 == e || s[1] == ' ')
            return false;
        s++;
        t = memchr(s, ' ', (size_t)(e - s));
        if (t == NULL)
            t = e;
        if (!parse_flag(s, t, out))
            return false;
        s = t;
    }
    return true;
}

static bool code_is(const char *s, size_t n, const char *code)
{
    size_t m = strlen(code);

    return n >= m && memcmp(s, code, m) == 0 && (n == m || s[m] == ' ');
}

ssize_t hp__mc_parse(struct hp__mc_parser *p, const char *buf, size_t len, struct hp__mc_resp *out)
{
    const char *nl, *end;
    size_t line, from;
    uint64_t size;

    if (p->need && len < p->need)
        return 0;
    /* Find the CRLF, resuming where the last call stopped. */
    from = p->scanned > 0 ? p->scanned - 1 : 0;
    nl = from < len ? memchr(buf + from, '\n', len - from) : NULL;
    if (nl == NULL) {
        if (len > HP__MC_MAX_LINE)
            return -EPROTO;
        for (size_t i = from; i < len; i++) {
            unsigned char c = (unsigned char)buf[i];

            if ((c < 0x20 && c != '\r') || c > 0x7e || (c == '\r' && i + 1 < len))
                return -EPROTO;
        }
        p->scanned = len;
        return 0;
    }
    line = (size_t)(nl - buf);
    if (line < 2 || buf[line - 1] != '\r' || line > HP__MC_MAX_LINE)
        return -EPROTO;
    end = buf + line - 1; /* the CR */
    for (const char *c = buf; c < end; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            return -EPROTO;
    }
    memset(out, 0, sizeof(*out));
    out->ttl = -2;
    line++; /* past the LF */
    if (code_is(buf, (size_t)(end - buf), "VA")) {
        const char *s = buf + 3, *t;

        if (end - buf < 4)
            return -EPROTO;
        t = memchr(s, ' ', (size_t)(end - s));
        if (t == NULL)
            t = end;
        if (!parse_u64(s, t, UINT64_MAX, &size))
            return -EPROTO;
        if (size > p->max_value)
            return -EMSGSIZE;
        if (!parse_flags(t, end, out))
            return -EPROTO;
        p->need = line + (size_t)size + 2; /* size <= max_value: fits */
        if (len < p->need)
            return 0;
        if (buf[line + size] != '\r' || buf[line + size + 1] != '\n')
            return -EPROTO;
        out->rc = HP__MC_VA;
        out->data = buf + line;
        out->data_len = (size_t)size;
        line = p->need;
    } else {
        static const struct {
            const char *code;
            enum hp__mc_rc rc;
        } codes[] = {
            {"HD", HP__MC_HD}, {"EN", HP__MC_EN}, {"NS", HP__MC_NS},
            {"EX", HP__MC_EX}, {"NF", HP__MC_NF}, {"MN", HP__MC_MN},
        };
        size_t n = (size_t)(end - buf), i;

        if (code_is(buf, n, "ERROR") || code_is(buf, n, "CLIENT_ERROR") ||
            code_is(buf, n, "SERVER_ERROR")) {
            out->rc = buf[0] == 'E'   ? HP__MC_ERROR
                      : buf[0] == 'C' ? HP__MC_CLIENT_ERROR
                                      : HP__MC_SERVER_ERROR;
            out->data = buf;
            out->data_len = n;
            goto done;
        }
        for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
            if (code_is(buf, n, codes[i].code))
                break;
        }
        if (i == sizeof(codes) / sizeof(codes[0]))
            return -EPROTO;
        out->rc = codes[i].rc;
        if (!parse_flags(buf + 2, end, out))
            return -EPROTO;
        if (out->rc == HP__MC_MN && n != 2)
            return -EPROTO;
    }
done:
    p->scanned = 0;
    p->need = 0;
    return (ssize_t)line;
}
