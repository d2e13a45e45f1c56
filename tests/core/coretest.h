/*
 * coretest.h - helpers shared by the core tests only (tests/core), on top of
 * tests/support/testutil.h: a counting allocator that can be told to fail,
 * a log sink that counts the "sate the stream" report, a monotonic clock,
 * a descriptor census and a predicate-driven run loop. Nothing here sleeps.
 */
#ifndef HP_CORETEST_H
#define HP_CORETEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/hellepoll.h>

/*
 * Honour CT_FILTER / CT_SKIP (cmocka glob patterns over test names) so a
 * single test can be run by hand: CT_FILTER='*reset*' ./test_core_tcp
 */
void ct_apply_filters(void);

/* Milliseconds since an arbitrary point, from CLOCK_MONOTONIC. */
uint64_t ct_now_ms(void);

/* A condition for ct_run_until(). */
typedef bool ct_pred(void *arg);

/*
 * Run iterations of at most 50 ms until pred(arg) holds; fail the test after
 * HP_TEST_DEADLINE_MS. Also fails if an iteration returns an error.
 */
void ct_run_until(struct hp_loop *loop, ct_pred *pred, void *arg);

/* Run @p n non-blocking iterations, failing the test if one returns an error. */
void ct_run_nowait(struct hp_loop *loop, unsigned n);

/*
 * A watchdog for hp_loop_run(): if it has not been stopped within @p ms, a
 * thread posts a callback that calls hp_loop_stop(), so a loop that blocks
 * with nothing left to wait for fails the test instead of hanging it. Only
 * one at a time. ct_watchdog_stop() returns true if the watchdog had to fire.
 */
void ct_watchdog_start(struct hp_loop *loop, unsigned ms);
bool ct_watchdog_stop(void);

/* hp_loop_run() under a watchdog; fails the test if the watchdog fired. */
void ct_run_guarded(struct hp_loop *loop);

/*
 * An hp_allocator that counts live blocks and, once armed, fails every
 * allocation after a given number of successful ones. Thread-safe.
 */
struct ct_alloc {
    pthread_mutex_t mu;
    size_t live;     /* blocks allocated and not yet freed */
    size_t allocs;   /* successful allocations of a new block */
    size_t failures; /* allocation requests refused */
    long budget;     /* allocations still allowed; negative: unlimited */
};

void ct_alloc_init(struct ct_alloc *a);
void ct_alloc_destroy(struct ct_alloc *a);

/* The hooks to put in hp_loop_opts.alloc. */
struct hp_allocator ct_alloc_hooks(struct ct_alloc *a);

/* Allow @p n more allocations, then fail them all; n < 0 disarms. */
void ct_alloc_fail_after(struct ct_alloc *a, long n);

size_t ct_alloc_live(struct ct_alloc *a);
size_t ct_alloc_failures(struct ct_alloc *a);

/* A log sink that keeps every message's text, counted, for assertions. */
struct ct_log {
    unsigned count; /* messages received */
    unsigned sate;  /* of which mention "sate the stream" */
    enum hp_log_level worst;
    char last[512];
};

void ct_log_cb(void *ctx, enum hp_log_level level, const char *file, int line, const char *msg);

/*
 * A loop logging everything (level HP_LOG_DEBUG) to @p log (may be NULL),
 * with @p alloc (may be NULL for libc) and @p max_events (0: default).
 * Fails the test if the loop cannot be created.
 */
struct hp_loop *ct_loop_new(struct ct_log *log, struct ct_alloc *alloc, unsigned max_events);

/* How many descriptors below the soft RLIMIT_NOFILE (at most 65536) are open. */
size_t ct_count_open_fds(void);

/* The name of the driver the tests were configured for ("" if unknown). */
const char *ct_expected_backend(void);

/* Fill @p buf with a pattern that depends on @p seed and the absolute offset. */
void ct_pattern_fill(unsigned char *buf, size_t len, uint32_t seed, uint64_t offset);

/* Check @p buf against ct_pattern_fill(); returns the first bad index or len. */
size_t ct_pattern_check(const unsigned char *buf, size_t len, uint32_t seed, uint64_t offset);

#endif
