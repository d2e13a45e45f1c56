/*
 * hello - answers every request with "Hello, World!" (text/plain).
 *
 * Usage: hello [--host ADDR] [--port N] [--workers N] [limits...] [--help]
 * Runs N loops, one per thread, each with its own server on the same port
 * (SO_REUSEPORT). SIGINT or SIGTERM stops it gracefully: no new
 * connections, in-flight responses are finished, then it exits 0.
 * The options, threads and signals are in examples/common/serve.c.
 */
#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>

#include "serve.h"

static int on_request(struct hp_http_req *req)
{
    static const char body[] = "Hello, World!";

    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), body, sizeof(body) - 1);
}

int main(int argc, char **argv)
{
    static const struct hp_example ex = {
        .name = "hello",
        .summary = "Answers every request with \"Hello, World!\". --port 0 picks a free port.\n",
        .on_request = on_request,
    };

    return hp_example_serve(&ex, argc, argv);
}
