/*
 * echo - answers any method on any target with 200 and a JSON description
 * of the request:
 *   {"method": "...", "target": "...", "version": "HTTP/1.1",
 *    "headers": [["Name", "value"], ...], "body": "..."}
 * Headers are in arrival order with their original case. Bytes are taken
 * as Latin-1: 0x7F and above are escaped as \u00XX, so every byte survives;
 * control characters as \b \f \n \r \t or \u00XX (json.h).
 *
 * Usage: echo [--host ADDR] [--port N] [--workers N] [limits...] [--help]
 * Runs N loops, one per thread, each with its own server on the same port
 * (SO_REUSEPORT). SIGINT or SIGTERM stops it gracefully: no new
 * connections, in-flight responses are finished, then it exits 0.
 * The options, threads and signals are in examples/common/serve.c.
 */
#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>
#include <hellepoll/json.h>

#include "serve.h"

/*
 * The request as JSON. The writer is per worker and reset for every
 * request, so it allocates only while it grows. HP_JSON_LATIN1 keeps every
 * byte (headers and bodies need not be UTF-8); HP_JSON_SPACED gives the
 * ", " and ": " separators this output has always had.
 */
static int on_request(struct hp_http_req *req)
{
    struct hp_json *w = hp_http_server_data(req->server);
    size_t nh = hp_http_req_header_count(req);
    struct hp_str name, value, out;
    int err;

    hp_json_reset(w);
    hp_json_obj_begin(w);
    hp_json_kv_str(w, HP_STR_LIT("method"), req->method);
    hp_json_kv_str(w, HP_STR_LIT("target"), req->target);
    hp_json_kv_str(w, HP_STR_LIT("version"),
                   req->version_minor ? HP_STR_LIT("HTTP/1.1") : HP_STR_LIT("HTTP/1.0"));
    hp_json_key(w, HP_STR_LIT("headers"));
    hp_json_arr_begin(w);
    for (size_t i = 0; i < nh && hp_http_req_header_at(req, i, &name, &value); i++) {
        hp_json_arr_begin(w);
        hp_json_str(w, name);
        hp_json_str(w, value);
        hp_json_arr_end(w);
    }
    hp_json_arr_end(w);
    hp_json_kv_str(w, HP_STR_LIT("body"), req->body);
    hp_json_obj_end(w);
    if ((err = hp_json_finish(w, &out)) != 0)
        return err;
    return hp_http_reply(req, 200, HP_STR_LIT("application/json"), out.ptr, out.len);
}

static void *worker_data(unsigned index)
{
    static struct hp_json writers[HP_EXAMPLE_MAX_WORKERS];

    hp_json_init_alloc(&writers[index], NULL, HP_JSON_LATIN1 | HP_JSON_SPACED);
    return &writers[index];
}

static void worker_done(void *data)
{
    hp_json_free(data);
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
