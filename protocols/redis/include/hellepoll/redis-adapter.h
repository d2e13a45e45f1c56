/**
 * @file redis-adapter.h
 * A hiredis event adapter for a hellepoll loop, in the shape of hiredis's own
 * adapters (<hiredis/adapters/libev.h>, <hiredis/adapters/libuv.h>):
 *
 *     #include <hiredis/async.h>
 *     #include <hellepoll/redis-adapter.h>
 *
 *     redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", 6379);
 *     if (ac == NULL || ac->err || hp_redis_attach(ac, loop) != REDIS_OK) ...
 *
 * Header-only (static functions), like hiredis's adapters, so it works with
 * whichever hiredis the application links; link hiredis and hellepoll. It
 * compiles against hiredis 0.14 and 1.x: with 1.x (HIREDIS_MAJOR >= 1) it also
 * provides scheduleTimer, so hiredis's own connect and command timeouts
 * (redisOptions) run on the loop's timers.
 *
 * Behaviour. The context's socket gets one level-triggered hp_io watcher.
 * Once connected, a write hiredis asks for (addWrite) is not armed on the
 * socket but deferred to the end of the loop iteration (hp_defer), so every
 * command issued during one iteration goes out in one write(2) and an idle
 * socket costs no interest change; only a write the kernel could not take
 * whole arms write interest. While connecting, writability (the connect
 * result) is watched directly.
 *
 * hiredis writes with write(2), so a process using it ignores SIGPIPE (as
 * with hiredis's own adapters).
 *
 * Lifetime: hiredis owns the adapter state and frees it through the cleanup
 * hook (redisAsyncFree, or a disconnect), which stops every watcher at once;
 * it is safe to free the context from inside any hiredis callback. The loop
 * must outlive the context. The adapter allocates its state with malloc(3).
 */
#ifndef HP_REDIS_ADAPTER_H
#define HP_REDIS_ADAPTER_H

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/hellepoll.h>

#if defined(HIREDIS_MAJOR) && HIREDIS_MAJOR >= 1
#include <sys/time.h>
#define HP_REDIS_ADAPTER_TIMER 1
#else
#define HP_REDIS_ADAPTER_TIMER 0
#endif

/** The adapter's state, owned by the hiredis context (ac->ev.data). */
struct hp_redis_events {
    redisAsyncContext *ac;
    struct hp_io io;
    struct hp_defer flush; /* a deferred write while connected */
#if HP_REDIS_ADAPTER_TIMER
    struct hp_timer timer;
#endif
    unsigned want;  /* HP_READABLE / HP_WRITABLE interest hiredis asked for */
    unsigned depth; /* > 0 while calling into hiredis */
    bool dead;      /* cleanup ran while calling into hiredis: free on the way out */
    bool flushing;  /* inside the deferred write */
};

/* Apply the socket interest: reads as asked; writes only if armed. */
static inline void hp__redis_sync(struct hp_redis_events *e, unsigned events)
{
    if (events == 0)
        hp_io_stop(&e->io);
    else if (hp_io_events(&e->io) != events || !hp_io_is_active(&e->io))
        (void)hp_io_start(&e->io, events); /* -ENOMEM: hiredis's hooks cannot fail */
}

static inline void hp__redis_enter(struct hp_redis_events *e)
{
    e->depth++;
}

/* Leave a call into hiredis; true if the state was freed (do not touch @p e). */
static inline bool hp__redis_leave(struct hp_redis_events *e)
{
    if (--e->depth == 0 && e->dead) {
        free(e);
        return true;
    }
    return false;
}

/*
 * A connect failed. The loop has read (and so cleared) the socket error that
 * hiredis would look up itself, so fail the connection the way hiredis does:
 * the error on the context, the connect callback with REDIS_ERR (errno set),
 * then free, which runs the pending callbacks with NULL replies.
 */
static inline void hp__redis_fail_connect(struct hp_redis_events *e, int status)
{
    redisAsyncContext *ac = e->ac;
    redisContext *c = &ac->c;
    int err = status < 0 && status > -4095 ? -status : ECONNREFUSED;

    c->err = REDIS_ERR_IO;
    strncpy(c->errstr, strerror(err), sizeof(c->errstr) - 1);
    c->errstr[sizeof(c->errstr) - 1] = 0;
    ac->err = c->err;
    ac->errstr = c->errstr;
    c->flags |= REDIS_IN_CALLBACK; /* a redisAsyncFree() in the callback waits for us */
    errno = err;
    if (ac->onConnect)
        ac->onConnect(ac, REDIS_ERR);
#if defined(HIREDIS_MAJOR) && (HIREDIS_MAJOR > 1 || (HIREDIS_MAJOR == 1 && HIREDIS_MINOR >= 1))
    if (ac->onConnectNC)
        ac->onConnectNC(ac, REDIS_ERR);
#endif
    c->flags &= ~REDIS_IN_CALLBACK;
    redisAsyncFree(ac);
}

static inline void hp__redis_on_io(struct hp_io *io, unsigned events, int status)
{
    struct hp_redis_events *e = (struct hp_redis_events *)io->data;
    unsigned armed = hp_io_events(io);

    hp__redis_enter(e);
    if ((events & HP_ERROR) && !(e->ac->c.flags & REDIS_CONNECTED)) {
        hp__redis_fail_connect(e, status);
        (void)hp__redis_leave(e);
        return;
    }
    /* Errors and hang-ups go to the direction hiredis waits on, which then
     * reads the error (or EOF) and disconnects. */
    if ((events & HP_READABLE) || ((events & (HP_HUP | HP_ERROR)) && (armed & HP_READABLE)))
        redisAsyncHandleRead(e->ac);
    if (!e->dead &&
        ((events & HP_WRITABLE) || ((events & (HP_HUP | HP_ERROR)) && !(armed & HP_READABLE))))
        redisAsyncHandleWrite(e->ac);
    (void)hp__redis_leave(e);
}

static inline void hp__redis_on_flush(struct hp_defer *d)
{
    struct hp_redis_events *e = (struct hp_redis_events *)d->data;

    if (!(e->want & HP_WRITABLE))
        return;
    hp__redis_enter(e);
    e->flushing = true;
    redisAsyncHandleWrite(e->ac);
    e->flushing = false;
    (void)hp__redis_leave(e);
}

static inline void hp__redis_add_read(void *privdata)
{
    struct hp_redis_events *e = (struct hp_redis_events *)privdata;

    e->want |= HP_READABLE;
    hp__redis_sync(e, hp_io_events(&e->io) | HP_READABLE);
}

static inline void hp__redis_del_read(void *privdata)
{
    struct hp_redis_events *e = (struct hp_redis_events *)privdata;

    e->want &= ~(unsigned)HP_READABLE;
    hp__redis_sync(e, hp_io_events(&e->io) & ~(unsigned)HP_READABLE);
}

static inline void hp__redis_add_write(void *privdata)
{
    struct hp_redis_events *e = (struct hp_redis_events *)privdata;

    e->want |= HP_WRITABLE;
    /* Connecting, or a write left over from a flush or a writable event:
     * wait for the socket. Otherwise write at the end of this iteration. */
    if (!(e->ac->c.flags & REDIS_CONNECTED) || e->flushing || (hp_io_events(&e->io) & HP_WRITABLE))
        hp__redis_sync(e, hp_io_events(&e->io) | HP_WRITABLE);
    else
        hp_defer_start(&e->flush);
}

static inline void hp__redis_del_write(void *privdata)
{
    struct hp_redis_events *e = (struct hp_redis_events *)privdata;

    e->want &= ~(unsigned)HP_WRITABLE;
    hp_defer_stop(&e->flush);
    hp__redis_sync(e, hp_io_events(&e->io) & ~(unsigned)HP_WRITABLE);
}

static inline void hp__redis_cleanup(void *privdata)
{
    struct hp_redis_events *e = (struct hp_redis_events *)privdata;

    if (e == NULL)
        return;
    hp_io_stop(&e->io);
    hp_defer_stop(&e->flush);
#if HP_REDIS_ADAPTER_TIMER
    hp_timer_stop(&e->timer);
#endif
    e->ac->ev.data = NULL;
    e->ac = NULL;
    if (e->depth > 0)
        e->dead = true; /* freed when the call into hiredis returns */
    else
        free(e);
}

#if HP_REDIS_ADAPTER_TIMER
static inline void hp__redis_on_timer(struct hp_timer *t)
{
    struct hp_redis_events *e = (struct hp_redis_events *)t->data;

    hp__redis_enter(e);
    redisAsyncHandleTimeout(e->ac);
    (void)hp__redis_leave(e);
}

static inline void hp__redis_schedule_timer(void *privdata, struct timeval tv)
{
    struct hp_redis_events *e = (struct hp_redis_events *)privdata;
    /* Round up to whole milliseconds; tv is never negative. */
    uint64_t ms = (uint64_t)tv.tv_sec * 1000u + ((uint64_t)tv.tv_usec + 999u) / 1000u;

    (void)hp_timer_start(&e->timer, ms, 0);
}
#endif

/**
 * Attach @p ac to @p loop. Call once, right after redisAsyncConnect*(), on
 * the loop's thread.
 * @return REDIS_OK, or REDIS_ERR if @p ac already has an event library, has
 *         no socket, or memory ran out (then nothing is attached).
 */
static inline int hp_redis_attach(redisAsyncContext *ac, struct hp_loop *loop)
{
    struct hp_redis_events *e;

    if (ac == NULL || loop == NULL || ac->ev.data != NULL || ac->c.fd < 0)
        return REDIS_ERR;
    e = (struct hp_redis_events *)calloc(1, sizeof(*e));
    if (e == NULL)
        return REDIS_ERR;
    e->ac = ac;
    hp_io_init(loop, &e->io, (int)ac->c.fd, hp__redis_on_io);
    e->io.data = e;
    hp_defer_init(loop, &e->flush, hp__redis_on_flush);
    e->flush.data = e;
    ac->ev.addRead = hp__redis_add_read;
    ac->ev.delRead = hp__redis_del_read;
    ac->ev.addWrite = hp__redis_add_write;
    ac->ev.delWrite = hp__redis_del_write;
    ac->ev.cleanup = hp__redis_cleanup;
#if HP_REDIS_ADAPTER_TIMER
    hp_timer_init(loop, &e->timer, hp__redis_on_timer);
    e->timer.data = e;
    ac->ev.scheduleTimer = hp__redis_schedule_timer;
#endif
    ac->ev.data = e;
    return REDIS_OK;
}

#endif
