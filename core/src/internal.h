/*
 * internal.h - the loop's private layout and the helpers the core's modules
 * share. Never installed; the HTTP module cannot see it.
 */
#ifndef HP_INTERNAL_H
#define HP_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/hellepoll.h>

#include "backend.h"

/* Bits of hp_io._flags. */
enum {
    HP__IO_ACTIVE = 1u << 0,    /* started */
    HP__IO_INTERNAL = 1u << 1,  /* loop's own watcher: does not keep the loop alive */
    HP__IO_LATCH_R = 1u << 2,   /* edge: READABLE delivered, EAGAIN not seen since */
    HP__IO_LATCH_W = 1u << 3,   /* edge: WRITABLE delivered, EAGAIN not seen since */
    HP__IO_EOF = 1u << 4,       /* a read returned end of file */
    HP__IO_HUP = 1u << 5,       /* edge: HP_HUP delivered */
    HP__IO_IN_DRIVER = 1u << 6, /* registered with the driver */
    HP__IO_CONTINUE = 1u << 7,  /* owner will resume reading itself (no sate warning) */
    HP__IO_NOTSOCK = 1u << 8,   /* writes use writev(2): the fd is not a socket */
};

#if defined(__GNUC__) || defined(__clang__)
#define HP_NOINLINE __attribute__((noinline))
#else
#define HP_NOINLINE
#endif

#ifdef MSG_NOSIGNAL
#define HP__MSG_NOSIGNAL MSG_NOSIGNAL
#else
#define HP__MSG_NOSIGNAL 0 /* sockets get SO_NOSIGPIPE instead */
#endif

/* Stream input buffers: the first allocation's size, and how many the loop keeps. */
#define HP__BUF_SIZE 8192
#define HP__BUF_POOL 32

struct hp__post_node {
    struct hp__post_node *next;
    hp_post_cb *cb;
    void *arg;
};

struct hp_loop {
    const struct hp_backend_ops *ops;
    void *backend;
    struct hp_allocator alloc;
    hp_log_cb *log;
    void *log_ctx;
    enum hp_log_level log_level;
    uint64_t now;
    bool stop;

    /* IO: fd -> watcher table, and the ready batch being dispatched. */
    struct hp_io **fds;
    size_t fds_cap;
    size_t io_active; /* started watchers that keep the loop alive */
    struct hp_ready *ready;
    unsigned max_events;
    int ready_n;   /* entries in the batch being dispatched, 0 outside dispatch */
    int ready_pos; /* index being dispatched */

    /* Timers: binary min-heap of pointers, ordered by (_key, _kseq). */
    struct hp_timer **heap;
    uint32_t heap_len, heap_cap;
    uint64_t timer_seq;
    uint64_t timer_pass; /* timers started at or after this seq wait for the next iteration */

    /* Deferred callbacks: FIFO; the run phase takes a snapshot. */
    struct hp_defer *defer_head, *defer_tail;
    struct hp_defer *defer_run; /* the batch being run, detached from the queue */
    size_t defer_n;             /* pending in both */

    /* Cross-thread posts and the wakeup descriptor(s). */
    pthread_mutex_t post_lock;
    struct hp__post_node *post_head, *post_tail;
    atomic_size_t post_n;
    atomic_bool wake_armed;
    int wake_rfd, wake_wfd; /* the same eventfd on Linux, a pipe elsewhere */
    struct hp_io wake_io;

    /* Signals: self-pipe and the watchers on this loop. */
    int sig_rfd, sig_wfd;
    int sig_slot;
    struct hp_io sig_io;
    struct hp_signal *signals;
    struct hp_signal *sig_next; /* next watcher to call while dispatching */
    bool sig_dispatching;       /* inside the pipe's callback: keep the pipe */
    size_t signal_n;

    /* Handles whose close callback has not run yet (streams). */
    size_t closing_n;

    /* Streams with work pending (tcp.c), run from one deferred callback. */
    struct hp_stream *streams_head, *streams_tail;
    size_t streams_n;
    struct hp_defer streams_defer;

    /* The listener inside its accept loop; cleared if a callback stops or pauses it. */
    struct hp_listener *accepting;
    /* The descriptor being handed to an accept callback: non-blocking already. */
    int accepted_fd;

    /* Thread pool (pool.c): created by the first submission. */
    struct hp__pool *pool;
    size_t work_n; /* submitted, done callback not run yet (loop thread only) */
    unsigned pool_threads, pool_max_queue;
    bool pool_stopping;

    /* Stream input buffers of HP__BUF_SIZE, kept for reuse (tcp.c). */
    char *buf_pool[HP__BUF_POOL];
    unsigned buf_pool_n;
};

/* Allocation through the loop's allocator (alloc.c). */
void *hp__alloc(struct hp_loop *loop, size_t size);
void *hp__realloc_array(struct hp_loop *loop, void *ptr, size_t n, size_t size);
void hp__free(struct hp_loop *loop, void *ptr);
void hp__default_allocator(struct hp_allocator *a);

/* Logging (log.c). HP_LOG takes printf arguments only through "...". */
void hp__log(struct hp_loop *loop, enum hp_log_level level, const char *file, int line,
             const char *fmt, ...) HP_PRINTF(5, 6);
#define HP_LOG(loop, level, ...) hp__log((loop), (level), __FILE__, __LINE__, __VA_ARGS__)

/* Timers (timer.c): run due timers; milliseconds to the next one, or -1. */
int hp__timers_run(struct hp_loop *loop);
int hp__timers_timeout(const struct hp_loop *loop);
void hp__timers_free(struct hp_loop *loop);

/* Deferred callbacks (defer.c). */
int hp__defers_run(struct hp_loop *loop);

/* IO (io.c): dispatch a ready batch; mark a watcher internal. */
int hp__io_dispatch(struct hp_loop *loop, int n);
void hp__io_set_internal(struct hp_io *io);
void hp__io_will_continue(struct hp_io *io);
/* hp_io_stop() for a descriptor the caller closes next and owns alone: no driver
 * syscall where close(2) itself drops it (HP_CAP_CLOSE_FORGETS). */
void hp__io_stop_closing(struct hp_io *io);
void hp__io_free_table(struct hp_loop *loop);

/* Posts (post.c). */
int hp__post_init(struct hp_loop *loop);
void hp__post_free(struct hp_loop *loop);
/* Signal the wakeup descriptor from any thread (the pool's completions). */
void hp__loop_wake(struct hp_loop *loop);

/* Thread pool (pool.c): run the finished items' callbacks (from the wakeup
 * watcher); shut down, running every callback still owed (hp_loop_free). */
struct hp__pool;
int hp__pool_complete(struct hp_loop *loop);
void hp__pool_free(struct hp_loop *loop);

/* Streams (tcp.c): the input buffer pool and the stream work phase. */
void hp__buf_pool_free(struct hp_loop *loop);
void hp__streams_init(struct hp_loop *loop);

/* Signals (signal.c). */
void hp__signal_free(struct hp_loop *loop);

/* Descriptor helpers (io.c): set O_NONBLOCK and FD_CLOEXEC; 0 or -errno. */
int hp__fd_nonblock_cloexec(int fd);
int hp__pipe(int fds[2]);

#endif
