/*
 * tests/http/test_router.c - the router's lookup (hp_router_match) and its
 * path rules: the route tables of go-http-routing-benchmark (each route
 * requested with its own pattern text finds itself, with the right
 * parameters), precedence and backtracking, conflicts, methods, escapes,
 * dot-segments, mounts, reverse URLs, trailing slashes, hostile paths.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hellepoll/router.h>

#define S(lit) ((struct hp_str){(lit), sizeof(lit) - 1})

static struct hp_str str(const char *s)
{
    return (struct hp_str){s, strlen(s)};
}

static bool str_is(struct hp_str v, const char *want)
{
    return v.len == strlen(want) && memcmp(v.ptr, want, v.len) == 0;
}

#define assert_str(v, want)                                                     \
    do {                                                                        \
        struct hp_str v_ = (v);                                                 \
        if (!str_is(v_, (want)))                                                \
            fail_msg("got \"%.*s\", want \"%s\"", (int)v_.len, v_.ptr, (want)); \
    } while (0)

static struct hp_router *router_new(bool tsr)
{
    struct hp_router *r = NULL;
    struct hp_router_opts o = {.redirect_trailing_slash = tsr};

    assert_int_equal(hp_router_new(&r, &o), 0);
    return r;
}

static void add(struct hp_router *r, const char *method, const char *pattern)
{
    int rc = hp_router_add(r, method, pattern, NULL, NULL);
    if (rc != 0)
        fail_msg("add %s %s: %d %s", method ? method : "*", pattern, rc, hp_router_error(r));
}

/* The parser's enum for a method token (HP_HTTP_OTHER for the rest). */
static enum hp_http_method method_id(const char *m)
{
    static const char *const names[] = {
        [HP_HTTP_GET] = "GET",         [HP_HTTP_HEAD] = "HEAD",     [HP_HTTP_POST] = "POST",
        [HP_HTTP_PUT] = "PUT",         [HP_HTTP_DELETE] = "DELETE", [HP_HTTP_OPTIONS] = "OPTIONS",
        [HP_HTTP_CONNECT] = "CONNECT", [HP_HTTP_TRACE] = "TRACE",   [HP_HTTP_PATCH] = "PATCH",
    };

    for (size_t i = 1; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(names[i], m) == 0)
            return (enum hp_http_method)i;
    }
    return HP_HTTP_OTHER;
}

/* Do two lookups that returned @p rc say the same (the fields rc defines)? */
static bool same_match(int rc, const struct hp_route_match *a, const struct hp_route_match *b)
{
    switch (rc) {
    case HP_ROUTE_FOUND:
        if (a->route != b->route || a->names != b->names || a->nparams != b->nparams ||
            a->rest.ptr != b->rest.ptr || a->rest.len != b->rest.len)
            return false;
        for (unsigned i = 0; i < a->nparams; i++) {
            if (a->values[i].ptr != b->values[i].ptr || a->values[i].len != b->values[i].len)
                return false;
        }
        return true;
    case HP_ROUTE_NOT_ALLOWED:
    case HP_ROUTE_OPTIONS:
        return a->route == NULL && b->route == NULL && a->allow == b->allow;
    case HP_ROUTE_REDIRECT:
        return a->route == NULL && b->route == NULL && a->redirect == b->redirect;
    default:
        return a->route == b->route;
    }
}

/*
 * hp_router_match(), and hp_router_match_id() with the method's enum, which
 * must answer the same (for HP_HTTP_OTHER it may refuse instead, on a
 * router whose routes name methods of their own).
 */
static int match(const struct hp_router *r, const char *method, const char *path,
                 struct hp_route_match *m)
{
    struct hp_route_match m2;
    enum hp_http_method id = method_id(method);
    int rc, rc2;

    memset(m, 0xa5, sizeof(*m));
    memset(&m2, 0xa5, sizeof(m2));
    rc = hp_router_match(r, str(method), str(path), m);
    rc2 = hp_router_match_id(r, id, str(path), &m2);
    if (id == HP_HTTP_OTHER && rc2 == -EINVAL)
        return rc;
    if (rc2 != rc || !same_match(rc, m, &m2))
        fail_msg("%s %s: hp_router_match_id() %d, hp_router_match() %d", method, path, rc2, rc);
    return rc;
}

/* The pattern of the route @p method @p path finds, or a result name. */
static const char *lookup(const struct hp_router *r, const char *method, const char *path)
{
    struct hp_route_match m;

    switch (match(r, method, path, &m)) {
    case HP_ROUTE_FOUND:
        return m.route->pattern;
    case HP_ROUTE_NOT_FOUND:
        return "404";
    case HP_ROUTE_NOT_ALLOWED:
        return "405";
    case HP_ROUTE_OPTIONS:
        return "OPTIONS";
    case HP_ROUTE_BAD_REQUEST:
        return "400";
    case HP_ROUTE_REDIRECT:
        return m.redirect == HP_ROUTE_REDIRECT_CLEAN       ? "clean"
               : m.redirect == HP_ROUTE_REDIRECT_ADD_SLASH ? "add-slash"
                                                           : "del-slash";
    default:
        return "error";
    }
}

#define assert_lookup(r, method, path, want) assert_string_equal(lookup(r, method, path), want)

/* ---- the route tables ------------------------------------------------- */

struct froute {
    char method[16];
    char file[256];    /* as written, ":name" and "*name" */
    char pattern[300]; /* converted: "{name}", "{name...}" */
};

/* ":name" -> "{name}", "*name" -> "{name...}". */
static void convert(const char *in, char *out, size_t cap)
{
    size_t n = 0;

    for (const char *p = in; *p != '\0';) {
        if ((*p == ':' || *p == '*') && p[-1] == '/') {
            bool rest = *p == '*';
            size_t l = strcspn(p + 1, "/");
            n += (size_t)snprintf(out + n, cap - n, "{%.*s%s}", (int)l, p + 1, rest ? "..." : "");
            p += 1 + l;
        } else {
            out[n++] = *p++;
        }
        assert_true(n < cap);
    }
    out[n] = '\0';
}

static size_t load(const char *name, struct froute *out, size_t cap)
{
    char path[512], line[512];
    size_t n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", HP_ROUTES_DIR, name);
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        assert_true(n < cap);
        assert_int_equal(sscanf(line, "%15s %255s", out[n].method, out[n].file), 2);
        convert(out[n].file, out[n].pattern, sizeof(out[n].pattern));
        n++;
    }
    fclose(f);
    return n;
}

/* Each route, requested with its own text, finds itself with ":x" for x. */
static void check_table(const struct froute *t, size_t n)
{
    struct hp_router *r = router_new(false);
    struct hp_route_match m;

    for (size_t i = 0; i < n; i++)
        add(r, t[i].method, t[i].pattern);
    assert_int_equal(hp_router_freeze(r), 0);
    for (size_t i = 0; i < n; i++) {
        int rc = match(r, t[i].method, t[i].file, &m);
        char want[64];
        if (rc != HP_ROUTE_FOUND)
            fail_msg("%s %s: result %d", t[i].method, t[i].file, rc);
        assert_string_equal(m.route->pattern, t[i].pattern);
        assert_string_equal(m.route->method, t[i].method);
        /* The values are the placeholders themselves: ":owner", "*path". */
        for (unsigned k = 0; k < m.nparams; k++) {
            bool rest = strstr(t[i].pattern, "...}") != NULL && k == m.nparams - 1;
            snprintf(want, sizeof(want), "%c%.*s", rest ? '*' : ':', (int)m.names[k].len,
                     m.names[k].ptr);
            assert_str(m.values[k], want);
        }
        /* Nothing else: one segment more matches another route or none. */
        {
            char longer[400];
            snprintf(longer, sizeof(longer), "%s/zz", t[i].file);
            rc = match(r, t[i].method, longer, &m);
            if (rc == HP_ROUTE_FOUND && strcmp(m.route->pattern, t[i].pattern) == 0 &&
                strstr(t[i].pattern, "...}") == NULL)
                fail_msg("%s also matched %s", t[i].pattern, longer);
        }
    }
    hp_router_free(r);
}

static void test_tables(const char *file)
{
    struct froute *t = calloc(512, sizeof(*t));
    size_t n;

    assert_non_null(t);
    n = load(file, t, 512);
    assert_true(n > 10);
    check_table(t, n);
    free(t);
}

static void test_router_github_table_matches_itself(void **state)
{
    (void)state;
    test_tables("github.txt");
}

static void test_router_parse_gplus_static_tables_match_themselves(void **state)
{
    (void)state;
    test_tables("parse.txt");
    test_tables("gplus.txt");
    test_tables("static.txt");
    test_tables("github-extra.txt");
}

static void test_router_github_with_extra_routes(void **state)
{
    struct froute *t = calloc(512, sizeof(*t));
    size_t n;

    (void)state;
    assert_non_null(t);
    n = load("github.txt", t, 512);
    n += load("github-extra.txt", t + n, 512 - n);
    assert_int_equal(n, 203 + 36);
    check_table(t, n);
    free(t);
}

/* Real values in place of the placeholders: the github table's requests. */
static void test_router_github_real_values(void **state)
{
    struct hp_router *r = router_new(false);
    struct hp_route_match m;
    struct froute *t = calloc(512, sizeof(*t));
    size_t n;

    (void)state;
    n = load("github.txt", t, 512);
    n += load("github-extra.txt", t + n, 512 - n);
    for (size_t i = 0; i < n; i++)
        add(r, t[i].method, t[i].pattern);
    assert_int_equal(hp_router_freeze(r), 0);
    assert_int_equal(match(r, "GET", "/repos/julienschmidt/httprouter/stargazers", &m),
                     HP_ROUTE_FOUND);
    assert_string_equal(m.route->pattern, "/repos/{owner}/{repo}/stargazers");
    assert_str(m.values[0], "julienschmidt");
    assert_str(m.values[1], "httprouter");
    /* static beside parameter, with backtracking from git/ into {archive_format}. */
    assert_lookup(r, "GET", "/repos/o/r/git/refs", "/repos/{owner}/{repo}/git/refs");
    assert_lookup(r, "GET", "/repos/o/r/git/master",
                  "/repos/{owner}/{repo}/{archive_format}/{ref}");
    assert_lookup(r, "GET", "/repos/o/r/zipball/v1",
                  "/repos/{owner}/{repo}/{archive_format}/{ref}");
    assert_int_equal(match(r, "GET", "/repos/o/r/git/refs/heads/main", &m), HP_ROUTE_FOUND);
    assert_string_equal(m.route->pattern, "/repos/{owner}/{repo}/git/refs/{ref...}");
    assert_str(m.values[2], "heads/main");
    assert_lookup(r, "GET", "/gists/public", "/gists/public");
    assert_lookup(r, "GET", "/gists/12", "/gists/{id}");
    assert_lookup(r, "PATCH", "/gists/public", "/gists/{id}");
    assert_lookup(r, "DELETE", "/gists/public", "/gists/{id}");
    assert_lookup(r, "GET", "/repos/o/r/contents/a/b/c",
                  "/repos/{owner}/{repo}/contents/{path...}");
    assert_lookup(r, "GET", "/repos/o/r/contents/", "/repos/{owner}/{repo}/contents/{path...}");
    assert_lookup(r, "GET", "/nope", "404");
    hp_router_free(r);
    free(t);
}

/* ---- precedence and conflicts ----------------------------------------- */

static void test_router_precedence_is_specificity_not_order(void **state)
{
    struct hp_router *r = router_new(false);

    (void)state;
    add(r, "GET", "/{path...}");
    add(r, "GET", "/a/{x}");
    add(r, "GET", "/a/{n:[0-9]+}");
    add(r, "GET", "/a/b");
    add(r, "GET", "/{y}/c");
    add(r, "GET", "/a/b/{rest...}");
    add(r, NULL, "/any/{x}");
    add(r, "GET", "/any/{x}");
    assert_int_equal(hp_router_freeze(r), 0);
    assert_lookup(r, "GET", "/a/b", "/a/b");
    assert_lookup(r, "GET", "/a/42", "/a/{n:[0-9]+}");
    assert_lookup(r, "GET", "/a/z", "/a/{x}");
    assert_lookup(r, "GET", "/a/c", "/a/{x}"); /* leftmost difference decides */
    assert_lookup(r, "GET", "/q/c", "/{y}/c");
    assert_lookup(r, "GET", "/a/b/c/d", "/a/b/{rest...}");
    assert_lookup(r, "GET", "/a/b/", "/a/b/{rest...}");
    assert_lookup(r, "GET", "/q/r/s", "/{path...}");
    assert_lookup(r, "GET", "/", "/{path...}");
    assert_lookup(r, "GET", "/any/1", "/any/{x}");
    assert_lookup(r, "POST", "/any/1", "/any/{x}");
    {
        struct hp_route_match m;
        assert_int_equal(match(r, "GET", "/any/1", &m), HP_ROUTE_FOUND);
        assert_string_equal(m.route->method, "GET"); /* the GET route beats "any" */
        assert_int_equal(match(r, "POST", "/any/1", &m), HP_ROUTE_FOUND);
        assert_null(m.route->method);
    }
    hp_router_free(r);
}

static void test_router_backtracks_when_static_branch_fails(void **state)
{
    struct hp_router *r = router_new(false);

    (void)state;
    add(r, "GET", "/gists/public");
    add(r, "GET", "/gists/{id}/star");
    add(r, "GET", "/users/new/edit");
    add(r, "GET", "/users/{id}/{action}");
    assert_int_equal(hp_router_freeze(r), 0);
    assert_lookup(r, "GET", "/gists/public/star", "/gists/{id}/star");
    assert_lookup(r, "GET", "/gists/public", "/gists/public");
    assert_lookup(r, "GET", "/users/new/edit", "/users/new/edit");
    assert_lookup(r, "GET", "/users/new/show", "/users/{id}/{action}");
    hp_router_free(r);
}

static void expect_conflict(struct hp_router *r, const char *method, const char *pattern,
                            const char *other)
{
    int rc = hp_router_add(r, method, pattern, NULL, NULL);
    const char *e = hp_router_error(r);

    assert_int_equal(rc, -EEXIST);
    if (strstr(e, pattern) == NULL || strstr(e, other) == NULL)
        fail_msg("error \"%s\" should name %s and %s", e, pattern, other);
}

static void test_router_refuses_ambiguous_routes_naming_both(void **state)
{
    struct hp_router *r = router_new(false);

    (void)state;
    add(r, "GET", "/users/{id}");
    add(r, "GET", "/files/{p...}");
    add(r, "GET", "/n/{id:[0-9]+}/x");
    add(r, "GET", "/n/{id:[a-z]+}/y"); /* disjoint: x vs y */
    add(r, "GET", "/users/{id}/posts");
    add(r, "POST", "/users/{name}"); /* other method: fine */
    add(r, NULL, "/users/{name}");   /* any method: fine, GET/POST beat it */
    expect_conflict(r, "GET", "/users/{name}", "/users/{id}");
    expect_conflict(r, "GET", "/files/{q...}", "/files/{p...}");
    expect_conflict(r, "GET", "/n/{k:[0-9a-f]+}/x", "/n/{id:[0-9]+}/x");
    expect_conflict(r, NULL, "/users/{x}", "/users/{name}");
    assert_int_equal(hp_router_add_named(r, "u", "GET", "/u/{a}", NULL, NULL), 0);
    assert_int_equal(hp_router_add_named(r, "u", "GET", "/v/{a}", NULL, NULL), -EEXIST);
    assert_non_null(strstr(hp_router_error(r), "\"u\""));
    /* the failed adds left nothing behind */
    assert_int_equal(hp_router_freeze(r), 0);
    assert_lookup(r, "GET", "/users/7", "/users/{id}");
    assert_lookup(r, "GET", "/v/7", "404");
    assert_int_equal(hp_router_add(r, "GET", "/late", NULL, NULL), -EBUSY);
    hp_router_free(r);
}

static void test_router_refuses_bad_patterns(void **state)
{
    static const char *const bad[] = {
        "",
        "users",
        "/a//b",
        "/a/{",
        "/a/{}",
        "/a/{1x}",
        "/a/x{id}",
        "/a/{id}x",
        "/a/{p...}/b",
        "/a/{id}/{id}",
        "/a/%41",
        "/a/../b",
        "/a/./b",
        "/a b",
        "/a/{id:[}",
        "/a/{id:(}",
        "/a/{id:x:y}z",
        "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{p}/{q}",
    };
    struct hp_router *r = router_new(false);

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = hp_router_add(r, "GET", bad[i], NULL, NULL);
        if (rc != -EINVAL)
            fail_msg("pattern \"%s\": %d", bad[i], rc);
        assert_true(hp_router_error(r)[0] != '\0');
    }
    assert_int_equal(hp_router_add(r, "GE T", "/x", NULL, NULL), -EINVAL);
    assert_int_equal(hp_router_add(r, "", "/x", NULL, NULL), -EINVAL);
    assert_int_equal(hp_router_add(r, "GET", "/a/{id:[0-9]{2}}", NULL, NULL), 0);
    assert_int_equal(hp_router_add(r, "GET", "/b/{id:[^/]+}", NULL, NULL), 0);
    assert_int_equal(hp_router_freeze(r), 0);
    assert_lookup(r, "GET", "/a/12", "/a/{id:[0-9]{2}}");
    assert_lookup(r, "GET", "/a/123", "404");
    hp_router_free(r);
}

/* ---- methods ------------------------------------------------------------ */

static void test_router_405_allow_head_options(void **state)
{
    struct hp_router *r = router_new(false);
    struct hp_route_match m;
    char allow[128];

    (void)state;
    add(r, "GET", "/items/{id}");
    add(r, "DELETE", "/items/{id}");
    add(r, "PROPFIND", "/items/{id}");
    add(r, "POST", "/items/new");
    add(r, "HEAD", "/h");
    add(r, "GET", "/h");
    add(r, "OPTIONS", "/o");
    add(r, "PUT", "/o");
    assert_int_equal(hp_router_freeze(r), 0);

    assert_int_equal(match(r, "PUT", "/items/1", &m), HP_ROUTE_NOT_ALLOWED);
    assert_int_equal(hp_router_allow(r, m.allow, allow, sizeof(allow)), 36);
    assert_string_equal(allow, "GET, HEAD, DELETE, OPTIONS, PROPFIND");
    /* /items/new: POST there, GET/DELETE/PROPFIND through {id} */
    assert_int_equal(match(r, "PUT", "/items/new", &m), HP_ROUTE_NOT_ALLOWED);
    assert_true(hp_router_allow(r, m.allow, allow, sizeof(allow)) > 0);
    assert_string_equal(allow, "GET, HEAD, POST, DELETE, OPTIONS, PROPFIND");
    assert_int_equal(hp_router_allow(r, m.allow, allow, 8), -ENOSPC);
    assert_lookup(r, "GET", "/items/new", "/items/{id}");
    assert_lookup(r, "PROPFIND", "/items/new", "/items/{id}");
    assert_lookup(r, "HEAD", "/items/1", "/items/{id}"); /* HEAD uses GET */
    assert_int_equal(match(r, "HEAD", "/h", &m), HP_ROUTE_FOUND);
    assert_string_equal(m.route->method, "HEAD");
    assert_lookup(r, "OPTIONS", "/items/1", "OPTIONS");
    assert_lookup(r, "OPTIONS", "/o", "/o");
    assert_lookup(r, "OPTIONS", "/nothing", "404");
    assert_lookup(r, "BREW", "/items/1", "405");
    assert_int_equal(match(r, "OPTIONS", "*", &m), HP_ROUTE_OPTIONS);
    assert_true(hp_router_allow(r, m.allow, allow, sizeof(allow)) > 0);
    assert_string_equal(allow, "GET, HEAD, POST, PUT, DELETE, OPTIONS, PROPFIND");
    assert_lookup(r, "GET", "*", "400");
    hp_router_free(r);
}

/* ---- escapes and dot-segments ----------------------------------------- */

static void test_router_escapes_are_decoded_after_matching(void **state)
{
    struct hp_router *r = router_new(false);
    struct hp_route_match m;
    char buf[64];

    (void)state;
    add(r, "GET", "/users/{id}/posts");
    add(r, "GET", "/f/{p...}");
    add(r, "GET", "/n/{num:[0-9]+}");
    assert_int_equal(hp_router_freeze(r), 0);
    assert_int_equal(match(r, "GET", "/users/a%2Fb/posts", &m), HP_ROUTE_FOUND);
    assert_str(m.values[0], "a%2Fb");
    assert_int_equal(hp_route_decode(m.values[0], buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "a/b", 3);
    assert_int_equal(hp_route_decode(S("caf%C3%a9+x"), buf, sizeof(buf)), 7);
    assert_memory_equal(buf, "caf\xc3\xa9+x", 7);
    assert_int_equal(hp_route_decode(S("%zz"), buf, sizeof(buf)), -EINVAL);
    assert_int_equal(hp_route_decode(S("ab%4"), buf, sizeof(buf)), -EINVAL);
    assert_int_equal(hp_route_decode(S("ab%"), buf, sizeof(buf)), -EINVAL);
    assert_int_equal(hp_route_decode(S("a%00"), buf, sizeof(buf)), -EINVAL);
    assert_int_equal(hp_route_decode(S("abcd"), buf, 3), -ENOSPC);
    /* The constraint sees the decoded segment. */
    assert_lookup(r, "GET", "/n/%31%32", "/n/{num:[0-9]+}");
    assert_lookup(r, "GET", "/n/1a", "404");
    /* Malformed escapes: 400, matched or not. */
    assert_lookup(r, "GET", "/nothing/%zz", "400");
    assert_lookup(r, "GET", "/f/a%2", "400");
    assert_lookup(r, "GET", "/f/a/%", "400");
    /* A catch-all that would climb once decoded. */
    assert_lookup(r, "GET", "/f/a%2F..%2F..%2Fetc", "400");
    assert_lookup(r, "GET", "/f/..%5Cx", "400");
    assert_int_equal(match(r, "GET", "/f/a%2Fb", &m), HP_ROUTE_FOUND);
    assert_str(m.values[0], "a%2Fb");
    hp_router_free(r);
}

static void test_router_dot_segments_and_double_slashes_redirect_clean(void **state)
{
    static const char *const cases[][2] = {
        {"/a/../b", "/b"},
        {"/a/./b", "/a/b"},
        {"/a//b", "/a/b"},
        {"//a", "/a"},
        {"/a/b/..", "/a/"},
        {"/a/b/.", "/a/b/"},
        {"/../../etc/passwd", "/etc/passwd"},
        {"/a/%2e%2E/b", "/b"},
        {"/a/.%2e/b", "/b"},
        {"/a/%2e/b", "/a/b"},
        {"/a/b/", "/a/b/"},
        {"/", "/"},
        {"/..", "/"},
        {"/a//", "/a/"},
        {"/a/...", "/a/..."},
        {"/a/..b/c", "/a/..b/c"},
        {"/x/y/../../../z", "/z"},
    };
    struct hp_router *r = router_new(false);
    char out[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = hp_router_clean_path(str(cases[i][0]), out, sizeof(out));
        assert_true(n >= 0);
        assert_string_equal(out, cases[i][1]);
        assert_int_equal((size_t)n, strlen(cases[i][1]));
    }
    assert_int_equal(hp_router_clean_path(S("a/b"), out, sizeof(out)), -EINVAL);
    assert_int_equal(hp_router_clean_path(S("/abc"), out, 4), -ENOSPC);

    add(r, "GET", "/b");
    add(r, "GET", "/users/{id}");
    add(r, "GET", "/static/{p...}");
    assert_int_equal(hp_router_freeze(r), 0);
    assert_lookup(r, "GET", "/a/../b", "clean");
    assert_lookup(r, "GET", "/users/..", "clean");
    assert_lookup(r, "GET", "/users/%2e", "clean");
    assert_lookup(r, "GET", "/users//", "clean");
    assert_lookup(r, "GET", "//b", "clean");
    assert_lookup(r, "GET", "/static/a/../../etc/passwd", "clean");
    assert_lookup(r, "GET", "/static/%2e%2e/x", "clean");
    assert_lookup(r, "GET", "/static/a//b", "clean");
    assert_lookup(r, "GET", "/static/a/b/", "/static/{p...}");
    assert_lookup(r, "GET", "/users/...", "/users/{id}");
    hp_router_free(r);
}

/* ---- mounts ------------------------------------------------------------- */

static void test_router_mounts_cannot_be_escaped(void **state)
{
    struct hp_router *api = router_new(false), *r = router_new(true);
    struct hp_route_match m;

    (void)state;
    add(api, "GET", "/users/{id}");
    add(api, "GET", "/");
    assert_int_equal(hp_router_mount(r, "/api", api), -EINVAL); /* not frozen */
    assert_int_equal(hp_router_freeze(api), 0);
    assert_int_equal(hp_router_mount(r, "/api", api), 0);
    assert_int_equal(hp_router_mount(r, "/api/", api), -EINVAL);
    assert_int_equal(hp_router_mount(r, "/", api), -EINVAL);
    assert_int_equal(hp_router_mount(r, "/v/{x}", api), -EINVAL);
    assert_int_equal(hp_router_mount(r, "/api", api), -EEXIST);
    static int files_tag;
    assert_int_equal(hp_router_mount_handler(r, "/files", NULL, &files_tag), 0);
    add(r, "GET", "/secret");
    add(r, "GET", "/{x}/users/{id}");
    assert_int_equal(hp_router_freeze(r), 0);

    assert_int_equal(match(r, "GET", "/api/users/7", &m), HP_ROUTE_FOUND);
    assert_string_equal(m.route->pattern, "/users/{id}");
    assert_str(m.values[0], "7");
    assert_lookup(r, "GET", "/api/", "/");
    assert_lookup(r, "GET", "/api", "add-slash");
    assert_lookup(r, "POST", "/api/users/7", "405");
    /* Not in the sub-router: the parent's other routes still apply. */
    assert_lookup(r, "GET", "/zz/users/7", "/{x}/users/{id}");
    assert_int_equal(match(r, "GET", "/files/a/b.txt", &m), HP_ROUTE_FOUND);
    assert_ptr_equal(m.route->data, &files_tag);
    assert_str(m.rest, "/a/b.txt");
    assert_int_equal(match(r, "DELETE", "/files/", &m), HP_ROUTE_FOUND);
    assert_str(m.rest, "/");
    /* Climbing out: cleaned before anything is matched, or refused. */
    assert_lookup(r, "GET", "/files/../secret", "clean");
    assert_lookup(r, "GET", "/files/%2e%2e/secret", "clean");
    assert_lookup(r, "GET", "/files/..%2Fsecret", "400");
    assert_lookup(r, "GET", "/files/a%2F..%2F..%2Fsecret", "400");
    assert_lookup(r, "GET", "/api/users/../../secret", "clean");
    assert_lookup(r, "GET", "/files//etc/passwd", "clean");
    {
        char out[64];
        assert_true(hp_router_clean_path(S("/files/../../../secret"), out, sizeof(out)) > 0);
        assert_string_equal(out, "/secret"); /* outside the mount, and out of its reach */
    }
    hp_router_free(r);
    hp_router_free(api);
}

/* ---- reverse URLs ------------------------------------------------------- */

static void test_router_reverse_urls_round_trip(void **state)
{
    struct hp_router *r = router_new(false);
    struct hp_route_match m;
    char url[256], dec[256];
    const struct hp_str two[] = {S("a b/c?d#e%f"), S("caf\xc3\xa9")};
    const struct hp_str rest[] = {S("dir/sub dir/file.txt")};
    const struct hp_str num[] = {S("42")};

    (void)state;
    assert_int_equal(hp_router_add_named(r, "post", "GET", "/u/{user}/p/{id}", NULL, NULL), 0);
    assert_int_equal(hp_router_add_named(r, "file", "GET", "/static/{path...}", NULL, NULL), 0);
    assert_int_equal(hp_router_add_named(r, "n", "GET", "/n/{id:[0-9]+}", NULL, NULL), 0);
    assert_int_equal(hp_router_add_named(r, "root", "GET", "/", NULL, NULL), 0);
    assert_int_equal(hp_router_add_named(r, "dir", "GET", "/dir/", NULL, NULL), 0);
    assert_int_equal(hp_router_freeze(r), 0);

    assert_true(hp_router_url(r, "post", two, 2, url, sizeof(url)) > 0);
    assert_string_equal(url, "/u/a%20b%2Fc%3Fd%23e%25f/p/caf%C3%A9");
    assert_int_equal(match(r, "GET", url, &m), HP_ROUTE_FOUND);
    assert_string_equal(m.route->name, "post");
    for (unsigned i = 0; i < 2; i++) {
        int n = hp_route_decode(m.values[i], dec, sizeof(dec));
        assert_int_equal(n, (int)two[i].len);
        assert_memory_equal(dec, two[i].ptr, two[i].len);
    }
    assert_true(hp_router_url(r, "file", rest, 1, url, sizeof(url)) > 0);
    assert_string_equal(url, "/static/dir/sub%20dir/file.txt");
    assert_int_equal(match(r, "GET", url, &m), HP_ROUTE_FOUND);
    assert_int_equal(hp_route_decode(m.values[0], dec, sizeof(dec)), (int)rest[0].len);
    assert_true(hp_router_url(r, "n", num, 1, url, sizeof(url)) > 0);
    assert_string_equal(url, "/n/42");
    assert_true(hp_router_url(r, "root", NULL, 0, url, sizeof(url)) > 0);
    assert_string_equal(url, "/");
    assert_true(hp_router_url(r, "dir", NULL, 0, url, sizeof(url)) > 0);
    assert_string_equal(url, "/dir/");

    assert_int_equal(hp_router_url(r, "nope", NULL, 0, url, sizeof(url)), -ENOENT);
    assert_int_equal(hp_router_url(r, "post", two, 1, url, sizeof(url)), -EINVAL);
    assert_int_equal(hp_router_url(r, "n", (struct hp_str[]){S("x")}, 1, url, sizeof(url)),
                     -EINVAL);
    assert_int_equal(hp_router_url(r, "post", (struct hp_str[]){S(""), S("1")}, 2, url, 256),
                     -EINVAL);
    assert_int_equal(hp_router_url(r, "post", (struct hp_str[]){S(".."), S("1")}, 2, url, 256),
                     -EINVAL);
    assert_int_equal(hp_router_url(r, "file", (struct hp_str[]){S("a/../b")}, 1, url, 256),
                     -EINVAL);
    assert_int_equal(hp_router_url(r, "file", (struct hp_str[]){S("a//b")}, 1, url, 256), -EINVAL);
    assert_int_equal(hp_router_url(r, "post", two, 2, url, 10), -ENOSPC);
    hp_router_free(r);
}

/* Named routes of mounted routers: found from the parent, prefixes prepended. */
static void test_router_reverse_urls_through_mounts(void **state)
{
    struct hp_router *v1 = router_new(false), *api = router_new(false), *r = router_new(false);
    struct hp_router *dup = router_new(false);
    struct hp_route_match m;
    char url[256], dec[64];
    const struct hp_str id[] = {S("a b")};

    (void)state;
    assert_int_equal(hp_router_add_named(v1, "item", "GET", "/items/{id}", NULL, NULL), 0);
    assert_int_equal(hp_router_add_named(v1, "v1root", "GET", "/", NULL, NULL), 0);
    assert_int_equal(hp_router_freeze(v1), 0);
    assert_int_equal(hp_router_add_named(api, "user", "GET", "/users/{id}", NULL, NULL), 0);
    assert_int_equal(hp_router_mount(api, "/v1", v1), 0);
    assert_int_equal(hp_router_freeze(api), 0);
    assert_int_equal(hp_router_add_named(r, "home", "GET", "/", NULL, NULL), 0);
    assert_int_equal(hp_router_mount(r, "/api", api), 0);
    /* After the mount the names of api (and of v1 in it) are taken in r. */
    assert_int_equal(hp_router_add_named(r, "user", "GET", "/u/{id}", NULL, NULL), -EEXIST);
    assert_non_null(strstr(hp_router_error(r), "/users/{id}"));
    assert_int_equal(hp_router_add_named(r, "item", "GET", "/i/{id}", NULL, NULL), -EEXIST);
    assert_int_equal(hp_router_freeze(r), 0);

    assert_int_equal(hp_router_url(r, "home", NULL, 0, url, sizeof(url)), 1);
    assert_string_equal(url, "/");
    assert_true(hp_router_url(r, "user", id, 1, url, sizeof(url)) > 0);
    assert_string_equal(url, "/api/users/a%20b");
    assert_int_equal(match(r, "GET", url, &m), HP_ROUTE_FOUND);
    assert_string_equal(m.route->name, "user");
    assert_int_equal(hp_route_decode(m.values[0], dec, sizeof(dec)), 3);
    assert_memory_equal(dec, "a b", 3);
    assert_true(hp_router_url(r, "item", (struct hp_str[]){S("7")}, 1, url, sizeof(url)) > 0);
    assert_string_equal(url, "/api/v1/items/7");
    assert_int_equal(match(r, "GET", url, &m), HP_ROUTE_FOUND);
    assert_string_equal(m.route->name, "item");
    assert_str(m.values[0], "7");
    assert_true(hp_router_url(r, "v1root", NULL, 0, url, sizeof(url)) > 0);
    assert_string_equal(url, "/api/v1/");
    assert_int_equal(match(r, "GET", url, &m), HP_ROUTE_FOUND);
    assert_string_equal(m.route->name, "v1root");
    /* The sub-router answers for itself without its prefix. */
    assert_true(hp_router_url(api, "item", (struct hp_str[]){S("7")}, 1, url, sizeof(url)) > 0);
    assert_string_equal(url, "/v1/items/7");
    assert_int_equal(hp_router_url(r, "item", NULL, 0, url, sizeof(url)), -EINVAL);
    assert_int_equal(hp_router_url(r, "user", id, 1, url, 12), -ENOSPC);

    /* A mount whose names are taken (here, nested one level down) is refused. */
    assert_int_equal(hp_router_add_named(dup, "v1root", "GET", "/x", NULL, NULL), 0);
    assert_int_equal(hp_router_mount(dup, "/api", api), -EEXIST);
    assert_non_null(strstr(hp_router_error(dup), "v1root"));
    assert_int_equal(hp_router_freeze(dup), 0);
    assert_int_equal(match(dup, "GET", "/api/users/1", &m), HP_ROUTE_NOT_FOUND);
    hp_router_free(dup);
    hp_router_free(r);
    hp_router_free(api);
    hp_router_free(v1);
}

/* ---- trailing slashes -------------------------------------------------- */

static void test_router_trailing_slash_redirects(void **state)
{
    struct hp_router *r = router_new(true), *plain = router_new(false);

    (void)state;
    add(r, "GET", "/dir/");
    add(r, "GET", "/file");
    add(r, "POST", "/form");
    add(r, "GET", "/static/{p...}");
    assert_int_equal(hp_router_freeze(r), 0);
    assert_lookup(r, "GET", "/dir", "add-slash");
    assert_lookup(r, "GET", "/file/", "del-slash");
    assert_lookup(r, "POST", "/form/", "del-slash");
    assert_lookup(r, "GET", "/static", "add-slash");
    assert_lookup(r, "GET", "/dir/", "/dir/");
    assert_lookup(r, "GET", "/other", "404");
    assert_lookup(r, "GET", "/form/", "404"); /* only with the method */
    add(plain, "GET", "/dir/");
    assert_int_equal(hp_router_freeze(plain), 0);
    assert_lookup(plain, "GET", "/dir", "404");
    hp_router_free(r);
    hp_router_free(plain);
}

/* ---- hostile input ----------------------------------------------------- */

static void test_router_hostile_paths_fail_cleanly(void **state)
{
    struct hp_router *r = router_new(true);
    struct froute *t = calloc(512, sizeof(*t));
    size_t n = load("github.txt", t, 512), big = 1u << 20;
    char *p = malloc(big + 1);
    struct hp_route_match m;

    (void)state;
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        add(r, t[i].method, t[i].pattern);
    add(r, "GET", "/files/{p...}");
    assert_int_equal(hp_router_freeze(r), 0);
    /* a million slashes */
    memset(p, '/', big);
    p[big] = '\0';
    assert_int_equal(match(r, "GET", p, &m), HP_ROUTE_REDIRECT);
    /* half a million one-byte segments */
    for (size_t i = 0; i < big; i += 2)
        memcpy(p + i, "/a", 2);
    assert_int_equal(match(r, "GET", p, &m), HP_ROUTE_NOT_FOUND);
    /* a huge single segment where a parameter goes, and a long catch-all */
    memcpy(p, "/users/", 7);
    memset(p + 7, 'x', big - 7);
    assert_int_equal(match(r, "GET", p, &m), HP_ROUTE_FOUND);
    assert_int_equal(m.values[0].len, big - 7);
    memcpy(p, "/files/", 7);
    for (size_t i = 7; i + 2 <= big; i += 2)
        memcpy(p + i, "b/", 2);
    assert_int_equal(match(r, "GET", p, &m), HP_ROUTE_FOUND);
    memcpy(p + big - 4, "/../", 4);
    assert_int_equal(match(r, "GET", p, &m), HP_ROUTE_REDIRECT);
    memset(p, '%', big);
    p[0] = '/';
    assert_int_equal(match(r, "GET", p, &m), HP_ROUTE_BAD_REQUEST);
    assert_int_equal(hp_router_match(r, S("GET"), (struct hp_str){"", 0}, &m),
                     HP_ROUTE_BAD_REQUEST);
    assert_int_equal(hp_router_match(r, S("GET"), S("users"), &m), HP_ROUTE_BAD_REQUEST);
    assert_int_equal(hp_router_match(r, (struct hp_str){"", 0}, S("/users/x"), &m),
                     HP_ROUTE_NOT_ALLOWED);
    free(p);
    free(t);
    hp_router_free(r);
}

/* The lookup by the parser's enum: what the token gives, and its refusals. */
static void test_router_match_by_method_id(void **state)
{
    struct hp_router *r = router_new(false), *c = router_new(false);
    struct hp_route_match m;

    (void)state;
    add(r, "GET", "/a/{x}");
    add(r, "PATCH", "/a/{x}");
    add(r, NULL, "/any");
    assert_int_equal(hp_router_freeze(r), 0);
    assert_int_equal(hp_router_match_id(r, HP_HTTP_PATCH, str("/a/1"), &m), HP_ROUTE_FOUND);
    assert_string_equal(m.route->method, "PATCH");
    assert_str(m.values[0], "1");
    assert_int_equal(hp_router_match_id(r, HP_HTTP_HEAD, str("/a/1"), &m), HP_ROUTE_FOUND);
    assert_string_equal(m.route->method, "GET");
    assert_int_equal(hp_router_match_id(r, HP_HTTP_PUT, str("/a/1"), &m), HP_ROUTE_NOT_ALLOWED);
    /* HP_HTTP_OTHER: a method no route names, so any-method routes only */
    assert_int_equal(hp_router_match_id(r, HP_HTTP_OTHER, str("/any"), &m), HP_ROUTE_FOUND);
    assert_int_equal(hp_router_match_id(r, HP_HTTP_OTHER, str("/a/1"), &m), HP_ROUTE_NOT_ALLOWED);
    assert_int_equal(
        hp_router_match_id(r, (enum hp_http_method)(HP_HTTP_PATCH + 1), str("/any"), &m), -EINVAL);
    /* A router with a method of its own cannot tell which HP_HTTP_OTHER is. */
    add(c, "PROPFIND", "/p");
    add(c, "GET", "/p");
    assert_int_equal(hp_router_match_id(c, HP_HTTP_GET, str("/p"), &m), -EINVAL); /* unfrozen */
    assert_int_equal(hp_router_freeze(c), 0);
    assert_int_equal(hp_router_match_id(c, HP_HTTP_GET, str("/p"), &m), HP_ROUTE_FOUND);
    assert_int_equal(hp_router_match_id(c, HP_HTTP_OTHER, str("/p"), &m), -EINVAL);
    assert_int_equal(match(c, "PROPFIND", "/p", &m), HP_ROUTE_FOUND);
    hp_router_free(r);
    hp_router_free(c);
}

static void test_router_unfrozen_and_empty(void **state)
{
    struct hp_router *r = router_new(false);
    struct hp_route_match m;

    (void)state;
    assert_int_equal(hp_router_match(r, S("GET"), S("/"), &m), -EINVAL);
    assert_int_equal(hp_router_freeze(r), 0);
    assert_int_equal(hp_router_freeze(r), 0);
    assert_int_equal(hp_router_match(r, S("GET"), S("/"), &m), HP_ROUTE_NOT_FOUND);
    hp_router_free(r);
    hp_router_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_github_table_matches_itself),
        cmocka_unit_test(test_router_parse_gplus_static_tables_match_themselves),
        cmocka_unit_test(test_router_github_with_extra_routes),
        cmocka_unit_test(test_router_github_real_values),
        cmocka_unit_test(test_router_precedence_is_specificity_not_order),
        cmocka_unit_test(test_router_backtracks_when_static_branch_fails),
        cmocka_unit_test(test_router_refuses_ambiguous_routes_naming_both),
        cmocka_unit_test(test_router_refuses_bad_patterns),
        cmocka_unit_test(test_router_405_allow_head_options),
        cmocka_unit_test(test_router_escapes_are_decoded_after_matching),
        cmocka_unit_test(test_router_dot_segments_and_double_slashes_redirect_clean),
        cmocka_unit_test(test_router_mounts_cannot_be_escaped),
        cmocka_unit_test(test_router_reverse_urls_round_trip),
        cmocka_unit_test(test_router_reverse_urls_through_mounts),
        cmocka_unit_test(test_router_trailing_slash_redirects),
        cmocka_unit_test(test_router_hostile_paths_fail_cleanly),
        cmocka_unit_test(test_router_match_by_method_id),
        cmocka_unit_test(test_router_unfrozen_and_empty),
    };

    return cmocka_run_group_tests_name("http/router", tests, NULL, NULL);
}
