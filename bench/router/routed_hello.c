/*
 * routed-hello - hello ("Hello, World!", text/plain) served through the
 * router: every route of --routes FILE (the format route-echo reads)
 * answers it, everything else gets the router's 404/405. For measuring what
 * routing adds to a request (bench/router/run.sh), against examples/hello
 * on the same request-target.
 *
 * Usage: routed-hello --routes FILE [--host ADDR] [--port N] [--workers N]
 */
#include <stdio.h>
#include <string.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>
#include <hellepoll/router.h>

#include "serve.h"

static struct hp_router *router;

static int on_hello(struct hp_http_req *req)
{
    static const char body[] = "Hello, World!";

    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), body, sizeof(body) - 1);
}

static int on_request(struct hp_http_req *req)
{
    return hp_router_dispatch(router, req);
}

/* ":name" -> "{name}", "*name" -> "{name...}". */
static void convert(const char *in, char *out, size_t cap)
{
    size_t n = 0;

    for (const char *p = in; *p != '\0' && n + 8 < cap;) {
        if ((*p == ':' || *p == '*') && p > in && p[-1] == '/') {
            size_t l = strcspn(p + 1, "/");
            n += (size_t)snprintf(out + n, cap - n, "{%.*s%s}", (int)l, p + 1,
                                  *p == '*' ? "..." : "");
            p += 1 + l;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

static int load(const char *file)
{
    char line[1024], method[32], path[512], pat[1024];
    FILE *f = fopen(file, "r");

    if (f == NULL) {
        perror(file);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (line[0] == '#' || sscanf(line, "%31s %511s", method, path) != 2)
            continue;
        convert(path, pat, sizeof(pat));
        if (hp_router_add(router, method, pat, on_hello, NULL) != 0) {
            fprintf(stderr, "routed-hello: %s\n", hp_router_error(router));
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct hp_example ex = {
        .name = "routed-hello",
        .summary = "Answers \"Hello, World!\" on every route of --routes FILE.\n",
        .on_request = on_request,
    };
    const char *file = NULL;
    int n = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--routes") == 0 && i + 1 < argc)
            file = argv[++i];
        else
            argv[n++] = argv[i];
    }
    argv[n] = NULL;
    if (hp_router_new(&router, NULL) != 0 || (file != NULL && load(file) != 0) ||
        hp_router_freeze(router) != 0)
        return 1;
    return hp_example_serve(&ex, n, argv);
}
