/*
 * backend.h - the driver contract (internal; never installed).
 *
 * A driver turns the kernel's readiness notification into (fd, events)
 * pairs. It knows nothing of watchers or callbacks: the core keeps the
 * fd -> watcher table, dispatches, and emulates what a driver lacks.
 *
 * Exactly one driver is compiled into the library; CMake passes its ops
 * table's name as HP_BACKEND_OPS.
 *
 * Events are the public bits of <hellepoll/io.h>: HP_READABLE and
 * HP_WRITABLE as interest and readiness, HP_EDGE as an interest flag (only
 * passed to drivers with HP_CAP_EDGE), HP_HUP and HP_ERROR as readiness only.
 * A driver must report hang-up and error conditions for every registered fd,
 * whatever its interest, including an interest of 0.
 *
 * Edge emulation (drivers without HP_CAP_EDGE, i.e. poll): the core registers
 * an edge-triggered watcher level-triggered, and after delivering a direction
 * it takes that direction out of the driver's interest ("latches" it) until
 * the watcher's IO reports EAGAIN (hp_io_drained()). A latched direction that
 * reached EOF stays latched. When every direction is latched and a hang-up was
 * delivered, the fd is removed from the driver entirely, since poll(2)
 * reports POLLHUP whatever the interest. So the watcher sees one event per
 * readiness transition, as with EPOLLET or EV_CLEAR.
 */
#ifndef HP_BACKEND_H
#define HP_BACKEND_H

#include <stddef.h>

#include <hellepoll/io.h>
#include <hellepoll/loop.h>

/** One ready descriptor, filled in by a driver's wait(). */
struct hp_ready {
    int fd;
    unsigned events; /* HP_READABLE | HP_WRITABLE | HP_HUP | HP_ERROR */
};

/** What a driver gets at init. */
struct hp_backend_cfg {
    struct hp_allocator alloc; /* always filled in */
    unsigned max_events;       /* capacity wait() will be called with */
};

/** Driver capabilities. */
enum {
    HP_CAP_EDGE = 1u << 0, /* native edge trigger for HP_EDGE */
    /*
     * close(2) drops the fd from the driver, so stopping a watcher for a close
     * needs no remove() call. Only epoll claims it. kqueue's knotes are dropped
     * by close(2) too, but the kqueue driver keeps a per-fd interest table that
     * remove() must clear, so it always gets the call.
     */
    HP_CAP_CLOSE_FORGETS = 1u << 1,
};

/*
 * The operations. All return 0 (wait: a count >= 0) or a negative errno,
 * and never abort. add() is called once per fd before modify()/remove();
 * remove() may be called for an fd that has already been closed (the driver
 * must then not fail loudly: -EBADF/-ENOENT are ignored by the core).
 * wait() must not allocate; it reports EINTR as 0 events.
 */
struct hp_backend_ops {
    const char *name;
    unsigned caps;
    int (*init)(void **state, const struct hp_backend_cfg *cfg);
    void (*destroy)(void *state);
    int (*add)(void *state, int fd, unsigned events);
    int (*modify)(void *state, int fd, unsigned old_events, unsigned events);
    int (*remove)(void *state, int fd, unsigned old_events);
    int (*wait)(void *state, struct hp_ready *out, int cap, int timeout_ms);
};

/* Defined by the one driver compiled in. */
extern const struct hp_backend_ops HP_BACKEND_OPS;

#endif
