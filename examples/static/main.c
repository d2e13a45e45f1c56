/*
 * static - serves a directory over HTTP (like python3 -m http.server, on
 * hellepoll's static-file handler: ranges, conditional requests, ETags,
 * precompressed .br/.gz siblings, an open-file cache, the file system off
 * the loop on a thread pool).
 *
 * Usage: static --root DIR [--listing] [--dotfiles] [--mime-types FILE]
 *               [--host ADDR] [--port N] [--workers N] [limits...] [--help]
 * The options, threads and signals are in examples/common/serve.c.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>
#include <hellepoll/static.h>

#include "serve.h"

static struct hp_static_opts sopts = {.mime_types = "/etc/mime.types"};

struct worker_state {
    struct hp_static *st; /* one per worker loop */
};

static int on_request(struct hp_http_req *req)
{
    struct worker_state *ws = hp_http_server_data(req->server);

    return hp_static_handle(ws->st, req, req->path);
}

static int worker_start(void *data, struct hp_loop *loop)
{
    struct worker_state *ws = data;

    return ws ? hp_static_new(&ws->st, loop, &sopts) : -ENOMEM;
}

static int option(const char *name, const char *value)
{
    if (strcmp(name, "--root") == 0 && value) {
        sopts.root = value;
        return 2;
    }
    if (strcmp(name, "--mime-types") == 0 && value) {
        sopts.mime_types = value;
        return 2;
    }
    if ((strcmp(name, "--cache-ttl") == 0 || strcmp(name, "--mem-file-max") == 0 ||
         strcmp(name, "--chunk") == 0) &&
        value) {
        char *end;
        unsigned long v = strtoul(value, &end, 10);

        if (*value == '\0' || *end != '\0' || v == 0 || v > (1ul << 30)) {
            fprintf(stderr, "static: bad value for %s\n", name);
            return -1;
        }
        if (name[2] == 'c' && name[3] == 'a')
            sopts.cache_ttl_ms = (uint32_t)v;
        else if (name[2] == 'm')
            sopts.mem_file_max = (uint32_t)v;
        else
            sopts.chunk = (uint32_t)v;
        return 2;
    }
    if (strcmp(name, "--listing") == 0) {
        sopts.listing = true;
        return 1;
    }
    if (strcmp(name, "--dotfiles") == 0) {
        sopts.dotfiles = true;
        return 1;
    }
    return 0;
}

static void *worker_data(unsigned index)
{
    (void)index;
    return calloc(1, sizeof(struct worker_state));
}

static void worker_done(void *data)
{
    struct worker_state *ws = data;

    if (ws)
        hp_static_free(ws->st);
    free(ws);
}

int main(int argc, char **argv)
{
    static const struct hp_example ex = {
        .name = "static",
        .summary = "Serves the files under --root DIR (GET, HEAD, ranges, conditional requests).\n"
                   "--listing lists directories without an index.html; --dotfiles serves\n"
                   "names starting with '.'; --mime-types FILE (default /etc/mime.types if\n"
                   "present) adds Content-Types. --cache-ttl: revalidate cached lookups after\n"
                   "MS (1000); files up to --mem-file-max bytes are kept in memory; --chunk:\n"
                   "bytes read per step for bigger ones. --port 0 picks a free port.\n",
        .on_request = on_request,
        .option = option,
        .options_usage = "[--root DIR] [--listing] [--dotfiles] [--mime-types FILE]\n"
                         "              [--cache-ttl MS] [--mem-file-max BYTES] [--chunk BYTES]\n",
        .worker_data = worker_data,
        .worker_start = worker_start,
        .worker_done = worker_done,
    };
    DIR *dir;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return hp_example_serve(&ex, argc, argv);
    }
    /* Parse early just for --root, so that a bad one fails before listening. */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--root") == 0)
            sopts.root = argv[i + 1];
    }
    if (!sopts.root) {
        fprintf(stderr, "static: --root DIR is required\n");
        return 2;
    }
    if (!(dir = opendir(sopts.root))) {
        fprintf(stderr, "static: cannot open --root %s\n", sopts.root);
        return 2;
    }
    closedir(dir);
    return hp_example_serve(&ex, argc, argv);
}
