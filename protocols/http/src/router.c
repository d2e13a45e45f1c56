/*
 * router.c - building a router: routes are parsed, checked against every
 * route already added (conflicts are refused here, so that the lookup's
 * first match in precedence order is the only right answer), inserted into
 * the tree, and the tree is frozen: chains of single static edges are
 * joined into one label, edges sorted by first byte and indexed. After
 * hp_router_freeze() nothing here writes to the router again.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route_internal.h"

static const char *const std_methods[M_STD] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
};

void *hp__route_alloc(const struct hp_router *r, size_t n)
{
    return hp__route_realloc(r, NULL, n);
}

void *hp__route_realloc(const struct hp_router *r, void *p, size_t n)
{
    if (r->alloc.realloc != NULL)
        return r->alloc.realloc(r->alloc.ctx, p, n);
    return realloc(p, n);
}

void hp__route_free(const struct hp_router *r, void *p)
{
    if (p == NULL)
        return;
    if (r->alloc.free != NULL)
        r->alloc.free(r->alloc.ctx, p);
    else
        free(p);
}

HP_PRINTF(2, 3) static void fail(struct hp_router *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

unsigned hp__route_slot(const struct hp_router *r, const char *m, size_t len)
{
    unsigned slot = hp__route_slot_std(m, len);

    for (unsigned i = 0; slot == M_OTHER && i < r->ncustom; i++) {
        if (strlen(r->custom[i]) == len && memcmp(r->custom[i], m, len) == 0)
            return M_STD + i;
    }
    return slot;
}

const char *hp__route_slot_name(const struct hp_router *r, unsigned slot)
{
    if (slot < M_STD)
        return std_methods[slot];
    if (slot - M_STD < r->ncustom)
        return r->custom[slot - M_STD];
    return NULL;
}

/* The slot for a new route's method, registering a custom token. */
static int method_slot(struct hp_router *r, const char *method, unsigned *slot)
{
    size_t len;
    char *copy;

    if (method == NULL || strcmp(method, "*") == 0) {
        *slot = M_ANY;
        return 0;
    }
    len = strlen(method);
    for (size_t i = 0; i < len; i++) {
        if (!is_tchar((unsigned char)method[i]))
            len = 0;
    }
    if (len == 0 || len > 32) {
        fail(r, "method \"%s\" is not a token", method);
        return -EINVAL;
    }
    if ((*slot = hp__route_slot(r, method, len)) != M_OTHER)
        return 0;
    if (r->ncustom == M_OTHER - M_STD) {
        fail(r, "method \"%s\": more than %d custom methods", method, M_OTHER - M_STD);
        return -EINVAL;
    }
    if ((copy = hp__route_alloc(r, len + 1)) == NULL)
        return -ENOMEM;
    memcpy(copy, method, len + 1);
    *slot = M_STD + r->ncustom;
    r->custom[r->ncustom++] = copy;
    return 0;
}

int hp_router_new(struct hp_router **out, const struct hp_router_opts *opts)
{
    struct hp_router_opts o = opts != NULL ? *opts : (struct hp_router_opts){0};
    struct hp_router tmp = {.alloc = o.alloc};
    struct hp_router *r;

    if ((r = hp__route_alloc(&tmp, sizeof(*r))) == NULL)
        return -ENOMEM;
    memset(r, 0, sizeof(*r));
    r->opts = o;
    r->alloc = o.alloc;
    hp__route_fast_init(r);
    if ((r->root = hp__route_alloc(r, sizeof(*r->root))) == NULL) {
        hp__route_free(r, r);
        return -ENOMEM;
    }
    memset(r->root, 0, sizeof(*r->root));
    *out = r;
    return 0;
}

static void node_free(const struct hp_router *r, struct rnode *n)
{
    if (n == NULL)
        return;
    for (uint32_t i = 0; i < n->nst; i++) {
        hp__route_free(r, n->st[i].label);
        node_free(r, n->st[i].child);
    }
    for (uint32_t i = 0; i < n->nrx; i++) {
        regfree(&n->rx[i].re);
        hp__route_free(r, n->rx[i].src);
        node_free(r, n->rx[i].child);
    }
    node_free(r, n->param);
    hp__route_free(r, n->st);
    hp__route_free(r, (void *)n->idx);
    hp__route_free(r, n->rx);
    hp__route_free(r, n->leaf);
    hp__route_free(r, n->catchall);
    hp__route_free(r, n);
}

void hp_router_free(struct hp_router *r)
{
    struct iroute *rt, *next;

    if (r == NULL)
        return;
    hp__route_fast_free(r);
    node_free(r, r->root);
    for (rt = r->routes; rt != NULL; rt = next) {
        next = rt->next;
        hp__route_free(r, rt);
    }
    for (unsigned i = 0; i < r->ncustom; i++)
        hp__route_free(r, r->custom[i]);
    hp__route_free(r, r);
}

const char *hp_router_error(const struct hp_router *r)
{
    return r->err;
}

/* ---- conflicts --------------------------------------------------------- */

static bool same_text(struct hp_str a, struct hp_str b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/*
 * Could a request match both @p a and @p b without the precedence rule
 * choosing one? Walk the segments left to right: a difference in kind
 * decides (no conflict), two different static texts make them disjoint (no
 * conflict), two different regexes cannot be ordered (keep looking for a
 * disjoint segment). Patterns of different lengths are disjoint unless a
 * catch-all decided first.
 */
static bool conflicts(const struct iroute *a, const struct iroute *b, const char **why)
{
    bool unordered = false;
    unsigned i;

    for (i = 0; i < a->nsegs && i < b->nsegs; i++) {
        const struct rseg *x = &a->segs[i], *y = &b->segs[i];
        if (x->kind != y->kind)
            return false;
        if (x->kind == SEG_STATIC && !same_text(x->text, y->text))
            return false;
        if (x->kind == SEG_REGEX && !same_text(x->re, y->re))
            unordered = true;
        if (x->kind == SEG_CATCHALL)
            break;
    }
    if (i < a->nsegs && i < b->nsegs) { /* both at a catch-all */
        *why = unordered ? "constraints can match the same segment" : "the same paths";
        return true;
    }
    if (a->nsegs != b->nsegs)
        return false;
    *why = unordered ? "constraints can match the same segment" : "the same paths";
    return true;
}

static int check_conflicts(struct hp_router *r, const struct iroute *nr)
{
    const char *why = NULL;
    const struct iroute *o;

    for (o = r->routes; o != NULL; o = o->next) {
        if (o->slot != nr->slot || !conflicts(nr, o, &why))
            continue;
        fail(r, "%s %s conflicts with %s %s (%s)", nr->pub.method ? nr->pub.method : "*",
             nr->pub.pattern, o->pub.method ? o->pub.method : "*", o->pub.pattern, why);
        return -EEXIST;
    }
    if (nr->pub.name == NULL)
        return 0;
    if ((o = hp__route_named(r, nr->pub.name, NULL, NULL)) != NULL) {
        fail(r, "route name \"%s\" is taken by %s", nr->pub.name, o->pub.pattern);
        return -EEXIST;
    }
    return 0;
}

const struct iroute *hp__route_named(const struct hp_router *r, const char *name,
                                     const struct iroute **mounts, unsigned *depth)
{
    unsigned d = depth != NULL ? *depth : 0;

    for (const struct iroute *o = r->routes; o != NULL; o = o->next) {
        if (o->pub.name != NULL && strcmp(o->pub.name, name) == 0)
            return o;
    }
    /* Mounted routers are frozen before they are mounted: no cycles. */
    for (const struct iroute *o = r->routes; o != NULL; o = o->next) {
        const struct iroute *found;
        unsigned dd = d + 1;
        if (o->kind != R_MOUNT_ROUTER || d == ROUTE_MAX_MOUNTS)
            continue;
        if ((found = hp__route_named(o->sub, name, mounts, &dd)) != NULL) {
            if (mounts != NULL)
                mounts[d] = o;
            if (depth != NULL)
                *depth = dd;
            return found;
        }
    }
    return NULL;
}

/* Would mounting @p sub in @p r make one name mean two routes? */
static int check_mount_names(struct hp_router *r, const struct hp_router *sub, const char *prefix,
                             unsigned depth)
{
    for (const struct iroute *o = sub->routes; o != NULL; o = o->next) {
        const struct iroute *taken;
        int rc;
        if (o->pub.name != NULL && (taken = hp__route_named(r, o->pub.name, NULL, NULL))) {
            fail(r, "mount \"%s\": route name \"%s\" (%s) is taken by %s", prefix, o->pub.name,
                 o->pub.pattern, taken->pub.pattern);
            return -EEXIST;
        }
        if (o->kind == R_MOUNT_ROUTER && depth + 1 < ROUTE_MAX_MOUNTS &&
            (rc = check_mount_names(r, o->sub, prefix, depth + 1)) != 0)
            return rc;
    }
    return 0;
}

/* ---- tree -------------------------------------------------------------- */

static struct rnode *node_new(const struct hp_router *r, uint8_t pdepth)
{
    struct rnode *n = hp__route_alloc(r, sizeof(*n));

    if (n != NULL) {
        memset(n, 0, sizeof(*n));
        n->pdepth = pdepth;
    }
    return n;
}

static struct rnode *static_child(const struct hp_router *r, struct rnode *n, struct hp_str t)
{
    struct redge *st, *e;

    for (uint32_t i = 0; i < n->nst; i++) {
        if (same_text((struct hp_str){n->st[i].label, n->st[i].len}, t))
            return n->st[i].child;
    }
    if (n->nst == UINT16_MAX)
        return NULL;
    if ((st = hp__route_realloc(r, n->st, (n->nst + 1) * sizeof(*st))) == NULL)
        return NULL;
    n->st = st;
    e = &st[n->nst];
    if ((e->label = hp__route_alloc(r, t.len + 1)) == NULL)
        return NULL;
    memcpy(e->label, t.ptr, t.len);
    e->label[t.len] = '\0';
    e->len = (uint32_t)t.len;
    e->first = (uint8_t)(t.len ? t.ptr[0] : 0);
    if ((e->child = node_new(r, n->pdepth)) == NULL) {
        hp__route_free(r, e->label);
        return NULL;
    }
    n->nst++;
    return e->child;
}

static struct rnode *regex_child(struct hp_router *r, struct rnode *n, const struct rseg *s,
                                 const char *pattern, int *err)
{
    struct rregex *rx, *x;
    int rc;

    for (uint32_t i = 0; i < n->nrx; i++) {
        if (same_text((struct hp_str){n->rx[i].src + 2, strlen(n->rx[i].src) - 4}, s->re))
            return n->rx[i].child;
    }
    if ((rx = hp__route_realloc(r, n->rx, (n->nrx + 1) * sizeof(*rx))) == NULL)
        return NULL;
    n->rx = rx;
    x = &rx[n->nrx];
    /* Anchored: "^(" re ")$", so the whole segment has to match. */
    if ((x->src = hp__route_alloc(r, s->re.len + 5)) == NULL)
        return NULL;
    snprintf(x->src, s->re.len + 5, "^(%.*s)$", (int)s->re.len, s->re.ptr);
    if ((rc = regcomp(&x->re, x->src, REG_EXTENDED | REG_NOSUB)) != 0) {
        char msg[96];
        regerror(rc, NULL, msg, sizeof(msg));
        fail(r, "pattern \"%s\": regex \"%.*s\": %s", pattern, (int)s->re.len, s->re.ptr, msg);
        hp__route_free(r, x->src);
        *err = rc == REG_ESPACE ? -ENOMEM : -EINVAL;
        return NULL;
    }
    if ((x->child = node_new(r, (uint8_t)(n->pdepth + 1))) == NULL) {
        regfree(&x->re);
        hp__route_free(r, x->src);
        return NULL;
    }
    n->nrx++;
    return x->child;
}

static struct rleaf **leaf_slot(struct rnode *n, bool catchall)
{
    return catchall ? &n->catchall : &n->leaf;
}

/*
 * Insert @p rt. On failure the nodes created on the way stay (empty), which
 * is harmless: they match nothing.
 */
static int insert(struct hp_router *r, struct iroute *rt)
{
    struct rnode *n = r->root;
    struct rleaf **lf;
    bool catchall = false;
    int err = -ENOMEM;

    for (unsigned i = 0; i < rt->nsegs && n != NULL; i++) {
        const struct rseg *s = &rt->segs[i];
        if (s->kind == SEG_STATIC) {
            n = static_child(r, n, s->text);
        } else if (s->kind == SEG_REGEX) {
            n = regex_child(r, n, s, rt->pub.pattern, &err);
        } else if (s->kind == SEG_PARAM) {
            if (n->param == NULL)
                n->param = node_new(r, (uint8_t)(n->pdepth + 1));
            n = n->param;
        } else {
            catchall = true;
        }
    }
    if (n == NULL)
        return err;
    lf = leaf_slot(n, catchall);
    if (*lf == NULL) {
        if ((*lf = hp__route_alloc(r, sizeof(**lf))) == NULL)
            return -ENOMEM;
        memset(*lf, 0, sizeof(**lf));
    }
    (*lf)->by[rt->slot] = rt;
    (*lf)->mask |= 1u << rt->slot;
    rt->node = n;
    return 0;
}

/* ---- adding ------------------------------------------------------------ */

static struct iroute *route_new(struct hp_router *r, const char *name, const char *method,
                                const char *pattern, int *nsegs)
{
    struct rseg segs[ROUTE_MAX_SEGS];
    size_t pl = strlen(pattern) + 1, ml = method ? strlen(method) + 1 : 0;
    size_t nl = name ? strlen(name) + 1 : 0;
    struct iroute *rt;
    char *t;

    if ((*nsegs = hp__route_parse(pattern, segs, r->err, sizeof(r->err))) < 0)
        return NULL;
    rt = hp__route_alloc(r, sizeof(*rt) + pl + ml + nl + (size_t)*nsegs * sizeof(struct rseg) + 8);
    if (rt == NULL) {
        *nsegs = -ENOMEM;
        return NULL;
    }
    memset(rt, 0, sizeof(*rt));
    t = rt->text;
    rt->pub.pattern = memcpy(t, pattern, pl);
    t += pl;
    if (method != NULL && strcmp(method, "*") != 0)
        rt->pub.method = memcpy(t, method, ml);
    t += ml;
    if (name != NULL)
        rt->pub.name = memcpy(t, name, nl);
    t += nl;
    /* The segments are views into the pattern: rebase them on the copy. */
    rt->segs = (struct rseg *)(void *)(rt->text + ((size_t)(t - rt->text) + 7) / 8 * 8);
    for (int i = 0; i < *nsegs; i++) {
        rt->segs[i] = segs[i];
        rt->segs[i].text.ptr = rt->pub.pattern + (segs[i].text.ptr - pattern);
        if (segs[i].kind == SEG_REGEX)
            rt->segs[i].re.ptr = rt->pub.pattern + (segs[i].re.ptr - pattern);
        if (segs[i].kind != SEG_STATIC)
            rt->names[rt->nparams++] = rt->segs[i].text;
    }
    rt->nsegs = (uint8_t)*nsegs;
    return rt;
}

static int add(struct hp_router *r, const char *name, const char *method, const char *pattern,
               hp_http_handler *handler, void *data, int kind, const struct hp_router *sub)
{
    struct iroute *rt;
    unsigned slot;
    int rc;

    r->err[0] = '\0';
    if (r->frozen) {
        fail(r, "the router is frozen");
        return -EBUSY;
    }
    if (pattern == NULL) {
        fail(r, "no pattern");
        return -EINVAL;
    }
    if ((rc = method_slot(r, method, &slot)) != 0)
        return rc;
    if ((rt = route_new(r, name, method, pattern, &rc)) == NULL)
        return rc;
    rt->slot = (uint8_t)slot;
    rt->kind = (uint8_t)kind;
    if (kind != R_HANDLER)
        rt->nparams = 0; /* a mount's {rest...} is hp_route_rest(), not a parameter */
    rt->sub = sub;
    rt->pub.handler = handler;
    rt->pub.data = data;
    if ((rc = check_conflicts(r, rt)) != 0 || (rc = insert(r, rt)) != 0) {
        hp__route_free(r, rt);
        return rc;
    }
    if (r->last != NULL)
        r->last->next = rt;
    else
        r->routes = rt;
    r->last = rt;
    if (slot != M_ANY)
        r->all_mask |= 1u << slot;
    return 0;
}

int hp_router_add(struct hp_router *r, const char *method, const char *pattern,
                  hp_http_handler *handler, void *data)
{
    return add(r, NULL, method, pattern, handler, data, R_HANDLER, NULL);
}

int hp_router_add_named(struct hp_router *r, const char *name, const char *method,
                        const char *pattern, hp_http_handler *handler, void *data)
{
    return add(r, name, method, pattern, handler, data, R_HANDLER, NULL);
}

/* "/prefix" + "/{rest...}", for a static prefix. */
static int mount(struct hp_router *r, const char *prefix, hp_http_handler *handler, void *data,
                 int kind, const struct hp_router *sub)
{
    char pat[1024];
    size_t len = prefix ? strlen(prefix) : 0;

    r->err[0] = '\0';
    if (len < 2 || prefix[0] != '/' || prefix[len - 1] == '/' || strchr(prefix, '{') != NULL ||
        len > sizeof(pat) - 16) {
        fail(r, "mount prefix \"%s\": a static path without a trailing slash",
             prefix ? prefix : "");
        return -EINVAL;
    }
    snprintf(pat, sizeof(pat), "%s/{rest...}", prefix);
    return add(r, NULL, NULL, pat, handler, data, kind, sub);
}

int hp_router_mount(struct hp_router *r, const char *prefix, const struct hp_router *sub)
{
    int rc;

    if (sub == NULL || !sub->frozen) {
        fail(r, "mount \"%s\": the router to mount must be frozen", prefix ? prefix : "");
        return -EINVAL;
    }
    if (!r->frozen && (rc = check_mount_names(r, sub, prefix ? prefix : "", 0)) != 0)
        return rc;
    return mount(r, prefix, NULL, NULL, R_MOUNT_ROUTER, sub);
}

int hp_router_mount_handler(struct hp_router *r, const char *prefix, hp_http_handler *handler,
                            void *data)
{
    return mount(r, prefix, handler, data, R_MOUNT_HANDLER, NULL);
}

/* ---- freezing ---------------------------------------------------------- */

static int edge_cmp(const void *a, const void *b)
{
    const struct redge *x = a, *y = b;

    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return strcmp(x->label, y->label);
}

/* Join e's label with its child's only edge while the child holds nothing else. */
static int compress(const struct hp_router *r, struct redge *e)
{
    for (;;) {
        struct rnode *c = e->child;
        struct redge *ce;
        char *label;
        if (c->nst != 1 || c->nrx || c->param || c->leaf || c->catchall)
            return 0;
        ce = &c->st[0];
        if ((label = hp__route_alloc(r, e->len + 1 + ce->len + 1)) == NULL)
            return -ENOMEM;
        memcpy(label, e->label, e->len);
        label[e->len] = '/';
        memcpy(label + e->len + 1, ce->label, ce->len + 1);
        hp__route_free(r, e->label);
        hp__route_free(r, ce->label);
        e->label = label;
        e->len += 1 + ce->len;
        e->child = ce->child;
        hp__route_free(r, c->st);
        hp__route_free(r, c);
    }
}

/* The edge's head word and mask: label bytes, then the '/' after a short label. */
static void edge_head(struct redge *e)
{
    size_t n = e->len < 8 ? e->len : 8;
    unsigned char head[8] = {0}, mask[8] = {0};

    /* Bytes, then memcpy: the words compare with loads of the path on any byte order. */
    memcpy(head, e->label, n);
    memset(mask, 0xff, n);
    if (n < 8) {
        head[n] = '/';
        mask[n] = 0xff;
    }
    memcpy(&e->head, head, 8);
    memcpy(&e->mask, mask, 8);
    if (n < 8)
        mask[n] = 0;
    memcpy(&e->mask_end, mask, 8);
}

/* Put edge @p i in the bucket of segment word @p v (chained in edge order). */
static void index_put(struct rnode *n, uint32_t i, const unsigned char *b)
{
    uint64_t v;
    const struct redge **k;

    memcpy(&v, b, 8);
    for (k = &n->idx[hp__route_hash2(v)]; *k != NULL; k = &n->st[*k - n->st].hnext)
        if (*k == &n->st[i])
            return;
    *k = &n->st[i];
}

/*
 * The hashed index of a node's edges by the first two bytes of the
 * segment. A one-byte label is filed under both ways its segment can look:
 * followed by '/', or ending the path (then the word's second byte is 0).
 */
static int build_index(const struct hp_router *r, struct rnode *n)
{
    if ((n->idx = hp__route_alloc(r, 256 * sizeof(*n->idx))) == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < 256; i++)
        n->idx[i] = NULL;
    for (uint32_t i = 0; i < n->nst; i++) {
        const struct redge *e = &n->st[i];
        unsigned char b[8] = {0};
        n->st[i].hnext = NULL;
        if (e->len >= 2) {
            memcpy(b, e->label, 2);
            index_put(n, i, b);
        } else if (e->len == 1) {
            b[0] = (unsigned char)e->label[0];
            b[1] = '/';
            index_put(n, i, b);
            b[1] = 0;
            index_put(n, i, b);
        } else {
            index_put(n, i, b); /* the empty label: the path ends with '/' */
        }
    }
    return 0;
}

static int freeze_node(const struct hp_router *r, struct rnode *n)
{
    int rc;

    for (uint32_t i = 0; i < n->nst; i++) {
        if ((rc = compress(r, &n->st[i])) != 0 || (rc = freeze_node(r, n->st[i].child)) != 0)
            return rc;
    }
    for (uint32_t i = 0; i < n->nrx; i++) {
        if ((rc = freeze_node(r, n->rx[i].child)) != 0)
            return rc;
    }
    if (n->param != NULL && (rc = freeze_node(r, n->param)) != 0)
        return rc;
    if (n->nst > 1)
        qsort(n->st, n->nst, sizeof(*n->st), edge_cmp);
    for (uint32_t i = 0; i < n->nst; i++)
        edge_head(&n->st[i]);
    if (n->nrx != 0 || n->catchall != NULL)
        n->kind = K_COMPLEX;
    else if (n->nst != 0)
        n->kind = n->param != NULL ? K_MIXED : K_STATIC;
    else
        n->kind = n->param != NULL ? K_PARAM : K_END;
    if (n->nst > 2 && n->idx == NULL)
        return build_index(r, n);
    return 0;
}

int hp_router_freeze(struct hp_router *r)
{
    int rc;

    r->err[0] = '\0';
    if (r->frozen)
        return 0;
    /* Re-running after -ENOMEM is fine: compressing and indexing are idempotent. */
    if ((rc = freeze_node(r, r->root)) != 0 || (rc = hp__route_fast_build(r)) != 0)
        return rc;
    r->frozen = true;
    return 0;
}
