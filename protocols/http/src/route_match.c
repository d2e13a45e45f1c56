/*
 * route_match.c - hp_router_match(): a depth-first walk of the frozen tree
 * in precedence order (static edge, regex children, parameter, catch-all),
 * backtracking when a branch fails deeper. Every tree node is reached by
 * one way only and the path position there is fixed, so a lookup visits
 * each node at most once: the cost is bounded by the table, never by the
 * path's shape. The walk reads the tree and writes only the caller's match
 * struct: no allocation, no lock, any number of threads.
 *
 * A lookup first tries the greedy walk on the method's own tree
 * (route_internal.h, built by route_fast.c: no backtracking, no calls on
 * its common path), which either finds what the full walk would find or
 * gives up; then the full walk runs (bounded: at most twice the work).
 * tests/fuzz/fuzz_router.c checks that the two always agree.
 *
 * Clean paths only: static labels cannot contain escapes, empty segments
 * or dot-segments (route_pattern.c), parameters refuse empty and dot
 * values, catch-alls check their remainder. So whatever matched was clean,
 * and the slower questions (why did nothing match: a bad escape, an unclean
 * path, another method, a trailing slash?) are asked after a miss only.
 */
#include <errno.h>
#include <string.h>

#include "route_internal.h"

/* The lookup's hot path is a handful of small helpers: inline them all. */
#if defined(__GNUC__) || defined(__clang__)
#define HOT static inline __attribute__((always_inline))
#else
#define HOT static inline
#endif
#if defined(__GNUC__) || defined(__clang__)
#define UNLIKELY(c) __builtin_expect(!!(c), 0)
#else
#define UNLIKELY(c) (c)
#endif
#if defined(__has_attribute)
#if __has_attribute(fallthrough)
#define FALLTHROUGH __attribute__((fallthrough))
#endif
#endif
#ifndef FALLTHROUGH
#define FALLTHROUGH ((void)0)
#endif

struct walk {
    const char *start, *end;
    uint64_t tail; /* see path_tail() */
    struct hp_route_match *m;
    unsigned slot;
    bool path_hit; /* some route had the path but not the method */
    bool bad;      /* a catch-all remainder was refused (400) */
    uint32_t allow;
};

/* The route of a leaf for the request's method: its own, GET for HEAD, any. */
HOT const struct iroute *pick(const struct rleaf *lf, struct walk *w)
{
    const struct iroute *rt = lf->by[w->slot];

    if (rt == NULL) {
        if (w->slot == M_HEAD)
            rt = lf->by[M_GET];
        if (rt == NULL)
            rt = lf->by[M_ANY];
        if (rt == NULL) {
            w->path_hit = true;
            w->allow |= lf->mask;
        }
    }
    return rt;
}

/*
 * The hot path works on "segment words": the 8 bytes of the path at a
 * segment's start, as one little-endian-order number (memcpy, so any byte
 * order works: heads are built the same way). Near the end of the path the
 * word is loaded from the path's last 8 bytes and shifted, so nothing is
 * read outside the path; the bytes past its end are then 0, which no label
 * byte and no '/' is.
 */
HOT uint64_t load64(const char *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

/*
 * The path's last 8 bytes as a word, shorter paths zero-padded in front,
 * so that the word of a segment @p left (< 8) bytes before the end is
 * this word without its first 8 - left bytes.
 */
static uint64_t path_tail(const char *start, const char *end)
{
    unsigned char b[8] = {0};
    uint64_t v;

    if (end - start >= 8)
        return load64(end - 8);
    memcpy(b + 8 - (end - start), start, (size_t)(end - start));
    memcpy(&v, b, 8);
    return v;
}

HOT uint64_t seg_word(const struct walk *w, const char *s, size_t left)
{
    if (left >= 8)
        return load64(s);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (w->tail << (8 * (7 - left))) << 8; /* two shifts: left 0 gives 0, not UB */
#else
    return (w->tail >> (8 * (7 - left))) >> 8;
#endif
}

/* The first byte of a word (the byte at the lowest address). */
HOT unsigned first_byte(uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (unsigned)(v >> 56);
#else
    return (unsigned)(v & 0xff);
#endif
}

/* Does a label of 8 bytes or more, whose first 8 matched, match all of it? */
HOT bool long_label(const struct redge *e, const char *s, size_t left)
{
    size_t len = e->len;

    if (len > left)
        return false;
    /* Words from 8 on, the last one overlapping: all within both. */
    for (size_t i = 8; i + 8 < len; i += 8) {
        if (load64(s + i) != load64(e->label + i))
            return false;
    }
    if (load64(s + len - 8) != load64(e->label + len - 8))
        return false;
    return len == left || s[len] == '/';
}

/*
 * Is the segment with word @p v the label of @p e? A short label's head
 * includes the '/' that must follow it; with fewer than 8 bytes left the
 * label may end the path instead (mask_end leaves that byte out).
 */
HOT bool edge_is(const struct redge *e, uint64_t v, const char *s, size_t left)
{
    if (((v ^ e->head) & e->mask) != 0) {
        if (left >= 8 || e->len != left || ((v ^ e->head) & e->mask_end) != 0)
            return false;
    }
    return e->len < 8 || long_label(e, s, left);
}

/* The static edge whose label is the segment at @p s (word @p v), if any. */
HOT const struct redge *find_edge(const struct rnode *n, uint64_t v, const char *s, size_t left)
{
    const struct redge *e = n->st, *last = n->st + n->nst;

    if (n->idx != NULL) {
        for (e = n->idx[hp__route_hash2(v)]; e != NULL; e = e->hnext) {
            if (edge_is(e, v, s, left))
                return e;
        }
        return NULL;
    }
    for (; e < last; e++) {
        if (edge_is(e, v, s, left))
            return e;
    }
    return NULL;
}

/* The end of the segment at @p s with word @p v: the next '/' or the path's end. */
HOT const char *seg_end(uint64_t v, const char *s, const char *end)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t x = v ^ (ones * '/');
    uint64_t z = (x - ones) & ~x & highs; /* the lowest set bit marks the first '/' */

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (z != 0)
        return s + (__builtin_ctzll(z) >> 3);
#else
    if (z != 0) {
        while (*s != '/')
            s++;
        return s;
    }
#endif
    if (end - s <= 8)
        return end;
    s = memchr(s + 8, '/', (size_t)(end - s - 8));
    return s != NULL ? s : end;
}

static const struct iroute *walk(const struct rnode *n, const char *p, struct walk *w);

/* A catch-all or mount at @p n for the remainder after the '/' at @p p. */
static const struct iroute *take_rest(const struct rnode *n, const char *p, struct walk *w)
{
    const struct iroute *rt = pick(n->catchall, w);
    int c;

    if (rt == NULL)
        return NULL;
    c = hp__route_rest_check(p + 1, (size_t)(w->end - p - 1));
    if (c != REST_OK) {
        w->bad |= c == REST_BAD;
        return NULL;
    }
    if (rt->kind == R_MOUNT_ROUTER)
        return walk(rt->sub->root, p, w);
    if (rt->kind == R_MOUNT_HANDLER) {
        w->m->rest = (struct hp_str){p, (size_t)(w->end - p)};
        return rt;
    }
    w->m->values[n->pdepth] = (struct hp_str){p + 1, (size_t)(w->end - p - 1)};
    return rt;
}

/* A parameter value (first byte @p c): never empty, never a dot-segment. */
HOT bool param_ok(unsigned c, const char *s, const char *q)
{
    if (c == '.' || c == '%')
        return q > s && !hp__route_dot_segment(s, (size_t)(q - s));
    return q > s;
}

/*
 * A node whose alternatives to its static edge are still to be tried:
 * stage 0 the regex children from i on, 1 the parameter, 2 the catch-all.
 */
struct choice {
    const struct rnode *n;
    const char *p, *q;
    uint32_t i;
    uint32_t stage;
};

/* The next alternative of @p c: the child to go on with, or NULL (c is done). */
static const struct rnode *next_alt(struct choice *c, struct walk *w, const char **pp,
                                    const struct iroute **rt)
{
    const struct rnode *n = c->n;
    const char *s = c->p + 1;

    uint64_t v = seg_word(w, s, (size_t)(w->end - s));
    unsigned fb = first_byte(v);

    if (c->q == NULL)
        c->q = seg_end(v, s, w->end);
    if (c->stage == 0) {
        for (uint32_t i = c->i; i < n->nrx && param_ok(fb, s, c->q); i++) {
            if (hp__route_regex_ok(&n->rx[i].re, s, (size_t)(c->q - s))) {
                c->i = i + 1;
                w->m->values[n->pdepth] = (struct hp_str){s, (size_t)(c->q - s)};
                *pp = c->q;
                return n->rx[i].child;
            }
        }
        c->stage = 1;
    }
    if (c->stage == 1) {
        c->stage = 2;
        if (n->param != NULL && param_ok(fb, s, c->q)) {
            w->m->values[n->pdepth] = (struct hp_str){s, (size_t)(c->q - s)};
            *pp = c->q;
            return n->param;
        }
    }
    c->stage = 3;
    if (n->catchall != NULL)
        *rt = take_rest(n, c->p, w);
    return NULL;
}

/* Where resume() goes on: node @p n at @p p, or a route (or nothing) if n is NULL. */
struct resumed {
    const struct rnode *n;
    const char *p;
    const struct iroute *rt;
    unsigned sp;
};

/*
 * Resume the newest choice of @p stack (@p sp of them). Out of line, and
 * nothing of the walk's passed by address, so the walk's locals stay in
 * registers.
 */
static struct resumed resume(struct choice *stack, unsigned sp, struct walk *w)
{
    struct resumed r = {NULL, NULL, NULL, sp};

    while (r.sp > 0) {
        r.rt = NULL;
        r.n = next_alt(&stack[r.sp - 1], w, &r.p, &r.rt);
        if (r.n != NULL)
            return r;
        r.sp--;
        if (r.rt != NULL)
            return r;
    }
    return r;
}

/*
 * The walk, from @p n at @p p (the end of the path, or the '/' before the
 * next segment). Iterative: a node that offers more than one way on is
 * pushed as a choice, and a failure resumes the newest choice. A node is
 * pushed at most once per walk and the tree is at most ROUTE_MAX_SEGS deep,
 * which bounds the stack.
 */
HOT const struct iroute *walk_inline(const struct rnode *n, const char *p, struct walk *w)
{
    struct choice stack[ROUTE_MAX_SEGS + 2];
    unsigned sp = 0;
    const struct iroute *rt = NULL;
    const char *end = w->end;

    for (;;) {
        const struct redge *e;
        const char *s, *q;
        size_t left;
        uint64_t v;
        if (p == end) {
            if (n->leaf != NULL && (rt = pick(n->leaf, w)) != NULL)
                return rt;
            goto back;
        }
        s = p + 1;
        left = (size_t)(end - s);
        v = seg_word(w, s, left);
        switch (n->kind) {
        case K_STATIC:
            if ((e = find_edge(n, v, s, left)) == NULL)
                goto back;
            p = s + e->len;
            n = e->child;
            continue;
        case K_MIXED:
            if ((e = find_edge(n, v, s, left)) != NULL) {
                stack[sp++] = (struct choice){n, p, NULL, 0, 1};
                p = s + e->len;
                n = e->child;
                continue;
            }
            FALLTHROUGH; /* to the parameter */
        case K_PARAM:
            if (!param_ok(first_byte(v), s, q = seg_end(v, s, end)))
                goto back;
            w->m->values[n->pdepth] = (struct hp_str){s, (size_t)(q - s)};
            p = q;
            n = n->param;
            continue;
        case K_END:
            goto back;
        default:
            break;
        }
        stack[sp++] = (struct choice){n, p, NULL, 0, 0};
        if (n->nst != 0 && (e = find_edge(n, v, s, left)) != NULL) {
            p = s + e->len;
            n = e->child;
            continue;
        }
    back:
        if (sp == 0)
            return NULL;
        {
            struct resumed r = resume(stack, sp, w);
            if (r.n == NULL)
                return r.rt; /* a catch-all's route, or nothing */
            n = r.n;
            p = r.p;
            sp = r.sp;
        }
    }
}

static const struct iroute *walk(const struct rnode *n, const char *p, struct walk *w)
{
    return walk_inline(n, p, w);
}

static int found(struct hp_route_match *m, const struct iroute *rt)
{
    m->route = &rt->pub;
    m->names = rt->names;
    m->nparams = rt->nparams;
    return HP_ROUTE_FOUND;
}

/* Does the path with its trailing slash toggled match? Paths < 2 KiB. */
static int try_slash(const struct hp_router *r, struct walk *w, struct hp_str path)
{
    char buf[2048];
    struct walk w2 = *w;
    const char *p = path.ptr;
    size_t len = path.len;

    if (len > 1 && p[len - 1] == '/') {
        w2.end = p + len - 1;
        w2.tail = path_tail(w2.start, w2.end);
        if (walk(r->root, p, &w2) != NULL)
            return HP_ROUTE_REDIRECT_DEL_SLASH;
        return 0;
    }
    if (len + 1 > sizeof(buf))
        return 0;
    memcpy(buf, p, len);
    buf[len] = '/';
    w2.start = buf;
    w2.end = buf + len + 1;
    w2.tail = path_tail(w2.start, w2.end);
    return walk(r->root, buf, &w2) != NULL ? HP_ROUTE_REDIRECT_ADD_SLASH : 0;
}

/* Nothing matched: say why. */
static int miss(const struct hp_router *r, struct walk *w, struct hp_str path)
{
    struct hp_route_match *m = w->m;

    m->route = NULL;
    m->nparams = 0;
    if (w->bad || hp__route_bad_escape(path.ptr, path.len))
        return HP_ROUTE_BAD_REQUEST;
    if (hp__route_unclean(path.ptr, path.len)) {
        m->redirect = HP_ROUTE_REDIRECT_CLEAN;
        return HP_ROUTE_REDIRECT;
    }
    if (w->path_hit) {
        m->allow = w->allow & ~(1u << M_ANY);
        return w->slot == M_OPTIONS ? HP_ROUTE_OPTIONS : HP_ROUTE_NOT_ALLOWED;
    }
    if (r->opts.redirect_trailing_slash && (m->redirect = try_slash(r, w, path)) != 0)
        return HP_ROUTE_REDIRECT;
    return HP_ROUTE_NOT_FOUND;
}

/*
 * The walk stops at the first route with the method; for a 405 the Allow
 * set must cover every route with the path, so the miss path walks again
 * with a method no route has, which visits them all.
 */
static void collect_allow(const struct hp_router *r, struct walk *w, struct hp_str path)
{
    struct walk all = *w;

    all.slot = M_OTHER;
    all.allow = 0;
    (void)walk(r->root, path.ptr, &all);
    w->allow = all.allow;
}

/* The full walk: everything the greedy one gave up on, and every miss. */
__attribute__((noinline)) int hp__router_match_full(const struct hp_router *r, unsigned slot,
                                                    struct hp_str path, struct hp_route_match *m)
{
    struct walk w = {.start = path.ptr, .end = path.ptr + path.len, .m = m, .slot = slot};
    const struct iroute *rt;

    if (!r->frozen)
        return -EINVAL;
    m->rest.len = 0;
    if (path.len == 0 || path.ptr[0] != '/') {
        m->route = NULL;
        m->nparams = 0;
        if (slot == M_OPTIONS && path.len == 1 && path.ptr[0] == '*') {
            m->allow = r->all_mask;
            return HP_ROUTE_OPTIONS;
        }
        return HP_ROUTE_BAD_REQUEST;
    }
    w.tail = path_tail(w.start, w.end);
    if ((rt = walk_inline(r->root, path.ptr, &w)) != NULL)
        return found(m, rt);
    if (w.path_hit)
        collect_allow(r, &w, path);
    return miss(r, &w, path);
}

/* ---- the greedy walk on the per-method trees (route_internal.h) ---------- */

#if defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>
#define FAST_SSE2 1
#elif defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FAST_SWAR 1
#endif

/*
 * The '/' bytes of the 8 bytes of word @p v (memory order) as bits, 0 if
 * there is none; first_bit() gives the offset of the first.
 */
HOT uint64_t slash_bits(uint64_t v)
{
#if defined(FAST_SSE2)
    __m128i x = _mm_cvtsi64_si128((long long)v); /* the upper 8 bytes are 0: no '/' */

    return (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('/')));
#elif defined(FAST_SWAR)
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t x = v ^ (ones * '/');

    return (x - ones) & ~x & highs; /* exact up to the first '/' */
#else
    unsigned char c[8];
    uint64_t bits = 0;

    memcpy(c, &v, 8);
    for (unsigned i = 0; i < 8; i++)
        bits |= (uint64_t)(c[i] == '/') << i;
    return bits;
#endif
}

#if defined(FAST_SSE2)
/* slash_bits() of the 16 bytes at @p p (all in the path). */
HOT uint64_t slash_bits16(const char *p)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);

    return (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('/')));
}
#endif

HOT size_t first_bit(uint64_t bits)
{
#if defined(FAST_SSE2) && (defined(__GNUC__) || defined(__clang__))
    size_t i; /* BSF of a nonzero word, asked for directly: the builtin's int costs a sign
               * extension (and gcc a dependency-breaking xor), as in mustache's escape.c */

    __asm__("bsfq %1, %0" : "=r"(i) : "r"(bits) : "cc");
    return i;
#elif defined(FAST_SSE2)
    return (size_t)__builtin_ctzll(bits);
#elif defined(FAST_SWAR)
    return (size_t)__builtin_ctzll(bits) >> 3;
#else
    size_t i = 0;

    while (!(bits & 1)) {
        bits >>= 1;
        i++;
    }
    return i;
#endif
}

/* The slot of segment word @p v in @p n's table (see struct fnode). */
HOT const struct fedge *fnode_slot(const struct fnode *n, uint64_t v)
{
    uint64_t h = (v & n->kmask) * n->mult;

    if (sizeof(struct fedge) == 64) /* the byte offset with one shift and one mask */
        return (const struct fedge *)(const void *)((const char *)n->tbl +
                                                    ((h >> (FNODE_HASH_SHIFT - 6)) & n->smask));
    return &n->tbl[(h >> FNODE_HASH_SHIFT) & n->smask];
}

/*
 * The edge of the slot starting with @p e (any label, the whole chain) that
 * the segment at @p s (word @p v, @p left bytes to the path's end) is, or
 * NULL: the slow path's compare (route_internal.h).
 */
HOT const struct fedge *fedge_slow(const struct fedge *e, uint64_t v, const char *s, size_t left)
{
    for (; e != NULL; e = e->hnext) {
        size_t len = e->len;
        if (((v ^ e->head) & e->hmask) != 0)
            continue;
        if (len > left)
            continue;
        if (len < 8)
            return e;
        for (size_t i = 8; i + 8 < len; i += 8) {
            if (load64(s + i) != load64(e->label + i))
                goto next;
        }
        if (len > 8 && load64(s + len - 8) != load64(e->label + len - 8))
            continue;
        if (len == left || s[len] == '/')
            return e;
    next:;
    }
    return NULL;
}

/*
 * The greedy walk (see route_internal.h) on the per-method trees. It is a
 * handful of functions that hand over by tail calls (jumps), each with the
 * walk's whole state in its arguments: the node @p n, the start @p s of the
 * next segment (after its '/'; after the last one the path's end + 1), lim
 * (the path's end - 7: below it a whole word is in the path), the next
 * value @p vp and the caller's match struct @p m, where the caller parked
 * the path's start (m->rest.ptr) and the method (m->allow: the slot, or
 * for by_id the enum hp_http_method). The common path (fast_walk(), inlined
 * into each entry point) calls nothing and keeps nothing for the rare
 * ones, so that it has the registers to itself; the rare ones
 * (walk_slow_*()) go back to it through walk_slot() or walk_id(), and
 * where the walk gives up, the full walk runs (a bounded repeat; the
 * router is n->r). Each function comes twice: for a method slot, and for
 * an enum.
 *
 * Segment words: the 8 bytes at s, loaded from the path while they are all
 * in it, else from pad (the path's last 8 bytes, then '/'), so that
 * nothing is read outside the path and its end reads as '/'.
 */
typedef int walk_fn(const struct fnode *n, const char *s, uintptr_t lim, struct hp_str *vp,
                    struct hp_route_match *m);
static walk_fn walk_slot, walk_id;

/* Give up at @p n: the full walk from the start. */
__attribute__((noinline)) static int walk_full(const struct fnode *n, uintptr_t lim,
                                               struct hp_route_match *m, bool by_id)
{
    struct hp_str path = {m->rest.ptr, (size_t)(lim + 7 - (uintptr_t)m->rest.ptr)};
    unsigned slot = by_id ? hp__route_slot_id(m->allow) : m->allow;

    if (slot == M_OTHER && by_id && n->r->ncustom != 0)
        return -EINVAL; /* see hp_router_match_id() */
    return hp__router_match_full(n->r, slot, path, m);
}

/*
 * The rare cases at @p n (word @p v): a long label, a value starting with
 * one of %&'()*+,-./ ('.' and '%' could make a dot-segment: the full walk
 * decides), the empty label.
 */
HOT int walk_slow_body(const struct fnode *n, const char *s, uintptr_t lim, struct hp_str *vp,
                       struct hp_route_match *m, bool by_id)
{
    size_t left = lim + 7 - (uintptr_t)s;
    uint64_t v = 0x2f2f2f2f2f2f2f2fu;
    const struct fedge *e;
    const char *q;
    unsigned c;

    if (left >= 8)
        v = load64(s);
    else
        for (size_t i = 0; i < left; i++)
            ((unsigned char *)&v)[i] = (unsigned char)s[i];
    c = first_byte(v);
    if (n->tbl != NULL && (e = fedge_slow(fnode_slot(n, v), v, s, left)) != NULL) {
        s += e->len + 1;
        n = e->child;
        goto on;
    }
    if (c == '/' && n->empty != NULL) { /* an empty segment: the empty label's */
        s++;
        n = n->empty->child;
        goto on;
    }
    if (n->param == NULL || c == '/' || c == '.' || c == '%')
        return walk_full(n, lim, m, by_id);
    q = memchr(s, '/', left);
    q = q != NULL ? q : s + left;
    *vp++ = (struct hp_str){s, (size_t)(q - s)};
    s = q + 1;
    n = n->param;
on:
    return by_id ? walk_id(n, s, lim, vp, m) : walk_slot(n, s, lim, vp, m);
}

__attribute__((noinline)) static int walk_slow_slot(const struct fnode *n, const char *s,
                                                    uintptr_t lim, struct hp_str *vp,
                                                    struct hp_route_match *m)
{
    return walk_slow_body(n, s, lim, vp, m, false);
}

__attribute__((noinline)) static int walk_slow_id(const struct fnode *n, const char *s,
                                                  uintptr_t lim, struct hp_str *vp,
                                                  struct hp_route_match *m)
{
    return walk_slow_body(n, s, lim, vp, m, true);
}

/*
 * In fast_walk(): on to static_hit with k = the advance (the label's
 * length + 1) if the segment at s (word v) is the label of edge @p e, to
 * slow if it may be but only fedge_slow() can tell, else on (empty slots
 * never match). A macro, not a function returning k, so that the common
 * hit is one compare of adv.
 */
#define EDGE_TRY(e)                                                                        \
    do {                                                                                   \
        if ((((v) ^ (e)->head) & (e)->hmask) == 0) {                                       \
            k = (e)->adv;                                                                  \
            if (k <= 8) /* the common hit: a short label, the head said it all */          \
                goto static_hit;                                                           \
            if (k <= 24) { /* 8 to 23 bytes: the word that ends with the '/' after them */ \
                x = (uintptr_t)s + k - 8; /* on at x + 8: k no longer needed */            \
                if ((x < lim ? load64((const char *)x) == (e)->tailw                       \
                             : x == lim && load64((const char *)pad + 1) == (e)->tailw) && \
                    (x <= (uintptr_t)s + 8 || load64(s + 8) == (e)->midw))                 \
                    goto static_hit_x;                                                     \
            } else if (k == FEDGE_SLOW) {                                                  \
                goto slow;                                                                 \
            }                                                                              \
        }                                                                                  \
    } while (0)

/*
 * The common path: hashed labels up to 23 bytes, values, the end. Values of
 * 8 bytes or more and labels sharing a slot are rarer but cheap enough
 * here; the rest goes to walk_slow_*().
 */
HOT int fast_walk(const struct fnode *n, const char *s, uintptr_t lim, struct hp_str *vp,
                  struct hp_route_match *m, bool by_id)
{
    const struct iroute *rt;
    const char *start = m->rest.ptr;
    unsigned char pad[16];
    size_t len = lim + 7 - (uintptr_t)start;

#if defined(__GNUC__) || defined(__clang__)
    /* Only lim from here on, never the path's end beside it: one register less in the loop. */
    __asm__("" : "+r"(lim));
#endif
    memset(pad + 8, '/', 8);
    if (len >= 8) {
        memcpy(pad, (const char *)(lim - 1), 8);
    } else if (len >= 4) { /* two overlapping copies: plain moves */
        memcpy(pad + 4, (const char *)(lim + 3), 4);
        memcpy(pad + 8 - len, start, 4);
    } else if (len >= 2) {
        memcpy(pad + 6, (const char *)(lim + 5), 2);
        memcpy(pad + 8 - len, start, 2);
    } else {
        pad[7] = (unsigned char)*start;
    }
    for (;;) {
        const struct fedge *e;
        uint64_t v, b;
        uintptr_t x;
        size_t k;
        if ((uintptr_t)s < lim) { /* a whole word in the path */
            v = load64(s);
        } else {
            k = (uintptr_t)s - lim; /* 0 to 7, or 8: after the end */
            if (k == 8)
                break;
            v = load64((const char *)pad + 1 + k);
        }
        if (n->tbl != NULL) {
            e = fnode_slot(n, v);
            EDGE_TRY(e);
            if (e->hnext != NULL) { /* one more in the slot here, others: the slow path */
                e = e->hnext;
                EDGE_TRY(e);
                if (e->hnext != NULL)
                    goto slow;
            }
            if (n->param == NULL)
                goto slow;
        }
        /* The parameter; one starting with '%' to '/': the slow path. */
        if ((unsigned char)(v - '%') <= (unsigned)('/' - '%'))
            goto slow;
        if ((b = slash_bits(v)) != 0) {
            k = first_bit(b); /* under 8 bytes */
        } else {
            const char *q = s;
#if defined(FAST_SSE2)
            /* under 16 bytes with 16 in the path (most names): one more compare */
            if ((uintptr_t)s + 8 < lim && (b = slash_bits16(s)) != 0)
                goto long_found;
#endif
            do {
                q += 8;
                v = (uintptr_t)q < lim ? load64(q)
                                       : load64((const char *)pad + 1 + ((uintptr_t)q - lim));
            } while ((b = slash_bits(v)) == 0);
#if defined(FAST_SSE2)
        long_found:
#endif
            k = (size_t)(q - s) + first_bit(b);
        }
        *vp++ = (struct hp_str){s, k}; /* at its pdepth: greedy, no catch-alls */
        s += k + 1;
        n = n->param;
        continue;
    static_hit_x:
        s = (const char *)(x + 8);
        n = e->child;
        continue;
    static_hit:
        s += k;
        n = e->child;
    }
    if ((rt = n->leaf) == NULL)
        return walk_full(n, lim, m, by_id);
    m->route = &rt->pub;
    m->names = rt->names;
    m->nparams = rt->nparams;
    m->rest.len = 0;
    return HP_ROUTE_FOUND;
slow:
    return by_id ? walk_slow_id(n, s, lim, vp, m) : walk_slow_slot(n, s, lim, vp, m);
}

__attribute__((noinline)) static int walk_slot(const struct fnode *n, const char *s, uintptr_t lim,
                                               struct hp_str *vp, struct hp_route_match *m)
{
    return fast_walk(n, s, lim, vp, m, false);
}

__attribute__((noinline)) static int walk_id(const struct fnode *n, const char *s, uintptr_t lim,
                                             struct hp_str *vp, struct hp_route_match *m)
{
    return fast_walk(n, s, lim, vp, m, true);
}

/* The greedy walk on the slot's tree, or the full walk where there is none. */
HOT int fast_match(const struct hp_router *r, unsigned slot, struct hp_str path,
                   struct hp_route_match *m)
{
    const struct fnode *n = r->fast[slot]; /* never NULL: see hp__route_fast_init() */

    if (path.len == 0 || *path.ptr != '/')
        return hp__router_match_full(r, slot, path, m);
    m->rest.ptr = path.ptr; /* parked for the full walk (see fast_walk()) */
    m->allow = slot;
    return fast_walk(n, path.ptr + 1, (uintptr_t)path.ptr + path.len - 7, m->values, m, false);
}

/*
 * The entry points each have the greedy walk inlined (fast_walk() is
 * always_inline): no call between the caller and the walk.
 */
int hp__router_match_slot(const struct hp_router *r, unsigned slot, struct hp_str path,
                          struct hp_route_match *m)
{
    return fast_match(r, slot, path, m);
}

/* hp_router_match() without a tree to walk: a method of the router's own, or the full walk. */
__attribute__((noinline)) static int match_token_full(const struct hp_router *r,
                                                      struct hp_str method, struct hp_str path,
                                                      struct hp_route_match *m)
{
    unsigned slot = hp__route_slot_std(method.ptr, method.len);

    if (slot == M_OTHER && r->ncustom != 0)
        return hp__router_match_slot(r, hp__route_slot(r, method.ptr, method.len), path, m);
    return hp__router_match_full(r, slot, path, m);
}

int hp_router_match(const struct hp_router *r, struct hp_str method, struct hp_str path,
                    struct hp_route_match *m)
{
    unsigned slot = M_GET;
    const struct fnode *n;

    if (method.len == 3 && memcmp(method.ptr, "GET", 3) == 0) /* the common case on its own */
        n = r->fast[M_GET]; /* never NULL: see hp__route_fast_init() */
    else if ((n = r->fast_std[slot = hp__route_slot_std(method.ptr, method.len)]) == NULL)
        return match_token_full(r, method, path, m); /* maybe one of the router's own */
    if (path.len == 0 || *path.ptr != '/')
        return match_token_full(r, method, path, m);
    m->rest.ptr = path.ptr; /* parked for the full walk (see fast_walk()) */
    m->allow = slot;
    return fast_walk(n, path.ptr + 1, (uintptr_t)path.ptr + path.len - 7, m->values, m, false);
}

/* hp_router_match_id() without a tree to walk: refusals, and the full walk. */
__attribute__((noinline)) static int match_id_full(const struct hp_router *r, unsigned id,
                                                   struct hp_str path, struct hp_route_match *m)
{
    unsigned slot = hp__route_slot_id(id);

    if (slot == M_OTHER && r->ncustom != 0)
        return -EINVAL;
    return hp__router_match_full(r, slot, path, m);
}

int hp_router_match_id(const struct hp_router *r, enum hp_http_method method, struct hp_str path,
                       struct hp_route_match *m)
{
    const struct fnode *n;

    if ((unsigned)method > HP_HTTP_PATCH)
        return -EINVAL;
    n = r->fast_id[method]; /* never NULL: see hp__route_fast_init() */
    if (path.len == 0 || *path.ptr != '/')
        return match_id_full(r, (unsigned)method, path, m);
    m->rest.ptr = path.ptr; /* parked for the full walk (see fast_walk()) */
    m->allow = (uint32_t)method;
    return fast_walk(n, path.ptr + 1, (uintptr_t)path.ptr + path.len - 7, m->values, m, true);
}
