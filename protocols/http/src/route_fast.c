/*
 * route_fast.c - the per-method lookup trees (struct fnode, see
 * route_internal.h), built from the frozen tree by hp_router_freeze() and
 * walked first by route_match.c. Each is a pruned copy of the tree for one
 * method slot: only subtrees with a route that slot can take, single-edge
 * chains joined, one route per leaf, static edges hashed by segment key.
 * Nodes where a greedy walk could go wrong (regex children before the
 * parameter, catch-alls, mounts) are kept, marked, and never joined away,
 * so that the walk gives up there and the full walk decides.
 */
#include <errno.h>
#include <string.h>

#include "route_internal.h"

/* One node, its edges, its bucket table and its labels in one block. */
struct fblock {
    struct fnode n;
    uint8_t complex;    /* routes the greedy walk cannot reach: never joined away */
    struct fedge *st;   /* nst edges, after this header */
    struct fedge st0[]; /* the edges, then idx, then the labels */
};

/* The route of leaf @p lf that slot @p slot takes (as pick() in route_match.c). */
static const struct iroute *take(const struct rleaf *lf, unsigned slot)
{
    const struct iroute *rt;

    if (lf == NULL)
        return NULL;
    rt = slot < M_OTHER ? lf->by[slot] : NULL;
    if (rt == NULL && slot == M_HEAD)
        rt = lf->by[M_GET];
    return rt != NULL ? rt : lf->by[M_ANY];
}

/* Is there a route @p slot can take anywhere below @p n? */
static bool has_route(const struct rnode *n, unsigned slot)
{
    if (n == NULL)
        return false;
    if (take(n->leaf, slot) != NULL || take(n->catchall, slot) != NULL)
        return true;
    for (uint32_t i = 0; i < n->nst; i++) {
        if (has_route(n->st[i].child, slot))
            return true;
    }
    for (uint32_t i = 0; i < n->nrx; i++) {
        if (has_route(n->rx[i].child, slot))
            return true;
    }
    return has_route(n->param, slot);
}

static void fnode_free(const struct hp_router *r, const struct fnode *n)
{
    const struct fblock *b = (const struct fblock *)(const void *)n;

    if (n == NULL)
        return;
    for (uint32_t i = 0; i < n->nst; i++)
        fnode_free(r, b->st[i].child);
    fnode_free(r, n->param);
    hp__route_free(r, (void *)(uintptr_t)b);
}

/* An edge while its node is built: the label in a buffer of its own. */
struct tedge {
    char *label;
    size_t len;
    uint64_t key;
    const struct fnode *child;
};

/* How many bytes of a segment word the label's key can use: see route_internal.h. */
static size_t key_bytes(const char *label, size_t len)
{
    const char *sl = memchr(label, '/', len);
    size_t comp = sl != NULL ? (size_t)(sl - label) : len;

    return comp < 8 ? comp + 1 : 8;
}

/* The first @p n bytes of label + "/" (zero-padded) as a word, and their mask. */
static uint64_t label_word(const char *label, size_t len, size_t n, uint64_t *mask)
{
    unsigned char b[9] = {0}, m[8] = {0};
    uint64_t v;

    memcpy(b, label, len < 8 ? len : 8);
    if (len < 8)
        b[len] = '/';
    memset(m, 0xff, n);
    memcpy(&v, b, 8);
    memcpy(mask, m, 8);
    return v & *mask;
}

static unsigned bucket(uint64_t key, unsigned shift)
{
    return (unsigned)((key * FAST_MULT) >> shift);
}

/* The smallest table (bits) with no two different keys in one bucket, or the least shared. */
static unsigned table_bits(const struct tedge *te, uint32_t n)
{
    unsigned lo = 1, best = 1;
    uint32_t best_c = UINT32_MAX;

    while ((1u << lo) < n)
        lo++;
    for (unsigned k = lo; k <= lo + 3 && k <= 12; k++) {
        uint32_t c = 0;
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t j = 0; j < i; j++) {
                if (te[i].len != 0 && te[j].len != 0 && te[i].key != te[j].key &&
                    bucket(te[i].key, 64 - k) == bucket(te[j].key, 64 - k))
                    c++;
            }
        }
        if (c < best_c) {
            best_c = c;
            best = k;
        }
        if (c == 0)
            break;
    }
    return best;
}

/* The node block for @p n's parts (labels copied, @p te's buffers freed by the caller). */
static struct fnode *assemble(const struct hp_router *r, const struct rnode *n,
                              const struct iroute *leaf, const struct fnode *param, bool complex,
                              struct tedge *te, uint32_t nst)
{
    size_t nlab = 0, off, kb = 8, nidx = 0;
    unsigned bits = 0;
    uint64_t kmask = 0;
    struct fblock *b;
    const struct fedge **idx;
    char *lab;

    for (uint32_t i = 0; i < nst; i++) {
        size_t k = key_bytes(te[i].label, te[i].len);
        if (te[i].len != 0 && k < kb)
            kb = k;
        nlab += te[i].len + 1;
        nidx += te[i].len != 0;
    }
    for (uint32_t i = 0; i < nst; i++)
        te[i].key = label_word(te[i].label, te[i].len, kb, &kmask);
    if (nidx != 0)
        bits = table_bits(te, nst);
    off = sizeof(*b) + nst * sizeof(struct fedge);
    b = hp__route_alloc(r, off + (nidx ? (sizeof(*idx) << bits) : 0) + nlab);
    if (b == NULL)
        return NULL;
    memset(b, 0, sizeof(*b));
    b->n.leaf = leaf;
    b->n.param = param;
    b->n.pdepth = n->pdepth;
    b->n.nst = (uint16_t)nst;
    b->complex = complex;
    b->st = b->st0;
    idx = (const struct fedge **)(void *)((char *)b + off);
    lab = (char *)b + off + (nidx ? (sizeof(*idx) << bits) : 0);
    if (nidx != 0) {
        b->n.idx = idx;
        b->n.kmask = kmask;
        b->n.shift = (uint8_t)(64 - bits);
        for (size_t i = 0; i < ((size_t)1 << bits); i++)
            idx[i] = NULL;
    }
    for (uint32_t i = 0; i < nst; i++) {
        struct fedge *e = &b->st[i];
        size_t len = te[i].len;
        const struct fedge **k;
        memcpy(lab, te[i].label, len);
        lab[len] = '\0';
        e->label = lab;
        lab += len + 1;
        e->head = label_word(e->label, len, len < 8 ? len + 1 : 8, &e->hmask);
        e->slow = len >= 8;
        e->len = (uint32_t)len;
        e->child = te[i].child;
        e->hnext = NULL;
        if (len == 0) {
            b->n.empty = e;
            continue;
        }
        for (k = &idx[bucket(te[i].key, b->n.shift)]; *k != NULL; k = &b->st[*k - b->st].hnext)
            ;
        *k = e;
    }
    return &b->n;
}

/*
 * The tree of slot @p slot below @p n, or NULL: nothing for the slot there
 * (*err stays 0) or out of memory (*err = -ENOMEM).
 */
static struct fnode *build(const struct hp_router *r, const struct rnode *n, unsigned slot,
                           int *err)
{
    const struct iroute *leaf = take(n->leaf, slot);
    bool complex = take(n->catchall, slot) != NULL, regex = false;
    const struct fnode *param = NULL;
    struct tedge *te = NULL;
    struct fnode *out = NULL;
    uint32_t nst = 0;

    for (uint32_t i = 0; i < n->nrx && !regex; i++)
        regex = has_route(n->rx[i].child, slot);
    if (regex) {
        complex = true; /* regexes come before the parameter: no greedy parameter here */
    } else if (n->param != NULL && (param = build(r, n->param, slot, err)) == NULL && *err) {
        return NULL;
    }
    if (n->nst != 0 && (te = hp__route_alloc(r, n->nst * sizeof(*te))) == NULL)
        goto nomem;
    for (uint32_t i = 0; i < n->nst; i++) {
        const struct redge *e = &n->st[i];
        const struct fnode *c = build(r, e->child, slot, err);
        if (c == NULL) {
            if (*err)
                goto fail;
            continue;
        }
        te[nst].child = c;
        te[nst].len = e->len;
        if ((te[nst].label = hp__route_alloc(r, e->len + 1)) == NULL) {
            fnode_free(r, c);
            goto nomem;
        }
        memcpy(te[nst].label, e->label, e->len);
        nst++;
        /* Join the child into the edge while it only leads on through one edge. */
        for (;;) {
            struct tedge *t = &te[nst - 1];
            const struct fblock *cb = (const struct fblock *)(const void *)t->child;
            const struct fedge *ce = cb->st;
            char *l;
            if (cb->n.leaf != NULL || cb->n.param != NULL || cb->complex || cb->n.nst != 1 ||
                ce->len == 0)
                break;
            if ((l = hp__route_alloc(r, t->len + 1 + ce->len + 1)) == NULL)
                goto nomem;
            memcpy(l, t->label, t->len);
            l[t->len] = '/';
            memcpy(l + t->len + 1, ce->label, ce->len);
            hp__route_free(r, t->label);
            t->label = l;
            t->len += 1 + ce->len;
            t->child = ce->child;
            hp__route_free(r, (void *)(uintptr_t)cb);
        }
    }
    if (leaf == NULL && param == NULL && nst == 0 && !complex) {
        hp__route_free(r, te);
        return NULL;
    }
    if ((out = assemble(r, n, leaf, param, complex, te, nst)) == NULL)
        goto nomem;
    for (uint32_t i = 0; i < nst; i++)
        hp__route_free(r, te[i].label);
    hp__route_free(r, te);
    return out;
nomem:
    *err = -ENOMEM;
fail:
    for (uint32_t i = 0; i < nst; i++) {
        hp__route_free(r, te[i].label);
        fnode_free(r, te[i].child);
    }
    hp__route_free(r, te);
    fnode_free(r, param);
    return NULL;
}

void hp__route_fast_free(struct hp_router *r)
{
    for (unsigned s = 0; s <= M_OTHER; s++) {
        if (r->fast_own & (1u << s))
            fnode_free(r, r->fast[s]);
        r->fast[s] = NULL;
    }
    r->fast_own = 0;
}

int hp__route_fast_build(struct hp_router *r)
{
    for (unsigned s = 0; s <= M_OTHER; s++) {
        int err = 0;
        /* A slot without routes of its own (HEAD has GET's) takes what any method takes. */
        if (s != M_OTHER && !(r->all_mask & (1u << s)) &&
            !(s == M_HEAD && (r->all_mask & (1u << M_GET))))
            continue;
        r->fast[s] = build(r, r->root, s, &err);
        if (err != 0) {
            hp__route_fast_free(r);
            return err;
        }
        if (r->fast[s] != NULL)
            r->fast_own |= 1u << s;
    }
    for (unsigned s = 0; s < M_OTHER; s++) {
        if (!(r->fast_own & (1u << s)) && !(r->all_mask & (1u << s)))
            r->fast[s] = r->fast[M_OTHER];
    }
    return 0;
}
