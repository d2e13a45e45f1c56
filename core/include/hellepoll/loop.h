/**
 * @file loop.h
 * The scheduler: one event loop, driving IO watchers, timers, deferred
 * callbacks, cross-thread posts and signal watchers.
 *
 * Threading: a loop and all its handles belong to one thread. The only
 * function that may be called from another thread is hp_loop_post(). Run one
 * loop per thread (or per process) to use several cores.
 *
 * The loop iterates as: run due timers; wait for IO (blocking no longer than
 * the next timer, not at all if deferred work is pending); dispatch ready IO
 * watchers; run deferred callbacks and cross-thread posts; finish closes.
 */
#ifndef HP_LOOP_H
#define HP_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/defs.h>
#include <hellepoll/log.h>

struct hp_loop;

/**
 * Allocator used for every allocation the loop and its handles make.
 * realloc(ctx, NULL, n) must behave as malloc, and free(ctx, NULL) must be a
 * no-op. The default is libc's. If hp_loop_post() is used from other threads,
 * the allocator must be thread-safe.
 */
struct hp_allocator {
    void *(*realloc)(void *ctx, void *ptr, size_t size);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
};

/** Options for hp_loop_new(). Zero (or NULL) means the default for each field. */
struct hp_loop_opts {
    /** Allocator; all NULL means libc. Copied by hp_loop_new(). */
    struct hp_allocator alloc;
    /** Log callback; NULL means the library stays silent. */
    hp_log_cb *log;
    /** Passed to log as its first argument. */
    void *log_ctx;
    /** Messages less severe than this are dropped. 0 (HP_LOG_DEFAULT) means HP_LOG_WARN. */
    enum hp_log_level log_level;
    /** Ready events taken from the driver per wait. Default 1024. */
    unsigned max_events;
};

/**
 * Create a loop with the configure-time driver (see hp_loop_backend()).
 * @param out  receives the loop; untouched on failure.
 * @param opts options, borrowed for the call; NULL for all defaults.
 * @return 0, -ENOMEM, -EINVAL (bad option) or the driver's -errno (e.g.
 *         -EMFILE).
 */
HP_API HP_NODISCARD int hp_loop_new(struct hp_loop **out, const struct hp_loop_opts *opts);

/**
 * Destroy a loop. Every IO watcher must have been stopped, every timer and
 * signal watcher stopped and every stream and listener closed (with its close
 * callback run). Cross-thread posts still queued are run with -ECANCELED.
 * @return 0, or -EBUSY (nothing freed) if handles are still active.
 */
HP_API int hp_loop_free(struct hp_loop *loop);

/**
 * Run until hp_loop_stop() is called or nothing is left to wait for (no
 * active watcher, timer, deferred callback or close in progress).
 * @return 0, or a negative errno if waiting for events failed (e.g.
 *         -ENOMEM); the loop can be run again afterwards.
 */
HP_API int hp_loop_run(struct hp_loop *loop);

/**
 * Run one iteration: due timers, one wait for IO of at most @p timeout_ms
 * (-1: until an event or the next timer; 0: do not block), then dispatch.
 * @return the number of callbacks run (>= 0), or a negative errno if
 *         waiting failed.
 */
HP_API int hp_loop_run_once(struct hp_loop *loop, int timeout_ms);

/**
 * Make hp_loop_run() return after the current iteration. Only from the
 * loop's thread (from another thread, post a callback that calls this).
 */
HP_API void hp_loop_stop(struct hp_loop *loop);

/** True if anything keeps hp_loop_run() going (see hp_loop_run()). */
HP_API bool hp_loop_is_alive(const struct hp_loop *loop);

/**
 * Monotonic time in milliseconds, cached: refreshed after each wait, and
 * before it when timers are pending. Timers are measured against it.
 */
HP_API uint64_t hp_loop_now(const struct hp_loop *loop);

/** Refresh the cached time now (for long-running callbacks). */
HP_API void hp_loop_update_time(struct hp_loop *loop);

/** Name of the driver compiled in: "epoll", "kqueue" or "poll". */
HP_API const char *hp_loop_backend(const struct hp_loop *loop);

/** Number of IO watchers, timers and other handles keeping the loop alive. */
HP_API size_t hp_loop_active_handles(const struct hp_loop *loop);

/* ---- deferred callbacks (same thread) ---------------------------------- */

struct hp_defer;

/** Called once per hp_defer_start(). May start, stop or free @p d. */
typedef void hp_defer_cb(struct hp_defer *d);

/**
 * A deferred callback: caller-allocated, runs on the loop's next iteration
 * (the seed's add_callback). While one is pending the loop does not block.
 * Callbacks deferred from inside a deferred callback run on the iteration
 * after, so deferral cannot starve IO.
 */
struct hp_defer {
    void *data;           /**< User pointer, free for the caller. */
    struct hp_loop *loop; /**< Read-only. */
    hp_defer_cb *_cb;
    struct hp_defer *_next;
    bool _pending;
};

/** Prepare @p d for use on @p loop. Never fails; no resources are held. */
HP_API void hp_defer_init(struct hp_loop *loop, struct hp_defer *d, hp_defer_cb *cb);

/**
 * Queue @p d to run once on the next iteration. Starting a pending defer
 * does nothing (it still runs once). Never fails: no allocation.
 */
HP_API void hp_defer_start(struct hp_defer *d);

/**
 * Cancel a pending defer; its callback will not run. Afterwards the memory
 * may be freed at once. Stopping an idle defer does nothing.
 */
HP_API void hp_defer_stop(struct hp_defer *d);

/** True while @p d is queued. */
HP_API bool hp_defer_is_pending(const struct hp_defer *d);

/* ---- cross-thread posts ------------------------------------------------ */

/**
 * Runs on the loop's thread for every successful hp_loop_post().
 * @param status 0, or -ECANCELED when the loop is freed before it ran.
 */
typedef void hp_post_cb(struct hp_loop *loop, int status, void *arg);

/**
 * Run @p cb(loop, 0, arg) on the loop's thread soon, waking the loop if it
 * is blocked (eventfd on Linux, a pipe elsewhere). Safe from any thread,
 * including the loop's own; posts run in the order they were made.
 * Queued posts keep the loop alive.
 * @return 0, or -ENOMEM; on error @p cb never runs.
 */
HP_API int hp_loop_post(struct hp_loop *loop, hp_post_cb *cb, void *arg);

#endif
