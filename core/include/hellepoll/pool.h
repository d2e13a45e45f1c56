/**
 * @file pool.h
 * A thread pool per loop, for blocking work (libuv's uv_queue_work): a
 * function runs on a worker thread, its completion callback on the loop's
 * thread.
 *
 * Each loop has its own pool, started lazily by the first hp_work_submit()
 * (threads are created as queued work finds no idle one, up to
 * hp_pool_opts.threads). Completions travel back through the loop's
 * cross-thread wakeup (the one hp_loop_post() uses), batched: one wakeup
 * for any number of completions that finish while the loop is busy.
 *
 * Rules:
 * - struct hp_work is caller-allocated and must stay valid, unmoved, from
 *   a successful hp_work_submit() until its done callback has started; it
 *   may be submitted again (or freed) from inside that callback.
 * - every successful submission gets exactly one done callback, on the
 *   loop's thread, never inside hp_work_submit() or hp_work_cancel():
 *   status 0 once work ran, or -ECANCELED if it never started (cancelled,
 *   or the loop was freed first).
 * - work in flight keeps the loop alive (hp_loop_run() does not return).
 * - hp_loop_free() with work still in flight shuts the pool down instead
 *   of refusing: queued items are not started and get -ECANCELED, running
 *   ones finish and get 0, all of those callbacks run inside
 *   hp_loop_free(), then the threads are joined. Submitting from one of
 *   those callbacks fails with -ECANCELED.
 * - only hp_work_fn runs on a worker: it must not touch the loop or any of
 *   its handles (it may call hp_loop_post()).
 */
#ifndef HP_POOL_H
#define HP_POOL_H

#include <stddef.h>

#include <hellepoll/defs.h>
#include <hellepoll/loop.h>

struct hp_work;

/** The blocking part: runs once on a worker thread. */
typedef void hp_work_fn(struct hp_work *w);

/**
 * The completion: runs once on the loop's thread.
 * @param status 0 (work ran) or -ECANCELED (it never started).
 */
typedef void hp_work_done_cb(struct hp_work *w, int status);

/** A unit of work; zero it or leave it as the last done callback left it. */
struct hp_work {
    void *data;           /**< User pointer, free for the caller. */
    struct hp_loop *loop; /**< Set by hp_work_submit(); read-only. */
    hp_work_fn *_fn;
    hp_work_done_cb *_done;
    struct hp_work *_prev, *_next;
    int _state;
    int _status;
};

/** Pool options; 0 means the default for each field. */
struct hp_pool_opts {
    /** Worker threads at most. Default 4, at most 1024. */
    unsigned threads;
    /** Submitted items waiting for a thread, at most. Default 65536. */
    unsigned max_queue;
};

/**
 * Configure the pool of @p loop before its first submission.
 * @return 0; -EINVAL (a value out of range); -EBUSY (the pool has started:
 *         nothing changed).
 */
HP_API int hp_pool_config(struct hp_loop *loop, const struct hp_pool_opts *opts);

/**
 * Queue @p w: @p fn(w) on a worker, then @p done(w, 0) on the loop's
 * thread. Loop thread only.
 * @return 0; -EINVAL (@p fn or @p done NULL, or @p w already in flight);
 *         -ENOBUFS (max_queue items are already waiting: nothing queued);
 *         -ENOMEM or pthread_create's -errno (the first thread could not be
 *         started); -ECANCELED (the loop is being freed). On error @p done
 *         never runs for this call.
 */
HP_API HP_NODISCARD int hp_work_submit(struct hp_loop *loop, struct hp_work *w, hp_work_fn *fn,
                                       hp_work_done_cb *done);

/**
 * Cancel @p w if no worker has taken it yet: its done callback then runs
 * later with -ECANCELED. Loop thread only.
 * @return 0 (cancelled); -EBUSY (running or finished: the callback will
 *         report 0); -EINVAL (not in flight).
 */
HP_API int hp_work_cancel(struct hp_work *w);

/** Submitted items of @p loop whose done callback has not run yet. */
HP_API size_t hp_pool_pending(const struct hp_loop *loop);

#endif
