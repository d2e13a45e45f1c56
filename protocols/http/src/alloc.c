/*
 * alloc.c - the module's allocations, through the server's allocator
 * (hp_http_server_opts.alloc, libc by default).
 */
#include <stdlib.h>

#include "internal.h"

static void *libc_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n);
}

static void libc_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

void *hp__http_alloc(struct hp_http_server *srv, size_t n)
{
    return srv->alloc.realloc(srv->alloc.ctx, NULL, n);
}

void *hp__http_realloc(struct hp_http_server *srv, void *p, size_t n)
{
    return srv->alloc.realloc(srv->alloc.ctx, p, n);
}

void hp__http_free(struct hp_http_server *srv, void *p)
{
    srv->alloc.free(srv->alloc.ctx, p);
}

struct hp_allocator hp__http_libc_allocator(void)
{
    return (struct hp_allocator){libc_realloc, libc_free, NULL};
}
