/*
 * See serve.h. Runs N loops, one per thread, each with its own server on the
 * same port (SO_REUSEPORT). SIGINT or SIGTERM stops it gracefully: no new
 * connections, in-flight responses are finished, then it exits 0.
 */
#include "serve.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/accesslog.h>
#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>

#define GRACE_MS 10000

struct worker {
    const struct hp_example *ex;
    struct hp_loop *loop;
    struct hp_http_server *srv;
    struct hp_signal sigint, sigterm;
    struct hp_http_server_opts opts;
    struct hp_accesslog *log;
    pthread_t thread;
    int err;
    char error_html[1024]; /* --error-pages html: this worker's page being sent */
};

/* --access-log PATH [--access-log-format F]: one log per worker, one file. */
static const char *log_path;
static enum hp_accesslog_format log_format = HP_ACCESSLOG_COMBINED;

/* --error-pages html: the server's own 4xx/5xx answers as small HTML pages. */
static bool html_errors;

static struct worker workers[HP_EXAMPLE_MAX_WORKERS];

/* The error-page hook: runs on the worker's loop, so the worker's buffer is free. */
static int html_error_page(void *data, int status, const char *reason,
                           struct hp_http_error_page *out)
{
    struct worker *w = data;
    const char *phrase = hp_http_status_reason(status);
    /* The reasons are the server's own one-line texts, without markup. */
    int n = snprintf(w->error_html, sizeof(w->error_html),
                     "<!doctype html>\n<title>%d %s</title>\n<h1>%d %s</h1>\n<p>%s</p>\n", status,
                     phrase, status, phrase, reason);

    if (n < 0 || (size_t)n >= sizeof(w->error_html))
        return -1; /* the default body, then */
    out->content_type = HP_STR_LIT("text/html; charset=utf-8");
    out->body = (struct hp_str){w->error_html, (size_t)n};
    return 0;
}

/* The server is down: its log has nothing more to come (and must not keep the loop alive). */
static void on_down(struct hp_http_server *srv)
{
    for (unsigned i = 0; i < HP_EXAMPLE_MAX_WORKERS; i++) {
        if (workers[i].srv == srv && workers[i].log != NULL) {
            hp_accesslog_free(workers[i].log);
            workers[i].log = NULL;
        }
    }
}

static void on_signal(struct hp_signal *s, int signum)
{
    struct worker *w = s->data;

    (void)signum;
    hp_signal_stop(&w->sigint);
    hp_signal_stop(&w->sigterm);
    if (w->ex->worker_stop)
        w->ex->worker_stop(w->opts.data);
    if (w->log != NULL)
        (void)hp_accesslog_flush(w->log);
    hp_http_server_shutdown(w->srv, GRACE_MS, on_down);
}

/* Create the loop, server and signal watchers of @p w; 0 or a negative errno. */
static int worker_init(struct worker *w)
{
    int err;

    if ((err = hp_loop_new(&w->loop, NULL)) != 0)
        return err;
    if (log_path != NULL) {
        struct hp_accesslog_opts lo = {
            .format = log_format, .path = log_path, .reopen_on_sighup = true};
        if ((err = hp_accesslog_new(&w->log, w->loop, &lo)) != 0)
            goto err_loop;
        hp_accesslog_attach(w->log, &w->opts);
    }
    if (html_errors) {
        w->opts.error_page = html_error_page;
        w->opts.error_page_data = w;
    }
    if (w->ex->worker_start && (err = w->ex->worker_start(w->opts.data, w->loop)) != 0)
        goto err_log;
    if ((err = hp_http_server_new(&w->srv, w->loop, &w->opts)) != 0)
        goto err_log;
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
err_log:
    if (w->log != NULL)
        hp_accesslog_free(w->log);
err_loop:
    hp_loop_free(w->loop);
    return err;
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;

    w->err = hp_loop_run(w->loop);
    if (w->log != NULL)
        hp_accesslog_free(w->log);
    if (hp_http_server_free(w->srv) != 0 || hp_loop_free(w->loop) != 0)
        w->err = w->err ? w->err : -EBUSY;
    if (w->ex->worker_done)
        w->ex->worker_done(w->opts.data);
    return NULL;
}

static void usage(const struct hp_example *ex, FILE *f)
{
    /* Pad short names so that the option lines stay aligned. */
    int width = (int)strlen(ex->name) < 5 ? 5 : (int)strlen(ex->name), indent = width + 8;

    fprintf(f,
            "usage: %-*s [--host ADDR] [--port N] [--workers N] [--max-connections N]\n"
            "%*s[--header-timeout MS] [--body-timeout MS] [--keepalive-timeout MS]\n"
            "%*s[--write-timeout MS] [--max-body BYTES]\n"
            "%*s[--max-keepalive-requests N] [--access-log PATH]\n"
            "%*s[--access-log-format combined|common|json] [--error-pages html] [--help]\n",
            width, ex->name, indent, "", indent, "", indent, "", indent, "");
    if (ex->options_usage != NULL)
        fprintf(f, "%*s%s", indent, "", ex->options_usage);
    fprintf(f,
            "%s"
            "--max-keepalive-requests 0 keeps the default (1000); 4294967295 is in\n"
            "effect unlimited. --access-log appends a line per request (SIGHUP reopens).\n"
            "--error-pages html: the server's own error responses as HTML pages.\n",
            ex->summary);
}

/* Parse a number option; exits with status 2 on a bad value. */
static unsigned long number(const struct hp_example *ex, const char *opt, const char *v,
                            unsigned long max)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = v ? strtoul(v, &end, 10) : 0;
    if (v == NULL || *v == '\0' || *end != '\0' || errno != 0 || n > max) {
        fprintf(stderr, "%s: bad value for %s\n", ex->name, opt);
        exit(2);
    }
    return n;
}

static void parse_args(const struct hp_example *ex, int argc, char **argv,
                       struct hp_http_server_opts *o, unsigned *nworkers)
{
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int took;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(ex, stdout);
            exit(0);
        } else if (strcmp(a, "--host") == 0 && v) {
            o->listen.host = v;
        } else if (strcmp(a, "--port") == 0) {
            o->listen.port = (uint16_t)number(ex, a, v, 65535);
        } else if (strcmp(a, "--workers") == 0) {
            *nworkers = (unsigned)number(ex, a, v, HP_EXAMPLE_MAX_WORKERS);
        } else if (strcmp(a, "--max-connections") == 0) {
            o->max_connections = (uint32_t)number(ex, a, v, 1000000);
        } else if (strcmp(a, "--header-timeout") == 0) {
            o->header_timeout_ms = (uint32_t)number(ex, a, v, 86400000);
        } else if (strcmp(a, "--body-timeout") == 0) {
            o->body_timeout_ms = (uint32_t)number(ex, a, v, 86400000);
        } else if (strcmp(a, "--keepalive-timeout") == 0) {
            o->keepalive_timeout_ms = (uint32_t)number(ex, a, v, 86400000);
        } else if (strcmp(a, "--write-timeout") == 0) {
            o->write_timeout_ms = (uint32_t)number(ex, a, v, 86400000);
        } else if (strcmp(a, "--max-body") == 0) {
            o->max_body = number(ex, a, v, 1ul << 30);
        } else if (strcmp(a, "--max-keepalive-requests") == 0) {
            /* 0 is the library's default (1000), so "unlimited" is the largest value. */
            o->max_keepalive_requests = (uint32_t)number(ex, a, v, UINT32_MAX);
        } else if (strcmp(a, "--access-log") == 0 && v) {
            log_path = v;
        } else if (strcmp(a, "--access-log-format") == 0 && v) {
            if (strcmp(v, "combined") == 0) {
                log_format = HP_ACCESSLOG_COMBINED;
            } else if (strcmp(v, "common") == 0) {
                log_format = HP_ACCESSLOG_COMMON;
            } else if (strcmp(v, "json") == 0) {
                log_format = HP_ACCESSLOG_JSON;
            } else {
                fprintf(stderr, "%s: --access-log-format: combined, common or json\n", ex->name);
                exit(2);
            }
        } else if (strcmp(a, "--error-pages") == 0 && v) {
            if (strcmp(v, "html") != 0) {
                fprintf(stderr, "%s: --error-pages: html\n", ex->name);
                exit(2);
            }
            html_errors = true;
        } else if (ex->option != NULL && (took = ex->option(a, v)) != 0) {
            if (took < 0)
                exit(2);
            i += took - 2; /* the loop steps by 2 */
        } else {
            fprintf(stderr, "%s: unknown or incomplete option '%s'\n", ex->name, a);
            usage(ex, stderr);
            exit(2);
        }
    }
    if (*nworkers == 0) {
        fprintf(stderr, "%s: --workers must be 1..%d\n", ex->name, HP_EXAMPLE_MAX_WORKERS);
        exit(2);
    }
}

int hp_example_serve(const struct hp_example *ex, int argc, char **argv)
{
    struct hp_http_server_opts opts = {.on_request = ex->on_request, .on_head = ex->on_head};
    unsigned n = 1, started = 0;
    int err = 0;

    opts.listen.port = 8080;
    parse_args(ex, argc, argv, &opts, &n);
    opts.listen.reuseport = n > 1;
    for (unsigned i = 0; i < n; i++) {
        workers[i].ex = ex;
        workers[i].opts = opts;
        workers[i].opts.data = ex->worker_data ? ex->worker_data(i) : NULL;
        if ((err = worker_init(&workers[i])) != 0)
            break;
        if (i == 0) /* port 0: the others join the port the first one got */
            opts.listen.port = (uint16_t)hp_http_server_port(workers[0].srv);
        started++;
    }
    if (err != 0) {
        fprintf(stderr, "%s: cannot listen: %s\n", ex->name, hp_strerror(err));
        if (started > 0)
            raise(SIGTERM); /* every started worker's watcher sees it */
    } else {
        printf("%s: listening on http://%s:%u/ (%u worker%s, %s)\n", ex->name,
               opts.listen.host ? opts.listen.host : "[::]", opts.listen.port, n, n > 1 ? "s" : "",
               hp_loop_backend(workers[0].loop));
        fflush(stdout);
    }
    for (unsigned i = 1; i < started; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]) != 0) {
            fprintf(stderr, "%s: cannot start a thread\n", ex->name);
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
