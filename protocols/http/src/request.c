/*
 * request.c - the handler's read access to a request's header fields. The
 * fields are offsets into the connection's read buffer (kept by the parser);
 * views are made on demand from the buffer's current address, which the
 * connection sets rq->base before it hands the request out, and which stays
 * put until the request is finished; and the per-request arena.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "internal.h"

size_t hp_http_req_header_count(const struct hp_http_req *req)
{
    const struct req_blk *rq = (const struct req_blk *)(const void *)req;

    return rq->parser.nfields;
}

bool hp_http_req_header_at(const struct hp_http_req *req, size_t i, struct hp_str *name,
                           struct hp_str *value)
{
    const struct req_blk *rq = (const struct req_blk *)(const void *)req;
    const struct hp__http_field *f;

    if (i >= rq->parser.nfields)
        return false;
    f = &rq->fields[i];
    if (name != NULL)
        *name = (struct hp_str){rq->base + f->name_off, f->name_len};
    if (value != NULL)
        *value = (struct hp_str){rq->base + f->value_off, f->value_len};
    return true;
}

bool hp_http_req_header(const struct hp_http_req *req, const char *name, struct hp_str *value)
{
    return hp_http_req_header_str(req, (struct hp_str){name, strlen(name)}, value);
}

bool hp_http_req_header_str(const struct hp_http_req *req, struct hp_str name, struct hp_str *value)
{
    const struct req_blk *rq = (const struct req_blk *)(const void *)req;
    const char *np = name.ptr;
    size_t n = name.len;

    for (uint32_t i = 0; i < rq->parser.nfields; i++) {
        const struct hp__http_field *f = &rq->fields[i];
        if (f->name_len == n && hp__http_ieq(rq->base + f->name_off, np, n)) {
            *value = (struct hp_str){rq->base + f->value_off, f->value_len};
            return true;
        }
    }
    return false;
}

/* ---- the per-request arena --------------------------------------------- */

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

#define ARENA_ALIGN 16
#define ARENA_CHUNK 4096

static size_t align_up(size_t n)
{
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

void *hp_http_req_alloc(struct hp_http_req *req, size_t n)
{
    struct req_blk *rq = hp__http_rq(req);
    struct arena_chunk *ch = rq->arena;
    size_t cap;

    if (n == 0 || n > ((size_t)1 << 30))
        return NULL;
    n = align_up(n);
    if (ARENA_INLINE - rq->arena_used >= n) {
        void *p = rq->arena_inline + rq->arena_used;
        rq->arena_used += n;
        return p;
    }
    if (ch != NULL && ch->cap - ch->used >= n) {
        void *p = ch->data + ch->used;
        ch->used += n;
        return p;
    }
    cap = n > ARENA_CHUNK - sizeof(*ch) ? n : ARENA_CHUNK - sizeof(*ch);
    if ((ch = hp__http_alloc(req->server, sizeof(*ch) + cap)) == NULL)
        return NULL;
    ch->cap = cap;
    ch->used = n;
    ch->next = rq->arena;
    rq->arena = ch;
    return ch->data;
}

void hp__http_arena_free(struct req_blk *rq)
{
    while (rq->arena != NULL) {
        struct arena_chunk *ch = rq->arena;
        rq->arena = ch->next;
        hp__http_free(rq->req.server, ch);
    }
    rq->arena_used = 0;
}

/* ---- the peer ---------------------------------------------------------- */

/* Dotted-quad text of the 4 bytes at @p a into @p out (16 bytes); its length. */
static size_t ipv4_text(const unsigned char *a, char *out)
{
    char *w = out;

    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *w++ = (char)('0' + v / 100);
        if (v >= 10)
            *w++ = (char)('0' + v / 10 % 10);
        *w++ = (char)('0' + v % 10);
        *w++ = '.';
    }
    w[-1] = '\0';
    return (size_t)(w - 1 - out);
}

/* Ask the kernel for @p rq's peer and keep its text in rq (and the server's cache). */
static int peer_fetch(struct req_blk *rq)
{
    struct hp_http_server *srv = rq->req.server;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char *text = rq->peer_text;
    size_t n;
    int fd;

    if (rq->conn == NULL)
        return HP_ECLOSED;
    fd = hp_stream_fd(&rq->conn->stream);
    if (fd >= 0 && (size_t)fd < srv->npeers && srv->peers[fd].len != 0) {
        const struct peer_slot *slot = &srv->peers[fd];
        memcpy(text, slot->text, sizeof(slot->text));
        rq->peer_len = slot->len;
        rq->peer_port = slot->port;
        return 0;
    }
    if (getpeername(fd, (struct sockaddr *)(void *)&ss, &sl) != 0)
        return -errno;
    rq->peer_port = 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)&ss;
        n = ipv4_text((const unsigned char *)&a->sin_addr, text);
        rq->peer_port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            n = ipv4_text(&a->sin6_addr.s6_addr[12], text);
        else if (inet_ntop(AF_INET6, &a->sin6_addr, text, HP_HTTP_PEER_STRLEN) != NULL)
            n = strlen(text);
        else
            return -errno;
        rq->peer_port = ntohs(a->sin6_port);
    } else {
        memcpy(text, "unix", 5);
        n = 4;
    }
    rq->peer_len = (uint8_t)n; /* < HP_HTTP_PEER_STRLEN */
    if (srv->opts.on_log != NULL && fd >= 0 && hp__http_peer_slot(srv, fd) == 0) {
        struct peer_slot *slot = &srv->peers[fd];
        memcpy(slot->text, text, sizeof(slot->text));
        slot->len = rq->peer_len;
        slot->port = rq->peer_port;
    }
    return 0;
}

const char *hp__http_peer_text(struct req_blk *rq, size_t *len)
{
    struct hp_http_server *srv = rq->req.server;

    if (rq->peer_err == 1 && rq->conn != NULL) {
        /* A connection's later requests find it in the server's cache. */
        int fd = hp_stream_fd(&rq->conn->stream);
        if (fd >= 0 && (size_t)fd < srv->npeers && srv->peers[fd].len != 0) {
            *len = srv->peers[fd].len;
            return srv->peers[fd].text;
        }
    }
    if (rq->peer_err == 1)
        rq->peer_err = peer_fetch(rq);
    if (rq->peer_err != 0)
        return NULL;
    *len = rq->peer_len;
    return rq->peer_text;
}

int hp_http_req_peer_str(struct hp_http_req *req, char *buf, size_t len, uint16_t *port)
{
    struct req_blk *rq = hp__http_rq(req);

    if (rq->peer_err == 1)
        rq->peer_err = peer_fetch(rq);
    if (rq->peer_err != 0)
        return rq->peer_err;
    if (rq->peer_len >= len)
        return -ENOSPC;
    memcpy(buf, rq->peer_text, (size_t)rq->peer_len + 1);
    if (port != NULL)
        *port = rq->peer_port;
    return 0;
}

int hp__http_peer_slot(struct hp_http_server *srv, int fd)
{
    size_t n = srv->npeers;
    struct peer_slot *p;

    if ((size_t)fd < n)
        return 0;
    n = n == 0 ? 64 : n;
    while (n <= (size_t)fd)
        n *= 2;
    if ((p = hp__http_realloc(srv, srv->peers, n * sizeof(*p))) == NULL)
        return -ENOMEM;
    memset(p + srv->npeers, 0, (n - srv->npeers) * sizeof(*p));
    srv->peers = p;
    srv->npeers = n;
    return 0;
}
