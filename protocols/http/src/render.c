/*
 * render.c - response heads and the server's own responses, rendered into
 * the connection's output block (output.c). The status line, Date, Server
 * and Content-Type lines of the last few (status, content type) pairs are
 * kept rendered per server (struct head_prefix) and copied with one memcpy
 * until the Date line changes.
 */
#include "render.h"

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

/* ---- heads ------------------------------------------------------------- */

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

static bool valid_bytes(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
            return false;
    }
    return true;
}

/*
 * Eight bytes at a time: a word with no byte below 0x20 and none equal to
 * 0x7f is fine as it is (the usual case); one that has some (a tab, or a
 * forbidden byte) is looked at byte by byte. The tests are the "has less
 * than" and "has zero" bit tricks; bytes from 0x80 up never trigger them.
 */
bool hp__http_valid_field_value(struct hp_str v)
{
    const unsigned char *p = (const unsigned char *)v.ptr;
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;

    for (; i + 8 <= v.len; i += 8) {
        uint64_t x, d;

        memcpy(&x, p + i, 8);
        d = x ^ (ones * 0x7f);
        if ((((x - ones * 0x20) & ~x) | ((d - ones) & ~d)) & highs) {
            if (!valid_bytes(p + i, 8))
                return false;
        }
    }
    return valid_bytes(p + i, v.len - i);
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
    if (ctype.len > HEAD_CT_MAX || !hp__http_valid_field_value(ctype))
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
int hp__http_render_head(struct http_conn *c, struct req_blk *rq, int status, struct hp_str ctype,
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
    if ((h = head_prefix(srv, status, ctype)) == NULL && !hp__http_valid_field_value(ctype))
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
    rq->status = status;
    if (fr == FR_NONE || rq->parser.method_id == HP__M_HEAD)
        rq->rflags |= R_NO_BODY;
    return 0;
}

/* ---- server-made responses --------------------------------------------- */

/*
 * The error-page hook's page for @p status, if there is a hook and it gave
 * one that cannot break the framing (a valid Content-Type value, a body of
 * bounded length); false for the default body.
 */
static bool custom_page(const struct hp_http_server *srv, int status, const char *reason,
                        struct hp_http_error_page *pg)
{
    if (srv->opts.error_page == NULL)
        return false;
    *pg = (struct hp_http_error_page){HP_STR_LIT(""), HP_STR_LIT("")};
    if (srv->opts.error_page(srv->opts.error_page_data, status, reason, pg) != 0)
        return false;
    if (pg->body.len > HP_HTTP_ERROR_PAGE_MAX || (pg->body.len != 0 && pg->body.ptr == NULL))
        return false;
    return pg->content_type.len == 0 ||
           (pg->content_type.ptr != NULL && hp__http_valid_field_value(pg->content_type));
}

int hp__http_error_response(struct http_conn *c, int status, const char *reason, bool no_body,
                            uint64_t *body_len)
{
    struct hp_http_server *srv = conn_srv(c);
    const char *phrase = hp_http_status_reason(status);
    size_t rlen = strlen(reason), plen = strlen(phrase);
    struct hp_http_error_page pg;
    bool custom = custom_page(srv, status, reason, &pg);
    /* The default: "400 Bad Request: reason\n". */
    size_t blen = custom ? pg.body.len : 4 + plen + 2 + rlen + 1;
    size_t ctlen = custom ? pg.content_type.len : 0;
    char *w;
    int err;

    *body_len = no_body ? 0 : blen;
    hp__http_date_check(srv);
    if ((err = hp__http_out_reserve(c, 160 + srv->common_len + ctlen + blen)) != 0)
        return err;
    w = c->out->data + c->out->len;
    w += status_line(status, w);
    put_lit(&w, srv->common, srv->common_len);
    if (!custom) {
        PUT_LIT(&w, "Content-Type: text/plain\r\n");
    } else if (ctlen != 0) {
        PUT_LIT(&w, "Content-Type: ");
        put_lit(&w, pg.content_type.ptr, ctlen);
        PUT_LIT(&w, "\r\n");
    }
    PUT_LIT(&w, "Content-Length: ");
    put_dec(&w, blen);
    PUT_LIT(&w, "\r\nConnection: close\r\n\r\n");
    if (no_body) {
        /* No content for HEAD; the Content-Length is that of the page a GET gets. */
    } else if (custom) {
        put_lit(&w, pg.body.ptr, blen); /* copied: the hook's bytes need not outlive it */
    } else {
        put_dec(&w, (uint64_t)status);
        PUT_LIT(&w, " ");
        put_lit(&w, phrase, plen);
        PUT_LIT(&w, ": ");
        put_lit(&w, reason, rlen);
        PUT_LIT(&w, "\n");
    }
    c->out->len = (size_t)(w - c->out->data);
    return 0;
}

size_t hp__http_refusal(const struct hp_http_server *srv, const char *reason, char *buf, size_t cap)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
    struct hp_http_error_page pg;
    char *w = buf;

    if (!custom_page(srv, 503, reason, &pg) || 128 + pg.content_type.len + pg.body.len > cap) {
        memcpy(buf, busy, sizeof(busy) - 1); /* cap is at least 128 */
        return sizeof(busy) - 1;
    }
    w += status_line(503, w);
    if (pg.content_type.len != 0) {
        PUT_LIT(&w, "Content-Type: ");
        put_lit(&w, pg.content_type.ptr, pg.content_type.len);
        PUT_LIT(&w, "\r\n");
    }
    PUT_LIT(&w, "Content-Length: ");
    put_dec(&w, pg.body.len);
    PUT_LIT(&w, "\r\nConnection: close\r\n\r\n");
    put_lit(&w, pg.body.ptr, pg.body.len);
    return (size_t)(w - buf);
}

void hp__http_send_continue(struct http_conn *c)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";

    if (hp__http_out_reserve(c, sizeof(line) - 1) == 0)
        hp__http_out_put(c, line, sizeof(line) - 1);
}
