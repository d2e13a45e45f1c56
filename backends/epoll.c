/*
 * epoll.c - the Linux driver. Level- and edge-triggered (EPOLLET) natively;
 * hang-up and error always reported (EPOLLHUP/EPOLLERR need no interest).
 * A hang-up is also reported readable, since a read then returns EOF.
 * Edge-triggered watchers also ask for EPOLLRDHUP, reported as HP_HUP, as
 * kqueue reports EV_EOF: a reader that stops at a short read must know that
 * the peer's FIN came in the same edge, or it would never see the EOF. Level
 * watchers do not, so one that paused reading is not woken again and again
 * by a half-closed peer (they see the EOF when they read).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "backend.h"

struct epoll_state {
    int epfd;
    struct hp_allocator alloc;
    unsigned cap;
    struct epoll_event events[]; /* flexible: max_events entries */
};

static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;

    if (events & HP_READABLE)
        e |= EPOLLIN;
    if (events & HP_WRITABLE)
        e |= EPOLLOUT;
    if (events & HP_EDGE)
        e |= EPOLLET | EPOLLRDHUP;
    return e;
}

static unsigned from_epoll(uint32_t e)
{
    unsigned events = 0;

    /* The overwhelmingly common cases first, without a test per bit. */
    if (e == EPOLLIN)
        return HP_READABLE;
    if (e == EPOLLOUT)
        return HP_WRITABLE;

    if (e & (EPOLLIN | EPOLLPRI))
        events |= HP_READABLE;
    if (e & EPOLLOUT)
        events |= HP_WRITABLE;
    if (e & (EPOLLHUP | EPOLLRDHUP))
        events |= HP_HUP | HP_READABLE; /* a read will return EOF */
    if (e & EPOLLERR)
        events |= HP_ERROR;
    return events;
}

static int epoll_init(void **state, const struct hp_backend_cfg *cfg)
{
    size_t size = sizeof(struct epoll_state) + cfg->max_events * sizeof(struct epoll_event);
    struct epoll_state *st = cfg->alloc.realloc(cfg->alloc.ctx, NULL, size);

    if (!st)
        return -ENOMEM;
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->epfd < 0) {
        int err = -errno;

        cfg->alloc.free(cfg->alloc.ctx, st);
        return err;
    }
    st->alloc = cfg->alloc;
    st->cap = cfg->max_events;
    *state = st;
    return 0;
}

static void epoll_destroy(void *state)
{
    struct epoll_state *st = state;

    close(st->epfd);
    st->alloc.free(st->alloc.ctx, st);
}

static int ctl(struct epoll_state *st, int op, int fd, unsigned events)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.fd = fd};

    return epoll_ctl(st->epfd, op, fd, &ev) == 0 ? 0 : -errno;
}

static int epoll_add(void *state, int fd, unsigned events)
{
    return ctl(state, EPOLL_CTL_ADD, fd, events);
}

static int epoll_modify(void *state, int fd, unsigned old_events, unsigned events)
{
    (void)old_events;
    return ctl(state, EPOLL_CTL_MOD, fd, events);
}

static int epoll_remove(void *state, int fd, unsigned old_events)
{
    struct epoll_state *st = state;
    struct epoll_event ev = {0}; /* kernels before 2.6.9 want a non-NULL event */

    (void)old_events;
    return epoll_ctl(st->epfd, EPOLL_CTL_DEL, fd, &ev) == 0 ? 0 : -errno;
}

static int epoll_wait_ready(void *state, struct hp_ready *out, int cap, int timeout_ms)
{
    struct epoll_state *st = state;
    int n;

    if (cap > (int)st->cap)
        cap = (int)st->cap;
    n = epoll_wait(st->epfd, st->events, cap, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        out[i].fd = st->events[i].data.fd;
        out[i].events = from_epoll(st->events[i].events);
    }
    return n;
}

const struct hp_backend_ops hp__backend_epoll = {
    .name = "epoll",
    .caps = HP_CAP_EDGE | HP_CAP_CLOSE_FORGETS,
    .init = epoll_init,
    .destroy = epoll_destroy,
    .add = epoll_add,
    .modify = epoll_modify,
    .remove = epoll_remove,
    .wait = epoll_wait_ready,
};
