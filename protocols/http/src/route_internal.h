/*
 * route_internal.h - the router's tables, shared by its files (never
 * installed). Files and who calls whom (one way):
 *   route_pattern.c  parses pattern text into segments (no router state)
 *   router.c         the public build API: routes, conflicts, the tree, freeze
 *   route_fast.c     at freeze: the per-method lookup trees (struct fnode)
 *   route_match.c    hp_router_match(): the lookup, read-only on a frozen tree
 *   route_url.c      percent-decoding, path cleaning, reverse URLs
 *   route_dispatch.c hp_router_dispatch() and the request's parameters
 *
 * The tree: one node per position after a segment. A node has static
 * edges (labels of one or, after freezing, several segments joined by '/'),
 * regex-constrained parameter children, one plain parameter child, and two
 * leaves: routes that end at the node, and catch-all routes (and mounts)
 * that take the rest of the path after it. A leaf holds one route per
 * method slot plus one for any method.
 */
#ifndef HP_ROUTE_INTERNAL_H
#define HP_ROUTE_INTERNAL_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>
#include <hellepoll/router.h>

/* Method slots: the nine standard methods, then tokens a router registers. */
enum {
    M_GET,
    M_HEAD,
    M_POST,
    M_PUT,
    M_DELETE,
    M_OPTIONS,
    M_PATCH,
    M_CONNECT,
    M_TRACE,
    M_STD,        /* first custom slot */
    M_OTHER = 30, /* a method no route names: only "any" routes take it */
    M_ANY = 31,   /* the "any method" slot of a leaf */
    M_SLOTS = 32,
};

/* Segment kinds, in precedence order (lower wins). */
enum { SEG_STATIC, SEG_REGEX, SEG_PARAM, SEG_CATCHALL };

#define ROUTE_MAX_SEGS     64
#define ROUTE_MAX_MOUNTS   16  /* routers mounted in mounted routers: names seen this deep */
#define ROUTE_MAX_REGEX_IN 255 /* longest decoded segment a constraint is tried on */

struct rseg {
    uint8_t kind;
    struct hp_str text; /* static text, or the parameter's name */
    struct hp_str re;   /* SEG_REGEX: the constraint's source */
};

/* What a route does when it matches. */
enum { R_HANDLER, R_MOUNT_HANDLER, R_MOUNT_ROUTER };

struct iroute {
    struct hp_route pub; /* first: hp_route_match.route points here */
    struct hp_str names[HP_ROUTE_MAX_PARAMS];
    struct rseg *segs; /* in the same allocation */
    uint8_t nsegs;
    uint8_t nparams;
    uint8_t slot; /* method slot, or M_ANY */
    uint8_t kind; /* R_* */
    const struct hp_router *sub;
    struct rnode *node; /* where the route ends (its regexes: along the way) */
    struct iroute *next;
    char text[]; /* pattern, method and name copies */
};

struct rleaf {
    const struct iroute *by[M_SLOTS];
    uint32_t mask; /* bit per slot that has a route (M_ANY included) */
};

struct redge {
    /*
     * Frozen: the label's first 8 bytes, and for shorter labels the '/'
     * that must follow them, as a little-endian word and the mask of the
     * bytes that count (see find_edge() in route_match.c).
     */
    uint64_t head, mask, mask_end; /* mask_end: without the '/' (label ends the path) */
    uint32_t len;
    const struct redge *hnext; /* frozen, indexed nodes: next edge in the same idx bucket */
    uint8_t first;             /* label[0], or 0 for the empty label (a trailing slash) */
    char *label;
    struct rnode *child;
};

struct rregex {
    regex_t re;
    char *src;
    struct rnode *child;
};

/* What a frozen node offers beyond its leaf (route_match.c switches on it). */
enum node_kind {
    K_END,     /* nothing: the path must end here */
    K_STATIC,  /* static edges only */
    K_PARAM,   /* a plain parameter only */
    K_MIXED,   /* static edges and a plain parameter */
    K_COMPLEX, /* regex children or a catch-all: the general case */
};

struct rnode {
    uint8_t kind;             /* frozen: enum node_kind, what the lookup has to try here */
    uint8_t pdepth;           /* parameters before this node's children */
    uint16_t nst;             /* static edges */
    uint32_t nrx;             /* regex children */
    const struct redge **idx; /* frozen, more than 2 edges: hp__route_hash2() -> first edge */
    struct redge *st;
    struct rnode *param;
    struct rleaf *leaf;     /* routes ending here */
    struct rleaf *catchall; /* routes taking the rest after here */
    struct rregex *rx;
};

/*
 * The per-method lookup trees (route_fast.c builds them when freezing,
 * route_match.c walks them first). The tree of slot S is the tree above
 * with every subtree pruned that holds no route S can take (its own, GET's
 * for HEAD, any method's), chains of single edges joined again, and each
 * leaf reduced to the one route S takes there. The walk on it is greedy:
 * the static edge if one matches, else the plain parameter; it never
 * backtracks, and gives up (NULL) wherever that could be wrong: a dead end,
 * a node whose regex children come before its parameter (param is NULL
 * then), or catch-alls. A greedy walk that reaches a route has followed the
 * first branch of the full walk at every node, so it finds what the full
 * walk finds; when it gives up, the full walk runs.
 *
 * Static edges are found by hashing the segment's first bytes: as many as
 * every label of the node has before its first '/' plus that '/' (the
 * node's kmask; at most 8), read from the path with its end reading as
 * '/', into a per-node power-of-two table of edges; the multiplier and size
 * are chosen when freezing so that different keys do not share a slot
 * where possible (others are chained, and so are labels with equal keys).
 * An edge matches if the path's 8 bytes agree with the label and the '/'
 * after it (head, hmask); labels of 8 to 23 bytes also compare the 8
 * bytes that end with the '/' after them (tailw, read from the pad at the
 * path's end), and from 16 bytes bytes 8 to 15 (midw); longer ones and
 * short ones ending in '/' (FEDGE_SLOW) the rest, out of line
 * (fedge_slow(), which also follows the slot's chain beyond its second
 * edge). The common hit is one masked compare and an advance (adv, the
 * length + 1) of at most 8. Empty slots match any word and then nothing
 * (FEDGE_NONE). The empty label (a trailing slash) is not hashed: it is
 * the node's "empty" edge, tried after a miss.
 */
struct fedge {
    uint64_t head, hmask; /* the label's first 8 bytes with the '/' after it */
    const struct fnode *child;
    uint32_t adv;              /* len + 1, or FEDGE_SLOW, FEDGE_NONE */
    uint32_t len;              /* ~0 in an empty slot */
    uint64_t tailw;            /* 8 to 23 bytes: the label's last 7 and the '/' after them */
    const struct fedge *hnext; /* the next edge with the same slot */
    const char *label;
    uint64_t midw; /* 16 to 23 bytes: bytes 8 to 15 (64 bytes: a slot is a shift away) */
};

#define FEDGE_SLOW 255 /* adv of a label only fedge_slow() matches: over 23 bytes, "dir/" */
#define FEDGE_NONE 254 /* adv of an empty slot: matches nothing */

/* A slot is bits 52.. of (word & kmask) * mult, at most 4096 slots of 64 bytes. */
#define FNODE_HASH_SHIFT 52

/*
 * A node. tbl is NULL only where the node has no hashed edge but has a
 * parameter (the walk goes straight to it); nodes with neither get a
 * one-slot table that matches nothing (route_fast.c).
 */
struct fnode {
    const struct fedge *tbl;   /* the hashed edges, see above */
    uint64_t kmask, mult;      /* slot: ((word & kmask) * mult >> 52) & (slots - 1) */
    uint64_t smask;            /* slots - 1, times 64 where a slot is 64 bytes (byte offset) */
    const struct fnode *param; /* the plain parameter, when the walk may take it */
    const struct iroute *leaf; /* the route the slot takes where the path ends here */
    const struct fedge *empty; /* the empty label's edge, or NULL */
    const struct hp_router *r; /* its router: what the full walk needs, when the walk gives up */
    uint16_t nst;
    uint8_t pdepth;
};

struct hp_router {
    struct rnode *root;
    /* Frozen: the lookup tree per slot (M_OTHER: any-method routes), or &none. */
    const struct fnode *fast[M_OTHER + 1];
    uint32_t fast_own; /* slots whose tree is their own (the rest share M_OTHER's) */
    /* fast[] by enum hp_http_method (&none for HP_HTTP_OTHER with methods of the router's own). */
    const struct fnode *fast_id[HP_HTTP_PATCH + 1];
    /* fast[] for hp__route_slot_std(): [M_OTHER] NULL on a router with methods of its own. */
    const struct fnode *fast_std[M_OTHER + 1];
    struct fnode none; /* the empty tree: where a slot has none (see hp__route_fast_init()) */
    struct hp_router_opts opts;
    struct hp_allocator alloc;
    struct iroute *routes, *last;
    uint32_t all_mask; /* every slot used, for OPTIONS * */
    bool frozen;
    uint8_t ncustom;
    char *custom[M_OTHER - M_STD];
    char err[256];
};

/*
 * The bucket of a segment in a node's edge index: its first two bytes (the
 * second is '/' or, at the end of the path, 0 for a one-byte segment), from
 * the segment word (route_match.c: the path's bytes in memory order).
 */
static inline unsigned hp__route_hash2(uint64_t v)
{
    uint32_t two;
    unsigned char b[8];

    memcpy(b, &v, 8);
    two = (uint32_t)b[0] | (uint32_t)b[1] << 8;
    return (unsigned)((two * 0x9e3779b1u) >> 24);
}

/* Build (freezing), free and (new router) start the per-method trees. @return 0 or -ENOMEM. */
int hp__route_fast_build(struct hp_router *r);
void hp__route_fast_free(struct hp_router *r);
void hp__route_fast_init(struct hp_router *r);

/* Allocation through the router's allocator. */
void *hp__route_alloc(const struct hp_router *r, size_t n);
void *hp__route_realloc(const struct hp_router *r, void *p, size_t n);
void hp__route_free(const struct hp_router *r, void *p);

/*
 * Parse @p pattern into @p segs (views into @p pattern).
 * @return the number of segments, or -EINVAL with a message in @p err.
 */
int hp__route_parse(const char *pattern, struct rseg *segs, char *err, size_t errlen);

/* The slot of a standard method token, or M_OTHER (memcmp of constants: word compares). */
static inline unsigned hp__route_slot_std(const char *m, size_t len)
{
    if (len == 3 && memcmp(m, "GET", 3) == 0) /* the common case first: two compares */
        return M_GET;
    switch (len) {
    case 3:
        return memcmp(m, "PUT", 3) == 0 ? M_PUT : M_OTHER;
    case 4:
        return memcmp(m, "POST", 4) == 0 ? M_POST : memcmp(m, "HEAD", 4) == 0 ? M_HEAD : M_OTHER;
    case 5:
        return memcmp(m, "PATCH", 5) == 0   ? M_PATCH
               : memcmp(m, "TRACE", 5) == 0 ? M_TRACE
                                            : M_OTHER;
    case 6:
        return memcmp(m, "DELETE", 6) == 0 ? M_DELETE : M_OTHER;
    case 7:
        return memcmp(m, "OPTIONS", 7) == 0   ? M_OPTIONS
               : memcmp(m, "CONNECT", 7) == 0 ? M_CONNECT
                                              : M_OTHER;
    default:
        return M_OTHER;
    }
}

/* The slot of an enum hp_http_method (HP_HTTP_OTHER: M_OTHER); @p id <= HP_HTTP_PATCH. */
static inline unsigned hp__route_slot_id(unsigned id)
{
    static const uint8_t by_id[HP_HTTP_PATCH + 1] = {
        [HP_HTTP_OTHER] = M_OTHER,     [HP_HTTP_GET] = M_GET,         [HP_HTTP_HEAD] = M_HEAD,
        [HP_HTTP_POST] = M_POST,       [HP_HTTP_PUT] = M_PUT,         [HP_HTTP_DELETE] = M_DELETE,
        [HP_HTTP_OPTIONS] = M_OPTIONS, [HP_HTTP_CONNECT] = M_CONNECT, [HP_HTTP_TRACE] = M_TRACE,
        [HP_HTTP_PATCH] = M_PATCH,
    };

    return by_id[id];
}

/* The slot of a method token: standard, registered custom, or M_OTHER. */
unsigned hp__route_slot(const struct hp_router *r, const char *m, size_t len);

/* The full walk alone (no per-method tree): what the greedy walk must agree with. */
int hp__router_match_full(const struct hp_router *r, unsigned slot, struct hp_str path,
                          struct hp_route_match *m);

/* hp_router_match() with the method's slot already known. */
int hp__router_match_slot(const struct hp_router *r, unsigned slot, struct hp_str path,
                          struct hp_route_match *m);

/*
 * The route named @p name in @p r, or in a router mounted in it (at most
 * ROUTE_MAX_MOUNTS deep, own names first, then mounts in the order added),
 * or NULL. @p mounts (may be NULL) gets the mount routes on the way,
 * outermost first, and *@p depth (may be NULL; 0 on the way in) their number.
 */
const struct iroute *hp__route_named(const struct hp_router *r, const char *name,
                                     const struct iroute **mounts, unsigned *depth);

/* The token of a slot ("GET", a custom one), or NULL. */
const char *hp__route_slot_name(const struct hp_router *r, unsigned slot);

/*
 * Does the decoded segment @p s match the anchored constraint @p re?
 * false for segments that are malformed or longer than ROUTE_MAX_REGEX_IN.
 */
bool hp__route_regex_ok(const regex_t *re, const char *s, size_t len);

/* Is the raw segment [s, s+len) "." or ".." (with '.' possibly as %2e)? */
bool hp__route_dot_segment(const char *s, size_t len);

/* How clean a catch-all or mount remainder is. */
enum { REST_OK, REST_UNCLEAN, REST_BAD };

/*
 * Check a remainder that starts after a '/' (a catch-all value): no empty
 * segment but a final one, no dot-segment raw or %2e-encoded (REST_UNCLEAN:
 * cleaning fixes it), no malformed escape and no dot-segment made by a
 * decoded %2F or %5C (REST_BAD: 400).
 */
int hp__route_rest_check(const char *s, size_t len);

/* Is there a malformed percent escape in [s, s+len)? */
bool hp__route_bad_escape(const char *s, size_t len);

/* Would hp_router_clean_path() change @p path? */
bool hp__route_unclean(const char *s, size_t len);

#endif
