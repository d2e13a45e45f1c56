/*
 * route_dispatch.c - hp_router_dispatch(): a lookup for a request, its
 * parameters decoded into the request's arena (so they outlive the handler
 * call, for as long as the request is held), then the route's handler or
 * one of the router's own answers (400, 404, 405 with Allow, OPTIONS,
 * redirects). The request block keeps one pointer to the state (rq->route,
 * reset when a request starts); nothing else here touches the server.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "route_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static const struct rstate *state_of(const struct hp_http_req *req)
{
    return (const struct rstate *)hp__http_rq((struct hp_http_req *)(uintptr_t)req)->route;
}

/* The slot of the request's method, from the parser's enum where it knows it. */
static unsigned req_slot(const struct hp_router *r, const struct hp_http_req *req)
{
    unsigned id = (unsigned)req->method_id;

    if (id != HP_HTTP_OTHER && id <= HP_HTTP_PATCH)
        return hp__route_slot_id(id);
    return hp__route_slot(r, req->method.ptr, req->method.len);
}

static int reply_text(struct hp_http_req *req, int status)
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
 * request's values (no call): 16-byte blocks with SSE2, else 8-byte words,
 * the last one overlapping, nothing read outside.
 */
static bool has_pct(const char *a, const char *b)
{
    size_t n = b > a ? (size_t)(b - a) : 0;

    if (n < 8) {
        for (; a < b; a++) {
            if (*a == '%')
                return true;
        }
        return false;
    }
    if (n > 64)
        return memchr(a, '%', n) != NULL;
#if defined(__SSE2__)
    if (n >= 16) {
        const __m128i pc = _mm_set1_epi8('%');
        int acc = 0;
        for (; n > 16; a += 16, n -= 16)
            acc |= _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const void *)a), pc));
        acc |= _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const void *)(b - 16)), pc));
        return acc != 0;
    }
#endif
    for (; n > 8; a += 8, n -= 8) {
        if (pct_bits(a) != 0)
            return true;
    }
    return pct_bits(b - 8) != 0;
}

/*
 * Decode the values of @p m with escapes into the arena, the rest as views.
 * @return 0, -ENOMEM, or 1 for a malformed one.
 */
__attribute__((noinline)) static int
decode_values(struct hp_http_req *req, const struct hp_route_match *m, struct hp_str *vals)
{
    for (unsigned i = 0; i < m->nparams; i++) {
        struct hp_str v = m->values[i];
        char *buf;
        int len;
        if (v.len == 0 || memchr(v.ptr, '%', v.len) == NULL) {
            vals[i] = v;
            continue;
        }
        if ((buf = hp_http_req_alloc(req, v.len)) == NULL)
            return -ENOMEM;
        if ((len = hp_route_decode(v, buf, v.len)) < 0)
            return 1;
        vals[i] = (struct hp_str){buf, (size_t)len};
    }
    return 0;
}

/*
 * Store the parameters in the request and run the route's handler. A value
 * without '%' stays a view into the request's path (which keeps its bytes
 * until the request is finished); only escaped ones are decoded, into the
 * arena. One look for '%' over the span of the values spares the usual
 * case the look per value. A route without parameters and rest uses its
 * own state: nothing allocated.
 */
static int run(const struct hp_router *r, struct hp_http_req *req, const struct hp_route_match *m)
{
    const struct iroute *rt = (const struct iroute *)(const void *)m->route;
    unsigned n = m->nparams;
    struct rstate *st;
    struct hp_str *vals;
    bool escaped;
    int rc;

    if (n == 0 && m->rest.len == 0) {
        hp__http_rq(req)->route = &rt->st0;
        goto call;
    }
    st = hp_http_req_alloc(req, sizeof(*st) + n * sizeof(struct hp_str));
    if (st == NULL)
        return -ENOMEM;
    vals = (struct hp_str *)(void *)(st + 1);
    /* the values are in path order: one look from the first to the last */
    escaped = n != 0 && has_pct(m->values[0].ptr, m->values[n - 1].ptr + m->values[n - 1].len);
    st->route = rt;
    st->rest = m->rest;
    st->values = vals;
    st->n = n;
    if (!escaped) {
        for (unsigned i = 0; i < n; i++)
            vals[i] = m->values[i];
    } else if ((rc = decode_values(req, m, vals)) != 0) {
        return rc < 0 ? rc : answer(req, r->opts.bad_request, 400); /* malformed, or a NUL */
    }
    hp__http_rq(req)->route = st;
call:
    if (rt->pub.handler == NULL)
        return reply_text(req, 501);
    return rt->pub.handler(req);
}

int hp_router_dispatch(const struct hp_router *r, struct hp_http_req *req)
{
    struct hp_route_match m;
    unsigned slot = req_slot(r, req);
    int res = hp__router_match_slot(r, slot, req->path, &m);

    hp__http_rq(req)->route = NULL;
    switch (res) {
    case HP_ROUTE_FOUND:
        return run(r, req, &m);
    case HP_ROUTE_NOT_FOUND:
        return answer(req, r->opts.not_found, 404);
    case HP_ROUTE_NOT_ALLOWED:
        (void)add_allow(r, req, m.allow);
        return answer(req, r->opts.method_not_allowed, 405);
    case HP_ROUTE_OPTIONS:
        (void)add_allow(r, req, m.allow);
        (void)hp_http_reply(req, 204, HP_STR_LIT(""), NULL, 0);
        return 0;
    case HP_ROUTE_REDIRECT:
        return redirect(req, slot, &m);
    case HP_ROUTE_BAD_REQUEST:
        return answer(req, r->opts.bad_request, 400);
    default:
        return res;
    }
}

/* ---- the dispatched request's route ------------------------------------ */

bool hp_route_param(const struct hp_http_req *req, const char *name, struct hp_str *value)
{
    const struct rstate *st = state_of(req);
    size_t len = strlen(name);

    for (unsigned i = 0; st != NULL && i < st->n; i++) {
        struct hp_str nm = st->route->names[i];
        if (nm.len == len && memcmp(nm.ptr, name, len) == 0) {
            *value = st->values[i];
            return true;
        }
    }
    return false;
}

size_t hp_route_param_count(const struct hp_http_req *req)
{
    const struct rstate *st = state_of(req);

    return st != NULL ? st->n : 0;
}

bool hp_route_param_at(const struct hp_http_req *req, size_t i, struct hp_str *name,
                       struct hp_str *value)
{
    const struct rstate *st = state_of(req);

    if (st == NULL || i >= st->n)
        return false;
    if (name != NULL)
        *name = st->route->names[i];
    if (value != NULL)
        *value = st->values[i];
    return true;
}

const struct hp_route *hp_route_of(const struct hp_http_req *req)
{
    const struct rstate *st = state_of(req);

    return st != NULL ? &st->route->pub : NULL;
}

struct hp_str hp_route_rest(const struct hp_http_req *req)
{
    const struct rstate *st = state_of(req);

    return st != NULL ? st->rest : (struct hp_str){"", 0};
}
