/*
 * request.c - the handler's read access to a request's header fields. The
 * fields are offsets into the connection's read buffer (kept by the parser);
 * views are made on demand from the buffer's current address, which the
 * connection sets rq->base before it hands the request out, and which stays
 * put until the request is finished; and the per-request arena.
 */
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
    const struct req_blk *rq = (const struct req_blk *)(const void *)req;
    size_t n = strlen(name);

    for (uint32_t i = 0; i < rq->parser.nfields; i++) {
        const struct hp__http_field *f = &rq->fields[i];
        if (f->name_len == n && hp__http_ieq(rq->base + f->name_off, name, n)) {
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
