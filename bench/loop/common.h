/*
 * common.h - the shared harness of the loop micro-benchmark (bench/loop/).
 *
 * One program per event library (hp.c, ev.c, event.c, uv.c) includes this
 * header, so the workload, the per-event user work and the measurement are
 * byte-for-byte the same and only the loop differs.
 *
 * The workload: N socketpairs form a ring. A bytes are seeded, spread over
 * the pairs. Every pair's read end is watched level-triggered; its read
 * callback reads one byte and writes one byte into the next pair of the
 * ring, so exactly A bytes stay in flight. With timers on, every pair also
 * owns a timer with a fixed random 10-20 s timeout (it never fires) that the
 * callback restarts on every event. One event is one read callback.
 *
 * Measurement: a warm-up run (so lazy registration and first-touch costs are
 * excluded), then the timed event phase, bracketed by clock_gettime() (wall
 * and process CPU time) and by
 * CALLGRIND_START/STOP_INSTRUMENTATION, so under
 * `valgrind --tool=callgrind --instr-atstart=no` only the event phase is
 * counted. Each program prints one line:
 *
 *   RESULT lib=<name> n=<N> a=<A> timers=<0|1> events=<E> ns=<T> ns_per_event=<T/E>
 *          cpu_ns_per_event=<process CPU time/E> backend=<driver> misses=<0> fired=<0>
 *
 * The loop stops itself after the requested number of events; libraries that
 * finish the current batch first may run a few more, so the exact count is
 * reported and used.
 */
#ifndef HP_BENCH_LOOP_COMMON_H
#define HP_BENCH_LOOP_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

/** Command-line parameters, the same for every library. */
struct bench_opts {
    unsigned n;           /* socketpairs in the ring */
    unsigned a;           /* bytes in flight */
    bool timers;          /* restart a per-pair timeout on every event */
    unsigned long events; /* events in the timed phase */
    unsigned long warmup; /* events before it */
    uint32_t seed;        /* for the per-pair timeouts */
};

/** The ring of socketpairs: pair i is read through rd[i], written through wr[i]. */
struct bench_ring {
    unsigned n;
    int *rd;
    int *wr;
    uint32_t *timeout_ms; /* per pair, 10000..20000 */
};

/* Event accounting, shared by the callbacks of every variant. */
static unsigned long bench_count;  /* events (read callbacks) so far */
static unsigned long bench_target; /* stop the loop when bench_count reaches it */
static unsigned long bench_misses; /* callbacks whose read found nothing (should stay 0) */
static unsigned long bench_fired;  /* timer callbacks (should stay 0) */

/* Wall and CPU time of the timed phase; CPU time is not inflated by other processes. */
static uint64_t bench_wall_ns, bench_cpu_ns;

static inline void bench_die(const char *what, int err)
{
    fprintf(stderr, "bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}

static inline void bench_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-n pairs] [-a bytes-in-flight] [-t 0|1] [-e events] [-w warmup] [-s seed]\n"
            "defaults: -n 1000 -a 100 -t 0 -e 1000000 -w events/20 -s 1\n",
            prog);
    exit(2);
}

static inline unsigned long bench_number(const char *prog, const char *s)
{
    char *end = NULL;

    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        bench_usage(prog);
    return v;
}

static inline void bench_parse(int argc, char **argv, struct bench_opts *o)
{
    bool have_warmup = false;

    *o = (struct bench_opts){.n = 1000, .a = 100, .events = 1000000, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0' || arg[2] != '\0' || i + 1 >= argc)
            bench_usage(argv[0]);
        unsigned long v = bench_number(argv[0], argv[++i]);
        switch (arg[1]) {
        case 'n':
            o->n = (unsigned)v;
            break;
        case 'a':
            o->a = (unsigned)v;
            break;
        case 't':
            o->timers = v != 0;
            break;
        case 'e':
            o->events = v;
            break;
        case 'w':
            o->warmup = v;
            have_warmup = true;
            break;
        case 's':
            o->seed = (uint32_t)v;
            break;
        default:
            bench_usage(argv[0]);
        }
    }
    if (o->n < 2 || o->n > 100000 || o->a < 1 || o->events < 1)
        bench_usage(argv[0]);
    if (!have_warmup)
        o->warmup = o->events / 20;
}

/* 18,000 descriptors for 9,000 pairs: raise the soft limit as far as needed. */
static inline void bench_raise_nofile(unsigned n)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)n * 2 + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        bench_die("getrlimit", errno);
    if (rl.rlim_cur >= need)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr, "bench: need %lu descriptors, hard limit is %lu\n", (unsigned long)need,
                (unsigned long)rl.rlim_max);
        exit(1);
    }
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        bench_die("setrlimit", errno);
}

/* xorshift32: deterministic, so every library gets the same timeouts. */
static inline uint32_t bench_rand(uint32_t *state)
{
    uint32_t x = *state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static inline void bench_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        bench_die("fcntl", errno);
}

/* Create the ring (non-blocking AF_UNIX stream socketpairs) and the timeouts. */
static inline void bench_ring_init(struct bench_ring *r, const struct bench_opts *o)
{
    uint32_t state = o->seed ? o->seed : 1;

    bench_raise_nofile(o->n);
    r->n = o->n;
    r->rd = calloc(o->n, sizeof(*r->rd));
    r->wr = calloc(o->n, sizeof(*r->wr));
    r->timeout_ms = calloc(o->n, sizeof(*r->timeout_ms));
    if (r->rd == NULL || r->wr == NULL || r->timeout_ms == NULL)
        bench_die("calloc", ENOMEM);
    for (unsigned i = 0; i < o->n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            bench_die("socketpair", errno);
        bench_nonblock(sv[0]);
        bench_nonblock(sv[1]);
        r->rd[i] = sv[0];
        r->wr[i] = sv[1];
        r->timeout_ms[i] = 10000 + bench_rand(&state) % 10001;
    }
}

/* Put A bytes in flight, spread evenly over the pairs (A > N: several per pair). */
static inline void bench_ring_seed(const struct bench_ring *r, unsigned a)
{
    for (unsigned k = 0; k < a; k++) {
        unsigned i = (unsigned)((unsigned long long)k * r->n / a);
        if (write(r->wr[i], "x", 1) != 1)
            bench_die("seed write", errno);
    }
}

static inline void bench_ring_close(struct bench_ring *r)
{
    for (unsigned i = 0; i < r->n; i++) {
        close(r->rd[i]);
        close(r->wr[i]);
    }
    free(r->rd);
    free(r->wr);
    free(r->timeout_ms);
}

/*
 * The user work of one event, identical in every variant: read one byte from
 * pair i, write one byte into the next pair of the ring. Returns true when
 * the loop should be stopped (the target count was reached).
 */
static inline bool bench_pass(const struct bench_ring *r, unsigned i)
{
    char c;

    if (read(r->rd[i], &c, 1) == 1) {
        unsigned j = i + 1 == r->n ? 0 : i + 1;
        if (write(r->wr[j], &c, 1) != 1)
            bench_die("write", errno);
    } else {
        bench_misses++;
    }
    return ++bench_count == bench_target;
}

static inline uint64_t bench_clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Arm the counter for a phase of @p events events. */
static inline void bench_phase_reset(unsigned long events)
{
    bench_count = 0;
    bench_target = events;
}

/* Start the timed (and, under callgrind, instrumented) part. */
static inline void bench_timed_begin(void)
{
    CALLGRIND_START_INSTRUMENTATION;
    bench_cpu_ns = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    bench_wall_ns = bench_clock_ns(CLOCK_MONOTONIC);
}

static inline void bench_timed_end(void)
{
    bench_wall_ns = bench_clock_ns(CLOCK_MONOTONIC) - bench_wall_ns;
    bench_cpu_ns = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - bench_cpu_ns;
    CALLGRIND_STOP_INSTRUMENTATION;
}

static inline void bench_report(const char *lib, const char *backend, const struct bench_opts *o)
{
    double n = bench_count ? (double)bench_count : 1.0;

    printf("RESULT lib=%s n=%u a=%u timers=%d events=%lu ns=%llu ns_per_event=%.1f "
           "cpu_ns_per_event=%.1f backend=%s misses=%lu fired=%lu\n",
           lib, o->n, o->a, o->timers ? 1 : 0, bench_count, (unsigned long long)bench_wall_ns,
           (double)bench_wall_ns / n, (double)bench_cpu_ns / n, backend, bench_misses, bench_fired);
    fflush(stdout);
}

#endif
