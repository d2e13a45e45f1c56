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
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>

#define MAX_WORKERS 64
#define GRACE_MS    10000

struct worker {
    struct hp_loop *loop;
    struct hp_http_server *srv;
    struct hp_signal sigint, sigterm;
    struct hp_http_server_opts opts;
    pthread_t thread;
    int err;
    char *json; /* scratch for the response, reused by every request */
    size_t json_cap;
};

/* Make room for @p n more bytes after @p len; 0 or -ENOMEM. */
static int reserve(struct worker *w, size_t len, size_t n)
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
    struct worker *w = hp_http_server_data(req->server);
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

static void on_signal(struct hp_signal *s, int signum)
{
    struct worker *w = s->data;

    (void)signum;
    hp_signal_stop(&w->sigint);
    hp_signal_stop(&w->sigterm);
    hp_http_server_shutdown(w->srv, GRACE_MS, NULL);
}

/* Create the loop, server and signal watchers of @p w; 0 or a negative errno. */
static int worker_init(struct worker *w)
{
    int err;

    if ((err = hp_loop_new(&w->loop, NULL)) != 0)
        return err;
    w->opts.data = w;
    if ((err = hp_http_server_new(&w->srv, w->loop, &w->opts)) != 0)
        goto err_loop;
    hp_signal_init(w->loop, &w->sigint, on_signal);
    hp_signal_init(w->loop, &w->sigterm, on_signal);
    w->sigint.data = w->sigterm.data = w;
    if ((err = hp_signal_start(&w->sigint, SIGINT)) != 0 ||
        (err = hp_signal_start(&w->sigterm, SIGTERM)) != 0)
        goto err_server;
    return 0;

err_server:
    hp_signal_stop(&w->sigint);
    hp_http_server_free(w->srv);
err_loop:
    hp_loop_free(w->loop);
    return err;
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;

    w->err = hp_loop_run(w->loop);
    if (hp_http_server_free(w->srv) != 0 || hp_loop_free(w->loop) != 0)
        w->err = w->err ? w->err : -EBUSY;
    free(w->json);
    return NULL;
}

static void usage(FILE *f)
{
    fputs("usage: echo  [--host ADDR] [--port N] [--workers N] [--max-connections N]\n"
          "             [--header-timeout MS] [--body-timeout MS] [--keepalive-timeout MS]\n"
          "             [--write-timeout MS] [--max-body BYTES] [--help]\n"
          "Answers every request with a JSON echo of it. --port 0 picks a free port.\n",
          f);
}

/* Parse a number option; exits with status 2 on a bad value. */
static unsigned long number(const char *opt, const char *v, unsigned long max)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = v ? strtoul(v, &end, 10) : 0;
    if (v == NULL || *v == '\0' || *end != '\0' || errno != 0 || n > max) {
        fprintf(stderr, "echo: bad value for %s\n", opt);
        exit(2);
    }
    return n;
}

static void parse_args(int argc, char **argv, struct hp_http_server_opts *o, unsigned *workers)
{
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--host") == 0 && v) {
            o->listen.host = v;
        } else if (strcmp(a, "--port") == 0) {
            o->listen.port = (uint16_t)number(a, v, 65535);
        } else if (strcmp(a, "--workers") == 0) {
            *workers = (unsigned)number(a, v, MAX_WORKERS);
        } else if (strcmp(a, "--max-connections") == 0) {
            o->max_connections = (uint32_t)number(a, v, 1000000);
        } else if (strcmp(a, "--header-timeout") == 0) {
            o->header_timeout_ms = (uint32_t)number(a, v, 86400000);
        } else if (strcmp(a, "--body-timeout") == 0) {
            o->body_timeout_ms = (uint32_t)number(a, v, 86400000);
        } else if (strcmp(a, "--keepalive-timeout") == 0) {
            o->keepalive_timeout_ms = (uint32_t)number(a, v, 86400000);
        } else if (strcmp(a, "--write-timeout") == 0) {
            o->write_timeout_ms = (uint32_t)number(a, v, 86400000);
        } else if (strcmp(a, "--max-body") == 0) {
            o->max_body = number(a, v, 1ul << 30);
        } else {
            fprintf(stderr, "echo: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            exit(2);
        }
    }
    if (*workers == 0) {
        fprintf(stderr, "echo: --workers must be 1..%d\n", MAX_WORKERS);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    static struct worker workers[MAX_WORKERS];
    struct hp_http_server_opts opts = {.on_request = on_request};
    unsigned n = 1, started = 0;
    int err = 0;

    opts.listen.port = 8080;
    parse_args(argc, argv, &opts, &n);
    opts.listen.reuseport = n > 1;
    for (unsigned i = 0; i < n; i++) {
        workers[i].opts = opts;
        if ((err = worker_init(&workers[i])) != 0)
            break;
        if (i == 0) /* port 0: the others join the port the first one got */
            opts.listen.port = (uint16_t)hp_http_server_port(workers[0].srv);
        started++;
    }
    if (err != 0) {
        fprintf(stderr, "echo: cannot listen: %s\n", hp_strerror(err));
        if (started > 0)
            raise(SIGTERM); /* every started worker's watcher sees it */
    } else {
        printf("echo: listening on http://%s:%u/ (%u worker%s, %s)\n",
               opts.listen.host ? opts.listen.host : "[::]", opts.listen.port, n, n > 1 ? "s" : "",
               hp_loop_backend(workers[0].loop));
        fflush(stdout);
    }
    for (unsigned i = 1; i < started; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]) != 0) {
            fprintf(stderr, "echo: cannot start a thread\n");
            return 1;
        }
    }
    if (started > 0)
        worker_run(&workers[0]);
    for (unsigned i = 1; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    for (unsigned i = 0; i < started && err == 0; i++)
        err = workers[i].err;
    return err == 0 ? 0 : 1;
}
