/*
 * io.c - IO watchers and the dispatch of a ready batch.
 *
 * Invariants: loop->fds[fd] == io iff io is active on fd. A watcher is in
 * the driver iff HP__IO_IN_DRIVER is set, and then io->_armed is the interest
 * the driver has. Stopping a watcher during dispatch erases the batch's
 * undelivered entries for its fd, so a descriptor number reused within the
 * batch never receives another watcher's stale events.
 *
 * Edge triggering on a driver without HP_CAP_EDGE is emulated here (see
 * backend.h): a delivered direction is latched out of the driver's interest
 * until the watcher's IO reports EAGAIN.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

_Static_assert(sizeof(struct hp_buf) == sizeof(struct iovec), "hp_buf must match struct iovec");
_Static_assert(offsetof(struct hp_buf, base) == offsetof(struct iovec, iov_base),
               "hp_buf.base must match iov_base");
_Static_assert(offsetof(struct hp_buf, len) == offsetof(struct iovec, iov_len),
               "hp_buf.len must match iov_len");

#define IO_DIRS (HP_READABLE | HP_WRITABLE)

static bool native_edge(const struct hp_loop *loop)
{
    return (loop->ops->caps & HP_CAP_EDGE) != 0;
}

static bool emulated_edge(const struct hp_io *io)
{
    return (io->_events & HP_EDGE) && !native_edge(io->loop);
}

/* The interest the driver should have for @p io right now. */
static unsigned wanted_interest(const struct hp_io *io)
{
    unsigned want = io->_events & IO_DIRS;

    if (!(io->_events & HP_EDGE))
        return want;
    if (native_edge(io->loop))
        return want | HP_EDGE;
    if (io->_flags & HP__IO_LATCH_R)
        want &= ~(unsigned)HP_READABLE;
    if (io->_flags & HP__IO_LATCH_W)
        want &= ~(unsigned)HP_WRITABLE;
    return want;
}

/* poll(2) reports POLLHUP whatever the interest: a fully latched watcher leaves the driver. */
static bool wants_driver(const struct hp_io *io, unsigned want)
{
    return !(emulated_edge(io) && want == 0 && (io->_flags & HP__IO_HUP));
}

/* Bring the driver in line with wanted_interest(); 0 or the driver's -errno. */
static int sync_driver(struct hp_io *io)
{
    struct hp_loop *loop = io->loop;
    unsigned want = wanted_interest(io);
    int err = 0;

    if (!wants_driver(io, want)) {
        if (io->_flags & HP__IO_IN_DRIVER)
            loop->ops->remove(loop->backend, io->fd, io->_armed);
        io->_flags &= ~(unsigned)HP__IO_IN_DRIVER;
        return 0;
    }
    if (!(io->_flags & HP__IO_IN_DRIVER))
        err = loop->ops->add(loop->backend, io->fd, want);
    else if (want != io->_armed)
        err = loop->ops->modify(loop->backend, io->fd, io->_armed, want);
    else
        return 0;
    if (err)
        return err;
    io->_armed = want;
    io->_flags |= HP__IO_IN_DRIVER;
    return 0;
}

static int grow_table(struct hp_loop *loop, int fd)
{
    size_t cap = loop->fds_cap ? loop->fds_cap : 64;
    struct hp_io **t;

    while (cap <= (size_t)fd)
        cap *= 2;
    t = hp__realloc_array(loop, loop->fds, cap, sizeof(*t));
    if (!t)
        return -ENOMEM;
    for (size_t i = loop->fds_cap; i < cap; i++)
        t[i] = NULL;
    loop->fds = t;
    loop->fds_cap = cap;
    return 0;
}

void hp__io_free_table(struct hp_loop *loop)
{
    hp__free(loop, loop->fds);
    loop->fds = NULL;
    loop->fds_cap = 0;
}

void hp_io_init(struct hp_loop *loop, struct hp_io *io, int fd, hp_io_cb *cb)
{
    io->data = NULL;
    io->loop = loop;
    io->fd = fd;
    io->_events = 0;
    io->_armed = 0;
    io->_flags = 0;
    io->_cb = cb;
}

static int first_start(struct hp_io *io, unsigned events)
{
    struct hp_loop *loop = io->loop;
    int err;

    if ((size_t)io->fd >= loop->fds_cap && (err = grow_table(loop, io->fd)) != 0)
        return err;
    if (loop->fds[io->fd])
        return -EEXIST;
    io->_events = events;
    io->_flags &= HP__IO_INTERNAL | HP__IO_NOTSOCK;
    err = sync_driver(io);
    if (err) {
        io->_events = 0;
        return err;
    }
    io->_flags |= HP__IO_ACTIVE;
    loop->fds[io->fd] = io;
    if (!(io->_flags & HP__IO_INTERNAL))
        loop->io_active++;
    return 0;
}

int hp_io_start(struct hp_io *io, unsigned events)
{
    unsigned old_events = io->_events, old_flags = io->_flags;
    int err;

    if (io->fd < 0 || (events & ~(unsigned)(IO_DIRS | HP_EDGE)))
        return -EINVAL;
    if (!(io->_flags & HP__IO_ACTIVE))
        return first_start(io, events);
    /* Switching trigger mode starts the latches afresh. */
    if ((events ^ io->_events) & HP_EDGE)
        io->_flags &= ~(unsigned)(HP__IO_LATCH_R | HP__IO_LATCH_W | HP__IO_HUP);
    io->_events = events;
    err = sync_driver(io);
    if (err) {
        io->_events = old_events;
        io->_flags = old_flags;
    }
    return err;
}

/* Drop undelivered entries of the batch for @p fd. */
static void invalidate_pending(struct hp_loop *loop, int fd)
{
    for (int i = loop->ready_pos + 1; i < loop->ready_n; i++) {
        if (loop->ready[i].fd == fd)
            loop->ready[i].fd = -1;
    }
}

static void stop(struct hp_io *io, bool closing)
{
    struct hp_loop *loop = io->loop;

    if (!(io->_flags & HP__IO_ACTIVE))
        return;
    if ((io->_flags & HP__IO_IN_DRIVER) && !(closing && (loop->ops->caps & HP_CAP_CLOSE_FORGETS)))
        loop->ops->remove(loop->backend, io->fd, io->_armed);
    loop->fds[io->fd] = NULL;
    invalidate_pending(loop, io->fd);
    if (!(io->_flags & HP__IO_INTERNAL))
        loop->io_active--;
    io->_flags &= HP__IO_INTERNAL | HP__IO_NOTSOCK;
    io->_events = 0;
    io->_armed = 0;
}

void hp_io_stop(struct hp_io *io)
{
    stop(io, false);
}

void hp__io_stop_closing(struct hp_io *io)
{
    stop(io, true);
}

bool hp_io_is_active(const struct hp_io *io)
{
    return (io->_flags & HP__IO_ACTIVE) != 0;
}

unsigned hp_io_events(const struct hp_io *io)
{
    return (io->_flags & HP__IO_ACTIVE) ? io->_events : 0;
}

void hp__io_set_internal(struct hp_io *io)
{
    io->_flags |= HP__IO_INTERNAL;
}

void hp__io_will_continue(struct hp_io *io)
{
    io->_flags |= HP__IO_CONTINUE;
}

void hp_io_drained(struct hp_io *io, unsigned events)
{
    unsigned latched = io->_flags & (HP__IO_LATCH_R | HP__IO_LATCH_W);

    if (events & HP_READABLE)
        io->_flags &= ~(unsigned)HP__IO_LATCH_R;
    if (events & HP_WRITABLE)
        io->_flags &= ~(unsigned)HP__IO_LATCH_W;
    /* Re-arm an emulated edge; a failure here surfaces as HP_ERROR on the next wait. */
    if (latched != (io->_flags & (HP__IO_LATCH_R | HP__IO_LATCH_W)) && emulated_edge(io) &&
        (io->_flags & HP__IO_ACTIVE))
        (void)sync_driver(io);
}

/* Record the outcome of a read-side syscall: EAGAIN re-arms, EOF sates. */
static ssize_t after_read(struct hp_io *io, ssize_t n, int err)
{
    if (n > 0)
        return n;
    if (n == 0) {
        /* Nothing more will come: the watcher is sated, but stays latched. */
        io->_flags |= HP__IO_EOF;
        return HP_EOF;
    }
    if (err == EAGAIN) { /* == EWOULDBLOCK on every supported system */
        hp_io_drained(io, HP_READABLE);
        return -EAGAIN;
    }
    return -err;
}

static ssize_t after_write(struct hp_io *io, ssize_t n, int err)
{
    if (n >= 0)
        return n;
    if (err == EAGAIN) { /* == EWOULDBLOCK on every supported system */
        hp_io_drained(io, HP_WRITABLE);
        return -EAGAIN;
    }
    return -err;
}

ssize_t hp_io_read(struct hp_io *io, void *buf, size_t len)
{
    ssize_t n;

    if (len == 0)
        return 0; /* read(2) would return 0 too, which means end of file elsewhere */
    do
        n = read(io->fd, buf, len);
    while (n < 0 && errno == EINTR);
    return after_read(io, n, n < 0 ? errno : 0);
}

ssize_t hp_io_readv(struct hp_io *io, const struct hp_buf *bufs, size_t nbufs)
{
    ssize_t n;

    size_t total = 0;

    if (nbufs > INT32_MAX)
        return -EINVAL;
    for (size_t i = 0; i < nbufs; i++)
        total |= bufs[i].len;
    if (total == 0)
        return 0; /* nothing to read into: not an end of file */
    do
        n = readv(io->fd, (const struct iovec *)(const void *)bufs, (int)nbufs);
    while (n < 0 && errno == EINTR);
    return after_read(io, n, n < 0 ? errno : 0);
}

ssize_t hp_io_writev(struct hp_io *io, const struct hp_buf *bufs, size_t nbufs)
{
    struct msghdr msg = {0};
    ssize_t n;

    if (nbufs > INT32_MAX)
        return -EINVAL;
    msg.msg_iov = (struct iovec *)(void *)(uintptr_t)bufs;
    msg.msg_iovlen = (__typeof__(msg.msg_iovlen))nbufs;
    do {
        if (io->_flags & HP__IO_NOTSOCK) {
            n = writev(io->fd, msg.msg_iov, (int)nbufs);
            continue;
        }
        n = sendmsg(io->fd, &msg, HP__MSG_NOSIGNAL);
        /* Not a socket (a pipe): remember, and use plain writev from now on. */
        if (n < 0 && errno == ENOTSOCK) {
            io->_flags |= HP__IO_NOTSOCK;
            n = writev(io->fd, msg.msg_iov, (int)nbufs);
        }
    } while (n < 0 && errno == EINTR);
    return after_write(io, n, n < 0 ? errno : 0);
}

ssize_t hp_io_write(struct hp_io *io, const void *buf, size_t len)
{
    struct hp_buf b = hp_buf_make(buf, len);

    return hp_io_writev(io, &b, 1);
}

/* The error behind HP_ERROR, as a negative errno. */
static int pending_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return errno == ENOTSOCK ? -EPIPE : -EIO;
    return err ? -err : -EIO;
}

/* The directions delivered to an edge watcher whose IO has not hit EAGAIN since. */
static unsigned latched_dirs(const struct hp_io *io)
{
    return ((io->_flags & HP__IO_LATCH_R) ? HP_READABLE : 0u) |
           ((io->_flags & HP__IO_LATCH_W) ? HP_WRITABLE : 0u);
}

/* Latch what is delivered to an edge watcher (re-syncing an emulated one). */
static void latch(struct hp_io *io, unsigned ev)
{
    unsigned before = io->_flags;

    if (ev & HP_READABLE)
        io->_flags |= HP__IO_LATCH_R;
    if (ev & HP_WRITABLE)
        io->_flags |= HP__IO_LATCH_W;
    if (ev & (HP_HUP | HP_ERROR))
        io->_flags |= HP__IO_HUP;
    if (before != io->_flags && emulated_edge(io))
        (void)sync_driver(io);
}

#ifndef NDEBUG
/* Debug builds: an edge watcher that saw READABLE must read to EAGAIN or EOF. */
static void check_sated(struct hp_loop *loop, struct hp_io *io, int fd, unsigned ev)
{
    if (!(ev & HP_READABLE) || loop->fds[fd] != io || !(io->_events & HP_EDGE) ||
        !(io->_events & HP_READABLE))
        return;
    if ((io->_flags & (HP__IO_LATCH_R | HP__IO_EOF | HP__IO_CONTINUE)) == HP__IO_LATCH_R)
        HP_LOG(loop, HP_LOG_WARN,
               "sate the stream: edge-triggered watcher on fd %d returned without reading to "
               "EAGAIN",
               fd);
    io->_flags &= ~(unsigned)HP__IO_CONTINUE;
}
#else
static void check_sated(struct hp_loop *loop, struct hp_io *io, int fd, unsigned ev)
{
    (void)loop;
    (void)io;
    (void)fd;
    (void)ev;
}
#endif

static int dispatch_one(struct hp_loop *loop, const struct hp_ready *r)
{
    /* One unsigned compare also rejects the -1 of an invalidated entry. */
    struct hp_io *io = (size_t)r->fd < loop->fds_cap ? loop->fds[r->fd] : NULL;
    unsigned ev;
    int status = 0, fd = r->fd;

    if (!io)
        return 0;
    ev = r->events & ((io->_events & IO_DIRS) | HP_HUP | HP_ERROR);
    if (!ev)
        return 0;
    if (io->_events & HP_EDGE) {
        /* Not again before EAGAIN: epoll and kqueue wake on every arrival, poll on none. */
        ev &= ~latched_dirs(io);
        if (!ev)
            return 0;
        latch(io, ev);
    }
    if (ev & HP_ERROR)
        status = pending_error(fd);
    io->_cb(io, ev, status);
    check_sated(loop, io, fd, ev);
    return 1;
}

int hp__io_dispatch(struct hp_loop *loop, int n)
{
    const struct hp_ready *ready = loop->ready;
    int ran = 0;

    /* The index lives in a register; ready_pos is only published for hp_io_stop(). */
    loop->ready_n = n;
    for (int i = 0; i < n; i++) {
        loop->ready_pos = i;
        ran += dispatch_one(loop, &ready[i]);
    }
    loop->ready_n = 0;
    loop->ready_pos = 0;
    return ran;
}

int hp__fd_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

int hp__pipe(int fds[2])
{
    int err;

    if (pipe(fds) != 0)
        return -errno;
    if ((err = hp__fd_nonblock_cloexec(fds[0])) != 0 ||
        (err = hp__fd_nonblock_cloexec(fds[1])) != 0) {
        close(fds[0]);
        close(fds[1]);
        return err;
    }
    return 0;
}
