/*
 * compile.c - tokens to a flat program. Two passes over the token stream:
 * the standalone pass marks lines that hold only a standalone tag (or only
 * parent/block-definition tags) and drops their whitespace, remembering
 * the line's indentation on the tag; the second pass is a recursive descent
 * that emits ops, merges adjacent literal text into one pool run, splits
 * names into segments once, and checks nesting. Line starts are kept (as
 * TEXT flags or INDENT ops) so partials and blocks can be indented at
 * render time without recompiling.
 *
 * Block definitions ({{$b}} inside {{<parent}}) whose opening tag is
 * standalone are dedented here by the indentation of their first line; the
 * site that expands them adds its own indentation at render time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct cc {
    struct hp_mustache *t;
    const char *src;
    struct hp__tok *tok;
    size_t ntok, i;
    unsigned depth, max_nesting;
    const char *tname;
    struct hp_mustache_error *err;
    size_t opcap, poolcap, namecap, segcap, slotcap;
    uint32_t ded_pos, ded_len; /* dedent: this source prefix is removed at line starts */
    uint32_t nsegs;
    uint32_t merge_floor; /* text ops below this index end a construct: never extended */
};

static int grow(void **v, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*v, n * elem);
    if (!p)
        return -ENOMEM;
    *v = p;
    *cap = n;
    return 0;
}

static int cc_error(struct cc *c, int code, size_t pos, const char *fmt, ...) HP_PRINTF(4, 5);

static int cc_error(struct cc *c, int code, size_t pos, const char *fmt, ...)
{
    char what[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    hp__set_error(c->err, code, c->tname, c->src, pos, true, "%s", what);
    return code;
}

static int pool_add(struct cc *c, const char *p, size_t n, uint32_t *off)
{
    struct hp_mustache *t = c->t;

    if (t->poollen + n + HP__MU_SLACK > UINT32_MAX)
        return -EFBIG;
    if (grow((void **)&t->pool, &c->poolcap, t->poollen + n + HP__MU_SLACK, 1))
        return -ENOMEM;
    if (n)
        memcpy(t->pool + t->poollen, p, n);
    *off = (uint32_t)t->poollen;
    t->poollen += n;
    return 0;
}

static int emit(struct cc *c, uint8_t code, uint8_t flags, uint32_t pos, uint32_t *pc)
{
    struct hp_mustache *t = c->t;

    if (grow((void **)&t->ops, &c->opcap, (size_t)t->nops + 1, sizeof(*t->ops)))
        return -ENOMEM;
    memset(&t->ops[t->nops], 0, sizeof(t->ops[0]));
    t->ops[t->nops].code = code;
    t->ops[t->nops].flags = flags;
    t->ops[t->nops].pos = pos;
    *pc = t->nops++;
    return 0;
}

/* Split a dotted name into segments: "." is the implicit iterator. */
static int name_add(struct cc *c, const struct hp__tok *tok, uint32_t *idx)
{
    struct hp_mustache *t = c->t;
    const char *p = c->src + tok->npos;
    uint32_t len = tok->nlen, off, nseg = 0, seg0;
    int rc;

    if ((rc = pool_add(c, p, len, &off)) != 0)
        return rc;
    if (grow((void **)&t->names, &c->namecap, (size_t)t->nnames + 1, sizeof(*t->names)))
        return -ENOMEM;
    seg0 = c->nsegs;
    if (!(len == 1 && p[0] == '.')) {
        uint32_t s = 0;
        for (uint32_t k = 0; k <= len; k++) {
            if (k == len || p[k] == '.') {
                if (k == s)
                    return cc_error(c, -EINVAL, tok->pos, "bad name '%.*s': empty segment",
                                    (int)len, p);
                if (grow((void **)&t->segs, &c->segcap, (size_t)seg0 + nseg + 1, sizeof(*t->segs)))
                    return -ENOMEM;
                t->segs[seg0 + nseg].off = off + s;
                t->segs[seg0 + nseg].len = k - s;
                nseg++;
                s = k + 1;
            }
        }
    }
    c->nsegs += nseg;
    t->names[t->nnames] = (struct hp__name){off, len, seg0, nseg};
    *idx = t->nnames++;
    return 0;
}

static int slot_add(struct cc *c, const struct hp__tok *tok, uint32_t *idx)
{
    struct hp_mustache *t = c->t;
    const char *p = c->src + tok->npos;
    uint32_t off;
    int rc;

    for (uint32_t k = 0; k < t->nslots; k++) {
        if (t->slots[k].len == tok->nlen && memcmp(t->pool + t->slots[k].off, p, tok->nlen) == 0) {
            *idx = k;
            return 0;
        }
    }
    if ((rc = pool_add(c, p, tok->nlen, &off)) != 0)
        return rc;
    if (grow((void **)&t->slots, &c->slotcap, (size_t)t->nslots + 1, sizeof(*t->slots)))
        return -ENOMEM;
    t->slots[t->nslots] = (struct hp__slot){off, tok->nlen, NULL};
    *idx = t->nslots++;
    return 0;
}

/* ---- standalone pass ------------------------------------------------------ */

static bool standalone_kind(uint8_t k)
{
    return k != HP__T_TEXT && k != HP__T_VAR && k != HP__T_RAW;
}

enum { ST_OTHER, ST_PARENT, ST_DEF };

/* The open constructs, as far as the standalone pass needs them. */
struct nest {
    uint8_t *stack;
    size_t cap, depth;
};

/* Track a tag's nesting; true if it opens or closes a parent or a block
 * definition (the tags that may share a standalone line). */
static bool track(struct nest *ns, uint8_t kind)
{
    uint8_t top = ns->depth && ns->depth <= ns->cap ? ns->stack[ns->depth - 1] : ST_OTHER;

    switch (kind) {
    case HP__T_SECTION:
    case HP__T_INVERTED:
    case HP__T_PARENT:
    case HP__T_BLOCK: {
        uint8_t k = kind == HP__T_PARENT                      ? ST_PARENT
                    : kind == HP__T_BLOCK && top == ST_PARENT ? ST_DEF
                                                              : ST_OTHER;
        if (ns->depth < ns->cap)
            ns->stack[ns->depth] = k;
        ns->depth++;
        return k != ST_OTHER;
    }
    case HP__T_CLOSE:
        if (!ns->depth)
            return false;
        ns->depth--;
        return top != ST_OTHER;
    default:
        return false;
    }
}

/* Tokens i..j are a standalone line: drop its blanks, give its tags the indent. */
static void mark_standalone(struct cc *c, size_t i, size_t j)
{
    bool first_is_tag = c->tok[i].kind != HP__T_TEXT;
    uint32_t ipos = c->tok[i].pos, ilen = first_is_tag ? 0 : c->tok[i].len;

    for (size_t k = i; k <= j; k++) {
        struct hp__tok *tk = &c->tok[k];
        if (tk->kind == HP__T_TEXT) {
            tk->flags |= HP__TK_DROP;
        } else {
            tk->flags |= HP__TK_STANDALONE;
            tk->ipos = ipos;
            tk->ilen = ilen;
        }
    }
}

/*
 * Lines are the tokens up to a text ending with a newline. A line is
 * standalone if it has only blanks besides one tag that is not a variable,
 * or besides several such tags of which one opens or closes a parent or a
 * block definition ({{<parent}}{{$block}} on one line).
 */
static int standalone_pass(struct cc *c)
{
    struct nest ns = {malloc((size_t)c->max_nesting + 2), (size_t)c->max_nesting + 2, 0};
    size_t i = 0, n = c->ntok;

    if (!ns.stack)
        return -ENOMEM;
    while (i < n) {
        size_t j = i, ntags = 0;
        bool ok = true, parentish = false;

        while (j < n && !(c->tok[j].kind == HP__T_TEXT && (c->tok[j].flags & HP__TK_NL)))
            j++;
        if (j == n)
            j = n - 1;
        for (size_t k = i; k <= j; k++) {
            const struct hp__tok *tk = &c->tok[k];
            if (tk->kind == HP__T_TEXT) {
                ok = ok && (tk->flags & HP__TK_WS);
                continue;
            }
            ntags++;
            ok = ok && standalone_kind(tk->kind);
            parentish = track(&ns, tk->kind) || parentish;
        }
        const struct hp__tok *first = &c->tok[i];
        if (ok && ntags >= 1 && (ntags == 1 || parentish) && (first->flags & HP__TK_BOL)) {
            mark_standalone(c, i, j);
        } else if (first->kind == HP__T_TEXT && i + 1 <= j && (first->flags & HP__TK_WS) &&
                   !(first->flags & HP__TK_NL) && (first->flags & HP__TK_BOL) &&
                   c->tok[i + 1].kind != HP__T_TEXT) {
            c->tok[i + 1].flags |= HP__TK_LEADWS;
            c->tok[i + 1].ipos = first->pos;
            c->tok[i + 1].ilen = first->len;
        }
        i = j + 1;
    }
    free(ns.stack);
    return 0;
}

/* ---- emitting ------------------------------------------------------------- */

/* How many bytes of the dedent prefix start the source range [pos, pos+len). */
static uint32_t dedent_skip(const struct cc *c, uint32_t pos, uint32_t len)
{
    uint32_t k = 0;

    while (k < c->ded_len && k < len && c->src[pos + k] == c->src[c->ded_pos + k])
        k++;
    return k;
}

static int emit_text(struct cc *c, const struct hp__tok *tok)
{
    struct hp_mustache *t = c->t;
    uint32_t pos = tok->pos, len = tok->len, off, pc;
    bool bol = tok->flags & HP__TK_BOL;
    int rc;

    if (bol) {
        uint32_t k = dedent_skip(c, pos, len);
        pos += k;
        len -= k;
    }
    if (len == 0)
        return bol ? emit(c, HP__OP_INDENT, 0, tok->pos, &pc) : 0;
    /* Extend the previous run when it is the last thing in the pool. */
    if (t->nops && t->nops - 1 >= c->merge_floor && t->ops[t->nops - 1].code == HP__OP_TEXT &&
        t->ops[t->nops - 1].a + t->ops[t->nops - 1].b == t->poollen) {
        if ((rc = pool_add(c, c->src + pos, len, &off)) != 0)
            return rc;
        t->ops[t->nops - 1].b += len;
        return 0;
    }
    if ((rc = pool_add(c, c->src + pos, len, &off)) != 0)
        return rc;
    if ((rc = emit(c, HP__OP_TEXT, bol ? HP__F_BOL : 0, tok->pos, &pc)) != 0)
        return rc;
    t->ops[pc].a = off;
    t->ops[pc].b = len;
    return 0;
}

/* The indentation to record for a tag, dedented, into the pool: c/d of op pc. */
static int set_indent(struct cc *c, uint32_t pc, uint32_t ipos, uint32_t ilen, uint8_t flags)
{
    uint32_t k = dedent_skip(c, ipos, ilen), off;
    int rc;

    if (ilen - k == 0 && !(flags & HP__F_SITE_INLINE))
        return 0;
    if ((rc = pool_add(c, c->src + ipos + k, ilen - k, &off)) != 0)
        return rc;
    c->t->ops[pc].c = off;
    c->t->ops[pc].d = ilen - k;
    c->t->ops[pc].flags |= (uint8_t)(HP__F_INDENT | flags);
    return 0;
}

static bool same_name(const struct cc *c, const struct hp__tok *a, const struct hp__tok *b)
{
    return a->nlen == b->nlen && (a->flags & HP__TK_DYN) == (b->flags & HP__TK_DYN) &&
           memcmp(c->src + a->npos, c->src + b->npos, a->nlen) == 0;
}

static const char *sigil(uint8_t kind)
{
    switch (kind) {
    case HP__T_SECTION:
        return "#";
    case HP__T_INVERTED:
        return "^";
    case HP__T_PARENT:
        return "<";
    case HP__T_BLOCK:
        return "$";
    default:
        return "";
    }
}

/* The token at c->i is a close: does it close @p open? */
static int check_close(struct cc *c, size_t open)
{
    const struct hp__tok *cl = &c->tok[c->i];

    if (open == SIZE_MAX)
        return cc_error(c, -EINVAL, cl->pos, "unexpected close tag '%.*s' (nothing is open)",
                        (int)cl->nlen, c->src + cl->npos);
    const struct hp__tok *op = &c->tok[open];
    if (!same_name(c, op, cl)) {
        unsigned line, col;
        hp__linecol(c->src, op->pos, &line, &col);
        return cc_error(c, -EINVAL, cl->pos,
                        "mismatched close tag '%.*s': expected {{/%s%.*s}} for the '%s%.*s' "
                        "opened at %u:%u",
                        (int)cl->nlen, c->src + cl->npos, op->flags & HP__TK_DYN ? "*" : "",
                        (int)op->nlen, c->src + op->npos, sigil(op->kind), (int)op->nlen,
                        c->src + op->npos, line, col);
    }
    return 0;
}

static int unclosed(struct cc *c, size_t open)
{
    const struct hp__tok *op = &c->tok[open];

    return cc_error(c, -EINVAL, op->pos, "unclosed %s '%.*s' (expected {{/%s%.*s}})",
                    op->kind == HP__T_PARENT  ? "parent"
                    : op->kind == HP__T_BLOCK ? "block"
                                              : "section",
                    (int)op->nlen, c->src + op->npos, op->flags & HP__TK_DYN ? "*" : "",
                    (int)op->nlen, c->src + op->npos);
}

static int enter(struct cc *c, const struct hp__tok *tok)
{
    if (++c->depth > c->max_nesting)
        return cc_error(c, -ELOOP, tok->pos, "nesting deeper than the limit of %u", c->max_nesting);
    return 0;
}

static int seq(struct cc *c, size_t open);

static size_t next_kept(const struct cc *c, size_t k)
{
    while (k < c->ntok && (c->tok[k].flags & HP__TK_DROP))
        k++;
    return k;
}

/* Blanks starting the source range of token k. */
static uint32_t lead_blanks(const struct cc *c, size_t k)
{
    uint32_t n = 0;

    while (n < c->tok[k].len &&
           (c->src[c->tok[k].pos + n] == ' ' || c->src[c->tok[k].pos + n] == '\t'))
        n++;
    return n;
}

/* A body of [TEXT] {{.}} [TEXT] with no line start in it: the renderer may
 * loop over a list of ints without going through the VM. */
static bool fusable(const struct hp__op *ops, uint32_t k, uint32_t end)
{
    if (k < end && ops[k].code == HP__OP_TEXT && !(ops[k].flags & HP__F_BOL))
        k++;
    if (k >= end || ops[k].code != HP__OP_VAR_DOT)
        return false;
    k++;
    if (k < end && ops[k].code == HP__OP_TEXT && !(ops[k].flags & HP__F_BOL))
        k++;
    return k == end;
}

static int section(struct cc *c, size_t idx)
{
    const struct hp__tok *tok = &c->tok[idx];
    uint32_t pc, end, name, off;
    int rc;

    if ((rc = name_add(c, tok, &name)) != 0 || (rc = enter(c, tok)) != 0)
        return rc;
    if (tok->kind == HP__T_INVERTED) {
        if ((rc = emit(c, HP__OP_INVERTED, 0, tok->pos, &pc)) != 0)
            return rc;
        c->t->ops[pc].a = name;
        if ((rc = seq(c, idx)) != 0)
            return rc;
        c->t->ops[pc].b = c->t->nops;
        c->merge_floor = c->t->nops;
        c->depth--;
        return 0;
    }
    if ((rc = emit(c, HP__OP_SECTION, 0, tok->pos, &pc)) != 0)
        return rc;
    c->t->ops[pc].a = name;
    c->t->ops[pc].c = tok->pos + tok->len;
    if ((rc = pool_add(c, tok->otag, tok->olen, &off)) != 0)
        return rc;
    c->t->ops[pc].e = off;
    if ((rc = pool_add(c, tok->ctag, tok->clen, &off)) != 0)
        return rc;
    c->t->ops[pc].f = (uint32_t)tok->olen << 8 | tok->clen;
    if ((rc = seq(c, idx)) != 0)
        return rc;
    c->t->ops[pc].d = c->tok[c->i - 1].pos - c->t->ops[pc].c;
    if ((rc = emit(c, HP__OP_END, 0, c->tok[c->i - 1].pos, &end)) != 0)
        return rc;
    c->t->ops[end].a = pc + 1;
    c->t->ops[pc].b = end;
    if (fusable(c->t->ops, pc + 1, end))
        c->t->ops[pc].flags |= HP__F_FUSED;
    c->depth--;
    return 0;
}

static int named(struct cc *c, const struct hp__tok *tok, uint32_t pc)
{
    uint32_t off;
    int rc = pool_add(c, c->src + tok->npos, tok->nlen, &off);

    c->t->ops[pc].a = off;
    c->t->ops[pc].e = tok->nlen;
    return rc;
}

/* A block site: its default content is rendered unless a caller overrides it. */
static int block_site(struct cc *c, size_t idx)
{
    const struct hp__tok *tok = &c->tok[idx];
    uint32_t pc;
    int rc;

    if ((rc = enter(c, tok)) != 0 || (rc = emit(c, HP__OP_BLOCK, 0, tok->pos, &pc)) != 0 ||
        (rc = named(c, tok, pc)) != 0)
        return rc;
    if (tok->flags & HP__TK_STANDALONE) {
        size_t k = next_kept(c, idx + 1);
        if (k < c->ntok && c->tok[k].kind == HP__T_TEXT && (c->tok[k].flags & HP__TK_BOL))
            rc = set_indent(c, pc, c->tok[k].pos, lead_blanks(c, k), 0);
        else if (k < c->ntok && c->tok[k].kind == HP__T_CLOSE)
            rc = set_indent(c, pc, tok->ipos, tok->ilen, 0);
    } else if (tok->flags & HP__TK_LEADWS) {
        rc = set_indent(c, pc, tok->ipos, tok->ilen, HP__F_SITE_INLINE);
    }
    if (rc || (rc = seq(c, idx)) != 0)
        return rc;
    c->t->ops[pc].b = c->t->nops;
    c->merge_floor = c->t->nops;
    c->depth--;
    return 0;
}

/* A block definition inside a parent: dedented when its opening tag is standalone. */
static int block_def(struct cc *c, size_t idx)
{
    const struct hp__tok *tok = &c->tok[idx];
    uint32_t pc, ded_pos = c->ded_pos, ded_len = c->ded_len;
    int rc;

    if ((rc = enter(c, tok)) != 0 || (rc = emit(c, HP__OP_BLOCKDEF, 0, tok->pos, &pc)) != 0 ||
        (rc = named(c, tok, pc)) != 0)
        return rc;
    if (tok->flags & HP__TK_STANDALONE) {
        size_t k = next_kept(c, idx + 1);
        c->ded_len = 0;
        if (k < c->ntok && c->tok[k].kind == HP__T_TEXT && (c->tok[k].flags & HP__TK_BOL)) {
            c->ded_pos = c->tok[k].pos;
            c->ded_len = lead_blanks(c, k);
        }
    }
    rc = seq(c, idx);
    c->ded_pos = ded_pos;
    c->ded_len = ded_len;
    if (rc)
        return rc;
    c->t->ops[pc].b = c->t->nops;
    c->merge_floor = c->t->nops;
    c->depth--;
    return 0;
}

/* Skip a construct inside a parent (only block definitions count there). */
static int skip(struct cc *c, size_t open)
{
    int rc;

    if ((rc = enter(c, &c->tok[open])) != 0)
        return rc;
    for (;;) {
        if (c->i >= c->ntok)
            return unclosed(c, open);
        size_t k = c->i++;
        switch (c->tok[k].kind) {
        case HP__T_CLOSE:
            c->i = k;
            if ((rc = check_close(c, open)) != 0)
                return rc;
            c->i = k + 1;
            c->depth--;
            return 0;
        case HP__T_SECTION:
        case HP__T_INVERTED:
        case HP__T_PARENT:
        case HP__T_BLOCK:
            if ((rc = skip(c, k)) != 0)
                return rc;
            break;
        default:
            break;
        }
    }
}

static int parent(struct cc *c, size_t idx)
{
    const struct hp__tok *tok = &c->tok[idx];
    uint32_t pc, ref;
    int rc;

    if ((rc = enter(c, tok)) != 0)
        return rc;
    rc = (tok->flags & HP__TK_DYN) ? name_add(c, tok, &ref) : slot_add(c, tok, &ref);
    if (rc || (rc = emit(c, HP__OP_PARENT, (tok->flags & HP__TK_DYN) ? HP__F_DYN : 0, tok->pos,
                         &pc)) != 0)
        return rc;
    c->t->ops[pc].a = ref;
    if ((tok->flags & HP__TK_STANDALONE) && (rc = set_indent(c, pc, tok->ipos, tok->ilen, 0)))
        return rc;
    for (;;) {
        if (c->i >= c->ntok)
            return unclosed(c, idx);
        size_t k = c->i++;
        switch (c->tok[k].kind) {
        case HP__T_CLOSE:
            c->i = k;
            if ((rc = check_close(c, idx)) != 0)
                return rc;
            c->i = k + 1;
            c->t->ops[pc].b = c->t->nops;
            c->merge_floor = c->t->nops;
            c->depth--;
            return 0;
        case HP__T_BLOCK:
            rc = block_def(c, k);
            break;
        case HP__T_SECTION:
        case HP__T_INVERTED:
        case HP__T_PARENT:
            rc = skip(c, k);
            break;
        default:
            break;
        }
        if (rc)
            return rc;
    }
}

static int partial(struct cc *c, const struct hp__tok *tok)
{
    uint32_t pc, ref;
    int rc = (tok->flags & HP__TK_DYN) ? name_add(c, tok, &ref) : slot_add(c, tok, &ref);

    if (rc || (rc = emit(c, HP__OP_PARTIAL, (tok->flags & HP__TK_DYN) ? HP__F_DYN : 0, tok->pos,
                         &pc)) != 0)
        return rc;
    c->t->ops[pc].a = ref;
    if (tok->flags & HP__TK_STANDALONE)
        rc = set_indent(c, pc, tok->ipos, tok->ilen, 0);
    return rc;
}

/* Tokens until the close of @p open (consumed) or, at top level, the end. */
static int seq(struct cc *c, size_t open)
{
    int rc = 0;

    while (c->i < c->ntok) {
        size_t k = c->i++;
        const struct hp__tok *tok = &c->tok[k];
        uint32_t pc;

        if (tok->flags & HP__TK_DROP)
            continue;
        if (tok->kind == HP__T_TEXT) {
            if ((rc = emit_text(c, tok)) != 0)
                return rc;
            continue;
        }
        if ((tok->flags & HP__TK_BOL) && !(tok->flags & HP__TK_STANDALONE) &&
            (rc = emit(c, HP__OP_INDENT, 0, tok->pos, &pc)) != 0)
            return rc;
        switch (tok->kind) {
        case HP__T_VAR:
        case HP__T_RAW: {
            uint32_t name;
            if ((rc = name_add(c, tok, &name)) != 0)
                return rc;
            if ((rc = emit(c, c->t->names[name].nseg ? HP__OP_VAR : HP__OP_VAR_DOT,
                           tok->kind == HP__T_VAR ? HP__F_ESCAPE : 0, tok->pos, &pc)) != 0)
                return rc;
            c->t->ops[pc].a = name;
            break;
        }
        case HP__T_SECTION:
        case HP__T_INVERTED:
            rc = section(c, k);
            break;
        case HP__T_CLOSE:
            c->i = k;
            if ((rc = check_close(c, open)) != 0)
                return rc;
            c->i = k + 1;
            return 0;
        case HP__T_PARTIAL:
            rc = partial(c, tok);
            break;
        case HP__T_PARENT:
            rc = parent(c, k);
            break;
        case HP__T_BLOCK:
            rc = block_site(c, k);
            break;
        default: /* comments and delimiters leave nothing behind */
            break;
        }
        if (rc)
            return rc;
    }
    return open == SIZE_MAX ? 0 : unclosed(c, open);
}

void hp__mustache_clear(struct hp_mustache *t)
{
    free(t->name);
    free(t->src);
    free(t->ops);
    free(t->pool);
    free(t->names);
    free(t->segs);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

int hp__compile(struct hp_mustache **out, const char *name, const char *src, size_t len,
                const char *otag, size_t olen, const char *ctag, size_t clen,
                const struct hp_mustache_opts *opts, struct hp_mustache_error *err)
{
    struct hp_mustache_opts o = opts ? *opts : (struct hp_mustache_opts){0};
    struct hp__toks toks = {0};
    struct cc c = {0};
    struct hp_mustache *t;
    uint32_t off;
    int rc;

    *out = NULL;
    if (!o.max_nesting)
        o.max_nesting = HP__MU_DEFAULT_NESTING;
    if (o.max_nesting > HP__MU_MAX_NESTING)
        o.max_nesting = HP__MU_MAX_NESTING; /* the compiler recurses once per level */
    if (!o.max_delim)
        o.max_delim = HP__MU_DEFAULT_DELIM;
    if (o.max_delim > 255)
        o.max_delim = 255;
    if (!o.max_source)
        o.max_source = HP__MU_DEFAULT_SOURCE;
    if (len > o.max_source || len >= UINT32_MAX / 2) {
        hp__set_error(err, -EFBIG, name, NULL, 0, false,
                      "template of %zu bytes is over the limit of %zu", len, o.max_source);
        return -EFBIG;
    }
    if (!(t = calloc(1, sizeof(*t))))
        return -ENOMEM;
    t->name = strdup(name ? name : "");
    t->src = malloc(len + 1);
    if (!t->name || !t->src) {
        rc = -ENOMEM;
        goto fail;
    }
    if (len)
        memcpy(t->src, src, len);
    t->src[len] = '\0';
    t->srclen = len;
    c.t = t;
    c.src = t->src;
    c.tname = t->name;
    c.err = err;
    c.max_nesting = o.max_nesting;
    rc = hp__lex(t->src, len, otag, olen, ctag, clen, o.max_delim, &toks, t->name, err);
    if (rc)
        goto fail;
    c.tok = toks.v;
    c.ntok = toks.n;
    if ((rc = standalone_pass(&c)) != 0 || (rc = seq(&c, SIZE_MAX)) != 0 ||
        (rc = pool_add(&c, "", 0, &off)) != 0)
        goto fail;
    memset(t->pool + t->poollen, 0, HP__MU_SLACK);
    free(toks.v);
    *out = t;
    return 0;
fail:
    if (rc == -ENOMEM)
        hp__set_error(err, rc, name, NULL, 0, false, "out of memory");
    free(toks.v);
    hp__mustache_clear(t);
    free(t);
    return rc;
}

int hp_mustache_compile(struct hp_mustache **out, const char *name, const char *src, size_t len,
                        const struct hp_mustache_opts *opts, struct hp_mustache_error *err)
{
    if (!out || (!src && len))
        return -EINVAL;
    return hp__compile(out, name, src ? src : "", len, "{{", 2, "}}", 2, opts, err);
}

void hp_mustache_free(struct hp_mustache *t)
{
    if (!t || t->owned_by_set)
        return;
    hp__mustache_clear(t);
    free(t);
}

const char *hp_mustache_name(const struct hp_mustache *t)
{
    return t->name;
}
