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
 * JSON strings: '"', '\\' and control bytes are escaped, valid UTF-8 is
 * copied, and a byte that is not part of valid UTF-8 becomes U+FFFD. (A
 * local escaper until the module's JSON writer lands.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>
#include <hellepoll/router.h>

#include "serve.h"

struct echo_route {
    char *method;
    char *pattern; /* as written in the file */
};

static struct hp_router *router;

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    size_t n;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1fu;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0fu;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07u;
    else
        return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* Append @p s as a JSON string, quotes included; @p out has 6 bytes per input byte + 2. */
static size_t put_json(char *out, size_t len, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)p;

    out[len++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t u;
        if (c == '"' || c == '\\') {
            out[len++] = '\\';
            out[len++] = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + len, "\\u00", 4);
            out[len + 4] = hex[c >> 4];
            out[len + 5] = hex[c & 15];
            len += 6;
            i++;
        } else if ((u = utf8_len(s + i, n - i)) != 0) {
            memcpy(out + len, s + i, u);
            len += u;
            i += u;
        } else {
            memcpy(out + len, "\\ufffd", 6);
            len += 6;
            i++;
        }
    }
    out[len++] = '"';
    return len;
}

static size_t put_lit(char *out, size_t len, const char *s)
{
    size_t n = strlen(s);

    memcpy(out + len, s, n);
    return len + n;
}

static int on_route(struct hp_http_req *req)
{
    const struct echo_route *er = hp_route_of(req)->data;
    size_t np = hp_route_param_count(req), cap, len = 0;
    struct hp_str name, value;
    char *out;

    cap = 64 + 6 * (strlen(er->pattern) + strlen(er->method));
    for (size_t i = 0; hp_route_param_at(req, i, &name, &value); i++)
        cap += 16 + 6 * (name.len + value.len);
    if ((out = hp_http_req_alloc(req, cap)) == NULL)
        return -ENOMEM;
    len = put_lit(out, len, "{\"route\": ");
    len = put_json(out, len, er->pattern, strlen(er->pattern));
    len = put_lit(out, len, ", \"method\": ");
    len = put_json(out, len, er->method, strlen(er->method));
    len = put_lit(out, len, ", \"params\": {");
    for (size_t i = 0; i < np && hp_route_param_at(req, i, &name, &value); i++) {
        if (i > 0)
            len = put_lit(out, len, ", ");
        len = put_json(out, len, name.ptr, name.len);
        len = put_lit(out, len, ": ");
        len = put_json(out, len, value.ptr, value.len);
    }
    len = put_lit(out, len, "}}\n");
    return hp_http_reply(req, 200, HP_STR_LIT("application/json"), out, len);
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
