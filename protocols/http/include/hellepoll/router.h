/**
 * @file router.h
 * A request router for the HTTP module: method and path patterns mapped to
 * handlers, looked up without allocating and without locks.
 *
 * Life cycle: hp_router_new(), then hp_router_add() / hp_router_mount()
 * at startup (single-threaded), then hp_router_freeze(). A frozen router is
 * immutable: hp_router_match() and hp_router_dispatch() only read it, so one
 * router can be shared by the loops of several threads. Adding to a frozen
 * router is -EBUSY; matching an unfrozen one is -EINVAL.
 *
 * Pattern syntax (Go 1.22 ServeMux style); a pattern is a path of segments:
 * - `/users/list`      static segments, matched byte for byte against the raw
 *                      path (pchar bytes only; no '%': write text unescaped)
 * - `/users/{id}`      a parameter: exactly one non-empty segment
 * - `/u/{id:[0-9]+}`   a parameter with a POSIX extended regex constraint,
 *                      compiled when added, anchored (the whole decoded
 *                      segment must match; segments over 255 bytes never do)
 * - `/static/{path...}` a final catch-all: the rest of the path after the
 *                      slash, possibly empty (`/static/` matches with ""), and
 *                      `/static` does not (see the trailing-slash redirect)
 * - `/` and a trailing slash (`/dir/`) are exact paths too.
 * At most HP_ROUTE_MAX_PARAMS parameters and 64 segments per pattern.
 *
 * Precedence is by specificity, never by registration order: at the
 * leftmost segment where two patterns differ, a static segment beats a
 * constrained parameter, which beats a plain parameter, which beats a
 * catch-all. The search backtracks: for GET /gists/public/x with routes
 * /gists/public and /gists/{id}/x the second one answers. The method is
 * part of the match: a route for another method is passed over (so
 * DELETE /gists/public can reach DELETE /gists/{id}). Routes for one method
 * beat "any method" routes of the same pattern; HEAD uses a GET route when
 * there is no HEAD route. Two routes that neither order separates are
 * refused when added (-EEXIST), with a message naming both patterns
 * (hp_router_error()): the same shape and method (parameter names do not
 * count), or two different regex constraints at one position when the rest
 * of the patterns could match the same path.
 *
 * Paths: matching runs on the raw path (the request-target's path, still
 * percent-encoded); parameter values are percent-decoded afterwards, so a
 * %2F stays inside one parameter. The router defines these outcomes:
 * - malformed percent-encoding (a '%' not followed by two hex digits) or a
 *   decoded NUL byte in a parameter: 400;
 * - dot-segments (`.`, `..`, also written `%2e`) and empty segments (`//`):
 *   never matched; the request is redirected to the path cleaned as RFC 3986
 *   5.2.4 (remove_dot_segments, `..` stops at the root), with runs of
 *   slashes collapsed and the query kept (301 for GET and HEAD, 308
 *   otherwise). A cleaned path never climbs above "/", so nothing can climb
 *   out of a mounted prefix either;
 * - a catch-all or mount remainder that would only climb once decoded
 *   (`a%2F..%2Fb`): 400;
 * - the path matches routes of other methods only: 405 with Allow (which
 *   lists HEAD when GET is there, and OPTIONS);
 * - OPTIONS with no route handling it (an "any method" route does): 204
 *   with Allow; `OPTIONS *` lists every method of the router;
 * - nothing matches: 404, or with redirect_trailing_slash a redirect (301
 *   for GET and HEAD, 308 otherwise) when the path with its trailing slash
 *   added or removed matches (paths up to 2047 bytes).
 * The application can replace the 400, 404 and 405 answers.
 *
 * Mounts: hp_router_mount() puts a frozen sub-router at a static prefix
 * (`/api` catches `/api/` and `/api/...`; the sub-router matches the rest,
 * which starts with '/'), hp_router_mount_handler() puts any handler there
 * (hp_route_rest() gives it the rest). A mount ranks as an "any method"
 * catch-all at that position. If a mounted router has no route for the
 * rest, the parent's other routes are still tried. The top router's options
 * (404/405/400 handlers, redirects) apply to everything it dispatches.
 * Route names: one namespace per top router. The named routes of a mounted
 * router (and of routers mounted in it) are visible from the parent under
 * their own names, and hp_router_url() on the parent prepends the mount
 * prefixes; a mount that would give a name a second meaning is refused
 * (-EEXIST), and so is a later hp_router_add_named() in the parent with a
 * name a mounted router has. (A mounted router is frozen, so nothing can
 * be added to it afterwards.)
 *
 * Threading: build and freeze on one thread; then any number of threads may
 * match and dispatch concurrently. Lookups take no lock and allocate
 * nothing, except that regex constraints call regexec(), which glibc
 * serialises with a lock inside each regex and may allocate in.
 */
#ifndef HP_ROUTER_H
#define HP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>
#include <hellepoll/http.h>

/** Most parameters (catch-all included) in one pattern. */
#define HP_ROUTE_MAX_PARAMS 16

struct hp_router;

/** Router options; zero means the default for every field. */
struct hp_router_opts {
    /**
     * Redirect a path that only matches with its trailing slash added or
     * removed (301 GET/HEAD, 308 otherwise). Default off.
     */
    bool redirect_trailing_slash;
    /**
     * Replacements for the router's own answers, called by
     * hp_router_dispatch() like any handler. NULL: a short text/plain
     * reply. For 405 the Allow header has already been added to the
     * response when method_not_allowed runs.
     */
    hp_http_handler *not_found;          /**< 404 */
    hp_http_handler *method_not_allowed; /**< 405 */
    hp_http_handler *bad_request;        /**< 400 (malformed escapes, ...) */
    /** Allocator for the router's tables; all NULL means libc. */
    struct hp_allocator alloc;
};

/** A route as registered; read-only, valid as long as its router. */
struct hp_route {
    const char *pattern;      /**< The pattern as given to hp_router_add(). */
    const char *method;       /**< "GET", ..., or NULL for any method. */
    const char *name;         /**< The route's name, or NULL. */
    hp_http_handler *handler; /**< Its handler (NULL for a mounted router). */
    void *data;               /**< The data pointer given when adding it. */
};

/** What hp_router_match() found. */
enum hp_route_result {
    HP_ROUTE_FOUND = 0,   /**< route, params (and rest for mounts) are set */
    HP_ROUTE_NOT_FOUND,   /**< 404 */
    HP_ROUTE_NOT_ALLOWED, /**< 405: allow holds the path's methods */
    HP_ROUTE_OPTIONS,     /**< OPTIONS nobody handles: answer 204 with allow */
    HP_ROUTE_REDIRECT,    /**< redirect holds why (enum hp_route_redirect) */
    HP_ROUTE_BAD_REQUEST, /**< 400: malformed path */
};

/** Why hp_router_match() returned HP_ROUTE_REDIRECT. */
enum hp_route_redirect {
    HP_ROUTE_REDIRECT_CLEAN = 1, /**< dot-segments or "//": see hp_router_clean_path() */
    HP_ROUTE_REDIRECT_ADD_SLASH, /**< the path with a '/' appended matches */
    HP_ROUTE_REDIRECT_DEL_SLASH, /**< the path without its final '/' matches */
};

/**
 * A lookup's result: fixed capacity, filled by hp_router_match(). Views
 * point into the path given to it (values are raw, still percent-encoded:
 * see hp_route_decode()) and into the router (names).
 */
struct hp_route_match {
    const struct hp_route *route;              /**< HP_ROUTE_FOUND: the route; else NULL */
    const struct hp_str *names;                /**< nparams parameter names, pattern order */
    struct hp_str values[HP_ROUTE_MAX_PARAMS]; /**< raw values, pattern order */
    unsigned nparams;
    /** A mounted handler's rest of the path ("/..."); len 0 otherwise. */
    struct hp_str rest;
    /** HP_ROUTE_NOT_ALLOWED, HP_ROUTE_OPTIONS: methods, see hp_router_allow(). */
    uint32_t allow;
    /** HP_ROUTE_REDIRECT: an enum hp_route_redirect. */
    int redirect;
};

/**
 * Create an empty router.
 * @param out receives it; untouched on failure.
 * @param opts may be NULL; copied.
 * @return 0 or -ENOMEM.
 */
HP_API HP_NODISCARD int hp_router_new(struct hp_router **out, const struct hp_router_opts *opts);

/**
 * Free a router and everything it allocated. Routers mounted in it are not
 * freed (they are borrowed). No lookup may be running on it. NULL is ignored.
 */
HP_API void hp_router_free(struct hp_router *r);

/**
 * Add a route. Pattern and method are copied.
 * @param method a method token ("GET", "PATCH", "PROPFIND"...), or NULL or
 *               "*" for any method. At most 21 tokens besides the nine of
 *               RFC 9110/5789 per router.
 * @param pattern see the syntax above; starts with '/'.
 * @param handler called by hp_router_dispatch(); may be NULL for routers
 *                only used through hp_router_match().
 * @param data returned in hp_route.data (hp_route_of(req)->data, match.route->data).
 * @return 0; -EINVAL (bad pattern or method, bad regex, too many parameters
 *         or segments); -EEXIST (conflicts with a route already added, or
 *         the name is taken); -EBUSY (frozen); -ENOMEM. On error
 *         hp_router_error() says why, naming both patterns of a conflict.
 */
HP_API int hp_router_add(struct hp_router *r, const char *method, const char *pattern,
                         hp_http_handler *handler, void *data);

/**
 * hp_router_add() with a name for hp_router_url() (copied; NULL for none).
 * @return as hp_router_add(); -EEXIST also for a name already used.
 */
HP_API int hp_router_add_named(struct hp_router *r, const char *name, const char *method,
                               const char *pattern, hp_http_handler *handler, void *data);

/**
 * Mount the frozen router @p sub at the static @p prefix (e.g. "/api",
 * without trailing slash; "/" is refused). Requests for prefix + "/..." are
 * matched against @p sub with the rest of the path. @p sub is borrowed and
 * must outlive @p r; it cannot be @p r (it is frozen, @p r is not). The
 * names of @p sub's routes become names of @p r (see "Route names" above).
 * @return as hp_router_add(); -EINVAL also if @p sub is not frozen; -EEXIST
 *         also if a route name of @p sub is already one of @p r.
 */
HP_API int hp_router_mount(struct hp_router *r, const char *prefix, const struct hp_router *sub);

/**
 * Mount @p handler at the static @p prefix for every method: it gets
 * prefix + "/..." and reads the rest with hp_route_rest().
 * @return as hp_router_add().
 */
HP_API int hp_router_mount_handler(struct hp_router *r, const char *prefix,
                                   hp_http_handler *handler, void *data);

/**
 * Make the router immutable and ready for lookups (builds its indexes,
 * among them one lookup tree per method the routes name: about twice the
 * memory of the routes alone, e.g. 295 KB for the 203 GitHub API routes).
 * Calling it again does nothing.
 * @return 0 or -ENOMEM (the router then stays unfrozen and usable).
 */
HP_API int hp_router_freeze(struct hp_router *r);

/**
 * Why the last failed call on @p r failed (one line, NUL-terminated,
 * owned by the router, valid until the next call); "" if none did.
 */
HP_API const char *hp_router_error(const struct hp_router *r);

/**
 * Look a request up; a pure function of its arguments and the frozen
 * table, allocation-free, safe from any thread.
 * @param method the request method token (case-sensitive).
 * @param path the raw path of the request-target (no query).
 * @param m filled as described in struct hp_route_match.
 * @return an enum hp_route_result (>= 0), or -EINVAL if @p r is not frozen.
 */
HP_API int hp_router_match(const struct hp_router *r, struct hp_str method, struct hp_str path,
                           struct hp_route_match *m);

/**
 * hp_router_match() with the method as the HTTP parser's enum
 * (hp_http_req.method_id): the same answers, without reading a method token
 * (the lookup hp_router_dispatch() does). HP_HTTP_OTHER stands for a method
 * no route names (only any-method routes take it).
 * @return as hp_router_match(); -EINVAL also for a value outside the enum,
 *         and for HP_HTTP_OTHER on a router whose routes name methods
 *         outside the enum (it cannot tell which: use hp_router_match()).
 */
HP_API int hp_router_match_id(const struct hp_router *r, enum hp_http_method method,
                              struct hp_str path, struct hp_route_match *m);

/**
 * Write the methods of an allow mask as an Allow value ("GET, HEAD,
 * OPTIONS"), NUL-terminated.
 * @return the length (without NUL), or -ENOSPC if @p cap is too small.
 */
HP_API int hp_router_allow(const struct hp_router *r, uint32_t allow, char *buf, size_t cap);

/**
 * Build the path of the route named @p name with @p values for its
 * parameters (pattern order), percent-encoding each value so that matching
 * the result gives the same values back: everything but RFC 3986
 * unreserved bytes is encoded, '/' included, except inside a catch-all
 * value, whose slashes separate segments. Names of routes in routers
 * mounted in @p r are found too (its own first, then mounts in the order
 * they were added, 16 deep at most), with the mount prefixes prepended, so
 * that the result matches through @p r.
 * @return the length written to @p buf (NUL-terminated); -ENOENT (no such
 *         name); -EINVAL (wrong number of values, an empty parameter, a
 *         value a constraint refuses, a catch-all with dot or empty
 *         segments); -ENOSPC (@p cap too small).
 */
HP_API int hp_router_url(const struct hp_router *r, const char *name, const struct hp_str *values,
                         size_t nvalues, char *buf, size_t cap);

/**
 * Percent-decode @p raw into @p out ('+' is not a space in paths).
 * @return the decoded length (no NUL is added); -EINVAL (malformed escape
 *         or a decoded NUL); -ENOSPC (more than @p cap bytes).
 */
HP_API int hp_route_decode(struct hp_str raw, char *out, size_t cap);

/**
 * Clean a path as the router's redirects do: remove_dot_segments (RFC 3986
 * 5.2.4; `%2e` counts as '.'), runs of '/' collapsed, a trailing slash kept.
 * @p out gets at most path.len bytes plus NUL.
 * @return the length; -EINVAL (not starting with '/'); -ENOSPC.
 */
HP_API int hp_router_clean_path(struct hp_str path, char *out, size_t cap);

/* ---- dispatch ------------------------------------------------------------ */

/**
 * Route @p req (call it from on_request or on_head): match its method and
 * path, keep the parameters in the request (values with escapes decoded
 * into its arena, the others as views into the path) and call
 * the route's handler, or answer 400/404/405/OPTIONS/redirects as described
 * at the top (through the replacement handlers if set). The parameters stay
 * readable with hp_route_param() until the request is finished, also from
 * later callbacks.
 * @return what the handler returned; 0 after an answer of the router's own;
 *         -ENOMEM (arena full while decoding escapes); -EINVAL (not frozen).
 */
HP_API int hp_router_dispatch(const struct hp_router *r, struct hp_http_req *req);

/**
 * Parameter @p name of the route that hp_router_dispatch() chose for
 * @p req, percent-decoded: a view into the request's path, or for a value
 * that had escapes into its arena; valid until the request is finished.
 * @return true and *value, or false (no such parameter, or not dispatched).
 */
HP_API bool hp_route_param(const struct hp_http_req *req, const char *name, struct hp_str *value);

/** Number of parameters of the dispatched route (0 if not dispatched). */
HP_API size_t hp_route_param_count(const struct hp_http_req *req);

/**
 * The @p i th parameter (pattern order): name and decoded value; either
 * out pointer may be NULL.
 * @return true, or false if @p i is out of range.
 */
HP_API bool hp_route_param_at(const struct hp_http_req *req, size_t i, struct hp_str *name,
                              struct hp_str *value);

/** The route chosen for @p req by hp_router_dispatch(), or NULL. */
HP_API const struct hp_route *hp_route_of(const struct hp_http_req *req);

/**
 * For a handler mounted with hp_router_mount_handler(): the raw rest of the
 * path after the prefix, starting with '/'. Empty otherwise.
 */
HP_API struct hp_str hp_route_rest(const struct hp_http_req *req);

#endif
