/*
 * sys/event.h - TEST-ONLY kqueue(2) interface for Linux, implemented on
 * epoll by kqueue_emu.c. Never installed, never part of libhellepoll.
 *
 * It declares exactly what the kqueue driver (backends/kqueue.c) uses, with
 * FreeBSD's names, values and struct layout (FreeBSD 12+, which has ext[]),
 * so code that builds against it builds against the real header too. Filters
 * and flags the emulation does not implement are deliberately not defined:
 * a driver that starts using one fails to compile on Linux instead of
 * silently testing nothing. See ../README.md for what is covered.
 */
#ifndef HP_KQUEUE_EMU_SYS_EVENT_H
#define HP_KQUEUE_EMU_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

/* Filters: only the two the driver uses. */
#define EVFILT_READ  (-1)
#define EVFILT_WRITE (-2)

/* Actions. */
#define EV_ADD     0x0001 /* add the event (implies enable) */
#define EV_DELETE  0x0002 /* delete the event */
#define EV_ENABLE  0x0004 /* let kevent() return it */
#define EV_DISABLE 0x0008 /* keep it, but do not return it */

/* Flags. */
#define EV_CLEAR   0x0020 /* reset the state once retrieved: edge trigger */
#define EV_RECEIPT 0x0040 /* always return an EV_ERROR entry, data 0 on success */

/* Returned values. */
#define EV_EOF   0x8000 /* the filter saw end of file; fflags has the socket error */
#define EV_ERROR 0x4000 /* a change failed: data is the errno (or 0, EV_RECEIPT) */

struct kevent {
    uintptr_t ident;      /* the descriptor */
    short filter;         /* EVFILT_READ or EVFILT_WRITE */
    unsigned short flags; /* EV_* */
    unsigned int fflags;  /* filter flags; on EV_EOF, the pending socket error */
    int64_t data;         /* READ: bytes readable; EV_ERROR: the errno */
    void *udata;          /* returned as given at EV_ADD */
    uint64_t ext[4];      /* passed through unchanged */
};

#define EV_SET(kevp_, a, b, c, d, e, f) \
    do {                                \
        *(kevp_) = (struct kevent){     \
            .ident = (a),               \
            .filter = (b),              \
            .flags = (c),               \
            .fflags = (d),              \
            .data = (e),                \
            .udata = (f),               \
            .ext = {0},                 \
        };                              \
    } while (0)

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout);

#endif
