/*
 * poll.c - the portable driver, on poll(2). Level-triggered only: the core
 * emulates edge triggering (see backend.h). State is a pollfd array plus an
 * fd -> slot index; removal swaps the last entry into the hole, so add,
 * modify and remove are O(1) and wait is one poll(2) over a dense array.
 * Only add() may allocate (geometric growth); wait() never does.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>

#include "backend.h"

struct poll_state {
    struct hp_allocator alloc;
    struct pollfd *pfds;
    size_t n, cap;
    int *slot; /* fd -> index in pfds, or -1 */
    size_t slot_cap;
};

static void *grow(struct hp_allocator *a, void *p, size_t n, size_t size)
{
    if (n > SIZE_MAX / size)
        return NULL;
    return a->realloc(a->ctx, p, n * size);
}

static short to_poll(unsigned events)
{
    short e = 0;

    if (events & HP_READABLE)
        e |= POLLIN;
    if (events & HP_WRITABLE)
        e |= POLLOUT;
    return e;
}

static unsigned from_poll(short e)
{
    unsigned events = 0;

    if (e & (POLLIN | POLLPRI))
        events |= HP_READABLE;
    if (e & POLLOUT)
        events |= HP_WRITABLE;
    if (e & POLLHUP)
        events |= HP_HUP | HP_READABLE; /* a read will return EOF */
    if (e & (POLLERR | POLLNVAL))
        events |= HP_ERROR;
    return events;
}

static int poll_init(void **state, const struct hp_backend_cfg *cfg)
{
    struct poll_state *st = cfg->alloc.realloc(cfg->alloc.ctx, NULL, sizeof(*st));

    if (!st)
        return -ENOMEM;
    memset(st, 0, sizeof(*st));
    st->alloc = cfg->alloc;
    *state = st;
    return 0;
}

static void poll_destroy(void *state)
{
    struct poll_state *st = state;

    st->alloc.free(st->alloc.ctx, st->pfds);
    st->alloc.free(st->alloc.ctx, st->slot);
    st->alloc.free(st->alloc.ctx, st);
}

static int reserve(struct poll_state *st, int fd)
{
    if ((size_t)fd >= st->slot_cap) {
        size_t cap = st->slot_cap ? st->slot_cap : 64;
        int *slot;

        while (cap <= (size_t)fd)
            cap *= 2;
        if (!(slot = grow(&st->alloc, st->slot, cap, sizeof(*slot))))
            return -ENOMEM;
        for (size_t i = st->slot_cap; i < cap; i++)
            slot[i] = -1;
        st->slot = slot;
        st->slot_cap = cap;
    }
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        struct pollfd *p = grow(&st->alloc, st->pfds, cap, sizeof(*p));

        if (!p)
            return -ENOMEM;
        st->pfds = p;
        st->cap = cap;
    }
    return 0;
}

static int poll_add(void *state, int fd, unsigned events)
{
    struct poll_state *st = state;
    int err;

    if (fd < 0)
        return -EBADF;
    if ((err = reserve(st, fd)) != 0)
        return err;
    if (st->slot[fd] >= 0)
        return -EEXIST;
    st->pfds[st->n] = (struct pollfd){.fd = fd, .events = to_poll(events)};
    st->slot[fd] = (int)st->n++;
    return 0;
}

static int poll_modify(void *state, int fd, unsigned old_events, unsigned events)
{
    struct poll_state *st = state;

    (void)old_events;
    if (fd < 0 || (size_t)fd >= st->slot_cap || st->slot[fd] < 0)
        return -ENOENT;
    st->pfds[st->slot[fd]].events = to_poll(events);
    return 0;
}

static int poll_remove(void *state, int fd, unsigned old_events)
{
    struct poll_state *st = state;
    size_t i;

    (void)old_events;
    if (fd < 0 || (size_t)fd >= st->slot_cap || st->slot[fd] < 0)
        return -ENOENT;
    i = (size_t)st->slot[fd];
    st->slot[fd] = -1;
    if (i != --st->n) {
        st->pfds[i] = st->pfds[st->n];
        st->slot[st->pfds[i].fd] = (int)i;
    }
    return 0;
}

static int poll_wait(void *state, struct hp_ready *out, int cap, int timeout_ms)
{
    struct poll_state *st = state;
    int n, got = 0;

    n = poll(st->pfds, (nfds_t)st->n, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (size_t i = 0; i < st->n && got < n && got < cap; i++) {
        if (!st->pfds[i].revents)
            continue;
        out[got].fd = st->pfds[i].fd;
        out[got].events = from_poll(st->pfds[i].revents);
        got++;
    }
    return got;
}

const struct hp_backend_ops hp__backend_poll = {
    .name = "poll",
    .caps = 0,
    .init = poll_init,
    .destroy = poll_destroy,
    .add = poll_add,
    .modify = poll_modify,
    .remove = poll_remove,
    .wait = poll_wait,
};
