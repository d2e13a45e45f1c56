/*
 * tcp-echo - a TCP echo server on the hellepoll core: every byte a client
 * sends comes back. Shows listeners, streams, write back-pressure and a
 * graceful stop on SIGINT/SIGTERM.
 *
 *   tcp-echo [--host ADDR] [--port N]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hellepoll/hellepoll.h>

/* One client: its stream and the write in flight (one at a time). */
struct client {
    struct hp_stream stream;
    struct hp_write_req req;
    char *pending; /* bytes being written, owned until the write completes */
    bool writing;
    struct client *prev, *next;
};

static struct client *clients; /* every open client, to close them on exit */

static void on_read(struct hp_stream *s, int status);

static void on_closed(struct hp_stream *s)
{
    struct client *c = hp_container_of(s, struct client, stream);

    if (c->prev)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static void on_written(struct hp_write_req *req, int status)
{
    struct client *c = hp_container_of(req, struct client, req);

    free(c->pending);
    c->pending = NULL;
    c->writing = false;
    if (status) {
        if (!hp_stream_is_closing(&c->stream))
            hp_stream_close(&c->stream, on_closed);
        return;
    }
    /* Input that arrived meanwhile was left buffered: echo it now. */
    if (hp_stream_read_start(&c->stream, on_read) != 0)
        hp_stream_close(&c->stream, on_closed);
}

static void on_read(struct hp_stream *s, int status)
{
    struct client *c = hp_container_of(s, struct client, stream);
    struct hp_buf in = hp_stream_input(s);
    struct hp_buf out;

    if (status) {
        hp_stream_close(s, on_closed);
        return;
    }
    if (c->writing || in.len == 0)
        return;
    /* Copy out and consume; stop reading until the write drains (back-pressure). */
    c->pending = malloc(in.len);
    if (!c->pending) {
        hp_stream_close(s, on_closed);
        return;
    }
    memcpy(c->pending, in.base, in.len);
    out = hp_buf_make(c->pending, in.len);
    hp_stream_consume(s, in.len);
    c->writing = true;
    hp_stream_read_stop(s);
    if (hp_stream_write(s, &c->req, &out, 1, on_written) != 0) {
        free(c->pending);
        c->pending = NULL;
        hp_stream_close(s, on_closed);
    }
}

static void on_accept(struct hp_listener *l, int fd, int status)
{
    struct client *c;

    (void)l;
    if (status) {
        fprintf(stderr, "tcp-echo: accept: %s\n", hp_strerror(status));
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c || hp_stream_init(l->loop, &c->stream, fd) != 0) {
        free(c);
        close(fd);
        return;
    }
    c->next = clients;
    if (clients)
        clients->prev = c;
    clients = c;
    (void)hp_stream_read_start(&c->stream, on_read);
}

static void on_signal(struct hp_signal *sig, int signum)
{
    (void)signum;
    hp_loop_stop(sig->loop);
}

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: tcp-echo [--host ADDR] [--port N]\n"
                 "  --host ADDR  numeric address to listen on (default ::, dual-stack)\n"
                 "  --port N     port (default 7000; 0 picks one)\n");
    return code;
}

int main(int argc, char **argv)
{
    struct hp_listener_opts opts = {.port = 7000};
    struct hp_listener listener;
    struct hp_signal sigint, sigterm;
    struct hp_loop *loop;
    int err;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help"))
            return usage(stdout, 0);
        if (i + 1 < argc && !strcmp(argv[i], "--host"))
            opts.host = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--port"))
            opts.port = (uint16_t)strtoul(argv[++i], NULL, 10);
        else
            return usage(stderr, 2);
    }
    if ((err = hp_loop_new(&loop, NULL)) != 0) {
        fprintf(stderr, "tcp-echo: %s\n", hp_strerror(err));
        return 1;
    }
    if ((err = hp_listener_start(loop, &listener, &opts, on_accept)) != 0) {
        fprintf(stderr, "tcp-echo: listen: %s\n", hp_strerror(err));
        return 1;
    }
    hp_signal_init(loop, &sigint, on_signal);
    hp_signal_init(loop, &sigterm, on_signal);
    if (hp_signal_start(&sigint, SIGINT) != 0 || hp_signal_start(&sigterm, SIGTERM) != 0)
        return 1;
    printf("tcp-echo listening on %s port %d (%s)\n",
           opts.host ? opts.host : "::", hp_listener_port(&listener), hp_loop_backend(loop));
    fflush(stdout);
    err = hp_loop_run(loop);
    hp_listener_stop(&listener);
    hp_signal_stop(&sigint);
    hp_signal_stop(&sigterm);
    for (struct client *c = clients; c; c = c->next)
        if (!hp_stream_is_closing(&c->stream))
            hp_stream_close(&c->stream, on_closed);
    /* The close callbacks run on the next iteration; then nothing is left. */
    if (hp_loop_run(loop) != 0 || hp_loop_free(loop) != 0)
        return 1;
    return err ? 1 : 0;
}
