/*
 * cancel.c - PQcancel() off the loop's thread.
 *
 * PQcancel() opens a new connection to the server and waits for it to
 * close, so it blocks (indefinitely against a stopped server). TEMPORARY:
 * until the core's thread pool (hellepoll/pool.h) lands, each request runs
 * on a detached thread of its own; hp__pg_cancel_start() is the one place
 * to swap. The outcome is posted back to the loop with hp_loop_post().
 *
 * Lifetime: a request is shared by the thread and the pool. The pool keeps
 * it on its list (loop thread only). When the pool is freed first, it
 * detaches every request: one still running is marked detached and its
 * thread frees it without posting; one already posted has its pool pointer
 * cleared and the post callback (which runs even when the loop is freed,
 * with -ECANCELED) frees it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

struct pgcancel_reg {
    struct pgcancel_reg *next, *prev; /* the pool's list: loop thread only */
    struct hp_pg_pool *pool;          /* loop thread only; NULL once detached */
    struct hp_loop *loop;
    PGcancel *cancel;
    pthread_mutex_t lock;
    bool detached; /* under lock: the pool is gone, the thread frees */
    bool posted;   /* under lock: the thread's post is queued */
    bool finished; /* under lock: the thread is done without a post */
    int ok;
};

static void reg_free(struct pgcancel_reg *r)
{
    PQfreeCancel(r->cancel);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

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

static void on_done(struct hp_loop *loop, int status, void *arg)
{
    struct pgcancel_reg *r = arg;

    (void)loop;
    (void)status;
    /* The thread may still be inside its critical section around the post: wait it out. */
    pthread_mutex_lock(&r->lock);
    pthread_mutex_unlock(&r->lock);
    if (r->pool) {
        if (!r->ok)
            r->pool->st.cancels--; /* count only requests the server got */
        unlink_reg(r);
    }
    reg_free(r);
}

static void *run(void *arg)
{
    struct pgcancel_reg *r = arg;
    char err[256];
    int ok = PQcancel(r->cancel, err, (int)sizeof(err));
    bool free_it;

    pthread_mutex_lock(&r->lock);
    r->ok = ok;
    free_it = r->detached;
    if (!free_it) {
        /* Set before posting: once posted, the loop thread may look at it. */
        r->posted = true;
        if (hp_loop_post(r->loop, on_done, r) != 0) {
            r->posted = false;
            r->finished = true;
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (free_it)
        reg_free(r);
    return NULL;
}

int hp__pg_cancel_start(struct hp_pg_pool *pool, PGconn *pg)
{
    struct pgcancel_reg *r = calloc(1, sizeof(*r));
    pthread_attr_t attr;
    pthread_t th;
    int err;

    if (!r)
        return -ENOMEM;
    r->cancel = PQgetCancel(pg);
    if (!r->cancel) {
        free(r);
        return -ENOMEM;
    }
    r->pool = pool;
    r->loop = pool->loop;
    pthread_mutex_init(&r->lock, NULL);
    r->next = pool->cancels;
    if (pool->cancels)
        pool->cancels->prev = r;
    pool->cancels = r;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    err = pthread_create(&th, &attr, run, r);
    pthread_attr_destroy(&attr);
    if (err) {
        unlink_reg(r);
        reg_free(r);
        return -err;
    }
    return 0;
}

void hp__pg_cancel_detach_all(struct hp_pg_pool *pool)
{
    while (pool->cancels) {
        struct pgcancel_reg *r = pool->cancels;
        bool free_it;

        pool->cancels = r->next;
        pthread_mutex_lock(&r->lock);
        free_it = r->finished;
        r->pool = NULL;
        if (!r->posted && !r->finished)
            r->detached = true;
        pthread_mutex_unlock(&r->lock);
        if (free_it)
            reg_free(r);
    }
}
