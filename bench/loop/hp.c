/*
 * hp.c - the loop benchmark on hellepoll (see common.h for the workload).
 *
 * The configure-time driver (epoll on Linux), one level-triggered
 * HP_READABLE watcher per read end and, with timers on, one hp_timer per
 * pair restarted with hp_timer_start() on every read (the idle-timeout
 * refresh that timer.h makes O(1)).
 */
#include <hellepoll/io.h>
#include <hellepoll/loop.h>
#include <hellepoll/timer.h>

#include "common.h"

struct pair {
    struct hp_io io;
    struct hp_timer timer;
    uint64_t timeout_ms;
    unsigned idx;
};

static struct bench_ring ring;
static struct pair *pairs;
static bool use_timers;

static void on_timer(struct hp_timer *t)
{
    (void)t;
    bench_fired++;
}

static void on_read(struct hp_io *io, unsigned events, int status)
{
    struct pair *p = hp_container_of(io, struct pair, io);
    (void)events;
    (void)status;

    if (use_timers)
        hp_timer_start(&p->timer, p->timeout_ms, 0);
    if (bench_pass(&ring, p->idx))
        hp_loop_stop(io->loop);
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    struct hp_loop *loop = NULL;
    int err;

    bench_parse(argc, argv, &o);
    bench_ring_init(&ring, &o);
    use_timers = o.timers;

    if ((err = hp_loop_new(&loop, NULL)) != 0)
        bench_die("hp_loop_new", err);
    pairs = calloc(o.n, sizeof(*pairs));
    if (pairs == NULL)
        bench_die("calloc", ENOMEM);
    for (unsigned i = 0; i < o.n; i++) {
        struct pair *p = &pairs[i];
        p->idx = i;
        p->timeout_ms = ring.timeout_ms[i];
        hp_io_init(loop, &p->io, ring.rd[i], on_read);
        if ((err = hp_io_start(&p->io, HP_READABLE)) != 0)
            bench_die("hp_io_start", err);
        hp_timer_init(loop, &p->timer, on_timer);
        if (o.timers && (err = hp_timer_start(&p->timer, p->timeout_ms, 0)) != 0)
            bench_die("hp_timer_start", err);
    }
    bench_ring_seed(&ring, o.a);

    bench_phase_reset(o.warmup);
    if (o.warmup && (err = hp_loop_run(loop)) != 0)
        bench_die("hp_loop_run", err);
    bench_phase_reset(o.events);
    bench_timed_begin();
    err = hp_loop_run(loop);
    bench_timed_end();
    if (err != 0)
        bench_die("hp_loop_run", err);
    bench_report("hellepoll", hp_loop_backend(loop), &o);

    for (unsigned i = 0; i < o.n; i++) {
        hp_io_stop(&pairs[i].io);
        hp_timer_stop(&pairs[i].timer);
    }
    if ((err = hp_loop_free(loop)) != 0)
        bench_die("hp_loop_free", err);
    free(pairs);
    bench_ring_close(&ring);
    return 0;
}
