/*
 * coretest.c - helpers shared by the core tests; see coretest.h. These run
 * inside cmocka tests, so failures are reported with fail_msg(), which
 * longjmps out of the test.
 */
#include "coretest.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

void ct_apply_filters(void)
{
    const char *f = getenv("CT_FILTER"), *s = getenv("CT_SKIP");

    if (f && *f)
        cmocka_set_test_filter(f);
    if (s && *s)
        cmocka_set_skip_filter(s);
}

uint64_t ct_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void ct_run_until(struct hp_loop *loop, ct_pred *pred, void *arg)
{
    uint64_t deadline = ct_now_ms() + HP_TEST_DEADLINE_MS;

    while (!pred(arg)) {
        int rc = hp_loop_run_once(loop, 50);

        if (rc < 0)
            fail_msg("hp_loop_run_once failed: %s", hp_err_name(rc));
        if (ct_now_ms() > deadline)
            fail_msg("condition not reached within %d ms", HP_TEST_DEADLINE_MS);
    }
}

void ct_run_nowait(struct hp_loop *loop, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int rc = hp_loop_run_once(loop, 0);

        if (rc < 0)
            fail_msg("hp_loop_run_once failed: %s", hp_err_name(rc));
    }
}

/* ---- watchdog ---------------------------------------------------------- */

static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct hp_loop *loop;
    unsigned ms;
    bool done, fired, running;
} dog = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void on_dog_post(struct hp_loop *loop, int status, void *arg)
{
    (void)arg;
    if (status == 0)
        hp_loop_stop(loop);
}

static void *dog_main(void *arg)
{
    struct timespec until;
    int rc = 0;

    (void)arg;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += dog.ms / 1000;
    until.tv_nsec += (long)(dog.ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&dog.mu);
    while (!dog.done && rc == 0)
        rc = pthread_cond_timedwait(&dog.cv, &dog.mu, &until);
    if (!dog.done) {
        dog.fired = true;
        (void)hp_loop_post(dog.loop, on_dog_post, NULL);
    }
    pthread_mutex_unlock(&dog.mu);
    return NULL;
}

void ct_watchdog_start(struct hp_loop *loop, unsigned ms)
{
    assert_false(dog.running);
    dog.loop = loop;
    dog.ms = ms;
    dog.done = dog.fired = false;
    dog.running = true;
    assert_int_equal(pthread_create(&dog.thread, NULL, dog_main, NULL), 0);
}

bool ct_watchdog_stop(void)
{
    assert_true(dog.running);
    pthread_mutex_lock(&dog.mu);
    dog.done = true;
    pthread_cond_signal(&dog.cv);
    pthread_mutex_unlock(&dog.mu);
    pthread_join(dog.thread, NULL);
    dog.running = false;
    return dog.fired;
}

void ct_run_guarded(struct hp_loop *loop)
{
    int rc;

    ct_watchdog_start(loop, 5000);
    rc = hp_loop_run(loop);
    if (ct_watchdog_stop())
        fail_msg("hp_loop_run() did not return within 5000 ms (blocked with nothing alive?)");
    assert_int_equal(rc, 0);
}

/* ---- allocator ------------------------------------------------------- */

static bool take_budget(struct ct_alloc *a)
{
    bool ok = true;

    pthread_mutex_lock(&a->mu);
    if (a->budget == 0) {
        a->failures++;
        ok = false;
    } else if (a->budget > 0) {
        a->budget--;
    }
    pthread_mutex_unlock(&a->mu);
    return ok;
}

static void *ct_realloc(void *ctx, void *ptr, size_t size)
{
    struct ct_alloc *a = ctx;
    void *p;

    if (!take_budget(a))
        return NULL;
    /* realloc(p, 0) is implementation-defined; keep every block non-NULL. */
    p = realloc(ptr, size ? size : 1);
    if (p && !ptr) {
        pthread_mutex_lock(&a->mu);
        a->live++;
        a->allocs++;
        pthread_mutex_unlock(&a->mu);
    }
    return p;
}

static void ct_free(void *ctx, void *ptr)
{
    struct ct_alloc *a = ctx;

    if (!ptr)
        return;
    pthread_mutex_lock(&a->mu);
    if (a->live == 0) {
        pthread_mutex_unlock(&a->mu);
        fail_msg("allocator: free of a block it never handed out");
    }
    a->live--;
    pthread_mutex_unlock(&a->mu);
    free(ptr);
}

void ct_alloc_init(struct ct_alloc *a)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    a->budget = -1;
}

void ct_alloc_destroy(struct ct_alloc *a)
{
    pthread_mutex_destroy(&a->mu);
}

struct hp_allocator ct_alloc_hooks(struct ct_alloc *a)
{
    struct hp_allocator h = {.realloc = ct_realloc, .free = ct_free, .ctx = a};

    return h;
}

void ct_alloc_fail_after(struct ct_alloc *a, long n)
{
    pthread_mutex_lock(&a->mu);
    a->budget = n < 0 ? -1 : n;
    pthread_mutex_unlock(&a->mu);
}

size_t ct_alloc_live(struct ct_alloc *a)
{
    size_t n;

    pthread_mutex_lock(&a->mu);
    n = a->live;
    pthread_mutex_unlock(&a->mu);
    return n;
}

size_t ct_alloc_failures(struct ct_alloc *a)
{
    size_t n;

    pthread_mutex_lock(&a->mu);
    n = a->failures;
    pthread_mutex_unlock(&a->mu);
    return n;
}

/* ---- log ----------------------------------------------------------------- */

void ct_log_cb(void *ctx, enum hp_log_level level, const char *file, int line, const char *msg)
{
    struct ct_log *log = ctx;

    (void)file;
    (void)line;
    if (!log)
        return;
    if (log->count == 0 || level < log->worst)
        log->worst = level;
    log->count++;
    if (strstr(msg, "sate the stream"))
        log->sate++;
    snprintf(log->last, sizeof(log->last), "%s", msg);
}

struct hp_loop *ct_loop_new(struct ct_log *log, struct ct_alloc *alloc, unsigned max_events)
{
    struct hp_loop_opts opts;
    struct hp_loop *loop = NULL;
    int rc;

    memset(&opts, 0, sizeof(opts));
    if (alloc)
        opts.alloc = ct_alloc_hooks(alloc);
    opts.log = ct_log_cb;
    opts.log_ctx = log;
    opts.log_level = HP_LOG_DEBUG;
    opts.max_events = max_events;
    rc = hp_loop_new(&loop, &opts);
    if (rc != 0)
        fail_msg("hp_loop_new failed: %s", hp_err_name(rc));
    assert_non_null(loop);
    return loop;
}

/* ---- descriptors ------------------------------------------------------- */

size_t ct_count_open_fds(void)
{
    struct rlimit rl;
    size_t n = 0;
    int max = 65536;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max)
        max = (int)rl.rlim_cur;
    for (int fd = 0; fd < max; fd++) {
        if (fcntl(fd, F_GETFD) != -1)
            n++;
    }
    return n;
}

const char *ct_expected_backend(void)
{
    const char *b = getenv("HP_TEST_BACKEND");

    return b ? b : "";
}

/* ---- byte patterns ----------------------------------------------------- */

static unsigned char pattern_byte(uint32_t seed, uint64_t off)
{
    uint32_t h = (uint32_t)(off >> 2) * 2654435761u + seed * 0x9e3779b9u + 0x7f4a7c15u;

    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return (unsigned char)(h >> ((off & 3u) * 8u));
}

void ct_pattern_fill(unsigned char *buf, size_t len, uint32_t seed, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern_byte(seed, offset + i);
}

size_t ct_pattern_check(const unsigned char *buf, size_t len, uint32_t seed, uint64_t offset)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != pattern_byte(seed, offset + i))
            return i;
    }
    return len;
}
