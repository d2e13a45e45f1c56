/*
 * output.c - output blocks: the bytes of a connection's responses, built in
 * its current block (c->out) and queued with one hp_stream_write() per
 * batch. Blocks come from a server pool and go back to it when their write
 * completes; a response bigger than a block grows a private one.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "internal.h"

/* ---- output blocks ----------------------------------------------------- */

/* The connection is done with the block's file: tell its owner, once. */
void hp__http_out_file_done(struct out_blk *b, int status)
{
    hp_http_file_cb *cb = b->file_cb;

    b->file_cb = NULL;
    cb(b->file_arg, status);
}

void hp__http_out_release(struct hp_http_server *srv, struct out_blk *b)
{
    assert(b->file_cb == NULL); /* a file block is queued at once: on_written or the reaper */
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
        b->file_cb = NULL;
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

void hp__http_out_park(struct hp_http_server *srv, struct out_blk *b, int err)
{
    b->file_err = err;
    b->next = srv->dead_files;
    srv->dead_files = b;
    hp_defer_start(&srv->defer);
}

void hp__http_out_reap(struct hp_http_server *srv)
{
    while (srv->dead_files != NULL) {
        struct out_blk *b = srv->dead_files;

        srv->dead_files = b->next;
        hp__http_out_file_done(b, b->file_err);
        hp__http_out_release(srv, b);
    }
}
