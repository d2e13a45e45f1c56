/*
 * kqueue_emu.c - a TEST-ONLY emulation of kqueue(2)/kevent(2) for Linux, on
 * epoll, so that the kqueue driver runs the whole test suite on this system.
 * Never installed and never linked into libhellepoll; README.md says what it
 * covers and where it differs from a real kqueue.
 *
 * The model follows the kernel's. A knote is one (descriptor, filter) pair.
 * epoll is only the wakeup source: each descriptor that has a knote is in the
 * kqueue's epoll set once, edge-triggered, for EPOLLIN|EPOLLOUT|EPOLLRDHUP,
 * and that registration is never modified (EPOLL_CTL_MOD re-reports current
 * readiness, which re-adding a kqueue filter does not). An epoll report
 * activates the descriptor's knotes: they join a FIFO of active knotes.
 * kevent() evaluates each active knote with poll(2) and returns it if its
 * condition holds; a level knote then stays active (and is evaluated again
 * by the next call), an EV_CLEAR knote leaves the queue until its next
 * activation. EV_ADD and EV_ENABLE activate, so a condition that already
 * holds is reported.
 *
 * Invariants: fds[fd].used iff fd has at least one added knote; then fd is
 * in the epoll set with data (gen << 32 | fd), and (dev, ino) identify the
 * file it had when it was added, so a descriptor closed (and perhaps
 * reused) behind our back is recognised and its knotes dropped, as close()
 * drops them on a real kqueue. A queue entry is live iff its knote is
 * queued with the entry's seq; dead entries are skipped.
 *
 * A real kqueue reports a socket's pending error in fflags without clearing
 * it. Linux can only read SO_ERROR by clearing it, so the error read here is
 * held and handed back by this file's getsockopt(), which the test programs
 * linking the emulation use instead of libc's (see the end of the file).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/event.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define KQ_MAX      256 /* kqueues open at once in a process */
#define HELD_MAX    256 /* socket errors held for getsockopt() */
#define EPOLL_BATCH 64
#define MAX_WAIT_S  86400 /* longer timeouts are cut to 24 hours, as on FreeBSD */

#define SUPPORTED_FLAGS (EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE | EV_CLEAR | EV_RECEIPT)
#define READ_BITS       (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)
#define WRITE_BITS      (EPOLLOUT | EPOLLHUP | EPOLLERR)

enum { FILT_READ, FILT_WRITE, NFILT };

struct knote {
    bool added, enabled, clear, queued;
    unsigned short flags; /* EV_CLEAR|EV_RECEIPT as added: returned with the event */
    uint32_t seq;         /* of its live queue entry */
    void *udata;
    uint64_t ext[4];
};

struct kfd {
    bool used;
    uint32_t gen;
    dev_t dev;
    ino_t ino;
    mode_t mode;
    struct knote kn[NFILT];
};

struct qent {
    int id; /* fd * NFILT + filter index */
    uint32_t seq;
};

struct kq {
    int epfd;
    uint32_t gen, seq;
    struct kfd *fds; /* indexed by descriptor */
    size_t nfds;
    struct qent *ring; /* the active queue, FIFO */
    size_t ring_cap, ring_head, ring_len;
    size_t live; /* queued knotes (live entries) */
};

struct held_error {
    int fd;
    int err;
    dev_t dev;
    ino_t ino;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kq *table[KQ_MAX];
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held_error held[HELD_MAX];
static unsigned held_next;

static int fail(int err)
{
    errno = err;
    return -1;
}

static int filter_index(short filter)
{
    return filter == EVFILT_READ ? FILT_READ : FILT_WRITE;
}

static short filter_of(int f)
{
    return f == FILT_READ ? EVFILT_READ : EVFILT_WRITE;
}

/* ---- the table of kqueues ------------------------------------------------ */

static void kq_free(struct kq *q)
{
    free(q->fds);
    free(q->ring);
    free(q);
}

int kqueue(void)
{
    struct kq *q = calloc(1, sizeof(*q));
    int slot = -1;

    if (!q)
        return fail(ENOMEM);
    /* Like kqueue(), the descriptor is not close-on-exec: the caller sets that. */
    q->epfd = epoll_create1(0);
    if (q->epfd < 0) {
        int err = errno;

        free(q);
        return fail(err);
    }
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < KQ_MAX; i++) {
        /* The same number again means the old kqueue was closed: drop its state. */
        if (table[i] && table[i]->epfd == q->epfd) {
            kq_free(table[i]);
            table[i] = NULL;
        }
        if (!table[i] && slot < 0)
            slot = i;
    }
    if (slot >= 0)
        table[slot] = q;
    pthread_mutex_unlock(&table_lock);
    if (slot < 0) {
        close(q->epfd);
        free(q);
        return fail(ENOMEM);
    }
    return q->epfd;
}

static struct kq *kq_find(int fd)
{
    struct kq *q = NULL;

    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < KQ_MAX && !q; i++) {
        if (table[i] && table[i]->epfd == fd)
            q = table[i];
    }
    pthread_mutex_unlock(&table_lock);
    return q;
}

/* ---- the active queue ------------------------------------------------------ */

static int ring_push(struct kq *q, int id, uint32_t seq)
{
    if (q->ring_len == q->ring_cap) {
        size_t cap = q->ring_cap ? q->ring_cap * 2 : 64;
        struct qent *r = calloc(cap, sizeof(*r));

        if (!r)
            return ENOMEM;
        for (size_t i = 0; i < q->ring_len; i++)
            r[i] = q->ring[(q->ring_head + i) % q->ring_cap];
        free(q->ring);
        q->ring = r;
        q->ring_cap = cap;
        q->ring_head = 0;
    }
    q->ring[(q->ring_head + q->ring_len) % q->ring_cap] = (struct qent){.id = id, .seq = seq};
    q->ring_len++;
    return 0;
}

static struct qent ring_pop(struct kq *q)
{
    struct qent e = q->ring[q->ring_head];

    q->ring_head = (q->ring_head + 1) % q->ring_cap;
    q->ring_len--;
    return e;
}

/* Put a knote on the active queue (once). */
static int activate(struct kq *q, int fd, int f)
{
    struct knote *kn = &q->fds[fd].kn[f];
    int err;

    if (kn->queued || !kn->added || !kn->enabled)
        return 0;
    err = ring_push(q, fd * NFILT + f, ++q->seq);
    if (err)
        return err;
    kn->queued = true;
    kn->seq = q->seq;
    q->live++;
    return 0;
}

static void deactivate(struct kq *q, struct knote *kn)
{
    if (kn->queued) {
        kn->queued = false;
        q->live--;
    }
}

/* The knote a queue entry stands for, or NULL if the entry is dead. */
static struct knote *entry_knote(struct kq *q, struct qent e)
{
    size_t fd = (size_t)e.id / NFILT;
    struct knote *kn;

    if (fd >= q->nfds || !q->fds[fd].used)
        return NULL;
    kn = &q->fds[fd].kn[e.id % NFILT];
    return kn->queued && kn->seq == e.seq ? kn : NULL;
}

/* ---- knotes ---------------------------------------------------------------- */

/* Drop every knote of @p fd without touching epoll: the descriptor was closed. */
static void forget(struct kq *q, int fd)
{
    struct kfd *d;

    if ((size_t)fd >= q->nfds || !q->fds[fd].used)
        return;
    d = &q->fds[fd];
    for (int f = 0; f < NFILT; f++) {
        deactivate(q, &d->kn[f]);
        d->kn[f].added = false;
    }
    d->used = false;
}

/* The record of @p fd if it still describes the file now at @p fd, else NULL. */
static struct kfd *current(struct kq *q, int fd, const struct stat *st)
{
    struct kfd *d;

    if ((size_t)fd >= q->nfds || !q->fds[fd].used)
        return NULL;
    d = &q->fds[fd];
    if (d->dev != st->st_dev || d->ino != st->st_ino) {
        forget(q, fd); /* closed and the number reused: its knotes went with the close */
        return NULL;
    }
    return d;
}

static int reserve(struct kq *q, int fd)
{
    size_t cap = q->nfds ? q->nfds : 64;
    struct kfd *t;

    if ((size_t)fd < q->nfds)
        return 0;
    while (cap <= (size_t)fd)
        cap *= 2;
    t = realloc(q->fds, cap * sizeof(*t));
    if (!t)
        return ENOMEM;
    memset(t + q->nfds, 0, (cap - q->nfds) * sizeof(*t));
    q->fds = t;
    q->nfds = cap;
    return 0;
}

/* Put @p fd in the epoll set and start its record. */
static int watch_fd(struct kq *q, int fd, const struct stat *st)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
    struct kfd *d = &q->fds[fd];
    uint32_t gen = ++q->gen;

    ev.data.u64 = (uint64_t)gen << 32 | (uint32_t)fd;
    if (epoll_ctl(q->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        /* A registration left from before a close, of a file still open elsewhere. */
        if (errno != EEXIST || epoll_ctl(q->epfd, EPOLL_CTL_MOD, fd, &ev) != 0)
            return errno; /* EPERM for regular files, which epoll cannot watch */
    }
    memset(d, 0, sizeof(*d));
    d->used = true;
    d->gen = gen;
    d->dev = st->st_dev;
    d->ino = st->st_ino;
    d->mode = st->st_mode;
    return 0;
}

static int add_knote(struct kq *q, int fd, int f, const struct stat *st, const struct kevent *kev)
{
    struct knote *kn;
    int err = reserve(q, fd);

    if (err)
        return err;
    if (!q->fds[fd].used && (err = watch_fd(q, fd, st)) != 0)
        return err;
    kn = &q->fds[fd].kn[f];
    memset(kn, 0, sizeof(*kn));
    kn->added = true;
    kn->enabled = true;
    kn->clear = (kev->flags & EV_CLEAR) != 0;
    kn->flags = (unsigned short)(kev->flags & (EV_CLEAR | EV_RECEIPT));
    return 0;
}

static void delete_knote(struct kq *q, int fd, int f)
{
    struct kfd *d = &q->fds[fd];
    struct epoll_event ev = {0};

    deactivate(q, &d->kn[f]);
    d->kn[f].added = false;
    if (d->kn[FILT_READ].added || d->kn[FILT_WRITE].added)
        return;
    (void)epoll_ctl(q->epfd, EPOLL_CTL_DEL, fd, &ev);
    d->used = false;
}

/* Apply one change; 0 or the errno its EV_ERROR entry carries. */
static int apply(struct kq *q, const struct kevent *kev)
{
    unsigned flags = kev->flags;
    struct knote *kn;
    struct kfd *d;
    struct stat st;
    int fd, f, err;

    if (kev->filter != EVFILT_READ && kev->filter != EVFILT_WRITE)
        return EINVAL;
    if ((flags & ~(unsigned)SUPPORTED_FLAGS) || kev->fflags ||
        ((flags & EV_ADD) && (flags & EV_DELETE)))
        return EINVAL;
    if (kev->ident > INT_MAX)
        return EBADF;
    fd = (int)kev->ident;
    f = filter_index(kev->filter);
    if (fstat(fd, &st) != 0) {
        forget(q, fd);
        return EBADF;
    }
    d = current(q, fd, &st);
    kn = d && d->kn[f].added ? &d->kn[f] : NULL;
    if (flags & EV_DELETE) {
        if (!kn)
            return ENOENT;
        delete_knote(q, fd, f);
        return 0;
    }
    if (!kn && !(flags & EV_ADD))
        return ENOENT;
    if (!kn && (err = add_knote(q, fd, f, &st, kev)) != 0)
        return err;
    kn = &q->fds[fd].kn[f];
    /* Re-adding updates udata (and ext) but, as on FreeBSD, not EV_CLEAR. */
    if (flags & EV_ADD) {
        kn->udata = kev->udata;
        memcpy(kn->ext, kev->ext, sizeof(kn->ext));
    }
    if (flags & EV_DISABLE) {
        kn->enabled = false;
        deactivate(q, kn);
    } else if (flags & EV_ENABLE) {
        kn->enabled = true;
    }
    if (flags & (EV_ADD | EV_ENABLE))
        return activate(q, fd, f);
    return 0;
}

/* ---- socket errors held for getsockopt() ----------------------------------- */

static int raw_so_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return 0;
    return err;
}

static struct held_error *held_find(int fd, dev_t dev, ino_t ino)
{
    for (unsigned i = 0; i < HELD_MAX; i++) {
        if (held[i].err && held[i].fd == fd && held[i].dev == dev && held[i].ino == ino)
            return &held[i];
    }
    return NULL;
}

/* The socket's pending error, as a real kqueue would put in fflags (held, not lost). */
static unsigned socket_error(int fd, const struct kfd *d, bool pollerr)
{
    struct held_error *h;
    int err = 0;

    pthread_mutex_lock(&held_lock);
    h = held_find(fd, d->dev, d->ino);
    if (pollerr && (err = raw_so_error(fd)) != 0) {
        if (!h)
            h = &held[held_next++ % HELD_MAX];
        *h = (struct held_error){.fd = fd, .err = err, .dev = d->dev, .ino = d->ino};
    }
    err = h ? h->err : 0;
    pthread_mutex_unlock(&held_lock);
    return (unsigned)err;
}

static int take_held_error(int fd)
{
    struct held_error *h;
    struct stat st;
    int err = 0;

    if (fstat(fd, &st) != 0)
        return 0;
    pthread_mutex_lock(&held_lock);
    h = held_find(fd, st.st_dev, st.st_ino);
    if (h) {
        err = h->err;
        h->err = 0;
    }
    pthread_mutex_unlock(&held_lock);
    return err;
}

/*
 * getsockopt(2) for the programs that link the emulation: the real call, except
 * that SO_ERROR also returns (and clears) an error the emulation read on the
 * socket's behalf. Everything else goes straight to the kernel.
 */
int getsockopt(int fd, int level, int name, void *restrict val, socklen_t *restrict len)
{
    long r = syscall(SYS_getsockopt, fd, level, name, val, len);
    int err;

    if (r != 0 || level != SOL_SOCKET || name != SO_ERROR || *len < sizeof(int))
        return (int)r;
    memcpy(&err, val, sizeof(err));
    if (err == 0) {
        err = take_held_error(fd);
        memcpy(val, &err, sizeof(err));
    } else {
        (void)take_held_error(fd); /* superseded by a newer error, as so_error is */
    }
    return 0;
}

/* ---- collecting events -------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Milliseconds to wait until @p deadline (ns), rounded up; -1 for no deadline. */
static int remaining_ms(int64_t deadline)
{
    int64_t left;

    if (deadline < 0)
        return -1;
    left = deadline - now_ns();
    if (left <= 0)
        return 0;
    left = (left + 999999) / 1000000;
    return left > INT_MAX ? INT_MAX : (int)left;
}

/*
 * Evaluate a knote as the filter would at retrieval: fill @p out and return
 * true if its condition holds. A descriptor found closed loses its knotes.
 */
static bool evaluate(struct kq *q, int fd, int f, struct kevent *out)
{
    struct kfd *d = &q->fds[fd];
    struct knote *kn = &d->kn[f];
    struct pollfd p = {.fd = fd, .events = f == FILT_READ ? POLLIN | POLLRDHUP : POLLOUT};
    bool fifo = S_ISFIFO(d->mode), eof;
    struct stat st;
    int avail = 0, r;

    if (fstat(fd, &st) != 0 || !current(q, fd, &st)) {
        forget(q, fd);
        return false;
    }
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0 || (p.revents & POLLNVAL))
        return false;
    if (f == FILT_READ) {
        if (!(p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)))
            return false;
        /* A pipe's write end reports its reader gone as POLLERR. */
        eof = (p.revents & (POLLRDHUP | POLLHUP)) || (fifo && (p.revents & POLLERR));
        /*
         * data is the byte count; where FIONREAD has none (listening sockets,
         * eventfds) "at least one" stands in for the connection or counter
         * value. A socket error alone leaves it 0, as on BSD.
         */
        if (ioctl(fd, FIONREAD, &avail) != 0)
            avail = (p.revents & POLLIN) ? 1 : 0;
    } else {
        if (!(p.revents & (POLLOUT | POLLHUP | POLLERR)))
            return false;
        eof = (p.revents & POLLHUP) || (fifo && (p.revents & POLLERR));
    }
    *out = (struct kevent){
        .ident = (uintptr_t)fd,
        .filter = filter_of(f),
        .flags = (unsigned short)(kn->flags | (eof ? EV_EOF : 0)),
        .fflags = eof && S_ISSOCK(d->mode) ? socket_error(fd, d, p.revents & POLLERR) : 0,
        .data = avail,
        .udata = kn->udata,
    };
    memcpy(out->ext, kn->ext, sizeof(out->ext));
    return true;
}

/* Activate the knotes an epoll report concerns (ignoring stale registrations). */
static int on_epoll(struct kq *q, const struct epoll_event *ev)
{
    size_t fd = (size_t)(ev->data.u64 & UINT32_MAX);
    int err = 0;

    if (fd >= q->nfds || !q->fds[fd].used || q->fds[fd].gen != (uint32_t)(ev->data.u64 >> 32))
        return 0;
    if (ev->events & READ_BITS)
        err = activate(q, (int)fd, FILT_READ);
    if (!err && (ev->events & WRITE_BITS))
        err = activate(q, (int)fd, FILT_WRITE);
    return err;
}

/*
 * Return up to @p n active knotes whose condition holds, in queue order. Only
 * the entries queued on entry are looked at: a level knote re-queued here is
 * evaluated again on the next call, not twice in this one.
 */
static int scan(struct kq *q, struct kevent *out, int n)
{
    size_t todo = q->ring_len;
    int got = 0;

    while (todo-- > 0 && got < n) {
        struct qent e = ring_pop(q);
        struct knote *kn = entry_knote(q, e);

        if (!kn)
            continue;
        deactivate(q, kn);
        if (!evaluate(q, e.id / NFILT, e.id % NFILT, &out[got]))
            continue;
        got++;
        if (!kn->clear && activate(q, e.id / NFILT, e.id % NFILT) != 0)
            return fail(ENOMEM);
    }
    return got;
}

static bool valid_timeout(const struct timespec *ts)
{
    return !ts || (ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000);
}

static int collect(struct kq *q, struct kevent *out, int n, const struct timespec *timeout)
{
    int64_t deadline = -1;

    if (timeout) {
        int64_t s = timeout->tv_sec > MAX_WAIT_S ? MAX_WAIT_S : (int64_t)timeout->tv_sec;

        deadline = now_ns() + s * 1000000000 + timeout->tv_nsec;
    }
    for (;;) {
        struct epoll_event evs[EPOLL_BATCH];
        int r = epoll_wait(q->epfd, evs, EPOLL_BATCH, q->live ? 0 : remaining_ms(deadline));

        if (r < 0)
            return -1; /* EINTR: the changes have been applied, as documented */
        for (int i = 0; i < r; i++) {
            int err = on_epoll(q, &evs[i]);

            if (err)
                return fail(err);
        }
        r = scan(q, out, n);
        if (r != 0)
            return r;
        if (deadline >= 0 && now_ns() >= deadline)
            return 0;
    }
}

int kevent(int kqfd, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout)
{
    struct kq *q = kq_find(kqfd);
    int nout = 0;

    if (!q)
        return fail(EBADF);
    if (nchanges < 0 || nevents < 0)
        return fail(EINVAL);
    if ((nchanges > 0 && !changelist) || (nevents > 0 && !eventlist))
        return fail(EFAULT);
    /* Changes first, in order; each copied before an entry may overwrite it. */
    for (int i = 0; i < nchanges; i++) {
        struct kevent kev = changelist[i];
        int err = apply(q, &kev);

        if (!err && !(kev.flags & EV_RECEIPT))
            continue;
        if (nout == nevents) {
            /* No room for the entry: fail with the error, or stop here (EV_RECEIPT). */
            if (err)
                return fail(err);
            return nout;
        }
        kev.flags = EV_ERROR;
        kev.data = err;
        eventlist[nout++] = kev;
    }
    /* Entries for changes are returned alone, without collecting events. */
    if (nout > 0 || nevents == 0)
        return nout;
    if (!valid_timeout(timeout))
        return fail(EINVAL);
    return collect(q, eventlist, nevents, timeout);
}
