/*
 * route-echo - serves a route table: every route answers 200 with
 *   {"route": "<pattern as written in the file>", "method": "<its method>",
 *    "params": {"name": "decoded value", ...}}
 * and everything else gets the router's own answers (404, 405 with Allow,
 * 204 for OPTIONS, 400, clean-path redirects).
 *
 * Usage: route-echo --routes FILE [--routes FILE...] [--redirect-slash]
 *                   [--host ADDR] [--port N] [--workers N] [limits...]
 * FILE has one route per line, "METHOD PATH", where ":name" in PATH is one
 * segment and "*name" the rest of the path (go-http-routing-benchmark's
 * format); lines starting with '#' and empty lines are skipped. The routes
 * are converted to the router's syntax ({name}, {name...}); a conflict or a
 * bad line stops it with a message. All workers share one frozen router.
 *
 * JSON by the module's writer (json.h): RFC 8259 escaping, valid UTF-8
 * copied, ill-formed UTF-8 as U+FFFD.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>
#include <hellepoll/json.h>
#include <hellepoll/router.h>

#include "serve.h"

struct echo_route {
    char *method;
    char *pattern; /* as written in the file */
};

static struct hp_router *router;

static int on_route(struct hp_http_req *req)
{
    const struct echo_route *er = hp_route_of(req)->data;
    struct hp_str name, value, out;
    struct hp_json w;
    size_t cap = 64 + 6 * (strlen(er->pattern) + strlen(er->method));
    char *buf;

    /* Room for the worst case: every byte escaped as \u00XX (or U+FFFD, 3 bytes). */
    for (size_t i = 0; hp_route_param_at(req, i, &name, &value); i++)
        cap += 16 + 6 * (name.len + value.len);
    if ((buf = hp_http_req_alloc(req, cap)) == NULL)
        return -ENOMEM;
    hp_json_init_fixed(&w, buf, cap, HP_JSON_SPACED);
    hp_json_obj_begin(&w);
    hp_json_kv_str(&w, HP_STR_LIT("route"), (struct hp_str){er->pattern, strlen(er->pattern)});
    hp_json_kv_str(&w, HP_STR_LIT("method"), (struct hp_str){er->method, strlen(er->method)});
    hp_json_key(&w, HP_STR_LIT("params"));
    hp_json_obj_begin(&w);
    for (size_t i = 0; hp_route_param_at(req, i, &name, &value); i++)
        hp_json_kv_str(&w, name, value);
    hp_json_obj_end(&w);
    hp_json_obj_end(&w);
    if (hp_json_finish(&w, &out) != 0)
        return -ENOMEM; /* cannot happen with the room above: the server answers 500 */
    return hp_http_reply(req, 200, HP_STR_LIT("application/json"), out.ptr, out.len);
}

static int on_request(struct hp_http_req *req)
{
    return hp_router_dispatch(router, req);
}

/* ":name" -> "{name}", "*name" -> "{name...}"; 0 or -ENOSPC. */
static int convert(const char *in, char *out, size_t cap)
{
    size_t n = 0;

    for (const char *p = in; *p != '\0';) {
        if ((*p == ':' || *p == '*') && p > in && p[-1] == '/') {
            size_t l = strcspn(p + 1, "/");
            int w = snprintf(out + n, cap - n, "{%.*s%s}", (int)l, p + 1, *p == '*' ? "..." : "");
            if (w < 0 || (size_t)w >= cap - n)
                return -ENOSPC;
            n += (size_t)w;
            p += 1 + l;
        } else {
            if (n + 1 >= cap)
                return -ENOSPC;
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return 0;
}

static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    return p != NULL ? memcpy(p, s, n) : NULL;
}

static int load(const char *file)
{
    char line[4096], method[64], path[2048], pat[4096];
    unsigned lineno = 0;
    FILE *f = fopen(file, "r");

    if (f == NULL) {
        fprintf(stderr, "route-echo: %s: %s\n", file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        struct echo_route *er;
        char extra[2];
        lineno++;
        if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
            continue;
        if (sscanf(line, "%63s %2047s %1s", method, path, extra) != 2 ||
            convert(path, pat, sizeof(pat)) != 0) {
            fprintf(stderr, "route-echo: %s:%u: expected \"METHOD PATH\"\n", file, lineno);
            goto fail;
        }
        if ((er = malloc(sizeof(*er))) == NULL || (er->method = dup(method)) == NULL ||
            (er->pattern = dup(path)) == NULL) {
            fprintf(stderr, "route-echo: out of memory\n");
            goto fail;
        }
        if (hp_router_add(router, method, pat, on_route, er) != 0) {
            fprintf(stderr, "route-echo: %s:%u: %s\n", file, lineno, hp_router_error(router));
            goto fail;
        }
    }
    fclose(f);
    return 0;
fail:
    fclose(f);
    return -1;
}

int main(int argc, char **argv)
{
    static const struct hp_example ex = {
        .name = "route-echo",
        .summary = "Serves the routes of --routes FILE (\"METHOD PATH\" lines, :name and *name),\n"
                   "answering each with its pattern, method and decoded parameters as JSON.\n",
        .on_request = on_request,
    };
    struct hp_router_opts opts = {0};
    const char *files[64];
    int nfiles = 0, n = 1;

    /* Take our options out; hp_example_serve() parses the rest. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--routes") == 0 && i + 1 < argc && nfiles < 64)
            files[nfiles++] = argv[++i];
        else if (strcmp(argv[i], "--redirect-slash") == 0)
            opts.redirect_trailing_slash = true;
        else
            argv[n++] = argv[i];
    }
    argv[n] = NULL;
    if (nfiles == 0 && (n < 2 || strcmp(argv[1], "--help") != 0)) {
        fprintf(stderr, "usage: route-echo --routes FILE [--redirect-slash] [--host ADDR] "
                        "[--port N] [--workers N] [--help]\n");
        return 2;
    }
    if (hp_router_new(&router, &opts) != 0)
        return 1;
    for (int i = 0; i < nfiles; i++) {
        if (load(files[i]) != 0)
            return 1;
    }
    if (hp_router_freeze(router) != 0)
        return 1;
    return hp_example_serve(&ex, n, argv);
}
