/*
 * render.c - runs a compiled program against data. A small VM: sections
 * push a context entry that END advances (a list loops without recursion),
 * partials, parents and block overrides recurse into another program with
 * bounded depth. All render state lives on the caller's stack: a template
 * is only read, so any number of threads may render it at once.
 *
 * Output goes through struct out: a window [p, end) with HP__MU_SLACK
 * writable bytes past end, so short literals are moved with fixed-size
 * copies; the slow path grows the caller's buffer or flushes to a sink.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SINK_CHUNK       4096
#define MAX_PARTIALS_CAP 256
#define ESCAPE_PIECE     512

struct out {
    char *p, *end; /* write here; end honours the output limit */
    char *cap_end; /* the real room (minus the slack) */
    char *base;    /* start of the buffer or chunk */
    struct hp_mustache_buf *buf;
    hp_mustache_sink_fn *sink;
    void *ud;
    size_t start;   /* buffer: len at the start; sink: 0 */
    size_t flushed; /* sink: bytes handed over */
    size_t limit;
};

struct ent {
    const struct hp_mustache_type *t;
    const char *p;
    size_t left, stride;
};

struct ovr {
    const struct hp_mustache *t;
    uint32_t first, end;
    const struct ovr *up;
};

struct ind {
    const char *p;
    size_t len;
    const struct hp_mustache *skip_t; /* the line starting here is not indented */
    uint32_t skip_pc;
};

/*
 * Which field a one-segment name found in a struct type at the top of the
 * context, remembered for the rest of one render (a row loop looks the same
 * names up in the same type every time). Direct-mapped by name index; the
 * template is part of the key because partials have names of their own.
 */
#define FIELD_CACHE 8

struct field_hit {
    const struct hp_mustache *tm;
    const struct hp_mustache_type *ty;
    const struct hp_mustache_field *f;
    uint32_t name;
};

struct rs {
    struct out o;
    unsigned top, max_depth, nind, npart, max_partials;
    uint64_t steps; /* loop iterations and calls left */
    bool strict;
    struct hp_mustache_error *err;
    const struct ovr *ovr;
    struct ind ind[MAX_PARTIALS_CAP];
    struct field_hit hits[FIELD_CACHE];
    struct ent ctx[HP__MU_MAX_DEPTH];
};

/* ---- output --------------------------------------------------------------- */

static size_t out_used(const struct out *o)
{
    return o->flushed + (size_t)(o->p - o->base) - o->start;
}

static void out_window(struct out *o)
{
    if (!o->p) {
        o->end = NULL;
        return;
    }
    size_t lim_room = o->limit - (out_used(o) < o->limit ? out_used(o) : o->limit);

    o->end = (size_t)(o->cap_end - o->p) > lim_room ? o->p + lim_room : o->cap_end;
}

static int flush(struct out *o)
{
    size_t n = (size_t)(o->p - o->base);
    int rc;

    if (!n)
        return 0;
    if (o->flushed + n > o->limit)
        return -EMSGSIZE;
    rc = o->sink(o->ud, o->base, n);
    if (rc)
        return rc < 0 ? rc : -EIO;
    o->flushed += n;
    o->p = o->base;
    out_window(o);
    return 0;
}

/* Make room for n bytes (n <= SINK_CHUNK in sink mode), ignoring the limit. */
static int reserve(struct out *o, size_t n)
{
    if ((size_t)(o->cap_end - o->p) >= n)
        return 0;
    if (o->sink) {
        int rc = flush(o);
        return rc;
    }
    struct hp_mustache_buf *b = o->buf;
    size_t len = o->p ? (size_t)(o->p - b->data) : 0, cap = b->cap ? b->cap * 2 : 256;
    while (cap < len + n + HP__MU_SLACK)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
        return -ENOMEM;
    b->data = o->base = d;
    b->cap = cap;
    o->p = d + len;
    o->cap_end = d + cap - HP__MU_SLACK;
    out_window(o);
    return 0;
}

static int check_limit(struct out *o)
{
    return out_used(o) > o->limit ? -EMSGSIZE : 0;
}

static int write_slow(struct out *o, const char *p, size_t n)
{
    int rc;

    if (out_used(o) + n > o->limit)
        return -EMSGSIZE;
    while (n) {
        size_t k = n;
        if (o->sink && k > SINK_CHUNK)
            k = SINK_CHUNK;
        if ((rc = reserve(o, k)) != 0)
            return rc;
        memcpy(o->p, p, k);
        o->p += k;
        p += k;
        n -= k;
    }
    out_window(o);
    return 0;
}

/* Bytes that may be over-read by up to 32 (pool text, local buffers). */
static inline int out_text(struct out *o, const char *p, size_t n)
{
    if (__builtin_expect(n > (size_t)(o->end - o->p), 0))
        return write_slow(o, p, n);
    if (n <= 16) {
        memcpy(o->p, p, 16);
    } else if (n <= 32) {
        memcpy(o->p, p, 32);
    } else {
        memcpy(o->p, p, n);
    }
    o->p += n;
    return 0;
}

/* Bytes from the application: exactly n readable. */
static inline int out_write(struct out *o, const char *p, size_t n)
{
    if (__builtin_expect(n > (size_t)(o->end - o->p), 0))
        return write_slow(o, p, n);
    memcpy(o->p, p, n);
    o->p += n;
    return 0;
}

static int out_escape(struct out *o, const char *p, size_t n)
{
    int rc;

    while (n) {
        size_t k =
            n > ESCAPE_PIECE && (o->sink || n > 65536) ? (o->sink ? ESCAPE_PIECE : 65536) : n;
        if ((rc = reserve(o, 6 * k)) != 0)
            return rc;
        o->p += hp__escape(o->p, p, k);
        p += k;
        n -= k;
        if ((rc = check_limit(o)) != 0)
            return rc;
        out_window(o);
    }
    return 0;
}

/* ---- numbers ------------------------------------------------------------------ */

/* 0..9999 as up to four digits (left-aligned) and their count: 50 KB, built
 * once per process (pthread_once) before the first render. */
#define SMALL_INTS 10000
static char small_digits[SMALL_INTS][4];
static uint8_t small_len[SMALL_INTS];
static pthread_once_t small_once = PTHREAD_ONCE_INIT;

static void small_init(void)
{
    for (unsigned v = 0; v < SMALL_INTS; v++)
        small_len[v] = (uint8_t)hp__fmt_u64(small_digits[v], v);
}

static inline char *put_u32(char *d, uint32_t v)
{
    if (v < SMALL_INTS) {
        memcpy(d, small_digits[v], 4);
        return d + small_len[v];
    }
    return d + hp__fmt_u64(d, v);
}

/* At most 11 bytes. */
static inline char *put_int(char *d, int v)
{
    if (v < 0) {
        *d++ = '-';
        return put_u32(d, 0u - (uint32_t)v);
    }
    return put_u32(d, (uint32_t)v);
}

/* ---- errors --------------------------------------------------------------- */

static int fail(struct rs *s, const struct hp_mustache *t, const struct hp__op *op, int code,
                const char *what, const char *name, size_t nlen)
{
    if (s->err && s->err->code == 0)
        hp__set_error(s->err, code, t->name, t->src, op->pos, true, "%s '%.*s'", what, (int)nlen,
                      name);
    return code;
}

static int fail_plain(struct rs *s, const struct hp_mustache *t, const struct hp__op *op, int code,
                      const char *what)
{
    if (s->err && s->err->code == 0)
        hp__set_error(s->err, code, t->name, t->src, op->pos, true, "%s", what);
    return code;
}

/* ---- lookups ---------------------------------------------------------------- */

/* The walk down the context (and dotted names), for names resolve() does not find in the top
 * struct. */
static HP__NOINLINE bool resolve_walk(const struct rs *s, const struct hp_mustache *t,
                                      uint32_t name, unsigned i, struct hp__cur *out)
{
    const struct hp__name *nm = &t->names[name];
    const struct hp__seg *seg;

    if (nm->nseg == 0) {
        out->t = s->ctx[i].t;
        out->p = s->ctx[i].p;
        out->n = 0;
        hp__cur_norm(out);
        return true;
    }
    seg = &t->segs[nm->seg]; /* segs may be NULL when no name has a segment */
    for (;;) {
        struct hp__cur c = {s->ctx[i].t, s->ctx[i].p, 0};
        if (hp__lookup(&c, t->pool + seg->off, seg->len, out))
            break;
        if (i-- == 0)
            return false;
    }
    for (uint32_t k = 1; k < nm->nseg; k++) {
        struct hp__cur in = *out;
        if (!hp__lookup(&in, t->pool + seg[k].off, seg[k].len, out))
            return false;
    }
    return true;
}

/*
 * A one-segment name in the struct at the top of the context is looked up
 * through s->hits (a hit costs three compares; what the struct does not have
 * is remembered too, and the walk then starts one context below).
 */
static inline bool resolve(struct rs *s, const struct hp_mustache *t, uint32_t name,
                           struct hp__cur *out)
{
    const struct ent *e = &s->ctx[s->top];

    if (t->names[name].nseg == 1 && e->t->kind == HP_MUSTACHE_STRUCT) {
        struct field_hit *h = &s->hits[name % FIELD_CACHE];

        if (__builtin_expect(h->tm != t || h->name != name || h->ty != e->t, 0)) {
            const struct hp__seg *g = &t->segs[t->names[name].seg];
            *h = (struct field_hit){t, e->t, hp__field(e->t, t->pool + g->off, g->len), name};
        }
        if (h->f) {
            hp__field_cur(e->p, h->f, out);
            return true;
        }
        return s->top > 0 && resolve_walk(s, t, name, s->top - 1, out);
    }
    return resolve_walk(s, t, name, s->top, out);
}

static int exec(struct rs *s, const struct hp_mustache *t, uint32_t pc, uint32_t end);

static int missing(struct rs *s, const struct hp_mustache *t, const struct hp__op *op)
{
    const struct hp__name *nm = &t->names[op->a];

    return fail(s, t, op, -ENOENT, "strict mode: no value for", t->pool + nm->off, nm->len);
}

/* ---- indentation ------------------------------------------------------------- */

static int indent(struct rs *s, const struct hp_mustache *t, uint32_t pc)
{
    const struct ind *top = &s->ind[s->nind - 1];
    int rc;

    if (top->skip_t == t && top->skip_pc == pc)
        return 0;
    for (unsigned k = 0; k < s->nind; k++) {
        if ((rc = out_write(&s->o, s->ind[k].p, s->ind[k].len)) != 0)
            return rc;
    }
    return 0;
}

/* Literal text while an indentation is in force: indent after each inner newline. */
static int text_indented(struct rs *s, const struct hp_mustache *t, uint32_t pc)
{
    const struct hp__op *op = &t->ops[pc];
    const char *p = t->pool + op->a, *end = p + op->b;
    int rc;

    if ((op->flags & HP__F_BOL) && (rc = indent(s, t, pc)) != 0)
        return rc;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl + 1 : end;
        if ((rc = out_write(&s->o, p, (size_t)(e - p))) != 0)
            return rc;
        p = e;
        if (nl && p < end && (rc = indent(s, t, UINT32_MAX)) != 0)
            return rc;
    }
    return 0;
}

static int push_indent(struct rs *s, const struct hp_mustache *t, const struct hp__op *op,
                       const struct hp_mustache *skip_t, uint32_t skip_pc)
{
    if (!(op->flags & HP__F_INDENT))
        return 0;
    s->ind[s->nind].p = t->pool + op->c;
    s->ind[s->nind].len = op->d;
    s->ind[s->nind].skip_t = (op->flags & HP__F_SITE_INLINE) ? skip_t : NULL;
    s->ind[s->nind].skip_pc = skip_pc;
    s->nind++;
    return 1;
}

/* ---- partials, parents, blocks ----------------------------------------------- */

static int enter(struct rs *s, const struct hp_mustache *t, const struct hp__op *op)
{
    if (s->npart >= s->max_partials)
        return fail_plain(s, t, op, -ELOOP, "partials nested deeper than the limit");
    if (--s->steps == 0)
        return fail_plain(s, t, op, -ELOOP, "render took more steps than the limit");
    s->npart++;
    return 0;
}

static int call(struct rs *s, const struct hp_mustache *t, const struct hp__op *op,
                const struct hp_mustache *callee)
{
    int rc = enter(s, t, op), pushed;

    if (rc)
        return rc;
    pushed = push_indent(s, t, op, NULL, 0);
    rc = exec(s, callee, 0, callee->nops);
    s->nind -= (unsigned)pushed;
    s->npart--;
    return rc;
}

static const struct hp_mustache *target(struct rs *s, const struct hp_mustache *t,
                                        const struct hp__op *op)
{
    struct hp__cur c;
    const char *p;
    size_t n;

    if (!(op->flags & HP__F_DYN))
        return t->slots[op->a].tpl;
    if (!t->set || !resolve(s, t, op->a, &c) || !hp__cur_string(&c, &p, &n))
        return NULL;
    return hp__set_find(t->set, p, n);
}

static int parent(struct rs *s, const struct hp_mustache *t, uint32_t pc)
{
    const struct hp__op *op = &t->ops[pc];
    struct ovr frame = {t, pc + 1, op->b, s->ovr};
    const struct hp_mustache *callee = target(s, t, op);
    int rc = 0;

    if (callee) {
        s->ovr = &frame;
        rc = call(s, t, op, callee);
        s->ovr = frame.up;
    }
    return rc;
}

/* A block site: the outermost caller's definition wins; none renders the default. */
static int block(struct rs *s, const struct hp_mustache *t, uint32_t pc, bool *overridden)
{
    const struct hp__op *op = &t->ops[pc];
    const struct hp_mustache *bt = NULL;
    uint32_t bpc = 0;
    int rc, pushed;

    for (const struct ovr *f = s->ovr; f; f = f->up) {
        for (uint32_t q = f->first; q < f->end; q = f->t->ops[q].b) {
            const struct hp__op *d = &f->t->ops[q];
            if (d->e == op->e && memcmp(f->t->pool + d->a, t->pool + op->a, op->e) == 0) {
                bt = f->t;
                bpc = q;
                break;
            }
        }
    }
    *overridden = bt != NULL;
    if (!bt)
        return 0;
    if ((rc = enter(s, t, op)) != 0)
        return rc;
    pushed = push_indent(s, t, op, bt, bpc + 1);
    rc = exec(s, bt, bpc + 1, bt->ops[bpc].b);
    s->nind -= (unsigned)pushed;
    s->npart--;
    return rc;
}

/* ---- lambdas ----------------------------------------------------------------- */

static int lambda_expand(struct rs *s, const struct hp_mustache *t, const struct hp__op *op,
                         const struct hp_mustache_buf *text, const char *otag, size_t olen,
                         const char *ctag, size_t clen, bool escape)
{
    struct hp_mustache *lt;
    struct hp_mustache_opts opts = {0};
    const struct hp_mustache_opts *so = t->set ? hp__set_opts(t->set) : NULL;
    int rc;

    if (so)
        opts = *so;
    rc = hp__compile(&lt, "lambda", text->data ? text->data : "", text->len, otag, olen, ctag, clen,
                     &opts, s->err && s->err->code == 0 ? s->err : NULL);
    if (rc)
        return rc;
    lt->set = t->set;
    if (t->set)
        hp__link(t->set, lt);
    if ((rc = enter(s, t, op)) == 0) {
        if (!escape) {
            rc = exec(s, lt, 0, lt->nops);
        } else {
            /* render into a buffer of its own, then escape that */
            struct hp_mustache_buf tmp = {0};
            struct out saved = s->o;
            s->o = (struct out){.buf = &tmp, .limit = saved.limit};
            rc = reserve(&s->o, 64);
            if (rc == 0)
                rc = exec(s, lt, 0, lt->nops);
            size_t n = s->o.base ? (size_t)(s->o.p - s->o.base) : 0;
            s->o = saved;
            if (rc == 0)
                rc = out_escape(&s->o, tmp.data, n);
            free(tmp.data);
        }
        s->npart--;
    }
    hp__mustache_clear(lt);
    free(lt);
    return rc;
}

static int lambda(struct rs *s, const struct hp_mustache *t, const struct hp__op *op,
                  const struct hp_mustache_lambda *lam, bool is_section)
{
    struct hp_mustache_buf res = {0};
    struct hp_str text = {t->src + op->c, op->d};
    bool literal = false, escape = !is_section && (op->flags & HP__F_ESCAPE);
    int rc;

    if (!lam->fn)
        return 0;
    rc = lam->fn(lam->ud, is_section ? &text : NULL, &res, &literal);
    if (rc < 0) {
        free(res.data);
        return fail_plain(s, t, op, rc, "lambda failed");
    }
    if (literal && res.len)
        rc = escape ? out_escape(&s->o, res.data, res.len) : out_write(&s->o, res.data, res.len);
    else if (literal)
        rc = 0;
    else if (is_section)
        rc = lambda_expand(s, t, op, &res, t->pool + op->e, op->f >> 8,
                           t->pool + op->e + (op->f >> 8), op->f & 0xff, false);
    else
        rc = lambda_expand(s, t, op, &res, "{{", 2, "}}", 2, escape);
    free(res.data);
    return rc;
}

/* ---- the VM ------------------------------------------------------------------ */

static int var(struct rs *s, const struct hp_mustache *t, const struct hp__op *op)
{
    struct hp__cur c;
    char num[64];
    const char *sp;
    size_t sn, k;
    bool is_str;

    if (!resolve(s, t, op->a, &c))
        return s->strict ? missing(s, t, op) : 0;
    if (c.t->kind == HP_MUSTACHE_LAMBDA)
        return lambda(s, t, op, (const void *)c.p, false);
    k = hp__format_scalar(&c, num, &sp, &sn, &is_str);
    if (is_str)
        return (op->flags & HP__F_ESCAPE) ? out_escape(&s->o, sp, sn) : out_write(&s->o, sp, sn);
    return out_text(&s->o, num, k);
}

static int push(struct rs *s, const struct hp_mustache *t, const struct hp__op *op,
                const struct hp_mustache_type *type, const char *p, size_t n, size_t stride)
{
    if (s->top + 1 >= s->max_depth)
        return fail_plain(s, t, op, -ELOOP, "context deeper than the limit");
    struct ent *e = &s->ctx[++s->top];
    e->t = type;
    e->p = p;
    e->left = n;
    e->stride = stride;
    return 0;
}

/* One element of a fused loop through the checked path: the int, then text. */
static int fused_slow(struct out *o, int v, const char *text, size_t n)
{
    char num[48];
    int rc = out_text(o, num, (size_t)(put_int(num, v) - num));

    return rc ? rc : out_text(o, text, n);
}

/*
 * The section body [a] {{.}} [b] over a list of ints, in one loop: a, then
 * per element the number followed by b and the next element's a as one
 * precomputed run ("</td><td>"), and b alone after the last. The output
 * pointer lives in a local so stores through it cannot alias it.
 */
static HP__NOINLINE int fused_ints(struct rs *s, const struct hp_mustache *t, uint32_t pc,
                                   const struct hp__cur *c)
{
    static const char none[HP__MU_SLACK]; /* empty text, readable like pool text */
    const struct hp__op *q = &t->ops[pc + 1];
    const char *a = none, *b = none, *p = c->p;
    size_t na = 0, nb = 0, stride = c->t->elem->size, n = c->n, nba;
    char ba[64 + HP__MU_SLACK];
    struct out *o = &s->o;
    int rc, v;

    if (q->code == HP__OP_TEXT) {
        a = t->pool + q->a;
        na = q->b;
        q++;
    }
    q++;
    if (q->code == HP__OP_TEXT) {
        b = t->pool + q->a;
        nb = q->b;
    }
    if (na + nb > 64)
        return -EAGAIN; /* the caller runs it through the VM */
    if (n >= s->steps)
        return fail_plain(s, t, &t->ops[pc], -ELOOP, "render took more steps than the limit");
    s->steps -= n;
    memcpy(ba, b, nb);
    memcpy(ba + nb, a, na);
    nba = na + nb;
    if ((rc = out_text(o, a, na)) != 0)
        return rc;
    char *d = o->p, *end = o->end;
    for (size_t i = 0; i + 1 < n; i++, p += stride) {
        memcpy(&v, p, sizeof(v));
        if (__builtin_expect((size_t)(end - d) < 16 + 64, 0)) {
            o->p = d;
            if ((rc = fused_slow(o, v, ba, nba)) != 0)
                return rc;
            d = o->p;
            end = o->end;
            continue;
        }
        d = put_int(d, v);
        memcpy(d, ba, 16);
        if (nba > 16)
            memcpy(d + 16, ba + 16, 48);
        d += nba;
    }
    o->p = d;
    memcpy(&v, p, sizeof(v));
    return fused_slow(o, v, b, nb);
}

/* Returns the next pc, or sets *rc. */
static uint32_t section(struct rs *s, const struct hp_mustache *t, uint32_t pc, int *rc)
{
    const struct hp__op *op = &t->ops[pc];
    struct hp__cur c;

    if (!resolve(s, t, op->a, &c)) {
        if (s->strict)
            *rc = missing(s, t, op);
        return op->b + 1;
    }
    switch (c.t->kind) {
    case HP_MUSTACHE_LAMBDA:
        *rc = lambda(s, t, op, (const void *)c.p, true);
        return op->b + 1;
    case HP_MUSTACHE_LIST:
        if (c.n == 0)
            return op->b + 1;
        if ((op->flags & HP__F_FUSED) && c.t->elem->kind == HP_MUSTACHE_INT && s->nind == 0) {
            *rc = fused_ints(s, t, pc, &c);
            if (*rc != -EAGAIN)
                return op->b + 1;
            *rc = 0;
        }
        *rc = push(s, t, op, c.t->elem, c.p, c.n, c.t->elem->size);
        return pc + 1;
    default:
        if (!hp__truthy(&c))
            return op->b + 1;
        *rc = push(s, t, op, c.t, c.p, 1, 0);
        return pc + 1;
    }
}

static int exec(struct rs *s, const struct hp_mustache *t, uint32_t pc, uint32_t end)
{
    const struct hp__op *ops = t->ops;
    int rc = 0;

    while (pc < end) {
        const struct hp__op *op = &ops[pc];

        switch (op->code) {
        case HP__OP_TEXT:
            rc = s->nind ? text_indented(s, t, pc) : out_text(&s->o, t->pool + op->a, op->b);
            pc++;
            break;
        case HP__OP_INDENT:
            if (s->nind)
                rc = indent(s, t, pc);
            pc++;
            break;
        case HP__OP_VAR:
            rc = var(s, t, op);
            pc++;
            break;
        case HP__OP_VAR_DOT: {
            const struct ent *e = &s->ctx[s->top];
            if (e->t->kind == HP_MUSTACHE_INT && (size_t)(s->o.end - s->o.p) >= 16) {
                int v;
                memcpy(&v, e->p, sizeof(v));
                s->o.p = put_int(s->o.p, v);
            } else {
                rc = var(s, t, op);
            }
            pc++;
            break;
        }
        case HP__OP_SECTION:
            pc = section(s, t, pc, &rc);
            break;
        case HP__OP_END: {
            struct ent *e = &s->ctx[s->top];
            if (--e->left) {
                if (__builtin_expect(--s->steps == 0, 0))
                    return fail_plain(s, t, op, -ELOOP, "render took more steps than the limit");
                e->p += e->stride;
                pc = op->a;
            } else {
                s->top--;
                pc++;
            }
            break;
        }
        case HP__OP_INVERTED: {
            struct hp__cur c;
            bool yes =
                resolve(s, t, op->a, &c) && (c.t->kind == HP_MUSTACHE_LAMBDA || hp__truthy(&c));
            pc = yes ? op->b : pc + 1;
            break;
        }
        case HP__OP_PARTIAL: {
            const struct hp_mustache *callee = target(s, t, op);
            if (callee)
                rc = call(s, t, op, callee);
            pc++;
            break;
        }
        case HP__OP_PARENT:
            rc = parent(s, t, pc);
            pc = op->b;
            break;
        case HP__OP_BLOCK: {
            bool overridden;
            rc = block(s, t, pc, &overridden);
            pc = overridden ? op->b : pc + 1;
            break;
        }
        default: /* BLOCKDEF is only reached through its PARENT */
            pc = op->b;
            break;
        }
        if (__builtin_expect(rc != 0, 0))
            return rc;
    }
    return 0;
}

static int run(struct rs *s, const struct hp_mustache *t, const struct hp_mustache_type *type,
               const void *data, const struct hp_mustache_render_opts *opts)
{
    pthread_once(&small_once, small_init);
    s->max_depth = opts && opts->max_depth ? opts->max_depth : HP__MU_DEFAULT_DEPTH;
    if (s->max_depth > HP__MU_MAX_DEPTH)
        s->max_depth = HP__MU_MAX_DEPTH;
    s->max_partials = opts && opts->max_partials ? opts->max_partials : HP__MU_DEFAULT_PARTIALS;
    if (s->max_partials > MAX_PARTIALS_CAP)
        s->max_partials = MAX_PARTIALS_CAP;
    s->strict = opts && opts->strict;
    s->steps = opts && opts->max_steps ? opts->max_steps : HP__MU_DEFAULT_STEPS;
    s->err = opts ? opts->err : NULL;
    if (s->err)
        memset(s->err, 0, sizeof(*s->err));
    s->top = 0;
    s->nind = s->npart = 0;
    s->ovr = NULL;
    memset(s->hits, 0, sizeof(s->hits));
    s->ctx[0].t = type && data ? type : &hp__type_none;
    s->ctx[0].p = data;
    s->ctx[0].left = 1;
    s->ctx[0].stride = 0;
    int rc = exec(s, t, 0, t->nops);
    if (rc && s->err && s->err->code == 0)
        hp__set_error(s->err, rc, t->name, NULL, 0, false, "render failed: %s",
                      rc == -ENOMEM     ? "out of memory"
                      : rc == -EMSGSIZE ? "output larger than the limit"
                                        : "error");
    return rc;
}

static size_t limit_of(const struct hp_mustache_render_opts *opts)
{
    return opts && opts->max_output ? opts->max_output : HP__MU_DEFAULT_OUTPUT;
}

int hp_mustache_render(const struct hp_mustache *t, const struct hp_mustache_type *type,
                       const void *data, struct hp_mustache_buf *out,
                       const struct hp_mustache_render_opts *opts)
{
    struct rs *s, local;
    int rc;

    if (!t || !out)
        return -EINVAL;
    s = &local;
    s->o = (struct out){.buf = out, .start = out->len, .limit = limit_of(opts)};
    if (out->data) {
        s->o.base = out->data;
        s->o.p = out->data + out->len;
        s->o.cap_end =
            out->cap >= out->len + HP__MU_SLACK ? out->data + out->cap - HP__MU_SLACK : s->o.p;
    }
    out_window(&s->o);
    if ((rc = reserve(&s->o, 256)) == 0)
        rc = run(s, t, type, data, opts);
    if (rc == 0)
        rc = check_limit(&s->o);
    out->len = rc == 0 ? (size_t)(s->o.p - out->data) : s->o.start;
    return rc;
}

int hp_mustache_render_sink(const struct hp_mustache *t, const struct hp_mustache_type *type,
                            const void *data, hp_mustache_sink_fn *sink, void *ud,
                            const struct hp_mustache_render_opts *opts)
{
    char chunk[SINK_CHUNK + HP__MU_SLACK];
    struct rs *s, local;
    int rc;

    if (!t || !sink)
        return -EINVAL;
    s = &local;
    s->o = (struct out){.sink = sink, .ud = ud, .limit = limit_of(opts)};
    s->o.base = s->o.p = chunk;
    s->o.cap_end = chunk + SINK_CHUNK;
    out_window(&s->o);
    rc = run(s, t, type, data, opts);
    if (rc == 0)
        rc = flush(&s->o);
    return rc;
}

void hp_mustache_buf_free(struct hp_mustache_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int hp_mustache_buf_append(struct hp_mustache_buf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int hp_mustache_escape(struct hp_mustache_buf *out, const char *p, size_t n)
{
    if (out->cap - out->len < 6 * n + HP__MU_SLACK) {
        size_t cap = out->cap ? out->cap : 64;
        while (cap - out->len < 6 * n + HP__MU_SLACK)
            cap *= 2;
        char *d = realloc(out->data, cap);
        if (!d)
            return -ENOMEM;
        out->data = d;
        out->cap = cap;
    }
    out->len += hp__escape(out->data + out->len, p, n);
    return 0;
}
