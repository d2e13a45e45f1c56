/*
 * client.c - the memcached client: servers on a ketama ring, a pool of
 * connections per server, requests pipelined on a connection.
 *
 * A connection collects requests in an output buffer during a loop
 * iteration and writes them at its end (hp_defer): hp_stream_try_write()
 * first, and only what the kernel did not take is queued as a write
 * request, while new requests go to the second buffer. Requests wait in a
 * FIFO in the order they were written, which is the order memcached
 * answers; each answer is matched to the head (its opaque checked), quiet
 * requests the server skipped are completed with their silent outcome on
 * the way. One timer per connection watches the oldest request.
 *
 * Failure: a connection that fails (connect error or timeout, EOF, reset,
 * a request timeout, garbage) is closed first, then everything waiting on
 * it gets the error, then after its close callback and a backoff delay it
 * connects again. Memory: connections are embedded in the client and their
 * streams close asynchronously, so the client is released by the last
 * close callback after hp_mc_free().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/error.h>
#include <hellepoll/memcached.h>
#include <hellepoll/tcp.h>

#include "ketama.h"
#include "parser.h"
#include "request.h"

enum cstate { C_DOWN, C_CONNECTING, C_UP, C_CLOSING };

struct mreq {
    struct mreq *next;
    hp_mc_cb *cb; /* NULL: the client's own mn after quiet requests */
    void *arg;
    uint64_t deadline;
    uint32_t opaque;
    uint8_t cmd;
    bool quiet;
};

struct server;

struct conn {
    struct hp_mc *mc;
    struct server *srv;
    struct hp_stream s;
    struct hp_write_req wreq;
    struct hp_defer flush;
    struct hp_timer conn_timer; /* connect timeout, then reconnect delay */
    struct hp_timer req_timer;  /* the oldest request's deadline */
    struct hp__mc_buf out[2];   /* out[cur] collects; out[!cur] may be in a queued write */
    size_t wpos;                /* offset of the queued part of out[!cur] */
    struct hp__mc_parser parser;
    struct mreq *head, *tail;
    size_t inflight;
    unsigned backoff_ms;
    enum cstate state;
    int cur;
    bool writing;
    bool need_mn; /* the last request appended was quiet */
};

struct server {
    char host[64];
    uint16_t port;
    struct conn *conns;
};

struct hp_mc {
    struct hp_loop *loop;
    struct server *servers;
    size_t nservers;
    unsigned nconns;
    struct hp__mc_ring ring;
    struct mreq *free_reqs;
    size_t pending;
    unsigned open_streams; /* streams not yet closed (close callback owed) */
    unsigned connects;
    uint32_t next_opaque;
    unsigned connect_timeout_ms, request_timeout_ms, reconnect_min_ms, reconnect_max_ms;
    unsigned max_pending;
    size_t max_value;
    void *data;
    bool freeing;
};

static void conn_open(struct conn *c);
static void conn_fail(struct conn *c, int err);

/* ---- requests ---- */

static struct mreq *req_new(struct hp_mc *mc)
{
    struct mreq *r = mc->free_reqs;

    if (r)
        mc->free_reqs = r->next;
    else
        r = malloc(sizeof(*r));
    return r;
}

static void req_put(struct hp_mc *mc, struct mreq *r)
{
    r->next = mc->free_reqs;
    mc->free_reqs = r;
}

static struct mreq *pop(struct conn *c)
{
    struct mreq *r = c->head;

    c->head = r->next;
    if (c->head == NULL)
        c->tail = NULL;
    c->inflight--;
    if (r->cb)
        c->mc->pending--;
    return r;
}

/* Complete the head request: pop it, recycle it, run its callback. */
static void complete(struct conn *c, int status, const struct hp_mc_reply *reply)
{
    struct hp_mc *mc = c->mc;
    struct mreq *r = pop(c);
    hp_mc_cb *cb = r->cb;
    void *arg = r->arg;

    req_put(mc, r);
    if (cb)
        cb(mc, status, reply, arg);
}

static void fail_all(struct conn *c, int err)
{
    while (c->head)
        complete(c, err, NULL);
}

/* ---- connection lifecycle ---- */

static void free_client(struct hp_mc *mc)
{
    struct mreq *r;

    for (size_t i = 0; i < mc->nservers; i++) {
        for (unsigned j = 0; j < mc->nconns; j++) {
            struct conn *c = &mc->servers[i].conns[j];

            hp_timer_stop(&c->conn_timer);
            hp_timer_stop(&c->req_timer);
            hp_defer_stop(&c->flush);
            hp__mc_buf_free(&c->out[0]);
            hp__mc_buf_free(&c->out[1]);
        }
        free(mc->servers[i].conns);
    }
    while ((r = mc->free_reqs) != NULL) {
        mc->free_reqs = r->next;
        free(r);
    }
    hp__mc_ring_free(&mc->ring);
    free(mc->servers);
    free(mc);
}

static void schedule_reconnect(struct conn *c)
{
    struct hp_mc *mc = c->mc;

    c->state = C_DOWN;
    (void)hp_timer_start(&c->conn_timer, c->backoff_ms, 0); /* -ENOMEM: stays down */
    c->backoff_ms =
        c->backoff_ms > mc->reconnect_max_ms / 2 ? mc->reconnect_max_ms : c->backoff_ms * 2;
}

static void on_closed(struct hp_stream *s)
{
    struct conn *c = hp_container_of(s, struct conn, s);
    struct hp_mc *mc = c->mc;

    mc->open_streams--;
    if (mc->freeing) {
        c->state = C_DOWN;
        if (mc->open_streams == 0)
            free_client(mc);
        return;
    }
    schedule_reconnect(c);
}

/*
 * The connection failed: close it first (so nothing more is read or sent,
 * and the client stays allocated until the close callback), then fail
 * everything waiting with @p err. The callbacks may free the client.
 */
static void conn_fail(struct conn *c, int err)
{
    if (c->state != C_CONNECTING && c->state != C_UP)
        return;
    c->state = C_CLOSING;
    hp_timer_stop(&c->conn_timer);
    hp_timer_stop(&c->req_timer);
    hp_defer_stop(&c->flush);
    c->out[0].len = c->out[1].len = 0;
    c->writing = false;
    c->need_mn = false;
    hp_stream_close(&c->s, on_closed);
    fail_all(c, err);
}

static void on_read(struct hp_stream *s, int status);

static void conn_flush(struct conn *c);

static void on_connected(struct hp_stream *s, int status)
{
    struct conn *c = hp_container_of(s, struct conn, s);

    if (status != 0) {
        conn_fail(c, status);
        return;
    }
    hp_timer_stop(&c->conn_timer);
    c->state = C_UP;
    c->backoff_ms = c->mc->reconnect_min_ms;
    c->mc->connects++;
    (void)hp_stream_set_nodelay(s, true);
    hp_stream_set_input_limit(s, c->mc->max_value + HP__MC_MAX_LINE + 2);
    if (hp_stream_read_start(s, on_read) != 0) {
        conn_fail(c, -ECONNRESET);
        return;
    }
    conn_flush(c);
}

static void on_conn_timer(struct hp_timer *t)
{
    struct conn *c = t->data;

    if (c->state == C_CONNECTING)
        conn_fail(c, -ETIMEDOUT);
    else if (c->state == C_DOWN)
        conn_open(c);
}

static void on_req_timer(struct hp_timer *t)
{
    struct conn *c = t->data;
    uint64_t now = hp_loop_now(c->mc->loop);

    if (c->head == NULL)
        return;
    if (c->head->deadline > now) {
        (void)hp_timer_start(t, c->head->deadline - now, 0);
        return;
    }
    conn_fail(c, -ETIMEDOUT);
}

static void conn_open(struct conn *c)
{
    struct hp_mc *mc = c->mc;
    int err;

    hp__mc_parser_init(&c->parser, mc->max_value);
    memset(&c->wreq, 0, sizeof(c->wreq));
    err = hp_stream_connect(mc->loop, &c->s, c->srv->host, c->srv->port, on_connected);
    if (err) {
        schedule_reconnect(c);
        return;
    }
    mc->open_streams++;
    c->state = C_CONNECTING;
    (void)hp_timer_start(&c->conn_timer, mc->connect_timeout_ms, 0);
}

/* ---- writing ---- */

static void on_written(struct hp_write_req *w, int status)
{
    struct conn *c = w->data;

    if (status == -ECANCELED || c->state != C_UP)
        return;
    if (status != 0) {
        conn_fail(c, -ECONNRESET);
        return;
    }
    c->writing = false;
    c->out[!c->cur].len = 0;
    if (c->out[c->cur].len)
        conn_flush(c);
}

static int append_mn(struct conn *c)
{
    struct mreq *r;
    int err;

    r = req_new(c->mc);
    if (r == NULL)
        return -ENOMEM;
    err = hp__mc_format(&c->out[c->cur], HP__MC_CMD_MN, (struct hp_str){NULL, 0}, NULL, 0, NULL, 0);
    if (err) {
        req_put(c->mc, r);
        return err;
    }
    r->cb = NULL;
    r->arg = NULL;
    r->cmd = HP__MC_CMD_MN;
    r->quiet = false;
    r->opaque = 0;
    r->deadline = hp_loop_now(c->mc->loop) + c->mc->request_timeout_ms;
    r->next = NULL;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->inflight++;
    c->need_mn = false;
    return 0;
}

static void conn_flush(struct conn *c)
{
    struct hp__mc_buf *b;
    struct hp_buf iov;
    ssize_t n;

    if (c->state != C_UP || c->writing)
        return;
    if (c->need_mn && append_mn(c) != 0) {
        conn_fail(c, -ENOMEM); /* quiet requests could never complete */
        return;
    }
    b = &c->out[c->cur];
    if (b->len == 0)
        return;
    iov = hp_buf_make(b->p, b->len);
    n = hp_stream_try_write(&c->s, &iov, 1);
    if (n == -EAGAIN)
        n = 0;
    if (n < 0) {
        conn_fail(c, -ECONNRESET);
        return;
    }
    if ((size_t)n == b->len) {
        b->len = 0;
        return;
    }
    /* The rest waits for the socket; new requests go to the other buffer. */
    c->wpos = (size_t)n;
    iov = hp_buf_make(b->p + n, b->len - (size_t)n);
    c->wreq.data = c;
    if (hp_stream_write(&c->s, &c->wreq, &iov, 1, on_written) != 0) {
        conn_fail(c, -ECONNRESET);
        return;
    }
    c->writing = true;
    c->cur = !c->cur;
}

static void on_flush(struct hp_defer *d)
{
    conn_flush(d->data);
}

/* ---- reading ---- */

static enum hp_mc_code code_of(enum hp__mc_rc rc)
{
    switch (rc) {
    case HP__MC_EN:
        return HP_MC_MISS;
    case HP__MC_NS:
        return HP_MC_NOT_STORED;
    case HP__MC_EX:
        return HP_MC_EXISTS;
    case HP__MC_NF:
        return HP_MC_NOT_FOUND;
    default:
        return HP_MC_OK;
    }
}

/* Match one response to the waiting requests. @return 0 or -EPROTO. */
static int dispatch(struct conn *c, const struct hp__mc_resp *resp)
{
    struct hp_mc_reply reply;

    for (;;) {
        struct mreq *r = c->head;

        if (r == NULL)
            return -EPROTO; /* an answer nobody asked for */
        if (resp->rc >= HP__MC_ERROR) {
            memset(&reply, 0, sizeof(reply));
            reply.value = (struct hp_str){resp->data, resp->data_len};
            reply.ttl = -2;
            complete(c, HP_ESERVER, &reply);
            /* ERROR and CLIENT_ERROR may leave the stream out of step. */
            return resp->rc == HP__MC_SERVER_ERROR ? 0 : -ECONNRESET;
        }
        if (r->cmd == HP__MC_CMD_MN
                ? resp->rc == HP__MC_MN
                : resp->rc != HP__MC_MN &&
                      (resp->has_opaque ? resp->opaque == r->opaque : !r->quiet)) {
            memset(&reply, 0, sizeof(reply));
            reply.code = code_of(resp->rc);
            reply.cas = resp->cas;
            reply.flags = resp->flags;
            reply.ttl = resp->has_ttl ? resp->ttl : -2;
            if (resp->rc == HP__MC_VA) {
                reply.value = (struct hp_str){resp->data, resp->data_len};
                reply.has_value = true;
                /* memcached pads a decremented number with spaces */
                while (r->cmd == HP__MC_CMD_MA && reply.value.len &&
                       resp->data[reply.value.len - 1] == ' ')
                    reply.value.len--;
            }
            complete(c, 0, &reply);
            return 0;
        }
        if (!r->quiet)
            return -EPROTO;
        /* The server stayed silent on this one: its usual outcome. */
        memset(&reply, 0, sizeof(reply));
        reply.code = r->cmd == HP__MC_CMD_MG ? HP_MC_MISS : HP_MC_OK;
        reply.ttl = -2;
        complete(c, 0, &reply);
        if (c->state != C_UP)
            return 0;
    }
}

static void on_read(struct hp_stream *s, int status)
{
    struct conn *c = hp_container_of(s, struct conn, s);

    if (status != 0) {
        conn_fail(c, status == -ENOBUFS ? -EPROTO : -ECONNRESET);
        return;
    }
    while (c->state == C_UP) {
        struct hp_buf in = hp_stream_input(s);
        struct hp__mc_resp resp;
        ssize_t n = hp__mc_parse(&c->parser, in.base, in.len, &resp);
        int err;

        if (n == 0)
            break;
        if (n < 0) {
            conn_fail(c, -EPROTO);
            return;
        }
        err = dispatch(c, &resp);
        if (c->state != C_UP)
            return; /* a callback freed the client or the connection failed */
        hp_stream_consume(s, (size_t)n);
        if (err) {
            conn_fail(c, err);
            return;
        }
    }
    if (c->head == NULL)
        hp_timer_stop(&c->req_timer);
    else if (!hp_timer_is_active(&c->req_timer)) {
        uint64_t now = hp_loop_now(c->mc->loop);

        (void)hp_timer_start(&c->req_timer, c->head->deadline > now ? c->head->deadline - now : 0,
                             0);
    }
}

/* ---- public API ---- */

static int parse_server(const char *spec, char *host, size_t hostcap, uint16_t *port)
{
    const char *colon, *h = spec;
    size_t hl;
    unsigned long p = 11211;

    if (spec[0] == '[') {
        const char *e = strchr(spec, ']');

        if (e == NULL)
            return -EINVAL;
        h = spec + 1;
        hl = (size_t)(e - h);
        colon = e[1] == ':' ? e + 1 : NULL;
        if (e[1] && !colon)
            return -EINVAL;
    } else {
        colon = strrchr(spec, ':');
        if (colon && strchr(spec, ':') != colon)
            colon = NULL; /* a bare IPv6 address */
        hl = colon ? (size_t)(colon - spec) : strlen(spec);
    }
    if (colon) {
        char *end;

        p = strtoul(colon + 1, &end, 10);
        if (*end || p == 0 || p > 65535)
            return -EINVAL;
    }
    if (hl == 0 || hl >= hostcap)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (uint16_t)p; /* checked <= 65535 */
    return 0;
}

int hp_mc_new(struct hp_mc **out, struct hp_loop *loop, const struct hp_mc_opts *o)
{
    struct hp_mc *mc;
    const char **hosts = NULL;
    uint16_t *ports = NULL;
    int err = -ENOMEM;

    if (out == NULL || loop == NULL || o == NULL || o->servers == NULL || o->nservers == 0 ||
        o->nservers > 1024 || o->connections > 64)
        return -EINVAL;
    mc = calloc(1, sizeof(*mc));
    if (mc == NULL)
        return -ENOMEM;
    mc->loop = loop;
    mc->nservers = o->nservers;
    mc->nconns = o->connections ? o->connections : 1;
    mc->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 2000;
    mc->request_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms : 2000;
    mc->reconnect_min_ms = o->reconnect_min_ms ? o->reconnect_min_ms : 50;
    mc->reconnect_max_ms = o->reconnect_max_ms ? o->reconnect_max_ms : 2000;
    if (mc->reconnect_max_ms < mc->reconnect_min_ms)
        mc->reconnect_max_ms = mc->reconnect_min_ms;
    mc->max_pending = o->max_pending ? o->max_pending : 4096;
    mc->max_value = o->max_value ? o->max_value : 1024 * 1024;
    mc->data = o->data;
    mc->servers = calloc(o->nservers, sizeof(*mc->servers));
    hosts = calloc(o->nservers, sizeof(*hosts));
    ports = calloc(o->nservers, sizeof(*ports));
    if (mc->servers == NULL || hosts == NULL || ports == NULL)
        goto err_free;
    for (size_t i = 0; i < o->nservers; i++) {
        struct server *sv = &mc->servers[i];

        if (o->servers[i] == NULL ||
            parse_server(o->servers[i], sv->host, sizeof(sv->host), &sv->port) != 0) {
            err = -EINVAL;
            goto err_free;
        }
        sv->conns = calloc(mc->nconns, sizeof(*sv->conns));
        if (sv->conns == NULL)
            goto err_free;
        hosts[i] = sv->host;
        ports[i] = sv->port;
    }
    if (hp__mc_ring_build(&mc->ring, hosts, ports, o->nservers) != 0)
        goto err_free;
    free(hosts);
    free(ports);
    for (size_t i = 0; i < mc->nservers; i++) {
        for (unsigned j = 0; j < mc->nconns; j++) {
            struct conn *c = &mc->servers[i].conns[j];

            c->mc = mc;
            c->srv = &mc->servers[i];
            c->backoff_ms = mc->reconnect_min_ms;
            hp_defer_init(loop, &c->flush, on_flush);
            c->flush.data = c;
            hp_timer_init(loop, &c->conn_timer, on_conn_timer);
            c->conn_timer.data = c;
            hp_timer_init(loop, &c->req_timer, on_req_timer);
            c->req_timer.data = c;
            conn_open(c);
        }
    }
    *out = mc;
    return 0;

err_free:
    free(hosts);
    free(ports);
    if (mc->servers) {
        for (size_t i = 0; i < o->nservers; i++)
            free(mc->servers[i].conns);
    }
    free(mc->servers);
    free(mc);
    return err;
}

void hp_mc_free(struct hp_mc *mc)
{
    if (mc == NULL || mc->freeing)
        return;
    mc->freeing = true;
    for (size_t i = 0; i < mc->nservers; i++) {
        for (unsigned j = 0; j < mc->nconns; j++) {
            struct conn *c = &mc->servers[i].conns[j];

            hp_timer_stop(&c->conn_timer); /* a DOWN connection stays down */
            conn_fail(c, -ECANCELED);
        }
    }
    /* Callbacks owed by connections that were failing already ran with their
     * error. With no stream left to close, release now. */
    if (mc->open_streams == 0)
        free_client(mc);
}

/* The connection of the key's server with the fewest requests in flight. */
static struct conn *pick(struct hp_mc *mc, size_t server)
{
    struct conn *best = NULL;
    struct server *sv = &mc->servers[server];

    for (unsigned j = 0; j < mc->nconns; j++) {
        struct conn *c = &sv->conns[j];

        if (c->state != C_UP && c->state != C_CONNECTING)
            continue;
        if (best == NULL || (c->state == C_UP && best->state != C_UP) ||
            (c->state == best->state && c->inflight < best->inflight))
            best = c;
    }
    return best;
}

static int submit(struct hp_mc *mc, size_t server, enum hp__mc_cmd cmd, struct hp_str key,
                  const struct hp_mc_req *o, const void *value, size_t vlen, hp_mc_cb *cb,
                  void *arg)
{
    struct conn *c;
    struct mreq *r;
    int err;

    if (mc->freeing)
        return HP_ECLOSED;
    if (cb == NULL)
        return -EINVAL;
    c = pick(mc, server);
    if (c == NULL)
        return -ENOTCONN;
    if (c->inflight >= mc->max_pending)
        return -ENOBUFS;
    r = req_new(mc);
    if (r == NULL)
        return -ENOMEM;
    r->opaque = mc->next_opaque++;
    err = hp__mc_format(&c->out[c->cur], cmd, key, o, r->opaque, value, vlen);
    if (err) {
        req_put(mc, r);
        return err;
    }
    r->cb = cb;
    r->arg = arg;
    r->cmd = (uint8_t)cmd;
    r->quiet = o && (o->flags & HP_MC_QUIET) && cmd != HP__MC_CMD_MN;
    r->deadline = hp_loop_now(mc->loop) + mc->request_timeout_ms;
    r->next = NULL;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->inflight++;
    mc->pending++;
    c->need_mn = r->quiet;
    if (!hp_timer_is_active(&c->req_timer))
        (void)hp_timer_start(&c->req_timer, mc->request_timeout_ms, 0);
    if (c->state == C_UP)
        hp_defer_start(&c->flush);
    return 0;
}

static int keyed(struct hp_mc *mc, enum hp__mc_cmd cmd, struct hp_str key,
                 const struct hp_mc_req *o, const void *value, size_t vlen, hp_mc_cb *cb, void *arg)
{
    if (hp_mc_key_check(key) < 0)
        return -EINVAL;
    return submit(mc, hp_mc_server_for(mc, key), cmd, key, o, value, vlen, cb, arg);
}

int hp_mc_get(struct hp_mc *mc, struct hp_str key, const struct hp_mc_req *o, hp_mc_cb *cb,
              void *arg)
{
    return keyed(mc, HP__MC_CMD_MG, key, o, NULL, 0, cb, arg);
}

int hp_mc_set(struct hp_mc *mc, struct hp_str key, const void *value, size_t len,
              const struct hp_mc_req *o, hp_mc_cb *cb, void *arg)
{
    if (len > mc->max_value)
        return -EMSGSIZE;
    if (len && value == NULL)
        return -EINVAL;
    return keyed(mc, HP__MC_CMD_MS, key, o, value, len, cb, arg);
}

int hp_mc_delete(struct hp_mc *mc, struct hp_str key, const struct hp_mc_req *o, hp_mc_cb *cb,
                 void *arg)
{
    return keyed(mc, HP__MC_CMD_MD, key, o, NULL, 0, cb, arg);
}

int hp_mc_arith(struct hp_mc *mc, struct hp_str key, const struct hp_mc_req *o, hp_mc_cb *cb,
                void *arg)
{
    return keyed(mc, HP__MC_CMD_MA, key, o, NULL, 0, cb, arg);
}

int hp_mc_noop(struct hp_mc *mc, size_t server, hp_mc_cb *cb, void *arg)
{
    if (server >= mc->nservers)
        return -ERANGE;
    return submit(mc, server, HP__MC_CMD_MN, (struct hp_str){NULL, 0}, NULL, NULL, 0, cb, arg);
}

size_t hp_mc_server_for(const struct hp_mc *mc, struct hp_str key)
{
    if (mc->nservers == 1)
        return 0;
    return hp__mc_ring_lookup(&mc->ring, key.ptr, key.len);
}

bool hp_mc_server_is_up(const struct hp_mc *mc, size_t server)
{
    if (server >= mc->nservers)
        return false;
    for (unsigned j = 0; j < mc->nconns; j++) {
        if (mc->servers[server].conns[j].state == C_UP)
            return true;
    }
    return false;
}

unsigned hp_mc_connects(const struct hp_mc *mc)
{
    return mc->connects;
}

size_t hp_mc_pending(const struct hp_mc *mc)
{
    return mc->pending;
}

void *hp_mc_data(const struct hp_mc *mc)
{
    return mc->data;
}
