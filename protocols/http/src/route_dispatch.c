/*
 * route_dispatch.c - hp_router_dispatch(): a lookup for a request, written
 * into the request block itself (rq->rm: the parameters outlive the
 * handler call, for as long as the request is held; escaped values are
 * decoded into its arena), then the route's handler or one of the router's
 * own answers (400, 404, 405 with Allow, OPTIONS, redirects). rq->route
 * points at rq->rm once a route was found (NULL when a request starts);
 * nothing else here touches the server.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "route_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The dispatched request's lookup, or NULL. */
static const struct hp_route_match *found_of(const struct hp_http_req *req)
{
    return hp__http_rq((struct hp_http_req *)(uintptr_t)req)->route;
}

/* A method token the parser has no enum value for (out of line: rare). */
__attribute__((noinline)) static unsigned token_slot(struct hp_http_req *req)
{
    return hp__route_slot(hp__http_rq(req)->rm_router, req->method.ptr, req->method.len);
}

/*
 * The slot of the request's method, from the parser's enum where it knows
 * it; rq->rm_router is the router.
 */
static unsigned req_slot(struct hp_http_req *req)
{
    unsigned id = (unsigned)req->method_id;

    if (id != HP_HTTP_OTHER && id <= HP_HTTP_PATCH)
        return hp__route_slot_id(id);
    return token_slot(req);
}

/* Out of line: its buffer would cost the hot caller a stack frame. */
__attribute__((noinline)) static int reply_text(struct hp_http_req *req, int status)
{
    const char *reason = hp_http_status_reason(status);
    char body[64];
    size_t n = strlen(reason);

    if (n > sizeof(body) - 2)
        n = sizeof(body) - 2;
    memcpy(body, reason, n);
    body[n++] = '\n';
    (void)hp_http_reply(req, status, HP_STR_LIT("text/plain"), body, n);
    return 0; /* the reply finished the request, whatever it returned */
}

static int answer(struct hp_http_req *req, hp_http_handler *custom, int status)
{
    return custom != NULL ? custom(req) : reply_text(req, status);
}

static int add_allow(const struct hp_router *r, struct hp_http_req *req, uint32_t allow)
{
    char buf[512];
    int n = hp_router_allow(r, allow, buf, sizeof(buf));

    if (n < 0)
        return n;
    return hp_http_add_header(req, HP_STR_LIT("Allow"), (struct hp_str){buf, (size_t)n});
}

/* 301 for GET and HEAD, 308 otherwise, to the fixed path with the query kept. */
static int redirect(struct hp_http_req *req, unsigned slot, const struct hp_route_match *m)
{
    struct hp_str path = req->path, q = req->query;
    size_t n;
    char *loc = hp_http_req_alloc(req, path.len + 2 + q.len);
    int len;

    if (loc == NULL)
        return -ENOMEM;
    if (m->redirect == HP_ROUTE_REDIRECT_CLEAN) {
        if ((len = hp_router_clean_path(path, loc, path.len + 1)) < 0)
            return len;
        n = (size_t)len;
    } else {
        n = m->redirect == HP_ROUTE_REDIRECT_DEL_SLASH ? path.len - 1 : path.len;
        memcpy(loc, path.ptr, n);
        if (m->redirect == HP_ROUTE_REDIRECT_ADD_SLASH)
            loc[n++] = '/';
    }
    if (q.len > 0) {
        loc[n++] = '?';
        memcpy(loc + n, q.ptr, q.len);
        n += q.len;
    }
    (void)hp_http_redirect(req, slot == M_GET || slot == M_HEAD ? 301 : 308,
                           (struct hp_str){loc, n});
    return 0; /* finished, whatever it returned */
}

/* One 8-byte word's '%' bytes (nonzero iff there is one: exact up to the first). */
static uint64_t pct_bits(const char *p)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t v;

    memcpy(&v, p, 8);
    v ^= ones * '%';
    return (v - ones) & ~v & highs;
}

/*
 * Is there a '%' in [a, b)? Straight-line for the usual short span of a
 * request's values (no call): with SSE2 two 16-byte blocks up to 32 bytes
 * (overlapping), longer spans in more; below 16 bytes two 8-byte words
 * (overlapping), below 8 byte by byte. Nothing is read outside the span.
 */
static bool has_pct(const char *a, const char *b)
{
    ptrdiff_t n = b - a; /* b < a (never so) checks nothing */

#if defined(__SSE2__)
    if (n >= 16) {
        const __m128i pc = _mm_set1_epi8('%');
        __m128i acc = _mm_cmpeq_epi8(_mm_loadu_si128((const void *)(b - 16)), pc);
        if (n > 32) {
            if (n > 64)
                return memchr(a, '%', (size_t)n) != NULL; /* n > 0 */
            for (; n > 32; a += 16, n -= 16)
                acc = _mm_or_si128(acc, _mm_cmpeq_epi8(_mm_loadu_si128((const void *)a), pc));
        }
        acc = _mm_or_si128(acc, _mm_cmpeq_epi8(_mm_loadu_si128((const void *)a), pc));
        return _mm_movemask_epi8(acc) != 0;
    }
#else
    if (n > 64)
        return memchr(a, '%', (size_t)n) != NULL; /* n > 0 */
    for (; n > 16; a += 8, n -= 8) {
        if (pct_bits(a) != 0)
            return true;
    }
#endif
    if (n >= 8)
        return (pct_bits(a) | pct_bits(b - 8)) != 0;
    for (; a < b; a++) {
        if (*a == '%')
            return true;
    }
    return false;
}

/*
 * The found route's values with escapes decoded, in place, into the arena
 * (the rest stay views into the path), then its handler. Out of line: the
 * usual request has none.
 */
__attribute__((noinline)) static int run_escaped(const struct hp_router *r, struct hp_http_req *req)
{
    struct hp_route_match *m = &hp__http_rq(req)->rm;

    hp__http_rq(req)->route = NULL;
    for (unsigned i = 0; i < m->nparams; i++) {
        struct hp_str v = m->values[i];
        char *buf;
        int len;
        if (v.len == 0 || memchr(v.ptr, '%', v.len) == NULL)
            continue;
        if ((buf = hp_http_req_alloc(req, v.len)) == NULL)
            return -ENOMEM;
        if ((len = hp_route_decode(v, buf, v.len)) < 0)
            return answer(req, r->opts.bad_request, 400); /* malformed, or a NUL */
        m->values[i] = (struct hp_str){buf, (size_t)len};
    }
    hp__http_rq(req)->route = m;
    if (m->route->handler == NULL)
        return reply_text(req, 501);
    return m->route->handler(req);
}

/*
 * Everything but a route found: the router's own answers. The slot is
 * looked up again (cheap) so that the caller keeps fewer registers.
 */
__attribute__((noinline)) static int not_found(const struct hp_router *r, struct hp_http_req *req,
                                               int res)
{
    const struct hp_route_match *m = &hp__http_rq(req)->rm;
    unsigned slot = req_slot(req);

    hp__http_rq(req)->route = NULL;
    switch (res) {
    case HP_ROUTE_NOT_FOUND:
        return answer(req, r->opts.not_found, 404);
    case HP_ROUTE_NOT_ALLOWED:
        (void)add_allow(r, req, m->allow);
        return answer(req, r->opts.method_not_allowed, 405);
    case HP_ROUTE_OPTIONS:
        (void)add_allow(r, req, m->allow);
        (void)hp_http_reply(req, 204, HP_STR_LIT(""), NULL, 0);
        return 0;
    case HP_ROUTE_REDIRECT:
        return redirect(req, slot, m);
    case HP_ROUTE_BAD_REQUEST:
        return answer(req, r->opts.bad_request, 400);
    default:
        return res;
    }
}

/*
 * The lookup writes straight into the request block (rq->rm), which lives
 * as long as the request: a value without '%' stays a view into the
 * request's path (which keeps its bytes until the request is finished),
 * nothing is copied or allocated. One look for '%' over the span of the
 * values spares the usual case the look per value.
 */
int hp_router_dispatch(const struct hp_router *r, struct hp_http_req *req)
{
    struct req_blk *rq = hp__http_rq(req);
    unsigned slot;
    int res;
    hp_http_handler *h;
    unsigned n;

    /* The router and the route in memory, not in registers kept across the
     * calls: only the slow paths need the router again, and they reset
     * rq->route. */
    rq->rm_router = r;
    slot = req_slot(req);
    rq->route = &rq->rm;
    res = hp__router_match_slot(rq->rm_router, slot, req->path, &rq->rm);
    if (res != HP_ROUTE_FOUND)
        return not_found(rq->rm_router, req, res);
    /* the values are in path order: one look from the first to the last */
    n = rq->rm.nparams;
    if (n != 0 &&
        has_pct(rq->rm.values[0].ptr, rq->rm.values[n - 1].ptr + rq->rm.values[n - 1].len))
        return run_escaped(rq->rm_router, req);
    if ((h = rq->rm.route->handler) == NULL)
        return reply_text(req, 501);
    return h(req);
}

/* ---- the dispatched request's route ------------------------------------ */

bool hp_route_param(const struct hp_http_req *req, const char *name, struct hp_str *value)
{
    const struct hp_route_match *m = found_of(req);
    size_t len = strlen(name);

    for (unsigned i = 0; m != NULL && i < m->nparams; i++) {
        struct hp_str nm = m->names[i];
        if (nm.len == len && memcmp(nm.ptr, name, len) == 0) {
            *value = m->values[i];
            return true;
        }
    }
    return false;
}

size_t hp_route_param_count(const struct hp_http_req *req)
{
    const struct hp_route_match *m = found_of(req);

    return m != NULL ? m->nparams : 0;
}

bool hp_route_param_at(const struct hp_http_req *req, size_t i, struct hp_str *name,
                       struct hp_str *value)
{
    const struct hp_route_match *m = found_of(req);

    if (m == NULL || i >= m->nparams)
        return false;
    if (name != NULL)
        *name = m->names[i];
    if (value != NULL)
        *value = m->values[i];
    return true;
}

const struct hp_route *hp_route_of(const struct hp_http_req *req)
{
    const struct hp_route_match *m = found_of(req);

    return m != NULL ? m->route : NULL;
}

struct hp_str hp_route_rest(const struct hp_http_req *req)
{
    const struct hp_route_match *m = found_of(req);

    /* (the lookup sets only the length of an absent rest) */
    return m != NULL && m->rest.len != 0 ? m->rest : (struct hp_str){"", 0};
}
