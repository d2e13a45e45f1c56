/**
 * @file mustache_http.h
 * A Mustache page as an HTTP response: the glue between the template engine
 * (hellepoll/mustache.h, which needs no server) and the HTTP server
 * (hellepoll/http.h). It is a library of its own: link
 * hellepoll::mustache_http (find_package component mustache_http,
 * pkg-config hellepoll-mustache_http), which brings both modules.
 *
 *     static int on_page(struct hp_http_req *req)
 *     {
 *         struct page p = {...};        // the handler's own structs
 *         return hp_mustache_reply(req, 200, HP_STR_LIT("text/html; charset=utf-8"),
 *                                  page_tmpl, &page_type, &p, NULL);
 *     }
 */
#ifndef HP_MUSTACHE_HTTP_H
#define HP_MUSTACHE_HTTP_H

#include <hellepoll/defs.h>
#include <hellepoll/http.h>
#include <hellepoll/mustache.h>

/**
 * Render @p t with @p data of @p type (as hp_mustache_render()) and send it
 * as the whole response to @p req: @p status, @p content_type (omitted if
 * its len is 0), Content-Length, the headers added with hp_http_add_header()
 * and the page (not for HEAD, whose Content-Length is still the page's).
 *
 * The page is rendered into a buffer of the calling thread, kept from one
 * call to the next (so a thread allocates only while its pages grow; one
 * over 1 MiB is given back after its reply), and hp_http_reply() copies it
 * into the connection's output: one copy, no allocation per request. The
 * buffer is freed when the thread exits. Rendering runs inside the call:
 * call it on the loop's thread, as every reply function.
 *
 * It FINISHES the request (see the lifetime rules in http.h) whatever it
 * returns: do not touch @p req afterwards.
 *
 * @return 0 (sent);
 *         HP_ECLOSED (the request was closed, e.g. the client left: nothing
 *         is rendered or sent);
 *         a render error (-ENOMEM, -EMSGSIZE, -ELOOP, -ENOENT in strict
 *         mode, a lambda's error, -EINVAL; opts->err tells where): the
 *         client gets a 500 instead of the page;
 *         -EINVAL for a @p status outside 200..599 (nothing is rendered),
 *         a bad @p content_type or a response already started: the request
 *         is finished all the same (hp_http_req_release(): the server
 *         answers 500, or cuts the started response);
 *         otherwise hp_http_reply()'s error (-ENOMEM: the connection is
 *         closed).
 */
HP_API int hp_mustache_reply(struct hp_http_req *req, int status, struct hp_str content_type,
                             const struct hp_mustache *t, const struct hp_mustache_type *type,
                             const void *data, const struct hp_mustache_render_opts *opts);

#endif
