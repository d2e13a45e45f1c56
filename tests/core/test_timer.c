/*
 * tests/core/test_timer.c - timers: order, equal deadlines, restart (both
 * directions, including the lazy move to a later deadline), cancel from
 * callbacks, repeat, and half a million live timers.
 */
#include <errno.h>
#include <setjmp.h>
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

/* Records the order in which timers fire. */
struct order {
    int ids[64];
    size_t n;
};

struct otimer {
    struct hp_timer t;
    int id;
    struct order *order;
    uint64_t fired_at;
    size_t fired;
};

static void on_order(struct hp_timer *t)
{
    struct otimer *o = hp_container_of(t, struct otimer, t);

    o->fired++;
    o->fired_at = hp_loop_now(t->loop);
    assert_true(o->order->n < 64);
    o->order->ids[o->order->n++] = o->id;
}

static void otimer_init(struct hp_loop *loop, struct otimer *o, int id, struct order *order)
{
    memset(o, 0, sizeof(*o));
    o->id = id;
    o->order = order;
    hp_timer_init(loop, &o->t, on_order);
}

static void assert_order(const struct order *order, const int *want, size_t n)
{
    assert_int_equal(order->n, n);
    for (size_t i = 0; i < n; i++) {
        if (order->ids[i] != want[i])
            fail_msg("fire %zu: timer %d, expected %d", i, order->ids[i], want[i]);
    }
}

static void test_timer_fires_once_after_its_timeout(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct order order = {0};
    struct otimer o;
    uint64_t start = hp_loop_now(loop);

    (void)state;
    otimer_init(loop, &o, 1, &order);
    assert_false(hp_timer_is_active(&o.t));
    assert_int_equal(hp_timer_start(&o.t, 10, 0), 0);
    assert_true(hp_timer_is_active(&o.t));
    hp_test_run_until_count(loop, &o.fired, 1);
    assert_true(o.fired_at >= start + 10);
    assert_false(hp_timer_is_active(&o.t));
    ct_run_nowait(loop, 3);
    assert_int_equal(o.fired, 1);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
}

static void test_timer_fires_in_deadline_order(void **state)
{
    static const uint64_t timeouts[] = {30, 10, 20, 0, 5, 25};
    static const int want[] = {3, 4, 1, 2, 5, 0};
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct order order = {0};
    struct otimer o[6];

    (void)state;
    for (int i = 0; i < 6; i++) {
        otimer_init(loop, &o[i], i, &order);
        assert_int_equal(hp_timer_start(&o[i].t, timeouts[i], 0), 0);
    }
    hp_test_run_until_count(loop, &order.n, 6);
    assert_order(&order, want, 6);
    hp_test_loop_free(loop);
}

static void test_timer_equal_deadlines_fire_in_start_order(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct order order = {0};
    struct otimer o[40];
    int want[40];

    (void)state;
    /* Started within one iteration, so "now" is the same for all of them. */
    for (int i = 0; i < 40; i++) {
        otimer_init(loop, &o[i], i, &order);
        assert_int_equal(hp_timer_start(&o[i].t, (uint64_t)(2 + i % 2), 0), 0);
    }
    for (int i = 0; i < 20; i++) {
        want[i] = 2 * i;          /* every timeout-2 timer, in start order */
        want[20 + i] = 2 * i + 1; /* then every timeout-3 timer */
    }
    hp_test_run_until_count(loop, &order.n, 40);
    assert_order(&order, want, 40);
    hp_test_loop_free(loop);
}

static void test_timer_restart_counts_as_a_new_start_for_equal_deadlines(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct order order = {0};
    struct otimer a, b, c;
    static const int want[] = {2, 3, 1};

    (void)state;
    otimer_init(loop, &a, 1, &order);
    otimer_init(loop, &b, 2, &order);
    otimer_init(loop, &c, 3, &order);
    assert_int_equal(hp_timer_start(&a.t, 10, 0), 0); /* a: now+10 */
    assert_int_equal(hp_timer_start(&b.t, 20, 0), 0); /* b: now+20 */
    assert_int_equal(hp_timer_start(&c.t, 20, 0), 0); /* c: now+20 */
    assert_int_equal(hp_timer_start(&a.t, 20, 0), 0); /* a: now+20, started last */
    hp_test_run_until_count(loop, &order.n, 3);
    assert_order(&order, want, 3);
    hp_test_loop_free(loop);
}

static void test_timer_restart_with_the_same_deadline_moves_it_behind_its_peers(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct order order = {0};
    struct otimer a, b;
    static const int want[] = {2, 1};

    (void)state;
    otimer_init(loop, &a, 1, &order);
    otimer_init(loop, &b, 2, &order);
    assert_int_equal(hp_timer_start(&a.t, 5, 0), 0);
    assert_int_equal(hp_timer_start(&b.t, 5, 0), 0);
    assert_int_equal(hp_timer_start(&a.t, 5, 0), 0);
    hp_test_run_until_count(loop, &order.n, 2);
    assert_order(&order, want, 2);
    hp_test_loop_free(loop);
}

static void test_timer_restart_to_a_later_deadline_postpones_it(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct order order = {0};
    struct otimer a, b;
    uint64_t start = hp_loop_now(loop);
    static const int want[] = {2, 1};

    (void)state;
    otimer_init(loop, &a, 1, &order);
    otimer_init(loop, &b, 2, &order);
    assert_int_equal(hp_timer_start(&a.t, 5, 0), 0);
    assert_int_equal(hp_timer_start(&b.t, 30, 0), 0);
    assert_int_equal(hp_timer_start(&a.t, 60, 0), 0);
    assert_true(hp_timer_remaining(&a.t) > 30);
    hp_test_run_until_count(loop, &order.n, 2);
    assert_order(&order, want, 2);
    assert_true(a.fired_at >= start + 60);
    assert_int_equal(a.fired, 1);
    hp_test_loop_free(loop);
}

static void test_timer_restart_to_an_earlier_deadline_brings_it_forward(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct order order = {0};
    struct otimer a, b;
    static const int want[] = {1, 2};

    (void)state;
    otimer_init(loop, &a, 1, &order);
    otimer_init(loop, &b, 2, &order);
    assert_int_equal(hp_timer_start(&a.t, 600000, 0), 0);
    assert_int_equal(hp_timer_start(&b.t, 20, 0), 0);
    assert_int_equal(hp_timer_start(&a.t, 0, 0), 0);
    hp_test_run_until_count(loop, &order.n, 2);
    assert_order(&order, want, 2);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
}

static void test_timer_stopped_timer_does_not_fire(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct order order = {0};
    struct otimer a, b;
    static const int want[] = {2};

    (void)state;
    otimer_init(loop, &a, 1, &order);
    otimer_init(loop, &b, 2, &order);
    assert_int_equal(hp_timer_start(&a.t, 0, 0), 0);
    assert_int_equal(hp_timer_start(&b.t, 1, 0), 0);
    hp_timer_stop(&a.t);
    hp_timer_stop(&a.t); /* stopping an inactive timer does nothing */
    assert_false(hp_timer_is_active(&a.t));
    assert_int_equal(hp_timer_remaining(&a.t), 0);
    hp_test_run_until_count(loop, &order.n, 1);
    ct_run_nowait(loop, 2);
    assert_order(&order, want, 1);
    hp_test_loop_free(loop);
}

/* A timer whose callback stops a victim due in the same pass. */
struct canceller {
    struct otimer self;
    struct hp_timer *victim;
};

static void on_cancel_victim(struct hp_timer *t)
{
    struct canceller *c = hp_container_of(t, struct canceller, self.t);

    on_order(t);
    hp_timer_stop(c->victim);
}

static void test_timer_callback_may_cancel_the_next_timer_due(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct order order = {0};
    struct canceller a;
    struct otimer b, c;
    static const int want[] = {1, 3};

    (void)state;
    otimer_init(loop, &a.self, 1, &order);
    hp_timer_init(loop, &a.self.t, on_cancel_victim);
    a.victim = &b.t;
    otimer_init(loop, &b, 2, &order);
    otimer_init(loop, &c, 3, &order);
    /* All due in the same pass; b is next after a. */
    assert_int_equal(hp_timer_start(&a.self.t, 0, 0), 0);
    assert_int_equal(hp_timer_start(&b.t, 0, 0), 0);
    assert_int_equal(hp_timer_start(&c.t, 0, 0), 0);
    assert_int_equal(hp_loop_run_once(loop, 0), 2);
    ct_run_nowait(loop, 2);
    assert_order(&order, want, 2);
    assert_false(hp_timer_is_active(&b.t));
    hp_test_loop_free(loop);
}

static size_t self_free_fires;

static void on_stop_and_free_self(struct hp_timer *t)
{
    self_free_fires++;
    hp_timer_stop(t);
    memset(t, 0xa5, sizeof(*t));
    free(t);
}

static void test_timer_callback_may_stop_and_free_its_own_timer(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_timer *t = malloc(sizeof(*t));

    (void)state;
    assert_non_null(t);
    self_free_fires = 0;
    hp_timer_init(loop, t, on_stop_and_free_self);
    assert_int_equal(hp_timer_start(t, 0, 1), 0);
    hp_test_run_until_count(loop, &self_free_fires, 1);
    ct_run_nowait(loop, 3);
    assert_int_equal(self_free_fires, 1);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
}

/* Restarts itself (or a partner) with timeout 0 from its callback. */
struct rearm {
    struct hp_timer t;
    struct hp_timer *target;
    size_t fired;
    size_t limit;
};

static void on_rearm(struct hp_timer *t)
{
    struct rearm *r = hp_container_of(t, struct rearm, t);

    r->fired++;
    if (r->fired < r->limit && r->target)
        assert_int_equal(hp_timer_start(r->target, 0, 0), 0);
}

static void
test_timer_restarted_from_its_own_callback_with_timeout_0_waits_for_the_next_pass(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct rearm r = {.limit = 4};

    (void)state;
    hp_timer_init(loop, &r.t, on_rearm);
    r.target = &r.t;
    assert_int_equal(hp_timer_start(&r.t, 0, 0), 0);
    for (size_t pass = 1; pass <= 4; pass++) {
        assert_int_equal(hp_loop_run_once(loop, 0), 1);
        assert_int_equal(r.fired, pass);
    }
    assert_false(hp_timer_is_active(&r.t));
    hp_test_loop_free(loop);
}

static void test_timer_started_from_another_timers_callback_waits_for_the_next_pass(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct rearm a = {.limit = 2}, b = {.limit = 0};

    (void)state;
    hp_timer_init(loop, &a.t, on_rearm);
    hp_timer_init(loop, &b.t, on_rearm);
    a.target = &b.t;
    assert_int_equal(hp_timer_start(&a.t, 0, 0), 0);
    assert_int_equal(hp_loop_run_once(loop, 0), 1);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 0);
    assert_true(hp_timer_is_active(&b.t));
    assert_int_equal(hp_loop_run_once(loop, 0), 1);
    assert_int_equal(b.fired, 1);
    hp_test_loop_free(loop);
}

struct repeater {
    struct hp_timer t;
    size_t fired;
    uint64_t first, last;
};

static void on_repeat(struct hp_timer *t)
{
    struct repeater *r = hp_container_of(t, struct repeater, t);

    if (r->fired == 0)
        r->first = hp_loop_now(t->loop);
    r->last = hp_loop_now(t->loop);
    r->fired++;
    assert_true(hp_timer_is_active(t));
    if (r->fired == 5)
        hp_timer_stop(t);
}

static void test_timer_repeat_fires_every_period_until_stopped(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct repeater r = {0};
    uint64_t start = hp_loop_now(loop);

    (void)state;
    hp_timer_init(loop, &r.t, on_repeat);
    assert_int_equal(hp_timer_start(&r.t, 3, 2), 0);
    hp_test_run_until_count(loop, &r.fired, 5);
    assert_false(hp_timer_is_active(&r.t));
    assert_true(r.first >= start + 3);
    assert_true(r.last >= r.first);
    ct_run_nowait(loop, 3);
    assert_int_equal(r.fired, 5);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
}

static void test_timer_remaining_counts_down_and_is_zero_when_inactive(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_timer t;
    uint64_t r0, r1, deadline;

    (void)state;
    hp_timer_init(loop, &t, on_repeat);
    assert_int_equal(hp_timer_remaining(&t), 0);
    assert_int_equal(hp_timer_start(&t, 1000, 0), 0);
    r0 = hp_timer_remaining(&t);
    assert_int_equal(r0, 1000); /* same cached "now" as the start */
    deadline = ct_now_ms() + 2000;
    do {
        hp_loop_update_time(loop);
        r1 = hp_timer_remaining(&t);
    } while (r1 == r0 && ct_now_ms() < deadline);
    assert_true(r1 < r0);
    hp_timer_stop(&t);
    assert_int_equal(hp_timer_remaining(&t), 0);
    hp_test_loop_free(loop);
}

/* Started with timeout 0 from an IO callback and from a deferred callback. */
struct late_starter {
    struct hp_io io;
    struct hp_defer d;
    struct hp_timer from_io, from_defer;
    size_t fired_io, fired_defer;
};

static struct late_starter ls;

static void on_from_io(struct hp_timer *t)
{
    (void)t;
    ls.fired_io++;
}

static void on_from_defer(struct hp_timer *t)
{
    (void)t;
    ls.fired_defer++;
}

static void on_start_from_io(struct hp_io *io, unsigned events, int status)
{
    (void)events;
    (void)status;
    hp_io_stop(io);
    assert_int_equal(hp_timer_start(&ls.from_io, 0, 0), 0);
}

static void on_start_from_defer(struct hp_defer *d)
{
    (void)d;
    assert_int_equal(hp_timer_start(&ls.from_defer, 0, 0), 0);
}

static void test_timer_started_from_any_callback_waits_for_the_next_iteration(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    int fds[2];

    (void)state;
    memset(&ls, 0, sizeof(ls));
    hp_test_pipe(fds);
    hp_timer_init(loop, &ls.from_io, on_from_io);
    hp_timer_init(loop, &ls.from_defer, on_from_defer);
    hp_io_init(loop, &ls.io, fds[0], on_start_from_io);
    hp_defer_init(loop, &ls.d, on_start_from_defer);
    assert_int_equal(hp_io_start(&ls.io, HP_READABLE), 0);
    hp_test_write_all(fds[1], "x", 1);
    hp_defer_start(&ls.d);
    assert_int_equal(hp_loop_run_once(loop, 0), 2); /* the io and the defer callbacks */
    assert_true(hp_timer_is_active(&ls.from_io));
    assert_true(hp_timer_is_active(&ls.from_defer));
    assert_int_equal(ls.fired_io + ls.fired_defer, 0);
    assert_int_equal(hp_loop_run_once(loop, 0), 2);
    assert_int_equal(ls.fired_io, 1);
    assert_int_equal(ls.fired_defer, 1);
    hp_test_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

/*
 * Two timers are due in one pass; the first starts thousands more, so the
 * heap grows (and may move) in the middle of the pass. The second still
 * fires in this pass; the new ones, although due at once, in the next.
 */
enum { SPAWNED = 5000 };

struct spawner {
    struct hp_timer t[2];
    struct hp_timer *spawned;
    size_t fired[2], spawned_fired;
    bool spawned_already;
};

static struct spawner sp;

static void on_spawned(struct hp_timer *t)
{
    (void)t;
    sp.spawned_fired++;
}

static void on_spawner(struct hp_timer *t)
{
    size_t me = t == &sp.t[0] ? 0 : 1;

    assert_true(t == &sp.t[0] || t == &sp.t[1]);
    sp.fired[me]++;
    if (sp.spawned_already)
        return;
    sp.spawned_already = true;
    for (size_t i = 0; i < SPAWNED; i++) {
        hp_timer_init(t->loop, &sp.spawned[i], on_spawned);
        assert_int_equal(hp_timer_start(&sp.spawned[i], 0, 0), 0);
    }
}

static void test_timer_heap_growth_inside_a_callback_does_not_disturb_the_pass(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);

    (void)state;
    memset(&sp, 0, sizeof(sp));
    sp.spawned = calloc(SPAWNED, sizeof(*sp.spawned));
    assert_non_null(sp.spawned);
    hp_timer_init(loop, &sp.t[0], on_spawner);
    hp_timer_init(loop, &sp.t[1], on_spawner);
    assert_int_equal(hp_timer_start(&sp.t[0], 0, 0), 0);
    assert_int_equal(hp_timer_start(&sp.t[1], 0, 0), 0);
    assert_int_equal(hp_loop_run_once(loop, 0), 2);
    assert_int_equal(sp.fired[0], 1);
    assert_int_equal(sp.fired[1], 1);
    assert_int_equal(sp.spawned_fired, 0);
    assert_int_equal(hp_loop_run_once(loop, 0), SPAWNED);
    assert_int_equal(sp.spawned_fired, SPAWNED);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
    free(sp.spawned);
}

/* ---- half a million ---------------------------------------------------- */

struct many {
    struct hp_timer t;
    uint64_t due;
    uint32_t seq;
    uint8_t fired;
    uint8_t stopped;
};

struct many_state {
    struct many *m;
    size_t fired;
    uint64_t last_due;
    uint32_t last_seq;
    size_t misorders;
    size_t early;
};

static struct many_state ms;

static void on_many(struct hp_timer *t)
{
    struct many *m = hp_container_of(t, struct many, t);

    if (m->fired || m->stopped)
        fail_msg("timer %zu fired twice or after stop", (size_t)(m - ms.m));
    m->fired = 1;
    ms.fired++;
    if (m->due < ms.last_due || (m->due == ms.last_due && m->seq < ms.last_seq))
        ms.misorders++;
    if (hp_loop_now(t->loop) < m->due)
        ms.early++;
    ms.last_due = m->due;
    ms.last_seq = m->seq;
}

static void test_timer_half_a_million_timers_fire_once_each_in_order(void **state)
{
    /* Fewer under valgrind, whose 50x slowdown would meet the run deadline on a busy machine. */
    const size_t N = getenv("HP_TEST_VALGRIND") != NULL ? 100000 : 500000;
    struct hp_loop *loop = hp_test_loop_new(NULL);
    uint64_t now = hp_loop_now(loop);
    uint32_t seq = 0, rng = 12345;
    size_t expected = 0, base = hp_loop_active_handles(loop);

    (void)state;
    memset(&ms, 0, sizeof(ms));
    ms.m = calloc(N, sizeof(*ms.m));
    assert_non_null(ms.m);
    for (size_t i = 0; i < N; i++) {
        uint64_t timeout;

        rng = rng * 1103515245u + 12345u;
        timeout = (rng >> 16) % 40;
        hp_timer_init(loop, &ms.m[i].t, on_many);
        assert_int_equal(hp_timer_start(&ms.m[i].t, timeout, 0), 0);
        ms.m[i].due = now + timeout;
        ms.m[i].seq = seq++;
    }
    assert_int_equal(hp_loop_active_handles(loop), base + N);
    /* Churn before running: stop every 5th, push every 7th later (lazy move). */
    for (size_t i = 0; i < N; i++) {
        if (i % 5 == 0) {
            hp_timer_stop(&ms.m[i].t);
            ms.m[i].stopped = 1;
        } else if (i % 7 == 0) {
            assert_int_equal(hp_timer_start(&ms.m[i].t, 45, 0), 0);
            ms.m[i].due = now + 45;
            ms.m[i].seq = seq++;
        }
    }
    for (size_t i = 0; i < N; i++)
        expected += !ms.m[i].stopped;
    hp_test_run_until_count(loop, &ms.fired, expected);
    assert_int_equal(ms.misorders, 0);
    assert_int_equal(ms.early, 0);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
    free(ms.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_fires_once_after_its_timeout),
        cmocka_unit_test(test_timer_fires_in_deadline_order),
        cmocka_unit_test(test_timer_equal_deadlines_fire_in_start_order),
        cmocka_unit_test(test_timer_restart_counts_as_a_new_start_for_equal_deadlines),
        cmocka_unit_test(test_timer_restart_with_the_same_deadline_moves_it_behind_its_peers),
        cmocka_unit_test(test_timer_restart_to_a_later_deadline_postpones_it),
        cmocka_unit_test(test_timer_restart_to_an_earlier_deadline_brings_it_forward),
        cmocka_unit_test(test_timer_stopped_timer_does_not_fire),
        cmocka_unit_test(test_timer_callback_may_cancel_the_next_timer_due),
        cmocka_unit_test(test_timer_callback_may_stop_and_free_its_own_timer),
        cmocka_unit_test(
            test_timer_restarted_from_its_own_callback_with_timeout_0_waits_for_the_next_pass),
        cmocka_unit_test(test_timer_started_from_another_timers_callback_waits_for_the_next_pass),
        cmocka_unit_test(test_timer_repeat_fires_every_period_until_stopped),
        cmocka_unit_test(test_timer_remaining_counts_down_and_is_zero_when_inactive),
        cmocka_unit_test(test_timer_started_from_any_callback_waits_for_the_next_iteration),
        cmocka_unit_test(test_timer_heap_growth_inside_a_callback_does_not_disturb_the_pass),
        cmocka_unit_test(test_timer_half_a_million_timers_fire_once_each_in_order),
    };

    ct_apply_filters();
    return cmocka_run_group_tests_name("core/timer", tests, NULL, NULL);
}
