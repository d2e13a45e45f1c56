/*
 * loop.c - the scheduler: loop lifecycle and one iteration.
 *
 * An iteration: run due timers; wait in the driver (not at all if deferred
 * work is pending or a stop was asked for, otherwise no longer than the next
 * timer); dispatch the ready batch (io.c); run due timers again; run the
 * deferred callbacks queued before this phase began (defer.c, which also
 * carries posts and close callbacks). Nothing here allocates.
 */
#include <limits.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static uint64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int check_opts(const struct hp_loop_opts *opts)
{
    if (!opts)
        return 0;
    if ((opts->alloc.realloc == NULL) != (opts->alloc.free == NULL))
        return -EINVAL;
    if (opts->max_events > 65536 || opts->log_level > HP_LOG_DEBUG)
        return -EINVAL;
    return 0;
}

static void apply_opts(struct hp_loop *loop, const struct hp_loop_opts *opts)
{
    loop->log_level = HP_LOG_WARN;
    loop->max_events = 1024;
    if (!opts)
        return;
    if (opts->alloc.realloc)
        loop->alloc = opts->alloc;
    loop->log = opts->log;
    loop->log_ctx = opts->log_ctx;
    if (opts->log_level)
        loop->log_level = opts->log_level;
    if (opts->max_events)
        loop->max_events = opts->max_events;
}

int hp_loop_new(struct hp_loop **out, const struct hp_loop_opts *opts)
{
    struct hp_allocator alloc;
    struct hp_loop *loop;
    int err = check_opts(opts);

    if (err)
        return err;
    hp__default_allocator(&alloc);
    if (opts && opts->alloc.realloc)
        alloc = opts->alloc;
    loop = alloc.realloc(alloc.ctx, NULL, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    memset(loop, 0, sizeof(*loop));
    loop->alloc = alloc;
    apply_opts(loop, opts);
    loop->ops = &HP_BACKEND_OPS;
    loop->wake_rfd = loop->wake_wfd = loop->sig_rfd = loop->sig_wfd = -1;
    loop->sig_slot = -1;
    loop->accepted_fd = -1;
    loop->now = monotonic_ms();
    hp__streams_init(loop);

    loop->ready = hp__realloc_array(loop, NULL, loop->max_events, sizeof(*loop->ready));
    if (!loop->ready) {
        err = -ENOMEM;
        goto err_free_loop;
    }
    struct hp_backend_cfg cfg = {.alloc = loop->alloc, .max_events = loop->max_events};
    err = loop->ops->init(&loop->backend, &cfg);
    if (err)
        goto err_free_ready;
    err = hp__post_init(loop);
    if (err)
        goto err_destroy_backend;
    *out = loop;
    return 0;

err_destroy_backend:
    hp__io_free_table(loop); /* the wakeup watcher may have grown it */
    loop->ops->destroy(loop->backend);
err_free_ready:
    hp__free(loop, loop->ready);
err_free_loop:
    hp__free(loop, loop);
    return err;
}

size_t hp_loop_active_handles(const struct hp_loop *loop)
{
    return loop->io_active + loop->heap_len + loop->defer_n + loop->signal_n + loop->closing_n +
           atomic_load(&loop->post_n) + loop->work_n;
}

bool hp_loop_is_alive(const struct hp_loop *loop)
{
    return hp_loop_active_handles(loop) != 0;
}

int hp_loop_free(struct hp_loop *loop)
{
    if (!loop)
        return 0;
    /* Posts still queued and pool work are cancelled below; anything else is the caller's. */
    if (hp_loop_active_handles(loop) != atomic_load(&loop->post_n) + loop->work_n)
        return -EBUSY;
    hp__pool_free(loop); /* first: its callbacks may still post */
    hp__post_free(loop);
    hp__signal_free(loop);
    loop->ops->destroy(loop->backend);
    hp__timers_free(loop);
    hp__io_free_table(loop);
    hp__buf_pool_free(loop);
    hp__free(loop, loop->ready);
    hp__free(loop, loop);
    return 0;
}

uint64_t hp_loop_now(const struct hp_loop *loop)
{
    return loop->now;
}

void hp_loop_update_time(struct hp_loop *loop)
{
    loop->now = monotonic_ms();
}

const char *hp_loop_backend(const struct hp_loop *loop)
{
    return loop->ops->name;
}

void hp_loop_stop(struct hp_loop *loop)
{
    loop->stop = true;
}

/* How long the driver may block: 0 if work is waiting, else up to the next timer. */
static int wait_timeout(const struct hp_loop *loop, int timeout_ms)
{
    int next;

    if (loop->defer_n || loop->stop)
        return 0;
    next = hp__timers_timeout(loop);
    if (next < 0)
        return timeout_ms;
    if (timeout_ms < 0 || next < timeout_ms)
        return next;
    return timeout_ms;
}

/* Due timers, without a call when none is due (the common case). */
static inline int run_due_timers(struct hp_loop *loop)
{
    if (loop->heap_len == 0 || loop->heap[0]->_key > loop->now)
        return 0;
    return hp__timers_run(loop);
}

/* One iteration; hp_loop_run() calls it directly, not through the exported symbol. */
static int iterate(struct hp_loop *loop, int timeout_ms)
{
    int ran = 0, n;

    loop->timer_pass = loop->timer_seq;
    /* Only timers need the time before the wait (to run and to bound it). */
    if (loop->heap_len) {
        loop->now = monotonic_ms();
        ran = run_due_timers(loop);
        /* The timers just run may have been all there was: then do not block. */
        if (ran && !hp_loop_is_alive(loop))
            timeout_ms = 0;
    }
    n = loop->ops->wait(loop->backend, loop->ready, (int)loop->max_events,
                        wait_timeout(loop, timeout_ms));
    if (n < 0)
        return n; /* the caller decides; returned, not logged */
    loop->now = monotonic_ms();
    ran += hp__io_dispatch(loop, n);
    ran += run_due_timers(loop);
    if (loop->defer_head)
        ran += hp__defers_run(loop);
    return ran;
}

int hp_loop_run_once(struct hp_loop *loop, int timeout_ms)
{
    return iterate(loop, timeout_ms);
}

int hp_loop_run(struct hp_loop *loop)
{
    int err = 0;

    loop->stop = false;
    /* io_active first: the usual reason to go on, without summing every count. */
    while (!loop->stop && (loop->io_active || hp_loop_is_alive(loop))) {
        err = iterate(loop, -1);
        if (err < 0)
            break;
        err = 0;
    }
    loop->stop = false;
    return err;
}
