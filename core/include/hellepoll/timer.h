/**
 * @file timer.h
 * Timers: one-shot or repeating, millisecond resolution, measured against
 * the loop's cached monotonic time (hp_loop_now()).
 *
 * Timers live in a binary min-heap ordered by (deadline, start sequence), so
 * timers with equal deadlines fire in the order they were started. Starting,
 * stopping and firing are O(log n); restarting a running timer to a later
 * deadline (the usual idle-timeout refresh) is O(1): the timer is moved
 * lazily when its old deadline comes up. Half a million live timers are fine.
 */
#ifndef HP_TIMER_H
#define HP_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include <hellepoll/defs.h>

struct hp_loop;
struct hp_timer;

/**
 * Called when the timer expires. May start, stop or free any timer,
 * including @p t. A timer (re)started from any callback never fires in the
 * same loop iteration, even with a timeout of 0.
 */
typedef void hp_timer_cb(struct hp_timer *t);

/** A timer. Fields without a leading underscore are documented. */
struct hp_timer {
    void *data;           /**< User pointer, free for the caller. */
    struct hp_loop *loop; /**< Read-only: the owning loop. */
    hp_timer_cb *_cb;
    uint64_t _key;    /**< Deadline the heap is ordered by (<= _due). */
    uint64_t _due;    /**< True deadline. */
    uint64_t _repeat; /**< Period, 0 for one-shot. */
    uint64_t _kseq;   /**< Start sequence paired with _key. */
    uint64_t _seq;    /**< Start sequence paired with _due. */
    uint32_t _index;  /**< Heap slot + 1; 0 when inactive. */
};

/** Prepare @p t for @p loop. Holds no resources. */
HP_API void hp_timer_init(struct hp_loop *loop, struct hp_timer *t, hp_timer_cb *cb);

/**
 * Start (or restart) @p t to fire @p timeout_ms after hp_loop_now(), then
 * every @p repeat_ms if that is not 0.
 * @return 0, or -ENOMEM if the heap could not grow (the timer is then
 *         inactive... unless it was active, in which case it keeps its old
 *         deadline), or -ERANGE if the loop already holds 2^32-1 timers.
 */
HP_API int hp_timer_start(struct hp_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);

/** Stop @p t; it will not fire. Stopping an inactive timer does nothing. */
HP_API void hp_timer_stop(struct hp_timer *t);

/** True while @p t is started and has not fired (repeating: until stopped). */
HP_API bool hp_timer_is_active(const struct hp_timer *t);

/** Milliseconds until @p t fires (0 if due or inactive). */
HP_API uint64_t hp_timer_remaining(const struct hp_timer *t);

#endif
