/*
 * tests/core/test_defer.c - deferred callbacks (hp_defer) and cross-thread
 * posts (hp_loop_post): when they run, ordering, cancellation, waking a
 * blocked loop, and many posts from several threads.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>

#include "coretest.h"
#include "testutil.h"

struct cdefer {
    struct hp_defer d;
    size_t ran;
    bool restart;                /* start itself again from the callback */
    struct hp_defer *start_next; /* start this one from the callback */
    bool pending_in_cb;
};

static void on_cdefer(struct hp_defer *d)
{
    struct cdefer *c = hp_container_of(d, struct cdefer, d);

    c->ran++;
    c->pending_in_cb = hp_defer_is_pending(d);
    if (c->restart)
        hp_defer_start(d);
    if (c->start_next)
        hp_defer_start(c->start_next);
}

static void cdefer_init(struct hp_loop *loop, struct cdefer *c)
{
    memset(c, 0, sizeof(*c));
    hp_defer_init(loop, &c->d, on_cdefer);
}

static void test_defer_runs_once_on_the_next_iteration(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct cdefer c;

    (void)state;
    cdefer_init(loop, &c);
    assert_false(hp_defer_is_pending(&c.d));
    hp_defer_start(&c.d);
    assert_true(hp_defer_is_pending(&c.d));
    assert_int_equal(c.ran, 0);
    assert_true(hp_loop_is_alive(loop));
    assert_int_equal(hp_loop_run_once(loop, 0), 1);
    assert_int_equal(c.ran, 1);
    assert_false(c.pending_in_cb);
    assert_false(hp_defer_is_pending(&c.d));
    ct_run_nowait(loop, 3);
    assert_int_equal(c.ran, 1);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
}

static void test_defer_started_twice_runs_once(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct cdefer c;

    (void)state;
    cdefer_init(loop, &c);
    hp_defer_start(&c.d);
    hp_defer_start(&c.d);
    ct_run_nowait(loop, 3);
    assert_int_equal(c.ran, 1);
    hp_test_loop_free(loop);
}

static void test_defer_started_from_a_defer_runs_on_the_iteration_after(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct cdefer a, b;

    (void)state;
    cdefer_init(loop, &a);
    cdefer_init(loop, &b);
    a.start_next = &b.d;
    hp_defer_start(&a.d);
    assert_int_equal(hp_loop_run_once(loop, 0), 1);
    assert_int_equal(a.ran, 1);
    assert_int_equal(b.ran, 0);
    assert_true(hp_defer_is_pending(&b.d));
    assert_int_equal(hp_loop_run_once(loop, 0), 1);
    assert_int_equal(b.ran, 1);
    hp_test_loop_free(loop);
}

struct level_reader {
    struct hp_io io;
    size_t calls;
};

static void on_level_count(struct hp_io *io, unsigned events, int status)
{
    struct level_reader *r = hp_container_of(io, struct level_reader, io);

    (void)events;
    (void)status;
    r->calls++;
}

static void test_defer_restarting_itself_runs_once_per_iteration_without_starving_io(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct level_reader r = {0};
    struct cdefer c;
    int fds[2];

    (void)state;
    hp_test_pipe(fds);
    hp_io_init(loop, &r.io, fds[0], on_level_count);
    assert_int_equal(hp_io_start(&r.io, HP_READABLE), 0);
    hp_test_write_all(fds[1], "x", 1);
    cdefer_init(loop, &c);
    c.restart = true;
    hp_defer_start(&c.d);
    ct_run_nowait(loop, 5);
    assert_int_equal(c.ran, 5);
    assert_int_equal(r.calls, 5); /* level-triggered and never read: every iteration */
    assert_true(hp_defer_is_pending(&c.d));
    hp_defer_stop(&c.d);
    assert_false(hp_defer_is_pending(&c.d));
    ct_run_nowait(loop, 2);
    assert_int_equal(c.ran, 5);
    hp_io_stop(&r.io);
    hp_test_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

static void test_defer_stopped_before_it_runs_does_not_run(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct cdefer c;

    (void)state;
    cdefer_init(loop, &c);
    hp_defer_stop(&c.d); /* stopping an idle defer does nothing */
    hp_defer_start(&c.d);
    hp_defer_stop(&c.d);
    assert_false(hp_defer_is_pending(&c.d));
    assert_false(hp_loop_is_alive(loop));
    ct_run_nowait(loop, 3);
    assert_int_equal(c.ran, 0);
    hp_test_loop_free(loop);
}

/* Two pending defers; whichever runs first stops and frees the other. */
static struct hp_defer *duel[2];
static size_t duel_ran;

static void on_duel(struct hp_defer *d)
{
    struct hp_defer *other = d == duel[0] ? duel[1] : duel[0];

    duel_ran++;
    assert_non_null(other);
    hp_defer_stop(other);
    memset(other, 0xa5, sizeof(*other));
    free(other);
    /* And free itself, too. */
    duel[0] = duel[1] = NULL;
    memset(d, 0xa5, sizeof(*d));
    free(d);
}

static void test_defer_callback_may_stop_and_free_another_pending_defer_and_itself(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);

    (void)state;
    duel_ran = 0;
    for (int i = 0; i < 2; i++) {
        duel[i] = malloc(sizeof(*duel[i]));
        assert_non_null(duel[i]);
        hp_defer_init(loop, duel[i], on_duel);
        hp_defer_start(duel[i]);
    }
    ct_run_nowait(loop, 3);
    assert_int_equal(duel_ran, 1);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
}

static void on_unexpected_io(struct hp_io *io, unsigned events, int status)
{
    (void)io;
    fail_msg("unexpected io callback: events %#x status %d", events, status);
}

static void on_safety_timer(struct hp_timer *t)
{
    (void)t;
}

static void test_defer_pending_keeps_a_blocking_iteration_from_blocking(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_timer safety;
    struct hp_io io;
    struct cdefer c;
    int fds[2];
    uint64_t t0;

    (void)state;
    hp_test_pipe(fds);
    hp_io_init(loop, &io, fds[0], on_unexpected_io);
    assert_int_equal(hp_io_start(&io, HP_READABLE), 0);
    /* Bounds the test if the loop wrongly blocks. */
    hp_timer_init(loop, &safety, on_safety_timer);
    assert_int_equal(hp_timer_start(&safety, 3000, 0), 0);
    cdefer_init(loop, &c);
    hp_defer_start(&c.d);
    t0 = ct_now_ms();
    assert_true(hp_loop_run_once(loop, -1) >= 1);
    assert_true(ct_now_ms() - t0 < 2000);
    assert_int_equal(c.ran, 1);
    hp_timer_stop(&safety);
    hp_io_stop(&io);
    hp_test_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

static void test_defer_pending_keeps_run_going(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct cdefer a, b;

    (void)state;
    cdefer_init(loop, &a);
    cdefer_init(loop, &b);
    a.start_next = &b.d;
    hp_defer_start(&a.d);
    ct_run_guarded(loop);
    assert_int_equal(a.ran, 1);
    assert_int_equal(b.ran, 1);
    hp_test_loop_free(loop);
}

/* ---- posts ------------------------------------------------------------ */

struct post_log {
    int status[1100];
    uintptr_t arg[1100];
    size_t n;
    struct hp_loop *loop;
    size_t chain; /* posts still to make from the callback */
};

static struct post_log plog;

static void on_post(struct hp_loop *loop, int status, void *arg)
{
    assert_ptr_equal(loop, plog.loop);
    assert_true(plog.n < 1100);
    plog.status[plog.n] = status;
    plog.arg[plog.n] = (uintptr_t)arg;
    plog.n++;
    if (status == 0 && plog.chain > 0) {
        plog.chain--;
        assert_int_equal(hp_loop_post(loop, on_post, (void *)((uintptr_t)arg + 1)), 0);
    }
}

static void test_post_from_the_loop_thread_runs_later_in_order_with_status_0(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);

    (void)state;
    memset(&plog, 0, sizeof(plog));
    plog.loop = loop;
    for (uintptr_t i = 0; i < 1000; i++)
        assert_int_equal(hp_loop_post(loop, on_post, (void *)i), 0);
    assert_int_equal(plog.n, 0); /* never inside the call */
    assert_true(hp_loop_is_alive(loop));
    hp_test_run_until_count(loop, &plog.n, 1000);
    for (size_t i = 0; i < 1000; i++) {
        assert_int_equal(plog.status[i], 0);
        assert_int_equal(plog.arg[i], i);
    }
    hp_test_loop_free(loop);
}

static void test_post_chain_keeps_run_going_until_the_last(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);

    (void)state;
    memset(&plog, 0, sizeof(plog));
    plog.loop = loop;
    plog.chain = 3;
    assert_int_equal(hp_loop_post(loop, on_post, (void *)(uintptr_t)10), 0);
    ct_run_guarded(loop);
    assert_int_equal(plog.n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(plog.arg[i], 10 + i);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
}

static void test_post_still_queued_at_free_runs_with_ecanceled(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);

    (void)state;
    memset(&plog, 0, sizeof(plog));
    plog.loop = loop;
    for (uintptr_t i = 0; i < 3; i++)
        assert_int_equal(hp_loop_post(loop, on_post, (void *)i), 0);
    assert_int_equal(hp_loop_free(loop), 0);
    assert_int_equal(plog.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(plog.status[i], -ECANCELED);
        assert_int_equal(plog.arg[i], i);
    }
}

/* A start gate for threads (pthread barriers are not on macOS). */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned waiting, count;
};

static void gate_init(struct gate *g, unsigned count)
{
    assert_int_equal(pthread_mutex_init(&g->lock, NULL), 0);
    assert_int_equal(pthread_cond_init(&g->cond, NULL), 0);
    g->waiting = 0;
    g->count = count;
}

/* Block until @p count threads have arrived (bounded by the test's CTest timeout). */
static void gate_wait(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    if (++g->waiting == g->count)
        pthread_cond_broadcast(&g->cond);
    while (g->waiting < g->count)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void gate_destroy(struct gate *g)
{
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

/* ---- posts from other threads -------------------------------------------- */

#ifdef __linux__
/* 'S' (interruptible sleep) for a thread of this process, read from procfs. */
static bool thread_is_sleeping(pid_t tid)
{
    char path[64], buf[512];
    const char *p;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    f = fopen(path, "r");
    if (!f)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'S';
}

static pid_t current_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}
#else
static bool thread_is_sleeping(pid_t tid)
{
    (void)tid;
    return true;
}

static pid_t current_tid(void)
{
    return 0;
}
#endif

struct waker {
    struct hp_loop *loop;
    pid_t loop_tid;
    atomic_int about_to_block;
    atomic_int posted;
    bool ran;
    int status;
};

static void on_wake_post(struct hp_loop *loop, int status, void *arg)
{
    struct waker *w = arg;

    (void)loop;
    w->ran = true;
    w->status = status;
}

static void *waker_main(void *arg)
{
    struct waker *w = arg;
    uint64_t deadline = ct_now_ms() + 5000;

    while (!atomic_load(&w->about_to_block) && ct_now_ms() < deadline)
        sched_yield();
    /*
     * Wait (bounded) until the loop's thread is asleep in the driver's
     * wait, so the post has to wake it; posting earlier would be fine too.
     */
    deadline = ct_now_ms() + 1000;
    while (!thread_is_sleeping(w->loop_tid) && ct_now_ms() < deadline)
        sched_yield();
    if (hp_loop_post(w->loop, on_wake_post, w) == 0)
        atomic_store(&w->posted, 1);
    return NULL;
}

static void test_post_from_another_thread_wakes_a_loop_blocked_in_run_once(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct waker w = {.loop = loop};
    struct hp_timer safety;
    struct hp_io io;
    pthread_t th;
    int fds[2];
    uint64_t t0;

    (void)state;
    atomic_init(&w.about_to_block, 0);
    atomic_init(&w.posted, 0);
    w.loop_tid = current_tid();
    hp_test_pipe(fds);
    hp_io_init(loop, &io, fds[0], on_unexpected_io);
    assert_int_equal(hp_io_start(&io, HP_READABLE), 0);
    hp_timer_init(loop, &safety, on_safety_timer);
    assert_int_equal(hp_timer_start(&safety, 8000, 0), 0);
    assert_int_equal(pthread_create(&th, NULL, waker_main, &w), 0);

    t0 = ct_now_ms();
    atomic_store(&w.about_to_block, 1);
    assert_true(hp_loop_run_once(loop, -1) >= 0);
    /* The post may run in the iteration it woke or in the next one. */
    for (int i = 0; i < 3 && !w.ran; i++)
        assert_true(hp_loop_run_once(loop, 0) >= 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&w.posted), 1);
    assert_true(w.ran);
    assert_int_equal(w.status, 0);
    assert_true(ct_now_ms() - t0 < 6000);
    hp_timer_stop(&safety);
    hp_io_stop(&io);
    hp_test_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

enum { POSTERS = 4, POSTS_EACH = 20000 };

struct poster {
    struct hp_loop *loop;
    uintptr_t id;
    struct gate *start;
    int failures;
};

struct fanin {
    size_t total;
    uintptr_t next[POSTERS];
    size_t misorders;
    size_t bad_status;
};

static struct fanin fanin;

static void on_fanin(struct hp_loop *loop, int status, void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    uintptr_t id = v >> 24, seq = v & 0xffffffu;

    (void)loop;
    if (status != 0)
        fanin.bad_status++;
    assert_true(id < POSTERS);
    if (seq != fanin.next[id])
        fanin.misorders++;
    fanin.next[id] = seq + 1;
    fanin.total++;
}

static void *poster_main(void *arg)
{
    struct poster *p = arg;

    gate_wait(p->start);
    for (uintptr_t i = 0; i < POSTS_EACH; i++) {
        if (hp_loop_post(p->loop, on_fanin, (void *)(p->id << 24 | i)) != 0)
            p->failures++;
    }
    return NULL;
}

static void test_post_from_several_threads_arrives_exactly_once_in_per_thread_order(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct poster p[POSTERS];
    pthread_t th[POSTERS];
    struct gate start;

    (void)state;
    memset(&fanin, 0, sizeof(fanin));
    gate_init(&start, POSTERS + 1);
    for (uintptr_t i = 0; i < POSTERS; i++) {
        p[i] = (struct poster){.loop = loop, .id = i, .start = &start};
        assert_int_equal(pthread_create(&th[i], NULL, poster_main, &p[i]), 0);
    }
    gate_wait(&start);
    /* Drain while they post, then until all have arrived. */
    hp_test_run_until_count(loop, &fanin.total, (size_t)POSTERS * POSTS_EACH);
    for (int i = 0; i < POSTERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(p[i].failures, 0);
        assert_int_equal(fanin.next[i], POSTS_EACH);
    }
    ct_run_nowait(loop, 2);
    assert_int_equal(fanin.total, (size_t)POSTERS * POSTS_EACH);
    assert_int_equal(fanin.misorders, 0);
    assert_int_equal(fanin.bad_status, 0);
    gate_destroy(&start);
    hp_test_loop_free(loop);
}

struct stopper {
    struct hp_loop *loop;
    struct hp_io *io;
    bool stopped;
};

static void on_stop_post(struct hp_loop *loop, int status, void *arg)
{
    struct stopper *s = arg;

    assert_int_equal(status, 0);
    s->stopped = true;
    hp_loop_stop(loop);
}

static void *stopper_main(void *arg)
{
    struct stopper *s = arg;

    if (hp_loop_post(s->loop, on_stop_post, s) != 0)
        abort();
    return NULL;
}

static void test_post_from_another_thread_can_stop_a_running_loop(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct stopper s = {.loop = loop};
    struct hp_timer safety;
    struct hp_io io;
    pthread_t th;
    int fds[2];

    (void)state;
    hp_test_pipe(fds);
    hp_io_init(loop, &io, fds[0], on_unexpected_io);
    assert_int_equal(hp_io_start(&io, HP_READABLE), 0);
    hp_timer_init(loop, &safety, on_safety_timer);
    assert_int_equal(hp_timer_start(&safety, 8000, 0), 0);
    assert_int_equal(pthread_create(&th, NULL, stopper_main, &s), 0);
    assert_int_equal(hp_loop_run(loop), 0);
    assert_true(s.stopped);
    assert_true(hp_timer_is_active(&safety)); /* stopped by the post, not the timer */
    assert_int_equal(pthread_join(th, NULL), 0);
    hp_timer_stop(&safety);
    hp_io_stop(&io);
    hp_test_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defer_runs_once_on_the_next_iteration),
        cmocka_unit_test(test_defer_started_twice_runs_once),
        cmocka_unit_test(test_defer_started_from_a_defer_runs_on_the_iteration_after),
        cmocka_unit_test(test_defer_restarting_itself_runs_once_per_iteration_without_starving_io),
        cmocka_unit_test(test_defer_stopped_before_it_runs_does_not_run),
        cmocka_unit_test(test_defer_callback_may_stop_and_free_another_pending_defer_and_itself),
        cmocka_unit_test(test_defer_pending_keeps_a_blocking_iteration_from_blocking),
        cmocka_unit_test(test_defer_pending_keeps_run_going),
        cmocka_unit_test(test_post_from_the_loop_thread_runs_later_in_order_with_status_0),
        cmocka_unit_test(test_post_chain_keeps_run_going_until_the_last),
        cmocka_unit_test(test_post_still_queued_at_free_runs_with_ecanceled),
        cmocka_unit_test(test_post_from_another_thread_wakes_a_loop_blocked_in_run_once),
        cmocka_unit_test(test_post_from_several_threads_arrives_exactly_once_in_per_thread_order),
        cmocka_unit_test(test_post_from_another_thread_can_stop_a_running_loop),
    };

    ct_apply_filters();
    return cmocka_run_group_tests_name("core/defer", tests, NULL, NULL);
}
