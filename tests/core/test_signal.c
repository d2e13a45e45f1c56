/*
 * tests/core/test_signal.c - signal watchers: delivery of raise() and
 * kill(), coalescing, several loops, refused signals, and restoring the
 * previous disposition when the last watcher stops.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>

#include "coretest.h"
#include "testutil.h"

struct csig {
    struct hp_signal s;
    size_t calls;
    int last;
    bool stop_on_call;
};

static void on_csig(struct hp_signal *s, int signum)
{
    struct csig *c = hp_container_of(s, struct csig, s);

    c->calls++;
    c->last = signum;
    if (c->stop_on_call)
        hp_signal_stop(s);
}

static void csig_init(struct hp_loop *loop, struct csig *c)
{
    memset(c, 0, sizeof(*c));
    hp_signal_init(loop, &c->s, on_csig);
}

/* A plain handler, installed before the watchers, to check restoration. */
static volatile sig_atomic_t guard_hits;

static void on_guard(int sig)
{
    (void)sig;
    guard_hits++;
}

static void set_handler(int signum, void (*handler)(int), struct sigaction *old)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(signum, &sa, old), 0);
}

static void (*current_handler(int signum))(int)
{
    struct sigaction cur;

    assert_int_equal(sigaction(signum, NULL, &cur), 0);
    return cur.sa_handler;
}

static void test_signal_raise_sigusr1_reaches_the_watcher(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct sigaction old;
    struct csig c;

    (void)state;
    set_handler(SIGUSR1, on_guard, &old);
    guard_hits = 0;
    csig_init(loop, &c);
    assert_int_equal(c.s.signum, 0);
    assert_int_equal(hp_signal_start(&c.s, SIGUSR1), 0);
    assert_int_equal(c.s.signum, SIGUSR1);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(c.calls, 0); /* delivered on the loop, not in the handler */
    hp_test_run_until_count(loop, &c.calls, 1);
    assert_int_equal(c.last, SIGUSR1);
    assert_int_equal(guard_hits, 0);
    hp_signal_stop(&c.s);
    assert_int_equal(c.s.signum, 0);
    hp_signal_stop(&c.s); /* idempotent */
    hp_test_loop_free(loop);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

static void test_signal_kill_sigterm_reaches_the_watcher(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct sigaction old;
    struct csig c;

    (void)state;
    set_handler(SIGTERM, on_guard, &old);
    guard_hits = 0;
    csig_init(loop, &c);
    c.stop_on_call = true;
    assert_int_equal(hp_signal_start(&c.s, SIGTERM), 0);
    assert_int_equal(kill(getpid(), SIGTERM), 0);
    hp_test_run_until_count(loop, &c.calls, 1);
    assert_int_equal(c.last, SIGTERM);
    assert_int_equal(c.s.signum, 0);
    assert_int_equal(guard_hits, 0);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
    assert_true(current_handler(SIGTERM) == on_guard);
    assert_int_equal(sigaction(SIGTERM, &old, NULL), 0);
}

static void test_signal_stop_restores_the_previous_handler(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct sigaction old;
    struct csig c;

    (void)state;
    set_handler(SIGUSR2, on_guard, &old);
    guard_hits = 0;
    csig_init(loop, &c);
    assert_int_equal(hp_signal_start(&c.s, SIGUSR2), 0);
    assert_true(current_handler(SIGUSR2) != on_guard);
    hp_signal_stop(&c.s);
    assert_true(current_handler(SIGUSR2) == on_guard);
    assert_int_equal(raise(SIGUSR2), 0);
    assert_int_equal(guard_hits, 1);
    ct_run_nowait(loop, 2);
    assert_int_equal(c.calls, 0);
    hp_test_loop_free(loop);
    assert_int_equal(sigaction(SIGUSR2, &old, NULL), 0);
}

static void test_signal_stop_restores_the_default_disposition(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct sigaction old;
    struct csig c;

    (void)state;
    set_handler(SIGUSR2, SIG_DFL, &old);
    csig_init(loop, &c);
    assert_int_equal(hp_signal_start(&c.s, SIGUSR2), 0);
    assert_true(current_handler(SIGUSR2) != SIG_DFL);
    hp_signal_stop(&c.s);
    assert_true(current_handler(SIGUSR2) == SIG_DFL);
    hp_test_loop_free(loop);
    assert_int_equal(sigaction(SIGUSR2, &old, NULL), 0);
}

static void
test_signal_raised_several_times_before_running_gives_one_to_three_callbacks(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct csig c;

    (void)state;
    csig_init(loop, &c);
    assert_int_equal(hp_signal_start(&c.s, SIGUSR1), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(raise(SIGUSR1), 0);
    hp_test_run_until_count(loop, &c.calls, 1);
    ct_run_nowait(loop, 3);
    assert_in_range(c.calls, 1, 3);
    assert_int_equal(c.last, SIGUSR1);
    hp_signal_stop(&c.s);
    hp_test_loop_free(loop);
}

static void test_signal_start_refuses_unwatchable_and_invalid_signals(void **state)
{
    static const int refused[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, 0, -1, 100000};
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct csig c;

    (void)state;
    csig_init(loop, &c);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(hp_signal_start(&c.s, refused[i]), -EINVAL);
        assert_int_equal(c.s.signum, 0);
    }
    assert_int_equal(hp_loop_active_handles(loop), 0);
    assert_int_equal(hp_signal_start(&c.s, SIGUSR1), 0);
    assert_int_equal(hp_signal_start(&c.s, SIGUSR2), -EINVAL); /* already started */
    assert_int_equal(c.s.signum, SIGUSR1);
    hp_signal_stop(&c.s);
    hp_test_loop_free(loop);
}

static void test_signal_two_signals_on_one_loop_reach_their_own_watchers(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct csig a, b;

    (void)state;
    csig_init(loop, &a);
    csig_init(loop, &b);
    assert_int_equal(hp_signal_start(&a.s, SIGUSR1), 0);
    assert_int_equal(hp_signal_start(&b.s, SIGUSR2), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    hp_test_run_until_count(loop, &b.calls, 1);
    ct_run_nowait(loop, 2);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.last, SIGUSR2);
    assert_int_equal(raise(SIGUSR1), 0);
    hp_test_run_until_count(loop, &a.calls, 1);
    assert_int_equal(a.last, SIGUSR1);
    assert_int_equal(b.calls, 1);
    hp_signal_stop(&a.s);
    hp_signal_stop(&b.s);
    hp_test_loop_free(loop);
}

static void test_signal_reaches_every_loop_watching_it(void **state)
{
    struct hp_loop *l1 = hp_test_loop_new(NULL), *l2 = hp_test_loop_new(NULL);
    struct sigaction old;
    struct csig a, b;

    (void)state;
    set_handler(SIGUSR2, on_guard, &old);
    guard_hits = 0;
    csig_init(l1, &a);
    csig_init(l2, &b);
    assert_int_equal(hp_signal_start(&a.s, SIGUSR2), 0);
    assert_int_equal(hp_signal_start(&b.s, SIGUSR2), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    hp_test_run_until_count(l1, &a.calls, 1);
    hp_test_run_until_count(l2, &b.calls, 1);

    /* The handler stays while the other loop still watches. */
    hp_signal_stop(&a.s);
    assert_true(current_handler(SIGUSR2) != on_guard);
    assert_int_equal(raise(SIGUSR2), 0);
    hp_test_run_until_count(l2, &b.calls, 2);
    ct_run_nowait(l1, 2);
    assert_int_equal(a.calls, 1);
    assert_int_equal(guard_hits, 0);

    hp_signal_stop(&b.s);
    assert_true(current_handler(SIGUSR2) == on_guard);
    hp_test_loop_free(l1);
    hp_test_loop_free(l2);
    assert_int_equal(sigaction(SIGUSR2, &old, NULL), 0);
}

static void test_signal_watcher_keeps_the_loop_alive_and_busy(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct csig c;

    (void)state;
    csig_init(loop, &c);
    assert_int_equal(hp_signal_start(&c.s, SIGUSR1), 0);
    assert_true(hp_loop_is_alive(loop));
    assert_int_equal(hp_loop_active_handles(loop), 1);
    assert_int_equal(hp_loop_free(loop), -EBUSY);
    hp_signal_stop(&c.s);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
}

static size_t freed_sig_calls;

static void on_stop_and_free_self(struct hp_signal *s, int signum)
{
    (void)signum;
    freed_sig_calls++;
    hp_signal_stop(s);
    memset(s, 0xa5, sizeof(*s));
    free(s);
}

static void test_signal_callback_may_stop_and_free_its_watcher(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_signal *s = malloc(sizeof(*s));
    struct sigaction old;

    (void)state;
    assert_non_null(s);
    set_handler(SIGUSR1, on_guard, &old);
    guard_hits = 0;
    freed_sig_calls = 0;
    hp_signal_init(loop, s, on_stop_and_free_self);
    assert_int_equal(hp_signal_start(s, SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    hp_test_run_until_count(loop, &freed_sig_calls, 1);
    assert_int_equal(raise(SIGUSR1), 0);
    ct_run_nowait(loop, 2);
    assert_int_equal(freed_sig_calls, 1);
    assert_int_equal(guard_hits, 1);
    hp_test_loop_free(loop);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

enum { MAXLOOPS = 64 };

struct many_loops {
    struct hp_loop *loops[MAXLOOPS + 1];
    struct csig c[MAXLOOPS + 1];
};

static struct many_loops *many_loops_start(void)
{
    struct many_loops *m = calloc(1, sizeof(*m));

    assert_non_null(m);
    for (int i = 0; i <= MAXLOOPS; i++) {
        m->loops[i] = hp_test_loop_new(NULL);
        csig_init(m->loops[i], &m->c[i]);
    }
    for (int i = 0; i < MAXLOOPS; i++)
        assert_int_equal(hp_signal_start(&m->c[i].s, SIGUSR1), 0);
    return m;
}

static void many_loops_finish(struct many_loops *m)
{
    for (int i = 0; i <= MAXLOOPS; i++) {
        hp_signal_stop(&m->c[i].s);
        hp_test_loop_free(m->loops[i]);
    }
    free(m);
}

static void test_signal_more_than_64_loops_watching_is_refused_with_ebusy(void **state)
{
    struct many_loops *m;

    (void)state;
    m = many_loops_start();
    assert_int_equal(hp_signal_start(&m->c[MAXLOOPS].s, SIGUSR1), -EBUSY);
    assert_int_equal(m->c[MAXLOOPS].s.signum, 0);
    assert_int_equal(raise(SIGUSR1), 0);
    hp_test_run_until_count(m->loops[0], &m->c[0].calls, 1);
    hp_test_run_until_count(m->loops[MAXLOOPS - 1], &m->c[MAXLOOPS - 1].calls, 1);
    many_loops_finish(m);

    /* Freeing the loops gave the slots back. */
    m = many_loops_start();
    many_loops_finish(m);
}

static void test_signal_a_loop_that_stops_watching_frees_its_slot(void **state)
{
    struct many_loops *m;

    (void)state;
    m = many_loops_start();
    /* Loop 0 no longer watches any signal, so a 65th loop may. */
    hp_signal_stop(&m->c[0].s);
    assert_int_equal(hp_signal_start(&m->c[MAXLOOPS].s, SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    hp_test_run_until_count(m->loops[MAXLOOPS], &m->c[MAXLOOPS].calls, 1);
    many_loops_finish(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_raise_sigusr1_reaches_the_watcher),
        cmocka_unit_test(test_signal_kill_sigterm_reaches_the_watcher),
        cmocka_unit_test(test_signal_stop_restores_the_previous_handler),
        cmocka_unit_test(test_signal_stop_restores_the_default_disposition),
        cmocka_unit_test(
            test_signal_raised_several_times_before_running_gives_one_to_three_callbacks),
        cmocka_unit_test(test_signal_start_refuses_unwatchable_and_invalid_signals),
        cmocka_unit_test(test_signal_two_signals_on_one_loop_reach_their_own_watchers),
        cmocka_unit_test(test_signal_reaches_every_loop_watching_it),
        cmocka_unit_test(test_signal_watcher_keeps_the_loop_alive_and_busy),
        cmocka_unit_test(test_signal_callback_may_stop_and_free_its_watcher),
        cmocka_unit_test(test_signal_more_than_64_loops_watching_is_refused_with_ebusy),
        cmocka_unit_test(test_signal_a_loop_that_stops_watching_frees_its_slot),
    };

    ct_apply_filters();
    return cmocka_run_group_tests_name("core/signal", tests, NULL, NULL);
}
