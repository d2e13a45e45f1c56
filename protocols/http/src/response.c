/*
 * response.c - the handler's response API: staged header fields, buffered
 * replies and streamed responses, and finishing the request. Every response
 * of a connection is appended to its current output block (c->out; see
 * output.c): the head (render.c), the handler's staged fields, then the
 * body. The block is queued with one hp_stream_write() at the end of the
 * read batch (or at once when the handler answers asynchronously), so the
 * responses to all requests of one read leave in one writev.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "render.h"

/* ---- the handler's API ------------------------------------------------- */

static bool reserved_name(struct hp_str n)
{
    static const struct hp_str names[] = {
        {"content-length", 14},
        {"transfer-encoding", 17},
        {"date", 4},
        {"server", 6},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (n.len == names[i].len && hp__http_ieq(n.ptr, names[i].ptr, n.len))
            return true;
    }
    return false;
}

static int stage(struct req_blk *rq, struct hp_http_server *srv, size_t n)
{
    if (rq->hdrs_cap - rq->hdrs_len >= n)
        return 0;
    size_t cap = rq->hdrs_cap * 2 > rq->hdrs_len + n ? rq->hdrs_cap * 2 : rq->hdrs_len + n;
    char *p = hp__http_alloc(srv, cap);
    if (p == NULL)
        return -ENOMEM;
    memcpy(p, rq->hdrs, rq->hdrs_len);
    if (rq->hdrs != rq->hdrs_inline)
        hp__http_free(srv, rq->hdrs);
    rq->hdrs = p;
    rq->hdrs_cap = cap;
    return 0;
}

int hp_http_add_header(struct hp_http_req *req, struct hp_str name, struct hp_str value)
{
    struct req_blk *rq = hp__http_rq(req);
    char *w;
    int err;

    if (rq->conn == NULL)
        return HP_ECLOSED;
    if (rq->rflags & R_STARTED || name.len == 0 || !hp__http_valid_field_value(value) ||
        reserved_name(name))
        return -EINVAL;
    for (size_t i = 0; i < name.len; i++) {
        if (!hp__http_is_tchar((unsigned char)name.ptr[i]))
            return -EINVAL;
    }
    if (name.len == 10 && hp__http_ieq(name.ptr, "connection", 10)) {
        /* The server writes Connection itself; it only learns "close" from you. */
        for (size_t i = 0; i + 5 <= value.len; i++) {
            if (hp__http_ieq(value.ptr + i, "close", 5))
                rq->rflags |= R_CLOSE;
        }
        return 0;
    }
    if ((err = stage(rq, req->server, name.len + value.len + 4)) != 0)
        return err;
    w = rq->hdrs + rq->hdrs_len;
    put_lit(&w, name.ptr, name.len);
    PUT_LIT(&w, ": ");
    put_lit(&w, value.ptr, value.len);
    PUT_LIT(&w, "\r\n");
    rq->hdrs_len = (size_t)(w - rq->hdrs);
    return 0;
}

/*
 * Finish @p rq after a failure of its own response call: the connection
 * closes at the next safe point, no on_abort (the caller was told).
 */
static int finish_failed(struct http_conn *c, struct req_blk *rq, int err)
{
    rq->rflags = (rq->rflags | R_DONE | R_ABORTED) & ~(unsigned)R_HELD;
    hp__http_conn_abort(c, err);
    return err;
}

/* Finish @p rq, whose response is complete. */
static void finish_done(struct http_conn *c, struct req_blk *rq)
{
    rq->rflags = (rq->rflags | R_DONE) & ~(unsigned)R_HELD;
    hp__http_response_done(c);
}

/* A finishing call on a closed request: it is finished, nothing is sent. */
static int finish_closed(struct req_blk *rq)
{
    hp__http_drain_cancel(rq);
    hp__http_orphan_finish(rq);
    return HP_ECLOSED;
}

int hp_http_reply(struct hp_http_req *req, int status, struct hp_str content_type, const void *body,
                  size_t len)
{
    struct req_blk *rq = hp__http_rq(req);
    struct http_conn *c = rq->conn;
    int err;

    assert(rq->rflags & R_HELD); /* finished already, or never handed out */
    if (c == NULL)
        return finish_closed(rq);
    if (rq->rflags & R_STARTED)
        return -EINVAL;
    if (rq->drain_cb != NULL)
        hp__http_drain_cancel(rq);
    if ((err = hp__http_render_head(c, rq, status, content_type, FR_LENGTH, len)) != 0)
        return err == -EINVAL ? err : finish_failed(c, rq, err);
    if (!(rq->rflags & R_NO_BODY) && len != 0) {
        if ((err = hp__http_out_reserve(c, len)) != 0)
            return finish_failed(c, rq, err); /* the head is out but the body cannot follow */
        hp__http_out_put(c, body, len);
        rq->body_sent = len;
    }
    finish_done(c, rq);
    return 0;
}

int hp_http_reply_file(struct hp_http_req *req, int status, struct hp_str content_type, int fd,
                       int64_t offset, size_t len, hp_http_file_cb *done, void *arg)
{
    struct req_blk *rq = hp__http_rq(req);
    struct http_conn *c = rq->conn;
    struct out_blk *b;
    int err;

    assert(rq->rflags & R_HELD); /* finished already, or never handed out */
    if (c == NULL)
        return finish_closed(rq);
    if ((rq->rflags & R_STARTED) || done == NULL || offset < 0 || (fd < 0 && len != 0))
        return -EINVAL;
    /* Bounded like streamed output: its own bytes then count until they are sent. */
    if (hp_http_req_queued(req) > conn_srv(c)->opts.max_output || c->inflight >= MAX_INFLIGHT)
        return -ENOBUFS;
    if (rq->drain_cb != NULL)
        hp__http_drain_cancel(rq);
    if ((err = hp__http_render_head(c, rq, status, content_type, FR_LENGTH, len)) != 0)
        return err == -EINVAL ? err : finish_failed(c, rq, err);
    b = c->out;
    b->file_cb = done;
    b->file_arg = arg;
    b->file_fd = fd;
    b->file_off = offset;
    b->file_len = rq->rflags & R_NO_BODY ? 0 : len;
    b->file_err = 0;
    rq->body_sent = b->file_len;
    /*
     * Queued now, with the responses before it: whatever follows (the next
     * pipelined response) goes in a new block behind the file. From here on
     * the block owns the callback: it runs when the write completes or fails.
     */
    hp__http_flush_file(c);
    finish_done(c, rq);
    return 0;
}

int hp_http_redirect(struct hp_http_req *req, int status, struct hp_str location)
{
    struct req_blk *rq = hp__http_rq(req);
    int err;

    if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
        return -EINVAL;
    if (rq->conn == NULL)
        return finish_closed(rq);
    if ((err = hp_http_add_header(req, HP_STR_LIT("Location"), location)) != 0)
        return err == -EINVAL ? err : finish_failed(rq->conn, rq, err);
    return hp_http_reply(req, status, HP_STR_LIT(""), NULL, 0);
}

int hp_http_stream_start(struct hp_http_req *req, int status, struct hp_str content_type,
                         int64_t content_length)
{
    struct req_blk *rq = hp__http_rq(req);
    struct http_conn *c = rq->conn;
    enum framing fr = FR_LENGTH;
    int err;

    if (c == NULL)
        return HP_ECLOSED;
    if (content_length < -1)
        return -EINVAL;
    if (content_length < 0)
        fr = rq->parser.version_minor == 1 ? FR_CHUNKED : FR_EOF;
    if ((err = hp__http_render_head(c, rq, status, content_type, fr, (uint64_t)content_length)) !=
        0)
        return err;
    if (fr == FR_CHUNKED)
        rq->rflags |= R_CHUNKED;
    rq->stream_left = fr == FR_LENGTH ? (uint64_t)content_length : UINT64_MAX;
    if (!(rq->rflags & R_IN_CALL))
        hp__http_flush(c);
    return 0;
}

int hp_http_stream_write(struct hp_http_req *req, const void *data, size_t len)
{
    struct req_blk *rq = hp__http_rq(req);
    struct http_conn *c = rq->conn;
    size_t queued, max;
    int err;

    if (c == NULL)
        return HP_ECLOSED;
    if (!(rq->rflags & R_STARTED) || (rq->rflags & R_DONE))
        return -EINVAL;
    if (rq->stream_left != UINT64_MAX && len > rq->stream_left)
        return -EINVAL;
    if (len == 0 || (rq->rflags & R_NO_BODY)) {
        if (rq->stream_left != UINT64_MAX)
            rq->stream_left -= len; /* HEAD: the bytes count, none are sent */
        return 0;
    }
    /* The output queue is bounded: a piece is always taken when nothing is queued. */
    queued = hp_http_req_queued(req);
    max = conn_srv(c)->opts.max_output;
    if ((queued != 0 && (queued > max || len > max - queued)) || c->inflight >= MAX_INFLIGHT)
        return -ENOBUFS;
    if (len > SIZE_MAX - 32)
        return -ENOMEM;
    if ((err = hp__http_out_reserve(c, len + 32)) != 0)
        return err;
    if (rq->stream_left != UINT64_MAX)
        rq->stream_left -= len;
    if (rq->rflags & R_CHUNKED) {
        char *w = c->out->data + c->out->len;
        put_hex(&w, len);
        PUT_LIT(&w, "\r\n");
        c->out->len = (size_t)(w - c->out->data);
    }
    hp__http_out_put(c, data, len);
    rq->body_sent += len;
    if (rq->rflags & R_CHUNKED)
        hp__http_out_put(c, "\r\n", 2);
    /*
     * Outside a handler call the piece goes out now, unless earlier output
     * still waits for the kernel: then it joins the block being built, which
     * on_written() sends once the queue moves. So small pieces to a slow
     * reader share a block instead of costing one each.
     */
    if (!(rq->rflags & R_IN_CALL) &&
        (c->inflight == 0 || hp_stream_write_queue_size(&c->stream) == 0))
        hp__http_flush(c);
    return 0;
}

int hp_http_stream_end(struct hp_http_req *req)
{
    struct req_blk *rq = hp__http_rq(req);
    struct http_conn *c = rq->conn;
    int err = 0;

    assert(rq->rflags & R_HELD); /* finished already, or never handed out */
    if (c == NULL)
        return finish_closed(rq);
    if (!(rq->rflags & R_STARTED) || (rq->rflags & R_DONE))
        return -EINVAL;
    if (rq->drain_cb != NULL)
        hp__http_drain_cancel(rq);
    if (rq->stream_left != UINT64_MAX && rq->stream_left != 0 && !(rq->rflags & R_NO_BODY)) {
        rq->rflags |= R_CLOSE;
        err = -EPROTO;
    }
    if ((rq->rflags & (R_CHUNKED | R_NO_BODY)) == R_CHUNKED) {
        if (hp__http_out_reserve(c, 5) != 0)
            return finish_failed(c, rq, -ENOMEM);
        hp__http_out_put(c, "0\r\n\r\n", 5);
    }
    finish_done(c, rq);
    return err;
}
