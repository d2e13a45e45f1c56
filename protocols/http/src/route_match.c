/*
 * route_match.c - hp_router_match(): a depth-first walk of the frozen tree
 * in precedence order (static edge, regex children, parameter, catch-all),
 * backtracking when a branch fails deeper. Every tree node is reached by
 * one way only and the path position there is fixed, so a lookup visits
 * each node at most once: the cost is bounded by the table, never by the
 * path's shape. The walk reads the tree and writes only the caller's match
 * struct: no allocation, no lock, any number of threads.
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

struct walk {
    const char *end;
    struct hp_route_match *m;
    unsigned slot;
    bool path_hit; /* some route had the path but not the method */
    bool bad;      /* a catch-all remainder was refused (400) */
    uint32_t allow;
};

static const struct iroute *walk(const struct rnode *n, const char *p, struct walk *w);

/* The route of a leaf for the request's method: its own, GET for HEAD, any. */
static const struct iroute *pick(const struct rleaf *lf, struct walk *w)
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

/* The static edge whose label is the segment at @p s, if any. */
static const struct redge *find_edge(const struct rnode *n, const char *s, const char *end)
{
    size_t left = (size_t)(end - s);
    unsigned c = left ? (unsigned char)*s : 0;
    const struct redge *e = n->st, *last = n->st + n->nst;

    if (n->idx != NULL) {
        if (c >= 128 || n->idx[c] == 0)
            return NULL;
        e += n->idx[c] - 1;
    }
    for (; e < last; e++) {
        if (e->first != c) {
            if (n->idx != NULL)
                return NULL; /* sorted: past this byte's edges */
            continue;
        }
        if (e->len <= left && memcmp(s, e->label, e->len) == 0 &&
            (e->len == left || s[e->len] == '/'))
            return e;
        if (n->idx == NULL)
            continue;
    }
    return NULL;
}

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
    if (rt->kind == R_MOUNT_ROUTER) {
        const struct iroute *sub = walk(rt->sub->root, p, w);
        /* Only the sub-router's own result counts as the path's methods. */
        return sub;
    }
    if (rt->kind == R_MOUNT_HANDLER) {
        w->m->rest = (struct hp_str){p, (size_t)(w->end - p)};
        return rt;
    }
    w->m->values[n->pdepth] = (struct hp_str){p + 1, (size_t)(w->end - p - 1)};
    return rt;
}

/* @p p is the end of the path or the '/' before the next segment. */
static const struct iroute *walk(const struct rnode *n, const char *p, struct walk *w)
{
    const struct iroute *rt;
    const char *s, *q;

    if (p == w->end)
        return n->leaf != NULL ? pick(n->leaf, w) : NULL;
    s = p + 1;
    if (n->nst != 0) {
        const struct redge *e = find_edge(n, s, w->end);
        if (e != NULL && (rt = walk(e->child, s + e->len, w)) != NULL)
            return rt;
    }
    if (n->nrx != 0 || n->param != NULL) {
        q = memchr(s, '/', (size_t)(w->end - s));
        if (q == NULL)
            q = w->end;
        /* Parameters are never empty and never dot-segments. */
        if (q > s && !((*s == '.' || *s == '%') && hp__route_dot_segment(s, (size_t)(q - s)))) {
            struct hp_str v = {s, (size_t)(q - s)};
            for (uint32_t i = 0; i < n->nrx; i++) {
                if (!hp__route_regex_ok(&n->rx[i].re, s, v.len))
                    continue;
                w->m->values[n->pdepth] = v;
                if ((rt = walk(n->rx[i].child, q, w)) != NULL)
                    return rt;
            }
            if (n->param != NULL) {
                w->m->values[n->pdepth] = v;
                if ((rt = walk(n->param, q, w)) != NULL)
                    return rt;
            }
        }
    }
    if (n->catchall != NULL)
        return take_rest(n, p, w);
    return NULL;
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
        if (walk(r->root, p, &w2) != NULL)
            return HP_ROUTE_REDIRECT_DEL_SLASH;
        return 0;
    }
    if (len + 1 > sizeof(buf))
        return 0;
    memcpy(buf, p, len);
    buf[len] = '/';
    w2.end = buf + len + 1;
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

int hp__router_match_slot(const struct hp_router *r, unsigned slot, struct hp_str path,
                          struct hp_route_match *m)
{
    struct walk w = {.end = path.ptr + path.len, .m = m, .slot = slot};
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
    if ((rt = walk(r->root, path.ptr, &w)) != NULL)
        return found(m, rt);
    if (w.path_hit)
        collect_allow(r, &w, path);
    return miss(r, &w, path);
}

int hp_router_match(const struct hp_router *r, struct hp_str method, struct hp_str path,
                    struct hp_route_match *m)
{
    return hp__router_match_slot(r, hp__route_slot(r, method.ptr, method.len), path, m);
}
