/*
 * fuzz_router - hp_router_match() on arbitrary paths over a table with
 * every kind of segment (static, parameter, regex, catch-all, a mounted
 * router and handler, any-method routes). Checks: values are views inside
 * the path, decoding them either works or is refused, a clean-path
 * redirect leads to a path that is clean (and matching it never asks for
 * cleaning again), cleaning is idempotent, and the lookup (the greedy walk
 * on the per-method trees first) answers exactly what the full walk alone
 * answers: the table has static labels beside parameters, long, joined and
 * prefix-sharing labels, trailing slashes and backtracking cases for it.
 * Input: the first byte picks the method, the rest is the path.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/router.h>

#include "route_internal.h"

static struct hp_router *router, *sub;

static void add(struct hp_router *r, const char *m, const char *p)
{
    if (hp_router_add(r, m, p, NULL, NULL) != 0)
        abort();
}

static void build(void)
{
    static const char *const routes[][2] = {
        {"GET", "/"},
        {"GET", "/users"},
        {"GET", "/users/{id}"},
        {"DELETE", "/users/{id}"},
        {"GET", "/users/new"},
        {"GET", "/users/{id}/posts/{post:[0-9]+}"},
        {"GET", "/users/{id}/posts/{slug:[a-z-]+}/edit"},
        {"GET", "/static/{path...}"},
        {"PUT", "/files/{dir}/{rest...}"},
        {NULL, "/any/{x}"},
        {"GET", "/dir/"},
        {"GET", "/a/b/c/d/e/f"},
        {"PATCH", "/{a}/{b}/{c}"},
        {"GET", "/users/{id}/followers"},
        {"GET", "/users/new/x"},
        {"HEAD", "/users/{id}/followers"},
        {"GET", "/repos/{o}/{r}/subscribers"},
        {"GET", "/repos/{o}/{r}/subscription"},
        {"GET", "/repos/{o}/{r}/stargazers/and/more/than/sixteen"},
        {"GET", "/repos/{o}/{r}/statuses/{ref}"},
        {"GET", "/repos/{o}/{r}/s"},
        {"GET", "/repos/{o}/{r}/"},
        {"POST", "/repos/{o}/{r}"},
        {"GET", "/repos/{o}/x/y/z"},
        {"GET", "/abcdefgh"},
        {"GET", "/abcdefghi/{x}"},
        {"GET", "/abcdefghijklmnopq"},
        {"GET", "/abcdefghijklmnopr/"},
        {"GET", "/a"},
        {"GET", "/ab"},
        {"GET", "/ab/{x}"},
        {"OPTIONS", "/users/{id}"},
        /* Labels sharing a slot key (two, three), 7, 8, 15 and 16 bytes, beside a parameter. */
        {"GET", "/k/ab"},
        {"GET", "/k/abc1"},
        {"GET", "/k/abc2/{x}"},
        {"GET", "/k/abc3"},
        {"GET", "/k/abd1"},
        {"GET", "/k/abd2"},
        {"GET", "/k/0123456"},
        {"GET", "/k/01234567/{x}"},
        {"GET", "/k/0123456789abcde"},
        {"GET", "/k/0123456789abcdef"},
        {"GET", "/k/0123456789abcdefghijklm"},
        {"GET", "/k/0123456789abcdefghijklmn/{x}"},
        {"GET", "/k/0123456789abcdefghijklm/"},
        {"GET", "/k/{v}/z"},
        {"GET", "/k/{v}/0123456789abcde/"},
    };
    if (hp_router_new(&sub, NULL) != 0 || hp_router_new(&router, NULL) != 0)
        abort();
    add(sub, "GET", "/v1/{thing}");
    add(sub, "POST", "/v1/{thing}/{rest...}");
    if (hp_router_freeze(sub) != 0)
        abort();
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        add(router, routes[i][0], routes[i][1]);
    if (hp_router_mount(router, "/api", sub) != 0 ||
        hp_router_mount_handler(router, "/mnt", NULL, NULL) != 0 || hp_router_freeze(router) != 0)
        abort();
}

static bool inside(struct hp_str v, struct hp_str path)
{
    return v.len == 0 || (v.ptr >= path.ptr && v.ptr + v.len <= path.ptr + path.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET",    "HEAD",    "POST",  "PUT",
                                          "DELETE", "OPTIONS", "PATCH", "BREW"};
    struct hp_route_match m;
    struct hp_str path, method;
    char *buf, *buf2;
    int res, n, n2;

    if (router == NULL)
        build();
    if (size == 0)
        return 0;
    method = (struct hp_str){methods[data[0] & 7], strlen(methods[data[0] & 7])};
    path = (struct hp_str){(const char *)data + 1, size - 1};
    res = hp_router_match(router, method, path, &m);
    if (res < 0 || res > HP_ROUTE_BAD_REQUEST)
        abort();
    {
        struct hp_route_match f;
        int rf =
            hp__router_match_full(router, hp__route_slot(router, method.ptr, method.len), path, &f);
        if (rf != res || (res == HP_ROUTE_FOUND && (f.route != m.route || f.nparams != m.nparams ||
                                                    f.rest.len != m.rest.len ||
                                                    (m.rest.len != 0 && f.rest.ptr != m.rest.ptr))))
            abort(); /* the greedy walk disagrees with the full one */
        for (unsigned i = 0; res == HP_ROUTE_FOUND && i < m.nparams; i++) {
            if (f.values[i].ptr != m.values[i].ptr || f.values[i].len != m.values[i].len)
                abort();
        }
        if ((res == HP_ROUTE_NOT_ALLOWED || res == HP_ROUTE_OPTIONS) && f.allow != m.allow)
            abort();
        if (res == HP_ROUTE_REDIRECT && f.redirect != m.redirect)
            abort();
    }
    {
        /* The lookup by the parser's enum answers the same (BREW: HP_HTTP_OTHER). */
        static const enum hp_http_method ids[] = {HP_HTTP_GET,   HP_HTTP_HEAD,   HP_HTTP_POST,
                                                  HP_HTTP_PUT,   HP_HTTP_DELETE, HP_HTTP_OPTIONS,
                                                  HP_HTTP_PATCH, HP_HTTP_OTHER};
        struct hp_route_match e;
        int re = hp_router_match_id(router, ids[data[0] & 7], path, &e);
        if (re == -EINVAL && ids[data[0] & 7] == HP_HTTP_OTHER) {
            re = res; /* a router with methods of its own: refused, as documented */
            e = m;
        }
        if (re != res || (res == HP_ROUTE_FOUND && (e.route != m.route || e.nparams != m.nparams ||
                                                    e.rest.len != m.rest.len)))
            abort();
        for (unsigned i = 0; res == HP_ROUTE_FOUND && i < m.nparams; i++) {
            if (e.values[i].ptr != m.values[i].ptr || e.values[i].len != m.values[i].len)
                abort();
        }
        if ((res == HP_ROUTE_NOT_ALLOWED || res == HP_ROUTE_OPTIONS) && e.allow != m.allow)
            abort();
    }
    if ((buf = malloc(size + 1)) == NULL || (buf2 = malloc(size + 1)) == NULL)
        abort();
    if (res == HP_ROUTE_FOUND) {
        if (m.route == NULL || m.nparams > HP_ROUTE_MAX_PARAMS || !inside(m.rest, path))
            abort();
        for (unsigned i = 0; i < m.nparams; i++) {
            if (!inside(m.values[i], path))
                abort();
            n = hp_route_decode(m.values[i], buf, size);
            if (n < -1000 || n > (int)m.values[i].len)
                abort();
        }
    }
    n = hp_router_clean_path(path, buf, size + 1);
    if (path.len > 0 && path.ptr[0] == '/' && n < 0)
        abort();
    if (n >= 0) {
        n2 = hp_router_clean_path((struct hp_str){buf, (size_t)n}, buf2, size + 1);
        if (n2 != n || memcmp(buf, buf2, (size_t)n) != 0)
            abort(); /* idempotent */
        res = hp_router_match(router, method, (struct hp_str){buf, (size_t)n}, &m);
        if (res == HP_ROUTE_REDIRECT && m.redirect == HP_ROUTE_REDIRECT_CLEAN)
            abort(); /* the cleaned path is clean */
    }
    free(buf);
    free(buf2);
    return 0;
}
