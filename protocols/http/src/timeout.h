/*
 * timeout.h - the connections' timeout lists (internal). A connection is in
 * exactly one list (struct conn_list) at a time, or in none (tclass T_COUNT).
 * Every list holds one timeout class, and every class has one duration, so
 * appending at the tail keeps each list sorted by deadline: arming and
 * refreshing are O(1) and the server needs one hp_timer in all (its
 * callback, in server.c, expires the heads of the lists). The timer is due
 * no later than the earliest deadline in the lists, so refreshing (which
 * only pushes a deadline back) never touches it. Inline: these run on every
 * request.
 */
#ifndef HP_HTTP_TIMEOUT_H
#define HP_HTTP_TIMEOUT_H

#include "internal.h"

static inline void hp__http_tlist_unlink(struct hp_http_server *srv, struct http_conn *c)
{
    struct conn_list *l;

    if (c->tclass == T_COUNT)
        return; /* in no list */
    l = &srv->lists[c->tclass];

    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        l->head = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    else
        l->tail = c->tprev;
    c->tprev = c->tnext = NULL;
}

static inline void hp__http_timer_need(struct hp_http_server *srv, uint64_t deadline)
{
    uint64_t now = hp_loop_now(srv->loop);

    if (hp_timer_is_active(&srv->timer) && now + hp_timer_remaining(&srv->timer) <= deadline)
        return;
    (void)hp_timer_start(&srv->timer, deadline > now ? deadline - now : 0, 0);
}

/*
 * Restart the deadline of @p c (in a list) in its class: it moves to the
 * tail. The deadline only moves back, so the timer is early enough as it is.
 */
static inline void hp__http_touch(struct http_conn *c)
{
    struct hp_http_server *srv = conn_srv(c);
    struct conn_list *l = &srv->lists[c->tclass];
    uint64_t deadline = hp_loop_now(srv->loop) + srv->timeouts[c->tclass];

    if (deadline == c->deadline)
        return; /* within the same millisecond: nothing moves */
    c->deadline = deadline;
    if (l->tail == c)
        return; /* already last: the order holds */
    /* Not last, so it has a successor. */
    c->tnext->tprev = c->tprev;
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        l->head = c->tnext;
    c->tnext = NULL;
    c->tprev = l->tail;
    l->tail->tnext = c;
    l->tail = c;
}

/* Put @p c in the list of @p cls; @p refresh restarts its deadline even if already there. */
static inline void hp__http_arm(struct http_conn *c, enum tclass cls, bool refresh)
{
    struct hp_http_server *srv = conn_srv(c);
    struct conn_list *l = &srv->lists[cls];

    if (c->tclass == cls) {
        if (refresh)
            hp__http_touch(c);
        return;
    }
    hp__http_tlist_unlink(srv, c);
    c->tclass = (uint8_t)cls;
    c->deadline = hp_loop_now(srv->loop) + srv->timeouts[cls];
    c->tprev = l->tail;
    if (l->tail)
        l->tail->tnext = c;
    else
        l->head = c;
    l->tail = c;
    if (cls != T_NONE)
        hp__http_timer_need(srv, c->deadline);
}

/*
 * @p queued bytes wait for the kernel: the write timeout runs (from now if
 * the connection was in another class; @p progress restarts it).
 */
static inline void hp__http_arm_write(struct http_conn *c, size_t queued, bool progress)
{
    if (c->tclass != T_WRITE) {
        c->wq_mark = queued;
        hp__http_arm(c, T_WRITE, false);
    } else if (progress) {
        hp__http_arm(c, T_WRITE, true);
    }
}

#endif
