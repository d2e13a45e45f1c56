/*
 * lexer.c - template source to tokens. Text is split after every newline
 * (so a line is a run of tokens ending with a newline text token), tags are
 * classified by their sigil with the name trimmed, and set-delimiter tags
 * take effect here, so the compiler never sees delimiters. Every token
 * keeps its source offset for error messages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void hp__linecol(const char *src, size_t pos, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;

    for (size_t i = 0; i < pos; i++) {
        if (src[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

void hp__set_error(struct hp_mustache_error *err, int code, const char *tname, const char *src,
                   size_t pos, bool has_pos, const char *fmt, ...)
{
    char what[200];
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    err->code = code;
    snprintf(err->name, sizeof(err->name), "%s", tname ? tname : "");
    err->line = err->col = 0;
    if (has_pos && src) {
        hp__linecol(src, pos, &err->line, &err->col);
        snprintf(err->message, sizeof(err->message), "%s:%u:%u: %s",
                 tname && *tname ? tname : "<template>", err->line, err->col, what);
    } else {
        snprintf(err->message, sizeof(err->message), "%s: %s",
                 tname && *tname ? tname : "<template>", what);
    }
}

static int push(struct hp__toks *t, const struct hp__tok *tok)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct hp__tok *v = realloc(t->v, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = *tok;
    return 0;
}

static const char *find(const char *p, const char *end, const char *s, size_t n)
{
    while ((size_t)(end - p) >= n) {
        const char *q = memchr(p, s[0], (size_t)(end - p) - n + 1);

        if (!q)
            return NULL;
        if (memcmp(q, s, n) == 0)
            return q;
        p = q + 1;
    }
    return NULL;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Emit the text [p, end) as tokens split after each newline. */
static int lex_text(const char *src, const char *p, const char *end, struct hp__toks *out)
{
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl + 1 : end;
        struct hp__tok tok = {.kind = HP__T_TEXT};
        bool ws = true;

        tok.pos = (uint32_t)(p - src);
        tok.len = (uint32_t)(e - p);
        if (p == src || p[-1] == '\n')
            tok.flags |= HP__TK_BOL;
        if (nl)
            tok.flags |= HP__TK_NL;
        for (const char *q = p; q < (nl ? nl : e); q++) {
            /* A \r counts as blank only as part of a final \r\n. */
            if (!(*q == ' ' || *q == '\t' || (*q == '\r' && nl && q + 1 == nl))) {
                ws = false;
                break;
            }
        }
        if (ws)
            tok.flags |= HP__TK_WS;
        int rc = push(out, &tok);
        if (rc)
            return rc;
        p = e;
    }
    return 0;
}

struct lexer {
    const char *src, *end;
    const char *otag, *ctag;
    size_t olen, clen;
    unsigned max_delim;
    const char *tname;
    struct hp_mustache_error *err;
};

static int lex_error(struct lexer *lx, const char *at, const char *fmt, ...) HP_PRINTF(3, 4);

static int lex_error(struct lexer *lx, const char *at, const char *fmt, ...)
{
    char what[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    hp__set_error(lx->err, -EINVAL, lx->tname, lx->src, (size_t)(at - lx->src), true, "%s", what);
    return -EINVAL;
}

/* {{=<% %>=}}: inner is the text between the two '='. */
static int set_delims(struct lexer *lx, const char *tag, const char *in, const char *inend)
{
    const char *a, *ae, *b, *be;

    a = in;
    while (a < inend && is_blank(*a))
        a++;
    ae = a;
    while (ae < inend && !is_blank(*ae))
        ae++;
    b = ae;
    while (b < inend && is_blank(*b))
        b++;
    be = b;
    while (be < inend && !is_blank(*be))
        be++;
    for (const char *q = be; q < inend; q++) {
        if (!is_blank(*q))
            return lex_error(lx, tag, "bad delimiter tag: expected two delimiters");
    }
    if (a == ae || b == be)
        return lex_error(lx, tag, "bad delimiter tag: expected two delimiters");
    if ((size_t)(ae - a) > lx->max_delim || (size_t)(be - b) > lx->max_delim)
        return lex_error(lx, tag, "delimiter longer than the limit");
    for (const char *q = a; q < be; q++) {
        if (*q == '=')
            return lex_error(lx, tag, "bad delimiter tag: '=' inside a delimiter");
    }
    lx->otag = a;
    lx->olen = (size_t)(ae - a);
    lx->ctag = b;
    lx->clen = (size_t)(be - b);
    return 0;
}

/* Trim blanks around [*p, *e). */
static void trim(const char **p, const char **e)
{
    while (*p < *e && is_blank(**p))
        (*p)++;
    while (*e > *p && is_blank((*e)[-1]))
        (*e)--;
}

static int lex_name(struct lexer *lx, struct hp__tok *tok, const char *tag, const char *p,
                    const char *e)
{
    trim(&p, &e);
    if ((tok->kind == HP__T_PARTIAL || tok->kind == HP__T_PARENT) && p < e && *p == '*') {
        tok->flags |= HP__TK_DYN;
        p++;
        trim(&p, &e);
    }
    if (p == e)
        return lex_error(lx, tag, "empty tag: expected a name");
    for (const char *q = p; q < e; q++) {
        if (is_blank(*q))
            return lex_error(lx, tag, "unexpected blank inside the name '%.*s'", (int)(e - p), p);
    }
    tok->npos = (uint32_t)(p - lx->src);
    tok->nlen = (uint32_t)(e - p);
    return 0;
}

/* {{{name}}} ends with "}" + ctag, {{=a b=}} with "=" + ctag. */
static int lex_braced(struct lexer *lx, struct hp__tok *tok, const char *tag, const char *p,
                      const char **next, struct hp__toks *out)
{
    char expect[260];
    const char *close;
    int rc;

    expect[0] = *p == '{' ? '}' : '=';
    memcpy(expect + 1, lx->ctag, lx->clen);
    expect[lx->clen + 1] = '\0';
    close = find(p + 1, lx->end, expect, lx->clen + 1);
    if (!close)
        return lex_error(lx, tag, "unclosed tag: expected '%s'", expect);
    *next = close + lx->clen + 1;
    tok->len = (uint32_t)(*next - tag);
    if (*p == '=') {
        tok->kind = HP__T_DELIM;
        rc = set_delims(lx, tag, p + 1, close);
        return rc ? rc : push(out, tok);
    }
    tok->kind = HP__T_RAW;
    rc = lex_name(lx, tok, tag, p + 1, close);
    return rc ? rc : push(out, tok);
}

static int lex_tag(struct lexer *lx, const char *tag, const char **next, struct hp__toks *out)
{
    const char *p = tag + lx->olen, *close;
    struct hp__tok tok = {.kind = HP__T_VAR};
    char expect[260];
    int rc;

    tok.otag = lx->otag;
    tok.ctag = lx->ctag;
    tok.olen = (uint8_t)lx->olen;
    tok.clen = (uint8_t)lx->clen;
    tok.pos = (uint32_t)(tag - lx->src);
    if (tag == lx->src || tag[-1] == '\n')
        tok.flags |= HP__TK_BOL;
    snprintf(expect, sizeof(expect), "%.*s", (int)lx->clen, lx->ctag);
    if (p < lx->end && (*p == '{' || *p == '='))
        return lex_braced(lx, &tok, tag, p, next, out);
    close = find(p, lx->end, lx->ctag, lx->clen);
    if (!close)
        return lex_error(lx, tag, "unclosed tag: expected '%s'", expect);
    *next = close + lx->clen;
    tok.len = (uint32_t)(*next - tag);
    switch (p < close ? *p : 0) {
    case '!':
        tok.kind = HP__T_COMMENT;
        return push(out, &tok);
    case '&':
        tok.kind = HP__T_RAW;
        p++;
        break;
    case '#':
        tok.kind = HP__T_SECTION;
        p++;
        break;
    case '^':
        tok.kind = HP__T_INVERTED;
        p++;
        break;
    case '/':
        tok.kind = HP__T_CLOSE;
        p++;
        break;
    case '>':
        tok.kind = HP__T_PARTIAL;
        p++;
        break;
    case '<':
        tok.kind = HP__T_PARENT;
        p++;
        break;
    case '$':
        tok.kind = HP__T_BLOCK;
        p++;
        break;
    default:
        break;
    }
    rc = lex_name(lx, &tok, tag, p, close);
    return rc ? rc : push(out, &tok);
}

int hp__lex(const char *src, size_t len, const char *otag, size_t olen, const char *ctag,
            size_t clen, unsigned max_delim, struct hp__toks *out, const char *tname,
            struct hp_mustache_error *err)
{
    struct lexer lx = {src, src + len, otag, ctag, olen, clen, max_delim, tname, err};
    const char *p = src;
    int rc;

    while (p < lx.end) {
        const char *tag = find(p, lx.end, lx.otag, lx.olen);
        const char *next = NULL;

        rc = lex_text(src, p, tag ? tag : lx.end, out);
        if (rc || !tag)
            return rc;
        rc = lex_tag(&lx, tag, &next, out);
        if (rc)
            return rc;
        p = next;
    }
    return 0;
}
