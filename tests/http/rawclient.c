/*
 * rawclient.c - raw HTTP clients and a response parser (see rawclient.h).
 */
#include "rawclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

static void reset_bufs(struct rc_client *c)
{
    free(c->out);
    free(c->in);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

void rc_open_adopted(struct rc_client *c, struct hp_http_server *srv)
{
    int sv[2];

    reset_bufs(c);
    hp_test_socketpair(sv);
    c->fd = sv[1];
    assert_int_equal(hp_http_server_adopt(srv, sv[0]), 0);
}

void rc_open_tcp(struct rc_client *c, uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = hp_test_socket(AF_INET, SOCK_STREAM, false);
    int fl;

    reset_bufs(c);
    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        fail_msg("connect: %s", strerror(errno));
    fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
    c->fd = fd;
}

void rc_close(struct rc_client *c, bool reset)
{
    if (c->fd >= 0) {
        if (reset) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(c->fd);
    }
    reset_bufs(c);
}

static void grow(char **buf, size_t *cap, size_t need)
{
    size_t n = *cap ? *cap : 4096;

    if (need <= *cap)
        return;
    while (n < need)
        n *= 2;
    *buf = realloc(*buf, n);
    assert_non_null(*buf);
    *cap = n;
}

void rc_send(struct rc_client *c, const void *data, size_t len)
{
    grow(&c->out, &c->out_cap, c->out_len + len);
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

void rc_send_str(struct rc_client *c, const char *s)
{
    rc_send(c, s, strlen(s));
}

size_t rc_unsent(const struct rc_client *c)
{
    return c->out_len - c->out_off;
}

static void pump_out(struct rc_client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN))
            return;
        c->out_off = c->out_len; /* the server is gone: what is left is lost */
    }
    c->out_off = c->out_len = 0;
}

static void pump_in(struct rc_client *c)
{
    for (;;) {
        ssize_t n;

        grow(&c->in, &c->in_cap, c->in_len + 65536 + 1);
        c->in[c->in_len] = '\0';
        n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            c->in[c->in_len] = '\0';
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN))
            return;
        c->eof = true;
        c->err = n < 0 ? errno : 0;
        return;
    }
}

void rc_pump(struct rc_client *c)
{
    if (c->fd < 0)
        return;
    pump_out(c);
    if (!c->deaf && !c->eof)
        pump_in(c);
}

static bool head_has(const char *p, size_t n, const char *s)
{
    return memmem(p, n, s, strlen(s)) != NULL;
}

static void body_add(struct rc_resp *r, size_t *cap, const char *p, size_t n)
{
    grow(&r->body, cap, r->body_len + n + 1);
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
}

/* The chunked body from @p pos: the response's length, or 0 if incomplete. */
static size_t parse_chunked(const char *p, size_t n, size_t pos, struct rc_resp *r)
{
    size_t cap = 0;

    for (;;) {
        const char *le = memmem(p + pos, n - pos, "\r\n", 2);
        size_t data, sz;
        char *end;

        if (le == NULL)
            return 0;
        sz = (size_t)strtoul(p + pos, &end, 16);
        if (end != le)
            fail_msg("bad chunk size line: %.*s", (int)(le - (p + pos)), p + pos);
        data = (size_t)(le - p) + 2;
        if (sz == 0) {
            if (n - data < 2)
                return 0;
            if (memcmp(p + data, "\r\n", 2) != 0)
                fail_msg("trailer fields or a bad last chunk");
            return data + 2;
        }
        if (n - data < sz + 2)
            return 0;
        if (memcmp(p + data + sz, "\r\n", 2) != 0)
            fail_msg("chunk data not followed by CRLF");
        body_add(r, &cap, p + data, sz);
        pos = data + sz + 2;
    }
}

size_t rc_parse(const char *p, size_t n, bool head, struct rc_resp *r)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    const char *cl;
    size_t hl, total, cap = 0;

    memset(r, 0, sizeof(*r));
    if (n >= 5 && memcmp(p, "HTTP/", 5) != 0)
        fail_msg("not a response: %.*s", (int)(n < 120 ? n : 120), p);
    if (end == NULL)
        return 0;
    hl = (size_t)(end - p) + 4;
    if (hl < 14 || memcmp(p, "HTTP/1.1 ", 9) != 0)
        fail_msg("bad status line: %.*s", (int)(hl < 120 ? hl : 120), p);
    r->status = atoi(p + 9);
    r->head_len = hl;
    r->close = head_has(p, hl, "\r\nConnection: close\r\n");
    r->chunked = head_has(p, hl, "\r\nTransfer-Encoding: chunked\r\n");
    if ((cl = memmem(p, hl, "\r\nContent-Length: ", 18)) != NULL) {
        r->has_length = true;
        r->content_length = strtoull(cl + 18, NULL, 10);
    }
    if (head || r->status < 200 || r->status == 204 || r->status == 304) {
        r->len = hl;
        return hl;
    }
    if (r->chunked) {
        total = parse_chunked(p, n, hl, r);
    } else if (r->has_length) {
        total = n - hl >= r->content_length ? hl + (size_t)r->content_length : 0;
        if (total != 0)
            body_add(r, &cap, p + hl, (size_t)r->content_length);
    } else {
        total = 0; /* delimited by the end of the connection */
    }
    if (total == 0) {
        rc_resp_free(r);
        return 0;
    }
    if (r->body == NULL)
        body_add(r, &cap, "", 0);
    r->len = total;
    return total;
}

void rc_resp_free(struct rc_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

bool rc_next(struct rc_client *c, bool head, struct rc_resp *r)
{
    size_t n;

    if (c->in_off >= c->in_len)
        return false;
    n = rc_parse(c->in + c->in_off, c->in_len - c->in_off, head, r);
    c->in_off += n;
    return n != 0;
}

size_t rc_count(const struct rc_client *c, const char *needle)
{
    size_t found = 0, len = strlen(needle);
    const char *p = c->in, *e = c->in + c->in_len;

    while (p != NULL && (size_t)(e - p) >= len &&
           (p = memmem(p, (size_t)(e - p), needle, len)) != NULL) {
        found++;
        p += len;
    }
    return found;
}
