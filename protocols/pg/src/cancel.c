/*
 * cancel.c - PQcancel() off the loop's thread, on the loop's thread pool
 * (hellepoll/pool.h).
 *
 * PQcancel() opens a new connection to the server and waits for it to
 * close, so it blocks (indefinitely against a stopped server): it runs as
 * pool work, and its completion comes back to the loop.
 *
 * Lifetime: a request belongs to the pool while it is pending (on its list)
 * and frees itself in its completion callback, which the thread pool runs
 * exactly once, even when the loop is freed first. When the hp_pg_pool is
 * freed first it detaches every request (pool pointer cleared; one not
 * started yet is cancelled): the completion then touches nothing of it.
 * A request still blocked in PQcancel() keeps the loop alive, and
 * hp_loop_free() waits for it (the thread pool's rule).
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

struct pgcancel_reg {
    struct hp_work work;
    struct pgcancel_reg *next, *prev; /* the pool's list */
    struct hp_pg_pool *pool;          /* NULL once detached */
    PGcancel *cancel;
    int ok; /* written by the worker, read in the completion */
};

static void unlink_reg(struct pgcancel_reg *r)
{
    struct hp_pg_pool *pool = r->pool;

    if (r->prev)
        r->prev->next = r->next;
    else
        pool->cancels = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void run(struct hp_work *w)
{
    struct pgcancel_reg *r = hp_container_of(w, struct pgcancel_reg, work);
    char err[256];

    r->ok = PQcancel(r->cancel, err, (int)sizeof(err));
}

static void done(struct hp_work *w, int status)
{
    struct pgcancel_reg *r = hp_container_of(w, struct pgcancel_reg, work);

    if (r->pool) {
        if (status != 0 || !r->ok)
            r->pool->st.cancels--; /* count only requests the server got */
        unlink_reg(r);
    }
    PQfreeCancel(r->cancel);
    free(r);
}

int hp__pg_cancel_start(struct hp_pg_pool *pool, PGconn *pg)
{
    /* libc, not the pool's allocator: a request may outlive the pool. */
    struct pgcancel_reg *r = calloc(1, sizeof(*r));
    int err;

    if (!r)
        return -ENOMEM;
    r->cancel = PQgetCancel(pg);
    if (!r->cancel) {
        free(r);
        return -ENOMEM;
    }
    r->pool = pool;
    err = hp_work_submit(pool->loop, &r->work, run, done);
    if (err) {
        PQfreeCancel(r->cancel);
        free(r);
        return err;
    }
    r->next = pool->cancels;
    if (pool->cancels)
        pool->cancels->prev = r;
    pool->cancels = r;
    return 0;
}

void hp__pg_cancel_detach_all(struct hp_pg_pool *pool)
{
    while (pool->cancels) {
        struct pgcancel_reg *r = pool->cancels;

        pool->cancels = r->next;
        r->pool = NULL;
        (void)hp_work_cancel(&r->work); /* not started: never connect at all */
    }
}
