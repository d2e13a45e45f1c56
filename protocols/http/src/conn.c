/*
 * conn.c - one connection: read, parse, dispatch to the handler, complete,
 * write, time out, close; and the request calls that need its state (the
 * server, its timer and its defer are in server.c; response rendering in
 * render.c and response.c). Files call one way: server.c -> conn.c ->
 * render.c -> output.c, response.c -> conn.c, everything -> alloc.c.
 *
 * Invariants:
 * - The current request always starts at offset 0 of the stream's input:
 *   the bytes of a request are consumed only when it is complete, so the
 *   parser's offsets stay valid when the buffer moves. The views are made
 *   (rebase) just before a handler call. When a handler call returns with
 *   the request unfinished, the bytes the handler has seen are taken out of
 *   the input (take_request): they never move again, and the offsets start
 *   over at 0 with whatever followed them.
 * - A request a handler holds (R_HELD) is never recycled: if its
 *   connection ends first, detach_request() orphans it (rq->conn = NULL),
 *   and hp__http_orphan_finish() frees it when the handler finishes it.
 * - At most one request per connection is with the handler. Pipelined
 *   requests behind it wait in the input, so responses leave in request
 *   order without any reordering machinery.
 * - A connection is in exactly one timeout list (see timeout.h). The class changes
 *   only when the connection's state does: a response the kernel takes at
 *   once never passes through T_WRITE, and a keep-alive connection stays in
 *   T_IDLE, its deadline restarted once per response (C_FRESH).
 * - Nothing a handler holds is freed while the handler runs (R_IN_CALL):
 *   failures found then are recorded (C_ABORT) and acted on afterwards.
 * - A connection's memory is freed only once its close callback ran and
 *   every write it queued has completed.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "timeout.h"

/*
 * An idle keep-alive connection holds only this struct (the read buffer goes
 * back to the loop's pool): 232 bytes is a 240-byte malloc chunk, which with
 * the loop's fd table entry keeps an idle connection within 256 bytes.
 */
_Static_assert(sizeof(struct http_conn) <= 232, "an idle connection must stay within 256 bytes");

static void conn_close(struct http_conn *c, int status);

/*
 * Choose the timeout class from the connection's state (or close it if idle
 * at shutdown). Writes the kernel has taken, with their callbacks still to
 * run, do not count as queued. After a response (C_FRESH) the deadline
 * restarts even if the class stays.
 */
static void settle(struct http_conn *c)
{
    struct req_blk *rq = c->rq;
    size_t queued;
    enum tclass cls;

    if (c->flags & C_CLOSING)
        return;
    if (conn_srv(c)->shutting_down && rq == NULL && c->inflight == 0 &&
        (c->out == NULL || c->out->len == 0)) {
        conn_close(c, -ECANCELED);
        return;
    }
    if (c->inflight > 0 && (queued = hp_stream_write_queue_size(&c->stream)) > 0) {
        hp__http_arm_write(c, queued, false);
        return;
    }
    if (c->flags & C_LINGER)
        cls = T_LINGER;
    else if (rq == NULL)
        cls = c->nrequests == 0 ? T_HEADER : T_IDLE;
    else if (rq->phase == P_HEAD)
        cls = T_HEADER;
    else if (rq->phase == P_BODY_BUF || rq->phase == P_BODY_STREAM)
        cls = T_BODY;
    else
        cls = T_NONE;
    if (c->tclass != cls)
        hp__http_arm(c, cls, false);
    else if (c->flags & C_FRESH)
        hp__http_touch(c);
    c->flags = (uint16_t)(c->flags & ~C_FRESH);
}

/* ---- request blocks ---------------------------------------------------- */

/*
 * Ready @p rq for a new request. Everything but the parser (which resets
 * itself), the chunked decoder (zeroed by head_done() if the body is
 * chunked), the scratch bytes of hdrs_inline, the handler's views and what
 * a free block always has (no taken chunks, an empty arena, no drain
 * callback: see rq_new() and rq_free()) is cleared: head_done() sets the
 * offsets and rebase() makes the views before any call hands it out.
 */
static void rq_init(struct http_conn *c, struct req_blk *rq)
{
    rq->req.data = NULL;
    rq->route = NULL;
    rq->req.server = conn_srv(c);
    rq->req.loop = conn_srv(c)->loop;
    rq->conn = c;
    rq->body_cb = NULL;
    rq->base = NULL;
    rq->status = 0;
    rq->body_sent = 0;
    rq->peer_err = 1;
    if (conn_srv(c)->opts.on_log != NULL)
        rq->start_ms = hp_loop_now(conn_srv(c)->loop);
    rq->body_left = rq->stream_left = 0;
    rq->head_len = rq->rpos = rq->wpos = 0;
    rq->hdrs = rq->hdrs_inline;
    rq->hdrs_len = 0;
    rq->hdrs_cap = sizeof(rq->hdrs_inline);
    rq->rflags = 0;
    rq->phase = P_HEAD;
    hp__http_parser_reset(&rq->parser, rq->fields, &conn_srv(c)->limits);
}

static struct req_blk *rq_get(struct http_conn *c)
{
    struct hp_http_server *srv = conn_srv(c);
    struct req_blk *rq = srv->rq_pool;

    if (rq != NULL) {
        srv->rq_pool = rq->next;
        srv->rq_pool_n--;
    } else if ((rq = hp__http_alloc(srv, srv->rq_size)) == NULL) {
        return NULL;
    } else {
        rq->drain_cb = NULL;
        rq->ntaken = 0;
        rq->taken[0] = rq->taken[1] = (struct hp_stream_chunk){0};
        rq->arena = NULL;
        rq->arena_used = 0;
    }
    rq_init(c, rq);
    return rq;
}

/*
 * Debug builds never recycle a request block, so a handler touching a
 * request it has finished is a use after free that ASan and valgrind name.
 */
#ifdef NDEBUG
#define RQ_POOLING 1
#else
#define RQ_POOLING 0
#endif

/* Give @p rq (no longer anyone's) back to the server's pool. */
static void rq_free(struct hp_http_server *srv, struct req_blk *rq)
{
    if (rq->hdrs != rq->hdrs_inline)
        hp__http_free(srv, rq->hdrs);
    if (rq->ntaken != 0) {
        hp_stream_chunk_free(srv->loop, &rq->taken[0]);
        hp_stream_chunk_free(srv->loop, &rq->taken[1]);
        rq->ntaken = 0;
    }
    if (rq->arena != NULL)
        hp__http_arena_free(rq);
    rq->arena_used = 0;
    rq->drain_cb = NULL;
    rq->conn = NULL;
    rq->rflags = 0;
    if (RQ_POOLING && srv->rq_pool_n < POOL_MAX) {
        rq->next = srv->rq_pool;
        srv->rq_pool = rq;
        srv->rq_pool_n++;
    } else {
        hp__http_free(srv, rq);
    }
}

static void rq_release(struct http_conn *c)
{
    struct req_blk *rq = c->rq;

    if (rq == NULL)
        return;
    assert(!(rq->rflags & R_HELD)); /* a held request is detached, never recycled */
    c->rq = NULL;
    rq_free(conn_srv(c), rq);
}

/*
 * The handler keeps @p c's request past a handler call: take the bytes it
 * has seen (the input up to rpos, or all of it with @p all) out of the
 * input so that they stay where its views point. 0 or -ENOMEM; with @p all
 * it cannot fail.
 */
static int take_request(struct http_conn *c, bool all)
{
    struct req_blk *rq = c->rq;
    size_t n = all ? hp_stream_input(&c->stream).len : rq->rpos;
    int err;

    if (n == 0)
        return 0;
    if (rq->ntaken == 2) {
        /* Head and body are out already: this is only what followed. */
        return 0;
    }
    if ((err = hp_stream_take_input(&c->stream, n, &rq->taken[rq->ntaken])) != 0)
        return err;
    rq->ntaken++;
    if (rq->hoff != 0)
        rq->rflags |= R_HEAD_TAKEN; /* base already points at the head */
    rq->hoff = 0;
    rq->rpos = rq->wpos = 0;
    return 0;
}

/*
 * Make the request's views (head parsed), the input being at @p in: the
 * head's at rq->base once the head was taken, at @p in before; the body's
 * just after the head bytes still in the input.
 */
static void rebase(struct http_conn *c, const char *in)
{
    struct req_blk *rq = c->rq;
    const struct hp__http_parser *p = &rq->parser;
    struct hp_http_req *r = &rq->req;
    const char *base = rq->rflags & R_HEAD_TAKEN ? rq->base : in;

    rq->base = base;
    r->method = (struct hp_str){base + p->method_off, p->method_len};
    r->target = (struct hp_str){base + p->target_off, p->target_len};
    if (p->path_len == 0 && (p->flags & HP__REQ_ABSOLUTE))
        r->path = HP_STR_LIT("/");
    else
        r->path = (struct hp_str){base + p->path_off, p->path_len};
    if (p->query_off != 0)
        r->query = (struct hp_str){base + p->query_off, p->query_len};
    else
        r->query = HP_STR_LIT("");
    if ((rq->rflags & R_BODY_DONE) && rq->phase != P_BODY_STREAM && rq->body_cb == NULL)
        r->body = rq->wpos == rq->hoff ? HP_STR_LIT("")
                                       : (struct hp_str){in + rq->hoff, rq->wpos - rq->hoff};
    else
        r->body = HP_STR_LIT("");
}

/* ---- the access-log hook ---------------------------------------------- */

void hp__http_log(struct hp_http_server *srv, struct req_blk *rq, int status)
{
    struct hp_http_log_entry e;

    if (rq->rflags & R_LOGGED)
        return;
    rq->rflags |= R_LOGGED;
    e.parsed = rq->phase != P_HEAD;
    if (e.parsed && rq->base == NULL && rq->conn != NULL)
        rebase(rq->conn, hp_stream_input(&rq->conn->stream).base); /* not handed out yet */
    e.status = status;
    e.body_bytes = rq->body_sent;
    e.start_ms = rq->start_ms;
    e.end_ms = hp_loop_now(srv->loop);
    srv->opts.on_log(srv->opts.log_ctx, &rq->req, &e);
}

/* ---- closing ----------------------------------------------------------- */

static void schedule_resume(struct http_conn *c)
{
    struct hp_http_server *srv = conn_srv(c);

    if (c->flags & C_RESUME)
        return;
    c->flags |= C_RESUME;
    c->resume_next = srv->resume_head;
    srv->resume_head = c;
    hp_defer_start(&srv->defer);
}

static void maybe_free(struct http_conn *c)
{
    struct hp_http_server *srv = conn_srv(c);

    if (!(c->flags & C_CLOSED) || c->inflight > 0 || (c->flags & C_RESUME))
        return;
    hp__http_free(srv, c);
    srv->nconns--;
    if (srv->shutting_down && srv->nconns == 0)
        hp_defer_start(&srv->defer);
}

static void on_closed(struct hp_stream *s)
{
    struct http_conn *c = hp_container_of(s, struct http_conn, stream);

    c->flags |= C_CLOSED;
    maybe_free(c);
}

/* An orphan's handler is done with it: free it (unless detach_request() is still calling back). */
void hp__http_orphan_finish(struct req_blk *rq)
{
    struct hp_http_server *srv = rq->req.server;

    assert(rq->rflags & R_HELD); /* finished twice? */
    rq->rflags &= ~(unsigned)R_HELD;
    if (rq->rflags & R_NOTIFYING) {
        /* Finished from its drain callback: gone for the handler, so no on_abort after. */
        rq->rflags |= R_ABORTED;
        return;
    }
    rq_free(srv, rq);
    srv->orphans--;
    if (srv->shutting_down && srv->orphans == 0)
        hp_defer_start(&srv->defer);
}

void hp__http_drain_cancel(struct req_blk *rq)
{
    hp_http_drain_cb *cb = rq->drain_cb;

    if (cb == NULL)
        return;
    rq->drain_cb = NULL;
    cb(&rq->req, -ECANCELED);
}

/*
 * The connection's request ends here (@p status says why): the connection
 * lets go of it. A request its handler holds becomes an orphan, owning its
 * bytes, until the handler finishes it; the handler hears of the end once,
 * by its pending drain callback (HP_ECLOSED) and on_abort, and every call
 * it makes from then on returns HP_ECLOSED. Any other request is freed.
 */
static void detach_request(struct http_conn *c, int status)
{
    struct req_blk *rq = c->rq;
    struct hp_http_server *srv = conn_srv(c);
    hp_http_drain_cb *drain;

    if (rq == NULL)
        return;
    if (srv->opts.on_log != NULL)
        hp__http_log(srv, rq, rq->rflags & R_HANDLED ? 499 : 0);
    /* Its bytes were taken when its handler call returned, unless that failed. */
    if ((rq->rflags & R_HELD) && rq->rpos != 0) {
        int err = take_request(c, true);

        assert(err == 0); /* taking the whole input cannot fail */
        (void)err;
    }
    c->rq = NULL;
    rq->conn = NULL;
    rq->rflags |= R_NOTIFYING;
    if ((drain = rq->drain_cb) != NULL) {
        rq->drain_cb = NULL;
        drain(&rq->req, HP_ECLOSED);
    }
    if ((rq->rflags & (R_HANDLED | R_DONE | R_ABORTED)) == R_HANDLED) {
        rq->rflags |= R_ABORTED;
        if (srv->opts.on_abort != NULL) /* a clean close still ends it early: HP_ECLOSED */
            srv->opts.on_abort(&rq->req, status < 0 ? status : HP_ECLOSED);
    }
    rq->rflags &= ~(unsigned)R_NOTIFYING;
    if (rq->rflags & R_HELD) {
        srv->orphans++; /* the handler finishes it later */
        return;
    }
    rq_free(srv, rq); /* never held, or finished from one of the callbacks above */
}

/* Close now: no more bytes go out. The handler hears of it with @p status. */
static void conn_close(struct http_conn *c, int status)
{
    if (c->flags & C_CLOSING)
        return;
    c->flags |= C_CLOSING;
    detach_request(c, status);
    if (c->out != NULL) {
        hp__http_out_release(conn_srv(c), c->out);
        c->out = NULL;
    }
    hp__http_tlist_unlink(conn_srv(c), c);
    c->tclass = T_COUNT;
    hp_stream_close(&c->stream, on_closed);
}

void hp__http_conn_close(struct http_conn *c, int status)
{
    conn_close(c, status);
}

void hp__http_conn_abort(struct http_conn *c, int status)
{
    /* Never free what the handler is using: close at the next safe point. */
    c->flags |= C_ABORT;
    c->pending_err = status;
    if (c->rq == NULL || !(c->rq->rflags & R_IN_CALL))
        schedule_resume(c);
}

/* Close once every queued response has been written. */
static void close_when_flushed(struct http_conn *c)
{
    if (c->inflight == 0 && (c->out == NULL || c->out->len == 0))
        conn_close(c, 0);
    else
        c->flags |= C_CLOSE_AFTER;
}

/*
 * The last response is queued: half-close after it and read (and drop)
 * whatever the client still sends until it closes or T_LINGER passes, so
 * that our close does not reset the connection under the response.
 */
static void enter_linger(struct http_conn *c)
{
    c->flags |= C_LINGER;
    rq_release(c);
    hp_stream_consume(&c->stream, hp_stream_input(&c->stream).len);
    if ((c->out == NULL || c->out->len == 0) && !(c->flags & C_SHUT)) {
        /* Everything is queued already (no block to flush): half-close after it. */
        c->flags |= C_SHUT;
        (void)hp_stream_shutdown(&c->stream);
    }
    if (conn_srv(c)->shutting_down || (c->flags & C_PEER_EOF))
        close_when_flushed(c);
}

/* ---- writing ----------------------------------------------------------- */

static void on_written(struct hp_write_req *wr, int status)
{
    struct out_blk *b = hp_container_of(wr, struct out_blk, wr);
    struct http_conn *c = b->conn;

    if (b->file_cb != NULL)
        hp__http_out_file_done(b, status);
    hp__http_out_release(conn_srv(c), b);
    c->inflight--;
    if (c->flags & C_CLOSING) {
        maybe_free(c);
        return;
    }
    if (status < 0) {
        conn_close(c, status);
        return;
    }
    /* Pieces streamed while the queue was stuck (see hp_http_stream_write()). */
    if (c->out != NULL && c->out->len != 0)
        hp__http_flush(c);
    if (c->rq != NULL && c->rq->drain_cb != NULL)
        schedule_resume(c); /* the defer checks the mark, outside this callback */
    if (c->inflight > 0) {
        size_t queued = hp_stream_write_queue_size(&c->stream);

        if (queued > 0) {
            hp__http_arm_write(c, queued, true);
            return;
        }
    } else if (c->flags & C_CLOSE_AFTER) {
        conn_close(c, 0);
        return;
    }
    /*
     * Whatever changed the rest of the state settled it then; a completion
     * only ends T_WRITE, or lets an idle connection close at shutdown.
     */
    if (c->tclass == T_WRITE || conn_srv(c)->shutting_down)
        settle(c);
}

/*
 * A connection's first write goes out at once anyway (nothing is in flight
 * for Nagle to wait on); later ones must not wait for delayed ACKs. So
 * TCP_NODELAY costs a syscall only on connections that write twice.
 */
static inline void before_write(struct http_conn *c)
{
    if (c->flags & C_WROTE) {
        if (!(c->flags & C_NODELAY)) {
            c->flags |= C_NODELAY;
            (void)hp_stream_set_nodelay(&c->stream, true); /* fails harmlessly on non-TCP */
        }
    } else {
        c->flags |= C_WROTE;
    }
}

/* @p b was queued: count it, arm the write timeout, half-close after the last response. */
static inline void after_queued(struct http_conn *c)
{
    c->inflight++;
    size_t queued = hp_stream_write_queue_size(&c->stream);
    if (queued > 0)
        hp__http_arm_write(c, queued,
                           false); /* else it is all with the kernel: on_written follows */
    if ((c->flags & (C_LINGER | C_SHUT)) == C_LINGER) {
        c->flags |= C_SHUT;
        (void)hp_stream_shutdown(&c->stream);
    }
}

void hp__http_flush(struct http_conn *c)
{
    struct out_blk *b = c->out;
    struct hp_buf buf;
    int err;

    if (b == NULL || b->len == 0 || (c->flags & C_CLOSING))
        return;
    c->out = NULL;
    b->conn = c;
    buf = hp_buf_make(b->data, b->len);
    before_write(c);
    /*
     * Usually the kernel takes it all at once: then there is no request to
     * complete and no callback to come. Only when nothing else is pending on
     * the write side, so on_written() has no state to settle but a close.
     */
    if (c->inflight == 0 && !(c->flags & C_LINGER) && !conn_srv(c)->shutting_down) {
        ssize_t n = hp_stream_try_write(&c->stream, &buf, 1);

        if (n == (ssize_t)buf.len) {
            hp__http_out_release(conn_srv(c), b);
            /* The last response is out: close now, not after a write callback. */
            if (c->flags & C_CLOSE_AFTER)
                conn_close(c, 0);
            return;
        }
        if (n < 0 && n != -EAGAIN) {
            hp__http_out_release(conn_srv(c), b);
            hp__http_conn_abort(c, (int)n);
            return;
        }
        if (n > 0)
            buf = hp_buf_make(b->data + n, b->len - (size_t)n);
    }
    err = hp_stream_write(&c->stream, &b->wr, &buf, 1, on_written);
    if (err != 0) {
        hp__http_out_release(conn_srv(c), b);
        hp__http_conn_abort(c, err);
        return;
    }
    after_queued(c);
}

void hp__http_flush_file(struct http_conn *c)
{
    struct out_blk *b = c->out;
    struct hp_buf buf;
    int err;

    c->out = NULL;
    b->conn = c;
    buf = hp_buf_make(b->data, b->len);
    before_write(c);
    /* Head and file in one request: sendfile takes the body from the page cache. */
    err = hp_stream_sendfile(&c->stream, &b->wr, &buf, 1, b->file_fd, b->file_off, b->file_len,
                             on_written);
    if (err != 0) {
        hp__http_out_park(conn_srv(c), b, err); /* its owner hears of it on a later iteration */
        hp__http_conn_abort(c, err);
        return;
    }
    after_queued(c);
}

/* ---- errors ------------------------------------------------------------ */

/* Answer @p status with a one-line reason, then close. */
static void send_error(struct http_conn *c, int status, const char *reason)
{
    struct req_blk *rq = c->rq;
    /* A response to HEAD has no content, whatever its status (RFC 9110 9.3.2). */
    bool head = rq != NULL && rq->parser.method_id == HP__M_HEAD;
    uint64_t body_len;
    int err;

    if (rq != NULL && (rq->rflags & R_STARTED)) {
        /* Too late for a status: the client sees a cut-off response. */
        conn_close(c, -EBADMSG);
        return;
    }
    /* Rendered first: the log needs the body's length (an error page's is the application's). */
    err = hp__http_error_response(c, status, reason, head, &body_len);
    if (rq != NULL && conn_srv(c)->opts.on_log != NULL) {
        rq->body_sent = body_len;
        hp__http_log(conn_srv(c), rq, status);
    }
    detach_request(c, status == 408 ? -ETIMEDOUT : -EBADMSG);
    if (c->flags & C_CLOSING)
        return; /* closed from a callback */
    if (err != 0) {
        conn_close(c, -ENOMEM);
        return;
    }
    enter_linger(c);
    if (!(c->flags & C_IN_BATCH))
        hp__http_flush(c);
}

/* The handler returned an error. */
static void handler_failed(struct http_conn *c)
{
    struct req_blk *rq = c->rq;

    rq->rflags &= ~(unsigned)(R_HANDLED | R_HELD); /* it knows, and is done with it */
    if (rq->rflags & R_STARTED)
        conn_close(c, 0);
    else
        send_error(c, 500, "the handler failed");
}

/* ---- the request cycle ------------------------------------------------- */

/* The response is complete: consume the request and go on, or close. 1 = go on. */
static int complete_request(struct http_conn *c)
{
    struct req_blk *rq = c->rq;

    if (conn_srv(c)->opts.on_log != NULL)
        hp__http_log(conn_srv(c), rq, rq->status);
    c->nrequests++;
    c->flags |= C_FRESH;
    if ((rq->rflags & (R_CLOSE | R_BODY_DONE)) == (R_CLOSE | R_BODY_DONE) &&
        hp_stream_input(&c->stream).len == rq->rpos) {
        /*
         * A clean end: the request was read whole and nothing follows it, so
         * the client has nothing more to send and a plain close after the
         * response cannot reset it (as nginx does without lingering).
         */
        hp_stream_consume(&c->stream, rq->rpos);
        rq_release(c);
        close_when_flushed(c);
        return -1;
    }
    if ((rq->rflags & R_CLOSE) || !(rq->rflags & R_BODY_DONE)) {
        enter_linger(c);
        return -1;
    }
    hp_stream_consume(&c->stream, rq->rpos);
    rq_release(c); /* a pipelined request behind it takes it back from the pool */
    return 1;
}

void hp__http_response_done(struct http_conn *c)
{
    if (c->rq->rflags & R_IN_CALL)
        return; /* the dispatcher completes it when the call returns */
    if (complete_request(c) > 0)
        schedule_resume(c); /* pipelined requests may be waiting */
    hp__http_flush(c);
    settle(c);
}

/*
 * After any call into the handler: 1 = go on, 0 = wait, -1 = stop. If the
 * call saw the request's views (@p seen) and did not finish it, the bytes
 * behind them are taken out of the input.
 */
static int after_call(struct http_conn *c, int rc, bool seen)
{
    struct req_blk *rq = c->rq;

    rq->rflags &= ~(unsigned)R_IN_CALL;
    if (c->flags & C_ABORT) {
        conn_close(c, c->pending_err);
        return -1;
    }
    if (rc < 0 || (rq->rflags & R_RELEASED)) {
        handler_failed(c);
        return -1;
    }
    if (rq->rflags & R_DONE)
        return complete_request(c);
    if (seen && take_request(c, false) != 0) {
        conn_close(c, -ENOMEM);
        return -1;
    }
    return rq->phase == P_BODY_STREAM ? 1 : 0;
}

static int call_handler(struct http_conn *c, hp_http_handler *fn)
{
    struct req_blk *rq = c->rq;

    rq->rflags |= R_IN_CALL | R_HANDLED | R_HELD;
    return after_call(c, fn(&rq->req), true);
}

static int call_body(struct http_conn *c, const void *data, size_t len)
{
    struct req_blk *rq = c->rq;

    rq->rflags |= R_IN_CALL;
    return after_call(c, rq->body_cb(&rq->req, data, len), false);
}

/* Send 100 Continue if the client waits for it before sending the body. */
static void maybe_continue(struct http_conn *c)
{
    struct req_blk *rq = c->rq;

    if (rq->rflags & (R_CONTINUE | R_BODY_DONE | R_STARTED))
        return;
    rq->rflags |= R_CONTINUE;
    if ((rq->parser.flags & HP__REQ_EXPECT_100) && rq->parser.version_minor == 1 &&
        hp_stream_input(&c->stream).len == rq->hoff)
        hp__http_send_continue(c);
}

static int body_buffered(struct http_conn *c, struct hp_buf in);

/* The head is complete: set the request up and call on_head or go for the body. */
static int head_done(struct http_conn *c, struct hp_buf in, size_t head_len)
{
    struct req_blk *rq = c->rq;
    struct hp_http_server *srv = conn_srv(c);
    const struct hp__http_parser *p = &rq->parser;

    rq->head_len = rq->hoff = rq->rpos = rq->wpos = head_len;
    rq->req.version_minor = p->version_minor;
    rq->req.method_id = (enum hp_http_method)p->method_id;
    if (p->method_id == HP__M_CONNECT) {
        /* Not a proxy: refused before any body is read (RFC 9110 9.3.6: no content). */
        send_error(c, 501, "CONNECT is not supported: this server is not a proxy");
        return -1;
    }
    if (p->flags & HP__REQ_CHUNKED) {
        rq->body_left = 0;
        rq->chunked = (struct hp__http_chunked){0};
    } else {
        rq->body_left = p->content_length;
        if (p->content_length == 0)
            rq->rflags |= R_BODY_DONE;
    }
    rq->phase = P_BODY_BUF;
    if (srv->opts.on_head != NULL) {
        /* 1: replied (and completed) or streaming the body; -1: stopped. */
        int rc;

        rebase(c, in.base);
        if ((rc = call_handler(c, srv->opts.on_head)) != 0)
            return rc;
        if (rq->rflags & R_STARTED) {
            /* It answers, streaming, and holds the request: the body is not read. */
            rq->phase = P_HANDLER;
            return 0;
        }
        /* Handed back: on_request gets it with the body. */
        rq->rflags &= ~(unsigned)R_HELD;
        maybe_continue(c); /* the body is to be buffered */
        return 1;
    }
    maybe_continue(c);
    return body_buffered(c, in);
}

/* Drop the @p n body bytes after the head bytes still in the input (moving those over them). */
static void drop_after_head(struct http_conn *c, size_t n)
{
    struct req_blk *rq = c->rq;
    char *base = hp_stream_input(&c->stream).base;

    if (n == 0)
        return;
    if (rq->hoff != 0)
        memmove(base + n, base, rq->hoff);
    hp_stream_consume(&c->stream, n);
    rq->rpos = rq->wpos = rq->hoff;
}

/* Decode what arrived of a chunked body in place; <0 on error (answered). */
static int chunked_step(struct http_conn *c, struct hp_buf in)
{
    struct req_blk *rq = c->rq;
    const struct hp_http_server *srv = conn_srv(c);
    int rc = hp__http_chunked_decode(&rq->chunked, in.base, in.len, &rq->rpos, &rq->wpos,
                                     srv->opts.max_body, srv->opts.max_header_bytes);

    if (rc < 0) {
        send_error(c, -rc, rq->chunked.reason);
        return -1;
    }
    if (rc == 1)
        rq->rflags |= R_BODY_DONE;
    return 0;
}

static int body_buffered(struct http_conn *c, struct hp_buf in)
{
    struct req_blk *rq = c->rq;

    if (rq->parser.flags & HP__REQ_CHUNKED) {
        if (chunked_step(c, in) < 0)
            return -1;
    } else if (in.len - rq->hoff >= rq->body_left) {
        rq->rpos = rq->wpos = rq->hoff + (size_t)rq->body_left;
        rq->rflags |= R_BODY_DONE;
    }
    if (!(rq->rflags & R_BODY_DONE))
        return 0;
    rq->phase = P_HANDLER;
    rebase(c, in.base);
    return call_handler(c, conn_srv(c)->opts.on_request);
}

static int body_streamed(struct http_conn *c, struct hp_buf in)
{
    struct req_blk *rq = c->rq;
    size_t n;
    int rc;

    if (rq->parser.flags & HP__REQ_CHUNKED) {
        if (chunked_step(c, in) < 0)
            return -1;
        n = rq->wpos - rq->hoff;
    } else {
        n = in.len - rq->hoff;
        if (n > rq->body_left)
            n = (size_t)rq->body_left;
        rq->body_left -= n;
        rq->rpos += n;
        if (rq->body_left == 0)
            rq->rflags |= R_BODY_DONE;
    }
    if (n > 0) {
        rc = call_body(c, (char *)in.base + rq->hoff, n);
        /* Finished from the callback: rq is gone (1 then means: the next request). */
        if (rc != 1 || c->rq != rq)
            return rc;
    }
    drop_after_head(c, rq->rpos - rq->hoff);
    if (!(rq->rflags & R_BODY_DONE))
        return 0;
    rq->phase = P_HANDLER;
    return call_body(c, NULL, 0);
}

/* One step on the current request, @p in the input: 1 = progress, go on; 0 = wait; -1 = stop. */
static int step(struct http_conn *c, struct hp_buf in)
{
    struct req_blk *rq = c->rq;
    int64_t rc;

    switch (rq->phase) {
    case P_HEAD:
        rc = hp__http_parse_head(&rq->parser, in.base, in.len);
        if (rc == 0)
            return 0;
        if (rc < 0) {
            send_error(c, (int)-rc, rq->parser.reason);
            return -1;
        }
        return head_done(c, in, (size_t)rc);
    case P_BODY_BUF:
        return body_buffered(c, in);
    case P_BODY_STREAM:
        return body_streamed(c, in);
    default:
        return 0; /* the handler has it: pipelined bytes wait */
    }
}

static void process_input(struct http_conn *c)
{
    c->flags |= C_IN_BATCH;
    /* After a close is decided (C_CLOSE_AFTER), what the client still sends is dropped. */
    while (!(c->flags & (C_CLOSING | C_LINGER | C_ABORT | C_CLOSE_AFTER))) {
        struct hp_buf in = hp_stream_input(&c->stream);

        if (c->rq == NULL) {
            if (in.len == 0)
                break;
            if ((c->rq = rq_get(c)) == NULL) {
                conn_close(c, -ENOMEM);
                break;
            }
        }
        if (step(c, in) <= 0)
            break;
    }
    c->flags = (uint16_t)(c->flags & ~C_IN_BATCH);
    if (c->flags & (C_LINGER | C_CLOSE_AFTER))
        hp_stream_consume(&c->stream, hp_stream_input(&c->stream).len);
    if (c->flags & C_ABORT) {
        conn_close(c, c->pending_err);
        return;
    }
    hp__http_flush(c);
    settle(c);
}

/* The input is at its limit: squeeze out dead bytes, or it is too much. */
static void input_full(struct http_conn *c)
{
    struct req_blk *rq = c->rq;

    if (rq == NULL || rq->phase == P_HANDLER)
        return; /* pipelined bytes behind a busy request: reading resumes later */
    if (rq->phase == P_HEAD) {
        send_error(c, 431, "request header fields too large");
    } else if (rq->rpos > rq->wpos) {
        /* Chunk framing already decoded away: move head and body over it. */
        char *base = hp_stream_input(&c->stream).base;
        size_t gap = rq->rpos - rq->wpos;

        memmove(base + gap, base, rq->wpos);
        hp_stream_consume(&c->stream, gap);
        rq->rpos = rq->wpos;
        rebase(c, hp_stream_input(&c->stream).base);
        return;
    } else {
        send_error(c, 413, "content too large");
    }
    hp__http_flush(c);
    settle(c);
}

static void on_read(struct hp_stream *s, int status)
{
    struct http_conn *c = hp_container_of(s, struct http_conn, stream);
    struct req_blk *rq = c->rq;

    if (status == 0) {
        if (rq != NULL && (rq->phase == P_BODY_BUF || rq->phase == P_BODY_STREAM))
            hp__http_arm(c, T_BODY, true);
        process_input(c);
        return;
    }
    if (status == -ENOBUFS) {
        input_full(c);
        return;
    }
    if (status != HP_EOF) {
        conn_close(c, status);
        return;
    }
    c->flags |= C_PEER_EOF;
    if (c->flags & C_LINGER || rq == NULL)
        close_when_flushed(c);
    else
        conn_close(c, HP_EOF); /* a partial request, or one the handler still has */
}

/* Run the request's drain callback if the output is down to its mark. */
static void drain_check(struct http_conn *c)
{
    struct req_blk *rq = c->rq;
    hp_http_drain_cb *cb;

    if (rq == NULL || (cb = rq->drain_cb) == NULL || hp_http_req_queued(&rq->req) > rq->drain_low)
        return;
    rq->drain_cb = NULL;
    cb(&rq->req, 0);
}

void hp__http_conn_expire(struct http_conn *c)
{
    struct req_blk *rq = c->rq;

    switch (c->tclass) {
    case T_HEADER:
        if (rq != NULL && hp_stream_input(&c->stream).len != 0)
            send_error(c, 408, "request head not received in time");
        else
            conn_close(c, -ETIMEDOUT);
        break;
    case T_BODY:
        send_error(c, 408, "request body not received in time");
        break;
    case T_WRITE:
        if (hp_stream_write_queue_size(&c->stream) < c->wq_mark) {
            c->wq_mark = hp_stream_write_queue_size(&c->stream);
            hp__http_arm(c, T_WRITE, true);
            break;
        }
        conn_close(c, -ETIMEDOUT);
        break;
    default:
        conn_close(c, -ETIMEDOUT);
        break;
    }
    if (!(c->flags & C_CLOSING) && c->tclass != T_WRITE)
        settle(c);
}

/* ---- the server's calls: new connections, resumes, expiry, shutdown ---- */

int hp__http_conn_new(struct hp_http_server *srv, int fd)
{
    struct http_conn *c;
    int err;

    if ((c = hp__http_alloc(srv, sizeof(*c))) == NULL) {
        close(fd);
        return -ENOMEM;
    }
    memset(c, 0, sizeof(*c));
    c->tclass = T_COUNT;
    if ((err = hp_stream_init(srv->loop, &c->stream, fd)) != 0) {
        hp__http_free(srv, c);
        close(fd);
        return err;
    }
    c->stream.data = srv;
    srv->nconns++;
    if (srv->opts.on_log != NULL && (size_t)fd < srv->npeers)
        srv->peers[fd].len = 0; /* a new peer on this descriptor */
    hp_stream_set_input_limit(&c->stream, srv->limits.max_head + srv->opts.max_body +
                                              srv->opts.max_body / 8 + 16384);
    (void)hp_stream_read_start(&c->stream, on_read);
    settle(c);
    return 0;
}

void hp__http_conn_shutdown(struct http_conn *c)
{
    /* Idle, or only part of a head in: nothing is owed to anyone. */
    if (c->inflight == 0 && (c->rq == NULL || c->rq->phase == P_HEAD))
        conn_close(c, -ECANCELED);
    else if (c->flags & C_LINGER)
        close_when_flushed(c);
}

void hp__http_conn_resume(struct http_conn *c)
{
    c->flags = (uint16_t)(c->flags & ~C_RESUME);
    if (c->flags & C_CLOSING) {
        maybe_free(c);
        return;
    }
    if (c->flags & C_ABORT) {
        conn_close(c, c->pending_err);
        return;
    }
    drain_check(c);
    if (!(c->flags & (C_CLOSING | C_RESUME)))
        process_input(c);
}

/* ---- the handler's request API ----------------------------------------- */

size_t hp_http_req_queued(const struct hp_http_req *req)
{
    const struct http_conn *c = ((const struct req_blk *)(const void *)req)->conn;

    if (c == NULL)
        return 0;
    return hp_stream_write_queue_size(&c->stream) + (c->out != NULL ? c->out->len : 0);
}

bool hp_http_req_closed(const struct hp_http_req *req)
{
    return ((const struct req_blk *)(const void *)req)->conn == NULL;
}

void hp_http_req_release(struct hp_http_req *req)
{
    struct req_blk *rq = hp__http_rq(req);
    struct http_conn *c = rq->conn;

    assert(rq->rflags & R_HELD); /* released twice, or a request never handed out */
    hp__http_drain_cancel(rq);
    if (c == NULL) {
        hp__http_orphan_finish(rq);
        return;
    }
    rq->rflags |= R_ABORTED; /* it knows: no on_abort */
    if (rq->rflags & R_IN_CALL) {
        rq->rflags |= R_RELEASED; /* after_call() answers when the call returns */
        return;
    }
    handler_failed(c);
    if (!(c->flags & C_CLOSING))
        settle(c);
}

int hp_http_req_on_drain(struct hp_http_req *req, size_t low_water, hp_http_drain_cb *cb)
{
    struct req_blk *rq = hp__http_rq(req);
    struct http_conn *c = rq->conn;

    if (cb == NULL)
        return -EINVAL;
    if (c == NULL)
        return HP_ECLOSED;
    rq->drain_cb = cb;
    rq->drain_low = low_water;
    schedule_resume(c);
    return 0;
}

int hp_http_req_read_body(struct hp_http_req *req, hp_http_body_cb *cb)
{
    struct req_blk *rq = hp__http_rq(req);

    if (cb == NULL || !(rq->rflags & R_IN_CALL) || rq->phase != P_BODY_BUF || rq->body_cb != NULL ||
        (rq->rflags & R_STARTED))
        return -EINVAL;
    rq->body_cb = cb;
    rq->phase = P_BODY_STREAM;
    maybe_continue(hp__http_conn(req));
    return 0;
}
