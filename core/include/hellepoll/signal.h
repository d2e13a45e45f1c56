/**
 * @file signal.h
 * Signal watchers: POSIX signals delivered as loop events, on the loop's
 * thread, so SIGINT or SIGTERM can start a graceful stop.
 *
 * A process-wide handler (installed while any watcher for that signal is
 * active, the previous disposition restored after the last stops) writes the
 * signal number to a self-pipe of each loop watching it. Several signals of
 * one kind arriving before the loop runs may be coalesced into one callback.
 * Watching SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE or SIGILL is refused.
 */
#ifndef HP_SIGNAL_H
#define HP_SIGNAL_H

#include <stdbool.h>

#include <hellepoll/defs.h>

struct hp_loop;
struct hp_signal;

/** Called on the loop's thread after @p signum was received. */
typedef void hp_signal_cb(struct hp_signal *s, int signum);

/** A signal watcher. */
struct hp_signal {
    void *data;           /**< User pointer, free for the caller. */
    struct hp_loop *loop; /**< Read-only. */
    int signum;           /**< Read-only: the signal, or 0 when stopped. */
    hp_signal_cb *_cb;
    struct hp_signal *_next;
};

/** Prepare @p s for @p loop. Holds no resources. */
HP_API void hp_signal_init(struct hp_loop *loop, struct hp_signal *s, hp_signal_cb *cb);

/**
 * Watch @p signum. A started watcher keeps the loop alive.
 * @return 0, -EINVAL (bad or refused signal, or already started), -EBUSY
 *         (too many loops in this process watch signals: 64 at most),
 *         -ENOMEM, or a -errno from pipe()/sigaction().
 */
HP_API int hp_signal_start(struct hp_signal *s, int signum);

/** Stop watching; the memory may be freed afterwards. Idempotent. */
HP_API void hp_signal_stop(struct hp_signal *s);

#endif
