/*
 * ev.c - the loop benchmark on libev (see common.h for the workload).
 *
 * epoll backend, one ev_io per read end (level-triggered, as libev always
 * is) and, with timers on, one ev_timer per pair restarted with
 * ev_timer_again(), libev's idiom for an idle timeout.
 */
#include <ev.h>

#include "common.h"

struct pair {
    ev_io io;
    ev_timer timer;
    unsigned idx;
};

static struct bench_ring ring;
static struct pair *pairs;
static bool use_timers;

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    bench_fired++;
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct pair *p = (struct pair *)w;
    (void)revents;

    if (use_timers)
        ev_timer_again(loop, &p->timer);
    if (bench_pass(&ring, p->idx))
        ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    struct bench_opts o;

    bench_parse(argc, argv, &o);
    bench_ring_init(&ring, &o);
    use_timers = o.timers;

    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    if (loop == NULL)
        bench_die("ev_loop_new", ENOMEM);
    pairs = calloc(o.n, sizeof(*pairs));
    if (pairs == NULL)
        bench_die("calloc", ENOMEM);
    for (unsigned i = 0; i < o.n; i++) {
        struct pair *p = &pairs[i];
        p->idx = i;
        ev_io_init(&p->io, on_read, ring.rd[i], EV_READ);
        ev_io_start(loop, &p->io);
        if (o.timers) {
            ev_timer_init(&p->timer, on_timer, 0., ring.timeout_ms[i] / 1000.);
            ev_timer_again(loop, &p->timer);
        }
    }
    bench_ring_seed(&ring, o.a);

    bench_phase_reset(o.warmup);
    if (o.warmup)
        ev_run(loop, 0);
    bench_phase_reset(o.events);
    bench_timed_begin();
    ev_run(loop, 0);
    bench_timed_end();
    bench_report("libev", "epoll", &o);

    for (unsigned i = 0; i < o.n; i++) {
        ev_io_stop(loop, &pairs[i].io);
        ev_timer_stop(loop, &pairs[i].timer);
    }
    ev_loop_destroy(loop);
    free(pairs);
    bench_ring_close(&ring);
    return 0;
}
