/**
 * @file io.h
 * IO watchers: readiness callbacks for a file descriptor.
 *
 * A watcher is caller-allocated and embeddable. hp_io_start() registers it
 * with the loop; hp_io_stop() unregisters it at once, after which the memory
 * may be freed or reused, even from inside any callback (its own or another
 * watcher's, with events still pending in the same batch: those are dropped).
 * One watcher per descriptor.
 *
 * Triggering. A level-triggered watcher (the default) is called on every
 * iteration while the descriptor is ready. An edge-triggered watcher
 * (HP_EDGE) is called once when the descriptor becomes ready and then not
 * again for that direction until its IO has hit EAGAIN: read or write until
 * EAGAIN, through hp_io_read()/hp_io_write() and friends, or with your own
 * syscalls followed by hp_io_drained(). On epoll and kqueue this is the
 * kernel's edge trigger; the poll driver emulates it in the core by leaving
 * the direction out of the poll set from delivery until EAGAIN is seen, so
 * the contract is the same on every driver. In debug builds (NDEBUG unset) an
 * edge callback that returns with the watcher still interested but without
 * having seen EAGAIN (or EOF) is reported through the loop's log as
 * "sate the stream": that watcher would otherwise never wake again.
 *
 * Errors. HP_HUP (the peer hung up) and HP_ERROR (with the pending socket
 * error as the callback's status) reach the callback even with no interest.
 */
#ifndef HP_IO_H
#define HP_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>

struct hp_loop;
struct hp_io;

/** Event bits passed to hp_io_start() and to callbacks. */
enum hp_io_event {
    HP_READABLE = 1u << 0, /**< Interest/readiness: data (or EOF) to read. */
    HP_WRITABLE = 1u << 1, /**< Interest/readiness: room to write. */
    HP_HUP = 1u << 2,      /**< Delivered only: the peer hung up (edge watchers on epoll
                                and kqueue: or shut down its sending side). */
    HP_ERROR = 1u << 3,    /**< Delivered only: an error; see the status. */
    HP_EDGE = 1u << 4,     /**< Interest flag: edge-triggered watcher. */
};

/**
 * Called when the watched descriptor is ready.
 * @param events the ready subset of HP_READABLE|HP_WRITABLE, plus HP_HUP
 *               and HP_ERROR when they occur.
 * @param status 0, or with HP_ERROR the pending error as a negative errno
 *               (from SO_ERROR; -EIO if none can be read).
 * The callback may stop, restart or free any watcher, including @p io.
 */
typedef void hp_io_cb(struct hp_io *io, unsigned events, int status);

/** An IO watcher. Fields without a leading underscore are documented. */
struct hp_io {
    void *data;           /**< User pointer, free for the caller. */
    struct hp_loop *loop; /**< Read-only: the owning loop. */
    int fd;               /**< Read-only: the watched descriptor. */
    unsigned _events;     /**< Requested interest and HP_EDGE. */
    unsigned _armed;      /**< Interest the driver currently has. */
    unsigned _flags;      /**< Internal state bits. */
    hp_io_cb *_cb;
};

/**
 * Prepare @p io to watch @p fd on @p loop. Registers nothing; holds no
 * resources, so an initialised but never started watcher needs no cleanup.
 * The descriptor stays the caller's: hellepoll never closes it.
 */
HP_API void hp_io_init(struct hp_loop *loop, struct hp_io *io, int fd, hp_io_cb *cb);

/**
 * Start watching, or change the interest of an active watcher.
 * @param events HP_READABLE and/or HP_WRITABLE, optionally | HP_EDGE; 0
 *               watches for HP_HUP/HP_ERROR only.
 * @return 0; -EINVAL (bad bits, negative fd); -EEXIST (another watcher
 *         already has this fd); -ENOMEM; or the driver's -errno (-EBADF,
 *         -EPERM for a regular file on epoll, ...). On error the watcher's
 *         previous state is kept.
 */
HP_API int hp_io_start(struct hp_io *io, unsigned events);

/**
 * Stop watching. Events still undelivered in the current batch are dropped.
 * The memory may be freed once this returns. Stopping a stopped watcher does
 * nothing. Stop before closing the descriptor.
 */
HP_API void hp_io_stop(struct hp_io *io);

/** True if @p io is started. */
HP_API bool hp_io_is_active(const struct hp_io *io);

/** The interest last given to hp_io_start() (0 when stopped). */
HP_API unsigned hp_io_events(const struct hp_io *io);

/**
 * Tell the loop that IO in the directions @p events (HP_READABLE and/or
 * HP_WRITABLE) hit EAGAIN, so an edge-triggered watcher may wake again.
 * The hp_io_read()/hp_io_write() family do this themselves.
 */
HP_API void hp_io_drained(struct hp_io *io, unsigned events);

/**
 * read(2) on the watcher's fd, retrying EINTR.
 * @return bytes read (> 0; 0 only when @p len is 0, without a syscall),
 *         HP_EOF at end of file, -EAGAIN when drained (recorded as for
 *         hp_io_drained()), or another negative errno.
 */
HP_API ssize_t hp_io_read(struct hp_io *io, void *buf, size_t len);

/** readv(2) counterpart of hp_io_read(); same returns (0 when the buffers hold 0 bytes). */
HP_API ssize_t hp_io_readv(struct hp_io *io, const struct hp_buf *bufs, size_t nbufs);

/**
 * write(2) on the watcher's fd, retrying EINTR; sockets get MSG_NOSIGNAL
 * where the platform has it, so a closed peer gives -EPIPE, not SIGPIPE.
 * @return bytes written (>= 0), -EAGAIN when the kernel buffer is full
 *         (recorded as for hp_io_drained()), or another negative errno.
 */
HP_API ssize_t hp_io_write(struct hp_io *io, const void *buf, size_t len);

/** writev(2) counterpart of hp_io_write(); same returns. */
HP_API ssize_t hp_io_writev(struct hp_io *io, const struct hp_buf *bufs, size_t nbufs);

#endif
