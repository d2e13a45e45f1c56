/*
 * alloc.c - every allocation the core makes goes through the loop's
 * allocator; array sizes are checked for overflow here, in one place.
 */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

static void *libc_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    return realloc(ptr, size);
}

static void libc_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

void hp__default_allocator(struct hp_allocator *a)
{
    a->realloc = libc_realloc;
    a->free = libc_free;
    a->ctx = NULL;
}

void *hp__alloc(struct hp_loop *loop, size_t size)
{
    return loop->alloc.realloc(loop->alloc.ctx, NULL, size);
}

void *hp__realloc_array(struct hp_loop *loop, void *ptr, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return loop->alloc.realloc(loop->alloc.ctx, ptr, n * size);
}

void hp__free(struct hp_loop *loop, void *ptr)
{
    if (ptr)
        loop->alloc.free(loop->alloc.ctx, ptr);
}
