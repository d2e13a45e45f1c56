/*
 * common.h - timing helpers shared by the client benchmarks: wall clock,
 * user-space CPU of this process (getrusage), and callgrind toggles so that
 * `valgrind --tool=callgrind --instr-atstart=no` counts only the measured
 * phase.
 */
#ifndef BENCH_CLIENTS_COMMON_H
#define BENCH_CLIENTS_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <valgrind/callgrind.h>

struct bench_clock {
    double wall, user;
};

static inline struct bench_clock bench_now(void)
{
    struct timespec ts;
    struct rusage ru;
    struct bench_clock c;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    getrusage(RUSAGE_SELF, &ru);
    c.wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    c.user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    return c;
}

static inline void bench_start(struct bench_clock *c)
{
    *c = bench_now();
    CALLGRIND_ZERO_STATS;
    CALLGRIND_START_INSTRUMENTATION;
}

/* Print one result line: name, operations, ops/s, user ns/op. */
static inline void bench_stop(const struct bench_clock *c0, const char *name, uint64_t ops)
{
    struct bench_clock c1;

    CALLGRIND_STOP_INSTRUMENTATION; /* the profile written at exit holds just this phase */
    c1 = bench_now();
    printf("%s ops=%llu wall_s=%.3f user_s=%.3f ops_per_s=%.0f user_ns_per_op=%.1f\n", name,
           (unsigned long long)ops, c1.wall - c0->wall, c1.user - c0->user,
           (double)ops / (c1.wall - c0->wall), (c1.user - c0->user) * 1e9 / (double)ops);
    fflush(stdout);
}

#endif
