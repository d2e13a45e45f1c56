/*
 * server.c - the server: options, listening and accepting, the one timer
 * that expires connections (see timeout.h), the defer that resumes them,
 * graceful shutdown and freeing. Everything about a single connection is in
 * conn.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "timeout.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* such platforms set SO_NOSIGPIPE in hp_stream_init() */
#endif

/* ---- the timer and the defer ------------------------------------------- */

static void on_timer(struct hp_timer *t)
{
    struct hp_http_server *srv = hp_container_of(t, struct hp_http_server, timer);
    uint64_t now = hp_loop_now(srv->loop), next = UINT64_MAX;

    for (int cls = T_HEADER; cls < T_COUNT; cls++) {
        struct conn_list *l = &srv->lists[cls];
        while (l->head != NULL && l->head->deadline <= now) {
            struct http_conn *c = l->head;
            hp__http_conn_expire(c);
            if (l->head == c) /* it stayed: never loop on it */
                hp__http_arm(c, (enum tclass)cls, true);
        }
        if (l->head != NULL && l->head->deadline < next)
            next = l->head->deadline;
    }
    if (next != UINT64_MAX)
        (void)hp_timer_start(&srv->timer, next - now, 0);
}

static void on_defer(struct hp_defer *d)
{
    struct hp_http_server *srv = hp_container_of(d, struct hp_http_server, defer);
    struct http_conn *c, *next;

    /*
     * The connections scheduled so far, each once: one scheduled again from
     * here (a drain callback that writes and waits again) waits for the next
     * iteration, so an endless stream cannot starve the loop.
     */
    hp__http_out_reap(srv);
    c = srv->resume_head;
    srv->resume_head = NULL;
    for (; c != NULL; c = next) {
        next = c->resume_next; /* c may be freed */
        hp__http_conn_resume(c);
    }
    if (srv->shutting_down && srv->nconns == 0 && srv->orphans == 0) {
        hp_http_shutdown_cb *cb = srv->shutdown_cb;

        /* Nothing of ours may keep the loop alive now. */
        srv->shutdown_cb = NULL;
        hp_timer_stop(&srv->timer);
        hp_timer_stop(&srv->grace);
        if (cb != NULL)
            cb(srv);
    }
}

/* ---- accepting --------------------------------------------------------- */

/*
 * Over the limit, or shutting down: a best-effort 503 on the raw socket (one
 * non-blocking write, so an error page is used only if it fits REFUSAL_MAX
 * with its head), then close.
 */
#define REFUSAL_MAX 4096

static void refuse(const struct hp_http_server *srv, int fd)
{
    char buf[REFUSAL_MAX];
    size_t n = hp__http_refusal(srv,
                                srv->shutting_down ? "the server is shutting down"
                                                   : "the server is at its connection limit",
                                buf, sizeof(buf));

    (void)send(fd, buf, n, MSG_NOSIGNAL); /* fd is non-blocking */
    close(fd);
}

int hp_http_server_adopt(struct hp_http_server *srv, int fd)
{
    if (srv->shutting_down || srv->nconns >= srv->opts.max_connections) {
        refuse(srv, fd);
        return -EBUSY;
    }
    return hp__http_conn_new(srv, fd);
}

static void on_accept(struct hp_listener *l, int fd, int status)
{
    struct hp_http_server *srv = hp_container_of(l, struct hp_http_server, listener);

    if (status == 0)
        (void)hp_http_server_adopt(srv, fd);
}

/* ---- the server -------------------------------------------------------- */

static void set_default(uint32_t *v, uint32_t def)
{
    if (*v == 0)
        *v = def;
}

static int init_opts(struct hp_http_server *srv, const struct hp_http_server_opts *opts)
{
    struct hp_http_server_opts *o = &srv->opts;
    const char *name = opts->server_name ? opts->server_name : "hellepoll";

    *o = *opts;
    set_default(&o->max_target, 8192);
    set_default(&o->max_header_bytes, 32768);
    set_default(&o->max_headers, 100);
    if (o->max_body == 0)
        o->max_body = 1024 * 1024;
    set_default(&o->header_timeout_ms, 60000);
    set_default(&o->body_timeout_ms, 60000);
    set_default(&o->keepalive_timeout_ms, 75000);
    set_default(&o->write_timeout_ms, 60000);
    set_default(&o->max_connections, 1024);
    set_default(&o->max_keepalive_requests, 1000);
    if (o->max_output == 0)
        o->max_output = 4u << 20;
    if (o->max_headers > 65535 || o->max_header_bytes > (1u << 30) || o->max_target > (1u << 30))
        return -EINVAL;
    /* Head, body and chunk framing slack (see adopt) must fit the 1 GiB input cap. */
    if (o->max_body > ((uint64_t)1 << 30) ||
        (uint64_t)o->max_header_bytes + o->max_body + o->max_body / 8 + 16384 > ((uint64_t)1 << 30))
        return -EINVAL;
    if (strlen(name) >= sizeof(srv->server_name) || strpbrk(name, "\r\n") != NULL)
        return -EINVAL;
    strcpy(srv->server_name, name);
    o->server_name = srv->server_name;
    srv->limits = (struct hp__http_limits){
        .max_target = o->max_target,
        .max_head = o->max_header_bytes,
        .max_headers = o->max_headers,
        .max_body = o->max_body,
    };
    srv->timeouts[T_HEADER] = o->header_timeout_ms;
    srv->timeouts[T_BODY] = o->body_timeout_ms;
    srv->timeouts[T_IDLE] = o->keepalive_timeout_ms;
    srv->timeouts[T_WRITE] = o->write_timeout_ms;
    srv->timeouts[T_LINGER] = LINGER_MS;
    srv->rq_size = sizeof(struct req_blk) + o->max_headers * sizeof(struct hp__http_field);
    return 0;
}

static void on_grace(struct hp_timer *t)
{
    struct hp_http_server *srv = hp_container_of(t, struct hp_http_server, grace);

    for (int cls = 0; cls < T_COUNT; cls++) {
        while (srv->lists[cls].head != NULL)
            hp__http_conn_close(srv->lists[cls].head, -ECANCELED);
    }
}

int hp_http_server_new(struct hp_http_server **out, struct hp_loop *loop,
                       const struct hp_http_server_opts *opts)
{
    struct hp_allocator alloc = opts ? opts->alloc : (struct hp_allocator){0};
    struct hp_http_server *srv;
    int err;

    if (opts == NULL || opts->on_request == NULL)
        return -EINVAL;
    if (alloc.realloc == NULL || alloc.free == NULL)
        alloc = hp__http_libc_allocator();
    if ((srv = alloc.realloc(alloc.ctx, NULL, sizeof(*srv))) == NULL)
        return -ENOMEM;
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->alloc = alloc;
    if ((err = init_opts(srv, opts)) != 0)
        goto err_free;
    hp_timer_init(loop, &srv->timer, on_timer);
    hp_timer_init(loop, &srv->grace, on_grace);
    hp_defer_init(loop, &srv->defer, on_defer);
    if (!opts->no_listen) {
        if ((err = hp_listener_start(loop, &srv->listener, &opts->listen, on_accept)) != 0)
            goto err_free;
        srv->listening = true;
    }
    *out = srv;
    return 0;

err_free:
    alloc.free(alloc.ctx, srv);
    return err;
}

int hp_http_server_port(const struct hp_http_server *srv)
{
    return srv->listening ? hp_listener_port(&srv->listener) : -EINVAL;
}

void *hp_http_server_data(const struct hp_http_server *srv)
{
    return srv->opts.data;
}

size_t hp_http_server_connections(const struct hp_http_server *srv)
{
    return srv->nconns;
}

void hp_http_server_shutdown(struct hp_http_server *srv, uint32_t grace_ms, hp_http_shutdown_cb *cb)
{
    if (srv->shutting_down)
        return;
    srv->shutting_down = true;
    srv->shutdown_cb = cb;
    if (srv->listening) {
        hp_listener_stop(&srv->listener);
        srv->listening = false;
    }
    for (int cls = 0; cls < T_COUNT; cls++) {
        struct http_conn *c = srv->lists[cls].head, *next;
        for (; c != NULL; c = next) {
            next = c->tnext;
            hp__http_conn_shutdown(c);
        }
    }
    if (grace_ms == 0)
        on_grace(&srv->grace);
    else if (srv->nconns != 0 || srv->orphans != 0)
        (void)hp_timer_start(&srv->grace, grace_ms, 0);
    hp_defer_start(&srv->defer);
}

int hp_http_server_free(struct hp_http_server *srv)
{
    struct hp_allocator alloc = srv->alloc;

    if (srv->nconns != 0 || srv->orphans != 0)
        return -EBUSY;
    if (srv->listening)
        hp_listener_stop(&srv->listener);
    hp_timer_stop(&srv->timer);
    hp_timer_stop(&srv->grace);
    hp_defer_stop(&srv->defer);
    while (srv->rq_pool != NULL) {
        struct req_blk *rq = srv->rq_pool;
        srv->rq_pool = rq->next;
        hp__http_free(srv, rq);
    }
    hp__http_free(srv, srv->peers);
    while (srv->out_pool != NULL) {
        struct out_blk *b = srv->out_pool;
        srv->out_pool = b->next;
        hp__http_free(srv, b);
    }
    alloc.free(alloc.ctx, srv);
    return 0;
}
