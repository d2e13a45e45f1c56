/*
 * response.c - rendering responses into output blocks.
 *
 * Every response of a connection is appended to its current output block
 * (c->out): status line, the pre-rendered Date/Server lines, framing and
 * connection fields, the handler's staged fields, then the body. The first
 * three parts (up to Content-Type) of the last few (status, content type)
 * pairs are kept rendered per server (struct head_prefix) and copied with
 * one memcpy until the Date line changes. The block is queued with one
 * hp_stream_write() at the end of the read batch (or at once when the
 * handler answers asynchronously), so the responses to all requests of one
 * read leave in one writev. Output blocks come from a server pool and go
 * back to it when their write completes.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

/* ---- status lines ------------------------------------------------------ */

struct status_line {
    const char *line;   /* "HTTP/1.1 200 OK\r\n" */
    const char *reason; /* "OK" */
    uint8_t len;
};

#define ST(code, text)                                       \
    [code - 100] = {"HTTP/1.1 " #code " " text "\r\n", text, \
                    sizeof("HTTP/1.1 " #code " " text "\r\n") - 1}

static const struct status_line status_lines[500] = {
    ST(100, "Continue"),
    ST(101, "Switching Protocols"),
    ST(200, "OK"),
    ST(201, "Created"),
    ST(202, "Accepted"),
    ST(203, "Non-Authoritative Information"),
    ST(204, "No Content"),
    ST(205, "Reset Content"),
    ST(206, "Partial Content"),
    ST(300, "Multiple Choices"),
    ST(301, "Moved Permanently"),
    ST(302, "Found"),
    ST(303, "See Other"),
    ST(304, "Not Modified"),
    ST(307, "Temporary Redirect"),
    ST(308, "Permanent Redirect"),
    ST(400, "Bad Request"),
    ST(401, "Unauthorized"),
    ST(402, "Payment Required"),
    ST(403, "Forbidden"),
    ST(404, "Not Found"),
    ST(405, "Method Not Allowed"),
    ST(406, "Not Acceptable"),
    ST(407, "Proxy Authentication Required"),
    ST(408, "Request Timeout"),
    ST(409, "Conflict"),
    ST(410, "Gone"),
    ST(411, "Length Required"),
    ST(412, "Precondition Failed"),
    ST(413, "Content Too Large"),
    ST(414, "URI Too Long"),
    ST(415, "Unsupported Media Type"),
    ST(416, "Range Not Satisfiable"),
    ST(417, "Expectation Failed"),
    ST(421, "Misdirected Request"),
    ST(422, "Unprocessable Content"),
    ST(425, "Too Early"),
    ST(426, "Upgrade Required"),
    ST(428, "Precondition Required"),
    ST(429, "Too Many Requests"),
    ST(431, "Request Header Fields Too Large"),
    ST(451, "Unavailable For Legal Reasons"),
    ST(500, "Internal Server Error"),
    ST(501, "Not Implemented"),
    ST(502, "Bad Gateway"),
    ST(503, "Service Unavailable"),
    ST(504, "Gateway Timeout"),
    ST(505, "HTTP Version Not Supported"),
};

const char *hp_http_status_reason(int status)
{
    static const char unknown[] = "Unknown";

    if (status < 100 || status > 599 || status_lines[status - 100].line == NULL)
        return unknown;
    return status_lines[status - 100].reason;
}

/* Render the status line of @p status into @p out (at least 64 bytes); returns its length. */
static size_t status_line(int status, char *out)
{
    const struct status_line *sl = &status_lines[status - 100];

    if (sl->line != NULL) {
        memcpy(out, sl->line, sl->len);
        return sl->len;
    }
    memcpy(out, "HTTP/1.1 000 Unknown\r\n", 22);
    out[9] = (char)('0' + status / 100);
    out[10] = (char)('0' + status / 10 % 10);
    out[11] = (char)('0' + status % 10);
    return 22;
}

/* ---- output blocks ----------------------------------------------------- */

void hp__http_out_release(struct hp_http_server *srv, struct out_blk *b)
{
    if (b->cap == OUT_BLK_SIZE && srv->out_pool_n < POOL_MAX) {
        b->next = srv->out_pool;
        srv->out_pool = b;
        srv->out_pool_n++;
        return;
    }
    hp__http_free(srv, b);
}

static struct out_blk *blk_get(struct hp_http_server *srv, size_t need)
{
    struct out_blk *b;
    size_t cap = need > OUT_BLK_SIZE ? need : OUT_BLK_SIZE;

    if (cap == OUT_BLK_SIZE && srv->out_pool != NULL) {
        b = srv->out_pool;
        srv->out_pool = b->next;
        srv->out_pool_n--;
    } else {
        b = hp__http_alloc(srv, sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        memset(&b->wr, 0, sizeof(b->wr)); /* a write request starts zeroed */
        b->cap = cap;
    }
    b->next = NULL;
    b->len = 0;
    return b;
}

/* The slow half of hp__http_out_reserve(): a first block, or a bigger one. */
int hp__http_out_grow(struct http_conn *c, size_t n)
{
    struct out_blk *b = c->out;

    if (b == NULL) {
        if ((c->out = blk_get(conn_srv(c), n)) == NULL)
            return -ENOMEM;
        c->out->conn = c;
        return 0;
    }
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n;
    b = hp__http_realloc(conn_srv(c), b, sizeof(*b) + cap);
    if (b == NULL)
        return -ENOMEM;
    b->cap = cap;
    c->out = b;
    return 0;
}

void hp__http_out_put(struct http_conn *c, const void *p, size_t n)
{
    memcpy(c->out->data + c->out->len, p, n);
    c->out->len += n;
}

static inline void put_lit(char **w, const char *s, size_t n)
{
    memcpy(*w, s, n);
    *w += n;
}

#define PUT_LIT(w, s) put_lit((w), (s), sizeof(s) - 1)

/* Decimal digits of @p v at *w, two at a time. */
static void put_dec(char **w, uint64_t v)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";
    size_t n = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : 4;
    char *e;

    for (uint64_t t = v / 10000; t != 0; t /= 10)
        n++;
    e = *w + n;
    *w = e;
    while (v >= 100) {
        e -= 2;
        memcpy(e, pairs + v % 100 * 2, 2);
        v /= 100;
    }
    if (v >= 10)
        memcpy(e - 2, pairs + v * 2, 2);
    else
        e[-1] = (char)('0' + v);
}

/* Hex digits of @p v at *w. */
static void put_hex(char **w, uint64_t v)
{
    char *e = *w + 1;

    for (uint64_t t = v; t >= 16; t >>= 4)
        e++;
    *w = e;
    do {
        *--e = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0);
}

/* ---- heads ------------------------------------------------------------- */

enum framing { FR_LENGTH, FR_CHUNKED, FR_EOF, FR_NONE };

/* Must the connection close after the response to @p rq? */
static bool must_close(const struct http_conn *c, const struct req_blk *rq)
{
    const struct hp__http_parser *p = &rq->parser;

    if ((rq->rflags & (R_CLOSE | R_UNTIL_EOF)) || conn_srv(c)->shutting_down)
        return true;
    if (p->flags & HP__REQ_CLOSE)
        return true;
    if (p->version_minor == 0 && !(p->flags & HP__REQ_KEEPALIVE))
        return true;
    if (c->nrequests + 1 >= conn_srv(c)->opts.max_keepalive_requests)
        return true;
    /* A body we did not read (all of) cannot be skipped safely. */
    return !(rq->rflags & R_BODY_DONE);
}

static bool valid_field_value(struct hp_str v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.ptr[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

/* Equal bytes? For the short strings of a head prefix key: a word at a time. */
static bool same_bytes(const char *a, const char *b, size_t n)
{
    uint64_t x, y;

    if (n < 8) {
        for (size_t i = 0; i < n; i++) {
            if (a[i] != b[i])
                return false;
        }
        return true;
    }
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return false;
    }
    memcpy(&x, a + n - 8, 8); /* the last 8, overlapping what was compared */
    memcpy(&y, b + n - 8, 8);
    return x == y;
}

/*
 * The pre-rendered prefix for @p status (valid: 200..599) and @p ctype, built
 * (and @p ctype checked) on a miss. NULL if @p ctype is too long to keep or
 * not a valid field value; the caller renders the slow way.
 */
static const struct head_prefix *head_prefix(struct hp_http_server *srv, int status,
                                             struct hp_str ctype)
{
    struct head_prefix *h = NULL;
    char *w;

    for (size_t i = 0; i < HEAD_N; i++) {
        struct head_prefix *e = &srv->heads[i];
        if (e->status == status && e->ct_len == ctype.len &&
            same_bytes(e->ct, ctype.ptr, ctype.len)) {
            if (e->gen == srv->date_gen)
                return e;
            h = e; /* stale: the Date line moved on */
            break;
        }
    }
    if (ctype.len > HEAD_CT_MAX || !valid_field_value(ctype))
        return NULL;
    if (h == NULL)
        h = &srv->heads[srv->head_next++ % HEAD_N];
    w = h->bytes;
    w += status_line(status, w);
    put_lit(&w, srv->common, srv->common_len);
    if (ctype.len != 0) {
        PUT_LIT(&w, "Content-Type: ");
        put_lit(&w, ctype.ptr, ctype.len);
        PUT_LIT(&w, "\r\n");
    }
    h->len = (uint16_t)(w - h->bytes);
    h->gen = srv->date_gen;
    h->status = (uint16_t)status;
    h->ct_len = (uint16_t)ctype.len;
    if (ctype.len != 0)
        memcpy(h->ct, ctype.ptr, ctype.len);
    return h;
}

/*
 * Append the head of @p rq's response. With FR_LENGTH, @p len is the
 * Content-Length. Sets R_STARTED, and R_CLOSE if the connection must close.
 */
static int render_head(struct http_conn *c, struct req_blk *rq, int status, struct hp_str ctype,
                       enum framing fr, uint64_t len)
{
    struct hp_http_server *srv = conn_srv(c);
    const struct head_prefix *h;
    bool close;
    size_t need;
    char *w;
    int err;

    if (status < 200 || status > 599 || (rq->rflags & R_STARTED))
        return -EINVAL;
    hp__http_date_check(srv);
    if ((h = head_prefix(srv, status, ctype)) == NULL && !valid_field_value(ctype))
        return -EINVAL;
    if (status == 204 || status == 304)
        fr = FR_NONE;
    if (fr == FR_EOF)
        rq->rflags |= R_UNTIL_EOF;
    close = must_close(c, rq);
    need = 64 + srv->common_len + ctype.len + 16 + 48 + 32 + rq->hdrs_len + 2;
    if ((err = hp__http_out_reserve(c, need)) != 0)
        return err;
    w = c->out->data + c->out->len;
    if (h != NULL) {
        put_lit(&w, h->bytes, h->len);
    } else {
        w += status_line(status, w);
        put_lit(&w, srv->common, srv->common_len);
        if (ctype.len != 0) {
            PUT_LIT(&w, "Content-Type: ");
            put_lit(&w, ctype.ptr, ctype.len);
            PUT_LIT(&w, "\r\n");
        }
    }
    if (fr == FR_LENGTH) {
        PUT_LIT(&w, "Content-Length: ");
        put_dec(&w, len);
        PUT_LIT(&w, "\r\n");
    } else if (fr == FR_CHUNKED) {
        PUT_LIT(&w, "Transfer-Encoding: chunked\r\n");
    }
    if (close)
        PUT_LIT(&w, "Connection: close\r\n");
    else if (rq->parser.version_minor == 0)
        PUT_LIT(&w, "Connection: keep-alive\r\n");
    if (rq->hdrs_len != 0)
        put_lit(&w, rq->hdrs, rq->hdrs_len);
    PUT_LIT(&w, "\r\n");
    c->out->len = (size_t)(w - c->out->data);
    rq->rflags |= R_STARTED | (close ? R_CLOSE : 0u);
    if (fr == FR_NONE || rq->parser.method_id == HP__M_HEAD)
        rq->rflags |= R_NO_BODY;
    return 0;
}

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
    if (rq->rflags & R_STARTED || name.len == 0 || !valid_field_value(value) || reserved_name(name))
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
    if ((err = render_head(c, rq, status, content_type, FR_LENGTH, len)) != 0)
        return err == -EINVAL ? err : finish_failed(c, rq, err);
    if (!(rq->rflags & R_NO_BODY) && len != 0) {
        if ((err = hp__http_out_reserve(c, len)) != 0)
            return finish_failed(c, rq, err); /* the head is out but the body cannot follow */
        hp__http_out_put(c, body, len);
    }
    finish_done(c, rq);
    return 0;
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
    if ((err = render_head(c, rq, status, content_type, fr, (uint64_t)content_length)) != 0)
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
    if (rq->rflags & R_CHUNKED)
        hp__http_out_put(c, "\r\n", 2);
    if (!(rq->rflags & R_IN_CALL))
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

size_t hp_http_req_queued(const struct hp_http_req *req)
{
    const struct http_conn *c = ((const struct req_blk *)(const void *)req)->conn;

    if (c == NULL)
        return 0;
    return hp_stream_write_queue_size(&c->stream) + (c->out != NULL ? c->out->len : 0);
}

/* ---- server-made responses --------------------------------------------- */

int hp__http_error_response(struct http_conn *c, int status, const char *reason, bool no_body)
{
    struct hp_http_server *srv = conn_srv(c);
    const char *phrase = hp_http_status_reason(status);
    size_t rlen = strlen(reason), plen = strlen(phrase);
    size_t blen = 4 + plen + 2 + rlen + 1; /* "400 Bad Request: reason\n" */
    char *w;
    int err;

    hp__http_date_check(srv);
    if ((err = hp__http_out_reserve(c, 160 + srv->common_len + blen)) != 0)
        return err;
    w = c->out->data + c->out->len;
    w += status_line(status, w);
    put_lit(&w, srv->common, srv->common_len);
    PUT_LIT(&w, "Content-Type: text/plain\r\nContent-Length: ");
    put_dec(&w, blen);
    PUT_LIT(&w, "\r\nConnection: close\r\n\r\n");
    if (no_body) {
        c->out->len = (size_t)(w - c->out->data);
        return 0;
    }
    put_dec(&w, (uint64_t)status);
    PUT_LIT(&w, " ");
    put_lit(&w, phrase, plen);
    PUT_LIT(&w, ": ");
    put_lit(&w, reason, rlen);
    PUT_LIT(&w, "\n");
    c->out->len = (size_t)(w - c->out->data);
    return 0;
}

void hp__http_send_continue(struct http_conn *c)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";

    if (hp__http_out_reserve(c, sizeof(line) - 1) == 0)
        hp__http_out_put(c, line, sizeof(line) - 1);
}
