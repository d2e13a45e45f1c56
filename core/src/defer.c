/*
 * defer.c - deferred callbacks: a FIFO of caller-allocated hp_defer nodes.
 * The run phase detaches the queue as it stands when the phase begins
 * (loop->defer_run); nodes queued by those callbacks go to the fresh queue
 * and wait for the next iteration, so deferral can never starve IO.
 */
#include "internal.h"

void hp_defer_init(struct hp_loop *loop, struct hp_defer *d, hp_defer_cb *cb)
{
    d->data = NULL;
    d->loop = loop;
    d->_cb = cb;
    d->_next = NULL;
    d->_pending = false;
}

void hp_defer_start(struct hp_defer *d)
{
    struct hp_loop *loop = d->loop;

    if (d->_pending)
        return;
    d->_pending = true;
    d->_next = NULL;
    if (loop->defer_tail)
        loop->defer_tail->_next = d;
    else
        loop->defer_head = d;
    loop->defer_tail = d;
    loop->defer_n++;
}

/* Unlink @p d from the list at *head; true if it was there. */
static bool unlink_from(struct hp_defer **head, struct hp_defer **tail, struct hp_defer *d)
{
    struct hp_defer **pp, *prev = NULL;

    for (pp = head; *pp && *pp != d; pp = &(*pp)->_next)
        prev = *pp;
    if (!*pp)
        return false;
    *pp = d->_next;
    if (tail && *tail == d)
        *tail = prev;
    return true;
}

void hp_defer_stop(struct hp_defer *d)
{
    struct hp_loop *loop = d->loop;

    if (!d->_pending)
        return;
    /* O(queue length): stopping a pending defer is rare. */
    if (!unlink_from(&loop->defer_run, NULL, d))
        unlink_from(&loop->defer_head, &loop->defer_tail, d);
    d->_pending = false;
    d->_next = NULL;
    loop->defer_n--;
}

bool hp_defer_is_pending(const struct hp_defer *d)
{
    return d->_pending;
}

int hp__defers_run(struct hp_loop *loop)
{
    int ran = 0;

    loop->defer_run = loop->defer_head;
    loop->defer_head = loop->defer_tail = NULL;
    while (loop->defer_run) {
        struct hp_defer *d = loop->defer_run;

        loop->defer_run = d->_next;
        d->_next = NULL;
        d->_pending = false;
        loop->defer_n--;
        d->_cb(d);
        ran++;
    }
    return ran;
}
