/*
 * event.c - the loop benchmark on libevent 2.1 (see common.h for the
 * workload).
 *
 * Default event_base (epoll on Linux), one persistent level-triggered
 * EV_READ event per read end and, with timers on, one pure timer event per
 * pair re-added with event_add() and its timeout on every read.
 */
#include <event2/event.h>

#include "common.h"

struct pair {
    struct event *io;
    struct event *timer;
    struct timeval tv;
    unsigned idx;
};

static struct bench_ring ring;
static struct pair *pairs;
static struct event_base *base;
static bool use_timers;

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    bench_fired++;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct pair *p = arg;
    (void)fd;
    (void)what;

    if (use_timers)
        event_add(p->timer, &p->tv);
    if (bench_pass(&ring, p->idx))
        event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
    struct bench_opts o;

    bench_parse(argc, argv, &o);
    bench_ring_init(&ring, &o);
    use_timers = o.timers;

    base = event_base_new();
    if (base == NULL)
        bench_die("event_base_new", ENOMEM);
    pairs = calloc(o.n, sizeof(*pairs));
    if (pairs == NULL)
        bench_die("calloc", ENOMEM);
    for (unsigned i = 0; i < o.n; i++) {
        struct pair *p = &pairs[i];
        p->idx = i;
        p->io = event_new(base, ring.rd[i], EV_READ | EV_PERSIST, on_read, p);
        if (p->io == NULL || event_add(p->io, NULL) != 0)
            bench_die("event_add", EINVAL);
        if (o.timers) {
            p->tv.tv_sec = ring.timeout_ms[i] / 1000;
            p->tv.tv_usec = (suseconds_t)(ring.timeout_ms[i] % 1000) * 1000;
            p->timer = evtimer_new(base, on_timer, p);
            if (p->timer == NULL || event_add(p->timer, &p->tv) != 0)
                bench_die("evtimer_add", EINVAL);
        }
    }
    bench_ring_seed(&ring, o.a);

    bench_phase_reset(o.warmup);
    if (o.warmup)
        event_base_dispatch(base);
    bench_phase_reset(o.events);
    bench_timed_begin();
    event_base_dispatch(base);
    bench_timed_end();
    bench_report("libevent", event_base_get_method(base), &o);

    for (unsigned i = 0; i < o.n; i++) {
        event_free(pairs[i].io);
        if (pairs[i].timer != NULL)
            event_free(pairs[i].timer);
    }
    event_base_free(base);
    free(pairs);
    bench_ring_close(&ring);
    return 0;
}
