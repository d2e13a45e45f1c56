/* tests/core/test_loop.c - loop lifecycle, iteration, time and the allocator. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>

#include "coretest.h"
#include "testutil.h"

struct counter_timer {
    struct hp_timer t;
    size_t fired;
    size_t stop_after; /* call hp_loop_stop() on this fire; 0: never */
};

static void on_count_timer(struct hp_timer *t)
{
    struct counter_timer *c = hp_container_of(t, struct counter_timer, t);

    c->fired++;
    if (c->stop_after && c->fired == c->stop_after)
        hp_loop_stop(t->loop);
}

static void on_unexpected_io(struct hp_io *io, unsigned events, int status)
{
    (void)io;
    fail_msg("unexpected io callback: events %#x status %d", events, status);
}

static void test_loop_new_with_null_opts_gives_an_empty_loop(void **state)
{
    struct hp_loop *loop = NULL;
    const char *name;

    (void)state;
    assert_int_equal(hp_loop_new(&loop, NULL), 0);
    assert_non_null(loop);
    assert_int_equal(hp_loop_active_handles(loop), 0);
    assert_false(hp_loop_is_alive(loop));
    name = hp_loop_backend(loop);
    assert_non_null(name);
    assert_true(strcmp(name, "epoll") == 0 || strcmp(name, "poll") == 0 ||
                strcmp(name, "kqueue") == 0);
    assert_int_equal(hp_loop_free(loop), 0);
}

static void test_loop_backend_is_the_configured_driver(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);

    (void)state;
    if (ct_expected_backend()[0] == '\0') {
        hp_test_loop_free(loop);
        skip();
    }
    assert_string_equal(hp_loop_backend(loop), ct_expected_backend());
    hp_test_loop_free(loop);
}

static void test_loop_run_returns_at_once_when_nothing_is_active(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);

    (void)state;
    ct_run_guarded(loop);
    hp_test_loop_free(loop);
}

static void test_loop_run_once_returns_zero_callbacks_when_idle(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);

    (void)state;
    assert_int_equal(hp_loop_run_once(loop, 0), 0);
    assert_int_equal(hp_loop_run_once(loop, 0), 0);
    hp_test_loop_free(loop);
}

static void test_loop_run_once_returns_the_number_of_callbacks_run(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct counter_timer c[3];

    (void)state;
    memset(c, 0, sizeof(c));
    for (int i = 0; i < 3; i++) {
        hp_timer_init(loop, &c[i].t, on_count_timer);
        assert_int_equal(hp_timer_start(&c[i].t, 0, 0), 0);
    }
    assert_int_equal(hp_loop_run_once(loop, 0), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c[i].fired, 1);
    assert_int_equal(hp_loop_run_once(loop, 0), 0);
    hp_test_loop_free(loop);
}

static void test_loop_free_returns_ebusy_while_an_io_watcher_is_active(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_io io;
    int fds[2];

    (void)state;
    hp_test_pipe(fds);
    hp_io_init(loop, &io, fds[0], on_unexpected_io);
    assert_int_equal(hp_io_start(&io, HP_READABLE), 0);
    assert_int_equal(hp_loop_free(loop), -EBUSY);
    /* Nothing was freed: the loop still works. */
    assert_int_equal(hp_loop_run_once(loop, 0), 0);
    hp_io_stop(&io);
    hp_test_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

static void test_loop_free_returns_ebusy_while_a_timer_is_active(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct counter_timer c = {0};

    (void)state;
    hp_timer_init(loop, &c.t, on_count_timer);
    assert_int_equal(hp_timer_start(&c.t, 60000, 0), 0);
    assert_int_equal(hp_loop_free(loop), -EBUSY);
    assert_true(hp_timer_is_active(&c.t));
    hp_timer_stop(&c.t);
    hp_test_loop_free(loop);
}

static void test_loop_is_alive_while_a_handle_is_active(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct counter_timer c = {0};
    struct hp_io io;
    int fds[2];
    size_t base = hp_loop_active_handles(loop);

    (void)state;
    assert_false(hp_loop_is_alive(loop));
    hp_timer_init(loop, &c.t, on_count_timer);
    assert_int_equal(hp_timer_start(&c.t, 60000, 0), 0);
    assert_true(hp_loop_is_alive(loop));
    assert_int_equal(hp_loop_active_handles(loop), base + 1);

    hp_test_pipe(fds);
    hp_io_init(loop, &io, fds[0], on_unexpected_io);
    assert_int_equal(hp_io_start(&io, HP_READABLE), 0);
    assert_int_equal(hp_loop_active_handles(loop), base + 2);

    hp_timer_stop(&c.t);
    assert_int_equal(hp_loop_active_handles(loop), base + 1);
    assert_true(hp_loop_is_alive(loop));
    hp_io_stop(&io);
    assert_int_equal(hp_loop_active_handles(loop), base);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

static void test_loop_run_returns_after_the_last_timer_fired(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct counter_timer c[2];

    (void)state;
    memset(c, 0, sizeof(c));
    hp_timer_init(loop, &c[0].t, on_count_timer);
    hp_timer_init(loop, &c[1].t, on_count_timer);
    assert_int_equal(hp_timer_start(&c[0].t, 1, 0), 0);
    assert_int_equal(hp_timer_start(&c[1].t, 5, 0), 0);
    ct_run_guarded(loop);
    assert_int_equal(c[0].fired, 1);
    assert_int_equal(c[1].fired, 1);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
}

/* A timer due at once fires in the iteration's first timer phase; with nothing
 * left, the wait that follows must not block (it would block forever). */
static void test_loop_run_returns_when_its_only_timer_fires_before_the_first_wait(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct counter_timer c;

    (void)state;
    memset(&c, 0, sizeof(c));
    hp_timer_init(loop, &c.t, on_count_timer);
    assert_int_equal(hp_timer_start(&c.t, 0, 0), 0);
    ct_run_guarded(loop);
    assert_int_equal(c.fired, 1);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
}

static void test_loop_stop_from_a_callback_makes_run_return(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct counter_timer c = {.stop_after = 3};

    (void)state;
    hp_timer_init(loop, &c.t, on_count_timer);
    assert_int_equal(hp_timer_start(&c.t, 1, 1), 0);
    ct_run_guarded(loop);
    assert_int_equal(c.fired, 3);
    assert_true(hp_timer_is_active(&c.t));

    /* The loop can be run again afterwards. */
    c.stop_after = 5;
    ct_run_guarded(loop);
    assert_int_equal(c.fired, 5);
    hp_timer_stop(&c.t);
    ct_run_guarded(loop);
    hp_test_loop_free(loop);
}

static void test_loop_now_is_cached_until_updated(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    uint64_t t0 = hp_loop_now(loop);
    uint64_t deadline = ct_now_ms() + 2000;
    uint64_t t1 = t0;

    (void)state;
    /* Let real time pass (a bounded spin, not synchronisation). */
    while (ct_now_ms() < deadline && t1 == t0) {
        assert_int_equal(hp_loop_now(loop), t0);
        hp_loop_update_time(loop);
        t1 = hp_loop_now(loop);
    }
    assert_true(t1 > t0);
    assert_int_equal(hp_loop_now(loop), t1);

    /* An iteration refreshes it too, and it never goes back. */
    deadline = ct_now_ms() + 2000;
    while (ct_now_ms() < deadline && hp_loop_now(loop) == t1)
        assert_true(hp_loop_run_once(loop, 0) >= 0);
    assert_true(hp_loop_now(loop) > t1);
    hp_test_loop_free(loop);
}

static void test_loop_run_once_does_not_block_past_its_timeout(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_io io;
    int fds[2];
    uint64_t t0;

    (void)state;
    hp_test_pipe(fds);
    hp_io_init(loop, &io, fds[0], on_unexpected_io);
    assert_int_equal(hp_io_start(&io, HP_READABLE), 0);
    t0 = ct_now_ms();
    assert_int_equal(hp_loop_run_once(loop, 30), 0);
    assert_true(ct_now_ms() - t0 < 2000);
    hp_io_stop(&io);
    hp_test_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

static void test_loop_run_once_blocking_wakes_for_the_next_timer(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct counter_timer c = {0};
    struct hp_io io;
    int fds[2];
    unsigned iterations = 0;
    uint64_t t0 = ct_now_ms();

    (void)state;
    hp_test_pipe(fds);
    hp_io_init(loop, &io, fds[0], on_unexpected_io);
    assert_int_equal(hp_io_start(&io, HP_READABLE), 0);
    hp_timer_init(loop, &c.t, on_count_timer);
    assert_int_equal(hp_timer_start(&c.t, 20, 0), 0);
    while (c.fired == 0 && ct_now_ms() - t0 < HP_TEST_DEADLINE_MS) {
        assert_true(hp_loop_run_once(loop, -1) >= 0);
        iterations++;
    }
    assert_int_equal(c.fired, 1);
    /* Blocking means a handful of iterations, not a spin. */
    assert_true(iterations <= 5);
    hp_io_stop(&io);
    hp_test_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void test_loop_run_once_treats_an_interrupted_wait_as_no_events(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct sigaction sa, old;
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 20000}};
    struct hp_io io;
    int fds[2];
    uint64_t t0 = ct_now_ms();

    (void)state;
    hp_test_pipe(fds);
    hp_io_init(loop, &io, fds[0], on_unexpected_io);
    assert_int_equal(hp_io_start(&io, HP_READABLE), 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm; /* no SA_RESTART: the wait sees EINTR */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    alarms = 0;
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    while (alarms == 0 && ct_now_ms() - t0 < HP_TEST_DEADLINE_MS)
        assert_int_equal(hp_loop_run_once(loop, 500), 0);
    assert_int_equal(alarms, 1);
    assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
    hp_io_stop(&io);
    hp_test_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

struct reader {
    struct hp_io io;
    size_t *done;
};

static void on_read_one_and_stop(struct hp_io *io, unsigned events, int status)
{
    struct reader *r = hp_container_of(io, struct reader, io);
    char c;

    assert_int_equal(status, 0);
    assert_true(events & HP_READABLE);
    assert_int_equal(hp_io_read(io, &c, 1), 1);
    hp_io_stop(io);
    (*r->done)++;
}

static void test_loop_serves_every_ready_watcher_with_max_events_of_one(void **state)
{
    struct hp_loop *loop = ct_loop_new(NULL, NULL, 1);
    struct reader r[8];
    int fds[8][2];
    size_t done = 0;

    (void)state;
    for (int i = 0; i < 8; i++) {
        hp_test_pipe(fds[i]);
        r[i].done = &done;
        hp_io_init(loop, &r[i].io, fds[i][0], on_read_one_and_stop);
        assert_int_equal(hp_io_start(&r[i].io, HP_READABLE), 0);
        hp_test_write_all(fds[i][1], "x", 1);
    }
    hp_test_run_until_count(loop, &done, 8);
    for (int i = 0; i < 8; i++) {
        assert_false(hp_io_is_active(&r[i].io));
        close(fds[i][0]);
        close(fds[i][1]);
    }
    hp_test_loop_free(loop);
}

static void test_loop_allocates_only_through_its_allocator(void **state)
{
    struct ct_alloc a;
    struct hp_loop *loop;
    struct counter_timer *c;
    size_t live;
    enum { N = 1000 };

    (void)state;
    ct_alloc_init(&a);
    loop = ct_loop_new(NULL, &a, 0);
    assert_true(ct_alloc_live(&a) > 0);
    c = calloc(N, sizeof(*c));
    assert_non_null(c);
    for (int i = 0; i < N; i++) {
        hp_timer_init(loop, &c[i].t, on_count_timer);
        assert_int_equal(hp_timer_start(&c[i].t, (uint64_t)i % 7, 0), 0);
    }
    /* -EBUSY frees nothing. */
    live = ct_alloc_live(&a);
    assert_int_equal(hp_loop_free(loop), -EBUSY);
    assert_int_equal(ct_alloc_live(&a), live);
    for (int i = 0; i < N; i++) {
        if (i % 2)
            hp_timer_stop(&c[i].t);
    }
    ct_run_guarded(loop);
    for (int i = 0; i < N; i++)
        assert_int_equal(c[i].fired, (size_t)(i % 2 == 0));
    assert_int_equal(hp_loop_free(loop), 0);
    assert_int_equal(ct_alloc_live(&a), 0);
    free(c);
    ct_alloc_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_new_with_null_opts_gives_an_empty_loop),
        cmocka_unit_test(test_loop_backend_is_the_configured_driver),
        cmocka_unit_test(test_loop_run_returns_at_once_when_nothing_is_active),
        cmocka_unit_test(test_loop_run_once_returns_zero_callbacks_when_idle),
        cmocka_unit_test(test_loop_run_once_returns_the_number_of_callbacks_run),
        cmocka_unit_test(test_loop_free_returns_ebusy_while_an_io_watcher_is_active),
        cmocka_unit_test(test_loop_free_returns_ebusy_while_a_timer_is_active),
        cmocka_unit_test(test_loop_is_alive_while_a_handle_is_active),
        cmocka_unit_test(test_loop_run_returns_after_the_last_timer_fired),
        cmocka_unit_test(test_loop_run_returns_when_its_only_timer_fires_before_the_first_wait),
        cmocka_unit_test(test_loop_stop_from_a_callback_makes_run_return),
        cmocka_unit_test(test_loop_now_is_cached_until_updated),
        cmocka_unit_test(test_loop_run_once_does_not_block_past_its_timeout),
        cmocka_unit_test(test_loop_run_once_blocking_wakes_for_the_next_timer),
        cmocka_unit_test(test_loop_run_once_treats_an_interrupted_wait_as_no_events),
        cmocka_unit_test(test_loop_serves_every_ready_watcher_with_max_events_of_one),
        cmocka_unit_test(test_loop_allocates_only_through_its_allocator),
    };

    ct_apply_filters();
    return cmocka_run_group_tests_name("core/loop", tests, NULL, NULL);
}
