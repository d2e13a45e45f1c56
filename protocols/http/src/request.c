/*
 * request.c - the handler's read access to a request's header fields. The
 * fields are offsets into the connection's read buffer (kept by the parser);
 * views are made on demand from the buffer's current address, which the
 * connection refreshes in rq->base whenever the buffer moves.
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
