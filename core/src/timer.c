/*
 * timer.c - timers in a binary min-heap of pointers, ordered by
 * (_key, _kseq). Each timer stores its heap slot (+1) in _index.
 *
 * Lazy restart: a running timer restarted to a later deadline only updates
 * _due/_seq; its heap position (_key/_kseq) stays until it reaches the top,
 * where it is re-keyed and sifted down. Since _due >= _key always holds, the
 * top of the heap is still the earliest possible deadline. Restarting to an
 * earlier deadline re-keys at once (sift up). Sequence numbers come from a
 * per-loop counter, so equal deadlines fire in start order.
 *
 * Timers run twice per iteration (before the wait and after dispatch), but
 * only those started before the iteration began (seq < loop->timer_pass), so
 * a timer (re)started from any callback waits for the next iteration, even
 * with a timeout of 0.
 */
#include <limits.h>

#include "internal.h"

static bool before(const struct hp_timer *a, const struct hp_timer *b)
{
    return a->_key < b->_key || (a->_key == b->_key && a->_kseq < b->_kseq);
}

static void place(struct hp_timer **heap, struct hp_timer *t, uint32_t i)
{
    heap[i] = t;
    t->_index = i + 1;
}

static void sift_up(struct hp_loop *loop, uint32_t i)
{
    struct hp_timer **heap = loop->heap, *t = heap[i];

    while (i > 0) {
        uint32_t parent = (i - 1) / 2;

        if (!before(t, heap[parent]))
            break;
        place(heap, heap[parent], i);
        i = parent;
    }
    place(heap, t, i);
}

static void sift_down(struct hp_loop *loop, uint32_t i)
{
    struct hp_timer **heap = loop->heap, *t = heap[i];
    uint32_t n = loop->heap_len;

    for (;;) {
        uint32_t c = 2 * i + 1;

        if (c >= n)
            break;
        if (c + 1 < n && before(heap[c + 1], heap[c]))
            c++;
        if (!before(heap[c], t))
            break;
        place(heap, heap[c], i);
        i = c;
    }
    place(heap, t, i);
}

static void heap_remove(struct hp_loop *loop, struct hp_timer *t)
{
    uint32_t i = t->_index - 1;
    struct hp_timer *last = loop->heap[--loop->heap_len];

    t->_index = 0;
    if (last == t)
        return;
    place(loop->heap, last, i);
    if (i > 0 && before(last, loop->heap[(i - 1) / 2]))
        sift_up(loop, i);
    else
        sift_down(loop, i);
}

static int heap_reserve(struct hp_loop *loop)
{
    uint32_t cap;
    struct hp_timer **h;

    if (loop->heap_len < loop->heap_cap)
        return 0;
    if (loop->heap_cap >= UINT32_MAX / 2)
        return -ERANGE;
    cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
    h = hp__realloc_array(loop, loop->heap, cap, sizeof(*h));
    if (!h)
        return -ENOMEM;
    loop->heap = h;
    loop->heap_cap = cap;
    return 0;
}

void hp__timers_free(struct hp_loop *loop)
{
    hp__free(loop, loop->heap);
    loop->heap = NULL;
    loop->heap_cap = loop->heap_len = 0;
}

void hp_timer_init(struct hp_loop *loop, struct hp_timer *t, hp_timer_cb *cb)
{
    t->data = NULL;
    t->loop = loop;
    t->_cb = cb;
    t->_key = t->_due = t->_repeat = 0;
    t->_kseq = t->_seq = 0;
    t->_index = 0;
}

/* hp_timer_start()'s slow path, out of line so the fast path saves no registers. */
HP_NOINLINE static int timer_place(struct hp_loop *loop, struct hp_timer *t, uint64_t due)
{
    int err;

    if (t->_index) { /* active, and now due earlier: re-key at once */
        t->_key = due;
        t->_kseq = t->_seq;
        sift_up(loop, t->_index - 1);
        return 0;
    }
    if ((err = heap_reserve(loop)) != 0)
        return err;
    t->_key = due;
    t->_kseq = t->_seq;
    place(loop->heap, t, loop->heap_len++);
    sift_up(loop, t->_index - 1);
    return 0;
}

int hp_timer_start(struct hp_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
    struct hp_loop *loop = t->loop;
    uint64_t due = loop->now + timeout_ms;

    if (due < loop->now)
        due = UINT64_MAX; /* saturate: "never" */
    t->_repeat = repeat_ms;
    t->_due = due;
    t->_seq = loop->timer_seq++;
    /* The idle-timeout refresh: active and due no earlier, so it stays put (lazy). */
    if (t->_index && due >= t->_key)
        return 0;
    return timer_place(loop, t, due);
}

void hp_timer_stop(struct hp_timer *t)
{
    if (t->_index)
        heap_remove(t->loop, t);
}

bool hp_timer_is_active(const struct hp_timer *t)
{
    return t->_index != 0;
}

uint64_t hp_timer_remaining(const struct hp_timer *t)
{
    if (!t->_index || t->_due <= t->loop->now)
        return 0;
    return t->_due - t->loop->now;
}

/* The top timer was restarted later: move it to its true deadline. */
static void rekey_top(struct hp_loop *loop, struct hp_timer *t)
{
    t->_key = t->_due;
    t->_kseq = t->_seq;
    sift_down(loop, 0);
}

int hp__timers_run(struct hp_loop *loop)
{
    uint64_t pass = loop->timer_pass;
    int ran = 0;

    while (loop->heap_len) {
        struct hp_timer *t = loop->heap[0];

        if (t->_key > loop->now)
            break;
        if (t->_due != t->_key || t->_seq != t->_kseq) {
            rekey_top(loop, t);
            continue;
        }
        if (t->_seq >= pass)
            break; /* started during this pass */
        heap_remove(loop, t);
        /* A repeating timer is re-armed before its callback, which may stop it. */
        if (t->_repeat)
            (void)hp_timer_start(t, t->_repeat, t->_repeat);
        t->_cb(t);
        ran++;
    }
    return ran;
}

int hp__timers_timeout(const struct hp_loop *loop)
{
    uint64_t key;

    if (!loop->heap_len)
        return -1;
    key = loop->heap[0]->_key;
    if (key <= loop->now)
        return 0;
    if (key - loop->now > INT_MAX)
        return INT_MAX;
    return (int)(key - loop->now);
}
