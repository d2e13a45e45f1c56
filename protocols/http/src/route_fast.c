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

/* One node, its table, its other edges and its labels in one block. */
struct fblock {
    struct fnode n;
    uint8_t complex;            /* routes the greedy walk cannot reach: never joined away */
    const struct fedge **edges; /* its nst edges, wherever they are */
    struct fedge tbl[];         /* slots, chained edges, then edges[] and the labels */
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
        fnode_free(r, b->edges[i]->child);
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

/* The slot of @p key in a table of 1 << @p bits (<= 12) slots: as route_match.c computes it. */
static unsigned bucket(uint64_t key, uint64_t mult, unsigned bits)
{
    return (unsigned)(((key * mult) >> FNODE_HASH_SHIFT) & ((1u << bits) - 1));
}

/* Odd multipliers to try (splitmix64 of the attempt). */
static uint64_t mult_of(unsigned t)
{
    uint64_t z = 0x9e3779b97f4a7c15u * (t + 1);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (z ^ (z >> 31)) | 1;
}

/* Pairs of different keys in one slot for table size 1 << bits. */
static uint32_t collisions(const struct tedge *te, uint32_t n, uint64_t mult, unsigned bits)
{
    uint32_t c = 0;

    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < i; j++) {
            if (te[i].len != 0 && te[j].len != 0 && te[i].key != te[j].key &&
                bucket(te[i].key, mult, bits) == bucket(te[j].key, mult, bits))
                c++;
        }
    }
    return c;
}

/* The smallest table and a multiplier with no shared slot, or the least shared. */
static void table_shape(const struct tedge *te, uint32_t n, unsigned *bits, uint64_t *mult)
{
    unsigned lo = 1;
    uint32_t best = UINT32_MAX;

    while ((1u << lo) < n)
        lo++;
    for (unsigned k = lo; k <= lo + 3 && k <= 12 && best != 0; k++) {
        for (unsigned t = 0; t < 64 && best != 0; t++) {
            uint32_t c = collisions(te, n, mult_of(t), k);
            if (c < best) {
                best = c;
                *bits = k;
                *mult = mult_of(t);
            }
        }
    }
}

static void fill_edge(struct fedge *e, const char *label, size_t len, const struct fnode *child)
{
    bool slow;

    memset(e, 0, sizeof(*e));
    e->label = label;
    e->head = label_word(label, len, len < 8 ? len + 1 : 8, &e->hmask);
    /* fedge_slow() for labels over 23 bytes (three words), and for short
     * ones ending with '/' (the full tree joins "dir" and the empty label
     * into "dir/"), whose head could match the end's padding; from 8 bytes
     * on the word that ends with the '/' after the label is compared, and
     * it is within the path or the label does not match. */
    slow = len > 23 || (len > 0 && len < 8 && label[len - 1] == '/');
    if (len >= 8 && !slow) { /* its last 7 bytes and the '/' after them */
        memcpy(&e->tailw, label + len - 7, 7);
        ((unsigned char *)&e->tailw)[7] = '/';
    }
    if (len >= 16 && !slow)
        memcpy(&e->midw, label + 8, 8);
    e->len = (uint32_t)len;
    e->adv = slow ? FEDGE_SLOW : (uint32_t)len + 1;
    e->child = child;
}

/* An empty slot: its head "matches" anything, then its adv nothing. */
static void fill_empty(struct fedge *e)
{
    memset(e, 0, sizeof(*e));
    e->len = UINT32_MAX;
    e->adv = FEDGE_NONE;
}

/* The table of nodes with neither hashed edges nor a parameter: one empty slot. */
static const struct fedge no_edge = {.len = UINT32_MAX, .adv = FEDGE_NONE};

/* The node block for @p n's parts (labels copied, @p te's buffers freed by the caller). */
static struct fnode *assemble(const struct hp_router *r, const struct rnode *n,
                              const struct iroute *leaf, const struct fnode *param, bool complex,
                              struct tedge *te, uint32_t nst)
{
    size_t nlab = 0, kb = 8, nidx = 0, nslot = 0, off;
    unsigned bits = 0;
    uint64_t kmask = 0, mult = 1;
    struct fblock *b;
    struct fedge *over;
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
    if (nidx != 0) {
        table_shape(te, nst, &bits, &mult);
        nslot = (size_t)1 << bits;
    }
    /* slots, then room for every edge off the table (chained, or the empty one) */
    off = sizeof(*b) + (nslot + nst) * sizeof(struct fedge);
    b = hp__route_alloc(r, off + nst * sizeof(*b->edges) + nlab);
    if (b == NULL)
        return NULL;
    memset(b, 0, sizeof(*b));
    b->n.leaf = leaf;
    b->n.param = param;
    b->n.pdepth = n->pdepth;
    b->n.nst = (uint16_t)nst;
    b->n.r = r;
    b->complex = complex;
    b->edges = (const struct fedge **)(void *)((char *)b + off);
    lab = (char *)b + off + nst * sizeof(*b->edges);
    over = b->tbl + nslot;
    if (nslot != 0) {
        b->n.tbl = b->tbl;
        b->n.kmask = kmask;
        b->n.mult = mult;
        b->n.smask = (((uint64_t)1 << bits) - 1) * (sizeof(struct fedge) == 64 ? 64 : 1);
        for (size_t i = 0; i < nslot; i++)
            fill_empty(&b->tbl[i]);
    } else if (param == NULL) {
        b->n.tbl = &no_edge; /* kmask and smask 0: slot 0, a miss */
    }
    for (uint32_t i = 0; i < nst; i++) {
        size_t len = te[i].len;
        struct fedge *e, *slot;
        memcpy(lab, te[i].label, len);
        lab[len] = '\0';
        if (len == 0) {
            e = over++;
            b->n.empty = e;
        } else if ((slot = &b->tbl[bucket(te[i].key, mult, bits)])->label == NULL) {
            e = slot; /* the slot's first edge */
        } else {      /* shared: chained after it */
            while (slot->hnext != NULL)
                slot = (struct fedge *)(uintptr_t)slot->hnext;
            e = over++;
            slot->hnext = e;
        }
        fill_edge(e, lab, len, te[i].child);
        b->edges[i] = e;
        lab += len + 1;
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
        te[nst] = (struct tedge){.len = e->len, .child = c};
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
            const struct fedge *ce = cb->n.nst == 1 ? cb->edges[0] : NULL;
            char *l;
            if (cb->n.leaf != NULL || cb->n.param != NULL || cb->complex || ce == NULL ||
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

/*
 * Every lookup has a tree to walk: where there is none (a method without
 * routes, a router not frozen), the empty one, which matches nothing, so
 * that the walk gives up to the full walk at once (no test on the way in).
 */
void hp__route_fast_init(struct hp_router *r)
{
    r->none = (struct fnode){.tbl = &no_edge, .r = r};
    for (unsigned s = 0; s <= M_OTHER; s++)
        r->fast[s] = r->fast_std[s] = &r->none;
    for (unsigned id = 0; id <= HP_HTTP_PATCH; id++)
        r->fast_id[id] = &r->none;
}

void hp__route_fast_free(struct hp_router *r)
{
    for (unsigned s = 0; s <= M_OTHER; s++) {
        if (r->fast_own & (1u << s))
            fnode_free(r, r->fast[s]);
    }
    r->fast_own = 0;
    hp__route_fast_init(r);
}

int hp__route_fast_build(struct hp_router *r)
{
    for (unsigned s = 0; s <= M_OTHER; s++) {
        int err = 0;
        const struct fnode *t;
        /* A slot without routes of its own (HEAD has GET's) takes what any method takes. */
        if (s != M_OTHER && !(r->all_mask & (1u << s)) &&
            !(s == M_HEAD && (r->all_mask & (1u << M_GET))))
            continue;
        t = build(r, r->root, s, &err);
        if (err != 0) {
            hp__route_fast_free(r);
            return err;
        }
        if (t != NULL) {
            r->fast[s] = t;
            r->fast_own |= 1u << s;
        }
    }
    for (unsigned s = 0; s < M_OTHER; s++) {
        if (!(r->fast_own & (1u << s)) && !(r->all_mask & (1u << s)))
            r->fast[s] = r->fast[M_OTHER];
    }
    /* HP_HTTP_OTHER on a router with methods of its own is refused: the empty tree, and the
     * full walk's way in says -EINVAL (route_match.c) */
    for (unsigned id = 0; id <= HP_HTTP_PATCH; id++) {
        unsigned s = hp__route_slot_id(id);
        r->fast_id[id] = s == M_OTHER && r->ncustom != 0 ? &r->none : r->fast[s];
    }
    /* A token that is no standard method may be one of the router's own: NULL, not here. */
    for (unsigned s = 0; s <= M_OTHER; s++)
        r->fast_std[s] = s == M_OTHER && r->ncustom != 0 ? NULL : r->fast[s];
    return 0;
}
