/*
 * bench/mustache/page_server.c - the fortunes page (fortunes_data.h) over
 * HTTP, three ways, for bench/mustache/run-reply.sh to count instructions
 * per request with bench/http/cg-per-request.sh:
 *
 *   --mode reply   hp_mustache_reply(): render into the thread's buffer, reply
 *   --mode copy    hp_mustache_render() into the worker's own buffer, then
 *                  hp_http_reply() (what examples/tfb did before the glue)
 *   --mode static  hp_http_reply() of the page rendered once at start-up
 *
 * reply - copy is what the glue costs; copy - static is the render.
 * Usage: bench_mustache_page_server [--mode M] [serve.c options]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/http.h>
#include <hellepoll/mustache.h>
#include <hellepoll/mustache_http.h>

#include "fortunes_data.h"
#include "serve.h"

static struct hp_mustache *tmpl;
static struct hp_mustache_buf pre; /* --mode static: the page, rendered once */
static int mode;                   /* 0 reply, 1 copy, 2 static */
static _Thread_local struct hp_mustache_buf page;

#define HTML HP_STR_LIT("text/html; charset=utf-8")

static int on_request(struct hp_http_req *req)
{
    /* every reply finishes the request whatever it returns */
    if (mode == 0) {
        (void)hp_mustache_reply(req, 200, HTML, tmpl, &fortunes_type, &fortunes, NULL);
    } else if (mode == 2) {
        (void)hp_http_reply(req, 200, HTML, pre.data, pre.len);
    } else {
        page.len = 0;
        if (hp_mustache_render(tmpl, &fortunes_type, &fortunes, &page, NULL) != 0)
            return -EIO;
        (void)hp_http_reply(req, 200, HTML, page.data, page.len);
    }
    return 0;
}

static int option(const char *opt, const char *value)
{
    if (strcmp(opt, "--mode") != 0)
        return 0;
    if (value && strcmp(value, "reply") == 0)
        mode = 0;
    else if (value && strcmp(value, "copy") == 0)
        mode = 1;
    else if (value && strcmp(value, "static") == 0)
        mode = 2;
    else {
        fprintf(stderr, "bench_mustache_page_server: --mode reply|copy|static\n");
        return -1;
    }
    return 2;
}

static void worker_done(void *data)
{
    (void)data;
    hp_mustache_buf_free(&page);
}

int main(int argc, char **argv)
{
    static const struct hp_example ex = {
        .name = "bench_mustache_page_server",
        .summary = "Serves the fortunes page (see the file comment).\n",
        .on_request = on_request,
        .worker_done = worker_done,
        .option = option,
        .options_usage = "[--mode reply|copy|static]\n",
    };
    int rc;

    if (hp_mustache_compile(&tmpl, "fortunes", fortunes_tpl, sizeof(fortunes_tpl) - 1, NULL,
                            NULL) != 0 ||
        hp_mustache_render(tmpl, &fortunes_type, &fortunes, &pre, NULL) != 0)
        return 1;
    rc = hp_example_serve(&ex, argc, argv);
    hp_mustache_buf_free(&pre);
    hp_mustache_free(tmpl);
    return rc;
}
