/*
 * tests/core/test_signal.c - signal watchers: delivery of raise() and
 * kill(), coalescing, several loops, refused signals, restoring the
 * previous disposition when the last watcher stops, and a stress test of the
 * handler racing a loop that detaches its self-pipe.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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

/* ---- the handler and the detach race --------------------------------------- */

static atomic_bool raiser_stop;
static atomic_ulong raised, sigpipes;

/* A write into a pipe whose read end is closed: the handler used a stale descriptor. */
static void on_sigpipe(int sig)
{
    (void)sig;
    atomic_fetch_add(&sigpipes, 1);
}

static void *raiser(void *arg)
{
    (void)arg;
    while (!atomic_load(&raiser_stop)) {
        (void)raise(SIGUSR2); /* handled on this thread, concurrently with the main one */
        atomic_fetch_add(&raised, 1);
    }
    return NULL;
}

/* A byte in the read end of @p p, or not. */
static bool pipe_has_a_byte(const int p[2])
{
    char b;

    return read(p[0], &b, 1) == 1;
}

/*
 * One thread keeps raising a signal that loop A watches, so the handler runs
 * all the time on it; the main thread keeps starting and stopping a watcher
 * on loop B (attaching and detaching its self-pipe) and at once opens pipes,
 * which get the descriptor numbers the self-pipe just gave back. A handler
 * that loaded the old descriptor before the detach must not write into them.
 * The window is tiny: this catches the race only sometimes when it exists.
 */
static void test_signal_detach_never_lets_the_handler_write_into_a_reused_descriptor(void **state)
{
    enum { RING = 4 };
    struct hp_loop *a = hp_test_loop_new(NULL), *b = hp_test_loop_new(NULL);
    const uint64_t budget_ms = getenv("HP_TEST_VALGRIND") ? 500 : 2000;
    int ring[RING][2], stray = 0;
    struct sigaction old_pipe;
    struct csig ca, cb;
    size_t rounds = 0;
    pthread_t th;
    uint64_t end;

    (void)state;
    csig_init(a, &ca);
    csig_init(b, &cb);
    assert_int_equal(hp_signal_start(&ca.s, SIGUSR2), 0);
    set_handler(SIGPIPE, on_sigpipe, &old_pipe);
    atomic_store(&raiser_stop, false);
    atomic_store(&raised, 0);
    atomic_store(&sigpipes, 0);
    for (int i = 0; i < RING; i++)
        hp_test_pipe(ring[i]);
    assert_int_equal(pthread_create(&th, NULL, raiser, NULL), 0);
    end = ct_now_ms() + budget_ms;
    while (ct_now_ms() < end && stray == 0 && atomic_load(&sigpipes) == 0) {
        for (int k = 0; k < 64; k++, rounds++) {
            int *p;

            assert_int_equal(hp_signal_start(&cb.s, SIGUSR2), 0);
            hp_signal_stop(&cb.s); /* the last watcher of loop B: its pipe is closed */
            /* The oldest pipe of the ring was quiet all along, then a new one at once. */
            p = ring[rounds % RING];
            stray += pipe_has_a_byte(p);
            close(p[0]);
            close(p[1]);
            hp_test_pipe(p);
            stray += pipe_has_a_byte(p);
        }
    }
    atomic_store(&raiser_stop, true);
    assert_int_equal(pthread_join(th, NULL), 0);
    for (int i = 0; i < RING; i++) {
        stray += pipe_has_a_byte(ring[i]);
        close(ring[i][0]);
        close(ring[i][1]);
    }
    assert_int_equal(sigaction(SIGPIPE, &old_pipe, NULL), 0);
    print_message("%zu attach/detach rounds, %lu signals raised\n", rounds,
                  (unsigned long)atomic_load(&raised));
    assert_int_equal(stray, 0);
    assert_int_equal(atomic_load(&sigpipes), 0);
    assert_true(atomic_load(&raised) > 0);
    hp_signal_stop(&ca.s);
    hp_test_loop_free(a);
    hp_test_loop_free(b);
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
        cmocka_unit_test(test_signal_detach_never_lets_the_handler_write_into_a_reused_descriptor),
    };

    ct_apply_filters();
    return cmocka_run_group_tests_name("core/signal", tests, NULL, NULL);
}
