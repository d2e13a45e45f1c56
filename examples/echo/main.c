/*
 * echo - answers any method on any target with 200 and a JSON description
 * of the request:
 *   {"method": "...", "target": "...", "version": "HTTP/1.1",
 *    "headers": [["Name", "value"], ...], "body": "..."}
 * Headers are in arrival order with their original case; bytes above 0x7F
 * and control characters are escaped as \u00XX.
 *
 * Usage: echo [--host ADDR] [--port N] [--workers N] [limits...] [--help]
 * Runs N loops, one per thread, each with its own server on the same port
 * (SO_REUSEPORT). SIGINT or SIGTERM stops it gracefully: no new
 * connections, in-flight responses are finished, then it exits 0.
 * The options, threads and signals are in examples/common/serve.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>

#include "serve.h"

/* Per worker: scratch for the response, reused by every request. */
struct scratch {
    char *json;
    size_t json_cap;
};

/* Make room for @p n more bytes after @p len; 0 or -ENOMEM. */
static int reserve(struct scratch *w, size_t len, size_t n)
{
    size_t cap = w->json_cap ? w->json_cap : 4096;
    char *p;

    if (len + n <= w->json_cap)
        return 0;
    while (cap < len + n)
        cap *= 2;
    if ((p = realloc(w->json, cap)) == NULL)
        return -ENOMEM;
    w->json = p;
    w->json_cap = cap;
    return 0;
}

/* Append @p s as a JSON string (quotes included); returns the new length. */
static size_t put_json_string(char *out, size_t len, struct hp_str s)
{
    static const char hex[] = "0123456789abcdef";

    out[len++] = '"';
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') {
            out[len++] = '\\';
            out[len++] = (char)c;
        } else if (c == '\n') {
            out[len++] = '\\';
            out[len++] = 'n';
        } else if (c == '\r') {
            out[len++] = '\\';
            out[len++] = 'r';
        } else if (c == '\t') {
            out[len++] = '\\';
            out[len++] = 't';
        } else if (c < 0x20 || c >= 0x7f) {
            memcpy(out + len, "\\u00", 4);
            out[len + 4] = hex[c >> 4];
            out[len + 5] = hex[c & 15];
            len += 6;
        } else {
            out[len++] = (char)c;
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

/* Worst case of a JSON string of @p n bytes: every byte escaped, plus quotes. */
#define JSON_MAX(n) (6 * (n) + 2)

static int on_request(struct hp_http_req *req)
{
    struct scratch *w = hp_http_server_data(req->server);
    size_t nh = hp_http_req_header_count(req), need, len = 0;
    struct hp_str name, value;
    int err;

    need = 96 + JSON_MAX(req->method.len) + JSON_MAX(req->target.len) + JSON_MAX(req->body.len);
    for (size_t i = 0; i < nh && hp_http_req_header_at(req, i, &name, &value); i++)
        need += 8 + JSON_MAX(name.len) + JSON_MAX(value.len);
    if ((err = reserve(w, 0, need)) != 0)
        return err;
    len = put_lit(w->json, len, "{\"method\": ");
    len = put_json_string(w->json, len, req->method);
    len = put_lit(w->json, len, ", \"target\": ");
    len = put_json_string(w->json, len, req->target);
    len = put_lit(w->json, len,
                  req->version_minor ? ", \"version\": \"HTTP/1.1\", \"headers\": ["
                                     : ", \"version\": \"HTTP/1.0\", \"headers\": [");
    for (size_t i = 0; i < nh && hp_http_req_header_at(req, i, &name, &value); i++) {
        len = put_lit(w->json, len, i ? ", [" : "[");
        len = put_json_string(w->json, len, name);
        len = put_lit(w->json, len, ", ");
        len = put_json_string(w->json, len, value);
        len = put_lit(w->json, len, "]");
    }
    len = put_lit(w->json, len, "], \"body\": ");
    len = put_json_string(w->json, len, req->body);
    len = put_lit(w->json, len, "}");
    return hp_http_reply(req, 200, HP_STR_LIT("application/json"), w->json, len);
}

static void *worker_data(unsigned index)
{
    static struct scratch scratch[HP_EXAMPLE_MAX_WORKERS];

    return &scratch[index];
}

static void worker_done(void *data)
{
    struct scratch *w = data;

    free(w->json);
}

int main(int argc, char **argv)
{
    static const struct hp_example ex = {
        .name = "echo",
        .summary = "Answers every request with a JSON echo of it. --port 0 picks a free port.\n",
        .on_request = on_request,
        .worker_data = worker_data,
        .worker_done = worker_done,
    };

    return hp_example_serve(&ex, argc, argv);
}
