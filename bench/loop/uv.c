/*
 * uv.c - the loop benchmark on libuv (see common.h for the workload).
 *
 * One uv_poll_t per read end (libuv's readiness handle; level-triggered on
 * epoll) with the callback doing its own read(), and, with timers on, one
 * uv_timer_t per pair restarted with uv_timer_start() on every read.
 */
#include <uv.h>

#include "common.h"

struct pair {
    uv_poll_t poll;
    uv_timer_t timer;
    uint64_t timeout_ms;
    unsigned idx;
};

static struct bench_ring ring;
static struct pair *pairs;
static bool use_timers;

static void on_timer(uv_timer_t *t)
{
    (void)t;
    bench_fired++;
}

static void on_read(uv_poll_t *h, int status, int events)
{
    struct pair *p = (struct pair *)h;
    (void)status;
    (void)events;

    if (use_timers)
        uv_timer_start(&p->timer, on_timer, p->timeout_ms, 0);
    if (bench_pass(&ring, p->idx))
        uv_stop(h->loop);
}

static void on_close(uv_handle_t *h)
{
    (void)h;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    uv_loop_t loop;
    int err;

    bench_parse(argc, argv, &o);
    bench_ring_init(&ring, &o);
    use_timers = o.timers;

    if ((err = uv_loop_init(&loop)) != 0)
        bench_die("uv_loop_init", err);
    pairs = calloc(o.n, sizeof(*pairs));
    if (pairs == NULL)
        bench_die("calloc", ENOMEM);
    for (unsigned i = 0; i < o.n; i++) {
        struct pair *p = &pairs[i];
        p->idx = i;
        p->timeout_ms = ring.timeout_ms[i];
        if ((err = uv_poll_init(&loop, &p->poll, ring.rd[i])) != 0 ||
            (err = uv_poll_start(&p->poll, UV_READABLE, on_read)) != 0)
            bench_die("uv_poll_start", err);
        if (o.timers) {
            if ((err = uv_timer_init(&loop, &p->timer)) != 0 ||
                (err = uv_timer_start(&p->timer, on_timer, p->timeout_ms, 0)) != 0)
                bench_die("uv_timer_start", err);
        }
    }
    bench_ring_seed(&ring, o.a);

    bench_phase_reset(o.warmup);
    if (o.warmup)
        uv_run(&loop, UV_RUN_DEFAULT);
    bench_phase_reset(o.events);
    bench_timed_begin();
    uv_run(&loop, UV_RUN_DEFAULT);
    bench_timed_end();
    bench_report("libuv", "epoll", &o);

    for (unsigned i = 0; i < o.n; i++) {
        uv_close((uv_handle_t *)&pairs[i].poll, on_close);
        if (o.timers)
            uv_close((uv_handle_t *)&pairs[i].timer, on_close);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if ((err = uv_loop_close(&loop)) != 0)
        bench_die("uv_loop_close", err);
    free(pairs);
    bench_ring_close(&ring);
    return 0;
}
