/*
 * bench/pg/hp_pg_bench.c - queries per second of the pg module: C concurrent
 * callers (default 64) on ONE pooled connection, each running the prepared
 * "SELECT randomnumber FROM world WHERE id = $1" with a random id and
 * starting its next query from the callback of the previous one. Answers are
 * checked (one row, an integer). Prints one RESULT line.
 *
 *   hp_pg_bench -c CONNINFO [-n CALLERS] [-d SECONDS | -q QUERIES] [-w WARMUP] [-K]
 *
 * -K: the pool's no_cork (each query written by itself, no TCP_CORK batching).
 *
 * Under callgrind only the measured phase is counted
 * (CALLGRIND_START/STOP_INSTRUMENTATION; run with --instr-atstart=no).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/pg.h>

struct caller {
    struct bench *b;
    uint64_t rng;
    char id[12];
};

struct bench {
    struct hp_loop *loop;
    struct hp_pg_pool *pool;
    uint64_t done, target, errors, bad;
    unsigned active;
    bool measuring, stop;
};

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void on_answer(const struct hp_pg_result *res, int status, void *arg);

/* The id as decimal text (what pgbench's \set and substitution do for it). */
static void utoa(char *p, unsigned v)
{
    char tmp[12];
    int n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    *p = '\0';
}

static void issue(struct caller *c)
{
    const char *v[1] = {c->id};
    int err;

    utoa(c->id, (unsigned)(xorshift(&c->rng) % 10000) + 1);
    err = hp_pg_query_prepared(c->b->pool, "world", "SELECT randomnumber FROM world WHERE id = $1",
                               1, v, NULL, 0, on_answer, c);
    if (err) {
        fprintf(stderr, "query: %s\n", hp_strerror(err));
        exit(1);
    }
    c->b->active++;
}

static void on_answer(const struct hp_pg_result *res, int status, void *arg)
{
    struct caller *c = arg;
    struct bench *b = c->b;
    int n;

    b->active--;
    if (status != 0) {
        if (b->errors++ < 5)
            fprintf(stderr, "error: %s\n", hp_pg_result_error(res));
    } else if (hp_pg_result_rows(res) != 1 || hp_pg_result_int(res, 0, 0, &n) != 0) {
        b->bad++;
    }
    b->done++;
    if (b->done >= b->target || b->stop) {
        if (b->active == 0)
            hp_loop_stop(b->loop);
        return;
    }
    issue(c);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void on_deadline(struct hp_timer *t)
{
    struct bench *b = t->data;

    b->stop = true;
}

/* Run until @p target answers (or the deadline, if @p secs > 0). */
static void phase(struct bench *b, struct caller *cs, unsigned n, uint64_t target, double secs)
{
    struct hp_timer deadline;

    b->done = 0;
    b->target = target;
    b->stop = false;
    hp_timer_init(b->loop, &deadline, on_deadline);
    deadline.data = b;
    if (secs > 0)
        hp_timer_start(&deadline, (uint64_t)(secs * 1000), 0);
    for (unsigned i = 0; i < n; i++)
        issue(&cs[i]);
    hp_loop_run(b->loop);
    hp_timer_stop(&deadline);
}

int main(int argc, char **argv)
{
    struct hp_pg_pool_opts o = {.min_conns = 1, .max_conns = 1};
    struct bench b = {0};
    struct caller *cs;
    unsigned n = 64;
    uint64_t queries = 0, warmup = 2000;
    double secs = 0, t0, c0, t1, c1;
    int opt;

    while ((opt = getopt(argc, argv, "c:n:d:q:w:KL")) != -1) {
        switch (opt) {
        case 'c':
            o.conninfo = optarg;
            break;
        case 'n':
            n = (unsigned)atoi(optarg);
            break;
        case 'd':
            secs = atof(optarg);
            break;
        case 'q':
            queries = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            warmup = strtoull(optarg, NULL, 10);
            break;
        case 'K':
            o.no_cork = true;
            break;
        case 'L':
            o.libpq_io = true;
            break;
        default:
            fprintf(stderr, "usage: %s -c CONNINFO [-n CALLERS] [-d S | -q N] [-w N] [-K] [-L]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!o.conninfo || n == 0 || (!queries && secs <= 0))
        return 2;
    o.max_pipeline = n;
    if (hp_loop_new(&b.loop, NULL) != 0 || hp_pg_pool_new(&b.pool, b.loop, &o) != 0)
        return 1;
    cs = calloc(n, sizeof(*cs));
    for (unsigned i = 0; i < n; i++) {
        cs[i].b = &b;
        cs[i].rng = 0x9E3779B97F4A7C15ull * (i + 1);
    }
    phase(&b, cs, n, warmup, 0); /* connects and prepares */
    b.errors = b.bad = 0;
    t0 = now_s();
    c0 = cpu_s();
    CALLGRIND_START_INSTRUMENTATION;
    phase(&b, cs, n, queries ? queries : UINT64_MAX, queries ? 0 : secs);
    CALLGRIND_STOP_INSTRUMENTATION;
    t1 = now_s();
    c1 = cpu_s();
    printf("RESULT client=hellepoll callers=%u queries=%llu secs=%.3f qps=%.0f "
           "client_cpu_us_per_query=%.2f errors=%llu bad=%llu\n",
           n, (unsigned long long)b.done, t1 - t0, (double)b.done / (t1 - t0),
           (c1 - c0) * 1e6 / (double)b.done, (unsigned long long)b.errors,
           (unsigned long long)b.bad);
    hp_pg_pool_free(b.pool);
    hp_loop_free(b.loop);
    free(cs);
    return b.errors || b.bad ? 1 : 0;
}
