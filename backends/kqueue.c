/*
 * kqueue.c - the BSD and macOS driver, on kqueue(2). Level- and
 * edge-triggered (EV_CLEAR) natively.
 *
 * Every registered descriptor has an EVFILT_READ knote, and an EVFILT_WRITE
 * knote while HP_WRITABLE is wanted. Unlike epoll and poll, kqueue reports
 * nothing for a descriptor without a filter, so without HP_READABLE the read
 * knote stays as a hang-up watch: EV_CLEAR (no wakeups while unread data
 * waits), with only its EV_EOF passed on. Hang-up and errors thus reach every
 * watcher, whatever its interest.
 *
 * EV_EOF says one direction is shut. For level watchers, as with the epoll
 * and poll drivers, HP_HUP means a hang-up, not a peer's half-close (that
 * shows as a read of EOF); edge watchers also get HP_HUP for the half-close,
 * as EPOLLRDHUP gives them on epoll. On EV_EOF the driver asks poll(2) whether the descriptor hung
 * up (POLLHUP, which also sets HP_READABLE: a read returns EOF) or has an error (POLLERR), so
 * HP_HUP is exactly what poll(2) on the same system reports. A socket error in fflags sets
 * HP_ERROR; so does a read filter firing with nothing to read and no EV_EOF, which is how kqueue
 * shows a socket error that did not shut the socket (a UDP port unreachable, say): readable
 * descriptors otherwise carry a byte or connection count of at least 1. The
 * core then reads SO_ERROR, which kqueue leaves in place.
 *
 * Changes are applied at once, one kevent() per change, so an error is
 * returned by the call that caused it, and a partly applied change is undone.
 * EV_CLEAR cannot be changed by re-adding a knote, so switching trigger mode
 * deletes and re-adds. Possible optimisations, not needed for the contract:
 * batching changes into the next wait (errors would then surface late) or
 * with EV_RECEIPT, and EVFILT_USER/EVFILT_SIGNAL in place of the core's
 * wakeup and signal pipes.
 *
 * wait() merges the read and write entries of a descriptor into one
 * hp_ready, through an fd-indexed table stamped per wait, so a callback runs
 * once per descriptor per batch and SO_ERROR is read once. The table also
 * holds each descriptor's interest; it grows only in add(), and wait() never
 * allocates.
 *
 * Portability: only what FreeBSD, OpenBSD, NetBSD and macOS share (EV_SET,
 * EVFILT_READ/WRITE, EV_ADD/DELETE/CLEAR, EV_EOF/EV_ERROR, kqueue() then
 * FD_CLOEXEC, as kqueue1() is not on macOS); no #ifdef. udata is not used,
 * since its type differs (intptr_t on NetBSD before 10).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
/* OpenBSD's <sys/event.h> (and FreeBSD's before 12) needs <sys/types.h> first. */
/* clang-format off */
#include <sys/types.h>
#include <sys/event.h>
/* clang-format on */

#include "backend.h"

/* How one of a descriptor's two knotes is registered. */
enum mode { NONE, LEVEL, CLEAR };

struct kq_fd {
    unsigned events; /* interest, as given to add()/modify() */
    uint32_t stamp;  /* the wait() that put this descriptor in out[] ... */
    int slot;        /* ... at this index */
};

struct kq_state {
    int kq;
    int cap;
    uint32_t stamp;
    struct hp_allocator alloc;
    struct kq_fd *fds; /* indexed by descriptor */
    size_t nfds;
    struct kevent events[]; /* cap entries */
};

static enum mode read_mode(unsigned events)
{
    if (!(events & HP_READABLE))
        return CLEAR; /* the hang-up watch */
    return (events & HP_EDGE) ? CLEAR : LEVEL;
}

static enum mode write_mode(unsigned events)
{
    if (!(events & HP_WRITABLE))
        return NONE;
    return (events & HP_EDGE) ? CLEAR : LEVEL;
}

/* Register (or, with NONE, delete) one knote now; 0 or -errno. */
static int change(int kq, int fd, bool write, enum mode mode)
{
    unsigned short flags = mode == NONE ? EV_DELETE : mode == CLEAR ? EV_ADD | EV_CLEAR : EV_ADD;
    struct kevent kev;

    EV_SET(&kev, (uintptr_t)fd, write ? EVFILT_WRITE : EVFILT_READ, flags, 0, 0, 0);
    return kevent(kq, &kev, 1, NULL, 0, NULL) == 0 ? 0 : -errno;
}

/* Take one knote from @p from to @p to. */
static int set_mode(int kq, int fd, bool write, enum mode from, enum mode to)
{
    int err;

    if (from == to)
        return 0;
    if (from != NONE && to != NONE && (err = change(kq, fd, write, NONE)) != 0)
        return err;
    return change(kq, fd, write, to);
}

/* After a failure: put a knote back as it was, as far as the kernel lets us. */
static void restore(int kq, int fd, bool write, enum mode was)
{
    (void)change(kq, fd, write, NONE);
    if (was != NONE)
        (void)change(kq, fd, write, was);
}

/*
 * Move @p fd's knotes from modes (r0, w0) to what @p events needs. A read
 * knote that gains HP_READABLE but keeps its mode (hang-up watch to edge) is
 * re-added anyway: that evaluates the filter again, so data that is already
 * waiting is reported.
 */
static int apply(struct kq_state *st, int fd, enum mode r0, enum mode w0, bool refresh,
                 unsigned events)
{
    enum mode r1 = read_mode(events), w1 = write_mode(events);
    int err;

    err = refresh && r0 == r1 ? change(st->kq, fd, false, r1) : set_mode(st->kq, fd, false, r0, r1);
    if (err) {
        if (r0 != r1)
            restore(st->kq, fd, false, r0);
        return err;
    }
    err = set_mode(st->kq, fd, true, w0, w1);
    if (err) {
        restore(st->kq, fd, true, w0);
        if (r0 != r1)
            restore(st->kq, fd, false, r0);
    }
    return err;
}

static int reserve(struct kq_state *st, int fd)
{
    size_t cap = st->nfds ? st->nfds : 64;
    struct kq_fd *t;

    if ((size_t)fd < st->nfds)
        return 0;
    while (cap <= (size_t)fd)
        cap *= 2;
    if (cap > SIZE_MAX / sizeof(*t))
        return -ENOMEM;
    t = st->alloc.realloc(st->alloc.ctx, st->fds, cap * sizeof(*t));
    if (!t)
        return -ENOMEM;
    memset(t + st->nfds, 0, (cap - st->nfds) * sizeof(*t));
    st->fds = t;
    st->nfds = cap;
    return 0;
}

static int kq_init(void **state, const struct hp_backend_cfg *cfg)
{
    size_t n = cfg->max_events ? cfg->max_events : 1;
    struct kq_state *st;
    int fl, err;

    if (n > INT_MAX || n > (SIZE_MAX - sizeof(*st)) / sizeof(struct kevent))
        return -EINVAL;
    st = cfg->alloc.realloc(cfg->alloc.ctx, NULL, sizeof(*st) + n * sizeof(struct kevent));
    if (!st)
        return -ENOMEM;
    memset(st, 0, sizeof(*st));
    st->alloc = cfg->alloc;
    st->cap = (int)n;
    st->kq = kqueue();
    if (st->kq < 0) {
        err = -errno;
        goto err_free_state;
    }
    fl = fcntl(st->kq, F_GETFD);
    if (fl < 0 || fcntl(st->kq, F_SETFD, fl | FD_CLOEXEC) < 0) {
        err = -errno;
        goto err_close_kq;
    }
    *state = st;
    return 0;

err_close_kq:
    close(st->kq);
err_free_state:
    cfg->alloc.free(cfg->alloc.ctx, st);
    return err;
}

static void kq_destroy(void *state)
{
    struct kq_state *st = state;

    close(st->kq);
    st->alloc.free(st->alloc.ctx, st->fds);
    st->alloc.free(st->alloc.ctx, st);
}

static int kq_add(void *state, int fd, unsigned events)
{
    struct kq_state *st = state;
    int err;

    if (fd < 0)
        return -EBADF;
    if ((err = reserve(st, fd)) != 0)
        return err;
    if ((err = apply(st, fd, NONE, NONE, false, events)) != 0)
        return err;
    st->fds[fd].events = events;
    return 0;
}

static int kq_modify(void *state, int fd, unsigned old_events, unsigned events)
{
    struct kq_state *st = state;
    bool gains_read = (events & HP_READABLE) && !(old_events & HP_READABLE);
    int err;

    if (fd < 0)
        return -EBADF;
    if ((err = reserve(st, fd)) != 0)
        return err;
    err = apply(st, fd, read_mode(old_events), write_mode(old_events), gains_read, events);
    if (err)
        return err;
    st->fds[fd].events = events;
    return 0;
}

static int kq_remove(void *state, int fd, unsigned old_events)
{
    struct kq_state *st = state;
    struct kevent ch[2];
    int n = 0;

    if (fd < 0)
        return -EBADF;
    if ((size_t)fd < st->nfds)
        st->fds[fd].events = 0;
    /* One call: if the descriptor was closed, the first delete fails and so would the rest. */
    EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_READ, EV_DELETE, 0, 0, 0);
    if (old_events & HP_WRITABLE)
        EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_WRITE, EV_DELETE, 0, 0, 0);
    return kevent(st->kq, ch, n, NULL, 0, NULL) == 0 ? 0 : -errno;
}

/* EV_EOF: report what poll(2) says about the descriptor as a whole. */
static unsigned hangup(int fd, bool socket_error)
{
    /* POLLHUP in events is ignored by most systems but needed on macOS. */
    struct pollfd p = {.fd = fd, .events = POLLHUP};
    unsigned ev = socket_error ? HP_ERROR : 0;

    if (poll(&p, 1, 0) > 0) {
        if (p.revents & POLLHUP)
            ev |= HP_HUP | HP_READABLE; /* a read will return EOF */
        if (p.revents & POLLERR)
            ev |= HP_ERROR;
    }
    return ev;
}

static unsigned translate(const struct kq_state *st, const struct kevent *kev)
{
    int fd = (int)kev->ident;
    unsigned want = (size_t)fd < st->nfds ? st->fds[fd].events : 0;
    unsigned ev;

    if (kev->flags & EV_ERROR)
        return HP_ERROR;
    if (kev->filter == EVFILT_WRITE)
        ev = HP_WRITABLE;
    else
        ev = (want & HP_READABLE) ? HP_READABLE : 0; /* else the hang-up watch */
    if (kev->flags & EV_EOF) {
        ev |= hangup(fd, kev->fflags != 0);
        /* Edge watchers hear of the peer's FIN at once, as EPOLLRDHUP gives on epoll: a
         * reader that stops at a short read would otherwise never see the EOF. */
        if (kev->filter == EVFILT_READ && (want & HP_EDGE))
            ev |= HP_HUP;
    } else if (kev->filter == EVFILT_READ && kev->data == 0)
        ev |= HP_ERROR; /* nothing to read, no EOF: a pending socket error */
    return ev;
}

/* Add @p ev for @p fd to out[0..count), merging with its earlier entry; the new count. */
static int merge(struct kq_state *st, struct hp_ready *out, int count, int fd, unsigned ev)
{
    struct kq_fd *f = (size_t)fd < st->nfds ? &st->fds[fd] : NULL;

    if (f && f->stamp == st->stamp) {
        out[f->slot].events |= ev;
        return count;
    }
    out[count] = (struct hp_ready){.fd = fd, .events = ev};
    if (f) {
        f->stamp = st->stamp;
        f->slot = count;
    }
    return count + 1;
}

static void next_stamp(struct kq_state *st)
{
    if (++st->stamp != 0)
        return;
    for (size_t i = 0; i < st->nfds; i++)
        st->fds[i].stamp = 0;
    st->stamp = 1;
}

static int kq_wait(void *state, struct hp_ready *out, int cap, int timeout_ms)
{
    struct kq_state *st = state;
    struct timespec ts, *tsp = NULL;
    int n, count = 0;

    if (cap > st->cap)
        cap = st->cap;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    n = kevent(st->kq, NULL, 0, st->events, cap, tsp);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    next_stamp(st);
    for (int i = 0; i < n; i++) {
        unsigned ev = translate(st, &st->events[i]);

        if (ev)
            count = merge(st, out, count, (int)st->events[i].ident, ev);
    }
    return count;
}

const struct hp_backend_ops hp__backend_kqueue = {
    .name = "kqueue",
    .caps = HP_CAP_EDGE,
    .init = kq_init,
    .destroy = kq_destroy,
    .add = kq_add,
    .modify = kq_modify,
    .remove = kq_remove,
    .wait = kq_wait,
};
