/*
 * pool.c - the loop's thread pool (see pool.h).
 *
 * One mutex guards the pool: the queue of submitted items (doubly linked so
 * that a cancel is O(1)), the list of finished ones and the thread count.
 * Workers sleep on a condition variable. A worker that finishes an item
 * appends it to the finished list; the first one to do so since the loop
 * last took that list signals the loop's wakeup descriptor (post.c), whose
 * watcher then calls hp__pool_complete(). A cancel moves the item to the
 * finished list too, so its callback also runs from the wakeup, never
 * inside the call.
 *
 * The struct is allocated by the first submission; threads are created as
 * work finds no idle one. hp__pool_free() (from hp_loop_free()) stops the
 * workers after their current item, cancels the rest, joins them and runs
 * every completion still owed.
 */
#include <signal.h>
#include <string.h>

#include "internal.h"

enum {
    W_IDLE = 0, /* not in flight (or its done callback has started) */
    W_QUEUED,   /* waiting for a worker */
    W_RUNNING,  /* a worker runs it */
    W_FINISHED, /* on the finished list, its callback owed */
};

#define POOL_THREADS_DEFAULT 4
#define POOL_THREADS_MAX     1024
#define POOL_QUEUE_DEFAULT   65536

struct hp__pool {
    struct hp_loop *loop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct hp_work *q_head, *q_tail;       /* queued */
    struct hp_work *done_head, *done_tail; /* finished or cancelled */
    size_t queued;
    unsigned idle;     /* workers waiting on cv */
    unsigned nthreads; /* started */
    unsigned max_threads;
    unsigned max_queue;
    bool stopping;
    bool done_armed; /* the loop has been woken for the finished list */
    pthread_t threads[];
};

static void unlink_queued(struct hp__pool *p, struct hp_work *w)
{
    if (w->_prev)
        w->_prev->_next = w->_next;
    else
        p->q_head = w->_next;
    if (w->_next)
        w->_next->_prev = w->_prev;
    else
        p->q_tail = w->_prev;
    w->_prev = w->_next = NULL;
    p->queued--;
}

/* Append @p w to the finished list; true if the loop needs a wakeup. Locked. */
static bool push_done(struct hp__pool *p, struct hp_work *w, int status)
{
    w->_state = W_FINISHED;
    w->_status = status;
    w->_next = NULL;
    if (p->done_tail)
        p->done_tail->_next = w;
    else
        p->done_head = w;
    p->done_tail = w;
    if (p->done_armed)
        return false;
    p->done_armed = true;
    return true;
}

static void *worker(void *arg)
{
    struct hp__pool *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct hp_work *w;

        while (!p->q_head && !p->stopping) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (p->stopping)
            break; /* what is still queued is cancelled by hp__pool_free() */
        w = p->q_head;
        unlink_queued(p, w);
        w->_state = W_RUNNING;
        pthread_mutex_unlock(&p->mu);
        w->_fn(w);
        pthread_mutex_lock(&p->mu);
        /* Signalling under the lock: a write(2) to an eventfd or pipe, short. */
        if (push_done(p, w, 0))
            hp__loop_wake(p->loop);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Start one more worker, with every signal blocked (the loop's thread takes them). */
static int start_thread(struct hp__pool *p)
{
    sigset_t all, old;
    int err;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&p->threads[p->nthreads], NULL, worker, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        return -err;
    p->nthreads++;
    return 0;
}

static int pool_create(struct hp_loop *loop)
{
    unsigned n = loop->pool_threads ? loop->pool_threads : POOL_THREADS_DEFAULT;
    struct hp__pool *p;
    int err;

    p = hp__alloc(loop, sizeof(*p) + n * sizeof(pthread_t));
    if (!p)
        return -ENOMEM;
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->max_threads = n;
    p->max_queue = loop->pool_max_queue ? loop->pool_max_queue : POOL_QUEUE_DEFAULT;
    if ((err = pthread_mutex_init(&p->mu, NULL)) != 0)
        goto err_free;
    if ((err = pthread_cond_init(&p->cv, NULL)) != 0)
        goto err_mutex;
    loop->pool = p;
    return 0;

err_mutex:
    pthread_mutex_destroy(&p->mu);
err_free:
    hp__free(loop, p);
    return err > 0 ? -err : err;
}

int hp_pool_config(struct hp_loop *loop, const struct hp_pool_opts *opts)
{
    if (opts->threads > POOL_THREADS_MAX)
        return -EINVAL;
    if (loop->pool || loop->pool_stopping)
        return -EBUSY;
    loop->pool_threads = opts->threads;
    loop->pool_max_queue = opts->max_queue;
    return 0;
}

int hp_work_submit(struct hp_loop *loop, struct hp_work *w, hp_work_fn *fn, hp_work_done_cb *done)
{
    struct hp__pool *p;
    int err = 0;

    if (!fn || !done || w->_state != W_IDLE)
        return -EINVAL;
    if (loop->pool_stopping)
        return -ECANCELED;
    if (!loop->pool && (err = pool_create(loop)) != 0)
        return err;
    p = loop->pool;
    pthread_mutex_lock(&p->mu);
    if (p->queued >= p->max_queue) {
        pthread_mutex_unlock(&p->mu);
        return -ENOBUFS;
    }
    /* A thread more when nobody idle will take it; only the first one must start. */
    if (p->idle <= p->queued && p->nthreads < p->max_threads && (err = start_thread(p)) != 0 &&
        p->nthreads == 0) {
        pthread_mutex_unlock(&p->mu);
        return err;
    }
    w->loop = loop;
    w->_fn = fn;
    w->_done = done;
    w->_state = W_QUEUED;
    w->_next = NULL;
    w->_prev = p->q_tail;
    if (p->q_tail)
        p->q_tail->_next = w;
    else
        p->q_head = w;
    p->q_tail = w;
    p->queued++;
    loop->work_n++;
    if (p->idle)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int hp_work_cancel(struct hp_work *w)
{
    struct hp__pool *p;
    int err = -EBUSY;

    if (!w->loop || !(p = w->loop->pool))
        return -EINVAL;
    pthread_mutex_lock(&p->mu);
    if (w->_state == W_IDLE) {
        err = -EINVAL;
    } else if (w->_state == W_QUEUED) {
        unlink_queued(p, w);
        if (push_done(p, w, -ECANCELED))
            hp__loop_wake(p->loop);
        err = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return err;
}

size_t hp_pool_pending(const struct hp_loop *loop)
{
    return loop->work_n;
}

/* Run the callbacks of a detached finished list. */
static int run_done(struct hp_loop *loop, struct hp_work *w)
{
    int ran = 0;

    while (w) {
        struct hp_work *next = w->_next;

        w->_next = NULL;
        w->_state = W_IDLE;
        loop->work_n--;
        w->_done(w, w->_status);
        ran++;
        w = next;
    }
    return ran;
}

int hp__pool_complete(struct hp_loop *loop)
{
    struct hp__pool *p = loop->pool;
    struct hp_work *head;

    pthread_mutex_lock(&p->mu);
    head = p->done_head;
    p->done_head = p->done_tail = NULL;
    p->done_armed = false;
    pthread_mutex_unlock(&p->mu);
    return run_done(loop, head);
}

void hp__pool_free(struct hp_loop *loop)
{
    struct hp__pool *p = loop->pool;

    if (!p)
        return;
    loop->pool_stopping = true;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    while (p->q_head) {
        struct hp_work *w = p->q_head;

        unlink_queued(p, w);
        push_done(p, w, -ECANCELED);
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* Single-threaded from here: the finished list holds every owed callback. */
    hp__pool_complete(loop);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    loop->pool = NULL;
    hp__free(loop, p);
}
