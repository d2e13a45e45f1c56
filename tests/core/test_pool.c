/*
 * tests/core/test_pool.c - the loop's thread pool (hp_work_submit): work on
 * another thread and its completion on the loop's, never inside submit;
 * thousands of submissions each completed exactly once; cancel before a
 * worker takes an item; the bounded queue; hp_loop_free() racing running
 * and queued work (every item answered once, by 0 if it ran and
 * -ECANCELED if not); resubmission from the completion; the loop staying
 * alive while work is in flight. Workers are held by a gate the test opens,
 * never by sleeping.
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

#include <cmocka.h>

#include <hellepoll/hellepoll.h>

#include "coretest.h"
#include "testutil.h"

struct item {
    struct hp_work w;
    atomic_int ran;    /* times the work function ran */
    int done;          /* times the completion ran */
    int status;        /* its status */
    bool in_submit;    /* the completion ran while submit was on the stack */
    pthread_t thread;  /* where the work ran */
    int resubmit;      /* submit again from the completion, this many times */
    int resubmit_err;  /* what that submission returned */
    atomic_bool *gate; /* the work waits until it is true (may be NULL) */
    atomic_bool started;
};

static bool submitting;
static size_t completions;

static void work(struct hp_work *w)
{
    struct item *it = hp_container_of(w, struct item, w);

    atomic_store(&it->started, true);
    it->thread = pthread_self();
    if (it->gate)
        while (!atomic_load(it->gate))
            sched_yield();
    atomic_fetch_add(&it->ran, 1);
}

static void on_done(struct hp_work *w, int status)
{
    struct item *it = hp_container_of(w, struct item, w);

    assert_ptr_equal(it->w.data, it);
    it->done++;
    it->status = status;
    it->in_submit = submitting;
    completions++;
    if (it->resubmit > 0) {
        it->resubmit--;
        it->resubmit_err = hp_work_submit(w->loop, w, work, on_done);
    }
}

static int submit(struct hp_loop *loop, struct item *it)
{
    int err;

    it->w.data = it;
    submitting = true;
    err = hp_work_submit(loop, &it->w, work, on_done);
    submitting = false;
    return err;
}

static bool count_reached(void *arg)
{
    return completions >= *(size_t *)arg;
}

static void run_until_completions(struct hp_loop *loop, size_t want)
{
    ct_run_until(loop, count_reached, &want);
}

static void wait_started(struct item *it)
{
    uint64_t deadline = ct_now_ms() + HP_TEST_DEADLINE_MS;

    while (!atomic_load(&it->started)) {
        if (ct_now_ms() > deadline)
            fail_msg("the work never started");
        sched_yield();
    }
}

static int setup(void **state)
{
    (void)state;
    completions = 0;
    submitting = false;
    return 0;
}

static void test_pool_work_runs_on_a_worker_and_completes_on_the_loop(void **state)
{
    struct hp_loop *loop = ct_loop_new(NULL, NULL, 0);
    struct item it;

    (void)state;
    memset(&it, 0, sizeof(it));
    assert_int_equal(submit(loop, &it), 0);
    assert_int_equal(it.done, 0); /* never inside submit */
    assert_int_equal(hp_pool_pending(loop), 1);
    assert_true(hp_loop_is_alive(loop));
    assert_int_equal(submit(loop, &it), -EINVAL); /* already in flight */
    run_until_completions(loop, 1);
    assert_int_equal(it.done, 1);
    assert_int_equal(it.status, 0);
    assert_int_equal(atomic_load(&it.ran), 1);
    assert_false(it.in_submit);
    assert_false(pthread_equal(it.thread, pthread_self()));
    assert_int_equal(hp_pool_pending(loop), 0);
    assert_int_equal(hp_work_cancel(&it.w), -EINVAL); /* finished */
    ct_run_nowait(loop, 3);
    assert_int_equal(it.done, 1);
    hp_test_loop_free(loop);
}

static void test_pool_keeps_hp_loop_run_going_until_the_last_completion(void **state)
{
    struct hp_loop *loop = ct_loop_new(NULL, NULL, 0);
    struct item items[64];

    (void)state;
    memset(items, 0, sizeof(items));
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(submit(loop, &items[i]), 0);
    ct_run_guarded(loop); /* returns only when nothing is left */
    for (size_t i = 0; i < 64; i++) {
        assert_int_equal(items[i].done, 1);
        assert_int_equal(items[i].status, 0);
    }
    hp_test_loop_free(loop);
}

static void test_pool_thousands_of_submissions_complete_exactly_once(void **state)
{
    enum { N = 20000 };
    struct hp_loop *loop = ct_loop_new(NULL, NULL, 0);
    struct item *items = calloc(N, sizeof(*items));
    size_t submitted = 0;

    (void)state;
    assert_non_null(items);
    /* In waves bounded by the default queue, resubmitting some from their completion. */
    for (size_t i = 0; i < N; i++) {
        items[i].resubmit = i % 7 == 0 ? 2 : 0;
        assert_int_equal(submit(loop, &items[i]), 0);
        submitted += 1 + (size_t)items[i].resubmit;
        if (i % 1000 == 999)
            ct_run_nowait(loop, 1);
    }
    run_until_completions(loop, submitted);
    ct_run_nowait(loop, 5);
    assert_int_equal(completions, submitted);
    for (size_t i = 0; i < N; i++) {
        int want = i % 7 == 0 ? 3 : 1;

        assert_int_equal(items[i].done, want);
        assert_int_equal(atomic_load(&items[i].ran), want);
        assert_int_equal(items[i].status, 0);
        assert_int_equal(items[i].resubmit_err, 0);
        assert_false(items[i].in_submit);
    }
    assert_int_equal(hp_pool_pending(loop), 0);
    hp_test_loop_free(loop);
    free(items);
}

static void test_pool_cancel_before_start_reports_ecanceled_later(void **state)
{
    struct hp_loop *loop = ct_loop_new(NULL, NULL, 0);
    struct hp_pool_opts opts = {.threads = 1};
    atomic_bool gate = false;
    struct item blocker, items[8];

    (void)state;
    memset(&blocker, 0, sizeof(blocker));
    memset(items, 0, sizeof(items));
    assert_int_equal(hp_pool_config(loop, &opts), 0);
    blocker.gate = &gate;
    assert_int_equal(submit(loop, &blocker), 0);
    assert_int_equal(hp_pool_config(loop, &opts), -EBUSY); /* started */
    wait_started(&blocker);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(submit(loop, &items[i]), 0);
    assert_int_equal(hp_work_cancel(&blocker.w), -EBUSY); /* running */
    for (size_t i = 0; i < 8; i += 2)
        assert_int_equal(hp_work_cancel(&items[i].w), 0);
    assert_int_equal(hp_work_cancel(&items[0].w), -EBUSY); /* already cancelled */
    assert_int_equal(completions, 0);                      /* not inside cancel */
    run_until_completions(loop, 4); /* the cancelled ones, while the worker is held */
    for (size_t i = 0; i < 8; i += 2) {
        assert_int_equal(items[i].done, 1);
        assert_int_equal(items[i].status, -ECANCELED);
    }
    atomic_store(&gate, true);
    run_until_completions(loop, 9);
    ct_run_nowait(loop, 3);
    assert_int_equal(completions, 9);
    assert_int_equal(blocker.status, 0);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(items[i].done, 1);
        assert_int_equal(atomic_load(&items[i].ran), i % 2);
        assert_int_equal(items[i].status, i % 2 ? 0 : -ECANCELED);
    }
    hp_test_loop_free(loop);
}

static void test_pool_full_queue_refuses_with_enobufs(void **state)
{
    struct hp_loop *loop = ct_loop_new(NULL, NULL, 0);
    struct hp_pool_opts opts = {.threads = 1, .max_queue = 4};
    atomic_bool gate = false;
    struct item blocker, items[6];

    (void)state;
    memset(&blocker, 0, sizeof(blocker));
    memset(items, 0, sizeof(items));
    assert_int_equal(hp_pool_config(loop, &(struct hp_pool_opts){.threads = 1025}), -EINVAL);
    assert_int_equal(hp_pool_config(loop, &opts), 0);
    blocker.gate = &gate;
    assert_int_equal(submit(loop, &blocker), 0);
    wait_started(&blocker);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(submit(loop, &items[i]), 0);
    assert_int_equal(submit(loop, &items[4]), -ENOBUFS);
    assert_int_equal(hp_work_cancel(&items[4].w), -EINVAL); /* never queued */
    /* A cancel makes room. */
    assert_int_equal(hp_work_cancel(&items[0].w), 0);
    assert_int_equal(submit(loop, &items[5]), 0);
    atomic_store(&gate, true);
    run_until_completions(loop, 6);
    ct_run_nowait(loop, 3);
    assert_int_equal(completions, 6);
    assert_int_equal(items[4].done, 0); /* refused: never called */
    assert_int_equal(items[0].status, -ECANCELED);
    assert_int_equal(items[5].status, 0);
    hp_test_loop_free(loop);
}

/* Items whose completion tries to submit again while the loop is being freed. */
static bool freeing;

static void on_done_late(struct hp_work *w, int status)
{
    struct item *it = hp_container_of(w, struct item, w);

    it->done++;
    it->status = status;
    completions++;
    if (freeing)
        it->resubmit_err = hp_work_submit(w->loop, w, work, on_done);
}

static void free_race_round(unsigned threads, size_t n)
{
    struct hp_loop *loop = ct_loop_new(NULL, NULL, 0);
    struct hp_pool_opts opts = {.threads = threads};
    atomic_bool gate = false;
    struct item *items = calloc(n, sizeof(*items));

    assert_non_null(items);
    assert_int_equal(hp_pool_config(loop, &opts), 0);
    for (size_t i = 0; i < n; i++) {
        items[i].gate = i < threads ? &gate : NULL;
        items[i].w.data = &items[i];
        assert_int_equal(hp_work_submit(loop, &items[i].w, work, on_done_late), 0);
    }
    wait_started(&items[0]);
    if (n > 2)
        hp_work_cancel(&items[n - 1].w); /* either way: exactly one completion */
    ct_run_nowait(loop, 1);
    atomic_store(&gate, true); /* the held ones finish while hp_loop_free() stops the pool */
    freeing = true;
    assert_int_equal(hp_loop_free(loop), 0);
    freeing = false;
    for (size_t i = 0; i < n; i++) {
        int ran = atomic_load(&items[i].ran);

        assert_int_equal(items[i].done, 1);
        assert_true(ran == 0 || ran == 1);
        assert_int_equal(items[i].status, ran ? 0 : -ECANCELED);
        if (items[i].resubmit_err != 0) /* the ones answered inside hp_loop_free() */
            assert_int_equal(items[i].resubmit_err, -ECANCELED);
    }
    free(items);
}

static void test_pool_loop_free_cancels_queued_and_waits_for_running(void **state)
{
    (void)state;
    for (unsigned round = 0; round < 60; round++) {
        completions = 0;
        free_race_round(1 + round % 4, 1 + round * 7 % 50);
    }
}

static void test_pool_loop_free_without_work_and_config_errors(void **state)
{
    struct hp_loop *loop = ct_loop_new(NULL, NULL, 0);
    struct item it;

    (void)state;
    memset(&it, 0, sizeof(it));
    assert_int_equal(hp_work_cancel(&it.w), -EINVAL);
    assert_int_equal(hp_work_submit(loop, &it.w, NULL, on_done), -EINVAL);
    assert_int_equal(hp_work_submit(loop, &it.w, work, NULL), -EINVAL);
    assert_int_equal(hp_pool_pending(loop), 0);
    hp_test_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_pool_work_runs_on_a_worker_and_completes_on_the_loop, setup),
        cmocka_unit_test_setup(test_pool_keeps_hp_loop_run_going_until_the_last_completion, setup),
        cmocka_unit_test_setup(test_pool_thousands_of_submissions_complete_exactly_once, setup),
        cmocka_unit_test_setup(test_pool_cancel_before_start_reports_ecanceled_later, setup),
        cmocka_unit_test_setup(test_pool_full_queue_refuses_with_enobufs, setup),
        cmocka_unit_test_setup(test_pool_loop_free_cancels_queued_and_waits_for_running, setup),
        cmocka_unit_test_setup(test_pool_loop_free_without_work_and_config_errors, setup),
    };

    ct_apply_filters();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
