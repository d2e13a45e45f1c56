/*
 * request.c - meta requests: "mg <key> <flags>\r\n" and friends, with the
 * key sent as it is or base64-encoded (b flag), and an opaque on each.
 */
#include "request.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY     250 /* memcached's KEY_MAX_LENGTH, for the key token as sent */
#define MAX_RAW_B64 186 /* the longest binary key whose base64 form fits in MAX_KEY */

static bool plain_ok(struct hp_str key)
{
    if (key.len == 0 || key.len > MAX_KEY)
        return false;
    for (size_t i = 0; i < key.len; i++) {
        unsigned char c = (unsigned char)key.ptr[i];

        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

int hp_mc_key_check(struct hp_str key)
{
    if (key.len == 0 || (key.ptr == NULL))
        return -EINVAL;
    if (plain_ok(key))
        return 0;
    return key.len <= MAX_RAW_B64 ? 1 : -EINVAL;
}

static size_t base64(char *out, const unsigned char *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;

    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];

        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0u);

        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

static int reserve(struct hp__mc_buf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->cap - b->len >= n)
        return 0;
    cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    p = realloc(b->p, cap);
    if (p == NULL)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

void hp__mc_buf_free(struct hp__mc_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Append " X<decimal>". */
static char *put_num(char *o, char flag, uint64_t v)
{
    char tmp[20];
    int n = 0;

    *o++ = ' ';
    if (flag)
        *o++ = flag;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    while (n)
        *o++ = tmp[--n];
    return o;
}

static char *put_flag(char *o, char flag)
{
    *o++ = ' ';
    *o++ = flag;
    return o;
}

int hp__mc_format(struct hp__mc_buf *b, enum hp__mc_cmd cmd, struct hp_str key,
                  const struct hp_mc_req *o, uint32_t opaque, const void *value, size_t vlen)
{
    static const struct hp_mc_req none;
    static const char names[][3] = {"mg", "ms", "md", "ma", "mn"};
    static const char modes[] = {'S', 'E', 'R', 'A', 'P'};
    bool b64;
    char *w;
    int kc, err;

    if (o == NULL)
        o = &none;
    if (cmd == HP__MC_CMD_MN) {
        if ((err = reserve(b, 4)) != 0)
            return err;
        memcpy(b->p + b->len, "mn\r\n", 4);
        b->len += 4;
        return 0;
    }
    kc = hp_mc_key_check(key);
    if (kc < 0 || (unsigned)o->mode > HP_MC_PREPEND)
        return -EINVAL;
    b64 = kc == 1 || (o->flags & HP_MC_BASE64);
    if (b64 && key.len > MAX_RAW_B64)
        return -EINVAL;
    /* cmd + key (base64 at most 4/3) + up to ~12 flags of <= 22 bytes + value + CRLFs */
    if ((err = reserve(b, 3 + MAX_KEY + 2 + 12 * 22 + vlen + 4)) != 0)
        return err;
    w = b->p + b->len;
    memcpy(w, names[cmd], 2);
    w += 2;
    *w++ = ' ';
    if (b64)
        w += base64(w, (const unsigned char *)key.ptr, key.len);
    else {
        memcpy(w, key.ptr, key.len);
        w += key.len;
    }
    if (cmd == HP__MC_CMD_MS)
        w = put_num(w, 0, vlen);
    if (b64)
        w = put_flag(w, 'b');
    switch (cmd) {
    case HP__MC_CMD_MG:
        if (!(o->flags & HP_MC_NO_VALUE))
            w = put_flag(w, 'v');
        w = put_flag(w, 'f');
        if (o->flags & HP_MC_RETURN_TTL)
            w = put_flag(w, 't');
        if (o->flags & HP_MC_SET_TTL)
            w = put_num(w, 'T', o->ttl);
        break;
    case HP__MC_CMD_MS:
        if (o->ttl)
            w = put_num(w, 'T', o->ttl);
        if (o->client_flags)
            w = put_num(w, 'F', o->client_flags);
        if (o->mode != HP_MC_SET) {
            w = put_flag(w, 'M');
            *w++ = modes[o->mode];
        }
        break;
    case HP__MC_CMD_MD:
        break;
    case HP__MC_CMD_MA:
        w = put_flag(w, 'v');
        if (o->delta > 1)
            w = put_num(w, 'D', o->delta);
        if (o->decrement) {
            w = put_flag(w, 'M');
            *w++ = 'D';
        }
        if (o->autovivify) {
            w = put_num(w, 'N', o->ttl);
            w = put_num(w, 'J', o->initial);
        } else if (o->flags & HP_MC_SET_TTL) {
            w = put_num(w, 'T', o->ttl);
        }
        if (o->flags & HP_MC_RETURN_TTL)
            w = put_flag(w, 't');
        break;
    case HP__MC_CMD_MN:
        break;
    }
    if (o->cas && cmd != HP__MC_CMD_MG)
        w = put_num(w, 'C', o->cas);
    if (o->flags & HP_MC_RETURN_CAS)
        w = put_flag(w, 'c');
    if (o->flags & HP_MC_QUIET)
        w = put_flag(w, 'q');
    w = put_num(w, 'O', opaque);
    *w++ = '\r';
    *w++ = '\n';
    if (cmd == HP__MC_CMD_MS) {
        if (vlen)
            memcpy(w, value, vlen);
        w += vlen;
        *w++ = '\r';
        *w++ = '\n';
    }
    b->len = (size_t)(w - b->p);
    return 0;
}
